// Kernels for the avx512 instruction set (flags in cpp/CMakeLists.txt).
#define FASTGRU_ISA avx512
#define FASTGRU_ISA_NAME "avx512"
#include "isa_kernels.inc"
