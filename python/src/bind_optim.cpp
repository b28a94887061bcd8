// The fused Adam/AdamW step over flat buffers, updated in place.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.h"
#include "fastgru/adam.h"

namespace py = pybind11;
using bindings::writable;

namespace {

template <class T>
void step(const fastgru::AdamConfig& cfg, const py::array& params, const py::array& grad,
          const py::array& m, const py::array& v, const std::optional<py::array>& vmax, int64_t t,
          double grad_scale) {
  const py::ssize_t n = params.size();
  T* p = writable<T>(params, "params", {n});
  T* g = writable<T>(grad, "grad", {n});
  T* mp = writable<T>(m, "exp_avg", {n});
  T* vp = writable<T>(v, "exp_avg_sq", {n});
  T* vmaxp = nullptr;
  if (cfg.amsgrad) {
    if (!vmax) throw py::value_error("max_exp_avg_sq: required with amsgrad");
    vmaxp = writable<T>(*vmax, "max_exp_avg_sq", {n});
  }
  py::gil_scoped_release release;
  fastgru::adam_step<T>(cfg, n, p, g, mp, vp, vmaxp, t, static_cast<T>(grad_scale));
}

template <class T>
void bind_optim_dtype(py::module_& m, const std::string& suffix) {
  m.def(
      ("adam_step_" + suffix).c_str(),
      [](py::array params, py::array grad, py::array exp_avg, py::array exp_avg_sq,
         std::optional<py::array> max_exp_avg_sq, int64_t step_number, double lr, double beta1,
         double beta2, double eps, double weight_decay, bool decoupled_weight_decay, bool amsgrad,
         double grad_scale) {
        if (step_number < 1) throw py::value_error("step: must be >= 1");
        fastgru::AdamConfig cfg{lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, amsgrad};
        step<T>(cfg, params, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step_number, grad_scale);
      },
      py::arg("params"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
      py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
      py::arg("eps"), py::arg("weight_decay"), py::arg("decoupled_weight_decay"), py::arg("amsgrad"),
      py::arg("grad_scale") = 1.0,
      "One fused Adam/AdamW update of flat buffers, in place (torch.optim.Adam semantics), on "
      "grad * grad_scale (clipping as a factor; grad is not modified).");
}

}  // namespace

void bind_optim(py::module_& m) {
  bind_optim_dtype<float>(m, "float32");
  bind_optim_dtype<double>(m, "float64");
}
