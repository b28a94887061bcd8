// round_to_bfloat16 (gemm.h): the rule of bfloat16_kernels.h, by the active instruction set's
// kernel for arrays.
#include <cstdint>
#include <cstring>

#include "bfloat16_kernels.h"
#include "fastgru/gemm.h"
#include "isa.h"

namespace fastgru {

float round_to_bfloat16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits = detail::bfloat16_bits(bits);
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

void round_to_bfloat16(const float* src, size_t n, float* dst) { detail::active_kernels().bf16.round(src, n, dst); }

}  // namespace fastgru
