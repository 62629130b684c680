// Host side of the transport plugin ABI: finds a plugin .so, dlopen()s it,
// checks its plasma_transport_v1 table, and owns the initialized context.
//
//   PLASMA_TRANSPORT=socket|verbs|ucx|/abs/path/to/plugin.so   (default socket)
//   PLASMA_TRANSPORT_PATH=/dir1:/dir2                          (searched first)
//
// A name N resolves to libplasma-transport-N.so, looked for in
// PLASMA_TRANSPORT_PATH, then the installed plugin directory, then the
// directory of the running executable, its ../lib/plasma-store/transports
// and its ../lib. Every failure comes back as a
// plasma::Status whose message is one line naming the file and the reason.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plasma/common/status.h"
#include "transport/plasma_transport.h"

namespace plasma::transport {

constexpr const char* kTransportEnv = "PLASMA_TRANSPORT";
constexpr const char* kTransportPathEnv = "PLASMA_TRANSPORT_PATH";
constexpr const char* kDefaultTransport = "socket";

// "socket" -> "libplasma-transport-socket.so"
std::string PluginFileName(const std::string& name);

// The directories searched for plugin names, in order, without duplicates.
std::vector<std::string> PluginSearchPath();

// A name or an absolute path -> the path of an existing plugin file.
Result<std::string> ResolvePlugin(const std::string& name_or_path);

// Receives the plugin's log lines (level is PLASMA_TP_LOG_*). Called on the
// thread that called into the plugin.
using LogSink = std::function<void(int level, const std::string& message)>;

struct PluginOptions {
  // Default: plasma's logging (PLASMA_LOG), with plugin levels mapped.
  LogSink log;
  int max_log_level = PLASMA_TP_LOG_INFO;
  // The bind hint the host will later pass to listen() ("" = the plugin's
  // default). Passed to init() as local_address: a plugin bound to one
  // device (verbs) picks it there, before any memory is registered.
  std::string local_address;
};

// A loaded, checked and initialized plugin. Destruction finalizes the
// context, then dlclose()s the library. Not thread-safe, like the ABI: the
// host drives one Plugin from one thread at a time.
class Plugin {
 public:
  static Result<std::unique_ptr<Plugin>> Load(const std::string& name_or_path,
                                               PluginOptions options = {});
  // PLASMA_TRANSPORT, or "socket" when unset or empty.
  static Result<std::unique_ptr<Plugin>> LoadFromEnvironment(PluginOptions options = {});

  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // The raw ABI. Call as api().send(context(), ...).
  const plasma_tp_v1_t& api() const { return *table_; }
  plasma_tp_context_t context() const { return context_; }

  const std::string& path() const { return path_; }
  std::string name() const { return table_->name; }
  std::string version() const { return table_->plugin_version ? table_->plugin_version : ""; }
  const plasma_tp_properties_t& properties() const { return properties_; }
  // Whether the table has the optional poll_completions() (appended to v1;
  // absent from tables built against an older header).
  bool has_poll_completions() const;

  // A plugin status code as a plasma::Status: "what: <plugin's text> (code)".
  Status ToStatus(int code, const std::string& what) const;

 private:
  Plugin() = default;
  static void LogTrampoline(void* user_data, int level, const char* message);

  void* library_ = nullptr;
  const plasma_tp_v1_t* table_ = nullptr;
  plasma_tp_context_t context_ = nullptr;
  std::string path_;
  plasma_tp_properties_t properties_{};
  PluginOptions options_;
  // The last ERROR line the plugin logged, quoted in init failures.
  std::string last_error_;
  // While init() runs, ERROR lines are held back: a failed init quotes the
  // last one in its status (one line for the user, not two); a successful
  // one passes them on afterwards.
  bool in_init_ = false;
  std::vector<std::string> held_errors_;
};

// Maps a plugin status code to the nearest plasma::StatusCode.
StatusCode StatusCodeForTransport(int code);

struct PluginInfo {
  std::string name;  // from the table, or from the file name if it did not load
  std::string path;
  std::string version;
  uint32_t abi_version = 0;
  plasma_tp_properties_t properties{};
  std::string description;  // copied from properties (the plugin is unloaded again)
  bool has_poll_completions = false;
  Status status;            // OK, or why the plugin cannot be used here
};

// Every libplasma-transport-*.so in the search path (first one per name, as
// ResolvePlugin would pick), each loaded, queried and unloaded again.
std::vector<PluginInfo> ListPlugins();

// Human-readable listing for `plasma-manager --list-transports`.
std::string FormatPluginList(const std::vector<PluginInfo>& plugins);

}  // namespace plasma::transport
