// The store's requests: one handler per Plasma message, given the decoded
// request. HandleMessage decodes a frame and picks the handler.
#include <algorithm>
#include <cstring>

#include "plasma/common/logging.h"
#include "plasma/store/store.h"
#include "plasma/store/store_records.h"

namespace plasma {

namespace {

using T = fb::MessageType;

Result<ObjectId> DecodeId(const std::string& binary, const char* message) {
  auto id = ObjectId::FromBinary(binary);
  if (!id.ok()) return Status::ProtocolError(std::string(message) + ": " + id.status().message());
  return id;
}

Result<std::vector<ObjectId>> DecodeIds(const std::vector<std::string>& binaries,
                                               const char* message) {
  std::vector<ObjectId> ids;
  ids.reserve(binaries.size());
  for (const auto& binary : binaries) {
    PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(binary, message));
    ids.push_back(id);
  }
  return ids;
}

}  // namespace

template <typename Request>
Status Store::Decoded(StoreClient* client, const uint8_t* payload, size_t length,
                      Status (Store::*handler)(StoreClient*, const Request&)) {
  Request request;
  PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &request));
  return (this->*handler)(client, request);
}

Status Store::HandleMessage(StoreClient* client, fb::MessageType type, const uint8_t* payload,
                            size_t length) {
  switch (type) {
    case T::PlasmaConnectRequest:
      return OnConnect(client);
    case T::PlasmaCreateRequest:
      return Decoded(client, payload, length, &Store::OnCreate);
    case T::PlasmaCreateAndSealRequest:
      return OnCreateAndSeal(client, payload, length);
    case T::PlasmaCreateAndSealBatchRequest:
      return Decoded(client, payload, length, &Store::OnCreateAndSealBatch);
    case T::PlasmaAbortRequest:
      return Decoded(client, payload, length, &Store::OnAbort);
    case T::PlasmaSealRequest:
      return Decoded(client, payload, length, &Store::OnSeal);
    case T::PlasmaGetRequest:
      return Decoded(client, payload, length, &Store::OnGet);
    case T::PlasmaReleaseRequest:
      return Decoded(client, payload, length, &Store::OnRelease);
    case T::PlasmaDeleteRequest:
      return Decoded(client, payload, length, &Store::OnDelete);
    case T::PlasmaContainsRequest:
      return Decoded(client, payload, length, &Store::OnContains);
    case T::PlasmaListRequest:
      return Decoded(client, payload, length, &Store::OnList);
    case T::PlasmaEvictRequest:
      return Decoded(client, payload, length, &Store::OnEvict);
    case T::PlasmaRefreshLRURequest:
      return Decoded(client, payload, length, &Store::OnRefreshLRU);
    case T::PlasmaSubscribeRequest:
      return OnSubscribe(client);
    case T::PlasmaSetOptionsRequest:
      return Decoded(client, payload, length, &Store::OnSetOptions);
    case T::PlasmaGetDebugStringRequest:
      return OnGetDebugString(client);
    case T::PlasmaDisconnectClient:
      return Status::IOError("client sent a disconnect message");
    default:
      return Status::ProtocolError(std::string("unexpected message ") + MessageTypeName(type) +
                                   " from a client");
  }
}

Status Store::OnConnect(StoreClient* client) {
  fb::PlasmaConnectReplyT reply;
  reply.memory_capacity = capacity();
  client->connection->QueueMessage(T::PlasmaConnectReply, reply);
  return Status::OK();
}

Status Store::OnCreate(StoreClient* client, const fb::PlasmaCreateRequestT& request) {
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

// Read in place: the object's bytes go from the received frame straight
// into the arena (the object API would copy them into a string first).
Status Store::OnCreateAndSeal(StoreClient* client, const uint8_t* payload, size_t length) {
  PLASMA_ASSIGN_OR_RETURN(auto request,
                          VerifiedTable<fb::PlasmaCreateAndSealRequest>(payload, length));
  auto text = [](const flatbuffers::String* s) { return s ? s->str() : std::string(); };
  auto bytes = [](const flatbuffers::String* s) {
    return s ? reinterpret_cast<const uint8_t*>(s->data()) : nullptr;
  };
  auto size = [](const flatbuffers::String* s) { return s ? uint64_t(s->size()) : 0; };
  PLASMA_ASSIGN_OR_RETURN(ObjectId id,
                          DecodeId(text(request->object_id()), "create-and-seal request"));
  fb::PlasmaCreateAndSealReplyT reply;
  reply.error = CreateAndSealObject(client, id, bytes(request->data()), size(request->data()),
                                    bytes(request->metadata()), size(request->metadata()),
                                    text(request->digest()), request->evict_if_full());
  client->connection->QueueMessage(T::PlasmaCreateAndSealReply, reply);
  return Status::OK();
}

Status Store::OnCreateAndSealBatch(StoreClient* client, const fb::PlasmaCreateAndSealBatchRequestT& request) {
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

Status Store::OnAbort(StoreClient* client, const fb::PlasmaAbortRequestT& request) {
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

Status Store::OnSeal(StoreClient* client, const fb::PlasmaSealRequestT& request) {
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

Status Store::OnGet(StoreClient* client, const fb::PlasmaGetRequestT& request) {
  PLASMA_ASSIGN_OR_RETURN(auto ids, DecodeIds(request.object_ids, "get request"));
  ProcessGet(client, std::move(ids), request.timeout_ms);
  return Status::OK();
}

Status Store::OnRelease(StoreClient* client, const fb::PlasmaReleaseRequestT& request) {
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

Status Store::OnDelete(StoreClient* client, const fb::PlasmaDeleteRequestT& request) {
  PLASMA_ASSIGN_OR_RETURN(auto ids, DecodeIds(request.object_ids, "delete request"));
  fb::PlasmaDeleteReplyT reply;
  reply.count = int32_t(ids.size());
  reply.object_ids = request.object_ids;
  for (const ObjectId& id : ids) reply.errors.push_back(DeleteObject(id));
  client->connection->QueueMessage(T::PlasmaDeleteReply, reply);
  return Status::OK();
}

Status Store::OnContains(StoreClient* client, const fb::PlasmaContainsRequestT& request) {
  PLASMA_ASSIGN_OR_RETURN(ObjectId id, DecodeId(request.object_id, "contains request"));
  fb::PlasmaContainsReplyT reply;
  reply.object_id = request.object_id;
  ObjectEntry* entry = FindObject(id);
  reply.has_object = entry != nullptr && entry->sealed ? 1 : 0;
  client->connection->QueueMessage(T::PlasmaContainsReply, reply);
  return Status::OK();
}

Status Store::OnList(StoreClient* client, const fb::PlasmaListRequestT& request) {
  fb::PlasmaListReplyT reply;
  for (const auto& [id, entry] : objects_) {
    reply.objects.push_back(std::make_unique<fb::ObjectInfoT>(MakeObjectInfo(*entry)));
  }
  client->connection->QueueMessage(T::PlasmaListReply, reply);
  return Status::OK();
}

Status Store::OnEvict(StoreClient* client, const fb::PlasmaEvictRequestT& request) {
  fb::PlasmaEvictReplyT reply;
  int64_t wanted = int64_t(std::min<uint64_t>(request.num_bytes, uint64_t(INT64_MAX)));
  reply.num_bytes = uint64_t(EvictBytes(wanted));
  client->connection->QueueMessage(T::PlasmaEvictReply, reply);
  return Status::OK();
}

Status Store::OnRefreshLRU(StoreClient* client, const fb::PlasmaRefreshLRURequestT& request) {
  PLASMA_ASSIGN_OR_RETURN(auto ids, DecodeIds(request.object_ids, "refresh request"));
  eviction_.Refresh(ids);
  client->connection->QueueMessage(T::PlasmaRefreshLRUReply, fb::PlasmaRefreshLRUReplyT{});
  return Status::OK();
}

Status Store::OnSubscribe(StoreClient* client) {
  if (client->notification_fd >= 0) {
    return Status::ProtocolError("client subscribed twice");
  }
  client->awaiting_subscribe_fd = true;  // ProcessFrames picks up the fd
  return Status::OK();
}

Status Store::OnSetOptions(StoreClient* client, const fb::PlasmaSetOptionsRequestT& request) {
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

Status Store::OnGetDebugString(StoreClient* client) {
  fb::PlasmaGetDebugStringReplyT reply;
  reply.debug_string = DebugString();
  client->connection->QueueMessage(T::PlasmaGetDebugStringReply, reply);
  return Status::OK();
}

}  // namespace plasma
