// The store's objects: create, seal, abort, delete, evict, references, Gets
// that wait for seals, and the notifications subscribers get.
#include "plasma/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <deque>
#include <sstream>

#include "plasma/common/logging.h"
#include "plasma/store/store_records.h"

namespace plasma {

void FitCapacityToFreeSpace(StoreOptions* options) {
  struct statvfs filesystem;
  if (options->hugepages || options->directory.empty() ||
      statvfs(options->directory.c_str(), &filesystem) != 0) {
    return;
  }
  int64_t available = int64_t(filesystem.f_bsize) * int64_t(filesystem.f_bavail) / 10 * 9;
  if (options->capacity > available) {
    PLASMA_LOG(kWarning) << "capacity " << options->capacity << " bytes exceeds what "
                         << options->directory << " has free; using " << available
                         << " bytes. Free space there (or pass -d) for more.";
    options->capacity = available;
  }
}

Result<std::unique_ptr<Store>> Store::Create(const StoreOptions& options, EventLoop* loop) {
  if (options.capacity <= 0) {
    return Status::InvalidArgument("store capacity must be positive, got " +
                                   std::to_string(options.capacity));
  }
  ArenaOptions arena_options;
  arena_options.capacity = uint64_t(options.capacity);
  arena_options.directory = options.directory;
  arena_options.hugepages = options.hugepages;
  PLASMA_ASSIGN_OR_RETURN(auto arena, SharedMemoryArena::Create(arena_options));
  return std::unique_ptr<Store>(new Store(options, loop, std::move(arena)));
}

Store::Store(const StoreOptions& options, EventLoop* loop,
             std::unique_ptr<SharedMemoryArena> arena)
    : options_(options),
      loop_(loop),
      arena_(std::move(arena)),
      allocator_(uint64_t(options.capacity)),
      eviction_(options.capacity),
      // A CreateAndSeal carries its object inline: allow the capacity plus
      // room for the flatbuffer around it, nothing more.
      max_payload_(uint64_t(options.capacity) + (1 << 20)) {}

Store::~Store() {
  std::vector<StoreClient*> clients;
  for (auto& [fd, client] : clients_) clients.push_back(client.get());
  for (StoreClient* client : clients) DisconnectClient(client, "store shutting down");
  if (listen_fd_ >= 0) {
    loop_->Unwatch(listen_fd_);
    close(listen_fd_);
    unlink(options_.socket_path.c_str());
  }
}

ObjectEntry* Store::FindObject(const ObjectId& id) {
  auto it = objects_.find(id);
  return it == objects_.end() ? nullptr : it->second.get();
}

fb::PlasmaError Store::CreateObject(StoreClient* client, const ObjectId& id, uint64_t data_size,
                                    uint64_t metadata_size, bool evict_if_full,
                                    ObjectEntry** out) {
  *out = nullptr;
  if (objects_.count(id)) return fb::PlasmaError::ObjectExists;
  uint64_t capacity_bytes = allocator_.capacity();
  if (data_size > capacity_bytes || metadata_size > capacity_bytes - data_size) {
    PLASMA_LOG(kWarning) << "object " << id.Hex() << " of " << data_size << "+"
                         << metadata_size << " bytes can never fit in a store of "
                         << capacity_bytes << " bytes";
    return fb::PlasmaError::OutOfMemory;
  }
  int64_t size = int64_t(data_size + metadata_size);
  bool quota = eviction_.HasQuota(client);
  if (quota && evict_if_full) {
    std::vector<ObjectId> victims;
    if (!eviction_.EnforceQuota(client, size, &victims)) {
      PLASMA_LOG(kWarning) << "object " << id.Hex() << " of " << size
                           << " bytes exceeds the quota of client " << client->describe();
      return fb::PlasmaError::OutOfMemory;
    }
    for (const ObjectId& victim : victims) EraseObject(FindObject(victim), /*notify=*/true);
  }
  std::optional<uint64_t> offset = AllocateWithEviction(size, evict_if_full);
  if (!offset) return fb::PlasmaError::OutOfMemory;
  auto entry = std::make_unique<ObjectEntry>();
  entry->id = id;
  entry->offset = *offset;
  entry->data_size = int64_t(data_size);
  entry->metadata_size = int64_t(metadata_size);
  entry->create_time = int64_t(std::time(nullptr));
  eviction_.ObjectCreated(id, size, quota ? client : nullptr);
  ObjectEntry* raw = entry.get();
  objects_[id] = std::move(entry);
  AddReference(client, raw);  // the creator holds it until it seals and releases
  *out = raw;
  return fb::PlasmaError::OK;
}

std::optional<uint64_t> Store::AllocateWithEviction(int64_t size, bool evict_if_full) {
  while (true) {
    if (auto offset = allocator_.Allocate(uint64_t(size))) return offset;
    if (!evict_if_full) return std::nullopt;
    // Least recently used first, a fifth of the capacity at a time (as Plasma
    // 11), until a hole large enough opens up.
    auto victims = eviction_.ChooseForAllocation(size, int64_t(allocator_.bytes_allocated()));
    if (victims.empty()) return std::nullopt;
    PLASMA_LOG(kDebug) << "evicting " << victims.size() << " objects to make room for " << size
                       << " bytes";
    for (const ObjectId& victim : victims) EraseObject(FindObject(victim), /*notify=*/true);
  }
}

void Store::SealObject(StoreClient* client, ObjectEntry* entry, const std::string& digest) {
  entry->sealed = true;
  entry->digest = digest.substr(0, 64);
  entry->construct_duration = int64_t(std::time(nullptr)) - entry->create_time;
  PushNotification(MakeObjectInfo(*entry));
  SatisfyWaiters(entry);
}

fb::PlasmaError Store::CreateAndSealObject(StoreClient* client, const ObjectId& id,
                                           const uint8_t* data, uint64_t data_size,
                                           const uint8_t* metadata, uint64_t metadata_size,
                                           const std::string& digest, bool evict_if_full) {
  ObjectEntry* entry = nullptr;
  fb::PlasmaError error = CreateObject(client, id, data_size, metadata_size, evict_if_full, &entry);
  if (entry == nullptr) return error;
  uint8_t* base = arena_->base() + entry->offset;
  if (data_size > 0) std::memcpy(base, data, data_size);
  if (metadata_size > 0) std::memcpy(base + data_size, metadata, metadata_size);
  SealObject(client, entry, digest);
  RemoveReference(client, entry);
  return error;
}

void Store::AbortObject(StoreClient* client, ObjectEntry* entry) {
  client->object_ids.erase(entry->id);
  EraseObject(entry, /*notify=*/false);  // never visible, so nobody to tell
}

fb::PlasmaError Store::DeleteObject(const ObjectId& id) {
  ObjectEntry* entry = FindObject(id);
  if (entry == nullptr) return fb::PlasmaError::ObjectNotFound;
  if (!entry->sealed) {
    entry->delete_when_unused = true;
    return fb::PlasmaError::ObjectNotSealed;
  }
  if (entry->ref_count > 0) {
    entry->delete_when_unused = true;
    return fb::PlasmaError::ObjectInUse;
  }
  EraseObject(entry, /*notify=*/true);
  return fb::PlasmaError::OK;
}

int64_t Store::EvictBytes(int64_t num_bytes) {
  int64_t freed = 0;
  for (const ObjectId& victim : eviction_.ChooseAtLeast(num_bytes)) {
    ObjectEntry* entry = FindObject(victim);
    freed += entry->total_size();
    EraseObject(entry, /*notify=*/true);
  }
  return freed;
}

void Store::EraseObject(ObjectEntry* entry, bool notify) {
  ObjectId id = entry->id;
  eviction_.ObjectRemoved(id);
  allocator_.Free(entry->offset);
  objects_.erase(id);  // `entry` is gone from here on
  if (notify) {
    fb::ObjectInfoT info;
    info.object_id = id.Binary();
    info.is_deletion = true;
    PushNotification(info);
  }
}

void Store::AddReference(StoreClient* client, ObjectEntry* entry) {
  if (!client->object_ids.insert(entry->id).second) return;
  if (entry->ref_count++ == 0) eviction_.BeginAccess(entry->id);
}

void Store::RemoveReference(StoreClient* client, ObjectEntry* entry) {
  if (client->object_ids.erase(entry->id) == 0) return;
  if (--entry->ref_count > 0) return;
  if (entry->sealed && entry->delete_when_unused) {
    EraseObject(entry, /*notify=*/true);
  } else {
    eviction_.EndAccess(entry->id);
  }
}

fb::PlasmaObjectSpec Store::MakeSpec(const ObjectEntry& entry) const {
  // Plasma 11 clients read segment_index as the store's fd number of the
  // segment (matched against store_fd / store_fds).
  return fb::PlasmaObjectSpec(/*segment_index=*/arena_->fd(), entry.offset, uint64_t(entry.data_size),
                              entry.offset + uint64_t(entry.data_size),
                              uint64_t(entry.metadata_size), /*device_num=*/0);
}

fb::ObjectInfoT Store::MakeObjectInfo(const ObjectEntry& entry) const {
  fb::ObjectInfoT info;
  info.object_id = entry.id.Binary();
  info.data_size = entry.data_size;
  info.metadata_size = entry.metadata_size;
  info.ref_count = entry.ref_count;
  info.create_time = entry.create_time;
  info.construct_duration = entry.construct_duration;
  info.digest = entry.sealed ? entry.digest : "";
  return info;
}

void Store::ProcessGet(StoreClient* client, std::vector<ObjectId> ids, int64_t timeout_ms) {
  auto* request = new GetRequest{client, std::move(ids), {}, 0};
  for (const ObjectId& id : request->ids) {
    ObjectEntry* entry = FindObject(id);
    if (entry != nullptr && entry->sealed) {
      AddReference(client, entry);
    } else if (request->remaining.insert(id).second) {
      waiting_gets_[id].push_back(request);
    }
  }
  client->gets.insert(request);
  if (request->remaining.empty() || timeout_ms == 0) {
    ReturnFromGet(request);
  } else if (timeout_ms > 0) {
    request->timer = loop_->AddTimer(timeout_ms, [this, request] { ReturnFromGet(request); });
  }  // negative: wait until every object is sealed
}

void Store::SatisfyWaiters(ObjectEntry* entry) {
  auto it = waiting_gets_.find(entry->id);
  if (it == waiting_gets_.end()) return;
  std::vector<GetRequest*> waiters = std::move(it->second);
  waiting_gets_.erase(it);
  for (GetRequest* request : waiters) {
    AddReference(request->client, entry);
    request->remaining.erase(entry->id);
    if (request->remaining.empty()) ReturnFromGet(request);
  }
}

void Store::ReturnFromGet(GetRequest* request) {
  StoreClient* client = request->client;
  fb::PlasmaGetReplyT reply;
  bool any_found = false;
  for (const ObjectId& id : request->ids) {
    reply.object_ids.push_back(id.Binary());
    ObjectEntry* entry = FindObject(id);
    // Found means sealed and referenced on this client's behalf.
    if (entry != nullptr && entry->sealed && !request->remaining.count(id) &&
        client->object_ids.count(id)) {
      reply.plasma_objects.push_back(MakeSpec(*entry));
      any_found = true;
    } else {
      // data_size -1 marks "not available" (Plasma 11 clients test for it).
      reply.plasma_objects.emplace_back(0, 0, uint64_t(-1), 0, 0, 0);
    }
  }
  if (any_found) {
    reply.store_fds.push_back(arena_->fd());
    reply.mmap_sizes.push_back(int64_t(arena_->size()) + kMmapSizeSlack);
  }
  client->connection->QueueMessage(fb::MessageType::PlasmaGetReply, reply);
  if (any_found && !client->arena_fd_sent) {
    client->connection->QueueFd(arena_->fd());
    client->arena_fd_sent = true;
  }
  RemoveGetRequest(request);
  // Replies from timers and seals are not inside the client's own event.
  Status flushed = client->connection->Flush();
  if (flushed.ok()) UpdateWriteInterest(client);
}

void Store::RemoveGetRequest(GetRequest* request) {
  for (const ObjectId& id : request->remaining) {
    auto it = waiting_gets_.find(id);
    if (it == waiting_gets_.end()) continue;
    auto& waiters = it->second;
    waiters.erase(std::remove(waiters.begin(), waiters.end(), request), waiters.end());
    if (waiters.empty()) waiting_gets_.erase(it);
  }
  if (request->timer != 0) loop_->CancelTimer(request->timer);
  request->client->gets.erase(request);
  delete request;
}

void Store::Subscribe(StoreClient* client, int notification_fd) {
  fcntl(notification_fd, F_SETFL, fcntl(notification_fd, F_GETFL) | O_NONBLOCK);
  client->notification_fd = notification_fd;
  Status watched = loop_->Watch(notification_fd, 0, [this, client](uint32_t events) {
    FlushNotifications(client);
  });
  if (!watched.ok()) {
    PLASMA_LOG(kWarning) << "cannot watch notification socket of " << client->describe();
  }
  // A new subscriber first hears of every object already sealed.
  std::vector<fb::ObjectInfoT> infos;
  for (const auto& [id, entry] : objects_) {
    if (entry->sealed) infos.push_back(MakeObjectInfo(*entry));
  }
  for (auto& info : infos) QueueNotification(client, {info});
  FlushNotifications(client);
}

void Store::PushNotification(const fb::ObjectInfoT& info) {
  if (event_listener_) event_listener_(info);
  std::vector<StoreClient*> subscribers;
  for (auto& [fd, client] : clients_) {
    if (client->notification_fd >= 0) subscribers.push_back(client.get());
  }
  for (StoreClient* subscriber : subscribers) {
    QueueNotification(subscriber, {info});
    FlushNotifications(subscriber);
  }
}

void Store::QueueNotification(StoreClient* subscriber, const std::vector<fb::ObjectInfoT>& infos) {
  if (subscriber->notifications.size() >= kMaxPendingNotifications) return;  // see Flush
  fb::PlasmaNotificationT notification;
  for (const auto& info : infos) {
    notification.object_info.push_back(std::make_unique<fb::ObjectInfoT>(info));
  }
  flatbuffers::FlatBufferBuilder builder;
  EncodeMessage(notification, &builder);
  // A native int64 size, then the flatbuffer (Plasma 11's notification framing).
  int64_t size = builder.GetSize();
  std::vector<uint8_t> bytes(sizeof(size) + builder.GetSize());
  std::memcpy(bytes.data(), &size, sizeof(size));
  std::memcpy(bytes.data() + sizeof(size), builder.GetBufferPointer(), builder.GetSize());
  subscriber->notifications.push_back(std::move(bytes));
}

void Store::FlushNotifications(StoreClient* subscriber) {
  int fd = subscriber->notification_fd;
  if (fd < 0) return;
  auto drop = [&](const std::string& why) {
    PLASMA_LOG(kInfo) << "dropping notification subscription of " << subscriber->describe()
                      << ": " << why;
    loop_->Unwatch(fd);
    close(fd);
    subscriber->notification_fd = -1;
    subscriber->notifications.clear();
    subscriber->notification_offset = 0;
  };
  if (subscriber->notifications.size() >= kMaxPendingNotifications) {
    drop("subscriber does not read its notifications");
    return;
  }
  while (!subscriber->notifications.empty()) {
    auto& front = subscriber->notifications.front();
    ssize_t n = send(fd, front.data() + subscriber->notification_offset,
                     front.size() - subscriber->notification_offset, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      drop(strerror(errno));
      return;
    }
    subscriber->notification_offset += size_t(n);
    if (subscriber->notification_offset == front.size()) {
      subscriber->notifications.pop_front();
      subscriber->notification_offset = 0;
    }
  }
  loop_->SetEvents(fd, subscriber->notifications.empty() ? 0u : uint32_t(EPOLLOUT));
}

std::string Store::DebugString() const {
  size_t sealed = 0;
  int64_t pinned_bytes = 0;
  for (const auto& [id, entry] : objects_) {
    sealed += entry->sealed ? 1 : 0;
    if (entry->ref_count > 0) pinned_bytes += entry->total_size();
  }
  // Plasma 11's lines first (clients parse them), then this store's own.
  std::ostringstream out;
  out << eviction_.DebugString(int64_t(allocator_.bytes_allocated()), pinned_bytes) << "\n"
      << "objects: " << objects_.size() << " (" << sealed << " sealed, "
      << objects_.size() - sealed << " being created)\n"
      << "clients: " << clients_.size() << "\n"
      << "largest free block: " << allocator_.largest_free_block() << " bytes\n"
      << "free blocks: " << allocator_.free_block_count() << "\n";
  return out.str();
}

}  // namespace plasma
