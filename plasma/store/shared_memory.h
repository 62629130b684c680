// SharedMemoryArena: the one shared-memory region all objects live in. Its
// fd is what clients receive (SCM_RIGHTS) and map.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "plasma/common/status.h"

namespace plasma {

struct ArenaOptions {
  uint64_t capacity = 0;
  // A file is created here and unlinked at once; empty: memfd_create.
  std::string directory = "/dev/shm";
  // `directory` must then be a hugetlbfs mount; the size is rounded up to its page size.
  bool hugepages = false;
};

class SharedMemoryArena {
 public:
  static Result<std::unique_ptr<SharedMemoryArena>> Create(const ArenaOptions& options);
  ~SharedMemoryArena();
  SharedMemoryArena(const SharedMemoryArena&) = delete;
  SharedMemoryArena& operator=(const SharedMemoryArena&) = delete;

  int fd() const { return fd_; }
  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }  // bytes mapped (capacity rounded up to the page size)

 private:
  SharedMemoryArena(int fd, uint8_t* base, uint64_t size) : fd_(fd), base_(base), size_(size) {}
  int fd_;
  uint8_t* base_;
  uint64_t size_;
};

}  // namespace plasma
