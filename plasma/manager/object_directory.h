// ObjectDirectory: where objects live, kept in Redis and reached through
// hiredis's asynchronous API on the manager's event loop (a slow or dead
// Redis never stalls transfers).
//
// Key schema (docs/manager.md):
//   plasma:object:<40-hex id>   SET of node names holding the object
//   plasma:node:<node name>     HASH: transport, address (plugin address blob), pid, host
//   plasma:sealed:<40-hex id>   channel: a node name is published when it adds itself
//
// The directory remembers this node's locations and its registration, and
// replays them after Redis restarts or the connection drops.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "plasma/common/event_loop.h"
#include "plasma/common/object_id.h"
#include "plasma/common/status.h"

struct redisAsyncContext;
struct redisReply;

namespace plasma {

struct NodeInfo {
  std::string name;
  std::string transport;  // plugin name
  std::string address;    // the plugin's listener address blob
};

class ObjectDirectory {
 public:
  struct Options {
    std::string redis_address;  // "host:port", or a Unix socket path starting with '/'
    NodeInfo self;
    int64_t reconnect_delay_ms = 200;
  };
  using HoldersCallback = std::function<void(Status, std::vector<NodeInfo>)>;
  using WatchCallback = std::function<void()>;
  using WatchId = uint64_t;

  static Result<std::unique_ptr<ObjectDirectory>> Create(EventLoop* loop, const Options& options);
  ~ObjectDirectory();

  // Records (and replays after reconnects) that this node holds id.
  void AddLocation(const ObjectId& id);
  void RemoveLocation(const ObjectId& id);
  // Removes every location and the node record; for a clean shutdown.
  void Unregister();

  // Holders of id other than this node, with their addresses. Fails
  // (Unavailable) while Redis is unreachable.
  void LookupHolders(const ObjectId& id, HoldersCallback callback);
  // Calls back once, the next time some node adds itself as a holder of id.
  // Start the watch before looking up, so no announcement falls in between.
  WatchId Watch(const ObjectId& id, WatchCallback callback);
  void CancelWatch(WatchId watch);
  // Forgets a cached node address (e.g. after failing to connect to it).
  void ForgetNode(const std::string& name);

  bool connected() const { return commands_ != nullptr && commands_ready_; }
  const NodeInfo& self() const { return options_.self; }

 private:
  ObjectDirectory(EventLoop* loop, const Options& options) : loop_(loop), options_(options) {}
  struct Connection;
  Status Connect();
  void ScheduleReconnect();
  void OnCommandsConnected();
  void OnDisconnected(redisAsyncContext* context);
  void ResolveNodes(std::vector<std::string> names, HoldersCallback callback);
  void OnMessage(redisReply* reply);
  void Command(std::function<void(redisReply*)> on_reply, const std::vector<std::string>& args);
  void SubscriberCommand(const std::vector<std::string>& args);

  EventLoop* loop_;
  Options options_;
  redisAsyncContext* commands_ = nullptr;
  redisAsyncContext* subscriber_ = nullptr;
  bool commands_ready_ = false;
  bool outage_reported_ = false;  // "lost Redis" logged for the current outage
  bool registered_once_ = false;  // a connection after this one is a reconnection
  bool reconnect_scheduled_ = false;
  bool shutting_down_ = false;
  std::unordered_set<ObjectId> local_objects_;
  std::unordered_map<std::string, NodeInfo> node_cache_;
  std::map<WatchId, std::pair<ObjectId, WatchCallback>> watches_;
  std::unordered_map<ObjectId, int> watch_counts_;
  WatchId next_watch_ = 1;
};

}  // namespace plasma
