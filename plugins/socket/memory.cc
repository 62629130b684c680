#include "plugins/socket/memory.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "plugins/socket/context.h"

namespace plasma_socket {

namespace {

bool RandomKey(uint64_t* out) {
  uint8_t bytes[8];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    got += static_cast<size_t>(n);
  }
  std::memcpy(out, bytes, sizeof(bytes));
  return true;
}

}  // namespace

bool Registration::Contains(const void* addr, uint64_t len) const {
  auto start = reinterpret_cast<uintptr_t>(addr);
  auto begin = reinterpret_cast<uintptr_t>(base);
  return start >= begin && start - begin <= length && len <= length - (start - begin);
}

int RegisterMemory(Context* ctx, void* addr, size_t length, uint32_t access,
                   Registration** out) {
  const uint32_t known = PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ;
  if (addr == nullptr || length == 0 || access == 0 || (access & ~known) != 0) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  auto* reg = new Registration;
  reg->ctx = ctx;
  reg->base = static_cast<uint8_t*>(addr);
  reg->length = length;
  reg->access = access;
  if (access & PLASMA_TP_ACCESS_REMOTE_READ) {
    // Random, so a peer cannot guess its way into memory it was not given;
    // never 0 and never a key another live registration has.
    do {
      if (!RandomKey(&reg->key)) {
        ctx->Log(PLASMA_TP_LOG_ERROR, "socket: getrandom failed: %s", strerror(errno));
        delete reg;
        return PLASMA_TP_ERR_IO;
      }
    } while (reg->key == 0 || ctx->readable_by_key.count(reg->key) != 0);
    uint32_t magic = htole32(kRkeyMagic);
    uint64_t key = htole64(reg->key);
    std::memcpy(reg->packed_rkey, &magic, 4);
    std::memcpy(reg->packed_rkey + 8, &key, 8);
    ctx->readable_by_key[reg->key] = reg;
  }
  ctx->registrations.insert(reg);
  *out = reg;
  return PLASMA_TP_OK;
}

int DeregisterMemory(Context* ctx, Registration* reg) {
  if (reg->key != 0) {
    ctx->readable_by_key.erase(reg->key);  // no new READs from here on
  }
  reg->deregistering = true;
  if (reg->pins > 0) return PLASMA_TP_IN_PROGRESS;
  ctx->registrations.erase(reg);
  delete reg;
  return PLASMA_TP_OK;
}

int PackedRkey(Registration* reg, const void** out, size_t* out_len) {
  if (reg->key == 0 || reg->deregistering) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  *out = reg->packed_rkey;
  *out_len = kPackedRkeySize;
  return PLASMA_TP_OK;
}

int UnpackRkey(Context* ctx, Connection* conn, const void* packed, size_t len, RemoteKey** out) {
  if (packed == nullptr || len != kPackedRkeySize) return PLASMA_TP_ERR_BAD_RKEY;
  uint32_t magic;
  uint64_t key;
  std::memcpy(&magic, packed, 4);
  std::memcpy(&key, static_cast<const uint8_t*>(packed) + 8, 8);
  if (le32toh(magic) != kRkeyMagic) return PLASMA_TP_ERR_BAD_RKEY;
  auto* rkey = new RemoteKey;
  rkey->key = le64toh(key);
  rkey->conn = conn;
  ctx->remote_keys.insert(rkey);
  *out = rkey;
  return PLASMA_TP_OK;
}

void ReleaseRkey(Context* ctx, RemoteKey* rkey) {
  ctx->remote_keys.erase(rkey);
  delete rkey;
}

void OrphanRkeys(Context* ctx, Connection* conn) {
  for (RemoteKey* rkey : ctx->remote_keys) {
    if (rkey->conn == conn) rkey->conn = nullptr;
  }
}

int CheckRemoteRead(Context* ctx, uint64_t key, uint64_t addr, uint64_t len,
                    Registration** out) {
  auto found = ctx->readable_by_key.find(key);
  if (key == 0 || found == ctx->readable_by_key.end()) return PLASMA_TP_ERR_BAD_RKEY;
  Registration* reg = found->second;
  if (!reg->Contains(reinterpret_cast<const void*>(static_cast<uintptr_t>(addr)), len)) {
    return PLASMA_TP_ERR_OUT_OF_BOUNDS;
  }
  *out = reg;
  return PLASMA_TP_OK;
}

int CheckLocalBuffer(Context* ctx, plasma_tp_mem_t mem, const void* buf, uint64_t len) {
  if (mem == nullptr) return PLASMA_TP_OK;
  auto* reg = reinterpret_cast<Registration*>(mem);
  if (ctx->registrations.count(reg) == 0 || reg->deregistering) {
    return PLASMA_TP_ERR_INVALID_ARGUMENT;
  }
  if (!reg->Contains(buf, len)) return PLASMA_TP_ERR_OUT_OF_BOUNDS;
  return PLASMA_TP_OK;
}

void PinRegistration(Registration* reg) { ++reg->pins; }

void UnpinRegistration(Registration* reg) { --reg->pins; }

}  // namespace plasma_socket
