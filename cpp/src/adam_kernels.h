// The element loop of Adam/AdamW, compiled once per instruction set (adam_kernels.inc).
#pragma once
#include <cstddef>

namespace fastgru {
namespace detail {

template <class T>
struct AdamScalars {
  T grad_scale;  // clipping factor on the gradient, 1 without clipping
  T l2;          // weight decay added to the gradient (Adam), else 0
  T decay;       // factor on the parameters before the update (AdamW: 1 - lr * wd), else 1
  T one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps;
};

template <class T>
struct AdamKernels {
  // Updates elements [0, n) of the buffers in place; max_exp_avg_sq is null without amsgrad.
  void (*update)(size_t n, const AdamScalars<T>& s, T* params, const T* grad, T* exp_avg, T* exp_avg_sq,
                 T* max_exp_avg_sq);
};

}  // namespace detail
}  // namespace fastgru
