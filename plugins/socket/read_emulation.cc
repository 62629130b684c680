#include "plugins/socket/read_emulation.h"

#include "plugins/socket/connection.h"
#include "plugins/socket/memory.h"
#include "plugins/socket/request.h"

namespace plasma_socket {

void PostRead(Connection* conn, Request* req, uint64_t remote_addr, const RemoteKey* rkey) {
  FrameHeader header;
  header.type = FrameType::kReadRequest;
  header.id = conn->next_read_id++;
  header.length = req->length;
  header.remote_addr = remote_addr;
  header.rkey = rkey->key;
  req->transfer_id = header.id;
  req->stage = RequestStage::kAwaitingData;
  conn->pending_reads[header.id] = req;
  conn->QueueFrame(header, nullptr, 0, nullptr, false);
}

// Holder side, inside progress(): the host is not involved.
void OnReadRequest(Connection* conn, const FrameHeader& header) {
  FrameHeader response;
  response.type = FrameType::kReadResponse;
  response.id = header.id;
  Registration* reg = nullptr;
  response.status = CheckRemoteRead(conn->ctx, header.rkey, header.remote_addr, header.length, &reg);
  if (response.status != PLASMA_TP_OK) {
    conn->ctx->Log(PLASMA_TP_LOG_DEBUG, "socket: %s: refused READ of %llu bytes at 0x%llx: %s",
                   conn->Describe().c_str(), static_cast<unsigned long long>(header.length),
                   static_cast<unsigned long long>(header.remote_addr),
                   plasma_tp_default_strerror(response.status));
    conn->QueueFrame(response, nullptr, 0, nullptr, false);
    return;
  }
  // Written straight from the registered memory; the pin keeps
  // mem_deregister() answering IN_PROGRESS until the frame is out.
  response.length = header.length;
  conn->QueueFrame(response, reinterpret_cast<const void*>(static_cast<uintptr_t>(header.remote_addr)),
                   header.length, nullptr, false, reg);
}

void OnReadResponse(Connection* conn, const FrameHeader& header) {
  auto found = conn->pending_reads.find(header.id);
  if (found == conn->pending_reads.end()) {
    conn->ctx->Log(PLASMA_TP_LOG_ERROR, "socket: %s: protocol error: response to unknown read",
                   conn->Describe().c_str());
    conn->Fail(PLASMA_TP_ERR_PROTOCOL, "response to unknown read");
    return;
  }
  Request* req = found->second;
  conn->pending_reads.erase(found);
  const bool failed = header.status != PLASMA_TP_OK;
  if ((failed && header.length != 0) || (!failed && req != nullptr && header.length != req->length)) {
    if (req != nullptr) CompleteRequest(req, PLASMA_TP_ERR_PROTOCOL, 0);
    conn->ctx->Log(PLASMA_TP_LOG_ERROR, "socket: %s: protocol error: bad read response length",
                   conn->Describe().c_str());
    conn->Fail(PLASMA_TP_ERR_PROTOCOL, "bad read response");
    return;
  }
  if (req == nullptr) {  // canceled: drop the bytes
    conn->BeginPayload(RxSink{nullptr, header.length});
    return;
  }
  if (failed) {
    // A holder refuses a READ only for its key or its range; any other
    // status from a peer is noise, not something to hand the host.
    bool refusal = header.status == PLASMA_TP_ERR_BAD_RKEY ||
                   header.status == PLASMA_TP_ERR_OUT_OF_BOUNDS;
    CompleteRequest(req, refusal ? header.status : PLASMA_TP_ERR_PROTOCOL, 0);
    conn->BeginPayload(RxSink{nullptr, 0});
    return;
  }
  req->stage = RequestStage::kLanding;
  conn->BeginPayload(RxSink{req->buffer, header.length, 0, req});
}

}  // namespace plasma_socket
