/*
 * store.c: SQLite connection, migrations and transactions.
 */
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 5000
#define STMT_CACHE      128

struct cached_stmt {
    const char *sql; /* the caller's string literal, compared by content */
    sqlite3_stmt *stmt;
};

struct store {
    sqlite3 *db;
    char last_error[256]; /* SQLite's message for the last failed store_exec */
    struct cached_stmt cache[STMT_CACHE];
    size_t n_cached;
    uint64_t serial; /* see store_serial */
};

/* Serials come from one process-wide counter, so none is ever given twice. */
static atomic_uint_fast64_t serials;

/* A new transaction scope began or ended on st. */
static void next_serial(struct store *st)
{
    st->serial = (uint64_t)atomic_fetch_add(&serials, 1) + 1;
}

uint64_t store_serial(const struct store *st)
{
    return st->serial;
}

struct migration {
    int version;
    const char *name;
    const char *sql;
};

/* Numbered migrations. Append only: never edit one that has shipped. */
static const struct migration migrations[] = {
    {1, "canonical records and outbox",
     "CREATE TABLE records ("
     "  office TEXT NOT NULL, key TEXT NOT NULL, kind INTEGER NOT NULL,"
     "  hash TEXT NOT NULL, body TEXT NOT NULL, version INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL, PRIMARY KEY (office, key)) WITHOUT ROWID;"
     "CREATE TABLE outbox ("
     "  id INTEGER PRIMARY KEY, sink TEXT NOT NULL, office TEXT NOT NULL, key TEXT NOT NULL,"
     "  kind INTEGER NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,"
     "  state TEXT NOT NULL DEFAULT 'pending'"
     "    CHECK (state IN ('pending', 'inflight', 'done', 'dead')),"
     "  claimed_version INTEGER, attempts INTEGER NOT NULL DEFAULT 0,"
     "  next_at INTEGER NOT NULL DEFAULT 0, remote_id TEXT, last_class INTEGER,"
     "  last_detail TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
     "  UNIQUE (sink, office, key));"
     "CREATE INDEX outbox_due ON outbox (sink, state, next_at);"},
    {2, "dead-letter time, per-office claims, sink pauses",
     "ALTER TABLE outbox ADD COLUMN dead_at INTEGER;"
     "CREATE INDEX outbox_office_due ON outbox (sink, office, state, next_at);"
     "CREATE TABLE sink_state ("
     "  sink TEXT PRIMARY KEY, paused_until INTEGER NOT NULL DEFAULT 0,"
     "  pause_class INTEGER NOT NULL DEFAULT 0, pause_detail TEXT,"
     "  updated_at INTEGER NOT NULL);"},
    {3, "canonical Open Dental model, checkpoints, office state",
     "CREATE TABLE od_patients ("
     "  office TEXT NOT NULL, patnum INTEGER NOT NULL, status TEXT, guarantor INTEGER,"
     "  clinic INTEGER, hash TEXT NOT NULL, body TEXT NOT NULL, changed_at TEXT,"
     "  updated_at INTEGER NOT NULL, PRIMARY KEY (office, patnum)) WITHOUT ROWID;"
     "CREATE TABLE od_recalls ("
     "  office TEXT NOT NULL, recall_num INTEGER NOT NULL, patnum INTEGER NOT NULL,"
     "  recall_type INTEGER, date_due TEXT, date_scheduled TEXT, disabled INTEGER NOT NULL,"
     "  seen INTEGER NOT NULL DEFAULT 1, misses INTEGER NOT NULL DEFAULT 0,"
     "  hash TEXT NOT NULL, body TEXT NOT NULL,"
     "  changed_at TEXT, updated_at INTEGER NOT NULL, PRIMARY KEY (office, recall_num))"
     "  WITHOUT ROWID;"
     "CREATE INDEX od_recalls_patient ON od_recalls (office, patnum);"
     "CREATE TABLE od_appointments ("
     "  office TEXT NOT NULL, apt_num INTEGER NOT NULL, patnum INTEGER NOT NULL, status TEXT,"
     "  start TEXT, hash TEXT NOT NULL, body TEXT NOT NULL, changed_at TEXT,"
     "  updated_at INTEGER NOT NULL, PRIMARY KEY (office, apt_num)) WITHOUT ROWID;"
     "CREATE INDEX od_appointments_patient ON od_appointments (office, patnum);"
     "CREATE TABLE od_procedures ("
     "  office TEXT NOT NULL, proc_num INTEGER NOT NULL, patnum INTEGER NOT NULL,"
     "  proc_date TEXT, status TEXT, hash TEXT NOT NULL, changed_at TEXT,"
     "  updated_at INTEGER NOT NULL, PRIMARY KEY (office, proc_num)) WITHOUT ROWID;"
     "CREATE INDEX od_procedures_patient ON od_procedures (office, patnum);"
     "CREATE TABLE od_clinics ("
     "  office TEXT NOT NULL, clinic_num INTEGER NOT NULL, hash TEXT NOT NULL,"
     "  body TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (office, clinic_num))"
     "  WITHOUT ROWID;"
     "CREATE TABLE od_dirty (office TEXT NOT NULL, patnum INTEGER NOT NULL,"
     "  PRIMARY KEY (office, patnum)) WITHOUT ROWID;"
     "CREATE TABLE od_checkpoints ("
     "  office TEXT NOT NULL, resource TEXT NOT NULL, phase TEXT NOT NULL DEFAULT 'backfill',"
     "  next_offset INTEGER NOT NULL DEFAULT 0, watermark TEXT, pass_min TEXT,"
     "  completed_at INTEGER, updated_at INTEGER NOT NULL, PRIMARY KEY (office, resource));"
     "CREATE TABLE od_office_state ("
     "  office TEXT PRIMARY KEY, state TEXT NOT NULL, detail TEXT, since INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL);"},
    {4, "API Events inbox and event state",
     "CREATE TABLE od_inbox ("
     "  id INTEGER PRIMARY KEY, office TEXT NOT NULL, watch_table TEXT NOT NULL,"
     "  workstation TEXT, rows INTEGER NOT NULL, body TEXT NOT NULL,"
     "  received_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'new'"
     "    CHECK (state IN ('new', 'done')), progress INTEGER NOT NULL DEFAULT 0,"
     "  applied INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,"
     "  processed_at INTEGER);"
     "CREATE INDEX od_inbox_new ON od_inbox (state, id);"
     "CREATE TABLE od_event_state ("
     "  office TEXT NOT NULL, watch_table TEXT NOT NULL, last_event_at INTEGER NOT NULL,"
     "  batches INTEGER NOT NULL DEFAULT 0, rows INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (office, watch_table)) WITHOUT ROWID;"},
    {5, "consent ledger, send ledger, decisions, engagement state",
     "CREATE TABLE consent ("
     "  office TEXT NOT NULL, channel TEXT NOT NULL, address TEXT NOT NULL,"
     "  purpose TEXT NOT NULL, state TEXT NOT NULL"
     "    CHECK (state IN ('opt_out', 'opt_in', 'written')),"
     "  source TEXT NOT NULL, evidence TEXT, at INTEGER NOT NULL,"
     "  PRIMARY KEY (office, channel, address, purpose)) WITHOUT ROWID;"
     "CREATE TABLE consent_log ("
     "  id INTEGER PRIMARY KEY, office TEXT NOT NULL, channel TEXT NOT NULL,"
     "  address TEXT NOT NULL, purpose TEXT NOT NULL, state TEXT NOT NULL,"
     "  source TEXT NOT NULL, evidence TEXT, at INTEGER NOT NULL);"
     "CREATE TABLE messages ("
     "  office TEXT NOT NULL, key TEXT NOT NULL, patnum INTEGER NOT NULL,"
     "  campaign TEXT NOT NULL, channel TEXT NOT NULL, address TEXT, family TEXT,"
     "  state TEXT NOT NULL CHECK (state IN ('queued', 'held', 'sending', 'sent', 'skipped',"
     "    'expired', 'failed', 'unknown')),"
     "  due_at INTEGER NOT NULL, hold_until INTEGER NOT NULL DEFAULT 0,"
     "  created_at INTEGER NOT NULL, sent_at INTEGER NOT NULL DEFAULT 0, provider_id TEXT,"
     "  reason TEXT, updated_at INTEGER NOT NULL, PRIMARY KEY (office, key)) WITHOUT ROWID;"
     "CREATE INDEX messages_address ON messages (office, address, sent_at);"
     "CREATE INDEX messages_patient ON messages (office, patnum, campaign);"
     "CREATE INDEX messages_family ON messages (office, family);"
     "CREATE TABLE decisions ("
     "  id INTEGER PRIMARY KEY, office TEXT NOT NULL, key TEXT NOT NULL, patnum INTEGER,"
     "  campaign TEXT, channel TEXT, outcome TEXT NOT NULL, until_at INTEGER,"
     "  reason TEXT, rule TEXT, consent TEXT, at INTEGER NOT NULL);"
     "CREATE INDEX decisions_key ON decisions (office, key);"
     "CREATE INDEX decisions_at ON decisions (office, at);"
     "CREATE TABLE engage_tasks ("
     "  office TEXT NOT NULL, recall_num INTEGER NOT NULL, patnum INTEGER NOT NULL,"
     "  open INTEGER NOT NULL, PRIMARY KEY (office, recall_num)) WITHOUT ROWID;"
     "CREATE INDEX engage_tasks_patient ON engage_tasks (office, patnum);"
     "CREATE TABLE engage_reactivation ("
     "  office TEXT NOT NULL, patnum INTEGER NOT NULL, enrolled_on TEXT NOT NULL,"
     "  ended_on TEXT, reason TEXT, PRIMARY KEY (office, patnum)) WITHOUT ROWID;"
     "CREATE TABLE engage_office (office TEXT PRIMARY KEY, last_tick TEXT NOT NULL);"},
    {6, "provider delivery status, inbound replies for staff review",
     "ALTER TABLE messages ADD COLUMN delivery TEXT;"
     "ALTER TABLE messages ADD COLUMN delivery_at INTEGER;"
     "CREATE TABLE inbound_review ("
     "  id INTEGER PRIMARY KEY, office TEXT NOT NULL, channel TEXT NOT NULL,"
     "  address TEXT NOT NULL, body TEXT, received_at INTEGER NOT NULL,"
     "  handled INTEGER NOT NULL DEFAULT 0);"},
};

int store_status(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return ODSYNC_OK;
    case SQLITE_NOMEM:
        return ODSYNC_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ODSYNC_RETRY;
    default:
        return ODSYNC_STORE;
    }
}

int store_latest_version(void)
{
    return migrations[UTIL_ARRAY_LEN(migrations) - 1].version;
}

int store_exec(struct store *st, const char *sql)
{
    char *msg = NULL;
    int rc;
    next_serial(st); /* it may begin or end a transaction (dry-run's BEGIN ... ROLLBACK) */
    rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        util_fmt(st->last_error, sizeof(st->last_error), "%s", msg ? msg : sqlite3_errstr(rc));
        log_error("store", "%s (%.60s...)", st->last_error, sql);
        sqlite3_free(msg);
        return store_status(rc) == ODSYNC_OK ? ODSYNC_STORE : store_status(rc);
    }
    return ODSYNC_OK;
}

int store_schema_version(struct store *st)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    int v = -1;
    if (s != NULL && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    if (s != NULL)
        sqlite3_reset(s);
    return v;
}

/* Apply one migration and record it, in a transaction. */
static int apply_migration(struct store *st, void *arg)
{
    const struct migration *m = arg;
    sqlite3_stmt *s;
    int rc = store_exec(st, m->sql);
    if (rc != ODSYNC_OK)
        return rc;
    s = store_stmt(st,
                   "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int(s, 1, m->version);
    sqlite3_bind_text(s, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, util_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* Bring the schema up to date. */
static int migrate(struct store *st, char *err, size_t errlen)
{
    size_t i;
    int current, rc;

    rc = store_exec(st, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                        " applied_at INTEGER NOT NULL)");
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "cannot create schema_migrations: %s", sqlite3_errmsg(st->db));
        return rc;
    }
    current = store_schema_version(st);
    if (current > store_latest_version()) {
        util_fmt(err, errlen, "database schema version %d is newer than this odsync (%d)", current,
                 store_latest_version());
        return ODSYNC_STORE;
    }
    for (i = 0; i < UTIL_ARRAY_LEN(migrations); i++) {
        if (migrations[i].version <= current)
            continue;
        rc = store_tx(st, apply_migration, (void *)&migrations[i]);
        if (rc != ODSYNC_OK) {
            util_fmt(err, errlen, "migration %d (%s) failed: %s", migrations[i].version,
                     migrations[i].name, store_errmsg(st));
            return rc;
        }
        log_info("store", "applied migration %d: %s", migrations[i].version, migrations[i].name);
    }
    return ODSYNC_OK;
}

/* SQLite's busy handler: retry soon and often (1 ms steps, then 5 ms), for up to
 * BUSY_TIMEOUT_MS. The default busy_timeout sleeps up to 100 ms at a time, which would let a
 * webhook wait far longer than the lock is held. */
static int busy_wait(void *arg, int count)
{
    struct timespec ts = {0, count < 200 ? 1000000L : 5000000L};
    (void)arg;
    if (count >= 200 + (BUSY_TIMEOUT_MS - 200) / 5)
        return 0; /* give up: SQLITE_BUSY */
    nanosleep(&ts, NULL);
    return 1;
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
    struct store *st = NULL;
    int rc = ODSYNC_NOMEM, src;
    char merr[384];

    *out = NULL;
    st = util_calloc(1, sizeof(*st));
    if (st == NULL)
        goto cleanup;
    src = sqlite3_open_v2(path, &st->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        util_fmt(err, errlen, "%s: cannot open database: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(src));
        rc = ODSYNC_STORE;
        goto cleanup;
    }
    sqlite3_busy_handler(st->db, busy_wait, NULL);
    sqlite3_extended_result_codes(st->db, 1);
    rc = store_exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                        " PRAGMA foreign_keys=ON;");
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s: cannot configure database: %s", path, sqlite3_errmsg(st->db));
        goto cleanup;
    }
    rc = migrate(st, merr, sizeof(merr));
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s: %s", path, merr);
        goto cleanup;
    }
    *out = st;
    st = NULL;
cleanup:
    store_close(st);
    return rc;
}

void store_close(struct store *st)
{
    size_t i;
    if (st == NULL)
        return;
    for (i = 0; i < st->n_cached; i++)
        sqlite3_finalize(st->cache[i].stmt);
    sqlite3_close(st->db);
    util_free(st);
}

const char *store_errmsg(const struct store *st)
{
    return st->last_error[0] ? st->last_error : "unknown error";
}

sqlite3 *store_db(struct store *st)
{
    return st->db;
}

/* The cache slot of sql, or st->n_cached. Callers pass string literals, so the same pointer
 * finds the statement without comparing text; the text comparison only catches an equal
 * statement written as another literal. */
static size_t cache_find(const struct store *st, const char *sql)
{
    size_t i;
    for (i = 0; i < st->n_cached; i++)
        if (st->cache[i].sql == sql)
            return i;
    for (i = 0; i < st->n_cached; i++)
        if (strcmp(st->cache[i].sql, sql) == 0)
            return i;
    return st->n_cached;
}

sqlite3_stmt *store_stmt(struct store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    size_t i;
    int rc;
    i = cache_find(st, sql);
    if (i < st->n_cached) {
        sqlite3_reset(st->cache[i].stmt);
        sqlite3_clear_bindings(st->cache[i].stmt);
        return st->cache[i].stmt;
    }
    rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        log_error("store", "prepare failed: %s", sqlite3_errmsg(st->db));
        return NULL;
    }
    if (st->n_cached < STMT_CACHE) {
        st->cache[st->n_cached].sql = sql;
        st->cache[st->n_cached++].stmt = s;
    } else {
        /* Cache full: evict the oldest; callers only use string literals, so this is rare. */
        sqlite3_finalize(st->cache[0].stmt);
        memmove(&st->cache[0], &st->cache[1], (STMT_CACHE - 1) * sizeof(st->cache[0]));
        st->cache[STMT_CACHE - 1].sql = sql;
        st->cache[STMT_CACHE - 1].stmt = s;
    }
    return s;
}

/* SQLite has one write lock per database, and its busy handler is not fair: with dozens of
 * connections in one process (an ingester per office, a worker per sink, the listener),
 * a writer can lose the race for longer than the busy timeout. Writers of this process
 * therefore queue here first, so they never time out on each other; the busy timeout is
 * left for other processes (a CLI command beside the daemon). The queue is first come,
 * first served (a ticket lock): a plain mutex lets a thread that commits transaction after
 * transaction, like a projection, take it straight back and starve a delivery worker
 * until it is done. */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t write_turn = PTHREAD_COND_INITIALIZER;
static uint64_t write_next, write_serving; /* tickets given, the ticket whose turn it is */

/* Wait for this thread's turn to write. */
static void write_enter(void)
{
    uint64_t ticket;
    pthread_mutex_lock(&write_mu);
    ticket = write_next++;
    while (ticket != write_serving)
        pthread_cond_wait(&write_turn, &write_mu);
    pthread_mutex_unlock(&write_mu);
}

int store_write_waiters(void)
{
    uint64_t given, serving;
    pthread_mutex_lock(&write_mu);
    given = write_next;
    serving = write_serving;
    pthread_mutex_unlock(&write_mu);
    return given > serving ? (int)(given - serving - 1) : 0; /* less the one writing */
}

/* Hand the turn to the next writer in line. */
static void write_leave(void)
{
    pthread_mutex_lock(&write_mu);
    write_serving++;
    pthread_cond_broadcast(&write_turn);
    pthread_mutex_unlock(&write_mu);
}

/* One transaction-control statement (BEGIN, COMMIT, SAVEPOINT, RELEASE), prepared once per
 * connection through the statement cache rather than parsed by sqlite3_exec every time: a
 * busy worker runs several per batch. Errors as store_exec reports them. */
static int tx_control(struct store *st, const char *sql)
{
    sqlite3_stmt *s = store_stmt(st, sql);
    int rc;
    if (s == NULL)
        return store_exec(st, sql); /* not preparable now: let exec say why */
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        util_fmt(st->last_error, sizeof(st->last_error), "%s", sqlite3_errmsg(st->db));
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return ODSYNC_OK;
    log_error("store", "%s (%.60s...)", st->last_error, sql);
    return store_status(rc) == ODSYNC_OK ? ODSYNC_STORE : store_status(rc);
}

int store_tx(struct store *st, int (*fn)(struct store *st, void *arg), void *arg)
{
    int nested = !sqlite3_get_autocommit(st->db); /* inside a caller's transaction */
    int rc;
    if (!nested)
        write_enter();
    next_serial(st);
    rc = tx_control(st, nested ? "SAVEPOINT store_tx" : "BEGIN IMMEDIATE");
    if (rc == ODSYNC_OK) {
        rc = fn(st, arg);
        if (rc == ODSYNC_OK)
            rc = tx_control(st, nested ? "RELEASE store_tx" : "COMMIT");
        if (rc != ODSYNC_OK)
            sqlite3_exec(st->db, nested ? "ROLLBACK TO store_tx; RELEASE store_tx" : "ROLLBACK",
                         NULL, NULL, NULL);
    }
    next_serial(st);
    if (!nested)
        write_leave();
    return rc;
}
