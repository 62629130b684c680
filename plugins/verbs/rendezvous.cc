// The rendezvous path: one-sided RDMA READ, zero-copy at both ends. The
// host's read() READs a peer's registered range (an object in the holder's
// arena) into its own registered buffer (the new object in the local arena);
// a send above the peer's eager limit becomes a kRts that the receiver
// answers by READing the sender's buffer, then a kFin. A READ is cut into
// pieces of read_piece bytes, at most max_reads of them in flight per QP
// (the device's max_qp_rd_atom and the peer's responder resources).
#include <algorithm>

#include "plugins/verbs/connection.h"
#include "plugins/verbs/memory.h"
#include "plugins/verbs/request.h"

namespace plasma_verbs {

void Connection::QueueRead(Request* req) {
  req->phase = RequestPhase::kReading;
  if (req->read.length == 0) {
    CompleteRequest(req, PLASMA_TP_OK, 0);
    return;
  }
  pending_reads.push_back(req);
  MarkBusy();
  FlushReads();
}

bool Connection::DropQueuedRead(Request* req) {
  auto found = std::find(pending_reads.begin(), pending_reads.end(), req);
  if (found == pending_reads.end()) return false;
  pending_reads.erase(found);
  return true;
}

void Connection::StartRendezvousRecv(Request* req, const RtsBody& offer) {
  if (offer.length > req->length) {
    // Discarded, as an eager message would be; the sender's part is done.
    CompleteRequest(req, PLASMA_TP_ERR_MESSAGE_TOO_LARGE, offer.length);
    QueueFin(offer.transfer, PLASMA_TP_OK);
    return;
  }
  if (Failed()) {
    CompleteRequest(req, failure_status, 0);
    return;
  }
  if (req->mem == nullptr) {
    // Only a peer breaking the rules offers a READ this small.
    CompleteRequest(req, PLASMA_TP_ERR_PROTOCOL, 0);
    QueueFin(offer.transfer, PLASMA_TP_ERR_PROTOCOL);
    return;
  }
  req->read.remote_addr = offer.addr;
  req->read.rkey = offer.rkey;
  req->read.length = offer.length;
  req->read.transfer = offer.transfer;
  QueueRead(req);
  if (req->phase == RequestPhase::kComplete) QueueFin(offer.transfer, PLASMA_TP_OK);
}

void Connection::FlushReads() {
  if (state != ConnState::kUp) return;
  while (!pending_reads.empty() && reads_in_flight < max_reads && FreeSendSlots() > 0) {
    Request* req = pending_reads.front();
    ReadSource& read = req->read;
    if (read.status != PLASMA_TP_OK) {  // a piece failed: post no more; done when the rest land
      pending_reads.pop_front();
      continue;
    }
    const uint64_t piece = std::min<uint64_t>(read_piece, read.length - read.next);
    SendSlot* slot = NextSendSlot();
    slot->use = SendUse::kRead;
    slot->req = req;
    slot->buffer = -1;
    ibv_sge sge{reinterpret_cast<uintptr_t>(req->buffer + read.next), static_cast<uint32_t>(piece),
                req->mem->mr->lkey};
    ibv_send_wr wr{};
    wr.opcode = IBV_WR_RDMA_READ;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.wr.rdma.remote_addr = read.remote_addr + read.next;
    wr.wr.rdma.rkey = read.rkey;
    read.next += piece;
    read.in_flight++;
    reads_in_flight++;
    if (read.next == read.length) pending_reads.pop_front();
    if (!PostSend(&wr, slot, /*signaled=*/true)) return;  // Fail() completed everything
  }
}

void Connection::OnReadDone(SendSlot* slot, int status) {
  Request* req = slot->req;
  slot->req = nullptr;
  slot->use = SendUse::kFree;
  reads_in_flight--;
  if (req == nullptr || req->phase == RequestPhase::kComplete) return;
  ReadSource& read = req->read;
  read.in_flight--;
  if (status != PLASMA_TP_OK && read.status == PLASMA_TP_OK) read.status = status;
  const bool all_posted = read.next == read.length;
  if (read.in_flight > 0 || (all_posted ? false : read.status == PLASMA_TP_OK)) return;
  if (!all_posted) DropQueuedRead(req);
  const int result = read.status;
  CompleteRequest(req, result, result == PLASMA_TP_OK ? read.length : 0);
  if (req->op == PLASMA_TP_OP_RECV) QueueFin(read.transfer, result);
}

void Connection::OnFin(uint64_t transfer, int status) {
  auto found = awaiting_fin.find(transfer);
  if (found == awaiting_fin.end()) {
    DeferFailure(PLASMA_TP_ERR_PROTOCOL, "a rendezvous finish for an unknown transfer");
    return;
  }
  Request* req = found->second;
  awaiting_fin.erase(found);
  // The receiver's outcome is its own (its receive carries it); the sender's
  // buffer is free either way.
  if (status != PLASMA_TP_OK) {
    ctx->Log(PLASMA_TP_LOG_DEBUG, "verbs: %s ended transfer %llu with status %d", peer.c_str(),
             static_cast<unsigned long long>(transfer), status);
  }
  CompleteRequest(req, PLASMA_TP_OK, req->length);
}

}  // namespace plasma_verbs
