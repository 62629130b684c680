// plasma-mpi-bench's command line.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "plasma/common/status.h"

namespace plasma::mpibench {

struct Options {
  std::vector<std::string> transports;  // empty: every one the manager can load here
  std::vector<std::string> patterns = {"pairwise", "many-to-one", "one-to-many", "all-to-all"};
  uint64_t min_size = 1024;
  uint64_t max_size = 256ull << 20;
  std::vector<int> batches = {1, 16};  // objects per Fetch
  uint64_t budget = 256ull << 20;      // bytes each fetching rank pulls per size
  int max_objects = 200;               // per fetching rank and size
  int repeats = 1;                     // rounds per row; the row is the median one
  int64_t fetch_timeout_ms = 120000;

  std::string redis;                 // HOST:PORT; empty: rank 0 starts one
  std::string store_socket;          // attach to a running store instead of starting one
  std::string manager_socket;        // ... and to its manager
  std::string listen;                // the managers' address (every rank)
  std::string listen_interface;      // or: each rank's address on this interface
  uint64_t capacity = 0;             // store bytes; 0: what the sizes need
  std::string work_dir = "/tmp/plasma-mpi-bench";
  bool netns = false;                // one machine: nodes in network namespaces
  std::vector<std::string> manager_args;
  // Environment for one transport's managers and ceilings only, e.g.
  // ucx:UCX_TLS=rc_verbs,self (MPI itself keeps the caller's environment).
  std::vector<std::pair<std::string, std::string>> transport_env;  // (transport, VAR=VALUE)

  bool bind_numa = false;
  std::string numa_device;           // default: the device the transport uses
  bool ceilings = true;
  std::string csv_path = "plasma-mpi-bench.csv";
  std::string plot_path;             // PNG; empty: no plot
  std::string replot;                // only plot this earlier run's CSV (needs --plot)
};

// Parses argv; a bad argument is an InvalidArgument naming it.
Result<Options> ParseOptions(int argc, char** argv);
const char* UsageText();

}  // namespace plasma::mpibench
