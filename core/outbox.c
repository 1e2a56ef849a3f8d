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
    return outbox_enqueue_at(st, sink, office, key, kind, version, body, 0);
}

int outbox_enqueue_at(struct store *st, const char *sink, const char *office, const char *key,
                      int kind, int64_t version, const char *body, int64_t next_at)
{
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO outbox (sink, office, key, kind, version, body, next_at, created_at,"
            " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?7, ?7)"
            " ON CONFLICT (sink, office, key) DO UPDATE SET kind = ?4, version = ?5, body = ?6,"
            " state = CASE WHEN state = 'inflight' THEN 'inflight' ELSE 'pending' END,"
            " attempts = 0, next_at = ?8, updated_at = ?7"
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
    sqlite3_bind_int64(s, 8, next_at);
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
    char *const *offices; /* NULL: one FIFO over all offices */
    size_t n_offices;
    size_t *cursor;
    int64_t now_ms;
    size_t min, max;
    struct outbox_item *items;
    size_t count;
};

/* Read up to limit due rows (of one office when office != NULL) into a->items. */
static int select_due(struct store *st, struct claim_args *a, const char *office, size_t limit)
{
    sqlite3_stmt *sel;
    int rc = SQLITE_DONE, oom = 0;

    if (office != NULL)
        sel = store_stmt(st, "SELECT id, office, key, kind, version, body, remote_id, attempts"
                             " FROM outbox WHERE sink = ?1 AND office = ?4 AND state = 'pending'"
                             " AND next_at <= ?2 ORDER BY next_at, id LIMIT ?3");
    else
        sel = store_stmt(st, "SELECT id, office, key, kind, version, body, remote_id, attempts"
                             " FROM outbox WHERE sink = ?1 AND state = 'pending' AND next_at <= ?2"
                             " ORDER BY next_at, id LIMIT ?3");
    if (sel == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(sel, 1, a->sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(sel, 2, a->now_ms);
    sqlite3_bind_int64(sel, 3, (sqlite3_int64)limit);
    if (office != NULL)
        sqlite3_bind_text(sel, 4, office, -1, SQLITE_STATIC);
    while (a->count < a->max && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
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
    if (a->count >= a->max)
        rc = SQLITE_DONE;
    sqlite3_reset(sel);
    if (oom)
        return ODSYNC_NOMEM;
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* Mark the claimed rows inflight. */
static int mark_inflight(struct store *st, struct claim_args *a)
{
    sqlite3_stmt *upd;
    size_t i;
    int rc;
    for (i = 0; i < a->count; i++) {
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

/* 1 when row id is already among the claimed items. */
static int claimed(const struct claim_args *a, int64_t id)
{
    size_t i;
    for (i = 0; i < a->count; i++)
        if (a->items[i].id == id)
            return 1;
    return 0;
}

/* Mark the selected rows in flight, or claim none when fewer than min were due. */
static int mark_enough(struct store *st, struct claim_args *a)
{
    if (a->count < a->min) {
        outbox_items_free(a->items, a->count);
        a->items = NULL;
        a->count = 0;
        return ODSYNC_OK;
    }
    return mark_inflight(st, a);
}

/* Per-office shares, then the rest (inside store_tx). */
static int claim_tx(struct store *st, void *arg)
{
    struct claim_args *a = arg;
    size_t i, share, before;
    int rc = ODSYNC_OK;

    if (a->n_offices == 0) {
        rc = select_due(st, a, NULL, a->max);
        return rc == ODSYNC_OK ? mark_enough(st, a) : rc;
    }
    share = a->max / a->n_offices ? a->max / a->n_offices : 1;
    for (i = 0; i < a->n_offices && a->count < a->max && rc == ODSYNC_OK; i++) {
        const char *office = a->offices[(*a->cursor + i) % a->n_offices];
        size_t room = a->max - a->count;
        rc = select_due(st, a, office, share < room ? share : room);
    }
    *a->cursor = (*a->cursor + 1) % a->n_offices;
    /* Fill what the shares left with the oldest other due rows, skipping those taken. */
    while (rc == ODSYNC_OK && a->count < a->max) {
        struct claim_args more = *a;
        struct outbox_item *extra = util_calloc(a->max, sizeof(*extra));
        size_t j;
        if (extra == NULL)
            return ODSYNC_NOMEM;
        more.items = extra;
        more.count = 0;
        rc = select_due(st, &more, NULL, a->max);
        before = a->count;
        for (j = 0; j < more.count; j++) {
            if (a->count < a->max && !claimed(a, extra[j].id)) {
                a->items[a->count++] = extra[j];
                memset(&extra[j], 0, sizeof(extra[j]));
            }
        }
        outbox_items_free(extra, more.count);
        if (a->count == before)
            break;
    }
    return rc == ODSYNC_OK ? mark_enough(st, a) : rc;
}

int outbox_claim_fair(struct store *st, const char *sink, char *const *offices, size_t n,
                      size_t *cursor, int64_t now_ms, size_t min, size_t max,
                      struct outbox_item **items, size_t *count)
{
    struct claim_args a = {sink, offices, n, cursor, now_ms, min, max, NULL, 0};
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

int outbox_claim(struct store *st, const char *sink, int64_t now_ms, size_t max,
                 struct outbox_item **items, size_t *count)
{
    size_t cursor = 0;
    return outbox_claim_fair(st, sink, NULL, 0, &cursor, now_ms, 1, max, items, count);
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

struct unclaim_args {
    const struct outbox_item *items;
    size_t count;
};

/* Back to pending, row by row (inside store_tx). */
static int unclaim_tx(struct store *st, void *arg)
{
    const struct unclaim_args *a = arg;
    sqlite3_stmt *s;
    size_t i;
    int rc = ODSYNC_OK;
    for (i = 0; i < a->count && rc == ODSYNC_OK; i++) {
        s = store_stmt(st,
                       "UPDATE outbox SET state = 'pending' WHERE id = ? AND state = 'inflight'");
        if (s == NULL)
            return ODSYNC_STORE;
        sqlite3_bind_int64(s, 1, a->items[i].id);
        rc = step_done(s);
    }
    return rc;
}

int outbox_unclaim(struct store *st, const struct outbox_item *items, size_t count)
{
    struct unclaim_args a = {items, count};
    return count == 0 ? ODSYNC_OK : store_tx(st, unclaim_tx, &a);
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
            " dead_at = CASE WHEN version = ?2 THEN ?5 ELSE NULL END,"
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

int outbox_count_scheduled(struct store *st, const char *sink, int64_t now_ms, int64_t *count)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT COUNT(*) FROM outbox WHERE (?1 IS NULL OR sink = ?1)"
                                     " AND state = 'pending' AND kind = ?2 AND next_at > ?3");
    int rc;
    *count = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, ODSYNC_KIND_MESSAGE);
    sqlite3_bind_int64(s, 3, now_ms);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : ODSYNC_STORE;
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

int outbox_next_due(struct store *st, const char *sink, int64_t *next_at)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT MIN(next_at) FROM outbox"
                                     " WHERE sink = ? AND state = 'pending'");
    int rc;
    *next_at = -1;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        *next_at = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : ODSYNC_STORE;
}

int outbox_dead_list(struct store *st, const char *sink, struct outbox_dead **rows, size_t *count)
{
    sqlite3_stmt *s = store_stmt(
        st, "SELECT id, sink, office, key, kind, version, attempts, last_class, last_detail,"
            " COALESCE(dead_at, updated_at) FROM outbox"
            " WHERE state = 'dead' AND (?1 IS NULL OR sink = ?1) ORDER BY dead_at, id");
    struct outbox_dead *out = NULL, *grown;
    size_t n = 0, cap = 0;
    int rc, oom = 0;

    *rows = NULL;
    *count = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    if (sink != NULL)
        sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            grown = util_realloc(out, cap * sizeof(*out));
            if (grown == NULL) {
                oom = 1;
                break;
            }
            out = grown;
        }
        memset(&out[n], 0, sizeof(out[n]));
        out[n].id = sqlite3_column_int64(s, 0);
        out[n].sink = col_dup(s, 1, &oom);
        out[n].office = col_dup(s, 2, &oom);
        out[n].key = col_dup(s, 3, &oom);
        out[n].kind = sqlite3_column_int(s, 4);
        out[n].version = sqlite3_column_int64(s, 5);
        out[n].attempts = sqlite3_column_int(s, 6);
        out[n].last_class = sqlite3_column_int(s, 7);
        out[n].detail = col_dup(s, 8, &oom);
        out[n].dead_at = sqlite3_column_int64(s, 9);
        n++;
    }
    sqlite3_reset(s);
    if (oom || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        outbox_dead_free(out, n);
        return oom ? ODSYNC_NOMEM : ODSYNC_STORE;
    }
    *rows = out;
    *count = n;
    return ODSYNC_OK;
}

void outbox_dead_free(struct outbox_dead *rows, size_t count)
{
    size_t i;
    for (i = 0; rows != NULL && i < count; i++) {
        util_free(rows[i].sink);
        util_free(rows[i].office);
        util_free(rows[i].key);
        util_free(rows[i].detail);
    }
    util_free(rows);
}

int outbox_dead_retry(struct store *st, int64_t id, const char *sink, int64_t *requeued)
{
    sqlite3_stmt *s = store_stmt(
        st, "UPDATE outbox SET state = 'pending', attempts = 0, next_at = 0, dead_at = NULL,"
            " updated_at = ?3 WHERE state = 'dead'"
            " AND (?1 = 0 OR id = ?1) AND (?2 IS NULL OR sink = ?2)");
    int rc;
    *requeued = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int64(s, 1, id);
    if (sink != NULL)
        sqlite3_bind_text(s, 2, sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, util_now_ms());
    rc = step_done(s);
    if (rc == ODSYNC_OK)
        *requeued = sqlite3_changes(store_db(st));
    return rc;
}

int outbox_dead_drop(struct store *st, int64_t id, int *dropped)
{
    sqlite3_stmt *s = store_stmt(st, "DELETE FROM outbox WHERE id = ? AND state = 'dead'");
    int rc;
    *dropped = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int64(s, 1, id);
    rc = step_done(s);
    if (rc == ODSYNC_OK)
        *dropped = sqlite3_changes(store_db(st)) > 0;
    return rc;
}
