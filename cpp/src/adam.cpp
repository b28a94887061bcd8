#include "fastgru/adam.h"

#include <cmath>

#include "fastgru/threads.h"

namespace fastgru {

template <class T>
void adam_step(const AdamConfig& cfg, size_t n, T* params, const T* grad, T* exp_avg,
               T* exp_avg_sq, T* max_exp_avg_sq, int64_t step) {
  // Scalars in double, as torch computes them in Python.
  const double bias_correction1 = 1.0 - std::pow(cfg.beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(cfg.beta2, static_cast<double>(step));
  const T step_size = static_cast<T>(cfg.lr / bias_correction1);
  const T bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T b1 = static_cast<T>(1.0 - cfg.beta1), b2 = static_cast<T>(cfg.beta2);
  const T one_minus_b2 = static_cast<T>(1.0 - cfg.beta2), eps = static_cast<T>(cfg.eps);
  const T wd = static_cast<T>(cfg.weight_decay);
  const T decay = static_cast<T>(1.0 - cfg.lr * cfg.weight_decay);
  const bool l2 = cfg.weight_decay != 0.0 && !cfg.decoupled_weight_decay;
  const bool decoupled = cfg.weight_decay != 0.0 && cfg.decoupled_weight_decay;

  parallel_run([&](const Team& team) {
    const Range r = static_range(n, team.tid, team.size, 1024);
    for (size_t i = r.begin; i < r.end; ++i) {
      T p = params[i];
      T g = l2 ? grad[i] + wd * p : grad[i];
      if (decoupled) p *= decay;
      T m = exp_avg[i] + b1 * (g - exp_avg[i]);  // torch's lerp(m, g, 1 - beta1)
      T v = exp_avg_sq[i] * b2 + one_minus_b2 * g * g;
      T v_hat = v;
      if (cfg.amsgrad) {
        v_hat = max_exp_avg_sq[i] > v ? max_exp_avg_sq[i] : v;
        max_exp_avg_sq[i] = v_hat;
      }
      T denom = std::sqrt(v_hat) / bc2_sqrt + eps;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      params[i] = p - step_size * (m / denom);
    }
  }, threads_for(n, 1 << 15));
}

template void adam_step<float>(const AdamConfig&, size_t, float*, const float*, float*, float*,
                               float*, int64_t);
template void adam_step<double>(const AdamConfig&, size_t, double*, const double*, double*,
                                double*, double*, int64_t);

}  // namespace fastgru
