/*
 * od_client: HTTP to one office's Open Dental API (Remote, Local API or API Service — only
 * the base URL differs). Every request carries `Authorization: ODFHIR {dev}/{customer}` and
 * `Content-Type: application/json`, and goes through the pacer of its customer key, which
 * spaces request starts by the office's minimum interval (the throttle counts execution
 * time, so start-to-start) — shared by every client of that key in the process.
 *
 * Answers are classified once, here:
 *   2xx                         -> OK
 *   429, 504, 5xx, no answer    -> retried with backoff (Retry-After honoured) up to a limit
 *                                  (408 too; a Retry-After over 60 s ends the call: RETRY)
 *   400 naming the eConnector   -> office OFFLINE (retry on a later pass)
 *   400 naming the version      -> office VERSION (that call is not available)
 *   other 400                   -> ERROR (a request odsync got wrong: not retried)
 *   401                         -> office AUTH (keys or permission; needs an operator)
 *   404                         -> NOT_FOUND
 * The office state is kept for `odsync status` and never holds patient data.
 */
#ifndef ODSYNC_OD_CLIENT_H
#define ODSYNC_OD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"

enum od_state {
    OD_STATE_OK = 0,
    OD_STATE_OFFLINE = 1, /* eConnector not running, or HQ <-> office trouble */
    OD_STATE_VERSION = 2, /* the office's Open Dental is too old for a call */
    OD_STATE_AUTH = 3,    /* 401: keys invalid, or the developer key lacks a permission */
    OD_STATE_ERROR = 4    /* unreachable after retries, or a request refused as malformed */
};

struct od_client_stats {
    int64_t requests; /* HTTP requests sent */
    int64_t retries;  /* of which retries */
    int64_t paced_ms; /* time spent waiting for the pacer */
};

struct od_client;

/* A client for office (borrowed; must outlive the client). Caller frees with
 * od_client_destroy. NULL on NOMEM. */
struct od_client *od_client_create(const struct config_office *office);
void od_client_destroy(struct od_client *c); /* accepts NULL */

/* Retry policy (defaults: 5 retries, backoff 1 s doubling to 60 s). */
void od_client_set_retry(struct od_client *c, int max_retries, int64_t base_ms, int64_t cap_ms);

/* GET base_url + path_query ("/patients/Simple?DateTStamp=..."; values already
 * percent-encoded). On ODSYNC_OK *json is the parsed body (caller cJSON_Deletes). Otherwise
 * the office state is updated, err says what happened (no patient data), and the return is
 * ODSYNC_RETRY (offline or unreachable: try a later pass), ODSYNC_AUTH, ODSYNC_NOT_FOUND,
 * ODSYNC_UNSUPPORTED (version too old) or ODSYNC_PERMANENT (request refused) or
 * ODSYNC_PARSE (the body was not JSON). */
int od_client_get(struct od_client *c, const char *path_query, cJSON **json, char *err,
                  size_t errlen);

/* One page of a list endpoint: path_query plus Limit=page_size&Offset=offset. *items is a
 * JSON array (a non-array answer is ODSYNC_PARSE). */
int od_client_get_page(struct od_client *c, const char *path_query, int64_t offset, cJSON **items,
                       char *err, size_t errlen);

/* POST a JSON body; *json as for od_client_get (201 included). */
int od_client_post(struct od_client *c, const char *path, const char *body, cJSON **json, char *err,
                   size_t errlen);
/* PUT a JSON body; as od_client_post (an empty 2xx body is the JSON null). */
int od_client_put(struct od_client *c, const char *path, const char *body, cJSON **json, char *err,
                  size_t errlen);

/* A flag that, once non-zero, cuts pacing and retry waits short: the call in progress ends
 * with ODSYNC_RETRY instead of starting another request. NULL = none. Borrowed. */
void od_client_set_stop(struct od_client *c, const volatile int *stop);

/* Rows per page for this office. */
int64_t od_client_page_size(const struct od_client *c);

/* The office state after the last call, and why (no patient data). Borrowed until the next
 * call on c. */
enum od_state od_client_state(const struct od_client *c, const char **detail);
const char *od_state_name(enum od_state s);

/* A copy of the counters. */
void od_client_stats(const struct od_client *c, struct od_client_stats *out);

/* Free the process-wide pacer registry (at exit, after every client is destroyed). */
void od_client_global_cleanup(void);

#endif
