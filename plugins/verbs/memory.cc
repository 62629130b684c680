#include "plugins/verbs/memory.h"

#include <cerrno>
#include <cstring>

#include "plugins/verbs/connection.h"
#include "plugins/verbs/context.h"
#include "plugins/verbs/wire_format.h"

namespace plasma_verbs {

bool Registration::Contains(const void* addr, uint64_t len) const {
  uint64_t start = reinterpret_cast<uintptr_t>(addr);
  uint64_t begin = reinterpret_cast<uintptr_t>(base);
  return start >= begin && len <= length && start - begin <= length - len;
}

int RegisterMemory(Context* ctx, void* addr, size_t length, uint32_t access, Registration** out) {
  if (addr == nullptr || length == 0 ||
      (access & ~(PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ)) != 0 || access == 0) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  // REMOTE_READ on every MR: a send above the peer's eager limit is READ by
  // the receiver straight out of the sender's registered buffer (kRts). Only
  // a REMOTE_READ registration has a packed key for the host to hand out.
  ibv_mr* mr = ibv_reg_mr(ctx->device.pd, addr, length,
                          IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
  if (mr == nullptr) {
    int err = errno;
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: ibv_reg_mr of %zu bytes failed: %s%s", length,
             std::strerror(err),
             err == ENOMEM || err == EPERM ? " (is 'ulimit -l' high enough?)" : "");
    return err == ENOMEM ? PLASMA_TP_ERR_NO_MEMORY : PLASMA_TP_ERR_IO;
  }
  auto* reg = new Registration;
  reg->mr = mr;
  reg->base = static_cast<uint8_t*>(addr);
  reg->length = length;
  reg->access = access;
  Put32(reg->packed_rkey, kRkeyMagic);
  Put32(reg->packed_rkey + 4, mr->rkey);
  Put64(reg->packed_rkey + 8, reinterpret_cast<uintptr_t>(addr));
  Put64(reg->packed_rkey + 16, length);
  ctx->registrations.insert(reg);
  *out = reg;
  return PLASMA_TP_OK;
}

int DeregisterMemory(Context* ctx, Registration* reg) {
  if (reg->pins > 0) return PLASMA_TP_IN_PROGRESS;
  ibv_dereg_mr(reg->mr);
  ctx->registrations.erase(reg);
  delete reg;
  return PLASMA_TP_OK;
}

int PackedRkey(Registration* reg, const void** out, size_t* out_len) {
  if ((reg->access & PLASMA_TP_ACCESS_REMOTE_READ) == 0) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  *out = reg->packed_rkey;
  *out_len = kPackedRkeySize;
  return PLASMA_TP_OK;
}

int UnpackRkey(Context* ctx, Connection* conn, const void* packed, size_t len, RemoteKey** out) {
  if (packed == nullptr || len != kPackedRkeySize) return PLASMA_TP_ERR_BAD_RKEY;
  const auto* p = static_cast<const uint8_t*>(packed);
  if (Get32(p) != kRkeyMagic) return PLASMA_TP_ERR_BAD_RKEY;
  auto* rkey = new RemoteKey;
  rkey->conn = conn;
  rkey->rkey = Get32(p + 4);
  rkey->base = Get64(p + 8);
  rkey->length = Get64(p + 16);
  conn->rkeys.insert(rkey);
  ctx->remote_keys.insert(rkey);
  *out = rkey;
  return PLASMA_TP_OK;
}

void ReleaseRkey(Context* ctx, RemoteKey* rkey) {
  if (rkey->conn != nullptr) rkey->conn->rkeys.erase(rkey);
  ctx->remote_keys.erase(rkey);
  delete rkey;
}

int CheckLocalBuffer(Context* ctx, plasma_tp_mem_t mem, const void* buf, uint64_t len,
                     Registration** out) {
  *out = nullptr;
  if (mem == nullptr) return PLASMA_TP_OK;
  auto* reg = reinterpret_cast<Registration*>(mem);
  if (ctx->registrations.count(reg) == 0) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  if (!reg->Contains(buf, len)) return PLASMA_TP_ERR_OUT_OF_BOUNDS;
  *out = reg;
  return PLASMA_TP_OK;
}

bool RemoteRangeInside(const RemoteKey& rkey, uint64_t addr, uint64_t len) {
  return addr >= rkey.base && len <= rkey.length && addr - rkey.base <= rkey.length - len;
}

}  // namespace plasma_verbs
