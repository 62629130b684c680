#include "plasma/common/frame_connection.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

namespace plasma {

FrameConnection::FrameConnection(int fd, uint64_t max_payload)
    : fd_(fd), reader_(max_payload) {
  description_ = "fd " + std::to_string(fd);
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0) {
    description_ += ", pid " + std::to_string(credentials.pid);
  }
}

FrameConnection::~FrameConnection() {
  for (int fd : received_fds_) close(fd);
  close(fd_);
}

Status FrameConnection::ReadAvailable() {
  constexpr size_t kReadChunk = 64 * 1024;
  while (true) {
    uint8_t* space = reader_.WritableSpace(kReadChunk);
    iovec iov{space, kReadChunk};
    // Room for a few fds: a client passes one at a time, but must not be able
    // to make us drop (and leak) descriptors by sending more.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::OK();
      return Status::FromErrno("read from client", errno);
    }
    for (int received : ReceivedFds(&msg)) received_fds_.push_back(received);
    if (n == 0) return Status::IOError("client closed the connection");
    reader_.CommitWritten(size_t(n));
    if (size_t(n) < kReadChunk) return Status::OK();
  }
}

int FrameConnection::PopReceivedFd() {
  if (received_fds_.empty()) return -1;
  int fd = received_fds_.front();
  received_fds_.pop_front();
  return fd;
}

void FrameConnection::QueueMessage(fb::MessageType type,
                                    flatbuffers::FlatBufferBuilder& builder) {
  Output item;
  item.bytes.resize(kFrameHeaderSize + builder.GetSize());
  EncodeFrameHeader(type, builder.GetSize(), item.bytes.data());
  std::memcpy(item.bytes.data() + kFrameHeaderSize, builder.GetBufferPointer(),
              builder.GetSize());
  pending_output_bytes_ += item.bytes.size();
  output_.push_back(std::move(item));
}

void FrameConnection::QueueFd(int fd) {
  Output item;
  item.fd_to_pass = fd;
  output_.push_back(std::move(item));
}

Status FrameConnection::Flush() {
  while (!output_.empty()) {
    Output& item = output_.front();
    if (item.fd_to_pass >= 0) {
      ssize_t n = SendFdMessage(fd_, item.fd_to_pass, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::OK();
        return Status::FromErrno("pass fd to client", errno);
      }
      output_.pop_front();
      continue;
    }
    // Every message queued up to the next fd goes out in one call: replies
    // to pipelined requests cost one system call, not one each.
    constexpr int kMaxIovecs = 64;
    iovec iov[kMaxIovecs];
    int count = 0;
    for (auto it = output_.begin(); it != output_.end() && count < kMaxIovecs; ++it) {
      if (it->fd_to_pass >= 0) break;
      iov[count].iov_base = it->bytes.data() + it->sent;
      iov[count].iov_len = it->bytes.size() - it->sent;
      ++count;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(count);
    ssize_t n = sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::OK();
      return Status::FromErrno("write to client", errno);
    }
    size_t written = size_t(n);
    pending_output_bytes_ -= written;
    while (written > 0) {
      Output& sent = output_.front();
      size_t left = sent.bytes.size() - sent.sent;
      if (written < left) {
        sent.sent += written;
        break;
      }
      written -= left;
      output_.pop_front();
    }
  }
  return Status::OK();
}

}  // namespace plasma
