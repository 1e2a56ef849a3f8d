/*
 * events.c: the API Events pollers, their faults, counters and event log, and the
 * /_admin/events calls. events.h states the behaviour; contrib/odsim/README.md documents it.
 *
 * Threads: one poller per office (started by events_start, joined by events_stop). Each owns
 * its http_client and its per-subscription state; settings, counters and the log are shared
 * with the admin API under ev.lock. A poller holds sim.db_lock only while it reads a window
 * or moves DateTimeStart, never while it posts.
 */
#include "events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "http_client.h"
#include "store.h"

#define EV_TICK_MS            100 /* how often a poller looks for due subscriptions */
#define EV_DEFAULT_BATCH      1000
#define EV_DEFAULT_TIMEOUT_MS 60000
#define EV_DEFAULT_CAP_HOURS  72
#define EV_WS_MAX             64 /* workstation names kept in log entries (truncated) */
#define EV_ERR_MAX            96
#define EV_NONE_DT            "0001-01-01 00:00:00"

/* Faults and tunables of one office (ev.lock). */
struct ev_settings {
    int64_t machines;   /* pollers sending every subscription, 1..EVENTS_MAX_MACHINE */
    int paused;         /* workstation off: no polling at all */
    int64_t drop_next;  /* skip this many non-empty windows without sending (a gap) */
    int64_t redeliver;  /* resend this many last-acknowledged windows once more */
    int out_of_order;   /* send a window's chunks last to first */
    int64_t slow_ms;    /* wait before every POST */
    int64_t batch;      /* rows per POST */
    int64_t timeout_ms; /* a POST without a 2xx answer by then failed */
    int64_t cap_hours;  /* a window reaches back at most this far; 0 = no cap */
};

/* Counters of one office since start or the last reset (ev.lock). */
struct ev_counters {
    int64_t posts;        /* POST attempts */
    int64_t rows;         /* rows in those attempts */
    int64_t failures;     /* attempts without a 2xx answer */
    int64_t drops;        /* windows skipped by drop_next */
    int64_t lost_rows;    /* rows older than the cap, never sent */
    int64_t redeliveries; /* windows resent by redeliver */
    int64_t acked;        /* windows delivered (DateTimeStart moved after a POST) */
};

/* One log entry: a POST attempt, a dropped window or rows lost to the cap. */
struct ev_entry {
    int64_t seq; /* 1-based, per office */
    char at[CLOCK_DT_LEN];
    int64_t sub;
    char table[24];
    char workstation[EV_WS_MAX];
    int machine;      /* 1-based poller; 0 for dropped/capped */
    const char *kind; /* static: "post", "redeliver", "dropped", "capped" */
    int64_t attempt;
    int chunk, chunks; /* 1-based chunk (0 when nothing was posted) of the window's chunks */
    int64_t rows;
    int status; /* HTTP status, 0 when none */
    char error[EV_ERR_MAX];
    int ok;
    char start[CLOCK_DT_LEN], end[CLOCK_DT_LEN];
    int64_t ms;
};

/* A poller's memory of one subscription (its office's thread only). */
struct sub_state {
    int64_t num;
    char win_start[CLOCK_DT_LEN]; /* DateTimeStart of the window being attempted, or "" */
    int64_t attempt;              /* attempts of win_start so far */
    int64_t retry_at_ms;          /* monotonic: no new attempt before this */
    int64_t lost_upto;            /* naive: rows before this were already counted lost */
    int has_acked;
    char acked_start[CLOCK_DT_LEN], acked_end[CLOCK_DT_LEN];
    int64_t acked_attempt;
};

struct ev_office {
    struct office *o;       /* borrowed from the sim */
    struct ev_settings set; /* ev.lock */
    struct ev_counters cnt; /* ev.lock */
    struct ev_entry *log;   /* ev.lock: owned ring of EVENTS_LOG_MAX, made on first use */
    int64_t logged;         /* ev.lock: entries ever logged (the last seq) */
    pthread_t thread;
    int started;
    struct sub_state *subs; /* poller only: owned array of nsubs (capsubs allocated) */
    size_t nsubs, capsubs;
    struct http_client *http; /* poller only: owned */
};

/* The module (one per process). */
static struct {
    pthread_mutex_t lock;
    int lock_ready;
    int http_ready;
    struct sim *s;             /* borrowed */
    struct ev_office *offices; /* owned array of n */
    int n;
    atomic_int stop;
} ev;

/* A watch table odsim keeps rows for. Other accepted tables (PatField, Operatory,
 * Provider, Schedule, ToothInitial) never change here: their windows are always empty. */
struct ev_table {
    const char *name; /* WatchTable */
    enum res_id res;  /* the row shape */
    const char *from; /* SQL table */
    const char *ts;   /* the stamp the window is on */
    const char *cond; /* extra condition, or NULL */
    int server_time;  /* elements carry serverDateTime (the poll time) */
};

static const struct ev_table ev_tables[] = {
    {"Patient", R_PATIENT, "patient", "t.DateTStamp", NULL, 0},
    {"Appointment", R_APPOINTMENT, "appointment", "t.DateTStamp", NULL, 1},
    {"AppointmentDeleted", R_HIST, "histappointment", "t.HistDateTStamp",
     "t.HistApptAction = 'Deleted'", 0},
};

/* A subscription as a poller reads it. */
struct ev_sub {
    int64_t num;
    char *url; /* owned */
    char *ws;  /* owned; "" for a blank Workstation */
    char table[24];
    int64_t poll;
    char start[CLOCK_DT_LEN];
};

/* One window read from the database. */
struct ev_window {
    char start[CLOCK_DT_LEN], end[CLOCK_DT_LEN];
    int64_t rows;
    int nchunks;
    char **chunks;       /* owned array of owned JSON arrays */
    int64_t *chunk_rows; /* owned */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int ev_stopping(void)
{
    return atomic_load(&ev.stop) || (ev.s != NULL && atomic_load(&ev.s->stopping));
}

/* Sleep ms in short slices, ending early when stopping. */
static void ev_sleep(int64_t ms)
{
    int64_t end = util_monotonic_ms() + ms;
    for (;;) {
        int64_t left = end - util_monotonic_ms();
        if (left <= 0 || ev_stopping())
            return;
        if (left > 50)
            left = 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static const struct ev_table *table_of(const char *name)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ev_tables); i++) {
        if (strcmp(ev_tables[i].name, name) == 0)
            return &ev_tables[i];
    }
    return NULL;
}

static void window_free(struct ev_window *w)
{
    for (int i = 0; i < w->nchunks && w->chunks != NULL; i++)
        util_free(w->chunks[i]);
    util_free(w->chunks);
    util_free(w->chunk_rows);
    w->chunks = NULL;
    w->chunk_rows = NULL;
    w->nchunks = 0;
    w->rows = 0;
}

/* Rows of t for office with from <= stamp < to. Caller holds db_lock. */
static int count_rows(struct sim *s, int office, const struct ev_table *t, const char *from,
                      const char *to, int64_t *n)
{
    char sql[256];
    *n = 0;
    if (util_fmt(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM %s t WHERE t.office = ?1 AND %s >= ?2 AND %s < ?3%s%s",
                 t->from, t->ts, t->ts, t->cond != NULL ? " AND " : "",
                 t->cond != NULL ? t->cond : "") != ODSYNC_OK)
        return ODSYNC_INTERNAL;
    return store_int(s, sql, DBARGS(DV_I(office), DV_T(from), DV_T(to)), n) < 0 ? ODSYNC_STORE
                                                                                : ODSYNC_OK;
}

/* Read the rows of w->start <= stamp < w->end in stamp order into chunks of batch rows.
 * t NULL: a table odsim never changes (no rows). Caller holds db_lock. On failure w holds
 * nothing. */
static int window_load(struct sim *s, int office, const struct ev_table *t, int64_t batch,
                       struct ev_window *w)
{
    int rc = ODSYNC_OK;
    w->rows = 0;
    w->nchunks = 0;
    if (t == NULL)
        return ODSYNC_OK;
    rc = count_rows(s, office, t, w->start, w->end, &w->rows);
    if (rc != ODSYNC_OK || w->rows == 0)
        goto cleanup;
    int n = (int)((w->rows + batch - 1) / batch);
    rc = ODSYNC_NOMEM;
    w->chunks = util_calloc((size_t)n, sizeof(*w->chunks));
    w->chunk_rows = util_calloc((size_t)n, sizeof(*w->chunk_rows));
    if (w->chunks == NULL || w->chunk_rows == NULL)
        goto cleanup;
    w->nchunks = n;
    char ge[48], lt[48];
    util_fmt(ge, sizeof(ge), "%s >= ?", t->ts);
    util_fmt(lt, sizeof(lt), "%s < ?", t->ts);
    for (int k = 0; k < n; k++) {
        struct query q;
        query_init(&q, t->res, office);
        query_and(&q, ge, DV_T(w->start));
        query_and(&q, lt, DV_T(w->end));
        if (t->cond != NULL)
            query_and(&q, t->cond, (struct dbv){.t = 'n'});
        q.order = t->ts;
        rc = store_list(s, &q, batch, (int64_t)k * batch, t->server_time ? w->end : NULL,
                        &w->chunks[k]);
        query_free(&q);
        if (rc != ODSYNC_OK)
            goto cleanup;
        w->chunk_rows[k] =
            w->rows - (int64_t)k * batch < batch ? w->rows - (int64_t)k * batch : batch;
    }
    rc = ODSYNC_OK;
cleanup:
    if (rc != ODSYNC_OK)
        window_free(w);
    return rc;
}

/* Append e to the office's log (seq assigned here). */
static void log_add(struct ev_office *eo, struct ev_entry *e)
{
    pthread_mutex_lock(&ev.lock);
    if (eo->log == NULL)
        eo->log = util_calloc(EVENTS_LOG_MAX, sizeof(*eo->log));
    e->seq = ++eo->logged;
    if (eo->log != NULL)
        eo->log[(e->seq - 1) % EVENTS_LOG_MAX] = *e;
    pthread_mutex_unlock(&ev.lock);
}

/* Start a log entry for sub. */
static void entry_init(struct ev_office *eo, const struct ev_sub *sub, const char *kind,
                       const struct ev_window *w, struct ev_entry *e)
{
    memset(e, 0, sizeof(*e));
    clock_office_now_str(ev.s, eo->o, e->at);
    e->sub = sub->num;
    util_fmt(e->table, sizeof(e->table), "%s", sub->table);
    util_fmt(e->workstation, sizeof(e->workstation), "%s", sub->ws);
    e->kind = kind;
    e->chunks = w->nchunks;
    e->rows = w->rows;
    util_fmt(e->start, sizeof(e->start), "%s", w->start);
    util_fmt(e->end, sizeof(e->end), "%s", w->end);
}

/* POST body to sub's EndPointUrl as workstation ws; fills e's outcome. */
static void post_chunk(struct ev_office *eo, const struct ev_sub *sub, const char *ws,
                       const char *body, int64_t timeout_ms, struct ev_entry *e)
{
    char etype[64];
    struct odsync_http_response *resp = NULL;
    util_fmt(etype, sizeof(etype), "WatchTable: %s", sub->table);
    const struct odsync_http_header h[] = {{"Authorization", eo->o->key},
                                           {"Workstation", ws},
                                           {"Event-Type", etype},
                                           {"Content-Type", "application/json"}};
    const struct odsync_http_request req = {.struct_size = sizeof(req),
                                            .method = "POST",
                                            .url = sub->url,
                                            .headers = h,
                                            .header_count = UTIL_ARRAY_LEN(h),
                                            .body = body,
                                            .body_len = strlen(body),
                                            .timeout_ms = (int32_t)timeout_ms};
    int64_t t0 = util_monotonic_ms();
    int rc = http_client_perform(eo->http, &req, &resp);
    e->ms = util_monotonic_ms() - t0;
    if (resp == NULL) {
        util_fmt(e->error, sizeof(e->error), "%s",
                 rc == ODSYNC_NOMEM ? "out of memory"
                                    : "not sent: EndPointUrl or a header value is invalid");
    } else {
        e->status = resp->status;
        e->ok = resp->status >= 200 && resp->status <= 299;
        if (resp->error != NULL)
            util_fmt(e->error, sizeof(e->error), "%s", resp->error);
    }
    http_response_free(resp);
    log_debug(ODSIM_LOG, "event: office %d subscription %lld %s: %lld rows -> %d%s%s", eo->o->num,
              (long long)sub->num, sub->table, (long long)e->rows, e->status,
              e->error[0] ? " " : "", e->error);
}

/* Send w from every machine (kind "post" or "redeliver"). Returns 1 when at least one machine
 * delivered every chunk. */
static int send_window(struct ev_office *eo, const struct ev_sub *sub, const struct ev_window *w,
                       const struct ev_settings *set, const char *kind, int64_t attempt)
{
    int any = 0;
    for (int m = 1; m <= set->machines && !ev_stopping(); m++) {
        char ws[EV_WS_MAX];
        const char *name = sub->ws;
        int ok = 1;
        if (name[0] == '\0') {
            util_fmt(ws, sizeof(ws), "WORKSTATION%d", m);
            name = ws;
        }
        for (int i = 0; i < w->nchunks && ok; i++) {
            int k = set->out_of_order ? w->nchunks - 1 - i : i;
            struct ev_entry e;
            if (set->slow_ms > 0)
                ev_sleep(set->slow_ms);
            if (ev_stopping()) {
                ok = 0;
                break;
            }
            entry_init(eo, sub, kind, w, &e);
            util_fmt(e.workstation, sizeof(e.workstation), "%s", name);
            e.machine = m;
            e.attempt = attempt;
            e.chunk = k + 1;
            e.rows = w->chunk_rows[k];
            post_chunk(eo, sub, name, w->chunks[k], set->timeout_ms, &e);
            pthread_mutex_lock(&ev.lock);
            eo->cnt.posts++;
            eo->cnt.rows += e.rows;
            eo->cnt.failures += !e.ok;
            pthread_mutex_unlock(&ev.lock);
            log_add(eo, &e);
            ok = e.ok;
        }
        any |= ok;
    }
    return any;
}

/* Move sub's DateTimeStart from old to to (unless something else moved it meanwhile). */
static void advance(struct ev_office *eo, int64_t num, const char *old, const char *to)
{
    struct sim *s = ev.s;
    pthread_mutex_lock(&s->db_lock);
    store_run(s,
              "UPDATE subscription SET DateTimeStart = ?4 WHERE office = ?1"
              " AND SubscriptionNum = ?2 AND DateTimeStart = ?3",
              DBARGS(DV_I(eo->o->num), DV_I(num), DV_T(old), DV_T(to)));
    pthread_mutex_unlock(&s->db_lock);
}

/* ---- the poller ----------------------------------------------------------------------------- */

/* Poll one due subscription: redeliver (fault), read the window, then drop (fault), send or
 * advance. */
static void poll_sub(struct ev_office *eo, const struct ev_sub *sub, struct sub_state *st)
{
    struct sim *s = ev.s;
    const struct ev_table *t = table_of(sub->table);
    struct ev_settings set;
    struct ev_window w, rw;
    char start[CLOCK_DT_LEN];
    int64_t start_n = 0, now, from_n, lost = 0;
    int found, rc = ODSYNC_OK, redeliver = 0, drop = 0;

    memset(&w, 0, sizeof(w));
    memset(&rw, 0, sizeof(rw));
    pthread_mutex_lock(&ev.lock);
    set = eo->set;
    pthread_mutex_unlock(&ev.lock);

    pthread_mutex_lock(&s->db_lock);
    /* DateTimeStart again: a PUT may have moved it since the list was read. */
    found = store_text(s,
                       "SELECT DateTimeStart FROM subscription WHERE office = ?1"
                       " AND SubscriptionNum = ?2",
                       DBARGS(DV_I(eo->o->num), DV_I(sub->num)), start, sizeof(start));
    now = clock_office_now(s, eo->o);
    if (found != 1 || clock_parse_datetime(start, &start_n) != ODSYNC_OK ||
        now < start_n + sub->poll) {
        pthread_mutex_unlock(&s->db_lock);
        goto cleanup;
    }
    from_n = start_n;
    if (set.cap_hours > 0 && from_n < now - set.cap_hours * 3600)
        from_n = now - set.cap_hours * 3600;
    clock_fmt_datetime(from_n, w.start);
    clock_fmt_datetime(now, w.end);
    if (from_n > start_n && t != NULL) {
        /* Older changes are lost (count each lost row once). */
        char lost_from[CLOCK_DT_LEN];
        clock_fmt_datetime(st->lost_upto > start_n ? st->lost_upto : start_n, lost_from);
        if (strcmp(lost_from, w.start) < 0)
            rc = count_rows(s, eo->o->num, t, lost_from, w.start, &lost);
        st->lost_upto = from_n;
    }
    if (rc == ODSYNC_OK)
        rc = window_load(s, eo->o->num, t, set.batch, &w);
    if (rc == ODSYNC_OK && st->has_acked) {
        pthread_mutex_lock(&ev.lock);
        if (eo->set.redeliver > 0) {
            eo->set.redeliver--;
            redeliver = 1;
        }
        pthread_mutex_unlock(&ev.lock);
        if (redeliver) {
            util_fmt(rw.start, sizeof(rw.start), "%s", st->acked_start);
            util_fmt(rw.end, sizeof(rw.end), "%s", st->acked_end);
            rc = window_load(s, eo->o->num, t, set.batch, &rw);
        }
    }
    pthread_mutex_unlock(&s->db_lock);
    if (rc != ODSYNC_OK) {
        log_warn(ODSIM_LOG, "events: office %d subscription %lld: cannot read the window",
                 eo->o->num, (long long)sub->num);
        st->retry_at_ms = util_monotonic_ms() + 1000;
        goto cleanup;
    }

    if (lost > 0) {
        struct ev_entry e;
        struct ev_window lw = w;
        clock_fmt_datetime(start_n, lw.start);
        util_fmt(lw.end, sizeof(lw.end), "%s", w.start);
        lw.nchunks = 0;
        lw.rows = lost;
        entry_init(eo, sub, "capped", &lw, &e);
        pthread_mutex_lock(&ev.lock);
        eo->cnt.lost_rows += lost;
        pthread_mutex_unlock(&ev.lock);
        log_add(eo, &e);
    }
    if (redeliver && rw.rows > 0) {
        st->acked_attempt++;
        send_window(eo, sub, &rw, &set, "redeliver", st->acked_attempt);
        pthread_mutex_lock(&ev.lock);
        eo->cnt.redeliveries++;
        pthread_mutex_unlock(&ev.lock);
    }
    if (w.rows == 0) {
        advance(eo, sub->num, start, w.end); /* nothing changed */
        goto cleanup;
    }
    pthread_mutex_lock(&ev.lock);
    if (eo->set.drop_next > 0) {
        eo->set.drop_next--;
        eo->cnt.drops++;
        drop = 1;
    }
    pthread_mutex_unlock(&ev.lock);
    if (drop) {
        struct ev_entry e;
        entry_init(eo, sub, "dropped", &w, &e);
        log_add(eo, &e);
        advance(eo, sub->num, start, w.end);
        goto cleanup;
    }
    st->attempt = strcmp(st->win_start, start) == 0 ? st->attempt + 1 : 1;
    util_fmt(st->win_start, sizeof(st->win_start), "%s", start);
    if (send_window(eo, sub, &w, &set, "post", st->attempt)) {
        advance(eo, sub->num, start, w.end);
        st->has_acked = 1;
        util_fmt(st->acked_start, sizeof(st->acked_start), "%s", w.start);
        util_fmt(st->acked_end, sizeof(st->acked_end), "%s", w.end);
        st->acked_attempt = st->attempt;
        st->win_start[0] = '\0';
        st->attempt = 0;
        pthread_mutex_lock(&ev.lock);
        eo->cnt.acked++;
        pthread_mutex_unlock(&ev.lock);
    } else {
        /* Kept: the whole window again on a later cycle, after the other subscriptions. */
        st->retry_at_ms = util_monotonic_ms() + (sub->poll > 1 ? sub->poll : 1) * 1000;
    }
cleanup:
    window_free(&w);
    window_free(&rw);
}

/* The state of subscription num (made when new); NULL on NOMEM. */
static struct sub_state *state_get(struct ev_office *eo, int64_t num)
{
    for (size_t i = 0; i < eo->nsubs; i++) {
        if (eo->subs[i].num == num)
            return &eo->subs[i];
    }
    if (eo->nsubs == eo->capsubs) {
        size_t cap = eo->capsubs ? eo->capsubs * 2 : 8;
        struct sub_state *n = util_realloc(eo->subs, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        eo->subs = n;
        eo->capsubs = cap;
    }
    struct sub_state *st = &eo->subs[eo->nsubs++];
    memset(st, 0, sizeof(*st));
    st->num = num;
    return st;
}

static void subs_free(struct ev_sub *subs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        util_free(subs[i].url);
        util_free(subs[i].ws);
    }
    util_free(subs);
}

/* Read the office's unexpired WatchTable subscriptions into *out (caller frees with
 * subs_free). Caller holds db_lock. */
static int subs_load(struct sim *s, struct office *o, const char *now, struct ev_sub **out,
                     size_t *n)
{
    struct ev_sub *subs = NULL;
    size_t cnt = 0, cap = 0;
    int rc = ODSYNC_STORE, step;
    sqlite3_stmt *st =
        store_prepare(s,
                      "SELECT SubscriptionNum, EndPointUrl, Workstation, WatchTable,"
                      " PollingSeconds, DateTimeStart FROM subscription WHERE office = ?1"
                      " AND WatchTable <> '' AND (DateTimeStop = '" EV_NONE_DT "'"
                      " OR DateTimeStop > ?2) ORDER BY SubscriptionNum",
                      DBARGS(DV_I(o->num), DV_T(now)));
    *out = NULL;
    *n = 0;
    if (st == NULL)
        goto cleanup;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct ev_sub *b = util_realloc(subs, ncap * sizeof(*b));
            rc = ODSYNC_NOMEM;
            if (b == NULL)
                goto cleanup;
            subs = b;
            cap = ncap;
        }
        struct ev_sub *e = &subs[cnt++];
        const char *url = (const char *)sqlite3_column_text(st, 1);
        const char *ws = (const char *)sqlite3_column_text(st, 2);
        const char *tbl = (const char *)sqlite3_column_text(st, 3);
        const char *start = (const char *)sqlite3_column_text(st, 5);
        memset(e, 0, sizeof(*e));
        e->num = sqlite3_column_int64(st, 0);
        e->url = util_strdup(url != NULL ? url : "");
        e->ws = util_strdup(ws != NULL ? ws : "");
        util_fmt(e->table, sizeof(e->table), "%s", tbl != NULL ? tbl : "");
        e->poll = sqlite3_column_int64(st, 4);
        util_fmt(e->start, sizeof(e->start), "%s", start != NULL ? start : "");
        rc = ODSYNC_NOMEM;
        if (e->url == NULL || e->ws == NULL)
            goto cleanup;
    }
    rc = step == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
cleanup:
    sqlite3_finalize(st);
    if (rc == ODSYNC_OK) {
        *out = subs;
        *n = cnt;
    } else {
        subs_free(subs, cnt);
    }
    return rc;
}

/* One cycle over the office's subscriptions. */
static void cycle(struct ev_office *eo)
{
    struct sim *s = ev.s;
    struct ev_sub *subs = NULL;
    size_t n = 0, keep = 0;
    char now_s[CLOCK_DT_LEN];
    int rc;

    pthread_mutex_lock(&s->db_lock);
    clock_office_now_str(s, eo->o, now_s);
    rc = subs_load(s, eo->o, now_s, &subs, &n);
    pthread_mutex_unlock(&s->db_lock);
    if (rc != ODSYNC_OK)
        return;
    for (size_t i = 0; i < n && !ev_stopping(); i++) {
        struct sub_state *st = state_get(eo, subs[i].num);
        int64_t start_n;
        int paused;
        if (st == NULL)
            break;
        pthread_mutex_lock(&ev.lock);
        paused = eo->set.paused;
        pthread_mutex_unlock(&ev.lock);
        if (paused)
            break;
        if (clock_parse_datetime(subs[i].start, &start_n) != ODSYNC_OK ||
            clock_office_now(s, eo->o) < start_n + subs[i].poll ||
            util_monotonic_ms() < st->retry_at_ms)
            continue;
        poll_sub(eo, &subs[i], st);
    }
    /* Forget deleted and expired subscriptions. */
    for (size_t i = 0; i < eo->nsubs; i++) {
        int listed = 0;
        for (size_t j = 0; j < n && !listed; j++)
            listed = subs[j].num == eo->subs[i].num;
        if (listed)
            eo->subs[keep++] = eo->subs[i];
    }
    eo->nsubs = keep;
    subs_free(subs, n);
}

static void *poller(void *arg)
{
    struct ev_office *eo = arg;
    while (!ev_stopping()) {
        int paused;
        pthread_mutex_lock(&ev.lock);
        paused = eo->set.paused;
        pthread_mutex_unlock(&ev.lock);
        if (!paused)
            cycle(eo);
        ev_sleep(EV_TICK_MS);
    }
    return NULL;
}

/* ---- settings ------------------------------------------------------------------------------ */

/* An integer in [min, max]: a JSON number or a decimal string. */
static int json_i64(const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
    if (cJSON_IsString(v))
        return util_parse_i64(v->valuestring, min, max, out) == ODSYNC_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > (double)max ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

static int json_bool(const cJSON *v, int *out)
{
    if (!cJSON_IsBool(v))
        return 0;
    *out = cJSON_IsTrue(v);
    return 1;
}

/* Apply a settings object (POST /_admin/events, --event-faults) to st; "office" is skipped.
 * Returns ODSYNC_OK, or ODSYNC_PARSE with why in msg (st unchanged). */
static int settings_apply(struct ev_settings *st, const cJSON *j, char *msg, size_t len)
{
    struct ev_settings next = *st;
    const cJSON *v;
    if (!cJSON_IsObject(j)) {
        util_fmt(msg, len, "event settings must be a JSON object.");
        return ODSYNC_PARSE;
    }
    cJSON_ArrayForEach(v, j)
    {
        const char *k = v->string;
        int ok;
        if (strcmp(k, "office") == 0)
            continue;
        if (strcmp(k, "machines") == 0)
            ok = json_i64(v, 1, EVENTS_MAX_MACHINE, &next.machines);
        else if (strcmp(k, "drop_next") == 0)
            ok = json_i64(v, 0, 1000000, &next.drop_next);
        else if (strcmp(k, "redeliver") == 0)
            ok = json_i64(v, 0, 1000000, &next.redeliver);
        else if (strcmp(k, "slow_ms") == 0)
            ok = json_i64(v, 0, 3600000, &next.slow_ms);
        else if (strcmp(k, "batch") == 0)
            ok = json_i64(v, 1, 1000000, &next.batch);
        else if (strcmp(k, "timeout_ms") == 0)
            ok = json_i64(v, 1, 3600000, &next.timeout_ms);
        else if (strcmp(k, "cap_hours") == 0)
            ok = json_i64(v, 0, 1000000, &next.cap_hours);
        else if (strcmp(k, "paused") == 0)
            ok = json_bool(v, &next.paused);
        else if (strcmp(k, "out_of_order") == 0)
            ok = json_bool(v, &next.out_of_order);
        else
            ok = 0;
        if (!ok) {
            util_fmt(msg, len, "unknown event setting or bad value: \"%.60s\"", k);
            return ODSYNC_PARSE;
        }
    }
    *st = next;
    return ODSYNC_OK;
}

/* The "office" of a settings object: 0 when absent, -1 when not a number in 1..max. */
static int64_t json_office(const cJSON *j, int64_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "office");
    int64_t n;
    if (v == NULL)
        return 0;
    return json_i64(v, 1, max, &n) ? n : -1;
}

int events_flag(struct events_options *opt, const char *name, const char *value, int *ok)
{
    if (strcmp(name, "event-machines") == 0) {
        *ok = util_parse_i64(value, 1, EVENTS_MAX_MACHINE, &opt->machines) == ODSYNC_OK;
    } else if (strcmp(name, "event-batch") == 0) {
        *ok = util_parse_i64(value, 1, 1000000, &opt->batch) == ODSYNC_OK;
    } else if (strcmp(name, "event-timeout-ms") == 0) {
        *ok = util_parse_i64(value, 1, 3600000, &opt->timeout_ms) == ODSYNC_OK;
    } else if (strcmp(name, "event-cap-hours") == 0) {
        *ok = util_parse_i64(value, 0, 1000000, &opt->cap_hours) == ODSYNC_OK;
        opt->cap_set = 1;
    } else if (strcmp(name, "event-faults") == 0) {
        struct ev_settings scratch = {0};
        char msg[160] = "too many --event-faults";
        cJSON *j = cJSON_Parse(value);
        *ok = opt->nfaults < EVENTS_MAX_FAULTS && json_office(j, ODSIM_MAX_OFFICES) >= 0 &&
              settings_apply(&scratch, j, msg, sizeof(msg)) == ODSYNC_OK;
        cJSON_Delete(j);
        if (*ok)
            opt->faults[opt->nfaults++] = value;
        else
            fprintf(stderr, "odsim: --event-faults: %s\n", msg);
    } else {
        return 0;
    }
    return 1;
}

/* ---- start and stop ------------------------------------------------------------------------ */

void events_stop(void)
{
    atomic_store(&ev.stop, 1);
    for (int i = 0; i < ev.n && ev.offices != NULL; i++) {
        struct ev_office *eo = &ev.offices[i];
        if (eo->started)
            pthread_join(eo->thread, NULL);
        http_client_destroy(eo->http);
        util_free(eo->subs);
        util_free(eo->log);
    }
    util_free(ev.offices);
    ev.offices = NULL;
    ev.n = 0;
    if (ev.http_ready)
        http_global_cleanup();
    ev.http_ready = 0;
    if (ev.lock_ready)
        pthread_mutex_destroy(&ev.lock);
    ev.lock_ready = 0;
    ev.s = NULL;
}

int events_start(struct sim *s, const struct events_options *opt)
{
    struct ev_settings def = {
        .machines = opt->machines > 0 ? opt->machines : 1,
        .batch = opt->batch > 0 ? opt->batch : EV_DEFAULT_BATCH,
        .timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : EV_DEFAULT_TIMEOUT_MS,
        .cap_hours = opt->cap_set ? opt->cap_hours : EV_DEFAULT_CAP_HOURS,
    };
    int rc = ODSYNC_INTERNAL;

    atomic_store(&ev.stop, 0);
    ev.s = s;
    if (pthread_mutex_init(&ev.lock, NULL) != 0)
        goto cleanup;
    ev.lock_ready = 1;
    ev.offices = util_calloc((size_t)s->noffices, sizeof(*ev.offices));
    if (ev.offices == NULL)
        goto cleanup;
    ev.n = s->noffices;
    for (int i = 0; i < ev.n; i++) {
        ev.offices[i].o = &s->offices[i];
        ev.offices[i].set = def;
    }
    for (int f = 0; f < opt->nfaults; f++) {
        char msg[160];
        cJSON *j = cJSON_Parse(opt->faults[f]);
        int64_t office = json_office(j, ev.n);
        rc = office < 0 ? ODSYNC_PARSE : ODSYNC_OK;
        for (int i = 0; i < ev.n && rc == ODSYNC_OK; i++) {
            if (office == 0 || office == i + 1)
                rc = settings_apply(&ev.offices[i].set, j, msg, sizeof(msg));
        }
        cJSON_Delete(j);
        if (rc != ODSYNC_OK) {
            fprintf(stderr, "odsim: --event-faults: office must be 1..%d\n", ev.n);
            rc = ODSYNC_PARSE;
            goto cleanup;
        }
    }
    rc = ODSYNC_INTERNAL;
    if (http_global_init() != ODSYNC_OK)
        goto cleanup;
    ev.http_ready = 1;
    for (int i = 0; i < ev.n; i++) {
        struct ev_office *o = &ev.offices[i];
        o->http = http_client_create();
        if (o->http == NULL || pthread_create(&o->thread, NULL, poller, o) != 0)
            goto cleanup;
        o->started = 1;
    }
    rc = ODSYNC_OK;
cleanup:
    if (rc != ODSYNC_OK)
        events_stop();
    return rc;
}

/* ---- admin --------------------------------------------------------------------------------- */

static cJSON *settings_json(struct ev_office *eo)
{
    struct ev_settings st;
    struct ev_counters c;
    int64_t logged;
    cJSON *j = cJSON_CreateObject(), *cj;
    pthread_mutex_lock(&ev.lock);
    st = eo->set;
    c = eo->cnt;
    logged = eo->logged;
    pthread_mutex_unlock(&ev.lock);
    cJSON_AddNumberToObject(j, "office", eo->o->num);
    cJSON_AddNumberToObject(j, "machines", (double)st.machines);
    cJSON_AddBoolToObject(j, "paused", st.paused);
    cJSON_AddNumberToObject(j, "drop_next", (double)st.drop_next);
    cJSON_AddNumberToObject(j, "redeliver", (double)st.redeliver);
    cJSON_AddBoolToObject(j, "out_of_order", st.out_of_order);
    cJSON_AddNumberToObject(j, "slow_ms", (double)st.slow_ms);
    cJSON_AddNumberToObject(j, "batch", (double)st.batch);
    cJSON_AddNumberToObject(j, "timeout_ms", (double)st.timeout_ms);
    cJSON_AddNumberToObject(j, "cap_hours", (double)st.cap_hours);
    cj = cJSON_AddObjectToObject(j, "counters");
    cJSON_AddNumberToObject(cj, "posts", (double)c.posts);
    cJSON_AddNumberToObject(cj, "rows", (double)c.rows);
    cJSON_AddNumberToObject(cj, "failures", (double)c.failures);
    cJSON_AddNumberToObject(cj, "drops", (double)c.drops);
    cJSON_AddNumberToObject(cj, "lost_rows", (double)c.lost_rows);
    cJSON_AddNumberToObject(cj, "redeliveries", (double)c.redeliveries);
    cJSON_AddNumberToObject(cj, "acked_windows", (double)c.acked);
    cJSON_AddNumberToObject(j, "logged", (double)logged);
    return j;
}

static cJSON *entry_json(const struct ev_entry *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seq", (double)e->seq);
    cJSON_AddStringToObject(j, "at", e->at);
    cJSON_AddStringToObject(j, "kind", e->kind);
    cJSON_AddNumberToObject(j, "subscription", (double)e->sub);
    cJSON_AddStringToObject(j, "table", e->table);
    cJSON_AddStringToObject(j, "workstation", e->workstation);
    cJSON_AddNumberToObject(j, "machine", e->machine);
    cJSON_AddNumberToObject(j, "attempt", (double)e->attempt);
    cJSON_AddNumberToObject(j, "chunk", e->chunk);
    cJSON_AddNumberToObject(j, "chunks", e->chunks);
    cJSON_AddNumberToObject(j, "rows", (double)e->rows);
    cJSON_AddNumberToObject(j, "status", e->status);
    cJSON_AddStringToObject(j, "error", e->error);
    cJSON_AddBoolToObject(j, "ok", e->ok);
    cJSON_AddStringToObject(j, "window_start", e->start);
    cJSON_AddStringToObject(j, "window_end", e->end);
    cJSON_AddNumberToObject(j, "ms", (double)e->ms);
    return j;
}

/* {"office":K,"logged":N,"entries":[...]}: the kept entries with seq > since, oldest first. */
static cJSON *log_json(struct ev_office *eo, int64_t since)
{
    cJSON *j = cJSON_CreateObject(), *arr;
    pthread_mutex_lock(&ev.lock);
    int64_t first = eo->logged > EVENTS_LOG_MAX ? eo->logged - EVENTS_LOG_MAX + 1 : 1;
    if (first <= since)
        first = since + 1;
    cJSON_AddNumberToObject(j, "office", eo->o->num);
    cJSON_AddNumberToObject(j, "logged", (double)eo->logged);
    arr = cJSON_AddArrayToObject(j, "entries");
    for (int64_t seq = first; seq <= eo->logged && eo->log != NULL && arr != NULL; seq++)
        cJSON_AddItemToArray(arr, entry_json(&eo->log[(seq - 1) % EVENTS_LOG_MAX]));
    pthread_mutex_unlock(&ev.lock);
    return j;
}

/* Render j (deleted here) as the answer. */
static void answer_json(struct answer *a, unsigned status, cJSON *j)
{
    char *text = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
    answer_set(a, status, text != NULL ? util_strdup(text) : NULL);
    cJSON_free(text);
    cJSON_Delete(j);
}

void events_admin(struct sim *s, const struct req *r, const cJSON *body, struct answer *a)
{
    int get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
    const char *arg = req_arg(r, "office"), *since_arg = req_arg(r, "since");
    int64_t office = 0, since = 0;
    char msg[160];
    cJSON *out = NULL, *list = NULL;
    (void)s;

    if (ev.offices == NULL) {
        answer_error(a, 503, "The event pollers are not running.");
        goto cleanup;
    }
    if (arg != NULL && util_parse_i64(arg, 1, ev.n, &office) != ODSYNC_OK) {
        answer_error(a, 404, "No such office.");
        goto cleanup;
    }
    if (arg == NULL && body != NULL && (office = json_office(body, ev.n)) < 0) {
        answer_error(a, 404, "No such office.");
        goto cleanup;
    }
    if (get && strcmp(r->path, "/_admin/events/log") == 0) {
        if (since_arg != NULL && util_parse_i64(since_arg, 0, INT64_MAX, &since) != ODSYNC_OK) {
            answer_error(a, 400, "since must be a sequence number.");
            goto cleanup;
        }
        answer_json(a, 200, log_json(&ev.offices[office > 0 ? office - 1 : 0], since));
        goto cleanup;
    }
    if (post && strcmp(r->path, "/_admin/events/reset") == 0) {
        pthread_mutex_lock(&ev.lock);
        for (int i = 0; i < ev.n; i++) {
            if (office == 0 || office == i + 1) {
                memset(&ev.offices[i].cnt, 0, sizeof(ev.offices[i].cnt));
                ev.offices[i].logged = 0;
            }
        }
        pthread_mutex_unlock(&ev.lock);
        answer_set(a, 200, util_strdup("{\"reset\":true}"));
        goto cleanup;
    }
    if (!(get || post) || strcmp(r->path, "/_admin/events") != 0) {
        answer_error(a, 404, "No such admin call.");
        goto cleanup;
    }
    if (post) {
        struct ev_settings scratch = {0};
        if (settings_apply(&scratch, body, msg, sizeof(msg)) != ODSYNC_OK) {
            answer_error(a, 400, msg);
            goto cleanup;
        }
    }
    list = cJSON_CreateArray();
    for (int i = 0; i < ev.n; i++) {
        if (office != 0 && office != i + 1)
            continue;
        if (post) {
            pthread_mutex_lock(&ev.lock);
            settings_apply(&ev.offices[i].set, body, msg, sizeof(msg)); /* validated above */
            pthread_mutex_unlock(&ev.lock);
        }
        cJSON_AddItemToArray(list, settings_json(&ev.offices[i]));
    }
    if (post)
        log_info(ODSIM_LOG, "event settings changed for %s",
                 office ? "one office" : "every office");
    if (office != 0) {
        out = cJSON_DetachItemFromArray(list, 0);
    } else {
        out = cJSON_CreateObject();
        cJSON_AddItemToObject(out, "offices", list);
        list = NULL;
    }
    answer_json(a, 200, out);
cleanup:
    cJSON_Delete(list);
}
