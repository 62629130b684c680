// Shared pieces of the benchmarks: child servers, timing, tables and CSV.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "plasma/common/status.h"

namespace plasma::bench {

double NowSeconds();

// A server process started for the benchmark; killed and reaped on destruction.
class ChildProcess {
 public:
  // Starts argv[0] with argv, stdout/stderr to log_path; waits until
  // wait_for_path exists (a Unix socket), at most timeout_ms.
  static Result<ChildProcess> Start(const std::vector<std::string>& argv,
                                    const std::string& log_path,
                                    const std::string& wait_for_path, int timeout_ms = 10000);
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A fresh private directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs command with /bin/sh, stdout and stderr together; its output. exit_code
// (if given) receives the exit status, -1 if it did not exit normally.
std::string RunCommand(const std::string& command, int* exit_code = nullptr);
// KEY=VALUE lines of a file (e.g. plasma-cluster's cluster.env).
std::map<std::string, std::string> ReadKeyValueFile(const std::string& path);

// The manager's own verdict on each transport plugin it finds (`plasma-manager
// --list-transports`, run after env_prefix, e.g. "env UCX_TLS=tcp "): name ->
// "" if it can run here, else why not. A failed listing: {"": its output}.
std::map<std::string, std::string> ListTransports(const std::string& env_prefix = "");

// Finds a sibling executable of the running benchmark (build/bin/NAME) or NAME on PATH.
std::string FindExecutable(const std::string& name);

// Prints rows as an aligned table and writes them as CSV.
class Table {
 public:
  explicit Table(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print() const;
  Status WriteCsv(const std::string& path) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// The value below which fraction (0..1) of values lie (nearest rank); 0 if none.
double Percentile(std::vector<double> values, double fraction);
// The received throughput of an `iperf3 -J` client run, GB/s; 0 if absent.
double Iperf3ReceivedGBps(const std::string& json);

std::string FormatBytes(uint64_t bytes);    // "64 KiB"
std::string FormatDouble(double value, int digits);
// Sizes 1 KiB .. max by powers of 4 (and max itself).
std::vector<uint64_t> SizeLadder(uint64_t min, uint64_t max, unsigned factor);

}  // namespace plasma::bench
