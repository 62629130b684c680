#include "plasma/common/event_loop.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "plasma/common/logging.h"

namespace plasma {

int64_t MonotonicMilliseconds() { return MonotonicMicroseconds() / 1000; }

int64_t MonotonicMicroseconds() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
}

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return Status::FromErrno("epoll_create1", errno);
  return std::unique_ptr<EventLoop>(new EventLoop(fd));
}

EventLoop::~EventLoop() {
  if (signal_fd_ >= 0) close(signal_fd_);
  close(epoll_fd_);
}

Status EventLoop::OnStopSignal(std::function<void(int signal_number)> callback) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  signal_fd_ = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) return Status::FromErrno("signalfd", errno);
  return Watch(signal_fd_, EPOLLIN, [this, callback](uint32_t) {
    signalfd_siginfo info;
    if (read(signal_fd_, &info, sizeof(info)) != sizeof(info)) return;
    PLASMA_LOG(kInfo) << "signal " << info.ssi_signo << " received, shutting down";
    callback(int(info.ssi_signo));
  });
}

static uint64_t PackEventData(int fd, uint32_t generation) {
  return uint64_t(generation) << 32 | uint32_t(fd);
}

Status EventLoop::Watch(int fd, uint32_t events, FdCallback callback) {
  auto it = watched_.find(fd);
  bool existing = it != watched_.end();
  uint32_t generation = next_generation_++;
  epoll_event event{};
  event.events = events;
  event.data.u64 = PackEventData(fd, generation);
  if (epoll_ctl(epoll_fd_, existing ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) != 0) {
    return Status::FromErrno("epoll_ctl(fd " + std::to_string(fd) + ")", errno);
  }
  watched_[fd] = Watched{generation, events, std::move(callback)};
  return Status::OK();
}

Status EventLoop::SetEvents(int fd, uint32_t events) {
  auto it = watched_.find(fd);
  if (it == watched_.end()) return Status::InvalidArgument("fd is not watched");
  if (it->second.events == events) return Status::OK();
  epoll_event event{};
  event.events = events;
  event.data.u64 = PackEventData(fd, it->second.generation);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0) {
    return Status::FromErrno("epoll_ctl(fd " + std::to_string(fd) + ")", errno);
  }
  it->second.events = events;
  return Status::OK();
}

void EventLoop::Unwatch(int fd) {
  if (watched_.erase(fd) > 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::AddTimer(int64_t delay_ms, TimerCallback callback) {
  TimerId id = next_timer_id_++;
  int64_t deadline = MonotonicMilliseconds() + delay_ms;
  timers_.emplace(std::make_pair(deadline, id), std::move(callback));
  timer_deadlines_[id] = deadline;
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase({it->second, id});
  timer_deadlines_.erase(it);
}

int64_t EventLoop::MillisecondsToNextTimer() const {
  if (timers_.empty()) return -1;
  int64_t wait = timers_.begin()->first.first - MonotonicMilliseconds();
  return wait < 0 ? 0 : wait;
}

void EventLoop::RunDueTimers() {
  int64_t now = MonotonicMilliseconds();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_deadlines_.erase(node.key().second);
    node.mapped()();
  }
}

void EventLoop::Run() {
  running_ = true;
  std::vector<epoll_event> events(256);
  int64_t last_event_us = 0;
  while (running_) {
    int64_t timeout = MillisecondsToNextTimer();
    bool polling = busy_poll_us_ > 0 && MonotonicMicroseconds() - last_event_us < busy_poll_us_;
    if (polling) timeout = 0;
    ++waits_;
    int n = epoll_wait(epoll_fd_, events.data(), int(events.size()),
                       timeout > INT32_MAX ? INT32_MAX : int(timeout));
    if (n < 0) {
      if (errno == EINTR) continue;
      PLASMA_LOG(kError) << "epoll_wait failed: " << strerror(errno);
      return;
    }
    if (n > 0 && busy_poll_us_ > 0) last_event_us = MonotonicMicroseconds();
    for (int i = 0; i < n && running_; ++i) {
      int fd = int(uint32_t(events[i].data.u64));
      uint32_t generation = uint32_t(events[i].data.u64 >> 32);
      auto it = watched_.find(fd);
      // The fd may have been unwatched (or reused) by an earlier callback.
      if (it == watched_.end() || it->second.generation != generation) continue;
      FdCallback callback = it->second.callback;  // copy: the callback may unwatch itself
      callback(events[i].events);
    }
    RunDueTimers();
  }
}

}  // namespace plasma
