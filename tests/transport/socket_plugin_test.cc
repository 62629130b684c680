// Socket-plugin specifics: its properties, its address format, and its
// unexpected-message backpressure. The generic behaviour is covered by
// transport_conformance_test.cc.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "plugins/socket/wire_format.h"
#include "tests/transport/transport_test_util.h"

namespace plasma::transport::testing {
namespace {

TEST(SocketPluginTest, ReportsProperties) {
  auto plugin = LoadPlugin("socket");
  ASSERT_TRUE(plugin);
  EXPECT_EQ(plugin->name(), "socket");
  EXPECT_EQ(plugin->api().abi_version, PLASMA_TP_ABI_VERSION_1);
  const plasma_tp_properties_t& props = plugin->properties();
  EXPECT_GE(props.struct_size, PLASMA_TP_PROPERTIES_MIN_SIZE);
  EXPECT_FALSE(props.flags & PLASMA_TP_PROP_NATIVE_READ);
  EXPECT_FALSE(props.flags & PLASMA_TP_PROP_REGISTRATION_REQUIRED);
  EXPECT_TRUE(props.flags & PLASMA_TP_PROP_WAIT_FD);
  EXPECT_GT(props.eager_threshold, 0u);
  EXPECT_GT(props.max_message_size, 256ull << 20);
  EXPECT_GT(props.max_address_size, 0u);
  EXPECT_GT(props.max_rkey_size, 0u);
  EXPECT_EQ(props.max_inflight, 0u);  // posts queue; nothing limits the wire but TCP
  ASSERT_NE(props.description, nullptr);
  EXPECT_STRNE(props.description, "");
  EXPECT_STREQ(plugin->api().strerror(PLASMA_TP_ERR_BAD_RKEY), "bad remote key");
  EXPECT_TRUE(plugin->has_poll_completions());
}

// init() gets the bind hint listen() will get (decision 5). TCP needs no
// device chosen in advance, so the socket plugin only checks its syntax (no
// name lookup) and otherwise ignores it.
TEST(SocketPluginTest, InitChecksTheLocalAddress) {
  UseBuiltPlugins();
  for (const char* good : {"", "127.0.0.1", "127.0.0.1:0", ":7000", "[::1]", "[::1]:7000", "::1",
                           "node-7.cluster.example", "0.0.0.0:65535"}) {
    SCOPED_TRACE(good);
    PluginOptions options = QuietOptions();
    options.local_address = good;
    auto loaded = Plugin::Load("socket", options);
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  }
  for (const char* bad : {"[::1", "127.0.0.1:99999", "host:port", "two words", "[nonsense]:1",
                          "1:2:3:zz", "a:1:"}) {
    SCOPED_TRACE(bad);
    PluginOptions options = QuietOptions();
    options.log = [](int, const std::string&) {};
    options.local_address = bad;
    auto loaded = Plugin::Load("socket", options);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << loaded.status().ToString();
    const std::string& message = loaded.status().message();
    EXPECT_NE(message.find("init failed: bad or unusable address"), std::string::npos) << message;
    EXPECT_NE(message.find("is not a bind hint"), std::string::npos) << message;
    EXPECT_NE(message.find(bad), std::string::npos) << message;
  }
}

TEST(SocketPluginTest, BindHintsAndAddressFormat) {
  auto plugin = LoadPlugin("socket");
  ASSERT_TRUE(plugin);
  const plasma_tp_v1_t& api = plugin->api();
  plasma_tp_listener_t listener = nullptr;
  EXPECT_EQ(api.listen(plugin->context(), "127.0.0.1:99999", &listener), PLASMA_TP_ERR_ADDRESS);
  EXPECT_EQ(api.listen(plugin->context(), "[::1", &listener), PLASMA_TP_ERR_ADDRESS);
  ASSERT_EQ(api.listen(plugin->context(), "127.0.0.1", &listener), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(api.listener_address(plugin->context(), listener, &blob, &len), PLASMA_TP_OK);
  std::string text(static_cast<const char*>(blob), len);
  EXPECT_EQ(text.rfind("tcp:127.0.0.1:", 0), 0u) << text;
  EXPECT_LE(len, plugin->properties().max_address_size);

  plasma_tp_conn_t conn = nullptr;
  const char garbage[] = "ucx:whatever";
  EXPECT_EQ(api.connect(plugin->context(), garbage, sizeof(garbage) - 1, &conn),
            PLASMA_TP_ERR_ADDRESS);
  EXPECT_EQ(api.connect(plugin->context(), "tcp:127.0.0.1:0", 15, &conn), PLASMA_TP_ERR_ADDRESS);
  EXPECT_EQ(api.close_listener(plugin->context(), listener), PLASMA_TP_OK);
  EXPECT_EQ(api.close_listener(plugin->context(), listener), PLASMA_TP_ERR_INVALID_ARGUMENT);
}

class SocketPair : public ConnectedPair {
 protected:
  void SetUp() override {
    if (TransportUnderTest() != "socket") GTEST_SKIP() << "socket plugin only";
    ConnectedPair::SetUp();
  }
};

// Decision 4: nothing breaks with 100,000 posts in flight on one
// connection (the receives posted newest first, so matching must not scan).
// The old plugin refused posts beyond 65,536 with ERR_AGAIN.
TEST_F(SocketPair, HundredThousandPostsOnOneConnection) {
  ASSERT_NO_FATAL_FAILURE(PostManyBeforeProgress(a_, b_, 100000));
  ExpectConnectionUsable(a_, b_, 1 << 20, 5);
}

// Decision 3: with registration forced on, the helpers pass a `mem` for
// every READ buffer and every send/recv above the eager threshold (what a
// REGISTRATION_REQUIRED plugin gets); the socket plugin checks them.
class SocketPairWithRegistration : public SocketPair {
 protected:
  void SetUp() override {
    ForceRegistration() = true;
    SocketPair::SetUp();
  }
  void TearDown() override {
    SocketPair::TearDown();
    ForceRegistration() = false;
  }
};

TEST_F(SocketPairWithRegistration, TransfersAndReadsPassTheirRegistration) {
  ASSERT_NO_FATAL_FAILURE(ExpectConnectionUsable(a_, b_, 8 << 20, 6));
  std::vector<uint8_t> region = Pattern(8 << 20, 61), into(region.size(), 0);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  Pending read(&a_, a_.Read(into.data(), into.size(), reinterpret_cast<uintptr_t>(region.data()),
                            rkey));
  ASSERT_EQ(a_.request_mems.size(), 1u) << "the helper did not register the READ buffer";
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
  EXPECT_EQ(read.completion.status, PLASMA_TP_OK);
  EXPECT_TRUE(into == region);
  EXPECT_TRUE(a_.request_mems.empty()) << "the READ's registration was not released";
  // A READ buffer outside the registration passed with it is refused.
  plasma_tp_mem_t local = nullptr;
  ASSERT_EQ(a_.api().mem_register(a_.ctx(), into.data(), 4096, PLASMA_TP_ACCESS_LOCAL, &local),
            PLASMA_TP_OK);
  plasma_tp_request_t req = nullptr;
  EXPECT_EQ(a_.api().read(a_.ctx(), a_.conn, into.data(), 8192, local,
                          reinterpret_cast<uintptr_t>(region.data()), rkey, &req),
            PLASMA_TP_ERR_OUT_OF_BOUNDS);
  EXPECT_EQ(a_.api().mem_deregister(a_.ctx(), local), PLASMA_TP_OK);
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), mem), PLASMA_TP_OK);
}

// A peer that puts a tag above the host's 48 bits on the wire breaks the
// protocol: the connection fails with PROTOCOL instead of delivering it.
TEST(SocketPluginTest, PeerTagAboveTheHostsBitsIsAProtocolError) {
  auto plugin = LoadPlugin("socket");
  ASSERT_TRUE(plugin);
  Endpoint server;
  server.plugin = std::move(plugin);
  const plasma_tp_v1_t& api = server.api();
  plasma_tp_listener_t listener = nullptr;
  ASSERT_EQ(api.listen(server.ctx(), "127.0.0.1:0", &listener), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(api.listener_address(server.ctx(), listener, &blob, &len), PLASMA_TP_OK);
  std::string text(static_cast<const char*>(blob), len);
  int port = std::atoi(text.substr(text.rfind(':') + 1).c_str());

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  uint8_t frames[2 * plasma_socket::kFrameHeaderSize];
  plasma_socket::FrameHeader hello;
  hello.type = plasma_socket::FrameType::kHello;
  hello.tag = plasma_socket::kHelloMagic;
  hello.id = plasma_socket::kProtocolVersion;
  plasma_socket::EncodeFrameHeader(hello, frames);
  plasma_socket::FrameHeader eager;
  eager.type = plasma_socket::FrameType::kEager;
  eager.tag = 1ull << 60;
  plasma_socket::EncodeFrameHeader(eager, frames + plasma_socket::kFrameHeaderSize);
  ASSERT_EQ(write(fd, frames, sizeof(frames)), ssize_t(sizeof(frames)));

  ASSERT_TRUE(ProgressUntil({&server}, [&] {
    if (server.conn == nullptr) api.accept(server.ctx(), listener, &server.conn);
    return server.conn != nullptr &&
           api.conn_status(server.ctx(), server.conn) == PLASMA_TP_ERR_PROTOCOL;
  }, std::chrono::seconds(30)));
  plasma_tp_completion_t info{};
  EXPECT_NE(api.probe(server.ctx(), server.conn, 0, kAnyTag, &info), PLASMA_TP_OK);
  close(fd);
}

// With a tiny unexpected-message budget the receiver stops reading until
// receives are posted, instead of buffering without bound.
class SmallUnexpectedBudget : public SocketPair {
 protected:
  void SetUp() override {
    setenv("PLASMA_TRANSPORT_SOCKET_UNEXPECTED_LIMIT", "4096", 1);
    SocketPair::SetUp();
    unsetenv("PLASMA_TRANSPORT_SOCKET_UNEXPECTED_LIMIT");
  }
};

TEST_F(SmallUnexpectedBudget, ReceiverPushesBackThenCatchesUp) {
  constexpr int kCount = 200;
  std::vector<std::vector<uint8_t>> sent(kCount);
  std::vector<Pending> sends(kCount);
  for (int i = 0; i < kCount; ++i) {
    sent[i] = Pattern(1000, i);
    sends[i] = Pending(&a_, a_.Send(i, sent[i].data(), sent[i].size()));
  }
  plasma_tp_completion_t info{};
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().probe(b_.ctx(), b_.conn, 0, kExact, &info) == PLASMA_TP_OK;
  }));
  for (int i = 0; i < 100; ++i) {
    a_.Progress();
    b_.Progress();
  }
  // Only about the budget's worth was taken off the socket.
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, kCount - 1, kExact, &info),
            PLASMA_TP_IN_PROGRESS);

  std::vector<std::vector<uint8_t>> received(kCount, std::vector<uint8_t>(1000));
  std::vector<Pending> recvs(kCount);
  for (int i = kCount - 1; i >= 0; --i) {
    recvs[i] = Pending(&b_, b_.Recv(i, kExact, received[i].data(), received[i].size()));
  }
  std::vector<Pending*> all;
  for (int i = 0; i < kCount; ++i) {
    all.push_back(&sends[i]);
    all.push_back(&recvs[i]);
  }
  ASSERT_TRUE(WaitAll({&a_, &b_}, all));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(recvs[i].completion.status, PLASMA_TP_OK) << i;
    ASSERT_EQ(received[i], sent[i]) << i;
  }
}

// Draining unmatched messages (decision 2) while the receiver pushes back:
// only part of them arrive before the receives are posted.
TEST_F(SmallUnexpectedBudget, DrainingUnderBackpressureLeavesTheConnectionUsable) {
  DrainUnmatchedThenUse(a_, b_, 2000);
}

// With the eager threshold at 0 every message, even an empty one, goes
// through RTS / CTS / DATA.
class EverythingRendezvous : public SocketPair {
 protected:
  void SetUp() override {
    setenv("PLASMA_TRANSPORT_SOCKET_EAGER_THRESHOLD", "0", 1);
    SocketPair::SetUp();
    unsetenv("PLASMA_TRANSPORT_SOCKET_EAGER_THRESHOLD");
  }
};

TEST_F(EverythingRendezvous, SmallAndEmptyMessagesStillArrive) {
  ASSERT_EQ(a_.plugin->properties().eager_threshold, 0u);
  std::vector<uint8_t> one = Pattern(1, 1), hundred = Pattern(100, 2);
  // Unexpected first, then expected.
  Pending s0(&a_, a_.Send(10, nullptr, 0));
  Pending s1(&a_, a_.Send(11, one.data(), one.size()));
  plasma_tp_completion_t info{};
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().probe(b_.ctx(), b_.conn, 11, kExact, &info) == PLASMA_TP_OK;
  }));
  EXPECT_FALSE(s1.Poll());  // waits for our clear-to-send
  std::vector<uint8_t> got_one(1), got_hundred(100);
  uint8_t unused = 0;
  Pending r0(&b_, b_.Recv(10, kExact, &unused, 0));
  Pending r1(&b_, b_.Recv(11, kExact, got_one.data(), got_one.size()));
  Pending r2(&b_, b_.Recv(12, kExact, got_hundred.data(), got_hundred.size()));
  Pending s2(&a_, a_.Send(12, hundred.data(), hundred.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s0, &s1, &s2, &r0, &r1, &r2}));
  for (Pending* p : {&s0, &s1, &s2, &r0, &r1, &r2}) EXPECT_EQ(p->completion.status, PLASMA_TP_OK);
  EXPECT_EQ(r0.completion.length, 0u);
  EXPECT_EQ(got_one, one);
  EXPECT_EQ(got_hundred, hundred);
}

}  // namespace
}  // namespace plasma::transport::testing
