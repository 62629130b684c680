// Fuzzes the socket transport plugin's incoming frame parser
// (plugins/socket/connection.cc and the frame handlers in
// tagged_messages.cc and read_emulation.cc; wire format in wire_format.h).
// A manager's listener accepts TCP connections from anywhere on the
// network, so every byte a peer sends is untrusted.
//
// Only the public ABI is used: libplasma-transport-socket.so is loaded with
// plasma::transport::Plugin::Load, one context and one listener on
// 127.0.0.1 serve every input. Per input a raw TCP client connects to the
// listener, the accepted connection gets receives (exact, prefix and
// match-all tags; too small, registered and large buffers), optionally a
// rendezvous send, an eager send and a READ, then the client writes the
// input and the host drives progress()/accept()/test() for a bounded number
// of rounds, closes the connection and checks that every request completed.
//
// Input: byte 0 holds flags (below), the rest is what the client writes.
// In the written bytes "@RKEY@@@" becomes the key of the context's
// REMOTE_READ registration and "@ADDR@" followed by a 16-bit offset becomes
// the registration's address plus that offset, so READ_REQUEST frames can
// name valid memory (the key is random per run).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "plugins/socket/wire_format.h"  // what a peer knows: the frame layout
#include "transport/loader.h"
#include "transport/plasma_transport.h"

namespace {

enum Flags : uint8_t {
  kHelloPrefix = 1 << 0,    // a valid HELLO frame goes before the input bytes
  kRecvsFirst = 1 << 1,     // receives posted before the bytes (else after round 1)
  kRendezvousSend = 1 << 2,  // a send above the eager threshold (RTS, waits for CTS id 1)
  kRead = 1 << 3,           // a READ of our own registration (READ_REQUEST id 1)
  kEagerSend = 1 << 4,      // a small send
  kHalfClose = 1 << 5,      // the client shuts down writing after the input
  kCancel = 1 << 6,         // cancel() everything still outstanding before close_conn
  kLateRecvs = 1 << 7,      // more receives once the rounds are over (maybe on a dead conn)
};

constexpr size_t kRegionSize = 64 * 1024;
constexpr size_t kEagerThreshold = 1024;  // set through the plugin's environment
constexpr size_t kRendezvousLength = 2 * kEagerThreshold;
constexpr int kMaxRounds = 64;
constexpr int kMaxCloseRounds = 8;

[[noreturn]] void Fail(const char* what, long detail = 0) {
  std::fprintf(stderr, "socket_transport_fuzzer: %s (%ld)\n", what, detail);
  std::abort();
}

struct Posted {
  plasma_tp_request_t request;
  uint32_t op;
  uint64_t tag;
  uint64_t mask;
  uint64_t length;  // send/read: bytes; recv: capacity
};

struct Harness {
  plasma::transport::Plugin* plugin = nullptr;
  const plasma_tp_v1_t* api = nullptr;
  plasma_tp_context_t ctx = nullptr;
  plasma_tp_listener_t listener = nullptr;
  sockaddr_in listen_address{};
  int wait_fd = -1;
  plasma_tp_mem_t region_mem = nullptr;
  std::unique_ptr<uint8_t[]> region;  // registered LOCAL | REMOTE_READ
  std::vector<uint8_t> packed_rkey;
  uint64_t key = 0;
  // Buffers of requests; every request completes before an input ends.
  std::vector<uint8_t> tiny = std::vector<uint8_t>(16);
  std::vector<uint8_t> large = std::vector<uint8_t>(256 * 1024);
  std::vector<uint8_t> large2 = std::vector<uint8_t>(256 * 1024);
  std::vector<uint8_t> send_data = std::vector<uint8_t>(kRendezvousLength, 0x5a);
  std::vector<uint8_t> read_target = std::vector<uint8_t>(256);
  std::vector<uint8_t> drain = std::vector<uint8_t>(256 * 1024);
};

Harness* harness = nullptr;

void Check(int rc, const char* what) {
  if (rc != PLASMA_TP_OK) Fail(what, rc);
}

bool KnownStatus(int32_t status) {
  return status == PLASMA_TP_OK ||
         (status <= PLASMA_TP_ERR_NO_MEMORY && status >= PLASMA_TP_ERR_INTERNAL);
}

void Setup() {
  // Small limits so that small inputs reach the rendezvous and backpressure
  // paths. Only this process's environment; set before init() reads it.
  setenv("PLASMA_TRANSPORT_SOCKET_EAGER_THRESHOLD", std::to_string(kEagerThreshold).c_str(), 1);
  setenv("PLASMA_TRANSPORT_SOCKET_UNEXPECTED_LIMIT", "4096", 1);
  const char* path = std::getenv("PLASMA_FUZZ_SOCKET_PLUGIN");
  plasma::transport::PluginOptions options;
  options.log = [](int, const std::string&) {};  // formatted (every level), then dropped
  options.max_log_level = PLASMA_TP_LOG_TRACE;
  auto loaded = plasma::transport::Plugin::Load(path && *path ? path : PLASMA_FUZZ_SOCKET_PLUGIN,
                                                options);
  if (!loaded.ok()) {
    std::fprintf(stderr, "socket_transport_fuzzer: %s\n", loaded.status().ToString().c_str());
    std::abort();
  }
  harness = new Harness;
  Harness& h = *harness;
  // Never unloaded: the coverage counters of the plugin live in its image.
  h.plugin = loaded.value().release();
  h.api = &h.plugin->api();
  h.ctx = h.plugin->context();
  Check(h.api->listen(h.ctx, "127.0.0.1:0", &h.listener), "listen");
  const void* blob = nullptr;
  size_t blob_length = 0;
  Check(h.api->listener_address(h.ctx, h.listener, &blob, &blob_length), "listener_address");
  std::string text(static_cast<const char*>(blob), blob_length);  // "tcp:127.0.0.1:PORT"
  size_t colon = text.rfind(':');
  if (text.compare(0, 4, "tcp:") != 0 || colon == std::string::npos) Fail("odd address blob");
  h.listen_address.sin_family = AF_INET;
  h.listen_address.sin_port = htons(uint16_t(std::atoi(text.c_str() + colon + 1)));
  if (inet_pton(AF_INET, text.substr(4, colon - 4).c_str(), &h.listen_address.sin_addr) != 1) {
    Fail("listener is not on an IPv4 address");
  }
  Check(h.api->wait_fd(h.ctx, &h.wait_fd), "wait_fd");

  h.region.reset(new uint8_t[kRegionSize]);
  for (size_t i = 0; i < kRegionSize; ++i) h.region[i] = uint8_t(i * 13);
  Check(h.api->mem_register(h.ctx, h.region.get(), kRegionSize,
                            PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ, &h.region_mem),
        "mem_register");
  const void* rkey = nullptr;
  size_t rkey_length = 0;
  Check(h.api->mem_rkey(h.ctx, h.region_mem, &rkey, &rkey_length), "mem_rkey");
  h.packed_rkey.assign(static_cast<const uint8_t*>(rkey),
                       static_cast<const uint8_t*>(rkey) + rkey_length);
  // Socket plugin rkeys: magic u32, reserved u32, key u64 (memory.h).
  if (rkey_length != 16) Fail("unexpected rkey size", long(rkey_length));
  std::memcpy(&h.key, h.packed_rkey.data() + 8, 8);
}

// The bytes the client writes: optional HELLO, then the input with the
// placeholders replaced.
std::vector<uint8_t> WireBytes(uint8_t flags, const uint8_t* data, size_t size) {
  std::vector<uint8_t> out;
  if (flags & kHelloPrefix) {
    plasma_socket::FrameHeader hello;
    hello.type = plasma_socket::FrameType::kHello;
    hello.tag = plasma_socket::kHelloMagic;
    hello.id = plasma_socket::kProtocolVersion;
    uint8_t header[plasma_socket::kFrameHeaderSize];
    plasma_socket::EncodeFrameHeader(hello, header);
    out.insert(out.end(), header, header + sizeof(header));
  }
  size_t start = out.size();
  out.insert(out.end(), data, data + size);
  for (size_t i = start; i + 8 <= out.size(); ++i) {
    if (std::memcmp(&out[i], "@RKEY@@@", 8) == 0) {
      std::memcpy(&out[i], &harness->key, 8);  // the key is stored little-endian
      i += 7;
    } else if (std::memcmp(&out[i], "@ADDR@", 6) == 0) {
      uint16_t offset;
      std::memcpy(&offset, &out[i + 6], 2);
      uint64_t address = htole64(uint64_t(reinterpret_cast<uintptr_t>(harness->region.get())) +
                                 le16toh(offset));
      std::memcpy(&out[i], &address, 8);
      i += 7;
    }
  }
  return out;
}

class Session {
 public:
  Session(uint8_t flags, std::vector<uint8_t> bytes)
      : h_(*harness), api_(*harness->api), flags_(flags), bytes_(std::move(bytes)) {}

  void Run() {
    Connect();
    if (conn_ == nullptr) return;
    if (flags_ & kRead) {
      Check(api_.rkey_unpack(h_.ctx, conn_, h_.packed_rkey.data(), h_.packed_rkey.size(), &rkey_),
            "rkey_unpack");
      plasma_tp_request_t req;
      int rc = api_.read(h_.ctx, conn_, h_.read_target.data(), h_.read_target.size(), nullptr,
                         uint64_t(reinterpret_cast<uintptr_t>(h_.region.get())), rkey_, &req);
      if (rc == PLASMA_TP_OK) posted_.push_back({req, PLASMA_TP_OP_READ, 0, 0, h_.read_target.size()});
    }
    if (flags_ & kRendezvousSend) Send(0x2a, h_.send_data.data(), kRendezvousLength);
    if (flags_ & kEagerSend) Send(0x201, h_.send_data.data(), 100);
    if (flags_ & kRecvsFirst) PostRecvs();

    int idle_rounds = 0;
    for (int round = 0; round < kMaxRounds && idle_rounds < 2; ++round) {
      bool busy = WriteSome();
      int events = api_.progress(h_.ctx);
      if (events < 0) Fail("progress failed", events);
      busy |= events > 0;
      busy |= Drain();
      busy |= TestAll();
      plasma_tp_completion_t info;
      int probed = api_.probe(h_.ctx, conn_, 0, 0, &info);
      if (probed != PLASMA_TP_OK && probed != PLASMA_TP_IN_PROGRESS && !KnownStatus(probed)) {
        Fail("probe returned an unknown status", probed);
      }
      int status = api_.conn_status(h_.ctx, conn_);
      if (status != PLASMA_TP_IN_PROGRESS && !KnownStatus(status)) {
        Fail("conn_status returned an unknown status", status);
      }
      if (round == 0 && !(flags_ & kRecvsFirst)) {
        PostRecvs();
        busy = true;
      }
      if (!busy && written_ == bytes_.size()) {
        // Loopback delivers as send() returns, but look once more before
        // calling it idle.
        pollfd fds[2] = {{h_.wait_fd, POLLIN, 0}, {client_, POLLIN, 0}};
        busy = poll(fds, 2, 0) > 0;
      }
      idle_rounds = busy ? 0 : idle_rounds + 1;
    }
    if (flags_ & kLateRecvs) PostRecvs();
    if (flags_ & kCancel) {
      for (const Posted& p : posted_) {
        int rc = api_.cancel(h_.ctx, p.request);
        if (rc != PLASMA_TP_OK) Fail("cancel of an outstanding request failed", rc);
      }
    }
    api_.progress(h_.ctx);
    TestAll();
    Close();
  }

  ~Session() {
    if (client_ >= 0) {
      // Reset, not FIN: no TIME_WAIT left behind by thousands of inputs.
      linger reset{1, 0};
      setsockopt(client_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      close(client_);
    }
  }

 private:
  // Non-blocking: libFuzzer's -timeout alarm would interrupt a blocking
  // connect() (EINTR). Loopback completes it at once; every wait is bounded.
  void Connect() {
    client_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (client_ < 0) Fail("socket", errno);
    if (connect(client_, reinterpret_cast<const sockaddr*>(&h_.listen_address),
                sizeof(h_.listen_address)) != 0 &&
        errno != EINPROGRESS && errno != EINTR) {
      Fail("connect to the listener", errno);
    }
    bool connected = false;
    for (int i = 0; i < 300 && (conn_ == nullptr || !connected); ++i) {
      if (!connected) {
        pollfd writable{client_, POLLOUT, 0};
        if (poll(&writable, 1, 0) == 1) {
          int err = 0;
          socklen_t len = sizeof(err);
          getsockopt(client_, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) Fail("connect to the listener", err);
          connected = true;
        }
      }
      if (conn_ == nullptr) {
        if (api_.progress(h_.ctx) < 0) Fail("progress failed");
        int rc = api_.accept(h_.ctx, h_.listener, &conn_);
        if (rc == PLASMA_TP_IN_PROGRESS) {
          conn_ = nullptr;
        } else if (rc != PLASMA_TP_OK) {
          Fail("accept failed", rc);
        }
      }
      if (conn_ == nullptr || !connected) {
        pollfd ready[2] = {{h_.wait_fd, POLLIN, 0}, {client_, POLLOUT, 0}};
        poll(ready, connected ? 1 : 2, 10);
      }
    }
    if (conn_ == nullptr || !connected) Fail("the listener never produced the connection");
  }

  void Send(uint64_t tag, const uint8_t* data, size_t length) {
    plasma_tp_request_t req;
    int rc = api_.send(h_.ctx, conn_, tag, data, length, nullptr, &req);
    if (rc == PLASMA_TP_OK) posted_.push_back({req, PLASMA_TP_OP_SEND, tag, 0, length});
  }

  void Recv(uint64_t tag, uint64_t mask, uint8_t* buffer, size_t capacity, plasma_tp_mem_t mem) {
    plasma_tp_request_t req;
    int rc = api_.recv(h_.ctx, conn_, tag, mask, buffer, capacity, mem, &req);
    if (rc == PLASMA_TP_OK) {
      posted_.push_back({req, PLASMA_TP_OP_RECV, tag, mask, capacity});
    } else if (!KnownStatus(rc)) {
      Fail("recv returned an unknown status", rc);
    }
  }

  void PostRecvs() {
    Recv(1, PLASMA_TP_TAG_EXACT, h_.tiny.data(), h_.tiny.size(), nullptr);
    Recv(0x200, PLASMA_TP_TAG_PREFIX(40), h_.region.get(), 4096, h_.region_mem);
    Recv(0, 0, h_.large.data(), h_.large.size(), nullptr);
    Recv(1, PLASMA_TP_TAG_EXACT, h_.large2.data(), h_.large2.size(), nullptr);
  }

  // Writes what the socket takes. true if anything was written.
  bool WriteSome() {
    bool wrote = false;
    while (written_ < bytes_.size() && !write_failed_) {
      ssize_t n = send(client_, bytes_.data() + written_, bytes_.size() - written_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        written_ += size_t(n);
        wrote = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wrote;
      write_failed_ = true;  // the plugin closed on us
      written_ = bytes_.size();
    }
    if (written_ == bytes_.size() && (flags_ & kHalfClose) && !shut_down_) {
      shutdown(client_, SHUT_WR);
      shut_down_ = true;
      wrote = true;
    }
    return wrote;
  }

  // Reads what the plugin sent us (HELLO, CTS, RTS, READ requests and
  // responses) so it never blocks on a full socket. true if anything came.
  bool Drain() {
    bool got = false;
    for (int i = 0; i < 64; ++i) {
      ssize_t n = recv(client_, h_.drain.data(), h_.drain.size(), MSG_DONTWAIT);
      if (n <= 0) break;
      got = true;
    }
    return got;
  }

  // test() on everything outstanding; checks each completion.
  bool TestAll() {
    bool completed = false;
    for (size_t i = 0; i < posted_.size();) {
      plasma_tp_completion_t c;
      int rc = api_.test(h_.ctx, posted_[i].request, &c);
      if (rc == PLASMA_TP_IN_PROGRESS) {
        ++i;
        continue;
      }
      if (rc != PLASMA_TP_OK) Fail("test() of an outstanding request failed", rc);
      CheckCompletion(posted_[i], c);
      posted_.erase(posted_.begin() + long(i));
      completed = true;
    }
    return completed;
  }

  static void CheckCompletion(const Posted& p, const plasma_tp_completion_t& c) {
    if (c.op != p.op) Fail("completion of the wrong operation", long(c.op));
    if (!KnownStatus(c.status)) Fail("completion with an unknown status", c.status);
    if (c.status != PLASMA_TP_OK) return;
    switch (p.op) {
      case PLASMA_TP_OP_RECV:
        if (c.length > p.length) Fail("receive longer than its buffer", long(c.length));
        if ((c.tag & p.mask) != (p.tag & p.mask)) Fail("receive matched a foreign tag");
        break;
      case PLASMA_TP_OP_SEND:
        if (c.length != p.length || c.tag != p.tag) Fail("send completed with other length or tag");
        break;
      case PLASMA_TP_OP_READ:
        if (c.length != p.length) Fail("read completed with another length", long(c.length));
        break;
    }
  }

  void Close() {
    if (rkey_ != nullptr) Check(api_.rkey_release(h_.ctx, rkey_), "rkey_release");
    Check(api_.close_conn(h_.ctx, conn_), "close_conn");
    // close_conn completes every outstanding request (CANCELED at the
    // latest); each still needs its test().
    for (int round = 0; round < kMaxCloseRounds && !posted_.empty(); ++round) {
      TestAll();
      if (!posted_.empty()) api_.progress(h_.ctx);
    }
    if (!posted_.empty()) {
      // The ABI promises completion; a request left behind would hold a
      // pointer to the closed connection. cancel() must still be safe.
      for (const Posted& p : posted_) api_.cancel(h_.ctx, p.request);
      Fail("requests still outstanding after close_conn", long(posted_.size()));
    }
  }

  Harness& h_;
  const plasma_tp_v1_t& api_;
  uint8_t flags_;
  std::vector<uint8_t> bytes_;
  size_t written_ = 0;
  bool write_failed_ = false;
  bool shut_down_ = false;
  int client_ = -1;
  plasma_tp_conn_t conn_ = nullptr;
  plasma_tp_rkey_t rkey_ = nullptr;
  std::vector<Posted> posted_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Session session(data[0], WireBytes(data[0], data + 1, size - 1));
  session.Run();
  return 0;
}
