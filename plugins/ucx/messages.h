// Tagged messages: the host's send/recv/probe on UCP tag matching, each
// connection in its own part of the worker's tag space (wire_format.h).
// UCP picks eager or rendezvous by its own thresholds (UCX_RNDV_THRESH).
#pragma once

#include <cstdint>

#include "transport/plasma_transport.h"

namespace plasma_ucx {

struct Connection;
struct Request;

// Hands a send to UCP now (connection up) or queues it until it is.
void SubmitSend(Request* req);
// Receives go to UCP at once: our own id is known from the start.
void SubmitRecv(Request* req);
// Posts a tag receive of req's buffer (a host recv, or a served READ's
// bytes).
void PostReceive(Request* req, uint64_t ucp_tag, uint64_t ucp_mask);
// A message that arrived and is not matched yet: PLASMA_TP_OK with info.
int ProbeArrived(Connection* conn, uint64_t tag, uint64_t mask, plasma_tp_completion_t* info);
// The connection came up: post what waited, in posting order.
void StartQueued(Connection* conn);

}  // namespace plasma_ucx
