// Cluster tests for a high-performance transport (PLASMA_TEST_TRANSPORT,
// default verbs): run on the kernel's Soft-RoCE device inside the QEMU guest
// (tests/rdma_guest/run-in-guest; see tests/rdma_guest/CMakeLists.txt), and
// for ucx also on the host, on loopback and, with PLASMA_TEST_NETNS=1, with
// every node in its own network namespace (UCX_TLS from the environment).
// Object sizes stay at a few MiB: Soft-RoCE under emulation moves tens of
// MB/s. Each test checks every byte that arrived.
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "tests/manager/cluster_harness.h"

namespace plasma {
namespace {

std::string TransportUnderTest() {
  const char* name = std::getenv("PLASMA_TEST_TRANSPORT");
  return name != nullptr && *name != '\0' ? name : "verbs";
}

// The eager/rendezvous switch the managers run with (the plugin's
// PLASMA_VERBS_RNDV_THRESHOLD, fixed here so the boundary is known).
constexpr size_t kThreshold = 8192;

std::string Environment() {
  return "PLASMA_TRANSPORT=" + TransportUnderTest() +
         " PLASMA_VERBS_RNDV_THRESHOLD=" + std::to_string(kThreshold);
}

constexpr int64_t kCapacity = int64_t(256) << 20;

bool InNamespaces() {
  const char* netns = std::getenv("PLASMA_TEST_NETNS");
  return netns != nullptr && std::strcmp(netns, "1") == 0;
}

// PLASMA_TEST_LISTEN: the managers' address (rdmacm needs the RDMA
// device's, not loopback). PLASMA_TEST_MANAGER_ARGS: more plasma-manager
// arguments, space-separated (the guest's UCX runs: a longer stall window
// under emulation).
std::string ClusterArgs() {
  std::string args;
  const char* listen = std::getenv("PLASMA_TEST_LISTEN");
  if (listen != nullptr && *listen != '\0') args += std::string("--listen ") + listen;
  const char* manager = std::getenv("PLASMA_TEST_MANAGER_ARGS");
  std::istringstream words(manager != nullptr ? manager : "");
  for (std::string word; words >> word;) args += " --manager-arg " + word;
  return args;
}

TEST(RdmaClusterTest, ObjectsEitherSideOfTheThresholdMoveIntact) {
  Cluster cluster(2, InNamespaces(), kCapacity, Environment(), ClusterArgs());
  ASSERT_TRUE(cluster.up()) << cluster.output();
  EXPECT_NE(cluster.Log(2, "manager").find("transport " + TransportUnderTest()), std::string::npos)
      << cluster.Log(2, "manager");
  // A native READ (verbs, ucp_get) or small eager messages (UCX over TCP):
  // never pushed (docs/manager.md, "Pushes").
  EXPECT_EQ(cluster.Log(2, "manager").find("pushed in"), std::string::npos)
      << cluster.Log(2, "manager");
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  ASSERT_TRUE(holder && puller);
  // Inline in the HEADER (eager), exactly at and around the plugin's
  // threshold, and by RDMA READ from the holder's arena (rendezvous).
  std::vector<size_t> sizes = {0,          1,          100,        kThreshold - 64, kThreshold - 1,
                               kThreshold, kThreshold + 1, 65536,  1 << 20,         (4 << 20) + 3};
  std::vector<ObjectId> ids;
  std::vector<std::string> contents;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ids.push_back(ObjectId::Random());
    contents.push_back(RandomBytes(sizes[i], 100 + i));
    Put(*holder, ids.back(), contents.back(), i % 2 ? "meta" + std::to_string(i) : "");
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    Status fetched = puller->Fetch({ids[i]}, 60000);
    ASSERT_TRUE(fetched.ok()) << "size " << sizes[i] << ": " << fetched.ToString();
    ExpectObject(*puller, ids[i], contents[i], i % 2 ? "meta" + std::to_string(i) : "");
  }
  // And the other way, on the connection the first node now accepts.
  ObjectId back = ObjectId::Random();
  std::string back_data = RandomBytes(2 << 20, 99);
  Put(*puller, back, back_data);
  ASSERT_TRUE(holder->Fetch({back}, 60000).ok());
  ExpectObject(*holder, back, back_data);
}

TEST(RdmaClusterTest, ManyObjectsInFlightInOneFetch) {
  Cluster cluster(2, InNamespaces(), kCapacity, Environment(), ClusterArgs());
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto holder = cluster.Connect(1);
  auto puller = cluster.Connect(2);
  ASSERT_TRUE(holder && puller);
  // More objects than the connection has credits (eager) and READs in
  // flight (rendezvous), in one request.
  std::vector<ObjectId> ids;
  std::vector<std::string> contents;
  for (int i = 0; i < 200; ++i) {
    size_t size = i % 3 == 0 ? 96 * 1024 + i : 512 + 37 * i;
    ids.push_back(ObjectId::Random());
    contents.push_back(RandomBytes(size, 1000 + i));
    Put(*holder, ids.back(), contents.back());
  }
  Status fetched = puller->Fetch(ids, 120000);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  for (size_t i = 0; i < ids.size(); ++i) ExpectObject(*puller, ids[i], contents[i]);
}

TEST(RdmaClusterTest, HolderKilledMidReadFallsBackToTheReplica) {
  if (!FallsBackToTheReplicaWhenTheHolderIsKilled(kCapacity, Environment(), 96 << 20,
                                                  InNamespaces(), ClusterArgs())) {
    GTEST_SKIP() << "the READ finished before the kill could land; nothing shown";
  }
}

TEST(RdmaClusterTest, HolderKilledWithoutReplicaLeavesNothingHalfWritten) {
  Cluster cluster(2, InNamespaces(), kCapacity, Environment(), ClusterArgs());
  ASSERT_TRUE(cluster.up()) << cluster.output();
  auto puller = cluster.Connect(2);
  ObjectId id = ObjectId::Random();
  Put(*cluster.Connect(1), id, RandomBytes(96 << 20, 31));
  Status result;
  bool hit = FetchKillingHolderMidTransfer(cluster, *puller, id, [] { return 1; }, &result);
  if (!hit) GTEST_SKIP() << "the READ finished before the kill could land; nothing shown";
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.message().find(id.Hex()), std::string::npos) << result.ToString();
  auto contains = puller->Contains(id);
  ASSERT_TRUE(contains.ok());
  EXPECT_FALSE(*contains) << "a half-written object became visible";
}

}  // namespace
}  // namespace plasma
