#include "plugins/ucx/remote_read.h"

#include "plugins/ucx/active_message.h"
#include "plugins/ucx/connection.h"
#include "plugins/ucx/context.h"
#include "plugins/ucx/memory.h"
#include "plugins/ucx/messages.h"
#include "plugins/ucx/request.h"

namespace plasma_ucx {
namespace {

// Abandoned READs remembered at most (the oldest are forgotten), and looked
// for per progress() call.
constexpr size_t kMaxAbandoned = 4096;
constexpr size_t kDrainPerCall = 64;
constexpr uint32_t kLooksPerAbandonedRead = 4096;

void OnServed(void* ucx_request, ucs_status_t status, void* user_data) {
  (void)status;  // the reader sees a failed send as its connection's failure
  auto* served = static_cast<ServedRead*>(user_data);
  served->reg->pins--;
  served->ctx->serving.erase(served);
  delete served;
  ucp_request_free(ucx_request);
}

void Refuse(Connection* conn, uint64_t read_id, int status) {
  ReadRefusedHeader refused{};
  refused.receiver_id = conn->peer_id;
  refused.read_id = read_id;
  refused.status = status;
  SendActiveMessage(conn->ctx, conn->ep, kAmReadRefused, &refused, sizeof(refused));
}

void StartServedRead(Request* req) {
  Connection* conn = req->conn;
  Context* ctx = conn->ctx;
  req->read_id = conn->next_read_id++;
  conn->reads[req->read_id] = req;
  ReadRequestHeader ask{};
  ask.receiver_id = conn->peer_id;
  ask.read_id = req->read_id;
  ask.remote_addr = req->remote_addr;
  ask.length = req->length;
  ask.key = req->rkey->header.key;
  req->rkey = nullptr;
  // The receive is posted before the request goes out, so the bytes never
  // arrive unexpected (and anything that does is an abandoned READ's).
  PostReceive(req, ReadDataTag(conn->local_id, req->read_id), kFullMask);
  if (req->phase == RequestPhase::kComplete) return;
  int rc = SendActiveMessage(ctx, conn->ep, kAmReadRequest, &ask, sizeof(ask));
  if (rc != PLASMA_TP_OK && req->ucx != nullptr) {
    req->refused_status = rc;
    ucp_request_cancel(ctx->worker, req->ucx);
  }
}

void StartNativeGet(Request* req) {
  Connection* conn = req->conn;
  req->phase = RequestPhase::kInUcx;
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.cb.send = OnSendDone;
  param.user_data = req;
  if (req->mem != nullptr) {
    param.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
    param.memh = req->mem->memh;
  }
  ucp_rkey_h rkey = nullptr;
  int rc = UcxRkeyFor(req->rkey, &rkey);
  req->rkey = nullptr;
  if (rc != PLASMA_TP_OK) {
    CompleteRequest(req, rc, 0);
    return;
  }
  ucs_status_ptr_t posted =
      ucp_get_nbx(conn->ep, req->buffer, req->length, req->remote_addr, rkey, &param);
  AfterPost(req, posted, req->length);
}

}  // namespace

void SubmitRead(Request* req) {
  if (req->conn->phase == ConnPhase::kUp) {
    StartRead(req);
  } else {
    req->conn->queued.push_back(req);
  }
}

void StartRead(Request* req) {
  if (req->conn->read_path == ReadPath::kNativeGet) {
    StartNativeGet(req);
  } else {
    StartServedRead(req);  // PostReceive() moves it to kInUcx
  }
}

void ServeReadRequest(Context* ctx, const ReadRequestHeader& request) {
  Connection* conn = ReceivingConnection(ctx, request.receiver_id);
  if (conn == nullptr) return;
  Registration* reg = nullptr;
  int rc = FindServedRange(ctx, request.key, request.remote_addr, request.length, &reg);
  if (rc != PLASMA_TP_OK) {
    ctx->Log(PLASMA_TP_LOG_DEBUG, "ucx: refused a READ of %llu bytes from %s: %s",
             static_cast<unsigned long long>(request.length), conn->peer.c_str(),
             plasma_tp_default_strerror(rc));
    Refuse(conn, request.read_id, rc);
    return;
  }
  auto* served = new ServedRead;
  served->ctx = ctx;
  served->reg = reg;
  reg->pins++;
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_MEMH;
  param.cb.send = OnServed;
  param.user_data = served;
  param.memh = reg->memh;
  ucs_status_ptr_t posted =
      ucp_tag_send_nbx(conn->ep, reinterpret_cast<void*>(request.remote_addr), request.length,
                       ReadDataTag(conn->peer_id, request.read_id), &param);
  if (UCS_PTR_IS_PTR(posted)) {
    ctx->serving.insert(served);
    return;
  }
  reg->pins--;
  delete served;
}

void HandleReadRefused(Context* ctx, const ReadRefusedHeader& refused) {
  Connection* conn = ReceivingConnection(ctx, refused.receiver_id);
  if (conn == nullptr) return;
  auto it = conn->reads.find(refused.read_id);
  if (it == conn->reads.end()) return;
  Request* req = it->second;
  req->refused_status = refused.status < 0 ? refused.status : PLASMA_TP_ERR_PROTOCOL;
  if (req->ucx != nullptr) ucp_request_cancel(ctx->worker, req->ucx);
}

void RememberAbandonedRead(Context* ctx, uint64_t data_tag) {
  if (ctx->abandoned_reads.size() >= kMaxAbandoned) ctx->abandoned_reads.pop_front();
  ctx->abandoned_reads.push_back({data_tag, kLooksPerAbandonedRead});
}

void DrainAbandonedReads(Context* ctx) {
  size_t looked = 0;
  for (auto it = ctx->abandoned_reads.begin();
       it != ctx->abandoned_reads.end() && looked < kDrainPerCall; ++looked) {
    ucp_tag_recv_info_t info{};
    ucp_tag_message_h message = ucp_tag_probe_nb(ctx->worker, it->data_tag, kFullMask, 1, &info);
    if (message == nullptr) {
      // Bytes that have not come in this many looks are not coming (the
      // holder was told, or is gone): stop paying for the probe.
      it = --it->looks_left == 0 ? ctx->abandoned_reads.erase(it) : it + 1;
      continue;
    }
    ucp_request_param_t param{};
    ucs_status_ptr_t posted = ucp_tag_msg_recv_nbx(ctx->worker, nullptr, 0, message, &param);
    if (UCS_PTR_IS_PTR(posted)) ucp_request_free(posted);  // released when done
    it = ctx->abandoned_reads.erase(it);
  }
}

void FreeServedReads(Context* ctx) {
  for (ServedRead* served : ctx->serving) delete served;
  ctx->serving.clear();
}

}  // namespace plasma_ucx
