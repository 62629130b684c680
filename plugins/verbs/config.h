// The verbs plugin's tunables, each from one PLASMA_VERBS_* environment
// variable with the default below (docs/transport-abi.md lists them).
#pragma once

#include <cstdint>
#include <string>

namespace plasma_verbs {

struct Context;

struct Config {
  std::string device;          // PLASMA_VERBS_DEVICE: "" = first device with an active port
  uint32_t port = 0;           // PLASMA_VERBS_PORT: 0 = first active port
  int32_t gid_index = -1;      // PLASMA_VERBS_GID_INDEX: -1 = the RoCE v2 IPv4 GID (RoCE), 0 (IB)
  // PLASMA_VERBS_RNDV_THRESHOLD: messages up to this many bytes go eager
  // through the receiver's bounce buffers; longer ones, and every object the
  // manager does not inline, by RDMA READ. Chosen by measurement
  // (docs/benchmarks.md).
  uint32_t rndv_threshold = 8192;
  uint32_t recv_buffers = 32;  // PLASMA_VERBS_RECV_BUFFERS: per connection, = the peer's credits
  uint32_t send_buffers = 32;  // PLASMA_VERBS_SEND_BUFFERS: per connection, for unregistered sends
  uint32_t send_queue = 128;   // PLASMA_VERBS_SEND_QUEUE: send work requests per connection
  uint32_t max_inline = 64;    // PLASMA_VERBS_MAX_INLINE: sends up to this go inline (0: never)
  uint32_t signal_every = 16;  // PLASMA_VERBS_SIGNAL_EVERY: completion moderation in a burst
  uint32_t read_piece = 1u << 20;  // PLASMA_VERBS_READ_PIECE: bytes per RDMA READ work request
  uint32_t read_depth = 0;     // PLASMA_VERBS_READ_DEPTH: READs in flight per connection; 0 = device max
  uint32_t connect_timeout_ms = 10000;  // PLASMA_VERBS_CONNECT_TIMEOUT_MS
  uint32_t qp_timeout = 14;    // PLASMA_VERBS_QP_TIMEOUT: ACK timeout exponent, 4.096 us * 2^n
};

// Reads the environment. Returns PLASMA_TP_OK, or PLASMA_TP_ERR_INVALID_ARGUMENT
// after an ERROR log line naming the variable.
int ConfigFromEnvironment(Context* ctx, Config* out);

}  // namespace plasma_verbs
