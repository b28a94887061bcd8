// Adam's configuration (AdamConfig) and state (AdamState) as Python objects, and the fused
// Adam/AdamW step over flat buffers, updated in place.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>

#include "bindings.h"
#include "fastgru/adam.h"

namespace py = pybind11;
using bindings::AdamStateArrays;
using bindings::writable;
using fastgru::AdamConfig;

namespace {

double check_non_negative(double value, const char* name) {
  if (!(std::isfinite(value) && value >= 0))
    throw py::value_error(std::string(name) + ": expected a finite number >= 0, got " +
                          std::string(py::repr(py::float_(value))));
  return value;
}

double check_beta(double value, const char* name) {
  if (!(value >= 0 && value < 1))
    throw py::value_error(std::string(name) + ": expected a number in [0, 1), got " +
                          std::string(py::repr(py::float_(value))));
  return value;
}

AdamConfig make_config(double lr, double beta1, double beta2, double eps, double weight_decay,
                       bool decoupled_weight_decay, bool amsgrad) {
  return AdamConfig{check_non_negative(lr, "lr"),
                    check_beta(beta1, "beta1"),
                    check_beta(beta2, "beta2"),
                    check_non_negative(eps, "eps"),
                    check_non_negative(weight_decay, "weight_decay"),
                    decoupled_weight_decay,
                    amsgrad};
}

// A moment buffer: a writable C-contiguous 1-D float32/float64 array (the core updates it in
// place, and Python reads it back from the state).
py::array check_moment(const py::array& a, const char* name) {
  if (!py::isinstance<py::array_t<float>>(a) && !py::isinstance<py::array_t<double>>(a))
    throw py::type_error(std::string(name) + ": expected a float32 or float64 array, got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != 1 || !(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(std::string(name) + ": expected a writable contiguous 1-D array (updated in place), got " +
                          bindings::shape_str(a));
  return a;
}

int64_t check_step(int64_t step) {
  if (step < 0) throw py::value_error("step: the number of steps taken, expected >= 0");
  return step;
}

AdamStateArrays make_state(const py::array& exp_avg, const py::array& exp_avg_sq,
                           const std::optional<py::array>& max_exp_avg_sq, int64_t step) {
  AdamStateArrays s{check_moment(exp_avg, "exp_avg"), check_moment(exp_avg_sq, "exp_avg_sq"), std::nullopt,
                    check_step(step)};
  if (max_exp_avg_sq) s.max_exp_avg_sq = check_moment(*max_exp_avg_sq, "max_exp_avg_sq");
  for (const auto& [name, other] : {std::make_pair("exp_avg_sq", s.exp_avg_sq),
                                    std::make_pair("max_exp_avg_sq", s.max_exp_avg_sq.value_or(s.exp_avg))})
    if (!other.dtype().is(s.exp_avg.dtype()) || other.size() != s.exp_avg.size())
      throw py::value_error(std::string(name) + ": expected the dtype and size of exp_avg (" +
                            std::string(py::str(s.exp_avg.dtype())) + ", " + std::to_string(s.exp_avg.size()) +
                            "), got (" + std::string(py::str(other.dtype())) + ", " + std::to_string(other.size()) +
                            ")");
  return s;
}

// Takes step number state.step + 1 and counts it once the update is done.
template <class T>
void step(const AdamConfig& cfg, AdamStateArrays& state, const py::array& params, const py::array& grad,
          double grad_scale) {
  const py::ssize_t n = params.size();
  T* p = writable<T>(params, "params", {n});
  T* g = writable<T>(grad, "grad", {n});
  fastgru::AdamState<T> view = bindings::adam_state_view<T>(cfg, state, n);
  {
    py::gil_scoped_release release;
    fastgru::adam_step<T>(cfg, n, p, g, view.exp_avg, view.exp_avg_sq, view.max_exp_avg_sq, view.step + 1,
                          static_cast<T>(grad_scale));
  }
  state.step = view.step + 1;
}

template <class T>
void bind_optim_dtype(py::module_& m, const std::string& suffix) {
  m.def(("adam_step_" + suffix).c_str(), &step<T>, py::arg("config"), py::arg("state"), py::arg("params"),
        py::arg("grad"), py::arg("grad_scale") = 1.0,
        "One fused Adam/AdamW update of flat buffers, in place (torch.optim.Adam semantics), on "
        "grad * grad_scale (clipping as a factor; grad is not modified): step number state.step + 1, "
        "which state then counts.");
}

}  // namespace

void bind_optim(py::module_& m) {
  py::class_<AdamConfig>(m, "AdamConfig",
                         "Adam's hyper-parameters (torch.optim.Adam's; AdamW's with decoupled_weight_decay).")
      .def(py::init(&make_config), py::arg("lr") = 1e-3, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999,
           py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0, py::arg("decoupled_weight_decay") = false,
           py::arg("amsgrad") = false)
      .def_readonly("lr", &AdamConfig::lr)
      .def_readonly("beta1", &AdamConfig::beta1)
      .def_readonly("beta2", &AdamConfig::beta2)
      .def_readonly("eps", &AdamConfig::eps)
      .def_readonly("weight_decay", &AdamConfig::weight_decay)
      .def_readonly("decoupled_weight_decay", &AdamConfig::decoupled_weight_decay)
      .def_readonly("amsgrad", &AdamConfig::amsgrad)
      .def("__repr__",
           [](const AdamConfig& c) {
             return py::str(
                        "AdamConfig(lr={!r}, beta1={!r}, beta2={!r}, eps={!r}, weight_decay={!r}, "
                        "decoupled_weight_decay={!r}, amsgrad={!r})")
                 .format(c.lr, c.beta1, c.beta2, c.eps, c.weight_decay, c.decoupled_weight_decay, c.amsgrad);
           })
      // Pickling (and so copy.deepcopy of an optimizer): the constructor's arguments.
      .def(py::pickle(
          [](const AdamConfig& c) {
            return py::make_tuple(c.lr, c.beta1, c.beta2, c.eps, c.weight_decay, c.decoupled_weight_decay, c.amsgrad);
          },
          [](const py::tuple& t) {
            if (t.size() != 7) throw py::value_error("AdamConfig: a pickled state has 7 fields");
            return make_config(t[0].cast<double>(), t[1].cast<double>(), t[2].cast<double>(), t[3].cast<double>(),
                               t[4].cast<double>(), t[5].cast<bool>(), t[6].cast<bool>());
          }));

  py::class_<AdamStateArrays>(m, "AdamState",
                              "Adam's state: the moments (float32/float64 1-D arrays of the parameters' size, "
                              "updated in place; max_exp_avg_sq with amsgrad only) and the steps taken.")
      .def(py::init(&make_state), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq") = py::none(),
           py::arg("step") = 0)
      .def_readonly("exp_avg", &AdamStateArrays::exp_avg)
      .def_readonly("exp_avg_sq", &AdamStateArrays::exp_avg_sq)
      .def_readonly("max_exp_avg_sq", &AdamStateArrays::max_exp_avg_sq)
      .def_property(
          "step", [](const AdamStateArrays& s) { return s.step; },
          [](AdamStateArrays& s, int64_t step) { s.step = check_step(step); }, "The number of steps taken.")
      .def("__repr__",
           [](const AdamStateArrays& s) {
             return py::str("AdamState(step={}, size={}, dtype={}, amsgrad={})")
                 .format(s.step, s.exp_avg.size(), s.exp_avg.dtype(), s.max_exp_avg_sq.has_value());
           })
      // Pickling (and so copy.deepcopy): copies of the moments and the step count.
      .def(py::pickle(
          [](const AdamStateArrays& s) { return py::make_tuple(s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, s.step); },
          [](const py::tuple& t) {
            if (t.size() != 4) throw py::value_error("AdamState: a pickled state has 4 fields");
            return make_state(t[0].cast<py::array>(), t[1].cast<py::array>(), t[2].cast<std::optional<py::array>>(),
                              t[3].cast<int64_t>());
          }));
  bind_optim_dtype<float>(m, "float32");
  bind_optim_dtype<double>(m, "float64");
}
