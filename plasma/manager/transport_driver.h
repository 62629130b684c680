// TransportDriver: the manager's one way of talking to a transport plugin.
// It posts requests (retrying those the plugin refuses with AGAIN, in
// order), hands every completion to the handler given at post time (a post
// that fails becomes a completion with that status, so every post ends in
// exactly one handler call), drives progress() and sleeps on the plugin's
// wait fd. A context whose progress() fails is retried with a growing
// back-off, never spun on.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
#include <vector>

#include "plasma/common/event_loop.h"
#include "plasma/common/status.h"
#include "plasma/manager/control_buffers.h"
#include "transport/loader.h"

namespace plasma {

class TransportDriver {
 public:
  using CompletionHandler = std::function<void(const plasma_tp_completion_t&)>;
  // Makes one post: returns the plugin's code, the request in *out on OK.
  using PostCall = std::function<int(plasma_tp_request_t* out)>;

  // after_pass runs after each progress pass (accepting, store calls);
  // on_failed when the context breaks (progress or arm < 0).
  TransportDriver(EventLoop* loop, transport::Plugin* plugin, std::function<void()> after_pass,
                  std::function<void(const Status&)> on_failed);
  ~TransportDriver();
  Status Start();

  const plasma_tp_v1_t& ops() const { return *ops_; }
  plasma_tp_context_t context() const { return context_; }
  transport::Plugin* plugin() const { return plugin_; }

  // op is PLASMA_TP_OP_* (for the completion of a failed post).
  void Post(uint32_t op, PostCall call, CompletionHandler handler);
  // Sends the first `length` bytes of a control buffer (kept alive until the
  // send completes); on_failed runs only if the send fails.
  void SendBuffer(plasma_tp_conn_t conn, uint64_t tag, std::shared_ptr<ControlBuffer> buffer,
                  size_t length, std::function<void(const Status&)> on_failed);
  // Asks for a progress pass soon (after a post, or when work was queued).
  void SchedulePass();
  size_t outstanding() const { return requests_.size() + deferred_.size(); }
  bool failed() const { return failed_; }

 private:
  struct Deferred {
    uint32_t op;
    PostCall call;
    CompletionHandler handler;
  };
  void Pass();
  void DispatchCompletions();
  void RetryDeferredPosts();
  void Fail(int code, const char* what);

  EventLoop* loop_;
  transport::Plugin* plugin_;
  const plasma_tp_v1_t* ops_;
  plasma_tp_context_t context_;
  std::function<void()> after_pass_;
  std::function<void(const Status&)> on_failed_;
  bool use_poll_completions_ = false;
  int wait_fd_ = -1;
  bool pass_scheduled_ = false;
  bool in_pass_ = false;
  bool failed_ = false;
  int64_t backoff_ms_ = 0;
  std::unordered_map<plasma_tp_request_t, CompletionHandler> requests_;
  // Posts refused with AGAIN, retried in order; while any wait, later posts
  // queue behind them so messages of one tag keep their order.
  std::deque<Deferred> deferred_;
  // Posts that failed outright, completed at the next pass (never inside Post).
  std::vector<std::pair<CompletionHandler, plasma_tp_completion_t>> failed_posts_;
};

}  // namespace plasma
