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
  if (served->loans.count(finish.transfer) == 0) {
    PLASMA_LOG(kDebug) << "FINISH for transfer " << finish.transfer << ", which is not lent";
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
    SendHeader(conn, serial, header, nullptr);
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
    SendHeader(conn, serial, header, nullptr);
    return;
  }
  uint64_t inline_limit = std::min<uint64_t>(options_.inline_message_limit, pull.max_inline_message);
  if (transfer::EncodedSize(header) + total <= inline_limit) {
    header.mode = Mode::kInline;
    SendHeader(conn, serial, header, start);  // copies the bytes: the object is released here
    return;
  }
  ServedConnection* served = Served(conn, serial);
  if (served->lent_bytes > 0 && served->lent_bytes + total > options_.max_lent_bytes_per_peer) {
    header.status = HeaderStatus::kBusy;
    SendHeader(conn, serial, header, nullptr);
    return;
  }
  header.mode = Mode::kRendezvous;
  header.remote_address = reinterpret_cast<uint64_t>(start);
  header.rkey = arena_.rkey;
  Lend(served, conn, pull.transfer, std::move(object));
  SendHeader(conn, serial, header, nullptr);
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
  for (auto& [transfer, loan] : it->second.loans) loop_->CancelTimer(loan.lease);
  served_.erase(it);
  driver_->SchedulePass();
}

}  // namespace plasma
