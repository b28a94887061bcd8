// Kernels for the avx2 instruction set (flags in cpp/CMakeLists.txt).
#define FASTGRU_ISA avx2
#define FASTGRU_ISA_NAME "avx2"
#include "isa_kernels.inc"
