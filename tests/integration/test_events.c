/*
 * test_events.c: the API Events webhook of the running daemon (a real `odsync run` process
 * listening on loopback) — authentication, hostile bodies, the durable inbox (kill -9 during
 * a burst loses no acknowledged batch), and events applied to the canonical store (duplicates
 * and older rows change nothing).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "odtruth.h"
#include "testutil.h"

#define CUST_KEY "VzkmZEaUWOjnQX2z"
#define BAD_ROW  "[{\"PatNum\":2},{\"LName\":\"x\"}]"
#define BAD_UTF8 "[{\"PatNum\":3,\"LName\":\"\xc3\x28\"}]"

static char *dir, *odsync, *cfg, *logpath;
static pid_t sim_pid = -1, od_pid = -1;
static int sim_port, od_port;

static void setup(void)
{
    size_t n;
    dir = tu_mkdtemp();
    odsync = tu_build_path("odsync");
    setenv("E_OD_DEV", "NFF6i0KrXrxDkZHt", 1);
    setenv("E_OD_CUST", CUST_KEY, 1);
    n = strlen(dir) + 16;
    logpath = malloc(n);
    snprintf(logpath, n, "%s/odsync.log", dir);
    http_global_init();
}

static void teardown(void)
{
    if (od_pid > 0)
        tu_stop(od_pid);
    if (sim_pid > 0)
        tu_stop(sim_pid);
    od_pid = sim_pid = -1;
    tu_rmrf(dir);
    free(dir);
    free(odsync);
    free(cfg);
    free(logpath);
    cfg = NULL;
    http_global_cleanup();
}

static void start_sim(int patients)
{
    char *sim = tu_build_path("contrib/odsim/odsim"), n[16];
    const char *argv[] = {sim,      "--listen", "127.0.0.1:0", "--patients",          n,
                          "--seed", "13",       "--clock",     "2026-11-27 09:00:00", NULL};
    snprintf(n, sizeof(n), "%d", patients);
    sim_pid = tu_spawn_server(argv, NULL, &sim_port);
    free(sim);
}

/* The daemon on an ephemeral port; waits for its "listening on" line. */
static void start_odsync(const char *events_extra)
{
    char text[2048];
    const char *argv[] = {odsync, "run", "--config", NULL, NULL};
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
             " \"listen\": \"127.0.0.1:0\", \"log\": {\"level\": \"info\"},"
             " \"events\": {\"max_body_bytes\": 1048576%s},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": "
             "\"America/Chicago\", \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
             " \"tier\": \"paid\", \"min_interval_ms\": 0, \"sync_interval_s\": 3600,"
             " \"developer_key\": \"${E_OD_DEV}\", \"customer_key\": \"${E_OD_CUST}\"}}]}\n",
             dir, tu_build_dir(), events_extra, sim_port);
    free(cfg);
    cfg = tu_write_file(dir, "odsync.json", text);
    argv[3] = cfg;
    od_pid = tu_spawn_server(argv, logpath, &od_port);
}

/* POST body to the events route with key and Event-Type table; returns the HTTP status and
 * the body in *out (caller frees) when asked. */
static int post_event(const char *key, const char *table, const char *body, size_t len, char **out)
{
    char url[128], et[64];
    struct odsync_http_header h[3];
    size_t nh = 0;
    struct odsync_http_response *r = NULL;
    struct http_client *c = http_client_create();
    int status;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/od/events/main-st", od_port);
    if (key != NULL)
        h[nh++] = (struct odsync_http_header){"Authorization", key};
    if (table != NULL) {
        snprintf(et, sizeof(et), "WatchTable: %s", table);
        h[nh++] = (struct odsync_http_header){"Event-Type", et};
    }
    h[nh++] = (struct odsync_http_header){"Workstation", "ODSERVER01"};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url,
                                      .headers = h,
                                      .header_count = nh,
                                      .body = body,
                                      .body_len = len,
                                      .timeout_ms = 30000};
    http_client_perform(c, &req, &r);
    status = r->status;
    if (out != NULL)
        *out = strdup(r->body);
    http_response_free(r);
    http_client_destroy(c);
    return status;
}

/* An int from odsync's store. */
static int64_t store_int(const char *sql)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* Wait (bounded) until sql yields want. */
static int64_t wait_for(const char *sql, int64_t want)
{
    int64_t v = -1;
    int i;
    for (i = 0; i < 300; i++) { /* up to 30 s */
        v = store_int(sql);
        if (v == want)
            break;
        usleep(100000);
    }
    return v;
}

/* A patient row as Open Dental's Patient event carries it. */
static char *patient_row(int patnum, const char *txt, const char *stamp)
{
    char *s = malloc(512);
    snprintf(
        s, 512,
        "{\"PatNum\":%d,\"LName\":\"Eventon\",\"FName\":\"Pat%d\",\"PatStatus\":\"Patient\","
        "\"WirelessPhone\":\"(503)555-0142\",\"Email\":\"p%d@example.com\",\"TxtMsgOk\":\"%s\","
        "\"Guarantor\":%d,\"DateTStamp\":\"%s\"}",
        patnum, patnum, patnum, txt, patnum, stamp);
    return s;
}

START_TEST(wrong_key_is_refused_and_nothing_stored)
{
    char *row = patient_row(1, "Yes", "2026-11-27 09:00:00"), body[600], *out = NULL;
    start_sim(50);
    start_odsync("");
    snprintf(body, sizeof(body), "[%s]", row);
    ck_assert_int_eq(post_event("not-the-key", "Patient", body, strlen(body), &out), 401);
    ck_assert_str_eq(out, "{\"error\":\"invalid key\"}");
    free(out);
    ck_assert_int_eq(post_event(NULL, "Patient", body, strlen(body), NULL), 401);
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_inbox"), 0);
    free(row);
}
END_TEST

START_TEST(hostile_bodies_get_clear_errors_and_the_daemon_keeps_serving)
{
    char *out = NULL, *big, *many;
    char *row = patient_row(7, "No", "2026-11-27 09:00:00"), good[600];
    size_t i, off = 0;
    start_sim(50);
    start_odsync("");
    /* 1001 rows */
    many = malloc(1001 * 20 + 8);
    off += (size_t)snprintf(many + off, 8, "[");
    for (i = 0; i < 1001; i++)
        off += (size_t)snprintf(many + off, 20, "%s{\"PatNum\":%zu}", i ? "," : "", i + 1);
    snprintf(many + off, 8, "]");
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", many, strlen(many), &out), 400);
    ck_assert_str_eq(out, "{\"error\":\"1001 rows: an event holds at most 1000\"}");
    free(out);
    /* malformed JSON, a non-array, a bad row, an unknown table */
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", "[{\"PatNum\":1,", 13, &out), 400);
    ck_assert_str_eq(out, "{\"error\":\"body is not valid JSON\"}");
    free(out);
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", "\"rows\"", 6, &out), 400);
    ck_assert_str_eq(out, "{\"error\":\"expected a JSON array of rows, got string\"}");
    free(out);
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", BAD_ROW, strlen(BAD_ROW), &out), 400);
    ck_assert_str_eq(out, "{\"error\":\"row 1: PatNum missing or not a positive integer\"}");
    free(out);
    ck_assert_int_eq(post_event(CUST_KEY, "Recall", "[]", 2, &out), 400);
    ck_assert_ptr_nonnull(strstr(out, "WatchTable 'Recall' is not one odsync subscribes to"));
    free(out);
    /* invalid UTF-8 */
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", BAD_UTF8, strlen(BAD_UTF8), &out), 400);
    ck_assert_str_eq(out, "{\"error\":\"body is not valid UTF-8\"}");
    free(out);
    /* 20 MB against a 1 MiB limit */
    big = malloc(20u * 1024 * 1024);
    memset(big, ' ', 20u * 1024 * 1024);
    big[0] = '[';
    big[20u * 1024 * 1024 - 1] = ']';
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", big, 20u * 1024 * 1024, NULL), 413);
    free(big);
    /* Nothing of that was stored, and a good batch still goes through. */
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_inbox"), 0);
    snprintf(good, sizeof(good), "[%s]", row);
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", good, strlen(good), &out), 200);
    ck_assert_str_eq(out, "{\"accepted\":1}");
    free(out);
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_inbox"), 1);
    /* A UI event (an object) is acknowledged and not stored. */
    ck_assert_int_eq(post_event(CUST_KEY, NULL, "{\"UiEventType\":\"PatientSelected\"}", 33, NULL),
                     200);
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_inbox"), 1);
    free(many);
    free(row);
}
END_TEST

START_TEST(events_reach_the_store_duplicates_and_older_rows_change_nothing)
{
    char *row = patient_row(900001, "Yes", "2026-11-27 10:00:00"), body[700];
    char *older = patient_row(900001, "No", "2026-11-27 09:59:59");
    char *newer = patient_row(900001, "No", "2026-11-27 10:00:05");
    start_sim(50);
    start_odsync("");
    snprintf(body, sizeof(body), "[%s]", row);
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", body, strlen(body), NULL), 200);
    ck_assert_int_eq(wait_for("SELECT COUNT(*) FROM od_patients WHERE patnum = 900001", 1), 1);
    ck_assert_int_eq(wait_for("SELECT COUNT(*) FROM records WHERE key = 'od:main-st:900001'", 1),
                     1);
    /* the same event again (a second workstation): no new version */
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", body, strlen(body), NULL), 200);
    ck_assert_int_eq(wait_for("SELECT COUNT(*) FROM od_inbox WHERE state = 'new'", 0), 0);
    ck_assert_int_eq(store_int("SELECT version FROM records WHERE key = 'od:main-st:900001'"), 1);
    /* an older row arriving late does not overwrite */
    snprintf(body, sizeof(body), "[%s]", older);
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", body, strlen(body), NULL), 200);
    ck_assert_int_eq(wait_for("SELECT COUNT(*) FROM od_inbox WHERE state = 'new'", 0), 0);
    ck_assert_int_eq(store_int("SELECT COUNT(*) FROM od_patients WHERE patnum = 900001 AND body "
                               "LIKE '%\"sms_consent\":\"yes\"%'"),
                     1);
    /* a newer one does */
    snprintf(body, sizeof(body), "[%s]", newer);
    ck_assert_int_eq(post_event(CUST_KEY, "Patient", body, strlen(body), NULL), 200);
    ck_assert_int_eq(wait_for("SELECT COUNT(*) FROM od_patients WHERE patnum = 900001 AND body "
                              "LIKE '%\"sms_consent\":\"no\"%'",
                              1),
                     1);
    ck_assert_int_eq(wait_for("SELECT version FROM records WHERE key = 'od:main-st:900001'", 2), 2);
    free(row);
    free(older);
    free(newer);
}
END_TEST

/* kill -9 while a burst is arriving: every batch that got its 200 is there after restart. */
START_TEST(kill_nine_during_a_burst_keeps_every_acknowledged_batch)
{
    char body[8192];
    int acked = 0, i, status;
    pid_t poster;
    int fds[2];
    start_sim(50);
    start_odsync("");
    ck_assert_int_eq(pipe(fds), 0);
    poster = fork();
    ck_assert(poster >= 0);
    if (poster == 0) { /* the burst: report each acknowledged batch on the pipe */
        close(fds[0]);
        for (i = 0; i < 5000; i++) {
            size_t off = 0;
            int r;
            off += (size_t)snprintf(body + off, sizeof(body) - off, "[");
            for (r = 0; r < 20; r++) {
                char *row = patient_row(100000 + i * 20 + r, "Yes", "2026-11-27 09:00:00");
                off += (size_t)snprintf(body + off, sizeof(body) - off, "%s%s", r ? "," : "", row);
                free(row);
            }
            snprintf(body + off, sizeof(body) - off, "]");
            status = post_event(CUST_KEY, "Patient", body, strlen(body), NULL);
            if (status != 200)
                break;
            if (write(fds[1], "A", 1) != 1)
                break;
        }
        _exit(0);
    }
    close(fds[1]);
    usleep(700000);
    ck_assert_int_eq(kill(od_pid, SIGKILL), 0);
    tu_wait(od_pid, 5000);
    od_pid = -1;
    {
        char c;
        while (read(fds[0], &c, 1) == 1)
            acked++;
    }
    tu_wait(poster, 30000);
    close(fds[0]);
    ck_assert_int_gt(acked, 0);
    /* Every acknowledged batch is in the inbox (a batch may be stored but not acknowledged). */
    ck_assert_int_ge(store_int("SELECT COUNT(*) FROM od_inbox"), acked);
    printf("kill -9 during a burst: %d batches acknowledged, %lld stored\n", acked,
           (long long)store_int("SELECT COUNT(*) FROM od_inbox"));
    /* After a restart they are all applied. */
    start_odsync("");
    ck_assert_int_eq(wait_for("SELECT COUNT(*) FROM od_inbox WHERE state = 'new'", 0), 0);
    ck_assert_int_ge(store_int("SELECT COUNT(*) FROM od_patients WHERE patnum >= 100000"),
                     (int64_t)acked * 20);
}
END_TEST

/* `odsync run --until-idle` (a pass per office, then idle). */
static int run_until_idle(void)
{
    const char *argv[] = {odsync, "run", "--until-idle", "--config", cfg, NULL};
    char *err = NULL;
    int rc = tu_run(argv, NULL, NULL, &err);
    FILE *f = fopen(logpath, "a");
    fputs(err, f);
    fclose(f);
    free(err);
    return rc;
}

/* Four days without odsync (longer than Open Dental's ~3-day replay): the changes made
 * meanwhile never arrive as events, and the reconciling pass at start recovers every one. */
START_TEST(four_day_outage_is_recovered_by_reconciliation)
{
    cJSON *r;
    start_sim(400);
    start_odsync("");
    tu_stop(od_pid); /* only to write the config; the runs below are --until-idle */
    od_pid = -1;
    ck_assert_int_eq(run_until_idle(), 0);
    ck_assert_int_eq(odt_store_int(dir, "SELECT COUNT(*) FROM od_patients"), 400);
    /* odsync is down; four days pass at the practice, with front-desk work. */
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/clock", "{\"advance_s\":345600}"));
    r = odt_admin(sim_port, "POST", "/_admin/random", "{\"count\":40,\"seed\":4}");
    cJSON_Delete(r);
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/clock", "{\"advance_s\":60}"));
    ck_assert_int_eq(run_until_idle(), 0);
    odt_build_truth(dir, sim_port, 0x1f);
    ck_assert_int_eq(odt_differences(dir, "od_patients", "patnum"), 0);
    ck_assert_int_eq(odt_differences(dir, "od_appointments", "apt_num"), 0);
    ck_assert_int_eq(odt_differences(dir, "od_procedures", "proc_num"), 0);
    ck_assert_int_eq(odt_differences(dir, "od_recalls", "recall_num"), 0);
}
END_TEST

/* A free loopback port (bound, read, released). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* odsync on a known port, with events.public_url pointing at it and the subscriptions made
 * by `odsync subscriptions ensure` (run twice: the second changes nothing). */
static void start_odsync_with_subscriptions(void)
{
    char text[2048], *out = NULL;
    const char *run[] = {odsync, "run", "--config", NULL, NULL};
    const char *ensure[] = {odsync, "subscriptions", "ensure", "--config", NULL, NULL};
    int port = free_port();
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
             " \"listen\": \"127.0.0.1:%d\", \"log\": {\"level\": \"info\"},"
             " \"events\": {\"public_url\": \"http://127.0.0.1:%d\", \"polling_seconds\": 1},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": "
             "\"America/Chicago\", \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
             " \"tier\": \"paid\", \"min_interval_ms\": 0, \"sync_interval_s\": 3600,"
             " \"workstation\": \"ODSERVER01\","
             " \"developer_key\": \"${E_OD_DEV}\", \"customer_key\": \"${E_OD_CUST}\"}}]}\n",
             dir, tu_build_dir(), port, port, sim_port);
    free(cfg);
    cfg = tu_write_file(dir, "odsync.json", text);
    ensure[4] = cfg;
    ck_assert_int_eq(tu_run(ensure, NULL, &out, NULL), 0);
    ck_assert_str_eq(out, "main-st: 3 created, 0 updated, 0 unchanged\n");
    free(out);
    ck_assert_int_eq(tu_run(ensure, NULL, &out, NULL), 0);
    ck_assert_str_eq(out, "main-st: 0 created, 0 updated, 3 unchanged\n");
    free(out);
    run[3] = cfg;
    od_pid = tu_spawn_server(run, logpath, &od_port);
    ck_assert_int_eq(od_port, port);
}

/* Start odsync again on the same config and port. */
static void start_odsync_with_subscriptions_again(void)
{
    const char *run[] = {odsync, "run", "--config", NULL, NULL};
    int port = od_port;
    run[3] = cfg;
    od_pid = tu_spawn_server(run, logpath, &od_port);
    ck_assert_int_eq(od_port, port);
}

/* Wait (bounded) until odsync's patients and appointments equal odsim's; the differences. */
static int64_t converge(int seconds)
{
    int64_t d = -1;
    int i;
    for (i = 0; i < seconds; i++) {
        odt_build_truth(dir, sim_port, 0x05); /* patients, appointments */
        d = odt_differences(dir, "od_patients", "patnum") +
            odt_differences(dir, "od_appointments", "apt_num");
        if (d == 0)
            break;
        sleep(1);
    }
    return d;
}

/* A counter of odsim's event poller. */
static int event_counter(const char *name)
{
    cJSON *e = odt_admin(sim_port, "GET", "/_admin/events?office=1", NULL);
    int n = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "counters"), name)->valueint;
    cJSON_Delete(e);
    return n;
}

/* odsim pushes events (normal, then duplicated from two machines): the store converges to
 * odsim's data through events alone (the reconciling pass runs only at start). */
START_TEST(events_from_odsim_converge_normal_and_duplicated)
{
    int64_t before;
    start_sim(300);
    start_odsync_with_subscriptions();
    ck_assert_int_eq(converge(60), 0); /* the backfill at start */
    before = odt_store_int(dir, "SELECT COUNT(*) FROM od_inbox");
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/random", "{\"count\":25,\"seed\":8}"));
    ck_assert_int_eq(converge(60), 0);
    ck_assert_int_gt(odt_store_int(dir, "SELECT COUNT(*) FROM od_inbox"), before);
    /* two machines now send every window */
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/events", "{\"machines\":2}"));
    before = odt_store_int(dir, "SELECT COUNT(*) FROM od_inbox");
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/random", "{\"count\":25,\"seed\":9}"));
    ck_assert_int_eq(converge(60), 0);
    ck_assert_int_ge(odt_store_int(dir, "SELECT COUNT(*) FROM od_inbox") - before, 2);
    printf("events: %d posts, %d rows; inbox %lld batches\n", event_counter("posts"),
           event_counter("rows"), (long long)odt_store_int(dir, "SELECT COUNT(*) FROM od_inbox"));
}
END_TEST

/* A window resent after a failed POST (odsync down), and a dropped window recovered only by
 * the reconciling pass. */
START_TEST(events_resent_after_failure_and_dropped_ones_reconciled)
{
    const char *sync_argv[] = {odsync, "sync", "--config", NULL, NULL};
    int failures;
    start_sim(300);
    start_odsync_with_subscriptions();
    ck_assert_int_eq(converge(60), 0);
    /* odsync goes away; the front desk works; Open Dental's POSTs fail. */
    tu_stop(od_pid);
    od_pid = -1;
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/patients/11/txtmsgok", "{\"value\":\"No\"}"));
    for (failures = 0; failures < 50 && event_counter("failures") == 0; failures++)
        usleep(200000);
    ck_assert_int_gt(event_counter("failures"), 0);
    /* Back (a restart also reconciles, so check the window itself arrived again). */
    start_odsync_with_subscriptions_again();
    ck_assert_int_eq(converge(60), 0);
    ck_assert_int_gt(
        wait_for("SELECT COUNT(*) FROM od_inbox WHERE watch_table = 'Patient' AND body LIKE "
                 "'%\"PatNum\":11,%'",
                 1),
        0);
    /* A dropped window: the change never arrives as an event... */
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/events", "{\"drop_next\":1}"));
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/patients/12/txtmsgok", "{\"value\":\"No\"}"));
    for (failures = 0; failures < 50 && event_counter("drops") == 0; failures++)
        usleep(200000);
    ck_assert_int_eq(event_counter("drops"), 1);
    sleep(2);
    ck_assert_int_eq(odt_store_int(dir, "SELECT COUNT(*) FROM od_patients WHERE patnum = 12 AND "
                                        "body LIKE '%\"sms_consent\":\"no\"%'"),
                     0);
    /* ...and the reconciling pass brings it. */
    sync_argv[3] = cfg;
    ck_assert_int_eq(tu_run(sync_argv, NULL, NULL, NULL), 0);
    ck_assert_int_eq(converge(10), 0);
}
END_TEST

static Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("events");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, wrong_key_is_refused_and_nothing_stored);
    tcase_add_test(tc, hostile_bodies_get_clear_errors_and_the_daemon_keeps_serving);
    tcase_add_test(tc, events_reach_the_store_duplicates_and_older_rows_change_nothing);
    tcase_add_test(tc, kill_nine_during_a_burst_keeps_every_acknowledged_batch);
    tcase_add_test(tc, four_day_outage_is_recovered_by_reconciliation);
    tcase_add_test(tc, events_from_odsim_converge_normal_and_duplicated);
    tcase_add_test(tc, events_resent_after_failure_and_dropped_ones_reconciled);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(events_suite)
