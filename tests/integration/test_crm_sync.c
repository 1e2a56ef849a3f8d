/*
 * test_crm_sync: an office's full sync into real CRM connectors — build/plugins/hubspot.so
 * and build/plugins/salesforce.so against their fakes over loopback, fed by odsim through the
 * real ingestion, projection and delivery:
 *   - 20,000 patients end in exactly one contact per patient and one task per open recall in
 *     each CRM, in a number of requests within 2% of ceil(records / batch size);
 *   - a second sync with no change makes zero CRM requests;
 *   - switching the office from HubSpot to Salesforce is a config change: the real daemon
 *     (`odsync run --once`) seeds the new sink with the full state; HubSpot hears nothing more.
 * Figures are printed for the issue notes; nothing here asserts a duration.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "config.h"
#include "deliver.h"
#include "guard.h"
#include "http_client.h"
#include "ingest.h"
#include "log.h"
#include "od_client.h"
#include "odsim_harness.h"
#include "outbox.h"
#include "project.h"
#include "runtime.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

#define OD_DEV    "NFF6i0KrXrxDkZHt"
#define OD_CUST   "VzkmZEaUWOjnQX2z"
#define HS_TOKEN  "hs-token-crm-sync-1"
#define SF_ID     "crm-sync-client"
#define SF_SECRET "crm-sync-secret-2"
#define OFFICE    "main-st"

static char *dir;
static pid_t sim_pid = -1, hs_pid = -1, sf_pid = -1;
static int sim_port, hs_port, sf_port;
static struct runtime *rt;
static struct http_client *cli;
static FILE *devnull;

static void start_all(const char *patients)
{
    char *hs = tu_build_path("contrib/fakes/fake_hubspot");
    char *sf = tu_build_path("contrib/fakes/fake_salesforce");
    const char *hs_argv[] = {hs,       "--token",     HS_TOKEN,   "--ten-secondly-max",
                             "100000", "--daily-max", "10000000", NULL};
    const char *sf_argv[] = {sf,        "--client-id",   SF_ID,      "--client-secret",
                             SF_SECRET, "--daily-limit", "10000000", NULL};
    const char *sim_extra[] = {"--mode", "local", NULL};
    sim_pid = odh_start(patients, "7", "2026-03-02 09:00:00", sim_extra, NULL, &sim_port);
    hs_pid = tu_spawn_server(hs_argv, NULL, &hs_port);
    sf_pid = tu_spawn_server(sf_argv, NULL, &sf_port);
    free(hs);
    free(sf);
}

static void setup(void)
{
    dir = tu_mkdtemp();
    setenv("C_OD_DEV", OD_DEV, 1);
    setenv("C_OD_CUST", OD_CUST, 1);
    setenv("C_HS_TOKEN", HS_TOKEN, 1);
    setenv("C_SF_SECRET", SF_SECRET, 1);
    http_global_init();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
    cli = http_client_create();
}

static void teardown(void)
{
    runtime_close(rt);
    rt = NULL;
    http_client_destroy(cli);
    if (sim_pid > 0)
        tu_stop(sim_pid);
    if (hs_pid > 0)
        tu_stop(hs_pid);
    if (sf_pid > 0)
        tu_stop(sf_pid);
    sim_pid = hs_pid = sf_pid = -1;
    od_client_global_cleanup();
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
    log_shutdown();
    fclose(devnull);
}

/* The config with the office's contact and task routes set to routes (a JSON array). */
static char *config_text(const char *routes)
{
    size_t n = 8192;
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    snprintf(text, n,
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],\n"
             " \"log\": {\"level\": \"error\"},\n"
             " \"sinks\": {\n"
             "  \"hs\": {\"plugin\": \"hubspot\", \"token\": \"${C_HS_TOKEN}\","
             " \"base_url\": \"http://127.0.0.1:%d\", \"create_properties\": true},\n"
             "  \"sf\": {\"plugin\": \"salesforce\", \"auth\": \"client_credentials\","
             " \"login_url\": \"http://127.0.0.1:%d\", \"client_id\": \"" SF_ID "\","
             " \"client_secret\": \"${C_SF_SECRET}\"}},\n"
             " \"offices\": [{\"id\": \"" OFFICE "\", \"name\": \"Main Street Dental\","
             " \"timezone\": \"America/Chicago\",\n"
             "   \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
             " \"developer_key\": \"${C_OD_DEV}\", \"customer_key\": \"${C_OD_CUST}\","
             " \"tier\": \"local\"},\n"
             "   \"routes\": {\"contact\": %s, \"task\": %s}}]}\n",
             dir, tu_build_dir(), hs_port, sf_port, sim_port, routes, routes);
    return text;
}

static void open_rt(const char *routes)
{
    struct config *cfg = NULL;
    char err[512] = "", *text = config_text(routes);
    ck_assert_msg(config_parse(text, strlen(text), "crm.json", &cfg, err, sizeof(err)) == ODSYNC_OK,
                  "%s", err);
    free(text);
    ck_assert_msg(runtime_open(cfg, 0, &rt, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
}

/* One ingestion pass and the projection. */
static void sync_office(void)
{
    const struct config_office *o = config_find_office(rt->cfg, OFFICE);
    struct od_client *c = od_client_create(o);
    struct ingest_report rep;
    struct project_stats ps;
    int rc;
    memset(&rep, 0, sizeof(rep));
    rc = ingest_office(rt->store, o, c, NULL, &rep);
    od_client_destroy(c);
    ck_assert_msg(rc == ODSYNC_OK, "ingest: %s (%s)", odsync_status_name(rc), rep.detail);
    ck_assert_int_eq(project_office(rt->store, o, &ps), ODSYNC_OK);
}

/* Deliver sink until nothing is due; asserts nothing went to a dead letter or a pause. */
static void deliver_all(const char *name)
{
    struct runtime_sink *rs = runtime_find_sink(rt, name);
    struct deliver_gate gate;
    struct deliver_policy pol;
    struct deliver_stats ds;
    ck_assert_ptr_nonnull(rs);
    memset(&ds, 0, sizeof(ds));
    deliver_policy_from_config(&pol, &rs->cfg->delivery);
    guard_gate(&gate, rt->cfg);
    pol.gate = &gate;
    ck_assert_int_eq(deliver_sink(rt->store, rs->sink, &pol, &ds), ODSYNC_OK);
    ck_assert_int_eq(ds.dead, 0);
    ck_assert_int_eq(ds.retried, 0);
    ck_assert_int_eq(ds.paused_until_ms, 0);
}

static int64_t sql_int(const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store), sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* GET a fake's admin path as JSON (caller deletes). */
static cJSON *fake_get(int port, const char *path)
{
    return odh_json(odh_call(cli, port, "GET", path, NULL, NULL, NULL), 200);
}

/* A number inside a JSON object by a dotted path, or -1. */
static double num_at(const cJSON *j, const char *a, const char *b, const char *c)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);
    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (c != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, c);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* HubSpot's data requests (everything but the properties setup). */
static int hs_data_requests(void)
{
    cJSON *st = fake_get(hs_port, "/_state"), *routes, *r;
    int n = 0;
    routes = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "requests"),
                                              "by_route");
    cJSON_ArrayForEach(r, routes)
    {
        if (strstr(r->string, "/properties/") == NULL)
            n += (int)num_at(r, "total", NULL, NULL);
    }
    cJSON_Delete(st);
    return n;
}

/* Salesforce's data requests (token requests excluded). */
static int sf_data_requests(void)
{
    cJSON *st = fake_get(sf_port, "/_state");
    int n = (int)num_at(st, "data_requests", NULL, NULL);
    cJSON_Delete(st);
    return n;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* Every task in HubSpot has exactly one association, to a contact (type 204). */
static void hs_tasks_associated(int64_t want)
{
    cJSON *tasks = fake_get(hs_port, "/_objects/tasks"), *t;
    int64_t n = 0, linked = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(tasks, "results"))
    {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "associations");
        n++;
        linked += cJSON_GetArraySize(a) == 1 &&
                  num_at(cJSON_GetArrayItem(a, 0), "associationTypeId", NULL, NULL) == 204;
    }
    cJSON_Delete(tasks);
    ck_assert_int_eq(n, want);
    ck_assert_int_eq(linked, want);
}

START_TEST(twenty_thousand_patients_into_both_crms)
{
    int64_t patients, contacts, tasks, hs_bound, sf_bound;
    int hs_req, sf_req;
    int64_t t0;
    cJSON *st;

    start_all("20000");
    open_rt("[\"hs\", \"sf\"]");
    t0 = util_monotonic_ms();
    sync_office();
    deliver_all("hs");
    deliver_all("sf");
    patients = sql_int("SELECT COUNT(*) FROM od_patients");
    contacts = sql_int("SELECT COUNT(*) FROM records WHERE kind = 1");
    tasks = sql_int("SELECT COUNT(*) FROM records WHERE kind = 2");
    ck_assert_int_eq(patients, 20000);
    ck_assert_int_eq(contacts, patients);
    ck_assert_int_gt(tasks, 1000);
    /* one task per open recall: every task record is one recall in the open stages */
    ck_assert_int_eq(tasks, sql_int("SELECT COUNT(*) FROM engage_tasks WHERE open = 1"));

    st = fake_get(hs_port, "/_state");
    ck_assert_int_eq((int64_t)num_at(st, "objects", "contacts", NULL), contacts);
    ck_assert_int_eq((int64_t)num_at(st, "objects", "tasks", NULL), tasks);
    cJSON_Delete(st);
    hs_tasks_associated(tasks);
    st = fake_get(sf_port, "/_state");
    ck_assert_int_eq((int64_t)num_at(st, "objects", "Contact", NULL), contacts);
    ck_assert_int_eq((int64_t)num_at(st, "objects", "Task", NULL), tasks);
    cJSON_Delete(st);

    hs_req = hs_data_requests();
    sf_req = sf_data_requests();
    hs_bound = ceil_div(contacts, 100) + ceil_div(tasks, 100);
    sf_bound = ceil_div(contacts, 200) + ceil_div(tasks, 200);
    printf("full sync of %lld patients (%lld contacts, %lld tasks) into HubSpot and Salesforce:"
           " %lld ms; HubSpot %d requests (bound %lld, %.3fx), Salesforce %d requests (bound"
           " %lld, %.3fx)\n",
           (long long)patients, (long long)contacts, (long long)tasks,
           (long long)(util_monotonic_ms() - t0), hs_req, (long long)hs_bound,
           (double)hs_req / (double)hs_bound, sf_req, (long long)sf_bound,
           (double)sf_req / (double)sf_bound);
    ck_assert_int_le(hs_req * 100, hs_bound * 102);
    ck_assert_int_le(sf_req * 100, sf_bound * 102);

    /* a second sync with no change: zero CRM requests */
    sync_office();
    deliver_all("hs");
    deliver_all("sf");
    ck_assert_int_eq(hs_data_requests(), hs_req);
    ck_assert_int_eq(sf_data_requests(), sf_req);
    printf("unchanged re-sync: 0 HubSpot and 0 Salesforce requests\n");
}
END_TEST

START_TEST(switching_from_hubspot_to_salesforce_is_config_only)
{
    char *cfg_path, *text, *odsync = tu_build_path("odsync"), *out = NULL, *err = NULL;
    int64_t contacts, tasks;
    int hs_before;
    cJSON *st;

    start_all("2000");
    open_rt("[\"hs\"]");
    sync_office();
    deliver_all("hs");
    contacts = sql_int("SELECT COUNT(*) FROM records WHERE kind = 1");
    tasks = sql_int("SELECT COUNT(*) FROM records WHERE kind = 2");
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE sink = 'sf'"), 0);
    runtime_close(rt);
    rt = NULL;
    hs_before = hs_data_requests();

    /* the office now routes to Salesforce: only the config changes */
    text = config_text("[\"sf\"]");
    cfg_path = tu_write_file(dir, "odsync.json", text);
    free(text);
    {
        const char *argv[] = {odsync, "run", "--once", "--config", cfg_path, NULL};
        int rc = tu_run(argv, NULL, &out, &err);
        ck_assert_msg(rc == 0, "odsync run --once: %d\n%s", rc, err ? err : "");
    }
    st = fake_get(sf_port, "/_state");
    ck_assert_int_eq((int64_t)num_at(st, "objects", "Contact", NULL), contacts);
    ck_assert_int_eq((int64_t)num_at(st, "objects", "Task", NULL), tasks);
    ck_assert_int_eq((int64_t)num_at(st, "records", "errors", NULL), 0);
    cJSON_Delete(st);
    ck_assert_int_eq(hs_data_requests(), hs_before); /* HubSpot hears nothing more */
    /* a second run seeds nothing again */
    free(out);
    free(err);
    out = err = NULL;
    {
        const char *argv[] = {odsync, "run", "--once", "--config", cfg_path, NULL};
        int before = sf_data_requests();
        ck_assert_int_eq(tu_run(argv, NULL, &out, &err), 0);
        ck_assert_int_eq(sf_data_requests(), before);
    }
    printf("switch to Salesforce: %lld contacts and %lld tasks seeded by the daemon\n",
           (long long)contacts, (long long)tasks);
    free(out);
    free(err);
    free(cfg_path);
    free(odsync);
}
END_TEST

static Suite *crm_sync_suite(void)
{
    Suite *s = suite_create("crm_sync");
    TCase *tc = tcase_create("crm_sync");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, twenty_thousand_patients_into_both_crms);
    tcase_add_test(tc, switching_from_hubspot_to_salesforce_is_config_only);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(crm_sync_suite)
