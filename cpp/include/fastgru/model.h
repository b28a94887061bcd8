// A whole trainable model: GRU stack -> dropout -> Dense head -> loss, with every parameter in
// ONE flat buffer (the GRU's, in gru_param_layout order, then the head's weight (O, D*H) and
// bias (O,)), so one training step is one call: forward, loss, backward, gradient norm,
// clipping folded into the fused Adam/AdamW update, non-finite check.
// Mirrors python/fastgru/model.py (GRUModel.forward/backward composed with fastgru.losses and
// fastgru.Adam), which the tests hold this code to.
//
//   Model<float> model(cfg);
//   std::vector<float> params(model.param_count()), grad(...), m(...), v(...);  // grad, m, v zeros
//   AdamState<float> opt{m.data(), v.data()};
//   StepReport r = model.train_step(params.data(), grad.data(), batch, adam_cfg, opt, max_norm);
//
// A data-parallel caller splits the step: compute_gradients on its part of the batch with the
// whole batch's loss count as normalizer, sums grad and the loss sums over the processes, then
// apply_gradients on every process.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastgru/adam.h"
#include "fastgru/buffer.h"
#include "fastgru/gru.h"
#include "fastgru/loss.h"

namespace fastgru {

struct ModelConfig {
  GruConfig gru;
  size_t output_size = 1;        // O
  bool return_sequences = true;  // head at every step, else on each sequence's last state
  LossKind loss = LossKind::mse;

  size_t features() const { return gru.directions() * gru.hidden_size; }  // D*H, the head's input
};

// The model's flat buffer: the GRU's tensors named "gru.<name>" (gru_param_layout), then the
// head's named "head.<name>" (dense_param_layout: weight (O, D*H), bias (O) when cfg.gru.bias),
// the names of a PyTorch module's submodules `gru` and `head`.
std::vector<ParamTensor> model_param_layout(const ModelConfig& cfg);
// Its size: gru_param_count + the head's O*D*H weights and O biases.
size_t model_param_count(const ModelConfig& cfg);

// One batch, time-major. rows = T*B with return_sequences (row t*B + b), else B.
template <class T>
struct Batch {
  size_t steps = 0, batch = 0;       // T, B
  const T* x = nullptr;              // (T, B, I)
  const int64_t* lengths = nullptr;  // (B,) in 1..T, or nullptr: all T
  const T* target = nullptr;         // (rows, O) for mse, mae, binary_crossentropy
  const int64_t* labels = nullptr;   // (rows,) in [0, O) for cross_entropy
  const bool* mask = nullptr;        // (rows,) valid rows, or nullptr: all rows count
  const T* gru_dropout = nullptr;    // (L-1, T, B, D*H) multipliers, or nullptr
  const T* head_dropout = nullptr;   // (rows, D*H) multipliers on the head's input, or nullptr
};

// What the loss of one (part of a) batch adds up to.
struct LossSum {
  double sum = 0.0;  // the sum of the valid terms (mean * count)
  size_t count = 0;  // loss_count: the terms the mean divides by
};

struct StepReport {
  double loss = 0.0;       // the batch's mean loss (train_step), or the loss given to apply_gradients
  double grad_norm = 0.0;  // global L2 norm of the gradient before clipping
  bool applied = false;    // false: the loss or the gradient was NaN/inf; params, the optimizer
                           // state and grad are left as they were
};

template <class T>
class Model {
 public:
  explicit Model(const ModelConfig& cfg);
  const ModelConfig& config() const { return cfg_; }
  size_t param_count() const { return param_count_; }

  // Forward, loss and backward on one batch: ADDS the gradient of
  // (sum of the valid loss terms) / loss_normalizer into grad (param_count,) and returns the
  // loss sum and count. loss_normalizer <= 0 means the batch's own count (the batch's mean).
  LossSum compute_gradients(const T* params, T* grad, const Batch<T>& batch, double loss_normalizer = 0.0);

  // The optimizer step on a finished gradient: its global norm (global_norm), the clipping
  // factor (clip_scale; max_norm <= 0 or inf: no clipping) passed to adam_step as grad_scale,
  // then grad is zeroed. Nothing is touched when loss or the norm is not finite.
  StepReport apply_gradients(T* params, T* grad, double loss, const AdamConfig& adam, AdamState<T>& state,
                             double max_norm);

  // compute_gradients on the whole batch, then apply_gradients with its mean loss.
  StepReport train_step(T* params, T* grad, const Batch<T>& batch, const AdamConfig& adam, AdamState<T>& state,
                        double max_norm);

  // Inference: writes out (rows, O), rows = T*B with return_sequences else B (padded steps
  // hold the head's value for a zero GRU output).
  void predict(const T* params, size_t steps, size_t batch, const T* x, const int64_t* lengths, T* out);

 private:
  // The GRU forward and the head, keeping what backward needs when training.
  void forward(const T* params, size_t steps, size_t batch, const T* x, const int64_t* lengths, const T* gru_dropout,
               const T* head_dropout, bool training, T* out);

  ModelConfig cfg_;
  size_t head_weight_ = 0, head_bias_ = 0, param_count_ = 0;  // offsets (model_param_layout), size
  Buffer<T> workspace_;                                       // the GRU's training workspace (gru_workspace_size)
  Buffer<T> y_, h_n_;                                         // GRU outputs (T, B, D*H), (L*D, B, H)
  Buffer<T> features_;                                        // the head's input (rows, D*H) when it is not y_ itself
  const T* head_input_ = nullptr;                             // features_ or y_: what the last forward fed the head
  Buffer<T> logits_, dlogits_;                                // (rows, O)
  Buffer<T> dfeatures_;                                       // (rows, D*H)
  Buffer<T> dh_n_, dh0_;                                      // GRU backward's input and (unused) output
  std::vector<T> zero_dy_;  // (T, B, D*H) zeros: a per-sequence head has no per-step gradient
};

}  // namespace fastgru
