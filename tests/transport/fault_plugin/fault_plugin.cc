// libplasma-transport-fault.so: a transport plugin for tests that wraps a
// real one (PLASMA_FAULT_INNER, default socket) and injects the faults that
// PLASMA_FAULT / PLASMA_FAULT_FILE describe (see rules.h and
// docs/transport-abi.md). This file holds the exported table and the C entry
// points: handle checks, the exception barrier, the rule decision for each
// call, and forwarding to the inner plugin.
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <new>

#include "tests/transport/fault_plugin/context.h"
#include "transport/plasma_transport.h"

namespace plasma_fault {
namespace {

template <typename Body>
int Guard(Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return PLASMA_TP_ERR_NO_MEMORY;
  } catch (...) {
    return PLASMA_TP_ERR_INTERNAL;
  }
}

Context* Ctx(plasma_tp_context_t ctx) { return reinterpret_cast<Context*>(ctx); }

Conn* LookupConn(Context* ctx, plasma_tp_conn_t handle) {
  auto* conn = reinterpret_cast<Conn*>(handle);
  return ctx->conns.count(conn) != 0 ? conn : nullptr;
}

Request* LookupRequest(Context* ctx, plasma_tp_request_t handle) {
  auto* req = reinterpret_cast<Request*>(handle);
  return ctx->requests.count(req) != 0 ? req : nullptr;
}

plasma_tp_request_t Handle(Request* req) { return reinterpret_cast<plasma_tp_request_t>(req); }
plasma_tp_conn_t Handle(Conn* conn) { return reinterpret_cast<plasma_tp_conn_t>(conn); }

void LogClose(Context* ctx, Op op) {
  ctx->logger.Log(PLASMA_TP_LOG_WARN, "closed a connection under the host's feet at %s",
                  OpName(op));
}

const char* FaultStrerror(int status) { return plasma_tp_default_strerror(status); }

int FaultInit(const plasma_tp_init_params_t* params, plasma_tp_context_t* out_ctx) {
  if (params == nullptr || out_ctx == nullptr ||
      params->struct_size < PLASMA_TP_INIT_PARAMS_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return Guard([&]() -> int {
    auto ctx = std::make_unique<Context>();
    ctx->logger.fn = params->log;
    ctx->logger.user_data = params->log_user_data;
    ctx->logger.max_level = params->max_log_level;
    if (!ctx->injector.Init()) return PLASMA_TP_ERR_INVALID_ARGUMENT;
    Injection injection = ctx->injector.Decide(Op::kInit);
    if (injection.fired) {  // only error= applies to init
      ctx->logger.Log(PLASMA_TP_LOG_ERROR, "injected error %s at init",
                      StatusName(injection.code).c_str());
      return injection.code;
    }
    int rc = ctx->Start(params);
    if (rc != PLASMA_TP_OK) return rc;
    *out_ctx = reinterpret_cast<plasma_tp_context_t>(ctx.release());
    return PLASMA_TP_OK;
  });
}

int FaultFinalize(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    delete Ctx(ctx);
    return PLASMA_TP_OK;
  });
}

int FaultQuery(plasma_tp_context_t handle, plasma_tp_properties_t* props) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || props == nullptr || props->struct_size < PLASMA_TP_PROPERTIES_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  int rc = ctx->api().query(ctx->inner_ctx, props);
  if (rc == PLASMA_TP_OK) props->description = ctx->description.c_str();
  return rc;
}

int FaultProgress(plasma_tp_context_t handle) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    ctx->injector.ReloadIfChanged();
    Injection injection = ctx->injector.Decide(Op::kProgress);
    if (injection.fired && injection.action == Action::kError) return injection.code;
    if (injection.fired && injection.action == Action::kClose) {
      std::vector<Conn*> all(ctx->conns.begin(), ctx->conns.end());
      for (Conn* conn : all) ctx->FaultClose(conn);
      LogClose(ctx, Op::kProgress);
    }
    ctx->DrainTimer();
    ctx->pending_events += ctx->ReleaseDue();
    int rc = ctx->api().progress(ctx->inner_ctx);
    if (rc < 0) return rc;
    int poll_rc = ctx->DrainInnerPoll();
    if (poll_rc != PLASMA_TP_OK) return poll_rc;
    ctx->TestInternal();
    if (!ctx->scratch_to_free.empty()) ctx->FreeScratchLater();
    ctx->RearmTimer();
    long long events = static_cast<long long>(rc) + ctx->pending_events;
    ctx->pending_events = 0;
    return events > INT_MAX ? INT_MAX : static_cast<int>(events);
  });
}

int FaultWaitFd(plasma_tp_context_t handle, int* out_fd) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out_fd == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  if (ctx->epoll_fd < 0) return PLASMA_TP_ERR_UNSUPPORTED;
  *out_fd = ctx->epoll_fd;
  return PLASMA_TP_OK;
}

int FaultArm(plasma_tp_context_t handle) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kArm);
    if (injection.fired) return injection.code;
    if (ctx->pending_events > 0 || ctx->AnythingDue()) return PLASMA_TP_IN_PROGRESS;
    ctx->RearmTimer();
    return ctx->api().arm(ctx->inner_ctx);
  });
}

int FaultListen(plasma_tp_context_t handle, const char* bind_hint, plasma_tp_listener_t* out) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kListen);
    if (injection.fired) return injection.code;
    return ctx->api().listen(ctx->inner_ctx, bind_hint, out);
  });
}

int FaultListenerAddress(plasma_tp_context_t handle, plasma_tp_listener_t listener,
                         const void** out_addr, size_t* out_len) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return ctx->api().listener_address(ctx->inner_ctx, listener, out_addr, out_len);
}

int FaultAccept(plasma_tp_context_t handle, plasma_tp_listener_t listener, plasma_tp_conn_t* out) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    plasma_tp_conn_t inner = nullptr;
    int rc = ctx->api().accept(ctx->inner_ctx, listener, &inner);
    if (rc != PLASMA_TP_OK) return rc;
    // Rules see only accepts that produce a connection.
    Injection injection = ctx->injector.Decide(Op::kAccept);
    if (injection.fired &&
        (injection.action == Action::kError || injection.action == Action::kDrop)) {
      ctx->api().close_conn(ctx->inner_ctx, inner);
      return injection.action == Action::kError ? injection.code : PLASMA_TP_IN_PROGRESS;
    }
    Conn* conn = ctx->NewConn(inner);
    if (injection.fired && injection.action == Action::kClose) {
      ctx->FaultClose(conn);
      LogClose(ctx, Op::kAccept);
    }
    *out = Handle(conn);
    return PLASMA_TP_OK;
  });
}

int FaultCloseListener(plasma_tp_context_t handle, plasma_tp_listener_t listener) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return ctx->api().close_listener(ctx->inner_ctx, listener); });
}

int FaultConnect(plasma_tp_context_t handle, const void* addr, size_t addr_len,
                 plasma_tp_conn_t* out) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kConnect);
    if (injection.fired && injection.action == Action::kError) return injection.code;
    if (injection.fired && injection.action == Action::kFail) {
      Conn* conn = ctx->NewConn(nullptr);
      conn->dead_status = injection.code;
      *out = Handle(conn);
      return PLASMA_TP_OK;
    }
    plasma_tp_conn_t inner = nullptr;
    int rc = ctx->api().connect(ctx->inner_ctx, addr, addr_len, &inner);
    if (rc != PLASMA_TP_OK) return rc;
    Conn* conn = ctx->NewConn(inner);
    if (injection.fired && injection.action == Action::kClose) {
      ctx->FaultClose(conn);
      LogClose(ctx, Op::kConnect);
    }
    *out = Handle(conn);
    return PLASMA_TP_OK;
  });
}

int FaultConnStatus(plasma_tp_context_t handle, plasma_tp_conn_t conn_handle) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Conn* conn = LookupConn(ctx, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  if (conn->inner == nullptr) return conn->dead_status;
  return ctx->api().conn_status(ctx->inner_ctx, conn->inner);
}

int FaultCloseConn(plasma_tp_context_t handle, plasma_tp_conn_t conn_handle) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Conn* conn = LookupConn(ctx, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kCloseConn);
    if (injection.fired) return injection.code;
    return ctx->HostClose(conn);
  });
}

int FaultMemRegister(plasma_tp_context_t handle, void* addr, size_t length, uint32_t access,
                     plasma_tp_mem_t* out) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kMemRegister);
    if (injection.fired) return injection.code;
    return ctx->api().mem_register(ctx->inner_ctx, addr, length, access, out);
  });
}

int FaultMemRkey(plasma_tp_context_t handle, plasma_tp_mem_t mem, const void** out_rkey,
                 size_t* out_len) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return ctx->api().mem_rkey(ctx->inner_ctx, mem, out_rkey, out_len);
}

int FaultMemDeregister(plasma_tp_context_t handle, plasma_tp_mem_t mem) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return ctx->api().mem_deregister(ctx->inner_ctx, mem); });
}

int FaultRkeyUnpack(plasma_tp_context_t handle, plasma_tp_conn_t conn_handle, const void* packed,
                    size_t packed_len, plasma_tp_rkey_t* out) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Conn* conn = LookupConn(ctx, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kRkeyUnpack);
    if (injection.fired && injection.action == Action::kError) return injection.code;
    if (conn->inner == nullptr) return conn->dead_status;
    plasma_tp_rkey_t rkey = nullptr;
    int rc = ctx->api().rkey_unpack(ctx->inner_ctx, conn->inner, packed, packed_len, &rkey);
    if (rc != PLASMA_TP_OK) return rc;
    ctx->zombie_rkeys.erase(rkey);
    ctx->rkeys[rkey] = conn;
    if (injection.fired && injection.action == Action::kClose) {
      ctx->FaultClose(conn);
      LogClose(ctx, Op::kRkeyUnpack);
    }
    *out = rkey;
    return PLASMA_TP_OK;
  });
}

int FaultRkeyRelease(plasma_tp_context_t handle, plasma_tp_rkey_t rkey) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    if (ctx->zombie_rkeys.erase(rkey) != 0) return PLASMA_TP_OK;  // released at a fault close
    int rc = ctx->api().rkey_release(ctx->inner_ctx, rkey);
    if (rc == PLASMA_TP_OK) ctx->rkeys.erase(rkey);
    return rc;
  });
}

// What a post does once the rules have spoken and the request exists:
// forwards it, holds it, or completes it locally. Returns the post's result;
// on error the request is gone.
int Dispatch(Context* ctx, Conn* conn, Request* req, const Injection& injection, Op op) {
  if (injection.fired) {
    switch (injection.action) {
      case Action::kFail:
        ctx->Complete(req, injection.code, 0);
        if (op == Op::kSend) ctx->SendWentOut(conn, req->tag);
        return PLASMA_TP_OK;
      case Action::kDrop:  // send only (drop:recv is handled by the caller)
        ctx->Complete(req, PLASMA_TP_OK, req->length);
        ctx->SendWentOut(conn, req->tag);
        return PLASMA_TP_OK;
      case Action::kDelay:
        req->has_due = true;
        req->due = Clock::now() + std::chrono::milliseconds(injection.delay_ms);
        ctx->Hold(req);
        return PLASMA_TP_OK;
      case Action::kReorder:
        req->until_next_send = true;
        if (injection.has_delay) {
          req->has_due = true;
          req->due = Clock::now() + std::chrono::milliseconds(injection.delay_ms);
        }
        ctx->Hold(req);
        return PLASMA_TP_OK;
      case Action::kClose: {
        int rc = ctx->Forward(req);
        if (rc != PLASMA_TP_OK) ctx->Discard(req);
        ctx->FaultClose(conn);
        LogClose(ctx, op);
        return rc;
      }
      case Action::kCorrupt:
        req->corrupt_on_success = true;
        break;
      default:
        break;
    }
  }
  if (ctx->FollowsHeld(conn, req)) {  // per-tag order: queue behind the held post
    ctx->Hold(req);
    return PLASMA_TP_OK;
  }
  int rc = ctx->Forward(req);
  if (rc != PLASMA_TP_OK) {
    ctx->Discard(req);
    return rc;
  }
  if (op == Op::kSend) ctx->SendWentOut(conn, req->tag);
  return PLASMA_TP_OK;
}

int FaultSend(plasma_tp_context_t handle, plasma_tp_conn_t conn_handle, uint64_t tag,
              const void* buf, size_t length, plasma_tp_mem_t mem, plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && length > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Conn* conn = LookupConn(ctx, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kSend, true, tag);
    if (injection.fired && injection.action == Action::kError) return injection.code;
    if (conn->inner == nullptr) return conn->dead_status;
    Request* req = ctx->NewRequest(conn, PLASMA_TP_OP_SEND);
    req->tag = tag;
    req->buf = const_cast<void*>(buf);
    req->length = length;
    req->mem = mem;
    int rc = Dispatch(ctx, conn, req, injection, Op::kSend);
    if (rc == PLASMA_TP_OK) *out_req = Handle(req);
    return rc;
  });
}

// drop:recv: an internal receive posted just before the host's eats the
// next matching message into a scratch buffer and throws it away.
int PostConsumer(Context* ctx, Conn* conn, Request* host_req) {
  Request* consumer = ctx->NewRequest(conn, PLASMA_TP_OP_RECV, /*internal=*/true);
  consumer->tag = host_req->tag;
  consumer->tag_mask = host_req->tag_mask;
  consumer->length = host_req->length;
  consumer->scratch = std::malloc(host_req->length > 0 ? host_req->length : 1);
  if (consumer->scratch == nullptr) {
    ctx->Discard(consumer);
    return PLASMA_TP_ERR_NO_MEMORY;
  }
  consumer->buf = consumer->scratch;
  if ((ctx->inner_props.flags & PLASMA_TP_PROP_REGISTRATION_REQUIRED) &&
      host_req->length > ctx->inner_props.eager_threshold) {
    int rc = ctx->api().mem_register(ctx->inner_ctx, consumer->scratch, consumer->length,
                                     PLASMA_TP_ACCESS_LOCAL, &consumer->scratch_mem);
    if (rc != PLASMA_TP_OK) {
      ctx->Discard(consumer);
      return rc;
    }
    consumer->mem = consumer->scratch_mem;
  }
  int rc = ctx->Forward(consumer);
  if (rc != PLASMA_TP_OK) {
    if (consumer->scratch_mem != nullptr) {
      ctx->api().mem_deregister(ctx->inner_ctx, consumer->scratch_mem);
    }
    ctx->Discard(consumer);
    return rc;
  }
  consumer->owner = host_req;
  host_req->consumer = consumer;
  return PLASMA_TP_OK;
}

int FaultRecv(plasma_tp_context_t handle, plasma_tp_conn_t conn_handle, uint64_t tag,
              uint64_t tag_mask, void* buf, size_t capacity, plasma_tp_mem_t mem,
              plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && capacity > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Conn* conn = LookupConn(ctx, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kRecv, true, tag);
    if (injection.fired && injection.action == Action::kError) return injection.code;
    if (conn->inner == nullptr) return conn->dead_status;
    Request* req = ctx->NewRequest(conn, PLASMA_TP_OP_RECV);
    req->tag = tag;
    req->tag_mask = tag_mask;
    req->buf = buf;
    req->length = capacity;
    req->mem = mem;
    if (injection.fired && injection.action == Action::kDrop) {
      int rc = PostConsumer(ctx, conn, req);
      if (rc != PLASMA_TP_OK) {
        ctx->Discard(req);
        return rc;
      }
      rc = ctx->Forward(req);
      if (rc != PLASMA_TP_OK) {
        ctx->api().cancel(ctx->inner_ctx, req->consumer->inner);  // it completes internally
        req->consumer->owner = nullptr;
        ctx->Discard(req);
        return rc;
      }
      *out_req = Handle(req);
      return PLASMA_TP_OK;
    }
    int rc = Dispatch(ctx, conn, req, injection, Op::kRecv);
    if (rc == PLASMA_TP_OK) *out_req = Handle(req);
    return rc;
  });
}

int FaultProbe(plasma_tp_context_t handle, plasma_tp_conn_t conn_handle, uint64_t tag,
               uint64_t tag_mask, plasma_tp_completion_t* info) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Conn* conn = LookupConn(ctx, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  if (conn->inner == nullptr) return conn->dead_status;
  return ctx->api().probe(ctx->inner_ctx, conn->inner, tag, tag_mask, info);
}

int FaultRead(plasma_tp_context_t handle, plasma_tp_conn_t conn_handle, void* local_buf,
              size_t length, plasma_tp_mem_t local_mem, uint64_t remote_addr,
              plasma_tp_rkey_t rkey, plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out_req == nullptr || (local_buf == nullptr && length > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Conn* conn = LookupConn(ctx, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kRead);
    if (injection.fired && injection.action == Action::kError) return injection.code;
    if (conn->inner == nullptr) return conn->dead_status;
    if (ctx->zombie_rkeys.count(rkey) != 0) return PLASMA_TP_ERR_INVALID_ARGUMENT;
    Request* req = ctx->NewRequest(conn, PLASMA_TP_OP_READ);
    req->buf = local_buf;
    req->length = length;
    req->mem = local_mem;
    req->remote_addr = remote_addr;
    req->rkey = rkey;
    int rc = Dispatch(ctx, conn, req, injection, Op::kRead);
    if (rc == PLASMA_TP_OK) *out_req = Handle(req);
    return rc;
  });
}

int FaultTest(plasma_tp_context_t handle, plasma_tp_request_t req_handle,
              plasma_tp_completion_t* out) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = LookupRequest(ctx, req_handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    bool has_tag = req->op != PLASMA_TP_OP_READ;
    Injection injection = ctx->injector.Decide(Op::kTest, has_tag, has_tag ? req->tag : 0);
    if (injection.fired && injection.action == Action::kError) return injection.code;
    if (injection.fired && injection.action == Action::kClose && req->conn != nullptr &&
        req->conn->inner != nullptr) {
      ctx->FaultClose(req->conn);
      LogClose(ctx, Op::kTest);
    }
    if (req->state == Request::State::kForwarded) {
      if (ctx->poll_mode()) {
        int rc = ctx->DrainInnerPoll();
        if (rc != PLASMA_TP_OK) return rc;
      } else {
        plasma_tp_completion_t c{};
        int rc = ctx->api().test(ctx->inner_ctx, req->inner, &c);
        if (rc != PLASMA_TP_OK) return rc;
        ctx->Settle(req, c);
      }
    }
    if (req->state != Request::State::kDone) return PLASMA_TP_IN_PROGRESS;
    *out = req->completion;
    ctx->Release(req);
    return PLASMA_TP_OK;
  });
}

int FaultCancel(plasma_tp_context_t handle, plasma_tp_request_t req_handle) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = LookupRequest(ctx, req_handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    switch (req->state) {
      case Request::State::kDone:
        return PLASMA_TP_OK;
      case Request::State::kHeld:
        ctx->Complete(req, PLASMA_TP_ERR_CANCELED, 0);
        return PLASMA_TP_OK;
      case Request::State::kForwarded:
        if (req->consumer != nullptr && req->consumer->state == Request::State::kForwarded) {
          ctx->api().cancel(ctx->inner_ctx, req->consumer->inner);
        }
        return ctx->api().cancel(ctx->inner_ctx, req->inner);
    }
    return PLASMA_TP_ERR_INTERNAL;
  });
}

int FaultPollCompletions(plasma_tp_context_t handle, plasma_tp_request_completion_t* out,
                         size_t max, size_t* out_count) {
  Context* ctx = Ctx(handle);
  if (ctx == nullptr || out_count == nullptr || (out == nullptr && max > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return Guard([&]() -> int {
    Injection injection = ctx->injector.Decide(Op::kPoll);
    if (injection.fired) return injection.code;
    int rc = ctx->DrainInnerPoll();
    if (rc != PLASMA_TP_OK) return rc;
    size_t n = 0;
    while (n < max && !ctx->ready.empty()) {
      Request* req = ctx->ready.front();
      out[n].request = Handle(req);
      out[n].completion = req->completion;
      ctx->Release(req);
      ++n;
    }
    // Without the inner's poll_completions: test what is outstanding.
    for (auto it = ctx->forwarded.begin(); n < max && it != ctx->forwarded.end();) {
      Request* req = *it++;
      plasma_tp_completion_t c{};
      if (ctx->api().test(ctx->inner_ctx, req->inner, &c) != PLASMA_TP_OK) continue;
      ctx->Settle(req, c);
      out[n].request = Handle(req);
      out[n].completion = req->completion;
      ctx->Release(req);
      ++n;
    }
    *out_count = n;
    return PLASMA_TP_OK;
  });
}

}  // namespace
}  // namespace plasma_fault

extern "C" {

PLASMA_TP_EXPORT extern const plasma_tp_v1_t plasma_transport_v1;

const plasma_tp_v1_t plasma_transport_v1 = {
    PLASMA_TP_ABI_VERSION_1,
    sizeof(plasma_tp_v1_t),
    "fault",
    "0.1.0",
    plasma_fault::FaultStrerror,
    plasma_fault::FaultInit,
    plasma_fault::FaultFinalize,
    plasma_fault::FaultQuery,
    plasma_fault::FaultProgress,
    plasma_fault::FaultWaitFd,
    plasma_fault::FaultArm,
    plasma_fault::FaultListen,
    plasma_fault::FaultListenerAddress,
    plasma_fault::FaultAccept,
    plasma_fault::FaultCloseListener,
    plasma_fault::FaultConnect,
    plasma_fault::FaultConnStatus,
    plasma_fault::FaultCloseConn,
    plasma_fault::FaultMemRegister,
    plasma_fault::FaultMemRkey,
    plasma_fault::FaultMemDeregister,
    plasma_fault::FaultRkeyUnpack,
    plasma_fault::FaultRkeyRelease,
    plasma_fault::FaultSend,
    plasma_fault::FaultRecv,
    plasma_fault::FaultProbe,
    plasma_fault::FaultRead,
    plasma_fault::FaultTest,
    plasma_fault::FaultCancel,
    plasma_fault::FaultPollCompletions,
};

}  // extern "C"
