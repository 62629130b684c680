#include "plugins/ucx/context.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "plugins/ucx/active_message.h"
#include "plugins/ucx/connection.h"
#include "plugins/ucx/memory.h"
#include "plugins/ucx/remote_read.h"
#include "plugins/ucx/request.h"

namespace plasma_ucx {
namespace {

// Progress passes per progress() call: enough to drain a burst, bounded so
// one call never spins on a peer that keeps sending.
constexpr int kMaxWorkerPasses = 64;

// The active-message handlers only copy the header and defer: UCP must not
// be re-entered from its own callback.
template <DeferredEvent::Kind kKind, typename Header, Header DeferredEvent::*kField>
ucs_status_t DeferHeader(void* arg, const void* header, size_t header_length, void* data,
                         size_t length, const ucp_am_recv_param_t* param) {
  (void)data;
  (void)length;
  auto* ctx = static_cast<Context*>(arg);
  DeferredEvent event{};
  event.kind = kKind;
  event.ep = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) ? param->reply_ep : nullptr;
  if (header_length != sizeof(Header) || event.ep == nullptr) {
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: dropped a malformed active message (%zu header bytes)",
             header_length);
    return UCS_OK;
  }
  std::memcpy(&(event.*kField), header, sizeof(Header));
  ctx->deferred.push_back(event);
  return UCS_OK;
}

int SetHandler(Context* ctx, uint16_t id, ucp_am_recv_callback_t cb) {
  ucp_am_handler_param_t param{};
  param.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                     UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
  param.id = id;
  param.cb = cb;
  param.arg = ctx;
  param.flags = UCP_AM_FLAG_WHOLE_MSG;
  ucs_status_t status = ucp_worker_set_am_recv_handler(ctx->worker, &param);
  if (status != UCS_OK) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: cannot set active-message handler %u: %s", id,
             ucs_status_string(status));
    return StatusFromUcs(status);
  }
  return PLASMA_TP_OK;
}

int ReadSettings(Context* ctx) {
  const char* path = std::getenv("PLASMA_UCX_READ");
  if (path == nullptr || *path == '\0' || std::strcmp(path, "send") == 0) {
    ctx->read_path = ReadPath::kServeBySend;
  } else if (std::strcmp(path, "get") == 0) {
    ctx->read_path = ReadPath::kNativeGet;
  } else {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: PLASMA_UCX_READ='%s' is neither 'send' nor 'get'", path);
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  return PLASMA_TP_OK;
}

const char* EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

}  // namespace

int StatusFromUcs(ucs_status_t status) {
  switch (status) {
    case UCS_OK: return PLASMA_TP_OK;
    case UCS_INPROGRESS: return PLASMA_TP_IN_PROGRESS;
    case UCS_ERR_NO_MEMORY: return PLASMA_TP_ERR_NO_MEMORY;
    case UCS_ERR_INVALID_PARAM: return PLASMA_TP_ERR_INVALID_ARGUMENT;
    case UCS_ERR_UNSUPPORTED: return PLASMA_TP_ERR_UNSUPPORTED;
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_REJECTED:
    case UCS_ERR_NOT_CONNECTED: return PLASMA_TP_ERR_CONNECTION_REFUSED;
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_ENDPOINT_TIMEOUT: return PLASMA_TP_ERR_CONNECTION_RESET;
    case UCS_ERR_TIMED_OUT: return PLASMA_TP_ERR_TIMED_OUT;
    case UCS_ERR_MESSAGE_TRUNCATED: return PLASMA_TP_ERR_MESSAGE_TOO_LARGE;
    case UCS_ERR_CANCELED: return PLASMA_TP_ERR_CANCELED;
    case UCS_ERR_NO_RESOURCE: return PLASMA_TP_ERR_AGAIN;
    case UCS_ERR_INVALID_ADDR: return PLASMA_TP_ERR_ADDRESS;
    case UCS_ERR_NO_DEVICE: return PLASMA_TP_ERR_NO_DEVICE;
    default: return PLASMA_TP_ERR_IO;
  }
}

void Context::Log(int level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  char line[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  log_fn(log_user_data, level, line);
}

int InitUcp(Context* ctx) {
  int rc = ReadSettings(ctx);
  if (rc != PLASMA_TP_OK) return rc;
  // UCX_* variables (UCX_TLS, UCX_NET_DEVICES, UCX_RNDV_THRESH, ...) are
  // UCX's own configuration and are read here, untouched.
  ucp_config_t* config = nullptr;
  ucs_status_t status = ucp_config_read(nullptr, nullptr, &config);
  if (status != UCS_OK) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: cannot read the UCX_* configuration: %s",
             ucs_status_string(status));
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  if (ctx->read_path == ReadPath::kNativeGet) params.features |= UCP_FEATURE_RMA;
  params.mt_workers_shared = 0;
  status = ucp_init(&params, config, &ctx->ucp);
  ucp_config_release(config);
  const char* tls = EnvOr("UCX_TLS", "all");
  const char* devices = EnvOr("UCX_NET_DEVICES", "all");
  if (status != UCS_OK) {
    ctx->ucp = nullptr;
    ctx->Log(PLASMA_TP_LOG_ERROR,
             "ucx: UCX cannot start with UCX_TLS=%s UCX_NET_DEVICES=%s: %s (ucx_info -d lists "
             "what this machine has)",
             tls, devices, ucs_status_string(status));
    return PLASMA_TP_ERR_NO_DEVICE;
  }
  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;  // the host serializes calls
  status = ucp_worker_create(ctx->ucp, &worker_params, &ctx->worker);
  if (status != UCS_OK) {
    ctx->worker = nullptr;
    ctx->Log(PLASMA_TP_LOG_ERROR,
             "ucx: UCX has no usable transport with UCX_TLS=%s UCX_NET_DEVICES=%s: %s", tls,
             devices, ucs_status_string(status));
    return PLASMA_TP_ERR_NO_DEVICE;
  }
  status = ucp_worker_get_efd(ctx->worker, &ctx->event_fd);
  if (status != UCS_OK) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: no worker event fd: %s", ucs_status_string(status));
    return PLASMA_TP_ERR_IO;
  }
  using K = DeferredEvent::Kind;
  rc = SetHandler(ctx, kAmHello, DeferHeader<K::kHello, HandshakeHeader, &DeferredEvent::handshake>);
  if (rc == PLASMA_TP_OK) {
    rc = SetHandler(ctx, kAmReady, DeferHeader<K::kReady, HandshakeHeader, &DeferredEvent::handshake>);
  }
  if (rc == PLASMA_TP_OK) {
    rc = SetHandler(ctx, kAmGoodbye,
                    DeferHeader<K::kGoodbye, HandshakeHeader, &DeferredEvent::handshake>);
  }
  if (rc == PLASMA_TP_OK) {
    rc = SetHandler(ctx, kAmReadRequest,
                    DeferHeader<K::kReadRequest, ReadRequestHeader, &DeferredEvent::read_request>);
  }
  if (rc == PLASMA_TP_OK) {
    rc = SetHandler(ctx, kAmReadRefused,
                    DeferHeader<K::kReadRefused, ReadRefusedHeader, &DeferredEvent::read_refused>);
  }
  if (rc != PLASMA_TP_OK) return rc;

  unsigned major = 0, minor = 0, release = 0;
  ucp_get_version(&major, &minor, &release);
  char text[256];
  std::snprintf(text, sizeof(text), "UCX %u.%u.%u UCP (UCX_TLS=%s): tags per connection, READ %s",
                major, minor, release, tls,
                ctx->read_path == ReadPath::kServeBySend ? "served by a tagged send (UCX rendezvous)"
                                                         : "by ucp_get");
  ctx->description = text;
  return PLASMA_TP_OK;
}

Context::~Context() {
  // Everything UCP holds is ended while the objects its callbacks name are
  // alive; they are freed once the worker is gone.
  if (worker != nullptr) DestroyAllConnections(this);
  for (Listener* listener : std::vector<Listener*>(listeners.begin(), listeners.end())) {
    CloseListener(this, listener);
  }
  for (RemoteKey* rkey : std::vector<RemoteKey*>(remote_keys.begin(), remote_keys.end())) {
    ReleaseRkey(this, rkey);
  }
  if (worker != nullptr) ucp_worker_destroy(worker);
  for (Registration* reg : registrations) ReleaseRegistration(this, reg);
  registrations.clear();
  for (Connection* conn : connections) delete conn;
  connections.clear();
  for (Request* req : requests) delete req;
  requests.clear();
  for (Request* req : zombies) delete req;
  zombies.clear();
  FreeOutgoingAms(this);
  FreeServedReads(this);
  if (ucp != nullptr) ucp_cleanup(ucp);
}

uint16_t Context::AllocateId() {
  for (uint32_t tried = 0; tried < kMaxConnId; ++tried) {
    last_id = static_cast<uint16_t>(last_id % kMaxConnId + 1);
    if (by_id.count(last_id) == 0) return last_id;
  }
  return 0;
}

int Context::Progress() {
  for (int pass = 0; pass < kMaxWorkerPasses; ++pass) {
    if (ucp_worker_progress(worker) == 0) break;
  }
  // Handling an event may post to UCP, whose callbacks may defer more.
  for (int round = 0; round < 16 && !deferred.empty(); ++round) {
    std::vector<DeferredEvent> batch;
    batch.swap(deferred);
    for (const DeferredEvent& event : batch) {
      switch (event.kind) {
        case DeferredEvent::Kind::kConnRequest:
          HandleConnectionRequest(this, event.listener, event.conn_request);
          break;
        case DeferredEvent::Kind::kHello: HandleHello(this, event.ep, event.handshake); break;
        case DeferredEvent::Kind::kReady: HandleReady(this, event.ep, event.handshake); break;
        case DeferredEvent::Kind::kGoodbye: HandleGoodbye(this, event.ep); break;
        case DeferredEvent::Kind::kReadRequest:
          ServeReadRequest(this, event.ep, event.read_request);
          break;
        case DeferredEvent::Kind::kReadRefused:
          HandleReadRefused(this, event.ep, event.read_refused);
          break;
        case DeferredEvent::Kind::kEpError: HandleEndpointError(this, event.conn, event.status); break;
      }
    }
  }
  if (!abandoned_reads.empty()) DrainAbandonedReads(this);
  ReapClosedConnections(this);
  int happened = events;
  events = 0;
  return happened;
}

int Context::Arm() {
  if (!completed.empty() || !deferred.empty()) return PLASMA_TP_IN_PROGRESS;
  ucs_status_t status = ucp_worker_arm(worker);
  if (status == UCS_OK) return PLASMA_TP_OK;
  if (status == UCS_ERR_BUSY) return PLASMA_TP_IN_PROGRESS;
  Log(PLASMA_TP_LOG_ERROR, "ucx: ucp_worker_arm failed: %s", ucs_status_string(status));
  return StatusFromUcs(status);
}

}  // namespace plasma_ucx
