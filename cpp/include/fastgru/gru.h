// GRU forward and backward through time over caller-owned, contiguous buffers.
// Shapes, names and gate order (r, z, n) follow torch.nn.GRU; the math follows the NumPy
// reference python/fastgru/reference/gru.py, which the tests hold this code to.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fastgru/buffer.h"

namespace fastgru {

struct GruConfig {
  size_t input_size = 0;   // I
  size_t hidden_size = 0;  // H
  size_t num_layers = 1;   // L
  bool bidirectional = false;
  bool bias = true;
  bool reset_after = true;  // n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); else W_hn (r * h) + b_hn

  size_t directions() const { return bidirectional ? 2 : 1; }  // D
  size_t layer_input_size(size_t layer) const {
    return layer == 0 ? input_size : directions() * hidden_size;
  }
};

// One parameter tensor inside the flat parameter buffer.
struct ParamTensor {
  std::string name;  // torch name, e.g. "weight_hh_l1_reverse"
  size_t offset;     // in elements
  size_t rows, cols;  // cols == 0 for a vector
  size_t size() const { return cols ? rows * cols : rows; }
};

// The flat buffer's layout, in torch.nn.GRU's parameter order: for each layer, for each
// direction: weight_ih (3H, in), weight_hh (3H, H), bias_ih (3H), bias_hh (3H).
std::vector<ParamTensor> gru_param_layout(const GruConfig& cfg);
size_t gru_param_count(const GruConfig& cfg);
// Elements of one direction of layer `layer` (its four tensors, two without bias).
size_t gru_direction_param_count(const GruConfig& cfg, size_t layer);

// What a training-mode forward keeps for backward.
template <class T>
struct GruCache {
  size_t steps = 0, batch = 0;
  std::vector<int64_t> lengths;          // (B,), all == steps when none were given
  std::vector<Buffer<T>> inputs;  // per layer: its input (T, B, in_k), dropout applied
  Buffer<T> dropout;              // (L-1, T, B, D*H) multipliers, empty when none
  std::vector<Buffer<T>> states;  // per layer*D+dir: state before each step (T, B, H)
  std::vector<Buffer<T>> gates;   // per layer*D+dir: r, z, n, n's recurrent term, blocked
};

// x (T, B, I) time-major; h0 (L*D, B, H) or nullptr for zeros; lengths (B,) in 1..T or
// nullptr; dropout (L-1, T, B, D*H) multipliers for the inputs of layers 1.. or nullptr.
// Writes y (T, B, D*H) and h_n (L*D, B, H). cache == nullptr: inference, nothing kept.
template <class T>
void gru_forward(const GruConfig& cfg, const T* params, size_t steps, size_t batch, const T* x,
                 const T* h0, const int64_t* lengths, const T* dropout, T* y, T* h_n,
                 GruCache<T>* cache);

// dy (T, B, D*H), dh_n (L*D, B, H) or nullptr for zeros. Writes dx (T, B, I) and
// dh0 (L*D, B, H); adds the parameter gradients into grad (same layout as params).
template <class T>
void gru_backward(const GruConfig& cfg, const T* params, const GruCache<T>& cache, const T* dy,
                  const T* dh_n, T* dx, T* dh0, T* grad);

// One time step of a unidirectional GRU, for inference on a stream: x (B, I), h (L, B, H);
// writes h_new (L, B, H) (the step's output is h_new's last layer). Reads the weights in
// params' torch layout in place (nothing packed, nothing kept), so a step costs one pass over
// the weights; whole sequences are faster through gru_forward. No dropout (inference).
template <class T>
void gru_step(const GruConfig& cfg, const T* params, size_t batch, const T* x, const T* h, T* h_new);

}  // namespace fastgru
