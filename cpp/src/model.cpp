#include "fastgru/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "fastgru/checked.h"
#include "fastgru/dense.h"

namespace fastgru {

std::vector<ParamTensor> model_param_layout(const ModelConfig& cfg) {
  std::vector<ParamTensor> layout;
  for (ParamTensor p : gru_param_layout(cfg.gru)) {
    p.name = "gru." + p.name;
    layout.push_back(p);
  }
  const size_t head = layout_end(layout);
  for (ParamTensor p : dense_param_layout(cfg.features(), cfg.output_size, cfg.gru.bias)) {
    p.name = "head." + p.name;
    p.offset = checked_add(head, p.offset, "the model's parameter count");
    checked_add(p.offset, p.size(), "the model's parameter count");
    layout.push_back(p);
  }
  return layout;
}

size_t model_param_count(const ModelConfig& cfg) { return layout_end(model_param_layout(cfg)); }

template <class T>
Model<T>::Model(const ModelConfig& cfg) : cfg_(cfg) {
  if (cfg.output_size < 1) throw std::invalid_argument("ModelConfig: output_size must be >= 1");
  const std::vector<ParamTensor> layout = model_param_layout(cfg);
  for (const ParamTensor& p : layout) {
    if (p.name == "head.weight") head_weight_ = p.offset;
    if (p.name == "head.bias") head_bias_ = p.offset;
  }
  param_count_ = layout_end(layout);
}

template <class T>
void Model<T>::forward(const T* params, size_t steps, size_t batch, const T* x, const int64_t* lengths,
                       const T* gru_dropout, const T* head_dropout, bool training, T* out) {
  const GruConfig& g = cfg_.gru;
  const size_t H = g.hidden_size, D = g.directions(), L = g.num_layers, F = cfg_.features();
  const size_t BH = batch * H;
  y_.resize(steps * batch * F);
  h_n_.resize(L * D * BH);
  if (training) workspace_.resize(gru_workspace_size(g, steps, batch));
  gru_forward<T>(g, params, steps, batch, x, nullptr, lengths, gru_dropout, y_.data(), h_n_.data(),
                 training ? workspace_.data() : nullptr);

  const size_t rows = cfg_.return_sequences ? steps * batch : batch;
  head_input_ = y_.data();
  if (!cfg_.return_sequences || head_dropout) {
    features_.resize(rows * F);
    if (cfg_.return_sequences) {
      std::copy(y_.begin(), y_.end(), features_.begin());
    } else {  // the top layer's final states, directions side by side
      for (size_t d = 0; d < D; ++d) {
        const T* h = h_n_.data() + ((L - 1) * D + d) * BH;
        for (size_t b = 0; b < batch; ++b) std::copy(h + b * H, h + (b + 1) * H, features_.data() + b * F + d * H);
      }
    }
    if (head_dropout)
      for (size_t i = 0; i < rows * F; ++i) features_[i] *= head_dropout[i];
    head_input_ = features_.data();
  }
  const T* weight = params + head_weight_;
  const T* bias = g.bias ? params + head_bias_ : nullptr;
  dense_forward<T>(rows, F, cfg_.output_size, head_input_, weight, bias, out);
}

template <class T>
LossSum Model<T>::compute_gradients(const T* params, T* grad, const Batch<T>& b, double loss_normalizer) {
  const GruConfig& g = cfg_.gru;
  const size_t H = g.hidden_size, D = g.directions(), L = g.num_layers, F = cfg_.features();
  const size_t O = cfg_.output_size, rows = cfg_.return_sequences ? b.steps * b.batch : b.batch;
  const bool labels = cfg_.loss == LossKind::cross_entropy;
  if (labels ? !b.labels : !b.target)
    throw std::invalid_argument(labels ? "cross_entropy needs labels" : "this loss needs float targets");
  logits_.resize(rows * O);
  forward(params, b.steps, b.batch, b.x, b.lengths, b.gru_dropout, b.head_dropout, true, logits_.data());

  LossSum loss;
  loss.count = loss_count(cfg_.loss, rows, O, b.mask);
  const double normalizer = loss_normalizer > 0 ? loss_normalizer : static_cast<double>(loss.count);
  const T scale = normalizer > 0 ? static_cast<T>(1.0 / normalizer) : T(0);
  dlogits_.resize(rows * O);
  loss.sum = loss_sum_backward<T>(cfg_.loss, rows, O, logits_.data(), labels ? nullptr : b.target,
                                  labels ? b.labels : nullptr, b.mask, scale, dlogits_.data());

  // The head: its parameter gradients, and the gradient of its input.
  const T* weight = params + head_weight_;
  T* dweight = grad + head_weight_;
  T* dbias = g.bias ? grad + head_bias_ : nullptr;
  dfeatures_.resize(rows * F);
  dense_backward<T>(rows, F, O, head_input_, weight, dlogits_.data(), dfeatures_.data(), dweight, dbias);
  if (b.head_dropout)
    for (size_t i = 0; i < rows * F; ++i) dfeatures_[i] *= b.head_dropout[i];

  // The GRU: through every step's output, or through the top layer's final states only.
  const size_t BH = b.batch * H, out_size = b.steps * b.batch * F;
  const GruCache<T> cache{b.steps, b.batch, b.lengths, b.gru_dropout, workspace_.data()};
  dh0_.resize(L * D * BH);
  // No dx (nullptr): no one reads the input's gradient, so its product is skipped.
  if (cfg_.return_sequences) {
    gru_backward<T>(g, params, cache, dfeatures_.data(), nullptr, nullptr, dh0_.data(), grad);
  } else {
    if (zero_dy_.size() != out_size) zero_dy_.assign(out_size, T(0));
    dh_n_.assign(L * D * BH, T(0));
    for (size_t d = 0; d < D; ++d) {
      T* dh = dh_n_.data() + ((L - 1) * D + d) * BH;
      for (size_t r = 0; r < b.batch; ++r)
        std::copy(dfeatures_.data() + r * F + d * H, dfeatures_.data() + r * F + (d + 1) * H, dh + r * H);
    }
    gru_backward<T>(g, params, cache, zero_dy_.data(), dh_n_.data(), nullptr, dh0_.data(), grad);
  }
  return loss;
}

template <class T>
StepReport Model<T>::apply_gradients(T* params, T* grad, double loss, const AdamConfig& adam, AdamState<T>& state,
                                     double max_norm) {
  StepReport report;
  report.loss = loss;
  report.grad_norm = global_norm(param_count_, grad);
  if (!std::isfinite(loss) || !std::isfinite(report.grad_norm)) return report;
  const double scale = max_norm > 0 ? clip_scale(report.grad_norm, max_norm) : 1.0;
  state.step += 1;
  adam_step<T>(adam, param_count_, params, grad, state.exp_avg, state.exp_avg_sq,
               adam.amsgrad ? state.max_exp_avg_sq : nullptr, state.step, static_cast<T>(scale));
  std::fill(grad, grad + param_count_, T(0));
  report.applied = true;
  return report;
}

template <class T>
StepReport Model<T>::train_step(T* params, T* grad, const Batch<T>& batch, const AdamConfig& adam, AdamState<T>& state,
                                double max_norm) {
  const LossSum loss = compute_gradients(params, grad, batch);
  const double mean = loss.count ? loss.sum / static_cast<double>(loss.count) : 0.0;
  return apply_gradients(params, grad, mean, adam, state, max_norm);
}

template <class T>
void Model<T>::predict(const T* params, size_t steps, size_t batch, const T* x, const int64_t* lengths, T* out) {
  forward(params, steps, batch, x, lengths, nullptr, nullptr, false, out);
}

template class Model<float>;
template class Model<double>;

}  // namespace fastgru
