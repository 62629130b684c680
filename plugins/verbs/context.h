// The per-init() state of the verbs plugin: the device it opened, the epoll
// set progress() drives (the completion channel, listeners' and connections'
// side-channel sockets), the logger, the tunables, and registries of every
// live object so that stale or foreign handles are rejected, not followed.
#pragma once

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <list>
#include <unordered_set>
#include <vector>

#include "plugins/verbs/config.h"
#include "plugins/verbs/device.h"
#include "transport/plasma_transport.h"

namespace plasma_verbs {

struct Connection;
struct Listener;
struct Registration;
struct RemoteKey;
struct Request;

// epoll_event.data.ptr points at one of these; `kind` says which object.
struct PollTarget {
  enum class Kind { kCompletionChannel, kWake, kListener, kConnection } kind;
  void* owner;  // the Listener or Connection
  explicit PollTarget(Kind k, void* o = nullptr) : kind(k), owner(o) {}
};

struct Context {
  plasma_tp_log_fn log_fn = nullptr;
  void* log_user_data = nullptr;
  int max_log_level = PLASMA_TP_LOG_INFO;
  Config config;
  Device device;
  int epoll_fd = -1;
  // Written by arm() when it finds work already done, so that the host's
  // sleep on the wait fd ends at once; drained by progress().
  int wake_fd = -1;
  PollTarget wake_target{PollTarget::Kind::kWake};
  PollTarget channel_target{PollTarget::Kind::kCompletionChannel};
  char description[256] = {};

  std::unordered_set<Listener*> listeners;
  // Every connection with state to drive, accepted by the host or not.
  std::unordered_set<Connection*> connections;
  // The ones the host holds a handle to (connect() or accept() gave it).
  std::unordered_set<Connection*> handles;
  std::unordered_set<Registration*> registrations;
  std::unordered_set<RemoteKey*> remote_keys;
  std::unordered_set<Request*> requests;
  // Completed requests not yet released, in completion order: what
  // poll_completions() hands out. test() takes its request out of here.
  std::list<Request*> completed;
  // Connections no host handle refers to that failed during set-up: freed
  // at the end of progress(), never while it is walking the sets.
  std::vector<Connection*> to_delete;

  // CQs armed whose event has not been taken: only then can the completion
  // channel have anything.
  uint32_t armed_cqs = 0;
  // Connections progress() polls: those with work outstanding or recent
  // traffic. An idle one leaves the list with its CQ armed, and its next
  // completion event brings it back, so a thousand quiet peers cost nothing
  // per call.
  std::vector<Connection*> busy;
  // progress() calls so far. Time in progress() is counted in calls, not
  // read from the clock on every call: a clock read is a system call on
  // some machines (an emulated guest's HPET), and a busy host makes millions.
  uint64_t progress_calls = 0;
  // The call on which the epoll set (side channels, completion channel) is
  // looked at next; the clock is read then, for the sweep below.
  uint64_t next_look = 0;
  // The last sweep of every connection (set-up deadlines, unclaimed ones).
  std::chrono::steady_clock::time_point last_sweep{};

  // Things that happened since progress() last returned (completions, new
  // connections, state changes); progress() reports and resets it.
  int events = 0;

  ~Context();

  void Log(int level, const char* format, ...) __attribute__((format(printf, 3, 4)));
  bool LogEnabled(int level) const { return log_fn != nullptr && level <= max_log_level; }

  bool WatchFd(int fd, PollTarget* target, uint32_t wanted, uint32_t* current_events);
  void UnwatchFd(int fd, uint32_t* current_events);

  int Progress();
  int Arm();

 private:
  void TakeCompletionEvents();
  void PollBusyConnections();
  int HandleSocketEvents();  // < 0: epoll failed
};

}  // namespace plasma_verbs
