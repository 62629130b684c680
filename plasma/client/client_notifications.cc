// Notifications: Subscribe hands the store one end of a socket pair, on
// which it writes every seal and deletion; ReadNotification decodes them.
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

// Notifications are a handful of ObjectInfos; anything huge is a broken peer.
constexpr int64_t kMaxNotificationBytes = int64_t(64) << 20;

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

}  // namespace plasma
