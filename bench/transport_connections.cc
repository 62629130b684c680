// bench/transport_connections: what a transport plugin's connections cost.
// Opens N connections between two contexts of the plugin in this process
// and reports, per connection end, the resident and pinned memory it added
// (/proc/self/status VmRSS, VmPin) and the set-up time (all N connects
// posted in batches of 32; the time until every one is up, divided by N,
// and the first one alone).
//
//   transport_connections --transport NAME [--peers 1,64,1024] [--csv FILE]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "transport/loader.h"

using namespace plasma;
using Clock = std::chrono::steady_clock;

namespace {

// kB value of one /proc/self/status field.
uint64_t StatusKiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

struct ConnectionCost {
  double rss_kib_per_end = 0;
  double pinned_kib_per_end = 0;
  double first_ms = 0;
  double mean_ms = 0;
};

Status Measure(const std::string& transport, int peers, ConnectionCost* out) {
  transport::PluginOptions options;
  options.log = [](int level, const std::string& message) {
    if (level <= PLASMA_TP_LOG_WARN) std::fprintf(stderr, "[plugin] %s\n", message.c_str());
  };
  options.max_log_level = PLASMA_TP_LOG_WARN;
  auto client = transport::Plugin::Load(transport, options);
  PLASMA_RETURN_NOT_OK(client.status());
  auto server = transport::Plugin::Load(transport, options);
  PLASMA_RETURN_NOT_OK(server.status());
  const plasma_tp_v1_t& api = (*client)->api();
  plasma_tp_context_t a = (*client)->context(), b = (*server)->context();
  plasma_tp_listener_t listener = nullptr;
  if (api.listen(b, "127.0.0.1:0", &listener) != PLASMA_TP_OK) return Status::IOError("listen failed");
  const void* blob = nullptr;
  size_t blob_len = 0;
  api.listener_address(b, listener, &blob, &blob_len);

  auto progress_until = [&](auto done, const char* what) -> Status {
    const auto deadline = Clock::now() + std::chrono::seconds(300);
    while (!done()) {
      if (Clock::now() > deadline) return Status::TimedOut(std::string(what) + " within 300 s");
      if (api.progress(a) < 0 || api.progress(b) < 0) return Status::IOError("progress failed");
    }
    return Status::OK();
  };
  std::vector<plasma_tp_conn_t> connected, accepted;
  auto accept_all = [&] {
    plasma_tp_conn_t conn = nullptr;
    while (api.accept(b, listener, &conn) == PLASMA_TP_OK) accepted.push_back(conn);
  };
  auto all_up = [&](size_t count) {
    accept_all();
    if (accepted.size() < count) return false;
    for (plasma_tp_conn_t conn : connected) {
      if (api.conn_status(a, conn) != PLASMA_TP_OK) return false;
    }
    return true;
  };
  // The first connection alone: its set-up time, and a warm context (the
  // plugin's per-context state is not a connection's cost).
  auto start = Clock::now();
  plasma_tp_conn_t first = nullptr;
  if (api.connect(a, blob, blob_len, &first) != PLASMA_TP_OK) return Status::IOError("connect failed");
  connected.push_back(first);
  PLASMA_RETURN_NOT_OK(progress_until([&] { return all_up(1); }, "first connection"));
  out->first_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();

  const uint64_t rss_before = StatusKiB("VmRSS"), pinned_before = StatusKiB("VmPin");
  start = Clock::now();
  // In batches, as a manager meets its peers: a burst of a thousand connects
  // would only measure the listen backlog's SYN retries.
  constexpr int kBatch = 32;
  for (int done = 0; done < peers; done += kBatch) {
    for (int i = done; i < peers && i < done + kBatch; ++i) {
      plasma_tp_conn_t conn = nullptr;
      if (api.connect(a, blob, blob_len, &conn) != PLASMA_TP_OK) return Status::IOError("connect failed");
      connected.push_back(conn);
    }
    PLASMA_RETURN_NOT_OK(progress_until([&] { return all_up(connected.size()); }, "all connections"));
  }
  out->mean_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count() / peers;
  const uint64_t rss_after = StatusKiB("VmRSS"), pinned_after = StatusKiB("VmPin");
  out->rss_kib_per_end = double(rss_after - rss_before) / (2.0 * peers);
  out->pinned_kib_per_end = double(pinned_after - pinned_before) / (2.0 * peers);
  for (plasma_tp_conn_t conn : connected) api.close_conn(a, conn);
  for (plasma_tp_conn_t conn : accepted) api.close_conn(b, conn);
  api.close_listener(b, listener);
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  setenv(transport::kTransportPathEnv, PLASMA_BENCH_PLUGIN_DIR, /*overwrite=*/0);
  std::string transport = "socket", csv;
  std::vector<int> peer_counts = {1, 64};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--transport" && i + 1 < argc) {
      transport = argv[++i];
    } else if (arg == "--peers" && i + 1 < argc) {
      peer_counts.clear();
      std::istringstream list(argv[++i]);
      std::string item;
      while (std::getline(list, item, ',')) peer_counts.push_back(std::atoi(item.c_str()));
    } else if (arg == "--csv" && i + 1 < argc) {
      csv = argv[++i];
    } else {
      std::cerr << "usage: transport_connections --transport NAME [--peers 1,64,1024] [--csv FILE]\n";
      return 2;
    }
  }
  bench::Table table({"transport", "peers", "rss_kib_per_end", "pinned_kib_per_end",
                      "first_setup_ms", "mean_setup_ms"});
  for (int peers : peer_counts) {
    if (peers <= 0) continue;
    std::cerr << transport << ": " << peers << " connection(s)\n";
    ConnectionCost result;
    Status status = Measure(transport, peers, &result);
    if (!status.ok()) {
      std::cerr << "transport_connections: " << peers << " peers: " << status.ToString() << "\n";
      return 1;
    }
    table.AddRow({transport, std::to_string(peers), bench::FormatDouble(result.rss_kib_per_end, 1),
                  bench::FormatDouble(result.pinned_kib_per_end, 1),
                  bench::FormatDouble(result.first_ms, 2), bench::FormatDouble(result.mean_ms, 2)});
  }
  table.Print();
  if (!csv.empty()) {
    Status written = table.WriteCsv(csv);
    if (!written.ok()) std::cerr << written.ToString() << "\n";
  }
  return 0;
}
