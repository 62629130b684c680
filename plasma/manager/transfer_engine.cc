#include "plasma/manager/transfer_engine.h"

#include <algorithm>

#include "plasma/common/logging.h"

namespace plasma {

Result<std::unique_ptr<TransferEngine>> TransferEngine::Create(EventLoop* loop,
                                                               transport::Plugin* plugin,
                                                               LocalStore* store,
                                                               const Options& options) {
  std::unique_ptr<TransferEngine> engine(new TransferEngine(loop, plugin, store, options));
  PLASMA_RETURN_NOT_OK(engine->Start());
  return engine;
}

TransferEngine::TransferEngine(EventLoop* loop, transport::Plugin* plugin,
                               LocalStore* store, const Options& options)
    : loop_(loop), plugin_(plugin), store_(std::move(store)), options_(options) {}

TransferEngine::~TransferEngine() {
  holder_.reset();
  puller_.reset();
  driver_.reset();
  buffers_.reset();
  // finalize() (by the loader) frees connections, registrations and requests.
}

Status TransferEngine::Start() {
  const plasma_tp_v1_t& ops = plugin_->api();
  plasma_tp_context_t context = plugin_->context();
  const plasma_tp_properties_t& props = plugin_->properties();
  if (props.max_rkey_size > transfer::kMaxRkeySize) {
    return Status::NotSupported("transport " + plugin_->name() + " packs remote keys of up to " +
                                std::to_string(props.max_rkey_size) +
                                " bytes; the transfer protocol carries at most " +
                                std::to_string(transfer::kMaxRkeySize));
  }
  inline_message_limit_ = options_.eager_threshold ? options_.eager_threshold : props.eager_threshold;
  // A HEADER receive takes any control message and any inline object.
  size_t header_capacity = std::max<size_t>(transfer::kMaxControlMessage, inline_message_limit_);

  // The whole arena is registered once: every transfer reads straight into
  // (or is served straight out of) object memory with no registration.
  PLASMA_ASSIGN_OR_RETURN(auto region, store_->MapArena());
  int rc = ops.mem_register(context, region.base, region.size,
                            PLASMA_TP_ACCESS_LOCAL | PLASMA_TP_ACCESS_REMOTE_READ, &arena_mem_);
  if (rc != PLASMA_TP_OK) {
    return plugin_->ToStatus(rc, "register the store arena (" + std::to_string(region.size) +
                                     " bytes)");
  }
  const void* rkey;
  size_t rkey_length;
  rc = ops.mem_rkey(context, arena_mem_, &rkey, &rkey_length);
  if (rc != PLASMA_TP_OK) return plugin_->ToStatus(rc, "pack the arena's remote key");

  rc = ops.listen(context, options_.bind_hint.c_str(), &listener_);
  if (rc != PLASMA_TP_OK) return plugin_->ToStatus(rc, "listen on '" + options_.bind_hint + "'");
  const void* address;
  size_t address_length;
  rc = ops.listener_address(context, listener_, &address, &address_length);
  if (rc != PLASMA_TP_OK) return plugin_->ToStatus(rc, "listener address");
  address_.assign(static_cast<const char*>(address), address_length);

  buffers_ = std::make_unique<ControlBufferPool>(&ops, context, header_capacity);
  driver_ = std::make_unique<TransportDriver>(
      loop_, plugin_, [this] { AfterPass(); },
      [](const Status&) { /* transfers end by their deadlines; the driver backs off */ });

  PullerOptions pull;
  pull.inflight_byte_budget = options_.inflight_byte_budget;
  pull.stall_timeout_ms = options_.stall_timeout_ms;
  pull.verify_digests = options_.verify_digests;
  pull.max_push_bytes = options_.max_push_bytes;
  // A native READ moves the bytes without the holder's help: a push would
  // only trade it for two-sided messages. An emulated one is a request and
  // a reply, the round trip a push saves, but only if the plugin's eager
  // messages are large: UCX over TCP (8 KiB) pushed 256 KiB-4 MiB 3-9x
  // slower than it reads (docs/benchmarks.md, "Pushes").
  bool native_read = (props.flags & PLASMA_TP_PROP_NATIVE_READ) != 0;
  bool large_eager = props.eager_threshold >= kMinPushChunk;
  push_chunk_ = native_read || !large_eager || options_.max_push_bytes == 0 ? 0 : props.eager_threshold;
  PullerResources resources;
  resources.arena_mem = arena_mem_;
  resources.header_capacity = header_capacity;
  resources.store_capacity = uint64_t(store_->capacity());
  resources.push_chunk = push_chunk_;
  puller_ = std::make_unique<Puller>(loop_, driver_.get(), buffers_.get(), store_, pull,
                                     resources);

  HolderOptions hold;
  hold.inline_message_limit = inline_message_limit_;
  hold.stall_timeout_ms = options_.stall_timeout_ms;
  hold.max_lent_bytes_per_peer = options_.max_lent_bytes_per_peer;
  HolderArena arena;
  arena.base = region.base;
  arena.size = region.size;
  arena.mem = arena_mem_;
  arena.rkey.assign(static_cast<const char*>(rkey), rkey_length);
  holder_ = std::make_unique<Holder>(loop_, driver_.get(), buffers_.get(), store_, hold,
                                     arena);
  return driver_->Start();
}

// The store calls of a pass are made together, pipelined: one wake-up of
// the store for all the pulls served, objects created and objects sealed.
void TransferEngine::AfterPass() {
  holder_->AcceptConnections(listener_);
  bool worked = true;
  while (worked) {
    bool served = holder_->RunStoreCalls();
    bool pulled = puller_->RunStoreCalls();
    worked = served || pulled;
  }
  puller_->CheckConnections();
}

}  // namespace plasma
