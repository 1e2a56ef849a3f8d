/*
 * test_pipeline.c: the whole pipeline as an operator runs it — odsync import and run as
 * real processes, the rest plugin, and the fake REST CRM as a real HTTP server process on
 * loopback. Asserts what the CRM holds, change detection (no requests for unchanged data),
 * nothing lost when the CRM is down, bad input refused with nothing written, and no secret
 * in any log line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "testutil.h"

#define CRM_TOKEN "pipeline-crm-token-7f3a"
#define OD_DEV    "pipeline-od-developer-9b1c"
#define OD_CUST   "pipeline-od-customer-2d4e"

static char *dir, *odsync, *cfg, *logpath;
static pid_t crm_pid;
static int crm_port;

static const char *records_json =
    "[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1042,\"first_name\":\"Avery\","
    "\"last_name\":\"Quill\",\"email\":\"avery@example.com\",\"sms_consent\":\"yes\"},\n"
    " {\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1043,\"first_name\":\"Blair\","
    "\"last_name\":\"Quill\",\"sms_consent\":\"unknown\"},\n"
    " {\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1044,\"first_name\":\"Casey\","
    "\"last_name\":\"Rowe\",\"sms_consent\":\"no\"},\n"
    " {\"kind\":\"task\",\"office\":\"main-st\",\"recall_num\":77,\"patnum\":1042,"
    "\"subject\":\"Recall due\",\"due\":\"2026-12-01T15:00:00Z\",\"status\":\"open\"}]\n";

/* Write the config pointing the rest sink at port (0 = a closed port). */
static void write_config(int port)
{
    char text[4096];
    free(cfg);
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],\n"
             " \"log\": {\"level\": \"debug\"},\n"
             " \"sinks\": {\"crm\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:%d\","
             " \"token\": \"${P_CRM_TOKEN}\", \"timeout_ms\": 5000}},\n"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": "
             "\"America/Chicago\","
             " \"opendental\": {\"base_url\": \"https://od.invalid/api/v1\","
             " \"developer_key\": \"${P_OD_DEV}\", \"customer_key\": \"${P_OD_CUST}\"},"
             " \"routes\": {\"contact\": [\"crm\"], \"task\": [\"crm\"]}}]}\n",
             dir, tu_build_dir(), port ? port : 9);
    cfg = tu_write_file(dir, "odsync.json", text);
}

static void setup(void)
{
    char *fake = tu_build_path("contrib/fakes/fake_rest_crm");
    const char *argv[] = {fake, "--listen", "127.0.0.1:0", "--token", CRM_TOKEN, NULL};
    size_t n;
    dir = tu_mkdtemp();
    odsync = tu_build_path("odsync");
    setenv("P_CRM_TOKEN", CRM_TOKEN, 1);
    setenv("P_OD_DEV", OD_DEV, 1);
    setenv("P_OD_CUST", OD_CUST, 1);
    n = strlen(dir) + 16;
    logpath = malloc(n);
    snprintf(logpath, n, "%s/all.log", dir);
    crm_pid = tu_spawn_server(argv, NULL, &crm_port);
    write_config(crm_port);
    free(fake);
    http_global_init();
}

static void teardown(void)
{
    tu_stop(crm_pid);
    tu_rmrf(dir);
    free(dir);
    free(odsync);
    free(cfg);
    free(logpath);
    cfg = NULL;
    http_global_cleanup();
}

/* Run odsync with args; appends stderr to the shared log; returns exit code. */
static int od(const char *a1, const char *a2, const char *a3, char **out)
{
    const char *argv[] = {odsync, a1, "--config", cfg, a2, a3, NULL};
    char *err = NULL;
    int rc = tu_run(argv, NULL, out, &err);
    FILE *f = fopen(logpath, "a");
    ck_assert_ptr_nonnull(f);
    fputs(err, f);
    fclose(f);
    free(err);
    return rc;
}

/* GET /_state from the fake CRM; caller frees with cJSON_Delete. */
static cJSON *crm_state(void)
{
    char url[128];
    struct odsync_http_header h = {"Authorization", "Bearer " CRM_TOKEN};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "GET",
                                      .url = url,
                                      .headers = &h,
                                      .header_count = 1,
                                      .timeout_ms = 5000};
    struct odsync_http_response *resp = NULL;
    struct http_client *c = http_client_create();
    cJSON *j;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_state", crm_port);
    ck_assert_int_eq(http_client_perform(c, &req, &resp), 0);
    ck_assert_int_eq(resp->status, 200);
    j = cJSON_Parse(resp->body);
    ck_assert_ptr_nonnull(j);
    http_response_free(resp);
    http_client_destroy(c);
    return j;
}

/* Count of an entity in the fake's state. */
static int entity_count(cJSON *state, const char *entity)
{
    cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(state, "entities"), entity);
    return e ? cJSON_GetObjectItem(e, "count")->valueint : 0;
}

/* Requests the fake has answered, excluding its own /_state calls as the fake counts. */
static int crm_requests(void)
{
    cJSON *s = crm_state();
    int n = cJSON_GetObjectItem(s, "requests")->valueint;
    cJSON_Delete(s);
    return n;
}

/* One sink counter from `odsync status --json`. */
static int status_count(const char *state)
{
    char *out = NULL;
    cJSON *j;
    int n;
    ck_assert_int_eq(od("status", "--json", NULL, &out), 0);
    j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    n = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sinks"), "crm"), state)
            ->valueint;
    cJSON_Delete(j);
    free(out);
    return n;
}

START_TEST(import_and_deliver_to_crm)
{
    char *rec = tu_write_file(dir, "records.json", records_json), *out = NULL;
    cJSON *state;
    ck_assert_int_eq(od("import", rec, NULL, &out), 0);
    ck_assert_str_eq(out, "imported 4 records: 4 changed, 0 unchanged, 4 deliveries queued\n");
    free(out);
    ck_assert_int_eq(od("run", "--once", NULL, NULL), 0);
    state = crm_state();
    ck_assert_int_eq(entity_count(state, "contacts"), 3);
    ck_assert_int_eq(entity_count(state, "tasks"), 1);
    cJSON_Delete(state);
    ck_assert_int_eq(status_count("done"), 4);
    ck_assert_int_eq(status_count("pending"), 0);
    free(rec);
}
END_TEST

START_TEST(unchanged_reimport_costs_no_crm_request)
{
    char *rec = tu_write_file(dir, "records.json", records_json), *out = NULL;
    int before;
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    ck_assert_int_eq(od("run", "--once", NULL, NULL), 0);
    before = crm_requests();
    ck_assert_int_eq(od("import", rec, NULL, &out), 0);
    ck_assert_str_eq(out, "imported 4 records: 0 changed, 4 unchanged, 0 deliveries queued\n");
    free(out);
    ck_assert_int_eq(od("run", "--once", NULL, NULL), 0);
    ck_assert_int_eq(crm_requests(), before); /* the fake does not count /_state */
    free(rec);
}
END_TEST

START_TEST(crm_down_loses_nothing)
{
    char *rec = tu_write_file(dir, "records.json", records_json);
    cJSON *state;
    write_config(0);
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    ck_assert_int_eq(od("run", "--once", NULL, NULL), 0);
    ck_assert_int_eq(status_count("pending"), 4);
    ck_assert_int_eq(status_count("dead"), 0);
    ck_assert_int_eq(status_count("done"), 0);
    state = crm_state();
    ck_assert_int_eq(entity_count(state, "contacts"), 0);
    cJSON_Delete(state);
    free(rec);
}
END_TEST

START_TEST(bad_import_writes_nothing)
{
    char *rec = tu_write_file(
        dir, "bad.json",
        "[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1},"
        " {\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2,\"sms_consent\":\"maybe\"}]");
    const char *argv[] = {odsync, "import", rec, "--config", cfg, NULL};
    char *err = NULL, *out = NULL, want[1024];
    cJSON *j;
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 1);
    snprintf(want, sizeof(want), "odsync: %s: [1].sms_consent: expected one of |yes|no|unknown|\n",
             rec);
    /* The error is the last line (info lines from start-up come before it). */
    ck_assert_uint_ge(strlen(err), strlen(want));
    ck_assert_str_eq(err + strlen(err) - strlen(want), want);
    ck_assert_int_eq(od("status", "--json", NULL, &out), 0);
    j = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "records")->valueint, 0);
    cJSON_Delete(j);
    free(out);
    free(err);
    free(rec);
}
END_TEST

START_TEST(no_secret_in_any_log_line)
{
    char *rec = tu_write_file(dir, "records.json", records_json), *log;
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    ck_assert_int_eq(od("run", "--once", NULL, NULL), 0);
    write_config(0); /* failures log too */
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    ck_assert_int_eq(od("run", "--once", NULL, NULL), 0);
    log = tu_read_file(logpath);
    ck_assert_ptr_nonnull(log);
    ck_assert_int_gt((int)strlen(log), 0);
    ck_assert_ptr_null(strstr(log, CRM_TOKEN));
    ck_assert_ptr_null(strstr(log, OD_DEV));
    ck_assert_ptr_null(strstr(log, OD_CUST));
    ck_assert_ptr_null(strstr(log, "Avery")); /* no patient names either */
    free(log);
    free(rec);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, import_and_deliver_to_crm);
    tcase_add_test(tc, unchanged_reimport_costs_no_crm_request);
    tcase_add_test(tc, crm_down_loses_nothing);
    tcase_add_test(tc, bad_import_writes_nothing);
    tcase_add_test(tc, no_secret_in_any_log_line);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(pipeline_suite)
