#include "plasma/store/eviction_policy.h"

#include <sstream>

namespace plasma {

void EvictionPolicy::AddEvictable(const ObjectId& id, int64_t size, ClientKey owner) {
  if (position_.count(id)) return;
  position_[id] = lru_.insert(lru_.end(), Node{id, size, owner});
}

void EvictionPolicy::RemoveEvictable(const ObjectId& id) {
  auto it = position_.find(id);
  if (it == position_.end()) return;
  lru_.erase(it->second);
  position_.erase(it);
}

void EvictionPolicy::Touch(const ObjectId& id) {
  auto it = position_.find(id);
  if (it == position_.end()) return;
  lru_.splice(lru_.end(), lru_, it->second);
}

std::optional<ObjectId> EvictionPolicy::OldestEvictable(ClientKey owner) const {
  // Quota-owned objects are few; a scan that skips them keeps one list.
  for (const Node& node : lru_) {
    if (node.owner == owner) return node.id;
  }
  return std::nullopt;
}

bool EvictionPolicy::SetQuota(ClientKey client, int64_t quota) {
  if (quota < 0 || quotas_.count(client)) return false;
  if (capacity_ - total_quota_ - quota < int64_t(capacity_ * kGlobalReserveFraction)) {
    return false;
  }
  quotas_[client] = QuotaState{quota, 0};
  total_quota_ += quota;
  return true;
}

int64_t EvictionPolicy::Quota(ClientKey client) const {
  auto it = quotas_.find(client);
  return it == quotas_.end() ? -1 : it->second.quota;
}

int64_t EvictionPolicy::OwnedBytes(ClientKey client) const {
  auto it = quotas_.find(client);
  return it == quotas_.end() ? 0 : it->second.owned_bytes;
}

void EvictionPolicy::ChargeOwner(ClientKey client, int64_t bytes) {
  auto it = quotas_.find(client);
  if (it != quotas_.end()) it->second.owned_bytes += bytes;
}

void EvictionPolicy::RemoveQuota(ClientKey client) {
  auto it = quotas_.find(client);
  if (it == quotas_.end()) return;
  total_quota_ -= it->second.quota;
  quotas_.erase(it);
  // Its evictable objects join the global pool.
  for (Node& node : lru_) {
    if (node.owner == client) node.owner = nullptr;
  }
}

std::string EvictionPolicy::DebugString() const {
  std::ostringstream out;
  out << "evictable objects: " << lru_.size() << "\n"
      << "evictions: " << evictions_ << " (" << bytes_evicted_ << " bytes)\n"
      << "clients with quota: " << quotas_.size() << " (total quota " << total_quota_
      << " bytes)\n";
  for (const auto& [client, state] : quotas_) {
    out << "  client " << client << ": quota " << state.quota << ", owned "
        << state.owned_bytes << "\n";
  }
  return out.str();
}

}  // namespace plasma
