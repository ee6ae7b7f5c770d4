package lora

import (
	"context"
	"fmt"

	"github.com/calft/calft/gguf"
)

// MergeOptions control how merged tensors are stored.
type MergeOptions struct {
	// Type of the tensors that receive an update: 0 keeps each base tensor's type when calft
	// can write it (F32, F16, BF16, Q8_0, Q4_0) and falls back to F16 otherwise.
	Type     gguf.DType
	KeepType bool
	// Progress, when set, is called after each tensor with the tensors done and the total.
	Progress func(done, total int)
	// Context, when set, stops the merge when cancelled (a signal): the unfinished
	// output is removed and nothing replaces outPath.
	Context context.Context
}

// Merge writes base + adapter as a new GGUF: W' = W + (alpha/r)·B·A for each adapted
// weight, every other tensor copied byte for byte. The output appears atomically.
func Merge(basePath string, ad *HostAdapter, outPath string, opt MergeOptions) error {
	f, err := gguf.Open(basePath)
	if err != nil {
		return err
	}
	defer f.Close()
	arch, err := f.String("general.architecture")
	if err != nil {
		return err
	}
	if arch != ad.Arch {
		return fmt.Errorf("the adapter is for architecture %q, %s is %q", ad.Arch, basePath, arch)
	}
	pairs := map[string]*HostPair{}
	for i := range ad.Pairs {
		p := &ad.Pairs[i]
		ti, ok := f.Tensor(p.Base)
		if !ok {
			return fmt.Errorf("the adapter updates %s, which %s does not have; was it trained on another model?", p.Base, basePath)
		}
		if len(ti.Shape) != 2 || int(ti.Shape[0]) != p.NIn || int(ti.Shape[1]) != p.NOut {
			return fmt.Errorf("the adapter's %s is [%d→%d], the base tensor has shape %v", p.Base, p.NIn, p.NOut, ti.Shape)
		}
		pairs[p.Base] = p
	}
	w := gguf.NewWriterFrom(f)
	outType := map[string]gguf.DType{}
	for _, ti := range f.Tensors {
		t := ti.Type
		if pairs[ti.Name] != nil {
			t = mergedType(ti.Type, opt)
		}
		outType[ti.Name] = t
		if err := w.DeclareTensor(ti.Name, t, ti.Shape); err != nil {
			return fmt.Errorf("%s: %w", outPath, err)
		}
	}
	s, err := w.Stream(outPath)
	if err != nil {
		return err
	}
	defer s.Abort()
	scale := ad.Scale()
	for i, ti := range f.Tensors {
		if opt.Context != nil && opt.Context.Err() != nil {
			return fmt.Errorf("%s: stopped after %d of %d tensors; nothing was written", outPath, i, len(f.Tensors))
		}
		var data []byte
		if p := pairs[ti.Name]; p != nil {
			wv, err := f.TensorF32(ti.Name)
			if err != nil {
				return err
			}
			addLowRank(wv, p, ad.Rank, scale)
			if data, err = gguf.Quantize(outType[ti.Name], wv); err != nil {
				return fmt.Errorf("%s: %w", outPath, err)
			}
		} else if data, err = f.TensorData(ti.Name); err != nil {
			return err
		}
		if err := s.WriteTensor(ti.Name, data); err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(i+1, len(f.Tensors))
		}
	}
	return s.Commit()
}

// mergedType picks the stored type of an updated tensor.
func mergedType(base gguf.DType, opt MergeOptions) gguf.DType {
	if !opt.KeepType {
		return opt.Type
	}
	switch base {
	case gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0:
		return base
	}
	return gguf.F16
}

// addLowRank adds scale·B·A to w, stored [n_out rows × n_in].
func addLowRank(w []float32, p *HostPair, rank int, scale float32) {
	// Accumulate the update in float64 and add it once: it is small next to W, and
	// rounding each rank's term would lose its low bits.
	acc := make([]float64, p.NIn)
	for o := 0; o < p.NOut; o++ {
		clear(acc)
		for r, br := range p.B[o*rank : (o+1)*rank] {
			for i, a := range p.A[r*p.NIn : (r+1)*p.NIn] {
				acc[i] += float64(br) * float64(a)
			}
		}
		row := w[o*p.NIn : (o+1)*p.NIn]
		for i := range row {
			row[i] = float32(float64(row[i]) + float64(scale)*acc[i])
		}
	}
}
