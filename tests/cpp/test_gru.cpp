// gru_forward / gru_backward against independent truths, on every instruction set available:
// - the naive double-precision GRU (naive_gru.h) for one layer, one direction, reset_after,
//   in float32 and float64, at shapes that exercise partial unit blocks and tiny dimensions;
// - central finite differences of the float64 forward for everything the naive GRU lacks:
//   reset_before, bidirectional, stacked layers, no bias, variable lengths, dropout multipliers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastgru/gru.h"
#include "fastgru/threads.h"
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
  naive_backward(w, s.T, s.B, s.I, s.H, xd, trace, widen(dy.data(), dy.size()), widen(dh_n.data(), dh_n.size()), dx_ref,
                 dh0_ref, g_ref);

  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-11;
  const std::string at = isa + (sizeof(T) == 4 ? " f32 " : " f64 ") + "T=" + std::to_string(s.T) +
                         " B=" + std::to_string(s.B) + " I=" + std::to_string(s.I) + " H=" + std::to_string(s.H) + ": ";
  std::vector<T> y(s.T * s.B * s.H), h_n(s.B * s.H), dx(s.T * s.B * s.I), dh0(s.B * s.H);
  std::vector<T> grad(params.size(), T(0));
  gru_forward<T>(cfg, params.data(), s.T, s.B, x.data(), h0.data(), nullptr, nullptr, y.data(), h_n.data(), nullptr);
  check.close(at + "y (inference)", y, y_ref, tol);
  check.close(at + "h_n (inference)", h_n, hn_ref, tol);
  std::vector<T> workspace(gru_workspace_size(cfg, s.T, s.B));
  gru_forward<T>(cfg, params.data(), s.T, s.B, x.data(), h0.data(), nullptr, nullptr, y.data(), h_n.data(),
                 workspace.data());
  const GruCache<T> cache{s.T, s.B, nullptr, nullptr, workspace.data()};
  check.close(at + "y (training)", y, y_ref, tol);
  gru_backward<T>(cfg, params.data(), cache, dy.data(), dh_n.data(), dx.data(), dh0.data(), grad.data());
  check.close(at + "dx", dx, dx_ref, tol);
  check.close(at + "dh0", dh0, dh0_ref, tol);
  const std::vector<double>* want[] = {&g_ref.w_ih, &g_ref.w_hh, &g_ref.b_ih, &g_ref.b_hh};
  const char* names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
  for (int i = 0; i < 4; ++i)
    check.close(at + "d " + names[i], grad.data() + param(layout, names[i]).offset, want[i]->data(), want[i]->size(),
                tol);
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

  // Without dx (its product skipped): the same parameter gradients and dh0, bit for bit.
  std::vector<double> grad_only(params.size(), 0.0), dh0_only(h0.size());
  gru_backward<double>(cfg, params.data(), cache, wy.data(), wh.data(), nullptr, dh0_only.data(), grad_only.data());
  check.expect(isa + " " + c.name + ": backward without dx gives the same parameter gradients",
               grad_only == grad && dh0_only == dh0);
  // accumulate: added to what grad holds; not: written over it (here NaN: nothing may be read).
  std::vector<double> twice(params.size(), 0.0), written(params.size(), std::nan(""));
  for (int i = 0; i < 2; ++i)
    gru_backward<double>(cfg, params.data(), cache, wy.data(), wh.data(), nullptr, dh0_only.data(), twice.data());
  gru_backward<double>(cfg, params.data(), cache, wy.data(), wh.data(), nullptr, dh0_only.data(), written.data(),
                       /*accumulate=*/false);
  bool doubled = true;
  for (size_t i = 0; i < params.size(); ++i) doubled = doubled && twice[i] == 2 * grad[i];
  check.expect(isa + " " + c.name + ": a second backward adds its gradients", doubled);
  check.expect(isa + " " + c.name + ": accumulate=false writes every gradient", written == grad);
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

// gru_step (the streaming step's row products, gemv_rows) against one step of the naive GRU.
template <class T>
void check_step_against_naive(const std::string& isa, Checker& check) {
  const size_t B = 3, I = 19, H = 37;  // neither a multiple of any vector width
  GruConfig cfg;
  cfg.input_size = I;
  cfg.hidden_size = H;
  const auto layout = gru_param_layout(cfg);
  const std::vector<T> params = random_vector<T>(gru_param_count(cfg), 1 / std::sqrt(double(H)));
  const std::vector<T> x = random_vector<T>(B * I), h = random_vector<T>(B * H);
  auto view = [&](const char* name) {
    const ParamTensor& p = param(layout, name);
    return std::vector<double>(params.begin() + p.offset, params.begin() + p.offset + p.size());
  };
  const NaiveWeights w{view("weight_ih_l0"), view("weight_hh_l0"), view("bias_ih_l0"), view("bias_hh_l0")};
  std::vector<double> y_ref, hn_ref;
  NaiveTrace trace;
  naive_forward(w, 1, B, I, H, std::vector<double>(x.begin(), x.end()), std::vector<double>(h.begin(), h.end()), y_ref,
                hn_ref, trace);
  std::vector<T> h_new(B * H);
  gru_step<T>(cfg, params.data(), B, x.data(), h.data(), h_new.data());
  check.close(isa + (sizeof(T) == 4 ? " f32" : " f64") + " gru_step", h_new, hn_ref, sizeof(T) == 4 ? 1e-5 : 1e-11);
}

// Results bit for bit the same on 1 and 2 threads, and for every batch row whether it runs
// alone, in a part of the batch or in the whole batch (the micro-kernels then see other row
// counts): forward, gradients (threads only: they sum over the batch) and the streaming step.
void check_threads_and_batch_composition(const std::string& isa, Checker& check) {
  const size_t T = 3, B = 13, H = 37;
  const GruConfig cfg = config(19, H, 2, false, true, true);
  const size_t I = cfg.input_size, L = cfg.num_layers;
  const std::vector<float> params = random_vector<float>(gru_param_count(cfg), 0.3);
  const std::vector<float> x = random_vector<float>(T * B * I), h0 = random_vector<float>(L * B * H);
  const std::vector<float> dy = random_vector<float>(T * B * H);
  // Rows [b0, b0 + nb) of x and h0 as a batch of their own; the outputs' rows compared with the whole batch's.
  auto forward = [&](size_t b0, size_t nb, std::vector<float>& y, std::vector<float>& h_n, std::vector<float>& step) {
    std::vector<float> xs(T * nb * I), hs(L * nb * H);
    for (size_t t = 0; t < T; ++t) std::copy_n(x.begin() + (t * B + b0) * I, nb * I, xs.begin() + t * nb * I);
    for (size_t l = 0; l < L; ++l) std::copy_n(h0.begin() + (l * B + b0) * H, nb * H, hs.begin() + l * nb * H);
    y.resize(T * nb * H);
    h_n.resize(L * nb * H);
    step.resize(L * nb * H);
    gru_forward<float>(cfg, params.data(), T, nb, xs.data(), hs.data(), nullptr, nullptr, y.data(), h_n.data(),
                       nullptr);
    gru_step<float>(cfg, params.data(), nb, xs.data(), hs.data(), step.data());
  };
  auto rows_equal = [&](const std::vector<float>& part, const std::vector<float>& whole, size_t b0, size_t nb,
                        size_t blocks) {  // blocks of B rows in whole, of nb rows in part, H values a row
    for (size_t k = 0; k < blocks; ++k)
      if (!std::equal(part.begin() + k * nb * H, part.begin() + (k + 1) * nb * H, whole.begin() + (k * B + b0) * H))
        return false;
    return true;
  };
  const int threads_before = get_num_threads();
  std::vector<float> y, h_n, step, trained[2];
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<float> y_t, h_t, step_t, workspace(gru_workspace_size(cfg, T, B)), y_train(T * B * H);
    std::vector<float> h_train(L * B * H), dx(T * B * I), dh0(L * B * H), grad(params.size(), 0.f);
    forward(0, B, y_t, h_t, step_t);
    gru_forward<float>(cfg, params.data(), T, B, x.data(), h0.data(), nullptr, nullptr, y_train.data(), h_train.data(),
                       workspace.data());
    const GruCache<float> cache{T, B, nullptr, nullptr, workspace.data()};
    gru_backward<float>(cfg, params.data(), cache, dy.data(), nullptr, dx.data(), dh0.data(), grad.data());
    std::vector<float>& all = trained[threads - 1];
    for (const auto* v : {&y_train, &h_train, &dx, &dh0, &grad}) all.insert(all.end(), v->begin(), v->end());
    if (threads == 1) {
      y = y_t, h_n = h_t, step = step_t;
      continue;
    }
    check.expect(isa + " forward, step and training step on 2 threads equal 1 thread's",
                 y_t == y && h_t == h_n && step_t == step && trained[1] == trained[0]);
  }
  set_num_threads(threads_before);
  const struct {
    size_t first, count;
  } parts[] = {{0, 1}, {12, 1}, {3, 6}};
  for (const auto& part : parts) {
    std::vector<float> y_p, h_p, step_p;
    forward(part.first, part.count, y_p, h_p, step_p);
    check.expect(isa + " rows " + std::to_string(part.first) + ".." + std::to_string(part.first + part.count) +
                     " alone equal their rows in the batch",
                 rows_equal(y_p, y, part.first, part.count, T) && rows_equal(h_p, h_n, part.first, part.count, L) &&
                     rows_equal(step_p, step, part.first, part.count, L));
  }
}

}  // namespace

int main() {
  Checker check;
  const Shape shapes[] = {{1, 1, 1, 1}, {5, 3, 4, 7}, {4, 2, 3, 33}, {3, 5, 17, 64}, {2, 1, 1, 100}};
  const FdCase fd_cases[] = {
      {"reset_before", config(3, 5, 1, false, true, false), 4, 2, false, false},
      {"bidirectional 2 layers, lengths", config(2, 4, 2, true, true, true), 3, 3, true, false},
      {"no bias, reset_before, 2 layers, dropout", config(3, 6, 2, false, false, false), 3, 2, false, true},
      {"bidirectional reset_before, partial unit block, lengths, dropout", config(2, 35, 2, true, true, false), 3, 2,
       true, true},
  };
  for_each_isa([&](const std::string& isa) {
    for (const Shape& s : shapes) {
      check_against_naive<float>(s, isa, check);
      check_against_naive<double>(s, isa, check);
    }
    for (const FdCase& c : fd_cases) check_finite_differences(c, isa, check);
    check_step_against_naive<float>(isa, check);
    check_step_against_naive<double>(isa, check);
    check_threads_and_batch_composition(isa, check);
  });
  return check.report("test_gru");
}
