#include "plugins/verbs/device.h"

#include <arpa/inet.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "plugins/verbs/config.h"
#include "plugins/verbs/context.h"
#include "transport/plasma_transport.h"

namespace plasma_verbs {
namespace {

// READs in flight per QP never exceed this, whatever the device allows: each
// costs responder resources on the peer.
constexpr uint32_t kMaxReadsInFlight = 16;

bool IsIpv4Mapped(const ibv_gid& gid) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(gid.raw, prefix, sizeof(prefix)) == 0;
}

bool IsZero(const ibv_gid& gid) {
  for (uint8_t byte : gid.raw) {
    if (byte != 0) return false;
  }
  return true;
}

struct GidChoice {
  int index = -1;
  ibv_gid gid{};
  const char* kind = "";
};

const char* GidKind(uint32_t type) {
  switch (type) {
    case IBV_GID_TYPE_ROCE_V2: return "RoCE v2";
    case IBV_GID_TYPE_ROCE_V1: return "RoCE v1";
    default: return "IB";
  }
}

// The GID a port is addressed by: `wanted` if set, else the first RoCE v2
// IPv4 GID (then any RoCE v2, then index 0) on Ethernet, index 0 on IB. With
// `address`, only a GID carrying that IPv4 address qualifies.
GidChoice ChooseGid(ibv_context* verbs, uint8_t port, const ibv_port_attr& attr, int wanted,
                    const std::string& address) {
  GidChoice best;
  int best_rank = 0;
  for (int i = 0; i < attr.gid_tbl_len; ++i) {
    if (wanted >= 0 && i != wanted) continue;
    ibv_gid_entry entry{};
    if (ibv_query_gid_ex(verbs, port, i, &entry, 0) != 0) continue;
    ibv_gid gid;
    std::memcpy(gid.raw, entry.gid.raw, sizeof(gid.raw));
    if (IsZero(gid)) continue;
    if (!address.empty() && GidIpv4(gid) != address) continue;
    int rank = 1;
    if (attr.link_layer == IBV_LINK_LAYER_ETHERNET) {
      if (entry.gid_type == IBV_GID_TYPE_ROCE_V2) rank = IsIpv4Mapped(gid) ? 4 : 3;
      else rank = 2;
    }
    if (rank > best_rank) {
      best_rank = rank;
      best.index = i;
      best.gid = gid;
      best.kind = GidKind(entry.gid_type);
    }
  }
  return best;
}

bool IsIpv4Literal(const char* text, std::string* host) {
  if (text == nullptr) return false;
  std::string value(text);
  size_t colon = value.find(':');
  if (colon != std::string::npos) value.resize(colon);
  in_addr parsed;
  if (inet_pton(AF_INET, value.c_str(), &parsed) != 1) return false;
  *host = value;
  return true;
}

}  // namespace

std::string GidIpv4(const ibv_gid& gid) {
  if (!IsIpv4Mapped(gid)) return "";
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, gid.raw + 12, text, sizeof(text));
  return text;
}

std::string GidText(const ibv_gid& gid) {
  char text[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, gid.raw, text, sizeof(text));
  return text;
}

Device::~Device() {
  if (channel != nullptr) ibv_destroy_comp_channel(channel);
  if (pd != nullptr) ibv_dealloc_pd(pd);
  if (verbs != nullptr) ibv_close_device(verbs);
}

int OpenDevice(Context* ctx, const char* local_address, Device* device) {
  const Config& config = ctx->config;
  int count = 0;
  ibv_device** list = ibv_get_device_list(&count);
  if (list == nullptr || count == 0) {
    if (list != nullptr) ibv_free_device_list(list);
    int err = errno;
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: no RDMA device found%s; use another transport",
             err == ENOSYS ? " (this kernel has no RDMA support)" : "");
    return PLASMA_TP_ERR_NO_DEVICE;
  }
  // With local_address naming an IPv4 address, prefer the port whose GID
  // table has it (the listen address then sits on the RDMA device).
  std::string address;
  bool by_address = config.device.empty() && IsIpv4Literal(local_address, &address) &&
                    address != "0.0.0.0" && address != "127.0.0.1";
  std::string seen;
  for (int pass = by_address ? 0 : 1; pass < 2; ++pass) {
    for (int d = 0; d < count; ++d) {
      const char* name = ibv_get_device_name(list[d]);
      if (pass == 1 && !seen.empty() && seen.find(name) == std::string::npos) seen += " ";
      if (pass == 1 && seen.find(name) == std::string::npos) seen += name;
      if (!config.device.empty() && config.device != name) continue;
      ibv_context* verbs = ibv_open_device(list[d]);
      if (verbs == nullptr) continue;
      ibv_device_attr attr{};
      if (ibv_query_device(verbs, &attr) != 0) {
        ibv_close_device(verbs);
        continue;
      }
      for (uint8_t port = 1; port <= attr.phys_port_cnt; ++port) {
        if (config.port != 0 && port != config.port) continue;
        ibv_port_attr port_attr{};
        if (ibv_query_port(verbs, port, &port_attr) != 0 || port_attr.state != IBV_PORT_ACTIVE) {
          continue;
        }
        GidChoice gid = ChooseGid(verbs, port, port_attr, config.gid_index,
                                  pass == 0 ? address : std::string());
        bool ethernet = port_attr.link_layer == IBV_LINK_LAYER_ETHERNET;
        if (gid.index < 0 && ethernet) continue;  // RoCE needs a GID
        device->verbs = verbs;
        device->name = name;
        device->port = port;
        device->attr = attr;
        device->port_attr = port_attr;
        device->ethernet = ethernet;
        device->gid_index = gid.index < 0 ? 0 : gid.index;
        device->gid = gid.gid;
        device->gid_kind = gid.index < 0 ? "IB" : gid.kind;
        uint32_t rd = static_cast<uint32_t>(std::min(attr.max_qp_rd_atom, attr.max_qp_init_rd_atom));
        device->max_rd_atomic = std::max<uint32_t>(1, std::min(rd, kMaxReadsInFlight));
        ibv_free_device_list(list);
        device->pd = ibv_alloc_pd(verbs);
        device->channel = device->pd ? ibv_create_comp_channel(verbs) : nullptr;
        if (device->channel == nullptr) {
          ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: cannot set up device %s: %s", name,
                   std::strerror(errno));
          return PLASMA_TP_ERR_IO;
        }
        int flags = fcntl(device->channel->fd, F_GETFL);
        fcntl(device->channel->fd, F_SETFL, flags | O_NONBLOCK);
        return PLASMA_TP_OK;
      }
      ibv_close_device(verbs);
    }
  }
  ibv_free_device_list(list);
  std::string wanted = config.device.empty() ? "any device" : "device '" + config.device + "'";
  if (config.port != 0) wanted += " port " + std::to_string(config.port);
  if (config.gid_index >= 0) wanted += " GID index " + std::to_string(config.gid_index);
  ctx->Log(PLASMA_TP_LOG_ERROR,
           "verbs: no active port with a usable address on %s (devices: %s); check "
           "'ibv_devinfo' and PLASMA_VERBS_DEVICE/_PORT/_GID_INDEX",
           wanted.c_str(), seen.empty() ? "none" : seen.c_str());
  return PLASMA_TP_ERR_NO_DEVICE;
}

}  // namespace plasma_verbs
