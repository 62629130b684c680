// LocalStore: the node's store as the manager sees it. Two implementations:
// IpcStore (plasma/manager/ipc_store.h) talks to a separate
// plasma-store-server over its Unix socket, each call a message;
// InProcessStore (plasma/node/in_process_store.h) is a store hosted in the
// manager's own process and event loop, each call a function call.
// Everything here runs on the manager's loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plasma/client/client.h"  // ArenaRegion, FillSpec, ObjectNotification
#include "plasma/common/object_id.h"
#include "plasma/common/status.h"

namespace plasma {

// An object the manager holds a reference to: a view of its bytes in the
// arena. The reference goes with the last move of it (or Release()).
class StoredObject {
 public:
  // What keeps the object referenced in the store; dropping it releases.
  class Reference {
   public:
    virtual ~Reference() = default;
  };

  StoredObject() = default;
  StoredObject(const ObjectId& id, uint8_t* data, int64_t data_size, uint8_t* metadata,
               int64_t metadata_size, std::unique_ptr<Reference> reference)
      : id_(id),
        data_(data),
        data_size_(data_size),
        metadata_(metadata),
        metadata_size_(metadata_size),
        reference_(std::move(reference)) {}
  StoredObject(StoredObject&&) noexcept = default;
  StoredObject& operator=(StoredObject&&) noexcept = default;

  const ObjectId& id() const { return id_; }
  uint8_t* data() const { return data_; }
  int64_t data_size() const { return data_size_; }
  uint8_t* metadata() const { return metadata_; }
  int64_t metadata_size() const { return metadata_size_; }
  bool valid() const { return reference_ != nullptr; }
  void Release() { reference_.reset(); }

 private:
  ObjectId id_;
  uint8_t* data_ = nullptr;
  int64_t data_size_ = 0;
  uint8_t* metadata_ = nullptr;
  int64_t metadata_size_ = 0;
  std::unique_ptr<Reference> reference_;
};

class LocalStore {
 public:
  using EventsCallback = std::function<void(const std::vector<ObjectNotification>&)>;
  using LostCallback = std::function<void(const Status&)>;

  virtual ~LocalStore() = default;

  // "in-process" or "store at <socket>", for log lines.
  virtual std::string Describe() const = 0;
  virtual int64_t capacity() const = 0;
  // The arena as mapped in this process (registered once with the transport).
  virtual Result<ArenaRegion> MapArena() = 0;

  // Unsealed objects with room for data then metadata, one result per spec.
  virtual std::vector<Result<StoredObject>> CreateForFillMany(const std::vector<FillSpec>& specs) = 0;
  // Seals with the digests given (empty: computed by the store's side).
  virtual std::vector<Status> SealMany(const std::vector<ObjectId>& ids,
                                       const std::vector<std::string>& digests) = 0;
  // Objects whose bytes are all here (an inline transfer), created and
  // sealed in one step: over IPC one round trip for all of them instead of
  // a Create and a Seal each. One status per object.
  virtual std::vector<Status> CreateAndSealMany(const std::vector<WholeObject>& objects) = 0;
  // Discards an unsealed object this manager created; every StoredObject of
  // it must be released first.
  virtual Status Abort(const ObjectId& id) = 0;
  virtual Result<bool> Contains(const ObjectId& id) = 0;
  // Sealed objects, now (no waiting); an entry is !valid() if absent.
  virtual Result<std::vector<StoredObject>> Get(const std::vector<ObjectId>& ids) = 0;

  // Seal and deletion events, first for every object already sealed. on_lost
  // is called once if the events stop for good (the store went away).
  // on_events may run inside a store call (in-process: as the seal or
  // eviction happens), so it must not call back into the store.
  virtual Status Subscribe(EventsCallback on_events, LostCallback on_lost) = 0;
  // Delivers events that happened but were not delivered yet: a client that
  // sealed (or deleted) an object and then asks for it must find it so.
  virtual void DeliverPendingEvents() = 0;
};

}  // namespace plasma
