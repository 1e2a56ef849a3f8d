/*
 * test_resync: core/resync on a real SQLite file — the full state of an office queued for a
 * sink (contacts before tasks, never messages), delivered rows refreshed with their remote
 * ids kept, and a newly routed sink seeded once and only for the kinds routed to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "outbox.h"
#include "records.h"
#include "resync.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

static char *dir;
static struct store *st;
static FILE *devnull;
static struct config cfg;
static struct config_office office;
static char *contact_routes[] = {"hubspot"};
static char *task_routes[] = {"hubspot"};

static void setup(void)
{
    char path[512], err[512];
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    memset(&office, 0, sizeof(office));
    memset(&cfg, 0, sizeof(cfg));
    office.id = "main-st";
    office.routes[CONFIG_ROUTE_CONTACT] = contact_routes;
    office.n_routes[CONFIG_ROUTE_CONTACT] = 1;
    office.routes[CONFIG_ROUTE_TASK] = task_routes;
    office.n_routes[CONFIG_ROUTE_TASK] = 1;
    cfg.offices = &office;
    cfg.n_offices = 1;
}

static void teardown(void)
{
    store_close(st);
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* A query's first integer. */
static int64_t q(const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int put_tx(struct store *s, void *arg)
{
    int i, changed, rc = ODSYNC_OK;
    int64_t version;
    char key[64];
    (void)arg;
    for (i = 1; i <= 3 && rc == ODSYNC_OK; i++) {
        snprintf(key, sizeof(key), "od:main-st:%d", i);
        rc =
            records_upsert(s, "main-st", key, ODSYNC_KIND_CONTACT, "{\"c\":1}", &changed, &version);
    }
    if (rc == ODSYNC_OK)
        rc = records_upsert(s, "main-st", "od:main-st:recall:9", ODSYNC_KIND_TASK, "{\"t\":1}",
                            &changed, &version);
    if (rc == ODSYNC_OK)
        rc = records_upsert(s, "main-st", "od:main-st:apt:5:review", ODSYNC_KIND_MESSAGE,
                            "{\"m\":1}", &changed, &version);
    return rc;
}

/* Three contacts, one task, one message in the records table. */
static void put_records(void)
{
    ck_assert_int_eq(store_tx(st, put_tx, NULL), ODSYNC_OK);
}

START_TEST(full_state_contacts_first_never_messages)
{
    int64_t queued = 0;
    put_records();
    ck_assert_int_eq(resync_office(st, &office, "hubspot", RESYNC_CONTACTS | RESYNC_TASKS, &queued),
                     ODSYNC_OK);
    ck_assert_int_eq(queued, 4);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM outbox WHERE sink = 'hubspot' AND kind = 1"
                       " AND next_at = 0 AND state = 'pending'"),
                     3);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM outbox WHERE kind = 2 AND next_at = 1"), 1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM outbox WHERE kind = 3"), 0);
    /* a sink the office does not route to gets nothing */
    ck_assert_int_eq(
        resync_office(st, &office, "salesforce", RESYNC_CONTACTS | RESYNC_TASKS, &queued),
        ODSYNC_OK);
    ck_assert_int_eq(queued, 0);
}
END_TEST

START_TEST(delivered_rows_are_refreshed_keeping_remote_ids)
{
    int64_t queued = 0;
    put_records();
    ck_assert_int_eq(resync_office(st, &office, "hubspot", RESYNC_TASKS, &queued), ODSYNC_OK);
    ck_assert_int_eq(queued, 1);
    ck_assert_int_eq(store_exec(st, "UPDATE outbox SET state = 'done', remote_id = 'T-77'"),
                     ODSYNC_OK);
    ck_assert_int_eq(resync_office(st, &office, "hubspot", RESYNC_TASKS, &queued), ODSYNC_OK);
    ck_assert_int_eq(queued, 1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
                       " AND remote_id = 'T-77'"),
                     1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM outbox"), 1); /* refreshed, not duplicated */
}
END_TEST

START_TEST(new_route_seeded_once_per_kind)
{
    int64_t queued = -1;
    ck_assert_int_eq(resync_new_routes(st, &cfg, &queued), ODSYNC_OK);
    ck_assert_int_eq(queued, 0); /* no records yet: a first install is not "seeded" */
    put_records();
    ck_assert_int_eq(resync_new_routes(st, &cfg, &queued), ODSYNC_OK);
    ck_assert_int_eq(queued, 4);
    ck_assert_int_eq(resync_new_routes(st, &cfg, &queued), ODSYNC_OK);
    ck_assert_int_eq(queued, 0);
    /* the office switches CRMs: only the new sink is seeded */
    contact_routes[0] = "salesforce";
    task_routes[0] = "salesforce";
    ck_assert_int_eq(resync_new_routes(st, &cfg, &queued), ODSYNC_OK);
    contact_routes[0] = "hubspot";
    task_routes[0] = "hubspot";
    ck_assert_int_eq(queued, 4);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM outbox WHERE sink = 'salesforce'"), 4);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM outbox WHERE sink = 'hubspot'"), 4);
}
END_TEST

static Suite *resync_suite(void)
{
    Suite *s = suite_create("resync");
    TCase *tc = tcase_create("resync");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, full_state_contacts_first_never_messages);
    tcase_add_test(tc, delivered_rows_are_refreshed_keeping_remote_ids);
    tcase_add_test(tc, new_route_seeded_once_per_kind);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(resync_suite)
