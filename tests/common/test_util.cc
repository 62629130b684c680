#include "tests/common/test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "plasma/common/protocol.h"

extern char** environ;

namespace plasma::test {

namespace {

using Clock = std::chrono::steady_clock;

// argv/envp as the C arrays exec wants, built before fork (the child may only
// make async-signal-safe calls).
struct CStrings {
  explicit CStrings(const std::vector<std::string>& strings) : owned(strings) {
    for (auto& s : owned) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  std::vector<std::string> owned;
  std::vector<char*> pointers;
};

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

// The child side of a fork: exec or report and _exit. Async-signal-safe only.
[[noreturn]] void ExecChild(char** argv, char** envp, const char* what) {
  if (envp != nullptr) {
    execve(argv[0], argv, envp);
  } else {
    execv(argv[0], argv);
  }
  const char* reason = strerrordesc_np(errno);  // unlike strerror, no locale (async-signal-safe)
  if (reason == nullptr) reason = "exec error";
  (void)!write(2, what, strlen(what));
  (void)!write(2, reason, strlen(reason));
  (void)!write(2, "\n", 1);
  _exit(127);
}

}  // namespace

std::string StoreServerPath() {
  if (const char* env = std::getenv("PLASMA_STORE_SERVER"); env != nullptr && *env != '\0') {
    return env;
  }
  return PLASMA_STORE_SERVER_PATH;
}

// ---------------------------------------------------------------------------
// TempDir

Result<std::unique_ptr<TempDir>> TempDir::Make(const std::string& prefix) {
  std::string base = "/tmp";
  const char* tmpdir = std::getenv("TMPDIR");
  // Unix socket paths are short (108 bytes): a long TMPDIR would not do.
  if (tmpdir != nullptr && *tmpdir != '\0' && std::strlen(tmpdir) < 60) base = tmpdir;
  std::string pattern = base + "/" + prefix + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return Status::FromErrno("mkdtemp " + pattern, errno);
  }
  return std::unique_ptr<TempDir>(new TempDir(buffer.data()));
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

// ---------------------------------------------------------------------------
// StoreProcess

StoreProcess::StoreProcess(Options options) : options_(std::move(options)) {}

Result<std::unique_ptr<StoreProcess>> StoreProcess::Start(int64_t capacity,
                                                          std::vector<std::string> extra_args) {
  Options options;
  options.capacity = capacity;
  options.extra_args = std::move(extra_args);
  return Start(options);
}

Result<std::unique_ptr<StoreProcess>> StoreProcess::Start(const Options& options) {
  std::unique_ptr<StoreProcess> store(new StoreProcess(options));
  PLASMA_ASSIGN_OR_RETURN(store->dir_, TempDir::Make("plasma-store"));
  store->socket_ = store->dir_->File("store.sock");
  store->log_path_ = store->dir_->File("store.log");
  PLASMA_RETURN_NOT_OK(store->Launch());
  PLASMA_RETURN_NOT_OK(store->WaitUntilAccepting());
  return store;
}

StoreProcess::~StoreProcess() {
  (void)Stop();
  if (::testing::Test::HasFailure()) {
    std::string log = ReadLog();
    constexpr size_t kTail = 16 << 10;
    if (log.size() > kTail) log = "...\n" + log.substr(log.size() - kTail);
    std::fprintf(stderr, "---- plasma-store-server log (%s) ----\n%s---- end of store log ----\n",
                 socket_.c_str(), log.c_str());
  }
}

Status StoreProcess::Launch() {
  std::vector<std::string> args = {StoreServerPath(), "-m", std::to_string(options_.capacity),
                                   "-s", socket_};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  if (access(args[0].c_str(), X_OK) != 0) {
    return Status::FromErrno("store binary " + args[0], errno);
  }
  CStrings argv(args);
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::FromErrno("open " + log_path_, errno);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    close(log_fd);
    return Status::FromErrno("open /dev/null", errno);
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // Die with the test process, so a crashed test leaves no store running.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    ExecChild(argv.pointers.data(), nullptr, "plasma-store-server: exec failed: ");
  }
  int fork_errno = errno;
  close(log_fd);
  close(null_fd);
  if (pid < 0) return Status::FromErrno("fork", fork_errno);
  pid_ = pid;
  return Status::OK();
}

Status StoreProcess::WaitUntilAccepting() {
  auto deadline = Clock::now() + options_.start_timeout;
  while (true) {
    int status;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      return Status::IOError("plasma-store-server (" + StoreServerPath() + ") exited with " +
                             DescribeWaitStatus(status) + " before accepting connections on " +
                             socket_ + "; its output:\n" + ReadLog());
    }
    auto fd = ConnectUnixSocket(socket_);
    if (fd.ok()) {
      close(*fd);
      return Status::OK();
    }
    if (Clock::now() > deadline) {
      std::string why = fd.status().message();
      (void)Kill9();
      return Status::TimedOut("plasma-store-server did not accept connections on " + socket_ +
                              " within " + std::to_string(options_.start_timeout.count()) +
                              " ms (" + why + "); its output:\n" + ReadLog());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string StoreProcess::ReadLog() const { return ReadFileOrEmpty(log_path_); }

bool StoreProcess::Running() {
  if (pid_ < 0) return false;
  int status;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

Result<int> StoreProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ < 0) return 0;
  kill(pid_, SIGTERM);
  auto deadline = Clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0 && errno != EINTR) {
      int err = errno;
      pid_ = -1;
      return Status::FromErrno("waitpid", err);
    }
    if (Clock::now() > deadline) {
      kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  return status;
}

Status StoreProcess::Kill9() {
  if (pid_ < 0) return Status::OK();
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return Status::OK();
}

Status StoreProcess::Restart() {
  PLASMA_RETURN_NOT_OK(Stop().status());
  PLASMA_RETURN_NOT_OK(Launch());
  return WaitUntilAccepting();
}

// ---------------------------------------------------------------------------
// RunCommand

Result<CommandResult> RunCommand(const std::vector<std::string>& argv_strings,
                                 const std::string& stdin_data,
                                 const std::vector<std::string>& extra_env,
                                 std::chrono::milliseconds timeout) {
  if (argv_strings.empty()) return Status::InvalidArgument("RunCommand: empty argv");
  // The environment: ours, with extra_env's names replaced or added.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& extra : extra_env) {
      if (extra.substr(0, extra.find('=')) == name) overridden = true;
    }
    if (!overridden) env.push_back(entry);
  }
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  CStrings argv(argv_strings), envp(env);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return Status::FromErrno("pipe", errno);
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return Status::FromErrno("pipe", errno);
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    ExecChild(argv.pointers.data(), envp.pointers.data(), "exec failed: ");
  }
  int fork_errno = errno;
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(in[1]), close(out[0]), close(err[0]);
    return Status::FromErrno("fork", fork_errno);
  }

  // A child that exits without reading its stdin must not kill us with SIGPIPE.
  sigset_t pipe_signal, old_mask;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old_mask);

  CommandResult result;
  int stdin_fd = in[1];
  size_t written = 0;
  if (stdin_data.empty()) {
    close(stdin_fd);
    stdin_fd = -1;
  } else {
    fcntl(stdin_fd, F_SETFL, fcntl(stdin_fd, F_GETFL) | O_NONBLOCK);
  }
  int out_fd = out[0], err_fd = err[0];
  auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (out_fd >= 0 || err_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    int out_index = -1, err_index = -1, in_index = -1;
    if (out_fd >= 0) out_index = n, fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) err_index = n, fds[n++] = {err_fd, POLLIN, 0};
    if (stdin_fd >= 0) in_index = n, fds[n++] = {stdin_fd, POLLOUT, 0};
    int ready = poll(fds, nfds_t(n), int(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    auto drain = [](int* fd, std::string* sink) {
      char buffer[65536];
      ssize_t got = read(*fd, buffer, sizeof(buffer));
      if (got > 0) {
        sink->append(buffer, size_t(got));
      } else if (got == 0 || errno != EINTR) {
        close(*fd);
        *fd = -1;
      }
    };
    if (out_index >= 0 && fds[out_index].revents != 0) drain(&out_fd, &result.out);
    if (err_index >= 0 && fds[err_index].revents != 0) drain(&err_fd, &result.err);
    if (in_index >= 0 && fds[in_index].revents != 0) {
      ssize_t put = write(stdin_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (put > 0) written += size_t(put);
      if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
        close(stdin_fd);
        stdin_fd = -1;
      }
    }
  }
  for (int fd : {stdin_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  timespec no_wait{0, 0};
  while (sigtimedwait(&pipe_signal, nullptr, &no_wait) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  if (timed_out) {
    return Status::TimedOut(argv_strings[0] + " did not finish within " +
                            std::to_string(timeout.count()) + " ms; stderr so far:\n" + result.err);
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  return result;
}

// ---------------------------------------------------------------------------
// Small things

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void FillPattern(uint8_t* data, size_t length, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t i = 0;
  for (; i + 8 <= length; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(data + i, &x, 8);
  }
  for (; i < length; ++i) data[i] = static_cast<uint8_t>(x >> (8 * (i % 8)) ^ i);
}

std::string PatternString(size_t length, uint64_t seed) {
  std::string s(length, '\0');
  FillPattern(reinterpret_cast<uint8_t*>(s.data()), length, seed);
  return s;
}

std::string HugetlbfsMount() {
  std::ifstream mounts("/proc/mounts");
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string device, point, type;
    fields >> device >> point >> type;
    if (type == "hugetlbfs" && access(point.c_str(), W_OK) == 0) return point;
  }
  return "";
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

}  // namespace plasma::test
