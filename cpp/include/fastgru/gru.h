// GRU forward and backward through time over caller-owned, contiguous buffers.
// Shapes, names and gate order (r, z, n) follow torch.nn.GRU; the math follows the NumPy
// reference python/fastgru/reference/gru.py, which the tests hold this code to.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fastgru/gemm.h"
#include "fastgru/param_layout.h"

namespace fastgru {

struct GruConfig {
  size_t input_size = 0;   // I
  size_t hidden_size = 0;  // H
  size_t num_layers = 1;   // L
  bool bidirectional = false;
  bool bias = true;
  bool reset_after = true;  // n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); else W_hn (r * h) + b_hn
  // bfloat16: every product (input projection, recurrent product, backward's products and
  // weight gradients) rounds its operands to bfloat16 and accumulates in float; parameters,
  // states, gate math and gradients stay float. float buffers only (double: invalid_argument).
  ComputeDtype compute_dtype = ComputeDtype::float32;

  size_t directions() const { return bidirectional ? 2 : 1; }  // D
  size_t layer_input_size(size_t layer) const { return layer == 0 ? input_size : directions() * hidden_size; }
};

// The flat buffer's layout, in torch.nn.GRU's parameter order: for each layer, for each
// direction: weight_ih (3H, in), weight_hh (3H, H), bias_ih (3H), bias_hh (3H).
// Throws std::invalid_argument for num_layers outside 1..kMaxLayers (checked.h) and
// std::overflow_error when the parameters cannot fit in one buffer.
std::vector<ParamTensor> gru_param_layout(const GruConfig& cfg);
size_t gru_param_count(const GruConfig& cfg);
// Elements of one direction of layer `layer` (its four tensors, two without bias).
size_t gru_direction_param_count(const GruConfig& cfg, size_t layer);

// Offsets (in elements) of one direction's tensors: the definition gru_param_layout names and
// the recurrence and the stream step read (without building the named layout). Without bias,
// bias_ih == bias_hh == end. Throws as gru_param_layout, and std::out_of_range for a layer or
// direction the GRU does not have.
struct DirectionLayout {
  size_t weight_ih, weight_hh, bias_ih, bias_hh;
  size_t end;  // past the direction's last tensor
};
DirectionLayout gru_direction_layout(const GruConfig& cfg, size_t layer, size_t direction);

// Elements of the training workspace (cuDNN's "reserve space"): everything a training-mode
// forward keeps for backward, in one caller-owned buffer. Always steps * batch *
// gru_workspace_size(cfg, 1, 1), so a caller can size it for symbolic shapes too.
size_t gru_workspace_size(const GruConfig& cfg, size_t steps, size_t batch);

// Throws (as gru_param_layout, and std::overflow_error) unless every buffer a forward and
// backward over `steps` x `batch` uses (inputs, outputs, states, training cache, workspaces) has
// a size that fits in memory's address range. gru_forward calls it first; callers that allocate
// the outputs call it before allocating.
void gru_check_sizes(const GruConfig& cfg, size_t steps, size_t batch);

// Throws std::invalid_argument unless cfg.compute_dtype suits buffers of T (bfloat16 products
// need float). gru_forward, gru_backward and gru_step call it first.
template <class T>
void gru_check_compute_dtype(const GruConfig& cfg) {
  if (cfg.compute_dtype == ComputeDtype::bfloat16 && !std::is_same<T, float>::value)
    throw std::invalid_argument("compute_dtype: bfloat16 products need float32 buffers, not float64");
}

// x (T, B, I) time-major; h0 (L*D, B, H) or nullptr for zeros; lengths (B,) in 1..T or
// nullptr; dropout (L-1, T, B, D*H) multipliers for the inputs of layers 1.. or nullptr.
// Writes y (T, B, D*H) and h_n (L*D, B, H). workspace == nullptr: inference, nothing kept;
// else training: fills gru_workspace_size(cfg, T, B) elements for gru_backward (every one of
// them, as a function of the inputs).
template <class T>
void gru_forward(const GruConfig& cfg, const T* params, size_t steps, size_t batch, const T* x, const T* h0,
                 const int64_t* lengths, const T* dropout, T* y, T* h_n, T* workspace);

// What gru_backward needs of a training-mode forward: its shape, lengths and dropout
// multipliers (the same pointers it was given, or equal copies) and the workspace it filled.
template <class T>
struct GruCache {
  size_t steps = 0, batch = 0;
  const int64_t* lengths = nullptr;  // (B,) or nullptr: every length == steps
  const T* dropout = nullptr;        // (L-1, T, B, D*H) or nullptr
  const T* workspace = nullptr;      // gru_workspace_size(cfg, steps, batch) elements
};

// dy (T, B, D*H), dh_n (L*D, B, H) or nullptr for zeros. Writes dx (T, B, I) (nullptr: the
// input's gradient is not wanted, and its product with W_ih over every step, a sixth of the
// backward's arithmetic when I = H/2, is skipped)
// and dh0 (L*D, B, H); adds the parameter gradients into grad (same layout as params), or with
// accumulate = false writes them there (grad need not be initialised: no zero fill first).
template <class T>
void gru_backward(const GruConfig& cfg, const T* params, const GruCache<T>& cache, const T* dy, const T* dh_n, T* dx,
                  T* dh0, T* grad, bool accumulate = true);

// One time step of a unidirectional GRU, for inference on a stream: x (B, I), h (L, B, H);
// writes h_new (L, B, H) (the step's output is h_new's last layer). Reads the weights in
// params' torch layout in place (nothing packed, nothing kept), so a step costs one pass over
// the weights; whole sequences are faster through gru_forward. No dropout (inference).
template <class T>
void gru_step(const GruConfig& cfg, const T* params, size_t batch, const T* x, const T* h, T* h_new);

// int8 weights for inference (fastgru.quantize): symmetric, one scale per weight row, the
// weight being its int8 value times its row's scale. Every product of the GRU meets them with
// its float32 vector quantized the same way, one scale per vector (x_t or a lower layer's
// output, h, and r * h for reset-before; per sequence and step), and sums the int8 products
// exactly in int32; the sum times the two scales is the product. The specification is
// python/fastgru/reference/quantize.py; gate math, biases, states and outputs stay float32.
template <class T>
struct Int8Weights {
  const int8_t* packed;  // (gru_int8_packed_size): the int8 weights as gru_pack_int8 packs them
  const T* scales;       // (L*D, 2, 3H): per direction, weight_ih's row scales, then weight_hh's
};

// The int8 weights as the int8 kernels read them, packed once: gru_pack_int8 copies the weight
// matrices of `weights` (gru_param_count int8 values, each weight at its gru_param_layout place;
// the bias places are not read) into `packed` (gru_int8_packed_size bytes), in panels of 16 rows
// by 4 inputs per 64 bytes, each gate's rows and each matrix's inputs padded with zeros, and
// each row's weight sum.
size_t gru_int8_packed_size(const GruConfig& cfg);
void gru_pack_int8(const GruConfig& cfg, const int8_t* weights, int8_t* packed);

// The most inputs an int8 product may have: its int32 sum of products of at most 127 * 127
// must not overflow. gru_step_int8 and gru_forward_int8 throw std::invalid_argument beyond.
constexpr size_t kMaxInt8Depth = 2147483647 / (127 * 127);

// gru_step with int8 weights (the biases from params): reads a quarter of float's bytes per
// step (the step is bound by reading the weights). T float, cfg.compute_dtype float32.
template <class T>
void gru_step_int8(const GruConfig& cfg, const Int8Weights<T>& int8, const T* params, size_t batch, const T* x,
                   const T* h, T* h_new);

// gru_forward for inference with int8 weights, built from gru_step_int8's steps: every sequence
// gives exactly what stepping it gives. Arguments as gru_forward's (no dropout, no workspace).
// Sequences run in parallel; each one's result does not depend on the thread count or on the
// other sequences of the batch.
template <class T>
void gru_forward_int8(const GruConfig& cfg, const Int8Weights<T>& int8, const T* params, size_t steps, size_t batch,
                      const T* x, const T* h0, const int64_t* lengths, T* y, T* h_n);

}  // namespace fastgru
