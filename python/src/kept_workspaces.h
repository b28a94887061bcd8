// Training forwards whose workspace waits for its backward under a token, for frameworks that
// cannot carry the workspace from forward to backward themselves at no cost: JAX (fastgru.jax's
// XLA calls) and TensorFlow (fastgru._host's numpy_function calls).
//
// Handing the workspace to the framework as an output costs more than the GRU: XLA allocates a
// fresh buffer for it at every step (tens of megabytes at typical sizes: every 4 KiB page then
// faults on first touch; measured at medium size, 134 against 78 ms per forward and backward),
// and a callback's outputs are copied besides. So the workspace stays here, and the framework
// carries an int32 token. Frameworks may merge identical calls, call a backward twice or never:
// the backward gets the forward's inputs too, and when its workspace is gone (used or dropped)
// it runs the forward again. At most kMaxKeptBytes wait for their backward (the oldest go
// first); a workspace whose backward has run goes to a short free list for the next forward.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fastgru/gru.h"

namespace fastgru_bindings {

constexpr size_t kMaxKeptBytes = size_t(1) << 30;

// gru_forward in training mode: writes y and h_n, keeps the workspace, returns its token (>= 1).
template <class T>
int32_t gru_forward_keeping(const fastgru::GruConfig& cfg, const T* params, size_t steps, size_t batch, const T* x,
                            const T* h0, const int64_t* lengths, T* y, T* h_n);

// gru_backward of the forward that returned token, given that forward's inputs (params, x, h0,
// lengths), x batch-major (B, T, I): it is read only to run the forward again, so the usual
// backward transposes nothing. grad is overwritten, not added to. Drops the workspace.
template <class T>
void gru_backward_kept(const fastgru::GruConfig& cfg, int32_t token, const T* params, size_t steps, size_t batch,
                       const T* x_batch_major, const T* h0, const int64_t* lengths, const T* dy, const T* dh_n, T* dx,
                       T* dh0, T* grad);

// Workspaces waiting for their backward, on the free list, and how many backwards so far found
// theirs gone and ran the forward again (for tests and diagnosis).
size_t kept_workspace_count();
size_t free_workspace_count();
size_t forwards_run_again();

}  // namespace fastgru_bindings
