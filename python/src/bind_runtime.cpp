// Threads and instruction-set dispatch.
#include <pybind11/stl.h>

#include "bindings.h"
#include "fastgru/cpu.h"
#include "fastgru/threads.h"

namespace py = pybind11;

void bind_runtime(py::module_& m) {
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
        fastgru::set_num_threads(n);
      },
      py::arg("n"), "Number of threads the core uses (default: OMP_NUM_THREADS or the core count).");
  m.def("get_num_threads", &fastgru::get_num_threads);
  m.def("available_isas", &fastgru::available_isas,
        "Instruction sets this build has kernels for and this CPU runs, lowest first.");
  m.def("active_isa", &fastgru::active_isa, "The instruction set in use.");
  m.def("set_isa", &fastgru::set_isa, py::arg("name"),
        "Use the kernels of another instruction set (as the FASTGRU_ISA environment variable does).");
}
