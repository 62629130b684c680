// What the verbs plugin puts on the wire, all little-endian:
//
// Side channel (TCP, connection set-up only; afterwards it stays open so
// that either end learns at once when the other goes away):
//   connector -> acceptor  Hello   (its QP: number, PSN, LID/GID, credits)
//   acceptor  -> connector Hello   (acceptor's QP now in RTR)
//   connector -> acceptor  Ready   (connector's QP in RTS; acceptor goes RTS)
//
// Queue pair (every SEND carries a MessageHeader):
//   kEager   header + the message's bytes (at most the receiver's buffer)
//   kRts     header + RtsBody: the receiver READs the message from the
//            sender's registered buffer, then answers
//   kFin     header + FinBody: the READ of a kRts is over; the send completes
//   kCredit  header only: returns credits when no other message carries them
// Each header carries `granted`, the cumulative number of receive buffers
// the sender has made available to its peer, so credits ride on every
// message and a kCredit is needed only on one-way traffic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace plasma_verbs {

constexpr uint32_t kHelloMagic = 0x42565048u;  // "HPVB"
constexpr uint32_t kReadyMagic = 0x59445052u;  // "RPDY"
constexpr uint16_t kWireVersion = 1;

enum class MessageType : uint8_t { kEager = 1, kRts = 2, kFin = 3, kCredit = 4 };

inline void Put16(uint8_t* p, uint16_t v) { for (int i = 0; i < 2; ++i) p[i] = uint8_t(v >> (8 * i)); }
inline void Put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }
inline void Put64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i)); }
inline uint16_t Get16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
inline uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
inline uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// type u8, 3 zero bytes, granted u32, tag u64.
constexpr size_t kHeaderSize = 16;
struct MessageHeader {
  MessageType type = MessageType::kEager;
  uint32_t granted = 0;
  uint64_t tag = 0;

  void Encode(uint8_t* p) const {
    std::memset(p, 0, kHeaderSize);
    p[0] = static_cast<uint8_t>(type);
    Put32(p + 4, granted);
    Put64(p + 8, tag);
  }
  static MessageHeader Decode(const uint8_t* p) {
    MessageHeader h;
    h.type = static_cast<MessageType>(p[0]);
    h.granted = Get32(p + 4);
    h.tag = Get64(p + 8);
    return h;
  }
};

// transfer u64, length u64, addr u64, rkey u32, zero u32.
constexpr size_t kRtsBodySize = 32;
struct RtsBody {
  uint64_t transfer = 0;
  uint64_t length = 0;
  uint64_t addr = 0;
  uint32_t rkey = 0;

  void Encode(uint8_t* p) const {
    std::memset(p, 0, kRtsBodySize);
    Put64(p, transfer);
    Put64(p + 8, length);
    Put64(p + 16, addr);
    Put32(p + 24, rkey);
  }
  static RtsBody Decode(const uint8_t* p) {
    RtsBody b;
    b.transfer = Get64(p);
    b.length = Get64(p + 8);
    b.addr = Get64(p + 16);
    b.rkey = Get32(p + 24);
    return b;
  }
};

// transfer u64, status i32 (PLASMA_TP_*), zero u32.
constexpr size_t kFinBodySize = 16;

// magic u32, version u16, lid u16, qp_num u32, psn u32, gid[16],
// recv_buffers u32 (credits for the peer), buffer_payload u32 (largest eager
// message it takes), mtu u8 (ibv_mtu), max_dest_rd_atomic u8, ethernet u8,
// zero u8.
constexpr size_t kHelloSize = 48;
struct Hello {
  uint32_t magic = kHelloMagic;
  uint16_t version = kWireVersion;
  uint16_t lid = 0;
  uint32_t qp_num = 0;
  uint32_t psn = 0;
  uint8_t gid[16] = {};
  uint32_t recv_buffers = 0;
  uint32_t buffer_payload = 0;
  uint8_t mtu = 0;
  uint8_t max_dest_rd_atomic = 0;
  uint8_t ethernet = 0;

  void Encode(uint8_t* p) const {
    std::memset(p, 0, kHelloSize);
    Put32(p, magic);
    Put16(p + 4, version);
    Put16(p + 6, lid);
    Put32(p + 8, qp_num);
    Put32(p + 12, psn);
    std::memcpy(p + 16, gid, 16);
    Put32(p + 32, recv_buffers);
    Put32(p + 36, buffer_payload);
    p[40] = mtu;
    p[41] = max_dest_rd_atomic;
    p[42] = ethernet;
  }
  static Hello Decode(const uint8_t* p) {
    Hello h;
    h.magic = Get32(p);
    h.version = Get16(p + 4);
    h.lid = Get16(p + 6);
    h.qp_num = Get32(p + 8);
    h.psn = Get32(p + 12);
    std::memcpy(h.gid, p + 16, 16);
    h.recv_buffers = Get32(p + 32);
    h.buffer_payload = Get32(p + 36);
    h.mtu = p[40];
    h.max_dest_rd_atomic = p[41];
    h.ethernet = p[42];
    return h;
  }
};

}  // namespace plasma_verbs
