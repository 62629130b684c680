// Store: the Plasma store's state and request handling. One arena, one event
// loop, one thread. Every client request is answered (or the client is
// disconnected with a log line naming why); no request can crash the store.
// Implemented in three files: store.cc (objects), request_handlers.cc (one
// handler per message), client_connections.cc (the Unix-socket clients).
// A manager hosted in the same process uses it through InProcessStore
// (plasma/node/in_process_store.h): a client with no connection, calling
// the same object life cycle the handlers use.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "plasma/common/event_loop.h"
#include "plasma/common/frame_connection.h"
#include "plasma/common/object_id.h"
#include "plasma/common/protocol.h"
#include "plasma/store/allocator.h"
#include "plasma/store/eviction_policy.h"
#include "plasma/store/shared_memory.h"

namespace plasma {

struct StoreOptions {
  int64_t capacity = 0;
  std::string socket_path;
  std::string directory = "/dev/shm";  // empty: memfd
  bool hugepages = false;
};

// Like Plasma 11: an arena larger than the tmpfs behind it would die of
// SIGBUS later, so the capacity shrinks to 90% of what is free (logged).
void FitCapacityToFreeSpace(StoreOptions* options);

// Defined in store_records.h: the store's private records.
struct ObjectEntry;
struct StoreClient;
struct GetRequest;

class Store {
 public:
  static Result<std::unique_ptr<Store>> Create(const StoreOptions& options, EventLoop* loop);
  ~Store();

  // Starts accepting clients on options.socket_path.
  Status Listen();
  std::string DebugString() const;
  int64_t capacity() const { return int64_t(allocator_.capacity()); }

 private:
  friend class InProcessStore;
  using Client = StoreClient;

  Store(const StoreOptions& options, EventLoop* loop, std::unique_ptr<SharedMemoryArena> arena);

  // Client connections (client_connections.cc).
  void AcceptClients();
  void OnClientEvent(Client* client, uint32_t events);
  // Handles every complete frame buffered for the client.
  Status ProcessFrames(Client* client);
  // Requests (request_handlers.cc): HandleMessage decodes a frame and calls
  // the message's handler with the decoded request.
  Status HandleMessage(Client* client, fb::MessageType type, const uint8_t* payload,
                       size_t length);
  template <typename Request>
  Status Decoded(Client* client, const uint8_t* payload, size_t length,
                 Status (Store::*handler)(Client*, const Request&));
  Status OnConnect(Client* client);
  Status OnCreate(Client* client, const fb::PlasmaCreateRequestT& request);
  Status OnCreateAndSeal(Client* client, const uint8_t* payload, size_t length);
  Status OnCreateAndSealBatch(Client* client, const fb::PlasmaCreateAndSealBatchRequestT& request);
  Status OnAbort(Client* client, const fb::PlasmaAbortRequestT& request);
  Status OnSeal(Client* client, const fb::PlasmaSealRequestT& request);
  Status OnGet(Client* client, const fb::PlasmaGetRequestT& request);
  Status OnRelease(Client* client, const fb::PlasmaReleaseRequestT& request);
  Status OnDelete(Client* client, const fb::PlasmaDeleteRequestT& request);
  Status OnContains(Client* client, const fb::PlasmaContainsRequestT& request);
  Status OnList(Client* client, const fb::PlasmaListRequestT& request);
  Status OnEvict(Client* client, const fb::PlasmaEvictRequestT& request);
  Status OnRefreshLRU(Client* client, const fb::PlasmaRefreshLRURequestT& request);
  Status OnSubscribe(Client* client);
  Status OnSetOptions(Client* client, const fb::PlasmaSetOptionsRequestT& request);
  Status OnGetDebugString(Client* client);
  void DisconnectClient(Client* client, const std::string& reason);
  // Aborts what the client was creating and drops its references and Gets.
  void DropClientState(Client* client);
  void UpdateWriteInterest(Client* client);

  // Object life cycle.
  fb::PlasmaError CreateObject(Client* client, const ObjectId& id, uint64_t data_size,
                               uint64_t metadata_size, bool evict_if_full, ObjectEntry** out);
  std::optional<uint64_t> AllocateWithEviction(int64_t size, bool evict_if_full);
  void SealObject(Client* client, ObjectEntry* entry, const std::string& digest);
  // A CreateAndSeal: the object made from bytes in hand (data, then
  // metadata, contiguous), sealed, and the creator's reference dropped.
  fb::PlasmaError CreateAndSealObject(Client* client, const ObjectId& id, const uint8_t* data,
                                      uint64_t data_size, const uint8_t* metadata,
                                      uint64_t metadata_size, const std::string& digest,
                                      bool evict_if_full);
  void AbortObject(Client* client, ObjectEntry* entry);
  fb::PlasmaError DeleteObject(const ObjectId& id);
  int64_t EvictBytes(int64_t num_bytes);
  void EraseObject(ObjectEntry* entry, bool notify);
  void AddReference(Client* client, ObjectEntry* entry);
  void RemoveReference(Client* client, ObjectEntry* entry);
  ObjectEntry* FindObject(const ObjectId& id);

  // Get.
  void ProcessGet(Client* client, std::vector<ObjectId> ids, int64_t timeout_ms);
  void ReturnFromGet(GetRequest* request);
  void RemoveGetRequest(GetRequest* request);
  void SatisfyWaiters(ObjectEntry* entry);

  // Notifications.
  void Subscribe(Client* client, int notification_fd);
  void PushNotification(const fb::ObjectInfoT& info);
  void QueueNotification(Client* subscriber, const std::vector<fb::ObjectInfoT>& infos);
  void FlushNotifications(Client* subscriber);
  fb::ObjectInfoT MakeObjectInfo(const ObjectEntry& entry) const;
  fb::PlasmaObjectSpec MakeSpec(const ObjectEntry& entry) const;

  StoreOptions options_;
  EventLoop* loop_;
  std::unique_ptr<SharedMemoryArena> arena_;
  ArenaAllocator allocator_;
  EvictionPolicy eviction_;
  int listen_fd_ = -1;
  std::unordered_map<ObjectId, std::unique_ptr<ObjectEntry>> objects_;
  std::unordered_map<int, std::unique_ptr<Client>> clients_;
  std::unordered_map<ObjectId, std::vector<GetRequest*>> waiting_gets_;
  // Told of every seal and deletion as it happens (the in-process manager).
  std::function<void(const fb::ObjectInfoT&)> event_listener_;
  uint64_t max_payload_;
};

}  // namespace plasma
