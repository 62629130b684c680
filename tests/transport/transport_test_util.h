// Helpers for transport tests: load a real plugin through the loader,
// connect two contexts (over 127.0.0.1, or PLASMA_TEST_LISTEN) inside one process, and drive both
// with bounded progress loops (every wait has a deadline; nothing asserts
// on timing).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/common/test_util.h"
#include "transport/loader.h"
#include "transport/plasma_transport.h"

namespace plasma::transport::testing {

// Points PLASMA_TRANSPORT_PATH at the build's lib dir unless ctest already did.
inline void UseBuiltPlugins() {
  setenv(kTransportPathEnv, PLASMA_TEST_PLUGIN_DIR, /*overwrite=*/0);
}

inline PluginOptions QuietOptions() {
  PluginOptions options;
  // Warnings and errors still show up in the test log; chatter does not,
  // unless PLASMA_TEST_PLUGIN_LOG asks for more (a level, 1-5).
  static const int level = [] {
    const char* env = std::getenv("PLASMA_TEST_PLUGIN_LOG");
    int wanted = env != nullptr ? std::atoi(env) : 0;
    return wanted >= PLASMA_TP_LOG_ERROR && wanted <= PLASMA_TP_LOG_TRACE ? wanted
                                                                           : int{PLASMA_TP_LOG_WARN};
  }();
  options.log = [](int message_level, const std::string& message) {
    if (message_level <= level) std::fprintf(stderr, "[plugin] %s\n", message.c_str());
  };
  options.max_log_level = level;
  return options;
}

// The conformance tests run against PLASMA_TEST_TRANSPORT (a name or an
// absolute path; default "socket"), so a new plugin can be checked with
// the same suite: PLASMA_TEST_TRANSPORT=ucx ctest -L transport
inline std::string TransportUnderTest() {
  const char* name = std::getenv("PLASMA_TEST_TRANSPORT");
  return name != nullptr && *name != '\0' ? name : "socket";
}

// Where the conformance tests listen: PLASMA_TEST_LISTEN (a host: an RDMA
// device's address, which rdmacm needs), else 127.0.0.1; any free port.
inline std::string TestListenHint() {
  const char* host = std::getenv("PLASMA_TEST_LISTEN");
  return std::string(host != nullptr && *host != '\0' ? host : "127.0.0.1") + ":0";
}

inline std::unique_ptr<Plugin> LoadPlugin(const std::string& name_or_path) {
  UseBuiltPlugins();
  auto loaded = Plugin::Load(name_or_path, QuietOptions());
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  if (!loaded.ok()) return nullptr;
  return std::move(loaded).value();
}

inline std::unique_ptr<Plugin> LoadPluginUnderTest() { return LoadPlugin(TransportUnderTest()); }

// Receive masks: exact, or the top n of the host's 48 tag bits.
constexpr uint64_t kExact = PLASMA_TP_TAG_EXACT;
constexpr uint64_t kAnyTag = PLASMA_TP_TAG_PREFIX(0);

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kDefaultTimeout{120};

inline std::vector<uint8_t> Pattern(size_t length, uint64_t seed) {
  std::vector<uint8_t> data(length);
  plasma::test::FillPattern(data.data(), length, seed);
  return data;
}

// The helpers register a buffer (and pass its mem) whenever the plugin sets
// PLASMA_TP_PROP_REGISTRATION_REQUIRED and the buffer needs one; with this
// switched on (PLASMA_TEST_REGISTER_ALL=1, or a test setting it) they do so
// for every plugin, which exercises the `mem` paths of plugins that copy.
inline bool& ForceRegistration() {
  static bool force = [] {
    const char* env = std::getenv("PLASMA_TEST_REGISTER_ALL");
    return env != nullptr && std::strcmp(env, "1") == 0;
  }();
  return force;
}

// One side of a connection: a plugin instance (own context) and its endpoint.
struct Endpoint {
  std::unique_ptr<Plugin> plugin;
  plasma_tp_conn_t conn = nullptr;
  // Registrations the helpers made for one request's buffer; deregistered
  // when that request is seen complete (Completed()).
  std::map<plasma_tp_request_t, plasma_tp_mem_t> request_mems;
  // Deregistrations that answered IN_PROGRESS; retried in Completed().
  std::vector<plasma_tp_mem_t> lingering_mems;

  const plasma_tp_v1_t& api() const { return plugin->api(); }
  plasma_tp_context_t ctx() const { return plugin->context(); }
  int Progress() const { return api().progress(ctx()); }
  uint32_t flags() const { return plugin->properties().flags; }
  bool NativeRead() const { return (flags() & PLASMA_TP_PROP_NATIVE_READ) != 0; }

  // Whether a buffer of `length` bytes must come with a registration:
  // every read() buffer, sends and receives above eager_threshold.
  bool NeedsMem(size_t length, bool is_read) const {
    bool required = (flags() & PLASMA_TP_PROP_REGISTRATION_REQUIRED) || ForceRegistration();
    return required && length > 0 && (is_read || length > plugin->properties().eager_threshold);
  }
  // Registers [buf, buf+length) for local use if NeedsMem(); null otherwise.
  plasma_tp_mem_t MemFor(const void* buf, size_t length, bool is_read) {
    if (!NeedsMem(length, is_read)) return nullptr;
    plasma_tp_mem_t mem = nullptr;
    int rc = api().mem_register(ctx(), const_cast<void*>(buf), length, PLASMA_TP_ACCESS_LOCAL,
                                &mem);
    EXPECT_EQ(rc, PLASMA_TP_OK) << "mem_register for a request: " << api().strerror(rc);
    return rc == PLASMA_TP_OK ? mem : nullptr;
  }
  void Deregister(plasma_tp_mem_t mem) {
    int rc = api().mem_deregister(ctx(), mem);
    if (rc == PLASMA_TP_IN_PROGRESS) {
      lingering_mems.push_back(mem);
    } else {
      EXPECT_EQ(rc, PLASMA_TP_OK) << api().strerror(rc);
    }
  }
  // Records the registration of a post (or frees it if the post failed).
  int Posted(int rc, plasma_tp_mem_t mem, plasma_tp_request_t req) {
    if (mem == nullptr) return rc;
    if (rc == PLASMA_TP_OK) request_mems[req] = mem;
    else Deregister(mem);
    return rc;
  }
  // Call once a request of this endpoint has completed (test() or
  // poll_completions() released it): drops the registration made for it.
  void Completed(plasma_tp_request_t req) {
    auto found = request_mems.find(req);
    if (found != request_mems.end()) {
      plasma_tp_mem_t mem = found->second;
      request_mems.erase(found);
      Deregister(mem);
    }
    if (!lingering_mems.empty()) {
      std::vector<plasma_tp_mem_t> retry;
      retry.swap(lingering_mems);
      for (plasma_tp_mem_t mem : retry) Deregister(mem);
    }
  }

  // Raw posts that register when needed; return the plugin's status.
  int TrySend(uint64_t tag, const void* buf, size_t len, plasma_tp_request_t* req,
              plasma_tp_conn_t on = nullptr) {
    plasma_tp_mem_t mem = MemFor(buf, len, false);
    int rc = api().send(ctx(), on ? on : conn, tag, buf, len, mem, req);
    return Posted(rc, mem, *req);
  }
  int TryRecv(uint64_t tag, uint64_t mask, void* buf, size_t capacity, plasma_tp_request_t* req,
              plasma_tp_conn_t on = nullptr) {
    plasma_tp_mem_t mem = MemFor(buf, capacity, false);
    int rc = api().recv(ctx(), on ? on : conn, tag, mask, buf, capacity, mem, req);
    return Posted(rc, mem, *req);
  }
  int TryRead(void* buf, size_t len, uint64_t remote_addr, plasma_tp_rkey_t rkey,
              plasma_tp_request_t* req, plasma_tp_conn_t on = nullptr) {
    plasma_tp_mem_t mem = MemFor(buf, len, true);
    int rc = api().read(ctx(), on ? on : conn, buf, len, mem, remote_addr, rkey, req);
    return Posted(rc, mem, *req);
  }

  // Posts that must succeed (a test failure is recorded otherwise).
  plasma_tp_request_t Send(uint64_t tag, const void* buf, size_t len,
                           plasma_tp_conn_t on = nullptr) {
    plasma_tp_request_t req = nullptr;
    int rc = TrySend(tag, buf, len, &req, on);
    EXPECT_EQ(rc, PLASMA_TP_OK) << "send: " << api().strerror(rc);
    return rc == PLASMA_TP_OK ? req : nullptr;
  }
  plasma_tp_request_t Recv(uint64_t tag, uint64_t mask, void* buf, size_t capacity,
                           plasma_tp_conn_t on = nullptr) {
    plasma_tp_request_t req = nullptr;
    int rc = TryRecv(tag, mask, buf, capacity, &req, on);
    EXPECT_EQ(rc, PLASMA_TP_OK) << "recv: " << api().strerror(rc);
    return rc == PLASMA_TP_OK ? req : nullptr;
  }
  plasma_tp_request_t Read(void* buf, size_t len, uint64_t remote_addr, plasma_tp_rkey_t rkey,
                           plasma_tp_conn_t on = nullptr) {
    plasma_tp_request_t req = nullptr;
    int rc = TryRead(buf, len, remote_addr, rkey, &req, on);
    EXPECT_EQ(rc, PLASMA_TP_OK) << "read: " << api().strerror(rc);
    return rc == PLASMA_TP_OK ? req : nullptr;
  }
};

// `holder` registers [buf, buf+len) for remote READ; `reader` unpacks its key
// on reader.conn. Both handles are null (and a test failure recorded) on error.
inline void ShareForRead(Endpoint& holder, Endpoint& reader, void* buf, size_t len,
                         plasma_tp_mem_t* mem, plasma_tp_rkey_t* rkey) {
  *mem = nullptr;
  *rkey = nullptr;
  int rc = holder.api().mem_register(holder.ctx(), buf, len,
                                     PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ, mem);
  ASSERT_EQ(rc, PLASMA_TP_OK) << holder.api().strerror(rc);
  const void* packed = nullptr;
  size_t packed_len = 0;
  rc = holder.api().mem_rkey(holder.ctx(), *mem, &packed, &packed_len);
  ASSERT_EQ(rc, PLASMA_TP_OK) << holder.api().strerror(rc);
  rc = reader.api().rkey_unpack(reader.ctx(), reader.conn, packed, packed_len, rkey);
  ASSERT_EQ(rc, PLASMA_TP_OK) << reader.api().strerror(rc);
}

// Progresses every endpoint until `done` or the deadline; false on timeout
// or when a progress() call fails (a context that is unusable: no spinning).
inline bool ProgressUntil(const std::vector<Endpoint*>& endpoints,
                          const std::function<bool()>& done,
                          std::chrono::seconds timeout = kDefaultTimeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    for (Endpoint* e : endpoints) {
      int rc = e->Progress();
      EXPECT_GE(rc, 0) << "progress failed: " << e->api().strerror(rc);
      if (rc < 0) return false;
    }
  }
  return true;
}

// Tracks one request to completion. A Pending made from a failed post is
// complete at once, with the post's status.
struct Pending {
  Endpoint* owner = nullptr;
  plasma_tp_request_t req = nullptr;
  bool done = false;
  plasma_tp_completion_t completion{};

  Pending() = default;
  Pending(Endpoint* e, plasma_tp_request_t r) : owner(e), req(r) {}
  static Pending FromPost(Endpoint* e, int rc, plasma_tp_request_t r) {
    Pending p(e, rc == PLASMA_TP_OK ? r : nullptr);
    if (rc != PLASMA_TP_OK) {
      p.done = true;
      p.completion.status = rc;
    }
    return p;
  }

  bool Poll() {
    if (done) return true;
    if (req == nullptr) {  // the post failed and a test failure was recorded
      done = true;
      completion.status = PLASMA_TP_ERR_INTERNAL;
      return true;
    }
    int rc = owner->api().test(owner->ctx(), req, &completion);
    if (rc == PLASMA_TP_OK) {
      done = true;
      owner->Completed(req);
    } else {
      EXPECT_EQ(rc, PLASMA_TP_IN_PROGRESS) << owner->api().strerror(rc);
    }
    return done;
  }
};

inline bool WaitAll(const std::vector<Endpoint*>& endpoints, std::vector<Pending*> pending,
                    std::chrono::seconds timeout = kDefaultTimeout) {
  // Only the ones not done yet are polled again (tests post many thousands).
  return ProgressUntil(endpoints, [&] {
    for (size_t i = 0; i < pending.size();) {
      if (pending[i]->Poll()) {
        pending[i] = pending.back();
        pending.pop_back();
      } else {
        ++i;
      }
    }
    return pending.empty();
  }, timeout);
}

// Two contexts of the plugin under test, connected over TestListenHint().
// b listens there, a connects, b accepts; returns once both ends
// are up (a fatal failure otherwise).
inline void ConnectEndpoints(Endpoint& a, Endpoint& b, plasma_tp_listener_t* listener,
                             std::string* address, std::chrono::seconds within) {
  ASSERT_EQ(b.api().listen(b.ctx(), TestListenHint().c_str(), listener), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t blob_len = 0;
  ASSERT_EQ(b.api().listener_address(b.ctx(), *listener, &blob, &blob_len), PLASMA_TP_OK);
  address->assign(static_cast<const char*>(blob), blob_len);
  ASSERT_EQ(a.api().connect(a.ctx(), blob, blob_len, &a.conn), PLASMA_TP_OK);
  ASSERT_TRUE(ProgressUntil({&a, &b}, [&] {
    if (b.conn == nullptr) b.api().accept(b.ctx(), *listener, &b.conn);
    return b.conn != nullptr && a.api().conn_status(a.ctx(), a.conn) == PLASMA_TP_OK &&
           b.api().conn_status(b.ctx(), b.conn) == PLASMA_TP_OK;
  }, within));
}

class ConnectedPair : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.plugin = LoadPluginUnderTest();
    b_.plugin = LoadPluginUnderTest();
    ASSERT_TRUE(a_.plugin && b_.plugin);
    ConnectEndpoints(a_, b_, &listener_, &address_, std::chrono::seconds(30));
  }

  void TearDown() override {
    // Finalize (in the Plugin destructors) frees whatever a failed test left.
    a_.plugin.reset();
    b_.plugin.reset();
  }

  Endpoint a_;
  Endpoint b_;
  plasma_tp_listener_t listener_ = nullptr;
  std::string address_;
};

// ---- Scenarios shared by the conformance and the plugin-specific tests ----

// Tags of the form kind:index (kind in the top 16 of the host's 48 bits).
inline uint64_t KindTag(uint64_t kind, uint64_t index) { return kind << 32 | index; }
constexpr uint64_t kKindMask = PLASMA_TP_TAG_PREFIX(16);

// A large message each way at once plus small ones each way, contents
// verified: the connection is fully usable.
inline void ExpectConnectionUsable(Endpoint& a, Endpoint& b, size_t large_size, uint64_t kind) {
  constexpr int kSmall = 50;
  std::vector<uint8_t> ab = Pattern(large_size, kind * 10 + 1);
  std::vector<uint8_t> ba = Pattern(large_size, kind * 10 + 2);
  std::vector<uint8_t> at_b(large_size), at_a(large_size);
  std::vector<std::vector<uint8_t>> small_ab(kSmall), small_ba(kSmall), got_ab(kSmall), got_ba(kSmall);
  std::vector<Pending> pending;
  pending.reserve(4 + 4 * kSmall);  // no reallocation: WaitAll holds pointers
  pending.emplace_back(&b, b.Recv(KindTag(kind, 0), kExact, at_b.data(), at_b.size()));
  pending.emplace_back(&a, a.Recv(KindTag(kind, 0), kExact, at_a.data(), at_a.size()));
  pending.emplace_back(&a, a.Send(KindTag(kind, 0), ab.data(), ab.size()));
  pending.emplace_back(&b, b.Send(KindTag(kind, 0), ba.data(), ba.size()));
  for (int i = 0; i < kSmall; ++i) {
    uint64_t tag = KindTag(kind, 1 + i);
    small_ab[i] = Pattern(1 + 37 * i, kind * 1000 + i);
    small_ba[i] = Pattern(2 + 53 * i, kind * 2000 + i);
    got_ab[i].assign(small_ab[i].size(), 0);
    got_ba[i].assign(small_ba[i].size(), 0);
    pending.emplace_back(&b, b.Recv(tag, kExact, got_ab[i].data(), got_ab[i].size()));
    pending.emplace_back(&a, a.Send(tag, small_ab[i].data(), small_ab[i].size()));
    pending.emplace_back(&a, a.Recv(tag, kExact, got_ba[i].data(), got_ba[i].size()));
    pending.emplace_back(&b, b.Send(tag, small_ba[i].data(), small_ba[i].size()));
  }
  std::vector<Pending*> all;
  for (Pending& p : pending) all.push_back(&p);
  ASSERT_TRUE(WaitAll({&a, &b}, all));
  for (Pending& p : pending) {
    EXPECT_EQ(p.completion.status, PLASMA_TP_OK) << a.api().strerror(p.completion.status);
  }
  EXPECT_TRUE(at_b == ab) << "large message a -> b corrupted";
  EXPECT_TRUE(at_a == ba) << "large message b -> a corrupted";
  for (int i = 0; i < kSmall; ++i) {
    EXPECT_EQ(got_ab[i], small_ab[i]) << "small message a -> b " << i;
    EXPECT_EQ(got_ba[i], small_ba[i]) << "small message b -> a " << i;
  }
}

// `count` messages from a arrive at b before any receive is posted (as many
// as b takes: a plugin may stop reading when its unexpected budget is full).
// Then b posts receives that discard them into a 256-byte scratch buffer
// each: exact receives for kind 1, prefix receives for kind 2; shorter
// messages complete OK with their bytes, longer ones MESSAGE_TOO_LARGE with
// the sender's length. Afterwards nothing is left over and the connection is
// fully usable. (Decision: unexpected messages are copied out of the
// plugin's receive resources; the host drains what it causes.)
inline void DrainUnmatchedThenUse(Endpoint& a, Endpoint& b, int count) {
  constexpr size_t kScratch = 256;
  const uint64_t eager = a.plugin->properties().eager_threshold;
  const uint64_t rendezvous_size = eager < (1u << 20) ? eager + 1 : (1u << 20);
  auto kind_of = [](int i) -> uint64_t { return i % 2 == 0 ? 1 : 2; };
  std::mt19937_64 random(4242);
  std::vector<std::vector<uint8_t>> sent(count);
  std::vector<Pending> sends(count);
  for (int i = 0; i < count; ++i) {
    size_t size;
    if (i % 500 == 250) {
      size = rendezvous_size;                       // above the eager threshold
    } else if (i % 7 == 3) {
      size = kScratch + 1 + random() % 4000;        // too large for the scratch
    } else {
      size = random() % (kScratch + 1);             // fits, 0 included
    }
    sent[i] = Pattern(size, 1000 + i);
    sends[i] = Pending(&a, a.Send(KindTag(kind_of(i), i), sent[i].data(), size));
  }

  // Let them arrive unmatched: until all are visible to probe, or both
  // sides have been idle for a long stretch with no new arrival.
  int visible = 0;
  int quiet_rounds = 0;
  plasma_tp_completion_t info{};
  const auto deadline = Clock::now() + kDefaultTimeout;
  for (;;) {
    int before = visible;
    while (visible < count && b.api().probe(b.ctx(), b.conn, KindTag(kind_of(visible), visible),
                                            kExact, &info) == PLASMA_TP_OK) {
      ++visible;
    }
    if (visible != before) quiet_rounds = 0;
    if (visible == count || quiet_rounds > 2000) break;
    ASSERT_LT(Clock::now(), deadline) << visible << " of " << count << " messages arrived";
    int events_a = a.Progress(), events_b = b.Progress();
    ASSERT_GE(events_a, 0);
    ASSERT_GE(events_b, 0);
    quiet_rounds = events_a == 0 && events_b == 0 ? quiet_rounds + 1 : 0;
  }
  EXPECT_GT(visible, 0);

  std::vector<std::vector<uint8_t>> scratch(count, std::vector<uint8_t>(kScratch));
  std::vector<Pending> recvs(count);
  for (int i = 0; i < count; i += 2) {
    recvs[i] = Pending(&b, b.Recv(KindTag(1, i), kExact, scratch[i].data(), kScratch));
  }
  for (int i = 1; i < count; i += 2) {
    recvs[i] = Pending(&b, b.Recv(KindTag(2, 0), kKindMask, scratch[i].data(), kScratch));
  }
  std::vector<Pending*> all;
  for (int i = 0; i < count; ++i) {
    all.push_back(&sends[i]);
    all.push_back(&recvs[i]);
  }
  ASSERT_TRUE(WaitAll({&a, &b}, all));

  std::vector<int> taken(count, 0);
  for (int i = 0; i < count; ++i) {
    const plasma_tp_completion_t& c = recvs[i].completion;
    ASSERT_TRUE(c.status == PLASMA_TP_OK || c.status == PLASMA_TP_ERR_MESSAGE_TOO_LARGE)
        << "receive " << i << ": " << b.api().strerror(c.status);
    const uint64_t index = c.tag & 0xFFFFFFFFu;
    ASSERT_LT(index, uint64_t(count)) << "receive " << i;
    ASSERT_EQ(c.tag, KindTag(kind_of(int(index)), index)) << "receive " << i;
    if (i % 2 == 0) {
      ASSERT_EQ(index, uint64_t(i)) << "an exact receive took another tag";
    }
    ++taken[index];
    ASSERT_EQ(c.length, sent[index].size()) << "message " << index;
    if (sent[index].size() <= kScratch) {
      ASSERT_EQ(c.status, PLASMA_TP_OK) << "message " << index;
      ASSERT_TRUE(sent[index].empty() ||
                  std::memcmp(scratch[i].data(), sent[index].data(), sent[index].size()) == 0)
          << "message " << index;
    } else {
      ASSERT_EQ(c.status, PLASMA_TP_ERR_MESSAGE_TOO_LARGE) << "message " << index;
    }
  }
  for (int i = 0; i < count; ++i) ASSERT_EQ(taken[i], 1) << "message " << i;
  for (int i = 0; i < count; ++i) {
    // A rendezvous sender may learn that its message was refused.
    ASSERT_TRUE(sends[i].completion.status == PLASMA_TP_OK ||
                sends[i].completion.status == PLASMA_TP_ERR_MESSAGE_TOO_LARGE)
        << "send " << i << ": " << a.api().strerror(sends[i].completion.status);
  }
  EXPECT_EQ(b.api().probe(b.ctx(), b.conn, 0, kAnyTag, &info), PLASMA_TP_IN_PROGRESS)
      << "something is left over after draining";
  ExpectConnectionUsable(a, b, 8 << 20, 3);
}

// `count` receives on b (newest tag first) and then `count` sends on a, all
// posted without a single progress() call: every post must be accepted
// (the plugin queues; ERR_AGAIN only when the context itself is out of
// request resources), and all of them complete with the right bytes.
inline void PostManyBeforeProgress(Endpoint& a, Endpoint& b, int count) {
  std::vector<uint64_t> values(count), got(count, 0);
  std::vector<Pending> recvs(count), sends(count);
  for (int i = count - 1; i >= 0; --i) {
    plasma_tp_request_t req = nullptr;
    int rc = b.TryRecv(uint64_t(i), kExact, &got[i], sizeof(uint64_t), &req);
    ASSERT_EQ(rc, PLASMA_TP_OK) << "receive " << (count - i) << " of " << count
                                << " posted before progress: " << b.api().strerror(rc);
    recvs[i] = Pending(&b, req);
  }
  for (int i = 0; i < count; ++i) {
    values[i] = uint64_t(i) * 0x9E3779B97F4A7C15ull;
    plasma_tp_request_t req = nullptr;
    int rc = a.TrySend(uint64_t(i), &values[i], sizeof(uint64_t), &req);
    ASSERT_EQ(rc, PLASMA_TP_OK) << "send " << i + 1 << " of " << count
                                << " posted before progress: " << a.api().strerror(rc);
    sends[i] = Pending(&a, req);
  }
  std::vector<Pending*> all;
  for (int i = 0; i < count; ++i) {
    all.push_back(&sends[i]);
    all.push_back(&recvs[i]);
  }
  ASSERT_TRUE(WaitAll({&a, &b}, all));
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(sends[i].completion.status, PLASMA_TP_OK) << i;
    ASSERT_EQ(recvs[i].completion.status, PLASMA_TP_OK) << i;
    ASSERT_EQ(recvs[i].completion.tag, uint64_t(i));
    ASSERT_EQ(got[i], values[i]) << "message " << i;
  }
}

}  // namespace plasma::transport::testing
