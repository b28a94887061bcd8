// GRU forward/backward over NumPy arrays. The Python layer (python/fastgru/gru.py) checks
// the user's arguments and converts them; the checks here keep the core's buffers safe
// whatever calls it.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.h"
#include "fastgru/gru.h"

namespace py = pybind11;
using fastgru::GruConfig;

namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

void expect_shape(const py::array& a, std::initializer_list<size_t> shape, const char* name) {
  bool ok = static_cast<size_t>(a.ndim()) == shape.size();
  size_t i = 0;
  for (size_t d : shape) ok = ok && static_cast<size_t>(a.shape(i++)) == d;
  if (!ok) {
    std::string want = "(";
    i = 0;
    for (size_t d : shape) want += (i++ ? ", " : "") + std::to_string(d);
    throw py::value_error(std::string(name) + ": expected shape " + want + (shape.size() == 1 ? ",)" : ")") +
                          ", got " + shape_str(a));
  }
}

using Lengths = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// A flat buffer the core reads or writes in place: never converted, since writes into a
// converted copy would be lost (and a converted workspace would be meaningless).
template <class T>
py::array_t<T> flat_buffer(const py::array& a, size_t size, bool writable, const char* name) {
  const bool ok = py::isinstance<py::array_t<T>>(a) && (a.flags() & py::array::c_style) &&
                  (!writable || a.writeable()) && static_cast<size_t>(a.size()) == size;
  if (!ok)
    throw py::value_error(std::string(name) + ": expected a " + (writable ? "writable " : "") +
                          "C-contiguous " + dtype_name<T>() + " array of " + std::to_string(size) +
                          " elements, got " + py::str(a.dtype()).cast<std::string>() + " of shape " +
                          shape_str(a));
  return py::array_t<T>::ensure(a);
}

void check_lengths(const std::optional<Lengths>& lengths, size_t steps, size_t batch) {
  if (!lengths) return;
  expect_shape(*lengths, {batch}, "lengths");
  auto l = lengths->unchecked<1>();
  for (size_t b = 0; b < batch; ++b)
    if (l(b) < 1 || l(b) > static_cast<int64_t>(steps))
      throw py::value_error("lengths: every length must be in 1.." + std::to_string(steps) + ", got " +
                            std::to_string(l(b)) + " at index " + std::to_string(b));
}

// workspace given: training mode, the workspace is filled for gru_backward.
template <class T>
py::tuple forward(const GruConfig& cfg, Array<T> params, Array<T> x, std::optional<Array<T>> h0,
                  std::optional<Lengths> lengths, std::optional<Array<T>> dropout,
                  std::optional<py::array> workspace) {
  if (x.ndim() != 3) throw py::value_error("x: expected shape (T, B, I), got " + shape_str(x));
  const size_t steps = x.shape(0), batch = x.shape(1);
  const size_t L = cfg.num_layers, D = cfg.directions(), H = cfg.hidden_size;
  expect_shape(params, {fastgru::gru_param_count(cfg)}, "params");
  expect_shape(x, {steps, batch, cfg.input_size}, "x");
  if (h0) expect_shape(*h0, {L * D, batch, H}, "h0");
  check_lengths(lengths, steps, batch);
  if (dropout) expect_shape(*dropout, {L - 1, steps, batch, D * H}, "dropout");
  T* ws = nullptr;
  if (workspace)
    ws = flat_buffer<T>(*workspace, fastgru::gru_workspace_size(cfg, steps, batch), true, "workspace")
             .mutable_data();

  Array<T> y({steps, batch, D * H});
  Array<T> h_n({L * D, batch, H});
  {
    py::gil_scoped_release release;
    fastgru::gru_forward<T>(cfg, params.data(), steps, batch, x.data(), h0 ? h0->data() : nullptr,
                            lengths ? lengths->data() : nullptr, dropout ? dropout->data() : nullptr,
                            y.mutable_data(), h_n.mutable_data(), ws);
  }
  return py::make_tuple(y, h_n);
}

// lengths and dropout: those the forward that filled workspace was given.
template <class T>
py::tuple backward(const GruConfig& cfg, Array<T> params, const py::array& workspace, Array<T> dy,
                   const py::array& grad_any, std::optional<Array<T>> dh_n, std::optional<Lengths> lengths,
                   std::optional<Array<T>> dropout) {
  if (dy.ndim() != 3) throw py::value_error("dy: expected shape (T, B, D*H), got " + shape_str(dy));
  const size_t steps = dy.shape(0), batch = dy.shape(1);
  const size_t L = cfg.num_layers, D = cfg.directions(), H = cfg.hidden_size;
  const size_t count = fastgru::gru_param_count(cfg);
  expect_shape(params, {count}, "params");
  auto grad = flat_buffer<T>(grad_any, count, true, "grad");
  auto saved = flat_buffer<T>(workspace, fastgru::gru_workspace_size(cfg, steps, batch), false, "workspace");
  expect_shape(dy, {steps, batch, D * H}, "dy");
  if (dh_n) expect_shape(*dh_n, {L * D, batch, H}, "dh_n");
  check_lengths(lengths, steps, batch);
  if (dropout) expect_shape(*dropout, {L - 1, steps, batch, D * H}, "dropout");

  Array<T> dx({steps, batch, cfg.input_size});
  Array<T> dh0({L * D, batch, H});
  {
    py::gil_scoped_release release;
    const fastgru::GruCache<T> cache{steps, batch, lengths ? lengths->data() : nullptr,
                                     dropout ? dropout->data() : nullptr, saved.data()};
    fastgru::gru_backward<T>(cfg, params.data(), cache, dy.data(), dh_n ? dh_n->data() : nullptr,
                             dx.mutable_data(), dh0.mutable_data(), grad.mutable_data());
  }
  return py::make_tuple(dx, dh0);
}

template <class T>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("gru_forward_" + suffix).c_str(), &forward<T>, py::arg("config"), py::arg("params"), py::arg("x"),
        py::arg("h0") = py::none(), py::arg("lengths") = py::none(), py::arg("dropout") = py::none(),
        py::arg("workspace") = py::none(),
        "(y, h_n); with a workspace (gru_workspace_size elements) the forward is training mode and fills it.");
  m.def(("gru_backward_" + suffix).c_str(), &backward<T>, py::arg("config"), py::arg("params"),
        py::arg("workspace"), py::arg("dy"), py::arg("grad"), py::arg("dh_n") = py::none(),
        py::arg("lengths") = py::none(), py::arg("dropout") = py::none(),
        "(dx, dh0) through the training-mode forward that filled workspace (given the same lengths and "
        "dropout); adds the parameter gradients into grad.");
}

}  // namespace

void bind_gru(py::module_& m) {
  py::class_<GruConfig>(m, "GruConfig")
      .def(py::init([](size_t input_size, size_t hidden_size, size_t num_layers, bool bidirectional,
                       bool bias, bool reset_after) {
             if (input_size < 1 || hidden_size < 1 || num_layers < 1)
               throw py::value_error("GruConfig: input_size, hidden_size and num_layers must be >= 1");
             return GruConfig{input_size, hidden_size, num_layers, bidirectional, bias, reset_after};
           }),
           py::arg("input_size"), py::arg("hidden_size"), py::arg("num_layers") = 1,
           py::arg("bidirectional") = false, py::arg("bias") = true, py::arg("reset_after") = true)
      .def_readonly("input_size", &GruConfig::input_size)
      .def_readonly("hidden_size", &GruConfig::hidden_size)
      .def_readonly("num_layers", &GruConfig::num_layers)
      .def_readonly("bidirectional", &GruConfig::bidirectional)
      .def_readonly("bias", &GruConfig::bias)
      .def_readonly("reset_after", &GruConfig::reset_after);
  m.def(
      "gru_param_layout",
      [](const GruConfig& cfg) {
        py::list out;
        for (const auto& p : fastgru::gru_param_layout(cfg)) {
          py::tuple shape = p.cols ? py::tuple(py::make_tuple(p.rows, p.cols)) : py::tuple(py::make_tuple(p.rows));
          out.append(py::make_tuple(p.name, p.offset, shape));
        }
        return out;
      },
      py::arg("config"), "[(name, offset, shape)] of the flat parameter buffer, in torch.nn.GRU order.");
  m.def("gru_param_count", &fastgru::gru_param_count, py::arg("config"));
  m.def("gru_workspace_size", &fastgru::gru_workspace_size, py::arg("config"), py::arg("steps"), py::arg("batch"),
        "Elements of the training workspace of a forward over (steps, batch).");
  // One name per dtype: an overload set would silently convert between them.
  bind_dtype<float>(m, "float32");
  bind_dtype<double>(m, "float64");
}
