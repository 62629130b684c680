#include "plasma/manager/transfer_engine.h"

#include <algorithm>
#include <cstring>

#include "plasma/common/logging.h"

namespace plasma {

using transfer::HeaderMessage;
using transfer::HeaderStatus;
using transfer::MessageKind;
using transfer::MakeTag;
using transfer::Mode;

namespace {
// A holder that does not answer a pull within this time is given up on.
constexpr int64_t kHeaderTimeoutMs = 10000;
// Control messages to a holder (PULL, FINISH) share this tag prefix.
constexpr uint64_t kControlTag = uint64_t(MessageKind::kPull) << transfer::kKindShift;
constexpr uint64_t kControlMask = uint64_t(0xfe) << transfer::kKindShift;
static_assert((uint64_t(MessageKind::kFinish) << transfer::kKindShift & kControlMask) == kControlTag,
              "PULL and FINISH must match one control receive");
}  // namespace

struct TransferEngine::Peer {
  NodeInfo node;
  plasma_tp_conn_t conn = nullptr;
  int64_t connect_started_ms = 0;
  bool established = false;
  std::map<std::string, plasma_tp_rkey_t> rkeys;  // packed bytes -> unpacked handle
};

struct TransferEngine::PullState {
  uint64_t transfer = 0;
  ObjectId id;
  std::vector<NodeInfo> holders;
  size_t attempt = 0;  // index into holders of the current attempt (+1 once started)
  Peer* peer = nullptr;
  plasma_tp_request_t header_request = nullptr;
  EventLoop::TimerId header_timer = 0;
  HeaderMessage header;
  ObjectBuffer object;
  uint64_t charged_bytes = 0;
  std::vector<std::string> failures;
  PullCallback done;
  int64_t started_ms = 0;
  // Phase times of the current attempt (µs), for the debug log of each pull.
  int64_t attempt_started_us = 0, header_us = 0, created_us = 0, data_us = 0;
};

Result<std::unique_ptr<TransferEngine>> TransferEngine::Create(EventLoop* loop,
                                                               transport::Plugin* plugin,
                                                               std::shared_ptr<Client> store,
                                                               const Options& options) {
  std::unique_ptr<TransferEngine> engine(new TransferEngine(loop, plugin, store, options));
  PLASMA_RETURN_NOT_OK(engine->Start());
  return engine;
}

TransferEngine::TransferEngine(EventLoop* loop, transport::Plugin* plugin,
                               std::shared_ptr<Client> store, const Options& options)
    : loop_(loop),
      plugin_(plugin),
      ops_(&plugin->api()),
      context_(plugin->context()),
      store_(std::move(store)),
      options_(options) {}

Status TransferEngine::Start() {
  const plasma_tp_v1_t* ops = ops_;
  eager_threshold_ = options_.eager_threshold ? options_.eager_threshold
                                              : plugin_->properties().eager_threshold;
  int rc;

  // The whole arena is registered once: every transfer reads or receives
  // straight into object memory with no per-transfer registration.
  PLASMA_ASSIGN_OR_RETURN(auto region, store_->MapArena());
  arena_base_ = region.base;
  arena_size_ = region.size;
  rc = ops->mem_register(context_, arena_base_, arena_size_,
                         PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ, &arena_mem_);
  if (rc != PLASMA_TP_OK) {
    return plugin_->ToStatus(rc,
                           "register the store arena (" + std::to_string(arena_size_) + " bytes)");
  }
  const void* rkey;
  size_t rkey_length;
  rc = ops->mem_rkey(context_, arena_mem_, &rkey, &rkey_length);
  if (rc != PLASMA_TP_OK) return plugin_->ToStatus(rc, "pack the arena's remote key");
  arena_rkey_.assign(static_cast<const char*>(rkey), rkey_length);

  rc = ops->listen(context_, options_.bind_hint.c_str(), &listener_);
  if (rc != PLASMA_TP_OK) {
    return plugin_->ToStatus(rc, "listen on '" + options_.bind_hint + "'");
  }
  const void* address;
  size_t address_length;
  rc = ops->listener_address(context_, listener_, &address, &address_length);
  if (rc != PLASMA_TP_OK) return plugin_->ToStatus(rc, "listener address");
  address_.assign(static_cast<const char*>(address), address_length);

  if (ops->wait_fd(context_, &wait_fd_) == PLASMA_TP_OK) {
    PLASMA_RETURN_NOT_OK(loop_->Watch(wait_fd_, EPOLLIN, [this](uint32_t) { Progress(); }));
  } else {
    wait_fd_ = -1;
  }
  SchedulePoll();
  return Status::OK();
}

TransferEngine::~TransferEngine() {
  const plasma_tp_v1_t* ops = ops_;
  if (wait_fd_ >= 0) loop_->Unwatch(wait_fd_);
  // finalize() (by the loader) frees connections, registrations and requests.
  for (auto& [name, peer] : peers_) {
    for (auto& [packed, rkey] : peer->rkeys) ops->rkey_release(context_, rkey);
  }
  served_.clear();  // releases every object still being served
}

void TransferEngine::SchedulePoll() {
  if (poll_scheduled_) return;
  poll_scheduled_ = true;
  // With a wait fd only pending work needs a poll; without one, poll often
  // while transfers run and slowly (to accept connections) when idle.
  int64_t delay = wait_fd_ >= 0 ? 0 : (requests_.empty() ? 20 : 0);
  loop_->AddTimer(delay, [this] {
    poll_scheduled_ = false;
    Progress();
  });
}

void TransferEngine::Progress() {
  const plasma_tp_v1_t* ops = ops_;
  for (int round = 0; round < 64; ++round) {
    int events = ops->progress(context_);
    if (events < 0) {
      PLASMA_LOG(kError) << plugin_->ToStatus(events, "progress").ToString();
      break;
    }
    TestRequests();
    AcceptConnections();
    RunQueuedStoreCalls();
    if (events == 0) break;
  }
  // Log connection set-up times. A connection that failed — while being set
  // up or any time later (the peer died, a reset) — leaves the cache at once,
  // so the next pull from that node connects afresh.
  std::vector<std::pair<Peer*, int>> failed;
  for (auto& [name, peer] : peers_) {
    int status = ops->conn_status(context_, peer->conn);
    if (status < 0) {
      failed.emplace_back(peer.get(), status);
    } else if (status == PLASMA_TP_OK && !peer->established) {
      peer->established = true;
      PLASMA_LOG(kInfo) << "connected to node " << name << " over " << ops->name << " in "
                        << MonotonicMilliseconds() - peer->connect_started_ms << " ms";
    }
  }
  for (auto [peer, status] : failed) {
    DropPeer(peer, plugin_->ToStatus(status, "connection to node " + peer->node.name));
  }
  if (wait_fd_ < 0 || ops->arm(context_) != PLASMA_TP_OK) SchedulePoll();
}

int TransferEngine::Post(int rc, plasma_tp_request_t request, CompletionHandler handler) {
  if (rc == PLASMA_TP_OK) {
    requests_[request] = std::move(handler);
    // A post may only queue its work; a progress pass soon starts it even
    // when the plugin's wait fd has nothing to say yet.
    SchedulePoll();
  }
  return rc;
}

void TransferEngine::TestRequests() {
  std::vector<plasma_tp_request_t> outstanding;
  outstanding.reserve(requests_.size());
  for (const auto& [request, handler] : requests_) outstanding.push_back(request);
  for (plasma_tp_request_t request : outstanding) {
    auto it = requests_.find(request);
    if (it == requests_.end()) continue;
    plasma_tp_completion_t completion{};
    if (ops_->test(context_, request, &completion) != PLASMA_TP_OK) continue;
    CompletionHandler handler = std::move(it->second);
    requests_.erase(it);
    handler(completion);  // may post new requests
  }
}

// ---------------------------------------------------------------- puller

Result<TransferEngine::Peer*> TransferEngine::PeerFor(const NodeInfo& node) {
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
  int rc = ops_->connect(context_, node.address.data(), node.address.size(),
                                   &peer->conn);
  if (rc != PLASMA_TP_OK) {
    return plugin_->ToStatus(rc, "connect to node " + node.name);
  }
  Peer* raw = peer.get();
  peers_[node.name] = std::move(peer);
  return raw;
}

void TransferEngine::DropPeer(Peer* peer, const Status& why) {
  PLASMA_LOG(kWarning) << "closing connection to node " << peer->node.name << ": " << why.ToString();
  auto owned = std::move(peers_[peer->node.name]);
  peers_.erase(peer->node.name);
  for (auto& [id, pull] : pulls_) {
    if (pull->peer == peer) pull->peer = nullptr;  // its requests complete as canceled
  }
  for (auto& [packed, rkey] : peer->rkeys) ops_->rkey_release(context_, rkey);
  ops_->close_conn(context_, peer->conn);
}

Result<plasma_tp_rkey_t> TransferEngine::RemoteKey(Peer* peer, const std::string& packed) {
  auto it = peer->rkeys.find(packed);
  if (it != peer->rkeys.end()) return it->second;
  plasma_tp_rkey_t rkey;
  int rc = ops_->rkey_unpack(context_, peer->conn, packed.data(), packed.size(),
                                       &rkey);
  if (rc != PLASMA_TP_OK) return plugin_->ToStatus(rc, "unpack remote key");
  peer->rkeys[packed] = rkey;
  return rkey;
}

void TransferEngine::Pull(const ObjectId& id, std::vector<NodeInfo> holders, PullCallback done) {
  auto pull = std::make_unique<PullState>();
  pull->transfer = next_transfer_++;
  pull->id = id;
  pull->holders = std::move(holders);
  pull->done = std::move(done);
  pull->started_ms = MonotonicMilliseconds();
  PullState* raw = pull.get();
  pulls_[raw->transfer] = std::move(pull);
  StartAttempt(raw);
}

void TransferEngine::StartAttempt(PullState* pull) {
  while (pull->attempt < pull->holders.size()) {
    const NodeInfo& holder = pull->holders[pull->attempt++];
    auto peer = PeerFor(holder);
    if (!peer.ok()) {
      pull->failures.push_back(holder.name + ": " + peer.status().message());
      continue;
    }
    pull->peer = *peer;
    pull->attempt_started_us = MonotonicMicroseconds();
    uint64_t transfer = pull->transfer;
    size_t attempt = pull->attempt;
    // The reply lands in this buffer; it lives as long as the receive does.
    auto header_buffer = std::make_shared<std::vector<uint8_t>>(transfer::kMaxControlMessage);
    plasma_tp_request_t request;
    int rc = ops_->recv(context_, pull->peer->conn,
                                  MakeTag(MessageKind::kHeader, transfer), ~uint64_t(0),
                                  header_buffer->data(), header_buffer->size(), nullptr, &request);
    rc = Post(rc, request, [this, transfer, attempt, header_buffer](const plasma_tp_completion_t& c) {
      auto it = pulls_.find(transfer);
      if (it == pulls_.end() || it->second->attempt != attempt) return;  // a stale attempt
      PullState* p = it->second.get();
      p->header_request = nullptr;
      p->header_us = MonotonicMicroseconds();
      loop_->CancelTimer(p->header_timer);
      if (c.status != PLASMA_TP_OK) {
        FailAttempt(p, plugin_->ToStatus(c.status, "waiting for the object header"));
        return;
      }
      Status decoded = transfer::Decode(header_buffer->data(), c.length, &p->header);
      if (!decoded.ok()) {
        FailAttempt(p, decoded);
        return;
      }
      OnHeader(p, c);
    });
    if (rc != PLASMA_TP_OK) {
      pull->failures.push_back(holder.name + ": " +
                               plugin_->ToStatus(rc, "post receive").message());
      continue;
    }
    pull->header_request = request;
    pull->header_timer = loop_->AddTimer(kHeaderTimeoutMs, [this, transfer, attempt] {
      auto it = pulls_.find(transfer);
      if (it == pulls_.end() || it->second->attempt != attempt) return;
      if (it->second->header_request) {
        ops_->cancel(context_, it->second->header_request);
      }
    });
    transfer::PullMessage message;
    message.transfer = transfer;
    message.id = pull->id;
    SendControl(pull->peer->conn, MakeTag(MessageKind::kPull, transfer), transfer::Encode(message),
                [this, transfer, attempt](Status sent) {
                  auto it = pulls_.find(transfer);
                  if (sent.ok() || it == pulls_.end() || it->second->attempt != attempt) return;
                  // The header receive completes as canceled and fails the attempt.
                  if (it->second->header_request) {
                    ops_->cancel(context_, it->second->header_request);
                  }
                });
    return;
  }
  std::string reasons;
  for (const auto& failure : pull->failures) reasons += (reasons.empty() ? "" : "; ") + failure;
  if (pull->holders.empty()) reasons = "no node holds it";
  CompletePull(pull, Status::Unavailable("fetch of object " + pull->id.Hex() + " failed: " + reasons));
}

void TransferEngine::OnHeader(PullState* pull, const plasma_tp_completion_t&) {
  const HeaderMessage& header = pull->header;
  if (header.status != HeaderStatus::kOk) {
    FailAttempt(pull, header.status == HeaderStatus::kNotFound
                          ? Status::ObjectNotFound("the holder no longer has it")
                          : Status::Unavailable("the holder's store failed"));
    return;
  }
  uint64_t total = header.data_size + header.metadata_size;
  // Large transfers wait for room in the byte budget; one always proceeds
  // alone, however large, so nothing waits forever.
  if (header.mode == Mode::kRendezvous && inflight_bytes_ > 0 &&
      inflight_bytes_ + total > options_.inflight_byte_budget) {
    PLASMA_LOG(kDebug) << "pull of " << pull->id.Hex() << " (" << total
                       << " bytes) waits for the in-flight budget: " << inflight_bytes_ << " of "
                       << options_.inflight_byte_budget << " bytes in flight";
    waiting_for_budget_.push_back(pull->transfer);
    return;
  }
  StartData(pull);
}

void TransferEngine::AdmitWaitingPulls() {
  while (!waiting_for_budget_.empty()) {
    auto it = pulls_.find(waiting_for_budget_.front());
    if (it == pulls_.end()) {
      waiting_for_budget_.pop_front();
      continue;
    }
    uint64_t total = it->second->header.data_size + it->second->header.metadata_size;
    if (inflight_bytes_ > 0 && inflight_bytes_ + total > options_.inflight_byte_budget) return;
    waiting_for_budget_.pop_front();
    StartData(it->second.get());
  }
}

void TransferEngine::StartData(PullState* pull) {
  if (pull->peer == nullptr) {
    FailAttempt(pull, Status::Unavailable("connection closed"));
    return;
  }
  // Charged now, at admission, not when the object is created: several
  // pulls admitted in one pass must each see the others' bytes.
  uint64_t total = pull->header.data_size + pull->header.metadata_size;
  pull->charged_bytes = total;
  inflight_bytes_ += total;
  PLASMA_LOG(kDebug) << "pull of " << pull->id.Hex() << " starts its data: " << inflight_bytes_
                     << " bytes in flight (budget " << options_.inflight_byte_budget << ")";
  pulls_to_create_.push_back({pull->transfer, pull->attempt});
  SchedulePoll();
}

// The store calls of a progress pass are made together, pipelined: one
// wake-up of the store for all the pulls served, objects created and
// objects sealed in the pass, instead of one round trip each.
void TransferEngine::RunQueuedStoreCalls() {
  while (!pulls_to_serve_.empty() || !pulls_to_create_.empty() || !pulls_to_seal_.empty()) {
    ServeQueuedPulls();
    CreateQueuedObjects();
    SealQueuedObjects();
  }
}

TransferEngine::PullState* TransferEngine::CurrentAttempt(const QueuedAttempt& queued) {
  auto it = pulls_.find(queued.transfer);
  if (it == pulls_.end() || it->second->attempt != queued.attempt) return nullptr;
  return it->second.get();
}

void TransferEngine::CreateQueuedObjects() {
  std::vector<QueuedAttempt> queued;
  queued.swap(pulls_to_create_);
  std::vector<QueuedAttempt> attempts;
  std::vector<FillSpec> specs;
  for (const QueuedAttempt& q : queued) {
    PullState* pull = CurrentAttempt(q);
    if (pull == nullptr) continue;
    attempts.push_back(q);
    specs.push_back({pull->id, int64_t(pull->header.data_size), int64_t(pull->header.metadata_size)});
  }
  if (specs.empty()) return;
  auto created = store_->CreateForFillMany(specs);
  for (size_t i = 0; i < attempts.size(); ++i) {
    // Handling one may end others (a shared peer dropped): look each up again.
    PullState* pull = CurrentAttempt(attempts[i]);
    if (pull == nullptr) {
      if (created[i].ok()) {
        created[i] = ObjectBuffer();
        store_->Abort(specs[i].id);
      }
      continue;
    }
    ReceiveInto(pull, std::move(created[i]));
  }
}

void TransferEngine::SealQueuedObjects() {
  std::vector<QueuedAttempt> queued;
  queued.swap(pulls_to_seal_);
  std::vector<QueuedAttempt> attempts;
  std::vector<ObjectId> ids;
  std::vector<std::string> digests;
  for (const QueuedAttempt& q : queued) {
    PullState* pull = CurrentAttempt(q);
    if (pull == nullptr) continue;
    attempts.push_back(q);
    ids.push_back(pull->id);
    digests.push_back(pull->header.digest);
  }
  if (ids.empty()) return;
  std::vector<Status> sealed = store_->SealMany(ids, digests);
  for (size_t i = 0; i < attempts.size(); ++i) {
    PullState* pull = CurrentAttempt(attempts[i]);
    if (pull == nullptr) continue;
    pull->object = ObjectBuffer();  // the store keeps the sealed object; we drop our reference
    CompletePull(pull, sealed[i]);
  }
}

void TransferEngine::ReceiveInto(PullState* pull, Result<ObjectBuffer> created) {
  const HeaderMessage& header = pull->header;
  uint64_t total = header.data_size + header.metadata_size;
  if (created.ok()) {
    pull->object = std::move(created).value();  // from here FailAttempt aborts it
    pull->created_us = MonotonicMicroseconds();
  }
  if (pull->peer == nullptr) {
    FailAttempt(pull, Status::Unavailable("connection closed"));
    return;
  }
  if (!created.ok()) {
    if (created.status().IsObjectExists()) {
      // Someone else (another pull, a local put) made it meanwhile.
      if (header.mode == Mode::kRendezvous) {
        SendControl(pull->peer->conn, MakeTag(MessageKind::kFinish, pull->transfer),
                    transfer::Encode(transfer::FinishMessage{pull->transfer, false}));
      }
      auto contains = store_->Contains(pull->id);
      CompletePull(pull, contains.ok() && *contains
                             ? Status::OK()
                             : Status::ObjectExists("object " + pull->id.Hex() +
                                                    " is being created locally by another client"));
      return;
    }
    if (header.mode == Mode::kRendezvous) {
      SendControl(pull->peer->conn, MakeTag(MessageKind::kFinish, pull->transfer),
                  transfer::Encode(transfer::FinishMessage{pull->transfer, false}));
    }
    // The local store cannot take it: no other holder would help.
    CompletePull(pull, Status(created.status().code(),
                              "fetch of object " + pull->id.Hex() + ": local store: " +
                                  created.status().message()));
    return;
  }
  uint8_t* destination = pull->object.data();
  if (header.metadata_size > 0 && pull->object.metadata() != destination + header.data_size) {
    store_->Abort(pull->id);
    pull->object = ObjectBuffer();
    CompletePull(pull, Status::NotSupported("the local store did not place metadata right after "
                                            "the data; cannot receive in one transfer"));
    return;
  }
  uint64_t transfer = pull->transfer;
  size_t attempt = pull->attempt;
  CompletionHandler on_data = [this, transfer, attempt, total](const plasma_tp_completion_t& c) {
    auto it = pulls_.find(transfer);
    if (it == pulls_.end() || it->second->attempt != attempt) return;
    PullState* p = it->second.get();
    bool rendezvous = p->header.mode == Mode::kRendezvous;
    Status status = c.status == PLASMA_TP_OK
                        ? (c.length == total
                               ? Status::OK()
                               : Status::ProtocolError("holder sent " + std::to_string(c.length) +
                                                       " bytes, expected " + std::to_string(total)))
                        : plugin_->ToStatus(c.status,
                                          rendezvous ? "read the object" : "receive the object");
    if (rendezvous && p->peer != nullptr) {
      SendControl(p->peer->conn, MakeTag(MessageKind::kFinish, transfer),
                  transfer::Encode(transfer::FinishMessage{transfer, status.ok()}));
    }
    if (!status.ok()) {
      FailAttempt(p, status);
      return;
    }
    p->data_us = MonotonicMicroseconds();
    pulls_to_seal_.push_back({transfer, attempt});
  };
  plasma_tp_request_t request;
  int rc;
  if (header.mode == Mode::kEager) {
    rc = ops_->recv(context_, pull->peer->conn,
                              MakeTag(MessageKind::kData, transfer), ~uint64_t(0), destination,
                              total, arena_mem_, &request);
  } else {
    auto rkey = RemoteKey(pull->peer, header.rkey);
    if (!rkey.ok()) {
      FailAttempt(pull, rkey.status());
      return;
    }
    rc = ops_->read(context_, pull->peer->conn, destination, total, arena_mem_,
                              header.remote_address, *rkey, &request);
  }
  rc = Post(rc, request, std::move(on_data));
  if (rc != PLASMA_TP_OK) FailAttempt(pull, plugin_->ToStatus(rc, "post data transfer"));
}

void TransferEngine::FailAttempt(PullState* pull, const Status& why) {
  std::string holder = pull->attempt > 0 ? pull->holders[pull->attempt - 1].name : "?";
  PLASMA_LOG(kWarning) << "pull of " << pull->id.Hex() << " from node " << holder
                       << " failed: " << why.ToString();
  pull->failures.push_back(holder + ": " + why.message());
  if (pull->object.valid()) {
    // Never visible: the half-written object goes away.
    pull->object = ObjectBuffer();
    store_->Abort(pull->id);
  }
  inflight_bytes_ -= pull->charged_bytes;
  pull->charged_bytes = 0;
  // Whether the connection itself is broken is the plugin's to say, not
  // the kind of error this attempt met.
  if (pull->peer != nullptr && ops_->conn_status(context_, pull->peer->conn) < 0) {
    DropPeer(pull->peer, why);
  }
  pull->peer = nullptr;
  StartAttempt(pull);
  AdmitWaitingPulls();
}

void TransferEngine::CompletePull(PullState* pull, Status status) {
  if (status.ok()) {
    uint64_t total = pull->header.data_size + pull->header.metadata_size;
    int64_t now = MonotonicMicroseconds();
    PLASMA_LOG(kDebug) << "pulled " << pull->id.Hex() << " (" << total << " bytes, "
                       << (pull->header.mode == Mode::kEager ? "eager" : "rendezvous") << ") in "
                       << MonotonicMilliseconds() - pull->started_ms << " ms; last attempt µs: header "
                       << pull->header_us - pull->attempt_started_us << ", create "
                       << pull->created_us - pull->header_us << ", data "
                       << pull->data_us - pull->created_us << ", seal " << now - pull->data_us;
  }
  if (pull->object.valid()) {
    pull->object = ObjectBuffer();
    store_->Abort(pull->id);
  }
  inflight_bytes_ -= pull->charged_bytes;
  PullCallback done = std::move(pull->done);
  loop_->CancelTimer(pull->header_timer);
  if (pull->header_request) ops_->cancel(context_, pull->header_request);
  pulls_.erase(pull->transfer);
  done(status);
  AdmitWaitingPulls();
}

// ---------------------------------------------------------------- holder

void TransferEngine::AcceptConnections() {
  while (true) {
    plasma_tp_conn_t conn;
    if (ops_->accept(context_, listener_, &conn) != PLASMA_TP_OK) return;
    uint64_t serial = next_served_serial_++;
    served_[conn].serial = serial;
    for (int i = 0; i < options_.control_receives_per_connection && IsServed(conn, serial); ++i) {
      PostControlReceive(conn, serial,
                         std::make_shared<std::vector<uint8_t>>(transfer::kMaxControlMessage));
    }
  }
}

void TransferEngine::PostControlReceive(plasma_tp_conn_t conn, uint64_t serial,
                                        std::shared_ptr<std::vector<uint8_t>> buffer) {
  plasma_tp_request_t request;
  int rc = ops_->recv(context_, conn, kControlTag, kControlMask, buffer->data(),
                                buffer->size(), nullptr, &request);
  rc = Post(rc, request, [this, conn, serial, buffer](const plasma_tp_completion_t& c) {
    if (!IsServed(conn, serial)) return;  // closed meanwhile
    if (c.status != PLASMA_TP_OK) {
      CloseServedConnection(conn, plugin_->ToStatus(c.status, "control receive"));
      return;
    }
    OnControlMessage(conn, buffer->data(), c);
    if (IsServed(conn, serial)) PostControlReceive(conn, serial, buffer);
  });
  if (rc != PLASMA_TP_OK) {
    CloseServedConnection(conn, plugin_->ToStatus(rc, "post control receive"));
  }
}

void TransferEngine::OnControlMessage(plasma_tp_conn_t conn, const uint8_t* data,
                                      const plasma_tp_completion_t& completion) {
  MessageKind kind = transfer::TagKind(completion.tag);
  if (kind == MessageKind::kPull) {
    transfer::PullMessage pull;
    Status s = transfer::Decode(data, completion.length, &pull);
    if (!s.ok()) {
      CloseServedConnection(conn, s);
      return;
    }
    pulls_to_serve_.push_back({conn, served_[conn].serial, pull});
  } else {
    transfer::FinishMessage finish;
    Status s = transfer::Decode(data, completion.length, &finish);
    if (!s.ok()) {
      CloseServedConnection(conn, s);
      return;
    }
    served_[conn].objects.erase(finish.transfer);  // releases the object in our store
  }
}

void TransferEngine::ServeQueuedPulls() {
  std::vector<QueuedServe> queued;
  queued.swap(pulls_to_serve_);
  std::vector<ObjectId> ids;
  for (const QueuedServe& q : queued) ids.push_back(q.pull.id);
  if (ids.empty()) return;
  // One Get for every object asked for in this pass.
  auto got = store_->Get(ids, 0);
  if (!got.ok()) {
    PLASMA_LOG(kError) << "store Get for " << ids.size() << " pulls: " << got.status().ToString();
  }
  for (size_t i = 0; i < queued.size(); ++i) {
    if (!IsServed(queued[i].conn, queued[i].serial)) continue;  // closed meanwhile
    ObjectBuffer object = got.ok() ? std::move((*got)[i]) : ObjectBuffer();
    ServePull(queued[i].conn, queued[i].pull, std::move(object), got.ok());
  }
}

void TransferEngine::ServePull(plasma_tp_conn_t conn, const transfer::PullMessage& pull,
                               ObjectBuffer object, bool store_answered) {
  HeaderMessage header;
  header.transfer = pull.transfer;
  if (!object.valid()) {
    header.status = store_answered ? HeaderStatus::kNotFound : HeaderStatus::kUnavailable;
    SendControl(conn, MakeTag(MessageKind::kHeader, pull.transfer), transfer::Encode(header));
    return;
  }
  header.data_size = uint64_t(object.data_size());
  header.metadata_size = uint64_t(object.metadata_size());
  auto digest = digests_.find(pull.id);
  if (digest != digests_.end()) header.digest = digest->second;
  uint64_t total = header.data_size + header.metadata_size;
  uint8_t* start = object.data();
  bool contiguous = header.metadata_size == 0 || object.metadata() == start + header.data_size;
  bool inside_arena = start >= arena_base_ && start + total <= arena_base_ + arena_size_;
  if (!contiguous || !inside_arena) {
    PLASMA_LOG(kError) << "object " << pull.id.Hex() << " is not one block in the registered arena";
    header.status = HeaderStatus::kUnavailable;
    SendControl(conn, MakeTag(MessageKind::kHeader, pull.transfer), transfer::Encode(header));
    return;
  }
  uint64_t transfer = pull.transfer;
  if (total < eager_threshold_) {
    header.mode = Mode::kEager;
    SendControl(conn, MakeTag(MessageKind::kHeader, transfer), transfer::Encode(header));
    served_[conn].objects[transfer] = std::move(object);
    uint64_t serial = served_[conn].serial;
    plasma_tp_request_t request;
    int rc = ops_->send(context_, conn, MakeTag(MessageKind::kData, transfer),
                                  start, total, arena_mem_, &request);
    rc = Post(rc, request, [this, conn, serial, transfer](const plasma_tp_completion_t&) {
      // Sent (or failed): release.
      if (IsServed(conn, serial)) served_[conn].objects.erase(transfer);
    });
    if (rc != PLASMA_TP_OK) served_[conn].objects.erase(transfer);
  } else {
    header.mode = Mode::kRendezvous;
    header.remote_address = reinterpret_cast<uint64_t>(start);
    header.rkey = arena_rkey_;
    // Referenced until the puller says FINISH (or its connection dies).
    served_[conn].objects[transfer] = std::move(object);
    SendControl(conn, MakeTag(MessageKind::kHeader, transfer), transfer::Encode(header));
  }
}

void TransferEngine::SendControl(plasma_tp_conn_t conn, uint64_t tag, std::vector<uint8_t> bytes,
                                 std::function<void(Status)> on_sent) {
  auto buffer = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  plasma_tp_request_t request;
  int rc = ops_->send(context_, conn, tag, buffer->data(), buffer->size(),
                                nullptr, &request);
  rc = Post(rc, request, [this, buffer, on_sent](const plasma_tp_completion_t& c) {
    if (on_sent) {
      on_sent(c.status == PLASMA_TP_OK ? Status::OK()
                                       : plugin_->ToStatus(c.status, "send"));
    }
  });
  if (rc != PLASMA_TP_OK && on_sent) on_sent(plugin_->ToStatus(rc, "send"));
}

void TransferEngine::CloseServedConnection(plasma_tp_conn_t conn, const Status& why) {
  auto it = served_.find(conn);
  if (it == served_.end()) return;
  PLASMA_LOG(kDebug) << "closing a served connection: " << why.ToString();
  ops_->close_conn(context_, conn);
  served_.erase(it);  // every object still served is released
}

}  // namespace plasma
