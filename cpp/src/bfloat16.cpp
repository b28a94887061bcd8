// Rounding float to bfloat16 (the upper half of a float's bits), for products whose operands
// are bfloat16 (ComputeDtype::bfloat16, gemm.h). Mirrors round_bf16 of
// python/fastgru/reference/gru.py.
#include <cstdint>
#include <cstring>

#include "fastgru/gemm.h"

namespace fastgru {
namespace {

// Branch-free, so that the loop below vectorizes: adding 0x7FFF plus the lowest kept bit
// rounds to nearest with ties to even (a carry into the exponent rounds up to the next binade
// or to infinity, as it should). A NaN is quieted instead, so that a payload in the dropped
// bits cannot turn it into infinity.
inline uint32_t round_bits(uint32_t bits) {
  const uint32_t rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
  const uint32_t quiet_nan = bits | 0x00400000u;
  const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
  return (nan ? quiet_nan : rounded) & 0xFFFF0000u;
}

}  // namespace

float round_to_bfloat16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits = round_bits(bits);
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

void round_to_bfloat16(const float* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, src + i, sizeof bits);
    bits = round_bits(bits);
    std::memcpy(dst + i, &bits, sizeof bits);
  }
}

}  // namespace fastgru
