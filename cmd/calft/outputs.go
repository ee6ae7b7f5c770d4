package main

import (
	"fmt"
	"os"

	"github.com/calft/calft/internal/fsutil"
)

// checkExportOutputs refuses export outputs that would destroy a file: an input (the
// base model or the adapter), each other, a special file, or any existing file without
// --overwrite (a model or a projector is costly to get back).
func checkExportOutputs(model, adapter, out, adapterOut string, overwrite bool) error {
	outs := []fsutil.Path{{Flag: "--out", Path: out}, {Flag: "--adapter-out", Path: adapterOut}}
	if err := fsutil.CheckOutputs(outs, []fsutil.Path{{Flag: "--model", Path: model}, {Flag: "--lora", Path: adapter}}); err != nil {
		return err
	}
	for _, o := range outs {
		if _, err := os.Stat(o.Path); o.Path != "" && err == nil && !overwrite {
			return fmt.Errorf("%s %s exists; pass --overwrite to replace it, or choose another path", o.Flag, o.Path)
		}
	}
	return nil
}
