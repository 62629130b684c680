// The wrapper's per-context state: wrapped connections and requests, posts
// held back (delay, reorder), completions made up without the inner plugin
// (fail, drop, close), the wait fd that nests the inner's with a timer for
// held posts, and closing a connection under the host's feet.
//
// Requests: every request the host sees is a wrapper. It is held (not yet
// given to the inner plugin), forwarded (the inner owns a request for it),
// or done (its completion is stored until the host collects it).
//
// Completions reach the wrapper one way per inner request, as the ABI asks:
// if the inner plugin has poll_completions() ("poll mode") only through it
// (drained in progress(), test() and poll_completions()), otherwise only
// through the inner test().
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tests/transport/fault_plugin/injector.h"
#include "tests/transport/fault_plugin/inner_plugin.h"
#include "tests/transport/fault_plugin/logger.h"
#include "transport/plasma_transport.h"

namespace plasma_fault {

using Clock = std::chrono::steady_clock;

struct Conn;

struct Request {
  enum class State : uint8_t { kHeld, kForwarded, kDone };
  State state = State::kHeld;
  bool internal = false;  // a drop:recv consumer, never shown to the host
  uint32_t op = 0;
  Conn* conn = nullptr;   // null once done, or once the host closed the connection
  plasma_tp_request_t inner = nullptr;
  plasma_tp_completion_t completion{};
  bool reset_on_cancel = false;  // its connection was closed by a fault: CANCELED reads RESET
  bool corrupt_on_success = false;  // corrupt: flip a byte of what it received

  // The post itself, kept while held.
  uint64_t tag = 0;
  uint64_t tag_mask = 0;
  void* buf = nullptr;
  size_t length = 0;  // send length, recv capacity, read length
  plasma_tp_mem_t mem = nullptr;
  uint64_t remote_addr = 0;
  plasma_tp_rkey_t rkey = nullptr;

  // Holding: released at `due` (if has_due) or, for reorder, right after the
  // next send of another tag on the connection (or at `due`, if given).
  bool until_next_send = false;
  bool has_due = false;
  Clock::time_point due{};

  // drop:recv: the host's receive and the internal one that eats a message.
  Request* consumer = nullptr;
  Request* owner = nullptr;
  void* scratch = nullptr;
  plasma_tp_mem_t scratch_mem = nullptr;

  // List memberships.
  bool on_held = false;
  std::list<Request*>::iterator held_pos;
  bool on_ready = false;
  std::list<Request*>::iterator ready_pos;
  bool on_forwarded = false;
  std::list<Request*>::iterator forwarded_pos;
};

struct Conn {
  plasma_tp_conn_t inner = nullptr;  // null once closed by a fault, or never made (fail:connect)
  int dead_status = PLASMA_TP_OK;    // when inner is null: what every call on it returns
  std::unordered_set<Request*> requests;  // its requests that are not done yet
  std::list<Request*> held;               // held posts, in posting order
};

class Context {
 public:
  Context() : injector(&logger) {}
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Loads and initializes the inner plugin, sets up the wait fd. Logs an
  // ERROR line before failing.
  int Start(const plasma_tp_init_params_t* params);

  const plasma_tp_v1_t& api() const { return *plugin.api; }
  bool poll_mode() const { return plugin.has_poll_completions; }

  // ---- requests ----
  Request* NewRequest(Conn* conn, uint32_t op, bool internal = false);
  // Posts the request to the inner plugin. On error the request is untouched.
  int Forward(Request* req);
  // A request that never became visible to the host (its post failed).
  void Discard(Request* req);
  // Completes a request without the inner plugin (fail, drop, held ones).
  void Complete(Request* req, int status, uint64_t length);
  // The inner plugin reported `c` for req: fixes it up and stores it. False
  // if the request was internal (and is gone now).
  bool Settle(Request* req, const plasma_tp_completion_t& c);
  // The host collected the completion of a done request.
  void Release(Request* req);
  // Drains the inner's poll_completions() into the wrappers (poll mode).
  int DrainInnerPoll();
  // Tests the internal requests (not poll mode).
  void TestInternal();
  void FreeScratchLater();

  // ---- holding ----
  void Hold(Request* req);
  void Unhold(Request* req);
  // A new post on conn that must queue behind a held one (same op, tag and
  // mask) to keep per-tag order.
  bool FollowsHeld(Conn* conn, const Request* req) const;
  // Forwards the held posts of conn that may go; returns how many went.
  // dry_run: only counts them.
  int ReleaseHeld(Conn* conn, Clock::time_point now, bool dry_run = false);
  int ReleaseDue();
  bool AnythingDue();
  // A host send on conn went out (or completed locally): reorder-held sends
  // of other tags follow it now.
  void SendWentOut(Conn* conn, uint64_t tag);

  // ---- connections ----
  Conn* NewConn(plasma_tp_conn_t inner);
  // Closes the inner connection: requests on it complete with
  // CONNECTION_RESET, later calls fail with it.
  void FaultClose(Conn* conn);
  int HostClose(Conn* conn);

  // ---- waiting ----
  void RearmTimer();
  void DrainTimer();

  static void InnerLog(void* user_data, int level, const char* message);

  Logger logger;
  Injector injector;
  InnerPlugin plugin;
  plasma_tp_context_t inner_ctx = nullptr;
  plasma_tp_properties_t inner_props{};
  std::string description;
  std::string inner_last_error;
  int epoll_fd = -1;
  int timer_fd = -1;
  int inner_wait_fd = -1;

  std::unordered_set<Conn*> conns;
  std::unordered_set<Request*> requests;   // host-visible, not yet released
  std::unordered_set<Request*> internal;   // drop:recv consumers
  std::unordered_map<plasma_tp_request_t, Request*> by_inner;  // poll mode: forwarded ones
  std::list<Request*> ready;      // done, waiting for the host's test()/poll_completions()
  std::list<Request*> forwarded;  // not poll mode: forwarded host requests, in posting order
  std::unordered_map<plasma_tp_rkey_t, Conn*> rkeys;  // unpacked through us
  std::unordered_set<plasma_tp_rkey_t> zombie_rkeys;  // released by a fault close
  std::vector<std::pair<void*, plasma_tp_mem_t>> scratch_to_free;
  size_t held_count = 0;
  int pending_events = 0;  // reported by the next progress()
};

}  // namespace plasma_fault
