/*
 * http_server: the daemon's HTTP listener (libmicrohttpd, a thread pool, optional TLS).
 * It reads whole request bodies up to a limit (413 past it), then hands each request to one
 * handler; the handler fills a reply. Routing lives with the routes' owners (events.c and,
 * later, the dashboard), not here. Never logs bodies or Authorization values.
 */
#ifndef ODSYNC_HTTP_SERVER_H
#define ODSYNC_HTTP_SERVER_H

#include <stddef.h>

struct http_server;

/* A request as the handler sees it. Everything is borrowed until the handler returns. */
struct http_request {
    const char *method; /* "POST" */
    const char *path;   /* "/api/od/events/main-st" (no query) */
    const char *body;   /* NUL-terminated (may contain NULs before body_len) */
    size_t body_len;
    void *conn; /* for http_request_header / http_request_arg */
};

#define HTTP_REPLY_MAX_HEADERS 8

/* The reply a handler fills. body is owned (util_malloc'd) or NULL. */
struct http_reply {
    int status;
    char *body;
    const char *content_type; /* static string; default "application/json" */
    /* Extra response headers, added with http_reply_header: names static, values owned. */
    const char *header_names[HTTP_REPLY_MAX_HEADERS];
    char *header_values[HTTP_REPLY_MAX_HEADERS];
    size_t n_headers;
};

/* Add a response header (Location, Set-Cookie, ...). name is a static string; value is
 * copied. ODSYNC_OK, ODSYNC_INVALID when the reply has HTTP_REPLY_MAX_HEADERS already or the
 * value holds a CR or LF, or ODSYNC_NOMEM. */
int http_reply_header(struct http_reply *reply, const char *name, const char *value);

/* Header value (case-insensitive) or query argument of a request; NULL when absent. */
const char *http_request_header(const struct http_request *req, const char *name);
const char *http_request_arg(const struct http_request *req, const char *name);

/* Fill reply with status and the body {"error": "<formatted message>"} (JSON-escaped; at most
 * 255 bytes of message). The message must hold no secret or patient data. */
void http_reply_error(struct http_reply *reply, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef void (*http_handler_fn)(void *arg, const struct http_request *req,
                                struct http_reply *reply);

struct http_server_options {
    const char *listen;   /* "127.0.0.1:8787" (port 0 = ephemeral) */
    size_t max_body;      /* bytes; larger bodies get 413 before the handler runs */
    const char *tls_cert; /* PEM file paths, both or neither */
    const char *tls_key;
    unsigned threads; /* worker threads; 0 = 4 */
};

/* Start listening. handler and arg are borrowed and must outlive the server. On success
 * *out is a server the caller stops with http_server_stop. err names what failed. */
int http_server_start(const struct http_server_options *opt, http_handler_fn handler, void *arg,
                      struct http_server **out, char *err, size_t errlen);

/* The port actually bound. */
int http_server_port(const struct http_server *s);

/* Stop (waits for running handlers) and free; accepts NULL. */
void http_server_stop(struct http_server *s);

#endif
