// plasma-mpi-bench: which transport plugin to run, for which object sizes,
// on this fabric. One rank per node; each rank starts (or attaches to) its
// node's store and manager, all register with one Redis, and the ranks fetch
// each other's objects in four patterns, per transport, object size and
// batch size. MPI only coordinates; the objects move through the managers.
//
//   mpirun -np N plasma-mpi-bench [options]     (plasma-mpi-bench --help)
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <set>

#include "bench/bench_util.h"
#include "bench/mpi/ceilings.h"
#include "bench/mpi/coordination.h"
#include "bench/mpi/node.h"
#include "bench/mpi/numa.h"
#include "bench/mpi/options.h"
#include "bench/mpi/report.h"
#include "bench/mpi/round.h"

using namespace plasma;
using namespace plasma::mpibench;

namespace {

// Rank 0 says it, on stderr (the progress channel; stdout has the table).
void Say(const World& world, const std::string& line) {
  if (world.rank == 0) std::cerr << "plasma-mpi-bench: " << line << std::endl;
}

// True if every rank's ok; otherwise rank 0 names each rank's problem.
bool EveryRankOk(const World& world, const Status& mine, const std::string& what) {
  std::vector<std::string> problems = GatherStrings(mine.ok() ? "" : mine.ToString());
  bool ok = AllAgree(mine.ok());
  for (size_t rank = 0; rank < problems.size(); ++rank) {
    if (!problems[rank].empty()) {
      Say(world, what + ": rank " + std::to_string(rank) + ": " + problems[rank]);
    }
  }
  return ok;
}

EnvironmentList EnvironmentFor(const Options& options, const std::string& transport) {
  EnvironmentList env;
  for (const auto& [name, assignment] : options.transport_env) {
    if (name == transport) env.push_back(assignment);
  }
  return env;
}

int ObjectsPerFetcher(const Options& options, uint64_t size) {
  return int(std::clamp<uint64_t>(options.budget / size, 3, uint64_t(options.max_objects)));
}

// Room for what one rank holds and fetches at the largest size at once.
uint64_t StoreCapacity(const Options& options, const std::vector<uint64_t>& sizes, int ranks) {
  if (options.capacity > 0) return options.capacity;
  uint64_t need = 0;
  for (uint64_t size : sizes) {
    need = std::max(need, 2 * (uint64_t(ObjectsPerFetcher(options, size)) + uint64_t(ranks)) * size);
  }
  return need + need / 8 + (64ull << 20);
}

// Touches every page of a fresh store's arena once, so that no measurement
// pays for first-touch page faults (a running store has them behind it).
void WarmArena(Client& client, uint64_t capacity) {
  ObjectId id = ObjectId::Random();
  auto buffer = client.Create(id, int64_t(capacity - capacity / 8), "", false);
  if (!buffer.ok()) return;
  std::fill(buffer->data(), buffer->data() + buffer->data_size(), uint8_t(0));
  buffer->Release();
  client.Abort(id);
}

struct Run {
  World world;
  Options options;
  std::vector<uint64_t> sizes;
  uint64_t capacity = 0;
  std::string listen;                 // this rank's address
  std::vector<std::string> addresses;  // every rank's
  std::string redis;
  std::string dir;                    // this rank's
  std::unique_ptr<LocalNode> node;    // when this rank starts its daemons
  bench::ChildProcess redis_server;   // rank 0, when it starts Redis
  std::vector<RoundRow> rows;
  std::vector<Ceiling> ceilings;
  bool failed = false;
};

// The transports to measure: those asked for (or all), less those that
// some rank cannot load, each skipped with the reason.
std::vector<std::string> UsableTransports(Run& run) {
  std::vector<std::string> wanted = run.options.transports;
  if (wanted.empty()) wanted = {"socket", "ucx", "verbs"};
  if (!run.options.store_socket.empty()) return wanted;  // attached: the daemons' own
  std::vector<std::string> usable;
  for (const std::string& transport : wanted) {
    std::string why = WhyTransportUnusable(transport, EnvironmentFor(run.options, transport));
    std::vector<std::string> reasons = GatherStrings(why);
    if (AllAgree(why.empty())) {
      usable.push_back(transport);
      continue;
    }
    for (size_t rank = 0; rank < reasons.size(); ++rank) {
      if (!reasons[rank].empty()) {
        Say(run.world, "transport " + transport + " cannot run on rank " + std::to_string(rank) +
                           ", skipped: " + reasons[rank]);
        break;
      }
    }
  }
  return usable;
}

// Brings up every node's manager with transport (with --netns the whole
// cluster); the daemons this rank measures, or an error on some rank.
Result<Daemons> NodesUp(Run& run, const std::string& transport) {
  const EnvironmentList env = EnvironmentFor(run.options, transport);
  if (run.options.netns) {
    std::string cluster_dir = run.options.work_dir + "/cluster";
    Status up;
    if (run.world.rank == 0) {
      auto cluster = NamespaceClusterUp(cluster_dir, run.world.ranks, transport, env, run.capacity,
                                        run.options.manager_args);
      up = cluster.status();
    }
    if (!EveryRankOk(run.world, up, "bringing the namespace cluster up")) {
      return Status::Unavailable("cluster did not come up");
    }
    NamespaceCluster cluster = ReadNamespaceCluster(cluster_dir);
    run.addresses = cluster.addresses;
    return NamespaceNodeDaemons(cluster_dir, run.world.rank);
  }
  if (!run.options.store_socket.empty()) {
    return AttachToDaemons(run.options.store_socket, run.options.manager_socket);
  }
  Status started = run.node->StartManager(transport, env, run.redis, run.listen,
                                          "rank" + std::to_string(run.world.rank),
                                          run.options.manager_args);
  if (!EveryRankOk(run.world, started, "starting the " + transport + " manager")) {
    run.node->StopManager();
    return Status::Unavailable("a manager did not start");
  }
  return run.node->daemons();
}

void NodesDown(Run& run) {
  Barrier();
  if (run.options.netns) {
    if (run.world.rank == 0) NamespaceClusterDown(run.options.work_dir + "/cluster");
  } else if (run.node) {
    run.node->StopManager();
  }
  Barrier();
}

void MeasureCeilingsNow(Run& run, const std::vector<std::string>& transports) {
  CeilingPlan plan;
  plan.sizes = run.sizes;
  plan.server_address = run.addresses.size() > 1 ? run.addresses[1] : "127.0.0.1";
  if (run.options.netns) {
    NamespaceCluster cluster = ReadNamespaceCluster(run.options.work_dir + "/cluster");
    if (cluster.namespaces.size() > 1) {
      plan.client_prefix = "ip netns exec " + cluster.namespaces[0] + " ";
      plan.server_prefix = "ip netns exec " + cluster.namespaces[1] + " ";
    }
  }
  plan.ucx = std::find(transports.begin(), transports.end(), "ucx") != transports.end();
  plan.ucx_env = EnvironmentFor(run.options, "ucx");
  run.ceilings = MeasureCeilings(run.world, plan);
}

void MeasureTransport(Run& run, const std::string& transport, bool with_ceilings,
                      const std::vector<std::string>& transports) {
  Say(run.world, "transport " + transport + ": bringing the managers up");
  auto daemons = NodesUp(run, transport);
  if (!daemons.ok()) {
    Say(run.world, "transport " + transport + " skipped: " + daemons.status().ToString());
    run.failed = true;
    return;
  }
  ConnectOptions connect;
  connect.manager_socket = daemons->manager_socket;
  auto client = Client::Connect(daemons->store_socket, connect);
  if (!EveryRankOk(run.world, client.status(), "connecting to the node's store")) {
    run.failed = true;
    NodesDown(run);
    return;
  }
  if (run.options.store_socket.empty()) WarmArena(**client, run.capacity);
  for (const std::string& pattern : run.options.patterns) {
    for (int batch : run.options.batches) {
      for (uint64_t size : run.sizes) {
        RoundSpec spec;
        spec.pattern = pattern;
        spec.size = size;
        spec.objects = ObjectsPerFetcher(run.options, size);
        // A batch never holds more than the round's objects; a smaller batch
        // setting that already measured the same thing is not repeated.
        spec.batch = std::min(batch, spec.objects);
        spec.batch_asked = batch;
        bool repeated = false;
        for (const RoundRow& row : run.rows) {
          repeated |= row.transport == transport && row.pattern == pattern &&
                      row.size == size && row.batch == spec.batch;
        }
        repeated = BroadcastString(repeated ? "1" : "0") == "1";
        if (repeated) continue;
        spec.timeout_ms = run.options.fetch_timeout_ms;
        std::vector<RoundRow> repeats;
        for (int repeat = 0; repeat < run.options.repeats; ++repeat) {
          RankOutcome outcome = RunRound(run.world, **client, *daemons, spec);
          std::vector<RankOutcome> outcomes = GatherOutcomes(outcome);
          if (run.world.rank == 0) repeats.push_back(Summarize(transport, spec, outcomes));
        }
        if (run.world.rank == 0) {
          RoundRow row = MedianRow(repeats);
          Say(run.world, ProgressLine(row));
          run.failed |= !row.ok();
          run.rows.push_back(row);
        }
      }
    }
  }
  client->reset();
  if (with_ceilings) MeasureCeilingsNow(run, transports);
  NodesDown(run);
}

int RunBenchmark(Run& run) {
  const World& world = run.world;
  const Options& options = run.options;
  char host[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  MPI_Get_processor_name(host, &length);
  std::vector<std::string> hosts = AllGatherStrings(std::string(host, size_t(length)));
  bool one_host = std::set<std::string>(hosts.begin(), hosts.end()).size() == 1;
  if (options.netns && !one_host) {
    Say(world, "--netns puts every node on this one machine; the ranks run on several hosts");
    return 2;
  }
  auto listen = ListenAddress(options.listen, options.listen_interface, one_host);
  if (!EveryRankOk(world, listen.status(), "the managers' address")) return 2;
  run.listen = *listen;
  run.addresses = AllGatherStrings(run.listen);

  std::string numa_line;
  if (options.bind_numa) {
    std::string device = options.numa_device.empty() ? DefaultNumaDevice(run.listen)
                                                     : options.numa_device;
    numa_line = "; " + BindNearDevice(device);
  }
  std::vector<std::string> placement = GatherStrings(
      "rank " + std::to_string(world.rank) + " on " + std::string(host, size_t(length)) + " (" +
      run.listen + "): " + DescribeBinding() + numa_line);
  for (const auto& line : placement) Say(world, line);

  run.sizes = bench::SizeLadder(options.min_size, options.max_size, 4);
  run.capacity = StoreCapacity(options, run.sizes, world.ranks);
  run.dir = options.work_dir + "/rank" + std::to_string(world.rank);
  bench::RunCommand("mkdir -p '" + run.dir + "'");

  std::vector<std::string> transports = UsableTransports(run);
  if (transports.empty()) {
    Say(world, "no transport can run here");
    return 1;
  }

  if (!options.netns && options.store_socket.empty()) {
    Status redis_ok;
    if (options.redis.empty() && world.rank == 0) {
      int port = FreeTcpPort(run.listen);
      auto redis = StartRedis(run.dir, run.listen, port);
      if (redis.ok()) {
        run.redis_server = std::move(*redis);
        run.redis = run.listen + ":" + std::to_string(port);
      }
      redis_ok = redis.status();
    }
    if (!EveryRankOk(world, redis_ok, "starting redis-server")) return 1;
    run.redis = options.redis.empty() ? BroadcastString(run.redis) : options.redis;
    auto node = LocalNode::StartStore(run.dir, run.capacity);
    if (!EveryRankOk(world, node.status(), "starting the store")) return 1;
    run.node = std::move(*node);
  }
  Say(world, std::to_string(world.ranks) + " ranks, transports " +
                 [&] {
                   std::string list;
                   for (const auto& t : transports) list += (list.empty() ? "" : ",") + t;
                   return list;
                 }() +
                 ", sizes " + bench::FormatBytes(run.sizes.front()) + " .. " +
                 bench::FormatBytes(run.sizes.back()) +
                 (options.store_socket.empty() ? ", stores of " + bench::FormatBytes(run.capacity)
                                               : ", attached to running daemons") +
                 (options.netns ? ", network namespaces" : ""));

  for (size_t i = 0; i < transports.size(); ++i) {
    MeasureTransport(run, transports[i], options.ceilings && i == 0, transports);
  }
  if (world.rank == 0) {
    PrintAndWriteResults(run.rows, run.ceilings, options.csv_path);
    if (!options.plot_path.empty()) {
      Status plotted = Plot(options.csv_path, options.plot_path);
      std::cout << (plotted.ok() ? "wrote " + options.plot_path : plotted.ToString()) << "\n";
      run.failed |= !plotted.ok();
    }
    if (run.failed) {
      std::cerr << "plasma-mpi-bench: some rounds failed or fetched wrong bytes (see above)\n";
    }
  }
  return AllAgree(!run.failed) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  World world = JoinWorld();
  int code = 0;
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    if (world.rank == 0) std::cout << UsageText();
  } else if (auto options = ParseOptions(argc, argv); !options.ok()) {
    if (world.rank == 0) std::cerr << "plasma-mpi-bench: " << options.status().message() << "\n" << UsageText();
    code = 2;
  } else if (!options->replot.empty()) {
    // The plot of an earlier run's CSV, e.g. one made in the guest.
    if (world.rank == 0) {
      Status plotted = Plot(options->replot, options->plot_path);
      std::cout << (plotted.ok() ? "wrote " + options->plot_path : plotted.ToString()) << "\n";
      code = plotted.ok() ? 0 : 1;
    }
  } else if (world.ranks < 2) {
    if (world.rank == 0) std::cerr << "plasma-mpi-bench: needs 2 ranks or more (mpirun -np 2 ...)\n";
    code = 2;
  } else {
    Run run;
    run.world = world;
    run.options = *options;
    code = RunBenchmark(run);
  }
  MPI_Finalize();
  return code;
}
