/*
 * test_deliver: core/deliver through a real plugin, build/tests/abi/scripted.so, whose
 * per-item result is chosen by each record's "first_name" (see tests/abi/fixtures/scripted.c)
 * and which appends "<key>@<version>" to $SCRIPTED_LOG for every record it is sent.
 * Checks: OK -> done with the remote id; RETRY -> backoff, attempt counted; RATE_LIMITED ->
 * the sink pauses, no attempt spent; PERMANENT -> dead letter with detail; AUTH -> pause;
 * unreported -> RETRY; only failed items are resent; attempts exhausted -> dead; backoff
 * bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "deliver.h"
#include "sink_state.h"
#include "host_api.h"
#include "log.h"
#include "outbox.h"
#include "plugin.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

#define SINK   "crm"
#define OFFICE "main-st"

static char *dir;      /* per test, from setup */
static char *log_path; /* dir/deliveries.log, $SCRIPTED_LOG */
static struct store *st;
static struct plugin *plug;
static struct host_sink *sink;
static struct deliver_policy policy;
static FILE *devnull;

static void setup(void)
{
    char path[512], err[512];
    char *so = tu_build_path("tests/abi/scripted.so");
    cJSON *settings;

    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "store: %s", err);
    ck_assert_msg(plugin_open(so, &plug, err, sizeof(err)) == ODSYNC_OK, "plugin: %s", err);
    free(so);
    ck_assert_str_eq(plugin_descriptor(plug)->name, "scripted");
    ck_assert_uint_eq(plugin_descriptor(plug)->max_batch, 10);
    settings = cJSON_Parse("{\"mode\": \"test\"}");
    ck_assert_ptr_nonnull(settings);
    ck_assert_msg(host_sink_create(plug, SINK, settings, "sinks." SINK, &sink, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "sink: %s", err);
    cJSON_Delete(settings);

    log_path = malloc(strlen(dir) + 32);
    ck_assert_ptr_nonnull(log_path);
    snprintf(log_path, strlen(dir) + 32, "%s/deliveries.log", dir);
    ck_assert_int_eq(setenv("SCRIPTED_LOG", log_path, 1), 0);

    deliver_policy_default(&policy);
    /* a long backoff ceiling makes "next_at is in the future" certain in practice */
    policy.backoff_base_ms = INT64_C(1000000000);
    policy.backoff_cap_ms = INT64_C(1000000000);
}

static void teardown(void)
{
    host_sink_destroy(sink);
    plugin_close(plug);
    store_close(st);
    log_shutdown();
    fclose(devnull);
    unsetenv("SCRIPTED_LOG");
    tu_rmrf(dir);
    free(dir);
    free(log_path);
}

struct enq {
    const char *key, *first_name;
    int64_t version;
};

static int enqueue_tx(struct store *s, void *arg)
{
    const struct enq *e = arg;
    char body[256];
    ck_assert_int_eq(util_fmt(body, sizeof(body),
                              "{\"key\":\"%s\",\"office\":\"%s\",\"first_name\":\"%s\"}", e->key,
                              OFFICE, e->first_name),
                     ODSYNC_OK);
    return outbox_enqueue(s, SINK, OFFICE, e->key, ODSYNC_KIND_CONTACT, e->version, body);
}

/* Queue key (version 1) for the sink; first_name scripts the plugin's answer. */
static void enqueue_v(const char *key, const char *first_name, int64_t version)
{
    struct enq e = {key, first_name, version};
    ck_assert_int_eq(store_tx(st, enqueue_tx, &e), ODSYNC_OK);
}

static void enqueue(const char *key, const char *first_name)
{
    enqueue_v(key, first_name, 1);
}

/* Run deliver_sink; asserts it returns OK. */
static struct deliver_stats deliver(void)
{
    struct deliver_stats stats;
    memset(&stats, 0, sizeof(stats));
    ck_assert_int_eq(deliver_sink(st, sink, &policy, &stats), ODSYNC_OK);
    return stats;
}

/* One column of the row of key as text into buf ("" for NULL). */
static const char *col(const char *key, const char *column, char *buf, size_t len)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    const unsigned char *t;
    snprintf(sql, sizeof(sql), "SELECT %s FROM outbox WHERE sink = '" SINK "' AND key = ?", column);
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    t = sqlite3_column_text(s, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
    sqlite3_finalize(s);
    return buf;
}

static const char *state_of(const char *key)
{
    static char buf[32];
    return col(key, "state", buf, sizeof(buf));
}

static int64_t int_of(const char *key, const char *column)
{
    char buf[32];
    return strtoll(col(key, column, buf, sizeof(buf)), NULL, 10);
}

/* Make every pending row due now, as if its backoff had passed. */
static void make_all_due(void)
{
    ck_assert_int_eq(store_exec(st, "UPDATE outbox SET next_at = 0 WHERE state = 'pending'"),
                     ODSYNC_OK);
}

/* How many times the plugin was sent "<key>@<version>" (any key when key is NULL). */
static int sent(const char *key, int64_t version)
{
    char *text = tu_read_file(log_path), needle[128];
    int n;
    if (text == NULL)
        return 0;
    if (key == NULL)
        n = tu_count(text, "\n");
    else {
        snprintf(needle, sizeof(needle), "%s@%lld\n", key, (long long)version);
        n = tu_count(text, needle);
    }
    free(text);
    return n;
}

START_TEST(ok_rows_done_with_remote_id)
{
    struct deliver_stats s;
    char buf[128];
    enqueue("od:main-st:1", "Ann");
    enqueue("od:main-st:2", "Bo");
    enqueue_v("od:main-st:3", "Cy", 4);
    s = deliver();
    ck_assert_int_eq(s.batches, 1);
    ck_assert_int_eq(s.ok, 3);
    ck_assert_int_eq(s.retried + s.rate_limited + s.auth + s.dead, 0);
    ck_assert_int_eq(s.paused_until_ms, 0);
    ck_assert_str_eq(state_of("od:main-st:1"), "done");
    ck_assert_str_eq(state_of("od:main-st:3"), "done");
    ck_assert_str_eq(col("od:main-st:1", "remote_id", buf, sizeof(buf)), "r-od:main-st:1");
    ck_assert_str_eq(col("od:main-st:3", "remote_id", buf, sizeof(buf)), "r-od:main-st:3");
    ck_assert_int_eq(sent(NULL, 0), 3);
    ck_assert_int_eq(sent("od:main-st:3", 4), 1);
    /* nothing due: a second run sends nothing */
    s = deliver();
    ck_assert_int_eq(s.batches, 0);
    ck_assert_int_eq(sent(NULL, 0), 3);
    ck_assert_int_eq(host_sink_counter(sink, "scripted_records"), 3);
}
END_TEST

/* Even with zero backoff, a failing row is sent once per pass, not in a loop. */
START_TEST(zero_backoff_sends_once_per_pass)
{
    struct deliver_stats s;
    policy.backoff_base_ms = 0;
    policy.backoff_cap_ms = 0;
    enqueue("od:main-st:1", "RETRY");
    s = deliver();
    ck_assert_int_eq(s.retried, 1);
    ck_assert_int_eq(s.batches, 1);
    ck_assert_int_eq(sent(NULL, 0), 1);
    ck_assert_str_eq(state_of("od:main-st:1"), "pending");
}
END_TEST

START_TEST(retry_backs_off_and_counts_attempt)
{
    struct deliver_stats s;
    char buf[128];
    int64_t before = util_now_ms();
    enqueue("od:main-st:1", "RETRY");
    s = deliver();
    ck_assert_int_eq(s.retried, 1);
    ck_assert_int_eq(s.ok + s.dead, 0);
    ck_assert_int_eq(s.paused_until_ms, 0);
    ck_assert_str_eq(state_of("od:main-st:1"), "pending");
    ck_assert_int_eq(int_of("od:main-st:1", "attempts"), 1);
    ck_assert_int_gt(int_of("od:main-st:1", "next_at"), util_now_ms());
    ck_assert_int_le(int_of("od:main-st:1", "next_at"), before + policy.backoff_cap_ms + 1000);
    ck_assert_int_eq(int_of("od:main-st:1", "last_class"), ODSYNC_RETRY);
    ck_assert_str_eq(col("od:main-st:1", "last_detail", buf, sizeof(buf)), "scripted retry");
    ck_assert_int_eq(sent(NULL, 0), 1); /* not resent within the same run */
}
END_TEST

START_TEST(rate_limited_pauses_sink_without_attempt)
{
    struct deliver_stats s;
    int64_t before = util_now_ms(), next_at;
    char key[32];
    int i;
    enqueue("od:main-st:1", "RATE");
    for (i = 2; i <= 12; i++) {
        snprintf(key, sizeof(key), "od:main-st:%d", i);
        enqueue(key, "Ok");
    }
    s = deliver();
    /* the first batch of 10 ran; the sink then paused, so the last 2 wait */
    ck_assert_int_eq(s.batches, 1);
    ck_assert_int_eq(s.rate_limited, 1);
    ck_assert_int_eq(s.ok, 9);
    ck_assert_int_gt(s.paused_until_ms, 0);
    ck_assert_int_ge(s.paused_until_ms, before + 5000);
    ck_assert_int_le(s.paused_until_ms, util_now_ms() + 5000);
    ck_assert_int_eq(sent(NULL, 0), 10);
    ck_assert_str_eq(state_of("od:main-st:1"), "pending");
    ck_assert_int_eq(int_of("od:main-st:1", "attempts"), 0);
    ck_assert_int_eq(int_of("od:main-st:1", "last_class"), ODSYNC_RATE_LIMITED);
    next_at = int_of("od:main-st:1", "next_at");
    ck_assert_int_ge(next_at, before + 5000);
    ck_assert_int_le(next_at, util_now_ms() + 5000);
    ck_assert_str_eq(state_of("od:main-st:12"), "pending");
}
END_TEST

START_TEST(permanent_is_dead_with_detail)
{
    struct deliver_stats s;
    char buf[128];
    enqueue("od:main-st:1", "PERM");
    s = deliver();
    ck_assert_int_eq(s.dead, 1);
    ck_assert_str_eq(state_of("od:main-st:1"), "dead");
    ck_assert_int_eq(int_of("od:main-st:1", "last_class"), ODSYNC_PERMANENT);
    ck_assert_str_eq(col("od:main-st:1", "last_detail", buf, sizeof(buf)), "rejected by remote");
    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.batches, 0);
    ck_assert_int_eq(sent(NULL, 0), 1);
}
END_TEST

/* OPTED_OUT (ABI 1.1) settles the row as done, not dead, spends no retry and is counted. */
START_TEST(opted_out_is_done_not_dead)
{
    struct deliver_stats s;
    enqueue("od:main-st:1", "OPTOUT");
    s = deliver();
    ck_assert_int_eq(s.opted_out, 1);
    ck_assert_int_eq(s.dead, 0);
    ck_assert_int_eq(s.retried, 0);
    ck_assert_str_eq(state_of("od:main-st:1"), "done");
    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.batches, 0);
    ck_assert_int_eq(sent(NULL, 0), 1);
}
END_TEST

START_TEST(auth_pauses_sink)
{
    struct deliver_stats s;
    struct sink_state ss;
    int cleared = 0;
    enqueue("od:main-st:1", "AUTH");
    enqueue("od:main-st:2", "Ok");
    s = deliver();
    ck_assert_int_eq(s.auth, 1);
    ck_assert_int_eq(s.ok, 1);
    ck_assert(s.paused_until_ms == SINK_PAUSED_INDEFINITELY);
    ck_assert_str_eq(state_of("od:main-st:1"), "pending");
    ck_assert_int_eq(int_of("od:main-st:1", "attempts"), 0);
    ck_assert_int_eq(int_of("od:main-st:1", "last_class"), ODSYNC_AUTH);
    ck_assert_int_eq(int_of("od:main-st:1", "next_at"), 0);
    ck_assert_str_eq(state_of("od:main-st:2"), "done");
    /* The pause is durable and lasts until an operator resumes the sink. */
    ck_assert_int_eq(sink_state_get(st, "crm", &ss), ODSYNC_OK);
    ck_assert(ss.paused_until == SINK_PAUSED_INDEFINITELY);
    ck_assert_int_eq(ss.pause_class, ODSYNC_AUTH);
    ck_assert_int_eq(sink_state_resume(st, "crm", &cleared), ODSYNC_OK);
    ck_assert_int_eq(cleared, 1);
    ck_assert_int_eq(sink_state_get(st, "crm", &ss), ODSYNC_OK);
    ck_assert_int_eq(ss.paused_until, 0);
}
END_TEST

START_TEST(unreported_item_is_retry)
{
    struct deliver_stats s;
    char buf[256];
    enqueue("od:main-st:1", "SILENT");
    s = deliver();
    ck_assert_int_eq(s.retried, 1);
    ck_assert_str_eq(state_of("od:main-st:1"), "pending");
    ck_assert_int_eq(int_of("od:main-st:1", "attempts"), 1);
    ck_assert_int_eq(int_of("od:main-st:1", "last_class"), ODSYNC_RETRY);
    ck_assert_ptr_nonnull(
        strstr(col("od:main-st:1", "last_detail", buf, sizeof(buf)), "no result reported"));
}
END_TEST

START_TEST(only_failed_items_are_resent)
{
    static const char *const names[] = {"Ann", "RETRY", "Bo", "SILENT", "Cy"};
    struct deliver_stats s;
    char key[32];
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(names); i++) {
        snprintf(key, sizeof(key), "od:main-st:%zu", i + 1);
        enqueue(key, names[i]);
    }
    s = deliver();
    ck_assert_int_eq(s.batches, 1);
    ck_assert_int_eq(s.ok, 3);
    ck_assert_int_eq(s.retried, 2);
    ck_assert_int_eq(sent(NULL, 0), 5);

    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.batches, 1);
    ck_assert_int_eq(s.ok, 0);
    ck_assert_int_eq(s.retried, 2);
    ck_assert_int_eq(sent(NULL, 0), 7);
    ck_assert_int_eq(sent("od:main-st:1", 1), 1);
    ck_assert_int_eq(sent("od:main-st:2", 1), 2);
    ck_assert_int_eq(sent("od:main-st:3", 1), 1);
    ck_assert_int_eq(sent("od:main-st:4", 1), 2);
    ck_assert_int_eq(sent("od:main-st:5", 1), 1);
    ck_assert_int_eq(int_of("od:main-st:2", "attempts"), 2);
    ck_assert_str_eq(state_of("od:main-st:1"), "done");
}
END_TEST

START_TEST(attempts_exhausted_is_dead)
{
    struct deliver_stats s;
    int run;
    policy.max_attempts = 3;
    enqueue("od:main-st:1", "RETRY");
    for (run = 1; run <= 5; run++) {
        s = deliver();
        if (run < 3) {
            ck_assert_int_eq(s.retried, 1);
            ck_assert_str_eq(state_of("od:main-st:1"), "pending");
            ck_assert_int_eq(int_of("od:main-st:1", "attempts"), run);
        } else if (run == 3) {
            ck_assert_int_eq(s.dead, 1);
        } else {
            ck_assert_int_eq(s.batches, 0);
        }
        make_all_due();
    }
    ck_assert_str_eq(state_of("od:main-st:1"), "dead");
    ck_assert_int_eq(int_of("od:main-st:1", "attempts"), 3);
    ck_assert_int_eq(int_of("od:main-st:1", "last_class"), ODSYNC_RETRY);
    ck_assert_int_eq(sent(NULL, 0), 3);
}
END_TEST

START_TEST(batches_respect_max_batch)
{
    struct deliver_stats s;
    char key[32];
    int i;
    for (i = 1; i <= 25; i++) {
        snprintf(key, sizeof(key), "od:main-st:%d", i);
        enqueue(key, "Ok");
    }
    s = deliver();
    ck_assert_int_eq(s.batches, 3);
    ck_assert_int_eq(s.ok, 25);
    ck_assert_int_eq(sent(NULL, 0), 25);
}
END_TEST

START_TEST(new_version_after_done_is_delivered_with_remote_id)
{
    struct deliver_stats s;
    char buf[128];
    enqueue("od:main-st:1", "Ann");
    deliver();
    enqueue_v("od:main-st:1", "Anne", 2);
    s = deliver();
    ck_assert_int_eq(s.ok, 1);
    ck_assert_int_eq(sent("od:main-st:1", 2), 1);
    ck_assert_str_eq(state_of("od:main-st:1"), "done");
    ck_assert_str_eq(col("od:main-st:1", "remote_id", buf, sizeof(buf)), "r-od:main-st:1");
}
END_TEST

/* Whatever allocation fails during a run, no row is left "inflight" afterwards: a claimed
 * batch that could not be sent goes back to pending (only a restart's outbox_recover would
 * otherwise free it). */
START_TEST(allocation_failure_never_strands_rows_inflight)
{
    struct deliver_stats s;
    struct outbox_counts c;
    long nth;
    int rc, done = 0;
    enqueue("od:main-st:1", "Ann");
    for (nth = 1; nth < 200 && !done; nth++) {
        memset(&s, 0, sizeof(s));
        util_fail_alloc_after(nth);
        rc = deliver_sink(st, sink, &policy, &s);
        util_fail_alloc_after(0);
        ck_assert_int_eq(outbox_count(st, SINK, &c), ODSYNC_OK);
        ck_assert_msg(c.inflight == 0, "allocation %ld failed: row stranded inflight (rc %s)", nth,
                      odsync_status_name(rc));
        done = rc == ODSYNC_OK && c.done == 1;
        ck_assert_int_eq(store_exec(st, "UPDATE outbox SET state = 'pending', next_at = 0,"
                                        " attempts = 0 WHERE state != 'done'"),
                         ODSYNC_OK);
    }
    ck_assert(done);
}
END_TEST

/* Regression: `run --until-idle` stops once every office passed and every worker is
 * "settled". An ingester queues rows, wakes the worker and then counts its pass, but the
 * worker kept its "settled" from before the rows until its pass had ended, so the daemon
 * could stop with the rows still pending. A wake now clears it. The test holds the write
 * lock so the worker cannot deliver (and so legitimately settle) in between. */
START_TEST(wake_unsettles_the_worker_until_it_has_looked_again)
{
    char path[512], err[512], *offices[] = {(char *)OFFICE};
    struct deliver_worker *w = NULL;
    int i;

    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(deliver_worker_start(path, sink, offices, 1, &policy, &w, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    for (i = 0; i < 200 && !deliver_worker_settled(w); i++)
        usleep(10 * 1000);
    ck_assert(deliver_worker_settled(w)); /* nothing queued yet */

    enqueue("od:main-st:1", "Ann");
    ck_assert_int_eq(store_exec(st, "BEGIN IMMEDIATE"), ODSYNC_OK);
    deliver_worker_wake(w);
    ck_assert_msg(!deliver_worker_settled(w), "settled with a row pending");
    ck_assert_str_eq(state_of("od:main-st:1"), "pending");
    ck_assert_int_eq(store_exec(st, "COMMIT"), ODSYNC_OK);

    for (i = 0; i < 500 && !(deliver_worker_settled(w) && sent(NULL, 0) == 1); i++)
        usleep(10 * 1000);
    ck_assert(deliver_worker_settled(w));
    ck_assert_str_eq(state_of("od:main-st:1"), "done");
    deliver_worker_stop(w);
    ck_assert_int_eq(deliver_worker_join(w, util_monotonic_ms() + 10000), ODSYNC_OK);
    deliver_worker_destroy(w);
}
END_TEST

/* While an office is still queueing (a projection committing chunk after chunk), the worker
 * sends full batches only: delivery overlaps the projection without spending a request on
 * part of a batch. When the office is done the worker sends the rest. */
START_TEST(producing_worker_sends_full_batches_then_the_rest)
{
    char path[512], err[512], key[32], *offices[] = {(char *)OFFICE};
    struct deliver_worker *w = NULL;
    int i;

    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(deliver_worker_start(path, sink, offices, 1, &policy, &w, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    deliver_worker_producing(w, 1);
    for (i = 1; i <= 13; i++) { /* max_batch is 10 */
        snprintf(key, sizeof(key), "od:main-st:%d", i);
        enqueue(key, "Ok");
    }
    deliver_worker_wake(w);
    for (i = 0; i < 500 && sent(NULL, 0) < 10; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(sent(NULL, 0), 10);
    usleep(300 * 1000); /* a worker without the rule sends the other 3 at once */
    ck_assert_int_eq(sent(NULL, 0), 10);
    ck_assert_str_eq(state_of("od:main-st:13"), "pending");
    ck_assert(!deliver_worker_settled(w));

    deliver_worker_producing(w, 0);
    for (i = 0; i < 500 && !(deliver_worker_settled(w) && sent(NULL, 0) == 13); i++)
        usleep(10 * 1000);
    ck_assert_int_eq(sent(NULL, 0), 13);
    ck_assert_str_eq(state_of("od:main-st:13"), "done");
    deliver_worker_stop(w);
    ck_assert_int_eq(deliver_worker_join(w, util_monotonic_ms() + 10000), ODSYNC_OK);
    deliver_worker_destroy(w);
}
END_TEST

START_TEST(backoff_within_bounds)
{
    struct deliver_policy p;
    int attempts, i;
    int64_t ceiling, lo, hi, b;

    deliver_policy_default(&p);
    for (attempts = 0; attempts <= 64; attempts++) {
        ceiling = p.backoff_base_ms;
        for (i = 0; i < attempts && ceiling < p.backoff_cap_ms; i++)
            ceiling *= 2;
        if (ceiling > p.backoff_cap_ms)
            ceiling = p.backoff_cap_ms;
        lo = INT64_MAX;
        hi = -1;
        for (i = 0; i < 2000; i++) {
            b = deliver_backoff_ms(&p, attempts);
            ck_assert_msg(b >= 0 && b <= ceiling, "attempts %d: %lld not in [0, %lld]", attempts,
                          (long long)b, (long long)ceiling);
            ck_assert_int_le(b, p.backoff_cap_ms);
            if (b < lo)
                lo = b;
            if (b > hi)
                hi = b;
        }
        /* full jitter: spread over the range, not a constant */
        ck_assert_int_lt(lo, ceiling / 4);
        ck_assert_int_gt(hi, ceiling * 3 / 4);
    }
    ck_assert_int_le(deliver_backoff_ms(&p, 1000000), p.backoff_cap_ms);
}
END_TEST

START_TEST(backoff_degenerate_policies)
{
    struct deliver_policy p;
    deliver_policy_default(&p);
    p.backoff_base_ms = 0;
    ck_assert_int_eq(deliver_backoff_ms(&p, 5), 0);
    deliver_policy_default(&p);
    p.backoff_cap_ms = 0;
    ck_assert_int_eq(deliver_backoff_ms(&p, 5), 0);
    deliver_policy_default(&p);
    p.backoff_cap_ms = INT64_MAX; /* doubling must not overflow */
    ck_assert_int_ge(deliver_backoff_ms(&p, 200), 0);
}
END_TEST

START_TEST(health_and_mode_setting)
{
    char detail[128];
    ck_assert_int_eq(host_sink_health(sink, detail, sizeof(detail)), ODSYNC_OK);
    ck_assert_ptr_nonnull(strstr(detail, "mode=test"));
    ck_assert_int_eq(host_sink_flush(sink), ODSYNC_OK);
    ck_assert_uint_eq(
        host_sink_descriptor(sink)->capabilities &
            (ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS | ODSYNC_CAP_SMS | ODSYNC_CAP_EMAIL),
        ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS | ODSYNC_CAP_SMS | ODSYNC_CAP_EMAIL);
}
END_TEST

static Suite *deliver_suite(void)
{
    Suite *s = suite_create("deliver");
    TCase *tc = tcase_create("deliver");
    TCase *pure = tcase_create("backoff");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ok_rows_done_with_remote_id);
    tcase_add_test(tc, retry_backs_off_and_counts_attempt);
    tcase_add_test(tc, zero_backoff_sends_once_per_pass);
    tcase_add_test(tc, rate_limited_pauses_sink_without_attempt);
    tcase_add_test(tc, permanent_is_dead_with_detail);
    tcase_add_test(tc, opted_out_is_done_not_dead);
    tcase_add_test(tc, auth_pauses_sink);
    tcase_add_test(tc, unreported_item_is_retry);
    tcase_add_test(tc, only_failed_items_are_resent);
    tcase_add_test(tc, attempts_exhausted_is_dead);
    tcase_add_test(tc, batches_respect_max_batch);
    tcase_add_test(tc, new_version_after_done_is_delivered_with_remote_id);
    tcase_add_test(tc, health_and_mode_setting);
    tcase_add_test(tc, allocation_failure_never_strands_rows_inflight);
    tcase_add_test(tc, wake_unsettles_the_worker_until_it_has_looked_again);
    tcase_add_test(tc, producing_worker_sends_full_batches_then_the_rest);
    suite_add_tcase(s, tc);

    tcase_add_test(pure, backoff_within_bounds);
    tcase_add_test(pure, backoff_degenerate_policies);
    suite_add_tcase(s, pure);
    return s;
}

ODSYNC_TEST_MAIN(deliver_suite)
