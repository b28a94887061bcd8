// Elementwise gate math of one GRU time step, for one batch row and one block of hidden
// units. The recurrence (gru_direction.cpp) keeps gate pre-activations in a blocked layout
// [block][gate r,z,n][kGateBlock] so that one thread owns all three gates of its units;
// these kernels are compiled once per instruction set (isa_*.cpp).
// Reference: python/fastgru/reference/gru.py.
#pragma once
#include <cstddef>

namespace fastgru {
namespace detail {

constexpr size_t kGateBlock = 32;  // hidden units per block
// Per step and unit the training cache keeps r, z, n and the n-gate's recurrent term
// (reset-after: W_hn h + b_hn; reset-before: r * h), the minimal set backward needs.
constexpr size_t kCacheGates = 4;

// Arguments are per row and block; n <= kGateBlock units are valid.
//   gx, bih, bhh, gh: [3][kGateBlock] (gx = W_i* x, gh = W_h* h, both without bias)
//   y: a second destination of h_out (the layer's output row) or nullptr
//   cache: [kCacheGates][kGateBlock] or nullptr (inference)
template <class T>
struct CellKernels {
  // Reset-after step: h_out = (1-z) n + z h, n = tanh(gx_n + b_in + r (gh_n + b_hn)).
  void (*forward_after)(size_t n, const T* gx, const T* gh, const T* bih, const T* bhh, const T* h, T* h_out, T* y,
                        T* cache);
  // Reset-before, first half: r, z into rz [2][kGateBlock]; rh[u] = r h (input of W_hn).
  void (*forward_before_rz)(size_t n, const T* gx, const T* gh, const T* bih, const T* bhh, const T* h, T* rz, T* rh);
  // Reset-before, second half: gh_n = W_hn (r h) at gh[2 * kGateBlock ...].
  void (*forward_before_n)(size_t n, const T* gx, const T* gh, const T* bih, const T* bhh, const T* rz, const T* rh,
                           const T* h, T* h_out, T* y, T* cache);
  // Reset-after backward: from dh (gradient of h_out) to the pre-activation gradients
  // dgx [3][kGateBlock] (also those of b_ih), dgh [3][kGateBlock] (of W_hh h + b_hh), and
  // dh_prev = dh * z, the part of h's gradient that bypasses W_hh.
  void (*backward_after)(size_t n, const T* dh, const T* cache, const T* h, T* dgx, T* dgh, T* dh_prev);
  // Reset-before backward, first half: dgx z- and n-parts, dh_prev = dh * z, and
  // dn_pre [n] = gradient of the n pre-activation (to be multiplied by W_hn).
  void (*backward_before_zn)(size_t n, const T* dh, const T* cache, const T* h, T* dgx, T* dh_prev, T* dn_pre);
  // Reset-before backward, second half: given drh = dn_pre W_hn (gradient of r h), the
  // r-part of dgx, and dh_prev += drh * r.
  void (*backward_before_r)(size_t n, const T* drh, const T* cache, const T* h, T* dgx, T* dh_prev);
};

}  // namespace detail
}  // namespace fastgru
