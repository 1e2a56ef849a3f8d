/*
 * test_store: core/store and core/records on real SQLite files — migrations (fresh file,
 * reopen, a newer schema refused), WAL mode, store_tx rollback, and records_upsert change
 * detection and versioning.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "records.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

static char *dir;    /* per test, from setup */
static char *dbpath; /* dir/odsync.db */
static char err[512];
static FILE *devnull; /* log sink while a test does not capture */

static void setup(void)
{
    dir = tu_mkdtemp();
    dbpath = malloc(strlen(dir) + 16);
    ck_assert_ptr_nonnull(dbpath);
    snprintf(dbpath, strlen(dir) + 16, "%s/odsync.db", dir);
    err[0] = '\0';
    /* store logs its migrations and errors; keep the test output quiet */
    devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
}

static void teardown(void)
{
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
    free(dbpath);
}

/* Open dbpath, asserting success. */
static struct store *open_ok(void)
{
    struct store *st = NULL;
    int rc = store_open(dbpath, &st, err, sizeof(err));
    ck_assert_msg(rc == ODSYNC_OK, "store_open: %s (%s)", err, odsync_status_name(rc));
    ck_assert_ptr_nonnull(st);
    return st;
}

/* The single integer result of sql. */
static int64_t query_int(struct store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* ---- migrations ---------------------------------------------------------------------- */

START_TEST(fresh_file_gets_latest_schema)
{
    struct store *st = open_ok();
    ck_assert_int_ge(store_latest_version(), 1);
    ck_assert_int_eq(store_schema_version(st), store_latest_version());
    ck_assert_int_eq(query_int(st, "SELECT COUNT(*) FROM schema_migrations"),
                     store_latest_version());
    /* the tables the migrations promise exist */
    ck_assert_int_eq(query_int(st, "SELECT COUNT(*) FROM records"), 0);
    ck_assert_int_eq(query_int(st, "SELECT COUNT(*) FROM outbox"), 0);
    store_close(st);
}
END_TEST

START_TEST(reopen_applies_nothing)
{
    struct store *st = open_ok();
    int64_t applied = query_int(st, "SELECT SUM(applied_at) FROM schema_migrations");
    char *text = NULL;
    size_t size = 0;
    FILE *mem;

    store_close(st);
    mem = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(mem);
    log_setup(mem, ODSYNC_LOG_DEBUG, LOG_TEXT);
    st = open_ok();
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    fclose(mem);
    ck_assert_msg(text == NULL || strstr(text, "applied migration") == NULL,
                  "reopen applied a migration: %s", text);
    ck_assert_int_eq(store_schema_version(st), store_latest_version());
    ck_assert_int_eq(query_int(st, "SELECT COUNT(*) FROM schema_migrations"),
                     store_latest_version());
    ck_assert(query_int(st, "SELECT SUM(applied_at) FROM schema_migrations") == applied);
    store_close(st);
    free(text);
}
END_TEST

START_TEST(wal_mode_is_on)
{
    struct store *st = open_ok();
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &s, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    ck_assert_int_eq(query_int(st, "PRAGMA foreign_keys"), 1);
    store_close(st);
}
END_TEST

START_TEST(newer_schema_refused)
{
    struct store *st = open_ok();
    char want[128];
    int rc;
    ck_assert_int_eq(store_exec(st, "INSERT INTO schema_migrations (version, name, applied_at)"
                                    " VALUES (999, 'from the future', 0)"),
                     ODSYNC_OK);
    store_close(st);
    st = NULL;
    rc = store_open(dbpath, &st, err, sizeof(err));
    ck_assert_int_eq(rc, ODSYNC_STORE);
    ck_assert_ptr_null(st);
    snprintf(want, sizeof(want), "database schema version 999 is newer than this odsync (%d)",
             store_latest_version());
    ck_assert_msg(strstr(err, want) != NULL, "unexpected error: %s", err);
    ck_assert_msg(strncmp(err, dbpath, strlen(dbpath)) == 0, "error does not name the file: %s",
                  err);
}
END_TEST

START_TEST(failed_migration_names_sqlite_message)
{
    sqlite3 *db = NULL;
    struct store *st = NULL;
    int rc;
    /* a file that already has a "records" table but no migrations: migration 1 fails */
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE records (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rc = store_open(dbpath, &st, err, sizeof(err));
    ck_assert_int_ne(rc, ODSYNC_OK);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err, "migration 1 (") != NULL, "unexpected error: %s", err);
    ck_assert_msg(strstr(err, "already exists") != NULL, "SQLite's reason missing: %s", err);
}
END_TEST

START_TEST(garbage_file_refused)
{
    struct store *st = NULL;
    char *path = tu_write_file(dir, "garbage.db",
                               "this is not a database, not at all......"
                               "...............................................");
    ck_assert_int_ne(store_open(path, &st, err, sizeof(err)), ODSYNC_OK);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err, path) != NULL, "error does not name the file: %s", err);
    free(path);
}
END_TEST

/* ---- store_tx ------------------------------------------------------------------------ */

/* Insert a record row, then fail with the status in *arg. */
static int insert_then_fail(struct store *st, void *arg)
{
    int rc = store_exec(st, "INSERT INTO records (office, key, kind, hash, body, version,"
                            " updated_at) VALUES ('main-st', 'od:main-st:1', 1, 'h', '{}', 1, 0)");
    ck_assert_int_eq(rc, ODSYNC_OK);
    return *(int *)arg;
}

START_TEST(tx_rolls_back_when_fn_fails)
{
    struct store *st = open_ok();
    int status = ODSYNC_INVALID;
    ck_assert_int_eq(store_tx(st, insert_then_fail, &status), ODSYNC_INVALID);
    ck_assert_int_eq(query_int(st, "SELECT COUNT(*) FROM records"), 0);
    /* the connection is usable again: a new transaction commits */
    status = ODSYNC_OK;
    ck_assert_int_eq(store_tx(st, insert_then_fail, &status), ODSYNC_OK);
    ck_assert_int_eq(query_int(st, "SELECT COUNT(*) FROM records"), 1);
    store_close(st);
}
END_TEST

START_TEST(tx_commit_visible_to_other_connection)
{
    struct store *a = open_ok(), *b = open_ok();
    int status = ODSYNC_OK;
    ck_assert_int_eq(store_tx(a, insert_then_fail, &status), ODSYNC_OK);
    ck_assert_int_eq(query_int(b, "SELECT COUNT(*) FROM records"), 1);
    store_close(a);
    store_close(b);
}
END_TEST

/* ---- writers take turns ---------------------------------------------------------------- */

struct looper {
    const char *path;
    atomic_int done; /* transactions committed */
    atomic_int stop;
};

static int bump_tx(struct store *st, void *arg)
{
    (void)arg;
    return store_exec(st, "UPDATE turns SET n = n + 1");
}

/* A writer committing transaction after transaction, like a projection, until told to stop. */
static void *looper_main(void *arg)
{
    struct looper *l = arg;
    struct store *st = NULL;
    char e[256];
    if (store_open(l->path, &st, e, sizeof(e)) != ODSYNC_OK)
        return NULL;
    while (!atomic_load(&l->stop) && store_tx(st, bump_tx, NULL) == ODSYNC_OK)
        atomic_fetch_add(&l->done, 1);
    store_close(st);
    return NULL;
}

struct waiter {
    struct store *st;
    const struct looper *l;
    int seen; /* the looper's committed transactions when this writer got its turn */
};

static int note_turn_tx(struct store *st, void *arg)
{
    struct waiter *w = arg;
    (void)st;
    w->seen = atomic_load(&w->l->done);
    return ODSYNC_OK;
}

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    store_tx(w->st, note_turn_tx, w);
    return NULL;
}

/* Writers of one process queue first come, first served: once a writer waits, a writer that
 * commits transaction after transaction finishes at most the one it is in before the other
 * gets its turn (with a plain mutex it took the lock straight back, and a projection starved
 * a delivery worker to its end). */
START_TEST(writers_take_turns)
{
    struct store *st = open_ok(), *other = open_ok();
    struct looper l = {dbpath, 0, 0};
    struct waiter w = {other, &l, -1};
    pthread_t lt, wt;
    int queued_at, i;
    ck_assert_int_eq(store_exec(st, "CREATE TABLE turns (n INTEGER); INSERT INTO turns VALUES (0)"),
                     ODSYNC_OK);
    ck_assert_int_eq(pthread_create(&lt, NULL, looper_main, &l), 0);
    while (atomic_load(&l.done) < 50)
        usleep(1000);
    ck_assert_int_eq(pthread_create(&wt, NULL, waiter_main, &w), 0);
    for (i = 0; i < 100000 && store_write_waiters() == 0 && w.seen < 0; i++)
        usleep(10);
    queued_at = atomic_load(&l.done); /* the waiter has its ticket (or already its turn) */
    pthread_join(wt, NULL);
    atomic_store(&l.stop, 1);
    pthread_join(lt, NULL);
    ck_assert_int_ge(w.seen, 50);
    ck_assert_msg(w.seen <= queued_at + 1,
                  "the looper committed %d more transactions while the other writer waited",
                  w.seen - queued_at);
    ck_assert_int_eq(store_write_waiters(), 0);
    store_close(other);
    store_close(st);
}
END_TEST

START_TEST(close_accepts_null)
{
    store_close(NULL);
}
END_TEST

/* ---- records ------------------------------------------------------------------------- */

struct upsert {
    const char *office, *key, *body;
    int changed;
    int64_t version;
};

static int upsert_tx(struct store *st, void *arg)
{
    struct upsert *u = arg;
    return records_upsert(st, u->office, u->key, ODSYNC_KIND_CONTACT, u->body, &u->changed,
                          &u->version);
}

/* Upsert one record in its own transaction. */
static struct upsert upsert(struct store *st, const char *office, const char *key, const char *body)
{
    struct upsert u = {office, key, body, -1, -1};
    ck_assert_int_eq(store_tx(st, upsert_tx, &u), ODSYNC_OK);
    return u;
}

START_TEST(upsert_new_is_changed_version_1)
{
    struct store *st = open_ok();
    struct upsert u = upsert(st, "main-st", "od:main-st:1042", "{\"first_name\":\"Ann\"}");
    int64_t n;
    ck_assert_int_eq(u.changed, 1);
    ck_assert_int_eq(u.version, 1);
    ck_assert_int_eq(records_count(st, NULL, &n), ODSYNC_OK);
    ck_assert_int_eq(n, 1);
    store_close(st);
}
END_TEST

START_TEST(upsert_same_body_unchanged)
{
    struct store *st = open_ok();
    int64_t updated;
    struct upsert u;
    upsert(st, "main-st", "od:main-st:1042", "{\"first_name\":\"Ann\"}");
    updated = query_int(st, "SELECT updated_at FROM records");
    u = upsert(st, "main-st", "od:main-st:1042", "{\"first_name\":\"Ann\"}");
    ck_assert_int_eq(u.changed, 0);
    ck_assert_int_eq(u.version, 1);
    ck_assert_int_eq(query_int(st, "SELECT version FROM records"), 1);
    ck_assert(query_int(st, "SELECT updated_at FROM records") == updated);
    store_close(st);
}
END_TEST

START_TEST(upsert_different_body_version_2)
{
    struct store *st = open_ok();
    sqlite3_stmt *s;
    struct upsert u;
    char hash[65];
    upsert(st, "main-st", "od:main-st:1042", "{\"first_name\":\"Ann\"}");
    u = upsert(st, "main-st", "od:main-st:1042", "{\"first_name\":\"Anne\"}");
    ck_assert_int_eq(u.changed, 1);
    ck_assert_int_eq(u.version, 2);
    u = upsert(st, "main-st", "od:main-st:1042", "{\"first_name\":\"Anne\"}");
    ck_assert_int_eq(u.changed, 0);
    ck_assert_int_eq(u.version, 2);
    /* back to the first body is a change too */
    u = upsert(st, "main-st", "od:main-st:1042", "{\"first_name\":\"Ann\"}");
    ck_assert_int_eq(u.changed, 1);
    ck_assert_int_eq(u.version, 3);
    ck_assert_int_eq(query_int(st, "SELECT COUNT(*) FROM records"), 1);
    /* the stored hash is the SHA-256 of the stored body */
    ck_assert_int_eq(records_hash("{\"first_name\":\"Ann\"}", 20, hash), ODSYNC_OK);
    s = NULL;
    ck_assert_int_eq(
        sqlite3_prepare_v2(store_db(st), "SELECT hash, body FROM records", -1, &s, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), hash);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 1), "{\"first_name\":\"Ann\"}");
    sqlite3_finalize(s);
    store_close(st);
}
END_TEST

START_TEST(upsert_offices_are_separate)
{
    struct store *st = open_ok();
    struct upsert u;
    int64_t n;
    upsert(st, "main-st", "od:shared:7", "{\"v\":1}");
    u = upsert(st, "elm-st", "od:shared:7", "{\"v\":1}");
    ck_assert_int_eq(u.changed, 1);
    ck_assert_int_eq(u.version, 1);
    u = upsert(st, "elm-st", "od:shared:7", "{\"v\":2}");
    ck_assert_int_eq(u.version, 2);
    ck_assert_int_eq(records_count(st, NULL, &n), ODSYNC_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(records_count(st, "main-st", &n), ODSYNC_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(records_count(st, "nowhere", &n), ODSYNC_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(
        query_int(st,
                  "SELECT version FROM records WHERE office = 'main-st' AND key = 'od:shared:7'"),
        1);
    store_close(st);
}
END_TEST

START_TEST(hash_is_sha256_hex)
{
    char hex[65];
    ck_assert_int_eq(records_hash("abc", 3, hex), ODSYNC_OK);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(records_hash("", 0, hex), ODSYNC_OK);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(upsert_survives_reopen)
{
    struct store *st = open_ok();
    struct upsert u;
    upsert(st, "main-st", "od:main-st:1", "{\"a\":1}");
    store_close(st);
    st = open_ok();
    u = upsert(st, "main-st", "od:main-st:1", "{\"a\":1}");
    ck_assert_int_eq(u.changed, 0);
    ck_assert_int_eq(u.version, 1);
    store_close(st);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *mig = tcase_create("migrations");
    TCase *tx = tcase_create("tx");
    TCase *rec = tcase_create("records");

    tcase_add_checked_fixture(mig, setup, teardown);
    tcase_add_test(mig, fresh_file_gets_latest_schema);
    tcase_add_test(mig, reopen_applies_nothing);
    tcase_add_test(mig, wal_mode_is_on);
    tcase_add_test(mig, newer_schema_refused);
    tcase_add_test(mig, failed_migration_names_sqlite_message);
    tcase_add_test(mig, garbage_file_refused);
    suite_add_tcase(s, mig);

    tcase_add_checked_fixture(tx, setup, teardown);
    tcase_add_test(tx, tx_rolls_back_when_fn_fails);
    tcase_add_test(tx, tx_commit_visible_to_other_connection);
    tcase_add_test(tx, writers_take_turns);
    tcase_add_test(tx, close_accepts_null);
    suite_add_tcase(s, tx);

    tcase_add_checked_fixture(rec, setup, teardown);
    tcase_add_test(rec, upsert_new_is_changed_version_1);
    tcase_add_test(rec, upsert_same_body_unchanged);
    tcase_add_test(rec, upsert_different_body_version_2);
    tcase_add_test(rec, upsert_offices_are_separate);
    tcase_add_test(rec, hash_is_sha256_hex);
    tcase_add_test(rec, upsert_survives_reopen);
    suite_add_tcase(s, rec);
    return s;
}

ODSYNC_TEST_MAIN(store_suite)
