#include "plasma/store/shared_memory.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

namespace plasma {
namespace {

size_t FilesIn(const std::string& directory) {
  size_t count = 0;
  DIR* dir = opendir(directory.c_str());
  while (dir != nullptr && readdir(dir) != nullptr) ++count;
  if (dir) closedir(dir);
  return count;
}

void ExpectSharedWithASecondMapping(SharedMemoryArena& arena) {
  std::memset(arena.base(), 0x5a, 4096);
  // A client maps the same fd and sees the same bytes.
  void* second = mmap(nullptr, arena.size(), PROT_READ | PROT_WRITE, MAP_SHARED, arena.fd(), 0);
  ASSERT_NE(second, MAP_FAILED);
  EXPECT_EQ(static_cast<uint8_t*>(second)[4095], 0x5a);
  static_cast<uint8_t*>(second)[0] = 1;
  EXPECT_EQ(arena.base()[0], 1);
  munmap(second, arena.size());
}

TEST(SharedMemoryArena, FileInDevShmIsUnlinkedAndShared) {
  size_t before = FilesIn("/dev/shm");
  auto arena = SharedMemoryArena::Create({1 << 20, "/dev/shm", false});
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  EXPECT_GE((*arena)->size(), uint64_t(1) << 20);
  EXPECT_EQ(FilesIn("/dev/shm"), before);  // nothing left behind to clean up
  ExpectSharedWithASecondMapping(**arena);
}

TEST(SharedMemoryArena, Memfd) {
  auto arena = SharedMemoryArena::Create({1 << 20, "", false});
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  ExpectSharedWithASecondMapping(**arena);
}

TEST(SharedMemoryArena, ClearErrors) {
  auto missing = SharedMemoryArena::Create({1 << 20, "/nonexistent/dir", false});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/dir"), std::string::npos);
  auto absurd = SharedMemoryArena::Create({uint64_t(1) << 50, "/dev/shm", false});
  ASSERT_FALSE(absurd.ok());
  EXPECT_NE(absurd.status().message().find("/dev/shm"), std::string::npos)
      << absurd.status().ToString();
  auto not_huge = SharedMemoryArena::Create({1 << 20, "/dev/shm", true});
  ASSERT_FALSE(not_huge.ok());
  EXPECT_NE(not_huge.status().message().find("hugetlbfs"), std::string::npos);
}

}  // namespace
}  // namespace plasma
