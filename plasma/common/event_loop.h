// EventLoop: one epoll loop per daemon (store and manager), with millisecond timers.
// Callbacks run on the loop thread; a callback may unwatch any fd (including
// its own) or cancel any timer, and stale events for it are dropped.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "plasma/common/status.h"

namespace plasma {

class EventLoop {
 public:
  using FdCallback = std::function<void(uint32_t events)>;
  using TimerCallback = std::function<void()>;
  using TimerId = uint64_t;

  static Result<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();

  // events: EPOLLIN / EPOLLOUT (level-triggered). Watching a watched fd replaces it.
  Status Watch(int fd, uint32_t events, FdCallback callback);
  Status SetEvents(int fd, uint32_t events);
  void Unwatch(int fd);

  TimerId AddTimer(int64_t delay_ms, TimerCallback callback);
  void CancelTimer(TimerId id);

  // A daemon's shutdown: SIGTERM and SIGINT are taken from their default
  // action and delivered here, on the loop, once each; SIGPIPE is ignored
  // (a peer that vanishes is an error value, not a death).
  Status OnStopSignal(std::function<void(int signal_number)> callback);

  // After each fd event, keep polling without sleeping for this long before
  // blocking in epoll_wait again (0, the default: never). Waking an idle
  // process costs 20-60 µs on these machines, several times per fetch; a
  // loop still polling when the next message arrives skips that, at the
  // price of a busy core for up to `microseconds` after every event.
  void SetBusyPoll(int64_t microseconds) { busy_poll_us_ = microseconds > 0 ? microseconds : 0; }

  // Runs until Stop() is called (from a callback).
  void Run();
  // epoll_wait calls so far: a sleeping loop makes one per wake-up, a
  // busy-polling one many.
  uint64_t waits() const { return waits_; }
  void Stop() { running_ = false; }

 private:
  explicit EventLoop(int epoll_fd) : epoll_fd_(epoll_fd) {}
  int64_t MillisecondsToNextTimer() const;
  void RunDueTimers();

  struct Watched {
    uint32_t generation;
    uint32_t events;
    FdCallback callback;
  };
  int epoll_fd_;
  int signal_fd_ = -1;
  bool running_ = false;
  int64_t busy_poll_us_ = 0;
  uint64_t waits_ = 0;
  uint32_t next_generation_ = 1;
  std::unordered_map<int, Watched> watched_;
  // Keyed by (deadline, id): ordered by deadline, unique by id.
  std::map<std::pair<int64_t, TimerId>, TimerCallback> timers_;
  std::unordered_map<TimerId, int64_t> timer_deadlines_;
  TimerId next_timer_id_ = 1;
};

int64_t MonotonicMilliseconds();
int64_t MonotonicMicroseconds();

}  // namespace plasma
