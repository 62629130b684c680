// TransferEngine: moves objects between this node's store and other nodes'
// through one transport plugin. It owns the plugin's connections (cached per
// peer and reused), the registration of the local store's arena (made once at
// start-up), both sides of the transfer protocol (transfer_protocol.h), and
// the in-flight byte budget. Everything runs on the manager's event loop.
#pragma once


#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "plasma/client/client.h"
#include "plasma/common/event_loop.h"
#include "plasma/manager/object_directory.h"
#include "plasma/manager/transfer_protocol.h"
#include "transport/loader.h"

namespace plasma {

class TransferEngine {
 public:
  struct Options {
    std::string bind_hint;                    // where to listen ("" = plugin default)
    uint64_t inflight_byte_budget = 1ull << 30;
    uint64_t eager_threshold = 0;             // 0: the plugin's suggestion
    int control_receives_per_connection = 16;
  };
  using PullCallback = std::function<void(Status)>;

  // The plugin must outlive the engine.
  static Result<std::unique_ptr<TransferEngine>> Create(EventLoop* loop, transport::Plugin* plugin,
                                                        std::shared_ptr<Client> store,
                                                        const Options& options);
  ~TransferEngine();

  // The plugin's listener address: what this node registers in Redis.
  const std::string& address() const { return address_; }
  uint64_t eager_threshold() const { return eager_threshold_; }

  // Pulls id into the local store from the first holder that delivers,
  // trying them in order; calls back once with OK (sealed locally) or an
  // error naming the id and every holder's failure.
  void Pull(const ObjectId& id, std::vector<NodeInfo> holders, PullCallback done);

  // Seal digests of the local store's objects (from its notifications), sent
  // along so a puller need not hash what it receives.
  void RememberDigest(const ObjectId& id, const std::string& digest) { digests_[id] = digest; }
  void ForgetDigest(const ObjectId& id) { digests_.erase(id); }

  // Drives the plugin; called when its wait fd is readable (and by timers).
  void Progress();
  size_t active_pulls() const { return pulls_.size(); }

 private:
  struct Peer;
  struct PullState;
  struct Serving;
  using CompletionHandler = std::function<void(const plasma_tp_completion_t&)>;

  TransferEngine(EventLoop* loop, transport::Plugin* plugin, std::shared_ptr<Client> store,
                 const Options& options);
  Status Start();
  int Post(int rc, plasma_tp_request_t request, CompletionHandler handler);
  void TestRequests();
  void SchedulePoll();

  // Puller side.
  Result<Peer*> PeerFor(const NodeInfo& node);
  void DropPeer(Peer* peer, const Status& why);
  void StartAttempt(PullState* pull);
  void OnHeader(PullState* pull, const plasma_tp_completion_t& completion);
  void StartData(PullState* pull);
  void ReceiveInto(PullState* pull, Result<ObjectBuffer> created);
  // A pull's attempt, as queued for a store call; the pull may have moved on
  // (or ended) by the time the call is made.
  struct QueuedAttempt {
    uint64_t transfer;
    size_t attempt;
  };
  PullState* CurrentAttempt(const QueuedAttempt& queued);
  void RunQueuedStoreCalls();
  void CreateQueuedObjects();
  void SealQueuedObjects();
  void FailAttempt(PullState* pull, const Status& why);
  void CompletePull(PullState* pull, Status status);
  void AdmitWaitingPulls();
  Result<plasma_tp_rkey_t> RemoteKey(Peer* peer, const std::string& packed);

  // Holder side.
  void AcceptConnections();
  void PostControlReceive(plasma_tp_conn_t conn, uint64_t serial,
                          std::shared_ptr<std::vector<uint8_t>> buffer);
  void OnControlMessage(plasma_tp_conn_t conn, const uint8_t* data,
                        const plasma_tp_completion_t& completion);
  void ServeQueuedPulls();
  void ServePull(plasma_tp_conn_t conn, const transfer::PullMessage& pull, ObjectBuffer object,
                 bool store_answered);
  void SendControl(plasma_tp_conn_t conn, uint64_t tag, std::vector<uint8_t> bytes,
                   std::function<void(Status)> on_sent = nullptr);
  void CloseServedConnection(plasma_tp_conn_t conn, const Status& why);

  EventLoop* loop_;
  transport::Plugin* plugin_;
  const plasma_tp_v1_t* ops_;  // plugin_->api(), called as ops_->send(context_, ...)
  plasma_tp_context_t context_;
  std::shared_ptr<Client> store_;
  Options options_;
  uint64_t eager_threshold_ = 0;
  std::string address_;
  plasma_tp_listener_t listener_ = nullptr;
  plasma_tp_mem_t arena_mem_ = nullptr;
  std::string arena_rkey_;
  uint8_t* arena_base_ = nullptr;
  size_t arena_size_ = 0;
  int wait_fd_ = -1;
  bool poll_scheduled_ = false;

  std::unordered_map<plasma_tp_request_t, CompletionHandler> requests_;
  std::unordered_map<std::string, std::unique_ptr<Peer>> peers_;  // by node name
  std::unordered_map<uint64_t, std::unique_ptr<PullState>> pulls_;  // by transfer number
  std::deque<uint64_t> waiting_for_budget_;
  // Store calls waiting for the end of the progress pass (RunQueuedStoreCalls).
  struct QueuedServe {
    plasma_tp_conn_t conn;
    uint64_t serial;
    transfer::PullMessage pull;
  };
  std::vector<QueuedServe> pulls_to_serve_;
  std::vector<QueuedAttempt> pulls_to_create_;
  std::vector<QueuedAttempt> pulls_to_seal_;
  std::unordered_map<ObjectId, std::string> digests_;
  uint64_t next_transfer_ = 1;
  uint64_t inflight_bytes_ = 0;

  // Connections peers opened to us, and the objects we serve on them (by the
  // puller's transfer number). A closed handle's address may be reused by
  // the next accept, so completions check the serial too.
  struct ServedConnection {
    uint64_t serial = 0;
    std::map<uint64_t, ObjectBuffer> objects;
  };
  std::map<plasma_tp_conn_t, ServedConnection> served_;
  uint64_t next_served_serial_ = 1;
  bool IsServed(plasma_tp_conn_t conn, uint64_t serial) const {
    auto it = served_.find(conn);
    return it != served_.end() && it->second.serial == serial;
  }
};

}  // namespace plasma
