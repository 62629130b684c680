// IpcStore: the two-process layout. The store is a separate
// plasma-store-server (ours or Arrow Plasma 11's); every call is a message
// on its Unix socket and events arrive on a notification socket.
#pragma once

#include <memory>
#include <string>

#include "plasma/client/client.h"
#include "plasma/common/event_loop.h"
#include "plasma/manager/local_store.h"

namespace plasma {

class IpcStore : public LocalStore {
 public:
  static Result<std::unique_ptr<IpcStore>> Connect(EventLoop* loop, const std::string& socket);
  ~IpcStore() override;

  std::string Describe() const override { return "store at " + socket_; }
  int64_t capacity() const override { return client_->memory_capacity(); }
  Result<ArenaRegion> MapArena() override { return client_->MapArena(); }
  std::vector<Result<StoredObject>> CreateForFillMany(const std::vector<FillSpec>& specs) override;
  std::vector<Status> SealMany(const std::vector<ObjectId>& ids,
                               const std::vector<std::string>& digests) override {
    return client_->SealMany(ids, digests);
  }
  std::vector<Status> CreateAndSealMany(const std::vector<WholeObject>& objects) override {
    return client_->CreateAndSealMany(objects);
  }
  Status Abort(const ObjectId& id) override { return client_->Abort(id); }
  Result<bool> Contains(const ObjectId& id) override { return client_->Contains(id); }
  Result<std::vector<StoredObject>> Get(const std::vector<ObjectId>& ids) override;
  Status Subscribe(EventsCallback on_events, LostCallback on_lost) override;
  void DeliverPendingEvents() override;

 private:
  IpcStore(EventLoop* loop, std::string socket, std::shared_ptr<Client> client)
      : loop_(loop), socket_(std::move(socket)), client_(std::move(client)) {}
  void ReadOneNotification();

  EventLoop* loop_;
  std::string socket_;
  std::shared_ptr<Client> client_;
  int notification_fd_ = -1;
  EventsCallback on_events_;
  LostCallback on_lost_;
};

}  // namespace plasma
