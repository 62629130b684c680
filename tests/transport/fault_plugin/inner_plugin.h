// The wrapped ("inner") plugin: found from PLASMA_FAULT_INNER (a name,
// resolved as libplasma-transport-NAME.so in this plugin's own directory, or
// an absolute path; default "socket"), dlopen()ed RTLD_NOW | RTLD_LOCAL, and
// checked the way the host loader checks a plugin.
#pragma once

#include <string>

#include "transport/plasma_transport.h"

namespace plasma_fault {

constexpr const char* kInnerEnv = "PLASMA_FAULT_INNER";
constexpr const char* kDefaultInner = "socket";
// "1": ignore the inner's poll_completions() and use its test() only.
constexpr const char* kHidePollEnv = "PLASMA_FAULT_HIDE_POLL";

struct InnerPlugin {
  void* library = nullptr;
  const plasma_tp_v1_t* api = nullptr;
  std::string path;
  bool has_poll_completions = false;  // the table's struct_size covers it and it is set
};

// Opens the inner plugin. False with *error (one line) on failure.
bool OpenInnerPlugin(const plasma_tp_v1_t* self, InnerPlugin* inner, std::string* error);
void CloseInnerPlugin(InnerPlugin* inner);

}  // namespace plasma_fault
