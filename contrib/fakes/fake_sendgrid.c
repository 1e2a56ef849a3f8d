/*
 * fake_sendgrid: a faithful fake of SendGrid's v3 Mail Send API, the suppression read
 * endpoints the sendgrid plugin uses, and signed Event Webhook POSTs, for plugin and
 * integration tests. contrib/fakes/README.md ("fake_sendgrid") documents every flag, route,
 * fault and JSON shape; this comment is the short version.
 *
 *   fake_sendgrid --api-key K [--listen 127.0.0.1:PORT] [--db FILE] [--template ID ...]
 *
 * Prints "listening on 127.0.0.1:PORT" on stdout once ready. SIGTERM or SIGINT stops it
 * cleanly (exit 0). Bad flags exit 2, start-up failures exit 1.
 *
 * Data routes (need "Authorization: Bearer K", else 401 in SendGrid's errors[] shape):
 *   POST /v3/mail/send                              validated as the OpenAPI spec says;
 *                                                   202 + X-Message-Id, or 400 errors[]
 *   GET  /v3/suppression/{unsubscribes|bounces|spam_reports}?limit=&offset=
 *   POST /v3/asm/groups/{id}/suppressions/search    {"recipient_emails": [...]}
 *   GET  /v3/asm/groups/{id}/suppressions, GET /v3/asm/suppressions/global/{email}
 * Every data answer after the key check carries X-RateLimit-Limit/Remaining/Reset.
 * Admin routes (loopback, no key; never faulted or limited): GET /_state, GET /_mail?to=,
 * GET|POST /_faults, POST /_suppress, POST /_reset, GET /_public_key, POST /_events.
 *
 * Mail and suppressions live in SQLite (--db FILE, default in memory). A send to a
 * suppressed address is accepted (202) and stored as dropped, as SendGrid does.
 *
 * Events: an ECDSA P-256 key pair is generated at start; POST /_events signs a JSON array of
 * events the way SendGrid's Signed Event Webhook does (base64 DER ECDSA over SHA-256 of
 * timestamp + payload) and posts it to the given URL, returning the receiver's status.
 *
 * Threads: libmicrohttpd runs one thread per connection; one mutex (struct fake.lock) guards
 * SQLite, the counters, the settings and the PRNG. Event POSTs are made outside the lock.
 * Request bodies (test patient data) are never logged; the key is registered as a secret.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "http_client.h"
#include "log.h"
#include "serve.h"
#include "util.h"

#define FAKE_LOG           "fake_sendgrid"
#define FAKE_MAX_BODY      ((size_t)30 * 1024 * 1024) /* SendGrid's total message size */
#define FAKE_MAX_PERS      1000
#define FAKE_MAX_RCPT      1000
#define FAKE_MAX_ARGS      10000 /* bytes of custom_args per personalization */
#define FAKE_MAX_DELAY_MS  600000
#define FAKE_MAX_TEMPLATES 64
#define FAKE_MAX_ROUTES    8
#define FAKE_HTML502                                                                               \
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "      \
    "Gateway</h1></center>\r\n</body>\r\n</html>\r\n"

/* Settings; changed by flags at start and POST /_faults. */
struct faults {
    int64_t fail_next;         /* next N data answers: fail-status with an errors[] body */
    int64_t fail_status;       /* 500..599 */
    int64_t html502_next;      /* next N data answers: 502 text/html */
    int64_t truncate_next;     /* next N data answers: 500 body cut, connection closed */
    int64_t rate_limit_next;   /* next N data answers: 429 */
    int64_t rate_reset_s;      /* reset of a forced 429, seconds from now */
    int64_t rate_limit;        /* requests per window before 429s; 0 = unlimited */
    int64_t rate_window_s;     /* window length */
    int64_t delay_ms;          /* wait before each data answer */
    int64_t auth_fail;         /* every data request: 401 */
    int64_t unverified_sender; /* every mail send: 403 (sender identity) */
};

struct route_count {
    const char *route;
    int64_t by_status[600];
};

struct fake {
    pthread_mutex_t lock; /* guards everything below except the immutable members */
    sqlite3 *db;
    struct faults faults;
    uint64_t rng;
    int64_t window_start, window_count; /* rate window: start (epoch s), requests in it */
    int64_t last_reset;                 /* X-RateLimit-Reset of the last 429, 0 = none */
    int64_t requests;                   /* every data request */
    struct route_count routes[FAKE_MAX_ROUTES];
    int64_t events_posted, last_event_status;
    char *templates[FAKE_MAX_TEMPLATES]; /* known template ids; none = any d-... */
    size_t n_templates;
    /* immutable after start */
    char *bearer;
    EVP_PKEY *key, *wrong_key;
    char *public_key_b64;
    atomic_int stopping;
};

/* An answer being built. */
struct answer {
    unsigned status;
    char *body;       /* owned (util_free); NULL with status = NOMEM (connection closed) */
    const char *type; /* static */
    char message_id[32];
    int rate_headers; /* 1: add X-RateLimit-* */
    int64_t rl_limit, rl_remaining, rl_reset;
    int truncate; /* 1: send half the body, then close */
};

static const char *const route_names[FAKE_MAX_ROUTES] = {
    "mail_send",     "suppression_list", "group_search", "group_list",
    "global_lookup", "not_found",        "unauthorized", NULL};

static const char schema_sql[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = OFF;"
    "CREATE TABLE IF NOT EXISTS mail (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE,"
    " received_at INTEGER NOT NULL, request TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS personalizations (mail_id INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " to_email TEXT NOT NULL, odsync_key TEXT, dropped TEXT, body TEXT NOT NULL,"
    " PRIMARY KEY (mail_id, idx));"
    "CREATE INDEX IF NOT EXISTS pers_to ON personalizations (to_email);"
    "CREATE INDEX IF NOT EXISTS pers_key ON personalizations (odsync_key);"
    "CREATE TABLE IF NOT EXISTS suppressions (list TEXT NOT NULL, group_id INTEGER NOT NULL,"
    " email TEXT NOT NULL, created INTEGER NOT NULL, reason TEXT,"
    " PRIMARY KEY (list, group_id, email));";

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* n random characters of [A-Za-z0-9_-] into out (n + 1 bytes). f->lock held. */
static void random_id(struct fake *f, char *out, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i++)
        out[i] = abc[rng_next(&f->rng) & 63];
    out[n] = '\0';
}

static void sleep_ms(struct fake *f, int64_t ms)
{
    int64_t end = util_monotonic_ms() + ms;
    for (;;) {
        int64_t left = end - util_monotonic_ms();
        if (left <= 0 || atomic_load(&f->stopping))
            return;
        if (left > 50)
            left = 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* A lowercase copy (caller frees with util_free), NULL on NOMEM. */
static char *lower_dup(const char *s)
{
    char *out = util_strdup(s);
    for (char *p = out; p != NULL && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* SendGrid-like address check: local@domain, no spaces or specials, no empty or leading,
 * trailing or doubled dots, a dot in the domain, labels not starting or ending with '-'. */
static int valid_email(const char *s)
{
    const char *at, *p;
    if (s == NULL || *s == '\0' || strlen(s) > 320)
        return 0;
    for (p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\"<>,;()[]\\:", *p) != NULL)
            return 0;
    at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || at[1] == '\0')
        return 0;
    if (s[0] == '.' || at[-1] == '.' || at[1] == '.' || s[strlen(s) - 1] == '.' ||
        strstr(s, "..") != NULL || strchr(at + 1, '.') == NULL)
        return 0;
    for (p = at + 1; *p; p++)
        if (*p == '-' && (p[-1] == '.' || p[-1] == '@' || p[1] == '.' || p[1] == '\0'))
            return 0;
    return 1;
}

/* ---- answers ------------------------------------------------------------------------------ */

static void answer_json(struct answer *a, unsigned status, cJSON *json)
{
    a->status = status;
    a->type = "application/json";
    util_free(a->body);
    a->body = NULL;
    if (json != NULL) {
        char *text = cJSON_PrintUnformatted(json);
        a->body = text != NULL ? util_strdup(text) : NULL;
        cJSON_free(text);
    }
    cJSON_Delete(json);
}

/* Append {"message","field","help":null} to errs (field NULL = JSON null). */
static void add_error(cJSON *errs, const char *message, const char *field)
{
    cJSON *e = cJSON_CreateObject();
    if (e == NULL)
        return;
    cJSON_AddStringToObject(e, "message", message);
    if (field != NULL)
        cJSON_AddStringToObject(e, "field", field);
    else
        cJSON_AddNullToObject(e, "field");
    cJSON_AddNullToObject(e, "help");
    cJSON_AddItemToArray(errs, e);
}

/* SendGrid's error body with one error. */
static void answer_error(struct answer *a, unsigned status, const char *message, const char *field)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *errs = j != NULL ? cJSON_AddArrayToObject(j, "errors") : NULL;
    if (errs != NULL)
        add_error(errs, message, field);
    answer_json(a, status, j);
}

/* An admin error {"error": message}. */
static void answer_admin_error(struct answer *a, unsigned status, const char *message)
{
    cJSON *j = cJSON_CreateObject();
    if (j != NULL)
        cJSON_AddStringToObject(j, "error", message);
    answer_json(a, status, j);
}

static void free_body(void *p)
{
    util_free(p);
}

/* A truncated answer: the declared length is the whole body, half of it is sent. */
struct cut {
    char *body;
    size_t len, send;
};

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct cut *c = cls;
    if (pos >= c->send)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = c->send - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, c->body + pos, n);
    return (ssize_t)n;
}

static void cut_free(void *cls)
{
    struct cut *c = cls;
    util_free(c->body);
    util_free(c);
}

/* Queue a. Takes a->body. */
static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
    char num[32];
    char *body = a->body;
    struct MHD_Response *resp = NULL;
    a->body = NULL;
    if (body == NULL)
        return MHD_NO;
    if (a->truncate) {
        struct cut *c = util_malloc(sizeof(*c));
        if (c == NULL) {
            util_free(body);
            return MHD_NO;
        }
        c->body = body;
        c->len = strlen(body);
        c->send = c->len / 2;
        resp = MHD_create_response_from_callback(c->len, 1024, cut_reader, c, cut_free);
        if (resp == NULL) {
            cut_free(c);
            return MHD_NO;
        }
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free_body);
        if (resp == NULL) {
            util_free(body);
            return MHD_NO;
        }
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    if (a->message_id[0] != '\0')
        MHD_add_response_header(resp, "X-Message-Id", a->message_id);
    if (a->rate_headers) {
        util_fmt(num, sizeof(num), "%lld", (long long)a->rl_limit);
        MHD_add_response_header(resp, "X-RateLimit-Limit", num);
        util_fmt(num, sizeof(num), "%lld", (long long)a->rl_remaining);
        MHD_add_response_header(resp, "X-RateLimit-Remaining", num);
        util_fmt(num, sizeof(num), "%lld", (long long)a->rl_reset);
        MHD_add_response_header(resp, "X-RateLimit-Reset", num);
    }
    enum MHD_Result ret = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- storage (f->lock held) --------------------------------------------------------------- */

/* Prepare sql; NULL after logging on failure. Caller finalizes. */
static sqlite3_stmt *prep(struct fake *f, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error(FAKE_LOG, "sqlite: %s", sqlite3_errmsg(f->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Why a send to email (lowercase) under group (0 = none) is dropped, or NULL. Static text. */
static const char *db_suppressed(struct fake *f, const char *email, int64_t group)
{
    const char *why = NULL;
    sqlite3_stmt *st = prep(f, "SELECT list FROM suppressions WHERE email = ?1 AND"
                               " (list != 'group' OR group_id = ?2) ORDER BY"
                               " CASE list WHEN 'unsubscribes' THEN 0 WHEN 'group' THEN 1"
                               " WHEN 'spam_reports' THEN 2 ELSE 3 END LIMIT 1");
    if (st == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, group);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *l = (const char *)sqlite3_column_text(st, 0);
        why = strcmp(l, "unsubscribes") == 0   ? "global unsubscribe"
              : strcmp(l, "group") == 0        ? "group unsubscribe"
              : strcmp(l, "spam_reports") == 0 ? "spam report"
                                               : "bounce";
    }
    sqlite3_finalize(st);
    return why;
}

/* Add (or with remove, delete) email to list/group. Returns 1 when a row changed. */
static int db_suppress(struct fake *f, const char *list, int64_t group, const char *email,
                       const char *reason, int remove)
{
    char *lc = lower_dup(email);
    sqlite3_stmt *st =
        lc == NULL ? NULL
        : remove
            ? prep(f, "DELETE FROM suppressions WHERE list = ?1 AND group_id = ?2 AND email = ?3")
            : prep(f, "INSERT OR IGNORE INTO suppressions (list, group_id, email, created, reason)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)");
    int changed = 0;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, group);
        sqlite3_bind_text(st, 3, lc, -1, SQLITE_STATIC);
        if (!remove) {
            sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
            sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
        }
        changed = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(f->db) > 0;
    }
    sqlite3_finalize(st);
    util_free(lc);
    return changed;
}

/* ---- mail send validation ----------------------------------------------------------------- */

/* Validate one address object {"email", "name"?} at field path. */
static void check_address(const cJSON *o, const char *path, cJSON *errs)
{
    char field[96];
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "email");
    util_fmt(field, sizeof(field), "%s.email", path);
    if (!cJSON_IsObject(o) || !cJSON_IsString(e) || !valid_email(e->valuestring))
        add_error(errs, "Does not contain a valid address.", field);
}

/* Validate personalization i; adds to *recipients. */
static void check_personalization(const cJSON *p, int i, int templated, int top_subject,
                                  int *recipients, int *all_subjects, cJSON *errs)
{
    static const char *const kinds[] = {"to", "cc", "bcc"};
    char field[96];
    const cJSON *v;
    if (!cJSON_IsObject(p)) {
        util_fmt(field, sizeof(field), "personalizations.%d", i);
        add_error(errs, "The personalization must be an object.", field);
        return;
    }
    for (size_t k = 0; k < UTIL_ARRAY_LEN(kinds); k++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, kinds[k]), *r;
        int j = 0;
        if (list == NULL && k > 0)
            continue;
        util_fmt(field, sizeof(field), "personalizations.%d.%s", i, kinds[k]);
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
            add_error(errs,
                      k == 0 ? "The to array is required for all personalization objects, and "
                               "must have at least one email object with a valid email address."
                             : "The list must be an array of email objects.",
                      field);
            continue;
        }
        cJSON_ArrayForEach(r, list)
        {
            char at[112];
            util_fmt(at, sizeof(at), "%s.%d", field, j++);
            check_address(r, at, errs);
            (*recipients)++;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(p, "subject");
    if (v != NULL && !cJSON_IsNull(v) && (!cJSON_IsString(v) || v->valuestring[0] == '\0')) {
        util_fmt(field, sizeof(field), "personalizations.%d.subject", i);
        add_error(errs, "The subject must be a non-empty string.", field);
    }
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        *all_subjects = 0;
    (void)templated;
    (void)top_subject;
    v = cJSON_GetObjectItemCaseSensitive(p, "custom_args");
    if (v != NULL) {
        const cJSON *c;
        int strings = cJSON_IsObject(v);
        cJSON_ArrayForEach(c, v) strings &= cJSON_IsString(c);
        char *text = cJSON_PrintUnformatted(v);
        util_fmt(field, sizeof(field), "personalizations.%d.custom_args", i);
        if (!strings)
            add_error(errs, "Custom args must be an object of string values.", field);
        else if (text == NULL || strlen(text) > FAKE_MAX_ARGS)
            add_error(errs, "The custom_args may not exceed 10,000 bytes.", field);
        cJSON_free(text);
    }
    v = cJSON_GetObjectItemCaseSensitive(p, "headers");
    if (v != NULL) {
        const cJSON *c;
        int strings = cJSON_IsObject(v);
        cJSON_ArrayForEach(c, v) strings &= cJSON_IsString(c);
        if (!strings) {
            util_fmt(field, sizeof(field), "personalizations.%d.headers", i);
            add_error(errs, "Headers must be an object of string values.", field);
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(p, "dynamic_template_data");
    if (v != NULL && !cJSON_IsObject(v)) {
        util_fmt(field, sizeof(field), "personalizations.%d.dynamic_template_data", i);
        add_error(errs, "The dynamic_template_data must be an object.", field);
    }
}

/* 1 when id is a template this fake knows (f->lock held). */
static int known_template(struct fake *f, const char *id)
{
    if (f->n_templates == 0) {
        if (strncmp(id, "d-", 2) != 0 || id[2] == '\0')
            return 0;
        for (const char *p = id + 2; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                return 0;
        return 1;
    }
    for (size_t i = 0; i < f->n_templates; i++)
        if (strcmp(f->templates[i], id) == 0)
            return 1;
    return 0;
}

/* Validate a mail send body into errs (SendGrid's checks, in its field names). */
static void check_mail(struct fake *f, const cJSON *mail, cJSON *errs)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(mail, "personalizations"), *p, *v;
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(mail, "template_id");
    const cJSON *subj = cJSON_GetObjectItemCaseSensitive(mail, "subject");
    int templated = cJSON_IsString(tid), recipients = 0, all_subjects = 1, i = 0;
    int top_subject = cJSON_IsString(subj) && subj->valuestring[0] != '\0';

    if (!cJSON_IsArray(ps) || cJSON_GetArraySize(ps) == 0) {
        add_error(errs,
                  "The personalizations field is required and must have at least one "
                  "personalization.",
                  "personalizations");
        all_subjects = 0;
    } else if (cJSON_GetArraySize(ps) > FAKE_MAX_PERS) {
        add_error(errs, "The personalizations field must have no more than 1000 items.",
                  "personalizations");
    } else {
        cJSON_ArrayForEach(p, ps)
        {
            check_personalization(p, i++, templated, top_subject, &recipients, &all_subjects, errs);
        }
        if (recipients > FAKE_MAX_RCPT)
            add_error(errs, "The total number of recipients must be no more than 1000.",
                      "personalizations");
    }
    v = cJSON_GetObjectItemCaseSensitive(mail, "from");
    if (v == NULL)
        add_error(errs, "The from object must be provided for every email send.", "from");
    else
        check_address(v, "from", errs);
    v = cJSON_GetObjectItemCaseSensitive(mail, "reply_to");
    if (v != NULL)
        check_address(v, "reply_to", errs);
    if (tid != NULL && (!templated || !known_template(f, tid->valuestring)))
        add_error(errs, "The template_id is not a valid template ID.", "template_id");
    if (!templated && !top_subject && !all_subjects)
        add_error(errs,
                  "The subject is required. You can get around this requirement if you use a "
                  "template with a subject defined or if every personalization has a subject "
                  "defined.",
                  "subject");
    v = cJSON_GetObjectItemCaseSensitive(mail, "content");
    if (!templated || v != NULL) {
        const cJSON *c;
        int ok = cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0, n = 0, plain_at = -1;
        cJSON_ArrayForEach(c, v)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
            const cJSON *val = cJSON_GetObjectItemCaseSensitive(c, "value");
            if (!cJSON_IsString(t) || t->valuestring[0] == '\0' || !cJSON_IsString(val) ||
                val->valuestring[0] == '\0')
                ok = 0;
            else if (strcmp(t->valuestring, "text/plain") == 0)
                plain_at = n;
            n++;
        }
        if (!ok)
            add_error(errs,
                      "Unless a valid template_id is provided, the content parameter is "
                      "required. There must be at least one defined content block.",
                      "content");
        else if (plain_at > 0)
            add_error(errs,
                      "If present, text/plain must be first, followed by text/html, followed by "
                      "any other content.",
                      "content");
    }
    v = cJSON_GetObjectItemCaseSensitive(mail, "asm");
    if (v != NULL) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(v, "group_id");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "groups_to_display");
        if (!cJSON_IsNumber(g) || g->valuedouble < 1 || g->valuedouble != floor(g->valuedouble))
            add_error(errs, "The asm group_id must be a positive integer.", "asm.group_id");
        if (d != NULL && (!cJSON_IsArray(d) || cJSON_GetArraySize(d) > 25))
            add_error(errs, "The groups_to_display can have at most 25 groups.",
                      "asm.groups_to_display");
    }
    v = cJSON_GetObjectItemCaseSensitive(mail, "categories");
    if (v != NULL && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 10))
        add_error(errs, "You may not have more than 10 categories per request.", "categories");
}

/* Store an accepted mail and its personalizations (f->lock held). Returns ODSYNC_OK or
 * ODSYNC_IO. */
static int store_mail(struct fake *f, cJSON *mail, const char *message_id)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(mail, "personalizations"), *p;
    const cJSON *g =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mail, "asm"), "group_id");
    int64_t group = cJSON_IsNumber(g) ? (int64_t)g->valuedouble : 0;
    cJSON *top = cJSON_Duplicate(mail, 1);
    char *text = NULL;
    sqlite3_stmt *ins = NULL, *pins = NULL;
    int rc = ODSYNC_IO, idx = 0;

    if (top == NULL)
        return ODSYNC_NOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(top, "personalizations");
    text = cJSON_PrintUnformatted(top);
    ins = prep(f, "INSERT INTO mail (message_id, received_at, request) VALUES (?1, ?2, ?3)");
    pins = prep(f, "INSERT INTO personalizations (mail_id, idx, to_email, odsync_key, dropped,"
                   " body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (text == NULL || ins == NULL || pins == NULL)
        goto cleanup;
    sqlite3_exec(f->db, "BEGIN", NULL, NULL, NULL);
    sqlite3_bind_text(ins, 1, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, util_now_ms());
    sqlite3_bind_text(ins, 3, text, -1, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE)
        goto rollback;
    int64_t mail_id = sqlite3_last_insert_rowid(f->db);
    cJSON_ArrayForEach(p, ps)
    {
        const cJSON *to = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "to"), 0);
        const char *key = NULL;
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p, "custom_args"), "odsync_key");
        char *email = lower_dup(cJSON_GetObjectItemCaseSensitive(to, "email")->valuestring);
        char *pt = cJSON_PrintUnformatted(p);
        if (cJSON_IsString(k))
            key = k->valuestring;
        if (email == NULL || pt == NULL) {
            util_free(email);
            cJSON_free(pt);
            goto rollback;
        }
        const char *dropped = db_suppressed(f, email, group);
        sqlite3_bind_int64(pins, 1, mail_id);
        sqlite3_bind_int(pins, 2, idx++);
        sqlite3_bind_text(pins, 3, email, -1, SQLITE_STATIC);
        if (key != NULL)
            sqlite3_bind_text(pins, 4, key, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(pins, 4);
        if (dropped != NULL)
            sqlite3_bind_text(pins, 5, dropped, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(pins, 5);
        sqlite3_bind_text(pins, 6, pt, -1, SQLITE_STATIC);
        int step = sqlite3_step(pins);
        sqlite3_reset(pins);
        sqlite3_clear_bindings(pins);
        util_free(email);
        cJSON_free(pt);
        if (step != SQLITE_DONE)
            goto rollback;
    }
    sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL);
    rc = ODSYNC_OK;
    goto cleanup;
rollback:
    log_error(FAKE_LOG, "sqlite: %s", sqlite3_errmsg(f->db));
    sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL);
cleanup:
    sqlite3_finalize(ins);
    sqlite3_finalize(pins);
    cJSON_free(text);
    cJSON_Delete(top);
    return rc;
}

/* ---- data routes -------------------------------------------------------------------------- */

enum route { R_MAIL, R_LIST, R_GROUP_SEARCH, R_GROUP_LIST, R_GLOBAL, R_NOT_FOUND, R_UNAUTHORIZED };

/* Which data route url/method is; *list gets the list name, *group the group id, *email
 * the decoded address (caller frees with util_free) where the route has them. */
static enum route route_of(const char *url, const char *method, const char **list, int64_t *group,
                           char **email)
{
    static const char *const lists[] = {"unsubscribes", "bounces", "spam_reports"};
    char num[24];
    *list = NULL;
    *group = 0;
    *email = NULL;
    if (strcmp(url, "/v3/mail/send") == 0 && strcmp(method, "POST") == 0)
        return R_MAIL;
    if (strncmp(url, "/v3/suppression/", 16) == 0 && strcmp(method, "GET") == 0) {
        for (size_t i = 0; i < UTIL_ARRAY_LEN(lists); i++)
            if (strcmp(url + 16, lists[i]) == 0) {
                *list = lists[i];
                return R_LIST;
            }
        return R_NOT_FOUND;
    }
    if (strncmp(url, "/v3/asm/suppressions/global/", 28) == 0 && strcmp(method, "GET") == 0) {
        *email = util_strdup(url + 28);
        return *email != NULL && **email != '\0' ? R_GLOBAL : R_NOT_FOUND;
    }
    if (strncmp(url, "/v3/asm/groups/", 15) == 0) {
        const char *id = url + 15, *slash = strchr(id, '/');
        if (slash == NULL || (size_t)(slash - id) >= sizeof(num))
            return R_NOT_FOUND;
        memcpy(num, id, (size_t)(slash - id));
        num[slash - id] = '\0';
        if (util_parse_i64(num, 1, INT32_MAX, group) != ODSYNC_OK)
            return R_NOT_FOUND;
        if (strcmp(slash, "/suppressions/search") == 0 && strcmp(method, "POST") == 0)
            return R_GROUP_SEARCH;
        if (strcmp(slash, "/suppressions") == 0 && strcmp(method, "GET") == 0)
            return R_GROUP_LIST;
    }
    return R_NOT_FOUND;
}

/* POST /v3/mail/send (f->lock held). */
static void serve_mail(struct fake *f, const struct serve_upload *up, struct answer *a)
{
    cJSON *mail = cJSON_ParseWithLength(up->body.data ? up->body.data : "", up->body.len);
    cJSON *out = cJSON_CreateObject();
    cJSON *errs = out != NULL ? cJSON_AddArrayToObject(out, "errors") : NULL;
    if (errs == NULL)
        goto cleanup;
    if (!cJSON_IsObject(mail)) {
        add_error(errs, "Bad Request", NULL);
    } else {
        check_mail(f, mail, errs);
        if (cJSON_GetArraySize(errs) == 0 && f->faults.unverified_sender) {
            answer_error(a, MHD_HTTP_FORBIDDEN,
                         "The from address does not match a verified Sender Identity. Mail "
                         "cannot be sent until this error is resolved.",
                         "from");
            goto cleanup;
        }
    }
    if (cJSON_GetArraySize(errs) > 0) {
        answer_json(a, MHD_HTTP_BAD_REQUEST, out);
        out = NULL;
        goto cleanup;
    }
    random_id(f, a->message_id, 22);
    if (store_mail(f, mail, a->message_id) != ODSYNC_OK) {
        a->message_id[0] = '\0';
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error", NULL);
        goto cleanup;
    }
    a->status = MHD_HTTP_ACCEPTED;
    a->type = "text/plain";
    a->body = util_strdup("");
cleanup:
    cJSON_Delete(out);
    cJSON_Delete(mail);
}

/* GET /v3/suppression/{list}?limit&offset (f->lock held). */
static void serve_list(struct fake *f, struct MHD_Connection *conn, const char *list,
                       struct answer *a)
{
    const char *ls = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *os = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "offset");
    int64_t limit = 500, offset = 0;
    if ((ls != NULL && util_parse_i64(ls, 1, 500, &limit) != ODSYNC_OK) ||
        (os != NULL && util_parse_i64(os, 0, INT32_MAX, &offset) != ODSYNC_OK)) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "limit must be 1..500 and offset >= 0",
                     ls != NULL ? "limit" : "offset");
        return;
    }
    sqlite3_stmt *st = prep(f, "SELECT email, created, reason FROM suppressions WHERE list = ?1"
                               " ORDER BY created DESC, email LIMIT ?2 OFFSET ?3");
    cJSON *arr = cJSON_CreateArray();
    if (st == NULL || arr == NULL) {
        sqlite3_finalize(st);
        cJSON_Delete(arr);
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error", NULL);
        return;
    }
    sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *e = cJSON_CreateObject();
        if (e == NULL)
            break;
        cJSON_AddNumberToObject(e, "created", (double)sqlite3_column_int64(st, 1));
        cJSON_AddStringToObject(e, "email", (const char *)sqlite3_column_text(st, 0));
        if (strcmp(list, "bounces") == 0) {
            const char *r = (const char *)sqlite3_column_text(st, 2);
            cJSON_AddStringToObject(e, "reason", r != NULL ? r : "550 5.1.1 user unknown");
            cJSON_AddStringToObject(e, "status", "5.1.1");
        } else if (strcmp(list, "spam_reports") == 0) {
            cJSON_AddStringToObject(e, "ip", "192.0.2.10");
        }
        cJSON_AddItemToArray(arr, e);
    }
    sqlite3_finalize(st);
    answer_json(a, MHD_HTTP_OK, arr);
}

/* Group suppressions: search (emails given) or list (emails NULL) (f->lock held). */
static void serve_group(struct fake *f, int64_t group, const cJSON *emails, struct answer *a)
{
    sqlite3_stmt *st = prep(f, "SELECT email FROM suppressions WHERE list = 'group' AND"
                               " group_id = ?1 ORDER BY email");
    cJSON *arr = cJSON_CreateArray();
    if (st == NULL || arr == NULL) {
        sqlite3_finalize(st);
        cJSON_Delete(arr);
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error", NULL);
        return;
    }
    sqlite3_bind_int64(st, 1, group);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *email = (const char *)sqlite3_column_text(st, 0);
        const cJSON *e;
        int wanted = emails == NULL;
        cJSON_ArrayForEach(e, emails)
        {
            if (cJSON_IsString(e) && strcasecmp(e->valuestring, email) == 0)
                wanted = 1;
        }
        if (wanted)
            cJSON_AddItemToArray(arr, cJSON_CreateString(email));
    }
    sqlite3_finalize(st);
    answer_json(a, MHD_HTTP_OK, arr);
}

/* Count an answer for a route (f->lock held). */
static void count_route(struct fake *f, enum route r, unsigned status)
{
    if ((size_t)r < FAKE_MAX_ROUTES && status < 600)
        f->routes[r].by_status[status]++;
}

/* Apply the rate window (f->lock held): fills the rate headers of a; returns 1 when the
 * request is over the limit (or forced by rate-limit-next). */
static int rate_check(struct fake *f, struct answer *a)
{
    int64_t now = (int64_t)time(NULL);
    int64_t window = f->faults.rate_window_s > 0 ? f->faults.rate_window_s : 60;
    int64_t limit = f->faults.rate_limit > 0 ? f->faults.rate_limit : 10000;
    if (now >= f->window_start + window) {
        f->window_start = now;
        f->window_count = 0;
    }
    f->window_count++;
    a->rate_headers = 1;
    a->rl_limit = limit;
    a->rl_reset = f->window_start + window;
    a->rl_remaining = limit - f->window_count > 0 ? limit - f->window_count : 0;
    if (f->faults.rate_limit_next > 0) {
        f->faults.rate_limit_next--;
        a->rl_remaining = 0;
        a->rl_reset = now + f->faults.rate_reset_s;
        f->last_reset = a->rl_reset;
        return 1;
    }
    if (f->faults.rate_limit > 0 && f->window_count > limit) {
        f->last_reset = a->rl_reset;
        return 1;
    }
    return 0;
}

/* A data request: key, route, rate limit, faults, then the route itself. */
static void route_data(struct fake *f, struct MHD_Connection *conn, const char *url,
                       const char *method, const struct serve_upload *up, struct answer *a)
{
    const char *list;
    int64_t group, delay;
    char *email = NULL;
    enum route r = route_of(url, method, &list, &group, &email);
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");

    pthread_mutex_lock(&f->lock);
    f->requests++;
    if (!util_secure_equal(auth != NULL ? auth : "", f->bearer) || f->faults.auth_fail) {
        answer_error(a, MHD_HTTP_UNAUTHORIZED,
                     "The provided authorization grant is invalid, expired, or revoked", NULL);
        count_route(f, R_UNAUTHORIZED, a->status);
        goto unlock;
    }
    if (up->too_big) {
        answer_error(a, MHD_HTTP_CONTENT_TOO_LARGE, "The request is too large.", NULL);
        count_route(f, r, a->status);
        goto unlock;
    }
    if (r == R_NOT_FOUND) {
        answer_error(a, MHD_HTTP_NOT_FOUND, "resource not found", NULL);
        count_route(f, r, a->status);
        goto unlock;
    }
    if (rate_check(f, a)) {
        answer_error(a, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests", NULL);
        count_route(f, r, a->status);
        goto unlock;
    }
    delay = f->faults.delay_ms;
    if (delay > 0) {
        pthread_mutex_unlock(&f->lock);
        sleep_ms(f, delay);
        pthread_mutex_lock(&f->lock);
    }
    if (f->faults.fail_next > 0) {
        f->faults.fail_next--;
        answer_error(a, (unsigned)f->faults.fail_status, "internal error", NULL);
    } else if (f->faults.html502_next > 0) {
        f->faults.html502_next--;
        a->status = MHD_HTTP_BAD_GATEWAY;
        a->type = "text/html";
        a->body = util_strdup(FAKE_HTML502);
    } else if (f->faults.truncate_next > 0) {
        f->faults.truncate_next--;
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR,
                     "An internal error occurred while processing the request", NULL);
        a->truncate = 1;
    } else if (r == R_MAIL) {
        serve_mail(f, up, a);
    } else if (r == R_LIST) {
        serve_list(f, conn, list, a);
    } else if (r == R_GROUP_SEARCH) {
        cJSON *body = cJSON_ParseWithLength(up->body.data ? up->body.data : "", up->body.len);
        const cJSON *emails = cJSON_GetObjectItemCaseSensitive(body, "recipient_emails");
        if (!cJSON_IsArray(emails))
            answer_error(a, MHD_HTTP_BAD_REQUEST, "recipient_emails must be an array",
                         "recipient_emails");
        else
            serve_group(f, group, emails, a);
        cJSON_Delete(body);
    } else if (r == R_GROUP_LIST) {
        serve_group(f, group, NULL, a);
    } else {
        char *lc = lower_dup(email);
        cJSON *o = cJSON_CreateObject();
        sqlite3_stmt *st = prep(f, "SELECT 1 FROM suppressions WHERE list = 'unsubscribes' AND"
                                   " email = ?1");
        if (lc != NULL && st != NULL && o != NULL) {
            sqlite3_bind_text(st, 1, lc, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                cJSON_AddStringToObject(o, "recipient_email", lc);
        }
        sqlite3_finalize(st);
        util_free(lc);
        answer_json(a, MHD_HTTP_OK, o);
    }
    count_route(f, r, a->status);
unlock:
    pthread_mutex_unlock(&f->lock);
    util_free(email);
}

/* ---- settings ----------------------------------------------------------------------------- */

struct setting {
    const char *name;
    size_t offset;
    int64_t min, max;
    int boolean;
};

static const struct setting settings[] = {
    {"fail-next", offsetof(struct faults, fail_next), 0, 1000000, 0},
    {"fail-status", offsetof(struct faults, fail_status), 500, 599, 0},
    {"html502-next", offsetof(struct faults, html502_next), 0, 1000000, 0},
    {"truncate-next", offsetof(struct faults, truncate_next), 0, 1000000, 0},
    {"rate-limit-next", offsetof(struct faults, rate_limit_next), 0, 1000000, 0},
    {"rate-reset-s", offsetof(struct faults, rate_reset_s), 0, 86400, 0},
    {"rate-limit", offsetof(struct faults, rate_limit), 0, 1000000000, 0},
    {"rate-window-s", offsetof(struct faults, rate_window_s), 1, 86400, 0},
    {"delay-ms", offsetof(struct faults, delay_ms), 0, FAKE_MAX_DELAY_MS, 0},
    {"auth-fail", offsetof(struct faults, auth_fail), 0, 1, 1},
    {"unverified-sender", offsetof(struct faults, unverified_sender), 0, 1, 1},
};

static const struct setting *setting_find(const char *name)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(settings); i++) {
        const char *a = settings[i].name, *b = name;
        while (*a != '\0' && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return &settings[i];
    }
    return NULL;
}

static int64_t *setting_ptr(struct faults *fl, const struct setting *s)
{
    return (int64_t *)(void *)((char *)fl + s->offset);
}

/* The value of a JSON setting, or ODSYNC_PARSE. */
static int setting_json(const struct setting *s, const cJSON *v, int64_t *out)
{
    if (s->boolean) {
        if (!cJSON_IsBool(v))
            return ODSYNC_PARSE;
        *out = cJSON_IsTrue(v);
        return ODSYNC_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < (double)s->min ||
        v->valuedouble > (double)s->max || v->valuedouble != floor(v->valuedouble))
        return ODSYNC_PARSE;
    *out = (int64_t)v->valuedouble;
    return ODSYNC_OK;
}

/* The settings and the template list as JSON (f->lock held). */
static cJSON *faults_json(struct fake *f)
{
    cJSON *j = cJSON_CreateObject(), *t;
    if (j == NULL)
        return NULL;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(settings); i++) {
        int64_t v = *setting_ptr(&f->faults, &settings[i]);
        if (settings[i].boolean)
            cJSON_AddBoolToObject(j, settings[i].name, v != 0);
        else
            cJSON_AddNumberToObject(j, settings[i].name, (double)v);
    }
    t = cJSON_AddArrayToObject(j, "templates");
    for (size_t i = 0; t != NULL && i < f->n_templates; i++)
        cJSON_AddItemToArray(t, cJSON_CreateString(f->templates[i]));
    return j;
}

/* Add a known template id (f->lock held, or before start). Returns ODSYNC_OK, ODSYNC_PARSE
 * when id is not "d-..." or the list is full. */
static int template_add(struct fake *f, const char *id)
{
    if (strncmp(id, "d-", 2) != 0 || id[2] == '\0' || f->n_templates == FAKE_MAX_TEMPLATES)
        return ODSYNC_PARSE;
    for (size_t i = 0; i < f->n_templates; i++)
        if (strcmp(f->templates[i], id) == 0)
            return ODSYNC_OK;
    f->templates[f->n_templates] = util_strdup(id);
    if (f->templates[f->n_templates] == NULL)
        return ODSYNC_NOMEM;
    f->n_templates++;
    return ODSYNC_OK;
}

/* ---- admin routes ------------------------------------------------------------------------- */

/* Suppression lists as JSON: {"unsubscribes":[...],"bounces":[...],"spam_reports":[...],
 * "groups":{"ID":[...]}} (f->lock held). */
static cJSON *suppressions_json(struct fake *f)
{
    cJSON *j = cJSON_CreateObject(), *groups;
    sqlite3_stmt *st =
        prep(f, "SELECT list, group_id, email FROM suppressions ORDER BY list, group_id, email");
    if (j == NULL || st == NULL || cJSON_AddArrayToObject(j, "unsubscribes") == NULL ||
        cJSON_AddArrayToObject(j, "bounces") == NULL ||
        cJSON_AddArrayToObject(j, "spam_reports") == NULL ||
        (groups = cJSON_AddObjectToObject(j, "groups")) == NULL) {
        sqlite3_finalize(st);
        cJSON_Delete(j);
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *list = (const char *)sqlite3_column_text(st, 0);
        const char *email = (const char *)sqlite3_column_text(st, 2);
        cJSON *arr;
        if (strcmp(list, "group") == 0) {
            char id[24];
            util_fmt(id, sizeof(id), "%lld", (long long)sqlite3_column_int64(st, 1));
            arr = cJSON_GetObjectItemCaseSensitive(groups, id);
            if (arr == NULL)
                arr = cJSON_AddArrayToObject(groups, id);
        } else {
            arr = cJSON_GetObjectItemCaseSensitive(j, list);
        }
        if (arr != NULL)
            cJSON_AddItemToArray(arr, cJSON_CreateString(email));
    }
    sqlite3_finalize(st);
    return j;
}

/* A scalar count query (f->lock held). */
static int64_t db_count(struct fake *f, const char *sql)
{
    sqlite3_stmt *st = prep(f, sql);
    int64_t n = 0;
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* GET /_state. */
static void admin_state(struct fake *f, struct answer *a)
{
    cJSON *root = cJSON_CreateObject(), *req, *rl, *ev;
    char num[8];
    pthread_mutex_lock(&f->lock);
    if (root == NULL || (req = cJSON_AddObjectToObject(root, "requests")) == NULL)
        goto unlock;
    cJSON_AddNumberToObject(root, "mail_requests",
                            (double)db_count(f, "SELECT COUNT(*) FROM mail"));
    cJSON_AddNumberToObject(root, "messages",
                            (double)db_count(f, "SELECT COUNT(*) FROM personalizations"));
    cJSON_AddNumberToObject(
        root, "dropped",
        (double)db_count(f, "SELECT COUNT(*) FROM personalizations WHERE dropped IS NOT NULL"));
    cJSON_AddNumberToObject(root, "requests_total", (double)f->requests);
    for (size_t r = 0; route_names[r] != NULL; r++) {
        cJSON *by = cJSON_AddObjectToObject(req, route_names[r]);
        int64_t total = 0;
        for (size_t s = 0; by != NULL && s < 600; s++) {
            if (f->routes[r].by_status[s] == 0)
                continue;
            util_fmt(num, sizeof(num), "%zu", s);
            cJSON_AddNumberToObject(by, num, (double)f->routes[r].by_status[s]);
            total += f->routes[r].by_status[s];
        }
        if (by != NULL)
            cJSON_AddNumberToObject(by, "total", (double)total);
    }
    cJSON_AddItemToObject(root, "suppressions", suppressions_json(f));
    rl = cJSON_AddObjectToObject(root, "rate_limit");
    if (rl != NULL) {
        cJSON_AddNumberToObject(rl, "limit", (double)f->faults.rate_limit);
        cJSON_AddNumberToObject(rl, "window_count", (double)f->window_count);
        cJSON_AddNumberToObject(rl, "last_429_reset", (double)f->last_reset);
    }
    ev = cJSON_AddObjectToObject(root, "events");
    if (ev != NULL) {
        cJSON_AddNumberToObject(ev, "posted", (double)f->events_posted);
        cJSON_AddNumberToObject(ev, "last_status", (double)f->last_event_status);
    }
    cJSON_AddItemToObject(root, "faults", faults_json(f));
unlock:
    pthread_mutex_unlock(&f->lock);
    answer_json(a, MHD_HTTP_OK, root);
}

/* GET /_mail[?to=ADDR][&key=K]: one entry per personalization, oldest first. */
static void admin_mail(struct fake *f, struct MHD_Connection *conn, struct answer *a)
{
    const char *to = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
    const char *key = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
    char *lc = to != NULL ? lower_dup(to) : NULL;
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "mail");
    sqlite3_stmt *st;
    int n = 0;

    pthread_mutex_lock(&f->lock);
    st = prep(f, "SELECT m.message_id, p.idx, m.received_at, m.request, p.body, p.dropped"
                 " FROM personalizations p JOIN mail m ON m.id = p.mail_id"
                 " WHERE (?1 IS NULL OR p.to_email = ?1) AND (?2 IS NULL OR p.odsync_key = ?2)"
                 " ORDER BY m.id, p.idx");
    if (st != NULL && arr != NULL) {
        if (lc != NULL)
            sqlite3_bind_text(st, 1, lc, -1, SQLITE_STATIC);
        if (key != NULL)
            sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            cJSON *top = cJSON_Parse((const char *)sqlite3_column_text(st, 3));
            cJSON *p = cJSON_Parse((const char *)sqlite3_column_text(st, 4));
            cJSON *e = cJSON_CreateObject(), *asm_, *v;
            const char *dropped = (const char *)sqlite3_column_text(st, 5);
            if (top == NULL || p == NULL || e == NULL) {
                cJSON_Delete(top);
                cJSON_Delete(p);
                cJSON_Delete(e);
                break;
            }
            cJSON_AddStringToObject(e, "message_id", (const char *)sqlite3_column_text(st, 0));
            cJSON_AddNumberToObject(e, "index", sqlite3_column_int(st, 1));
            cJSON_AddNumberToObject(e, "received_at_ms", (double)sqlite3_column_int64(st, 2));
            v = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "to"), 0), "email");
            cJSON_AddStringToObject(e, "to", cJSON_IsString(v) ? v->valuestring : "");
            static const char *const from_p[] = {"subject", "dynamic_template_data", "custom_args",
                                                 "headers"};
            for (size_t i = 0; i < UTIL_ARRAY_LEN(from_p); i++) {
                v = cJSON_DetachItemFromObjectCaseSensitive(p, from_p[i]);
                if (v == NULL)
                    cJSON_AddNullToObject(e, from_p[i]);
                else
                    cJSON_AddItemToObject(e, from_p[i], v);
            }
            static const char *const from_top[] = {"template_id", "from",       "reply_to",
                                                   "content",     "categories", "headers"};
            for (size_t i = 0; i < UTIL_ARRAY_LEN(from_top); i++) {
                const char *name = i == 5 ? "mail_headers" : from_top[i];
                v = cJSON_DetachItemFromObjectCaseSensitive(top, from_top[i]);
                if (v == NULL)
                    cJSON_AddNullToObject(e, name);
                else
                    cJSON_AddItemToObject(e, name, v);
            }
            asm_ = cJSON_DetachItemFromObjectCaseSensitive(top, "asm");
            v = cJSON_GetObjectItemCaseSensitive(asm_, "group_id");
            if (cJSON_IsNumber(v))
                cJSON_AddNumberToObject(e, "asm_group_id", v->valuedouble);
            else
                cJSON_AddNullToObject(e, "asm_group_id");
            if (asm_ != NULL)
                cJSON_AddItemToObject(e, "asm", asm_);
            else
                cJSON_AddNullToObject(e, "asm");
            if (dropped != NULL)
                cJSON_AddStringToObject(e, "dropped", dropped);
            else
                cJSON_AddNullToObject(e, "dropped");
            cJSON_AddItemToArray(arr, e);
            cJSON_Delete(top);
            cJSON_Delete(p);
            n++;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&f->lock);
    util_free(lc);
    cJSON_AddNumberToObject(root, "count", n);
    answer_json(a, MHD_HTTP_OK, root);
}

/* GET|POST /_faults. */
static void admin_faults(struct fake *f, const char *method, const struct serve_upload *up,
                         struct answer *a)
{
    cJSON *body = NULL, *out = NULL;
    char msg[128];
    pthread_mutex_lock(&f->lock);
    if (strcmp(method, "POST") == 0) {
        struct faults next = f->faults;
        const cJSON *item;
        body = cJSON_ParseWithLength(up->body.data ? up->body.data : "", up->body.len);
        if (!cJSON_IsObject(body)) {
            answer_admin_error(a, MHD_HTTP_BAD_REQUEST, "expected a JSON object");
            goto unlock;
        }
        cJSON_ArrayForEach(item, body)
        {
            const struct setting *s = setting_find(item->string);
            int64_t v;
            if (strcmp(item->string, "templates") == 0) {
                const cJSON *t;
                int ok = cJSON_IsArray(item);
                cJSON_ArrayForEach(t, item) ok &=
                    cJSON_IsString(t) && strncmp(t->valuestring, "d-", 2) == 0;
                if (!ok || cJSON_GetArraySize(item) > FAKE_MAX_TEMPLATES) {
                    answer_admin_error(a, MHD_HTTP_BAD_REQUEST,
                                       "templates: expected an array of \"d-...\" ids");
                    goto unlock;
                }
                continue;
            }
            if (s == NULL || setting_json(s, item, &v) != ODSYNC_OK) {
                util_fmt(msg, sizeof(msg), "%s: %s", item->string,
                         s == NULL ? "unknown setting" : "bad value");
                answer_admin_error(a, MHD_HTTP_BAD_REQUEST, msg);
                goto unlock;
            }
            *setting_ptr(&next, s) = v;
        }
        f->faults = next;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "templates"), *tt;
        if (t != NULL) {
            for (size_t i = 0; i < f->n_templates; i++)
                util_free(f->templates[i]);
            f->n_templates = 0;
            cJSON_ArrayForEach(tt, t) template_add(f, tt->valuestring);
        }
    } else if (strcmp(method, "GET") != 0) {
        answer_admin_error(a, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        goto unlock;
    }
    out = faults_json(f);
    answer_json(a, MHD_HTTP_OK, out);
unlock:
    pthread_mutex_unlock(&f->lock);
    cJSON_Delete(body);
}

/* POST /_suppress {"list","group_id"?,"emails":[...],"remove"?}. */
static void admin_suppress(struct fake *f, const struct serve_upload *up, struct answer *a)
{
    cJSON *body = cJSON_ParseWithLength(up->body.data ? up->body.data : "", up->body.len);
    const char *list = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "list"));
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(body, "group_id");
    const cJSON *emails = cJSON_GetObjectItemCaseSensitive(body, "emails"), *e;
    int remove = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "remove")), changed = 0;
    int64_t group = cJSON_IsNumber(g) ? (int64_t)g->valuedouble : 0;

    if (list == NULL ||
        (strcmp(list, "unsubscribes") != 0 && strcmp(list, "bounces") != 0 &&
         strcmp(list, "spam_reports") != 0 && strcmp(list, "group") != 0) ||
        (strcmp(list, "group") == 0) != (group > 0) || !cJSON_IsArray(emails)) {
        answer_admin_error(a, MHD_HTTP_BAD_REQUEST,
                           "expected {\"list\": \"unsubscribes\"|\"bounces\"|\"spam_reports\"|"
                           "\"group\", \"group_id\": N (group only), \"emails\": [...]}");
        cJSON_Delete(body);
        return;
    }
    pthread_mutex_lock(&f->lock);
    cJSON_ArrayForEach(e, emails)
    {
        if (cJSON_IsString(e))
            changed += db_suppress(f, list, group, e->valuestring, "seeded", remove);
    }
    pthread_mutex_unlock(&f->lock);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "changed", changed);
    answer_json(a, MHD_HTTP_OK, out);
    cJSON_Delete(body);
}

/* POST /_reset: mail, suppressions and counters; settings and keys kept. */
static void admin_reset(struct fake *f, struct answer *a)
{
    pthread_mutex_lock(&f->lock);
    int ok = sqlite3_exec(f->db,
                          "DELETE FROM personalizations; DELETE FROM mail;"
                          " DELETE FROM suppressions;",
                          NULL, NULL, NULL) == SQLITE_OK;
    memset(f->routes, 0, sizeof(f->routes));
    f->requests = 0;
    f->events_posted = 0;
    f->last_event_status = 0;
    f->window_count = 0;
    f->last_reset = 0;
    pthread_mutex_unlock(&f->lock);
    if (!ok) {
        answer_admin_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error");
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(out, "reset", 1);
    answer_json(a, MHD_HTTP_OK, out);
}

/* ---- signed events ------------------------------------------------------------------------ */

/* Base64 of data[0..n) (no line breaks); caller frees with util_free. */
static char *base64(const unsigned char *data, size_t n)
{
    char *out = util_malloc(4 * ((n + 2) / 3) + 1);
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    return out;
}

/* The base64 DER SubjectPublicKeyInfo of key; caller frees with util_free. */
static char *public_key_b64(EVP_PKEY *key)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    char *out = n > 0 ? base64(der, (size_t)n) : NULL;
    OPENSSL_free(der);
    return out;
}

/* Base64 DER ECDSA signature of SHA-256(ts || payload) with key; caller frees with
 * util_free. */
static char *sign(EVP_PKEY *key, const char *ts, const char *payload, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[160];
    size_t sig_len = sizeof(sig);
    char *out = NULL;
    if (md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSignUpdate(md, ts, strlen(ts)) == 1 &&
        EVP_DigestSignUpdate(md, payload, len) == 1 && EVP_DigestSignFinal(md, sig, &sig_len) == 1)
        out = base64(sig, sig_len);
    EVP_MD_CTX_free(md);
    return out;
}

/* Complete one event (timestamp, sg_event_id, sg_message_id from a stored mail when it has
 * odsync_key) and apply it to the suppression lists (f->lock held). */
static void event_apply(struct fake *f, cJSON *ev, int64_t now)
{
    char id[32];
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "event"));
    const char *email = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "email"));
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(ev, "asm_group_id");
    const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "odsync_key"));
    int64_t group = cJSON_IsNumber(g) ? (int64_t)g->valuedouble : 0;

    if (cJSON_GetObjectItemCaseSensitive(ev, "timestamp") == NULL)
        cJSON_AddNumberToObject(ev, "timestamp", (double)now);
    if (cJSON_GetObjectItemCaseSensitive(ev, "sg_event_id") == NULL) {
        random_id(f, id, 22);
        cJSON_AddStringToObject(ev, "sg_event_id", id);
    }
    if (cJSON_GetObjectItemCaseSensitive(ev, "sg_message_id") == NULL && key != NULL) {
        sqlite3_stmt *st = prep(f, "SELECT m.message_id, p.idx FROM personalizations p JOIN mail"
                                   " m ON m.id = p.mail_id WHERE p.odsync_key = ?1"
                                   " ORDER BY m.id DESC LIMIT 1");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                char sg[96];
                util_fmt(sg, sizeof(sg), "%s.recvd-fake-%d-0.0",
                         (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1));
                cJSON_AddStringToObject(ev, "sg_message_id", sg);
            }
        }
        sqlite3_finalize(st);
    }
    if (type == NULL || email == NULL)
        return;
    if (strcmp(type, "unsubscribe") == 0)
        db_suppress(f, "unsubscribes", 0, email, "event", 0);
    else if (strcmp(type, "group_unsubscribe") == 0 && group > 0)
        db_suppress(f, "group", group, email, "event", 0);
    else if (strcmp(type, "group_resubscribe") == 0 && group > 0)
        db_suppress(f, "group", group, email, "event", 1);
    else if (strcmp(type, "bounce") == 0)
        db_suppress(f, "bounces", 0, email, "550 5.1.1 The email account does not exist", 0);
    else if (strcmp(type, "spamreport") == 0)
        db_suppress(f, "spam_reports", 0, email, "event", 0);
}

/* Change one byte of payload in place (a digit or letter after the middle, kept printable),
 * so the JSON may stay valid while the signature no longer matches. */
static void tamper(char *payload, size_t len)
{
    for (size_t i = len / 2; i < len; i++) {
        char c = payload[i];
        if (c >= '0' && c <= '9') {
            payload[i] = c == '9' ? '0' : (char)(c + 1);
            return;
        }
        if ((c >= 'a' && c <= 'y') || (c >= 'A' && c <= 'Y')) {
            payload[i] = (char)(c + 1);
            return;
        }
    }
    if (len > 0)
        payload[len - 1] ^= 1;
}

/* POST /_events {"url","events":[...],"sign":"valid"|"wrong-key"|"none"|"garbage",
 * "tamper":bool,"timestamp":N}: sign and post the array, answer what the receiver said. */
static void admin_events(struct fake *f, const struct serve_upload *up, struct answer *a)
{
    cJSON *body = cJSON_ParseWithLength(up->body.data ? up->body.data : "", up->body.len);
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "url"));
    cJSON *events = cJSON_GetObjectItemCaseSensitive(body, "events"), *ev, *out = NULL;
    const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "sign"));
    const cJSON *tsj = cJSON_GetObjectItemCaseSensitive(body, "timestamp");
    int do_tamper = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "tamper"));
    char *payload = NULL, *sig = NULL, ts[24];
    struct http_client *c = NULL;
    struct odsync_http_response *resp = NULL;
    int64_t now = (int64_t)time(NULL);

    if (mode == NULL)
        mode = "valid";
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        !cJSON_IsArray(events) ||
        (strcmp(mode, "valid") != 0 && strcmp(mode, "wrong-key") != 0 &&
         strcmp(mode, "none") != 0 && strcmp(mode, "garbage") != 0) ||
        (tsj != NULL && !cJSON_IsNumber(tsj))) {
        answer_admin_error(a, MHD_HTTP_BAD_REQUEST,
                           "expected {\"url\": \"http://...\", \"events\": [...], \"sign\": "
                           "\"valid\"|\"wrong-key\"|\"none\"|\"garbage\", \"tamper\": bool, "
                           "\"timestamp\": N}");
        goto cleanup;
    }
    cJSON_ArrayForEach(ev, events)
    {
        if (!cJSON_IsObject(ev)) {
            answer_admin_error(a, MHD_HTTP_BAD_REQUEST, "every event must be an object");
            goto cleanup;
        }
    }
    util_fmt(ts, sizeof(ts), "%lld", tsj != NULL ? (long long)tsj->valuedouble : (long long)now);
    pthread_mutex_lock(&f->lock);
    cJSON_ArrayForEach(ev, events) event_apply(f, ev, now);
    pthread_mutex_unlock(&f->lock);
    payload = cJSON_PrintUnformatted(events);
    if (payload == NULL)
        goto nomem;
    size_t plen = strlen(payload);
    if (strcmp(mode, "valid") == 0 || strcmp(mode, "wrong-key") == 0) {
        sig = sign(strcmp(mode, "valid") == 0 ? f->key : f->wrong_key, ts, payload, plen);
        if (sig == NULL)
            goto nomem;
    } else if (strcmp(mode, "garbage") == 0) {
        sig = util_strdup("bm90IGEgc2lnbmF0dXJl");
    }
    if (do_tamper)
        tamper(payload, plen);

    struct odsync_http_header headers[3] = {{"Content-Type", "application/json"},
                                            {"X-Twilio-Email-Event-Webhook-Timestamp", ts},
                                            {"X-Twilio-Email-Event-Webhook-Signature", sig}};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url,
                                      .headers = headers,
                                      .header_count = sig != NULL ? 3 : 2,
                                      .body = payload,
                                      .body_len = plen,
                                      .timeout_ms = 30000};
    c = http_client_create();
    if (c == NULL)
        goto nomem;
    http_client_perform(c, &req, &resp);
    out = cJSON_CreateObject();
    if (out == NULL)
        goto nomem;
    cJSON_AddNumberToObject(out, "status", resp != NULL ? resp->status : 0);
    if (resp != NULL && resp->error != NULL)
        cJSON_AddStringToObject(out, "error", resp->error);
    else
        cJSON_AddNullToObject(out, "error");
    cJSON_AddStringToObject(out, "body", resp != NULL ? resp->body : "");
    cJSON_AddStringToObject(out, "timestamp", ts);
    if (sig != NULL)
        cJSON_AddStringToObject(out, "signature", sig);
    else
        cJSON_AddNullToObject(out, "signature");
    cJSON_AddStringToObject(out, "payload", payload);
    cJSON_AddNumberToObject(out, "events", cJSON_GetArraySize(events));
    pthread_mutex_lock(&f->lock);
    f->events_posted += cJSON_GetArraySize(events);
    f->last_event_status = resp != NULL ? resp->status : 0;
    pthread_mutex_unlock(&f->lock);
    log_info(FAKE_LOG, "posted %d event(s) (sign %s%s): HTTP %d", cJSON_GetArraySize(events), mode,
             do_tamper ? ", tampered" : "", resp != NULL ? (int)resp->status : 0);
    answer_json(a, MHD_HTTP_OK, out);
    goto cleanup;
nomem:
    answer_admin_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
cleanup:
    http_response_free(resp);
    http_client_destroy(c);
    cJSON_free(payload);
    util_free(sig);
    cJSON_Delete(body);
}

/* Admin routes: returns 1 when url is one (a filled). */
static int route_admin(struct fake *f, struct MHD_Connection *conn, const char *url,
                       const char *method, const struct serve_upload *up, struct answer *a)
{
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (strncmp(url, "/_", 2) != 0)
        return 0;
    if (up->too_big)
        answer_admin_error(a, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
    else if (strcmp(url, "/_state") == 0 && get)
        admin_state(f, a);
    else if (strcmp(url, "/_mail") == 0 && get)
        admin_mail(f, conn, a);
    else if (strcmp(url, "/_faults") == 0)
        admin_faults(f, method, up, a);
    else if (strcmp(url, "/_suppress") == 0 && post)
        admin_suppress(f, up, a);
    else if (strcmp(url, "/_reset") == 0 && post)
        admin_reset(f, a);
    else if (strcmp(url, "/_events") == 0 && post)
        admin_events(f, up, a);
    else if (strcmp(url, "/_public_key") == 0 && get) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "public_key", f->public_key_b64);
        answer_json(a, MHD_HTTP_OK, out);
    } else
        answer_admin_error(a, MHD_HTTP_NOT_FOUND, "no such admin route");
    return 1;
}

/* ---- MHD callbacks ------------------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct fake *f = cls;
    struct serve_upload *up;
    enum MHD_Result more;
    struct answer a;
    (void)version;
    memset(&a, 0, sizeof(a));
    up = serve_collect(req_cls, upload_data, upload_data_size, FAKE_MAX_BODY, &more);
    if (up == NULL)
        return more;
    if (!route_admin(f, conn, url, method, up, &a))
        route_data(f, conn, url, method, up, &a);
    log_debug(FAKE_LOG, "%s %.*s (%zu bytes): %u", method, (int)strcspn(url, "?"), url,
              up->body.len, a.status);
    return send_answer(conn, &a);
}

/* ---- start-up ----------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: fake_sendgrid --api-key KEY [options]\n"
          "\n"
          "A fake of SendGrid's v3 Mail Send and suppression APIs with SQLite storage, faults,\n"
          "rate limits and signed Event Webhook posts. See contrib/fakes/README.md.\n"
          "\n"
          "  --api-key KEY           the API key every data request must carry (required)\n"
          "  --listen A.B.C.D:PORT   address to listen on (default 127.0.0.1:0, a free port)\n"
          "  --db FILE               SQLite database (default: in memory)\n"
          "  --template ID           a known dynamic template (repeatable; none: any d-...)\n"
          "  --seed N                PRNG seed for message and event ids (default: the time)\n"
          "  --verbose               log one line per request on stderr\n"
          "  --help                  this text\n"
          "\n"
          "Settings (also POST /_faults): --rate-limit N --rate-window-s S --rate-limit-next N\n"
          "  --rate-reset-s S --fail-next N --fail-status S --html502-next N --truncate-next N\n"
          "  --delay-ms N --auth-fail --unverified-sender\n"
          "\n"
          "Prints \"listening on 127.0.0.1:PORT\" when ready. SIGTERM/SIGINT exit 0; bad flags "
          "exit 2.\n",
          out);
}

struct options {
    const char *listen_at, *api_key, *db;
    int64_t seed;
    int verbose, help, seeded;
};

static int parse_args(int argc, char **argv, struct options *o, struct fake *f)
{
    for (int i = 1; i < argc; i++) {
        char name[40];
        const char *arg = argv[i], *value = NULL, *eq = strchr(arg, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || nlen >= sizeof(name)) {
            fprintf(stderr, "fake_sendgrid: unknown argument \"%s\" (see --help)\n", arg);
            return ODSYNC_PARSE;
        }
        memcpy(name, arg + 2, nlen - 2);
        name[nlen - 2] = '\0';
        const struct setting *s = strchr(name, '_') == NULL ? setting_find(name) : NULL;
        int flag =
            strcmp(name, "help") == 0 || strcmp(name, "verbose") == 0 || (s != NULL && s->boolean);
        int known = flag || s != NULL || strcmp(name, "listen") == 0 ||
                    strcmp(name, "api-key") == 0 || strcmp(name, "db") == 0 ||
                    strcmp(name, "template") == 0 || strcmp(name, "seed") == 0;
        if (!known) {
            fprintf(stderr, "fake_sendgrid: unknown flag --%s (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (flag) {
            if (eq != NULL) {
                fprintf(stderr, "fake_sendgrid: --%s takes no value\n", name);
                return ODSYNC_PARSE;
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "fake_sendgrid: --%s needs a value (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (strcmp(name, "help") == 0) {
            o->help = 1;
        } else if (strcmp(name, "verbose") == 0) {
            o->verbose = 1;
        } else if (strcmp(name, "listen") == 0) {
            o->listen_at = value;
        } else if (strcmp(name, "api-key") == 0) {
            o->api_key = value;
        } else if (strcmp(name, "db") == 0) {
            o->db = value;
        } else if (strcmp(name, "template") == 0) {
            if (template_add(f, value) != ODSYNC_OK) {
                fprintf(stderr, "fake_sendgrid: --template: expected \"d-...\", got \"%s\"\n",
                        value);
                return ODSYNC_PARSE;
            }
        } else if (strcmp(name, "seed") == 0) {
            if (util_parse_i64(value, 0, INT64_MAX, &o->seed) != ODSYNC_OK) {
                fprintf(stderr, "fake_sendgrid: --seed: bad value \"%s\"\n", value);
                return ODSYNC_PARSE;
            }
            o->seeded = 1;
        } else if (s->boolean) {
            *setting_ptr(&f->faults, s) = 1;
        } else if (util_parse_i64(value, s->min, s->max, setting_ptr(&f->faults, s)) != ODSYNC_OK) {
            fprintf(stderr, "fake_sendgrid: --%s: expected an integer from %lld to %lld\n", name,
                    (long long)s->min, (long long)s->max);
            return ODSYNC_PARSE;
        }
    }
    return ODSYNC_OK;
}

int main(int argc, char **argv)
{
    static struct fake f; /* static: big (counters) and reachable from MHD threads */
    struct options o = {.listen_at = "127.0.0.1:0", .api_key = NULL, .db = ":memory:"};
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in addr;
    char host[INET_ADDRSTRLEN];
    sigset_t sigs;
    int sig, rc = 2, locked_init = 0, http_init = 0;

    for (size_t r = 0; r < FAKE_MAX_ROUTES; r++)
        f.routes[r].route = route_names[r];
    f.faults = (struct faults){.fail_status = 500, .rate_reset_s = 60, .rate_window_s = 60};
    if (parse_args(argc, argv, &o, &f) != ODSYNC_OK)
        goto cleanup;
    if (o.help) {
        usage(stdout);
        rc = 0;
        goto cleanup;
    }
    if (o.api_key == NULL || o.api_key[0] == '\0') {
        fprintf(stderr, "fake_sendgrid: --api-key is required (see --help)\n");
        goto cleanup;
    }
    if (serve_parse_listen(o.listen_at, &addr) != ODSYNC_OK) {
        fprintf(stderr, "fake_sendgrid: --listen: expected A.B.C.D:PORT, got \"%s\"\n",
                o.listen_at);
        goto cleanup;
    }
    rc = 1;
    log_setup(stderr, o.verbose ? ODSYNC_LOG_DEBUG : ODSYNC_LOG_INFO, LOG_TEXT);
    if (pthread_mutex_init(&f.lock, NULL) != 0) {
        fprintf(stderr, "fake_sendgrid: cannot create a mutex\n");
        goto cleanup;
    }
    locked_init = 1;
    f.rng = o.seeded ? (uint64_t)o.seed : (uint64_t)util_now_ms() ^ ((uint64_t)getpid() << 32);
    size_t blen = strlen(o.api_key) + 8;
    f.bearer = util_malloc(blen);
    if (f.bearer == NULL || log_add_secret(o.api_key) != ODSYNC_OK) {
        fprintf(stderr, "fake_sendgrid: out of memory\n");
        goto cleanup;
    }
    util_fmt(f.bearer, blen, "Bearer %s", o.api_key);
    f.key = EVP_EC_gen("P-256");
    f.wrong_key = EVP_EC_gen("P-256");
    f.public_key_b64 = f.key != NULL ? public_key_b64(f.key) : NULL;
    if (f.key == NULL || f.wrong_key == NULL || f.public_key_b64 == NULL) {
        fprintf(stderr, "fake_sendgrid: cannot generate the ECDSA P-256 key pair\n");
        goto cleanup;
    }
    if (http_global_init() != ODSYNC_OK) {
        fprintf(stderr, "fake_sendgrid: cannot initialise libcurl\n");
        goto cleanup;
    }
    http_init = 1;
    if (sqlite3_open_v2(o.db, &f.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(f.db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "fake_sendgrid: %s: %s\n", o.db,
                f.db != NULL ? sqlite3_errmsg(f.db) : "out of memory");
        goto cleanup;
    }
    sqlite3_busy_timeout(f.db, 5000);

    serve_block_signals(&sigs);

    d = serve_start(&addr, on_request, &f, NULL);
    if (d == NULL) {
        fprintf(stderr, "fake_sendgrid: cannot listen on %s\n", o.listen_at);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    printf("listening on %s:%u\n", host, info != NULL ? (unsigned)info->port : 0u);
    fflush(stdout);
    log_info(FAKE_LOG, "listening on %s:%u, mail in %s", host,
             info != NULL ? (unsigned)info->port : 0u, o.db);

    while (sigwait(&sigs, &sig) != 0)
        ;
    log_info(FAKE_LOG, "signal %d: stopping", sig);
    rc = 0;
cleanup:
    atomic_store(&f.stopping, 1);
    if (d != NULL)
        MHD_stop_daemon(d);
    sqlite3_close(f.db);
    if (locked_init)
        pthread_mutex_destroy(&f.lock);
    for (size_t i = 0; i < f.n_templates; i++)
        util_free(f.templates[i]);
    util_free(f.bearer);
    util_free(f.public_key_b64);
    EVP_PKEY_free(f.key);
    EVP_PKEY_free(f.wrong_key);
    if (http_init)
        http_global_cleanup();
    log_shutdown();
    return rc;
}
