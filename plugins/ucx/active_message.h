// The plugin's own active messages (handshake, READ requests and refusals,
// goodbye).
// UCP 1.13 reads the header until the send completes, so each one owns a
// copy that its completion callback frees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <ucp/api/ucp.h>

namespace plasma_ucx {

struct Context;

struct OutgoingAm {
  Context* ctx = nullptr;
  alignas(8) uint8_t header[40];
  std::string payload;
};

// Posts `header` (and `payload`) as active message `id` on `ep` with the
// reply flag (the receiver learns the endpoint it came by). PLASMA_TP_OK
// once posted; the endpoint's failure reports a lost one. *out_pending (if
// given) is the message while UCP still has it, else null.
int SendActiveMessage(Context* ctx, ucp_ep_h ep, uint16_t id, const void* header, size_t length,
                      const std::string& payload = std::string(),
                      OutgoingAm** out_pending = nullptr);

// finalize(): frees the messages UCP never completed.
void FreeOutgoingAms(Context* ctx);

}  // namespace plasma_ucx
