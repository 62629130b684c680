#include "plasma/store/allocator.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

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
  // Checked first so the rounding below cannot overflow: capacity_ is at most
  // 2^64 - kAlignment, so size + kAlignment - 1 still fits.
  if (size > capacity_) return std::nullopt;
  uint64_t block = size == 0 ? kAlignment : (size + kAlignment - 1) / kAlignment * kAlignment;
  // (size, offset) ordering makes the first hit the smallest fit, lowest offset on ties.
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
  // Merge with the free neighbours on both sides, so free space never stays split.
  auto next = free_by_offset_.lower_bound(offset);
  if (next != free_by_offset_.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second == offset) {
      offset = previous->first;
      size += previous->second;
      EraseFree(previous);
    }
  }
  if (next != free_by_offset_.end() && next->first == offset + size) {
    size += next->second;
    EraseFree(next);
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

std::string ArenaAllocator::CheckInvariants() const {
  auto at = [](uint64_t offset) { return " at offset " + std::to_string(offset); };
  if (capacity_ % kAlignment != 0) return "capacity is not aligned";
  if (free_by_offset_.size() != free_by_size_.size()) return "free indexes differ in size";
  for (const auto& [size, offset] : free_by_size_) {
    auto it = free_by_offset_.find(offset);
    if (it == free_by_offset_.end() || it->second != size) {
      return "free indexes disagree" + at(offset);
    }
  }
  // Walk all blocks in address order: they must tile the arena with no gap or overlap.
  std::vector<std::pair<uint64_t, uint64_t>> live(live_.begin(), live_.end());
  std::sort(live.begin(), live.end());
  uint64_t live_bytes = 0;
  for (const auto& [offset, size] : live) live_bytes += size;
  if (live_bytes != bytes_allocated_) return "bytes_allocated does not match the live blocks";
  auto next_live = live.begin();
  auto next_free = free_by_offset_.begin();
  uint64_t cursor = 0;
  bool previous_was_free = false;
  while (next_live != live.end() || next_free != free_by_offset_.end()) {
    bool is_free = next_live == live.end() ||
                   (next_free != free_by_offset_.end() && next_free->first < next_live->first);
    uint64_t offset = is_free ? next_free->first : next_live->first;
    uint64_t size = is_free ? next_free->second : next_live->second;
    if (offset != cursor) return (offset < cursor ? "overlap" : "gap") + at(cursor);
    if (size == 0 || size % kAlignment != 0) return "block of bad size" + at(offset);
    if (size > capacity_ - offset) return "block runs past the end" + at(offset);
    if (is_free && previous_was_free) return "uncoalesced free neighbours" + at(offset);
    previous_was_free = is_free;
    cursor = offset + size;
    if (is_free) ++next_free; else ++next_live;
  }
  if (cursor != capacity_) return "blocks end" + at(cursor) + ", before the capacity";
  return "";
}

}  // namespace plasma
