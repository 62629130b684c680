#include "bench/mpi/process_cpu.h"

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace plasma::mpibench {

namespace {

// Clock ticks from /proc/PID/stat: 10 ms resolution, dead threads included.
double CpuSecondsFromStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // The command name (field 2) may hold spaces: count fields after its ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (index == 15) {
      stime = std::strtoull(field.c_str(), nullptr, 10);
      return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
    }
  }
  return -1;
}

}  // namespace

double ProcessCpuSeconds(pid_t pid) {
  // Nanoseconds on a CPU per live thread (/proc/PID/task/TID/schedstat):
  // a 1 KiB round takes a few ms, below the 10 ms tick of /proc/PID/stat.
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (!dir) return -1;
  double seconds = 0;
  bool any = false;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(tasks + "/" + entry->d_name + "/schedstat");
    unsigned long long on_cpu_ns = 0;
    if (in >> on_cpu_ns) {
      seconds += double(on_cpu_ns) * 1e-9;
      any = true;
    }
  }
  closedir(dir);
  return any ? seconds : CpuSecondsFromStat(pid);
}

double OwnCpuSeconds() {
  timespec now;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return double(now.tv_sec) + double(now.tv_nsec) * 1e-9;
}

pid_t PidListeningOn(const std::string& socket_path) {
  std::ifstream unix_sockets("/proc/net/unix");
  std::string line, inode;
  std::getline(unix_sockets, line);  // header
  while (std::getline(unix_sockets, line)) {
    // Num RefCount Protocol Flags Type St Inode Path
    std::istringstream words(line);
    std::string num, refs, protocol, flags, type, state, node, path;
    if (!(words >> num >> refs >> protocol >> flags >> type >> state >> node >> path)) continue;
    if (path == socket_path && state == "01") {
      inode = node;
      break;
    }
  }
  if (inode.empty()) return -1;
  const std::string wanted = "socket:[" + inode + "]";
  DIR* proc = opendir("/proc");
  if (!proc) return -1;
  pid_t found = -1;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = pid_t(std::atoi(entry->d_name));
    if (pid <= 0) continue;
    std::string fd_dir = std::string("/proc/") + entry->d_name + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* fd = readdir(fds)) {
      char target[128];
      ssize_t n = readlink((fd_dir + "/" + fd->d_name).c_str(), target, sizeof(target) - 1);
      if (n > 0 && std::string(target, size_t(n)) == wanted) {
        found = pid;
        break;
      }
    }
    closedir(fds);
    if (found > 0) break;
  }
  closedir(proc);
  return found;
}

pid_t PidFromFile(const std::string& path) {
  std::ifstream in(path);
  long pid = -1;
  if (!(in >> pid) || pid <= 0) return -1;
  return pid_t(pid);
}

}  // namespace plasma::mpibench
