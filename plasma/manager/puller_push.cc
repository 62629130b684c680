// The Puller's pushes (transfer_protocol.h): the object is created before
// the PULL, its chunks' receives are posted straight into it, and the
// holder sends HEADER and chunks at once.
#include <algorithm>

#include "plasma/manager/puller.h"
#include "plasma/manager/puller_state.h"

namespace plasma {

using transfer::HeaderMessage;
using transfer::HeaderStatus;
using transfer::MakeTag;
using transfer::MessageKind;
using transfer::Mode;

// Pushing pays where the plugin's READ is itself a request and a reply,
// and only for objects that would not come inline anyway.
bool Puller::WantsPush(const PullState* pull) const {
  if (resources_.push_chunk == 0 || !pull->announced) return false;
  uint64_t total = pull->announced->total();
  if (total + transfer::kMaxControlMessage <= resources_.header_capacity) return false;
  if (total > options_.max_push_bytes || total > resources_.store_capacity) return false;
  return inflight_bytes_ == 0 || inflight_bytes_ + total <= options_.inflight_byte_budget;
}

// Every chunk's receive is posted, in order, before the PULL goes out: the
// holder's DATA messages match them in the order sent and land in place.
void Puller::ReceivePushInto(PullState* pull, Result<StoredObject> created) {
  if (!TakeCreated(pull, std::move(created))) return;
  uint64_t total = pull->header.total_size();
  uint64_t chunk = resources_.push_chunk;
  pull->push = {};
  pull->push.chunks_left = transfer::PushChunks(total, chunk);
  uint64_t transfer = pull->transfer;
  uint64_t attempt = pull->attempt;
  plasma_tp_conn_t conn = pull->peer->conn;
  plasma_tp_mem_t arena = resources_.arena_mem;
  uint64_t tag = MakeTag(MessageKind::kData, transfer);
  for (uint64_t offset = 0; offset < total; offset += chunk) {
    uint8_t* piece = pull->object.data() + offset;
    uint64_t length = std::min(chunk, total - offset);
    driver_->Post(
        PLASMA_TP_OP_RECV,
        [this, conn, tag, piece, length, arena](plasma_tp_request_t* out) {
          return ops_->recv(context_, conn, tag, PLASMA_TP_TAG_EXACT, piece, size_t(length), arena,
                            out);
        },
        [this, transfer, attempt, length](const plasma_tp_completion_t& c) {
          OnPushedChunk(transfer, attempt, length, c);
        });
  }
  SendPull(pull, total);
}

void Puller::OnPushHeader(PullState* pull, const ControlBuffer& buffer,
                          const plasma_tp_completion_t& c) {
  pull->header_us = MonotonicMicroseconds();
  pull->push.header_seen = true;
  HeaderMessage header;
  Status decoded = c.status == PLASMA_TP_OK
                       ? transfer::Decode(buffer.data(), c.length, &header)
                       : RequestFailure(pull, c.status, "waiting for the object header");
  if (decoded.ok() && header.transfer != pull->transfer) {
    decoded = Status::ProtocolError("header for transfer " + std::to_string(header.transfer) +
                                    " arrived as transfer " + std::to_string(pull->transfer));
  }
  bool nonsense = c.status == PLASMA_TP_OK && !decoded.ok();
  if (decoded.ok()) {
    switch (header.status) {
      case HeaderStatus::kOk:
        if (header.mode != Mode::kPushed || header.data_size != pull->header.data_size ||
            header.metadata_size != pull->header.metadata_size) {
          decoded = Status::ProtocolError("the holder answered a push with another transfer");
          nonsense = true;
        }
        break;
      case HeaderStatus::kBusy: pull->push.busy = true; break;
      case HeaderStatus::kNotFound: decoded = Status::ObjectNotFound("the holder no longer has it"); break;
      case HeaderStatus::kUnavailable: decoded = Status::Unavailable("the holder's store failed"); break;
      case HeaderStatus::kSizeMismatch:
        decoded = Status::ObjectNotFound("the holder's copy has other sizes than announced");
        break;
    }
  }
  if (decoded.ok() && !pull->push.busy) {
    pull->header = header;  // the digest, for the seal
    pull->holder_pins = true;
    if (pull->peer != nullptr) ++pull->peer->pinned_transfers;
  }
  if (!decoded.ok() && pull->push.failure.ok()) pull->push.failure = decoded;
  ReleaseHeaderBuffer(pull);
  // A holder speaking nonsense is not asked again on this connection; the
  // close ends our chunk receives.
  if (nonsense && pull->peer != nullptr) DropPeer(pull->peer, decoded);
  if (pull->push.chunks_left == 0) ResolvePush(pull);
}

void Puller::OnPushedChunk(uint64_t transfer, uint64_t attempt, uint64_t expected_length,
                           const plasma_tp_completion_t& c) {
  PullState* pull = Find(transfer, attempt);
  if (pull == nullptr || pull->phase != Phase::kAwaitingPush) return;
  --pull->push.chunks_left;
  if (c.status != PLASMA_TP_OK) {
    if (pull->push.failure.ok()) pull->push.failure = RequestFailure(pull, c.status, "receive a pushed chunk");
  } else if (c.length != expected_length) {
    ++pull->push.short_chunks;
  }
  if (pull->push.header_seen && pull->push.chunks_left == 0) ResolvePush(pull);
}

// The HEADER and every chunk are in: nothing writes into the object any more.
void Puller::ResolvePush(PullState* pull) {
  loop_->CancelTimer(pull->deadline);
  pull->deadline = 0;
  Status status = pull->push.failure;
  if (status.ok() && pull->push.busy) {
    // Asked again later, with a fresh object: this one goes now.
    pull->object = StoredObject();
    store_->Abort(pull->id);
    inflight_bytes_ -= pull->charged_bytes;
    pull->charged_bytes = 0;
    OnBusy(pull);
    return;
  }
  if (status.ok() && pull->push.short_chunks > 0) {
    status = Status::ProtocolError(std::to_string(pull->push.short_chunks) +
                                   " pushed chunks shorter than asked for");
  }
  BytesReceived(pull, status);
}

}  // namespace plasma
