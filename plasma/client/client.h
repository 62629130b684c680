// plasma::Client — the C++ client of a Plasma store (and, for Fetch, of the
// node's manager). Wire-compatible with Apache Arrow Plasma 11 stores.
//
// Errors are values (plasma::Status / plasma::Result). Buffers release
// themselves: an ObjectBuffer keeps the object referenced in the store until
// the last copy of it is destroyed. A Client is safe to use from several
// threads (calls are serialized on its one store connection).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plasma/common/object_id.h"
#include "plasma/common/status.h"

namespace plasma {

class Client;
class ClientImpl;

// A mapped object: data and metadata are views into the store's shared memory.
// Created objects are writable until sealed; gotten objects are read-only by
// contract (the mapping is shared, so writing would corrupt other readers).
class ObjectBuffer {
 public:
  ObjectBuffer() = default;
  ~ObjectBuffer();
  ObjectBuffer(ObjectBuffer&&) noexcept;
  ObjectBuffer& operator=(ObjectBuffer&&) noexcept;
  ObjectBuffer(const ObjectBuffer&) = delete;
  ObjectBuffer& operator=(const ObjectBuffer&) = delete;

  const ObjectId& id() const { return id_; }
  uint8_t* data() const { return data_; }
  int64_t data_size() const { return data_size_; }
  uint8_t* metadata() const { return metadata_; }
  int64_t metadata_size() const { return metadata_size_; }
  bool valid() const { return impl_ != nullptr; }
  // Drops this buffer's reference now instead of at destruction.
  void Release();

 private:
  friend class ClientImpl;
  std::shared_ptr<ClientImpl> impl_;
  ObjectId id_;
  uint8_t* data_ = nullptr;
  int64_t data_size_ = 0;
  uint8_t* metadata_ = nullptr;
  int64_t metadata_size_ = 0;
};

// One object for CreateForFillMany.
struct FillSpec {
  ObjectId id;
  int64_t data_size = 0;
  int64_t metadata_size = 0;
};

// One object for CreateAndSealMany: its data then its metadata, contiguous
// at `bytes` (not copied before the call returns).
struct WholeObject {
  ObjectId id;
  const uint8_t* bytes = nullptr;
  int64_t data_size = 0;
  int64_t metadata_size = 0;
  std::string digest;  // empty: computed here
};

struct ObjectInfo {
  ObjectId id;
  int64_t data_size = 0;
  int64_t metadata_size = 0;
  int32_t ref_count = 0;
  int64_t create_time = 0;         // unix seconds
  int64_t construct_duration = 0;  // seconds, -1 while unsealed
  bool sealed = false;
  std::string digest;              // 8 bytes once sealed
};

// One event on a Subscribe socket: an object sealed, or deleted/evicted.
struct ObjectNotification {
  ObjectId id;
  bool is_deletion = false;
  int64_t data_size = 0;
  int64_t metadata_size = 0;
  std::string digest;  // the seal digest (8 bytes); empty for deletions
};

// The store's shared-memory arena as mapped in this process: every object's
// data and metadata lie inside [base, base + size).
struct ArenaRegion {
  uint8_t* base = nullptr;
  size_t size = 0;
};

struct ConnectOptions {
  // Unix socket of the node's manager; only needed for Fetch.
  std::string manager_socket;
  // Connection attempts while the store is still starting, 100 ms apart.
  int connect_attempts = 50;
};

class Client {
 public:
  static Result<std::shared_ptr<Client>> Connect(const std::string& store_socket,
                                                 const ConnectOptions& options = {});
  ~Client();

  int64_t memory_capacity() const;

  // Create: a writable buffer of data_size bytes; metadata (may be empty) is
  // copied in. The object is invisible to others until Seal. evict_if_full
  // lets the store evict unreferenced sealed objects to make room.
  Result<ObjectBuffer> Create(const ObjectId& id, int64_t data_size,
                              const std::string& metadata = "", bool evict_if_full = true);
  // CreateForFill: like Create, but leaves the metadata_size bytes of metadata
  // (at metadata(), right after the data) for the caller to write, e.g. a
  // transfer that receives data and metadata in one piece.
  Result<ObjectBuffer> CreateForFill(const ObjectId& id, int64_t data_size,
                                     int64_t metadata_size, bool evict_if_full = true);
  // Many CreateForFills pipelined: every request is written before any reply
  // is read, so the store handles them in one go (one wake-up, not one per
  // object). One result per spec, in order; a failed one leaves the others.
  std::vector<Result<ObjectBuffer>> CreateForFillMany(const std::vector<FillSpec>& specs,
                                                      bool evict_if_full = true);
  // Seal computes the digest (xxh64 of data then metadata) and publishes the
  // object. The Create buffer stays valid (and referenced) until released.
  Status Seal(const ObjectId& id);
  // Seal with a digest computed elsewhere — by the node the bytes were copied
  // from — which saves a pass over the object.
  Status Seal(const ObjectId& id, const std::string& digest);
  // Many Seals pipelined likewise; digests[i] empty (or missing): computed here.
  std::vector<Status> SealMany(const std::vector<ObjectId>& ids,
                               const std::vector<std::string>& digests);
  // Abort discards an unsealed object this client created. Its memory is freed
  // at once, so every buffer of it must be released first (InvalidArgument
  // otherwise).
  Status Abort(const ObjectId& id);
  Status CreateAndSeal(const ObjectId& id, const std::string& data,
                       const std::string& metadata = "", bool evict_if_full = true);
  Status CreateAndSealBatch(const std::vector<ObjectId>& ids,
                            const std::vector<std::string>& data,
                            const std::vector<std::string>& metadata,
                            bool evict_if_full = true);
  // Many CreateAndSeals pipelined (the store is woken once for all of them):
  // one status per object, unlike the all-or-nothing batch.
  std::vector<Status> CreateAndSealMany(const std::vector<WholeObject>& objects,
                                        bool evict_if_full = true);

  // Get waits up to timeout_ms (-1: forever) for each id to be sealed. The
  // result has one entry per id, in order; an entry is !valid() if that
  // object was not available in time.
  Result<std::vector<ObjectBuffer>> Get(const std::vector<ObjectId>& ids, int64_t timeout_ms);
  Result<bool> Contains(const ObjectId& id);
  // Delete: ObjectNotFound / ObjectInUse / ObjectNotSealed are reported; an
  // in-use or unsealed object is deleted once its last reference goes.
  Status Delete(const ObjectId& id);
  Status Delete(const std::vector<ObjectId>& ids, std::vector<Status>* per_object);
  Result<std::vector<ObjectInfo>> List();
  // Evicts at least num_bytes of unreferenced sealed objects; returns bytes freed.
  Result<int64_t> Evict(int64_t num_bytes);
  // Moves ids to the most-recently-used end of the eviction order.
  Status Refresh(const std::vector<ObjectId>& ids);
  // Per-client output memory quota (bytes) and a name for debug output.
  Status SetClientOptions(const std::string& client_name, int64_t output_memory_quota);
  Result<std::string> DebugString();
  // Digest the store recorded at seal time.
  Result<std::string> Hash(const ObjectId& id);

  // Maps the store's arena now if this client has not yet (it normally maps
  // it at the first Create or Get), e.g. to register it once with a NIC.
  Result<ArenaRegion> MapArena();

  // Subscribe returns a socket fd on which notifications arrive; read them
  // with ReadNotification (blocking). The caller owns and closes the fd.
  Result<int> Subscribe();
  static Result<std::vector<ObjectNotification>> ReadNotification(int notification_fd);

  // Asks this node's manager to bring ids into the local store from other
  // nodes, waiting up to timeout_ms. Needs ConnectOptions::manager_socket.
  // Unavailable without a manager socket or when the manager cannot be
  // reached; otherwise the manager's verdict (e.g. TimedOut naming the id).
  // A manager that has not answered 10 s after timeout_ms (a hung manager)
  // gives TimedOut too, and the connection is dropped.
  Status Fetch(const std::vector<ObjectId>& ids, int64_t timeout_ms);

  Status Disconnect();

 private:
  explicit Client(std::shared_ptr<ClientImpl> impl);
  std::shared_ptr<ClientImpl> impl_;
};

}  // namespace plasma
