// A small persistent thread pool. Waits spin briefly (a step of the recurrence is tens of
// microseconds) and then sleep on a condition variable, so a busy machine is not starved.
#include "fastgru/threads.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define FASTGRU_HAVE_FORK 1
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FASTGRU_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define FASTGRU_PAUSE() asm volatile("yield")
#else
#define FASTGRU_PAUSE() ((void)0)
#endif

namespace fastgru {
namespace {

// Waiting: spin briefly (a step of the recurrence takes microseconds), then keep polling but
// yield the core at each poll, so an idle machine sees the wake-up at once while a busy one
// runs its other threads (our partner thread among them); then block on a condition variable.
// Blocking soon matters beside other runtimes: right after a torch or ONNX Runtime call their
// workers keep spinning on the cores, and a partner of ours preempted by one of them only
// gets a core back at once if we leave ours idle (the scheduler moves a waiting thread to an
// idle core at once, to a busy one only at its next balancing, milliseconds later). An idle
// worker polls 1 ms between regions, then sleeps, so an idle library costs nothing.
constexpr unsigned kSpins = 2000;
constexpr auto kTeamPollTime = std::chrono::microseconds(200);
constexpr auto kIdlePollTime = std::chrono::microseconds(1000);
constexpr auto kStealGrace = std::chrono::microseconds(100);

// Waits until done() or poll_time passes; returns done().
template <class Pred>
bool spin_until(Pred done, std::chrono::microseconds poll_time = kTeamPollTime) {
  for (unsigned i = 0; i < kSpins; ++i) {
    if (done()) return true;
    FASTGRU_PAUSE();
  }
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (done()) return true;
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() - start > poll_time) return done();
  }
}

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}

  void wait() {
    if (n_ == 1) return;
    unsigned phase = phase_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        phase_.store(phase + 1, std::memory_order_release);
      }
      cv_.notify_all();
      return;
    }
    auto passed = [&] { return phase_.load(std::memory_order_acquire) != phase; };
    if (spin_until(passed)) return;
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, passed);
  }

 private:
  int n_;
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> phase_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
};

// Threads of a run_phases region that gave up spinning; a finished part wakes them.
class Sleepers {
 public:
  void notify() {
    if (count_.load(std::memory_order_seq_cst) == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    cv_.notify_all();
  }
  template <class Pred>
  void wait(Pred done) {
    count_.fetch_add(1, std::memory_order_seq_cst);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // The timeout is only a safety net: notify() comes after every finished part.
      while (!done()) cv_.wait_for(lock, std::chrono::milliseconds(1));
    }
    count_.fetch_sub(1, std::memory_order_seq_cst);
  }

 private:
  std::atomic<int> count_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
};

thread_local bool t_in_region = false;

class Pool {
 public:
  // Starting a thread fails when the system has none left (or, under an address-space limit,
  // no memory for its stack): the threads already started are stopped and joined (destroying
  // a joinable thread ends the process, and destroying cv_ with them waiting on it hangs), and
  // the caller gets std::bad_alloc, the out-of-memory error, for out of resources.
  explicit Pool(int n) : n_(n) {
    for (int t = 0; t < n; ++t) slots_[t].store(kRetracted, std::memory_order_relaxed);
    try {
      for (int t = 1; t < n; ++t) workers_.emplace_back([this, t] { worker(t); });
    } catch (...) {
      stop_workers();
      throw std::bad_alloc();
    }
  }

  ~Pool() { stop_workers(); }

  int size() const { return n_; }

#if FASTGRU_HAVE_FORK
  // A forked child has none of the parent's threads: its pool must not be used or joined.
  bool inherited() const { return owner_ != getpid(); }
#else
  bool inherited() const { return false; }
#endif

  // Runs body on a team of team_size threads. When the caller has finished its own share, it
  // takes over the share of every worker that has not started yet (asleep, or descheduled on
  // a busy machine) instead of waiting for it: the result is the same, as the share is fixed
  // by the member index, not by the thread. (A body that meets at team.barrier() cannot be
  // taken over: the caller only gets past the barrier once every member has started.)
  void run(const std::function<void(const Team&)>& body, int team_size) {
    Barrier barrier(team_size);
    body_ = &body;
    barrier_ = &barrier;
    team_size_ = team_size;
    pending_.store(team_size - 1, std::memory_order_relaxed);
    for (int t = 1; t < n_; ++t) slots_[t].store(t < team_size ? kOpen : kRetracted, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_region = true;
    run_member(body, Team(0, team_size, &barrier));
    for (int t = 1; t < team_size; ++t) {
      int open = kOpen;
      if (slots_[t].compare_exchange_strong(open, kRetracted, std::memory_order_acq_rel)) {
        run_member(body, Team(t, team_size, &barrier));
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
    t_in_region = false;
    auto finished = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_cv_.wait(lock, finished);
    }
    if (error_) {
      std::exception_ptr error = error_;
      error_ = nullptr;
      std::rethrow_exception(error);
    }
  }

 private:
  enum : int { kOpen, kTaken, kRetracted };

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

  // A member's exception (std::bad_alloc from a share's temporaries, say) must not end the
  // process from a worker, nor leave run() while other members still use its stack: the first
  // one is kept and rethrown by the caller once every member has finished. (A member that
  // throws before a team.barrier() would leave the others waiting there: bodies with a barrier
  // must not throw before it.)
  void run_member(const std::function<void(const Team&)>& body, const Team& team) {
    try {
      body(team);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void worker(int tid) {
    unsigned seen = 0;
    t_in_region = true;
    for (;;) {
      auto started = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(started, kIdlePollTime)) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, started);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      int open = kOpen;
      if (slots_[tid].compare_exchange_strong(open, kTaken, std::memory_order_acq_rel)) {
        run_member(*body_, Team(tid, team_size_, barrier_));
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lock(mutex_);
          done_cv_.notify_all();
        }
      }
    }
  }

  int n_;
#if FASTGRU_HAVE_FORK
  pid_t owner_ = getpid();
#endif
  std::unique_ptr<std::atomic<int>[]> slots_{new std::atomic<int>[static_cast<size_t>(n_)]};
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(const Team&)>* body_ = nullptr;
  Barrier* barrier_ = nullptr;
  int team_size_ = 1;
  bool stop_ = false;
  std::mutex error_mutex_;
  std::exception_ptr error_;  // the first exception of the running region's members
};

int default_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

std::mutex g_pool_mutex;  // one region at a time; also guards resizing
// Atomic, not under g_pool_mutex: sizing work (threads_for) may be asked from inside a region.
std::atomic<int> g_num_threads{0};
// Never destroyed at exit (the workers end with the process). A pool inherited by a forked
// child is abandoned, not destroyed: its threads, and the waiters its condition variables
// record, belong to the parent.
Pool* g_pool = nullptr;
std::atomic<const ForeignThreads*> g_foreign{nullptr};
#if FASTGRU_HAVE_FORK
// A forked child leaves the foreign runtime alone (GNU OpenMP's threads do not survive a fork:
// its first region there may hang) and uses a pool of its own, as with an inherited pool.
std::atomic<pid_t> g_foreign_owner{0};
bool foreign_inherited() { return g_foreign_owner.load() != getpid(); }
#else
bool foreign_inherited() { return false; }
#endif

// Runs body on a team of n foreign threads; false (nothing run) when the runtime gave a team
// of another size, which would never get past a barrier of n.
bool run_on_foreign(const ForeignThreads& foreign, const std::function<void(const Team&)>& body, int n) {
  struct Region {
    Region(const ForeignThreads& f, const std::function<void(const Team&)>& b, int size)
        : foreign(f), body(b), n(size), barrier(size) {}
    const ForeignThreads& foreign;
    const std::function<void(const Team&)>& body;
    int n;
    Barrier barrier;
    std::atomic<bool> sized{true};
    std::mutex error_mutex;
    std::exception_ptr error;  // as Pool::run_member: kept for the caller, never thrown in a member
  } region(foreign, body, n);
  auto member = [](void* data) {
    Region& r = *static_cast<Region*>(data);
    if (r.foreign.num_threads() != r.n) {  // every member sees the same size: all return
      r.sized.store(false, std::memory_order_relaxed);
      return;
    }
    t_in_region = true;
    try {
      r.body(Team(r.foreign.thread_num(), r.n, &r.barrier));
    } catch (...) {
      std::lock_guard<std::mutex> lock(r.error_mutex);
      if (!r.error) r.error = std::current_exception();
    }
    t_in_region = false;
  };
  foreign.fork(member, &region, static_cast<unsigned>(n), 0);
  if (region.error) std::rethrow_exception(region.error);
  return region.sized.load(std::memory_order_relaxed);
}

}  // namespace

void Team::barrier() const {
  if (size > 1) static_cast<Barrier*>(barrier_)->wait();
}

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 1); }

void set_foreign_threads(const ForeignThreads* threads) {
#if FASTGRU_HAVE_FORK
  g_foreign_owner.store(getpid());
#endif
  g_foreign.store(threads);
}
bool uses_foreign_threads() { return g_foreign.load() != nullptr; }

int get_num_threads() {
  int n = g_num_threads.load();
  if (n == 0) {
    int unset = 0;
    g_num_threads.compare_exchange_strong(unset, default_threads());
    n = g_num_threads.load();
  }
  return n;
}

void parallel_run(const std::function<void(const Team&)>& body, int max_threads) {
  if (t_in_region) {
    body(Team(0, 1, nullptr));
    return;
  }
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  const int threads = get_num_threads();
  int n = threads < max_threads ? threads : max_threads;
  if (n <= 1) {
    struct InRegion {  // reset even when body throws
      InRegion() { t_in_region = true; }
      ~InRegion() { t_in_region = false; }
    } in_region;
    body(Team(0, 1, nullptr));
    return;
  }
  if (const ForeignThreads* foreign = g_foreign.load())
    if (!foreign_inherited() && run_on_foreign(*foreign, body, n)) return;
  if (g_pool && g_pool->inherited()) g_pool = nullptr;
  if (!g_pool || g_pool->size() != threads) {
    delete g_pool;
    g_pool = nullptr;  // if the new pool cannot start, the next call tries again
    g_pool = new Pool(threads);
  }
  g_pool->run(body, n);
}

void run_phases(size_t phases, size_t parts, const std::function<void(size_t, size_t)>& fn) {
  if (phases == 0 || parts == 0) return;
  // One part, or already inside a region (one thread): the phases in order, with none of the
  // shared bookkeeping below (a thread sweeping its own batch slice shares nothing with others).
  if (parts == 1 || t_in_region || get_num_threads() == 1) {
    for (size_t phase = 0; phase < phases; ++phase)
      for (size_t part = 0; part < parts; ++part) fn(phase, part);
    return;
  }
  using Clock = std::chrono::steady_clock;
  const size_t items = phases * parts;
  std::unique_ptr<std::atomic<bool>[]> claimed(new std::atomic<bool>[items]);
  std::unique_ptr<std::atomic<size_t>[]> done(new std::atomic<size_t>[phases]);
  for (size_t i = 0; i < items; ++i) claimed[i].store(false, std::memory_order_relaxed);
  for (size_t i = 0; i < phases; ++i) done[i].store(0, std::memory_order_relaxed);
  // The last phase in which a thread ran a part that is not its own: its owner was not keeping
  // up (asleep, or its core taken by another process or another runtime's spinning threads).
  constexpr size_t kNever = ~size_t(0);
  std::atomic<size_t> taken_over{kNever};

  Sleepers sleepers;
  auto run_part = [&](size_t phase, size_t part, const Range& own) {
    std::atomic<bool>& c = claimed[phase * parts + part];
    if (c.load(std::memory_order_relaxed) || c.exchange(true, std::memory_order_acq_rel)) return;
    if (part < own.begin || part >= own.end) taken_over.store(phase, std::memory_order_relaxed);
    fn(phase, part);
    done[phase].fetch_add(1, std::memory_order_seq_cst);
    sleepers.notify();
  };
  // Waits for phase to complete. Partners that kept up in the previous phase get kStealGrace to
  // claim and finish their parts (on a quiet machine they are only a little behind, and their
  // weights are in their own caches); after a phase in which a part had to be taken over they
  // get none. Then the parts nobody has claimed yet are run here, and only a part that is being
  // run is waited for; a wait that outlasts this thread's own parts plus the grace means that
  // part's thread lost its core, so this one sleeps, leaving its core to it.
  std::atomic<int> joined{0};
  auto complete = [&](size_t phase, const Team& team, const Range& own, Clock::duration own_time) {
    auto finished = [&] { return done[phase].load(std::memory_order_seq_cst) == parts; };
    if (finished()) return;
    const auto start = Clock::now();
    const bool kept_up = phase == 0 || taken_over.load(std::memory_order_relaxed) != phase - 1;
    if (kept_up && joined.load(std::memory_order_acquire) == team.size) {
      for (unsigned i = 1; !finished(); ++i) {
        FASTGRU_PAUSE();
        if ((i & 63) == 0 && Clock::now() - start > kStealGrace) break;
      }
    }
    for (size_t part = 0; part < parts; ++part) run_part(phase, part, own);
    const auto stall = own_time + kStealGrace;
    for (unsigned i = 1; !finished(); ++i) {
      if (i < kSpins) {
        FASTGRU_PAUSE();
        continue;
      }
      if (Clock::now() - start > stall) {
        sleepers.wait(finished);
        break;
      }
      std::this_thread::yield();
    }
  };

  parallel_run(
      [&](const Team& team) {
        joined.fetch_add(1, std::memory_order_acq_rel);
        const Range own = static_range(parts, team.tid, team.size);
        Clock::duration own_time{};
        for (size_t phase = 0; phase < phases; ++phase) {
          if (phase > 0) complete(phase - 1, team, own, own_time);
          const auto start = Clock::now();
          for (size_t part = own.begin; part < own.end; ++part) run_part(phase, part, own);
          own_time = Clock::now() - start;
        }
        complete(phases - 1, team, own, own_time);
      },
      static_cast<int>(parts < (1u << 30) ? parts : (1u << 30)));
}

}  // namespace fastgru
