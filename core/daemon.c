/*
 * daemon.c: workers, the wait for a stop, and the drain.
 */
#include "daemon.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "dashboard.h"
#include "deliver.h"
#include "events.h"
#include "guard.h"
#include "http_server.h"
#include "ingest.h"
#include "log.h"
#include "od_client.h"
#include "outbox.h"
#include "project.h"
#include "resync.h"
#include "sink_state.h"
#include "subscriptions.h"
#include "util.h"
#include "webhooks.h"

#define TICK_MS 50

/* --once: one pass per sink that is not paused, in this thread. */
static int run_once(struct runtime *rt)
{
    struct deliver_gate gate;
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
        guard_gate(&gate, rt->cfg);
        pol.gate = &gate;
        rc = deliver_sink(rt->store, rt->sinks[i].sink, &pol, &ds);
        if (ds.batches > 0)
            log_info("run", "sink %s: %lld ok, %lld retried, %lld rate-limited, %lld dead", name,
                     (long long)ds.ok, (long long)ds.retried, (long long)ds.rate_limited,
                     (long long)ds.dead);
    }
    return rc;
}

/* Start one worker per sink; workers[i] NULL where it failed (logged). Signals stay with the
 * main thread. gate (borrowed) must outlive the workers. */
static int start_workers(struct runtime *rt, const struct deliver_gate *gate,
                         struct deliver_worker **workers)
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
        rc = runtime_sink_offices(rt, &rt->sinks[i], &offices, &n);
        if (rc != ODSYNC_OK)
            break;
        deliver_policy_from_config(&pol, &rt->sinks[i].cfg->delivery);
        pol.gate = gate;
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

/* The longest shutdown deadline of the sinks, from now (monotonic ms). */
static int64_t shutdown_deadline(const struct runtime *rt)
{
    int64_t timeout = 0;
    size_t i;
    for (i = 0; i < rt->n_sinks; i++)
        if (rt->sinks[i].cfg->delivery.shutdown_timeout_ms > timeout)
            timeout = rt->sinks[i].cfg->delivery.shutdown_timeout_ms;
    if (rt->cfg->delivery.shutdown_timeout_ms > timeout)
        timeout = rt->cfg->delivery.shutdown_timeout_ms;
    return util_monotonic_ms() + timeout;
}

/* Stop every worker and wait for them until deadline. keep: join but do not free them (an
 * ingester still running may yet wake them). */
static int drain(struct runtime *rt, struct deliver_worker **workers, int64_t deadline, int keep)
{
    size_t i;
    int rc = ODSYNC_OK;

    for (i = 0; i < rt->n_sinks; i++)
        if (workers[i] != NULL)
            deliver_worker_stop(workers[i]);
    for (i = 0; i < rt->n_sinks; i++) {
        if (workers[i] == NULL)
            continue;
        if (deliver_worker_join(workers[i], deadline) != ODSYNC_OK) {
            log_error("run",
                      "sink %s did not finish within %lld ms; its in-flight rows will be "
                      "delivered after restart",
                      rt->sinks[i].cfg->name,
                      (long long)(rt->sinks[i].cfg->delivery.shutdown_timeout_ms));
            rc = ODSYNC_RETRY;
            continue;
        }
        if (keep)
            continue;
        deliver_worker_destroy(workers[i]);
        workers[i] = NULL;
    }
    return rc;
}

/* ---- ingesters ---------------------------------------------------------------------- */

struct ingester {
    pthread_t thread;
    struct runtime *rt;                 /* borrowed */
    const struct config_office *office; /* borrowed */
    struct deliver_worker **workers;    /* borrowed: woken when rows are queued */
    volatile int stop;
    pthread_mutex_t lock; /* with cond: the wait between passes */
    pthread_cond_t cond;
    int ended;
    atomic_int passes; /* passes finished (complete or not) */
};

/* Wait up to ms, or until stopped. */
static void ingester_wait(struct ingester *in, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&in->lock);
    while (!in->stop)
        if (pthread_cond_timedwait(&in->cond, &in->lock, &ts) != 0)
            break;
    pthread_mutex_unlock(&in->lock);
}

/* Wake the office's delivery workers (a projection chunk queued rows). */
static void wake_workers(void *arg)
{
    struct ingester *in = arg;
    size_t i;
    for (i = 0; i < in->rt->n_sinks; i++)
        if (in->workers[i] != NULL)
            deliver_worker_wake(in->workers[i]);
}

/* Tell the office's delivery workers a projection begins (1) or ends (0). */
static void workers_producing(struct ingester *in, int begin)
{
    size_t i;
    for (i = 0; i < in->rt->n_sinks; i++)
        if (in->workers[i] != NULL)
            deliver_worker_producing(in->workers[i], begin);
}

/* Project the office while its workers deliver what each chunk queued: they send full
 * batches while it runs, and the rest once it ends (deliver_worker_producing). */
static int project_with_workers(struct ingester *in, struct store *st, struct project_stats *ps)
{
    int rc;
    workers_producing(in, 1);
    rc = project_office_notify(st, in->office, ps, wake_workers, in);
    workers_producing(in, 0);
    return rc;
}

/* The ingester thread: pass, project (the workers deliver meanwhile), wait; until stopped. */
static void *ingester_main(void *arg)
{
    struct ingester *in = arg;
    struct ingest_options opt = {NULL, 0, &in->stop};
    struct ingest_report rep;
    struct project_stats ps;
    struct store *st = NULL;
    struct od_client *c = od_client_create(in->office);
    char err[512];

    if (c == NULL || store_open(in->rt->cfg->store, &st, err, sizeof(err)) != ODSYNC_OK) {
        log_error("run", "office %s: ingester cannot start", in->office->id);
        goto cleanup;
    }
    od_client_set_stop(c, &in->stop);
    while (!in->stop) {
        ingest_office(st, in->office, c, &opt, &rep);
        /* Project only complete passes: a stopped pass may not have read the recalls of the
         * patients it changed yet, and the next pass does (their dirty marks stay). */
        memset(&ps, 0, sizeof(ps));
        if (rep.complete && project_with_workers(in, st, &ps) != ODSYNC_OK) {
            /* The dirty marks stay: try again soon; the pass does not count as finished. */
            log_error("run", "office %s: projection failed; retrying in 1 s", in->office->id);
            ingester_wait(in, 1000);
            continue;
        }
        log_info("run", "office %s: pass %s, %lld requests, %lld contacts changed", in->office->id,
                 rep.complete ? "complete" : "stopped", (long long)rep.requests,
                 (long long)ps.changed);
        atomic_fetch_add(&in->passes, 1);
        if (rep.status == ODSYNC_AUTH) {
            /* Keys refused: asking again cannot help. Paused until the config is reloaded. */
            log_error("run",
                      "office %s: Open Dental refused the keys; ingestion paused until the "
                      "configuration is reloaded (state: auth)",
                      in->office->id);
            ingester_wait(in, INT64_MAX / 4);
            continue;
        }
        ingester_wait(in, in->office->od_sync_interval_s * 1000);
    }
cleanup:
    atomic_fetch_add(&in->passes, 1);
    od_client_destroy(c);
    store_close(st);
    pthread_mutex_lock(&in->lock);
    in->ended = 1;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    return NULL;
}

/* Start one ingester per office (signals stay with the main thread). */
static struct ingester *start_ingesters(struct runtime *rt, struct deliver_worker **workers)
{
    struct ingester *ins = util_calloc(rt->cfg->n_offices ? rt->cfg->n_offices : 1, sizeof(*ins));
    sigset_t block, old;
    size_t i;
    if (ins == NULL)
        return NULL;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (i = 0; i < rt->cfg->n_offices; i++) {
        ins[i].rt = rt;
        ins[i].office = &rt->cfg->offices[i];
        ins[i].workers = workers;
        pthread_mutex_init(&ins[i].lock, NULL);
        pthread_cond_init(&ins[i].cond, NULL);
        if (pthread_create(&ins[i].thread, NULL, ingester_main, &ins[i]) != 0) {
            log_error("run", "office %s: cannot start an ingester", ins[i].office->id);
            ins[i].ended = 1;
            ins[i].rt = NULL; /* never started: nothing to join */
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ins;
}

/* 1 when every office finished at least one pass. */
static int all_passed(const struct ingester *ins, size_t n)
{
    size_t i;
    for (i = 0; ins != NULL && i < n; i++)
        if (ins[i].rt != NULL && atomic_load(&ins[i].passes) == 0)
            return 0;
    return 1;
}

/* Stop the ingesters and wait for them until deadline (monotonic ms). ODSYNC_RETRY when one
 * is still running (it must then be left alone). */
static int stop_ingesters(struct ingester *ins, size_t n, int64_t deadline)
{
    struct timespec ts;
    size_t i;
    int rc = ODSYNC_OK, ended;
    for (i = 0; ins != NULL && i < n; i++) {
        pthread_mutex_lock(&ins[i].lock);
        ins[i].stop = 1;
        pthread_cond_broadcast(&ins[i].cond);
        pthread_mutex_unlock(&ins[i].lock);
    }
    for (i = 0; ins != NULL && i < n; i++) {
        if (ins[i].rt == NULL)
            continue;
        for (;;) {
            pthread_mutex_lock(&ins[i].lock);
            ended = ins[i].ended;
            pthread_mutex_unlock(&ins[i].lock);
            if (ended || util_monotonic_ms() >= deadline)
                break;
            ts.tv_sec = 0;
            ts.tv_nsec = TICK_MS * 1000000L;
            nanosleep(&ts, NULL);
        }
        if (!ended) {
            log_error("run", "office %s: ingestion did not stop in time", ins[i].office->id);
            rc = ODSYNC_RETRY;
            continue;
        }
        pthread_join(ins[i].thread, NULL);
        pthread_cond_destroy(&ins[i].cond);
        pthread_mutex_destroy(&ins[i].lock);
    }
    return rc;
}

/* ---- the API Events receiver ---------------------------------------------------------- */

struct receiver {
    struct runtime *rt;
    struct http_server *server;
    struct events *events;
    struct webhooks *webhooks;
    struct dashboard *dashboard;
    struct deliver_worker **workers; /* borrowed: woken when rows are queued */
    pthread_t thread;
    pthread_mutex_t lock; /* with cond: the worker's wait */
    pthread_cond_t cond;
    int wake, stop, ended, started;
};

/* One listener, routes with their owners: provider webhooks, the dashboard, else Open
 * Dental's events. */
static void receiver_route(void *arg, const struct http_request *req, struct http_reply *reply)
{
    struct receiver *r = arg;
    if (webhooks_route(req->path))
        webhooks_http_handler(r->webhooks, req, reply);
    else if (dashboard_route(req->path))
        dashboard_http_handler(r->dashboard, req, reply);
    else
        events_http_handler(r->events, req, reply);
}

/* The handler committed a batch: let the worker apply it now. */
static void receiver_notify(void *arg)
{
    struct receiver *r = arg;
    pthread_mutex_lock(&r->lock);
    r->wake = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* The inbox worker: apply new batches, project, wake the sinks; sleep until notified. */
static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    struct events_stats es;
    struct store *st = NULL;
    struct timespec ts;
    char err[512];
    size_t i;

    if (store_open(r->rt->cfg->store, &st, err, sizeof(err)) != ODSYNC_OK) {
        log_error("run", "events worker cannot open the store: %s", err);
        goto cleanup;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        r->wake = 0;
        pthread_mutex_unlock(&r->lock);
        memset(&es, 0, sizeof(es));
        if (events_process(st, r->rt->cfg, 64, &es) != ODSYNC_OK)
            log_error("run", "events worker: applying the inbox failed (will retry)");
        for (i = 0; es.applied > 0 && i < r->rt->n_sinks; i++)
            if (r->workers[i] != NULL)
                deliver_worker_wake(r->workers[i]);
        pthread_mutex_lock(&r->lock);
        if (es.batches == 64 || r->wake)
            continue; /* more may be waiting */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (!r->wake && !r->stop)
            if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
                break;
    }
    pthread_mutex_unlock(&r->lock);
cleanup:
    store_close(st);
    pthread_mutex_lock(&r->lock);
    r->ended = 1;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Listen on cfg->listen for API Events and start the inbox worker. */
static int start_receiver(struct runtime *rt, struct deliver_worker **workers, struct receiver *r)
{
    struct http_server_options o = {rt->cfg->listen, (size_t)rt->cfg->events.max_body_bytes,
                                    rt->cfg->events.tls_cert, rt->cfg->events.tls_key, 4};
    sigset_t block, old;
    char err[512];
    int rc;

    memset(r, 0, sizeof(*r));
    r->rt = rt;
    r->workers = workers;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    rc = events_create(rt->cfg, rt->cfg->store, &r->events, err, sizeof(err));
    if (rc != ODSYNC_OK) {
        log_error("run", "events: %s", err);
        return rc;
    }
    events_set_notify(r->events, receiver_notify, r);
    rc = webhooks_create(rt->cfg, rt->cfg->store, &r->webhooks, err, sizeof(err));
    if (rc != ODSYNC_OK) {
        log_error("run", "webhooks: %s", err);
        events_destroy(r->events);
        return rc;
    }
    rc = dashboard_create(rt->cfg, rt->cfg->store, &r->dashboard, err, sizeof(err));
    if (rc != ODSYNC_OK) {
        log_error("run", "dashboard: %s", err);
        webhooks_destroy(r->webhooks);
        events_destroy(r->events);
        return rc;
    }
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = http_server_start(&o, receiver_route, r, &r->server, err, sizeof(err));
    if (rc == ODSYNC_OK && pthread_create(&r->thread, NULL, receiver_main, r) == 0)
        r->started = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != ODSYNC_OK) {
        log_error("run", "%s: %s", rt->cfg->listen, err);
        return rc;
    }
    /* The bound port, for operators and tests (listen may ask for port 0). */
    printf("odsync: listening on %.*s:%d\n", (int)(strrchr(rt->cfg->listen, ':') - rt->cfg->listen),
           rt->cfg->listen, http_server_port(r->server));
    fflush(stdout);
    return ODSYNC_OK;
}

/* Stop listening (in-flight requests finish) and stop the worker by deadline. */
static int stop_receiver(struct receiver *r, int64_t deadline)
{
    struct timespec ts = {0, TICK_MS * 1000000L};
    int ended = 0;
    http_server_stop(r->server);
    r->server = NULL;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    while (r->started) {
        pthread_mutex_lock(&r->lock);
        ended = r->ended;
        pthread_mutex_unlock(&r->lock);
        if (ended || util_monotonic_ms() >= deadline)
            break;
        nanosleep(&ts, NULL);
    }
    if (r->started && !ended)
        return ODSYNC_RETRY;
    if (r->started)
        pthread_join(r->thread, NULL);
    events_destroy(r->events);
    webhooks_destroy(r->webhooks);
    dashboard_destroy(r->dashboard);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    return ODSYNC_OK;
}

/* Sleep one tick. */
static void tick(void)
{
    struct timespec ts = {0, TICK_MS * 1000000L};
    nanosleep(&ts, NULL);
}

/* events.ensure_at_start: make each office's subscriptions right before listening. */
static void ensure_subscriptions(struct runtime *rt)
{
    struct subs_report rep;
    char err[512];
    size_t i;
    for (i = 0; i < rt->cfg->n_offices; i++) {
        struct od_client *c = od_client_create(&rt->cfg->offices[i]);
        if (c == NULL)
            continue;
        if (subs_ensure(c, rt->cfg, &rt->cfg->offices[i], &rep, err, sizeof(err)) != ODSYNC_OK)
            log_error("run", "office %s: subscriptions: %s", rt->cfg->offices[i].id, err);
        else
            log_info("run", "office %s: subscriptions: %d created, %d updated, %d unchanged",
                     rt->cfg->offices[i].id, rep.created, rep.updated, rep.unchanged);
        od_client_destroy(c);
    }
}

/* A sink newly routed for an office (an office switched CRMs in its config) receives the
 * office's full state once, before anything else is delivered. */
static int seed_new_routes(struct runtime *rt)
{
    int64_t queued = 0;
    int rc = resync_new_routes(rt->store, rt->cfg, &queued);
    if (rc == ODSYNC_OK && queued > 0)
        log_info("run", "newly routed sinks: %lld records queued (the office's full state)",
                 (long long)queued);
    return rc;
}

int daemon_run(struct runtime *rt, const struct daemon_options *opt,
               const volatile sig_atomic_t *stop)
{
    struct deliver_worker **workers = NULL;
    struct deliver_gate gate;
    struct ingester *ins = NULL;
    struct receiver rcv;
    int64_t recovered = 0, deadline;
    int rc, listening = 0;

    rc = outbox_recover(rt->store, &recovered);
    if (rc == ODSYNC_OK && recovered > 0)
        log_warn("run", "recovered %lld deliveries left in flight by an earlier run",
                 (long long)recovered);
    if (rc == ODSYNC_OK)
        rc = sink_state_clear_auth(rt->store); /* this start is a config (re)load */
    if (rc == ODSYNC_OK)
        rc = seed_new_routes(rt);
    if (rc != ODSYNC_OK || opt->once)
        return rc == ODSYNC_OK ? run_once(rt) : rc;
    workers = util_calloc(rt->n_sinks ? rt->n_sinks : 1, sizeof(*workers));
    if (workers == NULL)
        return ODSYNC_NOMEM;
    guard_gate(&gate, rt->cfg);
    rc = start_workers(rt, &gate, workers);
    if (rc == ODSYNC_OK && !opt->deliver_only) {
        if (rt->cfg->events.ensure_at_start && rt->cfg->events.public_url != NULL)
            ensure_subscriptions(rt);
        rc = start_receiver(rt, workers, &rcv);
        listening = rc == ODSYNC_OK;
    }
    if (rc == ODSYNC_OK && !opt->deliver_only) {
        ins = start_ingesters(rt, workers);
        rc = ins != NULL ? ODSYNC_OK : ODSYNC_NOMEM;
    }
    log_info("run", "odsync %s running: %zu offices, %zu sinks", ODSYNC_VERSION, rt->cfg->n_offices,
             rt->n_sinks);
    while (rc == ODSYNC_OK && !*stop &&
           !(opt->until_idle && all_passed(ins, rt->cfg->n_offices) &&
             all_settled(workers, rt->n_sinks)))
        tick();
    deadline = shutdown_deadline(rt);
    if (listening && stop_receiver(&rcv, deadline) != ODSYNC_OK)
        rc = ODSYNC_RETRY;
    if (stop_ingesters(ins, ins ? rt->cfg->n_offices : 0, deadline) != ODSYNC_OK)
        rc = ODSYNC_RETRY;
    /* An ingester or the events worker that outlived the deadline may still wake these
     * workers: they must outlive it too, or that wake is a use after free. */
    if (drain(rt, workers, deadline, rc == ODSYNC_RETRY) != ODSYNC_OK || rc == ODSYNC_RETRY)
        return ODSYNC_RETRY; /* threads still running: keep their memory */
    util_free(workers);
    util_free(ins);
    log_info("run", "stopped");
    return rc;
}
