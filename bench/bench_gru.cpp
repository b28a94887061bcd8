// bench_gru: speed of the GRU core at the standard configurations (bench/configs.csv) (float32, one
// layer, unidirectional, reset_after). For each configuration it first holds gru_forward and
// gru_backward to a naive triple-loop implementation (exit 1 on mismatch), then reports the
// median time and GFLOP/s of forward (inference), forward (training), backward and the training
// step, and of the GEMM alone at the GRU's three shapes, against the measured FMA peak (probed
// with the widest vectors the active instruction set uses) and, where the CPU has VDPBF16PS, the
// bfloat16 dot-product peak.
//   bench_gru [--threads N] [--config NAME] [--iters N] [--compute-dtype float32|bfloat16]
//             --compute-dtype bfloat16 times the GRU with bfloat16 products (GruConfig::compute_dtype)
//   bench_gru --peak      prints only one core's measured FMA peak (used by bench/compare.py)
//   bench_gru --pingpong  prints only the core-to-core round trip (used by bench/compare.py)
//   bench_gru --foreign-spin ...  times everything beside a thread that spins the whole time, as
//                         another runtime's idle worker does (bench/README.md, findings)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_configs.h"  // kConfigs: generated from bench/configs.csv
#include "fastgru/adam.h"
#include "fastgru/cpu.h"
#include "fastgru/gemm.h"
#include "fastgru/gru.h"
#include "fastgru/threads.h"
#include "naive_gru.h"

#if defined(FASTGRU_BENCH_X86)
// The probes, each in a file of its own compiled for its instructions (peak_*.cpp).
float fma_chains_avx2(long rounds);           // rounds x 12 x 8 x 2 FLOPs
float fma_chains_avx512(long rounds);         // rounds x 24 x 16 x 2 FLOPs
float dpbf16_chains_avx512bf16(long rounds);  // rounds x 24 x 16 x 4 FLOPs
float tdpbf16_chains_amx(long rounds);        // rounds x 4 x 16 x 16 x 32 x 2 FLOPs
#endif

using namespace fastgru;
using namespace fastgru_test;
using Clock = std::chrono::steady_clock;

namespace {

// Steps used by the correctness check: enough to cover the state hand-over between steps,
// few enough that the naive implementation takes well under a second at every size.
constexpr size_t kCheckSteps = 5;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// ---------------------------------------------------------------------------------------------
// Core-to-core round trip
// ---------------------------------------------------------------------------------------------

// Nanoseconds for one cache line to go from this thread to another and back: how far apart the
// cores under two threads are, which a virtual machine may change while it runs (the 2-thread
// results follow it: bench/README.md, findings). The mean over about 0.2 s of round trips: a
// few milliseconds' worth often misses the slow spells.
double core_round_trip_ns() {
  constexpr int kTrips = 2000, kStop = -1;  // round trips between looks at the clock
  alignas(64) static std::atomic<int> line{0};
  line.store(0);
  std::thread partner([] {
    for (int i = 0;; ++i) {
      int v;
      while ((v = line.load(std::memory_order_acquire)) != 2 * i + 1 && v != kStop) {
      }
      if (v == kStop) return;
      line.store(2 * i + 2, std::memory_order_release);
    }
  });
  const Clock::time_point start = Clock::now();
  long trips = 0;
  while (seconds_since(start) < 0.2) {
    for (int k = 0; k < kTrips; ++k, ++trips) {
      line.store(static_cast<int>(2 * trips + 1), std::memory_order_release);
      while (line.load(std::memory_order_acquire) != 2 * trips + 2) {
      }
    }
  }
  const double seconds = seconds_since(start);
  line.store(kStop, std::memory_order_release);
  partner.join();
  return seconds / static_cast<double>(trips) * 1e9;
}

// ---------------------------------------------------------------------------------------------
// FMA peak
// ---------------------------------------------------------------------------------------------

bool cpu_has_avx2_fma() {
#if defined(FASTGRU_BENCH_X86)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// The probes: FLOPs per round and the function running `rounds` of them. The float32 probe uses
// the vectors of the active instruction set (a 256-bit probe reports half the peak of a CPU
// with two 512-bit FMA units).
struct Probe {
  const char* what;
  double flops_per_round;
  float (*run)(long rounds);
};

Probe fma_probe() {
#if defined(FASTGRU_BENCH_X86)
  const std::string isa = active_isa();
  if (isa == "avx512" || isa == "avx512vnni" || isa == "avx512bf16" || isa == "amx")
    return {"512-bit FMA", 24.0 * 16 * 2, fma_chains_avx512};
  return {"256-bit FMA", 12.0 * 8 * 2, fma_chains_avx2};
#else
  return {"none", 0, nullptr};
#endif
}

// The bfloat16 units fastgru's products use: AMX tiles when the active instruction set is amx
// (whose check got the tile state from Linux), else VDPBF16PS (per lane two bfloat16 products
// added to a float: 4 FLOPs); nullptr without either.
Probe bf16_probe() {
#if defined(FASTGRU_BENCH_X86)
  if (active_isa() == "amx") return {"AMX TDPBF16PS", 4.0 * 16 * 16 * 32 * 2, tdpbf16_chains_amx};
  if (__builtin_cpu_supports("avx512bf16")) return {"VDPBF16PS", 24.0 * 16 * 4, dpbf16_chains_avx512bf16};
#endif
  return {"none", 0, nullptr};
}

// Whether the active instruction set runs its bfloat16 products on the probe's units (amx and
// avx512bf16 have kernels for them; the others round operands for the float32 FMAs).
bool bf16_units_run_products(const Probe& probe) {
  const std::string isa = active_isa();
  return probe.run && (isa == "amx" || isa == "avx512bf16");
}

// FLOP/s of one thread running the probe: the best of many short windows over about
// `seconds`, so time lost to other processes on a shared machine does not lower the figure.
double probe_rate_one_thread(const Probe& probe, double seconds) {
  if (!probe.run) return 0;
  const long rounds = 1 << 14;  // a fraction of a millisecond
  volatile float sink = 0;
  double best = 0;
  const auto start = Clock::now();
  do {
    const auto window = Clock::now();
    sink = sink + probe.run(rounds);
    best = std::max(best, static_cast<double>(rounds) * probe.flops_per_round / seconds_since(window));
  } while (seconds_since(start) < seconds);
  return best;
}

double fma_rate_one_thread(double seconds) { return probe_rate_one_thread(fma_probe(), seconds); }

// Summed FLOP/s of `threads` threads running the probe at the same time.
double fma_rate(int threads, double seconds) {
  std::vector<double> rates(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&rates, t, seconds] { rates[t] = fma_rate_one_thread(seconds); });
  for (auto& th : pool) th.join();
  double sum = 0;
  for (double r : rates) sum += r;
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

std::vector<float> random_vector(size_t n, float bound, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-bound, bound);
  std::vector<float> v(n);
  for (float& e : v) e = dist(rng);
  return v;
}

std::vector<double> widen(const float* p, size_t n) { return std::vector<double>(p, p + n); }

const ParamTensor& find_param(const std::vector<ParamTensor>& layout, const char* name) {
  for (const ParamTensor& p : layout)
    if (p.name == name) return p;
  std::fprintf(stderr, "parameter %s not in the layout\n", name);
  std::exit(2);
}

// Largest |got - want| relative to the largest |want| (at least 1, so tiny tensors are judged
// by absolute error). float32 results of sums over a few hundred terms stay far below 1e-4.
struct Mismatch {
  double worst = 0;
  std::string where;
};

void compare(const char* what, const float* got, const std::vector<double>& want, Mismatch& m) {
  double scale = 1, diff = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
  if (diff / scale > m.worst) {
    m.worst = diff / scale;
    m.where = what;
  }
}

constexpr double kTolerance = 1e-4;

// Median seconds of `iters` timed calls after `warmup` untimed ones.
double median_seconds(const std::function<void()>& f, int iters, int warmup) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t(iters);
  for (int i = 0; i < iters; ++i) {
    const auto start = Clock::now();
    f();
    t[i] = seconds_since(start);
  }
  std::sort(t.begin(), t.end());
  return iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
}

// Iterations when --iters is not given: about half a second per measurement, 5 to 50.
int auto_iters(const std::function<void()>& f) {
  const auto start = Clock::now();
  f();
  const double once = seconds_since(start);
  return static_cast<int>(std::clamp(0.5 / std::max(once, 1e-9), 5.0, 50.0));
}

struct Options {
  int threads = 0;
  std::string config;
  int iters = 0;  // 0: auto_iters
  bool peak_only = false;
  bool pingpong_only = false;
  bool foreign_spin = false;
  ComputeDtype compute = ComputeDtype::float32;
};

struct Row {
  std::string what;
  double seconds, flops;
};

// peak: the float32 FMA peak of the run's threads; bf16_peak: the bfloat16 units' (0 when the
// products are float32 or the CPU has none), a second column.
void print_row(const char* config, const Row& row, double peak, double bf16_peak) {
  const double rate = row.flops / row.seconds;
  std::printf("%-7s %-38s %10.3f %9.1f", config, row.what.c_str(), row.seconds * 1e3, rate * 1e-9);
  if (peak > 0)
    std::printf(" %6.1f%%", 100 * rate / peak);
  else
    std::printf("    n/a");
  if (bf16_peak > 0) std::printf(" %8.1f%%", 100 * rate / bf16_peak);
  std::printf("\n");
}

// ---------------------------------------------------------------------------------------------
// The correctness check: gru_forward (both modes) and gru_backward vs the naive GRU on the
// configuration's B, I, H and kCheckSteps steps, with a random h0 and dh_n.
// ---------------------------------------------------------------------------------------------

bool check_config(const BenchConfig& c, std::mt19937& rng, Mismatch& m) {
  GruConfig cfg;
  cfg.input_size = c.I;
  cfg.hidden_size = c.H;
  const auto layout = gru_param_layout(cfg);
  const size_t T = std::min(c.T, kCheckSteps), B = c.B, I = c.I, H = c.H;

  std::vector<float> params = random_vector(gru_param_count(cfg), 1 / std::sqrt(float(H)), rng);
  std::vector<float> x = random_vector(T * B * I, 1, rng), h0 = random_vector(B * H, 1, rng);
  std::vector<float> dy = random_vector(T * B * H, 1, rng), dh_n = random_vector(B * H, 1, rng);

  const ParamTensor &w_ih = find_param(layout, "weight_ih_l0"), &w_hh = find_param(layout, "weight_hh_l0"),
                    &b_ih = find_param(layout, "bias_ih_l0"), &b_hh = find_param(layout, "bias_hh_l0");
  auto view = [](const std::vector<float>& flat, const ParamTensor& p) {
    return widen(flat.data() + p.offset, p.size());
  };
  const NaiveWeights w{view(params, w_ih), view(params, w_hh), view(params, b_ih), view(params, b_hh)};

  std::vector<double> y_ref, hn_ref, dx_ref, dh0_ref;
  NaiveTrace trace;
  NaiveWeights g_ref;
  const std::vector<double> xd = widen(x.data(), x.size());
  naive_forward(w, T, B, I, H, xd, widen(h0.data(), h0.size()), y_ref, hn_ref, trace);
  naive_backward(w, T, B, I, H, xd, trace, widen(dy.data(), dy.size()), widen(dh_n.data(), dh_n.size()), dx_ref,
                 dh0_ref, g_ref);

  std::vector<float> y(T * B * H), h_n(B * H), dx(T * B * I), dh0(B * H), grad(params.size(), 0.f);
  gru_forward<float>(cfg, params.data(), T, B, x.data(), h0.data(), nullptr, nullptr, y.data(), h_n.data(), nullptr);
  compare("y (inference)", y.data(), y_ref, m);
  compare("h_n (inference)", h_n.data(), hn_ref, m);
  std::vector<float> workspace(gru_workspace_size(cfg, T, B));
  std::fill(y.begin(), y.end(), 0.f);
  gru_forward<float>(cfg, params.data(), T, B, x.data(), h0.data(), nullptr, nullptr, y.data(), h_n.data(),
                     workspace.data());
  const GruCache<float> cache{T, B, nullptr, nullptr, workspace.data()};
  compare("y (training)", y.data(), y_ref, m);
  compare("h_n (training)", h_n.data(), hn_ref, m);
  gru_backward<float>(cfg, params.data(), cache, dy.data(), dh_n.data(), dx.data(), dh0.data(), grad.data());
  compare("dx", dx.data(), dx_ref, m);
  compare("dh0", dh0.data(), dh0_ref, m);
  compare("d weight_ih", grad.data() + w_ih.offset, g_ref.w_ih, m);
  compare("d weight_hh", grad.data() + w_hh.offset, g_ref.w_hh, m);
  compare("d bias_ih", grad.data() + b_ih.offset, g_ref.b_ih, m);
  compare("d bias_hh", grad.data() + b_hh.offset, g_ref.b_hh, m);
  return m.worst <= kTolerance;
}

// ---------------------------------------------------------------------------------------------
// Timings
// ---------------------------------------------------------------------------------------------

// Inference split by hand into `threads` batch slices, each a 1-thread gru_forward on a plain
// thread of its own, with nothing shared: what a 2-thread forward would take if the pool and
// its meetings cost nothing, to hold fastgru's pool to beside a spinning foreign thread.
std::function<void()> split_forward(const GruConfig& cfg, size_t T, size_t B, const std::vector<float>& params,
                                    int threads) {
  struct Slice {
    std::vector<float> x, y, h_n;
    size_t rows;
  };
  auto slices = std::make_shared<std::vector<Slice>>();
  for (int t = 0; t < threads; ++t) {
    const Range r = static_range(B, t, threads);
    const size_t rows = r.end - r.begin;
    slices->push_back({std::vector<float>(T * rows * cfg.input_size, 0.5f),
                       std::vector<float>(T * rows * cfg.hidden_size), std::vector<float>(rows * cfg.hidden_size),
                       rows});
  }
  return [cfg, T, slices, &params] {
    const int pool_threads = get_num_threads();
    set_num_threads(1);  // one region at a time in the pool: the slices must not use it
    auto run = [&](Slice& s) {
      gru_forward<float>(cfg, params.data(), T, s.rows, s.x.data(), nullptr, nullptr, nullptr, s.y.data(), s.h_n.data(),
                         nullptr);
    };
    std::vector<std::thread> others;
    for (size_t t = 1; t < slices->size(); ++t) others.emplace_back(run, std::ref((*slices)[t]));
    run((*slices)[0]);
    for (std::thread& t : others) t.join();
    set_num_threads(pool_threads);
  };
}

std::vector<Row> time_gru(const BenchConfig& c, const Options& opt, std::mt19937& rng) {
  GruConfig cfg;
  cfg.input_size = c.I;
  cfg.hidden_size = c.H;
  cfg.compute_dtype = opt.compute;
  const size_t T = c.T, B = c.B, n = gru_param_count(cfg);
  std::vector<float> params = random_vector(n, 1 / std::sqrt(float(c.H)), rng);
  std::vector<float> x = random_vector(T * B * c.I, 1, rng), dy = random_vector(T * B * c.H, 1, rng);
  std::vector<float> y(T * B * c.H), h_n(B * c.H), dx(T * B * c.I), dh0(B * c.H), grad(n, 0.f);
  std::vector<float> exp_avg(n, 0.f), exp_avg_sq(n, 0.f);
  std::vector<float> workspace(gru_workspace_size(cfg, T, B));
  const GruCache<float> cache{T, B, nullptr, nullptr, workspace.data()};
  int64_t step = 0;
  const AdamConfig adam;

  auto forward_infer = [&] {
    gru_forward<float>(cfg, params.data(), T, B, x.data(), nullptr, nullptr, nullptr, y.data(), h_n.data(), nullptr);
  };
  auto forward_train = [&] {
    gru_forward<float>(cfg, params.data(), T, B, x.data(), nullptr, nullptr, nullptr, y.data(), h_n.data(),
                       workspace.data());
  };
  auto backward = [&] {
    gru_backward<float>(cfg, params.data(), cache, dy.data(), nullptr, dx.data(), dh0.data(), grad.data());
  };
  auto train_step = [&] {
    forward_train();
    backward();
    adam_step<float>(adam, n, params.data(), grad.data(), exp_avg.data(), exp_avg_sq.data(), nullptr, ++step);
    std::fill(grad.begin(), grad.end(), 0.f);
  };

  const double fwd = 2.0 * T * B * 3 * c.H * (c.I + c.H);  // GEMM-bound FLOPs (bench/README.md)
  auto measure = [&](const std::function<void()>& f) {
    const int iters = opt.iters > 0 ? opt.iters : auto_iters(f);
    return median_seconds(f, iters, 2);
  };
  std::vector<Row> rows;
  rows.push_back({"forward (inference)", measure(forward_infer), fwd});
  if (opt.foreign_spin && opt.threads > 1 && B >= size_t(opt.threads))
    rows.push_back({"forward (inference), split by hand", measure(split_forward(cfg, T, B, params, opt.threads)), fwd});
  rows.push_back({"forward (training, keeps cache)", measure(forward_train), fwd});
  forward_train();  // backward differentiates the last training forward
  rows.push_back({"backward", measure(backward), 2 * fwd});
  rows.push_back({"forward + backward (training)", measure([&] {
                    forward_train();
                    backward();
                  }),
                  3 * fwd});
  rows.push_back({"training step (fwd+bwd+adam+zero)", measure(train_step), 3 * fwd});
  return rows;
}

// Checks C (M, N) = op(A) op(B) at a sample of entries.
bool gemm_matches(Trans ta, Trans tb, size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B,
                  size_t ldb, const float* C, size_t ldc) {
  for (size_t i = 0; i < M; i += 1 + M / 13)
    for (size_t j = 0; j < N; j += 1 + N / 13) {
      double s = 0, mag = 0;
      for (size_t k = 0; k < K; ++k) {
        const double a = ta == Trans::no ? A[i * lda + k] : A[k * lda + i];
        const double b = tb == Trans::no ? B[k * ldb + j] : B[j * ldb + k];
        s += a * b;
        mag += std::fabs(a * b);
      }
      if (std::fabs(s - C[i * ldc + j]) > 1e-5 * (mag + 1e-30)) return false;
    }
  return true;
}

// The GEMM alone at the GRU's shapes; returns false if a product is wrong.
bool time_gemms(const BenchConfig& c, const Options& opt, std::mt19937& rng, std::vector<Row>& rows) {
  const size_t B = c.B, T = c.T, I = c.I, H = c.H, N = 3 * H, TB = T * B;
  // With bfloat16 products each product of rounded operands is exact in float, so the check
  // holds the result to the float product of the operands rounded (after the timed call).
  const bool bf16 = opt.compute == ComputeDtype::bfloat16;
  auto round_operands = [](std::vector<float>& a, std::vector<float>& b) {
    round_to_bfloat16(a.data(), a.size(), a.data());
    round_to_bfloat16(b.data(), b.size(), b.data());
  };
  auto measure = [&](const std::function<void()>& f) {
    const int iters = opt.iters > 0 ? opt.iters : auto_iters(f);
    return median_seconds(f, iters, 2);
  };
  char what[96];

  // Recurrent product: gh (B, 3H) = h (B, H) W_hh^T, W_hh (3H, H) packed once. Run as in the
  // recurrence: T products in one parallel region, each thread always the same column slice
  // (whole packed panels), a barrier after each step.
  {
    std::vector<float> h = random_vector(B * H, 1, rng), w = random_vector(N * H, 1, rng), gh(B * N);
    PackedMatrix<float> packed;
    packed.pack(Trans::yes, H, N, w.data(), H, nullptr, opt.compute);
    if (bf16) round_operands(h, w);
    const size_t width = packed_panel_width(), panels = (N + width - 1) / width;
    auto steps = [&](size_t count) {
      parallel_run([&](const Team& team) {
        const Range r = static_range(panels, team.tid, team.size);
        const size_t n0 = r.begin * width, n1 = std::min(N, r.end * width);
        for (size_t i = 0; i < count; ++i) {
          if (n0 < n1) gemm_packed<float>(B, n0, n1, h.data(), H, packed, 0.f, gh.data(), N);
          team.barrier();
        }
      });
    };
    steps(1);
    if (!gemm_matches(Trans::no, Trans::yes, B, N, H, h.data(), H, w.data(), H, gh.data(), N)) {
      std::printf("WRONG RESULT: recurrent gemm_packed at %s\n", c.name);
      return false;
    }
    std::snprintf(what, sizeof what, "gemm recurrent %zux%zux%zu, x%zu steps", B, N, H, T);
    rows.push_back({what, measure([&] { steps(T); }), 2.0 * T * B * N * H});
  }
  // One whole-sequence product C (M, N) = op(A) op(B) over random operands, checked, then timed.
  auto time_gemm = [&](const char* label, const char* shape, Trans ta, Trans tb, size_t M, size_t N_, size_t K) {
    std::vector<float> a = random_vector(M * K, 1, rng), b = random_vector(K * N_, 1, rng), out(M * N_);
    const size_t lda = ta == Trans::no ? K : M, ldb = tb == Trans::no ? N_ : K;
    auto run = [&] { gemm<float>(ta, tb, M, N_, K, a.data(), lda, b.data(), ldb, 0.f, out.data(), N_, opt.compute); };
    run();
    if (bf16) round_operands(a, b);
    if (!gemm_matches(ta, tb, M, N_, K, a.data(), lda, b.data(), ldb, out.data(), N_)) {
      std::printf("WRONG RESULT: %s gemm at %s\n", label, c.name);
      return false;
    }
    std::snprintf(what, sizeof what, "gemm %s %zux%zux%zu (%s)", label, M, N_, K, shape);
    rows.push_back({what, measure(run), 2.0 * M * N_ * K});
    return true;
  };
  // Input projection: gx (T*B, 3H) = x (T*B, I) W_ih^T; weight gradient: dW_hh (3H, H) =
  // dgh^T (3H, T*B) states (T*B, H).
  return time_gemm("input proj", "A B^T", Trans::no, Trans::yes, TB, N, I) &&
         time_gemm("weight grad", "A^T B", Trans::yes, Trans::no, N, H, TB);
}

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr,
               "%s\nusage: bench_gru [--threads N] [--config NAME] [--iters N] [--compute-dtype float32|bfloat16] "
               "[--foreign-spin] | --peak | --pingpong\n"
               "  NAME:",
               message);
  for (const BenchConfig& c : kConfigs) std::fprintf(stderr, " %s", c.name);
  std::fprintf(stderr, "\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options opt;
  opt.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") usage("bench_gru: GRU and GEMM speed (see bench/README.md)");
    if (flag == "--peak") {
      opt.peak_only = true;
      continue;
    }
    if (flag == "--pingpong") {
      opt.pingpong_only = true;
      continue;
    }
    if (flag == "--foreign-spin") {
      opt.foreign_spin = true;
      continue;
    }
    if (flag != "--threads" && flag != "--iters" && flag != "--config" && flag != "--compute-dtype")
      usage(("unknown flag: " + flag).c_str());
    if (i + 1 >= argc) usage(("missing value after " + flag).c_str());
    const char* value = argv[++i];
    if (flag == "--compute-dtype") {
      const std::string v = value;
      if (v != "float32" && v != "bfloat16") usage(("bad value for --compute-dtype: " + v).c_str());
      opt.compute = v == "bfloat16" ? ComputeDtype::bfloat16 : ComputeDtype::float32;
    } else if (flag == "--threads" || flag == "--iters") {
      char* end = nullptr;
      const long v = std::strtol(value, &end, 10);
      if (*end != '\0' || v < 1 || v > 100000) usage(("bad value for " + flag + ": " + value).c_str());
      (flag == "--threads" ? opt.threads : opt.iters) = static_cast<int>(v);
    } else {
      opt.config = value;
      if (std::none_of(std::begin(kConfigs), std::end(kConfigs),
                       [&](const BenchConfig& c) { return opt.config == c.name; }))
        usage(("unknown config: " + opt.config).c_str());
    }
  }
  return opt;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  if (opt.pingpong_only) {
    if (std::thread::hardware_concurrency() < 2) return 3;
    std::printf("core_round_trip_ns %.1f\n", core_round_trip_ns());
    return 0;
  }
  if (opt.peak_only) {
    if (!cpu_has_avx2_fma()) return 3;
    std::printf("fma_peak_gflops_per_core %.2f\n", fma_rate(1, 0.5) * 1e-9);
    const Probe bf16_units = bf16_probe();
    if (bf16_units.run) std::printf("bf16_peak_gflops_per_core %.2f\n", probe_rate_one_thread(bf16_units, 0.5) * 1e-9);
    return 0;
  }
  set_num_threads(opt.threads);

  // % of peak is of (one core's measured peak) x threads: the figure the cores can reach when
  // nothing else runs. All threads measured at once is printed beside it: on a busy machine it
  // is lower, and the gap says how much of the machine this run actually had.
  double peak_core = 0, peak_together = 0;
  if (cpu_has_avx2_fma()) {
    peak_core = fma_rate(1, 0.3);
    peak_together = opt.threads == 1 ? peak_core : fma_rate(opt.threads, 0.3);
  }
  const double peak = peak_core * opt.threads;
  const bool bf16 = opt.compute == ComputeDtype::bfloat16;
  std::printf("bench_gru: isa %s, %d thread(s), float32%s, 1 layer, unidirectional, reset_after\n",
              active_isa().c_str(), get_num_threads(), bf16 ? " with bfloat16 products" : "");
  if (peak_core > 0)
    std::printf(
        "fp32 FMA peak (%s probe): 1 core %.1f GFLOP/s, x %d threads = %.1f GFLOP/s "
        "(the %% peak below); %d threads measured together: %.1f GFLOP/s\n",
        fma_probe().what, peak_core * 1e-9, opt.threads, peak * 1e-9, opt.threads, peak_together * 1e-9);
  else
    std::printf("fp32 FMA peak: not measured (no AVX2+FMA on this CPU)\n");
  const Probe bf16_units = bf16_probe();
  const double bf16_core = probe_rate_one_thread(bf16_units, 0.3);
  // The bfloat16 units run the products only where the kernels for them are active.
  const bool bf16_kernels = bf16 && bf16_units.run && bf16_units_run_products(bf16_units);
  const double bf16_peak = bf16_kernels ? bf16_core * opt.threads : 0;
  if (bf16_units.run)
    std::printf("bf16 peak (%s probe): 1 core %.1f GFLOP/s%s\n", bf16_units.what, bf16_core * 1e-9,
                !bf16 ? ""
                : bf16_kernels
                    ? ", x threads = the \"% bf16\" column"
                    : " (the bfloat16 products run on the float32 FMAs: this instruction set has no kernels for them)");
  else
    std::printf("bf16 peak: no bfloat16 dot-product units on this CPU (no AVX512_BF16)\n");
  std::printf(
      "GFLOP counts: forward = 2*T*B*3H*(I+H), backward = 2x, training step = 3x; "
      "median of %s after 2 warm-up runs\n\n",
      opt.iters > 0 ? (std::to_string(opt.iters) + " runs").c_str() : "5-50 runs (~0.5 s)");

  std::mt19937 rng(2024);
  std::printf("check vs naive GRU (%zu steps; max |error| / max(1, max |reference|), tolerance %.0e)\n", kCheckSteps,
              kTolerance);
  for (const BenchConfig& c : kConfigs) {
    if (!opt.config.empty() && opt.config != c.name) continue;
    Mismatch m;
    const bool ok = check_config(c, rng, m);
    std::printf("  %-7s B=%-3zu T=%-4zu I=%-4zu H=%-4zu worst %.2e (%s)  %s\n", c.name, c.B, c.T, c.I, c.H, m.worst,
                m.where.c_str(), ok ? "ok" : "MISMATCH");
    if (!ok) return 1;
  }

  // Another runtime's idle worker right after its call: a thread of this process that spins
  // on one core, never sleeping, through every timing below.
  std::atomic<bool> spinning{opt.foreign_spin};
  std::thread spinner;
  if (opt.foreign_spin) {
    std::printf("a foreign thread spins through every timing below (--foreign-spin)\n");
    spinner = std::thread([&spinning] {
      while (spinning.load(std::memory_order_relaxed)) {
      }
    });
  }
  struct StopSpinner {
    std::atomic<bool>& spinning;
    std::thread& spinner;
    ~StopSpinner() {
      spinning.store(false);
      if (spinner.joinable()) spinner.join();
    }
  } stop_spinner{spinning, spinner};

  std::printf("\n%-7s %-38s %10s %9s %7s%s\n", "config", "what", "median ms", "GFLOP/s", "% peak",
              bf16_peak > 0 ? "   % bf16" : "");
  for (const BenchConfig& c : kConfigs) {
    if (!opt.config.empty() && opt.config != c.name) continue;
    std::vector<Row> rows = time_gru(c, opt, rng);
    if (!time_gemms(c, opt, rng, rows)) return 1;
    for (const Row& row : rows) print_row(c.name, row, peak, bf16_peak);
    std::printf("\n");
  }
  return 0;
}
