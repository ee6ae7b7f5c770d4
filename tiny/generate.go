package tiny

import (
	"fmt"
	"os"
	"path/filepath"
)

// Generate writes base.gguf, mmproj.gguf, data.json and images/ into dir
// for the given seed, with a separate (untied) output layer.
func Generate(dir string, seed int64) error {
	return GenerateWith(dir, Options{Seed: seed})
}

// GenerateWith is Generate with options.
func GenerateWith(dir string, o Options) error {
	if err := o.checkFamily(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeTextModel(filepath.Join(dir, BaseFile), o); err != nil {
		return fmt.Errorf("tiny text model: %w", err)
	}
	if err := writeMmproj(filepath.Join(dir, MmprojFile), o); err != nil {
		return fmt.Errorf("tiny mmproj: %w", err)
	}
	n := o.Samples
	if n <= 0 {
		n = defaultSamples
	}
	if err := WriteDataset(dir, BuildExamples(newRNG(o.Seed, streamData), n)); err != nil {
		return fmt.Errorf("tiny dataset: %w", err)
	}
	return nil
}
