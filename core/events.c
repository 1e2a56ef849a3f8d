/*
 * events.c: the API Events webhook, the inbox, and its worker.
 */
#include "events.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "model.h"
#include "od_rest.h"
#include "project.h"
#include "util.h"

#define ROUTE "/api/od/events/"

/* The database events odsync subscribes to, and each one's key fields. */
static const struct watch {
    const char *table;
    const char *keys[2];
} watches[] = {
    {"Patient", {"PatNum", NULL}},
    {"Appointment", {"AptNum", "PatNum"}},
    {"AppointmentDeleted", {"AptNum", NULL}},
};

struct events {
    const struct config *cfg;
    struct store *st;
    pthread_mutex_t lock; /* the connection is used by one request at a time */
    void (*notify)(void *arg);
    void *notify_arg;
};

int events_create(const struct config *cfg, const char *store_path, struct events **out, char *err,
                  size_t errlen)
{
    struct events *ev = util_calloc(1, sizeof(*ev));
    int rc;
    *out = NULL;
    if (ev == NULL)
        return ODSYNC_NOMEM;
    ev->cfg = cfg;
    pthread_mutex_init(&ev->lock, NULL);
    rc = store_open(store_path, &ev->st, err, errlen);
    if (rc != ODSYNC_OK) {
        events_destroy(ev);
        return rc;
    }
    *out = ev;
    return ODSYNC_OK;
}

void events_destroy(struct events *ev)
{
    if (ev == NULL)
        return;
    store_close(ev->st);
    pthread_mutex_destroy(&ev->lock);
    util_free(ev);
}

void events_set_notify(struct events *ev, void (*notify)(void *arg), void *arg)
{
    ev->notify = notify;
    ev->notify_arg = arg;
}

/* The watched table named by Event-Type ("WatchTable: Patient") or ?table=; NULL when none
 * is named. *named says whether one was named at all. */
static const struct watch *watch_of(const struct http_request *req, char *name, size_t len)
{
    const char *et = http_request_header(req, "Event-Type");
    const char *t = http_request_arg(req, "table");
    size_t i;
    name[0] = '\0';
    if (et != NULL && strncasecmp(et, "WatchTable:", 11) == 0) {
        et += 11;
        while (isspace((unsigned char)*et))
            et++;
        util_fmt(name, len, "%s", et);
    } else if (t != NULL) {
        util_fmt(name, len, "%s", t);
    }
    for (i = 0; i < UTIL_ARRAY_LEN(watches); i++)
        if (strcasecmp(name, watches[i].table) == 0)
            return &watches[i];
    return NULL;
}

/* 1 when v is a positive integer (a number or a numeric string). */
static int positive_int(const cJSON *v)
{
    int64_t n;
    if (cJSON_IsNumber(v))
        return util_double_i64(v->valuedouble, &n) && n >= 1;
    return cJSON_IsString(v) && util_parse_i64(v->valuestring, 1, INT64_MAX, &n) == ODSYNC_OK;
}

/* Check every row: an object with its keys. 0, or the index of the first bad row with why. */
static int check_rows(const cJSON *rows, const struct watch *w, char *why, size_t len)
{
    const cJSON *row;
    int i = 0;
    size_t k;
    cJSON_ArrayForEach(row, rows)
    {
        if (!cJSON_IsObject(row)) {
            util_fmt(why, len, "row %d: expected an object", i);
            return -1;
        }
        for (k = 0; k < 2 && w->keys[k] != NULL; k++) {
            if (!positive_int(cJSON_GetObjectItemCaseSensitive(row, w->keys[k]))) {
                util_fmt(why, len, "row %d: %s missing or not a positive integer", i, w->keys[k]);
                return -1;
            }
        }
        i++;
    }
    return 0;
}

struct inbox_args {
    const char *office, *table, *workstation, *body;
    int rows;
    int64_t id;
};

/* Store one batch and the office's event time (inside store_tx). */
static int inbox_tx(struct store *st, void *arg)
{
    struct inbox_args *a = arg;
    int64_t now = util_now_ms();
    sqlite3_stmt *s = store_stmt(st, "INSERT INTO od_inbox (office, watch_table, workstation,"
                                     " rows, body, received_at) VALUES (?, ?, ?, ?, ?, ?)");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, a->workstation, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, a->rows);
    sqlite3_bind_text(s, 5, a->body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, now);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return ODSYNC_STORE;
    a->id = sqlite3_last_insert_rowid(store_db(st));
    s = store_stmt(st, "INSERT INTO od_event_state (office, watch_table, last_event_at, batches,"
                       " rows) VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT (office, watch_table) DO"
                       " UPDATE SET last_event_at = ?3, batches = batches + 1, rows = rows + ?4");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->table, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_int(s, 4, a->rows);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* Validate a database event's body and commit it. */
static void accept_batch(struct events *ev, const struct http_request *req,
                         const struct config_office *off, struct http_reply *reply)
{
    char name[64], why[128];
    const struct watch *w = watch_of(req, name, sizeof(name));
    cJSON *body = cJSON_ParseWithLength(req->body, req->body_len);
    struct inbox_args a = {off->id, NULL, http_request_header(req, "Workstation"), NULL, 0, 0};
    struct sbuf ok = {0};
    int rc;

    if (body == NULL) {
        http_reply_error(reply, 400, "body is not valid JSON");
        goto cleanup;
    }
    if (cJSON_IsObject(body)) { /* a UI event (PatientSelected): nothing to keep */
        sbuf_puts(&ok, "{\"accepted\":0,\"ignored\":\"ui event\"}");
        reply->status = 200;
        reply->body = sbuf_take(&ok);
        goto cleanup;
    }
    if (!cJSON_IsArray(body)) {
        http_reply_error(reply, 400, "expected a JSON array of rows, got %s",
                         config_json_type(body));
        goto cleanup;
    }
    if (w == NULL) {
        http_reply_error(reply, 400,
                         "WatchTable %s%s%s is not one odsync subscribes to (Patient, Appointment, "
                         "AppointmentDeleted)",
                         name[0] ? "'" : "(none named", name[0] ? name : ")", name[0] ? "'" : "");
        goto cleanup;
    }
    a.rows = cJSON_GetArraySize(body);
    if (a.rows > EVENTS_MAX_ROWS) {
        http_reply_error(reply, 400, "%d rows: an event holds at most %d", a.rows, EVENTS_MAX_ROWS);
        goto cleanup;
    }
    if (check_rows(body, w, why, sizeof(why)) != 0) {
        http_reply_error(reply, 400, "%s", why);
        goto cleanup;
    }
    a.table = w->table;
    a.body = req->body;
    pthread_mutex_lock(&ev->lock);
    rc = store_tx(ev->st, inbox_tx, &a);
    pthread_mutex_unlock(&ev->lock);
    if (rc != ODSYNC_OK) {
        log_error("events", "office %s: cannot store a %s batch: %s", off->id, w->table,
                  odsync_status_name(rc));
        http_reply_error(reply, 503, "cannot store the batch now; send it again");
        goto cleanup;
    }
    if (ev->notify != NULL)
        ev->notify(ev->notify_arg);
    sbuf_printf(&ok, "{\"accepted\":%d}", a.rows);
    reply->status = 200;
    reply->body = sbuf_take(&ok);
cleanup:
    cJSON_Delete(body);
}

void events_http_handler(void *arg, const struct http_request *req, struct http_reply *reply)
{
    struct events *ev = arg;
    const struct config_office *off;
    const char *auth;

    if (strncmp(req->path, ROUTE, strlen(ROUTE)) != 0) {
        http_reply_error(reply, 404, "no such path");
        return;
    }
    off = config_find_office(ev->cfg, req->path + strlen(ROUTE));
    if (off == NULL) {
        http_reply_error(reply, 404, "no such office");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_reply_error(reply, 405, "use POST");
        return;
    }
    auth = http_request_header(req, "Authorization");
    if (!util_secure_equal(auth ? auth : "", off->od_customer_key)) {
        log_warn("events", "office %s: an event with a wrong key was refused", off->id);
        http_reply_error(reply, 401, "invalid key");
        return;
    }
    if (!util_utf8_valid(req->body, req->body_len)) {
        http_reply_error(reply, 400, "body is not valid UTF-8");
        return;
    }
    accept_batch(ev, req, off, reply);
}

/* ---- the worker ---------------------------------------------------------------------- */

/* Apply one row of a batch. */
static int apply_row(struct store *st, const char *office, const char *table, const cJSON *row,
                     int *changed)
{
    struct model_patient p;
    struct model_appointment a;
    char why[128];
    int rc;
    *changed = 0;
    if (strcmp(table, "Patient") == 0) {
        rc = od_rest_patient(row, &p, why, sizeof(why));
        if (rc == ODSYNC_OK)
            rc = model_put_patient(st, office, &p, changed);
        model_patient_clear(&p);
    } else if (strcmp(table, "Appointment") == 0) {
        rc = od_rest_appointment(row, &a, why, sizeof(why));
        if (rc == ODSYNC_OK)
            rc = model_put_appointment(st, office, &a, changed);
        model_appointment_clear(&a);
    } else {
        rc = model_delete_appointment(st, office, od_rest_hist_aptnum(row), changed);
    }
    if (rc == ODSYNC_PARSE)
        log_warn("events", "office %s: %s event row skipped: %s", office, table, why);
    return rc;
}

#define APPLY_CHUNK 100 /* rows per transaction: keeps the write lock short for the webhook */

struct batch_args {
    int64_t id;
    const char *office, *table;
    const cJSON *rows; /* the parsed batch */
    int progress;      /* rows already applied (committed) */
    int64_t applied, skipped;
};

/* Apply the next chunk of a batch's rows and record the progress, in one transaction; the
 * batch is done with its last chunk. A crash between chunks resumes after the last one. */
static int chunk_tx(struct store *st, void *arg)
{
    struct batch_args *a = arg;
    int n = cJSON_GetArraySize(a->rows), end = a->progress + APPLY_CHUNK, i, changed;
    int64_t applied = 0, skipped = 0;
    sqlite3_stmt *s;
    int rc = ODSYNC_OK;

    if (end > n)
        end = n;
    for (i = a->progress; i < end && rc == ODSYNC_OK; i++) {
        rc = apply_row(st, a->office, a->table, cJSON_GetArrayItem(a->rows, i), &changed);
        if (rc == ODSYNC_PARSE) {
            skipped++;
            rc = ODSYNC_OK;
        } else if (rc == ODSYNC_OK) {
            applied += changed;
        }
    }
    if (rc != ODSYNC_OK)
        return rc;
    s = store_stmt(st, "UPDATE od_inbox SET progress = ?1, applied = applied + ?2,"
                       " skipped = skipped + ?3, state = CASE WHEN ?1 >= rows THEN 'done'"
                       " ELSE 'new' END, processed_at = ?4 WHERE id = ?5");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int(s, 1, end);
    sqlite3_bind_int64(s, 2, applied);
    sqlite3_bind_int64(s, 3, skipped);
    sqlite3_bind_int64(s, 4, util_now_ms());
    sqlite3_bind_int64(s, 5, a->id);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return ODSYNC_STORE;
    a->progress = end;
    a->applied += applied;
    a->skipped += skipped;
    return ODSYNC_OK;
}

/* Apply one batch from its recorded progress to the end. */
static int apply_batch(struct store *st, struct batch_args *a, const char *body)
{
    cJSON *rows = cJSON_Parse(body);
    int rc = ODSYNC_OK, n;
    if (rows == NULL)
        rows = cJSON_CreateArray(); /* validated on receipt; only NOMEM gets here */
    if (rows == NULL)
        return ODSYNC_NOMEM;
    a->rows = rows;
    n = cJSON_GetArraySize(rows);
    do {
        rc = store_tx(st, chunk_tx, a);
    } while (rc == ODSYNC_OK && a->progress < n);
    cJSON_Delete(rows);
    a->rows = NULL;
    return rc;
}

int events_process(struct store *st, const struct config *cfg, size_t max_batches,
                   struct events_stats *stats)
{
    sqlite3_stmt *s;
    struct batch_args a;
    struct project_stats ps;
    unsigned char *touched = util_calloc(cfg->n_offices ? cfg->n_offices : 1, 1);
    size_t n = 0, i;
    int rc = ODSYNC_OK;

    if (touched == NULL)
        return ODSYNC_NOMEM;
    while (n < max_batches && rc == ODSYNC_OK) {
        const struct config_office *off;
        char *office = NULL, *table = NULL, *body = NULL;
        s = store_stmt(st, "SELECT id, office, watch_table, body, progress FROM od_inbox"
                           " WHERE state = 'new' ORDER BY id LIMIT 1");
        if (s == NULL) {
            rc = ODSYNC_STORE;
            break;
        }
        if (sqlite3_step(s) != SQLITE_ROW) {
            sqlite3_reset(s);
            break;
        }
        memset(&a, 0, sizeof(a));
        a.id = sqlite3_column_int64(s, 0);
        office = util_strdup((const char *)sqlite3_column_text(s, 1));
        table = util_strdup((const char *)sqlite3_column_text(s, 2));
        body = util_strdup((const char *)sqlite3_column_text(s, 3));
        a.progress = sqlite3_column_int(s, 4);
        sqlite3_reset(s);
        off = office ? config_find_office(cfg, office) : NULL;
        a.office = off ? off->id : "";
        a.table = table;
        rc = office && table && body
                 ? apply_batch(st, &a, off ? body : "[]") /* an office no longer configured */
                 : ODSYNC_NOMEM;
        if (rc == ODSYNC_OK) {
            stats->batches++;
            stats->applied += a.applied;
            stats->skipped += a.skipped;
            if (off != NULL)
                touched[off - cfg->offices] = 1;
        }
        util_free(office);
        util_free(table);
        util_free(body);
        n++;
    }
    for (i = 0; i < cfg->n_offices && rc == ODSYNC_OK; i++)
        if (touched[i])
            rc = project_office(st, &cfg->offices[i], &ps);
    util_free(touched);
    return rc;
}

int events_last(struct store *st, const char *office, const char *table, int64_t *last_ms)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT last_event_at FROM od_event_state"
                                     " WHERE office = ? AND watch_table = ?");
    int rc;
    *last_ms = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, table, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *last_ms = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

int events_office_last(struct store *st, const char *office, int64_t *last_ms)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT COALESCE(MAX(last_event_at), 0) FROM od_event_state"
                                     " WHERE office = ?");
    int rc;
    *last_ms = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *last_ms = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : ODSYNC_STORE;
}

int events_pending(struct store *st, int64_t *batches)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT COUNT(*) FROM od_inbox WHERE state = 'new'");
    int rc;
    *batches = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *batches = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : ODSYNC_STORE;
}
