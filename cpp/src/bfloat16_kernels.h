// Rounding float to bfloat16 (the upper half of a float's bits), compiled once per instruction
// set (bfloat16_kernels.inc): the operands of products with ComputeDtype::bfloat16 (gemm.h).
// Mirrors round_bf16 of python/fastgru/reference/gru.py.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgru {
namespace detail {

// Adding 0x7FFF plus the lowest kept bit rounds to nearest with ties to even (a carry into the
// exponent rounds up to the next binade or to infinity, as it should). A NaN is quieted
// instead, so that a payload in the dropped bits cannot turn it into infinity. Written for a
// scalar or a vector of uint32 alike, with arithmetic only (no comparison or ?:, whose vector
// forms differ between compilers): the vector kernels run the same expression lane-wise.
template <class U>
inline U bfloat16_bits(U bits) {
  // A NaN's magnitude is above infinity's, so infinity minus it wraps around: top bit set.
  const U nan = 0u - ((0x7F800000u - (bits & 0x7FFFFFFFu)) >> 31);  // all ones for a NaN
  const U rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
  const U quiet_nan = bits | 0x00400000u;
  return ((quiet_nan & nan) | (rounded & ~nan)) & 0xFFFF0000u;
}

struct Bfloat16Kernels {
  // dst[i] = src[i] rounded to bfloat16 (kept in a float), i < n; dst == src allowed.
  void (*round)(const float* src, size_t n, float* dst);

  // Products of bfloat16 operands on an instruction that multiplies pairs of them
  // (gemm_bf16_microkernels.inc gives the layouts and the block() contract it shares with
  // GemmKernels). block == nullptr where the instruction set has none: products with bfloat16
  // operands then run the float kernels on rounded floats. Panels are the float kernels' nr
  // columns wide.
  struct PairGemm {
    void (*block)(size_t m, size_t n, size_t j0, size_t kc, const uint16_t* a, size_t lda, const uint16_t* b, size_t ps,
                  float beta, float* c, size_t ldc);
    size_t k_granule;    // K is zero-padded to a multiple of it (A's rows, B's panels); kc too
    size_t row_granule;  // A's rows are zero-padded to a multiple of it (block reads them)
  } pairs;
  // The pair kernels' operands from floats, each rounded by bfloat16_bits: word q of a row holds
  // the bfloat16 of k = 2q in its low half and of k = 2q + 1 in its high half (zero when K is
  // odd and 2q + 1 == K). Words q < ceil(K / 2) are written; the caller pads the rest.
  //   rows_to_pairs:    out[i * ldo + q], i < rows, for A(i, k) = a[i * lda + k] (rows along k);
  //   columns_to_pairs: out[i * ldo + q], i < rows, for A(i, k) = a[k * lda + i] (stored k-major,
  //                     as dgates^T in a weight gradient): a transposition, in registers;
  //   interleave_rows:  out[q * ldo + j], j < n, for B(k, j) = b[k * ldb + j] (pair panels of a
  //                     row-major B: rows 2q and 2q + 1 interleaved).
  void (*rows_to_pairs)(size_t rows, size_t K, const float* a, size_t lda, uint32_t* out, size_t ldo);
  void (*columns_to_pairs)(size_t rows, size_t K, const float* a, size_t lda, uint32_t* out, size_t ldo);
  void (*interleave_rows)(size_t K, size_t n, const float* b, size_t ldb, uint32_t* out, size_t ldo);
};

}  // namespace detail
}  // namespace fastgru
