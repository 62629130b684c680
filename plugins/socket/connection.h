// One TCP connection (and listeners, which produce them): non-blocking
// socket setup, establishment, the outgoing frame queue flushed with
// sendmsg() straight from the caller's memory, the incoming frame parser,
// and failure handling. What each frame type means lives in
// tagged_messages.cc and read_emulation.cc.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "plugins/socket/address.h"
#include "plugins/socket/context.h"
#include "plugins/socket/wire_format.h"

namespace plasma_socket {

struct OutgoingFrame {
  uint8_t header[kFrameHeaderSize];
  const uint8_t* payload = nullptr;  // caller's memory or a registration; never copied
  uint64_t payload_length = 0;
  uint64_t bytes_sent = 0;           // of header + payload
  // The request this frame belongs to; completed when the frame is fully
  // written if `completes_request` (EAGER, DATA). RTS frames name their
  // request only so that cancel() can withdraw them before they are sent.
  Request* request = nullptr;
  bool completes_request = false;
  Registration* pinned = nullptr;    // READ response served from this registration
};

// A tagged message that arrived before any matching receive was posted.
struct UnexpectedMessage {
  bool rendezvous = false;  // only the RTS arrived; data comes after our CTS
  uint64_t tag = 0;
  uint64_t length = 0;
  uint64_t transfer_id = 0;               // rendezvous
  std::unique_ptr<uint8_t[]> data;        // eager payload
  bool arrived = false;                   // eager payload complete
  // What it counts against the unexpected budget: the payload, or a fixed
  // charge for a bare RTS so that a flood of them is bounded too.
  uint64_t cost = 0;
  // Its place in Connection::unexpected (arrival order).
  std::list<std::unique_ptr<UnexpectedMessage>>::iterator pos;
};

// Where the payload of the frame being parsed goes.
struct RxSink {
  uint8_t* base = nullptr;  // null: discard
  uint64_t length = 0;
  uint64_t received = 0;
  Request* request = nullptr;            // completed when the payload is complete
  UnexpectedMessage* unexpected = nullptr;  // or: the staging buffer being filled
};

struct Connection : PollTarget {
  enum class State { kConnecting, kHandshaking, kEstablished, kFailed };

  Connection(Context* ctx, int fd, State state, const SocketAddress& peer);
  ~Connection();

  Context* const ctx;
  int fd;
  State state;
  int failure_status = PLASMA_TP_OK;
  SocketAddress peer;
  uint32_t epoll_events = 0;  // what epoll currently watches
  bool write_blocked = false;  // socket full: waiting for EPOLLOUT
  bool in_flush_list = false;
  bool in_rx_ready_list = false;

  // Outgoing.
  std::deque<OutgoingFrame> outgoing;
  uint64_t next_transfer_id = 1;
  uint64_t next_read_id = 1;
  std::unordered_map<uint64_t, Request*> sends_awaiting_cts;

  // Incoming. Small reads go through `staging`; a payload that still needs
  // more than kDirectReadMinimum bytes is read straight into its sink.
  static constexpr size_t kStagingSize = 16 * 1024;
  static constexpr size_t kDirectReadMinimum = 4 * 1024;
  std::unique_ptr<uint8_t[]> staging;
  size_t staged_begin = 0;
  size_t staged_end = 0;
  bool in_payload = false;
  uint8_t header_bytes[kFrameHeaderSize];
  size_t header_received = 0;
  RxSink sink;
  bool hello_received = false;
  bool rx_paused = false;  // backpressure on unexpected messages

  // Posted, unmatched receives. Exact-mask ones are indexed by tag (a FIFO
  // per tag), prefix-mask ones wait in one list; an arriving message takes
  // the earliest posted (post_seq) receive it matches. Both stay O(1) per
  // message with any number of exact receives posted, in any order.
  std::unordered_map<uint64_t, std::deque<Request*>> exact_recvs;
  std::list<Request*> prefix_recvs;
  uint64_t next_recv_seq = 1;
  // Arrived, unmatched messages (copied out of `staging` into their own
  // buffers) in arrival order, and indexed by tag for exact receives.
  std::list<std::unique_ptr<UnexpectedMessage>> unexpected;
  std::unordered_map<uint64_t, std::deque<UnexpectedMessage*>> unexpected_by_tag;
  uint64_t unexpected_bytes = 0;
  // Null value: the receive was canceled, discard the data when it comes.
  std::unordered_map<uint64_t, Request*> recvs_awaiting_data;
  std::unordered_map<uint64_t, Request*> pending_reads;

  bool CanWrite() const { return state == State::kHandshaking || state == State::kEstablished; }
  bool Failed() const { return state == State::kFailed; }
  // conn_status(): IN_PROGRESS until the peer's HELLO, then OK, or the error.
  int Status() const;
  std::string Describe() const;  // "127.0.0.1:4242" for log lines

  void QueueFrame(const FrameHeader& header, const void* payload, uint64_t payload_length,
                  Request* request, bool completes_request, Registration* pinned = nullptr);
  void Flush();
  void OnPollEvents(uint32_t events);
  void ProcessStagedInput();

  // Payload handling for frame handlers.
  void BeginPayload(const RxSink& target);
  // Stops landing into `req`'s buffer (cancel); the rest is discarded.
  void DetachSinkRequest(Request* req);
  // Backpressure: resume reading once unexpected messages were consumed.
  void MaybeResumeReading();

  // The connection is dead: every outstanding request completes with
  // `status`, the socket closes. Fully arrived unexpected eager messages
  // stay receivable.
  void Fail(int status, const char* why);
  // Completes everything outstanding with `status` and drops queued output.
  void AbortOutstanding(int status);

 private:
  void UpdatePollEvents();
  void FinishConnect();
  void ReadSocket();
  void DispatchHeader(const FrameHeader& header);
  void FinishPayload();
  void AddToFlushList();
};

struct Listener : PollTarget {
  Listener(Context* ctx, int fd, std::string address_blob);
  ~Listener();

  Context* const ctx;
  int fd;
  uint32_t epoll_events = 0;
  std::string address_blob;
  std::deque<Connection*> accepted;  // handed out by accept()

  void AcceptPending();
};

// listen()/connect()/accept() bodies.
int Listen(Context* ctx, const char* bind_hint, Listener** out);
int Connect(Context* ctx, const void* blob, size_t blob_len, Connection** out);
int AcceptConnection(Context* ctx, Listener* listener, Connection** out);
void CloseListener(Context* ctx, Listener* listener);
void CloseConnection(Context* ctx, Connection* conn);

}  // namespace plasma_socket
