/*
 * deliver.c: batches from the outbox through a sink, per-item results applied.
 */
#include "deliver.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "outbox.h"
#include "sink_state.h"
#include "util.h"

void deliver_policy_default(struct deliver_policy *p)
{
    p->gate = NULL;
    p->clock = NULL;
    p->max_attempts = 8;
    p->backoff_base_ms = 1000;
    p->backoff_cap_ms = 900000;
    p->rate_default_ms = 60000;
}

void deliver_policy_from_config(struct deliver_policy *p, const struct config_delivery *d)
{
    p->gate = NULL;
    p->clock = NULL;
    p->max_attempts = (int)d->max_attempts;
    p->backoff_base_ms = d->backoff_base_ms;
    p->backoff_cap_ms = d->backoff_cap_ms;
    p->rate_default_ms = d->rate_limit_default_ms;
}

/* The policy's wall clock. */
static int64_t now_of(const struct deliver_policy *p)
{
    return p->clock != NULL ? p->clock() : util_now_ms();
}

/* A thread-local xorshift generator, seeded once per thread. */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t state;
    if (state == 0)
        state = (uint64_t)util_monotonic_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() ^
                (uint64_t)(uintptr_t)&state;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int64_t deliver_backoff_ms(const struct deliver_policy *p, int attempts)
{
    int64_t ceiling = p->backoff_base_ms;
    int i;
    for (i = 0; i < attempts && ceiling < p->backoff_cap_ms; i++)
        ceiling = ceiling > p->backoff_cap_ms / 2 ? p->backoff_cap_ms : ceiling * 2;
    if (ceiling > p->backoff_cap_ms)
        ceiling = p->backoff_cap_ms;
    return ceiling <= 0 ? 0 : (int64_t)(next_random() % ((uint64_t)ceiling + 1));
}

/* What one pass needs beyond the store and the sink. */
struct pass_scope {
    char *const *offices; /* share claims across these; NULL = one FIFO */
    size_t n_offices;
    size_t *cursor;              /* rotation over offices */
    const atomic_int *stop;      /* stop between batches when set; may be NULL */
    const atomic_int *producers; /* > 0: rows are still being queued, so claim only full
                                    batches (the rest when it drops to 0); may be NULL */
};

/* The next batch of a pass, claimed in the transaction that applies the results of the one
 * before: a worker then needs one turn of the write lock per batch, not two, which matters
 * when a projection holds it between its chunks. */
struct next_claim {
    const char *sink;
    const struct pass_scope *scope;
    int64_t start; /* due when the pass began */
    size_t max;
    int ran;                   /* out: the claim ran (count 0: nothing was due) */
    struct outbox_item *items; /* out: claimed rows (caller frees), NULL when none */
    size_t count;
};

/* Claim a batch of the pass into n (inside the caller's transaction, or its own): only full
 * batches while the office is still queueing, none once the pass is told to stop. */
static int claim_next(struct store *st, struct next_claim *n)
{
    const struct pass_scope *sc = n->scope;
    size_t min = sc->producers != NULL && atomic_load(sc->producers) > 0 ? n->max : 1;
    if (sc->stop != NULL && atomic_load(sc->stop))
        return ODSYNC_OK;
    n->ran = 1;
    return outbox_claim_fair(st, n->sink, sc->offices, sc->n_offices, sc->cursor, n->start, min,
                             n->max, &n->items, &n->count);
}

struct apply_args {
    const char *sink;
    const char *plugin;
    struct outbox_item *items;
    struct host_result *results;
    size_t count;
    const struct deliver_policy *policy;
    struct deliver_stats *stats;
    int64_t now;
    int64_t pause_until;     /* out: > 0 when the sink must pause */
    struct next_claim *next; /* the next batch, claimed in the same transaction; may be NULL */
};

/* Apply one item's result (inside the transaction). */
static int apply_one(struct store *st, struct apply_args *a, size_t i)
{
    const struct outbox_item *it = &a->items[i];
    const struct host_result *r = &a->results[i];
    int64_t wait;
    int rc;

    if (a->policy->gate != NULL && a->policy->gate->after != NULL) {
        int final = r->status == ODSYNC_OK || r->status == ODSYNC_OPTED_OUT ||
                    r->status == ODSYNC_PERMANENT || r->status == ODSYNC_UNSUPPORTED ||
                    r->status == ODSYNC_CONFIG ||
                    (r->status != ODSYNC_RATE_LIMITED && r->status != ODSYNC_AUTH &&
                     it->attempts + 1 >= a->policy->max_attempts);
        rc = a->policy->gate->after(a->policy->gate->ctx, st, it, a->plugin, r->status, final,
                                    r->remote_id, r->detail, a->now);
        if (rc != ODSYNC_OK)
            return rc;
    }
    switch (r->status) {
    case ODSYNC_OK:
        a->stats->ok++;
        return outbox_complete(st, it, r->remote_id);
    case ODSYNC_OPTED_OUT:
        a->stats->opted_out++;
        return outbox_complete(st, it, NULL);
    case ODSYNC_RATE_LIMITED:
        a->stats->rate_limited++;
        wait = r->retry_after_ms >= 0 ? r->retry_after_ms : a->policy->rate_default_ms;
        if (a->now + wait > a->pause_until)
            a->pause_until = a->now + wait;
        rc = sink_state_pause(st, a->sink, a->now + wait, r->status,
                              r->detail ? r->detail : "rate limited");
        return rc != ODSYNC_OK ? rc : outbox_retry(st, it, a->now + wait, 0, r->status, r->detail);
    case ODSYNC_AUTH:
        a->stats->auth++;
        a->pause_until = SINK_PAUSED_INDEFINITELY;
        rc = sink_state_pause(st, a->sink, SINK_PAUSED_INDEFINITELY, r->status,
                              r->detail ? r->detail : "authentication failed");
        return rc != ODSYNC_OK ? rc : outbox_retry(st, it, 0, 0, r->status, r->detail);
    case ODSYNC_PERMANENT:
    case ODSYNC_UNSUPPORTED:
    case ODSYNC_CONFIG:
        a->stats->dead++;
        return outbox_dead(st, it, r->status, r->detail);
    default:
        if (it->attempts + 1 >= a->policy->max_attempts) {
            a->stats->dead++;
            return outbox_dead(st, it, r->status, r->detail);
        }
        a->stats->retried++;
        wait = deliver_backoff_ms(a->policy, it->attempts) + 1; /* > the pass's start */
        return outbox_retry(st, it, a->now + wait, 1, r->status, r->detail);
    }
}

/* Apply every result of a batch in one transaction, then claim the next batch in it unless
 * the sink must pause. */
static int apply_tx(struct store *st, void *arg)
{
    struct apply_args *a = arg;
    size_t i;
    int rc;
    for (i = 0; i < a->count; i++) {
        rc = apply_one(st, a, i);
        if (rc != ODSYNC_OK)
            return rc;
    }
    return a->next != NULL && a->pause_until == 0 ? claim_next(st, a->next) : ODSYNC_OK;
}

struct gate_args {
    const struct deliver_gate *gate;
    int64_t now;
    struct outbox_item *items;
    size_t count;
    unsigned char *send;
};

/* Run the gate's before() in a transaction. */
static int gate_tx(struct store *st, void *arg)
{
    struct gate_args *g = arg;
    return g->gate->before(g->gate->ctx, st, g->items, g->count, g->send, g->now);
}

/* Let the gate decide which claimed items go now; those move to the front of items and
 * *count becomes their number (the rest stay behind it for the caller to free). */
static int apply_gate(struct store *st, const struct deliver_gate *gate, int64_t now,
                      struct outbox_item *items, size_t *count)
{
    struct gate_args g = {gate, now, items, *count, NULL};
    size_t i, kept = 0;
    int rc;
    if (gate == NULL || gate->before == NULL)
        return ODSYNC_OK;
    g.send = util_calloc(*count, 1);
    if (g.send == NULL)
        return ODSYNC_NOMEM;
    rc = store_tx(st, gate_tx, &g);
    for (i = 0; rc == ODSYNC_OK && i < *count; i++) {
        if (!g.send[i])
            continue;
        if (i != kept) {
            struct outbox_item tmp = items[kept];
            items[kept] = items[i];
            items[i] = tmp;
        }
        kept++;
    }
    if (rc == ODSYNC_OK)
        *count = kept;
    util_free(g.send);
    return rc;
}

struct ungate_args {
    const struct deliver_gate *gate;
    struct outbox_item *items;
    size_t count;
    int64_t now;
};

/* Tell the gate each item was not sent after all (inside store_tx). */
static int ungate_tx(struct store *st, void *arg)
{
    struct ungate_args *u = arg;
    size_t i;
    int rc = ODSYNC_OK;
    for (i = 0; i < u->count && rc == ODSYNC_OK; i++)
        rc = u->gate->after(u->gate->ctx, st, &u->items[i], NULL, ODSYNC_RETRY, 0, NULL,
                            "host error before delivery", u->now);
    return rc;
}

/* The host failed before any item reached the plugin: undo what before() recorded. */
static void ungate(struct store *st, const struct deliver_gate *gate, struct outbox_item *items,
                   size_t count, int64_t now)
{
    struct ungate_args u = {gate, items, count, now};
    if (gate != NULL && gate->after != NULL && store_tx(st, ungate_tx, &u) != ODSYNC_OK)
        log_error("deliver", "cannot undo the send ledger of %zu rows", count);
}

/* Send one claimed batch and record the outcome. *paused set when the sink must pause. With
 * next, the next batch is claimed in the transaction that records the outcome. */
static int send_one_batch(struct store *st, struct host_sink *sink, struct outbox_item *items,
                          size_t count, const struct deliver_policy *policy,
                          struct deliver_stats *stats, int *paused, struct next_claim *next)
{
    struct odsync_record *recs = NULL;
    const struct odsync_record **ptrs = NULL;
    struct host_result *results = NULL;
    struct apply_args a;
    size_t i;
    int rc;

    rc = apply_gate(st, policy->gate, now_of(policy), items, &count);
    if (rc != ODSYNC_OK || count == 0)
        return rc; /* on failure nothing was decided: the caller releases the claim */
    rc = ODSYNC_NOMEM;
    recs = util_calloc(count, sizeof(*recs));
    ptrs = util_calloc(count, sizeof(*ptrs));
    results = util_calloc(count, sizeof(*results));
    if (recs == NULL || ptrs == NULL || results == NULL) {
        ungate(st, policy->gate, items, count, now_of(policy)); /* nothing was sent */
        goto cleanup;
    }
    for (i = 0; i < count; i++) {
        recs[i].struct_size = sizeof(recs[i]);
        recs[i].kind = items[i].kind;
        recs[i].key = items[i].key;
        recs[i].office = items[i].office;
        recs[i].version = items[i].version;
        recs[i].json = items[i].body;
        recs[i].json_len = strlen(items[i].body);
        recs[i].remote_id = items[i].remote_id;
        ptrs[i] = &recs[i];
    }
    rc = host_sink_send(sink, ptrs, count, results);
    if (rc != ODSYNC_OK) {
        ungate(st, policy->gate, items, count, now_of(policy));
        goto cleanup;
    }
    stats->batches++;
    memset(&a, 0, sizeof(a));
    a.sink = host_sink_name(sink);
    a.plugin = host_sink_descriptor(sink)->name;
    a.items = items;
    a.results = results;
    a.count = count;
    a.policy = policy;
    a.stats = stats;
    a.now = now_of(policy);
    a.next = next;
    rc = store_tx(st, apply_tx, &a);
    if (rc != ODSYNC_OK && next != NULL) { /* rolled back, the claim with the rest */
        outbox_items_free(next->items, next->count);
        next->items = NULL;
        next->count = 0;
        next->ran = 0;
    }
    if (a.pause_until > 0) {
        *paused = 1;
        stats->paused_until_ms = a.pause_until;
        if (a.pause_until == SINK_PAUSED_INDEFINITELY)
            log_error("deliver",
                      "sink %s paused: the remote refused its credentials (AUTH); fix the "
                      "config and reload, or run `odsync sinks resume %s`",
                      host_sink_name(sink), host_sink_name(sink));
        else
            log_warn("deliver", "sink %s paused for %lld ms (rate limited)", host_sink_name(sink),
                     (long long)(a.pause_until - a.now));
    }
cleanup:
    host_results_clear(results, results ? count : 0);
    util_free(results);
    util_free(ptrs);
    util_free(recs);
    return rc;
}

struct release_args {
    struct outbox_item *items;
    size_t count;
    int status;
    int64_t now; /* the policy's clock: due again at once */
};

/* Put claimed rows back, due now, no attempt spent (inside store_tx). */
static int release_tx(struct store *st, void *arg)
{
    struct release_args *a = arg;
    size_t i;
    int rc;
    for (i = 0; i < a->count; i++) {
        rc = outbox_retry(st, &a->items[i], a->now, 0, a->status, "host error before delivery");
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

/* Put rows claimed for a batch that will not be sent back to pending, as they were. */
static void unclaim(struct store *st, const char *name, struct outbox_item *items, size_t count)
{
    if (count > 0 && outbox_unclaim(st, items, count) != ODSYNC_OK)
        log_error("deliver", "sink %s: cannot release %zu claimed rows", name, count);
}

/* One pass: see deliver_sink. */
static int run_pass(struct store *st, struct host_sink *sink, const struct deliver_policy *policy,
                    const struct pass_scope *scope, struct deliver_stats *stats)
{
    const char *name = host_sink_name(sink);
    /* Claim only what was due when the pass began: a row retried during this pass waits for
     * the next one, so a failing sink is not hammered. */
    const struct next_claim each = {.sink = name,
                                    .scope = scope,
                                    .start = now_of(policy),
                                    .max = host_sink_descriptor(sink)->max_batch};
    struct next_claim next;
    struct outbox_item *items = NULL;
    size_t count = 0;
    int rc = ODSYNC_OK, paused = 0, more = 1;

    while (more && !paused && !(scope->stop != NULL && atomic_load(scope->stop))) {
        if (count == 0) { /* the first batch, or the gate held the last one back entirely */
            next = each;
            rc = claim_next(st, &next);
            items = next.items;
            count = next.count;
            if (rc != ODSYNC_OK || count == 0)
                break;
        }
        next = each;
        rc = send_one_batch(st, sink, items, count, policy, stats, &paused, &next);
        if (rc != ODSYNC_OK) {
            /* Not applied: release the claim (a restart's recovery does it otherwise). */
            struct release_args ra = {items, count, rc, now_of(policy)};
            if (store_tx(st, release_tx, &ra) != ODSYNC_OK)
                log_error("deliver", "sink %s: cannot release %zu claimed rows", name, count);
        }
        outbox_items_free(items, count);
        items = next.items;
        count = next.count;
        more = !next.ran || count > 0; /* a claim that found nothing ends the pass */
        if (rc != ODSYNC_OK)
            break;
    }
    unclaim(st, name, items, count); /* claimed, then paused or stopped */
    outbox_items_free(items, count);
    return rc;
}

int deliver_sink(struct store *st, struct host_sink *sink, const struct deliver_policy *policy,
                 struct deliver_stats *stats)
{
    size_t cursor = 0;
    struct pass_scope scope = {NULL, 0, &cursor, NULL, NULL};
    return run_pass(st, sink, policy, &scope, stats);
}

/* ---- workers ------------------------------------------------------------------------ */

#define WORKER_POLL_MS 1000 /* look at the pause and the outbox at least this often */

struct deliver_worker {
    pthread_t thread;
    char *store_path;
    struct host_sink *sink; /* borrowed */
    char **offices;
    size_t n_offices;
    size_t cursor;
    struct deliver_policy policy;
    pthread_mutex_t lock; /* guards wake, stats, ended; with cond */
    pthread_cond_t cond;  /* signalled by wake, stop and the thread's end */
    int wake;
    int ended;
    atomic_int stop;
    atomic_int settled;
    atomic_int producers; /* projections in progress in the worker's offices */
    struct deliver_stats stats;
};

/* Sleep until deadline_ms (monotonic), a wake or a stop. */
static void worker_wait(struct deliver_worker *w, int64_t ms)
{
    struct timespec ts;
    int64_t until;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    until = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (ms > 0 ? ms : 0);
    ts.tv_sec = until / 1000;
    ts.tv_nsec = (long)(until % 1000) * 1000000L;
    pthread_mutex_lock(&w->lock);
    while (!w->wake && !atomic_load(&w->stop))
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) != 0)
            break;
    w->wake = 0;
    pthread_mutex_unlock(&w->lock);
}

/* Publish settled, unless a wake arrived since: rows queued after this worker looked at the
 * outbox must not be hidden by a stale "nothing to do" (deliver_worker_wake cleared it). */
static void set_settled(struct deliver_worker *w, int settled)
{
    pthread_mutex_lock(&w->lock);
    if (!w->wake)
        atomic_store(&w->settled, settled);
    pthread_mutex_unlock(&w->lock);
}

/* How long to sleep after a pass: until the next row is due or the pause ends (bounded by
 * the poll interval so an operator's resume is seen). Also updates settled. */
static int64_t worker_idle_ms(struct deliver_worker *w, struct store *st)
{
    const char *name = host_sink_name(w->sink);
    struct sink_state ss;
    struct outbox_counts oc;
    int64_t now = util_now_ms(), next = -1, wait = WORKER_POLL_MS, later = 0;

    if (sink_state_get(st, name, &ss) == ODSYNC_OK && ss.paused_until > now) {
        set_settled(w, ss.paused_until == SINK_PAUSED_INDEFINITELY);
        return ss.paused_until - now < wait ? ss.paused_until - now : wait;
    }
    if (atomic_load(&w->producers) > 0) {
        set_settled(w, 0); /* a partial batch waits for more rows, or the projection's end */
        return wait;
    }
    if (outbox_count(st, name, &oc) == ODSYNC_OK &&
        outbox_count_scheduled(st, name, now, &later) == ODSYNC_OK)
        set_settled(w, oc.pending - later == 0 && oc.inflight == 0);
    if (outbox_next_due(st, name, &next) == ODSYNC_OK && next >= 0)
        wait = next <= now ? 0 : (next - now < wait ? next - now : wait);
    return wait;
}

/* The worker thread: pass, sleep, repeat until stopped. */
static void *worker_main(void *arg)
{
    struct deliver_worker *w = arg;
    struct pass_scope scope = {w->offices, w->n_offices, &w->cursor, &w->stop, &w->producers};
    struct deliver_stats pass;
    struct sink_state ss;
    struct store *st = NULL;
    char err[512];
    int rc;

    rc = store_open(w->store_path, &st, err, sizeof(err));
    if (rc != ODSYNC_OK) {
        log_error("deliver", "sink %s: worker cannot open the store: %s", host_sink_name(w->sink),
                  err);
        goto cleanup;
    }
    while (!atomic_load(&w->stop)) {
        memset(&pass, 0, sizeof(pass));
        if (sink_state_get(st, host_sink_name(w->sink), &ss) == ODSYNC_OK &&
            ss.paused_until <= util_now_ms()) {
            rc = run_pass(st, w->sink, &w->policy, &scope, &pass);
            if (rc != ODSYNC_OK)
                log_error("deliver", "sink %s: pass failed: %s (will retry)",
                          host_sink_name(w->sink), odsync_status_name(rc));
        }
        pthread_mutex_lock(&w->lock);
        w->stats.batches += pass.batches;
        w->stats.ok += pass.ok;
        w->stats.retried += pass.retried;
        w->stats.rate_limited += pass.rate_limited;
        w->stats.auth += pass.auth;
        w->stats.dead += pass.dead;
        if (pass.paused_until_ms > 0)
            w->stats.paused_until_ms = pass.paused_until_ms;
        pthread_mutex_unlock(&w->lock);
        if (pass.batches == 0 || pass.paused_until_ms > 0)
            worker_wait(w, worker_idle_ms(w, st));
    }
cleanup:
    store_close(st);
    pthread_mutex_lock(&w->lock);
    w->ended = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Free a worker's memory (not the thread). */
static void worker_free(struct deliver_worker *w)
{
    size_t i;
    if (w == NULL)
        return;
    for (i = 0; i < w->n_offices; i++)
        util_free(w->offices[i]);
    util_free(w->offices);
    util_free(w->store_path);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    util_free(w);
}

int deliver_worker_start(const char *store_path, struct host_sink *sink, char *const *offices,
                         size_t n, const struct deliver_policy *policy, struct deliver_worker **out,
                         char *err, size_t errlen)
{
    struct deliver_worker *w = NULL;
    pthread_condattr_t ca;
    size_t i;
    int rc = ODSYNC_NOMEM;

    *out = NULL;
    w = util_calloc(1, sizeof(*w));
    if (w == NULL)
        goto cleanup;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    w->sink = sink;
    w->policy = *policy;
    w->store_path = util_strdup(store_path);
    w->offices = util_calloc(n ? n : 1, sizeof(*w->offices));
    if (w->store_path == NULL || w->offices == NULL)
        goto cleanup;
    for (i = 0; i < n; i++) {
        w->offices[i] = util_strdup(offices[i]);
        if (w->offices[i] == NULL)
            goto cleanup;
        w->n_offices = i + 1;
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        util_fmt(err, errlen, "sink %s: cannot start a worker thread", host_sink_name(sink));
        rc = ODSYNC_INTERNAL;
        goto cleanup;
    }
    *out = w;
    w = NULL;
    rc = ODSYNC_OK;
cleanup:
    if (rc == ODSYNC_NOMEM)
        util_fmt(err, errlen, "sink %s: out of memory", host_sink_name(sink));
    worker_free(w);
    return rc;
}

void deliver_worker_wake(struct deliver_worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->wake = 1;
    /* New rows: not settled until the worker has looked again. Without this, `run
     * --until-idle` could see the worker's "settled" from before the rows were queued (the
     * ingester counts its pass right after this wake) and stop with them still pending. */
    atomic_store(&w->settled, 0);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void deliver_worker_producing(struct deliver_worker *w, int begin)
{
    atomic_fetch_add(&w->producers, begin ? 1 : -1);
    if (!begin)
        deliver_worker_wake(w); /* send what waited for a full batch */
}

void deliver_worker_stop(struct deliver_worker *w)
{
    atomic_store(&w->stop, 1);
    deliver_worker_wake(w);
}

int deliver_worker_join(struct deliver_worker *w, int64_t deadline_ms)
{
    struct timespec ts;
    int ended;
    ts.tv_sec = deadline_ms / 1000;
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    pthread_mutex_lock(&w->lock);
    while (!w->ended)
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) != 0)
            break;
    ended = w->ended;
    pthread_mutex_unlock(&w->lock);
    if (!ended)
        return ODSYNC_RETRY;
    pthread_join(w->thread, NULL);
    return ODSYNC_OK;
}

void deliver_worker_destroy(struct deliver_worker *w)
{
    worker_free(w);
}

int deliver_worker_settled(struct deliver_worker *w)
{
    return atomic_load(&w->settled);
}

void deliver_worker_stats(struct deliver_worker *w, struct deliver_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}
