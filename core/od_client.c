/*
 * od_client.c: paced, classified HTTP to Open Dental.
 */
#include "od_client.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_client.h"
#include "log.h"
#include "util.h"

#define URL_MAX    2048
#define DETAIL_MAX 256
/* The longest Retry-After waited out inside one call. The wait happens in pace(), holding
 * the key's pacer lock, so a longer one would park this ingester — and every office sharing
 * the key — out of reach of a shutdown for as long as the server says (it is unbounded). */
#define RETRY_AFTER_MAX_MS 60000

/* One pacer per customer key in the process. */
struct pacer {
    struct pacer *next;
    char *key;       /* the customer key (a secret: never logged) */
    int64_t next_ms; /* monotonic time the next request may start */
    pthread_mutex_t lock;
};

static pthread_mutex_t pacers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pacer *pacers;

struct od_client {
    const struct config_office *office;
    struct http_client *http;
    struct pacer *pacer;
    char *auth; /* "ODFHIR dev/customer" */
    int max_retries;
    int64_t backoff_base_ms, backoff_cap_ms;
    const volatile int *stop; /* set: waits end early, no new request starts */
    enum od_state state;
    char detail[DETAIL_MAX];
    struct od_client_stats stats;
};

/* The pacer for key, created on first use; NULL on NOMEM. */
static struct pacer *pacer_for(const char *key)
{
    struct pacer *p;
    pthread_mutex_lock(&pacers_lock);
    for (p = pacers; p != NULL; p = p->next)
        if (strcmp(p->key, key) == 0)
            goto cleanup;
    p = util_calloc(1, sizeof(*p));
    if (p == NULL)
        goto cleanup;
    p->key = util_strdup(key);
    if (p->key == NULL) {
        util_free(p);
        p = NULL;
        goto cleanup;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->next = pacers;
    pacers = p;
cleanup:
    pthread_mutex_unlock(&pacers_lock);
    return p;
}

void od_client_global_cleanup(void)
{
    struct pacer *p, *next;
    pthread_mutex_lock(&pacers_lock);
    for (p = pacers; p != NULL; p = next) {
        next = p->next;
        pthread_mutex_destroy(&p->lock);
        util_free(p->key);
        util_free(p);
    }
    pacers = NULL;
    pthread_mutex_unlock(&pacers_lock);
}

/* Sleep ms milliseconds. */
static void sleep_ms(int64_t ms)
{
    struct timespec ts;
    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The safety margin added to the office's interval (0 when unpaced). */
static int64_t pace_margin_ms(const struct od_client *c)
{
    int64_t i = c->office->od_min_interval_ms;
    if (i <= 0)
        return 0;
    return i / 50 > 25 ? i / 50 : 25;
}

/* Wait for this key's next slot and take it; extra_ms pushes the slot (Retry-After). The wait
 * is cut short when the client's stop flag is set: then ODSYNC_RETRY and no slot is taken. */
static int pace(struct od_client *c, int64_t extra_ms)
{
    int64_t now, wait, slice;
    int rc = ODSYNC_OK;
    pthread_mutex_lock(&c->pacer->lock);
    now = util_monotonic_ms();
    if (extra_ms > 0 && c->pacer->next_ms < now + extra_ms)
        c->pacer->next_ms = now + extra_ms;
    while ((wait = c->pacer->next_ms - now) > 0) {
        if (c->stop != NULL && *c->stop) {
            rc = ODSYNC_RETRY;
            goto cleanup;
        }
        slice = wait < 100 ? wait : 100;
        sleep_ms(slice);
        c->stats.paced_ms += slice;
        now = util_monotonic_ms();
    }
    /* A margin keeps clock granularity and delivery jitter from ever landing a request
     * early: Open Dental counts arrivals, and one request can arrive late (a busy host, a
     * slow network) while the next arrives on time. 2% of the interval, at least 25 ms. */
    c->pacer->next_ms = now + c->office->od_min_interval_ms + pace_margin_ms(c);
cleanup:
    pthread_mutex_unlock(&c->pacer->lock);
    return rc;
}

void od_client_set_stop(struct od_client *c, const volatile int *stop)
{
    c->stop = stop;
}

struct od_client *od_client_create(const struct config_office *office)
{
    struct od_client *c = util_calloc(1, sizeof(*c));
    size_t n;
    if (c == NULL)
        return NULL;
    c->office = office;
    c->max_retries = 5;
    c->backoff_base_ms = 1000;
    c->backoff_cap_ms = 60000;
    n = strlen(office->od_developer_key) + strlen(office->od_customer_key) + 9;
    c->auth = util_malloc(n);
    c->http = http_client_create();
    c->pacer = pacer_for(office->od_customer_key);
    if (c->auth == NULL || c->http == NULL || c->pacer == NULL) {
        od_client_destroy(c);
        return NULL;
    }
    util_fmt(c->auth, n, "ODFHIR %s/%s", office->od_developer_key, office->od_customer_key);
    return c;
}

void od_client_destroy(struct od_client *c)
{
    if (c == NULL)
        return;
    http_client_destroy(c->http);
    if (c->auth != NULL) {
        memset(c->auth, 0, strlen(c->auth));
        util_free(c->auth);
    }
    util_free(c);
}

void od_client_set_retry(struct od_client *c, int max_retries, int64_t base_ms, int64_t cap_ms)
{
    c->max_retries = max_retries;
    c->backoff_base_ms = base_ms;
    c->backoff_cap_ms = cap_ms;
}

int64_t od_client_page_size(const struct od_client *c)
{
    return c->office->od_page_size;
}

const char *od_state_name(enum od_state s)
{
    static const char *const names[] = {"ok", "offline", "version", "auth", "error"};
    return (unsigned)s < UTIL_ARRAY_LEN(names) ? names[s] : "unknown";
}

enum od_state od_client_state(const struct od_client *c, const char **detail)
{
    if (detail != NULL)
        *detail = c->detail;
    return c->state;
}

void od_client_stats(const struct od_client *c, struct od_client_stats *out)
{
    *out = c->stats;
}

/* Set the office state and its detail. */
static void set_state(struct od_client *c, enum od_state s, const char *fmt, ...) UTIL_PRINTF(3, 4);
static void set_state(struct od_client *c, enum od_state s, const char *fmt, ...)
{
    va_list ap;
    c->state = s;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
    log_redact(c->detail, sizeof(c->detail));
}

/* The text of an error body: a JSON string, an object's "message"/"Message", or the raw
 * text; bounded and single-line. */
static void error_text(const struct odsync_http_response *r, char *out, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *m = NULL;
    size_t i;
    if (cJSON_IsString(j))
        m = j;
    else if (cJSON_IsObject(j))
        m = cJSON_GetObjectItem(j, "message");
    util_fmt(out, len, "%s", cJSON_IsString(m) ? m->valuestring : r->body);
    cJSON_Delete(j);
    for (i = 0; out[i] != '\0'; i++)
        if (out[i] == '\r' || out[i] == '\n')
            out[i] = ' ';
}

/* Case-insensitive substring test. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

/* Classify a final (non-retried) answer; sets the state. */
static int classify(struct od_client *c, const struct odsync_http_response *r, const char *path,
                    char *err, size_t errlen)
{
    char text[192];
    error_text(r, text, sizeof(text));
    if (r->status == 400 && contains_ci(text, "econnector")) {
        set_state(c, OD_STATE_OFFLINE, "eConnector not running: %s", text);
        util_fmt(err, errlen, "office %s offline: %s", c->office->id, text);
        return ODSYNC_RETRY;
    }
    if (r->status == 400 && contains_ci(text, "version")) {
        set_state(c, OD_STATE_VERSION, "Open Dental version too old for %s: %s", path, text);
        util_fmt(err, errlen, "office %s: %s needs a newer Open Dental: %s", c->office->id, path,
                 text);
        return ODSYNC_UNSUPPORTED;
    }
    if (r->status == 401) {
        set_state(c, OD_STATE_AUTH, "401: keys invalid or permission missing (%s)", text);
        util_fmt(err, errlen, "office %s: Open Dental refused the keys (401): %s", c->office->id,
                 text);
        return ODSYNC_AUTH;
    }
    if (r->status == 404) {
        util_fmt(err, errlen, "office %s: %s: not found", c->office->id, path);
        return ODSYNC_NOT_FOUND;
    }
    set_state(c, OD_STATE_ERROR, "HTTP %d on %s: %s", r->status, path, text);
    util_fmt(err, errlen, "office %s: HTTP %d on %s: %s", c->office->id, r->status, path, text);
    /* Transient answers that outlasted the retries (408 as well: retryable() retries it) are
     * RETRY, never PERMANENT, so a later pass or a caller's write may try again. */
    return r->status == 0 || r->status >= 500 || r->status == 429 || r->status == 408
               ? ODSYNC_RETRY
               : ODSYNC_PERMANENT;
}

/* 1 when an answer is worth retrying now (throttle, gateway, transport). */
static int retryable(const struct odsync_http_response *r)
{
    return r->status == 0 || r->status == 429 || r->status == 408 || r->status >= 500;
}

/* One request with pacing and retries; *json on success. */
static int request(struct od_client *c, const char *method, const char *path_query,
                   const char *body, cJSON **json, char *err, size_t errlen)
{
    char url[URL_MAX];
    struct odsync_http_header h[] = {{"Authorization", c->auth},
                                     {"Content-Type", "application/json"},
                                     {"Accept", "application/json"}};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = method,
                                      .url = url,
                                      .headers = h,
                                      .header_count = UTIL_ARRAY_LEN(h),
                                      .body = body,
                                      .body_len = body ? strlen(body) : 0,
                                      .timeout_ms = 90000};
    struct odsync_http_response *r = NULL;
    int64_t extra = 0, ceiling = c->backoff_base_ms;
    int attempt, rc = ODSYNC_RETRY;

    *json = NULL;
    if (util_fmt(url, sizeof(url), "%s%s", c->office->od_base_url, path_query) != ODSYNC_OK) {
        util_fmt(err, errlen, "office %s: URL too long", c->office->id);
        return ODSYNC_INVALID;
    }
    for (attempt = 0; attempt <= c->max_retries; attempt++) {
        if (pace(c, extra) != ODSYNC_OK) {
            util_fmt(err, errlen, "office %s: stopped (shutdown)", c->office->id);
            http_response_free(r);
            return ODSYNC_RETRY;
        }
        http_response_free(r);
        r = NULL;
        c->stats.requests++;
        c->stats.retries += attempt > 0;
        if (http_client_perform(c->http, &req, &r) == ODSYNC_NOMEM || r == NULL)
            return ODSYNC_NOMEM;
        if (!retryable(r) || attempt == c->max_retries)
            break;
        if (r->retry_after_ms > RETRY_AFTER_MAX_MS)
            break; /* a longer pause asked for: give up this call (RETRY) instead of waiting */
        /* Retry-After when given, else exponential backoff; both through the pacer. */
        extra = r->retry_after_ms >= 0 ? r->retry_after_ms : ceiling;
        ceiling = ceiling * 2 > c->backoff_cap_ms ? c->backoff_cap_ms : ceiling * 2;
        log_debug("od", "office %s: HTTP %d on %s, retrying in %lld ms", c->office->id, r->status,
                  path_query, (long long)extra);
    }
    if (r->status >= 200 && r->status <= 299) {
        /* Some writes answer 200 with no body (PUT Confirm, DELETE): that is null. */
        *json = r->body_len == 0 ? cJSON_CreateNull() : cJSON_ParseWithLength(r->body, r->body_len);
        rc = *json != NULL ? ODSYNC_OK : ODSYNC_PARSE;
        if (rc == ODSYNC_OK)
            set_state(c, OD_STATE_OK, "ok");
        else
            util_fmt(err, errlen, "office %s: %s answered %d with a body that is not JSON",
                     c->office->id, path_query, r->status);
    } else if (r->status == 0) {
        set_state(c, OD_STATE_ERROR, "unreachable: %s", r->error ? r->error : "no answer");
        util_fmt(err, errlen, "office %s: Open Dental unreachable: %s", c->office->id,
                 r->error ? r->error : "no answer");
        rc = ODSYNC_RETRY;
    } else {
        rc = classify(c, r, path_query, err, errlen);
    }
    http_response_free(r);
    return rc;
}

int od_client_get(struct od_client *c, const char *path_query, cJSON **json, char *err,
                  size_t errlen)
{
    return request(c, "GET", path_query, NULL, json, err, errlen);
}

int od_client_post(struct od_client *c, const char *path, const char *body, cJSON **json, char *err,
                   size_t errlen)
{
    return request(c, "POST", path, body, json, err, errlen);
}

int od_client_put(struct od_client *c, const char *path, const char *body, cJSON **json, char *err,
                  size_t errlen)
{
    return request(c, "PUT", path, body, json, err, errlen);
}

int od_client_get_page(struct od_client *c, const char *path_query, int64_t offset, cJSON **items,
                       char *err, size_t errlen)
{
    char pq[URL_MAX];
    int rc;
    *items = NULL;
    if (util_fmt(pq, sizeof(pq), "%s%sLimit=%lld&Offset=%lld", path_query,
                 strchr(path_query, '?') ? "&" : "?", (long long)c->office->od_page_size,
                 (long long)offset) != ODSYNC_OK)
        return ODSYNC_INVALID;
    rc = od_client_get(c, pq, items, err, errlen);
    if (rc == ODSYNC_OK && !cJSON_IsArray(*items)) {
        util_fmt(err, errlen, "office %s: %s: expected a JSON array", c->office->id, path_query);
        cJSON_Delete(*items);
        *items = NULL;
        rc = ODSYNC_PARSE;
    }
    return rc;
}
