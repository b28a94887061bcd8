// Trains a small GRU regressor in C++ alone, on data it generates, and prints the loss per epoch.
// The task: from a sequence of 2 noisy features, predict the mean of feature 0 over the last 5
// steps. The model (fastgru/model.h): GRU (I=2, H=16) -> Dense head on the last state (H -> 1) ->
// mean squared error, every parameter in one flat buffer; one train_step call per batch does
// forward, loss, backward, gradient clipping and the Adam update.
#include <fastgru/cpu.h>
#include <fastgru/model.h>
#include <fastgru/version.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace {

constexpr size_t kSteps = 20, kBatch = 32, kInputs = 2, kHidden = 16, kBatches = 8, kEpochs = 15;
constexpr size_t kWindow = 5;  // the target averages feature 0 over the last kWindow steps

struct Sequences {
  std::vector<float> x;       // (T, B, I), time-major
  std::vector<float> target;  // (B, 1)
};

Sequences make_sequences(std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Sequences data{std::vector<float>(kSteps * kBatch * kInputs), std::vector<float>(kBatch, 0.0f)};
  for (float& v : data.x) v = normal(rng);
  for (size_t t = kSteps - kWindow; t < kSteps; ++t)
    for (size_t b = 0; b < kBatch; ++b) data.target[b] += data.x[(t * kBatch + b) * kInputs] / kWindow;
  return data;
}

}  // namespace

int main() {
  fastgru::ModelConfig config;
  config.gru.input_size = kInputs;
  config.gru.hidden_size = kHidden;
  config.output_size = 1;
  config.return_sequences = false;  // one prediction per sequence, from its last state
  config.loss = fastgru::LossKind::mse;
  fastgru::Model<float> model(config);

  // The flat parameter buffer, initialized as torch does (uniform in +-1/sqrt(H)); the gradient
  // and Adam's moments start at zero.
  const size_t size = model.param_count();
  std::vector<float> params(size), grad(size, 0.0f), exp_avg(size, 0.0f), exp_avg_sq(size, 0.0f);
  std::mt19937 rng(0);
  const float bound = 1.0f / std::sqrt(static_cast<float>(kHidden));
  std::uniform_real_distribution<float> uniform(-bound, bound);
  for (float& p : params) p = uniform(rng);

  std::vector<Sequences> train;
  for (size_t i = 0; i < kBatches; ++i) train.push_back(make_sequences(rng));
  const Sequences test = make_sequences(rng);

  fastgru::AdamConfig adam;
  adam.lr = 1e-2;
  fastgru::AdamState<float> optimizer{exp_avg.data(), exp_avg_sq.data()};
  const double max_grad_norm = 1.0;

  std::printf("fastgru %s (%s kernels): GRU(%zu -> %zu) + Dense(%zu -> 1), %zu parameters\n", FASTGRU_VERSION,
              fastgru::active_isa().c_str(), kInputs, kHidden, kHidden, size);
  for (size_t epoch = 1; epoch <= kEpochs; ++epoch) {
    double loss_sum = 0.0;
    for (const Sequences& data : train) {
      fastgru::Batch<float> batch;
      batch.steps = kSteps;
      batch.batch = kBatch;
      batch.x = data.x.data();
      batch.target = data.target.data();
      const fastgru::StepReport step =
          model.train_step(params.data(), grad.data(), batch, adam, optimizer, max_grad_norm);
      if (!step.applied) {
        std::fprintf(stderr, "epoch %zu: non-finite loss or gradient\n", epoch);
        return 1;
      }
      loss_sum += step.loss;
    }
    std::printf("epoch %2zu  loss %.6f\n", epoch, loss_sum / kBatches);
  }

  std::vector<float> prediction(kBatch);
  model.predict(params.data(), kSteps, kBatch, test.x.data(), nullptr, prediction.data());
  double squared_error = 0.0;
  for (size_t b = 0; b < kBatch; ++b) squared_error += std::pow(prediction[b] - test.target[b], 2);
  std::printf("held-out mse %.6f (predicting 0: %.6f)\n", squared_error / kBatch, 1.0 / kWindow);
  return 0;
}
