/*
 * rest.c: the generic REST connector ("rest"). Request logic only; settings are in
 * rest_config.c. Wire format and result mapping are documented in README.md:
 *
 *   single:  PUT  {base_url}/{path}/{url-encoded key}   body = the record JSON
 *   batch:   POST {base_url}/{path}/batch               body = [record, ...]
 *
 * All HTTP goes through the host's services table. Record bodies carry patient data: they are
 * never logged and never copied into a result detail; details name the HTTP status and at
 * most a short excerpt of the remote's JSON error message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <odsync/sink.h>

#include "rest_config.h"

#define DETAIL_MAX    320 /* bytes of a result detail, NUL included */
#define EXCERPT_MAX   160 /* bytes of a remote error message quoted in a detail */
#define REMOTE_ID_MAX 256 /* longer "id" values are not taken as remote ids */

struct rest {
    const struct odsync_host *host; /* borrowed, valid until destroy */
    odsync_host_ctx *ctx;           /* borrowed, valid until destroy */
    struct rest_config cfg;         /* owned */
    char *authorization;            /* owned "Bearer <token>"; wiped on destroy */
    int last_status;                /* HTTP status of the last request (0: transport error) */
    int last_class;                 /* its result class; -1 before the first request */
};

/* Set when a response says the whole instance must wait (429 or 401/403): the rest of the
 * send_batch call is not sent and its items get the same class. */
struct rest_pause {
    int cls; /* ODSYNC_OK = not paused */
    int64_t retry_after_ms;
    int status;
    int logged; /* 1 once the hold-back was logged */
};

/* What one response means for the items it covers. */
struct outcome {
    int cls;
    int status; /* the HTTP status it came from; 0 when none */
    int64_t retry_after_ms;
    char *remote_id;         /* owned, or NULL */
    char detail[DETAIL_MAX]; /* "" = none */
};

/* ---- small helpers ------------------------------------------------------------------- */

/* Overwrite s (may hold a credential) before it is freed. */
static void wipe(char *s)
{
    if (s == NULL)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
}

/* Copy text into out as a bounded, printable excerpt: control characters become spaces,
 * a cut falls on a UTF-8 character boundary and is marked with "...". */
static void excerpt(const char *text, char *out, size_t out_len)
{
    size_t n = strlen(text), o = 0;
    int cut = 0;
    if (n > EXCERPT_MAX) {
        n = EXCERPT_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
        cut = 1;
    }
    for (size_t i = 0; i < n && o + 4 < out_len; i++) {
        unsigned char c = (unsigned char)text[i];
        out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    if (cut && o + 4 <= out_len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* The error message in a JSON error body, or NULL. Looks at "message", "error" (a string or
 * an object with "message"), "error_description", "detail", "title" and the first element
 * of "errors"; a top-level array is looked into through its first element. Borrowed from v. */
static const char *json_error_text(const cJSON *v, int depth)
{
    static const char *const fields[] = {"message", "error", "error_description",
                                         "detail",  "title", "errors"};
    if (v == NULL || depth > 3)
        return NULL;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0' ? v->valuestring : NULL;
    if (cJSON_IsArray(v))
        return json_error_text(cJSON_GetArrayItem(v, 0), depth + 1);
    if (!cJSON_IsObject(v))
        return NULL;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *t = json_error_text(cJSON_GetObjectItemCaseSensitive(v, fields[i]), depth + 1);
        if (t != NULL)
            return t;
    }
    return NULL;
}

/* 1 when d is a whole number that a double holds exactly (|d| < 2^53). */
static int whole_number(double d)
{
    return d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d;
}

/* The "id" of a JSON object as text (a string, or a number in decimal), or NULL when absent,
 * empty or longer than REMOTE_ID_MAX. Caller frees with free(). */
static char *json_id(const cJSON *obj)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    char num[40];
    if (cJSON_IsString(id)) {
        size_t n = strlen(id->valuestring);
        return n > 0 && n <= REMOTE_ID_MAX ? strdup(id->valuestring) : NULL;
    }
    if (!cJSON_IsNumber(id))
        return NULL;
    double d = id->valuedouble;
    if (whole_number(d))
        snprintf(num, sizeof(num), "%lld", (long long)d);
    else
        snprintf(num, sizeof(num), "%.17g", d);
    return strdup(num);
}

/* "HTTP 422: excerpt" (prefix, the status, the excerpt when there is one) into out. */
static void detail_status(char *out, size_t out_len, const char *prefix, int status,
                          const char *text)
{
    char ex[EXCERPT_MAX + 8];
    if (text == NULL) {
        snprintf(out, out_len, "%sHTTP %d", prefix, status);
        return;
    }
    excerpt(text, ex, sizeof(ex));
    snprintf(out, out_len, "%sHTTP %d: %s", prefix, status, ex);
}

/* What a response from host->http means. rc and resp are what http() gave. A JSON body is
 * parsed for "id" on success and for an error message on failure. */
static void outcome_of(struct rest *r, int rc, const struct odsync_http_response *resp,
                       struct outcome *o)
{
    char ex[EXCERPT_MAX + 8];
    memset(o, 0, sizeof(*o));
    o->retry_after_ms = -1;
    if (resp == NULL) {
        o->cls = rc == ODSYNC_NOMEM ? ODSYNC_NOMEM : ODSYNC_PERMANENT;
        snprintf(o->detail, sizeof(o->detail), "%s",
                 rc == ODSYNC_NOMEM ? "out of memory"
                                    : "the host refused the request (invalid URL or header)");
        r->last_status = 0;
        r->last_class = o->cls;
        return;
    }
    r->last_status = resp->status;
    o->status = resp->status;
    if (resp->status == 0 || resp->error != NULL) {
        /* No usable answer: transport failure, or an answer too large to hold. */
        o->cls = resp->result_class;
        o->retry_after_ms = resp->retry_after_ms;
        excerpt(resp->error != NULL ? resp->error : "no response", ex, sizeof(ex));
        if (resp->status == 0)
            snprintf(o->detail, sizeof(o->detail), "transport error: %s", ex);
        else
            snprintf(o->detail, sizeof(o->detail), "HTTP %d: %s", (int)resp->status, ex);
        r->last_class = o->cls;
        return;
    }
    o->cls = r->host->status_class(resp->status);
    r->last_class = o->cls;
    cJSON *json = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (o->cls == ODSYNC_OK) {
        o->remote_id = cJSON_IsObject(json) ? json_id(json) : NULL;
    } else {
        o->retry_after_ms = resp->retry_after_ms;
        detail_status(o->detail, sizeof(o->detail), "", resp->status, json_error_text(json, 0));
    }
    cJSON_Delete(json);
}

/* Report item idx, and pause the rest of the call when the class says the instance waits. */
static void report(struct rest *r, odsync_batch *batch, size_t idx, const struct outcome *o,
                   struct rest_pause *pause)
{
    r->host->result_set(batch, idx, o->cls, o->retry_after_ms, o->remote_id,
                        o->detail[0] != '\0' ? o->detail : NULL);
    r->host->counter_add(r->ctx, o->cls == ODSYNC_OK ? "items_ok" : "items_failed", 1);
    if ((o->cls == ODSYNC_RATE_LIMITED || o->cls == ODSYNC_AUTH) && pause->cls == ODSYNC_OK) {
        pause->cls = o->cls;
        pause->retry_after_ms = o->retry_after_ms;
        pause->status = o->status;
    }
}

/* Report an item left unsent because of pause. */
static void report_paused(struct rest *r, odsync_batch *batch, size_t idx, struct rest_pause *pause)
{
    char detail[96];
    if (!pause->logged) {
        r->host->log(r->ctx, ODSYNC_LOG_WARN, "HTTP %d (%s): holding back the rest of this batch",
                     pause->status, odsync_status_name(pause->cls));
        pause->logged = 1;
    }
    snprintf(detail, sizeof(detail), "not sent: HTTP %d earlier in this batch", pause->status);
    r->host->result_set(batch, idx, pause->cls, pause->retry_after_ms, NULL, detail);
    r->host->counter_add(r->ctx, "items_failed", 1);
}

/* Report a failure decided before any request. */
static void report_local(struct rest *r, odsync_batch *batch, size_t idx, int cls,
                         const char *detail)
{
    r->host->result_set(batch, idx, cls, -1, NULL, detail);
    r->host->counter_add(r->ctx, "items_failed", 1);
}

/* ---- records -------------------------------------------------------------------------- */

/* The entity record rec goes to, or -1 after reporting why it cannot be sent. */
static int classify(struct rest *r, odsync_batch *batch, size_t idx,
                    const struct odsync_record *rec)
{
    int e = -1;
    cJSON *json = NULL;

    if (rec == NULL || rec->json == NULL || rec->key == NULL || rec->key[0] == '\0') {
        report_local(r, batch, idx, ODSYNC_PERMANENT, "record has no key or no JSON");
        goto cleanup;
    }
    if (strcmp(rec->key, ".") == 0 || strcmp(rec->key, "..") == 0) {
        report_local(r, batch, idx, ODSYNC_PERMANENT, "record key is a dot segment");
        goto cleanup;
    }
    json = cJSON_ParseWithLength(rec->json, rec->json_len);
    if (!cJSON_IsObject(json)) {
        report_local(r, batch, idx, ODSYNC_PERMANENT, "record JSON is not an object");
        goto cleanup;
    }
    switch (rec->kind) {
    case ODSYNC_KIND_CONTACT:
        e = REST_CONTACT;
        break;
    case ODSYNC_KIND_TASK:
        e = REST_TASK;
        break;
    case ODSYNC_KIND_MESSAGE: {
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(json, "channel");
        if (cJSON_IsString(ch) && strcmp(ch->valuestring, "sms") == 0)
            e = REST_SMS;
        else if (cJSON_IsString(ch) && strcmp(ch->valuestring, "email") == 0)
            e = REST_EMAIL;
        else
            report_local(r, batch, idx, ODSYNC_UNSUPPORTED,
                         "message channel is neither \"sms\" nor \"email\"");
        break;
    }
    default: {
        char detail[64];
        snprintf(detail, sizeof(detail), "record kind %d is not supported", (int)rec->kind);
        report_local(r, batch, idx, ODSYNC_UNSUPPORTED, detail);
        break;
    }
    }
cleanup:
    cJSON_Delete(json);
    return e;
}

/* Send a JSON body with the connector's headers (Bearer token, JSON types, Idempotency-Key
 * idem) and count the request. *resp: caller frees with host->http_free. Returns the host's
 * result class. */
static int send_json(struct rest *r, const char *method, const char *url, const char *idem,
                     const char *body, size_t body_len, struct odsync_http_response **resp)
{
    const struct odsync_http_header headers[] = {
        {"Authorization", r->authorization},
        {"Content-Type", "application/json"},
        {"Accept", "application/json"},
        {"Idempotency-Key", idem},
    };
    const struct odsync_http_request req = {
        .struct_size = sizeof(req),
        .method = method,
        .url = url,
        .headers = headers,
        .header_count = sizeof(headers) / sizeof(headers[0]),
        .body = body,
        .body_len = body_len,
        .timeout_ms = r->cfg.timeout_ms,
    };
    int rc = r->host->http(r->ctx, &req, resp);
    r->host->counter_add(r->ctx, "requests", 1);
    return rc;
}

/* PUT one record: {base_url}/{path}/{url-encoded key}, Idempotency-Key "<key>:<version>". */
static void put_one(struct rest *r, odsync_batch *batch, size_t idx,
                    const struct odsync_record *rec, int e, struct rest_pause *pause)
{
    struct outcome o = {.cls = ODSYNC_NOMEM, .retry_after_ms = -1, .detail = "out of memory"};
    struct odsync_http_response *resp = NULL;
    int rc;
    size_t klen = strlen(rec->key);
    size_t enc_len = klen * 3 + 1;
    char *enc = malloc(enc_len);
    size_t url_len = strlen(r->cfg.base_url) + strlen(r->cfg.paths[e]) + enc_len + 2;
    char *url = malloc(url_len);
    size_t idem_len = klen + 24;
    char *idem = malloc(idem_len);

    if (enc == NULL || url == NULL || idem == NULL)
        goto cleanup;
    if (r->host->url_encode(rec->key, enc, enc_len) != ODSYNC_OK) {
        o.cls = ODSYNC_INTERNAL;
        snprintf(o.detail, sizeof(o.detail), "could not encode the record key");
        goto cleanup;
    }
    snprintf(url, url_len, "%s/%s/%s", r->cfg.base_url, r->cfg.paths[e], enc);
    snprintf(idem, idem_len, "%s:%lld", rec->key, (long long)rec->version);
    rc = send_json(r, "PUT", url, idem, rec->json, rec->json_len, &resp);
    outcome_of(r, rc, resp, &o);
    r->host->http_free(resp);
    r->host->log(r->ctx, ODSYNC_LOG_DEBUG, "PUT %s/%s -> HTTP %d %s", r->cfg.paths[e], rec->key,
                 r->last_status, odsync_status_name(o.cls));
cleanup:
    report(r, batch, idx, &o, pause);
    free(o.remote_id);
    free(enc);
    free(url);
    free(idem);
}

/* ---- batches -------------------------------------------------------------------------- */

/* 64-bit FNV-1a over s, continuing from h. */
static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* The batch's Idempotency-Key: "batch-" and a hash of every "key:version\n" in order. */
static void batch_idempotency_key(const struct odsync_record *const *records, const size_t *idx,
                                  size_t n, char *out, size_t out_len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    char v[32];
    for (size_t i = 0; i < n; i++) {
        const struct odsync_record *rec = records[idx[i]];
        int vn = snprintf(v, sizeof(v), ":%lld\n", (long long)rec->version);
        h = fnv1a(h, rec->key, strlen(rec->key));
        h = fnv1a(h, v, (size_t)vn);
    }
    snprintf(out, out_len, "batch-%016llx", (unsigned long long)h);
}

/* The class of one batch result item, or -1 when the item is not of the documented shape:
 * {"status": "ok"|"error"} or {"status": 100..599}. *http is the numeric status or 0. */
static int item_class(const struct rest *r, const cJSON *item, int *http)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(item, "status");
    *http = 0;
    if (!cJSON_IsObject(item))
        return -1;
    if (cJSON_IsString(st)) {
        if (strcmp(st->valuestring, "ok") == 0)
            return ODSYNC_OK;
        if (strcmp(st->valuestring, "error") == 0)
            return ODSYNC_PERMANENT;
        return -1;
    }
    if (!cJSON_IsNumber(st) || !whole_number(st->valuedouble) || st->valuedouble < 100 ||
        st->valuedouble > 599)
        return -1;
    *http = (int)st->valuedouble;
    return r->host->status_class(*http);
}

/* Map a 2xx batch answer onto items idx[0..n). Returns 0, or -1 when the body is not a JSON
 * array of n well-formed results (nothing reported then). */
static int report_batch_items(struct rest *r, odsync_batch *batch, const size_t *idx, size_t n,
                              const struct odsync_http_response *resp, struct rest_pause *pause)
{
    int rc = -1, http;
    cJSON *arr = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n)
        goto cleanup;
    for (const cJSON *item = arr->child; item != NULL; item = item->next)
        if (item_class(r, item, &http) < 0)
            goto cleanup;
    size_t i = 0;
    for (const cJSON *item = arr->child; item != NULL; item = item->next, i++) {
        struct outcome o = {.retry_after_ms = -1};
        o.cls = item_class(r, item, &http);
        if (o.cls == ODSYNC_OK) {
            o.remote_id = json_id(item);
        } else {
            const char *text = json_error_text(item, 0);
            if (o.cls == ODSYNC_RATE_LIMITED)
                o.retry_after_ms = resp->retry_after_ms;
            if (http != 0) {
                detail_status(o.detail, sizeof(o.detail), "item ", http, text);
            } else {
                char ex[EXCERPT_MAX + 8];
                excerpt(text != NULL ? text : "no message", ex, sizeof(ex));
                snprintf(o.detail, sizeof(o.detail), "item error: %s", ex);
            }
        }
        o.status = http != 0 ? http : resp->status;
        report(r, batch, idx[i], &o, pause);
        free(o.remote_id);
    }
    rc = 0;
cleanup:
    cJSON_Delete(arr);
    return rc;
}

/* POST records idx[0..n) (all of entity e) as one JSON array to {base_url}/{path}/batch. */
static void post_batch(struct rest *r, odsync_batch *batch,
                       const struct odsync_record *const *records, const size_t *idx, size_t n,
                       int e, struct rest_pause *pause)
{
    struct outcome o = {.cls = ODSYNC_NOMEM, .retry_after_ms = -1, .detail = "out of memory"};
    struct odsync_http_response *resp = NULL;
    int per_item = 0; /* 1 once every item got its own result */
    char idem[32];
    size_t body_len = 2 + (n - 1);
    for (size_t i = 0; i < n; i++)
        body_len += records[idx[i]]->json_len;
    char *body = malloc(body_len + 1);
    size_t url_len = strlen(r->cfg.base_url) + strlen(r->cfg.paths[e]) + 8;
    char *url = malloc(url_len);

    if (body == NULL || url == NULL)
        goto cleanup;
    size_t off = 0;
    body[off++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            body[off++] = ',';
        memcpy(body + off, records[idx[i]]->json, records[idx[i]]->json_len);
        off += records[idx[i]]->json_len;
    }
    body[off++] = ']';
    body[off] = '\0';
    snprintf(url, url_len, "%s/%s/batch", r->cfg.base_url, r->cfg.paths[e]);
    batch_idempotency_key(records, idx, n, idem, sizeof(idem));
    int rc = send_json(r, "POST", url, idem, body, body_len, &resp);
    r->host->log(r->ctx, ODSYNC_LOG_DEBUG, "POST %s/batch (%zu records) -> HTTP %d",
                 r->cfg.paths[e], n, resp != NULL ? (int)resp->status : 0);
    if (resp == NULL || resp->error != NULL || resp->status < 200 || resp->status > 299) {
        outcome_of(r, rc, resp, &o); /* the whole request failed: every item shares it */
        goto cleanup;
    }
    r->last_status = resp->status;
    r->last_class = ODSYNC_OK;
    if (report_batch_items(r, batch, idx, n, resp, pause) == 0) {
        per_item = 1;
        goto cleanup;
    }
    o.cls = ODSYNC_RETRY;
    o.status = resp->status;
    snprintf(o.detail, sizeof(o.detail), "batch response: expected a JSON array of %zu results", n);
    r->last_class = ODSYNC_RETRY;
cleanup:
    for (size_t i = 0; !per_item && i < n; i++)
        report(r, batch, idx[i], &o, pause);
    r->host->http_free(resp);
    free(o.remote_id);
    free(body);
    free(url);
}

/* ---- callbacks -------------------------------------------------------------------------- */

static void rest_destroy(void *instance)
{
    struct rest *r = instance;
    if (r == NULL)
        return;
    wipe(r->authorization);
    free(r->authorization);
    rest_config_free(&r->cfg);
    free(r);
}

static int rest_create(const struct odsync_host *host, odsync_host_ctx *ctx, void **instance)
{
    struct rest *r = NULL;
    int rc = ODSYNC_NOMEM;

    *instance = NULL;
    if (host == NULL || host->struct_size < ODSYNC_HOST_V1_0_SIZE)
        return ODSYNC_INTERNAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    r->host = host;
    r->ctx = ctx;
    r->last_class = -1;
    rc = rest_config_load(host, ctx, &r->cfg);
    if (rc != ODSYNC_OK)
        goto cleanup;
    size_t n = strlen("Bearer ") + strlen(r->cfg.token) + 1;
    r->authorization = malloc(n);
    if (r->authorization == NULL) {
        rc = ODSYNC_NOMEM;
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    snprintf(r->authorization, n, "Bearer %s", r->cfg.token);
    host->log(ctx, ODSYNC_LOG_INFO, "base_url %s, %s mode, paths %s %s %s %s", r->cfg.base_url,
              r->cfg.batch ? "batch" : "single", r->cfg.paths[REST_CONTACT],
              r->cfg.paths[REST_TASK], r->cfg.paths[REST_SMS], r->cfg.paths[REST_EMAIL]);
    *instance = r;
    r = NULL;
    rc = ODSYNC_OK;
cleanup:
    rest_destroy(r);
    return rc;
}

static int rest_send_batch(void *instance, odsync_batch *batch,
                           const struct odsync_record *const *records, size_t count)
{
    struct rest *r = instance;
    struct rest_pause pause = {.cls = ODSYNC_OK, .retry_after_ms = -1};
    int *ent = malloc(count * sizeof(*ent) + 1);
    size_t *idx = malloc(count * sizeof(*idx) + 1);
    int rc = ODSYNC_NOMEM;

    if (ent == NULL || idx == NULL)
        goto cleanup;
    for (size_t i = 0; i < count; i++)
        ent[i] = classify(r, batch, i, records[i]);
    if (!r->cfg.batch) {
        for (size_t i = 0; i < count; i++) {
            if (ent[i] < 0)
                continue;
            if (pause.cls != ODSYNC_OK)
                report_paused(r, batch, i, &pause);
            else
                put_one(r, batch, i, records[i], ent[i], &pause);
        }
    } else {
        /* One request per entity and per batch_size records, entities in enum order. */
        for (int e = 0; e < REST_ENTITY_COUNT; e++) {
            size_t n = 0;
            for (size_t i = 0; i < count; i++)
                if (ent[i] == e)
                    idx[n++] = i;
            for (size_t start = 0; start < n; start += r->cfg.batch_size) {
                size_t len = n - start < r->cfg.batch_size ? n - start : r->cfg.batch_size;
                if (pause.cls != ODSYNC_OK) {
                    for (size_t i = 0; i < len; i++)
                        report_paused(r, batch, idx[start + i], &pause);
                    continue;
                }
                post_batch(r, batch, records, idx + start, len, e, &pause);
            }
        }
    }
    rc = ODSYNC_OK;
cleanup:
    free(ent);
    free(idx);
    return rc;
}

static int rest_health(void *instance, char *detail, size_t detail_len)
{
    const struct rest *r = instance;
    if (r->last_class < 0) {
        snprintf(detail, detail_len, "ok (no request yet)");
        return ODSYNC_OK;
    }
    if (r->last_class == ODSYNC_OK || r->last_class == ODSYNC_PERMANENT) {
        /* PERMANENT is about one record, not about the instance. */
        snprintf(detail, detail_len, "ok (last request: HTTP %d)", r->last_status);
        return ODSYNC_OK;
    }
    if (r->last_status == 0)
        snprintf(detail, detail_len, "last request: no response (%s)",
                 odsync_status_name(r->last_class));
    else
        snprintf(detail, detail_len, "last request: HTTP %d (%s)", r->last_status,
                 odsync_status_name(r->last_class));
    return r->last_class;
}

ODSYNC_SINK_DEFINE(.name = "rest", .version = "1.0.0",
                   .description = "generic REST connector: PUT each record by key, or POST "
                                  "batches, with a bearer token",
                   .max_batch = REST_MAX_BATCH,
                   .capabilities = ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS | ODSYNC_CAP_SMS |
                                   ODSYNC_CAP_EMAIL,
                   .config = rest_config_spec, .create = rest_create, .send_batch = rest_send_batch,
                   .health = rest_health, .destroy = rest_destroy)
