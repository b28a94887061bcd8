// The training losses (cpp/include/fastgru/loss.h) over NumPy arrays. The Python layer
// (python/fastgru/losses.py) checks the user's arguments; the checks here keep the core's
// buffers safe whatever calls it.
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.h"
#include "fastgru/loss.h"

namespace py = pybind11;
using bindings::Array;
using bindings::expect_shape;

namespace {

// logits (R, O); target (R, O) floats, or (R,) integer labels for cross_entropy; mask (R,) bool
// or None. Returns (loss, dlogits (R, O)).
template <class T>
py::tuple loss(const std::string& name, Array<T> logits, py::object target, std::optional<bindings::BoolArray> mask) {
  const fastgru::LossKind kind = bindings::loss_kind(name);
  expect_shape(logits, {-1, -1}, "logits");
  const py::ssize_t rows = logits.shape(0), O = logits.shape(1);
  if (mask) expect_shape(*mask, {rows}, "mask");
  const bool* m = mask ? mask->data() : nullptr;
  std::optional<Array<T>> values;
  std::optional<bindings::Int64Array> labels;
  if (kind == fastgru::LossKind::cross_entropy) {
    labels.emplace(bindings::Int64Array::ensure(target));
    if (!*labels || labels->ndim() != 1 || labels->shape(0) != rows)
      throw py::value_error("target: expected integer labels of shape (R,) = (" + std::to_string(rows) +
                            ",) for cross_entropy");
    const int64_t* l = labels->data();
    for (py::ssize_t r = 0; r < rows; ++r)
      if ((!m || m[r]) && (l[r] < 0 || l[r] >= O))
        throw py::value_error("target: labels must be in [0, " + std::to_string(O) + "), got " + std::to_string(l[r]) +
                              " at row " + std::to_string(r));
  } else {
    values.emplace(Array<T>::ensure(target));
    if (!*values) throw py::type_error("target: expected an array of numbers");
    expect_shape(*values, {rows, O}, "target");
  }
  Array<T> dlogits({rows, O});
  double value;
  {
    py::gil_scoped_release release;
    value = fastgru::loss_forward_backward<T>(kind, rows, O, logits.data(), values ? values->data() : nullptr,
                                              labels ? labels->data() : nullptr, m, dlogits.mutable_data());
  }
  return py::make_tuple(value, dlogits);
}

template <class T>
void bind_loss_dtype(py::module_& m, const std::string& suffix) {
  m.def(("loss_" + suffix).c_str(), &loss<T>, py::arg("kind"), py::arg("logits"), py::arg("target"),
        py::arg("mask") = py::none(),
        "(loss, dlogits): the mean loss over valid rows and its gradient with respect to logits.");
}

}  // namespace

void bind_loss(py::module_& m) {
  bind_loss_dtype<float>(m, "float32");
  bind_loss_dtype<double>(m, "float64");
}
