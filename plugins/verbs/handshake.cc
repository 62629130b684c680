#include "plugins/verbs/handshake.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "plugins/verbs/connection.h"
#include "plugins/verbs/request.h"

namespace plasma_verbs {
namespace {

constexpr const char* kBlobPrefix = "verbs:";

// "HOST", "HOST:PORT", ":PORT", "[V6]", "[V6]:PORT".
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
  if (colon == std::string::npos) {
    *host = text;
    return true;
  }
  if (text.find(':', colon + 1) != std::string::npos) return false;
  *host = text.substr(0, colon);
  *port = text.substr(colon + 1);
  return !port->empty();
}

std::string NumericHost(const sockaddr* addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, text, sizeof(text));
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, text, sizeof(text));
  }
  return text;
}

uint16_t PortOf(const sockaddr* addr) {
  return ntohs(addr->sa_family == AF_INET ? reinterpret_cast<const sockaddr_in*>(addr)->sin_port
                                          : reinterpret_cast<const sockaddr_in6*>(addr)->sin6_port);
}

std::string HostPort(const sockaddr* addr) {
  std::string host = NumericHost(addr);
  if (addr->sa_family == AF_INET6) host = "[" + host + "]";
  return host + ":" + std::to_string(PortOf(addr));
}

// For a wildcard bind: the address peers should dial. The RDMA port's own
// IPv4 address when its GID carries one, else the first non-loopback IPv4
// address of an interface that is up, else loopback.
std::string PublishedHost(Context* ctx) {
  std::string gid_address = GidIpv4(ctx->device.gid);
  if (!gid_address.empty()) return gid_address;
  std::string found = "127.0.0.1";
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return found;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    if ((it->ifa_flags & IFF_UP) == 0 || (it->ifa_flags & IFF_LOOPBACK) != 0) continue;
    found = NumericHost(it->ifa_addr);
    break;
  }
  freeifaddrs(list);
  return found;
}

void Watch(Connection* conn) {
  uint32_t wanted = EPOLLIN | EPOLLRDHUP;
  if (!conn->tcp_out.empty() || conn->state == ConnState::kTcpConnecting) wanted |= EPOLLOUT;
  conn->ctx->WatchFd(conn->fd, &conn->target, wanted, &conn->watched);
}

void QueueBytes(Connection* conn, const uint8_t* bytes, size_t len) {
  conn->tcp_out.append(reinterpret_cast<const char*>(bytes), len);
}

void QueueHello(Connection* conn) {
  uint8_t bytes[kHelloSize];
  conn->LocalHello().Encode(bytes);
  QueueBytes(conn, bytes, sizeof(bytes));
}

}  // namespace

int Listen(Context* ctx, const char* bind_hint, Listener** out) {
  std::string host, port = "0";
  if (bind_hint != nullptr && *bind_hint != '\0' && !SplitHostPort(bind_hint, &host, &port)) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: cannot parse listen address '%s' (HOST, HOST:PORT, "
             ":PORT or [V6]:PORT)", bind_hint);
    return PLASMA_TP_ERR_ADDRESS;
  }
  char* port_end = nullptr;
  unsigned long port_number = std::strtoul(port.c_str(), &port_end, 10);
  if (port.empty() || *port_end != '\0' || port_number > 65535 || !std::isdigit(port[0])) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: bad port in listen address '%s'", bind_hint);
    return PLASMA_TP_ERR_ADDRESS;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: cannot resolve listen address '%s': %s",
             bind_hint ? bind_hint : "", gai_strerror(rc));
    return PLASMA_TP_ERR_ADDRESS;
  }
  // IPv4 first when the host was not given: the wildcard then reaches the
  // GID's IPv4 address.
  addrinfo* use = found;
  for (addrinfo* it = found; host.empty() && it != nullptr; it = it->ai_next) {
    if (it->ai_family == AF_INET) {
      use = it;
      break;
    }
  }
  int fd = socket(use->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || bind(fd, use->ai_addr, use->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    int err = errno;
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: cannot listen on %s: %s", HostPort(use->ai_addr).c_str(),
             std::strerror(err));
    if (fd >= 0) close(fd);
    freeaddrinfo(found);
    return err == EADDRINUSE || err == EADDRNOTAVAIL ? PLASMA_TP_ERR_ADDRESS : PLASMA_TP_ERR_IO;
  }
  freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  auto* listener = new Listener;
  listener->ctx = ctx;
  listener->fd = fd;
  std::string published = NumericHost(reinterpret_cast<sockaddr*>(&bound));
  if (published == "0.0.0.0" || published == "::") published = PublishedHost(ctx);
  if (published.find(':') != std::string::npos) published = "[" + published + "]";
  listener->address_blob = std::string(kBlobPrefix) + published + ":" +
                           std::to_string(PortOf(reinterpret_cast<sockaddr*>(&bound)));
  if (!ctx->WatchFd(fd, &listener->target, EPOLLIN, &listener->watched)) {
    close(fd);
    delete listener;
    return PLASMA_TP_ERR_IO;
  }
  ctx->listeners.insert(listener);
  ctx->Log(PLASMA_TP_LOG_DEBUG, "verbs: listening on %s", listener->address_blob.c_str());
  *out = listener;
  return PLASMA_TP_OK;
}

void DestroyConnection(Context* ctx, Connection* conn) {
  conn->Fail(PLASMA_TP_ERR_CANCELED, "closed");
  if (conn->listener != nullptr) {
    conn->listener->pending.erase(conn);
    auto& ready = conn->listener->ready;
    for (auto it = ready.begin(); it != ready.end(); ++it) {
      if (*it == conn) {
        ready.erase(it);
        break;
      }
    }
  }
  ctx->connections.erase(conn);
  ctx->handles.erase(conn);
  delete conn;
}

void CloseListener(Context* ctx, Listener* listener) {
  // Connections that were never accepted go with it.
  std::vector<Connection*> unclaimed(listener->pending.begin(), listener->pending.end());
  unclaimed.insert(unclaimed.end(), listener->ready.begin(), listener->ready.end());
  for (Connection* conn : unclaimed) DestroyConnection(ctx, conn);
  ctx->UnwatchFd(listener->fd, &listener->watched);
  close(listener->fd);
  ctx->listeners.erase(listener);
  delete listener;
}

void AcceptPending(Context* ctx, Listener* listener) {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    int fd = accept4(listener->fd, reinterpret_cast<sockaddr*>(&from), &from_len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != listener->last_accept_errno) {
        // Said once per kind of failure, not on every progress() call.
        ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: accepting on %s failed: %s%s",
                 listener->address_blob.c_str(), std::strerror(err),
                 err == EMFILE || err == ENFILE
                     ? " (each connection holds one socket: raise the open-file limit, ulimit -n)"
                     : "");
      }
      listener->last_accept_errno = err == EAGAIN || err == EWOULDBLOCK ? 0 : err;
      return;
    }
    listener->last_accept_errno = 0;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto* conn = new Connection(ctx, /*acceptor=*/true);
    conn->fd = fd;
    conn->listener = listener;
    conn->peer = HostPort(reinterpret_cast<sockaddr*>(&from));
    listener->pending.insert(conn);
    ctx->connections.insert(conn);
    ctx->events++;
    int rc = conn->CreateQueuePair();
    if (rc != PLASMA_TP_OK) {
      conn->Fail(rc, "cannot create its queue pair");
      ctx->to_delete.push_back(conn);
      continue;
    }
    Watch(conn);
  }
}

int AcceptConnection(Context* ctx, Listener* listener, Connection** out) {
  if (listener->ready.empty()) return PLASMA_TP_IN_PROGRESS;
  Connection* conn = listener->ready.front();
  listener->ready.pop_front();
  conn->listener = nullptr;
  ctx->handles.insert(conn);
  *out = conn;
  return PLASMA_TP_OK;
}

int Connect(Context* ctx, const void* blob, size_t len, Connection** out) {
  const size_t prefix = std::strlen(kBlobPrefix);
  if (blob == nullptr || len <= prefix || len > kMaxAddressBlobSize ||
      std::memcmp(blob, kBlobPrefix, prefix) != 0) {
    return PLASMA_TP_ERR_ADDRESS;
  }
  std::string text(static_cast<const char*>(blob) + prefix, len - prefix);
  std::string host, port;
  if (!SplitHostPort(text, &host, &port) || port.empty() || port.size() > 5) {
    return PLASMA_TP_ERR_ADDRESS;
  }
  for (char c : port) {
    if (c < '0' || c > '9') return PLASMA_TP_ERR_ADDRESS;
  }
  unsigned long port_number = std::strtoul(port.c_str(), nullptr, 10);
  if (port_number == 0 || port_number > 65535) return PLASMA_TP_ERR_ADDRESS;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port_number));
    addr_len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port_number));
    addr_len = sizeof(*v6);
  } else {
    return PLASMA_TP_ERR_ADDRESS;
  }
  auto* conn = new Connection(ctx, /*acceptor=*/false);
  conn->peer = HostPort(reinterpret_cast<sockaddr*>(&addr));
  ctx->connections.insert(conn);
  ctx->handles.insert(conn);
  *out = conn;
  int rc = conn->CreateQueuePair();
  if (rc != PLASMA_TP_OK) {
    conn->Fail(rc, "cannot create its queue pair");
    return PLASMA_TP_OK;  // the failure shows in conn_status()
  }
  conn->StartConnect(reinterpret_cast<sockaddr*>(&addr), addr_len);
  return PLASMA_TP_OK;
}

int Connection::StartConnect(const sockaddr* addr, socklen_t len) {
  fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Fail(PLASMA_TP_ERR_IO, std::string("socket: ") + std::strerror(errno));
    return PLASMA_TP_ERR_IO;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  state = ConnState::kTcpConnecting;
  if (connect(fd, addr, len) != 0 && errno != EINPROGRESS) {
    int err = errno;
    Fail(err == ECONNREFUSED ? PLASMA_TP_ERR_CONNECTION_REFUSED : PLASMA_TP_ERR_IO,
         std::string("connect: ") + std::strerror(err));
    return failure_status;
  }
  Watch(this);
  return PLASMA_TP_OK;
}

void Connection::CheckDeadline(Clock::time_point now) {
  if (state == ConnState::kUp || state == ConnState::kFailed || now < deadline) return;
  Fail(PLASMA_TP_ERR_TIMED_OUT, std::string("set-up stalled (") + StateName(state) + ") for " +
                                    std::to_string(ctx->config.connect_timeout_ms) +
                                    " ms (PLASMA_VERBS_CONNECT_TIMEOUT_MS)");
}

void Connection::OnSocketEvent(uint32_t events) {
  if (state == ConnState::kFailed) return;
  if (state == ConnState::kTcpConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = 0;
    socklen_t err_len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      Fail(err == ECONNREFUSED ? PLASMA_TP_ERR_CONNECTION_REFUSED
           : err == ETIMEDOUT  ? PLASMA_TP_ERR_TIMED_OUT
                               : PLASMA_TP_ERR_CONNECTION_RESET,
           std::string("connect: ") + std::strerror(err));
      return;
    }
    state = ConnState::kAwaitingHello;
    QueueHello(this);
  }
  // Out.
  while (!tcp_out.empty()) {
    ssize_t n = send(fd, tcp_out.data(), tcp_out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      tcp_out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    Fail(PLASMA_TP_ERR_CONNECTION_RESET, std::string("side channel: ") + std::strerror(errno));
    return;
  }
  // In.
  bool closed = false;
  for (;;) {
    char chunk[256];
    ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      tcp_in.append(chunk, static_cast<size_t>(n));
      if (tcp_in.size() > 4 * kHelloSize) break;  // garbage; judged below
      continue;
    }
    if (n == 0) closed = true;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) closed = true;
    break;
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(tcp_in.data());
  if (state == ConnState::kAwaitingHello && tcp_in.size() >= kHelloSize) {
    Hello hello = Hello::Decode(bytes);
    tcp_in.erase(0, kHelloSize);
    if (hello.magic != kHelloMagic || hello.version != kWireVersion) {
      Fail(PLASMA_TP_ERR_PROTOCOL, "the peer does not speak this verbs plugin's protocol "
                                   "(another transport, or another version, on that address?)");
      return;
    }
    if (ToReadyToReceive(hello) != PLASMA_TP_OK) return;
    if (acceptor) {
      QueueHello(this);
      state = ConnState::kAwaitingReady;
    } else {
      if (ToReadyToSend() != PLASMA_TP_OK) return;
      uint8_t ready[4];
      Put32(ready, kReadyMagic);
      QueueBytes(this, ready, sizeof(ready));
      BecomeUp();
      if (Failed()) return;
    }
    OnSocketEvent(EPOLLOUT);  // write what was queued
    return;
  }
  if (state == ConnState::kAwaitingReady && tcp_in.size() >= 4) {
    uint32_t magic = Get32(bytes);
    tcp_in.erase(0, 4);
    if (magic != kReadyMagic) {
      Fail(PLASMA_TP_ERR_PROTOCOL, "bad ready message on the side channel");
      return;
    }
    if (ToReadyToSend() != PLASMA_TP_OK) return;
    if (listener != nullptr) {
      listener->pending.erase(this);
      listener->ready.push_back(this);
    }
    BecomeUp();
    return;
  }
  if (state == ConnState::kUp && !tcp_in.empty()) {
    Fail(PLASMA_TP_ERR_PROTOCOL, "unexpected bytes on the side channel");
    return;
  }
  if (closed) {
    if (state == ConnState::kUp) {
      Fail(PLASMA_TP_ERR_CONNECTION_RESET, "the peer closed the connection", PLASMA_TP_LOG_INFO);
    } else {
      Fail(PLASMA_TP_ERR_CONNECTION_RESET, "the peer closed the side channel during set-up");
    }
    return;
  }
  if (!Failed()) Watch(this);
}

}  // namespace plasma_verbs
