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

// One update of n parameters in place. step counts from 1 (the step being taken).
// max_exp_avg_sq is used (and must be non-null) only with amsgrad.
template <class T>
void adam_step(const AdamConfig& cfg, size_t n, T* params, const T* grad, T* exp_avg,
               T* exp_avg_sq, T* max_exp_avg_sq, int64_t step);

}  // namespace fastgru
