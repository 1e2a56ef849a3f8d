/*
 * fake_hubspot: a faithful fake of HubSpot's CRM v3 API for the hubspot connector's tests
 * (contrib/fakes/README.md documents flags, routes, faults and the state JSON; this comment
 * is the short version; /work/shared/reference/crm-and-messaging-apis.md section 1 is what it
 * copies).
 *
 *   fake_hubspot --token T [--listen 127.0.0.1:PORT] [--db FILE] [--ten-secondly-max N]
 *                [--interval-ms N] [--daily-max N] [--batch-max N] [--verbose]
 *
 * Prints "listening on 127.0.0.1:PORT" on stdout once ready and nothing else on stdout.
 * SIGTERM or SIGINT stops it cleanly (exit 0). Bad flags exit 2, start-up failures exit 1.
 *
 * Data routes (Bearer T, else 401 with HubSpot's body):
 *   POST /crm/v3/objects/contacts/batch/upsert   by idProperty (unique), 200 or 207
 *   POST /crm/v3/objects/contacts/batch/read     by id or idProperty, 200 or 207
 *   POST /crm/v3/objects/{contacts|tasks}/batch/create   201 or 207
 *   POST /crm/v3/objects/{contacts|tasks}/batch/update   200 or 207
 *   GET  /crm/v3/objects/{contacts|tasks}/{id}
 *   GET  /crm/v3/properties/{contacts|tasks}/{name}      200 or 404
 *   POST /crm/v3/properties/{contacts|tasks}             201, 409 or 400
 * Every data answer carries the X-HubSpot-RateLimit-* headers. Over the rolling window or the
 * daily count: 429 with HubSpot's body and policyName, no Retry-After (unless a fault asks).
 * Admin routes (no auth, never faulted, limited or counted): GET /_state, GET /_objects/{type}
 * [/{id}], GET|POST|DELETE /_faults, POST /_reset.
 *
 * State lives in SQLite (--db FILE, default in memory): objects (each with its property values
 * as one JSON text, so a write is one row), the values of unique properties (the upsert and
 * conflict lookups), the associations and the property definitions (standard ones seeded,
 * custom ones created through the properties API; read through an in-process cache).
 * Counters, limits and faults live in the process. Each batch request is one transaction and
 * its answer is written as text (byte for byte what cJSON would print).
 *
 * Threads: libmicrohttpd runs one thread per connection; one mutex (struct fake.lock) guards
 * SQLite, counters, limits and faults. Request bodies (test patient data) are never logged.
 */
#include <arpa/inet.h>
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
#include <sqlite3.h>

#include "log.h"
#include "serve.h"
#include "util.h"

#define FAKE_LOG      "fake_hubspot"
#define FAKE_MAX_BODY ((size_t)16 * 1024 * 1024)
#define WINDOW_MAX    100000 /* most requests the rolling window can hold */
#define STMT_CACHE    64
#define FAKE_HTML_502                                                                              \
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "      \
    "Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"

/* Routes counted in the state (data routes only). */
enum route {
    R_UPSERT,
    R_READ,
    R_CREATE,
    R_UPDATE,
    R_GET_OBJECT,
    R_GET_PROPERTY,
    R_CREATE_PROPERTY,
    R_OTHER,
    R_COUNT
};

static const char *const route_names[R_COUNT] = {
    [R_UPSERT] = "POST /crm/v3/objects/{type}/batch/upsert",
    [R_READ] = "POST /crm/v3/objects/{type}/batch/read",
    [R_CREATE] = "POST /crm/v3/objects/{type}/batch/create",
    [R_UPDATE] = "POST /crm/v3/objects/{type}/batch/update",
    [R_GET_OBJECT] = "GET /crm/v3/objects/{type}/{id}",
    [R_GET_PROPERTY] = "GET /crm/v3/properties/{type}/{name}",
    [R_CREATE_PROPERTY] = "POST /crm/v3/properties/{type}",
    [R_OTHER] = "other",
};

/* Fault and limit settings (POST /_faults). */
struct faults {
    int64_t ten_secondly_max;      /* requests per rolling window */
    int64_t interval_ms;           /* the window */
    int64_t daily_max;             /* requests per "day" (until POST /_reset or daily_used) */
    int64_t batch_max;             /* inputs per batch */
    int64_t fail_next;             /* the next N data requests answer fail_status */
    int64_t fail_status;           /* 500, 502 (an HTML page), 503, 504 */
    int64_t truncate_next;         /* the next N 2xx answers are cut in half (the work is done) */
    int64_t reset_next;            /* the next N data requests get their connection reset */
    int64_t force_429;             /* the next N data requests answer 429 ... */
    char force_policy[32];         /* ... with this policyName */
    int64_t retry_after;           /* Retry-After seconds on 429s; -1 = none (HubSpot's way) */
    int64_t delay_ms;              /* every data request waits this long */
    int64_t expire_after_requests; /* the token expires after N more data requests (0 off) */
    int64_t expire_at_ms;          /* ... or at this wall time (0 off) */
    int token_expired;
    char missing_scope[64]; /* non-empty: every write answers 403 naming this scope */
};

struct stats {
    int64_t requests;               /* data requests (every non-admin request) */
    int64_t by_route[R_COUNT][600]; /* answers per route and status */
    int64_t resets, truncated, creates, updates;
};

/* One property definition. */
struct propdef {
    char type[24];
    char field_type[24];
    char group[64];
    char label[128];
    int unique;
    int custom;
};

/* A cached property definition: object type and name owned (util_free). */
struct propent {
    char *object_type;
    char *name;
    struct propdef d;
};

/* One value written to an object: name and value borrowed (from the request body or the
 * parsed stored values), valid while that tree lives; value NULL means the number in num. */
struct pval {
    const char *name;
    const char *value;
    char num[40];
    int old; /* 1: a value the object held before this write */
};

struct fake {
    pthread_mutex_t lock;
    sqlite3 *db;
    const char *sql[STMT_CACHE]; /* statement cache keyed by the SQL literal's address */
    sqlite3_stmt *st[STMT_CACHE];
    struct propent *props; /* owned: every property definition, sorted by (type, name) */
    size_t n_props;
    const struct propent **uniq_props; /* owned array: the unique ones among props */
    size_t n_uniq;
    int props_ok;    /* 0: reload props from SQLite before the next lookup */
    struct pval *pv; /* owned scratch: the values of the object being written */
    size_t pv_cap;
    struct sbuf text; /* owned scratch: that object's stored values text */
    int64_t iso_sec;  /* now_iso's cache: the second iso_base spells */
    char iso_base[24];
    int64_t next_id;
    struct faults faults;
    struct faults flags; /* the settings from the command line, restored by DELETE /_faults */
    struct stats stats;
    int64_t *window; /* ring of accepted request times (monotonic ms) */
    size_t win_head, win_n;
    int64_t daily_used;
    int64_t correlation;
    char *bearer;
    atomic_int stopping;
};

/* An answer being built. status 0 means: reset the connection. */
struct answer {
    unsigned status;
    char *body;       /* owned (util_free) */
    const char *type; /* static content type */
    int64_t retry_after;
    int limits; /* 1: add the rate-limit headers below */
    int64_t rl_max, rl_remaining, rl_interval, daily_max, daily_remaining;
};

static const char schema_sql[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = OFF;"
    /* props: the property values as JSON object members, sorted by name, "" when none */
    "CREATE TABLE IF NOT EXISTS objects (id INTEGER PRIMARY KEY, type TEXT NOT NULL,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, writes INTEGER NOT NULL,"
    " props TEXT NOT NULL DEFAULT '');"
    /* counts and listings by type read this, not the (wide) rows */
    "CREATE INDEX IF NOT EXISTS objects_by_type ON objects (type);"
    /* the values of unique properties ("" never): at most one object holds each */
    "CREATE TABLE IF NOT EXISTS uniq (type TEXT NOT NULL, name TEXT NOT NULL,"
    " value TEXT NOT NULL, object_id INTEGER NOT NULL, PRIMARY KEY (type, name, value))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS associations (from_id INTEGER NOT NULL, to_id INTEGER NOT NULL,"
    " type_id INTEGER NOT NULL, category TEXT NOT NULL, PRIMARY KEY (from_id, to_id, type_id));"
    "CREATE TABLE IF NOT EXISTS properties (object_type TEXT NOT NULL, name TEXT NOT NULL,"
    " label TEXT NOT NULL, type TEXT NOT NULL, field_type TEXT NOT NULL, group_name TEXT NOT NULL,"
    " unique_value INTEGER NOT NULL, custom INTEGER NOT NULL, PRIMARY KEY (object_type, name));";

/* Standard properties every portal has (object, name, type, fieldType, group, unique). */
static const char *const standard_props[][6] = {
    {"contacts", "email", "string", "text", "contactinformation", "1"},
    {"contacts", "firstname", "string", "text", "contactinformation", "0"},
    {"contacts", "lastname", "string", "text", "contactinformation", "0"},
    {"contacts", "phone", "string", "phonenumber", "contactinformation", "0"},
    {"contacts", "mobilephone", "string", "phonenumber", "contactinformation", "0"},
    {"contacts", "lifecyclestage", "enumeration", "radio", "contactinformation", "0"},
    {"contacts", "hubspot_owner_id", "enumeration", "select", "contactinformation", "0"},
    {"tasks", "hs_timestamp", "datetime", "date", "task_information", "0"},
    {"tasks", "hs_task_subject", "string", "text", "task_information", "0"},
    {"tasks", "hs_task_body", "string", "textarea", "task_information", "0"},
    {"tasks", "hs_task_status", "enumeration", "select", "task_information", "0"},
    {"tasks", "hs_task_priority", "enumeration", "select", "task_information", "0"},
    {"tasks", "hs_task_type", "enumeration", "select", "task_information", "0"},
    {"tasks", "hubspot_owner_id", "enumeration", "select", "task_information", "0"},
};

/* Property groups that exist per object type. */
static const char *const known_groups[][2] = {
    {"contacts", "contactinformation"},
    {"contacts", "odsync"},
    {"tasks", "task_information"},
    {"tasks", "odsync"},
};

/* Valid type / fieldType pairs for property creation. */
static const char *const field_types[][2] = {
    {"string", "text"},
    {"string", "textarea"},
    {"string", "phonenumber"},
    {"number", "number"},
    {"date", "date"},
    {"datetime", "date"},
    {"bool", "booleancheckbox"},
    {"enumeration", "select"},
    {"enumeration", "radio"},
    {"enumeration", "checkbox"},
    {"enumeration", "booleancheckbox"},
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* The wall time as HubSpot writes it, "YYYY-MM-DDTHH:MM:SS.mmmZ", into buf (len >= 25). The
 * seconds part is formatted once per second (f->iso_*). Needs f->lock. */
static void now_iso(struct fake *f, char *buf, size_t len)
{
    int64_t ms = util_now_ms();
    int milli = (int)(ms % 1000);
    if (f->iso_base[0] == '\0' || ms / 1000 != f->iso_sec) {
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(f->iso_base, sizeof(f->iso_base), "%Y-%m-%dT%H:%M:%S", &tm);
        f->iso_sec = ms / 1000;
    }
    util_fmt(buf, len, "%s.%03dZ", f->iso_base, milli);
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

/* A correlation id shaped like HubSpot's (a UUID). Needs f->lock. */
static void correlation_id(struct fake *f, char *buf, size_t len)
{
    util_fmt(buf, len, "6a1f0c52-7f8e-4c3b-9d47-%012llx", (unsigned long long)++f->correlation);
}

/* Set a JSON answer; json is taken. NULL json leaves a NOMEM answer. */
static void answer_json(struct answer *a, unsigned status, cJSON *json)
{
    a->status = status;
    a->type = "application/json;charset=utf-8";
    util_free(a->body);
    a->body = NULL;
    if (json != NULL) {
        char *text = cJSON_PrintUnformatted(json);
        a->body = text != NULL ? util_strdup(text) : NULL;
        cJSON_free(text);
    }
    cJSON_Delete(json);
}

/* Set a JSON answer from text built in b (taken: b is reset). A failed b leaves a NOMEM
 * answer, as answer_json does. */
static void answer_text(struct answer *a, unsigned status, struct sbuf *b)
{
    a->status = status;
    a->type = "application/json;charset=utf-8";
    util_free(a->body);
    a->body = sbuf_take(b);
}

/* Append s (NUL-terminated, borrowed) to b as a JSON string, quoted and escaped exactly as
 * cJSON prints one: \" \\ \b \f \n \r \t, other bytes below 0x20 as \u00xx, the rest as they
 * are. Hand-built answers are then byte for byte what printing a cJSON tree gave. Written
 * through a small buffer: one append per 256 bytes, not per piece. */
static void json_str(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    char buf[256 + 8];
    size_t n = 0;
    buf[n++] = '"';
    for (; *p != '\0'; p++) {
        if (n > 256) {
            sbuf_append(b, buf, n);
            n = 0;
        }
        if (*p >= 0x20 && *p != '"' && *p != '\\') {
            buf[n++] = (char)*p;
            continue;
        }
        buf[n++] = '\\';
        switch (*p) {
        case '"':
        case '\\':
            buf[n++] = (char)*p;
            break;
        case '\b':
            buf[n++] = 'b';
            break;
        case '\f':
            buf[n++] = 'f';
            break;
        case '\n':
            buf[n++] = 'n';
            break;
        case '\r':
            buf[n++] = 'r';
            break;
        case '\t':
            buf[n++] = 't';
            break;
        default:
            buf[n++] = 'u';
            buf[n++] = '0';
            buf[n++] = '0';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
            break;
        }
    }
    buf[n++] = '"';
    sbuf_append(b, buf, n);
}

/* Empty b for reuse, keeping its memory (a failed b is freed and starts over). */
static void sbuf_reset(struct sbuf *b)
{
    if (b->failed)
        sbuf_free(b);
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* A HubSpot error object {status:"error", message, correlationId, category[, errors]
 * [, context]}; errors and context are taken (may be NULL). Needs f->lock. */
static cJSON *hs_error(struct fake *f, const char *category, const char *message, cJSON *errors,
                       cJSON *context)
{
    char cid[64];
    cJSON *e = cJSON_CreateObject();
    correlation_id(f, cid, sizeof(cid));
    if (e == NULL || !cJSON_AddStringToObject(e, "status", "error") ||
        !cJSON_AddStringToObject(e, "message", message) ||
        !cJSON_AddStringToObject(e, "correlationId", cid) ||
        !cJSON_AddStringToObject(e, "category", category)) {
        cJSON_Delete(e);
        cJSON_Delete(errors);
        cJSON_Delete(context);
        return NULL;
    }
    if (errors != NULL)
        cJSON_AddItemToObject(e, "errors", errors);
    if (context != NULL)
        cJSON_AddItemToObject(e, "context", context);
    return e;
}

/* Answer status with a HubSpot error body. Needs f->lock. */
static void answer_error(struct fake *f, struct answer *a, unsigned status, const char *category,
                         const char *message)
{
    answer_json(a, status, hs_error(f, category, message, NULL, NULL));
}

/* {"message", "code", "context": {"propertyName": [prop]}} (prop may be NULL). */
static cJSON *sub_error(const char *message, const char *code, const char *prop)
{
    cJSON *e = cJSON_CreateObject();
    if (e == NULL || !cJSON_AddStringToObject(e, "message", message) ||
        !cJSON_AddStringToObject(e, "code", code))
        goto fail;
    if (prop != NULL) {
        cJSON *ctx = cJSON_AddObjectToObject(e, "context");
        cJSON *names = ctx != NULL ? cJSON_AddArrayToObject(ctx, "propertyName") : NULL;
        if (names == NULL || !cJSON_AddItemToArray(names, cJSON_CreateString(prop)))
            goto fail;
    }
    return e;
fail:
    cJSON_Delete(e);
    return NULL;
}

static void reset_connection(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (ci != NULL)
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void free_body(void *p)
{
    util_free(p);
}

/* Add a decimal header. */
static void add_num_header(struct MHD_Response *r, const char *name, int64_t v)
{
    char num[24];
    util_fmt(num, sizeof(num), "%lld", (long long)v);
    MHD_add_response_header(r, name, num);
}

/* Queue a (status 0: reset the connection). Takes a->body. */
static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
    char *body = a->body;
    a->body = NULL;
    if (a->status == 0 || body == NULL) {
        if (a->status == 0)
            reset_connection(conn);
        util_free(body);
        return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free_body);
    if (resp == NULL) {
        util_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    if (a->retry_after >= 0)
        add_num_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, a->retry_after);
    if (a->limits) {
        add_num_header(resp, "X-HubSpot-RateLimit-Max", a->rl_max);
        add_num_header(resp, "X-HubSpot-RateLimit-Remaining", a->rl_remaining);
        add_num_header(resp, "X-HubSpot-RateLimit-Interval-Milliseconds", a->rl_interval);
        add_num_header(resp, "X-HubSpot-RateLimit-Daily", a->daily_max);
        add_num_header(resp, "X-HubSpot-RateLimit-Daily-Remaining", a->daily_remaining);
    }
    enum MHD_Result ret = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- storage (f->lock held) ------------------------------------------------------------------ */

/* A cached prepared statement for the SQL literal sql, reset. NULL on error (logged). */
static sqlite3_stmt *stmt(struct fake *f, const char *sql)
{
    size_t i;
    for (i = 0; i < STMT_CACHE && f->sql[i] != NULL; i++) {
        if (f->sql[i] == sql) {
            sqlite3_reset(f->st[i]);
            sqlite3_clear_bindings(f->st[i]);
            return f->st[i];
        }
    }
    if (i == STMT_CACHE) {
        log_error(FAKE_LOG, "statement cache full");
        return NULL;
    }
    if (sqlite3_prepare_v2(f->db, sql, -1, &f->st[i], NULL) != SQLITE_OK) {
        log_error(FAKE_LOG, "sqlite: %s: %s", sql, sqlite3_errmsg(f->db));
        return NULL;
    }
    f->sql[i] = sql;
    return f->st[i];
}

/* Run a statement to completion (no rows wanted). Returns 0 or -1 (logged). */
static int run(struct fake *f, sqlite3_stmt *s)
{
    if (s == NULL)
        return -1;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    log_error(FAKE_LOG, "sqlite: %s", sqlite3_errmsg(f->db));
    return -1;
}

static int exec_sql(struct fake *f, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(f->db, sql, NULL, NULL, &err) == SQLITE_OK)
        return 0;
    log_error(FAKE_LOG, "sqlite: %s: %s", sql, err != NULL ? err : "?");
    sqlite3_free(err);
    return -1;
}

/* Free the property cache; the next lookup reloads it. Needs f->lock. */
static void props_clear(struct fake *f)
{
    for (size_t i = 0; i < f->n_props; i++) {
        util_free(f->props[i].object_type);
        util_free(f->props[i].name);
    }
    util_free(f->props);
    util_free(f->uniq_props);
    f->props = NULL;
    f->uniq_props = NULL;
    f->n_props = f->n_uniq = 0;
    f->props_ok = 0;
}

/* qsort order of the property cache: object type, then name (SQLite's BINARY order). */
static int propent_cmp(const void *a, const void *b)
{
    const struct propent *x = a, *y = b;
    int c = strcmp(x->object_type, y->object_type);
    return c != 0 ? c : strcmp(x->name, y->name);
}

/* Load every property definition into f->props. 0, or -1 (logged, or NOMEM; the cache stays
 * empty and the next lookup tries again). Needs f->lock. */
static int props_load(struct fake *f)
{
    static const char sql[] = "SELECT object_type, name, type, field_type, group_name, label,"
                              " unique_value, custom FROM properties";
    sqlite3_stmt *s;
    size_t cap = 0;
    int rc = -1, step;
    props_clear(f);
    s = stmt(f, sql);
    if (s == NULL)
        return -1;
    for (;;) {
        struct propent *e;
        step = sqlite3_step(s);
        if (step != SQLITE_ROW)
            break;
        if (f->n_props == cap) {
            size_t ncap = cap > 0 ? cap * 2 : 32;
            struct propent *grown = util_realloc(f->props, ncap * sizeof(*grown));
            if (grown == NULL)
                goto cleanup;
            f->props = grown;
            cap = ncap;
        }
        e = &f->props[f->n_props];
        e->object_type = util_strdup((const char *)sqlite3_column_text(s, 0));
        e->name = util_strdup((const char *)sqlite3_column_text(s, 1));
        if (e->object_type == NULL || e->name == NULL) {
            util_free(e->object_type);
            util_free(e->name);
            goto cleanup;
        }
        f->n_props++;
        util_fmt(e->d.type, sizeof(e->d.type), "%s", (const char *)sqlite3_column_text(s, 2));
        util_fmt(e->d.field_type, sizeof(e->d.field_type), "%s",
                 (const char *)sqlite3_column_text(s, 3));
        util_fmt(e->d.group, sizeof(e->d.group), "%s", (const char *)sqlite3_column_text(s, 4));
        util_fmt(e->d.label, sizeof(e->d.label), "%s", (const char *)sqlite3_column_text(s, 5));
        e->d.unique = sqlite3_column_int(s, 6);
        e->d.custom = sqlite3_column_int(s, 7);
    }
    if (step != SQLITE_DONE) {
        log_error(FAKE_LOG, "sqlite: %s", sqlite3_errmsg(f->db));
        goto cleanup;
    }
    if (f->n_props > 1)
        qsort(f->props, f->n_props, sizeof(*f->props), propent_cmp);
    f->uniq_props = util_calloc(f->n_props, sizeof(*f->uniq_props));
    if (f->uniq_props == NULL)
        goto cleanup;
    for (size_t i = 0; i < f->n_props; i++) {
        if (f->props[i].d.unique)
            f->uniq_props[f->n_uniq++] = &f->props[i];
    }
    f->props_ok = 1;
    rc = 0;
cleanup:
    sqlite3_reset(s);
    if (rc != 0)
        props_clear(f);
    return rc;
}

/* The definition of property name of type, or NULL when there is none. Borrowed from the
 * cache: valid until it is cleared (a property created, a reset). Loads the cache first when
 * it was. Needs f->lock. */
static const struct propdef *prop_find(struct fake *f, const char *type, const char *name)
{
    size_t lo = 0, hi;
    if (!f->props_ok && props_load(f) != 0)
        return NULL;
    hi = f->n_props;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct propent *e = &f->props[mid];
        int c = strcmp(type, e->object_type);
        if (c == 0)
            c = strcmp(name, e->name);
        if (c == 0)
            return &e->d;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* 1 when property name of type exists and has unique values (a short scan of the unique
 * ones: most names are not). Needs f->lock. */
static int prop_unique(struct fake *f, const char *type, const char *name)
{
    if (!f->props_ok && props_load(f) != 0)
        return 0;
    for (size_t i = 0; i < f->n_uniq; i++) {
        const struct propent *e = f->uniq_props[i];
        if (strcmp(name, e->name) == 0 && strcmp(type, e->object_type) == 0)
            return 1;
    }
    return 0;
}

/* The id of the object of type whose unique property name has value, or 0. Only unique
 * properties are indexed (every caller asks about one). Needs f->lock. */
static int64_t find_by_value(struct fake *f, const char *type, const char *name, const char *value)
{
    static const char sql[] =
        "SELECT object_id FROM uniq WHERE type = ?1 AND name = ?2 AND value = ?3";
    sqlite3_stmt *s = stmt(f, sql);
    int64_t id = 0;
    if (s == NULL)
        return 0;
    sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return id;
}

/* Move unique property name of object id (of type) from value from to value to ("" = none).
 * 0 or -1 (logged). Strings borrowed. Needs f->lock. */
static int uniq_move(struct fake *f, const char *type, const char *name, const char *from,
                     const char *to, int64_t id)
{
    static const char del[] =
        "DELETE FROM uniq WHERE type = ?1 AND name = ?2 AND value = ?3 AND object_id = ?4";
    static const char put[] = "INSERT OR REPLACE INTO uniq (type, name, value, object_id)"
                              " VALUES (?1, ?2, ?3, ?4)";
    for (int i = 0; i < 2; i++) {
        const char *v = i == 0 ? from : to;
        sqlite3_stmt *s;
        if (v[0] == '\0')
            continue;
        s = stmt(f, i == 0 ? del : put);
        if (s == NULL)
            return -1;
        sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, v, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, id);
        if (run(f, s) != 0)
            return -1;
    }
    return 0;
}

/* 1 when object id exists with type. Needs f->lock. */
static int object_exists(struct fake *f, const char *type, int64_t id)
{
    static const char sql[] = "SELECT 1 FROM objects WHERE id = ?1 AND type = ?2";
    sqlite3_stmt *s = stmt(f, sql);
    int found;
    if (s == NULL)
        return 0;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
    found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    return found;
}

/* Append the public JSON of an object to out, all of it but the closing brace:
 * {"id","properties":{"hs_object_id","createdate","lastmodifieddate"[, the stored values]},
 * "createdAt","updatedAt","archived":false. The caller adds its own members and "}" (the
 * order and bytes are those of the cJSON tree this fake used to print). created, updated and
 * props (props_len bytes of stored members, maybe none) are borrowed. */
static void object_open(struct sbuf *out, int64_t id, const char *created, const char *updated,
                        const char *props, size_t props_len)
{
    char num[24];
    util_fmt(num, sizeof(num), "%lld", (long long)id);
    sbuf_puts(out, "{\"id\":\"");
    sbuf_puts(out, num);
    sbuf_puts(out, "\",\"properties\":{\"hs_object_id\":\"");
    sbuf_puts(out, num);
    sbuf_puts(out, "\",\"createdate\":");
    json_str(out, created);
    sbuf_puts(out, ",\"lastmodifieddate\":");
    json_str(out, updated);
    if (props_len > 0) {
        sbuf_append(out, ",", 1);
        sbuf_append(out, props, props_len);
    }
    sbuf_puts(out, "},\"createdAt\":");
    json_str(out, created);
    sbuf_puts(out, ",\"updatedAt\":");
    json_str(out, updated);
    sbuf_puts(out, ",\"archived\":false");
}

/* Append sep (borrowed) and the public JSON of object id as stored to out; with assoc, its
 * "associations" member too (the /_objects shape). 1 when it exists, 0 when not (out then
 * untouched), -1 on a storage error (out may hold part of it). Needs f->lock. */
static int object_load(struct fake *f, int64_t id, const char *sep, int assoc, struct sbuf *out)
{
    static const char osql[] = "SELECT created_at, updated_at, props FROM objects WHERE id = ?1";
    static const char asql[] =
        "SELECT to_id, type_id, category FROM associations WHERE from_id = ?1 ORDER BY to_id";
    sqlite3_stmt *s = stmt(f, osql);
    const char *created, *updated, *props;
    int step;
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    step = sqlite3_step(s);
    if (step != SQLITE_ROW) {
        sqlite3_reset(s);
        return step == SQLITE_DONE ? 0 : -1;
    }
    created = (const char *)sqlite3_column_text(s, 0);
    updated = (const char *)sqlite3_column_text(s, 1);
    props = (const char *)sqlite3_column_text(s, 2);
    if (created == NULL || updated == NULL || props == NULL) {
        sqlite3_reset(s);
        return -1;
    }
    sbuf_puts(out, sep);
    object_open(out, id, created, updated, props, (size_t)sqlite3_column_bytes(s, 2));
    sqlite3_reset(s);
    if (assoc) {
        s = stmt(f, asql);
        if (s == NULL)
            return -1;
        sbuf_puts(out, ",\"associations\":[");
        sqlite3_bind_int64(s, 1, id);
        for (int n = 0; sqlite3_step(s) == SQLITE_ROW; n++) {
            const char *cat = (const char *)sqlite3_column_text(s, 2);
            if (cat == NULL)
                break;
            sbuf_printf(out, "%s{\"to\":\"%lld\",\"associationTypeId\":%d,\"associationCategory\":",
                        n > 0 ? "," : "", (long long)sqlite3_column_int64(s, 0),
                        sqlite3_column_int(s, 1));
            json_str(out, cat);
            sbuf_append(out, "}", 1);
        }
        sqlite3_reset(s);
        sbuf_append(out, "]", 1);
    }
    sbuf_append(out, "}", 1);
    return 1;
}

/* ---- validation --------------------------------------------------------------------------- */

/* 1 when s looks like an email address HubSpot accepts: one '@', a local part, a dotted domain,
 * no spaces. */
static int valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || strpbrk(s, " \t,;<>") != NULL)
        return 0;
    const char *dot = strrchr(at + 1, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0';
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* 1 when s is YYYY-MM-DD. */
static int is_date(const char *s)
{
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    return s[10] == '\0';
}

/* 1 when s is an ISO-8601 UTC instant (YYYY-MM-DDTHH:MM:SS[.f]Z) or epoch ms. */
static int is_instant(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    if (all_digits(s))
        return 1;
    for (size_t i = 0; i < sizeof(pat) - 1; i++)
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return 0;
    s += sizeof(pat) - 1;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            ;
    return strcmp(s, "Z") == 0 || strcmp(s, "+00:00") == 0;
}

/* The one string value a property value can be (string, number or bool), into buf (for
 * numbers and bools) or borrowed from v. NULL when not a scalar. */
static const char *value_text(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNumber(v)) {
        util_fmt(buf, len, "%.17g", v->valuedouble);
        return buf;
    }
    return NULL;
}

/* Check one value against its property; NULL when fine, else a sub-error (code set). */
static cJSON *check_value(const char *type, const char *name, const struct propdef *d,
                          const char *v)
{
    char msg[160];
    if (v[0] == '\0')
        return NULL; /* "" clears a property */
    if (strcmp(type, "contacts") == 0 && strcmp(name, "email") == 0 && !valid_email(v)) {
        /* Like HubSpot, the message quotes the value: a client must not copy it anywhere. */
        util_fmt(msg, sizeof(msg), "Email address %.100s is invalid", v);
        return sub_error(msg, "INVALID_EMAIL", name);
    }
    if (strcmp(d->type, "number") == 0) {
        char *end = NULL;
        errno = 0;
        strtod(v, &end);
        if (errno != 0 || end == v || *end != '\0')
            return sub_error("Property value is not a valid number", "INVALID_LONG", name);
    } else if (strcmp(d->type, "date") == 0) {
        /* A date property takes YYYY-MM-DD, or epoch ms at midnight UTC. */
        if (!(is_date(v) || (all_digits(v) && strtoll(v, NULL, 10) % 86400000 == 0)))
            return sub_error("Date must be YYYY-MM-DD or midnight UTC in epoch ms", "INVALID_DATE",
                             name);
    } else if (strcmp(d->type, "datetime") == 0) {
        if (!is_instant(v))
            return sub_error("Datetime must be ISO-8601 UTC or epoch ms", "INVALID_DATETIME", name);
    } else if (strcmp(d->type, "bool") == 0) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            return sub_error("Boolean must be true or false", "INVALID_OPTION", name);
    } else if (strcmp(type, "tasks") == 0 && strcmp(d->type, "enumeration") == 0) {
        static const char *const opts[][2] = {
            {"hs_task_status", "|NOT_STARTED|IN_PROGRESS|WAITING|COMPLETED|DEFERRED|"},
            {"hs_task_priority", "|NONE|LOW|MEDIUM|HIGH|"},
            {"hs_task_type", "|EMAIL|CALL|TODO|LINKED_IN|MEETING|"},
        };
        for (size_t i = 0; i < UTIL_ARRAY_LEN(opts); i++) {
            if (strcmp(opts[i][0], name) != 0)
                continue;
            util_fmt(msg, sizeof(msg), "|%s|", v);
            if (strstr(opts[i][1], msg) == NULL)
                return sub_error("Property value is not a valid option", "INVALID_OPTION", name);
        }
    }
    return NULL;
}

/* Validate the properties object of one input for type; NULL when valid, else a 207 error
 * entry's "errors" array item. own_id: the object it will write (0 for a new one), for the
 * unique-value checks; known_name = known_value (both NULL, or borrowed): a unique value the
 * caller just looked up, which found own_id (an upsert's key), so it is not looked up again. */
static cJSON *check_properties(struct fake *f, const char *type, const cJSON *props, int64_t own_id,
                               const char *known_name, const char *known_value, int *conflict)
{
    const cJSON *p;
    char num[40];
    *conflict = 0;
    if (!cJSON_IsObject(props))
        return sub_error("properties must be an object", "INVALID_INPUT", NULL);
    cJSON_ArrayForEach(p, props)
    {
        const struct propdef *d = prop_find(f, type, p->string);
        const char *v = value_text(p, num, sizeof(num));
        if (d == NULL)
            return sub_error("Property does not exist", "PROPERTY_DOESNT_EXIST", p->string);
        if (v == NULL)
            return sub_error("Property values must be strings", "INVALID_INPUT", p->string);
        cJSON *e = check_value(type, p->string, d, v);
        if (e != NULL)
            return e;
        if (d->unique && v[0] != '\0' &&
            !(known_name != NULL && strcmp(p->string, known_name) == 0 &&
              strcmp(v, known_value) == 0)) {
            int64_t other = find_by_value(f, type, p->string, v);
            if (other != 0 && other != own_id) {
                *conflict = 1;
                return sub_error("A record with this unique value already exists", "CONFLICT",
                                 p->string);
            }
        }
    }
    return NULL;
}

/* ---- object writes ------------------------------------------------------------------------ */

/* A batch in progress: the answer's text so far ({"status":"COMPLETE","results":[ and the
 * results), the error entries, and when it started. */
struct batch_out {
    struct sbuf text; /* owned */
    size_t n_results;
    cJSON *errors; /* owned */
    char started[32];
};

/* The next free slot of f->pv (*n counts the used ones), or NULL on NOMEM. Borrowed: valid
 * until the next call (f->pv may move). Needs f->lock. */
static struct pval *pv_next(struct fake *f, size_t *n)
{
    if (*n == f->pv_cap) {
        size_t cap = f->pv_cap > 0 ? f->pv_cap * 2 : 32;
        struct pval *grown = util_realloc(f->pv, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        f->pv = grown;
        f->pv_cap = cap;
    }
    return &f->pv[(*n)++];
}

/* The text of a value in f->pv (borrowed from it). */
static const char *pv_text(const struct pval *v)
{
    return v->value != NULL ? v->value : v->num;
}

/* Parse a stored values text (len bytes of JSON object members) back into a cJSON object.
 * Caller frees with cJSON_Delete; NULL on NOMEM or a damaged text. */
static cJSON *stored_parse(const char *text, size_t len)
{
    struct sbuf b = {0};
    cJSON *j = NULL;
    sbuf_append(&b, "{", 1);
    sbuf_append(&b, text, len);
    sbuf_append(&b, "}", 1);
    if (!b.failed)
        j = cJSON_ParseWithLength(b.data, b.len);
    sbuf_free(&b);
    return j;
}

/* Write one object of type: create it (oid 0) or update object oid with the values idp = id
 * (when idp is not NULL: an upsert's own key), then every member of props, in that order: a
 * later value of a name wins and "" clears it, as one row per value used to. Keeps uniq and
 * the counters, and appends the object's public JSON to b (with "new" when with_new). Returns
 * the object's id, or 0 on a storage error (logged; the caller rolls back). Everything is
 * borrowed. Needs f->lock and an open transaction. */
static int64_t object_write(struct fake *f, const char *type, int64_t oid, const char *idp,
                            const char *id, const cJSON *props, int with_new, struct batch_out *b)
{
    static const char q_old[] = "SELECT created_at, props FROM objects WHERE id = ?1";
    static const char q_new[] = "INSERT INTO objects (id, type, created_at, updated_at, writes,"
                                " props) VALUES (?1, ?2, ?3, ?3, 1, ?4)";
    static const char q_upd[] =
        "UPDATE objects SET updated_at = ?2, writes = writes + 1, props = ?3 WHERE id = ?1";
    char now[32];
    char *created = NULL;
    cJSON *stored = NULL;
    const cJSON *p;
    struct pval *v;
    sqlite3_stmt *s;
    size_t n = 0, i, j;
    int64_t self = oid != 0 ? oid : f->next_id + 1, ret = 0;

    now_iso(f, now, sizeof(now));
    if (oid != 0) {
        s = stmt(f, q_old);
        if (s == NULL)
            goto cleanup;
        sqlite3_bind_int64(s, 1, oid);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 1) != NULL) {
            created = util_strdup((const char *)sqlite3_column_text(s, 0));
            stored = stored_parse((const char *)sqlite3_column_text(s, 1),
                                  (size_t)sqlite3_column_bytes(s, 1));
        }
        sqlite3_reset(s);
        if (created == NULL || stored == NULL) {
            log_error(FAKE_LOG, "object %lld: cannot read its values", (long long)oid);
            goto cleanup;
        }
    }
    /* the values it held, then the ones written (in order) */
    cJSON_ArrayForEach(p, stored)
    {
        v = pv_next(f, &n);
        if (v == NULL || !cJSON_IsString(p))
            goto cleanup;
        *v = (struct pval){.name = p->string, .value = p->valuestring, .old = 1};
    }
    if (idp != NULL) {
        v = pv_next(f, &n);
        if (v == NULL)
            goto cleanup;
        *v = (struct pval){.name = idp, .value = id, .old = 0};
    }
    cJSON_ArrayForEach(p, props)
    {
        v = pv_next(f, &n);
        if (v == NULL)
            goto cleanup;
        v->name = p->string;
        v->old = 0;
        v->value = value_text(p, v->num, sizeof(v->num));
        if (v->value == v->num)
            v->value = NULL; /* f->pv may move: keep the number by place, not address */
        else if (v->value == NULL)
            v->value = "";
    }
    /* a stable sort by name (SQLite's BINARY order): each name's values stay in order */
    for (i = 1; i < n; i++) {
        struct pval t = f->pv[i];
        for (j = i; j > 0 && strcmp(f->pv[j - 1].name, t.name) > 0; j--)
            f->pv[j] = f->pv[j - 1];
        f->pv[j] = t;
    }
    /* the last value of each name is the one kept; a written unique one moves in uniq */
    sbuf_reset(&f->text);
    for (i = 0; i < n; i = j) {
        const struct pval *last;
        const char *was = f->pv[i].old ? pv_text(&f->pv[i]) : "", *now_v;
        for (j = i + 1; j < n && strcmp(f->pv[j].name, f->pv[i].name) == 0; j++)
            ;
        last = &f->pv[j - 1];
        now_v = pv_text(last);
        if (now_v[0] != '\0') {
            if (f->text.len > 0)
                sbuf_append(&f->text, ",", 1);
            json_str(&f->text, last->name);
            sbuf_append(&f->text, ":", 1);
            json_str(&f->text, now_v);
        }
        if (!last->old && strcmp(was, now_v) != 0 && prop_unique(f, type, last->name) &&
            uniq_move(f, type, last->name, was, now_v, self) != 0)
            goto cleanup;
    }
    if (f->text.failed) {
        log_error(FAKE_LOG, "object %lld: out of memory", (long long)self);
        goto cleanup;
    }
    s = stmt(f, oid == 0 ? q_new : q_upd);
    if (s == NULL)
        goto cleanup;
    sqlite3_bind_int64(s, 1, self);
    if (oid == 0) {
        sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, f->text.len > 0 ? f->text.data : "", (int)f->text.len,
                          SQLITE_STATIC);
        if (run(f, s) != 0)
            goto cleanup;
        f->stats.creates++;
        f->next_id++;
    } else {
        sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, f->text.len > 0 ? f->text.data : "", (int)f->text.len,
                          SQLITE_STATIC);
        f->stats.updates++;
        if (run(f, s) != 0)
            goto cleanup;
    }
    if (b->n_results++ > 0)
        sbuf_append(&b->text, ",", 1);
    object_open(&b->text, self, created != NULL ? created : now, now,
                f->text.len > 0 ? f->text.data : "", f->text.len);
    if (with_new)
        sbuf_puts(&b->text, oid == 0 ? ",\"new\":true" : ",\"new\":false");
    sbuf_append(&b->text, "}", 1);
    ret = self;
cleanup:
    util_free(created);
    cJSON_Delete(stored);
    return ret;
}

/* ---- batch answers ------------------------------------------------------------------------ */

/* Start b (zeroed by the caller): the answer's opening, an empty errors array, the start
 * time. 0, or -1 on NOMEM (b is still freed by batch_free). Needs f->lock. */
static int batch_start(struct fake *f, struct batch_out *b)
{
    sbuf_puts(&b->text, "{\"status\":\"COMPLETE\",\"results\":[");
    b->errors = cJSON_CreateArray();
    now_iso(f, b->started, sizeof(b->started));
    return b->text.failed || b->errors == NULL ? -1 : 0;
}

/* Free what b holds (accepts a finished or a zeroed b). */
static void batch_free(struct batch_out *b)
{
    sbuf_free(&b->text);
    cJSON_Delete(b->errors);
    b->errors = NULL;
}

/* Add the 207 error entry for one input: category, a message, the sub-error (taken) and
 * context {objectWriteTraceId: [trace]} or {ids: [id]}. */
static int batch_error(struct fake *f, struct batch_out *b, const char *category,
                       const char *message, cJSON *sub, const char *trace, const char *id)
{
    cJSON *errors = cJSON_CreateArray(), *ctx = cJSON_CreateObject(), *arr;
    char full[320];
    const char *sub_msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sub, "message"));
    if (sub_msg != NULL) {
        /* HubSpot's message embeds the property errors, values included. */
        util_fmt(full, sizeof(full), "%s: [%.200s]", message, sub_msg);
        message = full;
    }
    if (errors == NULL || ctx == NULL) {
        cJSON_Delete(errors);
        cJSON_Delete(ctx);
        cJSON_Delete(sub);
        return -1;
    }
    if (sub != NULL)
        cJSON_AddItemToArray(errors, sub);
    arr = cJSON_AddArrayToObject(ctx, trace != NULL ? "objectWriteTraceId" : "ids");
    if (arr != NULL)
        cJSON_AddItemToArray(arr, cJSON_CreateString(trace != NULL ? trace : id));
    cJSON *e = hs_error(f, category, message, errors, ctx);
    if (e == NULL)
        return -1;
    return cJSON_AddItemToArray(b->errors, e) ? 0 : -1;
}

/* Finish a batch answer: 200/201 when no input failed, else 207 with errors and numErrors.
 * ok_status: 200 or 201. The text taken from b is what the cJSON tree
 * {status, results, [numErrors, errors,] startedAt, completedAt} printed. Needs f->lock. */
static void batch_answer(struct fake *f, struct answer *a, struct batch_out *b, unsigned ok_status)
{
    char done[32];
    int n_err = cJSON_GetArraySize(b->errors);
    now_iso(f, done, sizeof(done));
    sbuf_append(&b->text, "]", 1);
    if (n_err > 0) {
        char *errors = cJSON_PrintUnformatted(b->errors);
        if (errors == NULL) {
            answer_json(a, 500, NULL);
            return;
        }
        sbuf_printf(&b->text, ",\"numErrors\":%d,\"errors\":", n_err);
        sbuf_puts(&b->text, errors);
        cJSON_free(errors);
    }
    sbuf_puts(&b->text, ",\"startedAt\":");
    json_str(&b->text, b->started);
    sbuf_puts(&b->text, ",\"completedAt\":");
    json_str(&b->text, done);
    sbuf_append(&b->text, "}", 1);
    answer_text(a, n_err > 0 ? 207 : ok_status, &b->text);
}

/* The "inputs" of a batch body, checked against the batch limit; NULL after answering 400. */
static const cJSON *batch_inputs(struct fake *f, const cJSON *body, struct answer *a)
{
    char msg[128];
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(body, "inputs");
    if (!cJSON_IsArray(inputs)) {
        answer_error(f, a, 400, "VALIDATION_ERROR", "Invalid input JSON: inputs is required");
        return NULL;
    }
    int n = cJSON_GetArraySize(inputs);
    if (n > f->faults.batch_max) {
        util_fmt(msg, sizeof(msg), "Batch input size %d exceeds the limit of %lld inputs", n,
                 (long long)f->faults.batch_max);
        answer_error(f, a, 400, "VALIDATION_ERROR", msg);
        return NULL;
    }
    return inputs;
}

/* 1 when every input has a string objectWriteTraceId and no two are equal. */
static int traces_unique(const cJSON *inputs)
{
    const cJSON *in, *other;
    cJSON_ArrayForEach(in, inputs)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(in, "objectWriteTraceId");
        if (!cJSON_IsString(t))
            return 0;
        cJSON_ArrayForEach(other, inputs)
        {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(other, "objectWriteTraceId");
            if (other != in && cJSON_IsString(u) && strcmp(u->valuestring, t->valuestring) == 0)
                return 0;
        }
    }
    return 1;
}

static const char *trace_of(const cJSON *in)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(in, "objectWriteTraceId");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Without unique trace ids, one bad input fails the whole batch (HubSpot's rule): answer 400
 * and roll back. Returns 1 when it did. */
static int whole_batch_fails(struct fake *f, struct answer *a, const cJSON *inputs,
                             struct batch_out *b)
{
    if (cJSON_GetArraySize(b->errors) == 0 || traces_unique(inputs))
        return 0;
    exec_sql(f, "ROLLBACK");
    cJSON *first = cJSON_DetachItemFromArray(b->errors, 0);
    batch_free(b);
    answer_json(a, 400, first);
    return 1;
}

/* One input's "id" string and its place, for finding repeated ids. */
struct id_at {
    const char *id; /* borrowed from the request body */
    int at;
};

/* qsort order of struct id_at: by id, then by place. */
static int id_at_cmp(const void *a, const void *b)
{
    const struct id_at *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c != 0 ? c : (x->at > y->at) - (x->at < y->at);
}

/* Mark in dup[0..n) the inputs whose string "id" another input repeats (sorting, not comparing
 * every pair). dup is the caller's, zeroed. 0, or -1 on NOMEM. */
static int mark_repeated_ids(const cJSON *inputs, int n, unsigned char *dup)
{
    struct id_at *ids = util_malloc((size_t)n * sizeof(*ids) + 1);
    const cJSON *in;
    int m = 0, at = 0;
    if (ids == NULL)
        return -1;
    cJSON_ArrayForEach(in, inputs)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "id"));
        if (id != NULL && at < n)
            ids[m++] = (struct id_at){id, at};
        at++;
    }
    if (m > 1)
        qsort(ids, (size_t)m, sizeof(*ids), id_at_cmp);
    for (int i = 1; i < m; i++) {
        if (strcmp(ids[i - 1].id, ids[i].id) == 0)
            dup[ids[i - 1].at] = dup[ids[i].at] = 1;
    }
    util_free(ids);
    return 0;
}

/* POST /crm/v3/objects/{type}/batch/upsert. */
static void serve_upsert(struct fake *f, const char *type, const cJSON *body, struct answer *a)
{
    struct batch_out b = {{0}, 0, NULL, ""};
    const cJSON *inputs = batch_inputs(f, body, a), *in;
    unsigned char *dup = NULL;
    int i = 0;
    if (batch_start(f, &b) != 0 || inputs == NULL)
        goto cleanup;
    /* Whole-request checks, input by input: idProperty unique, ids not repeated. */
    dup = util_calloc((size_t)cJSON_GetArraySize(inputs) + 1, 1);
    if (dup == NULL || mark_repeated_ids(inputs, cJSON_GetArraySize(inputs), dup) != 0) {
        answer_error(f, a, 500, "INTERNAL_ERROR", "out of memory");
        goto cleanup;
    }
    cJSON_ArrayForEach(in, inputs)
    {
        const char *idp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "idProperty"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "id"));
        const struct propdef *d;
        if (idp == NULL || id == NULL || id[0] == '\0') {
            answer_error(f, a, 400, "VALIDATION_ERROR",
                         "Invalid input JSON: id and idProperty are required");
            goto cleanup;
        }
        d = prop_find(f, type, idp);
        if (d == NULL || !d->unique) {
            answer_error(f, a, 400, "VALIDATION_ERROR",
                         "idProperty must be a property with unique values");
            goto cleanup;
        }
        if (dup[i++]) {
            answer_error(f, a, 400, "VALIDATION_ERROR", "Duplicate IDs found in batch input");
            goto cleanup;
        }
    }
    exec_sql(f, "BEGIN");
    cJSON_ArrayForEach(in, inputs)
    {
        const char *idp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "idProperty"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "id"));
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(in, "properties");
        const cJSON *own = cJSON_GetObjectItemCaseSensitive(props, idp);
        int64_t oid = find_by_value(f, type, idp, id);
        int conflict = 0;
        cJSON *sub = NULL;
        if (own != NULL && !(cJSON_IsString(own) && strcmp(own->valuestring, id) == 0))
            sub =
                sub_error("The idProperty value in properties must equal id", "INVALID_INPUT", idp);
        else
            sub = check_properties(f, type, props, oid, idp, id, &conflict);
        if (sub != NULL) {
            batch_error(f, &b, conflict ? "CONFLICT" : "VALIDATION_ERROR",
                        conflict ? "Contact already exists with that unique value"
                                 : "Property values were not valid",
                        sub, trace_of(in), trace_of(in) == NULL ? id : NULL);
            continue;
        }
        if (object_write(f, type, oid, idp, id, props, 1, &b) == 0) {
            exec_sql(f, "ROLLBACK");
            answer_error(f, a, 500, "INTERNAL_ERROR", "storage error");
            goto cleanup;
        }
    }
    if (whole_batch_fails(f, a, inputs, &b))
        goto cleanup;
    exec_sql(f, "COMMIT");
    batch_answer(f, a, &b, 200);
cleanup:
    util_free(dup);
    batch_free(&b);
}

/* The associations of one create input (task -> contact, type 204 only). NULL when valid. */
static cJSON *check_associations(struct fake *f, const char *type, const cJSON *assocs)
{
    const cJSON *as;
    if (assocs == NULL)
        return NULL;
    if (!cJSON_IsArray(assocs))
        return sub_error("associations must be an array", "INVALID_INPUT", NULL);
    cJSON_ArrayForEach(as, assocs)
    {
        const char *to = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(as, "to"), "id"));
        const cJSON *t;
        if (to == NULL || !all_digits(to) || !object_exists(f, "contacts", strtoll(to, NULL, 10)))
            return sub_error("Association target does not exist", "INVALID_OBJECT_ID", NULL);
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(as, "types"))
        {
            const char *cat =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "associationCategory"));
            const cJSON *tid = cJSON_GetObjectItemCaseSensitive(t, "associationTypeId");
            if (cat == NULL || strcmp(cat, "HUBSPOT_DEFINED") != 0 || !cJSON_IsNumber(tid) ||
                strcmp(type, "tasks") != 0 || tid->valueint != 204)
                return sub_error("Invalid association type: only HUBSPOT_DEFINED 204 "
                                 "(task to contact) is supported",
                                 "INVALID_ASSOCIATION_TYPE", NULL);
        }
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(as, "types")) == 0)
            return sub_error("Association types are required", "INVALID_ASSOCIATION_TYPE", NULL);
    }
    return NULL;
}

/* POST /crm/v3/objects/{type}/batch/create. */
static void serve_create(struct fake *f, const char *type, const cJSON *body, struct answer *a)
{
    struct batch_out b = {{0}, 0, NULL, ""};
    const cJSON *inputs = batch_inputs(f, body, a), *in;
    if (batch_start(f, &b) != 0 || inputs == NULL)
        goto cleanup;
    exec_sql(f, "BEGIN");
    cJSON_ArrayForEach(in, inputs)
    {
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(in, "properties");
        const cJSON *assocs = cJSON_GetObjectItemCaseSensitive(in, "associations");
        int conflict = 0;
        cJSON *sub = check_properties(f, type, props, 0, NULL, NULL, &conflict);
        if (sub == NULL && strcmp(type, "tasks") == 0 &&
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(props, "hs_timestamp")))
            sub = sub_error("hs_timestamp is required", "REQUIRED_PROPERTY", "hs_timestamp");
        if (sub == NULL)
            sub = check_associations(f, type, assocs);
        if (sub != NULL) {
            batch_error(f, &b, conflict ? "CONFLICT" : "VALIDATION_ERROR",
                        conflict ? "An object with that unique value already exists"
                                 : "Property values were not valid",
                        sub, trace_of(in), NULL);
            continue;
        }
        int64_t oid = object_write(f, type, 0, NULL, NULL, props, 0, &b);
        if (oid == 0) {
            exec_sql(f, "ROLLBACK");
            answer_error(f, a, 500, "INTERNAL_ERROR", "storage error");
            goto cleanup;
        }
        const cJSON *as;
        cJSON_ArrayForEach(as, assocs)
        {
            static const char sql[] = "INSERT OR IGNORE INTO associations (from_id, to_id,"
                                      " type_id, category) VALUES (?1, ?2, 204, 'HUBSPOT_DEFINED')";
            sqlite3_stmt *s = stmt(f, sql);
            const char *to = cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(as, "to"), "id"));
            if (s == NULL || to == NULL)
                continue;
            sqlite3_bind_int64(s, 1, oid);
            sqlite3_bind_int64(s, 2, strtoll(to, NULL, 10));
            run(f, s);
        }
    }
    if (whole_batch_fails(f, a, inputs, &b))
        goto cleanup;
    exec_sql(f, "COMMIT");
    batch_answer(f, a, &b, 201);
cleanup:
    batch_free(&b);
}

/* POST /crm/v3/objects/{type}/batch/update (by object id). */
static void serve_update(struct fake *f, const char *type, const cJSON *body, struct answer *a)
{
    struct batch_out b = {{0}, 0, NULL, ""};
    const cJSON *inputs = batch_inputs(f, body, a), *in;
    if (batch_start(f, &b) != 0 || inputs == NULL)
        goto cleanup;
    exec_sql(f, "BEGIN");
    cJSON_ArrayForEach(in, inputs)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "id"));
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(in, "properties");
        int64_t oid = id != NULL && all_digits(id) ? strtoll(id, NULL, 10) : 0;
        int conflict = 0;
        if (oid == 0 || !object_exists(f, type, oid)) {
            const char *trace = trace_of(in);
            batch_error(f, &b, "OBJECT_NOT_FOUND", "Object not found: it may be deleted",
                        sub_error("Object not found", "OBJECT_NOT_FOUND", NULL), trace,
                        trace == NULL ? (id != NULL ? id : "") : NULL);
            continue;
        }
        cJSON *sub = check_properties(f, type, props, oid, NULL, NULL, &conflict);
        if (sub != NULL) {
            batch_error(f, &b, conflict ? "CONFLICT" : "VALIDATION_ERROR",
                        "Property values were not valid", sub, trace_of(in), NULL);
            continue;
        }
        if (object_write(f, type, oid, NULL, NULL, props, 0, &b) == 0) {
            exec_sql(f, "ROLLBACK");
            answer_error(f, a, 500, "INTERNAL_ERROR", "storage error");
            goto cleanup;
        }
    }
    if (whole_batch_fails(f, a, inputs, &b))
        goto cleanup;
    exec_sql(f, "COMMIT");
    batch_answer(f, a, &b, 200);
cleanup:
    batch_free(&b);
}

/* POST /crm/v3/objects/{type}/batch/read: by object id, or by a unique idProperty. */
static void serve_read(struct fake *f, const char *type, const cJSON *body, struct answer *a)
{
    struct batch_out b = {{0}, 0, NULL, ""};
    const cJSON *inputs = batch_inputs(f, body, a), *in;
    const char *idp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "idProperty"));
    const struct propdef *d = NULL;
    cJSON *missing = NULL;
    if (batch_start(f, &b) != 0 || inputs == NULL)
        goto cleanup;
    if (idp != NULL)
        d = prop_find(f, type, idp);
    if (idp != NULL && (d == NULL || !d->unique)) {
        answer_error(f, a, 400, "VALIDATION_ERROR",
                     "idProperty must be a property with unique values");
        goto cleanup;
    }
    missing = cJSON_CreateArray();
    cJSON_ArrayForEach(in, inputs)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "id"));
        int64_t oid = 0;
        if (id != NULL && idp != NULL)
            oid = find_by_value(f, type, idp, id);
        else if (id != NULL && all_digits(id) && object_exists(f, type, strtoll(id, NULL, 10)))
            oid = strtoll(id, NULL, 10);
        if (oid != 0 && object_load(f, oid, b.n_results > 0 ? "," : "", 0, &b.text) == 1)
            b.n_results++;
        else if (missing != NULL)
            cJSON_AddItemToArray(missing, cJSON_CreateString(id != NULL ? id : ""));
    }
    if (cJSON_GetArraySize(missing) > 0) {
        cJSON *ctx = cJSON_CreateObject();
        if (ctx != NULL) {
            cJSON_AddItemToObject(ctx, "ids", missing);
            missing = NULL;
        }
        cJSON *e = hs_error(f, "OBJECT_NOT_FOUND",
                            "Could not get some objects, they may be deleted or not exist. "
                            "Check that ids are valid.",
                            NULL, ctx);
        if (e != NULL)
            cJSON_AddItemToArray(b.errors, e);
    }
    batch_answer(f, a, &b, 200);
cleanup:
    cJSON_Delete(missing);
    batch_free(&b);
}

/* The public JSON of a property definition. */
static cJSON *property_json(const char *name, const struct propdef *d)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL || !cJSON_AddStringToObject(j, "name", name) ||
        !cJSON_AddStringToObject(j, "label", d->label) ||
        !cJSON_AddStringToObject(j, "type", d->type) ||
        !cJSON_AddStringToObject(j, "fieldType", d->field_type) ||
        !cJSON_AddStringToObject(j, "groupName", d->group) ||
        !cJSON_AddBoolToObject(j, "hasUniqueValue", d->unique) ||
        !cJSON_AddBoolToObject(j, "hubspotDefined", !d->custom) ||
        !cJSON_AddFalseToObject(j, "archived")) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* POST /crm/v3/properties/{type}. */
static void serve_create_property(struct fake *f, const char *type, const cJSON *body,
                                  struct answer *a)
{
    static const char sql[] = "INSERT INTO properties (object_type, name, label, type,"
                              " field_type, group_name, unique_value, custom)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)";
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "name"));
    const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "label"));
    const char *ptype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "type"));
    const char *ftype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "fieldType"));
    const char *group = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "groupName"));
    int unique = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "hasUniqueValue"));
    int ok_pair = 0, ok_group = 0;
    const struct propdef *d;

    if (name == NULL || label == NULL || ptype == NULL || ftype == NULL || group == NULL) {
        answer_error(f, a, 400, "VALIDATION_ERROR",
                     "name, label, type, fieldType and groupName are required");
        return;
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(field_types); i++)
        ok_pair |= strcmp(field_types[i][0], ptype) == 0 && strcmp(field_types[i][1], ftype) == 0;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(known_groups); i++)
        ok_group |= strcmp(known_groups[i][0], type) == 0 && strcmp(known_groups[i][1], group) == 0;
    if (!ok_pair) {
        answer_error(f, a, 400, "VALIDATION_ERROR", "Invalid type / fieldType combination");
        return;
    }
    if (!ok_group) {
        answer_error(f, a, 400, "VALIDATION_ERROR", "Property group does not exist");
        return;
    }
    if (strcmp(ptype, "bool") == 0 &&
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(body, "options")) != 2) {
        answer_error(f, a, 400, "VALIDATION_ERROR", "A bool property needs two options");
        return;
    }
    if (prop_find(f, type, name) != NULL) {
        answer_error(f, a, 409, "OBJECT_ALREADY_EXISTS", "A property with that name exists");
        return;
    }
    sqlite3_stmt *s = stmt(f, sql);
    if (s == NULL) {
        answer_error(f, a, 500, "INTERNAL_ERROR", "storage error");
        return;
    }
    sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, label, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, ptype, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, ftype, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, group, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 7, unique);
    props_clear(f); /* read back below from the table */
    d = run(f, s) == 0 ? prop_find(f, type, name) : NULL;
    if (d == NULL) {
        answer_error(f, a, 500, "INTERNAL_ERROR", "storage error");
        return;
    }
    answer_json(a, 201, property_json(name, d));
}

/* ---- limits, auth and faults (f->lock held) ------------------------------------------------ */

/* Requests in the rolling window now. Drops the expired ones. */
static int64_t window_count(struct fake *f, int64_t now)
{
    while (f->win_n > 0) {
        size_t tail = (f->win_head + WINDOW_MAX - f->win_n) % WINDOW_MAX;
        if (f->window[tail] > now - f->faults.interval_ms)
            break;
        f->win_n--;
    }
    return (int64_t)f->win_n;
}

/* Fill the rate-limit headers of a. */
static void limit_headers(struct fake *f, struct answer *a, int64_t now)
{
    a->limits = 1;
    a->rl_max = f->faults.ten_secondly_max;
    a->rl_remaining = f->faults.ten_secondly_max - window_count(f, now);
    if (a->rl_remaining < 0)
        a->rl_remaining = 0;
    a->rl_interval = f->faults.interval_ms;
    a->daily_max = f->faults.daily_max;
    a->daily_remaining = f->faults.daily_max - f->daily_used;
    if (a->daily_remaining < 0)
        a->daily_remaining = 0;
}

/* A 429 with HubSpot's body for policy. */
static void answer_429(struct fake *f, struct answer *a, const char *policy)
{
    char cid[64], rid[64], msg[96], lower[32];
    size_t i;
    for (i = 0; policy[i] != '\0' && i + 1 < sizeof(lower); i++)
        lower[i] = (char)(policy[i] >= 'A' && policy[i] <= 'Z' ? policy[i] + 32 : policy[i]);
    lower[i] = '\0';
    correlation_id(f, cid, sizeof(cid));
    correlation_id(f, rid, sizeof(rid));
    util_fmt(msg, sizeof(msg), "You have reached your %s limit.", lower);
    cJSON *j = cJSON_CreateObject();
    if (j != NULL && (!cJSON_AddStringToObject(j, "status", "error") ||
                      !cJSON_AddStringToObject(j, "message", msg) ||
                      !cJSON_AddStringToObject(j, "errorType", "RATE_LIMIT") ||
                      !cJSON_AddStringToObject(j, "correlationId", cid) ||
                      !cJSON_AddStringToObject(j, "policyName", policy) ||
                      !cJSON_AddStringToObject(j, "requestId", rid))) {
        cJSON_Delete(j);
        j = NULL;
    }
    answer_json(a, 429, j);
    a->retry_after = f->faults.retry_after;
}

/* What a data request meets before it is served. */
enum gate { G_SERVE, G_ANSWERED, G_RESET, G_TRUNCATE };

/* Auth, scopes, faults and limits for one data request, in that order; may fill a. write: the
 * route changes data (for missing_scope). */
static enum gate gate_request(struct fake *f, struct MHD_Connection *conn, int write,
                              struct answer *a)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    int64_t now = util_monotonic_ms();
    if (auth == NULL || !util_secure_equal(auth, f->bearer)) {
        answer_error(f, a, 401, "INVALID_AUTHENTICATION",
                     "Authentication credentials not found. This API supports OAuth 2.0 "
                     "authentication and you can find more details at "
                     "https://developers.hubspot.com/docs/methods/auth/oauth-overview");
        return G_ANSWERED;
    }
    if (f->faults.expire_at_ms > 0 && util_now_ms() >= f->faults.expire_at_ms)
        f->faults.token_expired = 1;
    if (f->faults.token_expired) {
        answer_error(f, a, 401, "EXPIRED_AUTHENTICATION",
                     "The OAuth token used to make this call expired 1 second(s) ago.");
        return G_ANSWERED;
    }
    if (f->faults.expire_after_requests > 0 && --f->faults.expire_after_requests == 0)
        f->faults.token_expired = 1; /* this one still passes; the next is refused */
    if (write && f->faults.missing_scope[0] != '\0') {
        cJSON *ctx = cJSON_CreateObject();
        cJSON *arr = ctx != NULL ? cJSON_AddArrayToObject(ctx, "missingScopes") : NULL;
        if (arr != NULL)
            cJSON_AddItemToArray(arr, cJSON_CreateString(f->faults.missing_scope));
        answer_json(a, 403,
                    hs_error(f, "MISSING_SCOPES",
                             "This app hasn't been granted all required scopes to make this "
                             "call. Read more about required scopes here: "
                             "https://developers.hubspot.com/scopes.",
                             NULL, ctx));
        return G_ANSWERED;
    }
    if (f->faults.reset_next > 0) {
        f->faults.reset_next--;
        f->stats.resets++;
        return G_RESET;
    }
    if (f->faults.fail_next > 0) {
        f->faults.fail_next--;
        if (f->faults.fail_status == 502) {
            a->status = 502;
            a->type = "text/html";
            a->body = util_strdup(FAKE_HTML_502);
        } else {
            answer_error(f, a, (unsigned)f->faults.fail_status, "INTERNAL_ERROR", "internal error");
        }
        return G_ANSWERED;
    }
    if (f->faults.force_429 > 0) {
        f->faults.force_429--;
        limit_headers(f, a, now);
        answer_429(f, a, f->faults.force_policy);
        return G_ANSWERED;
    }
    if (f->daily_used >= f->faults.daily_max) {
        limit_headers(f, a, now);
        answer_429(f, a, "DAILY");
        return G_ANSWERED;
    }
    if (window_count(f, now) >= f->faults.ten_secondly_max) {
        limit_headers(f, a, now);
        answer_429(f, a, "TEN_SECONDLY_ROLLING");
        return G_ANSWERED;
    }
    /* Accepted: it counts against both limits. */
    f->window[f->win_head] = now;
    f->win_head = (f->win_head + 1) % WINDOW_MAX;
    if (f->win_n < WINDOW_MAX)
        f->win_n++;
    f->daily_used++;
    limit_headers(f, a, now);
    if (f->faults.truncate_next > 0) {
        f->faults.truncate_next--;
        return G_TRUNCATE;
    }
    return G_SERVE;
}

/* ---- routing ------------------------------------------------------------------------------ */

/* "contacts" or "tasks" from a path segment of len n, or NULL. */
static const char *object_type(const char *s, size_t n)
{
    if (n == 8 && strncmp(s, "contacts", 8) == 0)
        return "contacts";
    if (n == 5 && strncmp(s, "tasks", 5) == 0)
        return "tasks";
    return NULL;
}

/* Route and serve one data request; returns the route for the counters. */
static enum route route_data(struct fake *f, struct MHD_Connection *conn, const char *url,
                             const char *method, const struct serve_upload *up, struct answer *a)
{
    static const char objects[] = "/crm/v3/objects/", props[] = "/crm/v3/properties/";
    enum route r = R_OTHER;
    const char *type = NULL, *rest = NULL;
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    cJSON *body = NULL;
    int64_t delay;

    if (strncmp(url, objects, sizeof(objects) - 1) == 0 ||
        strncmp(url, props, sizeof(props) - 1) == 0) {
        int is_obj = strncmp(url, objects, sizeof(objects) - 1) == 0;
        const char *s = url + (is_obj ? sizeof(objects) : sizeof(props)) - 1;
        const char *slash = strchr(s, '/');
        type = object_type(s, slash != NULL ? (size_t)(slash - s) : strlen(s));
        rest = slash != NULL ? slash : "";
        if (type != NULL && is_obj && post) {
            r = strcmp(rest, "/batch/upsert") == 0   ? R_UPSERT
                : strcmp(rest, "/batch/read") == 0   ? R_READ
                : strcmp(rest, "/batch/create") == 0 ? R_CREATE
                : strcmp(rest, "/batch/update") == 0 ? R_UPDATE
                                                     : R_OTHER;
        } else if (type != NULL && is_obj && get && rest[0] == '/' && all_digits(rest + 1)) {
            r = R_GET_OBJECT;
        } else if (type != NULL && !is_obj && get && rest[0] == '/' && rest[1] != '\0' &&
                   strchr(rest + 1, '/') == NULL) {
            r = R_GET_PROPERTY;
        } else if (type != NULL && !is_obj && post && rest[0] == '\0') {
            r = R_CREATE_PROPERTY;
        }
    }

    pthread_mutex_lock(&f->lock);
    f->stats.requests++;
    delay = f->faults.delay_ms;
    enum gate g = gate_request(f, conn, post && r != R_READ, a);
    pthread_mutex_unlock(&f->lock);
    if (delay > 0)
        sleep_ms(f, delay);
    if (g == G_ANSWERED)
        return r;
    if (g == G_RESET) {
        a->status = 0;
        return r;
    }
    if (r == R_OTHER) {
        pthread_mutex_lock(&f->lock);
        answer_error(f, a, 404, "OBJECT_NOT_FOUND", "Resource not found");
        pthread_mutex_unlock(&f->lock);
        return r;
    }
    if (post) {
        body = cJSON_ParseWithLength(up->body.data != NULL ? up->body.data : "", up->body.len);
        if (up->too_big || !cJSON_IsObject(body)) {
            pthread_mutex_lock(&f->lock);
            answer_error(f, a, 400, "VALIDATION_ERROR", "Invalid input JSON on line 1");
            pthread_mutex_unlock(&f->lock);
            goto cleanup;
        }
    }
    pthread_mutex_lock(&f->lock);
    switch (r) {
    case R_UPSERT:
        serve_upsert(f, type, body, a);
        break;
    case R_READ:
        serve_read(f, type, body, a);
        break;
    case R_CREATE:
        serve_create(f, type, body, a);
        break;
    case R_UPDATE:
        serve_update(f, type, body, a);
        break;
    case R_GET_OBJECT: {
        struct sbuf text = {0};
        int64_t id = strtoll(rest + 1, NULL, 10);
        if (object_exists(f, type, id) && object_load(f, id, "", 0, &text) == 1)
            answer_text(a, 200, &text);
        else
            answer_error(f, a, 404, "OBJECT_NOT_FOUND", "Object not found");
        sbuf_free(&text);
        break;
    }
    case R_GET_PROPERTY: {
        const struct propdef *d = prop_find(f, type, rest + 1);
        char msg[200];
        if (d != NULL) {
            answer_json(a, 200, property_json(rest + 1, d));
        } else {
            util_fmt(msg, sizeof(msg), "Unable to find property %.100s for object type %s",
                     rest + 1, type);
            answer_error(f, a, 404, "OBJECT_NOT_FOUND", msg);
        }
        break;
    }
    case R_CREATE_PROPERTY:
        serve_create_property(f, type, body, a);
        break;
    default:
        break;
    }
    if (g == G_TRUNCATE && a->status >= 200 && a->status < 300 && a->body != NULL) {
        a->body[strlen(a->body) / 2] = '\0';
        f->stats.truncated++;
    }
    pthread_mutex_unlock(&f->lock);
cleanup:
    cJSON_Delete(body);
    return r;
}

/* ---- admin -------------------------------------------------------------------------------- */

static cJSON *faults_json(const struct faults *fl)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL ||
        !cJSON_AddNumberToObject(j, "ten_secondly_max", (double)fl->ten_secondly_max) ||
        !cJSON_AddNumberToObject(j, "interval_ms", (double)fl->interval_ms) ||
        !cJSON_AddNumberToObject(j, "daily_max", (double)fl->daily_max) ||
        !cJSON_AddNumberToObject(j, "batch_max", (double)fl->batch_max) ||
        !cJSON_AddNumberToObject(j, "fail_next", (double)fl->fail_next) ||
        !cJSON_AddNumberToObject(j, "fail_status", (double)fl->fail_status) ||
        !cJSON_AddNumberToObject(j, "truncate_next", (double)fl->truncate_next) ||
        !cJSON_AddNumberToObject(j, "reset_next", (double)fl->reset_next) ||
        !cJSON_AddNumberToObject(j, "force_429", (double)fl->force_429) ||
        !cJSON_AddStringToObject(j, "force_429_policy", fl->force_policy) ||
        !cJSON_AddNumberToObject(j, "retry_after", (double)fl->retry_after) ||
        !cJSON_AddNumberToObject(j, "delay_ms", (double)fl->delay_ms) ||
        !cJSON_AddNumberToObject(j, "token_expires_after_requests",
                                 (double)fl->expire_after_requests) ||
        !cJSON_AddNumberToObject(j, "token_expires_at_ms", (double)fl->expire_at_ms) ||
        !cJSON_AddBoolToObject(j, "token_expired", fl->token_expired) ||
        !cJSON_AddStringToObject(j, "missing_scope", fl->missing_scope)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* One integer fault setting: name, offset, range. */
struct int_field {
    const char *name;
    size_t offset;
    int64_t min, max;
};

static const struct int_field int_fields[] = {
    {"ten_secondly_max", offsetof(struct faults, ten_secondly_max), 1, WINDOW_MAX},
    {"interval_ms", offsetof(struct faults, interval_ms), 1, 86400000},
    {"daily_max", offsetof(struct faults, daily_max), 0, INT64_C(1) << 40},
    {"batch_max", offsetof(struct faults, batch_max), 1, 100000},
    {"fail_next", offsetof(struct faults, fail_next), 0, 1000000},
    {"fail_status", offsetof(struct faults, fail_status), 500, 599},
    {"truncate_next", offsetof(struct faults, truncate_next), 0, 1000000},
    {"reset_next", offsetof(struct faults, reset_next), 0, 1000000},
    {"force_429", offsetof(struct faults, force_429), 0, 1000000},
    {"retry_after", offsetof(struct faults, retry_after), -1, 86400},
    {"delay_ms", offsetof(struct faults, delay_ms), 0, 600000},
    {"token_expires_after_requests", offsetof(struct faults, expire_after_requests), 0, 1000000000},
};

/* Apply a POST /_faults body to a copy of the settings; on success they replace the current
 * ones. Returns NULL, or a message naming the bad member. Needs f->lock. */
static const char *faults_apply(struct fake *f, const cJSON *body, char *msg, size_t len)
{
    struct faults nf = f->faults;
    const cJSON *m;
    int renew = 0;
    cJSON_ArrayForEach(m, body)
    {
        const struct int_field *fi = NULL;
        for (size_t i = 0; i < UTIL_ARRAY_LEN(int_fields); i++)
            if (strcmp(int_fields[i].name, m->string) == 0)
                fi = &int_fields[i];
        if (fi != NULL) {
            if (!cJSON_IsNumber(m) || m->valuedouble != (double)(int64_t)m->valuedouble ||
                m->valuedouble < (double)fi->min || m->valuedouble > (double)fi->max) {
                util_fmt(msg, len, "%s: expected an integer from %lld to %lld", m->string,
                         (long long)fi->min, (long long)fi->max);
                return msg;
            }
            *(int64_t *)(void *)((char *)&nf + fi->offset) = (int64_t)m->valuedouble;
        } else if (strcmp(m->string, "force_429_policy") == 0) {
            const char *v = cJSON_GetStringValue(m);
            if (v == NULL || (strcmp(v, "TEN_SECONDLY_ROLLING") != 0 &&
                              strcmp(v, "SECONDLY") != 0 && strcmp(v, "DAILY") != 0)) {
                util_fmt(msg, len, "%s: TEN_SECONDLY_ROLLING, SECONDLY or DAILY", m->string);
                return msg;
            }
            util_fmt(nf.force_policy, sizeof(nf.force_policy), "%s", v);
        } else if (strcmp(m->string, "token_expired") == 0 && cJSON_IsBool(m)) {
            nf.token_expired = cJSON_IsTrue(m);
            renew = !nf.token_expired;
        } else if (strcmp(m->string, "token_expires_after_ms") == 0 && cJSON_IsNumber(m) &&
                   m->valuedouble >= 0) {
            nf.expire_at_ms = m->valuedouble > 0 ? util_now_ms() + (int64_t)m->valuedouble : 0;
        } else if (strcmp(m->string, "missing_scope") == 0 && cJSON_IsString(m) &&
                   strlen(m->valuestring) < sizeof(nf.missing_scope)) {
            util_fmt(nf.missing_scope, sizeof(nf.missing_scope), "%s", m->valuestring);
        } else if (strcmp(m->string, "daily_used") == 0 && cJSON_IsNumber(m) &&
                   m->valuedouble >= 0) {
            continue; /* applied below, after everything validated */
        } else {
            util_fmt(msg, len, "%s: unknown setting or bad value", m->string);
            return msg;
        }
    }
    if (renew) {
        nf.expire_after_requests = 0;
        nf.expire_at_ms = 0;
    }
    f->faults = nf;
    m = cJSON_GetObjectItemCaseSensitive(body, "daily_used");
    if (cJSON_IsNumber(m))
        f->daily_used = (int64_t)m->valuedouble;
    return NULL;
}

/* Count rows of a query with one text parameter (may be NULL). */
static int64_t count_rows(struct fake *f, const char *sql, const char *param)
{
    sqlite3_stmt *s = stmt(f, sql);
    int64_t n = 0;
    if (s == NULL)
        return -1;
    if (param != NULL)
        sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return n;
}

/* GET /_state. Needs f->lock. */
static cJSON *state_json(struct fake *f)
{
    static const char q_obj[] = "SELECT COUNT(*) FROM objects WHERE type = ?1";
    static const char q_assoc[] = "SELECT COUNT(*) FROM associations";
    static const char q_prop[] = "SELECT COUNT(*) FROM properties WHERE object_type = ?1";
    static const char q_custom[] =
        "SELECT COUNT(*) FROM properties WHERE object_type = ?1 AND custom = 1";
    char num[8];
    int64_t now = util_monotonic_ms();
    cJSON *j = cJSON_CreateObject();
    cJSON *objs = j ? cJSON_AddObjectToObject(j, "objects") : NULL;
    cJSON *props = j ? cJSON_AddObjectToObject(j, "properties") : NULL;
    cJSON *custom = j ? cJSON_AddObjectToObject(j, "custom_properties") : NULL;
    cJSON *req = j ? cJSON_AddObjectToObject(j, "requests") : NULL;
    cJSON *by = req ? cJSON_AddObjectToObject(req, "by_route") : NULL;
    cJSON *rate = j ? cJSON_AddObjectToObject(j, "rate") : NULL;
    cJSON *writes = j ? cJSON_AddObjectToObject(j, "writes") : NULL;
    if (by == NULL || objs == NULL || props == NULL || custom == NULL || rate == NULL ||
        writes == NULL)
        goto fail;
    static const char *const types[] = {"contacts", "tasks"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(types); i++) {
        cJSON_AddNumberToObject(objs, types[i], (double)count_rows(f, q_obj, types[i]));
        cJSON_AddNumberToObject(props, types[i], (double)count_rows(f, q_prop, types[i]));
        cJSON_AddNumberToObject(custom, types[i], (double)count_rows(f, q_custom, types[i]));
    }
    cJSON_AddNumberToObject(j, "associations", (double)count_rows(f, q_assoc, NULL));
    cJSON_AddNumberToObject(req, "total", (double)f->stats.requests);
    for (int r = 0; r < R_COUNT; r++) {
        cJSON *rs = NULL;
        int64_t total = 0;
        for (int s = 0; s < 600; s++) {
            if (f->stats.by_route[r][s] == 0)
                continue;
            if (rs == NULL && (rs = cJSON_AddObjectToObject(by, route_names[r])) == NULL)
                goto fail;
            util_fmt(num, sizeof(num), "%d", s);
            cJSON_AddNumberToObject(rs, num, (double)f->stats.by_route[r][s]);
            total += f->stats.by_route[r][s];
        }
        if (rs != NULL)
            cJSON_AddNumberToObject(rs, "total", (double)total);
    }
    cJSON_AddNumberToObject(req, "resets", (double)f->stats.resets);
    cJSON_AddNumberToObject(req, "truncated", (double)f->stats.truncated);
    cJSON_AddNumberToObject(rate, "window_used", (double)window_count(f, now));
    cJSON_AddNumberToObject(rate, "daily_used", (double)f->daily_used);
    cJSON_AddNumberToObject(writes, "creates", (double)f->stats.creates);
    cJSON_AddNumberToObject(writes, "updates", (double)f->stats.updates);
    cJSON *fl = faults_json(&f->faults);
    if (fl == NULL)
        goto fail;
    cJSON_AddItemToObject(j, "faults", fl);
    return j;
fail:
    cJSON_Delete(j);
    return NULL;
}

/* GET /_objects/{type}[/{id}] (only > 0: that one object): the objects with their
 * properties and associations appended to out as {"results":[...]}, or for one object just
 * it. Returns how many objects it wrote, or -1 on a storage error. Needs f->lock. */
static int objects_text(struct fake *f, const char *type, int64_t only, struct sbuf *out)
{
    static const char q_ids[] = "SELECT id FROM objects WHERE type = ?1 ORDER BY id";
    sqlite3_stmt *s;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    if (only > 0)
        return object_exists(f, type, only) ? object_load(f, only, "", 1, out) : 0;
    s = stmt(f, q_ids);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (n == cap) {
            int64_t *grown;
            cap = cap > 0 ? cap * 2 : 64;
            grown = util_realloc(ids, cap * sizeof(*ids));
            if (grown == NULL) {
                sqlite3_reset(s);
                goto cleanup;
            }
            ids = grown;
        }
        ids[n++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    sbuf_puts(out, "{\"results\":[");
    for (size_t i = 0; i < n; i++) {
        if (object_load(f, ids[i], i > 0 ? "," : "", 1, out) != 1)
            goto cleanup;
    }
    sbuf_puts(out, "]}");
    rc = n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
cleanup:
    util_free(ids);
    return rc;
}

/* Seed the standard properties (idempotent). */
static int seed_properties(struct fake *f)
{
    static const char sql[] = "INSERT OR IGNORE INTO properties (object_type, name, label, type,"
                              " field_type, group_name, unique_value, custom)"
                              " VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, 0)";
    for (size_t i = 0; i < UTIL_ARRAY_LEN(standard_props); i++) {
        sqlite3_stmt *s = stmt(f, sql);
        if (s == NULL)
            return -1;
        for (int c = 0; c < 5; c++)
            sqlite3_bind_text(s, c + 1, standard_props[i][c], -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, standard_props[i][5][0] == '1');
        if (run(f, s) != 0)
            return -1;
    }
    return 0;
}

/* Serve an admin route; returns 1 when url is one. */
static int route_admin(struct fake *f, const char *url, const char *method,
                       const struct serve_upload *up, struct answer *a)
{
    char msg[160];
    if (strncmp(url, "/_", 2) != 0)
        return 0;
    pthread_mutex_lock(&f->lock);
    if (strcmp(url, "/_state") == 0 && strcmp(method, "GET") == 0) {
        answer_json(a, 200, state_json(f));
    } else if (strcmp(url, "/_faults") == 0 && strcmp(method, "GET") == 0) {
        answer_json(a, 200, faults_json(&f->faults));
    } else if (strcmp(url, "/_faults") == 0 && strcmp(method, "DELETE") == 0) {
        f->faults = f->flags;
        answer_json(a, 200, faults_json(&f->faults));
    } else if (strcmp(url, "/_faults") == 0 && strcmp(method, "POST") == 0) {
        cJSON *body =
            cJSON_ParseWithLength(up->body.data != NULL ? up->body.data : "", up->body.len);
        const char *bad = cJSON_IsObject(body) ? faults_apply(f, body, msg, sizeof(msg))
                                               : "body: expected a JSON object";
        cJSON_Delete(body);
        if (bad != NULL)
            answer_error(f, a, 400, "VALIDATION_ERROR", bad);
        else
            answer_json(a, 200, faults_json(&f->faults));
    } else if (strcmp(url, "/_reset") == 0 && strcmp(method, "POST") == 0) {
        props_clear(f);
        if (exec_sql(f, "DELETE FROM uniq; DELETE FROM associations; DELETE FROM objects;"
                        " DELETE FROM properties;") == 0 &&
            seed_properties(f) == 0) {
            memset(&f->stats, 0, sizeof(f->stats));
            f->win_n = 0;
            f->daily_used = 0;
            f->next_id = 1000;
            answer_json(a, 200, cJSON_Parse("{\"reset\":true}"));
        } else {
            answer_error(f, a, 500, "INTERNAL_ERROR", "storage error");
        }
    } else if (strncmp(url, "/_objects/", 10) == 0 && strcmp(method, "GET") == 0) {
        const char *s = url + 10, *slash = strchr(s, '/');
        const char *type = object_type(s, slash != NULL ? (size_t)(slash - s) : strlen(s));
        int64_t id = slash != NULL && all_digits(slash + 1) ? strtoll(slash + 1, NULL, 10) : 0;
        struct sbuf text = {0};
        int n = type != NULL && (slash == NULL || id > 0) ? objects_text(f, type, id, &text) : -1;
        if (n < 0)
            answer_error(f, a, 404, "OBJECT_NOT_FOUND", "no such object type or id");
        else if (id > 0 && n == 0)
            answer_error(f, a, 404, "OBJECT_NOT_FOUND", "no such object");
        else
            answer_text(a, 200, &text);
        sbuf_free(&text);
    } else {
        answer_error(f, a, 404, "OBJECT_NOT_FOUND", "no such admin route");
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
    struct answer a = {.status = 0, .body = NULL, .type = NULL, .retry_after = -1};
    (void)version;
    up = serve_collect(req_cls, upload_data, upload_data_size, FAKE_MAX_BODY, &more);
    if (up == NULL)
        return more;
    if (route_admin(f, url, method, up, &a)) {
        log_debug(FAKE_LOG, "admin %s %s: %u", method, url, a.status);
    } else {
        enum route r = route_data(f, conn, url, method, up, &a);
        pthread_mutex_lock(&f->lock);
        if (a.status > 0 && a.status < 600)
            f->stats.by_route[r][a.status]++;
        pthread_mutex_unlock(&f->lock);
        log_debug(FAKE_LOG, "%s %s (%zu bytes): %u", method, url, up->body.len, a.status);
    }
    return send_answer(conn, &a);
}

/* ---- start-up ----------------------------------------------------------------------------- */

/* Bring a database an older fake_hubspot wrote (one "vals" row per property value) to this
 * layout: each object's values in objects.props, the unique ones in uniq. 0 (also when there
 * is nothing to do) or -1 (logged, rolled back). Runs before anything reads the state. */
static int db_migrate(struct fake *f)
{
    static const char q_old[] =
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'vals'";
    static const char q_col[] =
        "SELECT COUNT(*) FROM pragma_table_info('objects') WHERE name = 'props'";
    static const char q_vals[] = "SELECT object_id, name, value FROM vals"
                                 " WHERE value <> '' ORDER BY object_id, name";
    static const char q_set[] = "UPDATE objects SET props = ?2 WHERE id = ?1";
    static const char q_uniq[] = "INSERT OR IGNORE INTO uniq (type, name, value, object_id)"
                                 " SELECT o.type, v.name, v.value, v.object_id FROM vals v"
                                 " JOIN objects o ON o.id = v.object_id"
                                 " JOIN properties p ON p.object_type = o.type AND p.name = v.name"
                                 " WHERE p.unique_value = 1 AND v.value <> ''";
    struct sbuf text = {0};
    sqlite3_stmt *s = stmt(f, q_old), *set;
    int64_t cur = 0;
    int rc = -1, legacy, has_col, step;
    if (s == NULL || sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return -1;
    }
    legacy = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    if (!legacy)
        return 0;
    log_info(FAKE_LOG, "converting the property values of an older database");
    if (exec_sql(f, "BEGIN") != 0)
        return -1;
    s = stmt(f, q_col);
    if (s == NULL || sqlite3_step(s) != SQLITE_ROW)
        goto cleanup;
    has_col = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    if (!has_col &&
        exec_sql(f, "ALTER TABLE objects ADD COLUMN props TEXT NOT NULL DEFAULT ''") != 0)
        goto cleanup;
    s = stmt(f, q_vals);
    if (s == NULL)
        goto cleanup;
    for (;;) {
        step = sqlite3_step(s);
        int64_t id = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        if (cur != 0 && id != cur) {
            /* the rows of object cur are all in text */
            set = stmt(f, q_set);
            if (set == NULL || text.failed)
                goto cleanup;
            sqlite3_bind_int64(set, 1, cur);
            sqlite3_bind_text(set, 2, text.data, (int)text.len, SQLITE_STATIC);
            if (run(f, set) != 0)
                goto cleanup;
            sbuf_reset(&text);
        }
        if (step != SQLITE_ROW)
            break;
        const char *name = (const char *)sqlite3_column_text(s, 1);
        const char *value = (const char *)sqlite3_column_text(s, 2);
        if (name == NULL || value == NULL)
            goto cleanup;
        cur = id;
        if (text.len > 0)
            sbuf_append(&text, ",", 1);
        json_str(&text, name);
        sbuf_append(&text, ":", 1);
        json_str(&text, value);
    }
    if (step != SQLITE_DONE || exec_sql(f, q_uniq) != 0 || exec_sql(f, "DROP TABLE vals") != 0 ||
        exec_sql(f, "COMMIT") != 0)
        goto cleanup;
    rc = 0;
cleanup:
    if (s != NULL)
        sqlite3_reset(s);
    if (rc != 0)
        exec_sql(f, "ROLLBACK");
    sbuf_free(&text);
    return rc;
}

static int db_open(struct fake *f, const char *path)
{
    static const char q_max[] = "SELECT COALESCE(MAX(id), 1000) FROM objects";
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &f->db, flags, NULL) != SQLITE_OK) {
        fprintf(stderr, "fake_hubspot: cannot open %s: %s\n", path,
                f->db != NULL ? sqlite3_errmsg(f->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(f->db, 5000);
    if (exec_sql(f, schema_sql) != 0 || db_migrate(f) != 0 || seed_properties(f) != 0) {
        fprintf(stderr, "fake_hubspot: %s: cannot create the schema\n", path);
        return -1;
    }
    sqlite3_stmt *s = stmt(f, q_max);
    if (s == NULL || sqlite3_step(s) != SQLITE_ROW) {
        fprintf(stderr, "fake_hubspot: %s: %s\n", path, sqlite3_errmsg(f->db));
        return -1;
    }
    f->next_id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

/* Close the database and free the caches and scratch buffers (accepts a closed one). */
static void db_close(struct fake *f)
{
    props_clear(f);
    util_free(f->pv);
    f->pv = NULL;
    f->pv_cap = 0;
    sbuf_free(&f->text);
    for (size_t i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(f->st[i]);
        f->st[i] = NULL;
        f->sql[i] = NULL;
    }
    sqlite3_close(f->db);
    f->db = NULL;
}

static void usage(FILE *out)
{
    fputs("usage: fake_hubspot --token TOKEN [options]\n"
          "\n"
          "A fake of HubSpot's CRM v3 API (contacts upsert/read, tasks create/update with\n"
          "associations, properties) with SQLite state, rate limits and faults.\n"
          "See contrib/fakes/README.md.\n"
          "\n"
          "  --token TOKEN            the Bearer token data requests must carry (required)\n"
          "  --listen A.B.C.D:PORT    address (default 127.0.0.1:0, a free port)\n"
          "  --db FILE                SQLite database (default: in memory)\n"
          "  --ten-secondly-max N     requests per rolling window (default 100)\n"
          "  --interval-ms N          the rolling window (default 10000)\n"
          "  --daily-max N            requests per day (default 250000)\n"
          "  --batch-max N            inputs per batch request (default 100)\n"
          "  --verbose                one stderr line per request (never the body)\n"
          "  --help                   this text\n"
          "\n"
          "Prints \"listening on 127.0.0.1:PORT\" when ready. SIGTERM/SIGINT exit 0; bad flags "
          "exit 2.\n",
          out);
}

struct options {
    const char *listen_at, *token, *db;
    int verbose, help;
};

/* Parse argv ("--name VALUE" or "--name=VALUE"). Returns ODSYNC_OK or ODSYNC_PARSE (printed). */
static int parse_args(int argc, char **argv, struct options *o, struct faults *fl)
{
    static const struct {
        const char *flag;
        size_t offset;
        int64_t min, max;
    } nums[] = {
        {"ten-secondly-max", offsetof(struct faults, ten_secondly_max), 1, WINDOW_MAX},
        {"interval-ms", offsetof(struct faults, interval_ms), 1, 86400000},
        {"daily-max", offsetof(struct faults, daily_max), 0, INT64_C(1) << 40},
        {"batch-max", offsetof(struct faults, batch_max), 1, 100000},
    };
    for (int i = 1; i < argc; i++) {
        char name[40];
        const char *arg = argv[i], *value = NULL, *eq = strchr(arg, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || nlen >= sizeof(name)) {
            fprintf(stderr, "fake_hubspot: unknown argument \"%s\" (see --help)\n", arg);
            return ODSYNC_PARSE;
        }
        memcpy(name, arg + 2, nlen - 2);
        name[nlen - 2] = '\0';
        if (strcmp(name, "help") == 0 || strcmp(name, "verbose") == 0) {
            *(strcmp(name, "help") == 0 ? &o->help : &o->verbose) = 1;
            continue;
        }
        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            fprintf(stderr, "fake_hubspot: --%s needs a value (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (strcmp(name, "listen") == 0) {
            o->listen_at = value;
        } else if (strcmp(name, "token") == 0) {
            o->token = value;
        } else if (strcmp(name, "db") == 0) {
            o->db = value;
        } else {
            size_t k;
            for (k = 0; k < UTIL_ARRAY_LEN(nums) && strcmp(nums[k].flag, name) != 0; k++)
                ;
            int64_t v;
            if (k == UTIL_ARRAY_LEN(nums)) {
                fprintf(stderr, "fake_hubspot: unknown flag --%s (see --help)\n", name);
                return ODSYNC_PARSE;
            }
            if (util_parse_i64(value, nums[k].min, nums[k].max, &v) != ODSYNC_OK) {
                fprintf(stderr, "fake_hubspot: --%s: bad value \"%s\"\n", name, value);
                return ODSYNC_PARSE;
            }
            *(int64_t *)(void *)((char *)fl + nums[k].offset) = v;
        }
    }
    return ODSYNC_OK;
}

int main(int argc, char **argv)
{
    static struct fake f; /* static: big (counters) and reachable from MHD threads */
    struct options o = {.listen_at = "127.0.0.1:0", .token = NULL, .db = ":memory:"};
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in addr;
    char host[INET_ADDRSTRLEN];
    sigset_t sigs;
    int sig, rc = 2, locked_init = 0;

    f.faults = (struct faults){.ten_secondly_max = 100,
                               .interval_ms = 10000,
                               .daily_max = 250000,
                               .batch_max = 100,
                               .fail_status = 500,
                               .force_policy = "TEN_SECONDLY_ROLLING",
                               .retry_after = -1};
    if (parse_args(argc, argv, &o, &f.faults) != ODSYNC_OK)
        goto cleanup;
    f.flags = f.faults;
    if (o.help) {
        usage(stdout);
        rc = 0;
        goto cleanup;
    }
    if (o.token == NULL || o.token[0] == '\0') {
        fprintf(stderr, "fake_hubspot: --token is required (see --help)\n");
        goto cleanup;
    }
    if (serve_parse_listen(o.listen_at, &addr) != ODSYNC_OK) {
        fprintf(stderr, "fake_hubspot: --listen: expected A.B.C.D:PORT, got \"%s\"\n", o.listen_at);
        goto cleanup;
    }
    rc = 1;
    log_setup(stderr, o.verbose ? ODSYNC_LOG_DEBUG : ODSYNC_LOG_INFO, LOG_TEXT);
    if (pthread_mutex_init(&f.lock, NULL) != 0) {
        fprintf(stderr, "fake_hubspot: cannot create a mutex\n");
        goto cleanup;
    }
    locked_init = 1;
    size_t blen = strlen(o.token) + 8;
    f.bearer = util_malloc(blen);
    f.window = util_calloc(WINDOW_MAX, sizeof(*f.window));
    if (f.bearer == NULL || f.window == NULL || log_add_secret(o.token) != ODSYNC_OK) {
        fprintf(stderr, "fake_hubspot: out of memory\n");
        goto cleanup;
    }
    util_fmt(f.bearer, blen, "Bearer %s", o.token);
    if (db_open(&f, o.db) != 0)
        goto cleanup;

    serve_block_signals(&sigs);

    d = serve_start(&addr, on_request, &f, NULL);
    if (d == NULL) {
        fprintf(stderr, "fake_hubspot: cannot listen on %s\n", o.listen_at);
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
    db_close(&f);
    if (locked_init)
        pthread_mutex_destroy(&f.lock);
    util_free(f.bearer);
    util_free(f.window);
    log_shutdown();
    return rc;
}
