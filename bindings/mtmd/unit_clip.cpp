// Compiles llama.cpp's tools/mtmd/clip.cpp from the pinned module (see mtmd.go).
#include "clip.cpp"
