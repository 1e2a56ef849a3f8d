/*
 * fake_twilio: a faithful fake of Twilio Programmable Messaging (API 2010-04-01) for the
 * twilio plugin's tests, the daemon's webhook tests and demos. contrib/fakes/README.md
 * ("fake_twilio") documents every flag, route, error, fault and JSON shape; this comment is
 * the short version.
 *
 *   fake_twilio --account-sid AC… --auth-token T [--api-key-sid SK… --api-key-secret S]
 *               [--messaging-service-sid MG…] [--numbers +1…,+1…] [--invalid-numbers …]
 *               [--landline-numbers …] [--listen 127.0.0.1:0] [--db FILE] [settings…]
 *
 * Prints "listening on 127.0.0.1:PORT" on stdout once ready and nothing else there. SIGTERM or
 * SIGINT stops it cleanly (exit 0). Bad flags exit 2, start-up failures exit 1.
 *
 * Twilio routes (HTTP Basic AccountSid:AuthToken or ApiKeySid:ApiKeySecret; the path's
 * AccountSid must be the account's, else 401 code 20003):
 *   POST /2010-04-01/Accounts/{AccountSid}/Messages.json   form-encoded send -> 201 message
 *   GET  /2010-04-01/Accounts/{AccountSid}/Messages.json   list (To, From, DateSent[<>])
 *   GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json
 * Errors carry Twilio's body {"code","message","more_info","status"}: 21604/21603/21602
 * missing To/sender/Body, 21211 invalid To, 21614 landline, 21610 the recipient replied
 * STOP, 21617 body too long, 21606/21212 bad From, 20429 rate limit (429), 20003 (401).
 *
 * Admin routes (no auth, loopback; never counted or faulted): GET /_state, GET /_messages
 * [?to=|?sid=], GET /_webhooks, GET|POST /_faults, POST /_reset, POST /_optouts,
 * POST /_numbers, and the webhook injectors POST /_inbound and POST /_status, which post a
 * form-encoded, X-Twilio-Signature-signed webhook to the daemon and answer with the status
 * the daemon gave.
 *
 * Messages, opt-outs, special numbers and sent webhooks live in SQLite (--db FILE, default in
 * memory). Threads: libmicrohttpd runs one thread per connection; one mutex (struct
 * fake.lock) guards SQLite, the counters and the settings; webhooks are posted outside it,
 * automatic status callbacks from one worker thread. Bodies and numbers (test patient data)
 * are never logged; the auth token and API key secret are registered as log secrets.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include "http_client.h"
#include "log.h"
#include "serve.h"
#include "util.h"

#define FAKE_LOG          "fake_twilio"
#define FAKE_MAX_BODY     ((size_t)1024 * 1024)
#define FAKE_FORM_MAX     64 /* parameters in one form body */
#define FAKE_MAX_DELAY_MS 600000
#define FAKE_API          "/2010-04-01/Accounts/"
#define FAKE_MORE_INFO    "https://www.twilio.com/docs/errors/"
#define FAKE_HTML_502                                                                              \
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body>"       \
    "</html>"
#define FAKE_WEBHOOK_TIMEOUT_MS 10000
#define FAKE_MAX_CODES          64

/* Settings changeable at run time (POST /_faults) and by flags of the same name. */
struct settings {
    int64_t fail_next;       /* next N sends answer 500, code 20500 */
    int64_t html502_next;    /* next N sends answer a 502 HTML page */
    int64_t truncate_next;   /* next N sends get their answer cut in half */
    int64_t truncate_status; /* 2xx: the message is created, its 201 cut; else nothing stored */
    int64_t rate_limit_next; /* next N sends answer 429, code 20429 */
    int64_t rate_per_second; /* sends allowed per wall-clock second; 0 = no cap */
    int64_t retry_after;     /* Retry-After seconds on 429s; 0 = no header (Twilio's habit) */
    int64_t delay_ms;        /* wait before answering each API request */
    int64_t body_max;        /* Body limit in characters (Twilio: 1600) */
    int64_t seed;            /* PRNG seed for SIDs */
    int advanced_opt_out;    /* inbound webhooks carry OptOutType */
    char auto_status[16];    /* "off", or the final status posted after "sent" */
};

struct count {
    int code;
    int64_t n;
};

/* Counters since start or POST /_reset. Not persisted. */
struct stats {
    int64_t requests;       /* API requests (not admin) */
    int64_t by_status[600]; /* answers per HTTP status */
    struct count by_code[FAKE_MAX_CODES];
    size_t n_codes;
};

/* An automatic status callback waiting for the worker. */
struct job {
    char sid[40];
    struct job *next;
};

struct fake {
    pthread_mutex_t lock; /* guards everything below up to "immutable" */
    sqlite3 *db;          /* owned */
    struct settings set;
    uint64_t rng;
    int64_t window_s, window_count; /* rate-per-second accounting */
    struct stats stats;
    struct job *head, *tail; /* owned: auto status jobs */
    pthread_cond_t wake;     /* signalled when a job is queued or on shutdown */
    /* immutable after start (strings borrowed from argv): */
    const char *account_sid, *auth_token, *key_sid, *key_secret, *service_sid;
    const char *numbers; /* comma-separated numbers the account owns, or NULL = any */
    atomic_int stopping;
};

/* An answer being built. */
struct answer {
    unsigned status;
    char *body;          /* owned (util_free); NULL with a status means NOMEM */
    const char *type;    /* static content type */
    int64_t retry_after; /* seconds for a Retry-After header, or -1 */
    int www_auth;        /* add WWW-Authenticate: Basic */
};

/* A decoded form body: owned strings. */
struct form {
    char *name[FAKE_FORM_MAX];
    char *value[FAKE_FORM_MAX];
    size_t n;
};

/* A parameter of an outgoing webhook (borrowed strings). */
struct kv {
    const char *name;
    const char *value;
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* splitmix64. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A new SID "XX" + 32 hex digits into out (at least 35 bytes). Needs f->lock. */
static void new_sid(struct fake *f, const char *prefix, char *out, size_t len)
{
    uint64_t a = rng_next(&f->rng), b = rng_next(&f->rng);
    util_fmt(out, len, "%s%016llx%016llx", prefix, (unsigned long long)a, (unsigned long long)b);
}

/* ms since the epoch as RFC 2822 ("Fri, 01 May 2026 14:03:07 +0000") into buf. */
static void rfc2822(int64_t ms, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    util_fmt(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ms since the epoch as "YYYY-MM-DD" into buf (at least 11 bytes). */
static void day_of(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

/* Sleep ms milliseconds in short slices, ending early once shutdown begins. */
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

/* The value of hex digit c, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode one form-encoded component s[0..n) ('+' is a space) into a new string (caller frees
 * with util_free). NULL on a bad escape, an encoded NUL or NOMEM. */
static char *form_decode(const char *s, size_t n)
{
    char *out = util_malloc(n + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] != '%') {
            out[o++] = s[i];
        } else {
            int h = i + 2 < n ? hex_value(s[i + 1]) : -1, l = h >= 0 ? hex_value(s[i + 2]) : -1;
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                util_free(out);
                return NULL;
            }
            out[o++] = (char)(h * 16 + l);
            i += 2;
        }
    }
    out[o] = '\0';
    return out;
}

/* Free the strings of fm (from form_parse); fm is then empty and reusable. */
static void form_free(struct form *fm)
{
    for (size_t i = 0; i < fm->n; i++) {
        util_free(fm->name[i]);
        util_free(fm->value[i]);
    }
    fm->n = 0;
}

/* Parse an application/x-www-form-urlencoded body into fm (zeroed by the caller; free with
 * form_free). Returns ODSYNC_OK, ODSYNC_PARSE (bad escape, too many fields) or ODSYNC_NOMEM. */
static int form_parse(const char *s, size_t len, struct form *fm)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i, eq;
        while (end < len && s[end] != '&')
            end++;
        if (end > i) {
            if (fm->n >= FAKE_FORM_MAX)
                return ODSYNC_PARSE;
            for (eq = i; eq < end && s[eq] != '='; eq++)
                ;
            fm->name[fm->n] = form_decode(s + i, eq - i);
            fm->value[fm->n] = eq < end ? form_decode(s + eq + 1, end - eq - 1) : util_strdup("");
            fm->n++;
            if (fm->name[fm->n - 1] == NULL || fm->value[fm->n - 1] == NULL)
                return ODSYNC_PARSE;
        }
        i = end + 1;
    }
    return ODSYNC_OK;
}

/* The last value of name in fm, or NULL. Borrowed from fm. */
static const char *form_get(const struct form *fm, const char *name)
{
    for (size_t i = fm->n; i > 0; i--)
        if (strcmp(fm->name[i - 1], name) == 0)
            return fm->value[i - 1];
    return NULL;
}

/* Append s form-encoded as Twilio sends it (space as '+', unreserved kept). */
static void form_encode(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            sbuf_append(b, (const char *)s, 1);
        else if (c == ' ')
            sbuf_append(b, "+", 1);
        else
            sbuf_append(b, esc, 3);
    }
}

/* 1 when s is an E.164 number Twilio accepts as a recipient: '+', a first digit 1-9, 2 to 15
 * digits; +1 (NANP) numbers have exactly 11 digits. */
static int e164_valid(const char *s)
{
    size_t n;
    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    for (n = 1; s[n] != '\0'; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    n--;
    if (n < 2 || n > 15)
        return 0;
    return s[1] != '1' || n == 11;
}

/* 1 when sid is prefix followed by 32 hex digits. */
static int sid_valid(const char *sid, const char *prefix)
{
    if (sid == NULL || strlen(sid) != 34 || strncmp(sid, prefix, 2) != 0)
        return 0;
    for (size_t i = 2; i < 34; i++)
        if (hex_value(sid[i]) < 0)
            return 0;
    return 1;
}

/* 1 when number is in the comma-separated list (NULL list: 0). */
static int in_list(const char *list, const char *number)
{
    size_t n = strlen(number);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, number, n) == 0)
            return 1;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return 0;
}

/* The first number of the list into out ("" when none). */
static void first_of(const char *list, char *out, size_t len)
{
    size_t n = list != NULL ? strcspn(list, ",") : 0;
    if (n >= len)
        n = 0;
    memcpy(out, list != NULL ? list : "", n);
    out[n] = '\0';
}

/* Characters (UTF-8 code points) in s, and whether all are 7-bit (GSM-7, roughly). */
static size_t chars_of(const char *s, int *gsm)
{
    size_t n = 0;
    *gsm = 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80)
            *gsm = 0;
        if ((*p & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/* Segments of an SMS body: 160/153 GSM-7 characters, 70/67 UCS-2. */
static int64_t segments_of(const char *body)
{
    int gsm;
    size_t n = chars_of(body, &gsm);
    size_t one = gsm ? 160 : 70, part = gsm ? 153 : 67;
    return n <= one ? 1 : (int64_t)((n + part - 1) / part);
}

/* The opt-out keyword class of an inbound body ("STOP", "START", "HELP") or NULL: the whole
 * message, trimmed, case-insensitive, as Twilio's default keywords. */
static const char *keyword_type(const char *body)
{
    static const struct {
        const char *word, *type;
    } words[] = {{"STOP", "STOP"},   {"STOPALL", "STOP"}, {"UNSUBSCRIBE", "STOP"},
                 {"CANCEL", "STOP"}, {"END", "STOP"},     {"QUIT", "STOP"},
                 {"REVOKE", "STOP"}, {"OPTOUT", "STOP"},  {"START", "START"},
                 {"YES", "START"},   {"UNSTOP", "START"}, {"HELP", "HELP"},
                 {"INFO", "HELP"}};
    char w[16];
    size_t from = strspn(body, " \t\r\n"), to = strlen(body);
    while (to > from && strchr(" \t\r\n", body[to - 1]) != NULL)
        to--;
    if (to - from >= sizeof(w))
        return NULL;
    memcpy(w, body + from, to - from);
    w[to - from] = '\0';
    for (size_t i = 0; i < UTIL_ARRAY_LEN(words); i++)
        if (strcasecmp(w, words[i].word) == 0)
            return words[i].type;
    return NULL;
}

/* ---- answers ------------------------------------------------------------------------------ */

/* Set a JSON answer; json is taken. NULL json leaves a NOMEM answer. */
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

/* An admin error {"error": message}. */
static void answer_error(struct answer *a, unsigned status, const char *message)
{
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "error", message);
    answer_json(a, status, json);
}

/* Count an error code in the stats. Needs f->lock. */
static void count_code(struct fake *f, int code)
{
    for (size_t i = 0; i < f->stats.n_codes; i++) {
        if (f->stats.by_code[i].code == code) {
            f->stats.by_code[i].n++;
            return;
        }
    }
    if (f->stats.n_codes < FAKE_MAX_CODES)
        f->stats.by_code[f->stats.n_codes++] = (struct count){code, 1};
}

/* Twilio's error answer {"code","message","more_info","status"}. */
static void answer_twilio(struct fake *f, struct answer *a, unsigned status, int code,
                          const char *message)
{
    char more[80];
    cJSON *json = cJSON_CreateObject();
    util_fmt(more, sizeof(more), FAKE_MORE_INFO "%d", code);
    cJSON_AddNumberToObject(json, "code", code);
    cJSON_AddStringToObject(json, "message", message);
    cJSON_AddStringToObject(json, "more_info", more);
    cJSON_AddNumberToObject(json, "status", status);
    answer_json(a, status, json);
    pthread_mutex_lock(&f->lock);
    count_code(f, code);
    pthread_mutex_unlock(&f->lock);
}

/* MHD free callback for a response body from util_malloc. */
static void free_body(void *p)
{
    util_free(p);
}

/* Queue a. Takes a->body. */
static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
    char num[24];
    char *body = a->body;
    a->body = NULL;
    if (body == NULL)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free_body);
    if (resp == NULL) {
        util_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    if (a->retry_after >= 0) {
        util_fmt(num, sizeof(num), "%lld", (long long)a->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (a->www_auth)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"Twilio API\"");
    enum MHD_Result ret = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- storage (every function here needs f->lock held) ------------------------------------- */

static const char schema_sql[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = OFF;"
    "CREATE TABLE IF NOT EXISTS messages ("
    " seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, to_number TEXT NOT NULL,"
    " from_number TEXT, service_sid TEXT, body TEXT NOT NULL, status TEXT NOT NULL,"
    " status_callback TEXT, error_code INTEGER, num_segments INTEGER NOT NULL,"
    " auth_user TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS optouts (number TEXT NOT NULL, sender TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY (number, sender));"
    "CREATE TABLE IF NOT EXISTS numbers (number TEXT PRIMARY KEY, kind TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS webhooks (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
    " url TEXT NOT NULL, message_sid TEXT, params TEXT NOT NULL, signature TEXT,"
    " answered INTEGER NOT NULL, created_ms INTEGER NOT NULL);";

/* Prepare sql, bind the texts args[0..n) (NULL binds NULL) as ?1..?n. NULL on failure
 * (logged). Caller finalizes. */
static sqlite3_stmt *db_prepare(struct fake *f, const char *sql, const char *const *args, size_t n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error(FAKE_LOG, "sqlite: %s: %s", sql, sqlite3_errmsg(f->db));
        sqlite3_finalize(st);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (args[i] != NULL)
            sqlite3_bind_text(st, (int)i + 1, args[i], -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, (int)i + 1);
    }
    return st;
}

/* Run a statement with text arguments that returns no rows. ODSYNC_OK or ODSYNC_IO. */
static int db_run(struct fake *f, const char *sql, const char *const *args, size_t n)
{
    sqlite3_stmt *st = db_prepare(f, sql, args, n);
    int rc = st != NULL && sqlite3_step(st) == SQLITE_DONE ? ODSYNC_OK : ODSYNC_IO;
    if (st != NULL && rc != ODSYNC_OK)
        log_error(FAKE_LOG, "sqlite: %s: %s", sql, sqlite3_errmsg(f->db));
    sqlite3_finalize(st);
    return rc;
}

/* 1 when the query with text arguments returns a row. */
static int db_exists(struct fake *f, const char *sql, const char *const *args, size_t n)
{
    sqlite3_stmt *st = db_prepare(f, sql, args, n);
    int found = st != NULL && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* An integer from a one-value query (0 when none). */
static int64_t db_int(struct fake *f, const char *sql)
{
    sqlite3_stmt *st = db_prepare(f, sql, NULL, 0);
    int64_t v = st != NULL && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

#define MSG_COLUMNS                                                                                \
    "sid, to_number, from_number, service_sid, body, status, status_callback, error_code,"         \
    " num_segments, auth_user, created_ms, updated_ms"

/* Add a text column to obj (NULL -> null). */
static void add_text(cJSON *obj, const char *name, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    if (t != NULL)
        cJSON_AddStringToObject(obj, name, (const char *)t);
    else
        cJSON_AddNullToObject(obj, name);
}

/* The Twilio resource JSON of the MSG_COLUMNS row at st. */
static cJSON *message_resource(struct fake *f, sqlite3_stmt *st)
{
    char date[40], uri[160], num[24];
    const char *sid = (const char *)sqlite3_column_text(st, 0);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "account_sid", f->account_sid);
    cJSON_AddStringToObject(m, "api_version", "2010-04-01");
    add_text(m, "body", st, 4);
    rfc2822(sqlite3_column_int64(st, 10), date, sizeof(date));
    cJSON_AddStringToObject(m, "date_created", date);
    const char *status = (const char *)sqlite3_column_text(st, 5);
    if (status != NULL && strcmp(status, "queued") != 0 && strcmp(status, "accepted") != 0)
        cJSON_AddStringToObject(m, "date_sent", date);
    else
        cJSON_AddNullToObject(m, "date_sent");
    rfc2822(sqlite3_column_int64(st, 11), date, sizeof(date));
    cJSON_AddStringToObject(m, "date_updated", date);
    cJSON_AddStringToObject(m, "direction", "outbound-api");
    if (sqlite3_column_type(st, 7) == SQLITE_NULL)
        cJSON_AddNullToObject(m, "error_code");
    else
        cJSON_AddNumberToObject(m, "error_code", (double)sqlite3_column_int64(st, 7));
    cJSON_AddNullToObject(m, "error_message");
    add_text(m, "from", st, 2);
    add_text(m, "messaging_service_sid", st, 3);
    cJSON_AddStringToObject(m, "num_media", "0");
    util_fmt(num, sizeof(num), "%lld", (long long)sqlite3_column_int64(st, 8));
    cJSON_AddStringToObject(m, "num_segments", num);
    cJSON_AddNullToObject(m, "price");
    cJSON_AddStringToObject(m, "price_unit", "USD");
    add_text(m, "sid", st, 0);
    add_text(m, "status", st, 5);
    util_fmt(uri, sizeof(uri), FAKE_API "%s/Messages/%s/Media.json", f->account_sid,
             sid ? sid : "");
    cJSON *sub = cJSON_AddObjectToObject(m, "subresource_uris");
    cJSON_AddStringToObject(sub, "media", uri);
    add_text(m, "to", st, 1);
    util_fmt(uri, sizeof(uri), FAKE_API "%s/Messages/%s.json", f->account_sid, sid ? sid : "");
    cJSON_AddStringToObject(m, "uri", uri);
    return m;
}

/* The admin view of the MSG_COLUMNS row at st: what odsync sent, as stored. */
static cJSON *message_admin(struct fake *f, sqlite3_stmt *st)
{
    cJSON *m = cJSON_CreateObject();
    const char *user = (const char *)sqlite3_column_text(st, 9);
    add_text(m, "sid", st, 0);
    add_text(m, "to", st, 1);
    add_text(m, "from", st, 2);
    add_text(m, "messaging_service_sid", st, 3);
    add_text(m, "body", st, 4);
    add_text(m, "status", st, 5);
    add_text(m, "status_callback", st, 6);
    if (sqlite3_column_type(st, 7) == SQLITE_NULL)
        cJSON_AddNullToObject(m, "error_code");
    else
        cJSON_AddNumberToObject(m, "error_code", (double)sqlite3_column_int64(st, 7));
    cJSON_AddNumberToObject(m, "num_segments", (double)sqlite3_column_int64(st, 8));
    add_text(m, "auth_user", st, 9);
    cJSON_AddStringToObject(
        m, "auth", user != NULL && strcmp(user, f->account_sid) == 0 ? "auth_token" : "api_key");
    cJSON_AddNumberToObject(m, "created_ms", (double)sqlite3_column_int64(st, 10));
    return m;
}

/* ---- webhooks ----------------------------------------------------------------------------- */

/* qsort order of webhook parameters: by name, bytewise (Twilio's signature order). */
static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->name, ((const struct kv *)b)->name);
}

/* Twilio's X-Twilio-Signature of a POST to url with params[0..n) (sorted here, in place):
 * Base64(HMAC-SHA1(token, url + name1 + value1 + name2 + value2 …)) into out (>= 29 bytes).
 * Returns ODSYNC_OK or ODSYNC_NOMEM. */
static int sign(const char *token, const char *url, struct kv *params, size_t n, char *out,
                size_t out_len)
{
    struct sbuf data = {0};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int rc = ODSYNC_NOMEM;
    qsort(params, n, sizeof(*params), kv_cmp);
    sbuf_puts(&data, url);
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(&data, params[i].name);
        sbuf_puts(&data, params[i].value);
    }
    if (data.failed || out_len < 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1)
        goto cleanup;
    if (HMAC(EVP_sha1(), token, (int)strlen(token), (const unsigned char *)data.data, data.len, md,
             &md_len) == NULL)
        goto cleanup;
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    rc = ODSYNC_OK;
cleanup:
    sbuf_free(&data);
    return rc;
}

/* What a webhook post gave. */
struct delivery {
    int status;         /* the daemon's HTTP status, 0 when none */
    char signature[96]; /* the X-Twilio-Signature sent ("" unsigned) */
    char error[160];    /* transport error, or "" */
    char response[256]; /* the start of the daemon's answer body */
};

/* POST params[0..n) form-encoded to url, signed with token (NULL: unsigned) over sign_url
 * (the public URL Twilio "called"; NULL: url), recorded in the webhooks table as kind. The lock
 * must NOT be held. Returns ODSYNC_OK when the request was made (whatever the daemon answered),
 * else ODSYNC_NOMEM or ODSYNC_INVALID (bad URL). */
static int post_webhook(struct fake *f, const char *kind, const char *url, const char *sign_url,
                        const char *msg_sid, struct kv *params, size_t n, const char *token,
                        struct delivery *d)
{
    struct sbuf form = {0};
    struct http_client *c = NULL;
    struct odsync_http_response *resp = NULL;
    cJSON *pj = cJSON_CreateObject();
    char *pjson = NULL, answered[16];
    int rc = ODSYNC_NOMEM;

    memset(d, 0, sizeof(*d));
    if (token != NULL && sign(token, sign_url != NULL ? sign_url : url, params, n, d->signature,
                              sizeof(d->signature)) != ODSYNC_OK)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sbuf_puts(&form, "&");
        form_encode(&form, params[i].name);
        sbuf_puts(&form, "=");
        form_encode(&form, params[i].value);
        cJSON_AddStringToObject(pj, params[i].name, params[i].value);
    }
    c = http_client_create();
    if (form.failed || c == NULL || pj == NULL)
        goto cleanup;
    struct odsync_http_header headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded"},
        {"I-Twilio-Idempotency-Token", msg_sid != NULL ? msg_sid : "none"},
        {"X-Twilio-Signature", d->signature},
    };
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url,
                                      .headers = headers,
                                      .header_count = token != NULL ? 3 : 2,
                                      .body = form.data != NULL ? form.data : "",
                                      .body_len = form.len,
                                      .timeout_ms = FAKE_WEBHOOK_TIMEOUT_MS};
    http_client_perform(c, &req, &resp);
    if (resp == NULL) {
        rc = ODSYNC_INVALID;
        util_fmt(d->error, sizeof(d->error), "the URL was refused");
        goto cleanup;
    }
    d->status = resp->status;
    if (resp->error != NULL)
        util_fmt(d->error, sizeof(d->error), "%s", resp->error);
    util_fmt(d->response, sizeof(d->response), "%.200s", resp->body);
    rc = ODSYNC_OK;
    pjson = cJSON_PrintUnformatted(pj);
    util_fmt(answered, sizeof(answered), "%d", d->status);
    char now[24];
    util_fmt(now, sizeof(now), "%lld", (long long)util_now_ms());
    const char *args[] = {
        kind,     url, msg_sid, pjson != NULL ? pjson : "{}", token != NULL ? d->signature : NULL,
        answered, now};
    pthread_mutex_lock(&f->lock);
    db_run(f,
           "INSERT INTO webhooks (kind, url, message_sid, params, signature, answered, created_ms)"
           " VALUES (?1, ?2, ?3, ?4, ?5, CAST(?6 AS INTEGER), CAST(?7 AS INTEGER))",
           args, UTIL_ARRAY_LEN(args));
    pthread_mutex_unlock(&f->lock);
    log_debug(FAKE_LOG, "%s webhook -> HTTP %d", kind, d->status);
cleanup:
    http_response_free(resp);
    http_client_destroy(c);
    cJSON_free(pjson);
    cJSON_Delete(pj);
    sbuf_free(&form);
    return rc;
}

/* One status callback for message sid: the message's status becomes status (error_code 0 =
 * none) and a signed callback goes to url (NULL: the message's StatusCallback). token: NULL
 * for unsigned. Returns ODSYNC_OK (d filled), ODSYNC_NOT_FOUND (no such message),
 * ODSYNC_INVALID (no callback URL), ODSYNC_NOMEM. */
static int status_callback(struct fake *f, const char *sid, const char *status, int error_code,
                           const char *url, const char *sign_url, const char *token,
                           struct delivery *d)
{
    char to[32] = "", from[32] = "", service[40] = "", cb[1024] = "", code[16] = "", now[24];
    struct kv params[12];
    size_t n = 0;
    int rc = ODSYNC_NOT_FOUND;
    const char *args[] = {sid};

    pthread_mutex_lock(&f->lock);
    sqlite3_stmt *st = db_prepare(
        f,
        "SELECT to_number, from_number, service_sid, status_callback FROM messages WHERE sid = ?1",
        args, 1);
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        const char *fr = (const char *)sqlite3_column_text(st, 1);
        const char *sv = (const char *)sqlite3_column_text(st, 2);
        const char *c = (const char *)sqlite3_column_text(st, 3);
        util_fmt(to, sizeof(to), "%s", t ? t : "");
        if (fr != NULL)
            util_fmt(from, sizeof(from), "%s", fr);
        else
            first_of(f->numbers, from, sizeof(from));
        util_fmt(service, sizeof(service), "%s", sv ? sv : "");
        util_fmt(cb, sizeof(cb), "%s", c ? c : "");
        rc = ODSYNC_OK;
    }
    sqlite3_finalize(st);
    if (rc == ODSYNC_OK) {
        util_fmt(code, sizeof(code), "%d", error_code);
        util_fmt(now, sizeof(now), "%lld", (long long)util_now_ms());
        const char *up[] = {sid, status, error_code != 0 ? code : NULL, now};
        db_run(f,
               "UPDATE messages SET status = ?2, error_code = CAST(?3 AS INTEGER),"
               " updated_ms = CAST(?4 AS INTEGER) WHERE sid = ?1",
               up, UTIL_ARRAY_LEN(up));
    }
    pthread_mutex_unlock(&f->lock);
    if (rc != ODSYNC_OK)
        return rc;
    if (url == NULL)
        url = cb;
    if (url[0] == '\0')
        return ODSYNC_INVALID;
    params[n++] = (struct kv){"AccountSid", f->account_sid};
    params[n++] = (struct kv){"ApiVersion", "2010-04-01"};
    if (error_code != 0)
        params[n++] = (struct kv){"ErrorCode", code};
    if (from[0] != '\0')
        params[n++] = (struct kv){"From", from};
    params[n++] = (struct kv){"MessageSid", sid};
    params[n++] = (struct kv){"MessageStatus", status};
    if (service[0] != '\0')
        params[n++] = (struct kv){"MessagingServiceSid", service};
    params[n++] = (struct kv){"SmsSid", sid};
    params[n++] = (struct kv){"SmsStatus", status};
    params[n++] = (struct kv){"To", to};
    return post_webhook(f, "status", url, sign_url, sid, params, n, token, d);
}

/* The automatic status worker: for each queued message, "sent" then the final status. */
static void *auto_worker(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        char final[16];
        struct job *j;
        pthread_mutex_lock(&f->lock);
        while (f->head == NULL && !atomic_load(&f->stopping))
            pthread_cond_wait(&f->wake, &f->lock);
        if (atomic_load(&f->stopping)) {
            pthread_mutex_unlock(&f->lock);
            return NULL;
        }
        j = f->head;
        f->head = j->next;
        if (f->head == NULL)
            f->tail = NULL;
        util_fmt(final, sizeof(final), "%s", f->set.auto_status);
        pthread_mutex_unlock(&f->lock);
        struct delivery d;
        int code = strcmp(final, "undelivered") == 0 ? 30003
                   : strcmp(final, "failed") == 0    ? 30008
                                                     : 0;
        if (strcmp(final, "off") != 0 &&
            status_callback(f, j->sid, "sent", 0, NULL, NULL, f->auth_token, &d) == ODSYNC_OK)
            status_callback(f, j->sid, final, code, NULL, NULL, f->auth_token, &d);
        util_free(j);
    }
}

/* ---- the Twilio API ----------------------------------------------------------------------- */

/* Base64-decode the Basic credentials of the request into user and secret (caller frees
 * with util_free). 0 when absent or malformed. */
static int basic_credentials(struct MHD_Connection *conn, char **user, char **secret)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    *user = *secret = NULL;
    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
        return 0;
    h += 6;
    size_t n = strlen(h);
    if (n == 0 || n % 4 != 0 || n > 1024)
        return 0;
    unsigned char *raw = util_malloc(n);
    if (raw == NULL)
        return 0;
    int len = EVP_DecodeBlock(raw, (const unsigned char *)h, (int)n);
    if (len < 0) {
        util_free(raw);
        return 0;
    }
    len -= (h[n - 1] == '=') + (h[n - 2] == '=');
    unsigned char *colon = memchr(raw, ':', (size_t)len);
    if (colon != NULL && memchr(raw, '\0', (size_t)len) == NULL) {
        *user = util_strndup((const char *)raw, (size_t)(colon - raw));
        *secret = util_strndup((const char *)colon + 1, (size_t)(len - (colon + 1 - raw)));
    }
    util_free(raw);
    if (*user == NULL || *secret == NULL) {
        util_free(*user);
        util_free(*secret);
        *user = *secret = NULL;
        return 0;
    }
    return 1;
}

/* Check Basic auth against the account (path_sid must be it). Returns 1 when allowed; else
 * answers 401 code 20003. *user: the authenticated user (caller frees with util_free). */
static int authorized(struct fake *f, struct MHD_Connection *conn, const char *path_sid,
                      struct answer *a, char **user)
{
    char *secret = NULL;
    int ok = 0;
    *user = NULL;
    if (basic_credentials(conn, user, &secret)) {
        if (util_secure_equal(*user, f->account_sid))
            ok = util_secure_equal(secret, f->auth_token);
        else if (f->key_sid != NULL && util_secure_equal(*user, f->key_sid))
            ok = util_secure_equal(secret, f->key_secret);
        ok = ok && strcmp(path_sid, f->account_sid) == 0;
    }
    if (secret != NULL)
        memset(secret, 0, strlen(secret));
    util_free(secret);
    if (!ok) {
        util_free(*user);
        *user = NULL;
        answer_twilio(f, a, MHD_HTTP_UNAUTHORIZED, 20003, "Authenticate");
        a->www_auth = 1;
    }
    return ok;
}

/* The fault for one send, decided under the lock: 0 none, else 429, 500 or 502. Also takes
 * one truncation (*truncate = its status, 0 = none) and the delay. */
static unsigned decide_fault(struct fake *f, int64_t *truncate, int64_t *delay,
                             int64_t *retry_after)
{
    unsigned fault = 0;
    int64_t now_s = util_now_ms() / 1000;
    pthread_mutex_lock(&f->lock);
    *truncate = 0;
    *delay = f->set.delay_ms;
    *retry_after = f->set.retry_after > 0 ? f->set.retry_after : -1;
    if (now_s != f->window_s) {
        f->window_s = now_s;
        f->window_count = 0;
    }
    if (f->set.rate_limit_next > 0) {
        f->set.rate_limit_next--;
        fault = 429;
    } else if (f->set.rate_per_second > 0 && f->window_count >= f->set.rate_per_second) {
        fault = 429;
    } else if (f->set.fail_next > 0) {
        f->set.fail_next--;
        fault = 500;
    } else if (f->set.html502_next > 0) {
        f->set.html502_next--;
        fault = 502;
    } else if (f->set.truncate_next > 0) {
        f->set.truncate_next--;
        *truncate = f->set.truncate_status;
    }
    if (fault != 429)
        f->window_count++;
    pthread_mutex_unlock(&f->lock);
    return fault;
}

/* Validate a send and, when it passes, store the message into *row_sid. Needs f->lock.
 * Returns 0 when stored, else the Twilio error code with *status and msg set. */
static int validate_and_store(struct fake *f, const struct form *fm, const char *user,
                              unsigned *status, char *msg, size_t msg_len, char *row_sid,
                              size_t sid_len)
{
    const char *to = form_get(fm, "To"), *from = form_get(fm, "From");
    const char *service = form_get(fm, "MessagingServiceSid"), *body = form_get(fm, "Body");
    const char *cb = form_get(fm, "StatusCallback");
    char now[24], segs[24];
    int gsm;

    *status = MHD_HTTP_BAD_REQUEST;
    if (to == NULL || to[0] == '\0') {
        util_fmt(msg, msg_len, "A 'To' phone number is required.");
        return 21604;
    }
    if ((from == NULL || from[0] == '\0') && (service == NULL || service[0] == '\0')) {
        util_fmt(msg, msg_len, "A 'From' phone number is required.");
        return 21603;
    }
    if (from != NULL && service != NULL) {
        util_fmt(msg, msg_len,
                 "Send either 'From' or 'MessagingServiceSid', not both (fake rule).");
        return 21603;
    }
    if (body == NULL || body[0] == '\0') {
        util_fmt(msg, msg_len, "Message body is required.");
        return 21602;
    }
    if (service != NULL && (!sid_valid(service, "MG") ||
                            (f->service_sid != NULL && strcmp(service, f->service_sid)))) {
        util_fmt(msg, msg_len, "The Messaging Service Sid %s is invalid.", service);
        return 21701;
    }
    if (from != NULL && !e164_valid(from)) {
        util_fmt(msg, msg_len,
                 "The 'From' number %s is not a valid phone number, shortcode, or "
                 "alphanumeric sender ID.",
                 from);
        return 21212;
    }
    if (from != NULL && f->numbers != NULL && !in_list(f->numbers, from)) {
        util_fmt(msg, msg_len,
                 "The From phone number %s is not a valid, SMS-capable inbound phone "
                 "number or short code for your account.",
                 from);
        return 21606;
    }
    const char *targs[] = {to};
    if (!e164_valid(to) ||
        db_exists(f, "SELECT 1 FROM numbers WHERE number = ?1 AND kind = 'invalid'", targs, 1)) {
        util_fmt(msg, msg_len, "The 'To' number %s is not a valid phone number.", to);
        return 21211;
    }
    if (db_exists(f, "SELECT 1 FROM numbers WHERE number = ?1 AND kind = 'landline'", targs, 1)) {
        util_fmt(msg, msg_len, "'To' number is not a valid mobile number");
        return 21614;
    }
    if ((int64_t)chars_of(body, &gsm) > f->set.body_max) {
        util_fmt(msg, msg_len, "The concatenated message body exceeds the %lld character limit.",
                 (long long)f->set.body_max);
        return 21617;
    }
    if (cb != NULL && strncmp(cb, "http://", 7) != 0 && strncmp(cb, "https://", 8) != 0) {
        util_fmt(msg, msg_len, "The StatusCallback URL %s is not a valid URL.", cb);
        return 21609;
    }
    /* Opt-outs: a From send is blocked by an opt-out from that sender; a Messaging Service
     * send by one from any of the account's numbers (the service holds them all). */
    const char *oargs[] = {to, from};
    if (db_exists(f,
                  from != NULL ? "SELECT 1 FROM optouts WHERE number = ?1 AND sender = ?2"
                               : "SELECT 1 FROM optouts WHERE number = ?1",
                  oargs, from != NULL ? 2 : 1)) {
        util_fmt(msg, msg_len, "Attempt to send to unsubscribed recipient");
        return 21610;
    }
    new_sid(f, "SM", row_sid, sid_len);
    util_fmt(now, sizeof(now), "%lld", (long long)util_now_ms());
    util_fmt(segs, sizeof(segs), "%lld", (long long)segments_of(body));
    const char *args[] = {
        row_sid, to,   from, service, body, service != NULL ? "accepted" : "queued",
        cb,      segs, user, now};
    *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    if (db_run(f,
               "INSERT INTO messages (sid, to_number, from_number, service_sid, body, status,"
               " status_callback, num_segments, auth_user, created_ms, updated_ms) VALUES (?1, ?2,"
               " ?3, ?4, ?5, ?6, ?7, CAST(?8 AS INTEGER), ?9, CAST(?10 AS INTEGER),"
               " CAST(?10 AS INTEGER))",
               args, UTIL_ARRAY_LEN(args)) != ODSYNC_OK) {
        util_fmt(msg, msg_len, "storage error");
        return 20500;
    }
    *status = MHD_HTTP_CREATED;
    return 0;
}

/* The resource JSON of message sid (NULL when absent). Needs f->lock. */
static cJSON *message_by_sid(struct fake *f, const char *sid)
{
    const char *args[] = {sid};
    cJSON *m = NULL;
    sqlite3_stmt *st =
        db_prepare(f, "SELECT " MSG_COLUMNS " FROM messages WHERE sid = ?1", args, 1);
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        m = message_resource(f, st);
    sqlite3_finalize(st);
    return m;
}

/* POST …/Messages.json. */
static void serve_send(struct fake *f, struct MHD_Connection *conn, const struct serve_upload *up,
                       const char *user, struct answer *a)
{
    struct form fm = {.n = 0};
    char msg[320], sid[40];
    unsigned status;
    int64_t truncate, delay, retry_after;
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");

    unsigned fault = decide_fault(f, &truncate, &delay, &retry_after);
    if (delay > 0)
        sleep_ms(f, delay);
    if (fault == 429) {
        answer_twilio(f, a, 429, 20429, "Too Many Requests");
        a->retry_after = retry_after;
        goto cleanup;
    }
    if (fault == 500) {
        answer_twilio(f, a, 500, 20500, "An internal server error has occurred");
        goto cleanup;
    }
    if (fault == 502) {
        a->status = 502;
        a->type = "text/html";
        a->body = util_strdup(FAKE_HTML_502);
        goto cleanup;
    }
    if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
        answer_twilio(f, a, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, 20415,
                      "Unsupported Media Type: send application/x-www-form-urlencoded");
        goto cleanup;
    }
    if (up->too_big ||
        form_parse(up->body.data != NULL ? up->body.data : "", up->body.len, &fm) != ODSYNC_OK) {
        answer_twilio(f, a, MHD_HTTP_BAD_REQUEST, 20001, "Invalid form body");
        goto cleanup;
    }
    if (truncate >= 300) {
        /* A failed answer, cut: nothing is stored. */
        answer_twilio(f, a, (unsigned)truncate, 20500, "An internal server error has occurred");
        a->body[strlen(a->body) / 2] = '\0';
        goto cleanup;
    }
    pthread_mutex_lock(&f->lock);
    int code = validate_and_store(f, &fm, user, &status, msg, sizeof(msg), sid, sizeof(sid));
    cJSON *m = code == 0 ? message_by_sid(f, sid) : NULL;
    int queue = code == 0 && strcmp(f->set.auto_status, "off") != 0 &&
                form_get(&fm, "StatusCallback") != NULL;
    pthread_mutex_unlock(&f->lock);
    if (code != 0) {
        answer_twilio(f, a, status, code, msg);
        goto cleanup;
    }
    answer_json(a, truncate != 0 ? (unsigned)truncate : MHD_HTTP_CREATED, m);
    if (truncate != 0 && a->body != NULL)
        a->body[strlen(a->body) / 2] = '\0';
    log_debug(FAKE_LOG, "message %s accepted", sid);
    if (queue) {
        struct job *j = util_calloc(1, sizeof(*j));
        if (j != NULL) {
            util_fmt(j->sid, sizeof(j->sid), "%s", sid);
            pthread_mutex_lock(&f->lock);
            if (f->tail != NULL)
                f->tail->next = j;
            else
                f->head = j;
            f->tail = j;
            pthread_cond_signal(&f->wake);
            pthread_mutex_unlock(&f->lock);
        }
    }
cleanup:
    form_free(&fm);
}

/* GET …/Messages.json: To, From, DateSent, DateSent>, DateSent< (days, UTC), PageSize. */
static void serve_list(struct fake *f, struct MHD_Connection *conn, struct answer *a)
{
    const char *to = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "To");
    const char *from = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "From");
    const char *on = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "DateSent");
    const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "DateSent>");
    const char *before = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "DateSent<");
    const char *ps = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "PageSize");
    int64_t page_size = 50;
    char uri[160], day[16];
    cJSON *root = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(root, "messages");

    if (ps != NULL && util_parse_i64(ps, 1, 1000, &page_size) != ODSYNC_OK)
        page_size = 50;
    pthread_mutex_lock(&f->lock);
    sqlite3_stmt *st =
        db_prepare(f, "SELECT " MSG_COLUMNS " FROM messages ORDER BY seq DESC", NULL, 0);
    int64_t n = 0;
    while (st != NULL && sqlite3_step(st) == SQLITE_ROW && n < page_size) {
        const char *t = (const char *)sqlite3_column_text(st, 1);
        const char *fr = (const char *)sqlite3_column_text(st, 2);
        day_of(sqlite3_column_int64(st, 10), day, sizeof(day));
        /* MHD decodes '+' in a query as a space: accept " 1555…" for "+1555…". */
        if (to != NULL && strcmp(to + (to[0] == ' '), t + 1) != 0 && strcmp(to, t) != 0)
            continue;
        if (from != NULL &&
            (fr == NULL || (strcmp(from, fr) != 0 && strcmp(from + (from[0] == ' '), fr + 1) != 0)))
            continue;
        if ((on != NULL && strcmp(day, on) != 0) || (after != NULL && strcmp(day, after) < 0) ||
            (before != NULL && strcmp(day, before) > 0))
            continue;
        cJSON_AddItemToArray(list, message_resource(f, st));
        n++;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&f->lock);
    util_fmt(uri, sizeof(uri), FAKE_API "%s/Messages.json", f->account_sid);
    cJSON_AddNumberToObject(root, "end", n > 0 ? (double)(n - 1) : 0);
    cJSON_AddStringToObject(root, "first_page_uri", uri);
    cJSON_AddNullToObject(root, "next_page_uri");
    cJSON_AddNumberToObject(root, "page", 0);
    cJSON_AddNumberToObject(root, "page_size", (double)page_size);
    cJSON_AddNullToObject(root, "previous_page_uri");
    cJSON_AddNumberToObject(root, "start", 0);
    cJSON_AddStringToObject(root, "uri", uri);
    answer_json(a, MHD_HTTP_OK, root);
}

/* Route an API request (url decoded by MHD). */
static void route_api(struct fake *f, struct MHD_Connection *conn, const char *url,
                      const char *method, const struct serve_upload *up, struct answer *a)
{
    char path_sid[64], msg[200], *user = NULL;
    const char *rest = url + strlen(FAKE_API);
    const char *slash = strchr(rest, '/');

    if (strncmp(url, FAKE_API, strlen(FAKE_API)) != 0 || slash == NULL ||
        (size_t)(slash - rest) >= sizeof(path_sid)) {
        util_fmt(msg, sizeof(msg), "The requested resource %.120s was not found", url);
        answer_twilio(f, a, MHD_HTTP_NOT_FOUND, 20404, msg);
        return;
    }
    memcpy(path_sid, rest, (size_t)(slash - rest));
    path_sid[slash - rest] = '\0';
    if (!authorized(f, conn, path_sid, a, &user))
        return;
    const char *what = slash + 1;
    if (strcmp(what, "Messages.json") == 0 && strcmp(method, "POST") == 0) {
        serve_send(f, conn, up, user, a);
    } else if (strcmp(what, "Messages.json") == 0 && strcmp(method, "GET") == 0) {
        serve_list(f, conn, a);
    } else if (strncmp(what, "Messages/", 9) == 0 && strcmp(method, "GET") == 0 &&
               strlen(what) == 9 + 34 + 5 && strcmp(what + 9 + 34, ".json") == 0) {
        char sid[40];
        util_fmt(sid, sizeof(sid), "%.34s", what + 9);
        pthread_mutex_lock(&f->lock);
        cJSON *m = message_by_sid(f, sid);
        pthread_mutex_unlock(&f->lock);
        if (m != NULL) {
            answer_json(a, MHD_HTTP_OK, m);
        } else {
            util_fmt(msg, sizeof(msg), "The requested resource %.120s was not found", url);
            answer_twilio(f, a, MHD_HTTP_NOT_FOUND, 20404, msg);
        }
    } else {
        util_fmt(msg, sizeof(msg), "The requested resource %.120s was not found", url);
        answer_twilio(f, a, MHD_HTTP_NOT_FOUND, 20404, msg);
    }
    util_free(user);
}

/* ---- settings ----------------------------------------------------------------------------- */

struct setting_field {
    const char *name;
    size_t offset; /* of an int64_t, or of advanced_opt_out / auto_status */
    int64_t min, max;
    int kind; /* 0 int64, 1 bool, 2 auto-status word */
};

static const struct setting_field setting_fields[] = {
    {"fail-next", offsetof(struct settings, fail_next), 0, 1000000, 0},
    {"html502-next", offsetof(struct settings, html502_next), 0, 1000000, 0},
    {"truncate-next", offsetof(struct settings, truncate_next), 0, 1000000, 0},
    {"truncate-status", offsetof(struct settings, truncate_status), 200, 599, 0},
    {"rate-limit-next", offsetof(struct settings, rate_limit_next), 0, 1000000, 0},
    {"rate-per-second", offsetof(struct settings, rate_per_second), 0, 1000000, 0},
    {"retry-after", offsetof(struct settings, retry_after), 0, 86400, 0},
    {"delay-ms", offsetof(struct settings, delay_ms), 0, FAKE_MAX_DELAY_MS, 0},
    {"body-max", offsetof(struct settings, body_max), 1, 100000, 0},
    {"seed", offsetof(struct settings, seed), 0, INT64_C(9007199254740992), 0},
    {"advanced-opt-out", offsetof(struct settings, advanced_opt_out), 0, 1, 1},
    {"auto-status", offsetof(struct settings, auto_status), 0, 0, 2},
};

/* The field called name ('_' matches '-'), or NULL. */
static const struct setting_field *setting_find(const char *name)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(setting_fields); i++) {
        const char *x = setting_fields[i].name, *y = name;
        while (*x != '\0' && (*x == *y || (*x == '-' && *y == '_'))) {
            x++;
            y++;
        }
        if (*x == '\0' && *y == '\0')
            return &setting_fields[i];
    }
    return NULL;
}

/* 1 when word is an auto-status value. */
static int auto_status_valid(const char *w)
{
    return strcmp(w, "off") == 0 || strcmp(w, "delivered") == 0 || strcmp(w, "undelivered") == 0 ||
           strcmp(w, "failed") == 0;
}

/* Set field sf of s from text. ODSYNC_OK or ODSYNC_PARSE. */
static int setting_set_text(struct settings *s, const struct setting_field *sf, const char *text)
{
    char *p = (char *)s + sf->offset;
    if (sf->kind == 1) {
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return ODSYNC_PARSE;
        *(int *)(void *)p = strcmp(text, "true") == 0;
        return ODSYNC_OK;
    }
    if (sf->kind == 2) {
        if (!auto_status_valid(text))
            return ODSYNC_PARSE;
        util_fmt(p, sizeof(s->auto_status), "%s", text);
        return ODSYNC_OK;
    }
    return util_parse_i64(text, sf->min, sf->max, (int64_t *)(void *)p);
}

/* Set field sf of s from a JSON value. ODSYNC_OK or ODSYNC_PARSE. */
static int setting_set_json(struct settings *s, const struct setting_field *sf, const cJSON *v)
{
    char num[32];
    if (sf->kind == 1 && cJSON_IsBool(v))
        return setting_set_text(s, sf, cJSON_IsTrue(v) ? "true" : "false");
    if (sf->kind == 2 && cJSON_IsString(v))
        return setting_set_text(s, sf, v->valuestring);
    if (sf->kind != 0 || !cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble)
        return ODSYNC_PARSE;
    util_fmt(num, sizeof(num), "%lld", (long long)v->valuedouble);
    return setting_set_text(s, sf, num);
}

/* The settings as JSON (caller frees with cJSON_Delete). Needs f->lock for a live s. */
static cJSON *settings_json(const struct settings *s)
{
    cJSON *j = cJSON_CreateObject();
    for (size_t i = 0; i < UTIL_ARRAY_LEN(setting_fields); i++) {
        const struct setting_field *sf = &setting_fields[i];
        const char *p = (const char *)s + sf->offset;
        if (sf->kind == 1)
            cJSON_AddBoolToObject(j, sf->name, *(const int *)(const void *)p);
        else if (sf->kind == 2)
            cJSON_AddStringToObject(j, sf->name, p);
        else
            cJSON_AddNumberToObject(j, sf->name, (double)*(const int64_t *)(const void *)p);
    }
    return j;
}

/* ---- admin routes ------------------------------------------------------------------------- */

/* The upload parsed as a JSON object (caller frees), or NULL after a 400 answer. */
static cJSON *admin_body(const struct serve_upload *up, struct answer *a)
{
    cJSON *j = up->body.data != NULL ? cJSON_ParseWithLength(up->body.data, up->body.len) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        answer_error(a, MHD_HTTP_BAD_REQUEST, "body must be a JSON object");
        return NULL;
    }
    return j;
}

/* A string member of j, or NULL. */
static const char *jstr(const cJSON *j, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, name));
}

/* The token to sign with from an injector body: "unsigned": true -> NULL; "signing_token"
 * -> that (for negative tests); else the account's auth token. */
static const char *signing_token(struct fake *f, const cJSON *j)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "unsigned")))
        return NULL;
    const char *t = jstr(j, "signing_token");
    return t != NULL ? t : f->auth_token;
}

/* The injector's answer: {"status": N, "signature": …, "error"?, "response"} plus extra. */
static void answer_delivery(struct answer *a, const struct delivery *d, cJSON *extra)
{
    cJSON *j = extra != NULL ? extra : cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "status", d->status);
    if (d->signature[0] != '\0')
        cJSON_AddStringToObject(j, "signature", d->signature);
    else
        cJSON_AddNullToObject(j, "signature");
    if (d->error[0] != '\0')
        cJSON_AddStringToObject(j, "error", d->error);
    cJSON_AddStringToObject(j, "response", d->response);
    answer_json(a, MHD_HTTP_OK, j);
}

/* POST /_inbound {"url", "params": {name: value, ...}, ...}: exactly those parameters,
 * signed, and nothing else happens (no keyword rules). */
static void admin_inbound_raw(struct fake *f, const cJSON *j, struct answer *a)
{
    struct kv params[FAKE_FORM_MAX];
    struct delivery d;
    size_t n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "params"))
    {
        if (!cJSON_IsString(c) || n >= FAKE_FORM_MAX) {
            answer_error(a, MHD_HTTP_BAD_REQUEST, "params: at most 64 string members");
            return;
        }
        params[n++] = (struct kv){c->string, c->valuestring};
    }
    const char *sid = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(params[i].name, "MessageSid") == 0)
            sid = params[i].value;
    int rc = post_webhook(f, "inbound", jstr(j, "url"), jstr(j, "public_url"), sid, params, n,
                          signing_token(f, j), &d);
    if (rc == ODSYNC_INVALID)
        answer_error(a, MHD_HTTP_BAD_REQUEST, "url must be an http:// or https:// URL");
    else if (rc != ODSYNC_OK)
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else
        answer_delivery(a, &d, NULL);
}

/* POST /_inbound {"url","from","to","body", "message_sid"?, "public_url"?, "signing_token"?,
 * "unsigned"?} (or with "params": admin_inbound_raw). */
static void admin_inbound(struct fake *f, const struct serve_upload *up, struct answer *a)
{
    struct kv params[16];
    struct delivery d;
    size_t n = 0;
    char sid[40], now[24];
    cJSON *j = admin_body(up, a), *out = NULL;
    if (j == NULL)
        return;
    const char *url = jstr(j, "url"), *from = jstr(j, "from"), *to = jstr(j, "to");
    const char *body = jstr(j, "body"), *given = jstr(j, "message_sid");
    if (url != NULL && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "params"))) {
        admin_inbound_raw(f, j, a);
        goto cleanup;
    }
    if (url == NULL || from == NULL || to == NULL || body == NULL) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "need string members url, from, to and body");
        goto cleanup;
    }
    const char *type = keyword_type(body);
    pthread_mutex_lock(&f->lock);
    int advanced = f->set.advanced_opt_out;
    if (given != NULL)
        util_fmt(sid, sizeof(sid), "%.34s", given);
    else
        new_sid(f, "SM", sid, sizeof(sid));
    util_fmt(now, sizeof(now), "%lld", (long long)util_now_ms());
    const char *args[] = {from, to, now};
    /* Twilio applies the keyword itself, whatever the webhook answers. */
    if (type != NULL && strcmp(type, "STOP") == 0)
        db_run(f,
               "INSERT OR IGNORE INTO optouts (number, sender, created_ms) VALUES (?1, ?2,"
               " CAST(?3 AS INTEGER))",
               args, 3);
    else if (type != NULL && strcmp(type, "START") == 0)
        db_run(f, "DELETE FROM optouts WHERE number = ?1 AND sender = ?2", args, 2);
    pthread_mutex_unlock(&f->lock);

    params[n++] = (struct kv){"AccountSid", f->account_sid};
    params[n++] = (struct kv){"ApiVersion", "2010-04-01"};
    params[n++] = (struct kv){"Body", body};
    params[n++] = (struct kv){"From", from};
    params[n++] = (struct kv){"MessageSid", sid};
    if (f->service_sid != NULL)
        params[n++] = (struct kv){"MessagingServiceSid", f->service_sid};
    params[n++] = (struct kv){"NumMedia", "0"};
    params[n++] = (struct kv){"NumSegments", "1"};
    if (type != NULL && advanced)
        params[n++] = (struct kv){"OptOutType", type};
    params[n++] = (struct kv){"SmsMessageSid", sid};
    params[n++] = (struct kv){"SmsSid", sid};
    params[n++] = (struct kv){"SmsStatus", "received"};
    params[n++] = (struct kv){"To", to};
    int rc = post_webhook(f, "inbound", url, jstr(j, "public_url"), sid, params, n,
                          signing_token(f, j), &d);
    if (rc == ODSYNC_INVALID) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "url must be an http:// or https:// URL");
        goto cleanup;
    }
    if (rc != ODSYNC_OK) {
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        goto cleanup;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "message_sid", sid);
    if (type != NULL && advanced)
        cJSON_AddStringToObject(out, "opt_out_type", type);
    else
        cJSON_AddNullToObject(out, "opt_out_type");
    answer_delivery(a, &d, out);
cleanup:
    cJSON_Delete(j);
}

/* POST /_status {"sid","status","error_code"?,"url"?,"signing_token"?,"unsigned"?}. */
static void admin_status(struct fake *f, const struct serve_upload *up, struct answer *a)
{
    struct delivery d;
    cJSON *j = admin_body(up, a);
    if (j == NULL)
        return;
    const char *sid = jstr(j, "sid"), *status = jstr(j, "status");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "error_code");
    if (sid == NULL || status == NULL ||
        (code != NULL && !cJSON_IsNumber(code) && !cJSON_IsNull(code))) {
        answer_error(a, MHD_HTTP_BAD_REQUEST,
                     "need string members sid and status (error_code a number)");
        goto cleanup;
    }
    int rc = status_callback(f, sid, status, cJSON_IsNumber(code) ? (int)code->valuedouble : 0,
                             jstr(j, "url"), jstr(j, "public_url"), signing_token(f, j), &d);
    if (rc == ODSYNC_NOT_FOUND)
        answer_error(a, MHD_HTTP_NOT_FOUND, "no such message");
    else if (rc == ODSYNC_INVALID)
        answer_error(a, MHD_HTTP_CONFLICT,
                     "the message has no StatusCallback and no url was given");
    else if (rc != ODSYNC_OK)
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else
        answer_delivery(a, &d, NULL);
cleanup:
    cJSON_Delete(j);
}

/* GET /_messages[?to=N|?sid=S]: the stored messages, oldest first. */
static void admin_messages(struct fake *f, struct MHD_Connection *conn, struct answer *a)
{
    const char *to = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
    const char *sid = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sid");
    char fixed[40];
    cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
    if (to != NULL && to[0] == ' ') { /* a '+' decoded as a space */
        util_fmt(fixed, sizeof(fixed), "+%s", to + 1);
        to = fixed;
    }
    const char *args[] = {to, sid};
    pthread_mutex_lock(&f->lock);
    sqlite3_stmt *st = db_prepare(f,
                                  "SELECT " MSG_COLUMNS " FROM messages WHERE (?1 IS NULL OR"
                                  " to_number = ?1) AND (?2 IS NULL OR sid = ?2) ORDER BY seq",
                                  args, 2);
    while (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(list, message_admin(f, st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&f->lock);
    cJSON_AddNumberToObject(root, "count", cJSON_GetArraySize(list));
    cJSON_AddItemToObject(root, "messages", list);
    answer_json(a, MHD_HTTP_OK, root);
}

/* GET /_webhooks: every webhook posted, oldest first. */
static void admin_webhooks(struct fake *f, struct answer *a)
{
    cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
    pthread_mutex_lock(&f->lock);
    sqlite3_stmt *st = db_prepare(
        f, "SELECT kind, url, message_sid, params, signature, answered FROM webhooks ORDER BY seq",
        NULL, 0);
    while (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *w = cJSON_CreateObject();
        add_text(w, "kind", st, 0);
        add_text(w, "url", st, 1);
        add_text(w, "message_sid", st, 2);
        cJSON *p = cJSON_Parse((const char *)sqlite3_column_text(st, 3));
        cJSON_AddItemToObject(w, "params", p != NULL ? p : cJSON_CreateObject());
        add_text(w, "signature", st, 4);
        cJSON_AddNumberToObject(w, "answered", (double)sqlite3_column_int64(st, 5));
        cJSON_AddItemToArray(list, w);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&f->lock);
    cJSON_AddNumberToObject(root, "count", cJSON_GetArraySize(list));
    cJSON_AddItemToObject(root, "webhooks", list);
    answer_json(a, MHD_HTTP_OK, root);
}

/* GET /_state. */
static void admin_state(struct fake *f, struct answer *a)
{
    char key[16];
    cJSON *root = cJSON_CreateObject();
    pthread_mutex_lock(&f->lock);
    cJSON_AddStringToObject(root, "account_sid", f->account_sid);
    cJSON *msgs = cJSON_AddObjectToObject(root, "messages");
    cJSON_AddNumberToObject(msgs, "count", (double)db_int(f, "SELECT COUNT(*) FROM messages"));
    cJSON *by = cJSON_AddObjectToObject(msgs, "by_status");
    sqlite3_stmt *st = db_prepare(
        f, "SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status", NULL, 0);
    while (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddNumberToObject(by, (const char *)sqlite3_column_text(st, 0),
                                (double)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    cJSON *opt = cJSON_AddArrayToObject(root, "optouts");
    st = db_prepare(f, "SELECT number, sender FROM optouts ORDER BY created_ms, number", NULL, 0);
    while (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        add_text(o, "number", st, 0);
        add_text(o, "sender", st, 1);
        cJSON_AddItemToArray(opt, o);
    }
    sqlite3_finalize(st);
    cJSON *nums = cJSON_AddObjectToObject(root, "numbers");
    cJSON *inv = cJSON_AddArrayToObject(nums, "invalid"),
          *land = cJSON_AddArrayToObject(nums, "landline");
    st = db_prepare(f, "SELECT number, kind FROM numbers ORDER BY number", NULL, 0);
    while (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(
            strcmp((const char *)sqlite3_column_text(st, 1), "invalid") == 0 ? inv : land,
            cJSON_CreateString((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    cJSON *req = cJSON_AddObjectToObject(root, "requests");
    cJSON_AddNumberToObject(req, "total", (double)f->stats.requests);
    cJSON *bs = cJSON_AddObjectToObject(req, "by_status");
    for (size_t i = 0; i < UTIL_ARRAY_LEN(f->stats.by_status); i++) {
        if (f->stats.by_status[i] == 0)
            continue;
        util_fmt(key, sizeof(key), "%zu", i);
        cJSON_AddNumberToObject(bs, key, (double)f->stats.by_status[i]);
    }
    cJSON *bc = cJSON_AddObjectToObject(req, "by_code");
    for (size_t i = 0; i < f->stats.n_codes; i++) {
        util_fmt(key, sizeof(key), "%d", f->stats.by_code[i].code);
        cJSON_AddNumberToObject(bc, key, (double)f->stats.by_code[i].n);
    }
    cJSON *wh = cJSON_AddObjectToObject(root, "webhooks");
    cJSON_AddNumberToObject(
        wh, "inbound", (double)db_int(f, "SELECT COUNT(*) FROM webhooks WHERE kind = 'inbound'"));
    cJSON_AddNumberToObject(
        wh, "status", (double)db_int(f, "SELECT COUNT(*) FROM webhooks WHERE kind = 'status'"));
    cJSON_AddItemToObject(root, "faults", settings_json(&f->set));
    pthread_mutex_unlock(&f->lock);
    answer_json(a, MHD_HTTP_OK, root);
}

/* GET|POST /_faults. */
static void admin_faults(struct fake *f, const char *method, const struct serve_upload *up,
                         struct answer *a)
{
    char msg[96];
    if (strcmp(method, "POST") == 0) {
        cJSON *j = admin_body(up, a), *c;
        if (j == NULL)
            return;
        pthread_mutex_lock(&f->lock);
        struct settings next = f->set;
        const char *bad = NULL;
        cJSON_ArrayForEach(c, j)
        {
            const struct setting_field *sf = setting_find(c->string);
            if (sf == NULL || setting_set_json(&next, sf, c) != ODSYNC_OK) {
                bad = c->string;
                break;
            }
        }
        if (bad == NULL) {
            if (next.seed != f->set.seed)
                f->rng = (uint64_t)next.seed;
            f->set = next;
        }
        pthread_mutex_unlock(&f->lock);
        if (bad != NULL)
            util_fmt(msg, sizeof(msg), "unknown setting or bad value: %.60s", bad);
        cJSON_Delete(j); /* bad pointed into it */
        if (bad != NULL) {
            answer_error(a, MHD_HTTP_BAD_REQUEST, msg);
            return;
        }
    } else if (strcmp(method, "GET") != 0) {
        answer_error(a, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or POST");
        return;
    }
    pthread_mutex_lock(&f->lock);
    cJSON *s = settings_json(&f->set);
    pthread_mutex_unlock(&f->lock);
    answer_json(a, MHD_HTTP_OK, s);
}

/* POST /_optouts {"number", "sender"?, "opt_out"?: bool (default true)}. */
static void admin_optouts(struct fake *f, const struct serve_upload *up, struct answer *a)
{
    char now[24];
    cJSON *j = admin_body(up, a);
    if (j == NULL)
        return;
    const char *number = jstr(j, "number"), *sender = jstr(j, "sender");
    const cJSON *flag = cJSON_GetObjectItemCaseSensitive(j, "opt_out");
    if (number == NULL || sender == NULL) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "need string members number and sender");
        cJSON_Delete(j);
        return;
    }
    util_fmt(now, sizeof(now), "%lld", (long long)util_now_ms());
    const char *args[] = {number, sender, now};
    pthread_mutex_lock(&f->lock);
    if (flag == NULL || cJSON_IsTrue(flag))
        db_run(f,
               "INSERT OR IGNORE INTO optouts (number, sender, created_ms) VALUES (?1, ?2,"
               " CAST(?3 AS INTEGER))",
               args, 3);
    else
        db_run(f, "DELETE FROM optouts WHERE number = ?1 AND sender = ?2", args, 2);
    pthread_mutex_unlock(&f->lock);
    cJSON_Delete(j);
    admin_state(f, a);
}

/* Mark every number of the comma-separated list as kind. Needs f->lock. */
static void add_numbers(struct fake *f, const char *list, const char *kind)
{
    char number[40];
    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len > 0 && len < sizeof(number)) {
            memcpy(number, p, len);
            number[len] = '\0';
            const char *args[] = {number, kind};
            db_run(f, "INSERT OR REPLACE INTO numbers (number, kind) VALUES (?1, ?2)", args, 2);
        }
        p = p[len] == ',' ? p + len + 1 : NULL;
    }
}

/* POST /_numbers {"invalid": [..], "landline": [..]}: numbers Twilio refuses with 21211 /
 * 21614. */
static void admin_numbers(struct fake *f, const struct serve_upload *up, struct answer *a)
{
    static const char *const kinds[] = {"invalid", "landline"};
    cJSON *j = admin_body(up, a), *c;
    if (j == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    for (size_t k = 0; k < UTIL_ARRAY_LEN(kinds); k++)
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, kinds[k]))
        {
            if (cJSON_IsString(c) && strchr(c->valuestring, ',') == NULL)
                add_numbers(f, c->valuestring, kinds[k]);
        }
    pthread_mutex_unlock(&f->lock);
    cJSON_Delete(j);
    admin_state(f, a);
}

/* POST /_reset: messages, opt-outs, webhooks and counters go; numbers and settings stay. */
static void admin_reset(struct fake *f, struct answer *a)
{
    cJSON *j = cJSON_CreateObject();
    pthread_mutex_lock(&f->lock);
    db_run(f, "DELETE FROM messages", NULL, 0);
    db_run(f, "DELETE FROM optouts", NULL, 0);
    db_run(f, "DELETE FROM webhooks", NULL, 0);
    memset(&f->stats, 0, sizeof(f->stats));
    f->rng = (uint64_t)f->set.seed;
    pthread_mutex_unlock(&f->lock);
    cJSON_AddTrueToObject(j, "reset");
    answer_json(a, MHD_HTTP_OK, j);
}

/* Route an admin request; 0 when url is not an admin route. */
static int route_admin(struct fake *f, struct MHD_Connection *conn, const char *url,
                       const char *method, const struct serve_upload *up, struct answer *a)
{
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (strncmp(url, "/_", 2) != 0)
        return 0;
    if (strcmp(url, "/_faults") == 0)
        admin_faults(f, method, up, a);
    else if (strcmp(url, "/_state") == 0 && get)
        admin_state(f, a);
    else if (strcmp(url, "/_messages") == 0 && get)
        admin_messages(f, conn, a);
    else if (strcmp(url, "/_webhooks") == 0 && get)
        admin_webhooks(f, a);
    else if (strcmp(url, "/_reset") == 0 && post)
        admin_reset(f, a);
    else if (strcmp(url, "/_inbound") == 0 && post)
        admin_inbound(f, up, a);
    else if (strcmp(url, "/_status") == 0 && post)
        admin_status(f, up, a);
    else if (strcmp(url, "/_optouts") == 0 && post)
        admin_optouts(f, up, a);
    else if (strcmp(url, "/_numbers") == 0 && post)
        admin_numbers(f, up, a);
    else
        answer_error(a, MHD_HTTP_NOT_FOUND, "no such admin route (or wrong method)");
    return 1;
}

/* ---- MHD callbacks ------------------------------------------------------------------------ */

/* MHD access handler: collect the body (owned by *req_cls until serve_on_completed), then route
 * and answer. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct fake *f = cls;
    struct serve_upload *up;
    enum MHD_Result more;
    struct answer a = {.status = 0, .body = NULL, .type = NULL, .retry_after = -1};
    (void)version;
    up = serve_collect(req_cls, upload_data, upload_data_size, FAKE_MAX_BODY, &more);
    if (up == NULL)
        return more;
    if (route_admin(f, conn, url, method, up, &a)) {
        log_debug(FAKE_LOG, "admin %s %s: %u", method, url, a.status);
    } else {
        route_api(f, conn, url, method, up, &a);
        pthread_mutex_lock(&f->lock);
        f->stats.requests++;
        if (a.status < UTIL_ARRAY_LEN(f->stats.by_status))
            f->stats.by_status[a.status]++;
        pthread_mutex_unlock(&f->lock);
        log_debug(FAKE_LOG, "%s %s (%zu bytes): %u", method, url, up->body.len, a.status);
    }
    return send_answer(conn, &a);
}

/* ---- start-up ----------------------------------------------------------------------------- */

/* The --help text. */
static void usage(FILE *out)
{
    fputs(
        "usage: fake_twilio --account-sid AC... --auth-token TOKEN [options]\n"
        "\n"
        "A fake of Twilio Programmable Messaging (API 2010-04-01) with SQLite state, faults,\n"
        "and signed inbound / status webhooks. See contrib/fakes/README.md.\n"
        "\n"
        "  --account-sid AC...          the account (AC + 32 hex digits; required)\n"
        "  --auth-token TOKEN           its auth token: Basic auth and webhook signing (required)\n"
        "  --api-key-sid SK...          an API key that may authenticate instead\n"
        "  --api-key-secret SECRET      its secret\n"
        "  --messaging-service-sid MG...the one Messaging Service (default: any MG... accepted)\n"
        "  --numbers N1,N2              the account's numbers (From must be one; default any)\n"
        "  --invalid-numbers N1,N2      recipients refused with 21211\n"
        "  --landline-numbers N1,N2     recipients refused with 21614\n"
        "  --listen A.B.C.D:PORT        default 127.0.0.1:0 (a free port)\n"
        "  --db FILE                    SQLite database (default: in memory)\n"
        "  --verbose                    one stderr line per request (never bodies or numbers)\n"
        "  --help                       this text\n"
        "\n"
        "Settings (also POST /_faults): --fail-next N --html502-next N --truncate-next N\n"
        "  --truncate-status S --rate-limit-next N --rate-per-second N --retry-after S\n"
        "  --delay-ms N --body-max N --seed N --advanced-opt-out true|false\n"
        "  --auto-status off|delivered|undelivered|failed\n"
        "\n"
        "Prints \"listening on 127.0.0.1:PORT\" when ready. SIGTERM/SIGINT exit 0; bad flags "
        "exit 2.\n",
        out);
}

struct options {
    const char *listen_at, *db, *invalid, *landline;
    int verbose, help;
};

/* The option value slot for a flag name, or NULL. */
static const char **option_slot(struct fake *f, struct options *o, const char *name)
{
    static const char *const names[] = {"account-sid",
                                        "auth-token",
                                        "api-key-sid",
                                        "api-key-secret",
                                        "messaging-service-sid",
                                        "numbers",
                                        "invalid-numbers",
                                        "landline-numbers",
                                        "listen",
                                        "db"};
    const char **slots[] = {&f->account_sid, &f->auth_token, &f->key_sid, &f->key_secret,
                            &f->service_sid, &f->numbers,    &o->invalid, &o->landline,
                            &o->listen_at,   &o->db};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i]) == 0)
            return slots[i];
    return NULL;
}

/* Parse argv. "--name VALUE" and "--name=VALUE". ODSYNC_OK or ODSYNC_PARSE (printed). */
static int parse_args(int argc, char **argv, struct fake *f, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        char name[40];
        const char *arg = argv[i], *value = NULL, *eq = strchr(arg, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || nlen >= sizeof(name)) {
            fprintf(stderr, "fake_twilio: unknown argument \"%s\" (see --help)\n", arg);
            return ODSYNC_PARSE;
        }
        memcpy(name, arg + 2, nlen - 2);
        name[nlen - 2] = '\0';
        if (strcmp(name, "help") == 0 || strcmp(name, "verbose") == 0) {
            *(strcmp(name, "help") == 0 ? &o->help : &o->verbose) = 1;
            continue;
        }
        const char **slot = option_slot(f, o, name);
        const struct setting_field *sf = strchr(name, '_') == NULL ? setting_find(name) : NULL;
        if (slot == NULL && sf == NULL) {
            fprintf(stderr, "fake_twilio: unknown flag --%s (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "fake_twilio: --%s needs a value (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (slot != NULL) {
            *slot = value;
        } else if (setting_set_text(&f->set, sf, value) != ODSYNC_OK) {
            fprintf(stderr, "fake_twilio: --%s: bad value \"%s\"\n", name, value);
            return ODSYNC_PARSE;
        }
    }
    return ODSYNC_OK;
}

/* Check the identity flags. ODSYNC_OK or ODSYNC_PARSE (printed). */
static int check_identity(const struct fake *f)
{
    if (!sid_valid(f->account_sid, "AC") || f->auth_token == NULL || f->auth_token[0] == '\0') {
        fprintf(stderr, "fake_twilio: --account-sid AC+32 hex and --auth-token are required\n");
        return ODSYNC_PARSE;
    }
    if ((f->key_sid == NULL) != (f->key_secret == NULL) ||
        (f->key_sid != NULL && !sid_valid(f->key_sid, "SK"))) {
        fprintf(stderr, "fake_twilio: --api-key-sid SK+32 hex and --api-key-secret go together\n");
        return ODSYNC_PARSE;
    }
    if (f->service_sid != NULL && !sid_valid(f->service_sid, "MG")) {
        fprintf(stderr, "fake_twilio: --messaging-service-sid: expected MG + 32 hex digits\n");
        return ODSYNC_PARSE;
    }
    return ODSYNC_OK;
}

/* Open the database and create the schema. ODSYNC_OK or ODSYNC_IO (printed). */
static int db_open(struct fake *f, const char *path)
{
    char *err = NULL;
    if (sqlite3_open_v2(path, &f->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(f->db, schema_sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "fake_twilio: cannot open %s: %s\n", path,
                err != NULL     ? err
                : f->db != NULL ? sqlite3_errmsg(f->db)
                                : "out of memory");
        sqlite3_free(err);
        return ODSYNC_IO;
    }
    sqlite3_busy_timeout(f->db, 5000);
    return ODSYNC_OK;
}

/* Parse flags, open the state, start the status worker and MHD, serve until SIGTERM/SIGINT,
 * then stop MHD, join the worker and free everything. */
int main(int argc, char **argv)
{
    static struct fake f; /* static: reachable from MHD threads */
    struct options o = {.listen_at = "127.0.0.1:0", .db = ":memory:"};
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in addr;
    char host[INET_ADDRSTRLEN];
    sigset_t sigs;
    pthread_t worker;
    int sig, rc = 2, inited = 0, worker_started = 0, http_inited = 0;

    f.set = (struct settings){.truncate_status = 201,
                              .body_max = 1600,
                              .seed = 1,
                              .advanced_opt_out = 1,
                              .auto_status = "off"};
    if (parse_args(argc, argv, &f, &o) != ODSYNC_OK)
        goto cleanup;
    if (o.help) {
        usage(stdout);
        rc = 0;
        goto cleanup;
    }
    if (check_identity(&f) != ODSYNC_OK)
        goto cleanup;
    if (serve_parse_listen(o.listen_at, &addr) != ODSYNC_OK) {
        fprintf(stderr, "fake_twilio: --listen: expected A.B.C.D:PORT, got \"%s\"\n", o.listen_at);
        goto cleanup;
    }
    rc = 1;
    log_setup(stderr, o.verbose ? ODSYNC_LOG_DEBUG : ODSYNC_LOG_INFO, LOG_TEXT);
    if (log_add_secret(f.auth_token) != ODSYNC_OK ||
        (f.key_secret != NULL && log_add_secret(f.key_secret) != ODSYNC_OK) ||
        http_global_init() != ODSYNC_OK) {
        fprintf(stderr, "fake_twilio: out of memory\n");
        goto cleanup;
    }
    http_inited = 1;
    if (pthread_mutex_init(&f.lock, NULL) != 0 || pthread_cond_init(&f.wake, NULL) != 0) {
        fprintf(stderr, "fake_twilio: cannot create a mutex\n");
        goto cleanup;
    }
    inited = 1;
    f.rng = (uint64_t)f.set.seed;
    if (db_open(&f, o.db) != ODSYNC_OK)
        goto cleanup;
    add_numbers(&f, o.invalid, "invalid");
    add_numbers(&f, o.landline, "landline");

    serve_block_signals(&sigs);
    if (pthread_create(&worker, NULL, auto_worker, &f) != 0) {
        fprintf(stderr, "fake_twilio: cannot start the status worker\n");
        goto cleanup;
    }
    worker_started = 1;

    d = serve_start(&addr, on_request, &f, NULL);
    if (d == NULL) {
        fprintf(stderr, "fake_twilio: cannot listen on %s\n", o.listen_at);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    printf("listening on %s:%u\n", host, info != NULL ? (unsigned)info->port : 0u);
    fflush(stdout);
    log_info(FAKE_LOG, "listening on %s:%u, state in %s", host,
             info != NULL ? (unsigned)info->port : 0u, o.db);

    while (sigwait(&sigs, &sig) != 0)
        ;
    log_info(FAKE_LOG, "signal %d: stopping", sig);
    rc = 0;
cleanup:
    atomic_store(&f.stopping, 1);
    if (d != NULL)
        MHD_stop_daemon(d);
    if (worker_started) {
        pthread_mutex_lock(&f.lock);
        pthread_cond_broadcast(&f.wake);
        pthread_mutex_unlock(&f.lock);
        pthread_join(worker, NULL);
    }
    while (f.head != NULL) {
        struct job *next = f.head->next;
        util_free(f.head);
        f.head = next;
    }
    sqlite3_close(f.db);
    if (inited) {
        pthread_cond_destroy(&f.wake);
        pthread_mutex_destroy(&f.lock);
    }
    if (http_inited)
        http_global_cleanup();
    log_shutdown();
    return rc;
}
