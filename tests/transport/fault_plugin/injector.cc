#include "tests/transport/fault_plugin/injector.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace plasma_fault {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Reads a whole (small) file; false if it cannot be opened.
bool ReadWholeFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buffer[4096];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

}  // namespace

bool Injector::Init() {
  log_path_ = Env(kFaultLogEnv);
  std::string error;
  if (!ParseRules(Env(kRulesEnv), &env_rules_, &error)) {
    logger_->Log(PLASMA_TP_LOG_ERROR, "malformed %s: %s", kRulesEnv, error.c_str());
    return false;
  }
  file_path_ = Env(kRulesFileEnv);
  if (!file_path_.empty()) {
    file_stamp_ = Stamp();
    if (!LoadFile(&file_rules_, &error)) {
      logger_->Log(PLASMA_TP_LOG_ERROR, "malformed %s %s: %s", kRulesFileEnv, file_path_.c_str(),
                   error.c_str());
      return false;
    }
  }
  if (!empty()) {
    logger_->Log(PLASMA_TP_LOG_INFO, "%zu fault rule(s) from %s, %zu from %s", env_rules_.size(),
                 kRulesEnv, file_rules_.size(),
                 file_path_.empty() ? "no rule file" : file_path_.c_str());
  }
  return true;
}

Injector::FileStamp Injector::Stamp() const {
  FileStamp stamp;
  struct stat st;
  if (stat(file_path_.c_str(), &st) != 0) return stamp;
  stamp.exists = true;
  stamp.dev = st.st_dev;
  stamp.ino = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return stamp;
}

bool Injector::LoadFile(std::vector<Rule>* rules, std::string* error) const {
  std::string text;
  if (!ReadWholeFile(file_path_, &text)) {
    rules->clear();  // no file (yet): no file rules
    return true;
  }
  return ParseRules(text, rules, error);
}

void Injector::ReloadIfChanged() {
  if (file_path_.empty()) return;
  FileStamp now = Stamp();
  if (now == file_stamp_) return;
  file_stamp_ = now;
  std::vector<Rule> rules;
  std::string error;
  if (!LoadFile(&rules, &error)) {
    logger_->Log(PLASMA_TP_LOG_ERROR, "malformed %s %s: %s; no file rules until it changes",
                 kRulesFileEnv, file_path_.c_str(), error.c_str());
    file_rules_.clear();
    return;
  }
  file_rules_ = std::move(rules);  // counters start afresh
  logger_->Log(PLASMA_TP_LOG_INFO, "reloaded %s: %zu rule(s)", file_path_.c_str(),
               file_rules_.size());
}

void Injector::Record(const Rule& rule, Op op, uint64_t tag) const {
  logger_->Log(PLASMA_TP_LOG_WARN, "injecting %s at %s tag=0x%" PRIx64 " (call %" PRIu64
               " matching rule '%s')",
               rule.action_word.c_str(), OpName(op), tag, rule.matches, rule.text.c_str());
  if (log_path_.empty()) return;
  char line[256];
  int n = std::snprintf(line, sizeof(line), "%d %s %s tag=0x%" PRIx64 " nth=%" PRIu64 "\n",
                        static_cast<int>(getpid()), rule.action_word.c_str(), OpName(op), tag,
                        rule.matches);
  if (n <= 0) return;
  int fd = open(log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    logger_->Log(PLASMA_TP_LOG_ERROR, "cannot open %s %s: %s", kFaultLogEnv, log_path_.c_str(),
                 std::strerror(errno));
    return;
  }
  // One write() per line: O_APPEND keeps lines of concurrent processes whole.
  ssize_t ignored = write(fd, line, static_cast<size_t>(n));
  (void)ignored;
  close(fd);
}

Injection Injector::Decide(Op op, bool has_tag, uint64_t tag) {
  Injection injection;
  if (empty()) return injection;
  Call call{op, has_tag, tag};
  const Rule* chosen = nullptr;
  // Every selecting rule counts the call; the first one that fires wins.
  for (std::vector<Rule>* rules : {&env_rules_, &file_rules_}) {
    for (Rule& rule : *rules) {
      if (!Selects(rule, call)) continue;
      if (chosen == nullptr) {
        if (CountAndDecide(&rule)) chosen = &rule;
      } else {
        ++rule.matches;
      }
    }
  }
  if (chosen == nullptr) return injection;
  Record(*chosen, op, tag);
  if (chosen->action == Action::kKill) {
    raise(SIGKILL);
    return injection;  // not reached
  }
  if (chosen->action == Action::kStop) {
    raise(SIGSTOP);  // returns once someone sends SIGCONT; the call then proceeds
    return injection;
  }
  injection.fired = true;
  injection.action = chosen->action;
  injection.code = chosen->code;
  injection.has_delay = chosen->has_delay;
  injection.delay_ms = chosen->delay_ms;
  return injection;
}

}  // namespace plasma_fault
