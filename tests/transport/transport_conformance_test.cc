// Transport conformance: what every plugin must do, exercised through the
// loader and the raw ABI table exactly as the manager uses them. Runs
// against PLASMA_TEST_TRANSPORT (default: socket).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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
  if (plugin->api().struct_size >= PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS) {
    EXPECT_TRUE(plugin->has_poll_completions());  // the loader rejects a NULL one
  }
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
  ASSERT_EQ(api.listen(ctx, TestListenHint().c_str(), &listener), PLASMA_TP_OK);
  EXPECT_EQ(api.close_listener(ctx, listener), PLASMA_TP_OK);
  EXPECT_EQ(api.close_listener(ctx, listener), PLASMA_TP_ERR_INVALID_ARGUMENT);
  plasma_tp_mem_t mem = nullptr;
  EXPECT_EQ(api.mem_register(ctx, nullptr, 100, PLASMA_TP_ACCESS_LOCAL, &mem),
            PLASMA_TP_ERR_INVALID_ARGUMENT);
}

// ---- tags ----------------------------------------------------------------------

static_assert(PLASMA_TP_TAG_EXACT == 0x0000FFFFFFFFFFFFull, "host owns the low 48 bits");
static_assert(PLASMA_TP_TAG_PREFIX(0) == 0, "prefix 0 matches any tag");
static_assert(PLASMA_TP_TAG_PREFIX(16) == 0x0000FFFF00000000ull, "top 16 host bits");
static_assert(PLASMA_TP_TAG_PREFIX(48) == PLASMA_TP_TAG_EXACT, "a full prefix is exact");

TEST(TransportTagsTest, MaskValidity) {
  for (int n = 0; n <= PLASMA_TP_TAG_BITS; ++n) {
    EXPECT_TRUE(plasma_tp_tag_mask_valid(PLASMA_TP_TAG_PREFIX(n))) << n;
  }
  EXPECT_FALSE(plasma_tp_tag_mask_valid(~0ull));                  // plugin bits
  EXPECT_FALSE(plasma_tp_tag_mask_valid(1ull << 48));
  EXPECT_FALSE(plasma_tp_tag_mask_valid(1));                      // not a prefix
  EXPECT_FALSE(plasma_tp_tag_mask_valid(0x0000FFFF0000FFFFull));  // a hole
  EXPECT_FALSE(plasma_tp_tag_mask_valid(0x00000000FFFFFFFFull));  // a suffix
}

TEST_F(ConnectedPair, TagsAndMasksOutsideTheHostsBitsAreRejected) {
  uint32_t value = 7, got = 0;
  plasma_tp_request_t req = nullptr;
  plasma_tp_completion_t info{};
  const plasma_tp_v1_t& a = a_.api();
  const plasma_tp_v1_t& b = b_.api();
  for (uint64_t bad_tag : {1ull << 48, 1ull << 63, ~0ull}) {
    SCOPED_TRACE(bad_tag);
    EXPECT_EQ(a.send(a_.ctx(), a_.conn, bad_tag, &value, sizeof(value), nullptr, &req),
              PLASMA_TP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(b.recv(b_.ctx(), b_.conn, bad_tag, kExact, &got, sizeof(got), nullptr, &req),
              PLASMA_TP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(b.probe(b_.ctx(), b_.conn, bad_tag, kExact, &info), PLASMA_TP_ERR_INVALID_ARGUMENT);
  }
  for (uint64_t bad_mask : {~0ull, 1ull, 0x0000FFFF0000FFFFull, 0xFFFF000000000000ull}) {
    SCOPED_TRACE(bad_mask);
    EXPECT_EQ(b.recv(b_.ctx(), b_.conn, 1, bad_mask, &got, sizeof(got), nullptr, &req),
              PLASMA_TP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(b.probe(b_.ctx(), b_.conn, 1, bad_mask, &info), PLASMA_TP_ERR_INVALID_ARGUMENT);
  }
  // A bad post that was accepted would now take the message below.
  if (HasFailure()) return;
  // The largest tag the host may use still works, and nothing was posted above.
  Pending r(&b_, b_.Recv(PLASMA_TP_TAG_EXACT, kExact, &got, sizeof(got)));
  Pending s(&a_, a_.Send(PLASMA_TP_TAG_EXACT, &value, sizeof(value)));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&r, &s}));
  EXPECT_EQ(r.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(r.completion.tag, PLASMA_TP_TAG_EXACT);
  EXPECT_EQ(got, value);
  EXPECT_EQ(b.probe(b_.ctx(), b_.conn, 0, kAnyTag, &info), PLASMA_TP_IN_PROGRESS);
}

// ---- send / recv -------------------------------------------------------------

class SendRecvSizes : public ConnectedPair, public ::testing::WithParamInterface<size_t> {};

TEST_P(SendRecvSizes, ContentsArriveIntact) {
  const size_t size = GetParam();
  std::vector<uint8_t> sent = Pattern(size, size + 7);
  std::vector<uint8_t> received(size + 16, 0xEE);  // spare room must stay untouched
  Pending recv(&b_, b_.Recv(42, kExact, received.data(), received.size()));
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
                                           size_t{128 * 1024},      // socket default eager threshold
                                           size_t{128 * 1024 + 1},  // its first rendezvous size
                                           size_t{1} << 20, size_t{256} << 20),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::to_string(info.param) + "B";
                         });

TEST_F(ConnectedPair, BothDirectionsAtOnce) {
  std::vector<uint8_t> ab = Pattern(3 << 20, 1), ba = Pattern(5 << 20, 2);
  std::vector<uint8_t> at_b(ab.size()), at_a(ba.size());
  Pending rb(&b_, b_.Recv(1, kExact, at_b.data(), at_b.size()));
  Pending ra(&a_, a_.Recv(2, kExact, at_a.data(), at_a.size()));
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
    return b_.api().probe(b_.ctx(), b_.conn, 8, kExact, &info) == PLASMA_TP_OK;
  }));
  EXPECT_EQ(info.tag, 8u);
  EXPECT_EQ(info.length, large.size());
  ASSERT_EQ(b_.api().probe(b_.ctx(), b_.conn, 7, kExact, &info), PLASMA_TP_OK);
  EXPECT_EQ(info.length, small.size());
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, 9, kExact, &info), PLASMA_TP_IN_PROGRESS);
  EXPECT_TRUE(s1.Poll());  // eager: done once written

  // Posted in the opposite order to the sends.
  std::vector<uint8_t> got_large(large.size()), got_small(small.size());
  Pending r2(&b_, b_.Recv(8, kExact, got_large.data(), got_large.size()));
  Pending r1(&b_, b_.Recv(7, kExact, got_small.data(), got_small.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&s1, &s2, &r1, &r2}));
  EXPECT_EQ(r1.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(r1.completion.length, small.size());
  EXPECT_EQ(r1.completion.tag, 7u);
  EXPECT_EQ(r2.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(r2.completion.length, large.size());
  EXPECT_EQ(r2.completion.tag, 8u);
  EXPECT_EQ(got_small, small);
  EXPECT_EQ(got_large, large);
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, 0, kAnyTag, &info), PLASMA_TP_IN_PROGRESS);
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
    recvs[i] = Pending(&b_, b_.Recv(1000 + i, kExact, received[i].data(), received[i].size()));
  }
  for (int i = 0; i < kCount; ++i) {
    sends[i] = Pending(&a_, a_.Send(1000 + i, sent[i].data(), sent[i].size()));
  }
  for (int i = kCount / 2; i < kCount; ++i) {
    recvs[i] = Pending(&b_, b_.Recv(1000 + i, kExact, received[i].data(), received[i].size()));
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

// Order is guaranteed among messages of one tag, and among receives of one
// (tag, mask) in posting order; nothing here relies on order across tags.
TEST_F(ConnectedPair, TagMatchingHonoursMasksAndOrder) {
  auto tag = KindTag;  // kind in the top 16 host bits, sequence below
  uint32_t got_exact = 0, got_first = 0, got_second = 0;
  // Kind 1: an exact receive for (1,3); a message (1,4) sent before (1,3)
  // must not take it. Kind 2: two prefix receives that two messages of ONE
  // tag fill in posting order.
  Pending exact(&b_, b_.Recv(tag(1, 3), kExact, &got_exact, 4));
  Pending first(&b_, b_.Recv(tag(2, 0), kKindMask, &got_first, 4));
  Pending second(&b_, b_.Recv(tag(2, 0), kKindMask, &got_second, 4));
  uint32_t v14 = 14, v29a = 291, v29b = 292, v13 = 13;
  Pending s1(&a_, a_.Send(tag(1, 4), &v14, 4));
  Pending s2(&a_, a_.Send(tag(2, 9), &v29a, 4));
  Pending s3(&a_, a_.Send(tag(2, 9), &v29b, 4));
  Pending s4(&a_, a_.Send(tag(1, 3), &v13, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&exact, &first, &second, &s1, &s2, &s3, &s4}));
  EXPECT_EQ(got_exact, v13);
  EXPECT_EQ(exact.completion.tag, tag(1, 3));
  EXPECT_EQ(got_first, v29a);
  EXPECT_EQ(first.completion.tag, tag(2, 9));
  EXPECT_EQ(got_second, v29b);
  EXPECT_EQ(second.completion.tag, tag(2, 9));

  // (1,4) matched nothing: prefix probes of its kind see it, others do not.
  plasma_tp_completion_t info{};
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().probe(b_.ctx(), b_.conn, tag(1, 4), kExact, &info) == PLASMA_TP_OK;
  }));
  ASSERT_EQ(b_.api().probe(b_.ctx(), b_.conn, tag(1, 0), kKindMask, &info), PLASMA_TP_OK);
  EXPECT_EQ(info.tag, tag(1, 4));
  EXPECT_EQ(info.length, 4u);
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, tag(3, 0), kKindMask, &info),
            PLASMA_TP_IN_PROGRESS);
  EXPECT_EQ(b_.api().probe(b_.ctx(), b_.conn, tag(1, 5), kExact, &info), PLASMA_TP_IN_PROGRESS);
  // A prefix-0 receive takes anything.
  uint32_t got_any = 0;
  Pending any(&b_, b_.Recv(0, kAnyTag, &got_any, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&any}));
  EXPECT_EQ(any.completion.tag, tag(1, 4));
  EXPECT_EQ(got_any, v14);

  // A 48-bit prefix is an exact mask: (5,1) only, though (5,2) comes first.
  uint32_t v52 = 52, v51 = 51, got_full = 0, got_rest = 0;
  Pending full(&b_, b_.Recv(tag(5, 1), PLASMA_TP_TAG_PREFIX(48), &got_full, 4));
  Pending s5(&a_, a_.Send(tag(5, 2), &v52, 4));
  Pending s6(&a_, a_.Send(tag(5, 1), &v51, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&full, &s5, &s6}));
  EXPECT_EQ(got_full, v51);
  Pending rest(&b_, b_.Recv(tag(5, 2), kExact, &got_rest, 4));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&rest}));
  EXPECT_EQ(got_rest, v52);
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
    recvs[i] = Pending(&b_, b_.Recv(5, kExact, received[i].data(), received[i].size()));
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
    Pending r1(&b_, b_.Recv(1, kExact, buffer.data(), buffer.size()));
    Pending s1(&a_, a_.Send(1, big.data(), big.size()));
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&r1, &s1}));
    EXPECT_EQ(r1.completion.status, PLASMA_TP_ERR_MESSAGE_TOO_LARGE);
    EXPECT_EQ(r1.completion.length, size);  // what the sender offered
    // The sender may learn of the refusal (rendezvous) or not (eager).
    EXPECT_TRUE(s1.completion.status == PLASMA_TP_OK ||
                s1.completion.status == PLASMA_TP_ERR_MESSAGE_TOO_LARGE);

    // The connection carries on.
    Pending r2(&b_, b_.Recv(2, kExact, buffer.data(), buffer.size()));
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
    return b_.api().probe(b_.ctx(), b_.conn, 3, kExact, &info) == PLASMA_TP_OK;
  }));
  std::vector<uint8_t> buffer(10);
  Pending r(&b_, b_.Recv(3, kExact, buffer.data(), buffer.size()));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&r, &s}));
  EXPECT_EQ(r.completion.status, PLASMA_TP_ERR_MESSAGE_TOO_LARGE);
  EXPECT_EQ(r.completion.length, big.size());
}

TEST_F(ConnectedPair, CanceledReceivesCompleteAndReleaseTheirBuffer) {
  // Unmatched receive.
  uint64_t slot = 0;
  Pending r1(&b_, b_.Recv(1, kExact, &slot, sizeof(slot)));
  ASSERT_EQ(b_.api().cancel(b_.ctx(), r1.req), PLASMA_TP_OK);
  ASSERT_TRUE(r1.Poll());
  EXPECT_EQ(r1.completion.status, PLASMA_TP_ERR_CANCELED);

  // A rendezvous receive canceled after it matched: its data must be
  // dropped, never written to the canceled buffer.
  std::vector<uint8_t> payload = Pattern(2 << 20, 12);
  std::vector<uint8_t> canceled_buffer(payload.size(), 0);
  Pending r2(&b_, b_.Recv(2, kExact, canceled_buffer.data(), canceled_buffer.size()));
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
    Pending r3(&b_, b_.Recv(3, kExact, &next, sizeof(next)));
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
  Pending r(&b_, b_.Recv(1, kExact, &value, sizeof(value)));
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

TEST_F(ConnectedPair, RegisteredBuffersAreCheckedAgainstTheirRegistration) {
  // Passing `mem` is always allowed; a buffer must then lie inside it.
  std::vector<uint8_t> region = Pattern(1 << 20, 50), into(1 << 20, 0);
  plasma_tp_mem_t send_mem = nullptr, recv_mem = nullptr;
  ASSERT_EQ(a_.api().mem_register(a_.ctx(), region.data(), region.size(), PLASMA_TP_ACCESS_LOCAL,
                                  &send_mem),
            PLASMA_TP_OK);
  ASSERT_EQ(b_.api().mem_register(b_.ctx(), into.data(), into.size(), PLASMA_TP_ACCESS_LOCAL,
                                  &recv_mem),
            PLASMA_TP_OK);
  plasma_tp_request_t req = nullptr;
  EXPECT_EQ(b_.api().recv(b_.ctx(), b_.conn, 1, kExact, into.data() + 1, into.size(), recv_mem,
                          &req),
            PLASMA_TP_ERR_OUT_OF_BOUNDS);
  plasma_tp_request_t rreq = nullptr, sreq = nullptr;
  ASSERT_EQ(b_.api().recv(b_.ctx(), b_.conn, 1, kExact, into.data(), into.size(), recv_mem, &rreq),
            PLASMA_TP_OK);
  ASSERT_EQ(a_.api().send(a_.ctx(), a_.conn, 1, region.data(), region.size(), send_mem, &sreq),
            PLASMA_TP_OK);
  Pending r(&b_, rreq), s(&a_, sreq);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&r, &s}));
  EXPECT_EQ(r.completion.status, PLASMA_TP_OK);
  EXPECT_TRUE(into == region);
  EXPECT_EQ(a_.api().mem_deregister(a_.ctx(), send_mem), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), recv_mem), PLASMA_TP_OK);
}

// Decision 2: 10,000 messages arrive with no receive posted; the receiver
// drains them into small scratch buffers (some fit, some are too large);
// then the connection carries large and small messages both ways.
TEST_F(ConnectedPair, UnmatchedMessagesAreDrainedAndTheConnectionStaysUsable) {
  DrainUnmatchedThenUse(a_, b_, 10000);
}

// Decision 4: posts are queued inside the plugin; max_inflight is only what
// it puts on the wire at once. More posts than that (and at least 20,000)
// before a single progress() call all complete.
TEST_F(ConnectedPair, PostsBeyondMaxInflightAreQueuedNotRefused) {
  const uint32_t max_inflight = std::max(a_.plugin->properties().max_inflight,
                                         b_.plugin->properties().max_inflight);
  int count = 20000;
  if (max_inflight != 0 && max_inflight < 150000) {
    count = std::max(count, static_cast<int>(max_inflight) + 1000);
  }
  PostManyBeforeProgress(a_, b_, count);
}

// Decision 9: poll_completions() reports every completed request exactly
// once (handle + completion), and never one that test() already released.
TEST_F(ConnectedPair, PollCompletionsReportsEachRequestExactlyOnce) {
  if (!a_.plugin->has_poll_completions()) GTEST_SKIP() << "the plugin has no poll_completions";
  const plasma_tp_v1_t& api = a_.api();
  constexpr int kCount = 3000;
  std::vector<uint8_t> region = Pattern(4 << 20, 60);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));

  struct Outstanding {
    int index;
    plasma_tp_completion_t completion;
    int reports;
  };
  std::map<plasma_tp_request_t, Outstanding> a_reqs, b_reqs;
  std::vector<std::vector<uint8_t>> sent(kCount), received(kCount), read_into(kCount / 30);
  for (int i = 0; i < kCount; ++i) {
    size_t size = i % 100 == 0 ? 100 * 1024 + i : (i * 131) % 2000;  // a few rendezvous
    sent[i] = Pattern(size, 7000 + i);
    received[i].assign(size, 0);
    b_reqs[b_.Recv(uint64_t(i), kExact, received[i].data(), size)] = {i, {}, 0};
    a_reqs[a_.Send(uint64_t(i), sent[i].data(), size)] = {i, {}, 0};
  }
  for (size_t i = 0; i < read_into.size(); ++i) {
    read_into[i].assign(64 * 1024, 0);
    uint64_t addr = reinterpret_cast<uintptr_t>(region.data()) + i * 40000;
    a_reqs[a_.Read(read_into[i].data(), read_into[i].size(), addr, rkey)] = {-1 - int(i), {}, 0};
  }
  ASSERT_EQ(a_reqs.size(), size_t(kCount) + read_into.size()) << "a request handle was reused";
  ASSERT_EQ(b_reqs.size(), size_t(kCount));

  size_t a_left = a_reqs.size(), b_left = b_reqs.size();
  auto collect = [&](Endpoint& e, std::map<plasma_tp_request_t, Outstanding>& reqs, size_t& left) {
    plasma_tp_request_completion_t batch[7];
    size_t n = 99;
    int rc = e.api().poll_completions(e.ctx(), batch, 7, &n);
    EXPECT_EQ(rc, PLASMA_TP_OK) << e.api().strerror(rc);
    if (rc != PLASMA_TP_OK) return;
    EXPECT_LE(n, 7u);
    for (size_t k = 0; k < n && k < 7; ++k) {
      auto found = reqs.find(batch[k].request);
      ASSERT_NE(found, reqs.end()) << "poll_completions reported a handle never posted";
      ASSERT_EQ(found->second.reports, 0) << "request " << found->second.index << " reported twice";
      found->second.reports = 1;
      found->second.completion = batch[k].completion;
      e.Completed(batch[k].request);
      --left;
    }
  };
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    collect(a_, a_reqs, a_left);
    collect(b_, b_reqs, b_left);
    return a_left == 0 && b_left == 0;
  }));
  for (auto& [req, o] : b_reqs) {
    ASSERT_EQ(o.completion.status, PLASMA_TP_OK) << o.index;
    ASSERT_EQ(o.completion.op, uint32_t{PLASMA_TP_OP_RECV});
    ASSERT_EQ(o.completion.tag, uint64_t(o.index));
    ASSERT_EQ(o.completion.length, sent[o.index].size());
    ASSERT_EQ(received[o.index], sent[o.index]) << o.index;
  }
  for (auto& [req, o] : a_reqs) {
    ASSERT_EQ(o.completion.status, PLASMA_TP_OK) << o.index;
    if (o.index >= 0) {
      ASSERT_EQ(o.completion.op, uint32_t{PLASMA_TP_OP_SEND});
      ASSERT_EQ(o.completion.length, sent[o.index].size());
    } else {
      size_t i = size_t(-1 - o.index);
      ASSERT_EQ(o.completion.op, uint32_t{PLASMA_TP_OP_READ});
      ASSERT_EQ(std::memcmp(read_into[i].data(), region.data() + i * 40000, 64 * 1024), 0);
    }
  }
  // Reported means released: nothing more to report, the handles are dead.
  plasma_tp_request_completion_t extra[4];
  size_t n = 99;
  ASSERT_EQ(api.poll_completions(a_.ctx(), extra, 4, &n), PLASMA_TP_OK);
  EXPECT_EQ(n, 0u);
  ASSERT_EQ(api.poll_completions(a_.ctx(), nullptr, 0, &n), PLASMA_TP_OK);
  EXPECT_EQ(n, 0u);
  plasma_tp_completion_t c{};
  EXPECT_EQ(api.test(a_.ctx(), a_reqs.begin()->first, &c), PLASMA_TP_ERR_INVALID_ARGUMENT);

  // A request released by test() is not reported again by poll_completions.
  uint32_t v1 = 1, v2 = 2, g1 = 0, g2 = 0;
  Pending r1(&b_, b_.Recv(1, kExact, &g1, 4)), r2(&b_, b_.Recv(2, kExact, &g2, 4));
  plasma_tp_request_t first = a_.Send(1, &v1, 4);
  Pending by_test(&a_, first);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&by_test, &r1}));
  plasma_tp_request_t second = a_.Send(2, &v2, 4);
  bool second_seen = false;
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    size_t got = 0;
    EXPECT_EQ(api.poll_completions(a_.ctx(), extra, 4, &got), PLASMA_TP_OK);
    for (size_t k = 0; k < got && k < 4; ++k) {
      EXPECT_EQ(extra[k].request, second) << "a request released by test() was reported";
      if (extra[k].request == second) second_seen = true;
    }
    return second_seen && r2.Poll();
  }));
  EXPECT_EQ(g2, v2);
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), mem), PLASMA_TP_OK);
}

// Decision 8: arm() == OK means it is safe to sleep: everything still
// pending wakes the wait fd. Here a's sends cannot finish without b (more
// than the socket buffers hold, and a rendezvous send that waits for the
// receiver's go-ahead, like a verbs send waiting for credits); a sleeps
// whenever arm() lets it and must always be woken.
TEST_F(ConnectedPair, ArmOkMeansEverythingPendingWakesTheFd) {
  int fd = -1;
  if (a_.api().wait_fd(a_.ctx(), &fd) != PLASMA_TP_OK) GTEST_SKIP() << "no wait fd";
  constexpr int kEager = 256;
  const size_t eager_size =
      std::min<uint64_t>(32 * 1024, std::max<uint64_t>(1, a_.plugin->properties().eager_threshold));
  std::vector<uint8_t> big = Pattern(8 << 20, 70), big_into(big.size());
  std::vector<std::vector<uint8_t>> small(kEager), small_into(kEager);
  std::vector<Pending> sends, recvs;
  sends.reserve(kEager + 1);
  recvs.reserve(kEager + 1);
  sends.emplace_back(&a_, a_.Send(1, big.data(), big.size()));
  for (int i = 0; i < kEager; ++i) {
    small[i] = Pattern(eager_size, 71 + i);
    small_into[i].assign(eager_size, 0);
    sends.emplace_back(&a_, a_.Send(2 + i, small[i].data(), eager_size));
  }
  // a alone, until it has nothing to do but wait for b: arm() must say OK
  // (work that only the peer can unblock is not "work right now").
  ASSERT_TRUE(ProgressUntil({&a_}, [&] { return a_.api().arm(a_.ctx()) == PLASMA_TP_OK; },
                            std::chrono::seconds(30)))
      << "arm() never allowed sleeping while waiting for the peer";

  recvs.emplace_back(&b_, b_.Recv(1, kExact, big_into.data(), big_into.size()));
  for (int i = 0; i < kEager; ++i) {
    recvs.emplace_back(&b_, b_.Recv(2 + i, kExact, small_into[i].data(), eager_size));
  }
  auto all_done = [](std::vector<Pending>& list) {
    bool done = true;
    for (Pending& p : list) done = p.Poll() && done;
    return done;
  };
  const auto deadline = Clock::now() + kDefaultTimeout;
  int sleeps = 0;
  while (!(all_done(sends) && all_done(recvs))) {
    ASSERT_LT(Clock::now(), deadline);
    ASSERT_GE(b_.Progress(), 0);
    if (!all_done(sends) && a_.api().arm(a_.ctx()) == PLASMA_TP_OK) {
      pollfd pfd{fd, POLLIN, 0};
      ASSERT_EQ(poll(&pfd, 1, 30000), 1)
          << "arm() said OK with sends pending, and the wait fd never woke";
      ++sleeps;
    }
    ASSERT_GE(a_.Progress(), 0);
  }
  for (Pending& p : sends) EXPECT_EQ(p.completion.status, PLASMA_TP_OK);
  for (Pending& p : recvs) EXPECT_EQ(p.completion.status, PLASMA_TP_OK);
  EXPECT_TRUE(big_into == big);
  for (int i = 0; i < kEager; ++i) EXPECT_EQ(small_into[i], small[i]) << i;
  // Over shared memory the peer's progress alone can move everything, so
  // that every arm() finds work: then the wake-up was never put to the test.
  if (sleeps == 0) GTEST_SKIP() << "every arm() found work; the fd was never slept on";
}

// ---- one-sided READ ----------------------------------------------------------------

class OneSidedRead : public ConnectedPair {
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

  // A READ by a. On an emulating plugin the post must succeed; a native one
  // may refuse a bad READ at once (a local bounds check) or fail its
  // connection, so then a failed post is a completed Pending with its status.
  Pending Read(void* local, size_t length, uint64_t remote_addr, plasma_tp_rkey_t rkey) {
    plasma_tp_request_t req = nullptr;
    int rc = a_.TryRead(local, length, remote_addr, rkey, &req);
    if (!a_.NativeRead()) {
      EXPECT_EQ(rc, PLASMA_TP_OK) << a_.api().strerror(rc);
    }
    return Pending::FromPost(&a_, rc, req);
  }

  // A READ that must be refused (decision 10). Emulated: it completes with
  // exactly `expected`, no byte of `dest` changes, the connection carries on.
  // Native: it fails with BAD_RKEY / OUT_OF_BOUNDS, or the connection fails
  // (a remote access error); never OK.
  void ExpectRefused(const Pending& read, int expected, const std::vector<uint8_t>& dest_before,
                     const uint8_t* dest) {
    const int status = read.completion.status;
    if (!a_.NativeRead()) {
      EXPECT_EQ(status, expected) << a_.api().strerror(status);
      EXPECT_EQ(std::memcmp(dest, dest_before.data(), dest_before.size()), 0)
          << "a refused READ wrote bytes";
      return;
    }
    EXPECT_NE(status, PLASMA_TP_OK) << "a READ that must fail returned data";
    EXPECT_TRUE(status == PLASMA_TP_ERR_BAD_RKEY || status == PLASMA_TP_ERR_OUT_OF_BOUNDS ||
                a_.api().conn_status(a_.ctx(), a_.conn) < 0)
        << "native READ failed with " << a_.api().strerror(status)
        << " but the connection is still up";
  }

  static constexpr size_t kRegionSize = 8 << 20;
  std::vector<uint8_t> region_;
  plasma_tp_mem_t mem_ = nullptr;
  std::vector<uint8_t> packed_;
  plasma_tp_rkey_t rkey_ = nullptr;
};

TEST_F(OneSidedRead, ReadsTheRequestedRange) {
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

TEST_F(OneSidedRead, BadKeyIsAnErrorCompletion) {
  // A registration without REMOTE_READ has no rkey to give (holder side only).
  uint8_t other[4096];
  plasma_tp_mem_t local_only = nullptr;
  ASSERT_EQ(b_.api().mem_register(b_.ctx(), other, sizeof(other), PLASMA_TP_ACCESS_LOCAL,
                                  &local_only),
            PLASMA_TP_OK);
  const void* packed = nullptr;
  size_t packed_len = 0;
  EXPECT_NE(b_.api().mem_rkey(b_.ctx(), local_only, &packed, &packed_len), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), local_only), PLASMA_TP_OK);
  // Garbage bytes never unpack into something usable.
  plasma_tp_rkey_t forged_rkey = nullptr;
  const uint8_t garbage[3] = {1, 2, 3};
  EXPECT_EQ(a_.api().rkey_unpack(a_.ctx(), a_.conn, garbage, sizeof(garbage), &forged_rkey),
            PLASMA_TP_ERR_BAD_RKEY);

  // A key that was valid once: the registration is gone.
  plasma_tp_mem_t other_mem = nullptr;
  plasma_tp_rkey_t stale = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, other, sizeof(other), &other_mem, &stale));
  ASSERT_EQ(b_.api().mem_deregister(b_.ctx(), other_mem), PLASMA_TP_OK);
  std::vector<uint8_t> local(16, 0xA5);
  const std::vector<uint8_t> untouched = local;
  Pending read = Read(local.data(), local.size(), reinterpret_cast<uintptr_t>(other), stale);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
  ExpectRefused(read, PLASMA_TP_ERR_BAD_RKEY, untouched, local.data());
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), stale), PLASMA_TP_OK);

  // A forged key: flip bits in the key part of a valid packed rkey. The
  // plugin may refuse to unpack it, or the holder refuses the read.
  std::vector<uint8_t> forged = packed_;
  for (size_t i = forged.size() / 2; i < forged.size(); ++i) forged[i] ^= 0x5A;
  int rc = a_.api().rkey_unpack(a_.ctx(), a_.conn, forged.data(), forged.size(), &forged_rkey);
  if (rc == PLASMA_TP_OK) {
    Pending forged_read = Read(local.data(), local.size(), RemoteAddress(0), forged_rkey);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&forged_read}));
    ExpectRefused(forged_read, PLASMA_TP_ERR_BAD_RKEY, untouched, local.data());
    a_.api().rkey_release(a_.ctx(), forged_rkey);
  } else {
    EXPECT_EQ(rc, PLASMA_TP_ERR_BAD_RKEY);
  }

  // The connection still works (emulated READ: only the request failed).
  if (a_.NativeRead()) return;
  Pending good = Read(local.data(), local.size(), RemoteAddress(64), rkey_);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&good}));
  EXPECT_EQ(good.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(std::memcmp(local.data(), region_.data() + 64, local.size()), 0);
}

TEST_F(OneSidedRead, OutOfBoundsIsAnErrorCompletion) {
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
    std::vector<uint8_t> dest(c.length, 0x3C);
    const std::vector<uint8_t> untouched = dest;
    Pending read = Read(dest.data(), c.length, c.addr, rkey_);
    ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
    ExpectRefused(read, PLASMA_TP_ERR_OUT_OF_BOUNDS, untouched, dest.data());
  }
  if (a_.NativeRead()) return;
  std::vector<uint8_t> local(4096);
  Pending good = Read(local.data(), local.size(), RemoteAddress(kRegionSize - 4096), rkey_);
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&good}));
  EXPECT_EQ(good.completion.status, PLASMA_TP_OK);
}

TEST_F(OneSidedRead, DeregisterWaitsForReadsBeingServed) {
  // 64 MiB cannot fit in the socket buffers while the reader is not
  // progressing, so an emulated response is still being written out of the
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
  if (a_.NativeRead()) {
    // The device may have finished, or the READ fails once the memory is
    // gone; never a crash, never OK with other bytes.
    ASSERT_TRUE(rc == PLASMA_TP_OK || rc == PLASMA_TP_IN_PROGRESS) << b_.api().strerror(rc);
    ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
      if (rc == PLASMA_TP_IN_PROGRESS) rc = b_.api().mem_deregister(b_.ctx(), big_mem);
      return read.Poll() && rc == PLASMA_TP_OK;
    }));
    if (read.completion.status == PLASMA_TP_OK) {
      EXPECT_TRUE(local == big);
    }
  } else if (rc == PLASMA_TP_IN_PROGRESS) {
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

// Decision 6: read() takes any length (the plugin splits what its device
// cannot move at once) and completes once.
TEST_F(ConnectedPair, QuarterGibReadCompletesOnceWithEveryByte) {
  constexpr size_t kSize = 256 << 20;
  constexpr size_t kOffset = 4095;  // neither end page aligned
  std::vector<uint8_t> region = Pattern(kSize + 2 * kOffset, 80);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  std::vector<uint8_t> local(kSize + 64, 0xCD);
  Pending read(&a_, a_.Read(local.data(), kSize,
                            reinterpret_cast<uintptr_t>(region.data()) + kOffset, rkey));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&read}));
  ASSERT_EQ(read.completion.status, PLASMA_TP_OK) << a_.api().strerror(read.completion.status);
  EXPECT_EQ(read.completion.op, uint32_t{PLASMA_TP_OP_READ});
  EXPECT_EQ(read.completion.length, kSize);
  EXPECT_EQ(std::memcmp(local.data(), region.data() + kOffset, kSize), 0);
  EXPECT_TRUE(std::all_of(local.begin() + kSize, local.end(), [](uint8_t v) { return v == 0xCD; }));
  plasma_tp_completion_t again{};
  EXPECT_EQ(a_.api().test(a_.ctx(), read.req, &again), PLASMA_TP_ERR_INVALID_ARGUMENT)
      << "the READ completed more than once";
  if (a_.plugin->has_poll_completions()) {
    plasma_tp_request_completion_t extra[2];
    size_t n = 99;
    ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] { return a_.Progress() == 0; }));
    ASSERT_EQ(a_.api().poll_completions(a_.ctx(), extra, 2, &n), PLASMA_TP_OK);
    EXPECT_EQ(n, 0u) << "a piece of the READ was reported as a completion of its own";
  }
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().mem_deregister(b_.ctx(), mem), PLASMA_TP_OK);
}

// Decision 7: once the holder's close_conn() returns, the peer can no longer
// READ its memory through that connection. The holder then changes every
// byte of the region; a READ that still completes OK must carry only bytes
// from before the close, and reads posted afterwards fail.
TEST_F(ConnectedPair, AfterTheHolderClosesNoReadSeesItsMemory) {
  constexpr size_t kPiece = 256 << 10;
  constexpr int kReads = 64;
  std::vector<uint8_t> region = Pattern(kPiece * kReads, 90);
  const std::vector<uint8_t> before = region;
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  const uint64_t base = reinterpret_cast<uintptr_t>(region.data());
  std::vector<std::vector<uint8_t>> dest(kReads + 1, std::vector<uint8_t>(kPiece, 0));
  std::vector<Pending> reads;
  reads.reserve(kReads + 1);
  for (int i = 0; i < kReads; ++i) {
    reads.emplace_back(&a_, a_.Read(dest[i].data(), kPiece, base + i * kPiece, rkey));
  }
  // Some are served, the rest are in flight when the holder closes.
  for (int i = 0; i < 3; ++i) {
    a_.Progress();
    b_.Progress();
  }
  ASSERT_EQ(b_.api().close_conn(b_.ctx(), b_.conn), PLASMA_TP_OK);
  b_.conn = nullptr;
  for (uint8_t& byte : region) byte = static_cast<uint8_t>(~byte);  // every byte differs now

  // The reader learns that the connection is gone; a READ posted after
  // that fails at once or completes with an error.
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return a_.api().conn_status(a_.ctx(), a_.conn) < 0;
  })) << "the holder's close never reached the reader";
  plasma_tp_request_t late_req = nullptr;
  int rc = a_.TryRead(dest[kReads].data(), kPiece, base, rkey, &late_req);
  reads.push_back(Pending::FromPost(&a_, rc, late_req));
  std::vector<Pending*> all;
  for (Pending& p : reads) all.push_back(&p);
  ASSERT_TRUE(WaitAll({&a_, &b_}, all));
  int ok = 0;
  for (int i = 0; i < kReads; ++i) {
    if (reads[i].completion.status != PLASMA_TP_OK) continue;
    ++ok;
    EXPECT_EQ(std::memcmp(dest[i].data(), before.data() + i * kPiece, kPiece), 0)
        << "READ " << i << " completed OK with bytes written after close_conn()";
  }
  EXPECT_NE(reads[kReads].completion.status, PLASMA_TP_OK) << "a READ after the close succeeded";
  RecordProperty("reads_ok_before_close", ok);
  // Nothing of the closed connection holds the registration any more.
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().mem_deregister(b_.ctx(), mem) == PLASMA_TP_OK;
  }));
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);
}

// Decision 7, reader side: closing a connection with READs in flight
// completes them (CANCELED, or OK if they had landed), and once reported the
// plugin never writes their buffers again, while the holder keeps running.
TEST_F(ConnectedPair, ClosingWithReadsInFlightReleasesTheirBuffers) {
  constexpr size_t kPiece = 256 << 10;
  constexpr int kReads = 64;
  std::vector<uint8_t> region = Pattern(kPiece * kReads, 91);
  plasma_tp_mem_t mem = nullptr;
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_NO_FATAL_FAILURE(ShareForRead(b_, a_, region.data(), region.size(), &mem, &rkey));
  const uint64_t base = reinterpret_cast<uintptr_t>(region.data());
  std::vector<std::vector<uint8_t>> dest(kReads, std::vector<uint8_t>(kPiece, 0));
  std::vector<Pending> reads;
  reads.reserve(kReads);
  for (int i = 0; i < kReads; ++i) {
    reads.emplace_back(&a_, a_.Read(dest[i].data(), kPiece, base + i * kPiece, rkey));
  }
  for (int i = 0; i < 3; ++i) {
    a_.Progress();
    b_.Progress();
  }
  EXPECT_EQ(a_.api().rkey_release(a_.ctx(), rkey), PLASMA_TP_OK);  // rkeys first
  ASSERT_EQ(a_.api().close_conn(a_.ctx(), a_.conn), PLASMA_TP_OK);
  a_.conn = nullptr;
  std::vector<Pending*> all;
  for (Pending& p : reads) all.push_back(&p);
  ASSERT_TRUE(WaitAll({&a_, &b_}, all));
  for (int i = 0; i < kReads; ++i) {
    const int status = reads[i].completion.status;
    ASSERT_TRUE(status == PLASMA_TP_OK || status == PLASMA_TP_ERR_CANCELED)
        << "READ " << i << ": " << a_.api().strerror(status);
    if (status == PLASMA_TP_OK) {
      EXPECT_EQ(std::memcmp(dest[i].data(), region.data() + i * kPiece, kPiece), 0) << i;
    }
    std::fill(dest[i].begin(), dest[i].end(), 0x5A);
  }
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().conn_status(b_.ctx(), b_.conn) < 0;
  }));
  for (int i = 0; i < 200; ++i) {
    a_.Progress();
    b_.Progress();
  }
  for (int i = 0; i < kReads; ++i) {
    ASSERT_TRUE(std::all_of(dest[i].begin(), dest[i].end(), [](uint8_t v) { return v == 0x5A; }))
        << "the buffer of READ " << i << " was written after its completion";
  }
  ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
    return b_.api().mem_deregister(b_.ctx(), mem) == PLASMA_TP_OK;
  }));
}

// ---- connections -------------------------------------------------------------------

TEST(SocketConnectTest, ClosedPortIsRefused) {
  auto plugin = LoadPluginUnderTest();
  ASSERT_TRUE(plugin);
  const plasma_tp_v1_t& api = plugin->api();
  plasma_tp_context_t ctx = plugin->context();
  // Take a free port, then close it again.
  plasma_tp_listener_t listener = nullptr;
  ASSERT_EQ(api.listen(ctx, TestListenHint().c_str(), &listener), PLASMA_TP_OK);
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
  Pending recv(&b_, b_.Recv(77, kExact, &got, sizeof(got), accepted));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&send, &recv}));
  EXPECT_EQ(got, value);
  EXPECT_EQ(a_.api().close_conn(a_.ctx(), early), PLASMA_TP_OK);
  EXPECT_EQ(b_.api().close_conn(b_.ctx(), accepted), PLASMA_TP_OK);
}

TEST_F(ConnectedPair, WaitFdWakesWhenDataArrives) {
  int fd = -1;
  ASSERT_EQ(b_.api().wait_fd(b_.ctx(), &fd), PLASMA_TP_OK);
  ASSERT_GE(fd, 0);
  uint32_t value = 9, got = 0;
  Pending recv(&b_, b_.Recv(1, kExact, &got, sizeof(got)));
  // Drain b until it is idle and armed; only then does the message come.
  ASSERT_TRUE(ProgressUntil({&b_}, [&] { return b_.api().arm(b_.ctx()) == PLASMA_TP_OK; }));
  Pending send(&a_, a_.Send(1, &value, sizeof(value)));
  ASSERT_TRUE(WaitAll({&a_}, {&send}));
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
  Pending recv(&b_, b_.Recv(1, kExact, received.data(), received.size()));
  Pending send(&a_, a_.Send(1, sent.data(), sent.size()));
  Pending read(&a_, a_.Read(read_into.data(), read_into.size(),
                            reinterpret_cast<uintptr_t>(region.data()), rkey));
  ASSERT_TRUE(WaitAll({&a_, &b_}, {&send, &recv, &read}));
  ASSERT_EQ(recv.completion.status, PLASMA_TP_OK);
  ASSERT_EQ(read.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(received, sent);
  EXPECT_EQ(read_into, region);

  for (Endpoint* side : {&a_, &b_}) {
    int fd = -1;
    if (side->api().wait_fd(side->ctx(), &fd) != PLASMA_TP_OK) GTEST_SKIP() << "no wait fd";
    // Sleep as a host does for 300 ms: a wake-up now and then (a plugin's
    // safety tick) is allowed; a descriptor that stays readable is not.
    int wakeups = 0;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < until && wakeups <= 10) {
      ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
        return side->api().arm(side->ctx()) == PLASMA_TP_OK;
      }));
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      pollfd pfd{fd, POLLIN, 0};
      if (poll(&pfd, 1, int(std::max<long>(0, left.count()))) == 1) ++wakeups;
    }
    EXPECT_LE(wakeups, 10) << "the wait fd stays readable with nothing to do";
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

  Pending b_recv(&b_, b_.Recv(1, kExact, sink.data(), sink.size()));
  Pending a_send(&a_, a_.Send(1, payload.data(), payload.size()));
  uint32_t never = 0;
  Pending a_recv(&a_, a_.Recv(2, kExact, &never, sizeof(never)));
  std::vector<uint8_t> read_into(region.size());
  Pending a_read(&a_, a_.Read(read_into.data(), read_into.size(),
                              reinterpret_cast<uintptr_t>(region.data()), rkey));
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
  if (a_read.completion.status == PLASMA_TP_OK) {
    // A device (or UCX's cma) moves READ data without the holder's
    // progress() calls: this one may have landed before the close. Then
    // every byte must be right.
    EXPECT_TRUE(read_into == region) << "a READ completed OK with wrong bytes";
  } else {
    EXPECT_EQ(a_read.completion.status, PLASMA_TP_ERR_CONNECTION_RESET);
  }
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
  Pending recv(&b_, b_.Recv(4, kExact, &got, sizeof(got)));
  ASSERT_TRUE(WaitAll({&b_}, {&recv}));
  EXPECT_EQ(recv.completion.status, PLASMA_TP_OK);
  EXPECT_EQ(recv.completion.length, sizeof(value));
  EXPECT_EQ(got, value);
}

// The peer half of KilledPeerFailsOutstandingRequests, in a process of its
// own: the test re-executes this binary with only this test selected and
// PLASMA_TEST_PEER_ADDRESS set. (A fresh process, not just a fork: a
// plugin's library may run threads of its own, as UCX's async thread
// does, which a forked child would not have.) No gtest assertions; a
// failure just exits non-zero.
TEST(SocketPeerDeathTest, PeerRole) {
  const char* address = std::getenv("PLASMA_TEST_PEER_ADDRESS");
  const char* go_fd = std::getenv("PLASMA_TEST_PEER_GO_FD");
  if (address == nullptr || go_fd == nullptr) GTEST_SKIP() << "runs only as the peer process";
  alarm(60);  // never outlive a stuck test
  const int go = std::atoi(go_fd);
  auto loaded = Plugin::Load(TransportUnderTest(), QuietOptions());
  if (!loaded.ok()) _exit(2);
  Endpoint peer;
  peer.plugin = std::move(loaded).value();
  if (peer.api().connect(peer.ctx(), address, std::strlen(address), &peer.conn) != 0) _exit(3);
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
  // Until the hello has gone out (an emulated fabric may take seconds to
  // wire a connection up): nothing moves it once this side stops progressing.
  plasma_tp_completion_t c;
  while (peer.api().test(peer.ctx(), req, &c) != PLASMA_TP_OK) peer.Progress();  // alarm bounds it
  char byte = 0;
  if (read(go, &byte, 1) != 1) _exit(7);  // no progress() while waiting
  raise(SIGKILL);  // die with everything open, mid-conversation
  _exit(6);
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
  ASSERT_EQ(api.listen(parent.ctx(), TestListenHint().c_str(), &listener), PLASMA_TP_OK);
  const void* blob = nullptr;
  size_t blob_len = 0;
  ASSERT_EQ(api.listener_address(parent.ctx(), listener, &blob, &blob_len), PLASMA_TP_OK);
  std::string address(static_cast<const char*>(blob), blob_len);

  // The peer dies only once this side has posted its requests (told
  // through this pipe, not the transport, so it never serves them first).
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  // The child's environment is made before fork(): between fork and exec a
  // child of a threaded process (UCX runs an async thread) may only make
  // async-signal-safe calls; a setenv() there can deadlock on malloc's lock.
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  environment.push_back("PLASMA_TEST_PEER_ADDRESS=" + address);
  environment.push_back("PLASMA_TEST_PEER_GO_FD=" + std::to_string(go[0]));
  std::vector<char*> envp;
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[1]);
    int quiet = open("/dev/null", O_WRONLY);  // the peer's own gtest report
    if (quiet >= 0) dup2(quiet, STDOUT_FILENO);
    execle("/proc/self/exe", "transport_tests", "--gtest_filter=SocketPeerDeathTest.PeerRole",
           static_cast<char*>(nullptr), envp.data());
    _exit(8);
  }
  close(go[0]);

  // A peer that died before connecting says how (its exit status).
  auto peer_state = [child] {
    int status = 0;
    if (waitpid(child, &status, WNOHANG) != child) return std::string("the peer is still running");
    return WIFEXITED(status) ? "the peer exited with " + std::to_string(WEXITSTATUS(status))
                             : "the peer died of signal " + std::to_string(WTERMSIG(status));
  };
  ASSERT_TRUE(ProgressUntil({&parent}, [&] {
    return parent.conn != nullptr ||
           api.accept(parent.ctx(), listener, &parent.conn) == PLASMA_TP_OK;
  }, std::chrono::seconds(60))) << peer_state();
  std::vector<uint8_t> hello(8 + parent.plugin->properties().max_rkey_size);
  Pending got_hello(&parent, parent.Recv(1, kExact, hello.data(), hello.size()));
  ASSERT_TRUE(WaitAll({&parent}, {&got_hello}, std::chrono::seconds(60))) << peer_state();
  ASSERT_EQ(got_hello.completion.status, PLASMA_TP_OK);
  uint64_t remote_addr = 0;
  std::memcpy(&remote_addr, hello.data(), 8);
  plasma_tp_rkey_t rkey = nullptr;
  ASSERT_EQ(api.rkey_unpack(parent.ctx(), parent.conn, hello.data() + 8,
                            got_hello.completion.length - 8, &rkey),
            PLASMA_TP_OK);

  uint32_t never = 0;
  Pending recv(&parent, parent.Recv(2, kExact, &never, sizeof(never)));
  std::vector<uint8_t> big = Pattern(64 << 20, 5);
  Pending send(&parent, parent.Send(3, big.data(), big.size()));  // never accepted
  std::vector<uint8_t> read_into(32 << 20);
  Pending read(&parent, parent.Read(read_into.data(), read_into.size(), remote_addr, rkey));
  ASSERT_EQ(write(go[1], "k", 1), 1);
  close(go[1]);

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
