// Packed, cache-blocked GEMM (BLIS style) around the per-instruction-set kernels of
// gemm_kernels.h. This file only moves data: packing B into column panels, choosing blocks,
// splitting C over threads. All arithmetic on C is in the kernel, with K-blocks that depend
// on K alone, so each element's sum is formed in one fixed order.
#include "fastgru/gemm.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "fastgru/buffer.h"
#include "fastgru/checked.h"
#include "fastgru/threads.h"
#include "isa.h"
#include "scratch.h"

namespace fastgru {
namespace {

using detail::GemmKernels;

// The transposed packing's bulk for float: dst[k * nr + j] = src[j][k] (zero for a null row)
// for k below the returned multiple of 4, in 4x4 blocks transposed in registers (scalar
// element moves ran at about one per cycle: a tenth of a batch-1 forward). Columns w..nr
// are zeroed for those k too.
inline size_t transpose_4x4_blocks(size_t kc, size_t w, const float* const* src, size_t nr, float* dst) {
  typedef float v4 __attribute__((vector_size(16)));
  const size_t k_end = kc / 4 * 4;
  const v4 zero = {0, 0, 0, 0};
  auto load = [&](size_t j, size_t k) {
    v4 v = zero;
    if (j < w && src[j]) __builtin_memcpy(&v, src[j] + k, sizeof v);
    return v;
  };
  for (size_t j = 0; j < nr; j += 4)
    for (size_t k = 0; k < k_end; k += 4) {
      const v4 r0 = load(j, k), r1 = load(j + 1, k), r2 = load(j + 2, k), r3 = load(j + 3, k);
      const v4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5), t1 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
      const v4 t2 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7), t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
      const v4 c[4] = {__builtin_shufflevector(t0, t1, 0, 1, 4, 5), __builtin_shufflevector(t0, t1, 2, 3, 6, 7),
                       __builtin_shufflevector(t2, t3, 0, 1, 4, 5), __builtin_shufflevector(t2, t3, 2, 3, 6, 7)};
      for (size_t i = 0; i < 4; ++i) __builtin_memcpy(dst + (k + i) * nr + j, &c[i], sizeof c[i]);
    }
  return k_end;
}

// Packs op(B) rows [0, kc), columns [0, n) into panels of nr columns, panel p at out + p*ps,
// zero beyond column n. row(r) is the stored matrix's row r (nullptr: zeros): op(B)(k, j) =
// row(k)[j] (Trans::no) or row(j)[k] (Trans::yes).
template <class T, class RowOf>
void pack_b(Trans tb, size_t kc, size_t n, RowOf row, size_t nr, size_t ps, T* out) {
  constexpr size_t kMaxPanel = 32;  // nr divides 32 (gemm_kernels.h)
  for (size_t j0 = 0; j0 < n; j0 += nr) {
    const size_t w = std::min(nr, n - j0);
    T* o = out + (j0 / nr) * ps;
    if (tb == Trans::no) {
      for (size_t k = 0; k < kc; ++k) {
        const T* src = row(k);
        T* dst = o + k * nr;
        if (src) std::copy(src + j0, src + j0 + w, dst);
        std::fill(dst + (src ? w : 0), dst + nr, T(0));
      }
    } else {
      const T* src[kMaxPanel];
      for (size_t j = 0; j < w; ++j) src[j] = row(j0 + j);
      size_t k0 = 0;
      if constexpr (sizeof(T) == 4) k0 = transpose_4x4_blocks(kc, w, src, nr, o);
      for (size_t k = k0; k < kc; ++k) {
        T* dst = o + k * nr;
        for (size_t j = 0; j < w; ++j) dst[j] = src[j] ? src[j][k] : T(0);
        for (size_t j = w; j < nr; ++j) dst[j] = T(0);
      }
    }
  }
}

template <class T>
void pack_b(Trans tb, size_t kc, size_t n, const T* B, size_t ldb, size_t nr, size_t ps, T* out) {
  pack_b(tb, kc, n, [=](size_t r) { return B + r * ldb; }, nr, ps, out);
}

// bfloat16 operands are floats with their low bits rounded away (round_to_bfloat16), made so
// as they are packed or, for a left-hand side read in place, copied.
template <class T>
bool bfloat16_operands(ComputeDtype compute) {
  if (compute == ComputeDtype::float32) return false;
  if (!std::is_same_v<T, float>) throw std::invalid_argument("bfloat16 products need float operands, not double");
  return true;
}

template <class T>
void round_in_place(T* data, size_t n) {
  if constexpr (std::is_same_v<T, float>) round_to_bfloat16(data, n, data);
}

// out (rows, cols), leading dimension cols = the rows of a (leading dimension lda), rounded.
template <class T>
void copy_rounded(size_t rows, size_t cols, const T* a, size_t lda, T* out) {
  if constexpr (std::is_same_v<T, float>)
    for (size_t i = 0; i < rows; ++i) round_to_bfloat16(a + i * lda, cols, out + i * cols);
}

// The pair kernels' operands (gemm_bf16_microkernels.inc): bfloat16 bit patterns, two
// consecutive k to a 32-bit word, K zero-padded to the kernel's granule (PairGemm).
using PairGemm = detail::Bfloat16Kernels::PairGemm;
inline uint16_t bfloat16_half(float x) {
  uint32_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  return static_cast<uint16_t>(detail::bfloat16_bits(bits) >> 16);
}
inline size_t round_up(size_t n, size_t granule) { return (n + granule - 1) / granule * granule; }

// A(i, k) (i < rows, k < K) rounded into out as pair words, row-major (padded_rows(rows) rows of
// Kp / 2 words), zero outside A; A(i, k) = a[i * lda + k], or a[k * lda + i] when transposed.
void a_to_pairs(const PairGemm& g, Trans ta, size_t rows, size_t K, const float* a, size_t lda, uint16_t* out) {
  const detail::Bfloat16Kernels& kern = detail::active_kernels().bf16;
  const size_t words = round_up(K, g.k_granule) / 2, used = (K + 1) / 2;
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
  (ta == Trans::no ? kern.rows_to_pairs : kern.columns_to_pairs)(rows, K, a, lda, o, words);
  for (size_t i = 0; i < rows; ++i) std::fill(o + i * words + used, o + (i + 1) * words, 0u);
  std::fill(o + rows * words, o + round_up(rows, g.row_granule) * words, 0u);
}

// B (K, n) stored row-major (B(k, j) = b[k * ldb + j]) rounded into pair panels of nr columns
// (panel p at out + p * Kp * nr), zero past the matrix: rows 2q and 2q + 1 interleaved, no float
// panels in between.
void row_major_to_pair_panels(const PairGemm& g, size_t K, size_t n, const float* b, size_t ldb, size_t nr,
                              uint16_t* out) {
  const detail::Bfloat16Kernels& kern = detail::active_kernels().bf16;
  const size_t words = round_up(K, g.k_granule) / 2, used = (K + 1) / 2;
  for (size_t j0 = 0; j0 < n; j0 += nr) {
    uint32_t* o = reinterpret_cast<uint32_t*>(out + j0 / nr * words * 2 * nr);
    const size_t cols = std::min(nr, n - j0);
    kern.interleave_rows(K, cols, b + j0, ldb, o, nr);
    if (cols < nr)
      for (size_t q = 0; q < used; ++q) std::fill(o + q * nr + cols, o + (q + 1) * nr, 0u);
    std::fill(o + used * nr, o + words * nr, 0u);
  }
}

// Float panels (K rows of nr, panel p at in + p * K * nr) rounded into pair panels (Kp / 2 pairs
// of rows, 2 nr each, panel p at out + p * Kp * nr), Kp = K padded to the granule.
void panels_to_pairs(const PairGemm& g, size_t panels, size_t K, size_t nr, const float* in, uint16_t* out) {
  const size_t Kp = round_up(K, g.k_granule);
  for (size_t p = 0; p < panels; ++p) {
    const float* panel = in + p * K * nr;
    uint16_t* o = out + p * Kp * nr;
    for (size_t k = 0; k < Kp; ++k)
      for (size_t j = 0; j < nr; ++j) o[k / 2 * 2 * nr + 2 * j + k % 2] = k < K ? bfloat16_half(panel[k * nr + j]) : 0;
  }
}

// C (mc rows) += A's rows (as pairs, padded) times pair panels (ps apart), over K-blocks of
// gemm_kc's size made a multiple of the granule, so that every block starts on one.
void pair_blocks(const PairGemm& g, size_t kc_max, size_t mc, size_t n, size_t j0, size_t K, const uint16_t* a,
                 const uint16_t* b, size_t nr, size_t ps, float beta, float* c, size_t ldc) {
  const size_t Kp = round_up(K, g.k_granule), kc_size = round_up(detail::gemm_kc(K, kc_max), g.k_granule);
  for (size_t pc = 0; pc < K; pc += kc_size)
    g.block(mc, n, j0, std::min(kc_size, Kp - pc), a + pc, Kp, b + pc * nr, ps, pc == 0 ? beta : 1.0f, c, ldc);
}

// Threads a product of `flops` deserves: at least ~50 us of work each, as waking the pool
// costs microseconds.
int threads_for_flops(double flops) { return static_cast<int>(std::min(flops / 4e6 + 1, 1e6)); }

// C = beta C, the whole product when K == 0.
template <class T>
void scale(size_t M, size_t N, T beta, T* C, size_t ldc) {
  for (size_t i = 0; i < M; ++i)
    for (size_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// One thread's rectangle of C. B is packed whole (all of K) for a block of nc columns, held
// in L3; then for each block of mc rows (A in L2, C's tile in L2 across the K-blocks) the
// kernel runs over the K-blocks in order, looping over panels (L1) and slivers inside.
// bf16: both operands rounded to bfloat16 as they are packed (A copied when read in place).
template <class T>
void gemm_serial(const GemmKernels<T>& kern, Trans ta, Trans tb, size_t M, size_t N, size_t K, const T* A, size_t lda,
                 const T* B, size_t ldb, T beta, T* C, size_t ldc, bool bf16) {
  size_t nr = kern.nr;
  size_t kc_size = detail::gemm_kc(K, kern.kc_max);
  size_t nc_fit = std::max(nr, kern.b_budget / K / nr * nr);
  size_t nc_size = std::min(nc_fit, (N + nr - 1) / nr * nr);
  size_t mc_size = std::min(kern.mc, M);
  // From the calling thread's arena (scratch.h): kept between calls, freed by release_memory.
  const bool copy_a = ta == Trans::yes || bf16;
  detail::ScratchArray<T> b_packed(K * nc_size), a_packed(copy_a ? mc_size * kc_size : 0);
  T* bp = b_packed.data();
  T* ap = a_packed.data();
  for (size_t jc = 0; jc < N; jc += nc_size) {
    size_t nc = std::min(nc_size, N - jc);
    size_t padded = (nc + nr - 1) / nr * nr;
    for (size_t pc = 0; pc < K; pc += kc_size) {
      size_t kc = std::min(kc_size, K - pc);
      const T* Bblock = tb == Trans::no ? B + pc * ldb + jc : B + jc * ldb + pc;
      pack_b(tb, kc, nc, Bblock, ldb, nr, kc * nr, bp + pc * padded);
      if (bf16) round_in_place(bp + pc * padded, kc * padded);
    }
    for (size_t ic = 0; ic < M; ic += mc_size) {
      size_t mc = std::min(mc_size, M - ic);
      for (size_t pc = 0; pc < K; pc += kc_size) {
        size_t kc = std::min(kc_size, K - pc);
        T b = pc == 0 ? beta : T(1);
        const T* bk = bp + pc * padded;
        if (ta == Trans::yes) {
          kern.pack_a_transposed(mc, kc, A + pc * lda + ic, lda, ap);
          if (bf16) round_in_place(ap, mc * kc);
          kern.block(mc, nc, 0, kc, ap, 0, bk, kc * nr, b, C + ic * ldc + jc, ldc);
        } else if (bf16) {
          copy_rounded(mc, kc, A + ic * lda + pc, lda, ap);
          kern.block(mc, nc, 0, kc, ap, kc, bk, kc * nr, b, C + ic * ldc + jc, ldc);
        } else {
          kern.block(mc, nc, 0, kc, A + ic * lda + pc, lda, bk, kc * nr, b, C + ic * ldc + jc, ldc);
        }
      }
    }
  }
}

// gemm_serial for bfloat16 operands on the pair kernels: B packed whole for a block of columns
// and converted to pair panels, then each block of A's rows converted to pairs.
void gemm_serial_pairs(const GemmKernels<float>& kern, const PairGemm& g, Trans ta, Trans tb, size_t M, size_t N,
                       size_t K, const float* A, size_t lda, const float* B, size_t ldb, float beta, float* C,
                       size_t ldc) {
  const size_t nr = kern.nr, Kp = round_up(K, g.k_granule);
  const size_t nc_size = std::min(std::max(nr, kern.b_budget / K / nr * nr), round_up(N, nr));
  const size_t mc_size = std::min(kern.mc, M);
  detail::ScratchArray<float> b_packed(tb == Trans::no ? 0 : K * nc_size);
  detail::ScratchArray<uint16_t> b_pairs(Kp * nc_size), a_pairs(round_up(mc_size, g.row_granule) * Kp);
  for (size_t jc = 0; jc < N; jc += nc_size) {
    const size_t nc = std::min(nc_size, N - jc);
    if (tb == Trans::no) {
      row_major_to_pair_panels(g, K, nc, B + jc, ldb, nr, b_pairs.data());
    } else {
      pack_b(tb, K, nc, B + jc * ldb, ldb, nr, K * nr, b_packed.data());
      panels_to_pairs(g, round_up(nc, nr) / nr, K, nr, b_packed.data(), b_pairs.data());
    }
    for (size_t ic = 0; ic < M; ic += mc_size) {
      const size_t mc = std::min(mc_size, M - ic);
      a_to_pairs(g, ta, mc, K, ta == Trans::no ? A + ic * lda : A + ic, lda, a_pairs.data());
      pair_blocks(g, kern.kc_max, mc, nc, 0, K, a_pairs.data(), b_pairs.data(), nr, Kp * nr, beta, C + ic * ldc + jc,
                  ldc);
    }
  }
}

// Splits C into a grid of rows x cols = threads rectangles, the shape with the least work
// for the busiest thread (tiles rounded up to whole slivers and panels, plus packing).
void thread_grid(size_t M, size_t N, size_t mr, size_t nr, int threads, int* rows, int* cols) {
  size_t best = ~size_t(0);
  for (int r = 1; r <= threads; ++r) {
    if (threads % r) continue;
    int c = threads / r;
    size_t m = (M + mr - 1) / mr, n = (N + nr - 1) / nr;
    size_t tm = (m + r - 1) / size_t(r) * mr, tn = (n + c - 1) / size_t(c) * nr;
    size_t cost = tm * tn + 16 * (tm + tn);
    if (cost < best) best = cost, *rows = r, *cols = c;
  }
}

}  // namespace

template <class T>
struct PackedMatrix<T>::Impl {
  size_t K = 0, N = 0;
  const GemmKernels<T>* kern = nullptr;  // the kernels it was packed for
  bool bf16 = false;                     // stored rounded to bfloat16 (ComputeDtype::bfloat16)
  Buffer<T> panels;                      // ceil(N / nr) panels of K x nr (pack writes all)
  // bfloat16 on the pair kernels: the panels again as pairs (K padded to the kernel's granule), which the
  // products read; empty otherwise.
  Buffer<uint16_t> pairs;
  detail::Bfloat16Kernels::PairGemm pair_gemm{};  // the kernel they were packed for
};

template <class T>
PackedMatrix<T>::PackedMatrix() : impl_(new Impl) {}
template <class T>
PackedMatrix<T>::~PackedMatrix() = default;
template <class T>
PackedMatrix<T>::PackedMatrix(PackedMatrix&&) noexcept = default;
template <class T>
PackedMatrix<T>& PackedMatrix<T>::operator=(PackedMatrix&&) noexcept = default;

template <class T>
void PackedMatrix<T>::pack(Trans tb, size_t K, size_t N, const T* B, size_t ldb, const size_t* source_rows,
                           ComputeDtype compute) {
  const GemmKernels<T>& kern = detail::kernels<T>().gemm;
  const bool bf16 = bfloat16_operands<T>(compute);
  impl_->bf16 = bf16;
  impl_->K = K;
  impl_->N = N;
  impl_->kern = &kern;
  const size_t nr = kern.nr, ps = K * nr, panels = (N + nr - 1) / nr;
  impl_->panels.resize(checked_product({panels, K, nr}, "PackedMatrix: packed (K, N)"));
  T* out = impl_->panels.data();
  uint16_t* pairs = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    impl_->pair_gemm = bf16 ? detail::active_kernels().bf16.pairs : detail::Bfloat16Kernels::PairGemm{};
    if (impl_->pair_gemm.block) {
      impl_->pairs.resize(panels * round_up(K, impl_->pair_gemm.k_granule) * nr);
      pairs = impl_->pairs.data();
    }
  }
  if (!pairs) impl_->pairs = Buffer<uint16_t>();
  auto row = [=](size_t r) -> const T* {
    if (!source_rows) return B + r * ldb;
    return source_rows[r] == kZeroRow ? nullptr : B + source_rows[r] * ldb;
  };
  // Threads pack disjoint panels: each thread of a recurrence reads every panel, so each then
  // finds half of them in its own cache rather than all in the packing thread's.
  parallel_run(
      [&](const Team& team) {
        const Range p = static_range(panels, team.tid, team.size);
        if (p.begin == p.end) return;
        const size_t c0 = p.begin * nr, n = std::min(N, p.end * nr) - c0;
        T* o = out + p.begin * ps;
        if (tb == Trans::no) {
          auto cols_from_c0 = [&](size_t k) {
            const T* r = row(k);
            return r ? r + c0 : r;
          };
          pack_b(tb, K, n, cols_from_c0, nr, ps, o);
        } else {
          pack_b(tb, K, n, [&](size_t j) { return row(c0 + j); }, nr, ps, o);
        }
        if (pairs) {
          if constexpr (std::is_same_v<T, float>)
            panels_to_pairs(impl_->pair_gemm, p.end - p.begin, K, nr, o,
                            pairs + p.begin * round_up(K, impl_->pair_gemm.k_granule) * nr);
        } else if (bf16) {
          round_in_place(o, (p.end - p.begin) * ps);
        }
      },
      threads_for(panels * ps, 1 << 16));
}
template <class T>
size_t PackedMatrix<T>::rows() const {
  return impl_->K;
}
template <class T>
size_t PackedMatrix<T>::cols() const {
  return impl_->N;
}

size_t packed_panel_width() { return std::max(detail::kernels<float>().gemm.nr, detail::kernels<double>().gemm.nr); }

template <class T>
void gemm_packed(size_t M, size_t n0, size_t n1, const T* A, size_t lda, const PackedMatrix<T>& B, T beta, T* C,
                 size_t ldc) {
  const typename PackedMatrix<T>::Impl& p = B.impl();
  if (M == 0 || n1 <= n0) return;
  if (p.K == 0) return scale(M, n1 - n0, beta, C + n0, ldc);
  const GemmKernels<T>& kern = *p.kern;
  lda = std::max<size_t>(lda, 1);  // 0 would mean "packed" to the kernel (M == 1 allows it)
  size_t nr = kern.nr, ps = p.K * nr;
  size_t kc_size = detail::gemm_kc(p.K, kern.kc_max);
  size_t first = n0 / nr;  // panel holding column n0
  const T* panels = p.panels.data() + first * ps;
  if constexpr (std::is_same_v<T, float>) {
    if (p.pair_gemm.block) {  // bfloat16 on the pair kernels: each block of A's rows as pairs first
      const PairGemm& g = p.pair_gemm;
      const size_t Kp = round_up(p.K, g.k_granule), mc_size = std::min(kern.mc, M);
      detail::ScratchArray<uint16_t> a_pairs(round_up(mc_size, g.row_granule) * Kp);
      for (size_t ic = 0; ic < M; ic += mc_size) {
        const size_t mc = std::min(mc_size, M - ic);
        a_to_pairs(g, Trans::no, mc, p.K, A + ic * lda, lda, a_pairs.data());
        pair_blocks(g, kern.kc_max, mc, n1 - first * nr, n0 - first * nr, p.K, a_pairs.data(),
                    p.pairs.data() + first * Kp * nr, nr, Kp * nr, beta, C + ic * ldc + n0, ldc);
      }
      return;
    }
  }
  // bfloat16: each block of A's rows is rounded into a copy first.
  detail::ScratchArray<T> a_rounded(p.bf16 ? std::min(kern.mc, M) * p.K : 0);
  for (size_t ic = 0; ic < M; ic += kern.mc) {
    size_t mc = std::min(kern.mc, M - ic);
    const T* a = A + ic * lda;
    size_t la = lda;
    if (p.bf16) {
      copy_rounded(mc, p.K, a, lda, a_rounded.data());
      a = a_rounded.data();
      la = p.K;
    }
    for (size_t pc = 0; pc < p.K; pc += kc_size)
      kern.block(mc, n1 - first * nr, n0 - first * nr, std::min(kc_size, p.K - pc), a + pc, la, panels + pc * nr, ps,
                 pc == 0 ? beta : T(1), C + ic * ldc + n0, ldc);
  }
}

template <class T>
void gemm_packed_rows(size_t M, const T* A, size_t lda, const PackedMatrix<T>& B, T beta, T* C, size_t ldc) {
  const size_t N = B.cols(), mr = B.impl().kern->mr;
  const double flops = 2.0 * double(M) * double(N) * double(B.rows());
  parallel_run(
      [&](const Team& team) {
        const Range r = static_range(M, team.tid, team.size, mr);
        if (r.begin < r.end)
          gemm_packed<T>(r.end - r.begin, 0, N, A + r.begin * lda, lda, B, beta, C + r.begin * ldc, ldc);
      },
      threads_for_flops(flops));
}

template <class T>
void gemm(Trans ta, Trans tb, size_t M, size_t N, size_t K, const T* A, size_t lda, const T* B, size_t ldb, T beta,
          T* C, size_t ldc, ComputeDtype compute) {
  const bool bf16 = bfloat16_operands<T>(compute);
  if (M == 0 || N == 0) return;
  checked_product({M, std::max(ldc, N)}, "gemm: C (M, ldc)");
  if (K == 0) return scale(M, N, beta, C, ldc);
  const GemmKernels<T>& kern = detail::kernels<T>().gemm;
  lda = std::max<size_t>(lda, 1);  // 0 would mean "packed" to the kernel (M == 1 allows it)
  const int max_threads = threads_for_flops(2.0 * double(M) * double(N) * double(K));
  parallel_run(
      [&](const Team& team) {
        int rows = 1, cols = 1;
        thread_grid(M, N, kern.mr, kern.nr, team.size, &rows, &cols);
        Range r = static_range(M, team.tid / cols, rows, kern.mr);
        Range c = static_range(N, team.tid % cols, cols, kern.nr);
        if (r.begin == r.end || c.begin == c.end) return;
        const T* Ab = ta == Trans::no ? A + r.begin * lda : A + r.begin;
        const T* Bb = tb == Trans::no ? B + c.begin : B + c.begin * ldb;
        if constexpr (std::is_same_v<T, float>) {
          const PairGemm& g = detail::active_kernels().bf16.pairs;
          if (bf16 && g.block)
            return gemm_serial_pairs(kern, g, ta, tb, r.end - r.begin, c.end - c.begin, K, Ab, lda, Bb, ldb, beta,
                                     C + r.begin * ldc + c.begin, ldc);
        }
        gemm_serial(kern, ta, tb, r.end - r.begin, c.end - c.begin, K, Ab, lda, Bb, ldb, beta,
                    C + r.begin * ldc + c.begin, ldc, bf16);
      },
      max_threads);
}

template <class T>
void add_column_sums(size_t rows, size_t cols, const T* M, T* sums) {
  parallel_run(
      [&](const Team& team) {
        const Range c = static_range(cols, team.tid, team.size, 16);
        for (size_t i = 0; i < rows; ++i)
          for (size_t j = c.begin; j < c.end; ++j) sums[j] += M[i * cols + j];
      },
      threads_for(rows * cols, 1 << 16));
}

#define FASTGRU_INSTANTIATE(T)                                                                                   \
  template void add_column_sums<T>(size_t, size_t, const T*, T*);                                                \
  template class PackedMatrix<T>;                                                                                \
  template void gemm_packed<T>(size_t, size_t, size_t, const T*, size_t, const PackedMatrix<T>&, T, T*, size_t); \
  template void gemm_packed_rows<T>(size_t, const T*, size_t, const PackedMatrix<T>&, T, T*, size_t);            \
  template void gemm<T>(Trans, Trans, size_t, size_t, size_t, const T*, size_t, const T*, size_t, T, T*, size_t, \
                        ComputeDtype);
FASTGRU_INSTANTIATE(float)
FASTGRU_INSTANTIATE(double)

}  // namespace fastgru
