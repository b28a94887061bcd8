// The model's head and loss kernels over NumPy arrays: Dense forward/backward and the four
// training losses. The Python layer (python/fastgru/layers.py, losses.py) checks the user's
// arguments; the checks here keep the core's buffers safe whatever calls it.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.h"
#include "fastgru/dense.h"
#include "fastgru/loss.h"

namespace py = pybind11;

namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;
using Labels = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using Mask = py::array_t<bool, py::array::c_style | py::array::forcecast>;

template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

void expect_2d(const py::array& a, const char* name, py::ssize_t rows, py::ssize_t cols,
               const char* text) {
  if (a.ndim() != 2 || (rows >= 0 && a.shape(0) != rows) || (cols >= 0 && a.shape(1) != cols))
    throw py::value_error(std::string(name) + ": expected shape " + text + ", got " + shape_str(a));
}

// A gradient buffer (usually a view into a model's flat grad) that is added into in place.
template <class T>
T* accumulator(const py::array& a, const char* name, std::initializer_list<py::ssize_t> shape) {
  std::string want = "(";
  for (py::ssize_t d : shape) want += (want.size() > 1 ? ", " : "") + std::to_string(d);
  want += shape.size() == 1 ? ",)" : ")";
  bool ok = py::isinstance<py::array_t<T>>(a) && (a.flags() & py::array::c_style) && a.writeable() &&
            static_cast<size_t>(a.ndim()) == shape.size();
  size_t i = 0;
  for (py::ssize_t d : shape) ok = ok && a.shape(i++) == d;
  if (!ok)
    throw py::value_error(std::string(name) + ": expected a writable C-contiguous " + dtype_name<T>() +
                          " array of shape " + want + ", got " + shape_str(a));
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// x (R, in), weight (out, in), bias (out,) or None -> y (R, out).
template <class T>
Array<T> dense_forward(Array<T> x, Array<T> weight, std::optional<Array<T>> bias) {
  expect_2d(weight, "weight", -1, -1, "(out, in)");
  const py::ssize_t out = weight.shape(0), in = weight.shape(1);
  expect_2d(x, "x", -1, in, "(R, in) with in = weight.shape[1]");
  if (bias && (bias->ndim() != 1 || bias->shape(0) != out))
    throw py::value_error("bias: expected shape (out,) = (" + std::to_string(out) + ",), got " +
                          shape_str(*bias));
  const size_t rows = x.shape(0);
  Array<T> y({rows, static_cast<size_t>(out)});
  {
    py::gil_scoped_release release;
    fastgru::dense_forward<T>(rows, in, out, x.data(), weight.data(), bias ? bias->data() : nullptr,
                              y.mutable_data());
  }
  return y;
}

// Adds into grad_weight (out, in) and grad_bias (out,) (None: no bias); returns dx (R, in),
// or None when need_dx is false (skips a GEMM when nothing below needs the gradient).
template <class T>
py::object dense_backward(Array<T> x, Array<T> weight, Array<T> dy, py::array grad_weight,
                          std::optional<py::array> grad_bias, bool need_dx) {
  expect_2d(weight, "weight", -1, -1, "(out, in)");
  const py::ssize_t out = weight.shape(0), in = weight.shape(1);
  expect_2d(x, "x", -1, in, "(R, in) with in = weight.shape[1]");
  const py::ssize_t rows = x.shape(0);
  expect_2d(dy, "dy", rows, out, "(R, out) matching x and weight");
  T* dw = accumulator<T>(grad_weight, "grad_weight", {out, in});
  T* db = grad_bias ? accumulator<T>(*grad_bias, "grad_bias", {out}) : nullptr;
  std::optional<Array<T>> dx;
  if (need_dx) dx.emplace(std::vector<py::ssize_t>{rows, in});
  {
    py::gil_scoped_release release;
    fastgru::dense_backward<T>(rows, in, out, x.data(), weight.data(), dy.data(),
                               dx ? dx->mutable_data() : nullptr, dw, db);
  }
  if (!dx) return py::none();
  return std::move(*dx);
}

fastgru::LossKind loss_kind(const std::string& name) {
  if (name == "mse") return fastgru::LossKind::mse;
  if (name == "mae") return fastgru::LossKind::mae;
  if (name == "binary_crossentropy") return fastgru::LossKind::binary_crossentropy;
  if (name == "cross_entropy") return fastgru::LossKind::cross_entropy;
  throw py::value_error("loss: expected 'mse', 'mae', 'binary_crossentropy' or 'cross_entropy', got '" +
                        name + "'");
}

// logits (R, O); target (R, O) floats, or (R,) integer labels for cross_entropy; mask (R,) bool
// or None. Returns (loss, dlogits (R, O)).
template <class T>
py::tuple loss(const std::string& name, Array<T> logits, py::object target,
               std::optional<Mask> mask) {
  const fastgru::LossKind kind = loss_kind(name);
  expect_2d(logits, "logits", -1, -1, "(R, O)");
  const py::ssize_t rows = logits.shape(0), O = logits.shape(1);
  if (mask && (mask->ndim() != 1 || mask->shape(0) != rows))
    throw py::value_error("mask: expected shape (R,) = (" + std::to_string(rows) + ",), got " +
                          shape_str(*mask));
  const bool* m = mask ? mask->data() : nullptr;
  std::optional<Array<T>> values;
  std::optional<Labels> labels;
  if (kind == fastgru::LossKind::cross_entropy) {
    labels.emplace(Labels::ensure(target));
    if (!*labels || labels->ndim() != 1 || labels->shape(0) != rows)
      throw py::value_error("target: expected integer labels of shape (R,) = (" + std::to_string(rows) +
                            ",) for cross_entropy");
    auto l = labels->template unchecked<1>();
    for (py::ssize_t r = 0; r < rows; ++r)
      if ((!m || m[r]) && (l(r) < 0 || l(r) >= O))
        throw py::value_error("target: labels must be in [0, " + std::to_string(O) + "), got " +
                              std::to_string(l(r)) + " at row " + std::to_string(r));
  } else {
    values.emplace(Array<T>::ensure(target));
    if (!*values) throw py::type_error("target: expected an array of numbers");
    expect_2d(*values, "target", rows, O, "(R, O) matching logits");
  }
  Array<T> dlogits({rows, O});
  double value;
  {
    py::gil_scoped_release release;
    value = fastgru::loss_forward_backward<T>(kind, rows, O, logits.data(),
                                              values ? values->data() : nullptr,
                                              labels ? labels->data() : nullptr, m,
                                              dlogits.mutable_data());
  }
  return py::make_tuple(value, dlogits);
}

template <class T>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("dense_forward_" + suffix).c_str(), &dense_forward<T>, py::arg("x"), py::arg("weight"),
        py::arg("bias") = py::none(), "y (R, out) = x (R, in) weight^T (in, out) + bias (out,).");
  m.def(("dense_backward_" + suffix).c_str(), &dense_backward<T>, py::arg("x"), py::arg("weight"),
        py::arg("dy"), py::arg("grad_weight"), py::arg("grad_bias") = py::none(),
        py::arg("need_dx") = true,
        "Adds dy^T x into grad_weight and dy's column sums into grad_bias; returns dx = dy weight "
        "(or None when need_dx is false).");
  m.def(("loss_" + suffix).c_str(), &loss<T>, py::arg("kind"), py::arg("logits"), py::arg("target"),
        py::arg("mask") = py::none(),
        "(loss, dlogits): the mean loss over valid rows and its gradient with respect to logits.");
}

}  // namespace

void bind_model(py::module_& m) {
  // One name per dtype: an overload set would silently convert between them.
  bind_dtype<float>(m, "float32");
  bind_dtype<double>(m, "float64");
}
