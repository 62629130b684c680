// The exported ABI table of the socket transport and the C entry points
// behind it. Each entry point validates its handles against the context's
// registries (a stale handle is an error, not a crash) and stops C++
// exceptions at the C boundary.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "plugins/socket/address.h"
#include "plugins/socket/connection.h"
#include "plugins/socket/context.h"
#include "plugins/socket/memory.h"
#include "plugins/socket/read_emulation.h"
#include "plugins/socket/request.h"
#include "plugins/socket/tagged_messages.h"
#include "transport/plasma_transport.h"

namespace plasma_socket {
namespace {

constexpr const char* kDescription = "TCP sockets (epoll; READ emulated by the peer's plugin)";

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

template <typename T, typename Handle>
T* Lookup(const std::unordered_set<T*>& registry, Handle handle) {
  T* object = reinterpret_cast<T*>(handle);
  return registry.count(object) != 0 ? object : nullptr;
}

// Common check for send/recv/read: a live connection. There is no limit on
// posts: everything is queued (ERR_AGAIN is never returned).
int CheckPostable(Connection* conn) {
  if (conn->Failed()) return conn->failure_status;
  return PLASMA_TP_OK;
}

const char* SocketStrerror(int status) { return plasma_tp_default_strerror(status); }

int SocketInit(const plasma_tp_init_params_t* params, plasma_tp_context_t* out_ctx) {
  if (params == nullptr || out_ctx == nullptr ||
      params->struct_size < PLASMA_TP_INIT_PARAMS_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return Guard([&]() -> int {
    auto* ctx = new Context;
    ctx->log_fn = params->log;
    ctx->log_user_data = params->log_user_data;
    ctx->max_log_level = params->max_log_level;
    ctx->config = ConfigFromEnvironment(ctx);
    // The bind hint listen() will get. TCP needs no device chosen up front,
    // so it is only checked, to fail early on a typo.
    if (params->struct_size >= PLASMA_TP_INIT_PARAMS_SIZE_WITH_LOCAL_ADDRESS &&
        params->local_address != nullptr && *params->local_address != '\0') {
      int rc = ValidateBindHint(ctx, params->local_address);
      if (rc != PLASMA_TP_OK) {
        delete ctx;
        return rc;
      }
    }
    ctx->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (ctx->epoll_fd < 0) {
      ctx->Log(PLASMA_TP_LOG_ERROR, "socket: epoll_create1 failed: %s", strerror(errno));
      delete ctx;
      return PLASMA_TP_ERR_IO;
    }
    *out_ctx = reinterpret_cast<plasma_tp_context_t>(ctx);
    return PLASMA_TP_OK;
  });
}

int SocketFinalize(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    delete Ctx(ctx);
    return PLASMA_TP_OK;
  });
}

int SocketQuery(plasma_tp_context_t ctx, plasma_tp_properties_t* props) {
  if (ctx == nullptr || props == nullptr || props->struct_size < PLASMA_TP_PROPERTIES_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  const Config& config = Ctx(ctx)->config;
  plasma_tp_properties_t mine{};
  mine.struct_size = static_cast<uint32_t>(
      props->struct_size < sizeof(mine) ? props->struct_size : sizeof(mine));
  mine.flags = PLASMA_TP_PROP_WAIT_FD;
  mine.max_message_size = UINT64_MAX;
  mine.eager_threshold = config.eager_threshold;
  mine.max_inflight = 0;  // no limit on the wire; posts queue inside the plugin
  mine.max_address_size = kMaxAddressBlobSize;
  mine.max_rkey_size = kPackedRkeySize;
  mine.description = kDescription;
  std::memcpy(props, &mine, mine.struct_size);
  return PLASMA_TP_OK;
}

int SocketProgress(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return Ctx(ctx)->Progress(); });
}

int SocketWaitFd(plasma_tp_context_t ctx, int* out_fd) {
  if (ctx == nullptr || out_fd == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  *out_fd = Ctx(ctx)->epoll_fd;
  return PLASMA_TP_OK;
}

int SocketArm(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Ctx(ctx)->Arm();
}

int SocketListen(plasma_tp_context_t ctx, const char* bind_hint, plasma_tp_listener_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Listener* listener = nullptr;
    int rc = Listen(Ctx(ctx), bind_hint, &listener);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_listener_t>(listener);
    return rc;
  });
}

int SocketListenerAddress(plasma_tp_context_t ctx, plasma_tp_listener_t handle,
                          const void** out_addr, size_t* out_len) {
  if (ctx == nullptr || out_addr == nullptr || out_len == nullptr) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Listener* listener = Lookup(Ctx(ctx)->listeners, handle);
  if (listener == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  *out_addr = listener->address_blob.data();
  *out_len = listener->address_blob.size();
  return PLASMA_TP_OK;
}

int SocketAccept(plasma_tp_context_t ctx, plasma_tp_listener_t handle, plasma_tp_conn_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Listener* listener = Lookup(Ctx(ctx)->listeners, handle);
  if (listener == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = nullptr;
  int rc = AcceptConnection(Ctx(ctx), listener, &conn);
  if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_conn_t>(conn);
  return rc;
}

int SocketCloseListener(plasma_tp_context_t ctx, plasma_tp_listener_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Listener* listener = Lookup(Ctx(ctx)->listeners, handle);
  if (listener == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    CloseListener(Ctx(ctx), listener);
    return PLASMA_TP_OK;
  });
}

int SocketConnect(plasma_tp_context_t ctx, const void* addr, size_t addr_len,
                  plasma_tp_conn_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Connection* conn = nullptr;
    int rc = Connect(Ctx(ctx), addr, addr_len, &conn);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_conn_t>(conn);
    return rc;
  });
}

int SocketConnStatus(plasma_tp_context_t ctx, plasma_tp_conn_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->connections, handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return conn->Status();
}

int SocketCloseConn(plasma_tp_context_t ctx, plasma_tp_conn_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->connections, handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    CloseConnection(Ctx(ctx), conn);
    return PLASMA_TP_OK;
  });
}

int SocketMemRegister(plasma_tp_context_t ctx, void* addr, size_t length, uint32_t access,
                      plasma_tp_mem_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Registration* reg = nullptr;
    int rc = RegisterMemory(Ctx(ctx), addr, length, access, &reg);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_mem_t>(reg);
    return rc;
  });
}

int SocketMemRkey(plasma_tp_context_t ctx, plasma_tp_mem_t handle, const void** out_rkey,
                  size_t* out_len) {
  if (ctx == nullptr || out_rkey == nullptr || out_len == nullptr) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Registration* reg = Lookup(Ctx(ctx)->registrations, handle);
  if (reg == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return PackedRkey(reg, out_rkey, out_len);
}

int SocketMemDeregister(plasma_tp_context_t ctx, plasma_tp_mem_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Registration* reg = Lookup(Ctx(ctx)->registrations, handle);
  if (reg == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return DeregisterMemory(Ctx(ctx), reg);
}

int SocketRkeyUnpack(plasma_tp_context_t ctx, plasma_tp_conn_t conn_handle, const void* packed,
                     size_t packed_len, plasma_tp_rkey_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->connections, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    RemoteKey* rkey = nullptr;
    int rc = UnpackRkey(Ctx(ctx), conn, packed, packed_len, &rkey);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_rkey_t>(rkey);
    return rc;
  });
}

int SocketRkeyRelease(plasma_tp_context_t ctx, plasma_tp_rkey_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  RemoteKey* rkey = Lookup(Ctx(ctx)->remote_keys, handle);
  if (rkey == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  ReleaseRkey(Ctx(ctx), rkey);
  return PLASMA_TP_OK;
}

int SocketSend(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, uint64_t tag,
               const void* buf, size_t length, plasma_tp_mem_t mem,
               plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && length > 0) || !ValidTag(tag)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->connections, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    int rc = CheckPostable(conn);
    if (rc == PLASMA_TP_OK) rc = CheckLocalBuffer(ctx, mem, buf, length);
    if (rc != PLASMA_TP_OK) return rc;
    Request* req = NewRequest(ctx, conn, PLASMA_TP_OP_SEND);
    req->tag = tag;
    req->result.tag = tag;
    req->buffer = const_cast<uint8_t*>(static_cast<const uint8_t*>(buf));
    req->length = length;
    PostSend(conn, req);
    *out_req = reinterpret_cast<plasma_tp_request_t>(req);
    return PLASMA_TP_OK;
  });
}

int SocketRecv(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, uint64_t tag,
               uint64_t tag_mask, void* buf, size_t capacity, plasma_tp_mem_t mem,
               plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && capacity > 0) ||
      !ValidTag(tag) || !ValidTagMask(tag_mask)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->connections, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    int rc = CheckLocalBuffer(ctx, mem, buf, capacity);
    if (rc != PLASMA_TP_OK) return rc;
    if (conn->Failed()) {
      // Messages that fully arrived before the failure are still delivered.
      UnexpectedMessage* msg = nullptr;
      if (ProbeUnexpected(conn, tag, tag_mask, &msg) != PLASMA_TP_OK) return conn->failure_status;
    } else if ((rc = CheckPostable(conn)) != PLASMA_TP_OK) {
      return rc;
    }
    Request* req = NewRequest(ctx, conn, PLASMA_TP_OP_RECV);
    req->tag = tag;
    req->tag_mask = tag_mask;
    req->buffer = static_cast<uint8_t*>(buf);
    req->length = capacity;
    PostRecv(conn, req);
    *out_req = reinterpret_cast<plasma_tp_request_t>(req);
    return PLASMA_TP_OK;
  });
}

int SocketProbe(plasma_tp_context_t ctx, plasma_tp_conn_t conn_handle, uint64_t tag,
                uint64_t tag_mask, plasma_tp_completion_t* info) {
  if (ctx == nullptr || info == nullptr || !ValidTag(tag) || !ValidTagMask(tag_mask)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(Ctx(ctx)->connections, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  UnexpectedMessage* msg = nullptr;
  int rc = ProbeUnexpected(conn, tag, tag_mask, &msg);
  if (rc != PLASMA_TP_OK) return conn->Failed() ? conn->failure_status : rc;
  info->status = PLASMA_TP_OK;
  info->op = PLASMA_TP_OP_RECV;
  info->tag = msg->tag;
  info->length = msg->length;
  return PLASMA_TP_OK;
}

int SocketRead(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, void* local_buf,
               size_t length, plasma_tp_mem_t local_mem, uint64_t remote_addr,
               plasma_tp_rkey_t rkey_handle, plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (local_buf == nullptr && length > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->connections, conn_handle);
  RemoteKey* rkey = Lookup(ctx->remote_keys, rkey_handle);
  if (conn == nullptr || rkey == nullptr || rkey->conn != conn) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return Guard([&]() -> int {
    int rc = CheckPostable(conn);
    if (rc == PLASMA_TP_OK) rc = CheckLocalBuffer(ctx, local_mem, local_buf, length);
    if (rc != PLASMA_TP_OK) return rc;
    Request* req = NewRequest(ctx, conn, PLASMA_TP_OP_READ);
    req->buffer = static_cast<uint8_t*>(local_buf);
    req->length = length;
    PostRead(conn, req, remote_addr, rkey);
    *out_req = reinterpret_cast<plasma_tp_request_t>(req);
    return PLASMA_TP_OK;
  });
}

int SocketTest(plasma_tp_context_t ctx, plasma_tp_request_t handle, plasma_tp_completion_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = Lookup(Ctx(ctx)->requests, handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return TestRequest(Ctx(ctx), req, out);
}

int SocketCancel(plasma_tp_context_t ctx, plasma_tp_request_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = Lookup(Ctx(ctx)->requests, handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return CancelRequest(Ctx(ctx), req); });
}

int SocketPollCompletions(plasma_tp_context_t ctx, plasma_tp_request_completion_t* out,
                          size_t max, size_t* out_count) {
  if (ctx == nullptr || out_count == nullptr || (out == nullptr && max > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  *out_count = PollCompletions(Ctx(ctx), out, max);
  return PLASMA_TP_OK;
}

}  // namespace
}  // namespace plasma_socket

extern "C" {

PLASMA_TP_EXPORT extern const plasma_tp_v1_t plasma_transport_v1;

const plasma_tp_v1_t plasma_transport_v1 = {
    PLASMA_TP_ABI_VERSION_1,
    sizeof(plasma_tp_v1_t),
    "socket",
    "0.2.0",
    plasma_socket::SocketStrerror,
    plasma_socket::SocketInit,
    plasma_socket::SocketFinalize,
    plasma_socket::SocketQuery,
    plasma_socket::SocketProgress,
    plasma_socket::SocketWaitFd,
    plasma_socket::SocketArm,
    plasma_socket::SocketListen,
    plasma_socket::SocketListenerAddress,
    plasma_socket::SocketAccept,
    plasma_socket::SocketCloseListener,
    plasma_socket::SocketConnect,
    plasma_socket::SocketConnStatus,
    plasma_socket::SocketCloseConn,
    plasma_socket::SocketMemRegister,
    plasma_socket::SocketMemRkey,
    plasma_socket::SocketMemDeregister,
    plasma_socket::SocketRkeyUnpack,
    plasma_socket::SocketRkeyRelease,
    plasma_socket::SocketSend,
    plasma_socket::SocketRecv,
    plasma_socket::SocketProbe,
    plasma_socket::SocketRead,
    plasma_socket::SocketTest,
    plasma_socket::SocketCancel,
    plasma_socket::SocketPollCompletions,
};

}  // extern "C"
