// Socket-plugin specifics: its properties, its address format, and its
// unexpected-message backpressure. The generic behaviour is covered by
// transport_conformance_test.cc.
#include <cstdlib>

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
  ASSERT_NE(props.description, nullptr);
  EXPECT_STRNE(props.description, "");
  EXPECT_STREQ(plugin->api().strerror(PLASMA_TP_ERR_BAD_RKEY), "bad remote key");
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
    return b_.api().probe(b_.ctx(), b_.conn, 0, kAllBits, &info) == PLASMA_TP_OK;
  }));
  for (int i = 0; i < 100; ++i) {
    a_.Progress();
    b_.Progress();
  }
  // Only about the budget's worth was taken off the socket.
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, kCount - 1, kAllBits, &info),
            PLASMA_TP_IN_PROGRESS);

  std::vector<std::vector<uint8_t>> received(kCount, std::vector<uint8_t>(1000));
  std::vector<Pending> recvs(kCount);
  for (int i = kCount - 1; i >= 0; --i) {
    recvs[i] = Pending(&b_, b_.Recv(i, kAllBits, received[i].data(), received[i].size()));
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
    return b_.api().probe(b_.ctx(), b_.conn, 11, kAllBits, &info) == PLASMA_TP_OK;
  }));
  EXPECT_FALSE(s1.Poll());  // waits for our clear-to-send
  std::vector<uint8_t> got_one(1), got_hundred(100);
  uint8_t unused = 0;
  Pending r0(&b_, b_.Recv(10, kAllBits, &unused, 0));
  Pending r1(&b_, b_.Recv(11, kAllBits, got_one.data(), got_one.size()));
  Pending r2(&b_, b_.Recv(12, kAllBits, got_hundred.data(), got_hundred.size()));
  Pending s2(&a_, a_.Send(12, hundred.data(), hundred.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s0, &s1, &s2, &r0, &r1, &r2}));
  for (Pending* p : {&s0, &s1, &s2, &r0, &r1, &r2}) EXPECT_EQ(p->completion.status, PLASMA_TP_OK);
  EXPECT_EQ(r0.completion.length, 0u);
  EXPECT_EQ(got_one, one);
  EXPECT_EQ(got_hundred, hundred);
}

}  // namespace
}  // namespace plasma::transport::testing
