// ClientImpl: the connection to the store, the mappings of its arena and the
// table of objects this client holds references on.
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

constexpr int kConnectRetryDelayMs = 100;

}  // namespace

ClientImpl::~ClientImpl() {
  if (conn_ >= 0) close(conn_);
  if (manager_conn_ >= 0) close(manager_conn_);
  for (auto& [store_fd, mapping] : mappings_) munmap(mapping.base, mapping.length);
}

Status ClientImpl::CheckConnectedLocked() const {
  if (conn_ < 0 || !broken_.ok()) {
    return Status::IOError("not connected to the " + Where() + ": " +
                           (broken_.ok() ? std::string("disconnected") : broken_.message()));
  }
  return Status::OK();
}

Status ClientImpl::SendEncodedLocked(fb::MessageType type,
                                     const flatbuffers::FlatBufferBuilder& builder) {
  PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
  Status sent = WriteFrame(conn_, type, builder.GetBufferPointer(), builder.GetSize());
  if (!sent.ok()) {
    Status why = client_internal::Prefixed(
        std::string("send ") + MessageTypeName(type) + " to the " + Where(), sent);
    FailLocked(why);
    return why;
  }
  return Status::OK();
}

void ClientImpl::FailLocked(const Status& why) {
  if (!broken_.ok()) return;
  broken_ = why;
  if (conn_ >= 0) shutdown(conn_, SHUT_RDWR);
  // The store drops every reference of this connection when it sees it close.
  objects_.clear();
}

Status ClientImpl::Fail(const Status& why) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Already broken (e.g. Disconnect shut the socket under a waiting Get):
  // that, not the EOF it caused, is the reason to report.
  if (!broken_.ok()) return CheckConnectedLocked();
  FailLocked(why);
  return why;
}

Result<ClientImpl::Mapping> ClientImpl::MapStoreFd(int store_fd, int64_t mmap_size) {
  auto known = mappings_.find(store_fd);
  if (known != mappings_.end()) return known->second;
  int fd;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
    fd = conn_;
  }
  auto received = RecvFd(fd);
  if (!received.ok()) {
    return Fail(Prefixed("receive the memory fd (store fd " + std::to_string(store_fd) +
                             ") from the " + Where(),
                         received.status()));
  }
  int local_fd = *received;
  // Whatever happens next, the store now believes we hold this fd; a failure
  // to map it would leave later replies unusable, so it ends the connection.
  if (mmap_size <= kMmapSizeSlack) {
    close(local_fd);
    return Fail(Status::ProtocolError("the " + Where() + " announced mmap_size " +
                                      std::to_string(mmap_size) + " for store fd " +
                                      std::to_string(store_fd)));
  }
  size_t length = size_t(mmap_size - kMmapSizeSlack);
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, local_fd, 0);
  int mmap_errno = errno;
  close(local_fd);  // the mapping keeps the memory; the fd is not needed
  if (base == MAP_FAILED) {
    return Fail(Status::FromErrno("map " + std::to_string(length) + " bytes of the " + Where() +
                                      "'s memory",
                                  mmap_errno));
  }
  Mapping mapping{static_cast<uint8_t*>(base), length};
  mappings_[store_fd] = mapping;
  return mapping;
}

Result<ClientImpl::ObjectEntry> ClientImpl::EntryFromSpec(const fb::PlasmaObjectSpec& spec,
                                                          const Mapping& mapping,
                                                          const ObjectId& id) const {
  uint64_t length = mapping.length;
  auto inside = [length](uint64_t offset, uint64_t size) {
    return offset <= length && size <= length - offset;
  };
  if (!inside(spec.data_offset(), spec.data_size()) ||
      !inside(spec.metadata_offset(), spec.metadata_size()) ||
      spec.data_size() > uint64_t(std::numeric_limits<int64_t>::max())) {
    return Status::ProtocolError(
        "the " + Where() + " placed object " + id.Hex() + " (data " +
        std::to_string(spec.data_offset()) + "+" + std::to_string(spec.data_size()) +
        ", metadata " + std::to_string(spec.metadata_offset()) + "+" +
        std::to_string(spec.metadata_size()) + ") outside its " + std::to_string(length) +
        "-byte memory");
  }
  ObjectEntry entry;
  entry.data = mapping.base + spec.data_offset();
  entry.data_size = int64_t(spec.data_size());
  entry.metadata = mapping.base + spec.metadata_offset();
  entry.metadata_size = int64_t(spec.metadata_size());
  return entry;
}

ObjectBuffer ClientImpl::MakeBufferLocked(const ObjectId& id, ObjectEntry* entry) {
  ++entry->count;
  ObjectBuffer buffer;
  buffer.impl_ = shared_from_this();
  buffer.id_ = id;
  buffer.data_ = entry->data;
  buffer.data_size_ = entry->data_size;
  buffer.metadata_ = entry->metadata;
  buffer.metadata_size_ = entry->metadata_size;
  return buffer;
}

void ClientImpl::DropReferenceLocked(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;  // disconnected (or aborted) meanwhile
  if (--it->second.count > 0) return;
  objects_.erase(it);
  if (!CheckConnectedLocked().ok()) return;
  fb::PlasmaReleaseRequestT request;
  request.object_id = id.Binary();
  (void)SendLocked(fb::MessageType::PlasmaReleaseRequest, request);  // no reply
}

void ClientImpl::ReleaseObject(const ObjectId& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  DropReferenceLocked(id);
}

Status ClientImpl::Connect() {
  std::lock_guard<std::mutex> call(call_mutex_);
  auto fd = ConnectUnixSocketRetry(socket_path_, std::max(1, options_.connect_attempts),
                                   kConnectRetryDelayMs);
  if (!fd.ok()) return Prefixed("cannot connect to the plasma store", fd.status());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    conn_ = *fd;
  }
  fb::PlasmaConnectReplyT reply;
  PLASMA_RETURN_NOT_OK(
      Exchange(fb::MessageType::PlasmaConnectRequest, fb::PlasmaConnectRequestT{},
               fb::MessageType::PlasmaConnectReply, &reply));
  capacity_ = reply.memory_capacity;
  return Status::OK();
}

Result<ArenaRegion> ClientImpl::MapArena() {
  auto mapped = [this]() -> std::optional<ArenaRegion> {
    std::lock_guard<std::mutex> call(call_mutex_);
    if (mappings_.empty()) return std::nullopt;
    // Plasma 11 stores (and ours) have one arena, hence one mapping.
    const Mapping& mapping = mappings_.begin()->second;
    return ArenaRegion{mapping.base, mapping.length};
  };
  if (auto region = mapped()) return *region;
  // The store passes its fd with the first object it hands out: create a
  // 1-byte scratch object (never evicting anything for it) and abort it.
  ObjectId scratch = ObjectId::Random();
  auto created = Create(scratch, 1, nullptr, 0, /*evict_if_full=*/false);
  if (created.ok()) {
    created->Release();
    PLASMA_RETURN_NOT_OK(Abort(scratch));
  } else if (created.status().IsOutOfMemory()) {
    // Full: borrow any sealed object instead.
    PLASMA_ASSIGN_OR_RETURN(auto objects, List());
    for (const ObjectInfo& info : objects) {
      if (!info.sealed) continue;
      PLASMA_ASSIGN_OR_RETURN(auto got, Get({info.id}, 0));
      if (!got.empty() && got[0].valid()) break;
    }
  } else {
    return Prefixed("map the arena of the " + Where(), created.status());
  }
  if (auto region = mapped()) return *region;
  return Status::Unavailable("map the arena of the " + Where() +
                             ": it is full of objects still being created, so it sent no memory");
}

Status ClientImpl::Disconnect() {
  {
    // Shutting the socket down first wakes a Get that another thread is
    // waiting in (it returns an error), so call_mutex_ can be taken below.
    std::lock_guard<std::mutex> lock(mutex_);
    FailLocked(Status::IOError("client disconnected"));
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (conn_ >= 0) {
    close(conn_);
    conn_ = -1;
  }
  // The store drops this client's references; buffers still alive keep
  // their mappings (valid memory) but no longer protect the objects.
  objects_.clear();
  return Status::OK();
}

}  // namespace plasma
