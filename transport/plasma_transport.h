/*
 * plasma_transport.h — the transport plugin ABI of the Plasma object store.
 *
 * Every byte that crosses nodes goes through a plugin: a shared object that
 * exports ONE symbol per ABI version it implements, pointing at a const
 * function table:
 *
 *     extern const plasma_tp_v1_t plasma_transport_v1;
 *
 * The host (plasma-manager, via transport/loader.h) dlopen()s the plugin,
 * looks the symbol up, checks abi_version and struct_size, then calls init().
 *
 * Plain C99 on purpose: plugins may be written in C or C++, and no C++ type,
 * exception or allocator ever crosses the boundary. docs/transport-abi.md is
 * the full contract; the comments here are its summary.
 *
 * Conventions that hold for every function in the table:
 *  - Returns int: PLASMA_TP_OK (0), PLASMA_TP_IN_PROGRESS (1) where stated,
 *    or a negative PLASMA_TP_ERR_*.  Out-parameters are written only on OK.
 *  - Threading: the host serializes all calls on one context (one progress
 *    thread per context), so a plugin needs no locks for its own state.
 *    Different contexts may be used from different threads concurrently.
 *  - No function blocks. Work happens in progress(); posting functions only
 *    queue work (they may also start it).
 *  - Handles are opaque; a handle from one context is never passed to another.
 */
#ifndef PLASMA_TRANSPORT_H_
#define PLASMA_TRANSPORT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versioning --------------------------------------------------------- */

#define PLASMA_TP_ABI_VERSION_1 1u
/* Exported symbol name of the v1 table. A future v2 plugin may export both
 * plasma_transport_v2 and plasma_transport_v1; hosts try the newest first. */
#define PLASMA_TP_SYMBOL_V1 "plasma_transport_v1"

/* ---- Status codes ------------------------------------------------------- */

/* Stable numbers: they are ABI. New codes are only ever appended. */
enum {
  PLASMA_TP_OK = 0,
  PLASMA_TP_IN_PROGRESS = 1,              /* not done yet; progress and ask again */
  PLASMA_TP_ERR_NO_MEMORY = -1,
  PLASMA_TP_ERR_INVALID_ARGUMENT = -2,
  PLASMA_TP_ERR_UNSUPPORTED = -3,         /* plugin does not implement this */
  PLASMA_TP_ERR_CONNECTION_REFUSED = -4,
  PLASMA_TP_ERR_CONNECTION_RESET = -5,    /* peer went away; connection is dead */
  PLASMA_TP_ERR_TIMED_OUT = -6,
  PLASMA_TP_ERR_BAD_RKEY = -7,            /* remote key unknown, stale or without READ access */
  PLASMA_TP_ERR_OUT_OF_BOUNDS = -8,       /* READ range not inside the registration */
  PLASMA_TP_ERR_MESSAGE_TOO_LARGE = -9,   /* message longer than the posted receive */
  PLASMA_TP_ERR_CANCELED = -10,           /* cancel() or close_conn() ended the request */
  PLASMA_TP_ERR_AGAIN = -11,              /* context out of request resources; progress, retry */
  PLASMA_TP_ERR_ADDRESS = -12,            /* address blob or bind hint malformed or unusable */
  PLASMA_TP_ERR_PROTOCOL = -13,           /* peer spoke something we don't understand */
  PLASMA_TP_ERR_IO = -14,                 /* other OS or device error; details in the log */
  PLASMA_TP_ERR_NO_DEVICE = -15,          /* no usable network device for this plugin */
  PLASMA_TP_ERR_INTERNAL = -16            /* plugin bug */
};

/* Default texts for the codes above. A plugin's strerror() may forward here. */
static inline const char* plasma_tp_default_strerror(int status) {
  switch (status) {
    case PLASMA_TP_OK: return "success";
    case PLASMA_TP_IN_PROGRESS: return "in progress";
    case PLASMA_TP_ERR_NO_MEMORY: return "out of memory";
    case PLASMA_TP_ERR_INVALID_ARGUMENT: return "invalid argument";
    case PLASMA_TP_ERR_UNSUPPORTED: return "operation not supported by this transport";
    case PLASMA_TP_ERR_CONNECTION_REFUSED: return "connection refused";
    case PLASMA_TP_ERR_CONNECTION_RESET: return "connection reset by peer";
    case PLASMA_TP_ERR_TIMED_OUT: return "timed out";
    case PLASMA_TP_ERR_BAD_RKEY: return "bad remote key";
    case PLASMA_TP_ERR_OUT_OF_BOUNDS: return "remote range outside the registered region";
    case PLASMA_TP_ERR_MESSAGE_TOO_LARGE: return "message larger than the receive buffer";
    case PLASMA_TP_ERR_CANCELED: return "request canceled";
    case PLASMA_TP_ERR_AGAIN: return "transport resources exhausted, try again";
    case PLASMA_TP_ERR_ADDRESS: return "bad or unusable address";
    case PLASMA_TP_ERR_PROTOCOL: return "transport protocol error";
    case PLASMA_TP_ERR_IO: return "I/O error";
    case PLASMA_TP_ERR_NO_DEVICE: return "no usable network device";
    case PLASMA_TP_ERR_INTERNAL: return "internal transport error";
    default: return "unknown transport status";
  }
}

/* ---- Tags --------------------------------------------------------------- */

/* The host owns the low PLASMA_TP_TAG_BITS bits of every tag; they are all it
 * ever sets in a tag or a mask. The bits above are the plugin's, for its own
 * demultiplexing (a connection id in a worker-wide tag space, say). A receive
 * mask is either exact (PLASMA_TP_TAG_EXACT) or a prefix: the top n host bits
 * set, the rest clear (PLASMA_TP_TAG_PREFIX(n), n in 0..48; 0 matches any
 * tag). Plugins reject other tags and masks with PLASMA_TP_ERR_INVALID_ARGUMENT.
 * Order is guaranteed only among messages of one tag. */
#define PLASMA_TP_TAG_BITS 48
#define PLASMA_TP_TAG_EXACT ((UINT64_C(1) << PLASMA_TP_TAG_BITS) - 1)
#define PLASMA_TP_TAG_PREFIX(n) \
  ((n) == 0 ? UINT64_C(0) : (PLASMA_TP_TAG_EXACT & ~((UINT64_C(1) << (PLASMA_TP_TAG_BITS - (n))) - 1)))

static inline int plasma_tp_tag_mask_valid(uint64_t mask) {
  uint64_t clear_low;
  if (mask & ~PLASMA_TP_TAG_EXACT) return 0;
  clear_low = ~mask & PLASMA_TP_TAG_EXACT; /* must be 0...01...1 */
  return (clear_low & (clear_low + 1)) == 0;
}

/* ---- Opaque handles ----------------------------------------------------- */

typedef struct plasma_tp_context_s* plasma_tp_context_t;   /* one per init() */
typedef struct plasma_tp_listener_s* plasma_tp_listener_t;
typedef struct plasma_tp_conn_s* plasma_tp_conn_t;         /* a connected endpoint */
typedef struct plasma_tp_mem_s* plasma_tp_mem_t;           /* a local memory registration */
typedef struct plasma_tp_rkey_s* plasma_tp_rkey_t;         /* a peer's unpacked remote key */
typedef struct plasma_tp_request_s* plasma_tp_request_t;   /* an outstanding send/recv/read */

/* ---- Logging ------------------------------------------------------------ */

enum {
  PLASMA_TP_LOG_ERROR = 1,
  PLASMA_TP_LOG_WARN = 2,
  PLASMA_TP_LOG_INFO = 3,
  PLASMA_TP_LOG_DEBUG = 4,
  PLASMA_TP_LOG_TRACE = 5
};

/* message: one line, NUL-terminated, no trailing newline, valid only during
 * the call. Must be thread-safe on the host side. */
typedef void (*plasma_tp_log_fn)(void* user_data, int level, const char* message);

/* ---- init() parameters (extensible: struct_size first) ------------------ */

typedef struct plasma_tp_init_params {
  uint32_t struct_size;         /* host sets sizeof(plasma_tp_init_params_t) */
  int32_t max_log_level;        /* plugin may skip messages above this level */
  plasma_tp_log_fn log;         /* may be NULL: then the plugin logs nothing */
  void* log_user_data;
  /* Appended (read only if struct_size covers it): the bind hint the host
   * will pass to listen(), or NULL/"" for the default. A plugin whose
   * registrations belong to one device (verbs: a protection domain) picks
   * that device here, in init(), because memory is registered before
   * listen(). listen() hints must then name an address on that device. */
  const char* local_address;
} plasma_tp_init_params_t;

/* ---- Properties (extensible: struct_size first) ------------------------- */

enum {
  /* read() is a native one-sided operation (RDMA READ, ucp_get); when clear
   * it is emulated by the peer's plugin inside its own progress(). */
  PLASMA_TP_PROP_NATIVE_READ = 1u << 0,
  /* Local buffers of read(), of send() with length > eager_threshold and of
   * recv() with capacity > eager_threshold must lie inside a registration
   * passed as `mem`. Shorter ones may pass NULL (the plugin copies them). */
  PLASMA_TP_PROP_REGISTRATION_REQUIRED = 1u << 1,
  /* wait_fd() returns a pollable descriptor. */
  PLASMA_TP_PROP_WAIT_FD = 1u << 2
};

typedef struct plasma_tp_properties {
  uint32_t struct_size;       /* in: host's sizeof; out: bytes the plugin filled */
  uint32_t flags;             /* PLASMA_TP_PROP_* */
  uint64_t max_message_size;  /* largest send/recv length; UINT64_MAX: no limit. read() has
                                 none: plugins split a READ themselves */
  uint64_t eager_threshold;   /* messages up to this are cheap unexpected and need no mem */
  uint32_t max_inflight;      /* per connection on the wire at once (informational: more
                                 posts are queued inside the plugin); 0: no limit */
  uint32_t max_address_size;  /* upper bound of listener address blobs, bytes */
  uint32_t max_rkey_size;     /* upper bound of packed remote keys, bytes */
  uint32_t reserved;          /* zero */
  const char* description;    /* one human line, e.g. "TCP sockets, emulated READ"; owned by plugin */
} plasma_tp_properties_t;

/* ---- Registration access flags ------------------------------------------ */

enum {
  PLASMA_TP_ACCESS_LOCAL = 1u << 0,        /* used as a local send/recv/read buffer */
  PLASMA_TP_ACCESS_REMOTE_READ = 1u << 1   /* peers may read() it with the packed rkey */
};

/* ---- Completions -------------------------------------------------------- */

enum { PLASMA_TP_OP_SEND = 1, PLASMA_TP_OP_RECV = 2, PLASMA_TP_OP_READ = 3 };

typedef struct plasma_tp_completion {
  int32_t status;    /* PLASMA_TP_OK or a negative PLASMA_TP_ERR_* */
  uint32_t op;       /* PLASMA_TP_OP_* */
  uint64_t tag;      /* recv: the matched message's tag; send: the tag sent; read: 0 */
  uint64_t length;   /* bytes moved; recv with ERR_MESSAGE_TOO_LARGE: the sender's length */
} plasma_tp_completion_t;

/* One entry of poll_completions(): the request handle the post returned
 * (the host's key for its own context; released by this report) and its
 * completion. */
typedef struct plasma_tp_request_completion {
  plasma_tp_request_t request;
  plasma_tp_completion_t completion;
} plasma_tp_request_completion_t;

/* ---- The v1 function table ---------------------------------------------- */

typedef struct plasma_tp_v1 {
  /* Header: identical layout in every ABI version. */
  uint32_t abi_version;          /* PLASMA_TP_ABI_VERSION_1 */
  uint32_t struct_size;          /* sizeof(plasma_tp_v1_t) the plugin was built with */
  const char* name;              /* short name, e.g. "socket"; [a-z0-9_-]+ */
  const char* plugin_version;    /* free-form, e.g. "0.1.0" */

  /* Static text for a status code. Callable without a context. */
  const char* (*strerror)(int status);

  /* -- Context -- */
  /* Creates a context. On failure the plugin should log why (ERROR level)
   * before returning, e.g. PLASMA_TP_ERR_NO_DEVICE. */
  int (*init)(const plasma_tp_init_params_t* params, plasma_tp_context_t* out_ctx);
  /* Frees everything the context owns: listeners, connections, registrations,
   * rkeys, and requests not yet released (by test() or poll_completions()).
   * All handles die. */
  int (*finalize)(plasma_tp_context_t ctx);
  int (*query)(plasma_tp_context_t ctx, plasma_tp_properties_t* props);

  /* -- Progress and waiting -- */
  /* Does all pending work without blocking: I/O, connection establishment,
   * accepting, serving peers' emulated reads. Returns the number (>= 0) of
   * things that happened (0: idle, the host may sleep) or a negative error
   * meaning the context is unusable. */
  int (*progress)(plasma_tp_context_t ctx);
  /* A descriptor that polls readable when progress() has work.
   * PLASMA_TP_ERR_UNSUPPORTED if the plugin has none. Owned by the plugin. */
  int (*wait_fd)(plasma_tp_context_t ctx, int* out_fd);
  /* Call before sleeping on wait_fd: PLASMA_TP_OK means it is safe to sleep:
   * everything still pending (including sends waiting for flow-control
   * credits that arrive as completions) will make wait_fd readable.
   * PLASMA_TP_IN_PROGRESS means progress() has work to do right now.
   * (ibv_req_notify_cq / ucp_worker_arm semantics.) */
  int (*arm)(plasma_tp_context_t ctx);

  /* -- Listening and connecting -- */
  /* bind_hint: NULL or "" (plugin default), "HOST", "HOST:PORT", "[V6]:PORT";
   * port 0 or absent = any free port. */
  int (*listen)(plasma_tp_context_t ctx, const char* bind_hint, plasma_tp_listener_t* out);
  /* The blob a peer passes to connect(). Owned by the plugin, valid until
   * close_listener(). Opaque bytes, not NUL-terminated. */
  int (*listener_address)(plasma_tp_context_t ctx, plasma_tp_listener_t listener,
                          const void** out_addr, size_t* out_len);
  /* PLASMA_TP_OK with a new connection, or PLASMA_TP_IN_PROGRESS if none is
   * pending (progress() accepts in the background). */
  int (*accept)(plasma_tp_context_t ctx, plasma_tp_listener_t listener, plasma_tp_conn_t* out);
  int (*close_listener)(plasma_tp_context_t ctx, plasma_tp_listener_t listener);
  /* Never blocks: returns a connection at once (only a malformed blob fails
   * here). Establishment is driven by progress(); operations posted before
   * it completes are queued. Failure shows in conn_status() and completes
   * every queued request with the error. */
  int (*connect)(plasma_tp_context_t ctx, const void* addr, size_t addr_len,
                 plasma_tp_conn_t* out);
  /* PLASMA_TP_IN_PROGRESS while establishing, PLASMA_TP_OK once up, or the
   * error that killed the connection (refused, reset, timed out, ...). */
  int (*conn_status)(plasma_tp_context_t ctx, plasma_tp_conn_t conn);
  /* Abortive; the handle dies at once. Once it returns the peer can no
   * longer READ local memory through this connection. Requests still
   * outstanding on it complete with PLASMA_TP_ERR_CANCELED (they still need
   * test() or poll_completions()), reported only once the device can no longer touch their
   * buffers. Release the connection's rkeys first. */
  int (*close_conn)(plasma_tp_context_t ctx, plasma_tp_conn_t conn);

  /* -- Memory -- */
  /* access: PLASMA_TP_ACCESS_* bits. Registering a whole arena once at start
   * up is the intended use; registrations may be large. */
  int (*mem_register)(plasma_tp_context_t ctx, void* addr, size_t length, uint32_t access,
                      plasma_tp_mem_t* out);
  /* Packed remote key for peers (needs PLASMA_TP_ACCESS_REMOTE_READ). Owned
   * by the plugin, valid until mem_deregister(); at most max_rkey_size. */
  int (*mem_rkey)(plasma_tp_context_t ctx, plasma_tp_mem_t mem, const void** out_rkey,
                  size_t* out_len);
  /* Stops new remote reads at once. PLASMA_TP_OK: the plugin will never touch
   * the memory again and the handle is dead. PLASMA_TP_IN_PROGRESS: still in
   * use by transfers in flight; keep the memory valid, progress, call again. */
  int (*mem_deregister)(plasma_tp_context_t ctx, plasma_tp_mem_t mem);
  /* Turns a peer's packed rkey into a handle usable for read() on `conn`. */
  int (*rkey_unpack)(plasma_tp_context_t ctx, plasma_tp_conn_t conn, const void* packed,
                     size_t packed_len, plasma_tp_rkey_t* out);
  int (*rkey_release)(plasma_tp_context_t ctx, plasma_tp_rkey_t rkey);

  /* -- Data movement: each posts one request, finished via test() or
   *    poll_completions() -- */
  /* The buffer must stay valid and unchanged until the send completes.
   * Completion means the buffer may be reused, not that the peer has it.
   * mem: registration containing buf, or NULL (see REGISTRATION_REQUIRED). */
  int (*send)(plasma_tp_context_t ctx, plasma_tp_conn_t conn, uint64_t tag, const void* buf,
              size_t length, plasma_tp_mem_t mem, plasma_tp_request_t* out_req);
  /* Matches a message on `conn` whose tag satisfies
   * (msg_tag & tag_mask) == (tag & tag_mask) (tag_mask exact or a prefix,
   * see Tags); messages of one tag match in the order sent, receives of one
   * (tag, mask) in posting order. Bytes land directly in buf. A message
   * longer than capacity completes this request with
   * PLASMA_TP_ERR_MESSAGE_TOO_LARGE (the message is discarded). A message
   * that arrives before its receive is copied out of the plugin's receive
   * resources (bounce buffers, credits are never held by it). */
  int (*recv)(plasma_tp_context_t ctx, plasma_tp_conn_t conn, uint64_t tag, uint64_t tag_mask,
              void* buf, size_t capacity, plasma_tp_mem_t mem, plasma_tp_request_t* out_req);
  /* Looks for an arrived, not yet matched message (non-consuming).
   * PLASMA_TP_OK fills info->tag and info->length; PLASMA_TP_IN_PROGRESS: none. */
  int (*probe)(plasma_tp_context_t ctx, plasma_tp_conn_t conn, uint64_t tag, uint64_t tag_mask,
               plasma_tp_completion_t* info);
  /* One-sided: copies [remote_addr, remote_addr + length) of the peer's
   * registration named by rkey into local_buf. remote_addr is the address
   * in the peer's process (the address it registered, plus an offset). Any
   * length: the plugin splits what its device cannot move in one piece and
   * completes the request once. */
  int (*read)(plasma_tp_context_t ctx, plasma_tp_conn_t conn, void* local_buf, size_t length,
              plasma_tp_mem_t local_mem, uint64_t remote_addr, plasma_tp_rkey_t rkey,
              plasma_tp_request_t* out_req);

  /* -- Requests -- */
  /* Does not drive progress. PLASMA_TP_IN_PROGRESS: not done. PLASMA_TP_OK:
   * done, *out is filled (out->status may be an error), the request handle
   * is released, and the plugin never touches the request's buffer again. */
  int (*test)(plasma_tp_context_t ctx, plasma_tp_request_t req, plasma_tp_completion_t* out);
  /* Asks to end the request early; it still completes through test(), with
   * PLASMA_TP_ERR_CANCELED or, if too late to stop, its normal result. */
  int (*cancel)(plasma_tp_context_t ctx, plasma_tp_request_t req);

  /* -- Appended to v1: optional, present when struct_size covers them -- */
  /* Reports up to `max` completed requests, each released as by test(), in
   * completion order; *out_count says how many (0: none). The alternative to
   * test()ing every outstanding request. A host uses one of the two per
   * request, never both. */
  int (*poll_completions)(plasma_tp_context_t ctx, plasma_tp_request_completion_t* out,
                          size_t max, size_t* out_count);
} plasma_tp_v1_t;

/* Hosts reject tables smaller than this: every v1 field above is required.
 * Fields appended to v1 later will be optional and checked against
 * struct_size before use. */
#define PLASMA_TP_V1_MIN_SIZE (offsetof(plasma_tp_v1_t, cancel) + sizeof(void (*)(void)))
#define PLASMA_TP_PROPERTIES_MIN_SIZE \
  (offsetof(plasma_tp_properties_t, description) + sizeof(const char*))
#define PLASMA_TP_INIT_PARAMS_MIN_SIZE \
  (offsetof(plasma_tp_init_params_t, log_user_data) + sizeof(void*))
/* Sizes that cover the appended optional fields. */
#define PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS \
  (offsetof(plasma_tp_v1_t, poll_completions) + sizeof(void (*)(void)))
#define PLASMA_TP_INIT_PARAMS_SIZE_WITH_LOCAL_ADDRESS \
  (offsetof(plasma_tp_init_params_t, local_address) + sizeof(const char*))

/* Plugins define the table with this so the symbol is exported even when
 * built with -fvisibility=hidden, and unmangled from C++. */
#if defined(__GNUC__)
#define PLASMA_TP_EXPORT __attribute__((visibility("default")))
#else
#define PLASMA_TP_EXPORT
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLASMA_TRANSPORT_H_ */
