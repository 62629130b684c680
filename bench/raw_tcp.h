// The raw-TCP baseline of remote_fetch: what plain TCP does with the same
// bytes a fetch moves. A server holds `count` objects of `size` bytes in one
// shared-memory region (touched once, like a store arena holding objects it
// was given); a client asks for them one at a time (1-byte request, `size`
// bytes back) and receives each into the same `size`-byte buffer (like a
// puller's reused arena block). No store, manager or plugin code is involved.
//
// Unlike iperf3, which sends one hot 1 MiB buffer over and over, this reads
// every object's bytes once from memory, as a fetch must.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plasma/common/status.h"

namespace plasma::bench {

struct RawTcpResult {
  double gigabytes_per_second = 0;  // timed requests * size / seconds
  double median_microseconds = 0;   // per request
  double seconds = 0;               // summed over the timed requests
  std::vector<double> latencies;    // each timed request's, in seconds, in order
};

// Listens on address:port, serves `count` requests from one client, returns.
Status RawTcpServe(const std::string& address, int port, uint64_t size, uint64_t count);

// Connects (retrying for up to 30 s while the server starts) and fetches
// `count` objects; the first one warms up and is not timed, so `count - 1`
// latencies come back.
Result<RawTcpResult> RawTcpFetch(const std::string& address, int port, uint64_t size,
                                 uint64_t count);

}  // namespace plasma::bench
