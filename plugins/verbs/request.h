// A request is one posted send, recv or read. The plugin owns it from post
// until the host's test() or poll_completions() sees it complete; `phase`
// says which structure of its connection refers to it, which is what
// cancel() and failures need to know.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>

#include "transport/plasma_transport.h"

namespace plasma_verbs {

struct Connection;
struct Context;
struct Registration;

enum class RequestPhase : uint8_t {
  kNew,           // being posted; nothing refers to it yet
  kQueued,        // send: waiting in the connection's outgoing queue (credits, slots)
  kOnWire,        // send: its SEND work request is posted; done when that completes
  kAwaitingFin,   // send: its kRts went out; the peer is READing the buffer
  kPosted,        // recv: in the matcher, no message yet
  kReading,       // recv of a kRts, or read(): RDMA READ pieces queued or in flight
  kComplete,      // waiting for test(); no connection refers to it
};

// Where the READ pieces of a kReading request come from.
struct ReadSource {
  uint64_t remote_addr = 0;
  uint32_t rkey = 0;
  uint64_t length = 0;     // total bytes to read
  uint64_t next = 0;       // offset of the next piece to post
  uint32_t in_flight = 0;  // pieces posted, not yet completed
  int status = PLASMA_TP_OK;  // first failure among the pieces
  uint64_t transfer = 0;   // recv of a kRts: the sender's transfer id (for the kFin)
};

struct Request {
  Context* ctx = nullptr;
  Connection* conn = nullptr;  // null once complete
  RequestPhase phase = RequestPhase::kNew;
  uint32_t op = 0;             // PLASMA_TP_OP_*
  uint64_t tag = 0;
  uint64_t tag_mask = 0;
  uint8_t* buffer = nullptr;
  uint64_t length = 0;         // send: bytes; recv: capacity; read: bytes wanted
  Registration* mem = nullptr; // the host's registration of `buffer`, pinned while used
  uint64_t post_seq = 0;       // recv: posting order (matching takes the earliest)
  uint64_t transfer = 0;       // send by kRts: its id in the connection's awaiting_fin
  ReadSource read;             // kReading
  bool cancel_requested = false;
  std::list<Request*>::iterator completed_pos;  // kComplete: place in Context::completed
  plasma_tp_completion_t result{};
};

Request* NewRequest(Context* ctx, Connection* conn, uint32_t op);

// Marks the request done, unpins its registration and queues it for
// test()/poll_completions(). The first completion wins.
void CompleteRequest(Request* req, int status, uint64_t length);

int TestRequest(Context* ctx, Request* req, plasma_tp_completion_t* out);
size_t PollCompletions(Context* ctx, plasma_tp_request_completion_t* out, size_t max);
int CancelRequest(Context* ctx, Request* req);

}  // namespace plasma_verbs
