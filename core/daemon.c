/*
 * daemon.c: workers, the wait for a stop, and the drain.
 */
#include "daemon.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "deliver.h"
#include "log.h"
#include "outbox.h"
#include "sink_state.h"
#include "util.h"

#define TICK_MS 50

/* Offices whose routes name sink; *out: caller frees the array (not the strings, borrowed
 * from cfg). */
static int offices_of(const struct config *cfg, const char *sink, char ***out, size_t *n)
{
    size_t o, r, i;
    *n = 0;
    *out = util_calloc(cfg->n_offices ? cfg->n_offices : 1, sizeof(**out));
    if (*out == NULL)
        return ODSYNC_NOMEM;
    for (o = 0; o < cfg->n_offices; o++) {
        int routed = 0;
        for (r = 0; r < CONFIG_ROUTE_COUNT && !routed; r++)
            for (i = 0; i < cfg->offices[o].n_routes[r] && !routed; i++)
                routed = strcmp(cfg->offices[o].routes[r][i], sink) == 0;
        if (routed)
            (*out)[(*n)++] = cfg->offices[o].id;
    }
    return ODSYNC_OK;
}

/* --once: one pass per sink that is not paused, in this thread. */
static int run_once(struct runtime *rt)
{
    struct deliver_policy pol;
    struct deliver_stats ds;
    struct sink_state ss;
    size_t i;
    int rc = ODSYNC_OK;

    for (i = 0; i < rt->n_sinks && rc == ODSYNC_OK; i++) {
        const char *name = rt->sinks[i].cfg->name;
        rc = sink_state_get(rt->store, name, &ss);
        if (rc != ODSYNC_OK)
            break;
        if (ss.paused_until > util_now_ms()) {
            log_warn("run", "sink %s is paused (%s): %s", name, odsync_status_name(ss.pause_class),
                     ss.detail);
            continue;
        }
        memset(&ds, 0, sizeof(ds));
        deliver_policy_from_config(&pol, &rt->sinks[i].cfg->delivery);
        rc = deliver_sink(rt->store, rt->sinks[i].sink, &pol, &ds);
        if (ds.batches > 0)
            log_info("run", "sink %s: %lld ok, %lld retried, %lld rate-limited, %lld dead", name,
                     (long long)ds.ok, (long long)ds.retried, (long long)ds.rate_limited,
                     (long long)ds.dead);
    }
    return rc;
}

/* Start one worker per sink; workers[i] NULL where it failed (logged). Signals stay with the
 * main thread. */
static int start_workers(struct runtime *rt, struct deliver_worker **workers)
{
    struct deliver_policy pol;
    sigset_t block, old;
    char err[256], **offices = NULL;
    size_t i, n;
    int rc = ODSYNC_OK;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (i = 0; i < rt->n_sinks && rc == ODSYNC_OK; i++) {
        rc = offices_of(rt->cfg, rt->sinks[i].cfg->name, &offices, &n);
        if (rc != ODSYNC_OK)
            break;
        deliver_policy_from_config(&pol, &rt->sinks[i].cfg->delivery);
        rc = deliver_worker_start(rt->cfg->store, rt->sinks[i].sink, offices, n, &pol, &workers[i],
                                  err, sizeof(err));
        if (rc != ODSYNC_OK)
            log_error("run", "%s", err);
        util_free(offices);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* 1 when every worker has nothing left to do. */
static int all_settled(struct deliver_worker **workers, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (workers[i] != NULL && !deliver_worker_settled(workers[i]))
            return 0;
    return 1;
}

/* Stop every worker and wait for them until the longest shutdown deadline. */
static int drain(struct runtime *rt, struct deliver_worker **workers)
{
    int64_t timeout = 0, deadline;
    size_t i;
    int rc = ODSYNC_OK;

    for (i = 0; i < rt->n_sinks; i++) {
        if (rt->sinks[i].cfg->delivery.shutdown_timeout_ms > timeout)
            timeout = rt->sinks[i].cfg->delivery.shutdown_timeout_ms;
        if (workers[i] != NULL)
            deliver_worker_stop(workers[i]);
    }
    deadline = util_monotonic_ms() + timeout;
    for (i = 0; i < rt->n_sinks; i++) {
        if (workers[i] == NULL)
            continue;
        if (deliver_worker_join(workers[i], deadline) != ODSYNC_OK) {
            log_error("run",
                      "sink %s did not finish within %lld ms; its in-flight rows will be "
                      "delivered after restart",
                      rt->sinks[i].cfg->name, (long long)timeout);
            rc = ODSYNC_RETRY;
            continue;
        }
        deliver_worker_destroy(workers[i]);
        workers[i] = NULL;
    }
    return rc;
}

/* Sleep one tick. */
static void tick(void)
{
    struct timespec ts = {0, TICK_MS * 1000000L};
    nanosleep(&ts, NULL);
}

int daemon_run(struct runtime *rt, const struct daemon_options *opt,
               const volatile sig_atomic_t *stop)
{
    struct deliver_worker **workers = NULL;
    int64_t recovered = 0;
    int rc;

    rc = outbox_recover(rt->store, &recovered);
    if (rc == ODSYNC_OK && recovered > 0)
        log_warn("run", "recovered %lld deliveries left in flight by an earlier run",
                 (long long)recovered);
    if (rc == ODSYNC_OK)
        rc = sink_state_clear_auth(rt->store); /* this start is a config (re)load */
    if (rc != ODSYNC_OK || opt->once)
        return rc == ODSYNC_OK ? run_once(rt) : rc;
    workers = util_calloc(rt->n_sinks ? rt->n_sinks : 1, sizeof(*workers));
    if (workers == NULL)
        return ODSYNC_NOMEM;
    rc = start_workers(rt, workers);
    log_info("run", "odsync %s running: %zu offices, %zu sinks", ODSYNC_VERSION, rt->cfg->n_offices,
             rt->n_sinks);
    while (rc == ODSYNC_OK && !*stop && !(opt->until_idle && all_settled(workers, rt->n_sinks)))
        tick();
    if (drain(rt, workers) != ODSYNC_OK)
        rc = ODSYNC_RETRY; /* workers still running: keep them (and their memory) */
    else
        util_free(workers);
    log_info("run", "stopped");
    return rc;
}
