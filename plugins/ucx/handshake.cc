#include "plugins/ucx/handshake.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "plugins/ucx/active_message.h"
#include "plugins/ucx/connection.h"
#include "plugins/ucx/context.h"
#include "plugins/ucx/messages.h"

namespace plasma_ucx {
namespace {

// A second endpoint to the peer's worker address, where UCX uses shared
// memory; it becomes the connection's `ep`.
bool ConnectByWorkerAddress(Connection* conn, const std::string& worker_address) {
  Context* ctx = conn->ctx;
  ucp_ep_params_t params{};
  // No error handling mode on this one: with it UCX 1.13 will not use its
  // shared-memory transports (they cannot detect a dead peer), and picks
  // tcp. A dead peer is seen through the client-server endpoint, which
  // keeps it.
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  params.address = reinterpret_cast<const ucp_address_t*>(worker_address.data());
  params.err_mode = UCP_ERR_HANDLING_MODE_NONE;
  ucp_ep_h ep = nullptr;
  ucs_status_t status = ucp_ep_create(ctx->worker, &params, &ep);
  if (status != UCS_OK) {
    ctx->Log(PLASMA_TP_LOG_WARN,
             "ucx: cannot reach %s by worker address (%s); staying on the client-server endpoint",
             conn->peer.c_str(), ucs_status_string(status));
    return false;
  }
  conn->cm_ep = conn->ep;
  conn->ep = ep;
  ctx->by_endpoint[ep] = conn;
  return true;
}

// Both ends on this machine, and shared memory allowed on this end.
bool SameMachine(const Context* ctx, const HandshakeHeader& peer) {
  return ctx->shared_memory && peer.host != 0 && peer.host == ctx->host_id;
}

// The lanes UCX chose for an endpoint, from ucp_ep_print_info(): e.g.
// "tcp/lo (am am_bw), cma/memory (rma_bw)".
std::string DescribeLanes(ucp_ep_h ep) {
  char* text = nullptr;
  size_t size = 0;
  FILE* stream = open_memstream(&text, &size);
  if (stream == nullptr) return "?";
  ucp_ep_print_info(ep, stream);
  std::fclose(stream);
  std::string lanes;
  std::set<std::string> seen;
  const char* line = text;
  while (line != nullptr && *line != '\0') {
    const char* end = std::strchr(line, '\n');
    std::string one(line, end != nullptr ? size_t(end - line) : std::strlen(line));
    line = end != nullptr ? end + 1 : nullptr;
    size_t lane = one.find("lane[");
    if (lane == std::string::npos) continue;
    // "lane[0]:  8:tcp/lo.0 md[4]  -> md[4]/tcp/sysdev[255] am am_bw#0"
    size_t colon = one.find(':', lane);
    if (colon == std::string::npos) continue;
    size_t start = one.find_first_not_of(" \t", colon + 1);
    if (start == std::string::npos) continue;
    size_t token_end = one.find_first_of(" \t", start);
    std::string resource = one.substr(start, token_end - start);
    size_t index_colon = resource.find(':');
    if (index_colon != std::string::npos && index_colon < resource.find('/')) {
      resource = resource.substr(index_colon + 1);
    }
    std::string uses;
    size_t arrow = one.find("->");
    if (arrow != std::string::npos) {
      size_t after = one.find(' ', arrow + 3);
      if (after != std::string::npos) uses = one.substr(after + 1);
    }
    std::string entry = resource + (uses.empty() ? "" : " (" + uses + ")");
    if (!seen.insert(entry).second) continue;
    if (!lanes.empty()) lanes += ", ";
    lanes += entry;
  }
  std::free(text);
  return lanes.empty() ? "?" : lanes;
}

void BecomeUp(Connection* conn) {
  Context* ctx = conn->ctx;
  conn->phase = ConnPhase::kUp;
  conn->read_path = ctx->PathFor(conn->cm_ep != nullptr);
  ctx->events++;
  if (ctx->LogEnabled(PLASMA_TP_LOG_INFO) && conn->ep != nullptr) {
    ctx->Log(PLASMA_TP_LOG_INFO, "ucx: connection %u with %s is up; UCX uses %s", conn->local_id,
             conn->peer.c_str(), DescribeLanes(conn->ep).c_str());
  }
  StartQueued(conn);
}

bool ValidHandshake(const HandshakeHeader& header) {
  return header.magic == kHandshakeMagic && header.version == kProtocolVersion &&
         header.conn_id >= 1 && header.conn_id <= kMaxConnId;
}

}  // namespace

void SetHandshake(Connection* conn) {
  conn->handshake_out = HandshakeHeader{};
  conn->handshake_out.magic = kHandshakeMagic;
  conn->handshake_out.version = kProtocolVersion;
  conn->handshake_out.conn_id = conn->local_id;
  conn->handshake_out.receiver_id = conn->peer_id;
  conn->handshake_out.host = conn->ctx->host_id;
}

void HandleHello(Context* ctx, ucp_ep_h reply_ep, const HandshakeHeader& hello,
                 const std::string& worker_address) {
  Connection* conn = ByEndpoint(ctx, reply_ep);
  if (conn == nullptr || conn->phase != ConnPhase::kAwaitingHello) {
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: ignored a hello on an endpoint that expects none");
    return;
  }
  if (!ValidHandshake(hello)) {
    FailConnection(conn, PLASMA_TP_ERR_PROTOCOL, "malformed hello (not this plugin or version)");
    return;
  }
  if (conn->listener == nullptr) {  // its listener was closed meanwhile
    FailConnection(conn, PLASMA_TP_ERR_CONNECTION_REFUSED, "listener closed");
    return;
  }
  conn->peer_id = hello.conn_id;
  // A worker address in the ready tells the client to connect by address
  // too; the ready itself goes over the new endpoint, ahead of any data.
  std::string offer;
  if (!worker_address.empty() && SameMachine(ctx, hello) &&
      ConnectByWorkerAddress(conn, worker_address)) {
    offer = ctx->worker_address;
  }
  SetHandshake(conn);
  int rc = SendActiveMessage(ctx, conn->ep, kAmReady, &conn->handshake_out,
                             sizeof(conn->handshake_out), offer);
  if (rc != PLASMA_TP_OK) {
    FailConnection(conn, rc, "could not answer the hello");
    return;
  }
  conn->listener->ready.push_back(conn);
  BecomeUp(conn);
}

void HandleReady(Context* ctx, const HandshakeHeader& ready, const std::string& worker_address) {
  auto found = ctx->by_id.find(ready.receiver_id);
  Connection* conn = found != ctx->by_id.end() ? found->second : nullptr;
  if (conn == nullptr || conn->phase != ConnPhase::kConnecting) {
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: ignored a ready for connection %u, which expects none",
             ready.receiver_id);
    return;
  }
  if (!ValidHandshake(ready)) {
    FailConnection(conn, PLASMA_TP_ERR_PROTOCOL, "malformed ready (not this plugin or version)");
    return;
  }
  conn->peer_id = ready.conn_id;
  // If this fails, our traffic stays on the client-server endpoint, which
  // works both ways; the server's comes over its worker-address one.
  if (!worker_address.empty()) ConnectByWorkerAddress(conn, worker_address);
  BecomeUp(conn);
}

void HandleGoodbye(Context* ctx, const HandshakeHeader& goodbye) {
  Connection* conn = ReceivingConnection(ctx, goodbye.receiver_id);
  if (conn != nullptr && conn->peer_id == goodbye.conn_id) {
    FailConnection(conn, PLASMA_TP_ERR_CONNECTION_RESET, "the peer closed it");
  }
}

}  // namespace plasma_ucx
