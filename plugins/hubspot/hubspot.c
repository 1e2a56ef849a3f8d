/*
 * hubspot.c: the HubSpot CRM connector ("hubspot"). Request logic only; settings and the
 * property table are in hubspot_config.c, the account time zone in hubspot_tz.c. README.md
 * documents the wire format and the result mapping:
 *
 *   contacts  POST /crm/v3/objects/contacts/batch/upsert   idProperty = id_property
 *   tasks     POST /crm/v3/objects/tasks/batch/create      (first version, with the 204
 *                                                          association to the contact)
 *             POST /crm/v3/objects/tasks/batch/update      (later versions, by remote id)
 *   lookups   POST /crm/v3/objects/contacts/batch/read     (a task's contact id, by key)
 *   setup     GET /crm/v3/properties/{object}/{name}, 404 -> POST /crm/v3/properties/{object}
 *
 * All HTTP goes through the host's services table. Request bodies carry patient data: they are
 * never logged, and no result detail quotes a HubSpot message (HubSpot echoes invalid values
 * in them); details name statuses, HubSpot error categories and codes, property names and
 * opaque keys only.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <odsync/sink.h>

#include "hubspot_config.h"

#define DETAIL_MAX         256     /* bytes of a result detail, NUL included */
#define RING               512     /* completion times of recent requests kept for pacing */
#define PACE_MARGIN_MS     25      /* added to a computed wait: our clock vs. HubSpot's window */
#define DAILY_GRACE_MS     60000   /* resume this long after the computed midnight */
#define DAILY_PROBE_MS     3600000 /* still DAILY-limited soon after a reset: look again in 1 h */
#define DAILY_EARLY_MS     (6 * 3600000LL) /* "soon after the reset" */
#define TRACE_MAX          160
#define CONTACT_PATH       "/crm/v3/objects/contacts"
#define TASK_PATH          "/crm/v3/objects/tasks"
#define ASSOC_TASK_CONTACT 204

/* key -> HubSpot contact id, open addressing; both strings owned. */
struct idmap {
    char **keys;
    char **vals;
    size_t cap; /* 0 or a power of two */
    size_t n;
};

struct hubspot {
    const struct odsync_host *host; /* borrowed, valid until destroy */
    odsync_host_ctx *ctx;           /* borrowed, valid until destroy */
    struct hubspot_config cfg;      /* owned */
    char *authorization;            /* owned "Bearer <token>"; wiped on destroy */
    int props_ready;                /* 1 once create_properties did its work */
    struct idmap contacts;          /* owned: contact ids learnt from upserts and reads */
    struct idmap emails;            /* owned: lower-cased email -> the key of the contact
                                       given it as HubSpot's (unique) email */
    /* Rate limits, from the last response that carried the headers. */
    int64_t rl_max, rl_remaining;       /* -1 = unknown */
    int64_t rl_interval_ms;             /* window length */
    int64_t rl_seen_mono;               /* monotonic ms of that response */
    int64_t daily_max, daily_remaining; /* -1 = unknown */
    int64_t daily_until_ms;             /* wall ms: no request before this (daily quota gone) */
    int64_t daily_last_until_ms;        /* the last daily pause's end, to spot a wrong time zone */
    int64_t ring[RING];                 /* monotonic completion times of our requests */
    size_t ring_next, ring_n;
    int last_status; /* HTTP status of the last request (0: transport error) */
    int last_class;  /* its class; -1 before the first request */
};

/* What a failed request means for the items it covered, or why an item failed. */
struct outcome {
    int cls;
    int status; /* HTTP status, 0 when none */
    int64_t retry_after_ms;
    char detail[DETAIL_MAX];
};

/* One record of the batch being sent. */
struct item {
    const struct odsync_record *rec; /* borrowed from send_batch */
    cJSON *json;                     /* owned: the parsed record */
    int done;                        /* a result was reported */
};

/* Set when a request says the whole instance must wait (RATE_LIMITED or AUTH): the rest of
 * the send_batch call is not sent and gets the same class. */
struct pause {
    struct outcome o; /* o.cls ODSYNC_OK = not paused */
    int logged;
};

/* ---- small helpers ------------------------------------------------------------------- */

static void wipe(char *s)
{
    if (s == NULL)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms milliseconds (EINTR resumes). */
static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void outcome_set(struct outcome *o, int cls, int status, int64_t retry_after_ms,
                        const char *fmt, ...) ODSYNC_PRINTF_LIKE(5, 6);

/* Fill o; the detail from fmt (no patient data). */
static void outcome_set(struct outcome *o, int cls, int status, int64_t retry_after_ms,
                        const char *fmt, ...)
{
    va_list ap;
    o->cls = cls;
    o->status = status;
    o->retry_after_ms = retry_after_ms;
    va_start(ap, fmt);
    vsnprintf(o->detail, sizeof(o->detail), fmt, ap);
    va_end(ap);
}

/* A header value as a non-negative integer, or -1. */
static int64_t header_int(const struct hubspot *h, const struct odsync_http_response *resp,
                          const char *name)
{
    const char *v = h->host->http_header(resp, name);
    char *end = NULL;
    if (v == NULL)
        return -1;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    while (end != NULL && (*end == ' ' || *end == '\t'))
        end++;
    if (errno != 0 || end == v || end == NULL || *end != '\0' || n < 0)
        return -1;
    return n;
}

/* A string member of obj, or NULL. Borrowed from obj. */
static const char *str_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A short token safe for a detail: [A-Za-z0-9_.:-] only, at most 64 bytes, else "?". */
static const char *token_or(const char *s, char *buf, size_t len)
{
    size_t n = 0;
    if (s == NULL || s[0] == '\0')
        return NULL;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= 64 || n + 1 >= len ||
            !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return "?";
        buf[n] = c;
    }
    buf[n] = '\0';
    return buf;
}

/* "CATEGORY" or "CATEGORY CODE (property)" of a HubSpot error object into out: the
 * category, the first sub-error's code and its context.propertyName[0]; never a message. */
static void error_summary(const cJSON *err, char *out, size_t out_len)
{
    char b1[72], b2[72], b3[72];
    const char *cat = token_or(str_of(err, "category"), b1, sizeof(b1));
    const cJSON *sub = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(err, "errors"), 0);
    const char *code = token_or(str_of(sub, "code"), b2, sizeof(b2));
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(sub, "context");
    const cJSON *pn = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ctx, "propertyName"), 0);
    const char *prop = token_or(cJSON_IsString(pn) ? pn->valuestring : NULL, b3, sizeof(b3));
    if (cat == NULL)
        cat = "error";
    if (code != NULL && prop != NULL)
        snprintf(out, out_len, "%s %s (%s)", cat, code, prop);
    else if (code != NULL)
        snprintf(out, out_len, "%s %s", cat, code);
    else
        snprintf(out, out_len, "%s", cat);
}

/* ---- the contact id map ------------------------------------------------------------------ */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* The slot of key (its own, or the empty one where it would go). cap > 0. */
static size_t idmap_slot(const struct idmap *m, const char *key)
{
    size_t i = (size_t)fnv1a(key) & (m->cap - 1);
    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* The id for key, or NULL. Borrowed, valid until the map changes. */
static const char *idmap_get(const struct idmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = idmap_slot(m, key);
    return m->keys[i] != NULL ? m->vals[i] : NULL;
}

/* Remember key -> val (both copied). Returns ODSYNC_OK or ODSYNC_NOMEM (the map is then
 * unchanged: it is only a cache). */
static int idmap_put(struct idmap *m, const char *key, const char *val)
{
    if (m->cap == 0 || (m->n + 1) * 4 > m->cap * 3) {
        size_t cap = m->cap == 0 ? 256 : m->cap * 2;
        struct idmap g = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(char *)), cap, 0};
        if (g.keys == NULL || g.vals == NULL) {
            free(g.keys);
            free(g.vals);
            return ODSYNC_NOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->keys[i] == NULL)
                continue;
            size_t j = idmap_slot(&g, m->keys[i]);
            g.keys[j] = m->keys[i];
            g.vals[j] = m->vals[i];
            g.n++;
        }
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    size_t i = idmap_slot(m, key);
    char *v = strdup(val);
    if (v == NULL)
        return ODSYNC_NOMEM;
    if (m->keys[i] == NULL) {
        char *k = strdup(key);
        if (k == NULL) {
            free(v);
            return ODSYNC_NOMEM;
        }
        m->keys[i] = k;
        m->n++;
    } else {
        free(m->vals[i]);
    }
    m->vals[i] = v;
    return ODSYNC_OK;
}

static void idmap_free(struct idmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        free(m->vals[i]);
    }
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- results ------------------------------------------------------------------------------ */

/* Report item it (not yet reported) with o, and start a pause when o says the instance waits. */
static void report(struct hubspot *h, odsync_batch *batch, struct item *items, size_t idx,
                   const struct outcome *o, const char *remote_id, struct pause *pause)
{
    if (items[idx].done)
        return;
    items[idx].done = 1;
    h->host->result_set(batch, idx, o->cls, o->cls == ODSYNC_RATE_LIMITED ? o->retry_after_ms : -1,
                        remote_id, o->cls == ODSYNC_OK || o->detail[0] == '\0' ? NULL : o->detail);
    h->host->counter_add(h->ctx, o->cls == ODSYNC_OK ? "items_ok" : "items_failed", 1);
    if (pause != NULL && pause->o.cls == ODSYNC_OK &&
        (o->cls == ODSYNC_RATE_LIMITED || o->cls == ODSYNC_AUTH))
        pause->o = *o;
}

static void report_ok(struct hubspot *h, odsync_batch *batch, struct item *items, size_t idx,
                      const char *remote_id)
{
    struct outcome o = {.cls = ODSYNC_OK, .retry_after_ms = -1};
    report(h, batch, items, idx, &o, remote_id, NULL);
}

/* Report item idx, left unsent because of the pause. */
static void report_paused(struct hubspot *h, odsync_batch *batch, struct item *items, size_t idx,
                          struct pause *pause)
{
    struct outcome o = pause->o;
    if (items[idx].done)
        return;
    if (!pause->logged) {
        h->host->log(h->ctx, ODSYNC_LOG_WARN, "%s (%s): holding back the rest of this batch",
                     pause->o.detail, odsync_status_name(pause->o.cls));
        pause->logged = 1;
    }
    snprintf(o.detail, sizeof(o.detail), "not sent: %.200s", pause->o.detail);
    report(h, batch, items, idx, &o, NULL, NULL);
}

/* ---- HTTP and rate limits ------------------------------------------------------------------ */

/* Wall ms of the daily reset after now: the account's next midnight plus a grace. */
static int64_t daily_reset_ms(const struct hubspot *h, int64_t now)
{
    int64_t mid = hubspot_tz_next_midnight(&h->cfg.zone, now / 1000);
    return mid * 1000 + DAILY_GRACE_MS;
}

/* The daily quota is gone: no request until the account's next midnight. Returns the wait. */
static int64_t daily_exhausted(struct hubspot *h)
{
    int64_t now = wall_ms(), until = daily_reset_ms(h, now);
    if (h->daily_last_until_ms > 0 && now >= h->daily_last_until_ms &&
        now < h->daily_last_until_ms + DAILY_EARLY_MS) {
        /* Still exhausted right after the reset we computed: the zone is probably wrong. */
        h->host->log(h->ctx, ODSYNC_LOG_WARN,
                     "daily limit still exhausted after the reset expected at midnight in %s; "
                     "check account_timezone (looking again in an hour)",
                     h->cfg.zone_name);
        until = now + DAILY_PROBE_MS;
    }
    if (until > h->daily_until_ms)
        h->daily_until_ms = until;
    h->daily_last_until_ms = h->daily_until_ms;
    return h->daily_until_ms - now;
}

/* Take the X-HubSpot-RateLimit-* headers of resp into h. */
static void read_limits(struct hubspot *h, const struct odsync_http_response *resp)
{
    int64_t rem = header_int(h, resp, "X-HubSpot-RateLimit-Remaining");
    int64_t iv = header_int(h, resp, "X-HubSpot-RateLimit-Interval-Milliseconds");
    int64_t max = header_int(h, resp, "X-HubSpot-RateLimit-Max");
    int64_t drem = header_int(h, resp, "X-HubSpot-RateLimit-Daily-Remaining");
    int64_t dmax = header_int(h, resp, "X-HubSpot-RateLimit-Daily");
    if (rem >= 0) {
        h->rl_remaining = rem;
        h->rl_seen_mono = mono_ms();
    }
    if (iv > 0)
        h->rl_interval_ms = iv;
    if (max >= 0)
        h->rl_max = max;
    if (dmax >= 0)
        h->daily_max = dmax;
    if (drem >= 0) {
        h->daily_remaining = drem;
        if (drem == 0)
            daily_exhausted(h);
    }
    h->host->gauge_set(h->ctx, "ratelimit_remaining", (double)h->rl_remaining);
    h->host->gauge_set(h->ctx, "ratelimit_daily_remaining", (double)h->daily_remaining);
}

/* Before a request: wait out the ten-secondly budget when it is spent (up to
 * pace_max_wait_ms), or refuse. Returns ODSYNC_OK to go ahead, or fills o (RATE_LIMITED). */
static int pace(struct hubspot *h, struct outcome *o)
{
    int64_t now_wall = wall_ms();
    if (h->daily_until_ms > now_wall) {
        outcome_set(o, ODSYNC_RATE_LIMITED, 0, h->daily_until_ms - now_wall,
                    "daily limit exhausted: paused until midnight in %s", h->cfg.zone_name);
        return ODSYNC_RATE_LIMITED;
    }
    if (h->rl_remaining != 0)
        return ODSYNC_OK;
    int64_t now = mono_ms(), iv = h->rl_interval_ms;
    if (now - h->rl_seen_mono >= iv) {
        h->rl_remaining = -1; /* the whole window rolled over since */
        return ODSYNC_OK;
    }
    /* A slot frees when the oldest request in the window leaves it. */
    int64_t oldest = -1;
    for (size_t i = 0; i < h->ring_n; i++) {
        int64_t t = h->ring[i];
        if (t > now - iv && (oldest < 0 || t < oldest))
            oldest = t;
    }
    int64_t wait = (oldest >= 0 ? oldest : h->rl_seen_mono) + iv + PACE_MARGIN_MS - now;
    if (wait <= 0) {
        h->rl_remaining = -1;
        return ODSYNC_OK;
    }
    if (wait > h->cfg.pace_max_wait_ms) {
        outcome_set(o, ODSYNC_RATE_LIMITED, 0, wait,
                    "ten-secondly budget exhausted (X-HubSpot-RateLimit-Remaining 0)");
        return ODSYNC_RATE_LIMITED;
    }
    h->host->log(h->ctx, ODSYNC_LOG_DEBUG, "pacing: waiting %lld ms for the rolling window",
                 (long long)wait);
    h->host->counter_add(h->ctx, "pace_waits", 1);
    sleep_ms(wait);
    h->rl_remaining = -1;
    return ODSYNC_OK;
}

/* The outcome of a 429: DAILY waits for the account's midnight, the rolling policies for
 * Retry-After (when sent) or the interval. body may be NULL. */
static void rate_limited(struct hubspot *h, const struct odsync_http_response *resp,
                         const cJSON *body, struct outcome *o)
{
    char b[72];
    const char *policy = token_or(str_of(body, "policyName"), b, sizeof(b));
    if (policy != NULL && strcmp(policy, "DAILY") == 0) {
        int64_t wait = daily_exhausted(h);
        outcome_set(o, ODSYNC_RATE_LIMITED, 429, wait,
                    "HTTP 429 DAILY: daily limit reached, paused until midnight in %s",
                    h->cfg.zone_name);
        return;
    }
    int64_t wait = resp->retry_after_ms;
    if (wait < 0) {
        int64_t iv = header_int(h, resp, "X-HubSpot-RateLimit-Interval-Milliseconds");
        wait = iv > 0 ? iv : h->rl_interval_ms;
    }
    outcome_set(o, ODSYNC_RATE_LIMITED, 429, wait, "HTTP 429 %s",
                policy != NULL ? policy : "rate limited");
}

/*
 * One request: method on base_url + path with body (may be NULL). Paces first. On success
 * (2xx with a JSON body) returns ODSYNC_OK and *json is the parsed body (caller frees with
 * cJSON_Delete) and o->status the HTTP status. Otherwise returns the class and fills o (the
 * status is kept in o->status, e.g. 404 for a missing property); *json is NULL.
 */
static int call(struct hubspot *h, const char *method, const char *path, const char *body,
                cJSON **json, struct outcome *o)
{
    char url[1024];
    struct odsync_http_response *resp = NULL;
    cJSON *parsed = NULL;
    int rc;
    const struct odsync_http_header headers[] = {
        {"Authorization", h->authorization},
        {"Accept", "application/json"},
        {"Content-Type", "application/json"}, /* only with a body */
    };

    *json = NULL;
    memset(o, 0, sizeof(*o));
    o->retry_after_ms = -1;
    if (pace(h, o) != ODSYNC_OK)
        return o->cls;
    if ((size_t)snprintf(url, sizeof(url), "%s%s", h->cfg.base_url, path) >= sizeof(url)) {
        outcome_set(o, ODSYNC_PERMANENT, 0, -1, "request URL too long");
        return o->cls;
    }
    const struct odsync_http_request req = {
        .struct_size = sizeof(req),
        .method = method,
        .url = url,
        .headers = headers,
        .header_count = body != NULL ? 3 : 2,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = h->cfg.timeout_ms,
    };
    h->host->http(h->ctx, &req, &resp);
    h->host->counter_add(h->ctx, "requests", 1);
    h->ring[h->ring_next] = mono_ms();
    h->ring_next = (h->ring_next + 1) % RING;
    if (h->ring_n < RING)
        h->ring_n++;
    if (resp == NULL) {
        outcome_set(o, ODSYNC_NOMEM, 0, -1, "out of memory");
        rc = o->cls;
        goto cleanup;
    }
    h->last_status = resp->status;
    o->status = resp->status;
    if (resp->status == 0 || resp->error != NULL) {
        char ex[120];
        snprintf(ex, sizeof(ex), "%s", resp->error != NULL ? resp->error : "no response");
        for (char *c = ex; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        if (resp->status == 0)
            outcome_set(o, resp->result_class, 0, resp->retry_after_ms, "transport error: %s", ex);
        else
            outcome_set(o, resp->result_class, resp->status, resp->retry_after_ms, "HTTP %d: %s",
                        (int)resp->status, ex);
        rc = o->cls;
        goto cleanup;
    }
    read_limits(h, resp);
    parsed = cJSON_ParseWithLength(resp->body, resp->body_len);
    int cls = h->host->status_class(resp->status);
    if (resp->status == 429) {
        rate_limited(h, resp, parsed, o);
    } else if (cls == ODSYNC_OK) {
        if (!cJSON_IsObject(parsed)) {
            /* A 2xx that is not a JSON object (truncated, an HTML page) is not a success. */
            outcome_set(o, ODSYNC_RETRY, resp->status, -1,
                        "HTTP %d: response is not a JSON object (%zu bytes)", (int)resp->status,
                        resp->body_len);
        } else {
            o->cls = ODSYNC_OK;
            *json = parsed;
            parsed = NULL;
        }
    } else {
        char sum[DETAIL_MAX / 2];
        error_summary(cJSON_IsObject(parsed) ? parsed : NULL, sum, sizeof(sum));
        if (cls == ODSYNC_AUTH) {
            const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(parsed, "context");
            const cJSON *sc =
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ctx, "missingScopes"), 0);
            char b[72];
            const char *scope = token_or(cJSON_IsString(sc) ? sc->valuestring : NULL, b, sizeof(b));
            if (scope != NULL)
                outcome_set(o, cls, resp->status, -1, "HTTP %d %s: missing scope %s",
                            (int)resp->status, sum, scope);
            else
                outcome_set(o, cls, resp->status, -1, "HTTP %d %s", (int)resp->status, sum);
        } else if (cJSON_IsObject(parsed)) {
            outcome_set(o, cls, resp->status, -1, "HTTP %d %s", (int)resp->status, sum);
        } else {
            outcome_set(o, cls, resp->status, -1, "HTTP %d", (int)resp->status);
        }
    }
    rc = o->cls;
cleanup:
    h->last_class = o->cls;
    h->host->log(h->ctx, ODSYNC_LOG_DEBUG, "%s %s -> HTTP %d %s", method, path, o->status,
                 odsync_status_name(o->cls));
    cJSON_Delete(parsed);
    h->host->http_free(resp);
    return rc;
}

/* POST body (taken: deleted here) as JSON. As call(). */
static int post_json(struct hubspot *h, const char *path, cJSON *body, cJSON **json,
                     struct outcome *o)
{
    char *text = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
    int rc;
    cJSON_Delete(body);
    if (text == NULL) {
        *json = NULL;
        outcome_set(o, ODSYNC_NOMEM, 0, -1, "out of memory");
        return o->cls;
    }
    rc = call(h, "POST", path, text, json, o);
    cJSON_free(text);
    return rc;
}

/* ---- properties ------------------------------------------------------------------------------ */

/* The JSON of property definition p for POST /crm/v3/properties/{object}. */
static cJSON *property_body(const struct hubspot_prop *p)
{
    cJSON *b = cJSON_CreateObject();
    if (b == NULL || !cJSON_AddStringToObject(b, "name", p->name) ||
        !cJSON_AddStringToObject(b, "label", p->label) ||
        !cJSON_AddStringToObject(b, "type", p->type) ||
        !cJSON_AddStringToObject(b, "fieldType", p->field_type) ||
        !cJSON_AddStringToObject(b, "groupName", p->group) ||
        !cJSON_AddBoolToObject(b, "hasUniqueValue", p->unique) ||
        !cJSON_AddStringToObject(b, "description", "written by odsync"))
        goto fail;
    if (strcmp(p->type, "bool") == 0) {
        static const char *const v[2][2] = {{"Yes", "true"}, {"No", "false"}};
        cJSON *opts = cJSON_AddArrayToObject(b, "options");
        for (int i = 0; opts != NULL && i < 2; i++) {
            cJSON *o = cJSON_CreateObject();
            if (o == NULL) {
                opts = NULL;
                break;
            }
            cJSON_AddItemToArray(opts, o);
            if (!cJSON_AddStringToObject(o, "label", v[i][0]) ||
                !cJSON_AddStringToObject(o, "value", v[i][1]) ||
                !cJSON_AddNumberToObject(o, "displayOrder", i))
                opts = NULL;
        }
        if (opts == NULL)
            goto fail;
    }
    return b;
fail:
    cJSON_Delete(b);
    return NULL;
}

/* Create the missing custom properties (once per instance). Returns ODSYNC_OK, or the class
 * of the failure with o filled. */
static int ensure_properties(struct hubspot *h, struct outcome *o)
{
    char path[256];
    int created = 0;
    for (size_t i = 0; i < h->cfg.n_props; i++) {
        const struct hubspot_prop *p = &h->cfg.props[i];
        cJSON *json = NULL;
        snprintf(path, sizeof(path), "/crm/v3/properties/%s/%s", p->object, p->name);
        int rc = call(h, "GET", path, NULL, &json, o);
        if (rc == ODSYNC_OK && p->unique &&
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "hasUniqueValue"))) {
            cJSON_Delete(json);
            outcome_set(o, ODSYNC_CONFIG, 200, -1,
                        "property %s/%s exists without hasUniqueValue: it cannot be the "
                        "idProperty",
                        p->object, p->name);
            return o->cls;
        }
        cJSON_Delete(json);
        if (rc == ODSYNC_OK)
            continue;
        if (o->status != 404)
            return rc;
        snprintf(path, sizeof(path), "/crm/v3/properties/%s", p->object);
        rc = post_json(h, path, property_body(p), &json, o);
        cJSON_Delete(json);
        if (rc != ODSYNC_OK && o->status != 409) {
            char prefix[DETAIL_MAX];
            snprintf(prefix, sizeof(prefix), "%s", o->detail);
            snprintf(o->detail, sizeof(o->detail), "creating property %s/%s: %.180s", p->object,
                     p->name, prefix);
            return rc;
        }
        created++;
    }
    h->props_ready = 1;
    h->host->log(h->ctx, ODSYNC_LOG_INFO, "custom properties checked: %zu, created %d",
                 h->cfg.n_props, created);
    return ODSYNC_OK;
}

/* ---- contacts ------------------------------------------------------------------------------- */

/* Add property name = the record's string member field ("" when null or absent). */
static int add_str(cJSON *props, const char *name, const cJSON *rec, const char *field)
{
    const char *v = str_of(rec, field);
    return cJSON_AddStringToObject(props, name, v != NULL ? v : "") != NULL ? 0 : -1;
}

/* Add a boolean member as "true" / "false" ("" when null or absent). */
static int add_bool(cJSON *props, const char *name, const cJSON *rec, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    const char *s = cJSON_IsTrue(v) ? "true" : cJSON_IsFalse(v) ? "false" : "";
    return cJSON_AddStringToObject(props, name, s) != NULL ? 0 : -1;
}

/* 1 when s is YYYY-MM-DD. */
static int is_date(const char *s)
{
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return s[10] == '\0';
}

/* Add a date member as HubSpot's date property wants it: "YYYY-MM-DD" (anything else, or
 * null, clears it with ""). */
static int add_date(cJSON *props, const char *name, const cJSON *rec, const char *field)
{
    const char *v = str_of(rec, field);
    return cJSON_AddStringToObject(props, name, v != NULL && is_date(v) ? v : "") != NULL ? 0 : -1;
}

/* Whether contact key gets email as HubSpot's own (unique) email: 1 when no other contact
 * of this instance was given it first. Families, and unrelated patients alike, share
 * addresses; HubSpot refuses a second contact with one, so only the first holder gets it and
 * every contact carries it in odsync_email. Remembered per instance (a restart forgets: a
 * conflict then is resent once without the email). */
static int email_owner(struct hubspot *h, const char *key, const char *email)
{
    char lower[256];
    const char *owner;
    size_t i;
    if (email == NULL || key == NULL || strlen(email) >= sizeof(lower))
        return 0;
    for (i = 0; email[i] != '\0'; i++)
        lower[i] = (char)tolower((unsigned char)email[i]);
    lower[i] = '\0';
    owner = idmap_get(&h->emails, lower);
    if (owner != NULL)
        return strcmp(owner, key) == 0;
    return idmap_put(&h->emails, lower, key) == ODSYNC_OK;
}

/* The HubSpot properties of a contact record (mapping in README.md). NULL on NOMEM. */
static cJSON *contact_properties(struct hubspot *h, const struct odsync_record *rec, const cJSON *j)
{
    char num[32];
    cJSON *p = cJSON_CreateObject();
    const cJSON *patnum = cJSON_GetObjectItemCaseSensitive(j, "patnum");
    const char *phone = str_of(j, "phone_home"), *email = str_of(j, "email");
    int owns_email = email_owner(h, rec->key, email);
    if (phone == NULL)
        phone = str_of(j, "phone_work");
    if (cJSON_IsNumber(patnum) && patnum->valuedouble >= 0 && patnum->valuedouble < 9.0e15)
        snprintf(num, sizeof(num), "%lld", (long long)patnum->valuedouble);
    else
        num[0] = '\0';
    if (p == NULL || !cJSON_AddStringToObject(p, h->cfg.id_property, rec->key) ||
        add_str(p, "firstname", j, "first_name") || add_str(p, "lastname", j, "last_name") ||
        !cJSON_AddStringToObject(p, "email", owns_email && email != NULL ? email : "") ||
        !cJSON_AddStringToObject(p, "odsync_email", email != NULL ? email : "") ||
        add_str(p, "mobilephone", j, "phone_mobile") ||
        !cJSON_AddStringToObject(p, "phone", phone != NULL ? phone : "") ||
        !cJSON_AddStringToObject(p, "odsync_office", rec->office != NULL ? rec->office : "") ||
        !cJSON_AddStringToObject(p, "odsync_patnum", num) ||
        add_str(p, "odsync_preferred_name", j, "preferred_name") ||
        add_str(p, "odsync_patient_status", j, "patient_status") ||
        add_str(p, "odsync_guarantor_key", j, "guarantor_key") ||
        add_str(p, "odsync_sms_consent", j, "sms_consent") ||
        add_bool(p, "odsync_email_opt_out", j, "email_opt_out") ||
        add_str(p, "odsync_language", j, "language") ||
        add_date(p, "odsync_recall_due", j, "recall_due") ||
        add_str(p, "odsync_recall_stage", j, "recall_stage") ||
        add_date(p, "odsync_last_visit", j, "last_visit") ||
        add_bool(p, "odsync_reactivation", j, "reactivation")) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* The objectWriteTraceId of item idx: "<key>/v<version>" (unique per input of a request,
 * opaque: no patient data). */
static void trace_id(const struct odsync_record *rec, char *out, size_t len)
{
    snprintf(out, len, "%.120s/v%lld", rec->key, (long long)rec->version);
}

/* The index in idx[0..n) of the item whose trace id (or key, by_key) is s, or -1. */
static long find_item(const struct item *items, const size_t *idx, size_t n, const char *s,
                      int by_key)
{
    char t[TRACE_MAX];
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct odsync_record *rec = items[idx[i]].rec;
        if (by_key) {
            if (strcmp(rec->key, s) == 0)
                return (long)i;
            continue;
        }
        trace_id(rec, t, sizeof(t));
        if (strcmp(t, s) == 0)
            return (long)i;
    }
    return -1;
}

/* The class of a 207 error entry by its category. */
static int error_class(const cJSON *err)
{
    const char *cat = str_of(err, "category");
    if (cat == NULL || strcmp(cat, "VALIDATION_ERROR") == 0 || strcmp(cat, "CONFLICT") == 0 ||
        strcmp(cat, "OBJECT_ALREADY_EXISTS") == 0 || strcmp(cat, "OBJECT_NOT_FOUND") == 0 ||
        strcmp(cat, "PROPERTY_DOESNT_EXIST") == 0)
        return ODSYNC_PERMANENT;
    if (strcmp(cat, "RATE_LIMITS") == 0)
        return ODSYNC_RATE_LIMITED;
    return ODSYNC_RETRY;
}

/* Map the "errors" of a 200/207 batch answer onto items idx[0..n) by
 * context.objectWriteTraceId (or context.ids against remote ids / keys, ids_are_keys). */
static void report_errors(struct hubspot *h, odsync_batch *batch, struct item *items,
                          const size_t *idx, size_t n, const cJSON *answer, const char *what,
                          struct pause *pause, size_t *again, size_t *n_again)
{
    const cJSON *err;
    cJSON_ArrayForEach(err, cJSON_GetObjectItemCaseSensitive(answer, "errors"))
    {
        struct outcome o;
        char sum[DETAIL_MAX / 2];
        const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(err, "context");
        const cJSON *t;
        error_summary(err, sum, sizeof(sum));
        int cls = error_class(err);
        const char *cat = str_of(err, "category");
        int email_conflict = again != NULL && cat != NULL && strcmp(cat, "CONFLICT") == 0 &&
                             strstr(sum, " (email)") != NULL;
        outcome_set(&o, cls, 207, cls == ODSYNC_RATE_LIMITED ? h->rl_interval_ms : -1,
                    "HubSpot %s: %s", what, sum);
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(ctx, "objectWriteTraceId"))
        {
            long i = find_item(items, idx, n, cJSON_IsString(t) ? t->valuestring : NULL, 0);
            if (i >= 0 && email_conflict && !items[idx[i]].done) {
                /* Another contact holds this email (a family's shared address): sent again
                 * without it, so the patient still gets a contact. */
                again[(*n_again)++] = idx[i];
                items[idx[i]].done = 1; /* not reported: decided by the second request */
            } else if (i >= 0) {
                report(h, batch, items, idx[i], &o, NULL, pause);
            }
        }
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(ctx, "ids"))
        {
            if (!cJSON_IsString(t))
                continue;
            for (size_t i = 0; i < n; i++) {
                const char *rid = items[idx[i]].rec->remote_id;
                if ((rid != NULL && strcmp(rid, t->valuestring) == 0) ||
                    strcmp(items[idx[i]].rec->key, t->valuestring) == 0)
                    report(h, batch, items, idx[i], &o, NULL, pause);
            }
        }
    }
}

/* Items of idx[0..n) that got no result: RETRY. */
static void report_missing(struct hubspot *h, odsync_batch *batch, struct item *items,
                           const size_t *idx, size_t n, int status)
{
    struct outcome o;
    outcome_set(&o, ODSYNC_RETRY, status, -1, "HTTP %d: HubSpot returned no result for this input",
                status);
    for (size_t i = 0; i < n; i++)
        report(h, batch, items, idx[i], &o, NULL, NULL);
}

/* Give every item of idx[0..n) outcome o. */
static void report_all(struct hubspot *h, odsync_batch *batch, struct item *items,
                       const size_t *idx, size_t n, const struct outcome *o, struct pause *pause)
{
    for (size_t i = 0; i < n; i++)
        report(h, batch, items, idx[i], o, NULL, pause);
}

/* Upsert contacts idx[0..n) (n <= batch_size) in one request; without_email: leave the email
 * property empty (the second try of contacts whose email another contact holds). */
static void upsert_contacts_ex(struct hubspot *h, odsync_batch *batch, struct item *items,
                               const size_t *idx, size_t n, struct pause *pause, int without_email)
{
    size_t *again = without_email ? NULL : malloc((n + 1) * sizeof(*again));
    size_t n_again = 0;
    struct outcome o;
    char trace[TRACE_MAX];
    cJSON *answer = NULL, *body = cJSON_CreateObject();
    cJSON *inputs = body != NULL ? cJSON_AddArrayToObject(body, "inputs") : NULL;

    for (size_t i = 0; inputs != NULL && i < n; i++) {
        const struct odsync_record *rec = items[idx[i]].rec;
        cJSON *in = cJSON_CreateObject();
        cJSON *props = contact_properties(h, rec, items[idx[i]].json);
        trace_id(rec, trace, sizeof(trace));
        if (without_email && props != NULL)
            cJSON_ReplaceItemInObjectCaseSensitive(props, "email", cJSON_CreateString(""));
        if (in == NULL || props == NULL) {
            cJSON_Delete(in);
            cJSON_Delete(props);
            inputs = NULL;
            break;
        }
        cJSON_AddItemToArray(inputs, in);
        cJSON_AddItemToObject(in, "properties", props);
        if (!cJSON_AddStringToObject(in, "idProperty", h->cfg.id_property) ||
            !cJSON_AddStringToObject(in, "id", rec->key) ||
            !cJSON_AddStringToObject(in, "objectWriteTraceId", trace))
            inputs = NULL;
    }
    if (inputs == NULL) {
        cJSON_Delete(body);
        outcome_set(&o, ODSYNC_NOMEM, 0, -1, "out of memory");
        report_all(h, batch, items, idx, n, &o, pause);
        goto cleanup;
    }
    if (post_json(h, CONTACT_PATH "/batch/upsert", body, &answer, &o) != ODSYNC_OK) {
        report_all(h, batch, items, idx, n, &o, pause);
        goto cleanup;
    }
    const cJSON *res;
    cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(answer, "results"))
    {
        const char *id = str_of(res, "id");
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(res, "properties");
        long i = find_item(items, idx, n, str_of(props, h->cfg.id_property), 1);
        if (i < 0 || id == NULL || id[0] == '\0' || strlen(id) > 64)
            continue;
        if (idmap_put(&h->contacts, items[idx[i]].rec->key, id) != ODSYNC_OK)
            h->host->log(h->ctx, ODSYNC_LOG_WARN, "contact id cache: out of memory");
        report_ok(h, batch, items, idx[i], id);
    }
    report_errors(h, batch, items, idx, n, answer, "contact upsert", pause, again, &n_again);
    report_missing(h, batch, items, idx, n, o.status);
    if (n_again > 0) {
        h->host->counter_add(h->ctx, "email_conflicts", (int64_t)n_again);
        for (size_t i = 0; i < n_again; i++)
            items[again[i]].done = 0;
        if (pause->o.cls != ODSYNC_OK) {
            for (size_t i = 0; i < n_again; i++)
                report_paused(h, batch, items, again[i], pause);
        } else {
            upsert_contacts_ex(h, batch, items, again, n_again, pause, 1);
        }
    }
cleanup:
    cJSON_Delete(answer);
    free(again);
}

static void upsert_contacts(struct hubspot *h, odsync_batch *batch, struct item *items,
                            const size_t *idx, size_t n, struct pause *pause)
{
    upsert_contacts_ex(h, batch, items, idx, n, pause, 0);
}

/* ---- tasks -------------------------------------------------------------------------------- */

/* HubSpot's value for a task field: status, priority, type. */
static const char *task_enum(const cJSON *j, const char *field)
{
    static const char *const map[][3] = {
        {"status", "open", "NOT_STARTED"}, {"status", "completed", "COMPLETED"},
        {"priority", "low", "LOW"},        {"priority", "medium", "MEDIUM"},
        {"priority", "high", "HIGH"},      {"type", "call", "CALL"},
        {"type", "email", "EMAIL"},        {"type", "todo", "TODO"},
    };
    const char *v = str_of(j, field);
    for (size_t i = 0; v != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], field) == 0 && strcmp(map[i][1], v) == 0)
            return map[i][2];
    if (strcmp(field, "status") == 0)
        return "NOT_STARTED";
    return strcmp(field, "priority") == 0 ? "MEDIUM" : "TODO";
}

/* 1 when s is a UTC RFC 3339 instant "YYYY-MM-DDTHH:MM:SS[.fff]Z". */
static int is_instant(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; i < sizeof(pat) - 1; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return 0;
    }
    s += sizeof(pat) - 1;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return s[0] == 'Z' && s[1] == '\0';
}

/* The HubSpot properties of a task record. NULL on NOMEM. */
static cJSON *task_properties(const struct hubspot *h, const struct odsync_record *rec,
                              const cJSON *j, int create)
{
    char now[32];
    const char *due = str_of(j, "due");
    if (due == NULL || !is_instant(due)) {
        /* hs_timestamp is required: a task without a due instant is due now. */
        time_t t = (time_t)(wall_ms() / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
        due = now;
    }
    cJSON *p = cJSON_CreateObject();
    if (p == NULL || !cJSON_AddStringToObject(p, "hs_timestamp", due) ||
        add_str(p, "hs_task_subject", j, "subject") || add_str(p, "hs_task_body", j, "body") ||
        !cJSON_AddStringToObject(p, "hs_task_status", task_enum(j, "status")) ||
        !cJSON_AddStringToObject(p, "hs_task_priority", task_enum(j, "priority")) ||
        !cJSON_AddStringToObject(p, "hs_task_type", task_enum(j, "type")) ||
        !cJSON_AddStringToObject(p, h->cfg.id_property, rec->key) ||
        (create && h->cfg.owner_id != NULL &&
         !cJSON_AddStringToObject(p, "hubspot_owner_id", h->cfg.owner_id))) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* Look up the HubSpot ids of the contacts of tasks idx[0..n) that the cache does not know,
 * with one batch read by idProperty per 100 keys. Tasks whose lookup request failed get its
 * class; a contact HubSpot does not have is left unknown. */
static void resolve_contacts(struct hubspot *h, odsync_batch *batch, struct item *items,
                             const size_t *idx, size_t n, struct pause *pause)
{
    const char **keys = calloc(n + 1, sizeof(*keys));
    size_t nk = 0;
    if (keys == NULL)
        return; /* the tasks then wait as "contact unknown" and are retried */
    for (size_t i = 0; i < n; i++) {
        const char *ck = str_of(items[idx[i]].json, "contact_key");
        int dup = 0;
        if (ck == NULL || idmap_get(&h->contacts, ck) != NULL)
            continue;
        for (size_t k = 0; k < nk && !dup; k++)
            dup = strcmp(keys[k], ck) == 0;
        if (!dup)
            keys[nk++] = ck;
    }
    for (size_t start = 0; start < nk && pause->o.cls == ODSYNC_OK; start += HUBSPOT_MAX_BATCH) {
        size_t len = nk - start < HUBSPOT_MAX_BATCH ? nk - start : HUBSPOT_MAX_BATCH;
        struct outcome o;
        cJSON *answer = NULL, *body = cJSON_CreateObject();
        cJSON *inputs = NULL, *props = NULL;
        if (body == NULL || !cJSON_AddStringToObject(body, "idProperty", h->cfg.id_property) ||
            (props = cJSON_AddArrayToObject(body, "properties")) == NULL ||
            (inputs = cJSON_AddArrayToObject(body, "inputs")) == NULL) {
            cJSON_Delete(body);
            break;
        }
        cJSON_AddItemToArray(props, cJSON_CreateString(h->cfg.id_property));
        for (size_t k = 0; k < len; k++) {
            cJSON *in = cJSON_CreateObject();
            cJSON_AddItemToArray(inputs, in);
            if (in == NULL || !cJSON_AddStringToObject(in, "id", keys[start + k]))
                break;
        }
        if (post_json(h, CONTACT_PATH "/batch/read", body, &answer, &o) != ODSYNC_OK) {
            /* The tasks that needed these contacts share the failure. */
            char prefix[DETAIL_MAX];
            snprintf(prefix, sizeof(prefix), "%s", o.detail);
            snprintf(o.detail, sizeof(o.detail), "contact lookup: %.200s", prefix);
            for (size_t i = 0; i < n; i++) {
                const char *ck = str_of(items[idx[i]].json, "contact_key");
                for (size_t k = start; ck != NULL && k < start + len; k++)
                    if (strcmp(keys[k], ck) == 0)
                        report(h, batch, items, idx[i], &o, NULL, pause);
            }
            continue;
        }
        const cJSON *res;
        cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(answer, "results"))
        {
            const char *id = str_of(res, "id");
            const char *key =
                str_of(cJSON_GetObjectItemCaseSensitive(res, "properties"), h->cfg.id_property);
            if (id != NULL && key != NULL && strlen(id) <= 64)
                idmap_put(&h->contacts, key, id);
        }
        cJSON_Delete(answer);
    }
    free(keys);
}

/* Create tasks idx[0..n) (no remote id yet) in one batch create, each associated with its
 * contact (type 204). The caller made sure every contact id is known. */
static void create_tasks(struct hubspot *h, odsync_batch *batch, struct item *items,
                         const size_t *idx, size_t n, struct pause *pause)
{
    struct outcome o;
    char trace[TRACE_MAX];
    cJSON *answer = NULL, *body = cJSON_CreateObject();
    cJSON *inputs = body != NULL ? cJSON_AddArrayToObject(body, "inputs") : NULL;

    for (size_t i = 0; inputs != NULL && i < n; i++) {
        const struct odsync_record *rec = items[idx[i]].rec;
        const char *cid = idmap_get(&h->contacts, str_of(items[idx[i]].json, "contact_key"));
        cJSON *in = cJSON_CreateObject();
        cJSON *props = task_properties(h, rec, items[idx[i]].json, 1);
        cJSON *assocs = NULL, *a = NULL, *to = NULL, *types = NULL, *t = NULL;
        trace_id(rec, trace, sizeof(trace));
        if (in == NULL || props == NULL) {
            cJSON_Delete(in);
            cJSON_Delete(props);
            inputs = NULL;
            break;
        }
        cJSON_AddItemToArray(inputs, in);
        cJSON_AddItemToObject(in, "properties", props);
        if (!cJSON_AddStringToObject(in, "objectWriteTraceId", trace) ||
            (assocs = cJSON_AddArrayToObject(in, "associations")) == NULL ||
            (a = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(assocs, a) ||
            (to = cJSON_AddObjectToObject(a, "to")) == NULL ||
            !cJSON_AddStringToObject(to, "id", cid != NULL ? cid : "") ||
            (types = cJSON_AddArrayToObject(a, "types")) == NULL ||
            (t = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(types, t) ||
            !cJSON_AddStringToObject(t, "associationCategory", "HUBSPOT_DEFINED") ||
            !cJSON_AddNumberToObject(t, "associationTypeId", ASSOC_TASK_CONTACT))
            inputs = NULL;
    }
    if (inputs == NULL) {
        cJSON_Delete(body);
        outcome_set(&o, ODSYNC_NOMEM, 0, -1, "out of memory");
        report_all(h, batch, items, idx, n, &o, pause);
        return;
    }
    if (post_json(h, TASK_PATH "/batch/create", body, &answer, &o) != ODSYNC_OK) {
        report_all(h, batch, items, idx, n, &o, pause);
        return;
    }
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(answer, "results"), *res;
    int by_position = cJSON_GetArraySize(results) == (int)n &&
                      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(answer, "errors")) == 0;
    long pos = 0;
    cJSON_ArrayForEach(res, results)
    {
        const char *id = str_of(res, "id");
        const char *key =
            str_of(cJSON_GetObjectItemCaseSensitive(res, "properties"), h->cfg.id_property);
        long i = key != NULL ? find_item(items, idx, n, key, 1) : by_position ? pos : -1;
        pos++;
        if (i >= 0 && id != NULL && id[0] != '\0' && strlen(id) <= 64)
            report_ok(h, batch, items, idx[i], id);
    }
    report_errors(h, batch, items, idx, n, answer, "task create", pause, NULL, NULL);
    report_missing(h, batch, items, idx, n, o.status);
    cJSON_Delete(answer);
}

/* Update tasks idx[0..n) in place, by their remote ids, in one batch update. */
static void update_tasks(struct hubspot *h, odsync_batch *batch, struct item *items,
                         const size_t *idx, size_t n, struct pause *pause)
{
    struct outcome o;
    char trace[TRACE_MAX];
    cJSON *answer = NULL, *body = cJSON_CreateObject();
    cJSON *inputs = body != NULL ? cJSON_AddArrayToObject(body, "inputs") : NULL;

    for (size_t i = 0; inputs != NULL && i < n; i++) {
        const struct odsync_record *rec = items[idx[i]].rec;
        cJSON *in = cJSON_CreateObject();
        cJSON *props = task_properties(h, rec, items[idx[i]].json, 0);
        trace_id(rec, trace, sizeof(trace));
        if (in == NULL || props == NULL) {
            cJSON_Delete(in);
            cJSON_Delete(props);
            inputs = NULL;
            break;
        }
        cJSON_AddItemToArray(inputs, in);
        cJSON_AddItemToObject(in, "properties", props);
        if (!cJSON_AddStringToObject(in, "id", rec->remote_id) ||
            !cJSON_AddStringToObject(in, "objectWriteTraceId", trace))
            inputs = NULL;
    }
    if (inputs == NULL) {
        cJSON_Delete(body);
        outcome_set(&o, ODSYNC_NOMEM, 0, -1, "out of memory");
        report_all(h, batch, items, idx, n, &o, pause);
        return;
    }
    if (post_json(h, TASK_PATH "/batch/update", body, &answer, &o) != ODSYNC_OK) {
        report_all(h, batch, items, idx, n, &o, pause);
        return;
    }
    const cJSON *res;
    cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(answer, "results"))
    {
        const char *id = str_of(res, "id");
        for (size_t i = 0; id != NULL && i < n; i++)
            if (strcmp(items[idx[i]].rec->remote_id, id) == 0)
                report_ok(h, batch, items, idx[i], id);
    }
    report_errors(h, batch, items, idx, n, answer, "task update", pause, NULL, NULL);
    report_missing(h, batch, items, idx, n, o.status);
    cJSON_Delete(answer);
}

/* 1 when rec's remote id can be a HubSpot object id (digits). */
static int numeric_id(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Send idx[0..n) with fn, batch_size at a time, or report them paused. */
static void in_chunks(struct hubspot *h, odsync_batch *batch, struct item *items, const size_t *idx,
                      size_t n, struct pause *pause,
                      void (*fn)(struct hubspot *, odsync_batch *, struct item *, const size_t *,
                                 size_t, struct pause *))
{
    for (size_t start = 0; start < n; start += h->cfg.batch_size) {
        size_t len = n - start < h->cfg.batch_size ? n - start : h->cfg.batch_size;
        if (pause->o.cls != ODSYNC_OK) {
            for (size_t i = 0; i < len; i++)
                report_paused(h, batch, items, idx[start + i], pause);
            continue;
        }
        fn(h, batch, items, idx + start, len, pause);
    }
}

/* Deliver the task items among items[0..count). */
static void send_tasks(struct hubspot *h, odsync_batch *batch, struct item *items, size_t count,
                       size_t *idx, struct pause *pause)
{
    size_t n = 0;
    struct outcome o;

    /* Updates in place: the remote id from the first delivery. */
    for (size_t i = 0; i < count; i++)
        if (!items[i].done && items[i].rec->kind == ODSYNC_KIND_TASK &&
            numeric_id(items[i].rec->remote_id))
            idx[n++] = i;
    in_chunks(h, batch, items, idx, n, pause, update_tasks);

    /* Creates: each needs its contact's id. */
    n = 0;
    for (size_t i = 0; i < count; i++)
        if (!items[i].done && items[i].rec->kind == ODSYNC_KIND_TASK)
            idx[n++] = i;
    if (n == 0)
        return;
    if (pause->o.cls == ODSYNC_OK)
        resolve_contacts(h, batch, items, idx, n, pause);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ck = str_of(items[idx[i]].json, "contact_key");
        if (items[idx[i]].done)
            continue;
        if (pause->o.cls != ODSYNC_OK) {
            report_paused(h, batch, items, idx[i], pause);
        } else if (ck == NULL) {
            outcome_set(&o, ODSYNC_PERMANENT, 0, -1, "task record has no contact_key");
            report(h, batch, items, idx[i], &o, NULL, NULL);
        } else if (idmap_get(&h->contacts, ck) == NULL) {
            outcome_set(&o, ODSYNC_RETRY, 0, -1,
                        "contact %.120s is not in HubSpot yet: the task waits for it", ck);
            report(h, batch, items, idx[i], &o, NULL, NULL);
        } else {
            idx[m++] = idx[i];
        }
    }
    in_chunks(h, batch, items, idx, m, pause, create_tasks);
}

/* ---- callbacks -------------------------------------------------------------------------- */

static void hubspot_destroy(void *instance)
{
    struct hubspot *h = instance;
    if (h == NULL)
        return;
    wipe(h->authorization);
    free(h->authorization);
    idmap_free(&h->contacts);
    idmap_free(&h->emails);
    hubspot_config_free(&h->cfg);
    free(h);
}

static int hubspot_create(const struct odsync_host *host, odsync_host_ctx *ctx, void **instance)
{
    struct hubspot *h = NULL;
    int rc = ODSYNC_NOMEM;

    *instance = NULL;
    if (host == NULL || host->struct_size < ODSYNC_HOST_V1_0_SIZE)
        return ODSYNC_INTERNAL;
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    h->host = host;
    h->ctx = ctx;
    h->last_class = -1;
    h->rl_max = h->rl_remaining = h->daily_max = h->daily_remaining = -1;
    rc = hubspot_config_load(host, ctx, &h->cfg);
    if (rc != ODSYNC_OK)
        goto cleanup;
    h->rl_interval_ms = h->cfg.interval_default_ms;
    size_t n = strlen("Bearer ") + strlen(h->cfg.token) + 1;
    h->authorization = malloc(n);
    if (h->authorization == NULL) {
        rc = ODSYNC_NOMEM;
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    snprintf(h->authorization, n, "Bearer %s", h->cfg.token);
    host->log(ctx, ODSYNC_LOG_INFO,
              "base_url %s, id_property %s, batch_size %zu, create_properties %s, account "
              "time zone %s",
              h->cfg.base_url, h->cfg.id_property, h->cfg.batch_size,
              h->cfg.create_properties ? "true" : "false", h->cfg.zone_name);
    *instance = h;
    h = NULL;
    rc = ODSYNC_OK;
cleanup:
    hubspot_destroy(h);
    return rc;
}

static int hubspot_send_batch(void *instance, odsync_batch *batch,
                              const struct odsync_record *const *records, size_t count)
{
    struct hubspot *h = instance;
    struct pause pause = {.o = {.cls = ODSYNC_OK, .retry_after_ms = -1}};
    struct item *items = calloc(count + 1, sizeof(*items));
    size_t *idx = malloc((count + 1) * sizeof(*idx));
    struct outcome o;
    size_t n = 0;
    int rc = ODSYNC_NOMEM;

    if (items == NULL || idx == NULL)
        goto cleanup;
    for (size_t i = 0; i < count; i++) {
        const struct odsync_record *rec = records[i];
        items[i].rec = rec;
        if (rec == NULL || rec->json == NULL || rec->key == NULL || rec->key[0] == '\0') {
            outcome_set(&o, ODSYNC_PERMANENT, 0, -1, "record has no key or no JSON");
            report(h, batch, items, i, &o, NULL, NULL);
            continue;
        }
        if (rec->kind != ODSYNC_KIND_CONTACT && rec->kind != ODSYNC_KIND_TASK) {
            outcome_set(&o, ODSYNC_UNSUPPORTED, 0, -1, "record kind %d is not supported",
                        (int)rec->kind);
            report(h, batch, items, i, &o, NULL, NULL);
            continue;
        }
        items[i].json = cJSON_ParseWithLength(rec->json, rec->json_len);
        if (!cJSON_IsObject(items[i].json)) {
            outcome_set(&o, ODSYNC_PERMANENT, 0, -1, "record JSON is not an object");
            report(h, batch, items, i, &o, NULL, NULL);
        }
    }
    if (h->cfg.create_properties && !h->props_ready &&
        ensure_properties(h, &pause.o) != ODSYNC_OK) {
        if (pause.o.cls != ODSYNC_RATE_LIMITED && pause.o.cls != ODSYNC_AUTH) {
            /* Not a pause: every item shares the failure (tried again with them). */
            for (size_t i = 0; i < count; i++)
                report(h, batch, items, i, &pause.o, NULL, NULL);
            rc = ODSYNC_OK;
            goto cleanup;
        }
    }
    /* Contacts first: a task in the same batch may need its contact's new id. */
    for (size_t i = 0; i < count; i++)
        if (!items[i].done && items[i].rec->kind == ODSYNC_KIND_CONTACT)
            idx[n++] = i;
    in_chunks(h, batch, items, idx, n, &pause, upsert_contacts);
    send_tasks(h, batch, items, count, idx, &pause);
    for (size_t i = 0; i < count; i++)
        if (!items[i].done)
            report_paused(h, batch, items, i, &pause);
    rc = ODSYNC_OK;
cleanup:
    for (size_t i = 0; items != NULL && i < count; i++)
        cJSON_Delete(items[i].json);
    free(items);
    free(idx);
    return rc;
}

static int hubspot_health(void *instance, char *detail, size_t detail_len)
{
    const struct hubspot *h = instance;
    char limits[96] = "";
    if (h->rl_remaining >= 0 || h->daily_remaining >= 0)
        snprintf(limits, sizeof(limits), "; rate limit remaining %lld/%lld, daily %lld/%lld",
                 (long long)h->rl_remaining, (long long)h->rl_max, (long long)h->daily_remaining,
                 (long long)h->daily_max);
    if (h->daily_until_ms > wall_ms()) {
        snprintf(detail, detail_len, "daily limit reached: paused until midnight in %s%s",
                 h->cfg.zone_name, limits);
        return ODSYNC_RATE_LIMITED;
    }
    if (h->last_class < 0) {
        snprintf(detail, detail_len, "ok (no request yet)");
        return ODSYNC_OK;
    }
    if (h->last_class == ODSYNC_OK || h->last_class == ODSYNC_PERMANENT) {
        snprintf(detail, detail_len, "ok (last request: HTTP %d%s)", h->last_status, limits);
        return ODSYNC_OK;
    }
    snprintf(detail, detail_len, "last request: HTTP %d (%s)%s", h->last_status,
             odsync_status_name(h->last_class), limits);
    return h->last_class;
}

ODSYNC_SINK_DEFINE(.name = "hubspot", .version = "1.0.0",
                   .description = "HubSpot CRM: contacts by batch upsert on a unique odsync key "
                                  "property, recall tasks associated with their contacts",
                   .max_batch = HUBSPOT_MAX_BATCH,
                   .capabilities = ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS,
                   .config = hubspot_config_spec, .create = hubspot_create,
                   .send_batch = hubspot_send_batch, .health = hubspot_health,
                   .destroy = hubspot_destroy, .setup = HUBSPOT_SETUP_TEXT)
