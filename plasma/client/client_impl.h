// ClientImpl: plasma::Client's state and its exchanges with the store, the
// Plasma 11 client protocol over one Unix socket. Its operations live in
// client_object_creation.cc, client_object_access.cc, client_notifications.cc
// and client_fetch.cc; its connection and object table in client_impl.cc.
//
// Locking: call_mutex_ serializes request/reply exchanges (a reply is read
// with only call_mutex_ held, so a Get that waits does not block buffer
// releases). mutex_ guards the object table and every write to the socket:
// a Release written by a buffer's destructor can never interleave with, or be
// reordered against, the check-then-send of a Get. Lock order: call_mutex_,
// then mutex_. ObjectBuffers are never destroyed while mutex_ is held, since
// their destructors take it.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "plasma/client/client.h"
#include "plasma/common/protocol.h"

namespace plasma {

namespace client_internal {

// A failure, its message prefixed with what was being done.
inline Status Prefixed(const std::string& prefix, const Status& status) {
  if (status.ok()) return status;
  return Status(status.code(), prefix + ": " + status.message());
}

}  // namespace client_internal

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
  std::vector<Status> CreateAndSealMany(const std::vector<WholeObject>& objects,
                                        bool evict_if_full);
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
  // Writes one request already encoded (e.g. built straight from the
  // caller's bytes, without an object-API copy). Requires mutex_.
  Status SendEncodedLocked(fb::MessageType type, const flatbuffers::FlatBufferBuilder& builder);
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

template <typename T>
Status ClientImpl::SendLocked(fb::MessageType type, const T& message) {
  PLASMA_RETURN_NOT_OK(CheckConnectedLocked());
  flatbuffers::FlatBufferBuilder builder;
  EncodeMessage(message, &builder);
  return SendEncodedLocked(type, builder);
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
    return Fail(client_internal::Prefixed(
        std::string("read ") + MessageTypeName(type) + " from the " + Where(), read));
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

}  // namespace plasma
