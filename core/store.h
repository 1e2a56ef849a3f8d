/*
 * store: the SQLite database — open (WAL, busy_timeout, foreign keys), numbered migrations
 * recorded in schema_migrations, and a transaction helper. One connection per thread: each
 * thread opens its own struct store on the same file.
 */
#ifndef ODSYNC_STORE_H
#define ODSYNC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

struct store;

/* Open (creating if needed) the database at path and apply pending migrations.
 * On success *out is a connection the caller frees with store_close. On failure err names
 * the file and SQLite's message. */
int store_open(const char *path, struct store **out, char *err, size_t errlen);

/* Close; accepts NULL. */
void store_close(struct store *st);

/* The connection. Borrowed, valid until store_close. */
sqlite3 *store_db(struct store *st);

/* SQLite's message for the last failed store_exec. Borrowed, valid until the next call. */
const char *store_errmsg(const struct store *st);

/* Highest applied migration, and the highest this build knows. */
int store_schema_version(struct store *st);
int store_latest_version(void);

/* Run fn(st, arg) inside BEGIN IMMEDIATE ... COMMIT; roll back when fn returns non-OK or the
 * commit fails. Returns fn's status, or ODSYNC_STORE. Inside a transaction the caller opened
 * (store_exec "BEGIN"), it runs as a savepoint instead, so the caller's ROLLBACK undoes it
 * (that is how `odsync dry-run` runs the real code and keeps nothing). */
int store_tx(struct store *st, int (*fn)(struct store *st, void *arg), void *arg);

/* The connection's current transaction scope: it changes whenever store_tx begins or ends
 * a transaction or savepoint and on every store_exec, and is never given twice in the
 * process. What a caller learns about uncommitted writes (say, a patient already marked
 * dirty) holds only while the serial is unchanged: a rollback always changes it. */
uint64_t store_serial(const struct store *st);

/* Writers of this process waiting for their turn at store_tx (first come, first served),
 * not counting the one writing now. A gauge on /metrics. */
int store_write_waiters(void);

/* Execute SQL with no results. Returns ODSYNC_OK or ODSYNC_STORE (logged). */
int store_exec(struct store *st, const char *sql);

/* A prepared statement cached on the connection (finalized by store_close). NULL on error
 * (logged). Borrowed; reset and clear bindings are done for you on each call. sql must live
 * as long as the connection (pass a string literal): the cache keeps the pointer. */
sqlite3_stmt *store_stmt(struct store *st, const char *sql);

/* Map a SQLite result code to an odsync status (SQLITE_FULL etc. -> ODSYNC_STORE). */
int store_status(int sqlite_rc);

#endif
