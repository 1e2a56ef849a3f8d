/*
 * test_ingest.c: Open Dental ingestion end to end against odsim (a real simulator process on
 * loopback) with `odsync sync` as a real process. The truth is odsim's own data
 * (/_admin/dump), put through the same adapters into a second SQLite store; the two stores
 * must hold the same canonical rows (compared by content hash). Request counts come from
 * odsim's counters and are checked against the economy targets.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "http_client.h"
#include "log.h"
#include "model.h"
#include "od_rest.h"
#include "store.h"
#include "odtruth.h"
#include "testutil.h"
#include "util.h"

static char *dir, *odsync, *cfg, *logpath;
static pid_t sim_pid = -1;
static int sim_port;

static void setup(void)
{
    size_t n;
    dir = tu_mkdtemp();
    odsync = tu_build_path("odsync");
    setenv("I_OD_DEV", "NFF6i0KrXrxDkZHt", 1);
    setenv("I_OD_CUST", "VzkmZEaUWOjnQX2z", 1);
    n = strlen(dir) + 16;
    logpath = malloc(n);
    snprintf(logpath, n, "%s/odsync.log", dir);
    http_global_init();
    log_setup(fopen("/dev/null", "w"), ODSYNC_LOG_ERROR, LOG_TEXT);
}

static void teardown(void)
{
    if (sim_pid > 0)
        tu_stop(sim_pid);
    sim_pid = -1;
    tu_rmrf(dir);
    free(dir);
    free(odsync);
    free(cfg);
    free(logpath);
    cfg = NULL;
    http_global_cleanup();
    log_shutdown();
}

/* Start odsim with flags (NULL-terminated) at a fixed clock, so runs are repeatable. */
static void start_sim(const char *const *flags)
{
    char *sim = tu_build_path("contrib/odsim/odsim");
    const char *argv[32] = {sim, "--listen", "127.0.0.1:0", "--clock", "2026-11-27 09:00:00"};
    size_t n = 5;
    while (flags != NULL && *flags != NULL && n < 31)
        argv[n++] = *flags++;
    argv[n] = NULL;
    sim_pid = tu_spawn_server(argv, NULL, &sim_port);
    free(sim);
}

/* Config for one office at odsim; od_extra adds members to "opendental" (e.g. a tier). */
static void write_config(const char *od_extra)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
             " \"log\": {\"level\": \"warn\"},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": "
             "\"America/Chicago\", \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
             " \"developer_key\": \"${I_OD_DEV}\", \"customer_key\": \"${I_OD_CUST}\"%s%s}}]}\n",
             dir, tu_build_dir(), sim_port, od_extra[0] ? ", " : "", od_extra);
    free(cfg);
    cfg = tu_write_file(dir, "odsync.json", text);
}

/* `odsync sync`; stdout into *out when asked; stderr to the log. Returns the exit code. */
static int sync_once(char **out)
{
    const char *argv[] = {odsync, "sync", "--once", "--config", cfg, NULL};
    char *err = NULL;
    int rc = tu_run(argv, NULL, out, &err);
    FILE *f = fopen(logpath, "a");
    fputs(err, f);
    fclose(f);
    free(err);
    return rc;
}

/* An odsim admin call; the parsed answer (caller deletes). */
static cJSON *admin(const char *method, const char *path, const char *body)
{
    return odt_admin(sim_port, method, path, body);
}

/* odsim's request counter for office 1 (and throttle violations). */
static int sim_requests(int *violations)
{
    cJSON *s = admin("GET", "/_admin/stats?office=1", NULL);
    int n = cJSON_GetObjectItem(s, "requests")->valueint;
    if (violations != NULL)
        *violations = cJSON_GetObjectItem(s, "throttle_violations")->valueint;
    cJSON_Delete(s);
    return n;
}

static void build_truth(unsigned tables)
{
    odt_build_truth(dir, sim_port, tables);
}

static int64_t differences(const char *table, const char *pk)
{
    return odt_differences(dir, table, pk);
}

static int64_t store_int(const char *sql)
{
    return odt_store_int(dir, sql);
}

/* ceil(rows / page) summed over what a full sync must read: the lower bound of requests. */
static int64_t lower_bound(int64_t page)
{
    int64_t rows[] = {store_int("SELECT COUNT(*) FROM od_clinics"),
                      store_int("SELECT COUNT(*) FROM od_patients"),
                      store_int("SELECT COUNT(*) FROM od_appointments"),
                      store_int("SELECT COUNT(*) FROM od_procedures"),
                      store_int("SELECT COUNT(*) FROM od_recalls")};
    int64_t sum = 0;
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(rows); i++)
        sum += (rows[i] + page - 1) / page;
    return sum;
}

/* Backfill of 20,000 patients, unthrottled (Local API mode, pages of 1000). */
START_TEST(backfill_twenty_thousand_matches_odsim)
{
    const char *flags[] = {"--patients", "20000", "--seed", "7", "--mode", "local", NULL};
    char *out = NULL;
    int violations = 0, requests;
    int64_t bound;
    start_sim(flags);
    write_config("\"tier\": \"local\"");
    ck_assert_int_eq(sync_once(&out), 0);
    ck_assert_ptr_nonnull(strstr(out, "main-st patients             done: 20000 rows"));
    free(out);
    build_truth(0x17); /* patients, recalls, appointments, clinics */
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_patients"), 20000);
    ck_assert_int_eq(differences("od_patients", "patnum"), 0);
    ck_assert_int_eq(differences("od_recalls", "recall_num"), 0);
    ck_assert_int_eq(differences("od_appointments", "apt_num"), 0);
    ck_assert_int_eq(differences("od_clinics", "clinic_num"), 0);
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM records WHERE kind = 1"),
                     20000); /* one contact each */
    requests = sim_requests(&violations);
    bound = lower_bound(1000);
    printf("backfill 20000: %d Open Dental requests, lower bound %lld (ratio %.3f)\n", requests,
           (long long)bound, (double)requests / (double)bound);
    ck_assert_int_le((int64_t)requests * 100, bound * 105);
    /* An unchanged office costs at most six requests a pass. */
    ck_assert_int_eq(sync_once(NULL), 0);
    printf("no-change pass: %d requests\n", sim_requests(NULL) - requests);
    ck_assert_int_le(sim_requests(NULL) - requests, 6);
}
END_TEST

/* Front-desk changes are picked up exactly by the next incremental pass. */
START_TEST(incremental_pass_picks_up_front_desk_changes)
{
    const char *flags[] = {"--patients", "600", "--seed", "3", NULL};
    cJSON *r, *apts, *a;
    char path[128], body[256];
    int64_t new_pat, booked, scheduled = 0, second = 0, third = 0, recall;
    int before;
    start_sim(flags);
    write_config("\"tier\": \"paid\", \"min_interval_ms\": 0");
    ck_assert_int_eq(sync_once(NULL), 0);
    build_truth(0x1f);
    ck_assert_int_eq(differences("od_procedures", "proc_num"), 0);

    r = admin("POST", "/_admin/patients",
              "{\"LName\":\"Newcomb\",\"FName\":\"Ivy\",\"recall\":true}");
    new_pat = (int64_t)cJSON_GetObjectItem(cJSON_GetObjectItem(r, "row"), "PatNum")->valuedouble;
    cJSON_Delete(r);
    cJSON_Delete(admin("POST", "/_admin/patients/5/txtmsgok", "{\"value\":\"No\"}"));
    snprintf(body, sizeof(body), "{\"PatNum\":%lld,\"AptDateTime\":\"2026-12-03 10:00:00\"}",
             (long long)new_pat);
    r = admin("POST", "/_admin/appointments", body);
    booked = (int64_t)cJSON_GetObjectItem(cJSON_GetObjectItem(r, "row"), "AptNum")->valuedouble;
    cJSON_Delete(r);
    /* Three scheduled appointments: complete one, break one, delete one. */
    apts = admin("GET", "/_admin/dump?office=1&table=appointments", NULL);
    cJSON_ArrayForEach(a, apts)
    {
        int64_t n = (int64_t)cJSON_GetObjectItem(a, "AptNum")->valuedouble;
        if (strcmp(cJSON_GetObjectItem(a, "AptStatus")->valuestring, "Scheduled") != 0 ||
            n == booked)
            continue;
        if (!scheduled)
            scheduled = n;
        else if (!second)
            second = n;
        else if (!third)
            third = n;
    }
    cJSON_Delete(apts);
    ck_assert(third != 0);
    snprintf(path, sizeof(path), "/_admin/appointments/%lld/complete", (long long)scheduled);
    cJSON_Delete(admin("POST", path, "{}"));
    snprintf(path, sizeof(path), "/_admin/appointments/%lld/break", (long long)second);
    cJSON_Delete(admin("POST", path, "{\"action\":\"Missed\"}"));
    snprintf(path, sizeof(path), "/_admin/appointments/%lld/delete", (long long)third);
    cJSON_Delete(admin("POST", path, "{}"));
    recall = store_int("SELECT MIN(recall_num) FROM od_recalls WHERE patnum = 7");
    snprintf(path, sizeof(path), "/_admin/recalls/%lld/move", (long long)recall);
    cJSON_Delete(admin("POST", path, "{\"DateDue\":\"2027-01-15\"}"));
    cJSON_Delete(admin("POST", "/_admin/clock", "{\"advance_s\":60}"));

    before = sim_requests(NULL);
    ck_assert_int_eq(sync_once(NULL), 0);
    printf("incremental pass after 7 changes: %d requests\n", sim_requests(NULL) - before);
    /* Each change is in the store... */
    snprintf(body, sizeof(body),
             "SELECT COUNT(*) FROM od_patients WHERE patnum = %lld AND body LIKE '%%Newcomb%%'",
             (long long)new_pat);
    ck_assert_int_eq(store_int(body), 1);
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_patients WHERE patnum = 5 AND body LIKE "
                               "'%\"sms_consent\":\"no\"%'"),
                     1);
    snprintf(body, sizeof(body),
             "SELECT COUNT(*) FROM od_appointments WHERE apt_num = %lld"
             " AND status = 'Scheduled'",
             (long long)booked);
    ck_assert_int_eq(store_int(body), 1);
    snprintf(body, sizeof(body),
             "SELECT COUNT(*) FROM od_appointments WHERE apt_num = %lld"
             " AND status = 'Complete'",
             (long long)scheduled);
    ck_assert_int_eq(store_int(body), 1);
    snprintf(body, sizeof(body),
             "SELECT COUNT(*) FROM od_appointments WHERE apt_num = %lld"
             " AND status = 'Broken'",
             (long long)second);
    ck_assert_int_eq(store_int(body), 1);
    snprintf(body, sizeof(body), "SELECT COUNT(*) FROM od_appointments WHERE apt_num = %lld",
             (long long)third);
    ck_assert_int_eq(store_int(body), 0);
    snprintf(body, sizeof(body),
             "SELECT COUNT(*) FROM od_recalls WHERE recall_num = %lld"
             " AND date_due = '2027-01-15'",
             (long long)recall);
    ck_assert_int_eq(store_int(body), 1);
    /* ...and the whole store equals odsim's data again. */
    build_truth(0x1f);
    ck_assert_int_eq(differences("od_patients", "patnum"), 0);
    ck_assert_int_eq(differences("od_recalls", "recall_num"), 0);
    ck_assert_int_eq(differences("od_appointments", "apt_num"), 0);
    ck_assert_int_eq(differences("od_procedures", "proc_num"), 0);
}
END_TEST

/* kill -9 in the middle of a backfill: the restart resumes at the checkpoint (it does not
 * read again what was committed) and ends equal to odsim. */
START_TEST(kill_nine_mid_backfill_resumes)
{
    const char *flags[] = {"--patients", "1500", "--seed", "5", "--slow-ms", "15", NULL};
    const char *argv[] = {odsync, "sync", "--once", "--config", NULL, NULL};
    int first, total;
    int64_t offset;
    pid_t pid;
    start_sim(flags);
    write_config("\"tier\": \"paid\", \"min_interval_ms\": 0");
    argv[4] = cfg;
    pid = tu_spawn(argv, logpath);
    usleep(1200000);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(tu_wait(pid, 5000), 128 + SIGKILL);
    first = sim_requests(NULL);
    offset = store_int("SELECT COALESCE(SUM(next_offset), 0) + COUNT(*) FROM od_checkpoints");
    ck_assert_int_gt(offset, 0); /* something was committed before the kill */
    ck_assert_int_eq(sync_once(NULL), 0);
    total = sim_requests(NULL);
    cJSON_Delete(admin("POST", "/_admin/stats/reset", NULL));
    /* A clean backfill of the same data, for the request count without a crash. */
    build_truth(0x1f);
    ck_assert_int_eq(differences("od_patients", "patnum"), 0);
    ck_assert_int_eq(differences("od_recalls", "recall_num"), 0);
    ck_assert_int_eq(differences("od_appointments", "apt_num"), 0);
    ck_assert_int_eq(differences("od_procedures", "proc_num"), 0);
    printf("kill -9 mid-backfill: %d requests before the kill, %d in all; lower bound %lld\n",
           first, total, (long long)lower_bound(100));
    /* Resumed, not restarted: at most the page in flight is read twice. */
    ck_assert_int_le(total, lower_bound(100) + 7);
}
END_TEST

/* The pacer holds the tier: odsim (throttle 150 ms, rejecting over-limit requests) counts no
 * violation. The throttle is scaled down from 1 s so the test stays fast. */
START_TEST(pacer_holds_the_tier)
{
    const char *flags[] = {"--patients", "300",          "--seed", "9", "--throttle",
                           "150",        "--over-limit", "reject", NULL};
    int violations = -1, requests;
    start_sim(flags);
    write_config("\"tier\": \"paid\", \"min_interval_ms\": 150");
    ck_assert_int_eq(sync_once(NULL), 0);
    requests = sim_requests(&violations);
    printf("paced sync: %d requests, %d throttle violations\n", requests, violations);
    ck_assert_int_gt(requests, 10);
    ck_assert_int_eq(violations, 0);
}
END_TEST

/* eConnector down, then a wrong key: the pass stops with a clear office state; no crash, no
 * spin, and nothing committed is lost. */
START_TEST(office_states_for_offline_and_auth)
{
    const char *flags[] = {"--patients", "50", "--seed", "2", "--econnector-down", NULL};
    const char *st_argv[] = {odsync, "status", "--json", "--config", NULL, NULL};
    char *out = NULL, *err = NULL;
    cJSON *j, *o;
    start_sim(flags);
    write_config("\"tier\": \"paid\", \"min_interval_ms\": 0");
    st_argv[4] = cfg;
    ck_assert_int_eq(sync_once(&out), 1);
    free(out);
    ck_assert_int_eq(tu_run(st_argv, NULL, &out, &err), 0);
    j = cJSON_Parse(out);
    o = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "offices"), "main-st");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "opendental_state")->valuestring, "offline");
    ck_assert_ptr_nonnull(
        strstr(cJSON_GetObjectItem(o, "opendental_detail")->valuestring, "eConnector"));
    cJSON_Delete(j);
    free(out);
    free(err);
    /* eConnector back; a wrong customer key now. */
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"office\":1,\"econnector_down\":false}"));
    setenv("I_OD_CUST", "not-the-customer-key", 1);
    ck_assert_int_eq(sync_once(NULL), 1);
    ck_assert_int_eq(tu_run(st_argv, NULL, &out, &err), 0);
    j = cJSON_Parse(out);
    o = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "offices"), "main-st");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "opendental_state")->valuestring, "auth");
    ck_assert_ptr_null(strstr(out, "not-the-customer-key")); /* the key is never shown */
    cJSON_Delete(j);
    free(out);
    free(err);
    /* Right key: the pass completes. */
    setenv("I_OD_CUST", "VzkmZEaUWOjnQX2z", 1);
    ck_assert_int_eq(sync_once(NULL), 0);
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_patients"), 50);
    out = tu_read_file(logpath);
    ck_assert_ptr_null(strstr(out, "not-the-customer-key"));
    ck_assert_ptr_null(strstr(out, "VzkmZEaUWOjnQX2z"));
    free(out);
}
END_TEST

static Suite *ingest_suite(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("ingest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, backfill_twenty_thousand_matches_odsim);
    tcase_add_test(tc, incremental_pass_picks_up_front_desk_changes);
    tcase_add_test(tc, kill_nine_mid_backfill_resumes);
    tcase_add_test(tc, pacer_holds_the_tier);
    tcase_add_test(tc, office_states_for_offline_and_auth);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(ingest_suite)
