// GEMM speed (fp32) at the GRU's shapes against the machine's measured FMA peak, per
// instruction set, 1 and 2 threads. Each product is first checked against a naive sum at a
// grid of sampled elements. Rounds of GEMM calls alternate with rounds of an FMA loop, so a
// shared machine's load hits both alike; the fraction of peak is the median over rounds.
//   g++ -O2 -std=c++17 -Icpp/include bench/gemm_bench.cpp <build>/cpp/libfastgru_core.a -lpthread
//   gemm_bench [isa ...]   (default: every instruction set this CPU runs)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fastgru/cpu.h"
#include "fastgru/gemm.h"
#include "fastgru/threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using namespace fastgru;
using Clock = std::chrono::steady_clock;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// FLOP/s of one core running independent fp32 FMA chains (12 of them hide the latency), as
// the median over chunks as long as one GEMM call, so that time slices lost to other
// processes count as often here as in the median GEMM time.
#if defined(__x86_64__)
#define FASTGRU_FMA12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
__attribute__((target("avx2,fma"), noinline)) static float fma_loop(int reps, float seed) {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(seed * 1e-7f);
#define FASTGRU_INIT(i) __m256 acc##i = _mm256_set1_ps(seed + float(i));
#define FASTGRU_STEP(i) acc##i = _mm256_fmadd_ps(acc##i, a, b);
#define FASTGRU_SUM(i) sum = _mm256_add_ps(sum, acc##i);
  FASTGRU_FMA12(FASTGRU_INIT)
  for (int r = 0; r < reps; ++r) {
    FASTGRU_FMA12(FASTGRU_STEP)
  }
  __m256 sum = _mm256_setzero_ps();
  FASTGRU_FMA12(FASTGRU_SUM)
  return _mm256_cvtss_f32(sum);
}

static double fma_rate_one_core(double seconds, double chunk) {
  const int reps = 500;  // about a microsecond
  std::vector<double> chunks;
  float sink = 0;
  auto start = Clock::now(), last = start;
  do {
    long iters = 0;
    double elapsed = 0;
    auto now = last;
    do {
      sink += fma_loop(reps, sink);
      iters += reps;
      now = Clock::now();
      elapsed = std::chrono::duration<double>(now - last).count();
    } while (elapsed < chunk);
    chunks.push_back(iters * 12.0 * 8 * 2 / elapsed);
    last = now;
  } while (std::chrono::duration<double>(last - start).count() < seconds);
  if (sink == 12345.f) std::printf(" ");
  return median(chunks);
}
#else
static double fma_rate_one_core(double, double) { return 0; }
#endif

// The FMA peak of `threads` cores, each running the loop above at the same time (the first on
// the calling thread, like the GEMM's).
static double fma_peak(int threads, double seconds, double chunk) {
  std::vector<double> rates(threads);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back([&, t] { rates[t] = fma_rate_one_core(seconds, chunk); });
  rates[0] = fma_rate_one_core(seconds, chunk);
  for (auto& th : pool) th.join();
  double sum = 0;
  for (double r : rates) sum += r;
  return sum;
}

// The machine is shared: rounds alternate a burst of f with a burst of the FMA loop, and the
// result is the median over rounds of f's rate and of its fraction of the peak that round.
struct Rate {
  double flops_per_s, fraction_of_peak;
};
static Rate measure(const std::function<void()>& f, double flops, int threads) {
  auto s0 = Clock::now();
  f();
  double once = std::chrono::duration<double>(Clock::now() - s0).count();
  double burst = std::max(0.02, 3 * once);
  std::vector<double> rates, fractions;
  for (int round = 0; round < 15; ++round) {
    double peak = fma_peak(threads, burst, once);
    auto start = Clock::now();
    double elapsed = 0;
    std::vector<double> times;
    do {
      auto s = Clock::now();
      f();
      auto e = Clock::now();
      times.push_back(std::chrono::duration<double>(e - s).count());
      elapsed = std::chrono::duration<double>(e - start).count();
    } while (elapsed < burst);
    double rate = flops / median(times);
    rates.push_back(rate);
    fractions.push_back(rate / peak);
  }
  return {median(rates), median(fractions)};
}

struct Case {
  const char* name;
  size_t M, N, K;
  Trans ta, tb;
  bool packed;  // the recurrent step: B packed once, columns split over threads
};

static bool check(const Case& c, const std::vector<float>& A, const std::vector<float>& B,
                  const std::vector<float>& C) {
  size_t lda = c.ta == Trans::no ? c.K : c.M, ldb = c.tb == Trans::no ? c.N : c.K;
  double worst = 0;
  for (size_t i = 0; i < c.M; i += 1 + c.M / 7)
    for (size_t j = 0; j < c.N; j += 1 + c.N / 7) {
      double s = 0, mag = 0;
      for (size_t k = 0; k < c.K; ++k) {
        double a = c.ta == Trans::no ? A[i * lda + k] : A[k * lda + i];
        double b = c.tb == Trans::no ? B[k * ldb + j] : B[j * ldb + k];
        s += a * b;
        mag += std::fabs(a * b);
      }
      worst = std::max(worst, std::fabs(s - C[i * c.N + j]) / (mag + 1e-30));
    }
  return worst < 1e-5;
}

int main(int argc, char** argv) {
  const Case cases[] = {
      {"recurrent  M=64   N=768 K=256  (packed)", 64, 768, 256, Trans::no, Trans::yes, true},
      {"recurrent  M=1    N=768 K=256  (packed)", 1, 768, 256, Trans::no, Trans::yes, true},
      {"input proj M=6400 N=768 K=128  (A B^T) ", 6400, 768, 128, Trans::no, Trans::yes, false},
      {"dW         M=768  N=256 K=6400 (A^T B) ", 768, 256, 6400, Trans::yes, Trans::no, false},
      {"dX         M=6400 N=128 K=768  (A B)   ", 6400, 128, 768, Trans::no, Trans::no, false},
  };
  std::printf("fp32 FMA peak: 1 core %.1f GFLOP/s, 2 cores %.1f GFLOP/s\n",
              fma_peak(1, 0.5, 1e-3) * 1e-9, fma_peak(2, 0.5, 1e-3) * 1e-9);
  std::printf("GEMM: median GFLOP/s and median fraction of the peak measured between bursts\n");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<std::string> isas(argv + 1, argv + argc);
  if (isas.empty()) isas = available_isas();
  for (const std::string& isa : isas) {
    set_isa(isa);
    std::printf("\nisa %s (fp32)\n", isa.c_str());
    for (const Case& c : cases) {
      std::vector<float> A(c.M * c.K), B(c.K * c.N), C(c.M * c.N);
      for (float& x : A) x = dist(rng);
      for (float& x : B) x = dist(rng);
      size_t lda = c.ta == Trans::no ? c.K : c.M, ldb = c.tb == Trans::no ? c.N : c.K;
      PackedMatrix<float> packed;
      if (c.packed) packed.pack(c.tb, c.K, c.N, B.data(), ldb);
      std::printf("  %s", c.name);
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        auto run = [&] {
          if (!c.packed)
            return gemm<float>(c.ta, c.tb, c.M, c.N, c.K, A.data(), lda, B.data(), ldb, 0.f,
                               C.data(), c.N);
          parallel_run([&](const Team& team) {
            size_t w = 32, panels = (c.N + w - 1) / w;
            Range r = static_range(panels, team.tid, team.size);
            size_t n0 = r.begin * w, n1 = std::min(c.N, r.end * w);
            if (n0 < n1) gemm_packed<float>(c.M, n0, n1, A.data(), c.K, packed, 0.f, C.data(), c.N);
          });
        };
        run();
        if (!check(c, A, B, C)) {
          std::printf("  WRONG RESULT\n");
          return 1;
        }
        Rate r = measure(run, 2.0 * c.M * c.N * c.K, threads);
        std::printf(" | %dT %6.1f GFLOP/s %3.0f%%", threads, r.flops_per_s * 1e-9,
                    100 * r.fraction_of_peak);
      }
      std::printf("\n");
    }
  }
  return 0;
}
