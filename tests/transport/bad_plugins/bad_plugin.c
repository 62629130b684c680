/* Deliberately broken transport plugins for the loader's failure tests.
 * Compiled once per defect (BAD_*), each into its own .so. Plain C99, which
 * also proves plasma_transport.h works from C. */
#include "transport/plasma_transport.h"

#include <string.h>

static const char* bad_strerror(int status) { return plasma_tp_default_strerror(status); }

static int bad_init(const plasma_tp_init_params_t* params, plasma_tp_context_t* out_ctx) {
#if defined(BAD_INIT)
  if (params->log != NULL) {
    params->log(params->log_user_data, PLASMA_TP_LOG_ERROR, "no network card in this test");
  }
  (void)out_ctx;
  return PLASMA_TP_ERR_NO_DEVICE;
#else
  static int dummy;
  (void)params;
  *out_ctx = (plasma_tp_context_t)(void*)&dummy;
  return PLASMA_TP_OK;
#endif
}

static int bad_ctx_only(plasma_tp_context_t ctx) { (void)ctx; return PLASMA_TP_ERR_UNSUPPORTED; }
#if defined(BAD_OLDTABLE)
/* Not broken at all: a table built before poll_completions() was appended,
 * which must load. query() works so that the load gets that far. */
static int bad_query(plasma_tp_context_t ctx, plasma_tp_properties_t* p) {
  plasma_tp_properties_t mine;
  (void)ctx;
  if (p == NULL || p->struct_size < PLASMA_TP_PROPERTIES_MIN_SIZE) return PLASMA_TP_ERR_INVALID_ARGUMENT;
  memset(&mine, 0, sizeof(mine));
  mine.struct_size = (uint32_t)(p->struct_size < sizeof(mine) ? p->struct_size : sizeof(mine));
  mine.max_message_size = 1;
  mine.max_address_size = 1;
  mine.max_rkey_size = 1;
  mine.description = "a v1 table without the appended fields";
  memcpy(p, &mine, mine.struct_size);
  return PLASMA_TP_OK;
}
#else
static int bad_query(plasma_tp_context_t ctx, plasma_tp_properties_t* p) {
  (void)ctx; (void)p; return PLASMA_TP_ERR_UNSUPPORTED;
}
#endif
static int bad_wait_fd(plasma_tp_context_t ctx, int* fd) { (void)ctx; (void)fd; return PLASMA_TP_ERR_UNSUPPORTED; }
static int bad_listen(plasma_tp_context_t c, const char* h, plasma_tp_listener_t* o) {
  (void)c; (void)h; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_listener_address(plasma_tp_context_t c, plasma_tp_listener_t l, const void** a, size_t* n) {
  (void)c; (void)l; (void)a; (void)n; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_accept(plasma_tp_context_t c, plasma_tp_listener_t l, plasma_tp_conn_t* o) {
  (void)c; (void)l; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_close_listener(plasma_tp_context_t c, plasma_tp_listener_t l) { (void)c; (void)l; return PLASMA_TP_ERR_UNSUPPORTED; }
static int bad_connect(plasma_tp_context_t c, const void* a, size_t n, plasma_tp_conn_t* o) {
  (void)c; (void)a; (void)n; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_conn_only(plasma_tp_context_t c, plasma_tp_conn_t conn) { (void)c; (void)conn; return PLASMA_TP_ERR_UNSUPPORTED; }
static int bad_mem_register(plasma_tp_context_t c, void* a, size_t n, uint32_t f, plasma_tp_mem_t* o) {
  (void)c; (void)a; (void)n; (void)f; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_mem_rkey(plasma_tp_context_t c, plasma_tp_mem_t m, const void** r, size_t* n) {
  (void)c; (void)m; (void)r; (void)n; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_mem_deregister(plasma_tp_context_t c, plasma_tp_mem_t m) { (void)c; (void)m; return PLASMA_TP_ERR_UNSUPPORTED; }
static int bad_rkey_unpack(plasma_tp_context_t c, plasma_tp_conn_t conn, const void* p, size_t n,
                           plasma_tp_rkey_t* o) {
  (void)c; (void)conn; (void)p; (void)n; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_rkey_release(plasma_tp_context_t c, plasma_tp_rkey_t r) { (void)c; (void)r; return PLASMA_TP_ERR_UNSUPPORTED; }
static int bad_send(plasma_tp_context_t c, plasma_tp_conn_t conn, uint64_t t, const void* b, size_t n,
                    plasma_tp_mem_t m, plasma_tp_request_t* o) {
  (void)c; (void)conn; (void)t; (void)b; (void)n; (void)m; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
#if !defined(BAD_NULLFUNCTION)
static int bad_recv(plasma_tp_context_t c, plasma_tp_conn_t conn, uint64_t t, uint64_t k, void* b,
                    size_t n, plasma_tp_mem_t m, plasma_tp_request_t* o) {
  (void)c; (void)conn; (void)t; (void)k; (void)b; (void)n; (void)m; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
#endif
static int bad_probe(plasma_tp_context_t c, plasma_tp_conn_t conn, uint64_t t, uint64_t k,
                     plasma_tp_completion_t* i) {
  (void)c; (void)conn; (void)t; (void)k; (void)i; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_read(plasma_tp_context_t c, plasma_tp_conn_t conn, void* b, size_t n, plasma_tp_mem_t m,
                    uint64_t a, plasma_tp_rkey_t r, plasma_tp_request_t* o) {
  (void)c; (void)conn; (void)b; (void)n; (void)m; (void)a; (void)r; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_test(plasma_tp_context_t c, plasma_tp_request_t r, plasma_tp_completion_t* o) {
  (void)c; (void)r; (void)o; return PLASMA_TP_ERR_UNSUPPORTED;
}
static int bad_cancel(plasma_tp_context_t c, plasma_tp_request_t r) { (void)c; (void)r; return PLASMA_TP_ERR_UNSUPPORTED; }
#if !defined(BAD_NULLPOLL) && !defined(BAD_OLDTABLE)
static int bad_poll_completions(plasma_tp_context_t c, plasma_tp_request_completion_t* out, size_t max,
                                size_t* count) {
  (void)c; (void)out; (void)max; (void)count; return PLASMA_TP_ERR_UNSUPPORTED;
}
#endif

#if defined(BAD_NOSYMBOL)
#define BAD_TABLE_SYMBOL plasma_transport_v0 /* wrong name: the v1 symbol is missing */
#else
#define BAD_TABLE_SYMBOL plasma_transport_v1
#endif

PLASMA_TP_EXPORT extern const plasma_tp_v1_t BAD_TABLE_SYMBOL;
const plasma_tp_v1_t BAD_TABLE_SYMBOL = {
#if defined(BAD_VERSION)
    99u,
#else
    PLASMA_TP_ABI_VERSION_1,
#endif
#if defined(BAD_SIZE)
    8u,
#elif defined(BAD_OLDTABLE)
    (uint32_t)PLASMA_TP_V1_MIN_SIZE, /* ends at cancel: no poll_completions */
#else
    sizeof(plasma_tp_v1_t),
#endif
    "bad",
    "0.0.0",
    bad_strerror,
    bad_init,
    bad_ctx_only, /* finalize */
    bad_query,
    bad_ctx_only, /* progress */
    bad_wait_fd,
    bad_ctx_only, /* arm */
    bad_listen,
    bad_listener_address,
    bad_accept,
    bad_close_listener,
    bad_connect,
    bad_conn_only, /* conn_status */
    bad_conn_only, /* close_conn */
    bad_mem_register,
    bad_mem_rkey,
    bad_mem_deregister,
    bad_rkey_unpack,
    bad_rkey_release,
    bad_send,
#if defined(BAD_NULLFUNCTION)
    NULL,
#else
    bad_recv,
#endif
    bad_probe,
    bad_read,
    bad_test,
    bad_cancel,
#if defined(BAD_NULLPOLL) || defined(BAD_OLDTABLE)
    NULL, /* NULLPOLL: covered by struct_size yet NULL; OLDTABLE: beyond struct_size */
#else
    bad_poll_completions,
#endif
};
