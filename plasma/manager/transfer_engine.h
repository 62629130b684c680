// TransferEngine: moves objects between this node's store and other nodes'
// through one transport plugin. It registers the local arena once at start,
// and runs both sides of the transfer protocol (transfer_protocol.h) over
// one TransportDriver: the Puller (objects this node fetches) and the
// Holder (objects other nodes fetch from here). Everything runs on the
// manager's event loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plasma/manager/local_store.h"
#include "plasma/common/event_loop.h"
#include "plasma/manager/control_buffers.h"
#include "plasma/manager/holder.h"
#include "plasma/manager/object_directory.h"
#include "plasma/manager/puller.h"
#include "plasma/manager/transport_driver.h"
#include "transport/loader.h"

namespace plasma {

class TransferEngine {
 public:
  // Pushes go in chunks of the plugin's eager threshold; below this one a
  // push is too many small messages to pay.
  static constexpr uint64_t kMinPushChunk = 64 * 1024;

  struct Options {
    std::string bind_hint;  // where to listen ("" = plugin default)
    uint64_t inflight_byte_budget = 1ull << 30;
    // Objects whose HEADER and bytes fit go inline (0: the plugin's eager
    // threshold); larger ones by rendezvous READ.
    uint64_t eager_threshold = 0;
    int64_t stall_timeout_ms = 10000;
    uint64_t max_lent_bytes_per_peer = 2ull << 30;
    bool verify_digests = false;
    // Pushes up to this size (plugins without a native READ; 0: never).
    uint64_t max_push_bytes = 4ull << 20;
  };
  using PullCallback = Puller::PullCallback;

  // The plugin must outlive the engine.
  static Result<std::unique_ptr<TransferEngine>> Create(EventLoop* loop, transport::Plugin* plugin,
                                                        LocalStore* store,
                                                        const Options& options);
  ~TransferEngine();

  // The plugin's listener address: what this node registers in Redis.
  const std::string& address() const { return address_; }
  uint64_t eager_threshold() const { return inline_message_limit_; }

  void Pull(const ObjectId& id, std::vector<NodeInfo> holders,
            std::optional<ObjectSizes> announced, PullCallback done) {
    puller_->Pull(id, std::move(holders), announced, std::move(done));
  }
  // The chunk size of pushes, 0 if this plugin's transfers are not pushed.
  uint64_t push_chunk() const { return push_chunk_; }
  void OnNodeFailed(Puller::NodeFailedCallback callback) {
    puller_->OnNodeFailed(std::move(callback));
  }
  void RememberDigest(const ObjectId& id, const std::string& digest) {
    holder_->RememberDigest(id, digest);
  }
  void ForgetDigest(const ObjectId& id) { holder_->ForgetDigest(id); }

 private:
  TransferEngine(EventLoop* loop, transport::Plugin* plugin, LocalStore* store,
                 const Options& options);
  Status Start();
  void AfterPass();

  EventLoop* loop_;
  transport::Plugin* plugin_;
  LocalStore* store_;
  Options options_;
  uint64_t inline_message_limit_ = 0;
  uint64_t push_chunk_ = 0;
  std::string address_;
  plasma_tp_listener_t listener_ = nullptr;
  plasma_tp_mem_t arena_mem_ = nullptr;
  // Destroyed in reverse: the sides first (their requests' buffers go back
  // to the pool), then the driver, then the pool.
  std::unique_ptr<ControlBufferPool> buffers_;
  std::unique_ptr<TransportDriver> driver_;
  std::unique_ptr<Puller> puller_;
  std::unique_ptr<Holder> holder_;
};

}  // namespace plasma
