// LocationCache: which nodes hold an object, as this manager last learned
// it, so that a fetch of an object already known (expected, or fetched
// before) goes straight to a holder without a Redis round trip.
//
// Bounded: the least recently used entries go first. It is a hint, never
// the truth: the directory keeps it current from the cluster's location
// events (plasma:locations), and a fetch that fails from a cached holder
// drops the entry and asks Redis again (docs/manager.md, "Location cache").
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "plasma/common/object_id.h"

namespace plasma {

// An object's sizes as its holder announced them: a puller that knows them
// can create the object before it asks (a push, transfer_protocol.h).
struct ObjectSizes {
  uint64_t data_size = 0;
  uint64_t metadata_size = 0;
  uint64_t total() const { return data_size + metadata_size; }
  bool operator==(const ObjectSizes& other) const {
    return data_size == other.data_size && metadata_size == other.metadata_size;
  }
};

class LocationCache {
 public:
  // capacity 0: the cache keeps nothing.
  explicit LocationCache(size_t capacity) : capacity_(capacity) {}

  // node holds id (an announcement, or a lookup's answer). Sizes, when
  // given (announcements carry them), replace what was known.
  void Add(const ObjectId& id, const std::string& node,
           std::optional<ObjectSizes> sizes = std::nullopt);
  // node no longer holds id.
  void Remove(const ObjectId& id, const std::string& node);
  // node left the cluster, or cannot be reached: none of its entries hold.
  void RemoveNode(const std::string& node);
  // Forgets everything known about id.
  void Drop(const ObjectId& id);
  // Forgets everything (events were missed).
  void Clear();

  // Known holders of id, most recently announced last; empty if unknown.
  // Counts as a use of the entry.
  std::vector<std::string> Holders(const ObjectId& id);
  // The sizes last announced for id, if any (not a use of the entry).
  std::optional<ObjectSizes> Sizes(const ObjectId& id) const;

  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::vector<std::string> nodes;
    std::list<ObjectId>::iterator recency;  // position in recency_
    std::optional<ObjectSizes> sizes;
  };
  void Touch(Entry& entry);
  void Erase(std::unordered_map<ObjectId, Entry>::iterator it);

  size_t capacity_;
  std::unordered_map<ObjectId, Entry> entries_;
  std::list<ObjectId> recency_;  // most recently used first
};

}  // namespace plasma
