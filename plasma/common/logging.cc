#include "plasma/common/logging.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace plasma {

namespace {

std::string& ProgramName() {
  static std::string name = "plasma";
  return name;
}

LogLevel LevelFromEnvironment() {
  const char* value = std::getenv("PLASMA_LOG_LEVEL");
  if (value == nullptr) return LogLevel::kInfo;
  if (std::strcmp(value, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(value, "warning") == 0) return LogLevel::kWarning;
  if (std::strcmp(value, "error") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogProgramName(const std::string& name) { ProgramName() = name; }

bool LogEnabled(LogLevel level) {
  static const LogLevel threshold = LevelFromEnvironment();
  return level >= threshold;
}

LogMessage::~LogMessage() {
  timeval now;
  gettimeofday(&now, nullptr);
  tm local;
  localtime_r(&now.tv_sec, &local);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &local);
  std::string line = std::string(stamp) + "." + std::to_string(now.tv_usec / 100000) +
                     std::to_string(now.tv_usec / 10000 % 10) +
                     std::to_string(now.tv_usec / 1000 % 10) + " " + ProgramName() + "[" +
                     std::to_string(getpid()) + "] " + LevelName(level_) + " " +
                     stream_.str() + "\n";
  // One write per line so lines from several processes don't interleave.
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace plasma
