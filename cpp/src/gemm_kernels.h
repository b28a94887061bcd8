// Per-instruction-set GEMM kernels and their blocking sizes (gemm_microkernels.inc). gemm.cpp
// packs the operands and calls block() once per (rows, columns, K-block) piece of C; all the
// arithmetic on C is in block(), compiled once per instruction set.
//
// Packed layouts (both K-major, so a micro-kernel reads them front to back):
//   A (only when stored transposed; a row-major A is read in place): slivers of mr rows, the
//      one starting at row s at a + s * kc, holding A(s + i, k) at [k * m_s + i], where
//      m_s = mr except for the last sliver of a block, which has the remaining m_s < mr rows.
//   B: panels of nr columns, panel p at b + p * panel_stride, element (k, j) at b[k * nr + j];
//      columns past the matrix edge are zero.
//   int8 weights (gru_pack_int8, read by gemv_panels_q8): panels of kQ8PanelRows rows; panel p
//      of a matrix with K columns (K rounded up to kQ8Group, the padding zero) at w + p * 16 * K,
//      holding W(16 p + r, k) at [(k / 4) * 64 + r * 4 + k % 4]: each 64 bytes are four inputs of
//      the panel's 16 rows, one vector for VPDPBUSD (two for AVX2, four for SDOT). Beside them,
//      each row's weight sum (int32), which the VPDPBUSD paths take off their offset products.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgru {
namespace detail {

constexpr size_t kQ8PanelRows = 16;  // rows of an int8 weight panel
constexpr size_t kQ8Group = 4;       // inputs per int8 product step: VPDPBUSD's and SDOT's four bytes

template <class T>
struct GemmKernels {
  size_t mr;        // rows of a micro-tile
  size_t nr;        // columns of a packed panel (divides 32)
  size_t kc_max;    // K-block size limit (an L1-sized B panel)
  size_t mc;        // rows of A (and C) handled at a time (L2), a multiple of mr
  size_t b_budget;  // elements of B packed at a time: all of K for a block of columns (L3)
  // Sequences one step of gru_step advances together (at most 16): each block of weight rows
  // read from L2 once per step serves them all. 4 for the vector kernels (measured: with 16, the
  // sequences' states and gates outgrow L1 at medium sizes; with 8, large steps were slower), 16
  // with int8 tiles (an AMX tile's rows).
  size_t step_sequences;
  // The same with int8 weights (gru_step_int8, gru_forward_int8): 8 with VPDPBUSD on 512-bit
  // vectors, whose products cost less than reading the weights again (measured: the batch
  // forward 12-17% faster than with 4), 16 with int8 tiles, else 4.
  size_t int8_step_sequences;

  // C(m, cols j0..n-1) = beta C + A(m, kc) B(kc, j0..n-1), for one K-block, where A is
  // row-major with leading dimension lda, or packed in slivers when lda == 0, and B is
  // packed (ceil(n / nr) panels of kc rows, panel_stride apart); c points at column j0
  // of row 0 (columns below j0 of the first panel are skipped, 0 <= j0 < nr). Every element
  // is accumulated from zero over k = 0..kc-1 in order, then added to beta C, by the same
  // instructions whatever its position in the tile: results never depend on m, n or j0.
  // beta == 0 never reads C.
  void (*block)(size_t m, size_t n, size_t j0, size_t kc, const T* a, size_t lda, const T* b, size_t panel_stride,
                T beta, T* c, size_t ldc);

  // Packs A(m, kc) stored transposed (A(i, k) = a[k * lda + i]) into slivers at out.
  void (*pack_a_transposed)(size_t m, size_t kc, const T* a, size_t lda, T* out);

  // y[c * ldy + i] = W(i, :) v[c] for a row-major W (n, K) (leading dimension ldw) and `vectors`
  // vectors v[c] (K): torch's weight layout read in place, once for up to four vectors, for one
  // step of a few sequences (gru_step.cpp), where packing would cost more than the product.
  // Each sum is a dot product in its own order (not block()'s), the same for any number of
  // vectors.
  void (*gemv_rows)(size_t n, size_t K, const T* w, size_t ldw, size_t vectors, const T* const* v, T* y, size_t ldy);

  // sums[c * ld_sums + i] = W(i, :) a[c] for the rows i < panels * kQ8PanelRows of int8 weights W
  // packed in `panels` consecutive panels (the layout above: K a multiple of kQ8Group) and `vectors`
  // int8 activation vectors a[c] (K, zero-padded like W): exact int32 sums (fastgru.quantize:
  // values in [-127, 127], K <= kMaxInt8Depth), so every instruction set gives the same
  // integers. The weights, a quarter of float's bytes, are read once for up to four vectors.
  // row_sums[i]: the sum of row i's weights (gru_pack_int8 stores them).
  void (*gemv_panels_q8)(size_t panels, size_t K, const int8_t* w, const int32_t* row_sums, size_t vectors,
                         const int8_t* const* a, int32_t* sums, size_t ld_sums);

  // q (K) = v quantized to int8 with one symmetric scale, returned (reference.quantize's
  // quantize_activations): 0 for a zero vector, NaN when v holds NaN or infinity.
  T (*quantize_q8)(size_t K, const T* v, int8_t* q);

  // With int8 tiles (AMX): hold(true) configures them for this thread, hold(false) releases
  // them. gemv_panels_q8 of two or more vectors runs inside such a hold, so that a thread
  // configures the tiles once for its share of a call, not at every product. nullptr elsewhere.
  void (*hold_int8_tiles)(bool hold);
};

// K-blocks depend on K only (never on M, N or threads), so every element of C sees the same
// sequence of additions: blocks of equal size, at most kc_max.
inline size_t gemm_kc(size_t K, size_t kc_max) {
  size_t blocks = (K + kc_max - 1) / kc_max;
  return blocks ? (K + blocks - 1) / blocks : 0;
}

}  // namespace detail
}  // namespace fastgru
