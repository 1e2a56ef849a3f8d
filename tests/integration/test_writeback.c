/*
 * test_writeback.c: Open Dental commlog write-back (core/od_writer.c) end to end — a real
 * SQLite store, the built-in "opendental" sink that runtime_open creates when an office has
 * policy.commlog on, the delivery engine (deliver_sink, and `odsync run` as a real process)
 * and the Open Dental simulator over loopback, with its fault injection (/_admin/faults).
 * What Open Dental ends up holding is read back through the REST API (GET /commlogs) and
 * odsim's request counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "deliver.h"
#include "http_client.h"
#include "log.h"
#include "od_client.h"
#include "od_writer.h"
#include "odsim_harness.h"
#include "odtruth.h"
#include "outbox.h"
#include "runtime.h"
#include "sink_state.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

#define OD_DEV   "NFF6i0KrXrxDkZHt"
#define OD_CUST  "VzkmZEaUWOjnQX2z"
#define OD_AUTH  "ODFHIR " OD_DEV "/" OD_CUST
#define NOTE_ONE "odsync: recall reminder sent by SMS, ref wb-1"

static char *dir;
static pid_t sim_pid = -1;
static int sim_port;
static struct runtime *rt;
static struct http_client *cli;

static void setup(void)
{
    char *sim = tu_build_path("contrib/odsim/odsim");
    const char *argv[] = {sim,      "--listen", "127.0.0.1:0", "--patients",          "30",
                          "--seed", "5",        "--clock",     "2026-11-27 09:00:00", NULL};
    dir = tu_mkdtemp();
    setenv("W_OD_DEV", OD_DEV, 1);
    setenv("W_OD_CUST", OD_CUST, 1);
    http_global_init();
    log_setup(fopen("/dev/null", "w"), ODSYNC_LOG_ERROR, LOG_TEXT);
    sim_pid = tu_spawn_server(argv, NULL, &sim_port);
    free(sim);
    cli = http_client_create();
}

static void teardown(void)
{
    runtime_close(rt);
    rt = NULL;
    http_client_destroy(cli);
    if (sim_pid > 0)
        tu_stop(sim_pid);
    sim_pid = -1;
    od_client_global_cleanup();
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
    log_shutdown();
}

/* The config text: one office at odsim; commlog write-back on or off; extra top-level
 * members (e.g. a "sinks" object) appended when not empty. Caller frees with free(). */
static char *config_text(int commlog, const char *extra)
{
    size_t n = 4096;
    char *text = malloc(n);
    snprintf(text, n,
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
             " \"log\": {\"level\": \"error\"},"
             " \"delivery\": {\"max_attempts\": 3, \"backoff_base_ms\": 1, \"backoff_cap_ms\": 1},"
             " \"policy\": {\"commlog\": %s},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": "
             "\"America/Chicago\", \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
             " \"developer_key\": \"${W_OD_DEV}\", \"customer_key\": \"${W_OD_CUST}\","
             " \"tier\": \"paid\", \"min_interval_ms\": 0}}]%s%s}\n",
             dir, tu_build_dir(), commlog ? "true" : "false", sim_port, extra[0] ? ", " : "",
             extra);
    return text;
}

/* runtime_open on config_text(commlog, extra); returns its status, err filled. */
static int open_rt(int commlog, const char *extra, char *err, size_t errlen)
{
    struct config *cfg = NULL;
    char *text = config_text(commlog, extra);
    int rc = config_parse(text, strlen(text), "writeback.json", &cfg, err, errlen);
    free(text);
    if (rc != ODSYNC_OK)
        return rc;
    return runtime_open(cfg, 0, &rt, err, errlen);
}

/* The runtime with commlog write-back on, and its built-in sink. */
static struct runtime_sink *open_writer(void)
{
    char err[512] = "";
    struct runtime_sink *rs;
    ck_assert_msg(open_rt(1, "", err, sizeof(err)) == ODSYNC_OK, "runtime_open: %s", err);
    rs = runtime_find_sink(rt, OD_WRITER_SINK);
    ck_assert_ptr_nonnull(rs);
    return rs;
}

/* One od_writer_enqueue call's arguments (strings borrowed). */
struct enq {
    int64_t patnum;
    const char *mode, *note, *ref;
};

/* store_tx body: queue the commlog *arg (borrowed) for office main-st. */
static int enqueue_tx(struct store *st, void *arg)
{
    const struct enq *e = arg;
    return od_writer_enqueue(st, config_find_office(rt->cfg, "main-st"), e->patnum, e->mode,
                             e->note, e->ref, util_now_ms());
}

/* od_writer_enqueue in a transaction of the runtime's store. */
static int enqueue(int64_t patnum, const char *mode, const char *note, const char *ref)
{
    struct enq e = {patnum, mode, note, ref};
    return store_tx(rt->store, enqueue_tx, &e);
}

/* One deliver_sink pass on the built-in sink with the config's delivery policy. */
static struct deliver_stats deliver(struct runtime_sink *rs)
{
    struct deliver_policy pol;
    struct deliver_stats ds;
    memset(&ds, 0, sizeof(ds));
    deliver_policy_from_config(&pol, &rs->cfg->delivery);
    ck_assert_int_eq(deliver_sink(rt->store, rs->sink, &pol, &ds), ODSYNC_OK);
    return ds;
}

/* odsim's commlogs of patnum (REST, as Open Dental answers them). Caller deletes. */
static cJSON *commlogs_of(int64_t patnum)
{
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/commlogs?PatNum=%lld", (long long)patnum);
    return odh_json(odh_call(cli, sim_port, "GET", path, NULL, OD_AUTH, "application/json"), 200);
}

/* How many commlogs of patnum carry note; *row (when not NULL) = a copy of the last one. */
static int count_note(int64_t patnum, const char *note, cJSON **row)
{
    cJSON *all = commlogs_of(patnum), *it;
    int n = 0;
    if (row != NULL)
        *row = NULL;
    cJSON_ArrayForEach(it, all)
    {
        const cJSON *nt = cJSON_GetObjectItem(it, "Note");
        if (cJSON_IsString(nt) && strcmp(nt->valuestring, note) == 0) {
            n++;
            if (row != NULL) {
                cJSON_Delete(*row);
                *row = cJSON_Duplicate(it, 1);
            }
        }
    }
    cJSON_Delete(all);
    return n;
}

/* odsim's count of POST /commlogs answers with HTTP status code (as text), office 1. */
static int posts_with(const char *code)
{
    cJSON *s = odt_admin(sim_port, "GET", "/_admin/stats?office=1", NULL);
    const cJSON *c = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(s, "by_endpoint"), "POST /commlogs"), code);
    int n = cJSON_IsNumber(c) ? c->valueint : 0;
    cJSON_Delete(s);
    return n;
}

/* Set odsim's faults (body: JSON, borrowed) for every office. */
static void faults(const char *body)
{
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/faults", body));
}

/* The first column of the first row of sql on the runtime's store (-1 when none). */
static int64_t sql_int(const char *sql)
{
    return odt_store_int(dir, sql);
}

/* Sleep ms milliseconds. */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A commlog queued twice (and once more after delivery) reaches Open Dental exactly once,
 * as a sent text with the note, office-local time and the CommlogNum kept as remote id. */
START_TEST(commlog_written_exactly_once)
{
    struct runtime_sink *rs = open_writer();
    struct deliver_stats ds;
    struct outbox_counts oc;
    cJSON *row = NULL;
    char sql[256];
    int64_t num;

    ck_assert_int_eq(rs->builtin, 1);
    ck_assert_str_eq(rs->cfg->plugin, "(built-in)");
    ck_assert_int_eq(enqueue(1, "Text", NOTE_ONE, "wb-1"), ODSYNC_OK);
    ck_assert_int_eq(enqueue(1, "Text", "a different note, same ref", "wb-1"), ODSYNC_OK);
    ck_assert_int_eq(outbox_count(rt->store, OD_WRITER_SINK, &oc), ODSYNC_OK);
    ck_assert_int_eq(oc.pending, 1);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE key = 'od:main-st:commlog:wb-1'"
                             " AND kind = 64 AND office = 'main-st'"),
                     1);

    ds = deliver(rs);
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(ds.dead + ds.retried + ds.auth, 0);
    ck_assert_int_eq(count_note(1, NOTE_ONE, &row), 1);
    ck_assert_int_eq(count_note(1, "a different note, same ref", NULL), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(row, "Mode_")->valuestring, "Text");
    ck_assert_str_eq(cJSON_GetObjectItem(row, "SentOrReceived")->valuestring, "Sent");
    ck_assert_int_eq((int)strlen(cJSON_GetObjectItem(row, "CommDateTime")->valuestring), 19);
    num = (int64_t)cJSON_GetObjectItem(row, "CommlogNum")->valuedouble;
    cJSON_Delete(row);
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM outbox WHERE sink = 'opendental' AND state = 'done'"
             " AND remote_id = '%lld'",
             (long long)num);
    ck_assert_int_eq(sql_int(sql), 1);

    /* The same ref again after delivery: nothing queued, nothing posted. */
    ck_assert_int_eq(enqueue(1, "Text", NOTE_ONE, "wb-1"), ODSYNC_OK);
    ds = deliver(rs);
    ck_assert_int_eq(ds.batches, 0);
    ck_assert_int_eq(count_note(1, NOTE_ONE, NULL), 1);
    ck_assert_int_eq(posts_with("201"), 1);
}
END_TEST

/* Keys: plain refs as they are, long or odd ones hashed; bad arguments refused. */
START_TEST(keys_and_arguments)
{
    char key[OD_WRITER_KEY_MAX + 1], big[301];
    size_t i;
    open_writer();
    ck_assert_int_eq(od_writer_key(key, sizeof(key), "main-st", "sms-42"), ODSYNC_OK);
    ck_assert_str_eq(key, "od:main-st:commlog:sms-42");
    memset(big, 'r', 300);
    big[300] = '\0';
    ck_assert_int_eq(od_writer_key(key, sizeof(key), "main-st", big), ODSYNC_OK);
    ck_assert_int_eq((int)strlen(key), 19 + 64);
    ck_assert_int_eq(strncmp(key, "od:main-st:commlog:", 19), 0);
    for (i = 19; i < 19 + 64; i++)
        ck_assert(strchr("0123456789abcdef", key[i]) != NULL);
    ck_assert_int_eq(od_writer_key(key, sizeof(key), "main-st", "with space"), ODSYNC_OK);
    ck_assert_int_eq((int)strlen(key), 19 + 64);
    ck_assert_int_eq(od_writer_key(key, sizeof(key), "main-st", ""), ODSYNC_INVALID);
    ck_assert_int_eq(od_writer_key(key, sizeof(key), "Bad Office", "x"), ODSYNC_INVALID);
    ck_assert_int_eq(enqueue(0, "Text", "n", "r"), ODSYNC_INVALID);
    ck_assert_int_eq(enqueue(1, "", "n", "r"), ODSYNC_INVALID);
    ck_assert_int_eq(enqueue(1, "Text", "", "r"), ODSYNC_INVALID);
    ck_assert_int_eq(enqueue(1, "Text", "n", ""), ODSYNC_INVALID);
    ck_assert_int_eq(enqueue(1, "Text", "n", big), ODSYNC_OK);
    ck_assert_int_eq(enqueue(1, "Text", "n", big), ODSYNC_OK);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE sink = 'opendental'"), 1);
}
END_TEST

/* 401: the sink pauses (AUTH), nothing is dead-lettered or spent, the office's other items
 * are not sent; after a resume everything goes through once. */
START_TEST(auth_pauses_without_dead_letters)
{
    struct runtime_sink *rs = open_writer();
    struct deliver_stats ds;
    struct sink_state ss;
    struct outbox_dead *dead = NULL;
    size_t n_dead = 9;
    int cleared = 0;

    ck_assert_int_eq(enqueue(2, "Text", "odsync: auth ref a", "auth-a"), ODSYNC_OK);
    ck_assert_int_eq(enqueue(3, "Email", "odsync: auth ref b", "auth-b"), ODSYNC_OK);
    faults("{\"key_disabled\": true}");
    ds = deliver(rs);
    ck_assert_int_eq(ds.auth, 2);
    ck_assert_int_eq(ds.ok + ds.dead + ds.retried, 0);
    ck_assert_int_eq(posts_with("401"), 1); /* the second item was not sent */
    ck_assert_int_eq(sink_state_get(rt->store, OD_WRITER_SINK, &ss), ODSYNC_OK);
    ck_assert(ss.paused_until == SINK_PAUSED_INDEFINITELY);
    ck_assert_int_eq(ss.pause_class, ODSYNC_AUTH);
    ck_assert_int_eq(outbox_dead_list(rt->store, OD_WRITER_SINK, &dead, &n_dead), ODSYNC_OK);
    ck_assert_int_eq((int)n_dead, 0);
    outbox_dead_free(dead, n_dead);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE sink = 'opendental'"
                             " AND state = 'pending' AND attempts = 0"),
                     2);

    faults("{\"key_disabled\": false}");
    ck_assert_int_eq(sink_state_resume(rt->store, OD_WRITER_SINK, &cleared), ODSYNC_OK);
    ck_assert_int_eq(cleared, 1);
    ds = deliver(rs);
    ck_assert_int_eq(ds.ok, 2);
    ck_assert_int_eq(count_note(2, "odsync: auth ref a", NULL), 1);
    ck_assert_int_eq(count_note(3, "odsync: auth ref b", NULL), 1);
}
END_TEST

/* A 5xx (odsim's 504) is an outbox retry with backoff — one request per attempt, none
 * repeated inside od_client — and goes through once the fault is gone. */
START_TEST(server_error_is_retried)
{
    struct runtime_sink *rs = open_writer();
    struct deliver_stats ds;

    ck_assert_int_eq(enqueue(4, "Text", "odsync: 5xx ref", "err-1"), ODSYNC_OK);
    faults("{\"slow_ms\": 30, \"timeout_504_ms\": 10}");
    ds = deliver(rs);
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_int_eq(ds.ok + ds.dead + ds.auth, 0);
    ck_assert_int_eq(posts_with("504"), 1);
    ck_assert_int_eq(sql_int("SELECT attempts FROM outbox WHERE sink = 'opendental'"
                             " AND state = 'pending'"),
                     1);
    ck_assert_int_eq(sql_int("SELECT last_class FROM outbox WHERE sink = 'opendental'"),
                     ODSYNC_RETRY);

    faults("{\"slow_ms\": 0, \"timeout_504_ms\": 0}");
    sleep_ms(20); /* past the (1 ms) backoff */
    ds = deliver(rs);
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(posts_with("201"), 1);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE sink = 'opendental'"
                             " AND state = 'done'"),
                     1);
    /* odsim's 504 comes after the write, as a real office's does: the first attempt may have
     * left a commlog too. That is what the send guard's at-most-once ledger is for. */
    ck_assert_int_ge(count_note(4, "odsync: 5xx ref", NULL), 1);
}
END_TEST

/* 400 (an invalid Mode_, an unknown PatNum) is a dead letter at once, with a detail that
 * names the problem and carries neither the note nor the PatNum. */
START_TEST(bad_request_is_a_dead_letter)
{
    struct runtime_sink *rs = open_writer();
    struct deliver_stats ds;
    struct outbox_dead *dead = NULL;
    size_t n_dead = 0, i;
    int saw_mode = 0, saw_pat = 0;

    ck_assert_int_eq(enqueue(5, "Carrier pigeon", "odsync: secret-ish note 1", "bad-1"), ODSYNC_OK);
    ck_assert_int_eq(enqueue(987654, "Text", "odsync: secret-ish note 2", "bad-2"), ODSYNC_OK);
    ds = deliver(rs);
    ck_assert_int_eq(ds.dead, 2);
    ck_assert_int_eq(ds.ok + ds.retried + ds.auth, 0);
    ck_assert_int_eq(posts_with("400"), 2);
    ck_assert_int_eq(outbox_dead_list(rt->store, OD_WRITER_SINK, &dead, &n_dead), ODSYNC_OK);
    ck_assert_int_eq((int)n_dead, 2);
    for (i = 0; i < n_dead; i++) {
        ck_assert_int_eq(dead[i].last_class, ODSYNC_PERMANENT);
        ck_assert_int_eq(dead[i].attempts, 1); /* the one request, no retry */
        ck_assert_ptr_null(strstr(dead[i].detail, "secret-ish"));
        ck_assert_ptr_null(strstr(dead[i].detail, "987654"));
        saw_mode |= strstr(dead[i].detail, "Mode_") != NULL;
        saw_pat |= strstr(dead[i].detail, "PatNum") != NULL;
    }
    outbox_dead_free(dead, n_dead);
    ck_assert(saw_mode && saw_pat);
    ck_assert_int_eq(count_note(5, "odsync: secret-ish note 1", NULL), 0);
}
END_TEST

/* Wiring: no built-in sink without commlog write-back; a configured sink may not take its
 * name; `odsync run` starts a worker for it like for any sink. */
START_TEST(runtime_and_daemon_wiring)
{
    const char *extra = "\"sinks\": {\"opendental\": {\"plugin\": \"rest\", \"base_url\":"
                        " \"http://127.0.0.1:9\", \"token\": \"${W_OD_DEV}\"}}";
    char err[512] = "", *odsync = tu_build_path("odsync"), *cfg_path, *text, *out = NULL;
    const char *argv[] = {odsync, "run", "--deliver-only", "--until-idle", "--config", NULL, NULL};
    const char *st_argv[] = {odsync, "status", "--json", "--config", NULL, NULL};
    char **offices = NULL;
    size_t n = 0;
    cJSON *j;
    struct runtime_sink *rs;

    ck_assert_int_eq(open_rt(0, "", err, sizeof(err)), ODSYNC_OK);
    ck_assert_ptr_null(runtime_find_sink(rt, OD_WRITER_SINK));
    ck_assert_int_eq((int)rt->n_sinks, 0);
    runtime_close(rt);
    rt = NULL;

    ck_assert_int_eq(open_rt(1, extra, err, sizeof(err)), ODSYNC_CONFIG);
    ck_assert_msg(strstr(err, "reserved for the built-in Open Dental commlog writer") != NULL, "%s",
                  err);
    rt = NULL;

    rs = open_writer();
    ck_assert_int_eq(runtime_sink_offices(rt, rs, &offices, &n), ODSYNC_OK);
    ck_assert_int_eq((int)n, 1);
    ck_assert_str_eq(offices[0], "main-st");
    util_free(offices);
    ck_assert_int_eq(enqueue(6, "Text", "odsync: via the daemon", "run-1"), ODSYNC_OK);
    runtime_close(rt);
    rt = NULL;

    text = config_text(1, "");
    cfg_path = tu_write_file(dir, "odsync.json", text);
    free(text);
    argv[5] = cfg_path;
    st_argv[4] = cfg_path;
    ck_assert_int_eq(tu_run(argv, NULL, NULL, NULL), 0);
    ck_assert_int_eq(count_note(6, "odsync: via the daemon", NULL), 1);
    ck_assert_int_eq(tu_run(st_argv, NULL, &out, NULL), 0);
    j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_nonnull(strstr(out, "\"opendental\""));
    cJSON_Delete(j);
    free(out);
    free(cfg_path);
    free(odsync);
}
END_TEST

static Suite *writeback_suite(void)
{
    Suite *s = suite_create("writeback");
    TCase *tc = tcase_create("writeback");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, commlog_written_exactly_once);
    tcase_add_test(tc, keys_and_arguments);
    tcase_add_test(tc, auth_pauses_without_dead_letters);
    tcase_add_test(tc, server_error_is_retried);
    tcase_add_test(tc, bad_request_is_a_dead_letter);
    tcase_add_test(tc, runtime_and_daemon_wiring);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(writeback_suite)
