#include "plugins/ucx/memory.h"

#include <sys/random.h>

#include <cstring>

#include "plugins/ucx/connection.h"
#include "plugins/ucx/context.h"

namespace plasma_ucx {
namespace {

// A random key no live registration of this context has (never 0).
uint64_t NewKey(const Context* ctx) {
  for (;;) {
    uint64_t key = 0;
    if (getrandom(&key, sizeof(key), 0) != sizeof(key)) {
      static uint64_t fallback = 0x9E3779B97F4A7C15ull;
      fallback = fallback * 6364136223846793005ull + 1442695040888963407ull;
      key = fallback ^ reinterpret_cast<uintptr_t>(ctx);
    }
    if (key != 0 && ctx->by_key.count(key) == 0) return key;
  }
}

bool Contains(const Registration& reg, const void* buf, size_t length) {
  auto addr = reinterpret_cast<uintptr_t>(buf);
  auto base = reinterpret_cast<uintptr_t>(reg.base);
  return addr >= base && length <= reg.length && addr - base <= reg.length - length;
}

}  // namespace

int RegisterMemory(Context* ctx, void* addr, size_t length, uint32_t access, Registration** out) {
  const uint32_t known = PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ;
  if (addr == nullptr || length == 0 || access == 0 || (access & ~known) != 0) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  ucp_mem_map_params_t params{};
  params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  params.address = addr;
  params.length = length;
  ucp_mem_h memh = nullptr;
  ucs_status_t status = ucp_mem_map(ctx->ucp, &params, &memh);
  if (status != UCS_OK) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: ucp_mem_map of %zu bytes failed: %s", length,
             ucs_status_string(status));
    return StatusFromUcs(status);
  }
  auto* reg = new Registration;
  reg->base = static_cast<uint8_t*>(addr);
  reg->length = length;
  reg->access = access;
  reg->memh = memh;
  reg->key = NewKey(ctx);
  if (access & PLASMA_TP_ACCESS_REMOTE_READ) {
    PackedRkeyHeader header{};
    header.magic = kRkeyMagic;
    header.base = reinterpret_cast<uintptr_t>(addr);
    header.length = length;
    header.key = reg->key;
    void* ucx_packed = nullptr;
    size_t ucx_length = 0;
    if (ctx->PacksUcxKeys()) {
      status = ucp_rkey_pack(ctx->ucp, memh, &ucx_packed, &ucx_length);
      if (status != UCS_OK || ucx_length > kMaxUcxRkeySize) {
        ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: cannot pack a remote key (%zu bytes): %s", ucx_length,
                 ucs_status_string(status));
        if (status == UCS_OK) ucp_rkey_buffer_release(ucx_packed);
        ucp_mem_unmap(ctx->ucp, memh);
        delete reg;
        return status == UCS_OK ? PLASMA_TP_ERR_INTERNAL : StatusFromUcs(status);
      }
    }
    header.ucx_rkey_length = static_cast<uint32_t>(ucx_length);
    reg->packed.resize(sizeof(header) + ucx_length);
    std::memcpy(reg->packed.data(), &header, sizeof(header));
    if (ucx_length > 0) {
      std::memcpy(reg->packed.data() + sizeof(header), ucx_packed, ucx_length);
      ucp_rkey_buffer_release(ucx_packed);
    }
    ctx->by_key[reg->key] = reg;
  }
  ctx->registrations.insert(reg);
  *out = reg;
  return PLASMA_TP_OK;
}

int PackedRkey(const Registration* reg, const void** out, size_t* out_len) {
  if (reg->packed.empty()) return PLASMA_TP_ERR_INVALID_ARGUMENT;  // no REMOTE_READ
  *out = reg->packed.data();
  *out_len = reg->packed.size();
  return PLASMA_TP_OK;
}

int DeregisterMemory(Context* ctx, Registration* reg) {
  ctx->by_key.erase(reg->key);  // no new READ is served from it from now on
  if (reg->pins > 0) {
    reg->deregistering = true;
    return PLASMA_TP_IN_PROGRESS;
  }
  ctx->registrations.erase(reg);
  ReleaseRegistration(ctx, reg);
  return PLASMA_TP_OK;
}

void ReleaseRegistration(Context* ctx, Registration* reg) {
  if (reg->memh != nullptr) ucp_mem_unmap(ctx->ucp, reg->memh);
  delete reg;
}

int UnpackRkey(Context* ctx, Connection* conn, const void* packed, size_t len, RemoteKey** out) {
  PackedRkeyHeader header{};
  if (packed == nullptr || len < sizeof(header) || len > kMaxPackedRkeySize) {
    return PLASMA_TP_ERR_BAD_RKEY;
  }
  std::memcpy(&header, packed, sizeof(header));
  if (header.magic != kRkeyMagic || header.ucx_rkey_length != len - sizeof(header) ||
      header.base + header.length < header.base || header.key == 0) {
    return PLASMA_TP_ERR_BAD_RKEY;
  }
  if (ctx->read_choice == ReadChoice::kGet && header.ucx_rkey_length == 0) {
    return PLASMA_TP_ERR_BAD_RKEY;  // the holder serves its READs by send only
  }
  auto* rkey = new RemoteKey;
  rkey->conn = conn;
  rkey->header = header;
  const auto* ucx = static_cast<const uint8_t*>(packed) + sizeof(header);
  rkey->ucx_packed.assign(ucx, ucx + header.ucx_rkey_length);
  ctx->remote_keys.insert(rkey);
  *out = rkey;
  return PLASMA_TP_OK;
}

int UcxRkeyFor(RemoteKey* rkey, ucp_rkey_h* out) {
  if (rkey->ucx_rkey == nullptr) {
    Connection* conn = rkey->conn;
    if (rkey->ucx_packed.empty()) return PLASMA_TP_ERR_BAD_RKEY;
    if (conn->ep == nullptr) return conn->Failed() ? conn->failure_status : PLASMA_TP_ERR_CANCELED;
    if (ucp_ep_rkey_unpack(conn->ep, rkey->ucx_packed.data(), &rkey->ucx_rkey) != UCS_OK) {
      rkey->ucx_rkey = nullptr;
      return PLASMA_TP_ERR_BAD_RKEY;
    }
  }
  *out = rkey->ucx_rkey;
  return PLASMA_TP_OK;
}

void ReleaseRkey(Context* ctx, RemoteKey* rkey) {
  if (rkey->ucx_rkey != nullptr) ucp_rkey_destroy(rkey->ucx_rkey);
  ctx->remote_keys.erase(rkey);
  delete rkey;
}

bool RemoteRangeInside(const PackedRkeyHeader& key, uint64_t remote_addr, uint64_t length) {
  return remote_addr >= key.base && length <= key.length &&
         remote_addr - key.base <= key.length - length;
}

int CheckLocalBuffer(Context* ctx, void* mem, const void* buf, size_t length, Registration** out) {
  *out = nullptr;
  if (mem == nullptr) return PLASMA_TP_OK;
  auto* reg = static_cast<Registration*>(mem);
  if (ctx->registrations.count(reg) == 0 || reg->deregistering) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  if (!Contains(*reg, buf, length)) return PLASMA_TP_ERR_OUT_OF_BOUNDS;
  *out = reg;
  return PLASMA_TP_OK;
}

int FindServedRange(Context* ctx, uint64_t key, uint64_t remote_addr, uint64_t length,
                    Registration** out) {
  auto it = ctx->by_key.find(key);
  if (it == ctx->by_key.end()) return PLASMA_TP_ERR_BAD_RKEY;
  Registration* reg = it->second;
  PackedRkeyHeader range{};
  range.base = reinterpret_cast<uintptr_t>(reg->base);
  range.length = reg->length;
  if (!RemoteRangeInside(range, remote_addr, length)) return PLASMA_TP_ERR_OUT_OF_BOUNDS;
  *out = reg;
  return PLASMA_TP_OK;
}

}  // namespace plasma_ucx
