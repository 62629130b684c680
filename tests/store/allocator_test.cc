#include "plasma/store/allocator.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace plasma {
namespace {

TEST(ArenaAllocator, AllocatesAlignedDistinctBlocks) {
  ArenaAllocator allocator(1 << 20);
  auto a = allocator.Allocate(1);
  auto b = allocator.Allocate(100);
  auto c = allocator.Allocate(0);  // a unique block all the same
  ASSERT_TRUE(a && b && c);
  for (uint64_t offset : {*a, *b, *c}) EXPECT_EQ(offset % ArenaAllocator::kAlignment, 0u);
  EXPECT_NE(*a, *b);
  EXPECT_NE(*b, *c);
  EXPECT_EQ(allocator.BlockSize(*b), 128u);
  EXPECT_EQ(allocator.bytes_allocated(), 64u + 128u + 64u);
}

TEST(ArenaAllocator, ExhaustionThenReuse) {
  ArenaAllocator allocator(64 * 10);
  std::vector<uint64_t> blocks;
  for (int i = 0; i < 10; ++i) {
    auto offset = allocator.Allocate(64);
    ASSERT_TRUE(offset);
    blocks.push_back(*offset);
  }
  EXPECT_FALSE(allocator.Allocate(1));
  EXPECT_TRUE(allocator.Free(blocks[3]));
  auto again = allocator.Allocate(64);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, blocks[3]);
}

TEST(ArenaAllocator, CoalescesInAnyOrder) {
  for (int order = 0; order < 6; ++order) {
    ArenaAllocator allocator(64 * 3);
    uint64_t blocks[3] = {*allocator.Allocate(64), *allocator.Allocate(64), *allocator.Allocate(64)};
    int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int i : orders[order]) ASSERT_TRUE(allocator.Free(blocks[i]));
    EXPECT_EQ(allocator.free_block_count(), 1u);
    EXPECT_EQ(allocator.largest_free_block(), 64u * 3);
  }
}

TEST(ArenaAllocator, BestFitPicksTheSmallestHole) {
  ArenaAllocator allocator(64 * 100);
  auto a = *allocator.Allocate(64 * 10);
  auto guard1 = *allocator.Allocate(64);
  auto b = *allocator.Allocate(64 * 3);
  auto guard2 = *allocator.Allocate(64);
  (void)guard1;
  (void)guard2;
  allocator.Free(a);  // a hole of 10 blocks
  allocator.Free(b);  // a hole of 3 blocks
  EXPECT_EQ(*allocator.Allocate(64 * 2), b);  // the 3-block hole, not the 10-block one
}

TEST(ArenaAllocator, RejectsBogusFreesAndHugeSizes) {
  ArenaAllocator allocator(1 << 20);
  auto a = *allocator.Allocate(100);
  EXPECT_FALSE(allocator.Free(a + 64));
  EXPECT_TRUE(allocator.Free(a));
  EXPECT_FALSE(allocator.Free(a));  // double free
  EXPECT_FALSE(allocator.Allocate(~uint64_t(0)));
  EXPECT_FALSE(allocator.Allocate((1 << 20) + 1));
  EXPECT_EQ(allocator.bytes_allocated(), 0u);
}

TEST(ArenaAllocator, RandomizedAgainstAReferenceModel) {
  const uint64_t capacity = 64ull << 20;
  ArenaAllocator allocator(capacity);
  std::map<uint64_t, uint64_t> live;  // offset -> size
  std::mt19937_64 random(42);
  uint64_t expected_bytes = 0;
  for (int op = 0; op < 50000; ++op) {
    if (live.empty() || random() % 3 != 0) {
      uint64_t size = random() % 4 == 0 ? random() % (1 << 20) : random() % 4096;
      auto offset = allocator.Allocate(size);
      if (!offset) continue;
      uint64_t block = allocator.BlockSize(*offset);
      ASSERT_GE(block, size);
      ASSERT_LE(*offset + block, capacity);
      // No overlap with the neighbours on either side.
      auto next = live.lower_bound(*offset);
      if (next != live.end()) ASSERT_LE(*offset + block, next->first);
      if (next != live.begin()) ASSERT_LE(std::prev(next)->first + std::prev(next)->second, *offset);
      live[*offset] = block;
      expected_bytes += block;
    } else {
      auto it = live.begin();
      std::advance(it, random() % live.size());
      ASSERT_TRUE(allocator.Free(it->first));
      expected_bytes -= it->second;
      live.erase(it);
    }
    ASSERT_EQ(allocator.bytes_allocated(), expected_bytes);
  }
  for (auto& [offset, size] : live) ASSERT_TRUE(allocator.Free(offset));
  EXPECT_EQ(allocator.free_block_count(), 1u);
  EXPECT_EQ(allocator.largest_free_block(), capacity);
}

}  // namespace
}  // namespace plasma
