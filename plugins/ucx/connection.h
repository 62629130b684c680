// Connections over UCP endpoints: listen, accept, connect, failure, close.
// A connection starts in client-server mode (a ucp_listener on a sockaddr,
// which is what rdmacm needs and which works over TCP alike); the
// handshake that makes it usable is in handshake.h.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ucp/api/ucp.h>

#include "plugins/ucx/context.h"
#include "plugins/ucx/wire_format.h"
#include "transport/plasma_transport.h"

namespace plasma_ucx {

struct Context;
struct Listener;
struct Request;

enum class ConnPhase : uint8_t {
  kConnecting,     // client: endpoint created, kAmHello sent, waiting for kAmReady
  kAwaitingHello,  // server: endpoint made from a connection request, no kAmHello yet
  kUp,             // both ids known; posts go straight to UCP
  kFailed,         // the endpoint failed (peer gone, refused, ...): failure_status
  kClosed,         // the host closed it; kept only until UCP is done with it
};

const char* ConnPhaseName(ConnPhase phase);

struct Connection {
  Context* ctx = nullptr;
  ConnPhase phase = ConnPhase::kConnecting;
  int failure_status = PLASMA_TP_OK;
  ucp_ep_h ep = nullptr;            // what traffic goes over
  ucp_ep_h cm_ep = nullptr;         // the client-server endpoint, if `ep` is another
  std::vector<void*> closing;       // ucp_ep_close_nbx() requests still running
  uint16_t local_id = 0;           // our id: the peer puts it in the tags it sends us
  uint16_t peer_id = 0;            // the peer's id: we put it in the tags we send
  Listener* listener = nullptr;    // server side: where accept() finds it
  bool host_handle = false;        // connect() or accept() gave it to the host
  std::string peer;                // "ip:port" for log lines
  std::vector<Request*> queued;    // posted before kUp, in posting order
  std::unordered_set<Request*> outstanding;  // every request not yet complete
  std::unordered_map<uint64_t, Request*> reads;  // serve-by-send READs by id
  uint64_t next_read_id = 1;
  // How read() moves bytes on this connection: the context's path, or
  // ucp_get on a shared-memory endpoint (cma, measured fastest there).
  ReadPath read_path = ReadPath::kServeBySend;
  HandshakeHeader handshake_out{};  // our kAmHello/kAmReady: UCP reads it until sent

  bool Failed() const { return phase == ConnPhase::kFailed; }
  int Status() const {
    if (phase == ConnPhase::kUp) return PLASMA_TP_OK;
    if (phase == ConnPhase::kFailed) return failure_status;
    return PLASMA_TP_IN_PROGRESS;
  }
};

struct Listener {
  Context* ctx = nullptr;
  ucp_listener_h ucx = nullptr;
  std::string address_blob;
  std::vector<Connection*> ready;  // handshake done, not yet accept()ed
};

int Listen(Context* ctx, const char* bind_hint, Listener** out);
int AcceptConnection(Context* ctx, Listener* listener, Connection** out);
void CloseListener(Context* ctx, Listener* listener);
int Connect(Context* ctx, const void* blob, size_t len, Connection** out);
// The host's close_conn(): abortive. Tells the peer (kAmGoodbye: a force
// close alone does not), then returns once UCP has closed the endpoint
// (bounded wait) so no peer READ goes through it any more.
void CloseConnection(Context* ctx, Connection* conn);

// Marks the connection failed (first reason wins), fails its queued posts,
// cancels its receives and closes its endpoint.
void FailConnection(Connection* conn, int status, const char* why);

// Deferred from UCP callbacks, run by progress() after ucp_worker_progress().
void HandleConnectionRequest(Context* ctx, Listener* listener, ucp_conn_request_h request);
// The connection an endpoint of ours belongs to, if any.
Connection* ByEndpoint(Context* ctx, ucp_ep_h ep);
// The connection a received message names (its receiver id), if it is up.
Connection* ReceivingConnection(Context* ctx, uint16_t receiver_id);
void HandleEndpointError(Context* ctx, Connection* conn, ucs_status_t status);

// Frees connections the host closed whose endpoint and requests are done.
void ReapClosedConnections(Context* ctx);
// finalize(): closes every endpoint (bounded wait); the context frees the
// connections once the worker is gone.
void DestroyAllConnections(Context* ctx);

}  // namespace plasma_ucx
