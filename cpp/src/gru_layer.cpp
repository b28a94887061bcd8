// The recurrence of one GRU direction (oneDNN-style): the input projection is one GEMM over
// many steps (a chunk that stays in cache); each step is one product with the packed recurrent
// weights plus the fused gate kernel; backward's weight and input gradients are
// whole-sequence GEMMs after the reverse sweep.
//
// Gate rows are reordered into blocks of kGateBlock hidden units, [block][r|z|n][unit], so a
// part (a fixed range of blocks) holds all three gates of its units: it computes its columns
// of h W_hh^T and then the new state of exactly those units. Steps are phases of run_phases
// (threads.h): a thread keeps the same part step after step while it keeps up. With rows
// enough, each thread instead sweeps its own slice of the batch alone (batch_slices). Parts
// and slices only decide who computes an element, never how, so results do not depend on the
// thread count or on which thread runs a part.
#include "gru_layer.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "fastgru/buffer.h"
#include "fastgru/cancel.h"
#include "fastgru/gemm.h"
#include "fastgru/threads.h"
#include "isa.h"
#include "scratch.h"

namespace fastgru {
namespace detail {
namespace {

constexpr size_t U = kGateBlock;
// Bytes of input projection computed ahead of the recurrence at a time (a few steps' worth,
// well inside the last-level cache).
constexpr size_t kProjectionChunkBytes = 2 << 20;

struct BlockedGates {
  size_t H, blocks;
  explicit BlockedGates(size_t hidden) : H(hidden), blocks((hidden + U - 1) / U) {}
  size_t cols() const { return 3 * U * blocks; }  // 3Hp
  size_t padded() const { return U * blocks; }     // Hp
  size_t row(size_t gate, size_t unit) const { return (unit / U) * 3 * U + gate * U + unit % U; }
  size_t units(size_t block) const { return std::min(U, H - block * U); }
  // For each blocked row (of 3Hp), the torch row (of 3H) it holds, for gates [gate0, gate1);
  // kZeroRow for padding units and other gates. PackedMatrix packs the weights through it.
  std::vector<size_t> source_rows(size_t gate0 = 0, size_t gate1 = 3) const {
    std::vector<size_t> rows(cols(), kZeroRow);
    for (size_t g = gate0; g < gate1; ++g)
      for (size_t j = 0; j < H; ++j) rows[row(g, j)] = g * H + j;
    return rows;
  }
};

// dst (3Hp) = the bias src (3H) in blocked order, zero at padding; all zeros without bias.
template <class T>
void block_bias(const BlockedGates& bg, const T* src, T* dst) {
  std::fill(dst, dst + bg.cols(), T(0));
  if (!src) return;
  for (size_t g = 0; g < 3; ++g)
    for (size_t j = 0; j < bg.H; ++j) dst[bg.row(g, j)] = src[g * bg.H + j];
}

// dst (3H, cols) += the rows of src (3Hp, cols) for gates [gate0, gate1).
template <class T>
void unblock_rows_add(const BlockedGates& bg, const T* src, size_t cols, T* dst, size_t gate0 = 0,
                      size_t gate1 = 3) {
  for (size_t g = gate0; g < gate1; ++g)
    for (size_t j = 0; j < bg.H; ++j) {
      const T* s = src + bg.row(g, j) * cols;
      T* d = dst + (g * bg.H + j) * cols;
      for (size_t c = 0; c < cols; ++c) d[c] += s[c];
    }
}

// The calling thread's packed weights kept from call to call, by slot.
constexpr size_t kKeptSlots = 3;
template <class T>
PackedMatrix<T>* kept_packed_slots() {
  thread_local PackedMatrix<T> kept[kKeptSlots];
  return kept;
}
template <class T>
PackedMatrix<T>& kept_packed(size_t slot) {
  return kept_packed_slots<T>()[slot];
}

// Rows of the sequence taken at a time by the products after the backward sweep: a chunk of
// dgx stays in cache through all of them, and in the weight-gradient products dW = dG^T X the
// packed X still fits the cache for all its columns (with all T*B rows at once the transposed
// dG got packed once per block of columns: 4-5% slower at B = 64). 512 rows: 1.5% faster than
// 1024 and 2% faster than 2048 at B = 64, H = 256.
constexpr size_t kWeightGradChunkRows = 512;
// Rows ahead for which the bias pass asks for r (from the gate cache, in memory): 1.5% of a
// medium forward + backward at 1 thread; 2 and 8 rows gained less.
constexpr size_t kPrefetchGateRows = 4;

// Parts of a recurrence phase (one per thread): at most one per block of units, and only as
// many as the per-step product (B x H x 3H multiply-adds) keeps busy between phases.
inline size_t recurrence_parts(const BlockedGates& bg, size_t batch) {
  size_t by_work = static_cast<size_t>(threads_for(batch * bg.H * 3 * bg.H, 16384));
  return by_work < bg.blocks ? by_work : bg.blocks;
}

// Rows of the batch never interact, so when there are enough of them every thread runs the
// whole sweep for its own slice of the batch: no exchange at all between steps. Split by
// units instead, each thread reads at every step the state the others just wrote (a cache
// line moved between cores per 16 values, and a meeting per step): fine on one core
// complex, 1.5x slower when the two cores sit farther apart (round trips of 300-500 ns
// instead of 60 on this kind of VM, which switches between both) or when another runtime's
// threads hold a core. A slice reads all of W_hh per step for its rows, so it needs rows
// enough to pay for that read: 8 while the packed W_hh fits a core's L2 (1 MiB), 16 beyond.
// Every thread gets a slice or none does (then the units are split).
template <class T>
size_t batch_slices(const BlockedGates& bg, size_t batch) {
  const size_t threads = static_cast<size_t>(get_num_threads());
  const size_t min_rows = bg.cols() * bg.H * sizeof(T) <= (size_t(1) << 20) ? 8 : 16;
  return threads > 1 && batch / min_rows >= threads ? threads : 1;
}

// Runs sweep(b0, nb, parts) over the batch: one slice per thread when batch_slices allows,
// each sweeping alone (parts = 1); else the whole batch with the units split into parts.
template <class T, class Sweep>
void sweep_batch(const BlockedGates& bg, size_t batch, const Sweep& sweep) {
  const size_t slices = batch_slices<T>(bg, batch);
  if (slices == 1) return sweep(size_t(0), batch, recurrence_parts(bg, batch));
  parallel_run(
      [&](const Team& team) {
        const Range r = static_range(batch, team.tid, team.size);
        if (r.begin < r.end) sweep(r.begin, r.end - r.begin, size_t(1));
      },
      static_cast<int>(slices));
}

inline bool active(const DirectionShape& s, size_t t, size_t b) {
  return static_cast<int64_t>(t) < s.lengths[b];
}

// Between time steps: once a cancel request is seen, every later part returns at once, and
// the call throws Cancelled after the phases (throwing inside a parallel region cannot).
inline bool stopping(std::atomic<bool>& stopped) {
  if (stopped.load(std::memory_order_relaxed)) return true;
  if (!cancel_requested()) return false;
  stopped.store(true, std::memory_order_relaxed);
  return true;
}

}  // namespace

template <class T>
void gru_direction_forward(const DirectionShape& s, const DirectionParams<T>& p, const T* x,
                           const T* h0, T* y, size_t ldy, T* h_n, T* states, T* gates) {
  const size_t steps = s.steps, B = s.batch, H = s.hidden;
  const BlockedGates bg(H);
  const size_t N = bg.cols();
  const CellKernels<T>& cell = kernels<T>().cell;

  ScratchArray<T> b_ih(N), b_hh(N);
  block_bias(bg, p.b_ih, b_ih.data());
  block_bias(bg, p.b_hh, b_hh.data());

  // Both weights packed straight from torch's layout into blocked gate order.
  const std::vector<size_t> blocked = bg.source_rows();
  // Kept between calls, per calling thread (packing reuses the storage): megabytes of fresh
  // memory per call would be page-faulted in every time. References, as the pool's threads
  // must use these, not thread_locals of their own.
  PackedMatrix<T>& w_ih_t = kept_packed<T>(0);
  PackedMatrix<T>& w_hh_t = kept_packed<T>(1);
  w_ih_t.pack(Trans::yes, s.input, N, p.w_ih, s.input, blocked.data(), s.compute);
  w_hh_t.pack(Trans::yes, H, N, p.w_hh, H, blocked.data(), s.compute);
  // The input projection gx = x W_ih^T runs a chunk of steps at a time, just before them, so
  // the steps find it in cache: the whole sequence's (39 MB at B = 64, H = 512) went out to
  // memory and came back. A batch slice projects its own rows of each chunk (sweep, below).
  const size_t step_bytes = B * N * sizeof(T);
  const size_t chunk_steps = std::max<size_t>(1, std::min(steps, kProjectionChunkBytes / step_bytes));
  if (states) std::copy(h0, h0 + B * H, states + (s.reverse ? steps - 1 : 0) * B * H);

  // The sweep of batch rows [b0, b0 + nb) with the units split into parts. One phase per
  // step (two for reset-before: W_hn (r * h) needs r of every unit); a part is a fixed range
  // of unit blocks: its columns of the product, then their gate math.
  const size_t phases_per_step = s.reset_after ? 1 : 2;
  std::atomic<bool> stopped{false};
  auto sweep = [&](size_t b0, size_t nb, size_t parts) {
    // The sweep's temporaries hold its rows only (row j is batch row b0 + j) and come from the
    // arena of the thread that runs it. Slices of one shared array, written step after step
    // by different threads, cost round trips between the cores at every step even with no
    // cache line in common (presumably the hardware prefetchers reaching across): small
    // inference at T = 500 and 2 threads took 5.1 instead of 3.8 ms when this VM's two vCPUs
    // sat far apart.
    ScratchArray<T> gx(chunk_steps * nb * N), gh(nb * N);
    std::fill(gh.begin(), gh.end(), T(0));
    ScratchArray<T> ping(states ? 0 : 2 * nb * H);
    ScratchArray<T> rz(s.reset_after ? 0 : nb * bg.blocks * 2 * U), rh(s.reset_after ? 0 : nb * H);
    std::fill(rh.begin(), rh.end(), T(0));
    // The slice's rows of the state before step i (i = number of steps done); the state after
    // the last step goes to h_n.
    auto state_before = [&](size_t i) -> T* {
      if (i == 0) return const_cast<T*>(h0) + b0 * H;
      if (i == steps) return h_n + b0 * H;
      const size_t t = s.reverse ? steps - 1 - i : i;  // the step about to run
      if (states) return states + (t * B + b0) * H;
      return ping.data() + (i % 2) * nb * H;
    };
    size_t gx_first = 0;  // the time step of gx's first chunk row
    auto step_part = [&](size_t phase, size_t part) {
      if (stopping(stopped)) return;
      const size_t i = phase / phases_per_step;  // steps done before this one
      const bool first_half = phase % phases_per_step == 0;
      const Range blocks = static_range(bg.blocks, static_cast<int>(part), static_cast<int>(parts));
      const size_t t = s.reverse ? steps - 1 - i : i;
      const T* h = state_before(i);
      T* h_out = state_before(i + 1);
      const T* gx_t = gx.data() + (t - gx_first) * nb * N;
      T* gates_t = gates ? gates + t * B * bg.blocks * kCacheGates * U : nullptr;
      // Row j's gate columns of block k in gx, gh and the cache; its units of block k in the
      // states, y, rz and rh; block k's biases.
      auto gx_at = [&](size_t j, size_t k) { return gx_t + j * N + k * 3 * U; };
      auto gh_at = [&](size_t j, size_t k) { return gh.data() + j * N + k * 3 * U; };
      auto cache_of = [&](size_t j, size_t k) {
        return gates_t ? gates_t + ((b0 + j) * bg.blocks + k) * kCacheGates * U : nullptr;
      };
      auto unit = [&](size_t j, size_t k) { return j * H + k * U; };
      auto y_at = [&](size_t j, size_t k) { return y + (t * B + b0 + j) * ldy + k * U; };
      auto rz_at = [&](size_t j, size_t k) { return rz.data() + (j * bg.blocks + k) * 2 * U; };
      auto b_ih_at = [&](size_t k) { return b_ih.data() + k * 3 * U; };
      auto b_hh_at = [&](size_t k) { return b_hh.data() + k * 3 * U; };
      auto on = [&](size_t j) { return active(s, t, b0 + j); };
      // The slice's columns [c0, c1) of in W_hh^T (in: h, or r * h for reset-before's n).
      auto recurrent = [&](const T* in, size_t c0, size_t c1) {
        gemm_packed<T>(nb, c0, c1, in, H, w_hh_t, T(0), gh.data(), N);
      };
      if (s.reset_after) {
        recurrent(h, blocks.begin * 3 * U, blocks.end * 3 * U);
        for (size_t j = 0; j < nb; ++j)
          for (size_t k = blocks.begin; k < blocks.end; ++k)
            if (on(j))
              cell.forward_after(bg.units(k), gx_at(j, k), gh_at(j, k), b_ih_at(k), b_hh_at(k),
                                 h + unit(j, k), h_out + unit(j, k), y_at(j, k), cache_of(j, k));
      } else if (first_half) {
        for (size_t k = blocks.begin; k < blocks.end; ++k) recurrent(h, k * 3 * U, k * 3 * U + 2 * U);
        for (size_t j = 0; j < nb; ++j)
          for (size_t k = blocks.begin; k < blocks.end; ++k)
            if (on(j))
              cell.forward_before_rz(bg.units(k), gx_at(j, k), gh_at(j, k), b_ih_at(k), b_hh_at(k),
                                     h + unit(j, k), rz_at(j, k), rh.data() + unit(j, k));
        return;
      } else {
        for (size_t k = blocks.begin; k < blocks.end; ++k) {
          recurrent(rh.data(), k * 3 * U + 2 * U, k * 3 * U + 2 * U + bg.units(k));
          for (size_t j = 0; j < nb; ++j)
            if (on(j))
              cell.forward_before_n(bg.units(k), gx_at(j, k), gh_at(j, k), b_ih_at(k), b_hh_at(k),
                                    rz_at(j, k), rh.data() + unit(j, k), h + unit(j, k),
                                    h_out + unit(j, k), y_at(j, k), cache_of(j, k));
        }
      }
      // Valid steps wrote the state to y as well; padding steps keep the state and output zeros.
      const size_t u0 = std::min(blocks.begin * U, H), u1 = std::min(blocks.end * U, H);
      for (size_t j = 0; j < nb; ++j) {
        if (on(j)) continue;
        std::copy(h + j * H + u0, h + j * H + u1, h_out + j * H + u0);
        std::fill(y_at(j, 0) + u0, y_at(j, 0) + u1, T(0));
      }
    };
    for (size_t i0 = 0; i0 < steps && !stopped; i0 += chunk_steps) {
      const size_t i1 = std::min(steps, i0 + chunk_steps);  // steps i0..i1-1: times gx_first..
      gx_first = s.reverse ? steps - i1 : i0;
      if (nb == B) {
        gemm_packed_rows<T>((i1 - i0) * B, x + gx_first * B * s.input, s.input, w_ih_t, T(0), gx.data(), N);
      } else {
        for (size_t t = gx_first; t < gx_first + (i1 - i0); ++t)
          gemm_packed<T>(nb, 0, N, x + (t * B + b0) * s.input, s.input, w_ih_t, T(0),
                         gx.data() + (t - gx_first) * nb * N, N);
      }
      run_phases((i1 - i0) * phases_per_step, parts, [&](size_t phase, size_t part) {
        step_part(i0 * phases_per_step + phase, part);
      });
    }
  };
  sweep_batch<T>(bg, B, sweep);
  if (stopped) throw Cancelled();
  if (steps == 0) std::copy(h0, h0 + B * H, h_n);
}

template <class T>
void gru_direction_backward(const DirectionShape& s, const DirectionParams<T>& p, const T* x,
                            const T* states, const T* gates, const T* dy, size_t ldy,
                            const T* dh_n, T* dx, T dx_beta, T* dh0, const DirectionGrads<T>& g) {
  const size_t steps = s.steps, B = s.batch, H = s.hidden, I = s.input;
  const BlockedGates bg(H);
  const size_t N = bg.cols();
  const CellKernels<T>& cell = kernels<T>().cell;

  // dh_prev = dgh W_hh: reset-after uses all gates; reset-before only r and z here, n goes
  // through W_hn (r * h) and is handled by its own product.
  const std::vector<size_t> blocked = bg.source_rows();
  PackedMatrix<T>& w_hh_back = kept_packed<T>(0);  // kept between calls, as in forward
  PackedMatrix<T>& w_hn = kept_packed<T>(1);
  PackedMatrix<T>& w_ih = kept_packed<T>(2);
  if (s.reset_after) {
    w_hh_back.pack(Trans::no, N, H, p.w_hh, H, blocked.data(), s.compute);
  } else {
    w_hh_back.pack(Trans::no, N, H, p.w_hh, H, bg.source_rows(0, 2).data(), s.compute);
    w_hn.pack(Trans::no, H, H, p.w_hh + 2 * H * H, H, nullptr, s.compute);
  }

  // Reset-after: dgh's r and z parts equal dgx's, and its n part is dgx's times r, so dgh is
  // not kept for the sequence: full rows live one step in dgh_step (the step being computed
  // and the previous one, whose product with W_hh the next phase adds to dh), and after the
  // products that need dgx, dgx becomes dgh in place for dW_hh.
  ScratchArray<T> dgx(steps * B * N);

  // Phases, for the i-th step processed (time t_i): reset-after: [dh += dgh(t_{i-1}) W_hh;
  // gate gradients of t_i]; reset-before: [dh += dgh_rz(t_{i-1}) W_hrz; z and n parts of
  // t_i], [drh = dn_pre W_hn; r part of t_i]; a last phase adds the first step's product.
  // A part owns a fixed range of unit blocks: its columns of dh and its gate gradients.
  // Batch rows [b0, b0 + nb) at a time, as in forward.
  const size_t phases_per_step = s.reset_after ? 1 : 2;
  auto time_of = [&](size_t i) { return s.reverse ? i : steps - 1 - i; };
  std::atomic<bool> stopped{false};
  auto sweep = [&](size_t b0, size_t nb, size_t parts) {
    // As in forward, the per-step temporaries hold the slice's rows only (row j is batch row
    // b0 + j) and come from the sweeping thread's arena.
    ScratchArray<T> dgh_step(s.reset_after ? 2 * nb * N : 0);
    ScratchArray<T> dh(nb * H), dn_pre(s.reset_after ? 0 : nb * H), drh(s.reset_after ? 0 : nb * H);
    std::fill(dn_pre.begin(), dn_pre.end(), T(0));
    if (dh_n) std::copy(dh_n + b0 * H, dh_n + (b0 + nb) * H, dh.begin());
    else std::fill(dh.begin(), dh.end(), T(0));
    run_phases(steps * phases_per_step + 1, parts, [&](size_t phase, size_t part) {
      if (stopping(stopped)) return;
      const size_t i = phase / phases_per_step;
      const bool first_half = phase % phases_per_step == 0;
      const Range blocks = static_range(bg.blocks, static_cast<int>(part), static_cast<int>(parts));
      const size_t u0 = std::min(blocks.begin * U, H), u1 = std::min(blocks.end * U, H);
      if (u0 == u1) return;
      if (first_half && i > 0) {
        const size_t t_prev = time_of(i - 1);
        const T* dgh_prev = s.reset_after ? dgh_step.data() + (i - 1) % 2 * nb * N
                                          : dgx.data() + (t_prev * B + b0) * N;
        gemm_packed<T>(nb, u0, u1, dgh_prev, N, w_hh_back, T(1), dh.data(), H);
      }
      if (i == steps) return;
      const size_t t = time_of(i);
      // The slice's rows at time t; row j's units of block k, its gate columns of block k.
      const T* h = states + (t * B + b0) * H;
      T* dgx_t = dgx.data() + (t * B + b0) * N;
      T* dgh_t = s.reset_after ? dgh_step.data() + i % 2 * nb * N : dgx_t;
      auto unit = [&](size_t j, size_t k) { return j * H + k * U; };
      auto gate_cols = [&](size_t j, size_t k) { return j * N + k * 3 * U; };
      auto cache_of = [&](size_t j, size_t k) {
        return gates + ((t * B + b0 + j) * bg.blocks + k) * kCacheGates * U;
      };
      if (!first_half) {  // reset-before, second half
        gemm_packed<T>(nb, u0, u1, dn_pre.data(), H, w_hn, T(0), drh.data(), H);
        for (size_t j = 0; j < nb; ++j) {
          if (!active(s, t, b0 + j)) continue;
          for (size_t k = blocks.begin; k < blocks.end; ++k)
            cell.backward_before_r(bg.units(k), drh.data() + unit(j, k), cache_of(j, k), h + unit(j, k),
                                   dgx_t + gate_cols(j, k), dh.data() + unit(j, k));
        }
        return;
      }
      T dh_total[U];
      for (size_t j = 0; j < nb; ++j) {
        const bool on = active(s, t, b0 + j);
        for (size_t k = blocks.begin; k < blocks.end; ++k) {
          const size_t n = bg.units(k);
          T* dgx_bk = dgx_t + gate_cols(j, k);
          T* dgh_bk = dgh_t + gate_cols(j, k);
          T* dn_bk = s.reset_after ? nullptr : dn_pre.data() + unit(j, k);
          if (!on) {  // padding: no gate gradients; dh passes through unchanged
            std::fill(dgx_bk, dgx_bk + 3 * U, T(0));
            if (s.reset_after) std::fill(dgh_bk, dgh_bk + 3 * U, T(0));
            else std::fill(dn_bk, dn_bk + n, T(0));
            continue;
          }
          const T* dy_bk = dy + (t * B + b0 + j) * ldy + k * U;
          T* dh_bk = dh.data() + unit(j, k);
          for (size_t u = 0; u < n; ++u) dh_total[u] = dh_bk[u] + dy_bk[u];
          if (s.reset_after) {
            if (n < U)  // padding units of the last block enter the whole-sequence products
              for (size_t gate = 0; gate < 3; ++gate) {
                std::fill(dgx_bk + gate * U + n, dgx_bk + (gate + 1) * U, T(0));
                std::fill(dgh_bk + gate * U + n, dgh_bk + (gate + 1) * U, T(0));
              }
            cell.backward_after(n, dh_total, cache_of(j, k), h + unit(j, k), dgx_bk, dgh_bk, dh_bk);
          } else {
            std::fill(dgx_bk, dgx_bk + 3 * U, T(0));
            cell.backward_before_zn(n, dh_total, cache_of(j, k), h + unit(j, k), dgx_bk, dh_bk, dn_bk);
          }
        }
      }
    });
    if (!stopped) std::copy(dh.begin(), dh.end(), dh0 + b0 * H);
  };
  sweep_batch<T>(bg, B, sweep);
  if (stopped) throw Cancelled();

  // Whole-sequence products, a chunk of rows at a time, each chunk of dgx going through all of
  // them while it is in cache (one product after another over the whole of dgx read it from
  // memory each time): dx = dgx W_ih; dW_ih += dgx^T x; the bias sums and, for reset-after,
  // dgx -> dgh in place; dW_hh += dgh^T h (reset-before: its r and z parts; the n part is
  // dW_hn += dgx^T (r * h)).
  const size_t rows = steps * B;
  const bool bias = g.b_ih != nullptr;
  ScratchArray<T> dw_ih(N * I), dw_hh(N * H), db(N), db_n(s.reset_after ? bg.padded() : 0);
  ScratchArray<T> dw_hn(s.reset_after ? 0 : N * H), rh(s.reset_after ? 0 : kWeightGradChunkRows * H);
  std::fill(db.begin(), db.end(), T(0));
  std::fill(db_n.begin(), db_n.end(), T(0));
  w_ih.pack(Trans::no, N, I, p.w_ih, I, blocked.data(), s.compute);
  for (size_t r0 = 0; r0 < rows; r0 += kWeightGradChunkRows) {
    const size_t r1 = std::min(rows, r0 + kWeightGradChunkRows), n = r1 - r0;
    const T beta = r0 == 0 ? T(0) : T(1);
    T* dg = dgx.data() + r0 * N;
    gemm_packed_rows<T>(n, dg, N, w_ih, dx_beta, dx + r0 * I, I);
    gemm<T>(Trans::yes, Trans::no, N, I, n, dg, N, x + r0 * I, I, beta, dw_ih.data(), I, s.compute);
    // The bias gradients (column sums, row by row) and, for reset-after, dgx's n part times
    // r (the cell computes dgh_n as exactly this product), whose sums are b_hh's n part.
    // Threads split the unit blocks, from 2^15 elements on (a medium backward's passes took
    // 2.1 ms on 2 threads, 3.6 ms on one). Padding steps have zero rows (r was never written
    // there).
    if (bias || s.reset_after)
      parallel_run(
          [&](const Team& team) {
            const Range blk = static_range(bg.blocks, team.tid, team.size);
            for (size_t r = r0; r < r1; ++r) {
              if (!active(s, r / B, r % B)) continue;
              for (size_t k = blk.begin; k < blk.end; ++k) {
                T* row = dgx.data() + r * N + k * 3 * U;
                if (bias)
                  for (size_t c = 0; c < 3 * U; ++c) db[k * 3 * U + c] += row[c];
                if (!s.reset_after) continue;
                const T* gate_r = gates + (r * bg.blocks + k) * kCacheGates * U;
                // r comes from memory in short runs (one per block) that the hardware
                // prefetcher does not follow.
                if (r + kPrefetchGateRows < rows) {
                  const char* ahead = reinterpret_cast<const char*>(
                      gate_r + kPrefetchGateRows * bg.blocks * kCacheGates * U);
                  for (size_t line = 0; line < U * sizeof(T); line += 64) __builtin_prefetch(ahead + line);
                }
                for (size_t u = 0; u < bg.units(k); ++u) {
                  row[2 * U + u] *= gate_r[u];
                  db_n[k * U + u] += row[2 * U + u];
                }
              }
            }
          },
          threads_for(n * N, 1 << 15));
    gemm<T>(Trans::yes, Trans::no, N, H, n, dg, N, states + r0 * H, H, beta, dw_hh.data(), H, s.compute);
    if (!s.reset_after) {  // W_hn's input is r * h, kept in the gate cache
      for (size_t r = r0; r < r1; ++r) {
        T* rh_row = rh.data() + (r - r0) * H;
        if (!active(s, r / B, r % B)) {  // padding steps: never computed, zero gradient rows
          std::fill(rh_row, rh_row + H, T(0));
          continue;
        }
        for (size_t k = 0; k < bg.blocks; ++k) {
          const T* src = gates + (r * bg.blocks + k) * kCacheGates * U + 3 * U;
          std::copy(src, src + bg.units(k), rh_row + k * U);
        }
      }
      gemm<T>(Trans::yes, Trans::no, N, H, n, dg, N, rh.data(), H, beta, dw_hn.data(), H, s.compute);
    }
  }
  unblock_rows_add(bg, dw_ih.data(), I, g.w_ih);
  if (bias) unblock_rows_add(bg, db.data(), 1, g.b_ih);
  unblock_rows_add(bg, dw_hh.data(), H, g.w_hh, 0, s.reset_after ? 3 : 2);
  if (!s.reset_after) unblock_rows_add(bg, dw_hn.data(), H, g.w_hh, 2, 3);
  if (g.b_hh) {
    if (s.reset_after) {  // r and z parts equal b_ih's (still in db); the n part is db_n
      unblock_rows_add(bg, db.data(), 1, g.b_hh, 0, 2);
      for (size_t j = 0; j < H; ++j) g.b_hh[2 * H + j] += db_n[j];
    } else {
      unblock_rows_add(bg, db.data(), 1, g.b_hh);
    }
  }
}

}  // namespace detail

void release_scratch() {
  // Every thread of the pool has an arena too (the temporaries of the batch slices it sweeps,
  // GEMM packing), idle between calls. The barrier makes each member run on its own thread
  // (the caller takes over no share that meets at a barrier).
  parallel_run([](const Team& team) {
    detail::scratch_release();
    team.barrier();
  });
  for (size_t slot = 0; slot < detail::kKeptSlots; ++slot) {
    detail::kept_packed_slots<float>()[slot] = PackedMatrix<float>();
    detail::kept_packed_slots<double>()[slot] = PackedMatrix<double>();
  }
}

namespace detail {

#define FASTGRU_INSTANTIATE(T)                                                                   \
  template void gru_direction_forward<T>(const DirectionShape&, const DirectionParams<T>&,       \
                                         const T*, const T*, T*, size_t, T*, T*, T*);            \
  template void gru_direction_backward<T>(const DirectionShape&, const DirectionParams<T>&,      \
                                          const T*, const T*, const T*, const T*, size_t,        \
                                          const T*, T*, T, T*, const DirectionGrads<T>&);
FASTGRU_INSTANTIATE(float)
FASTGRU_INSTANTIATE(double)

}  // namespace detail
}  // namespace fastgru
