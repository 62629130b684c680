#include "plasma/store/eviction_policy.h"

#include <algorithm>
#include <sstream>

namespace plasma {

// An LRU list with a byte capacity, as Plasma's: most recent at the front.
class EvictionPolicy::LruCache {
 public:
  LruCache(std::string name, int64_t capacity)
      : name_(std::move(name)), capacity_(capacity), original_capacity_(capacity) {}

  void Add(const ObjectId& id, int64_t size) {
    if (position_.count(id)) return;
    items_.emplace_front(id, size);
    position_[id] = items_.begin();
    used_ += size;
  }
  int64_t Remove(const ObjectId& id) {
    auto it = position_.find(id);
    if (it == position_.end()) return 0;
    int64_t size = it->second->second;
    used_ -= size;
    items_.erase(it->second);
    position_.erase(it);
    return size;
  }
  bool Contains(const ObjectId& id) const { return position_.count(id) > 0; }
  // Least recently used first, until num_bytes are covered.
  std::vector<ObjectId> Choose(int64_t num_bytes) {
    std::vector<ObjectId> chosen;
    int64_t bytes = 0;
    for (auto it = items_.rbegin(); it != items_.rend() && bytes < num_bytes; ++it) {
      chosen.push_back(it->first);
      bytes += it->second;
      evictions_ += 1;
      bytes_evicted_ += it->second;
    }
    return chosen;
  }
  std::vector<ObjectId> All() const {
    std::vector<ObjectId> ids;
    for (const auto& item : items_) ids.push_back(item.first);
    return ids;
  }
  void AdjustCapacity(int64_t delta) { capacity_ += delta; }
  int64_t capacity() const { return capacity_; }
  int64_t remaining() const { return capacity_ - used_; }
  std::string DebugString() const {
    std::ostringstream out;
    out << "\n(" << name_ << ") capacity: " << capacity_;
    out << "\n(" << name_ << ") used: "
        << 100. * (1. - (double(remaining()) / double(original_capacity_))) << "%";
    out << "\n(" << name_ << ") num objects: " << position_.size();
    out << "\n(" << name_ << ") num evictions: " << evictions_;
    out << "\n(" << name_ << ") bytes evicted: " << bytes_evicted_;
    return out.str();
  }

 private:
  std::string name_;
  int64_t capacity_;
  int64_t original_capacity_;
  int64_t used_ = 0;
  std::list<std::pair<ObjectId, int64_t>> items_;
  std::unordered_map<ObjectId, std::list<std::pair<ObjectId, int64_t>>::iterator> position_;
  int64_t evictions_ = 0;
  int64_t bytes_evicted_ = 0;
};

EvictionPolicy::EvictionPolicy(int64_t capacity)
    : capacity_(capacity), global_(std::make_unique<LruCache>("global lru", capacity)) {}

EvictionPolicy::~EvictionPolicy() = default;

void EvictionPolicy::ObjectCreated(const ObjectId& id, int64_t size, ClientKey owner_with_quota) {
  sizes_[id] = size;
  auto quota = quotas_.find(owner_with_quota);
  if (owner_with_quota != nullptr && quota != quotas_.end()) {
    quota->second->Add(id, size);
    owner_[id] = owner_with_quota;
  }
  // Shared objects enter the global LRU when their last reference goes.
}

void EvictionPolicy::BeginAccess(const ObjectId& id) {
  if (owner_.count(id)) {
    pinned_owned_.insert(id);
  } else {
    global_->Remove(id);
  }
}

void EvictionPolicy::EndAccess(const ObjectId& id) {
  if (owner_.count(id)) {
    pinned_owned_.erase(id);
  } else {
    global_->Add(id, sizes_[id]);
  }
}

void EvictionPolicy::ObjectRemoved(const ObjectId& id) {
  auto owner = owner_.find(id);
  if (owner != owner_.end()) {
    quotas_[owner->second]->Remove(id);
    owner_.erase(owner);
    pinned_owned_.erase(id);
  } else {
    global_->Remove(id);
  }
  sizes_.erase(id);
}

void EvictionPolicy::Refresh(const std::vector<ObjectId>& ids) {
  for (const ObjectId& id : ids) {
    auto owner = owner_.find(id);
    LruCache* cache = owner != owner_.end() ? quotas_[owner->second].get() : global_.get();
    if (cache->Contains(id)) cache->Add(id, cache->Remove(id));
  }
}

std::vector<ObjectId> EvictionPolicy::ChooseForAllocation(int64_t needed, int64_t allocated) {
  int64_t shortfall = allocated + needed - capacity_;
  return ChooseAtLeast(std::max(shortfall, capacity_ / kEvictionFractionDivisor));
}

std::vector<ObjectId> EvictionPolicy::ChooseAtLeast(int64_t num_bytes) {
  std::vector<ObjectId> chosen = global_->Choose(num_bytes);
  for (const ObjectId& id : chosen) global_->Remove(id);
  return chosen;
}

bool EvictionPolicy::SetQuota(ClientKey client, const std::string& name, int64_t quota) {
  if (quota < 0 || quotas_.count(client)) return false;
  if (global_->capacity() - quota < int64_t(capacity_ * kGlobalReserveFraction)) return false;
  global_->AdjustCapacity(-quota);
  quotas_[client] = std::make_unique<LruCache>(name, quota);
  return true;
}

bool EvictionPolicy::EnforceQuota(ClientKey client, int64_t size, std::vector<ObjectId>* to_evict) {
  auto it = quotas_.find(client);
  if (it == quotas_.end()) return true;
  LruCache& cache = *it->second;
  if (size > cache.capacity()) return false;
  if (cache.remaining() >= size) return true;
  for (const ObjectId& id : cache.Choose(size - cache.remaining())) {
    // In use by someone: no longer this client's to count; it joins the
    // shared pool when released. Otherwise it is evicted.
    if (pinned_owned_.erase(id) == 0) to_evict->push_back(id);
    owner_.erase(id);
    cache.Remove(id);
  }
  return true;
}

void EvictionPolicy::ClientDisconnected(ClientKey client) {
  auto it = quotas_.find(client);
  if (it == quotas_.end()) return;
  global_->AdjustCapacity(it->second->capacity());
  for (const ObjectId& id : it->second->All()) {
    if (!pinned_owned_.count(id)) global_->Add(id, sizes_[id]);
    owner_.erase(id);
    pinned_owned_.erase(id);
  }
  quotas_.erase(it);
}

std::string EvictionPolicy::DebugString(int64_t allocated, int64_t pinned_bytes) const {
  std::ostringstream out;
  out << "num clients with quota: " << quotas_.size();
  out << "\nquota map size: " << owner_.size();
  out << "\npinned quota map size: " << pinned_owned_.size();
  out << "\nallocated bytes: " << allocated;
  out << "\nallocation limit: " << capacity_;
  out << "\npinned bytes: " << pinned_bytes;
  out << global_->DebugString();
  for (const auto& [client, cache] : quotas_) out << cache->DebugString();
  return out.str();
}

}  // namespace plasma
