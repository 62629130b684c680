// The eager path: messages up to the receiver's buffer size travel in one
// SEND into a pre-posted bounce buffer, copied out on arrival (one copy on
// the receiving side; none on the sending side when the host's buffer is
// registered or small enough to go inline).
//
// Credits: each connection posts `recv_buffers` receives for its peer's
// messages, and the peer sends only while it holds a credit, so a SEND never
// meets an empty receive queue. Every message carries the cumulative count
// of buffers granted, so credits flow back on ordinary traffic; one-way
// traffic returns them with a kCredit once half are owed. kCredit messages
// take no credit: each carries at least half the window, so at most two
// can be outstanding, and two extra receives are posted for them.
#include <cstring>
#include <memory>

#include "plugins/verbs/connection.h"
#include "plugins/verbs/memory.h"
#include "plugins/verbs/request.h"

namespace plasma_verbs {
namespace {

enum class PostResult { kPosted, kBlocked, kDropped };

}  // namespace

void Connection::QueueSend(Request* req) {
  req->phase = RequestPhase::kQueued;
  Outgoing item;
  item.type = MessageType::kEager;  // or kRts: decided when posted, once the peer's limit is known
  item.req = req;
  outgoing.push_back(item);
  MarkBusy();
  FlushOutgoing();
}

void Connection::QueueFin(uint64_t transfer, int status) {
  if (Failed()) return;
  Outgoing item;
  item.type = MessageType::kFin;
  item.transfer = transfer;
  item.status = status;
  outgoing.push_front(item);  // it ends the peer's send; untagged, so order is free
  FlushOutgoing();
}

void Connection::DropQueuedSend(Request* req) {
  for (auto it = outgoing.begin(); it != outgoing.end(); ++it) {
    if (it->req == req) {
      outgoing.erase(it);
      return;
    }
  }
}

void Connection::PostRecv(Request* req) {
  req->post_seq = next_post_seq++;
  std::unique_ptr<ArrivedMessage> arrived = matcher.TakeArrived(req->tag, req->tag_mask);
  if (arrived != nullptr) {
    req->result.tag = arrived->tag;
    if (arrived->rendezvous) {
      StartRendezvousRecv(req, arrived->offer);
    } else if (arrived->bytes.size() > req->length) {
      CompleteRequest(req, PLASMA_TP_ERR_MESSAGE_TOO_LARGE, arrived->bytes.size());
    } else {
      if (!arrived->bytes.empty()) std::memcpy(req->buffer, arrived->bytes.data(), arrived->bytes.size());
      CompleteRequest(req, PLASMA_TP_OK, arrived->bytes.size());
    }
    return;
  }
  if (Failed()) {
    CompleteRequest(req, failure_status, 0);
    return;
  }
  req->phase = RequestPhase::kPosted;
  matcher.AddReceive(req);
}

namespace {

// What posting `item` takes besides a send-queue entry: a credit (all but
// kCredit) and, for a copied message, a send bounce buffer.
bool NeedsBuffer(const Connection& conn, const Outgoing& item) {
  size_t size = kHeaderSize;
  if (item.type == MessageType::kFin) size += kFinBodySize;
  else if (item.req->length > conn.peer_payload) size += kRtsBodySize;
  else if (item.req->mem != nullptr) return false;  // zero-copy from the host's registration
  else size += item.req->length;
  return size > conn.max_inline;
}

}  // namespace

void Connection::FlushOutgoing() {
  if (state != ConnState::kUp) return;
  while (!outgoing.empty()) {
    const Outgoing item = outgoing.front();
    const bool needs_buffer = NeedsBuffer(*this, item);
    if (FreeSendSlots() == 0 || Credits() == 0 || (needs_buffer && free_send_buffers.empty())) break;
    // Signal unless the next message goes out right behind this one (then
    // its completion retires this), or the burst has run long.
    bool signaled = outgoing.size() == 1 || unsignaled + 1 >= ctx->config.signal_every ||
                    FreeSendSlots() <= 2 || Credits() <= 1;
    if (!signaled) {
      const bool next_needs_buffer = NeedsBuffer(*this, outgoing[1]);
      signaled = next_needs_buffer && free_send_buffers.size() <= (needs_buffer ? 1u : 0u);
    }
    outgoing.pop_front();

    MessageHeader header;
    header.granted = granted;
    SendSlot* slot = NextSendSlot();
    slot->use = SendUse::kMessage;
    slot->req = nullptr;
    slot->buffer = -1;
    uint8_t* slot_header = send_headers + (slot - send_slots.data()) * kHeaderSize;
    uint8_t control[kHeaderSize + kRtsBodySize];
    ibv_sge sge[2];
    ibv_send_wr wr{};
    wr.opcode = IBV_WR_SEND;
    wr.sg_list = sge;
    const void* payload = nullptr;
    uint32_t payload_len = 0;
    uint32_t payload_lkey = 0;

    if (item.type == MessageType::kFin) {
      header.type = MessageType::kFin;
      Put64(control + kHeaderSize, item.transfer);
      Put32(control + kHeaderSize + 8, static_cast<uint32_t>(item.status));
      Put32(control + kHeaderSize + 12, 0);
      payload_len = kFinBodySize;
    } else if (item.req->length > peer_payload) {
      Request* req = item.req;
      if (req->mem == nullptr) {
        ctx->Log(PLASMA_TP_LOG_ERROR,
                 "verbs: a %llu-byte unregistered send is larger than %s's eager buffers (%u bytes);"
                 " set the same PLASMA_VERBS_RNDV_THRESHOLD on every node",
                 static_cast<unsigned long long>(req->length), peer.c_str(), peer_payload);
        slot->use = SendUse::kFree;
        CompleteRequest(req, PLASMA_TP_ERR_INVALID_ARGUMENT, 0);
        continue;
      }
      header.type = MessageType::kRts;
      header.tag = req->tag;
      req->transfer = next_transfer++;
      req->phase = RequestPhase::kAwaitingFin;
      awaiting_fin[req->transfer] = req;
      RtsBody body;
      body.transfer = req->transfer;
      body.length = req->length;
      body.addr = reinterpret_cast<uintptr_t>(req->buffer);
      body.rkey = req->mem->mr->rkey;
      body.Encode(control + kHeaderSize);
      payload_len = kRtsBodySize;
    } else {
      Request* req = item.req;
      header.type = MessageType::kEager;
      header.tag = req->tag;
      req->phase = RequestPhase::kOnWire;
      slot->req = req;
      payload = req->buffer;
      payload_len = static_cast<uint32_t>(req->length);
      payload_lkey = req->mem != nullptr ? req->mem->mr->lkey : 0;
    }
    header.Encode(control);
    const uint32_t total = static_cast<uint32_t>(kHeaderSize) + payload_len;
    const bool host_bytes = payload != nullptr;
    if (total <= max_inline) {
      wr.send_flags = IBV_SEND_INLINE;
      sge[0] = {reinterpret_cast<uintptr_t>(control), static_cast<uint32_t>(kHeaderSize) +
                                                          (host_bytes ? 0 : payload_len), 0};
      wr.num_sge = 1;
      if (host_bytes && payload_len > 0) {
        sge[1] = {reinterpret_cast<uintptr_t>(payload), payload_len, 0};
        wr.num_sge = 2;
      }
    } else if (host_bytes && item.req->mem != nullptr) {
      std::memcpy(slot_header, control, kHeaderSize);
      sge[0] = {reinterpret_cast<uintptr_t>(slot_header), static_cast<uint32_t>(kHeaderSize),
                ring_mr->lkey};
      sge[1] = {reinterpret_cast<uintptr_t>(payload), payload_len, payload_lkey};
      wr.num_sge = payload_len > 0 ? 2 : 1;
    } else {
      slot->buffer = free_send_buffers.back();
      free_send_buffers.pop_back();
      uint8_t* buffer = send_buffer_base + size_t(slot->buffer) * buffer_size;
      std::memcpy(buffer, control, kHeaderSize + (host_bytes ? 0 : payload_len));
      if (host_bytes && payload_len > 0) std::memcpy(buffer + kHeaderSize, payload, payload_len);
      sge[0] = {reinterpret_cast<uintptr_t>(buffer), total, ring_mr->lkey};
      wr.num_sge = 1;
    }
    announced = granted;
    ++sent_with_credit;
    if (!PostSend(&wr, slot, signaled)) return;  // Fail() completed everything
  }
  MaybeReturnCredits();
}

void Connection::MaybeReturnCredits() {
  if (state != ConnState::kUp) return;
  const uint32_t owed = granted - announced;
  if (owed == 0 || owed < std::max<uint32_t>(1, ctx->config.recv_buffers / 2)) return;
  if (FreeSendSlots() == 0) return;  // retried after the next send completion
  uint8_t control[kHeaderSize];
  MessageHeader header;
  header.type = MessageType::kCredit;
  header.granted = granted;
  header.Encode(control);
  SendSlot* slot = NextSendSlot();
  slot->use = SendUse::kMessage;
  slot->req = nullptr;
  slot->buffer = -1;
  ibv_sge sge{reinterpret_cast<uintptr_t>(control), static_cast<uint32_t>(kHeaderSize), 0};
  ibv_send_wr wr{};
  wr.opcode = IBV_WR_SEND;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  if (kHeaderSize <= max_inline) {
    wr.send_flags = IBV_SEND_INLINE;
  } else {
    if (free_send_buffers.empty()) return;
    slot->buffer = free_send_buffers.back();
    free_send_buffers.pop_back();
    uint8_t* buffer = send_buffer_base + size_t(slot->buffer) * buffer_size;
    std::memcpy(buffer, control, kHeaderSize);
    sge = {reinterpret_cast<uintptr_t>(buffer), static_cast<uint32_t>(kHeaderSize), ring_mr->lkey};
  }
  announced = granted;
  PostSend(&wr, slot, /*signaled=*/true);
}

bool Connection::HasPostableWork() const {
  if (state != ConnState::kUp) return false;
  if (!outgoing.empty() && FreeSendSlots() > 0 && Credits() > 0) {
    if (!NeedsBuffer(*this, outgoing.front()) || !free_send_buffers.empty()) return true;
  }
  if (!pending_reads.empty() && reads_in_flight < max_reads && FreeSendSlots() > 0) return true;
  const uint32_t owed = granted - announced;
  return owed > 0 && owed >= std::max<uint32_t>(1, ctx->config.recv_buffers / 2) &&
         FreeSendSlots() > 0;
}

void Connection::RetireMessage(SendSlot* slot, int status) {
  if (slot->buffer >= 0) free_send_buffers.push_back(slot->buffer);
  slot->buffer = -1;
  if (slot->req != nullptr) {
    Request* req = slot->req;
    slot->req = nullptr;
    CompleteRequest(req, status, status == PLASMA_TP_OK ? req->length : 0);
  }
  slot->use = SendUse::kFree;
}

void Connection::OnArrival(RecvSlot* slot, uint32_t byte_len) {
  if (byte_len < kHeaderSize || byte_len > buffer_size) {
    DeferFailure(PLASMA_TP_ERR_PROTOCOL, "a message of " + std::to_string(byte_len) +
                                             " bytes does not fit the framing");
    return;
  }
  const MessageHeader header = MessageHeader::Decode(slot->buffer);
  if (static_cast<int32_t>(header.granted - peer_granted) > 0) peer_granted = header.granted;
  const uint8_t* body = slot->buffer + kHeaderSize;
  const uint32_t body_len = byte_len - static_cast<uint32_t>(kHeaderSize);
  switch (header.type) {
    case MessageType::kEager: {
      Request* req = matcher.TakeReceiveFor(header.tag);
      if (req == nullptr) {
        auto message = std::make_unique<ArrivedMessage>();
        message->tag = header.tag;
        message->bytes.assign(body, body + body_len);
        matcher.AddArrived(std::move(message));
      } else if (body_len > req->length) {
        req->result.tag = header.tag;
        CompleteRequest(req, PLASMA_TP_ERR_MESSAGE_TOO_LARGE, body_len);
      } else {
        if (body_len > 0) std::memcpy(req->buffer, body, body_len);
        req->result.tag = header.tag;
        CompleteRequest(req, PLASMA_TP_OK, body_len);
      }
      break;
    }
    case MessageType::kRts: {
      if (body_len < kRtsBodySize) {
        DeferFailure(PLASMA_TP_ERR_PROTOCOL, "a truncated rendezvous offer");
        return;
      }
      const RtsBody offer = RtsBody::Decode(body);
      Request* req = matcher.TakeReceiveFor(header.tag);
      if (req == nullptr) {
        auto message = std::make_unique<ArrivedMessage>();
        message->tag = header.tag;
        message->rendezvous = true;
        message->offer = offer;
        matcher.AddArrived(std::move(message));
      } else {
        req->result.tag = header.tag;
        StartRendezvousRecv(req, offer);
      }
      break;
    }
    case MessageType::kFin:
      if (body_len < kFinBodySize) {
        DeferFailure(PLASMA_TP_ERR_PROTOCOL, "a truncated rendezvous finish");
        return;
      }
      OnFin(Get64(body), static_cast<int32_t>(Get32(body + 8)));
      break;
    case MessageType::kCredit:
      break;
    default:
      DeferFailure(PLASMA_TP_ERR_PROTOCOL,
                   "unknown message type " + std::to_string(static_cast<int>(header.type)));
      return;
  }
  if (qp == nullptr || Failed()) return;
  ibv_sge sge{reinterpret_cast<uintptr_t>(slot->buffer), buffer_size, ring_mr->lkey};
  ibv_recv_wr wr{};
  wr.wr_id = reinterpret_cast<uintptr_t>(slot);
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  if (ibv_post_recv(qp, &wr, &bad) != 0) {
    DeferFailure(PLASMA_TP_ERR_IO, "reposting a receive buffer failed");
    return;
  }
  if (header.type != MessageType::kCredit) ++granted;
}

}  // namespace plasma_verbs
