// ArenaAllocator: byte offsets inside one contiguous arena [0, capacity).
// Best fit (smallest free range that fits, lowest offset on ties) with
// immediate coalescing; Allocate and Free are O(log n). It never touches the
// arena's memory: its bookkeeping lives in the store's heap, so a client
// scribbling over shared memory cannot corrupt it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

namespace plasma {

class ArenaAllocator {
 public:
  static constexpr uint64_t kAlignment = 64;  // every offset and block size is a multiple

  explicit ArenaAllocator(uint64_t capacity);  // capacity is rounded down to kAlignment

  // Offset of a new block of at least `size` bytes (size 0 still gets a
  // unique block of kAlignment bytes), or nullopt when no free range fits.
  std::optional<uint64_t> Allocate(uint64_t size);
  // Frees the block starting at offset. False (and no change) if no live
  // block starts there.
  bool Free(uint64_t offset);
  uint64_t BlockSize(uint64_t offset) const;  // 0 if not a live block

  uint64_t capacity() const { return capacity_; }
  uint64_t bytes_allocated() const { return bytes_allocated_; }
  uint64_t largest_free_block() const;
  size_t free_block_count() const { return free_by_offset_.size(); }  // a measure of fragmentation
  size_t live_block_count() const { return live_.size(); }

  // For tests and debugging, O(n log n): checks that live and free blocks
  // tile [0, capacity) exactly, free blocks are fully coalesced, the indexes
  // agree and the counters add up. Empty if all holds, else the first broken
  // invariant.
  std::string CheckInvariants() const;

 private:
  void InsertFree(uint64_t offset, uint64_t size);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t capacity_;
  uint64_t bytes_allocated_ = 0;
  std::map<uint64_t, uint64_t> free_by_offset_;          // offset -> size, to find neighbours
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;  // (size, offset), for best fit
  std::unordered_map<uint64_t, uint64_t> live_;           // offset -> size
};

}  // namespace plasma
