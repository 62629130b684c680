// Fetch: asking this node's manager to bring objects from other nodes.
#include "plasma/client/client_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace plasma {

using client_internal::Prefixed;

namespace {

// A failed batch fetch names at most this many of its failures.
constexpr size_t kFetchFailuresListed = 8;

// The manager answers by timeout_ms itself; past that plus a grace period it
// is presumed hung, so the caller gets an error instead of waiting forever.
constexpr int64_t kManagerGraceMs = 10000;

Status WaitForManagerReply(int fd, int64_t timeout_ms) {
  if (timeout_ms < 0) return Status::OK();  // the caller asked to wait indefinitely
  int64_t wait_ms = std::min<int64_t>(timeout_ms + kManagerGraceMs, std::numeric_limits<int>::max());
  pollfd readable{fd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&readable, 1, int(wait_ms));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return Status::FromErrno("poll the manager connection", errno);
  if (ready == 0) {
    return Status::TimedOut("the manager did not answer within " + std::to_string(wait_ms) +
                            " ms (fetch timeout plus " + std::to_string(kManagerGraceMs) +
                            " ms grace)");
  }
  return Status::OK();
}

}  // namespace

Status ClientImpl::Fetch(const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  if (options_.manager_socket.empty()) {
    return Status::Unavailable(
        "no manager socket configured (set ConnectOptions::manager_socket to the node "
        "manager's Unix socket to fetch objects from other nodes)");
  }
  fb::ManagerFetchRequestT request;
  for (const ObjectId& id : ids) request.object_ids.push_back(id.Binary());
  request.timeout_ms = timeout_ms;
  fb::ManagerFetchReplyT reply;
  std::lock_guard<std::mutex> lock(manager_mutex_);
  Status status;
  // A kept connection may have gone stale (the manager restarted): one retry
  // on a fresh connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = manager_conn_ >= 0;
    if (!reused) {
      auto connected = ConnectUnixSocket(options_.manager_socket);
      if (!connected.ok()) {
        return Status::Unavailable("cannot reach the manager: " + connected.status().message());
      }
      manager_conn_ = *connected;
    }
    status = WriteMessage(manager_conn_, fb::MessageType::ManagerFetchRequest, request);
    if (status.ok()) status = WaitForManagerReply(manager_conn_, timeout_ms);
    if (status.IsTimedOut()) {
      close(manager_conn_);  // a late reply must not answer the next Fetch
      manager_conn_ = -1;
      break;  // not retried: the manager is there, only not answering
    }
    if (status.ok()) {
      status = ReadMessage(manager_conn_, fb::MessageType::ManagerFetchReply, &reply);
    }
    if (status.ok()) break;
    close(manager_conn_);
    manager_conn_ = -1;
    if (!reused) break;
  }
  if (!status.ok()) {
    return Status(status.code(), "fetch via manager at " + options_.manager_socket + ": " +
                                     status.message());
  }
  if (reply.object_ids.size() != ids.size() || reply.status_codes.size() != ids.size() ||
      reply.messages.size() != ids.size()) {
    return Status::ProtocolError("manager at " + options_.manager_socket +
                                 " answered a fetch of " + std::to_string(ids.size()) +
                                 " objects with " + std::to_string(reply.status_codes.size()));
  }
  // The first failure's code speaks for the call; the message lists each
  // failure (every one names its object) and how many arrived.
  size_t failed = 0;
  Status first;
  std::string reasons;
  for (size_t i = 0; i < ids.size(); ++i) {
    int code = reply.status_codes[i];
    if (code == 0) continue;
    if (std::string(StatusCodeName(static_cast<StatusCode>(code))) == "Unknown") {
      return Status::ProtocolError("manager at " + options_.manager_socket +
                                   " answered the fetch of " + ids[i].Hex() +
                                   " with unknown status code " + std::to_string(code));
    }
    if (failed++ == 0) first = Status(static_cast<StatusCode>(code), reply.messages[i]);
    // Each message names its id; a long batch lists the first few.
    if (failed <= kFetchFailuresListed) reasons += (failed > 1 ? "; " : "") + reply.messages[i];
  }
  if (failed == 0) return Status::OK();
  if (ids.size() == 1) return first;
  if (failed > kFetchFailuresListed) {
    reasons += "; and " + std::to_string(failed - kFetchFailuresListed) + " more";
  }
  return Status(first.code(), std::to_string(failed) + " of " + std::to_string(ids.size()) +
                                  " objects could not be fetched (" +
                                  std::to_string(ids.size() - failed) + " arrived): " + reasons);
}

}  // namespace plasma
