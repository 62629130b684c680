// Tagged two-sided messages: eager (one frame) up to the eager threshold,
// rendezvous (RTS, CTS, DATA) above it; tag matching, unexpected messages,
// probe.
#pragma once

#include <cstdint>

#include "plugins/socket/wire_format.h"
#include "transport/plasma_transport.h"

namespace plasma_socket {

struct Connection;
struct Request;
struct UnexpectedMessage;

void PostSend(Connection* conn, Request* req);
// May complete `req` at once from an unexpected message.
void PostRecv(Connection* conn, Request* req);
// Takes a posted (kPosted), unmatched receive out of the matching queues.
void WithdrawPostedRecv(Connection* conn, Request* req);
// OK with *found filled, IN_PROGRESS if nothing matches.
int ProbeUnexpected(Connection* conn, uint64_t tag, uint64_t tag_mask, UnexpectedMessage** found);
// Removes an unexpected message from the connection and frees it.
void DropUnexpected(Connection* conn, UnexpectedMessage* msg);

// Receive-side handlers for incoming frames.
void OnEagerHeader(Connection* conn, const FrameHeader& header);
void OnRendezvousRequest(Connection* conn, const FrameHeader& header);
void OnClearToSend(Connection* conn, const FrameHeader& header);
void OnRendezvousData(Connection* conn, const FrameHeader& header);

inline bool TagMatches(uint64_t message_tag, uint64_t tag, uint64_t tag_mask) {
  return (message_tag & tag_mask) == (tag & tag_mask);
}

// Tags and masks the host may pass (see "Tags" in plasma_transport.h).
inline bool ValidTag(uint64_t tag) { return (tag & ~uint64_t{PLASMA_TP_TAG_EXACT}) == 0; }
inline bool ValidTagMask(uint64_t mask) { return plasma_tp_tag_mask_valid(mask) != 0; }

}  // namespace plasma_socket
