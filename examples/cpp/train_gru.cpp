// Trains a small GRU regressor in C++ alone, on data it generates, and prints the loss per epoch.
// The task: from a sequence of 2 noisy features, predict the mean of feature 0 over the last 5 steps.
// Model: GRU (I=2, H=16) -> Dense head on the last state (H -> 1) -> mean squared error, all
// parameters in one flat buffer updated by one fused Adam step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include <fastgru/adam.h>
#include <fastgru/cpu.h>
#include <fastgru/dense.h>
#include <fastgru/gru.h>
#include <fastgru/loss.h>
#include <fastgru/version.h>

namespace {

constexpr size_t kSteps = 20, kBatch = 32, kInputs = 2, kHidden = 16, kBatches = 8, kEpochs = 15;
constexpr size_t kWindow = 5;  // the target averages feature 0 over the last kWindow steps

struct Batch {
  std::vector<float> x;       // (T, B, I), time-major
  std::vector<float> target;  // (B, 1)
};

Batch make_batch(std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch batch{std::vector<float>(kSteps * kBatch * kInputs), std::vector<float>(kBatch, 0.0f)};
  for (float& v : batch.x) v = normal(rng);
  for (size_t t = kSteps - kWindow; t < kSteps; ++t)
    for (size_t b = 0; b < kBatch; ++b) batch.target[b] += batch.x[(t * kBatch + b) * kInputs] / kWindow;
  return batch;
}

}  // namespace

int main() {
  fastgru::GruConfig gru;
  gru.input_size = kInputs;
  gru.hidden_size = kHidden;

  // One flat buffer: the GRU's parameters (torch.nn.GRU layout), then the head's weight (1, H)
  // and bias (1,). Initialized as torch does: uniform in +-1/sqrt(H).
  const size_t gru_size = fastgru::gru_param_count(gru);
  const size_t size = gru_size + kHidden + 1;
  std::vector<float> params(size), grad(size), exp_avg(size, 0.0f), exp_avg_sq(size, 0.0f);
  std::mt19937 rng(0);
  const float bound = 1.0f / std::sqrt(static_cast<float>(kHidden));
  std::uniform_real_distribution<float> uniform(-bound, bound);
  for (float& p : params) p = uniform(rng);
  const float* head_weight = params.data() + gru_size;
  const float* head_bias = head_weight + kHidden;

  std::vector<Batch> data;
  for (size_t i = 0; i < kBatches; ++i) data.push_back(make_batch(rng));

  fastgru::AdamConfig adam;
  adam.lr = 1e-2;
  fastgru::GruCache<float> cache;
  std::vector<float> y(kSteps * kBatch * kHidden), h_n(kBatch * kHidden), prediction(kBatch),
      dprediction(kBatch), dh_n(kBatch * kHidden), dy(y.size(), 0.0f), dx(kSteps * kBatch * kInputs),
      dh0(kBatch * kHidden);
  int64_t step = 0;

  std::printf("fastgru %s (%s kernels): GRU(%zu -> %zu) + Dense(%zu -> 1), %zu parameters\n",
              FASTGRU_VERSION, fastgru::active_isa().c_str(), kInputs, kHidden, kHidden, size);
  for (size_t epoch = 1; epoch <= kEpochs; ++epoch) {
    double loss_sum = 0.0;
    for (const Batch& batch : data) {
      fastgru::gru_forward<float>(gru, params.data(), kSteps, kBatch, batch.x.data(), nullptr, nullptr,
                           nullptr, y.data(), h_n.data(), &cache);
      fastgru::dense_forward(kBatch, kHidden, 1, h_n.data(), head_weight, head_bias, prediction.data());
      loss_sum += fastgru::loss_forward_backward(fastgru::LossKind::mse, kBatch, 1, prediction.data(),
                                                 batch.target.data(), nullptr, nullptr,
                                                 dprediction.data());
      // The head reads the last state only: its gradient enters the GRU as dh_n, with dy = 0.
      std::fill(grad.begin(), grad.end(), 0.0f);
      fastgru::dense_backward(kBatch, kHidden, 1, h_n.data(), head_weight, dprediction.data(),
                              dh_n.data(), grad.data() + gru_size, grad.data() + gru_size + kHidden);
      fastgru::gru_backward(gru, params.data(), cache, dy.data(), dh_n.data(), dx.data(), dh0.data(),
                            grad.data());
      fastgru::adam_step<float>(adam, size, params.data(), grad.data(), exp_avg.data(), exp_avg_sq.data(),
                         nullptr, ++step);
    }
    std::printf("epoch %2zu  loss %.6f\n", epoch, loss_sum / kBatches);
  }
  return 0;
}
