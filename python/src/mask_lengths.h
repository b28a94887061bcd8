// The lengths that fastgru.keras derives from a mask (fastgru.keras.mask_to_lengths), as the
// core takes them. One definition for every caller: fastgru.jax's XLA calls (bind_xla_ffi.cpp)
// and, bound as _core.core_lengths, TensorFlow's and torch's (fastgru._host, fastgru.keras).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastgru_bindings {

// lengths (B,): T for an unpadded sequence, -1 for a row of the mask with a False step before a
// True one, 0 for an all-False row. Returns them as int64, or an empty vector when no sequence
// is padded (the core's nullptr); std::invalid_argument for -1, 0 or more than steps.
template <class Int>
std::vector<int64_t> core_lengths(const Int* lengths, size_t batch, size_t steps) {
  if (batch == 0) return {};
  const auto [lo, hi] = std::minmax_element(lengths, lengths + batch);
  if (*lo < 0)
    throw std::invalid_argument(
        "mask: fastgru computes right-padded sequences only (each row of the mask True for its first steps, then "
        "False); this mask has a False step before a True one");
  if (*lo == 0)
    throw std::invalid_argument(
        "mask: a sequence has no unmasked step (an all-False row of the mask); fastgru needs at least one step per "
        "sequence");
  if (static_cast<size_t>(*hi) > steps)
    throw std::invalid_argument("lengths: every length must be in 1.." + std::to_string(steps) + ", got " +
                                std::to_string(*hi));
  if (static_cast<size_t>(*lo) == steps) return {};
  return std::vector<int64_t>(lengths, lengths + batch);
}

}  // namespace fastgru_bindings
