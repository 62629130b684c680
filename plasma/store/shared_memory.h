// SharedMemoryArena: the one shared-memory region all objects live in. Its
// fd is what clients receive (SCM_RIGHTS) and map.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

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
  // Fails (never crashes) on a bad directory, a capacity the filesystem or
  // machine has no room for, or hugepages on a directory that isn't hugetlbfs.
  // Pages are not touched here; they fault in as objects are written.
  static Result<std::unique_ptr<SharedMemoryArena>> Create(const ArenaOptions& options);
  ~SharedMemoryArena();  // munmap + close
  SharedMemoryArena(const SharedMemoryArena&) = delete;
  SharedMemoryArena& operator=(const SharedMemoryArena&) = delete;

  int fd() const { return fd_; }
  uint8_t* base() const { return base_; }
  // Bytes mapped: the capacity rounded up to the (huge) page size.
  uint64_t size() const { return size_; }
  // For logs: "memfd" or the (already unlinked) file's path.
  const std::string& location() const { return location_; }

 private:
  SharedMemoryArena(int fd, uint8_t* base, uint64_t size, std::string location)
      : fd_(fd), base_(base), size_(size), location_(std::move(location)) {}
  int fd_;
  uint8_t* base_;
  uint64_t size_;
  std::string location_;
};

}  // namespace plasma
