/*
 * test_rules: core/rules on a real SQLite file with a fixed, injected clock in an office-local
 * zone (America/New_York) — recall stage boundaries and the R21 skips, one CRM task per
 * recall updated and completed in place, one message per stage entered and none for stale
 * stages, reactivation enrolment, spacing, booking and STOP, review requests and their
 * per-patient cap, consent (TxtMsgOk, R30, opt-in sources, both channels opted out, unknown
 * consent, DoNotCall, minors through the guarantor) and family aggregation (R23).
 *
 * Every expectation is read back from the tables the engine writes: messages (the send
 * ledger), decisions, records, outbox, consent, engage_reactivation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "campaign.h"
#include "config.h"
#include "consent.h"
#include "log.h"
#include "model.h"
#include "policy.h"
#include "project.h"
#include "rules.h"
#include "store.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#define OFFICE   "main-st"
#define ZONE     "America/New_York"
#define PRACTICE "Main Street Dental"
#define PHONE    "(555) 210-1000"
#define DAY_MS   INT64_C(86400000)
#define HOUR_MS  INT64_C(3600000)

#define CAMPAIGNS "{'recall':{},'reactivation':{},'review':{}}"
#define POLICY    "{'review_link':'https://example.com/review'}"

static char *dir;
static struct store *st;
static FILE *devnull;
static struct config_office office;
static char office_id[] = OFFICE, office_name[] = PRACTICE, office_zone[] = ZONE;
static char sink_crm[] = "crm", sink_sms[] = "sms", sink_email[] = "email";
static char *route_crm[] = {sink_crm}, *route_sms[] = {sink_sms}, *route_email[] = {sink_email};
static struct rules_stats stats; /* of the last run() */

/* ---- fixture ---------------------------------------------------------------------------- */

/* Parse JSON written with ' for " (tests read better); caller frees with cJSON_Delete. */
static cJSON *P(const char *text)
{
    char buf[2048];
    size_t i;
    cJSON *v;
    ck_assert_uint_lt(strlen(text), sizeof(buf));
    for (i = 0; text[i] != '\0'; i++)
        buf[i] = text[i] == '\'' ? '"' : text[i];
    buf[i] = '\0';
    v = cJSON_Parse(buf);
    ck_assert_msg(v != NULL, "bad test JSON: %s", text);
    return v;
}

/* (Re)build the office's engagement settings from top-level campaigns and policy. */
static void engage(const char *campaigns, const char *policy)
{
    cJSON *c = P(campaigns), *p = P(policy);
    char err[512];
    int rc;
    campaign_set_free(office.engage);
    office.engage = NULL;
    rc = campaign_set_build(c, p, NULL, NULL, "offices[0]", "test", PRACTICE, PHONE, ZONE,
                            &office.engage, err, sizeof(err));
    cJSON_Delete(c);
    cJSON_Delete(p);
    ck_assert_msg(rc == ODSYNC_OK, "%s", err);
}

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
    office.id = office_id;
    office.name = office_name;
    office.timezone = office_zone;
    office.routes[CONFIG_ROUTE_CONTACT] = route_crm;
    office.routes[CONFIG_ROUTE_TASK] = route_crm;
    office.routes[CONFIG_ROUTE_SMS] = route_sms;
    office.routes[CONFIG_ROUTE_EMAIL] = route_email;
    office.n_routes[CONFIG_ROUTE_CONTACT] = 1;
    office.n_routes[CONFIG_ROUTE_TASK] = 1;
    office.n_routes[CONFIG_ROUTE_SMS] = 1;
    office.n_routes[CONFIG_ROUTE_EMAIL] = 1;
    engage(CAMPAIGNS, POLICY);
}

static void teardown(void)
{
    campaign_set_free(office.engage);
    office.engage = NULL;
    store_close(st);
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* ---- time ----------------------------------------------------------------------------- */

/* The instant (ms) of an office-local "YYYY-MM-DD HH:MM:SS" (the first when it repeats). */
static int64_t at(const char *local)
{
    int64_t naive = 0, utc = 0;
    ck_assert_msg(tz_parse_local(local, &naive) == ODSYNC_OK, "bad time %s", local);
    ck_assert_int_eq(tz_local_to_utc(office.engage->tz, naive, 0, &utc), ODSYNC_OK);
    return utc * 1000;
}

/* The instant (ms) of office-local date + days at hh:00. */
static int64_t day_at(const char *date, int days, int hour)
{
    char buf[24];
    int64_t naive = 0, utc = 0;
    util_fmt(buf, sizeof(buf), "%s 00:00:00", date);
    ck_assert_int_eq(tz_parse_local(buf, &naive), ODSYNC_OK);
    naive += (int64_t)days * 86400 + (int64_t)hour * 3600;
    ck_assert_int_eq(tz_local_to_utc(office.engage->tz, naive, 0, &utc), ODSYNC_OK);
    return utc * 1000;
}

/* ---- canonical data --------------------------------------------------------------------- */

/* A patient; NULL members take a default (status "Patient", consent "yes", guarantor self)
 * or stay absent (mobile, email, birthdate, prefer_recall). */
struct pat {
    int64_t patnum, guarantor;
    const char *first, *status, *mobile, *email, *consent, *birthdate, *prefer_recall;
};

static int put_patient_tx(struct store *s, void *arg)
{
    const struct pat *a = arg;
    struct model_patient p;
    int changed;
    memset(&p, 0, sizeof(p));
    p.patnum = a->patnum;
    p.first_name = (char *)a->first;
    p.last_name = (char *)"Doe";
    p.status = (char *)(a->status ? a->status : "Patient");
    p.phone_mobile = (char *)a->mobile;
    p.email = (char *)a->email;
    p.sms_consent = (char *)(a->consent ? a->consent : "yes");
    p.birthdate = (char *)a->birthdate;
    p.prefer_recall = (char *)a->prefer_recall;
    p.guarantor = a->guarantor ? a->guarantor : a->patnum;
    return model_put_patient(s, OFFICE, &p, &changed);
}

static void put_patient(const struct pat *p)
{
    ck_assert_int_eq(store_tx(st, put_patient_tx, (void *)p), ODSYNC_OK);
}

/* An adult patient with SMS consent. */
static void patient(int64_t patnum, const char *first, const char *mobile, const char *email)
{
    struct pat p = {patnum, 0, first, NULL, mobile, email, NULL, NULL, NULL};
    put_patient(&p);
}

struct rec {
    int64_t recall_num, patnum;
    const char *due, *scheduled, *disable_until;
    int disabled;
};

static int put_recall_tx(struct store *s, void *arg)
{
    const struct rec *a = arg;
    struct model_recall r;
    int changed;
    memset(&r, 0, sizeof(r));
    r.recall_num = a->recall_num;
    r.patnum = a->patnum;
    r.recall_type = 1;
    r.date_due = (char *)a->due;
    r.date_scheduled = (char *)a->scheduled;
    r.disable_until = (char *)a->disable_until;
    r.disabled = a->disabled;
    return model_put_recall(s, OFFICE, &r, &changed);
}

static void put_recall(const struct rec *r)
{
    ck_assert_int_eq(store_tx(st, put_recall_tx, (void *)r), ODSYNC_OK);
}

/* An enabled, unscheduled recall. */
static void recall(int64_t recall_num, int64_t patnum, const char *due)
{
    struct rec r = {recall_num, patnum, due, NULL, NULL, 0};
    put_recall(&r);
}

struct apt {
    int64_t apt_num, patnum;
    const char *status, *start;
};

static int put_apt_tx(struct store *s, void *arg)
{
    const struct apt *a = arg;
    struct model_appointment m;
    int changed;
    memset(&m, 0, sizeof(m));
    m.apt_num = a->apt_num;
    m.patnum = a->patnum;
    m.status = (char *)a->status;
    m.start = (char *)a->start;
    return model_put_appointment(s, OFFICE, &m, &changed);
}

static void appointment(int64_t apt_num, int64_t patnum, const char *status, const char *start)
{
    struct apt a = {apt_num, patnum, status, start};
    ck_assert_int_eq(store_tx(st, put_apt_tx, &a), ODSYNC_OK);
}

static int put_proc_tx(struct store *s, void *arg)
{
    const struct model_procedure *p = arg;
    int changed;
    return model_put_procedure(s, OFFICE, p, &changed);
}

/* A completed procedure (a visit) on date. */
static void visit(int64_t proc_num, int64_t patnum, const char *date)
{
    struct model_procedure p;
    memset(&p, 0, sizeof(p));
    p.proc_num = proc_num;
    p.patnum = patnum;
    p.proc_date = (char *)date;
    p.status = (char *)"C";
    ck_assert_int_eq(store_tx(st, put_proc_tx, &p), ODSYNC_OK);
}

/* ---- running the rules ------------------------------------------------------------------ */

struct run_args {
    int64_t patnum, now;
    struct rules_contact contact;
};

static int run_tx(struct store *s, void *arg)
{
    struct run_args *a = arg;
    return rules_patient(s, &office, a->patnum, a->now, &a->contact, &stats);
}

/* Evaluate patnum at now in one transaction; the contact's rule fields. stats gets the
 * counts of this run only. */
static struct rules_contact run(int64_t patnum, int64_t now)
{
    struct run_args a;
    memset(&a, 0, sizeof(a));
    memset(&stats, 0, sizeof(stats));
    a.patnum = patnum;
    a.now = now;
    ck_assert_int_eq(store_tx(st, run_tx, &a), ODSYNC_OK);
    return a.contact;
}

/* ---- reading the tables ----------------------------------------------------------------- */

static sqlite3_stmt *prepare(const char *fmt, va_list ap)
{
    char sql[1024];
    sqlite3_stmt *s = NULL;
    vsnprintf(sql, sizeof(sql), fmt, ap);
    ck_assert_msg(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(store_db(st)));
    return s;
}

/* The integer of a one-value query; -1 when it returns no row. */
static int64_t qi(const char *fmt, ...) UTIL_PRINTF(1, 2);
static int64_t qi(const char *fmt, ...)
{
    va_list ap;
    sqlite3_stmt *s;
    int64_t v = -1;
    va_start(ap, fmt);
    s = prepare(fmt, ap);
    va_end(ap);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* The text of a one-value query into a static buffer: "<null>" for NULL, "<none>" for no
 * row. Valid until the next call. */
static const char *qs(const char *fmt, ...) UTIL_PRINTF(1, 2);
static const char *qs(const char *fmt, ...)
{
    static char out[4096];
    va_list ap;
    sqlite3_stmt *s;
    va_start(ap, fmt);
    s = prepare(fmt, ap);
    va_end(ap);
    util_fmt(out, sizeof(out), "<none>");
    if (sqlite3_step(s) == SQLITE_ROW)
        util_fmt(out, sizeof(out), "%s",
                 sqlite3_column_type(s, 0) == SQLITE_NULL
                     ? "<null>"
                     : (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
}

/* A member of a record's stored body (records.body), as text. */
static const char *record_field(const char *key, const char *member)
{
    return qs("SELECT json_extract(body, '$.%s') FROM records WHERE office = '" OFFICE
              "' AND key = '%s'",
              member, key);
}

/* The recall message key of a stage. */
static const char *recall_key(char *buf, size_t len, int64_t recall_num, const char *due,
                              const char *stage)
{
    util_fmt(buf, len, "od:" OFFICE ":recall:%lld:%s:%s", (long long)recall_num, due, stage);
    return buf;
}

/* Messages in the ledger about patnum. */
static int64_t messages_of(int64_t patnum)
{
    return qi("SELECT COUNT(*) FROM messages WHERE patnum = %lld", (long long)patnum);
}

/* Message rows in the outbox whose key contains part. */
static int64_t outbox_messages(const char *sink, const char *part)
{
    return qi("SELECT COUNT(*) FROM outbox WHERE kind = %d AND sink = '%s' AND key LIKE '%%%s%%'",
              ODSYNC_KIND_MESSAGE, sink, part);
}

/* ---- recall ----------------------------------------------------------------------------- */

START_TEST(recall_stage_boundaries)
{
    struct rules_contact c;
    char key[160], task[] = "od:" OFFICE ":recall:11";
    int64_t now;

    patient(1, "Ann", "+15552100001", NULL);
    recall(11, 1, "2026-06-15");

    /* The day before due_soon begins (14 days ahead): no stage, no task, no message. */
    c = run(1, at("2026-05-31 10:00:00"));
    ck_assert_str_eq(c.recall_stage, "");
    ck_assert_str_eq(c.recall_due, "2026-06-15");
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM records"), 0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM messages"), 0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM outbox"), 0);

    /* The first due_soon day: a task and the due_soon message, due at the window's opening
     * plus its spread, queued for the SMS sink now. */
    now = at("2026-06-01 10:00:00");
    c = run(1, now);
    ck_assert_str_eq(c.recall_stage, "due_soon");
    ck_assert_str_eq(record_field(task, "status"), "open");
    ck_assert_str_eq(record_field(task, "priority"), "low");
    recall_key(key, sizeof(key), 11, "2026-06-15", "due_soon");
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", key), "queued");
    ck_assert_str_eq(qs("SELECT channel FROM messages WHERE key = '%s'", key), "sms");
    ck_assert_str_eq(qs("SELECT address FROM messages WHERE key = '%s'", key), "+15552100001");
    ck_assert_int_eq(qi("SELECT due_at FROM messages WHERE key = '%s'", key),
                     at("2026-06-01 08:00:00") + policy_spread_ms(office.engage, key));
    ck_assert_int_eq(qi("SELECT next_at FROM outbox WHERE sink = 'sms' AND key = '%s'", key), now);
    ck_assert_str_eq(qs("SELECT outcome || '|' || reason || '|' || rule || '|' || consent"
                        " FROM decisions WHERE key = '%s'",
                        key),
                     "queued|ok|R9/R16|sms:TxtMsgOk=Yes");
    ck_assert_int_eq(stats.messages, 1);
    ck_assert_int_eq(stats.tasks, 1);

    /* The day before DateDue: still due_soon, nothing new. */
    c = run(1, at("2026-06-14 10:00:00"));
    ck_assert_str_eq(c.recall_stage, "due_soon");
    ck_assert_int_eq(messages_of(1), 1);

    /* DateDue: stage due, its own message. */
    c = run(1, at("2026-06-15 10:00:00"));
    ck_assert_str_eq(c.recall_stage, "due");
    ck_assert_int_eq(messages_of(1), 2);
    recall_key(key, sizeof(key), 11, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", key), "queued");
    ck_assert_str_eq(record_field(task, "priority"), "medium");

    /* Day 29 after DateDue is still "due"; day 30 is overdue_30. */
    c = run(1, at("2026-07-14 10:00:00"));
    ck_assert_str_eq(c.recall_stage, "due");
    ck_assert_int_eq(messages_of(1), 2);
    c = run(1, at("2026-07-15 10:00:00"));
    ck_assert_str_eq(c.recall_stage, "overdue_30");
    ck_assert_int_eq(messages_of(1), 3);
    recall_key(key, sizeof(key), 11, "2026-06-15", "overdue_30");
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", key), "queued");
    ck_assert_int_eq(qi("SELECT due_at FROM messages WHERE key = '%s'", key),
                     at("2026-07-15 08:00:00") + policy_spread_ms(office.engage, key));
    ck_assert_str_eq(record_field(task, "priority"), "high");

    /* One task through it all, its version bumped only when its body changed. */
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM records WHERE kind = %d", ODSYNC_KIND_TASK), 1);
    ck_assert_int_eq(qi("SELECT version FROM records WHERE key = '%s'", task), 3);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM outbox WHERE key = '%s'", task), 1);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM outbox WHERE sink = 'sms'"), 3);
}
END_TEST

START_TEST(recall_skips_r21)
{
    struct rules_contact c;
    struct rec disabled = {13, 3, "2026-06-15", NULL, NULL, 1};
    struct rec later = {14, 4, "2026-06-15", NULL, "2026-06-20", 0};
    struct rec scheduled = {15, 5, "2026-06-15", "2026-06-10", NULL, 0};
    struct rec until_today = {19, 9, "2026-06-15", NULL, "2026-06-15", 0};
    struct pat inactive = {7, 0, "Ina", "Inactive", "+15552100007", NULL, NULL, NULL, NULL};
    int64_t now = at("2026-06-15 10:00:00"), p;

    for (p = 2; p <= 9; p++) {
        char mobile[16];
        util_fmt(mobile, sizeof(mobile), "+1555210000%lld", (long long)p);
        patient(p, "Pat", mobile, NULL);
    }
    put_patient(&inactive);
    recall(12, 2, "2026-06-15"); /* control: nothing stops it */
    put_recall(&disabled);
    put_recall(&later);
    put_recall(&scheduled);
    recall(16, 6, "2026-06-15");
    appointment(601, 6, "Scheduled", "2026-06-25 09:00:00"); /* booked: R21 */
    recall(17, 7, "2026-06-15");
    recall(18, 8, "2026-06-15");
    appointment(801, 8, "Scheduled", "2026-06-10 09:00:00"); /* in the past: not booked */
    put_recall(&until_today);

    c = run(2, now);
    ck_assert_str_eq(c.recall_stage, "due");
    ck_assert_int_eq(messages_of(2), 1);
    ck_assert_int_eq(outbox_messages("sms", ":recall:12:"), 1);

    c = run(3, now); /* IsDisabled */
    ck_assert_str_eq(c.recall_stage, "");
    ck_assert_int_eq(messages_of(3), 0);
    c = run(4, now); /* DisableUntilDate in the future */
    ck_assert_str_eq(c.recall_stage, "");
    ck_assert_int_eq(messages_of(4), 0);
    c = run(5, now); /* DateScheduled set: booked in Open Dental */
    ck_assert_str_eq(c.recall_stage, "scheduled");
    ck_assert_str_eq(c.recall_due, "2026-06-15");
    ck_assert_int_eq(messages_of(5), 0);
    c = run(6, now); /* a future Scheduled appointment */
    ck_assert_str_eq(c.recall_stage, "scheduled");
    ck_assert_int_eq(messages_of(6), 0);
    c = run(7, now); /* PatStatus Inactive */
    ck_assert_int_eq(messages_of(7), 0);
    c = run(8, now); /* a past Scheduled appointment books nothing */
    ck_assert_str_eq(c.recall_stage, "due");
    ck_assert_int_eq(messages_of(8), 1);
    c = run(9, now); /* DisableUntilDate today: active again */
    ck_assert_str_eq(c.recall_stage, "due");
    ck_assert_int_eq(messages_of(9), 1);

    /* Only the three active recalls have a task; none of the skipped ones do. */
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM records WHERE kind = %d", ODSYNC_KIND_TASK), 3);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM records WHERE key IN ('od:" OFFICE
                        ":recall:12', 'od:" OFFICE ":recall:18', 'od:" OFFICE ":recall:19')"),
                     3);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM outbox WHERE sink = 'sms'"), 3);
}
END_TEST

START_TEST(recall_task_updated_and_completed_in_place)
{
    struct rec moved = {21, 20, "2026-06-20", NULL, NULL, 0};
    struct rec done = {21, 20, "2026-06-20", "2026-06-15", NULL, 0};
    char task[] = "od:" OFFICE ":recall:21", task2[] = "od:" OFFICE ":recall:23";
    int64_t now = at("2026-06-15 10:00:00");

    patient(20, "Tom", "+15552100020", NULL);
    recall(21, 20, "2026-06-15");
    run(20, now);
    ck_assert_int_eq(qi("SELECT version FROM records WHERE key = '%s'", task), 1);
    ck_assert_str_eq(record_field(task, "status"), "open");
    ck_assert_str_eq(record_field(task, "due"), "2026-06-15T13:00:00Z"); /* 09:00 EDT */
    ck_assert_str_eq(record_field(task, "contact_key"), "od:" OFFICE ":20");
    ck_assert_str_eq(record_field(task, "body"),
                     "Recall due 2026-06-15 (due). Contact the patient to schedule.");
    ck_assert_int_eq(qi("SELECT version FROM outbox WHERE sink = 'crm' AND key = '%s'", task), 1);

    /* DateDue moves: the same record, a new version. */
    put_recall(&moved);
    run(20, now);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM records WHERE key LIKE 'od:" OFFICE
                        ":recall:21%%' AND kind = %d",
                        ODSYNC_KIND_TASK),
                     1);
    ck_assert_int_eq(qi("SELECT version FROM records WHERE key = '%s'", task), 2);
    ck_assert_str_eq(record_field(task, "due"), "2026-06-20T13:00:00Z");
    ck_assert_str_eq(record_field(task, "priority"), "low");
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM outbox WHERE key = '%s'", task), 1);
    ck_assert_int_eq(qi("SELECT version FROM outbox WHERE sink = 'crm' AND key = '%s'", task), 2);

    /* Fulfilled (DateScheduled set): completed in place, never deleted. */
    put_recall(&done);
    run(20, now);
    ck_assert_str_eq(record_field(task, "status"), "completed");
    ck_assert_str_eq(record_field(task, "due"), "2026-06-20T13:00:00Z");
    ck_assert_int_eq(qi("SELECT version FROM records WHERE key = '%s'", task), 3);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM records WHERE key = '%s'", task), 1);
    ck_assert_int_eq(qi("SELECT version FROM outbox WHERE sink = 'crm' AND key = '%s'", task), 3);
    ck_assert_int_eq(qi("SELECT open FROM engage_tasks WHERE recall_num = 21"), 0);
    run(20, now + HOUR_MS); /* nothing left to complete: no new version */
    ck_assert_int_eq(qi("SELECT version FROM records WHERE key = '%s'", task), 3);

    /* Fulfilled by a booked appointment: completed the same way. */
    patient(22, "Una", "+15552100022", NULL);
    recall(23, 22, "2026-06-15");
    run(22, now);
    ck_assert_str_eq(record_field(task2, "status"), "open");
    appointment(2201, 22, "Scheduled", "2026-07-01 09:00:00");
    run(22, now);
    ck_assert_str_eq(record_field(task2, "status"), "completed");
    ck_assert_int_eq(qi("SELECT version FROM records WHERE key = '%s'", task2), 2);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM records WHERE kind = %d", ODSYNC_KIND_TASK), 2);
}
END_TEST

START_TEST(recall_one_message_per_stage_and_none_when_stale)
{
    char key[160], stale[160];
    int64_t now = at("2026-06-15 10:00:00"), due_at;

    patient(30, "Sue", "+15552100030", NULL);
    recall(31, 30, "2026-06-15");
    run(30, now);
    ck_assert_int_eq(stats.messages, 1);
    run(30, now + 2 * HOUR_MS); /* the same day again: nothing new */
    ck_assert_int_eq(stats.messages, 0);
    ck_assert_int_eq(stats.tasks, 0);
    ck_assert_int_eq(messages_of(30), 1);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM decisions WHERE patnum = 30"), 1);
    ck_assert_int_eq(outbox_messages("sms", ":recall:31:"), 1);

    /* First sync 14 days into the "due" stage: a task, but no stale reminder. */
    patient(32, "Sam", "+15552100032", NULL);
    recall(33, 32, "2026-06-01");
    run(32, now);
    ck_assert_int_eq(messages_of(32), 0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM decisions WHERE patnum = 32"), 0);
    ck_assert_str_eq(record_field("od:" OFFICE ":recall:33", "status"), "open");

    /* The exact edge: expire_hours (72) after the stage's message became due. */
    patient(34, "Sid", "+15552100034", NULL);
    recall(35, 34, "2026-06-01");
    recall_key(key, sizeof(key), 35, "2026-06-01", "due");
    due_at = at("2026-06-01 08:00:00") + policy_spread_ms(office.engage, key);
    run(34, due_at + 72 * HOUR_MS - 1);
    ck_assert_int_eq(messages_of(34), 1);
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", key), "queued");
    patient(36, "Syd", "+15552100036", NULL);
    recall(37, 36, "2026-06-01");
    recall_key(stale, sizeof(stale), 37, "2026-06-01", "due");
    due_at = at("2026-06-01 08:00:00") + policy_spread_ms(office.engage, stale);
    run(36, due_at + 72 * HOUR_MS);
    ck_assert_int_eq(messages_of(36), 0);
}
END_TEST

START_TEST(recall_task_due_is_nine_local_on_dst_days)
{
    patient(24, "Dan", "+15552100024", NULL);
    recall(25, 24, "2026-03-08"); /* spring forward: 09:00 EDT */
    patient(26, "Dot", "+15552100026", NULL);
    recall(27, 26, "2026-11-01"); /* fall back: 09:00 EST */
    run(24, at("2026-03-08 10:00:00"));
    run(26, at("2026-11-01 10:00:00"));
    ck_assert_str_eq(record_field("od:" OFFICE ":recall:25", "due"), "2026-03-08T13:00:00Z");
    ck_assert_str_eq(record_field("od:" OFFICE ":recall:27", "due"), "2026-11-01T14:00:00Z");
}
END_TEST

START_TEST(recall_message_created_outside_the_window_waits_for_it)
{
    char key[160];
    int64_t open;

    /* Evaluated at 22:00 on the first due day: held until tomorrow's window, spread. */
    patient(38, "Val", "+15552100038", NULL);
    recall(39, 38, "2026-06-15");
    run(38, at("2026-06-15 22:00:00"));
    recall_key(key, sizeof(key), 39, "2026-06-15", "due");
    open = at("2026-06-16 08:00:00") + policy_spread_ms(office.engage, key);
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", key),
                     "held|quiet_hours");
    ck_assert_int_eq(qi("SELECT hold_until FROM messages WHERE key = '%s'", key), open);
    ck_assert_int_eq(qi("SELECT next_at FROM outbox WHERE key = '%s'", key), open);
    ck_assert_str_eq(qs("SELECT outcome || '|' || rule FROM decisions WHERE key = '%s'", key),
                     "held|R16");
    ck_assert_int_eq(qi("SELECT until_at FROM decisions WHERE key = '%s'", key), open);
    ck_assert_int_eq(stats.held, 1);

    /* Evaluated at 06:00 on the first due day: scheduled for its own due time. */
    patient(48, "Vic", "+15552100048", NULL);
    recall(49, 48, "2026-06-15");
    run(48, at("2026-06-15 06:00:00"));
    recall_key(key, sizeof(key), 49, "2026-06-15", "due");
    open = at("2026-06-15 08:00:00") + policy_spread_ms(office.engage, key);
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", key),
                     "queued|not_due");
    ck_assert_int_eq(qi("SELECT due_at FROM messages WHERE key = '%s'", key), open);
    ck_assert_int_eq(qi("SELECT next_at FROM outbox WHERE key = '%s'", key), open);

    /* Evaluated at 22:30 on the third day of the stage: tomorrow's release would be at its
     * expiry, so it is recorded expired now instead of held to be dropped. */
    patient(58, "Viv", "+15552100058", NULL);
    recall(59, 58, "2026-06-15");
    run(58, at("2026-06-17 22:30:00"));
    recall_key(key, sizeof(key), 59, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", key),
                     "expired|expired");
    ck_assert_str_eq(qs("SELECT outcome || '|' || rule FROM decisions WHERE key = '%s'", key),
                     "expired|R18");
    ck_assert_int_eq(outbox_messages("sms", key), 0);
}
END_TEST

START_TEST(tick_runs_once_per_local_day)
{
    int ran = -1;

    patient(110, "Tia", "+15552100110", NULL);
    patient(111, "Tod", "+15552100111", NULL);
    ck_assert_int_eq(store_exec(st, "DELETE FROM od_dirty"), ODSYNC_OK);
    /* 23:30 EDT on 06-15 is 03:30Z on 06-16: still the office's 06-15. */
    ck_assert_int_eq(rules_tick(st, &office, at("2026-06-15 23:30:00"), &ran), ODSYNC_OK);
    ck_assert_int_eq(ran, 1);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM od_dirty"), 2);
    ck_assert_str_eq(qs("SELECT last_tick FROM engage_office"), "2026-06-15");
    ck_assert_int_eq(store_exec(st, "DELETE FROM od_dirty"), ODSYNC_OK);
    ck_assert_int_eq(rules_tick(st, &office, at("2026-06-15 23:59:59"), &ran), ODSYNC_OK);
    ck_assert_int_eq(ran, 0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM od_dirty"), 0);
    ck_assert_int_eq(rules_tick(st, &office, at("2026-06-16 00:00:00"), &ran), ODSYNC_OK);
    ck_assert_int_eq(ran, 1);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM od_dirty"), 2);
}
END_TEST

/* ---- reactivation ----------------------------------------------------------------------- */

/* Reactivation messages about patnum. */
static int64_t reactivations(int64_t patnum)
{
    return qi("SELECT COUNT(*) FROM messages WHERE patnum = %lld AND campaign = 'reactivation'",
              (long long)patnum);
}

static const char *reactivation_key(char *buf, size_t len, int64_t patnum, const char *on, int n)
{
    util_fmt(buf, len, "od:" OFFICE ":%lld:reactivation:%s:%d", (long long)patnum, on, n);
    return buf;
}

START_TEST(reactivation_lapse_boundary)
{
    struct rules_contact c;
    char key[160];
    int64_t now = at("2026-06-15 10:00:00");

    patient(40, "Lea", "+15552100040", NULL);
    visit(4001, 40, "2024-12-15"); /* exactly 18 months ago */
    patient(41, "Lou", "+15552100041", NULL);
    visit(4101, 41, "2024-12-16"); /* one day less */
    patient(42, "Liv", "+15552100042", NULL);
    visit(4201, 42, "2024-12-15");
    appointment(4202, 42, "Scheduled", "2026-07-01 09:00:00"); /* lapsed but booked */

    c = run(40, now);
    ck_assert_int_eq(c.reactivation, 1);
    ck_assert_str_eq(qs("SELECT enrolled_on || '|' || IFNULL(ended_on, '-') FROM"
                        " engage_reactivation WHERE patnum = 40"),
                     "2026-06-15|-");
    reactivation_key(key, sizeof(key), 40, "2026-06-15", 1);
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", key), "queued");
    ck_assert_int_eq(outbox_messages("sms", key), 1);

    c = run(41, now);
    ck_assert_int_eq(c.reactivation, 0);
    ck_assert_int_eq(reactivations(41), 0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM engage_reactivation WHERE patnum = 41"), 0);
    c = run(42, now);
    ck_assert_int_eq(c.reactivation, 0);
    ck_assert_int_eq(reactivations(42), 0);
}
END_TEST

START_TEST(reactivation_sequence_spacing_and_limit)
{
    char key[160];
    int day, expect;

    patient(43, "Max", "+15552100043", NULL);
    visit(4301, 43, "2024-12-15");
    for (day = 0; day <= 100; day++) {
        run(43, day_at("2026-06-15", day, 10));
        expect = day < 30 ? 1 : day < 60 ? 2 : 3; /* max_messages 3, spacing_days 30 */
        ck_assert_msg(reactivations(43) == expect, "day %d: %lld messages, expected %d", day,
                      (long long)reactivations(43), expect);
    }
    reactivation_key(key, sizeof(key), 43, "2026-06-15", 2);
    ck_assert_int_eq(qi("SELECT due_at FROM messages WHERE key = '%s'", key),
                     at("2026-07-15 08:00:00") + policy_spread_ms(office.engage, key));
    reactivation_key(key, sizeof(key), 43, "2026-06-15", 3);
    ck_assert_int_eq(qi("SELECT due_at FROM messages WHERE key = '%s'", key),
                     at("2026-08-14 08:00:00") + policy_spread_ms(office.engage, key));
    ck_assert_int_eq(outbox_messages("sms", ":43:reactivation:"), 3);
}
END_TEST

START_TEST(reactivation_booking_ends_enrolment)
{
    struct rules_contact c;
    char key[160];
    int relevant = 1, day;
    char reason[64];

    patient(44, "Ned", "+15552100044", NULL);
    visit(4401, 44, "2024-12-15");
    c = run(44, at("2026-06-15 10:00:00"));
    ck_assert_int_eq(c.reactivation, 1);
    ck_assert_int_eq(reactivations(44), 1);

    appointment(4402, 44, "Scheduled", "2026-09-15 10:00:00");
    c = run(44, at("2026-06-20 10:00:00"));
    ck_assert_int_eq(c.reactivation, 0);
    ck_assert_str_eq(qs("SELECT ended_on || '|' || reason FROM engage_reactivation"
                        " WHERE patnum = 44"),
                     "2026-06-20|booked");
    for (day = 6; day <= 70; day++)
        run(44, day_at("2026-06-15", day, 10));
    ck_assert_int_eq(reactivations(44), 1); /* message 2 (07-15) and 3 never created */

    /* The first message's occasion is gone at send time. */
    reactivation_key(key, sizeof(key), 44, "2026-06-15", 1);
    ck_assert_int_eq(rules_still_relevant(st, &office, key, 44, at("2026-06-20 11:00:00"),
                                          &relevant, reason, sizeof(reason)),
                     ODSYNC_OK);
    ck_assert_int_eq(relevant, 0);
    ck_assert_str_eq(reason, "booked");
}
END_TEST

struct opt_args {
    const char *channel, *address, *source;
    int64_t at;
};

static int opt_out_tx(struct store *s, void *arg)
{
    const struct opt_args *a = arg;
    int changed = 0;
    int rc =
        consent_opt_out(s, OFFICE, a->channel, a->address, "*", a->source, "STOP", a->at, &changed);
    return rc == ODSYNC_OK && !changed ? ODSYNC_INTERNAL : rc;
}

/* Record an opt-out of every purpose; it must be new. */
static void opt_out(const char *channel, const char *address, const char *source, int64_t when)
{
    struct opt_args a = {channel, address, source, when};
    ck_assert_int_eq(store_tx(st, opt_out_tx, &a), ODSYNC_OK);
}

START_TEST(reactivation_stop_skips_later_messages)
{
    char key[160];
    int day, n;

    patient(45, "Oli", "+15552100045", NULL);
    visit(4501, 45, "2024-12-15");
    run(45, at("2026-06-15 10:00:00"));
    ck_assert_int_eq(reactivations(45), 1);
    opt_out("sms", "+1 (555) 210-0045", "twilio", at("2026-06-16 12:00:00"));
    for (day = 1; day <= 70; day++)
        run(45, day_at("2026-06-15", day, 10));
    ck_assert_int_eq(reactivations(45), 3);
    for (n = 2; n <= 3; n++) {
        reactivation_key(key, sizeof(key), 45, "2026-06-15", n);
        ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", key),
                         "skipped|sms:opted_out,email:no_email");
        ck_assert_str_eq(qs("SELECT outcome || '|' || rule || '|' || consent FROM decisions"
                            " WHERE key = '%s'",
                            key),
                         "skipped|R28|sms:opt_out(twilio)");
    }
    ck_assert_int_eq(outbox_messages("sms", ":45:reactivation:"), 1); /* only the first */
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM outbox WHERE kind = %d", ODSYNC_KIND_MESSAGE), 1);
}
END_TEST

/* ---- review ----------------------------------------------------------------------------- */

START_TEST(review_request_delay_cap_and_expiry)
{
    char key[160];
    int64_t now = at("2026-06-15 10:00:00");

    patient(50, "Rae", "+15552100050", NULL);
    appointment(501, 50, "Complete", "2026-06-15 09:00:00");
    run(50, now);
    util_fmt(key, sizeof(key), "od:" OFFICE ":apt:501:review");
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM messages WHERE campaign = 'review'"), 1);
    /* Due delay_minutes (120) after completion; not due yet, so scheduled, not held. */
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", key), "queued");
    ck_assert_int_eq(qi("SELECT due_at FROM messages WHERE key = '%s'", key),
                     at("2026-06-15 11:00:00"));
    ck_assert_int_eq(qi("SELECT next_at FROM outbox WHERE sink = 'sms' AND key = '%s'", key),
                     at("2026-06-15 11:00:00"));
    ck_assert_str_eq(qs("SELECT outcome || '|' || reason FROM decisions WHERE key = '%s'", key),
                     "queued|not_due");
    run(50, now + HOUR_MS);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM messages WHERE campaign = 'review'"), 1);

    /* A second visit within min_days_between (180): recorded, never queued (R26). */
    appointment(502, 50, "Complete", "2026-07-20 09:00:00");
    run(50, at("2026-07-20 12:00:00"));
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = 'od:" OFFICE
                        ":apt:502:review'"),
                     "skipped|review_cap");
    ck_assert_str_eq(qs("SELECT outcome || '|' || rule FROM decisions WHERE key = 'od:" OFFICE
                        ":apt:502:review'"),
                     "skipped|R26");
    ck_assert_int_eq(outbox_messages("sms", ":apt:502:"), 0);

    /* After the window: asked again. */
    appointment(503, 50, "Complete", "2027-01-10 09:00:00");
    run(50, at("2027-01-10 12:00:00"));
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = 'od:" OFFICE ":apt:503:review'"),
                     "queued");
    ck_assert_int_eq(outbox_messages("sms", ":apt:503:"), 1);

    /* Old visits: expire_hours (72) after the request's due time, nothing at all. */
    patient(51, "Rob", "+15552100051", NULL);
    appointment(511, 51, "Complete", "2026-06-01 09:00:00");
    run(51, now);
    ck_assert_int_eq(messages_of(51), 0);
    patient(52, "Roy", "+15552100052", NULL);
    appointment(521, 52, "Complete", "2026-06-12 09:00:00");
    run(52, at("2026-06-15 11:00:00") - 1); /* due 06-12 11:00, expires 06-15 11:00 */
    ck_assert_int_eq(messages_of(52), 1);
    patient(53, "Ron", "+15552100053", NULL);
    appointment(531, 53, "Complete", "2026-06-12 09:00:00");
    run(53, at("2026-06-15 11:00:00"));
    ck_assert_int_eq(messages_of(53), 0);
}
END_TEST

/* ---- consent ---------------------------------------------------------------------------- */

struct optin_args {
    const char *source;
    int changed, rc;
};

static int opt_in_tx(struct store *s, void *arg)
{
    struct optin_args *a = arg;
    a->rc = consent_opt_in(s, OFFICE, "sms", "+15552100060", "*", a->source, "START",
                           at("2026-08-01 12:00:00"), &a->changed);
    return ODSYNC_OK;
}

/* 1 when SMS to the number is blocked for recall messages. */
static int sms_blocked(const char *mobile)
{
    int blocked = -1;
    ck_assert_int_eq(consent_blocked(st, OFFICE, "sms", mobile, "recall", &blocked, NULL, 0),
                     ODSYNC_OK);
    return blocked;
}

START_TEST(consent_txtmsgok_no_is_an_opt_out_that_yes_does_not_lift)
{
    struct pat no = {60, 0, "Pia", NULL, "+15552100060", "Pia.Doe@Example.COM ", "no", NULL, NULL};
    struct optin_args in = {"opendental", 0, 0};
    char key[160];

    put_patient(&no);
    recall(61, 60, "2026-06-15");
    run(60, at("2026-06-15 10:00:00"));
    recall_key(key, sizeof(key), 61, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT channel || '|' || address || '|' || state FROM messages"
                        " WHERE key = '%s'",
                        key),
                     "email|pia.doe@example.com|queued");
    ck_assert_str_eq(qs("SELECT consent FROM decisions WHERE key = '%s'", key), "email:valid");
    ck_assert_int_eq(outbox_messages("email", key), 1);
    ck_assert_int_eq(outbox_messages("sms", ":recall:"), 0);
    ck_assert_str_eq(qs("SELECT state || '|' || source || '|' || purpose || '|' || evidence"
                        " FROM consent WHERE channel = 'sms' AND address = '+15552100060'"),
                     "opt_out|opendental|*|TxtMsgOk=No");

    /* Open Dental now says Yes: the opt-out stands (R30), the next stage goes by email. */
    no.consent = "yes";
    put_patient(&no);
    run(60, at("2026-07-15 10:00:00"));
    recall_key(key, sizeof(key), 61, "2026-06-15", "overdue_30");
    ck_assert_str_eq(qs("SELECT channel FROM messages WHERE key = '%s'", key), "email");
    ck_assert_int_eq(sms_blocked("+15552100060"), 1);
    ck_assert_str_eq(qs("SELECT source FROM consent WHERE channel = 'sms'"), "opendental");

    /* Only an explicit opt-in lifts it: not one claimed by Open Dental (R15, R30). */
    ck_assert_int_eq(store_tx(st, opt_in_tx, &in), ODSYNC_OK);
    ck_assert_int_eq(in.rc, ODSYNC_INVALID);
    ck_assert_int_eq(in.changed, 0);
    ck_assert_int_eq(sms_blocked("+15552100060"), 1);
    in.source = "twilio";
    ck_assert_int_eq(store_tx(st, opt_in_tx, &in), ODSYNC_OK);
    ck_assert_int_eq(in.rc, ODSYNC_OK);
    ck_assert_int_eq(in.changed, 1);
    ck_assert_int_eq(sms_blocked("+15552100060"), 0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM consent_log WHERE address = '+15552100060'"), 2);
}
END_TEST

START_TEST(consent_both_channels_opted_out_unknown_and_do_not_call)
{
    struct pat unknown = {64, 0, "Uma", NULL, "+15552100064", NULL, "unknown", NULL, NULL};
    struct pat dnc = {65, 0, "Dan", NULL, "+15552100065", NULL, NULL, NULL, "DoNotCall"};
    struct pat dnc_email = {66,   0,    "Dee",      NULL, "+15552100066", "dee@example.com",
                            NULL, NULL, "DoNotCall"};
    int64_t now = at("2026-06-15 10:00:00");
    char key[160];

    patient(62, "Opo", "+15552100062", "opo@example.com");
    recall(621, 62, "2026-06-15");
    opt_out("sms", "+15552100062", "twilio", now - DAY_MS);
    opt_out("email", "OPO@example.com", "sendgrid", now - DAY_MS);
    run(62, now);
    recall_key(key, sizeof(key), 621, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", key),
                     "skipped|sms:opted_out,email:opted_out");
    ck_assert_str_eq(qs("SELECT consent FROM decisions WHERE key = '%s'", key),
                     "sms:opt_out(twilio)");

    put_patient(&unknown);
    recall(641, 64, "2026-06-15");
    run(64, now);
    recall_key(key, sizeof(key), 641, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", key),
                     "skipped|sms:no_consent,email:no_email");
    ck_assert_str_eq(qs("SELECT consent FROM decisions WHERE key = '%s'", key),
                     "sms:TxtMsgOk=Unknown");
    engage(CAMPAIGNS, "{'review_link':'https://example.com/review','sms_unknown_consent':true}");
    run(64, at("2026-07-15 10:00:00"));
    recall_key(key, sizeof(key), 641, "2026-06-15", "overdue_30");
    ck_assert_str_eq(qs("SELECT state || '|' || channel FROM messages WHERE key = '%s'", key),
                     "queued|sms");
    ck_assert_str_eq(qs("SELECT consent FROM decisions WHERE key = '%s'", key),
                     "sms:TxtMsgOk=Unknown(allowed)");

    put_patient(&dnc);
    recall(651, 65, "2026-06-15");
    run(65, now);
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE patnum = 65"),
                     "skipped|sms:do_not_call,email:no_email");
    put_patient(&dnc_email);
    recall(661, 66, "2026-06-15");
    run(66, now);
    ck_assert_str_eq(qs("SELECT state || '|' || channel FROM messages WHERE patnum = 66"),
                     "queued|email");

    /* Nothing that was skipped reached a sink. */
    ck_assert_int_eq(outbox_messages("sms", ":recall:621:"), 0);
    ck_assert_int_eq(outbox_messages("email", ":recall:621:"), 0);
    ck_assert_int_eq(outbox_messages("sms", ":recall:651:"), 0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM outbox WHERE kind = %d", ODSYNC_KIND_MESSAGE), 2);
}
END_TEST

START_TEST(consent_channels_follow_preference_and_routes)
{
    struct pat no = {67, 0, "Ida", NULL, "+15552100067", "ida@example.com", "no", NULL, NULL};
    char key[160];

    /* Email first by preference, though SMS would be allowed. */
    engage("{'recall':{'channels':['email','sms']},'reactivation':{},'review':{}}", POLICY);
    patient(68, "Ema", "+15552100068", "ema@example.com");
    recall(681, 68, "2026-06-15");
    run(68, at("2026-06-15 10:00:00"));
    recall_key(key, sizeof(key), 681, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT channel || '|' || address FROM messages WHERE key = '%s'", key),
                     "email|ema@example.com");

    /* An office that routes no email: TxtMsgOk No leaves nothing to send on. */
    engage(CAMPAIGNS, POLICY);
    office.n_routes[CONFIG_ROUTE_EMAIL] = 0;
    put_patient(&no);
    recall(671, 67, "2026-06-15");
    run(67, at("2026-06-15 10:00:00"));
    recall_key(key, sizeof(key), 671, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", key),
                     "skipped|sms:opted_out");
    ck_assert_str_eq(qs("SELECT consent FROM decisions WHERE key = '%s'", key),
                     "sms:opt_out(opendental)");
    ck_assert_int_eq(outbox_messages("email", key), 0);
}
END_TEST

START_TEST(consent_minor_reached_through_guarantor)
{
    struct pat parent = {70, 0, "Gus", NULL, "+15552100070", NULL, NULL, NULL, NULL};
    struct pat minor = {71, 70, "Mia", NULL, "+15552100071", NULL, "unknown", "2015-03-02", NULL};
    struct pat eighteen = {72, 70, "Eve", NULL, "+15552100072", NULL, NULL, "2008-06-15", NULL};
    struct pat almost = {73, 70, "Ali", NULL, "+15552100073", NULL, NULL, "2008-06-16", NULL};
    int64_t now = at("2026-06-15 10:00:00");
    char key[160];

    put_patient(&parent);
    put_patient(&minor);
    put_patient(&eighteen);
    put_patient(&almost);
    recall(711, 71, "2026-06-15");
    recall(721, 72, "2026-06-15");
    recall(731, 73, "2026-06-15");
    run(71, now);
    run(72, now);
    run(73, now);
    recall_key(key, sizeof(key), 711, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT address FROM messages WHERE key = '%s'", key), "+15552100070");
    ck_assert_str_eq(
        qs("SELECT json_extract(body, '$.contact_key') FROM records WHERE key = '%s'", key),
        "od:" OFFICE ":70");
    ck_assert_str_eq(qs("SELECT json_extract(body, '$.to') FROM records WHERE key = '%s'", key),
                     "+15552100070");
    ck_assert_ptr_nonnull(strstr(
        qs("SELECT json_extract(body, '$.body') FROM records WHERE key = '%s'", key), "Hi Mia,"));
    /* 18 today: an adult with her own number; 18 tomorrow: still a minor. */
    ck_assert_str_eq(qs("SELECT address FROM messages WHERE patnum = 72"), "+15552100072");
    ck_assert_str_eq(qs("SELECT address FROM messages WHERE patnum = 73"), "+15552100070");
}
END_TEST

/* ---- family aggregation ----------------------------------------------------------------- */

START_TEST(family_aggregation_one_message_names_everyone)
{
    struct pat ann = {90, 0, "Ann", NULL, "+15552100090", NULL, NULL, NULL, NULL};
    struct pat bob = {91, 90, "Bob", NULL, "+15552100090", NULL, NULL, NULL, NULL};
    struct pat cy = {92, 90, "Cy", NULL, "+15552100090", NULL, NULL, NULL, NULL};
    struct pat dot = {93, 90, "Dot", NULL, "+15552100093", NULL, NULL, NULL, NULL};
    int64_t now = at("2026-06-15 10:00:00");
    char head[160], member[160];
    const char *body;

    engage(CAMPAIGNS, "{'review_link':'https://example.com/review','family_aggregation':true}");
    put_patient(&ann);
    put_patient(&bob);
    put_patient(&cy);
    put_patient(&dot);
    recall(901, 90, "2026-06-15");
    recall(911, 91, "2026-06-15");
    recall(921, 92, "2026-06-15");
    recall(931, 93, "2026-06-15");
    run(90, now);
    run(91, now);
    recall_key(head, sizeof(head), 901, "2026-06-15", "due");
    recall_key(member, sizeof(member), 911, "2026-06-15", "due");
    ck_assert_str_eq(qs("SELECT state || '|' || family FROM messages WHERE key = '%s'", head),
                     "queued|od:" OFFICE ":recall:901:2026-06-15:due");
    ck_assert_str_eq(qs("SELECT state || '|' || reason || '|' || family FROM messages"
                        " WHERE key = '%s'",
                        member),
                     "skipped|aggregated|od:" OFFICE ":recall:901:2026-06-15:due");
    ck_assert_str_eq(qs("SELECT outcome || '|' || rule FROM decisions WHERE key = '%s'", member),
                     "skipped|R23");
    ck_assert_int_eq(outbox_messages("sms", ":recall:"), 1);
    body = qs("SELECT json_extract(body, '$.body') FROM outbox WHERE key = '%s'", head);
    ck_assert_msg(strncmp(body, "Hi Ann and Bob,", 15) == 0, "%s", body);
    ck_assert_int_eq(qi("SELECT version FROM outbox WHERE key = '%s'", head), 2);

    run(92, now);
    run(93, now); /* another phone: a message of its own */
    body = qs("SELECT json_extract(body, '$.body') FROM outbox WHERE key = '%s'", head);
    ck_assert_msg(strncmp(body, "Hi Ann, Bob and Cy,", 19) == 0, "%s", body);
    ck_assert_str_eq(qs("SELECT json_extract(body, '$.body') FROM records WHERE key = '%s'", head),
                     body);
    ck_assert_int_eq(outbox_messages("sms", ":recall:"), 2);
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE patnum = 93"), "queued");
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM messages WHERE reason = 'aggregated'"), 2);
}
END_TEST

/* ---- through the projection ------------------------------------------------------------- */

START_TEST(projection_carries_stage_and_enrolment)
{
    struct project_stats ps;
    const char *contact;

    patient(100, "Pam", "+15552100100", NULL);
    recall(1001, 100, "2026-06-15");
    appointment(1002, 100, "Scheduled", "2026-06-30 09:00:00");
    patient(101, "Pip", "+15552100101", NULL);
    visit(1011, 101, "2024-01-10");
    memset(&ps, 0, sizeof(ps));
    ck_assert_int_eq(project_office_at(st, &office, at("2026-06-15 10:00:00"), &ps), ODSYNC_OK);
    ck_assert_int_eq(ps.patients, 2);
    ck_assert_int_eq(ps.rules.messages, 1); /* Pip's first reactivation message */
    contact = qs("SELECT json_extract(body, '$.recall_stage') FROM records WHERE key = 'od:" OFFICE
                 ":100'");
    ck_assert_str_eq(contact, "scheduled");
    ck_assert_int_eq(
        qi("SELECT json_extract(body, '$.reactivation') FROM records WHERE key = 'od:" OFFICE
           ":101'"),
        1);
    ck_assert_int_eq(
        qi("SELECT json_extract(body, '$.reactivation') FROM records WHERE key = 'od:" OFFICE
           ":100'"),
        0);
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM od_dirty"), 0);
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, recall_stage_boundaries);
    tcase_add_test(tc, recall_skips_r21);
    tcase_add_test(tc, recall_task_updated_and_completed_in_place);
    tcase_add_test(tc, recall_one_message_per_stage_and_none_when_stale);
    tcase_add_test(tc, recall_task_due_is_nine_local_on_dst_days);
    tcase_add_test(tc, recall_message_created_outside_the_window_waits_for_it);
    tcase_add_test(tc, tick_runs_once_per_local_day);
    tcase_add_test(tc, reactivation_lapse_boundary);
    tcase_add_test(tc, reactivation_sequence_spacing_and_limit);
    tcase_add_test(tc, reactivation_booking_ends_enrolment);
    tcase_add_test(tc, reactivation_stop_skips_later_messages);
    tcase_add_test(tc, review_request_delay_cap_and_expiry);
    tcase_add_test(tc, consent_txtmsgok_no_is_an_opt_out_that_yes_does_not_lift);
    tcase_add_test(tc, consent_both_channels_opted_out_unknown_and_do_not_call);
    tcase_add_test(tc, consent_channels_follow_preference_and_routes);
    tcase_add_test(tc, consent_minor_reached_through_guarantor);
    tcase_add_test(tc, family_aggregation_one_message_names_everyone);
    tcase_add_test(tc, projection_carries_stage_and_enrolment);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(rules_suite)
