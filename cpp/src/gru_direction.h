// One direction of one GRU layer: the recurrence over time, forward and backward.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fastgru/gemm.h"
#include "gru_cell.h"

namespace fastgru {
namespace detail {

template <class T>
struct DirectionParams {
  const T* w_ih;  // (3H, in)
  const T* w_hh;  // (3H, H)
  const T* b_ih;  // (3H) or nullptr (no bias)
  const T* b_hh;  // (3H) or nullptr
};

template <class T>
struct DirectionGrads {  // accumulated (+=), or written when overwrite; biases nullptr when there are none
  T* w_ih;
  T* w_hh;
  T* b_ih;
  T* b_hh;
  bool overwrite;
};

struct DirectionShape {
  size_t steps, batch, input, hidden;
  bool reverse;  // process t = T-1 .. 0
  bool reset_after;
  const int64_t* lengths;  // (B,), never nullptr; steps t >= lengths[b] leave the state alone
  ComputeDtype compute;    // the precision of every product's operands (gemm.h)
};

// Elements of the training cache's gate part for one direction.
inline size_t gate_cache_size(size_t steps, size_t batch, size_t hidden) {
  size_t blocks = (hidden + kGateBlock - 1) / kGateBlock;
  return steps * batch * blocks * kCacheGates * kGateBlock;
}

// x (T, B, in); h0 (B, H); writes y rows (T*B rows, row stride ldy, H columns; 0 at
// padding), h_n (B, H). Training mode when states (T, B, H: state before each step) and
// gates (gate_cache_size) are given.
template <class T>
void gru_direction_forward(const DirectionShape& shape, const DirectionParams<T>& p, const T* x, const T* h0, T* y,
                           size_t ldy, T* h_n, T* states, T* gates);

// dy rows with stride ldy (H columns used), dh_n (B, H). Writes dx = dx_beta * dx + (this
// direction's input gradient) unless dx is nullptr, dh0 (B, H); adds the parameter gradients into g.
template <class T>
void gru_direction_backward(const DirectionShape& shape, const DirectionParams<T>& p, const T* x, const T* states,
                            const T* gates, const T* dy, size_t ldy, const T* dh_n, T* dx, T dx_beta, T* dh0,
                            const DirectionGrads<T>& g);

}  // namespace detail
}  // namespace fastgru
