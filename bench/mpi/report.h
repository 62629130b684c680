// The figures of a round across all ranks, and the table, CSV and plot of a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/mpi/round.h"

namespace plasma::mpibench {

struct RoundRow {
  std::string transport, pattern;
  uint64_t size = 0;
  int batch = 0, batch_asked = 0, objects = 0, ranks = 0, fetchers = 0;
  double aggregate_gbps = 0;  // every fetcher's bytes over the slowest fetcher's time
  double per_rank_gbps = 0;   // a fetcher's bytes over its own time, averaged
  double p50_us = 0, p99_us = 0;  // per Fetch call
  // CPU seconds (store + manager, and the fetching process) per GB moved:
  double cpu_per_gb = -1;          // all nodes, both sides
  double fetcher_cpu_per_gb = -1;  // fetching nodes; < 0 where roles mix or unknown
  double holder_cpu_per_gb = -1;   // holding nodes
  int wrong_objects = 0;
  std::string errors;  // "rank 1: ..." per rank that failed
  bool ok() const { return wrong_objects == 0 && errors.empty(); }
};

RoundRow Summarize(const std::string& transport, const RoundSpec& spec,
                   const std::vector<RankOutcome>& outcomes);
// Of repeated rounds, the one with the median aggregate throughput; it
// carries every repeat's wrong objects and errors.
RoundRow MedianRow(std::vector<RoundRow> repeats);
std::string ProgressLine(const RoundRow& row);

// A raw transport's throughput between rank 0 and rank 1, measured in the run.
struct Ceiling {
  std::string name;        // "iperf3 -l 1M", "ucx_perftest tag_bw", "ib_read_bw"
  uint64_t size_bytes = 0; // 0: one figure for every size
  double gbps = 0;
};

void PrintAndWriteResults(const std::vector<RoundRow>& rows, const std::vector<Ceiling>& ceilings,
                          const std::string& csv_path);
// The CSV beside csv_path that holds the ceilings (X.csv -> X-ceilings.csv).
std::string CeilingsCsvPath(const std::string& csv_path);
// Aggregate throughput against size from a run's CSV (and its ceilings CSV):
// one panel per pattern, one line per transport and batch, the ceilings
// beside them; gnuplot PNG.
Status Plot(const std::string& csv_path, const std::string& png_path);

}  // namespace plasma::mpibench
