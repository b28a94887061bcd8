// gru_forward / gru_backward against independent truths, on every instruction set available:
// - the naive double-precision GRU (naive_gru.h) for one layer, one direction, reset_after,
//   in float32 and float64, at shapes that exercise partial unit blocks and tiny dimensions;
// - central finite differences of the float64 forward for everything the naive GRU lacks:
//   reset_before, bidirectional, stacked layers, no bias, variable lengths, dropout multipliers.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastgru/gru.h"
#include "naive_gru.h"

using namespace fastgru;
using namespace fastgru_test;

namespace {

struct Shape {
  size_t T, B, I, H;
};

const ParamTensor& param(const std::vector<ParamTensor>& layout, const std::string& name) {
  for (const ParamTensor& p : layout)
    if (p.name == name) return p;
  throw std::runtime_error("no parameter " + name);
}

template <class T>
void check_against_naive(const Shape& s, const std::string& isa, Checker& check) {
  GruConfig cfg;
  cfg.input_size = s.I;
  cfg.hidden_size = s.H;
  const auto layout = gru_param_layout(cfg);
  const std::vector<T> params = random_vector<T>(gru_param_count(cfg), 1 / std::sqrt(double(s.H)));
  const std::vector<T> x = random_vector<T>(s.T * s.B * s.I), h0 = random_vector<T>(s.B * s.H);
  const std::vector<T> dy = random_vector<T>(s.T * s.B * s.H), dh_n = random_vector<T>(s.B * s.H);
  auto widen = [](const T* p, size_t n) { return std::vector<double>(p, p + n); };
  auto view = [&](const char* name) {
    const ParamTensor& p = param(layout, name);
    return widen(params.data() + p.offset, p.size());
  };
  const NaiveWeights w{view("weight_ih_l0"), view("weight_hh_l0"), view("bias_ih_l0"), view("bias_hh_l0")};
  std::vector<double> y_ref, hn_ref, dx_ref, dh0_ref;
  NaiveTrace trace;
  NaiveWeights g_ref;
  const std::vector<double> xd = widen(x.data(), x.size());
  naive_forward(w, s.T, s.B, s.I, s.H, xd, widen(h0.data(), h0.size()), y_ref, hn_ref, trace);
  naive_backward(w, s.T, s.B, s.I, s.H, xd, trace, widen(dy.data(), dy.size()),
                 widen(dh_n.data(), dh_n.size()), dx_ref, dh0_ref, g_ref);

  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-11;
  const std::string at = isa + (sizeof(T) == 4 ? " f32 " : " f64 ") + "T=" + std::to_string(s.T) +
                         " B=" + std::to_string(s.B) + " I=" + std::to_string(s.I) + " H=" +
                         std::to_string(s.H) + ": ";
  std::vector<T> y(s.T * s.B * s.H), h_n(s.B * s.H), dx(s.T * s.B * s.I), dh0(s.B * s.H);
  std::vector<T> grad(params.size(), T(0));
  gru_forward<T>(cfg, params.data(), s.T, s.B, x.data(), h0.data(), nullptr, nullptr, y.data(),
                 h_n.data(), nullptr);
  check.close(at + "y (inference)", y, y_ref, tol);
  check.close(at + "h_n (inference)", h_n, hn_ref, tol);
  std::vector<T> workspace(gru_workspace_size(cfg, s.T, s.B));
  gru_forward<T>(cfg, params.data(), s.T, s.B, x.data(), h0.data(), nullptr, nullptr, y.data(),
                 h_n.data(), workspace.data());
  const GruCache<T> cache{s.T, s.B, nullptr, nullptr, workspace.data()};
  check.close(at + "y (training)", y, y_ref, tol);
  gru_backward<T>(cfg, params.data(), cache, dy.data(), dh_n.data(), dx.data(), dh0.data(), grad.data());
  check.close(at + "dx", dx, dx_ref, tol);
  check.close(at + "dh0", dh0, dh0_ref, tol);
  const std::vector<double>* want[] = {&g_ref.w_ih, &g_ref.w_hh, &g_ref.b_ih, &g_ref.b_hh};
  const char* names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
  for (int i = 0; i < 4; ++i)
    check.close(at + "d " + names[i], grad.data() + param(layout, names[i]).offset, want[i]->data(),
                want[i]->size(), tol);
}

struct FdCase {
  const char* name;
  GruConfig cfg;
  size_t T, B;
  bool lengths, dropout;
};

// Loss = sum(y * wy) + sum(h_n * wh): its gradients are what backward computes from dy = wy,
// dh_n = wh. Each is compared to (loss(v + e) - loss(v - e)) / 2e for every parameter, input and
// initial-state element.
void check_finite_differences(const FdCase& c, const std::string& isa, Checker& check) {
  const GruConfig& cfg = c.cfg;
  const size_t T = c.T, B = c.B, LD = cfg.num_layers * cfg.directions(), H = cfg.hidden_size;
  const size_t out = T * B * cfg.directions() * H;
  std::vector<double> params = random_vector<double>(gru_param_count(cfg), 0.5);
  std::vector<double> x = random_vector<double>(T * B * cfg.input_size), h0 = random_vector<double>(LD * B * H);
  const std::vector<double> wy = random_vector<double>(out), wh = random_vector<double>(LD * B * H);
  std::vector<int64_t> lengths(B, static_cast<int64_t>(T));
  if (c.lengths)
    for (size_t b = 0; b < B; ++b) lengths[b] = static_cast<int64_t>(1 + b % T);
  std::vector<double> dropout;
  if (c.dropout)
    for (size_t i = 0; i < (cfg.num_layers - 1) * out; ++i) dropout.push_back(i % 3 ? 1.5 : 0.0);
  const int64_t* lens = c.lengths ? lengths.data() : nullptr;
  const double* drop = c.dropout ? dropout.data() : nullptr;

  std::vector<double> y(out), h_n(LD * B * H);
  auto loss = [&]() {
    gru_forward<double>(cfg, params.data(), T, B, x.data(), h0.data(), lens, drop, y.data(), h_n.data(), nullptr);
    double sum = 0;
    for (size_t i = 0; i < out; ++i) sum += y[i] * wy[i];
    for (size_t i = 0; i < h_n.size(); ++i) sum += h_n[i] * wh[i];
    return sum;
  };
  std::vector<double> workspace(gru_workspace_size(cfg, T, B));
  gru_forward<double>(cfg, params.data(), T, B, x.data(), h0.data(), lens, drop, y.data(), h_n.data(),
                      workspace.data());
  const GruCache<double> cache{T, B, lens, drop, workspace.data()};
  std::vector<double> grad(params.size(), 0.0), dx(x.size()), dh0(h0.size());
  gru_backward<double>(cfg, params.data(), cache, wy.data(), wh.data(), dx.data(), dh0.data(), grad.data());

  // At most ~200 evenly spaced elements of each: enough to reach every tensor and gate.
  auto compare = [&](const std::string& what, const std::vector<double>& analytic, std::vector<double>& v) {
    const size_t stride = v.size() / 200 + 1;
    std::vector<double> got, want;
    const double e = 1e-6;
    for (size_t i = 0; i < v.size(); i += stride) {
      const double keep = v[i];
      v[i] = keep + e;
      const double up = loss();
      v[i] = keep - e;
      const double down = loss();
      v[i] = keep;
      want.push_back((up - down) / (2 * e));
      got.push_back(analytic[i]);
    }
    check.close(isa + " " + c.name + ": " + what, got, want, 1e-6);
  };
  compare("d params", grad, params);
  compare("dx", dx, x);
  compare("dh0", dh0, h0);
}

GruConfig config(size_t I, size_t H, size_t L, bool bidirectional, bool bias, bool reset_after) {
  GruConfig cfg;
  cfg.input_size = I;
  cfg.hidden_size = H;
  cfg.num_layers = L;
  cfg.bidirectional = bidirectional;
  cfg.bias = bias;
  cfg.reset_after = reset_after;
  return cfg;
}

}  // namespace

int main() {
  Checker check;
  const Shape shapes[] = {{1, 1, 1, 1}, {5, 3, 4, 7}, {4, 2, 3, 33}, {3, 5, 17, 64}, {2, 1, 1, 100}};
  const FdCase fd_cases[] = {
      {"reset_before", config(3, 5, 1, false, true, false), 4, 2, false, false},
      {"bidirectional 2 layers, lengths", config(2, 4, 2, true, true, true), 3, 3, true, false},
      {"no bias, reset_before, 2 layers, dropout", config(3, 6, 2, false, false, false), 3, 2, false, true},
      {"bidirectional reset_before, partial unit block, lengths, dropout", config(2, 35, 2, true, true, false), 3, 2, true, true},
  };
  for_each_isa([&](const std::string& isa) {
    for (const Shape& s : shapes) {
      check_against_naive<float>(s, isa, check);
      check_against_naive<double>(s, isa, check);
    }
    for (const FdCase& c : fd_cases) check_finite_differences(c, isa, check);
  });
  return check.report("test_gru");
}
