#include "plasma/manager/holder.h"

#include <algorithm>

#include "plasma/common/logging.h"

namespace plasma {

using transfer::HeaderMessage;
using transfer::HeaderStatus;
using transfer::MakeTag;
using transfer::MessageKind;
using transfer::Mode;

Holder::Holder(EventLoop* loop, TransportDriver* driver, ControlBufferPool* buffers,
               LocalStore* store, const HolderOptions& options, const HolderArena& arena)
    : loop_(loop),
      driver_(driver),
      ops_(&driver->ops()),
      context_(driver->context()),
      buffers_(buffers),
      store_(store),
      options_(options),
      arena_(arena) {}

Holder::~Holder() {
  for (auto& [conn, served] : served_) {
    for (auto& [transfer, loan] : served.loans) loop_->CancelTimer(loan.lease);
  }
  served_.clear();  // releases every object still lent
}

Holder::ServedConnection* Holder::Served(plasma_tp_conn_t conn, uint64_t serial) {
  auto it = served_.find(conn);
  if (it == served_.end() || it->second.serial != serial) return nullptr;
  return &it->second;
}

void Holder::AcceptConnections(plasma_tp_listener_t listener) {
  while (true) {
    plasma_tp_conn_t conn;
    if (ops_->accept(context_, listener, &conn) != PLASMA_TP_OK) return;
    uint64_t serial = next_serial_++;
    served_[conn].serial = serial;
    for (int i = 0; i < options_.control_receives_per_connection; ++i) {
      if (Served(conn, serial) == nullptr) break;
      PostControlReceive(conn, serial);
    }
  }
}

void Holder::PostControlReceive(plasma_tp_conn_t conn, uint64_t serial) {
  auto buffer = buffers_->Acquire(transfer::kMaxControlMessage);
  if (!buffer.ok()) {
    Close(conn, buffer.status());
    return;
  }
  auto held = std::make_shared<ControlBuffer>(std::move(buffer).value());
  driver_->Post(
      PLASMA_TP_OP_RECV,
      [this, conn, held](plasma_tp_request_t* out) {
        return ops_->recv(context_, conn, MakeTag(MessageKind::kPull, 0), transfer::kControlMask,
                          held->data(), held->capacity(), held->mem(), out);
      },
      [this, conn, serial, held](const plasma_tp_completion_t& c) {
        if (Served(conn, serial) == nullptr) return;  // closed meanwhile
        if (c.status != PLASMA_TP_OK) {
          Close(conn, driver_->plugin()->ToStatus(c.status, "control receive"));
          return;
        }
        OnControlMessage(conn, serial, held->data(), c);
        if (Served(conn, serial) != nullptr) PostControlReceive(conn, serial);
      });
}

void Holder::OnControlMessage(plasma_tp_conn_t conn, uint64_t serial, const uint8_t* data,
                              const plasma_tp_completion_t& completion) {
  if (transfer::TagKind(completion.tag) == MessageKind::kPull) {
    transfer::PullMessage pull;
    Status s = transfer::Decode(data, completion.length, &pull);
    if (!s.ok()) {
      Close(conn, s);
      return;
    }
    to_serve_.push_back({conn, serial, pull});
    return;
  }
  transfer::FinishMessage finish;
  Status s = transfer::Decode(data, completion.length, &finish);
  if (!s.ok()) {
    Close(conn, s);
    return;
  }
  ServedConnection* served = Served(conn, serial);
  auto loan = served->loans.find(finish.transfer);
  if (loan == served->loans.end()) {
    PLASMA_LOG(kDebug) << "FINISH for transfer " << finish.transfer << ", which is not lent";
    return;
  }
  if (loan->second.unsent_chunks > 0) {
    // Our own sends still read the object: it is not the puller's to end.
    Close(conn, Status::ProtocolError("FINISH for transfer " + std::to_string(finish.transfer) +
                                      " while it is being pushed"));
    return;
  }
  EndLoan(served, finish.transfer);  // releases the object in our store
}

bool Holder::RunStoreCalls() {
  if (to_serve_.empty()) return false;
  std::vector<QueuedServe> queued;
  queued.swap(to_serve_);
  std::vector<ObjectId> ids;
  for (const QueuedServe& q : queued) ids.push_back(q.pull.id);
  // One Get for every object asked for in this pass.
  auto got = store_->Get(ids);
  if (!got.ok()) {
    PLASMA_LOG(kError) << "store Get for " << ids.size() << " pulls: " << got.status().ToString();
  }
  for (size_t i = 0; i < queued.size(); ++i) {
    if (Served(queued[i].conn, queued[i].serial) == nullptr) continue;  // closed meanwhile
    StoredObject object = got.ok() ? std::move((*got)[i]) : StoredObject();
    Serve(queued[i].conn, queued[i].serial, queued[i].pull, std::move(object), got.ok());
  }
  return true;
}

void Holder::Serve(plasma_tp_conn_t conn, uint64_t serial, const transfer::PullMessage& pull,
                   StoredObject object, bool store_answered) {
  HeaderMessage header;
  header.transfer = pull.transfer;
  if (!object.valid()) {
    header.status = store_answered ? HeaderStatus::kNotFound : HeaderStatus::kUnavailable;
    Refuse(conn, serial, pull, header);
    return;
  }
  header.data_size = uint64_t(object.data_size());
  header.metadata_size = uint64_t(object.metadata_size());
  auto digest = digests_.find(pull.id);
  if (digest != digests_.end()) header.digest = digest->second;
  uint64_t total = header.total_size();
  uint8_t* start = object.data();
  bool contiguous = header.metadata_size == 0 || object.metadata() == start + header.data_size;
  bool inside_arena = start >= arena_.base && start + total <= arena_.base + arena_.size;
  if (!contiguous || !inside_arena) {
    PLASMA_LOG(kError) << "object " << pull.id.Hex() << " is not one block in the registered arena";
    header.status = HeaderStatus::kUnavailable;
    Refuse(conn, serial, pull, header);
    return;
  }
  if (pull.push_size > 0 && pull.push_size != total) {
    // The puller's sizes are stale (the id was deleted and made again):
    // it has posted receives for other sizes, so nothing is sent into them.
    header.status = HeaderStatus::kSizeMismatch;
    Refuse(conn, serial, pull, header);
    return;
  }
  uint64_t inline_limit = std::min<uint64_t>(options_.inline_message_limit, pull.max_inline_message);
  if (pull.push_size == 0 && transfer::EncodedSize(header) + total <= inline_limit) {
    header.mode = Mode::kInline;
    SendHeader(conn, serial, header, start);  // copies the bytes: the object is released here
    return;
  }
  ServedConnection* served = Served(conn, serial);
  auto lent = served->loans.find(pull.transfer);
  if (lent != served->loans.end() && lent->second.unsent_chunks > 0) {
    Close(conn, Status::ProtocolError("PULL for transfer " + std::to_string(pull.transfer) +
                                      " while it is being pushed"));
    return;
  }
  if (served->lent_bytes > 0 && served->lent_bytes + total > options_.max_lent_bytes_per_peer) {
    header.status = HeaderStatus::kBusy;
    Refuse(conn, serial, pull, header);
    return;
  }
  if (pull.push_size > 0) {
    header.mode = Mode::kPushed;
    Lend(served, conn, pull.transfer, std::move(object));
    SendHeader(conn, serial, header, nullptr);
    if (Served(conn, serial) != nullptr) Push(conn, serial, pull.transfer, start, total, pull.push_chunk);
    return;
  }
  header.mode = Mode::kRendezvous;
  header.remote_address = reinterpret_cast<uint64_t>(start);
  header.rkey = arena_.rkey;
  Lend(served, conn, pull.transfer, std::move(object));
  SendHeader(conn, serial, header, nullptr);
}

// A refused PULL gets its HEADER; a refused push also gets an empty DATA
// message for each receive the puller posted, so none is left waiting.
void Holder::Refuse(plasma_tp_conn_t conn, uint64_t serial, const transfer::PullMessage& pull,
                    const HeaderMessage& header) {
  SendHeader(conn, serial, header, nullptr);
  uint64_t chunks = transfer::PushChunks(pull.push_size, pull.push_chunk);
  uint64_t tag = MakeTag(MessageKind::kData, pull.transfer);
  static const uint8_t kNothing = 0;
  for (uint64_t i = 0; i < chunks && Served(conn, serial) != nullptr; ++i) {
    driver_->Post(
        PLASMA_TP_OP_SEND,
        [this, conn, tag](plasma_tp_request_t* out) {
          return ops_->send(context_, conn, tag, &kNothing, 0, nullptr, out);
        },
        [this, conn, serial](const plasma_tp_completion_t& c) {
          if (c.status != PLASMA_TP_OK && Served(conn, serial) != nullptr) {
            Close(conn, driver_->plugin()->ToStatus(c.status, "answer a refused push"));
          }
        });
  }
}

// The chunks go straight from the lent object, in order, one DATA message
// each, into the receives the puller posted before its PULL.
void Holder::Push(plasma_tp_conn_t conn, uint64_t serial, uint64_t transfer, const uint8_t* start,
                  uint64_t total, uint64_t chunk) {
  ServedConnection* served = Served(conn, serial);
  served->loans[transfer].unsent_chunks = transfer::PushChunks(total, chunk);
  plasma_tp_mem_t arena = arena_.mem;
  uint64_t tag = MakeTag(MessageKind::kData, transfer);
  for (uint64_t offset = 0; offset < total; offset += chunk) {
    const uint8_t* piece = start + offset;
    size_t length = size_t(std::min(chunk, total - offset));
    driver_->Post(
        PLASMA_TP_OP_SEND,
        [this, conn, tag, piece, length, arena](plasma_tp_request_t* out) {
          return ops_->send(context_, conn, tag, piece, length, arena, out);
        },
        [this, conn, serial, transfer](const plasma_tp_completion_t& c) {
          OnChunkSent(conn, serial, transfer, c);
        });
  }
}

void Holder::OnChunkSent(plasma_tp_conn_t conn, uint64_t serial, uint64_t transfer,
                         const plasma_tp_completion_t& completion) {
  ServedConnection* served = Served(conn, serial);
  if (served == nullptr) {
    auto draining = draining_.find({serial, transfer});
    if (draining != draining_.end() && --draining->second.unsent_chunks == 0) {
      draining_.erase(draining);  // released: no send reads it any more
    }
    return;
  }
  auto it = served->loans.find(transfer);
  bool all_sent = it != served->loans.end() && it->second.unsent_chunks > 0 &&
                  --it->second.unsent_chunks == 0;
  if (completion.status != PLASMA_TP_OK) {
    // The puller waits for chunks that will not come: closing tells it.
    Close(conn, driver_->plugin()->ToStatus(completion.status, "push a chunk"));
    return;
  }
  if (all_sent) EndLoan(served, transfer);
}

// Referenced until the puller says FINISH, the lease runs out, or the
// connection dies.
void Holder::Lend(ServedConnection* served, plasma_tp_conn_t conn, uint64_t transfer,
                  StoredObject object) {
  EndLoan(served, transfer);  // a PULL repeated: the old loan goes
  Loan& fresh = served->loans[transfer];
  fresh.bytes = uint64_t(object.data_size() + object.metadata_size());
  fresh.object = std::move(object);
  served->lent_bytes += fresh.bytes;
  int64_t lease_ms =
      options_.stall_timeout_ms +
      int64_t(2 * served->lent_bytes * 1000 / std::max<uint64_t>(options_.min_transfer_rate, 1));
  uint64_t serial = served->serial;
  fresh.lease = loop_->AddTimer(lease_ms, [this, conn, serial, transfer, lease_ms] {
    ServedConnection* s = Served(conn, serial);
    if (s == nullptr || s->loans.count(transfer) == 0) return;
    s->loans[transfer].lease = 0;
    // Closing stops every READ through the connection: then it is safe to
    // let the store reuse what was lent.
    Status expired = Status::TimedOut("transfer " + std::to_string(transfer) + " lent for " +
                                      std::to_string(lease_ms) + " ms without a FINISH");
    PLASMA_LOG(kWarning) << "closing a puller's connection: " << expired.ToString();
    Close(conn, expired);
  });
}

void Holder::EndLoan(ServedConnection* served, uint64_t transfer) {
  auto it = served->loans.find(transfer);
  if (it == served->loans.end()) return;
  loop_->CancelTimer(it->second.lease);
  served->lent_bytes -= it->second.bytes;
  served->loans.erase(it);
}

void Holder::SendHeader(plasma_tp_conn_t conn, uint64_t serial, const HeaderMessage& header,
                        const uint8_t* inline_bytes) {
  size_t length = transfer::EncodedSize(header) + (inline_bytes ? header.total_size() : 0);
  auto buffer = buffers_->Acquire(length);
  if (!buffer.ok()) {
    Close(conn, buffer.status());
    return;
  }
  auto held = std::make_shared<ControlBuffer>(std::move(buffer).value());
  if (inline_bytes != nullptr) {
    length = transfer::EncodeInline(header, inline_bytes, held->data(), held->capacity());
  } else {
    std::vector<uint8_t> bytes = transfer::Encode(header);
    std::copy(bytes.begin(), bytes.end(), held->data());
  }
  // A HEADER that cannot be sent leaves the puller waiting for nothing.
  driver_->SendBuffer(conn, MakeTag(MessageKind::kHeader, header.transfer), held, length,
                      [this, conn, serial](const Status& failed) {
                        if (Served(conn, serial) != nullptr) Close(conn, failed);
                      });
}

void Holder::Close(plasma_tp_conn_t conn, const Status& why) {
  auto it = served_.find(conn);
  if (it == served_.end()) return;
  PLASMA_LOG(kDebug) << "closing a served connection: " << why.ToString();
  // After close_conn returns the peer can no longer READ through it
  // (docs/transport-abi.md), so the loans may end.
  ops_->close_conn(context_, conn);
  for (auto& [transfer, loan] : it->second.loans) {
    loop_->CancelTimer(loan.lease);
    loan.lease = 0;
    if (loan.unsent_chunks > 0) draining_[{it->second.serial, transfer}] = std::move(loan);
  }
  served_.erase(it);
  driver_->SchedulePass();
}

}  // namespace plasma
