// plasma::Client: the Plasma 11 client protocol over one Unix socket.
//
// Locking: call_mutex_ serializes request/reply exchanges (a reply is read
// with only call_mutex_ held, so a Get that waits does not block buffer
// releases). mutex_ guards the object table and every write to the socket:
// a Release written by a buffer's destructor can never interleave with, or be
// reordered against, the check-then-send of a Get. Lock order: call_mutex_,
// then mutex_. ObjectBuffers are never destroyed while mutex_ is held, since
// their destructors take it.
#include "plasma/client/client.h"

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
#include "plasma/common/protocol.h"

namespace plasma {

namespace {

// A GetReply entry with this data_size was not available (Plasma 11: -1).
constexpr uint64_t kNotAvailable = ~uint64_t(0);
// Notifications are a handful of ObjectInfos; anything huge is a broken peer.
constexpr int64_t kMaxNotificationBytes = int64_t(64) << 20;
constexpr int kConnectRetryDelayMs = 100;
// A failed batch fetch names at most this many of its failures.
constexpr size_t kFetchFailuresListed = 8;

std::string DigestOf(const std::string& data, const std::string& metadata) {
  return ObjectDigest(reinterpret_cast<const uint8_t*>(data.data()), int64_t(data.size()),
                  reinterpret_cast<const uint8_t*>(metadata.data()), int64_t(metadata.size()));
}

Status Prefixed(const std::string& prefix, const Status& status) {
  if (status.ok()) return status;
  return Status(status.code(), prefix + ": " + status.message());
}

// Reads exactly `length` bytes, waiting with poll() if the fd is non-blocking
// (an event loop may have set it so), so a partial notification never desyncs.
Status ReadNotificationBytes(int fd, void* data, size_t length) {
  auto* cursor = static_cast<uint8_t*>(data);
  while (length > 0) {
    ssize_t n = read(fd, cursor, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
          return Status::FromErrno("poll the notification socket", errno);
        }
        continue;
      }
      return Status::FromErrno("read from the notification socket", errno);
    }
    if (n == 0) return Status::IOError("notification socket closed by the store");
    cursor += n;
    length -= size_t(n);
  }
  return Status::OK();
}

}  // namespace

class ClientImpl : public std::enable_shared_from_this<ClientImpl> {
 public:
  ClientImpl(std::string socket_path, ConnectOptions options)
      : socket_path_(std::move(socket_path)), options_(std::move(options)) {}
  ~ClientImpl();

  Status Connect();
  int64_t memory_capacity() const { return capacity_; }

  Result<ObjectBuffer> Create(const ObjectId& id, int64_t data_size, const uint8_t* metadata,
                              int64_t metadata_size, bool evict_if_full);
  std::vector<Result<ObjectBuffer>> CreateForFillMany(const std::vector<FillSpec>& specs,
                                                      bool evict_if_full);
  Status Seal(const ObjectId& id, const std::string* known_digest = nullptr);
  std::vector<Status> SealMany(const std::vector<ObjectId>& ids,
                               const std::vector<std::string>& digests);
  Status Abort(const ObjectId& id);
  Status CreateAndSeal(const ObjectId& id, const std::string& data, const std::string& metadata,
                       bool evict_if_full);
  Status CreateAndSealBatch(const std::vector<ObjectId>& ids,
                            const std::vector<std::string>& data,
                            const std::vector<std::string>& metadata, bool evict_if_full);
  Result<std::vector<ObjectBuffer>> Get(const std::vector<ObjectId>& ids, int64_t timeout_ms);
  Result<bool> Contains(const ObjectId& id);
  Status Delete(const std::vector<ObjectId>& ids, std::vector<Status>* per_object);
  Result<std::vector<ObjectInfo>> List();
  Result<int64_t> Evict(int64_t num_bytes);
  Status Refresh(const std::vector<ObjectId>& ids);
  Status SetClientOptions(const std::string& client_name, int64_t output_memory_quota);
  Result<std::string> DebugString();
  Result<int> Subscribe();
  Result<ArenaRegion> MapArena();
  Status Fetch(const std::vector<ObjectId>& ids, int64_t timeout_ms);
  Status Disconnect();

  // Called by ObjectBuffer: drops one local reference.
  void ReleaseObject(const ObjectId& id);

 private:
  // This client's view of one object it references in the store.
  struct ObjectEntry {
    // Live ObjectBuffers, plus one "creation pin" while this client's own
    // object is unsealed, so dropping the Create buffer early cannot orphan it.
    int64_t count = 0;
    bool sealed = false;
    uint8_t* data = nullptr;
    int64_t data_size = 0;
    uint8_t* metadata = nullptr;
    int64_t metadata_size = 0;
  };
  struct Mapping {
    uint8_t* base = nullptr;
    size_t length = 0;
  };

  std::string Where() const { return "store at " + socket_path_; }
  // The halves of Create and Seal around the store's reply, shared by the
  // one-object calls and the pipelined ones (every request written before
  // any reply is read). Require call_mutex_.
  Result<fb::PlasmaCreateRequestT> MakeCreateRequest(const ObjectId& id, int64_t data_size,
                                                     int64_t metadata_size,
                                                     bool evict_if_full) const;
  Result<ObjectBuffer> FinishCreate(const ObjectId& id, const fb::PlasmaCreateRequestT& request,
                                    const uint8_t* metadata);
  Result<fb::PlasmaSealRequestT> MakeSealRequest(const ObjectId& id,
                                                 const std::string* known_digest);
  Status FinishSeal(const ObjectId& id, const fb::PlasmaSealRequestT& request);
  // Requires mutex_.
  Status CheckConnectedLocked() const;
  // Marks the connection unusable (further calls fail with `why`). Requires
  // mutex_. The fd is only shut down, not closed, so a concurrent reader
  // never reads a recycled fd number.
  void FailLocked(const Status& why);
  // FailLocked under mutex_; returns the status the caller should report.
  Status Fail(const Status& why);
  // Writes one request. Requires mutex_.
  template <typename T>
  Status SendLocked(fb::MessageType type, const T& message);
  // Reads one reply. Requires call_mutex_ (not mutex_).
  template <typename T>
  Status Receive(fb::MessageType type, T* message);
  // Sends under mutex_, then reads the reply. Requires call_mutex_.
  template <typename Request, typename Reply>
  Status Exchange(fb::MessageType request_type, const Request& request, fb::MessageType reply_type,
                  Reply* reply);
  // The mapping for store_fd, receiving and mapping its fd first if this
  // client has not seen that store_fd yet. Requires call_mutex_.
  Result<Mapping> MapStoreFd(int store_fd, int64_t mmap_size);
  Result<ObjectEntry> EntryFromSpec(const fb::PlasmaObjectSpec& spec, const Mapping& mapping,
                                    const ObjectId& id) const;
  // Requires mutex_.
  ObjectBuffer MakeBufferLocked(const ObjectId& id, ObjectEntry* entry);
  void DropReferenceLocked(const ObjectId& id);

  const std::string socket_path_;
  const ConnectOptions options_;
  int64_t capacity_ = 0;

  std::mutex call_mutex_;
  std::unordered_map<int, Mapping> mappings_;  // by the store's fd number; call_mutex_

  // The manager connection, opened at the first Fetch and kept; Fetch calls
  // are serialized on it like store calls are on conn_.
  std::mutex manager_mutex_;
  int manager_conn_ = -1;

  mutable std::mutex mutex_;
  int conn_ = -1;
  Status broken_;  // why conn_ is unusable, once it is
  std::unordered_map<ObjectId, ObjectEntry> objects_;
};

// ---------------------------------------------------------------------------
// ObjectBuffer

ObjectBuffer::~ObjectBuffer() { Release(); }

ObjectBuffer::ObjectBuffer(ObjectBuffer&& other) noexcept { *this = std::move(other); }

ObjectBuffer& ObjectBuffer::operator=(ObjectBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    impl_ = std::move(other.impl_);
    id_ = other.id_;
    data_ = other.data_;
    data_size_ = other.data_size_;
    metadata_ = other.metadata_;
    metadata_size_ = other.metadata_size_;
    other.impl_.reset();
    other.data_ = other.metadata_ = nullptr;
    other.data_size_ = other.metadata_size_ = 0;
  }
  return *this;
}

void ObjectBuffer::Release() {
  if (impl_ != nullptr) {
    // Keep the impl (and so the mapping) alive until the release is sent.
    std::shared_ptr<ClientImpl> impl = std::move(impl_);
    impl->ReleaseObject(id_);
  }
  data_ = metadata_ = nullptr;
  data_size_ = metadata_size_ = 0;
}

// ---------------------------------------------------------------------------
// ClientImpl: plumbing

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

template <typename T>
Status ClientImpl::SendLocked(fb::MessageType type, const T& message) {
  PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
  Status sent = WriteMessage(conn_, type, message);
  if (!sent.ok()) {
    Status why =
        Prefixed(std::string("send ") + MessageTypeName(type) + " to the " + Where(), sent);
    FailLocked(why);
    return why;
  }
  return Status::OK();
}

template <typename T>
Status ClientImpl::Receive(fb::MessageType type, T* message) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
    fd = conn_;
  }
  Status read = ReadMessage(fd, type, message);
  if (!read.ok()) {
    // The stream's position is unknown now; nothing more can be read from it.
    return Fail(Prefixed(std::string("read ") + MessageTypeName(type) + " from the " + Where(),
                         read));
  }
  return Status::OK();
}

template <typename Request, typename Reply>
Status ClientImpl::Exchange(fb::MessageType request_type, const Request& request,
                            fb::MessageType reply_type, Reply* reply) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PLASMA_RETURN_NOT_OK(SendLocked(request_type, request));
  }
  return Receive(reply_type, reply);
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

// ---------------------------------------------------------------------------
// ClientImpl: operations

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

Result<int> ClientImpl::Subscribe() {
  std::lock_guard<std::mutex> call(call_mutex_);
  std::lock_guard<std::mutex> lock(mutex_);
  PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Status::FromErrno("subscribe: socketpair", errno);
  }
  int ours = fds[0], stores = fds[1];
  // The store must never block writing a notification to a slow subscriber.
  int flags = fcntl(stores, F_GETFL, 0);
  if (flags < 0 || fcntl(stores, F_SETFL, flags | O_NONBLOCK) != 0) {
    int err = errno;
    close(ours);
    close(stores);
    return Status::FromErrno("subscribe: make the store's end non-blocking", err);
  }
  // Request and fd go out together under mutex_: no Release may come between.
  Status sent = SendLocked(fb::MessageType::PlasmaSubscribeRequest, fb::PlasmaSubscribeRequestT{});
  if (sent.ok()) {
    sent = SendFd(conn_, stores);
    if (!sent.ok()) {
      sent = Prefixed("subscribe: pass the notification socket to the " + Where(), sent);
      FailLocked(sent);
    }
  }
  close(stores);
  if (!sent.ok()) {
    close(ours);
    return sent;
  }
  return ours;
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

namespace {

// The manager answers by timeout_ms itself; past that plus a grace period it
// is presumed hung, so the caller gets an error instead of waiting forever.
constexpr int64_t kManagerGraceMs = 10000;

Status WaitForManagerReply(int fd, int64_t timeout_ms) {
  if (timeout_ms < 0) return Status::OK();  // the caller asked to wait indefinitely
  int64_t wait_ms = std::min<int64_t>(timeout_ms + kManagerGraceMs, std::numeric_limits<int>::max());
  pollfd readable{fd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&readable, 1, int(wait_ms));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return Status::FromErrno("poll the manager connection", errno);
  if (ready == 0) {
    return Status::TimedOut("the manager did not answer within " + std::to_string(wait_ms) +
                            " ms (fetch timeout plus " + std::to_string(kManagerGraceMs) +
                            " ms grace)");
  }
  return Status::OK();
}

}  // namespace

Status ClientImpl::Fetch(const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  if (options_.manager_socket.empty()) {
    return Status::Unavailable(
        "no manager socket configured (set ConnectOptions::manager_socket to the node "
        "manager's Unix socket to fetch objects from other nodes)");
  }
  fb::ManagerFetchRequestT request;
  for (const ObjectId& id : ids) request.object_ids.push_back(id.Binary());
  request.timeout_ms = timeout_ms;
  fb::ManagerFetchReplyT reply;
  std::lock_guard<std::mutex> lock(manager_mutex_);
  Status status;
  // A kept connection may have gone stale (the manager restarted): one retry
  // on a fresh connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = manager_conn_ >= 0;
    if (!reused) {
      auto connected = ConnectUnixSocket(options_.manager_socket);
      if (!connected.ok()) {
        return Status::Unavailable("cannot reach the manager: " + connected.status().message());
      }
      manager_conn_ = *connected;
    }
    status = WriteMessage(manager_conn_, fb::MessageType::ManagerFetchRequest, request);
    if (status.ok()) status = WaitForManagerReply(manager_conn_, timeout_ms);
    if (status.IsTimedOut()) {
      close(manager_conn_);  // a late reply must not answer the next Fetch
      manager_conn_ = -1;
      break;  // not retried: the manager is there, only not answering
    }
    if (status.ok()) {
      status = ReadMessage(manager_conn_, fb::MessageType::ManagerFetchReply, &reply);
    }
    if (status.ok()) break;
    close(manager_conn_);
    manager_conn_ = -1;
    if (!reused) break;
  }
  if (!status.ok()) {
    return Status(status.code(), "fetch via manager at " + options_.manager_socket + ": " +
                                     status.message());
  }
  if (reply.object_ids.size() != ids.size() || reply.status_codes.size() != ids.size() ||
      reply.messages.size() != ids.size()) {
    return Status::ProtocolError("manager at " + options_.manager_socket +
                                 " answered a fetch of " + std::to_string(ids.size()) +
                                 " objects with " + std::to_string(reply.status_codes.size()));
  }
  // The first failure's code speaks for the call; the message lists each
  // failure (every one names its object) and how many arrived.
  size_t failed = 0;
  Status first;
  std::string reasons;
  for (size_t i = 0; i < ids.size(); ++i) {
    int code = reply.status_codes[i];
    if (code == 0) continue;
    if (std::string(StatusCodeName(static_cast<StatusCode>(code))) == "Unknown") {
      return Status::ProtocolError("manager at " + options_.manager_socket +
                                   " answered the fetch of " + ids[i].Hex() +
                                   " with unknown status code " + std::to_string(code));
    }
    if (failed++ == 0) first = Status(static_cast<StatusCode>(code), reply.messages[i]);
    // Each message names its id; a long batch lists the first few.
    if (failed <= kFetchFailuresListed) reasons += (failed > 1 ? "; " : "") + reply.messages[i];
  }
  if (failed == 0) return Status::OK();
  if (ids.size() == 1) return first;
  if (failed > kFetchFailuresListed) {
    reasons += "; and " + std::to_string(failed - kFetchFailuresListed) + " more";
  }
  return Status(first.code(), std::to_string(failed) + " of " + std::to_string(ids.size()) +
                                  " objects could not be fetched (" +
                                  std::to_string(ids.size() - failed) + " arrived): " + reasons);
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

// ---------------------------------------------------------------------------
// Client

Client::Client(std::shared_ptr<ClientImpl> impl) : impl_(std::move(impl)) {}

// Buffers still alive keep the connection (and their references) until they go.
Client::~Client() = default;

Result<std::shared_ptr<Client>> Client::Connect(const std::string& store_socket,
                                                const ConnectOptions& options) {
  auto impl = std::make_shared<ClientImpl>(store_socket, options);
  PLASMA_RETURN_NOT_OK(impl->Connect());
  return std::shared_ptr<Client>(new Client(std::move(impl)));
}

int64_t Client::memory_capacity() const { return impl_->memory_capacity(); }

Result<ObjectBuffer> Client::Create(const ObjectId& id, int64_t data_size,
                                    const std::string& metadata, bool evict_if_full) {
  return impl_->Create(id, data_size, reinterpret_cast<const uint8_t*>(metadata.data()),
                       int64_t(metadata.size()), evict_if_full);
}

Result<ObjectBuffer> Client::CreateForFill(const ObjectId& id, int64_t data_size,
                                           int64_t metadata_size, bool evict_if_full) {
  return impl_->Create(id, data_size, nullptr, metadata_size, evict_if_full);
}

std::vector<Result<ObjectBuffer>> Client::CreateForFillMany(const std::vector<FillSpec>& specs,
                                                            bool evict_if_full) {
  return impl_->CreateForFillMany(specs, evict_if_full);
}

Status Client::Seal(const ObjectId& id) { return impl_->Seal(id); }

std::vector<Status> Client::SealMany(const std::vector<ObjectId>& ids,
                                     const std::vector<std::string>& digests) {
  return impl_->SealMany(ids, digests);
}

Status Client::Seal(const ObjectId& id, const std::string& digest) {
  return impl_->Seal(id, &digest);
}

Status Client::Abort(const ObjectId& id) { return impl_->Abort(id); }

Status Client::CreateAndSeal(const ObjectId& id, const std::string& data,
                             const std::string& metadata, bool evict_if_full) {
  return impl_->CreateAndSeal(id, data, metadata, evict_if_full);
}

Status Client::CreateAndSealBatch(const std::vector<ObjectId>& ids,
                                  const std::vector<std::string>& data,
                                  const std::vector<std::string>& metadata, bool evict_if_full) {
  return impl_->CreateAndSealBatch(ids, data, metadata, evict_if_full);
}

Result<std::vector<ObjectBuffer>> Client::Get(const std::vector<ObjectId>& ids,
                                              int64_t timeout_ms) {
  return impl_->Get(ids, timeout_ms);
}

Result<bool> Client::Contains(const ObjectId& id) { return impl_->Contains(id); }

Status Client::Delete(const ObjectId& id) { return impl_->Delete({id}, nullptr); }

Status Client::Delete(const std::vector<ObjectId>& ids, std::vector<Status>* per_object) {
  return impl_->Delete(ids, per_object);
}

Result<std::vector<ObjectInfo>> Client::List() { return impl_->List(); }

Result<int64_t> Client::Evict(int64_t num_bytes) { return impl_->Evict(num_bytes); }

Status Client::Refresh(const std::vector<ObjectId>& ids) { return impl_->Refresh(ids); }

Status Client::SetClientOptions(const std::string& client_name, int64_t output_memory_quota) {
  return impl_->SetClientOptions(client_name, output_memory_quota);
}

Result<std::string> Client::DebugString() { return impl_->DebugString(); }

Result<std::string> Client::Hash(const ObjectId& id) {
  PLASMA_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, impl_->List());
  for (const ObjectInfo& info : objects) {
    if (info.id != id) continue;
    if (!info.sealed) {
      return Status::ObjectNotSealed("hash of object " + id.Hex() + ": not sealed yet");
    }
    return info.digest;
  }
  return Status::ObjectNotFound("hash of object " + id.Hex() + ": not in the store");
}

Result<int> Client::Subscribe() { return impl_->Subscribe(); }

Result<ArenaRegion> Client::MapArena() { return impl_->MapArena(); }

Result<std::vector<ObjectNotification>> Client::ReadNotification(int notification_fd) {
  int64_t size;  // native byte order, as Plasma 11 writes it
  PLASMA_RETURN_NOT_OK(ReadNotificationBytes(notification_fd, &size, sizeof(size)));
  if (size <= 0 || size > kMaxNotificationBytes) {
    return Status::ProtocolError("notification of " + std::to_string(size) +
                                 " bytes (expected 1.." + std::to_string(kMaxNotificationBytes) +
                                 ")");
  }
  std::vector<uint8_t> payload(static_cast<size_t>(size));
  PLASMA_RETURN_NOT_OK(ReadNotificationBytes(notification_fd, payload.data(), payload.size()));
  fb::PlasmaNotificationT message;
  PLASMA_RETURN_NOT_OK(DecodeMessage(payload.data(), payload.size(), &message));
  std::vector<ObjectNotification> notifications;
  notifications.reserve(message.object_info.size());
  for (const auto& info : message.object_info) {
    if (info == nullptr) continue;
    auto id = ObjectId::FromBinary(info->object_id);
    if (!id.ok()) return Status::ProtocolError("notification: " + id.status().message());
    ObjectNotification n;
    n.id = *id;
    n.is_deletion = info->is_deletion;
    n.data_size = info->data_size;
    n.metadata_size = info->metadata_size;
    n.digest = info->digest;
    notifications.push_back(n);
  }
  return notifications;
}

Status Client::Fetch(const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  return impl_->Fetch(ids, timeout_ms);
}

Status Client::Disconnect() { return impl_->Disconnect(); }

}  // namespace plasma
