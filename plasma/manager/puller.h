// Puller: the receiving side of the transfer protocol (transfer_protocol.h).
// It pulls objects into the local store from other nodes' managers over
// connections it caches per peer, tries each holder in turn, and bounds what
// it has in flight: pulls waiting for a HEADER (each holds a receive buffer)
// and bytes of rendezvous transfers. A holder that stays silent is given up
// on: its connection is closed, which ends every request on it, and each of
// its pulls moves to its next holder.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "plasma/manager/local_store.h"
#include "plasma/manager/control_buffers.h"
#include "plasma/manager/object_directory.h"
#include "plasma/manager/transfer_protocol.h"
#include "plasma/manager/transport_driver.h"

namespace plasma {

struct PullerOptions {
  uint64_t inflight_byte_budget = 1ull << 30;  // rendezvous bytes in flight at once
  size_t max_pulls_awaiting_header = 256;      // each holds one HEADER receive buffer
  // A holder silent this long (no HEADER, or a READ not done in this plus
  // its size at min_transfer_rate) is given up on.
  int64_t stall_timeout_ms = 10000;
  uint64_t min_transfer_rate = 10ull << 20;  // bytes per second
  bool verify_digests = false;               // hash received bytes, compare with the holder's
  // Objects up to this size whose sizes were announced are pushed (with a
  // plugin that has no native READ, see PullerResources::push_chunk).
  uint64_t max_push_bytes = 4ull << 20;
};

// Where the received bytes go, fixed at start-up.
struct PullerResources {
  plasma_tp_mem_t arena_mem = nullptr;  // the local arena's registration
  size_t header_capacity = 0;           // HEADER receive size (inline objects included)
  uint64_t store_capacity = 0;          // objects larger than this are refused
  // Chunk size of a push: the plugin's eager threshold, so that every chunk
  // lands straight in a posted receive. 0: never push (a native READ costs
  // no extra round trip of the holder's, so rendezvous is kept).
  uint64_t push_chunk = 0;
};

class Puller {
 public:
  using PullCallback = std::function<void(Status)>;
  using NodeFailedCallback = std::function<void(const std::string& node_name)>;

  Puller(EventLoop* loop, TransportDriver* driver, ControlBufferPool* buffers, LocalStore* store,
         const PullerOptions& options, const PullerResources& resources);
  ~Puller();

  // Pulls id into the local store from the first holder that delivers;
  // calls back once with OK (sealed locally) or an error naming the id and
  // every holder's failure. `announced`: the sizes holders announced, if
  // known (then the object may be pushed).
  void Pull(const ObjectId& id, std::vector<NodeInfo> holders,
            std::optional<ObjectSizes> announced, PullCallback done);
  // Told when a peer's connection fails, so its cached address is re-read.
  void OnNodeFailed(NodeFailedCallback callback) { on_node_failed_ = std::move(callback); }

  // After each progress pass: connection states, and the store calls queued
  // in the pass, pipelined (one store wake-up for all of them).
  void CheckConnections();
  bool RunStoreCalls();

 private:
  // A pull's phase. Each phase names what it waits for.
  enum class Phase {
    kWaitingForWindow,  // too many pulls await a HEADER; not asked yet
    kAwaitingHeader,    // PULL sent, HEADER receive posted, deadline armed
    kAwaitingHolder,    // the holder said busy; asked again when one of ours ends
    kAwaitingBudget,    // rendezvous HEADER in hand, waiting for in-flight bytes
    kStoringWhole,      // inline bytes in hand, queued for the store's CreateAndSeal
    kCreating,          // rendezvous: queued for the local store's Create
    kReading,           // rendezvous READ posted, deadline armed
    kCreatingForPush,   // push: queued for Create, before the PULL is sent
    kAwaitingPush,      // push: chunk receives and HEADER receive posted, PULL sent,
                        // deadline armed; waits for the HEADER and every chunk
    kSealing,           // bytes in place (read or pushed), queued for Seal
  };
  struct Peer;
  struct PullState;
  struct QueuedCall {
    uint64_t transfer;
    uint64_t attempt;
  };

  PullState* Find(uint64_t transfer, uint64_t attempt);
  Result<Peer*> PeerFor(const NodeInfo& node);
  void DropPeer(Peer* peer, const Status& why);
  void TryNextHolder(PullState* pull);
  void AskHolder(PullState* pull);
  bool WantsPush(const PullState* pull) const;
  void SendPull(PullState* pull, uint64_t push_size);
  void OnHeader(uint64_t transfer, uint64_t attempt, std::shared_ptr<ControlBuffer> buffer,
                const plasma_tp_completion_t& completion);
  void OnBusy(PullState* pull);
  void StartData(PullState* pull);
  void AdmitWaitingForBudget();
  void AdmitWaitingForWindow();
  std::vector<QueuedCall> TakeQueued(std::vector<QueuedCall>* queue, Phase phase);
  void StoreQueuedWholeObjects();
  void CreateQueuedObjects();
  void SealQueuedObjects();
  void OnLocalStoreRefused(PullState* pull, const Status& refused);
  void ReceiveInto(PullState* pull, Result<StoredObject> created);
  bool TakeCreated(PullState* pull, Result<StoredObject> created);
  void ReceivePushInto(PullState* pull, Result<StoredObject> created);
  void OnPushHeader(PullState* pull, const ControlBuffer& buffer,
                    const plasma_tp_completion_t& completion);
  void OnPushedChunk(uint64_t transfer, uint64_t attempt, uint64_t expected_length,
                     const plasma_tp_completion_t& completion);
  void ResolvePush(PullState* pull);
  void BytesReceived(PullState* pull, Status received);
  void OnRead(uint64_t transfer, uint64_t attempt, const plasma_tp_completion_t& completion);
  Status CheckDigest(PullState* pull, const uint8_t* bytes);
  Status RequestFailure(PullState* pull, int code, const char* what);
  void ArmDeadline(PullState* pull, int64_t delay_ms);
  void SettleWithHolder(PullState* pull, bool success);
  void SendControl(Peer* peer, uint64_t tag, std::vector<uint8_t> bytes);
  Result<plasma_tp_rkey_t> RemoteKey(Peer* peer, const std::string& packed);
  void ReleaseHeaderBuffer(PullState* pull);
  void ReleaseAttempt(PullState* pull);
  void FailAttempt(PullState* pull, const Status& why);
  void CompletePull(PullState* pull, Status status);
  void LogPulled(const PullState* pull) const;
  static const char* PhaseName(Phase phase);

  EventLoop* loop_;
  TransportDriver* driver_;
  const plasma_tp_v1_t* ops_;
  plasma_tp_context_t context_;
  ControlBufferPool* buffers_;
  LocalStore* store_;
  PullerOptions options_;
  PullerResources resources_;
  NodeFailedCallback on_node_failed_;

  std::unordered_map<std::string, std::unique_ptr<Peer>> peers_;  // by node name
  std::unordered_map<uint64_t, std::unique_ptr<PullState>> pulls_;  // by transfer number
  uint64_t next_transfer_ = 1;
  uint64_t next_attempt_ = 1;
  uint64_t inflight_bytes_ = 0;
  size_t header_buffers_held_ = 0;
  std::deque<uint64_t> waiting_for_window_;
  std::deque<uint64_t> waiting_for_budget_;
  std::vector<QueuedCall> to_store_whole_;
  std::vector<QueuedCall> to_create_;
  std::vector<QueuedCall> to_create_for_push_;
  std::vector<QueuedCall> to_seal_;
};

}  // namespace plasma
