#include "fastgru/dense.h"

#include <algorithm>

#include "fastgru/checked.h"
#include "fastgru/gemm.h"
#include "fastgru/threads.h"

namespace fastgru {

std::vector<ParamTensor> dense_param_layout(size_t in, size_t out, bool bias) {
  const size_t weights = checked_mul(out, in, "Dense weight (out_features * in_features)");
  std::vector<ParamTensor> layout{{"weight", 0, out, in}};
  if (bias) {
    checked_add(weights, out, "dense: weight and bias");
    layout.push_back({"bias", weights, out, 0});
  }
  return layout;
}

template <class T>
void dense_forward(size_t rows, size_t in, size_t out, const T* x, const T* weight, const T* bias, T* y) {
  checked_product({rows, std::max(in, out)}, "dense: rows * features");
  checked_mul(in, out, "dense: weight (out_features, in_features)");
  // y starts as the bias in every row so that the product can accumulate onto it (beta = 1)
  // instead of a second pass over y.
  if (bias) {
    parallel_run(
        [&](const Team& team) {
          const Range r = static_range(rows, team.tid, team.size, 64);
          for (size_t i = r.begin; i < r.end; ++i)
            for (size_t j = 0; j < out; ++j) y[i * out + j] = bias[j];
        },
        threads_for(rows * out, 1 << 16));
  }
  gemm<T>(Trans::no, Trans::yes, rows, out, in, x, in, weight, in, bias ? T(1) : T(0), y, out);
}

template <class T>
void dense_backward(size_t rows, size_t in, size_t out, const T* x, const T* weight, const T* dy, T* dx, T* dweight,
                    T* dbias) {
  checked_product({rows, std::max(in, out)}, "dense: rows * features");
  checked_mul(in, out, "dense: weight (out_features, in_features)");
  gemm<T>(Trans::yes, Trans::no, out, in, rows, dy, out, x, in, T(1), dweight, in);
  if (dx) gemm<T>(Trans::no, Trans::no, rows, in, out, dy, out, weight, in, T(0), dx, in);
  if (dbias) add_column_sums(rows, out, dy, dbias);
}

template void dense_forward<float>(size_t, size_t, size_t, const float*, const float*, const float*, float*);
template void dense_forward<double>(size_t, size_t, size_t, const double*, const double*, const double*, double*);
template void dense_backward<float>(size_t, size_t, size_t, const float*, const float*, const float*, float*, float*,
                                    float*);
template void dense_backward<double>(size_t, size_t, size_t, const double*, const double*, const double*, double*,
                                     double*, double*);

}  // namespace fastgru
