// bench/remote_fetch: cross-node fetch throughput and latency through the
// manager, per transport plugin, for sizes 1 KiB .. 256 MiB, against (a) a
// Redis GET of the same bytes from a remote redis-server and (b) the raw
// transport (iperf3 with 1 MiB writes), all measured in one run.
//
// Usage: remote_fetch [--transports socket,ucx] [--min-size BYTES] [--max-size BYTES] [--budget BYTES]
//                     [--csv FILE] [--plot FILE.png] [--netns] [--no-iperf]
#include <hiredis/hiredis.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "plasma/client/client.h"

using namespace plasma;
using namespace plasma::bench;

namespace {

std::string Run(const std::string& command, int* code = nullptr) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return "";
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  int status = pclose(pipe);
  if (code) *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

std::map<std::string, std::string> ReadEnv(const std::string& path) {
  std::map<std::string, std::string> env;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Transports the manager can load here, from its own listing.
std::vector<std::string> AvailableTransports() {
  std::string listing = Run(FindExecutable("plasma-manager") + " --list-transports");
  std::vector<std::string> names;
  std::istringstream lines(listing);
  std::string line;
  while (std::getline(lines, line)) {
    // Lines look like "socket  0.1.0  ok  ..." ; take usable ones.
    std::istringstream words(line);
    std::string name;
    words >> name;
    if (name.empty() || line.find("unusable") != std::string::npos ||
        line.find("error") != std::string::npos) {
      continue;
    }
    if (name == "socket" || name == "ucx" || name == "verbs") names.push_back(name);
  }
  if (names.empty()) names.push_back("socket");
  return names;
}

struct Measurement {
  double seconds = 0;
  std::vector<double> latencies;
};

// iperf3 between the two node addresses (or loopback), 1 MiB writes: the wire's ceiling.
double IperfGBps(const std::string& server_prefix, const std::string& client_prefix,
                 const std::string& address) {
  std::string pid_file = "/tmp/remote_fetch_iperf.pid";
  Run(server_prefix + "iperf3 -s -1 -D -B " + address + " -p 5399 -I " + pid_file);
  Run("sleep 0.3");
  std::string json = Run(client_prefix + "iperf3 -c " + address + " -p 5399 -l 1M -t 3 -J");
  Run("kill $(cat " + pid_file + " 2>/dev/null) 2>/dev/null; rm -f " + pid_file);
  auto end = json.find("\"sum_received\"");
  if (end == std::string::npos) return 0;
  auto bps = json.find("\"bits_per_second\"", end);
  if (bps == std::string::npos) return 0;
  return std::strtod(json.c_str() + json.find(':', bps) + 1, nullptr) / 8 / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string csv_path = "remote_fetch.csv";
  std::string plot_path;
  uint64_t min_size = 1024;
  uint64_t max_size = 256ull << 20;
  uint64_t budget = 1ull << 30;
  bool netns = false;
  bool iperf = true;
  std::vector<std::string> transports;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--csv" && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (arg == "--plot" && i + 1 < argc) {
      plot_path = argv[++i];
    } else if (arg == "--min-size" && i + 1 < argc) {
      min_size = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--max-size" && i + 1 < argc) {
      max_size = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--budget" && i + 1 < argc) {
      budget = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--netns") {
      netns = true;
    } else if (arg == "--no-iperf") {
      iperf = false;
    } else if (arg == "--transports" && i + 1 < argc) {
      std::istringstream list(argv[++i]);
      std::string name;
      while (std::getline(list, name, ',')) transports.push_back(name);
    } else {
      std::cerr << "usage: remote_fetch [--transports a,b] [--min-size BYTES] [--max-size BYTES] [--budget BYTES] "
                   "[--csv FILE] [--plot FILE.png] [--netns] [--no-iperf]\n";
      return 2;
    }
  }
  if (transports.empty()) transports = AvailableTransports();
  std::vector<uint64_t> sizes = SizeLadder(min_size, max_size, 4);

  Table table({"size_bytes", "transport", "fetch_GBps", "fetch_median_us", "redis_GBps",
               "redis_median_us", "fetch_over_redis", "fetch_over_iperf3"});
  std::string cluster = FindExecutable("plasma-cluster");
  std::vector<uint8_t> source(max_size);
  for (size_t i = 0; i < source.size(); ++i) source[i] = uint8_t(i * 2654435761u >> 11);

  for (const std::string& transport : transports) {
    TempDir dir;
    uint64_t capacity = std::max<uint64_t>(budget, 2 * max_size) + (256 << 20);
    int code;
    std::string out = Run("PLASMA_TRANSPORT=" + transport + " " + cluster + " up --nodes 2 --dir " +
                              dir.path() + "/cluster --capacity " + std::to_string(capacity) +
                              (netns ? " --netns" : ""),
                          &code);
    if (code != 0) {
      std::cerr << "remote_fetch: cluster with transport " << transport << " failed:\n" << out;
      continue;
    }
    std::string cdir = dir.path() + "/cluster";
    auto env = ReadEnv(cdir + "/cluster.env");
    std::string redis_address = env["REDIS_ADDRESS"];
    std::string redis_host = redis_address.substr(0, redis_address.rfind(':'));
    ConnectOptions options;
    options.manager_socket = cdir + "/node2/manager.sock";
    auto holder = Client::Connect(cdir + "/node1/store.sock");
    auto puller = Client::Connect(cdir + "/node2/store.sock", options);
    // The cluster's Redis doubles as the "remote redis-server": in --netns
    // mode it sits across the veth pair from node 2, like node 1 does.
    redisContext* redis = redisConnect(redis_host.c_str(),
                                       std::atoi(redis_address.substr(redis_address.rfind(':') + 1).c_str()));
    if (!holder.ok() || !puller.ok() || redis == nullptr || redis->err) {
      std::cerr << "remote_fetch: cannot connect to the cluster\n";
      Run(cluster + " down --dir " + cdir);
      return 1;
    }
    double iperf_gbps = 0;
    if (iperf) {
      std::string ns1 = netns ? "ip netns exec " + Run("ip netns list | grep -o 'plasma-[0-9a-z]*-n1' | head -1") : "";
      std::string ns2 = netns ? "ip netns exec " + Run("ip netns list | grep -o 'plasma-[0-9a-z]*-n2' | head -1") : "";
      ns1.erase(std::remove(ns1.begin(), ns1.end(), '\n'), ns1.end());
      ns2.erase(std::remove(ns2.begin(), ns2.end(), '\n'), ns2.end());
      std::string address = netns ? Run("ip -n " + ns1.substr(14) + " -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1") : "127.0.0.1";
      address.erase(std::remove(address.begin(), address.end(), '\n'), address.end());
      iperf_gbps = IperfGBps(ns1 + " ", ns2 + " ", address);
    }
    for (uint64_t size : sizes) {
      size_t count = size_t(std::min<uint64_t>(std::max<uint64_t>(budget / size, 3), 300));
      // One more object than is timed: the first fetch of a size warms up
      // (the receiving arena's fresh pages fault in once: >1 s for 256 MiB
      // here), so the table shows the steady state of a running store.
      std::vector<ObjectId> ids(count + 1);
      Measurement fetch, get;
      bool failed = false;
      for (auto& id : ids) {
        id = ObjectId::Random();
        auto buffer = (*holder)->Create(id, int64_t(size));
        if (!buffer.ok()) {
          failed = true;
          break;
        }
        std::memcpy(buffer->data(), source.data(), size);
        if (!(*holder)->Seal(id).ok()) {
          failed = true;
          break;
        }
      }
      for (size_t i = 0; i < ids.size() && !failed; ++i) {
        const ObjectId& id = ids[i];
        double start = NowSeconds();
        Status s = (*puller)->Fetch({id}, 120000);
        double elapsed = NowSeconds() - start;
        if (!s.ok()) {
          std::cerr << "remote_fetch: " << transport << " size " << size << ": " << s.ToString() << "\n";
          failed = true;
          break;
        }
        if (i > 0) {
          fetch.seconds += elapsed;
          fetch.latencies.push_back(elapsed);
        }
        (*puller)->Delete(id);  // keep node 2's store from filling up
      }
      for (const auto& id : ids) (*holder)->Delete(id);
      if (failed) continue;
      // Redis: SET (untimed), then GET of the same bytes, timed.
      std::string key = "remote_fetch:" + std::to_string(size);
      auto* set = static_cast<redisReply*>(
          redisCommand(redis, "SET %b %b", key.data(), key.size(), source.data(), size));
      if (set) freeReplyObject(set);
      for (size_t i = 0; i < count + 1; ++i) {  // the first GET warms up too
        double start = NowSeconds();
        auto* reply = static_cast<redisReply*>(redisCommand(redis, "GET %b", key.data(), key.size()));
        double elapsed = NowSeconds() - start;
        bool ok = reply && reply->type == REDIS_REPLY_STRING && size_t(reply->len) == size;
        if (reply) freeReplyObject(reply);
        if (!ok) {
          failed = true;
          break;
        }
        if (i == 0) continue;
        get.seconds += elapsed;
        get.latencies.push_back(elapsed);
      }
      auto* del = static_cast<redisReply*>(redisCommand(redis, "DEL %b", key.data(), key.size()));
      if (del) freeReplyObject(del);
      if (failed) continue;
      double fetch_gbps = double(size) * count / fetch.seconds / 1e9;
      double redis_gbps = double(size) * count / get.seconds / 1e9;
      table.AddRow({std::to_string(size), transport, FormatDouble(fetch_gbps, 3),
                    FormatDouble(Median(fetch.latencies) * 1e6, 0), FormatDouble(redis_gbps, 3),
                    FormatDouble(Median(get.latencies) * 1e6, 0),
                    FormatDouble(fetch_gbps / redis_gbps, 2),
                    iperf_gbps > 0 ? FormatDouble(fetch_gbps / iperf_gbps, 2) : "n/a"});
    }
    redisFree(redis);
    puller->reset();
    holder->reset();
    Run(cluster + " down --dir " + cdir);
    if (iperf_gbps > 0) {
      std::cout << "iperf3 (-l 1M) " << (netns ? "across namespaces" : "on loopback") << ": "
                << FormatDouble(iperf_gbps, 3) << " GB/s (transport " << transport << " run)\n";
    }
  }
  table.Print();
  Status written = table.WriteCsv(csv_path);
  if (!written.ok()) {
    std::cerr << "remote_fetch: " << written.ToString() << "\n";
    return 1;
  }
  std::cout << "wrote " << csv_path << "\n";
  if (!plot_path.empty()) {
    std::string script = "set terminal pngcairo size 900,520 font ',10' noenhanced\n"
                         "set output '" + plot_path + "'\n"
                         "set datafile separator ','\n"
                         "set logscale x 2\nset logscale y 10\nset grid\nset key top left\n"
                         "set format x '%.0b%B'\n"
                         "set xlabel 'object size (bytes)'\nset ylabel 'GB/s'\n"
                         "set title 'remote_fetch: cross-node fetch vs Redis GET, same run'\nplot ";
    for (const std::string& transport : transports) {
      script += "'" + csv_path + "' using 1:(strcol(2) eq '" + transport +
                "' ? $3 : 1/0) with linespoints title 'fetch via manager, " + transport +
                " plugin', ";
    }
    script += "'" + csv_path + "' using 1:(strcol(2) eq '" + transports[0] +
              "' ? $5 : 1/0) with linespoints title 'Redis GET (hiredis, TCP)'\n";
    std::string path = "/tmp/remote_fetch_plot.gp";
    std::ofstream(path) << script;
    if (std::system(("gnuplot " + path).c_str()) != 0) {
      std::cerr << "remote_fetch: gnuplot failed\n";
      return 1;
    }
    std::cout << "wrote " << plot_path << "\n";
  }
  return 0;
}
