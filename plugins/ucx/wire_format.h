// What the UCX plugin puts on the wire besides the host's messages: how a
// UCP tag is laid out, the active messages of its set-up and of served
// READs, and the packed remote key. Everything is little-endian (both ends
// are x86-64 or another little-endian machine; the magic numbers catch a
// peer that is not).
#pragma once

#include <cstdint>

#include "transport/plasma_transport.h"

namespace plasma_ucx {

// ---- UCP tags ----------------------------------------------------------------
//
// UCP matches tags per worker, not per endpoint, so a receive posted for one
// connection would take a message from any peer. The 16 bits above the
// host's 48 make the tag space per connection:
//
//   bit 63      internal: the bytes of a served READ, never a host message
//   bits 48-62  the RECEIVER's id of the connection (1..32767), which each
//               side learns from the other in the set-up handshake
//   bits 0-47   host messages: the host's tag
//               internal:      the reader's READ id
constexpr int kConnIdShift = PLASMA_TP_TAG_BITS;
constexpr uint64_t kConnIdBits = 0x7FFF;
constexpr uint64_t kInternalBit = UINT64_C(1) << 63;
constexpr uint64_t kConnIdMask = kConnIdBits << kConnIdShift;
constexpr uint16_t kMaxConnId = 0x7FFF;

inline uint64_t HostTag(uint16_t conn_id, uint64_t host_tag) {
  return (uint64_t{conn_id} << kConnIdShift) | host_tag;
}
// A host mask (exact or prefix over the low 48 bits) widened so that it
// also pins the connection id and the internal bit.
inline uint64_t HostMask(uint64_t host_mask) { return kInternalBit | kConnIdMask | host_mask; }
inline uint64_t ReadDataTag(uint16_t reader_conn_id, uint64_t read_id) {
  return kInternalBit | (uint64_t{reader_conn_id} << kConnIdShift) | (read_id & PLASMA_TP_TAG_EXACT);
}
constexpr uint64_t kFullMask = ~UINT64_C(0);

// ---- Active messages -------------------------------------------------------------
//
// Every header names the RECEIVER's connection id, as tags do, except the
// hello (the server has no id to offer yet; it knows the endpoint the hello
// came by, from the reply flag). The hello and the ready may carry the
// sender's UCP worker address as payload: see connection.h.

enum AmId : uint16_t {
  kAmHello = 0x5A01,        // client -> server, first
  kAmReady = 0x5A02,        // server -> client, the answer
  kAmReadRequest = 0x5A03,  // reader -> holder (served READs)
  kAmReadRefused = 0x5A04,  // holder -> reader: the READ's status, no bytes follow
  kAmGoodbye = 0x5A05,      // either way, last: the sender closed the connection
};

constexpr uint32_t kHandshakeMagic = 0x58435550;  // "PUCX"
constexpr uint16_t kProtocolVersion = 1;

struct HandshakeHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t conn_id;      // the sender's id of this connection
  uint16_t receiver_id;  // the receiver's id (0 in a hello)
  uint16_t reserved[3];
  uint64_t host;         // the sender's machine (boot id), for shared memory
};

struct ReadRequestHeader {
  uint16_t receiver_id;
  uint16_t reserved[3];
  uint64_t read_id;
  uint64_t remote_addr;
  uint64_t length;
  uint64_t key;  // the registration's random key, from the packed rkey
};

struct ReadRefusedHeader {
  uint16_t receiver_id;
  uint16_t reserved;
  int32_t status;  // a PLASMA_TP_ERR_*
  uint64_t read_id;
};

// ---- Packed remote key ----------------------------------------------------------
//
// A fixed header, then (native-get mode only) UCX's own packed key. `key`
// is random per registration and comes last, so a forged or bit-flipped
// blob is refused by the holder (it serves only live registrations whose
// key matches) rather than reading whatever the bytes name.
constexpr uint32_t kRkeyMagic = 0x4B525550;  // "PURK"

struct PackedRkeyHeader {
  uint32_t magic;
  uint32_t ucx_rkey_length;  // bytes of ucp_rkey_pack() output after this header
  uint64_t base;
  uint64_t length;
  uint64_t key;
};
static_assert(sizeof(PackedRkeyHeader) == 32, "packed rkey header is wire format");

// Upper bound of UCX's packed key (every transport's part together) that
// this plugin accepts or produces; the host carries up to 4 KiB.
constexpr uint32_t kMaxUcxRkeySize = 2048;
constexpr uint32_t kMaxPackedRkeySize = sizeof(PackedRkeyHeader) + kMaxUcxRkeySize;

}  // namespace plasma_ucx
