// Memory registration: one ibv_mr per plasma_tp_mem_t (the host registers
// its whole arena once, at start). A packed remote key carries the MR's
// rkey with the registered range, so a reader checks every READ against the
// range before posting it and never asks a peer's device for bytes outside
// a registration.
#pragma once

#include <infiniband/verbs.h>

#include <cstddef>
#include <cstdint>

#include "transport/plasma_transport.h"

namespace plasma_verbs {

struct Connection;
struct Context;

constexpr uint32_t kRkeyMagic = 0x4b524256u;  // "VBRK"
constexpr size_t kPackedRkeySize = 24;        // magic u32, rkey u32, base u64, length u64

struct Registration {
  ibv_mr* mr = nullptr;
  uint8_t* base = nullptr;
  uint64_t length = 0;
  uint32_t access = 0;
  uint8_t packed_rkey[kPackedRkeySize] = {};
  uint32_t pins = 0;  // requests whose work requests use this memory

  bool Contains(const void* addr, uint64_t len) const;
};

struct RemoteKey {
  Connection* conn = nullptr;  // READs only on this connection; null once it closed
  uint32_t rkey = 0;
  uint64_t base = 0;
  uint64_t length = 0;
};

int RegisterMemory(Context* ctx, void* addr, size_t length, uint32_t access, Registration** out);
// OK once deregistered; IN_PROGRESS while requests still use the memory.
int DeregisterMemory(Context* ctx, Registration* reg);
int PackedRkey(Registration* reg, const void** out, size_t* out_len);

int UnpackRkey(Context* ctx, Connection* conn, const void* packed, size_t len, RemoteKey** out);
void ReleaseRkey(Context* ctx, RemoteKey* rkey);

// A local buffer with a `mem` must lie inside it; `*out` is the registration
// (null when mem is null).
int CheckLocalBuffer(Context* ctx, plasma_tp_mem_t mem, const void* buf, uint64_t len,
                     Registration** out);
// [addr, addr + len) inside the peer's registration named by the key.
bool RemoteRangeInside(const RemoteKey& rkey, uint64_t addr, uint64_t len);

}  // namespace plasma_verbs
