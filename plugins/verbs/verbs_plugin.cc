// The exported ABI table of the verbs transport and the C entry points
// behind it. Each entry point validates its handles against the context's
// registries (a stale handle is an error, not a crash) and stops C++
// exceptions at the C boundary.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "plugins/verbs/config.h"
#include "plugins/verbs/connection.h"
#include "plugins/verbs/context.h"
#include "plugins/verbs/device.h"
#include "plugins/verbs/handshake.h"
#include "plugins/verbs/memory.h"
#include "plugins/verbs/request.h"
#include "transport/plasma_transport.h"

namespace plasma_verbs {
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

template <typename T, typename Handle>
T* Lookup(const std::unordered_set<T*>& registry, Handle handle) {
  T* object = reinterpret_cast<T*>(handle);
  return registry.count(object) != 0 ? object : nullptr;
}

bool ValidTag(uint64_t tag) { return (tag & ~PLASMA_TP_TAG_EXACT) == 0; }

// Registration required above the eager threshold (PLASMA_TP_PROP_REGISTRATION_REQUIRED).
bool NeedsMem(const Context* ctx, uint64_t length, plasma_tp_mem_t mem) {
  return mem == nullptr && length > ctx->config.rndv_threshold;
}

const char* VerbsStrerror(int status) { return plasma_tp_default_strerror(status); }

int VerbsInit(const plasma_tp_init_params_t* params, plasma_tp_context_t* out_ctx) {
  if (params == nullptr || out_ctx == nullptr ||
      params->struct_size < PLASMA_TP_INIT_PARAMS_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return Guard([&]() -> int {
    auto* ctx = new Context;
    ctx->log_fn = params->log;
    ctx->log_user_data = params->log_user_data;
    ctx->max_log_level = params->max_log_level;
    int rc = ConfigFromEnvironment(ctx, &ctx->config);
    const char* local_address =
        params->struct_size >= PLASMA_TP_INIT_PARAMS_SIZE_WITH_LOCAL_ADDRESS ? params->local_address
                                                                             : nullptr;
    if (rc == PLASMA_TP_OK) rc = OpenDevice(ctx, local_address, &ctx->device);
    if (rc == PLASMA_TP_OK) {
      ctx->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
      ctx->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      uint32_t watched = 0, wake_watched = 0;
      if (ctx->epoll_fd < 0 || ctx->wake_fd < 0 ||
          !ctx->WatchFd(ctx->device.channel->fd, &ctx->channel_target, EPOLLIN, &watched) ||
          !ctx->WatchFd(ctx->wake_fd, &ctx->wake_target, EPOLLIN, &wake_watched)) {
        ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: cannot set up epoll: %s", std::strerror(errno));
        rc = PLASMA_TP_ERR_IO;
      }
    }
    if (rc != PLASMA_TP_OK) {
      delete ctx;
      return rc;
    }
    const Device& device = ctx->device;
    std::snprintf(ctx->description, sizeof(ctx->description),
                  "libibverbs RC on %s port %u (%s, GID %d%s%s): eager up to %u B, RDMA READ above",
                  device.name.c_str(), device.port, device.gid_kind, device.gid_index,
                  GidIpv4(device.gid).empty() ? "" : " ", GidIpv4(device.gid).c_str(),
                  ctx->config.rndv_threshold);
    ctx->Log(PLASMA_TP_LOG_INFO, "verbs: %s", ctx->description);
    *out_ctx = reinterpret_cast<plasma_tp_context_t>(ctx);
    return PLASMA_TP_OK;
  });
}

int VerbsFinalize(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    delete Ctx(ctx);
    return PLASMA_TP_OK;
  });
}

int VerbsQuery(plasma_tp_context_t ctx, plasma_tp_properties_t* props) {
  if (ctx == nullptr || props == nullptr || props->struct_size < PLASMA_TP_PROPERTIES_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  const Config& config = Ctx(ctx)->config;
  plasma_tp_properties_t mine{};
  mine.struct_size = static_cast<uint32_t>(
      props->struct_size < sizeof(mine) ? props->struct_size : sizeof(mine));
  mine.flags = PLASMA_TP_PROP_NATIVE_READ | PLASMA_TP_PROP_REGISTRATION_REQUIRED |
               PLASMA_TP_PROP_WAIT_FD;
  mine.max_message_size = UINT64_MAX;  // above the eager limit a send is READ by the receiver
  mine.eager_threshold = config.rndv_threshold;
  mine.max_inflight = config.recv_buffers;  // credits; more posts wait inside the plugin
  mine.max_address_size = kMaxAddressBlobSize;
  mine.max_rkey_size = kPackedRkeySize;
  mine.description = Ctx(ctx)->description;
  std::memcpy(props, &mine, mine.struct_size);
  return PLASMA_TP_OK;
}

int VerbsProgress(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return Ctx(ctx)->Progress(); });
}

int VerbsWaitFd(plasma_tp_context_t ctx, int* out_fd) {
  if (ctx == nullptr || out_fd == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  *out_fd = Ctx(ctx)->epoll_fd;
  return PLASMA_TP_OK;
}

int VerbsArm(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return Ctx(ctx)->Arm(); });
}

int VerbsListen(plasma_tp_context_t ctx, const char* bind_hint, plasma_tp_listener_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Listener* listener = nullptr;
    int rc = Listen(Ctx(ctx), bind_hint, &listener);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_listener_t>(listener);
    return rc;
  });
}

int VerbsListenerAddress(plasma_tp_context_t ctx, plasma_tp_listener_t handle,
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

int VerbsAccept(plasma_tp_context_t ctx, plasma_tp_listener_t handle, plasma_tp_conn_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Listener* listener = Lookup(Ctx(ctx)->listeners, handle);
  if (listener == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Connection* conn = nullptr;
    int rc = AcceptConnection(Ctx(ctx), listener, &conn);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_conn_t>(conn);
    return rc;
  });
}

int VerbsCloseListener(plasma_tp_context_t ctx, plasma_tp_listener_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Listener* listener = Lookup(Ctx(ctx)->listeners, handle);
  if (listener == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    CloseListener(Ctx(ctx), listener);
    return PLASMA_TP_OK;
  });
}

int VerbsConnect(plasma_tp_context_t ctx, const void* addr, size_t addr_len, plasma_tp_conn_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Connection* conn = nullptr;
    int rc = Connect(Ctx(ctx), addr, addr_len, &conn);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_conn_t>(conn);
    return rc;
  });
}

int VerbsConnStatus(plasma_tp_context_t ctx, plasma_tp_conn_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->handles, handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return conn->Status();
}

int VerbsCloseConn(plasma_tp_context_t ctx, plasma_tp_conn_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->handles, handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    DestroyConnection(Ctx(ctx), conn);
    return PLASMA_TP_OK;
  });
}

int VerbsMemRegister(plasma_tp_context_t ctx, void* addr, size_t length, uint32_t access,
                     plasma_tp_mem_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Registration* reg = nullptr;
    int rc = RegisterMemory(Ctx(ctx), addr, length, access, &reg);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_mem_t>(reg);
    return rc;
  });
}

int VerbsMemRkey(plasma_tp_context_t ctx, plasma_tp_mem_t handle, const void** out_rkey,
                 size_t* out_len) {
  if (ctx == nullptr || out_rkey == nullptr || out_len == nullptr) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Registration* reg = Lookup(Ctx(ctx)->registrations, handle);
  if (reg == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return PackedRkey(reg, out_rkey, out_len);
}

int VerbsMemDeregister(plasma_tp_context_t ctx, plasma_tp_mem_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Registration* reg = Lookup(Ctx(ctx)->registrations, handle);
  if (reg == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return DeregisterMemory(Ctx(ctx), reg);
}

int VerbsRkeyUnpack(plasma_tp_context_t ctx, plasma_tp_conn_t conn_handle, const void* packed,
                    size_t packed_len, plasma_tp_rkey_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->handles, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    RemoteKey* rkey = nullptr;
    int rc = UnpackRkey(Ctx(ctx), conn, packed, packed_len, &rkey);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_rkey_t>(rkey);
    return rc;
  });
}

int VerbsRkeyRelease(plasma_tp_context_t ctx, plasma_tp_rkey_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  RemoteKey* rkey = Lookup(Ctx(ctx)->remote_keys, handle);
  if (rkey == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  ReleaseRkey(Ctx(ctx), rkey);
  return PLASMA_TP_OK;
}

// Pins `reg` for the request's lifetime (CompleteRequest unpins).
void Attach(Request* req, Registration* reg) {
  req->mem = reg;
  if (reg != nullptr) reg->pins++;
}

int VerbsSend(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, uint64_t tag,
              const void* buf, size_t length, plasma_tp_mem_t mem, plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && length > 0) || !ValidTag(tag)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->handles, conn_handle);
  if (conn == nullptr || NeedsMem(ctx, length, mem)) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    if (conn->Failed()) return conn->failure_status;
    Registration* reg = nullptr;
    int rc = CheckLocalBuffer(ctx, mem, buf, length, &reg);
    if (rc != PLASMA_TP_OK) return rc;
    Request* req = NewRequest(ctx, conn, PLASMA_TP_OP_SEND);
    req->tag = tag;
    req->result.tag = tag;
    req->buffer = const_cast<uint8_t*>(static_cast<const uint8_t*>(buf));
    req->length = length;
    Attach(req, reg);
    *out_req = reinterpret_cast<plasma_tp_request_t>(req);
    conn->QueueSend(req);
    return PLASMA_TP_OK;
  });
}

int VerbsRecv(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, uint64_t tag,
              uint64_t tag_mask, void* buf, size_t capacity, plasma_tp_mem_t mem,
              plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && capacity > 0) ||
      !ValidTag(tag) || !plasma_tp_tag_mask_valid(tag_mask)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->handles, conn_handle);
  if (conn == nullptr || NeedsMem(ctx, capacity, mem)) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Registration* reg = nullptr;
    int rc = CheckLocalBuffer(ctx, mem, buf, capacity, &reg);
    if (rc != PLASMA_TP_OK) return rc;
    // On a failed connection only messages that fully arrived are left.
    if (conn->Failed() && conn->matcher.PeekArrived(tag, tag_mask) == nullptr) {
      return conn->failure_status;
    }
    Request* req = NewRequest(ctx, conn, PLASMA_TP_OP_RECV);
    req->tag = tag;
    req->tag_mask = tag_mask;
    req->buffer = static_cast<uint8_t*>(buf);
    req->length = capacity;
    Attach(req, reg);
    *out_req = reinterpret_cast<plasma_tp_request_t>(req);
    conn->PostRecv(req);
    return PLASMA_TP_OK;
  });
}

int VerbsProbe(plasma_tp_context_t ctx, plasma_tp_conn_t conn_handle, uint64_t tag,
               uint64_t tag_mask, plasma_tp_completion_t* info) {
  if (ctx == nullptr || info == nullptr || !ValidTag(tag) || !plasma_tp_tag_mask_valid(tag_mask)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(Ctx(ctx)->handles, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  const ArrivedMessage* message = conn->matcher.PeekArrived(tag, tag_mask);
  if (message == nullptr) return conn->Failed() ? conn->failure_status : PLASMA_TP_IN_PROGRESS;
  info->status = PLASMA_TP_OK;
  info->op = PLASMA_TP_OP_RECV;
  info->tag = message->tag;
  info->length = message->length();
  return PLASMA_TP_OK;
}

int VerbsRead(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, void* local_buf,
              size_t length, plasma_tp_mem_t local_mem, uint64_t remote_addr,
              plasma_tp_rkey_t rkey_handle, plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (local_buf == nullptr && length > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->handles, conn_handle);
  RemoteKey* rkey = Lookup(ctx->remote_keys, rkey_handle);
  if (conn == nullptr || rkey == nullptr || rkey->conn != conn ||
      (length > 0 && local_mem == nullptr)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return Guard([&]() -> int {
    if (conn->Failed()) return conn->failure_status;
    Registration* reg = nullptr;
    int rc = CheckLocalBuffer(ctx, local_mem, local_buf, length, &reg);
    if (rc != PLASMA_TP_OK) return rc;
    Request* req = NewRequest(ctx, conn, PLASMA_TP_OP_READ);
    req->buffer = static_cast<uint8_t*>(local_buf);
    req->length = length;
    *out_req = reinterpret_cast<plasma_tp_request_t>(req);
    // Checked here, never by the peer's device: no READ outside the
    // registration the key describes is ever posted.
    if (!RemoteRangeInside(*rkey, remote_addr, length)) {
      CompleteRequest(req, PLASMA_TP_ERR_OUT_OF_BOUNDS, 0);
      return PLASMA_TP_OK;
    }
    Attach(req, reg);
    req->read.remote_addr = remote_addr;
    req->read.rkey = rkey->rkey;
    req->read.length = length;
    conn->QueueRead(req);
    return PLASMA_TP_OK;
  });
}

int VerbsTest(plasma_tp_context_t ctx, plasma_tp_request_t handle, plasma_tp_completion_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = Lookup(Ctx(ctx)->requests, handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return TestRequest(Ctx(ctx), req, out);
}

int VerbsCancel(plasma_tp_context_t ctx, plasma_tp_request_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = Lookup(Ctx(ctx)->requests, handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return CancelRequest(Ctx(ctx), req); });
}

int VerbsPollCompletions(plasma_tp_context_t ctx, plasma_tp_request_completion_t* out, size_t max,
                         size_t* out_count) {
  if (ctx == nullptr || out_count == nullptr || (out == nullptr && max > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  *out_count = PollCompletions(Ctx(ctx), out, max);
  return PLASMA_TP_OK;
}

}  // namespace
}  // namespace plasma_verbs

extern "C" {

PLASMA_TP_EXPORT extern const plasma_tp_v1_t plasma_transport_v1;

const plasma_tp_v1_t plasma_transport_v1 = {
    PLASMA_TP_ABI_VERSION_1,
    sizeof(plasma_tp_v1_t),
    "verbs",
    "0.1.0",
    plasma_verbs::VerbsStrerror,
    plasma_verbs::VerbsInit,
    plasma_verbs::VerbsFinalize,
    plasma_verbs::VerbsQuery,
    plasma_verbs::VerbsProgress,
    plasma_verbs::VerbsWaitFd,
    plasma_verbs::VerbsArm,
    plasma_verbs::VerbsListen,
    plasma_verbs::VerbsListenerAddress,
    plasma_verbs::VerbsAccept,
    plasma_verbs::VerbsCloseListener,
    plasma_verbs::VerbsConnect,
    plasma_verbs::VerbsConnStatus,
    plasma_verbs::VerbsCloseConn,
    plasma_verbs::VerbsMemRegister,
    plasma_verbs::VerbsMemRkey,
    plasma_verbs::VerbsMemDeregister,
    plasma_verbs::VerbsRkeyUnpack,
    plasma_verbs::VerbsRkeyRelease,
    plasma_verbs::VerbsSend,
    plasma_verbs::VerbsRecv,
    plasma_verbs::VerbsProbe,
    plasma_verbs::VerbsRead,
    plasma_verbs::VerbsTest,
    plasma_verbs::VerbsCancel,
    plasma_verbs::VerbsPollCompletions,
};

}  // extern "C"
