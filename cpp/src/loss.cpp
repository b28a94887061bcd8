#include "fastgru/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fastgru/checked.h"
#include "fastgru/threads.h"

namespace fastgru {
namespace {

constexpr size_t kRowsPerBlock = 64;  // unit of the deterministic reduction

template <class T>
T sigmoid(T a) {
  // Two branches so that exp never overflows.
  if (a >= T(0)) return T(1) / (T(1) + std::exp(-a));
  const T e = std::exp(a);
  return e / (T(1) + e);
}

// Loss of one valid row (summed over its outputs); writes the row's gradient times `scale`.
template <class T>
double row_loss(LossKind kind, size_t O, const T* x, const T* y, int64_t label, T scale, T* dx) {
  double sum = 0.0;
  switch (kind) {
    case LossKind::mse:
      for (size_t j = 0; j < O; ++j) {
        const T d = x[j] - y[j];
        sum += static_cast<double>(d * d);
        dx[j] = T(2) * d * scale;
      }
      break;
    case LossKind::mae:
      for (size_t j = 0; j < O; ++j) {
        const T d = x[j] - y[j];
        sum += static_cast<double>(std::abs(d));
        dx[j] = (d > T(0) ? scale : d < T(0) ? -scale : T(0));
      }
      break;
    case LossKind::binary_crossentropy:
      for (size_t j = 0; j < O; ++j) {
        const T a = x[j];
        sum += static_cast<double>(std::max(a, T(0)) - a * y[j] + std::log1p(std::exp(-std::abs(a))));
        dx[j] = (sigmoid(a) - y[j]) * scale;
      }
      break;
    case LossKind::cross_entropy: {
      const T m = *std::max_element(x, x + O);
      T s = T(0);
      for (size_t j = 0; j < O; ++j) {
        dx[j] = std::exp(x[j] - m);
        s += dx[j];
      }
      const T inv = T(1) / s;
      for (size_t j = 0; j < O; ++j) dx[j] *= inv * scale;
      dx[label] -= scale;
      sum = static_cast<double>(m + std::log(s) - x[label]);
      break;
    }
  }
  return sum;
}

}  // namespace

size_t loss_count(LossKind kind, size_t rows, size_t outputs, const bool* mask) {
  const size_t valid = mask ? static_cast<size_t>(std::count(mask, mask + rows, true)) : rows;
  return kind == LossKind::cross_entropy ? valid : valid * outputs;
}

template <class T>
double loss_sum_backward(LossKind kind, size_t rows, size_t outputs, const T* logits, const T* target,
                         const int64_t* labels, const bool* mask, T grad_scale, T* dlogits) {
  checked_mul(rows, outputs, "loss: logits (rows, outputs)");
  const size_t O = outputs;
  const size_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> partial(blocks, 0.0);
  parallel_run(
      [&](const Team& team) {
        const Range blk = static_range(blocks, team.tid, team.size);
        for (size_t b = blk.begin; b < blk.end; ++b) {
          const size_t r1 = std::min(rows, (b + 1) * kRowsPerBlock);
          double sum = 0.0;
          for (size_t r = b * kRowsPerBlock; r < r1; ++r) {
            T* dx = dlogits + r * O;
            if (mask && !mask[r]) {
              std::fill(dx, dx + O, T(0));
              continue;
            }
            sum += row_loss(kind, O, logits + r * O, target ? target + r * O : nullptr, labels ? labels[r] : 0,
                            grad_scale, dx);
          }
          partial[b] = sum;
        }
      },
      threads_for(rows * O, 1 << 14));
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

template <class T>
double loss_forward_backward(LossKind kind, size_t rows, size_t outputs, const T* logits, const T* target,
                             const int64_t* labels, const bool* mask, T* dlogits) {
  const size_t count = loss_count(kind, rows, outputs, mask);
  const T scale = count ? static_cast<T>(1.0 / static_cast<double>(count)) : T(0);
  const double sum = loss_sum_backward(kind, rows, outputs, logits, target, labels, mask, scale, dlogits);
  return count ? sum / static_cast<double>(count) : 0.0;
}

template double loss_forward_backward<float>(LossKind, size_t, size_t, const float*, const float*, const int64_t*,
                                             const bool*, float*);
template double loss_forward_backward<double>(LossKind, size_t, size_t, const double*, const double*, const int64_t*,
                                              const bool*, double*);
template double loss_sum_backward<float>(LossKind, size_t, size_t, const float*, const float*, const int64_t*,
                                         const bool*, float, float*);
template double loss_sum_backward<double>(LossKind, size_t, size_t, const double*, const double*, const int64_t*,
                                          const bool*, double, double*);

}  // namespace fastgru
