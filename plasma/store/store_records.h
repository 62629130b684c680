// The store's records: objects, clients and waiting Gets. Shared by the
// store's object life cycle (store.cc), its request handlers
// (request_handlers.cc) and its client connections (client_connections.cc).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "plasma/common/event_loop.h"
#include "plasma/common/frame_connection.h"
#include "plasma/common/object_id.h"

namespace plasma {

struct ObjectEntry {
  ObjectId id;
  uint64_t offset = 0;  // in the arena
  int64_t data_size = 0;
  int64_t metadata_size = 0;
  bool sealed = false;
  int ref_count = 0;  // clients holding it, one per client
  int64_t create_time = 0;
  int64_t construct_duration = -1;
  std::string digest;
  bool delete_when_unused = false;  // Delete was asked while in use or unsealed
  int64_t total_size() const { return data_size + metadata_size; }
};

struct GetRequest {
  StoreClient* client;
  std::vector<ObjectId> ids;          // as asked, duplicates included
  std::unordered_set<ObjectId> remaining;
  EventLoop::TimerId timer = 0;
};

struct StoreClient {
  std::unique_ptr<FrameConnection> connection;  // none for an in-process client
  std::unordered_set<ObjectId> object_ids;  // references held (created ones included)
  std::unordered_set<GetRequest*> gets;
  bool arena_fd_sent = false;
  bool awaiting_subscribe_fd = false;
  int notification_fd = -1;
  std::deque<std::vector<uint8_t>> notifications;
  size_t notification_offset = 0;  // bytes of notifications.front() already sent
  std::string name;
  const std::string& describe() const { return connection ? connection->description() : name; }
};

// A client that stops reading its replies is cut off rather than growing the
// store's memory without bound.
constexpr size_t kMaxPendingOutputBytes = size_t(1) << 30;
constexpr size_t kMaxPendingNotifications = 1 << 20;

}  // namespace plasma
