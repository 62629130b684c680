// Bind hints (from the host) and the address blob a listener publishes.
//
// Bind hint: NULL or "" (all interfaces, any port), "HOST", "HOST:PORT",
// ":PORT", "[IPV6]" or "[IPV6]:PORT"; HOST may be a name, resolved at
// listen(). Blob: "ucx:IPV4:PORT" or "ucx:[IPV6]:PORT", always numeric, so
// connect() never looks a name up. It is a sockaddr, not a UCP worker
// address: a ucp_listener is what rdmacm (RoCE, InfiniBand) needs to set up
// a connection, and it works over TCP alike.
#pragma once

#include <sys/socket.h>

#include <string>

namespace plasma_ucx {

struct Context;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

constexpr size_t kMaxAddressBlobSize = 64;

int ParseBindHint(Context* ctx, const char* hint, SocketAddress* out);
int ParseAddressBlob(const void* blob, size_t len, SocketAddress* out);
// What peers dial for a listener bound to `bound`: a wildcard publishes the
// first address of an interface that is up and not loopback (loopback if
// there is none).
std::string MakeAddressBlob(const SocketAddress& bound);
std::string AddressToString(const SocketAddress& address);  // "1.2.3.4:5", "[::1]:5"

}  // namespace plasma_ucx
