// Training losses on logits, the loss value and its gradient in one pass. Mirrors mse, mae,
// binary_crossentropy and cross_entropy in python/fastgru/reference/heads.py.
//
// Rows are (time step, sequence) pairs or sequences; mask marks the valid ones. The loss is
// the mean over valid rows and, for the elementwise losses, over the O outputs too (the
// `reduction="mean"` of the torch losses applied to the valid rows only):
//   mse                 (x - y)^2
//   mae                 |x - y|                       (gradient 0 where x == y, as torch)
//   binary_crossentropy max(x, 0) - x y + log(1 + exp(-|x|))   (sigmoid from logits, stable)
//   cross_entropy       logsumexp(x_row) - x_row[label]         (softmax from logits)
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgru {

enum class LossKind { mse, mae, binary_crossentropy, cross_entropy };

// logits (R, O). target (R, O) for mse, mae and binary_crossentropy (nullptr for
// cross_entropy); labels (R,) in [0, O) at valid rows for cross_entropy (nullptr otherwise).
// mask (R,) true = valid row, or nullptr when all rows are valid.
// Writes dlogits (R, O), zero at masked rows, and returns the loss (0 when no row is valid).
// The sum runs over fixed blocks of rows in a fixed order: the value does not depend on the
// thread count.
template <class T>
double loss_forward_backward(LossKind kind, size_t rows, size_t outputs, const T* logits, const T* target,
                             const int64_t* labels, const bool* mask, T* dlogits);

// The number of terms the mean divides by: valid rows for cross_entropy, valid rows times O
// for the elementwise losses.
size_t loss_count(LossKind kind, size_t rows, size_t outputs, const bool* mask);

// The same pass, unnormalized: returns the SUM of the valid terms and writes dlogits = the
// gradient of that sum times grad_scale. loss_forward_backward is this with
// grad_scale = 1 / loss_count, divided by the count; a data-parallel caller passes
// 1 / (the whole batch's count) instead, so that the per-part sums add up to the batch's mean.
template <class T>
double loss_sum_backward(LossKind kind, size_t rows, size_t outputs, const T* logits, const T* target,
                         const int64_t* labels, const bool* mask, T grad_scale, T* dlogits);

}  // namespace fastgru
