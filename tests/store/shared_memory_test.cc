#include "plasma/store/shared_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/test_util.h"

namespace plasma {
namespace {

constexpr uint64_t kMiB = uint64_t(1) << 20;
constexpr uint64_t kPiB = uint64_t(1) << 50;

bool Contains(const Status& status, const std::string& text) {
  return status.message().find(text) != std::string::npos;
}

std::vector<std::string> EntriesIn(const std::string& directory) {
  std::vector<std::string> entries;
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) return entries;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") entries.push_back(name);
  }
  closedir(dir);
  return entries;
}

// A private directory on /dev/shm, so other tests running on the machine
// can't add or remove files under our feet.
class ScratchShmDirectory {
 public:
  ScratchShmDirectory() {
    char pattern[] = "/dev/shm/plasma-arena-test-XXXXXX";
    if (mkdtemp(pattern) != nullptr) path_ = pattern;
  }
  ~ScratchShmDirectory() {
    if (!path_.empty()) rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sends fd to a child process over a Unix socket (SCM_RIGHTS, as the store
// does), where it is mapped like a client would; the child checks the
// parent's pattern and writes its own. Returns the child's exit status.
int MapInAChildProcess(int fd, uint64_t size) {
  int sockets[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    close(sockets[0]);
    char byte;
    iovec data = {&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr message = {};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    if (recvmsg(sockets[1], &message, 0) != 1) _exit(10);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (header == nullptr || header->cmsg_type != SCM_RIGHTS) _exit(11);
    int received;
    std::memcpy(&received, CMSG_DATA(header), sizeof(int));
    void* mapped = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, received, 0);
    if (mapped == MAP_FAILED) _exit(12);
    auto* bytes = static_cast<uint8_t*>(mapped);
    if (bytes[0] != 0x5a || bytes[size - 1] != 0xa5) _exit(13);
    bytes[1] = 0x42;
    bytes[size - 2] = 0x24;
    _exit(0);
  }
  close(sockets[1]);
  if (child < 0) {
    close(sockets[0]);
    return -1;
  }
  char byte = 0;
  iovec data = {&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message = {};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  sendmsg(sockets[0], &message, 0);
  close(sockets[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ExpectSharedWithAnotherProcess(const SharedMemoryArena& arena) {
  uint8_t* base = arena.base();
  base[0] = 0x5a;
  base[arena.size() - 1] = 0xa5;
  ASSERT_EQ(MapInAChildProcess(arena.fd(), arena.size()), 0);
  EXPECT_EQ(base[1], 0x42);
  EXPECT_EQ(base[arena.size() - 2], 0x24);

  // And a second mapping in this process sees the same bytes both ways.
  void* second = mmap(nullptr, arena.size(), PROT_READ | PROT_WRITE, MAP_SHARED, arena.fd(), 0);
  ASSERT_NE(second, MAP_FAILED);
  auto* again = static_cast<uint8_t*>(second);
  EXPECT_EQ(again[0], 0x5a);
  again[2] = 0x77;
  EXPECT_EQ(base[2], 0x77);
  munmap(second, arena.size());
}

TEST(SharedMemoryArena, FileInDevShmIsUnlinkedAndShared) {
  ScratchShmDirectory directory;
  ASSERT_FALSE(directory.path().empty());
  auto arena = SharedMemoryArena::Create({kMiB, directory.path(), false});
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  EXPECT_EQ((*arena)->size(), kMiB);
  EXPECT_TRUE(EntriesIn(directory.path()).empty()) << "the arena file was left behind";
  EXPECT_NE((*arena)->location().find(directory.path() + "/plasma"), std::string::npos);
  EXPECT_TRUE(fcntl((*arena)->fd(), F_GETFD) & FD_CLOEXEC);
  ExpectSharedWithAnotherProcess(**arena);
}

TEST(SharedMemoryArena, MemfdIsSharedAndCannotBeResized) {
  auto arena = SharedMemoryArena::Create({kMiB, "", false});
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  EXPECT_EQ((*arena)->location(), "memfd");
  ExpectSharedWithAnotherProcess(**arena);
  // A client shrinking the fd it was sent would kill the store with SIGBUS.
  EXPECT_NE(ftruncate((*arena)->fd(), 0), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate((*arena)->fd(), 2 * kMiB), 0);
  EXPECT_EQ((*arena)->base()[0], 0x5a);
}

TEST(SharedMemoryArena, SizeIsRoundedUpToThePageSize) {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  for (uint64_t capacity : {uint64_t(1), page - 1, page, page + 1, 10 * page + 3}) {
    auto arena = SharedMemoryArena::Create({capacity, "", false});
    ASSERT_TRUE(arena.ok()) << arena.status().ToString();
    EXPECT_EQ((*arena)->size(), (capacity + page - 1) / page * page) << capacity;
    (*arena)->base()[(*arena)->size() - 1] = 1;  // the whole rounded size is usable
  }
}

TEST(SharedMemoryArena, PagesFaultInLazily) {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  const uint64_t size = 256 * kMiB;
  auto arena = SharedMemoryArena::Create({size, "", false});
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  std::vector<unsigned char> resident(size / page);
  ASSERT_EQ(mincore((*arena)->base(), size, resident.data()), 0);
  size_t resident_pages = 0;
  for (unsigned char flags : resident) resident_pages += flags & 1;
  EXPECT_EQ(resident_pages, 0u) << "Create touched the arena's pages";
  (*arena)->base()[5 * page] = 1;
  ASSERT_EQ(mincore((*arena)->base(), size, resident.data()), 0);
  EXPECT_TRUE(resident[5] & 1);
}

TEST(SharedMemoryArena, DestructorUnmapsAndCloses) {
  int fd;
  {
    auto arena = SharedMemoryArena::Create({kMiB, "", false});
    ASSERT_TRUE(arena.ok()) << arena.status().ToString();
    fd = (*arena)->fd();
  }
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(SharedMemoryArena, MissingDirectoryIsNamed) {
  auto missing = SharedMemoryArena::Create({kMiB, "/nonexistent/plasma-dir", false});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsIOError());
  EXPECT_TRUE(Contains(missing.status(), "/nonexistent/plasma-dir")) << missing.status().ToString();
  EXPECT_TRUE(Contains(missing.status(), std::strerror(ENOENT))) << missing.status().ToString();
}

TEST(SharedMemoryArena, DirectoryThatIsAFileIsNamed) {
  auto not_a_directory = SharedMemoryArena::Create({kMiB, "/proc/self/status", false});
  ASSERT_FALSE(not_a_directory.ok());
  EXPECT_TRUE(Contains(not_a_directory.status(), "/proc/self/status"))
      << not_a_directory.status().ToString();
}

TEST(SharedMemoryArena, AbsurdCapacityInDevShmFailsWithTheNumbers) {
  ScratchShmDirectory directory;
  ASSERT_FALSE(directory.path().empty());
  auto absurd = SharedMemoryArena::Create({kPiB, directory.path(), false});
  ASSERT_FALSE(absurd.ok());
  EXPECT_TRUE(absurd.status().IsOutOfMemory()) << absurd.status().ToString();
  EXPECT_TRUE(Contains(absurd.status(), directory.path())) << absurd.status().ToString();
  EXPECT_TRUE(Contains(absurd.status(), std::to_string(kPiB))) << absurd.status().ToString();
  EXPECT_TRUE(Contains(absurd.status(), "available")) << absurd.status().ToString();
  EXPECT_TRUE(EntriesIn(directory.path()).empty());  // nothing left behind on failure either
}

TEST(SharedMemoryArena, AbsurdCapacityInMemfdFailsCleanly) {
  auto absurd = SharedMemoryArena::Create({kPiB, "", false});
  ASSERT_FALSE(absurd.ok());
  EXPECT_TRUE(absurd.status().IsOutOfMemory()) << absurd.status().ToString();
  EXPECT_TRUE(Contains(absurd.status(), "memfd")) << absurd.status().ToString();
  EXPECT_TRUE(Contains(absurd.status(), std::to_string(kPiB))) << absurd.status().ToString();
}

TEST(SharedMemoryArena, CapacitiesBeyondAFileFailWithoutOverflow) {
  for (uint64_t capacity : {~uint64_t(0), ~uint64_t(0) - 1, uint64_t(1) << 63}) {
    for (const char* directory : {"/dev/shm", ""}) {
      auto result = SharedMemoryArena::Create({capacity, directory, false});
      ASSERT_FALSE(result.ok()) << capacity;
      EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().ToString();
    }
  }
  auto empty = SharedMemoryArena::Create({0, "/dev/shm", false});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST(SharedMemoryArena, HugePagesOutsideHugetlbfsFailClearly) {
  auto not_huge = SharedMemoryArena::Create({kMiB, "/dev/shm", true});
  ASSERT_FALSE(not_huge.ok());
  EXPECT_EQ(not_huge.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(not_huge.status(), "/dev/shm")) << not_huge.status().ToString();
  EXPECT_TRUE(Contains(not_huge.status(), "hugetlbfs")) << not_huge.status().ToString();

  auto memfd = SharedMemoryArena::Create({kMiB, "", true});
  ASSERT_FALSE(memfd.ok());
  EXPECT_TRUE(Contains(memfd.status(), "hugetlbfs")) << memfd.status().ToString();
}

// Runs only where a hugetlbfs mount with free huge pages exists.
TEST(SharedMemoryArena, HugePagesOnHugetlbfs) {
  std::string mount_point = test::HugetlbfsMount();
  struct statvfs filesystem;
  if (mount_point.empty() || statvfs(mount_point.c_str(), &filesystem) != 0) {
    GTEST_SKIP() << "no writable hugetlbfs mount";
  }
  auto arena = SharedMemoryArena::Create({1, mount_point, true});
  if (!arena.ok() && Contains(arena.status(), "huge pages reserved")) {
    GTEST_SKIP() << arena.status().ToString();
  }
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  EXPECT_EQ((*arena)->size(), uint64_t(filesystem.f_bsize));  // one whole huge page
  ExpectSharedWithAnotherProcess(**arena);
}

}  // namespace
}  // namespace plasma
