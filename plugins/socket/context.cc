#include "plugins/socket/context.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "plugins/socket/connection.h"
#include "plugins/socket/memory.h"
#include "plugins/socket/request.h"

namespace plasma_socket {

Context::~Context() {
  // Connections first: they unpin registrations and complete requests.
  while (!listeners.empty()) CloseListener(this, *listeners.begin());
  while (!connections.empty()) CloseConnection(this, *connections.begin());
  for (Registration* reg : registrations) delete reg;
  for (RemoteKey* rkey : remote_keys) delete rkey;
  for (Request* req : requests) delete req;
  if (epoll_fd >= 0) close(epoll_fd);
}

void Context::Log(int level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  char line[1024];
  va_list args;
  va_start(args, format);
  vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  log_fn(log_user_data, level, line);
}

bool Context::WatchFd(int fd, PollTarget* target, uint32_t wanted, uint32_t* current) {
  if (wanted == *current) return true;
  epoll_event ev{};
  ev.events = wanted;
  ev.data.ptr = target;
  int rc = epoll_ctl(epoll_fd, *current == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  if (rc != 0) {
    Log(PLASMA_TP_LOG_ERROR, "socket: epoll_ctl on fd %d failed: %s", fd, strerror(errno));
    return false;
  }
  *current = wanted;
  return true;
}

void Context::UnwatchFd(int fd, uint32_t* current) {
  if (*current != 0) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  *current = 0;
}

int Context::Progress() {
  // Output first: anything posted since the last call goes out now.
  std::vector<Connection*> to_flush;
  to_flush.swap(flush_list);
  for (Connection* conn : to_flush) {
    conn->in_flush_list = false;
    conn->Flush();
  }
  std::vector<Connection*> to_parse;
  to_parse.swap(rx_ready_list);
  for (Connection* conn : to_parse) {
    conn->in_rx_ready_list = false;
    conn->ProcessStagedInput();
  }

  epoll_event ready[64];
  for (int round = 0; round < 4; ++round) {
    int n = epoll_wait(epoll_fd, ready, 64, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      Log(PLASMA_TP_LOG_ERROR, "socket: epoll_wait failed: %s", strerror(errno));
      return PLASMA_TP_ERR_IO;
    }
    // Objects are only destroyed by host calls (close_*, finalize), never
    // inside progress(), so every pointer in `ready` stays valid here.
    for (int i = 0; i < n; ++i) {
      auto* target = static_cast<PollTarget*>(ready[i].data.ptr);
      if (target->kind == PollTarget::Kind::kListener) {
        static_cast<Listener*>(target)->AcceptPending();
      } else {
        static_cast<Connection*>(target)->OnPollEvents(ready[i].events);
      }
    }
    if (n < 64) break;
  }

  // Replies queued while reading (CTS, READ responses) go out in this call.
  to_flush.clear();
  to_flush.swap(flush_list);
  for (Connection* conn : to_flush) {
    conn->in_flush_list = false;
    conn->Flush();
  }

  int happened = events;
  events = 0;
  return happened;
}

int Context::Arm() const {
  if (!flush_list.empty() || !rx_ready_list.empty() || events > 0) return PLASMA_TP_IN_PROGRESS;
  return PLASMA_TP_OK;
}

namespace {

uint64_t SizeFromEnvironment(Context* ctx, const char* name, uint64_t fallback, uint64_t min,
                             uint64_t max) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < min || value > max) {
    ctx->Log(PLASMA_TP_LOG_WARN, "socket: ignoring %s=%s (want an integer in [%llu, %llu])", name,
             text, static_cast<unsigned long long>(min), static_cast<unsigned long long>(max));
    return fallback;
  }
  return value;
}

}  // namespace

Config ConfigFromEnvironment(Context* ctx) {
  Config config;
  config.eager_threshold = SizeFromEnvironment(ctx, "PLASMA_TRANSPORT_SOCKET_EAGER_THRESHOLD",
                                               config.eager_threshold, 0, 64ull << 20);
  config.unexpected_limit = SizeFromEnvironment(ctx, "PLASMA_TRANSPORT_SOCKET_UNEXPECTED_LIMIT",
                                                config.unexpected_limit, 0, 1ull << 40);
  return config;
}

}  // namespace plasma_socket
