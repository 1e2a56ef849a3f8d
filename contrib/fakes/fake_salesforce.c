/*
 * fake_salesforce: a faithful-enough fake of the Salesforce REST API for the salesforce
 * connector's tests (reference: /work/shared/reference/crm-and-messaging-apis.md section 2).
 * contrib/fakes/README.md ("fake_salesforce") documents every flag, route, fault and the state
 * JSON; this comment is the short version.
 *
 *   fake_salesforce --client-id ID [--client-secret S] [--username U] [--refresh-token R]
 *                   [--jwt-public-key PEM] [--listen 127.0.0.1:PORT] [--db FILE] ...
 *
 * Prints "listening on 127.0.0.1:PORT" on stdout once ready, nothing else on stdout.
 * SIGTERM/SIGINT exit 0; bad flags exit 2; start-up failures exit 1.
 *
 * Routes:
 *   POST  /services/oauth2/token                     client_credentials, jwt-bearer (RS256
 *         verified with --jwt-public-key), refresh_token; instance_url = this server
 *   PATCH /services/data/vNN.N/composite/sobjects/{Contact|Task}/{ExternalIdField}
 *         sObject Collections upsert, <= 200 records, allOrNone, per-record errors
 *   GET   /services/data/vNN.N/query?q=SELECT ... FROM T WHERE F IN (...) | F = '...'
 *   GET   /services/data/vNN.N/limits
 *   admin (never counted or faulted): GET /_state, GET /_objects/{Type}[/{ext id}],
 *         GET|POST /_faults, POST /_reset
 *
 * Every /services/data response carries Sforce-Limit-Info: api-usage=N/M; a request past the
 * daily limit is 403 REQUEST_LIMIT_EXCEEDED. Tokens expire after --token-lifetime seconds (or
 * on POST /_faults {"expire-tokens":true}) -> 401 INVALID_SESSION_ID.
 *
 * Threads: libmicrohttpd runs one thread per connection; one mutex (struct fake.lock) guards
 * SQLite, the counters and the settings. Request bodies (test patient data) are never logged.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
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
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include "log.h"
#include "serve.h"
#include "util.h"

#define FAKE_LOG       "fake_salesforce"
#define FAKE_MAX_BODY  ((size_t)8 * 1024 * 1024)
#define FAKE_MAX_BATCH 200
#define FAKE_ORG_ID    "00D5g000004FAKE"
#define FAKE_USER_ID   "0055g00000FAKE1"
#define HTML_502                                                                                   \
    "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"                  \
    "<p>The proxy server received an invalid response from an upstream server.</p></body></html>"

enum sobj { OBJ_CONTACT = 0, OBJ_TASK = 1, OBJ_COUNT };
static const char *const obj_name[OBJ_COUNT] = {"Contact", "Task"};
static const char *const obj_prefix[OBJ_COUNT] = {"003", "00T"};

/* Field kinds of the fake's schema. */
enum ftype { FT_TEXT, FT_EMAIL, FT_DATE, FT_BOOL, FT_NUMBER, FT_ID, FT_PICK };

struct field {
    const char *name;
    enum ftype type;
    int max; /* text length in characters; 0 = none */
};

/* The schema: the standard fields the connector writes and the custom fields of its setup
 * text. The External ID field (configurable) is added at run time. Any other field in a
 * record is a 400 INVALID_FIELD, as Salesforce answers an unknown column. */
static const struct field contact_fields[] = {
    {"FirstName", FT_TEXT, 40},
    {"LastName", FT_TEXT, 80},
    {"Email", FT_EMAIL, 80},
    {"MobilePhone", FT_TEXT, 40},
    {"HomePhone", FT_TEXT, 40},
    {"Phone", FT_TEXT, 40},
    {"HasOptedOutOfEmail", FT_BOOL, 0},
    {"Odsync_Office__c", FT_TEXT, 64},
    {"Odsync_PatNum__c", FT_NUMBER, 0},
    {"Odsync_Patient_Status__c", FT_TEXT, 40},
    {"Odsync_Preferred_Name__c", FT_TEXT, 100},
    {"Odsync_Guarantor_Key__c", FT_TEXT, 255},
    {"Odsync_SMS_Consent__c", FT_TEXT, 16},
    {"Odsync_Recall_Due__c", FT_DATE, 0},
    {"Odsync_Recall_Stage__c", FT_TEXT, 40},
    {"Odsync_Last_Visit__c", FT_DATE, 0},
    {"Odsync_Reactivation__c", FT_BOOL, 0},
    {NULL, 0, 0},
};
static const struct field task_fields[] = {
    {"Subject", FT_TEXT, 255},    {"Description", FT_TEXT, 32000},
    {"ActivityDate", FT_DATE, 0}, {"Status", FT_PICK, 0},
    {"Priority", FT_PICK, 0},     {"WhoId", FT_ID, 0},
    {"OwnerId", FT_ID, 0},        {NULL, 0, 0},
};
static const char *const task_statuses[] = {
    "Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred", NULL};
static const char *const task_priorities[] = {"High", "Normal", "Low", NULL};

/* Settings fixed at start. Strings borrowed from argv. */
struct config {
    const char *client_id, *client_secret, *username, *refresh_token, *audience;
    const char *ext_field[OBJ_COUNT];
    EVP_PKEY *jwt_key; /* owned; NULL = JWT signatures are not checked */
};

/* Run-time settings (flags at start, POST /_faults later). */
struct faults {
    int64_t fail_next;            /* next N data requests answer fail_status */
    int64_t fail_status;          /* 500 by default */
    int64_t html502_next;         /* next N data requests answer 502 with an HTML page */
    int64_t truncate_next;        /* next N 2xx data answers are cut in half (work applied) */
    int64_t invalid_session_next; /* next N authenticated data requests answer 401 */
    int64_t lock_next;            /* next N valid upserted records fail UNABLE_TO_LOCK_ROW */
    int64_t token_fail_next;      /* next N token requests answer 500 */
    int64_t delay_ms;             /* every data request waits this long */
    double fail_rate;             /* fraction of data requests answered 500 */
    int64_t seed;
    int64_t token_lifetime_s; /* 0 = tokens never expire */
    int64_t daily_limit;      /* API requests per "day" (until reset) */
};

/* Per-route answer counts, e.g. "composite/Contact" -> {"200": 3, "401": 1}. */
#define MAX_ROUTES 16
struct route_count {
    char route[32];
    int64_t by_status[600];
};

struct fake {
    pthread_mutex_t lock; /* guards everything below except cfg and stopping */
    sqlite3 *db;
    struct config cfg;
    struct faults faults;
    uint64_t rng;
    int64_t api_usage;
    int64_t seq[OBJ_COUNT]; /* last id sequence per object */
    int64_t tokens_issued, token_requests, data_requests;
    int64_t created, updated, record_errors;
    struct route_count routes[MAX_ROUTES];
    size_t n_routes;
    char base_url[64]; /* "http://127.0.0.1:PORT" */
    atomic_int stopping;
};

/* An answer being built. */
struct answer {
    unsigned status;
    char *body;           /* owned (util_free) */
    const char *type;     /* static content type */
    int limit_info;       /* add Sforce-Limit-Info */
    int64_t usage, limit; /* its values */
};

static const char schema_sql[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = OFF;"
    "CREATE TABLE IF NOT EXISTS objects ("
    " type TEXT NOT NULL, id TEXT NOT NULL PRIMARY KEY, ext TEXT NOT NULL, fields TEXT NOT NULL,"
    " writes INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " UNIQUE (type, ext));"
    "CREATE TABLE IF NOT EXISTS tokens ("
    " token TEXT PRIMARY KEY, grant_type TEXT NOT NULL, expires_ms INTEGER NOT NULL);";

/* ---- small helpers ------------------------------------------------------------------------ */

/* splitmix64; state advanced in place. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Now as "YYYY-MM-DDTHH:MM:SS.000+0000" (Salesforce's style) into buf (>= 32 bytes). */
static void now_sf(char *buf, size_t len)
{
    int64_t ms = util_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char base[24];
    gmtime_r(&secs, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    util_fmt(buf, len, "%s.%03d+0000", base, (int)(ms % 1000));
}

/* Sleep ms in slices, ending early on shutdown. */
static void sleep_ms(struct fake *f, int64_t ms)
{
    int64_t end = util_monotonic_ms() + ms;
    for (;;) {
        int64_t left = end - util_monotonic_ms();
        if (left <= 0 || atomic_load(&f->stopping))
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(left > 50 ? 50 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* An 18-character record id: prefix, a fixed pod part, the sequence in base 62, and the
 * case-safe checksum Salesforce appends to 15-character ids. */
static void make_id(enum sobj o, int64_t seq, char out[19])
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static const char sum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    memcpy(out, obj_prefix[o], 3);
    memcpy(out + 3, "5g0000", 6);
    for (int i = 14; i >= 9; i--) {
        out[i] = b62[seq % 62];
        seq /= 62;
    }
    for (int chunk = 0; chunk < 3; chunk++) {
        int bits = 0;
        for (int i = 0; i < 5; i++)
            if (out[chunk * 5 + i] >= 'A' && out[chunk * 5 + i] <= 'Z')
                bits |= 1 << i;
        out[15 + chunk] = sum[bits];
    }
    out[18] = '\0';
}

/* Count a UTF-8 string's characters. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* 1 when s is "YYYY-MM-DD". */
static int is_date(const char *s)
{
    if (strlen(s) != 10)
        return 0;
    for (int i = 0; i < 10; i++)
        if ((i == 4 || i == 7) ? s[i] != '-' : !isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* 1 when s is a plausible email: one '@', non-empty local part, a '.' in the domain, no
 * spaces. */
static int is_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || strchr(s, ' ') != NULL)
        return 0;
    const char *dot = strrchr(at + 1, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0';
}

/* 1 when s is in the NULL-terminated list. */
static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* ---- answers ------------------------------------------------------------------------------ */

/* Set a JSON answer; json is taken. */
static void answer_json(struct answer *a, unsigned status, cJSON *json)
{
    char *text = json != NULL ? cJSON_PrintUnformatted(json) : NULL;
    util_free(a->body);
    a->status = status;
    a->type = "application/json;charset=UTF-8";
    a->body = text != NULL ? util_strdup(text) : NULL;
    cJSON_free(text);
    cJSON_Delete(json);
}

/* Set a Salesforce error answer: [{"message": message, "errorCode": code}]. */
static void answer_sf_error(struct answer *a, unsigned status, const char *code,
                            const char *message)
{
    cJSON *arr = cJSON_CreateArray(), *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "errorCode", code);
    cJSON_AddItemToArray(arr, e);
    answer_json(a, status, arr);
}

/* Set an OAuth error answer: {"error": code, "error_description": description}. */
static void answer_oauth_error(struct answer *a, unsigned status, const char *code,
                               const char *description)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", code);
    cJSON_AddStringToObject(o, "error_description", description);
    answer_json(a, status, o);
}

static void free_body(void *p)
{
    util_free(p);
}

/* Queue the answer. Takes a->body. */
static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
    char num[64];
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
    if (a->limit_info) {
        util_fmt(num, sizeof(num), "api-usage=%lld/%lld", (long long)a->usage, (long long)a->limit);
        MHD_add_response_header(resp, "Sforce-Limit-Info", num);
    }
    enum MHD_Result ret = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Count an answer for route (f->lock held). */
static void count_route(struct fake *f, const char *route, unsigned status)
{
    size_t i;
    for (i = 0; i < f->n_routes; i++)
        if (strcmp(f->routes[i].route, route) == 0)
            break;
    if (i == f->n_routes) {
        if (f->n_routes == MAX_ROUTES)
            return;
        util_fmt(f->routes[i].route, sizeof(f->routes[i].route), "%s", route);
        f->n_routes++;
    }
    if (status < 600)
        f->routes[i].by_status[status]++;
}

/* ---- OAuth -------------------------------------------------------------------------------- */

/* Percent-decode a form value in place ('+' is a space). Returns 0, -1 on a bad escape. */
static int form_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%') {
            char hex[3] = {p[1], p[1] != '\0' ? p[2] : '\0', '\0'};
            char *end = NULL;
            if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]))
                return -1;
            long v = strtol(hex, &end, 16);
            if (v == 0)
                return -1;
            *o++ = (char)v;
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return 0;
}

/* The value of name in a form body (a modifiable copy, decoded), or NULL. Caller frees. */
static char *form_get(const char *body, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = body;
    while (p != NULL && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            char *v = util_strndup(p + nlen + 1, len - nlen - 1);
            if (v != NULL && form_decode(v) != 0) {
                util_free(v);
                return NULL;
            }
            return v;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return NULL;
}

/* base64url-decode s[0..n) into a new buffer (caller frees with util_free); *out_len. NULL on
 * bad input. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
    size_t padded = (n + 3) / 4 * 4;
    char *tmp = util_malloc(padded + 1);
    unsigned char *out = util_malloc(padded / 4 * 3 + 1);
    if (tmp == NULL || out == NULL || n % 4 == 1)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!isalnum((unsigned char)c))
            goto fail;
        tmp[i] = c;
    }
    for (size_t i = n; i < padded; i++)
        tmp[i] = '=';
    tmp[padded] = '\0';
    int len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded);
    if (len < 0)
        goto fail;
    *out_len = (size_t)len - (padded - n); /* EVP_DecodeBlock counts padding as zero bytes */
    out[*out_len] = '\0';
    util_free(tmp);
    return out;
fail:
    ERR_clear_error();
    util_free(tmp);
    util_free(out);
    return NULL;
}

/* Check a JWT bearer assertion. Returns NULL when valid, else the error_description. */
static const char *jwt_check(struct fake *f, const char *jwt)
{
    const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    unsigned char *hdr = NULL, *claims = NULL, *sig = NULL;
    size_t hlen, clen, slen;
    cJSON *h = NULL, *c = NULL;
    const char *why = "invalid assertion";
    EVP_MD_CTX *md = NULL;

    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
        goto cleanup;
    hdr = b64url_decode(jwt, (size_t)(dot1 - jwt), &hlen);
    claims = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &clen);
    sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &slen);
    if (hdr == NULL || claims == NULL || sig == NULL)
        goto cleanup;
    h = cJSON_ParseWithLength((const char *)hdr, hlen);
    c = cJSON_ParseWithLength((const char *)claims, clen);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "RS256") != 0) {
        why = "invalid assertion: alg must be RS256";
        goto cleanup;
    }
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(c, "iss");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(c, "sub");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(c, "aud");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "exp");
    if (!cJSON_IsString(iss) || strcmp(iss->valuestring, f->cfg.client_id) != 0) {
        why = "client identifier invalid";
        goto cleanup;
    }
    if (!cJSON_IsString(aud) || strcmp(aud->valuestring, f->cfg.audience) != 0) {
        why = "audience is invalid";
        goto cleanup;
    }
    if (!cJSON_IsString(sub) || f->cfg.username == NULL ||
        strcmp(sub->valuestring, f->cfg.username) != 0) {
        why = "user hasn't approved this consumer";
        goto cleanup;
    }
    if (!cJSON_IsNumber(exp) || exp->valuedouble <= (double)time(NULL)) {
        why = "expired authorization code";
        goto cleanup;
    }
    if (f->cfg.jwt_key != NULL) {
        md = EVP_MD_CTX_new();
        if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, f->cfg.jwt_key) != 1 ||
            EVP_DigestVerify(md, sig, slen, (const unsigned char *)jwt, (size_t)(dot2 - jwt)) !=
                1) {
            why = "invalid assertion: signature";
            goto cleanup;
        }
    }
    why = NULL;
cleanup:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    cJSON_Delete(h);
    cJSON_Delete(c);
    util_free(hdr);
    util_free(claims);
    util_free(sig);
    return why;
}

/* POST /services/oauth2/token. */
static void serve_token(struct fake *f, const char *body, struct answer *a)
{
    char *grant = form_get(body, "grant_type"), *cid = form_get(body, "client_id");
    char *secret = form_get(body, "client_secret"), *rt = form_get(body, "refresh_token");
    char *assertion = form_get(body, "assertion");
    const char *why = NULL, *grant_name = NULL;
    char token[80];

    pthread_mutex_lock(&f->lock);
    f->token_requests++;
    if (f->faults.token_fail_next > 0) {
        f->faults.token_fail_next--;
        pthread_mutex_unlock(&f->lock);
        answer_sf_error(a, 500, "UNKNOWN_EXCEPTION", "injected token fault");
        goto cleanup;
    }
    pthread_mutex_unlock(&f->lock);
    if (grant == NULL) {
        answer_oauth_error(a, 400, "unsupported_grant_type", "grant type not supported");
        goto cleanup;
    }
    if (strcmp(grant, "client_credentials") == 0) {
        grant_name = "client_credentials";
        if (cid == NULL || strcmp(cid, f->cfg.client_id) != 0 || f->cfg.client_secret == NULL ||
            secret == NULL || !util_secure_equal(secret, f->cfg.client_secret)) {
            answer_oauth_error(a, 400, "invalid_client", "invalid client credentials");
            goto cleanup;
        }
    } else if (strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0) {
        grant_name = "jwt-bearer";
        why = assertion != NULL ? jwt_check(f, assertion) : "invalid assertion";
        if (why != NULL) {
            answer_oauth_error(a, 400, "invalid_grant", why);
            goto cleanup;
        }
    } else if (strcmp(grant, "refresh_token") == 0) {
        grant_name = "refresh_token";
        if (cid == NULL || strcmp(cid, f->cfg.client_id) != 0) {
            answer_oauth_error(a, 400, "invalid_client_id", "client identifier invalid");
            goto cleanup;
        }
        if (secret != NULL &&
            (f->cfg.client_secret == NULL || !util_secure_equal(secret, f->cfg.client_secret))) {
            answer_oauth_error(a, 400, "invalid_client", "invalid client credentials");
            goto cleanup;
        }
        if (rt == NULL || f->cfg.refresh_token == NULL ||
            !util_secure_equal(rt, f->cfg.refresh_token)) {
            answer_oauth_error(a, 400, "invalid_grant", "expired access/refresh token");
            goto cleanup;
        }
    } else {
        answer_oauth_error(a, 400, "unsupported_grant_type", "grant type not supported");
        goto cleanup;
    }

    pthread_mutex_lock(&f->lock);
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t off = (size_t)snprintf(token, sizeof(token), "%s!", FAKE_ORG_ID);
    while (off < 16 + 48) {
        token[off++] = alnum[rng_next(&f->rng) % (sizeof(alnum) - 1)];
    }
    token[off] = '\0';
    int64_t now = util_now_ms();
    int64_t expires = f->faults.token_lifetime_s > 0 ? now + f->faults.token_lifetime_s * 1000 : 0;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(f->db, "INSERT INTO tokens VALUES (?1, ?2, ?3)", -1, &st, NULL) ==
             SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, grant_name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, expires);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (ok)
        f->tokens_issued++;
    char base[64];
    util_fmt(base, sizeof(base), "%s", f->base_url);
    pthread_mutex_unlock(&f->lock);
    if (!ok) {
        answer_sf_error(a, 500, "UNKNOWN_EXCEPTION", "storage error");
        goto cleanup;
    }
    cJSON *o = cJSON_CreateObject();
    char idurl[160], issued[32];
    util_fmt(idurl, sizeof(idurl), "%s/id/%s/%s", base, FAKE_ORG_ID, FAKE_USER_ID);
    util_fmt(issued, sizeof(issued), "%lld", (long long)now);
    cJSON_AddStringToObject(o, "access_token", token);
    cJSON_AddStringToObject(o, "instance_url", base);
    cJSON_AddStringToObject(o, "id", idurl);
    cJSON_AddStringToObject(o, "token_type", "Bearer");
    cJSON_AddStringToObject(o, "issued_at", issued);
    cJSON_AddStringToObject(o, "signature", "ZmFrZS1zaWduYXR1cmU=");
    cJSON_AddStringToObject(o, "scope", "api");
    answer_json(a, 200, o);
cleanup:
    util_free(grant);
    util_free(cid);
    util_free(secret);
    util_free(rt);
    util_free(assertion);
}

/* 1 when the request carries a known, unexpired token (f->lock held). */
static int token_valid(struct fake *f, struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    sqlite3_stmt *st = NULL;
    int ok = 0;
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    if (sqlite3_prepare_v2(f->db, "SELECT expires_ms FROM tokens WHERE token = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, auth + 7, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t exp = sqlite3_column_int64(st, 0);
        ok = exp == 0 || exp > util_now_ms();
    }
    sqlite3_finalize(st);
    return ok;
}

/* ---- objects ------------------------------------------------------------------------------ */

/* The schema entry of name on object o, or NULL (the External ID field is FT_TEXT 255). */
static const struct field *field_of(const struct fake *f, enum sobj o, const char *name)
{
    static const struct field ext = {"", FT_TEXT, 255};
    static const struct field id = {"Id", FT_ID, 0};
    if (strcmp(name, f->cfg.ext_field[o]) == 0)
        return &ext;
    if (strcmp(name, "Id") == 0)
        return &id;
    for (const struct field *fl = o == OBJ_CONTACT ? contact_fields : task_fields; fl->name; fl++)
        if (strcmp(fl->name, name) == 0)
            return fl;
    return NULL;
}

/* The stored fields of (o, ext) as parsed JSON (caller frees) and *id, or NULL when absent
 * (f->lock held). */
static cJSON *object_get(struct fake *f, enum sobj o, const char *ext, char id[19], int *writes)
{
    sqlite3_stmt *st = NULL;
    cJSON *out = NULL;
    if (sqlite3_prepare_v2(f->db, "SELECT id, fields, writes FROM objects WHERE type=?1 AND ext=?2",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, obj_name[o], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ext, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        util_fmt(id, 19, "%s", (const char *)sqlite3_column_text(st, 0));
        out = cJSON_Parse((const char *)sqlite3_column_text(st, 1));
        if (writes != NULL)
            *writes = sqlite3_column_int(st, 2);
    }
    sqlite3_finalize(st);
    return out;
}

/* 1 when a Contact with this Id exists (f->lock held). */
static int contact_exists(struct fake *f, const char *id)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(f->db, "SELECT 1 FROM objects WHERE type='Contact' AND id=?1", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* A per-record error object {"statusCode", "message", "fields": [field]}. */
static cJSON *record_error(const char *code, const char *message, const char *field)
{
    cJSON *e = cJSON_CreateObject(), *fields;
    cJSON_AddStringToObject(e, "statusCode", code);
    cJSON_AddStringToObject(e, "message", message);
    fields = cJSON_AddArrayToObject(e, "fields");
    if (field != NULL)
        cJSON_AddItemToArray(fields, cJSON_CreateString(field));
    return e;
}

/* Check one record's field values against the schema; the first problem as a per-record
 * error (caller frees), or NULL. merged: the record as it would be stored (for required
 * fields). f->lock held. */
static cJSON *validate_record(struct fake *f, enum sobj o, const cJSON *rec, const cJSON *merged)
{
    char msg[160];
    const cJSON *v;
    cJSON_ArrayForEach(v, rec)
    {
        const struct field *fl = field_of(f, o, v->string);
        if (fl == NULL || cJSON_IsNull(v) || strcmp(v->string, "attributes") == 0)
            continue;
        if ((fl->type == FT_TEXT || fl->type == FT_EMAIL) && fl->max > 0 &&
            utf8_chars(v->valuestring) > (size_t)fl->max) {
            util_fmt(msg, sizeof(msg), "%s: data value too large (max length=%d)", v->string,
                     fl->max);
            return record_error("STRING_TOO_LONG", msg, v->string);
        }
        if (fl->type == FT_EMAIL && !is_email(v->valuestring))
            return record_error("INVALID_EMAIL_ADDRESS", "Email: invalid email address", v->string);
        if (fl->type == FT_PICK) {
            const char *const *list =
                strcmp(v->string, "Status") == 0 ? task_statuses : task_priorities;
            if (!in_list(v->valuestring, list)) {
                util_fmt(msg, sizeof(msg), "%s: bad value for restricted picklist field",
                         v->string);
                return record_error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", msg, v->string);
            }
        }
        if (strcmp(v->string, "WhoId") == 0 && !contact_exists(f, v->valuestring))
            return record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                                "WhoId");
    }
    if (o == OBJ_CONTACT) {
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(merged, "LastName");
        int blank = 1;
        for (const char *c = cJSON_IsString(last) ? last->valuestring : ""; *c; c++)
            blank = blank && isspace((unsigned char)*c);
        if (blank)
            return record_error("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]",
                                "LastName");
    } else {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(merged, "Status");
        if (!cJSON_IsString(st))
            return record_error("REQUIRED_FIELD_MISSING", "Required fields are missing: [Status]",
                                "Status");
    }
    return NULL;
}

/* Check the shape of every value (types the JSON deserializer enforces). Returns NULL, or the
 * message of a 400 (static or in buf). */
static const char *check_types(struct fake *f, enum sobj o, const cJSON *rec, char *buf, size_t len)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, rec)
    {
        if (strcmp(v->string, "attributes") == 0)
            continue;
        const struct field *fl = field_of(f, o, v->string);
        if (fl == NULL || strcmp(v->string, "Id") == 0) {
            util_fmt(buf, len, "No such column '%s' on sobject of type %s", v->string, obj_name[o]);
            return buf;
        }
        if (cJSON_IsNull(v))
            continue;
        int ok = 1;
        switch (fl->type) {
        case FT_BOOL:
            ok = cJSON_IsBool(v);
            break;
        case FT_NUMBER:
            ok = cJSON_IsNumber(v);
            break;
        case FT_DATE:
            ok = cJSON_IsString(v) && is_date(v->valuestring);
            break;
        default:
            ok = cJSON_IsString(v);
            break;
        }
        if (!ok) {
            util_fmt(buf, len, "Cannot deserialize instance of %s from value of field %s",
                     fl->type == FT_DATE ? "date" : "the field's type", v->string);
            return buf;
        }
    }
    return NULL;
}

/* Store (o, ext) with fields (the merged record, without attributes); id is the existing id
 * or "" for a create (then filled). f->lock held. Returns 0 or -1. */
static int object_put(struct fake *f, enum sobj o, const char *ext, const cJSON *fields,
                      char id[19])
{
    char now[40];
    sqlite3_stmt *st = NULL;
    char *text = cJSON_PrintUnformatted(fields);
    int rc = -1, create = id[0] == '\0';
    now_sf(now, sizeof(now));
    if (text == NULL)
        return -1;
    if (create) {
        make_id(o, ++f->seq[o], id);
        if (sqlite3_prepare_v2(f->db, "INSERT INTO objects VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)", -1,
                               &st, NULL) != SQLITE_OK)
            goto cleanup;
        sqlite3_bind_text(st, 1, obj_name[o], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ext, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
    } else {
        if (sqlite3_prepare_v2(f->db,
                               "UPDATE objects SET fields=?2, writes=writes+1, updated_at=?3 "
                               "WHERE id=?1",
                               -1, &st, NULL) != SQLITE_OK)
            goto cleanup;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
cleanup:
    if (rc != 0)
        log_error(FAKE_LOG, "sqlite: %s", sqlite3_errmsg(f->db));
    sqlite3_finalize(st);
    cJSON_free(text);
    return rc;
}

/* PATCH .../composite/sobjects/{o}/{field}: the collections upsert (f->lock held). */
static void serve_upsert(struct fake *f, enum sobj o, const char *field, const char *body,
                         struct answer *a)
{
    cJSON *req = NULL, *results = NULL, **merged = NULL, **errs = NULL;
    char ids[FAKE_MAX_BATCH][19], buf[200];
    const cJSON *recs, *r;
    size_t n = 0, i;
    int any_error = 0;

    if (strcmp(field, f->cfg.ext_field[o]) != 0) {
        util_fmt(buf, sizeof(buf), "Field %s is not an External ID or Id field for %s", field,
                 obj_name[o]);
        answer_sf_error(a, 400, "INVALID_FIELD", buf);
        goto cleanup;
    }
    req = cJSON_Parse(body);
    recs = cJSON_GetObjectItemCaseSensitive(req, "records");
    if (!cJSON_IsObject(req) || !cJSON_IsArray(recs)) {
        answer_sf_error(a, 400, "JSON_PARSER_ERROR",
                        "Expected a JSON object with a \"records\" array");
        goto cleanup;
    }
    n = (size_t)cJSON_GetArraySize(recs);
    if (n > FAKE_MAX_BATCH) {
        answer_sf_error(a, 400, "EXCEEDED_ID_LIMIT",
                        "record limit reached. cannot submit more than 200 records into this "
                        "call");
        goto cleanup;
    }
    const cJSON *aon = cJSON_GetObjectItemCaseSensitive(req, "allOrNone");
    int all_or_none = cJSON_IsTrue(aon);
    i = 0;
    cJSON_ArrayForEach(r, recs)
    {
        const cJSON *attr = cJSON_GetObjectItemCaseSensitive(r, "attributes");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(attr, "type");
        if (!cJSON_IsObject(r) || !cJSON_IsString(type)) {
            answer_sf_error(a, 400, "INVALID_TYPE", "Must send a concrete entity type.");
            goto cleanup;
        }
        if (strcmp(type->valuestring, obj_name[o]) != 0) {
            answer_sf_error(a, 400, "INVALID_TYPE",
                            "Records must be of the sObject type named in the URI");
            goto cleanup;
        }
        const char *msg = check_types(f, o, r, buf, sizeof(buf));
        if (msg != NULL) {
            answer_sf_error(a, 400,
                            strncmp(msg, "No such", 7) == 0 ? "INVALID_FIELD" : "JSON_PARSER_ERROR",
                            msg);
            goto cleanup;
        }
        i++;
    }
    merged = util_calloc(n + 1, sizeof(*merged));
    errs = util_calloc(n + 1, sizeof(*errs));
    results = cJSON_CreateArray();
    if (merged == NULL || errs == NULL || results == NULL) {
        answer_sf_error(a, 500, "UNKNOWN_EXCEPTION", "out of memory");
        goto cleanup;
    }
    /* Pass 1: per-record checks, nothing written. */
    i = 0;
    cJSON_ArrayForEach(r, recs)
    {
        const cJSON *ext = cJSON_GetObjectItemCaseSensitive(r, field);
        ids[i][0] = '\0';
        if (!cJSON_IsString(ext) || ext->valuestring[0] == '\0') {
            util_fmt(buf, sizeof(buf), "%s not specified", field);
            errs[i] = record_error("MISSING_ARGUMENT", buf, NULL);
        } else {
            const cJSON *other;
            size_t k = 0;
            cJSON_ArrayForEach(other, recs)
            {
                const cJSON *oext = cJSON_GetObjectItemCaseSensitive(other, field);
                if (k != i && cJSON_IsString(oext) &&
                    strcmp(oext->valuestring, ext->valuestring) == 0) {
                    util_fmt(buf, sizeof(buf), "Duplicate external id specified: %s",
                             ext->valuestring);
                    errs[i] = record_error("DUPLICATE_VALUE", buf, field);
                    break;
                }
                k++;
            }
        }
        if (errs[i] == NULL) {
            cJSON *stored = object_get(f, o, ext->valuestring, ids[i], NULL);
            merged[i] = stored != NULL ? stored : cJSON_CreateObject();
            const cJSON *v;
            cJSON_ArrayForEach(v, r)
            {
                if (strcmp(v->string, "attributes") == 0)
                    continue;
                cJSON_DeleteItemFromObjectCaseSensitive(merged[i], v->string);
                cJSON_AddItemToObject(merged[i], v->string, cJSON_Duplicate(v, 1));
            }
            errs[i] = validate_record(f, o, r, merged[i]);
        }
        if (errs[i] == NULL && f->faults.lock_next > 0) {
            f->faults.lock_next--;
            errs[i] = record_error("UNABLE_TO_LOCK_ROW",
                                   "unable to obtain exclusive access to this record", NULL);
        }
        any_error |= errs[i] != NULL;
        i++;
    }
    /* Pass 2: write what is valid (nothing when allOrNone and anything failed). */
    sqlite3_exec(f->db, "BEGIN", NULL, NULL, NULL);
    for (i = 0; i < n; i++) {
        cJSON *res = cJSON_CreateObject();
        if (errs[i] == NULL && all_or_none && any_error)
            errs[i] = record_error("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                   "Record rolled back because not all records were valid and "
                                   "the request was using AllOrNone header",
                                   NULL);
        if (errs[i] == NULL) {
            int create = ids[i][0] == '\0';
            const cJSON *ext =
                cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(recs, (int)i), field);
            if (object_put(f, o, ext->valuestring, merged[i], ids[i]) != 0) {
                errs[i] = record_error("UNKNOWN_EXCEPTION", "storage error", NULL);
            } else {
                cJSON_AddStringToObject(res, "id", ids[i]);
                cJSON_AddTrueToObject(res, "success");
                cJSON_AddArrayToObject(res, "errors");
                cJSON_AddBoolToObject(res, "created", create);
                if (create)
                    f->created++;
                else
                    f->updated++;
            }
        }
        if (errs[i] != NULL) {
            cJSON_AddFalseToObject(res, "success");
            cJSON *arr = cJSON_AddArrayToObject(res, "errors");
            cJSON_AddItemToArray(arr, errs[i]);
            errs[i] = NULL;
            f->record_errors++;
        }
        cJSON_AddItemToArray(results, res);
    }
    sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL);
    answer_json(a, 200, results);
    results = NULL;
cleanup:
    for (i = 0; i < n && merged != NULL; i++)
        cJSON_Delete(merged[i]);
    for (i = 0; i < n && errs != NULL; i++)
        cJSON_Delete(errs[i]);
    util_free(merged);
    util_free(errs);
    cJSON_Delete(results);
    cJSON_Delete(req);
}

/* ---- SOQL (the one shape the connector uses, and "=") ------------------------------------ */

struct lexer {
    const char *p;
};

/* Skip spaces; 1 when the next word (case-insensitive) is kw, consumed. */
static int lex_kw(struct lexer *lx, const char *kw)
{
    size_t n = strlen(kw);
    while (isspace((unsigned char)*lx->p))
        lx->p++;
    if (strncasecmp(lx->p, kw, n) != 0 || isalnum((unsigned char)lx->p[n]) || lx->p[n] == '_')
        return 0;
    lx->p += n;
    return 1;
}

/* An identifier into buf; 0 when none. */
static int lex_ident(struct lexer *lx, char *buf, size_t len)
{
    size_t n = 0;
    while (isspace((unsigned char)*lx->p))
        lx->p++;
    while ((isalnum((unsigned char)lx->p[n]) || lx->p[n] == '_') && n + 1 < len)
        n++;
    if (n == 0 || isdigit((unsigned char)lx->p[0]))
        return 0;
    memcpy(buf, lx->p, n);
    buf[n] = '\0';
    lx->p += n;
    return 1;
}

/* One punctuation character c; 0 when not next. */
static int lex_char(struct lexer *lx, char c)
{
    while (isspace((unsigned char)*lx->p))
        lx->p++;
    if (*lx->p != c)
        return 0;
    lx->p++;
    return 1;
}

/* A quoted string literal into a new string (caller frees); NULL when none. */
static char *lex_string(struct lexer *lx)
{
    struct sbuf b = {0};
    while (isspace((unsigned char)*lx->p))
        lx->p++;
    if (*lx->p != '\'')
        return NULL;
    for (lx->p++; *lx->p && *lx->p != '\''; lx->p++) {
        if (*lx->p == '\\' && lx->p[1] != '\0')
            lx->p++;
        sbuf_append(&b, lx->p, 1);
    }
    if (*lx->p != '\'') {
        sbuf_free(&b);
        return NULL;
    }
    lx->p++;
    return sbuf_take(&b);
}

/* GET .../query?q=...: SELECT f1, f2 FROM T WHERE F IN ('a', ...) | F = 'a' (f->lock held). */
static void serve_query(struct fake *f, const char *version, const char *q, struct answer *a)
{
    struct lexer lx = {q != NULL ? q : ""};
    char fields[16][64], type[64], where[64], *vals[FAKE_MAX_BATCH * 5];
    size_t nf = 0, nv = 0;
    cJSON *out = NULL;
    enum sobj o = OBJ_CONTACT;

    if (!lex_kw(&lx, "SELECT"))
        goto malformed;
    do {
        if (nf == 16 || !lex_ident(&lx, fields[nf], sizeof(fields[nf])))
            goto malformed;
        nf++;
    } while (lex_char(&lx, ','));
    if (!lex_kw(&lx, "FROM") || !lex_ident(&lx, type, sizeof(type)))
        goto malformed;
    if (strcmp(type, "Contact") == 0)
        o = OBJ_CONTACT;
    else if (strcmp(type, "Task") == 0)
        o = OBJ_TASK;
    else {
        answer_sf_error(a, 400, "INVALID_TYPE", "sObject type is not supported");
        return;
    }
    for (size_t i = 0; i < nf; i++)
        if (field_of(f, o, fields[i]) == NULL) {
            answer_sf_error(a, 400, "INVALID_FIELD", "No such column on entity");
            return;
        }
    if (!lex_kw(&lx, "WHERE") || !lex_ident(&lx, where, sizeof(where)) ||
        strcmp(where, f->cfg.ext_field[o]) != 0)
        goto malformed;
    if (lex_char(&lx, '=')) {
        vals[nv] = lex_string(&lx);
        if (vals[nv] == NULL)
            goto malformed;
        nv++;
    } else if (lex_kw(&lx, "IN") && lex_char(&lx, '(')) {
        do {
            if (nv == UTIL_ARRAY_LEN(vals) || (vals[nv] = lex_string(&lx)) == NULL)
                goto malformed;
            nv++;
        } while (lex_char(&lx, ','));
        if (!lex_char(&lx, ')'))
            goto malformed;
    } else {
        goto malformed;
    }
    while (isspace((unsigned char)*lx.p))
        lx.p++;
    if (*lx.p != '\0')
        goto malformed;

    out = cJSON_CreateObject();
    cJSON *recs = cJSON_CreateArray();
    int total = 0;
    for (size_t i = 0; i < nv; i++) {
        char id[19] = "";
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(vals[k], vals[i]) == 0;
        cJSON *stored = seen ? NULL : object_get(f, o, vals[i], id, NULL);
        if (stored == NULL)
            continue;
        cJSON *r = cJSON_CreateObject(), *attr = cJSON_AddObjectToObject(r, "attributes");
        char url[128];
        util_fmt(url, sizeof(url), "/services/data/%s/sobjects/%s/%s", version, obj_name[o], id);
        cJSON_AddStringToObject(attr, "type", obj_name[o]);
        cJSON_AddStringToObject(attr, "url", url);
        for (size_t k = 0; k < nf; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(stored, fields[k]);
            if (strcmp(fields[k], "Id") == 0)
                cJSON_AddStringToObject(r, "Id", id);
            else if (strcmp(fields[k], f->cfg.ext_field[o]) == 0)
                cJSON_AddStringToObject(r, fields[k], vals[i]);
            else
                cJSON_AddItemToObject(r, fields[k],
                                      v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(recs, r);
        cJSON_Delete(stored);
        total++;
    }
    cJSON_AddNumberToObject(out, "totalSize", total);
    cJSON_AddTrueToObject(out, "done");
    cJSON_AddItemToObject(out, "records", recs);
    answer_json(a, 200, out);
    goto cleanup;
malformed:
    answer_sf_error(a, 400, "MALFORMED_QUERY",
                    "unexpected token in query (the fake supports "
                    "SELECT fields FROM T WHERE ExtId IN (...) | = ...)");
cleanup:
    for (size_t i = 0; i < nv; i++)
        util_free(vals[i]);
}

/* ---- data routes -------------------------------------------------------------------------- */

/* Route a /services/data request (f->lock held throughout, except delays). */
static void serve_data(struct fake *f, struct MHD_Connection *conn, const char *url,
                       const char *method, const char *body, struct answer *a)
{
    char version[16], route[32] = "other";
    const char *rest = url + strlen("/services/data/");
    const char *slash = strchr(rest, '/');
    int64_t delay = 0;
    enum { R_NONE, R_UPSERT, R_QUERY, R_LIMITS } kind = R_NONE;
    enum sobj o = OBJ_CONTACT;
    char field[96] = "";

    pthread_mutex_lock(&f->lock);
    a->limit_info = 1;
    if (slash == NULL || rest[0] != 'v' || (size_t)(slash - rest) >= sizeof(version)) {
        answer_sf_error(a, 404, "NOT_FOUND", "The requested resource does not exist");
        goto done;
    }
    memcpy(version, rest, (size_t)(slash - rest));
    version[slash - rest] = '\0';
    double v = strtod(version + 1, NULL);
    if (strncmp(slash, "/composite/sobjects/", 20) == 0) {
        const char *t = slash + 20, *s2 = strchr(t, '/');
        if (s2 != NULL && strncmp(t, "Contact/", 8) == 0)
            o = OBJ_CONTACT;
        else if (s2 != NULL && strncmp(t, "Task/", 5) == 0)
            o = OBJ_TASK;
        else
            s2 = NULL;
        if (s2 != NULL && strlen(s2 + 1) < sizeof(field) && strchr(s2 + 1, '/') == NULL) {
            util_fmt(field, sizeof(field), "%s", s2 + 1);
            util_fmt(route, sizeof(route), "composite/%s", obj_name[o]);
            kind = R_UPSERT;
        }
    } else if (strcmp(slash, "/query") == 0) {
        kind = R_QUERY;
        util_fmt(route, sizeof(route), "query");
    } else if (strcmp(slash, "/limits") == 0) {
        kind = R_LIMITS;
        util_fmt(route, sizeof(route), "limits");
    }
    if (kind == R_NONE || v < 20.0 || (kind == R_UPSERT && v < 46.0)) {
        answer_sf_error(a, 404, "NOT_FOUND", "The requested resource does not exist");
        goto done;
    }
    if (!token_valid(f, conn)) {
        answer_sf_error(a, 401, "INVALID_SESSION_ID", "Session expired or invalid");
        goto done;
    }
    if (f->faults.invalid_session_next > 0) {
        f->faults.invalid_session_next--;
        answer_sf_error(a, 401, "INVALID_SESSION_ID", "Session expired or invalid");
        goto done;
    }
    if (f->api_usage >= f->faults.daily_limit) {
        answer_sf_error(a, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
        goto done;
    }
    f->api_usage++;
    f->data_requests++;
    if ((kind == R_UPSERT && strcmp(method, "PATCH") != 0) ||
        (kind != R_UPSERT && strcmp(method, "GET") != 0)) {
        answer_sf_error(a, 405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed for this resource");
        goto done;
    }
    delay = f->faults.delay_ms;
    if (delay > 0) {
        pthread_mutex_unlock(&f->lock);
        sleep_ms(f, delay);
        pthread_mutex_lock(&f->lock);
    }
    double draw = (double)(rng_next(&f->rng) >> 11) * (1.0 / 9007199254740992.0);
    if (f->faults.fail_next > 0 || draw < f->faults.fail_rate) {
        if (f->faults.fail_next > 0)
            f->faults.fail_next--;
        int st = (int)f->faults.fail_status;
        answer_sf_error(a, (unsigned)st, st == 503 ? "SERVER_UNAVAILABLE" : "UNKNOWN_EXCEPTION",
                        "injected fault");
        goto done;
    }
    if (f->faults.html502_next > 0) {
        f->faults.html502_next--;
        util_free(a->body);
        a->body = util_strdup(HTML_502);
        a->status = 502;
        a->type = "text/html";
        goto done;
    }
    if (kind == R_UPSERT) {
        serve_upsert(f, o, field, body, a);
    } else if (kind == R_QUERY) {
        serve_query(f, version, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "q"), a);
    } else {
        cJSON *lim = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(lim, "DailyApiRequests");
        cJSON_AddNumberToObject(d, "Max", (double)f->faults.daily_limit);
        cJSON_AddNumberToObject(d, "Remaining", (double)(f->faults.daily_limit - f->api_usage));
        answer_json(a, 200, lim);
    }
    if (f->faults.truncate_next > 0 && a->status >= 200 && a->status < 300 && a->body != NULL) {
        f->faults.truncate_next--;
        a->body[strlen(a->body) / 2] = '\0';
    }
done:
    a->usage = f->api_usage;
    a->limit = f->faults.daily_limit;
    count_route(f, route, a->status);
    pthread_mutex_unlock(&f->lock);
}

/* ---- admin routes ------------------------------------------------------------------------- */

/* The fault settings as JSON (f->lock held). */
static cJSON *faults_json(const struct fake *f)
{
    const struct faults *x = &f->faults;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "fail-next", (double)x->fail_next);
    cJSON_AddNumberToObject(o, "fail-status", (double)x->fail_status);
    cJSON_AddNumberToObject(o, "html502-next", (double)x->html502_next);
    cJSON_AddNumberToObject(o, "truncate-next", (double)x->truncate_next);
    cJSON_AddNumberToObject(o, "invalid-session-next", (double)x->invalid_session_next);
    cJSON_AddNumberToObject(o, "lock-next", (double)x->lock_next);
    cJSON_AddNumberToObject(o, "token-fail-next", (double)x->token_fail_next);
    cJSON_AddNumberToObject(o, "delay-ms", (double)x->delay_ms);
    cJSON_AddNumberToObject(o, "fail-rate", x->fail_rate);
    cJSON_AddNumberToObject(o, "seed", (double)x->seed);
    cJSON_AddNumberToObject(o, "token-lifetime-s", (double)x->token_lifetime_s);
    cJSON_AddNumberToObject(o, "daily-limit", (double)x->daily_limit);
    cJSON_AddNumberToObject(o, "api-usage", (double)f->api_usage);
    return o;
}

/* Apply a POST /_faults body (f->lock held). Returns NULL, or why it was refused (nothing
 * changed then). */
static const char *faults_apply(struct fake *f, const cJSON *in, char *buf, size_t len)
{
    struct {
        const char *name;
        int64_t *field;
        int64_t min, max;
    } ints[] = {
        {"fail-next", &f->faults.fail_next, 0, 1000000},
        {"fail-status", &f->faults.fail_status, 500, 599},
        {"html502-next", &f->faults.html502_next, 0, 1000000},
        {"truncate-next", &f->faults.truncate_next, 0, 1000000},
        {"invalid-session-next", &f->faults.invalid_session_next, 0, 1000000},
        {"lock-next", &f->faults.lock_next, 0, 1000000},
        {"token-fail-next", &f->faults.token_fail_next, 0, 1000000},
        {"delay-ms", &f->faults.delay_ms, 0, 600000},
        {"seed", &f->faults.seed, 0, INT64_C(9007199254740991)},
        {"token-lifetime-s", &f->faults.token_lifetime_s, 0, 86400 * 30},
        {"daily-limit", &f->faults.daily_limit, 0, INT64_C(1000000000)},
        {"api-usage", &f->api_usage, 0, INT64_C(1000000000)},
    };
    const cJSON *v;
    if (!cJSON_IsObject(in))
        return "body must be a JSON object";
    /* Check everything first, then apply. */
    cJSON_ArrayForEach(v, in)
    {
        int known = 0;
        for (size_t i = 0; i < UTIL_ARRAY_LEN(ints); i++) {
            if (strcmp(v->string, ints[i].name) != 0)
                continue;
            known = 1;
            if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble ||
                v->valuedouble < (double)ints[i].min || v->valuedouble > (double)ints[i].max) {
                util_fmt(buf, len, "%s: expected an integer from %lld to %lld", v->string,
                         (long long)ints[i].min, (long long)ints[i].max);
                return buf;
            }
        }
        if (strcmp(v->string, "fail-rate") == 0) {
            known = 1;
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1)
                return "fail-rate: expected a number from 0 to 1";
        }
        if (strcmp(v->string, "expire-tokens") == 0) {
            known = 1;
            if (!cJSON_IsBool(v))
                return "expire-tokens: expected a boolean";
        }
        if (!known) {
            util_fmt(buf, len, "%s: unknown setting", v->string);
            return buf;
        }
    }
    cJSON_ArrayForEach(v, in)
    {
        for (size_t i = 0; i < UTIL_ARRAY_LEN(ints); i++)
            if (strcmp(v->string, ints[i].name) == 0)
                *ints[i].field = (int64_t)v->valuedouble;
        if (strcmp(v->string, "fail-rate") == 0)
            f->faults.fail_rate = v->valuedouble;
        if (strcmp(v->string, "seed") == 0)
            f->rng = (uint64_t)f->faults.seed;
        if (strcmp(v->string, "expire-tokens") == 0 && cJSON_IsTrue(v))
            sqlite3_exec(f->db, "UPDATE tokens SET expires_ms = 1", NULL, NULL, NULL);
    }
    return NULL;
}

/* Count the objects of type o (f->lock held). */
static int64_t object_count(struct fake *f, enum sobj o)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(f->db, "SELECT COUNT(*) FROM objects WHERE type = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, obj_name[o], -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

/* GET /_state (f->lock held). */
static cJSON *state_json(struct fake *f)
{
    cJSON *s = cJSON_CreateObject(), *objs = cJSON_AddObjectToObject(s, "objects");
    for (int o = 0; o < OBJ_COUNT; o++)
        cJSON_AddNumberToObject(objs, obj_name[o], (double)object_count(f, (enum sobj)o));
    cJSON *api = cJSON_AddObjectToObject(s, "api");
    cJSON_AddNumberToObject(api, "usage", (double)f->api_usage);
    cJSON_AddNumberToObject(api, "limit", (double)f->faults.daily_limit);
    cJSON_AddNumberToObject(s, "token_requests", (double)f->token_requests);
    cJSON_AddNumberToObject(s, "tokens_issued", (double)f->tokens_issued);
    cJSON_AddNumberToObject(s, "data_requests", (double)f->data_requests);
    cJSON *recs = cJSON_AddObjectToObject(s, "records");
    cJSON_AddNumberToObject(recs, "created", (double)f->created);
    cJSON_AddNumberToObject(recs, "updated", (double)f->updated);
    cJSON_AddNumberToObject(recs, "errors", (double)f->record_errors);
    cJSON *routes = cJSON_AddObjectToObject(s, "requests");
    for (size_t i = 0; i < f->n_routes; i++) {
        cJSON *r = cJSON_AddObjectToObject(routes, f->routes[i].route);
        for (int st = 0; st < 600; st++) {
            char num[8];
            if (f->routes[i].by_status[st] == 0)
                continue;
            util_fmt(num, sizeof(num), "%d", st);
            cJSON_AddNumberToObject(r, num, (double)f->routes[i].by_status[st]);
        }
    }
    cJSON_AddItemToObject(s, "faults", faults_json(f));
    return s;
}

/* GET /_objects/{Type}[/{ext}] (f->lock held). */
static void serve_objects(struct fake *f, const char *path, struct answer *a)
{
    enum sobj o;
    const char *slash = strchr(path, '/');
    size_t tlen = slash != NULL ? (size_t)(slash - path) : strlen(path);
    if (tlen == 7 && strncmp(path, "Contact", 7) == 0)
        o = OBJ_CONTACT;
    else if (tlen == 4 && strncmp(path, "Task", 4) == 0)
        o = OBJ_TASK;
    else {
        answer_sf_error(a, 404, "NOT_FOUND", "no such sObject type");
        return;
    }
    sqlite3_stmt *st = NULL;
    const char *sql = slash != NULL ? "SELECT id, ext, fields, writes, created_at, updated_at "
                                      "FROM objects WHERE type=?1 AND ext=?2"
                                    : "SELECT id, ext, fields, writes, created_at, updated_at "
                                      "FROM objects WHERE type=?1 ORDER BY rowid";
    cJSON *list = cJSON_CreateArray();
    if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK) {
        cJSON_Delete(list);
        answer_sf_error(a, 500, "UNKNOWN_EXCEPTION", "storage error");
        return;
    }
    sqlite3_bind_text(st, 1, obj_name[o], -1, SQLITE_STATIC);
    if (slash != NULL)
        sqlite3_bind_text(st, 2, slash + 1, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *r = cJSON_Parse((const char *)sqlite3_column_text(st, 2));
        if (r == NULL)
            continue;
        cJSON_AddStringToObject(r, "Id", (const char *)sqlite3_column_text(st, 0));
        cJSON_DeleteItemFromObjectCaseSensitive(r, f->cfg.ext_field[o]);
        cJSON_AddStringToObject(r, f->cfg.ext_field[o], (const char *)sqlite3_column_text(st, 1));
        cJSON_AddNumberToObject(r, "_writes", sqlite3_column_int(st, 3));
        cJSON_AddStringToObject(r, "CreatedDate", (const char *)sqlite3_column_text(st, 4));
        cJSON_AddStringToObject(r, "LastModifiedDate", (const char *)sqlite3_column_text(st, 5));
        cJSON_AddItemToArray(list, r);
    }
    sqlite3_finalize(st);
    if (slash != NULL) {
        cJSON *one = cJSON_DetachItemFromArray(list, 0);
        cJSON_Delete(list);
        if (one == NULL)
            answer_sf_error(a, 404, "NOT_FOUND", "no such record");
        else
            answer_json(a, 200, one);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "count", cJSON_GetArraySize(list));
    cJSON_AddItemToObject(out, "records", list);
    answer_json(a, 200, out);
}

/* Admin routes; 0 when url is not one. */
static int serve_admin(struct fake *f, const char *url, const char *method, const char *body,
                       struct answer *a)
{
    char buf[200];
    if (strncmp(url, "/_", 2) != 0)
        return 0;
    pthread_mutex_lock(&f->lock);
    if (strcmp(url, "/_state") == 0 && strcmp(method, "GET") == 0) {
        answer_json(a, 200, state_json(f));
    } else if (strncmp(url, "/_objects/", 10) == 0 && strcmp(method, "GET") == 0) {
        serve_objects(f, url + 10, a);
    } else if (strcmp(url, "/_faults") == 0 && strcmp(method, "GET") == 0) {
        answer_json(a, 200, faults_json(f));
    } else if (strcmp(url, "/_faults") == 0 && strcmp(method, "POST") == 0) {
        cJSON *in = cJSON_Parse(body);
        const char *why = faults_apply(f, in, buf, sizeof(buf));
        cJSON_Delete(in);
        if (why != NULL)
            answer_oauth_error(a, 400, "bad_request", why);
        else
            answer_json(a, 200, faults_json(f));
    } else if (strcmp(url, "/_reset") == 0 && strcmp(method, "POST") == 0) {
        sqlite3_exec(f->db, "DELETE FROM objects", NULL, NULL, NULL);
        memset(f->seq, 0, sizeof(f->seq));
        memset(f->routes, 0, sizeof(f->routes));
        f->n_routes = 0;
        f->api_usage = f->token_requests = f->tokens_issued = f->data_requests = 0;
        f->created = f->updated = f->record_errors = 0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddTrueToObject(o, "reset");
        answer_json(a, 200, o);
    } else {
        answer_oauth_error(a, 404, "not_found", "no such admin route or method");
    }
    pthread_mutex_unlock(&f->lock);
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
    struct answer a = {.status = 0};
    (void)version;
    up = serve_collect(req_cls, upload_data, upload_data_size, FAKE_MAX_BODY, &more);
    if (up == NULL)
        return more;
    const char *body = up->body.data != NULL ? up->body.data : "";
    if (up->too_big) {
        answer_sf_error(&a, 413, "REQUEST_ENTITY_TOO_LARGE", "request body too large");
    } else if (serve_admin(f, url, method, body, &a)) {
        log_debug(FAKE_LOG, "admin %s %s: %u", method, url, a.status);
    } else if (strcmp(url, "/services/oauth2/token") == 0 && strcmp(method, "POST") == 0) {
        serve_token(f, body, &a);
        pthread_mutex_lock(&f->lock);
        count_route(f, "token", a.status);
        pthread_mutex_unlock(&f->lock);
        log_debug(FAKE_LOG, "POST token: %u", a.status);
    } else if (strncmp(url, "/services/data/", 15) == 0) {
        serve_data(f, conn, url, method, body, &a);
        log_debug(FAKE_LOG, "%s %s (%zu bytes): %u", method, url, up->body.len, a.status);
    } else {
        answer_sf_error(&a, 404, "NOT_FOUND", "The requested resource does not exist");
    }
    return send_answer(conn, &a);
}

/* ---- start-up ----------------------------------------------------------------------------- */

/* Open the database and load the id sequences. Returns ODSYNC_OK or ODSYNC_IO (printed). */
static int db_open(struct fake *f, const char *path)
{
    char *err = NULL;
    sqlite3_stmt *st = NULL;
    int rc = ODSYNC_IO;
    if (sqlite3_open_v2(path, &f->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(f->db, schema_sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "fake_salesforce: %s: %s\n", path,
                err != NULL ? err : (f->db != NULL ? sqlite3_errmsg(f->db) : "out of memory"));
        goto cleanup;
    }
    sqlite3_busy_timeout(f->db, 5000);
    if (sqlite3_prepare_v2(f->db, "SELECT type, COUNT(*) FROM objects GROUP BY type", -1, &st,
                           NULL) != SQLITE_OK)
        goto cleanup;
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int o = 0; o < OBJ_COUNT; o++)
            if (strcmp((const char *)sqlite3_column_text(st, 0), obj_name[o]) == 0)
                f->seq[o] = sqlite3_column_int64(st, 1);
    rc = ODSYNC_OK;
cleanup:
    sqlite3_finalize(st);
    sqlite3_free(err);
    return rc;
}

/* Load a PEM public key (or certificate's key) from path into f->cfg.jwt_key. */
static int load_public_key(struct fake *f, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "fake_salesforce: --jwt-public-key %s: %s\n", path, strerror(errno));
        return ODSYNC_IO;
    }
    f->cfg.jwt_key = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    ERR_clear_error();
    if (f->cfg.jwt_key == NULL) {
        fprintf(stderr, "fake_salesforce: --jwt-public-key %s: not a PEM public key\n", path);
        return ODSYNC_IO;
    }
    return ODSYNC_OK;
}

static void usage(FILE *out)
{
    fputs("usage: fake_salesforce --client-id ID [options]\n"
          "\n"
          "A fake Salesforce REST API (OAuth token endpoint, sObject Collections upsert of\n"
          "Contact and Task, SOQL lookups, API limits, faults). See contrib/fakes/README.md.\n"
          "\n"
          "  --client-id ID             consumer key every grant must name (required)\n"
          "  --client-secret S          client_credentials (and optional refresh) secret\n"
          "  --username U               the JWT's sub\n"
          "  --refresh-token R          the one valid refresh token\n"
          "  --jwt-public-key FILE      PEM public key that JWT signatures are verified with\n"
          "  --jwt-audience A           the JWT's aud (default https://login.salesforce.com)\n"
          "  --token-lifetime S         seconds a token lives, 0 = forever (default 7200)\n"
          "  --daily-limit N            API requests allowed until reset (default 15000)\n"
          "  --contact-external-id F    External ID field of Contact (default Odsync_Key__c)\n"
          "  --task-external-id F       External ID field of Task (default Odsync_Key__c)\n"
          "  --fail-rate P              fraction 0..1 of data requests answered 500\n"
          "  --delay-ms N               wait N ms before each data request\n"
          "  --seed N                   PRNG seed (tokens, fail-rate; default 1)\n"
          "  --listen A.B.C.D:PORT      default 127.0.0.1:0 (a free port)\n"
          "  --db FILE                  SQLite file (default: in memory)\n"
          "  --verbose                  one stderr line per request (never the body)\n"
          "  --help                     this text\n",
          out);
}

struct options {
    const char *listen_at, *db, *jwt_key_path;
    int verbose, help;
};

/* Parse argv ("--name VALUE" or "--name=VALUE"). Returns ODSYNC_OK or ODSYNC_PARSE (printed). */
static int parse_args(int argc, char **argv, struct options *o, struct fake *f)
{
    for (int i = 1; i < argc; i++) {
        char name[40];
        const char *arg = argv[i], *eq = strchr(arg, '='), *value = NULL;
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || nlen >= sizeof(name) || nlen < 3) {
            fprintf(stderr, "fake_salesforce: unknown argument \"%s\" (see --help)\n", arg);
            return ODSYNC_PARSE;
        }
        memcpy(name, arg + 2, nlen - 2);
        name[nlen - 2] = '\0';
        if (strcmp(name, "help") == 0 || strcmp(name, "verbose") == 0) {
            if (strcmp(name, "help") == 0)
                o->help = 1;
            else
                o->verbose = 1;
            continue;
        }
        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            fprintf(stderr, "fake_salesforce: --%s needs a value\n", name);
            return ODSYNC_PARSE;
        }
        int bad = 0;
        if (strcmp(name, "client-id") == 0)
            f->cfg.client_id = value;
        else if (strcmp(name, "client-secret") == 0)
            f->cfg.client_secret = value;
        else if (strcmp(name, "username") == 0)
            f->cfg.username = value;
        else if (strcmp(name, "refresh-token") == 0)
            f->cfg.refresh_token = value;
        else if (strcmp(name, "jwt-public-key") == 0)
            o->jwt_key_path = value;
        else if (strcmp(name, "jwt-audience") == 0)
            f->cfg.audience = value;
        else if (strcmp(name, "contact-external-id") == 0)
            f->cfg.ext_field[OBJ_CONTACT] = value;
        else if (strcmp(name, "task-external-id") == 0)
            f->cfg.ext_field[OBJ_TASK] = value;
        else if (strcmp(name, "listen") == 0)
            o->listen_at = value;
        else if (strcmp(name, "db") == 0)
            o->db = value;
        else if (strcmp(name, "token-lifetime") == 0)
            bad = util_parse_i64(value, 0, 86400 * 30, &f->faults.token_lifetime_s) != ODSYNC_OK;
        else if (strcmp(name, "daily-limit") == 0)
            bad =
                util_parse_i64(value, 0, INT64_C(1000000000), &f->faults.daily_limit) != ODSYNC_OK;
        else if (strcmp(name, "delay-ms") == 0)
            bad = util_parse_i64(value, 0, 600000, &f->faults.delay_ms) != ODSYNC_OK;
        else if (strcmp(name, "seed") == 0)
            bad = util_parse_i64(value, 0, INT64_C(9007199254740991), &f->faults.seed) != ODSYNC_OK;
        else if (strcmp(name, "fail-rate") == 0) {
            char *end = NULL;
            double d = strtod(value, &end);
            bad = end == value || *end != '\0' || !(d >= 0 && d <= 1);
            f->faults.fail_rate = d;
        } else {
            fprintf(stderr, "fake_salesforce: unknown flag --%s (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (bad) {
            fprintf(stderr, "fake_salesforce: --%s: bad value \"%s\"\n", name, value);
            return ODSYNC_PARSE;
        }
    }
    return ODSYNC_OK;
}

int main(int argc, char **argv)
{
    static struct fake f;
    struct options o = {.listen_at = "127.0.0.1:0", .db = ":memory:"};
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in addr;
    char host[INET_ADDRSTRLEN];
    sigset_t sigs;
    int sig, rc = 2, mutex_ok = 0;

    f.cfg.audience = "https://login.salesforce.com";
    f.cfg.ext_field[OBJ_CONTACT] = "Odsync_Key__c";
    f.cfg.ext_field[OBJ_TASK] = "Odsync_Key__c";
    f.faults = (struct faults){
        .fail_status = 500, .seed = 1, .token_lifetime_s = 7200, .daily_limit = 15000};
    if (parse_args(argc, argv, &o, &f) != ODSYNC_OK)
        goto cleanup;
    if (o.help) {
        usage(stdout);
        rc = 0;
        goto cleanup;
    }
    if (f.cfg.client_id == NULL || f.cfg.client_id[0] == '\0') {
        fprintf(stderr, "fake_salesforce: --client-id is required (see --help)\n");
        goto cleanup;
    }
    for (int i = 0; i < OBJ_COUNT; i++)
        if (f.cfg.ext_field[i][0] == '\0') {
            fprintf(stderr, "fake_salesforce: empty External ID field name\n");
            goto cleanup;
        }
    if (serve_parse_listen(o.listen_at, &addr) != ODSYNC_OK) {
        fprintf(stderr, "fake_salesforce: --listen: expected A.B.C.D:PORT, got \"%s\"\n",
                o.listen_at);
        goto cleanup;
    }
    rc = 1;
    log_setup(stderr, o.verbose ? ODSYNC_LOG_DEBUG : ODSYNC_LOG_INFO, LOG_TEXT);
    if (pthread_mutex_init(&f.lock, NULL) != 0)
        goto cleanup;
    mutex_ok = 1;
    f.rng = (uint64_t)f.faults.seed;
    if ((f.cfg.client_secret != NULL && log_add_secret(f.cfg.client_secret) != ODSYNC_OK) ||
        (f.cfg.refresh_token != NULL && log_add_secret(f.cfg.refresh_token) != ODSYNC_OK))
        goto cleanup;
    if (o.jwt_key_path != NULL && load_public_key(&f, o.jwt_key_path) != ODSYNC_OK)
        goto cleanup;
    if (db_open(&f, o.db) != ODSYNC_OK)
        goto cleanup;

    serve_block_signals(&sigs);

    d = serve_start(&addr, on_request, &f, NULL);
    if (d == NULL) {
        fprintf(stderr, "fake_salesforce: cannot listen on %s\n", o.listen_at);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info != NULL ? (unsigned)info->port : 0u;
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    pthread_mutex_lock(&f.lock);
    util_fmt(f.base_url, sizeof(f.base_url), "http://%s:%u", host, port);
    pthread_mutex_unlock(&f.lock);
    printf("listening on %s:%u\n", host, port);
    fflush(stdout);
    log_info(FAKE_LOG, "listening on %s:%u, objects in %s, JWT signatures %s", host, port, o.db,
             f.cfg.jwt_key != NULL ? "verified" : "not verified");

    while (sigwait(&sigs, &sig) != 0)
        ;
    log_info(FAKE_LOG, "signal %d: stopping", sig);
    rc = 0;
cleanup:
    atomic_store(&f.stopping, 1);
    if (d != NULL)
        MHD_stop_daemon(d);
    sqlite3_close(f.db);
    EVP_PKEY_free(f.cfg.jwt_key);
    if (mutex_ok)
        pthread_mutex_destroy(&f.lock);
    log_shutdown();
    return rc;
}
