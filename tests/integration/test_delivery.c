/*
 * test_delivery.c: the delivery engine under faults, end to end and over loopback — the odsync
 * daemon as a real process, the rest plugin, and the fake REST CRM (a real process) injecting
 * 500s, 429s with Retry-After, connection resets, 401s and slow answers. What the CRM ends up
 * holding is compared record by record with the canonical store.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "testutil.h"

#define CRM_TOKEN "delivery-crm-token-51c2"

static char *dir, *odsync, *cfg, *logpath;
static pid_t crm_pid = -1, slow_pid = -1;
static int crm_port, slow_port;

static void setup(void)
{
    size_t n;
    dir = tu_mkdtemp();
    odsync = tu_build_path("odsync");
    setenv("D_CRM_TOKEN", CRM_TOKEN, 1);
    setenv("D_OD_DEV", "delivery-od-dev", 1);
    setenv("D_OD_CUST", "delivery-od-cust", 1);
    n = strlen(dir) + 16;
    logpath = malloc(n);
    snprintf(logpath, n, "%s/odsync.log", dir);
    http_global_init();
}

static void teardown(void)
{
    if (crm_pid > 0)
        tu_stop(crm_pid);
    if (slow_pid > 0)
        tu_stop(slow_pid);
    crm_pid = slow_pid = -1;
    tu_rmrf(dir);
    free(dir);
    free(odsync);
    free(cfg);
    free(logpath);
    cfg = NULL;
    http_global_cleanup();
}

/* Start a fake REST CRM with extra flags (NULL-terminated); returns its pid, sets *port. */
static pid_t start_fake(const char *const *flags, int *port)
{
    char *fake = tu_build_path("contrib/fakes/fake_rest_crm");
    const char *argv[24] = {fake, "--listen", "127.0.0.1:0", "--token", CRM_TOKEN};
    size_t n = 5;
    pid_t pid;
    while (flags != NULL && *flags != NULL && n < 23)
        argv[n++] = *flags++;
    argv[n] = NULL;
    pid = tu_spawn_server(argv, NULL, port);
    free(fake);
    return pid;
}

/* Config: sink "crm" at crm_port (and "slow" at slow_port when > 0), routes for contacts.
 * delivery is the body of the top-level "delivery" object. */
static void write_config(const char *delivery, int with_slow)
{
    char text[4096], slow[512] = "";
    if (with_slow)
        snprintf(slow, sizeof(slow),
                 ", \"slow\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:%d\","
                 " \"token\": \"${D_CRM_TOKEN}\", \"timeout_ms\": 600000}",
                 slow_port);
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],\n"
             " \"log\": {\"level\": \"info\"}, \"delivery\": {%s},\n"
             " \"sinks\": {\"crm\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:%d\","
             " \"token\": \"${D_CRM_TOKEN}\", \"timeout_ms\": 10000}%s},\n"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": "
             "\"America/Chicago\","
             " \"opendental\": {\"base_url\": \"https://od.invalid/api/v1\","
             " \"developer_key\": \"${D_OD_DEV}\", \"customer_key\": \"${D_OD_CUST}\"},"
             " \"routes\": {\"contact\": [\"crm\"%s]}}]}\n",
             dir, tu_build_dir(), delivery, crm_port, slow, with_slow ? ", \"slow\"" : "");
    free(cfg);
    cfg = tu_write_file(dir, "odsync.json", text);
}

/* n contacts; every reject_every-th (0 = none) is named REJECT, which the fake refuses for
 * good (422). tag varies the content between imports. Returns the file's path. */
static char *write_records(int n, int reject_every, const char *tag)
{
    size_t cap = (size_t)n * 160 + 16, off = 0;
    char *text = malloc(cap), *path;
    int i;
    off += (size_t)snprintf(text + off, cap - off, "[");
    for (i = 1; i <= n; i++) {
        int reject = reject_every > 0 && i % reject_every == 0;
        off += (size_t)snprintf(text + off, cap - off,
                                "%s{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":%d,"
                                "\"first_name\":\"%s\",\"last_name\":\"L%d\","
                                "\"recall_stage\":\"%s\"}\n",
                                i > 1 ? "," : "", i, reject ? "REJECT" : "P", i, tag);
    }
    snprintf(text + off, cap - off, "]");
    path = tu_write_file(dir, "records.json", text);
    free(text);
    return path;
}

/* Run odsync with up to three more arguments; output appended to the log. Returns exit. */
static int od(const char *a1, const char *a2, const char *a3, char **out)
{
    const char *argv[] = {odsync, a1, "--config", cfg, a2, a3, NULL};
    char *err = NULL;
    int rc = tu_run(argv, NULL, out, &err);
    FILE *f = fopen(logpath, "a");
    fputs(err, f);
    fclose(f);
    free(err);
    return rc;
}

/* `odsync status --json` for sink: the count in state. */
static int status_of(const char *sink, const char *state)
{
    char *out = NULL;
    cJSON *j, *s;
    int n;
    ck_assert_int_eq(od("status", "--json", NULL, &out), 0);
    j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    s = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sinks"), sink);
    n = cJSON_GetObjectItem(s, state)->valueint;
    cJSON_Delete(j);
    free(out);
    return n;
}

/* The state text of a sink from `odsync status --json` (caller frees). */
static char *sink_state_text(const char *sink)
{
    char *out = NULL, *text;
    cJSON *j;
    ck_assert_int_eq(od("status", "--json", NULL, &out), 0);
    j = cJSON_Parse(out);
    text = strdup(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sinks"), sink), "state")
            ->valuestring);
    cJSON_Delete(j);
    free(out);
    return text;
}

/* An HTTP call to a fake's admin API; returns the parsed JSON body (caller deletes). */
static cJSON *fake_call(int port, const char *method, const char *path, const char *body)
{
    char url[256];
    struct odsync_http_header h[] = {{"Authorization", "Bearer " CRM_TOKEN},
                                     {"Content-Type", "application/json"}};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = method,
                                      .url = url,
                                      .headers = h,
                                      .header_count = 2,
                                      .body = body,
                                      .body_len = body ? strlen(body) : 0,
                                      .timeout_ms = 30000};
    struct odsync_http_response *resp = NULL;
    struct http_client *c = http_client_create();
    cJSON *j;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    http_client_perform(c, &req, &resp);
    ck_assert_msg(resp->status == 200, "%s %s: HTTP %d %s", method, path, resp->status,
                  resp->error ? resp->error : resp->body);
    j = cJSON_Parse(resp->body);
    ck_assert_ptr_nonnull(j);
    http_response_free(resp);
    http_client_destroy(c);
    return j;
}

/* Every canonical contact must be in the CRM with exactly the canonical body, except the
 * keys listed in skip_name records (first_name REJECT). Returns how many were compared. */
static int assert_crm_equals_store(int port)
{
    cJSON *state = fake_call(port, "GET", "/_state", NULL);
    cJSON *items = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(state, "entities"), "contacts"), "items");
    char dbpath[1024];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int compared = 0, rejected = 0;
    char *held;
    snprintf(dbpath, sizeof(dbpath), "%s/odsync.db", dir);
    ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT key, body FROM records", -1, &s, NULL),
                     SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        const char *body = (const char *)sqlite3_column_text(s, 1);
        cJSON *item = cJSON_GetObjectItem(items, key);
        if (strstr(body, "\"REJECT\"") != NULL) {
            ck_assert_msg(item == NULL, "%s was rejected but is in the CRM", key);
            rejected++;
            continue;
        }
        ck_assert_msg(item != NULL, "%s missing from the CRM", key);
        held = cJSON_PrintUnformatted(cJSON_GetObjectItem(item, "body"));
        ck_assert_str_eq(held, body); /* the CRM holds exactly the canonical record */
        free(held);
        compared++;
    }
    ck_assert_int_eq(cJSON_GetArraySize(items), compared);
    sqlite3_finalize(s);
    sqlite3_close(db);
    cJSON_Delete(state);
    (void)rejected;
    return compared;
}

/* The fake's counters, printed for the issue note and returned as JSON (caller deletes). */
static cJSON *fake_stats(int port, const char *label)
{
    cJSON *state = fake_call(port, "GET", "/_state?summary=1", NULL);
    char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(state, "stats"));
    printf("%s: fake stats %s\n", label, text);
    free(text);
    return state;
}

/* 5,000 records through 30% 500s, periodic 429 + Retry-After and connection resets. */
START_TEST(five_thousand_records_through_faults)
{
    const char *flags[] = {"--fail-rate",
                           "0.3",
                           "--rate-limit-every",
                           "2500",
                           "--retry-after",
                           "1",
                           "--reset-rate",
                           "0.02",
                           "--seed",
                           "7",
                           NULL};
    char *rec, *out = NULL;
    cJSON *state, *stats, *dlq, *e;
    int dead = 0;
    crm_pid = start_fake(flags, &crm_port);
    write_config("\"backoff_base_ms\": 5, \"backoff_cap_ms\": 200, \"max_attempts\": 40", 0);
    rec = write_records(5000, 100, "due");
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    ck_assert_int_eq(od("run", "--until-idle", "--deliver-only", NULL), 0);
    ck_assert_int_eq(status_of("crm", "pending"), 0);
    ck_assert_int_eq(status_of("crm", "inflight"), 0);
    ck_assert_int_eq(status_of("crm", "done"), 4950);
    ck_assert_int_eq(status_of("crm", "dead"), 50);
    ck_assert_int_eq(assert_crm_equals_store(crm_port), 4950);
    /* The dead letters are exactly the records the CRM refuses for good. */
    ck_assert_int_eq(od("dlq", "list", "--json", &out), 0);
    dlq = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetArraySize(dlq), 50);
    cJSON_ArrayForEach(e, dlq)
    {
        int patnum =
            (int)strtol(strrchr(cJSON_GetObjectItem(e, "key")->valuestring, ':') + 1, NULL, 10);
        ck_assert_int_eq(patnum % 100, 0);
        ck_assert_str_eq(cJSON_GetObjectItem(e, "class")->valuestring, "PERMANENT");
        ck_assert_str_eq(cJSON_GetObjectItem(e, "sink")->valuestring, "crm");
        ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(e, "detail")->valuestring, "422"));
        dead++;
    }
    ck_assert_int_eq(dead, 50);
    cJSON_Delete(dlq);
    free(out);
    state = fake_stats(crm_port, "5000 records");
    stats = cJSON_GetObjectItem(state, "stats");
    /* Faults really happened: 500s, 429s and resets were all injected. */
    ck_assert_int_gt(cJSON_GetObjectItem(cJSON_GetObjectItem(stats, "by_status"), "500")->valueint,
                     1000);
    ck_assert_int_ge(cJSON_GetObjectItem(cJSON_GetObjectItem(stats, "by_status"), "429")->valueint,
                     1);
    ck_assert_int_gt(cJSON_GetObjectItem(stats, "resets")->valueint, 0);
    cJSON_Delete(state);
    free(rec);
}
END_TEST

/* kill -9 mid-delivery three times, with a new version imported between crashes: after a
 * restart everything is delivered, at its latest version, each record once in the CRM. */
START_TEST(kill_nine_three_times_loses_nothing)
{
    const char *flags[] = {"--delay-ms", "2", "--fail-rate", "0.1", "--seed", "3", NULL};
    const char *argv[] = {odsync, "run", "--deliver-only", "--config", NULL, NULL};
    char *rec;
    int round, delivered_before_last = 0;
    crm_pid = start_fake(flags, &crm_port);
    write_config("\"backoff_base_ms\": 5, \"backoff_cap_ms\": 100, \"max_attempts\": 40", 0);
    argv[4] = cfg;
    rec = write_records(1500, 0, "v1");
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    free(rec);
    for (round = 0; round < 3; round++) {
        pid_t pid = tu_spawn(argv, logpath);
        usleep((useconds_t)(250000 + round * 150000));
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(tu_wait(pid, 5000), 128 + SIGKILL);
        if (round == 0) { /* every record changes while the queue is part done */
            rec = write_records(1500, 0, "v2");
            ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
            free(rec);
        }
    }
    delivered_before_last = status_of("crm", "done");
    ck_assert_int_lt(delivered_before_last, 1500); /* the kills really interrupted work */
    ck_assert_int_eq(od("run", "--until-idle", "--deliver-only", NULL), 0);
    ck_assert_int_eq(status_of("crm", "pending") + status_of("crm", "inflight"), 0);
    ck_assert_int_eq(status_of("crm", "done"), 1500);
    ck_assert_int_eq(assert_crm_equals_store(crm_port), 1500);
    cJSON_Delete(fake_stats(crm_port, "kill -9 x3"));
}
END_TEST

/* A sink that hangs does not hold up another; SIGTERM then drains within the deadline and
 * what was in flight at the hung sink is delivered after a restart. */
START_TEST(slow_sink_does_not_hold_up_another)
{
    const char *hang[] = {"--delay-ms", "60000", NULL};
    const char *argv[] = {odsync, "run", "--deliver-only", "--config", NULL, NULL};
    char *rec, *state;
    pid_t pid;
    int i, done = 0;
    crm_pid = start_fake(NULL, &crm_port);
    slow_pid = start_fake(hang, &slow_port);
    write_config("\"shutdown_timeout_ms\": 300", 1);
    argv[4] = cfg;
    rec = write_records(300, 0, "due");
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    pid = tu_spawn(argv, logpath);
    for (i = 0; i < 600 && done < 300; i++) { /* bounded: at most 60 s */
        usleep(100000);
        done = status_of("crm", "done");
    }
    ck_assert_int_eq(done, 300);
    ck_assert_int_eq(status_of("slow", "done"), 0);
    ck_assert_int_gt(status_of("slow", "inflight"), 0);
    /* The hung request outlives the 300 ms deadline: exit 1, rows stay for the restart. */
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(tu_wait(pid, 30000), 1);
    ck_assert_int_eq(status_of("slow", "done"), 0);
    tu_stop(slow_pid);
    slow_pid = start_fake(NULL, &slow_port);
    write_config("\"shutdown_timeout_ms\": 300", 1);
    ck_assert_int_eq(od("run", "--until-idle", "--deliver-only", NULL), 0);
    ck_assert_int_eq(status_of("slow", "done"), 300);
    state = tu_read_file(logpath);
    ck_assert_ptr_nonnull(strstr(state, "sink slow did not finish within 300 ms"));
    ck_assert_ptr_nonnull(strstr(state, "recovered"));
    free(state);
    free(rec);
}
END_TEST

/* 401: the sink pauses (no attempts spent) until an operator resumes it. */
START_TEST(auth_failure_pauses_until_resumed)
{
    const char *flags[] = {"--auth-fail", NULL};
    char *rec, *state, *out = NULL;
    cJSON *r;
    crm_pid = start_fake(flags, &crm_port);
    write_config("\"backoff_base_ms\": 5", 0);
    rec = write_records(20, 0, "due");
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    ck_assert_int_eq(od("run", "--until-idle", "--deliver-only", NULL), 0); /* settles: paused */
    ck_assert_int_eq(status_of("crm", "pending"), 20);
    ck_assert_int_eq(status_of("crm", "dead"), 0);
    state = sink_state_text("crm");
    ck_assert_msg(strncmp(state, "paused (AUTH) until resumed", 27) == 0, "state: %s", state);
    free(state);
    r = fake_call(crm_port, "POST", "/_faults", "{\"auth-fail\": false}");
    cJSON_Delete(r);
    ck_assert_int_eq(od("sinks", "resume", "crm", &out), 0);
    ck_assert_str_eq(out, "sink crm resumed\n");
    free(out);
    ck_assert_int_eq(od("run", "--until-idle", "--deliver-only", NULL), 0);
    ck_assert_int_eq(status_of("crm", "done"), 20);
    state = sink_state_text("crm");
    ck_assert_str_eq(state, "running");
    free(state);
    free(rec);
}
END_TEST

/* The dead-letter commands: list names record, sink, reason and time; retry and drop. */
START_TEST(dead_letter_commands)
{
    char *rec, *out = NULL, *err = NULL, id[32];
    const char *argv[] = {odsync, "dlq", "drop", "999999", "--config", NULL, NULL};
    cJSON *dlq;
    crm_pid = start_fake(NULL, &crm_port);
    write_config("\"backoff_base_ms\": 5", 0);
    rec = write_records(9, 3, "due");
    ck_assert_int_eq(od("import", rec, NULL, NULL), 0);
    ck_assert_int_eq(od("run", "--until-idle", "--deliver-only", NULL), 0);
    ck_assert_int_eq(od("dlq", "list", NULL, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "od:main-st:3 "));
    ck_assert_ptr_nonnull(strstr(out, "od:main-st:6 "));
    ck_assert_ptr_nonnull(strstr(out, "od:main-st:9 "));
    ck_assert_ptr_nonnull(strstr(out, "PERMANENT"));
    ck_assert_ptr_nonnull(strstr(out, "\n3 dead letters\n"));
    free(out);
    ck_assert_int_eq(od("dlq", "list", "--json", &out), 0);
    dlq = cJSON_Parse(out);
    snprintf(id, sizeof(id), "%d", cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 0), "id")->valueint);
    cJSON_Delete(dlq);
    free(out);
    ck_assert_int_eq(od("dlq", "drop", id, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "dropped dead letter "));
    free(out);
    ck_assert_int_eq(status_of("crm", "dead"), 2);
    ck_assert_int_eq(od("dlq", "retry", "--all", &out), 0);
    ck_assert_str_eq(out, "requeued 2 dead letters\n");
    free(out);
    ck_assert_int_eq(status_of("crm", "pending"), 2);
    argv[5] = cfg;
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "odsync: no dead letter with id 999999\n"));
    free(err);
    free(rec);
}
END_TEST

static Suite *delivery_suite(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("delivery");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, five_thousand_records_through_faults);
    tcase_add_test(tc, kill_nine_three_times_loses_nothing);
    tcase_add_test(tc, slow_sink_does_not_hold_up_another);
    tcase_add_test(tc, auth_failure_pauses_until_resumed);
    tcase_add_test(tc, dead_letter_commands);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(delivery_suite)
