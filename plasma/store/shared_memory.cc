#include "plasma/store/shared_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace plasma {

namespace {

Status Errno(const std::string& what, int err) { return Status::FromErrno(what, err); }

}  // namespace

Result<std::unique_ptr<SharedMemoryArena>> SharedMemoryArena::Create(const ArenaOptions& options) {
  if (options.capacity == 0) return Status::InvalidArgument("arena capacity must be positive");
  uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  int fd;
  std::string where;
  if (options.directory.empty()) {
    if (options.hugepages) return Status::InvalidArgument("huge pages need a hugetlbfs directory");
    where = "memfd";
    fd = memfd_create("plasma-arena", MFD_CLOEXEC);
    if (fd < 0) return Errno("memfd_create", errno);
  } else {
    struct statfs filesystem;
    if (statfs(options.directory.c_str(), &filesystem) != 0) {
      return Errno("arena directory " + options.directory, errno);
    }
    if (options.hugepages) {
      if (filesystem.f_type != HUGETLBFS_MAGIC) {
        return Status::InvalidArgument("arena directory " + options.directory +
                                       " is not a hugetlbfs mount (needed with huge pages)");
      }
      page = uint64_t(filesystem.f_bsize);
    }
    std::string pattern = options.directory + "/plasmaXXXXXX";
    fd = mkostemp(pattern.data(), O_CLOEXEC);
    if (fd < 0) return Errno("create arena file in " + options.directory, errno);
    unlink(pattern.c_str());  // the mapping and the fds keep it alive; nothing to clean up
    where = options.directory;
  }
  if (options.capacity > UINT64_MAX - page) {
    close(fd);
    return Status::InvalidArgument("arena capacity " + std::to_string(options.capacity) +
                                   " is absurd");
  }
  uint64_t size = (options.capacity + page - 1) / page * page;
  if (!options.hugepages) {
    // Check for room now: an over-committed tmpfs kills the store with SIGBUS later.
    struct statvfs room;
    if (fstatvfs(fd, &room) == 0) {
      uint64_t available = uint64_t(room.f_bavail) * uint64_t(room.f_bsize);
      if (room.f_blocks != 0 && size > available) {
        close(fd);
        return Status::OutOfMemory("arena of " + std::to_string(size) + " bytes does not fit in " +
                                   where + " (" + std::to_string(available) + " bytes free)");
      }
    }
  }
  if (ftruncate(fd, off_t(size)) != 0) {
    int err = errno;
    close(fd);
    return Errno("size the arena in " + where + " to " + std::to_string(size) + " bytes", err);
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int err = errno;
    close(fd);
    return Errno("map the arena (" + std::to_string(size) + " bytes in " + where + ")", err);
  }
  return std::unique_ptr<SharedMemoryArena>(
      new SharedMemoryArena(fd, static_cast<uint8_t*>(base), size));
}

SharedMemoryArena::~SharedMemoryArena() {
  munmap(base_, size_);
  close(fd_);
}

}  // namespace plasma
