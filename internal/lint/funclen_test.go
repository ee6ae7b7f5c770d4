package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxLines is the longest function the packages below may hold: a function that does
// not fit on a screen hides its steps (the training loop is meant to read like llm.c's).
const maxLines = 100

// TestFunctionsAreShort checks every function of the packages that hold the model, the
// objective, the adapters, the training loop and the command line.
func TestFunctionsAreShort(t *testing.T) {
	fset := token.NewFileSet()
	for _, dir := range []string{"train", "llava", "cal", "lora", "cmd", "arch", "bench", "demo", "audit"} {
		root := filepath.Join("..", "..", dir)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxLines {
					t.Errorf("%s: %s is %d lines long (at most %d): split it", p, fd.Name.Name, n, maxLines)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
