// The fault-injecting plugin (libplasma-transport-fault.so, wrapping the
// socket plugin): each action does what fault_plugin/README.md says, shown
// with two contexts over 127.0.0.1 in this process (kill and stop in a
// forked child). Rules are set through the environment before each load.
// Every wait is bounded; nothing asserts on timing. Where a test shows that
// a message "never arrives", it does so through the per-tag order guarantee:
// a later message of the same tag arrived first.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>

#include "tests/transport/transport_test_util.h"

namespace plasma::transport::testing {
namespace {

constexpr const char* kFaultEnv[] = {"PLASMA_FAULT", "PLASMA_FAULT_FILE", "PLASMA_FAULT_LOG",
                                     "PLASMA_FAULT_INNER"};
constexpr std::chrono::seconds kWait{30};

uint64_t Tag(uint64_t kind, uint64_t seq) { return (kind << 40) | seq; }

// Writes `text` to `path` atomically (a new inode each time, so the plugin
// sees the change even within one timestamp tick).
void WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
  }
  ASSERT_EQ(std::rename(temp.c_str(), path.c_str()), 0);
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Only errors reach the test log (some tests inject hundreds of faults).
PluginOptions ErrorsOnly() {
  PluginOptions options;
  options.log = [](int level, const std::string& message) {
    if (level <= PLASMA_TP_LOG_ERROR) std::fprintf(stderr, "[plugin] %s\n", message.c_str());
  };
  options.max_log_level = PLASMA_TP_LOG_WARN;
  return options;
}

PluginOptions Silent() {
  PluginOptions options;
  options.log = [](int, const std::string&) {};
  return options;
}

class FaultPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UseBuiltPlugins();
    for (const char* name : kFaultEnv) {
      if (const char* value = std::getenv(name)) saved_env_[name] = value;
      unsetenv(name);
    }
    auto dir = plasma::test::TempDir::Make("fault-plugin-test");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
  }

  void TearDown() override {
    a_.plugin.reset();
    b_.plugin.reset();
    for (const char* name : kFaultEnv) {
      auto saved = saved_env_.find(name);
      if (saved != saved_env_.end()) {
        setenv(name, saved->second.c_str(), 1);
      } else {
        unsetenv(name);
      }
    }
  }

  // Loads the fault plugin with PLASMA_FAULT=rules (unset again afterwards).
  Result<std::unique_ptr<Plugin>> TryLoad(const std::string& rules,
                                          PluginOptions options = QuietOptions()) {
    setenv("PLASMA_FAULT", rules.c_str(), 1);
    auto loaded = Plugin::Load("fault", std::move(options));
    unsetenv("PLASMA_FAULT");
    return loaded;
  }

  std::unique_ptr<Plugin> Load(const std::string& rules, PluginOptions options = QuietOptions()) {
    auto loaded = TryLoad(rules, std::move(options));
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return loaded.ok() ? std::move(loaded).value() : nullptr;
  }

  // a_ connects to b_, each a fault plugin with its own rules.
  void Connect(const std::string& a_rules, const std::string& b_rules = "") {
    a_.plugin = Load(a_rules);
    b_.plugin = Load(b_rules);
    ASSERT_TRUE(a_.plugin && b_.plugin);
    ConnectLoaded();
  }

  void ConnectLoaded() { ConnectEndpoints(a_, b_, &listener_, &address_, kWait); }

  // A post that may fail: returns the code, *req on success.
  int TrySend(Endpoint& e, uint64_t tag, const void* buf, size_t len, plasma_tp_request_t* req) {
    return e.api().send(e.ctx(), e.conn, tag, buf, len, nullptr, req);
  }
  int TryRecv(Endpoint& e, uint64_t tag, uint64_t mask, void* buf, size_t cap,
              plasma_tp_request_t* req) {
    return e.api().recv(e.ctx(), e.conn, tag, mask, buf, cap, nullptr, req);
  }

  std::unique_ptr<plasma::test::TempDir> dir_;
  Endpoint a_;
  Endpoint b_;
  plasma_tp_listener_t listener_ = nullptr;
  std::string address_;

 private:
  std::map<std::string, std::string> saved_env_;
};

// ---- loading, table, rule syntax ------------------------------------------------

TEST_F(FaultPluginTest, WrapsTheInnerPluginAndKeepsItsProperties) {
  auto fault = Load("");
  auto socket = LoadPlugin("socket");
  ASSERT_TRUE(fault && socket);
  EXPECT_EQ(fault->name(), "fault");
  EXPECT_GE(fault->api().struct_size, PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS);
  EXPECT_NE(fault->api().poll_completions, nullptr);
  const plasma_tp_properties_t& f = fault->properties();
  const plasma_tp_properties_t& s = socket->properties();
  EXPECT_EQ(f.flags, s.flags);
  EXPECT_EQ(f.max_message_size, s.max_message_size);
  EXPECT_EQ(f.eager_threshold, s.eager_threshold);
  EXPECT_EQ(f.max_inflight, s.max_inflight);
  EXPECT_EQ(f.max_address_size, s.max_address_size);
  EXPECT_EQ(f.max_rkey_size, s.max_rkey_size);
  ASSERT_NE(f.description, nullptr);
  EXPECT_EQ(std::string(f.description),
            std::string("test-only fault-injecting wrapper of: ") + s.description);
  int fd = -1;
  EXPECT_EQ(fault->api().wait_fd(fault->context(), &fd), PLASMA_TP_OK);
  EXPECT_GE(fd, 0);
}

TEST_F(FaultPluginTest, MalformedRulesFailInitNamingTheRule) {
  for (const char* bad : {"explode:send", "drop:sned", "error:send", "error=WHATEVER:send",
                          "error=5:send", "delay:send", "drop:progress", "reorder:recv",
                          "drop:send,nth=0", "drop:send,nth=1,after=2", "drop:send,tag=zz",
                          "drop:send,tag=0x1000000000000", "fail:send,prob=2",
                          "drop:send,seed=3", "drop:read,tag=1", "drop:send,bogus=1", "drop",
                          "drop:send,count=0", "kill:any,ms=5", "again:send,code=IO",
                          "drop:send,,nth=1", "fail:any"}) {
    SCOPED_TRACE(bad);
    std::string rules = std::string("again:recv,nth=3; ") + bad;  // the good one first
    auto loaded = TryLoad(rules, Silent());  // the loader still quotes the ERROR line
    ASSERT_FALSE(loaded.ok());
    const std::string message = loaded.status().ToString();
    EXPECT_NE(message.find("init failed: invalid argument"), std::string::npos) << message;
    EXPECT_NE(message.find(std::string("rule '") + bad + "'"), std::string::npos) << message;
    EXPECT_EQ(message.find("status -2"), std::string::npos) << "codes belong in the debug log: " << message;
  }
  // Whitespace, newlines, comments, empty rules, aliases and both parameter places.
  auto loaded = TryLoad(
      " drop:send,nth=2 ;; again:recv # trailing comment\n"
      "delay,ms=5:send,tag=0x10/0xff; delay=7:read; error=PLASMA_TP_ERR_IO:listen;"
      "error=-5:send,kind=0x1f,after=3,count=2; fail=refused:connect;"
      "close:progress,prob=0.5,seed=9");
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
}

TEST_F(FaultPluginTest, InitFaultsAndInnerProblemsAreReportedByTheLoader) {
  auto injected = TryLoad("error=NO_DEVICE:init");
  ASSERT_FALSE(injected.ok());
  EXPECT_EQ(injected.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(injected.status().ToString().find("injected error NO_DEVICE at init"),
            std::string::npos)
      << injected.status().ToString();

  setenv("PLASMA_FAULT_INNER", "nosuch", 1);
  auto missing = TryLoad("");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().ToString().find("libplasma-transport-nosuch.so: no such file"),
            std::string::npos)
      << missing.status().ToString();

  setenv("PLASMA_FAULT_INNER", "fault", 1);
  auto itself = TryLoad("");
  ASSERT_FALSE(itself.ok());
  EXPECT_NE(itself.status().ToString().find("is the fault plugin itself"), std::string::npos)
      << itself.status().ToString();

  setenv("PLASMA_FAULT_INNER", (std::string(PLASMA_TEST_PLUGIN_DIR) + "/" +
                                PluginFileName("socket")).c_str(), 1);
  auto by_path = TryLoad("");
  EXPECT_TRUE(by_path.ok()) << by_path.status().ToString();
}

// ---- error and again ----------------------------------------------------------------

TEST_F(FaultPluginTest, ErrorMakesTheCallReturnTheCodeAndCreatesNoRequest) {
  ASSERT_NO_FATAL_FAILURE(Connect("error=RESET:send,nth=2; error=-14:recv,nth=1"));
  uint32_t m[3] = {1, 2, 3};
  plasma_tp_request_t req = nullptr;
  ASSERT_EQ(TrySend(a_, 7, &m[0], 4, &req), PLASMA_TP_OK);
  Pending s1(&a_, req);
  req = nullptr;
  EXPECT_EQ(TrySend(a_, 7, &m[1], 4, &req), PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(req, nullptr);
  ASSERT_EQ(TrySend(a_, 7, &m[2], 4, &req), PLASMA_TP_OK);  // count defaults to 1 with nth
  Pending s3(&a_, req);
  uint32_t got = 0;
  EXPECT_EQ(TryRecv(a_, 1, kExact, &got, 4, &req), PLASMA_TP_ERR_IO);

  uint32_t r1 = 0, r2 = 0;
  Pending g1(&b_, b_.Recv(7, kExact, &r1, 4));
  Pending g2(&b_, b_.Recv(7, kExact, &r2, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &s3, &g1, &g2}, kWait));
  EXPECT_EQ(r1, 1u);
  EXPECT_EQ(r2, 3u);  // the refused post never existed
  EXPECT_EQ(a_.api().conn_status(a_.ctx(), a_.conn), PLASMA_TP_OK);  // nothing else happened
}

TEST_F(FaultPluginTest, AgainIsBackPressureThatARetryGetsThrough) {
  ASSERT_NO_FATAL_FAILURE(Connect("again:send,count=2"));
  uint64_t value = 0xABCD, got = 0;
  Pending recv(&b_, b_.Recv(3, kExact, &got, sizeof(got)));
  plasma_tp_request_t req = nullptr;
  EXPECT_EQ(TrySend(a_, 3, &value, sizeof(value), &req), PLASMA_TP_ERR_AGAIN);
  a_.Progress();
  EXPECT_EQ(TrySend(a_, 3, &value, sizeof(value), &req), PLASMA_TP_ERR_AGAIN);
  a_.Progress();
  ASSERT_EQ(TrySend(a_, 3, &value, sizeof(value), &req), PLASMA_TP_OK);
  Pending send(&a_, req);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&send, &recv}, kWait));
  EXPECT_EQ(send.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(recv.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(got, value);
}

TEST_F(FaultPluginTest, ProgressAndTestErrorsAreReturnedAtThatCall) {
  ASSERT_NO_FATAL_FAILURE(Connect(""));
  a_.plugin.reset();
  a_.plugin = Load("error=IO:progress,after=2,count=1; error=INTERNAL:test,tag=0x9,nth=1");
  ASSERT_TRUE(a_.plugin);
  EXPECT_GE(a_.Progress(), 0);
  EXPECT_GE(a_.Progress(), 0);
  EXPECT_EQ(a_.Progress(), PLASMA_TP_ERR_IO);
  EXPECT_GE(a_.Progress(), 0);
  // test() of a request with tag 9 fails once; the request is still there.
  plasma_tp_listener_t listener = nullptr;
  ASSERT_EQ(a_.api().listen(a_.ctx(), "127.0.0.1:0", &listener), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(a_.api().listener_address(a_.ctx(), listener, &blob, &len), PLASMA_TP_OK);
  ASSERT_EQ(a_.api().connect(a_.ctx(), blob, len, &a_.conn), PLASMA_TP_OK);
  uint32_t slot = 0;
  plasma_tp_request_t req = nullptr;
  ASSERT_EQ(TryRecv(a_, 9, kExact, &slot, 4, &req), PLASMA_TP_OK);
  plasma_tp_completion_t c{};
  EXPECT_EQ(a_.api().test(a_.ctx(), req, &c), PLASMA_TP_ERR_INTERNAL);
  EXPECT_EQ(a_.api().test(a_.ctx(), req, &c), PLASMA_TP_IN_PROGRESS);
  ASSERT_EQ(a_.api().cancel(a_.ctx(), req), PLASMA_TP_OK);
  Pending canceled(&a_, req);
  ASSERT_TRUE(WaitAll({&a_}, {&canceled}, kWait));
  EXPECT_EQ(canceled.completion.status, PLASMA_TP_ERR_CANCELED);
}

// ---- fail ------------------------------------------------------------------------------

TEST_F(FaultPluginTest, FailCompletesThePostWithTheCodeWithoutPassingItOn) {
  ASSERT_NO_FATAL_FAILURE(
      Connect("fail:send,nth=1; fail=CONNECTION_RESET:recv,nth=1; fail=BAD_RKEY:read,nth=1"));
  uint32_t m1 = 1, m2 = 2;
  Pending s1(&a_, a_.Send(5, &m1, 4));
  Pending s2(&a_, a_.Send(5, &m2, 4));
  uint32_t got = 0;
  Pending r(&b_, b_.Recv(5, kExact, &got, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &s2, &r}, kWait));
  EXPECT_EQ(s1.completion.status, PLASMA_TP_ERR_IO);  // default code
  EXPECT_EQ(s1.completion.op, uint32_t{PLASMA_TP_OP_SEND});
  EXPECT_EQ(s2.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(got, 2u);  // the first message of tag 5 to arrive is the second one sent

  uint32_t back = 77, into1 = 0, into2 = 0;
  Pending failed_recv(&a_, a_.Recv(9, kExact, &into1, 4));
  Pending good_recv(&a_, a_.Recv(9, kExact, &into2, 4));
  Pending back_send(&b_, b_.Send(9, &back, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&failed_recv, &good_recv, &back_send}, kWait));
  EXPECT_EQ(failed_recv.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(into1, 0u);
  EXPECT_EQ(good_recv.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(into2, 77u);

  std::vector<uint8_t> region = Pattern(4096, 3), local(64);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  for (int attempt = 0; attempt < 2; ++attempt) {
    plasma_tp_request_t req = nullptr;
    ASSERT_EQ(a_.api().read(a_.ctx(), a_.conn, local.data(), local.size(), nullptr,
                            reinterpret_cast<uintptr_t>(region.data()), rkey, &req),
              PLASMA_TP_OK);
    Pending read(&a_, req);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}, kWait));
    EXPECT_EQ(read.completion.status, attempt == 0 ? PLASMA_TP_ERR_BAD_RKEY : PLASMA_TP_OK);
  }
  EXPECT_EQ(std::memcmp(local.data(), region.data(), local.size()), 0);
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), mem), PLASMA_TP_OK);
}

TEST_F(FaultPluginTest, FailedConnectReportsTheCode) {
  a_.plugin = Load("fail:connect,nth=1");
  b_.plugin = Load("");
  ASSERT_TRUE(a_.plugin && b_.plugin);
  ASSERT_EQ(b_.api().listen(b_.ctx(), "127.0.0.1:0", &listener_), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(b_.api().listener_address(b_.ctx(), listener_, &blob, &len), PLASMA_TP_OK);
  plasma_tp_conn_t refused = nullptr;
  ASSERT_EQ(a_.api().connect(a_.ctx(), blob, len, &refused), PLASMA_TP_OK);
  EXPECT_EQ(a_.api().conn_status(a_.ctx(), refused), PLASMA_TP_ERR_CONNECTION_REFUSED);
  uint32_t value = 1;
  plasma_tp_request_t req = nullptr;
  EXPECT_EQ(a_.api().send(a_.ctx(), refused, 1, &value, 4, nullptr, &req),
            PLASMA_TP_ERR_CONNECTION_REFUSED);
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), refused), PLASMA_TP_OK);
  ASSERT_NO_FATAL_FAILURE(ConnectLoaded());  // the second connect is real
}

// ---- drop ------------------------------------------------------------------------------

TEST_F(FaultPluginTest, DroppedSendCompletesButNeverArrives) {
  ASSERT_NO_FATAL_FAILURE(Connect("drop:send,nth=2"));
  uint32_t m[3] = {11, 22, 33};
  Pending s1(&a_, a_.Send(7, &m[0], 4));
  Pending s2(&a_, a_.Send(7, &m[1], 4));
  Pending s3(&a_, a_.Send(7, &m[2], 4));
  uint32_t r1 = 0, r2 = 0;
  Pending g1(&b_, b_.Recv(7, kExact, &r1, 4));
  Pending g2(&b_, b_.Recv(7, kExact, &r2, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &s2, &s3, &g1, &g2}, kWait));
  EXPECT_EQ(s2.completion.status, PLASMA_TP_OK);  // lost, but the sender cannot tell
  EXPECT_EQ(s2.completion.length, 4u);
  EXPECT_EQ(r1, 11u);
  EXPECT_EQ(r2, 33u);
  plasma_tp_completion_t info{};
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, 0, kAnyTag, &info), PLASMA_TP_IN_PROGRESS);
}

TEST_F(FaultPluginTest, TagAndMaskSelectTheMessagesOfOneKind) {
  // Kind 5 (bits 40..47), twice; kind 6 passes.
  ASSERT_NO_FATAL_FAILURE(Connect("drop:send,tag=0x050000000000/0xff0000000000,count=2"));
  uint32_t k5[3] = {51, 52, 53}, k6 = 61;
  Pending s1(&a_, a_.Send(Tag(5, 1), &k5[0], 4));
  Pending s2(&a_, a_.Send(Tag(6, 1), &k6, 4));
  Pending s3(&a_, a_.Send(Tag(5, 1), &k5[1], 4));
  Pending s4(&a_, a_.Send(Tag(5, 1), &k5[2], 4));
  uint32_t got5 = 0, got6 = 0;
  Pending g5(&b_, b_.Recv(Tag(5, 0), PLASMA_TP_TAG_PREFIX(8), &got5, 4));
  Pending g6(&b_, b_.Recv(Tag(6, 1), kExact, &got6, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &s2, &s3, &s4, &g5, &g6}, kWait));
  EXPECT_EQ(got5, 53u);
  EXPECT_EQ(got6, 61u);

  // kind= is the same filter, shorter.
  a_.plugin.reset();
  b_.plugin.reset();
  a_.conn = b_.conn = nullptr;
  ASSERT_NO_FATAL_FAILURE(Connect("drop:send,kind=6"));
  Pending t1(&a_, a_.Send(Tag(6, 2), &k6, 4));
  Pending t2(&a_, a_.Send(Tag(5, 2), &k5[0], 4));
  Pending h5(&b_, b_.Recv(Tag(5, 2), kExact, &got5, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&t1, &t2, &h5}, kWait));
  EXPECT_EQ(got5, 51u);
  plasma_tp_completion_t info{};
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, Tag(6, 2), kExact, &info), PLASMA_TP_IN_PROGRESS);
}

TEST_F(FaultPluginTest, DroppedReceiveSwallowsTheNextMatchingMessage) {
  // Eager-sized (tag 3, once) and rendezvous-sized (tag 4, every receive).
  ASSERT_NO_FATAL_FAILURE(Connect("", "drop:recv,tag=3,nth=1; drop:recv,tag=4"));
  uint32_t m1 = 1, m2 = 2, got = 0;
  Pending r(&b_, b_.Recv(3, kExact, &got, 4));
  Pending s1(&a_, a_.Send(3, &m1, 4));
  Pending s2(&a_, a_.Send(3, &m2, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&r, &s1, &s2}, kWait));
  EXPECT_EQ(got, 2u);  // the first message went into the wrapper's scratch buffer
  EXPECT_EQ(s1.completion.status, PLASMA_TP_OK);

  const size_t kLarge = 1 << 20;
  std::vector<uint8_t> l1 = Pattern(kLarge, 1), l2 = Pattern(kLarge, 2), into(kLarge);
  Pending big(&b_, b_.Recv(4, kExact, into.data(), into.size()));
  Pending b1(&a_, a_.Send(4, l1.data(), l1.size()));
  Pending b2(&a_, a_.Send(4, l2.data(), l2.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&big, &b1, &b2}, kWait));
  EXPECT_EQ(b1.completion.status, PLASMA_TP_OK);  // accepted by the swallowing receive
  EXPECT_EQ(b2.completion.status, PLASMA_TP_OK);
  ASSERT_EQ(big.completion.status, PLASMA_TP_OK);
  EXPECT_TRUE(into == l2);
}

TEST_F(FaultPluginTest, DroppedAcceptClosesThatConnection) {
  a_.plugin = Load("");
  b_.plugin = Load("drop:accept,nth=1");
  ASSERT_TRUE(a_.plugin && b_.plugin);
  ASSERT_EQ(b_.api().listen(b_.ctx(), "127.0.0.1:0", &listener_), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(b_.api().listener_address(b_.ctx(), listener_, &blob, &len), PLASMA_TP_OK);
  plasma_tp_conn_t first = nullptr;
  ASSERT_EQ(a_.api().connect(a_.ctx(), blob, len, &first), PLASMA_TP_OK);
  plasma_tp_conn_t accepted = nullptr;
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    EXPECT_EQ(b_.api().accept(b_.ctx(), listener_, &accepted), PLASMA_TP_IN_PROGRESS);
    int status = a_.api().conn_status(a_.ctx(), first);
    return status != PLASMA_TP_OK && status != PLASMA_TP_IN_PROGRESS;
  }, kWait));
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), first), PLASMA_TP_OK);
  ASSERT_NO_FATAL_FAILURE(ConnectLoaded());  // the next one is accepted
}

// ---- delay and reorder -------------------------------------------------------------------

TEST_F(FaultPluginTest, DelayedSendArrivesLaterAndKeepsItsTagsOrder) {
  // Send 1 is held for 100 s (it never goes within this test), send 2 for
  // a moment; send 3 goes at once; send 4 has send 1's tag and must queue
  // behind it.
  ASSERT_NO_FATAL_FAILURE(Connect("delay:send,ms=100000,nth=1; delay:send,ms=300,nth=2"));
  uint32_t m[4] = {1, 2, 3, 4};
  uint32_t got[4] = {0, 0, 0, 0};
  std::vector<Pending> recvs;
  for (uint64_t tag : {1, 2, 3}) recvs.emplace_back(&b_, b_.Recv(tag, kExact, &got[tag - 1], 4));
  Pending s1(&a_, a_.Send(1, &m[0], 4));
  Pending s2(&a_, a_.Send(2, &m[1], 4));
  Pending s3(&a_, a_.Send(3, &m[2], 4));
  Pending s4(&a_, a_.Send(1, &m[3], 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&recvs[1], &recvs[2], &s2, &s3}, kWait));
  EXPECT_EQ(got[1], 2u);  // delayed, then delivered
  EXPECT_EQ(got[2], 3u);
  // Send 1 is still held, and send 4 behind it.
  EXPECT_FALSE(recvs[0].Poll());
  EXPECT_FALSE(s1.Poll());
  EXPECT_FALSE(s4.Poll());
  // Canceling a held post completes it at once; what queued behind it goes.
  ASSERT_EQ(a_.api().cancel(a_.ctx(), s1.req), PLASMA_TP_OK);
  ASSERT_TRUE(s1.Poll());
  EXPECT_EQ(s1.completion.status, PLASMA_TP_ERR_CANCELED);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&recvs[0], &s4}, kWait));
  EXPECT_EQ(got[0], 4u);
}

TEST_F(FaultPluginTest, DelayedPostWakesTheWaitFdWhenDue) {
  ASSERT_NO_FATAL_FAILURE(Connect("delay:send,ms=500"));
  int fd = -1;
  ASSERT_EQ(a_.api().wait_fd(a_.ctx(), &fd), PLASMA_TP_OK);
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] { return a_.api().arm(a_.ctx()) == PLASMA_TP_OK; },
                            kWait));
  uint32_t value = 5, got = 0;
  Pending recv(&b_, b_.Recv(1, kExact, &got, 4));
  Pending send(&a_, a_.Send(1, &value, 4));
  if (a_.api().arm(a_.ctx()) == PLASMA_TP_OK) {
    // Nothing but the held send is pending: only its timer can wake us.
    pollfd pfd{fd, POLLIN, 0};
    EXPECT_EQ(poll(&pfd, 1, 30000), 1) << "the wait fd stayed quiet while a held send fell due";
  }  // else the delay already passed (a very slow machine): nothing to show
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&send, &recv}, kWait));
  EXPECT_EQ(got, value);
  // And once it went, the fd goes quiet again.
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] { return a_.api().arm(a_.ctx()) == PLASMA_TP_OK; },
                            kWait));
  pollfd pfd{fd, POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 200), 0);
}

TEST_F(FaultPluginTest, DelayedReceiveAndReadStillComplete) {
  ASSERT_NO_FATAL_FAILURE(Connect("delay:recv,ms=200; delay:read,ms=200"));
  uint32_t value = 9, got = 0;
  Pending recv(&a_, a_.Recv(1, kExact, &got, 4));
  Pending send(&b_, b_.Send(1, &value, 4));
  std::vector<uint8_t> region = Pattern(8192, 4), local(8192);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  plasma_tp_request_t req = nullptr;
  ASSERT_EQ(a_.api().read(a_.ctx(), a_.conn, local.data(), local.size(), nullptr,
                          reinterpret_cast<uintptr_t>(region.data()), rkey, &req),
            PLASMA_TP_OK);
  Pending read(&a_, req);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&recv, &send, &read}, kWait));
  EXPECT_EQ(got, value);
  EXPECT_EQ(read.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(local, region);
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), mem), PLASMA_TP_OK);
}

TEST_F(FaultPluginTest, ReorderedSendIsOvertakenByTheNextSendOfAnotherTag) {
  ASSERT_NO_FATAL_FAILURE(Connect("reorder:send,nth=1"));
  uint32_t first = 1, same_tag = 2, other = 3;
  Pending s1(&a_, a_.Send(1, &first, 4));
  Pending s2(&a_, a_.Send(1, &same_tag, 4));  // queues behind the held one
  Pending s3(&a_, a_.Send(2, &other, 4));     // goes first, then the held ones
  uint32_t got[3] = {0, 0, 0};
  std::vector<Pending> recvs;
  for (uint32_t& slot : got) recvs.emplace_back(&b_, b_.Recv(0, kAnyTag, &slot, 4));  // any tag
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &s2, &s3, &recvs[0], &recvs[1], &recvs[2]}, kWait));
  EXPECT_EQ(recvs[0].completion.tag, 2u);
  EXPECT_EQ(got[0], 3u);  // the later message was matched first
  EXPECT_EQ(got[1], 1u);
  EXPECT_EQ(got[2], 2u);
}

// ---- close, kill, stop ------------------------------------------------------------------------

TEST_F(FaultPluginTest, CloseResetsTheConnectionUnderTheHost) {
  ASSERT_NO_FATAL_FAILURE(Connect("close:send,nth=2"));
  uint32_t never = 0, m1 = 1, m2 = 2, got = 0;
  Pending outstanding(&a_, a_.Recv(9, kExact, &never, 4));
  Pending s1(&a_, a_.Send(1, &m1, 4));
  Pending r1(&b_, b_.Recv(1, kExact, &got, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &r1}, kWait));
  EXPECT_EQ(got, 1u);
  plasma_tp_request_t req = nullptr;
  ASSERT_EQ(TrySend(a_, 1, &m2, 4, &req), PLASMA_TP_OK);  // posted, then the connection goes
  Pending s2(&a_, req);
  ASSERT_TRUE(WaitAll({&a_}, {&outstanding, &s2}, kWait));
  EXPECT_EQ(outstanding.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(s2.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_.api().conn_status(a_.ctx(), a_.conn), PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(TrySend(a_, 1, &m2, 4, &req), PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(TryRecv(a_, 1, kExact, &got, 4, &req), PLASMA_TP_ERR_CONNECTION_RESET);
  plasma_tp_completion_t info{};
  EXPECT_EQ(a_.api().probe(a_.ctx(), a_.conn, 0, kAnyTag, &info), PLASMA_TP_ERR_CONNECTION_RESET);
  // The peer sees its connection die too.
  ASSERT_TRUE(ProgressUntil({&b_}, [&] {
    return b_.api().conn_status(b_.ctx(), b_.conn) == PLASMA_TP_ERR_CONNECTION_RESET;
  }, kWait));
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), a_.conn), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().close_conn(b_.ctx(), b_.conn), PLASMA_TP_OK);
}

TEST_F(FaultPluginTest, CloseAtRkeyUnpackLeavesAReleasableKey) {
  ASSERT_NO_FATAL_FAILURE(Connect("close:rkey_unpack"));
  std::vector<uint8_t> region(4096);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  std::vector<uint8_t> local(16);
  plasma_tp_request_t req = nullptr;
  EXPECT_EQ(a_.api().read(a_.ctx(), a_.conn, local.data(), local.size(), nullptr,
                          reinterpret_cast<uintptr_t>(region.data()), rkey, &req),
            PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), a_.conn), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), mem), PLASMA_TP_OK);
}

// Runs `child` in a forked process that connects to a listener of `parent`
// (a fault context of this process) and reaps it on every path.
class ForkedPeer {
 public:
  ~ForkedPeer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Start(const std::string& rules, const std::string& fault_log, const std::string& address) {
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ != 0) return;
    // Child: no gtest assertions; a failure is a non-zero exit.
    alarm(60);  // never outlive a stuck test
    setenv("PLASMA_FAULT", rules.c_str(), 1);
    setenv("PLASMA_FAULT_LOG", fault_log.c_str(), 1);
    auto loaded = Plugin::Load("fault", QuietOptions());
    if (!loaded.ok()) _exit(2);
    Endpoint peer;
    peer.plugin = std::move(loaded).value();
    const plasma_tp_v1_t& api = peer.api();
    if (api.connect(peer.ctx(), address.data(), address.size(), &peer.conn) != 0) _exit(3);
    auto send_and_wait = [&](uint64_t tag, uint32_t value) {
      plasma_tp_request_t req = nullptr;
      static uint32_t buffers[8];
      buffers[tag % 8] = value;
      if (api.send(peer.ctx(), peer.conn, tag, &buffers[tag % 8], 4, nullptr, &req) != 0) _exit(4);
      plasma_tp_completion_t c;
      while (api.test(peer.ctx(), req, &c) != PLASMA_TP_OK) peer.Progress();
      if (c.status != PLASMA_TP_OK) _exit(5);
    };
    send_and_wait(1, 100);
    send_and_wait(2, 200);  // the rules strike here
    // Still alive (stop): stay until the parent closes the connection.
    while (api.conn_status(peer.ctx(), peer.conn) == PLASMA_TP_OK) peer.Progress();
    _exit(0);
  }
  // waitpid with a deadline; WUNTRACED reports a stop.
  std::optional<int> Wait(int flags, std::chrono::seconds timeout = kWait) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      pid_t got = waitpid(pid_, &status, WNOHANG | flags);
      if (got == pid_) {
        if (WIFEXITED(status) || WIFSIGNALED(status)) pid_ = -1;
        return status;
      }
      usleep(2000);
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
};

TEST_F(FaultPluginTest, KillTakesThePeerDownAtThatCall) {
  const std::string log = dir_->File("fault.log");
  b_.plugin = Load("");
  ASSERT_TRUE(b_.plugin);
  ASSERT_EQ(b_.api().listen(b_.ctx(), "127.0.0.1:0", &listener_), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(b_.api().listener_address(b_.ctx(), listener_, &blob, &len), PLASMA_TP_OK);
  ForkedPeer child;
  ASSERT_NO_FATAL_FAILURE(child.Start("kill:send,nth=2", log,
                                      std::string(static_cast<const char*>(blob), len)));
  const pid_t pid = child.pid();
  ASSERT_TRUE(ProgressUntil({&b_}, [&] {
    return b_.api().accept(b_.ctx(), listener_, &b_.conn) == PLASMA_TP_OK;
  }, kWait));
  uint32_t first = 0, second = 0;
  Pending r1(&b_, b_.Recv(1, kExact, &first, 4));
  Pending r2(&b_, b_.Recv(2, kExact, &second, 4));
  ASSERT_TRUE(WaitAll({&b_}, {&r1, &r2}, kWait));
  EXPECT_EQ(r1.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(first, 100u);
  EXPECT_EQ(r2.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);  // it died before sending
  std::optional<int> status = child.Wait(0);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
  std::vector<std::string> lines = ReadLines(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], std::to_string(pid) + " kill send tag=0x2 nth=2");
}

TEST_F(FaultPluginTest, StopFreezesThePeerUntilItIsContinued) {
  const std::string log = dir_->File("fault.log");
  b_.plugin = Load("");
  ASSERT_TRUE(b_.plugin);
  ASSERT_EQ(b_.api().listen(b_.ctx(), "127.0.0.1:0", &listener_), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(b_.api().listener_address(b_.ctx(), listener_, &blob, &len), PLASMA_TP_OK);
  ForkedPeer child;
  ASSERT_NO_FATAL_FAILURE(child.Start("stop:send,nth=2", log,
                                      std::string(static_cast<const char*>(blob), len)));
  ASSERT_TRUE(ProgressUntil({&b_}, [&] {
    return b_.api().accept(b_.ctx(), listener_, &b_.conn) == PLASMA_TP_OK;
  }, kWait));
  uint32_t first = 0, second = 0;
  Pending r1(&b_, b_.Recv(1, kExact, &first, 4));
  Pending r2(&b_, b_.Recv(2, kExact, &second, 4));
  ASSERT_TRUE(WaitAll({&b_}, {&r1}, kWait));
  EXPECT_EQ(first, 100u);
  std::optional<int> stopped = child.Wait(WUNTRACED);
  ASSERT_TRUE(stopped.has_value());
  ASSERT_TRUE(WIFSTOPPED(*stopped)) << *stopped;
  // Frozen before its second send reached the socket plugin.
  for (int i = 0; i < 100; ++i) b_.Progress();
  EXPECT_FALSE(r2.Poll());
  EXPECT_EQ(b_.api().conn_status(b_.ctx(), b_.conn), PLASMA_TP_OK);
  ASSERT_EQ(kill(child.pid(), SIGCONT), 0);
  ASSERT_TRUE(WaitAll({&b_}, {&r2}, kWait));
  EXPECT_EQ(r2.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(second, 200u);
  EXPECT_EQ(b_.api().close_conn(b_.ctx(), b_.conn), PLASMA_TP_OK);
  b_.conn = nullptr;
  std::optional<int> exited = child.Wait(0);
  ASSERT_TRUE(exited.has_value());
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0) << *exited;
  EXPECT_EQ(ReadLines(log).size(), 1u);
}

// ---- rules from a file, the fault log, poll_completions, probability ---------------------------

TEST_F(FaultPluginTest, RulesFromAFileChangeWhileRunning) {
  const std::string rules = dir_->File("rules");
  const std::string log = dir_->File("fault.log");
  setenv("PLASMA_FAULT_FILE", rules.c_str(), 1);  // does not exist yet: no rules
  setenv("PLASMA_FAULT_LOG", log.c_str(), 1);
  a_.plugin = Load("");
  unsetenv("PLASMA_FAULT_FILE");
  b_.plugin = Load("");
  ASSERT_TRUE(a_.plugin && b_.plugin);
  ASSERT_NO_FATAL_FAILURE(ConnectLoaded());

  uint32_t m[4] = {1, 2, 3, 4};
  auto send = [&](int i) {
    Pending s(&a_, a_.Send(1, &m[i], 4));
    EXPECT_TRUE(WaitAll({&a_}, {&s}, kWait));
    EXPECT_EQ(s.completion.status, PLASMA_TP_OK);
  };
  send(0);
  ASSERT_NO_FATAL_FAILURE(WriteFileAtomically(rules, "drop:send  # lose everything\n"));
  a_.Progress();  // the file is looked at here
  send(1);
  ASSERT_NO_FATAL_FAILURE(WriteFileAtomically(rules, "drop:send,nth=1;;bogus:rule"));
  a_.Progress();  // malformed: an ERROR line and no file rules
  send(2);
  ASSERT_NO_FATAL_FAILURE(WriteFileAtomically(rules, ""));
  a_.Progress();
  send(3);
  uint32_t got[3] = {0, 0, 0};
  std::vector<Pending> recvs;
  for (uint32_t& slot : got) recvs.emplace_back(&b_, b_.Recv(1, kExact, &slot, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&recvs[0], &recvs[1], &recvs[2]}, kWait));
  EXPECT_EQ(got[0], 1u);
  EXPECT_EQ(got[1], 3u);  // 2 was dropped
  EXPECT_EQ(got[2], 4u);
  EXPECT_EQ(ReadLines(log).size(), 1u);

  // A malformed file at init fails it.
  ASSERT_NO_FATAL_FAILURE(WriteFileAtomically(rules, "drop:send,nth=banana"));
  setenv("PLASMA_FAULT_FILE", rules.c_str(), 1);
  auto loaded = TryLoad("");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().ToString().find("rule 'drop:send,nth=banana'"), std::string::npos)
      << loaded.status().ToString();
}

// A running process gets a new rule: its next progress() closes every
// connection (here two, each with a receive outstanding).
TEST_F(FaultPluginTest, CloseAtProgressFromTheFileResetsEveryConnection) {
  const std::string rules = dir_->File("rules");
  setenv("PLASMA_FAULT_FILE", rules.c_str(), 1);
  a_.plugin = Load("");
  unsetenv("PLASMA_FAULT_FILE");
  b_.plugin = Load("");
  ASSERT_TRUE(a_.plugin && b_.plugin);
  ASSERT_NO_FATAL_FAILURE(ConnectLoaded());
  plasma_tp_conn_t second = nullptr, second_at_b = nullptr;
  ASSERT_EQ(a_.api().connect(a_.ctx(), address_.data(), address_.size(), &second), PLASMA_TP_OK);
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    if (second_at_b == nullptr) b_.api().accept(b_.ctx(), listener_, &second_at_b);
    return second_at_b != nullptr && a_.api().conn_status(a_.ctx(), second) == PLASMA_TP_OK;
  }, kWait));
  uint32_t slot1 = 0, slot2 = 0;
  Pending r1(&a_, a_.Recv(1, kExact, &slot1, 4));
  plasma_tp_request_t req = nullptr;
  ASSERT_EQ(a_.api().recv(a_.ctx(), second, 1, kExact, &slot2, 4, nullptr, &req), PLASMA_TP_OK);
  Pending r2(&a_, req);
  ASSERT_NO_FATAL_FAILURE(WriteFileAtomically(rules, "close:progress,nth=1\n"));
  EXPECT_GE(a_.Progress(), 1);  // reloads the file, and the rule fires at once
  ASSERT_TRUE(WaitAll({&a_}, {&r1, &r2}, kWait));
  EXPECT_EQ(r1.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(r2.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_.api().conn_status(a_.ctx(), a_.conn), PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_.api().conn_status(a_.ctx(), second), PLASMA_TP_ERR_CONNECTION_RESET);
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().conn_status(b_.ctx(), b_.conn) == PLASMA_TP_ERR_CONNECTION_RESET &&
           b_.api().conn_status(b_.ctx(), second_at_b) == PLASMA_TP_ERR_CONNECTION_RESET;
  }, kWait));
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), second), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().close_conn(b_.ctx(), second_at_b), PLASMA_TP_OK);
}

TEST_F(FaultPluginTest, EveryInjectionIsLoggedToTheFileAndTheHost) {
  const std::string log = dir_->File("fault.log");
  setenv("PLASMA_FAULT_LOG", log.c_str(), 1);
  std::vector<std::string> warnings;
  PluginOptions options;
  options.max_log_level = PLASMA_TP_LOG_WARN;
  options.log = [&warnings](int level, const std::string& message) {
    if (level == PLASMA_TP_LOG_WARN) warnings.push_back(message);
  };
  a_.plugin = Load("again:send,nth=1; drop:send,tag=0x42", options);
  b_.plugin = Load("");
  ASSERT_TRUE(a_.plugin && b_.plugin);
  ASSERT_NO_FATAL_FAILURE(ConnectLoaded());
  uint32_t value = 1;
  plasma_tp_request_t req = nullptr;
  EXPECT_EQ(TrySend(a_, 0x42, &value, 4, &req), PLASMA_TP_ERR_AGAIN);
  ASSERT_EQ(TrySend(a_, 0x42, &value, 4, &req), PLASMA_TP_OK);
  Pending dropped(&a_, req);
  ASSERT_EQ(TrySend(a_, 0x43, &value, 4, &req), PLASMA_TP_OK);
  Pending passed(&a_, req);
  ASSERT_TRUE(WaitAll({&a_}, {&dropped, &passed}, kWait));
  const std::string pid = std::to_string(getpid());
  // nth counts the calls each rule matched: the drop rule also saw the first one.
  EXPECT_EQ(ReadLines(log), (std::vector<std::string>{pid + " again send tag=0x42 nth=1",
                                                       pid + " drop send tag=0x42 nth=2"}));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[1].find("fault: injecting drop at send tag=0x42"), std::string::npos)
      << warnings[1];
}

TEST_F(FaultPluginTest, PollCompletionsReportsForwardedAndMadeUpCompletions) {
  ASSERT_NO_FATAL_FAILURE(Connect("fail:send,nth=2"));
  uint32_t m1 = 1, m2 = 2, back = 3, got = 0, peer_got = 0;
  Pending peer_recv(&b_, b_.Recv(7, kExact, &peer_got, 4));
  Pending peer_send(&b_, b_.Send(8, &back, 4));
  std::map<plasma_tp_request_t, std::string> mine;
  plasma_tp_request_t req = nullptr;
  ASSERT_EQ(TryRecv(a_, 8, kExact, &got, 4, &req), PLASMA_TP_OK);
  mine[req] = "recv";
  ASSERT_EQ(TrySend(a_, 7, &m1, 4, &req), PLASMA_TP_OK);
  mine[req] = "send";
  ASSERT_EQ(TrySend(a_, 7, &m2, 4, &req), PLASMA_TP_OK);
  mine[req] = "failed send";
  std::map<std::string, plasma_tp_completion_t> reported;
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    plasma_tp_request_completion_t batch[2];  // smaller than what is ready, at times
    size_t count = 0;
    EXPECT_EQ(a_.api().poll_completions(a_.ctx(), batch, 2, &count), PLASMA_TP_OK);
    for (size_t i = 0; i < count; ++i) {
      auto it = mine.find(batch[i].request);
      EXPECT_NE(it, mine.end()) << "a request reported twice or never posted";
      if (it == mine.end()) continue;
      reported[it->second] = batch[i].completion;
      mine.erase(it);
    }
    peer_recv.Poll();
    peer_send.Poll();
    return mine.empty() && peer_recv.done && peer_send.done;
  }, kWait));
  EXPECT_EQ(reported["recv"].status, PLASMA_TP_OK);
  EXPECT_EQ(got, 3u);
  EXPECT_EQ(reported["send"].status, PLASMA_TP_OK);
  EXPECT_EQ(reported["failed send"].status, PLASMA_TP_ERR_IO);
  EXPECT_EQ(peer_got, 1u);
  size_t count = 1;
  plasma_tp_request_completion_t none[1];
  EXPECT_EQ(a_.api().poll_completions(a_.ctx(), none, 1, &count), PLASMA_TP_OK);
  EXPECT_EQ(count, 0u);
}

TEST_F(FaultPluginTest, ProbabilityIsDeterministicForASeed) {
  std::vector<int> runs[2];
  for (std::vector<int>& statuses : runs) {
    a_.plugin.reset();
    b_.plugin.reset();
    a_.conn = b_.conn = nullptr;
    a_.plugin = Load("fail:send,prob=0.5,seed=42", ErrorsOnly());
    b_.plugin = Load("");
    ASSERT_TRUE(a_.plugin && b_.plugin);
    ASSERT_NO_FATAL_FAILURE(ConnectLoaded());
    uint32_t value = 0;
    std::vector<Pending> sends;
    for (int i = 0; i < 64; ++i) sends.emplace_back(&a_, a_.Send(1, &value, 4));
    std::vector<Pending*> all;
    for (Pending& p : sends) all.push_back(&p);
    ASSERT_TRUE(WaitAll({&a_, &b_}, all, kWait));
    for (Pending& p : sends) statuses.push_back(p.completion.status);
  }
  EXPECT_EQ(runs[0], runs[1]);
  size_t failed = std::count(runs[0].begin(), runs[0].end(), PLASMA_TP_ERR_IO);
  EXPECT_GT(failed, 0u);
  EXPECT_LT(failed, runs[0].size());
}

}  // namespace
}  // namespace plasma::transport::testing
