// Reaching objects: Get (mapping them), Contains, Delete, List, Evict,
// Refresh, the client's options and the store's debug string.
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

namespace plasma {

using client_internal::Prefixed;

namespace {

// A GetReply entry with this data_size was not available (Plasma 11: -1).
constexpr uint64_t kNotAvailable = ~uint64_t(0);

}  // namespace

Result<std::vector<ObjectBuffer>> ClientImpl::Get(const std::vector<ObjectId>& ids,
                                                  int64_t timeout_ms) {
  if (timeout_ms < -1) {
    return Status::InvalidArgument("get: timeout " + std::to_string(timeout_ms) +
                                   " ms (use -1 to wait forever)");
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  // Declared before the lock so that, on an early return, buffers release
  // themselves after mutex_ is unlocked.
  std::vector<ObjectBuffer> result(ids.size());
  fb::PlasmaGetRequestT request;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
    bool all_local = true;
    for (const ObjectId& id : ids) {
      auto it = objects_.find(id);
      if (it != objects_.end() && !it->second.sealed && timeout_ms == -1) {
        return Status::InvalidArgument("get object " + id.Hex() +
                                       " without timeout: this client created it and has not "
                                       "sealed it, so the wait would never end");
      }
      if (it == objects_.end() || !it->second.sealed) all_local = false;
    }
    // Objects this client already holds are served from its own table.
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = objects_.find(ids[i]);
      if (it != objects_.end() && it->second.sealed) {
        result[i] = MakeBufferLocked(ids[i], &it->second);
      }
    }
    if (all_local) return result;
    request.timeout_ms = timeout_ms;
    for (const ObjectId& id : ids) request.object_ids.push_back(id.Binary());
    PLASMA_RETURN_NOT_OK(SendLocked(fb::MessageType::PlasmaGetRequest, request));
  }
  fb::PlasmaGetReplyT reply;
  PLASMA_RETURN_NOT_OK(Receive(fb::MessageType::PlasmaGetReply, &reply));
  // Fds follow the reply; receive them before judging anything else.
  if (reply.store_fds.size() != reply.mmap_sizes.size()) {
    return Fail(Status::ProtocolError("PlasmaGetReply from the " + Where() + " has " +
                                      std::to_string(reply.store_fds.size()) + " store fds but " +
                                      std::to_string(reply.mmap_sizes.size()) + " mmap sizes"));
  }
  for (size_t i = 0; i < reply.store_fds.size(); ++i) {
    PLASMA_RETURN_NOT_OK(MapStoreFd(reply.store_fds[i], reply.mmap_sizes[i]).status());
  }
  if (reply.object_ids != request.object_ids || reply.plasma_objects.size() != ids.size()) {
    return Fail(Status::ProtocolError("PlasmaGetReply from the " + Where() +
                                      " does not answer the request for " +
                                      std::to_string(ids.size()) + " objects"));
  }
  // Validate every entry before taking any reference, so a bad reply leaves
  // the table untouched.
  std::vector<std::pair<size_t, ObjectEntry>> found;
  for (size_t i = 0; i < ids.size(); ++i) {
    const fb::PlasmaObjectSpec& spec = reply.plasma_objects[i];
    if (result[i].valid() || spec.data_size() == kNotAvailable) continue;
    auto mapping = mappings_.find(spec.segment_index());
    if (mapping == mappings_.end()) {
      return Fail(Status::ProtocolError("PlasmaGetReply from the " + Where() + " places object " +
                                        ids[i].Hex() + " in store fd " +
                                        std::to_string(spec.segment_index()) +
                                        ", which it never sent"));
    }
    auto entry = EntryFromSpec(spec, mapping->second, ids[i]);
    if (!entry.ok()) return Fail(entry.status());
    found.emplace_back(i, *entry);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
  for (auto& [i, entry] : found) {
    auto [it, inserted] = objects_.try_emplace(ids[i], entry);
    // Not inserted: our own unsealed object (finite timeout) or a duplicate id.
    if (inserted) it->second.sealed = true;
    if (!it->second.sealed) {
      // The store returned it, so it was sealed by us meanwhile: impossible
      // while we hold call_mutex_, unless the store is confused.
      continue;
    }
    result[i] = MakeBufferLocked(ids[i], &it->second);
  }
  return result;
}

Result<bool> ClientImpl::Contains(const ObjectId& id) {
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaContainsRequestT request;
  request.object_id = id.Binary();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
    auto it = objects_.find(id);
    if (it != objects_.end() && it->second.sealed) return true;
    PLASMA_RETURN_NOT_OK(SendLocked(fb::MessageType::PlasmaContainsRequest, request));
  }
  fb::PlasmaContainsReplyT reply;
  PLASMA_RETURN_NOT_OK(Receive(fb::MessageType::PlasmaContainsReply, &reply));
  if (reply.object_id != request.object_id) {
    return Fail(Status::ProtocolError("PlasmaContainsReply from the " + Where() +
                                      " names another object than " + id.Hex()));
  }
  return reply.has_object != 0;
}

Status ClientImpl::Delete(const std::vector<ObjectId>& ids, std::vector<Status>* per_object) {
  if (per_object != nullptr) per_object->clear();
  if (ids.empty()) return Status::OK();
  fb::PlasmaDeleteRequestT request;
  request.count = int32_t(ids.size());
  for (const ObjectId& id : ids) request.object_ids.push_back(id.Binary());
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaDeleteReplyT reply;
  PLASMA_RETURN_NOT_OK(Exchange(fb::MessageType::PlasmaDeleteRequest, request,
                                fb::MessageType::PlasmaDeleteReply, &reply));
  if (reply.errors.size() != ids.size()) {
    return Fail(Status::ProtocolError("PlasmaDeleteReply from the " + Where() + " has " +
                                      std::to_string(reply.errors.size()) + " results for " +
                                      std::to_string(ids.size()) + " objects"));
  }
  Status first_error;
  for (size_t i = 0; i < ids.size(); ++i) {
    Status status;
    switch (reply.errors[i]) {
      case fb::PlasmaError::ObjectInUse:
        status = Status::ObjectInUse("delete object " + ids[i].Hex() +
                                     ": in use; it will be deleted when its last reference goes");
        break;
      case fb::PlasmaError::ObjectNotSealed:
        status = Status::ObjectNotSealed(
            "delete object " + ids[i].Hex() +
            ": not sealed yet; it will be deleted when its creator lets go of it");
        break;
      default:
        status = ErrorToStatus(reply.errors[i], "delete object " + ids[i].Hex() + " from the " +
                                                    Where());
    }
    if (first_error.ok()) first_error = status;
    if (per_object != nullptr) per_object->push_back(std::move(status));
  }
  return per_object != nullptr ? Status::OK() : first_error;
}

Result<std::vector<ObjectInfo>> ClientImpl::List() {
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaListReplyT reply;
  PLASMA_RETURN_NOT_OK(Exchange(fb::MessageType::PlasmaListRequest, fb::PlasmaListRequestT{},
                                fb::MessageType::PlasmaListReply, &reply));
  std::vector<ObjectInfo> objects;
  objects.reserve(reply.objects.size());
  for (const auto& info : reply.objects) {
    if (info == nullptr) continue;
    auto id = ObjectId::FromBinary(info->object_id);
    if (!id.ok()) {
      return Status::ProtocolError("PlasmaListReply from the " + Where() + ": " +
                                   id.status().message());
    }
    ObjectInfo out;
    out.id = *id;
    out.data_size = info->data_size;
    out.metadata_size = info->metadata_size;
    out.ref_count = info->ref_count;
    out.create_time = info->create_time;
    out.construct_duration = info->construct_duration;
    out.digest = info->digest;
    out.sealed = !info->digest.empty();  // Plasma 11 marks unsealed objects so
    objects.push_back(std::move(out));
  }
  return objects;
}

Result<int64_t> ClientImpl::Evict(int64_t num_bytes) {
  if (num_bytes < 0) {
    return Status::InvalidArgument("evict: negative byte count " + std::to_string(num_bytes));
  }
  fb::PlasmaEvictRequestT request;
  request.num_bytes = uint64_t(num_bytes);
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaEvictReplyT reply;
  PLASMA_RETURN_NOT_OK(Exchange(fb::MessageType::PlasmaEvictRequest, request,
                                fb::MessageType::PlasmaEvictReply, &reply));
  if (reply.num_bytes > uint64_t(std::numeric_limits<int64_t>::max())) {
    return Status::ProtocolError("PlasmaEvictReply from the " + Where() + " claims " +
                                 std::to_string(reply.num_bytes) + " bytes freed");
  }
  return int64_t(reply.num_bytes);
}

Status ClientImpl::Refresh(const std::vector<ObjectId>& ids) {
  fb::PlasmaRefreshLRURequestT request;
  for (const ObjectId& id : ids) request.object_ids.push_back(id.Binary());
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaRefreshLRUReplyT reply;
  return Exchange(fb::MessageType::PlasmaRefreshLRURequest, request,
                  fb::MessageType::PlasmaRefreshLRUReply, &reply);
}

Status ClientImpl::SetClientOptions(const std::string& client_name,
                                    int64_t output_memory_quota) {
  fb::PlasmaSetOptionsRequestT request;
  request.client_name = client_name;
  request.output_memory_quota = output_memory_quota;
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaSetOptionsReplyT reply;
  PLASMA_RETURN_NOT_OK(Exchange(fb::MessageType::PlasmaSetOptionsRequest, request,
                                fb::MessageType::PlasmaSetOptionsReply, &reply));
  if (reply.error == fb::PlasmaError::OutOfMemory) {
    return Status::OutOfMemory("set an output memory quota of " +
                               std::to_string(output_memory_quota) + " bytes for client '" +
                               client_name + "': refused by the " + Where() +
                               " (a quota can be set once, and all quotas together must leave "
                               "30% of the capacity unreserved)");
  }
  return ErrorToStatus(reply.error, "set options of client '" + client_name + "'");
}

Result<std::string> ClientImpl::DebugString() {
  std::lock_guard<std::mutex> call(call_mutex_);
  fb::PlasmaGetDebugStringReplyT reply;
  PLASMA_RETURN_NOT_OK(Exchange(fb::MessageType::PlasmaGetDebugStringRequest,
                                fb::PlasmaGetDebugStringRequestT{},
                                fb::MessageType::PlasmaGetDebugStringReply, &reply));
  return std::move(reply.debug_string);
}

}  // namespace plasma
