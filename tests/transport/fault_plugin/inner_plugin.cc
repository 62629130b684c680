#include "tests/transport/fault_plugin/inner_plugin.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>

namespace plasma_fault {
namespace {

bool IsValidName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The directory this .so was loaded from.
std::string OwnDirectory(const void* symbol) {
  Dl_info info{};
  if (dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return "";
  std::string file = info.dli_fname;
  size_t slash = file.rfind('/');
  return slash == std::string::npos ? "." : file.substr(0, slash == 0 ? 1 : slash);
}

bool TableIsComplete(const plasma_tp_v1_t* t) {
  return t->strerror && t->init && t->finalize && t->query && t->progress && t->wait_fd &&
         t->arm && t->listen && t->listener_address && t->accept && t->close_listener &&
         t->connect && t->conn_status && t->close_conn && t->mem_register && t->mem_rkey &&
         t->mem_deregister && t->rkey_unpack && t->rkey_release && t->send && t->recv &&
         t->probe && t->read && t->test && t->cancel;
}

}  // namespace

bool OpenInnerPlugin(const plasma_tp_v1_t* self, InnerPlugin* inner, std::string* error) {
  const char* env = std::getenv(kInnerEnv);
  std::string name = env != nullptr && *env != '\0' ? env : kDefaultInner;
  std::string path;
  if (name[0] == '/') {
    path = name;
  } else if (IsValidName(name)) {
    std::string dir = OwnDirectory(self);
    if (dir.empty()) {
      *error = "cannot find the directory of the fault plugin (dladdr failed)";
      return false;
    }
    path = dir + "/libplasma-transport-" + name + ".so";
  } else {
    *error = std::string(kInnerEnv) + "='" + name +
             "' is neither a plugin name nor an absolute path";
    return false;
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "inner plugin " + path + ": no such file (set " + kInnerEnv + ")";
    return false;
  }
  dlerror();
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    *error = "cannot load inner plugin " + path + ": " + (why ? why : "unknown error");
    return false;
  }
  auto* api = static_cast<const plasma_tp_v1_t*>(dlsym(library, PLASMA_TP_SYMBOL_V1));
  std::string problem;
  if (api == nullptr) {
    problem = "does not export " PLASMA_TP_SYMBOL_V1;
  } else if (api == self) {
    problem = "is the fault plugin itself";
  } else if (api->abi_version != PLASMA_TP_ABI_VERSION_1) {
    problem = "declares ABI version " + std::to_string(api->abi_version);
  } else if (api->struct_size < PLASMA_TP_V1_MIN_SIZE) {
    problem = "has a table of " + std::to_string(api->struct_size) + " bytes, too small for v1";
  } else if (api->name == nullptr || !TableIsComplete(api)) {
    problem = "has no name or a NULL function";
  }
  if (!problem.empty()) {
    dlclose(library);
    *error = "inner plugin " + path + " " + problem;
    return false;
  }
  inner->library = library;
  inner->api = api;
  inner->path = path;
  inner->has_poll_completions = api->struct_size >= PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS &&
                                api->poll_completions != nullptr;
  // Test knob: use the inner's test() only, as with a plugin that predates
  // poll_completions() (exercises the wrapper's other completion path).
  const char* hide = std::getenv(kHidePollEnv);
  if (hide != nullptr && std::string(hide) == "1") inner->has_poll_completions = false;
  return true;
}

void CloseInnerPlugin(InnerPlugin* inner) {
  if (inner->library != nullptr) dlclose(inner->library);
  inner->library = nullptr;
  inner->api = nullptr;
}

}  // namespace plasma_fault
