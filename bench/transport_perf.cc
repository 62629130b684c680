// bench/transport_perf: one transport plugin measured directly, without a
// store or a manager, the way perftest's ib_send_bw / ib_read_bw /
// ib_send_lat measure a device, so that a plugin and perftest can be
// compared on the same (Soft-)RoCE device.
//
// Usage: transport_perf --transport NAME [--test send_bw|read_bw|send_lat|all]
//                       [--sizes LIST] [--iters N] [--window W]
//                       [--listen HOST:PORT] [--csv FILE]
//
// The process forks: the child is the server (listens, accepts), the parent
// the client, which prints the results. Each has its own plugin context and
// drives it in a busy loop: progress(), then poll_completions() (or test()).
//   send_bw   the client keeps W sends in flight, the server W receives
//             posted; MB/s = bytes / (client's first post .. server's last
//             receive completion). Both processes read the same host
//             monotonic clock, so the two ends of that interval compare.
//   read_bw   the client keeps W read()s of the server's region in flight.
//   send_lat  ping-pong of one message; one-way latency = RTT / 2.
// Each (test, size) runs against a 120 s deadline, and its last message or
// READ is checked byte by byte.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_util.h"
#include "transport/loader.h"
#include "transport/plasma_transport.h"

using namespace plasma;
using plasma::bench::FormatDouble;
using plasma::bench::Table;
using plasma::transport::Plugin;

namespace {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
constexpr auto kPhaseTimeout = std::chrono::seconds(120);

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// ---- Command line -----------------------------------------------------------

enum class Test { kSendBw, kReadBw, kSendLat };

const char* TestName(Test test) {
  switch (test) {
    case Test::kSendBw: return "send_bw";
    case Test::kReadBw: return "read_bw";
    case Test::kSendLat: return "send_lat";
  }
  return "?";
}

struct Options {
  std::string transport;
  std::vector<Test> tests{Test::kSendBw, Test::kReadBw, Test::kSendLat};
  std::vector<uint64_t> sizes;  // empty: 64 B .. 4 MiB by powers of two
  uint64_t iters = 0;           // 0: scaled per size
  uint64_t window = 32;
  std::string listen = "127.0.0.1:0";
  std::string csv;
};

constexpr const char* kUsage =
    "usage: transport_perf --transport NAME [--test send_bw|read_bw|send_lat|all]\n"
    "                      [--sizes LIST] [--iters N] [--window W]\n"
    "                      [--listen HOST:PORT] [--csv FILE]\n"
    "  --sizes   comma-separated, K/M/G suffixes (binary): 64,4096,1M (default 64 .. 4M)\n"
    "  --iters   per size (default: ~64 MiB per size, 20..5000 bw, 20..1000 lat)\n"
    "  --window  messages or READs in flight (default 32)\n"
    "  --listen  the server's bind hint, also init()'s local_address (default 127.0.0.1:0)\n"
    "PLASMA_TRANSPORT_PATH: plugin directories (default: this build's lib dir)\n";

// "4096", "64K", "1M": a positive byte count with an optional binary suffix.
bool ParseCount(const std::string& text, uint64_t* out) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0) return false;
  const std::string suffix(end);
  int shift = 0;
  if (suffix == "K" || suffix == "k") shift = 10;
  else if (suffix == "M" || suffix == "m") shift = 20;
  else if (suffix == "G" || suffix == "g") shift = 30;
  else if (!suffix.empty()) return false;
  if (value == 0 || value > (UINT64_MAX >> shift)) return false;
  *out = uint64_t(value) << shift;
  return true;
}

Status ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return Status::InvalidArgument("help");
    if (i + 1 >= argc) return Status::InvalidArgument("unknown option or missing value: " + arg);
    const std::string value = argv[++i];
    if (arg == "--transport") {
      options->transport = value;
    } else if (arg == "--test") {
      if (value == "send_bw") options->tests = {Test::kSendBw};
      else if (value == "read_bw") options->tests = {Test::kReadBw};
      else if (value == "send_lat") options->tests = {Test::kSendLat};
      else if (value != "all") return Status::InvalidArgument("unknown --test " + value);
    } else if (arg == "--sizes") {
      options->sizes.clear();
      std::istringstream list(value);
      std::string item;
      while (std::getline(list, item, ',')) {
        uint64_t size = 0;
        if (!ParseCount(item, &size)) return Status::InvalidArgument("bad size '" + item + "'");
        options->sizes.push_back(size);
      }
      if (options->sizes.empty()) return Status::InvalidArgument("--sizes is empty");
    } else if (arg == "--iters") {
      if (!ParseCount(value, &options->iters)) return Status::InvalidArgument("bad --iters");
    } else if (arg == "--window") {
      if (!ParseCount(value, &options->window) || options->window > 65536) {
        return Status::InvalidArgument("bad --window (1..65536)");
      }
    } else if (arg == "--listen") {
      options->listen = value;
    } else if (arg == "--csv") {
      options->csv = value;
    } else {
      return Status::InvalidArgument("unknown option " + arg);
    }
  }
  if (options->transport.empty()) return Status::InvalidArgument("--transport is required");
  if (options->sizes.empty()) {
    for (uint64_t size = 64; size <= (4u << 20); size *= 2) options->sizes.push_back(size);
  }
  return Status::OK();
}

// One (test, size) run. Its index in the plan goes into every tag, so the
// messages of one run can never match the receives of another.
struct Phase {
  Test test;
  uint64_t size;
  uint64_t iters;
};

std::vector<Phase> BuildPlan(const Options& options) {
  std::vector<Phase> plan;
  for (Test test : options.tests) {
    for (uint64_t size : options.sizes) {
      uint64_t iters = options.iters;
      if (iters == 0) {  // about 64 MiB per size, within perftest-like bounds
        const uint64_t cap = test == Test::kSendLat ? 1000 : 5000;
        iters = std::clamp<uint64_t>((uint64_t{64} << 20) / size, 20, cap);
      }
      plan.push_back({test, size, iters});
    }
  }
  return plan;
}

std::string PhaseName(const Phase& phase) {
  return std::string(TestName(phase.test)) + " " + std::to_string(phase.size) + " B";
}

// ---- Data pattern -----------------------------------------------------------

// Byte `offset` of pattern `seed`. Seeds differ per run and direction, so a
// message that lands shifted, stale or from another run fails the check.
inline uint8_t PatternByte(uint64_t seed, uint64_t offset) {
  return uint8_t(((offset + seed * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull) >> 56);
}
uint64_t SendSeed(uint64_t phase) { return 4 * phase + 1; }   // client -> server
uint64_t ReplySeed(uint64_t phase) { return 4 * phase + 2; }  // server -> client
uint64_t ReadSeed(uint64_t phase) { return 4 * phase + 3; }   // the server's READ source

void FillPattern(uint8_t* data, uint64_t length, uint64_t seed, uint64_t base) {
  for (uint64_t i = 0; i < length; ++i) data[i] = PatternByte(seed, base + i);
}

Status VerifyPattern(const uint8_t* data, uint64_t length, uint64_t seed, uint64_t base,
                     const std::string& what) {
  for (uint64_t i = 0; i < length; ++i) {
    const uint8_t expected = PatternByte(seed, base + i);
    if (data[i] != expected) {
      char detail[160];
      std::snprintf(detail, sizeof(detail), ": DATA CHECK FAILED at byte %llu of %llu: 0x%02x, "
                    "expected 0x%02x", (unsigned long long)i, (unsigned long long)length,
                    data[i], expected);
      return Status::Internal(what + detail);
    }
  }
  return Status::OK();
}

// ---- Messages ---------------------------------------------------------------

// Tag = kind above bit 40 | phase index (the last phase + 1 for kBye).
enum Kind : uint64_t { kReady = 1, kData, kDone, kRkey, kPing, kPong, kBye, kKinds };
uint64_t Tag(Kind kind, uint64_t phase) { return uint64_t(kind) << 40 | phase; }
const char* KindName(Kind kind) {
  static const char* const names[] = {"?", "READY", "DATA", "DONE", "RKEY", "PING", "PONG", "BYE"};
  return kind < kKinds ? names[kind] : "?";
}

// Every control message is one of these, well below any eager threshold.
struct DoneMessage {       // send_bw: server -> client after the last receive
  int64_t last_recv_ns;
  uint64_t bytes;
};
struct RkeyMessage {       // read_bw: server -> client, what to read
  uint64_t addr;
  uint64_t length;
  uint64_t rkey_len;
  uint8_t rkey[488];
};
struct PhaseMessage {      // ready / finished / bye: just the phase index
  uint64_t phase;
};
constexpr size_t kControlSlot = 512;
static_assert(sizeof(RkeyMessage) <= kControlSlot, "control slot too small");

// ---- One side: a plugin context, its registered region, its requests -------

// What a posted request was for. The handle is the key (the ABI has no
// per-post user value); `length` is what a receive or READ must deliver.
struct Op {
  Kind kind;
  uint64_t slot;
  uint64_t length;
};
struct Completion {
  Op op;
  plasma_tp_completion_t result;
};

const char* OpName(uint32_t op) {
  return op == PLASMA_TP_OP_SEND ? "send" : op == PLASMA_TP_OP_RECV ? "recv" : "read";
}

class Peer {
 public:
  ~Peer() {
    plugin_.reset();  // finalize() first: it drops the registration of the region
    if (region_ != nullptr) munmap(region_, region_bytes_);
  }

  // Loads the plugin and registers one region: `data_bytes` for the data
  // slots plus a control slot per message kind and direction, so that every
  // post can pass the same mem handle.
  Status Open(const Options& options, uint64_t data_bytes, const std::string& role) {
    transport::PluginOptions plugin_options;
    plugin_options.local_address = options.listen;  // verbs picks its device from it
    plugin_options.max_log_level = PLASMA_TP_LOG_WARN;
    plugin_options.log = [role](int, const std::string& message) {
      std::fprintf(stderr, "[%s plugin] %s\n", role.c_str(), message.c_str());
    };
    auto loaded = Plugin::Load(options.transport, plugin_options);
    if (!loaded.ok()) return loaded.status();
    plugin_ = std::move(loaded).value();
    data_bytes_ = data_bytes;
    region_bytes_ = data_bytes + 2 * kKinds * kControlSlot;
    // Pre-faulted, so that first touches do not land inside a measurement.
    void* region = mmap(nullptr, region_bytes_, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (region == MAP_FAILED) {
      return Status::FromErrno("mmap of " + std::to_string(region_bytes_) + " bytes", errno);
    }
    region_ = static_cast<uint8_t*>(region);
    return Check(api().mem_register(ctx(), region_, region_bytes_,
                                    PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ, &mem_),
                 "mem_register");
  }

  const plasma_tp_v1_t& api() const { return plugin_->api(); }
  plasma_tp_context_t ctx() const { return plugin_->context(); }
  const Plugin& plugin() const { return *plugin_; }
  plasma_tp_mem_t mem() const { return mem_; }
  uint8_t* Data(uint64_t offset) { return region_ + offset; }
  uint8_t* Control(Kind kind, bool incoming) {
    return region_ + data_bytes_ + (2 * kind + (incoming ? 1 : 0)) * kControlSlot;
  }
  size_t outstanding() const { return outstanding_.size(); }

  Status Check(int rc, const std::string& what) const {
    return rc == PLASMA_TP_OK ? Status::OK() : plugin_->ToStatus(rc, what);
  }

  // One turn of the busy loop: progress, then collect what completed. A
  // failed request ends the run (nothing here expects one to fail).
  Status Pump(Deadline deadline, const std::string& what) {
    // The deadline is looked at every 256th turn: a clock read can be a
    // system call (an emulated guest's HPET), which perftest's loop never
    // makes and which would otherwise be counted against the plugin.
    if (++pumps_ % 256 == 0 && Clock::now() > deadline) {
      return Status::TimedOut(what + ": not done within " +
                              std::to_string(kPhaseTimeout.count()) + " s (" +
                              std::to_string(outstanding_.size()) + " requests outstanding)");
    }
    int events = api().progress(ctx());
    if (events < 0) return Check(events, what + ": progress");
    return Collect(what);
  }
  std::vector<Completion> TakeCompleted() {
    std::vector<Completion> taken;
    taken.swap(completed_);
    return taken;
  }
  // Pumps until every outstanding request has completed.
  Status Drain(Deadline deadline, const std::string& what) {
    while (!outstanding_.empty()) PLASMA_RETURN_NOT_OK(Pump(deadline, what));
    completed_.clear();
    return Status::OK();
  }

  Status Send(Kind kind, uint64_t phase, const void* buf, uint64_t length, uint64_t slot,
              Deadline deadline) {
    return Post({kind, slot, length}, deadline, "send", [&](plasma_tp_request_t* req) {
      return api().send(ctx(), conn, Tag(kind, phase), buf, length, mem_, req);
    });
  }
  Status Recv(Kind kind, uint64_t phase, void* buf, uint64_t capacity, uint64_t expected,
              uint64_t slot, Deadline deadline) {
    return Post({kind, slot, expected}, deadline, "recv", [&](plasma_tp_request_t* req) {
      return api().recv(ctx(), conn, Tag(kind, phase), PLASMA_TP_TAG_EXACT, buf, capacity, mem_,
                        req);
    });
  }
  Status Read(void* buf, uint64_t length, uint64_t remote_addr, plasma_tp_rkey_t rkey,
              uint64_t slot, Deadline deadline) {
    return Post({kData, slot, length}, deadline, "read", [&](plasma_tp_request_t* req) {
      return api().read(ctx(), conn, buf, length, mem_, remote_addr, rkey, req);
    });
  }
  // Control messages live in the region too: one slot per kind and direction.
  template <typename Message>
  Status SendControl(Kind kind, uint64_t phase, const Message& message, Deadline deadline) {
    std::memcpy(Control(kind, false), &message, sizeof(message));
    return Send(kind, phase, Control(kind, false), sizeof(message), 0, deadline);
  }
  template <typename Message>
  Status RecvControl(Kind kind, uint64_t phase, Deadline deadline) {
    return Recv(kind, phase, Control(kind, true), kControlSlot, sizeof(Message), 0, deadline);
  }
  template <typename Message>
  Message Received(Kind kind) {
    Message message;
    std::memcpy(&message, Control(kind, true), sizeof(message));
    return message;
  }

  plasma_tp_conn_t conn = nullptr;

 private:
  template <typename PostFn>
  Status Post(Op op, Deadline deadline, const char* what, PostFn post) {
    for (;;) {
      plasma_tp_request_t req = nullptr;
      int rc = post(&req);
      if (rc == PLASMA_TP_OK) {
        outstanding_.emplace(req, op);
        return Status::OK();
      }
      if (rc != PLASMA_TP_ERR_AGAIN) return Check(rc, what);
      // The context is out of request resources: completions free some.
      PLASMA_RETURN_NOT_OK(Pump(deadline, what));
    }
  }

  Status Finish(plasma_tp_request_t req, const plasma_tp_completion_t& result,
                const std::string& what) {
    auto found = outstanding_.find(req);
    if (found == outstanding_.end()) return Status::Internal(what + ": unknown request completed");
    const Op op = found->second;
    outstanding_.erase(found);
    if (result.status != PLASMA_TP_OK) {
      return plugin_->ToStatus(result.status, what + ": " + KindName(op.kind) + " " +
                                                  OpName(result.op) + " failed");
    }
    // Send completions' lengths are not compared: "bytes moved" by a
    // rendezvous send differs between plugins.
    if (result.op != PLASMA_TP_OP_SEND && result.length != op.length) {
      return Status::ProtocolError(what + ": " + KindName(op.kind) + " " + OpName(result.op) +
                                   " got " + std::to_string(result.length) +
                                   " bytes, expected " + std::to_string(op.length));
    }
    completed_.push_back({op, result});
    return Status::OK();
  }

  Status Collect(const std::string& what) {
    if (plugin_->has_poll_completions()) {
      constexpr size_t kBatch = 64;
      plasma_tp_request_completion_t batch[kBatch];
      for (;;) {
        size_t count = 0;
        PLASMA_RETURN_NOT_OK(
            Check(api().poll_completions(ctx(), batch, kBatch, &count), "poll_completions"));
        for (size_t i = 0; i < count; ++i) {
          PLASMA_RETURN_NOT_OK(Finish(batch[i].request, batch[i].completion, what));
        }
        if (count < kBatch) return Status::OK();
      }
    }
    std::vector<plasma_tp_request_t> reqs;  // test() releases handles: not while iterating
    for (const auto& entry : outstanding_) reqs.push_back(entry.first);
    for (plasma_tp_request_t req : reqs) {
      plasma_tp_completion_t result;
      int rc = api().test(ctx(), req, &result);
      if (rc == PLASMA_TP_IN_PROGRESS) continue;
      PLASMA_RETURN_NOT_OK(Check(rc, "test"));
      PLASMA_RETURN_NOT_OK(Finish(req, result, what));
    }
    return Status::OK();
  }

  std::unique_ptr<Plugin> plugin_;
  uint8_t* region_ = nullptr;
  uint64_t region_bytes_ = 0;
  uint64_t data_bytes_ = 0;
  plasma_tp_mem_t mem_ = nullptr;
  std::unordered_map<plasma_tp_request_t, Op> outstanding_;
  uint64_t pumps_ = 0;
  std::vector<Completion> completed_;
};

Status CheckPlan(const Peer& peer, const std::vector<Phase>& plan) {
  const plasma_tp_properties_t& props = peer.plugin().properties();
  for (const Phase& phase : plan) {
    if (phase.test != Test::kReadBw && phase.size > props.max_message_size) {
      return Status::NotSupported(PhaseName(phase) + ": above the plugin's max_message_size " +
                                  std::to_string(props.max_message_size));
    }
  }
  return Status::OK();
}

// ---- Server (child) ---------------------------------------------------------

Status ServeSendBw(Peer& peer, uint64_t p, const Phase& run, uint64_t window) {
  const Deadline deadline = Clock::now() + kPhaseTimeout;
  const std::string what = "server " + PhaseName(run);
  window = std::min(window, run.iters);
  uint64_t posted = 0, received = 0, last_slot = 0;
  auto post_receive = [&](uint64_t slot) {
    // The last message's slot is cleared, so the check sees only its bytes.
    if (posted == run.iters - 1) {
      std::memset(peer.Data(slot * run.size), 0, run.size);
      last_slot = slot;
    }
    ++posted;
    return peer.Recv(kData, p, peer.Data(slot * run.size), run.size, run.size, slot, deadline);
  };
  for (uint64_t slot = 0; slot < window; ++slot) PLASMA_RETURN_NOT_OK(post_receive(slot));
  PLASMA_RETURN_NOT_OK(peer.SendControl(kReady, p, PhaseMessage{p}, deadline));
  while (received < run.iters || peer.outstanding() > 0) {
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, what));
    for (const Completion& c : peer.TakeCompleted()) {
      if (c.op.kind != kData) continue;  // READY / DONE sent
      if (++received == run.iters) {
        const DoneMessage done{NowNs(), received * run.size};
        PLASMA_RETURN_NOT_OK(VerifyPattern(peer.Data(last_slot * run.size), run.size,
                                           SendSeed(p), 0, what));
        PLASMA_RETURN_NOT_OK(peer.SendControl(kDone, p, done, deadline));
      } else if (posted < run.iters) {
        PLASMA_RETURN_NOT_OK(post_receive(c.op.slot));  // that slot is free again
      }
    }
  }
  return Status::OK();
}

Status ServeReadBw(Peer& peer, uint64_t p, const Phase& run, uint64_t window) {
  const Deadline deadline = Clock::now() + kPhaseTimeout;
  const std::string what = "server " + PhaseName(run);
  window = std::min(window, run.iters);
  // Position-dependent over the whole range, so a READ of the wrong remote
  // offset shows.
  FillPattern(peer.Data(0), window * run.size, ReadSeed(p), 0);
  const void* packed = nullptr;
  size_t packed_len = 0;
  PLASMA_RETURN_NOT_OK(peer.Check(peer.api().mem_rkey(peer.ctx(), peer.mem(), &packed,
                                                      &packed_len), "mem_rkey"));
  RkeyMessage message{};
  if (packed_len > sizeof(message.rkey)) {
    return Status::NotSupported("packed rkey of " + std::to_string(packed_len) +
                                " bytes does not fit the benchmark's message");
  }
  message.addr = reinterpret_cast<uintptr_t>(peer.Data(0));
  message.length = window * run.size;
  message.rkey_len = packed_len;
  std::memcpy(message.rkey, packed, packed_len);
  PLASMA_RETURN_NOT_OK(peer.RecvControl<PhaseMessage>(kDone, p, deadline));
  PLASMA_RETURN_NOT_OK(peer.SendControl(kRkey, p, message, deadline));
  // The client's READs are served inside progress() (emulating plugins) or
  // by the device; the server only waits for the client's "finished".
  return peer.Drain(deadline, what);
}

Status ServeSendLat(Peer& peer, uint64_t p, const Phase& run) {
  const Deadline deadline = Clock::now() + kPhaseTimeout;
  const std::string what = "server " + PhaseName(run);
  uint8_t* pong = peer.Data(0);
  uint8_t* ping = peer.Data(run.size);
  FillPattern(pong, run.size, ReplySeed(p), 0);
  uint64_t posted = 0, received = 0;
  auto post_receive = [&] {
    if (posted++ == run.iters - 1) std::memset(ping, 0, run.size);
    return peer.Recv(kPing, p, ping, run.size, run.size, 1, deadline);
  };
  PLASMA_RETURN_NOT_OK(post_receive());
  PLASMA_RETURN_NOT_OK(peer.SendControl(kReady, p, PhaseMessage{p}, deadline));
  while (received < run.iters || peer.outstanding() > 0) {
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, what));
    for (const Completion& c : peer.TakeCompleted()) {
      if (c.op.kind != kPing) continue;  // a PONG (or READY) sent
      if (++received == run.iters) {
        PLASMA_RETURN_NOT_OK(VerifyPattern(ping, run.size, SendSeed(p), 0, what));
      } else {
        PLASMA_RETURN_NOT_OK(post_receive());  // before the PONG: the next PING finds it
      }
      PLASMA_RETURN_NOT_OK(peer.Send(kPong, p, pong, run.size, 0, deadline));
    }
  }
  return Status::OK();
}

Status WaitConnected(Peer& peer, Deadline deadline, const std::string& what) {
  for (;;) {
    int rc = peer.api().conn_status(peer.ctx(), peer.conn);
    if (rc == PLASMA_TP_OK) return Status::OK();
    if (rc != PLASMA_TP_IN_PROGRESS) return peer.Check(rc, what);
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, what));
  }
}

Status Serve(Peer& peer, const Options& options, const std::vector<Phase>& plan,
             uint64_t data_bytes, int address_fd) {
  PLASMA_RETURN_NOT_OK(peer.Open(options, data_bytes, "server"));
  PLASMA_RETURN_NOT_OK(CheckPlan(peer, plan));
  plasma_tp_listener_t listener = nullptr;
  PLASMA_RETURN_NOT_OK(peer.Check(
      peer.api().listen(peer.ctx(), options.listen.c_str(), &listener), "listen " + options.listen));
  const void* blob = nullptr;
  size_t blob_len = 0;
  PLASMA_RETURN_NOT_OK(peer.Check(
      peer.api().listener_address(peer.ctx(), listener, &blob, &blob_len), "listener_address"));
  // The parent reads the blob up to EOF.
  for (size_t written = 0; written < blob_len;) {
    ssize_t n = write(address_fd, static_cast<const char*>(blob) + written, blob_len - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno("writing the address to the client", errno);
    written += size_t(n);
  }
  close(address_fd);

  const Deadline deadline = Clock::now() + kPhaseTimeout;
  while (peer.conn == nullptr) {
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, "server: accept"));
    int rc = peer.api().accept(peer.ctx(), listener, &peer.conn);
    if (rc != PLASMA_TP_OK && rc != PLASMA_TP_IN_PROGRESS) return peer.Check(rc, "accept");
  }
  PLASMA_RETURN_NOT_OK(WaitConnected(peer, deadline, "server: connection"));
  PLASMA_RETURN_NOT_OK(peer.Check(peer.api().close_listener(peer.ctx(), listener), "close_listener"));

  for (uint64_t p = 0; p < plan.size(); ++p) {
    const Phase& run = plan[p];
    switch (run.test) {
      case Test::kSendBw: PLASMA_RETURN_NOT_OK(ServeSendBw(peer, p, run, options.window)); break;
      case Test::kReadBw: PLASMA_RETURN_NOT_OK(ServeReadBw(peer, p, run, options.window)); break;
      case Test::kSendLat: PLASMA_RETURN_NOT_OK(ServeSendLat(peer, p, run)); break;
    }
  }
  // Closing only after the client's last message arrived: nothing of ours
  // is left unread when the connection goes.
  const Deadline bye_deadline = Clock::now() + kPhaseTimeout;
  PLASMA_RETURN_NOT_OK(peer.RecvControl<PhaseMessage>(kBye, plan.size(), bye_deadline));
  PLASMA_RETURN_NOT_OK(peer.Drain(bye_deadline, "server: waiting for the client's bye"));
  return peer.Check(peer.api().close_conn(peer.ctx(), peer.conn), "close_conn");
}

// ---- Client (parent) --------------------------------------------------------

struct Row {
  Phase phase;
  double mb_per_s = 0;
  double lat_avg = 0, lat_p50 = 0, lat_p99 = 0;  // microseconds, one way
};

// Pumps until a completion of `kind` arrives (others are dropped: sends).
Status WaitFor(Peer& peer, Kind kind, Deadline deadline, const std::string& what) {
  for (;;) {
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, what));
    for (const Completion& c : peer.TakeCompleted()) {
      if (c.op.kind == kind) return Status::OK();
    }
  }
}

Status RunSendBw(Peer& peer, uint64_t p, const Phase& run, uint64_t window, Row* row) {
  const Deadline deadline = Clock::now() + kPhaseTimeout;
  const std::string what = "client " + PhaseName(run);
  window = std::min(window, run.iters);
  // Every slot carries the same pattern: the server checks the last message
  // wherever it landed.
  for (uint64_t slot = 0; slot < window; ++slot) {
    FillPattern(peer.Data(slot * run.size), run.size, SendSeed(p), 0);
  }
  PLASMA_RETURN_NOT_OK(peer.RecvControl<PhaseMessage>(kReady, p, deadline));
  PLASMA_RETURN_NOT_OK(peer.RecvControl<DoneMessage>(kDone, p, deadline));
  // Start only once the server's receives are posted (perftest syncs too).
  PLASMA_RETURN_NOT_OK(WaitFor(peer, kReady, deadline, what));
  uint64_t posted = 0;
  auto post_send = [&](uint64_t slot) {
    ++posted;
    return peer.Send(kData, p, peer.Data(slot * run.size), run.size, slot, deadline);
  };
  const int64_t first_post_ns = NowNs();
  for (uint64_t slot = 0; slot < window; ++slot) PLASMA_RETURN_NOT_OK(post_send(slot));
  bool done = false;
  while (!done || peer.outstanding() > 0) {
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, what));
    for (const Completion& c : peer.TakeCompleted()) {
      if (c.op.kind == kData && posted < run.iters) {
        PLASMA_RETURN_NOT_OK(post_send(c.op.slot));
      } else if (c.op.kind == kDone) {
        done = true;
      }
    }
  }
  const DoneMessage result = peer.Received<DoneMessage>(kDone);
  if (result.bytes != run.iters * run.size || result.last_recv_ns <= first_post_ns) {
    return Status::ProtocolError(what + ": bad DONE message from the server");
  }
  row->mb_per_s = double(result.bytes) / (double(result.last_recv_ns - first_post_ns) * 1e-9) / 1e6;
  return Status::OK();
}

Status RunReadBw(Peer& peer, uint64_t p, const Phase& run, uint64_t window, Row* row) {
  const Deadline deadline = Clock::now() + kPhaseTimeout;
  const std::string what = "client " + PhaseName(run);
  window = std::min(window, run.iters);
  PLASMA_RETURN_NOT_OK(peer.RecvControl<RkeyMessage>(kRkey, p, deadline));
  PLASMA_RETURN_NOT_OK(WaitFor(peer, kRkey, deadline, what));
  const RkeyMessage target = peer.Received<RkeyMessage>(kRkey);
  if (target.rkey_len > sizeof(target.rkey) || target.length < window * run.size) {
    return Status::ProtocolError(what + ": bad RKEY message from the server");
  }
  plasma_tp_rkey_t rkey = nullptr;
  PLASMA_RETURN_NOT_OK(peer.Check(peer.api().rkey_unpack(peer.ctx(), peer.conn, target.rkey,
                                                         target.rkey_len, &rkey), "rkey_unpack"));
  // Local slot i reads remote slot i.
  uint64_t posted = 0, completed = 0, last_slot = 0;
  auto post_read = [&](uint64_t slot) {
    if (posted++ == run.iters - 1) {
      std::memset(peer.Data(slot * run.size), 0, run.size);
      last_slot = slot;
    }
    return peer.Read(peer.Data(slot * run.size), run.size, target.addr + slot * run.size, rkey,
                     slot, deadline);
  };
  const int64_t start_ns = NowNs();
  for (uint64_t slot = 0; slot < window; ++slot) PLASMA_RETURN_NOT_OK(post_read(slot));
  while (completed < run.iters) {
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, what));
    for (const Completion& c : peer.TakeCompleted()) {
      ++completed;
      if (posted < run.iters) PLASMA_RETURN_NOT_OK(post_read(c.op.slot));
    }
  }
  const int64_t end_ns = NowNs();
  PLASMA_RETURN_NOT_OK(peer.Check(peer.api().rkey_release(peer.ctx(), rkey), "rkey_release"));
  PLASMA_RETURN_NOT_OK(VerifyPattern(peer.Data(last_slot * run.size), run.size, ReadSeed(p),
                                     last_slot * run.size, what));
  row->mb_per_s = double(run.iters * run.size) / (double(end_ns - start_ns) * 1e-9) / 1e6;
  PLASMA_RETURN_NOT_OK(peer.SendControl(kDone, p, PhaseMessage{p}, deadline));
  return peer.Drain(deadline, what);
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double q) {
  size_t rank = size_t(std::ceil(q * double(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

Status RunSendLat(Peer& peer, uint64_t p, const Phase& run, Row* row) {
  const Deadline deadline = Clock::now() + kPhaseTimeout;
  const std::string what = "client " + PhaseName(run);
  uint8_t* ping = peer.Data(0);
  uint8_t* pong = peer.Data(run.size);
  FillPattern(ping, run.size, SendSeed(p), 0);
  PLASMA_RETURN_NOT_OK(peer.RecvControl<PhaseMessage>(kReady, p, deadline));
  PLASMA_RETURN_NOT_OK(WaitFor(peer, kReady, deadline, what));
  std::vector<double> one_way_us;
  one_way_us.reserve(run.iters);
  for (uint64_t i = 0; i < run.iters; ++i) {
    if (i == run.iters - 1) std::memset(pong, 0, run.size);
    // The PONG's receive is posted before the clock starts (perftest pre-posts too).
    PLASMA_RETURN_NOT_OK(peer.Recv(kPong, p, pong, run.size, run.size, 1, deadline));
    const int64_t start_ns = NowNs();
    PLASMA_RETURN_NOT_OK(peer.Send(kPing, p, ping, run.size, 0, deadline));
    PLASMA_RETURN_NOT_OK(WaitFor(peer, kPong, deadline, what));
    one_way_us.push_back(double(NowNs() - start_ns) / 2e3);
  }
  PLASMA_RETURN_NOT_OK(VerifyPattern(pong, run.size, ReplySeed(p), 0, what));
  PLASMA_RETURN_NOT_OK(peer.Drain(deadline, what));  // the last PINGs' send completions
  double sum = 0;
  for (double value : one_way_us) sum += value;
  std::sort(one_way_us.begin(), one_way_us.end());
  row->lat_avg = sum / double(one_way_us.size());
  row->lat_p50 = Percentile(one_way_us, 0.50);
  row->lat_p99 = Percentile(one_way_us, 0.99);
  return Status::OK();
}

// The server's address blob, written by the child once it listens.
Result<std::string> ReadAddress(int fd) {
  std::string blob;
  const Deadline deadline = Clock::now() + kPhaseTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status::TimedOut("the server did not publish its address");
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, int(left.count())) < 0 && errno != EINTR) {
      return Status::FromErrno("poll", errno);
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Status::FromErrno("reading the server's address", errno);
    if (n == 0) break;
    blob.append(buf, size_t(n));
  }
  if (blob.empty()) return Status::Unavailable("the server failed before listening (see above)");
  return blob;
}

Status Drive(Peer& peer, const Options& options, const std::vector<Phase>& plan,
             uint64_t data_bytes, int address_fd, pid_t server, bool* server_reaped,
             std::vector<Row>* rows) {
  auto address = ReadAddress(address_fd);
  close(address_fd);
  if (!address.ok()) return address.status();
  PLASMA_RETURN_NOT_OK(peer.Open(options, data_bytes, "client"));
  PLASMA_RETURN_NOT_OK(CheckPlan(peer, plan));
  const plasma_tp_properties_t& props = peer.plugin().properties();
  std::fprintf(stderr,
               "transport_perf: %s %s (%s): %s; eager threshold %llu B%s%s; window %llu\n",
               peer.plugin().name().c_str(), peer.plugin().version().c_str(),
               peer.plugin().path().c_str(), props.description ? props.description : "",
               (unsigned long long)props.eager_threshold,
               props.flags & PLASMA_TP_PROP_NATIVE_READ ? ", native READ" : ", emulated READ",
               props.flags & PLASMA_TP_PROP_REGISTRATION_REQUIRED ? ", registration required" : "",
               (unsigned long long)options.window);

  Deadline deadline = Clock::now() + kPhaseTimeout;
  PLASMA_RETURN_NOT_OK(peer.Check(
      peer.api().connect(peer.ctx(), address->data(), address->size(), &peer.conn), "connect"));
  PLASMA_RETURN_NOT_OK(WaitConnected(peer, deadline, "client: connection"));

  for (uint64_t p = 0; p < plan.size(); ++p) {
    Row row;
    row.phase = plan[p];
    Status status;
    switch (row.phase.test) {
      case Test::kSendBw: status = RunSendBw(peer, p, row.phase, options.window, &row); break;
      case Test::kReadBw: status = RunReadBw(peer, p, row.phase, options.window, &row); break;
      case Test::kSendLat: status = RunSendLat(peer, p, row.phase, &row); break;
    }
    if (!status.ok()) return status;
    std::fprintf(stderr, "transport_perf: %s x %llu: ", PhaseName(row.phase).c_str(),
                 (unsigned long long)row.phase.iters);
    if (row.phase.test == Test::kSendLat) {
      std::fprintf(stderr, "%.2f us avg, %.2f p50, %.2f p99 (one way)\n", row.lat_avg,
                   row.lat_p50, row.lat_p99);
    } else {
      std::fprintf(stderr, "%.2f MB/s\n", row.mb_per_s);
    }
    rows->push_back(row);
  }

  deadline = Clock::now() + kPhaseTimeout;
  PLASMA_RETURN_NOT_OK(peer.SendControl(kBye, plan.size(), PhaseMessage{plan.size()}, deadline));
  PLASMA_RETURN_NOT_OK(peer.Drain(deadline, "client: sending bye"));
  // Keep progressing (and the connection open) until the server is gone.
  for (;;) {
    int wait_status = 0;
    pid_t reaped = waitpid(server, &wait_status, WNOHANG);
    if (reaped == server) {
      *server_reaped = true;
      if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) return Status::OK();
      return Status::Internal("the server process failed (status " +
                              std::to_string(wait_status) + ")");
    }
    if (reaped < 0) return Status::FromErrno("waitpid", errno);
    PLASMA_RETURN_NOT_OK(peer.Pump(deadline, "client: waiting for the server to exit"));
  }
}

// Each side reports its error while its connection is still open: the side
// that failed first speaks first, before the other one sees the reset.
Status RunServer(const Options& options, const std::vector<Phase>& plan, uint64_t data_bytes,
                 int address_fd) {
  Peer peer;
  Status status = Serve(peer, options, plan, data_bytes, address_fd);
  if (!status.ok()) std::fprintf(stderr, "transport_perf: server: %s\n", status.ToString().c_str());
  return status;
}

Status RunClient(const Options& options, const std::vector<Phase>& plan, uint64_t data_bytes,
                 int address_fd, pid_t server, bool* server_reaped, std::vector<Row>* rows) {
  Peer peer;
  Status status = Drive(peer, options, plan, data_bytes, address_fd, server, server_reaped, rows);
  if (!status.ok()) std::fprintf(stderr, "transport_perf: %s\n", status.ToString().c_str());
  return status;
}

void PrintResults(const Options& options, const std::vector<Row>& rows) {
  Table bw({"test", "size_bytes", "iterations", "MB_per_s"});
  Table lat({"test", "size_bytes", "iterations", "lat_us_avg", "lat_us_p50", "lat_us_p99"});
  Table csv({"test", "size_bytes", "iterations", "mb_per_s", "lat_us_avg", "lat_us_p50",
             "lat_us_p99"});
  bool any_bw = false, any_lat = false;
  for (const Row& row : rows) {
    const std::string test = TestName(row.phase.test);
    const std::string size = std::to_string(row.phase.size);
    const std::string iters = std::to_string(row.phase.iters);
    if (row.phase.test == Test::kSendLat) {
      const std::string avg = FormatDouble(row.lat_avg, 2), p50 = FormatDouble(row.lat_p50, 2),
                        p99 = FormatDouble(row.lat_p99, 2);
      lat.AddRow({test, size, iters, avg, p50, p99});
      csv.AddRow({test, size, iters, "", avg, p50, p99});
      any_lat = true;
    } else {
      const std::string mbps = FormatDouble(row.mb_per_s, 2);
      bw.AddRow({test, size, iters, mbps});
      csv.AddRow({test, size, iters, mbps, "", "", ""});
      any_bw = true;
    }
  }
  if (any_bw) bw.Print();
  if (any_bw && any_lat) std::cout << "\n";
  if (any_lat) lat.Print();
  if (!options.csv.empty()) {
    Status written = csv.WriteCsv(options.csv);
    if (!written.ok()) std::fprintf(stderr, "transport_perf: %s\n", written.ToString().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  Status parsed = ParseArgs(argc, argv, &options);
  if (!parsed.ok()) {
    if (parsed.message() != "help") std::fprintf(stderr, "transport_perf: %s\n", parsed.ToString().c_str());
    std::fputs(kUsage, stderr);
    return 2;
  }
  // Like the tests: this build's plugins unless the caller points elsewhere.
  setenv(transport::kTransportPathEnv, PLASMA_BENCH_PLUGIN_DIR, /*overwrite=*/0);

  const std::vector<Phase> plan = BuildPlan(options);
  const uint64_t max_size = *std::max_element(options.sizes.begin(), options.sizes.end());
  const uint64_t slots = std::max<uint64_t>(options.window, 2);  // send_lat uses two
  if (max_size > (uint64_t{1} << 40) / slots) {
    std::fprintf(stderr, "transport_perf: window x largest size is too large\n");
    return 2;
  }
  const uint64_t data_bytes = slots * max_size;

  signal(SIGPIPE, SIG_IGN);
  int address_pipe[2];
  if (pipe(address_pipe) != 0) {
    std::perror("transport_perf: pipe");
    return 1;
  }
  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t server = fork();
  if (server < 0) {
    std::perror("transport_perf: fork");
    return 1;
  }
  if (server == 0) {
    // The server must not outlive a client that died.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    close(address_pipe[0]);
    Status status = RunServer(options, plan, data_bytes, address_pipe[1]);
    std::fflush(nullptr);
    _exit(status.ok() ? 0 : 1);
  }
  close(address_pipe[1]);

  std::vector<Row> rows;
  bool server_reaped = false;
  Status status =
      RunClient(options, plan, data_bytes, address_pipe[0], server, &server_reaped, &rows);
  if (!status.ok()) {
    // Our connection is closed now, so the server notices and exits on its
    // own (after saying why, if it failed first); SIGTERM only if it does not.
    for (int waited_ms = 0; !server_reaped && waited_ms < 5000; waited_ms += 10) {
      server_reaped = waitpid(server, nullptr, WNOHANG) == server;
      if (!server_reaped) usleep(10000);
    }
    if (!server_reaped) {  // not reaped yet, so the pid is still our child's
      kill(server, SIGTERM);
      waitpid(server, nullptr, 0);
    }
    return 1;
  }
  PrintResults(options, rows);
  return 0;
}
