// ObjectDirectory: where objects live, kept in Redis and reached through
// hiredis's asynchronous API on the manager's event loop (a slow or dead
// Redis never stalls transfers).
//
// Key schema (docs/manager.md):
//   plasma:object:<40-hex id>   SET of node names holding the object
//   plasma:node:<node name>     HASH: transport, address (plugin address blob), pid, host
//   plasma:sealed:<40-hex id>   channel: a node name is published when it adds itself
//   plasma:locations            channel: every change, "+<id> <node>" added,
//                               "-<id> <node>" removed, "!<node>" node withdrawn
//
// The directory remembers this node's locations and its registration, and
// replays them after Redis restarts or the connection drops. With a location
// cache it follows plasma:locations and answers lookups of known objects
// without asking Redis.
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
#include "plasma/manager/location_cache.h"

struct redisAsyncContext;
struct redisReply;

namespace plasma {

struct NodeInfo {
  std::string name;
  std::string transport;  // plugin name
  std::string address;    // the plugin's listener address blob
};

// Where a lookup's answer came from: a cached answer may be stale, so a
// transfer that fails from it asks Redis again.
enum class HolderSource { kRedis, kCache };

class ObjectDirectory {
 public:
  struct Options {
    std::string redis_address;  // "host:port", or a Unix socket path starting with '/'
    NodeInfo self;
    int64_t reconnect_delay_ms = 200;
    // Objects whose holders are remembered (0: no cache, every lookup asks
    // Redis, and plasma:locations is not followed).
    size_t location_cache_entries = 0;
  };
  using HoldersCallback = std::function<void(Status, std::vector<NodeInfo>, HolderSource)>;
  using WatchCallback = std::function<void()>;
  using WatchId = uint64_t;

  static Result<std::unique_ptr<ObjectDirectory>> Create(EventLoop* loop, const Options& options);
  ~ObjectDirectory();

  // Records (and replays after reconnects) that this node holds id.
  // A local object sealed: its sizes go out with the announcement.
  void AddLocation(const ObjectId& id, const ObjectSizes& sizes);
  void RemoveLocation(const ObjectId& id);
  // Removes every location and the node record; for a clean shutdown.
  void Unregister();

  // Holders of id other than this node, with their addresses: from the
  // location cache if it knows them, else from Redis. Fails (Unavailable)
  // while Redis is unreachable and the cache does not know.
  void LookupHolders(const ObjectId& id, HoldersCallback callback);
  // Drops the cache's entry for id (a transfer from a cached holder failed):
  // the next lookup asks Redis.
  void ForgetCachedHolders(const ObjectId& id) { cache_.Drop(id); }
  // The sizes a holder announced for id, while the cache follows events.
  std::optional<ObjectSizes> KnownSizes(const ObjectId& id) const {
    return cache_current() ? cache_.Sizes(id) : std::nullopt;
  }
  // Calls back once, the next time some node adds itself as a holder of id.
  // Start the watch before looking up, so no announcement falls in between.
  WatchId Watch(const ObjectId& id, WatchCallback callback);
  void CancelWatch(WatchId watch);
  // Forgets a node's cached address and cached locations (e.g. after
  // failing to connect to it: it may come back elsewhere, with other objects).
  void ForgetNode(const std::string& name);

  bool connected() const { return commands_ != nullptr && commands_ready_; }
  // The cache is used only while its events arrive.
  bool cache_current() const { return cache_.capacity() > 0 && following_locations_; }
  const NodeInfo& self() const { return options_.self; }

 private:
  ObjectDirectory(EventLoop* loop, const Options& options)
      : loop_(loop), options_(options), cache_(options.location_cache_entries) {}
  struct Connection;
  Status Connect();
  void ScheduleReconnect();
  void OnCommandsConnected();
  void OnDisconnected(redisAsyncContext* context);
  void LookupInRedis(const ObjectId& id, HoldersCallback callback);
  void ResolveNodes(std::vector<std::string> names, HolderSource source,
                    HoldersCallback callback);
  void OnMessage(redisReply* reply);
  void OnLocationEvent(const std::string& event);
  void Publish(const std::string& channel, const std::string& message);
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
  // Subscribed to plasma:locations on the current subscriber connection.
  bool following_locations_ = false;
  LocationCache cache_;
  std::unordered_set<ObjectId> local_objects_;
  std::unordered_map<std::string, NodeInfo> node_cache_;
  std::map<WatchId, std::pair<ObjectId, WatchCallback>> watches_;
  std::unordered_map<ObjectId, int> watch_counts_;
  WatchId next_watch_ = 1;
};

}  // namespace plasma
