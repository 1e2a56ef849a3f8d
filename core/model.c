/*
 * model.c: canonical structs, normalisation, and storage with change detection.
 */
#include "model.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"
#include "records.h"
#include "util.h"

/* ---- clearing ------------------------------------------------------------------------ */

void model_patient_clear(struct model_patient *p)
{
    if (p == NULL)
        return;
    util_free(p->last_name);
    util_free(p->first_name);
    util_free(p->middle_initial);
    util_free(p->preferred_name);
    util_free(p->status);
    util_free(p->email);
    util_free(p->phone_mobile);
    util_free(p->phone_home);
    util_free(p->phone_work);
    util_free(p->birthdate);
    util_free(p->sms_consent);
    util_free(p->prefer_contact);
    util_free(p->prefer_recall);
    util_free(p->language);
    util_free(p->changed_at);
    memset(p, 0, sizeof(*p));
}

void model_recall_clear(struct model_recall *r)
{
    if (r == NULL)
        return;
    util_free(r->date_due);
    util_free(r->date_previous);
    util_free(r->date_scheduled);
    util_free(r->disable_until);
    util_free(r->interval);
    util_free(r->changed_at);
    memset(r, 0, sizeof(*r));
}

void model_appointment_clear(struct model_appointment *a)
{
    if (a == NULL)
        return;
    util_free(a->status);
    util_free(a->start);
    util_free(a->dismissed_at);
    util_free(a->changed_at);
    memset(a, 0, sizeof(*a));
}

void model_procedure_clear(struct model_procedure *p)
{
    if (p == NULL)
        return;
    util_free(p->proc_date);
    util_free(p->status);
    util_free(p->changed_at);
    memset(p, 0, sizeof(*p));
}

void model_clinic_clear(struct model_clinic *c)
{
    if (c == NULL)
        return;
    util_free(c->description);
    util_free(c->abbr);
    util_free(c->phone);
    memset(c, 0, sizeof(*c));
}

/* ---- normalisation ------------------------------------------------------------------- */

int model_phone_e164(const char *raw, char *out, size_t out_len)
{
    char digits[16];
    size_t n = 0;
    const char *d;

    if (out_len > 0)
        out[0] = '\0';
    if (raw == NULL || out_len < 13)
        return 0;
    for (; *raw != '\0'; raw++) {
        if (isdigit((unsigned char)*raw)) {
            if (n >= 11)
                return 0;
            digits[n++] = *raw;
        } else if (!strchr(" ()-.+/", *raw)) {
            return 0; /* letters, extensions: not a number we can text */
        }
    }
    digits[n] = '\0';
    d = digits;
    if (n == 11 && digits[0] == '1')
        d = digits + 1;
    else if (n != 10)
        return 0;
    if (d[0] < '2' || d[3] < '2')
        return 0; /* NANP: area code and exchange start with 2-9 */
    return util_fmt(out, out_len, "+1%s", d) == ODSYNC_OK;
}

int model_email_valid(const char *s)
{
    const char *at, *dot, *p;
    size_t n;
    if (s == NULL)
        return 0;
    n = strlen(s);
    at = strchr(s, '@');
    if (n == 0 || n > 254 || at == NULL || at == s || strchr(at + 1, '@') != NULL)
        return 0;
    for (p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == ',' || *p == ';' || *p == 0x7f)
            return 0;
    dot = strrchr(at + 1, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0' && strstr(at, "..") == NULL;
}

/* 1 when s[0..10) is a real YYYY-MM-DD date after year 1800. */
static int real_date(const char *s)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = 0, m, d, i;
    for (i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        } else if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    for (i = 0; i < 4; i++)
        y = y * 10 + (s[i] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y <= 1800 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return 0;
    return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

char *model_date(const char *s)
{
    if (s == NULL || strlen(s) < 10 || !real_date(s))
        return NULL;
    if (s[10] != '\0' && s[10] != ' ' && s[10] != 'T')
        return NULL;
    return util_strndup(s, 10);
}

char *model_datetime(const char *s)
{
    char *out;
    size_t n, i;
    if (s == NULL || (n = strlen(s)) < 19 || !real_date(s) || (s[10] != ' ' && s[10] != 'T'))
        return NULL;
    for (i = 11; i < 19; i++)
        if ((i == 13 || i == 16) ? s[i] != ':' : !isdigit((unsigned char)s[i]))
            return NULL;
    if ((s[11] - '0') * 10 + (s[12] - '0') > 23 || s[14] > '5' || s[17] > '5')
        return NULL;
    /* Naive local times only: a fraction of a second is dropped, a zone is refused. */
    if (n > 19 && s[19] != '.')
        return NULL;
    for (i = 20; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return NULL;
    out = util_strndup(s, 19);
    if (out != NULL)
        out[10] = ' ';
    return out;
}

int model_bool_string(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcasecmp(s, "true") == 0)
        return 1;
    if (strcasecmp(s, "false") == 0)
        return 0;
    return -1;
}

/* ---- JSON bodies --------------------------------------------------------------------- */

char *model_patient_json(const struct model_patient *p)
{
    struct jsonw w;
    jsonw_begin(&w);
    jsonw_int(&w, "patnum", p->patnum);
    jsonw_str(&w, "last_name", p->last_name);
    jsonw_str(&w, "first_name", p->first_name);
    jsonw_str(&w, "middle_initial", p->middle_initial);
    jsonw_str(&w, "preferred_name", p->preferred_name);
    jsonw_str(&w, "status", p->status);
    jsonw_str(&w, "email", p->email);
    jsonw_str(&w, "phone_mobile", p->phone_mobile);
    jsonw_str(&w, "phone_home", p->phone_home);
    jsonw_str(&w, "phone_work", p->phone_work);
    jsonw_str(&w, "birthdate", p->birthdate);
    jsonw_int(&w, "guarantor", p->guarantor);
    jsonw_int(&w, "clinic_num", p->clinic_num);
    jsonw_str(&w, "sms_consent", p->sms_consent);
    jsonw_str(&w, "prefer_contact", p->prefer_contact);
    jsonw_str(&w, "prefer_recall", p->prefer_recall);
    jsonw_str(&w, "language", p->language);
    return jsonw_end(&w);
}

/* The canonical body of a recall (caller frees; NULL: out of memory). */
static char *recall_json(const struct model_recall *r)
{
    struct jsonw w;
    jsonw_begin(&w);
    jsonw_int(&w, "recall_num", r->recall_num);
    jsonw_int(&w, "patnum", r->patnum);
    jsonw_int(&w, "recall_type", r->recall_type);
    jsonw_str(&w, "date_due", r->date_due);
    jsonw_str(&w, "date_previous", r->date_previous);
    jsonw_str(&w, "date_scheduled", r->date_scheduled);
    jsonw_str(&w, "disable_until", r->disable_until);
    jsonw_bool(&w, "disabled", r->disabled);
    jsonw_str(&w, "interval", r->interval);
    return jsonw_end(&w);
}

/* The canonical body of an appointment (caller frees; NULL: out of memory). */
static char *appointment_json(const struct model_appointment *a)
{
    struct jsonw w;
    jsonw_begin(&w);
    jsonw_int(&w, "apt_num", a->apt_num);
    jsonw_int(&w, "patnum", a->patnum);
    jsonw_int(&w, "clinic_num", a->clinic_num);
    jsonw_int(&w, "prov_num", a->prov_num);
    jsonw_str(&w, "status", a->status);
    jsonw_str(&w, "start", a->start);
    jsonw_str(&w, "dismissed_at", a->dismissed_at);
    jsonw_bool(&w, "is_new_patient", a->is_new_patient);
    return jsonw_end(&w);
}

/* The canonical body of a completed procedure (caller frees; NULL: out of memory). */
static char *procedure_json(const struct model_procedure *p)
{
    struct jsonw w;
    jsonw_begin(&w);
    jsonw_int(&w, "proc_num", p->proc_num);
    jsonw_int(&w, "patnum", p->patnum);
    jsonw_int(&w, "apt_num", p->apt_num);
    jsonw_str(&w, "proc_date", p->proc_date);
    jsonw_str(&w, "status", p->status);
    return jsonw_end(&w);
}

/* The canonical body of a clinic (caller frees; NULL: out of memory). */
static char *clinic_json(const struct model_clinic *c)
{
    struct jsonw w;
    jsonw_begin(&w);
    jsonw_int(&w, "clinic_num", c->clinic_num);
    jsonw_str(&w, "description", c->description);
    jsonw_str(&w, "abbr", c->abbr);
    jsonw_str(&w, "phone", c->phone);
    jsonw_bool(&w, "hidden", c->hidden);
    return jsonw_end(&w);
}

/* ---- storage ------------------------------------------------------------------------- */

/* Step a statement that returns no rows and reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* The patient this thread last marked dirty, on which connection and in which transaction
 * scope (store_serial). A patient's rows come together (a visit's procedures, a patient's
 * appointments), and marking one again in the same transaction changes nothing, so it is
 * skipped; any commit, rollback or savepoint changes the serial and ends the shortcut. */
static _Thread_local struct {
    const struct store *st;
    uint64_t serial;
    int64_t patnum;
    char office[64];
} last_dirty;

/* Mark a patient dirty: the projection rebuilds what depends on it. */
static int mark_dirty(struct store *st, const char *office, int64_t patnum)
{
    sqlite3_stmt *s;
    int rc;
    if (last_dirty.st == st && last_dirty.serial == store_serial(st) &&
        last_dirty.patnum == patnum && strcmp(last_dirty.office, office) == 0 &&
        !sqlite3_get_autocommit(store_db(st)))
        return ODSYNC_OK;
    s = store_stmt(st, "INSERT OR IGNORE INTO od_dirty (office, patnum) VALUES (?, ?)");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, patnum);
    rc = step_done(s);
    last_dirty.st = NULL;
    if (rc == ODSYNC_OK &&
        util_fmt(last_dirty.office, sizeof(last_dirty.office), "%s", office) == ODSYNC_OK) {
        last_dirty.st = st;
        last_dirty.serial = store_serial(st);
        last_dirty.patnum = patnum;
    }
    return rc;
}

/* *same = 1 when the stored row (office, pk) needs no write: it has this hash, or it is newer
 * than the incoming row (its DateTStamp is later: an older row never overwrites a newer one,
 * whatever order events and polls arrive in). sql selects the hash and the changed_at. */
static int same_hash(struct store *st, const char *sql, const char *office, int64_t pk,
                     const char *hash, const char *changed_at, int *same)
{
    sqlite3_stmt *s = store_stmt(st, sql);
    const char *stored;
    int rc;
    *same = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, pk);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        stored = (const char *)sqlite3_column_text(s, 1);
        *same = strcmp((const char *)sqlite3_column_text(s, 0), hash) == 0 ||
                (changed_at != NULL && stored != NULL && strcmp(changed_at, stored) < 0);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* Hash body into hex; NOMEM when body is NULL (its printing failed). */
static int hash_body(const char *body, char hex[65])
{
    return body == NULL ? ODSYNC_NOMEM : records_hash(body, strlen(body), hex);
}

/* One canonical row for put_row. Upsert statements number their parameters: ?1 office,
 * ?2 primary key, ?3.. the table's extra columns, then hash, body, changed_at, updated_at. */
struct row_put {
    const char *table;      /* for recalls' "seen" rule: "od_recalls" */
    const char *select_sql; /* SELECT hash, changed_at ... WHERE office = ? AND pk = ?, or
                               NULL: the upsert's own WHERE skips a same or newer row */
    const char *upsert_sql;
    int64_t pk;
    int64_t patnum; /* marked dirty on a change; 0 = none (clinics) */
    const char *changed_at;
    struct {
        const char *text; /* bound as text unless is_int */
        int64_t value;
        int is_int;
    } extra[5];
    int n_extra;
};

/* Set the recall's seen flag (a reconciliation saw it). */
static int recall_seen(struct store *st, const char *office, int64_t recall_num)
{
    sqlite3_stmt *s = store_stmt(st, "UPDATE od_recalls SET seen = 1, misses = 0 WHERE office = ?"
                                     " AND recall_num = ?");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, recall_num);
    return step_done(s);
}

/* The one upsert with change detection behind every model_put_*: hash the body, skip it when
 * the stored row is the same or newer, else write it and mark its patient dirty. Takes
 * ownership of body (may be NULL: out of memory). */
static int put_row(struct store *st, const char *office, const struct row_put *r, char *body,
                   int *changed)
{
    char hash[65];
    sqlite3_stmt *s;
    int rc, same = 0, i, n = r->n_extra;

    *changed = 0;
    rc = hash_body(body, hash);
    if (rc == ODSYNC_OK && r->select_sql != NULL)
        rc = same_hash(st, r->select_sql, office, r->pk, hash, r->changed_at, &same);
    if (rc == ODSYNC_OK && same && strcmp(r->table, "od_recalls") == 0)
        rc = recall_seen(st, office, r->pk);
    if (rc != ODSYNC_OK || same)
        goto cleanup;
    s = store_stmt(st, r->upsert_sql);
    rc = ODSYNC_STORE;
    if (s == NULL)
        goto cleanup;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->pk);
    for (i = 0; i < n; i++) {
        if (r->extra[i].is_int)
            sqlite3_bind_int64(s, 3 + i, r->extra[i].value);
        else
            sqlite3_bind_text(s, 3 + i, r->extra[i].text, -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(s, 3 + n, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4 + n, body, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5 + n, r->changed_at, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6 + n, util_now_ms());
    rc = step_done(s);
    *changed = rc == ODSYNC_OK && sqlite3_changes(store_db(st)) > 0;
    if (*changed && r->patnum > 0) {
        rc = mark_dirty(st, office, r->patnum);
        *changed = rc == ODSYNC_OK;
    }
cleanup:
    util_free(body);
    return rc;
}

#define EXTRA_INT(v)                                                                               \
    {                                                                                              \
        NULL, (v), 1                                                                               \
    }
#define EXTRA_TEXT(t)                                                                              \
    {                                                                                              \
        (t), 0, 0                                                                                  \
    }

/* The DO UPDATE condition of an upsert that decides change detection itself (select_sql
 * NULL): the stored row is rewritten only when its hash differs and it is not newer than the
 * incoming one — same_hash's rule, without a lookup of its own. sqlite3_changes() then says
 * whether anything was written. */
#define CHANGED_WHERE(table)                                                                       \
    " WHERE " table ".hash IS NOT excluded.hash AND NOT (excluded.changed_at IS NOT NULL"          \
    " AND " table ".changed_at IS NOT NULL AND excluded.changed_at < " table ".changed_at)"

int model_put_patient(struct store *st, const char *office, const struct model_patient *p,
                      int *changed)
{
    struct row_put r = {
        "od_patients",
        NULL,
        "INSERT INTO od_patients (office, patnum, status, guarantor, clinic, hash, body,"
        " changed_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (office, patnum) DO UPDATE SET status = ?3, guarantor = ?4,"
        " clinic = ?5, hash = ?6, body = ?7, changed_at = ?8, updated_at = ?9" CHANGED_WHERE(
            "od_patients"),
        p->patnum,
        p->patnum,
        p->changed_at,
        {EXTRA_TEXT(p->status), EXTRA_INT(p->guarantor), EXTRA_INT(p->clinic_num)},
        3};
    return put_row(st, office, &r, model_patient_json(p), changed);
}

int model_put_recall(struct store *st, const char *office, const struct model_recall *rc,
                     int *changed)
{
    struct row_put r = {
        "od_recalls",
        "SELECT hash, changed_at FROM od_recalls WHERE office = ? AND recall_num = ?",
        "INSERT INTO od_recalls (office, recall_num, patnum, recall_type, date_due,"
        " date_scheduled, disabled, seen, misses, hash, body, changed_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, 0, ?8, ?9, ?10, ?11)"
        " ON CONFLICT (office, recall_num) DO UPDATE SET patnum = ?3, recall_type = ?4,"
        " date_due = ?5, date_scheduled = ?6, disabled = ?7, seen = 1, misses = 0, hash = ?8,"
        " body = ?9, changed_at = ?10, updated_at = ?11",
        rc->recall_num,
        rc->patnum,
        rc->changed_at,
        {EXTRA_INT(rc->patnum), EXTRA_INT(rc->recall_type), EXTRA_TEXT(rc->date_due),
         EXTRA_TEXT(rc->date_scheduled), EXTRA_INT(rc->disabled)},
        5};
    return put_row(st, office, &r, recall_json(rc), changed);
}

int model_put_appointment(struct store *st, const char *office, const struct model_appointment *a,
                          int *changed)
{
    struct row_put r = {
        "od_appointments",
        NULL,
        "INSERT INTO od_appointments (office, apt_num, patnum, status, start, hash, body,"
        " changed_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (office, apt_num) DO UPDATE SET patnum = ?3, status = ?4, start = ?5,"
        " hash = ?6, body = ?7, changed_at = ?8, updated_at = ?9" CHANGED_WHERE("od_appointments"),
        a->apt_num,
        a->patnum,
        a->changed_at,
        {EXTRA_INT(a->patnum), EXTRA_TEXT(a->status), EXTRA_TEXT(a->start)},
        3};
    return put_row(st, office, &r, appointment_json(a), changed);
}

int model_put_procedure(struct store *st, const char *office, const struct model_procedure *p,
                        int *changed)
{
    struct row_put r = {
        "od_procedures",
        NULL,
        "INSERT INTO od_procedures (office, proc_num, patnum, proc_date, status, hash,"
        " changed_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?9)"
        " ON CONFLICT (office, proc_num) DO UPDATE SET patnum = ?3, proc_date = ?4,"
        " status = ?5, hash = ?6, changed_at = ?8, updated_at = ?9" CHANGED_WHERE("od_procedures"),
        p->proc_num,
        p->patnum,
        p->changed_at,
        {EXTRA_INT(p->patnum), EXTRA_TEXT(p->proc_date), EXTRA_TEXT(p->status)},
        3};
    return put_row(st, office, &r, procedure_json(p), changed);
}

int model_put_clinic(struct store *st, const char *office, const struct model_clinic *c,
                     int *changed)
{
    struct row_put r = {"od_clinics",
                        "SELECT hash, NULL FROM od_clinics WHERE office = ? AND clinic_num = ?",
                        "INSERT INTO od_clinics (office, clinic_num, hash, body, updated_at)"
                        " VALUES (?1, ?2, ?3, ?4, ?6) ON CONFLICT (office, clinic_num)"
                        " DO UPDATE SET hash = ?3, body = ?4, updated_at = ?6",
                        c->clinic_num,
                        0,
                        NULL,
                        {{NULL, 0, 0}},
                        0};
    return put_row(st, office, &r, clinic_json(c), changed);
}

int model_delete_appointment(struct store *st, const char *office, int64_t apt_num, int *changed)
{
    sqlite3_stmt *s = store_stmt(st, "DELETE FROM od_appointments WHERE office = ?"
                                     " AND apt_num = ? RETURNING patnum");
    int64_t patnum = 0;
    int rc;
    *changed = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, apt_num);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        patnum = sqlite3_column_int64(s, 0);
        rc = sqlite3_step(s);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return ODSYNC_STORE;
    if (patnum == 0)
        return ODSYNC_OK;
    *changed = 1;
    return mark_dirty(st, office, patnum);
}

/* Run one of two statements on the recalls of office: all of them (patnum 0) or one
 * patient's (through the patient index, see project.c). */
static int recall_scope_exec(struct store *st, const char *all_sql, const char *patient_sql,
                             const char *office, int64_t patnum)
{
    sqlite3_stmt *s = store_stmt(st, patnum > 0 ? patient_sql : all_sql);
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    if (patnum > 0)
        sqlite3_bind_int64(s, 2, patnum);
    return step_done(s);
}

int model_recall_unmark(struct store *st, const char *office, int64_t patnum)
{
    return recall_scope_exec(st, "UPDATE od_recalls SET seen = 0 WHERE office = ?1",
                             "UPDATE od_recalls INDEXED BY od_recalls_patient SET seen = 0"
                             " WHERE office = ?1 AND patnum = ?2",
                             office, patnum);
}

int model_recall_sweep(struct store *st, const char *office, int64_t patnum, int64_t *deleted)
{
    int rc;
    *deleted = 0;
    /* A full read pages by Offset: a recall deleted in Open Dental meanwhile shifts the rows
     * after it, and one may cross a page boundary unseen. So a full read deletes a recall only
     * when the previous full read missed it too; a patient's own read (one page) is exact. */
    rc = recall_scope_exec(st,
                           "INSERT OR IGNORE INTO od_dirty (office, patnum) SELECT office, patnum"
                           " FROM od_recalls WHERE office = ?1 AND seen = 0 AND misses >= 1",
                           "INSERT OR IGNORE INTO od_dirty (office, patnum) SELECT office, patnum"
                           " FROM od_recalls INDEXED BY od_recalls_patient"
                           " WHERE office = ?1 AND patnum = ?2 AND seen = 0",
                           office, patnum);
    if (rc != ODSYNC_OK)
        return rc;
    rc = recall_scope_exec(st,
                           "DELETE FROM od_recalls WHERE office = ?1 AND seen = 0 AND misses >= 1",
                           "DELETE FROM od_recalls INDEXED BY od_recalls_patient"
                           " WHERE office = ?1 AND patnum = ?2 AND seen = 0",
                           office, patnum);
    if (rc != ODSYNC_OK)
        return rc;
    *deleted = sqlite3_changes(store_db(st));
    if (patnum == 0)
        rc = recall_scope_exec(st,
                               "UPDATE od_recalls SET misses = misses + 1 WHERE office = ?1"
                               " AND seen = 0",
                               NULL, office, 0);
    return rc;
}

/* COUNT(*) of one table for office. */
static int count_of(struct store *st, const char *sql, const char *office, int64_t *out)
{
    sqlite3_stmt *s = store_stmt(st, sql);
    int rc;
    *out = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : ODSYNC_STORE;
}

int model_count(struct store *st, const char *office, struct model_counts *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    rc = count_of(st, "SELECT COUNT(*) FROM od_patients WHERE office = ?", office, &out->patients);
    if (rc == ODSYNC_OK)
        rc =
            count_of(st, "SELECT COUNT(*) FROM od_recalls WHERE office = ?", office, &out->recalls);
    if (rc == ODSYNC_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM od_appointments WHERE office = ?", office,
                      &out->appointments);
    if (rc == ODSYNC_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM od_procedures WHERE office = ?", office,
                      &out->procedures);
    if (rc == ODSYNC_OK)
        rc =
            count_of(st, "SELECT COUNT(*) FROM od_clinics WHERE office = ?", office, &out->clinics);
    if (rc == ODSYNC_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM od_dirty WHERE office = ?", office, &out->dirty);
    return rc;
}
