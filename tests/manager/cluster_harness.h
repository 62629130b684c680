// The cluster tests' harness: a real redis-server and N nodes started by
// plasma-cluster, clients of them, and the helpers the tests share.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "plasma/client/client.h"
#include "tests/common/test_util.h"

namespace plasma {

// A shell command (pipes, redirections) through the shared test runner;
// stdout and stderr together.
inline std::string RunShell(const std::string& command, int* exit_code = nullptr) {
  auto result = test::RunCommand({"/bin/sh", "-c", command}, "", {}, std::chrono::seconds(120));
  if (!result.ok()) {
    if (exit_code) *exit_code = -1;
    return result.status().ToString();
  }
  if (exit_code) *exit_code = result->exit_code;
  return result->out + result->err;
}

inline uint64_t Fnv1a(const uint8_t* data, size_t size) {
  uint64_t hash = 1469598103934665603ull;
  // Every byte counts, but hash 8 at a time so 256 MiB stays quick.
  size_t words = size / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t w;
    std::memcpy(&w, data + 8 * i, 8);
    hash = (hash ^ w) * 1099511628211ull;
  }
  for (size_t i = words * 8; i < size; ++i) hash = (hash ^ data[i]) * 1099511628211ull;
  return hash;
}

inline std::string RandomBytes(size_t size, uint64_t seed) { return test::PatternString(size, seed); }

// Running, and not a zombie: a daemon that died after plasma-cluster exited
// is nobody's child here and may linger unreaped.
inline bool Alive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

class Cluster {
 public:
  // `extra`: more `plasma-cluster up` arguments, optionally preceded by
  // environment assignments for the daemons (e.g. "PLASMA_LOG_LEVEL=debug").
  Cluster(int nodes, bool netns, int64_t capacity = int64_t(1) << 30,
          const std::string& environment = "", const std::string& extra = "")
      : nodes_(nodes) {
    char pattern[] = "/tmp/plasma-cluster-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    std::string command = environment + (environment.empty() ? "" : " ") +
                          std::string(PLASMA_CLUSTER_PATH) + " up --nodes " +
                          std::to_string(nodes) + " --dir " + dir_ + " --capacity " +
                          std::to_string(capacity) + (netns ? " --netns" : "") + " " + extra;
    output_ = RunShell(command, &exit_code_);
    std::ifstream env(dir_ + "/cluster.env");
    std::string line;
    while (std::getline(env, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  ~Cluster() {
    // Every daemon not killed on purpose must have lived through the test:
    // a crash after answering would otherwise go unseen.
    if (up() && !downed_) {
      for (int node = 1; node <= nodes_; ++node) {
        for (const char* process : {"store", "manager"}) {
          if (killed_.count({node, process})) continue;
          if (!Alive(Pid(node, process))) {
            ADD_FAILURE() << "node" << node << " " << process << " died during the test; its log:\n"
                          << Log(node, process);
          }
        }
      }
    }
    RunShell(std::string(PLASMA_CLUSTER_PATH) + " down --dir " + dir_);
  }
  // Returns once the process is gone (its sockets closed): a manager started
  // next on the same address must not find the old listener still there.
  // In the one-process layout the node's store dies with it.
  void KillManager(int node) {
    killed_.insert({node, "manager"});
    if (one_process()) killed_.insert({node, "store"});
    pid_t pid = Pid(node, "manager");
    kill(pid, SIGKILL);
    EXPECT_TRUE(test::WaitFor([&] { return !Alive(pid); }, std::chrono::seconds(10)))
        << "node" << node << " manager survived SIGKILL";
  }

  // Kills node's store; its manager is expected to stop too.
  void KillStore(int node) {
    killed_.insert({node, "store"});
    killed_.insert({node, "manager"});
    kill(Pid(node, "store"), SIGKILL);
  }

  // Starts node's manager again (after KillManager), listening on `listen`;
  // true once it has registered with Redis.
  // (One process: an empty store comes back with it; reconnect its clients.)
  bool RestartManager(int node, const std::string& listen, const std::string& environment = "") {
    killed_.erase({node, "manager"});
    killed_.erase({node, "store"});
    std::string dir = NodeDir(node);
    int code;
    RunShell(environment + " " + ManagerCommand(node, listen) + " >" + dir +
                 "/manager.log 2>&1 & echo $! >" + dir + "/manager.pid" +
                 (one_process() ? " && cp " + dir + "/manager.pid " + dir + "/store.pid" : ""),
             &code);
    return code == 0 &&
           test::WaitFor([&] { return Log(node, "manager").find("registering node") != std::string::npos; },
                         std::chrono::seconds(10));
  }

  // `plasma-cluster down`, as a user would; the daemons are expected gone.
  int Down() {
    downed_ = true;
    int code;
    RunShell(std::string(PLASMA_CLUSTER_PATH) + " down --dir " + dir_, &code);
    return code;
  }

  // A frozen manager (SIGSTOP): alive, its sockets open, answering nothing.
  void FreezeManager(int node) { kill(Pid(node, "manager"), SIGSTOP); }
  void ThawManager(int node) { kill(Pid(node, "manager"), SIGCONT); }

  // How plasma-cluster starts node's manager (hosting its store in the
  // one-process layout), listening on `listen`.
  std::string ManagerCommand(int node, const std::string& listen) const {
    std::string dir = NodeDir(node);
    return std::string(PLASMA_MANAGER_PATH) + " --store-socket " + dir + "/store.sock" +
           (one_process() ? " --store-memory " + env("CAPACITY") : "") + " --socket " + dir +
           "/manager.sock --redis " + env("REDIS_ADDRESS") + " --node node" +
           std::to_string(node) + " --listen " + listen;
  }
  bool one_process() const { return env("LAYOUT") == "one-process"; }
  bool up() const { return exit_code_ == 0; }
  const std::string& output() const { return output_; }
  std::string NodeDir(int node) const { return dir_ + "/node" + std::to_string(node); }
  std::string StoreSocket(int node) const { return NodeDir(node) + "/store.sock"; }
  std::string ManagerSocket(int node) const { return NodeDir(node) + "/manager.sock"; }
  pid_t Pid(int node, const std::string& process) const {
    std::ifstream in(NodeDir(node) + "/" + process + ".pid");
    pid_t pid = -1;
    in >> pid;
    return pid;
  }
  pid_t RedisPid() const {
    std::ifstream in(dir_ + "/redis.pid");
    pid_t pid = -1;
    in >> pid;
    return pid;
  }
  std::string Log(int node, const std::string& process) const {
    std::ifstream in(NodeDir(node) + "/" + process + ".log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  const std::string& dir() const { return dir_; }
  std::string env(const std::string& key) const {
    auto it = env_.find(key);
    return it == env_.end() ? "" : it->second;
  }

  std::shared_ptr<Client> Connect(int node) const {
    ConnectOptions options;
    options.manager_socket = ManagerSocket(node);
    auto client = Client::Connect(StoreSocket(node), options);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? *client : nullptr;
  }

 private:
  int nodes_;
  std::set<std::pair<int, std::string>> killed_;
  bool downed_ = false;
  std::string dir_;
  std::string output_;
  int exit_code_ = -1;
  std::map<std::string, std::string> env_;
};

// Puts `data` under id on the node's store.
inline void Put(Client& client, const ObjectId& id, const std::string& data, const std::string& metadata = "") {
  auto buffer = client.Create(id, int64_t(data.size()), metadata);
  ASSERT_TRUE(buffer.ok()) << buffer.status().ToString();
  if (!data.empty()) std::memcpy(buffer->data(), data.data(), data.size());
  ASSERT_TRUE(client.Seal(id).ok());
}

inline void ExpectObject(Client& client, const ObjectId& id, const std::string& data,
                  const std::string& metadata = "") {
  auto got = client.Get({id}, 0);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE((*got)[0].valid()) << "object " << id.Hex() << " is not in the local store";
  ASSERT_EQ((*got)[0].data_size(), int64_t(data.size()));
  EXPECT_EQ(Fnv1a((*got)[0].data(), data.size()),
            Fnv1a(reinterpret_cast<const uint8_t*>(data.data()), data.size()))
      << "contents differ for object of " << data.size() << " bytes";
  ASSERT_EQ((*got)[0].metadata_size(), int64_t(metadata.size()));
  EXPECT_EQ(std::string(reinterpret_cast<char*>((*got)[0].metadata()), metadata.size()), metadata);
}

// redis-cli against the cluster's Redis; its output.
inline std::string RedisCli(const Cluster& cluster, const std::string& arguments) {
  std::string redis = cluster.env("REDIS_ADDRESS");
  return RunShell("redis-cli -h " + redis.substr(0, redis.rfind(':')) + " -p " +
                  redis.substr(redis.rfind(':') + 1) + " " + arguments);
}

// How often `what` occurs in `text` (log lines, say).
inline size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Puts RandomBytes(size, seed) (and `metadata`) on `holder` and returns its
// id once `fetcher`'s manager has read the announcement, sizes included:
// announcements arrive in order, so a probe put after it and found in that
// manager's location cache proves it. The fetcher's manager must log at
// debug level (its lookups name their source).
inline ObjectId AnnouncedObject(const Cluster& cluster, Client& fetcher_client, size_t size,
                                int seed, const std::string& metadata = "", int fetcher = 2,
                                int holder_node = 1) {
  auto holder = cluster.Connect(holder_node);
  ObjectId id = ObjectId::Random();
  Put(*holder, id, RandomBytes(size, seed), metadata);
  // A fetch right after the put may beat the announcement to the fetcher
  // (then its lookup asks Redis), and a fresh manager follows the events
  // only once subscribed: each probe waits a little longer before it asks.
  for (int probes = 0; probes < 40; ++probes) {
    ObjectId probe = ObjectId::Random();
    Put(*holder, probe, "probe");
    std::this_thread::sleep_for(std::chrono::milliseconds(5 * (probes + 1)));
    EXPECT_TRUE(fetcher_client.Fetch({probe}, 20000).ok());
    std::string log = cluster.Log(fetcher, "manager");
    const std::string lookup = "looked up " + probe.Hex();
    for (size_t at = log.find(lookup); at != std::string::npos; at = log.find(lookup, at + 1)) {
      if (log.substr(at, log.find('\n', at) - at).find("(location cache)") != std::string::npos) {
        return id;
      }
    }
  }
  ADD_FAILURE() << "node " << fetcher << " never read node " << holder_node << "'s announcements";
  return id;
}

// Polls the node's store until id is there created but not sealed (a pull
// under way); false if `done` comes first or after a bounded wait.
inline bool WaitForPullInProgress(const Cluster& cluster, int node, const ObjectId& id,
                           const std::atomic<bool>& done) {
  auto watcher = Client::Connect(cluster.StoreSocket(node));
  if (!watcher.ok()) return false;
  for (int i = 0; i < 20000 && !done; ++i) {
    auto objects = (*watcher)->List();
    for (const auto& info : objects.ok() ? *objects : std::vector<ObjectInfo>{}) {
      if (info.id == id && !info.sealed) return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

// Node 2 fetches id; `victim` picks the holder node whose manager is killed
// once the pull is under way. Returns true if the kill landed mid-transfer.
inline bool FetchKillingHolderMidTransfer(Cluster& cluster, Client& puller, const ObjectId& id,
                                   const std::function<int()>& victim, Status* fetch_result) {
  std::atomic<bool> done{false};
  std::thread fetcher([&] {
    *fetch_result = puller.Fetch({id}, 60000);
    done = true;
  });
  bool hit = WaitForPullInProgress(cluster, 2, id, done);
  if (hit) cluster.KillManager(victim());
  fetcher.join();
  return hit;
}


// Three nodes, the object (`size` bytes) on nodes 1 and 3; node 2 fetches it
// and the holder it pulls from is killed mid-transfer: the fetch must still
// succeed, from the other replica. A fresh cluster per attempt (so the
// puller's log names only this holder), up to three; false if no kill ever
// landed mid-transfer (the caller skips: nothing shown).
inline bool FallsBackToTheReplicaWhenTheHolderIsKilled(int64_t capacity, const std::string& environment,
                                                        size_t size, bool netns = false,
                                                        const std::string& extra = "") {
  for (int attempt = 0; attempt < 3; ++attempt) {
    Cluster cluster(3, netns, capacity, environment, extra);
    EXPECT_TRUE(cluster.up()) << cluster.output();
    if (!cluster.up()) return true;
    auto puller = cluster.Connect(2);
    ObjectId id = ObjectId::Random();
    std::string data = RandomBytes(size, 11 + attempt);
    Put(*cluster.Connect(1), id, data);
    Put(*cluster.Connect(3), id, data);
    int victim = 0;
    Status result;
    bool hit = FetchKillingHolderMidTransfer(cluster, *puller, id, [&] {
      // The holder being pulled from is the one the puller connected to.
      victim = cluster.Log(2, "manager").find("connected to node node3") != std::string::npos ? 3 : 1;
      return victim;
    }, &result);
    if (!hit) continue;
    EXPECT_TRUE(result.ok()) << "fetch after killing node" << victim << ": " << result.ToString();
    if (result.ok()) ExpectObject(*puller, id, data);
    return true;
  }
  return false;
}


}  // namespace plasma
