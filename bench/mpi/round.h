// One measurement: a pattern, an object size and a batch size, on every rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/mpi/coordination.h"
#include "bench/mpi/node.h"
#include "plasma/client/client.h"

namespace plasma::mpibench {

struct RoundSpec {
  std::string pattern;
  uint64_t size = 0;
  int batch = 1;             // objects per Fetch
  int batch_asked = 1;       // the --batches value (batch is at most the objects)
  int objects = 0;           // timed objects per fetching rank
  int64_t timeout_ms = 0;    // per Fetch
};

// What one rank saw in a round.
struct RankOutcome {
  bool fetches = false, holds = false;
  double bytes = 0;                // fetched in the timed loop
  double seconds = 0;              // the timed loop's wall time
  std::vector<double> latencies;   // seconds per Fetch call
  double client_cpu = 0;           // this process's CPU in the timed loop (fetchers)
  double daemon_cpu = -1;          // its store's and manager's CPU; < 0: unknown
  int wrong_objects = 0;           // fetched but missing, resized or with a wrong byte
  std::string error;               // the first thing that went wrong, if anything
};

// Holders create and fill the objects, ids travel by MPI, one untimed
// Fetch per rank opens the connections, then the timed Fetch calls; every
// fetched byte is checked afterwards and every object deleted again.
RankOutcome RunRound(const World& world, Client& client, const Daemons& daemons,
                     const RoundSpec& spec);

// Rank 0 gets every rank's outcome (the others get an empty vector).
std::vector<RankOutcome> GatherOutcomes(const RankOutcome& mine);

}  // namespace plasma::mpibench
