// Threads and instruction-set dispatch.
#include <pybind11/stl.h>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "bindings.h"
#include "fastgru/buffer.h"
#include "fastgru/cpu.h"
#include "fastgru/threads.h"

namespace py = pybind11;

namespace {
// Far beyond any machine: a larger count is a mistake (a size passed for a count, say).
constexpr long long kMaxThreads = 65536;

// The loaded OpenMP runtime's threads (GNU libgomp's entry points, which LLVM's libomp also
// provides), or false when none is loaded: nothing is loaded here, only found.
bool use_openmp_threads() {
#if defined(__unix__) || defined(__APPLE__)
  static fastgru::ForeignThreads openmp{};
  for (const char* name : {"libgomp.so.1", "libomp.so", "libomp.dylib"}) {
    void* lib = dlopen(name, RTLD_NOW | RTLD_NOLOAD);  // kept open: regions will call into it
    if (!lib) continue;
    openmp.fork = reinterpret_cast<decltype(openmp.fork)>(dlsym(lib, "GOMP_parallel"));
    openmp.thread_num = reinterpret_cast<decltype(openmp.thread_num)>(dlsym(lib, "omp_get_thread_num"));
    openmp.num_threads = reinterpret_cast<decltype(openmp.num_threads)>(dlsym(lib, "omp_get_num_threads"));
    if (openmp.fork && openmp.thread_num && openmp.num_threads) {
      fastgru::set_foreign_threads(&openmp);
      return true;
    }
  }
#endif
  return false;
}
}  // namespace

void bind_runtime(py::module_& m) {
  m.def(
      "set_num_threads",
      [](const py::object& n) {
        // A bool is an int to Python; as a thread count it is a mistake.
        if (py::isinstance<py::bool_>(n) || !PyIndex_Check(n.ptr()))
          throw py::type_error("set_num_threads: n must be an int, got " +
                               std::string(py::str(n.get_type().attr("__name__"))));
        const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(n.ptr()));
        if (!value) throw py::error_already_set();
        int overflow = 0;
        const long long count = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
        if (overflow != 0 || count < 1 || count > kMaxThreads)
          throw py::value_error("set_num_threads: n must be an int in 1.." + std::to_string(kMaxThreads) + ", got " +
                                std::string(py::str(value)));
        fastgru::set_num_threads(static_cast<int>(count));
      },
      py::arg("n"),
      "Sets the number of threads the core uses (n: an int in 1..65536, else TypeError or ValueError;\n"
      "the default is OMP_NUM_THREADS, else the core count). Results are bit-identical for any\n"
      "thread count. A pool the system cannot start (no threads or memory left) raises MemoryError\n"
      "at the next call that needs it.");
  m.def("get_num_threads", &fastgru::get_num_threads, "The number of threads the core uses (see set_num_threads).");
  m.def(
      "use_openmp_threads",
      [](bool use) {
        if (use) return use_openmp_threads();
        fastgru::set_foreign_threads(nullptr);
        return false;
      },
      py::arg("use"),
      "use=True: run parallel regions on the threads of the OpenMP runtime already loaded in the\n"
      "process (torch's), so that its spinning idle workers and fastgru's pool do not fight for the\n"
      "cores; returns False (and keeps fastgru's own pool) when none is loaded. use=False: fastgru's\n"
      "own pool again. Results are the same either way.");
  m.def("uses_openmp_threads", &fastgru::uses_foreign_threads,
        "Whether parallel regions run on the OpenMP runtime's threads (use_openmp_threads).");
  m.def("release_memory", &fastgru::release_memory,
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
