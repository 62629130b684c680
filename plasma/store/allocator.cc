#include "plasma/store/allocator.h"

namespace plasma {

ArenaAllocator::ArenaAllocator(uint64_t capacity) : capacity_(capacity / kAlignment * kAlignment) {
  if (capacity_ > 0) InsertFree(0, capacity_);
}

void ArenaAllocator::InsertFree(uint64_t offset, uint64_t size) {
  free_by_offset_.emplace(offset, size);
  free_by_size_.emplace(size, offset);
}

void ArenaAllocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

std::optional<uint64_t> ArenaAllocator::Allocate(uint64_t size) {
  if (size > capacity_) return std::nullopt;  // also keeps the rounding below from overflowing
  uint64_t block = size == 0 ? kAlignment : (size + kAlignment - 1) / kAlignment * kAlignment;
  auto fit = free_by_size_.lower_bound({block, 0});
  if (fit == free_by_size_.end()) return std::nullopt;
  uint64_t free_size = fit->first, offset = fit->second;
  EraseFree(free_by_offset_.find(offset));
  if (free_size > block) InsertFree(offset + block, free_size - block);
  live_.emplace(offset, block);
  bytes_allocated_ += block;
  return offset;
}

bool ArenaAllocator::Free(uint64_t offset) {
  auto live = live_.find(offset);
  if (live == live_.end()) return false;
  uint64_t size = live->second;
  live_.erase(live);
  bytes_allocated_ -= size;
  // Merge with the free neighbours on both sides.
  auto next = free_by_offset_.lower_bound(offset);
  if (next != free_by_offset_.end() && next->first == offset + size) {
    size += next->second;
    EraseFree(next);
  }
  auto after = free_by_offset_.lower_bound(offset);
  if (after != free_by_offset_.begin()) {
    auto previous = std::prev(after);
    if (previous->first + previous->second == offset) {
      offset = previous->first;
      size += previous->second;
      EraseFree(previous);
    }
  }
  InsertFree(offset, size);
  return true;
}

uint64_t ArenaAllocator::BlockSize(uint64_t offset) const {
  auto it = live_.find(offset);
  return it == live_.end() ? 0 : it->second;
}

uint64_t ArenaAllocator::largest_free_block() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

}  // namespace plasma
