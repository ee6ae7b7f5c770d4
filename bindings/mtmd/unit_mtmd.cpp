// Compiles llama.cpp's tools/mtmd/mtmd.cpp from the pinned module (see mtmd.go).
#include "mtmd.cpp"
