// The exported ABI table of the UCX transport and the C entry points behind
// it. Each entry point validates its handles against the context's
// registries (a stale handle is an error, not a crash) and stops C++
// exceptions at the C boundary.
#include <cstring>
#include <new>

#include "plugins/ucx/address.h"
#include "plugins/ucx/connection.h"
#include "plugins/ucx/context.h"
#include "plugins/ucx/memory.h"
#include "plugins/ucx/messages.h"
#include "plugins/ucx/remote_read.h"
#include "plugins/ucx/request.h"
#include "transport/plasma_transport.h"

namespace plasma_ucx {
namespace {

// Messages up to this go inline with their header (the manager's small
// objects); larger objects are read(). UCP's own eager/rendezvous switch
// (UCX_RNDV_THRESH) applies underneath either way.
constexpr uint64_t kEagerThreshold = 8192;

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

const char* UcxStrerror(int status) { return plasma_tp_default_strerror(status); }

int UcxInit(const plasma_tp_init_params_t* params, plasma_tp_context_t* out_ctx) {
  if (params == nullptr || out_ctx == nullptr ||
      params->struct_size < PLASMA_TP_INIT_PARAMS_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return Guard([&]() -> int {
    auto* ctx = new Context;
    ctx->log_fn = params->log;
    ctx->log_user_data = params->log_user_data;
    ctx->max_log_level = params->max_log_level;
    int rc = PLASMA_TP_OK;
    const char* local_address =
        params->struct_size >= PLASMA_TP_INIT_PARAMS_SIZE_WITH_LOCAL_ADDRESS ? params->local_address
                                                                             : nullptr;
    // UCX picks its devices from UCX_NET_DEVICES, not from an address; the
    // hint is only checked here so a typo fails at start, not at listen().
    if (local_address != nullptr && *local_address != '\0') {
      SocketAddress ignored;
      rc = ParseBindHint(ctx, local_address, &ignored);
    }
    if (rc == PLASMA_TP_OK) rc = InitUcp(ctx);
    if (rc != PLASMA_TP_OK) {
      delete ctx;
      return rc;
    }
    ctx->Log(PLASMA_TP_LOG_INFO, "ucx: %s", ctx->description.c_str());
    *out_ctx = reinterpret_cast<plasma_tp_context_t>(ctx);
    return PLASMA_TP_OK;
  });
}

int UcxFinalize(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    delete Ctx(ctx);
    return PLASMA_TP_OK;
  });
}

int UcxQuery(plasma_tp_context_t ctx, plasma_tp_properties_t* props) {
  if (ctx == nullptr || props == nullptr || props->struct_size < PLASMA_TP_PROPERTIES_MIN_SIZE) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  const bool native = Ctx(ctx)->read_choice == ReadChoice::kGet;
  plasma_tp_properties_t mine{};
  mine.struct_size = static_cast<uint32_t>(
      props->struct_size < sizeof(mine) ? props->struct_size : sizeof(mine));
  mine.flags = PLASMA_TP_PROP_WAIT_FD | (native ? uint32_t{PLASMA_TP_PROP_NATIVE_READ} : 0u);
  mine.max_message_size = UINT64_MAX;
  mine.eager_threshold = kEagerThreshold;
  mine.max_inflight = 0;  // UCP queues every post itself
  mine.max_address_size = kMaxAddressBlobSize;
  mine.max_rkey_size =
      Ctx(ctx)->PacksUcxKeys() ? kMaxPackedRkeySize : uint32_t{sizeof(PackedRkeyHeader)};
  mine.description = Ctx(ctx)->description.c_str();
  std::memcpy(props, &mine, mine.struct_size);
  return PLASMA_TP_OK;
}

int UcxProgress(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return Ctx(ctx)->Progress(); });
}

int UcxWaitFd(plasma_tp_context_t ctx, int* out_fd) {
  if (ctx == nullptr || out_fd == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  *out_fd = Ctx(ctx)->epoll_fd;
  return PLASMA_TP_OK;
}

int UcxArm(plasma_tp_context_t ctx) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return Ctx(ctx)->Arm(); });
}

int UcxListen(plasma_tp_context_t ctx, const char* bind_hint, plasma_tp_listener_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Listener* listener = nullptr;
    int rc = Listen(Ctx(ctx), bind_hint, &listener);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_listener_t>(listener);
    return rc;
  });
}

int UcxListenerAddress(plasma_tp_context_t ctx, plasma_tp_listener_t handle, const void** out_addr,
                       size_t* out_len) {
  if (ctx == nullptr || out_addr == nullptr || out_len == nullptr) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Listener* listener = Lookup(Ctx(ctx)->listeners, handle);
  if (listener == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  *out_addr = listener->address_blob.data();
  *out_len = listener->address_blob.size();
  return PLASMA_TP_OK;
}

int UcxAccept(plasma_tp_context_t ctx, plasma_tp_listener_t handle, plasma_tp_conn_t* out) {
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

int UcxCloseListener(plasma_tp_context_t ctx, plasma_tp_listener_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Listener* listener = Lookup(Ctx(ctx)->listeners, handle);
  if (listener == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    CloseListener(Ctx(ctx), listener);
    return PLASMA_TP_OK;
  });
}

int UcxConnect(plasma_tp_context_t ctx, const void* addr, size_t addr_len, plasma_tp_conn_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Connection* conn = nullptr;
    int rc = Connect(Ctx(ctx), addr, addr_len, &conn);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_conn_t>(conn);
    return rc;
  });
}

int UcxConnStatus(plasma_tp_context_t ctx, plasma_tp_conn_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->handles, handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return conn->Status();
}

int UcxCloseConn(plasma_tp_context_t ctx, plasma_tp_conn_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Connection* conn = Lookup(Ctx(ctx)->handles, handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    CloseConnection(Ctx(ctx), conn);
    return PLASMA_TP_OK;
  });
}

int UcxMemRegister(plasma_tp_context_t ctx, void* addr, size_t length, uint32_t access,
                   plasma_tp_mem_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Registration* reg = nullptr;
    int rc = RegisterMemory(Ctx(ctx), addr, length, access, &reg);
    if (rc == PLASMA_TP_OK) *out = reinterpret_cast<plasma_tp_mem_t>(reg);
    return rc;
  });
}

int UcxMemRkey(plasma_tp_context_t ctx, plasma_tp_mem_t handle, const void** out_rkey,
               size_t* out_len) {
  if (ctx == nullptr || out_rkey == nullptr || out_len == nullptr) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Registration* reg = Lookup(Ctx(ctx)->registrations, handle);
  if (reg == nullptr || reg->deregistering) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return PackedRkey(reg, out_rkey, out_len);
}

int UcxMemDeregister(plasma_tp_context_t ctx, plasma_tp_mem_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Registration* reg = Lookup(Ctx(ctx)->registrations, handle);
  if (reg == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return DeregisterMemory(Ctx(ctx), reg); });
}

int UcxRkeyUnpack(plasma_tp_context_t ctx, plasma_tp_conn_t conn_handle, const void* packed,
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

int UcxRkeyRelease(plasma_tp_context_t ctx, plasma_tp_rkey_t handle) {
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

int UcxSend(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, uint64_t tag,
            const void* buf, size_t length, plasma_tp_mem_t mem, plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && length > 0) || !ValidTag(tag)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->handles, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
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
    SubmitSend(req);
    return PLASMA_TP_OK;
  });
}

int UcxRecv(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, uint64_t tag,
            uint64_t tag_mask, void* buf, size_t capacity, plasma_tp_mem_t mem,
            plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (buf == nullptr && capacity > 0) ||
      !ValidTag(tag) || !plasma_tp_tag_mask_valid(tag_mask)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->handles, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    Registration* reg = nullptr;
    int rc = CheckLocalBuffer(ctx, mem, buf, capacity, &reg);
    if (rc != PLASMA_TP_OK) return rc;
    // On a failed connection only messages that already arrived are left.
    plasma_tp_completion_t arrived{};
    if (conn->Failed() && ProbeArrived(conn, tag, tag_mask, &arrived) != PLASMA_TP_OK) {
      return conn->failure_status;
    }
    Request* req = NewRequest(ctx, conn, PLASMA_TP_OP_RECV);
    req->tag = tag;
    req->tag_mask = tag_mask;
    req->buffer = static_cast<uint8_t*>(buf);
    req->length = capacity;
    Attach(req, reg);
    *out_req = reinterpret_cast<plasma_tp_request_t>(req);
    SubmitRecv(req);
    return PLASMA_TP_OK;
  });
}

int UcxProbe(plasma_tp_context_t ctx, plasma_tp_conn_t conn_handle, uint64_t tag,
             uint64_t tag_mask, plasma_tp_completion_t* info) {
  if (ctx == nullptr || info == nullptr || !ValidTag(tag) || !plasma_tp_tag_mask_valid(tag_mask)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(Ctx(ctx)->handles, conn_handle);
  if (conn == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int {
    int rc = ProbeArrived(conn, tag, tag_mask, info);
    if (rc == PLASMA_TP_IN_PROGRESS && conn->Failed()) return conn->failure_status;
    return rc;
  });
}

int UcxRead(plasma_tp_context_t ctx_handle, plasma_tp_conn_t conn_handle, void* local_buf,
            size_t length, plasma_tp_mem_t local_mem, uint64_t remote_addr,
            plasma_tp_rkey_t rkey_handle, plasma_tp_request_t* out_req) {
  Context* ctx = Ctx(ctx_handle);
  if (ctx == nullptr || out_req == nullptr || (local_buf == nullptr && length > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  Connection* conn = Lookup(ctx->handles, conn_handle);
  RemoteKey* rkey = Lookup(ctx->remote_keys, rkey_handle);
  if (conn == nullptr || rkey == nullptr || rkey->conn != conn) {
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
    // Checked by the reader in every mode: with ucp_get nothing else does.
    if (!RemoteRangeInside(rkey->header, remote_addr, length)) {
      CompleteRequest(req, PLASMA_TP_ERR_OUT_OF_BOUNDS, 0);
      return PLASMA_TP_OK;
    }
    if (length == 0) {
      CompleteRequest(req, PLASMA_TP_OK, 0);
      return PLASMA_TP_OK;
    }
    Attach(req, reg);
    req->remote_addr = remote_addr;
    req->rkey = rkey;
    SubmitRead(req);
    return PLASMA_TP_OK;
  });
}

int UcxTest(plasma_tp_context_t ctx, plasma_tp_request_t handle, plasma_tp_completion_t* out) {
  if (ctx == nullptr || out == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = Lookup(Ctx(ctx)->requests, handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return TestRequest(Ctx(ctx), req, out);
}

int UcxCancel(plasma_tp_context_t ctx, plasma_tp_request_t handle) {
  if (ctx == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  Request* req = Lookup(Ctx(ctx)->requests, handle);
  if (req == nullptr) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  return Guard([&]() -> int { return CancelRequest(Ctx(ctx), req); });
}

int UcxPollCompletions(plasma_tp_context_t ctx, plasma_tp_request_completion_t* out, size_t max,
                       size_t* out_count) {
  if (ctx == nullptr || out_count == nullptr || (out == nullptr && max > 0)) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  *out_count = PollCompletions(Ctx(ctx), out, max);
  return PLASMA_TP_OK;
}

}  // namespace
}  // namespace plasma_ucx

extern "C" {

PLASMA_TP_EXPORT extern const plasma_tp_v1_t plasma_transport_v1;

const plasma_tp_v1_t plasma_transport_v1 = {
    PLASMA_TP_ABI_VERSION_1,
    sizeof(plasma_tp_v1_t),
    "ucx",
    "0.1.0",
    plasma_ucx::UcxStrerror,
    plasma_ucx::UcxInit,
    plasma_ucx::UcxFinalize,
    plasma_ucx::UcxQuery,
    plasma_ucx::UcxProgress,
    plasma_ucx::UcxWaitFd,
    plasma_ucx::UcxArm,
    plasma_ucx::UcxListen,
    plasma_ucx::UcxListenerAddress,
    plasma_ucx::UcxAccept,
    plasma_ucx::UcxCloseListener,
    plasma_ucx::UcxConnect,
    plasma_ucx::UcxConnStatus,
    plasma_ucx::UcxCloseConn,
    plasma_ucx::UcxMemRegister,
    plasma_ucx::UcxMemRkey,
    plasma_ucx::UcxMemDeregister,
    plasma_ucx::UcxRkeyUnpack,
    plasma_ucx::UcxRkeyRelease,
    plasma_ucx::UcxSend,
    plasma_ucx::UcxRecv,
    plasma_ucx::UcxProbe,
    plasma_ucx::UcxRead,
    plasma_ucx::UcxTest,
    plasma_ucx::UcxCancel,
    plasma_ucx::UcxPollCompletions,
};

}  // extern "C"
