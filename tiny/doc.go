// Package tiny generates a tiny synthetic vision-language model and dataset
// that the real llama.cpp loader and mtmd accept: a 2-layer llama-arch text
// model with a ChatML SentencePiece vocabulary (base.gguf), a CLIP vision
// tower with a LLaVA "mlp" projector (mmproj.gguf), and a LLaVA-format
// dataset of coloured shapes (data.json plus images/). Everything is a pure
// function of the seed, so tests can rely on exact bytes.
package tiny
