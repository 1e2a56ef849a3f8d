/*
 * test_dashboard_ui: the dashboard of the real `odsync run` daemon in a real headless
 * browser. The test prepares a store through the real APIs (records, outbox deliveries and
 * dead letters, a paused sink, the send ledger, opt-outs), starts the daemon on it
 * (listen 127.0.0.1:0), then runs tests/ui/dashboard.mjs — Debian's chromium driven by
 * playwright-core from build/tools — which signs in, compares what the page renders with
 * what was put in the store, checks the refusals, clicks a dead letter's Retry and saves a
 * screenshot to build/test-artifacts/dashboard.png. Missing tools fail the test, naming the
 * command that installs them; nothing is skipped.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"
#include "log.h"
#include "outbox.h"
#include "records.h"
#include "sink_state.h"
#include "consent.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

#define TOKEN  "ui-admin-token-5Rk9"
#define OFFICE "main-st"

static char *dir;
static FILE *devnull;

static void setup(void)
{
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
}

static void teardown(void)
{
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* The first of paths that is executable, or NULL. */
static const char *first_executable(const char *const *paths)
{
    for (; *paths != NULL; paths++)
        if (access(*paths, X_OK) == 0)
            return *paths;
    return NULL;
}

/* ---- the store, through the real APIs -------------------------------------------------- */

struct rec {
    const char *key;
    int kind;
    const char *body;
};

static const struct rec recs[] = {
    {"od:main-st:1", 1,
     "{\"patnum\":1,\"first_name\":\"Ann\",\"email\":\"ann@example.com\","
     "\"recall_stage\":\"due_soon\",\"reactivation\":false}"},
    {"od:main-st:2", 1,
     "{\"patnum\":2,\"phone_mobile\":\"+15552010002\",\"recall_stage\":\"due\","
     "\"reactivation\":false}"},
    {"od:main-st:3", 1, "{\"patnum\":3,\"recall_stage\":\"overdue_30\",\"reactivation\":false}"},
    {"od:main-st:4", 1, "{\"patnum\":4,\"recall_stage\":\"overdue_90\",\"reactivation\":false}"},
    {"od:main-st:5", 1, "{\"patnum\":5,\"recall_stage\":\"scheduled\",\"reactivation\":false}"},
    {"od:main-st:6", 1, "{\"patnum\":6,\"recall_stage\":null,\"reactivation\":true}"},
    {"od:main-st:7", 1, "{\"patnum\":7,\"recall_stage\":null,\"reactivation\":false}"},
    {"od:main-st:recall:101", 2, "{\"subject\":\"Recall due\",\"status\":\"open\"}"},
    {"od:main-st:recall:102", 2, "{\"subject\":\"Recall due\",\"status\":\"open\"}"},
    {NULL, 0, NULL}};

static int records_tx(struct store *s, void *arg)
{
    const struct rec *r = arg;
    int changed = 0, rc = ODSYNC_OK;
    int64_t version = 0;
    for (; rc == ODSYNC_OK && r->key != NULL; r++) {
        rc = records_upsert(s, OFFICE, r->key, r->kind, r->body, &changed, &version);
        if (rc == ODSYNC_OK)
            rc = outbox_enqueue(s, "crm", OFFICE, r->key, r->kind, version, r->body);
    }
    return rc;
}

struct msg {
    const char *key;
    int64_t patnum;
    const char *campaign, *channel, *address;
    int state;
    const char *reason;
};

static const struct msg msgs[] = {
    {"od:main-st:recall:102:due", 2, "recall", "sms", "+15552010002", LEDGER_SENT, NULL},
    {"od:main-st:recall:105:due", 5, "recall", "sms", "+15552010005", LEDGER_SENT, NULL},
    {"od:main-st:recall:103:overdue_30", 3, "recall", "email", "cy@example.com", LEDGER_SKIPPED,
     "opted_out"},
    {"od:main-st:6:reactivation:1", 6, "reactivation", "sms", "+15552010006", LEDGER_HELD,
     "quiet_hours"},
    {"od:main-st:apt:77:review", 7, "review", "email", "gus@example.com", LEDGER_QUEUED, NULL},
    {"od:main-st:apt:78:review", 4, "review", "sms", "+15552010004", LEDGER_FAILED,
     "provider refused +15552010004"},
    {NULL, 0, NULL, NULL, NULL, 0, NULL}};

static int messages_tx(struct store *s, void *arg)
{
    const struct msg *m = arg;
    int64_t now = util_now_ms();
    int created = 0, rc = ODSYNC_OK;
    for (; rc == ODSYNC_OK && m->key != NULL; m++) {
        struct ledger_entry e;
        memset(&e, 0, sizeof(e));
        e.office = (char *)OFFICE;
        e.key = (char *)m->key;
        e.patnum = m->patnum;
        e.campaign = (char *)m->campaign;
        e.channel = (char *)m->channel;
        e.address = (char *)m->address;
        e.state = m->state == LEDGER_HELD || m->state == LEDGER_SKIPPED ? m->state : LEDGER_QUEUED;
        e.due_at = e.created_at = now;
        e.hold_until = m->state == LEDGER_HELD ? now + 3600000 : 0;
        e.reason = (char *)m->reason;
        rc = ledger_create(s, &e, &created);
        if (rc == ODSYNC_OK && m->state == LEDGER_SENT)
            rc = ledger_set(s, OFFICE, m->key, LEDGER_SENDING, 0, NULL, NULL, now);
        if (rc == ODSYNC_OK && (m->state == LEDGER_SENT || m->state == LEDGER_FAILED))
            rc = ledger_set(s, OFFICE, m->key, m->state, 0,
                            m->state == LEDGER_SENT ? "SM0001" : NULL, m->reason, now);
    }
    return rc;
}

static int consent_tx(struct store *s, void *arg)
{
    int changed = 0, rc;
    (void)arg;
    rc = consent_opt_out(s, OFFICE, "sms", "+15552010003", "*", "twilio", "STOP", util_now_ms(),
                         &changed);
    if (rc == ODSYNC_OK)
        rc = consent_opt_out(s, OFFICE, "email", "dee@example.com", "*", "sendgrid", "unsubscribe",
                             util_now_ms(), &changed);
    return rc;
}

/* 9 records; crm: 3 delivered, 2 dead letters, 4 pending, paused by a rate limit for a day
 * (kept across the daemon's start, so its worker leaves the rows alone); today's messages:
 * 2 sent, 1 queued, 1 held, 1 skipped, 1 failed; 2 opt-outs. */
static void fill(const char *path)
{
    struct outbox_item *items = NULL;
    struct store *st = NULL;
    size_t n = 0, i;
    char err[512];
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    ck_assert_int_eq(store_tx(st, records_tx, (void *)recs), ODSYNC_OK);
    ck_assert_int_eq(outbox_claim(st, "crm", util_now_ms(), 5, &items, &n), ODSYNC_OK);
    ck_assert_uint_eq(n, 5);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(outbox_complete(st, &items[i], "remote-1"), ODSYNC_OK);
    ck_assert_int_eq(
        outbox_dead(st, &items[3], ODSYNC_PERMANENT, "HTTP 400: email ann@example.com invalid"),
        ODSYNC_OK);
    ck_assert_int_eq(outbox_dead(st, &items[4], ODSYNC_PERMANENT, "HTTP 422: unknown field"),
                     ODSYNC_OK);
    outbox_items_free(items, n);
    ck_assert_int_eq(sink_state_pause(st, "crm", util_now_ms() + 86400000, ODSYNC_RATE_LIMITED,
                                      "HTTP 429 from the CRM"),
                     ODSYNC_OK);
    ck_assert_int_eq(store_tx(st, messages_tx, (void *)msgs), ODSYNC_OK);
    ck_assert_int_eq(store_tx(st, consent_tx, NULL), ODSYNC_OK);
    store_close(st);
}

static const char expect_json[] =
    "{\"tiles\": {\"records\": 9, \"outbox_pending\": 4, \"outbox_inflight\": 0,"
    "  \"dead_letters\": 2, \"sent_today\": 2, \"held_today\": 1, \"skipped_today\": 1,"
    "  \"opt_outs\": 2},"
    " \"sinks\": {\"crm\": {\"pending\": 4, \"inflight\": 0, \"done\": 3, \"dead\": 2}},"
    " \"offices\": {\"main-st\": {"
    "   \"messages\": {\"sent\": 2, \"queued\": 1, \"held\": 1, \"skipped\": 1, \"failed\": 1},"
    "   \"funnel\": {\"due\": 2, \"reminded\": 2, \"scheduled\": 1, \"overdue\": 2},"
    "   \"canonical\": {\"records\": 9}}},"
    " \"dead_letters\": 2, \"retry_sink\": \"crm\","
    " \"never_shown\": [\"ann@example.com\", \"cy@example.com\", \"gus@example.com\","
    "   \"dee@example.com\", \"+15552010002\", \"+15552010004\", \"5552010\"]}";

/* The status of GET path on the daemon (raw socket, Connection: close). */
static int get_status(int port, const char *path)
{
    struct sockaddr_in a;
    char req[256], buf[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0), n, status = -1;
    ssize_t got;
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (got > 0) {
        buf[got] = '\0';
        if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
            status = -1;
    }
    return status;
}

START_TEST(dashboard_in_chromium)
{
    static const char *const browsers[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", NULL};
    static const char *const nodes[] = {"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs",
                                        NULL};
    const char *chromium = getenv("ODSYNC_CHROMIUM"), *node = first_executable(nodes);
    char *tools = tu_src_path("build/tools"), *script = tu_src_path("tests/ui/dashboard.mjs");
    char *shot = tu_src_path("build/test-artifacts/dashboard.png"), *artifacts;
    char *odsync = tu_build_path("odsync"), *cfg, *out = NULL, *errout = NULL, *png;
    char text[4096], path[600], logpath[600], pw[700], url[64];
    char env_tools[800], env_chromium[300], env_expect[2048], env_shot[800];
    const char *argv[] = {odsync, "run", "--config", NULL, NULL};
    const char *node_argv[] = {NULL, NULL, NULL, NULL, NULL};
    const char *env[] = {env_tools, env_chromium, env_expect, env_shot, NULL};
    struct outbox_counts oc;
    struct store *st = NULL;
    sqlite3_stmt *s = NULL;
    long long retried = 0;
    const char *line;
    int port = 0, rc;
    pid_t pid;

    if (chromium == NULL || access(chromium, X_OK) != 0)
        chromium = first_executable(browsers);
    ck_assert_msg(chromium != NULL, "chromium is not installed (looked for /usr/bin/chromium and "
                                    "/usr/bin/chromium-browser): run contrib/install-deps.sh, or "
                                    "apt-get install chromium");
    ck_assert_msg(node != NULL, "node is not installed: run contrib/install-deps.sh");
    snprintf(pw, sizeof(pw), "%s/node_modules/playwright-core/package.json", tools);
    ck_assert_msg(access(pw, R_OK) == 0,
                  "%s is missing: `make check` installs playwright-core into build/tools "
                  "(or: make build/tools/node_modules/playwright-core/package.json)",
                  pw);

    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    fill(path);
    setenv("UI_ADMIN", TOKEN, 1);
    setenv("UI_CRM", "crm-token", 1);
    setenv("UI_OD_DEV", "dev-key", 1);
    setenv("UI_OD_CUST", "cust-key", 1);
    snprintf(text, sizeof(text),
             "{\"store\": \"%s\", \"plugin_dirs\": [\"%s/plugins\"],"
             " \"listen\": \"127.0.0.1:0\", \"admin_token\": \"${UI_ADMIN}\","
             " \"log\": {\"level\": \"info\"},"
             " \"sinks\": {\"crm\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:9\","
             "   \"token\": \"${UI_CRM}\"}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main Street Dental\","
             "   \"timezone\": \"America/Chicago\", \"opendental\": {\"base_url\":"
             "   \"http://127.0.0.1:9/api/v1\", \"tier\": \"paid\", \"sync_interval_s\": 3600,"
             "   \"developer_key\": \"${UI_OD_DEV}\", \"customer_key\": \"${UI_OD_CUST}\"},"
             "   \"routes\": {\"contact\": [\"crm\"], \"task\": [\"crm\"]}}]}\n",
             path, tu_build_dir());
    cfg = tu_write_file(dir, "odsync.json", text);
    argv[3] = cfg;
    snprintf(logpath, sizeof(logpath), "%s/odsync.log", dir);
    pid = tu_spawn_server(argv, logpath, &port);

    /* the dashboard shares the listener with the other routes */
    ck_assert_int_eq(get_status(port, "/healthz"), 200);
    ck_assert_int_eq(get_status(port, "/readyz"), 200);
    ck_assert_int_eq(get_status(port, "/api/dashboard"), 401);
    ck_assert_int_eq(get_status(port, "/api/od/events/main-st"), 405); /* still the events' */

    artifacts = tu_src_path("build/test-artifacts");
    mkdir(artifacts, 0755);
    free(artifacts);
    unlink(shot);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    snprintf(env_tools, sizeof(env_tools), "ODSYNC_TOOLS=%s", tools);
    snprintf(env_chromium, sizeof(env_chromium), "ODSYNC_CHROMIUM=%s", chromium);
    snprintf(env_expect, sizeof(env_expect), "ODSYNC_UI_EXPECT=%s", expect_json);
    snprintf(env_shot, sizeof(env_shot), "ODSYNC_UI_SCREENSHOT=%s", shot);
    node_argv[0] = node;
    node_argv[1] = script;
    node_argv[2] = url;
    node_argv[3] = TOKEN;
    rc = tu_run(node_argv, env, &out, &errout);
    if (rc != 0) {
        char *log = tu_read_file(logpath);
        fprintf(stderr, "--- dashboard.mjs stdout\n%s--- stderr\n%s--- odsync log\n%s", out, errout,
                log ? log : "");
        free(log);
    }
    ck_assert_msg(rc == 0, "tests/ui/dashboard.mjs failed (exit %d): %s", rc, errout);

    /* the click reached the store: that dead letter is pending again */
    line = strstr(out, "retried ");
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(sscanf(line, "retried %lld", &retried), 1);
    ck_assert_msg(store_open(path, &st, text, sizeof(text)) == ODSYNC_OK, "%s", text);
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st),
                                        "SELECT state, attempts FROM outbox WHERE id = ?", -1, &s,
                                        NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, retried);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "pending");
    ck_assert_int_eq(sqlite3_column_int(s, 1), 0);
    sqlite3_finalize(s);
    ck_assert_int_eq(outbox_count(st, "crm", &oc), ODSYNC_OK);
    ck_assert_int_eq(oc.dead, 1);
    ck_assert_int_eq(oc.pending, 5);
    store_close(st);

    /* the screenshot is a PNG */
    png = tu_read_file(shot);
    ck_assert_msg(png != NULL, "no screenshot at %s", shot);
    ck_assert_int_eq(memcmp(png, "\x89PNG", 4), 0);
    free(png);

    ck_assert_int_eq(tu_stop(pid), 0);
    free(out);
    free(errout);
    free(cfg);
    free(odsync);
    free(tools);
    free(script);
    free(shot);
}
END_TEST

static Suite *dashboard_ui_suite(void)
{
    Suite *s = suite_create("dashboard_ui");
    TCase *tc = tcase_create("chromium");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, dashboard_in_chromium);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(dashboard_ui_suite)
