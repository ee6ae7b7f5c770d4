package tiny

import "math/rand/v2"

// newRNG returns the deterministic generator for one output stream.
func newRNG(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x5eed0000+stream))
}

// normal returns n values drawn from N(0, std²).
func normal(rng *rand.Rand, n int, std float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64() * std)
	}
	return out
}

// around returns n values near center: center + N(0, std²).
func around(rng *rand.Rand, n int, center, std float64) []float32 {
	out := normal(rng, n, std)
	for i := range out {
		out[i] += float32(center)
	}
	return out
}
