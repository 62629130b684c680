// Opening the RDMA device: which device, port and GID (PLASMA_VERBS_DEVICE,
// _PORT, _GID_INDEX, or init()'s local_address, or the first active port's
// RoCE v2 IPv4 GID), and the objects every connection shares: the
// protection domain and the completion channel.
#pragma once

#include <infiniband/verbs.h>

#include <cstdint>
#include <string>

namespace plasma_verbs {

struct Config;
struct Context;

struct Device {
  ibv_context* verbs = nullptr;
  ibv_pd* pd = nullptr;
  ibv_comp_channel* channel = nullptr;  // non-blocking; in the context's epoll set
  std::string name;
  uint8_t port = 0;
  ibv_device_attr attr{};
  ibv_port_attr port_attr{};
  bool ethernet = false;  // RoCE: peers addressed by GID; InfiniBand: by LID
  int gid_index = 0;
  ibv_gid gid{};
  const char* gid_kind = "";  // "RoCE v2", "RoCE v1", "IB"
  uint32_t max_rd_atomic = 1;  // READs in flight per QP, both directions

  Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  ~Device();
};

// PLASMA_TP_OK, or PLASMA_TP_ERR_NO_DEVICE / _IO after an ERROR log line that
// says what was looked for and what was found.
int OpenDevice(Context* ctx, const char* local_address, Device* device);

// "10.0.0.1" for an IPv4-mapped GID, "" otherwise.
std::string GidIpv4(const ibv_gid& gid);
std::string GidText(const ibv_gid& gid);

}  // namespace plasma_verbs
