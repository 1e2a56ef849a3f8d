/*
 * serve: the scaffolding the Open Dental simulator and every provider fake share — the
 * listen address, a request body collected across libmicrohttpd's calls, the completion
 * and logging callbacks. Each program keeps its own routes and state; this is only what
 * was the same in all of them.
 */
#ifndef ODSYNC_SERVE_H
#define ODSYNC_SERVE_H

#include <signal.h>
#include <stdarg.h>

#include <microhttpd.h>
#include <netinet/in.h>

#include "util.h"

/* A request body as it arrives. Owned by libmicrohttpd's per-request slot (*req_cls):
 * allocated by the program's access handler on the first call, freed by
 * serve_on_completed. */
struct serve_upload {
    struct sbuf body; /* owned */
    int too_big;      /* the body passed the program's limit and was dropped */
};

/* The body-collecting half of an access handler (call it first with the handler's own
 * arguments). Returns the request's upload once its whole body has arrived: the handler
 * answers. Until then returns NULL and *ret is what the handler must return right away
 * (MHD_YES: more is coming; MHD_NO: out of memory). A body past max bytes is dropped and
 * too_big set, so the handler can answer 413. */
struct serve_upload *serve_collect(void **req_cls, const char *data, size_t *size, size_t max,
                                   enum MHD_Result *ret);

/* Parse "A.B.C.D:PORT" (port 0 = a free one) into addr. ODSYNC_OK or ODSYNC_PARSE. */
int serve_parse_listen(const char *s, struct sockaddr_in *addr);

/* Block SIGTERM and SIGINT (the MHD threads started after inherit the mask, so only the
 * main thread's sigwait() sees them) and ignore SIGPIPE. sigs is filled for sigwait. */
void serve_block_signals(sigset_t *sigs);

/* MHD_OPTION_UNESCAPE_CALLBACK's callback type. */
typedef size_t (*serve_unescape_fn)(void *cls, struct MHD_Connection *conn, char *s);

/* Start libmicrohttpd on addr: a thread per connection, handler(cls) for every request,
 * the body slot freed by serve_on_completed, its messages logged at debug level, idle
 * connections closed after 120 s. unescape (may be NULL: MHD's own) sees every URL first.
 * NULL when it cannot listen. */
struct MHD_Daemon *serve_start(const struct sockaddr_in *addr, MHD_AccessHandlerCallback handler,
                               void *cls, serve_unescape_fn unescape);

/* MHD_OPTION_NOTIFY_COMPLETED callback: frees the request's struct serve_upload. */
void serve_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe);

/* MHD_OPTION_EXTERNAL_LOGGER callback: libmicrohttpd's messages as debug log lines. */
void serve_on_mhd_log(void *cls, const char *fmt, va_list ap);

#endif
