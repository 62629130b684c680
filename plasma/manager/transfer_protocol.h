// The manager-to-manager transfer protocol, written once for every plugin.
//
//   puller                                   holder
//   PULL(transfer, id)            --->       Get(id) from its store
//   inline (small objects):       <---       HEADER(transfer, sizes, digest) + the object's bytes,
//                                            one message; the holder releases the object at once
//   Create(id), copy the bytes in, Seal(id)
//   rendezvous (large objects):   <---       HEADER(transfer, sizes, addr, rkey); object pinned
//   Create(id), READ [addr, addr+size) straight into it, then
//               FINISH(transfer)  --->       Release(id)
//   Seal(id), announce in Redis
//   pushed (the puller knew the sizes; plugins without a native READ):
//   Create(id), post receives for its chunks straight into it, then
//   PULL(transfer, id, size, chunk) --->     Get(id); the object pinned
//                                 <---       HEADER(transfer, sizes, digest)
//                                 <---       DATA chunks (tag kData), sent from the holder's arena;
//                                            released once they are sent
//   Seal(id), announce in Redis
//
// A push saves the rendezvous round trip where a READ is a request and a
// reply anyway (an emulated READ): the bytes follow the HEADER at once and
// land in the local object without a copy. The puller knows the sizes from
// the cluster's location events (docs/manager.md); a holder whose object has
// other sizes answers kSizeMismatch and sends nothing more.
//
// Every message the protocol sends has a receive waiting for it: the holder
// keeps control receives posted on each connection, the puller posts the
// HEADER receive (and, for a push, every chunk's) before it sends the PULL,
// and a refused push gets an empty DATA message per chunk. Nothing is left
// unreceived.
//
// Messages are matched by tag (48 host bits, see plasma_transport.h): the
// top byte says what a message is, the low 40 bits are the puller's transfer
// number, so a HEADER lands in the receive posted for that very transfer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plasma/common/object_id.h"
#include "plasma/common/status.h"
#include "transport/plasma_transport.h"

namespace plasma::transfer {

// Messages to a holder differ only in the lowest bit of their kind, so one
// receive with a prefix mask matches both; messages to a puller are matched
// per transfer, exactly.
enum class MessageKind : uint8_t {
  kPull = 0x10,    // puller -> holder
  kFinish = 0x11,  // puller -> holder, rendezvous done (or abandoned)
  kHeader = 0x20,  // holder -> puller, inline objects carry their bytes
  kData = 0x21,    // holder -> puller, one chunk of a pushed object
};

constexpr int kKindShift = PLASMA_TP_TAG_BITS - 8;
constexpr uint64_t kTransferMask = (uint64_t(1) << kKindShift) - 1;
// The receive a holder keeps posted for PULL and FINISH: the top 7 host bits.
constexpr uint64_t kControlMask = PLASMA_TP_TAG_PREFIX(7);

inline uint64_t MakeTag(MessageKind kind, uint64_t transfer) {
  return uint64_t(kind) << kKindShift | (transfer & kTransferMask);
}
inline MessageKind TagKind(uint64_t tag) { return MessageKind(uint8_t(tag >> kKindShift)); }
inline uint64_t TagTransfer(uint64_t tag) { return tag & kTransferMask; }

enum class Mode : uint8_t { kInline = 1, kRendezvous = 2, kPushed = 3 };

enum class HeaderStatus : uint8_t {
  kOk = 0,
  kNotFound = 1,     // the holder does not have it (deleted, evicted, never had)
  kUnavailable = 2,  // the holder's store failed
  kBusy = 3,         // the holder pins its cap of bytes for this puller: ask again later
  kSizeMismatch = 4,  // a push was asked for other sizes than the object has; nothing follows
};

struct PullMessage {
  uint64_t transfer = 0;
  ObjectId id;
  // The puller's HEADER receive size: an inline HEADER must fit in it.
  uint64_t max_inline_message = 0;
  // Push: nonzero when the puller has created the object and posted
  // receives for it, each push_chunk bytes (the last one the rest).
  uint64_t push_size = 0;
  uint64_t push_chunk = 0;
};

// How many DATA messages a push of `size` bytes in `chunk`-byte pieces is.
inline uint64_t PushChunks(uint64_t size, uint64_t chunk) {
  return chunk == 0 ? 0 : (size + chunk - 1) / chunk;
}

struct FinishMessage {
  uint64_t transfer = 0;
  bool success = false;
};

struct HeaderMessage {
  uint64_t transfer = 0;
  HeaderStatus status = HeaderStatus::kOk;
  Mode mode = Mode::kInline;
  uint64_t data_size = 0;
  uint64_t metadata_size = 0;
  uint64_t remote_address = 0;  // rendezvous: where the object starts in the holder
  std::string rkey;             // rendezvous: packed remote key of the holder's arena
  std::string digest;           // the holder's seal digest (<= 64 bytes)
  // Inline: the object's bytes (data then metadata), inside the decoded
  // message; Decode checks there are exactly data_size + metadata_size.
  const uint8_t* inline_bytes = nullptr;

  uint64_t total_size() const { return data_size + metadata_size; }
};

constexpr size_t kMaxRkeySize = 4096;
constexpr size_t kMaxDigestSize = 64;
// The largest control message without inline bytes (a rendezvous HEADER
// with the largest rkey we accept).
constexpr size_t kMaxControlMessage = 64 + kMaxDigestSize + kMaxRkeySize;

// Control messages are small fixed layouts (little-endian), versioned by
// their first byte; decoding checks every length.
std::vector<uint8_t> Encode(const PullMessage& message);
std::vector<uint8_t> Encode(const FinishMessage& message);
// The HEADER without its inline bytes; an inline HEADER's bytes follow it
// directly in the same message (see EncodeInline).
std::vector<uint8_t> Encode(const HeaderMessage& message);
// Writes the HEADER and then `total_size()` bytes from `object` into out;
// returns the message length, or 0 if it does not fit in capacity.
size_t EncodeInline(const HeaderMessage& message, const uint8_t* object, uint8_t* out,
                    size_t capacity);
// Length of Encode(message) (the HEADER without inline bytes).
size_t EncodedSize(const HeaderMessage& message);
Status Decode(const uint8_t* data, size_t size, PullMessage* out);
Status Decode(const uint8_t* data, size_t size, FinishMessage* out);
Status Decode(const uint8_t* data, size_t size, HeaderMessage* out);

}  // namespace plasma::transfer
