// The per-init() state of the socket plugin: the epoll set that progress()
// drives, the logger, tunables, and registries of every live object so that
// stale or foreign handles from the host are rejected instead of followed.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "transport/plasma_transport.h"

namespace plasma_socket {

struct Connection;
struct Listener;
struct Registration;
struct RemoteKey;
struct Request;

struct Config {
  // Messages up to this size travel in one frame and are buffered if no
  // receive is posted; larger ones wait for a matching receive (rendezvous).
  uint64_t eager_threshold = 128 * 1024;
  // Per connection: buffered unexpected eager bytes above this stop reading
  // the socket until receives consume them (TCP then pushes back on the peer).
  uint64_t unexpected_limit = 64ull * 1024 * 1024;
  // No max_inflight: every post is queued (nothing limits what is on the
  // wire at once but TCP itself), so the plugin never answers ERR_AGAIN.
};

// epoll_event.data.ptr points at one of these; `kind` says which object it is.
struct PollTarget {
  enum class Kind { kConnection, kListener } kind;
  explicit PollTarget(Kind k) : kind(k) {}
};

struct Context {
  plasma_tp_log_fn log_fn = nullptr;
  void* log_user_data = nullptr;
  int max_log_level = PLASMA_TP_LOG_INFO;
  Config config;
  int epoll_fd = -1;

  std::unordered_set<Listener*> listeners;
  std::unordered_set<Connection*> connections;  // includes not yet accepted ones
  std::unordered_set<Registration*> registrations;
  std::unordered_map<uint64_t, Registration*> readable_by_key;  // REMOTE_READ only
  std::unordered_set<RemoteKey*> remote_keys;
  std::unordered_set<Request*> requests;
  // Completed requests not yet released, in completion order: what
  // poll_completions() hands out. test() takes its request out of here.
  std::list<Request*> completed;

  // Connections with queued output whose socket is not known to be full.
  std::vector<Connection*> flush_list;
  // Connections with staged input to parse without waiting for epoll
  // (after reading resumed from backpressure).
  std::vector<Connection*> rx_ready_list;

  // Things that happened (completions, new connections, state changes)
  // since progress() last returned; progress() reports and resets it.
  int events = 0;

  ~Context();

  void Log(int level, const char* format, ...) __attribute__((format(printf, 3, 4)));
  bool LogEnabled(int level) const { return log_fn != nullptr && level <= max_log_level; }

  // Adds `fd` to the epoll set (when *current_events is 0) or changes what
  // it waits for; `wanted` must not be 0.
  bool WatchFd(int fd, PollTarget* target, uint32_t wanted, uint32_t* current_events);
  void UnwatchFd(int fd, uint32_t* current_events);

  int Progress();
  int Arm() const;
};

// Reads PLASMA_TRANSPORT_SOCKET_* environment variables.
Config ConfigFromEnvironment(Context* ctx);

}  // namespace plasma_socket
