/*
 * sendgrid.c: the SendGrid email connector ("sendgrid"). Request logic only; settings are in
 * sendgrid_config.c. Wire format and result mapping are documented in README.md:
 *
 *   POST {base_url}/v3/mail/send   Authorization: Bearer <api_key>
 *     messages of a batch that share office, campaign and template (or, without a template,
 *     the same rendered body) go in ONE request, one personalization each (up to
 *     batch_size, at most 1000), every personalization carrying custom_args
 *     {"odsync_key": key, "odsync_office": office} so Event Webhook events map back.
 *
 *   check_suppressions: before sending, GET /v3/suppression/{unsubscribes,bounces,
 *     spam_reports} (paged) and POST /v3/asm/groups/{id}/suppressions/search; a message to a
 *     suppressed address is reported OPTED_OUT and not sent. Addresses travel only in request
 *     bodies, never in URLs (the host logs request paths).
 *
 * All HTTP goes through the host's services table. Message records carry patient data
 * (addresses, names in template data, bodies): none of it is logged or copied into a result
 * detail; details name HTTP statuses, SendGrid's error field and message (withheld when it
 * contains an '@'), and opaque keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <odsync/sink.h>

#include "sendgrid_config.h"

#define DETAIL_MAX      320  /* bytes of a result detail, NUL included */
#define EXCERPT_MAX     160  /* bytes of a remote error message quoted in a detail */
#define MSG_ID_MAX      128  /* longer X-Message-Id values are not taken */
#define LIST_PAGE       500  /* entries per suppression list page (SendGrid's maximum) */
#define LIST_MAX_PAGES  2000 /* one million entries per list at most */
#define MIN_RATE_WAIT   1000 /* ms: the least a 429 pauses the instance */
#define URL_EXTRA       96   /* bytes for a path and query beyond base_url */
#define CUSTOM_ARG_KEY  "odsync_key"
#define CUSTOM_ARG_OFFC "odsync_office"

struct sg {
    const struct odsync_host *host; /* borrowed, valid until destroy */
    odsync_host_ctx *ctx;           /* borrowed, valid until destroy */
    struct sg_config cfg;           /* owned */
    char *authorization;            /* owned "Bearer <key>"; wiped on destroy */
    int last_status;                /* HTTP status of the last request (0: transport error) */
    int last_class;                 /* its result class; -1 before the first request */
};

/* One message of the batch, parsed. Strings borrowed from json (or cfg); json owned. */
struct msg {
    size_t idx;                      /* index in the batch */
    const struct odsync_record *rec; /* borrowed for the call */
    cJSON *json;                     /* owned */
    const char *to, *subject, *body, *campaign, *template_id;
    const cJSON *tdata;     /* template_data object, or NULL */
    int64_t group;          /* unsubscribe group, 0 = none */
    int unsub;              /* 1: List-Unsubscribe headers */
    char *addr;             /* owned: lowercase address, for suppression lookups */
    const char *suppressed; /* static reason, or NULL */
    int done;               /* 1 once reported */
    int grouped;            /* 1 once put in a request */
};

/* Set when a response says the whole instance must wait (429 or 401/403): the rest of the
 * send_batch call is not sent and its items get the same class. */
struct pause {
    int cls; /* ODSYNC_OK = not paused */
    int64_t retry_after_ms;
    int status;
    int logged;
};

/* What one response means for the items it covers. */
struct outcome {
    int cls;
    int status;
    int64_t retry_after_ms;
    char detail[DETAIL_MAX];
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

/* Copy text into out as a bounded, printable excerpt: control characters become spaces, a
 * cut falls on a UTF-8 boundary and is marked "...". Text holding an '@' may quote an
 * address: it is replaced by "(message withheld)". */
static void excerpt(const char *text, char *out, size_t out_len)
{
    size_t n = strlen(text), o = 0;
    int cut = 0;
    if (strchr(text, '@') != NULL) {
        snprintf(out, out_len, "(message withheld)");
        return;
    }
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

/* A string member of obj, or NULL (absent, null or not a string). Borrowed from obj. */
static const char *str_member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && v->valuestring != NULL ? v->valuestring : NULL;
}

/* A lowercase copy of an address; caller frees with free(). */
static char *lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- results ------------------------------------------------------------------------- */

static void report(struct sg *s, odsync_batch *batch, struct msg *m, int cls, int64_t retry_ms,
                   const char *remote_id, const char *detail)
{
    s->host->result_set(batch, m->idx, cls, retry_ms, remote_id,
                        detail != NULL && detail[0] != '\0' ? detail : NULL);
    s->host->counter_add(s->ctx,
                         cls == ODSYNC_OK          ? "messages_ok"
                         : cls == ODSYNC_OPTED_OUT ? "messages_suppressed"
                                                   : "messages_failed",
                         1);
    m->done = 1;
}

/* Report m with an outcome, and pause the rest of the call when the class says so. */
static void report_outcome(struct sg *s, odsync_batch *batch, struct msg *m,
                           const struct outcome *o, struct pause *p)
{
    report(s, batch, m, o->cls, o->retry_after_ms, NULL, o->detail);
    if ((o->cls == ODSYNC_RATE_LIMITED || o->cls == ODSYNC_AUTH) && p->cls == ODSYNC_OK) {
        p->cls = o->cls;
        p->retry_after_ms = o->retry_after_ms;
        p->status = o->status;
    }
}

/* Report m, left unsent because of pause p. */
static void report_paused(struct sg *s, odsync_batch *batch, struct msg *m, struct pause *p)
{
    char detail[96];
    if (!p->logged) {
        s->host->log(s->ctx, ODSYNC_LOG_WARN, "HTTP %d (%s): holding back the rest of this batch",
                     p->status, odsync_status_name(p->cls));
        p->logged = 1;
    }
    snprintf(detail, sizeof(detail), "not sent: HTTP %d earlier in this batch", p->status);
    report(s, batch, m, p->cls, p->retry_after_ms, NULL, detail);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

/* Perform a request with the API key and JSON headers, count it. *resp: caller frees with
 * host->http_free. Returns the host's result class. */
static int request(struct sg *s, const char *method, const char *url, const char *body,
                   struct odsync_http_response **resp)
{
    const struct odsync_http_header with_body[] = {
        {"Authorization", s->authorization},
        {"Accept", "application/json"},
        {"Content-Type", "application/json"},
    };
    const struct odsync_http_request req = {
        .struct_size = sizeof(req),
        .method = method,
        .url = url,
        .headers = with_body,
        .header_count = body != NULL ? 3 : 2, /* a GET has no Content-Type */
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = s->cfg.timeout_ms,
    };
    int rc = s->host->http(s->ctx, &req, resp);
    s->host->counter_add(s->ctx, "requests", 1);
    return rc;
}

/* ms until X-RateLimit-Reset (epoch seconds) of resp, or the parsed Retry-After, or -1. */
static int64_t rate_wait_ms(const struct sg *s, const struct odsync_http_response *resp)
{
    const char *reset = s->host->http_header(resp, "X-RateLimit-Reset");
    char *end = NULL;
    if (reset != NULL) {
        long long at = strtoll(reset, &end, 10);
        if (end != reset && *end == '\0' && at > 0) {
            long long wait = ((long long)at - (long long)time(NULL)) * 1000;
            return wait < MIN_RATE_WAIT ? MIN_RATE_WAIT : wait;
        }
    }
    return resp->retry_after_ms;
}

/* The first SendGrid error of a JSON error body ({"errors":[{"message","field"}]}): field
 * and message into out as "field: message" (or just the message). Returns 1 when found. */
static int first_error(const cJSON *json, char *out, size_t out_len)
{
    char ex[EXCERPT_MAX + 8];
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(json, "errors"), 0);
    const char *msg = str_member(e, "message"), *field = str_member(e, "field");
    if (msg == NULL)
        return 0;
    excerpt(msg, ex, sizeof(ex));
    if (field != NULL && strchr(field, '@') == NULL && strlen(field) < 80)
        snprintf(out, out_len, "%s: %s", field, ex);
    else
        snprintf(out, out_len, "%s", ex);
    return 1;
}

/* What a failed (or unusable) response means: transport errors, 429 with its reset, 401/403,
 * 5xx, other 4xx. prefix starts the detail ("" or "suppression check: "). */
static void outcome_of(struct sg *s, int rc, const struct odsync_http_response *resp,
                       const char *prefix, struct outcome *o)
{
    char ex[EXCERPT_MAX + 8], err[256];
    memset(o, 0, sizeof(*o));
    o->retry_after_ms = -1;
    if (resp == NULL) {
        o->cls = rc == ODSYNC_NOMEM ? ODSYNC_NOMEM : ODSYNC_PERMANENT;
        snprintf(o->detail, sizeof(o->detail), "%s%s", prefix,
                 rc == ODSYNC_NOMEM ? "out of memory"
                                    : "the host refused the request (invalid URL or header)");
        s->last_status = 0;
        s->last_class = o->cls;
        return;
    }
    s->last_status = resp->status;
    o->status = resp->status;
    if (resp->status == 0 || resp->error != NULL) {
        o->cls = resp->status == 0 ? ODSYNC_RETRY : resp->result_class;
        excerpt(resp->error != NULL ? resp->error : "no response", ex, sizeof(ex));
        if (resp->status == 0)
            snprintf(o->detail, sizeof(o->detail), "%stransport error: %s", prefix, ex);
        else
            snprintf(o->detail, sizeof(o->detail), "%sHTTP %d: %s", prefix, (int)resp->status, ex);
        s->last_class = o->cls;
        return;
    }
    o->cls = s->host->status_class(resp->status);
    if (o->cls == ODSYNC_RATE_LIMITED)
        o->retry_after_ms = rate_wait_ms(s, resp);
    else if (o->cls == ODSYNC_RETRY)
        o->retry_after_ms = resp->retry_after_ms;
    s->last_class = o->cls;
    cJSON *json = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (cJSON_IsObject(json) && first_error(json, err, sizeof(err)))
        snprintf(o->detail, sizeof(o->detail), "%sHTTP %d: %s", prefix, (int)resp->status, err);
    else
        snprintf(o->detail, sizeof(o->detail), "%sHTTP %d", prefix, (int)resp->status);
    cJSON_Delete(json);
}

/* ---- records --------------------------------------------------------------------------- */

/* Parse record idx into m. Returns 0, or -1 after reporting why it cannot be sent. */
static int parse_msg(struct sg *s, odsync_batch *batch, size_t idx, const struct odsync_record *rec,
                     struct msg *m)
{
    const char *why = NULL;
    int cls = ODSYNC_PERMANENT;
    char kind[64];

    memset(m, 0, sizeof(*m));
    m->idx = idx;
    m->rec = rec;
    if (rec == NULL || rec->json == NULL || rec->key == NULL || rec->key[0] == '\0' ||
        rec->office == NULL) {
        why = "record has no key, office or JSON";
        goto fail;
    }
    if (rec->kind != ODSYNC_KIND_MESSAGE) {
        snprintf(kind, sizeof(kind), "record kind %d is not supported", (int)rec->kind);
        why = kind;
        cls = ODSYNC_UNSUPPORTED;
        goto fail;
    }
    m->json = cJSON_ParseWithLength(rec->json, rec->json_len);
    if (!cJSON_IsObject(m->json)) {
        why = m->json == NULL && rec->json_len > 0 ? "record JSON does not parse (or no memory)"
                                                   : "record JSON is not an object";
        goto fail;
    }
    const char *channel = str_member(m->json, "channel");
    if (channel == NULL || strcmp(channel, "email") != 0) {
        why = "message channel is not \"email\"";
        cls = ODSYNC_UNSUPPORTED;
        goto fail;
    }
    m->to = str_member(m->json, "to");
    if (!sg_valid_address(m->to)) {
        why = "message has no valid recipient address";
        goto fail;
    }
    m->campaign = str_member(m->json, "campaign");
    m->subject = str_member(m->json, "subject");
    m->body = str_member(m->json, "body");
    m->template_id = str_member(m->json, "template_id");
    if (m->template_id != NULL && m->template_id[0] == '\0')
        m->template_id = NULL;
    if (m->template_id == NULL)
        m->template_id = sg_config_template(&s->cfg, m->campaign);
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(m->json, "template_data");
    m->tdata = cJSON_IsObject(td) ? td : NULL;
    if (m->template_id == NULL &&
        (m->subject == NULL || m->subject[0] == '\0' || m->body == NULL || m->body[0] == '\0')) {
        why = "message has no template and no subject or body";
        goto fail;
    }
    m->group = sg_config_group(&s->cfg, m->campaign);
    m->unsub = s->cfg.unsub_url != NULL && !sg_config_transactional(&s->cfg, m->campaign);
    m->addr = lower_dup(m->to);
    if (m->addr == NULL) {
        why = "out of memory";
        cls = ODSYNC_NOMEM;
        goto fail;
    }
    return 0;
fail:
    s->host->result_set(batch, idx, cls, -1, NULL, why);
    s->host->counter_add(s->ctx, "messages_failed", 1);
    m->done = 1;
    return -1;
}

/* 1 when b can share a request with a: same office, campaign (so group and headers) and
 * template, or without a template the same rendered body. */
static int same_request(const struct msg *a, const struct msg *b)
{
    if (strcmp(a->rec->office, b->rec->office) != 0)
        return 0;
    if ((a->campaign == NULL) != (b->campaign == NULL) ||
        (a->campaign != NULL && strcmp(a->campaign, b->campaign) != 0))
        return 0;
    if ((a->template_id == NULL) != (b->template_id == NULL))
        return 0;
    if (a->template_id != NULL)
        return strcmp(a->template_id, b->template_id) == 0;
    return strcmp(a->body, b->body) == 0;
}

/* ---- building a mail send request ------------------------------------------------------ */

/* Expand the one-click URL template for m into a new string (caller frees with free()), or
 * NULL on NOMEM or an encoding failure. */
static char *unsub_url(struct sg *s, const struct msg *m)
{
    const char *t = s->cfg.unsub_url;
    char group[24];
    size_t cap = strlen(t) + 1, n = 0;
    snprintf(group, sizeof(group), "%lld", (long long)m->group);
    const char *vals[4] = {m->rec->office, m->rec->key, m->campaign ? m->campaign : "", group};
    static const char *const names[4] = {"{office}", "{key}", "{campaign}", "{group}"};
    size_t longest = 0;
    for (size_t i = 0; i < 4; i++)
        longest = strlen(vals[i]) > longest ? strlen(vals[i]) : longest;
    for (const char *b = strchr(t, '{'); b != NULL; b = strchr(b + 1, '{'))
        cap += longest * 3; /* each placeholder percent-encoded at most triples */
    char *out = malloc(cap);
    char *enc = malloc(cap);
    if (out == NULL || enc == NULL)
        goto fail;
    while (*t != '\0') {
        size_t i;
        for (i = 0; i < 4; i++)
            if (strncmp(t, names[i], strlen(names[i])) == 0)
                break;
        if (i < 4) {
            if (s->host->url_encode(vals[i], enc, cap) != ODSYNC_OK || n + strlen(enc) + 1 > cap)
                goto fail;
            memcpy(out + n, enc, strlen(enc));
            n += strlen(enc);
            t += strlen(names[i]);
        } else {
            if (n + 2 > cap)
                goto fail;
            out[n++] = *t++;
        }
    }
    out[n] = '\0';
    free(enc);
    return out;
fail:
    free(out);
    free(enc);
    return NULL;
}

/* The personalization of m: to, subject, dynamic data, custom args, headers. NULL on
 * NOMEM. Caller frees with cJSON_Delete. */
static cJSON *personalization(struct sg *s, const struct msg *m)
{
    cJSON *p = cJSON_CreateObject(), *to = NULL, *args, *rcpt;
    char *url = NULL;
    if (p == NULL || (to = cJSON_AddArrayToObject(p, "to")) == NULL ||
        (rcpt = cJSON_CreateObject()) == NULL)
        goto fail;
    cJSON_AddItemToArray(to, rcpt);
    if (cJSON_AddStringToObject(rcpt, "email", m->to) == NULL)
        goto fail;
    if (m->subject != NULL && m->subject[0] != '\0' &&
        cJSON_AddStringToObject(p, "subject", m->subject) == NULL)
        goto fail;
    if (m->template_id != NULL && m->tdata != NULL) {
        cJSON *d = cJSON_Duplicate(m->tdata, 1);
        if (d == NULL)
            goto fail;
        cJSON_AddItemToObject(p, "dynamic_template_data", d);
    }
    args = cJSON_AddObjectToObject(p, "custom_args");
    if (args == NULL || cJSON_AddStringToObject(args, CUSTOM_ARG_KEY, m->rec->key) == NULL ||
        cJSON_AddStringToObject(args, CUSTOM_ARG_OFFC, m->rec->office) == NULL)
        goto fail;
    if (m->unsub) {
        cJSON *h = cJSON_AddObjectToObject(p, "headers");
        size_t len;
        url = unsub_url(s, m);
        if (h == NULL || url == NULL)
            goto fail;
        len = strlen(url) + (s->cfg.unsub_mailto ? strlen(s->cfg.unsub_mailto) : 0) + 16;
        char *value = malloc(len);
        if (value == NULL)
            goto fail;
        if (s->cfg.unsub_mailto != NULL)
            snprintf(value, len, "<%s>, <mailto:%s>", url, s->cfg.unsub_mailto);
        else
            snprintf(value, len, "<%s>", url);
        cJSON *v = cJSON_AddStringToObject(h, "List-Unsubscribe", value);
        free(value);
        if (v == NULL || cJSON_AddStringToObject(h, "List-Unsubscribe-Post",
                                                 "List-Unsubscribe=One-Click") == NULL)
            goto fail;
    }
    free(url);
    return p;
fail:
    free(url);
    cJSON_Delete(p);
    return NULL;
}

/* The mail send body for members[0..n) of msgs (all same_request). Caller frees with free().
 * NULL on NOMEM. */
static char *mail_body(struct sg *s, struct msg *msgs, const size_t *members, size_t n)
{
    const struct msg *first = &msgs[members[0]];
    cJSON *root = cJSON_CreateObject(), *ps, *from, *o;
    char *text = NULL;
    if (root == NULL || (ps = cJSON_AddArrayToObject(root, "personalizations")) == NULL)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        cJSON *p = personalization(s, &msgs[members[i]]);
        if (p == NULL)
            goto cleanup;
        cJSON_AddItemToArray(ps, p);
    }
    from = cJSON_AddObjectToObject(root, "from");
    if (from == NULL || cJSON_AddStringToObject(from, "email", s->cfg.from_email) == NULL ||
        (s->cfg.from_name != NULL &&
         cJSON_AddStringToObject(from, "name", s->cfg.from_name) == NULL))
        goto cleanup;
    if (s->cfg.reply_to != NULL && ((o = cJSON_AddObjectToObject(root, "reply_to")) == NULL ||
                                    cJSON_AddStringToObject(o, "email", s->cfg.reply_to) == NULL))
        goto cleanup;
    if (first->template_id != NULL) {
        if (cJSON_AddStringToObject(root, "template_id", first->template_id) == NULL)
            goto cleanup;
    } else {
        cJSON *content = cJSON_AddArrayToObject(root, "content"), *c;
        if (content == NULL || (c = cJSON_CreateObject()) == NULL)
            goto cleanup;
        cJSON_AddItemToArray(content, c);
        if (cJSON_AddStringToObject(c, "type", "text/html") == NULL ||
            cJSON_AddStringToObject(c, "value", first->body) == NULL)
            goto cleanup;
    }
    if (first->group > 0) {
        cJSON *as = cJSON_AddObjectToObject(root, "asm");
        if (as == NULL || cJSON_AddNumberToObject(as, "group_id", (double)first->group) == NULL)
            goto cleanup;
        if (s->cfg.n_display > 0) {
            cJSON *d = cJSON_AddArrayToObject(as, "groups_to_display");
            if (d == NULL)
                goto cleanup;
            for (size_t i = 0; i < s->cfg.n_display; i++) {
                cJSON *num = cJSON_CreateNumber((double)s->cfg.display[i]);
                if (num == NULL)
                    goto cleanup;
                cJSON_AddItemToArray(d, num);
            }
        }
    }
    if (first->campaign != NULL && first->campaign[0] != '\0') {
        cJSON *cats = cJSON_AddArrayToObject(root, "categories"), *c;
        if (cats == NULL || (c = cJSON_CreateString(first->campaign)) == NULL)
            goto cleanup;
        cJSON_AddItemToArray(cats, c);
    }
    text = cJSON_PrintUnformatted(root);
cleanup:
    cJSON_Delete(root);
    return text;
}

/* ---- mail send results ----------------------------------------------------------------- */

/* The personalization index a SendGrid error field names ("personalizations.3.to.0.email"
 * -> 3), or -1. *rest: the field after the index ("to.0.email"), borrowed from field. */
static long field_index(const char *field, const char **rest)
{
    static const char pre[] = "personalizations.";
    char *end = NULL;
    *rest = NULL;
    if (field == NULL || strncmp(field, pre, sizeof(pre) - 1) != 0)
        return -1;
    const char *num = field + sizeof(pre) - 1;
    if (*num < '0' || *num > '9')
        return -1;
    long i = strtol(num, &end, 10);
    if (*end != '\0' && *end != '.')
        return -1;
    *rest = *end == '.' ? end + 1 : end;
    return i;
}

/* A 400: refuse the personalizations its errors name (PERMANENT); the others of the request
 * were not sent (RETRY). When an error names no personalization, or the body is not
 * SendGrid's error shape, every member is PERMANENT. */
static void report_400(struct sg *s, odsync_batch *batch, struct msg *msgs, const size_t *members,
                       size_t n, const struct odsync_http_response *resp, struct pause *p)
{
    struct outcome o;
    char ex[EXCERPT_MAX + 8];
    char **why = calloc(n, sizeof(*why));
    int attributed = 1, any = 0;
    cJSON *json = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(json, "errors"), *e;

    outcome_of(s, ODSYNC_PERMANENT, resp, "", &o);
    o.cls = ODSYNC_PERMANENT;
    if (why == NULL || !cJSON_IsArray(errs) || cJSON_GetArraySize(errs) == 0)
        attributed = 0;
    cJSON_ArrayForEach(e, errs)
    {
        const char *rest, *msg = str_member(e, "message");
        long i = field_index(str_member(e, "field"), &rest);
        if (!attributed)
            break;
        if (i < 0 || (size_t)i >= n || msg == NULL) {
            attributed = 0;
            break;
        }
        if (why[i] != NULL)
            continue; /* the first error of a personalization is its detail */
        why[i] = malloc(DETAIL_MAX);
        if (why[i] == NULL) {
            attributed = 0;
            break;
        }
        excerpt(msg, ex, sizeof(ex));
        snprintf(why[i], DETAIL_MAX, "HTTP 400: %s%s%s", rest[0] ? rest : "", rest[0] ? ": " : "",
                 ex);
        any = 1;
    }
    for (size_t i = 0; i < n; i++) {
        struct msg *m = &msgs[members[i]];
        if (!attributed || !any)
            report_outcome(s, batch, m, &o, p);
        else if (why[i] != NULL)
            report(s, batch, m, ODSYNC_PERMANENT, -1, NULL, why[i]);
        else
            report(s, batch, m, ODSYNC_RETRY, -1, NULL,
                   "not sent: another message of the same request was refused (HTTP 400)");
    }
    for (size_t i = 0; why != NULL && i < n; i++)
        free(why[i]);
    free(why);
    cJSON_Delete(json);
}

/* Send members[0..n) of msgs in one mail send request and report each. */
static void send_group(struct sg *s, odsync_batch *batch, struct msg *msgs, const size_t *members,
                       size_t n, struct pause *p)
{
    struct odsync_http_response *resp = NULL;
    struct outcome o = {.cls = ODSYNC_NOMEM, .retry_after_ms = -1, .detail = "out of memory"};
    char *url = NULL, *body = NULL, id[MSG_ID_MAX + 16];
    size_t ulen = strlen(s->cfg.base_url) + URL_EXTRA;
    const struct msg *first = &msgs[members[0]];
    int rc;

    url = malloc(ulen);
    body = mail_body(s, msgs, members, n);
    if (url == NULL || body == NULL) {
        for (size_t i = 0; i < n; i++)
            report_outcome(s, batch, &msgs[members[i]], &o, p);
        goto cleanup;
    }
    snprintf(url, ulen, "%s/v3/mail/send", s->cfg.base_url);
    rc = request(s, "POST", url, body, &resp);
    s->host->counter_add(s->ctx, "mail_requests", 1);
    if (resp != NULL && resp->error == NULL && resp->status >= 200 && resp->status < 300) {
        const char *xid = s->host->http_header(resp, "X-Message-Id");
        s->last_status = resp->status;
        s->last_class = ODSYNC_OK;
        if (xid != NULL && (xid[0] == '\0' || strlen(xid) > MSG_ID_MAX || strchr(xid, '#')))
            xid = NULL;
        if (xid == NULL)
            s->host->log(s->ctx, ODSYNC_LOG_WARN,
                         "mail send answered HTTP %d without a usable X-Message-Id; %zu "
                         "messages accepted without a remote id",
                         (int)resp->status, n);
        for (size_t i = 0; i < n; i++) {
            if (xid != NULL && n == 1)
                snprintf(id, sizeof(id), "%s", xid);
            else if (xid != NULL)
                snprintf(id, sizeof(id), "%s#%zu", xid, i);
            report(s, batch, &msgs[members[i]], ODSYNC_OK, -1, xid != NULL ? id : NULL, NULL);
        }
    } else if (resp != NULL && resp->error == NULL && resp->status == 400) {
        report_400(s, batch, msgs, members, n, resp, p);
        s->last_status = 400;
        s->last_class = ODSYNC_PERMANENT;
    } else {
        outcome_of(s, rc, resp, "", &o);
        for (size_t i = 0; i < n; i++)
            report_outcome(s, batch, &msgs[members[i]], &o, p);
    }
    s->host->log(s->ctx, ODSYNC_LOG_DEBUG,
                 "mail send: %zu message(s), office %s, campaign %s, %s -> HTTP %d %s", n,
                 first->rec->office, first->campaign ? first->campaign : "-",
                 first->template_id ? "template" : "content", s->last_status,
                 odsync_status_name(s->last_class));
cleanup:
    s->host->http_free(resp);
    free(url);
    free(body);
}

/* ---- the suppression pre-check --------------------------------------------------------- */

/* Sorted distinct addresses of the messages still to send, borrowed from msgs. */
struct addr_set {
    char **v;
    unsigned char *hit; /* per address: bit 1 global, 2 bounce, 4 spam report */
    size_t n;
};

static int addr_set_build(struct msg *msgs, size_t count, struct addr_set *set)
{
    size_t n = 0;
    memset(set, 0, sizeof(*set));
    set->v = malloc((count ? count : 1) * sizeof(*set->v));
    set->hit = calloc(count ? count : 1, 1);
    if (set->v == NULL || set->hit == NULL)
        return ODSYNC_NOMEM;
    for (size_t i = 0; i < count; i++)
        if (!msgs[i].done)
            set->v[n++] = msgs[i].addr;
    qsort(set->v, n, sizeof(*set->v), cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || strcmp(set->v[w - 1], set->v[i]) != 0)
            set->v[w++] = set->v[i];
    set->n = w;
    return ODSYNC_OK;
}

static void addr_set_free(struct addr_set *set)
{
    free(set->v);
    free(set->hit);
    memset(set, 0, sizeof(*set));
}

/* Index of addr (any case) in set, or -1. */
static long addr_find(const struct addr_set *set, const char *addr)
{
    char *lc = lower_dup(addr);
    long at = -1;
    if (lc == NULL)
        return -1;
    char **found = bsearch(&lc, set->v, set->n, sizeof(*set->v), cmp_str);
    if (found != NULL)
        at = (long)(found - set->v);
    free(lc);
    return at;
}

/* Read one suppression list ("unsubscribes", "bounces", "spam_reports"), page by page, and
 * mark the set's addresses found in it with bit. Returns 1, or 0 with *o saying why. */
static int read_list(struct sg *s, const char *list, unsigned char bit, struct addr_set *set,
                     struct outcome *o)
{
    size_t ulen = strlen(s->cfg.base_url) + URL_EXTRA;
    char *url = malloc(ulen), prefix[64];
    int ok = 0;
    snprintf(prefix, sizeof(prefix), "suppression check (%s): ", list);
    if (url == NULL) {
        *o = (struct outcome){.cls = ODSYNC_NOMEM, .retry_after_ms = -1};
        snprintf(o->detail, sizeof(o->detail), "%sout of memory", prefix);
        return 0;
    }
    for (int page = 0; page < LIST_MAX_PAGES; page++) {
        struct odsync_http_response *resp = NULL;
        snprintf(url, ulen, "%s/v3/suppression/%s?limit=%d&offset=%d", s->cfg.base_url, list,
                 LIST_PAGE, page * LIST_PAGE);
        int rc = request(s, "GET", url, NULL, &resp);
        if (resp == NULL || resp->error != NULL || resp->status != 200) {
            outcome_of(s, rc, resp, prefix, o);
            if (o->cls == ODSYNC_OK || o->cls == ODSYNC_PERMANENT)
                o->cls = ODSYNC_RETRY; /* a 2xx other than 200, a 404: try again later */
            s->host->http_free(resp);
            goto cleanup;
        }
        s->last_status = 200;
        s->last_class = ODSYNC_OK;
        cJSON *arr = cJSON_ParseWithLength(resp->body, resp->body_len), *e;
        s->host->http_free(resp);
        if (!cJSON_IsArray(arr)) {
            cJSON_Delete(arr);
            *o = (struct outcome){.cls = ODSYNC_RETRY, .status = 200, .retry_after_ms = -1};
            snprintf(o->detail, sizeof(o->detail), "%sHTTP 200 without a JSON array", prefix);
            goto cleanup;
        }
        int size = cJSON_GetArraySize(arr);
        cJSON_ArrayForEach(e, arr)
        {
            const char *email = str_member(e, "email");
            long at = email != NULL ? addr_find(set, email) : -1;
            if (at >= 0)
                set->hit[at] |= bit;
        }
        cJSON_Delete(arr);
        if (size < LIST_PAGE) {
            ok = 1;
            goto cleanup;
        }
    }
    s->host->log(s->ctx, ODSYNC_LOG_WARN,
                 "suppression list %s: more than %d entries; checked "
                 "the first %d",
                 list, LIST_PAGE * LIST_MAX_PAGES, LIST_PAGE * LIST_MAX_PAGES);
    ok = 1;
cleanup:
    free(url);
    return ok;
}

/* Ask SendGrid which addresses of messages in group g are suppressed there, and mark those
 * messages. Returns 1, or 0 with *o saying why. */
static int search_group(struct sg *s, struct msg *msgs, size_t count, int64_t g, struct outcome *o)
{
    size_t ulen = strlen(s->cfg.base_url) + URL_EXTRA;
    char *url = malloc(ulen), *body = NULL, prefix[64];
    cJSON *req = cJSON_CreateObject(), *list, *arr = NULL, *e;
    struct odsync_http_response *resp = NULL;
    int ok = 0, rc;

    snprintf(prefix, sizeof(prefix), "suppression check (group %lld): ", (long long)g);
    *o = (struct outcome){.cls = ODSYNC_NOMEM, .retry_after_ms = -1};
    snprintf(o->detail, sizeof(o->detail), "%sout of memory", prefix);
    if (url == NULL || req == NULL ||
        (list = cJSON_AddArrayToObject(req, "recipient_emails")) == NULL)
        goto cleanup;
    for (size_t i = 0; i < count; i++) {
        cJSON *a;
        if (msgs[i].done || msgs[i].group != g)
            continue;
        if ((a = cJSON_CreateString(msgs[i].addr)) == NULL)
            goto cleanup;
        cJSON_AddItemToArray(list, a);
    }
    if ((body = cJSON_PrintUnformatted(req)) == NULL)
        goto cleanup;
    snprintf(url, ulen, "%s/v3/asm/groups/%lld/suppressions/search", s->cfg.base_url, (long long)g);
    rc = request(s, "POST", url, body, &resp);
    if (resp == NULL || resp->error != NULL || resp->status != 200) {
        outcome_of(s, rc, resp, prefix, o);
        if (o->cls == ODSYNC_OK || o->cls == ODSYNC_PERMANENT)
            o->cls = ODSYNC_RETRY;
        goto cleanup;
    }
    arr = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!cJSON_IsArray(arr)) {
        *o = (struct outcome){.cls = ODSYNC_RETRY, .status = 200, .retry_after_ms = -1};
        snprintf(o->detail, sizeof(o->detail), "%sHTTP 200 without a JSON array", prefix);
        goto cleanup;
    }
    cJSON_ArrayForEach(e, arr)
    {
        if (!cJSON_IsString(e))
            continue;
        char *lc = lower_dup(e->valuestring);
        if (lc == NULL)
            goto cleanup;
        for (size_t i = 0; i < count; i++)
            if (!msgs[i].done && msgs[i].group == g && msgs[i].suppressed == NULL &&
                strcmp(msgs[i].addr, lc) == 0)
                msgs[i].suppressed = "unsubscribe group";
        free(lc);
    }
    ok = 1;
cleanup:
    s->host->http_free(resp);
    cJSON_Delete(arr);
    cJSON_Delete(req);
    free(body);
    free(url);
    return ok;
}

/* Check the unsent messages against SendGrid's suppression lists; report the suppressed
 * ones OPTED_OUT. On a failed check every unsent message gets the failure's class (nothing is
 * sent unchecked) and the pause is set as a send would. */
static void check_suppressions(struct sg *s, odsync_batch *batch, struct msg *msgs, size_t count,
                               struct pause *p)
{
    static const struct {
        const char *list;
        unsigned char bit;
    } lists[] = {{"unsubscribes", 1}, {"spam_reports", 4}, {"bounces", 2}};
    struct addr_set set;
    struct outcome o = {
        .cls = ODSYNC_NOMEM, .retry_after_ms = -1, .detail = "suppression check: out of memory"};
    int ok = addr_set_build(msgs, count, &set) == ODSYNC_OK;
    size_t suppressed = 0;

    for (size_t l = 0; ok && set.n > 0 && l < sizeof(lists) / sizeof(lists[0]); l++)
        ok = read_list(s, lists[l].list, lists[l].bit, &set, &o);
    for (size_t i = 0; ok && i < count; i++) {
        if (msgs[i].done || msgs[i].group <= 0)
            continue;
        int seen = 0; /* one search per distinct group */
        for (size_t j = 0; j < i && !seen; j++)
            seen = !msgs[j].done && msgs[j].group == msgs[i].group;
        if (!seen)
            ok = search_group(s, msgs, count, msgs[i].group, &o);
    }
    for (size_t i = 0; i < count; i++) {
        struct msg *m = &msgs[i];
        char detail[DETAIL_MAX];
        if (m->done)
            continue;
        if (!ok) {
            report_outcome(s, batch, m, &o, p);
            continue;
        }
        long at = addr_find(&set, m->addr);
        unsigned char hit = at >= 0 ? set.hit[at] : 0;
        const char *why = hit & 1                 ? "global unsubscribe"
                          : m->suppressed != NULL ? m->suppressed
                          : hit & 4               ? "spam report"
                          : hit & 2               ? "bounce"
                                                  : NULL;
        if (why == NULL)
            continue;
        if (strcmp(why, "unsubscribe group") == 0)
            snprintf(detail, sizeof(detail),
                     ODSYNC_OPTED_OUT_CAMPAIGN "suppressed at SendGrid: unsubscribe group %lld",
                     (long long)m->group);
        else
            snprintf(detail, sizeof(detail), "suppressed at SendGrid: %s", why);
        report(s, batch, m, ODSYNC_OPTED_OUT, -1, NULL, detail);
        suppressed++;
    }
    if (suppressed > 0)
        s->host->log(s->ctx, ODSYNC_LOG_INFO,
                     "suppression check: %zu message(s) not sent (suppressed at SendGrid)",
                     suppressed);
    addr_set_free(&set);
}

/* ---- callbacks ------------------------------------------------------------------------- */

static int sg_create(const struct odsync_host *host, odsync_host_ctx *ctx, void **instance)
{
    struct sg *s = calloc(1, sizeof(*s));
    int rc;
    if (s == NULL) {
        host->set_error(ctx, "out of memory");
        return ODSYNC_NOMEM;
    }
    s->host = host;
    s->ctx = ctx;
    s->last_class = -1;
    rc = sg_config_load(host, ctx, &s->cfg);
    if (rc != ODSYNC_OK) {
        free(s);
        return rc;
    }
    size_t alen = strlen(s->cfg.api_key) + 8;
    s->authorization = malloc(alen);
    if (s->authorization == NULL) {
        host->set_error(ctx, "out of memory");
        sg_config_free(&s->cfg);
        free(s);
        return ODSYNC_NOMEM;
    }
    snprintf(s->authorization, alen, "Bearer %s", s->cfg.api_key);
    if (s->cfg.asm_default == 0 && s->cfg.n_groups == 0)
        host->log(ctx, ODSYNC_LOG_WARN,
                  "no unsubscribe group configured (asm_group_id, asm_groups): recipients "
                  "can only unsubscribe from everything");
    *instance = s;
    return ODSYNC_OK;
}

/* Send records[0..count): parse, optionally check suppressions, then one request per group
 * of messages that can share one. */
static int sg_send_batch(void *instance, odsync_batch *batch,
                         const struct odsync_record *const *records, size_t count)
{
    struct sg *s = instance;
    struct pause p = {.cls = ODSYNC_OK, .retry_after_ms = -1};
    struct msg *msgs = calloc(count ? count : 1, sizeof(*msgs));
    size_t *members = malloc((count ? count : 1) * sizeof(*members));
    int rc = ODSYNC_OK;

    if (msgs == NULL || members == NULL) {
        rc = ODSYNC_NOMEM; /* every item is reported NOMEM by the host */
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++)
        parse_msg(s, batch, i, records[i], &msgs[i]);
    if (s->cfg.check_suppressions)
        check_suppressions(s, batch, msgs, count, &p);
    for (size_t i = 0; i < count; i++) {
        size_t n = 0;
        if (msgs[i].done || msgs[i].grouped)
            continue;
        if (p.cls != ODSYNC_OK) {
            report_paused(s, batch, &msgs[i], &p);
            continue;
        }
        for (size_t j = i; j < count && n < s->cfg.batch_size; j++) {
            if (!msgs[j].done && !msgs[j].grouped && same_request(&msgs[i], &msgs[j])) {
                msgs[j].grouped = 1;
                members[n++] = j;
            }
        }
        send_group(s, batch, msgs, members, n, &p);
    }
cleanup:
    for (size_t i = 0; msgs != NULL && i < count; i++) {
        cJSON_Delete(msgs[i].json);
        free(msgs[i].addr);
    }
    free(msgs);
    free(members);
    return rc;
}

static int sg_health(void *instance, char *detail, size_t detail_len)
{
    struct sg *s = instance;
    if (s->last_class < 0) {
        snprintf(detail, detail_len, "no request yet");
        return ODSYNC_OK;
    }
    snprintf(detail, detail_len, "last request: HTTP %d (%s)", s->last_status,
             odsync_status_name(s->last_class));
    return s->last_class == ODSYNC_OK ? ODSYNC_OK : s->last_class;
}

static void sg_destroy(void *instance)
{
    struct sg *s = instance;
    if (s == NULL)
        return;
    wipe(s->authorization);
    free(s->authorization);
    sg_config_free(&s->cfg);
    free(s);
}

static const char sg_setup[] =
    "In SendGrid, before the first send:\n"
    "1. Sender authentication: authenticate the domain of from_email (Settings > Sender\n"
    "   Authentication): the CNAME records SendGrid gives (DKIM, return-path/SPF) in your DNS,\n"
    "   and a DMARC record (at least \"v=DMARC1; p=none; rua=mailto:...\") for that domain.\n"
    "   Gmail and Yahoo refuse bulk mail without SPF, DKIM and DMARC (R20).\n"
    "2. API key (Settings > API Keys): restricted access with Mail Send: Full Access; add\n"
    "   Suppressions: Read Access when check_suppressions is true. Give it to odsync as\n"
    "   api_key = \"${SENDGRID_API_KEY}\" or \"file:/path\".\n"
    "3. Unsubscribe groups, one per purpose (R20): e.g. \"Recall reminders\", \"We miss you\"\n"
    "   (reactivation), \"Review requests\". Put their ids in asm_groups\n"
    "   (\"recall=ID,reactivation=ID,review=ID\") and, to show them on the preference page,\n"
    "   groups_to_display. A recipient who leaves one group keeps getting the others.\n"
    "4. Dynamic templates (Email API > Dynamic Templates), optional: one per campaign, using\n"
    "   only {{first_name}} {{practice_name}} {{practice_phone}} {{appointment_date}}\n"
    "   {{appointment_time}} {{booking_link}} {{review_link}} {{opt_out}}, a subject, the\n"
    "   practice's postal address and {{{unsubscribe}}} in the footer (CAN-SPAM, R19). Set\n"
    "   their d-... ids in templates (\"recall=d-...,review=d-...\"). Without a template a\n"
    "   message is sent with odsync's rendered subject and HTML body.\n"
    "5. One-click unsubscribe (RFC 8058, R20): set list_unsubscribe_url to an https URL that\n"
    "   unsubscribes on POST (placeholders {office} {key} {campaign} {group}); the\n"
    "   List-Unsubscribe and List-Unsubscribe-Post headers are then added to every campaign\n"
    "   not listed in transactional_campaigns.\n"
    "6. Event Webhook (Settings > Mail Settings > Event Webhook): HTTP POST URL\n"
    "   {public_url}/webhooks/sendgrid/{office}/events (one per office; {public_url} is\n"
    "   odsync's events.public_url); select at least Dropped, Delivered, Bounced, Spam\n"
    "   Reports, Unsubscribes, Group Unsubscribes and Group Resubscribes; turn Signed Event\n"
    "   Webhook Requests ON and give odsync the Verification Key SendGrid then shows (the\n"
    "   base64 DER ECDSA P-256 public key, \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...\").\n"
    "   Events carry custom_args odsync_key and odsync_office, which map them to messages.\n";

ODSYNC_SINK_DEFINE(.name = "sendgrid", .version = "1.0.0",
                   .description = "SendGrid email: dynamic templates, unsubscribe groups, "
                                  "one-click unsubscribe, suppression pre-check",
                   .capabilities = ODSYNC_CAP_EMAIL, .max_batch = SG_MAX_PERSONALIZATIONS,
                   .config = sg_config_spec, .create = sg_create, .send_batch = sg_send_batch,
                   .flush = NULL, .health = sg_health, .destroy = sg_destroy, .setup = sg_setup)
