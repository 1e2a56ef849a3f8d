/*
 * resync.c: the full canonical state of an office, queued again for one sink.
 */
#include "resync.h"

#include <string.h>

#include "outbox.h"
#include "util.h"

struct resync_args {
    const struct config_office *office;
    const char *sink;
    unsigned kinds;
    int64_t queued;
};

/* 1 when office routes records of route to sink. */
static int routes_to(const struct config_office *o, enum config_route route, const char *sink)
{
    size_t i;
    for (i = 0; i < o->n_routes[route]; i++)
        if (strcmp(o->routes[route][i], sink) == 0)
            return 1;
    return 0;
}

/* Queue (or refresh) every record of one kind for the sink (inside store_tx). */
static int queue_kind(struct store *st, struct resync_args *a, int kind, int64_t next_at)
{
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO outbox (sink, office, key, kind, version, body, next_at, created_at,"
            " updated_at) SELECT ?1, office, key, kind, version, body, ?4, ?5, ?5 FROM records"
            " WHERE office = ?2 AND kind = ?3"
            " ON CONFLICT (sink, office, key) DO UPDATE SET version = excluded.version,"
            " body = excluded.body, attempts = 0, next_at = excluded.next_at,"
            " state = CASE WHEN state = 'inflight' THEN 'inflight' ELSE 'pending' END,"
            " updated_at = excluded.updated_at");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->sink, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, kind);
    sqlite3_bind_int64(s, 4, next_at);
    sqlite3_bind_int64(s, 5, util_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_status(rc);
    a->queued += sqlite3_changes(store_db(st));
    return ODSYNC_OK;
}

/* Contacts first (due at 0), then tasks just after them, as the projection queues them. */
static int resync_tx(struct store *st, void *arg)
{
    struct resync_args *a = arg;
    int rc = ODSYNC_OK;
    if ((a->kinds & RESYNC_CONTACTS) && routes_to(a->office, CONFIG_ROUTE_CONTACT, a->sink))
        rc = queue_kind(st, a, ODSYNC_KIND_CONTACT, 0);
    if (rc == ODSYNC_OK && (a->kinds & RESYNC_TASKS) &&
        routes_to(a->office, CONFIG_ROUTE_TASK, a->sink))
        rc = queue_kind(st, a, ODSYNC_KIND_TASK, OUTBOX_AFTER_CONTACTS);
    return rc;
}

int resync_office(struct store *st, const struct config_office *office, const char *sink,
                  unsigned kinds, int64_t *queued)
{
    struct resync_args a = {office, sink, kinds, 0};
    int rc = store_tx(st, resync_tx, &a);
    *queued = rc == ODSYNC_OK ? a.queued : 0;
    return rc;
}

/* *fresh = 1 when sink has never had a record of kind from office queued while office has
 * such records: a route added since. */
static int never_seeded(struct store *st, const char *office, const char *sink, int kind,
                        int *fresh)
{
    sqlite3_stmt *s = store_stmt(
        st, "SELECT NOT EXISTS (SELECT 1 FROM outbox INDEXED BY outbox_office_due"
            " WHERE sink = ?1 AND office = ?2 AND kind = ?3) AND EXISTS (SELECT 1 FROM records"
            " WHERE office = ?2 AND kind = ?3)");
    int rc;
    *fresh = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, office, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, kind);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *fresh = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : store_status(rc);
}

int resync_new_routes(struct store *st, const struct config *cfg, int64_t *queued)
{
    static const int kinds[] = {ODSYNC_KIND_CONTACT, ODSYNC_KIND_TASK};
    static const unsigned masks[] = {RESYNC_CONTACTS, RESYNC_TASKS};
    size_t o, r, i;
    int64_t n;
    int rc = ODSYNC_OK, fresh, any;
    *queued = 0;
    for (o = 0; o < cfg->n_offices && rc == ODSYNC_OK; o++) {
        const struct config_office *off = &cfg->offices[o];
        for (r = CONFIG_ROUTE_CONTACT; r <= CONFIG_ROUTE_TASK && rc == ODSYNC_OK; r++) {
            for (i = 0; i < off->n_routes[r] && rc == ODSYNC_OK; i++) {
                rc = never_seeded(st, off->id, off->routes[r][i], kinds[r], &fresh);
                any = rc == ODSYNC_OK && fresh;
                if (any)
                    rc = resync_office(st, off, off->routes[r][i], masks[r], &n);
                if (any && rc == ODSYNC_OK)
                    *queued += n;
            }
        }
    }
    return rc;
}
