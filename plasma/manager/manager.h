// Manager: the per-node daemon that moves objects between nodes. It uses
// its node's store through a LocalStore (a separate store process, or one
// hosted in this process) and follows its seal and delete events, keeps the
// object directory in Redis up to date, serves Fetch requests from local
// clients on a Unix socket, and runs transfers through a TransferEngine.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "plasma/common/event_loop.h"
#include "plasma/common/frame_connection.h"
#include "plasma/manager/local_store.h"
#include "plasma/manager/object_directory.h"
#include "plasma/manager/transfer_engine.h"

namespace plasma {

struct ManagerOptions {
  std::string store_socket;    // a separate store's socket (the two-process layout)
  std::string manager_socket;  // where local clients send Fetch
  std::string redis_address;   // "host:port" or a Unix socket path
  std::string node_name;       // unique in the cluster
  // Objects whose holders are remembered between lookups (0: always ask
  // Redis); see ObjectDirectory.
  size_t location_cache_entries = 65536;
  TransferEngine::Options transfer;
};

class Manager {
 public:
  static Result<std::unique_ptr<Manager>> Create(EventLoop* loop, const ManagerOptions& options,
                                                 transport::Plugin* plugin,
                                                 std::unique_ptr<LocalStore> store);
  ~Manager();
  // Withdraws this node from Redis (its locations and its record); the loop
  // must run a little longer for the commands to go out.
  void Unregister();

 private:
  struct FetchRequest;
  struct ObjectFetch;

  Manager(EventLoop* loop, const ManagerOptions& options, std::unique_ptr<LocalStore> store);
  Status Start(transport::Plugin* plugin);
  void OnStoreEvents(const std::vector<ObjectNotification>& events);
  void OnStoreLost(const Status& why);
  void AcceptClients();
  void OnClientEvent(int fd, uint32_t events);
  Status HandleFrame(FrameConnection* client, fb::MessageType type, const uint8_t* payload,
                     size_t length);
  void DisconnectClient(int fd, const std::string& reason);

  void StartFetch(FetchRequest* request, size_t index);
  void LookUp(const ObjectId& id);
  void OnPulled(const ObjectId& id, Status status);
  void Resolve(FetchRequest* request, size_t index, Status status);
  void FinishFetchObject(const ObjectId& id, const Status& status);
  void TimeOut(FetchRequest* request);
  void DropIfUnwanted(const ObjectId& id);
  void ReplyIfDone(FetchRequest* request);

  EventLoop* loop_;
  ManagerOptions options_;
  std::unique_ptr<LocalStore> store_;
  // Sealed objects in the local store, as its events tell: a fetch of
  // one of these is answered without asking the store. The set may lag the
  // store by notifications not read yet; a miss only costs a lookup (the pull
  // then finds the object existing), as a store query could race too.
  std::unordered_set<ObjectId> local_objects_;
  std::unique_ptr<ObjectDirectory> directory_;
  std::unique_ptr<TransferEngine> engine_;
  int listen_fd_ = -1;
  std::unordered_map<int, std::unique_ptr<FrameConnection>> clients_;
  std::unordered_map<int, std::vector<FetchRequest*>> client_requests_;
  std::unordered_map<ObjectId, std::unique_ptr<ObjectFetch>> fetches_;
};

}  // namespace plasma
