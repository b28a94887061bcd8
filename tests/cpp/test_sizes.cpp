// Absurd sizes are refused with an exception before any buffer is touched (the pointers given
// here are null: a kernel that ran would crash), instead of wrapping around to a small buffer.
#include <stdexcept>
#include <string>

#include "check.h"
#include "fastgru/checked.h"
#include "fastgru/dense.h"
#include "fastgru/gemm.h"
#include "fastgru/gru.h"
#include "fastgru/loss.h"

using namespace fastgru;
using namespace fastgru_test;

int main() {
  Checker check;
  const size_t huge = size_t(1) << 62;

  check.expect("checked_mul of fitting sizes", checked_mul(3, 5, "x") == 15);
  check.throws<std::overflow_error>("checked_mul wrapping past 2^64", [&] { checked_mul(huge, 8, "x"); });
  check.throws<std::overflow_error>("checked_mul above kMaxElements", [&] { checked_mul(kMaxElements, 2, "x"); });
  check.throws<std::overflow_error>("checked_add above kMaxElements", [&] { checked_add(kMaxElements, 1, "x"); });
  check.expect("checked_product with a zero dim", checked_product({huge, huge, 0}, "x") == 0);
  check.throws<std::overflow_error>("checked_product", [&] { checked_product({huge, 2, 2}, "x"); });

  GruConfig wide;  // 3H * I wrapped to 0 before: a 72-element buffer claimed (12, 2^62) weights
  wide.input_size = huge;
  wide.hidden_size = 4;
  check.throws<std::overflow_error>("gru_param_count(I = 2^62)", [&] { gru_param_count(wide); });
  GruConfig deep;
  deep.input_size = 4;
  deep.hidden_size = 8;
  deep.num_layers = 1000000000;
  check.throws<std::invalid_argument>("gru_param_layout(num_layers = 1e9)", [&] { gru_param_layout(deep); });
  deep.num_layers = kMaxLayers;
  check.expect("kMaxLayers layers are allowed", gru_param_layout(deep).size() == 4 * kMaxLayers);

  GruConfig small;
  small.input_size = 3;
  small.hidden_size = 5;
  gru_check_sizes(small, 100, 100);
  check.throws<std::overflow_error>("gru_check_sizes(T * B * H overflows)",
                                    [&] { gru_check_sizes(small, huge, huge); });
  check.throws<std::overflow_error>("gru_forward with T * B too large", [&] {
    gru_forward<float>(small, nullptr, huge, 64, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  });
  check.throws<std::overflow_error>("dense_forward with rows * out too large",
                                    [&] { dense_forward<float>(huge, 4, 4, nullptr, nullptr, nullptr, nullptr); });
  check.throws<std::overflow_error>("dense_backward with in * out too large", [&] {
    dense_backward<double>(1, huge, huge, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  });
  check.throws<std::overflow_error>("loss with rows * outputs too large", [&] {
    loss_forward_backward<float>(LossKind::mse, huge, 8, nullptr, nullptr, nullptr, nullptr, nullptr);
  });
  check.throws<std::overflow_error>("gemm with M * ldc too large", [&] {
    gemm<float>(Trans::no, Trans::no, huge, 2, 2, nullptr, 2, nullptr, 2, 0.f, nullptr, 64);
  });
  return check.report("test_sizes");
}
