#include "transport/loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "plasma/common/logging.h"

#ifndef PLASMA_PLUGIN_INSTALL_DIR
#define PLASMA_PLUGIN_INSTALL_DIR ""
#endif

namespace plasma::transport {

namespace {

constexpr const char* kPluginPrefix = "libplasma-transport-";
constexpr const char* kPluginSuffix = ".so";

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsValidName(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

std::string ExecutableDirectory() {
  char buffer[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) return "";
  std::string exe(buffer, static_cast<size_t>(n));
  size_t slash = exe.rfind('/');
  return slash == std::string::npos ? "" : exe.substr(0, slash == 0 ? 1 : slash);
}

std::string JoinPath(const std::string& dir, const std::string& file) {
  return dir.empty() || dir.back() == '/' ? dir + file : dir + "/" + file;
}

// dlerror() text usually starts with the file name; we already name it.
std::string DlErrorWithoutPath(const std::string& path) {
  const char* error = dlerror();
  std::string text = error ? error : "unknown dynamic loader error";
  std::string prefix = path + ": ";
  if (text.compare(0, prefix.size(), prefix) == 0) text = text.substr(prefix.size());
  return text;
}

std::string Join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

void DefaultLog(int level, const std::string& message) {
  switch (level) {
    case PLASMA_TP_LOG_ERROR: PLASMA_LOG(kError) << message; break;
    case PLASMA_TP_LOG_WARN: PLASMA_LOG(kWarning) << message; break;
    case PLASMA_TP_LOG_INFO: PLASMA_LOG(kInfo) << message; break;
    default: PLASMA_LOG(kDebug) << message; break;
  }
}

// Names of the v1 function slots, for "has no 'recv' function" messages.
struct FunctionSlot {
  const char* name;
  bool (*present)(const plasma_tp_v1_t&);
};
#define PLASMA_TP_SLOT(field) {#field, [](const plasma_tp_v1_t& t) { return t.field != nullptr; }}
const FunctionSlot kV1Functions[] = {
    PLASMA_TP_SLOT(strerror),         PLASMA_TP_SLOT(init),
    PLASMA_TP_SLOT(finalize),         PLASMA_TP_SLOT(query),
    PLASMA_TP_SLOT(progress),         PLASMA_TP_SLOT(wait_fd),
    PLASMA_TP_SLOT(arm),              PLASMA_TP_SLOT(listen),
    PLASMA_TP_SLOT(listener_address), PLASMA_TP_SLOT(accept),
    PLASMA_TP_SLOT(close_listener),   PLASMA_TP_SLOT(connect),
    PLASMA_TP_SLOT(conn_status),      PLASMA_TP_SLOT(close_conn),
    PLASMA_TP_SLOT(mem_register),     PLASMA_TP_SLOT(mem_rkey),
    PLASMA_TP_SLOT(mem_deregister),   PLASMA_TP_SLOT(rkey_unpack),
    PLASMA_TP_SLOT(rkey_release),     PLASMA_TP_SLOT(send),
    PLASMA_TP_SLOT(recv),             PLASMA_TP_SLOT(probe),
    PLASMA_TP_SLOT(read),             PLASMA_TP_SLOT(test),
    PLASMA_TP_SLOT(cancel),
};
#undef PLASMA_TP_SLOT

// Checks what the host relies on before calling anything in the table.
Status CheckTable(const std::string& path, const plasma_tp_v1_t* table) {
  const std::string where = "transport plugin " + path + ": ";
  if (table == nullptr) {
    return Status::NotSupported(where + PLASMA_TP_SYMBOL_V1 + " is a null pointer");
  }
  if (table->abi_version != PLASMA_TP_ABI_VERSION_1) {
    return Status::NotSupported(where + PLASMA_TP_SYMBOL_V1 + " declares ABI version " +
                                std::to_string(table->abi_version) + ", this host speaks version " +
                                std::to_string(PLASMA_TP_ABI_VERSION_1));
  }
  if (table->struct_size < PLASMA_TP_V1_MIN_SIZE) {
    return Status::NotSupported(where + PLASMA_TP_SYMBOL_V1 + " table is " +
                                std::to_string(table->struct_size) +
                                " bytes, smaller than the " + std::to_string(PLASMA_TP_V1_MIN_SIZE) +
                                " bytes ABI v1 requires (built against a different "
                                "plasma_transport.h?)");
  }
  if (table->name == nullptr || !IsValidName(table->name)) {
    return Status::NotSupported(where + PLASMA_TP_SYMBOL_V1 + " has a missing or malformed name");
  }
  for (const FunctionSlot& slot : kV1Functions) {
    if (!slot.present(*table)) {
      return Status::NotSupported(where + PLASMA_TP_SYMBOL_V1 + " has no '" + slot.name +
                                  "' function");
    }
  }
  // Optional fields appended to v1: a table may end before them, but one
  // that covers a field declares it, so it must not be NULL.
  if (table->struct_size >= PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS &&
      table->poll_completions == nullptr) {
    return Status::NotSupported(
        where + PLASMA_TP_SYMBOL_V1 + " table is " + std::to_string(table->struct_size) +
        " bytes, which covers 'poll_completions', but that function is NULL (implement it, or "
        "declare struct_size PLASMA_TP_V1_MIN_SIZE)");
  }
  return Status::OK();
}

}  // namespace

std::string PluginFileName(const std::string& name) {
  return std::string(kPluginPrefix) + name + kPluginSuffix;
}

std::vector<std::string> PluginSearchPath() {
  std::vector<std::string> dirs;
  auto add = [&dirs](const std::string& entry) {
    if (entry.empty()) return;
    // Absolute and tidy, so every plugin path we report can be loaded as is.
    std::error_code ignored;
    std::string dir = std::filesystem::absolute(entry, ignored).lexically_normal().string();
    if (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  };
  if (const char* env = std::getenv(kTransportPathEnv)) {
    std::stringstream list(env);
    std::string dir;
    while (std::getline(list, dir, ':')) add(dir);
  }
  add(PLASMA_PLUGIN_INSTALL_DIR);
  std::string exe_dir = ExecutableDirectory();
  add(exe_dir);
  if (!exe_dir.empty()) {
    // An install under another prefix than the configured one ...
    add(JoinPath(exe_dir, "../lib/plasma-store/transports"));
    // ... and a build tree, which keeps binaries in bin/ and plugins in lib/.
    add(JoinPath(exe_dir, "../lib"));
  }
  return dirs;
}

Result<std::string> ResolvePlugin(const std::string& name_or_path) {
  if (!name_or_path.empty() && name_or_path[0] == '/') {
    if (!IsRegularFile(name_or_path)) {
      return Status::IOError("transport plugin " + name_or_path + ": no such file");
    }
    return name_or_path;
  }
  if (!IsValidName(name_or_path)) {
    return Status::InvalidArgument("transport plugin '" + name_or_path +
                                   "': not a plugin name ([A-Za-z0-9_-]+) nor an absolute path "
                                   "(set " + kTransportEnv + ")");
  }
  const std::string file = PluginFileName(name_or_path);
  std::vector<std::string> dirs = PluginSearchPath();
  for (const std::string& dir : dirs) {
    std::string candidate = JoinPath(dir, file);
    if (IsRegularFile(candidate)) return candidate;
  }
  return Status::IOError("transport plugin " + file + " not found in " + Join(dirs, ":") +
                         " (set " + kTransportPathEnv + " or " + kTransportEnv +
                         "=/absolute/path.so)");
}

StatusCode StatusCodeForTransport(int code) {
  switch (code) {
    case PLASMA_TP_OK: return StatusCode::kOk;
    case PLASMA_TP_ERR_NO_MEMORY: return StatusCode::kOutOfMemory;
    case PLASMA_TP_ERR_INVALID_ARGUMENT:
    case PLASMA_TP_ERR_ADDRESS:
    case PLASMA_TP_ERR_BAD_RKEY:
    case PLASMA_TP_ERR_OUT_OF_BOUNDS:
    case PLASMA_TP_ERR_MESSAGE_TOO_LARGE: return StatusCode::kInvalidArgument;
    case PLASMA_TP_ERR_UNSUPPORTED: return StatusCode::kNotSupported;
    case PLASMA_TP_ERR_TIMED_OUT: return StatusCode::kTimedOut;
    case PLASMA_TP_ERR_CONNECTION_REFUSED:
    case PLASMA_TP_ERR_CONNECTION_RESET:
    case PLASMA_TP_ERR_IO: return StatusCode::kIOError;
    case PLASMA_TP_ERR_PROTOCOL: return StatusCode::kProtocolError;
    case PLASMA_TP_ERR_AGAIN:
    case PLASMA_TP_ERR_CANCELED:
    case PLASMA_TP_ERR_NO_DEVICE: return StatusCode::kUnavailable;
    default: return StatusCode::kInternal;
  }
}

Result<std::unique_ptr<Plugin>> Plugin::LoadFromEnvironment(PluginOptions options) {
  const char* env = std::getenv(kTransportEnv);
  std::string choice = env != nullptr && *env != '\0' ? env : kDefaultTransport;
  if (choice.find(',') == std::string::npos) return Load(choice, std::move(options));
  // A list: the first that loads and initializes here wins; each one
  // skipped is logged with its reason, and all reasons come back if none did.
  std::vector<std::string> skipped;
  std::istringstream names(choice);
  for (std::string name; std::getline(names, name, ',');) {
    if (name.empty()) continue;
    auto loaded = Load(name, options);
    if (loaded.ok()) {
      PLASMA_LOG(kInfo) << kTransportEnv << "=" << choice << ": using " << name
                        << (skipped.empty() ? "" : " (skipped: " + Join(skipped, "; ") + ")");
      return loaded;
    }
    PLASMA_LOG(kInfo) << kTransportEnv << ": skipping " << name << ": "
                      << loaded.status().message();
    skipped.push_back(name + ": " + loaded.status().message());
  }
  return Status::Unavailable(std::string("no transport in ") + kTransportEnv + "=" + choice +
                             " can be used here: " + Join(skipped, "; "));
}

Result<std::unique_ptr<Plugin>> Plugin::Load(const std::string& name_or_path,
                                             PluginOptions options) {
  PLASMA_ASSIGN_OR_RETURN(std::string path, ResolvePlugin(name_or_path));
  std::unique_ptr<Plugin> plugin(new Plugin);
  plugin->path_ = path;
  plugin->options_ = std::move(options);
  if (!plugin->options_.log) plugin->options_.log = DefaultLog;

  dlerror();
  plugin->library_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (plugin->library_ == nullptr) {
    return Status::IOError("cannot load transport plugin " + path + ": " +
                           DlErrorWithoutPath(path));
  }
  dlerror();
  void* symbol = dlsym(plugin->library_, PLASMA_TP_SYMBOL_V1);
  if (symbol == nullptr) {
    return Status::NotSupported("transport plugin " + path + " does not export " +
                                PLASMA_TP_SYMBOL_V1 +
                                " (not a plasma transport plugin, or built for another ABI): " +
                                DlErrorWithoutPath(path));
  }
  const auto* table = static_cast<const plasma_tp_v1_t*>(symbol);
  PLASMA_RETURN_NOT_OK(CheckTable(path, table));
  plugin->table_ = table;

  plasma_tp_init_params_t params{};
  params.struct_size = sizeof(params);
  params.max_log_level = plugin->options_.max_log_level;
  params.log = &Plugin::LogTrampoline;
  params.log_user_data = plugin.get();
  params.local_address = plugin->options_.local_address.c_str();
  plasma_tp_context_t context = nullptr;
  plugin->in_init_ = true;
  int rc = table->init(&params, &context);
  plugin->in_init_ = false;
  if (rc == PLASMA_TP_OK && context != nullptr) {
    for (const std::string& line : plugin->held_errors_) plugin->options_.log(PLASMA_TP_LOG_ERROR, line);
  }
  plugin->held_errors_.clear();
  if (rc != PLASMA_TP_OK || context == nullptr) {
    std::string reason = table->strerror(rc) ? table->strerror(rc) : "unknown error";
    if (!plugin->last_error_.empty()) reason += ": " + plugin->last_error_;
    if (rc == PLASMA_TP_OK) reason = "init returned no context";
    PLASMA_LOG(kDebug) << path << ": init returned status " << rc;
    return Status(StatusCodeForTransport(rc == PLASMA_TP_OK ? PLASMA_TP_ERR_INTERNAL : rc),
                  "transport plugin " + path + " (" + table->name + "): init failed: " + reason);
  }
  plugin->context_ = context;

  plugin->properties_.struct_size = sizeof(plugin->properties_);
  rc = table->query(context, &plugin->properties_);
  if (rc != PLASMA_TP_OK) {
    PLASMA_LOG(kDebug) << path << ": query returned status " << rc;
    return Status(StatusCodeForTransport(rc), "transport plugin " + path + " (" + table->name +
                                                  "): query failed: " + table->strerror(rc));
  }
  return plugin;
}

bool Plugin::has_poll_completions() const {
  return table_->struct_size >= PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS &&
         table_->poll_completions != nullptr;
}

Plugin::~Plugin() {
  if (context_ != nullptr) table_->finalize(context_);
  if (library_ != nullptr) dlclose(library_);
}

void Plugin::LogTrampoline(void* user_data, int level, const char* message) {
  auto* plugin = static_cast<Plugin*>(user_data);
  if (plugin == nullptr || message == nullptr) return;
  if (level == PLASMA_TP_LOG_ERROR) {
    plugin->last_error_ = message;
    if (plugin->in_init_) {
      plugin->held_errors_.push_back(message);
      return;
    }
  }
  plugin->options_.log(level, message);
}

Status Plugin::ToStatus(int code, const std::string& what) const {
  if (code == PLASMA_TP_OK) return Status::OK();
  const char* text = table_->strerror(code);
  // The number is for whoever debugs the plugin, not for the user's error.
  PLASMA_LOG(kDebug) << what << ": " << name() << " status " << code;
  return Status(StatusCodeForTransport(code), what + ": " + (text ? text : "unknown error"));
}

std::vector<PluginInfo> ListPlugins() {
  std::vector<PluginInfo> found;
  std::set<std::string> seen_names;
  const std::string prefix = kPluginPrefix;
  const std::string suffix = kPluginSuffix;
  for (const std::string& dir : PluginSearchPath()) {
    DIR* listing = opendir(dir.c_str());
    if (listing == nullptr) continue;
    std::vector<std::string> files;
    while (dirent* entry = readdir(listing)) {
      std::string file = entry->d_name;
      if (file.size() > prefix.size() + suffix.size() && file.compare(0, prefix.size(), prefix) == 0 &&
          file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0) {
        files.push_back(file);
      }
    }
    closedir(listing);
    std::sort(files.begin(), files.end());
    for (const std::string& file : files) {
      std::string name = file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
      if (!seen_names.insert(name).second) continue;  // shadowed, as ResolvePlugin would
      PluginInfo info;
      info.name = name;
      info.path = JoinPath(dir, file);
      // Plugin lines go nowhere: a listing should not be interleaved with logs.
      PluginOptions quiet;
      quiet.log = [](int, const std::string&) {};
      auto loaded = Plugin::Load(info.path, quiet);
      if (!loaded.ok()) {
        info.status = loaded.status();
      } else {
        const Plugin& plugin = *loaded.value();
        info.name = plugin.name();
        info.version = plugin.version();
        info.abi_version = plugin.api().abi_version;
        info.properties = plugin.properties();
        info.description =
            plugin.properties().description ? plugin.properties().description : "";
        info.properties.description = nullptr;  // points into the unloaded library
        info.has_poll_completions = plugin.has_poll_completions();
      }
      found.push_back(std::move(info));
    }
  }
  return found;
}

std::string FormatPluginList(const std::vector<PluginInfo>& plugins) {
  std::ostringstream out;
  if (plugins.empty()) {
    out << "no transport plugins found in " << Join(PluginSearchPath(), ":") << "\n";
    return out.str();
  }
  for (const PluginInfo& info : plugins) {
    if (!info.status.ok()) {
      out << info.name << "  (unusable)  " << info.path << "\n    " << info.status.ToString()
          << "\n";
      continue;
    }
    const plasma_tp_properties_t& p = info.properties;
    out << info.name << "  " << info.version << "  ABI v" << info.abi_version << "  " << info.path
        << "\n    " << info.description << "\n    max message: "
        << (p.max_message_size == UINT64_MAX ? std::string("unlimited")
                                             : std::to_string(p.max_message_size) + " B")
        << ", eager threshold: " << p.eager_threshold << " B, max in flight: "
        << (p.max_inflight == 0 ? std::string("unlimited") : std::to_string(p.max_inflight))
        << ", native READ: " << ((p.flags & PLASMA_TP_PROP_NATIVE_READ) ? "yes" : "no (emulated)")
        << ", registration required: "
        << ((p.flags & PLASMA_TP_PROP_REGISTRATION_REQUIRED) ? "yes" : "no")
        << ", wait fd: " << ((p.flags & PLASMA_TP_PROP_WAIT_FD) ? "yes" : "no")
        << ", poll_completions: " << (info.has_poll_completions ? "yes" : "no") << "\n";
  }
  return out.str();
}

}  // namespace plasma::transport
