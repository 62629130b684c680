// Pushes in a running cluster (socket plugin: its READ is emulated, so an
// object whose sizes were announced is pushed by the holder right after its
// HEADER). Checked: which objects go by push, that they arrive whole (data
// and metadata, sizes either side of a chunk), that stale sizes and a holder
// without the object cost one failed attempt and never a stuck receive,
// and that --push-limit 0 keeps the rendezvous READ.
// (The manager's debug log names each pull's mode.)
#include <string>
#include <thread>

#include "tests/manager/cluster_harness.h"

namespace plasma {
namespace {

const std::string kDebug = "PLASMA_LOG_LEVEL=debug";

// The mode of node's successful pull of id ("inline", "rendezvous",
// "pushed"), from its debug log; "" if none.
std::string PullMode(const Cluster& cluster, int node, const ObjectId& id) {
  std::string log = cluster.Log(node, "manager");
  size_t at = log.find("pulled " + id.Hex() + " (");
  if (at == std::string::npos) return "";
  size_t comma = log.find(", ", at);
  size_t close = log.find(')', comma);
  return log.substr(comma + 2, close - comma - 2);
}

// Blocks until node's manager waits for the announcement of id.
bool WaitUntilWatched(const Cluster& cluster, const ObjectId& id) {
  std::string channel = "plasma:sealed:" + id.Hex();
  return test::WaitFor(
      [&] { return RedisCli(cluster, "PUBSUB NUMSUB " + channel) != channel + "\n0\n"; },
      std::chrono::seconds(10));
}

TEST(PushCluster, AnnouncedObjectsArePushedWhole) {
  Cluster cluster(2, false, int64_t(1) << 30, kDebug);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  struct Case {
    size_t size;
    std::string metadata;
    std::string mode;
  };
  // 128 KiB chunks: one byte past a chunk, several with a remainder, the
  // limit itself, and one byte past the limit (rendezvous).
  const std::vector<Case> cases = {{(128 << 10) + 1, "", "pushed"},
                                   {300000, "some metadata", "pushed"},
                                   {(1 << 20) + 7, "m", "pushed"},
                                   {4 << 20, "", "pushed"},
                                   {(4 << 20) + 1, "", "rendezvous"}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    ObjectId id = AnnouncedObject(cluster, *puller, c.size, int(30 + i), c.metadata);
    Status fetched = puller->Fetch({id}, 20000);
    ASSERT_TRUE(fetched.ok()) << fetched.ToString();
    ExpectObject(*puller, id, RandomBytes(c.size, int(30 + i)), c.metadata);
    EXPECT_EQ(PullMode(cluster, 2, id), c.mode) << c.size << " bytes:\n" << cluster.Log(2, "manager");
  }
}

// Many pushes from one holder at once, each into its own receives.
TEST(PushCluster, ManyPushesInFlightEachLandInTheirObject) {
  Cluster cluster(2, false, int64_t(1) << 30, kDebug);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  std::vector<ObjectId> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(AnnouncedObject(cluster, *puller, 200000 + 4099 * i, 50 + i));
  Status fetched = puller->Fetch(ids, 30000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  for (int i = 0; i < 12; ++i) {
    ExpectObject(*puller, ids[i], RandomBytes(200000 + 4099 * i, 50 + i));
    EXPECT_EQ(PullMode(cluster, 2, ids[i]), "pushed");
  }
}

// Node 3's copy has other sizes than the (forged) announcement node 2
// holds: node 3 answers kSizeMismatch, node 2 gives the cached entry up,
// asks Redis and reads the object by rendezvous. A sentinel fetch, woken by
// a forged announcement sent after the forged sizes, shows node 2 has read
// them (one subscriber connection, in order).
TEST(PushCluster, StaleSizesCostOneFailedAttempt) {
  Cluster cluster(3, false, int64_t(1) << 30, kDebug);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(300000, 60);
  Put(*cluster.Connect(3), id, data);
  ASSERT_TRUE(test::WaitFor(
      [&] { return RedisCli(cluster, "SMEMBERS plasma:object:" + id.Hex()) == "node3\n"; },
      std::chrono::seconds(10)));
  ObjectId sentinel = ObjectId::Random();
  auto sentinel_client = cluster.Connect(2);
  Status sentinel_fetched;
  std::thread sentinel_fetch([&] { sentinel_fetched = sentinel_client->Fetch({sentinel}, 3000); });
  EXPECT_TRUE(WaitUntilWatched(cluster, sentinel));
  RedisCli(cluster, "PUBLISH plasma:locations '+" + id.Hex() + " node3 200000 0'");
  RedisCli(cluster, "PUBLISH plasma:locations '+" + sentinel.Hex() + " node3'");
  RedisCli(cluster, "PUBLISH plasma:sealed:" + sentinel.Hex() + " node3");
  EXPECT_TRUE(test::WaitFor(
      [&] { return cluster.Log(2, "manager").find("looked up " + sentinel.Hex()) != std::string::npos; },
      std::chrono::seconds(10)));
  Status fetched = puller->Fetch({id}, 20000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  ExpectObject(*puller, id, data);
  sentinel_fetch.join();
  EXPECT_FALSE(sentinel_fetched.ok());
  std::string log = cluster.Log(2, "manager");
  EXPECT_NE(log.find("other sizes than announced"), std::string::npos) << log;
  EXPECT_EQ(Count(log, "pull of " + id.Hex() + " from cached holders failed"), 1u) << log;
  EXPECT_EQ(PullMode(cluster, 2, id), "rendezvous") << log;
  EXPECT_EQ(log.find("silent for"), std::string::npos) << log;
}

// A forged announcement, with sizes, names node 3, which does not hold the
// object: node 3 refuses the push and answers the receives it was asked to
// fill with empty chunks, so node 2 moves on at once (no stall timeout),
// then gets the object from node 1, and its connection to node 3 still
// serves a real push afterwards.
TEST(PushCluster, RefusedPushEndsEveryReceiveAtOnce) {
  Cluster cluster(3, false, int64_t(1) << 30, kDebug);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(700000, 61);
  Status fetched;
  std::thread fetcher([&] { fetched = puller->Fetch({id}, 30000); });
  EXPECT_TRUE(WaitUntilWatched(cluster, id));
  RedisCli(cluster, "PUBLISH plasma:locations '+" + id.Hex() + " node3 700000 0'");
  RedisCli(cluster, "PUBLISH plasma:sealed:" + id.Hex() + " node3");
  EXPECT_TRUE(test::WaitFor(
      [&] { return cluster.Log(2, "manager").find("from cached holders failed") != std::string::npos; },
      std::chrono::seconds(10)))
      << cluster.Log(2, "manager");
  Put(*cluster.Connect(1), id, data);
  fetcher.join();
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  ExpectObject(*puller, id, data);
  std::string log = cluster.Log(2, "manager");
  EXPECT_NE(log.find("no longer has it"), std::string::npos) << log;
  EXPECT_EQ(log.find("silent for"), std::string::npos) << log;
  EXPECT_EQ(log.find("closing connection to node node3"), std::string::npos) << log;

  ObjectId next = AnnouncedObject(cluster, *puller, 700000, 62, "", 2, 3);
  ASSERT_TRUE(puller->Fetch({next}, 20000).ok());
  ExpectObject(*puller, next, RandomBytes(700000, 62));
  EXPECT_EQ(PullMode(cluster, 2, next), "pushed") << cluster.Log(2, "manager");
}

TEST(PushCluster, PushLimitZeroKeepsTheRendezvousRead) {
  Cluster cluster(2, false, int64_t(1) << 30, kDebug, "--manager-arg --push-limit --manager-arg 0");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = AnnouncedObject(cluster, *puller, 300000, 64);
  ASSERT_TRUE(puller->Fetch({id}, 20000).ok());
  ExpectObject(*puller, id, RandomBytes(300000, 64));
  EXPECT_EQ(PullMode(cluster, 2, id), "rendezvous") << cluster.Log(2, "manager");
}

}  // namespace
}  // namespace plasma
