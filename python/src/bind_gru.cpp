// GRU forward/backward over NumPy arrays. The Python layer (python/fastgru/gru.py) checks
// the user's arguments and converts them; the checks here keep the core's buffers safe
// whatever calls it.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "bindings.h"
#include "fastgru/gru.h"

namespace py = pybind11;
using bindings::Array;
using bindings::expect_shape;
using fastgru::GruConfig;

namespace {

template <class T>
struct CacheHandle {
  GruConfig cfg;
  fastgru::GruCache<T> cache;
};

template <class T>
py::tuple forward(const GruConfig& cfg, Array<T> params, Array<T> x, std::optional<Array<T>> h0,
                  std::optional<bindings::Int64Array> lengths,
                  std::optional<Array<T>> dropout, bool training) {
  if (x.ndim() != 3) throw py::value_error("x: expected shape (T, B, I), got " + bindings::shape_str(x));
  const py::ssize_t steps = x.shape(0), batch = x.shape(1);
  const py::ssize_t L = cfg.num_layers, D = cfg.directions(), H = cfg.hidden_size;
  expect_shape(params, {static_cast<py::ssize_t>(fastgru::gru_param_count(cfg))}, "params");
  expect_shape(x, {steps, batch, static_cast<py::ssize_t>(cfg.input_size)}, "x");
  if (h0) expect_shape(*h0, {L * D, batch, H}, "h0");
  if (lengths) bindings::check_lengths(*lengths, batch, steps);
  if (dropout) expect_shape(*dropout, {L - 1, steps, batch, D * H}, "dropout");

  Array<T> y({steps, batch, D * H});
  Array<T> h_n({L * D, batch, H});
  std::unique_ptr<CacheHandle<T>> handle;
  if (training) handle.reset(new CacheHandle<T>{cfg, {}});
  {
    py::gil_scoped_release release;
    fastgru::gru_forward<T>(cfg, params.data(), steps, batch, x.data(), h0 ? h0->data() : nullptr,
                            lengths ? lengths->data() : nullptr, dropout ? dropout->data() : nullptr,
                            y.mutable_data(), h_n.mutable_data(), handle ? &handle->cache : nullptr);
  }
  py::object cache = handle ? py::cast(handle.release(), py::return_value_policy::take_ownership) : py::none();
  return py::make_tuple(y, h_n, cache);
}

template <class T>
py::tuple backward(const CacheHandle<T>& handle, Array<T> params, Array<T> dy, py::array grad_any,
                   std::optional<Array<T>> dh_n) {
  const GruConfig& cfg = handle.cfg;
  const auto& cache = handle.cache;
  const py::ssize_t steps = cache.steps, batch = cache.batch;
  const py::ssize_t L = cfg.num_layers, D = cfg.directions(), H = cfg.hidden_size;
  const py::ssize_t n_params = fastgru::gru_param_count(cfg);
  expect_shape(params, {n_params}, "params");
  T* grad = bindings::writable<T>(grad_any, "grad", {n_params});
  expect_shape(dy, {steps, batch, D * H}, "dy");
  if (dh_n) expect_shape(*dh_n, {L * D, batch, H}, "dh_n");

  Array<T> dx({steps, batch, static_cast<py::ssize_t>(cfg.input_size)});
  Array<T> dh0({L * D, batch, H});
  {
    py::gil_scoped_release release;
    fastgru::gru_backward<T>(cfg, params.data(), cache, dy.data(), dh_n ? dh_n->data() : nullptr,
                             dx.mutable_data(), dh0.mutable_data(), grad);
  }
  return py::make_tuple(dx, dh0);
}

template <class T>
py::tuple step(const GruConfig& cfg, Array<T> params, Array<T> x, Array<T> h) {
  if (cfg.bidirectional) throw py::value_error("step: a bidirectional GRU needs the whole sequence");
  if (x.ndim() != 2) throw py::value_error("x: expected shape (B, I), got " + bindings::shape_str(x));
  const py::ssize_t batch = x.shape(0), L = cfg.num_layers, H = cfg.hidden_size;
  expect_shape(params, {static_cast<py::ssize_t>(fastgru::gru_param_count(cfg))}, "params");
  expect_shape(x, {batch, static_cast<py::ssize_t>(cfg.input_size)}, "x");
  expect_shape(h, {L, batch, H}, "h");
  Array<T> h_new({L, batch, H});
  {
    py::gil_scoped_release release;
    fastgru::gru_step<T>(cfg, params.data(), batch, x.data(), h.data(), h_new.mutable_data());
  }
  Array<T> y({batch, H});
  std::copy(h_new.data() + (L - 1) * batch * H, h_new.data() + L * batch * H, y.mutable_data());
  return py::make_tuple(y, h_new);
}

template <class T>
void bind_gru_dtype(py::module_& m, const char* cache_name, const std::string& suffix) {
  py::class_<CacheHandle<T>>(m, cache_name, "What a training-mode forward keeps for backward.")
      .def_property_readonly("steps", [](const CacheHandle<T>& c) { return c.cache.steps; })
      .def_property_readonly("batch", [](const CacheHandle<T>& c) { return c.cache.batch; });
  m.def(("gru_forward_" + suffix).c_str(), &forward<T>, py::arg("config"), py::arg("params"), py::arg("x"),
        py::arg("h0") = py::none(), py::arg("lengths") = py::none(), py::arg("dropout") = py::none(),
        py::arg("training") = false);
  m.def(("gru_backward_" + suffix).c_str(), &backward<T>, py::arg("cache"), py::arg("params"), py::arg("dy"),
        py::arg("grad"), py::arg("dh_n") = py::none());
  m.def(("gru_step_" + suffix).c_str(), &step<T>, py::arg("config"), py::arg("params"), py::arg("x"),
        py::arg("h"), "One inference step of a unidirectional GRU: x (B, I), h (L, B, H) -> (y (B, H), h_new).");
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
  // One name per dtype: an overload set would silently convert between them.
  bind_gru_dtype<float>(m, "GruCacheFloat32", "float32");
  bind_gru_dtype<double>(m, "GruCacheFloat64", "float64");
}
