#include "plugins/verbs/context.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "plugins/verbs/connection.h"
#include "plugins/verbs/handshake.h"
#include "plugins/verbs/memory.h"
#include "plugins/verbs/request.h"

namespace plasma_verbs {

Context::~Context() {
  // Connections first (they destroy their QPs and CQs and complete their
  // requests), then memory; the device goes last, with the members.
  while (!listeners.empty()) CloseListener(this, *listeners.begin());
  while (!connections.empty()) DestroyConnection(this, *connections.begin());
  for (Registration* reg : registrations) {
    ibv_dereg_mr(reg->mr);
    delete reg;
  }
  for (RemoteKey* rkey : remote_keys) delete rkey;
  for (Request* req : requests) delete req;
  if (wake_fd >= 0) close(wake_fd);
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
  if (epoll_ctl(epoll_fd, *current == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0) {
    Log(PLASMA_TP_LOG_ERROR, "verbs: epoll_ctl on fd %d failed: %s", fd, std::strerror(errno));
    return false;
  }
  *current = wanted;
  return true;
}

void Context::UnwatchFd(int fd, uint32_t* current) {
  if (*current != 0) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  *current = 0;
}

void Context::TakeCompletionEvents() {
  // An event only says "look": the CQs are polled anyway. Each must still be
  // taken and acknowledged, and its CQ armed again before the next sleep.
  while (armed_cqs > 0) {
    ibv_cq* cq = nullptr;
    void* cq_context = nullptr;
    if (ibv_get_cq_event(device.channel, &cq, &cq_context) != 0) break;
    auto* conn = static_cast<Connection*>(cq_context);
    if (conn->cq_armed) {
      conn->cq_armed = false;
      armed_cqs--;
    }
    conn->MarkBusy();  // polled from now on; what it finds counts itself
    if (++conn->unacked_cq_events >= 64) {
      ibv_ack_cq_events(cq, conn->unacked_cq_events);
      conn->unacked_cq_events = 0;
    }
  }
}

int Context::HandleSocketEvents() {
  epoll_event ready[64];
  int n = epoll_wait(epoll_fd, ready, 64, 0);
  if (n < 0 && errno != EINTR) {
    Log(PLASMA_TP_LOG_ERROR, "verbs: epoll_wait failed: %s", std::strerror(errno));
    return PLASMA_TP_ERR_IO;
  }
  // Objects are destroyed only by host calls or at the end of progress(),
  // so every pointer in `ready` stays valid here.
  for (int i = 0; i < n; ++i) {
    auto* target = static_cast<PollTarget*>(ready[i].data.ptr);
    switch (target->kind) {
      case PollTarget::Kind::kCompletionChannel:
        TakeCompletionEvents();
        break;
      case PollTarget::Kind::kWake: {
        uint64_t count;
        if (read(wake_fd, &count, sizeof(count)) > 0) events++;
        break;
      }
      case PollTarget::Kind::kListener:
        AcceptPending(this, static_cast<Listener*>(target->owner));
        break;
      case PollTarget::Kind::kConnection:
        static_cast<Connection*>(target->owner)->OnSocketEvent(ready[i].events);
        break;
    }
  }
  return n > 0 ? n : 0;
}

int Context::Progress() {
  // Sockets and completion events: every 32nd call, and on every call while
  // the last look found something (arm() always looks). A busy host calls
  // progress() in a tight loop; a system call each time for events that
  // are rare (set-up, a peer gone, an idle connection waking) would cost it.
  constexpr uint64_t kLookEvery = 32;
  ++progress_calls;
  if (progress_calls >= next_look) {
    int found = HandleSocketEvents();
    if (found < 0) return found;
    next_look = progress_calls + (found > 0 ? 1 : kLookEvery);
    const Clock::time_point now = Clock::now();
    if (now - last_sweep >= std::chrono::milliseconds(100)) {
      last_sweep = now;
      for (Connection* conn : connections) {
        if (conn->state != ConnState::kUp && !conn->Failed()) conn->CheckDeadline(now);
        // One that failed before the host accepted it is nobody's.
        if (conn->Failed() && conn->listener != nullptr) to_delete.push_back(conn);
      }
    }
  }
  PollBusyConnections();
  std::vector<Connection*> doomed;
  doomed.swap(to_delete);
  for (Connection* conn : doomed) {
    if (connections.count(conn) != 0) DestroyConnection(this, conn);
  }
  int happened = events;
  events = 0;
  return happened;
}

void Context::PollBusyConnections() {
  // A connection quiet for 64 calls leaves the list with its CQ armed; the
  // grace keeps a ping-pong's next message off the event path.
  for (size_t i = 0; i < busy.size();) {
    Connection* conn = busy[i];
    if (conn->state == ConnState::kUp) {
      if (conn->PollCompletions() > 0) conn->last_active_call = progress_calls;
      conn->FlushOutgoing();
      conn->FlushReads();
    }
    const bool quiet = conn->state != ConnState::kUp ||
                       (conn->Idle() && progress_calls - conn->last_active_call >= 64);
    if (quiet) {
      conn->ArmCompletions();
      // Whatever landed before the arm raises no event: one more look.
      if (conn->state != ConnState::kUp || (conn->PollCompletions() == 0 && conn->Idle())) {
        conn->busy = false;
        busy[i] = busy.back();
        busy.pop_back();
        continue;
      }
    }
    ++i;
  }
}

int Context::Arm() {
  if (events > 0 || !to_delete.empty()) return PLASMA_TP_IN_PROGRESS;
  // Sockets first: progress() may have skipped them; their fds stay in the
  // epoll set, so whatever is left makes the wait fd readable anyway.
  if (HandleSocketEvents() < 0) return PLASMA_TP_ERR_IO;
  // Idle connections are armed already; the busy ones now. Completions that
  // landed before the arm raise no event: take them now and wake the fd by
  // hand, so that sleeping stays safe.
  for (Connection* conn : busy) conn->ArmCompletions();
  for (size_t i = 0; i < busy.size(); ++i) {
    Connection* conn = busy[i];
    if (conn->state != ConnState::kUp) continue;
    conn->PollCompletions();
    conn->FlushOutgoing();
    conn->FlushReads();
  }
  if (events > 0) {
    uint64_t one = 1;
    if (write(wake_fd, &one, sizeof(one)) != sizeof(one)) return PLASMA_TP_IN_PROGRESS;
  }
  return PLASMA_TP_OK;
}

}  // namespace plasma_verbs
