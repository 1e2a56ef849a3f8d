/*
 * test_model: the REST adapter on elements shaped like the reference's (with every documented
 * quirk), the shared normalisers, and the canonical store's change detection, dirty marks and
 * recall reconciliation on a real SQLite file; the projection's allocation-failure path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "config.h"
#include "log.h"
#include "model.h"
#include "od_rest.h"
#include "project.h"
#include "testutil.h"
#include "util.h"

static char *dir;
static struct store *st;
static FILE *devnull;
static char why[128];

static void setup(void)
{
    char path[512], err[256];
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
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

/* The patient of the reference's §8 example, with quirks: Zip as a number, "True" bool. */
static const char *patient_json =
    "{\"serverDateTime\":\"2025-09-01 08:15:02\",\"PatNum\":1042,\"LName\":\"Quill\","
    "\"FName\":\" Avery \",\"MiddleI\":\"\",\"Preferred\":\"\",\"PatStatus\":\"Patient\","
    "\"Gender\":\"Unknown\",\"Birthdate\":\"1988-03-14\",\"Zip\":97000,"
    "\"HmPhone\":\"12345\",\"WkPhone\":\"\",\"WirelessPhone\":\"(555)210-2233\","
    "\"Guarantor\":\"1040\",\"Email\":\"avery.quill@example.com\",\"ClinicNum\":2,"
    "\"Premed\":\"True\",\"PreferContactMethod\":\"WirelessPh\","
    "\"PreferRecallMethod\":\"TextMessage\",\"Language\":\"eng\","
    "\"DateTStamp\":\"2025-08-20 10:14:03\",\"TxtMsgOk\":\"Yes\",\"NewField\":[1,2]}";

START_TEST(rest_patient_maps_every_field)
{
    struct model_patient p;
    cJSON *j = cJSON_Parse(patient_json);
    ck_assert_int_eq(od_rest_patient(j, &p, why, sizeof(why)), ODSYNC_OK);
    ck_assert_int_eq(p.patnum, 1042);
    ck_assert_str_eq(p.last_name, "Quill");
    ck_assert_str_eq(p.first_name, "Avery"); /* trimmed */
    ck_assert_ptr_null(p.middle_initial);    /* "" is none */
    ck_assert_str_eq(p.status, "Patient");
    ck_assert_str_eq(p.email, "avery.quill@example.com");
    ck_assert_str_eq(p.phone_mobile, "+15552102233");
    ck_assert_ptr_null(p.phone_home); /* "12345" is not a phone */
    ck_assert_ptr_null(p.phone_work);
    ck_assert_str_eq(p.birthdate, "1988-03-14");
    ck_assert_int_eq(p.guarantor, 1040); /* an int as a numeric string */
    ck_assert_int_eq(p.clinic_num, 2);
    ck_assert_str_eq(p.sms_consent, "yes");
    ck_assert_str_eq(p.prefer_recall, "TextMessage");
    ck_assert_str_eq(p.language, "eng");
    ck_assert_str_eq(p.changed_at, "2025-08-20 10:14:03");
    ck_assert_str_eq(od_rest_server_time(j), "2025-09-01 08:15:02");
    model_patient_clear(&p);
    cJSON_Delete(j);
}
END_TEST

START_TEST(rest_rows_without_keys_are_refused_by_field)
{
    struct model_patient p;
    struct model_appointment a;
    cJSON *j = cJSON_Parse("{\"LName\":\"NoKey\"}");
    ck_assert_int_eq(od_rest_patient(j, &p, why, sizeof(why)), ODSYNC_PARSE);
    ck_assert_str_eq(why, "PatNum: missing or not a positive integer");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"AptNum\":\"-3\",\"PatNum\":1}");
    ck_assert_int_eq(od_rest_appointment(j, &a, why, sizeof(why)), ODSYNC_PARSE);
    ck_assert_str_eq(why, "AptNum: missing or not a positive integer");
    cJSON_Delete(j);
    model_patient_clear(&p);
    model_appointment_clear(&a);
}
END_TEST

START_TEST(rest_recall_and_appointment_quirks)
{
    struct model_recall r;
    struct model_appointment a;
    cJSON *j = cJSON_Parse(
        "{\"RecallNum\":311,\"PatNum\":1042,\"DateDue\":\"2025-09-15\",\"DatePrevious\":"
        "\"2025-03-14\",\"RecallInterval\":\"6m1d\",\"IsDisabled\":\"FALSE\",\"DateTStamp\":"
        "\"2025-03-14 11:02:40\",\"RecallTypeNum\":1,\"DisableUntilDate\":\"0001-01-01\","
        "\"DateScheduled\":\"0001-01-01\"}");
    ck_assert_int_eq(od_rest_recall(j, &r, why, sizeof(why)), ODSYNC_OK);
    ck_assert_str_eq(r.date_due, "2025-09-15");
    ck_assert_ptr_null(r.date_scheduled); /* 0001-01-01 is none */
    ck_assert_ptr_null(r.disable_until);
    ck_assert_int_eq(r.disabled, 0);
    ck_assert_str_eq(r.interval, "6m1d");
    cJSON_Delete(j);
    model_recall_clear(&r);
    j = cJSON_Parse("{\"AptNum\":5521,\"PatNum\":1042,\"AptStatus\":\"Complete\","
                    "\"AptDateTime\":\"2025-10-02 09:30:00\",\"DateTimeDismissed\":"
                    "\"0001-01-01 00:00:00\",\"IsNewPatient\":\"true\",\"ClinicNum\":\"2\","
                    "\"ProcDescript\":\"PerEx, Pro\"}");
    ck_assert_int_eq(od_rest_appointment(j, &a, why, sizeof(why)), ODSYNC_OK);
    ck_assert_str_eq(a.status, "Complete");
    ck_assert_str_eq(a.start, "2025-10-02 09:30:00");
    ck_assert_ptr_null(a.dismissed_at);
    ck_assert_int_eq(a.is_new_patient, 1);
    ck_assert_int_eq(a.clinic_num, 2);
    cJSON_Delete(j);
    model_appointment_clear(&a);
}
END_TEST

START_TEST(normalisers)
{
    char out[20];
    char *d;
    ck_assert_int_eq(model_phone_e164("555.210.2233", out, sizeof(out)), 1);
    ck_assert_str_eq(out, "+15552102233");
    ck_assert_int_eq(model_phone_e164("1 (555) 210-2233", out, sizeof(out)), 1);
    ck_assert_int_eq(model_phone_e164("555-0102", out, sizeof(out)), 0);
    ck_assert_int_eq(model_phone_e164("(055)210-2233", out, sizeof(out)), 0); /* area code 0 */
    ck_assert_int_eq(model_phone_e164("555-210-2233 x12", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(model_email_valid("a@b.co"), 1);
    ck_assert_int_eq(model_email_valid("name@"), 0);
    ck_assert_int_eq(model_email_valid("name at example.com"), 0);
    ck_assert_int_eq(model_email_valid("a@b"), 0);
    ck_assert_int_eq(model_email_valid("a@@b.com"), 0);
    d = model_date("1996-09-19T00:00:00");
    ck_assert_str_eq(d, "1996-09-19");
    util_free(d);
    ck_assert_ptr_null(model_date("0001-01-01"));
    ck_assert_ptr_null(model_date("2025-02-30"));
    ck_assert_ptr_null(model_date("9/15/2025"));
    d = model_datetime("2025-08-20T10:14:03");
    ck_assert_str_eq(d, "2025-08-20 10:14:03");
    util_free(d);
    ck_assert_ptr_null(model_datetime("0001-01-01 00:00:00"));
    ck_assert_int_eq(model_bool_string("True"), 1);
    ck_assert_int_eq(model_bool_string("false"), 0);
    ck_assert_int_eq(model_bool_string("yes"), -1);
}
END_TEST

struct put_args {
    struct model_patient *p;
    int changed;
};

static int put_tx(struct store *s, void *arg)
{
    struct put_args *a = arg;
    return model_put_patient(s, "main-st", a->p, &a->changed);
}

/* An int from a query. */
static int64_t q(const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

START_TEST(unchanged_content_writes_nothing)
{
    struct model_patient p;
    struct put_args a = {&p, 0};
    cJSON *j = cJSON_Parse(patient_json);
    ck_assert_int_eq(od_rest_patient(j, &p, why, sizeof(why)), ODSYNC_OK);
    ck_assert_int_eq(store_tx(st, put_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(a.changed, 1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_dirty"), 1);
    ck_assert_int_eq(store_exec(st, "DELETE FROM od_dirty"), ODSYNC_OK);
    /* Same content with a new DateTStamp (a change of a field odsync does not keep). */
    util_free(p.changed_at);
    p.changed_at = util_strdup("2025-09-01 00:00:00");
    ck_assert_int_eq(store_tx(st, put_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(a.changed, 0);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_dirty"), 0);
    /* A real change marks the patient dirty again. */
    util_free(p.email);
    p.email = util_strdup("avery@example.org");
    ck_assert_int_eq(store_tx(st, put_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(a.changed, 1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_dirty WHERE patnum = 1042"), 1);
    model_patient_clear(&p);
    cJSON_Delete(j);
}
END_TEST

struct proc_args {
    int64_t proc_num;
    int fail; /* fail after the write: the transaction rolls back */
};

/* Put completed procedure proc_num of patient 7 (marks the patient dirty). */
static int put_proc(struct store *s, int64_t proc_num)
{
    struct model_procedure p = {0};
    char date[] = "2026-01-02", status[] = "C";
    int changed;
    p.proc_num = proc_num;
    p.patnum = 7;
    p.proc_date = date;
    p.status = status;
    return model_put_procedure(s, "main-st", &p, &changed);
}

static int proc_tx(struct store *s, void *arg)
{
    const struct proc_args *a = arg;
    int rc = put_proc(s, a->proc_num);
    return rc == ODSYNC_OK && a->fail ? ODSYNC_INVALID : rc;
}

/* A patient's second row in one transaction skips marking it dirty again; no rollback in
 * between (of a transaction, or of a savepoint inside the caller's transaction) may leave
 * the patient unmarked. */
START_TEST(dirty_mark_survives_rollbacks)
{
    struct proc_args a = {1, 1};
    ck_assert_int_eq(store_tx(st, proc_tx, &a), ODSYNC_INVALID);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_dirty"), 0);
    a = (struct proc_args){2, 0};
    ck_assert_int_eq(store_tx(st, proc_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_dirty WHERE patnum = 7"), 1);

    ck_assert_int_eq(store_exec(st, "DELETE FROM od_dirty"), ODSYNC_OK);
    ck_assert_int_eq(store_exec(st, "BEGIN"), ODSYNC_OK);
    a = (struct proc_args){3, 1};
    ck_assert_int_eq(store_tx(st, proc_tx, &a), ODSYNC_INVALID); /* a savepoint rolled back */
    ck_assert_int_eq(put_proc(st, 4), ODSYNC_OK); /* the caller's transaction goes on */
    ck_assert_int_eq(store_exec(st, "COMMIT"), ODSYNC_OK);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_dirty WHERE patnum = 7"), 1);
}
END_TEST

struct recall_args {
    int step;
    int64_t deleted;
};

/* Step 0: two recalls of patient 7; step 1: a full reconcile that only sees recall 1. */
static int recall_tx(struct store *s, void *arg)
{
    struct recall_args *a = arg;
    struct model_recall r = {0};
    int changed, rc;
    char due[] = "2026-01-01";
    r.patnum = 7;
    r.date_due = due;
    if (a->step == 0) {
        r.recall_num = 1;
        rc = model_put_recall(s, "main-st", &r, &changed);
        r.recall_num = 2;
        return rc == ODSYNC_OK ? model_put_recall(s, "main-st", &r, &changed) : rc;
    }
    rc = model_recall_unmark(s, "main-st", 0);
    r.recall_num = 1;
    if (rc == ODSYNC_OK)
        rc = model_put_recall(s, "main-st", &r, &changed); /* unchanged, but seen */
    return rc == ODSYNC_OK ? model_recall_sweep(s, "main-st", 0, &a->deleted) : rc;
}

START_TEST(recall_reconciliation_deletes_what_is_gone)
{
    struct recall_args a = {0, 0};
    ck_assert_int_eq(store_tx(st, recall_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(store_exec(st, "DELETE FROM od_dirty"), ODSYNC_OK);
    a.step = 1;
    ck_assert_int_eq(store_tx(st, recall_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(a.deleted, 0); /* one full read's miss may be paging drift: kept */
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_recalls"), 2);
    ck_assert_int_eq(store_tx(st, recall_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(a.deleted, 1); /* missed by two full reads in a row: gone */
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_recalls"), 1);
    ck_assert_int_eq(q("SELECT recall_num FROM od_recalls"), 1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_dirty WHERE patnum = 7"), 1);
}
END_TEST

/* Regression: when an allocation failed while the projection built a contact record, the
 * patient counted as unknown and its dirty mark was cleared, so the change never reached
 * the sinks. Whatever allocation fails, the patient is either projected or still dirty. */
START_TEST(projection_never_drops_a_dirty_patient_when_memory_runs_out)
{
    struct model_patient p;
    struct put_args a = {&p, 0};
    struct project_stats ps;
    struct config_office office;
    cJSON *j = cJSON_Parse(patient_json);
    char id[] = "main-st";
    long nth;
    int rc = ODSYNC_NOMEM;

    util_init_cjson_hooks();
    ck_assert_int_eq(od_rest_patient(j, &p, why, sizeof(why)), ODSYNC_OK);
    ck_assert_int_eq(store_tx(st, put_tx, &a), ODSYNC_OK);
    memset(&office, 0, sizeof(office));
    office.id = id;
    ck_assert_int_eq(campaign_set_build(NULL, NULL, NULL, NULL, "offices[0]", "test", "Main St",
                                        NULL, "UTC", &office.engage, why, sizeof(why)),
                     ODSYNC_OK);
    for (nth = 1; nth < 500 && rc != ODSYNC_OK; nth++) {
        util_fail_alloc_after(nth);
        rc = project_office(st, &office, &ps);
        util_fail_alloc_after(0);
        ck_assert_msg(q("SELECT COUNT(*) FROM od_dirty") + q("SELECT COUNT(*) FROM records") == 1,
                      "allocation %ld failed (%s): patient neither projected nor dirty", nth,
                      odsync_status_name(rc));
    }
    ck_assert_int_eq(rc, ODSYNC_OK);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM records WHERE key = 'od:main-st:1042'"), 1);
    campaign_set_free(office.engage);
    model_patient_clear(&p);
    cJSON_Delete(j);
}
END_TEST

/* Events and polls arrive in any order: an older row never overwrites a newer one. */
START_TEST(older_row_never_overwrites_newer)
{
    struct model_patient p;
    struct put_args a = {&p, 0};
    cJSON *j = cJSON_Parse(patient_json);
    ck_assert_int_eq(od_rest_patient(j, &p, why, sizeof(why)), ODSYNC_OK);
    ck_assert_int_eq(store_tx(st, put_tx, &a), ODSYNC_OK); /* DateTStamp 2025-08-20 10:14:03 */
    util_free(p.email);
    p.email = util_strdup("stale@example.org");
    util_free(p.changed_at);
    p.changed_at = util_strdup("2025-08-20 10:14:02"); /* one second older */
    ck_assert_int_eq(store_tx(st, put_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(a.changed, 0);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_patients WHERE body LIKE '%stale@%'"), 0);
    util_free(p.changed_at);
    p.changed_at = util_strdup("2025-08-20 10:14:04"); /* newer: applied */
    ck_assert_int_eq(store_tx(st, put_tx, &a), ODSYNC_OK);
    ck_assert_int_eq(a.changed, 1);
    model_patient_clear(&p);
    cJSON_Delete(j);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rest_patient_maps_every_field);
    tcase_add_test(tc, rest_rows_without_keys_are_refused_by_field);
    tcase_add_test(tc, rest_recall_and_appointment_quirks);
    tcase_add_test(tc, normalisers);
    tcase_add_test(tc, unchanged_content_writes_nothing);
    tcase_add_test(tc, older_row_never_overwrites_newer);
    tcase_add_test(tc, dirty_mark_survives_rollbacks);
    tcase_add_test(tc, recall_reconciliation_deletes_what_is_gone);
    tcase_add_test(tc, projection_never_drops_a_dirty_patient_when_memory_runs_out);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(model_suite)
