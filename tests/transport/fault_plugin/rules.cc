#include "tests/transport/fault_plugin/rules.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "transport/plasma_transport.h"

namespace plasma_fault {
namespace {

struct OpEntry {
  const char* name;
  Op op;
};
const OpEntry kOps[] = {
    {"send", Op::kSend},          {"recv", Op::kRecv},
    {"read", Op::kRead},          {"connect", Op::kConnect},
    {"accept", Op::kAccept},      {"progress", Op::kProgress},
    {"test", Op::kTest},          {"poll", Op::kPoll},
    {"listen", Op::kListen},      {"mem_register", Op::kMemRegister},
    {"rkey_unpack", Op::kRkeyUnpack}, {"close_conn", Op::kCloseConn},
    {"arm", Op::kArm},            {"init", Op::kInit},
    {"any", Op::kAny},
};

struct CodeEntry {
  const char* name;
  int code;
};
const CodeEntry kCodes[] = {
    {"NO_MEMORY", PLASMA_TP_ERR_NO_MEMORY},
    {"INVALID_ARGUMENT", PLASMA_TP_ERR_INVALID_ARGUMENT},
    {"UNSUPPORTED", PLASMA_TP_ERR_UNSUPPORTED},
    {"CONNECTION_REFUSED", PLASMA_TP_ERR_CONNECTION_REFUSED},
    {"CONNECTION_RESET", PLASMA_TP_ERR_CONNECTION_RESET},
    {"TIMED_OUT", PLASMA_TP_ERR_TIMED_OUT},
    {"BAD_RKEY", PLASMA_TP_ERR_BAD_RKEY},
    {"OUT_OF_BOUNDS", PLASMA_TP_ERR_OUT_OF_BOUNDS},
    {"MESSAGE_TOO_LARGE", PLASMA_TP_ERR_MESSAGE_TOO_LARGE},
    {"CANCELED", PLASMA_TP_ERR_CANCELED},
    {"AGAIN", PLASMA_TP_ERR_AGAIN},
    {"ADDRESS", PLASMA_TP_ERR_ADDRESS},
    {"PROTOCOL", PLASMA_TP_ERR_PROTOCOL},
    {"IO", PLASMA_TP_ERR_IO},
    {"NO_DEVICE", PLASMA_TP_ERR_NO_DEVICE},
    {"INTERNAL", PLASMA_TP_ERR_INTERNAL},
    // Short aliases.
    {"RESET", PLASMA_TP_ERR_CONNECTION_RESET},
    {"REFUSED", PLASMA_TP_ERR_CONNECTION_REFUSED},
    {"TIMEOUT", PLASMA_TP_ERR_TIMED_OUT},
    {"NOMEM", PLASMA_TP_ERR_NO_MEMORY},
    {"INVAL", PLASMA_TP_ERR_INVALID_ARGUMENT},
    {"TOO_LARGE", PLASMA_TP_ERR_MESSAGE_TOO_LARGE},
};

std::string Trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

std::string Upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

std::vector<std::string> Split(const std::string& s, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t at = s.find(separator, start);
    size_t length = at == std::string::npos ? std::string::npos : at - start;
    parts.push_back(Trim(s.substr(start, length)));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return parts;
}

bool ParseUnsigned(const std::string& text, int base, uint64_t* out) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long value = std::strtoull(text.c_str(), &end, base);
  if (errno != 0 || end == text.c_str() || *end != '\0') return false;
  *out = value;
  return true;
}

bool ParseHex(const std::string& text, uint64_t* out) {
  std::string digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits = digits.substr(2);
  }
  if (digits.empty() || digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return false;
  }
  return ParseUnsigned(digits, 16, out);
}

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool OneOf(Op op, std::initializer_list<Op> ops) {
  for (Op o : ops) {
    if (o == op) return true;
  }
  return false;
}

// Which ops each action applies to.
bool ActionAppliesTo(Action action, Op op) {
  switch (action) {
    case Action::kError:
    case Action::kKill:
    case Action::kStop:
      return true;
    case Action::kFail:
      return OneOf(op, {Op::kSend, Op::kRecv, Op::kRead, Op::kConnect});
    case Action::kDrop:
      return OneOf(op, {Op::kSend, Op::kRecv, Op::kAccept});
    case Action::kDelay:
      return OneOf(op, {Op::kSend, Op::kRecv, Op::kRead});
    case Action::kReorder:
      return op == Op::kSend;
    case Action::kCorrupt:
      return OneOf(op, {Op::kRecv, Op::kRead});
    case Action::kClose:
      return OneOf(op, {Op::kSend, Op::kRecv, Op::kRead, Op::kRkeyUnpack, Op::kConnect,
                        Op::kAccept, Op::kTest, Op::kProgress});
  }
  return false;
}

class RuleParser {
 public:
  explicit RuleParser(const std::string& text) { rule_.text = text; }

  bool Parse(std::string* error) {
    if (!ParseInto()) {
      *error = "rule '" + rule_.text + "': " + why_;
      return false;
    }
    return true;
  }
  Rule& rule() { return rule_; }

 private:
  bool Fail(const std::string& why) {
    why_ = why;
    return false;
  }

  bool ParseInto() {
    size_t colon = rule_.text.find(':');
    if (colon == std::string::npos) return Fail("expected ACTION:OP[,key=value...]");
    // The head may carry parameters too: "delay,ms=5:send".
    std::vector<std::string> head = Split(rule_.text.substr(0, colon), ',');
    std::vector<std::string> tail = Split(rule_.text.substr(colon + 1), ',');
    if (!ParseAction(head[0])) return false;
    if (!ParseOp(tail[0])) return false;
    std::vector<std::string> params(head.begin() + 1, head.end());
    params.insert(params.end(), tail.begin() + 1, tail.end());
    for (const std::string& param : params) {
      if (!ParseParam(param)) return false;
    }
    return Check();
  }

  bool ParseAction(const std::string& word) {
    std::string name = word, value;
    size_t eq = word.find('=');
    if (eq != std::string::npos) {
      name = Trim(word.substr(0, eq));
      value = Trim(word.substr(eq + 1));
      if (value.empty()) return Fail("'" + name + "=' needs a value");
    }
    rule_.action_word = name;
    if (name == "error") {
      rule_.action = Action::kError;
      if (!value.empty()) return SetCode(value);
    } else if (name == "again") {
      rule_.action = Action::kError;
      rule_.code = PLASMA_TP_ERR_AGAIN;
      if (!value.empty()) return Fail("'again' takes no value (it is error=AGAIN)");
      seen_.insert("code");
    } else if (name == "fail") {
      rule_.action = Action::kFail;
      if (!value.empty()) return SetCode(value);
    } else if (name == "delay") {
      rule_.action = Action::kDelay;
      if (!value.empty()) return SetDelay(value);
    } else {
      static const struct {
        const char* name;
        Action action;
      } kPlain[] = {{"drop", Action::kDrop},   {"reorder", Action::kReorder},
                    {"kill", Action::kKill},   {"stop", Action::kStop},
                    {"close", Action::kClose}, {"corrupt", Action::kCorrupt}};
      bool found = false;
      for (const auto& entry : kPlain) {
        if (name == entry.name) {
          rule_.action = entry.action;
          found = true;
        }
      }
      if (!found) {
        return Fail("unknown action '" + name +
                    "' (error=CODE, again, fail[=CODE], drop, delay, reorder, kill, stop, close)");
      }
      if (!value.empty()) return Fail("'" + name + "' takes no value");
    }
    return true;
  }

  bool ParseOp(const std::string& word) {
    for (const OpEntry& entry : kOps) {
      if (word == entry.name) {
        rule_.op = entry.op;
        return true;
      }
    }
    return Fail(word.empty() ? "missing OP after ':'" : "unknown op '" + word + "'");
  }

  bool SetCode(const std::string& value) {
    if (!seen_.insert("code").second) return Fail("the status code is given twice");
    if (!ParseStatusCode(value, &rule_.code)) {
      return Fail("'" + value + "' is not a PLASMA_TP_ERR_* name or a negative number");
    }
    return true;
  }

  bool SetDelay(const std::string& value) {
    if (!seen_.insert("ms").second) return Fail("the delay is given twice");
    if (!ParseUnsigned(value, 10, &rule_.delay_ms) || rule_.delay_ms > 24ull * 3600 * 1000) {
      return Fail("ms='" + value + "' is not a number of milliseconds");
    }
    rule_.has_delay = true;
    return true;
  }

  bool SetTag(const std::string& value) {
    std::string tag = value, mask;
    size_t slash = value.find('/');
    if (slash != std::string::npos) {
      tag = Trim(value.substr(0, slash));
      mask = Trim(value.substr(slash + 1));
    }
    rule_.tag_mask = PLASMA_TP_TAG_EXACT;
    if (!ParseHex(tag, &rule_.tag) || (!mask.empty() && !ParseHex(mask, &rule_.tag_mask)) ||
        (slash != std::string::npos && mask.empty())) {
      return Fail("tag='" + value + "' is not HEX or HEX/HEXMASK");
    }
    if ((rule_.tag | rule_.tag_mask) & ~PLASMA_TP_TAG_EXACT) {
      return Fail("tag='" + value + "' has bits above the 48 host tag bits");
    }
    rule_.has_tag = true;
    return true;
  }

  bool ParseParam(const std::string& param) {
    size_t eq = param.find('=');
    if (param.empty()) return Fail("empty parameter (stray ',')");
    if (eq == std::string::npos) return Fail("parameter '" + param + "' is not key=value");
    std::string key = Trim(param.substr(0, eq));
    std::string value = Trim(param.substr(eq + 1));
    if (value.empty()) return Fail("'" + key + "=' needs a value");
    if (key == "code" || key == "status") return SetCode(value);
    if (key == "ms") return SetDelay(value);
    if (!seen_.insert(key).second) return Fail("'" + key + "' is given twice");
    uint64_t number = 0;
    if (key == "tag") {
      if (seen_.count("kind")) return Fail("give tag= or kind=, not both");
      return SetTag(value);
    }
    if (key == "kind") {
      if (seen_.count("tag")) return Fail("give tag= or kind=, not both");
      if (!ParseHex(value, &number) || number > 0xFF) {
        return Fail("kind='" + value + "' is not a HEX byte (the tag's bits 40..47)");
      }
      rule_.has_tag = true;
      rule_.tag = number << 40;
      rule_.tag_mask = 0xFFull << 40;
      return true;
    }
    if (key == "nth" || key == "after" || key == "count" || key == "seed") {
      if (!ParseUnsigned(value, 0, &number)) return Fail(key + "='" + value + "' is not a number");
      if (key == "nth") {
        if (seen_.count("after")) return Fail("give nth= or after=, not both");
        if (number == 0) return Fail("nth= counts from 1");
        rule_.first = number;
        if (!seen_.count("count")) rule_.count = 1;
      } else if (key == "after") {
        if (seen_.count("nth")) return Fail("give nth= or after=, not both");
        if (number == UINT64_MAX) return Fail("after= is too large");
        rule_.first = number + 1;
      } else if (key == "count") {
        if (number == 0) return Fail("count=0 would never fire");
        rule_.count = number;
      } else {
        rule_.rng = number;
      }
      return true;
    }
    if (key == "prob") {
      char* end = nullptr;
      errno = 0;
      double p = std::strtod(value.c_str(), &end);
      if (errno != 0 || end == value.c_str() || *end != '\0' || !(p >= 0.0 && p <= 1.0)) {
        return Fail("prob='" + value + "' is not a probability in [0, 1]");
      }
      rule_.has_prob = true;
      rule_.prob = p;
      return true;
    }
    return Fail("unknown key '" + key + "' (tag, kind, nth, after, count, prob, seed, ms, code)");
  }

  bool Check() {
    if (!ActionAppliesTo(rule_.action, rule_.op)) {
      return Fail(std::string("'") + rule_.action_word + "' does not apply to '" +
                  OpName(rule_.op) + "'");
    }
    if (rule_.action == Action::kError && !seen_.count("code")) {
      return Fail("error needs a code: error=CODE (e.g. error=RESET)");
    }
    if (rule_.action == Action::kFail && !seen_.count("code")) {
      rule_.code = rule_.op == Op::kConnect ? PLASMA_TP_ERR_CONNECTION_REFUSED : PLASMA_TP_ERR_IO;
    }
    if (seen_.count("code") && rule_.action != Action::kError && rule_.action != Action::kFail) {
      return Fail("code= applies only to error and fail");
    }
    if (rule_.action == Action::kDelay && !rule_.has_delay) {
      return Fail("delay needs ms=D");
    }
    if (rule_.has_delay && rule_.action != Action::kDelay && rule_.action != Action::kReorder) {
      return Fail("ms= applies only to delay and reorder");
    }
    if (rule_.has_tag && !OneOf(rule_.op, {Op::kSend, Op::kRecv, Op::kTest, Op::kAny})) {
      return Fail(std::string("'") + OpName(rule_.op) + "' has no tag to match");
    }
    if (seen_.count("seed") && !rule_.has_prob) return Fail("seed= needs prob=");
    return true;
  }

  Rule rule_;
  std::set<std::string> seen_;
  std::string why_;
};

}  // namespace

const char* OpName(Op op) {
  for (const OpEntry& entry : kOps) {
    if (entry.op == op) return entry.name;
  }
  return "?";
}

const char* ActionName(Action action) {
  switch (action) {
    case Action::kError: return "error";
    case Action::kFail: return "fail";
    case Action::kDrop: return "drop";
    case Action::kDelay: return "delay";
    case Action::kReorder: return "reorder";
    case Action::kKill: return "kill";
    case Action::kStop: return "stop";
    case Action::kClose: return "close";
    case Action::kCorrupt: return "corrupt";
  }
  return "?";
}

std::string StatusName(int code) {
  if (code == PLASMA_TP_OK) return "OK";
  for (const CodeEntry& entry : kCodes) {
    if (entry.code == code) return entry.name;  // the long names come first
  }
  return std::to_string(code);
}

bool ParseStatusCode(const std::string& text, int* code) {
  std::string name = Upper(Trim(text));
  if (!name.empty() && name[0] == '-') {
    uint64_t magnitude = 0;
    if (!ParseUnsigned(name.substr(1), 10, &magnitude) || magnitude == 0 || magnitude > 1000000) {
      return false;
    }
    *code = -static_cast<int>(magnitude);
    return true;
  }
  const std::string prefix = "PLASMA_TP_ERR_";
  if (name.compare(0, prefix.size(), prefix) == 0) name = name.substr(prefix.size());
  for (const CodeEntry& entry : kCodes) {
    if (name == entry.name) {
      *code = entry.code;
      return true;
    }
  }
  return false;
}

bool Selects(const Rule& rule, const Call& call) {
  if (rule.op != Op::kAny && rule.op != call.op) return false;
  if (rule.has_tag && (!call.has_tag || (call.tag & rule.tag_mask) != (rule.tag & rule.tag_mask))) {
    return false;
  }
  return true;
}

bool CountAndDecide(Rule* rule) {
  ++rule->matches;
  if (rule->matches < rule->first || rule->fired >= rule->count) return false;
  if (rule->has_prob) {
    double draw = static_cast<double>(SplitMix64(&rule->rng) >> 11) * (1.0 / 9007199254740992.0);
    if (!(draw < rule->prob)) return false;
  }
  ++rule->fired;
  return true;
}

bool ParseRules(const std::string& text, std::vector<Rule>* rules, std::string* error) {
  std::vector<Rule> parsed;
  // Comments first, then split on ';' and newlines.
  std::string cleaned;
  bool in_comment = false;
  for (char c : text) {
    if (c == '\n') {
      in_comment = false;
      cleaned += ';';
    } else if (c == '#') {
      in_comment = true;
    } else if (!in_comment) {
      cleaned += c;
    }
  }
  for (const std::string& piece : Split(cleaned, ';')) {
    if (piece.empty()) continue;
    RuleParser parser(piece);
    if (!parser.Parse(error)) return false;
    parsed.push_back(std::move(parser.rule()));
  }
  *rules = std::move(parsed);
  return true;
}

}  // namespace plasma_fault
