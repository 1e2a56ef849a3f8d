/*
 * webhooks.c: Twilio inbound SMS and status callbacks, SendGrid Event Webhook — verified,
 * then recorded in the consent ledger and the send ledger.
 */
#include "webhooks.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include "campaign.h"
#include "consent.h"
#include "ledger.h"
#include "log.h"
#include "od_writer.h"
#include "util.h"

#define ROUTE        "/webhooks/"
#define MAX_FIELDS   64
#define KEY_MAX      160
#define NOTE_MAX     256
#define MAX_PATIENTS 16
#define TWIML        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"

struct webhooks {
    const struct config *cfg;
    struct store *st;
    pthread_mutex_t lock; /* the connection serves one request at a time */
};

/* One decoded form field. */
struct field {
    char *name, *value;
};

struct form {
    struct field f[MAX_FIELDS];
    size_t n;
};

int webhooks_create(const struct config *cfg, const char *store_path, struct webhooks **out,
                    char *err, size_t errlen)
{
    struct webhooks *w = util_calloc(1, sizeof(*w));
    int rc;
    *out = NULL;
    if (w == NULL)
        return ODSYNC_NOMEM;
    w->cfg = cfg;
    pthread_mutex_init(&w->lock, NULL);
    rc = store_open(store_path, &w->st, err, errlen);
    if (rc != ODSYNC_OK) {
        webhooks_destroy(w);
        return rc;
    }
    *out = w;
    return ODSYNC_OK;
}

void webhooks_destroy(struct webhooks *w)
{
    if (w == NULL)
        return;
    store_close(w->st);
    pthread_mutex_destroy(&w->lock);
    util_free(w);
}

int webhooks_route(const char *path)
{
    return path != NULL && strncmp(path, ROUTE, strlen(ROUTE)) == 0;
}

/* ---- forms and signatures ----------------------------------------------------------- */

/* Value of a hex digit, or -1. */
static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) ('+' is a space) into a new string; NULL on a bad escape or NOMEM. */
static char *form_decode(const char *s, size_t n)
{
    char *out = util_malloc(n + 1);
    size_t i, o = 0;
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                util_free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static void form_clear(struct form *f)
{
    size_t i;
    for (i = 0; i < f->n; i++) {
        util_free(f->f[i].name);
        util_free(f->f[i].value);
    }
    f->n = 0;
}

/* Parse an application/x-www-form-urlencoded body. ODSYNC_PARSE on a bad escape or too many
 * fields; the form is empty then. */
static int form_parse(const char *body, size_t len, struct form *f)
{
    size_t start = 0, end, eq;
    int rc = ODSYNC_OK;
    f->n = 0;
    while (rc == ODSYNC_OK && start < len) {
        for (end = start; end < len && body[end] != '&'; end++)
            ;
        for (eq = start; eq < end && body[eq] != '='; eq++)
            ;
        if (end > start && f->n >= MAX_FIELDS) {
            rc = ODSYNC_PARSE;
        } else if (end > start) {
            f->f[f->n].name = form_decode(body + start, eq - start);
            f->f[f->n].value = form_decode(body + eq + (eq < end), end - eq - (eq < end));
            f->n++;
            if (f->f[f->n - 1].name == NULL || f->f[f->n - 1].value == NULL)
                rc = ODSYNC_PARSE;
        }
        start = end + 1;
    }
    if (rc != ODSYNC_OK)
        form_clear(f);
    return rc;
}

/* A field's value, or NULL. */
static const char *form_get(const struct form *f, const char *name)
{
    size_t i;
    for (i = 0; i < f->n; i++)
        if (strcmp(f->f[i].name, name) == 0)
            return f->f[i].value;
    return NULL;
}

static int field_cmp(const void *a, const void *b)
{
    const struct field *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

int webhooks_twilio_signature(const char *auth_token, const char *url, const char *form,
                              size_t form_len, char *out, size_t out_len)
{
    struct form f;
    struct sbuf data = {0};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t i;
    int rc = form_parse(form, form_len, &f);

    if (out_len > 0)
        out[0] = '\0';
    if (rc != ODSYNC_OK)
        return rc;
    qsort(f.f, f.n, sizeof(f.f[0]), field_cmp);
    rc = sbuf_puts(&data, url);
    for (i = 0; rc == ODSYNC_OK && i < f.n; i++) {
        rc = sbuf_puts(&data, f.f[i].name);
        if (rc == ODSYNC_OK)
            rc = sbuf_puts(&data, f.f[i].value);
    }
    if (rc == ODSYNC_OK && HMAC(EVP_sha1(), auth_token, (int)strlen(auth_token),
                                (const unsigned char *)data.data, data.len, md, &md_len) == NULL)
        rc = ODSYNC_NOMEM;
    if (rc == ODSYNC_OK && out_len < 4 * (((size_t)md_len + 2) / 3) + 1)
        rc = ODSYNC_INVALID;
    if (rc == ODSYNC_OK)
        EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    sbuf_free(&data);
    form_clear(&f);
    return rc;
}

/* Base64-decode s into *out (caller frees) with its exact length; ODSYNC_PARSE on garbage. */
static int b64_decode(const char *s, unsigned char **out, size_t *out_len)
{
    size_t n = s ? strlen(s) : 0, pad = 0;
    int got;
    *out = NULL;
    *out_len = 0;
    if (n == 0 || n % 4 != 0)
        return ODSYNC_PARSE;
    pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    *out = util_malloc(n / 4 * 3 + 1);
    if (*out == NULL)
        return ODSYNC_NOMEM;
    got = EVP_DecodeBlock(*out, (const unsigned char *)s, (int)n);
    if (got < 0 || (size_t)got < pad) {
        util_free(*out);
        *out = NULL;
        return ODSYNC_PARSE;
    }
    *out_len = (size_t)got - pad;
    return ODSYNC_OK;
}

int webhooks_sendgrid_verify(const char *public_key_b64, const char *timestamp, const char *body,
                             size_t body_len, const char *sig_b64)
{
    unsigned char *der = NULL, *sig = NULL;
    const unsigned char *p;
    size_t der_len = 0, sig_len = 0;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    int ok = 0;

    if (public_key_b64 == NULL || timestamp == NULL || sig_b64 == NULL ||
        b64_decode(public_key_b64, &der, &der_len) != ODSYNC_OK ||
        b64_decode(sig_b64, &sig, &sig_len) != ODSYNC_OK)
        goto cleanup;
    p = der;
    key = d2i_PUBKEY(NULL, &p, (long)der_len);
    md = EVP_MD_CTX_new();
    if (key == NULL || md == NULL || EVP_PKEY_base_id(key) != EVP_PKEY_EC ||
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestVerifyUpdate(md, timestamp, strlen(timestamp)) != 1 ||
        EVP_DigestVerifyUpdate(md, body, body_len) != 1)
        goto cleanup;
    ok = EVP_DigestVerifyFinal(md, sig, sig_len) == 1;
cleanup:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    util_free(der);
    util_free(sig);
    return ok;
}

/* ---- recording ---------------------------------------------------------------------- */

/* Patients of office whose mobile (channel sms) or email is address, into pats. */
static size_t patients_with(struct store *st, const char *office, const char *channel,
                            const char *address, int64_t *pats, size_t max)
{
    sqlite3_stmt *s =
        store_stmt(st, "SELECT patnum FROM od_patients WHERE office = ? AND"
                       " lower(json_extract(body, CASE WHEN ? = 'sms' THEN '$.phone_mobile'"
                       " ELSE '$.email' END)) = ? LIMIT ?");
    size_t n = 0;
    if (s == NULL)
        return 0;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, address, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, (int)max);
    while (n < max && sqlite3_step(s) == SQLITE_ROW)
        pats[n++] = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return n;
}

struct optout_args {
    const struct config_office *office;
    const char *channel, *address, *purpose, *source, *evidence;
    int opt_in;
    int changed;
};

/* Record an opt-out (or opt-in) and, when the office writes back, a commlog for each patient
 * with that address (inside store_tx). */
static int optout_tx(struct store *st, void *arg)
{
    struct optout_args *a = arg;
    int64_t now = util_now_ms(), pats[MAX_PATIENTS];
    char norm[256], note[NOTE_MAX], ref[KEY_MAX];
    size_t n, i;
    int rc = a->opt_in ? consent_opt_in(st, a->office->id, a->channel, a->address, a->purpose,
                                        a->source, a->evidence, now, &a->changed)
                       : consent_opt_out(st, a->office->id, a->channel, a->address, a->purpose,
                                         a->source, a->evidence, now, &a->changed);
    if (rc != ODSYNC_OK || !a->changed || !a->office->engage->policy.commlog ||
        !consent_normalise(a->channel, a->address, norm, sizeof(norm)))
        return rc;
    n = patients_with(st, a->office->id, a->channel, norm, pats, MAX_PATIENTS);
    util_fmt(note, sizeof(note), "odsync: patient %s %s messages (%s, %s)",
             a->opt_in ? "opted back in to" : "opted out of",
             strcmp(a->channel, "sms") == 0 ? "text" : "email", a->source, a->evidence);
    for (i = 0; rc == ODSYNC_OK && i < n; i++) {
        util_fmt(ref, sizeof(ref), "%s:%s:%lld:%lld", a->opt_in ? "optin" : "optout", a->channel,
                 (long long)pats[i], (long long)now);
        rc = od_writer_enqueue_as(st, a->office, pats[i],
                                  strcmp(a->channel, "sms") == 0 ? "Text" : "Email", "Received",
                                  note, ref, now);
    }
    return rc;
}

/* Record a consent change; ODSYNC_OK or a store error. */
static int record_consent(struct webhooks *w, const struct config_office *office,
                          const char *channel, const char *address, const char *purpose,
                          const char *source, const char *evidence, int opt_in)
{
    struct optout_args a = {office, channel, address, purpose, source, evidence, opt_in, 0};
    int rc = store_tx(w->st, optout_tx, &a);
    if (rc == ODSYNC_INVALID) /* not a usable address: nothing to record */
        return ODSYNC_OK;
    if (rc == ODSYNC_OK && a.changed)
        log_info("webhooks", "office %s: %s %s recorded (%s, %s)", office->id, channel,
                 opt_in ? "opt-in" : "opt-out", source, evidence);
    return rc;
}

struct review_args {
    const char *office, *channel, *address, *body;
};

static int review_tx(struct store *st, void *arg)
{
    struct review_args *a = arg;
    sqlite3_stmt *s = store_stmt(st, "INSERT INTO inbound_review (office, channel, address, body,"
                                     " received_at) VALUES (?, ?, ?, ?, ?)");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, a->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, a->body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, util_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

struct delivery_args {
    const char *office, *key, *provider_id, *status;
    int found;
};

static int delivery_tx(struct store *st, void *arg)
{
    struct delivery_args *a = arg;
    struct ledger_entry e;
    int rc =
        ledger_delivery(st, a->office, a->key, a->provider_id, a->status, util_now_ms(), &a->found);
    if (rc != ODSYNC_OK || !a->found)
        return rc;
    rc = ledger_get(st, a->office, a->key, &e);
    if (rc == ODSYNC_OK)
        rc = ledger_decide(st, a->office, a->key, e.patnum, e.campaign, e.channel, a->status, 0,
                           a->status, "provider", NULL, util_now_ms());
    ledger_entry_clear(&e);
    return rc;
}

/* ---- Twilio ------------------------------------------------------------------------- */

/* R12: the whole trimmed reply, any case. 1 opt-out, 2 opt-in, 3 help, 0 anything else. */
static int sms_keyword(const char *body, const char *opt_out_type)
{
    static const char *const stop[] = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",
                                       "QUIT", "REVOKE",  "OPT OUT",     "OPTOUT"};
    static const char *const start[] = {"START", "UNSTOP", "YES"};
    char word[32];
    size_t n, i, b = 0;
    if (opt_out_type != NULL && strcasecmp(opt_out_type, "STOP") == 0)
        return 1;
    if (opt_out_type != NULL && strcasecmp(opt_out_type, "START") == 0)
        return 2;
    if (body == NULL)
        return 0;
    while (isspace((unsigned char)body[b]))
        b++;
    n = strlen(body + b);
    while (n > 0 && isspace((unsigned char)body[b + n - 1]))
        n--;
    if (n == 0 || n >= sizeof(word))
        return 0;
    memcpy(word, body + b, n);
    word[n] = '\0';
    for (i = 0; i < UTIL_ARRAY_LEN(stop); i++)
        if (strcasecmp(word, stop[i]) == 0)
            return 1;
    for (i = 0; i < 2; i++) /* "YES" is not an opt-in on its own (R15) */
        if (strcasecmp(word, start[i]) == 0)
            return 2;
    return strcasecmp(word, "HELP") == 0 || strcasecmp(word, "INFO") == 0 ? 3 : 0;
}

/* An inbound SMS. */
static void twilio_sms(struct webhooks *w, const struct config_office *office, const struct form *f,
                       struct http_reply *reply)
{
    const char *from = form_get(f, "From"), *body = form_get(f, "Body");
    int kind = sms_keyword(body, form_get(f, "OptOutType")), rc = ODSYNC_OK;
    char norm[32];

    if (from == NULL || !consent_normalise("sms", from, norm, sizeof(norm))) {
        http_reply_error(reply, 400, "From is missing or not a phone number");
        return;
    }
    if (kind == 1 || kind == 2)
        rc =
            record_consent(w, office, "sms", norm, "*", "twilio",
                           kind == 1 ? "inbound STOP keyword" : "inbound START keyword", kind == 2);
    else if (kind == 0) {
        struct review_args a = {office->id, "sms", norm, body ? body : ""};
        rc = store_tx(w->st, review_tx, &a);
        if (rc == ODSYNC_OK)
            log_info("webhooks", "office %s: an SMS reply awaits staff review", office->id);
    }
    if (rc != ODSYNC_OK) {
        http_reply_error(reply, 503, "cannot record the reply now; retry");
        return;
    }
    reply->status = 200;
    reply->body = util_strdup(TWIML);
    reply->content_type = "text/xml";
}

/* A status callback for message key. */
static void twilio_status(struct webhooks *w, const struct config_office *office, const char *key,
                          const struct form *f, struct http_reply *reply)
{
    const char *status = form_get(f, "MessageStatus"), *code = form_get(f, "ErrorCode");
    const char *to = form_get(f, "To");
    struct delivery_args a = {office->id, key, form_get(f, "MessageSid"), status, 0};
    int rc;

    if (status == NULL) {
        http_reply_error(reply, 400, "MessageStatus is missing");
        return;
    }
    rc = store_tx(w->st, delivery_tx, &a);
    if (rc == ODSYNC_OK && code != NULL && strcmp(code, "21610") == 0 && to != NULL)
        rc = record_consent(w, office, "sms", to, "*", "twilio", "error 21610", 0);
    if (rc != ODSYNC_OK) {
        http_reply_error(reply, 503, "cannot record the status now; retry");
        return;
    }
    reply->status = 200;
    reply->body = util_strdup(a.found ? "{\"recorded\":true}" : "{\"recorded\":false}");
}

/* The URL Twilio signed: events.public_url (else http://Host) + path. Caller frees. */
static char *signed_url(const struct webhooks *w, const struct http_request *req)
{
    const char *base = w->cfg->events.public_url, *host = http_request_header(req, "Host");
    struct sbuf b = {0};
    size_t n = base ? strlen(base) : 0;
    if (base != NULL) {
        while (n > 0 && base[n - 1] == '/')
            n--;
        sbuf_append(&b, base, n);
    } else {
        sbuf_printf(&b, "http://%s", host ? host : "");
    }
    sbuf_puts(&b, req->path);
    return sbuf_take(&b);
}

static void twilio(struct webhooks *w, const struct config_office *office, const char *rest,
                   const struct http_request *req, struct http_reply *reply)
{
    const char *token = w->cfg->webhooks.twilio_auth_token;
    const char *given = http_request_header(req, "X-Twilio-Signature");
    char want[64], *url = NULL;
    struct form f;
    int rc;

    f.n = 0;
    if (token == NULL || given == NULL) {
        http_reply_error(reply, 403,
                         token ? "X-Twilio-Signature is missing"
                               : "webhooks.twilio is not configured");
        return;
    }
    url = signed_url(w, req);
    rc = url ? webhooks_twilio_signature(token, url, req->body, req->body_len, want, sizeof(want))
             : ODSYNC_NOMEM;
    if (rc == ODSYNC_OK && !util_secure_equal(want, given))
        rc = ODSYNC_AUTH;
    if (rc == ODSYNC_OK)
        rc = form_parse(req->body, req->body_len, &f);
    if (rc == ODSYNC_AUTH || rc == ODSYNC_PARSE)
        http_reply_error(reply, 403, "X-Twilio-Signature does not match the request");
    else if (rc != ODSYNC_OK)
        http_reply_error(reply, 503, "out of memory");
    else if (strcmp(rest, "sms") == 0)
        twilio_sms(w, office, &f, reply);
    else if (strncmp(rest, "status/", 7) == 0 && rest[7] != '\0')
        twilio_status(w, office, rest + 7, &f, reply);
    else
        http_reply_error(reply, 404, "no such Twilio webhook");
    form_clear(&f);
    util_free(url);
}

/* ---- SendGrid ----------------------------------------------------------------------- */

/* One Event Webhook event. */
static int sendgrid_event(struct webhooks *w, const struct config_office *office, const cJSON *ev)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "event");
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(ev, "email");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(ev, "odsync_key");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    const char *k = cJSON_IsString(key) ? key->valuestring : NULL;
    char purpose[32] = "*";
    struct delivery_args a = {office->id, k, NULL, t, 0};
    struct ledger_entry e;
    int rc = ODSYNC_OK;

    if (!cJSON_IsString(email))
        return ODSYNC_OK;
    if (k != NULL) {
        rc = store_tx(w->st, delivery_tx, &a);
        if (rc == ODSYNC_OK && ledger_get(w->st, office->id, k, &e) == ODSYNC_OK) {
            util_fmt(purpose, sizeof(purpose), "%s", e.campaign ? e.campaign : "*");
            ledger_entry_clear(&e);
        }
    }
    if (rc != ODSYNC_OK)
        return rc;
    if (strcmp(t, "unsubscribe") == 0 || strcmp(t, "spamreport") == 0 || strcmp(t, "bounce") == 0 ||
        strcmp(t, "dropped") == 0)
        return record_consent(w, office, "email", email->valuestring, "*", "sendgrid", t, 0);
    if (strcmp(t, "group_unsubscribe") == 0)
        return record_consent(w, office, "email", email->valuestring, k ? purpose : "*", "sendgrid",
                              t, 0);
    if (strcmp(t, "group_resubscribe") == 0 && k != NULL)
        return record_consent(w, office, "email", email->valuestring, purpose, "sendgrid", t, 1);
    return ODSYNC_OK;
}

static void sendgrid(struct webhooks *w, const struct config_office *office, const char *rest,
                     const struct http_request *req, struct http_reply *reply)
{
    const struct config_webhooks *h = &w->cfg->webhooks;
    const char *sig = http_request_header(req, "X-Twilio-Email-Event-Webhook-Signature");
    const char *ts = http_request_header(req, "X-Twilio-Email-Event-Webhook-Timestamp");
    cJSON *events = NULL;
    const cJSON *ev;
    int64_t when = 0, now = util_now_ms() / 1000;
    int rc = ODSYNC_OK, n = 0;

    if (strcmp(rest, "events") != 0) {
        http_reply_error(reply, 404, "no such SendGrid webhook");
        return;
    }
    if (h->sendgrid_public_key == NULL || sig == NULL || ts == NULL ||
        !webhooks_sendgrid_verify(h->sendgrid_public_key, ts, req->body, req->body_len, sig)) {
        http_reply_error(reply, 403, "%s",
                         h->sendgrid_public_key == NULL ? "webhooks.sendgrid is not configured"
                                                        : "the Event Webhook signature does not "
                                                          "verify");
        return;
    }
    if (util_parse_i64(ts, 0, INT64_MAX, &when) != ODSYNC_OK ||
        when < now - h->sendgrid_max_age_s || when > now + h->sendgrid_max_age_s) {
        http_reply_error(reply, 403, "the signed timestamp is outside %lld s of now (a replay?)",
                         (long long)h->sendgrid_max_age_s);
        return;
    }
    events = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsArray(events)) {
        cJSON_Delete(events);
        http_reply_error(reply, 400, "expected a JSON array of events");
        return;
    }
    cJSON_ArrayForEach(ev, events)
    {
        if (rc == ODSYNC_OK && cJSON_IsObject(ev))
            rc = sendgrid_event(w, office, ev);
        n++;
    }
    cJSON_Delete(events);
    if (rc != ODSYNC_OK) {
        http_reply_error(reply, 503, "cannot record the events now; retry");
        return;
    }
    reply->status = 200;
    reply->body = util_malloc(48);
    if (reply->body != NULL)
        util_fmt(reply->body, 48, "{\"events\":%d}", n);
}

/* ---- routing ------------------------------------------------------------------------ */

void webhooks_http_handler(void *arg, const struct http_request *req, struct http_reply *reply)
{
    struct webhooks *w = arg;
    const struct config_office *office;
    const char *p = req->path + strlen(ROUTE), *slash, *rest;
    char provider[16], office_id[40];

    if (!webhooks_route(req->path)) {
        http_reply_error(reply, 404, "no such route");
        return;
    }
    slash = strchr(p, '/');
    if (slash == NULL || (size_t)(slash - p) >= sizeof(provider)) {
        http_reply_error(reply, 404, "no such webhook");
        return;
    }
    util_fmt(provider, sizeof(provider), "%.*s", (int)(slash - p), p);
    rest = strchr(slash + 1, '/');
    if (rest == NULL || (size_t)(rest - slash - 1) >= sizeof(office_id)) {
        http_reply_error(reply, 404, "no such webhook");
        return;
    }
    util_fmt(office_id, sizeof(office_id), "%.*s", (int)(rest - slash - 1), slash + 1);
    office = config_find_office(w->cfg, office_id);
    if (office == NULL) {
        http_reply_error(reply, 404, "no office \"%s\"", office_id);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_reply_error(reply, 405, "use POST");
        return;
    }
    pthread_mutex_lock(&w->lock);
    if (strcmp(provider, "twilio") == 0)
        twilio(w, office, rest + 1, req, reply);
    else if (strcmp(provider, "sendgrid") == 0)
        sendgrid(w, office, rest + 1, req, reply);
    else
        http_reply_error(reply, 404, "no webhooks for \"%s\"", provider);
    pthread_mutex_unlock(&w->lock);
}
