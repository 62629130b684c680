#include "plasma/manager/puller.h"

#include <algorithm>
#include <cstring>

#include "plasma/common/digest.h"
#include "plasma/common/logging.h"
#include "plasma/manager/puller_state.h"

namespace plasma {

using transfer::HeaderMessage;
using transfer::HeaderStatus;
using transfer::MakeTag;
using transfer::MessageKind;
using transfer::Mode;


Puller::Puller(EventLoop* loop, TransportDriver* driver, ControlBufferPool* buffers, LocalStore* store,
               const PullerOptions& options, const PullerResources& resources)
    : loop_(loop),
      driver_(driver),
      ops_(&driver->ops()),
      context_(driver->context()),
      buffers_(buffers),
      store_(store),
      options_(options),
      resources_(resources) {}

Puller::~Puller() {
  for (auto& [id, pull] : pulls_) loop_->CancelTimer(pull->deadline);
  // finalize() (by the loader) frees connections and requests.
  for (auto& [name, peer] : peers_) {
    for (auto& [packed, rkey] : peer->rkeys) ops_->rkey_release(context_, rkey);
  }
}

const char* Puller::PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kWaitingForWindow: return "waiting for a free HEADER slot";
    case Phase::kAwaitingHeader: return "waiting for the HEADER";
    case Phase::kAwaitingHolder: return "waiting for the busy holder";
    case Phase::kAwaitingBudget: return "waiting for the in-flight budget";
    case Phase::kStoringWhole: return "storing the object";
    case Phase::kCreating: return "creating the local object";
    case Phase::kReading: return "reading the object";
    case Phase::kCreatingForPush: return "creating the local object for a push";
    case Phase::kAwaitingPush: return "waiting for the pushed object";
    case Phase::kSealing: return "sealing";
  }
  return "?";
}

Puller::PullState* Puller::Find(uint64_t transfer, uint64_t attempt) {
  auto it = pulls_.find(transfer);
  if (it == pulls_.end() || it->second->attempt != attempt) return nullptr;
  return it->second.get();
}

// ------------------------------------------------------------ connections

Result<Puller::Peer*> Puller::PeerFor(const NodeInfo& node) {
  auto it = peers_.find(node.name);
  if (it != peers_.end()) {
    if (it->second->node.address == node.address) return it->second.get();
    DropPeer(it->second.get(), Status::Unavailable("node " + node.name + " moved"));
  }
  if (node.transport != ops_->name) {
    return Status::NotSupported("node " + node.name + " serves over transport '" + node.transport +
                                "', this manager uses '" + ops_->name + "'");
  }
  auto peer = std::make_unique<Peer>();
  peer->node = node;
  peer->connect_started_ms = MonotonicMilliseconds();
  int rc = ops_->connect(context_, node.address.data(), node.address.size(), &peer->conn);
  if (rc != PLASMA_TP_OK) {
    return driver_->plugin()->ToStatus(rc, "connect to node " + node.name);
  }
  Peer* raw = peer.get();
  peers_[node.name] = std::move(peer);
  return raw;
}

void Puller::CheckConnections() {
  std::vector<std::pair<Peer*, int>> failed;
  for (auto& [name, peer] : peers_) {
    int status = ops_->conn_status(context_, peer->conn);
    if (status < 0) {
      failed.emplace_back(peer.get(), status);
    } else if (status == PLASMA_TP_OK && !peer->established) {
      peer->established = true;
      PLASMA_LOG(kInfo) << "connected to node " << name << " over " << ops_->name << " in "
                        << MonotonicMilliseconds() - peer->connect_started_ms << " ms";
    }
  }
  for (auto [peer, status] : failed) {
    DropPeer(peer, driver_->plugin()->ToStatus(status, "connection to node " + peer->node.name));
  }
}

// Closing ends every request on the connection (they complete as canceled,
// which fails their attempts) and frees whatever the holder pinned for us.
// Attempts that wait on nothing of the connection's fail here.
void Puller::DropPeer(Peer* peer, const Status& why) {
  PLASMA_LOG(kWarning) << "closing connection to node " << peer->node.name << ": "
                       << why.ToString();
  std::string name = peer->node.name;
  std::unique_ptr<Peer> owned = std::move(peers_[name]);
  peers_.erase(name);
  std::vector<PullState*> stranded;
  for (auto& [transfer, pull] : pulls_) {
    if (pull->peer != peer) continue;
    pull->peer = nullptr;
    pull->dropped_because = why.message();
    pull->holder_pins = false;
    if (pull->phase == Phase::kAwaitingHolder || pull->phase == Phase::kAwaitingBudget) {
      stranded.push_back(pull.get());
    }
  }
  for (auto& [packed, rkey] : peer->rkeys) ops_->rkey_release(context_, rkey);
  ops_->close_conn(context_, peer->conn);
  driver_->SchedulePass();  // the canceled requests complete in the next pass
  if (on_node_failed_) on_node_failed_(name);
  for (PullState* pull : stranded) FailAttempt(pull, Status::Unavailable(why.message()));
}

Result<plasma_tp_rkey_t> Puller::RemoteKey(Peer* peer, const std::string& packed) {
  auto it = peer->rkeys.find(packed);
  if (it != peer->rkeys.end()) return it->second;
  plasma_tp_rkey_t rkey;
  int rc = ops_->rkey_unpack(context_, peer->conn, packed.data(), packed.size(), &rkey);
  if (rc != PLASMA_TP_OK) return driver_->plugin()->ToStatus(rc, "unpack remote key");
  peer->rkeys[packed] = rkey;
  return rkey;
}

// A control message that cannot be sent leaves its peer waiting for
// nothing: the connection is closed instead.
void Puller::SendControl(Peer* peer, uint64_t tag, std::vector<uint8_t> bytes) {
  auto buffer = buffers_->Acquire(bytes.size());
  if (!buffer.ok()) {
    DropPeer(peer, buffer.status());
    return;
  }
  auto held = std::make_shared<ControlBuffer>(std::move(buffer).value());
  std::memcpy(held->data(), bytes.data(), bytes.size());
  plasma_tp_conn_t conn = peer->conn;
  std::string name = peer->node.name;
  driver_->SendBuffer(conn, tag, held, bytes.size(), [this, conn, name](const Status& failed) {
    auto it = peers_.find(name);
    if (it != peers_.end() && it->second->conn == conn) DropPeer(it->second.get(), failed);
  });
}

// ------------------------------------------------------------ attempts

void Puller::Pull(const ObjectId& id, std::vector<NodeInfo> holders,
                  std::optional<ObjectSizes> announced, PullCallback done) {
  auto pull = std::make_unique<PullState>();
  pull->transfer = next_transfer_++ & transfer::kTransferMask;
  pull->id = id;
  pull->holders = std::move(holders);
  pull->announced = announced;
  pull->done = std::move(done);
  pull->started_ms = MonotonicMilliseconds();
  PullState* raw = pull.get();
  pulls_[raw->transfer] = std::move(pull);
  TryNextHolder(raw);
}

void Puller::TryNextHolder(PullState* pull) {
  while (pull->next_holder < pull->holders.size()) {
    const NodeInfo& holder = pull->holders[pull->next_holder++];
    auto peer = PeerFor(holder);
    if (!peer.ok()) {
      pull->failures.push_back(holder.name + ": " + peer.status().message());
      continue;
    }
    pull->holder = &holder;
    pull->peer = *peer;
    if (header_buffers_held_ >= options_.max_pulls_awaiting_header) {
      pull->phase = Phase::kWaitingForWindow;
      waiting_for_window_.push_back(pull->transfer);
      return;
    }
    AskHolder(pull);
    return;
  }
  std::string reasons;
  for (const auto& failure : pull->failures) reasons += (reasons.empty() ? "" : "; ") + failure;
  if (pull->holders.empty()) reasons = "no node holds it";
  CompletePull(pull, Status::Unavailable("fetch of object " + pull->id.Hex() + " failed: " + reasons));
}

// Takes a HEADER receive buffer (the window counts them), then either
// asks at once or, for a push, creates the local object first.
void Puller::AskHolder(PullState* pull) {
  auto buffer = buffers_->Acquire(resources_.header_capacity);
  if (!buffer.ok()) {
    CompletePull(pull, buffer.status());
    return;
  }
  ++header_buffers_held_;
  pull->header_buffer = std::make_shared<ControlBuffer>(std::move(buffer).value());
  pull->attempt = next_attempt_++;
  pull->attempt_started_us = MonotonicMicroseconds();
  if (!WantsPush(pull)) {
    SendPull(pull, 0);
    return;
  }
  pull->header = HeaderMessage();
  pull->header.data_size = pull->announced->data_size;
  pull->header.metadata_size = pull->announced->metadata_size;
  pull->charged_bytes = pull->announced->total();
  inflight_bytes_ += pull->charged_bytes;
  PLASMA_LOG(kDebug) << "pull of " << pull->id.Hex() << " starts its data: " << inflight_bytes_
                     << " bytes in flight (budget " << options_.inflight_byte_budget
                     << "), to be pushed";
  pull->phase = Phase::kCreatingForPush;
  to_create_for_push_.push_back({pull->transfer, pull->attempt});
  driver_->SchedulePass();
}

// Posts the HEADER receive, then sends the PULL: the reply always finds
// its receive waiting. push_size > 0: the chunk receives are posted already.
void Puller::SendPull(PullState* pull, uint64_t push_size) {
  pull->phase = push_size > 0 ? Phase::kAwaitingPush : Phase::kAwaitingHeader;
  std::shared_ptr<ControlBuffer> held = pull->header_buffer;
  uint64_t transfer = pull->transfer;
  uint64_t attempt = pull->attempt;
  plasma_tp_conn_t conn = pull->peer->conn;
  driver_->Post(
      PLASMA_TP_OP_RECV,
      [this, conn, transfer, held](plasma_tp_request_t* out) {
        return ops_->recv(context_, conn, MakeTag(MessageKind::kHeader, transfer),
                          PLASMA_TP_TAG_EXACT, held->data(), held->capacity(), held->mem(), out);
      },
      [this, transfer, attempt, held](const plasma_tp_completion_t& c) {
        OnHeader(transfer, attempt, held, c);
      });
  // A push's deadline allows for its bytes, like a READ's.
  int64_t deadline_ms = options_.stall_timeout_ms;
  if (push_size > 0) {
    deadline_ms += int64_t(inflight_bytes_ * 1000 / std::max<uint64_t>(options_.min_transfer_rate, 1));
  }
  ArmDeadline(pull, deadline_ms);
  transfer::PullMessage message;
  message.transfer = transfer;
  message.id = pull->id;
  message.max_inline_message = resources_.header_capacity;
  message.push_size = push_size;
  message.push_chunk = push_size > 0 ? resources_.push_chunk : 0;
  SendControl(pull->peer, MakeTag(MessageKind::kPull, transfer), transfer::Encode(message));
}

void Puller::ArmDeadline(PullState* pull, int64_t delay_ms) {
  loop_->CancelTimer(pull->deadline);
  uint64_t transfer = pull->transfer;
  uint64_t attempt = pull->attempt;
  pull->deadline = loop_->AddTimer(delay_ms, [this, transfer, attempt, delay_ms] {
    PullState* pull = Find(transfer, attempt);
    if (pull == nullptr) return;
    pull->deadline = 0;
    if (pull->peer == nullptr) return;
    // The holder (or the path to it) is stuck; every pull on the connection
    // moves on, through the cancellations that closing it brings.
    DropPeer(pull->peer, Status::TimedOut("node " + pull->holder->name + " silent for " +
                                          std::to_string(delay_ms) + " ms while " +
                                          PhaseName(pull->phase) + " of " + pull->id.Hex()));
  });
}

void Puller::OnHeader(uint64_t transfer, uint64_t attempt, std::shared_ptr<ControlBuffer> buffer,
                      const plasma_tp_completion_t& c) {
  PullState* pull = Find(transfer, attempt);
  if (pull != nullptr && pull->phase == Phase::kAwaitingPush) {
    OnPushHeader(pull, *buffer, c);
    return;
  }
  if (pull == nullptr || pull->phase != Phase::kAwaitingHeader) return;
  pull->header_us = MonotonicMicroseconds();
  loop_->CancelTimer(pull->deadline);
  pull->deadline = 0;
  if (c.status != PLASMA_TP_OK) {
    FailAttempt(pull, RequestFailure(pull, c.status, "waiting for the object header"));
    return;
  }
  Status decoded = transfer::Decode(buffer->data(), c.length, &pull->header);
  if (decoded.ok() && pull->header.transfer != transfer) {
    decoded = Status::ProtocolError("header for transfer " + std::to_string(pull->header.transfer) +
                                    " arrived as transfer " + std::to_string(transfer));
  }
  if (!decoded.ok()) {
    // A holder speaking nonsense is not asked again on this connection.
    if (pull->peer != nullptr) DropPeer(pull->peer, decoded);
    FailAttempt(pull, decoded);
    return;
  }
  const HeaderMessage& header = pull->header;
  switch (header.status) {
    case HeaderStatus::kOk: break;
    case HeaderStatus::kBusy: OnBusy(pull); return;
    case HeaderStatus::kNotFound:
      FailAttempt(pull, Status::ObjectNotFound("the holder no longer has it"));
      return;
    case HeaderStatus::kUnavailable:
      FailAttempt(pull, Status::Unavailable("the holder's store failed"));
      return;
    case HeaderStatus::kSizeMismatch:  // only ever the answer to a push
      if (pull->peer != nullptr) DropPeer(pull->peer, Status::ProtocolError("size mismatch unasked"));
      FailAttempt(pull, Status::ProtocolError("the holder answered a push never asked for"));
      return;
  }
  if (header.mode == Mode::kPushed) {
    if (pull->peer != nullptr) DropPeer(pull->peer, Status::ProtocolError("pushed an object not asked for"));
    FailAttempt(pull, Status::ProtocolError("the holder pushed an object not asked for"));
    return;
  }
  if (header.mode == Mode::kRendezvous) {
    pull->holder_pins = true;
    if (pull->peer != nullptr) ++pull->peer->pinned_transfers;
    ReleaseHeaderBuffer(pull);
  }
  uint64_t total = header.total_size();
  if (total > resources_.store_capacity) {
    // No holder would help: the local store cannot take it.
    CompletePull(pull, Status::OutOfMemory("object " + pull->id.Hex() + " is " +
                                           std::to_string(total) + " bytes, more than this node's "
                                           "store holds (" +
                                           std::to_string(resources_.store_capacity) + " bytes)"));
    return;
  }
  if (header.mode == Mode::kInline) {
    // The bytes came with the HEADER: the local object is created and
    // sealed from them in one store call.
    Status verified = CheckDigest(pull, header.inline_bytes);
    if (!verified.ok()) {
      FailAttempt(pull, verified);
      return;
    }
    pull->phase = Phase::kStoringWhole;
    to_store_whole_.push_back({pull->transfer, pull->attempt});
    driver_->SchedulePass();
    return;
  }
  // Large transfers wait for room in the byte budget; one always proceeds
  // alone, however large, so nothing waits forever.
  if (inflight_bytes_ > 0 && inflight_bytes_ + total > options_.inflight_byte_budget) {
    PLASMA_LOG(kDebug) << "pull of " << pull->id.Hex() << " (" << total
                       << " bytes) waits for the in-flight budget: " << inflight_bytes_ << " of "
                       << options_.inflight_byte_budget << " bytes in flight";
    pull->phase = Phase::kAwaitingBudget;
    waiting_for_budget_.push_back(pull->transfer);
    return;
  }
  StartData(pull);
}

// The holder pins as much as it lets one peer pin; we ask again when one of
// our transfers from it ends (there is one, or it would not be busy).
void Puller::OnBusy(PullState* pull) {
  ReleaseHeaderBuffer(pull);
  if (pull->peer == nullptr || pull->peer->pinned_transfers == 0) {
    FailAttempt(pull, Status::Unavailable("the holder is busy with other transfers"));
    return;
  }
  PLASMA_LOG(kDebug) << "pull of " << pull->id.Hex() << ": node " << pull->holder->name
                     << " is busy, asking again after one of " << pull->peer->pinned_transfers
                     << " transfers";
  pull->phase = Phase::kAwaitingHolder;
  pull->peer->busy_waiting.push_back(pull->transfer);
}

void Puller::AdmitWaitingForWindow() {
  while (!waiting_for_window_.empty() &&
         header_buffers_held_ < options_.max_pulls_awaiting_header) {
    auto it = pulls_.find(waiting_for_window_.front());
    waiting_for_window_.pop_front();
    if (it == pulls_.end() || it->second->phase != Phase::kWaitingForWindow) continue;
    PullState* pull = it->second.get();
    if (pull->peer == nullptr) {
      FailAttempt(pull, Status::Unavailable("connection closed"));
      continue;
    }
    AskHolder(pull);
  }
}

void Puller::AdmitWaitingForBudget() {
  while (!waiting_for_budget_.empty()) {
    auto it = pulls_.find(waiting_for_budget_.front());
    if (it == pulls_.end() || it->second->phase != Phase::kAwaitingBudget) {
      waiting_for_budget_.pop_front();
      continue;
    }
    uint64_t total = it->second->header.total_size();
    if (inflight_bytes_ > 0 && inflight_bytes_ + total > options_.inflight_byte_budget) return;
    waiting_for_budget_.pop_front();
    StartData(it->second.get());
  }
}

void Puller::StartData(PullState* pull) {
  // Charged now, at admission, not when the object is created: several
  // pulls admitted in one pass must each see the others' bytes.
  uint64_t total = pull->header.total_size();
  pull->charged_bytes = total;
  inflight_bytes_ += total;
  PLASMA_LOG(kDebug) << "pull of " << pull->id.Hex() << " starts its data: " << inflight_bytes_
                     << " bytes in flight (budget " << options_.inflight_byte_budget << ")";
  pull->phase = Phase::kCreating;
  to_create_.push_back({pull->transfer, pull->attempt});
  driver_->SchedulePass();
}

// ------------------------------------------------------------ store calls

// The store calls of a progress pass are made together, pipelined: one
// wake-up of the store for all the objects created and sealed in the pass.
bool Puller::RunStoreCalls() {
  if (to_store_whole_.empty() && to_create_.empty() && to_create_for_push_.empty() &&
      to_seal_.empty()) {
    return false;
  }
  StoreQueuedWholeObjects();
  CreateQueuedObjects();
  SealQueuedObjects();
  return true;
}

// Empties `queue`, keeping the calls whose pull is still in `phase`.
std::vector<Puller::QueuedCall> Puller::TakeQueued(std::vector<QueuedCall>* queue, Phase phase) {
  std::vector<QueuedCall> queued;
  queued.swap(*queue);
  std::vector<QueuedCall> live;
  for (const QueuedCall& q : queued) {
    PullState* pull = Find(q.transfer, q.attempt);
    if (pull != nullptr && pull->phase == phase) live.push_back(q);
  }
  return live;
}

void Puller::StoreQueuedWholeObjects() {
  std::vector<QueuedCall> calls = TakeQueued(&to_store_whole_, Phase::kStoringWhole);
  std::vector<WholeObject> objects;
  for (const QueuedCall& q : calls) {
    PullState* pull = Find(q.transfer, q.attempt);
    const HeaderMessage& header = pull->header;
    // The bytes stay in the HEADER's receive buffer until the pull ends.
    objects.push_back({pull->id, header.inline_bytes, int64_t(header.data_size),
                       int64_t(header.metadata_size), header.digest});
  }
  if (objects.empty()) return;
  int64_t store_started_us = MonotonicMicroseconds();
  std::vector<Status> stored = store_->CreateAndSealMany(objects);
  for (size_t i = 0; i < calls.size(); ++i) {
    // Handling one may end others (a shared peer dropped): look each up again.
    PullState* pull = Find(calls[i].transfer, calls[i].attempt);
    if (pull == nullptr) continue;  // stored or not, nothing of it is held here
    pull->created_us = pull->data_us = store_started_us;
    if (stored[i].ok()) {
      CompletePull(pull, Status::OK());
    } else {
      OnLocalStoreRefused(pull, stored[i]);
    }
  }
}

void Puller::CreateQueuedObjects() {
  std::vector<QueuedCall> calls = TakeQueued(&to_create_, Phase::kCreating);
  std::vector<QueuedCall> pushes = TakeQueued(&to_create_for_push_, Phase::kCreatingForPush);
  calls.insert(calls.end(), pushes.begin(), pushes.end());
  std::vector<FillSpec> specs;
  for (const QueuedCall& q : calls) {
    PullState* pull = Find(q.transfer, q.attempt);
    specs.push_back({pull->id, int64_t(pull->header.data_size), int64_t(pull->header.metadata_size)});
  }
  if (specs.empty()) return;
  auto created = store_->CreateForFillMany(specs);
  for (size_t i = 0; i < calls.size(); ++i) {
    // Handling one may end others (a shared peer dropped): look each up again.
    PullState* pull = Find(calls[i].transfer, calls[i].attempt);
    if (pull == nullptr) {
      if (created[i].ok()) {
        created[i] = StoredObject();  // released before the abort, or the store refuses it
        store_->Abort(specs[i].id);
      }
      continue;
    }
    if (pull->phase == Phase::kCreatingForPush) {
      ReceivePushInto(pull, std::move(created[i]));
    } else {
      ReceiveInto(pull, std::move(created[i]));
    }
  }
}

void Puller::SealQueuedObjects() {
  std::vector<QueuedCall> calls = TakeQueued(&to_seal_, Phase::kSealing);
  std::vector<ObjectId> ids;
  std::vector<std::string> digests;
  for (const QueuedCall& q : calls) {
    PullState* pull = Find(q.transfer, q.attempt);
    ids.push_back(pull->id);
    digests.push_back(pull->header.digest);
  }
  if (ids.empty()) return;
  std::vector<Status> sealed = store_->SealMany(ids, digests);
  for (size_t i = 0; i < calls.size(); ++i) {
    PullState* pull = Find(calls[i].transfer, calls[i].attempt);
    if (pull == nullptr) continue;
    pull->object = StoredObject();  // the store keeps the sealed object; we drop our reference
    CompletePull(pull, sealed[i]);
  }
}

void Puller::OnLocalStoreRefused(PullState* pull, const Status& refused) {
  if (refused.IsObjectExists()) {
    // Someone else (another pull, a local put) made it meanwhile.
    auto contains = store_->Contains(pull->id);
    CompletePull(pull, contains.ok() && *contains
                           ? Status::OK()
                           : Status::ObjectExists("object " + pull->id.Hex() +
                                                  " is being created locally by another client"));
    return;
  }
  // The local store cannot take it: no other holder would help.
  CompletePull(pull, Status(refused.code(), "fetch of object " + pull->id.Hex() +
                                                ": local store: " + refused.message()));
}

// Keeps the created object for the attempt; false if the pull ended or
// moved on instead.
bool Puller::TakeCreated(PullState* pull, Result<StoredObject> created) {
  if (!created.ok()) {
    OnLocalStoreRefused(pull, created.status());
    return false;
  }
  pull->object = std::move(created).value();  // from here ReleaseAttempt aborts it
  pull->created_us = MonotonicMicroseconds();
  const HeaderMessage& header = pull->header;
  if (header.metadata_size > 0 && pull->object.metadata() != pull->object.data() + header.data_size) {
    CompletePull(pull, Status::NotSupported("the local store did not place metadata right after "
                                            "the data; cannot receive in one transfer"));
    return false;
  }
  if (pull->peer == nullptr) {
    FailAttempt(pull, Status::Unavailable("connection closed"));
    return false;
  }
  return true;
}

void Puller::ReceiveInto(PullState* pull, Result<StoredObject> created) {
  if (!TakeCreated(pull, std::move(created))) return;
  const HeaderMessage& header = pull->header;
  uint64_t total = header.total_size();
  uint8_t* destination = pull->object.data();
  auto rkey = RemoteKey(pull->peer, header.rkey);
  if (!rkey.ok()) {
    FailAttempt(pull, rkey.status());
    return;
  }
  pull->phase = Phase::kReading;
  uint64_t transfer = pull->transfer;
  uint64_t attempt = pull->attempt;
  plasma_tp_conn_t conn = pull->peer->conn;
  plasma_tp_rkey_t remote_key = *rkey;
  uint64_t remote_address = header.remote_address;
  plasma_tp_mem_t arena = resources_.arena_mem;
  driver_->Post(
      PLASMA_TP_OP_READ,
      [this, conn, destination, total, arena, remote_address, remote_key](plasma_tp_request_t* out) {
        return ops_->read(context_, conn, destination, total, arena, remote_address, remote_key,
                          out);
      },
      [this, transfer, attempt](const plasma_tp_completion_t& c) { OnRead(transfer, attempt, c); });
  // Every admitted transfer shares the path: the deadline allows for all
  // the bytes in flight, not just this object's.
  int64_t budget_ms =
      options_.stall_timeout_ms +
      int64_t(inflight_bytes_ * 1000 / std::max<uint64_t>(options_.min_transfer_rate, 1));
  ArmDeadline(pull, budget_ms);
}

void Puller::OnRead(uint64_t transfer, uint64_t attempt, const plasma_tp_completion_t& c) {
  PullState* pull = Find(transfer, attempt);
  if (pull == nullptr || pull->phase != Phase::kReading) return;
  loop_->CancelTimer(pull->deadline);
  pull->deadline = 0;
  uint64_t total = pull->header.total_size();
  Status status =
      c.status != PLASMA_TP_OK
          ? RequestFailure(pull, c.status, "read the object")
          : (c.length == total ? Status::OK()
                               : Status::ProtocolError("read " + std::to_string(c.length) +
                                                       " bytes, expected " + std::to_string(total)));
  BytesReceived(pull, status);
}

// The bytes are in the local object (read or pushed), or `received` says
// why not: checks them, lets the holder go, and queues the Seal.
void Puller::BytesReceived(PullState* pull, Status received) {
  if (received.ok()) received = CheckDigest(pull, pull->object.data());
  SettleWithHolder(pull, received.ok());
  if (!received.ok()) {
    FailAttempt(pull, received);
    return;
  }
  pull->data_us = MonotonicMicroseconds();
  pull->phase = Phase::kSealing;
  to_seal_.push_back({pull->transfer, pull->attempt});
  driver_->SchedulePass();
}

// A request ended by our closing its connection says why it was closed.
Status Puller::RequestFailure(PullState* pull, int code, const char* what) {
  if (code == PLASMA_TP_ERR_CANCELED && !pull->dropped_because.empty()) {
    return Status::Unavailable(std::string(what) + ": " + pull->dropped_because);
  }
  return driver_->plugin()->ToStatus(code, what);
}

// `bytes`: the object's data then its metadata, as received.
Status Puller::CheckDigest(PullState* pull, const uint8_t* bytes) {
  if (!options_.verify_digests || pull->header.digest.empty()) return Status::OK();
  const HeaderMessage& header = pull->header;
  std::string digest = ObjectDigest(bytes, int64_t(header.data_size), bytes + header.data_size,
                                    int64_t(header.metadata_size));
  if (digest == pull->header.digest) return Status::OK();
  return Status::ProtocolError("object " + pull->id.Hex() +
                               ": received bytes do not match the holder's digest");
}

// Tells the holder it may release the object (rendezvous only: a pushed
// one it releases itself), and lets a pull the holder was too busy for ask
// again.
void Puller::SettleWithHolder(PullState* pull, bool success) {
  if (!pull->holder_pins) return;
  pull->holder_pins = false;
  Peer* peer = pull->peer;
  if (peer == nullptr) return;
  --peer->pinned_transfers;
  uint64_t ask_again = 0;
  while (ask_again == 0 && !peer->busy_waiting.empty()) {
    auto it = pulls_.find(peer->busy_waiting.front());
    peer->busy_waiting.pop_front();
    if (it != pulls_.end() && it->second->phase == Phase::kAwaitingHolder) ask_again = it->first;
  }
  // (Sending may drop the peer: nothing of it is touched afterwards.)
  if (pull->header.mode == Mode::kRendezvous) {
    SendControl(peer, MakeTag(MessageKind::kFinish, pull->transfer),
                transfer::Encode(transfer::FinishMessage{pull->transfer, success}));
  }
  if (ask_again == 0) return;
  auto it = pulls_.find(ask_again);
  if (it == pulls_.end() || it->second->phase != Phase::kAwaitingHolder) return;
  if (it->second->peer == nullptr) {
    FailAttempt(it->second.get(), Status::Unavailable("connection closed"));
    return;
  }
  AskHolder(it->second.get());
}

// ------------------------------------------------------------ endings

// Undoes what the current attempt holds: its receive buffer, the unsealed
// local object, its share of the budget, the holder's pin, its deadline.
// A HEADER receive buffer given back frees a place for a waiting pull.
void Puller::ReleaseHeaderBuffer(PullState* pull) {
  if (!pull->header_buffer) return;
  pull->header_buffer.reset();
  --header_buffers_held_;
  AdmitWaitingForWindow();
}

void Puller::ReleaseAttempt(PullState* pull) {
  ReleaseHeaderBuffer(pull);
  if (pull->object.valid()) {
    // Never visible: the half-written object goes away. The buffer is
    // released first, or the store refuses the abort.
    pull->object = StoredObject();
    store_->Abort(pull->id);
  }
  inflight_bytes_ -= pull->charged_bytes;
  pull->charged_bytes = 0;
  SettleWithHolder(pull, false);
  loop_->CancelTimer(pull->deadline);
  pull->deadline = 0;
}

void Puller::FailAttempt(PullState* pull, const Status& why) {
  std::string holder = pull->holder != nullptr ? pull->holder->name : "?";
  PLASMA_LOG(kWarning) << "pull of " << pull->id.Hex() << " from node " << holder
                       << " failed: " << why.ToString();
  pull->failures.push_back(holder + ": " + why.message());
  ReleaseAttempt(pull);
  // Whether the connection itself is broken is the plugin's to say, not
  // the kind of error this attempt met.
  if (pull->peer != nullptr && ops_->conn_status(context_, pull->peer->conn) < 0) {
    DropPeer(pull->peer, why);
  }
  pull->peer = nullptr;
  pull->holder = nullptr;
  pull->dropped_because.clear();
  pull->attempt = next_attempt_++;  // whatever the old attempt still has in flight is stale
  TryNextHolder(pull);
  AdmitWaitingForBudget();
  AdmitWaitingForWindow();
}

// Each phase of the last attempt, in the order it ran.
void Puller::LogPulled(const PullState* pull) const {
  int64_t now = MonotonicMicroseconds();
  int64_t started = pull->attempt_started_us;
  std::string phases;
  switch (pull->header.mode) {
    case Mode::kInline:
      phases = "header " + std::to_string(pull->header_us - started) + ", queued " +
               std::to_string(pull->created_us - pull->header_us) + ", create and seal " +
               std::to_string(now - pull->data_us);
      break;
    case Mode::kRendezvous:
      phases = "header " + std::to_string(pull->header_us - started) + ", create " +
               std::to_string(pull->created_us - pull->header_us) + ", data " +
               std::to_string(pull->data_us - pull->created_us) + ", seal " +
               std::to_string(now - pull->data_us);
      break;
    case Mode::kPushed:  // the HEADER and the chunks complete in either order
      phases = "create " + std::to_string(pull->created_us - started) + ", header and data " +
               std::to_string(pull->data_us - pull->created_us) + ", seal " +
               std::to_string(now - pull->data_us);
      break;
  }
  const char* mode = pull->header.mode == Mode::kInline       ? "inline"
                     : pull->header.mode == Mode::kRendezvous ? "rendezvous"
                                                              : "pushed";
  PLASMA_LOG(kDebug) << "pulled " << pull->id.Hex() << " (" << pull->header.total_size()
                     << " bytes, " << mode << ") in " << MonotonicMilliseconds() - pull->started_ms
                     << " ms; last attempt µs: " << phases;
}

void Puller::CompletePull(PullState* pull, Status status) {
  if (status.ok()) LogPulled(pull);
  ReleaseAttempt(pull);
  PullCallback done = std::move(pull->done);
  pulls_.erase(pull->transfer);
  done(status);
  AdmitWaitingForBudget();
  AdmitWaitingForWindow();
}

}  // namespace plasma
