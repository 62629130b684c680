// Minimal leveled logging to stderr: "2026-11-23T21:00:00.123 plasma-store INFO message".
// The level comes from PLASMA_LOG_LEVEL (debug|info|warning|error), default info.
#pragma once

#include <sstream>
#include <string>

namespace plasma {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogProgramName(const std::string& name);
bool LogEnabled(LogLevel level);

class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace plasma

#define PLASMA_LOG(level)                                              \
  if (!::plasma::LogEnabled(::plasma::LogLevel::level)) {              \
  } else                                                               \
    ::plasma::LogMessage(::plasma::LogLevel::level).stream()
