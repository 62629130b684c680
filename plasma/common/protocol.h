// The Plasma IPC protocol: frames, flatbuffer messages, fd passing and Unix
// sockets. One framing implementation serves the store (non-blocking, see
// FrameReader) and the clients (blocking ReadFrame/WriteFrame).
#pragma once

#include <flatbuffers/flatbuffers.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plasma/common/schema/common_generated.h"
#include "plasma/common/schema/plasma_generated.h"
#include "plasma/common/status.h"

namespace plasma {

namespace fb = plasma::flatbuf;

constexpr int64_t kProtocolVersion = 0;
constexpr size_t kFrameHeaderSize = 3 * sizeof(int64_t);
// Plasma 11 clients map (mmap_size - kMmapSizeSlack) bytes of the arena fd: its
// allocator reported 8 bytes more than it mapped, and clients compensate.
constexpr int64_t kMmapSizeSlack = sizeof(size_t);
// A seal digest is an 8-byte hash (xxhash64 in Plasma 11 clients).
constexpr size_t kDigestSize = 8;

const char* MessageTypeName(fb::MessageType type);
Status ErrorToStatus(fb::PlasmaError error, const std::string& what);
fb::PlasmaError StatusToError(const Status& status);

// Validates a frame header: version, known type, length <= max_payload.
Status ParseFrameHeader(const uint8_t* header, fb::MessageType* type, uint64_t* length,
                        uint64_t max_payload);
void EncodeFrameHeader(fb::MessageType type, uint64_t length, uint8_t* header);

// Blocking I/O on a connected socket; EINTR and short transfers are handled.
Status WriteFully(int fd, const void* data, size_t length);
Status ReadFully(int fd, void* data, size_t length);
Status WriteFrame(int fd, fb::MessageType type, const uint8_t* payload, size_t length);
// EOF before a header yields IOError("connection closed").
Status ReadFrame(int fd, fb::MessageType* type, std::vector<uint8_t>* payload,
                 uint64_t max_payload);

// One fd per call, riding on one data byte, as Plasma 11's fling.cc does.
Status SendFd(int conn, int fd_to_send);
// A single sendmsg attempt of that byte and fd; returns sendmsg's result (for
// non-blocking senders that handle EAGAIN themselves).
ssize_t SendFdMessage(int conn, int fd_to_send, int flags);
Result<int> RecvFd(int conn);
// The descriptors (SCM_RIGHTS) a recvmsg() delivered, in order; the caller owns them.
std::vector<int> ReceivedFds(msghdr* message);

Result<int> ConnectUnixSocket(const std::string& path);
// Retries while the socket does not exist yet or refuses (a store still starting).
Result<int> ConnectUnixSocketRetry(const std::string& path, int attempts, int delay_ms);
Result<int> ListenUnixSocket(const std::string& path);

// The message's table, read in place (no copy of its strings), once the
// whole buffer is verified. A payload that fails verification is a
// ProtocolError, never undefined behaviour.
template <typename Table>
Result<const Table*> VerifiedTable(const uint8_t* data, size_t size) {
  auto malformed = [size] {
    return Status::ProtocolError(std::string("malformed ") + Table::GetFullyQualifiedName() +
                                 " (" + std::to_string(size) + " bytes)");
  };
  // No flatbuffer reaches 2 GiB; the Verifier asserts on such a size
  // (aborting builds without NDEBUG), so one is rejected before it is made.
  if (size < sizeof(flatbuffers::uoffset_t) || size >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    return malformed();
  }
  flatbuffers::Verifier verifier(data, size);
  if (!verifier.VerifyBuffer<Table>(nullptr)) return malformed();
  return flatbuffers::GetRoot<Table>(data);
}

// Verifies a payload and unpacks it into the object-API type T (e.g.
// fb::PlasmaCreateRequestT).
template <typename T>
Status DecodeMessage(const uint8_t* data, size_t size, T* out) {
  PLASMA_ASSIGN_OR_RETURN(auto table, VerifiedTable<typename T::TableType>(data, size));
  table->UnPackTo(out);
  return Status::OK();
}

template <typename T>
void EncodeMessage(const T& message, flatbuffers::FlatBufferBuilder* builder) {
  builder->Finish(T::TableType::Pack(*builder, &message));
}

template <typename T>
Status WriteMessage(int fd, fb::MessageType type, const T& message) {
  flatbuffers::FlatBufferBuilder builder;
  EncodeMessage(message, &builder);
  return WriteFrame(fd, type, builder.GetBufferPointer(), builder.GetSize());
}

// Reads one frame and decodes it as T; any other type is a ProtocolError.
template <typename T>
Status ReadMessage(int fd, fb::MessageType expected, T* out,
                   uint64_t max_payload = 1ull << 30) {
  fb::MessageType type;
  std::vector<uint8_t> payload;
  PLASMA_RETURN_NOT_OK(ReadFrame(fd, &type, &payload, max_payload));
  if (type != expected) {
    return Status::ProtocolError(std::string("expected ") + MessageTypeName(expected) +
                                 ", got " + MessageTypeName(type));
  }
  return DecodeMessage(payload.data(), payload.size(), out);
}

// Incremental frame assembly for a non-blocking reader: bytes go in as they
// arrive, complete frames come out. Oversized or malformed headers are errors.
class FrameReader {
 public:
  // Payloads come out aligned to this: flatbuffers reads its scalars (up to
  // 8 bytes) and offsets in place.
  static constexpr size_t kPayloadAlignment = 8;

  explicit FrameReader(uint64_t max_payload) : max_payload_(max_payload) {}
  // Space to read into (at least `min_space` bytes).
  uint8_t* WritableSpace(size_t min_space);
  void CommitWritten(size_t n) { end_ += n; }
  // If a whole frame is buffered: fills type/payload view and returns true.
  // The payload is kPayloadAlignment-aligned; the view stays valid until the
  // next call to NextFrame, ConsumeFrame or WritableSpace.
  Result<bool> NextFrame(fb::MessageType* type, const uint8_t** payload, size_t* length);
  void ConsumeFrame();
  // Raw byte access, for the fd-carrying byte after a Subscribe request.
  size_t BufferedBytes() const { return end_ - begin_; }
  void ConsumeBytes(size_t n) { begin_ += n; }

 private:
  uint64_t max_payload_;
  std::vector<uint8_t> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t pending_frame_ = 0;  // size of the frame NextFrame returned
  // A payload that sits misaligned in buffer_ (after a payload whose length
  // is no multiple of 8, or after the Subscribe fd byte) is copied here.
  std::vector<uint64_t> aligned_;
};

}  // namespace plasma
