// plasma-manager: moves objects between nodes' stores; see docs/manager.md.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "plasma/common/logging.h"
#include "plasma/manager/ipc_store.h"
#include "plasma/manager/manager.h"
#include "plasma/node/in_process_store.h"
#include "plasma/store/store.h"

namespace {

const char kUsage[] =
    "Usage: plasma-manager --store-socket PATH --socket PATH --redis ADDRESS --node NAME\n"
    "                      [--store-memory BYTES [--store-directory DIR]]\n"
    "                      [--listen HINT] [--inflight-bytes N] [--eager-threshold N]\n"
    "                      [--stall-timeout-ms N] [--max-lent-bytes N] [--verify-digests]\n"
    "                      [--location-cache ENTRIES] [--busy-poll-us N] [--push-limit N]\n"
    "       plasma-manager --list-transports\n"
    "\n"
    "Moves objects between nodes: local clients ask it (on --socket) to fetch ids;\n"
    "it finds holders in Redis and pulls the bytes into the local store.\n"
    "\n"
    "  --store-socket PATH   this node's plasma-store-server socket\n"
    "  --store-memory BYTES  host the store in this process instead (one process per\n"
    "                        node): an arena of BYTES, local clients served on\n"
    "                        --store-socket as by plasma-store-server\n"
    "  --store-directory DIR where that arena's file is made (default /dev/shm)\n"
    "  --socket PATH         Unix socket for local clients (plasma fetch, Client::Fetch)\n"
    "  --redis ADDRESS       Redis as HOST:PORT or a Unix socket path\n"
    "  --node NAME           this node's name, unique in the cluster\n"
    "  --listen HINT         where the transport listens: HOST, HOST:PORT (default: plugin's)\n"
    "  --inflight-bytes N    bytes of large transfers in flight at once (default 1 GiB)\n"
    "  --eager-threshold N   objects whose message (header + bytes) fits in N bytes go\n"
    "                        inline, larger ones by rendezvous READ (default: the plugin's)\n"
    "  --stall-timeout-ms N  give up on a holder silent this long (default 10000); a READ\n"
    "                        may also take its bytes in flight at 10 MB/s\n"
    "  --max-lent-bytes N    bytes one peer may have pinned here for READs (default 2 GiB)\n"
    "  --push-limit N        with a plugin whose READ is emulated (socket), objects up to\n"
    "                        N bytes whose sizes were announced are pushed by the holder\n"
    "                        right after its HEADER: one round trip fewer than a READ\n"
    "                        (default 4 MiB; 0: never push)\n"
    "  --verify-digests      hash every received object and compare with the holder's digest\n"
    "  --location-cache N    remember the holders of N objects, kept current by the\n"
    "                        cluster's location events, so a fetch of a known object\n"
    "                        skips the Redis lookup (default 65536; 0: always ask Redis)\n"
    "  --busy-poll-us N      after each event keep polling N µs before sleeping: saves\n"
    "                        the wake-ups of a fetch (tens of µs each) for a busy core\n"
    "                        (default 0: sleep at once; docs/manager.md)\n"
    "  --list-transports     list the transport plugins found, with their properties\n"
    "\n"
    "Environment:\n"
    "  PLASMA_TRANSPORT       socket|verbs|ucx or an absolute .so path (default socket), or\n"
    "                         a list (verbs,ucx,socket): the first that works here\n"
    "  PLASMA_TRANSPORT_PATH  colon-separated directories searched for plugins first\n"
    "  PLASMA_VERBS_*         the verbs plugin's device, threshold and queue settings\n"
    "                         (docs/transport-abi.md, \"The verbs plugin\")\n"
    "  PLASMA_LOG_LEVEL       debug|info|warning|error\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "plasma-manager: %s\n(see plasma-manager --help)\n", message.c_str());
  return 2;
}

bool ParseCount(const char* text, uint64_t* out) {
  if (*text < '0' || *text > '9') return false;  // strtoull would take "-1" as 2^64 - 1
  char* end;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || end == text) return false;
  *out = value;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  plasma::SetLogProgramName("plasma-manager");
  plasma::ManagerOptions options;
  plasma::StoreOptions hosted_store;  // capacity 0: the store is a separate process
  uint64_t busy_poll_us = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--verify-digests") {
      options.transfer.verify_digests = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--list-transports") {
      std::fputs(plasma::transport::FormatPluginList(plasma::transport::ListPlugins()).c_str(),
                 stdout);
      return 0;
    }
    const char* v = value();
    if (v == nullptr) return UsageError("unknown argument or missing value: '" + arg + "'");
    if (arg == "--store-socket") {
      options.store_socket = v;
    } else if (arg == "--socket") {
      options.manager_socket = v;
    } else if (arg == "--redis") {
      options.redis_address = v;
    } else if (arg == "--node") {
      options.node_name = v;
    } else if (arg == "--store-memory") {
      uint64_t bytes;
      if (!ParseCount(v, &bytes) || bytes == 0 || bytes > uint64_t(INT64_MAX)) {
        return UsageError("--store-memory takes a positive number of bytes");
      }
      hosted_store.capacity = int64_t(bytes);
    } else if (arg == "--store-directory") {
      hosted_store.directory = v;
    } else if (arg == "--listen") {
      options.transfer.bind_hint = v;
    } else if (arg == "--inflight-bytes") {
      if (!ParseCount(v, &options.transfer.inflight_byte_budget)) {
        return UsageError("--inflight-bytes takes a number of bytes");
      }
    } else if (arg == "--push-limit") {
      if (!ParseCount(v, &options.transfer.max_push_bytes)) {
        return UsageError("--push-limit takes a number of bytes");
      }
    } else if (arg == "--eager-threshold") {
      if (!ParseCount(v, &options.transfer.eager_threshold)) {
        return UsageError("--eager-threshold takes a number of bytes");
      }
    } else if (arg == "--stall-timeout-ms") {
      uint64_t ms;
      if (!ParseCount(v, &ms) || ms == 0) {
        return UsageError("--stall-timeout-ms takes a positive number of milliseconds");
      }
      options.transfer.stall_timeout_ms = int64_t(ms);
    } else if (arg == "--busy-poll-us") {
      if (!ParseCount(v, &busy_poll_us) || busy_poll_us > 1000000) {
        return UsageError("--busy-poll-us takes microseconds, 0 to 1000000");
      }
    } else if (arg == "--location-cache") {
      uint64_t entries;
      if (!ParseCount(v, &entries) || entries > (uint64_t(1) << 32)) {
        return UsageError("--location-cache takes a number of objects (0 to turn it off)");
      }
      options.location_cache_entries = size_t(entries);
    } else if (arg == "--max-lent-bytes") {
      if (!ParseCount(v, &options.transfer.max_lent_bytes_per_peer)) {
        return UsageError("--max-lent-bytes takes a number of bytes");
      }
    } else {
      return UsageError("unknown argument '" + arg + "'");
    }
  }
  if (options.store_socket.empty()) return UsageError("--store-socket is required");
  if (options.manager_socket.empty()) return UsageError("--socket is required");
  if (options.redis_address.empty()) return UsageError("--redis is required");
  if (options.node_name.empty()) return UsageError("--node is required");

  // The plugin picks its device from the listen address at init, before
  // the arena is registered with that device.
  plasma::transport::PluginOptions plugin_options;
  plugin_options.local_address = options.transfer.bind_hint;
  auto plugin = plasma::transport::Plugin::LoadFromEnvironment(plugin_options);
  if (!plugin.ok()) {
    std::fprintf(stderr, "plasma-manager: %s\n", plugin.status().message().c_str());
    return 1;
  }

  auto loop = plasma::EventLoop::Create();
  if (!loop.ok()) {
    std::fprintf(stderr, "plasma-manager: %s\n", loop.status().ToString().c_str());
    return 1;
  }
  (*loop)->SetBusyPoll(int64_t(busy_poll_us));
  // The one-process layout: the store lives here, on the manager's loop.
  std::unique_ptr<plasma::Store> store;
  std::unique_ptr<plasma::LocalStore> local_store;
  if (hosted_store.capacity > 0) {
    hosted_store.socket_path = options.store_socket;
    plasma::FitCapacityToFreeSpace(&hosted_store);
    auto created = plasma::Store::Create(hosted_store, loop->get());
    plasma::Status listening = created.ok() ? (*created)->Listen() : created.status();
    if (!listening.ok()) {
      std::fprintf(stderr, "plasma-manager: cannot host the store: %s\n",
                   listening.ToString().c_str());
      return 1;
    }
    store = std::move(created).value();
    local_store = std::make_unique<plasma::InProcessStore>(store.get());
  } else {
    auto connected = plasma::IpcStore::Connect(loop->get(), options.store_socket);
    if (!connected.ok()) {
      std::fprintf(stderr, "plasma-manager: %s\n", connected.status().ToString().c_str());
      return 1;
    }
    local_store = std::move(connected).value();
  }
  auto manager =
      plasma::Manager::Create(loop->get(), options, plugin->get(), std::move(local_store));
  if (!manager.ok()) {
    std::fprintf(stderr, "plasma-manager: %s\n", manager.status().ToString().c_str());
    return 1;
  }
  plasma::Status signals = (*loop)->OnStopSignal([&](int) {
    (*manager)->Unregister();
    // Let the Redis commands go out, then stop.
    (*loop)->AddTimer(200, [&] { (*loop)->Stop(); });
  });
  if (!signals.ok()) {
    std::fprintf(stderr, "plasma-manager: %s\n", signals.ToString().c_str());
    return 1;
  }
  (*loop)->Run();
  manager->reset();
  store.reset();  // after the manager, which holds objects in it
  return 0;
}
