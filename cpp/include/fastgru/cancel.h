// Cancelling a long computation from outside, e.g. from a SIGINT handler (Ctrl-C): the GRU
// recurrences check the flag between time steps, stop, and the interrupted call throws
// Cancelled. The flag is process-wide: a request stops every computation running at the time.
#pragma once
#include <stdexcept>

namespace fastgru {

struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("computation cancelled") {}
};

// Async-signal-safe (one lock-free atomic store): callable from a signal handler.
void request_cancel() noexcept;
// Clears a request; computations started afterwards run to the end.
void clear_cancel() noexcept;
bool cancel_requested() noexcept;

}  // namespace fastgru
