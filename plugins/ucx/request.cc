#include "plugins/ucx/request.h"

#include <vector>

#include "plugins/ucx/connection.h"
#include "plugins/ucx/context.h"
#include "plugins/ucx/memory.h"
#include "plugins/ucx/remote_read.h"

namespace plasma_ucx {
namespace {

// The status a request ends with when UCP reports `status` for it.
int FinalStatus(const Request* req, ucs_status_t status) {
  const Connection* conn = req->conn;
  // The host closed the connection: whatever UCP says about its requests
  // now (some finish while it tears the endpoints down), they were canceled.
  if (conn != nullptr && conn->phase == ConnPhase::kClosed) return PLASMA_TP_ERR_CANCELED;
  if (status == UCS_OK) return PLASMA_TP_OK;
  if (req->refused_status != PLASMA_TP_OK) return req->refused_status;
  if (status == UCS_ERR_CANCELED) {
    // Canceled by us because the connection failed, or by the host.
    return conn != nullptr && conn->Failed() && !req->cancel_requested ? conn->failure_status
                                                                       : PLASMA_TP_ERR_CANCELED;
  }
  if (conn != nullptr && conn->Failed()) return conn->failure_status;
  int mapped = StatusFromUcs(status);
  // UCX says "unreachable" or "not connected" for a peer that went away
  // too; only a connection still being set up was refused.
  if (mapped == PLASMA_TP_ERR_CONNECTION_REFUSED && conn != nullptr &&
      conn->phase != ConnPhase::kConnecting) {
    mapped = PLASMA_TP_ERR_CONNECTION_RESET;
  }
  return mapped;
}

// UCP is done with the request: free its side (now, or when the post that
// created it returns, if the callback ran inside that post). True if the
// host already released the request: then it is freed here, and is gone.
bool ReleaseUcx(Request* req, void* ucx_request) {
  req->ucx_done = true;
  if (req->ucx != nullptr && ucx_request != nullptr) {
    ucp_request_free(ucx_request);
    req->ucx = nullptr;
  }
  if (!req->zombie) return false;
  req->ctx->zombies.erase(req);
  delete req;
  return true;
}

// The host is done with a completed request.
void Release(Context* ctx, Request* req) {
  ctx->requests.erase(req);
  if (req->ucx != nullptr && !req->ucx_done) {
    req->zombie = true;
    ctx->zombies.insert(req);
  } else {
    delete req;
  }
}

}  // namespace

Request* NewRequest(Context* ctx, Connection* conn, uint32_t op) {
  auto* req = new Request;
  req->ctx = ctx;
  req->conn = conn;
  req->op = op;
  req->result.op = op;
  ctx->requests.insert(req);
  conn->outstanding.insert(req);
  return req;
}

void CompleteRequest(Request* req, int status, uint64_t length) {
  if (req->phase == RequestPhase::kComplete) return;
  if (req->mem != nullptr) {
    req->mem->pins--;
    req->mem = nullptr;
  }
  if (Connection* conn = req->conn) {
    conn->outstanding.erase(req);
    if (req->op == PLASMA_TP_OP_READ) conn->reads.erase(req->read_id);
  }
  req->conn = nullptr;
  req->rkey = nullptr;
  req->phase = RequestPhase::kComplete;
  req->result.status = status;
  req->result.length = length;
  if (req->op == PLASMA_TP_OP_READ) req->result.tag = 0;
  Context* ctx = req->ctx;
  req->completed_pos = ctx->completed.insert(ctx->completed.end(), req);
  ctx->events++;
}

void CompleteOutstanding(Connection* conn, int status) {
  for (Request* req : std::vector<Request*>(conn->outstanding.begin(), conn->outstanding.end())) {
    CompleteRequest(req, status, 0);
  }
}

void AfterPost(Request* req, ucs_status_ptr_t posted, uint64_t immediate_length) {
  if (UCS_PTR_IS_ERR(posted)) {
    CompleteRequest(req, FinalStatus(req, UCS_PTR_STATUS(posted)), 0);
  } else if (posted == nullptr) {
    CompleteRequest(req, PLASMA_TP_OK, immediate_length);
  } else if (req->ucx_done) {
    ucp_request_free(posted);  // the callback already ran, inside the post
  } else {
    req->ucx = posted;
  }
}

void OnSendDone(void* ucx_request, ucs_status_t status, void* user_data) {
  auto* req = static_cast<Request*>(user_data);
  if (ReleaseUcx(req, ucx_request)) return;
  int final_status = FinalStatus(req, status);
  CompleteRequest(req, final_status, final_status == PLASMA_TP_OK ? req->length : 0);
}

void OnRecvDone(void* ucx_request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                void* user_data) {
  auto* req = static_cast<Request*>(user_data);
  // `info` lives inside UCP's request: read it before that is freed.
  const ucp_tag_recv_info_t received = *info;
  if (ReleaseUcx(req, ucx_request)) return;
  int final_status = FinalStatus(req, status);
  uint64_t length = 0;
  if (req->op == PLASMA_TP_OP_RECV) {
    if (status == UCS_OK || status == UCS_ERR_MESSAGE_TRUNCATED) {
      length = received.length;  // with truncation: what the sender offered
      req->result.tag = received.sender_tag & PLASMA_TP_TAG_EXACT;
    }
  } else if (final_status == PLASMA_TP_OK) {  // a served READ's bytes
    length = received.length;
    if (length != req->length) final_status = PLASMA_TP_ERR_PROTOCOL;
  } else if (req->refused_status == PLASMA_TP_OK && req->conn != nullptr) {
    // Its bytes may still come; they must not stay in UCP's queue.
    RememberAbandonedRead(req->ctx, ReadDataTag(req->conn->local_id, req->read_id));
  }
  CompleteRequest(req, final_status, final_status == PLASMA_TP_OK ? length
                                     : final_status == PLASMA_TP_ERR_MESSAGE_TOO_LARGE ? length
                                                                                       : 0);
}

int TestRequest(Context* ctx, Request* req, plasma_tp_completion_t* out) {
  if (req->phase != RequestPhase::kComplete) return PLASMA_TP_IN_PROGRESS;
  *out = req->result;
  ctx->completed.erase(req->completed_pos);
  Release(ctx, req);
  return PLASMA_TP_OK;
}

size_t PollCompletions(Context* ctx, plasma_tp_request_completion_t* out, size_t max) {
  size_t n = 0;
  while (n < max && !ctx->completed.empty()) {
    Request* req = ctx->completed.front();
    out[n].request = reinterpret_cast<plasma_tp_request_t>(req);
    out[n].completion = req->result;
    ctx->completed.pop_front();
    Release(ctx, req);
    ++n;
  }
  return n;
}

int CancelRequest(Context* ctx, Request* req) {
  switch (req->phase) {
    case RequestPhase::kComplete: return PLASMA_TP_OK;
    case RequestPhase::kQueued: {
      Connection* conn = req->conn;
      for (auto it = conn->queued.begin(); it != conn->queued.end(); ++it) {
        if (*it == req) {
          conn->queued.erase(it);
          break;
        }
      }
      req->cancel_requested = true;
      CompleteRequest(req, PLASMA_TP_ERR_CANCELED, 0);
      return PLASMA_TP_OK;
    }
    case RequestPhase::kInUcx:
      req->cancel_requested = true;
      // A send UCP has taken cannot be called back; receives (and the
      // receive half of a served READ) can. The holder's late answer to a
      // canceled READ is drained as a stray message.
      if (req->op != PLASMA_TP_OP_SEND && req->ucx != nullptr) {
        ucp_request_cancel(ctx->worker, req->ucx);
      }
      return PLASMA_TP_OK;
  }
  return PLASMA_TP_OK;
}

}  // namespace plasma_ucx
