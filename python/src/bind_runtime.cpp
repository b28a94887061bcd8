// Threads and instruction-set dispatch.
#include <pybind11/stl.h>

#include "bindings.h"
#include "fastgru/buffer.h"
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
      py::arg("n"),
      "Sets the number of threads the core uses (n: int >= 1, else ValueError; the default is\n"
      "OMP_NUM_THREADS, else the core count). Results are bit-identical for any thread count.");
  m.def("get_num_threads", &fastgru::get_num_threads, "The number of threads the core uses (see set_num_threads).");
  m.def("release_memory", &fastgru::release_scratch,
        "Frees the scratch memory that forward and backward calls keep between calls, the calling\n"
        "thread's and the thread pool's (their temporaries, up to the largest call's size, reused so\n"
        "that a call does not page-fault fresh memory). The next call allocates what it needs again.");
  m.def("available_isas", &fastgru::available_isas,
        "Instruction sets this build has kernels for and this CPU runs, lowest first\n"
        "(e.g. ['generic', 'avx2'], with 'avx512' where the CPU has it).");
  m.def("active_isa", &fastgru::active_isa,
        "The instruction set in use: the widest available, unless FASTGRU_ISA or set_isa() chose another.\n"
        "A FASTGRU_ISA that is unknown or unsupported here raises ValueError at the first call.");
  m.def("set_isa", &fastgru::set_isa, py::arg("name"),
        "Uses the kernels of another instruction set, as the FASTGRU_ISA environment variable does.\n"
        "name: one of available_isas(), in any case; ValueError if it is unknown or this CPU lacks it.");
}
