// Shared by every bind_*.cpp: the module's parts, and one way to check buffers.
//
// Conventions: inputs are Array<T> (converted to C-contiguous T on the way in); buffers the
// core writes in place (parameters, gradients, optimizer moments) go through `writable`, which
// never converts (a converted copy would be updated instead of the caller's array). Each
// binding that exists for float32 and float64 is a template over T instantiated in one place,
// bind_*_dtype<T>, under one name per dtype (an overload set would silently convert).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "fastgru/adam.h"
#include "fastgru/gemm.h"
#include "fastgru/loss.h"
#include "fastgru/param_layout.h"

void bind_runtime(pybind11::module_& m);
void bind_gemm(pybind11::module_& m);
void bind_gru(pybind11::module_& m);
void bind_dense(pybind11::module_& m);
void bind_loss(pybind11::module_& m);
void bind_optim(pybind11::module_& m);
void bind_model(pybind11::module_& m);
void bind_xla_ffi(pybind11::module_& m);

namespace bindings {

namespace py = pybind11;

template <class T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using Int8Array = py::array_t<int8_t, py::array::c_style | py::array::forcecast>;
using BoolArray = py::array_t<bool, py::array::c_style | py::array::forcecast>;

template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// "(2, 3)", "(4,)"; a negative extent (any) shows as "*".
inline std::string shape_str(std::initializer_list<py::ssize_t> shape) {
  std::string s = "(";
  size_t i = 0;
  for (py::ssize_t d : shape) s += (i++ ? ", " : "") + (d < 0 ? std::string("*") : std::to_string(d));
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// ValueError naming the argument unless a has exactly this shape (-1 matches any extent).
inline void expect_shape(const py::array& a, std::initializer_list<py::ssize_t> shape, const char* name) {
  bool ok = static_cast<size_t>(a.ndim()) == shape.size();
  py::ssize_t i = 0;
  for (py::ssize_t d : shape) {
    ok = ok && (d < 0 || a.shape(i) == d);
    ++i;
  }
  if (!ok) throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " + shape_str(a));
}

// The data of a buffer updated in place: a writable C-contiguous T array of this shape.
template <class T>
T* writable(const py::array& a, const char* name, std::initializer_list<py::ssize_t> shape) {
  if (!py::isinstance<py::array_t<T>>(a) || !(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(std::string(name) + ": expected a writable C-contiguous " + dtype_name<T>() +
                          " array (updated in place), got " + std::string(py::str(a.dtype())) + " " + shape_str(a));
  expect_shape(a, shape, name);
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// The data of a buffer read in place, never a converted copy (a saved workspace converted would be
// meaningless): a C-contiguous T array of this shape, read-only ones too (JAX hands those over).
template <class T>
const T* readable(const py::array& a, const char* name, std::initializer_list<py::ssize_t> shape) {
  if (!py::isinstance<py::array_t<T>>(a) || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous " + dtype_name<T>() + " array, got " +
                          std::string(py::str(a.dtype())) + " " + shape_str(a));
  expect_shape(a, shape, name);
  return static_cast<const T*>(a.data());
}

// lengths (B,) with every entry in 1..steps.
inline void check_lengths(const Int64Array& lengths, size_t batch, size_t steps) {
  expect_shape(lengths, {static_cast<py::ssize_t>(batch)}, "lengths");
  const int64_t* l = lengths.data();
  for (size_t b = 0; b < batch; ++b)
    if (l[b] < 1 || l[b] > static_cast<int64_t>(steps))
      throw py::value_error("lengths: every length must be in 1.." + std::to_string(steps) + ", got " +
                            std::to_string(l[b]) + " at index " + std::to_string(b));
}

// A layout as Python sees it: [(name, offset, shape)], shape (rows, cols) or (rows,).
inline py::list layout_list(const std::vector<fastgru::ParamTensor>& layout) {
  py::list out;
  for (const auto& p : layout) {
    py::tuple shape = p.cols ? py::tuple(py::make_tuple(p.rows, p.cols)) : py::tuple(py::make_tuple(p.rows));
    out.append(py::make_tuple(p.name, p.offset, shape));
  }
  return out;
}

// The precision of a GRU's products by its Python name, and back.
inline fastgru::ComputeDtype compute_dtype(const std::string& name) {
  if (name == "float32") return fastgru::ComputeDtype::float32;
  if (name == "bfloat16") return fastgru::ComputeDtype::bfloat16;
  throw py::value_error("compute_dtype: expected 'float32' or 'bfloat16', got '" + name + "'");
}
inline const char* compute_dtype_name(fastgru::ComputeDtype compute) {
  return compute == fastgru::ComputeDtype::bfloat16 ? "bfloat16" : "float32";
}

// A loss by its Python name.
inline fastgru::LossKind loss_kind(const std::string& name) {
  if (name == "mse") return fastgru::LossKind::mse;
  if (name == "mae") return fastgru::LossKind::mae;
  if (name == "binary_crossentropy") return fastgru::LossKind::binary_crossentropy;
  if (name == "cross_entropy") return fastgru::LossKind::cross_entropy;
  throw py::value_error("loss: expected 'mse', 'mae', 'binary_crossentropy' or 'cross_entropy', got '" + name + "'");
}

// Adam's state as Python holds it (bound as AdamState in bind_optim.cpp): the moments, NumPy
// arrays the core updates in place, and the number of steps taken.
struct AdamStateArrays {
  py::array exp_avg, exp_avg_sq;
  std::optional<py::array> max_exp_avg_sq;  // amsgrad only
  int64_t step = 0;
};

// The core's view of state for n parameters of type T under cfg (ValueError for moments of
// another dtype or size, or a missing max_exp_avg_sq with amsgrad). The caller copies the view's
// step back when the core has counted one.
template <class T>
fastgru::AdamState<T> adam_state_view(const fastgru::AdamConfig& cfg, const AdamStateArrays& state, py::ssize_t n) {
  fastgru::AdamState<T> view;
  view.exp_avg = writable<T>(state.exp_avg, "exp_avg", {n});
  view.exp_avg_sq = writable<T>(state.exp_avg_sq, "exp_avg_sq", {n});
  if (cfg.amsgrad) {
    if (!state.max_exp_avg_sq) throw py::value_error("max_exp_avg_sq: required with amsgrad");
    view.max_exp_avg_sq = writable<T>(*state.max_exp_avg_sq, "max_exp_avg_sq", {n});
  }
  view.step = state.step;
  return view;
}

}  // namespace bindings
