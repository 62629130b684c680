// The Puller's per-peer and per-pull state, shared by its source files
// (puller.cc: connections, attempts, store calls, endings; puller_push.cc:
// pushes). Not for use outside the Puller.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plasma/manager/puller.h"

namespace plasma {

struct Puller::Peer {
  NodeInfo node;
  plasma_tp_conn_t conn = nullptr;
  int64_t connect_started_ms = 0;
  bool established = false;
  std::map<std::string, plasma_tp_rkey_t> rkeys;  // packed bytes -> unpacked handle
  // Transfers the holder pins for us (rendezvous: HEADER seen, FINISH not
  // sent; push: HEADER seen, chunks not all in), and pulls it told to ask
  // again once one of those ends.
  size_t pinned_transfers = 0;
  std::deque<uint64_t> busy_waiting;
};

struct Puller::PullState {
  uint64_t transfer = 0;
  uint64_t attempt = 0;  // changes with every PULL sent: completions of older ones are stale
  ObjectId id;
  Phase phase = Phase::kWaitingForWindow;
  std::vector<NodeInfo> holders;
  size_t next_holder = 0;
  const NodeInfo* holder = nullptr;  // of the current attempt
  Peer* peer = nullptr;              // null once its connection is dropped
  std::string dropped_because;       // why, for the requests that then complete canceled
  std::optional<ObjectSizes> announced;  // what the holders announced, if known
  transfer::HeaderMessage header;
  std::shared_ptr<ControlBuffer> header_buffer;  // held until inline bytes are copied out
  bool holder_pins = false;  // the holder pins the object (rendezvous: until our FINISH)
  // A push's outstanding parts (phase kAwaitingPush): the HEADER, and
  // chunk receives still posted into the object. The attempt resolves once
  // all are in; the object is never given back while a receive may write.
  struct {
    bool header_seen = false;
    uint64_t chunks_left = 0;
    uint64_t short_chunks = 0;  // empty ones are what a refusing holder sends
    bool busy = false;
    Status failure;
  } push;
  StoredObject object;       // created locally, unsealed
  uint64_t charged_bytes = 0;
  EventLoop::TimerId deadline = 0;
  std::vector<std::string> failures;
  PullCallback done;
  int64_t started_ms = 0;
  // Phase times of the current attempt (µs), for the debug log of each pull.
  int64_t attempt_started_us = 0, header_us = 0, created_us = 0, data_us = 0;
};

}  // namespace plasma
