// onednn_gru: oneDNN's fused GRU primitive at one benchmark configuration, the anchor that
// bench/compare.py puts beside fastgru. Built only when oneDNN's headers and library are found
// (the pip wheels onednn-cpu-gomp + onednn-devel-cpu-gomp; see bench/README.md).
//   onednn_gru B T I H ITERS [bf16]   (threads: OMP_NUM_THREADS, this build of oneDNN uses OpenMP)
// Cell: lbr_gru (linear-before-reset, the reset-after GRU of torch.nn.GRU), one layer,
// unidirectional, float32, h0 = 0 (given, as its gradient dh0 is wanted), h_n produced. With
// bf16: oneDNN's bfloat16 configuration (layer and iteration data and weights in bfloat16, the
// bias in float32; the gradients in float32 where oneDNN accepts that, else the data gradients
// in bfloat16 and the weight and bias gradients in float32). Measured:
//   - infer: forward_inference.
//   - train: forward_training (keeps the workspace) + backward (dx, dh0 and every weight
//     gradient, accumulated as oneDNN does); no optimizer, the work of fastgru's forward +
//     backward.
// Weights are reordered into the layouts the primitives ask for once, before timing (a
// framework keeping them in those layouts pays this once). First the forward output is
// checked against a naive double-precision lbr GRU at a few steps (exit 1 on mismatch; bf16:
// to a bfloat16 tolerance).
// Prints one JSON object: median seconds, iterations, the training workspace and the growth of
// the peak resident set over the first training steps (as bench/compare.py measures the others).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kWarmup = 2;
constexpr int kMemorySteps = 3;
constexpr long kCheckSteps = 5;

// A field of /proc/self/status in KiB (VmRSS, VmHWM); -1 where there is none.
long status_kib(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.compare(0, key.size(), key) == 0) return std::atol(line.c_str() + key.size());
  return -1;
}

bool reset_peak_rss() {  // VmHWM := VmRSS
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return static_cast<bool>(f);
}

double median_seconds(const std::function<void()>& f, int iters) {
  for (int i = 0; i < kWarmup; ++i) f();
  std::vector<double> t(iters);
  for (double& s : t) {
    const auto start = Clock::now();
    f();
    s = std::chrono::duration<double>(Clock::now() - start).count();
  }
  std::sort(t.begin(), t.end());
  return iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
}

std::vector<float> random_vector(size_t n, float bound, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-bound, bound);
  std::vector<float> v(n);
  for (float& e : v) e = dist(rng);
  return v;
}

memory user_memory(const engine& eng, const memory::dims& dims, tag format, std::vector<float>& data) {
  return memory({dims, dt::f32, format}, eng, data.data());
}

// src in the primitive's layout and data type `want` (a reorder when they differ; oneDNN's
// reorders convert float32 to bfloat16 and back).
memory as_layout(const memory& src, const memory::desc& want, const engine& eng, stream& s) {
  if (src.get_desc() == want) return src;
  memory dst(want, eng);
  reorder(src, dst).execute(s, const_cast<memory&>(src), dst);
  s.wait();
  return dst;
}

// Naive lbr GRU forward, oneDNN's gate order (u, r, o) and layouts: w_l (I, 3, H),
// w_i (H, 3, H), bias (4, H) = b_u, b_r, b_o, b_o' (the recurrent bias of o). x (T, N, I).
// Returns y (T, N, H) from h0 = 0.
std::vector<double> naive_lbr_gru(long T, long N, long I, long H, const std::vector<float>& x,
                                  const std::vector<float>& w_l, const std::vector<float>& w_i,
                                  const std::vector<float>& bias) {
  std::vector<double> h(N * H, 0), y(T * N * H), gl(3 * H), gi(3 * H);
  for (long t = 0; t < T; ++t) {
    std::vector<double> h_new(N * H);
    for (long n = 0; n < N; ++n) {
      for (long g = 0; g < 3; ++g)
        for (long o = 0; o < H; ++o) {
          double a = 0, b = 0;
          for (long i = 0; i < I; ++i) a += double(w_l[(i * 3 + g) * H + o]) * x[(t * N + n) * I + i];
          for (long i = 0; i < H; ++i) b += double(w_i[(i * 3 + g) * H + o]) * h[n * H + i];
          gl[g * H + o] = a;
          gi[g * H + o] = b;
        }
      for (long o = 0; o < H; ++o) {
        const double u = 1 / (1 + std::exp(-(gl[o] + gi[o] + bias[o])));
        const double r = 1 / (1 + std::exp(-(gl[H + o] + gi[H + o] + bias[H + o])));
        const double c = std::tanh(gl[2 * H + o] + bias[2 * H + o] + r * (gi[2 * H + o] + bias[3 * H + o]));
        h_new[n * H + o] = u * h[n * H + o] + (1 - u) * c;
        y[(t * N + n) * H + o] = h_new[n * H + o];
      }
    }
    h = h_new;
  }
  return y;
}

// A memory of the primitive's, zeroed (all-zero bits are 0 in float32 and bfloat16 alike).
memory zeros(const memory::desc& desc, const engine& eng) {
  memory m(desc, eng);
  std::memset(m.get_data_handle(), 0, desc.get_size());
  return m;
}

struct Gru {
  long T, N, I, H;
  dt data = dt::f32;  // layer and iteration data and weights (bf16: dt::bf16); the bias stays f32
  engine eng{engine::kind::cpu, 0};
  stream s{eng};
  std::mt19937 rng{2024};
  std::vector<float> x, w_l, w_i, bias, dy;

  Gru(long T_, long N_, long I_, long H_, dt data_) : T(T_), N(N_), I(I_), H(H_), data(data_) {
    const float bound = 1 / std::sqrt(float(H));
    x = random_vector(T * N * I, 1, rng);
    dy = random_vector(T * N * H, 1, rng);
    w_l = random_vector(I * 3 * H, bound, rng);
    w_i = random_vector(H * 3 * H, bound, rng);
    bias = random_vector(4 * H, bound, rng);
  }

  memory::desc md(const memory::dims& dims, tag format = tag::any, dt type = dt::undef) const {
    return {dims, type == dt::undef ? data : type, format};
  }
  memory::dims layer_dims(long C) const { return {T, N, C}; }
  memory::dims iter_dims() const { return {1, 1, N, H}; }
  memory::dims wl_dims() const { return {1, 1, I, 3, H}; }
  memory::dims wi_dims() const { return {1, 1, H, 3, H}; }
  memory::dims bias_dims() const { return {1, 1, 4, H}; }

  lbr_gru_forward::primitive_desc forward_pd(prop_kind kind) const {
    return lbr_gru_forward::primitive_desc(eng, kind, rnn_direction::unidirectional_left2right,
                                           md(layer_dims(I), tag::tnc), md(iter_dims(), tag::ldnc), md(wl_dims()),
                                           md(wi_dims()), md(bias_dims(), tag::ldgo, dt::f32),
                                           md(layer_dims(H), tag::tnc), md(iter_dims(), tag::ldnc));
  }

  // diff_data: the data gradients' type; the weight and bias gradients are float32.
  lbr_gru_backward::primitive_desc backward_pd(const lbr_gru_forward::primitive_desc& fwd, dt diff_data) const {
    return lbr_gru_backward::primitive_desc(
        eng, prop_kind::backward, rnn_direction::unidirectional_left2right, md(layer_dims(I), tag::tnc),
        md(iter_dims(), tag::ldnc), md(wl_dims()), md(wi_dims()), md(bias_dims(), tag::ldgo, dt::f32),
        md(layer_dims(H), tag::tnc), md(iter_dims(), tag::ldnc), md(layer_dims(I), tag::tnc, diff_data),
        md(iter_dims(), tag::ldnc, diff_data), md(wl_dims(), tag::any, dt::f32), md(wi_dims(), tag::any, dt::f32),
        md(bias_dims(), tag::ldgo, dt::f32), md(layer_dims(H), tag::tnc, diff_data),
        md(iter_dims(), tag::ldnc, diff_data), fwd);
  }

  // float32 gradients where oneDNN takes them (always with float32 data), else bfloat16 ones.
  lbr_gru_backward::primitive_desc backward_pd(const lbr_gru_forward::primitive_desc& fwd) const {
    try {
      return backward_pd(fwd, dt::f32);
    } catch (const dnnl::error&) {
      if (data == dt::f32) throw;
      return backward_pd(fwd, data);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const bool bf16 = argc == 7 && std::string(argv[6]) == "bf16";
  if (argc != 6 && !bf16) {
    std::fprintf(stderr, "usage: onednn_gru B T I H ITERS [bf16]   (threads: OMP_NUM_THREADS)\n");
    return 2;
  }
  const dt data = bf16 ? dt::bf16 : dt::f32;
  // bfloat16 operands carry 8 significant bits: outputs within a few units of 2^-8.
  const double tolerance = bf16 ? 3e-2 : 1e-4;
  const long N = std::atol(argv[1]), T = std::atol(argv[2]), I = std::atol(argv[3]), H = std::atol(argv[4]);
  const int iters = std::atoi(argv[5]);
  if (N < 1 || T < 1 || I < 1 || H < 1 || iters < 1) {
    std::fprintf(stderr, "onednn_gru: B, T, I, H and ITERS must be >= 1\n");
    return 2;
  }

  // Check: forward_inference at a few steps against the naive GRU.
  double check_error = 0;
  {
    Gru g(std::min(T, kCheckSteps), N, I, H, data);
    auto pd = g.forward_pd(prop_kind::forward_inference);
    memory x = as_layout(user_memory(g.eng, g.layer_dims(I), tag::tnc, g.x), pd.src_layer_desc(), g.eng, g.s);
    memory w_l = as_layout(user_memory(g.eng, g.wl_dims(), tag::ldigo, g.w_l), pd.weights_layer_desc(), g.eng, g.s);
    memory w_i = as_layout(user_memory(g.eng, g.wi_dims(), tag::ldigo, g.w_i), pd.weights_iter_desc(), g.eng, g.s);
    memory bias = user_memory(g.eng, g.bias_dims(), tag::ldgo, g.bias);
    memory h0 = zeros(pd.src_iter_desc(), g.eng);
    memory y(pd.dst_layer_desc(), g.eng), h_n(pd.dst_iter_desc(), g.eng);
    lbr_gru_forward(pd).execute(g.s, {{DNNL_ARG_SRC_LAYER, x},
                                      {DNNL_ARG_SRC_ITER, h0},
                                      {DNNL_ARG_WEIGHTS_LAYER, w_l},
                                      {DNNL_ARG_WEIGHTS_ITER, w_i},
                                      {DNNL_ARG_BIAS, bias},
                                      {DNNL_ARG_DST_LAYER, y},
                                      {DNNL_ARG_DST_ITER, h_n}});
    g.s.wait();
    std::vector<float> y_data(g.T * N * H);
    memory y_user = user_memory(g.eng, g.layer_dims(H), tag::tnc, y_data);
    reorder(y, y_user).execute(g.s, y, y_user);
    g.s.wait();
    const std::vector<double> want = naive_lbr_gru(g.T, N, I, H, g.x, g.w_l, g.w_i, g.bias);
    for (size_t k = 0; k < want.size(); ++k) check_error = std::max(check_error, std::fabs(y_data[k] - want[k]));
    if (!(check_error < tolerance)) {
      std::fprintf(stderr, "onednn_gru: forward differs from the naive GRU by %g; not timing\n", check_error);
      return 1;
    }
  }

  Gru g(T, N, I, H, data);
  auto fwd_train_pd = g.forward_pd(prop_kind::forward_training);
  auto fwd_infer_pd = g.forward_pd(prop_kind::forward_inference);
  auto bwd_pd = g.backward_pd(fwd_train_pd);

  memory x = as_layout(user_memory(g.eng, g.layer_dims(I), tag::tnc, g.x), fwd_train_pd.src_layer_desc(), g.eng, g.s);
  memory user_wl = user_memory(g.eng, g.wl_dims(), tag::ldigo, g.w_l);
  memory user_wi = user_memory(g.eng, g.wi_dims(), tag::ldigo, g.w_i);
  memory bias = user_memory(g.eng, g.bias_dims(), tag::ldgo, g.bias);
  memory fwd_wl = as_layout(user_wl, fwd_train_pd.weights_layer_desc(), g.eng, g.s);
  memory fwd_wi = as_layout(user_wi, fwd_train_pd.weights_iter_desc(), g.eng, g.s);
  memory inf_wl = as_layout(user_wl, fwd_infer_pd.weights_layer_desc(), g.eng, g.s);
  memory inf_wi = as_layout(user_wi, fwd_infer_pd.weights_iter_desc(), g.eng, g.s);
  memory bwd_wl = as_layout(user_wl, bwd_pd.weights_layer_desc(), g.eng, g.s);
  memory bwd_wi = as_layout(user_wi, bwd_pd.weights_iter_desc(), g.eng, g.s);
  memory y(fwd_train_pd.dst_layer_desc(), g.eng), h_n(fwd_train_pd.dst_iter_desc(), g.eng);
  memory workspace(fwd_train_pd.workspace_desc(), g.eng);
  memory dy = as_layout(user_memory(g.eng, g.layer_dims(H), tag::tnc, g.dy), bwd_pd.diff_dst_layer_desc(), g.eng, g.s);
  // Inputs and accumulators start at zero.
  memory h0 = zeros(fwd_train_pd.src_iter_desc(), g.eng), dh_n = zeros(bwd_pd.diff_dst_iter_desc(), g.eng);
  memory dwl = zeros(bwd_pd.diff_weights_layer_desc(), g.eng), dwi = zeros(bwd_pd.diff_weights_iter_desc(), g.eng),
         dbias = zeros(bwd_pd.diff_bias_desc(), g.eng);
  memory dx(bwd_pd.diff_src_layer_desc(), g.eng), dh0(bwd_pd.diff_src_iter_desc(), g.eng);
  lbr_gru_forward fwd_train(fwd_train_pd), fwd_infer(fwd_infer_pd);
  lbr_gru_backward bwd(bwd_pd);

  auto infer = [&] {
    fwd_infer.execute(g.s, {{DNNL_ARG_SRC_LAYER, x},
                            {DNNL_ARG_SRC_ITER, h0},
                            {DNNL_ARG_WEIGHTS_LAYER, inf_wl},
                            {DNNL_ARG_WEIGHTS_ITER, inf_wi},
                            {DNNL_ARG_BIAS, bias},
                            {DNNL_ARG_DST_LAYER, y},
                            {DNNL_ARG_DST_ITER, h_n}});
    g.s.wait();
  };
  auto train = [&] {
    fwd_train.execute(g.s, {{DNNL_ARG_SRC_LAYER, x},
                            {DNNL_ARG_SRC_ITER, h0},
                            {DNNL_ARG_WEIGHTS_LAYER, fwd_wl},
                            {DNNL_ARG_WEIGHTS_ITER, fwd_wi},
                            {DNNL_ARG_BIAS, bias},
                            {DNNL_ARG_DST_LAYER, y},
                            {DNNL_ARG_DST_ITER, h_n},
                            {DNNL_ARG_WORKSPACE, workspace}});
    bwd.execute(g.s, {{DNNL_ARG_SRC_LAYER, x},
                      {DNNL_ARG_SRC_ITER, h0},
                      {DNNL_ARG_WEIGHTS_LAYER, bwd_wl},
                      {DNNL_ARG_WEIGHTS_ITER, bwd_wi},
                      {DNNL_ARG_BIAS, bias},
                      {DNNL_ARG_DST_LAYER, y},
                      {DNNL_ARG_DST_ITER, h_n},
                      {DNNL_ARG_WORKSPACE, workspace},
                      {DNNL_ARG_DIFF_DST_LAYER, dy},
                      {DNNL_ARG_DIFF_DST_ITER, dh_n},
                      {DNNL_ARG_DIFF_SRC_LAYER, dx},
                      {DNNL_ARG_DIFF_SRC_ITER, dh0},
                      {DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl},
                      {DNNL_ARG_DIFF_WEIGHTS_ITER, dwi},
                      {DNNL_ARG_DIFF_BIAS, dbias}});
    g.s.wait();
  };

  // Peak memory first, from untouched buffers, as for the other systems.
  double rss_mib = -1;
  if (reset_peak_rss()) {
    const long before = status_kib("VmRSS");
    for (int i = 0; i < kMemorySteps; ++i) train();
    rss_mib = (status_kib("VmHWM") - before) / 1024.0;
  }
  const double train_s = median_seconds(train, iters);
  const double infer_s = median_seconds(infer, iters);
  std::printf(
      "{\"train\": %.9g, \"infer\": %.9g, \"iters\": %d, \"workspace_mib\": %.3f, "
      "\"peak_rss_mib\": %.3f, \"check_error\": %.3g, \"data\": \"%s\", \"data_gradients\": \"%s\", "
      "\"version\": \"%d.%d.%d\"}\n",
      train_s, infer_s, iters, fwd_train_pd.workspace_desc().get_size() / 1048576.0, rss_mib, check_error,
      bf16 ? "bf16" : "f32", bwd_pd.diff_src_layer_desc().get_data_type() == dt::f32 ? "f32" : "bf16",
      dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch);
  return 0;
}
