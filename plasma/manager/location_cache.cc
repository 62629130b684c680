#include "plasma/manager/location_cache.h"

#include <algorithm>

namespace plasma {

void LocationCache::Add(const ObjectId& id, const std::string& node,
                        std::optional<ObjectSizes> sizes) {
  if (capacity_ == 0) return;
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    if (entries_.size() >= capacity_) Erase(entries_.find(recency_.back()));
    recency_.push_front(id);
    it = entries_.emplace(id, Entry{{}, recency_.begin(), std::nullopt}).first;
  } else {
    Touch(it->second);
  }
  if (sizes) it->second.sizes = sizes;
  auto& nodes = it->second.nodes;
  nodes.erase(std::remove(nodes.begin(), nodes.end(), node), nodes.end());
  nodes.push_back(node);
}

void LocationCache::Remove(const ObjectId& id, const std::string& node) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  auto& nodes = it->second.nodes;
  nodes.erase(std::remove(nodes.begin(), nodes.end(), node), nodes.end());
  if (nodes.empty()) Erase(it);
}

void LocationCache::RemoveNode(const std::string& node) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto& nodes = it->second.nodes;
    nodes.erase(std::remove(nodes.begin(), nodes.end(), node), nodes.end());
    if (nodes.empty()) {
      recency_.erase(it->second.recency);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

void LocationCache::Drop(const ObjectId& id) {
  auto it = entries_.find(id);
  if (it != entries_.end()) Erase(it);
}

void LocationCache::Clear() {
  entries_.clear();
  recency_.clear();
}

std::vector<std::string> LocationCache::Holders(const ObjectId& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return {};
  Touch(it->second);
  return it->second.nodes;
}

std::optional<ObjectSizes> LocationCache::Sizes(const ObjectId& id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.sizes;
}

void LocationCache::Touch(Entry& entry) {
  recency_.splice(recency_.begin(), recency_, entry.recency);
}

void LocationCache::Erase(std::unordered_map<ObjectId, Entry>::iterator it) {
  recency_.erase(it->second.recency);
  entries_.erase(it);
}

}  // namespace plasma
