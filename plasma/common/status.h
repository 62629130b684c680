// Status: errors travel as values, never as exceptions (LevelDB / Arrow style).
#pragma once

#include <memory>
#include <string>
#include <utility>

namespace plasma {

enum class StatusCode : int {
  kOk = 0,
  // The Plasma 11 store error codes (PlasmaError in the wire schema).
  kObjectExists = 1,
  kObjectNotFound = 2,
  kOutOfMemory = 3,
  kObjectNotSealed = 4,
  kObjectInUse = 5,
  // Everything else a caller can meet.
  kInvalidArgument = 10,
  kIOError = 11,
  kProtocolError = 12,
  kTimedOut = 13,
  kUnavailable = 14,
  kNotSupported = 15,
  kInternal = 16,
};

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : state_(code == StatusCode::kOk
                   ? nullptr
                   : std::make_shared<State>(State{code, std::move(message)})) {}

  static Status OK() { return Status(); }
  static Status ObjectExists(std::string msg) { return {StatusCode::kObjectExists, std::move(msg)}; }
  static Status ObjectNotFound(std::string msg) { return {StatusCode::kObjectNotFound, std::move(msg)}; }
  static Status OutOfMemory(std::string msg) { return {StatusCode::kOutOfMemory, std::move(msg)}; }
  static Status ObjectNotSealed(std::string msg) { return {StatusCode::kObjectNotSealed, std::move(msg)}; }
  static Status ObjectInUse(std::string msg) { return {StatusCode::kObjectInUse, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status ProtocolError(std::string msg) { return {StatusCode::kProtocolError, std::move(msg)}; }
  static Status TimedOut(std::string msg) { return {StatusCode::kTimedOut, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status NotSupported(std::string msg) { return {StatusCode::kNotSupported, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  // An IOError carrying strerror(errno_value), prefixed by what was being done.
  static Status FromErrno(const std::string& context, int errno_value);

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  const std::string& message() const;
  // "ObjectNotFound: object 00ab... is not in the store"
  std::string ToString() const;

  bool IsObjectExists() const { return code() == StatusCode::kObjectExists; }
  bool IsObjectNotFound() const { return code() == StatusCode::kObjectNotFound; }
  bool IsOutOfMemory() const { return code() == StatusCode::kOutOfMemory; }
  bool IsTimedOut() const { return code() == StatusCode::kTimedOut; }
  bool IsIOError() const { return code() == StatusCode::kIOError; }

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const State> state_;
};

const char* StatusCodeName(StatusCode code);

// A value or the Status saying why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return value_; }
  T&& value() && { return std::move(value_); }
  const T& value() const& { return value_; }
  T& operator*() & { return value_; }
  const T& operator*() const& { return value_; }
  T&& operator*() && { return std::move(value_); }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }

 private:
  Status status_;
  T value_{};
};

}  // namespace plasma

#define PLASMA_RETURN_NOT_OK(expr)          \
  do {                                      \
    ::plasma::Status _st = (expr);          \
    if (!_st.ok()) return _st;              \
  } while (0)

#define PLASMA_CONCAT_INNER(a, b) a##b
#define PLASMA_CONCAT(a, b) PLASMA_CONCAT_INNER(a, b)
#define PLASMA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
// PLASMA_ASSIGN_OR_RETURN(auto x, SomethingReturningResult());
#define PLASMA_ASSIGN_OR_RETURN(lhs, expr) \
  PLASMA_ASSIGN_OR_RETURN_IMPL(PLASMA_CONCAT(_result_, __LINE__), lhs, expr)
