// The handshake that gives each side of a connection the other's id: the
// client sends kAmHello, the server answers kAmReady. The hello comes with
// the reply flag, so the server learns which of its endpoints it came by;
// every later message names the receiver's id (wire_format.h).
//
// Shared memory (opt-in, PLASMA_UCX_SHARED_MEMORY=1): UCX 1.13's
// client-server wire-up selects network transports only, and its
// shared-memory transports work only on endpoints without error handling
// (with UCP_ERR_HANDLING_MODE_PEER UCX picks tcp), where a dead peer is a
// fatal error (cma aborts the process). So when both ends are on one
// machine (same boot id) and UCX_TLS allows it, the hello and the ready
// carry each side's worker address, each side creates a second endpoint to
// the other's worker by that address, without error handling (UCX then
// picks sysv/posix and cma), and all traffic goes over those; the
// client-server endpoints stay, idle, to notice a peer that goes away.
#pragma once

#include <cstdint>
#include <string>

#include <ucp/api/ucp.h>

#include "plugins/ucx/wire_format.h"

namespace plasma_ucx {

struct Connection;
struct Context;

// Fills conn->handshake_out (our ids and machine) for a hello, ready or
// goodbye; UCP reads it until the message is sent.
void SetHandshake(Connection* conn);

// Deferred from the active-message handlers, run by progress().
void HandleHello(Context* ctx, ucp_ep_h reply_ep, const HandshakeHeader& hello,
                 const std::string& worker_address);
void HandleReady(Context* ctx, const HandshakeHeader& ready, const std::string& worker_address);
void HandleGoodbye(Context* ctx, const HandshakeHeader& goodbye);

}  // namespace plasma_ucx
