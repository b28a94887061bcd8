#include "fastgru/adam.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fastgru/threads.h"
#include "isa.h"

namespace fastgru {

template <class T>
void adam_step(const AdamConfig& cfg, size_t n, T* params, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               int64_t step, T grad_scale) {
  // Scalars in double, as torch computes them in Python.
  const double bias_correction1 = 1.0 - std::pow(cfg.beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(cfg.beta2, static_cast<double>(step));
  const bool decoupled = cfg.decoupled_weight_decay;
  detail::AdamScalars<T> s;
  s.grad_scale = grad_scale;
  s.l2 = static_cast<T>(decoupled ? 0.0 : cfg.weight_decay);
  s.decay = static_cast<T>(decoupled ? 1.0 - cfg.lr * cfg.weight_decay : 1.0);
  s.one_minus_beta1 = static_cast<T>(1.0 - cfg.beta1);
  s.beta2 = static_cast<T>(cfg.beta2);
  s.one_minus_beta2 = static_cast<T>(1.0 - cfg.beta2);
  s.step_size = static_cast<T>(cfg.lr / bias_correction1);
  s.bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  s.eps = static_cast<T>(cfg.eps);
  T* vmax = cfg.amsgrad ? max_exp_avg_sq : nullptr;
  const auto& kernels = detail::kernels<T>().adam;

  parallel_run(
      [&](const Team& team) {
        const Range r = static_range(n, team.tid, team.size, 1024);
        if (r.begin < r.end)
          kernels.update(r.end - r.begin, s, params + r.begin, grad + r.begin, exp_avg + r.begin, exp_avg_sq + r.begin,
                         vmax ? vmax + r.begin : nullptr);
      },
      threads_for(n, 1 << 15));
}

template <class T>
double global_norm(size_t n, const T* x) {
  constexpr size_t kBlock = 4096;  // unit of the deterministic reduction
  const size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
  parallel_run(
      [&](const Team& team) {
        const Range blk = static_range(blocks, team.tid, team.size);
        for (size_t b = blk.begin; b < blk.end; ++b) {
          const size_t end = std::min(n, (b + 1) * kBlock);
          double sum = 0.0;
          for (size_t i = b * kBlock; i < end; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
          partial[b] = sum;
        }
      },
      threads_for(n, 1 << 16));
  double total = 0.0;
  for (double p : partial) total += p;
  return std::sqrt(total);
}

double clip_scale(double norm, double max_norm) {
  const double coef = max_norm / (norm + 1e-6);
  return coef < 1.0 ? coef : 1.0;
}

template void adam_step<float>(const AdamConfig&, size_t, float*, const float*, float*, float*, float*, int64_t, float);
template void adam_step<double>(const AdamConfig&, size_t, double*, const double*, double*, double*, double*, int64_t,
                                double);
template double global_norm<float>(size_t, const float*);
template double global_norm<double>(size_t, const double*);

}  // namespace fastgru
