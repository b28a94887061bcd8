// Per-thread stack of scratch memory for the temporaries of one call (gate pre-activations and
// their gradients, blocked weights, a layer's output inside a stack). Allocating and freeing
// tens of megabytes per call costs page faults (the kernel zeroes every fresh page) and, with
// several threads, TLB shootdowns when the memory is unmapped again: 13% of a large forward
// at 1 thread and 45% of a large forward + backward at 2 threads were spent so. The arena keeps
// its high-water size for the next call; release_memory() (fastgru/buffer.h) gives it back.
#pragma once
#include <cstddef>

namespace fastgru {
namespace detail {

// Where the calling thread's arena stood before a push; pops must come in reverse order.
struct ScratchMark {
  size_t block, offset;
};
void* scratch_push(size_t bytes, ScratchMark* mark);  // 64-byte aligned, uninitialized
void scratch_pop(const ScratchMark& mark);
void scratch_release();     // frees the calling thread's arena unless it is in use
size_t scratch_capacity();  // bytes the calling thread's arena holds (tests)

// n uninitialized elements of the calling thread's arena, returned when it goes out of scope.
// Not copyable or movable: arrays live in nested scopes and die in reverse order (LIFO).
template <class T>
class ScratchArray {
 public:
  explicit ScratchArray(size_t n) : n_(n), data_(static_cast<T*>(scratch_push(n * sizeof(T), &mark_))) {}
  ~ScratchArray() { scratch_pop(mark_); }
  ScratchArray(const ScratchArray&) = delete;
  ScratchArray& operator=(const ScratchArray&) = delete;

  T* data() const { return data_; }
  size_t size() const { return n_; }
  T* begin() const { return data_; }
  T* end() const { return data_ + n_; }
  T& operator[](size_t i) const { return data_[i]; }

 private:
  ScratchMark mark_;
  size_t n_;
  T* data_;
};

}  // namespace detail
}  // namespace fastgru
