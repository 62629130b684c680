// Fuzzes what the store decodes from a client socket: the framing
// (ParseFrameHeader, FrameReader) and the payload of every request type the
// store decodes with DecodeMessage<T> (Store::HandleMessage in
// plasma/store/store.cc). Any local process may connect to a store socket,
// so no byte sequence may crash the store or make it read out of bounds.
//
// The input is the byte stream one client writes. It is fed into a
// FrameReader the way FrameConnection::ReadAvailable feeds it (WritableSpace,
// copy, CommitWritten), three times with different chunkings: all at once,
// one byte at a time, and in sizes derived from the input. Every chunking
// must produce the same frames and end the same way, each payload aligned
// and equal to the bytes the client sent. Each frame is decoded
// as the store would (a decode error ends the connection, as a disconnect
// does); a decoded request must re-encode into a payload that decodes again
// and re-encodes to the same bytes.
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "plasma/common/object_id.h"
#include "plasma/common/protocol.h"

namespace {

using plasma::DecodeMessage;
using plasma::FrameReader;
using plasma::ObjectId;
using plasma::Status;
namespace fb = plasma::fb;

// A 1 MiB store: max_payload is its capacity plus 1 MiB (Store::Store).
constexpr uint64_t kMaxPayload = (1u << 20) + (1u << 20);
constexpr size_t kReadChunk = 64 * 1024;  // FrameConnection::ReadAvailable

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "store_protocol_fuzzer: %s\n", what);
  std::abort();
}

// Decoded requests must survive a round trip through the store's encoder.
template <typename T>
void CheckRoundTrip(const T& decoded) {
  flatbuffers::FlatBufferBuilder first;
  plasma::EncodeMessage(decoded, &first);
  T again;
  if (!DecodeMessage(first.GetBufferPointer(), first.GetSize(), &again).ok()) {
    Fail("a re-encoded request does not decode");
  }
  flatbuffers::FlatBufferBuilder second;
  plasma::EncodeMessage(again, &second);
  if (first.GetSize() != second.GetSize() ||
      std::memcmp(first.GetBufferPointer(), second.GetBufferPointer(), first.GetSize()) != 0) {
    Fail("decode(encode(request)) re-encodes differently");
  }
}

template <typename T>
Status Decode(const uint8_t* payload, size_t length, T* out) {
  Status status = DecodeMessage(payload, length, out);
  if (status.ok()) CheckRoundTrip(*out);
  return status;
}

Status CheckId(const std::string& binary) { return ObjectId::FromBinary(binary).status(); }

Status CheckIds(const std::vector<std::string>& binaries) {
  for (const auto& binary : binaries) {
    Status status = CheckId(binary);
    if (!status.ok()) return status;
  }
  return Status::OK();
}

// Decodes a request that names one object (or many) and checks the id(s).
template <typename Request>
Status DecodeNamingOne(const uint8_t* payload, size_t length) {
  Request request;
  Status status = Decode(payload, length, &request);
  return status.ok() ? CheckId(request.object_id) : status;
}
template <typename Request>
Status DecodeNamingMany(const uint8_t* payload, size_t length) {
  Request request;
  Status status = Decode(payload, length, &request);
  return status.ok() ? CheckIds(request.object_ids) : status;
}

// The decoding half of Store::HandleMessage: same types, same checks.
Status HandleMessage(fb::MessageType type, const uint8_t* payload, size_t length,
                     bool* subscribe) {
  using T = fb::MessageType;
  switch (type) {
    case T::PlasmaConnectRequest:
    case T::PlasmaGetDebugStringRequest:
      return Status::OK();
    case T::PlasmaCreateRequest:
      return DecodeNamingOne<fb::PlasmaCreateRequestT>(payload, length);
    case T::PlasmaCreateAndSealRequest:
      return DecodeNamingOne<fb::PlasmaCreateAndSealRequestT>(payload, length);
    case T::PlasmaCreateAndSealBatchRequest: {
      fb::PlasmaCreateAndSealBatchRequestT request;
      Status status = Decode(payload, length, &request);
      if (!status.ok()) return status;
      size_t n = request.object_ids.size();
      if (request.data.size() != n || request.metadata.size() != n ||
          (request.digest.size() != n && !request.digest.empty())) {
        return Status::ProtocolError("create-and-seal batch with mismatched list lengths");
      }
      return CheckIds(request.object_ids);
    }
    case T::PlasmaAbortRequest:
      return DecodeNamingOne<fb::PlasmaAbortRequestT>(payload, length);
    case T::PlasmaSealRequest:
      return DecodeNamingOne<fb::PlasmaSealRequestT>(payload, length);
    case T::PlasmaGetRequest:
      return DecodeNamingMany<fb::PlasmaGetRequestT>(payload, length);
    case T::PlasmaReleaseRequest:
      return DecodeNamingOne<fb::PlasmaReleaseRequestT>(payload, length);
    case T::PlasmaDeleteRequest:
      return DecodeNamingMany<fb::PlasmaDeleteRequestT>(payload, length);
    case T::PlasmaContainsRequest:
      return DecodeNamingOne<fb::PlasmaContainsRequestT>(payload, length);
    case T::PlasmaListRequest: {
      fb::PlasmaListRequestT request;
      return Decode(payload, length, &request);
    }
    case T::PlasmaEvictRequest: {
      fb::PlasmaEvictRequestT request;
      return Decode(payload, length, &request);
    }
    case T::PlasmaRefreshLRURequest:
      return DecodeNamingMany<fb::PlasmaRefreshLRURequestT>(payload, length);
    case T::PlasmaSetOptionsRequest: {
      fb::PlasmaSetOptionsRequestT request;
      return Decode(payload, length, &request);
    }
    case T::PlasmaSubscribeRequest:
      *subscribe = true;
      return Status::OK();
    case T::PlasmaDisconnectClient:
      return Status::IOError("client sent a disconnect message");
    default:
      return Status::ProtocolError(std::string("unexpected message ") +
                                   plasma::MessageTypeName(type) + " from a client");
  }
}

// What one connection saw: the frames (type and payload) and how it ended.
struct Transcript {
  std::vector<std::pair<int64_t, std::string>> frames;
  std::string end;  // "" while the connection would stay open
  bool operator==(const Transcript& o) const { return frames == o.frames && end == o.end; }
};

// One connection's reader and where its next frame starts in the input.
struct Connection {
  explicit Connection(const uint8_t* input) : reader(kMaxPayload), input(input) {}
  FrameReader reader;
  const uint8_t* input;
  size_t next_frame = 0;  // offset in `input`
  bool awaiting_fd = false;
};

// Store::ProcessFrames over the bytes buffered so far. false: disconnected.
bool ProcessFrames(Connection* conn, Transcript* transcript) {
  FrameReader& reader = conn->reader;
  while (true) {
    if (conn->awaiting_fd) {
      // The byte after a Subscribe frame carries the client's fd; take it
      // as if the fd came with it, so the stream goes on.
      if (reader.BufferedBytes() == 0) return true;
      reader.ConsumeBytes(1);
      conn->next_frame += 1;
      conn->awaiting_fd = false;
      continue;
    }
    fb::MessageType type;
    const uint8_t* payload = nullptr;
    size_t length = 0;
    auto complete = reader.NextFrame(&type, &payload, &length);
    if (!complete.ok()) {
      transcript->end = complete.status().ToString();
      return false;
    }
    if (!*complete) return true;
    if (length > kMaxPayload) Fail("NextFrame returned a frame above max_payload");
    if (reinterpret_cast<uintptr_t>(payload) % FrameReader::kPayloadAlignment != 0) {
      Fail("NextFrame returned a misaligned payload");
    }
    const uint8_t* sent = conn->input + conn->next_frame + plasma::kFrameHeaderSize;
    if (length > 0 && std::memcmp(payload, sent, length) != 0) {
      Fail("NextFrame returned other bytes than the client sent");
    }
    conn->next_frame += plasma::kFrameHeaderSize + length;
    transcript->frames.emplace_back(int64_t(type),
                                    std::string(reinterpret_cast<const char*>(payload), length));
    Status handled = HandleMessage(type, payload, length, &conn->awaiting_fd);
    if (!handled.ok()) {
      transcript->end = handled.ToString();
      return false;
    }
    reader.ConsumeFrame();
  }
}

// Feeds `data` in chunks of next_chunk() bytes, each read into
// WritableSpace(min_space()) as FrameConnection::ReadAvailable does.
template <typename NextChunk, typename MinSpace>
Transcript Feed(const uint8_t* data, size_t size, NextChunk next_chunk, MinSpace min_space) {
  Connection conn(data);
  Transcript transcript;
  size_t offset = 0;
  while (offset < size) {
    size_t space = min_space();
    size_t n = std::min({next_chunk(), size - offset, space});
    uint8_t* target = conn.reader.WritableSpace(space);
    std::memcpy(target, data + offset, n);
    conn.reader.CommitWritten(n);
    offset += n;
    if (!ProcessFrames(&conn, &transcript)) return transcript;
  }
  if (conn.reader.BufferedBytes() != size - conn.next_frame) {
    Fail("the reader lost or invented buffered bytes");
  }
  return transcript;
}

}  // namespace

// Sizes no fuzz input reaches: a payload of 2 GiB or more (a frame a store
// with a capacity above 2 GiB accepts) is rejected without being read. The
// payload is an inaccessible mapping, so any read of it crashes here.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const size_t huge = size_t(1) << 31;
  void* reserved = mmap(nullptr, huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
  if (reserved == MAP_FAILED) return 0;  // no address space for the check; skip it
  fb::PlasmaCreateAndSealRequestT request;
  if (DecodeMessage(static_cast<const uint8_t*>(reserved), huge, &request).ok()) {
    Fail("a 2 GiB payload decoded");
  }
  munmap(reserved, huge);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= plasma::kFrameHeaderSize) {
    fb::MessageType type;
    uint64_t length = 0;
    if (plasma::ParseFrameHeader(data, &type, &length, kMaxPayload).ok()) {
      if (length > kMaxPayload) Fail("ParseFrameHeader accepted a length above max_payload");
      plasma::MessageTypeName(type);
    }
  }

  Transcript whole = Feed(data, size, [] { return kReadChunk; }, [] { return kReadChunk; });
  Transcript bytewise = Feed(data, size, [] { return size_t(1); }, [] { return kReadChunk; });
  // Chunk sizes and reserved space from a cheap generator seeded by the input.
  uint32_t state = 0x9e3779b9u ^ uint32_t(size);
  for (size_t i = 0; i < size && i < 16; ++i) state = state * 31 + data[i];
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  };
  Transcript mixed = Feed(
      data, size, [&] { return size_t(1 + next() % 97); },
      [&] { return size_t(1 + next() % (2 * kReadChunk)); });
  if (!(whole == bytewise) || !(whole == mixed)) {
    Fail("the frames depend on how the bytes arrived");
  }
  return 0;
}
