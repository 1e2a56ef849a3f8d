/*
 * fake_rest_crm: a faithful fake of a CRM speaking odsync's generic REST wire protocol
 * (plugins/rest/README.md), for plugin, integration, delivery-under-faults and demo runs.
 * contrib/fakes/README.md documents every flag, endpoint, fault and the state JSON; this
 * comment is the short version.
 *
 *   fake_rest_crm --token T [--listen 127.0.0.1:PORT] [--db FILE] [fault flags...]
 *
 * Prints "listening on 127.0.0.1:PORT" on stdout once ready (PORT 0, the default, picks a free
 * port and the line shows the real one) and nothing else on stdout. SIGTERM or SIGINT stops it
 * cleanly (exit 0). Bad flags exit 2, start-up failures exit 1.
 *
 * Data routes (need "Authorization: Bearer T", else 401):
 *   PUT  /{entity}/{id}     body: a JSON object. Create 201 {"id":"<n>","created":true};
 *                           update 200 {"id":"<n>","created":false}. {entity} may hold '/'.
 *   POST /{entity}/batch    body: a JSON array (at most 100) of objects with a string "key";
 *                           200 with one result per item, in order.
 * Admin routes (never faulted, delayed or counted in "requests"):
 *   GET /_state[?summary=1], GET|POST|DELETE /_faults, GET /_items/{entity}/{id}, POST /_reset.
 *
 * Items live in SQLite (--db FILE, default in memory): one row per (entity, id) with the
 * remote id, body, write count, last Idempotency-Key and timestamps. A PUT whose
 * Idempotency-Key equals the one that last wrote the item is a replay: it answers as an
 * update and changes nothing. Any string value "REJECT" in a record makes it a permanent
 * validation failure (422).
 *
 * Faults (flags at start, POST /_faults at run time) apply to data routes that passed the
 * bearer check and routing: 401, 429 with Retry-After, 500, connection reset (before or after
 * applying the write), a delay, and a 200 with a non-JSON body. Decisions come from a seeded
 * PRNG, so a run is reproducible.
 *
 * Threads: libmicrohttpd runs one thread per connection; one mutex (struct fake.lock) guards
 * SQLite, the counters, the fault settings and the PRNG. Request bodies (test patient data)
 * are never logged; the token is registered as a log secret.
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
#include <sqlite3.h>

#include "log.h"
#include "serve.h"
#include "util.h"

#define FAKE_MAX_BODY     ((size_t)16 * 1024 * 1024)
#define FAKE_MAX_BATCH    100
#define FAKE_LOG          "fake_rest_crm"
#define FAKE_REJECT       "REJECT"
#define FAKE_REJECT_MSG   "validation failed: rejected by fake"
#define FAKE_MALFORMED    "<html>oops"
#define FAKE_MAX_DELAY_MS 600000
#define FAKE_MAX_RETRY_S  86400
#define FAKE_MAX_SEED     9007199254740992.0 /* 2^53: exact in a JSON number */

/* Fault settings; a copy is taken under the lock for each data request. */
struct faults {
    double fail_rate;         /* fraction answered 500 */
    double reset_rate;        /* fraction whose connection is reset */
    double reset_after_rate;  /* fraction of resets that happen after applying the write */
    double malformed_rate;    /* fraction whose 2xx answer is replaced by a non-JSON 200 */
    int64_t rate_limit_every; /* every Nth data request answers 429; 0 = never */
    int64_t retry_after;      /* Retry-After seconds of a 429 */
    int64_t delay_ms;         /* wait before answering each data request */
    int64_t seed;             /* PRNG seed */
    int auth_fail;            /* every data request answers 401 */
};

/* Counters since start (or the last POST /_reset). Not persisted. */
struct stats {
    int64_t requests;       /* every non-admin request */
    int64_t data_requests;  /* authenticated, routed data requests (fault candidates) */
    int64_t by_status[600]; /* answers per HTTP status, non-admin requests */
    int64_t resets;         /* connections reset instead of answering */
    int64_t resets_applied; /* ... of which after the write was applied */
    int64_t malformed;      /* 2xx answers replaced by a non-JSON body */
    int64_t applied_writes; /* item creates and updates applied */
    int64_t replays;        /* PUTs recognised as replays (nothing changed) */
    int64_t rejected;       /* records refused with 422 (PUT or batch item) */
};

enum stmt_id {
    ST_GET,
    ST_INSERT,
    ST_UPDATE,
    ST_ONE,
    ST_ALL,
    ST_COUNTS,
    ST_CLEAR,
    ST_MAXID,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_GET] = "SELECT remote_id, idempotency_key FROM items WHERE entity = ?1 AND id = ?2",
    [ST_INSERT] = "INSERT INTO items (entity, id, remote_id, body, writes, idempotency_key,"
                  " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6)",
    [ST_UPDATE] = "UPDATE items SET body = ?3, writes = writes + 1, idempotency_key = ?4,"
                  " updated_at = ?5 WHERE entity = ?1 AND id = ?2",
    [ST_ONE] = "SELECT remote_id, writes, body, idempotency_key, created_at, updated_at"
               " FROM items WHERE entity = ?1 AND id = ?2",
    [ST_ALL] = "SELECT entity, id, remote_id, writes, body, idempotency_key, created_at,"
               " updated_at FROM items ORDER BY remote_id",
    [ST_COUNTS] = "SELECT entity, COUNT(*) FROM items GROUP BY entity ORDER BY MIN(remote_id)",
    [ST_CLEAR] = "DELETE FROM items",
    [ST_MAXID] = "SELECT COALESCE(MAX(remote_id), 0) FROM items",
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

static const char schema_sql[] = "PRAGMA journal_mode = WAL;"
                                 "PRAGMA synchronous = OFF;"
                                 "CREATE TABLE IF NOT EXISTS items ("
                                 " entity TEXT NOT NULL,"
                                 " id TEXT NOT NULL,"
                                 " remote_id INTEGER NOT NULL UNIQUE,"
                                 " body TEXT NOT NULL,"
                                 " writes INTEGER NOT NULL,"
                                 " idempotency_key TEXT,"
                                 " created_at TEXT NOT NULL,"
                                 " updated_at TEXT NOT NULL,"
                                 " PRIMARY KEY (entity, id));";

struct fake {
    pthread_mutex_t lock;       /* guards db .. stats below */
    sqlite3 *db;                /* owned */
    sqlite3_stmt *st[ST_COUNT]; /* owned, prepared once, reset after each use */
    int64_t next_id;            /* last remote id handed out */
    struct faults faults;       /* current settings */
    uint64_t rng;               /* PRNG state */
    int64_t rl_count;           /* data requests since rate-limit-every was set */
    struct stats stats;
    char *bearer;        /* owned: "Bearer <token>"; immutable after start */
    atomic_int stopping; /* set once shutdown begins: delays end early */
};

/* One request's upload, kept in MHD's per-request pointer (owned by MHD's request; freed in
 * serve_on_completed). */
/* An answer being built. status 0 means: reset the connection, send nothing. */
struct answer {
    unsigned status;
    char *body;          /* owned (util_free); NULL with a nonzero status means NOMEM */
    const char *type;    /* static content type */
    int64_t retry_after; /* seconds for a Retry-After header, or -1 */
};

/* The fault decided for one data request. */
enum fault {
    F_NONE,
    F_AUTH,
    F_RATE_LIMIT,
    F_FAIL,
    F_RESET_BEFORE,
    F_RESET_AFTER,
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* splitmix64: a small, well-mixed PRNG; state advanced in place. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Now as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least 32 bytes). */
static void now_iso(char *buf, size_t len)
{
    int64_t ms = util_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char base[24];
    gmtime_r(&secs, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    util_fmt(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
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

/* 1 when any string inside j (at any depth) is exactly "REJECT". */
static int has_reject(const cJSON *j)
{
    const cJSON *c;
    if (cJSON_IsString(j))
        return strcmp(j->valuestring, FAKE_REJECT) == 0;
    cJSON_ArrayForEach(c, j)
    {
        if (has_reject(c))
            return 1;
    }
    return 0;
}

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

/* Percent-decode s[0..n) into a new string (caller frees with util_free). NULL on a bad
 * escape, an encoded NUL, or NOMEM. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = util_malloc(n + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (n - i < 3) {
            util_free(out);
            return NULL;
        }
        int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0)) {
            util_free(out);
            return NULL;
        }
        out[o++] = (char)(h * 16 + l);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* Split path (raw, percent-encoded, no leading '/') at its last '/' into a decoded entity
 * and id (caller frees both with util_free). Returns 404 when there is no such split, 400 on
 * bad percent-encoding, 0 on success (500 on NOMEM). */
static unsigned split_path(const char *path, char **entity, char **id)
{
    const char *slash = strrchr(path, '/');
    *entity = NULL;
    *id = NULL;
    if (slash == NULL || slash == path || slash[1] == '\0')
        return MHD_HTTP_NOT_FOUND;
    *entity = pct_decode(path, (size_t)(slash - path));
    *id = pct_decode(slash + 1, strlen(slash + 1));
    if (*entity != NULL && *id != NULL)
        return 0;
    util_free(*entity);
    util_free(*id);
    *entity = NULL;
    *id = NULL;
    return MHD_HTTP_BAD_REQUEST;
}

/* ---- answers ------------------------------------------------------------------------------ */

/* Set a JSON answer; json is taken (deleted here). NULL json leaves a NOMEM answer. */
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

/* Set a {"error": message} answer. */
static void answer_error(struct answer *a, unsigned status, const char *message)
{
    cJSON *json = cJSON_CreateObject();
    if (json != NULL && cJSON_AddStringToObject(json, "error", message) == NULL) {
        cJSON_Delete(json);
        json = NULL;
    }
    answer_json(a, status, json);
}

/* Close the connection with a TCP reset (SO_LINGER 0) instead of answering. */
static void reset_connection(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (ci != NULL)
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* MHD free callback for a response body from util_malloc. */
static void free_body(void *p)
{
    util_free(p);
}

/* Queue a (status 0: reset the connection instead). Takes a->body (NULL afterwards). */
static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
    char num[24];
    char *body = a->body;
    enum MHD_Result ret = MHD_NO;
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
    if (a->retry_after >= 0) {
        util_fmt(num, sizeof(num), "%lld", (long long)a->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    ret = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- storage (every function here needs f->lock held) ------------------------------------- */

/* Log a SQLite failure of what. */
static void db_error(struct fake *f, const char *what)
{
    log_error(FAKE_LOG, "sqlite: %s: %s", what, sqlite3_errmsg(f->db));
}

/* Run a statement that returns no rows. Returns ODSYNC_OK or ODSYNC_IO (logged). */
static int db_exec(struct fake *f, enum stmt_id id)
{
    sqlite3_stmt *st = f->st[id];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return ODSYNC_OK;
    db_error(f, stmt_sql[id]);
    return ODSYNC_IO;
}

/* Create or update (entity, id) with body[0..body_len) (JSON text). idem (may be NULL) is
 * the write's Idempotency-Key; a write whose key equals the item's last one is a replay and
 * changes nothing. *remote_id gets the item's remote id, *created 1 for a create, *replay 1
 * for a replay. Counts applied writes and replays in f->stats only when count is set (a
 * batch counts after its commit). Returns ODSYNC_OK or ODSYNC_IO (logged). */
static int db_write(struct fake *f, const char *entity, const char *id, const char *body,
                    size_t body_len, const char *idem, int64_t *remote_id, int *created,
                    int *replay)
{
    sqlite3_stmt *get = f->st[ST_GET], *put = NULL;
    char now[32];
    int rc = ODSYNC_IO;

    *created = 0;
    *replay = 0;
    now_iso(now, sizeof(now));
    sqlite3_bind_text(get, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(get, 2, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(get);
    if (step == SQLITE_ROW) {
        const char *last = (const char *)sqlite3_column_text(get, 1);
        *remote_id = sqlite3_column_int64(get, 0);
        if (idem != NULL && last != NULL && strcmp(last, idem) == 0) {
            *replay = 1;
            rc = ODSYNC_OK;
            goto cleanup;
        }
        put = f->st[ST_UPDATE];
        sqlite3_bind_text(put, 1, entity, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 3, body, (int)body_len, SQLITE_STATIC);
        if (idem != NULL)
            sqlite3_bind_text(put, 4, idem, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(put, 4);
        sqlite3_bind_text(put, 5, now, -1, SQLITE_STATIC);
    } else if (step == SQLITE_DONE) {
        *remote_id = f->next_id + 1;
        *created = 1;
        put = f->st[ST_INSERT];
        sqlite3_bind_text(put, 1, entity, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(put, 3, *remote_id);
        sqlite3_bind_text(put, 4, body, (int)body_len, SQLITE_STATIC);
        if (idem != NULL)
            sqlite3_bind_text(put, 5, idem, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(put, 5);
        sqlite3_bind_text(put, 6, now, -1, SQLITE_STATIC);
    } else {
        db_error(f, "select item");
        goto cleanup;
    }
    if (sqlite3_step(put) != SQLITE_DONE) {
        db_error(f, *created ? "insert item" : "update item");
        goto cleanup;
    }
    if (*created)
        f->next_id++;
    rc = ODSYNC_OK;
cleanup:
    sqlite3_reset(get);
    sqlite3_clear_bindings(get);
    if (put != NULL) {
        sqlite3_reset(put);
        sqlite3_clear_bindings(put);
    }
    return rc;
}

/* Parse a stored body back into JSON (text from SQLite). A body that does not parse (cannot
 * happen for rows this fake wrote) is kept as a string. NULL on NOMEM. */
static cJSON *body_json(const unsigned char *text)
{
    const char *s = text != NULL ? (const char *)text : "null";
    cJSON *j = cJSON_Parse(s);
    return j != NULL ? j : cJSON_CreateString(s);
}

/* Add the item fields of a row to obj: "id", "version", "body", "idempotency_key",
 * "created_at", "updated_at", from columns starting at col (remote_id, writes, body,
 * idempotency_key, created_at, updated_at). Returns 0, or -1 on NOMEM. */
static int add_item_fields(cJSON *obj, sqlite3_stmt *st, int col)
{
    char num[24];
    const char *idem = (const char *)sqlite3_column_text(st, col + 3);
    cJSON *body = body_json(sqlite3_column_text(st, col + 2));
    util_fmt(num, sizeof(num), "%lld", (long long)sqlite3_column_int64(st, col));
    if (body == NULL || cJSON_AddStringToObject(obj, "id", num) == NULL ||
        cJSON_AddNumberToObject(obj, "version", (double)sqlite3_column_int64(st, col + 1)) ==
            NULL) {
        cJSON_Delete(body);
        return -1;
    }
    cJSON_AddItemToObject(obj, "body", body);
    if ((idem != NULL ? cJSON_AddStringToObject(obj, "idempotency_key", idem)
                      : cJSON_AddNullToObject(obj, "idempotency_key")) == NULL ||
        cJSON_AddStringToObject(obj, "created_at",
                                (const char *)sqlite3_column_text(st, col + 4)) == NULL ||
        cJSON_AddStringToObject(obj, "updated_at",
                                (const char *)sqlite3_column_text(st, col + 5)) == NULL)
        return -1;
    return 0;
}

/* Build the "entities" object: per entity "count" and (unless summary) "items". Caller
 * frees with cJSON_Delete; NULL on NOMEM or a SQLite error (logged). */
static cJSON *db_entities(struct fake *f, int summary)
{
    sqlite3_stmt *st = f->st[summary ? ST_COUNTS : ST_ALL];
    cJSON *ents = cJSON_CreateObject();
    int step;

    if (ents == NULL)
        goto fail;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *entity = (const char *)sqlite3_column_text(st, 0);
        cJSON *ent = cJSON_GetObjectItemCaseSensitive(ents, entity);
        if (ent == NULL) {
            ent = cJSON_AddObjectToObject(ents, entity);
            if (ent == NULL || cJSON_AddNumberToObject(ent, "count", 0) == NULL ||
                (!summary && cJSON_AddObjectToObject(ent, "items") == NULL))
                goto fail;
        }
        cJSON *count = cJSON_GetObjectItemCaseSensitive(ent, "count");
        if (summary) {
            cJSON_SetNumberValue(count, (double)sqlite3_column_int64(st, 1));
            continue;
        }
        cJSON_SetNumberValue(count, count->valuedouble + 1);
        cJSON *item = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(ent, "items"),
                                              (const char *)sqlite3_column_text(st, 1));
        if (item == NULL || add_item_fields(item, st, 2) != 0)
            goto fail;
    }
    if (step != SQLITE_DONE) {
        db_error(f, "list items");
        goto fail;
    }
    sqlite3_reset(st);
    return ents;
fail:
    sqlite3_reset(st);
    cJSON_Delete(ents);
    return NULL;
}

/* ---- settings and counters as JSON (need f->lock held) ------------------------------------ */

static cJSON *faults_json(const struct faults *fl)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL || cJSON_AddNumberToObject(j, "fail-rate", fl->fail_rate) == NULL ||
        cJSON_AddNumberToObject(j, "rate-limit-every", (double)fl->rate_limit_every) == NULL ||
        cJSON_AddNumberToObject(j, "retry-after", (double)fl->retry_after) == NULL ||
        cJSON_AddNumberToObject(j, "reset-rate", fl->reset_rate) == NULL ||
        cJSON_AddNumberToObject(j, "reset-after-rate", fl->reset_after_rate) == NULL ||
        cJSON_AddNumberToObject(j, "delay-ms", (double)fl->delay_ms) == NULL ||
        cJSON_AddBoolToObject(j, "auth-fail", fl->auth_fail) == NULL ||
        cJSON_AddNumberToObject(j, "malformed-rate", fl->malformed_rate) == NULL ||
        cJSON_AddNumberToObject(j, "seed", (double)fl->seed) == NULL) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *stats_json(const struct stats *s)
{
    char num[8];
    cJSON *j = cJSON_CreateObject();
    cJSON *by = j != NULL ? cJSON_AddObjectToObject(j, "by_status") : NULL;
    if (by == NULL)
        goto fail;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(s->by_status); i++) {
        if (s->by_status[i] == 0)
            continue;
        util_fmt(num, sizeof(num), "%zu", i);
        if (cJSON_AddNumberToObject(by, num, (double)s->by_status[i]) == NULL)
            goto fail;
    }
    if (cJSON_AddNumberToObject(j, "data_requests", (double)s->data_requests) == NULL ||
        cJSON_AddNumberToObject(j, "resets", (double)s->resets) == NULL ||
        cJSON_AddNumberToObject(j, "resets_applied", (double)s->resets_applied) == NULL ||
        cJSON_AddNumberToObject(j, "malformed", (double)s->malformed) == NULL ||
        cJSON_AddNumberToObject(j, "applied_writes", (double)s->applied_writes) == NULL ||
        cJSON_AddNumberToObject(j, "replays", (double)s->replays) == NULL ||
        cJSON_AddNumberToObject(j, "rejected", (double)s->rejected) == NULL)
        goto fail;
    return j;
fail:
    cJSON_Delete(j);
    return NULL;
}

/* Parse all of s as a fraction in [0, 1]. Returns ODSYNC_OK or ODSYNC_PARSE. */
static int parse_rate(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || end == NULL || *end != '\0' || errno != 0 || !(v >= 0.0 && v <= 1.0))
        return ODSYNC_PARSE;
    *out = v;
    return ODSYNC_OK;
}

/* One fault setting by name (flag name without "--"; '_' accepted for '-'). */
struct fault_field {
    const char *name;
    enum { FF_RATE, FF_INT, FF_BOOL } type;
    size_t offset;
    int64_t max; /* FF_INT: inclusive upper bound (lower bound 0) */
};

static const struct fault_field fault_fields[] = {
    {"fail-rate", FF_RATE, offsetof(struct faults, fail_rate), 0},
    {"rate-limit-every", FF_INT, offsetof(struct faults, rate_limit_every), INT32_MAX},
    {"retry-after", FF_INT, offsetof(struct faults, retry_after), FAKE_MAX_RETRY_S},
    {"reset-rate", FF_RATE, offsetof(struct faults, reset_rate), 0},
    {"reset-after-rate", FF_RATE, offsetof(struct faults, reset_after_rate), 0},
    {"delay-ms", FF_INT, offsetof(struct faults, delay_ms), FAKE_MAX_DELAY_MS},
    {"auth-fail", FF_BOOL, offsetof(struct faults, auth_fail), 0},
    {"malformed-rate", FF_RATE, offsetof(struct faults, malformed_rate), 0},
    {"seed", FF_INT, offsetof(struct faults, seed), (int64_t)FAKE_MAX_SEED},
};

/* The field called name ('_' matches '-'), or NULL. */
static const struct fault_field *fault_field_find(const char *name)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(fault_fields); i++) {
        const char *a = fault_fields[i].name, *b = name;
        while (*a != '\0' && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return &fault_fields[i];
    }
    return NULL;
}

/* Set field ff of fl from text (a command-line value). Returns ODSYNC_OK or ODSYNC_PARSE. */
static int fault_set_text(struct faults *fl, const struct fault_field *ff, const char *text)
{
    char *p = (char *)fl + ff->offset;
    if (ff->type == FF_RATE)
        return parse_rate(text, (double *)(void *)p);
    if (ff->type == FF_INT)
        return util_parse_i64(text, 0, ff->max, (int64_t *)(void *)p);
    return ODSYNC_PARSE; /* FF_BOOL flags take no value */
}

/* Set field ff of fl from a JSON value. Returns ODSYNC_OK or ODSYNC_PARSE. */
static int fault_set_json(struct faults *fl, const struct fault_field *ff, const cJSON *v)
{
    char *p = (char *)fl + ff->offset;
    if (ff->type == FF_BOOL) {
        if (!cJSON_IsBool(v))
            return ODSYNC_PARSE;
        *(int *)(void *)p = cJSON_IsTrue(v);
        return ODSYNC_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return ODSYNC_PARSE;
    if (ff->type == FF_RATE) {
        if (!(v->valuedouble >= 0.0 && v->valuedouble <= 1.0))
            return ODSYNC_PARSE;
        *(double *)(void *)p = v->valuedouble;
        return ODSYNC_OK;
    }
    if (v->valuedouble < 0.0 || v->valuedouble > (double)ff->max ||
        v->valuedouble != floor(v->valuedouble))
        return ODSYNC_PARSE;
    *(int64_t *)(void *)p = (int64_t)v->valuedouble;
    return ODSYNC_OK;
}

/* ---- admin routes ------------------------------------------------------------------------- */

/* GET /_state[?summary=1]. */
static void admin_state(struct fake *f, struct MHD_Connection *conn, struct answer *a)
{
    const char *summary = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "summary");
    int brief = summary != NULL && strcmp(summary, "0") != 0;
    cJSON *root = cJSON_CreateObject();

    pthread_mutex_lock(&f->lock);
    cJSON *ents = db_entities(f, brief);
    cJSON *stats = stats_json(&f->stats);
    cJSON *faults = faults_json(&f->faults);
    double requests = (double)f->stats.requests;
    pthread_mutex_unlock(&f->lock);

    if (root == NULL || ents == NULL || stats == NULL || faults == NULL) {
        cJSON_Delete(ents);
        cJSON_Delete(stats);
        cJSON_Delete(faults);
        cJSON_Delete(root);
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read state");
        return;
    }
    cJSON_AddItemToObject(root, "entities", ents);
    cJSON_AddItemToObject(root, "stats", stats);
    cJSON_AddItemToObject(root, "faults", faults);
    if (cJSON_AddNumberToObject(root, "requests", requests) == NULL) {
        cJSON_Delete(root);
        root = NULL;
    }
    answer_json(a, MHD_HTTP_OK, root);
}

/* GET /_items/{entity}/{id}; path is what follows "/_items/". */
static void admin_item(struct fake *f, const char *path, struct answer *a)
{
    char *entity = NULL, *id = NULL;
    cJSON *out = NULL;
    unsigned bad = split_path(path, &entity, &id);
    if (bad != 0) {
        answer_error(a, bad,
                     bad == MHD_HTTP_NOT_FOUND ? "not found" : "bad percent-encoding in the path");
        goto cleanup;
    }
    pthread_mutex_lock(&f->lock);
    sqlite3_stmt *st = f->st[ST_ONE];
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        out = cJSON_CreateObject();
        if (out != NULL &&
            (cJSON_AddStringToObject(out, "entity", entity) == NULL ||
             cJSON_AddStringToObject(out, "key", id) == NULL || add_item_fields(out, st, 0) != 0)) {
            cJSON_Delete(out);
            out = NULL;
        }
    } else if (step != SQLITE_DONE) {
        db_error(f, "select item");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&f->lock);
    if (step == SQLITE_DONE)
        answer_error(a, MHD_HTTP_NOT_FOUND, "no such item");
    else if (step == SQLITE_ROW)
        answer_json(a, MHD_HTTP_OK, out);
    else
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error");
cleanup:
    util_free(entity);
    util_free(id);
}

/* GET, POST or DELETE /_faults. POST changes the named settings (all or none); DELETE turns
 * every fault off (seed, retry-after and reset-after-rate kept). All answer the settings. */
static void admin_faults(struct fake *f, const char *method, const struct serve_upload *up,
                         struct answer *a)
{
    cJSON *body = NULL;
    int post = strcmp(method, "POST") == 0;
    struct faults next;
    int reseed = 0, recount = 0;
    char msg[160];

    if (post) {
        body = cJSON_ParseWithLength(up->body.data != NULL ? up->body.data : "", up->body.len);
        if (!cJSON_IsObject(body)) {
            answer_error(a, MHD_HTTP_BAD_REQUEST, "invalid JSON body: expected an object");
            goto cleanup;
        }
    }
    pthread_mutex_lock(&f->lock);
    next = f->faults;
    if (strcmp(method, "DELETE") == 0) {
        next.fail_rate = next.reset_rate = next.malformed_rate = 0.0;
        next.rate_limit_every = next.delay_ms = 0;
        next.auth_fail = 0;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, body)
    {
        const struct fault_field *ff = fault_field_find(v->string);
        if (ff == NULL || fault_set_json(&next, ff, v) != ODSYNC_OK) {
            pthread_mutex_unlock(&f->lock);
            util_fmt(msg, sizeof(msg), "%s fault setting \"%.60s\"",
                     ff == NULL ? "unknown" : "bad value for", v->string);
            answer_error(a, MHD_HTTP_BAD_REQUEST, msg);
            goto cleanup;
        }
        reseed |= strcmp(ff->name, "seed") == 0;
        recount |= strcmp(ff->name, "rate-limit-every") == 0;
    }
    f->faults = next;
    if (reseed)
        f->rng = (uint64_t)next.seed;
    if (recount || strcmp(method, "DELETE") == 0)
        f->rl_count = 0;
    cJSON *out = faults_json(&f->faults);
    pthread_mutex_unlock(&f->lock);
    if (post || strcmp(method, "DELETE") == 0)
        log_info(FAKE_LOG, "faults changed by %s /_faults", method);
    answer_json(a, MHD_HTTP_OK, out);
cleanup:
    cJSON_Delete(body);
}

/* POST /_reset: forget every item and zero the counters (fault settings kept; the PRNG and
 * the rate-limit count restart). */
static void admin_reset(struct fake *f, struct answer *a)
{
    pthread_mutex_lock(&f->lock);
    int rc = db_exec(f, ST_CLEAR);
    if (rc == ODSYNC_OK) {
        f->next_id = 0;
        memset(&f->stats, 0, sizeof(f->stats));
        f->rng = (uint64_t)f->faults.seed;
        f->rl_count = 0;
    }
    pthread_mutex_unlock(&f->lock);
    if (rc != ODSYNC_OK) {
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error");
        return;
    }
    log_info(FAKE_LOG, "state reset by POST /_reset");
    cJSON *out = cJSON_CreateObject();
    if (out != NULL && cJSON_AddBoolToObject(out, "reset", 1) == NULL) {
        cJSON_Delete(out);
        out = NULL;
    }
    answer_json(a, MHD_HTTP_OK, out);
}

/* Route an admin request (url starts with "/_" and names an admin route). Returns 1 when url
 * is an admin route (a is then set), 0 when it is not. */
static int route_admin(struct fake *f, struct MHD_Connection *conn, const char *url,
                       const char *method, const struct serve_upload *up, struct answer *a)
{
    int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    int state = strcmp(url, "/_state") == 0, faults = strcmp(url, "/_faults") == 0;
    int reset = strcmp(url, "/_reset") == 0, item = strncmp(url, "/_items/", 8) == 0;
    if (!state && !faults && !reset && !item)
        return 0;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    /* Every admin route needs the token. */
    if (!util_secure_equal(auth != NULL ? auth : "", f->bearer))
        answer_error(a, MHD_HTTP_UNAUTHORIZED, "invalid or missing bearer token");
    else if (up->too_big)
        answer_error(a, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 16 MiB");
    else if (state && is_get)
        admin_state(f, conn, a);
    else if (item && is_get)
        admin_item(f, url + 8, a);
    else if (faults && (is_get || is_post || strcmp(method, "DELETE") == 0))
        admin_faults(f, method, up, a);
    else if (reset && is_post)
        admin_reset(f, a);
    else
        answer_error(a, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    return 1;
}

/* ---- data routes -------------------------------------------------------------------------- */

/* PUT /{entity}/{id} with a parsed body; up holds its text, stored as sent. */
static void serve_put(struct fake *f, struct MHD_Connection *conn, const char *entity,
                      const char *id, const cJSON *body, const struct serve_upload *up,
                      struct answer *a)
{
    const char *idem = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    char num[24];
    int64_t remote_id = 0;
    int created = 0, replay = 0, rc;

    if (!cJSON_IsObject(body)) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "invalid JSON body: expected an object");
        return;
    }
    if (has_reject(body)) {
        pthread_mutex_lock(&f->lock);
        f->stats.rejected++;
        pthread_mutex_unlock(&f->lock);
        answer_error(a, MHD_HTTP_UNPROCESSABLE_CONTENT, FAKE_REJECT_MSG);
        return;
    }
    pthread_mutex_lock(&f->lock);
    rc = db_write(f, entity, id, up->body.data, up->body.len, idem, &remote_id, &created, &replay);
    if (rc == ODSYNC_OK) {
        f->stats.applied_writes += !replay;
        f->stats.replays += replay;
    }
    pthread_mutex_unlock(&f->lock);
    if (rc != ODSYNC_OK) {
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error");
        return;
    }
    cJSON *out = cJSON_CreateObject();
    util_fmt(num, sizeof(num), "%lld", (long long)remote_id);
    if (out != NULL && (cJSON_AddStringToObject(out, "id", num) == NULL ||
                        cJSON_AddBoolToObject(out, "created", created) == NULL)) {
        cJSON_Delete(out);
        out = NULL;
    }
    answer_json(a, created ? MHD_HTTP_CREATED : MHD_HTTP_OK, out);
}

/* Fill one batch result res for rec (already known to be an object with a string "key"):
 * a 422 for a REJECT record, else the write. text is rec's JSON (borrowed). Needs f->lock.
 * Returns ODSYNC_OK, ODSYNC_IO (storage) or ODSYNC_NOMEM. */
static int batch_item(struct fake *f, const char *entity, const cJSON *rec, const char *text,
                      cJSON *res, int64_t *applied)
{
    const char *key = cJSON_GetObjectItemCaseSensitive(rec, "key")->valuestring;
    char num[24];
    int64_t remote_id;
    int created, replay;

    if (text == NULL) {
        if (cJSON_AddNumberToObject(res, "status", MHD_HTTP_UNPROCESSABLE_CONTENT) == NULL ||
            cJSON_AddStringToObject(res, "error", FAKE_REJECT_MSG) == NULL)
            return ODSYNC_NOMEM;
        return ODSYNC_OK;
    }
    if (db_write(f, entity, key, text, strlen(text), NULL, &remote_id, &created, &replay) !=
        ODSYNC_OK)
        return ODSYNC_IO;
    (*applied)++;
    util_fmt(num, sizeof(num), "%lld", (long long)remote_id);
    if (cJSON_AddStringToObject(res, "id", num) == NULL ||
        cJSON_AddStringToObject(res, "status", "ok") == NULL ||
        cJSON_AddBoolToObject(res, "created", created) == NULL)
        return ODSYNC_NOMEM;
    return ODSYNC_OK;
}

/* POST /{entity}/batch with a parsed body. The whole batch is one SQLite transaction. */
static void serve_batch(struct fake *f, const char *entity, const cJSON *body, struct answer *a)
{
    char *texts[FAKE_MAX_BATCH] = {0}; /* owned (cJSON_free): each storable record's JSON */
    cJSON *out = NULL;
    const cJSON *rec;
    int n = 0, rc = ODSYNC_OK, locked = 0;
    int64_t applied = 0, rejected = 0, next_id = 0;

    if (!cJSON_IsArray(body)) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "invalid JSON body: expected an array");
        return;
    }
    if (cJSON_GetArraySize(body) > FAKE_MAX_BATCH) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "batch larger than 100 items");
        return;
    }
    /* Serialise outside the lock; a REJECT record keeps a NULL text. */
    cJSON_ArrayForEach(rec, body)
    {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(rec, "key");
        if (cJSON_IsObject(rec) && cJSON_IsString(key) && key->valuestring[0] != '\0' &&
            !has_reject(rec)) {
            texts[n] = cJSON_PrintUnformatted(rec);
            if (texts[n] == NULL) {
                rc = ODSYNC_NOMEM;
                goto cleanup;
            }
        }
        n++;
    }
    out = cJSON_CreateArray();
    if (out == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    pthread_mutex_lock(&f->lock);
    locked = 1;
    next_id = f->next_id;
    rc = db_exec(f, ST_BEGIN);
    n = 0;
    cJSON_ArrayForEach(rec, body)
    {
        if (rc != ODSYNC_OK)
            break;
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(rec, "key");
        cJSON *res = cJSON_CreateObject();
        if (res == NULL) {
            rc = ODSYNC_NOMEM;
            break;
        }
        cJSON_AddItemToArray(out, res);
        if (!cJSON_IsObject(rec) || !cJSON_IsString(key) || key->valuestring[0] == '\0') {
            if (cJSON_AddStringToObject(res, "status", "error") == NULL ||
                cJSON_AddStringToObject(res, "error",
                                        "item is not an object with a string \"key\"") == NULL)
                rc = ODSYNC_NOMEM;
        } else {
            rejected += texts[n] == NULL;
            rc = batch_item(f, entity, rec, texts[n], res, &applied);
        }
        n++;
    }
    if (rc == ODSYNC_OK)
        rc = db_exec(f, ST_COMMIT);
    if (rc == ODSYNC_OK) {
        f->stats.applied_writes += applied;
        f->stats.rejected += rejected;
    } else {
        db_exec(f, ST_ROLLBACK);
        f->next_id = next_id; /* the rollback undid this batch's creates */
    }
cleanup:
    if (locked)
        pthread_mutex_unlock(&f->lock);
    for (int i = 0; i < FAKE_MAX_BATCH; i++)
        cJSON_free(texts[i]);
    if (rc == ODSYNC_OK) {
        answer_json(a, MHD_HTTP_OK, out);
        out = NULL;
    } else if (rc == ODSYNC_IO) {
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "storage error");
    } /* NOMEM: a stays empty, the connection is closed */
    cJSON_Delete(out);
}

/* Decide the fault for one data request and count it (takes f->lock). *delay_ms and
 * *retry_after get the current settings; *malformed says whether a 2xx answer is garbled.
 * Always draws four numbers so a seed gives the same sequence whatever is switched on. */
static enum fault decide_fault(struct fake *f, int64_t *delay_ms, int64_t *retry_after,
                               int *malformed)
{
    enum fault out = F_NONE;
    pthread_mutex_lock(&f->lock);
    const struct faults *fl = &f->faults;
    double u_fail = rng_unit(&f->rng), u_reset = rng_unit(&f->rng);
    double u_after = rng_unit(&f->rng), u_malformed = rng_unit(&f->rng);
    f->stats.data_requests++;
    f->rl_count++;
    if (fl->auth_fail)
        out = F_AUTH;
    else if (fl->rate_limit_every > 0 && f->rl_count % fl->rate_limit_every == 0)
        out = F_RATE_LIMIT;
    else if (u_fail < fl->fail_rate)
        out = F_FAIL;
    else if (u_reset < fl->reset_rate)
        out = u_after < fl->reset_after_rate ? F_RESET_AFTER : F_RESET_BEFORE;
    *malformed = u_malformed < fl->malformed_rate;
    *delay_ms = fl->delay_ms;
    *retry_after = fl->retry_after;
    pthread_mutex_unlock(&f->lock);
    return out;
}

/* A data request: every URL that is not an admin route. url is the raw path. */
static void route_data(struct fake *f, struct MHD_Connection *conn, const char *url,
                       const char *method, const struct serve_upload *up, struct answer *a)
{
    char *entity = NULL, *id = NULL;
    cJSON *body = NULL;
    int64_t delay_ms, retry_after;
    int malformed;

    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!util_secure_equal(auth != NULL ? auth : "", f->bearer)) {
        answer_error(a, MHD_HTTP_UNAUTHORIZED, "invalid or missing bearer token");
        goto cleanup;
    }
    if (up->too_big) {
        answer_error(a, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 16 MiB");
        goto cleanup;
    }
    unsigned bad = url[0] == '/' ? split_path(url + 1, &entity, &id) : MHD_HTTP_NOT_FOUND;
    if (bad != 0) {
        answer_error(a, bad,
                     bad == MHD_HTTP_NOT_FOUND ? "not found" : "bad percent-encoding in the path");
        goto cleanup;
    }
    int is_batch = strcmp(strrchr(url, '/') + 1, "batch") == 0;
    int is_put = strcmp(method, "PUT") == 0;
    if (!(is_put || (is_batch && strcmp(method, "POST") == 0))) {
        answer_error(a, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        goto cleanup;
    }

    enum fault fault = decide_fault(f, &delay_ms, &retry_after, &malformed);
    if (delay_ms > 0)
        sleep_ms(f, delay_ms);
    switch (fault) {
    case F_AUTH:
        answer_error(a, MHD_HTTP_UNAUTHORIZED, "invalid token");
        goto cleanup;
    case F_RATE_LIMIT:
        answer_error(a, MHD_HTTP_TOO_MANY_REQUESTS, "rate limited");
        a->retry_after = retry_after;
        goto cleanup;
    case F_FAIL:
        answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "injected");
        goto cleanup;
    case F_RESET_BEFORE:
        a->status = 0;
        goto cleanup;
    case F_NONE:
    case F_RESET_AFTER:
        break;
    }

    body = cJSON_ParseWithLength(up->body.data != NULL ? up->body.data : "", up->body.len);
    if (body == NULL)
        answer_error(a, MHD_HTTP_BAD_REQUEST, "invalid JSON body");
    else if (is_put)
        serve_put(f, conn, entity, id, body, up, a);
    else
        serve_batch(f, entity, body, a);
    if (fault == F_RESET_AFTER) {
        pthread_mutex_lock(&f->lock);
        f->stats.resets_applied += a->status >= 200 && a->status < 300;
        pthread_mutex_unlock(&f->lock);
        a->status = 0;
    } else if (malformed && a->status >= 200 && a->status < 300) {
        util_free(a->body);
        a->body = util_strdup(FAKE_MALFORMED);
        a->status = MHD_HTTP_OK;
        a->type = "text/html";
        pthread_mutex_lock(&f->lock);
        f->stats.malformed++;
        pthread_mutex_unlock(&f->lock);
    }
cleanup:
    cJSON_Delete(body);
    util_free(entity);
    util_free(id);
}

/* ---- MHD callbacks ------------------------------------------------------------------------ */

/* MHD access handler: collect the body, then route and answer. */
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
        pthread_mutex_lock(&f->lock);
        f->stats.requests++;
        pthread_mutex_unlock(&f->lock);
        route_data(f, conn, url, method, up, &a);
        pthread_mutex_lock(&f->lock);
        if (a.status == 0)
            f->stats.resets++;
        else if (a.status < UTIL_ARRAY_LEN(f->stats.by_status))
            f->stats.by_status[a.status]++;
        pthread_mutex_unlock(&f->lock);
        log_debug(FAKE_LOG, "%s %s (%zu bytes): %u", method, url, up->body.len, a.status);
    }
    return send_answer(conn, &a);
}

/* MHD unescape callback: keep the path as sent, so "/" inside an encoded id survives and
 * the routes decode each part themselves. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* ---- start-up ----------------------------------------------------------------------------- */

/* Open path (":memory:" for none), create the schema, prepare every statement and load the
 * last remote id. Returns ODSYNC_OK or ODSYNC_IO after printing why. */
static int db_open(struct fake *f, const char *path)
{
    char *err = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = ODSYNC_IO;

    if (sqlite3_open_v2(path, &f->db, flags, NULL) != SQLITE_OK) {
        fprintf(stderr, "fake_rest_crm: cannot open %s: %s\n", path,
                f->db != NULL ? sqlite3_errmsg(f->db) : "out of memory");
        goto cleanup;
    }
    sqlite3_busy_timeout(f->db, 5000);
    if (sqlite3_exec(f->db, schema_sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "fake_rest_crm: %s: %s\n", path, err != NULL ? err : "schema failed");
        goto cleanup;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(f->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &f->st[i],
                               NULL) != SQLITE_OK) {
            fprintf(stderr, "fake_rest_crm: %s: %s\n", path, sqlite3_errmsg(f->db));
            goto cleanup;
        }
    }
    if (sqlite3_step(f->st[ST_MAXID]) != SQLITE_ROW) {
        fprintf(stderr, "fake_rest_crm: %s: %s\n", path, sqlite3_errmsg(f->db));
        goto cleanup;
    }
    f->next_id = sqlite3_column_int64(f->st[ST_MAXID], 0);
    rc = ODSYNC_OK;
cleanup:
    if (f->st[ST_MAXID] != NULL)
        sqlite3_reset(f->st[ST_MAXID]);
    sqlite3_free(err);
    return rc;
}

/* Finalize every statement and close the database; accepts a partly opened f. */
static void db_close(struct fake *f)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(f->st[i]);
        f->st[i] = NULL;
    }
    sqlite3_close(f->db);
    f->db = NULL;
}

static void usage(FILE *out)
{
    fputs("usage: fake_rest_crm --token TOKEN [options]\n"
          "\n"
          "A fake CRM speaking odsync's REST wire protocol (plugins/rest/README.md), with\n"
          "SQLite storage, fault injection and an admin API. See contrib/fakes/README.md.\n"
          "\n"
          "  --token TOKEN           bearer token every data request must carry (required)\n"
          "  --listen A.B.C.D:PORT   address to listen on (default 127.0.0.1:0, a free port)\n"
          "  --db FILE               SQLite database for the items (default: in memory)\n"
          "  --state-file FILE       deprecated alias of --db\n"
          "  --verbose               log one line per request on stderr\n"
          "  --help                  this text\n"
          "\n"
          "Faults (data requests only; change at run time with POST /_faults):\n"
          "  --fail-rate P           fraction 0..1 answered 500 {\"error\":\"injected\"}\n"
          "  --rate-limit-every N    every Nth data request answers 429 (0 = off)\n"
          "  --retry-after S         Retry-After seconds of those 429s (default 1)\n"
          "  --reset-rate P          fraction 0..1 whose connection is reset, no answer\n"
          "  --reset-after-rate P    fraction of resets after applying the write (default 0.5)\n"
          "  --delay-ms N            wait N ms before answering each data request\n"
          "  --auth-fail             answer every data request 401 {\"error\":\"invalid token\"}\n"
          "  --malformed-rate P      fraction 0..1 of 2xx answers replaced by 200 \"" FAKE_MALFORMED
          "\"\n"
          "  --seed N                PRNG seed for the rates (default 1)\n"
          "\n"
          "Prints \"listening on 127.0.0.1:PORT\" when ready. SIGTERM/SIGINT exit 0; bad flags "
          "exit 2.\n",
          out);
}

/* Command-line options; strings borrowed from argv. */
struct options {
    const char *listen_at;
    const char *token;
    const char *db;
    int verbose;
    int help;
};

/* Parse argv into o and f->faults. "--name VALUE" and "--name=VALUE" both work. Returns
 * ODSYNC_OK, or ODSYNC_PARSE after printing why on stderr. */
static int parse_args(int argc, char **argv, struct options *o, struct faults *fl)
{
    for (int i = 1; i < argc; i++) {
        char name[40];
        const char *arg = argv[i], *value = NULL, *eq = strchr(arg, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || nlen >= sizeof(name)) {
            fprintf(stderr, "fake_rest_crm: unknown argument \"%s\" (see --help)\n", arg);
            return ODSYNC_PARSE;
        }
        memcpy(name, arg + 2, nlen - 2);
        name[nlen - 2] = '\0';
        /* Flags are spelled with '-' only ('_' is for POST /_faults JSON). */
        const struct fault_field *ff = strchr(name, '_') == NULL ? fault_field_find(name) : NULL;
        int flag = strcmp(name, "help") == 0 || strcmp(name, "verbose") == 0 ||
                   (ff != NULL && ff->type == FF_BOOL);
        int known = flag || ff != NULL || strcmp(name, "listen") == 0 ||
                    strcmp(name, "token") == 0 || strcmp(name, "db") == 0 ||
                    strcmp(name, "state-file") == 0;
        if (!known) {
            fprintf(stderr, "fake_rest_crm: unknown flag --%s (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (flag) {
            if (eq != NULL) {
                fprintf(stderr, "fake_rest_crm: --%s takes no value\n", name);
                return ODSYNC_PARSE;
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "fake_rest_crm: --%s needs a value (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (strcmp(name, "help") == 0)
            o->help = 1;
        else if (strcmp(name, "verbose") == 0)
            o->verbose = 1;
        else if (strcmp(name, "listen") == 0)
            o->listen_at = value;
        else if (strcmp(name, "token") == 0)
            o->token = value;
        else if (strcmp(name, "db") == 0 || strcmp(name, "state-file") == 0)
            o->db = value;
        else if (ff != NULL && ff->type == FF_BOOL)
            *(int *)(void *)((char *)fl + ff->offset) = 1;
        else if (fault_set_text(fl, ff, value) != ODSYNC_OK) {
            fprintf(stderr, "fake_rest_crm: --%s: bad value \"%s\" (%s)\n", name, value,
                    ff->type == FF_RATE ? "expected a number from 0 to 1"
                                        : "expected a non-negative integer in range");
            return ODSYNC_PARSE;
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

    f.faults = (struct faults){.retry_after = 1, .reset_after_rate = 0.5, .seed = 1};
    if (parse_args(argc, argv, &o, &f.faults) != ODSYNC_OK)
        goto cleanup;
    if (o.help) {
        usage(stdout);
        rc = 0;
        goto cleanup;
    }
    if (o.token == NULL || o.token[0] == '\0') {
        fprintf(stderr, "fake_rest_crm: --token is required (see --help)\n");
        goto cleanup;
    }
    if (serve_parse_listen(o.listen_at, &addr) != ODSYNC_OK) {
        fprintf(stderr, "fake_rest_crm: --listen: expected A.B.C.D:PORT, got \"%s\"\n",
                o.listen_at);
        goto cleanup;
    }
    rc = 1;
    log_setup(stderr, o.verbose ? ODSYNC_LOG_DEBUG : ODSYNC_LOG_INFO, LOG_TEXT);
    if (pthread_mutex_init(&f.lock, NULL) != 0) {
        fprintf(stderr, "fake_rest_crm: cannot create a mutex\n");
        goto cleanup;
    }
    locked_init = 1;
    f.rng = (uint64_t)f.faults.seed;
    size_t blen = strlen(o.token) + 8;
    f.bearer = util_malloc(blen);
    if (f.bearer == NULL || log_add_secret(o.token) != ODSYNC_OK) {
        fprintf(stderr, "fake_rest_crm: out of memory\n");
        goto cleanup;
    }
    util_fmt(f.bearer, blen, "Bearer %s", o.token);
    if (db_open(&f, o.db) != ODSYNC_OK)
        goto cleanup;

    /* MHD's threads inherit this mask, so only sigwait() below sees the signals. */
    serve_block_signals(&sigs);

    d = serve_start(&addr, on_request, &f, keep_escaped);
    if (d == NULL) {
        fprintf(stderr, "fake_rest_crm: cannot listen on %s\n", o.listen_at);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    printf("listening on %s:%u\n", host, info != NULL ? (unsigned)info->port : 0u);
    fflush(stdout);
    log_info(FAKE_LOG, "listening on %s:%u, items in %s", host,
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
    log_shutdown();
    return rc;
}
