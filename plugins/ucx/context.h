// The per-init() state of the UCX plugin: one UCP context and one worker
// (progressed by progress(), slept on through its event fd), the logger, the
// settings, and registries of every live object so that stale or foreign
// handles are rejected, not followed.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ucp/api/ucp.h>

#include "plugins/ucx/wire_format.h"
#include "transport/plasma_transport.h"

namespace plasma_ucx {

struct Connection;
struct Listener;
struct OutgoingAm;
struct ServedRead;
struct Registration;
struct RemoteKey;
struct Request;

// How read() moves bytes on a connection.
enum class ReadPath : uint8_t {
  // The reader asks (kAmReadRequest); the holder checks the key and range
  // against its live registrations and answers with a tagged send straight
  // from the registered memory, which UCP moves by its own rendezvous
  // protocol (RDMA READ on rc_verbs, pipelined on tcp). The holder can
  // refuse; measured fastest on tcp, equal on rc_verbs.
  kServeBySend,
  // ucp_get_nbx() with UCX's unpacked key: no holder involvement, so only
  // the reader's bounds check protects the holder (a hardware-checked key
  // on rc_verbs; none on tcp or cma). Measured fastest on shared memory.
  kNativeGet,
};

// PLASMA_UCX_READ: unset picks per connection (get on a shared-memory
// endpoint, served by send otherwise); "send" or "get" forces one.
enum class ReadChoice : uint8_t { kAuto, kSend, kGet };

// Something a UCP callback saw, handled after ucp_worker_progress() returns
// (no UCP call is made from inside a callback).
struct DeferredEvent {
  enum class Kind : uint8_t {
    kConnRequest, kHello, kReady, kGoodbye, kReadRequest, kReadRefused, kEpError
  };
  Kind kind;
  ucp_ep_h ep = nullptr;
  Listener* listener = nullptr;
  ucp_conn_request_h conn_request = nullptr;
  Connection* conn = nullptr;
  ucs_status_t status = UCS_OK;
  HandshakeHeader handshake{};
  ReadRequestHeader read_request{};
  ReadRefusedHeader read_refused{};
  std::string payload;  // hello, ready: the sender's worker address, if any
};

struct Context {
  plasma_tp_log_fn log_fn = nullptr;
  void* log_user_data = nullptr;
  int max_log_level = PLASMA_TP_LOG_INFO;
  ReadChoice read_choice = ReadChoice::kAuto;
  ucp_context_h ucp = nullptr;
  ucp_worker_h worker = nullptr;
  int event_fd = -1;   // UCX's (ucp_worker_get_efd)
  // What the host sleeps on: UCX's fd and a timer. UCX cannot arm while a
  // shared-memory FIFO to a slow peer is full (ucp_worker_arm is BUSY with
  // nothing to progress); then arm() says OK with the timer set, so the
  // host naps kNapMicros instead of spinning.
  int epoll_fd = -1;
  int timer_fd = -1;
  bool timer_set = false;  // WakeAfter() since progress() last drained the timer
  int futile_arms = 0;  // BUSY answers in a row with no event in between
  std::string description;
  // Shared memory between managers of one machine (connection.h): this
  // machine's boot id, whether UCX_TLS lets UCX use shared memory, and this
  // worker's address for peers on the same machine.
  uint64_t host_id = 0;
  bool shared_memory_asked = false;  // PLASMA_UCX_SHARED_MEMORY=1
  // A sleeping host is woken this often even when UCX says all is armed
  // (PLASMA_UCX_WAKEUP_TICK_MS, 0: never): over rc_verbs on Soft-RoCE a
  // worker asleep on its event fd now and then misses a completion (4 of 32
  // rounds of single fetches stalled until the puller's 10 s stall timer;
  // with the tick none of 32, plasma-mpi-bench in the guest). Costs 20
  // empty progress() calls a second.
  long wakeup_tick_ms = 50;
  bool shared_memory = false;        // ... and possible here
  std::string worker_address;

  std::unordered_set<Listener*> listeners;
  std::unordered_set<Connection*> connections;  // all, host-held or not
  std::unordered_set<Connection*> handles;      // the ones the host holds
  std::unordered_map<ucp_ep_h, Connection*> by_endpoint;
  std::unordered_map<uint16_t, Connection*> by_id;
  uint16_t last_id = 0;
  std::unordered_set<Registration*> registrations;
  std::unordered_map<uint64_t, Registration*> by_key;
  std::unordered_set<RemoteKey*> remote_keys;
  std::unordered_set<Request*> requests;
  std::unordered_set<Request*> zombies;  // released by the host, still in UCP (request.h)
  // Completed requests not yet released, in completion order.
  std::list<Request*> completed;
  std::vector<DeferredEvent> deferred;
  // Header-only active messages and served READs still in UCP's hands:
  // freed by their callbacks, or at finalize.
  std::unordered_set<OutgoingAm*> am_sends;
  std::unordered_set<ServedRead*> serving;
  // READs that ended before their bytes came (remote_read.h): the data tag
  // and how many more progress() calls look for it.
  struct AbandonedRead {
    uint64_t data_tag;
    uint32_t looks_left;
  };
  std::deque<AbandonedRead> abandoned_reads;
  // Host-visible things since progress() last returned.
  int events = 0;

  ~Context();
  static constexpr int kNapMicros = 1000;
  static constexpr int kFutileArmsBeforeNap = 8;

  void Log(int level, const char* format, ...) __attribute__((format(printf, 3, 4)));
  bool LogEnabled(int level) const { return log_fn != nullptr && level <= max_log_level; }

  // Packed keys carry UCX's own key (for ucp_get) too.
  bool PacksUcxKeys() const {
    return read_choice == ReadChoice::kGet || (read_choice == ReadChoice::kAuto && shared_memory);
  }
  // The path of a connection, by whether it runs over shared memory.
  ReadPath PathFor(bool shared_memory_endpoint) const {
    if (read_choice == ReadChoice::kGet) return ReadPath::kNativeGet;
    if (read_choice == ReadChoice::kSend) return ReadPath::kServeBySend;
    return shared_memory_endpoint ? ReadPath::kNativeGet : ReadPath::kServeBySend;
  }

  int Progress();
  int Arm();
  // Makes the wait fd readable after this long (the timer).
  void WakeAfter(long nanoseconds);
  // A free connection id (1..kMaxConnId), round robin so a closed
  // connection's id is not reused while its stray messages may still arrive.
  uint16_t AllocateId();
};

int InitUcp(Context* ctx);
int StatusFromUcs(ucs_status_t status);

}  // namespace plasma_ucx
