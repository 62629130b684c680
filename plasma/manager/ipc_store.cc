#include "plasma/manager/ipc_store.h"

#include <poll.h>
#include <unistd.h>

namespace plasma {

namespace {
// The client's buffer is the reference: its last copy releases the object.
class BufferReference : public StoredObject::Reference {
 public:
  explicit BufferReference(ObjectBuffer buffer) : buffer_(std::move(buffer)) {}

 private:
  ObjectBuffer buffer_;
};

StoredObject FromBuffer(ObjectBuffer buffer) {
  if (!buffer.valid()) return StoredObject();
  ObjectId id = buffer.id();
  uint8_t* data = buffer.data();
  int64_t data_size = buffer.data_size();
  uint8_t* metadata = buffer.metadata();
  int64_t metadata_size = buffer.metadata_size();
  return StoredObject(id, data, data_size, metadata, metadata_size,
                      std::make_unique<BufferReference>(std::move(buffer)));
}
}  // namespace

Result<std::unique_ptr<IpcStore>> IpcStore::Connect(EventLoop* loop, const std::string& socket) {
  PLASMA_ASSIGN_OR_RETURN(auto client, Client::Connect(socket));
  return std::unique_ptr<IpcStore>(new IpcStore(loop, socket, std::move(client)));
}

IpcStore::~IpcStore() {
  if (notification_fd_ >= 0) {
    loop_->Unwatch(notification_fd_);
    close(notification_fd_);
  }
}

std::vector<Result<StoredObject>> IpcStore::CreateForFillMany(const std::vector<FillSpec>& specs) {
  std::vector<Result<ObjectBuffer>> created = client_->CreateForFillMany(specs);
  std::vector<Result<StoredObject>> objects;
  objects.reserve(created.size());
  for (auto& buffer : created) {
    if (buffer.ok()) {
      objects.emplace_back(FromBuffer(std::move(buffer).value()));
    } else {
      objects.emplace_back(buffer.status());
    }
  }
  return objects;
}

Result<std::vector<StoredObject>> IpcStore::Get(const std::vector<ObjectId>& ids) {
  PLASMA_ASSIGN_OR_RETURN(auto buffers, client_->Get(ids, 0));
  std::vector<StoredObject> objects;
  objects.reserve(buffers.size());
  for (auto& buffer : buffers) objects.push_back(FromBuffer(std::move(buffer)));
  return objects;
}

Status IpcStore::Subscribe(EventsCallback on_events, LostCallback on_lost) {
  on_events_ = std::move(on_events);
  on_lost_ = std::move(on_lost);
  PLASMA_ASSIGN_OR_RETURN(notification_fd_, client_->Subscribe());
  return loop_->Watch(notification_fd_, EPOLLIN, [this](uint32_t) { DeliverPendingEvents(); });
}

void IpcStore::ReadOneNotification() {
  auto notifications = Client::ReadNotification(notification_fd_);
  if (!notifications.ok()) {
    loop_->Unwatch(notification_fd_);
    close(notification_fd_);
    notification_fd_ = -1;
    on_lost_(notifications.status());
    return;
  }
  on_events_(*notifications);
}

// Handles every notification already waiting (never blocks when none is: a
// fetch request may have read them first).
void IpcStore::DeliverPendingEvents() {
  pollfd readable{notification_fd_, POLLIN, 0};
  while (notification_fd_ >= 0 && poll(&readable, 1, 0) == 1 && (readable.revents & POLLIN)) {
    ReadOneNotification();
  }
}

}  // namespace plasma
