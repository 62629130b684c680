// EvictionPolicy: which objects go when space is needed, with Plasma 11's
// observable rules (Arrow's own client tests check them):
//  - A global LRU holds every unreferenced object of the shared pool; when an
//    allocation fails, the least recently used go first, at least
//    max(the shortfall, 20% of capacity) at a time.
//  - A client may get an output quota (SetOptions). Objects it creates are
//    "owned": counted against its quota, kept in its own LRU, evicted only
//    by its own pressure. When a new object would exceed the quota, its
//    oldest owned objects are evicted, or, if someone is using them, handed
//    to the shared pool. Quotas together leave >= 30% of capacity shared.
//  - When such a client disconnects, its objects join the shared pool.
// The policy only keeps books; the store evicts what it is told to.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "plasma/common/object_id.h"

namespace plasma {

class EvictionPolicy {
 public:
  using ClientKey = const void*;  // identifies a client
  static constexpr double kGlobalReserveFraction = 0.3;
  static constexpr int64_t kEvictionFractionDivisor = 5;  // evict >= capacity / 5 at once

  explicit EvictionPolicy(int64_t capacity);
  ~EvictionPolicy();

  // Life cycle hooks, called by the store.
  void ObjectCreated(const ObjectId& id, int64_t size, ClientKey owner_with_quota);
  void BeginAccess(const ObjectId& id);  // its reference count went 0 -> 1
  void EndAccess(const ObjectId& id);    // its reference count went 1 -> 0
  void ObjectRemoved(const ObjectId& id);
  void Refresh(const std::vector<ObjectId>& ids);

  // Objects of the shared pool to evict so that `needed` more bytes fit,
  // given `allocated` bytes in use: at least max(shortfall, capacity / 5).
  std::vector<ObjectId> ChooseForAllocation(int64_t needed, int64_t allocated);
  // Least recently used shared objects totalling at least num_bytes.
  std::vector<ObjectId> ChooseAtLeast(int64_t num_bytes);

  // Quotas.
  bool SetQuota(ClientKey client, const std::string& name, int64_t quota);
  bool HasQuota(ClientKey client) const { return quotas_.count(client) > 0; }
  // For a create of `size` bytes by a client with a quota: false if it can
  // never fit; else fills the owned objects to evict to make room.
  bool EnforceQuota(ClientKey client, int64_t size, std::vector<ObjectId>* to_evict);
  void ClientDisconnected(ClientKey client);

  // Plasma 11's debug text (clients parse it), from the store's allocation figures.
  std::string DebugString(int64_t allocated, int64_t pinned_bytes) const;

 private:
  class LruCache;
  int64_t capacity_;
  std::unique_ptr<LruCache> global_;
  std::map<ClientKey, std::unique_ptr<LruCache>> quotas_;
  std::unordered_map<ObjectId, ClientKey> owner_;   // owned objects -> their client
  std::unordered_set<ObjectId> pinned_owned_;       // owned objects in use
  std::unordered_map<ObjectId, int64_t> sizes_;     // every object the policy knows
};

}  // namespace plasma
