#include "bench/mpi/report.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "bench/bench_util.h"
#include "bench/mpi/patterns.h"

namespace plasma::mpibench {

using bench::FormatBytes;
using bench::FormatDouble;

RoundRow Summarize(const std::string& transport, const RoundSpec& spec,
                   const std::vector<RankOutcome>& outcomes) {
  RoundRow row;
  row.transport = transport;
  row.pattern = spec.pattern;
  row.size = spec.size;
  row.batch = spec.batch;
  row.batch_asked = spec.batch_asked;
  row.objects = spec.objects;
  row.ranks = int(outcomes.size());
  double bytes = 0, slowest = 0, per_rank_sum = 0;
  double all_cpu = 0, fetcher_cpu = 0, holder_cpu = 0;
  bool cpu_known = true;
  std::vector<double> latencies;
  for (size_t rank = 0; rank < outcomes.size(); ++rank) {
    const RankOutcome& o = outcomes[rank];
    if (!o.error.empty()) {
      row.errors += (row.errors.empty() ? "" : "; ") + std::string("rank ") +
                    std::to_string(rank) + ": " + o.error;
    }
    row.wrong_objects += o.wrong_objects;
    if (o.daemon_cpu < 0) cpu_known = false;
    double node_cpu = std::max(0.0, o.daemon_cpu) + (o.fetches ? o.client_cpu : 0);
    all_cpu += node_cpu;
    if (o.fetches) fetcher_cpu += node_cpu;
    else if (o.holds) holder_cpu += node_cpu;
    if (!o.fetches) continue;
    ++row.fetchers;
    bytes += o.bytes;
    slowest = std::max(slowest, o.seconds);
    if (o.seconds > 0) per_rank_sum += o.bytes / o.seconds;
    latencies.insert(latencies.end(), o.latencies.begin(), o.latencies.end());
  }
  if (slowest > 0) row.aggregate_gbps = bytes / slowest / 1e9;
  if (row.fetchers > 0) row.per_rank_gbps = per_rank_sum / row.fetchers / 1e9;
  row.p50_us = bench::Percentile(latencies, 0.50) * 1e6;
  row.p99_us = bench::Percentile(latencies, 0.99) * 1e6;
  double gigabytes = bytes / 1e9;
  if (cpu_known && gigabytes > 0) {
    row.cpu_per_gb = all_cpu / gigabytes;
    if (!RolesMix(spec.pattern)) {
      row.fetcher_cpu_per_gb = fetcher_cpu / gigabytes;
      row.holder_cpu_per_gb = holder_cpu / gigabytes;
    }
  }
  return row;
}

RoundRow MedianRow(std::vector<RoundRow> repeats) {
  int wrong = 0;
  std::string errors;
  for (const RoundRow& r : repeats) {
    wrong += r.wrong_objects;
    if (!r.errors.empty()) errors += (errors.empty() ? "" : "; ") + r.errors;
  }
  std::sort(repeats.begin(), repeats.end(), [](const RoundRow& a, const RoundRow& b) {
    return a.aggregate_gbps < b.aggregate_gbps;
  });
  RoundRow row = repeats[repeats.size() / 2];
  row.wrong_objects = wrong;
  row.errors = errors;
  return row;
}

std::string ProgressLine(const RoundRow& row) {
  std::string line = row.transport + " " + row.pattern + " " + FormatBytes(row.size) + " x " +
                     std::to_string(row.objects) + ", batch " + std::to_string(row.batch) + ": ";
  if (!row.ok()) {
    return line + "FAILED (" + (row.wrong_objects ? std::to_string(row.wrong_objects) +
                                                        " objects wrong; "
                                                  : "") +
           row.errors + ")";
  }
  return line + FormatDouble(row.aggregate_gbps, 3) + " GB/s aggregate, p50 " +
         FormatDouble(row.p50_us, 0) + " us, every byte checked";
}

namespace {

std::string Cpu(double value) { return value < 0 ? "" : FormatDouble(value, 2); }

}  // namespace

std::string CeilingsCsvPath(const std::string& csv_path) {
  auto dot = csv_path.rfind(".csv");
  std::string stem = dot == std::string::npos ? csv_path : csv_path.substr(0, dot);
  return stem + "-ceilings.csv";
}

void PrintAndWriteResults(const std::vector<RoundRow>& rows, const std::vector<Ceiling>& ceilings,
                          const std::string& csv_path) {
  bench::Table table({"transport", "pattern", "size_bytes", "batch", "objects", "ranks",
                      "aggregate_GBps", "per_rank_GBps", "p50_us", "p99_us", "cpu_s_per_GB",
                      "fetcher_cpu_s_per_GB", "holder_cpu_s_per_GB", "bytes_checked",
                      "batch_asked"});
  for (const RoundRow& r : rows) {
    table.AddRow({r.transport, r.pattern, std::to_string(r.size), std::to_string(r.batch),
                  std::to_string(r.objects), std::to_string(r.ranks),
                  // 6 digits: an emulated guest moves 1 KiB objects at 0.0001 GB/s.
                  FormatDouble(r.aggregate_gbps, 6), FormatDouble(r.per_rank_gbps, 6),
                  FormatDouble(r.p50_us, 0), FormatDouble(r.p99_us, 0), Cpu(r.cpu_per_gb),
                  Cpu(r.fetcher_cpu_per_gb), Cpu(r.holder_cpu_per_gb),
                  r.ok() ? "ok" : "WRONG:" + std::to_string(r.wrong_objects),
                  std::to_string(r.batch_asked)});
  }
  table.Print();
  Status written = table.WriteCsv(csv_path);
  std::cout << (written.ok() ? "wrote " + csv_path : written.ToString()) << "\n";
  if (ceilings.empty()) return;
  bench::Table raw({"ceiling", "size_bytes", "GBps"});
  for (const Ceiling& c : ceilings) {
    raw.AddRow({c.name, std::to_string(c.size_bytes), FormatDouble(c.gbps, 6)});
  }
  std::cout << "\nraw transports between rank 0 and rank 1, same run (size 0: one figure):\n";
  raw.Print();
  written = raw.WriteCsv(CeilingsCsvPath(csv_path));
  std::cout << (written.ok() ? "wrote " + CeilingsCsvPath(csv_path) : written.ToString()) << "\n";
}

namespace {

// The data rows of a CSV file, split at commas (no quoting in ours).
std::vector<std::vector<std::string>> CsvRows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream parts(line);
    while (std::getline(parts, field, ',')) fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

void AddOnce(std::vector<std::string>* list, const std::string& item) {
  if (std::find(list->begin(), list->end(), item) == list->end()) list->push_back(item);
}

}  // namespace

Status Plot(const std::string& csv_path, const std::string& png_path) {
  std::vector<std::string> patterns, transports;
  std::set<int> batches;
  std::string ranks = "?";
  for (const auto& fields : CsvRows(csv_path)) {
    if (fields.size() < 7) continue;
    AddOnce(&transports, fields[0]);
    AddOnce(&patterns, fields[1]);
    batches.insert(std::atoi(fields[fields.size() > 14 ? 14 : 3].c_str()));
    ranks = fields[5];
  }
  struct Drawn {
    std::string name;
    bool per_size;
    double gbps;
  };
  std::vector<Drawn> ceilings;
  std::set<std::string> seen;
  for (const auto& fields : CsvRows(CeilingsCsvPath(csv_path))) {
    if (fields.size() < 3 || !seen.insert(fields[0]).second) continue;
    ceilings.push_back({fields[0], fields[1] != "0", std::atof(fields[2].c_str())});
  }
  if (patterns.empty()) return Status::InvalidArgument(csv_path + ": nothing to plot");
  int columns = patterns.size() > 1 ? 2 : 1;
  int lines = int((patterns.size() + 1) / size_t(columns));
  std::string script =
      "set terminal pngcairo size " + std::to_string(700 * columns) + "," +
      std::to_string(480 * lines) + " font ',9' noenhanced\n"
      "set output '" + png_path + "'\nset datafile separator ','\n"
      "set logscale x 2\nset logscale y 10\nset grid\nset key bottom right font ',8'\n"
      "set format x '%.0b%B'\nset format y '%g'\nset xlabel 'object size (bytes)'\nset ylabel 'GB/s, all fetching ranks'\n"
      "set multiplot layout " + std::to_string(lines) + "," + std::to_string(columns) +
      " title 'plasma-mpi-bench: " + ranks +
      " ranks, throughput against object size, raw transports measured in the same run'\n";
  std::string ceilings_csv = CeilingsCsvPath(csv_path);
  for (const std::string& pattern : patterns) {
    script += "set title '" + pattern + "'\nplot ";
    for (const std::string& transport : transports) {
      for (int batch : batches) {
        script += "'" + csv_path + "' using 3:(strcol(1) eq '" + transport + "' && strcol(2) eq '" +
                  pattern + "' && $15 == " + std::to_string(batch) +
                  " ? $7 : 1/0) with linespoints title '" + transport + ", " +
                  (batch == 1 ? std::string("1") : "up to " + std::to_string(batch)) +
                  " per Fetch', ";
      }
    }
    for (const Drawn& c : ceilings) {
      if (!c.per_size) {
        script += FormatDouble(c.gbps, 3) + " with lines dashtype 2 title '" + c.name + "', ";
      } else {
        script += "'" + ceilings_csv + "' using 2:(strcol(1) eq '" + c.name +
                  "' ? $3 : 1/0) with lines dashtype 3 linewidth 2 title '" + c.name + "', ";
      }
    }
    script.resize(script.size() - 2);
    script += "\n";
  }
  script += "unset multiplot\n";
  std::string path = png_path + ".gp";
  std::ofstream(path) << script;
  int code = 0;
  std::string out = bench::RunCommand("gnuplot '" + path + "'", &code);
  if (code != 0) return Status::IOError("gnuplot failed: " + out);
  std::remove(path.c_str());
  return Status::OK();
}

}  // namespace plasma::mpibench
