#include "plugins/ucx/context.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <ucs/config/global_opts.h>

#include "plugins/ucx/active_message.h"
#include "plugins/ucx/connection.h"
#include "plugins/ucx/handshake.h"
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
  auto* ctx = static_cast<Context*>(arg);
  DeferredEvent event{};
  event.kind = kKind;
  event.ep = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) ? param->reply_ep : nullptr;
  if (header_length != sizeof(Header)) {
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: dropped a malformed active message (%zu header bytes)",
             header_length);
    return UCS_OK;
  }
  std::memcpy(&(event.*kField), header, sizeof(Header));
  // Payloads are small (a worker address) and so arrive eagerly, in full.
  if (length > 0 && !(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
    event.payload.assign(static_cast<const char*>(data), length);
  }
  ctx->deferred.push_back(std::move(event));
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
  const char* wanted = std::getenv("PLASMA_UCX_SHARED_MEMORY");
  if (wanted != nullptr && *wanted != '\0' && std::strcmp(wanted, "0") != 0 &&
      std::strcmp(wanted, "1") != 0) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: PLASMA_UCX_SHARED_MEMORY='%s' is neither 0 nor 1", wanted);
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  ctx->shared_memory_asked = wanted != nullptr && std::strcmp(wanted, "1") == 0;
  const char* path = std::getenv("PLASMA_UCX_READ");
  if (path == nullptr || *path == '\0') {
    ctx->read_choice = ReadChoice::kAuto;
  } else if (std::strcmp(path, "send") == 0) {
    ctx->read_choice = ReadChoice::kSend;
  } else if (std::strcmp(path, "get") == 0) {
    ctx->read_choice = ReadChoice::kGet;
  } else {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: PLASMA_UCX_READ='%s' is neither 'send' nor 'get'", path);
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  const char* tick = std::getenv("PLASMA_UCX_WAKEUP_TICK_MS");
  if (tick != nullptr && *tick != '\0') {
    char* end = nullptr;
    long ms = std::strtol(tick, &end, 10);
    if (*end != '\0' || ms < 0 || ms > 999) {
      ctx->Log(PLASMA_TP_LOG_ERROR,
               "ucx: PLASMA_UCX_WAKEUP_TICK_MS='%s' is not 0 (off) .. 999 milliseconds", tick);
      return PLASMA_TP_ERR_INVALID_ARGUMENT;
    }
    ctx->wakeup_tick_ms = ms;
  }
  return PLASMA_TP_OK;
}

// The machine's boot id, hashed: equal for every process (in any network
// namespace) on one running kernel.
uint64_t HostId() {
  char text[64] = {};
  FILE* file = std::fopen("/proc/sys/kernel/random/boot_id", "r");
  if (file == nullptr) return 0;
  size_t got = std::fread(text, 1, sizeof(text) - 1, file);
  std::fclose(file);
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < got; ++i) hash = (hash ^ uint8_t(text[i])) * 1099511628211ull;
  return got > 0 ? hash : 0;
}

// Whether UCX_TLS lets UCX use a shared-memory transport: unset, "all",
// or a list naming one (a "^" list excludes what it names).
bool SharedMemoryAllowed() {
  const char* tls = std::getenv("UCX_TLS");
  if (tls == nullptr || *tls == '\0' || std::strcmp(tls, "all") == 0) return true;
  std::string list = tls;
  bool exclude = list[0] == '^';
  bool named = false;
  for (const char* shm : {"sm", "shm", "posix", "sysv", "cma", "xpmem", "knem"}) {
    size_t at = 0;
    while ((at = list.find(shm, at)) != std::string::npos) {
      size_t end = at + std::strlen(shm);
      bool starts = at == 0 || list[at - 1] == ',' || list[at - 1] == '^';
      bool ends = end == list.size() || list[end] == ',';
      if (starts && ends) named = true;
      at = end;
    }
  }
  return exclude ? !named : named;
}

int PrepareSharedMemory(Context* ctx) {
  ctx->host_id = HostId();
  const bool asked = ctx->shared_memory_asked;
  ctx->shared_memory = asked && ctx->host_id != 0 && SharedMemoryAllowed();
  if (asked && !ctx->shared_memory) {
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: PLASMA_UCX_SHARED_MEMORY=1, but UCX_TLS=%s has no "
             "shared-memory transport; peers on this machine use the network", std::getenv("UCX_TLS"));
  }
  if (!ctx->shared_memory) return PLASMA_TP_OK;
  ctx->Log(PLASMA_TP_LOG_WARN,
           "ucx: PLASMA_UCX_SHARED_MEMORY=1: peers on this machine use shared memory without UCX "
           "error handling and READ by cma, unchecked by the holder, so a peer that dies "
           "mid-transfer aborts this process (UCX 1.13)");
  ucp_address_t* address = nullptr;
  size_t length = 0;
  ucs_status_t status = ucp_worker_get_address(ctx->worker, &address, &length);
  if (status != UCS_OK) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: no worker address: %s", ucs_status_string(status));
    return StatusFromUcs(status);
  }
  ctx->worker_address.assign(reinterpret_cast<const char*>(address), length);
  ucp_worker_release_address(ctx->worker, address);
  return PLASMA_TP_OK;
}

// While alive, UCX logs only fatal errors (when UCX_LOG_LEVEL is unset).
class QuietUcxLog {
 public:
  QuietUcxLog() {
    if (std::getenv("UCX_LOG_LEVEL") != nullptr) return;
    if (ucs_global_opts_get_value("LOG_LEVEL", saved_, sizeof(saved_)) != UCS_OK) return;
    quieted_ = ucs_global_opts_set_value("LOG_LEVEL", "fatal") == UCS_OK;
  }
  ~QuietUcxLog() {
    if (quieted_) ucs_global_opts_set_value("LOG_LEVEL", saved_);
  }

 private:
  char saved_[32] = {};
  bool quieted_ = false;
};

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
  // UCX reports a failed start in lines of its own, and then so do we:
  // unless the user chose a UCX log level, it is quiet until UCX is up.
  QuietUcxLog quiet;
  // One default differs from UCX's, and only while the user leaves it unset:
  // RC flow control (UCX_RC_FC_ENABLE). With it, a sleeping worker missed
  // wake-ups over rc_verbs here: single fetches stalled until the manager's
  // 10 s stall timer retried them (3 in 60); with it off, none in 60.
  if (std::getenv("UCX_RC_FC_ENABLE") == nullptr) {
    status = ucp_config_modify(config, "RC_FC_ENABLE", "n");
    if (status != UCS_OK) {
      ctx->Log(PLASMA_TP_LOG_DEBUG, "ucx: cannot default UCX_RC_FC_ENABLE to n: %s",
               ucs_status_string(status));
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  // Gets: PLASMA_UCX_READ=get, and the READs of shared-memory connections.
  if (ctx->read_choice == ReadChoice::kGet ||
      (ctx->read_choice == ReadChoice::kAuto && ctx->shared_memory_asked)) {
    params.features |= UCP_FEATURE_RMA;
  }
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
  ctx->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  ctx->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  epoll_event watch{};
  watch.events = EPOLLIN;
  if (ctx->epoll_fd < 0 || ctx->timer_fd < 0 ||
      epoll_ctl(ctx->epoll_fd, EPOLL_CTL_ADD, ctx->event_fd, &watch) != 0 ||
      epoll_ctl(ctx->epoll_fd, EPOLL_CTL_ADD, ctx->timer_fd, &watch) != 0) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: cannot set up the wait fd: %s", std::strerror(errno));
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
  rc = PrepareSharedMemory(ctx);
  if (rc != PLASMA_TP_OK) return rc;

  unsigned major = 0, minor = 0, release = 0;
  ucp_get_version(&major, &minor, &release);
  char text[256];
  const char* reads = ctx->read_choice == ReadChoice::kGet    ? "by ucp_get"
                      : ctx->read_choice == ReadChoice::kSend ? "served by a tagged send"
                      : ctx->shared_memory
                          ? "served by a tagged send (UCX rendezvous), by ucp_get on shared memory"
                          : "served by a tagged send (UCX rendezvous)";
  std::snprintf(text, sizeof(text), "UCX %u.%u.%u UCP (UCX_TLS=%s): tags per connection, READ %s",
                major, minor, release, tls, reads);
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
  if (timer_fd >= 0) close(timer_fd);
  if (epoll_fd >= 0) close(epoll_fd);
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
    for (DeferredEvent& event : batch) {
      switch (event.kind) {
        case DeferredEvent::Kind::kConnRequest:
          HandleConnectionRequest(this, event.listener, event.conn_request);
          break;
        case DeferredEvent::Kind::kHello:
          HandleHello(this, event.ep, event.handshake, event.payload);
          break;
        case DeferredEvent::Kind::kReady: HandleReady(this, event.handshake, event.payload); break;
        case DeferredEvent::Kind::kGoodbye: HandleGoodbye(this, event.handshake); break;
        case DeferredEvent::Kind::kReadRequest: ServeReadRequest(this, event.read_request); break;
        case DeferredEvent::Kind::kReadRefused: HandleReadRefused(this, event.read_refused); break;
        case DeferredEvent::Kind::kEpError: HandleEndpointError(this, event.conn, event.status); break;
      }
    }
  }
  if (!abandoned_reads.empty()) DrainAbandonedReads(this);
  ReapClosedConnections(this);
  if (timer_set) {  // a nap or a wake-up was set: drain it (no syscall otherwise)
    uint64_t expirations = 0;
    if (read(timer_fd, &expirations, sizeof(expirations)) == sizeof(expirations)) timer_set = false;
  }
  int happened = events;
  events = 0;
  if (happened > 0) futile_arms = 0;
  return happened;
}

void Context::WakeAfter(long nanoseconds) {
  itimerspec when{};
  when.it_value.tv_nsec = nanoseconds;
  timerfd_settime(timer_fd, 0, &when, nullptr);
  timer_set = true;
}

int Context::Arm() {
  if (!deferred.empty()) return PLASMA_TP_IN_PROGRESS;
  // Completions the host has not collected are not progress() work; the
  // fd is made readable at once so that it collects them.
  if (!completed.empty()) {
    WakeAfter(1);
    return PLASMA_TP_OK;
  }
  ucs_status_t status = ucp_worker_arm(worker);
  if (status == UCS_OK) {
    futile_arms = 0;
    if (wakeup_tick_ms > 0) WakeAfter(wakeup_tick_ms * 1000000L);
    return PLASMA_TP_OK;
  }
  if (status == UCS_ERR_BUSY) {
    if (++futile_arms < kFutileArmsBeforeNap) return PLASMA_TP_IN_PROGRESS;
    WakeAfter(long{kNapMicros} * 1000);
    return PLASMA_TP_OK;
  }
  Log(PLASMA_TP_LOG_ERROR, "ucx: ucp_worker_arm failed: %s", ucs_status_string(status));
  return StatusFromUcs(status);
}

}  // namespace plasma_ucx
