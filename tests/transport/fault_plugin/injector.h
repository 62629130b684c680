// The injection state of one context: its rules (from PLASMA_FAULT at init
// and from PLASMA_FAULT_FILE, re-read when the file changes), the decision
// for each host call, and the record of every injection (PLASMA_FAULT_LOG
// and the host logger). kill and stop are carried out here; every other
// action is returned to the caller to carry out.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/transport/fault_plugin/logger.h"
#include "tests/transport/fault_plugin/rules.h"

namespace plasma_fault {

constexpr const char* kRulesEnv = "PLASMA_FAULT";
constexpr const char* kRulesFileEnv = "PLASMA_FAULT_FILE";
constexpr const char* kFaultLogEnv = "PLASMA_FAULT_LOG";

// What the caller must do to this call. fired == false: nothing.
struct Injection {
  bool fired = false;
  Action action = Action::kError;
  int code = 0;
  bool has_delay = false;
  uint64_t delay_ms = 0;
};

class Injector {
 public:
  explicit Injector(const Logger* logger) : logger_(logger) {}

  // Reads the environment. False (after logging an ERROR naming the bad
  // rule) when PLASMA_FAULT or the rule file is malformed.
  bool Init();

  // Re-reads the rule file if it changed (mtime, size or inode) since the
  // last look. A malformed file logs an ERROR and leaves no file rules.
  void ReloadIfChanged();

  // Evaluates the rules for one call. kill/stop happen inside (after the
  // injection is recorded); their Injection has fired == false.
  Injection Decide(Op op, bool has_tag = false, uint64_t tag = 0);

  bool empty() const { return env_rules_.empty() && file_rules_.empty(); }

 private:
  struct FileStamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp& o) const {
      return exists == o.exists && dev == o.dev && ino == o.ino && size == o.size &&
             mtime_ns == o.mtime_ns;
    }
  };
  FileStamp Stamp() const;
  // Loads the file's rules into *rules; false with *error on a bad rule.
  bool LoadFile(std::vector<Rule>* rules, std::string* error) const;
  void Record(const Rule& rule, Op op, uint64_t tag) const;

  const Logger* logger_;
  std::vector<Rule> env_rules_;
  std::vector<Rule> file_rules_;
  std::string file_path_;
  FileStamp file_stamp_;
  std::string log_path_;
};

}  // namespace plasma_fault
