// Fault rules: parsing `ACTION[=VALUE]:OP[,key=value...]` lists and deciding,
// call by call, whether a rule fires. No I/O here; see injector.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace plasma_fault {

// The host calls a rule can name.
enum class Op : uint8_t {
  kSend,
  kRecv,
  kRead,
  kConnect,
  kAccept,
  kProgress,
  kTest,
  kPoll,  // poll_completions()
  kListen,
  kMemRegister,
  kRkeyUnpack,
  kCloseConn,
  kArm,
  kInit,
  kAny,  // every call above
};

enum class Action : uint8_t {
  kError,    // the call returns `code` (also `again`: code = AGAIN)
  kFail,     // the post succeeds, the request completes with `code`
  kDrop,     // the message is lost (send) or swallowed (recv); accept: connection dropped
  kDelay,    // the post is held `delay_ms`, then forwarded
  kReorder,  // send: held until the next send of another tag on the connection
  kKill,     // raise(SIGKILL)
  kStop,     // raise(SIGSTOP)
  kClose,    // the connection is closed under the host's feet
  kCorrupt,  // recv/read: forwarded; on success one byte of the received data is flipped
};

const char* OpName(Op op);
const char* ActionName(Action action);

// "CONNECTION_RESET" for -5, "OK" for 0, the number ("-99") for unknown codes.
std::string StatusName(int code);
// "RESET", "connection_reset", "PLASMA_TP_ERR_CONNECTION_RESET", "-5" -> -5.
// False for anything else (including non-negative numbers).
bool ParseStatusCode(const std::string& text, int* code);

struct Rule {
  std::string text;           // as written, for messages
  std::string action_word;    // "again" or "error" etc., for the fault log
  Action action = Action::kError;
  Op op = Op::kAny;
  int code = 0;               // kError, kFail
  bool has_tag = false;
  uint64_t tag = 0;
  uint64_t tag_mask = 0;
  uint64_t first = 1;         // fires from this matching call on (nth=N: N; after=N: N+1)
  uint64_t count = UINT64_MAX;  // at most this many injections
  bool has_prob = false;
  double prob = 1.0;
  uint64_t rng = 0;           // splitmix64 state (seed)
  bool has_delay = false;
  uint64_t delay_ms = 0;      // kDelay; kReorder: optional upper bound of the hold

  // Run-time state.
  uint64_t matches = 0;  // matching calls seen so far
  uint64_t fired = 0;    // injections so far
};

// One host call, as the rules see it.
struct Call {
  Op op;
  bool has_tag = false;
  uint64_t tag = 0;
};

// Does the rule's filter (op, tag) select this call?
bool Selects(const Rule& rule, const Call& call);
// Counts a selected call and says whether the rule fires on it
// (nth/after/count/prob). Deterministic for a given seed.
bool CountAndDecide(Rule* rule);

// Parses a rule list: rules separated by ';' or newlines, '#' starts a
// comment that runs to the end of the line, blank rules are ignored.
// On error returns false with *error = "rule 'TEXT': reason".
bool ParseRules(const std::string& text, std::vector<Rule>* rules, std::string* error);

}  // namespace plasma_fault
