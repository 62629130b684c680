// read(): served by the holder (the reader's kAmReadRequest, the holder's
// check against its live registrations, then a tagged send of the bytes
// straight from registered memory into the reader's posted receive, moved
// by UCP's rendezvous protocol), or ucp_get_nbx() (on shared-memory
// endpoints, or everywhere with PLASMA_UCX_READ=get). Which is faster
// where: docs/benchmarks.md.
#pragma once

#include <ucp/api/ucp.h>

#include "plugins/ucx/wire_format.h"

namespace plasma_ucx {

struct Context;
struct Registration;
struct Request;

// One READ this side serves: keeps its registration pinned until UCP has
// finished sending from it.
struct ServedRead {
  Context* ctx = nullptr;
  Registration* reg = nullptr;
};

// Starts a read() now (connection up) or queues it until it is.
void SubmitRead(Request* req);
void StartRead(Request* req);

// Holder side of kAmReadRequest, and the reader side of kAmReadRefused.
void ServeReadRequest(Context* ctx, const ReadRequestHeader& request);
void HandleReadRefused(Context* ctx, const ReadRefusedHeader& refused);

// A READ that ended early (canceled, connection gone) may still get its
// bytes; they are received into nothing so UCP does not keep them.
void RememberAbandonedRead(Context* ctx, uint64_t data_tag);
void DrainAbandonedReads(Context* ctx);

void FreeServedReads(Context* ctx);

}  // namespace plasma_ucx
