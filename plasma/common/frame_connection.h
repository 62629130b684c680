// FrameConnection: a daemon's non-blocking framed I/O with one local client
// (the store's clients, the manager's). Incoming bytes are assembled into
// frames, so a slow or stalled client never blocks the daemon; fds passed by
// the client are queued; replies and fds to pass go out in order through an
// output queue drained when the socket is writable.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <deque>
#include <string>
#include <vector>

#include "plasma/common/protocol.h"
#include "plasma/common/status.h"

namespace plasma {

class FrameConnection {
 public:
  FrameConnection(int fd, uint64_t max_payload);
  ~FrameConnection();
  FrameConnection(const FrameConnection&) = delete;
  FrameConnection& operator=(const FrameConnection&) = delete;

  int fd() const { return fd_; }
  // "fd 12, pid 3456": how log lines name this client.
  const std::string& description() const { return description_; }

  // Reads everything available. IOError on EOF or socket error.
  Status ReadAvailable();
  FrameReader& reader() { return reader_; }
  // An fd received from the client, or -1 if none has arrived.
  int PopReceivedFd();

  void QueueMessage(fb::MessageType type, flatbuffers::FlatBufferBuilder& builder);
  template <typename T>
  void QueueMessage(fb::MessageType type, const T& message) {
    flatbuffers::FlatBufferBuilder builder;
    EncodeMessage(message, &builder);
    QueueMessage(type, builder);
  }
  // Passes `fd` after everything queued so far (the fd must stay open until sent).
  void QueueFd(int fd);
  // Writes what the socket accepts now. IOError if the peer is gone.
  Status Flush();
  bool HasPendingOutput() const { return !output_.empty(); }
  size_t PendingOutputBytes() const { return pending_output_bytes_; }

 private:
  struct Output {
    std::vector<uint8_t> bytes;  // empty for an fd item
    size_t sent = 0;
    int fd_to_pass = -1;
  };
  int fd_;
  std::string description_;
  FrameReader reader_;
  std::deque<int> received_fds_;
  std::deque<Output> output_;
  size_t pending_output_bytes_ = 0;
};

}  // namespace plasma
