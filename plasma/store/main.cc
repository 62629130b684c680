// plasma-store-server: a drop-in for Apache Arrow Plasma 11's store binary.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "plasma/common/logging.h"
#include "plasma/common/event_loop.h"
#include "plasma/store/store.h"

namespace {

const char kUsage[] =
    "Usage: plasma-store-server -m BYTES -s SOCKET [-d DIRECTORY] [-h] [--busy-poll-us N]\n"
    "\n"
    "Shared-memory object store speaking Apache Arrow Plasma 11's protocol.\n"
    "\n"
    "  -m BYTES      capacity of the object arena in bytes (digits only, required)\n"
    "  -s SOCKET     Unix socket path clients connect to (required)\n"
    "  -d DIRECTORY  where the arena's backing file is created and unlinked\n"
    "                (default /dev/shm; with -h, a hugetlbfs mount)\n"
    "  -h            back the arena with huge pages (needs -d on hugetlbfs)\n"
    "  --busy-poll-us N  after each event keep polling N µs before sleeping: a\n"
    "                client's next request is taken without a wake-up, for a busy\n"
    "                core (default 0: sleep at once)\n"
    "  --help        this text\n"
    "\n"
    "Environment: PLASMA_LOG_LEVEL=debug|info|warning|error (default info).\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "plasma-store-server: %s\n(see plasma-store-server --help)\n",
               message.c_str());
  return 2;
}

bool ParseBytes(const char* text, int64_t* out) {
  if (*text == '\0') return false;
  int64_t value = 0;
  for (const char* p = text; *p; ++p) {
    if (*p < '0' || *p > '9') return false;
    if (value > (INT64_MAX - (*p - '0')) / 10) return false;
    value = value * 10 + (*p - '0');
  }
  *out = value;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  plasma::SetLogProgramName("plasma-store");
  plasma::StoreOptions options;
  bool directory_given = false;
  int64_t busy_poll_us = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "-m") {
      const char* text = value("-m");
      if (text == nullptr || !ParseBytes(text, &options.capacity) || options.capacity <= 0) {
        return UsageError("-m takes a positive number of bytes, with no letter suffix");
      }
    } else if (arg == "-s") {
      const char* text = value("-s");
      if (text == nullptr) return UsageError("-s needs a socket path");
      options.socket_path = text;
    } else if (arg == "-d") {
      const char* text = value("-d");
      if (text == nullptr) return UsageError("-d needs a directory");
      options.directory = text;
      directory_given = true;
    } else if (arg == "-h") {
      options.hugepages = true;
    } else if (arg == "--busy-poll-us") {
      const char* text = value("--busy-poll-us");
      if (text == nullptr || !ParseBytes(text, &busy_poll_us) || busy_poll_us > 1000000) {
        return UsageError("--busy-poll-us takes microseconds, 0 to 1000000");
      }
    } else if (arg == "-e") {
      return UsageError("-e (external store) is not supported by this store");
    } else {
      return UsageError("unknown argument '" + arg + "'");
    }
  }
  if (options.socket_path.empty() && options.capacity == 0) {
    return UsageError(
        "please specify the socket for incoming connections with -s and the memory "
        "capacity in bytes with -m");
  }
  if (options.socket_path.empty()) return UsageError("please specify the socket with -s");
  if (options.capacity == 0) return UsageError("please specify the capacity in bytes with -m");
  if (options.hugepages && !directory_given) {
    return UsageError("-h needs -d naming a hugetlbfs mount");
  }

  plasma::FitCapacityToFreeSpace(&options);

  auto loop = plasma::EventLoop::Create();
  if (!loop.ok()) {
    PLASMA_LOG(kError) << loop.status().ToString();
    return 1;
  }
  (*loop)->SetBusyPoll(busy_poll_us);
  auto store = plasma::Store::Create(options, loop->get());
  if (!store.ok()) {
    PLASMA_LOG(kError) << "cannot create the store: " << store.status().ToString();
    return 1;
  }
  plasma::Status listening = (*store)->Listen();
  if (!listening.ok()) {
    PLASMA_LOG(kError) << "cannot listen: " << listening.ToString();
    return 1;
  }
  plasma::Status signals = (*loop)->OnStopSignal([&](int) { (*loop)->Stop(); });
  if (!signals.ok()) {
    PLASMA_LOG(kError) << signals.ToString();
    return 1;
  }
  PLASMA_LOG(kInfo) << "serving " << options.capacity << " bytes on " << options.socket_path
                    << " (arena in " << (options.directory.empty() ? "memfd" : options.directory)
                    << (options.hugepages ? ", huge pages" : "") << ")";
  (*loop)->Run();
  store->reset();
  return 0;
}
