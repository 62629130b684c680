#include "plasma/store/shared_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace plasma {

namespace {

// Closes the fd on every early return; Release() once the arena owns it.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string Bytes(uint64_t n) { return std::to_string(n) + " bytes"; }

// Fails now, with a message, rather than letting the store die of SIGBUS on
// first touch of a page the filesystem cannot back.
Status CheckRoom(int fd, const std::string& location, const std::string& directory, uint64_t size,
                 bool hugepages) {
  struct statvfs room;
  if (fstatvfs(fd, &room) != 0) return Status::FromErrno("statvfs on arena " + location, errno);
  if (room.f_blocks != 0) {  // a filesystem with a size limit (tmpfs size=, disk, hugetlbfs size=)
    uint64_t available = uint64_t(room.f_bavail) * uint64_t(room.f_frsize);
    if (size > available) {
      return Status::OutOfMemory("arena of " + Bytes(size) + " does not fit in " + directory +
                                 ": only " + Bytes(available) +
                                 " available (lower the capacity or make room there)");
    }
    return Status::OK();
  }
  // No limit reported: memfd, or a tmpfs/hugetlbfs mounted without size=.
  // hugetlbfs reserves its pages at mmap, which then fails cleanly by itself.
  if (hugepages) return Status::OK();
  // tmpfs pages live in RAM or swap, so more than both can never be backed.
  struct sysinfo machine;
  if (sysinfo(&machine) != 0) return Status::FromErrno("sysinfo", errno);
  uint64_t memory = (uint64_t(machine.totalram) + uint64_t(machine.totalswap)) * machine.mem_unit;
  if (size > memory) {
    return Status::OutOfMemory("arena of " + Bytes(size) + " in " + directory +
                               " exceeds the machine's memory plus swap (" + Bytes(memory) +
                               " in all)");
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<SharedMemoryArena>> SharedMemoryArena::Create(const ArenaOptions& options) {
  const bool use_memfd = options.directory.empty();
  const std::string directory = use_memfd ? "memfd" : options.directory;
  if (options.capacity == 0) {
    return Status::InvalidArgument("arena in " + directory + ": capacity must be positive");
  }
  if (options.hugepages && use_memfd) {
    return Status::InvalidArgument(
        "huge pages need the arena directory to be a hugetlbfs mount (e.g. /dev/hugepages)");
  }

  uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  if (!use_memfd) {
    struct statfs filesystem;
    if (statfs(options.directory.c_str(), &filesystem) != 0) {
      return Status::FromErrno("arena directory " + options.directory, errno);
    }
    if (options.hugepages) {
      if (filesystem.f_type != HUGETLBFS_MAGIC) {
        return Status::InvalidArgument("arena directory " + options.directory +
                                       " is not a hugetlbfs mount, which huge pages need");
      }
      page = uint64_t(filesystem.f_bsize);  // the mount's huge page size, e.g. 2 MiB or 1 GiB
    }
  }
  // ftruncate and mmap take off_t; also keeps the rounding below from overflowing.
  const uint64_t max_size = uint64_t(std::numeric_limits<off_t>::max()) / page * page;
  if (options.capacity > max_size) {
    return Status::InvalidArgument("arena in " + directory + ": capacity of " +
                                   Bytes(options.capacity) + " is beyond the largest file (" +
                                   Bytes(max_size) + ")");
  }
  const uint64_t size = (options.capacity + page - 1) / page * page;

  std::string location;
  int raw_fd;
  if (use_memfd) {
    location = "memfd";
    // Sealing lets us forbid resizing: a client that shrank the fd it was
    // sent would make the store die of SIGBUS.
    raw_fd = memfd_create("plasma-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (raw_fd < 0) return Status::FromErrno("memfd_create for the arena", errno);
  } else {
    std::string path = options.directory + "/plasmaXXXXXX";
    raw_fd = mkostemp(path.data(), O_CLOEXEC);
    if (raw_fd < 0) return Status::FromErrno("create arena file in " + options.directory, errno);
    // Unlinked at once: the fds and the mapping keep it alive, and nothing is
    // left behind to clean up however the store exits.
    if (unlink(path.c_str()) != 0) {
      int err = errno;
      close(raw_fd);
      return Status::FromErrno("unlink arena file " + path, err);
    }
    location = path + " (unlinked)";
  }
  FdGuard fd(raw_fd);

  PLASMA_RETURN_NOT_OK(CheckRoom(fd.get(), location, directory, size, options.hugepages));
  if (ftruncate(fd.get(), off_t(size)) != 0) {
    return Status::FromErrno("size arena " + location + " to " + Bytes(size), errno);
  }
  if (use_memfd &&
      fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Status::FromErrno("seal arena " + location + " against resizing", errno);
  }
  // No MAP_POPULATE: touching every page up front makes start-up slow for big arenas.
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) {
    int err = errno;
    std::string message = "map arena " + location + " (" + Bytes(size) + "): " + std::strerror(err);
    if (options.hugepages && err == ENOMEM) {
      message += " (are enough huge pages reserved? see /proc/sys/vm/nr_hugepages)";
    }
    return Status::IOError(message);
  }
  return std::unique_ptr<SharedMemoryArena>(new SharedMemoryArena(
      fd.Release(), static_cast<uint8_t*>(base), size, std::move(location)));
}

SharedMemoryArena::~SharedMemoryArena() {
  munmap(base_, size_);
  close(fd_);
}

}  // namespace plasma
