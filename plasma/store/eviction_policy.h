// EvictionPolicy: which sealed, unreferenced objects go first when space is
// needed (least recently used first), and Plasma 11's per-client output
// quotas: a client with a quota has its created objects counted against it,
// and only its own pressure evicts them; the global pool keeps at least 30%
// of the capacity for clients without a quota.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "plasma/common/object_id.h"

namespace plasma {

class EvictionPolicy {
 public:
  using ClientKey = const void*;  // identifies a client; nullptr = the global pool
  static constexpr double kGlobalReserveFraction = 0.3;

  explicit EvictionPolicy(int64_t capacity) : capacity_(capacity) {}

  // An object became evictable (sealed, no references) or stopped being so.
  void AddEvictable(const ObjectId& id, int64_t size, ClientKey owner);
  void RemoveEvictable(const ObjectId& id);
  bool IsEvictable(const ObjectId& id) const { return position_.count(id) > 0; }
  // Moves evictable ids to the most-recently-used end.
  void Touch(const ObjectId& id);

  // Least recently used evictable object of `owner` (nullptr: of the global pool).
  std::optional<ObjectId> OldestEvictable(ClientKey owner) const;

  // Quotas. SetQuota fails if the client has one already or the global pool
  // would keep less than kGlobalReserveFraction of the capacity.
  bool SetQuota(ClientKey client, int64_t quota);
  bool HasQuota(ClientKey client) const { return quotas_.count(client) > 0; }
  int64_t Quota(ClientKey client) const;
  int64_t OwnedBytes(ClientKey client) const;
  void ChargeOwner(ClientKey client, int64_t bytes);
  void RemoveQuota(ClientKey client);

  std::string DebugString() const;
  int64_t evictions() const { return evictions_; }
  int64_t bytes_evicted() const { return bytes_evicted_; }
  void RecordEviction(int64_t bytes) {
    ++evictions_;
    bytes_evicted_ += bytes;
  }

 private:
  struct Node {
    ObjectId id;
    int64_t size;
    ClientKey owner;
  };
  struct QuotaState {
    int64_t quota;
    int64_t owned_bytes;
  };
  int64_t capacity_;
  int64_t total_quota_ = 0;
  std::list<Node> lru_;  // front: least recently used
  std::unordered_map<ObjectId, std::list<Node>::iterator> position_;
  std::unordered_map<ClientKey, QuotaState> quotas_;
  int64_t evictions_ = 0;
  int64_t bytes_evicted_ = 0;
};

}  // namespace plasma
