// Naive GRU (double precision), the equations of python/fastgru/reference/gru.py written as
// plain loops: the independent truth the core is held to by the C++ tests (tests/cpp) and by
// bench_gru's self-check. One layer, one direction, reset_after. Weights as in torch.nn.GRU:
// w_ih (3H, I), w_hh (3H, H), b_ih, b_hh (3H), gate rows in the order r, z, n;
// n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

namespace fastgru_test {

struct NaiveWeights {
  std::vector<double> w_ih, w_hh, b_ih, b_hh;
};

struct NaiveTrace {  // per step t, batch row b, unit j: index (t * B + b) * H + j
  std::vector<double> h_prev, r, z, n, gh_n;
};

inline double sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }

// x (T, B, I), h0 (B, H). Writes y (T, B, H), h_n (B, H) and the trace backward needs.
inline void naive_forward(const NaiveWeights& w, size_t T, size_t B, size_t I, size_t H, const std::vector<double>& x,
                          const std::vector<double>& h0, std::vector<double>& y, std::vector<double>& h_n,
                          NaiveTrace& tr) {
  std::vector<double> h = h0, gi(3 * H), gh(3 * H);
  y.assign(T * B * H, 0);
  for (auto* v : {&tr.h_prev, &tr.r, &tr.z, &tr.n, &tr.gh_n}) v->assign(T * B * H, 0);
  for (size_t t = 0; t < T; ++t) {
    std::vector<double> h_new(B * H);
    for (size_t b = 0; b < B; ++b) {
      for (size_t j = 0; j < 3 * H; ++j) {
        gi[j] = w.b_ih[j];
        for (size_t k = 0; k < I; ++k) gi[j] += w.w_ih[j * I + k] * x[(t * B + b) * I + k];
        gh[j] = w.b_hh[j];
        for (size_t k = 0; k < H; ++k) gh[j] += w.w_hh[j * H + k] * h[b * H + k];
      }
      for (size_t j = 0; j < H; ++j) {
        const size_t at = (t * B + b) * H + j;
        const double r = sigmoid(gi[j] + gh[j]);
        const double z = sigmoid(gi[H + j] + gh[H + j]);
        const double n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        h_new[b * H + j] = (1 - z) * n + z * h[b * H + j];
        y[at] = h_new[b * H + j];
        tr.h_prev[at] = h[b * H + j];
        tr.r[at] = r;
        tr.z[at] = z;
        tr.n[at] = n;
        tr.gh_n[at] = gh[2 * H + j];
      }
    }
    h = h_new;
  }
  h_n = h;
}

// dy (T, B, H), dh_n (B, H). Writes dx (T, B, I), dh0 (B, H) and the weight gradients g.
inline void naive_backward(const NaiveWeights& w, size_t T, size_t B, size_t I, size_t H, const std::vector<double>& x,
                           const NaiveTrace& tr, const std::vector<double>& dy, const std::vector<double>& dh_n,
                           std::vector<double>& dx, std::vector<double>& dh0, NaiveWeights& g) {
  g.w_ih.assign(3 * H * I, 0);
  g.w_hh.assign(3 * H * H, 0);
  g.b_ih.assign(3 * H, 0);
  g.b_hh.assign(3 * H, 0);
  dx.assign(T * B * I, 0);
  std::vector<double> dh = dh_n, dgi(3 * H), dgh(3 * H);
  for (size_t t = T; t-- > 0;) {
    std::vector<double> dh_prev(B * H);
    for (size_t b = 0; b < B; ++b) {
      for (size_t j = 0; j < H; ++j) {
        const size_t at = (t * B + b) * H + j;
        const double r = tr.r[at], z = tr.z[at], n = tr.n[at];
        const double d = dh[b * H + j] + dy[at];  // gradient w.r.t. the state after step t
        const double da_n = d * (1 - z) * (1 - n * n);
        const double da_r = da_n * tr.gh_n[at] * r * (1 - r);
        const double da_z = d * (tr.h_prev[at] - n) * z * (1 - z);
        dgi[j] = da_r;
        dgi[H + j] = da_z;
        dgi[2 * H + j] = da_n;
        dgh[j] = da_r;
        dgh[H + j] = da_z;
        dgh[2 * H + j] = da_n * r;
        dh_prev[b * H + j] = d * z;
      }
      for (size_t j = 0; j < 3 * H; ++j) {
        for (size_t k = 0; k < H; ++k) {
          dh_prev[b * H + k] += dgh[j] * w.w_hh[j * H + k];
          g.w_hh[j * H + k] += dgh[j] * tr.h_prev[(t * B + b) * H + k];
        }
        for (size_t k = 0; k < I; ++k) {
          dx[(t * B + b) * I + k] += dgi[j] * w.w_ih[j * I + k];
          g.w_ih[j * I + k] += dgi[j] * x[(t * B + b) * I + k];
        }
        g.b_ih[j] += dgi[j];
        g.b_hh[j] += dgh[j];
      }
    }
    dh = dh_prev;
  }
  dh0 = dh;
}

}  // namespace fastgru_test
