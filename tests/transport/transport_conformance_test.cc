// Transport conformance: what every plugin must do, exercised through the
// loader and the raw ABI table exactly as the manager uses them. Runs
// against PLASMA_TEST_TRANSPORT (default: socket).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>

#include "tests/transport/transport_test_util.h"

namespace plasma::transport::testing {
namespace {

TEST(TransportConformanceTest, ReportsConsistentProperties) {
  auto plugin = LoadPluginUnderTest();
  ASSERT_TRUE(plugin);
  EXPECT_EQ(plugin->api().abi_version, PLASMA_TP_ABI_VERSION_1);
  const plasma_tp_properties_t& props = plugin->properties();
  EXPECT_GE(props.struct_size, PLASMA_TP_PROPERTIES_MIN_SIZE);
  EXPECT_GT(props.max_message_size, 0u);
  EXPECT_GT(props.max_address_size, 0u);
  EXPECT_GT(props.max_rkey_size, 0u);
  ASSERT_NE(props.description, nullptr);
  EXPECT_STRNE(props.description, "");
  EXPECT_STREQ(plugin->api().strerror(PLASMA_TP_OK), "success");
  int fd = -1;
  int rc = plugin->api().wait_fd(plugin->context(), &fd);
  if (props.flags & PLASMA_TP_PROP_WAIT_FD) {
    EXPECT_EQ(rc, PLASMA_TP_OK);
    EXPECT_GE(fd, 0);
  } else {
    EXPECT_EQ(rc, PLASMA_TP_ERR_UNSUPPORTED);
  }
}

TEST(TransportConformanceTest, RejectsMalformedInput) {
  auto plugin = LoadPluginUnderTest();
  ASSERT_TRUE(plugin);
  const plasma_tp_v1_t& api = plugin->api();
  plasma_tp_context_t ctx = plugin->context();
  plasma_tp_listener_t listener = nullptr;
  EXPECT_EQ(api.listen(ctx, "127.0.0.1:99999", &listener), PLASMA_TP_ERR_ADDRESS);
  plasma_tp_conn_t conn = nullptr;
  const char garbage[] = "certainly not an address blob";
  EXPECT_EQ(api.connect(ctx, garbage, sizeof(garbage) - 1, &conn), PLASMA_TP_ERR_ADDRESS);
  ASSERT_EQ(api.listen(ctx, "127.0.0.1:0", &listener), PLASMA_TP_OK);
  EXPECT_EQ(api.close_listener(ctx, listener), PLASMA_TP_OK);
  EXPECT_EQ(api.close_listener(ctx, listener), PLASMA_TP_ERR_INVALID_ARGUMENT);
  plasma_tp_mem_t mem = nullptr;
  EXPECT_EQ(api.mem_register(ctx, nullptr, 100, PLASMA_TP_ACCESS_LOCAL, &mem),
            PLASMA_TP_ERR_INVALID_ARGUMENT);
}

// ---- send / recv -------------------------------------------------------------

class SendRecvSizes : public ConnectedPair, public ::testing::WithParamInterface<size_t> {};

TEST_P(SendRecvSizes, ContentsArriveIntact) {
  const size_t size = GetParam();
  std::vector<uint8_t> sent = Pattern(size, size + 7);
  std::vector<uint8_t> received(size + 16, 0xEE);  // spare room must stay untouched
  Pending recv(&b_, b_.Recv(42, kAllBits, received.data(), received.size()));
  Pending send(&a_, a_.Send(42, sent.data(), sent.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&send, &recv}));
  EXPECT_EQ(send.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(send.completion.op, uint32_t{PLASMA_TP_OP_SEND});
  EXPECT_EQ(send.completion.length, size);
  ASSERT_EQ(recv.completion.status, PLASMA_TP_OK) << a_.api().strerror(recv.completion.status);
  EXPECT_EQ(recv.completion.op, uint32_t{PLASMA_TP_OP_RECV});
  EXPECT_EQ(recv.completion.tag, 42u);
  ASSERT_EQ(recv.completion.length, size);
  EXPECT_TRUE(std::equal(sent.begin(), sent.end(), received.begin()));
  EXPECT_TRUE(std::all_of(received.begin() + size, received.end(),
                          [](uint8_t b) { return b == 0xEE; }));
}

INSTANTIATE_TEST_SUITE_P(Sizes, SendRecvSizes,
                         ::testing::Values(size_t{0}, size_t{1}, size_t{4096},
                                           size_t{64 * 1024},      // default eager threshold
                                           size_t{64 * 1024 + 1},  // first rendezvous size
                                           size_t{1} << 20, size_t{256} << 20),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::to_string(info.param) + "B";
                         });

TEST_F(ConnectedPair, BothDirectionsAtOnce) {
  std::vector<uint8_t> ab = Pattern(3 << 20, 1), ba = Pattern(5 << 20, 2);
  std::vector<uint8_t> at_b(ab.size()), at_a(ba.size());
  Pending rb(&b_, b_.Recv(1, kAllBits, at_b.data(), at_b.size()));
  Pending ra(&a_, a_.Recv(2, kAllBits, at_a.data(), at_a.size()));
  Pending sa(&a_, a_.Send(1, ab.data(), ab.size()));
  Pending sb(&b_, b_.Send(2, ba.data(), ba.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&rb, &ra, &sa, &sb}));
  for (Pending* p : {&rb, &ra, &sa, &sb}) EXPECT_EQ(p->completion.status, PLASMA_TP_OK);
  EXPECT_EQ(at_b, ab);
  EXPECT_EQ(at_a, ba);
}

TEST_F(ConnectedPair, UnexpectedMessagesWaitForTheirReceive) {
  // Sent before any receive is posted: one eager, one rendezvous-sized.
  std::vector<uint8_t> small = Pattern(100, 3), large = Pattern(1 << 20, 4);
  Pending s1(&a_, a_.Send(7, small.data(), small.size()));
  Pending s2(&a_, a_.Send(8, large.data(), large.size()));
  plasma_tp_completion_t info{};
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().probe(b_.ctx(), b_.conn, 8, kAllBits, &info) == PLASMA_TP_OK;
  }));
  EXPECT_EQ(info.tag, 8u);
  EXPECT_EQ(info.length, large.size());
  ASSERT_EQ(b_.api().probe(b_.ctx(), b_.conn, 7, kAllBits, &info), PLASMA_TP_OK);
  EXPECT_EQ(info.length, small.size());
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, 9, kAllBits, &info), PLASMA_TP_IN_PROGRESS);
  EXPECT_TRUE(s1.Poll());  // eager: done once written

  // Posted in the opposite order to the sends.
  std::vector<uint8_t> got_large(large.size()), got_small(small.size());
  Pending r2(&b_, b_.Recv(8, kAllBits, got_large.data(), got_large.size()));
  Pending r1(&b_, b_.Recv(7, kAllBits, got_small.data(), got_small.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &s2, &r1, &r2}));
  EXPECT_EQ(r1.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(r1.completion.length, small.size());
  EXPECT_EQ(r1.completion.tag, 7u);
  EXPECT_EQ(r2.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(r2.completion.length, large.size());
  EXPECT_EQ(r2.completion.tag, 8u);
  EXPECT_EQ(got_small, small);
  EXPECT_EQ(got_large, large);
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, 0, 0, &info), PLASMA_TP_IN_PROGRESS);
}

TEST_F(ConnectedPair, ManyMessagesInFlight) {
  constexpr int kCount = 1500;
  std::mt19937_64 random(12345);
  std::vector<std::vector<uint8_t>> sent(kCount), received(kCount);
  std::vector<Pending> sends(kCount), recvs(kCount);
  for (int i = 0; i < kCount; ++i) {
    size_t size = (i % 50 == 0) ? 200 * 1024 + i : random() % 3000;  // some rendezvous
    sent[i] = Pattern(size, i);
    received[i].assign(size, 0);
  }
  // Half the receives before the sends, in reverse order; the rest after.
  for (int i = kCount / 2 - 1; i >= 0; --i) {
    recvs[i] = Pending(&b_, b_.Recv(1000 + i, kAllBits, received[i].data(), received[i].size()));
  }
  for (int i = 0; i < kCount; ++i) {
    sends[i] = Pending(&a_, a_.Send(1000 + i, sent[i].data(), sent[i].size()));
  }
  for (int i = kCount / 2; i < kCount; ++i) {
    recvs[i] = Pending(&b_, b_.Recv(1000 + i, kAllBits, received[i].data(), received[i].size()));
  }
  std::vector<Pending*> all;
  for (int i = 0; i < kCount; ++i) {
    all.push_back(&sends[i]);
    all.push_back(&recvs[i]);
  }
  ASSERT_TRUE(WaitAll({&a_, &b_}, all));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(sends[i].completion.status, PLASMA_TP_OK) << i;
    ASSERT_EQ(recvs[i].completion.status, PLASMA_TP_OK) << i;
    ASSERT_EQ(recvs[i].completion.tag, uint64_t(1000 + i));
    ASSERT_EQ(received[i], sent[i]) << "message " << i;
  }
}

TEST_F(ConnectedPair, TagMatchingHonoursMasksAndOrder) {
  // Tags: high 32 bits = kind, low 32 bits = sequence.
  const uint64_t kKindMask = 0xFFFFFFFF00000000ull;
  auto tag = [](uint64_t kind, uint64_t seq) { return (kind << 32) | seq; };
  uint32_t x1 = 1, x2 = 2, x3 = 3, y1 = 4;
  uint32_t got_y = 0, got_first_x = 0, got_second_x = 0, got_exact = 0;
  // A wildcard on kind 2 and two receives on kind 1 (any sequence), plus an
  // exact receive that must only take sequence 3.
  Pending exact(&b_, b_.Recv(tag(1, 3), kAllBits, &got_exact, 4));
  Pending ry(&b_, b_.Recv(tag(2, 0), kKindMask, &got_y, 4));
  Pending rx1(&b_, b_.Recv(tag(1, 0), kKindMask, &got_first_x, 4));
  Pending rx2(&b_, b_.Recv(tag(1, 0), kKindMask, &got_second_x, 4));
  Pending s1(&a_, a_.Send(tag(1, 1), &x1, 4));
  Pending s2(&a_, a_.Send(tag(2, 9), &y1, 4));
  Pending s3(&a_, a_.Send(tag(1, 2), &x2, 4));
  Pending s4(&a_, a_.Send(tag(1, 3), &x3, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&exact, &ry, &rx1, &rx2, &s1, &s2, &s3, &s4}));
  EXPECT_EQ(got_y, y1);
  EXPECT_EQ(ry.completion.tag, tag(2, 9));
  // Same-kind messages match the kind receives in posting order; the exact
  // receive, posted first, takes only sequence 3.
  EXPECT_EQ(got_first_x, x1);
  EXPECT_EQ(rx1.completion.tag, tag(1, 1));
  EXPECT_EQ(got_second_x, x2);
  EXPECT_EQ(got_exact, x3);
  EXPECT_EQ(exact.completion.tag, tag(1, 3));
}

TEST_F(ConnectedPair, SameTagMessagesDoNotOvertake) {
  constexpr int kCount = 20;
  std::vector<std::vector<uint8_t>> sent(kCount);
  std::vector<Pending> sends(kCount), recvs(kCount);
  for (int i = 0; i < kCount; ++i) {
    // Alternate eager and rendezvous sizes: order must hold across both.
    sent[i] = Pattern(i % 2 ? 100 : 300 * 1024, i);
    sends[i] = Pending(&a_, a_.Send(5, sent[i].data(), sent[i].size()));
  }
  std::vector<std::vector<uint8_t>> received(kCount, std::vector<uint8_t>(300 * 1024));
  for (int i = 0; i < kCount; ++i) {
    recvs[i] = Pending(&b_, b_.Recv(5, kAllBits, received[i].data(), received[i].size()));
  }
  std::vector<Pending*> all;
  for (int i = 0; i < kCount; ++i) {
    all.push_back(&sends[i]);
    all.push_back(&recvs[i]);
  }
  ASSERT_TRUE(WaitAll({&a_, &b_}, all));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(recvs[i].completion.status, PLASMA_TP_OK);
    ASSERT_EQ(recvs[i].completion.length, sent[i].size()) << i;
    EXPECT_EQ(std::memcmp(received[i].data(), sent[i].data(), sent[i].size()), 0) << i;
  }
}

TEST_F(ConnectedPair, OversizedMessageFailsOnlyItsReceive) {
  for (size_t size : {size_t{1000}, size_t{1} << 20}) {  // eager, rendezvous
    SCOPED_TRACE(size);
    std::vector<uint8_t> big = Pattern(size, 9), small = Pattern(10, 10);
    std::vector<uint8_t> buffer(100);
    Pending r1(&b_, b_.Recv(1, kAllBits, buffer.data(), buffer.size()));
    Pending s1(&a_, a_.Send(1, big.data(), big.size()));
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&r1, &s1}));
    EXPECT_EQ(r1.completion.status, PLASMA_TP_ERR_MESSAGE_TOO_LARGE);
    EXPECT_EQ(r1.completion.length, size);  // what the sender offered
    // The sender may learn of the refusal (rendezvous) or not (eager).
    EXPECT_TRUE(s1.completion.status == PLASMA_TP_OK ||
                s1.completion.status == PLASMA_TP_ERR_MESSAGE_TOO_LARGE);

    // The connection carries on.
    Pending r2(&b_, b_.Recv(2, kAllBits, buffer.data(), buffer.size()));
    Pending s2(&a_, a_.Send(2, small.data(), small.size()));
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&r2, &s2}));
    ASSERT_EQ(r2.completion.status, PLASMA_TP_OK);
    EXPECT_EQ(std::memcmp(buffer.data(), small.data(), small.size()), 0);
  }
}

TEST_F(ConnectedPair, OversizedUnexpectedMessageFailsItsReceive) {
  std::vector<uint8_t> big = Pattern(1 << 20, 11);
  Pending s(&a_, a_.Send(3, big.data(), big.size()));
  plasma_tp_completion_t info{};
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().probe(b_.ctx(), b_.conn, 3, kAllBits, &info) == PLASMA_TP_OK;
  }));
  std::vector<uint8_t> buffer(10);
  Pending r(&b_, b_.Recv(3, kAllBits, buffer.data(), buffer.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&r, &s}));
  EXPECT_EQ(r.completion.status, PLASMA_TP_ERR_MESSAGE_TOO_LARGE);
  EXPECT_EQ(r.completion.length, big.size());
}

TEST_F(ConnectedPair, CanceledReceivesCompleteAndReleaseTheirBuffer) {
  // Unmatched receive.
  uint64_t slot = 0;
  Pending r1(&b_, b_.Recv(1, kAllBits, &slot, sizeof(slot)));
  ASSERT_EQ(b_.api().cancel(b_.ctx(), r1.req), PLASMA_TP_OK);
  ASSERT_TRUE(r1.Poll());
  EXPECT_EQ(r1.completion.status, PLASMA_TP_ERR_CANCELED);

  // A rendezvous receive canceled after it matched: its data must be
  // dropped, never written to the canceled buffer.
  std::vector<uint8_t> payload = Pattern(2 << 20, 12);
  std::vector<uint8_t> canceled_buffer(payload.size(), 0);
  Pending r2(&b_, b_.Recv(2, kAllBits, canceled_buffer.data(), canceled_buffer.size()));
  Pending s2(&a_, a_.Send(2, payload.data(), payload.size()));
  // Let the RTS arrive and match, then cancel.
  for (int i = 0; i < 3; ++i) {
    a_.Progress();
    b_.Progress();
  }
  ASSERT_EQ(b_.api().cancel(b_.ctx(), r2.req), PLASMA_TP_OK);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&r2, &s2}));
  if (r2.completion.status == PLASMA_TP_ERR_CANCELED) {
    // Whatever landed before the cancel is allowed; nothing may land after.
    std::vector<uint8_t> snapshot = canceled_buffer;
    uint32_t next = 0, expected = 0xC0FFEE;
    Pending r3(&b_, b_.Recv(3, kAllBits, &next, sizeof(next)));
    Pending s3(&a_, a_.Send(3, &expected, sizeof(expected)));
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&r3, &s3}));
    EXPECT_EQ(next, expected);
    EXPECT_EQ(snapshot, canceled_buffer);
  } else {
    EXPECT_EQ(r2.completion.status, PLASMA_TP_OK);  // too late to cancel
    EXPECT_EQ(canceled_buffer, payload);
  }
}

TEST_F(ConnectedPair, StaleAndForeignHandlesAreRejected) {
  uint32_t value = 1;
  Pending r(&b_, b_.Recv(1, kAllBits, &value, sizeof(value)));
  Pending s(&a_, a_.Send(1, &value, sizeof(value)));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&r, &s}));
  plasma_tp_completion_t c{};
  EXPECT_EQ(a_.api().test(a_.ctx(), s.req, &c), PLASMA_TP_ERR_INVALID_ARGUMENT);  // released
  plasma_tp_request_t req = nullptr;
  // b's connection handle means nothing in a's context.
  EXPECT_EQ(a_.api().send(a_.ctx(), b_.conn, 1, &value, 4, nullptr, &req),
            PLASMA_TP_ERR_INVALID_ARGUMENT);
  // A mem handle must cover the buffer it is passed with.
  uint8_t region[64];
  plasma_tp_mem_t mem = nullptr;
  ASSERT_EQ(a_.api().mem_register(a_.ctx(), region, 32, PLASMA_TP_ACCESS_LOCAL, &mem),
            PLASMA_TP_OK);
  EXPECT_EQ(a_.api().send(a_.ctx(), a_.conn, 1, region + 16, 32, mem, &req),
            PLASMA_TP_ERR_OUT_OF_BOUNDS);
  EXPECT_EQ(a_.api().mem_deregister(a_.ctx(), mem), PLASMA_TP_OK);
}

// ---- one-sided READ (emulated) -------------------------------------------------

class ReadEmulation : public ConnectedPair {
 protected:
  void SetUp() override {
    ConnectedPair::SetUp();
    if (HasFatalFailure()) return;
    region_ = Pattern(kRegionSize, 77);
    ASSERT_EQ(b_.api().mem_register(b_.ctx(), region_.data(), region_.size(),
                                    PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ, &mem_),
              PLASMA_TP_OK);
    const void* packed = nullptr;
    size_t packed_len = 0;
    ASSERT_EQ(b_.api().mem_rkey(b_.ctx(), mem_, &packed, &packed_len), PLASMA_TP_OK);
    ASSERT_LE(packed_len, b_.plugin->properties().max_rkey_size);
    packed_.assign(static_cast<const uint8_t*>(packed), static_cast<const uint8_t*>(packed) + packed_len);
    ASSERT_EQ(a_.api().rkey_unpack(a_.ctx(), a_.conn, packed_.data(), packed_.size(), &rkey_),
              PLASMA_TP_OK);
  }

  uint64_t RemoteAddress(size_t offset) const {
    return reinterpret_cast<uintptr_t>(region_.data()) + offset;
  }

  Pending Read(void* local, size_t length, uint64_t remote_addr, plasma_tp_rkey_t rkey) {
    plasma_tp_request_t req = nullptr;
    int rc = a_.api().read(a_.ctx(), a_.conn, local, length, nullptr, remote_addr, rkey, &req);
    EXPECT_EQ(rc, PLASMA_TP_OK) << a_.api().strerror(rc);
    return Pending(&a_, req);
  }

  static constexpr size_t kRegionSize = 8 << 20;
  std::vector<uint8_t> region_;
  plasma_tp_mem_t mem_ = nullptr;
  std::vector<uint8_t> packed_;
  plasma_tp_rkey_t rkey_ = nullptr;
};

TEST_F(ReadEmulation, ReadsTheRequestedRange) {
  for (auto [offset, length] : {std::pair<size_t, size_t>{0, kRegionSize},
                                {12345, 1 << 20},
                                {kRegionSize - 1, 1},
                                {100, 0}}) {
    SCOPED_TRACE(std::to_string(offset) + "+" + std::to_string(length));
    std::vector<uint8_t> local(length + 1, 0xAB);
    Pending read = Read(local.data(), length, RemoteAddress(offset), rkey_);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
    ASSERT_EQ(read.completion.status, PLASMA_TP_OK) << a_.api().strerror(read.completion.status);
    EXPECT_EQ(read.completion.op, uint32_t{PLASMA_TP_OP_READ});
    EXPECT_EQ(read.completion.length, length);
    EXPECT_EQ(std::memcmp(local.data(), region_.data() + offset, length), 0);
    EXPECT_EQ(local[length], 0xAB);
  }
}

TEST_F(ReadEmulation, BadKeyIsAnErrorCompletion) {
  // A key that was valid once: the registration is gone.
  uint8_t other[4096];
  plasma_tp_mem_t other_mem = nullptr;
  plasma_tp_rkey_t stale = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, other, sizeof(other), &other_mem, &stale));
  ASSERT_EQ(b_.api().mem_deregister(b_.ctx(), other_mem), PLASMA_TP_OK);
  uint8_t local[16];
  Pending read = Read(local, sizeof(local), reinterpret_cast<uintptr_t>(other), stale);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
  EXPECT_EQ(read.completion.status, PLASMA_TP_ERR_BAD_RKEY);
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), stale), PLASMA_TP_OK);

  // A forged key: flip bits in the key part of a valid packed rkey. The
  // plugin may refuse to unpack it, or the holder refuses the read.
  std::vector<uint8_t> forged = packed_;
  for (size_t i = forged.size() / 2; i < forged.size(); ++i) forged[i] ^= 0x5A;
  plasma_tp_rkey_t forged_rkey = nullptr;
  int rc = a_.api().rkey_unpack(a_.ctx(), a_.conn, forged.data(), forged.size(), &forged_rkey);
  if (rc == PLASMA_TP_OK) {
    Pending forged_read = Read(local, sizeof(local), RemoteAddress(0), forged_rkey);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&forged_read}));
    EXPECT_EQ(forged_read.completion.status, PLASMA_TP_ERR_BAD_RKEY);
    a_.api().rkey_release(a_.ctx(), forged_rkey);
  } else {
    EXPECT_EQ(rc, PLASMA_TP_ERR_BAD_RKEY);
  }
  // Garbage bytes never unpack into something usable.
  const uint8_t garbage[3] = {1, 2, 3};
  EXPECT_EQ(a_.api().rkey_unpack(a_.ctx(), a_.conn, garbage, sizeof(garbage), &forged_rkey),
            PLASMA_TP_ERR_BAD_RKEY);

  // A registration without REMOTE_READ has no rkey to give.
  plasma_tp_mem_t local_only = nullptr;
  ASSERT_EQ(b_.api().mem_register(b_.ctx(), other, sizeof(other), PLASMA_TP_ACCESS_LOCAL,
                                  &local_only),
            PLASMA_TP_OK);
  const void* packed = nullptr;
  size_t packed_len = 0;
  EXPECT_NE(b_.api().mem_rkey(b_.ctx(), local_only, &packed, &packed_len), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), local_only), PLASMA_TP_OK);

  // The connection still works.
  Pending good = Read(local, sizeof(local), RemoteAddress(64), rkey_);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&good}));
  EXPECT_EQ(good.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(std::memcmp(local, region_.data() + 64, sizeof(local)), 0);
}

TEST_F(ReadEmulation, OutOfBoundsIsAnErrorCompletion) {
  std::vector<uint8_t> local(4096);
  struct Case {
    const char* what;
    uint64_t addr;
    size_t length;
  };
  const uint64_t base = RemoteAddress(0);
  for (const Case& c : {Case{"before the region", base - 1, 16},
                        Case{"past the end", base + kRegionSize - 8, 16},
                        Case{"starts at the end", base + kRegionSize, 1},
                        Case{"wraps around", ~0ull - 4, 16},
                        Case{"longer than the region", base, kRegionSize + 1}}) {
    SCOPED_TRACE(c.what);
    std::vector<uint8_t> dest(c.length);
    Pending read = Read(dest.data(), c.length, c.addr, rkey_);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
    EXPECT_EQ(read.completion.status, PLASMA_TP_ERR_OUT_OF_BOUNDS);
  }
  Pending good = Read(local.data(), local.size(), RemoteAddress(kRegionSize - 4096), rkey_);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&good}));
  EXPECT_EQ(good.completion.status, PLASMA_TP_OK);
}

TEST_F(ReadEmulation, DeregisterWaitsForReadsBeingServed) {
  // 64 MiB cannot fit in the socket buffers while the reader is not
  // progressing, so the response is still being written out of the
  // registered memory when the holder deregisters it.
  std::vector<uint8_t> big = Pattern(64 << 20, 5);
  plasma_tp_mem_t big_mem = nullptr;
  plasma_tp_rkey_t big_rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, big.data(), big.size(), &big_mem, &big_rkey));

  std::vector<uint8_t> local(big.size());
  Pending read = Read(local.data(), local.size(), reinterpret_cast<uintptr_t>(big.data()), big_rkey);
  a_.Progress();
  for (int i = 0; i < 5; ++i) b_.Progress();
  int rc = b_.api().mem_deregister(b_.ctx(), big_mem);
  if (rc == PLASMA_TP_IN_PROGRESS) {
    // New reads are refused at once; the one being served still completes.
    std::vector<uint8_t> small(16);
    Pending refused =
        Read(small.data(), small.size(), reinterpret_cast<uintptr_t>(big.data()), big_rkey);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&read, &refused}));
    EXPECT_EQ(read.completion.status, PLASMA_TP_OK);
    EXPECT_TRUE(local == big);
    EXPECT_EQ(refused.completion.status, PLASMA_TP_ERR_BAD_RKEY);
    ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
      return b_.api().mem_deregister(b_.ctx(), big_mem) == PLASMA_TP_OK;
    }));
  } else {
    // The request had not reached b yet: it then finds no registration.
    EXPECT_EQ(rc, PLASMA_TP_OK);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
    EXPECT_EQ(read.completion.status, PLASMA_TP_ERR_BAD_RKEY);
  }
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), big_rkey), PLASMA_TP_OK);
}

// ---- connections -------------------------------------------------------------------

TEST(SocketConnectTest, ClosedPortIsRefused) {
  auto plugin = LoadPluginUnderTest();
  ASSERT_TRUE(plugin);
  const plasma_tp_v1_t& api = plugin->api();
  plasma_tp_context_t ctx = plugin->context();
  // Take a free port, then close it again.
  plasma_tp_listener_t listener = nullptr;
  ASSERT_EQ(api.listen(ctx, "127.0.0.1:0", &listener), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t len = 0;
  ASSERT_EQ(api.listener_address(ctx, listener, &blob, &len), PLASMA_TP_OK);
  std::string address(static_cast<const char*>(blob), len);
  ASSERT_EQ(api.close_listener(ctx, listener), PLASMA_TP_OK);

  plasma_tp_conn_t conn = nullptr;
  ASSERT_EQ(api.connect(ctx, address.data(), address.size(), &conn), PLASMA_TP_OK);
  // Posted before the outcome is known (or refused at once if already known).
  uint32_t value = 5;
  plasma_tp_request_t req = nullptr;
  int rc = api.send(ctx, conn, 1, &value, sizeof(value), nullptr, &req);
  Endpoint e;
  e.plugin = std::move(plugin);
  e.conn = conn;
  ASSERT_TRUE(ProgressUntil({&e}, [&] {
    return api.conn_status(ctx, conn) != PLASMA_TP_IN_PROGRESS;
  }, std::chrono::seconds(30)));
  EXPECT_EQ(api.conn_status(ctx, conn), PLASMA_TP_ERR_CONNECTION_REFUSED);
  if (rc == PLASMA_TP_OK) {
    Pending send(&e, req);
    ASSERT_TRUE(WaitAll({&e}, {&send}));
    EXPECT_EQ(send.completion.status, PLASMA_TP_ERR_CONNECTION_REFUSED);
  } else {
    EXPECT_EQ(rc, PLASMA_TP_ERR_CONNECTION_REFUSED);
  }
  EXPECT_EQ(api.send(ctx, conn, 1, &value, sizeof(value), nullptr, &req),
            PLASMA_TP_ERR_CONNECTION_REFUSED);
  EXPECT_EQ(api.close_conn(ctx, conn), PLASMA_TP_OK);
}

TEST_F(ConnectedPair, OperationsPostedBeforeEstablishmentAreQueued) {
  plasma_tp_conn_t early = nullptr;
  ASSERT_EQ(a_.api().connect(a_.ctx(), address_.data(), address_.size(), &early), PLASMA_TP_OK);
  uint64_t value = 0x1122334455667788ull;
  plasma_tp_request_t req = nullptr;
  ASSERT_EQ(a_.api().send(a_.ctx(), early, 77, &value, sizeof(value), nullptr, &req),
            PLASMA_TP_OK);
  Pending send(&a_, req);
  Endpoint server;  // the accepted end, sharing b's plugin
  plasma_tp_conn_t accepted = nullptr;
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().accept(b_.ctx(), listener_, &accepted) == PLASMA_TP_OK;
  }));
  uint64_t got = 0;
  plasma_tp_request_t rreq = nullptr;
  ASSERT_EQ(b_.api().recv(b_.ctx(), accepted, 77, kAllBits, &got, sizeof(got), nullptr, &rreq),
            PLASMA_TP_OK);
  Pending recv(&b_, rreq);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&send, &recv}));
  EXPECT_EQ(got, value);
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), early), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().close_conn(b_.ctx(), accepted), PLASMA_TP_OK);
}

TEST_F(ConnectedPair, WaitFdWakesWhenDataArrives) {
  int fd = -1;
  ASSERT_EQ(b_.api().wait_fd(b_.ctx(), &fd), PLASMA_TP_OK);
  ASSERT_GE(fd, 0);
  // Drain b until it is idle and armed.
  ASSERT_TRUE(ProgressUntil({&b_}, [&] { return b_.api().arm(b_.ctx()) == PLASMA_TP_OK; }));
  uint32_t value = 9, got = 0;
  Pending recv(&b_, b_.Recv(1, kAllBits, &got, sizeof(got)));
  Pending send(&a_, a_.Send(1, &value, sizeof(value)));
  ASSERT_TRUE(WaitAll({&a_}, {&send}));
  ASSERT_EQ(b_.api().arm(b_.ctx()), PLASMA_TP_OK);
  pollfd pfd{fd, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 30000), 1) << "wait fd never became readable";
  ASSERT_TRUE(WaitAll({&b_}, {&recv}));
  EXPECT_EQ(got, value);
}

// A host sleeps on the wait fd between transfers. After a transfer big enough
// to fill the socket buffers (the sender had to wait for room), both sides
// must go quiet again; a wait fd that stays readable makes every host spin.
TEST_F(ConnectedPair, WaitFdGoesQuietAfterALargeTransfer) {
  std::vector<uint8_t> sent = Pattern(64 << 20, 31), received(sent.size());
  std::vector<uint8_t> region = Pattern(32 << 20, 32), read_into(region.size());
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  Pending recv(&b_, b_.Recv(1, kAllBits, received.data(), received.size()));
  Pending send(&a_, a_.Send(1, sent.data(), sent.size()));
  plasma_tp_request_t read_req = nullptr;
  ASSERT_EQ(a_.api().read(a_.ctx(), a_.conn, read_into.data(), read_into.size(), nullptr,
                          reinterpret_cast<uintptr_t>(region.data()), rkey, &read_req),
            PLASMA_TP_OK);
  Pending read(&a_, read_req);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&send, &recv, &read}));
  ASSERT_EQ(recv.completion.status, PLASMA_TP_OK);
  ASSERT_EQ(read.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(received, sent);
  EXPECT_EQ(read_into, region);

  for (Endpoint* side : {&a_, &b_}) {
    int fd = -1;
    if (side->api().wait_fd(side->ctx(), &fd) != PLASMA_TP_OK) GTEST_SKIP() << "no wait fd";
    ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
      return side->api().arm(side->ctx()) == PLASMA_TP_OK;
    }));
    pollfd pfd{fd, POLLIN, 0};
    EXPECT_EQ(poll(&pfd, 1, 300), 0) << "the wait fd stays readable with nothing to do";
  }
}

// ---- failures ----------------------------------------------------------------------

TEST_F(ConnectedPair, PeerClosingMidTransferFailsEveryOutstandingRequest) {
  const size_t kBig = 256 << 20;
  std::vector<uint8_t> payload(kBig);
  plasma::test::FillPattern(payload.data(), payload.size(), 21);
  std::vector<uint8_t> sink(kBig);
  std::vector<uint8_t> region = Pattern(64 << 20, 22);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));

  Pending b_recv(&b_, b_.Recv(1, kAllBits, sink.data(), sink.size()));
  Pending a_send(&a_, a_.Send(1, payload.data(), payload.size()));
  uint32_t never = 0;
  Pending a_recv(&a_, a_.Recv(2, kAllBits, &never, sizeof(never)));
  std::vector<uint8_t> read_into(region.size());
  plasma_tp_request_t read_req = nullptr;
  ASSERT_EQ(a_.api().read(a_.ctx(), a_.conn, read_into.data(), read_into.size(), nullptr,
                          reinterpret_cast<uintptr_t>(region.data()), rkey, &read_req),
            PLASMA_TP_OK);
  Pending a_read(&a_, read_req);
  // A few rounds: the transfers are under way but cannot have finished
  // (each round moves at most a few socket buffers' worth).
  for (int i = 0; i < 3; ++i) {
    a_.Progress();
    b_.Progress();
  }
  if (b_recv.Poll()) GTEST_SKIP() << "the transfer finished before the close; inconclusive";

  ASSERT_EQ(b_.api().close_conn(b_.ctx(), b_.conn), PLASMA_TP_OK);
  ASSERT_TRUE(b_recv.Poll());
  EXPECT_EQ(b_recv.completion.status, PLASMA_TP_ERR_CANCELED);

  ASSERT_TRUE(WaitAll({&a_, &b_}, {&a_send, &a_recv, &a_read}));
  EXPECT_EQ(a_send.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_recv.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_read.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_.api().conn_status(a_.ctx(), a_.conn), PLASMA_TP_ERR_CONNECTION_RESET);
  plasma_tp_request_t req = nullptr;
  EXPECT_EQ(a_.api().send(a_.ctx(), a_.conn, 1, &never, 4, nullptr, &req),
            PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), a_.conn), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), mem), PLASMA_TP_OK);
}

TEST_F(ConnectedPair, MessageSentJustBeforeCloseIsStillReceivable) {
  uint64_t value = 0xFEEDull, got = 0;
  Pending send(&a_, a_.Send(4, &value, sizeof(value)));
  ASSERT_TRUE(WaitAll({&a_}, {&send}));
  ASSERT_EQ(a_.api().close_conn(a_.ctx(), a_.conn), PLASMA_TP_OK);
  ASSERT_TRUE(ProgressUntil({&b_}, [&] {
    return b_.api().conn_status(b_.ctx(), b_.conn) == PLASMA_TP_ERR_CONNECTION_RESET;
  }));
  Pending recv(&b_, b_.Recv(4, kAllBits, &got, sizeof(got)));
  ASSERT_TRUE(WaitAll({&b_}, {&recv}));
  EXPECT_EQ(recv.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(recv.completion.length, sizeof(value));
  EXPECT_EQ(got, value);
}

// The peer is a separate process that is SIGKILLed while this side has a
// receive, a rendezvous send and a READ outstanding towards it.
TEST(SocketPeerDeathTest, KilledPeerFailsOutstandingRequests) {
  auto parent_plugin = LoadPluginUnderTest();
  ASSERT_TRUE(parent_plugin);
  Endpoint parent;
  parent.plugin = std::move(parent_plugin);
  const plasma_tp_v1_t& api = parent.api();
  plasma_tp_listener_t listener = nullptr;
  ASSERT_EQ(api.listen(parent.ctx(), "127.0.0.1:0", &listener), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t blob_len = 0;
  ASSERT_EQ(api.listener_address(parent.ctx(), listener, &blob, &blob_len), PLASMA_TP_OK);
  std::string address(static_cast<const char*>(blob), blob_len);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Child: no gtest assertions; any failure just exits non-zero.
    alarm(60);  // never outlive a stuck test
    auto loaded = Plugin::Load("socket", QuietOptions());
    if (!loaded.ok()) _exit(2);
    Endpoint peer;
    peer.plugin = std::move(loaded).value();
    if (peer.api().connect(peer.ctx(), address.data(), address.size(), &peer.conn) != 0) _exit(3);
    static std::vector<uint8_t> region(32 << 20, 0x42);
    plasma_tp_mem_t mem = nullptr;
    const void* packed = nullptr;
    size_t packed_len = 0;
    if (peer.api().mem_register(peer.ctx(), region.data(), region.size(),
                                PLASMA_TP_ACCESS_REMOTE_READ, &mem) != 0 ||
        peer.api().mem_rkey(peer.ctx(), mem, &packed, &packed_len) != 0) {
      _exit(4);
    }
    std::vector<uint8_t> hello(packed_len + 8);
    uint64_t addr = reinterpret_cast<uintptr_t>(region.data());
    std::memcpy(hello.data(), &addr, 8);
    std::memcpy(hello.data() + 8, packed, packed_len);
    plasma_tp_request_t req = nullptr;
    if (peer.api().send(peer.ctx(), peer.conn, 1, hello.data(), hello.size(), nullptr, &req) != 0) {
      _exit(5);
    }
    plasma_tp_completion_t c;
    for (int i = 0; i < 1000000 && peer.api().test(peer.ctx(), req, &c) != PLASMA_TP_OK; ++i) {
      peer.Progress();
    }
    raise(SIGKILL);  // die with everything open, mid-conversation
    _exit(6);
  }

  ASSERT_TRUE(ProgressUntil({&parent}, [&] {
    return parent.conn != nullptr ||
           api.accept(parent.ctx(), listener, &parent.conn) == PLASMA_TP_OK;
  }, std::chrono::seconds(60)));
  std::vector<uint8_t> hello(8 + parent.plugin->properties().max_rkey_size);
  Pending got_hello(&parent, parent.Recv(1, kAllBits, hello.data(), hello.size()));
  ASSERT_TRUE(WaitAll({&parent}, {&got_hello}, std::chrono::seconds(60)));
  ASSERT_EQ(got_hello.completion.status, PLASMA_TP_OK);
  uint64_t remote_addr = 0;
  std::memcpy(&remote_addr, hello.data(), 8);
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_EQ(api.rkey_unpack(parent.ctx(), parent.conn, hello.data() + 8,
                            got_hello.completion.length - 8, &rkey),
            PLASMA_TP_OK);

  uint32_t never = 0;
  Pending recv(&parent, parent.Recv(2, kAllBits, &never, sizeof(never)));
  std::vector<uint8_t> big = Pattern(64 << 20, 5);
  Pending send(&parent, parent.Send(3, big.data(), big.size()));  // never accepted
  std::vector<uint8_t> read_into(32 << 20);
  plasma_tp_request_t read_req = nullptr;
  ASSERT_EQ(api.read(parent.ctx(), parent.conn, read_into.data(), read_into.size(), nullptr,
                     remote_addr, rkey, &read_req),
            PLASMA_TP_OK);
  Pending read(&parent, read_req);

  ASSERT_TRUE(WaitAll({&parent}, {&recv, &send, &read}, std::chrono::seconds(60)));
  EXPECT_EQ(recv.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(send.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(read.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  EXPECT_EQ(api.conn_status(parent.ctx(), parent.conn), PLASMA_TP_ERR_CONNECTION_RESET);

  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "child exited with " << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
  api.rkey_release(parent.ctx(), rkey);
}

}  // namespace
}  // namespace plasma::transport::testing
