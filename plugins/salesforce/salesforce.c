/*
 * salesforce.c: the Salesforce connector ("salesforce"). Request logic and per-item results;
 * settings in sf_config.c, OAuth in sf_auth.c, field mapping in sf_map.c. README.md documents
 * the wire format and every result mapping:
 *
 *   contacts  PATCH {instance_url}/services/data/vNN.N/composite/sobjects/Contact/{ExtIdField}
 *             {"allOrNone":false,"records":[...]}  (at most 200 records per request)
 *   tasks     the same on Task; WhoId is the Contact Id, remembered from contact upserts and
 *             looked up for unknown contacts with one SOQL query per batch:
 *             GET .../query?q=SELECT Id, {ExtIdField} FROM Contact WHERE {ExtIdField} IN (...)
 *
 * A 401 renews the token once and repeats the request; a second 401 is AUTH. 403
 * REQUEST_LIMIT_EXCEEDED is RATE_LIMITED for limit_pause_s. Sforce-Limit-Info is reported as
 * the gauges api_usage and api_limit. All HTTP goes through host->http. Record contents
 * (patient data) never reach a log line or a detail: details carry HTTP statuses, Salesforce
 * error codes and field names only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf.h"

#define QUERY_URL_MAX 12000 /* keep a SOQL GET well under Salesforce's 16 KB URI limit */

/* Set when a response says the whole instance must wait (rate limit or credentials): the
 * rest of the send_batch call is not sent and its items get the same class. */
struct sf_pause {
    int cls; /* ODSYNC_OK = not paused */
    int64_t retry_after_ms;
    char detail[SF_DETAIL_MAX];
};

/* What a request came to, before its body is looked at item by item. */
struct outcome {
    int cls; /* ODSYNC_OK: 2xx, body to be read */
    int64_t retry_after_ms;
    char detail[SF_DETAIL_MAX];
};

/* One record of the batch, parsed. */
struct item {
    int kind;            /* ODSYNC_KIND_*, or 0 once reported */
    cJSON *json;         /* owned parsed record */
    const char *contact; /* tasks: contact_key, borrowed from json */
};

/* ---- contact id table (open addressing, FNV-1a) ---------------------------------------- */

/* 64-bit FNV-1a of s. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* The slot of key (its entry, or the empty slot where it would go). ids_cap > 0. */
static struct sf_idslot *id_slot(const struct sf *s, const char *key)
{
    size_t i = (size_t)fnv1a(key) & (s->ids_cap - 1);
    while (s->ids[i].key != NULL && strcmp(s->ids[i].key, key) != 0)
        i = (i + 1) & (s->ids_cap - 1);
    return &s->ids[i];
}

/* The Contact Id remembered for key, or NULL. Borrowed until the table changes. */
static const char *id_get(const struct sf *s, const char *key)
{
    if (s->ids_cap == 0)
        return NULL;
    struct sf_idslot *slot = id_slot(s, key);
    return slot->key != NULL ? slot->id : NULL;
}

/* Remember key -> id (copied). Out of memory only loses the cache entry (a later query
 * finds it again). */
static void id_put(struct sf *s, const char *key, const char *id)
{
    if (strlen(id) > SF_ID_MAX)
        return;
    if ((s->ids_n + 1) * 10 >= s->ids_cap * 7) {
        size_t cap = s->ids_cap == 0 ? 1024 : s->ids_cap * 2;
        struct sf_idslot *old = s->ids, *grown = calloc(cap, sizeof(*grown));
        size_t old_cap = s->ids_cap;
        if (grown == NULL)
            return;
        s->ids = grown;
        s->ids_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].key != NULL)
                *id_slot(s, old[i].key) = old[i];
        free(old);
    }
    struct sf_idslot *slot = id_slot(s, key);
    if (slot->key == NULL) {
        slot->key = strdup(key);
        if (slot->key == NULL)
            return;
        s->ids_n++;
    }
    snprintf(slot->id, sizeof(slot->id), "%s", id);
}

/* Forget key (a Contact that Salesforce no longer has). Re-inserts the rest of its run. */
static void id_forget(struct sf *s, const char *key)
{
    if (s->ids_cap == 0)
        return;
    struct sf_idslot *slot = id_slot(s, key);
    if (slot->key == NULL)
        return;
    free(slot->key);
    slot->key = NULL;
    s->ids_n--;
    size_t i = (size_t)(slot - s->ids);
    for (i = (i + 1) & (s->ids_cap - 1); s->ids[i].key != NULL; i = (i + 1) & (s->ids_cap - 1)) {
        struct sf_idslot moved = s->ids[i];
        s->ids[i].key = NULL;
        *id_slot(s, moved.key) = moved;
    }
}

/* Free the table. */
static void id_free(struct sf *s)
{
    for (size_t i = 0; i < s->ids_cap; i++)
        free(s->ids[i].key);
    free(s->ids);
    s->ids = NULL;
    s->ids_cap = s->ids_n = 0;
}

/* ---- responses -------------------------------------------------------------------------- */

/* 1 when s is a Salesforce error code ([A-Z_], short) that may go into a detail. */
static int code_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'A' && s[n] <= 'Z') || s[n] == '_'))
            return 0;
    return n > 0 && n <= 64;
}

/* The error code of a Salesforce error object: "errorCode" (top level) or "statusCode" (per
 * record). NULL when absent or not a plain code. Borrowed from err. */
static const char *error_code(const cJSON *err)
{
    static const char *const names[] = {"errorCode", "statusCode"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, names[i]);
        if (cJSON_IsString(c) && code_ok(c->valuestring))
            return c->valuestring;
    }
    return NULL;
}

/* The first error code of an error body (an array of error objects, or one object). */
static const char *body_error_code(const cJSON *body)
{
    if (cJSON_IsArray(body))
        return error_code(cJSON_GetArrayItem(body, 0));
    return cJSON_IsObject(body) ? error_code(body) : NULL;
}

/* Read "api-usage=N/M" from Sforce-Limit-Info into the gauges api_usage and api_limit. */
static void limit_gauges(struct sf *s, const struct odsync_http_response *resp)
{
    const char *h = s->host->http_header(resp, "Sforce-Limit-Info");
    const char *p = h != NULL ? strstr(h, "api-usage=") : NULL;
    char *end = NULL;
    if (p == NULL)
        return;
    p += strlen("api-usage=");
    long long used = strtoll(p, &end, 10);
    if (end == p || *end != '/' || used < 0)
        return;
    p = end + 1;
    long long max = strtoll(p, &end, 10);
    if (end == p || max <= 0)
        return;
    s->host->gauge_set(s->ctx, "api_usage", (double)used);
    s->host->gauge_set(s->ctx, "api_limit", (double)max);
}

/* One request with the bearer token. *resp: caller frees with http_free. Returns the
 * host's result class. */
static int request(struct sf *s, const char *method, const char *url, const char *body,
                   struct odsync_http_response **resp)
{
    const struct odsync_http_header headers[] = {
        {"Authorization", s->authorization},
        {"Content-Type", "application/json"},
        {"Accept", "application/json"},
    };
    const struct odsync_http_request req = {
        .struct_size = sizeof(req),
        .method = method,
        .url = url,
        .headers = headers,
        .header_count = body != NULL ? 3 : 2,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = s->cfg.timeout_ms,
    };
    /* Content-Type is the second header; without a body it is left out. */
    const struct odsync_http_header no_body[] = {headers[0], headers[2]};
    struct odsync_http_request r2 = req;
    if (body == NULL)
        r2.headers = no_body;
    int rc = s->host->http(s->ctx, &r2, resp);
    s->host->counter_add(s->ctx, "requests", 1);
    return rc;
}

/* Make an API call at path (below instance_url): get a token first when there is none; on a
 * 401 renew the token once and repeat. o gets the class of the whole request; on ODSYNC_OK
 * *out is the 2xx response (caller frees with http_free). */
static void api_call(struct sf *s, const char *method, const char *path, const char *body,
                     struct odsync_http_response **out, struct outcome *o)
{
    struct odsync_http_response *resp = NULL;
    char *url = NULL;
    cJSON *err = NULL;

    *out = NULL;
    memset(o, 0, sizeof(*o));
    o->retry_after_ms = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->authorization == NULL) {
            o->cls = sf_auth_token(s, o->detail, sizeof(o->detail), &o->retry_after_ms);
            if (o->cls != ODSYNC_OK)
                goto cleanup;
        }
        free(url);
        size_t ulen = strlen(s->instance_url) + strlen(path) + 1;
        url = malloc(ulen);
        if (url == NULL) {
            o->cls = ODSYNC_NOMEM;
            snprintf(o->detail, sizeof(o->detail), "out of memory");
            goto cleanup;
        }
        snprintf(url, ulen, "%s%s", s->instance_url, path);
        s->host->http_free(resp);
        resp = NULL;
        int rc = request(s, method, url, body, &resp);
        if (resp == NULL) {
            o->cls = rc == ODSYNC_NOMEM ? ODSYNC_NOMEM : ODSYNC_CONFIG;
            snprintf(o->detail, sizeof(o->detail), "the host refused the request");
            goto cleanup;
        }
        limit_gauges(s, resp);
        s->last_status = resp->status;
        if (resp->status != 401)
            break;
        /* INVALID_SESSION_ID (expired or revoked): renew once, then give up. */
        sf_auth_forget(s);
        s->host->log(s->ctx, ODSYNC_LOG_INFO, "HTTP 401 on %s %s: %s", method,
                     attempt == 0 ? "renewing the token" : "after renewal: pausing",
                     "(INVALID_SESSION_ID)");
    }
    if (resp->status == 0 || resp->error != NULL) {
        o->cls = ODSYNC_RETRY;
        snprintf(o->detail, sizeof(o->detail), "transport error");
        goto cleanup;
    }
    if (resp->status >= 200 && resp->status <= 299) {
        o->cls = ODSYNC_OK;
        *out = resp;
        resp = NULL;
        goto cleanup;
    }
    err = cJSON_ParseWithLength(resp->body, resp->body_len);
    const char *code = body_error_code(err);
    o->cls = s->host->status_class(resp->status);
    if (resp->status == 401) {
        o->cls = ODSYNC_AUTH;
    } else if (resp->status == 403 && code != NULL && strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) {
        /* The org's 24-hour API allocation is used up: wait, spending no attempts. */
        o->cls = ODSYNC_RATE_LIMITED;
        o->retry_after_ms = s->cfg.limit_pause_ms;
    } else if (o->cls == ODSYNC_RATE_LIMITED || o->cls == ODSYNC_RETRY) {
        o->retry_after_ms = resp->retry_after_ms;
    }
    snprintf(o->detail, sizeof(o->detail), "HTTP %d%s%s", (int)resp->status,
             code != NULL ? " " : "", code != NULL ? code : "");
cleanup:
    if (o->cls != ODSYNC_OK)
        s->host->log(s->ctx, ODSYNC_LOG_WARN, "%s: %s (%s)", method, o->detail,
                     odsync_status_name(o->cls));
    s->last_class = o->cls;
    cJSON_Delete(err);
    s->host->http_free(resp);
    free(url);
}

/* ---- per-item reporting ----------------------------------------------------------------- */

/* Report one item; a class that stops the instance stops the rest of this call. */
static void report(struct sf *s, odsync_batch *batch, size_t idx, int cls, int64_t retry_after,
                   const char *remote_id, const char *detail, struct sf_pause *pause)
{
    s->host->result_set(batch, idx, cls, retry_after, remote_id, detail);
    s->host->counter_add(s->ctx, cls == ODSYNC_OK ? "records_ok" : "records_failed", 1);
    if ((cls == ODSYNC_RATE_LIMITED || cls == ODSYNC_AUTH) && pause->cls == ODSYNC_OK) {
        pause->cls = cls;
        pause->retry_after_ms = retry_after;
        snprintf(pause->detail, sizeof(pause->detail), "not sent: %s earlier in this batch",
                 detail != NULL ? detail : odsync_status_name(cls));
    }
}

/* Report an item held back by an earlier pause. */
static void report_paused(struct sf *s, odsync_batch *batch, size_t idx,
                          const struct sf_pause *pause)
{
    s->host->result_set(batch, idx, pause->cls, pause->retry_after_ms, NULL, pause->detail);
    s->host->counter_add(s->ctx, "records_failed", 1);
}

/* The class of a per-record error code. */
static int record_error_class(const char *code, int is_task)
{
    if (code == NULL)
        return ODSYNC_RETRY; /* no usable code: do not dead-letter on a guess */
    if (strcmp(code, "UNABLE_TO_LOCK_ROW") == 0 ||
        strcmp(code, "ALL_OR_NONE_OPERATION_ROLLED_BACK") == 0 ||
        strcmp(code, "SERVER_UNAVAILABLE") == 0)
        return ODSYNC_RETRY;
    if (strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0)
        return ODSYNC_RATE_LIMITED;
    /* A task whose WhoId points at a Contact that is gone: look it up again later. */
    if (is_task && (strcmp(code, "INVALID_CROSS_REFERENCE_KEY") == 0 ||
                    strcmp(code, "ENTITY_IS_DELETED") == 0))
        return ODSYNC_RETRY;
    return ODSYNC_PERMANENT;
}

/* "Salesforce CODE (Field, Field)" for a per-record error object: codes and field names
 * only, never the message (it may quote the rejected value). */
static void record_error_detail(const cJSON *err, char *out, size_t len)
{
    const char *code = error_code(err);
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(err, "fields");
    size_t off;
    snprintf(out, len, "Salesforce %s", code != NULL ? code : "error without a code");
    off = strlen(out);
    int n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, fields)
    {
        if (!cJSON_IsString(f) || !sf_field_name_ok(f->valuestring) || off + 4 >= len)
            continue;
        int w = snprintf(out + off, len - off, "%s%s", n == 0 ? " (" : ", ", f->valuestring);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
        n++;
    }
    if (n > 0 && off + 2 <= len)
        snprintf(out + off, len - off, ")");
}

/* 1 when id looks like a Salesforce record id (15 or 18 letters and digits). */
static int sf_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n != 15 && n != 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= 'a' && id[i] <= 'z') ||
              (id[i] >= '0' && id[i] <= '9')))
            return 0;
    return 1;
}

/* Check a 2xx collections answer: a JSON array of exactly n objects, each with a boolean
 * "success" and, when true, a record id. Returns the parsed array (caller frees) or NULL. */
static cJSON *collection_results(const struct odsync_http_response *resp, size_t n)
{
    cJSON *arr = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *it;
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n)
        goto bad;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(it, "success");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsObject(it) || !cJSON_IsBool(ok))
            goto bad;
        if (cJSON_IsTrue(ok) && (!cJSON_IsString(id) || !sf_id_ok(id->valuestring)))
            goto bad;
    }
    return arr;
bad:
    cJSON_Delete(arr);
    return NULL;
}

/* ---- requests --------------------------------------------------------------------------- */

/* Upsert recs[0..n) (Salesforce records, borrowed; n <= 200) of sobject on its External ID
 * field and report items idx[0..n). keys[i] is item idx[i]'s odsync key; for tasks,
 * contacts[i] is its contact's key (NULL for contacts). All borrowed. */
static void upsert(struct sf *s, odsync_batch *batch, const char *sobject, const char *field,
                   cJSON *const *recs, const size_t *idx, const char *const *keys,
                   const char *const *contacts, size_t n, struct sf_pause *pause)
{
    struct outcome o = {.cls = ODSYNC_NOMEM, .retry_after_ms = -1, .detail = "out of memory"};
    struct odsync_http_response *resp = NULL;
    cJSON *body = cJSON_CreateObject(), *results = NULL, *arr = NULL;
    char *text = NULL, path[256];
    int per_item = 0, is_task = contacts != NULL;

    if (body == NULL || cJSON_AddFalseToObject(body, "allOrNone") == NULL)
        goto cleanup;
    arr = cJSON_AddArrayToObject(body, "records");
    if (arr == NULL)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        cJSON *ref = cJSON_CreateObjectReference(recs[i]->child);
        if (ref == NULL)
            goto cleanup;
        cJSON_AddItemToArray(arr, ref);
    }
    text = cJSON_PrintUnformatted(body);
    if (text == NULL)
        goto cleanup;
    snprintf(path, sizeof(path), "/services/data/v%s/composite/sobjects/%s/%s", s->cfg.api_version,
             sobject, field);
    api_call(s, "PATCH", path, text, &resp, &o);
    s->host->log(s->ctx, ODSYNC_LOG_DEBUG, "PATCH composite/sobjects/%s (%zu records) -> HTTP %d",
                 sobject, n, s->last_status);
    if (o.cls != ODSYNC_OK)
        goto cleanup;
    results = collection_results(resp, n);
    if (results == NULL) {
        /* A 2xx that is not one result per record (a cut or garbled answer) proves nothing:
         * retry every item (the upsert by External ID makes a repeat harmless). */
        o.cls = ODSYNC_RETRY;
        snprintf(o.detail, sizeof(o.detail),
                 "HTTP %d: response is not a JSON array of %zu upsert results", s->last_status, n);
        s->last_class = ODSYNC_RETRY;
        s->host->log(s->ctx, ODSYNC_LOG_WARN, "%s", o.detail);
        goto cleanup;
    }
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, results)
    {
        char detail[SF_DETAIL_MAX];
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "success"))) {
            const char *id = cJSON_GetObjectItemCaseSensitive(it, "id")->valuestring;
            if (!is_task)
                id_put(s, keys[i], id);
            report(s, batch, idx[i], ODSYNC_OK, -1, id, NULL, pause);
        } else {
            const cJSON *err =
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(it, "errors"), 0);
            const char *code = error_code(err);
            int cls = record_error_class(code, is_task);
            record_error_detail(err, detail, sizeof(detail));
            if (is_task && cls == ODSYNC_RETRY && code != NULL &&
                (strcmp(code, "INVALID_CROSS_REFERENCE_KEY") == 0 ||
                 strcmp(code, "ENTITY_IS_DELETED") == 0))
                id_forget(s, contacts[i]); /* looked up again next time */
            report(s, batch, idx[i], cls, cls == ODSYNC_RATE_LIMITED ? s->cfg.limit_pause_ms : -1,
                   NULL, detail, pause);
        }
        i++;
    }
    per_item = 1;
cleanup:
    for (size_t k = 0; !per_item && k < n; k++)
        report(s, batch, idx[k], o.cls, o.retry_after_ms, NULL, o.detail, pause);
    s->host->http_free(resp);
    cJSON_Delete(results);
    cJSON_free(text);
    cJSON_Delete(body);
}

/* Bytes c takes once percent-encoded. */
static size_t enc_len(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                   c == '.' || c == '_' || c == '~'
               ? 1
               : 3;
}

/* Append ",'v'" (no comma when first) to the SOQL text b at *off as a string literal (quote
 * and backslash escaped), counting its encoded size into *enc. Returns 0, or -1 (nothing
 * appended) when the encoded query would pass QUERY_URL_MAX; b holds QUERY_URL_MAX + 2. */
static int soql_add(char *b, size_t *off, size_t *enc, const char *v, int first)
{
    size_t o = *off, e = *enc;
    if (!first) {
        b[o++] = ',';
        e += 3;
    }
    b[o++] = '\'';
    e += 3;
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\') {
            b[o++] = '\\';
            e += 3;
        }
        b[o++] = *v;
        e += enc_len(*v);
        if (e + 6 >= QUERY_URL_MAX || o + 4 >= QUERY_URL_MAX)
            return -1;
    }
    b[o++] = '\'';
    e += 3;
    if (e + 6 >= QUERY_URL_MAX || o + 4 >= QUERY_URL_MAX)
        return -1;
    b[o] = '\0';
    *off = o;
    *enc = e;
    return 0;
}

/* Look up the Contact Ids of keys[0..n) (borrowed, distinct, not cached) with SOQL queries
 * whose encoded text stays under QUERY_URL_MAX bytes (one query for a batch of 200 usual
 * keys) and remember what is found. o gets the outcome (ODSYNC_OK when every query ran). */
static void lookup_contacts(struct sf *s, const char *const *keys, size_t n, struct outcome *o)
{
    char *soql = malloc(QUERY_URL_MAX + 2), *enc = malloc(QUERY_URL_MAX * 3 + 1);
    char *path = malloc(QUERY_URL_MAX * 3 + 128);
    struct odsync_http_response *resp = NULL;
    cJSON *json = NULL;
    size_t next = 0;

    memset(o, 0, sizeof(*o));
    o->retry_after_ms = -1;
    if (soql == NULL || enc == NULL || path == NULL) {
        o->cls = ODSYNC_NOMEM;
        snprintf(o->detail, sizeof(o->detail), "out of memory");
        goto cleanup;
    }
    while (next < n) {
        int w = snprintf(soql, QUERY_URL_MAX, "SELECT Id, %s FROM Contact WHERE %s IN (",
                         s->cfg.contact_field, s->cfg.contact_field);
        size_t off = (size_t)w, est = (size_t)w * 3, first = next;
        while (next < n && soql_add(soql, &off, &est, keys[next], next == first) == 0)
            next++;
        if (next == first) {
            o->cls = ODSYNC_PERMANENT;
            snprintf(o->detail, sizeof(o->detail), "contact key too long for a lookup query");
            goto cleanup;
        }
        soql[off++] = ')';
        soql[off] = '\0';
        if (s->host->url_encode(soql, enc, QUERY_URL_MAX * 3 + 1) != ODSYNC_OK) {
            o->cls = ODSYNC_INTERNAL;
            snprintf(o->detail, sizeof(o->detail), "contact lookup: could not encode");
            goto cleanup;
        }
        snprintf(path, QUERY_URL_MAX * 3 + 128, "/services/data/v%s/query?q=%s", s->cfg.api_version,
                 enc);
        api_call(s, "GET", path, NULL, &resp, o);
        s->host->counter_add(s->ctx, "query_requests", 1);
        if (o->cls != ODSYNC_OK) {
            size_t dl = strlen(o->detail);
            snprintf(o->detail + dl, sizeof(o->detail) - dl, " (contact lookup)");
            goto cleanup;
        }
        json = cJSON_ParseWithLength(resp->body, resp->body_len);
        const cJSON *recs = cJSON_GetObjectItemCaseSensitive(json, "records"), *r;
        if (!cJSON_IsArray(recs)) {
            o->cls = ODSYNC_RETRY;
            snprintf(o->detail, sizeof(o->detail),
                     "HTTP %d: contact lookup answer has no records array", (int)resp->status);
            goto cleanup;
        }
        cJSON_ArrayForEach(r, recs)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "Id");
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(r, s->cfg.contact_field);
            if (cJSON_IsString(id) && sf_id_ok(id->valuestring) && cJSON_IsString(key))
                id_put(s, key->valuestring, id->valuestring);
        }
        cJSON_Delete(json);
        json = NULL;
        s->host->http_free(resp);
        resp = NULL;
    }
cleanup:
    cJSON_Delete(json);
    s->host->http_free(resp);
    free(soql);
    free(enc);
    free(path);
}

/* Parse record i; report it and return 0 when it cannot be sent. */
static int parse_item(struct sf *s, odsync_batch *batch, size_t i, const struct odsync_record *rec,
                      struct item *it, struct sf_pause *pause)
{
    const char *why = NULL;
    int cls = ODSYNC_PERMANENT;
    char kind_detail[48];

    it->kind = 0;
    if (rec == NULL || rec->key == NULL || rec->key[0] == '\0' || rec->json == NULL) {
        why = "record has no key or no JSON";
    } else if (strlen(rec->key) > 255) {
        why = "record key is longer than the External ID field (255)";
    } else if (rec->kind != ODSYNC_KIND_CONTACT && rec->kind != ODSYNC_KIND_TASK) {
        snprintf(kind_detail, sizeof(kind_detail), "record kind %d is not supported",
                 (int)rec->kind);
        why = kind_detail;
        cls = ODSYNC_UNSUPPORTED;
    } else {
        it->json = cJSON_ParseWithLength(rec->json, rec->json_len);
        if (!cJSON_IsObject(it->json)) {
            why = "record JSON is not an object";
        } else if (rec->kind == ODSYNC_KIND_TASK) {
            const cJSON *ck = cJSON_GetObjectItemCaseSensitive(it->json, "contact_key");
            if (!cJSON_IsString(ck) || ck->valuestring[0] == '\0')
                why = "task has no contact_key";
            else
                it->contact = ck->valuestring;
        }
    }
    if (why != NULL) {
        report(s, batch, i, cls, -1, NULL, why, pause);
        cJSON_Delete(it->json);
        it->json = NULL;
        return 0;
    }
    it->kind = rec->kind;
    return 1;
}

/* Send the items of one kind: map them (tasks: with their Contact Id) and upsert them. */
static void send_kind(struct sf *s, odsync_batch *batch, const struct odsync_record *const *records,
                      struct item *items, size_t count, int kind, struct sf_pause *pause)
{
    cJSON **recs = calloc(count + 1, sizeof(*recs));
    size_t *idx = calloc(count + 1, sizeof(*idx));
    const char **keys = calloc(count + 1, sizeof(*keys));
    const char **contacts = calloc(count + 1, sizeof(*contacts));
    const char **missing = calloc(count + 1, sizeof(*missing));
    size_t n = 0, n_missing = 0;
    struct outcome o = {.cls = ODSYNC_OK, .retry_after_ms = -1};

    if (recs == NULL || idx == NULL || keys == NULL || contacts == NULL || missing == NULL) {
        for (size_t i = 0; i < count; i++)
            if (items[i].kind == kind)
                report(s, batch, i, ODSYNC_NOMEM, -1, NULL, "out of memory", pause);
        goto cleanup;
    }
    if (kind == ODSYNC_KIND_TASK && pause->cls == ODSYNC_OK) {
        /* Contact Ids not remembered yet: one query for the batch. */
        for (size_t i = 0; i < count; i++) {
            if (items[i].kind != kind || id_get(s, items[i].contact) != NULL)
                continue;
            int dup = 0;
            for (size_t k = 0; k < n_missing && !dup; k++)
                dup = strcmp(missing[k], items[i].contact) == 0;
            if (!dup)
                missing[n_missing++] = items[i].contact;
        }
        if (n_missing > 0)
            lookup_contacts(s, missing, n_missing, &o);
    }
    for (size_t i = 0; i < count; i++) {
        if (items[i].kind != kind)
            continue;
        if (pause->cls != ODSYNC_OK) {
            report_paused(s, batch, i, pause);
            continue;
        }
        if (o.cls != ODSYNC_OK) {
            report(s, batch, i, o.cls, o.retry_after_ms, NULL, o.detail, pause);
            continue;
        }
        const char *who = NULL;
        if (kind == ODSYNC_KIND_TASK) {
            who = id_get(s, items[i].contact);
            if (who == NULL) {
                /* The contact is not in Salesforce (yet): it is queued before its tasks, so
                 * it may still be on its way, or failed. Try again later. */
                report(s, batch, i, ODSYNC_RETRY, -1, NULL,
                       "the task's contact is not in Salesforce yet", pause);
                continue;
            }
        }
        recs[n] = kind == ODSYNC_KIND_CONTACT
                      ? sf_map_contact(&s->cfg, items[i].json, records[i]->key)
                      : sf_map_task(&s->cfg, items[i].json, records[i]->key, who);
        if (recs[n] == NULL) {
            report(s, batch, i, ODSYNC_NOMEM, -1, NULL, "out of memory", pause);
            continue;
        }
        idx[n] = i;
        keys[n] = records[i]->key;
        contacts[n] = items[i].contact;
        n++;
    }
    for (size_t start = 0; start < n; start += SF_MAX_BATCH) {
        size_t len = n - start < SF_MAX_BATCH ? n - start : SF_MAX_BATCH;
        if (pause->cls != ODSYNC_OK) {
            for (size_t k = 0; k < len; k++)
                report_paused(s, batch, idx[start + k], pause);
            continue;
        }
        upsert(s, batch, kind == ODSYNC_KIND_CONTACT ? "Contact" : "Task",
               kind == ODSYNC_KIND_CONTACT ? s->cfg.contact_field : s->cfg.task_field, recs + start,
               idx + start, keys + start, kind == ODSYNC_KIND_TASK ? contacts + start : NULL, len,
               pause);
    }
cleanup:
    for (size_t k = 0; recs != NULL && k < n; k++)
        cJSON_Delete(recs[k]);
    free(recs);
    free(idx);
    free(keys);
    free(contacts);
    free(missing);
}

/* ---- callbacks -------------------------------------------------------------------------- */

/* Free the instance (accepts NULL): token wiped, key and caches freed. */
static void sf_destroy(void *instance)
{
    struct sf *s = instance;
    if (s == NULL)
        return;
    sf_auth_free(s);
    id_free(s);
    sf_config_free(&s->cfg);
    free(s);
}

/* Build an instance from the settings (no network: the first send gets the token). */
static int sf_create(const struct odsync_host *host, odsync_host_ctx *ctx, void **instance)
{
    static const char *const grants[] = {"client_credentials", "jwt", "refresh_token"};
    struct sf *s = NULL;
    int rc = ODSYNC_NOMEM;

    *instance = NULL;
    if (host == NULL || host->struct_size < ODSYNC_HOST_V1_0_SIZE)
        return ODSYNC_INTERNAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    s->host = host;
    s->ctx = ctx;
    s->last_class = -1;
    rc = sf_config_load(host, ctx, &s->cfg);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = sf_auth_init(s);
    if (rc != ODSYNC_OK)
        goto cleanup;
    host->log(ctx, ODSYNC_LOG_INFO, "auth %s via %s, API v%s, Contact.%s, Task.%s",
              grants[s->cfg.auth], s->cfg.token_url, s->cfg.api_version, s->cfg.contact_field,
              s->cfg.task_field);
    *instance = s;
    s = NULL;
    rc = ODSYNC_OK;
cleanup:
    sf_destroy(s);
    return rc;
}

/* Deliver records[0..count): contacts first (one upsert per 200), then tasks. */
static int sf_send_batch(void *instance, odsync_batch *batch,
                         const struct odsync_record *const *records, size_t count)
{
    struct sf *s = instance;
    struct sf_pause pause = {.cls = ODSYNC_OK, .retry_after_ms = -1};
    struct item *items = calloc(count + 1, sizeof(*items));
    int rc = ODSYNC_NOMEM;

    if (items == NULL)
        goto cleanup;
    for (size_t i = 0; i < count; i++)
        parse_item(s, batch, i, records[i], &items[i], &pause);
    send_kind(s, batch, records, items, count, ODSYNC_KIND_CONTACT, &pause);
    send_kind(s, batch, records, items, count, ODSYNC_KIND_TASK, &pause);
    rc = ODSYNC_OK;
cleanup:
    for (size_t i = 0; items != NULL && i < count; i++)
        cJSON_Delete(items[i].json);
    free(items);
    return rc;
}

/* A one-line state: the last request's status and class. */
static int sf_health(void *instance, char *detail, size_t detail_len)
{
    const struct sf *s = instance;
    if (s->last_class < 0) {
        snprintf(detail, detail_len, "ok (no request yet)");
        return ODSYNC_OK;
    }
    if (s->last_class == ODSYNC_OK || s->last_class == ODSYNC_PERMANENT) {
        snprintf(detail, detail_len, "ok (last request: HTTP %d, %zu contact ids cached)",
                 s->last_status, s->ids_n);
        return ODSYNC_OK;
    }
    snprintf(detail, detail_len, "last request: HTTP %d (%s)", s->last_status,
             odsync_status_name(s->last_class));
    return s->last_class;
}

ODSYNC_SINK_DEFINE(.name = "salesforce", .version = "1.0.0",
                   .description = "Salesforce: Contacts and Tasks upserted by External ID "
                                  "(sObject Collections, OAuth 2.0)",
                   .max_batch = SF_MAX_BATCH,
                   .capabilities = ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS, .config = sf_config_spec,
                   .create = sf_create, .send_batch = sf_send_batch, .health = sf_health,
                   .destroy = sf_destroy, .setup = sf_setup_text)
