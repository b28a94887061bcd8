// Kernels for the generic instruction set (flags in cpp/CMakeLists.txt).
#define FASTGRU_ISA generic
#define FASTGRU_ISA_NAME "generic"
#include "isa_kernels.inc"
