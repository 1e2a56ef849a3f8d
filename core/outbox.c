/*
 * outbox.c: the durable delivery queue.
 */
#include "outbox.h"

#include <string.h>

#include "util.h"

/* Step a prepared statement that returns no rows; reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return ODSYNC_OK;
    return store_status(rc) == ODSYNC_OK ? ODSYNC_STORE : store_status(rc);
}

int outbox_enqueue(struct store *st, const char *sink, const char *office, const char *key,
                   int kind, int64_t version, const char *body)
{
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO outbox (sink, office, key, kind, version, body, created_at, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
            " ON CONFLICT (sink, office, key) DO UPDATE SET kind = ?4, version = ?5, body = ?6,"
            " state = CASE WHEN state = 'inflight' THEN 'inflight' ELSE 'pending' END,"
            " attempts = 0, next_at = 0, updated_at = ?7"
            " WHERE excluded.version > outbox.version");
    int64_t now = util_now_ms();
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, kind);
    sqlite3_bind_int64(s, 5, version);
    sqlite3_bind_text(s, 6, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, now);
    return step_done(s);
}

/* Copy column i as an owned string (NULL stays NULL); sets *oom on failure. */
static char *col_dup(sqlite3_stmt *s, int i, int *oom)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    char *d;
    if (t == NULL)
        return NULL;
    d = util_strdup(t);
    if (d == NULL)
        *oom = 1;
    return d;
}

struct claim_args {
    const char *sink;
    int64_t now_ms;
    size_t max;
    struct outbox_item *items;
    size_t count;
};

/* Select due rows and mark them inflight (inside store_tx). */
static int claim_tx(struct store *st, void *arg)
{
    struct claim_args *a = arg;
    sqlite3_stmt *sel, *upd;
    int rc, oom = 0;

    sel = store_stmt(st, "SELECT id, office, key, kind, version, body, remote_id, attempts"
                         " FROM outbox WHERE sink = ? AND state = 'pending' AND next_at <= ?"
                         " ORDER BY next_at, id LIMIT ?");
    if (sel == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(sel, 1, a->sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(sel, 2, a->now_ms);
    sqlite3_bind_int64(sel, 3, (sqlite3_int64)a->max);
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW && a->count < a->max) {
        struct outbox_item *it = &a->items[a->count++];
        it->id = sqlite3_column_int64(sel, 0);
        it->office = col_dup(sel, 1, &oom);
        it->key = col_dup(sel, 2, &oom);
        it->kind = sqlite3_column_int(sel, 3);
        it->version = sqlite3_column_int64(sel, 4);
        it->body = col_dup(sel, 5, &oom);
        it->remote_id = col_dup(sel, 6, &oom);
        it->attempts = sqlite3_column_int(sel, 7);
    }
    sqlite3_reset(sel);
    if (oom)
        return ODSYNC_NOMEM;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return ODSYNC_STORE;
    for (size_t i = 0; i < a->count; i++) {
        upd = store_stmt(st, "UPDATE outbox SET state = 'inflight', claimed_version = version,"
                             " updated_at = ? WHERE id = ?");
        if (upd == NULL)
            return ODSYNC_STORE;
        sqlite3_bind_int64(upd, 1, a->now_ms);
        sqlite3_bind_int64(upd, 2, a->items[i].id);
        rc = step_done(upd);
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

int outbox_claim(struct store *st, const char *sink, int64_t now_ms, size_t max,
                 struct outbox_item **items, size_t *count)
{
    struct claim_args a = {sink, now_ms, max, NULL, 0};
    int rc;

    *items = NULL;
    *count = 0;
    if (max == 0)
        return ODSYNC_OK;
    a.items = util_calloc(max, sizeof(*a.items));
    if (a.items == NULL)
        return ODSYNC_NOMEM;
    rc = store_tx(st, claim_tx, &a);
    if (rc != ODSYNC_OK || a.count == 0) {
        outbox_items_free(a.items, a.count);
        return rc;
    }
    *items = a.items;
    *count = a.count;
    return ODSYNC_OK;
}

void outbox_items_free(struct outbox_item *items, size_t count)
{
    size_t i;
    if (items == NULL)
        return;
    for (i = 0; i < count; i++) {
        util_free(items[i].office);
        util_free(items[i].key);
        util_free(items[i].body);
        util_free(items[i].remote_id);
    }
    util_free(items);
}

int outbox_complete(struct store *st, const struct outbox_item *it, const char *remote_id)
{
    sqlite3_stmt *s = store_stmt(
        st, "UPDATE outbox SET state = CASE WHEN version = ?2 THEN 'done' ELSE 'pending' END,"
            " remote_id = COALESCE(?3, remote_id), attempts = 0, next_at = 0,"
            " last_class = 0, last_detail = NULL, updated_at = ?4"
            " WHERE id = ?1 AND state = 'inflight'");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int64(s, 1, it->id);
    sqlite3_bind_int64(s, 2, it->version);
    if (remote_id != NULL)
        sqlite3_bind_text(s, 3, remote_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, util_now_ms());
    return step_done(s);
}

int outbox_retry(struct store *st, const struct outbox_item *it, int64_t next_at, int count_attempt,
                 int result_class, const char *detail)
{
    sqlite3_stmt *s =
        store_stmt(st, "UPDATE outbox SET state = 'pending',"
                       " attempts = CASE WHEN version = ?2 THEN attempts + ?3 ELSE 0 END,"
                       " next_at = CASE WHEN version = ?2 THEN ?4 ELSE 0 END,"
                       " last_class = ?5, last_detail = ?6, updated_at = ?7"
                       " WHERE id = ?1 AND state = 'inflight'");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int64(s, 1, it->id);
    sqlite3_bind_int64(s, 2, it->version);
    sqlite3_bind_int(s, 3, count_attempt ? 1 : 0);
    sqlite3_bind_int64(s, 4, next_at);
    sqlite3_bind_int(s, 5, result_class);
    if (detail != NULL)
        sqlite3_bind_text(s, 6, detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, util_now_ms());
    return step_done(s);
}

int outbox_dead(struct store *st, const struct outbox_item *it, int result_class,
                const char *detail)
{
    sqlite3_stmt *s = store_stmt(
        st, "UPDATE outbox SET state = CASE WHEN version = ?2 THEN 'dead' ELSE 'pending' END,"
            " attempts = CASE WHEN version = ?2 THEN attempts + 1 ELSE 0 END, next_at = 0,"
            " last_class = ?3, last_detail = ?4, updated_at = ?5"
            " WHERE id = ?1 AND state = 'inflight'");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int64(s, 1, it->id);
    sqlite3_bind_int64(s, 2, it->version);
    sqlite3_bind_int(s, 3, result_class);
    if (detail != NULL)
        sqlite3_bind_text(s, 4, detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, util_now_ms());
    return step_done(s);
}

int outbox_recover(struct store *st, int64_t *recovered)
{
    sqlite3_stmt *s =
        store_stmt(st, "UPDATE outbox SET state = 'pending' WHERE state = 'inflight'");
    int rc = step_done(s);
    *recovered = rc == ODSYNC_OK ? sqlite3_changes(store_db(st)) : 0;
    return rc;
}

int outbox_count(struct store *st, const char *sink, struct outbox_counts *out)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT state, COUNT(*) FROM outbox"
                                     " WHERE ?1 IS NULL OR sink = ?1 GROUP BY state");
    int rc;
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return ODSYNC_STORE;
    if (sink != NULL)
        sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(s, 0);
        int64_t n = sqlite3_column_int64(s, 1);
        if (strcmp(state, "pending") == 0)
            out->pending = n;
        else if (strcmp(state, "inflight") == 0)
            out->inflight = n;
        else if (strcmp(state, "done") == 0)
            out->done = n;
        else
            out->dead = n;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}
