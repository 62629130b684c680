// One reliable-connected queue pair to one peer, with everything that moves
// on it: the side-channel socket that set it up (and that tells at once when
// the peer goes away), the bounce buffers of the eager path and their
// credits, the outgoing queue, READs in flight, and tag matching.
//
// Its methods live by concern: handshake.cc (side channel, listener),
// connection.cc (queue pair life cycle, failure), completions.cc (the CQ),
// eager.cc (SENDs and arrivals), rendezvous.cc (RDMA READ).
#pragma once

#include <infiniband/verbs.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "plugins/verbs/context.h"
#include "plugins/verbs/matching.h"
#include "plugins/verbs/wire_format.h"

namespace plasma_verbs {

struct Connection;
struct RemoteKey;
struct Request;

using Clock = std::chrono::steady_clock;

enum class ConnState : uint8_t {
  kTcpConnecting,  // connector: the side channel's connect() is under way
  kAwaitingHello,  // the peer's Hello has not arrived yet
  kAwaitingReady,  // acceptor: its Hello sent, its QP in RTR, waiting for Ready
  kUp,             // both QPs in RTS
  kFailed,         // failure_status says why; the QP is gone
};

const char* StateName(ConnState state);

// wr_id of every work request points at one of these.
enum class SlotQueue : uint8_t { kRecv, kSend };
struct WorkSlot {
  Connection* conn = nullptr;
  SlotQueue queue = SlotQueue::kRecv;
};

struct RecvSlot : WorkSlot {
  uint8_t* buffer = nullptr;
};

// A send-queue entry. Send work requests complete in posting order, so a
// signaled completion retires every unsignaled entry before it.
enum class SendUse : uint8_t { kFree, kMessage, kRead };
struct SendSlot : WorkSlot {
  SendUse use = SendUse::kFree;
  uint64_t seq = 0;
  Request* req = nullptr;  // kMessage: a user eager send (null for plugin messages); kRead: its READ
  int32_t buffer = -1;     // kMessage copied into a send bounce buffer: its index
};

// A message waiting for credits, a send-queue entry or a bounce buffer.
struct Outgoing {
  MessageType type = MessageType::kEager;
  Request* req = nullptr;  // kEager, kRts: the host's send
  uint64_t transfer = 0;   // kFin
  int32_t status = 0;      // kFin
};

struct Listener {
  Context* ctx = nullptr;
  int fd = -1;
  PollTarget target{PollTarget::Kind::kListener, this};
  uint32_t watched = 0;
  std::string address_blob;
  std::unordered_set<Connection*> pending;  // handshaking, not yet up
  std::deque<Connection*> ready;            // up, waiting for accept()
  int last_accept_errno = 0;                // the failure last logged
};

struct Connection {
  Connection(Context* ctx, bool acceptor);
  ~Connection();  // frees the verbs resources; every request is complete by now

  Context* ctx;
  PollTarget target{PollTarget::Kind::kConnection, this};
  const bool acceptor;
  Listener* listener = nullptr;  // acceptor, until accept() hands it out
  ConnState state = ConnState::kAwaitingHello;
  int failure_status = PLASMA_TP_OK;
  std::string peer;  // for log lines

  // Side channel.
  int fd = -1;
  uint32_t watched = 0;
  std::string tcp_out;
  std::string tcp_in;
  Clock::time_point started;
  Clock::time_point deadline;

  // Queue pair, its completion queue and its bounce buffers (one MR).
  ibv_cq* cq = nullptr;
  ibv_qp* qp = nullptr;
  ibv_mr* ring_mr = nullptr;
  uint8_t* ring = nullptr;
  size_t ring_bytes = 0;
  uint32_t unacked_cq_events = 0;
  bool cq_armed = false;
  bool busy = false;            // in Context::busy
  uint64_t last_active_call = 0;  // the progress() call that last found work
  uint32_t psn = 0;
  uint32_t max_inline = 0;     // what the QP accepted
  uint32_t buffer_size = 0;    // one receive or send bounce buffer: header + payload
  uint32_t peer_payload = 0;   // largest eager message the peer's buffers take
  uint32_t max_reads = 1;      // READs in flight on this QP
  uint64_t read_piece = 0;     // bytes per READ work request (config, capped by the port)
  uint8_t* send_buffer_base = nullptr;
  // A failure found while handling a batch of completions, acted on once the
  // batch is done (so that its messages are handled in order first).
  int deferred_failure = PLASMA_TP_OK;
  std::string deferred_why;
  std::vector<RecvSlot> recv_slots;
  std::vector<SendSlot> send_slots;  // ring indexed by seq % size
  uint8_t* send_headers = nullptr;   // one kHeaderSize area per send slot (zero-copy sends)
  uint64_t sq_posted = 0;            // seq of the next send work request
  uint64_t sq_retired = 0;           // every seq below this is done
  uint32_t unsignaled = 0;           // posted since the last signaled one
  std::vector<int32_t> free_send_buffers;

  // Credits (cumulative counters, compared modulo 2^32).
  uint32_t peer_granted = 0;      // receive buffers the peer made available to us
  uint32_t sent_with_credit = 0;  // our messages that used one
  uint32_t granted = 0;           // receive buffers we made available to the peer
  uint32_t announced = 0;         // the `granted` the peer last heard

  std::deque<Outgoing> outgoing;
  std::deque<Request*> pending_reads;  // kReading requests with pieces left to post
  uint32_t reads_in_flight = 0;
  TagMatcher matcher;
  uint64_t next_post_seq = 0;
  std::unordered_map<uint64_t, Request*> awaiting_fin;  // our kRts sends, by transfer
  uint64_t next_transfer = 1;
  std::unordered_set<RemoteKey*> rkeys;

  bool Failed() const { return state == ConnState::kFailed; }
  int Status() const;  // conn_status()
  uint32_t Credits() const { return peer_granted - sent_with_credit; }

  // connection.cc
  int CreateQueuePair();
  Hello LocalHello() const;
  int ToReadyToReceive(const Hello& peer_hello);
  int ToReadyToSend();
  void BecomeUp();
  // Ends the connection: every request on it completes with `status`
  // (messages that fully arrived stay receivable), the QP is destroyed, so
  // the device touches none of its buffers and the peer reads nothing more.
  // Logged at WARN (ERROR during set-up); `level` lowers it for the orderly
  // end of a peer that closed.
  void Fail(int status, const std::string& why, int level = PLASMA_TP_LOG_WARN);

  // handshake.cc
  int StartConnect(const sockaddr* addr, socklen_t len);
  void OnSocketEvent(uint32_t events);
  void CheckDeadline(Clock::time_point now);

  // completions.cc: polls the CQ and handles what it finds; returns how many.
  int PollCompletions();
  void ArmCompletions();
  void MarkBusy();
  // Up, with nothing posted, queued or in flight.
  bool Idle() const;

  // eager.cc
  void QueueSend(Request* req);
  void QueueFin(uint64_t transfer, int status);
  void DropQueuedSend(Request* req);
  void PostRecv(Request* req);
  void FlushOutgoing();
  bool HasPostableWork() const;
  void OnArrival(RecvSlot* slot, uint32_t byte_len);
  void RetireMessage(SendSlot* slot, int status);
  void MaybeReturnCredits();
  void DeferFailure(int status, const std::string& why) {
    if (deferred_failure == PLASMA_TP_OK) {
      deferred_failure = status;
      deferred_why = why;
    }
  }

  // rendezvous.cc
  void QueueRead(Request* req);
  bool DropQueuedRead(Request* req);
  void FlushReads();
  void OnReadDone(SendSlot* slot, int status);
  void StartRendezvousRecv(Request* req, const RtsBody& offer);
  void OnFin(uint64_t transfer, int status);

  // Shared by eager.cc and rendezvous.cc.
  uint32_t FreeSendSlots() const {
    return static_cast<uint32_t>(send_slots.size() - (sq_posted - sq_retired));
  }
  SendSlot* NextSendSlot() { return &send_slots[sq_posted % send_slots.size()]; }
  // Posts one work request on the send queue (slot already filled).
  bool PostSend(ibv_send_wr* wr, SendSlot* slot, bool signaled);
};

}  // namespace plasma_verbs
