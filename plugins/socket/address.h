// Bind hints and address blobs of the socket plugin.
//
// Bind hint (from the host): NULL or "" -> all interfaces, any port;
// "HOST", "HOST:PORT", ":PORT", "[IPV6]", "[IPV6]:PORT", or a bare IPv6
// literal. HOST may be a name (resolved once, at listen time).
//
// Address blob (published by listen, passed to connect): the text
// "tcp:IPV4:PORT" or "tcp:[IPV6]:PORT", no terminating NUL. Always numeric,
// so connect() never needs a name lookup and never blocks.
#pragma once

#include <sys/socket.h>

#include <string>

namespace plasma_socket {

struct Context;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

constexpr size_t kMaxAddressBlobSize = 64;

int ParseBindHint(Context* ctx, const char* hint, SocketAddress* out);
// Checks that `hint` has bind-hint syntax (no name lookup, never blocks):
// PLASMA_TP_ERR_ADDRESS after an ERROR log line if not. For init()'s
// local_address, which this plugin otherwise ignores.
int ValidateBindHint(Context* ctx, const char* hint);
int ParseAddressBlob(const void* blob, size_t len, SocketAddress* out);

// The blob peers should dial for a socket bound to `bound`. A wildcard bind
// publishes the first non-loopback address of an interface that is up
// (loopback if there is none).
std::string MakeAddressBlob(const SocketAddress& bound);

std::string AddressToString(const SocketAddress& addr);  // "1.2.3.4:5", "[::1]:5"

}  // namespace plasma_socket
