#include "tests/transport/fault_plugin/context.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern "C" PLASMA_TP_EXPORT const plasma_tp_v1_t plasma_transport_v1;

namespace plasma_fault {

namespace {
constexpr size_t kPollBatch = 64;
}  // namespace

void Context::InnerLog(void* user_data, int level, const char* message) {
  auto* ctx = static_cast<Context*>(user_data);
  if (ctx == nullptr || message == nullptr) return;
  if (level == PLASMA_TP_LOG_ERROR) ctx->inner_last_error = message;
  if (ctx->logger.fn != nullptr) ctx->logger.fn(ctx->logger.user_data, level, message);
}

int Context::Start(const plasma_tp_init_params_t* params) {
  std::string error;
  if (!OpenInnerPlugin(&plasma_transport_v1, &plugin, &error)) {
    logger.Log(PLASMA_TP_LOG_ERROR, "%s", error.c_str());
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  // The host's parameters as far as both sides know them, with our logger
  // in between (it passes every line through unchanged).
  plasma_tp_init_params_t inner_params{};
  size_t size = std::min<size_t>(params->struct_size, sizeof(inner_params));
  std::memcpy(&inner_params, params, size);
  inner_params.struct_size = static_cast<uint32_t>(size);
  inner_params.log = &Context::InnerLog;
  inner_params.log_user_data = this;
  inner_last_error.clear();
  int rc = api().init(&inner_params, &inner_ctx);
  if (rc != PLASMA_TP_OK || inner_ctx == nullptr) {
    if (rc == PLASMA_TP_OK) rc = PLASMA_TP_ERR_INTERNAL;
    logger.Log(PLASMA_TP_LOG_ERROR, "inner plugin %s: init failed: %s%s%s (status %d)",
               plugin.path.c_str(), api().strerror(rc), inner_last_error.empty() ? "" : ": ",
               inner_last_error.c_str(), rc);
    inner_ctx = nullptr;
    return rc;
  }
  inner_props.struct_size = sizeof(inner_props);
  rc = api().query(inner_ctx, &inner_props);
  if (rc != PLASMA_TP_OK) {
    logger.Log(PLASMA_TP_LOG_ERROR, "inner plugin %s: query failed (status %d)",
               plugin.path.c_str(), rc);
    return rc;
  }
  description = std::string("test-only fault-injecting wrapper of: ") +
                (inner_props.description != nullptr ? inner_props.description : plugin.path);
  inner_props.description = nullptr;  // not needed again

  if (api().wait_fd(inner_ctx, &inner_wait_fd) == PLASMA_TP_OK) {
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epoll_fd < 0 || timer_fd < 0) {
      logger.Log(PLASMA_TP_LOG_ERROR, "epoll/timerfd: %s", std::strerror(errno));
      return PLASMA_TP_ERR_IO;
    }
    for (int fd : {inner_wait_fd, timer_fd}) {
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.fd = fd;
      if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        logger.Log(PLASMA_TP_LOG_ERROR, "epoll_ctl: %s", std::strerror(errno));
        return PLASMA_TP_ERR_IO;
      }
    }
  } else {
    inner_wait_fd = -1;
  }
  return PLASMA_TP_OK;
}

Context::~Context() {
  // The inner context goes first: after its finalize() it never touches
  // any buffer again, ours (scratch) included.
  if (inner_ctx != nullptr) api().finalize(inner_ctx);
  inner_ctx = nullptr;
  for (Request* req : requests) delete req;
  for (Request* req : internal) {
    std::free(req->scratch);
    delete req;
  }
  for (auto& [scratch, mem] : scratch_to_free) std::free(scratch);
  for (Conn* conn : conns) delete conn;
  if (epoll_fd >= 0) close(epoll_fd);
  if (timer_fd >= 0) close(timer_fd);
  CloseInnerPlugin(&plugin);
}

// ---- requests ------------------------------------------------------------------

Request* Context::NewRequest(Conn* conn, uint32_t op, bool is_internal) {
  auto* req = new Request;
  req->op = op;
  req->conn = conn;
  req->internal = is_internal;
  conn->requests.insert(req);
  (is_internal ? internal : requests).insert(req);
  return req;
}

int Context::Forward(Request* req) {
  Conn* conn = req->conn;
  if (conn == nullptr) return PLASMA_TP_ERR_CANCELED;
  if (conn->inner == nullptr) return conn->dead_status;
  plasma_tp_request_t handle = nullptr;
  int rc = PLASMA_TP_ERR_INTERNAL;
  switch (req->op) {
    case PLASMA_TP_OP_SEND:
      rc = api().send(inner_ctx, conn->inner, req->tag, req->buf, req->length, req->mem, &handle);
      break;
    case PLASMA_TP_OP_RECV:
      rc = api().recv(inner_ctx, conn->inner, req->tag, req->tag_mask, req->buf, req->length,
                      req->mem, &handle);
      break;
    case PLASMA_TP_OP_READ:
      rc = api().read(inner_ctx, conn->inner, req->buf, req->length, req->mem, req->remote_addr,
                      req->rkey, &handle);
      break;
  }
  if (rc != PLASMA_TP_OK) return rc;
  req->inner = handle;
  req->state = Request::State::kForwarded;
  if (poll_mode()) {
    by_inner[handle] = req;
  } else if (!req->internal) {
    req->forwarded_pos = forwarded.insert(forwarded.end(), req);
    req->on_forwarded = true;
  }
  return PLASMA_TP_OK;
}

void Context::Discard(Request* req) {
  if (req->on_held) Unhold(req);
  if (req->conn != nullptr) req->conn->requests.erase(req);
  requests.erase(req);
  internal.erase(req);
  std::free(req->scratch);
  delete req;
}

void Context::Complete(Request* req, int status, uint64_t length) {
  if (req->on_held) Unhold(req);
  if (req->conn != nullptr) req->conn->requests.erase(req);
  req->conn = nullptr;
  req->state = Request::State::kDone;
  req->completion.status = status;
  req->completion.op = req->op;
  req->completion.tag = req->op == PLASMA_TP_OP_READ ? 0 : req->tag;
  req->completion.length = length;
  ++pending_events;
  if (req->internal) {
    plasma_tp_completion_t c = req->completion;
    Settle(req, c);
    return;
  }
  req->ready_pos = ready.insert(ready.end(), req);
  req->on_ready = true;
}

bool Context::Settle(Request* req, const plasma_tp_completion_t& c) {
  if (req->inner != nullptr && poll_mode()) by_inner.erase(req->inner);
  req->inner = nullptr;
  if (req->on_forwarded) {
    forwarded.erase(req->forwarded_pos);
    req->on_forwarded = false;
  }
  if (req->conn != nullptr) req->conn->requests.erase(req);
  req->conn = nullptr;
  req->state = Request::State::kDone;
  req->completion = c;
  if (req->reset_on_cancel && c.status == PLASMA_TP_ERR_CANCELED) {
    req->completion.status = PLASMA_TP_ERR_CONNECTION_RESET;
  }
  if (req->corrupt_on_success && c.status == PLASMA_TP_OK && req->buf != nullptr) {
    // The middle byte of what arrived (a READ's length is its request's).
    uint64_t received = req->op == PLASMA_TP_OP_READ ? req->length : c.length;
    if (received > 0) static_cast<uint8_t*>(req->buf)[received / 2] ^= 0xFF;
  }
  if (!req->internal) return true;
  // A drop:recv consumer: the message it ate is thrown away.
  if (req->owner != nullptr) req->owner->consumer = nullptr;
  internal.erase(req);
  if (req->scratch_mem != nullptr) {
    if (api().mem_deregister(inner_ctx, req->scratch_mem) == PLASMA_TP_IN_PROGRESS) {
      scratch_to_free.emplace_back(req->scratch, req->scratch_mem);
      req->scratch = nullptr;
    }
  }
  std::free(req->scratch);
  delete req;
  return false;
}

void Context::Release(Request* req) {
  if (req->on_ready) {
    ready.erase(req->ready_pos);
    req->on_ready = false;
  }
  if (req->consumer != nullptr) req->consumer->owner = nullptr;
  requests.erase(req);
  delete req;
}

int Context::DrainInnerPoll() {
  if (!poll_mode()) return PLASMA_TP_OK;
  plasma_tp_request_completion_t batch[kPollBatch];
  while (true) {
    size_t count = 0;
    int rc = api().poll_completions(inner_ctx, batch, kPollBatch, &count);
    if (rc != PLASMA_TP_OK) return rc;
    for (size_t i = 0; i < count && i < kPollBatch; ++i) {
      auto found = by_inner.find(batch[i].request);
      if (found == by_inner.end()) {
        logger.Log(PLASMA_TP_LOG_WARN, "inner plugin reported a request it was never given");
        continue;
      }
      Request* req = found->second;
      if (Settle(req, batch[i].completion)) {
        req->ready_pos = ready.insert(ready.end(), req);
        req->on_ready = true;
      }
    }
    if (count < kPollBatch) return PLASMA_TP_OK;
  }
}

void Context::TestInternal() {
  if (poll_mode() || internal.empty()) return;
  std::vector<Request*> pending(internal.begin(), internal.end());
  for (Request* req : pending) {
    if (req->state != Request::State::kForwarded) continue;
    plasma_tp_completion_t c{};
    if (api().test(inner_ctx, req->inner, &c) == PLASMA_TP_OK) Settle(req, c);
  }
}

void Context::FreeScratchLater() {
  for (size_t i = 0; i < scratch_to_free.size();) {
    if (api().mem_deregister(inner_ctx, scratch_to_free[i].second) == PLASMA_TP_IN_PROGRESS) {
      ++i;
      continue;
    }
    std::free(scratch_to_free[i].first);
    scratch_to_free.erase(scratch_to_free.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

// ---- holding ---------------------------------------------------------------------

void Context::Hold(Request* req) {
  req->state = Request::State::kHeld;
  req->held_pos = req->conn->held.insert(req->conn->held.end(), req);
  req->on_held = true;
  ++held_count;
}

void Context::Unhold(Request* req) {
  if (!req->on_held) return;
  req->conn->held.erase(req->held_pos);
  req->on_held = false;
  --held_count;
}

namespace {

bool SameQueue(const Request* a, const Request* b) {
  if (a->op != b->op || a->op == PLASMA_TP_OP_READ) return false;  // READs are unordered
  return a->tag == b->tag && (a->op == PLASMA_TP_OP_SEND || a->tag_mask == b->tag_mask);
}

bool Releasable(const Request* req, Clock::time_point now) {
  if (req->until_next_send) return req->has_due && req->due <= now;
  return !req->has_due || req->due <= now;
}

}  // namespace

bool Context::FollowsHeld(Conn* conn, const Request* req) const {
  for (const Request* held : conn->held) {
    if (SameQueue(held, req)) return true;
  }
  return false;
}

int Context::ReleaseHeld(Conn* conn, Clock::time_point now, bool dry_run) {
  int released = 0;
  std::vector<const Request*> blocked;  // queues with an earlier post still held
  auto is_blocked = [&blocked](const Request* req) {
    return std::any_of(blocked.begin(), blocked.end(),
                       [req](const Request* b) { return SameQueue(b, req); });
  };
  for (auto it = conn->held.begin(); it != conn->held.end();) {
    Request* req = *it;
    auto next = std::next(it);
    if (is_blocked(req) || !Releasable(req, now)) {
      blocked.push_back(req);
      it = next;
      continue;
    }
    if (dry_run) {
      ++released;
      blocked.push_back(req);  // what follows it is not due before it goes
      it = next;
      continue;
    }
    int rc = Forward(req);
    if (rc == PLASMA_TP_ERR_AGAIN) {  // inner back-pressure: try again on the next progress
      blocked.push_back(req);
      it = next;
      continue;
    }
    Unhold(req);
    ++released;
    if (rc != PLASMA_TP_OK) Complete(req, rc, 0);
    it = next;
  }
  return released;
}

int Context::ReleaseDue() {
  if (held_count == 0) return 0;
  Clock::time_point now = Clock::now();
  int released = 0;
  std::vector<Conn*> with_held;
  for (Conn* conn : conns) {
    if (!conn->held.empty()) with_held.push_back(conn);
  }
  for (Conn* conn : with_held) released += ReleaseHeld(conn, now);
  return released;
}

bool Context::AnythingDue() {
  if (held_count == 0) return false;
  Clock::time_point now = Clock::now();
  for (Conn* conn : conns) {
    if (!conn->held.empty() && ReleaseHeld(conn, now, /*dry_run=*/true) > 0) return true;
  }
  return false;
}

void Context::SendWentOut(Conn* conn, uint64_t tag) {
  if (conn->held.empty()) return;
  bool any = false;
  for (Request* req : conn->held) {
    if (req->until_next_send && req->tag != tag) {
      req->until_next_send = false;
      req->has_due = false;
      any = true;
    }
  }
  if (any) pending_events += ReleaseHeld(conn, Clock::now());
}

// ---- connections -------------------------------------------------------------------

Conn* Context::NewConn(plasma_tp_conn_t inner) {
  auto* conn = new Conn;
  conn->inner = inner;
  conns.insert(conn);
  return conn;
}

void Context::FaultClose(Conn* conn) {
  if (conn->inner == nullptr) return;
  // The inner plugin wants a connection's rkeys released before it closes.
  for (auto it = rkeys.begin(); it != rkeys.end();) {
    if (it->second == conn) {
      api().rkey_release(inner_ctx, it->first);
      zombie_rkeys.insert(it->first);
      it = rkeys.erase(it);
    } else {
      ++it;
    }
  }
  int rc = api().close_conn(inner_ctx, conn->inner);
  if (rc != PLASMA_TP_OK) {
    logger.Log(PLASMA_TP_LOG_WARN, "inner close_conn failed (status %d)", rc);
  }
  conn->inner = nullptr;
  conn->dead_status = PLASMA_TP_ERR_CONNECTION_RESET;
  std::vector<Request*> affected(conn->requests.begin(), conn->requests.end());
  for (Request* req : affected) {
    if (req->state == Request::State::kHeld) {
      Complete(req, PLASMA_TP_ERR_CONNECTION_RESET, 0);
    } else {
      req->reset_on_cancel = true;  // the inner completes it with CANCELED
    }
  }
  ++pending_events;
}

int Context::HostClose(Conn* conn) {
  if (conn->inner != nullptr) {
    int rc = api().close_conn(inner_ctx, conn->inner);
    if (rc != PLASMA_TP_OK) return rc;
  }
  for (auto& [rkey, owner] : rkeys) {
    if (owner == conn) owner = nullptr;
  }
  std::vector<Request*> affected(conn->requests.begin(), conn->requests.end());
  for (Request* req : affected) {
    if (req->state == Request::State::kHeld) {
      Complete(req, PLASMA_TP_ERR_CANCELED, 0);
    } else {
      req->conn = nullptr;  // the inner completes it with CANCELED
    }
  }
  conns.erase(conn);
  delete conn;
  return PLASMA_TP_OK;
}

// ---- waiting ---------------------------------------------------------------------------

void Context::RearmTimer() {
  if (timer_fd < 0) return;
  Clock::time_point now = Clock::now();
  bool any = false;
  Clock::time_point earliest{};
  if (held_count > 0) {
    for (Conn* conn : conns) {
      for (Request* req : conn->held) {
        if (!req->has_due || req->due <= now) continue;
        if (!any || req->due < earliest) earliest = req->due;
        any = true;
      }
    }
  }
  itimerspec spec{};
  if (any) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(earliest.time_since_epoch())
                  .count();
    if (ns <= 0) ns = 1;
    spec.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
    spec.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  // Setting the timer also clears an expiry nobody read.
  timerfd_settime(timer_fd, any ? TFD_TIMER_ABSTIME : 0, &spec, nullptr);
}

void Context::DrainTimer() {
  if (timer_fd < 0) return;
  uint64_t expirations = 0;
  ssize_t ignored = read(timer_fd, &expirations, sizeof(expirations));
  (void)ignored;
}

}  // namespace plasma_fault
