#include "plasma/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <deque>
#include <sstream>

#include "plasma/common/logging.h"

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
  std::unique_ptr<FrameConnection> connection;
  std::unordered_set<ObjectId> object_ids;  // references held (created ones included)
  std::unordered_set<GetRequest*> gets;
  bool arena_fd_sent = false;
  bool awaiting_subscribe_fd = false;
  int notification_fd = -1;
  std::deque<std::vector<uint8_t>> notifications;
  size_t notification_offset = 0;  // bytes of notifications.front() already sent
  std::string name;
  const std::string& describe() const { return connection->description(); }
};

// A client that stops reading its replies is cut off rather than growing the
// store's memory without bound.
constexpr size_t kMaxPendingOutputBytes = size_t(1) << 30;
constexpr size_t kMaxPendingNotifications = 1 << 20;

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

Status Store::Listen() {
  PLASMA_ASSIGN_OR_RETURN(listen_fd_, ListenUnixSocket(options_.socket_path));
  fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
  return loop_->Watch(listen_fd_, EPOLLIN, [this](uint32_t) { AcceptClients(); });
}

void Store::AcceptClients() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        PLASMA_LOG(kWarning) << "accept on " << options_.socket_path
                             << " failed: " << strerror(errno);
      }
      return;
    }
    auto client = std::make_unique<StoreClient>();
    client->connection = std::make_unique<FrameConnection>(fd, max_payload_);
    StoreClient* raw = client.get();
    Status watched =
        loop_->Watch(fd, EPOLLIN, [this, raw](uint32_t events) { OnClientEvent(raw, events); });
    if (!watched.ok()) {
      PLASMA_LOG(kWarning) << "cannot watch new client: " << watched.ToString();
      continue;  // the connection closes with `client`
    }
    PLASMA_LOG(kDebug) << "client connected: " << raw->describe();
    clients_[fd] = std::move(client);
  }
}

void Store::OnClientEvent(StoreClient* client, uint32_t events) {
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    Status read = client->connection->ReadAvailable();
    // Handle what arrived before a hang-up: a client may Release and exit.
    Status processed = ProcessFrames(client);
    if (!processed.ok()) {
      DisconnectClient(client, processed.ToString());
      return;
    }
    if (!read.ok()) {
      DisconnectClient(client, read.ToString());
      return;
    }
  }
  Status flushed = client->connection->Flush();
  if (!flushed.ok()) {
    DisconnectClient(client, flushed.ToString());
    return;
  }
  if (client->connection->PendingOutputBytes() > kMaxPendingOutputBytes) {
    DisconnectClient(client, "client does not read its replies");
    return;
  }
  UpdateWriteInterest(client);
}

void Store::UpdateWriteInterest(StoreClient* client) {
  uint32_t events = EPOLLIN | (client->connection->HasPendingOutput() ? uint32_t(EPOLLOUT) : 0u);
  loop_->SetEvents(client->connection->fd(), events);
}

Status Store::ProcessFrames(StoreClient* client) {
  FrameReader& reader = client->connection->reader();
  while (true) {
    if (client->awaiting_subscribe_fd) {
      // The subscribe request is followed by one byte carrying the fd.
      if (reader.BufferedBytes() == 0) return Status::OK();
      int fd = client->connection->PopReceivedFd();
      if (fd < 0) {
        return Status::ProtocolError("subscribe request not followed by a file descriptor");
      }
      reader.ConsumeBytes(1);
      client->awaiting_subscribe_fd = false;
      Subscribe(client, fd);
      continue;
    }
    fb::MessageType type;
    const uint8_t* payload;
    size_t length;
    PLASMA_ASSIGN_OR_RETURN(bool complete, reader.NextFrame(&type, &payload, &length));
    if (!complete) break;
    PLASMA_RETURN_NOT_OK(HandleMessage(client, type, payload, length));
    reader.ConsumeFrame();
  }
  // A descriptor rides on the byte after a Subscribe frame, which is parsed
  // before that byte; any other descriptor was never asked for.
  int stray = client->connection->PopReceivedFd();
  if (stray >= 0) {
    close(stray);
    return Status::ProtocolError("unexpected file descriptor from client");
  }
  return Status::OK();
}

static Result<ObjectId> DecodeId(const std::string& binary, const char* message) {
  auto id = ObjectId::FromBinary(binary);
  if (!id.ok()) return Status::ProtocolError(std::string(message) + ": " + id.status().message());
  return id;
}

static Result<std::vector<ObjectId>> DecodeIds(const std::vector<std::string>& binaries,
                                               const char* message) {
  std::vector<ObjectId> ids;
  ids.reserve(binaries.size());
  for (const auto& binary : binaries) {
    PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(binary, message));
    ids.push_back(id);
  }
  return ids;
}

Status Store::HandleMessage(StoreClient* client, fb::MessageType type, const uint8_t* payload,
                            size_t length) {
  using T = fb::MessageType;
  switch (type) {
    case T::PlasmaConnectRequest: {
      fb::PlasmaConnectReplyT reply;
      reply.memory_capacity = capacity();
      client->connection->QueueMessage(T::PlasmaConnectReply, reply);
      return Status::OK();
    }
    case T::PlasmaCreateRequest: {
      fb::PlasmaCreateRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(request.object_id, "create request"));
      fb::PlasmaCreateReplyT reply;
      reply.object_id = request.object_id;
      reply.plasma_object = std::make_unique<fb::PlasmaObjectSpec>();
      ObjectEntry* entry = nullptr;
      if (request.device_num != 0) {
        PLASMA_LOG(kWarning) << "client " << client->describe() << " asked for device "
                             << request.device_num << " memory; this store has no GPU support";
        reply.error = fb::PlasmaError::OutOfMemory;
      } else {
        reply.error = CreateObject(client, id, request.data_size, request.metadata_size,
                                   request.evict_if_full, &entry);
      }
      if (entry != nullptr) {
        *reply.plasma_object = MakeSpec(*entry);
        reply.store_fd = arena_->fd();
        reply.mmap_size = int64_t(arena_->size()) + kMmapSizeSlack;
      }
      client->connection->QueueMessage(T::PlasmaCreateReply, reply);
      if (entry != nullptr && !client->arena_fd_sent) {
        client->connection->QueueFd(arena_->fd());
        client->arena_fd_sent = true;
      }
      return Status::OK();
    }
    case T::PlasmaCreateAndSealRequest: {
      fb::PlasmaCreateAndSealRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(request.object_id, "create-and-seal request"));
      fb::PlasmaCreateAndSealReplyT reply;
      ObjectEntry* entry = nullptr;
      reply.error = CreateObject(client, id, request.data.size(), request.metadata.size(),
                                 request.evict_if_full, &entry);
      if (entry != nullptr) {
        uint8_t* base = arena_->base() + entry->offset;
        std::memcpy(base, request.data.data(), request.data.size());
        std::memcpy(base + request.data.size(), request.metadata.data(), request.metadata.size());
        SealObject(client, entry, request.digest);
        RemoveReference(client, entry);
      }
      client->connection->QueueMessage(T::PlasmaCreateAndSealReply, reply);
      return Status::OK();
    }
    case T::PlasmaCreateAndSealBatchRequest: {
      fb::PlasmaCreateAndSealBatchRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      size_t n = request.object_ids.size();
      if (request.data.size() != n || request.metadata.size() != n ||
          (request.digest.size() != n && !request.digest.empty())) {
        return Status::ProtocolError("create-and-seal batch with mismatched list lengths");
      }
      PLASMA_ASSIGN_OR_RETURN(auto ids, DecodeIds(request.object_ids, "create-and-seal batch"));
      fb::PlasmaCreateAndSealBatchReplyT reply;
      std::vector<ObjectEntry*> created;
      for (size_t i = 0; i < n && reply.error == fb::PlasmaError::OK; ++i) {
        ObjectEntry* entry = nullptr;
        reply.error = CreateObject(client, ids[i], request.data[i].size(),
                                   request.metadata[i].size(), request.evict_if_full, &entry);
        if (entry != nullptr) created.push_back(entry);
      }
      if (reply.error != fb::PlasmaError::OK) {
        // All or nothing: the objects created so far go away unseen.
        for (ObjectEntry* entry : created) AbortObject(client, entry);
      } else {
        for (size_t i = 0; i < n; ++i) {
          uint8_t* base = arena_->base() + created[i]->offset;
          std::memcpy(base, request.data[i].data(), request.data[i].size());
          std::memcpy(base + request.data[i].size(), request.metadata[i].data(),
                      request.metadata[i].size());
          SealObject(client, created[i], request.digest.empty() ? "" : request.digest[i]);
        }
        for (ObjectEntry* entry : created) RemoveReference(client, entry);
      }
      client->connection->QueueMessage(T::PlasmaCreateAndSealBatchReply, reply);
      return Status::OK();
    }
    case T::PlasmaAbortRequest: {
      fb::PlasmaAbortRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(request.object_id, "abort request"));
      ObjectEntry* entry = FindObject(id);
      if (entry == nullptr || entry->sealed || !client->object_ids.count(id)) {
        // Plasma 11's reply has no error field; the client checks locally first.
        PLASMA_LOG(kWarning) << "client " << client->describe() << " aborted object "
                             << id.Hex() << " that it has not created or that is sealed";
      } else {
        AbortObject(client, entry);
      }
      fb::PlasmaAbortReplyT reply;
      reply.object_id = request.object_id;
      client->connection->QueueMessage(T::PlasmaAbortReply, reply);
      return Status::OK();
    }
    case T::PlasmaSealRequest: {
      fb::PlasmaSealRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(request.object_id, "seal request"));
      fb::PlasmaSealReplyT reply;
      reply.object_id = request.object_id;
      ObjectEntry* entry = FindObject(id);
      if (entry == nullptr || !client->object_ids.count(id)) {
        reply.error = fb::PlasmaError::ObjectNotFound;
      } else if (entry->sealed) {
        reply.error = fb::PlasmaError::ObjectExists;  // sealed already: immutable
      } else {
        SealObject(client, entry, request.digest);
      }
      client->connection->QueueMessage(T::PlasmaSealReply, reply);
      return Status::OK();
    }
    case T::PlasmaGetRequest: {
      fb::PlasmaGetRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(auto ids, DecodeIds(request.object_ids, "get request"));
      ProcessGet(client, std::move(ids), request.timeout_ms);
      return Status::OK();
    }
    case T::PlasmaReleaseRequest: {
      fb::PlasmaReleaseRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(request.object_id, "release request"));
      ObjectEntry* entry = FindObject(id);
      if (entry == nullptr || !client->object_ids.count(id)) {
        PLASMA_LOG(kWarning) << "client " << client->describe() << " released object "
                             << id.Hex() << " that it does not hold";
      } else if (!entry->sealed) {
        // Releasing an unsealed object would orphan it; Plasma clients never do.
        PLASMA_LOG(kWarning) << "client " << client->describe()
                             << " released unsealed object " << id.Hex() << "; ignored";
      } else {
        RemoveReference(client, entry);
      }
      return Status::OK();  // Release has no reply
    }
    case T::PlasmaDeleteRequest: {
      fb::PlasmaDeleteRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(auto ids, DecodeIds(request.object_ids, "delete request"));
      fb::PlasmaDeleteReplyT reply;
      reply.count = int32_t(ids.size());
      reply.object_ids = request.object_ids;
      for (const ObjectId& id : ids) reply.errors.push_back(DeleteObject(id));
      client->connection->QueueMessage(T::PlasmaDeleteReply, reply);
      return Status::OK();
    }
    case T::PlasmaContainsRequest: {
      fb::PlasmaContainsRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(request.object_id, "contains request"));
      fb::PlasmaContainsReplyT reply;
      reply.object_id = request.object_id;
      ObjectEntry* entry = FindObject(id);
      reply.has_object = entry != nullptr && entry->sealed ? 1 : 0;
      client->connection->QueueMessage(T::PlasmaContainsReply, reply);
      return Status::OK();
    }
    case T::PlasmaListRequest: {
      fb::PlasmaListRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      fb::PlasmaListReplyT reply;
      for (const auto& [id, entry] : objects_) {
        reply.objects.push_back(std::make_unique<fb::ObjectInfoT>(MakeObjectInfo(*entry)));
      }
      client->connection->QueueMessage(T::PlasmaListReply, reply);
      return Status::OK();
    }
    case T::PlasmaEvictRequest: {
      fb::PlasmaEvictRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      fb::PlasmaEvictReplyT reply;
      int64_t wanted = int64_t(std::min<uint64_t>(request.num_bytes, uint64_t(INT64_MAX)));
      reply.num_bytes = uint64_t(EvictBytes(wanted));
      client->connection->QueueMessage(T::PlasmaEvictReply, reply);
      return Status::OK();
    }
    case T::PlasmaRefreshLRURequest: {
      fb::PlasmaRefreshLRURequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      PLASMA_ASSIGN_OR_RETURN(auto ids, DecodeIds(request.object_ids, "refresh request"));
      eviction_.Refresh(ids);
      client->connection->QueueMessage(T::PlasmaRefreshLRUReply, fb::PlasmaRefreshLRUReplyT{});
      return Status::OK();
    }
    case T::PlasmaSubscribeRequest: {
      if (client->notification_fd >= 0) {
        return Status::ProtocolError("client subscribed twice");
      }
      client->awaiting_subscribe_fd = true;  // ProcessFrames picks up the fd
      return Status::OK();
    }
    case T::PlasmaSetOptionsRequest: {
      fb::PlasmaSetOptionsRequestT request;
      PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
      client->name = request.client_name;
      fb::PlasmaSetOptionsReplyT reply;
      if (!eviction_.SetQuota(client, client->name, request.output_memory_quota)) {
        PLASMA_LOG(kWarning) << "client " << client->describe() << " (" << client->name
                             << "): quota of " << request.output_memory_quota
                             << " bytes refused (already set, or it would leave the "
                                "shared pool under 30% of capacity)";
        reply.error = fb::PlasmaError::OutOfMemory;
      }
      client->connection->QueueMessage(T::PlasmaSetOptionsReply, reply);
      return Status::OK();
    }
    case T::PlasmaGetDebugStringRequest: {
      fb::PlasmaGetDebugStringReplyT reply;
      reply.debug_string = DebugString();
      client->connection->QueueMessage(T::PlasmaGetDebugStringReply, reply);
      return Status::OK();
    }
    case T::PlasmaDisconnectClient:
      return Status::IOError("client sent a disconnect message");
    default:
      return Status::ProtocolError(std::string("unexpected message ") + MessageTypeName(type) +
                                   " from a client");
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

void Store::DisconnectClient(StoreClient* client, const std::string& reason) {
  int fd = client->connection->fd();
  bool orderly = reason.find("closed the connection") != std::string::npos ||
                 reason == "store shutting down";
  if (orderly) {
    PLASMA_LOG(kDebug) << "client " << client->describe() << " disconnected";
  } else {
    PLASMA_LOG(kWarning) << "disconnecting client " << client->describe() << ": " << reason;
  }
  loop_->Unwatch(fd);
  while (!client->gets.empty()) RemoveGetRequest(*client->gets.begin());
  // Objects counted against its quota join the shared pool.
  eviction_.ClientDisconnected(client);
  // Its unsealed objects are aborted; its references on sealed ones dropped.
  std::vector<ObjectId> held(client->object_ids.begin(), client->object_ids.end());
  for (const ObjectId& id : held) {
    ObjectEntry* entry = FindObject(id);
    if (entry == nullptr) continue;
    if (entry->sealed) {
      RemoveReference(client, entry);
    } else {
      AbortObject(client, entry);
    }
  }
  if (client->notification_fd >= 0) {
    loop_->Unwatch(client->notification_fd);
    close(client->notification_fd);
  }
  clients_.erase(fd);  // closes the connection
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
