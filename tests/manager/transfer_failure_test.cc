// The transfer engine's failure paths, end to end with real processes:
// holders that freeze (SIGSTOP) before or during a transfer, holders busy
// with their per-peer lending cap, peers that come back on a new address,
// and (through the fault-injecting plugin) refused posts, lost and failed
// messages. No test depends on timing luck: faults are injected at named
// steps, and every wait is bounded.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tests/manager/cluster_harness.h"

namespace plasma {
namespace {

// Short deadlines keep the tests quick: a silent holder is given up on after
// 2 s (short, yet far above a healthy holder's answer even under ASan).
const std::string kQuickStall = "--manager-arg --stall-timeout-ms --manager-arg 2000";
// FINISH belongs to rendezvous READs: the socket plugin's emulated READ
// would otherwise be replaced by a push for announced objects.
const std::string kNoPush = "--manager-arg --push-limit --manager-arg 0";

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
  ASSERT_TRUE(cluster.RestartManager(1, "127.0.0.1")) << cluster.Log(1, "manager");
  if (cluster.one_process()) holder = cluster.Connect(1);  // its store restarted too
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
                  kQuickStall + " " + kNoPush);
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
                  FaultEnvironment("fail=IO:send,kind=11,count=1", fault_log), kNoPush);
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

// A pushed chunk that never arrives: the puller gives the holder up after
// its stall timeout (closing the connection ends the chunk receives), asks
// Redis again and gets the object by rendezvous, without announced sizes.
TEST(TransferFailureTest, LostPushedChunkEndsInARendezvousRetry) {
  std::string fault_log = TempPath("lost-chunk");
  unlink(fault_log.c_str());
  Cluster cluster(2, false, int64_t(1) << 30,
                  FaultEnvironment("drop:send,kind=21,count=1", fault_log) + " PLASMA_LOG_LEVEL=debug",
                  kQuickStall);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = AnnouncedObject(cluster, *puller, 1 << 20, 21);
  Status fetched = puller->Fetch({id}, 20000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  ExpectObject(*puller, id, RandomBytes(1 << 20, 21));
  EXPECT_NE(ReadFile(fault_log).find(" drop send"), std::string::npos) << ReadFile(fault_log);
  std::string log = cluster.Log(2, "manager");
  EXPECT_NE(log.find("while waiting for the pushed object of " + id.Hex()), std::string::npos) << log;
  EXPECT_NE(log.find("pulled " + id.Hex() + " (1048576 bytes, rendezvous)"), std::string::npos) << log;
  unlink(fault_log.c_str());
}

// A chunk the holder cannot send closes its connection: the puller's
// receives end with it, and the retry brings the object.
TEST(TransferFailureTest, FailedPushSendClosesTheConnectionAndTheFetchRetries) {
  std::string fault_log = TempPath("failed-chunk");
  unlink(fault_log.c_str());
  Cluster cluster(2, false, int64_t(1) << 30,
                  FaultEnvironment("fail=IO:send,kind=21,count=1", fault_log) + " PLASMA_LOG_LEVEL=debug");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = AnnouncedObject(cluster, *puller, 600000, 22);
  Status fetched = puller->Fetch({id}, 20000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  ExpectObject(*puller, id, RandomBytes(600000, 22));
  EXPECT_NE(ReadFile(fault_log).find(" fail send"), std::string::npos) << ReadFile(fault_log);
  EXPECT_NE(cluster.Log(1, "manager").find("push a chunk"), std::string::npos)
      << cluster.Log(1, "manager");
  EXPECT_TRUE(test::WaitFor([&] { return RefCount(cluster, 1, id) == 0; }, std::chrono::seconds(10)))
      << "the holder still pins the object: ref count " << RefCount(cluster, 1, id);
  unlink(fault_log.c_str());
}

// A byte flipped on the way in is caught by --verify-digests, whether the
// object came by push (a DATA chunk) or by READ: the attempt fails, the
// wrong bytes are never sealed, and the retry brings the right ones.
TEST(TransferFailureTest, VerifiedDigestsCatchAFlippedByteInAPushOrARead) {
  struct Case {
    std::string rule, manager_args;
  } cases[] = {{"corrupt:recv,kind=21,count=1", ""}, {"corrupt:read,count=1", " " + kNoPush}};
  for (const Case& c : cases) {
    std::string fault_log = TempPath("flipped-byte");
    unlink(fault_log.c_str());
    Cluster cluster(2, false, int64_t(1) << 30,
                    FaultEnvironment(c.rule, fault_log) + " PLASMA_LOG_LEVEL=debug",
                    "--manager-arg --verify-digests" + c.manager_args);
    ASSERT_TRUE(cluster.up()) << cluster.output();
    auto puller = cluster.Connect(2);
    ObjectId id = AnnouncedObject(cluster, *puller, 600000, 23);
    Status fetched = puller->Fetch({id}, 20000);
    ASSERT_TRUE(fetched.ok()) << c.rule << ": " << fetched.ToString();
    ExpectObject(*puller, id, RandomBytes(600000, 23));
    EXPECT_NE(ReadFile(fault_log).find(" corrupt "), std::string::npos) << c.rule << ": " << ReadFile(fault_log);
    EXPECT_NE(cluster.Log(2, "manager").find("do not match the holder's digest"), std::string::npos)
        << c.rule << ":\n" << cluster.Log(2, "manager");
    unlink(fault_log.c_str());
  }
}

// Writes `rules` to path atomically (the plugin re-reads it at progress()).
void WriteRules(const std::string& path, const std::string& rules) {
  std::string staging = path + ".new";
  std::ofstream(staging) << rules << "\n";
  rename(staging.c_str(), path.c_str());
}

// A transport whose progress() fails is backed off from, not spun on, and
// used again once it works: counted by the injections (each failing call
// is one line of the fault log), not by the clock.
TEST(TransferFailureTest, BrokenTransportIsBackedOffFromAndUsedAgainWhenItRecovers) {
  std::string fault_log = TempPath("broken-progress");
  std::string rules = TempPath("broken-progress-rules");
  unlink(fault_log.c_str());
  WriteRules(rules, "");
  Cluster cluster(2, false, int64_t(1) << 30,
                  FaultEnvironment("", fault_log) + " PLASMA_FAULT_FILE=" + rules);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, RandomBytes(1 << 20, 5));
  WriteRules(rules, "error=IO:progress");
  // A fetch makes the managers progress, and so meet the broken context.
  auto puller = cluster.Connect(2);
  Status fetched;
  std::thread fetcher([&] { fetched = puller->Fetch({id}, 30000); });
  // Two seconds of a broken context: a manager that spun would fail tens of
  // thousands of progress() calls; backing off from 100 ms, about a handful.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::string log = ReadFile(fault_log);
  size_t failures = std::count(log.begin(), log.end(), '\n');
  EXPECT_GT(failures, 0u) << "the fault never fired";
  EXPECT_LT(failures, 200u) << "progress() was called " << failures << " times while failing";
  EXPECT_NE(cluster.Log(2, "manager").find("retrying with back-off"), std::string::npos);
  WriteRules(rules, "");
  fetcher.join();
  ASSERT_TRUE(fetched.ok()) << fetched.ToString() << "\n" << cluster.Log(2, "manager");
  ExpectObject(*puller, id, RandomBytes(1 << 20, 5));
  EXPECT_NE(cluster.Log(2, "manager").find("works again"), std::string::npos);
  unlink(fault_log.c_str());
  unlink(rules.c_str());
}

// A node with a small store, started by hand beside a cluster (same Redis).
struct SmallNode {
  std::string dir;
  pid_t store = -1, manager = -1;
  ~SmallNode() {
    for (pid_t pid : {manager, store}) {
      if (pid > 0) kill(pid, SIGKILL);
    }
  }
};

// A HEADER naming an object larger than the whole local store is refused
// with a clear error before anything is created (a peer's size could
// otherwise make the store evict everything it holds).
TEST(TransferFailureTest, ObjectLargerThanTheLocalStoreIsRefusedClearly) {
  Cluster cluster(1, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, RandomBytes(32 << 20, 8));
  SmallNode small;
  small.dir = cluster.dir() + "/small";
  mkdir(small.dir.c_str(), 0755);
  std::string store_bin = std::string(PLASMA_MANAGER_PATH);
  store_bin = store_bin.substr(0, store_bin.rfind('/')) + "/plasma-store-server";
  int code;
  std::string out = RunShell(store_bin + " -m " + std::to_string(16 << 20) + " -s " + small.dir +
                                 "/store.sock >" + small.dir + "/store.log 2>&1 & echo $!",
                             &code);
  ASSERT_EQ(code, 0) << out;
  small.store = std::stoi(out);
  ASSERT_TRUE(test::WaitFor([&] { return access((small.dir + "/store.sock").c_str(), F_OK) == 0; },
                            std::chrono::seconds(10)));
  out = RunShell(std::string(PLASMA_MANAGER_PATH) + " --store-socket " + small.dir +
                     "/store.sock --socket " + small.dir + "/manager.sock --redis " +
                     cluster.env("REDIS_ADDRESS") + " --node small --listen 127.0.0.1 >" +
                     small.dir + "/manager.log 2>&1 & echo $!",
                 &code);
  ASSERT_EQ(code, 0) << out;
  small.manager = std::stoi(out);
  ASSERT_TRUE(test::WaitFor([&] { return access((small.dir + "/manager.sock").c_str(), F_OK) == 0; },
                            std::chrono::seconds(10)));
  ConnectOptions options;
  options.manager_socket = small.dir + "/manager.sock";
  auto puller = Client::Connect(small.dir + "/store.sock", options);
  ASSERT_TRUE(puller.ok()) << puller.status().ToString();
  Status fetched = (*puller)->Fetch({id}, 20000);
  ASSERT_FALSE(fetched.ok());
  EXPECT_TRUE(fetched.IsOutOfMemory()) << fetched.ToString();
  EXPECT_NE(fetched.message().find("more than this node's store holds"), std::string::npos)
      << fetched.ToString();
  auto objects = (*puller)->List();
  ASSERT_TRUE(objects.ok());
  EXPECT_TRUE(objects->empty()) << "something was created for a refused object";
}

}  // namespace
}  // namespace plasma
