#include "interrupt.h"

#include <pythread.h>

namespace py = pybind11;

namespace fastgru_bindings {
namespace {

volatile std::sig_atomic_t g_sigint_seen = 0;

extern "C" void on_sigint(int) {
  g_sigint_seen = 1;
  fastgru::request_cancel();
}

bool on_main_thread() {
  static const unsigned long main_ident =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  return PyThread_get_thread_ident() == main_ident;
}

}  // namespace

SigintCancels::SigintCancels() {
  if (!on_main_thread()) return;
  struct sigaction current{};
  if (sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler == SIG_IGN || current.sa_handler == SIG_DFL)
    return;  // Ctrl-C ignored, or kills the process anyway
  g_sigint_seen = 0;
  fastgru::clear_cancel();
  struct sigaction ours{};
  ours.sa_handler = on_sigint;
  sigemptyset(&ours.sa_mask);
  installed_ = sigaction(SIGINT, &ours, &previous_) == 0;
}

SigintCancels::~SigintCancels() {
  if (installed_) sigaction(SIGINT, &previous_, nullptr);
}

void SigintCancels::restore_and_raise() {
  if (!installed_) return;
  sigaction(SIGINT, &previous_, nullptr);
  installed_ = false;
  fastgru::clear_cancel();
  if (!g_sigint_seen) return;
  g_sigint_seen = 0;
  PyErr_SetInterrupt();  // as if SIGINT arrived now, for Python's handler
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace fastgru_bindings
