// One GRU time step straight from the torch-layout weights: for each sequence and each block
// of kGateBlock hidden units, the rows of W_ih and W_hh that feed those units times x and h
// (gemv_rows), then the same gate kernels as the recurrence of gru_direction.cpp. With int8
// weights (fastgru.quantize) the whole-sequence forward is built from the same steps, so a
// stream gives exactly what the forward gives.
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fastgru/cancel.h"
#include "fastgru/gru.h"
#include "fastgru/threads.h"
#include "int8_panels.h"
#include "isa.h"

namespace fastgru {
namespace {

using detail::kGateBlock;
constexpr size_t U = kGateBlock;
static_assert(U % detail::kQ8PanelRows == 0, "a block of units is whole int8 panels");

// Where a step reads one weight matrix (3H, cols): T rows, or packed int8 rows with a scale each.
template <class T>
struct WeightRows {
  const T* w = nullptr;
  const int8_t* q = nullptr;  // int8 panels instead of w (int8_panels.h)
  detail::Int8Matrix panels{};
  const T* scales = nullptr;  // (3H): q's row scales
};

template <class T>
struct LayerWeights {  // one unidirectional layer, torch layout; biases nullptr when absent
  WeightRows<T> ih;    // (3H, in)
  WeightRows<T> hh;    // (3H, H)
  const T* b_ih;       // (3H)
  const T* b_hh;       // (3H)
};

// The weights of one direction of one layer, where gru_direction_layout puts them; with int8
// weights, their panels (int8_direction_panels) and scales (Int8Weights: a direction's 6H row
// scales, weight_ih's then weight_hh's).
template <class T>
LayerWeights<T> layer_weights(const GruConfig& cfg, const T* params, const Int8Weights<T>* int8, size_t layer,
                              size_t direction = 0) {
  const DirectionLayout d = gru_direction_layout(cfg, layer, direction);
  LayerWeights<T> lw{{params + d.weight_ih},
                     {params + d.weight_hh},
                     cfg.bias ? params + d.bias_ih : nullptr,
                     cfg.bias ? params + d.bias_hh : nullptr};
  if (int8) {
    const T* scales = int8->scales + (layer * cfg.directions() + direction) * 6 * cfg.hidden_size;
    const detail::Int8Direction panels = detail::int8_direction_panels(cfg, layer, direction);
    lw.ih = {nullptr, int8->packed, panels.ih, scales};
    lw.hh = {nullptr, int8->packed, panels.hh, scales + 3 * cfg.hidden_size};
  }
  return lw;
}

// The most sequences a layer step advances together (GemmKernels::step_sequences and
// int8_step_sequences: each block of weight rows read once per step serves all of them).
constexpr size_t kSequences = 16;

// The int8 tiles held configured (GemmKernels::hold_int8_tiles) while a thread works through its
// sequences, where its products may take two or more of them at once (rows: its sequences).
template <class T>
class Int8TileHold {
 public:
  Int8TileHold(const detail::GemmKernels<T>& gemm, bool int8, Range rows)
      : hold_(int8 && rows.end - rows.begin >= 2 ? gemm.hold_int8_tiles : nullptr) {
    if (hold_) hold_(true);
  }
  ~Int8TileHold() {
    if (hold_) hold_(false);
  }
  Int8TileHold(const Int8TileHold&) = delete;
  Int8TileHold& operator=(const Int8TileHold&) = delete;

 private:
  void (*hold_)(bool);
};

// Up to kSequences sequences of one layer step: input v (in), state h (H) -> h_out (H) each.
template <class T>
struct Sequences {
  size_t count = 0;
  const T* v[kSequences];
  const T* h[kSequences];
  T* h_out[kSequences];
};

// A thread's temporaries of one step, grown once per thread, never per step.
template <class T>
struct StepScratch {
  std::vector<T> gates;        // reset-before, per sequence: gx [blocks][3][U], rz [blocks][2][U], r * h (H)
  std::vector<T> weight_rows;  // bfloat16 products: the rounded weight rows
  struct Copies {              // one sequence's operands: rounded (bfloat16) or quantized (int8)
    std::vector<T> v, h, rh;
    std::vector<int8_t> qv, qh, qrh;
  } copies[kSequences];
};

// The vector a product multiplies, as the weights meet it: its values (rounded to bfloat16 for
// bfloat16 products), and with int8 weights its int8 values and their scale.
template <class T>
struct Operand {
  const T* v = nullptr;
  const int8_t* q = nullptr;
  T scale = 0;
};

// `src` (n elements) as an operand of the weights w: itself, its bfloat16-rounded copy in
// `rounded`, or with int8 weights its quantized copy in `quantized` (one scale per vector,
// fastgru.reference.quantize), zero-padded to the depth of w's panels.
template <class T>
Operand<T> operand(const GruConfig& cfg, const WeightRows<T>& w, const T* src, size_t n, std::vector<T>& rounded,
                   std::vector<int8_t>& quantized) {
  if (w.q) {
    quantized.resize(w.panels.depth);
    std::fill(quantized.begin() + n, quantized.end(), int8_t(0));
    return {src, quantized.data(), detail::kernels<T>().gemm.quantize_q8(n, src, quantized.data())};
  }
  if (cfg.compute_dtype != ComputeDtype::bfloat16) return {src};
  rounded.assign(src, src + n);
  if constexpr (std::is_same_v<T, float>) round_to_bfloat16(rounded.data(), n, rounded.data());
  return {rounded.data()};
}

// For each of `count` operands a[c]: out + c * stride, [3][U] = rows (g*H + unit0 .. + n) of
// w (3H, cols) times a[c], for the gates [gate0, gate1).
// bf16: the rows are rounded on the way in (a already is): the weights stay as they are in params.
// int8: exact integer sums, then times the operand's scale and the row's (in that order).
template <class T>
void gate_rows(const detail::GemmKernels<T>& gemm, bool bf16, std::vector<T>& rounded_rows, size_t H, size_t unit0,
               size_t n, size_t cols, const WeightRows<T>& w, size_t count, const Operand<T>* a, T* out, size_t stride,
               size_t gate0 = 0, size_t gate1 = 3) {
  for (size_t g = gate0; g < gate1; ++g) {
    const size_t row = g * H + unit0;
    if (w.q) {  // the gate's panels from unit0's on; the rows past n are padding
      const int8_t* q[kSequences];
      for (size_t c = 0; c < count; ++c) q[c] = a[c].q;
      int32_t sums[kSequences][U];
      const int8_t* panels = w.q + w.panels.offset + g * w.panels.gate_stride + unit0 * w.panels.depth;
      const size_t panel_count = (n + detail::kQ8PanelRows - 1) / detail::kQ8PanelRows;
      gemm.gemv_panels_q8(panel_count, w.panels.depth, panels, w.panels.row_sums(w.q, g, unit0), count, q, sums[0], U);
      for (size_t c = 0; c < count; ++c)
        for (size_t i = 0; i < n; ++i)
          out[c * stride + g * U + i] = static_cast<T>(sums[c][i]) * (a[c].scale * w.scales[row + i]);
      continue;
    }
    const T* weights = w.w + row * cols;
    if (bf16) {
      rounded_rows.assign(weights, weights + n * cols);
      if constexpr (std::is_same_v<T, float>) round_to_bfloat16(rounded_rows.data(), n * cols, rounded_rows.data());
      weights = rounded_rows.data();
    }
    const T* v[kSequences];
    for (size_t c = 0; c < count; ++c) v[c] = a[c].v;
    gemm.gemv_rows(n, cols, weights, cols, count, v, out + g * U, stride);
  }
}

// The biases of units [unit0, unit0 + n) in the cell kernels' [3][U] layout (zeros without bias).
template <class T>
void gate_bias(const T* bias, size_t H, size_t unit0, size_t n, T* out) {
  for (size_t g = 0; g < 3; ++g) {
    if (bias)
      std::copy_n(bias + g * H + unit0, n, out + g * U);
    else
      std::fill_n(out + g * U, n, T(0));
  }
}

// One layer for up to kSequences sequences. Reset-before needs r * h of every unit before any
// W_hn (r * h): two passes, the first keeping its gates in scratch. backwards: visit the
// (independent) unit blocks last to first.
template <class T>
void layer_step(const GruConfig& cfg, const LayerWeights<T>& p, size_t in, const Sequences<T>& s, bool backwards,
                StepScratch<T>& scratch) {
  const size_t H = cfg.hidden_size, blocks = (H + U - 1) / U, count = s.count;
  const auto& kern = detail::kernels<T>();
  const bool bf16 = cfg.compute_dtype == ComputeDtype::bfloat16;
  Operand<T> v_op[kSequences], h_op[kSequences];  // the products' operands
  for (size_t c = 0; c < count; ++c) {
    v_op[c] = operand(cfg, p.ih, s.v[c], in, scratch.copies[c].v, scratch.copies[c].qv);
    h_op[c] = operand(cfg, p.hh, s.h[c], H, scratch.copies[c].h, scratch.copies[c].qh);
  }
  auto products = [&](size_t u0, size_t n, size_t cols, const WeightRows<T>& w, const Operand<T>* a, T* out,
                      size_t stride, size_t gate0 = 0, size_t gate1 = 3) {
    gate_rows(kern.gemm, bf16, scratch.weight_rows, H, u0, n, cols, w, count, a, out, stride, gate0, gate1);
  };
  alignas(64) T gx[kSequences * 3 * U], gh[kSequences * 3 * U], bih[3 * U], bhh[3 * U];
  if (cfg.reset_after) {
    for (size_t i = 0; i < blocks; ++i) {
      const size_t k = backwards ? blocks - 1 - i : i;
      const size_t u0 = k * U, n = std::min(U, H - u0);
      products(u0, n, in, p.ih, v_op, gx, 3 * U);
      products(u0, n, H, p.hh, h_op, gh, 3 * U);
      gate_bias(p.b_ih, H, u0, n, bih);
      gate_bias(p.b_hh, H, u0, n, bhh);
      for (size_t c = 0; c < count; ++c)
        kern.cell.forward_after(n, gx + c * 3 * U, gh + c * 3 * U, bih, bhh, s.h[c] + u0, s.h_out[c] + u0, nullptr,
                                nullptr);
    }
    return;
  }
  const size_t per_sequence = blocks * 5 * U + H;
  scratch.gates.resize(count * per_sequence);
  auto gx_all = [&](size_t c) { return scratch.gates.data() + c * per_sequence; };
  auto rz = [&](size_t c) { return gx_all(c) + blocks * 3 * U; };
  auto rh = [&](size_t c) { return rz(c) + blocks * 2 * U; };
  for (size_t i = 0; i < blocks; ++i) {
    const size_t k = backwards ? blocks - 1 - i : i;
    const size_t u0 = k * U, n = std::min(U, H - u0);
    products(u0, n, in, p.ih, v_op, gx_all(0) + k * 3 * U, per_sequence);
    products(u0, n, H, p.hh, h_op, gh, 3 * U, 0, 2);
    gate_bias(p.b_ih, H, u0, n, bih);
    gate_bias(p.b_hh, H, u0, n, bhh);
    for (size_t c = 0; c < count; ++c)
      kern.cell.forward_before_rz(n, gx_all(c) + k * 3 * U, gh + c * 3 * U, bih, bhh, s.h[c] + u0, rz(c) + k * 2 * U,
                                  rh(c) + u0);
  }
  Operand<T> rh_op[kSequences];
  for (size_t c = 0; c < count; ++c)
    rh_op[c] = operand(cfg, p.hh, static_cast<const T*>(rh(c)), H, scratch.copies[c].rh, scratch.copies[c].qrh);
  for (size_t i = 0; i < blocks; ++i) {
    const size_t k = backwards ? i : blocks - 1 - i;  // the first pass's last blocks first
    const size_t u0 = k * U, n = std::min(U, H - u0);
    products(u0, n, H, p.hh, rh_op, gh, 3 * U, 2, 3);
    gate_bias(p.b_ih, H, u0, n, bih);
    gate_bias(p.b_hh, H, u0, n, bhh);
    for (size_t c = 0; c < count; ++c)
      kern.cell.forward_before_n(n, gx_all(c) + k * 3 * U, gh + c * 3 * U, bih, bhh, rz(c) + k * 2 * U, rh(c) + u0,
                                 s.h[c] + u0, s.h_out[c] + u0, nullptr, nullptr);
  }
}

// The steps of gru_step and gru_step_int8: int8 == nullptr reads T weights from params.
template <class T>
void step_rows(const GruConfig& cfg, const T* params, const Int8Weights<T>* int8, size_t batch, const T* x, const T* h,
               T* h_new) {
  if (cfg.bidirectional) throw std::invalid_argument("gru_step: a bidirectional GRU needs the whole sequence");
  gru_check_compute_dtype<T>(cfg);
  const size_t H = cfg.hidden_size, L = cfg.num_layers, BH = batch * H;
  const size_t work_per_row = 3 * H * (cfg.input_size + H + (L - 1) * 2 * H);
  auto rows_step = [&](Range rows) {
    thread_local StepScratch<T> scratch;
    // Weights a little larger than L2 (I = 128, H = 256 in float32: 1.2 MB) read in the same
    // order every step would each be evicted just before they are read again; alternating the
    // order makes a step start with the blocks the previous one read last, likely still in L2.
    thread_local bool backwards = false;
    backwards = !backwards;
    const detail::GemmKernels<T>& gemm = detail::kernels<T>().gemm;
    const Int8TileHold<T> tiles(gemm, int8 != nullptr, rows);
    const size_t together = int8 ? gemm.int8_step_sequences : gemm.step_sequences;
    for (size_t b0 = rows.begin; b0 < rows.end; b0 += together)
      for (size_t layer = 0; layer < L; ++layer) {
        Sequences<T> s;
        s.count = std::min(together, rows.end - b0);
        for (size_t c = 0; c < s.count; ++c) {
          const size_t b = b0 + c;
          s.v[c] = layer == 0 ? x + b * cfg.input_size : h_new + (layer - 1) * BH + b * H;
          s.h[c] = h + layer * BH + b * H;
          s.h_out[c] = h_new + layer * BH + b * H;
        }
        layer_step(cfg, layer_weights(cfg, params, int8, layer), cfg.layer_input_size(layer), s, backwards, scratch);
      }
  };
  const int threads = std::min(threads_for(batch * work_per_row, 1 << 18), static_cast<int>(batch));
  if (threads <= 1) return rows_step({0, batch});  // a stream's usual case: no pool, no std::function
  parallel_run([&](const Team& team) { rows_step(static_range(batch, team.tid, team.size)); }, threads);
}

}  // namespace

template <class T>
void gru_step(const GruConfig& cfg, const T* params, size_t batch, const T* x, const T* h, T* h_new) {
  step_rows<T>(cfg, params, nullptr, batch, x, h, h_new);
}

// int8 weights compute with float32 activations quantized per vector, and their integer sums
// must fit in int32.
template <class T>
void check_int8(const GruConfig& cfg) {
  if (!std::is_same_v<T, float>) throw std::invalid_argument("int8 weights stand for float32 weights, not float64");
  if (cfg.compute_dtype != ComputeDtype::float32)
    throw std::invalid_argument("compute_dtype: int8 weights compute with float32 activations");
  for (size_t layer = 0; layer < cfg.num_layers; ++layer)
    if (std::max(cfg.layer_input_size(layer), cfg.hidden_size) > kMaxInt8Depth)
      throw std::invalid_argument("int8 weights: a product over more than " + std::to_string(kMaxInt8Depth) +
                                  " inputs could overflow its int32 sum");
}

template <class T>
void gru_step_int8(const GruConfig& cfg, const Int8Weights<T>& int8, const T* params, size_t batch, const T* x,
                   const T* h, T* h_new) {
  check_int8<T>(cfg);
  step_rows<T>(cfg, params, &int8, batch, x, h, h_new);
}

template <class T>
void gru_forward_int8(const GruConfig& cfg, const Int8Weights<T>& int8, const T* params, size_t steps, size_t batch,
                      const T* x, const T* h0, const int64_t* lengths, T* y, T* h_n) {
  check_int8<T>(cfg);
  gru_check_sizes(cfg, steps, batch);
  const size_t H = cfg.hidden_size, L = cfg.num_layers, D = cfg.directions(), DH = D * H;
  // Between layers: a lower layer's outputs (T, B, D*H), the next one's inputs.
  std::vector<T> between[2];
  for (size_t layer = 0; layer + 1 < L && layer < 2; ++layer) between[layer].resize(steps * batch * DH);
  std::atomic<bool> stopped{false};
  // Each sequence runs through every layer on its own: its rows of each layer's input are its
  // own rows of the layer below, so threads own whole sequences and never wait for each other.
  // A thread advances up to int8_step_sequences of its sequences together, step i of each at once (the
  // reverse direction's step i of sequence b is time lengths[b] - 1 - i).
  auto sequences = [&](Range rows) {
    thread_local StepScratch<T> scratch;
    const detail::GemmKernels<T>& gemm = detail::kernels<T>().gemm;
    const size_t together = gemm.int8_step_sequences;
    const Int8TileHold<T> tiles(gemm, true, rows);
    std::vector<T> states(2 * kSequences * H);
    for (size_t b0 = rows.begin; b0 < rows.end; b0 += together) {
      const size_t group = std::min(together, rows.end - b0);
      size_t len[kSequences], longest = 0;
      for (size_t c = 0; c < group; ++c) {
        len[c] = lengths ? static_cast<size_t>(lengths[b0 + c]) : steps;
        longest = std::max(longest, len[c]);
      }
      for (size_t layer = 0; layer < L; ++layer) {
        const size_t in = cfg.layer_input_size(layer);
        const T* input = layer == 0 ? x : between[(layer - 1) % 2].data();
        T* out = layer + 1 == L ? y : between[layer % 2].data();
        for (size_t d = 0; d < D; ++d) {
          const LayerWeights<T> w = layer_weights(cfg, params, &int8, layer, d);
          T* h[kSequences];
          T* h_next[kSequences];
          for (size_t c = 0; c < group; ++c) {
            h[c] = states.data() + c * H;
            h_next[c] = states.data() + (kSequences + c) * H;
            const size_t state = (layer * D + d) * batch + b0 + c;
            if (h0)
              std::copy_n(h0 + state * H, H, h[c]);
            else
              std::fill_n(h[c], H, T(0));
          }
          for (size_t i = 0; i < longest; ++i) {
            if ((i & 63) == 0 && (stopped.load(std::memory_order_relaxed) || cancel_requested())) {
              stopped.store(true, std::memory_order_relaxed);
              return;
            }
            Sequences<T> s;
            size_t at[kSequences], t_of[kSequences];
            for (size_t c = 0; c < group; ++c) {
              if (i >= len[c]) continue;
              const size_t t = d == 0 ? i : len[c] - 1 - i;
              at[s.count] = c;
              t_of[s.count] = t;
              s.v[s.count] = input + (t * batch + b0 + c) * in;
              s.h[s.count] = h[c];
              s.h_out[s.count] = h_next[c];
              ++s.count;
            }
            layer_step(cfg, w, in, s, (i & 1) != 0, scratch);
            for (size_t j = 0; j < s.count; ++j) {
              const size_t c = at[j];
              std::swap(h[c], h_next[c]);
              std::copy_n(h[c], H, out + (t_of[j] * batch + b0 + c) * DH + d * H);
            }
          }
          for (size_t c = 0; c < group; ++c) {
            for (size_t t = len[c]; t < steps; ++t) std::fill_n(out + (t * batch + b0 + c) * DH + d * H, H, T(0));
            std::copy_n(h[c], H, h_n + ((layer * D + d) * batch + b0 + c) * H);
          }
        }
      }
    }
  };
  const size_t work_per_row = steps * 3 * H * (cfg.input_size + H + (L - 1) * (D * H + H)) * D;
  const int threads = std::min(threads_for(batch * work_per_row, 1 << 18), static_cast<int>(batch));
  if (threads <= 1)
    sequences({0, batch});
  else
    parallel_run([&](const Team& team) { sequences(static_range(batch, team.tid, team.size)); }, threads);
  if (stopped.load()) throw Cancelled();
}

#define FASTGRU_INSTANTIATE(T)                                                                                       \
  template void gru_step<T>(const GruConfig&, const T*, size_t, const T*, const T*, T*);                             \
  template void gru_step_int8<T>(const GruConfig&, const Int8Weights<T>&, const T*, size_t, const T*, const T*, T*); \
  template void gru_forward_int8<T>(const GruConfig&, const Int8Weights<T>&, const T*, size_t, size_t, const T*,     \
                                    const T*, const int64_t*, T*, T*);
FASTGRU_INSTANTIATE(float)
FASTGRU_INSTANTIATE(double)

}  // namespace fastgru
