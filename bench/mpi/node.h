// One rank's node: its store and manager (started by the rank, or running
// already and attached to), and the Redis rank 0 may start for everyone.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "plasma/common/status.h"

namespace plasma::mpibench {

using EnvironmentList = std::vector<std::string>;  // VAR=VALUE each

// A shell command prefix that sets env: "env 'A=1' 'B=2' ", or "" for none.
std::string EnvCommandPrefix(const EnvironmentList& env);

// Whether this machine's manager can load transport with env: empty if it
// can, else why not (the manager's own words).
std::string WhyTransportUnusable(const std::string& transport, const EnvironmentList& env);

// Sockets and pids of a node's two daemons; a pid is -1 when unknown.
struct Daemons {
  std::string store_socket, manager_socket;
  pid_t store_pid = -1, manager_pid = -1;
};

// A store and manager this rank starts itself, in dir.
class LocalNode {
 public:
  static Result<std::unique_ptr<LocalNode>> StartStore(const std::string& dir, uint64_t capacity);
  // Starts the manager with transport (after stopping any running one).
  Status StartManager(const std::string& transport, const EnvironmentList& env,
                      const std::string& redis, const std::string& listen,
                      const std::string& node_name, const std::vector<std::string>& manager_args);
  void StopManager() { manager_ = bench::ChildProcess(); }
  Daemons daemons() const;

 private:
  std::string dir_;
  bench::ChildProcess store_, manager_;
};

// Running daemons found by their sockets (pids looked up for CPU accounting).
Daemons AttachToDaemons(const std::string& store_socket, const std::string& manager_socket);

// A redis-server for the benchmark (rank 0), no persistence; stopped on destruction.
Result<bench::ChildProcess> StartRedis(const std::string& dir, const std::string& host, int port);

// One machine, every node in its own network namespace: plasma-cluster
// brings up Redis and all nodes (rank 0 calls it; every rank then attaches
// to node<rank+1>).
struct NamespaceCluster {
  std::vector<std::string> namespaces;  // per rank
  std::vector<std::string> addresses;   // per rank, the node's address
};
Result<NamespaceCluster> NamespaceClusterUp(const std::string& dir, int nodes,
                                            const std::string& transport,
                                            const EnvironmentList& env, uint64_t capacity,
                                            const std::vector<std::string>& manager_args);
NamespaceCluster ReadNamespaceCluster(const std::string& dir);
void NamespaceClusterDown(const std::string& dir);
Daemons NamespaceNodeDaemons(const std::string& dir, int rank);

// A TCP port free on host right now (for the Redis rank 0 starts); 0 on error.
int FreeTcpPort(const std::string& host);

// This rank's address for its manager and for ceilings: --listen, the
// IPv4 address of --listen-interface, or loopback (one host only).
Result<std::string> ListenAddress(const std::string& listen, const std::string& interface,
                                  bool ranks_share_a_host);

}  // namespace plasma::mpibench
