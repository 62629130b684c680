// Registrations (ucp_mem_map once per region, the packed key peers READ
// with) and unpacked remote keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <ucp/api/ucp.h>

#include "plugins/ucx/wire_format.h"

namespace plasma_ucx {

struct Connection;
struct Context;

struct Registration {
  uint8_t* base = nullptr;
  size_t length = 0;
  uint32_t access = 0;
  ucp_mem_h memh = nullptr;
  uint64_t key = 0;              // random; names the registration in served READs
  std::vector<uint8_t> packed;   // PackedRkeyHeader [+ UCX's packed key]
  uint32_t pins = 0;             // requests and served READs using it
  bool deregistering = false;    // mem_deregister() said IN_PROGRESS: serve no more
};

struct RemoteKey {
  Connection* conn = nullptr;
  PackedRkeyHeader header{};
  std::vector<uint8_t> ucx_packed;  // UCX's key, if the holder packed one
  ucp_rkey_h ucx_rkey = nullptr;    // unpacked on the connection's endpoint at the first get
};

int RegisterMemory(Context* ctx, void* addr, size_t length, uint32_t access, Registration** out);
int PackedRkey(const Registration* reg, const void** out, size_t* out_len);
int DeregisterMemory(Context* ctx, Registration* reg);
// Frees what UCP holds for the registration; the context's finalize only.
void ReleaseRegistration(Context* ctx, Registration* reg);

int UnpackRkey(Context* ctx, Connection* conn, const void* packed, size_t len, RemoteKey** out);
void ReleaseRkey(Context* ctx, RemoteKey* rkey);
// UCX's key for a get on the connection's current endpoint, or the status.
int UcxRkeyFor(RemoteKey* rkey, ucp_rkey_h* out);

// [remote_addr, remote_addr + length) inside what the key describes.
bool RemoteRangeInside(const PackedRkeyHeader& key, uint64_t remote_addr, uint64_t length);
// The registration containing [buf, buf + length) that `mem` names, checked;
// null `mem` gives null.
int CheckLocalBuffer(Context* ctx, void* mem, const void* buf, size_t length, Registration** out);

// The holder's side of a served READ: the live registration `key` names,
// with the range inside it, or the status to refuse with.
int FindServedRange(Context* ctx, uint64_t key, uint64_t remote_addr, uint64_t length,
                    Registration** out);

}  // namespace plasma_ucx
