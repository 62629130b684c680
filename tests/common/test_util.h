// Test helpers shared by the suites that need a real store process:
// StoreProcess starts `plasma-store-server` on a private socket and owns it;
// RunCommand runs a program (e.g. the `plasma` CLI) and captures its output.
// Every wait here is bounded; nothing asserts on timing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plasma/common/status.h"

namespace plasma::test {

// The store binary: $PLASMA_STORE_SERVER if set (e.g. to run the suites
// against Arrow's own plasma-store-server), else the one this build made.
std::string StoreServerPath();

// A private directory under $TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  static Result<std::unique_ptr<TempDir>> Make(const std::string& prefix = "plasma-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// A plasma-store-server child process on a unique socket. The destructor
// stops it (SIGTERM, then SIGKILL if it lingers) and reaps it; if the running
// test failed, the store's log is printed to help explain why.
//
// The child gets PR_SET_PDEATHSIG(SIGKILL), so a crashed test binary leaves
// no store behind; note that this signal fires when the *thread* that called
// Start exits, so start stores from the test's main thread.
class StoreProcess {
 public:
  struct Options {
    int64_t capacity = 64 << 20;
    std::vector<std::string> extra_args;  // after -m and -s, e.g. {"-d", "/dev/shm"}
    std::chrono::milliseconds start_timeout{10000};
  };

  static Result<std::unique_ptr<StoreProcess>> Start(int64_t capacity,
                                                     std::vector<std::string> extra_args = {});
  static Result<std::unique_ptr<StoreProcess>> Start(const Options& options);
  ~StoreProcess();
  StoreProcess(const StoreProcess&) = delete;
  StoreProcess& operator=(const StoreProcess&) = delete;

  const std::string& socket() const { return socket_; }
  // -1 while no store runs (after Stop or Kill9, before Restart).
  pid_t pid() const { return pid_; }
  int64_t capacity() const { return options_.capacity; }
  // The child's stdout and stderr, together.
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;
  // A directory private to this store, for anything a test wants to put beside it.
  const std::string& dir() const { return dir_->path(); }

  // True while the child has not exited (reaps it if it has).
  bool Running();
  // SIGTERM, then waits (bounded); SIGKILL after the timeout. Returns the
  // waitpid status of the exit. OK if nothing was running.
  Result<int> Stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  // SIGKILL now and reap: the store gets no chance to clean up (its socket
  // file stays behind).
  Status Kill9();
  // Stops the store if it runs, then starts it again with the same socket,
  // capacity and arguments, and waits until it accepts connections.
  Status Restart();

 private:
  explicit StoreProcess(Options options);
  Status Launch();
  Status WaitUntilAccepting();

  Options options_;
  std::unique_ptr<TempDir> dir_;
  std::string socket_;
  std::string log_path_;
  pid_t pid_ = -1;
};

struct CommandResult {
  int exit_code = -1;    // WEXITSTATUS, or -1 if killed by a signal
  int term_signal = 0;   // the signal that killed it, if any
  std::string out;
  std::string err;
};

// Runs argv (argv[0] is a path) with stdin_data on its standard input and
// extra_env added to its environment ("NAME=value"); kills it after timeout.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::string& stdin_data = "",
                                 const std::vector<std::string>& extra_env = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls `condition` every few milliseconds until it holds or timeout passes.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Deterministic, position-dependent bytes, so misplaced or stale data shows.
void FillPattern(uint8_t* data, size_t length, uint64_t seed);
std::string PatternString(size_t length, uint64_t seed);

std::string ReadFileOrEmpty(const std::string& path);

// A writable hugetlbfs mount point, or "" (tests needing huge pages skip).
std::string HugetlbfsMount();

}  // namespace plasma::test

namespace plasma {
// Suites written before the namespace existed use plain plasma::StoreProcess.
using test::StoreProcess;
}  // namespace plasma
