// bench/remote_fetch: cross-node fetch throughput and latency through the
// manager, per transport plugin, for sizes 1 KiB .. 256 MiB, all measured in
// one run against
//   (a) Redis GET of the same bytes from a remote redis-server: one GET at a
//       time, and all GETs pipelined (as many in flight as a batch fetch);
//   (b) the raw transport: iperf3 with 1 MiB writes (one hot buffer), and a
//       plain TCP request/response moving the same cold bytes (raw_tcp.h).
// Every fetched object, every Redis value and every raw-TCP object is a
// distinct one, read once: nobody serves the same hot bytes twice.
// Per size, the one-at-a-time fetches, Redis GETs and raw-TCP requests are
// interleaved in up to 4 rounds (a block of each per round, pooled), and raw
// TCP is measured in every run: this VM's wake-up latency switches between
// modes every few hundred ms, so ratios are only meaningful between things
// measured at the same moments.
//
// Usage: remote_fetch [--transports socket,ucx] [--min-size BYTES] [--max-size BYTES]
//                     [--budget BYTES] [--csv FILE] [--plot FILE.png] [--netns] [--no-iperf]
//                     [--listen HOST]  (the managers' address, e.g. an RDMA device's)
//                     [--manager-arg ARG]...  (e.g. --manager-arg --verify-digests)
//                     [--store-arg ARG]...  (to every plasma-store-server: two-process
//                     runs only, e.g. --store-arg --busy-poll-us --store-arg 200)
//                     [--layouts two-process,one-process]  (default both: each node a
//                     store and a manager, or one manager hosting its store; a
//                     one-process row's transport reads e.g. "socket/one-process")
//                     [--keep-logs DIR]  (each run's daemon logs, copied to
//                     DIR/<transport>-<layout>/; with PLASMA_LOG_LEVEL=debug
//                     they hold every lookup's and every pull's phase times)
// (--raw-serve / --raw-fetch ADDRESS PORT SIZE COUNT: the raw-TCP baseline's
// two ends, run by the benchmark itself, in the nodes' namespaces with --netns.)
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "bench/raw_tcp.h"
#include "plasma/client/client.h"

using namespace plasma;
using namespace plasma::bench;

namespace {

// Transports the manager can load here, from its own listing.
std::vector<std::string> AvailableTransports() {
  std::vector<std::string> names;
  auto verdicts = ListTransports();
  for (const char* name : {"socket", "ucx", "verbs"}) {
    auto it = verdicts.find(name);
    if (it != verdicts.end() && it->second.empty()) names.push_back(name);
  }
  if (names.empty()) names.push_back("socket");
  return names;
}

struct Measurement {
  double seconds = 0;
  std::vector<double> latencies;
};

std::string Trimmed(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '\n'), text.end());
  return text;
}

// Where the two nodes run: command prefixes ("ip netns exec NS ") and the
// holder's address as the puller reaches it.
struct Placement {
  std::string holder_prefix, puller_prefix;
  std::string holder_address = "127.0.0.1";
};

Placement FindPlacement(bool netns) {
  Placement placement;
  if (!netns) return placement;
  std::string ns1 = Trimmed(RunCommand("ip netns list | grep -o 'plasma-[0-9a-z]*-n1' | head -1"));
  std::string ns2 = Trimmed(RunCommand("ip netns list | grep -o 'plasma-[0-9a-z]*-n2' | head -1"));
  placement.holder_prefix = "ip netns exec " + ns1 + " ";
  placement.puller_prefix = "ip netns exec " + ns2 + " ";
  placement.holder_address =
      Trimmed(RunCommand("ip -n " + ns1 + " -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"));
  return placement;
}

// Runs one block of the raw-TCP baseline: this binary as server next to the
// holder and as client next to the puller, `count` requests (the first one
// untimed, so count - 1 latencies come back).
Result<RawTcpResult> MeasureRawTcp(const Placement& placement, uint64_t size, uint64_t count) {
  const std::string self = FindExecutable("remote_fetch");
  const std::string args = placement.holder_address + " 5400 " + std::to_string(size) + " " +
                           std::to_string(count);
  pid_t server = fork();
  if (server < 0) return Status::FromErrno("fork", errno);
  if (server == 0) {
    // exec all the way down, so `server` is the serving process itself.
    std::string command = "exec " + placement.holder_prefix + self + " --raw-serve " + args;
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int code = 0;
  std::string out = RunCommand(placement.puller_prefix + self + " --raw-fetch " + args, &code);
  // A client that gave up leaves the server waiting in accept() or recv().
  if (code != 0) kill(server, SIGKILL);
  int status = 0;
  waitpid(server, &status, 0);
  if (code != 0) return Status::IOError("raw TCP baseline failed: " + out);
  // RawTcpMain's line: GB/s, median µs, summed seconds, n, n latencies.
  RawTcpResult result;
  std::istringstream line(out);
  size_t n = 0;
  line >> result.gigabytes_per_second >> result.median_microseconds >> result.seconds >> n;
  result.latencies.resize(n);
  for (double& latency : result.latencies) line >> latency;
  if (!line || n + 1 != count) {
    return Status::IOError("raw TCP client printed an unexpected line: " + out);
  }
  return result;
}

int RawTcpMain(const std::string& mode, int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: remote_fetch " << mode << " ADDRESS PORT SIZE COUNT\n";
    return 2;
  }
  std::string address = argv[2];
  int port = std::atoi(argv[3]);
  uint64_t size = std::strtoull(argv[4], nullptr, 10);
  uint64_t count = std::strtoull(argv[5], nullptr, 10);
  if (mode == "--raw-serve") {
    Status served = RawTcpServe(address, port, size, count);
    if (!served.ok()) std::cerr << "raw TCP server: " << served.ToString() << "\n";
    return served.ok() ? 0 : 1;
  }
  auto fetched = RawTcpFetch(address, port, size, count);
  if (!fetched.ok()) {
    std::cerr << "raw TCP client: " << fetched.status().ToString() << "\n";
    return 1;
  }
  // One line, parsed by MeasureRawTcp: every latency, so blocks can be pooled.
  std::cout << std::setprecision(9) << fetched->gigabytes_per_second << " "
            << fetched->median_microseconds << " " << fetched->seconds << " "
            << fetched->latencies.size();
  for (double latency : fetched->latencies) std::cout << " " << latency;
  std::cout << "\n";
  return 0;
}

// A one-key command ("GET %b", "DEL %b").
redisReply* Command(redisContext* redis, const char* format, const std::string& key) {
  return static_cast<redisReply*>(redisCommand(redis, format, key.data(), key.size()));
}

// Redis side of one size: `keys` distinct keys holding the same bytes, set
// once (RedisSetAll), then read one GET at a time in blocks (RedisGets) and
// pipelined (RedisPipelinedGets), then deleted (RedisDelAll).
bool IsValue(redisReply* reply, uint64_t size) {
  return reply && reply->type == REDIS_REPLY_STRING && uint64_t(reply->len) == size;
}

bool RedisSetAll(redisContext* redis, const std::vector<std::string>& keys, const uint8_t* bytes,
                 uint64_t size) {
  for (const auto& key : keys) {
    redisAppendCommand(redis, "SET %b %b", key.data(), key.size(), bytes, size_t(size));
  }
  bool ok = true;
  for (size_t i = 0; i < keys.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(redis, &reply) != REDIS_OK) return false;
    if (static_cast<redisReply*>(reply)->type == REDIS_REPLY_ERROR) ok = false;
    freeReplyObject(reply);
  }
  return ok;
}

// GETs keys [begin, end) one at a time; each one's latency goes into `single`
// (if given: the warm-up GET passes none).
bool RedisGets(redisContext* redis, const std::vector<std::string>& keys, size_t begin,
               size_t end, uint64_t size, Measurement* single) {
  for (size_t i = begin; i < end; ++i) {
    double start = NowSeconds();
    redisReply* reply = Command(redis, "GET %b", keys[i]);
    double elapsed = NowSeconds() - start;
    bool ok = IsValue(reply, size);
    if (reply) freeReplyObject(reply);
    if (!ok) return false;
    if (single) {
      single->seconds += elapsed;
      single->latencies.push_back(elapsed);
    }
  }
  return true;
}

// Every GET of keys [begin, end) written before any reply is read.
bool RedisPipelinedGets(redisContext* redis, const std::vector<std::string>& keys, size_t begin,
                        size_t end, uint64_t size, double* seconds) {
  bool ok = true;
  double start = NowSeconds();
  for (size_t i = begin; i < end; ++i) {
    redisAppendCommand(redis, "GET %b", keys[i].data(), keys[i].size());
  }
  for (size_t i = begin; i < end; ++i) {
    void* reply = nullptr;
    if (redisGetReply(redis, &reply) != REDIS_OK) return false;
    ok = ok && IsValue(static_cast<redisReply*>(reply), size);
    freeReplyObject(reply);
  }
  *seconds = NowSeconds() - start;
  return ok;
}

void RedisDelAll(redisContext* redis, const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    if (redisReply* reply = Command(redis, "DEL %b", key)) freeReplyObject(reply);
  }
}

// iperf3 between the two node addresses (or loopback), 1 MiB writes: the wire's ceiling.
double IperfGBps(const std::string& server_prefix, const std::string& client_prefix,
                 const std::string& address) {
  std::string pid_file = "/tmp/remote_fetch_iperf.pid";
  RunCommand(server_prefix + "iperf3 -s -1 -D -B " + address + " -p 5399 -I " + pid_file);
  RunCommand("sleep 0.3");
  std::string json = RunCommand(client_prefix + "iperf3 -c " + address + " -p 5399 -l 1M -t 3 -J");
  RunCommand("kill $(cat " + pid_file + " 2>/dev/null) 2>/dev/null; rm -f " + pid_file);
  return Iperf3ReceivedGBps(json);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string(argv[1]) == "--raw-serve" || std::string(argv[1]) == "--raw-fetch")) {
    return RawTcpMain(argv[1], argc, argv);
  }
  std::string csv_path = "remote_fetch.csv";
  std::string plot_path;
  uint64_t min_size = 1024;
  uint64_t max_size = 256ull << 20;
  uint64_t budget = 1ull << 30;
  bool netns = false;
  bool iperf = true;
  std::vector<std::string> transports;
  std::vector<std::string> layouts = {"two-process", "one-process"};
  std::string manager_args;  // passed to every plasma-manager through plasma-cluster
  std::string store_args;    // to every plasma-store-server (two-process runs)
  std::string listen_args;   // the managers' address (plasma-cluster --listen)
  std::string keep_logs;     // where each run's daemon logs are copied ("" = nowhere)
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
    } else if (arg == "--listen" && i + 1 < argc) {
      listen_args = std::string(" --listen ") + argv[++i];
    } else if (arg == "--manager-arg" && i + 1 < argc) {
      manager_args += std::string(" --manager-arg ") + argv[++i];
    } else if (arg == "--store-arg" && i + 1 < argc) {
      store_args += std::string(" --store-arg ") + argv[++i];
    } else if (arg == "--keep-logs" && i + 1 < argc) {
      keep_logs = argv[++i];
    } else if (arg == "--layouts" && i + 1 < argc) {
      layouts.clear();
      std::istringstream list(argv[++i]);
      std::string name;
      while (std::getline(list, name, ',')) layouts.push_back(name);
    } else if (arg == "--transports" && i + 1 < argc) {
      std::istringstream list(argv[++i]);
      std::string name;
      while (std::getline(list, name, ',')) transports.push_back(name);
    } else {
      std::cerr << "usage: remote_fetch [--transports a,b] [--min-size BYTES] [--max-size BYTES] "
                   "[--budget BYTES] [--csv FILE] [--plot FILE.png] [--netns] [--no-iperf] "
                   "[--listen HOST] [--manager-arg ARG]... [--store-arg ARG]... "
                   "[--layouts two-process,one-process] "
                   "[--keep-logs DIR]\n";
      return 2;
    }
  }
  if (transports.empty()) transports = AvailableTransports();
  // One run per transport and node layout; a row names both.
  struct Run {
    std::string transport, layout, label;
  };
  std::vector<Run> runs;
  for (const std::string& transport : transports) {
    for (const std::string& layout : layouts) {
      runs.push_back({transport, layout,
                      layout == "two-process" ? transport : transport + "/" + layout});
    }
  }
  std::vector<uint64_t> sizes = SizeLadder(min_size, max_size, 4);

  Table table({"size_bytes", "transport", "fetch_GBps", "fetch_median_us", "batch_GBps",
               "redis_GBps", "redis_median_us", "redis_pipelined_GBps", "raw_tcp_GBps",
               "raw_tcp_median_us", "fetch_over_redis", "batch_over_redis_best",
               "fetch_over_raw_tcp", "fetch_over_iperf3"});
  std::string cluster = FindExecutable("plasma-cluster");
  std::vector<uint8_t> source(max_size);
  for (size_t i = 0; i < source.size(); ++i) source[i] = uint8_t(i * 2654435761u >> 11);
  double plotted_iperf_gbps = 0;  // the first transport run's, drawn as a line
  bool any_failed = false;        // a size or a transport missing from the table

  for (const Run& run : runs) {
    const std::string& transport = run.label;
    TempDir dir;
    // Room for every object of a size at once (count + 1 of them: up to
    // budget + size bytes, or 4 of the largest), so the store never evicts
    // an object the benchmark is about to fetch.
    uint64_t capacity = std::max<uint64_t>(budget + max_size, 4 * max_size) + (64 << 20);
    int code;
    std::string out = RunCommand("PLASMA_TRANSPORT=" + run.transport + " " + cluster +
                              " up --layout " + run.layout + " --nodes 2 --dir " +
                              dir.path() + "/cluster --capacity " + std::to_string(capacity) +
                              (netns ? " --netns" : "") + listen_args + manager_args +
                              (run.layout == "two-process" ? store_args : std::string()),
                          &code);
    if (code != 0) {
      std::cerr << "remote_fetch: cluster with transport " << transport << " failed:\n" << out;
      any_failed = true;
      continue;
    }
    std::string cdir = dir.path() + "/cluster";
    auto env = ReadKeyValueFile(cdir + "/cluster.env");
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
      RunCommand(cluster + " down --dir " + cdir);
      return 1;
    }
    Placement placement = FindPlacement(netns);
    double iperf_gbps = 0;
    if (iperf) {
      iperf_gbps = IperfGBps(placement.holder_prefix, placement.puller_prefix,
                             placement.holder_address);
    }
    for (uint64_t size : sizes) {
      size_t count = size_t(std::min<uint64_t>(std::max<uint64_t>(budget / size, 3), 300));
      std::cerr << "remote_fetch: " << transport << ", " << FormatBytes(size) << " x " << count
                << "\n";
      // One more object than is timed: the first fetch of a size warms up
      // (the receiving arena's fresh pages fault in once: >1 s for 256 MiB
      // here), so the table shows the steady state of a running store.
      std::vector<ObjectId> ids(count + 1);
      std::vector<std::string> keys;
      for (size_t i = 0; i < ids.size(); ++i) {
        keys.push_back("remote_fetch:" + std::to_string(size) + ":" + std::to_string(i));
      }
      Measurement fetch, get, raw;
      double batch_seconds = 0;
      double pipelined_seconds = 0;
      bool failed = false;      // a fetch or Redis failed: no row for this size
      bool raw_failed = false;  // the row shows n/a for raw TCP
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
      auto redis_failed = [&] {
        std::cerr << "remote_fetch: Redis failed at size " << size << "\n";
        failed = true;
      };
      // Redis holds the same bytes under keys[i] as the holder under ids[i].
      if (!failed && !RedisSetAll(redis, keys, source.data(), size)) redis_failed();
      // One fetch at a time; each fetched object is deleted again, so the
      // puller's arena block is reused (warm) as it would be in a long run.
      auto fetch_one = [&](size_t i, Measurement* into) {
        double start = NowSeconds();
        Status s = (*puller)->Fetch({ids[i]}, 120000);
        double elapsed = NowSeconds() - start;
        if (!s.ok()) {
          std::cerr << "remote_fetch: " << transport << " size " << size << ": " << s.ToString() << "\n";
          return false;
        }
        if (into) {
          into->seconds += elapsed;
          into->latencies.push_back(elapsed);
        }
        (*puller)->Delete(ids[i]);
        return true;
      };
      // Rounds: objects/keys 1..count in `rounds` contiguous slices; per slice
      // a block of fetches, then as many Redis GETs, then as many raw-TCP
      // requests, so all three see the same moments of this VM's bimodal
      // wake-up latency. Round 0 starts with the untimed fetch and GET of
      // object/key 0; every raw-TCP block warms up with one untimed request.
      const size_t rounds = std::min<size_t>(4, count);
      for (size_t round = 0; round < rounds && !failed; ++round) {
        size_t begin = 1 + count * round / rounds;
        size_t end = 1 + count * (round + 1) / rounds;
        if (round == 0 && !fetch_one(0, nullptr)) failed = true;
        for (size_t i = begin; i < end && !failed; ++i) {
          if (!fetch_one(i, &fetch)) failed = true;
        }
        if (failed) break;
        if ((round == 0 && !RedisGets(redis, keys, 0, 1, size, nullptr)) ||
            !RedisGets(redis, keys, begin, end, size, &get)) {
          redis_failed();
          break;
        }
        if (raw_failed) continue;
        auto block = MeasureRawTcp(placement, size, end - begin + 1);
        if (block.ok()) {
          raw.seconds += block->seconds;
          raw.latencies.insert(raw.latencies.end(), block->latencies.begin(),
                               block->latencies.end());
        } else {
          std::cerr << "remote_fetch: " << block.status().ToString() << "\n";
          raw_failed = true;
          any_failed = true;
        }
      }
      // All but the first in one Fetch: the manager pulls them concurrently.
      // Twice: the first round faults the puller's arena blocks in.
      std::vector<ObjectId> batch(ids.begin() + 1, ids.end());
      for (int round = 0; round < 2 && !failed; ++round) {
        double start = NowSeconds();
        Status s = (*puller)->Fetch(batch, 300000);
        batch_seconds = NowSeconds() - start;
        if (!s.ok()) {
          std::cerr << "remote_fetch: " << transport << " batch of " << size << ": " << s.ToString() << "\n";
          failed = true;
        }
        for (const auto& id : batch) (*puller)->Delete(id);
      }
      for (const auto& id : ids) (*holder)->Delete(id);
      // Every GET but the warm-up's pipelined.
      if (!failed && !RedisPipelinedGets(redis, keys, 1, keys.size(), size, &pipelined_seconds)) {
        redis_failed();
      }
      RedisDelAll(redis, keys);
      if (failed) {
        any_failed = true;
        continue;
      }
      double fetch_gbps = double(size) * count / fetch.seconds / 1e9;
      double batch_gbps = double(size) * count / batch_seconds / 1e9;
      double redis_gbps = double(size) * count / get.seconds / 1e9;
      double pipelined_gbps = double(size) * count / pipelined_seconds / 1e9;
      bool have_raw = !raw_failed && !raw.latencies.empty();
      double raw_gbps = have_raw ? double(size) * double(raw.latencies.size()) / raw.seconds / 1e9 : 0;
      table.AddRow({std::to_string(size), transport, FormatDouble(fetch_gbps, 3),
                    FormatDouble(Percentile(fetch.latencies, 0.5) * 1e6, 0), FormatDouble(batch_gbps, 3),
                    FormatDouble(redis_gbps, 3), FormatDouble(Percentile(get.latencies, 0.5) * 1e6, 0),
                    FormatDouble(pipelined_gbps, 3),
                    have_raw ? FormatDouble(raw_gbps, 3) : "n/a",
                    have_raw ? FormatDouble(Percentile(raw.latencies, 0.5) * 1e6, 0) : "n/a",
                    FormatDouble(fetch_gbps / redis_gbps, 2),
                    // Redis at its best for the size: one GET at a time or pipelined.
                    FormatDouble(batch_gbps / std::max(redis_gbps, pipelined_gbps), 2),
                    have_raw ? FormatDouble(fetch_gbps / raw_gbps, 2) : "n/a",
                    iperf_gbps > 0 ? FormatDouble(fetch_gbps / iperf_gbps, 2) : "n/a"});
    }
    redisFree(redis);
    puller->reset();
    holder->reset();
    if (!keep_logs.empty()) {
      std::string kept = keep_logs + "/" + run.transport + "-" + run.layout;
      RunCommand("mkdir -p " + kept + " && for n in " + cdir + "/node*; do "
                 "for f in \"$n\"/*.log; do [ -e \"$f\" ] && cp \"$f\" " + kept +
                 "/$(basename \"$n\")-$(basename \"$f\"); done; done");
    }
    RunCommand(cluster + " down --dir " + cdir);
    if (plotted_iperf_gbps == 0) plotted_iperf_gbps = iperf_gbps;
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
    std::string script = "set terminal pngcairo size 1000,600 font ',10' noenhanced\n"
                         "set output '" + plot_path + "'\n"
                         "set datafile separator ','\n"
                         "set logscale x 2\nset logscale y 10\nset grid\nset key bottom right\n"
                         "set format x '%.0b%B'\n"
                         "set xlabel 'object size (bytes)'\nset ylabel 'GB/s'\n"
                         "set title 'remote_fetch: cross-node fetch vs Redis GET and raw TCP, same run'\nplot ";
    auto column = [&](const std::string& transport, int index, const std::string& title) {
      return "'" + csv_path + "' using 1:(strcol(2) eq '" + transport + "' ? $" +
             std::to_string(index) + " : 1/0) with linespoints title '" + title + "', ";
    };
    for (const Run& run : runs) {
      const std::string& transport = run.label;
      script += column(transport, 3, "fetch, one at a time (" + transport + " plugin)");
      script += column(transport, 5, "fetch, batch in flight (" + transport + " plugin)");
    }
    script += column(runs[0].label, 6, "Redis GET, one at a time");
    script += column(runs[0].label, 8, "Redis GET, pipelined");
    script += column(runs[0].label, 9, "raw TCP, same cold bytes, one at a time");
    if (plotted_iperf_gbps > 0) {
      script += FormatDouble(plotted_iperf_gbps, 3) +
                " with lines dashtype 2 title 'iperf3 -l 1M (one hot 1 MiB buffer)', ";
    }
    script.resize(script.size() - 2);
    script += "\n";
    std::string path = "/tmp/remote_fetch_plot.gp";
    std::ofstream(path) << script;
    if (std::system(("gnuplot " + path).c_str()) != 0) {
      std::cerr << "remote_fetch: gnuplot failed\n";
      return 1;
    }
    std::cout << "wrote " << plot_path << "\n";
  }
  if (any_failed) {
    std::cerr << "remote_fetch: some measurements failed (see above); the table lacks them\n";
    return 1;
  }
  return 0;
}
