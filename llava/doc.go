// Package llava is the vision-language model as calft trains it: a text decoder's frozen
// weights on a ggml backend, read through its architecture's description (package
// arch), and a decoder graph built from ggml ops that have a backward pass. Image-
// embedding rows from mtmd enter the sequence beside token rows; a per-sequence mask
// can hide them from the text (CAL's image-absent pass).
//
// It knows nothing of CAL or optimizers: it turns a batch into logits.
package llava
