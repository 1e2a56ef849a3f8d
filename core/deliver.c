/*
 * deliver.c: batches from the outbox through a sink, per-item results applied.
 */
#include "deliver.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "outbox.h"
#include "util.h"

void deliver_policy_default(struct deliver_policy *p)
{
    p->max_attempts = 8;
    p->backoff_base_ms = 1000;
    p->backoff_cap_ms = 900000;
    p->rate_default_ms = 60000;
    p->auth_pause_ms = 300000;
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

struct apply_args {
    struct outbox_item *items;
    struct host_result *results;
    size_t count;
    const struct deliver_policy *policy;
    struct deliver_stats *stats;
    int64_t now;
    int64_t pause_until; /* out: > 0 when the sink must pause */
};

/* Apply one item's result (inside the transaction). */
static int apply_one(struct store *st, struct apply_args *a, size_t i)
{
    const struct outbox_item *it = &a->items[i];
    const struct host_result *r = &a->results[i];
    int64_t wait;

    switch (r->status) {
    case ODSYNC_OK:
        a->stats->ok++;
        return outbox_complete(st, it, r->remote_id);
    case ODSYNC_RATE_LIMITED:
        a->stats->rate_limited++;
        wait = r->retry_after_ms >= 0 ? r->retry_after_ms : a->policy->rate_default_ms;
        if (a->now + wait > a->pause_until)
            a->pause_until = a->now + wait;
        return outbox_retry(st, it, a->now + wait, 0, r->status, r->detail);
    case ODSYNC_AUTH:
        a->stats->auth++;
        if (a->now + a->policy->auth_pause_ms > a->pause_until)
            a->pause_until = a->now + a->policy->auth_pause_ms;
        return outbox_retry(st, it, a->now + a->policy->auth_pause_ms, 0, r->status, r->detail);
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

/* Apply every result of a batch in one transaction. */
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
    return ODSYNC_OK;
}

/* Send one claimed batch and record the outcome. *paused set when the sink must pause. */
static int send_one_batch(struct store *st, struct host_sink *sink, struct outbox_item *items,
                          size_t count, const struct deliver_policy *policy,
                          struct deliver_stats *stats, int *paused)
{
    struct odsync_record *recs = NULL;
    const struct odsync_record **ptrs = NULL;
    struct host_result *results = NULL;
    struct apply_args a;
    size_t i;
    int rc = ODSYNC_NOMEM;

    recs = util_calloc(count, sizeof(*recs));
    ptrs = util_calloc(count, sizeof(*ptrs));
    results = util_calloc(count, sizeof(*results));
    if (recs == NULL || ptrs == NULL || results == NULL)
        goto cleanup;
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
    if (rc != ODSYNC_OK)
        goto cleanup;
    stats->batches++;
    memset(&a, 0, sizeof(a));
    a.items = items;
    a.results = results;
    a.count = count;
    a.policy = policy;
    a.stats = stats;
    a.now = util_now_ms();
    rc = store_tx(st, apply_tx, &a);
    if (a.pause_until > 0) {
        *paused = 1;
        stats->paused_until_ms = a.pause_until;
        log_warn("deliver", "sink %s paused for %lld ms", host_sink_name(sink),
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
};

/* Put claimed rows back, due now, no attempt spent (inside store_tx). */
static int release_tx(struct store *st, void *arg)
{
    struct release_args *a = arg;
    size_t i;
    int rc;
    for (i = 0; i < a->count; i++) {
        rc = outbox_retry(st, &a->items[i], util_now_ms(), 0, a->status,
                          "host error before delivery");
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

int deliver_sink(struct store *st, struct host_sink *sink, const struct deliver_policy *policy,
                 struct deliver_stats *stats)
{
    const char *name = host_sink_name(sink);
    size_t max = host_sink_descriptor(sink)->max_batch, count = 0;
    struct outbox_item *items = NULL;
    int64_t start = util_now_ms();
    int rc = ODSYNC_OK, paused = 0;

    while (!paused) {
        /* Claim only what was due when the pass began: a row retried during this pass waits
         * for the next one, so a failing sink is not hammered. */
        rc = outbox_claim(st, name, start, max, &items, &count);
        if (rc != ODSYNC_OK || count == 0)
            break;
        rc = send_one_batch(st, sink, items, count, policy, stats, &paused);
        if (rc != ODSYNC_OK) {
            /* Not applied: release the claim (a restart's recovery does it otherwise). */
            struct release_args ra = {items, count, rc};
            if (store_tx(st, release_tx, &ra) != ODSYNC_OK)
                log_error("deliver", "sink %s: cannot release %zu claimed rows",
                          host_sink_name(sink), count);
        }
        outbox_items_free(items, count);
        items = NULL;
        if (rc != ODSYNC_OK)
            break;
    }
    return rc;
}
