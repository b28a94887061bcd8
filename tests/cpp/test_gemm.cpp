// PackedMatrix packed through a row map (permuted rows, zero rows: how the GRU packs its
// gate-blocked weights straight from torch's layout), multiplied by gemm_packed and by
// gemm_packed_rows on 1 and 2 threads, against a naive product, on every instruction set:
// both orientations, K not a multiple of the transposing block, columns past a panel edge.
#include <string>
#include <vector>

#include "check.h"
#include "fastgru/gemm.h"
#include "fastgru/threads.h"

using namespace fastgru;
using namespace fastgru_test;

namespace {

template <class T>
void check_row_map(size_t M, size_t K, size_t N, Trans tb, const std::string& isa, Checker& check) {
  // The stored matrix has `stored` rows: op(B)'s rows (K) or its columns (N); its source has
  // a few more rows in another order, and every fifth stored row is zero.
  const size_t stored = tb == Trans::no ? K : N, inner = tb == Trans::no ? N : K;
  const size_t source_count = stored + 3, ldb = inner + 2;
  const std::vector<T> source = random_vector<T>(source_count * ldb), A = random_vector<T>(M * K);
  std::vector<size_t> rows(stored);
  for (size_t r = 0; r < stored; ++r) rows[r] = r % 5 == 4 ? kZeroRow : (r * 7 + 2) % source_count;
  auto b = [&](size_t k, size_t j) {  // op(B)(k, j) through the map
    const size_t r = tb == Trans::no ? k : j, c = tb == Trans::no ? j : k;
    return rows[r] == kZeroRow ? T(0) : source[rows[r] * ldb + c];
  };
  std::vector<double> want(M * N, 0.0);
  const T beta = T(0.5);
  std::vector<T> C0 = random_vector<T>(M * N);
  for (size_t i = 0; i < M; ++i)
    for (size_t j = 0; j < N; ++j) {
      double sum = 0;
      for (size_t k = 0; k < K; ++k) sum += double(A[i * K + k]) * double(b(k, j));
      want[i * N + j] = double(beta) * double(C0[i * N + j]) + sum;
    }
  PackedMatrix<T> packed;
  packed.pack(tb, K, N, source.data(), ldb, rows.data());
  const std::string what = isa + " " + (sizeof(T) == 4 ? "float" : "double") + " M=" + std::to_string(M) +
                           " K=" + std::to_string(K) + " N=" + std::to_string(N) + (tb == Trans::no ? " no" : " yes");
  std::vector<T> C = C0;
  gemm_packed<T>(M, 0, N, A.data(), K, packed, beta, C.data(), N);
  check.close(what + " gemm_packed", C, want, sizeof(T) == 4 ? 1e-5 : 1e-12);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<T> C_rows = C0;
    gemm_packed_rows<T>(M, A.data(), K, packed, beta, C_rows.data(), N);
    check.expect(what + " gemm_packed_rows on " + std::to_string(threads) + " threads equals gemm_packed", C_rows == C);
  }
}

}  // namespace

int main() {
  Checker check;
  const size_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {13, 6, 40}, {100, 33, 96}, {25, 130, 70}};
  for_each_isa([&](const std::string& isa) {
    for (const auto& s : shapes)
      for (Trans tb : {Trans::no, Trans::yes}) {
        check_row_map<float>(s[0], s[1], s[2], tb, isa, check);
        check_row_map<double>(s[0], s[1], s[2], tb, isa, check);
      }
  });
  return check.report("test_gemm");
}
