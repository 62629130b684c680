#include "plugins/verbs/config.h"

#include <cerrno>
#include <cstdlib>

#include "plugins/verbs/context.h"
#include "transport/plasma_transport.h"

namespace plasma_verbs {
namespace {

// An unsigned number in [min, max], or false after logging why.
bool ReadNumber(Context* ctx, const char* name, uint64_t min, uint64_t max, uint64_t* value) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return true;
  char* end = nullptr;
  errno = 0;
  unsigned long long parsed = std::strtoull(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || parsed < min || parsed > max) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: %s='%s' is not a number from %llu to %llu", name, text,
             static_cast<unsigned long long>(min), static_cast<unsigned long long>(max));
    return false;
  }
  *value = parsed;
  return true;
}

template <typename T>
bool Read(Context* ctx, const char* name, uint64_t min, uint64_t max, T* field) {
  uint64_t value = static_cast<uint64_t>(*field);
  if (!ReadNumber(ctx, name, min, max, &value)) return false;
  *field = static_cast<T>(value);
  return true;
}

}  // namespace

int ConfigFromEnvironment(Context* ctx, Config* out) {
  Config config;
  if (const char* device = std::getenv("PLASMA_VERBS_DEVICE")) config.device = device;
  uint64_t gid = 0;
  bool ok = Read(ctx, "PLASMA_VERBS_PORT", 1, 255, &config.port) &&
            Read(ctx, "PLASMA_VERBS_RNDV_THRESHOLD", 64, 1u << 20, &config.rndv_threshold) &&
            Read(ctx, "PLASMA_VERBS_RECV_BUFFERS", 2, 4096, &config.recv_buffers) &&
            Read(ctx, "PLASMA_VERBS_SEND_BUFFERS", 1, 4096, &config.send_buffers) &&
            Read(ctx, "PLASMA_VERBS_SEND_QUEUE", 16, 16384, &config.send_queue) &&
            Read(ctx, "PLASMA_VERBS_MAX_INLINE", 0, 1024, &config.max_inline) &&
            Read(ctx, "PLASMA_VERBS_SIGNAL_EVERY", 1, 1024, &config.signal_every) &&
            Read(ctx, "PLASMA_VERBS_READ_PIECE", 4096, 1u << 30, &config.read_piece) &&
            Read(ctx, "PLASMA_VERBS_READ_DEPTH", 1, 256, &config.read_depth) &&
            Read(ctx, "PLASMA_VERBS_CONNECT_TIMEOUT_MS", 100, 600000, &config.connect_timeout_ms) &&
            Read(ctx, "PLASMA_VERBS_QP_TIMEOUT", 1, 31, &config.qp_timeout);
  if (ok && std::getenv("PLASMA_VERBS_GID_INDEX") != nullptr &&
      *std::getenv("PLASMA_VERBS_GID_INDEX") != '\0') {
    ok = ReadNumber(ctx, "PLASMA_VERBS_GID_INDEX", 0, 4095, &gid);
    config.gid_index = static_cast<int32_t>(gid);
  }
  if (!ok) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  // A burst must be able to signal before its send queue fills.
  if (config.signal_every > config.send_queue / 4) config.signal_every = config.send_queue / 4;
  *out = config;
  return PLASMA_TP_OK;
}

}  // namespace plasma_verbs
