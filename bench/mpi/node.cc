#include "bench/mpi/node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "bench/mpi/devices.h"
#include "bench/mpi/process_cpu.h"

namespace plasma::mpibench {

using bench::ChildProcess;
using bench::FindExecutable;
using bench::RunCommand;

namespace {

std::string ShellQuote(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string LastLines(const std::string& path, int lines) {
  return RunCommand("tail -n " + std::to_string(lines) + " " + ShellQuote(path));
}

// A ChildProcess failure, with the end of the daemon's log in the message.
Status WithLogTail(const Status& failed, const std::string& log) {
  return Status(failed.code(), failed.message() + "; its log ends:\n" + LastLines(log, 5));
}

}  // namespace

std::string EnvCommandPrefix(const EnvironmentList& env) {
  std::string prefix;
  for (const auto& assignment : env) prefix += ShellQuote(assignment) + " ";
  return prefix.empty() ? "" : "env " + prefix;
}

std::string WhyTransportUnusable(const std::string& transport, const EnvironmentList& env) {
  auto verdicts = bench::ListTransports(EnvCommandPrefix(env));
  if (auto failed = verdicts.find(""); failed != verdicts.end()) return failed->second;
  auto it = verdicts.find(transport);
  if (it == verdicts.end()) {
    return "no plugin named " + transport + " found (plasma-manager --list-transports)";
  }
  return it->second;
}

Result<std::unique_ptr<LocalNode>> LocalNode::StartStore(const std::string& dir,
                                                         uint64_t capacity) {
  auto node = std::make_unique<LocalNode>();
  node->dir_ = dir;
  std::string socket = dir + "/store.sock";
  unlink(socket.c_str());
  auto store = ChildProcess::Start(
      {FindExecutable("plasma-store-server"), "-m", std::to_string(capacity), "-s", socket},
      dir + "/store.log", socket);
  if (!store.ok()) return WithLogTail(store.status(), dir + "/store.log");
  node->store_ = std::move(*store);
  return node;
}

Status LocalNode::StartManager(const std::string& transport, const EnvironmentList& env,
                               const std::string& redis, const std::string& listen,
                               const std::string& node_name,
                               const std::vector<std::string>& manager_args) {
  StopManager();
  std::string socket = dir_ + "/manager.sock";
  unlink(socket.c_str());
  std::vector<std::string> argv = {"env", "PLASMA_TRANSPORT=" + transport};
  argv.insert(argv.end(), env.begin(), env.end());
  for (const std::string& word :
       {FindExecutable("plasma-manager"), std::string("--store-socket"), dir_ + "/store.sock",
        std::string("--socket"), socket, std::string("--redis"), redis, std::string("--node"),
        node_name, std::string("--listen"), listen}) {
    argv.push_back(word);
  }
  argv.insert(argv.end(), manager_args.begin(), manager_args.end());
  std::string log = dir_ + "/manager-" + transport + ".log";
  // A minute: an emulated guest or a UCX probing its devices is slow to start.
  auto manager = ChildProcess::Start(argv, log, socket, 60000);
  if (!manager.ok()) return WithLogTail(manager.status(), log);
  manager_ = std::move(*manager);
  return Status::OK();
}

Daemons LocalNode::daemons() const {
  Daemons d;
  d.store_socket = dir_ + "/store.sock";
  d.manager_socket = dir_ + "/manager.sock";
  d.store_pid = store_.pid();
  d.manager_pid = manager_.pid();
  return d;
}

Daemons AttachToDaemons(const std::string& store_socket, const std::string& manager_socket) {
  Daemons d;
  d.store_socket = store_socket;
  d.manager_socket = manager_socket;
  d.store_pid = PidListeningOn(store_socket);
  d.manager_pid = PidListeningOn(manager_socket);
  return d;
}

Result<ChildProcess> StartRedis(const std::string& dir, const std::string& host, int port) {
  // The Unix socket is only the sign that Redis is up; clients use TCP.
  std::string ready = dir + "/redis.sock";
  unlink(ready.c_str());
  auto redis = ChildProcess::Start(
      {"redis-server", "--bind", host, "--port", std::to_string(port), "--save", "",
       "--appendonly", "no", "--protected-mode", "no", "--dir", dir, "--unixsocket", ready},
      dir + "/redis.log", ready);
  if (!redis.ok()) return WithLogTail(redis.status(), dir + "/redis.log");
  return redis;
}

Result<NamespaceCluster> NamespaceClusterUp(const std::string& dir, int nodes,
                                            const std::string& transport,
                                            const EnvironmentList& env, uint64_t capacity,
                                            const std::vector<std::string>& manager_args) {
  std::string command = EnvCommandPrefix(env) + ShellQuote(FindExecutable("plasma-cluster")) +
                        " up --netns --nodes " + std::to_string(nodes) + " --dir " +
                        ShellQuote(dir) + " --capacity " + std::to_string(capacity) +
                        " --transport " + ShellQuote(transport);
  for (const auto& arg : manager_args) command += " --manager-arg " + ShellQuote(arg);
  int code = 0;
  std::string out = RunCommand(command, &code);
  if (code != 0) return Status::Unavailable("plasma-cluster up --netns failed:\n" + out);
  return ReadNamespaceCluster(dir);
}

NamespaceCluster ReadNamespaceCluster(const std::string& dir) {
  auto env = bench::ReadKeyValueFile(dir + "/cluster.env");
  NamespaceCluster cluster;
  int nodes = std::atoi(env["NODES"].c_str());
  for (int i = 1; i <= nodes; ++i) {
    cluster.namespaces.push_back(env["NODE" + std::to_string(i) + "_NETNS"]);
    cluster.addresses.push_back(env["NODE" + std::to_string(i) + "_ADDRESS"]);
  }
  return cluster;
}

void NamespaceClusterDown(const std::string& dir) {
  RunCommand(ShellQuote(FindExecutable("plasma-cluster")) + " down --dir " + ShellQuote(dir));
}

Daemons NamespaceNodeDaemons(const std::string& dir, int rank) {
  std::string node = dir + "/node" + std::to_string(rank + 1);
  Daemons d;
  d.store_socket = node + "/store.sock";
  d.manager_socket = node + "/manager.sock";
  // Inside a namespace the sockets are not in our /proc/net/unix: use the pid files.
  d.store_pid = PidFromFile(node + "/store.pid");
  d.manager_pid = PidFromFile(node + "/manager.pid");
  return d;
}

int FreeTcpPort(const std::string& host) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  int port = 0;
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) == 1 &&
      bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    socklen_t length = sizeof(address);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port = ntohs(address.sin_port);
    }
  }
  close(fd);
  return port;
}

Result<std::string> ListenAddress(const std::string& listen, const std::string& interface,
                                  bool ranks_share_a_host) {
  if (!listen.empty()) return listen;
  if (interface.empty()) {
    if (ranks_share_a_host) return std::string("127.0.0.1");
    return Status::InvalidArgument(
        "the ranks run on several hosts: give --listen-interface IF (e.g. ib0 or eth0), the "
        "interface the managers reach each other on");
  }
  std::string found = Ipv4AddressOf(interface);
  if (found.empty()) {
    return Status::InvalidArgument("--listen-interface " + interface +
                                   ": no IPv4 address on this host's " + interface);
  }
  return found;
}

}  // namespace plasma::mpibench
