// A cancel request stops a running forward or backward between time steps (it throws
// Cancelled), and once cleared the core computes as before.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "check.h"
#include "fastgru/cancel.h"
#include "fastgru/gru.h"

using namespace fastgru;
using namespace fastgru_test;

int main() {
  Checker check;
  GruConfig cfg;
  cfg.input_size = 2;
  cfg.hidden_size = 8;
  cfg.reset_after = false;
  const size_t T = 50, B = 2;
  const std::vector<float> params = random_vector<float>(gru_param_count(cfg));
  const std::vector<float> x = random_vector<float>(T * B * 2), dy = random_vector<float>(T * B * 8);
  std::vector<float> y(T * B * 8), h_n(B * 8), dx(T * B * 2), dh0(B * 8), grad(params.size());
  auto forward = [&](float* workspace) {
    gru_forward<float>(cfg, params.data(), T, B, x.data(), nullptr, nullptr, nullptr, y.data(), h_n.data(), workspace);
  };
  std::vector<float> workspace(gru_workspace_size(cfg, T, B));
  forward(workspace.data());
  const GruCache<float> cache{T, B, nullptr, nullptr, workspace.data()};

  request_cancel();
  check.throws<Cancelled>("forward after a cancel request", [&] { forward(nullptr); });
  check.throws<Cancelled>("backward after a cancel request", [&] {
    gru_backward<float>(cfg, params.data(), cache, dy.data(), nullptr, dx.data(), dh0.data(), grad.data());
  });
  clear_cancel();
  const std::vector<float> y_before = y;
  forward(nullptr);
  check.close("forward after clear_cancel", y, y_before, 0.0);

  // A request from another thread while a long forward (seconds) runs. Should the forward ever
  // finish before the request, it must have run to the end undisturbed.
  GruConfig deep = cfg;
  deep.num_layers = 200;
  const std::vector<float> deep_params = random_vector<float>(gru_param_count(deep));
  std::vector<float> long_x = random_vector<float>(2000 * B * 2), long_y(2000 * B * 8), long_h(200 * B * 8);
  std::atomic<bool> requested{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    request_cancel();
    requested = true;
  });
  bool cancelled = false;
  try {
    gru_forward<float>(deep, deep_params.data(), 2000, B, long_x.data(), nullptr, nullptr, nullptr, long_y.data(),
                       long_h.data(), nullptr);
  } catch (const Cancelled&) {
    cancelled = true;
  }
  check.expect("a long forward cancelled from another thread", cancelled || !requested);
  canceller.join();
  clear_cancel();
  return check.report("test_cancel");
}
