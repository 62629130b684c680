// Connection set-up over a TCP side channel: the listener, address blobs,
// and the Hello/Ready exchange that carries each end's QP number, PSN, GID
// and credits (the way perftest's tools exchange them). A TCP side channel
// works wherever the nodes can reach each other by IP, including Soft-RoCE
// on loopback, where rdma_cm cannot resolve routes.
//
// Bind hint: NULL or "" (all interfaces, any port), "HOST", "HOST:PORT",
// ":PORT", "[V6]:PORT". Address blob: "verbs:IPV4:PORT" or
// "verbs:[IPV6]:PORT", always numeric, so connect() never blocks.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string>

namespace plasma_verbs {

struct Connection;
struct Context;
struct Listener;

constexpr size_t kMaxAddressBlobSize = 64;

int Listen(Context* ctx, const char* bind_hint, Listener** out);
void CloseListener(Context* ctx, Listener* listener);
// Takes every pending TCP connection off the listener's socket.
void AcceptPending(Context* ctx, Listener* listener);
// OK with a connection that is up, or IN_PROGRESS.
int AcceptConnection(Context* ctx, Listener* listener, Connection** out);
int Connect(Context* ctx, const void* blob, size_t len, Connection** out);
// Frees a connection no host handle refers to any more (closed, or failed
// before accept()).
void DestroyConnection(Context* ctx, Connection* conn);

}  // namespace plasma_verbs
