#include "plugins/ucx/active_message.h"

#include <cstring>

#include "plugins/ucx/context.h"

namespace plasma_ucx {
namespace {

void OnAmSent(void* ucx_request, ucs_status_t status, void* user_data) {
  (void)status;  // a lost message shows as the endpoint's failure
  auto* message = static_cast<OutgoingAm*>(user_data);
  message->ctx->am_sends.erase(message);
  delete message;
  ucp_request_free(ucx_request);
}

}  // namespace

int SendActiveMessage(Context* ctx, ucp_ep_h ep, uint16_t id, const void* header, size_t length,
                      const std::string& payload, OutgoingAm** out_pending) {
  if (out_pending != nullptr) *out_pending = nullptr;
  if (length > sizeof(OutgoingAm::header)) return PLASMA_TP_ERR_INTERNAL;
  auto* message = new OutgoingAm;
  message->ctx = ctx;
  std::memcpy(message->header, header, length);
  message->payload = payload;
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                       UCP_OP_ATTR_FIELD_FLAGS;
  param.cb.send = OnAmSent;
  param.user_data = message;
  param.flags = UCP_AM_SEND_FLAG_REPLY;
  ucs_status_ptr_t posted = ucp_am_send_nbx(ep, id, message->header, length,
                                             message->payload.data(), message->payload.size(),
                                             &param);
  if (UCS_PTR_IS_PTR(posted)) {
    ctx->am_sends.insert(message);
    if (out_pending != nullptr) *out_pending = message;
    return PLASMA_TP_OK;
  }
  delete message;
  if (UCS_PTR_IS_ERR(posted)) {
    ctx->Log(PLASMA_TP_LOG_WARN, "ucx: active message %u not sent: %s", id,
             ucs_status_string(UCS_PTR_STATUS(posted)));
    return StatusFromUcs(UCS_PTR_STATUS(posted));
  }
  return PLASMA_TP_OK;
}

void FreeOutgoingAms(Context* ctx) {
  for (OutgoingAm* message : ctx->am_sends) delete message;
  ctx->am_sends.clear();
}

}  // namespace plasma_ucx
