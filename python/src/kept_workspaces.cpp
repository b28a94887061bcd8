#include "kept_workspaces.h"

#include <algorithm>
#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace fastgru_bindings {
namespace {

struct AlignedDelete {
  void operator()(unsigned char* p) const { ::operator delete[](p, std::align_val_t(64)); }
};

struct Block {
  std::unique_ptr<unsigned char[], AlignedDelete> data;
  size_t bytes = 0;  // capacity
  size_t used = 0;   // the workspace's size: what the forward that filled it asked for
};

constexpr size_t kFreeCapacity = 2;

class Store {
 public:
  // The smallest free block of at least bytes, else a new one.
  Block acquire(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->bytes >= bytes && (best == free_.end() || it->bytes < best->bytes)) best = it;
      if (best != free_.end()) {
        Block b = std::move(*best);
        free_.erase(best);
        b.used = bytes;
        return b;
      }
    }
    Block b;
    b.data.reset(static_cast<unsigned char*>(::operator new[](std::max<size_t>(bytes, 1), std::align_val_t(64))));
    b.bytes = b.used = bytes;
    return b;
  }

  int32_t keep(Block b) {
    std::lock_guard<std::mutex> lock(mutex_);
    next_ = next_ % 2147483646 + 1;  // 1 .. 2^31 - 1; 0 names no workspace
    kept_bytes_ += b.bytes;
    kept_.emplace_back(next_, std::move(b));
    while (kept_bytes_ > kMaxKeptBytes && kept_.size() > 1) {
      kept_bytes_ -= kept_.front().second.bytes;
      kept_.pop_front();
    }
    return next_;
  }

  // The workspace kept under token (removed from the store), or an empty block.
  Block take(int32_t token) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (it->first != token) continue;
      Block b = std::move(it->second);
      kept_bytes_ -= b.bytes;
      kept_.erase(it);
      return b;
    }
    return {};
  }

  // Back to the free list; beyond its capacity the smallest block goes.
  void release(Block b) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(b));
    if (free_.size() > kFreeCapacity)
      free_.erase(std::min_element(free_.begin(), free_.end(),
                                   [](const Block& a, const Block& c) { return a.bytes < c.bytes; }));
  }

  size_t kept_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return kept_.size();
  }
  size_t free_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return free_.size();
  }
  std::atomic<size_t> forwards_again{0};  // backwards that found no workspace

 private:
  std::mutex mutex_;
  std::list<std::pair<int32_t, Block>> kept_;  // oldest first
  std::list<Block> free_;
  size_t kept_bytes_ = 0;
  int32_t next_ = 0;
};

Store& store() {
  static Store* s = new Store;  // never destroyed: a framework's thread may still call at exit
  return *s;
}

template <class T>
size_t workspace_bytes(const fastgru::GruConfig& cfg, size_t steps, size_t batch) {
  return fastgru::gru_workspace_size(cfg, steps, batch) * sizeof(T);
}

}  // namespace

template <class T>
int32_t gru_forward_keeping(const fastgru::GruConfig& cfg, const T* params, size_t steps, size_t batch, const T* x,
                            const T* h0, const int64_t* lengths, T* y, T* h_n) {
  fastgru::gru_check_sizes(cfg, steps, batch);
  Block ws = store().acquire(workspace_bytes<T>(cfg, steps, batch));
  fastgru::gru_forward<T>(cfg, params, steps, batch, x, h0, lengths, nullptr, y, h_n,
                          reinterpret_cast<T*>(ws.data.get()));
  return store().keep(std::move(ws));
}

template <class T>
void gru_backward_kept(const fastgru::GruConfig& cfg, int32_t token, const T* params, size_t steps, size_t batch,
                       const T* x_batch_major, const T* h0, const int64_t* lengths, const T* dy, const T* dh_n, T* dx,
                       T* dh0, T* grad) {
  fastgru::gru_check_sizes(cfg, steps, batch);
  const size_t bytes = workspace_bytes<T>(cfg, steps, batch);
  Block ws = store().take(token);
  T* workspace = nullptr;
  if (ws.data && ws.used == bytes) {
    workspace = reinterpret_cast<T*>(ws.data.get());
  } else {  // already used, dropped, or not this shape's: the forward again, into scratch outputs
    ++store().forwards_again;
    if (ws.data) store().release(std::move(ws));
    ws = store().acquire(bytes);
    workspace = reinterpret_cast<T*>(ws.data.get());
    const size_t LD = cfg.num_layers * cfg.directions(), I = cfg.input_size;
    std::vector<T> x(steps * batch * I);  // time-major, as the forward takes it
    for (size_t b = 0; b < batch; ++b)
      for (size_t t = 0; t < steps; ++t)
        std::copy_n(x_batch_major + (b * steps + t) * I, I, x.data() + (t * batch + b) * I);
    std::vector<T> y(steps * batch * cfg.directions() * cfg.hidden_size), h_n(LD * batch * cfg.hidden_size);
    fastgru::gru_forward<T>(cfg, params, steps, batch, x.data(), h0, lengths, nullptr, y.data(), h_n.data(), workspace);
  }
  const fastgru::GruCache<T> cache{steps, batch, lengths, nullptr, workspace};
  fastgru::gru_backward<T>(cfg, params, cache, dy, dh_n, dx, dh0, grad, /*accumulate=*/false);
  store().release(std::move(ws));
}

size_t kept_workspace_count() { return store().kept_count(); }
size_t free_workspace_count() { return store().free_count(); }
size_t forwards_run_again() { return store().forwards_again.load(); }

template int32_t gru_forward_keeping<float>(const fastgru::GruConfig&, const float*, size_t, size_t, const float*,
                                            const float*, const int64_t*, float*, float*);
template int32_t gru_forward_keeping<double>(const fastgru::GruConfig&, const double*, size_t, size_t, const double*,
                                             const double*, const int64_t*, double*, double*);
template void gru_backward_kept<float>(const fastgru::GruConfig&, int32_t, const float*, size_t, size_t, const float*,
                                       const float*, const int64_t*, const float*, const float*, float*, float*,
                                       float*);
template void gru_backward_kept<double>(const fastgru::GruConfig&, int32_t, const double*, size_t, size_t,
                                        const double*, const double*, const int64_t*, const double*, const double*,
                                        double*, double*, double*);

}  // namespace fastgru_bindings
