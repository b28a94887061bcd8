// adam_step (Adam, AdamW, AMSGrad; float32 and float64) against a scalar double loop of
// torch.optim.Adam's update, over sizes that leave vector tails, on every instruction set.
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "fastgru/adam.h"

using namespace fastgru;
using namespace fastgru_test;

namespace {

struct State {
  std::vector<double> p, m, v, vmax;
};

// torch.optim.Adam / AdamW (reference: python/fastgru/reference/adam.py), one element at a time.
void scalar_adam(const AdamConfig& c, const std::vector<double>& grad, int64_t step, State& s) {
  const double bc1 = 1 - std::pow(c.beta1, double(step)), bc2 = 1 - std::pow(c.beta2, double(step));
  for (size_t i = 0; i < s.p.size(); ++i) {
    double g = grad[i];
    if (c.decoupled_weight_decay)
      s.p[i] *= 1 - c.lr * c.weight_decay;
    else
      g += c.weight_decay * s.p[i];
    s.m[i] = c.beta1 * s.m[i] + (1 - c.beta1) * g;
    s.v[i] = c.beta2 * s.v[i] + (1 - c.beta2) * g * g;
    double second = s.v[i];
    if (c.amsgrad) second = s.vmax[i] = std::max(s.vmax[i], s.v[i]);
    s.p[i] -= c.lr / bc1 * s.m[i] / (std::sqrt(second / bc2) + c.eps);
  }
}

template <class T>
void check_adam(const AdamConfig& cfg, size_t n, const std::string& what, Checker& check) {
  std::vector<T> p = random_vector<T>(n), m(n, T(0)), v(n, T(0)), vmax(n, T(0));
  State ref{std::vector<double>(p.begin(), p.end()), std::vector<double>(n), std::vector<double>(n),
            std::vector<double>(n)};
  for (int64_t step = 1; step <= 5; ++step) {
    const std::vector<T> g = random_vector<T>(n);
    adam_step<T>(cfg, n, p.data(), g.data(), m.data(), v.data(), cfg.amsgrad ? vmax.data() : nullptr, step);
    scalar_adam(cfg, std::vector<double>(g.begin(), g.end()), step, ref);
  }
  const double tol = sizeof(T) == 4 ? 1e-6 : 1e-13;
  check.close(what + (sizeof(T) == 4 ? " f32" : " f64") + " n=" + std::to_string(n), p, ref.p, tol);
}

}  // namespace

int main() {
  Checker check;
  AdamConfig adam, adamw, amsgrad, coupled;
  adam.lr = 1e-2;
  adamw.lr = 1e-2, adamw.weight_decay = 0.1, adamw.decoupled_weight_decay = true;
  amsgrad.lr = 1e-2, amsgrad.amsgrad = true;
  coupled.lr = 1e-2, coupled.weight_decay = 0.05;
  for_each_isa([&](const std::string& isa) {
    for (size_t n : {1, 7, 16, 1037, 70001}) {
      for (auto [cfg, name] : {std::pair{adam, "adam"}, std::pair{adamw, "adamw"}, std::pair{amsgrad, "amsgrad"},
                               std::pair{coupled, "adam+l2"}}) {
        check_adam<float>(cfg, n, isa + " " + name, check);
        check_adam<double>(cfg, n, isa + " " + name, check);
      }
    }
  });
  return check.report("test_adam");
}
