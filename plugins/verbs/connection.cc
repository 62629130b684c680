#include "plugins/verbs/connection.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "plugins/verbs/memory.h"
#include "plugins/verbs/request.h"

namespace plasma_verbs {
namespace {

uint32_t RandomPsn() {
  static thread_local std::mt19937 random{std::random_device{}()};
  return random() & 0xffffff;
}

size_t AlignUp(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }

// Receive buffers beyond the credits: room for the kCredit messages, which
// use none (at most two can be outstanding, see eager.cc).
constexpr uint32_t kCreditMessageBuffers = 2;

}  // namespace

const char* StateName(ConnState state) {
  switch (state) {
    case ConnState::kTcpConnecting: return "connecting";
    case ConnState::kAwaitingHello: return "awaiting hello";
    case ConnState::kAwaitingReady: return "awaiting ready";
    case ConnState::kUp: return "up";
    case ConnState::kFailed: return "failed";
  }
  return "?";
}

Connection::Connection(Context* context, bool is_acceptor) : ctx(context), acceptor(is_acceptor) {
  started = Clock::now();
  deadline = started + std::chrono::milliseconds(ctx->config.connect_timeout_ms);
}

Connection::~Connection() {
  if (qp != nullptr) ibv_destroy_qp(qp);
  if (busy) ctx->busy.erase(std::find(ctx->busy.begin(), ctx->busy.end(), this));
  if (cq != nullptr) {
    if (cq_armed) ctx->armed_cqs--;
    if (unacked_cq_events > 0) ibv_ack_cq_events(cq, unacked_cq_events);
    ibv_destroy_cq(cq);
  }
  if (ring_mr != nullptr) ibv_dereg_mr(ring_mr);
  std::free(ring);
  if (fd >= 0) {
    ctx->UnwatchFd(fd, &watched);
    close(fd);
  }
  for (RemoteKey* rkey : rkeys) rkey->conn = nullptr;
}

int Connection::Status() const {
  if (state == ConnState::kFailed) return failure_status;
  return state == ConnState::kUp ? PLASMA_TP_OK : PLASMA_TP_IN_PROGRESS;
}

int Connection::CreateQueuePair() {
  const Config& config = ctx->config;
  const Device& device = ctx->device;
  const uint32_t recv_count = config.recv_buffers + kCreditMessageBuffers;
  uint32_t send_queue = std::min<uint32_t>(config.send_queue, device.attr.max_qp_wr);
  buffer_size = static_cast<uint32_t>(AlignUp(kHeaderSize + config.rndv_threshold, 64));
  int cqe = std::min<int>(static_cast<int>(send_queue + recv_count), device.attr.max_cqe);
  cq = ibv_create_cq(device.verbs, cqe, this, device.channel, 0);
  if (cq == nullptr) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: ibv_create_cq(%d) failed: %s", cqe, std::strerror(errno));
    return PLASMA_TP_ERR_NO_MEMORY;
  }
  ibv_qp_init_attr init{};
  init.send_cq = cq;
  init.recv_cq = cq;
  init.qp_type = IBV_QPT_RC;
  init.cap.max_send_wr = send_queue;
  init.cap.max_recv_wr = recv_count;
  init.cap.max_send_sge = 2;  // header + the host's registered buffer
  init.cap.max_recv_sge = 1;
  init.cap.max_inline_data = config.max_inline;
  qp = ibv_create_qp(device.pd, &init);
  if (qp == nullptr && config.max_inline > 0) {  // some devices inline less, or nothing
    init.cap.max_inline_data = 0;
    qp = ibv_create_qp(device.pd, &init);
  }
  if (qp == nullptr) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: ibv_create_qp failed: %s", std::strerror(errno));
    return PLASMA_TP_ERR_NO_MEMORY;
  }
  max_inline = std::min(init.cap.max_inline_data, config.max_inline);
  psn = RandomPsn();

  // Receive buffers, send bounce buffers and per-slot headers: one MR.
  const size_t recv_bytes = size_t{recv_count} * buffer_size;
  const size_t send_bytes = size_t{config.send_buffers} * buffer_size;
  ring_bytes = recv_bytes + send_bytes + size_t{send_queue} * kHeaderSize;
  if (posix_memalign(reinterpret_cast<void**>(&ring), 4096, ring_bytes) != 0) {
    ring = nullptr;
    return PLASMA_TP_ERR_NO_MEMORY;
  }
  std::memset(ring, 0, ring_bytes);
  ring_mr = ibv_reg_mr(device.pd, ring, ring_bytes, IBV_ACCESS_LOCAL_WRITE);
  if (ring_mr == nullptr) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: registering %zu bytes of bounce buffers failed: %s",
             ring_bytes, std::strerror(errno));
    return PLASMA_TP_ERR_NO_MEMORY;
  }
  recv_slots.resize(recv_count);
  for (uint32_t i = 0; i < recv_count; ++i) {
    recv_slots[i].conn = this;
    recv_slots[i].queue = SlotQueue::kRecv;
    recv_slots[i].buffer = ring + size_t{i} * buffer_size;
  }
  for (uint32_t i = 0; i < config.send_buffers; ++i) free_send_buffers.push_back(static_cast<int32_t>(i));
  send_slots.resize(send_queue);
  for (SendSlot& slot : send_slots) {
    slot.conn = this;
    slot.queue = SlotQueue::kSend;
  }
  send_buffer_base = ring + recv_bytes;
  send_headers = ring + recv_bytes + send_bytes;
  read_piece = std::min<uint64_t>(config.read_piece, device.port_attr.max_msg_sz);

  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_INIT;
  attr.pkey_index = 0;
  attr.port_num = device.port;
  attr.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ;
  if (ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) != 0) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: QP to INIT failed: %s", std::strerror(errno));
    return PLASMA_TP_ERR_IO;
  }
  // Receives go up before the peer learns our QP number.
  std::vector<ibv_recv_wr> wrs(recv_count);
  std::vector<ibv_sge> sges(recv_count);
  for (uint32_t i = 0; i < recv_count; ++i) {
    sges[i] = {reinterpret_cast<uintptr_t>(recv_slots[i].buffer), buffer_size, ring_mr->lkey};
    wrs[i].wr_id = reinterpret_cast<uintptr_t>(&recv_slots[i]);
    wrs[i].sg_list = &sges[i];
    wrs[i].num_sge = 1;
    wrs[i].next = i + 1 < recv_count ? &wrs[i + 1] : nullptr;
  }
  ibv_recv_wr* bad = nullptr;
  if (ibv_post_recv(qp, wrs.data(), &bad) != 0) {
    ctx->Log(PLASMA_TP_LOG_ERROR, "verbs: posting receive buffers failed: %s", std::strerror(errno));
    return PLASMA_TP_ERR_IO;
  }
  granted = config.recv_buffers;
  announced = granted;
  ArmCompletions();
  return PLASMA_TP_OK;
}

Hello Connection::LocalHello() const {
  const Device& device = ctx->device;
  Hello hello;
  hello.lid = device.port_attr.lid;
  hello.qp_num = qp->qp_num;
  hello.psn = psn;
  std::memcpy(hello.gid, device.gid.raw, 16);
  hello.recv_buffers = ctx->config.recv_buffers;
  hello.buffer_payload = buffer_size - static_cast<uint32_t>(kHeaderSize);
  hello.mtu = static_cast<uint8_t>(device.port_attr.active_mtu);
  hello.max_dest_rd_atomic = static_cast<uint8_t>(device.max_rd_atomic);
  hello.ethernet = device.ethernet ? 1 : 0;
  return hello;
}

int Connection::ToReadyToReceive(const Hello& remote) {
  const Device& device = ctx->device;
  if (remote.ethernet != (device.ethernet ? 1 : 0)) {
    Fail(PLASMA_TP_ERR_PROTOCOL, std::string("the peer's port is ") +
                                     (remote.ethernet ? "RoCE" : "InfiniBand") + ", ours is " +
                                     (device.ethernet ? "RoCE" : "InfiniBand"));
    return PLASMA_TP_ERR_PROTOCOL;
  }
  if (remote.recv_buffers == 0 || remote.buffer_payload < kRtsBodySize ||
      remote.max_dest_rd_atomic == 0) {
    Fail(PLASMA_TP_ERR_PROTOCOL, "the peer's hello offers no receive buffers");
    return PLASMA_TP_ERR_PROTOCOL;
  }
  peer_granted = remote.recv_buffers;
  peer_payload = remote.buffer_payload;
  uint32_t reads = std::min<uint32_t>(device.max_rd_atomic, remote.max_dest_rd_atomic);
  if (ctx->config.read_depth != 0) reads = std::min(reads, ctx->config.read_depth);
  max_reads = std::max<uint32_t>(1, reads);

  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTR;
  attr.path_mtu = static_cast<ibv_mtu>(std::min<int>(device.port_attr.active_mtu, remote.mtu));
  attr.dest_qp_num = remote.qp_num;
  attr.rq_psn = remote.psn;
  attr.max_dest_rd_atomic = static_cast<uint8_t>(device.max_rd_atomic);
  attr.min_rnr_timer = 12;
  attr.ah_attr.port_num = device.port;
  if (device.ethernet) {
    attr.ah_attr.is_global = 1;
    std::memcpy(attr.ah_attr.grh.dgid.raw, remote.gid, 16);
    attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(device.gid_index);
    attr.ah_attr.grh.hop_limit = 64;
  } else {
    attr.ah_attr.dlid = remote.lid;
  }
  int mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
             IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
  if (ibv_modify_qp(qp, &attr, mask) != 0) {
    Fail(PLASMA_TP_ERR_IO, std::string("QP to RTR failed: ") + std::strerror(errno));
    return PLASMA_TP_ERR_IO;
  }
  return PLASMA_TP_OK;
}

int Connection::ToReadyToSend() {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTS;
  attr.timeout = static_cast<uint8_t>(ctx->config.qp_timeout);
  attr.retry_cnt = 7;
  attr.rnr_retry = 7;  // credits keep receivers ahead; this only covers a slow repost
  attr.sq_psn = psn;
  attr.max_rd_atomic = static_cast<uint8_t>(max_reads);
  int mask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
             IBV_QP_MAX_QP_RD_ATOMIC;
  if (ibv_modify_qp(qp, &attr, mask) != 0) {
    Fail(PLASMA_TP_ERR_IO, std::string("QP to RTS failed: ") + std::strerror(errno));
    return PLASMA_TP_ERR_IO;
  }
  return PLASMA_TP_OK;
}

void Connection::BecomeUp() {
  state = ConnState::kUp;
  MarkBusy();  // the peer may have sent already
  ctx->events++;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  ctx->Log(PLASMA_TP_LOG_INFO, "verbs: connected %s %s in %.1f ms (QP %u, %u credits, eager up to %u B)",
           acceptor ? "from" : "to", peer.c_str(), ms, qp->qp_num, Credits(), peer_payload);
  FlushOutgoing();
  FlushReads();
}

bool Connection::PostSend(ibv_send_wr* wr, SendSlot* slot, bool signaled) {
  MarkBusy();
  slot->seq = sq_posted++;
  wr->wr_id = reinterpret_cast<uintptr_t>(slot);
  if (signaled) wr->send_flags |= IBV_SEND_SIGNALED;
  unsignaled = signaled ? 0 : unsignaled + 1;
  ibv_send_wr* bad = nullptr;
  int rc = ibv_post_send(qp, wr, &bad);
  if (rc != 0) {
    Fail(PLASMA_TP_ERR_IO, std::string("ibv_post_send failed: ") + std::strerror(rc));
    return false;
  }
  return true;
}

void Connection::Fail(int status, const std::string& why, int level) {
  if (state == ConnState::kFailed) return;
  const bool was_up = state == ConnState::kUp;
  state = ConnState::kFailed;
  failure_status = status;
  ctx->events++;
  if (status != PLASMA_TP_ERR_CANCELED) {
    ctx->Log(was_up ? level : PLASMA_TP_LOG_ERROR, "verbs: connection %s %s: %s",
             acceptor ? "from" : "to", peer.c_str(), why.c_str());
  }
  // Messages that fully arrived are delivered, then the QP goes: once
  // ibv_destroy_qp returns, no work request of it touches memory again.
  if (cq != nullptr) PollCompletions();
  if (qp != nullptr) {
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_ERR;
    ibv_modify_qp(qp, &attr, IBV_QP_STATE);
    ibv_destroy_qp(qp);
    qp = nullptr;
  }
  if (cq != nullptr) PollCompletions();
  // What the CQ did not report is over too.
  while (sq_retired < sq_posted) {
    SendSlot* slot = &send_slots[sq_retired % send_slots.size()];
    ++sq_retired;
    if (slot->use == SendUse::kMessage) RetireMessage(slot, status);
    else if (slot->use == SendUse::kRead) OnReadDone(slot, status);
  }
  for (Outgoing& item : outgoing) {
    if (item.req != nullptr) CompleteRequest(item.req, status, 0);
  }
  outgoing.clear();
  std::deque<Request*> reads;
  reads.swap(pending_reads);
  for (Request* req : reads) CompleteRequest(req, status, 0);
  for (auto& entry : awaiting_fin) CompleteRequest(entry.second, status, 0);
  awaiting_fin.clear();
  for (Request* req : matcher.TakeAllReceives()) CompleteRequest(req, status, 0);
  if (fd >= 0) {
    ctx->UnwatchFd(fd, &watched);
    close(fd);
    fd = -1;
  }
}

}  // namespace plasma_verbs
