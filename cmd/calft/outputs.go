package main

import (
	"fmt"
	"os"

	"github.com/calft/calft/internal/fsutil"
)

// checkExportOutputs refuses export outputs that would destroy a file: an input (the
// base model or the adapter), each other, a special file, or any existing file without
// --overwrite (a model or a projector is costly to get back). A PEFT export's --out is a
// folder.
func checkExportOutputs(model, adapter, out, adapterOut string, peft, overwrite bool) error {
	ins := []fsutil.Path{{Flag: "--model", Path: model}, {Flag: "--lora", Path: adapter}}
	outs := []fsutil.Path{{Flag: "--out", Path: out}, {Flag: "--adapter-out", Path: adapterOut}}
	if peft {
		for _, in := range ins {
			if fsutil.SameFile(out, in.Path) {
				return fmt.Errorf("--out %s is also the %s input; writing it would destroy that input: choose another folder", out, in.Flag)
			}
		}
		if err := fsutil.CheckDirWritable("--out", out); err != nil {
			return err
		}
		outs = outs[1:]
	}
	if err := fsutil.CheckOutputs(outs, ins); err != nil {
		return err
	}
	if peft {
		outs = append(outs, fsutil.Path{Flag: "--out", Path: out})
	}
	for _, o := range outs {
		if _, err := os.Stat(o.Path); o.Path != "" && err == nil && !overwrite {
			return fmt.Errorf("%s %s exists; pass --overwrite to replace it, or choose another path", o.Flag, o.Path)
		}
	}
	return nil
}
