// Per-instruction-set GEMM kernels and their blocking sizes. gemm.cpp packs the operands
// (plain copies) and calls block() once per (rows, columns, K-block) piece of C; everything
// that does arithmetic on C lives in block(), compiled once per instruction set.
//
// Packed layouts (both K-major, so a micro-kernel reads them front to back):
//   A: slivers of mr rows; sliver s holds rows [s*mr, s*mr + m_s) as a[k * m_s + i], m_s = mr
//      except for the last sliver of a block, which holds the remaining rows with m_s < mr.
//   B: panels of nr columns, panel p at b + p * panel_stride, element (k, j) at b[k * nr + j];
//      columns past the matrix edge are zero.
#pragma once
#include <cstddef>

namespace fastgru {
namespace detail {

template <class T>
struct GemmKernels {
  size_t mr;      // rows of a micro-tile
  size_t nr;      // columns of a packed panel (divides 32)
  size_t kc_max;  // K-block size limit (an L1-sized B panel)
  size_t mc;      // rows of A packed at a time (L2), a multiple of mr
  size_t nc;      // columns of B packed at a time (L3), a multiple of nr

  // C(m, cols j0..n-1) = beta C + A(m, kc) B(kc, j0..n-1), for one K-block, where A is
  // packed (m rows in slivers) and B is packed (ceil(n / nr) panels); c points at column j0
  // of row 0 (columns below j0 of the first panel are skipped, 0 <= j0 < nr). Every element
  // is accumulated from zero over k = 0..kc-1 in order, then added to beta C, by the same
  // instructions whatever its position in the tile: results never depend on m, n or j0.
  // beta == 0 never reads C.
  void (*block)(size_t m, size_t n, size_t j0, size_t kc, const T* a, const T* b,
                size_t panel_stride, T beta, T* c, size_t ldc);
};

// K-blocks depend on K only (never on M, N or threads), so every element of C sees the same
// sequence of additions: blocks of equal size, at most kc_max.
inline size_t gemm_kc(size_t K, size_t kc_max) {
  size_t blocks = (K + kc_max - 1) / kc_max;
  return blocks ? (K + blocks - 1) / blocks : 0;
}

}  // namespace detail
}  // namespace fastgru
