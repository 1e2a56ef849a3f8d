/*
 * twilio.c: the Twilio SMS connector ("twilio"). Request logic only; settings are in
 * twilio_config.c, numbers and error texts in twilio_phone.c. README.md documents the wire
 * format and the result mapping:
 *
 *   POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json
 *   Authorization: Basic base64(AccountSid:AuthToken | ApiKeySid:ApiKeySecret)
 *   Content-Type: application/x-www-form-urlencoded
 *   To=…&From=…|MessagingServiceSid=…&Body=…[&StatusCallback={prefix}/{office}/status/{key}]
 *
 * One request per message: Twilio has no batch send. All HTTP goes through the host's
 * services table. Phone numbers and message bodies are patient data: they are never logged
 * and never copied into a result detail; details name the HTTP status and Twilio's error code,
 * with any digits Twilio's message may echo masked.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <odsync/sink.h>

#include "twilio.h"

#define DETAIL_MAX    256 /* bytes of a result detail, NUL included */
#define EXCERPT_MAX   160 /* bytes of Twilio's error message quoted in a detail */
#define REMOTE_ID_MAX 64  /* a longer "sid" is not taken as a remote id */

/* Error codes with a fixed meaning (https://www.twilio.com/docs/api/errors). */
#define TW_AUTH_FAILED   20003 /* 401: authentication failed */
#define TW_TOO_MANY      20429 /* 429: too many requests, never processed */
#define TW_INVALID_TO    21211 /* 400: invalid 'To' number */
#define TW_UNSUBSCRIBED  21610 /* 400: the recipient replied STOP to this sender */
#define TW_NOT_MOBILE_TO 21614 /* 400: 'To' is not a valid mobile number */

struct twilio {
    const struct odsync_host *host; /* borrowed, valid until destroy */
    odsync_host_ctx *ctx;           /* borrowed, valid until destroy */
    struct twilio_config cfg;       /* owned */
    char *messages_url;             /* owned: {base_url}/2010-04-01/Accounts/{sid}/Messages.json */
    char *authorization;            /* owned "Basic …"; wiped on destroy */
    int last_status;                /* HTTP status of the last request (0: transport error) */
    int last_class;                 /* its result class; -1 before the first request */
};

/* Set when an answer says the whole instance must wait (429 or 401/403): the rest of the
 * send_batch call is not sent and its items get the same class. */
struct pause {
    int cls; /* ODSYNC_OK = not paused */
    int64_t retry_after_ms;
    int status;
};

/* What one answer means for its message. */
struct outcome {
    int cls;
    int64_t retry_after_ms;
    char remote_id[REMOTE_ID_MAX + 1]; /* "" = none */
    char detail[DETAIL_MAX];           /* "" = none */
};

/* One message record, parsed. Strings borrowed from json (valid while it lives). */
struct message {
    cJSON *json;      /* owned */
    const char *body; /* the rendered text */
    char to[TWILIO_E164_MAX + 1];
};

/* ---- small helpers --------------------------------------------------------------------- */

/* Overwrite s (may hold a credential) before it is freed. */
static void wipe(char *s)
{
    if (s == NULL)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
}

/* Standard base64 of in[0..n) into a new string. Caller frees with free(); NULL on NOMEM. */
static char *base64(const char *in, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(unsigned char)in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* in percent-encoded with the host's url_encode into a new string. Caller frees with free();
 * NULL on NOMEM or when the host refuses. */
static char *encode(const struct twilio *t, const char *in)
{
    size_t len = strlen(in) * 3 + 1;
    char *out = malloc(len);
    if (out != NULL && t->host->url_encode(in, out, len) != ODSYNC_OK) {
        free(out);
        out = NULL;
    }
    return out;
}

/* 1 when resp's status is 2xx. */
static int success(const struct odsync_http_response *resp)
{
    return resp->status >= 200 && resp->status <= 299;
}

/* The integer "code" of a Twilio error body, or 0. */
static int error_code(const cJSON *json)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(json, "code");
    if (!cJSON_IsNumber(code) || code->valuedouble < 1 || code->valuedouble > 999999)
        return 0;
    return (int)code->valuedouble;
}

/* ---- answers --------------------------------------------------------------------------- */

/* A 2xx answer: OK, with the message sid as remote id when the body carries one. A 2xx whose
 * body is unreadable (truncated JSON, an HTML page) still means Twilio created the message,
 * so it is OK without a remote id: retrying would text the patient twice. */
static void outcome_accepted(struct twilio *t, const cJSON *json,
                             const struct odsync_http_response *resp, struct outcome *o)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(json, "sid");
    o->cls = ODSYNC_OK;
    if (cJSON_IsString(sid) && strlen(sid->valuestring) <= REMOTE_ID_MAX &&
        (strncmp(sid->valuestring, "SM", 2) == 0 || strncmp(sid->valuestring, "MM", 2) == 0)) {
        snprintf(o->remote_id, sizeof(o->remote_id), "%s", sid->valuestring);
        return;
    }
    snprintf(o->detail, sizeof(o->detail),
             "accepted (HTTP %d) but the answer carried no message sid", (int)resp->status);
    t->host->log(t->ctx, ODSYNC_LOG_WARN,
                 "HTTP %d without a readable message sid: counted as sent, not resent",
                 (int)resp->status);
}

/* A non-2xx answer: the class from Twilio's error code, else from the HTTP status. */
static void outcome_refused(struct twilio *t, const cJSON *json,
                            const struct odsync_http_response *resp, struct outcome *o)
{
    char msg[EXCERPT_MAX + 8] = "";
    int code = cJSON_IsObject(json) ? error_code(json) : 0;
    int status = resp->status;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "message");

    if (cJSON_IsString(m))
        twilio_scrub_message(m->valuestring, EXCERPT_MAX, msg, sizeof(msg));
    if (code == TW_UNSUBSCRIBED) {
        o->cls = ODSYNC_OPTED_OUT;
        snprintf(o->detail, sizeof(o->detail), "Twilio 21610: recipient has opted out");
    } else if (code == TW_INVALID_TO) {
        o->cls = ODSYNC_PERMANENT;
        snprintf(o->detail, sizeof(o->detail), "Twilio 21211: invalid 'To' phone number");
    } else if (code == TW_NOT_MOBILE_TO) {
        o->cls = ODSYNC_PERMANENT;
        snprintf(o->detail, sizeof(o->detail), "Twilio 21614: 'To' is not a valid mobile number");
    } else if (status == 429 || code == TW_TOO_MANY) {
        o->cls = ODSYNC_RATE_LIMITED;
        o->retry_after_ms = resp->retry_after_ms;
        snprintf(o->detail, sizeof(o->detail), "Twilio %d: too many requests (HTTP %d)",
                 code != 0 ? code : TW_TOO_MANY, status);
    } else if (status == 401 || code == TW_AUTH_FAILED) {
        o->cls = ODSYNC_AUTH;
        snprintf(o->detail, sizeof(o->detail), "Twilio %d: authentication failed (HTTP %d)",
                 code != 0 ? code : TW_AUTH_FAILED, status);
    } else {
        /* 403 AUTH, 408 and 5xx RETRY, other 4xx and 3xx PERMANENT. */
        o->cls = t->host->status_class(status);
        if (o->cls == ODSYNC_RATE_LIMITED)
            o->retry_after_ms = resp->retry_after_ms;
        if (code != 0 && msg[0] != '\0')
            snprintf(o->detail, sizeof(o->detail), "Twilio %d: %s (HTTP %d)", code, msg, status);
        else if (code != 0)
            snprintf(o->detail, sizeof(o->detail), "Twilio %d (HTTP %d)", code, status);
        else
            snprintf(o->detail, sizeof(o->detail), "HTTP %d%s", status,
                     json == NULL ? " (not a JSON answer)" : "");
    }
}

/* What an answer from host->http means. rc and resp are what http() gave. */
static void outcome_of(struct twilio *t, int rc, const struct odsync_http_response *resp,
                       struct outcome *o)
{
    char ex[EXCERPT_MAX + 8];
    cJSON *json = NULL;

    memset(o, 0, sizeof(*o));
    o->retry_after_ms = -1;
    if (resp == NULL) {
        o->cls = rc == ODSYNC_NOMEM ? ODSYNC_NOMEM : ODSYNC_PERMANENT;
        snprintf(o->detail, sizeof(o->detail), "%s",
                 rc == ODSYNC_NOMEM ? "out of memory"
                                    : "the host refused the request (invalid URL or header)");
        t->last_status = 0;
        t->last_class = o->cls;
        return;
    }
    t->last_status = resp->status;
    if (resp->status == 0 || resp->error != NULL) {
        /* No usable answer: transport failure (connect, reset, timeout) or an oversized one.
         * Twilio may or may not have the message; the host decides what a retry means. */
        o->cls = resp->result_class;
        o->retry_after_ms = resp->retry_after_ms;
        twilio_scrub_message(resp->error != NULL ? resp->error : "no response", EXCERPT_MAX, ex,
                             sizeof(ex));
        if (resp->status == 0)
            snprintf(o->detail, sizeof(o->detail), "transport error: %s", ex);
        else
            snprintf(o->detail, sizeof(o->detail), "HTTP %d: %s", (int)resp->status, ex);
        t->last_class = o->cls;
        return;
    }
    json = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (success(resp))
        outcome_accepted(t, json, resp, o);
    else
        outcome_refused(t, json, resp, o);
    t->last_class = o->cls;
    cJSON_Delete(json);
}

/* Report item idx, and pause the rest of the call when the class says the instance waits. */
static void report(struct twilio *t, odsync_batch *batch, size_t idx, const struct outcome *o,
                   struct pause *pause)
{
    t->host->result_set(batch, idx, o->cls, o->retry_after_ms,
                        o->remote_id[0] != '\0' ? o->remote_id : NULL,
                        o->detail[0] != '\0' ? o->detail : NULL);
    if (o->cls == ODSYNC_OK)
        t->host->counter_add(t->ctx, "messages_sent", 1);
    else if (o->cls == ODSYNC_OPTED_OUT)
        t->host->counter_add(t->ctx, "opted_out", 1);
    else
        t->host->counter_add(t->ctx, "items_failed", 1);
    if ((o->cls == ODSYNC_RATE_LIMITED || o->cls == ODSYNC_AUTH) && pause->cls == ODSYNC_OK) {
        pause->cls = o->cls;
        pause->retry_after_ms = o->retry_after_ms;
        pause->status = t->last_status;
    }
}

/* Report an item held back because an earlier answer paused the instance. */
static void report_paused(struct twilio *t, odsync_batch *batch, size_t idx,
                          const struct pause *pause)
{
    char detail[96];
    snprintf(detail, sizeof(detail), "not sent: HTTP %d earlier in this batch", pause->status);
    t->host->result_set(batch, idx, pause->cls, pause->retry_after_ms, NULL, detail);
}

/* Report an item refused before any request. detail: fixed text, no record content. */
static void report_local(struct twilio *t, odsync_batch *batch, size_t idx, int cls,
                         const char *detail)
{
    t->host->result_set(batch, idx, cls, -1, NULL, detail);
    t->host->counter_add(t->ctx, "items_failed", 1);
}

/* ---- records --------------------------------------------------------------------------- */

/* Parse rec into m (zeroed by the caller). Returns 1 when it can be sent; otherwise reports
 * why and returns 0. The caller frees m->json with cJSON_Delete either way. */
static int parse_message(struct twilio *t, odsync_batch *batch, size_t idx,
                         const struct odsync_record *rec, struct message *m)
{
    if (rec == NULL || rec->json == NULL) {
        report_local(t, batch, idx, ODSYNC_PERMANENT, "record has no JSON");
        return 0;
    }
    if (rec->kind != ODSYNC_KIND_MESSAGE) {
        char detail[64];
        snprintf(detail, sizeof(detail), "record kind %d is not supported", (int)rec->kind);
        report_local(t, batch, idx, ODSYNC_UNSUPPORTED, detail);
        return 0;
    }
    m->json = cJSON_ParseWithLength(rec->json, rec->json_len);
    if (!cJSON_IsObject(m->json)) {
        report_local(t, batch, idx, ODSYNC_PERMANENT, "record JSON is not an object");
        return 0;
    }
    return 1;
}

/* The fields of a parsed message: channel "sms", a valid recipient, a body. Returns 1 when
 * it can be sent; otherwise reports why and returns 0. */
static int check_message(struct twilio *t, odsync_batch *batch, size_t idx, struct message *m)
{
    const cJSON *channel = cJSON_GetObjectItemCaseSensitive(m->json, "channel");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(m->json, "to");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(m->json, "body");
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(m->json, "template_id");

    if (!cJSON_IsString(channel) || strcmp(channel->valuestring, "sms") != 0) {
        report_local(t, batch, idx, ODSYNC_UNSUPPORTED, "message channel is not \"sms\"");
        return 0;
    }
    if (!cJSON_IsString(to)) {
        report_local(t, batch, idx, ODSYNC_PERMANENT, "message has no recipient");
        return 0;
    }
    if (!twilio_normalize_phone(to->valuestring, m->to, sizeof(m->to))) {
        report_local(t, batch, idx, ODSYNC_PERMANENT,
                     "recipient phone number is invalid: neither international format nor a "
                     "US number");
        return 0;
    }
    if (!cJSON_IsString(body) || body->valuestring[0] == '\0') {
        if (cJSON_IsString(tmpl))
            report_local(t, batch, idx, ODSYNC_UNSUPPORTED,
                         "provider templates are not supported: the message needs a body");
        else
            report_local(t, batch, idx, ODSYNC_PERMANENT, "message has no body");
        return 0;
    }
    m->body = body->valuestring;
    return 1;
}

/* 1 when key can stand in a URL path as it is ([A-Za-z0-9:_.-]): odsync's keys can. */
static int path_safe(const char *key)
{
    size_t i;
    for (i = 0; key != NULL && key[i] != '\0'; i++)
        if (!isalnum((unsigned char)key[i]) && strchr(":_.-", key[i]) == NULL)
            return 0;
    return key != NULL && i > 0;
}

/* The form body of one message (caller frees with free()), or NULL on NOMEM. office and key:
 * the record's, for the status callback URL {prefix}/{office}/status/{key}, which lets the
 * callback find the message in odsync's send ledger (even one a crash left "unknown"). */
static char *form_body(const struct twilio *t, const struct message *m, const char *office,
                       const char *key)
{
    char *to = encode(t, m->to), *sender = NULL, *body = encode(t, m->body);
    char *cb = NULL, *cb_enc = NULL, *office_enc = NULL, *out = NULL;
    const char *sender_name = t->cfg.service_sid != NULL ? "MessagingServiceSid" : "From";

    sender = encode(t, t->cfg.service_sid != NULL ? t->cfg.service_sid : t->cfg.from);
    if (to == NULL || sender == NULL || body == NULL)
        goto cleanup;
    if (t->cfg.status_callback_url != NULL) {
        office_enc = encode(t, office);
        if (office_enc == NULL)
            goto cleanup;
        int with_key = path_safe(key);
        size_t cb_len = strlen(t->cfg.status_callback_url) + strlen(office_enc) + 16 +
                        (with_key ? strlen(key) + 1 : 0);
        cb = malloc(cb_len);
        if (cb == NULL)
            goto cleanup;
        snprintf(cb, cb_len, "%s/%s/status%s%s", t->cfg.status_callback_url, office_enc,
                 with_key ? "/" : "", with_key ? key : "");
        cb_enc = encode(t, cb);
        if (cb_enc == NULL)
            goto cleanup;
    }
    size_t len = strlen(to) + strlen(sender) + strlen(body) + (cb_enc ? strlen(cb_enc) : 0) + 64;
    out = malloc(len);
    if (out == NULL)
        goto cleanup;
    snprintf(out, len, "To=%s&%s=%s&Body=%s%s%s", to, sender_name, sender, body,
             cb_enc != NULL ? "&StatusCallback=" : "", cb_enc != NULL ? cb_enc : "");
cleanup:
    free(to);
    free(sender);
    free(body);
    free(office_enc);
    free(cb);
    free(cb_enc);
    return out;
}

/* Send one checked message and report its result. */
static void send_one(struct twilio *t, odsync_batch *batch, size_t idx,
                     const struct odsync_record *rec, const struct message *m, struct pause *pause)
{
    struct outcome o = {.cls = ODSYNC_NOMEM, .retry_after_ms = -1, .detail = "out of memory"};
    struct odsync_http_response *resp = NULL;
    const cJSON *office = cJSON_GetObjectItemCaseSensitive(m->json, "office");
    const char *office_id = rec->office != NULL      ? rec->office
                            : cJSON_IsString(office) ? office->valuestring
                                                     : "";
    char *form = form_body(t, m, office_id, rec->key);

    if (form == NULL)
        goto cleanup;
    const struct odsync_http_header headers[] = {
        {"Authorization", t->authorization},
        {"Content-Type", "application/x-www-form-urlencoded"},
        {"Accept", "application/json"},
    };
    const struct odsync_http_request req = {
        .struct_size = sizeof(req),
        .method = "POST",
        .url = t->messages_url,
        .headers = headers,
        .header_count = sizeof(headers) / sizeof(headers[0]),
        .body = form,
        .body_len = strlen(form),
        .timeout_ms = t->cfg.timeout_ms,
    };
    int rc = t->host->http(t->ctx, &req, &resp);
    t->host->counter_add(t->ctx, "requests", 1);
    outcome_of(t, rc, resp, &o);
    t->host->log(t->ctx, ODSYNC_LOG_DEBUG, "POST Messages.json for %s -> HTTP %d %s",
                 rec->key != NULL ? rec->key : "(no key)", t->last_status,
                 odsync_status_name(o.cls));
cleanup:
    report(t, batch, idx, &o, pause);
    t->host->http_free(resp);
    if (form != NULL)
        wipe(form); /* the body is patient data: do not leave it in freed memory */
    free(form);
}

/* ---- callbacks ------------------------------------------------------------------------- */

/* destroy: free an instance from twilio_create (wiping its credentials); accepts NULL. */
static void twilio_destroy(void *instance)
{
    struct twilio *t = instance;
    if (t == NULL)
        return;
    wipe(t->authorization);
    free(t->authorization);
    free(t->messages_url);
    twilio_config_free(&t->cfg);
    free(t);
}

/* The Basic credentials and the Messages URL of t (settings loaded). */
static int twilio_prepare(struct twilio *t)
{
    int rc = ODSYNC_NOMEM;
    size_t plain_len = strlen(t->cfg.auth_user) + strlen(t->cfg.auth_secret) + 2;
    char *plain = malloc(plain_len), *b64 = NULL;
    if (plain == NULL)
        goto cleanup;
    snprintf(plain, plain_len, "%s:%s", t->cfg.auth_user, t->cfg.auth_secret);
    b64 = base64(plain, strlen(plain));
    if (b64 == NULL)
        goto cleanup;
    size_t n = strlen("Basic ") + strlen(b64) + 1;
    t->authorization = malloc(n);
    if (t->authorization == NULL)
        goto cleanup;
    snprintf(t->authorization, n, "Basic %s", b64);
    n = strlen(t->cfg.base_url) + strlen(t->cfg.account_sid) + 48;
    t->messages_url = malloc(n);
    if (t->messages_url == NULL)
        goto cleanup;
    snprintf(t->messages_url, n, "%s/2010-04-01/Accounts/%s/Messages.json", t->cfg.base_url,
             t->cfg.account_sid);
    rc = ODSYNC_OK;
cleanup:
    wipe(plain);
    wipe(b64);
    free(plain);
    free(b64);
    return rc;
}

/* create: load the settings (host and ctx borrowed until destroy) and build the Basic header
 * and Messages URL. On success *instance is owned by the host, freed with twilio_destroy; on
 * failure everything is freed here and set_error says why. No request is made. */
static int twilio_create(const struct odsync_host *host, odsync_host_ctx *ctx, void **instance)
{
    struct twilio *t = NULL;
    int rc = ODSYNC_NOMEM;

    *instance = NULL;
    if (host == NULL || host->struct_size < ODSYNC_HOST_V1_0_SIZE)
        return ODSYNC_INTERNAL;
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    t->host = host;
    t->ctx = ctx;
    t->last_class = -1;
    rc = twilio_config_load(host, ctx, &t->cfg);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = twilio_prepare(t);
    if (rc != ODSYNC_OK) {
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    host->log(ctx, ODSYNC_LOG_INFO, "base_url %s, %s auth, sender %s, status callbacks %s",
              t->cfg.base_url, t->cfg.api_key ? "API key" : "auth token",
              t->cfg.service_sid != NULL ? "messaging service" : "from number",
              t->cfg.status_callback_url != NULL ? "on" : "off");
    *instance = t;
    t = NULL;
    rc = ODSYNC_OK;
cleanup:
    twilio_destroy(t);
    return rc;
}

/* send_batch: one request per message of records[0..count) (borrowed for the call), each
 * item reported with result_set; the rest of the call is held back after a 429 or 401. */
static int twilio_send_batch(void *instance, odsync_batch *batch,
                             const struct odsync_record *const *records, size_t count)
{
    struct twilio *t = instance;
    struct pause pause = {.cls = ODSYNC_OK, .retry_after_ms = -1};

    for (size_t i = 0; i < count; i++) {
        struct message m;
        memset(&m, 0, sizeof(m));
        if (parse_message(t, batch, i, records[i], &m) && check_message(t, batch, i, &m)) {
            if (pause.cls != ODSYNC_OK)
                report_paused(t, batch, i, &pause);
            else
                send_one(t, batch, i, records[i], &m, &pause);
        }
        cJSON_Delete(m.json);
    }
    return ODSYNC_OK;
}

/* health: the last request's status into detail (caller's buffer); its class as status. */
static int twilio_health(void *instance, char *detail, size_t detail_len)
{
    const struct twilio *t = instance;
    if (t->last_class < 0) {
        snprintf(detail, detail_len, "ok (no request yet)");
        return ODSYNC_OK;
    }
    if (t->last_class == ODSYNC_OK || t->last_class == ODSYNC_PERMANENT ||
        t->last_class == ODSYNC_OPTED_OUT) {
        /* PERMANENT and OPTED_OUT are about one message, not about the instance. */
        snprintf(detail, detail_len, "ok (last request: HTTP %d)", t->last_status);
        return ODSYNC_OK;
    }
    if (t->last_status == 0)
        snprintf(detail, detail_len, "last request: no response (%s)",
                 odsync_status_name(t->last_class));
    else
        snprintf(detail, detail_len, "last request: HTTP %d (%s)", t->last_status,
                 odsync_status_name(t->last_class));
    return t->last_class;
}

static const char twilio_setup[] =
    "In the Twilio Console (or API), for each practice:\n"
    "1. A sender: an SMS-capable number of the account (setting \"from\"), or better a\n"
    "   Messaging Service holding the practice's numbers (setting \"messaging_service_sid\",\n"
    "   MG...). US long codes must be registered for A2P 10DLC before they deliver.\n"
    "2. Inbound messages: set the number's (or the Messaging Service's) incoming-message\n"
    "   webhook to POST {public_url}/webhooks/twilio/{office}/sms, e.g.\n"
    "   https://odsync.example.com/webhooks/twilio/main-st/sms, so STOP/START replies reach\n"
    "   odsync's consent ledger. odsync verifies X-Twilio-Signature with the auth token: the\n"
    "   URL must be the exact public URL Twilio calls.\n"
    "3. Delivery status: set \"status_callback_url\" to {public_url}/webhooks/twilio; each\n"
    "   message then asks for callbacks at {public_url}/webhooks/twilio/{office}/status/{key}.\n"
    "4. Opt-out: enable Advanced Opt-Out on the Messaging Service (recommended): Twilio then\n"
    "   answers STOP/START/HELP itself, adds OptOutType to the inbound webhook and refuses\n"
    "   sends to opted-out numbers with error 21610, which odsync records as an opt-out.\n"
    "5. Credentials: the Account SID (AC...) and its Auth Token, or an API key (SK... and its\n"
    "   secret; the Auth Token is still needed by odsync's webhook endpoints to check\n"
    "   signatures). Put them in the environment or a file, never in the config.\n"
    "6. A BAA with Twilio: phone numbers and message text sent to Twilio are PHI.";

ODSYNC_SINK_DEFINE(.name = "twilio", .version = "1.0.0",
                   .description = "Twilio Programmable Messaging: one SMS per message record, "
                                  "Basic auth, opt-outs (21610) reported to the consent ledger",
                   .max_batch = TWILIO_MAX_BATCH, .capabilities = ODSYNC_CAP_SMS,
                   .config = twilio_config_spec, .create = twilio_create,
                   .send_batch = twilio_send_batch, .health = twilio_health,
                   .destroy = twilio_destroy, .setup = twilio_setup)
