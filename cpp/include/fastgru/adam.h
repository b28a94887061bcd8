// Adam / AdamW in one fused pass over flat parameter, gradient and moment buffers,
// numerically the update of torch.optim.Adam / AdamW (reference: python/fastgru/reference/adam.py).
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgru {

struct AdamConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled_weight_decay = false;  // AdamW
  bool amsgrad = false;
};

// Adam/AdamW state of a flat buffer of n parameters: views of caller-owned moment buffers
// (n each, zeros before the first step) and the number of steps taken.
template <class T>
struct AdamState {
  T* exp_avg = nullptr;
  T* exp_avg_sq = nullptr;
  T* max_exp_avg_sq = nullptr;  // amsgrad only
  int64_t step = 0;             // Model::apply_gradients counts the steps it takes
};

// One update of n parameters in place. step counts from 1 (the step being taken).
// max_exp_avg_sq is used (and must be non-null) only with amsgrad. The update sees
// grad * grad_scale (gradient clipping folded into the pass, as llm.c's AdamW), so grad itself
// is left as it is.
template <class T>
void adam_step(const AdamConfig& cfg, size_t n, T* params, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               int64_t step, T grad_scale = T(1));

// The L2 norm of x (n,), summed in double over fixed blocks in a fixed order: the same value
// for any thread count, and no overflow for float32 gradients. NaN/inf when x holds one.
template <class T>
double global_norm(size_t n, const T* x);

// The factor that scales a gradient of norm `norm` to norm <= max_norm, as
// torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6) when that is below 1, else 1.
double clip_scale(double norm, double max_norm);

}  // namespace fastgru
