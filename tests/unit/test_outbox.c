/*
 * test_outbox: core/outbox on a real SQLite file — enqueue, claim, complete; version rules
 * (newer replaces pending, older ignored, a version enqueued while in flight is kept and
 * delivered after); retry timing; dead letters; crash recovery; counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "outbox.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

#define SINK   "crm"
#define OFFICE "main-st"
#define KEY    "od:main-st:1042"
#define NOW    INT64_C(1700000000000)

static char *dir; /* per test, from setup */
static struct store *st;
static FILE *devnull; /* log sink */

static void setup(void)
{
    char path[512], err[512];
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
}

static void teardown(void)
{
    store_close(st);
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

struct enq {
    const char *sink, *key;
    int64_t version;
    const char *body;
};

static int enqueue_tx(struct store *s, void *arg)
{
    const struct enq *e = arg;
    return outbox_enqueue(s, e->sink, OFFICE, e->key, ODSYNC_KIND_CONTACT, e->version, e->body);
}

/* Enqueue one row in its own transaction, as import does. */
static void enqueue(const char *sink, const char *key, int64_t version, const char *body)
{
    struct enq e = {sink, key, version, body};
    ck_assert_int_eq(store_tx(st, enqueue_tx, &e), ODSYNC_OK);
}

/* Claim up to max rows of sink at now; asserts the count. Caller frees. */
static struct outbox_item *claim(const char *sink, int64_t now, size_t max, size_t want)
{
    struct outbox_item *items = NULL;
    size_t n = 99;
    ck_assert_int_eq(outbox_claim(st, sink, now, max, &items, &n), ODSYNC_OK);
    ck_assert_uint_eq(n, want);
    if (want == 0)
        ck_assert_ptr_null(items);
    return items;
}

/* One column of the row of (sink, key) as text into buf ("" for NULL). */
static const char *col(const char *sink, const char *key, const char *column, char *buf, size_t len)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    const unsigned char *t;
    snprintf(sql, sizeof(sql), "SELECT %s FROM outbox WHERE sink = ?1 AND key = ?2", column);
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    t = sqlite3_column_text(s, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
    sqlite3_finalize(s);
    return buf;
}

/* The state of the row of (SINK, key). */
static const char *state_of(const char *key)
{
    static char buf[32];
    return col(SINK, key, "state", buf, sizeof(buf));
}

/* An integer column of the row of (SINK, key). */
static int64_t int_of(const char *key, const char *column)
{
    char buf[32];
    return strtoll(col(SINK, key, column, buf, sizeof(buf)), NULL, 10);
}

/* Total rows in the outbox. */
static int64_t rows(void)
{
    sqlite3_stmt *s = NULL;
    int64_t n;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), "SELECT COUNT(*) FROM outbox", -1, &s, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

START_TEST(enqueue_claim_complete)
{
    struct outbox_item *it;
    char buf[64];

    enqueue(SINK, KEY, 1, "{\"v\":1}");
    ck_assert_str_eq(state_of(KEY), "pending");
    it = claim(SINK, NOW, 10, 1);
    ck_assert_str_eq(it[0].office, OFFICE);
    ck_assert_str_eq(it[0].key, KEY);
    ck_assert_int_eq(it[0].kind, ODSYNC_KIND_CONTACT);
    ck_assert_int_eq(it[0].version, 1);
    ck_assert_str_eq(it[0].body, "{\"v\":1}");
    ck_assert_ptr_null(it[0].remote_id);
    ck_assert_int_eq(it[0].attempts, 0);
    ck_assert_str_eq(state_of(KEY), "inflight");
    claim(SINK, NOW, 10, 0); /* inflight rows are not claimed twice */

    ck_assert_int_eq(outbox_complete(st, &it[0], "remote-9"), ODSYNC_OK);
    ck_assert_str_eq(state_of(KEY), "done");
    ck_assert_str_eq(col(SINK, KEY, "remote_id", buf, sizeof(buf)), "remote-9");
    claim(SINK, NOW, 10, 0);
    outbox_items_free(it, 1);
}
END_TEST

START_TEST(remote_id_is_handed_back_on_next_version)
{
    struct outbox_item *it;
    char buf[64];
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(outbox_complete(st, &it[0], "remote-9"), ODSYNC_OK);
    outbox_items_free(it, 1);
    enqueue(SINK, KEY, 2, "{\"v\":2}");
    ck_assert_str_eq(state_of(KEY), "pending");
    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(it[0].version, 2);
    ck_assert_str_eq(it[0].remote_id, "remote-9");
    /* completing without a new id keeps the old one */
    ck_assert_int_eq(outbox_complete(st, &it[0], NULL), ODSYNC_OK);
    outbox_items_free(it, 1);
    ck_assert_str_eq(col(SINK, KEY, "remote_id", buf, sizeof(buf)), "remote-9");
}
END_TEST

START_TEST(newer_version_replaces_pending)
{
    struct outbox_item *it;
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    enqueue(SINK, KEY, 2, "{\"v\":2}");
    ck_assert_int_eq(rows(), 1);
    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(it[0].version, 2);
    ck_assert_str_eq(it[0].body, "{\"v\":2}");
    outbox_items_free(it, 1);
}
END_TEST

START_TEST(older_version_ignored)
{
    struct outbox_item *it;
    enqueue(SINK, KEY, 3, "{\"v\":3}");
    enqueue(SINK, KEY, 2, "{\"v\":2}");
    enqueue(SINK, KEY, 3, "{\"v\":\"3 again\"}"); /* same version: ignored too */
    ck_assert_int_eq(rows(), 1);
    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(it[0].version, 3);
    ck_assert_str_eq(it[0].body, "{\"v\":3}");
    ck_assert_int_eq(outbox_complete(st, &it[0], "r"), ODSYNC_OK);
    outbox_items_free(it, 1);
    /* an old version after delivery does not reopen the row */
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    ck_assert_str_eq(state_of(KEY), "done");
    ck_assert_int_eq(int_of(KEY, "version"), 3);
}
END_TEST

START_TEST(version_enqueued_while_inflight_is_kept)
{
    struct outbox_item *it, *again;
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    it = claim(SINK, NOW, 10, 1);
    enqueue(SINK, KEY, 2, "{\"v\":2}");
    ck_assert_str_eq(state_of(KEY), "inflight"); /* not claimable twice meanwhile */
    claim(SINK, NOW, 10, 0);

    ck_assert_int_eq(outbox_complete(st, &it[0], "r-1"), ODSYNC_OK);
    ck_assert_str_eq(state_of(KEY), "pending"); /* not lost, not done */
    ck_assert_int_eq(int_of(KEY, "version"), 2);
    again = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(again[0].version, 2);
    ck_assert_str_eq(again[0].body, "{\"v\":2}");
    ck_assert_str_eq(again[0].remote_id, "r-1");
    ck_assert_int_eq(outbox_complete(st, &again[0], NULL), ODSYNC_OK);
    ck_assert_str_eq(state_of(KEY), "done");
    outbox_items_free(it, 1);
    outbox_items_free(again, 1);
}
END_TEST

START_TEST(version_enqueued_while_inflight_survives_retry_and_dead)
{
    struct outbox_item *it;
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    it = claim(SINK, NOW, 10, 1);
    enqueue(SINK, KEY, 2, "{\"v\":2}");
    ck_assert_int_eq(outbox_retry(st, &it[0], NOW + 60000, 1, ODSYNC_RETRY, "x"), ODSYNC_OK);
    /* the new version is due now with a fresh attempt count */
    ck_assert_str_eq(state_of(KEY), "pending");
    ck_assert_int_eq(int_of(KEY, "attempts"), 0);
    ck_assert_int_eq(int_of(KEY, "next_at"), 0);
    outbox_items_free(it, 1);

    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(it[0].version, 2);
    enqueue(SINK, KEY, 3, "{\"v\":3}");
    ck_assert_int_eq(outbox_dead(st, &it[0], ODSYNC_PERMANENT, "bad"), ODSYNC_OK);
    ck_assert_str_eq(state_of(KEY), "pending");
    ck_assert_int_eq(int_of(KEY, "version"), 3);
    outbox_items_free(it, 1);
}
END_TEST

START_TEST(retry_not_claimable_before_next_at)
{
    struct outbox_item *it;
    char buf[64];
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(outbox_retry(st, &it[0], NOW + 5000, 1, ODSYNC_RETRY, "503"), ODSYNC_OK);
    outbox_items_free(it, 1);
    ck_assert_str_eq(state_of(KEY), "pending");
    ck_assert_int_eq(int_of(KEY, "attempts"), 1);
    ck_assert_int_eq(int_of(KEY, "last_class"), ODSYNC_RETRY);
    ck_assert_str_eq(col(SINK, KEY, "last_detail", buf, sizeof(buf)), "503");

    claim(SINK, NOW, 10, 0);
    claim(SINK, NOW + 4999, 10, 0);
    it = claim(SINK, NOW + 5000, 10, 1);
    ck_assert_int_eq(it[0].attempts, 1);
    outbox_items_free(it, 1);
}
END_TEST

START_TEST(retry_without_counting_keeps_attempts)
{
    struct outbox_item *it;
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(outbox_retry(st, &it[0], NOW + 1, 0, ODSYNC_RATE_LIMITED, NULL), ODSYNC_OK);
    outbox_items_free(it, 1);
    ck_assert_int_eq(int_of(KEY, "attempts"), 0);
    ck_assert_int_eq(int_of(KEY, "last_class"), ODSYNC_RATE_LIMITED);
}
END_TEST

START_TEST(dead_letter)
{
    struct outbox_item *it;
    struct outbox_counts c;
    char buf[64];
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    it = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(outbox_dead(st, &it[0], ODSYNC_PERMANENT, "rejected by remote"), ODSYNC_OK);
    outbox_items_free(it, 1);
    ck_assert_str_eq(state_of(KEY), "dead");
    ck_assert_int_eq(int_of(KEY, "attempts"), 1);
    ck_assert_int_eq(int_of(KEY, "last_class"), ODSYNC_PERMANENT);
    ck_assert_str_eq(col(SINK, KEY, "last_detail", buf, sizeof(buf)), "rejected by remote");
    claim(SINK, NOW + 86400000, 10, 0);
    ck_assert_int_eq(outbox_count(st, SINK, &c), ODSYNC_OK);
    ck_assert_int_eq(c.dead, 1);
    /* a newer version revives it */
    enqueue(SINK, KEY, 2, "{\"v\":2}");
    ck_assert_str_eq(state_of(KEY), "pending");
    ck_assert_int_eq(int_of(KEY, "attempts"), 0);
}
END_TEST

START_TEST(recover_inflight_to_pending)
{
    struct outbox_item *it;
    int64_t n = -1;
    enqueue(SINK, "od:main-st:1", 1, "{}");
    enqueue(SINK, "od:main-st:2", 1, "{}");
    enqueue(SINK, "od:main-st:3", 1, "{}");
    it = claim(SINK, NOW, 2, 2);
    outbox_items_free(it, 2);
    ck_assert_int_eq(outbox_recover(st, &n), ODSYNC_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(outbox_recover(st, &n), ODSYNC_OK);
    ck_assert_int_eq(n, 0);
    it = claim(SINK, NOW, 10, 3);
    outbox_items_free(it, 3);
}
END_TEST

START_TEST(claim_respects_max_order_and_sink)
{
    struct outbox_item *it;
    enqueue(SINK, "od:main-st:1", 1, "{}");
    enqueue(SINK, "od:main-st:2", 1, "{}");
    enqueue("other", "od:main-st:3", 1, "{}");
    enqueue(SINK, "od:main-st:4", 1, "{}");
    it = claim(SINK, NOW, 2, 2);
    ck_assert_str_eq(it[0].key, "od:main-st:1");
    ck_assert_str_eq(it[1].key, "od:main-st:2");
    outbox_items_free(it, 2);
    it = claim(SINK, NOW, 2, 1);
    ck_assert_str_eq(it[0].key, "od:main-st:4");
    outbox_items_free(it, 1);
    claim(SINK, NOW, 2, 0);
    claim("other", NOW, 0, 0); /* max 0 claims nothing */
    it = claim("other", NOW, 5, 1);
    ck_assert_str_eq(it[0].key, "od:main-st:3");
    outbox_items_free(it, 1);
    outbox_items_free(NULL, 0);
}
END_TEST

START_TEST(same_key_separate_per_sink)
{
    struct outbox_item *it;
    enqueue("crm", KEY, 1, "{}");
    enqueue("mirror", KEY, 1, "{}");
    ck_assert_int_eq(rows(), 2);
    it = claim("crm", NOW, 10, 1);
    ck_assert_int_eq(outbox_complete(st, &it[0], "a"), ODSYNC_OK);
    outbox_items_free(it, 1);
    it = claim("mirror", NOW, 10, 1);
    outbox_items_free(it, 1);
}
END_TEST

START_TEST(counts_per_state)
{
    struct outbox_item *it;
    struct outbox_counts c;
    int i;
    char key[32];
    for (i = 1; i <= 6; i++) {
        snprintf(key, sizeof(key), "od:main-st:%d", i);
        enqueue(SINK, key, 1, "{}");
    }
    enqueue("other", KEY, 1, "{}");
    it = claim(SINK, NOW, 4, 4); /* 1..4 inflight */
    ck_assert_int_eq(outbox_complete(st, &it[0], "r"), ODSYNC_OK);
    ck_assert_int_eq(outbox_dead(st, &it[1], ODSYNC_PERMANENT, NULL), ODSYNC_OK);
    ck_assert_int_eq(outbox_retry(st, &it[2], NOW + 1000, 1, ODSYNC_RETRY, NULL), ODSYNC_OK);
    outbox_items_free(it, 4);

    ck_assert_int_eq(outbox_count(st, SINK, &c), ODSYNC_OK);
    ck_assert_int_eq(c.pending, 3);
    ck_assert_int_eq(c.inflight, 1);
    ck_assert_int_eq(c.done, 1);
    ck_assert_int_eq(c.dead, 1);
    ck_assert_int_eq(outbox_count(st, NULL, &c), ODSYNC_OK);
    ck_assert_int_eq(c.pending, 4);
    ck_assert_int_eq(outbox_count(st, "nobody", &c), ODSYNC_OK);
    ck_assert_int_eq(c.pending + c.inflight + c.done + c.dead, 0);
}
END_TEST

START_TEST(enqueue_rolls_back_with_tx)
{
    struct enq e = {SINK, KEY, 1, "{}"};
    ck_assert_int_eq(store_exec(st, "BEGIN IMMEDIATE"), ODSYNC_OK);
    ck_assert_int_eq(enqueue_tx(st, &e), ODSYNC_OK);
    ck_assert_int_eq(store_exec(st, "ROLLBACK"), ODSYNC_OK);
    ck_assert_int_eq(rows(), 0);
}
END_TEST

START_TEST(claim_out_of_memory_leaves_rows_pending)
{
    struct outbox_item *items = (struct outbox_item *)1;
    size_t n = 99;
    enqueue(SINK, KEY, 1, "{\"v\":1}");
    util_fail_alloc_after(2); /* the items array succeeds, the first string copy fails */
    ck_assert_int_eq(outbox_claim(st, SINK, NOW, 10, &items, &n), ODSYNC_NOMEM);
    util_fail_alloc_after(0);
    ck_assert_ptr_null(items);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(state_of(KEY), "pending");
    items = claim(SINK, NOW, 10, 1);
    outbox_items_free(items, 1);
}
END_TEST

struct enq_office {
    const char *office, *key;
};

static int enqueue_office_tx(struct store *s, void *arg)
{
    const struct enq_office *e = arg;
    return outbox_enqueue(s, SINK, e->office, e->key, ODSYNC_KIND_CONTACT, 1, "{}");
}

/* Office "big" has a backlog of 50 queued first; "small" has 3 queued after. A fair claim of
 * 10 still takes small's rows at once: no office's backlog holds up another's. */
START_TEST(fair_claim_shares_across_offices)
{
    char *offices[] = {"big", "small"};
    struct outbox_item *items = NULL;
    size_t n = 0, cursor = 0, i, small = 0;
    char key[64];
    for (i = 0; i < 50; i++) {
        struct enq_office e = {"big", key};
        snprintf(key, sizeof(key), "od:big:%zu", i + 1);
        ck_assert_int_eq(store_tx(st, enqueue_office_tx, &e), ODSYNC_OK);
    }
    for (i = 0; i < 3; i++) {
        struct enq_office e = {"small", key};
        snprintf(key, sizeof(key), "od:small:%zu", i + 1);
        ck_assert_int_eq(store_tx(st, enqueue_office_tx, &e), ODSYNC_OK);
    }
    ck_assert_int_eq(outbox_claim_fair(st, SINK, offices, 2, &cursor, NOW, 1, 10, &items, &n),
                     ODSYNC_OK);
    ck_assert_uint_eq(n, 10); /* the rest of the batch is filled from the backlog */
    for (i = 0; i < n; i++)
        small += strcmp(items[i].office, "small") == 0;
    ck_assert_uint_eq(small, 3);
    ck_assert_uint_eq(cursor, 1);
    outbox_items_free(items, n);
    /* A plain FIFO claim would have taken only "big" rows. */
}
END_TEST

/* A claim with a minimum takes nothing until that many rows are due (a worker waiting for a
 * full batch while a projection is still queueing), then takes them as usual. */
START_TEST(claim_below_min_takes_nothing)
{
    struct outbox_item *items = NULL;
    size_t n = 7, cursor = 0;
    char buf[32];
    enqueue(SINK, "od:main-st:1", 1, "{}");
    enqueue(SINK, "od:main-st:2", 1, "{}");
    enqueue(SINK, "od:main-st:3", 1, "{}");
    ck_assert_int_eq(outbox_claim_fair(st, SINK, NULL, 0, &cursor, NOW, 4, 10, &items, &n),
                     ODSYNC_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(items);
    ck_assert_str_eq(col(SINK, "od:main-st:1", "state", buf, sizeof(buf)), "pending");
    ck_assert_str_eq(col(SINK, "od:main-st:3", "state", buf, sizeof(buf)), "pending");
    enqueue(SINK, "od:main-st:4", 1, "{}");
    ck_assert_int_eq(outbox_claim_fair(st, SINK, NULL, 0, &cursor, NOW, 4, 10, &items, &n),
                     ODSYNC_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(col(SINK, "od:main-st:1", "state", buf, sizeof(buf)), "inflight");
    ck_assert_str_eq(col(SINK, "od:main-st:4", "state", buf, sizeof(buf)), "inflight");
    outbox_items_free(items, n);
}
END_TEST

/* A batch claimed but never sent (the sink paused, the worker stopped) goes back exactly as it
 * was: pending, due as before, no attempt spent and no error recorded. */
START_TEST(unclaim_puts_rows_back_as_they_were)
{
    struct outbox_item *items;
    char buf[32];
    enqueue(SINK, "od:main-st:1", 1, "{}");
    enqueue(SINK, "od:main-st:2", 1, "{}");
    items = claim(SINK, NOW, 10, 2);
    ck_assert_int_eq(outbox_unclaim(st, items, 2), ODSYNC_OK);
    outbox_items_free(items, 2);
    ck_assert_str_eq(col(SINK, "od:main-st:1", "state", buf, sizeof(buf)), "pending");
    ck_assert_str_eq(col(SINK, "od:main-st:2", "attempts", buf, sizeof(buf)), "0");
    ck_assert_str_eq(col(SINK, "od:main-st:2", "last_class", buf, sizeof(buf)), "");
    ck_assert_str_eq(col(SINK, "od:main-st:2", "last_detail", buf, sizeof(buf)), "");
    items = claim(SINK, NOW, 10, 2); /* claimable again at once */
    outbox_items_free(items, 2);
    ck_assert_int_eq(outbox_unclaim(st, NULL, 0), ODSYNC_OK);
}
END_TEST

START_TEST(next_due_reports_earliest_pending)
{
    struct outbox_item *items;
    int64_t next = 0;
    ck_assert_int_eq(outbox_next_due(st, SINK, &next), ODSYNC_OK);
    ck_assert_int_eq(next, -1);
    enqueue(SINK, KEY, 1, "{}");
    items = claim(SINK, NOW, 10, 1);
    ck_assert_int_eq(outbox_retry(st, &items[0], NOW + 5000, 1, ODSYNC_RETRY, "x"), ODSYNC_OK);
    ck_assert_int_eq(outbox_next_due(st, SINK, &next), ODSYNC_OK);
    ck_assert_int_eq(next, NOW + 5000);
    outbox_items_free(items, 1);
}
END_TEST

/* Dead letters: listed with record, sink, class, detail and time; retried; dropped. */
START_TEST(dead_letters_list_retry_drop)
{
    struct outbox_item *items;
    struct outbox_dead *rows = NULL;
    size_t n = 0;
    int64_t requeued = 0;
    int dropped = 0;
    enqueue(SINK, "od:main-st:1", 1, "{}");
    enqueue(SINK, "od:main-st:2", 1, "{}");
    enqueue("other", "od:main-st:3", 1, "{}");
    items = claim(SINK, NOW, 10, 2);
    ck_assert_int_eq(outbox_dead(st, &items[0], ODSYNC_PERMANENT, "HTTP 422"), ODSYNC_OK);
    ck_assert_int_eq(outbox_dead(st, &items[1], ODSYNC_RETRY, "attempts exhausted"), ODSYNC_OK);
    outbox_items_free(items, 2);
    items = claim("other", NOW, 10, 1);
    ck_assert_int_eq(outbox_dead(st, &items[0], ODSYNC_PERMANENT, "bad"), ODSYNC_OK);
    outbox_items_free(items, 1);

    ck_assert_int_eq(outbox_dead_list(st, SINK, &rows, &n), ODSYNC_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(rows[0].key, "od:main-st:1");
    ck_assert_str_eq(rows[0].sink, SINK);
    ck_assert_int_eq(rows[0].last_class, ODSYNC_PERMANENT);
    ck_assert_str_eq(rows[0].detail, "HTTP 422");
    ck_assert_int_eq(rows[0].attempts, 1);
    ck_assert_int_ge(rows[0].dead_at, util_now_ms() - 60000);
    ck_assert_int_le(rows[0].dead_at, util_now_ms());
    outbox_dead_free(rows, n);
    ck_assert_int_eq(outbox_dead_list(st, NULL, &rows, &n), ODSYNC_OK);
    ck_assert_uint_eq(n, 3);
    outbox_dead_free(rows, n);

    ck_assert_int_eq(outbox_dead_retry(st, 0, SINK, &requeued), ODSYNC_OK);
    ck_assert_int_eq(requeued, 2);
    items = claim(SINK, NOW, 10, 2);
    ck_assert_int_eq(items[0].attempts, 0);
    outbox_items_free(items, 2);
    ck_assert_int_eq(outbox_dead_list(st, NULL, &rows, &n), ODSYNC_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(outbox_dead_drop(st, rows[0].id, &dropped), ODSYNC_OK);
    ck_assert_int_eq(dropped, 1);
    ck_assert_int_eq(outbox_dead_drop(st, rows[0].id, &dropped), ODSYNC_OK);
    ck_assert_int_eq(dropped, 0);
    outbox_dead_free(rows, n);
}
END_TEST

static Suite *outbox_suite(void)
{
    Suite *s = suite_create("outbox");
    TCase *tc = tcase_create("outbox");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, enqueue_claim_complete);
    tcase_add_test(tc, remote_id_is_handed_back_on_next_version);
    tcase_add_test(tc, newer_version_replaces_pending);
    tcase_add_test(tc, older_version_ignored);
    tcase_add_test(tc, version_enqueued_while_inflight_is_kept);
    tcase_add_test(tc, version_enqueued_while_inflight_survives_retry_and_dead);
    tcase_add_test(tc, retry_not_claimable_before_next_at);
    tcase_add_test(tc, retry_without_counting_keeps_attempts);
    tcase_add_test(tc, dead_letter);
    tcase_add_test(tc, recover_inflight_to_pending);
    tcase_add_test(tc, claim_respects_max_order_and_sink);
    tcase_add_test(tc, same_key_separate_per_sink);
    tcase_add_test(tc, counts_per_state);
    tcase_add_test(tc, enqueue_rolls_back_with_tx);
    tcase_add_test(tc, claim_out_of_memory_leaves_rows_pending);
    tcase_add_test(tc, fair_claim_shares_across_offices);
    tcase_add_test(tc, claim_below_min_takes_nothing);
    tcase_add_test(tc, unclaim_puts_rows_back_as_they_were);
    tcase_add_test(tc, next_due_reports_earliest_pending);
    tcase_add_test(tc, dead_letters_list_retry_drop);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(outbox_suite)
