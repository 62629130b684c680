#include "plugins/ucx/messages.h"

#include <vector>

#include "plugins/ucx/connection.h"
#include "plugins/ucx/context.h"
#include "plugins/ucx/memory.h"
#include "plugins/ucx/remote_read.h"
#include "plugins/ucx/request.h"

namespace plasma_ucx {
namespace {

ucp_request_param_t ParamFor(Request* req) {
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.user_data = req;
  if (req->mem != nullptr) {
    param.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
    param.memh = req->mem->memh;
  }
  return param;
}

void PostSend(Request* req) {
  Connection* conn = req->conn;
  req->phase = RequestPhase::kInUcx;
  ucp_request_param_t param = ParamFor(req);
  param.cb.send = OnSendDone;
  ucs_status_ptr_t posted = ucp_tag_send_nbx(conn->ep, req->buffer, req->length,
                                             HostTag(conn->peer_id, req->tag), &param);
  AfterPost(req, posted, req->length);
}

}  // namespace

void SubmitSend(Request* req) {
  Connection* conn = req->conn;
  if (conn->phase == ConnPhase::kUp) {
    PostSend(req);
  } else {
    conn->queued.push_back(req);
  }
}

void PostReceive(Request* req, uint64_t ucp_tag, uint64_t ucp_mask) {
  req->phase = RequestPhase::kInUcx;
  ucp_request_param_t param = ParamFor(req);
  param.cb.recv = OnRecvDone;
  // Never completed inside the call without a callback: the callback is
  // where the matched tag and length are (it may run before the call returns).
  param.op_attr_mask |= UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  ucs_status_ptr_t posted = ucp_tag_recv_nbx(req->ctx->worker, req->buffer, req->length, ucp_tag,
                                             ucp_mask, &param);
  AfterPost(req, posted, 0);
}

void SubmitRecv(Request* req) {
  Connection* conn = req->conn;
  PostReceive(req, HostTag(conn->local_id, req->tag), HostMask(req->tag_mask));
}

int ProbeArrived(Connection* conn, uint64_t tag, uint64_t mask, plasma_tp_completion_t* info) {
  ucp_tag_recv_info_t found{};
  ucp_tag_message_h message = ucp_tag_probe_nb(conn->ctx->worker, HostTag(conn->local_id, tag),
                                               HostMask(mask), 0, &found);
  if (message == nullptr) return PLASMA_TP_IN_PROGRESS;
  info->status = PLASMA_TP_OK;
  info->op = PLASMA_TP_OP_RECV;
  info->tag = found.sender_tag & PLASMA_TP_TAG_EXACT;
  info->length = found.length;
  return PLASMA_TP_OK;
}

void StartQueued(Connection* conn) {
  std::vector<Request*> queued;
  queued.swap(conn->queued);
  for (Request* req : queued) {
    if (req->op == PLASMA_TP_OP_SEND) {
      PostSend(req);
    } else {
      StartRead(req);
    }
  }
}

}  // namespace plasma_ucx
