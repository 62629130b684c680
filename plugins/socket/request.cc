#include "plugins/socket/request.h"

#include <algorithm>

#include "plugins/socket/connection.h"
#include "plugins/socket/context.h"
#include "plugins/socket/tagged_messages.h"

namespace plasma_socket {

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
  if (req->stage == RequestStage::kComplete) return;
  req->stage = RequestStage::kComplete;
  req->result.status = status;
  req->result.length = length;
  req->conn = nullptr;
  req->completed_pos = req->ctx->completed.insert(req->ctx->completed.end(), req);
  ++req->ctx->events;
}

namespace {

void ReleaseRequest(Context* ctx, Request* req) {
  ctx->completed.erase(req->completed_pos);
  ctx->requests.erase(req);
  delete req;
}

}  // namespace

int TestRequest(Context* ctx, Request* req, plasma_tp_completion_t* out) {
  if (req->stage != RequestStage::kComplete) return PLASMA_TP_IN_PROGRESS;
  *out = req->result;
  ReleaseRequest(ctx, req);
  return PLASMA_TP_OK;
}

size_t PollCompletions(Context* ctx, plasma_tp_request_completion_t* out, size_t max) {
  size_t count = 0;
  while (count < max && !ctx->completed.empty()) {
    Request* req = ctx->completed.front();
    out[count].request = reinterpret_cast<plasma_tp_request_t>(req);
    out[count].completion = req->result;
    ++count;
    ReleaseRequest(ctx, req);
  }
  return count;
}

namespace {

// Withdraws a send whose first frame has not started onto the wire.
void CancelUnsentSend(Connection* conn, Request* req) {
  auto frame = std::find_if(conn->outgoing.begin(), conn->outgoing.end(),
                            [req](const OutgoingFrame& f) { return f.request == req; });
  if (frame == conn->outgoing.end() || frame->bytes_sent != 0) return;  // too late
  // A DATA frame answers the peer's CTS; the peer's receive waits for it,
  // so once CTS arrived the send must run to the end.
  if (req->stage == RequestStage::kQueuedFrame && req->transfer_id != 0) return;
  conn->outgoing.erase(frame);
  conn->sends_awaiting_cts.erase(req->transfer_id);
  CompleteRequest(req, PLASMA_TP_ERR_CANCELED, 0);
}

}  // namespace

int CancelRequest(Context* ctx, Request* req) {
  Connection* conn = req->conn;
  switch (req->stage) {
    case RequestStage::kComplete:
      return PLASMA_TP_OK;
    case RequestStage::kQueuedFrame:
    case RequestStage::kAwaitingClearToSend:
      CancelUnsentSend(conn, req);
      return PLASMA_TP_OK;
    case RequestStage::kNew:
      break;
    case RequestStage::kPosted:
      WithdrawPostedRecv(conn, req);
      break;
    case RequestStage::kAwaitingData:
      // Keep the id so the data, when it comes, is recognised and discarded.
      if (req->op == PLASMA_TP_OP_READ) {
        conn->pending_reads[req->transfer_id] = nullptr;
      } else {
        conn->recvs_awaiting_data[req->transfer_id] = nullptr;
      }
      break;
    case RequestStage::kLanding:
      conn->DetachSinkRequest(req);
      break;
  }
  CompleteRequest(req, PLASMA_TP_ERR_CANCELED, 0);
  return PLASMA_TP_OK;
}

}  // namespace plasma_socket
