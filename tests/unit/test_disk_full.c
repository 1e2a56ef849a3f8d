/*
 * test_disk_full: the store when the disk fills (SQLITE_FULL, made with SQLite's
 * max_page_count on a real file). A write that does not fit fails with ODSYNC_STORE and
 * leaves nothing half-written; reads keep working; once space returns, the same write
 * succeeds on the same connection — the daemon reports and resumes, it does not exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "outbox.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

struct batch {
    int first, count;
    const char *body;
};

/* Queue records first..first+count-1 in one transaction. */
static int enqueue_tx(struct store *st, void *arg)
{
    const struct batch *b = arg;
    char key[64];
    int i, rc = ODSYNC_OK;
    for (i = 0; rc == ODSYNC_OK && i < b->count; i++) {
        util_fmt(key, sizeof(key), "od:main-st:%d", b->first + i);
        rc = outbox_enqueue(st, "crm", "main-st", key, 1, 1, b->body);
    }
    return rc;
}

static int64_t rows(struct store *st)
{
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), "SELECT count(*) FROM outbox", -1, &s, NULL),
                     SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

START_TEST(store_full_then_resumes)
{
    char *dir = tu_mkdtemp(), path[4200], err[256] = "", *body = malloc(4001);
    struct store *st = NULL;
    FILE *devnull = fopen("/dev/null", "w");
    struct batch b = {0, 50, NULL};
    int rc = ODSYNC_OK, batches = 0;
    int64_t before;

    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
    memset(body, 'x', 4000);
    body[0] = '{';
    body[1] = '"';
    body[2] = 'a';
    body[3] = '"';
    body[4] = ':';
    body[5] = '"';
    body[3998] = '"';
    body[3999] = '}';
    body[4000] = '\0';
    b.body = body;
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    /* The "disk": 64 pages more than the store holds now (4 KiB pages: 256 KiB). */
    {
        sqlite3_stmt *q = NULL;
        char sql[64];
        ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), "PRAGMA page_count", -1, &q, NULL),
                         SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
                 (long long)sqlite3_column_int64(q, 0) + 64);
        sqlite3_finalize(q);
        ck_assert_int_eq(store_exec(st, sql), ODSYNC_OK);
    }
    while (rc == ODSYNC_OK && batches < 100) {
        before = rows(st);
        rc = store_tx(st, enqueue_tx, &b);
        b.first += b.count;
        batches++;
    }
    ck_assert_int_eq(rc, ODSYNC_STORE); /* full: reported, not a crash */
    ck_assert_int_gt(batches, 1);
    ck_assert_int_eq(rows(st), before); /* the failed batch left nothing behind */
    ck_assert_int_eq(before % 50, 0);
    /* Space returns: the same batch goes through on the same connection. */
    ck_assert_int_eq(store_exec(st, "PRAGMA max_page_count = 1073741823"), ODSYNC_OK);
    b.first -= b.count;
    ck_assert_int_eq(store_tx(st, enqueue_tx, &b), ODSYNC_OK);
    ck_assert_int_eq(rows(st), before + 50);
    store_close(st);
    log_shutdown();
    fclose(devnull);
    free(body);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("disk_full");
    TCase *tc = tcase_create("store");
    tcase_add_test(tc, store_full_then_resumes);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(suite)
