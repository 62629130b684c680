#include "plasma/common/protocol.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace plasma {

const char* MessageTypeName(fb::MessageType type) {
  if (type < fb::MessageType::MIN || type > fb::MessageType::MAX) return "UnknownMessageType";
  return fb::EnumNameMessageType(type);
}

Status ErrorToStatus(fb::PlasmaError error, const std::string& what) {
  switch (error) {
    case fb::PlasmaError::OK: return Status::OK();
    case fb::PlasmaError::ObjectExists: return Status::ObjectExists(what + ": object already exists");
    case fb::PlasmaError::ObjectNotFound: return Status::ObjectNotFound(what + ": object not found");
    case fb::PlasmaError::OutOfMemory: return Status::OutOfMemory(what + ": store out of memory");
    case fb::PlasmaError::ObjectNotSealed: return Status::ObjectNotSealed(what + ": object not sealed");
    case fb::PlasmaError::ObjectInUse: return Status::ObjectInUse(what + ": object in use");
  }
  return Status::ProtocolError(what + ": unknown store error " + std::to_string(int(error)));
}

fb::PlasmaError StatusToError(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return fb::PlasmaError::OK;
    case StatusCode::kObjectExists: return fb::PlasmaError::ObjectExists;
    case StatusCode::kObjectNotFound: return fb::PlasmaError::ObjectNotFound;
    case StatusCode::kOutOfMemory: return fb::PlasmaError::OutOfMemory;
    case StatusCode::kObjectNotSealed: return fb::PlasmaError::ObjectNotSealed;
    case StatusCode::kObjectInUse: return fb::PlasmaError::ObjectInUse;
    default: return fb::PlasmaError::ObjectNotFound;
  }
}

static int64_t LoadLittleEndian64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return static_cast<int64_t>(v);
}

static void StoreLittleEndian64(int64_t value, uint8_t* p) {
  uint64_t v = static_cast<uint64_t>(value);
  for (int i = 0; i < 8; ++i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

Status ParseFrameHeader(const uint8_t* header, fb::MessageType* type, uint64_t* length,
                        uint64_t max_payload) {
  int64_t version = LoadLittleEndian64(header);
  int64_t raw_type = LoadLittleEndian64(header + 8);
  int64_t raw_length = LoadLittleEndian64(header + 16);
  if (version != kProtocolVersion) {
    return Status::ProtocolError("unsupported protocol version " + std::to_string(version) +
                                 " (expected " + std::to_string(kProtocolVersion) + ")");
  }
  if (raw_type < static_cast<int64_t>(fb::MessageType::MIN) ||
      raw_type > static_cast<int64_t>(fb::MessageType::MAX)) {
    return Status::ProtocolError("unknown message type " + std::to_string(raw_type));
  }
  if (raw_length < 0 || static_cast<uint64_t>(raw_length) > max_payload) {
    return Status::ProtocolError("message length " + std::to_string(raw_length) +
                                 " outside [0, " + std::to_string(max_payload) + "]");
  }
  *type = static_cast<fb::MessageType>(raw_type);
  *length = static_cast<uint64_t>(raw_length);
  return Status::OK();
}

void EncodeFrameHeader(fb::MessageType type, uint64_t length, uint8_t* header) {
  StoreLittleEndian64(kProtocolVersion, header);
  StoreLittleEndian64(static_cast<int64_t>(type), header + 8);
  StoreLittleEndian64(static_cast<int64_t>(length), header + 16);
}

Status WriteFully(int fd, const void* data, size_t length) {
  auto* cursor = static_cast<const uint8_t*>(data);
  while (length > 0) {
    ssize_t n = send(fd, cursor, length, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = write(fd, cursor, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write to socket", errno);
    }
    cursor += n;
    length -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status ReadFully(int fd, void* data, size_t length) {
  auto* cursor = static_cast<uint8_t*>(data);
  while (length > 0) {
    ssize_t n = read(fd, cursor, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read from socket", errno);
    }
    if (n == 0) return Status::IOError("connection closed by peer");
    cursor += n;
    length -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status WriteFrame(int fd, fb::MessageType type, const uint8_t* payload, size_t length) {
  // Header and payload in one buffer: one syscall for the small messages that
  // dominate, and no interleaving if a caller ever shares the socket.
  std::vector<uint8_t> frame(kFrameHeaderSize + length);
  EncodeFrameHeader(type, length, frame.data());
  if (length > 0) std::memcpy(frame.data() + kFrameHeaderSize, payload, length);
  return WriteFully(fd, frame.data(), frame.size());
}

Status ReadFrame(int fd, fb::MessageType* type, std::vector<uint8_t>* payload,
                 uint64_t max_payload) {
  uint8_t header[kFrameHeaderSize];
  PLASMA_RETURN_NOT_OK(ReadFully(fd, header, sizeof(header)));
  uint64_t length;
  PLASMA_RETURN_NOT_OK(ParseFrameHeader(header, type, &length, max_payload));
  payload->resize(length);
  return ReadFully(fd, payload->data(), length);
}

ssize_t SendFdMessage(int conn, int fd_to_send, int flags) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&msg);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd_to_send, sizeof(int));
  return sendmsg(conn, &msg, flags | MSG_NOSIGNAL);
}

Status SendFd(int conn, int fd_to_send) {
  while (true) {
    ssize_t n = SendFdMessage(conn, fd_to_send, 0);
    if (n == 1) return Status::OK();
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return Status::FromErrno("send file descriptor", n < 0 ? errno : EPIPE);
  }
}

Result<int> RecvFd(int conn) {
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno("receive file descriptor", errno);
  if (n == 0) return Status::IOError("connection closed while waiting for a file descriptor");
  std::vector<int> fds = ReceivedFds(&msg);
  int found = fds.empty() ? -1 : fds[0];
  bool extra = fds.size() > 1;
  for (size_t i = 1; i < fds.size(); ++i) close(fds[i]);
  if (extra) {
    if (found >= 0) close(found);
    return Status::ProtocolError("peer sent more than one file descriptor");
  }
  if (found < 0) return Status::ProtocolError("expected a file descriptor, got a plain byte");
  return found;
}

std::vector<int> ReceivedFds(msghdr* message) {
  std::vector<int> fds;
  for (cmsghdr* h = CMSG_FIRSTHDR(message); h != nullptr; h = CMSG_NXTHDR(message, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
      fds.push_back(fd);
    }
  }
  return fds;
}

static Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return Status::InvalidArgument("socket path '" + path + "' is empty or longer than " +
                                   std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

Result<int> ConnectUnixSocket(const std::string& path) {
  PLASMA_ASSIGN_OR_RETURN(sockaddr_un address, UnixAddress(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno("connect to " + path, err);
  }
  return fd;
}

Result<int> ConnectUnixSocketRetry(const std::string& path, int attempts, int delay_ms) {
  Result<int> fd = ConnectUnixSocket(path);
  for (int i = 1; i < attempts && !fd.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    fd = ConnectUnixSocket(path);
  }
  return fd;
}

Result<int> ListenUnixSocket(const std::string& path) {
  PLASMA_ASSIGN_OR_RETURN(sockaddr_un address, UnixAddress(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  unlink(path.c_str());  // a stale socket from a previous run
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 128) != 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno("listen on " + path, err);
  }
  return fd;
}

uint8_t* FrameReader::WritableSpace(size_t min_space) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buffer_.size() - end_ < min_space) {
    // Compact first; grow only when the live bytes need it.
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.size() - end_ < min_space) buffer_.resize(end_ + min_space);
  }
  return buffer_.data() + end_;
}

Result<bool> FrameReader::NextFrame(fb::MessageType* type, const uint8_t** payload,
                                    size_t* length) {
  if (end_ - begin_ < kFrameHeaderSize) return false;
  uint64_t payload_length;
  PLASMA_RETURN_NOT_OK(
      ParseFrameHeader(buffer_.data() + begin_, type, &payload_length, max_payload_));
  if (end_ - begin_ < kFrameHeaderSize + payload_length) {
    // Make sure the next read can hold the rest of this frame.
    WritableSpace(kFrameHeaderSize + payload_length - (end_ - begin_));
    return false;
  }
  const uint8_t* in_buffer = buffer_.data() + begin_ + kFrameHeaderSize;
  if (reinterpret_cast<uintptr_t>(in_buffer) % kPayloadAlignment == 0) {
    *payload = in_buffer;
  } else {
    // One copy of this payload; moving the buffered bytes instead would cost
    // the whole buffer per frame, quadratic for a stream of small frames.
    aligned_.resize((payload_length + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    if (payload_length > 0) std::memcpy(aligned_.data(), in_buffer, payload_length);
    *payload = reinterpret_cast<const uint8_t*>(aligned_.data());
  }
  *length = payload_length;
  pending_frame_ = kFrameHeaderSize + payload_length;
  return true;
}

void FrameReader::ConsumeFrame() {
  begin_ += pending_frame_;
  pending_frame_ = 0;
  // Keep a small copy buffer for the next misaligned frame, not a large one.
  if (aligned_.capacity() * sizeof(uint64_t) > (size_t(1) << 20)) {
    std::vector<uint64_t>().swap(aligned_);
  }
}

}  // namespace plasma
