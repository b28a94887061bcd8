// The per-thread scratch arena: arrays are aligned and never overlap while alive, spilling
// past a block's end works, and after the stack empties the blocks are merged so the same
// sizes fit again without new memory; release_memory() frees it all, the thread pool's arenas
// included.
#include <cstdint>
#include <thread>

#include "../../cpp/src/scratch.h"
#include "check.h"
#include "fastgru/buffer.h"
#include "fastgru/threads.h"

using namespace fastgru;
using namespace fastgru_test;
using detail::ScratchArray;

namespace {

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

bool disjoint(const float* a, size_t n, const float* b, size_t m) { return a + n <= b || b + m <= a; }

}  // namespace

int main() {
  Checker check;
  release_memory();
  const float* first_address = nullptr;
  for (int round = 0; round < 3; ++round) {
    ScratchArray<float> a(1000);
    for (size_t i = 0; i < a.size(); ++i) a[i] = 1.0f;
    {
      ScratchArray<float> b(1 << 20), c(3);  // b spills past a's block on the first round
      ScratchArray<double> empty(0);
      check.expect("aligned", aligned(a.data()) && aligned(b.data()) && aligned(c.data()));
      check.expect("disjoint", disjoint(a.data(), 1000, b.data(), b.size()) &&
                                   disjoint(b.data(), b.size(), c.data(), 3) && disjoint(a.data(), 1000, c.data(), 3));
      for (size_t i = 0; i < b.size(); ++i) b[i] = 2.0f;
      for (float& v : c) v = 3.0f;
    }
    bool kept = true;
    for (float v : a) kept = kept && v == 1.0f;
    check.expect("an array outlives the ones pushed after it", kept);
    // Round 0 spills into a second block; from then on the merged block holds both.
    if (round == 1) first_address = a.data();
    if (round == 2) check.expect("merged: the same sizes reuse one block", a.data() == first_address);
  }
  {
    ScratchArray<float> probe(1);
    first_address = probe.data();
  }
  {
    ScratchArray<float> a(1000), b(1 << 20);
    check.expect("after merging, a and b share one block",
                 a.data() == first_address && b.data() == first_address + 1008);  // 4000 bytes rounded up to 64
  }
  // Another thread has its own arena.
  const float* other = nullptr;
  std::thread([&] {
    ScratchArray<float> t(16);
    other = t.data();
  }).join();
  check.expect("threads have separate arenas", other != first_address);
  release_memory();
  {
    ScratchArray<float> again(8);
    again[7] = 1.0f;
    check.expect("usable after release_memory", again[7] == 1.0f);
  }
  // The pool's threads keep arenas of their own (the temporaries of the batch slices they
  // sweep); release_memory() frees those too.
  // (A member that meets at a barrier runs on its own thread: the caller takes over no share.)
  set_num_threads(2);
  size_t held[2] = {0, 0};
  parallel_run([&](const Team& team) {
    ScratchArray<float> slice(1 << 18);
    slice[0] = 1.0f;
    held[team.tid] = detail::scratch_capacity();
    team.barrier();
  });
  check.expect("each pool thread grew its arena", held[0] >= (1 << 20) && held[1] >= (1 << 20));
  release_memory();
  parallel_run([&](const Team& team) {
    held[team.tid] = detail::scratch_capacity();
    team.barrier();
  });
  check.expect("release_memory freed every pool thread's arena", held[0] == 0 && held[1] == 0);
  return check.report("test_scratch");
}
