// End-to-end tests of the manager with real processes: a real redis-server
// and N nodes (plasma-store-server + plasma-manager), started by
// plasma-cluster on loopback or in network namespaces joined by veth pairs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "plasma/client/client.h"
#include "plasma/common/protocol.h"
#include "tests/common/test_util.h"
#include "tests/manager/cluster_harness.h"

namespace plasma {
namespace {

TEST(ClusterTest, ObjectsOfEverySizeMoveBetweenNodes) {
  Cluster cluster(3, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  ASSERT_TRUE(holder && puller);
  // Around the socket plugin's 128 KiB eager threshold too: inline just
  // below it (HEADER included), rendezvous at it.
  std::vector<size_t> sizes = {0,         1,       100,      4096,      65536, (128 << 10) - 256,
                               128 << 10, 1 << 20, 16 << 20, 256 << 20};
  std::vector<ObjectId> ids;
  std::vector<std::string> contents;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ids.push_back(ObjectId::Random());
    contents.push_back(RandomBytes(sizes[i], i + 1));
    Put(*holder, ids.back(), contents.back(), i % 2 ? "meta" + std::to_string(i) : "");
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    Status fetched = puller->Fetch({ids[i]}, 60000);
    ASSERT_TRUE(fetched.ok()) << "size " << sizes[i] << ": " << fetched.ToString();
    ExpectObject(*puller, ids[i], contents[i], i % 2 ? "meta" + std::to_string(i) : "");
  }
  // A fetch of something already local answers at once.
  EXPECT_TRUE(puller->Fetch(ids, 1000).ok());
}

TEST(ClusterTest, ConcurrentFetchesOfOneIdFromSeveralNodes) {
  Cluster cluster(4, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(32 << 20, 7);
  Put(*holder, id, data);
  std::vector<std::thread> threads;
  std::vector<Status> results(6);
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto client = cluster.Connect(2 + t % 3);
      results[t] = client ? client->Fetch({id}, 60000) : Status::IOError("no client");
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 6; ++t) EXPECT_TRUE(results[t].ok()) << t << ": " << results[t].ToString();
  for (int node = 2; node <= 4; ++node) ExpectObject(*cluster.Connect(node), id, data);
}

// Node 2 fetches an id that `writer_node` puts only later; the fetch waits
// for it and returns it. Returns node 2's manager log.
std::string FetchWhileItIsPutLater(int writer_node) {
  Cluster cluster(2, false);
  EXPECT_TRUE(cluster.up()) << cluster.output();
  if (!cluster.up()) return "";
  auto writer = cluster.Connect(writer_node);
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(100000, uint64_t(writer_node));
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    Put(*writer, id, data);
  });
  Status fetched = puller->Fetch({id}, 20000);
  late.join();
  EXPECT_TRUE(fetched.ok()) << fetched.ToString();
  if (fetched.ok()) ExpectObject(*puller, id, data);
  return cluster.Log(2, "manager");
}

TEST(ClusterTest, FetchWaitsForAnObjectCreatedLater) { FetchWhileItIsPutLater(1); }

// The manager answers fetches of local objects from the store's seal and
// delete notifications; a client that deletes an object and at once fetches
// it again must get it back for real, never an OK for an object now gone.
TEST(ClusterTest, FetchRightAfterALocalDeletePullsAgain) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  std::string data = RandomBytes(1 << 20, 6);
  std::vector<ObjectId> ids(16);
  for (auto& id : ids) {
    id = ObjectId::Random();
    Put(*holder, id, data);
  }
  // Fetch them all, delete them, fetch them all again: the manager is still
  // finishing the first round's transfers when the deletes come in.
  for (int round = 0; round < 4; ++round) {
    Status fetched = puller->Fetch(ids, 20000);
    ASSERT_TRUE(fetched.ok()) << fetched.ToString();
    if (round == 3) break;
    for (const auto& id : ids) ASSERT_TRUE(puller->Delete(id).ok());
  }
  for (const auto& id : ids) ExpectObject(*puller, id, data);
}

// --inflight-bytes bounds the bytes of rendezvous transfers under way: with
// room for two 4 MiB objects, a batch of eight runs at most two at a time
// (the manager's debug log states the bytes in flight at each admission).
TEST(ClusterTest, InflightByteBudgetHoldsTransfersBack) {
  const uint64_t kObject = 4 << 20, kBudget = 2 * kObject;
  Cluster cluster(2, false, int64_t(1) << 30, "PLASMA_LOG_LEVEL=debug",
                  "--inflight-bytes " + std::to_string(kBudget));
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  std::vector<ObjectId> ids(8);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = ObjectId::Random();
    Put(*holder, ids[i], RandomBytes(kObject, 40 + i));
  }
  Status fetched = puller->Fetch(ids, 60000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  for (size_t i = 0; i < ids.size(); ++i) ExpectObject(*puller, ids[i], RandomBytes(kObject, 40 + i));
  std::string log = cluster.Log(2, "manager");
  size_t admissions = 0, waits = 0;
  uint64_t most = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    auto at = line.find("starts its data: ");
    if (at != std::string::npos) {
      ++admissions;
      most = std::max<uint64_t>(most, std::stoull(line.substr(at + 17)));
    }
    if (line.find("waits for the in-flight budget") != std::string::npos) ++waits;
  }
  EXPECT_EQ(admissions, ids.size()) << log;
  EXPECT_LE(most, kBudget) << log;
  EXPECT_GT(waits, 0u) << "no transfer ever waited for the budget:\n" << log;
}

// Put on the fetching node itself while the fetch waits: the manager sees
// it sealed in its own store and answers; it never pulls from itself.
TEST(ClusterTest, FetchWaitsForAnObjectPutLocallyLater) {
  std::string log = FetchWhileItIsPutLater(2);
  EXPECT_EQ(log.find("connected to node node2"), std::string::npos)
      << "the manager pulled the object from its own node:\n" << log;
}

TEST(ClusterTest, FetchOfMissingObjectTimesOutNamingIt) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  Status fetched = puller->Fetch({id}, 300);
  ASSERT_FALSE(fetched.ok());
  EXPECT_TRUE(fetched.IsTimedOut()) << fetched.ToString();
  EXPECT_NE(fetched.message().find(id.Hex()), std::string::npos) << fetched.ToString();
}

TEST(ClusterTest, HolderKilledMidTransferFallsBackToAnotherHolder) {
  if (!FallsBackToTheReplicaWhenTheHolderIsKilled(int64_t(2) << 30, "", 256 << 20)) {
    GTEST_SKIP() << "transfers finished before the kill could land; nothing shown";
  }
}

TEST(ClusterTest, HolderKilledMidTransferWithoutReplicaFailsCleanly) {
  Cluster cluster(2, false, int64_t(2) << 30);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  bool hit = false;
  for (int attempt = 0; attempt < 3 && !hit; ++attempt) {
    ObjectId id = ObjectId::Random();
    Put(*cluster.Connect(1), id, RandomBytes(256 << 20, 21 + attempt));
    Status result;
    hit = FetchKillingHolderMidTransfer(cluster, *puller, id, [] { return 1; }, &result);
    if (!hit) continue;
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.message().find(id.Hex()), std::string::npos) << result.ToString();
    // Nothing half-written is visible.
    auto contains = puller->Contains(id);
    ASSERT_TRUE(contains.ok());
    EXPECT_FALSE(*contains);
    auto objects = puller->List();
    ASSERT_TRUE(objects.ok());
    for (const auto& info : *objects) EXPECT_NE(info.id, id);
  }
  if (!hit) GTEST_SKIP() << "transfers finished before the kill could land; nothing shown";
}

TEST(ClusterTest, PeerRestartedOnTheSameAddressIsReconnected) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  std::string data = RandomBytes(1 << 20, 31);
  ObjectId before = ObjectId::Random();
  Put(*holder, before, data);
  ASSERT_TRUE(puller->Fetch({before}, 20000).ok());  // node 2 now caches a connection to node 1
  // Node 1's manager dies and comes back on the very same address: node 2's
  // cached connection is dead and must not be reused.
  std::string log = cluster.Log(1, "manager");
  auto at = log.find("listening on ");
  ASSERT_NE(at, std::string::npos) << log;
  std::string address = log.substr(at + 13, log.find(',', at) - at - 13);
  cluster.KillManager(1);
  ASSERT_TRUE(cluster.RestartManager(1, address)) << cluster.Log(1, "manager");
  if (cluster.one_process()) holder = cluster.Connect(1);  // its store restarted too
  ObjectId after = ObjectId::Random();
  Put(*holder, after, data);
  Status fetched = puller->Fetch({after}, 20000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString() << "\n" << cluster.Log(2, "manager");
  ExpectObject(*puller, after, data);
}

TEST(ClusterTest, ManagerSurvivesMalformedLocalRequests) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  std::vector<std::vector<uint8_t>> payloads = {{}, std::vector<uint8_t>(40, 0xff)};
  for (fb::MessageType type : {fb::MessageType::PlasmaConnectRequest,
                               fb::MessageType::ManagerFetchRequest}) {
    for (const auto& payload : payloads) {
      auto fd = ConnectUnixSocket(cluster.ManagerSocket(2));
      ASSERT_TRUE(fd.ok()) << fd.status().ToString();
      ASSERT_TRUE(WriteFrame(*fd, type, payload.data(), payload.size()).ok());
      // The manager hangs up on a request it cannot take.
      fb::ManagerFetchReplyT reply;
      EXPECT_FALSE(ReadMessage(*fd, fb::MessageType::ManagerFetchReply, &reply).ok());
      close(*fd);
    }
  }
  // An id of the wrong length, in an otherwise valid request.
  auto fd = ConnectUnixSocket(cluster.ManagerSocket(2));
  ASSERT_TRUE(fd.ok());
  fb::ManagerFetchRequestT request;
  request.object_ids.push_back("short");
  ASSERT_TRUE(WriteMessage(*fd, fb::MessageType::ManagerFetchRequest, request).ok());
  fb::ManagerFetchReplyT reply;
  EXPECT_FALSE(ReadMessage(*fd, fb::MessageType::ManagerFetchReply, &reply).ok());
  close(*fd);
  // It still serves everyone else (and the destructor checks it is alive).
  ObjectId id = ObjectId::Random();
  std::string data = RandomBytes(4096, 41);
  Put(*cluster.Connect(1), id, data);
  auto puller = cluster.Connect(2);
  ASSERT_TRUE(puller->Fetch({id}, 20000).ok());
  ExpectObject(*puller, id, data);
  EXPECT_NE(cluster.Log(2, "manager").find("disconnecting manager client"), std::string::npos);
}

TEST(ClusterTest, RedisRestartWhileManagersRun) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  ObjectId before = ObjectId::Random();
  std::string data = RandomBytes(1 << 20, 5);
  Put(*holder, before, data);
  // Restart Redis empty, on the same address.
  std::string address = cluster.env("REDIS_ADDRESS");
  std::string port = address.substr(address.rfind(':') + 1);
  std::string host = address.substr(0, address.rfind(':'));
  std::string pid_file = cluster.dir() + "/redis.pid";
  RunShell("kill -9 $(cat " + pid_file + "); sleep 0.3; redis-server --bind " + host + " --port " + port +
      " --save '' --appendonly no --protected-mode no --dir " + cluster.dir() + " >>" +
      cluster.dir() + "/redis.log 2>&1 & echo $! > " + pid_file + "; sleep 0.3");
  // The managers reconnect and re-announce what they hold.
  Status fetched = puller->Fetch({before}, 20000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  ExpectObject(*puller, before, data);
  ObjectId after = ObjectId::Random();
  Put(*holder, after, data);
  fetched = puller->Fetch({after}, 20000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  ExpectObject(*puller, after, data);
  // The holder's log tells the outage once, and the re-registration with
  // the objects it holds (at start it said nothing of a count it did not know).
  std::string log = cluster.Log(1, "manager");
  size_t lost = 0;
  for (size_t at = log.find("lost Redis"); at != std::string::npos; at = log.find("lost Redis", at + 1)) {
    ++lost;
  }
  EXPECT_EQ(lost, 1u) << log;
  EXPECT_NE(log.find("registering node node1 again, with 1 object"), std::string::npos) << log;
  EXPECT_EQ(log.find("and 0 objects"), std::string::npos) << log;
}

TEST(ClusterTest, NodesInNetworkNamespaces) {
  if (getuid() != 0) GTEST_SKIP() << "network namespaces need root";
  int code;
  RunShell("ip netns add plasma-probe-$$ && ip netns del plasma-probe-$$", &code);
  if (code != 0) GTEST_SKIP() << "this kernel does not allow network namespaces";
  Cluster cluster(3, true);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  std::vector<std::pair<ObjectId, std::string>> objects;
  for (size_t size : {size_t(0), size_t(4096), size_t(1) << 20, size_t(64) << 20}) {
    objects.emplace_back(ObjectId::Random(), RandomBytes(size, size));
    Put(*holder, objects.back().first, objects.back().second);
  }
  for (int node : {2, 3}) {
    auto puller = cluster.Connect(node);
    for (const auto& [id, data] : objects) {
      Status fetched = puller->Fetch({id}, 60000);
      ASSERT_TRUE(fetched.ok()) << "node" << node << ": " << fetched.ToString();
      ExpectObject(*puller, id, data);
    }
  }
  // The transfer crossed the veth pairs: the managers listen on namespace addresses.
  EXPECT_NE(cluster.Log(2, "manager").find("connected to node node1"), std::string::npos);
}

// `plasma fetch` with only -s finds the node's manager beside its store (as
// plasma-cluster lays them out), and a batch that partly fails says which
// object failed and how many arrived.
TEST(ClusterTest, CliFetchFindsTheManagerAndNamesWhatFailed) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  ObjectId a = ObjectId::Random(), b = ObjectId::Random(), missing = ObjectId::Random();
  Put(*cluster.Connect(1), a, "a");
  Put(*cluster.Connect(1), b, "b");
  int code;
  std::string out = RunShell("env -u PLASMA_MANAGER_SOCKET " + std::string(PLASMA_CLI_PATH) +
                                 " -s " + cluster.StoreSocket(2) + " fetch " + a.Hex() + " " +
                                 b.Hex() + " " + missing.Hex() + " --timeout 500",
                             &code);
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(out.find("no manager socket"), std::string::npos) << out;
  EXPECT_NE(out.find(missing.Hex()), std::string::npos) << out;
  EXPECT_NE(out.find("1 of 3 objects could not be fetched (2 arrived)"), std::string::npos) << out;
  EXPECT_EQ(out.find(a.Hex()), std::string::npos) << "an arrived object is named as failed: " << out;
  ExpectObject(*cluster.Connect(2), a, "a");
  ExpectObject(*cluster.Connect(2), b, "b");
}

// A manager whose store dies withdraws the node from Redis: peers must not
// go on trying a holder whose objects are gone.
TEST(ClusterTest, ManagerWhoseStoreDiesWithdrawsItsObjects) {
  Cluster cluster(2, false);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  if (cluster.one_process()) {
    GTEST_SKIP() << "in the one-process layout a store cannot die without its manager";
  }
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, "x");
  auto puller = cluster.Connect(2);
  ASSERT_TRUE(puller->Fetch({id}, 20000).ok());  // announced by node 1 (and now node 2)
  ASSERT_TRUE(puller->Delete(id).ok());
  std::string redis = cluster.env("REDIS_ADDRESS");
  std::string host = redis.substr(0, redis.rfind(':')), port = redis.substr(redis.rfind(':') + 1);
  std::string members = "redis-cli -h " + host + " -p " + port + " SMEMBERS plasma:object:" + id.Hex();
  ASSERT_TRUE(test::WaitFor([&] { return RunShell(members) == "node1\n"; }, std::chrono::seconds(10)))
      << RunShell(members);
  pid_t manager = cluster.Pid(1, "manager");
  cluster.KillStore(1);
  EXPECT_TRUE(test::WaitFor([&] { return !Alive(manager); }, std::chrono::seconds(10)))
      << "node1's manager outlived its store";
  EXPECT_EQ(RunShell(members), "\n") << "node1 is still listed as a holder";
  EXPECT_NE(cluster.Log(1, "manager").find("withdrawing this node from Redis"), std::string::npos);
}

TEST(ClusterCommandLine, HelpIsTheWholeTextAndNothingElse) {
  for (const char* args : {" --help", " up --help", " help"}) {
    int code;
    std::string out = RunShell(std::string(PLASMA_CLUSTER_PATH) + args, &code);
    EXPECT_EQ(code, 0) << args << ": " << out;
    EXPECT_NE(out.find("plasma-cluster up"), std::string::npos) << args << ": " << out;
    EXPECT_NE(out.find("cluster.env"), std::string::npos) << args << ": " << out;
    EXPECT_EQ(out.find("set -e"), std::string::npos) << args << ": " << out;
  }
  int code;
  std::string out = RunShell(std::string(PLASMA_CLUSTER_PATH) + " bogus", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("unknown command 'bogus'"), std::string::npos) << out;
}

// An `up` that fails (here: a manager that cannot find its plugin) stops
// the Redis and the stores it had started, and keeps the logs.
TEST(ClusterCommandLine, UpThatFailsUndoesWhatItStarted) {
  char pattern[] = "/tmp/plasma-cluster-fail-XXXXXX";
  std::string dir = mkdtemp(pattern);
  int code;
  std::string out = RunShell("PLASMA_TRANSPORT=nosuch " + std::string(PLASMA_CLUSTER_PATH) +
                                 " up --nodes 2 --dir " + dir,
                             &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("libplasma-transport-nosuch.so not found"), std::string::npos) << out;
  // Our own line starts a line of its own, after the manager's.
  EXPECT_NE(out.find("\nplasma-cluster: up failed"), std::string::npos) << out;
  int left;
  // ("[/]tmp..." keeps pgrep from matching the shell that runs it.)
  std::string running = RunShell("pgrep -af '[/]" + dir.substr(1) + "'", &left);
  EXPECT_NE(left, 0) << "still running after a failed up:\n" << running;
  // Redis renames its process, so ask it directly.
  std::ifstream env(dir + "/cluster.env");
  std::string line, redis;
  while (std::getline(env, line)) {
    if (line.rfind("REDIS_ADDRESS=", 0) == 0) redis = line.substr(14);
  }
  ASSERT_FALSE(redis.empty()) << "no cluster.env kept";
  int pinged;
  RunShell("redis-cli -h " + redis.substr(0, redis.rfind(':')) + " -p " +
               redis.substr(redis.rfind(':') + 1) + " ping",
           &pinged);
  EXPECT_NE(pinged, 0) << "Redis at " << redis << " still answers after a failed up";
  std::ifstream log(dir + "/node1/manager.log");
  EXPECT_TRUE(log.good()) << "the failed manager's log is gone";
  RunShell(std::string(PLASMA_CLUSTER_PATH) + " down --dir " + dir);
}

TEST(ManagerCommandLine, LoaderFailuresExitWithOneClearLine) {
  struct Case {
    std::string transport;
    std::string expect;
  } cases[] = {
      {"nonexistent", "libplasma-transport-nonexistent.so"},
      {"/nonexistent/dir/libx.so", "/nonexistent/dir/libx.so"},
      {"/etc/hostname", "/etc/hostname"},
  };
  for (const auto& c : cases) {
    int code;
    std::string out = RunShell("PLASMA_TRANSPORT='" + c.transport + "' " + PLASMA_MANAGER_PATH +
                              " --store-socket /nonexistent --socket /tmp/x --redis 127.0.0.1:1 "
                              "--node n",
                          &code);
    EXPECT_NE(code, 0) << out;
    EXPECT_NE(out.find(c.expect), std::string::npos) << out;
    EXPECT_EQ(out.find("Segmentation"), std::string::npos) << out;
  }
  int code;
  std::string listing = RunShell(std::string(PLASMA_MANAGER_PATH) + " --list-transports", &code);
  EXPECT_EQ(code, 0) << listing;
  EXPECT_NE(listing.find("socket"), std::string::npos) << listing;
}

// The one-process layout's flags: a bad size, or a store socket that cannot
// be listened on, is one clear line and exit status 2 or 1.
TEST(ManagerCommandLine, HostedStoreFailuresExitWithOneClearLine) {
  const std::string manager = std::string(PLASMA_MANAGER_PATH) +
                              " --socket /tmp/x --redis 127.0.0.1:1 --node n --store-memory ";
  for (const char* bad : {"0", "12k", "-5"}) {
    int code;
    std::string out = RunShell(manager + bad + " --store-socket /tmp/y", &code);
    EXPECT_EQ(code, 2) << bad << ": " << out;
    EXPECT_NE(out.find("--store-memory takes a positive number of bytes"), std::string::npos)
        << bad << ": " << out;
  }
  int code;
  std::string out = RunShell(manager + "1048576 --store-socket /nonexistent/dir/store.sock", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("cannot host the store"), std::string::npos) << out;
  EXPECT_NE(out.find("/nonexistent/dir/store.sock"), std::string::npos) << out;
}

// Managers that busy-poll move objects as sleeping ones do (the option
// changes how the loop waits, not what it does).
TEST(ClusterTest, BusyPollingManagersMoveObjects) {
  Cluster cluster(2, false, int64_t(1) << 30, "",
                  "--manager-arg --busy-poll-us --manager-arg 500");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  std::vector<ObjectId> ids;
  std::vector<std::string> contents;
  for (size_t size : {size_t(1000), size_t(100000), size_t(3) << 20}) {
    ids.push_back(ObjectId::Random());
    contents.push_back(RandomBytes(size, size));
    Put(*holder, ids.back(), contents.back());
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(puller->Fetch({ids[i]}, 20000).ok());
    ExpectObject(*puller, ids[i], contents[i]);
  }
  EXPECT_EQ(cluster.Log(2, "manager").find("ERROR"), std::string::npos) << cluster.Log(2, "manager");
}

// Busy-polling stores too (two-process layout: their own flag).
TEST(ClusterTest, BusyPollingStoresAndManagersMoveObjects) {
  if (std::string(std::getenv("PLASMA_CLUSTER_LAYOUT") ? std::getenv("PLASMA_CLUSTER_LAYOUT") : "") ==
      "one-process") {
    GTEST_SKIP() << "in the one-process layout the store is the manager's (BusyPollingManagersMoveObjects)";
  }
  Cluster cluster(2, false, int64_t(1) << 30, "",
                  "--store-arg --busy-poll-us --store-arg 300 "
                  "--manager-arg --busy-poll-us --manager-arg 300");
  ASSERT_TRUE(cluster.up()) << cluster.output();
  EXPECT_NE(test::ReadFileOrEmpty(cluster.dir() + "/node1/store.cmd").find("--busy-poll-us"),
            std::string::npos);
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  const std::vector<size_t> sizes = {1000, 100000, 300000};
  std::vector<ObjectId> ids;
  for (size_t size : sizes) {
    ids.push_back(ObjectId::Random());
    Put(*holder, ids.back(), RandomBytes(size, int(size) + 1));
  }
  ASSERT_TRUE(puller->Fetch(ids, 20000).ok());
  for (size_t i = 0; i < ids.size(); ++i) ExpectObject(*puller, ids[i], RandomBytes(sizes[i], int(sizes[i]) + 1));
}

TEST(ClusterCommandLine, StoreArgumentsNeedTheTwoProcessLayout) {
  char pattern[] = "/tmp/plasma-cluster-store-arg-XXXXXX";
  std::string dir = mkdtemp(pattern);
  int code;
  std::string out = RunShell(std::string(PLASMA_CLUSTER_PATH) + " up --layout one-process --dir " +
                                 dir + " --store-arg --busy-poll-us --store-arg 10",
                             &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--store-arg needs the two-process layout"), std::string::npos) << out;
  RunShell("rm -rf " + dir);
}

TEST(StoreCommandLine, BadBusyPollIsRefused) {
  for (const char* value : {"2000000", "-1", "fast"}) {
    int code;
    std::string out = RunShell(std::string(PLASMA_STORE_PATH) + " -m 1000000 -s /tmp/unused.sock --busy-poll-us " + value, &code);
    EXPECT_EQ(code, 2) << value << ": " << out;
    EXPECT_NE(out.find("--busy-poll-us takes microseconds"), std::string::npos) << value << ": " << out;
  }
}

// Values the manager's tuning flags refuse, each with a line naming the flag.
TEST(ManagerCommandLine, BadTuningValuesAreRefused) {
  const std::string manager = std::string(PLASMA_MANAGER_PATH) +
                              " --store-socket /tmp/y --socket /tmp/x --redis 127.0.0.1:1 --node n ";
  struct Case {
    std::string arguments, expect;
  } cases[] = {
      {"--busy-poll-us 2000000", "--busy-poll-us takes microseconds"},
      {"--busy-poll-us -1", "--busy-poll-us takes microseconds"},
      {"--location-cache lots", "--location-cache takes a number of objects"},
      {"--location-cache", "missing value: '--location-cache'"},
      {"--push-limit -1", "--push-limit takes a number of bytes"},
      {"--push-limit 4M", "--push-limit takes a number of bytes"},
  };
  for (const auto& c : cases) {
    int code;
    std::string out = RunShell(manager + c.arguments, &code);
    EXPECT_EQ(code, 2) << c.arguments << ": " << out;
    EXPECT_NE(out.find(c.expect), std::string::npos) << c.arguments << ": " << out;
  }
}

TEST(ClusterCommandLine, UnknownLayoutIsRefused) {
  char pattern[] = "/tmp/plasma-cluster-layout-XXXXXX";
  std::string dir = mkdtemp(pattern);
  int code;
  std::string out = RunShell(std::string(PLASMA_CLUSTER_PATH) + " up --layout three-process --dir " + dir,
                             &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--layout is two-process or one-process, not 'three-process'"), std::string::npos)
      << out;
  EXPECT_FALSE(std::ifstream(dir + "/cluster.env").good()) << "a refused up started something";
  RunShell("rm -rf " + dir);
}

// Where there is no RDMA device (these machines), the verbs plugin still
// loads, reports why it cannot run, and the manager says so in one line.
TEST(ManagerCommandLine, VerbsWithoutADeviceExitsWithOneClearLine) {
  int code;
  std::string listing = RunShell(std::string(PLASMA_MANAGER_PATH) + " --list-transports", &code);
  if (listing.find("verbs") == std::string::npos) GTEST_SKIP() << "the verbs plugin is not built";
  if (listing.find("verbs  (unusable)") == std::string::npos) {
    GTEST_SKIP() << "this machine has an RDMA device; the guest tests cover it";
  }
  EXPECT_NE(listing.find("no RDMA device"), std::string::npos) << listing;
  std::string out = RunShell("PLASMA_TRANSPORT=verbs " + std::string(PLASMA_MANAGER_PATH) +
                                 " --store-socket /nonexistent --socket /tmp/x --redis 127.0.0.1:1 "
                                 "--node n",
                             &code);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("no RDMA device"), std::string::npos) << out;
  EXPECT_NE(out.find("use another transport"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "expected one line:\n" << out;
}

// UCX with a transport list this machine cannot serve (no RDMA device for
// rc_verbs): the manager stops with one line naming UCX_TLS.
TEST(ManagerCommandLine, UcxWithoutAUsableTransportExitsWithOneClearLine) {
  int code;
  std::string listing = RunShell(std::string(PLASMA_MANAGER_PATH) + " --list-transports", &code);
  if (listing.find("ucx") == std::string::npos) GTEST_SKIP() << "the ucx plugin is not built";
  if (listing.find("verbs  (unusable)") == std::string::npos) {
    GTEST_SKIP() << "this machine has an RDMA device, so rc_verbs may well work";
  }
  std::string out = RunShell("PLASMA_TRANSPORT=ucx UCX_TLS=rc_verbs " +
                                 std::string(PLASMA_MANAGER_PATH) +
                                 " --store-socket /nonexistent --socket /tmp/x --redis 127.0.0.1:1 "
                                 "--node n",
                             &code);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("UCX cannot start with UCX_TLS=rc_verbs"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "expected one line:\n" << out;
}

TEST(ClusterCommandLine, StatusShowsEachProcessItsAddressAndObjects) {
  Cluster cluster(2, false, int64_t(64) << 20);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  Put(*cluster.Connect(1), ObjectId::Random(), "one");
  Put(*cluster.Connect(1), ObjectId::Random(), "two");
  int code;
  std::string status = RunShell(std::string(PLASMA_CLUSTER_PATH) + " status --dir " + cluster.dir(), &code);
  EXPECT_EQ(code, 0) << status;
  EXPECT_NE(status.find("redis: up (pid " + std::to_string(cluster.RedisPid()) + ")"),
            std::string::npos)
      << status;
  EXPECT_NE(status.find("at " + cluster.env("REDIS_ADDRESS")), std::string::npos) << status;
  EXPECT_NE(status.find("node1 store: up (pid " + std::to_string(cluster.Pid(1, "store")) + ") at " +
                        cluster.StoreSocket(1) + ", 2 objects"),
            std::string::npos)
      << status;
  EXPECT_NE(status.find("node2 store: up"), std::string::npos) << status;
  EXPECT_NE(status.find(", 0 objects"), std::string::npos) << status;
  EXPECT_NE(status.find("node1 manager: up (pid " + std::to_string(cluster.Pid(1, "manager")) +
                        ") at " + cluster.ManagerSocket(1) + ", peers reach it at tcp:127.0.0.1:"),
            std::string::npos)
      << status;
}

TEST(ClusterCommandLine, RestartBringsANodeOrRedisBackOnItsAddress) {
  Cluster cluster(2, false, int64_t(64) << 20);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  const std::string launcher = std::string(PLASMA_CLUSTER_PATH) + " restart ";
  int code;
  pid_t old_store = cluster.Pid(1, "store"), old_manager = cluster.Pid(1, "manager");
  std::string out = RunShell(launcher + "node1 --dir " + cluster.dir(), &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("node1 restarted"), std::string::npos) << out;
  EXPECT_NE(cluster.Pid(1, "store"), old_store);
  EXPECT_NE(cluster.Pid(1, "manager"), old_manager);
  EXPECT_FALSE(Alive(old_store));
  // The restarted node serves again: an object put there reaches node 2.
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, "after the node restart");
  auto node2 = cluster.Connect(2);
  ASSERT_TRUE(node2->Fetch({id}, 20000).ok());
  ExpectObject(*node2, id, "after the node restart");

  pid_t old_redis = cluster.RedisPid();
  out = RunShell(launcher + "redis --dir " + cluster.dir(), &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(cluster.RedisPid(), old_redis);
  std::string address = cluster.env("REDIS_ADDRESS");
  EXPECT_EQ(RunShell("redis-cli -h " + address.substr(0, address.find(':')) + " -p " +
                     address.substr(address.find(':') + 1) + " ping"),
            "PONG\n");
  // The managers find the new Redis by themselves and register again.
  ObjectId later = ObjectId::Random();
  Put(*cluster.Connect(1), later, "after the Redis restart");
  ASSERT_TRUE(node2->Fetch({later}, 30000).ok());
  ExpectObject(*node2, later, "after the Redis restart");

  out = RunShell(launcher + "node9 --dir " + cluster.dir(), &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("no node9"), std::string::npos) << out;
}

TEST(ClusterCommandLine, DownStopsARedisRestartedByHand) {
  Cluster cluster(1, false, int64_t(64) << 20);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  const std::string address = cluster.env("REDIS_ADDRESS");
  const std::string host = address.substr(0, address.find(':'));
  const std::string port = address.substr(address.find(':') + 1);
  kill(cluster.RedisPid(), SIGKILL);
  ASSERT_TRUE(test::WaitFor([&] { return RunShell("redis-cli -h " + host + " -p " + port + " ping") != "PONG\n"; },
                            std::chrono::seconds(10)));
  // By hand, with the launcher's own arguments (its working directory is the cluster's).
  int code;
  RunShell("redis-server --bind " + host + " --port " + port + " --save '' --appendonly no --dir " +
               cluster.dir() + " --daemonize yes",
           &code);
  ASSERT_EQ(code, 0);
  ASSERT_TRUE(test::WaitFor([&] { return RunShell("redis-cli -h " + host + " -p " + port + " ping") == "PONG\n"; },
                            std::chrono::seconds(10)));
  EXPECT_EQ(cluster.Down(), 0);
  EXPECT_TRUE(test::WaitFor([&] { return RunShell("redis-cli -h " + host + " -p " + port + " ping") != "PONG\n"; },
                            std::chrono::seconds(10)))
      << "down left the hand-restarted redis-server running";
}

// Managers that talk to each other must agree on the transport: a holder
// serving over another plugin is a clear error that names both.
TEST(ClusterTest, PeerOnAnotherTransportIsAnErrorNamingBoth) {
  Cluster cluster(2, false, int64_t(64) << 20);
  ASSERT_TRUE(cluster.up()) << cluster.output();
  cluster.KillManager(1);
  // Node 1 again, over the test-only fault plugin (a pass-through of socket,
  // but another transport by name).
  ASSERT_TRUE(cluster.RestartManager(1, "127.0.0.1", "PLASMA_TRANSPORT=fault"))
      << cluster.Log(1, "manager");
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, "bytes");
  Status fetched = cluster.Connect(2)->Fetch({id}, 3000);
  ASSERT_FALSE(fetched.ok());
  EXPECT_NE(fetched.message().find("'fault'"), std::string::npos) << fetched.ToString();
  EXPECT_NE(fetched.message().find("socket"), std::string::npos) << fetched.ToString();
  EXPECT_NE(fetched.message().find("node1"), std::string::npos) << fetched.ToString();
}

}  // namespace
}  // namespace plasma
