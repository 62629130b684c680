// The host's logger as handed to init(), with printf-style formatting.
// Every line is prefixed "fault: ".
#pragma once

#include <cstdarg>
#include <cstdio>

#include "transport/plasma_transport.h"

namespace plasma_fault {

struct Logger {
  plasma_tp_log_fn fn = nullptr;
  void* user_data = nullptr;
  int max_level = PLASMA_TP_LOG_INFO;

  bool Enabled(int level) const { return fn != nullptr && level <= max_level; }

  __attribute__((format(printf, 3, 4))) void Log(int level, const char* format, ...) const {
    if (!Enabled(level)) return;
    char line[1024];
    int prefix = std::snprintf(line, sizeof(line), "fault: ");
    va_list args;
    va_start(args, format);
    std::vsnprintf(line + prefix, sizeof(line) - prefix, format, args);
    va_end(args);
    fn(user_data, level, line);
  }
};

}  // namespace plasma_fault
