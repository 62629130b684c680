// One-sided READ emulated over the byte stream: the reader sends a
// READ_REQUEST naming (rkey, remote address, length); the holder's plugin,
// inside its own progress(), checks the key and the bounds and answers with
// a READ_RESPONSE whose payload is written straight out of the registered
// memory, or with an error status and no payload.
#pragma once

#include "plugins/socket/wire_format.h"

namespace plasma_socket {

struct Connection;
struct RemoteKey;
struct Request;

void PostRead(Connection* conn, Request* req, uint64_t remote_addr, const RemoteKey* rkey);

void OnReadRequest(Connection* conn, const FrameHeader& header);
void OnReadResponse(Connection* conn, const FrameHeader& header);

}  // namespace plasma_socket
