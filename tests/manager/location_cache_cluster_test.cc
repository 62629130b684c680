// The manager's location cache in a running cluster: a fetch of an object
// whose holder is already known skips the Redis lookup; a cache entry that
// names a node without the object costs one failed attempt and a fresh
// lookup, never a wrong answer; --location-cache 0 always asks Redis.
// (The manager's debug log names each lookup's source.)
#include <string>
#include <thread>

#include "tests/manager/cluster_harness.h"

namespace plasma {
namespace {

// "looked up <id>: N holder(s) in T µs (<source>)" lines of node's manager log.
size_t Lookups(const Cluster& cluster, int node, const ObjectId& id, const std::string& source) {
  std::string log = cluster.Log(node, "manager");
  size_t n = 0;
  for (size_t at = log.find("looked up " + id.Hex()); at != std::string::npos;
       at = log.find("looked up " + id.Hex(), at + 1)) {
    size_t end = log.find('\n', at);
    if (log.substr(at, end - at).find("(" + source + ")") != std::string::npos) ++n;
  }
  return n;
}

// Node 1 puts `size` bytes; node 2 fetches them three times, deleting its
// copy after each. Returns the id.
ObjectId FetchThreeTimes(const Cluster& cluster, size_t size) {
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(size, size);
  Put(*cluster.Connect(1), id, data);
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(puller->Fetch({id}, 20000).ok());
    ExpectObject(*puller, id, data);
    EXPECT_TRUE(puller->Delete(id).ok());
  }
  return id;
}

// A holder's manager may still pin the object it just served (until the
// puller's FINISH arrives): the store then deletes it once released.
void DeleteOnceReleased(Client& holder, const ObjectId& id) {
  Status deleted = holder.Delete(id);
  EXPECT_TRUE(deleted.ok() || deleted.code() == StatusCode::kObjectInUse) << deleted.ToString();
}

TEST(LocationCacheCluster, RepeatedFetchGoesStraightToTheHolder) {
  Cluster cluster(2, false, int64_t(1) << 30, "PLASMA_LOG_LEVEL=debug");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  // The first fetch may or may not find the announcement already read;
  // every later one knows the holder, from the announcement or the lookup.
  ObjectId id = FetchThreeTimes(cluster, 300000);
  EXPECT_GE(Lookups(cluster, 2, id, "location cache"), 2u) << cluster.Log(2, "manager");
  EXPECT_LE(Lookups(cluster, 2, id, "Redis"), 1u) << cluster.Log(2, "manager");
}

// The cache is made wrong on purpose: a forged location event names node3,
// which never had the object, and a forged announcement wakes node 2's
// waiting fetch right after it (both on the one subscriber connection, in
// order). Node 2 tries node3, is told it has no such object, asks Redis,
// and gets the object once node 1 really puts it.
TEST(LocationCacheCluster, StaleEntryCostsOneFailedAttemptNeverAWrongAnswer) {
  Cluster cluster(3, false, int64_t(1) << 30, "PLASMA_LOG_LEVEL=debug");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(5000, 2);
  Status fetched;
  std::thread fetcher([&] { fetched = puller->Fetch({id}, 30000); });
  // Node 2 waits for the id's announcement once it is subscribed to it.
  bool waiting = test::WaitFor(
      [&] { return RedisCli(cluster, "PUBSUB NUMSUB plasma:sealed:" + id.Hex()) != "plasma:sealed:" + id.Hex() + "\n0\n"; },
      std::chrono::seconds(10));
  EXPECT_TRUE(waiting) << RedisCli(cluster, "PUBSUB NUMSUB plasma:sealed:" + id.Hex());
  RedisCli(cluster, "PUBLISH plasma:locations '+" + id.Hex() + " node3'");
  RedisCli(cluster, "PUBLISH plasma:sealed:" + id.Hex() + " node3");
  bool retried = test::WaitFor(
      [&] { return cluster.Log(2, "manager").find("from cached holders failed") != std::string::npos; },
      std::chrono::seconds(10));
  EXPECT_TRUE(retried) << cluster.Log(2, "manager");
  Put(*cluster.Connect(1), id, data);
  fetcher.join();
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  ExpectObject(*puller, id, data);
  EXPECT_GE(Lookups(cluster, 2, id, "location cache"), 1u);
  // One failed attempt: the entry went with it, so node3 was not tried again.
  EXPECT_EQ(Count(cluster.Log(2, "manager"), "from cached holders failed"), 1u)
      << cluster.Log(2, "manager");
  EXPECT_NE(cluster.Log(2, "manager").find("no longer has it"), std::string::npos)
      << cluster.Log(2, "manager");
}

// A holder that deletes its copy says so on plasma:locations: the other
// replica is pulled from, and a fetch once no node holds it waits, as
// without a cache, instead of trying the node that deleted it.
TEST(LocationCacheCluster, DeletedCopiesLeaveTheCache) {
  Cluster cluster(3, false, int64_t(1) << 30, "PLASMA_LOG_LEVEL=debug");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  auto first = cluster.Connect(1);
  auto second = cluster.Connect(3);
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(200000, 3);
  Put(*first, id, data);
  Put(*second, id, data);
  ASSERT_TRUE(puller->Fetch({id}, 20000).ok());
  ASSERT_TRUE(puller->Delete(id).ok());
  DeleteOnceReleased(*first, id);
  std::string members = "SMEMBERS plasma:object:" + id.Hex();
  ASSERT_TRUE(test::WaitFor([&] { return RedisCli(cluster, members) == "node3\n"; },
                            std::chrono::seconds(10)));
  ASSERT_TRUE(puller->Fetch({id}, 20000).ok());
  ExpectObject(*puller, id, data);
  ASSERT_TRUE(puller->Delete(id).ok());
  DeleteOnceReleased(*second, id);
  ASSERT_TRUE(test::WaitFor([&] { return RedisCli(cluster, members) == "\n"; },
                            std::chrono::seconds(10)));
  Status gone = puller->Fetch({id}, 300);
  EXPECT_EQ(gone.code(), StatusCode::kTimedOut) << gone.ToString();
  EXPECT_EQ(Count(cluster.Log(2, "manager"), "from cached holders failed"), 0u)
      << cluster.Log(2, "manager");
}

TEST(LocationCacheCluster, TurnedOffEveryLookupAsksRedis) {
  Cluster cluster(2, false, int64_t(1) << 30, "PLASMA_LOG_LEVEL=debug",
                  "--manager-arg --location-cache --manager-arg 0");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  ObjectId id = FetchThreeTimes(cluster, 3000);
  EXPECT_EQ(Lookups(cluster, 2, id, "location cache"), 0u) << cluster.Log(2, "manager");
  EXPECT_GE(Lookups(cluster, 2, id, "Redis"), 3u) << cluster.Log(2, "manager");
  EXPECT_EQ(RedisCli(cluster, "PUBSUB NUMSUB plasma:locations"), "plasma:locations\n0\n");
}

}  // namespace
}  // namespace plasma
