#include "bench/bench_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

namespace plasma::bench {

double NowSeconds() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return double(now.tv_sec) + double(now.tv_nsec) * 1e-9;
}

Result<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                         const std::string& log_path,
                                         const std::string& wait_for_path, int timeout_ms) {
  // Everything the child needs is made before fork(): a child of a threaded
  // process (an MPI rank is one) may only make async-signal-safe calls
  // until it execs, or it can deadlock on a lock another thread held.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid == 0) {
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    execvp(args[0], args.data());
    static const char kExecFailed[] = ": exec failed\n";
    (void)!write(STDERR_FILENO, args[0], strlen(args[0]));
    (void)!write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    _exit(127);
  }
  ChildProcess child;
  child.pid_ = pid;
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    struct stat st;
    if (stat(wait_for_path.c_str(), &st) == 0) return child;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      child.pid_ = -1;
      return Status::Unavailable(argv[0] + " exited before creating " + wait_for_path +
                                 "; see " + log_path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::TimedOut(argv[0] + " did not create " + wait_for_path + " within " +
                          std::to_string(timeout_ms) + " ms; see " + log_path);
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  std::swap(pid_, other.pid_);
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 500; ++i) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

TempDir::TempDir() {
  char pattern[] = "/tmp/plasma-bench-XXXXXX";
  char* made = mkdtemp(pattern);
  path_ = made ? made : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (path_ != "/tmp") std::filesystem::remove_all(path_, ignored);
}

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) {
    if (exit_code) *exit_code = -1;
    return "";
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  int status = pclose(pipe);
  if (exit_code) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

std::map<std::string, std::string> ReadKeyValueFile(const std::string& path) {
  std::map<std::string, std::string> values;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

std::map<std::string, std::string> ListTransports(const std::string& env_prefix) {
  int code = 0;
  std::string listing =
      RunCommand(env_prefix + "'" + FindExecutable("plasma-manager") + "' --list-transports", &code);
  if (code != 0) return {{"", "plasma-manager --list-transports failed: " + listing}};
  // Blocks of "NAME  VERSION ..." or "NAME  (unusable)  PATH", then indented
  // lines; an unusable plugin's first indented line says why.
  std::map<std::string, std::string> verdicts;
  std::istringstream lines(listing);
  std::string line, name;
  bool unusable = false, reason_read = false;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] != ' ') {
      std::istringstream(line) >> name;
      unusable = line.find("(unusable)") != std::string::npos;
      reason_read = false;
      verdicts[name] = unusable ? "unusable" : "";
    } else if (unusable && !reason_read && !name.empty()) {
      auto start = line.find_first_not_of(' ');
      if (start != std::string::npos) verdicts[name] = line.substr(start);
      reason_read = true;
    }
  }
  return verdicts;
}

std::string FindExecutable(const std::string& name) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::filesystem::path sibling = std::filesystem::path(self).parent_path() / name;
    if (access(sibling.c_str(), X_OK) == 0) return sibling.string();
    sibling = std::filesystem::path(self).parent_path().parent_path() / "bin" / name;
    if (access(sibling.c_str(), X_OK) == 0) return sibling.string();
  }
  return name;  // execvp searches PATH
}

void Table::Print() const {
  std::vector<size_t> widths(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) widths[i] = columns_[i].size();
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      std::cout << (i ? "  " : "") << std::setw(int(widths[i])) << row[i];
    }
    std::cout << "\n";
  };
  print_row(columns_);
  for (const auto& row : rows_) print_row(row);
  std::cout.flush();
}

Status Table::WriteCsv(const std::string& path) const {
  std::ofstream out(path);
  if (!out) return Status::IOError("cannot write " + path);
  for (size_t i = 0; i < columns_.size(); ++i) out << (i ? "," : "") << columns_[i];
  out << "\n";
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << row[i];
    out << "\n";
  }
  return out ? Status::OK() : Status::IOError("error writing " + path);
}

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = size_t(fraction * double(values.size()));
  return values[std::min(index, values.size() - 1)];
}

double Iperf3ReceivedGBps(const std::string& json) {
  auto received = json.find("\"sum_received\"");
  if (received == std::string::npos) return 0;
  auto bps = json.find("\"bits_per_second\"", received);
  if (bps == std::string::npos) return 0;
  return std::strtod(json.c_str() + json.find(':', bps) + 1, nullptr) / 8 / 1e9;
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int unit = 0;
  while (unit < 3 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return std::to_string(bytes) + " " + units[unit];
}

std::string FormatDouble(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

std::vector<uint64_t> SizeLadder(uint64_t min, uint64_t max, unsigned factor) {
  std::vector<uint64_t> sizes;
  for (uint64_t s = min; s <= max; s *= factor) sizes.push_back(s);
  if (sizes.empty() || sizes.back() != max) sizes.push_back(max);
  return sizes;
}

}  // namespace plasma::bench
