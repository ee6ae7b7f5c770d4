// Compiles llama.cpp's tools/mtmd/mtmd-audio.cpp from the pinned module (see mtmd.go).
#include "mtmd-audio.cpp"
