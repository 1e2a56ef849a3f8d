/*
 * store: odsim's SQLite database (schema, small query helpers), the JSON rendering of rows
 * exactly as Open Dental's REST API shapes them (field order, enum names, "true"/"false",
 * display siblings, CR/LF as spaces), and list queries with paging and optional shuffling.
 *
 * Every function that touches the database needs sim.db_lock held by the caller.
 */
#ifndef ODSIM_STORE_H
#define ODSIM_STORE_H

#include <sqlite3.h>

#include "odsim.h"

/* Column list shared by appointment and histappointment, in API order. */
#define STORE_APT_COLS                                                                             \
    "AptNum, PatNum, AptStatus, Pattern, Confirmed, TimeLocked, Op, Note, ProvNum, ProvHyg,"       \
    " AptDateTime, NextAptNum, UnschedStatus, IsNewPatient, ProcDescript, ClinicNum, IsHygiene,"   \
    " DateTStamp, DateTimeArrived, DateTimeSeated, DateTimeDismissed, InsPlan1, InsPlan2,"         \
    " DateTimeAskedToArrive, ColorOverride, AppointmentTypeNum, SecUserNumEntry, SecDateTEntry,"   \
    " Priority, PatternSecondary, ItemOrderPlanned"

/* A bound SQL value; text is borrowed until the statement runs. */
struct dbv {
    char t; /* 'i' int, 't' text, 'r' real, 'n' NULL */
    int64_t i;
    double r;
    const char *s;
};
#define DV_I(x) ((struct dbv){.t = 'i', .i = (int64_t)(x)})
#define DV_T(x) ((struct dbv){.t = 't', .s = (x)})
#define DV_R(x) ((struct dbv){.t = 'r', .r = (x)})
/* Expands to "array, count" for the helpers below. */
#define DBARGS(...)                                                                                \
    (const struct dbv[]){__VA_ARGS__},                                                             \
        (int)(sizeof((const struct dbv[]){__VA_ARGS__}) / sizeof(struct dbv))

/* Open path (":memory:" for none) with the schema. Returns ODSYNC_OK or ODSYNC_IO (printed). */
int store_open(struct sim *s, const char *path);
/* Free s->cache (list cursors, cached statements) and close s->db; accepts a never-opened sim. */
void store_close(struct sim *s);
/* Create the secondary indexes (after bulk generation, which is faster without them). */
int store_create_indexes(struct sim *s);

/* Run SQL text (several statements, no parameters). ODSYNC_OK or ODSYNC_STORE (logged). */
int store_exec(struct sim *s, const char *sql);
/* Prepare sql with values bound in order (?1..?n). NULL on error (logged). Caller finalizes. */
sqlite3_stmt *store_prepare(struct sim *s, const char *sql, const struct dbv *v, int n);
/* Run a statement returning no rows: the number of changed rows, or -1 (logged). */
int64_t store_run(struct sim *s, const char *sql, const struct dbv *v, int n);
/* First column of the first row as an integer: 1 found, 0 no row (or NULL), -1 error. */
int store_int(struct sim *s, const char *sql, const struct dbv *v, int n, int64_t *out);
/* First column of the first row as text into out (truncated to len): 1, 0 or -1 as above. */
int store_text(struct sim *s, const char *sql, const struct dbv *v, int n, char *out, size_t len);
/* MAX(pk) + 1 of table for office (1 when empty); -1 on error. */
int64_t store_next_id(struct sim *s, const char *table, const char *pk, int office);

/* ---- JSON ------------------------------------------------------------------------------- */

/* Append s as a JSON string (escaped; CR, LF and CRLF become one space). */
int json_str(struct sbuf *b, const char *s);
/* Append a number the way .NET writes a double (0.0, 95.5). */
int json_real(struct sbuf *b, double v);
/* A JSON string body for msg; caller frees with util_free. NULL on NOMEM. */
char *json_string_body(const char *msg);

/* ---- resources -------------------------------------------------------------------------- */

enum res_id {
    R_PATIENT,       /* GET /patients/{n}, /patients/Simple (with serverDateTime first) */
    R_PATIENT_MULTI, /* GET /patients: the reduced set */
    R_APPOINTMENT,
    R_HIST,
    R_RECALL,
    R_RECALLTYPE,
    R_PROC,
    R_CLINIC,
    R_PREF,
    R_COMMLOG,
    R_SUBSCRIPTION,
    R_PROVIDER,
    R_COUNT
};

/* Build the SELECT text and JSON keys of every resource (once at start). ODSYNC_OK or
 * ODSYNC_NOMEM; either way store_resources_free frees what was built. */
int store_resources_init(void);
void store_resources_free(void);

/* A list query: "SELECT <fields of res> FROM <table> t WHERE t.office = ? AND ...". */
struct query {
    enum res_id res;
    struct sbuf where;    /* owned: the " AND ..." conditions */
    struct dbv binds[24]; /* values for the '?' in where, in order; texts borrowed */
    int nbinds;
    int failed;        /* too many conditions or NOMEM */
    const char *order; /* static ORDER BY expression, or NULL for the primary key */
    int pk_order;      /* 1: primary-key order even with --shuffle (admin dumps) */
};
void query_init(struct query *q, enum res_id res, int office);
/* Add " AND cond" where cond holds at most one '?', bound to v (v.t 'n' binds nothing). */
void query_and(struct query *q, const char *cond, struct dbv v);
void query_free(struct query *q);

/* Run q with LIMIT/OFFSET (limit < 0: no limit) and render a JSON array into *out (caller
 * frees with util_free). now is the serverDateTime for resources that carry it (NULL omits
 * it). With s->shuffle and no explicit order, rows come in a seeded, stable non-PK order.
 * A page in primary-key order that starts where the same list's previous page ended, with no
 * write in between, continues after that page's last key instead of skipping offset rows
 * (same rows, same bytes; s->cache keeps the cursors and prepared statements).
 * Returns ODSYNC_OK, ODSYNC_NOMEM, ODSYNC_INVALID (q failed) or ODSYNC_STORE. */
int store_list(struct sim *s, struct query *q, int64_t limit, int64_t offset, const char *now,
               char **out);

/* One row by primary key: 1 and *out (caller frees) when found, 0 when not, -1 on error. */
int store_one(struct sim *s, enum res_id res, int office, int64_t pk, const char *now, char **out);

#endif
