// The per-thread scratch arena of scratch.h: a list of 64-byte-aligned blocks used as one
// stack. A push that does not fit the current block moves to the next one (allocating it if
// needed); when the stack is empty again after spilling into several blocks, they are merged
// into one block of their total size, so from the next call on everything fits in one.
#include "scratch.h"

#include <new>
#include <vector>

namespace fastgru {
namespace detail {
namespace {

constexpr size_t kAlign = 64;

struct Block {
  char* data;
  size_t capacity;
};

class Arena {
 public:
  ~Arena() { free_all(); }

  void* push(size_t bytes, ScratchMark* mark) {
    *mark = {block_, offset_};
    bytes = (bytes + kAlign - 1) / kAlign * kAlign;
    if (bytes == 0) return blocks_.empty() ? nullptr : blocks_[block_].data + offset_;
    if (blocks_.empty() || offset_ + bytes > blocks_[block_].capacity) {
      size_t next = blocks_.empty() ? 0 : block_ + 1;
      if (next == blocks_.size() || blocks_[next].capacity < bytes) {
        blocks_.reserve(blocks_.size() + 1);  // so the insert below cannot throw and leak b
        Block b{static_cast<char*>(::operator new(bytes, std::align_val_t(kAlign))), bytes};
        blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(next), b);
      }
      block_ = next;
      offset_ = 0;
    }
    void* p = blocks_[block_].data + offset_;
    offset_ += bytes;
    return p;
  }

  void pop(const ScratchMark& mark) {
    block_ = mark.block;
    offset_ = mark.offset;
    if (block_ == 0 && offset_ == 0 && blocks_.size() > 1) merge();
  }

  size_t capacity() const {
    size_t total = 0;
    for (const Block& b : blocks_) total += b.capacity;
    return total;
  }

  // Frees everything when nothing is in use (a call in progress keeps its memory).
  void release() {
    if (block_ == 0 && offset_ == 0) free_all();
  }

 private:
  void merge() {
    size_t total = 0;
    for (const Block& b : blocks_) total += b.capacity;
    free_all();
    try {
      blocks_.push_back({static_cast<char*>(::operator new(total, std::align_val_t(kAlign))), total});
    } catch (const std::bad_alloc&) {  // the next call allocates what it needs, as before
    }
  }
  void free_all() {
    for (const Block& b : blocks_) ::operator delete(b.data, std::align_val_t(kAlign));
    blocks_.clear();
    block_ = offset_ = 0;
  }

  std::vector<Block> blocks_;
  size_t block_ = 0, offset_ = 0;  // the top of the stack: blocks_[block_].data + offset_
};

Arena& arena() {
  thread_local Arena a;
  return a;
}

}  // namespace

void* scratch_push(size_t bytes, ScratchMark* mark) { return arena().push(bytes, mark); }
void scratch_pop(const ScratchMark& mark) { arena().pop(mark); }
void scratch_release() { arena().release(); }
size_t scratch_capacity() { return arena().capacity(); }

}  // namespace detail

}  // namespace fastgru
