#include "plugins/ucx/connection.h"

#include <cstdlib>
#include <cstring>
#include <chrono>

#include "plugins/ucx/active_message.h"
#include "plugins/ucx/address.h"
#include "plugins/ucx/context.h"
#include "plugins/ucx/handshake.h"
#include "plugins/ucx/messages.h"
#include "plugins/ucx/request.h"

namespace plasma_ucx {
namespace {

// close_conn() waits this long at most for UCP to close an endpoint.
constexpr std::chrono::milliseconds kCloseWait{2000};
// ... and then lets UCP finish tearing it down for this long at most.
constexpr std::chrono::milliseconds kSettleWait{100};
constexpr int kSettlePasses = 64;

void OnEndpointError(void* arg, ucp_ep_h ep, ucs_status_t status) {
  auto* conn = static_cast<Connection*>(arg);
  DeferredEvent event{};
  event.kind = DeferredEvent::Kind::kEpError;
  event.conn = conn;
  event.ep = ep;
  event.status = status;
  conn->ctx->deferred.push_back(event);
}

void OnConnectionRequest(ucp_conn_request_h request, void* arg) {
  auto* listener = static_cast<Listener*>(arg);
  DeferredEvent event{};
  event.kind = DeferredEvent::Kind::kConnRequest;
  event.listener = listener;
  event.conn_request = request;
  listener->ctx->deferred.push_back(event);
}

Connection* NewConnection(Context* ctx, uint16_t id) {
  auto* conn = new Connection;
  conn->ctx = ctx;
  conn->local_id = id;
  ctx->connections.insert(conn);
  ctx->by_id[id] = conn;
  return conn;
}

// Starts closing the connection's endpoints (abortive); UCP finishes in
// progress.
void CloseEndpoint(Connection* conn) {
  Context* ctx = conn->ctx;
  for (ucp_ep_h* ep : {&conn->ep, &conn->cm_ep}) {
    if (*ep == nullptr) continue;
    ctx->by_endpoint.erase(*ep);
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    // A force close needs error handling on both sides; the shared-memory
    // endpoint has none, and its flush is local (shared memory, cma).
    const bool by_address = conn->cm_ep != nullptr && *ep == conn->ep;
    param.flags = by_address ? 0 : UCP_EP_CLOSE_FLAG_FORCE;
    ucs_status_ptr_t closing = ucp_ep_close_nbx(*ep, &param);
    *ep = nullptr;
    if (UCS_PTR_IS_PTR(closing)) conn->closing.push_back(closing);
  }
}

// True once UCP has finished closing the connection's endpoints.
bool EndpointClosed(Connection* conn) {
  if (conn->ep != nullptr || conn->cm_ep != nullptr) return false;
  for (auto it = conn->closing.begin(); it != conn->closing.end();) {
    if (ucp_request_check_status(*it) == UCS_INPROGRESS) return false;
    ucp_request_free(*it);
    it = conn->closing.erase(it);
  }
  return true;
}

// Cancels what UCP holds for the connection that it would not end by
// itself: receives are the worker's, not the endpoint's.
void CancelReceives(Connection* conn) {
  for (Request* req : std::vector<Request*>(conn->outstanding.begin(), conn->outstanding.end())) {
    if (req->op != PLASMA_TP_OP_SEND && req->ucx != nullptr) {
      ucp_request_cancel(conn->ctx->worker, req->ucx);
    }
  }
}

void FailQueued(Connection* conn, int status) {
  std::vector<Request*> queued;
  queued.swap(conn->queued);
  for (Request* req : queued) CompleteRequest(req, status, 0);
}


ucp_err_handler_t ErrorHandler(Connection* conn) {
  ucp_err_handler_t handler{};
  handler.cb = OnEndpointError;
  handler.arg = conn;
  return handler;
}

}  // namespace

Connection* ByEndpoint(Context* ctx, ucp_ep_h ep) {
  auto it = ctx->by_endpoint.find(ep);
  return it != ctx->by_endpoint.end() ? it->second : nullptr;
}

Connection* ReceivingConnection(Context* ctx, uint16_t receiver_id) {
  auto found = ctx->by_id.find(receiver_id);
  if (found == ctx->by_id.end() || found->second->phase != ConnPhase::kUp) return nullptr;
  return found->second;
}

const char* ConnPhaseName(ConnPhase phase) {
  switch (phase) {
    case ConnPhase::kConnecting: return "connecting";
    case ConnPhase::kAwaitingHello: return "awaiting hello";
    case ConnPhase::kUp: return "up";
    case ConnPhase::kFailed: return "failed";
    case ConnPhase::kClosed: return "closed";
  }
  return "?";
}

int Listen(Context* ctx, const char* bind_hint, Listener** out) {
  SocketAddress bind;
  int rc = ParseBindHint(ctx, bind_hint, &bind);
  if (rc != PLASMA_TP_OK) return rc;
  auto* listener = new Listener;
  listener->ctx = ctx;
  ucp_listener_params_t params{};
  params.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
  params.sockaddr.addr = bind.get();
  params.sockaddr.addrlen = bind.length;
  params.conn_handler.cb = OnConnectionRequest;
  params.conn_handler.arg = listener;
  ucs_status_t status = ucp_listener_create(ctx->worker, &params, &listener->ucx);
  if (status != UCS_OK) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: cannot listen on %s: %s", AddressToString(bind).c_str(),
             ucs_status_string(status));
    delete listener;
    return status == UCS_ERR_BUSY || status == UCS_ERR_INVALID_ADDR ? PLASMA_TP_ERR_ADDRESS
                                                                   : StatusFromUcs(status);
  }
  ucp_listener_attr_t attr{};
  attr.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
  status = ucp_listener_query(listener->ucx, &attr);
  SocketAddress bound;
  if (status == UCS_OK) {
    std::memcpy(&bound.storage, &attr.sockaddr, sizeof(attr.sockaddr));
    bound.length = bind.length;
  } else {
    bound = bind;
  }
  listener->address_blob = MakeAddressBlob(bound);
  ctx->listeners.insert(listener);
  ctx->Log(PLASMA_TP_LOG_INFO, "ucx: listening on %s, published as %s",
           AddressToString(bound).c_str(), listener->address_blob.c_str());
  *out = listener;
  return PLASMA_TP_OK;
}

void HandleConnectionRequest(Context* ctx, Listener* listener, ucp_conn_request_h request) {
  if (ctx->listeners.count(listener) == 0) return;  // closed meanwhile; UCP rejected it
  std::string peer = "?";
  ucp_conn_request_attr_t attr{};
  attr.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR;
  if (ucp_conn_request_query(request, &attr) == UCS_OK) {
    SocketAddress client;
    std::memcpy(&client.storage, &attr.client_address, sizeof(attr.client_address));
    peer = AddressToString(client);
  }
  uint16_t id = ctx->AllocateId();
  if (id == 0) {
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: refusing %s: %u connections open", peer.c_str(), kMaxConnId);
    ucp_listener_reject(listener->ucx, request);
    return;
  }
  Connection* conn = NewConnection(ctx, id);
  conn->phase = ConnPhase::kAwaitingHello;
  conn->listener = listener;
  conn->peer = peer;
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.conn_request = request;
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler = ErrorHandler(conn);
  ucs_status_t status = ucp_ep_create(ctx->worker, &params, &conn->ep);
  if (status != UCS_OK) {
    conn->ep = nullptr;
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: cannot accept %s: %s", peer.c_str(),
             ucs_status_string(status));
    FailConnection(conn, StatusFromUcs(status), "endpoint creation failed");
    return;
  }
  ctx->by_endpoint[conn->ep] = conn;
}

void HandleEndpointError(Context* ctx, Connection* conn, ucs_status_t status) {
  if (ctx->connections.count(conn) == 0 || conn->phase == ConnPhase::kClosed) return;
  int code = StatusFromUcs(status);
  // Before the handshake, a peer that is not there is a refusal; after it,
  // whatever UCX calls it ("unreachable", "not connected"), a reset.
  if (conn->phase == ConnPhase::kConnecting && code == PLASMA_TP_ERR_CONNECTION_RESET) {
    code = PLASMA_TP_ERR_CONNECTION_REFUSED;
  } else if (conn->phase != ConnPhase::kConnecting && code == PLASMA_TP_ERR_CONNECTION_REFUSED) {
    code = PLASMA_TP_ERR_CONNECTION_RESET;
  }
  if (code == PLASMA_TP_OK || code == PLASMA_TP_IN_PROGRESS) code = PLASMA_TP_ERR_IO;
  FailConnection(conn, code, ucs_status_string(status));
}

void FailConnection(Connection* conn, int status, const char* why) {
  if (conn->phase == ConnPhase::kFailed || conn->phase == ConnPhase::kClosed) return;
  Context* ctx = conn->ctx;
  const ConnPhase was = conn->phase;
  conn->phase = ConnPhase::kFailed;
  conn->failure_status = status;
  ctx->events++;
  ctx->Log(was == ConnPhase::kUp ? PLASMA_TP_LOG_INFO : PLASMA_TP_LOG_WARN,
           "ucx: connection %u with %s failed while %s: %s (%s)", conn->local_id, conn->peer.c_str(),
           ConnPhaseName(was), why, plasma_tp_default_strerror(status));
  FailQueued(conn, status);
  CancelReceives(conn);
  CloseEndpoint(conn);
  if (!conn->host_handle) {
    // Never handed out: nobody will close it, so it goes now.
    if (conn->listener != nullptr) {
      auto& ready = conn->listener->ready;
      for (auto it = ready.begin(); it != ready.end(); ++it) {
        if (*it == conn) {
          ready.erase(it);
          break;
        }
      }
    }
    conn->phase = ConnPhase::kClosed;
  }
}

int AcceptConnection(Context* ctx, Listener* listener, Connection** out) {
  (void)ctx;
  if (listener->ready.empty()) return PLASMA_TP_IN_PROGRESS;
  Connection* conn = listener->ready.front();
  listener->ready.erase(listener->ready.begin());
  conn->host_handle = true;
  conn->listener = nullptr;
  ctx->handles.insert(conn);
  *out = conn;
  return PLASMA_TP_OK;
}

void CloseListener(Context* ctx, Listener* listener) {
  ctx->listeners.erase(listener);
  if (listener->ucx != nullptr) ucp_listener_destroy(listener->ucx);
  for (Connection* conn : ctx->connections) {
    if (conn->listener == listener) conn->listener = nullptr;
  }
  std::vector<Connection*> unclaimed;
  unclaimed.swap(listener->ready);
  for (Connection* conn : unclaimed) {
    conn->phase = ConnPhase::kClosed;
    CancelReceives(conn);
    CloseEndpoint(conn);
  }
  delete listener;
}

int Connect(Context* ctx, const void* blob, size_t len, Connection** out) {
  SocketAddress server;
  if (ParseAddressBlob(blob, len, &server) != PLASMA_TP_OK) return PLASMA_TP_ERR_ADDRESS;
  uint16_t id = ctx->AllocateId();
  if (id == 0) return PLASMA_TP_ERR_AGAIN;
  Connection* conn = NewConnection(ctx, id);
  conn->phase = ConnPhase::kConnecting;
  conn->peer = AddressToString(server);
  conn->host_handle = true;
  ctx->handles.insert(conn);
  *out = conn;
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                      UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
  params.sockaddr.addr = server.get();
  params.sockaddr.addrlen = server.length;
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler = ErrorHandler(conn);
  ucs_status_t status = ucp_ep_create(ctx->worker, &params, &conn->ep);
  if (status != UCS_OK) {
    conn->ep = nullptr;
    FailConnection(conn, PLASMA_TP_ERR_CONNECTION_REFUSED, ucs_status_string(status));
    return PLASMA_TP_OK;
  }
  ctx->by_endpoint[conn->ep] = conn;
  SetHandshake(conn);
  int rc = SendActiveMessage(ctx, conn->ep, kAmHello, &conn->handshake_out,
                             sizeof(conn->handshake_out), ctx->worker_address);
  if (rc != PLASMA_TP_OK) FailConnection(conn, rc, "could not send the hello");
  return PLASMA_TP_OK;
}

void CloseConnection(Context* ctx, Connection* conn) {
  const bool was_up = conn->phase == ConnPhase::kUp;
  ctx->handles.erase(conn);
  conn->host_handle = false;
  conn->phase = ConnPhase::kClosed;
  FailQueued(conn, PLASMA_TP_ERR_CANCELED);
  CancelReceives(conn);
  const auto deadline = std::chrono::steady_clock::now() + kCloseWait;
  if (conn->ep != nullptr && was_up) {
    // UCP's force close discards what it has not sent: the goodbye must be
    // out first.
    OutgoingAm* goodbye = nullptr;
    SetHandshake(conn);
    SendActiveMessage(ctx, conn->ep, kAmGoodbye, &conn->handshake_out,
                      sizeof(conn->handshake_out), std::string(), &goodbye);
    for (int spin = 0; goodbye != nullptr && ctx->am_sends.count(goodbye) != 0; ++spin) {
      ucp_worker_progress(ctx->worker);
      if (spin % 256 == 255 && std::chrono::steady_clock::now() > deadline) break;
    }
  }
  CloseEndpoint(conn);
  // The endpoint's lanes (and any peer READ through them) are gone only
  // when UCP has finished closing it.
  for (int spin = 0; !EndpointClosed(conn); ++spin) {
    ucp_worker_progress(ctx->worker);
    if (spin % 256 == 255 && std::chrono::steady_clock::now() > deadline) {
      ctx->Log(PLASMA_TP_LOG_WARN, "ucx: closing connection %u with %s is taking long",
               conn->local_id, conn->peer.c_str());
      break;
    }
  }
  // UCP destroys the endpoint's transport endpoints (sockets, QPs) in the
  // progress calls after the close completes, and ends the requests it
  // tracks for the endpoint then; what is still left is ended here.
  const auto settle = std::chrono::steady_clock::now() + kSettleWait;
  for (int spin = 0; spin < kSettlePasses || !conn->outstanding.empty(); ++spin) {
    ucp_worker_progress(ctx->worker);
    if (spin % 64 == 63 && std::chrono::steady_clock::now() > settle) break;
  }
  CompleteOutstanding(conn, PLASMA_TP_ERR_CANCELED);
}

void ReapClosedConnections(Context* ctx) {
  std::vector<Connection*> done;
  for (Connection* conn : ctx->connections) {
    if (conn->phase == ConnPhase::kFailed && !conn->outstanding.empty() && EndpointClosed(conn)) {
      CompleteOutstanding(conn, conn->failure_status);
    }
    if (conn->phase == ConnPhase::kClosed && EndpointClosed(conn) && conn->outstanding.empty()) {
      done.push_back(conn);
    }
  }
  for (Connection* conn : done) {
    ctx->connections.erase(conn);
    auto it = ctx->by_id.find(conn->local_id);
    if (it != ctx->by_id.end() && it->second == conn) ctx->by_id.erase(it);
    delete conn;
  }
}

void DestroyAllConnections(Context* ctx) {
  for (Connection* conn : ctx->connections) {
    conn->phase = ConnPhase::kClosed;
    FailQueued(conn, PLASMA_TP_ERR_CANCELED);
    CancelReceives(conn);
    CloseEndpoint(conn);
  }
  const auto deadline = std::chrono::steady_clock::now() + kCloseWait;
  for (int spin = 0;; ++spin) {
    bool all_closed = true;
    for (Connection* conn : ctx->connections) all_closed = EndpointClosed(conn) && all_closed;
    if (all_closed) break;
    ucp_worker_progress(ctx->worker);
    if (spin % 256 == 255 && std::chrono::steady_clock::now() > deadline) break;
  }
  for (Connection* conn : ctx->connections) {
    for (void* closing : conn->closing) ucp_request_free(closing);
    conn->closing.clear();
  }
}

}  // namespace plasma_ucx
