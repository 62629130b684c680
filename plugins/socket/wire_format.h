// The socket plugin's wire format: every frame is a fixed 48-byte header,
// optionally followed by `payload_length` bytes. All integers little-endian.
//
//   type        u8   FrameType
//   reserved    u8[3] zero
//   status      i32  READ_RESPONSE / CLEAR_TO_SEND: PLASMA_TP_* status
//   tag         u64  EAGER, RENDEZVOUS_REQUEST: message tag
//                    HELLO: kHelloMagic
//   id          u64  rendezvous transfer id or read id; HELLO: protocol version
//   length      u64  see FrameType
//   remote_addr u64  READ_REQUEST: address in the holder's process
//   rkey        u64  READ_REQUEST: the registration's random key
#pragma once

#include <endian.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace plasma_socket {

enum class FrameType : uint8_t {
  // First frame each side sends; the connection is up once the peer's arrives.
  kHello = 1,
  // A whole tagged message; `length` payload bytes follow.
  kEager = 2,
  // "I have a message of `length` bytes for `tag`"; no payload. The receiver
  // answers kClearToSend once a receive matches, so large messages land
  // straight in the posted buffer and nothing large is ever buffered.
  kRendezvousRequest = 3,
  // Receiver -> sender: send transfer `id` now (status OK), or don't (error).
  kClearToSend = 4,
  // The message of transfer `id`; `length` payload bytes follow.
  kRendezvousData = 5,
  // Reader -> holder: send me `length` bytes at `remote_addr` under `rkey`.
  kReadRequest = 6,
  // Holder -> reader: status, then `length` payload bytes (0 on error).
  kReadResponse = 7,
};

constexpr uint64_t kHelloMagic = 0x4b434f534d534c50ull;  // "PLSMSOCK" on the wire
constexpr uint64_t kProtocolVersion = 1;
constexpr size_t kFrameHeaderSize = 48;

struct FrameHeader {
  FrameType type = FrameType::kHello;
  int32_t status = 0;
  uint64_t tag = 0;
  uint64_t id = 0;
  uint64_t length = 0;
  uint64_t remote_addr = 0;
  uint64_t rkey = 0;

  // Whether `length` payload bytes follow this header on the wire.
  bool HasPayload() const {
    return type == FrameType::kEager || type == FrameType::kRendezvousData ||
           type == FrameType::kReadResponse;
  }
};

inline void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderSize]) {
  std::memset(out, 0, kFrameHeaderSize);
  out[0] = static_cast<uint8_t>(h.type);
  uint32_t status = htole32(static_cast<uint32_t>(h.status));
  std::memcpy(out + 4, &status, 4);
  const uint64_t fields[5] = {htole64(h.tag), htole64(h.id), htole64(h.length),
                              htole64(h.remote_addr), htole64(h.rkey)};
  std::memcpy(out + 8, fields, sizeof(fields));
}

inline FrameHeader DecodeFrameHeader(const uint8_t in[kFrameHeaderSize]) {
  FrameHeader h;
  h.type = static_cast<FrameType>(in[0]);
  uint32_t status;
  std::memcpy(&status, in + 4, 4);
  h.status = static_cast<int32_t>(le32toh(status));
  uint64_t fields[5];
  std::memcpy(fields, in + 8, sizeof(fields));
  h.tag = le64toh(fields[0]);
  h.id = le64toh(fields[1]);
  h.length = le64toh(fields[2]);
  h.remote_addr = le64toh(fields[3]);
  h.rkey = le64toh(fields[4]);
  return h;
}

}  // namespace plasma_socket
