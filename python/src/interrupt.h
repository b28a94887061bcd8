// Ctrl-C during a long computation. With the GIL released, SIGINT cannot reach Python: its
// handler only sets a flag that the interpreter checks between bytecodes, so a forward over
// many steps would ignore Ctrl-C until the end. run_interruptible routes SIGINT to the core's
// cancel flag (fastgru/cancel.h) while the computation runs on the main thread (where Python
// handles signals), then restores Python's handler and hands it the signal: KeyboardInterrupt,
// or whatever handler the program installed. A computation that was cancelled raises
// KeyboardInterrupt in the thread that ran it, whatever thread that is.
#pragma once
#include <pybind11/pybind11.h>

#include <csignal>

#include "fastgru/cancel.h"

namespace fastgru_bindings {

// While alive (main thread only, and only when SIGINT has a handler): SIGINT requests
// cancellation instead of running Python's handler.
class SigintCancels {
 public:
  SigintCancels();   // GIL held
  ~SigintCancels();  // restores the previous handler
  // Restores the handler; if SIGINT arrived, passes it on to Python and throws its exception.
  void restore_and_raise();

 private:
  bool installed_ = false;
  struct sigaction previous_{};
};

// Runs compute() with the GIL released, Ctrl-C cancelling it; throws error_already_set
// (KeyboardInterrupt) when it was interrupted.
template <class F>
void run_interruptible(F&& compute) {
  SigintCancels sigint;
  bool cancelled = false;
  {
    pybind11::gil_scoped_release release;
    try {
      compute();
    } catch (const fastgru::Cancelled&) {
      cancelled = true;
    }
  }
  sigint.restore_and_raise();
  if (cancelled) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw pybind11::error_already_set();
  }
}

}  // namespace fastgru_bindings
