// Holder: the serving side of the transfer protocol (transfer_protocol.h).
// It accepts connections from other nodes' pullers, keeps control receives
// posted on each, and answers every PULL: small objects inline (copied into
// the HEADER message and released at once), large ones by lending them for
// the puller's READ until its FINISH, or by pushing them when the puller
// asks (lent until the last chunk is sent). What it lends is bounded per peer, and
// a loan the puller never settles ends with its connection, never with the
// object pinned forever.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "plasma/manager/local_store.h"
#include "plasma/manager/control_buffers.h"
#include "plasma/manager/transfer_protocol.h"
#include "plasma/manager/transport_driver.h"

namespace plasma {

struct HolderOptions {
  // Objects whose HEADER plus bytes fit in this many bytes go inline.
  uint64_t inline_message_limit = 64 * 1024;
  // Bytes one peer may have pinned at once; past it a PULL is told "busy".
  uint64_t max_lent_bytes_per_peer = 2ull << 30;
  // A loan lasts this plus the connection's lent bytes at min_transfer_rate;
  // then the connection is closed (which stops its READs) and all is released.
  int64_t stall_timeout_ms = 10000;
  uint64_t min_transfer_rate = 10ull << 20;
  int control_receives_per_connection = 16;
};

// The local arena as registered once at start-up.
struct HolderArena {
  uint8_t* base = nullptr;
  size_t size = 0;
  plasma_tp_mem_t mem = nullptr;
  std::string rkey;  // packed, sent in every rendezvous HEADER
};

class Holder {
 public:
  Holder(EventLoop* loop, TransportDriver* driver, ControlBufferPool* buffers, LocalStore* store,
         const HolderOptions& options, const HolderArena& arena);
  ~Holder();

  void AcceptConnections(plasma_tp_listener_t listener);
  // The Gets of the pulls received in a progress pass, as one store call.
  bool RunStoreCalls();

  // Seal digests of the local store's objects (from its notifications), sent
  // along so a puller need not hash what it receives.
  void RememberDigest(const ObjectId& id, const std::string& digest) { digests_[id] = digest; }
  void ForgetDigest(const ObjectId& id) { digests_.erase(id); }

 private:
  // An object lent for a puller's READ (until its FINISH) or for our own
  // push (until every chunk's send has completed).
  struct Loan {
    StoredObject object;
    uint64_t bytes = 0;
    EventLoop::TimerId lease = 0;
    uint64_t unsent_chunks = 0;  // push only
  };
  // A connection a puller opened to us. A closed handle's address may be
  // reused by the next accept, so completions check the serial too.
  struct ServedConnection {
    uint64_t serial = 0;
    std::map<uint64_t, Loan> loans;  // by the puller's transfer number
    uint64_t lent_bytes = 0;
  };
  struct QueuedServe {
    plasma_tp_conn_t conn;
    uint64_t serial;
    transfer::PullMessage pull;
  };

  ServedConnection* Served(plasma_tp_conn_t conn, uint64_t serial);
  void PostControlReceive(plasma_tp_conn_t conn, uint64_t serial);
  void OnControlMessage(plasma_tp_conn_t conn, uint64_t serial, const uint8_t* data,
                        const plasma_tp_completion_t& completion);
  void Serve(plasma_tp_conn_t conn, uint64_t serial, const transfer::PullMessage& pull,
             StoredObject object, bool store_answered);
  void Lend(ServedConnection* served, plasma_tp_conn_t conn, uint64_t transfer,
            StoredObject object);
  void EndLoan(ServedConnection* served, uint64_t transfer);
  void Refuse(plasma_tp_conn_t conn, uint64_t serial, const transfer::PullMessage& pull,
              const transfer::HeaderMessage& header);
  void Push(plasma_tp_conn_t conn, uint64_t serial, uint64_t transfer, const uint8_t* start,
            uint64_t total, uint64_t chunk);
  void OnChunkSent(plasma_tp_conn_t conn, uint64_t serial, uint64_t transfer,
                   const plasma_tp_completion_t& completion);
  void SendHeader(plasma_tp_conn_t conn, uint64_t serial, const transfer::HeaderMessage& header,
                  const uint8_t* inline_bytes);
  void Close(plasma_tp_conn_t conn, const Status& why);

  EventLoop* loop_;
  TransportDriver* driver_;
  const plasma_tp_v1_t* ops_;
  plasma_tp_context_t context_;
  ControlBufferPool* buffers_;
  LocalStore* store_;
  HolderOptions options_;
  HolderArena arena_;
  std::map<plasma_tp_conn_t, ServedConnection> served_;
  // Pushed objects of closed connections whose chunk sends have not yet
  // completed: a canceled send may touch its buffer until it is reported.
  // By (connection serial, transfer).
  std::map<std::pair<uint64_t, uint64_t>, Loan> draining_;
  uint64_t next_serial_ = 1;
  std::vector<QueuedServe> to_serve_;
  std::unordered_map<ObjectId, std::string> digests_;
};

}  // namespace plasma
