// The Dense head's kernels (cpp/include/fastgru/dense.h) over NumPy arrays. The Python layer
// (python/fastgru/dense.py) checks the user's arguments; the checks here keep the core's
// buffers safe whatever calls it.
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "fastgru/dense.h"

namespace py = pybind11;
using bindings::Array;
using bindings::expect_shape;

namespace {

// x (R, in), weight (out, in), bias (out,) or None -> y (R, out).
template <class T>
Array<T> dense_forward(Array<T> x, Array<T> weight, std::optional<Array<T>> bias) {
  expect_shape(weight, {-1, -1}, "weight");
  const py::ssize_t out = weight.shape(0), in = weight.shape(1);
  expect_shape(x, {-1, in}, "x");
  if (bias) expect_shape(*bias, {out}, "bias");
  const size_t rows = x.shape(0);
  Array<T> y({rows, static_cast<size_t>(out)});
  {
    py::gil_scoped_release release;
    fastgru::dense_forward<T>(rows, in, out, x.data(), weight.data(), bias ? bias->data() : nullptr, y.mutable_data());
  }
  return y;
}

// Adds into grad_weight (out, in) and grad_bias (out,) (None: no bias); returns dx (R, in),
// or None when need_dx is false (skips a GEMM when nothing below needs the gradient).
template <class T>
py::object dense_backward(Array<T> x, Array<T> weight, Array<T> dy, py::array grad_weight,
                          std::optional<py::array> grad_bias, bool need_dx) {
  expect_shape(weight, {-1, -1}, "weight");
  const py::ssize_t out = weight.shape(0), in = weight.shape(1);
  expect_shape(x, {-1, in}, "x");
  const py::ssize_t rows = x.shape(0);
  expect_shape(dy, {rows, out}, "dy");
  T* dw = bindings::writable<T>(grad_weight, "grad_weight", {out, in});
  T* db = grad_bias ? bindings::writable<T>(*grad_bias, "grad_bias", {out}) : nullptr;
  std::optional<Array<T>> dx;
  if (need_dx) dx.emplace(std::vector<py::ssize_t>{rows, in});
  {
    py::gil_scoped_release release;
    fastgru::dense_backward<T>(rows, in, out, x.data(), weight.data(), dy.data(), dx ? dx->mutable_data() : nullptr, dw,
                               db);
  }
  if (!dx) return py::none();
  return std::move(*dx);
}

template <class T>
void bind_dense_dtype(py::module_& m, const std::string& suffix) {
  m.def(("dense_forward_" + suffix).c_str(), &dense_forward<T>, py::arg("x"), py::arg("weight"),
        py::arg("bias") = py::none(), "y (R, out) = x (R, in) weight^T (in, out) + bias (out,).");
  m.def(("dense_backward_" + suffix).c_str(), &dense_backward<T>, py::arg("x"), py::arg("weight"), py::arg("dy"),
        py::arg("grad_weight"), py::arg("grad_bias") = py::none(), py::arg("need_dx") = true,
        "Adds dy^T x into grad_weight and dy's column sums into grad_bias; returns dx = dy weight "
        "(or None when need_dx is false).");
}

}  // namespace

void bind_dense(py::module_& m) {
  m.def(
      "dense_param_layout",
      [](size_t in_features, size_t out_features, bool bias) {
        return bindings::layout_list(fastgru::dense_param_layout(in_features, out_features, bias));
      },
      py::arg("in_features"), py::arg("out_features"), py::arg("bias") = true,
      "[(name, offset, shape)] of a Dense layer's flat buffer: weight (out, in), then bias (out,).");
  bind_dense_dtype<float>(m, "float32");
  bind_dense_dtype<double>(m, "float64");
}
