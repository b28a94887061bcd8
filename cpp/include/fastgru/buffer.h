// Scratch and cache buffers that are written before they are read: resizing them does not
// zero-fill (tens of megabytes per call for a training cache would cost a few milliseconds).
#pragma once
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace fastgru {

// Also aligned to a cache line: a vector load that straddles two lines costs two (malloc's
// 16-byte alignment put every load of the packed recurrent weights across a line boundary).
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  static constexpr std::size_t kAlign = 64;
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <class U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlign)));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(kAlign)); }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-init: no zeroing for arithmetic types
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <class T>
using Buffer = std::vector<T, UninitializedAllocator<T>>;

// The temporaries of a forward or backward come from a per-thread arena that keeps its
// largest size from call to call, and the packed weights are kept per thread too (reusing
// memory avoids the page faults of fresh memory). Frees the arenas of the calling thread and of
// the thread pool, and the calling thread's packed weights; the next call allocates them again.
void release_memory();

}  // namespace fastgru
