// A small persistent thread pool. Waits spin briefly (a step of the recurrence is tens of
// microseconds) and then sleep on a condition variable, so a busy machine is not starved.
#include "fastgru/threads.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

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

constexpr auto kSpinTime = std::chrono::microseconds(200);

// Spins until done() or kSpinTime passes; returns done().
template <class Pred>
bool spin_until(Pred done) {
  auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
    FASTGRU_PAUSE();
    if ((i & 255) == 0 && std::chrono::steady_clock::now() - start > kSpinTime) return done();
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

thread_local bool t_in_region = false;

class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int t = 1; t < n; ++t) workers_.emplace_back([this, t] { worker(t); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

  int size() const { return n_; }

  void run(const std::function<void(const Team&)>& body, int team_size) {
    Barrier barrier(team_size);
    body_ = &body;
    barrier_ = &barrier;
    team_size_ = team_size;
    pending_.store(team_size - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_region = true;
    body(Team(0, team_size, &barrier));
    t_in_region = false;
    auto finished = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_cv_.wait(lock, finished);
    }
  }

 private:
  void worker(int tid) {
    unsigned seen = 0;
    t_in_region = true;
    for (;;) {
      auto started = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(started)) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, started);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      if (tid < team_size_) {
        (*body_)(Team(tid, team_size_, barrier_));
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lock(mutex_);
          done_cv_.notify_all();
        }
      }
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(const Team&)>* body_ = nullptr;
  Barrier* barrier_ = nullptr;
  int team_size_ = 1;
  bool stop_ = false;
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
int g_num_threads = 0;
std::unique_ptr<Pool> g_pool;

}  // namespace

void Team::barrier() const {
  if (size > 1) static_cast<Barrier*>(barrier_)->wait();
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_num_threads = n > 0 ? n : 1;
}

int get_num_threads() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_num_threads == 0) g_num_threads = default_threads();
  return g_num_threads;
}

void parallel_run(const std::function<void(const Team&)>& body, int max_threads) {
  if (t_in_region) {
    body(Team(0, 1, nullptr));
    return;
  }
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_num_threads == 0) g_num_threads = default_threads();
  int n = g_num_threads < max_threads ? g_num_threads : max_threads;
  if (n <= 1) {
    t_in_region = true;
    body(Team(0, 1, nullptr));
    t_in_region = false;
    return;
  }
  if (!g_pool || g_pool->size() != g_num_threads) {
    g_pool.reset();
    g_pool = std::make_unique<Pool>(g_num_threads);
  }
  g_pool->run(body, n);
}

}  // namespace fastgru
