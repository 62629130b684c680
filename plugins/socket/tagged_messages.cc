#include "plugins/socket/tagged_messages.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "plugins/socket/connection.h"
#include "plugins/socket/request.h"

namespace plasma_socket {

namespace {

// Largest eager frame accepted from a peer (peers may be configured with a
// different threshold than ours, but not with an absurd one).
constexpr uint64_t kMaxEagerFrame = 64ull << 20;
constexpr uint64_t kRendezvousEntryCost = 256;

void QueueClearToSend(Connection* conn, uint64_t transfer_id, int status) {
  FrameHeader cts;
  cts.type = FrameType::kClearToSend;
  cts.id = transfer_id;
  cts.status = status;
  conn->QueueFrame(cts, nullptr, 0, nullptr, false);
}

void ProtocolError(Connection* conn, const char* what);

// A receive matched a rendezvous request: ask for the data, or refuse it.
// False when the request made the connection fail (its unexpected messages
// are freed then).
bool AcceptRendezvous(Connection* conn, Request* req, uint64_t transfer_id, uint64_t length) {
  if (conn->recvs_awaiting_data.count(transfer_id) != 0) {
    // A peer reusing a transfer id it has not finished would make two
    // receives share one slot; the connection is failed instead.
    CompleteRequest(req, PLASMA_TP_ERR_PROTOCOL, 0);
    ProtocolError(conn, "rendezvous transfer id reused while in flight");
    return false;
  }
  if (length > req->length) {
    CompleteRequest(req, PLASMA_TP_ERR_MESSAGE_TOO_LARGE, length);
    QueueClearToSend(conn, transfer_id, PLASMA_TP_ERR_MESSAGE_TOO_LARGE);
    return true;
  }
  req->stage = RequestStage::kAwaitingData;
  req->transfer_id = transfer_id;
  req->expected_length = length;
  conn->recvs_awaiting_data[transfer_id] = req;
  QueueClearToSend(conn, transfer_id, PLASMA_TP_OK);
  return true;
}

bool IsExact(uint64_t mask) { return mask == PLASMA_TP_TAG_EXACT; }

// The earliest posted receive that matches `tag`: the head of the tag's
// exact FIFO, unless a prefix receive posted before it matches too.
Request* TakeMatchingPostedRecv(Connection* conn, uint64_t tag) {
  auto bucket = conn->exact_recvs.find(tag);
  Request* exact = bucket != conn->exact_recvs.end() ? bucket->second.front() : nullptr;
  for (auto it = conn->prefix_recvs.begin(); it != conn->prefix_recvs.end(); ++it) {
    Request* candidate = *it;
    if (exact != nullptr && candidate->post_seq > exact->post_seq) break;
    if (TagMatches(tag, candidate->tag, candidate->tag_mask)) {
      conn->prefix_recvs.erase(it);
      candidate->result.tag = tag;
      return candidate;
    }
  }
  if (exact == nullptr) return nullptr;
  bucket->second.pop_front();
  if (bucket->second.empty()) conn->exact_recvs.erase(bucket);
  exact->result.tag = tag;
  return exact;
}

void AddPostedRecv(Connection* conn, Request* req) {
  req->stage = RequestStage::kPosted;
  req->post_seq = conn->next_recv_seq++;
  if (IsExact(req->tag_mask)) {
    conn->exact_recvs[req->tag].push_back(req);
  } else {
    req->prefix_pos = conn->prefix_recvs.insert(conn->prefix_recvs.end(), req);
  }
}

// The first arrived message `(tag, mask)` matches: for an exact mask the
// head of that tag's FIFO, otherwise the first in arrival order.
UnexpectedMessage* FindUnexpected(Connection* conn, uint64_t tag, uint64_t tag_mask) {
  if (IsExact(tag_mask)) {
    auto bucket = conn->unexpected_by_tag.find(tag);
    return bucket != conn->unexpected_by_tag.end() ? bucket->second.front() : nullptr;
  }
  for (auto& msg : conn->unexpected) {
    if (TagMatches(msg->tag, tag, tag_mask)) return msg.get();
  }
  return nullptr;
}

UnexpectedMessage* AddUnexpected(Connection* conn, std::unique_ptr<UnexpectedMessage> msg) {
  UnexpectedMessage* raw = msg.get();
  conn->unexpected_bytes += raw->cost;
  raw->pos = conn->unexpected.insert(conn->unexpected.end(), std::move(msg));
  conn->unexpected_by_tag[raw->tag].push_back(raw);
  return raw;
}

void ProtocolError(Connection* conn, const char* what) {
  conn->ctx->Log(PLASMA_TP_LOG_ERROR, "socket: %s: protocol error: %s", conn->Describe().c_str(),
                 what);
  conn->Fail(PLASMA_TP_ERR_PROTOCOL, what);
}

}  // namespace

void PostSend(Connection* conn, Request* req) {
  FrameHeader header;
  header.tag = req->tag;
  header.length = req->length;
  if (req->length <= conn->ctx->config.eager_threshold) {
    header.type = FrameType::kEager;
    req->stage = RequestStage::kQueuedFrame;
    conn->QueueFrame(header, req->buffer, req->length, req, true);
    return;
  }
  // Rendezvous: announce now, write the payload once the peer has a buffer.
  header.type = FrameType::kRendezvousRequest;
  header.id = conn->next_transfer_id++;
  req->transfer_id = header.id;
  req->stage = RequestStage::kAwaitingClearToSend;
  conn->sends_awaiting_cts[header.id] = req;
  conn->QueueFrame(header, nullptr, 0, req, false);
}

void PostRecv(Connection* conn, Request* req) {
  if (UnexpectedMessage* msg = FindUnexpected(conn, req->tag, req->tag_mask)) {
    req->result.tag = msg->tag;
    const bool landing_now = conn->in_payload && conn->sink.unexpected == msg;
    if (msg->rendezvous) {
      if (!AcceptRendezvous(conn, req, msg->transfer_id, msg->length)) return;  // msg is gone
    } else if (msg->length > req->length) {
      CompleteRequest(req, PLASMA_TP_ERR_MESSAGE_TOO_LARGE, msg->length);
      if (landing_now) conn->sink = RxSink{nullptr, msg->length, conn->sink.received};
    } else if (!landing_now) {
      if (msg->length > 0) std::memcpy(req->buffer, msg->data.get(), msg->length);
      CompleteRequest(req, PLASMA_TP_OK, msg->length);
    } else {
      // Still arriving: move what came so far, land the rest directly.
      if (conn->sink.received > 0) std::memcpy(req->buffer, msg->data.get(), conn->sink.received);
      conn->sink.base = req->buffer;
      conn->sink.unexpected = nullptr;
      conn->sink.request = req;
      req->stage = RequestStage::kLanding;
    }
    DropUnexpected(conn, msg);
    conn->MaybeResumeReading();
    return;
  }
  AddPostedRecv(conn, req);
}

void WithdrawPostedRecv(Connection* conn, Request* req) {
  if (!IsExact(req->tag_mask)) {
    conn->prefix_recvs.erase(req->prefix_pos);
    return;
  }
  auto bucket = conn->exact_recvs.find(req->tag);
  if (bucket == conn->exact_recvs.end()) return;
  std::deque<Request*>& fifo = bucket->second;
  auto found = std::find(fifo.begin(), fifo.end(), req);
  if (found != fifo.end()) fifo.erase(found);
  if (fifo.empty()) conn->exact_recvs.erase(bucket);
}

int ProbeUnexpected(Connection* conn, uint64_t tag, uint64_t tag_mask, UnexpectedMessage** found) {
  UnexpectedMessage* msg = FindUnexpected(conn, tag, tag_mask);
  if (msg == nullptr) return PLASMA_TP_IN_PROGRESS;
  *found = msg;
  return PLASMA_TP_OK;
}

void DropUnexpected(Connection* conn, UnexpectedMessage* msg) {
  auto bucket = conn->unexpected_by_tag.find(msg->tag);
  if (bucket != conn->unexpected_by_tag.end()) {
    std::deque<UnexpectedMessage*>& fifo = bucket->second;
    if (!fifo.empty() && fifo.front() == msg) {
      fifo.pop_front();
    } else {
      auto found = std::find(fifo.begin(), fifo.end(), msg);
      if (found != fifo.end()) fifo.erase(found);
    }
    if (fifo.empty()) conn->unexpected_by_tag.erase(bucket);
  }
  conn->unexpected_bytes -= msg->cost;
  conn->unexpected.erase(msg->pos);  // frees msg
}

void OnEagerHeader(Connection* conn, const FrameHeader& header) {
  if (header.length > kMaxEagerFrame) {
    ProtocolError(conn, "eager frame too large");
    return;
  }
  if (!ValidTag(header.tag)) {
    ProtocolError(conn, "message tag uses bits above the host's 48");
    return;
  }
  if (Request* req = TakeMatchingPostedRecv(conn, header.tag)) {
    if (header.length > req->length) {
      CompleteRequest(req, PLASMA_TP_ERR_MESSAGE_TOO_LARGE, header.length);
      conn->BeginPayload(RxSink{nullptr, header.length});
      return;
    }
    req->stage = RequestStage::kLanding;
    conn->BeginPayload(RxSink{req->buffer, header.length, 0, req});
    return;
  }
  auto msg = std::make_unique<UnexpectedMessage>();
  msg->tag = header.tag;
  msg->length = header.length;
  msg->data.reset(new (std::nothrow) uint8_t[header.length > 0 ? header.length : 1]);
  if (!msg->data) {
    conn->ctx->Log(PLASMA_TP_LOG_ERROR, "socket: no memory for a %llu-byte unexpected message",
                   static_cast<unsigned long long>(header.length));
    conn->Fail(PLASMA_TP_ERR_NO_MEMORY, "no memory for unexpected message");
    return;
  }
  msg->cost = header.length;
  UnexpectedMessage* raw = AddUnexpected(conn, std::move(msg));
  conn->BeginPayload(RxSink{raw->data.get(), header.length, 0, nullptr, raw});
}

void OnRendezvousRequest(Connection* conn, const FrameHeader& header) {
  if (!ValidTag(header.tag)) {
    ProtocolError(conn, "message tag uses bits above the host's 48");
    return;
  }
  if (Request* req = TakeMatchingPostedRecv(conn, header.tag)) {
    AcceptRendezvous(conn, req, header.id, header.length);
    return;
  }
  auto msg = std::make_unique<UnexpectedMessage>();
  msg->rendezvous = true;
  msg->tag = header.tag;
  msg->length = header.length;
  msg->transfer_id = header.id;
  msg->cost = kRendezvousEntryCost;
  AddUnexpected(conn, std::move(msg));
}

void OnClearToSend(Connection* conn, const FrameHeader& header) {
  auto found = conn->sends_awaiting_cts.find(header.id);
  if (found == conn->sends_awaiting_cts.end()) {
    ProtocolError(conn, "clear-to-send for an unknown transfer");
    return;
  }
  Request* req = found->second;
  conn->sends_awaiting_cts.erase(found);
  if (header.status != PLASMA_TP_OK) {
    // The receiver refused (its buffer is too small); the sender learns too.
    // Only a refusal for size is a peer's to give; anything else is noise.
    CompleteRequest(req, header.status == PLASMA_TP_ERR_MESSAGE_TOO_LARGE
                             ? PLASMA_TP_ERR_MESSAGE_TOO_LARGE
                             : PLASMA_TP_ERR_PROTOCOL,
                    0);
    return;
  }
  FrameHeader data;
  data.type = FrameType::kRendezvousData;
  data.id = req->transfer_id;
  data.length = req->length;
  req->stage = RequestStage::kQueuedFrame;
  conn->QueueFrame(data, req->buffer, req->length, req, true);
}

void OnRendezvousData(Connection* conn, const FrameHeader& header) {
  auto found = conn->recvs_awaiting_data.find(header.id);
  if (found == conn->recvs_awaiting_data.end()) {
    ProtocolError(conn, "data for an unknown transfer");
    return;
  }
  Request* req = found->second;
  conn->recvs_awaiting_data.erase(found);
  if (req == nullptr) {  // canceled after our CTS
    conn->BeginPayload(RxSink{nullptr, header.length});
    return;
  }
  if (header.length != req->expected_length) {
    CompleteRequest(req, PLASMA_TP_ERR_PROTOCOL, 0);
    ProtocolError(conn, "rendezvous data length differs from its announcement");
    return;
  }
  req->stage = RequestStage::kLanding;
  conn->BeginPayload(RxSink{req->buffer, header.length, 0, req});
}

}  // namespace plasma_socket
