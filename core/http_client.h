/*
 * http_client: HTTP through libcurl for the host and its plugins. One client per thread
 * (it keeps a curl easy handle so connections are reused). Also the one HTTP status ->
 * result class mapping and Retry-After parsing, used everywhere in odsync.
 */
#ifndef ODSYNC_HTTP_CLIENT_H
#define ODSYNC_HTTP_CLIENT_H

#include <stdint.h>
#include <time.h>

#include <odsync/sink.h>

struct http_client;

/* Call once at start-up before any thread uses a client (curl_global_init). */
int http_global_init(void);
void http_global_cleanup(void);

/* A new client; caller frees with http_client_destroy. NULL on NOMEM. */
struct http_client *http_client_create(void);
void http_client_destroy(struct http_client *c); /* accepts NULL */

/* Perform req. On return *out is a response (caller frees with http_response_free), also
 * on transport failure (status 0, result_class RETRY, error set). *out is NULL only when the
 * return is ODSYNC_NOMEM or ODSYNC_INVALID (bad request struct or URL scheme).
 * Returns the response's result_class. The response struct is the SDK's; the host keeps
 * the headers beside it. */
int http_client_perform(struct http_client *c, const struct odsync_http_request *req,
                        struct odsync_http_response **out);

/* Header value of a response from http_client_perform (case-insensitive), or NULL.
 * Borrowed until http_response_free. */
const char *http_response_header(const struct odsync_http_response *resp, const char *name);

/* Free a response from http_client_perform; accepts NULL. */
void http_response_free(struct odsync_http_response *resp);

/* The one status -> class mapping (see odsync_host.status_class). */
int http_status_class(int status);

/* Parse a Retry-After value: delta seconds or an HTTP-date (IMF-fixdate), relative to now.
 * Returns milliseconds >= 0, or -1 when value is NULL or malformed. */
int64_t http_parse_retry_after(const char *value, time_t now);

/* RFC 3986 percent-encoding; see odsync_host.url_encode. */
int http_url_encode(const char *in, char *out, size_t out_len);

#endif
