// One GRU time step straight from the torch-layout weights: for each sequence and each block
// of kGateBlock hidden units, the rows of W_ih and W_hh that feed those units times x and h
// (gemv_rows), then the same gate kernels as the recurrence of gru_direction.cpp.
#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "fastgru/gru.h"
#include "fastgru/threads.h"
#include "isa.h"

namespace fastgru {
namespace {

using detail::kGateBlock;
constexpr size_t U = kGateBlock;

// Where a step reads one weight matrix (3H, cols): T rows, or int8 rows with a scale each.
template <class T>
struct WeightRows {
  const T* w = nullptr;
  const int8_t* q = nullptr;  // int8 weights instead of w
  const T* scales = nullptr;  // (3H): q's row scales
};

template <class T>
struct LayerWeights {  // one unidirectional layer, torch layout; biases nullptr when absent
  WeightRows<T> ih;    // (3H, in)
  WeightRows<T> hh;    // (3H, H)
  const T* b_ih;       // (3H)
  const T* b_hh;       // (3H)
};

// Layer `layer`'s weights, where gru_direction_layout puts them; with int8 weights, those and
// their scales (Int8Weights: a direction's 6H row scales, weight_ih's then weight_hh's).
template <class T>
LayerWeights<T> layer_weights(const GruConfig& cfg, const T* params, const Int8Weights<T>* int8, size_t layer) {
  const DirectionLayout d = gru_direction_layout(cfg, layer, 0);
  LayerWeights<T> lw{{params + d.weight_ih},
                     {params + d.weight_hh},
                     cfg.bias ? params + d.bias_ih : nullptr,
                     cfg.bias ? params + d.bias_hh : nullptr};
  if (int8) {
    const T* scales = int8->scales + layer * 6 * cfg.hidden_size;
    lw.ih = {nullptr, int8->weights + d.weight_ih, scales};
    lw.hh = {nullptr, int8->weights + d.weight_hh, scales + 3 * cfg.hidden_size};
  }
  return lw;
}

// A thread's temporaries of one step, grown once per thread, never per step.
template <class T>
struct StepScratch {
  std::vector<T> gates;                  // reset-before: gx [blocks][3][U], rz [blocks][2][U], r * h (H)
  std::vector<T> v, h, rh, weight_rows;  // bfloat16 products: rounded copies of their operands
};

// `src` (n elements) itself, or with bfloat16 operands its rounded copy in `copy`.
template <class T>
const T* operand(bool bf16, const T* src, size_t n, std::vector<T>& copy) {
  if (!bf16) return src;
  copy.assign(src, src + n);
  if constexpr (std::is_same_v<T, float>) round_to_bfloat16(copy.data(), n, copy.data());
  return copy.data();
}

// out [3][U] = rows (g*H + unit0 .. + n) of w (3H, cols) times v, for the gates [gate0, gate1).
// bf16: the rows are rounded on the way in (v already is): the weights stay as they are in params.
template <class T>
void gate_rows(const detail::GemmKernels<T>& gemm, bool bf16, std::vector<T>& rounded_rows, size_t H, size_t unit0,
               size_t n, size_t cols, const WeightRows<T>& w, const T* v, T* out, size_t gate0 = 0, size_t gate1 = 3) {
  for (size_t g = gate0; g < gate1; ++g) {
    const size_t row = g * H + unit0;
    if (w.q) {
      gemm.gemv_rows_int8(n, cols, w.q + row * cols, cols, w.scales + row, v, out + g * U);
      continue;
    }
    const T* rows = operand(bf16, w.w + row * cols, n * cols, rounded_rows);
    gemm.gemv_rows(n, cols, rows, cols, v, out + g * U);
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

// One layer for one sequence: input v (in), state h (H) -> h_out (H). Reset-before needs r * h
// of every unit before any W_hn (r * h): two passes, the first keeping its gates in scratch.
// backwards: visit the (independent) unit blocks last to first.
template <class T>
void layer_step(const GruConfig& cfg, const LayerWeights<T>& p, size_t in, const T* v, const T* h, T* h_out,
                bool backwards, StepScratch<T>& scratch) {
  const size_t H = cfg.hidden_size, blocks = (H + U - 1) / U;
  const auto& kern = detail::kernels<T>();
  const bool bf16 = cfg.compute_dtype == ComputeDtype::bfloat16;
  const T* v_op = operand(bf16, v, in, scratch.v);  // the products' operands
  const T* h_op = operand(bf16, h, H, scratch.h);
  auto products = [&](size_t u0, size_t n, size_t cols, const WeightRows<T>& w, const T* x, T* out, size_t gate0 = 0,
                      size_t gate1 = 3) {
    gate_rows(kern.gemm, bf16, scratch.weight_rows, H, u0, n, cols, w, x, out, gate0, gate1);
  };
  alignas(64) T gx[3 * U], gh[3 * U], bih[3 * U], bhh[3 * U];
  if (cfg.reset_after) {
    for (size_t i = 0; i < blocks; ++i) {
      const size_t k = backwards ? blocks - 1 - i : i;
      const size_t u0 = k * U, n = std::min(U, H - u0);
      products(u0, n, in, p.ih, v_op, gx);
      products(u0, n, H, p.hh, h_op, gh);
      gate_bias(p.b_ih, H, u0, n, bih);
      gate_bias(p.b_hh, H, u0, n, bhh);
      kern.cell.forward_after(n, gx, gh, bih, bhh, h + u0, h_out + u0, nullptr, nullptr);
    }
    return;
  }
  scratch.gates.resize(blocks * 5 * U + H);
  T* gx_all = scratch.gates.data();
  T* rz = gx_all + blocks * 3 * U;
  T* rh = rz + blocks * 2 * U;
  for (size_t i = 0; i < blocks; ++i) {
    const size_t k = backwards ? blocks - 1 - i : i;
    const size_t u0 = k * U, n = std::min(U, H - u0);
    products(u0, n, in, p.ih, v_op, gx_all + k * 3 * U);
    products(u0, n, H, p.hh, h_op, gh, 0, 2);
    gate_bias(p.b_ih, H, u0, n, bih);
    gate_bias(p.b_hh, H, u0, n, bhh);
    kern.cell.forward_before_rz(n, gx_all + k * 3 * U, gh, bih, bhh, h + u0, rz + k * 2 * U, rh + u0);
  }
  const T* rh_op = operand(bf16, static_cast<const T*>(rh), H, scratch.rh);
  for (size_t i = 0; i < blocks; ++i) {
    const size_t k = backwards ? i : blocks - 1 - i;  // the first pass's last blocks first
    const size_t u0 = k * U, n = std::min(U, H - u0);
    products(u0, n, H, p.hh, rh_op, gh, 2, 3);
    gate_bias(p.b_ih, H, u0, n, bih);
    gate_bias(p.b_hh, H, u0, n, bhh);
    kern.cell.forward_before_n(n, gx_all + k * 3 * U, gh, bih, bhh, rz + k * 2 * U, rh + u0, h + u0, h_out + u0,
                               nullptr, nullptr);
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
    for (size_t b = rows.begin; b < rows.end; ++b)
      for (size_t layer = 0; layer < L; ++layer) {
        const T* v = layer == 0 ? x + b * cfg.input_size : h_new + (layer - 1) * BH + b * H;
        layer_step(cfg, layer_weights(cfg, params, int8, layer), cfg.layer_input_size(layer), v, h + layer * BH + b * H,
                   h_new + layer * BH + b * H, backwards, scratch);
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

template <class T>
void gru_step_int8(const GruConfig& cfg, const Int8Weights<T>& int8, const T* params, size_t batch, const T* x,
                   const T* h, T* h_new) {
  if (cfg.compute_dtype != ComputeDtype::float32)
    throw std::invalid_argument("compute_dtype: int8 weights compute with float32 activations");
  step_rows<T>(cfg, params, &int8, batch, x, h, h_new);
}

#define FASTGRU_INSTANTIATE(T)                                                           \
  template void gru_step<T>(const GruConfig&, const T*, size_t, const T*, const T*, T*); \
  template void gru_step_int8<T>(const GruConfig&, const Int8Weights<T>&, const T*, size_t, const T*, const T*, T*);
FASTGRU_INSTANTIATE(float)
FASTGRU_INSTANTIATE(double)

}  // namespace fastgru
