// The raw transports under the plugins, measured between rank 0 (client)
// and rank 1 (server) in the same run: iperf3 (TCP), ucx_perftest (UCX with
// the ucx managers' environment) and perftest's ib_read_bw / ib_send_bw
// where an RDMA device exists. A tool that cannot run here is skipped with
// a line saying why.
#pragma once

#include <string>
#include <vector>

#include "bench/mpi/coordination.h"
#include "bench/mpi/node.h"
#include "bench/mpi/report.h"

namespace plasma::mpibench {

struct CeilingPlan {
  std::vector<uint64_t> sizes;
  std::string server_address;              // rank 1's address
  std::string client_prefix, server_prefix;  // "ip netns exec NS " with --netns
  bool ucx = false;                        // ucx is among the transports
  EnvironmentList ucx_env;
};

// Collective: every rank calls it; rank 0 gets the figures.
std::vector<Ceiling> MeasureCeilings(const World& world, const CeilingPlan& plan);

}  // namespace plasma::mpibench
