#include "plasma/manager/transport_driver.h"

#include <algorithm>

#include "plasma/common/logging.h"

namespace plasma {

namespace {
// Without a wait fd, how often to poll while idle (to accept connections).
constexpr int64_t kIdlePollMs = 20;
// A broken context is tried again after this, doubling up to the maximum.
constexpr int64_t kFirstBackoffMs = 100;
constexpr int64_t kMaxBackoffMs = 10000;
// Completions taken from poll_completions() at a time.
constexpr size_t kCompletionBatch = 64;
// Progress rounds per pass before yielding to the rest of the event loop.
constexpr int kRoundsPerPass = 64;
}  // namespace

TransportDriver::TransportDriver(EventLoop* loop, transport::Plugin* plugin,
                                 std::function<void()> after_pass,
                                 std::function<void(const Status&)> on_failed)
    : loop_(loop),
      plugin_(plugin),
      ops_(&plugin->api()),
      context_(plugin->context()),
      after_pass_(std::move(after_pass)),
      on_failed_(std::move(on_failed)) {
  use_poll_completions_ = ops_->struct_size >= PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS &&
                          ops_->poll_completions != nullptr;
}

TransportDriver::~TransportDriver() {
  if (wait_fd_ >= 0) loop_->Unwatch(wait_fd_);
}

Status TransportDriver::Start() {
  if (ops_->wait_fd(context_, &wait_fd_) == PLASMA_TP_OK) {
    PLASMA_RETURN_NOT_OK(loop_->Watch(wait_fd_, EPOLLIN, [this](uint32_t) { Pass(); }));
  } else {
    wait_fd_ = -1;
  }
  SchedulePass();
  return Status::OK();
}

void TransportDriver::Post(uint32_t op, PostCall call, CompletionHandler handler) {
  if (!deferred_.empty()) {
    deferred_.push_back({op, std::move(call), std::move(handler)});
    return;
  }
  plasma_tp_request_t request = nullptr;
  int rc = call(&request);
  if (rc == PLASMA_TP_OK) {
    requests_[request] = std::move(handler);
  } else if (rc == PLASMA_TP_ERR_AGAIN) {
    deferred_.push_back({op, std::move(call), std::move(handler)});
  } else {
    plasma_tp_completion_t failed{};
    failed.status = rc;
    failed.op = op;
    failed_posts_.emplace_back(std::move(handler), failed);
  }
  // A post may only queue its work; a pass soon starts it even when the
  // wait fd has nothing to say yet.
  SchedulePass();
}

void TransportDriver::SendBuffer(plasma_tp_conn_t conn, uint64_t tag,
                                 std::shared_ptr<ControlBuffer> buffer, size_t length,
                                 std::function<void(const Status&)> on_failed) {
  ControlBuffer* raw = buffer.get();
  Post(
      PLASMA_TP_OP_SEND,
      [this, conn, tag, raw, length](plasma_tp_request_t* out) {
        return ops_->send(context_, conn, tag, raw->data(), length, raw->mem(), out);
      },
      [this, buffer, on_failed](const plasma_tp_completion_t& c) {
        if (c.status != PLASMA_TP_OK) on_failed(plugin_->ToStatus(c.status, "send"));
      });
}

void TransportDriver::RetryDeferredPosts() {
  while (!deferred_.empty()) {
    Deferred& next = deferred_.front();
    plasma_tp_request_t request = nullptr;
    int rc = next.call(&request);
    if (rc == PLASMA_TP_ERR_AGAIN) return;  // still exhausted: after the next progress
    if (rc == PLASMA_TP_OK) {
      requests_[request] = std::move(next.handler);
    } else {
      plasma_tp_completion_t failed{};
      failed.status = rc;
      failed.op = next.op;
      failed_posts_.emplace_back(std::move(next.handler), failed);
    }
    deferred_.pop_front();
  }
}

void TransportDriver::DispatchCompletions() {
  while (!failed_posts_.empty()) {
    auto failed = std::move(failed_posts_);
    failed_posts_.clear();
    for (auto& [handler, completion] : failed) handler(completion);  // may post again
  }
  if (use_poll_completions_) {
    plasma_tp_request_completion_t batch[kCompletionBatch];
    while (true) {
      size_t count = 0;
      int rc = ops_->poll_completions(context_, batch, kCompletionBatch, &count);
      if (rc != PLASMA_TP_OK) {
        Fail(rc, "poll completions");
        return;
      }
      // Every reported handle is released, and the next post may reuse its
      // value: take all the handlers out before running any.
      std::vector<std::pair<CompletionHandler, plasma_tp_completion_t>> ready;
      ready.reserve(count);
      for (size_t i = 0; i < count; ++i) {
        auto it = requests_.find(batch[i].request);
        if (it == requests_.end()) {
          PLASMA_LOG(kError) << "transport reported a request the manager never posted";
          continue;
        }
        ready.emplace_back(std::move(it->second), batch[i].completion);
        requests_.erase(it);
      }
      for (auto& [handler, completion] : ready) handler(completion);  // may post again
      if (count < kCompletionBatch) return;
    }
  }
  std::vector<plasma_tp_request_t> outstanding;
  outstanding.reserve(requests_.size());
  for (const auto& [request, handler] : requests_) outstanding.push_back(request);
  for (plasma_tp_request_t request : outstanding) {
    auto it = requests_.find(request);
    if (it == requests_.end()) continue;
    plasma_tp_completion_t completion{};
    if (ops_->test(context_, request, &completion) != PLASMA_TP_OK) continue;
    CompletionHandler handler = std::move(it->second);
    requests_.erase(it);
    handler(completion);  // may post again
  }
}

void TransportDriver::SchedulePass() {
  if (pass_scheduled_ || in_pass_) return;
  pass_scheduled_ = true;
  int64_t delay = failed_ ? backoff_ms_ : 0;
  if (!failed_ && wait_fd_ < 0 && outstanding() == 0 && failed_posts_.empty()) delay = kIdlePollMs;
  loop_->AddTimer(delay, [this] {
    pass_scheduled_ = false;
    Pass();
  });
}

void TransportDriver::Fail(int code, const char* what) {
  if (!failed_) {
    Status why = plugin_->ToStatus(code, std::string("transport ") + what);
    PLASMA_LOG(kError) << why.ToString() << "; retrying with back-off";
    backoff_ms_ = kFirstBackoffMs;
    failed_ = true;
    // The fd may stay readable with work progress() cannot do: stop
    // listening to it, or the event loop spins; the back-off timer retries.
    if (wait_fd_ >= 0) loop_->SetEvents(wait_fd_, 0);
    on_failed_(why);
  } else {
    backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
  }
}

void TransportDriver::Pass() {
  if (in_pass_) return;
  in_pass_ = true;
  bool broken = false;
  for (int round = 0; round < kRoundsPerPass; ++round) {
    int events = ops_->progress(context_);
    if (events < 0) {
      Fail(events, "progress");
      broken = true;
      break;
    }
    RetryDeferredPosts();
    DispatchCompletions();
    after_pass_();
    if (events == 0 && failed_posts_.empty()) break;
  }
  if (!broken && failed_) {
    PLASMA_LOG(kInfo) << "transport " << ops_->name << " works again";
    failed_ = false;
    if (wait_fd_ >= 0) loop_->SetEvents(wait_fd_, EPOLLIN);
  }
  in_pass_ = false;
  if (failed_) {
    SchedulePass();  // after the back-off
    return;
  }
  if (wait_fd_ < 0 || !failed_posts_.empty()) {
    SchedulePass();
    return;
  }
  int armed = ops_->arm(context_);
  if (armed < 0) {
    Fail(armed, "arm");
    SchedulePass();
    return;
  }
  if (armed == PLASMA_TP_IN_PROGRESS) {
    SchedulePass();
    return;
  }
  // Everything pending wakes the fd. Posts refused with AGAIN wait for the
  // completions that free resources, which wake it too; a short timer
  // covers a plugin that frees them otherwise.
  if (!deferred_.empty() && !pass_scheduled_) {
    pass_scheduled_ = true;
    loop_->AddTimer(1, [this] {
      pass_scheduled_ = false;
      Pass();
    });
  }
}

}  // namespace plasma
