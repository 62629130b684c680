// The completion queue of one connection: what each work completion means,
// and how a signaled send completion retires the unsignaled ones before it.
#include <cstring>
#include <string>

#include "plugins/verbs/connection.h"

namespace plasma_verbs {
namespace {

constexpr int kBatch = 32;

int StatusOf(ibv_wc_status status) {
  switch (status) {
    case IBV_WC_SUCCESS: return PLASMA_TP_OK;
    case IBV_WC_REM_ACCESS_ERR: return PLASMA_TP_ERR_BAD_RKEY;
    case IBV_WC_WR_FLUSH_ERR:
    case IBV_WC_RETRY_EXC_ERR:
    case IBV_WC_RNR_RETRY_EXC_ERR:
    case IBV_WC_REM_ABORT_ERR: return PLASMA_TP_ERR_CONNECTION_RESET;
    case IBV_WC_REM_INV_REQ_ERR: return PLASMA_TP_ERR_PROTOCOL;
    default: return PLASMA_TP_ERR_IO;
  }
}

std::string Explain(const ibv_wc& wc) {
  switch (wc.status) {
    case IBV_WC_REM_ACCESS_ERR:
      return "the peer's device refused a READ (remote access error: key stale or range not "
             "registered)";
    case IBV_WC_RETRY_EXC_ERR: return "the peer stopped answering (transport retries exhausted)";
    case IBV_WC_RNR_RETRY_EXC_ERR: return "the peer posted no receive (RNR retries exhausted)";
    case IBV_WC_WR_FLUSH_ERR: return "the queue pair went to the error state";
    default: return std::string("work completion failed: ") + ibv_wc_status_str(wc.status);
  }
}

}  // namespace

void Connection::ArmCompletions() {
  if (cq == nullptr || cq_armed || Failed()) return;
  if (ibv_req_notify_cq(cq, 0) == 0) {
    cq_armed = true;
    ctx->armed_cqs++;
  }
}

void Connection::MarkBusy() {
  last_active_call = ctx->progress_calls;
  if (busy) return;
  busy = true;
  ctx->busy.push_back(this);
}

bool Connection::Idle() const {
  return state == ConnState::kUp && sq_posted == sq_retired && outgoing.empty() &&
         pending_reads.empty() && reads_in_flight == 0;
}

int Connection::PollCompletions() {
  if (cq == nullptr) return 0;
  int total = 0;
  ibv_wc wcs[kBatch];
  for (;;) {
    int n = ibv_poll_cq(cq, kBatch, wcs);
    if (n < 0) {
      DeferFailure(PLASMA_TP_ERR_IO, "ibv_poll_cq failed");
      break;
    }
    for (int i = 0; i < n; ++i) {
      const ibv_wc& wc = wcs[i];
      auto* slot = reinterpret_cast<WorkSlot*>(static_cast<uintptr_t>(wc.wr_id));
      if (slot->queue == SlotQueue::kRecv) {
        if (wc.status == IBV_WC_SUCCESS) {
          OnArrival(static_cast<RecvSlot*>(slot), wc.byte_len);
        } else if (wc.status != IBV_WC_WR_FLUSH_ERR) {
          DeferFailure(StatusOf(wc.status), Explain(wc));
        } else {
          DeferFailure(PLASMA_TP_ERR_CONNECTION_RESET, Explain(wc));
        }
        continue;
      }
      auto* done = static_cast<SendSlot*>(slot);
      if (done->seq < sq_retired) continue;  // a failure retired it already
      const int status = StatusOf(wc.status);
      // The connection's own status for the unsignaled ones before it.
      const int earlier = status == PLASMA_TP_OK ? PLASMA_TP_OK : PLASMA_TP_ERR_CONNECTION_RESET;
      while (sq_retired <= done->seq) {
        SendSlot* each = &send_slots[sq_retired % send_slots.size()];
        ++sq_retired;
        int each_status = each == done ? status : earlier;
        if (Failed() && each_status != PLASMA_TP_OK) each_status = failure_status;
        if (each->use == SendUse::kMessage) RetireMessage(each, each_status);
        else if (each->use == SendUse::kRead) OnReadDone(each, each_status);
        each->use = SendUse::kFree;
      }
      if (status != PLASMA_TP_OK) {
        DeferFailure(status == PLASMA_TP_ERR_BAD_RKEY ? PLASMA_TP_ERR_CONNECTION_RESET : status,
                     Explain(wc));
      }
    }
    total += n;
    if (n < kBatch) break;
  }
  // Only what the host can see counts as an event (CompleteRequest and state
  // changes count themselves): a credit or a send-buffer returned is not, so
  // arm() does not wake the host for it.
  if (deferred_failure != PLASMA_TP_OK && !Failed()) {
    int status = deferred_failure;
    deferred_failure = PLASMA_TP_OK;
    Fail(status, deferred_why);
  } else if (state == ConnState::kUp && total > 0) {
    FlushOutgoing();
    FlushReads();
  }
  return total;
}

}  // namespace plasma_verbs
