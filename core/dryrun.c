/*
 * dryrun.c: the real rules and send guard for one day, inside a transaction rolled back.
 */
#include "dryrun.h"

#include <string.h>

#include "deliver.h"
#include "guard.h"
#include "outbox.h"
#include "policy.h"
#include "project.h"
#include "tz.h"
#include "util.h"

#define SIM_BATCH     100
#define SIM_MAX_STEPS 100000

/* The office-local midnight (ms) starting date in office's zone, or -1. */
static int64_t day_start(const struct config_office *o, const char *date)
{
    char buf[20];
    int64_t naive, utc;
    util_fmt(buf, sizeof(buf), "%.10s 00:00:00", date);
    if (strlen(date) != 10 || tz_parse_local(buf, &naive) != ODSYNC_OK ||
        tz_local_to_utc(o->engage->tz, naive, 0, &utc) != ODSYNC_OK)
        return -1;
    return utc * 1000;
}

/* The sinks that carry messages, each once. names: at most 2 per office. */
static size_t message_sinks(const struct config *cfg, const char **names, size_t max)
{
    size_t n = 0, i, j, k;
    for (i = 0; i < cfg->n_offices; i++) {
        const struct config_office *o = &cfg->offices[i];
        enum config_route routes[2] = {CONFIG_ROUTE_SMS, CONFIG_ROUTE_EMAIL};
        for (k = 0; k < 2; k++) {
            int seen = 0;
            if (o->n_routes[routes[k]] == 0)
                continue;
            for (j = 0; j < n; j++)
                seen |= strcmp(names[j], o->routes[routes[k]][0]) == 0;
            if (!seen && n < max)
                names[n++] = o->routes[routes[k]][0];
        }
    }
    return n;
}

/* The earliest pending row of the message sinks due before close, or -1. Only messages are
 * pending by then (park_others). */
static int64_t next_message(struct store *st, const char *const *sinks, size_t n, int64_t close)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT MIN(next_at) FROM outbox INDEXED BY outbox_due"
                                     " WHERE sink = ? AND state = 'pending' AND next_at < ?");
    int64_t at = -1;
    size_t i;
    for (i = 0; s != NULL && i < n; i++) {
        sqlite3_bind_text(s, 1, sinks[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, close);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL &&
            (at < 0 || sqlite3_column_int64(s, 0) < at))
            at = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
    }
    return at;
}

/* Contacts, tasks and commlogs are not played: set them aside (rolled back at the end). */
static int park_others(struct store *st)
{
    sqlite3_stmt *s = store_stmt(st, "UPDATE outbox SET state = 'done' WHERE state = 'pending'"
                                     " AND kind <> ?");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int(s, 1, ODSYNC_KIND_MESSAGE);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* Play one claimed batch through the guard as if the provider accepted every send. */
static int play_batch(struct store *st, const struct deliver_gate *gate, struct outbox_item *items,
                      size_t n, int64_t t)
{
    unsigned char send[SIM_BATCH];
    size_t i;
    int rc;
    memset(send, 0, sizeof(send));
    rc = gate->before(gate->ctx, st, items, n, send, t);
    for (i = 0; rc == ODSYNC_OK && i < n; i++) {
        if (!send[i] || items[i].kind != ODSYNC_KIND_MESSAGE)
            continue;
        rc = gate->after(gate->ctx, st, &items[i], "dry-run", ODSYNC_OK, 1, "dry-run", NULL, t);
        if (rc == ODSYNC_OK)
            rc = outbox_complete(st, &items[i], "dry-run");
    }
    return rc;
}

/* Play every message due from start to close in due order. */
static int play_day(struct store *st, const struct config *cfg, int64_t start, int64_t close)
{
    struct deliver_gate gate;
    const char *sinks[64];
    size_t n_sinks = message_sinks(cfg, sinks, UTIL_ARRAY_LEN(sinks)), i, count;
    struct outbox_item *items;
    int64_t t = start, next;
    int steps, rc = ODSYNC_OK;

    guard_gate(&gate, cfg);
    rc = park_others(st);
    for (steps = 0; rc == ODSYNC_OK && steps < SIM_MAX_STEPS; steps++) {
        next = next_message(st, sinks, n_sinks, close);
        if (next < 0)
            break;
        if (next > t)
            t = next;
        for (i = 0; rc == ODSYNC_OK && i < n_sinks; i++) {
            items = NULL;
            count = 0;
            rc = outbox_claim(st, sinks[i], t, SIM_BATCH, &items, &count);
            if (rc == ODSYNC_OK && count > 0)
                rc = play_batch(st, &gate, items, count, t);
            outbox_items_free(items, count);
        }
    }
    return rc;
}

/* Copy column i (NULL stays NULL); sets *oom. */
static char *col(sqlite3_stmt *s, int i, int *oom)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    char *d = t ? util_strdup(t) : NULL;
    *oom |= t != NULL && d == NULL;
    return d;
}

/* The last decision per message made after decision id first (of office, NULL = all). */
static int collect(struct store *st, int64_t first, const char *office, struct dryrun_report *r)
{
    sqlite3_stmt *s = store_stmt(
        st, "SELECT d.office, d.key, d.campaign, d.channel, d.outcome, d.reason, d.rule,"
            " d.consent, d.patnum, d.at, d.until_at FROM decisions d"
            " WHERE d.id > ?1 AND (?2 IS NULL OR d.office = ?2) AND d.id = (SELECT MAX(id)"
            " FROM decisions e WHERE e.office = d.office AND e.key = d.key AND e.id > ?1)"
            " ORDER BY d.office, d.patnum, d.key");
    int oom = 0, rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int64(s, 1, first);
    sqlite3_bind_text(s, 2, office, -1, SQLITE_STATIC);
    while (!oom && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct dryrun_row *grown = util_realloc(r->rows, (r->count + 1) * sizeof(*grown));
        struct dryrun_row *w;
        if (grown == NULL) {
            oom = 1;
            break;
        }
        r->rows = grown;
        w = &r->rows[r->count++];
        memset(w, 0, sizeof(*w));
        w->office = col(s, 0, &oom);
        w->key = col(s, 1, &oom);
        w->campaign = col(s, 2, &oom);
        w->channel = col(s, 3, &oom);
        w->outcome = col(s, 4, &oom);
        w->reason = col(s, 5, &oom);
        w->rule = col(s, 6, &oom);
        w->consent = col(s, 7, &oom);
        w->patnum = sqlite3_column_int64(s, 8);
        w->at_ms = sqlite3_column_int64(s, 9);
        w->until_ms = sqlite3_column_int64(s, 10);
        if (w->outcome == NULL)
            continue;
        r->sent += strcmp(w->outcome, "sent") == 0;
        r->held += strcmp(w->outcome, "held") == 0 || strcmp(w->outcome, "queued") == 0;
        r->skipped += strcmp(w->outcome, "skipped") == 0 || strcmp(w->outcome, "expired") == 0;
    }
    sqlite3_reset(s);
    return oom ? ODSYNC_NOMEM : ODSYNC_OK;
}

/* The largest decision id so far. */
static int64_t last_decision(struct store *st)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT COALESCE(MAX(id), 0) FROM decisions");
    int64_t id = 0;
    if (s != NULL && sqlite3_step(s) == SQLITE_ROW)
        id = sqlite3_column_int64(s, 0);
    if (s != NULL)
        sqlite3_reset(s);
    return id;
}

/* Evaluate every office in scope at its window's opening (or now); *close: the latest end
 * of a window that day. */
static int evaluate(struct store *st, const struct config *cfg, const char *office,
                    const char *date, int64_t now_ms, struct dryrun_report *r, int64_t *start,
                    int64_t *close, char *err, size_t errlen)
{
    size_t i;
    int rc = ODSYNC_OK;
    *start = INT64_MAX;
    *close = 0;
    for (i = 0; i < cfg->n_offices && rc == ODSYNC_OK; i++) {
        const struct config_office *o = &cfg->offices[i];
        struct project_stats ps;
        char today[11], day[11];
        int64_t midnight, open, shut;
        if (office != NULL && strcmp(office, o->id) != 0)
            continue;
        policy_local_date(o->engage, now_ms, today);
        util_fmt(day, sizeof(day), "%s", date ? date : today);
        midnight = day_start(o, day);
        if (midnight < 0) {
            util_fmt(err, errlen, "--date: expected YYYY-MM-DD, got \"%s\"", day);
            return ODSYNC_INVALID;
        }
        if (strcmp(day, today) < 0) {
            util_fmt(err, errlen, "--date %s is in the past for office %s (today is %s)", day,
                     o->id, today);
            return ODSYNC_INVALID;
        }
        open = policy_window_open(o->engage, midnight);
        shut = midnight + (int64_t)o->engage->policy.quiet_end_min * 60000; /* DST: approx */
        if (strcmp(day, today) == 0 && now_ms > open)
            open = now_ms;
        if (r->window_open_ms == 0) {
            util_fmt(r->date, sizeof(r->date), "%s", day);
            r->window_open_ms = open;
            r->window_close_ms = shut;
        }
        *start = open < *start ? open : *start;
        *close = shut > *close ? shut : *close;
        rc = store_exec(st, "INSERT OR IGNORE INTO od_dirty (office, patnum)"
                            " SELECT office, patnum FROM od_patients");
        if (rc == ODSYNC_OK)
            rc = project_office_at(st, o, open, &ps);
    }
    if (*start == INT64_MAX && rc == ODSYNC_OK) {
        util_fmt(err, errlen, "no office \"%s\" in the config", office ? office : "");
        rc = ODSYNC_NOT_FOUND;
    }
    return rc;
}

int dryrun_run(struct store *st, const struct config *cfg, const char *office, const char *date,
               int64_t now_ms, struct dryrun_report *out, char *err, size_t errlen)
{
    int64_t first, start = 0, close = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = store_exec(st, "BEGIN IMMEDIATE");
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "cannot start a transaction: %s", store_errmsg(st));
        return rc;
    }
    first = last_decision(st);
    rc = evaluate(st, cfg, office, date, now_ms, out, &start, &close, err, errlen);
    if (rc == ODSYNC_OK)
        rc = play_day(st, cfg, start, close);
    if (rc == ODSYNC_OK)
        rc = collect(st, first, office, out);
    store_exec(st, "ROLLBACK");
    if (rc != ODSYNC_OK) {
        if (err[0] == '\0')
            util_fmt(err, errlen, "dry-run failed: %s", odsync_status_name(rc));
        dryrun_report_clear(out);
    }
    return rc;
}

void dryrun_report_clear(struct dryrun_report *r)
{
    size_t i;
    if (r == NULL)
        return;
    for (i = 0; i < r->count; i++) {
        util_free(r->rows[i].office);
        util_free(r->rows[i].key);
        util_free(r->rows[i].campaign);
        util_free(r->rows[i].channel);
        util_free(r->rows[i].outcome);
        util_free(r->rows[i].reason);
        util_free(r->rows[i].rule);
        util_free(r->rows[i].consent);
    }
    util_free(r->rows);
    memset(r, 0, sizeof(*r));
}
