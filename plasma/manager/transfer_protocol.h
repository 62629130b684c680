// The manager-to-manager transfer protocol, written once for every plugin.
//
//   puller                                   holder
//   PULL(transfer, id)            --->       Get(id) from its store
//                                 <---       HEADER(transfer, status, sizes, mode[, addr, rkey])
//   Create(id) in local store
//   eager:      recv DATA(transfer) into the new object   <--- DATA (sent from the holder's arena)
//   rendezvous: READ [addr, addr+size) into the new object, then
//               FINISH(transfer)  --->       Release(id)
//   Seal(id), announce in Redis
//
// Messages are matched by tag: the top byte says what a message is, the
// rest is the puller's transfer number, so replies land in receives the
// puller posted for that very transfer (eager data straight into the store).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plasma/common/object_id.h"
#include "plasma/common/status.h"

namespace plasma::transfer {

// Messages to a holder differ only in the lowest bit, so one receive with
// mask 0xfe matches both; messages to a puller are matched per transfer.
enum class MessageKind : uint8_t {
  kPull = 0x10,    // puller -> holder
  kFinish = 0x11,  // puller -> holder, rendezvous done (or abandoned)
  kHeader = 0x20,  // holder -> puller
  kData = 0x21,    // holder -> puller, eager payload
};

constexpr int kKindShift = 56;
constexpr uint64_t kTransferMask = (uint64_t(1) << kKindShift) - 1;
constexpr uint64_t kKindMask = ~kTransferMask;

inline uint64_t MakeTag(MessageKind kind, uint64_t transfer) {
  return uint64_t(kind) << kKindShift | (transfer & kTransferMask);
}
inline MessageKind TagKind(uint64_t tag) { return MessageKind(tag >> kKindShift); }
inline uint64_t TagTransfer(uint64_t tag) { return tag & kTransferMask; }

enum class Mode : uint8_t { kEager = 1, kRendezvous = 2 };

enum class HeaderStatus : uint8_t {
  kOk = 0,
  kNotFound = 1,     // the holder does not have it (deleted, evicted, never had)
  kUnavailable = 2,  // the holder's store failed
};

struct PullMessage {
  uint64_t transfer = 0;
  ObjectId id;
};

struct FinishMessage {
  uint64_t transfer = 0;
  bool success = false;
};

struct HeaderMessage {
  uint64_t transfer = 0;
  HeaderStatus status = HeaderStatus::kOk;
  Mode mode = Mode::kEager;
  uint64_t data_size = 0;
  uint64_t metadata_size = 0;
  uint64_t remote_address = 0;  // rendezvous: where the object starts in the holder
  std::string rkey;             // rendezvous: packed remote key of the holder's arena
  std::string digest;           // the holder's seal digest, reused by the puller (<= 64 bytes)
};

// Control messages are small fixed layouts (little-endian), versioned by
// their first byte; decoding checks every length.
constexpr size_t kMaxControlMessage = 64 + 4096;  // header plus the largest rkey we accept

std::vector<uint8_t> Encode(const PullMessage& message);
std::vector<uint8_t> Encode(const FinishMessage& message);
std::vector<uint8_t> Encode(const HeaderMessage& message);
Status Decode(const uint8_t* data, size_t size, PullMessage* out);
Status Decode(const uint8_t* data, size_t size, FinishMessage* out);
Status Decode(const uint8_t* data, size_t size, HeaderMessage* out);

}  // namespace plasma::transfer
