// The reduced-precision paths on every instruction set (and, cross-compiled, on aarch64 under
// qemu, where the Python tests do not run): rounding to bfloat16 against the rule written out
// bit by bit here, products with bfloat16 operands against a double-precision product of the
// rounded operands, and the int8 step and forward against the int8 specification written out.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "fastgru/gemm.h"
#include "fastgru/gru.h"
#include "fastgru/threads.h"
#include "naive_gru.h"

using namespace fastgru;
using namespace fastgru_test;

namespace {

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// Round to nearest, ties to even, written out with integer arithmetic on the dropped half.
float expected_bfloat16(float x) {
  const uint32_t bits = to_bits(x);
  if (std::isnan(x)) return x;
  uint32_t kept = bits >> 16;
  const uint32_t dropped = bits & 0xFFFFu;
  if (dropped > 0x8000u || (dropped == 0x8000u && (kept & 1u))) ++kept;
  return from_bits(kept << 16);
}

void check_rounding(const std::string& isa, Checker& check) {
  std::vector<float> x = random_vector<float>(1000, 1e3);
  for (uint32_t bits : {0x3F808000u, 0x3F818000u, 0x3F808001u, 0x7F7FFFFFu, 0x00008000u, 0x80000000u, 0x7F800000u,
                        0xFF800000u, 0x7F800001u, 0xFFFFFFFFu})
    x.push_back(from_bits(bits));
  std::vector<float> got(x.size());
  round_to_bfloat16(x.data(), x.size(), got.data());  // odd sizes reach the scalar tail too
  bool ok = true;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = expected_bfloat16(x[i]);
    ok = ok && (std::isnan(want) ? std::isnan(got[i]) : to_bits(got[i]) == to_bits(want));
    ok = ok && to_bits(round_to_bfloat16(x[i])) == to_bits(got[i]);
  }
  check.expect(isa + " round_to_bfloat16 is round to nearest even, NaN kept", ok);
}

void check_bfloat16_gemm(const std::string& isa, Checker& check) {
  const size_t M = 13, N = 40, K = 70;
  const std::vector<float> A = random_vector<float>(M * K), B = random_vector<float>(K * N);
  std::vector<double> want(M * N, 0.0);
  for (size_t i = 0; i < M; ++i)
    for (size_t j = 0; j < N; ++j)
      for (size_t k = 0; k < K; ++k)
        want[i * N + j] += double(round_to_bfloat16(A[i * K + k])) * double(round_to_bfloat16(B[k * N + j]));
  std::vector<float> C(M * N);
  gemm<float>(Trans::no, Trans::no, M, N, K, A.data(), K, B.data(), N, 0.f, C.data(), N, ComputeDtype::bfloat16);
  check.close(isa + " gemm with bfloat16 operands", C, want, 5e-5);
  PackedMatrix<float> packed;
  packed.pack(Trans::no, K, N, B.data(), N, nullptr, ComputeDtype::bfloat16);
  std::fill(C.begin(), C.end(), 0.f);
  gemm_packed<float>(M, 0, N, A.data(), K, packed, 0.f, C.data(), N);
  check.close(isa + " gemm_packed with bfloat16 operands", C, want, 5e-5);
  check.throws<std::invalid_argument>(isa + " double with bfloat16 operands", [] {
    double a = 1, c = 0;
    gemm<double>(Trans::no, Trans::no, 1, 1, 1, &a, 1, &a, 1, 0.0, &c, 1, ComputeDtype::bfloat16);
  });
}

// The int8 specification (python/fastgru/reference/quantize.py) written out: v quantized with
// one scale, 127 / max|v| in float as the core computes it, rounding half to even.
float naive_quantize(const float* v, size_t K, std::vector<int>& q) {
  float amax = 0;
  for (size_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(v[k]));
  q.assign(K, 0);
  if (amax == 0) return 0;
  const float inv = 127.0f / amax;
  for (size_t k = 0; k < K; ++k) q[k] = static_cast<int>(std::nearbyint(v[k] * inv));
  return amax / 127.0f;
}

// out[r] = bias[r] + rows r of int8 W (rows, K) with their scales times v: exact sums, then scaled.
void naive_int8_rows(const int8_t* w, const float* scales, size_t rows, size_t K, const float* v, const float* bias,
                     double* out) {
  std::vector<int> q;
  const float s = naive_quantize(v, K, q);
  for (size_t r = 0; r < rows; ++r) {
    int64_t sum = 0;
    for (size_t k = 0; k < K; ++k) sum += int64_t(w[r * K + k]) * q[k];
    out[r] = double(float(sum) * (s * scales[r])) + bias[r];
  }
}

// One layer, one sequence, one step with int8 weights: h (H) -> h_new (H).
void naive_int8_step(const GruConfig& cfg, const int8_t* w_ih, const int8_t* w_hh, const float* scales,
                     const float* b_ih, const float* b_hh, size_t in, const float* x, const float* h, float* h_new) {
  const size_t H = cfg.hidden_size;
  std::vector<double> gi(3 * H), gh(3 * H);
  naive_int8_rows(w_ih, scales, 3 * H, in, x, b_ih, gi.data());
  naive_int8_rows(w_hh, scales + 3 * H, cfg.reset_after ? 3 * H : 2 * H, H, h, b_hh, gh.data());
  std::vector<float> r(H), rh(H);
  for (size_t j = 0; j < H; ++j) {
    r[j] = float(sigmoid(gi[j] + gh[j]));
    rh[j] = r[j] * h[j];
  }
  if (!cfg.reset_after)  // W_hn (r * h): r * h quantized on its own
    naive_int8_rows(w_hh + 2 * H * H, scales + 5 * H, H, H, rh.data(), b_hh + 2 * H, gh.data() + 2 * H);
  for (size_t j = 0; j < H; ++j) {
    const double z = sigmoid(gi[H + j] + gh[H + j]);
    const double n = std::tanh(gi[2 * H + j] + (cfg.reset_after ? double(r[j]) * gh[2 * H + j] : gh[2 * H + j]));
    h_new[j] = float((1 - z) * n + z * h[j]);
  }
}

// int8 weights for `cfg` at their layout places and packed (gru_pack_int8), row scales
// (L*D, 2, 3H), and the biases in params. Values cover -127..127; weight_ih_l0's first rows are
// all +127, then all -127, so that with a constant input the pairwise sums reach 2 * 127 * 127,
// where a product of unsigned by signed bytes would saturate.
struct Int8Model {
  std::vector<float> params, scales;
  std::vector<int8_t> q, packed;
};
Int8Model int8_model(const GruConfig& cfg) {
  const size_t H = cfg.hidden_size, n = gru_param_count(cfg);
  Int8Model m{random_vector<float>(n, 0.3), std::vector<float>(cfg.num_layers * cfg.directions() * 6 * H),
              std::vector<int8_t>(n, 0)};
  size_t matrix = 0;
  for (const ParamTensor& p : gru_param_layout(cfg)) {
    if (!p.cols) continue;
    for (size_t r = 0; r < p.rows; ++r) {
      m.scales[matrix * 3 * H + r] = 0.004f * float(1 + (r + matrix) % 7);
      for (size_t c = 0; c < p.cols; ++c) {
        const size_t i = p.offset + r * p.cols + c;
        m.q[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);
        if (matrix == 0 && r < 2) m.q[i] = r == 0 ? 127 : -127;
      }
    }
    ++matrix;
  }
  m.packed.assign(gru_int8_packed_size(cfg), 1);  // not zeros: the packing must write its padding
  gru_pack_int8(cfg, m.q.data(), m.packed.data());
  return m;
}

void check_int8(const std::string& isa, Checker& check) {
  GruConfig cfg;
  cfg.hidden_size = 37;
  cfg.num_layers = 2;
  const size_t H = cfg.hidden_size, batch = 5;  // one group of five advancing together
  // Input sizes padded to the panels' depth (67: 68) or not (232); H = 37 pads each gate's rows
  // to three panels and W_hh's depth to 40.
  for (size_t input_size : {67, 232})
    for (bool reset_after : {true, false}) {
      cfg.input_size = input_size;
      const size_t I = cfg.input_size;
      cfg.reset_after = reset_after;
      cfg.bidirectional = false;
      const std::string at =
          isa + " int8 I=" + std::to_string(I) + " " + (reset_after ? "reset-after" : "reset-before") + ": ";
      const Int8Model m = int8_model(cfg);
      const Int8Weights<float> w{m.packed.data(), m.scales.data()};
      std::vector<float> x = random_vector<float>(batch * I), h = random_vector<float>(cfg.num_layers * batch * H);
      std::fill_n(x.begin(), I, 0.75f);     // sequence 0: a constant input, against the +-127 rows
      std::fill_n(h.begin() + H, H, 0.0f);  // sequence 1 of layer 0: a zero state (scale 0)
      // The step against the specification, layer by layer.
      std::vector<float> got(h.size()), want(h.size());
      gru_step_int8<float>(cfg, w, m.params.data(), batch, x.data(), h.data(), got.data());
      for (size_t b = 0; b < batch; ++b)
        for (size_t layer = 0; layer < cfg.num_layers; ++layer) {
          const DirectionLayout d = gru_direction_layout(cfg, layer, 0);
          const size_t in = cfg.layer_input_size(layer);
          const float* v = layer == 0 ? x.data() + b * I : want.data() + ((layer - 1) * batch + b) * H;
          naive_int8_step(cfg, m.q.data() + d.weight_ih, m.q.data() + d.weight_hh, m.scales.data() + layer * 6 * H,
                          m.params.data() + d.bias_ih, m.params.data() + d.bias_hh, in, v,
                          h.data() + (layer * batch + b) * H, want.data() + (layer * batch + b) * H);
        }
      check.close(at + "step against the specification", got, want, 2e-5);

      // The forward is the step's steps, bit for bit: with lengths, h0, 1 or 2 threads, and a
      // sequence alone or in the batch (eighteen: groups of four advancing together, or with
      // int8 tiles of sixteen, a whole tile of rows, then two on 1 thread and nine on 2).
      const size_t T = 9, batch = 18;
      const std::vector<int64_t> lengths = {9, 4, 1, 7, 2, 9, 3, 9, 8, 5, 6, 9, 1, 2, 9, 7, 4, 9};
      const std::vector<float> xs = random_vector<float>(T * batch * I),
                               h0 = random_vector<float>(cfg.num_layers * batch * H);
      std::vector<float> y(T * batch * H), h_n(h0.size());
      set_num_threads(2);
      gru_forward_int8<float>(cfg, w, m.params.data(), T, batch, xs.data(), h0.data(), lengths.data(), y.data(),
                              h_n.data());
      bool same = true;
      for (size_t b = 0; b < batch; ++b) {
        std::vector<float> state(cfg.num_layers * H), next(state.size());
        for (size_t layer = 0; layer < cfg.num_layers; ++layer)
          std::copy_n(h0.data() + (layer * batch + b) * H, H, state.data() + layer * H);
        for (size_t t = 0; t < T; ++t) {
          const float* y_t = y.data() + (t * batch + b) * H;
          if (int64_t(t) >= lengths[b]) {
            for (size_t j = 0; j < H; ++j) same = same && y_t[j] == 0.0f;
            continue;
          }
          gru_step_int8<float>(cfg, w, m.params.data(), 1, xs.data() + (t * batch + b) * I, state.data(), next.data());
          state.swap(next);
          same = same && std::memcmp(y_t, state.data() + (cfg.num_layers - 1) * H, H * sizeof(float)) == 0;
        }
        for (size_t layer = 0; layer < cfg.num_layers; ++layer)
          same = same &&
                 std::memcmp(h_n.data() + (layer * batch + b) * H, state.data() + layer * H, H * sizeof(float)) == 0;
      }
      check.expect(at + "forward is the steps, bit for bit (2 threads)", same);
      std::vector<float> y1(y.size()), h_n1(h_n.size());
      set_num_threads(1);
      gru_forward_int8<float>(cfg, w, m.params.data(), T, batch, xs.data(), h0.data(), lengths.data(), y1.data(),
                              h_n1.data());
      check.expect(at + "forward on 1 thread is bit for bit the 2-thread one", y1 == y && h_n1 == h_n);

      // Bidirectional: the reverse direction of one layer is a forward over the valid steps
      // reversed, with the reverse weights. Each step against the specification's step from the
      // forward's own previous state: through several steps, the specification's exact gate math
      // and the kernels' would part wherever a state lands on a rounding tie of its int8
      // quantization (a change of one in an int8 value), which says nothing of the order.
      GruConfig bi = cfg;
      bi.bidirectional = true;
      bi.num_layers = 1;
      const Int8Model mb = int8_model(bi);
      std::vector<float> yb(T * batch * 2 * H), hb(2 * batch * H);
      gru_forward_int8<float>(bi, {mb.packed.data(), mb.scales.data()}, mb.params.data(), T, batch, xs.data(), nullptr,
                              lengths.data(), yb.data(), hb.data());
      std::vector<float> got_reverse, want_reverse;  // the reverse direction's outputs and final states
      const DirectionLayout rev = gru_direction_layout(bi, 0, 1);
      for (size_t b = 0; b < batch; ++b) {
        std::vector<float> before(H, 0.0f), want(H);  // the forward's state before step t: h0 = 0 first
        for (int64_t t = lengths[b] - 1; t >= 0; --t) {
          naive_int8_step(bi, mb.q.data() + rev.weight_ih, mb.q.data() + rev.weight_hh, mb.scales.data() + 6 * H,
                          mb.params.data() + rev.bias_ih, mb.params.data() + rev.bias_hh, I,
                          xs.data() + (size_t(t) * batch + b) * I, before.data(), want.data());
          const float* y_t = yb.data() + (size_t(t) * batch + b) * 2 * H + H;
          got_reverse.insert(got_reverse.end(), y_t, y_t + H);
          want_reverse.insert(want_reverse.end(), want.begin(), want.end());
          before.assign(y_t, y_t + H);
        }
        got_reverse.insert(got_reverse.end(), hb.begin() + (batch + b) * H, hb.begin() + (batch + b + 1) * H);
        want_reverse.insert(want_reverse.end(), before.begin(), before.end());  // h_n: the last output
      }
      check.close(at + "bidirectional forward's reverse direction against the specification", got_reverse, want_reverse,
                  2e-5);
    }
  GruConfig wide;
  wide.input_size = kMaxInt8Depth + 1;
  wide.hidden_size = 1;
  check.throws<std::invalid_argument>(isa + " int8 step past kMaxInt8Depth inputs", [&] {
    std::vector<int8_t> q(gru_int8_packed_size(wide));
    std::vector<float> p(gru_param_count(wide)), scales(6), x(wide.input_size), hh(1), out(1);
    gru_step_int8<float>(wide, {q.data(), scales.data()}, p.data(), 1, x.data(), hh.data(), out.data());
  });
}

// Products with bfloat16 operands over the shapes that reach every loop of the kernels: edge rows
// and columns, odd K (a padded pair), K over several K-blocks (one of odd length), transposed
// operands, beta != 0, and column ranges of packed matrices; each against double products of the
// rounded operands. Then what holds for the float kernels, bit for bit: a row's result does not
// depend on the other rows of its batch, nor on the thread count.
void check_bfloat16_gemm_shapes(const std::string& isa, Checker& check) {
  auto rounded = [](float x) { return double(round_to_bfloat16(x)); };
  for (size_t M : {1, 2, 5, 13, 30})
    for (size_t N : {1, 7, 33, 70})
      for (size_t K : {1, 3, 32, 301, 513})
        for (Trans ta : {Trans::no, Trans::yes})
          for (Trans tb : {Trans::no, Trans::yes}) {
            const std::vector<float> A = random_vector<float>(M * K), B = random_vector<float>(K * N);
            std::vector<float> C = random_vector<float>(M * N);
            std::vector<double> want(M * N);
            const float beta = 0.5f;
            for (size_t i = 0; i < M; ++i)
              for (size_t j = 0; j < N; ++j) {
                double sum = beta * double(C[i * N + j]);
                for (size_t k = 0; k < K; ++k)
                  sum += rounded(ta == Trans::no ? A[i * K + k] : A[k * M + i]) *
                         rounded(tb == Trans::no ? B[k * N + j] : B[j * K + k]);
                want[i * N + j] = sum;
              }
            gemm<float>(ta, tb, M, N, K, A.data(), ta == Trans::no ? K : M, B.data(), tb == Trans::no ? N : K, beta,
                        C.data(), N, ComputeDtype::bfloat16);
            const std::string shape = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
                                      (ta == Trans::yes ? " A^T" : "") + (tb == Trans::yes ? " B^T" : "");
            check.close(isa + " bfloat16 gemm " + shape, C, want, 1e-4);
          }
  // Packed: columns [n0, N) of C from a packed B (n0 a multiple of the panel width).
  const size_t M = 9, N = 3 * packed_panel_width() + 5, K = 301, n0 = packed_panel_width();
  const std::vector<float> A = random_vector<float>(M * K), B = random_vector<float>(K * N);
  PackedMatrix<float> packed;
  packed.pack(Trans::no, K, N, B.data(), N, nullptr, ComputeDtype::bfloat16);
  std::vector<float> C(M * N, 7.f);
  std::vector<double> want(M * N, 7.0);
  for (size_t i = 0; i < M; ++i)
    for (size_t j = n0; j < N; ++j) {
      double sum = 0;
      for (size_t k = 0; k < K; ++k) sum += rounded(A[i * K + k]) * rounded(B[k * N + j]);
      want[i * N + j] = sum;
    }
  gemm_packed<float>(M, n0, N, A.data(), K, packed, 0.f, C.data(), N);
  check.close(isa + " bfloat16 gemm_packed, columns from a panel boundary", C, want, 1e-4);
  // Row 4 alone (a batch of one) gives row 4 of the batch's product, bit for bit.
  std::vector<float> alone(N, 7.f);
  gemm_packed<float>(1, n0, N, A.data() + 4 * K, K, packed, 0.f, alone.data(), N);
  check.expect(isa + " bfloat16 gemm_packed: a row alone equals that row in a batch",
               std::memcmp(alone.data(), C.data() + 4 * N, N * sizeof(float)) == 0);
  // gemm over 1 and 2 threads, bit for bit.
  const size_t Mt = 64, Nt = 96, Kt = 200;
  const std::vector<float> At = random_vector<float>(Mt * Kt), Bt = random_vector<float>(Kt * Nt);
  std::vector<float> one(Mt * Nt), two(Mt * Nt);
  const int threads = get_num_threads();
  set_num_threads(1);
  gemm<float>(Trans::no, Trans::no, Mt, Nt, Kt, At.data(), Kt, Bt.data(), Nt, 0.f, one.data(), Nt,
              ComputeDtype::bfloat16);
  set_num_threads(2);
  gemm<float>(Trans::no, Trans::no, Mt, Nt, Kt, At.data(), Kt, Bt.data(), Nt, 0.f, two.data(), Nt,
              ComputeDtype::bfloat16);
  set_num_threads(threads);
  check.expect(isa + " bfloat16 gemm: 1 and 2 threads agree bit for bit",
               std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
}

// A whole GRU (2 layers, bidirectional, forward and backward) with bfloat16 products on this
// instruction set against the same on `generic`, whose float FMAs on rounded operands the
// Python tests hold to the NumPy reference. The products differ in the order of their sums, and
// the gate math of other instruction sets in its last bits; where that moves a state across a
// bfloat16 rounding boundary, the next step's operand moves by a bfloat16 unit (2^-8 relative):
// hence a bfloat16-sized tolerance (a wrong layout is off by far more, and the gemm checks
// above hold the layouts to 1e-4).
void check_bfloat16_gru(const std::string& isa, Checker& check) {
  for (bool reset_after : {true, false}) {
    GruConfig cfg;
    cfg.input_size = 37;
    cfg.hidden_size = 50;
    cfg.num_layers = 2;
    cfg.bidirectional = true;
    cfg.reset_after = reset_after;
    cfg.compute_dtype = ComputeDtype::bfloat16;
    const size_t T = 7, B = 19, D = 2, H = cfg.hidden_size;
    const std::vector<float> params = random_vector<float>(gru_param_count(cfg), 0.3);
    const std::vector<float> x = random_vector<float>(T * B * cfg.input_size), h0 = random_vector<float>(2 * D * B * H);
    const std::vector<float> dy = random_vector<float>(T * B * D * H), dh_n = random_vector<float>(2 * D * B * H);
    struct Result {
      std::vector<float> y, dx, grad;
    };
    auto run = [&](const std::string& on) {
      set_isa(on);
      Result r{std::vector<float>(T * B * D * H), std::vector<float>(x.size()), std::vector<float>(params.size(), 0.f)};
      std::vector<float> h_n(h0.size()), dh0(h0.size()), workspace(gru_workspace_size(cfg, T, B));
      gru_forward<float>(cfg, params.data(), T, B, x.data(), h0.data(), nullptr, nullptr, r.y.data(), h_n.data(),
                         workspace.data());
      const GruCache<float> cache{T, B, nullptr, nullptr, workspace.data()};
      gru_backward<float>(cfg, params.data(), cache, dy.data(), dh_n.data(), r.dx.data(), dh0.data(), r.grad.data());
      return r;
    };
    const Result want = run("generic"), got = run(isa);
    const std::string at = isa + " bfloat16 GRU " + (reset_after ? "reset-after" : "reset-before") + ": ";
    check.close(at + "y", got.y, want.y, 1e-2);
    check.close(at + "dx", got.dx, want.dx, 1e-2);
    check.close(at + "weight gradients", got.grad, want.grad, 1e-2);
  }
}

}  // namespace

int main() {
  Checker check;
  for_each_isa([&](const std::string& isa) {
    check_rounding(isa, check);
    check_bfloat16_gemm(isa, check);
    check_bfloat16_gemm_shapes(isa, check);
    check_bfloat16_gru(isa, check);
    check_int8(isa, check);
  });
  return check.report("test_reduced_precision");
}
