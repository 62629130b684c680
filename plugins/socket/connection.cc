#include "plugins/socket/connection.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "plugins/socket/memory.h"
#include "plugins/socket/read_emulation.h"
#include "plugins/socket/request.h"
#include "plugins/socket/tagged_messages.h"

namespace plasma_socket {

namespace {

// Bytes one progress() call reads from one connection before moving on, so
// a single busy peer cannot starve the others.
constexpr uint64_t kReadBudgetPerProgress = 32ull << 20;
constexpr int kMaxIovecs = 64;

int StatusFromErrno(int err) {
  switch (err) {
    case ECONNREFUSED: return PLASMA_TP_ERR_CONNECTION_REFUSED;
    case ETIMEDOUT: return PLASMA_TP_ERR_TIMED_OUT;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED: return PLASMA_TP_ERR_CONNECTION_RESET;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT: return PLASMA_TP_ERR_ADDRESS;
    case ENOMEM:
    case ENOBUFS: return PLASMA_TP_ERR_NO_MEMORY;
    default: return PLASMA_TP_ERR_IO;
  }
}

// Low latency for small frames, and a vanished idle peer (power loss, cable)
// noticed within about 40 s. No TCP_USER_TIMEOUT: it would also kill a
// connection whose receiver merely stopped reading for a while, which our
// own backpressure does on purpose; hosts time out transfers themselves.
void ConfigureDataSocket(Context* ctx, int fd) {
  int one = 1;
  int idle = 10, interval = 5, count = 6;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count)) != 0) {
    ctx->Log(PLASMA_TP_LOG_WARN, "socket: setsockopt on fd %d failed: %s", fd, strerror(errno));
  }
}

FrameHeader HelloFrame() {
  FrameHeader hello;
  hello.type = FrameType::kHello;
  hello.tag = kHelloMagic;
  hello.id = kProtocolVersion;
  return hello;
}

}  // namespace

// ---- Connection ------------------------------------------------------------

Connection::Connection(Context* c, int socket_fd, State initial, const SocketAddress& peer_addr)
    : PollTarget(Kind::kConnection),
      ctx(c),
      fd(socket_fd),
      state(initial),
      peer(peer_addr),
      staging(new uint8_t[kStagingSize]) {
  // HELLO goes first; anything posted before establishment queues behind it.
  QueueFrame(HelloFrame(), nullptr, 0, nullptr, false);
  UpdatePollEvents();
}

Connection::~Connection() {
  if (fd >= 0) {
    ctx->UnwatchFd(fd, &epoll_events);
    close(fd);
  }
}

int Connection::Status() const {
  if (state == State::kFailed) return failure_status;
  return state == State::kEstablished ? PLASMA_TP_OK : PLASMA_TP_IN_PROGRESS;
}

std::string Connection::Describe() const { return AddressToString(peer); }

void Connection::UpdatePollEvents() {
  if (fd < 0) return;
  uint32_t wanted = 0;
  if (state == State::kConnecting) {
    wanted = EPOLLOUT;
  } else {
    if (!rx_paused) wanted |= EPOLLIN;
    if (write_blocked) wanted |= EPOLLOUT;
  }
  // EPOLLERR/EPOLLHUP are always reported; asking for EPOLLERR alone keeps
  // the fd registered for them while reading is paused.
  if (wanted == 0) wanted = EPOLLERR;
  ctx->WatchFd(fd, this, wanted, &epoll_events);
}

void Connection::AddToFlushList() {
  if (in_flush_list || write_blocked || !CanWrite()) return;
  in_flush_list = true;
  ctx->flush_list.push_back(this);
}

void Connection::QueueFrame(const FrameHeader& header, const void* payload,
                            uint64_t payload_length, Request* request, bool completes_request,
                            Registration* pinned) {
  outgoing.emplace_back();
  OutgoingFrame& frame = outgoing.back();
  EncodeFrameHeader(header, frame.header);
  frame.payload = static_cast<const uint8_t*>(payload);
  frame.payload_length = payload_length;
  frame.request = request;
  frame.completes_request = completes_request;
  frame.pinned = pinned;
  if (pinned != nullptr) PinRegistration(pinned);
  AddToFlushList();
}

void Connection::Flush() {
  while (CanWrite() && !outgoing.empty()) {
    iovec iov[kMaxIovecs];
    int count = 0;
    for (auto it = outgoing.begin(); it != outgoing.end() && count + 2 <= kMaxIovecs; ++it) {
      uint64_t sent = it->bytes_sent;
      if (sent < kFrameHeaderSize) {
        iov[count].iov_base = it->header + sent;
        iov[count].iov_len = kFrameHeaderSize - sent;
        ++count;
        sent = kFrameHeaderSize;
      }
      uint64_t payload_sent = sent - kFrameHeaderSize;
      if (payload_sent < it->payload_length) {
        iov[count].iov_base = const_cast<uint8_t*>(it->payload) + payload_sent;
        iov[count].iov_len = it->payload_length - payload_sent;
        ++count;
      }
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    // MSG_NOSIGNAL: a dead peer is an error status here, never a SIGPIPE.
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        write_blocked = true;
        UpdatePollEvents();
        return;
      }
      int err = errno;
      ctx->Log(PLASMA_TP_LOG_INFO, "socket: send to %s failed: %s", Describe().c_str(),
               strerror(err));
      Fail(StatusFromErrno(err), "send failed");
      return;
    }
    auto written = static_cast<uint64_t>(n);
    while (written > 0) {
      OutgoingFrame& front = outgoing.front();
      uint64_t left = kFrameHeaderSize + front.payload_length - front.bytes_sent;
      if (written < left) {
        front.bytes_sent += written;
        break;
      }
      written -= left;
      OutgoingFrame done = front;
      outgoing.pop_front();
      if (done.pinned != nullptr) UnpinRegistration(done.pinned);
      if (done.completes_request) CompleteRequest(done.request, PLASMA_TP_OK, done.payload_length);
    }
  }
  if (write_blocked) {
    write_blocked = false;
    UpdatePollEvents();
  }
}

void Connection::FinishConnect() {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == EINPROGRESS) return;
  if (err != 0) {
    ctx->Log(PLASMA_TP_LOG_INFO, "socket: connect to %s failed: %s", Describe().c_str(),
             strerror(err));
    int status = StatusFromErrno(err);
    Fail(status == PLASMA_TP_ERR_CONNECTION_RESET ? PLASMA_TP_ERR_CONNECTION_REFUSED : status,
         "connect failed");
    return;
  }
  state = State::kHandshaking;
  ConfigureDataSocket(ctx, fd);
  UpdatePollEvents();
  AddToFlushList();
  ++ctx->events;
}

void Connection::OnPollEvents(uint32_t events) {
  if (Failed()) return;
  if (state == State::kConnecting) {
    FinishConnect();
    return;
  }
  // Flush() clears write_blocked, and with it our EPOLLOUT interest, once
  // the queue drains: a writable socket left in a level-triggered set would
  // wake the host forever.
  if (events & EPOLLOUT) Flush();
  if (Failed()) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (rx_paused && (events & (EPOLLHUP | EPOLLERR))) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      Fail(err != 0 ? StatusFromErrno(err) : PLASMA_TP_ERR_CONNECTION_RESET, "socket error");
      return;
    }
    if (!rx_paused) ReadSocket();
  }
}

void Connection::ReadSocket() {
  uint64_t budget = kReadBudgetPerProgress;
  while (!Failed() && !rx_paused && budget > 0) {
    ProcessStagedInput();
    if (Failed() || rx_paused) return;
    ssize_t n;
    uint64_t payload_left = in_payload ? sink.length - sink.received : 0;
    if (in_payload && sink.base != nullptr && payload_left >= kDirectReadMinimum) {
      // Large payloads land in their destination with no copy.
      n = recv(fd, sink.base + sink.received, std::min<uint64_t>(payload_left, budget),
               MSG_DONTWAIT);
      if (n > 0) {
        sink.received += static_cast<uint64_t>(n);
        if (sink.received == sink.length) FinishPayload();
      }
    } else {
      n = recv(fd, staging.get(), kStagingSize, MSG_DONTWAIT);
      if (n > 0) {
        staged_begin = 0;
        staged_end = static_cast<size_t>(n);
      }
    }
    if (n == 0) {
      ctx->Log(PLASMA_TP_LOG_INFO, "socket: %s closed the connection", Describe().c_str());
      Fail(PLASMA_TP_ERR_CONNECTION_RESET, "peer closed");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      int err = errno;
      ctx->Log(PLASMA_TP_LOG_INFO, "socket: receive from %s failed: %s", Describe().c_str(),
               strerror(err));
      Fail(StatusFromErrno(err), "receive failed");
      return;
    }
    budget -= std::min<uint64_t>(budget, static_cast<uint64_t>(n));
  }
  ProcessStagedInput();
}

void Connection::ProcessStagedInput() {
  while (!Failed() && staged_begin < staged_end) {
    size_t available = staged_end - staged_begin;
    const uint8_t* data = staging.get() + staged_begin;
    if (!in_payload) {
      // Backpressure only at frame boundaries.
      if (header_received == 0 && unexpected_bytes > ctx->config.unexpected_limit) {
        if (!rx_paused) {
          rx_paused = true;
          ctx->Log(PLASMA_TP_LOG_DEBUG,
                   "socket: %s: %llu unexpected bytes buffered, pausing reads",
                   Describe().c_str(), static_cast<unsigned long long>(unexpected_bytes));
          UpdatePollEvents();
        }
        return;
      }
      size_t take = std::min(available, kFrameHeaderSize - header_received);
      std::memcpy(header_bytes + header_received, data, take);
      header_received += take;
      staged_begin += take;
      if (header_received == kFrameHeaderSize) {
        header_received = 0;
        DispatchHeader(DecodeFrameHeader(header_bytes));
      }
    } else {
      uint64_t take = std::min<uint64_t>(available, sink.length - sink.received);
      if (sink.base != nullptr) std::memcpy(sink.base + sink.received, data, take);
      sink.received += take;
      staged_begin += take;
      if (sink.received == sink.length) FinishPayload();
    }
  }
}

void Connection::DispatchHeader(const FrameHeader& header) {
  if (!hello_received) {
    if (header.type != FrameType::kHello || header.tag != kHelloMagic ||
        header.id != kProtocolVersion) {
      ctx->Log(PLASMA_TP_LOG_ERROR,
               "socket: %s is not a compatible plasma socket transport (bad hello)",
               Describe().c_str());
      Fail(PLASMA_TP_ERR_PROTOCOL, "bad hello");
      return;
    }
    hello_received = true;
    state = State::kEstablished;
    ++ctx->events;
    return;
  }
  switch (header.type) {
    case FrameType::kEager: OnEagerHeader(this, header); break;
    case FrameType::kRendezvousRequest: OnRendezvousRequest(this, header); break;
    case FrameType::kClearToSend: OnClearToSend(this, header); break;
    case FrameType::kRendezvousData: OnRendezvousData(this, header); break;
    case FrameType::kReadRequest: OnReadRequest(this, header); break;
    case FrameType::kReadResponse: OnReadResponse(this, header); break;
    default:
      ctx->Log(PLASMA_TP_LOG_ERROR, "socket: %s sent unknown frame type %u", Describe().c_str(),
               static_cast<unsigned>(header.type));
      Fail(PLASMA_TP_ERR_PROTOCOL, "unknown frame");
      return;
  }
}

void Connection::BeginPayload(const RxSink& target) {
  sink = target;
  sink.received = 0;
  in_payload = true;
  if (sink.length == 0) FinishPayload();
}

void Connection::FinishPayload() {
  RxSink done = sink;
  sink = RxSink();
  in_payload = false;
  if (done.unexpected != nullptr) done.unexpected->arrived = true;
  if (done.request != nullptr) CompleteRequest(done.request, PLASMA_TP_OK, done.length);
}

void Connection::DetachSinkRequest(Request* req) {
  if (in_payload && sink.request == req) {
    sink.request = nullptr;
    sink.base = nullptr;
  }
}

void Connection::MaybeResumeReading() {
  if (!rx_paused || unexpected_bytes > ctx->config.unexpected_limit || Failed()) return;
  rx_paused = false;
  UpdatePollEvents();
  if (!in_rx_ready_list) {
    in_rx_ready_list = true;
    ctx->rx_ready_list.push_back(this);
  }
}

void Connection::AbortOutstanding(int status) {
  for (OutgoingFrame& frame : outgoing) {
    if (frame.pinned != nullptr) UnpinRegistration(frame.pinned);
    if (frame.request != nullptr) CompleteRequest(frame.request, status, 0);
  }
  outgoing.clear();
  for (auto& entry : sends_awaiting_cts) CompleteRequest(entry.second, status, 0);
  sends_awaiting_cts.clear();
  for (auto& entry : exact_recvs) {
    for (Request* req : entry.second) CompleteRequest(req, status, 0);
  }
  exact_recvs.clear();
  for (Request* req : prefix_recvs) CompleteRequest(req, status, 0);
  prefix_recvs.clear();
  for (auto& entry : recvs_awaiting_data) {
    if (entry.second != nullptr) CompleteRequest(entry.second, status, 0);
  }
  recvs_awaiting_data.clear();
  for (auto& entry : pending_reads) {
    if (entry.second != nullptr) CompleteRequest(entry.second, status, 0);
  }
  pending_reads.clear();
  if (in_payload) {
    if (sink.request != nullptr) CompleteRequest(sink.request, status, 0);
    in_payload = false;
    sink = RxSink();
  }
  // Keep fully arrived eager messages: a peer may send and close at once,
  // and what it sent should still be receivable.
  for (auto it = unexpected.begin(); it != unexpected.end();) {
    UnexpectedMessage* msg = (it++)->get();
    if (msg->rendezvous || !msg->arrived) DropUnexpected(this, msg);
  }
  staged_begin = staged_end = 0;
}

void Connection::Fail(int status, const char* why) {
  if (Failed()) return;
  ctx->Log(PLASMA_TP_LOG_DEBUG, "socket: connection to %s failed (%s): %s", Describe().c_str(),
           why, plasma_tp_default_strerror(status));
  state = State::kFailed;
  failure_status = status;
  AbortOutstanding(status);
  if (fd >= 0) {
    ctx->UnwatchFd(fd, &epoll_events);
    close(fd);
    fd = -1;
  }
  ++ctx->events;
}

// ---- Listener --------------------------------------------------------------

Listener::Listener(Context* c, int socket_fd, std::string blob)
    : PollTarget(Kind::kListener), ctx(c), fd(socket_fd), address_blob(std::move(blob)) {
  ctx->WatchFd(fd, this, EPOLLIN, &epoll_events);
}

Listener::~Listener() {
  ctx->UnwatchFd(fd, &epoll_events);
  close(fd);
}

void Listener::AcceptPending() {
  for (;;) {
    SocketAddress peer;
    peer.length = sizeof(peer.storage);
    int conn_fd = accept4(fd, peer.get(), &peer.length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn_fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ctx->Log(PLASMA_TP_LOG_WARN, "socket: accept failed: %s", strerror(errno));
      }
      return;
    }
    ConfigureDataSocket(ctx, conn_fd);
    auto* conn = new Connection(ctx, conn_fd, Connection::State::kHandshaking, peer);
    ctx->connections.insert(conn);
    accepted.push_back(conn);
    ++ctx->events;
    ctx->Log(PLASMA_TP_LOG_DEBUG, "socket: accepted connection from %s",
             conn->Describe().c_str());
  }
}

// ---- Entry point bodies -----------------------------------------------------

int Listen(Context* ctx, const char* bind_hint, Listener** out) {
  SocketAddress bind_addr;
  int rc = ParseBindHint(ctx, bind_hint, &bind_addr);
  if (rc != PLASMA_TP_OK) return rc;
  int fd = socket(bind_addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "socket: socket() failed: %s", strerror(errno));
    return StatusFromErrno(errno);
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, bind_addr.get(), bind_addr.length) != 0 || listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    ctx->Log(PLASMA_TP_LOG_ERROR, "socket: cannot listen on %s: %s",
             AddressToString(bind_addr).c_str(), strerror(err));
    close(fd);
    return err == EADDRINUSE || err == EADDRNOTAVAIL || err == EACCES ? PLASMA_TP_ERR_ADDRESS
                                                                       : StatusFromErrno(err);
  }
  SocketAddress bound;
  bound.length = sizeof(bound.storage);
  getsockname(fd, bound.get(), &bound.length);
  std::string blob = MakeAddressBlob(bound);
  auto* listener = new Listener(ctx, fd, blob);
  ctx->listeners.insert(listener);
  ctx->Log(PLASMA_TP_LOG_INFO, "socket: listening on %s, published as %s",
           AddressToString(bound).c_str(), blob.c_str());
  *out = listener;
  return PLASMA_TP_OK;
}

int Connect(Context* ctx, const void* blob, size_t blob_len, Connection** out) {
  SocketAddress peer;
  if (ParseAddressBlob(blob, blob_len, &peer) != PLASMA_TP_OK) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "socket: connect: not a socket transport address ('%.*s')",
             static_cast<int>(std::min<size_t>(blob_len, kMaxAddressBlobSize)),
             blob ? static_cast<const char*>(blob) : "");
    return PLASMA_TP_ERR_ADDRESS;
  }
  int fd = socket(peer.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "socket: socket() failed: %s", strerror(errno));
    return StatusFromErrno(errno);
  }
  int rc = connect(fd, peer.get(), peer.length);
  int err = rc == 0 ? 0 : errno;
  Connection::State state =
      rc == 0 ? Connection::State::kHandshaking : Connection::State::kConnecting;
  auto* conn = new Connection(ctx, fd, state, peer);
  ctx->connections.insert(conn);
  if (rc == 0) {
    ConfigureDataSocket(ctx, fd);
  } else if (err != EINPROGRESS && err != EINTR) {
    // Refused at once (common on loopback): report it like a later failure,
    // through conn_status() and the requests, so hosts have one path.
    ctx->Log(PLASMA_TP_LOG_INFO, "socket: connect to %s failed: %s", conn->Describe().c_str(),
             strerror(err));
    int status = StatusFromErrno(err);
    conn->Fail(status == PLASMA_TP_ERR_CONNECTION_RESET ? PLASMA_TP_ERR_CONNECTION_REFUSED : status,
               "connect failed");
  }
  *out = conn;
  return PLASMA_TP_OK;
}

int AcceptConnection(Context* ctx, Listener* listener, Connection** out) {
  if (listener->accepted.empty()) return PLASMA_TP_IN_PROGRESS;
  *out = listener->accepted.front();
  listener->accepted.pop_front();
  return PLASMA_TP_OK;
}

void CloseListener(Context* ctx, Listener* listener) {
  for (Connection* conn : listener->accepted) CloseConnection(ctx, conn);
  ctx->listeners.erase(listener);
  delete listener;
}

void CloseConnection(Context* ctx, Connection* conn) {
  if (!conn->Failed()) conn->AbortOutstanding(PLASMA_TP_ERR_CANCELED);
  OrphanRkeys(ctx, conn);
  auto drop = [conn](std::vector<Connection*>& list) {
    list.erase(std::remove(list.begin(), list.end(), conn), list.end());
  };
  drop(ctx->flush_list);
  drop(ctx->rx_ready_list);
  ctx->connections.erase(conn);
  delete conn;
}

}  // namespace plasma_socket
