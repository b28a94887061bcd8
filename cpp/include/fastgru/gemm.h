// Row-major matrix products for the GRU. Results are deterministic: work is split over the
// rows and columns of C only (never over K), and each element of C is accumulated in the
// same order whatever the thread count, the tile it falls in, or the other rows of A.
#pragma once
#include <cstddef>
#include <memory>

namespace fastgru {

enum class Trans { no, yes };

// The precision of a product's operands. float32 (the default): as stored, float or double.
// bfloat16 (float only): every operand element is rounded to bfloat16 (round to nearest even;
// NaN stays NaN) before it is multiplied, and the products, exact in float, are accumulated in
// float as usual: the semantics of torch.autocast and Keras' mixed_bfloat16.
enum class ComputeDtype { float32, bfloat16 };

// x rounded to the nearest bfloat16 (ties to even), kept in a float: its low 16 bits are zero.
float round_to_bfloat16(float x);
// dst[i] = round_to_bfloat16(src[i]) for i < n (dst == src allowed).
void round_to_bfloat16(const float* src, size_t n, float* dst);

// C(M,N) = beta * C + op(A) op(B), op(A) is (M,K), op(B) is (K,N). A is (M,K) with leading
// dimension lda when ta == Trans::no, else (K,M); likewise B. beta == 0 ignores C's contents.
// Runs on the thread pool (threads.h); inside a parallel region it runs on the calling thread.
// compute: the operands' precision (ComputeDtype::bfloat16 for float only, else
// std::invalid_argument).
template <class T>
void gemm(Trans ta, Trans tb, size_t M, size_t N, size_t K, const T* A, size_t lda, const T* B, size_t ldb, T beta,
          T* C, size_t ldc, ComputeDtype compute = ComputeDtype::float32);

constexpr size_t kZeroRow = ~size_t(0);  // a row of zeros in PackedMatrix::pack's source_rows

// A right-hand matrix B (K,N) packed once into the micro-kernel's layout and reused for many
// products (the recurrent weights, packed once per call and used at every time step).
template <class T>
class PackedMatrix {
 public:
  PackedMatrix();
  ~PackedMatrix();
  PackedMatrix(PackedMatrix&&) noexcept;
  PackedMatrix& operator=(PackedMatrix&&) noexcept;

  // Packs op(B) (K,N); reuses its storage when the size does not grow. With source_rows, the
  // stored matrix's row r (op(B)'s row r when tb == Trans::no, its column r when Trans::yes)
  // is B's row source_rows[r] (rows ldb apart), or zeros where source_rows[r] == kZeroRow:
  // a permuted, padded copy (the GRU's gate-blocked weights) packed straight from the source.
  // compute == ComputeDtype::bfloat16 stores B rounded to bfloat16, and every product with it
  // rounds its left-hand operand too (float only, else std::invalid_argument).
  void pack(Trans tb, size_t K, size_t N, const T* B, size_t ldb, const size_t* source_rows = nullptr,
            ComputeDtype compute = ComputeDtype::float32);
  size_t rows() const;  // K
  size_t cols() const;  // N

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Column granularity of a packed matrix for the active instruction set: a column range given
// to gemm_packed must start at a multiple of it. Always divides 96.
size_t packed_panel_width();

// C[:, n0:n1] = beta * C[:, n0:n1] + A(M,K) B[:, n0:n1], on the calling thread only (the
// recurrence calls it from inside a parallel region, each thread for its own columns). A is
// rounded to bfloat16 on the way in when B was packed so (A itself is never changed).
template <class T>
void gemm_packed(size_t M, size_t n0, size_t n1, const T* A, size_t lda, const PackedMatrix<T>& B, T beta, T* C,
                 size_t ldc);

// C(M, N) = beta * C + A(M,K) B, with the rows of C split over the thread pool (the input
// projection of a whole sequence); each row's result is gemm_packed's, whatever the threads.
template <class T>
void gemm_packed_rows(size_t M, const T* A, size_t lda, const PackedMatrix<T>& B, T beta, T* C, size_t ldc);

// sums[j] += sum over rows i of M(i, j), M (rows, cols) row-major: bias gradients. Threads
// split the columns, never the rows, so each column is summed in row order whatever the
// thread count.
template <class T>
void add_column_sums(size_t rows, size_t cols, const T* M, T* sums);

}  // namespace fastgru
