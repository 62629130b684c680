#include "plasma/common/status.h"

#include <cstring>

namespace plasma {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kObjectExists: return "ObjectExists";
    case StatusCode::kObjectNotFound: return "ObjectNotFound";
    case StatusCode::kOutOfMemory: return "OutOfMemory";
    case StatusCode::kObjectNotSealed: return "ObjectNotSealed";
    case StatusCode::kObjectInUse: return "ObjectInUse";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kProtocolError: return "ProtocolError";
    case StatusCode::kTimedOut: return "TimedOut";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kNotSupported: return "NotSupported";
    case StatusCode::kInternal: return "Internal";
  }
  return "Unknown";
}

Status Status::FromErrno(const std::string& context, int errno_value) {
  return IOError(context + ": " + std::strerror(errno_value));
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code())) + ": " + state_->message;
}

}  // namespace plasma
