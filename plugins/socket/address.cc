#include "plugins/socket/address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "plugins/socket/context.h"
#include "transport/plasma_transport.h"

namespace plasma_socket {

namespace {

bool ParsePort(const std::string& text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  unsigned long value = std::strtoul(text.c_str(), nullptr, 10);
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// Splits "HOST", "HOST:PORT", ":PORT", "[V6]", "[V6]:PORT", "V6".
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
  if (colon == std::string::npos || text.find(':', colon + 1) != std::string::npos) {
    *host = text;  // no port, or a bare IPv6 literal
    return true;
  }
  *host = text.substr(0, colon);
  *port = text.substr(colon + 1);
  return !port->empty();
}

bool NumericAddress(const std::string& host, uint16_t port, SocketAddress* out) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  std::memset(&out->storage, 0, sizeof(out->storage));
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out->length = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out->length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool IsWildcard(const SocketAddress& addr) {
  if (addr.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&addr.storage)->sin_addr.s_addr ==
           htonl(INADDR_ANY);
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr.storage);
  return IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
}

uint16_t PortOf(const SocketAddress& addr) {
  if (addr.family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr.storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr.storage)->sin6_port);
}

std::string HostOf(const SocketAddress& addr) {
  char text[INET6_ADDRSTRLEN] = "";
  if (addr.family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr.storage)->sin_addr, text,
              sizeof(text));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr.storage)->sin6_addr, text,
              sizeof(text));
  }
  return text;
}

// For a wildcard bind: an address of this host that peers can dial.
SocketAddress AdvertisedAddress(const SocketAddress& bound) {
  SocketAddress result = bound;
  ifaddrs* list = nullptr;
  bool found = false;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* ifa = list; ifa != nullptr && !found; ifa = ifa->ifa_next) {
      if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != bound.family()) continue;
      if (!(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK)) continue;
      if (bound.family() == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(ifa->ifa_addr);
        if (IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr)) continue;  // needs a scope id
        std::memcpy(&result.storage, v6, sizeof(sockaddr_in6));
        reinterpret_cast<sockaddr_in6*>(&result.storage)->sin6_port = htons(PortOf(bound));
      } else {
        std::memcpy(&result.storage, ifa->ifa_addr, sizeof(sockaddr_in));
        reinterpret_cast<sockaddr_in*>(&result.storage)->sin_port = htons(PortOf(bound));
      }
      found = true;
    }
    freeifaddrs(list);
  }
  if (!found) {
    NumericAddress(bound.family() == AF_INET ? "127.0.0.1" : "::1", PortOf(bound), &result);
  }
  return result;
}

}  // namespace

int ParseBindHint(Context* ctx, const char* hint, SocketAddress* out) {
  std::string host;
  std::string port_text;
  if (hint != nullptr && !SplitHostPort(hint, &host, &port_text)) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "socket: cannot parse bind hint '%s'", hint);
    return PLASMA_TP_ERR_ADDRESS;
  }
  uint16_t port = 0;
  if (!port_text.empty() && !ParsePort(port_text, &port)) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "socket: bad port in bind hint '%s'", hint);
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
    ctx->Log(PLASMA_TP_LOG_ERROR, "socket: cannot resolve bind host '%s': %s", host.c_str(),
             gai_strerror(rc));
    return PLASMA_TP_ERR_ADDRESS;
  }
  std::memcpy(&out->storage, found->ai_addr, found->ai_addrlen);
  out->length = found->ai_addrlen;
  if (out->family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&out->storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&out->storage)->sin6_port = htons(port);
  }
  freeaddrinfo(found);
  return PLASMA_TP_OK;
}

int ValidateBindHint(Context* ctx, const char* hint) {
  if (hint == nullptr || *hint == '\0') return PLASMA_TP_OK;
  std::string text = hint;
  std::string host;
  std::string port_text;
  uint16_t port = 0;
  const char* problem = nullptr;
  if (!SplitHostPort(text, &host, &port_text)) {
    problem = "want HOST, HOST:PORT, :PORT, [IPV6] or [IPV6]:PORT";
  } else if (!port_text.empty() && !ParsePort(port_text, &port)) {
    problem = "bad port";
  } else if (text[0] == '[' || host.find(':') != std::string::npos) {
    in6_addr v6;
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) problem = "bad IPv6 address";
  } else if (host.size() > 253 || !std::all_of(host.begin(), host.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                      c == '_';
             })) {
    problem = "not an IPv4 address or host name";
  }
  if (problem == nullptr) return PLASMA_TP_OK;
  ctx->Log(PLASMA_TP_LOG_ERROR, "socket: local address '%s' is not a bind hint (%s)", hint,
           problem);
  return PLASMA_TP_ERR_ADDRESS;
}

int ParseAddressBlob(const void* blob, size_t len, SocketAddress* out) {
  if (blob == nullptr || len < 4 || len > kMaxAddressBlobSize) return PLASMA_TP_ERR_ADDRESS;
  std::string text(static_cast<const char*>(blob), len);
  if (text.compare(0, 4, "tcp:") != 0) return PLASMA_TP_ERR_ADDRESS;
  std::string host;
  std::string port_text;
  uint16_t port = 0;
  if (!SplitHostPort(text.substr(4), &host, &port_text) || !ParsePort(port_text, &port) ||
      port == 0 || !NumericAddress(host, port, out)) {
    return PLASMA_TP_ERR_ADDRESS;
  }
  return PLASMA_TP_OK;
}

std::string MakeAddressBlob(const SocketAddress& bound) {
  return "tcp:" + AddressToString(IsWildcard(bound) ? AdvertisedAddress(bound) : bound);
}

std::string AddressToString(const SocketAddress& addr) {
  if (addr.family() == AF_INET6) return "[" + HostOf(addr) + "]:" + std::to_string(PortOf(addr));
  return HostOf(addr) + ":" + std::to_string(PortOf(addr));
}

}  // namespace plasma_socket
