#include "bindings.h"
#include "fastgru/version.h"

PYBIND11_MODULE(_core, m) {
  m.doc() =
      "fastgru's compiled core: GRU forward/backward, Dense head, losses, fused Adam, the whole model's "
      "training step, GEMM, threading";
  m.attr("__version__") = FASTGRU_VERSION;
  // What a bug report needs of the build (python -m fastgru prints it).
#if defined(__clang__)
  m.attr("COMPILER") = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.attr("COMPILER") = "gcc " __VERSION__;
#elif defined(_MSC_VER)
  m.attr("COMPILER") = "msvc " + std::to_string(_MSC_VER);
#else
  m.attr("COMPILER") = "unknown";
#endif
#if defined(NDEBUG)
  m.attr("BUILD_TYPE") = "release (assertions off)";
#else
  m.attr("BUILD_TYPE") = "debug (assertions on)";
#endif
  bind_runtime(m);
  bind_gemm(m);
  bind_gru(m);
  bind_dense(m);
  bind_loss(m);
  bind_optim(m);
  bind_model(m);
  bind_xla_ffi(m);
}
