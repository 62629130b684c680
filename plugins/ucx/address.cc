#include "plugins/ucx/address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstdlib>
#include <cstring>

#include "plugins/ucx/context.h"

namespace plasma_ucx {
namespace {

constexpr char kBlobPrefix[] = "ucx:";

// Splits "HOST:PORT", "[V6]:PORT", ":PORT", "HOST", "[V6]" or a bare IPv6
// literal into host and port text. False if the shape is wrong.
bool SplitHostPort(const std::string& text, std::string* host, std::string* port) {
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return false;
    *host = text.substr(1, close - 1);
    if (close + 1 == text.size()) return true;
    if (text[close + 1] != ':') return false;
    *port = text.substr(close + 2);
    return !port->empty();
  }
  size_t colon = text.find(':');
  if (colon != std::string::npos && text.find(':', colon + 1) != std::string::npos) {
    *host = text;  // a bare IPv6 literal
    return true;
  }
  if (colon == std::string::npos) {
    *host = text;
    return true;
  }
  *host = text.substr(0, colon);
  *port = text.substr(colon + 1);
  return !port->empty();
}

bool ParsePort(const std::string& text, uint16_t* port) {
  if (text.empty()) {
    *port = 0;
    return true;
  }
  char* end = nullptr;
  unsigned long value = std::strtoul(text.c_str(), &end, 10);
  if (*end != '\0' || text[0] == '-' || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// Numeric IPv4/IPv6 only: blobs never need a lookup.
bool NumericAddress(const std::string& host, uint16_t port, SocketAddress* out) {
  *out = SocketAddress{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out->length = sizeof(*v4);
    return true;
  }
  *out = SocketAddress{};
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out->length = sizeof(*v6);
    return true;
  }
  return false;
}

bool IsWildcard(const SocketAddress& address) {
  if (address.storage.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr.s_addr ==
           htonl(INADDR_ANY);
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  return IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
}

uint16_t PortOf(const SocketAddress& address) {
  if (address.storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
}

std::string HostText(const SocketAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr, text,
              sizeof(text));
    return text;
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr, text,
            sizeof(text));
  return std::string("[") + text + "]";
}

// The first IPv4 address of an up, non-loopback interface; else 127.0.0.1.
std::string PublishedHost() {
  std::string found = "127.0.0.1";
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return found;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    if (!(it->ifa_flags & IFF_UP) || (it->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, text,
              sizeof(text));
    found = text;
    break;
  }
  freeifaddrs(list);
  return found;
}

}  // namespace

int ParseBindHint(Context* ctx, const char* hint, SocketAddress* out) {
  std::string text = hint != nullptr ? hint : "";
  std::string host, port_text;
  uint16_t port = 0;
  if (!SplitHostPort(text, &host, &port_text) || !ParsePort(port_text, &port)) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: bind hint '%s' is not HOST, HOST:PORT or [IPV6]:PORT",
             text.c_str());
    return PLASMA_TP_ERR_ADDRESS;
  }
  if (host.empty()) host = "0.0.0.0";
  if (NumericAddress(host, port, out)) return PLASMA_TP_OK;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "ucx: cannot resolve '%s': %s", host.c_str(), gai_strerror(rc));
    return PLASMA_TP_ERR_ADDRESS;
  }
  *out = SocketAddress{};
  std::memcpy(&out->storage, found->ai_addr, found->ai_addrlen);
  out->length = found->ai_addrlen;
  freeaddrinfo(found);
  if (out->storage.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&out->storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&out->storage)->sin6_port = htons(port);
  }
  return PLASMA_TP_OK;
}

int ParseAddressBlob(const void* blob, size_t len, SocketAddress* out) {
  const size_t prefix = sizeof(kBlobPrefix) - 1;
  if (blob == nullptr || len <= prefix || len > kMaxAddressBlobSize) return PLASMA_TP_ERR_ADDRESS;
  std::string text(static_cast<const char*>(blob), len);
  if (text.compare(0, prefix, kBlobPrefix) != 0) return PLASMA_TP_ERR_ADDRESS;
  std::string host, port_text;
  uint16_t port = 0;
  if (!SplitHostPort(text.substr(prefix), &host, &port_text) || port_text.empty() ||
      !ParsePort(port_text, &port) || port == 0 || !NumericAddress(host, port, out)) {
    return PLASMA_TP_ERR_ADDRESS;
  }
  return PLASMA_TP_OK;
}

std::string MakeAddressBlob(const SocketAddress& bound) {
  std::string host = IsWildcard(bound) ? PublishedHost() : HostText(bound);
  return kBlobPrefix + host + ":" + std::to_string(PortOf(bound));
}

std::string AddressToString(const SocketAddress& address) {
  return HostText(address) + ":" + std::to_string(PortOf(address));
}

}  // namespace plasma_ucx
