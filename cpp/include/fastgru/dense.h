// Dense (fully connected) layer over rows: y = x W^T + b, with torch.nn.Linear's names and
// shapes. Mirrors dense_forward / dense_backward in python/fastgru/reference/heads.py.
// A model applies it at every time step by treating (T, B, in) as T*B rows.
#pragma once
#include <cstddef>
#include <vector>

#include "fastgru/param_layout.h"

namespace fastgru {

// The layer's flat buffer, torch.nn.Linear's tensors: weight (out, in), then bias (out) when
// `bias`. Throws std::overflow_error when they cannot fit in one buffer.
std::vector<ParamTensor> dense_param_layout(size_t in, size_t out, bool bias);

// x (R, in), weight (out, in), bias (out,) or nullptr for none. Writes y (R, out).
template <class T>
void dense_forward(size_t rows, size_t in, size_t out, const T* x, const T* weight, const T* bias, T* y);

// x (R, in) and weight (out, in) as in the forward, dy (R, out).
// Adds the parameter gradients: dweight (out, in) += dy^T x, dbias (out,) += column sums of dy
// (skipped when dbias is nullptr). Writes dx (R, in) = dy W unless dx is nullptr.
// Every sum runs in a fixed order, so results do not depend on the thread count.
template <class T>
void dense_backward(size_t rows, size_t in, size_t out, const T* x, const T* weight, const T* dy, T* dx, T* dweight,
                    T* dbias);

}  // namespace fastgru
