// InProcessStore: the one-process layout. The manager and the store share a
// process and an event loop: the manager's Create, Seal, Abort and Get are
// function calls into the Store, its arena is this process's own mapping,
// and seal and delete events are delivered as they happen, with no
// notification socket. Local clients still reach the store on its Unix
// socket, exactly as with a separate plasma-store-server.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "plasma/manager/local_store.h"
#include "plasma/store/store.h"

namespace plasma {

struct StoreClient;

class InProcessStore : public LocalStore {
 public:
  // `store` must outlive this object (and every StoredObject it handed out).
  explicit InProcessStore(Store* store);
  ~InProcessStore() override;

  std::string Describe() const override { return "store in this process"; }
  int64_t capacity() const override { return store_->capacity(); }
  Result<ArenaRegion> MapArena() override;
  std::vector<Result<StoredObject>> CreateForFillMany(const std::vector<FillSpec>& specs) override;
  std::vector<Status> SealMany(const std::vector<ObjectId>& ids,
                               const std::vector<std::string>& digests) override;
  std::vector<Status> CreateAndSealMany(const std::vector<WholeObject>& objects) override;
  Status Abort(const ObjectId& id) override;
  Result<bool> Contains(const ObjectId& id) override;
  Result<std::vector<StoredObject>> Get(const std::vector<ObjectId>& ids) override;
  Status Subscribe(EventsCallback on_events, LostCallback on_lost) override;
  void DeliverPendingEvents() override {}  // events are never pending

 private:
  class Reference;
  StoredObject Hold(ObjectEntry* entry);
  void Drop(const ObjectId& id);

  Store* store_;
  // The store counts one reference per client; the manager may hold an
  // object several times (served to two peers), so it counts its own.
  std::unique_ptr<StoreClient> client_;
  std::unordered_map<ObjectId, int> held_;
};

}  // namespace plasma
