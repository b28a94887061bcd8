// Stacks directions and layers: layer k's input is layer k-1's output (forward direction
// in columns [0, H), reverse in [H, 2H)), times the dropout multipliers in training.
#include "fastgru/gru.h"

#include <algorithm>
#include <array>
#include <vector>

#include "gru_direction.h"
#include "scratch.h"

namespace fastgru {
namespace {

template <class T>
struct DirectionSlot {
  detail::DirectionParams<T> params;
  detail::DirectionGrads<T> grads;
};

// The parameters (and gradient slots) of layer*D + dir, where gru_direction_layout puts them.
template <class T>
std::vector<DirectionSlot<T>> direction_slots(const GruConfig& cfg, const T* params, T* grad) {
  std::vector<DirectionSlot<T>> slots;
  for (size_t layer = 0; layer < cfg.num_layers; ++layer)
    for (size_t dir = 0; dir < cfg.directions(); ++dir) {
      const DirectionLayout d = gru_direction_layout(cfg, layer, dir);
      auto tensors = [&](auto* base) {
        using P = decltype(base);
        return std::array<P, 4>{base + d.weight_ih, base + d.weight_hh, cfg.bias ? base + d.bias_ih : nullptr,
                                cfg.bias ? base + d.bias_hh : nullptr};
      };
      DirectionSlot<T> slot{};
      const auto p = tensors(params);
      slot.params = {p[0], p[1], p[2], p[3]};
      if (grad) {
        const auto g = tensors(grad);
        slot.grads = {g[0], g[1], g[2], g[3], false};
      }
      slots.push_back(slot);
    }
  return slots;
}

// The training workspace, carved into per-layer inputs and per-direction caches, each part a
// multiple of steps * batch elements (so the total is too). E is T or const T.
template <class E>
struct WorkspaceViews {
  std::vector<E*> inputs;  // per layer: its input (T, B, in_k), dropout applied
  std::vector<E*> states;  // per layer*D+dir: state before each step (T, B, H)
  std::vector<E*> gates;   // per layer*D+dir: r, z, n, n's recurrent term, blocked (gate_cache_size)
  size_t size = 0;         // elements used
};

template <class E>
WorkspaceViews<E> workspace_views(const GruConfig& cfg, size_t steps, size_t batch, E* workspace) {
  WorkspaceViews<E> v;
  auto take = [&](size_t n) {
    E* part = workspace ? workspace + v.size : nullptr;
    v.size += n;
    return part;
  };
  const size_t H = cfg.hidden_size, D = cfg.directions();
  for (size_t layer = 0; layer < cfg.num_layers; ++layer) {
    v.inputs.push_back(take(steps * batch * cfg.layer_input_size(layer)));
    for (size_t dir = 0; dir < D; ++dir) {
      v.states.push_back(take(steps * batch * H));
      v.gates.push_back(take(detail::gate_cache_size(steps, batch, H)));
    }
  }
  return v;
}

}  // namespace

size_t gru_workspace_size(const GruConfig& cfg, size_t steps, size_t batch) {
  return workspace_views<const float>(cfg, steps, batch, nullptr).size;  // the same for any T
}

template <class T>
void gru_forward(const GruConfig& cfg, const T* params, size_t steps, size_t batch, const T* x, const T* h0,
                 const int64_t* lengths, const T* dropout, T* y, T* h_n, T* workspace) {
  gru_check_sizes(cfg, steps, batch);
  gru_check_compute_dtype<T>(cfg);
  const size_t H = cfg.hidden_size, D = cfg.directions(), L = cfg.num_layers;
  const size_t BH = batch * H, out_width = D * H, out_size = steps * batch * out_width;
  std::vector<int64_t> full(batch, static_cast<int64_t>(steps));
  const int64_t* lens = lengths ? lengths : full.data();
  std::vector<T> zeros(h0 ? 0 : BH, T(0));
  const auto slots = direction_slots<T>(cfg, params, nullptr);
  const auto cache = workspace_views<T>(cfg, steps, batch, workspace);

  // Layer k < L-1 writes its output to between[k % 2], the input of layer k+1.
  detail::ScratchArray<T> between0(L > 1 ? out_size : 0), between1(L > 2 ? out_size : 0);
  T* const between[2] = {between0.data(), between1.data()};
  for (size_t layer = 0; layer < L; ++layer) {
    const size_t in = cfg.layer_input_size(layer);
    const T* input = x;
    if (layer > 0) {
      T* layer_in = between[(layer - 1) % 2];
      if (dropout) {
        const T* mask = dropout + (layer - 1) * out_size;
        for (size_t i = 0; i < out_size; ++i) layer_in[i] *= mask[i];
      }
      input = layer_in;
    }
    if (workspace) std::copy(input, input + steps * batch * in, cache.inputs[layer]);
    T* out = layer + 1 < L ? between[layer % 2] : y;
    for (size_t dir = 0; dir < D; ++dir) {
      const size_t slot = layer * D + dir;
      // The kernels leave the lanes past H of the last gate block alone; zero them so the
      // workspace is a function of the inputs (frameworks compare and hash outputs).
      if (workspace && H % detail::kGateBlock)
        std::fill_n(cache.gates[slot], detail::gate_cache_size(steps, batch, H), T(0));
      detail::DirectionShape shape{steps, batch, in, H, dir == 1, cfg.reset_after, lens, cfg.compute_dtype};
      detail::gru_direction_forward<T>(shape, slots[slot].params, input, h0 ? h0 + slot * BH : zeros.data(),
                                       out + dir * H, out_width, h_n + slot * BH, cache.states[slot],
                                       cache.gates[slot]);
    }
  }
}

template <class T>
void gru_backward(const GruConfig& cfg, const T* params, const GruCache<T>& cache, const T* dy, const T* dh_n, T* dx,
                  T* dh0, T* grad, bool accumulate) {
  gru_check_sizes(cfg, cache.steps, cache.batch);
  gru_check_compute_dtype<T>(cfg);
  const size_t H = cfg.hidden_size, D = cfg.directions(), L = cfg.num_layers;
  const size_t steps = cache.steps, batch = cache.batch, BH = batch * H;
  const size_t out_size = steps * batch * D * H;
  std::vector<int64_t> full(batch, static_cast<int64_t>(steps));
  const int64_t* lens = cache.lengths ? cache.lengths : full.data();
  auto slots = direction_slots<T>(cfg, params, grad);
  for (auto& slot : slots) slot.grads.overwrite = !accumulate;
  const auto saved = workspace_views<const T>(cfg, steps, batch, cache.workspace);

  // Gradient of the current layer's output: dy itself for the top layer (never copied).
  // Layer k > 0 writes the gradient of its input to between[(k - 1) % 2], layer k-1's d_out.
  const T* d_out = dy;
  detail::ScratchArray<T> between0(L > 1 ? out_size : 0), between1(L > 2 ? out_size : 0);
  T* const between[2] = {between0.data(), between1.data()};
  for (size_t layer = L; layer-- > 0;) {
    const size_t in = cfg.layer_input_size(layer);
    T* d_input = layer > 0 ? between[(layer - 1) % 2] : dx;
    for (size_t dir = 0; dir < D; ++dir) {
      const size_t slot = layer * D + dir;
      detail::DirectionShape shape{steps, batch, in, H, dir == 1, cfg.reset_after, lens, cfg.compute_dtype};
      detail::gru_direction_backward<T>(shape, slots[slot].params, saved.inputs[layer], saved.states[slot],
                                        saved.gates[slot], d_out + dir * H, D * H, dh_n ? dh_n + slot * BH : nullptr,
                                        d_input, dir == 0 ? T(0) : T(1), dh0 + slot * BH, slots[slot].grads);
    }
    if (layer > 0) {
      if (cache.dropout) {
        const T* mask = cache.dropout + (layer - 1) * out_size;
        for (size_t i = 0; i < out_size; ++i) d_input[i] *= mask[i];
      }
      d_out = d_input;
    }
  }
}

#define FASTGRU_INSTANTIATE(T)                                                                                 \
  template void gru_forward<T>(const GruConfig&, const T*, size_t, size_t, const T*, const T*, const int64_t*, \
                               const T*, T*, T*, T*);                                                          \
  template void gru_backward<T>(const GruConfig&, const T*, const GruCache<T>&, const T*, const T*, T*, T*, T*, bool);
FASTGRU_INSTANTIATE(float)
FASTGRU_INSTANTIATE(double)

}  // namespace fastgru
