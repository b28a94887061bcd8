// Overflow-checked size arithmetic. Every product of dimensions that sizes a buffer or bounds a
// loop is formed here (or bounded by a product formed here) so that an absurd size is refused
// with an exception before anything is allocated, instead of wrapping around to a small buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace fastgru {

// The largest element count a buffer of any supported dtype (up to 8 bytes) can have: its size
// in bytes must fit in ptrdiff_t.
constexpr size_t kMaxElements = static_cast<size_t>(PTRDIFF_MAX) / 8;

// The most layers a GRU may have: far beyond any trained model, small enough that building
// the parameter layout is instant.
constexpr size_t kMaxLayers = 1024;

// a * b, or std::overflow_error naming `what` when the product exceeds kMaxElements.
inline size_t checked_mul(size_t a, size_t b, const char* what) {
  size_t product = 0;
  if (__builtin_mul_overflow(a, b, &product) || product > kMaxElements)
    throw std::overflow_error(std::string(what) + ": " + std::to_string(a) + " * " + std::to_string(b) +
                              " elements is more than a buffer can hold");
  return product;
}

// a + b under the same limit.
inline size_t checked_add(size_t a, size_t b, const char* what) {
  size_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum) || sum > kMaxElements)
    throw std::overflow_error(std::string(what) + ": " + std::to_string(a) + " + " + std::to_string(b) +
                              " elements is more than a buffer can hold");
  return sum;
}

// The product of all dims under the same limit (each partial product checked); 0 when any
// dim is 0, however large the others.
inline size_t checked_product(std::initializer_list<size_t> dims, const char* what) {
  for (size_t d : dims)
    if (d == 0) return 0;
  size_t product = 1;
  for (size_t d : dims) product = checked_mul(product, d, what);
  return product;
}

}  // namespace fastgru
