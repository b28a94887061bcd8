// GRU forward/backward over NumPy arrays. The Python layer (python/fastgru/gru.py) checks
// the user's arguments and converts them; the checks here keep the core's buffers safe
// whatever calls it.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "bindings.h"
#include "fastgru/checked.h"
#include "fastgru/gru.h"
#include "interrupt.h"
#include "kept_workspaces.h"

namespace py = pybind11;
using bindings::Array;
using bindings::expect_shape;
using fastgru::GruConfig;

namespace {

py::ssize_t workspace_elements(const GruConfig& cfg, py::ssize_t steps, py::ssize_t batch) {
  return static_cast<py::ssize_t>(fastgru::gru_workspace_size(cfg, steps, batch));
}

// The checks every forward binding makes of its arguments (x (T, B, I) among them), before it
// allocates the outputs.
template <class T>
void check_forward(const GruConfig& cfg, const Array<T>& params, const Array<T>& x, const std::optional<Array<T>>& h0,
                   const std::optional<bindings::Int64Array>& lengths) {
  if (x.ndim() != 3) throw py::value_error("x: expected shape (T, B, I), got " + bindings::shape_str(x));
  const py::ssize_t steps = x.shape(0), batch = x.shape(1);
  fastgru::gru_check_sizes(cfg, steps, batch);
  expect_shape(params, {static_cast<py::ssize_t>(fastgru::gru_param_count(cfg))}, "params");
  expect_shape(x, {steps, batch, static_cast<py::ssize_t>(cfg.input_size)}, "x");
  const auto LD = static_cast<py::ssize_t>(cfg.num_layers * cfg.directions());
  if (h0) expect_shape(*h0, {LD, batch, static_cast<py::ssize_t>(cfg.hidden_size)}, "h0");
  if (lengths) bindings::check_lengths(*lengths, batch, steps);
}

// workspace given: training mode, the workspace is filled for gru_backward.
template <class T>
py::tuple forward(const GruConfig& cfg, Array<T> params, Array<T> x, std::optional<Array<T>> h0,
                  std::optional<bindings::Int64Array> lengths, std::optional<Array<T>> dropout,
                  std::optional<py::array> workspace) {
  check_forward(cfg, params, x, h0, lengths);
  const py::ssize_t steps = x.shape(0), batch = x.shape(1);
  const py::ssize_t L = cfg.num_layers, D = cfg.directions(), H = cfg.hidden_size;
  if (dropout) expect_shape(*dropout, {L - 1, steps, batch, D * H}, "dropout");
  T* ws = workspace ? bindings::writable<T>(*workspace, "workspace", {workspace_elements(cfg, steps, batch)}) : nullptr;

  Array<T> y({steps, batch, D * H});
  Array<T> h_n({L * D, batch, H});
  fastgru_bindings::run_interruptible([&] {
    fastgru::gru_forward<T>(cfg, params.data(), steps, batch, x.data(), h0 ? h0->data() : nullptr,
                            lengths ? lengths->data() : nullptr, dropout ? dropout->data() : nullptr, y.mutable_data(),
                            h_n.mutable_data(), ws);
  });
  return py::make_tuple(y, h_n);
}

// lengths and dropout: those the forward that filled workspace was given.
template <class T>
py::tuple backward(const GruConfig& cfg, Array<T> params, const py::array& workspace, Array<T> dy,
                   const py::array& grad_any, std::optional<Array<T>> dh_n, std::optional<bindings::Int64Array> lengths,
                   std::optional<Array<T>> dropout, bool input_grad, bool accumulate) {
  if (dy.ndim() != 3) throw py::value_error("dy: expected shape (T, B, D*H), got " + bindings::shape_str(dy));
  const py::ssize_t steps = dy.shape(0), batch = dy.shape(1);
  const py::ssize_t L = cfg.num_layers, D = cfg.directions(), H = cfg.hidden_size;
  const py::ssize_t n_params = fastgru::gru_param_count(cfg);
  expect_shape(params, {n_params}, "params");
  T* grad = bindings::writable<T>(grad_any, "grad", {n_params});
  const T* saved = bindings::readable<T>(workspace, "workspace", {workspace_elements(cfg, steps, batch)});
  expect_shape(dy, {steps, batch, D * H}, "dy");
  if (dh_n) expect_shape(*dh_n, {L * D, batch, H}, "dh_n");
  if (lengths) bindings::check_lengths(*lengths, batch, steps);
  if (dropout) expect_shape(*dropout, {L - 1, steps, batch, D * H}, "dropout");

  std::optional<Array<T>> dx;
  if (input_grad) dx.emplace(std::vector<py::ssize_t>{steps, batch, static_cast<py::ssize_t>(cfg.input_size)});
  Array<T> dh0({L * D, batch, H});
  const fastgru::GruCache<T> cache{static_cast<size_t>(steps), static_cast<size_t>(batch),
                                   lengths ? lengths->data() : nullptr, dropout ? dropout->data() : nullptr, saved};
  fastgru_bindings::run_interruptible([&] {
    fastgru::gru_backward<T>(cfg, params.data(), cache, dy.data(), dh_n ? dh_n->data() : nullptr,
                             dx ? dx->mutable_data() : nullptr, dh0.mutable_data(), grad, accumulate);
  });
  return py::make_tuple(dx ? py::object(*dx) : py::none(), dh0);
}

// A training forward whose workspace stays in the core's store under the returned token
// (kept_workspaces.h): for frameworks that call back into Python (fastgru._host).
template <class T>
py::tuple forward_keeping(const GruConfig& cfg, Array<T> params, Array<T> x, std::optional<Array<T>> h0,
                          std::optional<bindings::Int64Array> lengths) {
  check_forward(cfg, params, x, h0, lengths);
  const py::ssize_t steps = x.shape(0), batch = x.shape(1);
  const py::ssize_t LD = cfg.num_layers * cfg.directions(), H = cfg.hidden_size;
  Array<T> y({steps, batch, static_cast<py::ssize_t>(cfg.directions()) * H});
  Array<T> h_n({LD, batch, H});
  int32_t token = 0;
  fastgru_bindings::run_interruptible([&] {
    token = fastgru_bindings::gru_forward_keeping<T>(cfg, params.data(), steps, batch, x.data(),
                                                     h0 ? h0->data() : nullptr, lengths ? lengths->data() : nullptr,
                                                     y.mutable_data(), h_n.mutable_data());
  });
  return py::make_tuple(y, h_n, token);
}

// The backward of forward_keeping's forward (token), given that forward's inputs; x batch-major
// (B, T, I), read only to run the forward again (kept_workspaces.h).
template <class T>
py::tuple backward_kept(const GruConfig& cfg, int32_t token, Array<T> params, Array<T> x, Array<T> dy,
                        std::optional<Array<T>> h0, std::optional<bindings::Int64Array> lengths,
                        std::optional<Array<T>> dh_n) {
  if (dy.ndim() != 3) throw py::value_error("dy: expected shape (T, B, D*H), got " + bindings::shape_str(dy));
  const py::ssize_t steps = dy.shape(0), batch = dy.shape(1);
  const py::ssize_t LD = cfg.num_layers * cfg.directions(), H = cfg.hidden_size;
  fastgru::gru_check_sizes(cfg, steps, batch);
  expect_shape(params, {static_cast<py::ssize_t>(fastgru::gru_param_count(cfg))}, "params");
  expect_shape(x, {batch, steps, static_cast<py::ssize_t>(cfg.input_size)}, "x");
  if (h0) expect_shape(*h0, {LD, batch, H}, "h0");
  if (lengths) bindings::check_lengths(*lengths, batch, steps);
  expect_shape(dy, {steps, batch, static_cast<py::ssize_t>(cfg.directions()) * H}, "dy");
  if (dh_n) expect_shape(*dh_n, {LD, batch, H}, "dh_n");
  Array<T> dx({steps, batch, static_cast<py::ssize_t>(cfg.input_size)});
  Array<T> dh0({LD, batch, H});
  Array<T> grad({params.shape(0)});
  fastgru_bindings::run_interruptible([&] {
    fastgru_bindings::gru_backward_kept<T>(cfg, token, params.data(), steps, batch, x.data(), h0 ? h0->data() : nullptr,
                                           lengths ? lengths->data() : nullptr, dy.data(),
                                           dh_n ? dh_n->data() : nullptr, dx.mutable_data(), dh0.mutable_data(),
                                           grad.mutable_data());
  });
  return py::make_tuple(dx, dh0, grad);
}

// Inference with int8 weights (gru_pack_int8's panels, gru_int8_packed_size) and row scales
// ((L*D, 2, 3H)); params gives the biases.
template <class T>
py::tuple forward_int8(const GruConfig& cfg, bindings::Int8Array packed, Array<T> scales, Array<T> params, Array<T> x,
                       std::optional<Array<T>> h0, std::optional<bindings::Int64Array> lengths) {
  check_forward(cfg, params, x, h0, lengths);
  const py::ssize_t steps = x.shape(0), batch = x.shape(1);
  const py::ssize_t L = cfg.num_layers, D = cfg.directions(), H = cfg.hidden_size;
  expect_shape(packed, {static_cast<py::ssize_t>(fastgru::gru_int8_packed_size(cfg))}, "packed");
  expect_shape(scales, {L * D, 2, 3 * H}, "scales");
  Array<T> y({steps, batch, D * H});
  Array<T> h_n({L * D, batch, H});
  fastgru_bindings::run_interruptible([&] {
    fastgru::gru_forward_int8<T>(cfg, {packed.data(), scales.data()}, params.data(), steps, batch, x.data(),
                                 h0 ? h0->data() : nullptr, lengths ? lengths->data() : nullptr, y.mutable_data(),
                                 h_n.mutable_data());
  });
  return py::make_tuple(y, h_n);
}

// int8: the packed weights (gru_pack_int8's) and row scales ((L*D, 2, 3H)) to read instead of
// params' weights (params then gives the biases).
template <class T>
py::tuple step(const GruConfig& cfg, Array<T> params, Array<T> x, Array<T> h,
               std::optional<std::pair<bindings::Int8Array, Array<T>>> int8 = std::nullopt) {
  if (cfg.bidirectional) throw py::value_error("step: a bidirectional GRU needs the whole sequence");
  if (x.ndim() != 2) throw py::value_error("x: expected shape (B, I), got " + bindings::shape_str(x));
  const py::ssize_t batch = x.shape(0), L = cfg.num_layers, H = cfg.hidden_size;
  const auto n_params = static_cast<py::ssize_t>(fastgru::gru_param_count(cfg));
  expect_shape(params, {n_params}, "params");
  expect_shape(x, {batch, static_cast<py::ssize_t>(cfg.input_size)}, "x");
  expect_shape(h, {L, batch, H}, "h");
  if (int8) {
    expect_shape(int8->first, {static_cast<py::ssize_t>(fastgru::gru_int8_packed_size(cfg))}, "packed");
    expect_shape(int8->second, {L, 2, 3 * H}, "scales");
  }
  Array<T> h_new({L, batch, H});
  {
    py::gil_scoped_release release;  // one step: too short to need Ctrl-C between its parts
    if (int8)
      fastgru::gru_step_int8<T>(cfg, {int8->first.data(), int8->second.data()}, params.data(), batch, x.data(),
                                h.data(), h_new.mutable_data());
    else
      fastgru::gru_step<T>(cfg, params.data(), batch, x.data(), h.data(), h_new.mutable_data());
  }
  Array<T> y({batch, H});
  std::copy(h_new.data() + (L - 1) * batch * H, h_new.data() + L * batch * H, y.mutable_data());
  return py::make_tuple(y, h_new);
}

GruConfig make_config(size_t input_size, size_t hidden_size, size_t num_layers, bool bidirectional, bool bias,
                      bool reset_after, const std::string& compute_dtype) {
  if (input_size < 1 || hidden_size < 1 || num_layers < 1)
    throw py::value_error("GruConfig: input_size, hidden_size and num_layers must be >= 1");
  GruConfig cfg{
      input_size, hidden_size, num_layers, bidirectional, bias, reset_after, bindings::compute_dtype(compute_dtype)};
  fastgru::gru_param_layout(cfg);  // refuses absurd sizes now, not at first use
  return cfg;
}

template <class T>
void bind_gru_dtype(py::module_& m, const std::string& suffix) {
  m.def(("gru_forward_" + suffix).c_str(), &forward<T>, py::arg("config"), py::arg("params"), py::arg("x"),
        py::arg("h0") = py::none(), py::arg("lengths") = py::none(), py::arg("dropout") = py::none(),
        py::arg("workspace") = py::none(),
        "(y, h_n); with a workspace (gru_workspace_size elements) the forward is training mode and fills it.");
  m.def(("gru_backward_" + suffix).c_str(), &backward<T>, py::arg("config"), py::arg("params"), py::arg("workspace"),
        py::arg("dy"), py::arg("grad"), py::arg("dh_n") = py::none(), py::arg("lengths") = py::none(),
        py::arg("dropout") = py::none(), py::arg("input_grad") = true, py::arg("accumulate") = true,
        "(dx, dh0) through the training-mode forward that filled workspace (given the same lengths and "
        "dropout); adds the parameter gradients into grad (accumulate=False: writes them, no zero fill "
        "needed). input_grad=False: dx is None, its product skipped.");
  m.def(("gru_forward_keeping_" + suffix).c_str(), &forward_keeping<T>, py::arg("config"), py::arg("params"),
        py::arg("x"), py::arg("h0") = py::none(), py::arg("lengths") = py::none(),
        "Training forward -> (y, h_n, token): the workspace stays in the core's store under token (>= 1) for "
        "gru_backward_kept.");
  m.def(("gru_backward_kept_" + suffix).c_str(), &backward_kept<T>, py::arg("config"), py::arg("token"),
        py::arg("params"), py::arg("x"), py::arg("dy"), py::arg("h0") = py::none(), py::arg("lengths") = py::none(),
        py::arg("dh_n") = py::none(),
        "(dx, dh0, grad) through the gru_forward_keeping forward that returned token, given its inputs (x "
        "batch-major (B, T, I)); runs the forward again when that workspace is gone (used, or dropped beyond the "
        "store's limit).");
  m.def(("gru_step_" + suffix).c_str(),
        [](const GruConfig& cfg, Array<T> params, Array<T> x, Array<T> h) { return step<T>(cfg, params, x, h); },
        py::arg("config"), py::arg("params"), py::arg("x"), py::arg("h"),
        "One inference step of a unidirectional GRU: x (B, I), h (L, B, H) -> (y (B, H), h_new).");
  m.def(("gru_step_int8_" + suffix).c_str(),
        [](const GruConfig& cfg, bindings::Int8Array packed, Array<T> scales, Array<T> params, Array<T> x, Array<T> h) {
          return step<T>(cfg, params, x, h, std::make_pair(packed, scales));
        },
        py::arg("config"), py::arg("packed"), py::arg("scales"), py::arg("params"), py::arg("x"), py::arg("h"),
        "gru_step with int8 weights (packed by gru_pack_int8) times their row scales (L, 2, 3H): "
        "weight_ih's then weight_hh's per layer; params gives the biases.");
  m.def(("gru_forward_int8_" + suffix).c_str(), &forward_int8<T>, py::arg("config"), py::arg("packed"),
        py::arg("scales"), py::arg("params"), py::arg("x"), py::arg("h0") = py::none(), py::arg("lengths") = py::none(),
        "Inference forward with int8 weights (as gru_step_int8's) -> (y, h_n): gru_step_int8's steps "
        "over the whole sequence.");
}

}  // namespace

void bind_gru(py::module_& m) {
  py::class_<GruConfig>(m, "GruConfig")
      .def(py::init(&make_config), py::arg("input_size"), py::arg("hidden_size"), py::arg("num_layers") = 1,
           py::arg("bidirectional") = false, py::arg("bias") = true, py::arg("reset_after") = true,
           py::arg("compute_dtype") = "float32")
      .def_readonly("input_size", &GruConfig::input_size)
      .def_readonly("hidden_size", &GruConfig::hidden_size)
      .def_readonly("num_layers", &GruConfig::num_layers)
      .def_readonly("bidirectional", &GruConfig::bidirectional)
      .def_readonly("bias", &GruConfig::bias)
      .def_readonly("reset_after", &GruConfig::reset_after)
      .def_property_readonly("compute_dtype",
                             [](const GruConfig& cfg) { return bindings::compute_dtype_name(cfg.compute_dtype); })
      // Pickling (and so copy.deepcopy of the layers holding one): the constructor's arguments.
      .def(py::pickle(
          [](const GruConfig& cfg) {
            return py::make_tuple(cfg.input_size, cfg.hidden_size, cfg.num_layers, cfg.bidirectional, cfg.bias,
                                  cfg.reset_after, bindings::compute_dtype_name(cfg.compute_dtype));
          },
          [](const py::tuple& t) {
            if (t.size() != 7) throw py::value_error("GruConfig: a pickled state has 7 fields");
            return make_config(t[0].cast<size_t>(), t[1].cast<size_t>(), t[2].cast<size_t>(), t[3].cast<bool>(),
                               t[4].cast<bool>(), t[5].cast<bool>(), t[6].cast<std::string>());
          }));
  m.def(
      "gru_param_layout", [](const GruConfig& cfg) { return bindings::layout_list(fastgru::gru_param_layout(cfg)); },
      py::arg("config"), "[(name, offset, shape)] of the flat parameter buffer, in torch.nn.GRU order.");
  m.def("gru_param_count", &fastgru::gru_param_count, py::arg("config"));
  m.def(
      "gru_pack_int8",
      [](const GruConfig& cfg, bindings::Int8Array weights) {
        expect_shape(weights, {static_cast<py::ssize_t>(fastgru::gru_param_count(cfg))}, "weights");
        bindings::Int8Array packed({static_cast<py::ssize_t>(fastgru::gru_int8_packed_size(cfg))});
        fastgru::gru_pack_int8(cfg, weights.data(), packed.mutable_data());
        return packed;
      },
      py::arg("config"), py::arg("weights"),
      "int8 weights (gru_param_count, each at its layout place) packed for gru_step_int8 and "
      "gru_forward_int8: panels of 16 rows by 4 inputs, once per quantized GRU.");
  m.def("gru_workspace_size", &fastgru::gru_workspace_size, py::arg("config"), py::arg("steps"), py::arg("batch"),
        "Elements of the training workspace of a forward over (steps, batch).");
  m.attr("MAX_LAYERS") = fastgru::kMaxLayers;
  m.attr("MAX_ELEMENTS") = fastgru::kMaxElements;
  // One name per dtype: an overload set would silently convert between them.
  bind_gru_dtype<float>(m, "float32");
  bind_gru_dtype<double>(m, "float64");
}
