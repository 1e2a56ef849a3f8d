/*
 * raw_http: a tiny real HTTP/1.1 server for tests. It listens on 127.0.0.1 on an ephemeral
 * port, serves from one background thread, records every request byte for byte, and answers
 * from a queue of scripted responses.
 *
 *   struct raw_http *srv;
 *   ck_assert_int_eq(raw_http_start(&srv), 0);
 *   raw_http_push_response(srv, 429, "Retry-After: 7\r\n", "{\"error\":\"slow down\"}");
 *   ... point the code under test at raw_http_url(srv) ...
 *   ck_assert_str_eq(raw_http_request(srv, 0), "PUT /contacts/x HTTP/1.1\r\n...");
 *   raw_http_stop(srv);
 *
 * What it records: each request's bytes from the first byte of the request line through the
 * end of its body, exactly as received. The body is framed by Content-Length only (no
 * chunked request bodies; a request without Content-Length has no body). Keep-alive and
 * several connections at once are supported; pipelined requests are answered in order.
 *
 * What it answers: the next queued action, or when the queue is empty the default
 * 200 with "Content-Type: application/json" and body "{}". Responses always carry
 * Content-Length; the connection stays open unless the request said "Connection: close".
 *
 * The server thread allocates with plain malloc, not util_malloc, so util_fail_alloc_after
 * in a test never breaks the server. All functions are safe to call while the server runs;
 * functions other than raw_http_stop must not race with raw_http_stop.
 */
#ifndef ODSYNC_RAW_HTTP_H
#define ODSYNC_RAW_HTTP_H

#include <stddef.h>

struct raw_http;

/* Start a server on 127.0.0.1:0 with its own thread. On success *out is a server the caller
 * stops and frees with raw_http_stop; returns 0, or -1 (errno set) on failure. */
int raw_http_start(struct raw_http **out);

/* Stop the thread, close every socket and free everything, including the strings
 * raw_http_request returned. Accepts NULL. */
void raw_http_stop(struct raw_http *srv);

/* The port it listens on. */
int raw_http_port(const struct raw_http *srv);

/* "http://127.0.0.1:PORT" (no trailing slash). Borrowed, valid until raw_http_stop. */
const char *raw_http_url(const struct raw_http *srv);

/* Queue a response: status (e.g. 200), extra header lines (each "Name: value\r\n", or NULL;
 * a Content-Type here replaces the default "application/json") and a NUL-terminated body
 * (NULL = empty). Everything is copied. Returns 0, or -1 on allocation failure. */
int raw_http_push_response(struct raw_http *srv, int status, const char *headers, const char *body);

/* Queue exact bytes to send as the whole answer (copied); the connection is closed after
 * them. For malformed or hand-framed responses. Returns 0 or -1. */
int raw_http_push_raw(struct raw_http *srv, const char *bytes, size_t len);

/* Queue "close the connection without answering" (the client sees an empty reply). */
int raw_http_push_close(struct raw_http *srv);

/* Queue "never answer": the request is recorded and the connection is left open until the
 * client gives up or the server stops. For timeout tests. */
int raw_http_push_hang(struct raw_http *srv);

/* Number of complete requests received so far. */
size_t raw_http_request_count(const struct raw_http *srv);

/* Raw bytes of request i (0-based), NUL-terminated (the length, which also counts any NUL
 * inside the body, is raw_http_request_len). Borrowed, valid until raw_http_stop; the caller
 * does not free it. NULL when i >= raw_http_request_count. */
const char *raw_http_request(const struct raw_http *srv, size_t i);
size_t raw_http_request_len(const struct raw_http *srv, size_t i);

/* Number of TCP connections accepted so far (to test connection reuse). */
size_t raw_http_connection_count(const struct raw_http *srv);

/* Wait until at least n requests have arrived or timeout_ms passed. Returns 0 when they
 * have, -1 on timeout. For code under test that calls the server from another thread or
 * process. */
int raw_http_wait_requests(const struct raw_http *srv, size_t n, int timeout_ms);

#endif
