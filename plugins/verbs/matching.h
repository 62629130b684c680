// Tag matching for one connection: receives posted by the host and messages
// that arrived before their receive. A message matches the earliest posted
// receive whose (tag, mask) accepts it; a new receive takes the earliest
// arrived message it accepts. Exact receives and messages are indexed by
// tag, so the manager's exact-tag traffic never scans.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "plugins/verbs/wire_format.h"

namespace plasma_verbs {

struct Request;

// A message that found no receive: an eager one's bytes, copied out of the
// bounce buffer (which goes straight back to the peer as a credit), or a
// kRts offer, whose bytes stay in the sender's memory until matched.
struct ArrivedMessage {
  uint64_t tag = 0;
  bool rendezvous = false;
  std::vector<uint8_t> bytes;  // eager
  RtsBody offer;               // rendezvous
  uint64_t length() const { return rendezvous ? offer.length : bytes.size(); }
};

class TagMatcher {
 public:
  void AddReceive(Request* req);
  void RemoveReceive(Request* req);
  // The earliest posted receive that accepts `tag`, removed; null if none.
  Request* TakeReceiveFor(uint64_t tag);
  // Every posted receive, removed (the connection is failing).
  std::vector<Request*> TakeAllReceives();

  void AddArrived(std::unique_ptr<ArrivedMessage> message);
  // The earliest arrived message that (tag, mask) accepts: peeked or removed.
  const ArrivedMessage* PeekArrived(uint64_t tag, uint64_t mask) const;
  std::unique_ptr<ArrivedMessage> TakeArrived(uint64_t tag, uint64_t mask);
  void DropAllArrived();

 private:
  using ArrivedList = std::list<std::unique_ptr<ArrivedMessage>>;
  ArrivedList::const_iterator FindArrived(uint64_t tag, uint64_t mask) const;

  std::unordered_map<uint64_t, std::deque<Request*>> exact_receives_;
  std::list<Request*> prefix_receives_;  // posting order
  ArrivedList arrived_;                  // arrival order
  std::unordered_map<uint64_t, std::deque<ArrivedList::iterator>> arrived_by_tag_;
};

}  // namespace plasma_verbs
