// A request is one posted send, recv or read. The plugin owns it from post
// until the host's test() sees it complete; `stage` says which connection
// structure refers to it, which is what cancel() and failures need to know.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>

#include "transport/plasma_transport.h"

namespace plasma_socket {

struct Connection;
struct Context;

enum class RequestStage : uint8_t {
  kNew,                  // being posted; nothing refers to it yet
  kQueuedFrame,          // send: its EAGER or DATA frame is in the outgoing queue
  kAwaitingClearToSend,  // send: RTS queued or sent; in sends_awaiting_cts
  kPosted,               // recv: in exact_recvs or prefix_recvs, not matched yet
  kAwaitingData,         // recv: in recvs_awaiting_data; read: in pending_reads
  kLanding,              // recv/read: payload is arriving into the buffer (rx sink)
  kComplete,             // waiting for test(); no connection refers to it
};

struct Request {
  Context* ctx = nullptr;
  Connection* conn = nullptr;  // null once complete
  RequestStage stage = RequestStage::kNew;
  uint32_t op = 0;             // PLASMA_TP_OP_*
  uint64_t tag = 0;
  uint64_t tag_mask = 0;
  uint8_t* buffer = nullptr;
  // send: bytes to send; recv: capacity; read: bytes wanted.
  uint64_t length = 0;
  // recv: length of the matched rendezvous message.
  uint64_t expected_length = 0;
  // Rendezvous transfer id (send, recv) or read id.
  uint64_t transfer_id = 0;
  // recv: position in posting order on its connection (matching picks the
  // earliest posted receive among the exact and the prefix ones).
  uint64_t post_seq = 0;
  // recv with a prefix mask while kPosted: its place in prefix_recvs.
  std::list<Request*>::iterator prefix_pos;
  // kComplete: its place in Context::completed.
  std::list<Request*>::iterator completed_pos;
  plasma_tp_completion_t result{};
};

Request* NewRequest(Context* ctx, Connection* conn, uint32_t op);

// Marks the request done, detaches it from its connection and queues it
// for poll_completions(). Idempotent: the first completion wins.
void CompleteRequest(Request* req, int status, uint64_t length);

// test(): IN_PROGRESS, or OK with *out filled and the request freed.
int TestRequest(Context* ctx, Request* req, plasma_tp_completion_t* out);

// poll_completions(): up to `max` completed requests, oldest first, each
// released as by test().
size_t PollCompletions(Context* ctx, plasma_tp_request_completion_t* out, size_t max);

// cancel(): ends the request early where that is still possible.
int CancelRequest(Context* ctx, Request* req);

}  // namespace plasma_socket
