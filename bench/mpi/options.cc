#include "bench/mpi/options.h"

#include <cstdlib>
#include <sstream>

namespace plasma::mpibench {

namespace {

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::istringstream list(text);
  std::string part;
  while (std::getline(list, part, ',')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// "64K", "1M", "4096": bytes, or an error naming the option.
Result<uint64_t> ParseSize(const std::string& option, const std::string& text) {
  char* end = nullptr;
  uint64_t value = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str()) return Status::InvalidArgument(option + ": not a size: '" + text + "'");
  std::string suffix(end);
  if (suffix == "K" || suffix == "KiB") value <<= 10;
  else if (suffix == "M" || suffix == "MiB") value <<= 20;
  else if (suffix == "G" || suffix == "GiB") value <<= 30;
  else if (!suffix.empty()) return Status::InvalidArgument(option + ": not a size: '" + text + "'");
  if (value == 0) return Status::InvalidArgument(option + " must be above 0");
  return value;
}

bool KnownPattern(const std::string& name) {
  return name == "pairwise" || name == "many-to-one" || name == "one-to-many" ||
         name == "all-to-all";
}

}  // namespace

const char* UsageText() {
  return "usage: mpirun -np N plasma-mpi-bench [options]   (one rank per node)\n"
         "  --transports LIST      socket,ucx,verbs (default: every one usable here)\n"
         "  --patterns LIST        pairwise,many-to-one,one-to-many,all-to-all (default: all)\n"
         "  --min-size S --max-size S   object sizes, powers of 4 between (1K .. 256M)\n"
         "  --batches LIST         objects per Fetch (default 1,16)\n"
         "  --budget S             bytes each fetching rank pulls per size (default 256M)\n"
         "  --max-objects N        objects per fetching rank and size (default 200)\n"
         "  --repeats N            rounds per row, back to back; the row shows the median one\n"
         "  --redis HOST:PORT      use this Redis (default: rank 0 starts one)\n"
         "  --store SOCK --manager SOCK   attach to this node's running daemons\n"
         "  --listen HOST | --listen-interface IF   the managers' address\n"
         "  --capacity S           each store's size (default: what the sizes need)\n"
         "  --dir DIR              where daemons keep sockets and logs (/tmp/plasma-mpi-bench)\n"
         "  --netns                one machine: every node in its own network namespace\n"
         "  --manager-arg ARG      passed to every plasma-manager (repeatable)\n"
         "  --transport-env T:VAR=VALUE   environment for transport T's managers and ceilings\n"
         "  --bind-numa [--numa-device DEV]   bind each rank and its daemons to DEV's NUMA node\n"
         "  --no-ceilings          skip iperf3 / ucx_perftest / ib_*_bw\n"
         "  --fetch-timeout-ms MS  per Fetch (default 120000)\n"
         "  --csv FILE (plasma-mpi-bench.csv)   --plot FILE.png\n"
         "plasma-mpi-bench --replot FILE.csv --plot FILE.png   (plot an earlier run, no ranks)\n";
}

Result<Options> ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return Status::InvalidArgument(arg + " needs a value");
      return std::string(argv[++i]);
    };
    auto size_value = [&]() -> Result<uint64_t> {
      auto text = value();
      if (!text.ok()) return text.status();
      return ParseSize(arg, *text);
    };
    if (arg == "--transports") {
      std::string text;
      PLASMA_ASSIGN_OR_RETURN(text, value());
      options.transports = SplitCommas(text);
    } else if (arg == "--patterns") {
      std::string text;
      PLASMA_ASSIGN_OR_RETURN(text, value());
      options.patterns = SplitCommas(text);
      for (const auto& p : options.patterns) {
        if (!KnownPattern(p)) return Status::InvalidArgument("--patterns: unknown pattern '" + p + "'");
      }
    } else if (arg == "--min-size") {
      PLASMA_ASSIGN_OR_RETURN(options.min_size, size_value());
    } else if (arg == "--max-size") {
      PLASMA_ASSIGN_OR_RETURN(options.max_size, size_value());
    } else if (arg == "--budget") {
      PLASMA_ASSIGN_OR_RETURN(options.budget, size_value());
    } else if (arg == "--capacity") {
      PLASMA_ASSIGN_OR_RETURN(options.capacity, size_value());
    } else if (arg == "--batches") {
      std::string text;
      PLASMA_ASSIGN_OR_RETURN(text, value());
      options.batches.clear();
      for (const auto& b : SplitCommas(text)) {
        int batch = std::atoi(b.c_str());
        if (batch < 1) return Status::InvalidArgument("--batches: not a count: '" + b + "'");
        options.batches.push_back(batch);
      }
    } else if (arg == "--max-objects" || arg == "--fetch-timeout-ms" || arg == "--repeats") {
      std::string text;
      PLASMA_ASSIGN_OR_RETURN(text, value());
      long number = std::atol(text.c_str());
      if (number < 1) return Status::InvalidArgument(arg + " must be a positive number");
      if (arg == "--max-objects") options.max_objects = int(number);
      else if (arg == "--repeats") options.repeats = int(number);
      else options.fetch_timeout_ms = number;
    } else if (arg == "--redis") {
      PLASMA_ASSIGN_OR_RETURN(options.redis, value());
    } else if (arg == "--store") {
      PLASMA_ASSIGN_OR_RETURN(options.store_socket, value());
    } else if (arg == "--manager") {
      PLASMA_ASSIGN_OR_RETURN(options.manager_socket, value());
    } else if (arg == "--listen") {
      PLASMA_ASSIGN_OR_RETURN(options.listen, value());
    } else if (arg == "--listen-interface") {
      PLASMA_ASSIGN_OR_RETURN(options.listen_interface, value());
    } else if (arg == "--dir") {
      PLASMA_ASSIGN_OR_RETURN(options.work_dir, value());
    } else if (arg == "--netns") {
      options.netns = true;
    } else if (arg == "--manager-arg") {
      std::string text;
      PLASMA_ASSIGN_OR_RETURN(text, value());
      options.manager_args.push_back(text);
    } else if (arg == "--transport-env") {
      std::string text;
      PLASMA_ASSIGN_OR_RETURN(text, value());
      auto colon = text.find(':');
      if (colon == std::string::npos || text.find('=', colon) == std::string::npos) {
        return Status::InvalidArgument("--transport-env wants TRANSPORT:VAR=VALUE, not '" + text + "'");
      }
      options.transport_env.emplace_back(text.substr(0, colon), text.substr(colon + 1));
    } else if (arg == "--bind-numa") {
      options.bind_numa = true;
    } else if (arg == "--numa-device") {
      PLASMA_ASSIGN_OR_RETURN(options.numa_device, value());
      options.bind_numa = true;
    } else if (arg == "--no-ceilings") {
      options.ceilings = false;
    } else if (arg == "--csv") {
      PLASMA_ASSIGN_OR_RETURN(options.csv_path, value());
    } else if (arg == "--plot") {
      PLASMA_ASSIGN_OR_RETURN(options.plot_path, value());
    } else if (arg == "--replot") {
      PLASMA_ASSIGN_OR_RETURN(options.replot, value());
    } else {
      return Status::InvalidArgument("unknown argument '" + arg + "'");
    }
  }
  if (!options.replot.empty() && options.plot_path.empty()) {
    return Status::InvalidArgument("--replot CSV needs --plot FILE.png");
  }
  if (options.min_size > options.max_size) {
    return Status::InvalidArgument("--min-size is above --max-size");
  }
  if (options.store_socket.empty() != options.manager_socket.empty()) {
    return Status::InvalidArgument("--store and --manager go together (attach to both daemons)");
  }
  bool attached = !options.store_socket.empty();
  if (attached && options.transports.size() != 1) {
    return Status::InvalidArgument(
        "attached to running daemons, --transports names the one transport they use");
  }
  if (attached && options.netns) return Status::InvalidArgument("--netns starts its own daemons");
  if (attached && options.redis.empty()) {
    return Status::InvalidArgument("attached to running daemons, --redis names the Redis they use");
  }
  if (!options.listen.empty() && !options.listen_interface.empty()) {
    return Status::InvalidArgument("--listen and --listen-interface: one or the other");
  }
  return options;
}

}  // namespace plasma::mpibench
