#include "plugins/verbs/request.h"

#include "plugins/verbs/connection.h"
#include "plugins/verbs/context.h"
#include "plugins/verbs/matching.h"
#include "plugins/verbs/memory.h"

namespace plasma_verbs {

Request* NewRequest(Context* ctx, Connection* conn, uint32_t op) {
  auto* req = new Request;
  req->ctx = ctx;
  req->conn = conn;
  req->op = op;
  req->result.op = op;
  ctx->requests.insert(req);
  return req;
}

void CompleteRequest(Request* req, int status, uint64_t length) {
  if (req->phase == RequestPhase::kComplete) return;
  if (req->mem != nullptr) {
    req->mem->pins--;
    req->mem = nullptr;
  }
  req->phase = RequestPhase::kComplete;
  req->conn = nullptr;
  req->result.status = status;
  req->result.length = length;
  if (req->op == PLASMA_TP_OP_READ) req->result.tag = 0;
  Context* ctx = req->ctx;
  req->completed_pos = ctx->completed.insert(ctx->completed.end(), req);
  ctx->events++;
}

int TestRequest(Context* ctx, Request* req, plasma_tp_completion_t* out) {
  if (req->phase != RequestPhase::kComplete) return PLASMA_TP_IN_PROGRESS;
  *out = req->result;
  ctx->completed.erase(req->completed_pos);
  ctx->requests.erase(req);
  delete req;
  return PLASMA_TP_OK;
}

size_t PollCompletions(Context* ctx, plasma_tp_request_completion_t* out, size_t max) {
  size_t n = 0;
  while (n < max && !ctx->completed.empty()) {
    Request* req = ctx->completed.front();
    out[n].request = reinterpret_cast<plasma_tp_request_t>(req);
    out[n].completion = req->result;
    ctx->completed.pop_front();
    ctx->requests.erase(req);
    delete req;
    ++n;
  }
  return n;
}

int CancelRequest(Context* ctx, Request* req) {
  Connection* conn = req->conn;
  switch (req->phase) {
    case RequestPhase::kQueued:
      conn->DropQueuedSend(req);
      CompleteRequest(req, PLASMA_TP_ERR_CANCELED, 0);
      return PLASMA_TP_OK;
    case RequestPhase::kPosted:
      conn->matcher.RemoveReceive(req);
      CompleteRequest(req, PLASMA_TP_ERR_CANCELED, 0);
      return PLASMA_TP_OK;
    case RequestPhase::kReading:
      // Nothing posted yet: it can still be taken back.
      if (req->op == PLASMA_TP_OP_READ && req->read.next == 0 && req->read.in_flight == 0 &&
          conn->DropQueuedRead(req)) {
        CompleteRequest(req, PLASMA_TP_ERR_CANCELED, 0);
      }
      return PLASMA_TP_OK;
    default:
      return PLASMA_TP_OK;  // on the wire or done: it completes normally
  }
}

}  // namespace plasma_verbs
