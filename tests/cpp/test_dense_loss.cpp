// dense_forward / dense_backward and loss_forward_backward against plain double loops of
// torch.nn.Linear and the four torch losses (reference: python/fastgru/reference/heads.py).
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "check.h"
#include "fastgru/dense.h"
#include "fastgru/loss.h"

using namespace fastgru;
using namespace fastgru_test;

namespace {

template <class T>
void check_dense(size_t R, size_t in, size_t out, const std::string& at, Checker& check) {
  const std::vector<T> x = random_vector<T>(R * in), w = random_vector<T>(out * in), b = random_vector<T>(out);
  const std::vector<T> dy = random_vector<T>(R * out);
  std::vector<double> y_ref(R * out), dx_ref(R * in, 0), dw_ref(out * in, 0), db_ref(out, 0);
  for (size_t r = 0; r < R; ++r)
    for (size_t o = 0; o < out; ++o) {
      double sum = b[o];
      for (size_t i = 0; i < in; ++i) {
        sum += double(x[r * in + i]) * w[o * in + i];
        dx_ref[r * in + i] += double(dy[r * out + o]) * w[o * in + i];
        dw_ref[o * in + i] += double(dy[r * out + o]) * x[r * in + i];
      }
      y_ref[r * out + o] = sum;
      db_ref[o] += dy[r * out + o];
    }
  std::vector<T> y(R * out), dx(R * in), dw(out * in, T(0)), db(out, T(0));
  dense_forward<T>(R, in, out, x.data(), w.data(), b.data(), y.data());
  dense_backward<T>(R, in, out, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  check.close(at + " dense y", y, y_ref, tol);
  check.close(at + " dense dx", dx, dx_ref, tol);
  check.close(at + " dense dweight", dw, dw_ref, tol);
  check.close(at + " dense dbias", db, db_ref, tol);
}

// The loss of one row summed over its outputs, and its gradient (before the mean's scaling).
double naive_row(LossKind kind, size_t O, const double* x, const double* y, int64_t label, double* dx) {
  double sum = 0;
  if (kind == LossKind::cross_entropy) {
    double m = x[0], s = 0;
    for (size_t j = 0; j < O; ++j) m = std::max(m, x[j]);
    for (size_t j = 0; j < O; ++j) s += std::exp(x[j] - m);
    for (size_t j = 0; j < O; ++j) dx[j] = std::exp(x[j] - m) / s - (int64_t(j) == label);
    return m + std::log(s) - x[label];
  }
  for (size_t j = 0; j < O; ++j) {
    const double d = x[j] - y[j];
    if (kind == LossKind::mse) sum += d * d, dx[j] = 2 * d;
    if (kind == LossKind::mae) sum += std::fabs(d), dx[j] = d > 0 ? 1 : d < 0 ? -1 : 0;
    if (kind == LossKind::binary_crossentropy) {
      sum += -(y[j] * std::log(1 / (1 + std::exp(-x[j]))) + (1 - y[j]) * std::log(1 - 1 / (1 + std::exp(-x[j]))));
      dx[j] = 1 / (1 + std::exp(-x[j])) - y[j];
    }
  }
  return sum;
}

template <class T>
void check_loss(LossKind kind, size_t R, size_t O, bool masked, const std::string& at, Checker& check) {
  const std::vector<T> logits = random_vector<T>(R * O, 3.0);
  std::vector<T> target = random_vector<T>(R * O);
  if (kind == LossKind::binary_crossentropy)
    for (T& t : target) t = t > 0 ? T(1) : T(0);
  std::vector<int64_t> labels(R);
  for (size_t r = 0; r < R; ++r) labels[r] = int64_t((r * 7) % O);
  std::unique_ptr<bool[]> mask(new bool[R]);
  size_t valid = 0;
  for (size_t r = 0; r < R; ++r) valid += (mask[r] = !masked || r % 3 != 1);
  const size_t count = kind == LossKind::cross_entropy ? valid : valid * O;

  std::vector<double> x(logits.begin(), logits.end()), y(target.begin(), target.end());
  std::vector<double> d_ref(R * O, 0);
  double loss_ref = 0;
  for (size_t r = 0; r < R; ++r)
    if (mask[r]) loss_ref += naive_row(kind, O, &x[r * O], &y[r * O], labels[r], &d_ref[r * O]);
  loss_ref /= double(count);
  for (double& d : d_ref) d /= double(count);

  std::vector<T> d(R * O);
  const bool ce = kind == LossKind::cross_entropy;
  const double loss = loss_forward_backward<T>(kind, R, O, logits.data(), ce ? nullptr : target.data(),
                                               ce ? labels.data() : nullptr, masked ? mask.get() : nullptr, d.data());
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  check.close(at + " loss value", &loss, &loss_ref, 1, tol);
  check.close(at + " dlogits", d, d_ref, tol);
}

}  // namespace

int main() {
  Checker check;
  for_each_isa([&](const std::string& isa) {
    for (auto [R, in, out] : {std::tuple{1, 1, 1}, std::tuple{7, 5, 3}, std::tuple{130, 33, 17}}) {
      check_dense<float>(R, in, out, isa + " f32", check);
      check_dense<double>(R, in, out, isa + " f64", check);
    }
    const LossKind kinds[] = {LossKind::mse, LossKind::mae, LossKind::binary_crossentropy, LossKind::cross_entropy};
    const char* names[] = {"mse", "mae", "binary_crossentropy", "cross_entropy"};
    for (int k = 0; k < 4; ++k)
      for (bool masked : {false, true}) {
        const std::string at = isa + " " + names[k] + (masked ? " masked" : "");
        check_loss<float>(kinds[k], 150, 5, masked, at + " f32", check);
        check_loss<double>(kinds[k], 150, 5, masked, at + " f64", check);
      }
  });
  return check.report("test_dense_loss");
}
