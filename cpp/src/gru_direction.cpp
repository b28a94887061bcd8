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
#include "gru_direction.h"

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
  size_t padded() const { return U * blocks; }    // Hp
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

// dst (3H, cols) += the rows of src (3Hp, cols) for gates [gate0, gate1); = when overwrite.
template <class T>
void unblock_rows_add(const BlockedGates& bg, const T* src, size_t cols, T* dst, bool overwrite, size_t gate0 = 0,
                      size_t gate1 = 3) {
  for (size_t g = gate0; g < gate1; ++g)
    for (size_t j = 0; j < bg.H; ++j) {
      const T* s = src + bg.row(g, j) * cols;
      T* d = dst + (g * bg.H + j) * cols;
      if (overwrite)
        std::copy(s, s + cols, d);
      else
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

inline bool active(const DirectionShape& s, size_t t, size_t b) { return static_cast<int64_t>(t) < s.lengths[b]; }

// Between time steps: once a cancel request is seen, every later part returns at once, and
// the call throws Cancelled after the phases (throwing inside a parallel region cannot).
inline bool stopping(std::atomic<bool>& stopped) {
  if (stopped.load(std::memory_order_relaxed)) return true;
  if (!cancel_requested()) return false;
  stopped.store(true, std::memory_order_relaxed);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------

// What every batch slice of one forward shares.
template <class T>
struct ForwardPass {
  const DirectionShape& s;
  const BlockedGates& bg;
  const CellKernels<T>& cell;
  const T* b_ih;                  // (3Hp) blocked, zeros without bias
  const T* b_hh;                  // (3Hp)
  const PackedMatrix<T>& w_ih_t;  // (in, 3Hp): W_ih^T in blocked gate order
  const PackedMatrix<T>& w_hh_t;  // (H, 3Hp)
  size_t chunk_steps;             // steps whose input projection is computed at a time
  const T* x;                     // (T, B, in)
  const T* h0;                    // (B, H)
  T* y;                           // rows of ldy, H columns used
  size_t ldy;
  T* h_n;     // (B, H)
  T* states;  // (T, B, H) or nullptr (inference)
  T* gates;   // gate_cache_size or nullptr
};

// The sweep of batch rows [b0, b0 + nb) over all steps, with the units split into parts. One
// phase per step (two for reset-before: W_hn (r * h) needs r of every unit); a part is a fixed
// range of unit blocks: its columns of the recurrent product, then their gate math.
//
// The sweep's temporaries hold its rows only (row j is batch row b0 + j) and come from the
// arena of the thread that runs it. Slices of one shared array, written step after step by
// different threads, cost round trips between the cores at every step even with no cache line
// in common (presumably the hardware prefetchers reaching across): small inference at T = 500
// and 2 threads took 5.1 instead of 3.8 ms when this VM's two vCPUs sat far apart.
template <class T>
class ForwardSweep {
 public:
  ForwardSweep(const ForwardPass<T>& pass, size_t b0, size_t nb)
      : f_(pass),
        s_(pass.s),
        bg_(pass.bg),
        b0_(b0),
        nb_(nb),
        N_(pass.bg.cols()),
        gx_(pass.chunk_steps * nb * N_),
        gh_(nb * N_),
        ping_(pass.states ? 0 : 2 * nb * s_.hidden),
        rz_(s_.reset_after ? 0 : nb * bg_.blocks * 2 * U),
        rh_(s_.reset_after ? 0 : nb * s_.hidden) {
    std::fill(gh_.begin(), gh_.end(), T(0));
    std::fill(rh_.begin(), rh_.end(), T(0));
  }

  // A chunk of steps at a time: its input projection, then its steps as phases of `parts`.
  void run(size_t parts, std::atomic<bool>& stopped) {
    const size_t per_step = s_.reset_after ? 1 : 2;
    for (size_t i0 = 0; i0 < s_.steps && !stopped; i0 += f_.chunk_steps) {
      const size_t i1 = std::min(s_.steps, i0 + f_.chunk_steps);
      project(i0, i1);
      run_phases((i1 - i0) * per_step, parts, [&](size_t phase, size_t part) {
        if (stopping(stopped)) return;
        const Step st = step(i0 + phase / per_step);
        const Range blocks = static_range(bg_.blocks, static_cast<int>(part), static_cast<int>(parts));
        if (s_.reset_after) {
          step_reset_after(st, blocks);
        } else if (phase % per_step == 0) {
          step_reset_before_rz(st, blocks);
          return;  // the second half writes the state
        } else {
          step_reset_before_n(st, blocks);
        }
        hold_padding(st, blocks);
      });
    }
  }

 private:
  // The i-th step processed (i = steps done before it): time t, the slice's states before
  // and after it, its rows of the input projection and of the gate cache.
  struct Step {
    size_t t;
    const T* h;
    T* h_out;
    const T* gx;
    T* gates;
  };

  // The slice's rows of the state before step i; the state after the last step goes to h_n.
  T* state_before(size_t i) {
    const size_t H = s_.hidden;
    if (i == 0) return const_cast<T*>(f_.h0) + b0_ * H;
    if (i == s_.steps) return f_.h_n + b0_ * H;
    const size_t t = s_.reverse ? s_.steps - 1 - i : i;  // the step about to run
    if (f_.states) return f_.states + (t * s_.batch + b0_) * H;
    return ping_.data() + (i % 2) * nb_ * H;
  }

  Step step(size_t i) {
    const size_t t = s_.reverse ? s_.steps - 1 - i : i;
    T* gates = f_.gates ? f_.gates + t * s_.batch * bg_.blocks * kCacheGates * U : nullptr;
    return {t, state_before(i), state_before(i + 1), gx_.data() + (t - gx_first_) * nb_ * N_, gates};
  }

  // gx = x W_ih^T for steps i0..i1-1 (times gx_first_ on): the whole batch's rows in one
  // product, or the slice's rows step by step.
  void project(size_t i0, size_t i1) {
    const size_t B = s_.batch, I = s_.input, n = i1 - i0;
    gx_first_ = s_.reverse ? s_.steps - i1 : i0;
    if (nb_ == B) {
      gemm_packed_rows<T>(n * B, f_.x + gx_first_ * B * I, I, f_.w_ih_t, T(0), gx_.data(), N_);
      return;
    }
    for (size_t t = gx_first_; t < gx_first_ + n; ++t)
      gemm_packed<T>(nb_, 0, N_, f_.x + (t * B + b0_) * I, I, f_.w_ih_t, T(0), gx_.data() + (t - gx_first_) * nb_ * N_,
                     N_);
  }

  // The slice's columns [c0, c1) of gh = in W_hh^T (in: h, or r * h for reset-before's n).
  void recurrent(const T* in, size_t c0, size_t c1) {
    gemm_packed<T>(nb_, c0, c1, in, s_.hidden, f_.w_hh_t, T(0), gh_.data(), N_);
  }

  // Row j's gate columns of block k in gx, gh and the cache; its units of block k in the
  // states, y, rz and rh; block k's biases.
  const T* gx_at(const Step& st, size_t j, size_t k) const { return st.gx + j * N_ + k * 3 * U; }
  const T* gh_at(size_t j, size_t k) const { return gh_.data() + j * N_ + k * 3 * U; }
  T* cache_of(const Step& st, size_t j, size_t k) const {
    return st.gates ? st.gates + ((b0_ + j) * bg_.blocks + k) * kCacheGates * U : nullptr;
  }
  size_t unit(size_t j, size_t k) const { return j * s_.hidden + k * U; }
  T* y_at(const Step& st, size_t j, size_t k) const { return f_.y + (st.t * s_.batch + b0_ + j) * f_.ldy + k * U; }
  T* rz_at(size_t j, size_t k) const { return rz_.data() + (j * bg_.blocks + k) * 2 * U; }
  const T* b_ih_at(size_t k) const { return f_.b_ih + k * 3 * U; }
  const T* b_hh_at(size_t k) const { return f_.b_hh + k * 3 * U; }
  bool on(const Step& st, size_t j) const { return active(s_, st.t, b0_ + j); }

  void step_reset_after(const Step& st, Range blocks) {
    recurrent(st.h, blocks.begin * 3 * U, blocks.end * 3 * U);
    for (size_t j = 0; j < nb_; ++j)
      for (size_t k = blocks.begin; k < blocks.end; ++k)
        if (on(st, j))
          f_.cell.forward_after(bg_.units(k), gx_at(st, j, k), gh_at(j, k), b_ih_at(k), b_hh_at(k), st.h + unit(j, k),
                                st.h_out + unit(j, k), y_at(st, j, k), cache_of(st, j, k));
  }

  // Reset-before, first half: r and z (and r * h, the input of W_hn) of the part's units.
  void step_reset_before_rz(const Step& st, Range blocks) {
    for (size_t k = blocks.begin; k < blocks.end; ++k) recurrent(st.h, k * 3 * U, k * 3 * U + 2 * U);
    for (size_t j = 0; j < nb_; ++j)
      for (size_t k = blocks.begin; k < blocks.end; ++k)
        if (on(st, j))
          f_.cell.forward_before_rz(bg_.units(k), gx_at(st, j, k), gh_at(j, k), b_ih_at(k), b_hh_at(k),
                                    st.h + unit(j, k), rz_at(j, k), rh_.data() + unit(j, k));
  }

  // Reset-before, second half: W_hn (r * h) of every unit's r * h, then n and the new state.
  void step_reset_before_n(const Step& st, Range blocks) {
    for (size_t k = blocks.begin; k < blocks.end; ++k) {
      recurrent(rh_.data(), k * 3 * U + 2 * U, k * 3 * U + 2 * U + bg_.units(k));
      for (size_t j = 0; j < nb_; ++j)
        if (on(st, j))
          f_.cell.forward_before_n(bg_.units(k), gx_at(st, j, k), gh_at(j, k), b_ih_at(k), b_hh_at(k), rz_at(j, k),
                                   rh_.data() + unit(j, k), st.h + unit(j, k), st.h_out + unit(j, k), y_at(st, j, k),
                                   cache_of(st, j, k));
    }
  }

  // Valid steps wrote the state to y as well; padding steps keep the state and output zeros.
  void hold_padding(const Step& st, Range blocks) {
    const size_t H = s_.hidden;
    const size_t u0 = std::min(blocks.begin * U, H), u1 = std::min(blocks.end * U, H);
    for (size_t j = 0; j < nb_; ++j) {
      if (on(st, j)) continue;
      std::copy(st.h + j * H + u0, st.h + j * H + u1, st.h_out + j * H + u0);
      std::fill(y_at(st, j, 0) + u0, y_at(st, j, 0) + u1, T(0));
    }
  }

  const ForwardPass<T>& f_;
  const DirectionShape& s_;
  const BlockedGates& bg_;
  const size_t b0_, nb_, N_;
  size_t gx_first_ = 0;  // the time step of gx's first chunk row
  // Declared in allocation order: the arena frees in reverse.
  ScratchArray<T> gx_;    // (chunk_steps, nb, 3Hp) input projection
  ScratchArray<T> gh_;    // (nb, 3Hp) recurrent product
  ScratchArray<T> ping_;  // (2, nb, H) states in inference
  ScratchArray<T> rz_;    // reset-before: (nb, blocks, 2, U) r and z
  ScratchArray<T> rh_;    // reset-before: (nb, H) r * h
};

// ---------------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------------

// What every batch slice of one backward sweep shares.
template <class T>
struct BackwardPass {
  const DirectionShape& s;
  const BlockedGates& bg;
  const CellKernels<T>& cell;
  // dh_prev += dgh W_hh: reset-after all gates; reset-before r and z only (3Hp, H), n goes
  // through W_hn (r * h) and w_hn (H, H).
  const PackedMatrix<T>& w_hh_back;
  const PackedMatrix<T>& w_hn;
  const T* states;  // (T, B, H)
  const T* gates;   // the forward's gate cache
  const T* dy;      // rows of ldy, H columns used
  size_t ldy;
  const T* dh_n;  // (B, H) or nullptr
  T* dh0;         // (B, H)
  // (T*B, 3Hp): the gate pre-activations' gradients (those of W_ih x + b_ih). Reset-after:
  // dgh's r and z parts equal dgx's and its n part is dgx's times r, so dgh is not kept for
  // the sequence (full rows live one step in the sweep's dgh_step).
  T* dgx;
};

// The reverse sweep of batch rows [b0, b0 + nb) (row j is batch row b0 + j), its per-step
// temporaries from the sweeping thread's arena, as in forward. Phases, for the i-th step
// processed (time t_i): reset-after: [dh += dgh(t_{i-1}) W_hh; gate gradients of t_i];
// reset-before: [dh += dgh_rz(t_{i-1}) W_hrz; z and n parts of t_i], [drh = dn_pre W_hn; r
// part of t_i]; a last phase adds the first step's product. A part owns a fixed range of unit
// blocks: its columns of dh and its gate gradients.
template <class T>
class BackwardSweep {
 public:
  BackwardSweep(const BackwardPass<T>& pass, size_t b0, size_t nb)
      : b_(pass),
        s_(pass.s),
        bg_(pass.bg),
        b0_(b0),
        nb_(nb),
        N_(pass.bg.cols()),
        dgh_step_(s_.reset_after ? 2 * nb * N_ : 0),
        dh_(nb * s_.hidden),
        dn_pre_(s_.reset_after ? 0 : nb * s_.hidden),
        drh_(s_.reset_after ? 0 : nb * s_.hidden) {
    const size_t H = s_.hidden;
    std::fill(dn_pre_.begin(), dn_pre_.end(), T(0));
    if (b_.dh_n)
      std::copy(b_.dh_n + b0 * H, b_.dh_n + (b0 + nb) * H, dh_.begin());
    else
      std::fill(dh_.begin(), dh_.end(), T(0));
  }

  void run(size_t parts, std::atomic<bool>& stopped) {
    const size_t per_step = s_.reset_after ? 1 : 2, H = s_.hidden;
    run_phases(s_.steps * per_step + 1, parts, [&](size_t phase, size_t part) {
      if (stopping(stopped)) return;
      const size_t i = phase / per_step;
      const bool first_half = phase % per_step == 0;
      const Range blocks = static_range(bg_.blocks, static_cast<int>(part), static_cast<int>(parts));
      if (std::min(blocks.begin * U, H) == std::min(blocks.end * U, H)) return;
      if (first_half && i > 0) add_recurrent_product(i, blocks);
      if (i == s_.steps) return;
      if (!first_half)
        gates_reset_before_r(i, blocks);
      else if (s_.reset_after)
        gates_reset_after(i, blocks);
      else
        gates_reset_before_zn(i, blocks);
    });
    if (!stopped) std::copy(dh_.begin(), dh_.end(), b_.dh0 + b0_ * H);
  }

 private:
  size_t time_of(size_t i) const { return s_.reverse ? i : s_.steps - 1 - i; }
  size_t unit(size_t j, size_t k) const { return j * s_.hidden + k * U; }
  size_t gate_cols(size_t j, size_t k) const { return j * N_ + k * 3 * U; }
  const T* cache_of(size_t t, size_t j, size_t k) const {
    return b_.gates + ((t * s_.batch + b0_ + j) * bg_.blocks + k) * kCacheGates * U;
  }
  const T* h_at(size_t t) const { return b_.states + (t * s_.batch + b0_) * s_.hidden; }
  T* dgx_at(size_t t) const { return b_.dgx + (t * s_.batch + b0_) * N_; }
  Range units_of(Range blocks) const {
    return {std::min(blocks.begin * U, s_.hidden), std::min(blocks.end * U, s_.hidden)};
  }

  // dh_total = dh + dy for row j's units of block k at time t: the gradient of the step's output.
  void output_gradient(size_t t, size_t j, size_t k, size_t n, T* dh_total) const {
    const T* dy = b_.dy + (t * s_.batch + b0_ + j) * b_.ldy + k * U;
    const T* dh = dh_.data() + unit(j, k);
    for (size_t u = 0; u < n; ++u) dh_total[u] = dh[u] + dy[u];
  }

  // dh += dgh(t_{i-1}) W_hh for the part's units (reset-before: the r and z parts of dgh).
  void add_recurrent_product(size_t i, Range blocks) {
    const Range u = units_of(blocks);
    const T* dgh_prev = s_.reset_after ? dgh_step_.data() + (i - 1) % 2 * nb_ * N_ : dgx_at(time_of(i - 1));
    gemm_packed<T>(nb_, u.begin, u.end, dgh_prev, N_, b_.w_hh_back, T(1), dh_.data(), s_.hidden);
  }

  void gates_reset_after(size_t i, Range blocks) {
    const size_t t = time_of(i);
    const T* h = h_at(t);
    T* dgx_t = dgx_at(t);
    T* dgh_t = dgh_step_.data() + i % 2 * nb_ * N_;
    T dh_total[U];
    for (size_t j = 0; j < nb_; ++j) {
      const bool on = active(s_, t, b0_ + j);
      for (size_t k = blocks.begin; k < blocks.end; ++k) {
        const size_t n = bg_.units(k);
        T* dgx_bk = dgx_t + gate_cols(j, k);
        T* dgh_bk = dgh_t + gate_cols(j, k);
        if (!on || n < U) {                         // padding steps: no gate gradients (dh passes through unchanged);
          std::fill(dgx_bk, dgx_bk + 3 * U, T(0));  // padding units enter the later products
          std::fill(dgh_bk, dgh_bk + 3 * U, T(0));
          if (!on) continue;
        }
        output_gradient(t, j, k, n, dh_total);
        b_.cell.backward_after(n, dh_total, cache_of(t, j, k), h + unit(j, k), dgx_bk, dgh_bk, dh_.data() + unit(j, k));
      }
    }
  }

  // Reset-before, first half: the z and n parts, dh_prev = dh * z, and dn_pre for W_hn.
  void gates_reset_before_zn(size_t i, Range blocks) {
    const size_t t = time_of(i);
    const T* h = h_at(t);
    T* dgx_t = dgx_at(t);
    T dh_total[U];
    for (size_t j = 0; j < nb_; ++j) {
      const bool on = active(s_, t, b0_ + j);
      for (size_t k = blocks.begin; k < blocks.end; ++k) {
        const size_t n = bg_.units(k);
        T* dgx_bk = dgx_t + gate_cols(j, k);
        T* dn_bk = dn_pre_.data() + unit(j, k);
        std::fill(dgx_bk, dgx_bk + 3 * U, T(0));
        if (!on) {  // padding: no gate gradients; dh passes through unchanged
          std::fill(dn_bk, dn_bk + n, T(0));
          continue;
        }
        output_gradient(t, j, k, n, dh_total);
        b_.cell.backward_before_zn(n, dh_total, cache_of(t, j, k), h + unit(j, k), dgx_bk, dh_.data() + unit(j, k),
                                   dn_bk);
      }
    }
  }

  // Reset-before, second half: drh = dn_pre W_hn (every unit's dn_pre), then the r part.
  void gates_reset_before_r(size_t i, Range blocks) {
    const size_t t = time_of(i);
    const Range u = units_of(blocks);
    const T* h = h_at(t);
    T* dgx_t = dgx_at(t);
    gemm_packed<T>(nb_, u.begin, u.end, dn_pre_.data(), s_.hidden, b_.w_hn, T(0), drh_.data(), s_.hidden);
    for (size_t j = 0; j < nb_; ++j) {
      if (!active(s_, t, b0_ + j)) continue;
      for (size_t k = blocks.begin; k < blocks.end; ++k)
        b_.cell.backward_before_r(bg_.units(k), drh_.data() + unit(j, k), cache_of(t, j, k), h + unit(j, k),
                                  dgx_t + gate_cols(j, k), dh_.data() + unit(j, k));
    }
  }

  const BackwardPass<T>& b_;
  const DirectionShape& s_;
  const BlockedGates& bg_;
  const size_t b0_, nb_, N_;
  // Declared in allocation order: the arena frees in reverse.
  ScratchArray<T> dgh_step_;  // reset-after: (2, nb, 3Hp) dgh of this step and the previous one
  ScratchArray<T> dh_;        // (nb, H) gradient of the state after the step being processed
  ScratchArray<T> dn_pre_;    // reset-before: (nb, H) gradient of n's pre-activation
  ScratchArray<T> drh_;       // reset-before: (nb, H) gradient of r * h
};

// Bias gradients of rows [r0, r1) (column sums of dgx, row by row) into db, and, for
// reset-after, dgx's n part times r (the cell computes dgh_n as exactly this product) in
// place, whose sums go to db_n: from here dgx holds dgh. Threads split the unit blocks, from
// 2^15 elements on (a medium backward's passes took 2.1 ms on 2 threads, 3.6 ms on one).
// Padding steps have zero rows (r was never written there).
template <class T>
void bias_pass(const DirectionShape& s, const BlockedGates& bg, const T* gates, bool bias, size_t r0, size_t r1, T* dgx,
               T* db, T* db_n) {
  const size_t B = s.batch, N = bg.cols(), rows = s.steps * B;
  parallel_run(
      [&](const Team& team) {
        const Range blk = static_range(bg.blocks, team.tid, team.size);
        for (size_t r = r0; r < r1; ++r) {
          if (!active(s, r / B, r % B)) continue;
          for (size_t k = blk.begin; k < blk.end; ++k) {
            T* row = dgx + r * N + k * 3 * U;
            if (bias)
              for (size_t c = 0; c < 3 * U; ++c) db[k * 3 * U + c] += row[c];
            if (!s.reset_after) continue;
            const T* gate_r = gates + (r * bg.blocks + k) * kCacheGates * U;
            // r comes from memory in short runs (one per block) that the hardware prefetcher
            // does not follow.
            if (r + kPrefetchGateRows < rows) {
              const char* ahead =
                  reinterpret_cast<const char*>(gate_r + kPrefetchGateRows * bg.blocks * kCacheGates * U);
              for (size_t line = 0; line < U * sizeof(T); line += 64) __builtin_prefetch(ahead + line);
            }
            for (size_t u = 0; u < bg.units(k); ++u) {
              row[2 * U + u] *= gate_r[u];
              db_n[k * U + u] += row[2 * U + u];
            }
          }
        }
      },
      threads_for((r1 - r0) * N, 1 << 15));
}

// rh (r1 - r0, H) = r * h of rows [r0, r1), kept in the gate cache (reset-before's W_hn input);
// zero rows at padding steps (never computed there).
template <class T>
void gather_reset_states(const DirectionShape& s, const BlockedGates& bg, const T* gates, size_t r0, size_t r1, T* rh) {
  const size_t H = s.hidden;
  for (size_t r = r0; r < r1; ++r) {
    T* rh_row = rh + (r - r0) * H;
    if (!active(s, r / s.batch, r % s.batch)) {
      std::fill(rh_row, rh_row + H, T(0));
      continue;
    }
    for (size_t k = 0; k < bg.blocks; ++k) {
      const T* src = gates + (r * bg.blocks + k) * kCacheGates * U + 3 * U;
      std::copy(src, src + bg.units(k), rh_row + k * U);
    }
  }
}

// After the sweep, the whole-sequence products, a chunk of rows at a time, each chunk of dgx
// going through all of them while it is in cache (one product after another over the whole
// of dgx read it from memory each time): dx = dgx W_ih (unless dx is nullptr); dW_ih += dgx^T x; the bias sums and,
// for reset-after, dgx -> dgh in place; dW_hh += dgh^T h (reset-before: its r and z parts;
// the n part is dW_hn += dgx^T (r * h)). Then the blocked gradients are added into g in
// torch's layout.
template <class T>
void weight_gradients(const DirectionShape& s, const BlockedGates& bg, const DirectionParams<T>& p, const T* x,
                      const T* states, const T* gates, T* dgx, T* dx, T dx_beta, const DirectionGrads<T>& g) {
  const size_t H = s.hidden, I = s.input, N = bg.cols(), rows = s.steps * s.batch;
  const bool bias = g.b_ih != nullptr;
  ScratchArray<T> dw_ih(N * I), dw_hh(N * H), db(N), db_n(s.reset_after ? bg.padded() : 0);
  ScratchArray<T> dw_hn(s.reset_after ? 0 : N * H), rh(s.reset_after ? 0 : kWeightGradChunkRows * H);
  std::fill(db.begin(), db.end(), T(0));
  std::fill(db_n.begin(), db_n.end(), T(0));
  PackedMatrix<T>& w_ih = kept_packed<T>(2);  // kept between calls, as in forward
  if (dx) w_ih.pack(Trans::no, N, I, p.w_ih, I, bg.source_rows().data(), s.compute);
  for (size_t r0 = 0; r0 < rows; r0 += kWeightGradChunkRows) {
    const size_t r1 = std::min(rows, r0 + kWeightGradChunkRows), n = r1 - r0;
    const T beta = r0 == 0 ? T(0) : T(1);
    T* dg = dgx + r0 * N;
    if (dx) gemm_packed_rows<T>(n, dg, N, w_ih, dx_beta, dx + r0 * I, I);
    gemm<T>(Trans::yes, Trans::no, N, I, n, dg, N, x + r0 * I, I, beta, dw_ih.data(), I, s.compute);
    if (bias || s.reset_after) bias_pass(s, bg, gates, bias, r0, r1, dgx, db.data(), db_n.data());
    gemm<T>(Trans::yes, Trans::no, N, H, n, dg, N, states + r0 * H, H, beta, dw_hh.data(), H, s.compute);
    if (!s.reset_after) {
      gather_reset_states(s, bg, gates, r0, r1, rh.data());
      gemm<T>(Trans::yes, Trans::no, N, H, n, dg, N, rh.data(), H, beta, dw_hn.data(), H, s.compute);
    }
  }
  const bool over = g.overwrite;
  unblock_rows_add(bg, dw_ih.data(), I, g.w_ih, over);
  if (bias) unblock_rows_add(bg, db.data(), 1, g.b_ih, over);
  unblock_rows_add(bg, dw_hh.data(), H, g.w_hh, over, 0, s.reset_after ? 3 : 2);
  if (!s.reset_after) unblock_rows_add(bg, dw_hn.data(), H, g.w_hh, over, 2, 3);
  if (!g.b_hh) return;
  if (s.reset_after) {  // r and z parts equal b_ih's (still in db); the n part is db_n
    unblock_rows_add(bg, db.data(), 1, g.b_hh, over, 0, 2);
    for (size_t j = 0; j < H; ++j) g.b_hh[2 * H + j] = (over ? T(0) : g.b_hh[2 * H + j]) + db_n[j];
  } else {
    unblock_rows_add(bg, db.data(), 1, g.b_hh, over);
  }
}

}  // namespace

template <class T>
void gru_direction_forward(const DirectionShape& s, const DirectionParams<T>& p, const T* x, const T* h0, T* y,
                           size_t ldy, T* h_n, T* states, T* gates) {
  const BlockedGates bg(s.hidden);
  const size_t N = bg.cols();
  ScratchArray<T> b_ih(N), b_hh(N);
  block_bias(bg, p.b_ih, b_ih.data());
  block_bias(bg, p.b_hh, b_hh.data());
  // Both weights packed straight from torch's layout into blocked gate order, kept between
  // calls per calling thread (packing reuses the storage): megabytes of fresh memory per call
  // would be page-faulted in every time. References, as the pool's threads must use these,
  // not thread_locals of their own.
  const std::vector<size_t> blocked = bg.source_rows();
  PackedMatrix<T>& w_ih_t = kept_packed<T>(0);
  PackedMatrix<T>& w_hh_t = kept_packed<T>(1);
  w_ih_t.pack(Trans::yes, s.input, N, p.w_ih, s.input, blocked.data(), s.compute);
  w_hh_t.pack(Trans::yes, s.hidden, N, p.w_hh, s.hidden, blocked.data(), s.compute);
  // The input projection gx = x W_ih^T runs a chunk of steps at a time, just before them, so
  // the steps find it in cache: the whole sequence's (39 MB at B = 64, H = 512) went out to
  // memory and came back.
  const size_t step_bytes = s.batch * N * sizeof(T);
  const size_t chunk_steps = std::max<size_t>(1, std::min(s.steps, kProjectionChunkBytes / step_bytes));
  if (states) std::copy(h0, h0 + s.batch * s.hidden, states + (s.reverse ? s.steps - 1 : 0) * s.batch * s.hidden);

  const ForwardPass<T> pass{
      s,      bg,   kernels<T>().cell, b_ih.data(), b_hh.data(), w_ih_t, w_hh_t, chunk_steps, x, h0, y, ldy, h_n,
      states, gates};
  std::atomic<bool> stopped{false};
  sweep_batch<T>(bg, s.batch,
                 [&](size_t b0, size_t nb, size_t parts) { ForwardSweep<T>(pass, b0, nb).run(parts, stopped); });
  if (stopped) throw Cancelled();
  if (s.steps == 0) std::copy(h0, h0 + s.batch * s.hidden, h_n);
}

template <class T>
void gru_direction_backward(const DirectionShape& s, const DirectionParams<T>& p, const T* x, const T* states,
                            const T* gates, const T* dy, size_t ldy, const T* dh_n, T* dx, T dx_beta, T* dh0,
                            const DirectionGrads<T>& g) {
  const BlockedGates bg(s.hidden);
  const size_t N = bg.cols(), H = s.hidden;
  PackedMatrix<T>& w_hh_back = kept_packed<T>(0);  // kept between calls, as in forward
  PackedMatrix<T>& w_hn = kept_packed<T>(1);
  if (s.reset_after) {
    w_hh_back.pack(Trans::no, N, H, p.w_hh, H, bg.source_rows().data(), s.compute);
  } else {
    w_hh_back.pack(Trans::no, N, H, p.w_hh, H, bg.source_rows(0, 2).data(), s.compute);
    w_hn.pack(Trans::no, H, H, p.w_hh + 2 * H * H, H, nullptr, s.compute);
  }
  ScratchArray<T> dgx(s.steps * s.batch * N);
  const BackwardPass<T> pass{s, bg, kernels<T>().cell, w_hh_back, w_hn, states, gates, dy, ldy, dh_n, dh0, dgx.data()};
  std::atomic<bool> stopped{false};
  sweep_batch<T>(bg, s.batch,
                 [&](size_t b0, size_t nb, size_t parts) { BackwardSweep<T>(pass, b0, nb).run(parts, stopped); });
  if (stopped) throw Cancelled();
  weight_gradients(s, bg, p, x, states, gates, dgx.data(), dx, dx_beta, g);
}

}  // namespace detail

void release_memory() {
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

#define FASTGRU_INSTANTIATE(T)                                                                                     \
  template void gru_direction_forward<T>(const DirectionShape&, const DirectionParams<T>&, const T*, const T*, T*, \
                                         size_t, T*, T*, T*);                                                      \
  template void gru_direction_backward<T>(const DirectionShape&, const DirectionParams<T>&, const T*, const T*,    \
                                          const T*, const T*, size_t, const T*, T*, T, T*, const DirectionGrads<T>&);
FASTGRU_INSTANTIATE(float)
FASTGRU_INSTANTIATE(double)

}  // namespace detail
}  // namespace fastgru
