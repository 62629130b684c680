// Tagged two-sided messages: eager (one frame) up to the eager threshold,
// rendezvous (RTS, CTS, DATA) above it; tag matching, unexpected messages,
// probe.
#pragma once

#include <cstdint>

#include "plugins/socket/wire_format.h"

namespace plasma_socket {

struct Connection;
struct Request;
struct UnexpectedMessage;

void PostSend(Connection* conn, Request* req);
// May complete `req` at once from an unexpected message.
void PostRecv(Connection* conn, Request* req);
// OK with *found filled, IN_PROGRESS if nothing matches.
int ProbeUnexpected(Connection* conn, uint64_t tag, uint64_t tag_mask, UnexpectedMessage** found);

// Receive-side handlers for incoming frames.
void OnEagerHeader(Connection* conn, const FrameHeader& header);
void OnRendezvousRequest(Connection* conn, const FrameHeader& header);
void OnClearToSend(Connection* conn, const FrameHeader& header);
void OnRendezvousData(Connection* conn, const FrameHeader& header);

inline bool TagMatches(uint64_t message_tag, uint64_t tag, uint64_t tag_mask) {
  return (message_tag & tag_mask) == (tag & tag_mask);
}

}  // namespace plasma_socket
