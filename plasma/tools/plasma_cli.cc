// plasma: the command-line tool for people working with a plasma store.
//
//   plasma [-s SOCKET] put [FILE|-] [--id HEX] [--metadata STR]
//   plasma [-s SOCKET] get ID [-o FILE] [--timeout MS]
//   plasma [-s SOCKET] ls | rm ID... | stat | fetch ID...
//
// Exit status: 0 success, 1 the operation failed, 2 bad usage.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "plasma/client/client.h"
#include "plasma/common/protocol.h"

namespace plasma {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr const char* kDefaultSocket = "/tmp/plasma.sock";

const char kMainUsage[] =
    "usage: plasma [-s SOCKET] COMMAND [ARGS...]\n"
    "\n"
    "Works with the objects of a plasma store.\n"
    "\n"
    "commands:\n"
    "  put [FILE|-] [--id HEX] [--metadata STR]  store a file (or stdin) as a sealed object;\n"
    "                                            prints its 40-hex-digit id\n"
    "  get ID [-o FILE] [--timeout MS]           write an object's data to stdout or FILE\n"
    "  ls [--bytes]                              list the objects in the store\n"
    "  rm ID...                                  delete objects\n"
    "  stat                                      capacity, memory used, number of objects\n"
    "  fetch ID... [--timeout MS]                bring objects here from other nodes\n"
    "                                            (through the node's manager)\n"
    "\n"
    "options:\n"
    "  -s, --socket SOCKET  the store's Unix socket (default: $PLASMA_STORE_SOCKET,\n"
    "                       else /tmp/plasma.sock)\n"
    "  -h, --help           this help; `plasma COMMAND --help` describes a command\n"
    "\n"
    "exit status: 0 success, 1 the operation failed, 2 bad usage\n";

const char kPutUsage[] =
    "usage: plasma put [FILE|-] [--id HEX] [--metadata STR]\n"
    "\n"
    "Stores the bytes of FILE (or of stdin, if FILE is - or absent) as a new\n"
    "sealed object and prints its id (40 hex digits).\n"
    "\n"
    "  --id HEX        the object id to use (default: a random id)\n"
    "  --metadata STR  metadata to attach to the object\n";

const char kGetUsage[] =
    "usage: plasma get ID [-o FILE] [--timeout MS]\n"
    "\n"
    "Writes the data of object ID to stdout, or to FILE.\n"
    "\n"
    "  -o, --output FILE  write to FILE (created or truncated) instead of stdout (-)\n"
    "  --timeout MS       wait up to MS milliseconds for the object to be sealed\n"
    "                     (default 0: fail at once; -1: wait forever)\n";

const char kLsUsage[] =
    "usage: plasma ls [--bytes]\n"
    "\n"
    "Lists the objects in the store: id, data size, metadata size, how many\n"
    "clients hold it, whether it is sealed or still being created, and its age.\n"
    "\n"
    "  --bytes  print sizes as exact byte counts\n";

const char kRmUsage[] =
    "usage: plasma rm ID...\n"
    "\n"
    "Deletes objects. An object in use (or still being created) is deleted once\n"
    "the last client lets go of it; that is reported, but not a failure.\n";

const char kStatUsage[] =
    "usage: plasma stat\n"
    "\n"
    "Prints the store's capacity, the memory its objects use, their number, and\n"
    "the store's own debug description.\n";

const char kFetchUsage[] =
    "usage: plasma fetch ID... [--timeout MS] [--manager SOCKET]\n"
    "\n"
    "Asks this node's manager to bring the objects into the local store from\n"
    "other nodes.\n"
    "\n"
    "  --timeout MS      give up after MS milliseconds (default -1: no limit)\n"
    "  --manager SOCKET  the manager's Unix socket (default: $PLASMA_MANAGER_SOCKET, else\n"
    "                    manager.sock beside the store socket, as plasma-cluster lays out)\n";

// ---------------------------------------------------------------------------
// Command-line parsing

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // option name -> value
  std::vector<std::string> flags;             // options without a value
  bool help = false;
};

bool HasFlag(const Args& args, const std::string& flag) {
  return std::find(args.flags.begin(), args.flags.end(), flag) != args.flags.end();
}

int UsageError(const std::string& command, const std::string& message) {
  std::string who = command.empty() ? "plasma" : "plasma " + command;
  std::fprintf(stderr, "%s: %s\n", who.c_str(), message.c_str());
  std::fprintf(stderr, "Try '%s --help'.\n", who.c_str());
  return kExitUsage;
}

// Options taking a value, by their canonical name; short spellings map to them.
const std::map<std::string, std::string> kValueOptions = {
    {"-s", "--socket"},   {"--socket", "--socket"},     {"--id", "--id"},
    {"--metadata", "--metadata"}, {"-o", "--output"},   {"--output", "--output"},
    {"--timeout", "--timeout"},   {"--manager", "--manager"},
};
const std::map<std::string, std::string> kFlagOptions = {
    {"-h", "--help"}, {"--help", "--help"}, {"--bytes", "--bytes"},
};

// Returns an empty string on success, else what is wrong.
std::string ParseArgs(int argc, char** argv, Args* args) {
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg == "-" || arg.empty() || arg[0] != '-') {
      if (args->command.empty()) {
        args->command = arg;
      } else {
        args->positional.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg, value;
    bool inline_value = false;
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    if (auto flag = kFlagOptions.find(name); flag != kFlagOptions.end() && !inline_value) {
      if (flag->second == "--help") {
        args->help = true;
      } else {
        args->flags.push_back(flag->second);
      }
      continue;
    }
    auto option = kValueOptions.find(name);
    if (option == kValueOptions.end()) return "unknown option '" + arg + "'";
    if (!inline_value) {
      if (i + 1 >= argc) return "option '" + arg + "' needs a value";
      value = argv[++i];
    }
    args->values[option->second] = value;
  }
  return "";
}

// Each command accepts only its own options (and -s / --help everywhere).
std::string CheckOptions(const Args& args, const std::vector<std::string>& allowed) {
  for (const auto& [name, value] : args.values) {
    if (name != "--socket" && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return "option '" + name + "' does not apply to '" + args.command + "'";
    }
  }
  for (const auto& name : args.flags) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return "option '" + name + "' does not apply to '" + args.command + "'";
    }
  }
  return "";
}

bool ParseTimeout(const std::string& text, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < -1) return false;
  *out = value;
  return true;
}

std::string FormatBytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = double(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string FormatAge(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  char text[32];
  if (seconds < 60) {
    std::snprintf(text, sizeof(text), "%llds", (long long)seconds);
  } else if (seconds < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", (long long)(seconds / 60),
                  (long long)(seconds % 60));
  } else if (seconds < 86400) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", (long long)(seconds / 3600),
                  (long long)(seconds % 3600 / 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldd%02lldh", (long long)(seconds / 86400),
                  (long long)(seconds % 86400 / 3600));
  }
  return text;
}

// ---------------------------------------------------------------------------
// Commands

class Cli {
 public:
  Cli(Args args, std::string socket) : args_(std::move(args)), socket_(std::move(socket)) {}

  int Run() {
    static const std::map<std::string, std::pair<int (Cli::*)(), const char*>> kCommands = {
        {"put", {&Cli::Put, kPutUsage}},     {"get", {&Cli::Get, kGetUsage}},
        {"ls", {&Cli::Ls, kLsUsage}},        {"rm", {&Cli::Rm, kRmUsage}},
        {"stat", {&Cli::Stat, kStatUsage}},  {"fetch", {&Cli::Fetch, kFetchUsage}},
    };
    auto command = kCommands.find(args_.command);
    if (command == kCommands.end()) {
      return UsageError("", "unknown command '" + args_.command + "'");
    }
    if (args_.help) {
      std::fputs(command->second.second, stdout);
      return kExitOk;
    }
    return (this->*command->second.first)();
  }

 private:
  int Fail(const std::string& message) {
    std::fprintf(stderr, "plasma %s: %s\n", args_.command.c_str(), message.c_str());
    return kExitFailure;
  }
  int Usage(const std::string& message) { return UsageError(args_.command, message); }

  bool Connect(const ConnectOptions& options = {}) {
    ConnectOptions with_retries = options;
    with_retries.connect_attempts = 1;  // a person is waiting: fail at once
    auto client = Client::Connect(socket_, with_retries);
    if (!client.ok()) {
      Fail(client.status().message() +
           " (is plasma-store-server running there? use -s SOCKET or set PLASMA_STORE_SOCKET)");
      return false;
    }
    client_ = *client;
    return true;
  }

  bool ParseIds(const std::vector<std::string>& texts, std::vector<ObjectId>* ids,
                std::string* error) {
    for (const std::string& text : texts) {
      auto id = ObjectId::FromHex(text);
      if (!id.ok()) {
        *error = id.status().message();
        return false;
      }
      ids->push_back(*id);
    }
    return true;
  }

  std::string Where() const { return "the store at " + socket_; }

  // put [FILE|-] [--id HEX] [--metadata STR]
  int Put() {
    std::string bad = CheckOptions(args_, {"--id", "--metadata"});
    if (!bad.empty()) return Usage(bad);
    if (args_.positional.size() > 1) return Usage("put takes at most one FILE");
    std::string path = args_.positional.empty() ? "-" : args_.positional[0];
    std::string name = path == "-" ? std::string("stdin") : "'" + path + "'";
    ObjectId id = ObjectId::Random();
    if (auto hex = args_.values.find("--id"); hex != args_.values.end()) {
      auto parsed = ObjectId::FromHex(hex->second);
      if (!parsed.ok()) return Usage(parsed.status().message());
      id = *parsed;
    }
    std::string metadata;
    if (auto m = args_.values.find("--metadata"); m != args_.values.end()) metadata = m->second;

    int fd = 0;
    if (path != "-") {
      fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Fail("cannot open " + name + ": " + std::strerror(errno));
    }
    struct FdCloser {
      int fd;
      ~FdCloser() {
        if (fd > 0) close(fd);
      }
    } closer{fd};
    struct stat info;
    if (fstat(fd, &info) != 0) return Fail("cannot stat " + name + ": " + std::strerror(errno));
    if (S_ISDIR(info.st_mode)) return Fail("cannot store " + name + ": it is a directory");
    if (!Connect()) return kExitFailure;

    if (S_ISREG(info.st_mode)) {
      // Read straight into the store's memory: no copy of the file in ours.
      int64_t size = int64_t(info.st_size);
      auto created = client_->Create(id, size, metadata);
      if (!created.ok()) return CreateFailed(created.status(), id, name, size);
      ObjectBuffer buffer = std::move(created).value();
      int64_t done = 0;
      while (done < size) {
        ssize_t n = read(fd, buffer.data() + done, size_t(size - done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          std::string why = n < 0 ? std::strerror(errno) : std::string("file shrank while reading");
          buffer.Release();
          client_->Abort(id);
          return Fail("cannot read " + name + ": " + why);
        }
        done += n;
      }
      Status sealed = client_->Seal(id);
      if (!sealed.ok()) return Fail(sealed.message());
    } else {
      std::string data;
      char chunk[1 << 16];
      while (true) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Fail("cannot read " + name + ": " + std::strerror(errno));
        if (n == 0) break;
        data.append(chunk, size_t(n));
      }
      auto created = client_->Create(id, int64_t(data.size()), metadata);
      if (!created.ok()) return CreateFailed(created.status(), id, name, int64_t(data.size()));
      ObjectBuffer buffer = std::move(created).value();
      if (!data.empty()) std::memcpy(buffer.data(), data.data(), data.size());
      Status sealed = client_->Seal(id);
      if (!sealed.ok()) return Fail(sealed.message());
    }
    std::printf("%s\n", id.Hex().c_str());
    return kExitOk;
  }

  int CreateFailed(const Status& status, const ObjectId& id, const std::string& name,
                   int64_t size) {
    if (status.IsObjectExists()) {
      return Fail("object " + id.Hex() + " already exists in " + Where());
    }
    if (status.IsOutOfMemory()) {
      int64_t capacity = client_->memory_capacity();
      if (size > capacity) {
        return Fail(name + " (" + std::to_string(size) + " bytes) is larger than " + Where() +
                    " can ever hold (capacity " + std::to_string(capacity) +
                    " bytes); start the store with a larger -m");
      }
      return Fail(name + " (" + std::to_string(size) + " bytes) does not fit in " + Where() +
                  " (capacity " + std::to_string(capacity) +
                  " bytes, objects in use cannot be evicted)");
    }
    return Fail(status.message());
  }

  // get ID [-o FILE] [--timeout MS]
  int Get() {
    std::string bad = CheckOptions(args_, {"--output", "--timeout"});
    if (!bad.empty()) return Usage(bad);
    if (args_.positional.size() != 1) return Usage("get takes exactly one object ID");
    auto id = ObjectId::FromHex(args_.positional[0]);
    if (!id.ok()) return Usage(id.status().message());
    int64_t timeout_ms = 0;
    if (auto t = args_.values.find("--timeout"); t != args_.values.end()) {
      if (!ParseTimeout(t->second, &timeout_ms)) {
        return Usage("--timeout must be a number of milliseconds >= -1, not '" + t->second + "'");
      }
    }
    if (!Connect()) return kExitFailure;
    auto got = client_->Get({*id}, timeout_ms);
    if (!got.ok()) return Fail(got.status().message());
    const ObjectBuffer& object = (*got)[0];
    if (!object.valid()) {
      std::string waited = timeout_ms > 0 ? " after waiting " + std::to_string(timeout_ms) + " ms"
                                          : std::string();
      auto objects = client_->List();
      if (objects.ok()) {
        for (const ObjectInfo& info : *objects) {
          if (info.id == *id && !info.sealed) {
            return Fail("object " + id->Hex() + " is still being created (not sealed" + waited +
                        "; use --timeout MS to wait)");
          }
        }
      }
      return Fail("object " + id->Hex() + " not found in " + Where() + waited);
    }
    auto output = args_.values.find("--output");
    if (output == args_.values.end() || output->second == "-") {
      Status written = WriteFully(STDOUT_FILENO, object.data(), size_t(object.data_size()));
      if (!written.ok()) return Fail("cannot write to stdout: " + written.message());
      return kExitOk;
    }
    const std::string& path = output->second;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Fail("cannot create '" + path + "': " + std::strerror(errno));
    Status written = WriteFully(fd, object.data(), size_t(object.data_size()));
    if (close(fd) != 0 && written.ok()) written = Status::FromErrno("close", errno);
    if (!written.ok()) return Fail("cannot write '" + path + "': " + written.message());
    return kExitOk;
  }

  // ls [--bytes]
  int Ls() {
    std::string bad = CheckOptions(args_, {"--bytes"});
    if (!bad.empty()) return Usage(bad);
    if (!args_.positional.empty()) return Usage("ls takes no arguments");
    if (!Connect()) return kExitFailure;
    auto objects = client_->List();
    if (!objects.ok()) return Fail(objects.status().message());
    std::sort(objects->begin(), objects->end(), [](const ObjectInfo& a, const ObjectInfo& b) {
      return a.create_time != b.create_time ? a.create_time < b.create_time : a.id < b.id;
    });
    bool exact = HasFlag(args_, "--bytes");
    auto size = [exact](int64_t bytes) {
      return exact ? std::to_string(bytes) : FormatBytes(bytes);
    };
    int64_t now = int64_t(std::time(nullptr));
    std::printf("%-40s  %10s  %10s  %4s  %-7s  %s\n", "ID", "DATA", "METADATA", "REFS", "STATE",
                "AGE");
    for (const ObjectInfo& info : *objects) {
      std::printf("%-40s  %10s  %10s  %4d  %-7s  %s\n", info.id.Hex().c_str(),
                  size(info.data_size).c_str(), size(info.metadata_size).c_str(), info.ref_count,
                  info.sealed ? "sealed" : "created", FormatAge(now - info.create_time).c_str());
    }
    return kExitOk;
  }

  // rm ID...
  int Rm() {
    std::string bad = CheckOptions(args_, {});
    if (!bad.empty()) return Usage(bad);
    if (args_.positional.empty()) return Usage("rm needs at least one object ID");
    std::vector<ObjectId> ids;
    std::string error;
    if (!ParseIds(args_.positional, &ids, &error)) return Usage(error);
    if (!Connect()) return kExitFailure;
    std::vector<Status> results;
    Status deleted = client_->Delete(ids, &results);
    if (!deleted.ok()) return Fail(deleted.message());
    int exit_code = kExitOk;
    for (size_t i = 0; i < ids.size(); ++i) {
      const Status& result = results[i];
      if (result.ok()) continue;
      if (result.code() == StatusCode::kObjectInUse ||
          result.code() == StatusCode::kObjectNotSealed) {
        std::fprintf(stderr, "plasma rm: note: %s\n", result.message().c_str());
        continue;
      }
      if (result.IsObjectNotFound()) {
        Fail("object " + ids[i].Hex() + " not found in " + Where());
      } else {
        Fail(result.message());
      }
      exit_code = kExitFailure;
    }
    return exit_code;
  }

  // stat
  int Stat() {
    std::string bad = CheckOptions(args_, {});
    if (!bad.empty()) return Usage(bad);
    if (!args_.positional.empty()) return Usage("stat takes no arguments");
    if (!Connect()) return kExitFailure;
    auto objects = client_->List();
    if (!objects.ok()) return Fail(objects.status().message());
    auto debug = client_->DebugString();
    if (!debug.ok()) return Fail(debug.status().message());
    int64_t capacity = client_->memory_capacity();
    int64_t used = 0, sealed = 0, in_use = 0;
    for (const ObjectInfo& info : *objects) {
      used += info.data_size + info.metadata_size;
      if (info.sealed) ++sealed;
      if (info.ref_count > 0) ++in_use;
    }
    double percent = capacity > 0 ? 100.0 * double(used) / double(capacity) : 0.0;
    std::printf("socket:    %s\n", socket_.c_str());
    std::printf("capacity:  %lld bytes (%s)\n", (long long)capacity, FormatBytes(capacity).c_str());
    std::printf("used:      %lld bytes (%s, %.1f%%)\n", (long long)used, FormatBytes(used).c_str(),
                percent);
    std::printf("objects:   %zu (%lld sealed, %lld being created, %lld in use)\n",
                objects->size(), (long long)sealed, (long long)(int64_t(objects->size()) - sealed),
                (long long)in_use);
    if (!debug->empty()) {
      std::printf("\n%s", debug->c_str());
      if (debug->back() != '\n') std::printf("\n");
    }
    return kExitOk;
  }

  // fetch ID... [--timeout MS] [--manager SOCKET]
  int Fetch() {
    std::string bad = CheckOptions(args_, {"--timeout", "--manager"});
    if (!bad.empty()) return Usage(bad);
    if (args_.positional.empty()) return Usage("fetch needs at least one object ID");
    std::vector<ObjectId> ids;
    std::string error;
    if (!ParseIds(args_.positional, &ids, &error)) return Usage(error);
    int64_t timeout_ms = -1;
    if (auto t = args_.values.find("--timeout"); t != args_.values.end()) {
      if (!ParseTimeout(t->second, &timeout_ms)) {
        return Usage("--timeout must be a number of milliseconds >= -1, not '" + t->second + "'");
      }
    }
    ConnectOptions options;
    if (auto m = args_.values.find("--manager"); m != args_.values.end()) {
      options.manager_socket = m->second;
    } else if (const char* env = std::getenv("PLASMA_MANAGER_SOCKET"); env != nullptr) {
      options.manager_socket = env;
    } else {
      // plasma-cluster puts each node's manager.sock beside its store.sock.
      std::string beside = socket_.substr(0, socket_.rfind('/') + 1) + "manager.sock";
      struct stat st;
      if (stat(beside.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) options.manager_socket = beside;
    }
    if (!Connect(options)) return kExitFailure;
    Status fetched = client_->Fetch(ids, timeout_ms);
    if (!fetched.ok()) {
      std::string what = ids.size() == 1 ? "object " + ids[0].Hex()
                                         : "all of " + std::to_string(ids.size()) + " objects";
      std::string why = fetched.code() == StatusCode::kUnavailable && options.manager_socket.empty()
                            ? "no manager socket given (use --manager SOCKET or set "
                              "PLASMA_MANAGER_SOCKET)"
                            : fetched.message();
      return Fail("cannot fetch " + what + ": " + why);
    }
    return kExitOk;
  }

  Args args_;
  std::string socket_;
  std::shared_ptr<Client> client_;
};

int Main(int argc, char** argv) {
  Args args;
  std::string error = ParseArgs(argc, argv, &args);
  if (!error.empty()) return UsageError(args.command, error);
  if (args.command.empty()) {
    if (args.help) {
      std::fputs(kMainUsage, stdout);
      return kExitOk;
    }
    std::fputs(kMainUsage, stderr);
    return kExitUsage;
  }
  std::string socket = kDefaultSocket;
  if (const char* env = std::getenv("PLASMA_STORE_SOCKET"); env != nullptr && *env != '\0') {
    socket = env;
  }
  if (auto s = args.values.find("--socket"); s != args.values.end()) socket = s->second;
  return Cli(std::move(args), socket).Run();
}

}  // namespace
}  // namespace plasma

int main(int argc, char** argv) { return plasma::Main(argc, argv); }
