// Memory registration for the socket plugin. TCP needs no pinning, so a
// registration is bookkeeping: the range, and for REMOTE_READ a random
// 64-bit key that a peer must present before this plugin serves an emulated
// READ out of the range. The packed rkey is just that key.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/plasma_transport.h"

namespace plasma_socket {

struct Connection;
struct Context;

constexpr uint32_t kRkeyMagic = 0x4b52534bu;  // "KSRK": marks a socket-plugin rkey
constexpr size_t kPackedRkeySize = 16;        // magic u32, reserved u32, key u64

struct Registration {
  Context* ctx = nullptr;
  uint8_t* base = nullptr;
  uint64_t length = 0;
  uint32_t access = 0;
  uint64_t key = 0;  // 0 unless REMOTE_READ
  uint8_t packed_rkey[kPackedRkeySize] = {};
  // READ responses queued or being written straight from this memory.
  uint32_t pins = 0;
  bool deregistering = false;

  bool Contains(const void* addr, uint64_t len) const;
};

struct RemoteKey {
  uint64_t key = 0;
  Connection* conn = nullptr;  // reads only on this connection; null after it closed
};

int RegisterMemory(Context* ctx, void* addr, size_t length, uint32_t access,
                   Registration** out);
// OK when freed; IN_PROGRESS while READ responses still reference the memory.
int DeregisterMemory(Context* ctx, Registration* reg);
int PackedRkey(Registration* reg, const void** out, size_t* out_len);

int UnpackRkey(Context* ctx, Connection* conn, const void* packed, size_t len, RemoteKey** out);
void ReleaseRkey(Context* ctx, RemoteKey* rkey);
// Called when `conn` closes so that its rkeys can no longer be used.
void OrphanRkeys(Context* ctx, Connection* conn);

// The holder's check for an incoming READ request: the key must name a live
// REMOTE_READ registration and [addr, addr + len) must lie inside it.
int CheckRemoteRead(Context* ctx, uint64_t key, uint64_t addr, uint64_t len,
                    Registration** out);

// A local buffer argument with a `mem` handle must lie inside it (the verbs
// plugin relies on that, so the socket plugin enforces it too).
int CheckLocalBuffer(Context* ctx, plasma_tp_mem_t mem, const void* buf, uint64_t len);

void PinRegistration(Registration* reg);
void UnpinRegistration(Registration* reg);

}  // namespace plasma_socket
