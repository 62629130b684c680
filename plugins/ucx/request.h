// A request is one posted send, recv or read. The plugin owns it from post
// until the host's test() or poll_completions() releases it; `phase` says
// where it is, which is what cancel(), close and failures need to know.
#pragma once

#include <cstdint>
#include <list>

#include <ucp/api/ucp.h>

#include "transport/plasma_transport.h"

namespace plasma_ucx {

struct Connection;
struct Context;
struct Registration;
struct RemoteKey;

enum class RequestPhase : uint8_t {
  kQueued,    // posted before the connection was up; waits in conn->queued
  kInUcx,     // handed to UCP; its callback will complete it
  kComplete,  // waiting for test()/poll_completions(); nothing else refers to it
};

struct Request {
  Context* ctx = nullptr;
  Connection* conn = nullptr;     // null once complete
  RequestPhase phase = RequestPhase::kQueued;
  uint32_t op = 0;                // PLASMA_TP_OP_*
  uint64_t tag = 0;               // host tag (send, recv)
  uint64_t tag_mask = 0;          // host mask (recv)
  uint8_t* buffer = nullptr;
  uint64_t length = 0;            // send: bytes; recv: capacity; read: bytes wanted
  Registration* mem = nullptr;    // the host's registration of `buffer`, pinned while used
  // read(): where from, and the id the holder's answer is tagged with.
  uint64_t remote_addr = 0;
  RemoteKey* rkey = nullptr;      // valid only until posted to UCP
  uint64_t read_id = 0;
  int refused_status = PLASMA_TP_OK;  // serve-by-send: the holder's refusal, if any
  void* ucx = nullptr;            // UCP's request while kInUcx and not yet completed
  bool ucx_done = false;          // UCP's callback ran
  bool cancel_requested = false;
  // Released by the host while UCP still holds it (a receive UCP could not
  // cancel, completed by close or failure): freed by UCP's late callback.
  bool zombie = false;
  std::list<Request*>::iterator completed_pos;  // kComplete: place in Context::completed
  plasma_tp_completion_t result{};
};

Request* NewRequest(Context* ctx, Connection* conn, uint32_t op);

// Marks the request done, unpins its registration, takes it off its
// connection and queues it for test()/poll_completions(). First one wins.
void CompleteRequest(Request* req, int status, uint64_t length);

// Completes every request still on the connection (close, failure: UCP
// will not end a receive matched to a dead peer's rendezvous by itself).
// Only once UCP has closed the connection's endpoint.
void CompleteOutstanding(Connection* conn, int status);

// Called right after a ucp_*_nbx() post with what it returned: completes at
// once (immediate success or a post error) or records UCP's request.
void AfterPost(Request* req, ucs_status_ptr_t posted, uint64_t immediate_length);

// The UCP completion callbacks; user_data is the Request.
void OnSendDone(void* ucx_request, ucs_status_t status, void* user_data);
void OnRecvDone(void* ucx_request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                void* user_data);

int TestRequest(Context* ctx, Request* req, plasma_tp_completion_t* out);
size_t PollCompletions(Context* ctx, plasma_tp_request_completion_t* out, size_t max);
int CancelRequest(Context* ctx, Request* req);

}  // namespace plasma_ucx
