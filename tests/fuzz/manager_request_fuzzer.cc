// Fuzzes what the manager decodes from a local client on its Unix socket:
// the framing (FrameReader, as Manager::OnClientEvent drives it, with the
// manager's 64 MiB frame limit) and Manager::HandleFrame's decode of
// fb::ManagerFetchRequestT and its object ids. Any local process may
// connect to the manager socket.
//
// Manager::HandleFrame is private and needs a store, Redis and a transport,
// so this target repeats its decoding steps (type check, DecodeMessage,
// ObjectId::FromBinary per id) on the same library calls. The input is the
// client's byte stream, fed in read-sized chunks chosen by the first byte;
// a decoded request must re-encode to a payload that decodes to the same
// request.
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

namespace fb = plasma::fb;
using plasma::Status;

constexpr uint64_t kManagerMaxPayload = 64 << 20;  // Manager::AcceptClients
constexpr size_t kReadChunk = 64 * 1024;           // FrameConnection::ReadAvailable

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "manager_request_fuzzer: %s\n", what);
  std::abort();
}

void CheckRoundTrip(const fb::ManagerFetchRequestT& decoded) {
  flatbuffers::FlatBufferBuilder builder;
  plasma::EncodeMessage(decoded, &builder);
  fb::ManagerFetchRequestT again;
  if (!plasma::DecodeMessage(builder.GetBufferPointer(), builder.GetSize(), &again).ok()) {
    Fail("a re-encoded fetch request does not decode");
  }
  if (again.object_ids != decoded.object_ids || again.timeout_ms != decoded.timeout_ms) {
    Fail("a fetch request changed in a round trip");
  }
}

// The decoding steps of Manager::HandleFrame.
Status HandleFrame(fb::MessageType type, const uint8_t* payload, size_t length) {
  if (type != fb::MessageType::ManagerFetchRequest) {
    return Status::ProtocolError(std::string("unexpected message ") +
                                 plasma::MessageTypeName(type) + " on the manager socket");
  }
  fb::ManagerFetchRequestT message;
  Status decoded = plasma::DecodeMessage(payload, length, &message);
  if (!decoded.ok()) return decoded;
  CheckRoundTrip(message);
  std::vector<plasma::ObjectId> ids;
  for (const auto& binary : message.object_ids) {
    auto id = plasma::ObjectId::FromBinary(binary);
    if (!id.ok()) return Status::ProtocolError("fetch request: " + id.status().message());
    if (id->Binary() != binary) Fail("ObjectId::FromBinary does not keep the bytes");
    ids.push_back(*id);
  }
  return Status::OK();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte: 0 = whole reads, else reads of that many bytes.
  size_t chunk = data[0] == 0 ? kReadChunk : data[0];
  ++data;
  --size;
  plasma::FrameReader reader(kManagerMaxPayload);
  size_t offset = 0;
  while (offset < size) {
    size_t n = std::min(chunk, size - offset);
    std::memcpy(reader.WritableSpace(kReadChunk), data + offset, n);
    reader.CommitWritten(n);
    offset += n;
    // Manager::OnClientEvent: every complete frame, until one fails.
    while (true) {
      fb::MessageType type;
      const uint8_t* payload = nullptr;
      size_t length = 0;
      auto complete = reader.NextFrame(&type, &payload, &length);
      if (!complete.ok()) return 0;  // disconnected
      if (!*complete) break;
      if (length > kManagerMaxPayload) Fail("NextFrame returned a frame above max_payload");
      if (reinterpret_cast<uintptr_t>(payload) % plasma::FrameReader::kPayloadAlignment != 0) {
        Fail("NextFrame returned a misaligned payload");
      }
      if (!HandleFrame(type, payload, length).ok()) return 0;  // disconnected
      reader.ConsumeFrame();
    }
  }
  return 0;
}
