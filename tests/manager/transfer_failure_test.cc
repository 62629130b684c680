// The transfer engine's failure paths, end to end with real processes:
// holders that freeze (SIGSTOP) before or during a transfer, holders busy
// with their per-peer lending cap, peers that come back on a new address,
// and (through the fault-injecting plugin) refused posts, lost and failed
// messages. No test depends on timing luck: faults are injected at named
// steps, and every wait is bounded.
#include <gtest/gtest.h>

#include <fstream>
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
  // The holder announces in the order of its store's notifications: once a
  // probe put after id can be fetched, id is announced too.
  ObjectId probe = ObjectId::Random();
  Put(*cluster.Connect(1), probe, "probe");
  ASSERT_TRUE(puller->Fetch({probe}, 20000).ok());
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

// ---- faults injected by the test plugin (tests/transport/fault_plugin) ----

// A cluster whose managers talk through the fault plugin wrapping the
// socket plugin, with `rules`; each injection is a line in fault_log.
std::string FaultEnvironment(const std::string& rules, const std::string& fault_log) {
  return "PLASMA_TRANSPORT=fault PLASMA_FAULT='" + rules + "' PLASMA_FAULT_LOG=" + fault_log;
}

std::string TempPath(const std::string& name) {
  return "/tmp/plasma-" + name + "-" + std::to_string(getpid()) + ".log";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Refused posts (AGAIN) are retried in order, and messages overtaking each
// other across tags change nothing: every object arrives intact.
TEST(TransferFailureTest, RefusedAndReorderedPostsAreRetriedAndEverythingArrives) {
  std::string fault_log = TempPath("again");
  unlink(fault_log.c_str());
  Cluster cluster(2, false, int64_t(1) << 30,
                  FaultEnvironment("again:send,prob=0.3,seed=1;again:recv,prob=0.3,seed=2;"
                                   "again:read,prob=0.5,seed=3;reorder:send,prob=0.2,seed=4",
                                   fault_log));
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  std::vector<size_t> sizes = {1024, 1024, 1024, 1024, 1 << 20, 1 << 20, 8 << 20, 8 << 20};
  std::vector<ObjectId> ids;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ids.push_back(ObjectId::Random());
    Put(*holder, ids.back(), RandomBytes(sizes[i], 200 + i));
  }
  Status fetched = puller->Fetch(ids, 60000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString() << "\n" << cluster.Log(2, "manager");
  for (size_t i = 0; i < sizes.size(); ++i) ExpectObject(*puller, ids[i], RandomBytes(sizes[i], 200 + i));
  std::string injected = ReadFile(fault_log);
  EXPECT_NE(injected.find(" again send"), std::string::npos) << injected;
  EXPECT_NE(injected.find(" again read"), std::string::npos) << injected;
  unlink(fault_log.c_str());
}

// Reference count of id in the node's store (-1: not there).
int RefCount(Cluster& cluster, int node, const ObjectId& id) {
  auto objects = cluster.Connect(node)->List();
  if (!objects.ok()) return -1;
  for (const auto& info : *objects) {
    if (info.id == id) return info.ref_count;
  }
  return -1;
}

// Every FINISH is lost: the holder's loan runs out, it closes the
// connection and releases the object instead of pinning it for as long as
// the connection is cached.
TEST(TransferFailureTest, LostFinishEndsTheLoanWhenItsLeaseRunsOut) {
  std::string fault_log = TempPath("lost-finish");
  unlink(fault_log.c_str());
  Cluster cluster(2, false, int64_t(1) << 30, FaultEnvironment("drop:send,kind=11", fault_log),
                  kQuickStall);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, RandomBytes(4 << 20, 9));
  auto puller = cluster.Connect(2);
  ASSERT_TRUE(puller->Fetch({id}, 20000).ok());
  ExpectObject(*puller, id, RandomBytes(4 << 20, 9));
  EXPECT_NE(ReadFile(fault_log).find(" drop send"), std::string::npos) << ReadFile(fault_log);
  EXPECT_TRUE(test::WaitFor([&] { return RefCount(cluster, 1, id) == 0; }, std::chrono::seconds(20)))
      << "the holder still pins the object: ref count " << RefCount(cluster, 1, id);
  EXPECT_NE(cluster.Log(1, "manager").find("without a FINISH"), std::string::npos);
  unlink(fault_log.c_str());
}

// A FINISH that cannot be sent closes the connection (the holder would wait
// for nothing); the holder then releases the object, and the next fetch
// connects afresh.
TEST(TransferFailureTest, FailedFinishClosesTheConnectionAndReleasesTheObject) {
  std::string fault_log = TempPath("failed-finish");
  unlink(fault_log.c_str());
  Cluster cluster(2, false, int64_t(1) << 30,
                  FaultEnvironment("fail=IO:send,kind=11,count=1", fault_log));
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  ObjectId first = ObjectId::Random(), second = ObjectId::Random();
  Put(*holder, first, RandomBytes(4 << 20, 11));
  Put(*holder, second, RandomBytes(4 << 20, 12));
  ASSERT_TRUE(puller->Fetch({first}, 20000).ok());
  EXPECT_NE(ReadFile(fault_log).find(" fail send"), std::string::npos) << ReadFile(fault_log);
  EXPECT_TRUE(test::WaitFor([&] { return RefCount(cluster, 1, first) == 0; },
                            std::chrono::seconds(10)))
      << "the holder still pins the object";
  EXPECT_NE(cluster.Log(2, "manager").find("closing connection to node node1"), std::string::npos)
      << cluster.Log(2, "manager");
  Status again = puller->Fetch({second}, 20000);
  ASSERT_TRUE(again.ok()) << again.ToString();
  ExpectObject(*puller, second, RandomBytes(4 << 20, 12));
  unlink(fault_log.c_str());
}

}  // namespace
}  // namespace plasma
