// Threading for the whole core: one persistent pool, fixed (static) partitions only,
// so every result is independent of timing and of the thread count.
#pragma once
#include <cstddef>
#include <functional>

namespace fastgru {

// Number of threads used by parallel regions. Default: OMP_NUM_THREADS if set, else the core count.
void set_num_threads(int n);
int get_num_threads();

// What a thread of a parallel region knows: its index, the team size, and a barrier
// that all threads of the team must reach before any continues.
class Team {
 public:
  int tid;
  int size;
  void barrier() const;

  Team(int tid_, int size_, void* barrier_) : tid(tid_), size(size_), barrier_(barrier_) {}

 private:
  void* barrier_;
};

// Runs body(team) on min(get_num_threads(), max_threads) threads; the caller is tid 0.
// Returns when every thread has finished. A call from inside a region runs on one thread.
// If members throw, the caller rethrows the first exception once every member has finished
// (a body that throws before team.barrier() would leave the others waiting there).
void parallel_run(const std::function<void(const Team&)>& body, int max_threads = 1 << 30);

// Another runtime's threads for parallel regions, instead of fastgru's own pool. Beside a
// runtime whose idle workers spin after each of its calls (torch's OpenMP threads), two teams
// fight for the cores; running our regions on its threads leaves one team. `fork` runs
// fn(data) on `threads` threads at once, the caller among them, and returns when all have
// returned (OpenMP's GOMP_parallel, flags 0); `thread_num` and `num_threads` tell a thread
// its index and its team's size (omp_get_thread_num, omp_get_num_threads). A region whose
// team comes out smaller than asked (a nested region, a thread limit) runs on the own pool.
// Which threads run a region never changes its results: shares are fixed by member index.
struct ForeignThreads {
  void (*fork)(void (*fn)(void*), void* data, unsigned threads, unsigned flags);
  int (*thread_num)();
  int (*num_threads)();
};
// threads: kept by pointer until the next call (static storage); nullptr: the own pool.
void set_foreign_threads(const ForeignThreads* threads);
bool uses_foreign_threads();

// How many threads a job of `work` units deserves: waking a thread and meeting at barriers
// costs more than it saves on tiny problems, above all on a busy machine.
inline int threads_for(size_t work, size_t min_work_per_thread) {
  size_t n = work / (min_work_per_thread ? min_work_per_thread : 1);
  int all = get_num_threads();
  return n < 1 ? 1 : (n < static_cast<size_t>(all) ? static_cast<int>(n) : all);
}

// Runs fn(phase, part) for every phase 0..phases-1 and part 0..parts-1: a phase starts only
// when every part of the previous one has finished; the parts of a phase run in parallel.
// Thread t runs its own parts (static_range(parts, t, team size)) whenever it keeps up, so
// its data stays in its cache from phase to phase; a thread left waiting for a late partner
// (descheduled on a busy machine, or not yet awake) runs the partner's unclaimed parts
// itself, so no phase waits for a thread that is not running. fn must compute the same
// result whichever thread runs a part; then results never depend on timing.
void run_phases(size_t phases, size_t parts, const std::function<void(size_t phase, size_t part)>& fn);

struct Range {
  size_t begin, end;
};

// Thread tid's part of [0, n) split into `parts` contiguous pieces of whole grains.
inline Range static_range(size_t n, int tid, int parts, size_t grain = 1) {
  size_t grains = (n + grain - 1) / grain;
  size_t base = grains / parts, extra = grains % parts;
  size_t t = static_cast<size_t>(tid);
  size_t g0 = t * base + (t < extra ? t : extra);
  size_t g1 = g0 + base + (t < extra ? 1 : 0);
  size_t b = g0 * grain, e = g1 * grain;
  return {b < n ? b : n, e < n ? e : n};
}

}  // namespace fastgru
