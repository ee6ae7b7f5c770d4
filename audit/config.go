// Package audit is calft audit: it finds the captions a dataset's images contradict,
// from the two passes CAL makes over every sample (with the image, and with the image
// hidden), and can write the dataset without them.
package audit

import (
	"fmt"
	"strings"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/train"
)

// DefaultThreshold is the default --threshold, in nats: a flagged caption has a word
// that, seeing the image, the model finds at least e^1.5 ≈ 4.5 times less likely than
// it usually finds that word, and at least that much less supported by the image.
const DefaultThreshold = 1.5

// Config is every option of calft audit, declared once (see train.Config); the model
// and CAL option groups are train's and score's.
type Config struct {
	train.EnvConfig `mapstructure:",squash"`
	cal.Options     `mapstructure:",squash"`

	Data        string  `mapstructure:"data" help:"LLaVA JSON or JSONL dataset to audit (required)"`
	Lora        string  `mapstructure:"lora" help:"adapter of a model that has learnt the task (a llama.cpp adapter GGUF or a PEFT folder); without one the base model judges"`
	Out         string  `mapstructure:"out" help:"JSONL file to write, one line per sample, most suspicious first (required)"`
	HTML        string  `mapstructure:"html" help:"also write an HTML page of the most suspicious samples: image, caption, flagged words"`
	HTMLSamples int     `mapstructure:"html-samples" help:"most samples on the HTML page (0: all)"`
	Tokens      int     `mapstructure:"tokens" help:"tokens listed per sample in --out, most suspicious first (0: all)"`
	Threshold   float64 `mapstructure:"threshold" help:"flag the samples whose score is at least this (nats)"`
	Top         int     `mapstructure:"top" help:"flag the K highest-scoring samples instead of those above --threshold (0: use --threshold)"`
	WriteClean  string  `mapstructure:"write-clean" help:"write the dataset without the flagged samples to this file, in the input's format (JSON array or JSONL)"`
}

// Defaults are audit's defaults.
func Defaults() Config {
	return Config{EnvConfig: train.DefaultEnv(), Options: cal.Defaults(), HTMLSamples: 50, Tokens: 5, Threshold: DefaultThreshold}
}

// Validate reports options that cannot work, with the fix.
func (c *Config) Validate() error {
	errs := c.EnvConfig.Validate()
	if c.Data == "" {
		errs = append(errs, "--data is required (LLaVA JSON or JSONL)")
	}
	if c.Out == "" {
		errs = append(errs, "--out is required (the JSONL file to write)")
	}
	if c.Mmproj == "" {
		errs = append(errs, "--mmproj is required: without images there is nothing to contradict a caption")
	}
	if err := c.Options.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if c.HTMLSamples < 0 || c.Tokens < 0 || c.Top < 0 {
		errs = append(errs, "--html-samples, --tokens and --top must not be negative (0: all, all, off)")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid options:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}
