// Creating objects: Create (and CreateForFill, pipelined), Seal, Abort, and
// CreateAndSeal, which carries small objects inline.
#include "plasma/client/client_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "plasma/common/digest.h"

namespace plasma {

using client_internal::Prefixed;

namespace {

std::string DigestOf(const std::string& data, const std::string& metadata) {
  return ObjectDigest(reinterpret_cast<const uint8_t*>(data.data()), int64_t(data.size()),
                  reinterpret_cast<const uint8_t*>(metadata.data()), int64_t(metadata.size()));
}

}  // namespace

Result<fb::PlasmaCreateRequestT> ClientImpl::MakeCreateRequest(const ObjectId& id,
                                                               int64_t data_size,
                                                               int64_t metadata_size,
                                                               bool evict_if_full) const {
  if (data_size < 0 || metadata_size < 0) {
    return Status::InvalidArgument("create object " + id.Hex() + ": negative size (data " +
                                   std::to_string(data_size) + ", metadata " +
                                   std::to_string(metadata_size) + ")");
  }
  fb::PlasmaCreateRequestT request;
  request.object_id = id.Binary();
  request.evict_if_full = evict_if_full;
  request.data_size = uint64_t(data_size);
  request.metadata_size = uint64_t(metadata_size);
  request.device_num = 0;
  return request;
}

// Reads the reply to `request` (already sent) and records the new object.
Result<ObjectBuffer> ClientImpl::FinishCreate(const ObjectId& id,
                                              const fb::PlasmaCreateRequestT& request,
                                              const uint8_t* metadata) {
  fb::PlasmaCreateReplyT reply;
  PLASMA_RETURN_NOT_OK(Receive(fb::MessageType::PlasmaCreateReply, &reply));
  // On error the store sends no fd, so the stream is still in step.
  if (reply.error != fb::PlasmaError::OK) {
    return ErrorToStatus(reply.error, "create object " + id.Hex() + " (" +
                                          std::to_string(request.data_size) + " + " +
                                          std::to_string(request.metadata_size) +
                                          " bytes) in the " + Where());
  }
  if (reply.plasma_object == nullptr) {
    return Fail(Status::ProtocolError("PlasmaCreateReply from the " + Where() + " for object " +
                                      id.Hex() + " has no object location"));
  }
  // The fd (if new) follows the reply whatever else is wrong with it.
  PLASMA_ASSIGN_OR_RETURN(Mapping mapping, MapStoreFd(reply.store_fd, reply.mmap_size));
  const fb::PlasmaObjectSpec& spec = *reply.plasma_object;
  if (reply.object_id != request.object_id || spec.data_size() != request.data_size ||
      spec.metadata_size() != request.metadata_size) {
    return Fail(Status::ProtocolError(
        "PlasmaCreateReply from the " + Where() + " does not match the request for object " +
        id.Hex() + " (" + std::to_string(request.data_size) + " + " +
        std::to_string(request.metadata_size) + " bytes)"));
  }
  auto entry = EntryFromSpec(spec, mapping, id);
  if (!entry.ok()) return Fail(entry.status());
  if (request.metadata_size > 0 && metadata != nullptr) {
    std::memcpy(entry->metadata, metadata, size_t(request.metadata_size));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
  ObjectEntry& local = objects_[id];
  local = *entry;
  local.count = 1;  // the creation pin, dropped by Seal
  local.sealed = false;
  return MakeBufferLocked(id, &local);
}

Result<ObjectBuffer> ClientImpl::Create(const ObjectId& id, int64_t data_size,
                                        const uint8_t* metadata, int64_t metadata_size,
                                        bool evict_if_full) {
  PLASMA_ASSIGN_OR_RETURN(auto request,
                          MakeCreateRequest(id, data_size, metadata_size, evict_if_full));
  std::lock_guard<std::mutex> call(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(SendLocked(fb::MessageType::PlasmaCreateRequest, request));
  }
  return FinishCreate(id, request, metadata);
}

std::vector<Result<ObjectBuffer>> ClientImpl::CreateForFillMany(const std::vector<FillSpec>& specs,
                                                                bool evict_if_full) {
  std::vector<std::optional<fb::PlasmaCreateRequestT>> sent(specs.size());
  std::vector<Status> not_sent(specs.size());
  std::lock_guard<std::mutex> call(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < specs.size(); ++i) {
      auto request = MakeCreateRequest(specs[i].id, specs[i].data_size, specs[i].metadata_size,
                                       evict_if_full);
      not_sent[i] = request.ok() ? SendLocked(fb::MessageType::PlasmaCreateRequest, *request)
                                 : request.status();
      if (not_sent[i].ok()) sent[i] = std::move(request).value();
    }
  }
  std::vector<Result<ObjectBuffer>> results;
  results.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    if (sent[i]) {
      results.push_back(FinishCreate(specs[i].id, *sent[i], nullptr));
    } else {
      results.push_back(not_sent[i]);
    }
  }
  return results;
}

Result<fb::PlasmaSealRequestT> ClientImpl::MakeSealRequest(const ObjectId& id,
                                                           const std::string* known_digest) {
  ObjectEntry snapshot;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
    auto it = objects_.find(id);
    if (it == objects_.end()) {
      return Status::ObjectNotFound("seal object " + id.Hex() +
                                    ": this client has not created it (or aborted it)");
    }
    if (it->second.sealed) {
      return Status::ObjectExists("seal object " + id.Hex() + ": already sealed");
    }
    snapshot = it->second;
  }
  // The creation pin keeps the entry (and the mapping) alive while hashing.
  fb::PlasmaSealRequestT request;
  request.object_id = id.Binary();
  request.digest = known_digest != nullptr ? *known_digest
                                           : ObjectDigest(snapshot.data, snapshot.data_size,
                                                      snapshot.metadata, snapshot.metadata_size);
  return request;
}

// Reads the reply to `request` (already sent) and drops the creation pin.
Status ClientImpl::FinishSeal(const ObjectId& id, const fb::PlasmaSealRequestT& request) {
  fb::PlasmaSealReplyT reply;
  PLASMA_RETURN_NOT_OK(Receive(fb::MessageType::PlasmaSealReply, &reply));
  if (reply.object_id != request.object_id) {
    return Fail(Status::ProtocolError("PlasmaSealReply from the " + Where() +
                                      " names another object than " + id.Hex()));
  }
  if (reply.error != fb::PlasmaError::OK) {
    return ErrorToStatus(reply.error, "seal object " + id.Hex() + " in the " + Where());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = objects_.find(id);
  if (it != objects_.end()) {
    it->second.sealed = true;
    DropReferenceLocked(id);  // the creation pin; buffers keep their references
  }
  return Status::OK();
}

Status ClientImpl::Seal(const ObjectId& id, const std::string* known_digest) {
  std::lock_guard<std::mutex> call(call_mutex_);
  PLASMA_ASSIGN_OR_RETURN(auto request, MakeSealRequest(id, known_digest));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(SendLocked(fb::MessageType::PlasmaSealRequest, request));
  }
  return FinishSeal(id, request);
}

std::vector<Status> ClientImpl::SealMany(const std::vector<ObjectId>& ids,
                                         const std::vector<std::string>& digests) {
  std::vector<Status> results(ids.size());
  std::vector<std::optional<fb::PlasmaSealRequestT>> sent(ids.size());
  std::lock_guard<std::mutex> call(call_mutex_);
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string* digest = i < digests.size() && !digests[i].empty() ? &digests[i] : nullptr;
    auto request = MakeSealRequest(ids[i], digest);
    if (!request.ok()) {
      results[i] = request.status();
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    results[i] = SendLocked(fb::MessageType::PlasmaSealRequest, *request);
    if (results[i].ok()) sent[i] = std::move(request).value();
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (sent[i]) results[i] = FinishSeal(ids[i], *sent[i]);
  }
  return results;
}

Status ClientImpl::Abort(const ObjectId& id) {
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaAbortRequestT request;
  request.object_id = id.Binary();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
    auto it = objects_.find(id);
    if (it == objects_.end()) {
      return Status::ObjectNotFound("abort object " + id.Hex() +
                                    ": this client has not created it (or already aborted it)");
    }
    if (it->second.sealed) {
      return Status::ObjectExists("abort object " + id.Hex() + ": already sealed");
    }
    if (it->second.count > 1) {
      // Its memory is freed at once; live buffers would point into whatever
      // the store puts there next.
      return Status::InvalidArgument("abort object " + id.Hex() + ": " +
                                     std::to_string(it->second.count - 1) +
                                     " buffer(s) of it are still alive; release them first");
    }
    PLASMA_RETURN_NOT_OK(SendLocked(fb::MessageType::PlasmaAbortRequest, request));
    // Only the pin is left and nothing else can reference the entry now.
    objects_.erase(it);
  }
  fb::PlasmaAbortReplyT reply;
  PLASMA_RETURN_NOT_OK(Receive(fb::MessageType::PlasmaAbortReply, &reply));
  if (reply.object_id != request.object_id) {
    return Fail(Status::ProtocolError("PlasmaAbortReply from the " + Where() +
                                      " names another object than " + id.Hex()));
  }
  return Status::OK();
}

Status ClientImpl::CreateAndSeal(const ObjectId& id, const std::string& data,
                                 const std::string& metadata, bool evict_if_full) {
  fb::PlasmaCreateAndSealRequestT request;
  request.object_id = id.Binary();
  request.evict_if_full = evict_if_full;
  request.data = data;
  request.metadata = metadata;
  request.digest = DigestOf(data, metadata);
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaCreateAndSealReplyT reply;
  PLASMA_RETURN_NOT_OK(Exchange(fb::MessageType::PlasmaCreateAndSealRequest, request,
                                fb::MessageType::PlasmaCreateAndSealReply, &reply));
  return ErrorToStatus(reply.error, "create and seal object " + id.Hex() + " (" +
                                        std::to_string(data.size()) + " + " +
                                        std::to_string(metadata.size()) + " bytes) in the " +
                                        Where());
}

std::vector<Status> ClientImpl::CreateAndSealMany(const std::vector<WholeObject>& objects,
                                                  bool evict_if_full) {
  std::vector<Status> results(objects.size());
  std::vector<bool> sent(objects.size(), false);
  std::lock_guard<std::mutex> call(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < objects.size(); ++i) {
      const WholeObject& object = objects[i];
      if (object.data_size < 0 || object.metadata_size < 0) {
        results[i] = Status::InvalidArgument("create and seal object " + object.id.Hex() +
                                             ": negative size");
        continue;
      }
      // Encoded straight from the caller's bytes: one copy, into the frame.
      const uint8_t* metadata = object.bytes + object.data_size;
      std::string digest = object.digest.empty() ? ObjectDigest(object.bytes, object.data_size,
                                                                metadata, object.metadata_size)
                                                 : object.digest;
      const char* bytes = reinterpret_cast<const char*>(object.bytes);
      flatbuffers::FlatBufferBuilder builder(size_t(object.data_size + object.metadata_size) + 256);
      auto id = builder.CreateString(object.id.Binary());
      auto data = builder.CreateString(bytes, size_t(object.data_size));
      auto meta = builder.CreateString(bytes + object.data_size, size_t(object.metadata_size));
      auto digest_offset = builder.CreateString(digest);
      builder.Finish(
          fb::CreatePlasmaCreateAndSealRequest(builder, id, evict_if_full, data, meta, digest_offset));
      results[i] = SendEncodedLocked(fb::MessageType::PlasmaCreateAndSealRequest, builder);
      sent[i] = results[i].ok();
    }
  }
  for (size_t i = 0; i < objects.size(); ++i) {
    if (!sent[i]) continue;
    fb::PlasmaCreateAndSealReplyT reply;
    results[i] = Receive(fb::MessageType::PlasmaCreateAndSealReply, &reply);
    if (results[i].ok()) {
      results[i] = ErrorToStatus(reply.error, "create and seal object " + objects[i].id.Hex() +
                                                  " (" + std::to_string(objects[i].data_size) +
                                                  " + " + std::to_string(objects[i].metadata_size) +
                                                  " bytes) in the " + Where());
    }
  }
  return results;
}

Status ClientImpl::CreateAndSealBatch(const std::vector<ObjectId>& ids,
                                      const std::vector<std::string>& data,
                                      const std::vector<std::string>& metadata,
                                      bool evict_if_full) {
  if (data.size() != ids.size() || metadata.size() != ids.size()) {
    return Status::InvalidArgument("create and seal batch: " + std::to_string(ids.size()) +
                                   " ids, " + std::to_string(data.size()) + " data and " +
                                   std::to_string(metadata.size()) + " metadata strings");
  }
  fb::PlasmaCreateAndSealBatchRequestT request;
  request.evict_if_full = evict_if_full;
  for (size_t i = 0; i < ids.size(); ++i) {
    request.object_ids.push_back(ids[i].Binary());
    request.digest.push_back(DigestOf(data[i], metadata[i]));
  }
  request.data = data;
  request.metadata = metadata;
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaCreateAndSealBatchReplyT reply;
  PLASMA_RETURN_NOT_OK(Exchange(fb::MessageType::PlasmaCreateAndSealBatchRequest, request,
                                fb::MessageType::PlasmaCreateAndSealBatchReply, &reply));
  return ErrorToStatus(reply.error, "create and seal a batch of " + std::to_string(ids.size()) +
                                        " objects in the " + Where() +
                                        " (none of them was created)");
}

}  // namespace plasma
