package train

import "math"

// LRAt is the learning rate of optimizer step t (0-based) of total: a linear warmup,
// then cosine or linear decay to zero, or constant.
func (c *Config) LRAt(t, total int) float64 {
	if c.Warmup > 0 && t < c.Warmup {
		return c.LR * float64(t+1) / float64(c.Warmup)
	}
	rest := total - c.Warmup
	if rest <= 0 {
		return c.LR
	}
	p := float64(t-c.Warmup) / float64(rest)
	switch c.Schedule {
	case "cosine":
		return c.LR * 0.5 * (1 + math.Cos(math.Pi*p))
	case "linear":
		return c.LR * (1 - p)
	}
	return c.LR
}
