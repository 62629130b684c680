#include "plugins/verbs/matching.h"

#include <algorithm>

#include "plugins/verbs/request.h"
#include "transport/plasma_transport.h"

namespace plasma_verbs {

void TagMatcher::AddReceive(Request* req) {
  if (req->tag_mask == PLASMA_TP_TAG_EXACT) exact_receives_[req->tag].push_back(req);
  else prefix_receives_.push_back(req);
}

void TagMatcher::RemoveReceive(Request* req) {
  if (req->tag_mask == PLASMA_TP_TAG_EXACT) {
    auto found = exact_receives_.find(req->tag);
    if (found == exact_receives_.end()) return;
    auto& queue = found->second;
    queue.erase(std::remove(queue.begin(), queue.end(), req), queue.end());
    if (queue.empty()) exact_receives_.erase(found);
  } else {
    prefix_receives_.remove(req);
  }
}

Request* TagMatcher::TakeReceiveFor(uint64_t tag) {
  Request* exact = nullptr;
  auto queue = exact_receives_.find(tag);
  if (queue != exact_receives_.end()) exact = queue->second.front();
  auto prefix = std::find_if(prefix_receives_.begin(), prefix_receives_.end(), [&](Request* r) {
    return (tag & r->tag_mask) == (r->tag & r->tag_mask);
  });
  if (prefix != prefix_receives_.end() && (exact == nullptr || (*prefix)->post_seq < exact->post_seq)) {
    Request* req = *prefix;
    prefix_receives_.erase(prefix);
    return req;
  }
  if (exact == nullptr) return nullptr;
  queue->second.pop_front();
  if (queue->second.empty()) exact_receives_.erase(queue);
  return exact;
}

std::vector<Request*> TagMatcher::TakeAllReceives() {
  std::vector<Request*> all(prefix_receives_.begin(), prefix_receives_.end());
  for (auto& entry : exact_receives_) all.insert(all.end(), entry.second.begin(), entry.second.end());
  prefix_receives_.clear();
  exact_receives_.clear();
  std::sort(all.begin(), all.end(), [](Request* a, Request* b) { return a->post_seq < b->post_seq; });
  return all;
}

void TagMatcher::AddArrived(std::unique_ptr<ArrivedMessage> message) {
  uint64_t tag = message->tag;
  auto where = arrived_.insert(arrived_.end(), std::move(message));
  arrived_by_tag_[tag].push_back(where);
}

TagMatcher::ArrivedList::const_iterator TagMatcher::FindArrived(uint64_t tag, uint64_t mask) const {
  if (mask == PLASMA_TP_TAG_EXACT) {
    auto found = arrived_by_tag_.find(tag);
    return found == arrived_by_tag_.end() ? arrived_.end() : found->second.front();
  }
  return std::find_if(arrived_.begin(), arrived_.end(), [&](const auto& m) {
    return (m->tag & mask) == (tag & mask);
  });
}

const ArrivedMessage* TagMatcher::PeekArrived(uint64_t tag, uint64_t mask) const {
  auto found = FindArrived(tag, mask);
  return found == arrived_.end() ? nullptr : found->get();
}

std::unique_ptr<ArrivedMessage> TagMatcher::TakeArrived(uint64_t tag, uint64_t mask) {
  auto found = FindArrived(tag, mask);
  if (found == arrived_.end()) return nullptr;
  std::unique_ptr<ArrivedMessage> message = std::move(const_cast<std::unique_ptr<ArrivedMessage>&>(*found));
  // The earliest arrival of its tag is the front of that tag's queue.
  auto queue = arrived_by_tag_.find(message->tag);
  queue->second.pop_front();
  if (queue->second.empty()) arrived_by_tag_.erase(queue);
  arrived_.erase(found);
  return message;
}

void TagMatcher::DropAllArrived() {
  arrived_.clear();
  arrived_by_tag_.clear();
}

}  // namespace plasma_verbs
