/*
 * test_spec.c: the Twilio and SendGrid connectors' real requests checked against the
 * providers' official OpenAPI documents. Each document is served by Prism
 * (@stoplight/prism-cli 5.14.2, a request-validating mock: `prism mock --errors`), a real
 * process on loopback; the real twilio.so and sendgrid.so, loaded by runtime_open, are
 * pointed at it (base_url) and deliver message records built by core/rules.c from a
 * practice served by the Open Dental simulator, through the delivery engine and the send
 * guard, with the settings that change the request's shape (From or a Messaging Service,
 * auth token or API key, StatusCallback; dynamic template or HTML content, unsubscribe
 * groups, one-click headers, reply-to).
 *
 * Every request must validate: Prism logs "The request passed the validation rules" for it
 * (and answers 2xx); an invalid one would get 422 (Twilio) or the spec's declared 400
 * (SendGrid, details in sl-violations), which the plugins report PERMANENT — so the outbox
 * rows must all be done, none dead. A negative control shows the validator bites: raw
 * requests missing a required member are refused.
 *
 * Prism comes from `make check` (build/tools, env ODSYNC_PRISM); the test fails, never
 * skips, when it is missing. The specs: $ODSYNC_SPECS, else ../shared/specs beside the
 * source tree, else the copies vendored in tests/spec/. Prism's suppression endpoints are
 * not in sendgrid_mail_v3.json, so check_suppressions stays off here.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "campaign.h"
#include "config.h"
#include "deliver.h"
#include "guard.h"
#include "http_client.h"
#include "ingest.h"
#include "log.h"
#include "od_client.h"
#include "odsim_harness.h"
#include "odtruth.h"
#include "project.h"
#include "runtime.h"
#include "store.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#define OD_DEV      "NFF6i0KrXrxDkZHt"
#define OD_CUST     "VzkmZEaUWOjnQX2z"
#define TW_SID      "AC0d4e6f8a1b2c3d4e5f60718293a4b5c6"
#define TW_TOKEN    "spec-twilio-auth-token"
#define TW_KEY_SID  "SK0d4e6f8a1b2c3d4e5f60718293a4b5c6"
#define TW_SERVICE  "MG0d4e6f8a1b2c3d4e5f60718293a4b5c6"
#define SG_KEY      "SG.spec-test-key"
#define TEMPLATE    "d-0123456789abcdef0123456789abcdef"
#define OFFICE      "main-st"
#define DAY1        "2026-12-01"
#define DAY2        "2026-12-02"
#define MIN_MS      60000LL
#define STEP_MS     (15 * MIN_MS)
#define PRISM_START 90000 /* ms: Twilio's document takes Prism ~5-10 s to load */
#define LISTENING   "Prism is listening on http://127.0.0.1:"
#define PASSED      "The request passed the validation rules"
#define FAILED      "Request did not pass the validation rules"
#define RECEIVED    "Request received"
#define ANSWERED    "> Responding with \""
#define TERMINATED  "Request terminated with error"

/* The first day's sinks: From + auth token + StatusCallback; template, groups, headers. */
#define SINKS_A                                                                                    \
    "\"sms\": {\"plugin\": \"twilio\", \"account_sid\": \"${S_TW_SID}\","                          \
    " \"auth_token\": \"${S_TW_TOKEN}\", \"from\": \"+15550100000\","                              \
    " \"status_callback_url\": \"https://odsync.example.com/webhooks/twilio\","                    \
    " \"base_url\": \"%s\"},"                                                                      \
    " \"email\": {\"plugin\": \"sendgrid\", \"api_key\": \"${S_SG_KEY}\","                         \
    " \"from_email\": \"reminders@mainst.example.com\", \"from_name\": \"Main Street Dental\","    \
    " \"reply_to\": \"frontdesk@mainst.example.com\","                                             \
    " \"asm_groups\": \"recall=12345,reactivation=12346,review=12347\","                           \
    " \"groups_to_display\": \"12345,12346,12347\","                                               \
    " \"list_unsubscribe_url\": \"https://mainst.example.com/unsubscribe/{office}/{key}\","        \
    " \"list_unsubscribe_mailto\": \"unsubscribe@mainst.example.com\","                            \
    " \"base_url\": \"%s\"}"
/* The second day's: a Messaging Service + API key, no callback; no template, groups or
 * headers. */
#define SINKS_B                                                                                    \
    "\"sms\": {\"plugin\": \"twilio\", \"account_sid\": \"${S_TW_SID}\","                          \
    " \"api_key_sid\": \"" TW_KEY_SID "\", \"api_key_secret\": \"${S_TW_TOKEN}\","                 \
    " \"messaging_service_sid\": \"" TW_SERVICE "\", \"base_url\": \"%s\"},"                       \
    " \"email\": {\"plugin\": \"sendgrid\", \"api_key\": \"${S_SG_KEY}\","                         \
    " \"from_email\": \"reminders@mainst.example.com\", \"base_url\": \"%s\"}"
/* Every campaign; reactivation a message a day, its emails through a dynamic template. */
#define CAMPAIGNS                                                                                  \
    "\"recall\": {}, \"review\": {}, \"reactivation\": {\"max_messages\": 3,"                      \
    " \"spacing_days\": 1, \"email_template_id\": \"" TEMPLATE "\"}"

struct prism {
    pid_t pid;
    int port;
    char url[64];
    char log[512]; /* its stdout and stderr */
};

static char *dir;
static pid_t sim_pid = -1;
static int sim_port;
static struct prism tw = {.pid = -1}, sg = {.pid = -1};
static struct runtime *rt;
static struct deliver_gate gate;
static FILE *devnull;
static int64_t clock_ms;

static int64_t test_clock(void)
{
    return clock_ms;
}

/* ---- Prism -------------------------------------------------------------------------------- */

/* The Prism executable: $ODSYNC_PRISM, else where `make check` installs it. Fails the test
 * (never skips) when it is not there. Caller frees. */
static char *prism_path(void)
{
    const char *env = getenv("ODSYNC_PRISM");
    char *path = env != NULL && env[0] != '\0' ? strdup(env)
                                               : tu_src_path("build/tools/node_modules/.bin/prism");
    ck_assert_ptr_nonnull(path);
    ck_assert_msg(access(path, X_OK) == 0,
                  "Prism is missing (%s: %s). `make check` installs @stoplight/prism-cli@5.14.2 "
                  "into build/tools with npm (contrib/install-deps.sh installs npm).",
                  path, strerror(errno));
    return path;
}

/* 1 when path is a readable regular file. */
static int readable(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, R_OK) == 0;
}

/* The path of the OpenAPI document name: $ODSYNC_SPECS/name, else ../shared/specs/name
 * beside the source tree, else tests/spec/name (vendored). Caller frees. */
static char *spec_path(const char *name)
{
    const char *env = getenv("ODSYNC_SPECS");
    char rel[128], tried[1024] = "";
    char *path = NULL;
    size_t n = 0;
    int i;
    for (i = 0; i < 3; i++) {
        if (i == 0 && (env == NULL || env[0] == '\0'))
            continue;
        if (i == 0) {
            n = strlen(env) + strlen(name) + 2;
            path = malloc(n);
            ck_assert_ptr_nonnull(path);
            snprintf(path, n, "%s/%s", env, name);
        } else {
            snprintf(rel, sizeof(rel), "%s%s", i == 1 ? "../shared/specs/" : "tests/spec/", name);
            path = tu_src_path(rel);
        }
        if (readable(path))
            return path;
        n = strlen(tried);
        snprintf(tried + n, sizeof(tried) - n, " %s", path);
        free(path);
    }
    ck_abort_msg("OpenAPI document %s not found; tried:%s", name, tried);
    return NULL;
}

/* A loopback port that was free a moment ago. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Start `prism mock --errors` for the document name into p and wait for its "listening"
 * line; a port taken meanwhile means another try. */
static void prism_start(struct prism *p, const char *name)
{
    char *prism = prism_path(), *spec = spec_path(name), port[16], want[96], *log;
    const char *argv[] = {prism, "mock", "-h", "127.0.0.1", "-p", port, "--errors", spec, NULL};
    int tries, waited, status;

    snprintf(p->log, sizeof(p->log), "%s/prism-%s.log", dir, name);
    for (tries = 0; tries < 3; tries++) {
        p->port = free_port();
        snprintf(port, sizeof(port), "%d", p->port);
        snprintf(want, sizeof(want), LISTENING "%d", p->port);
        unlink(p->log);
        p->pid = tu_spawn(argv, p->log);
        for (waited = 0; waited < PRISM_START; waited += 100) {
            log = tu_read_file(p->log);
            if (log != NULL && strstr(log, want) != NULL) {
                free(log);
                snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
                free(prism);
                free(spec);
                return;
            }
            free(log);
            if (waitpid(p->pid, &status, WNOHANG) == p->pid)
                break; /* exited: the port was taken, or worse (its log says) */
            usleep(100000);
        }
        if (waited >= PRISM_START)
            break;
        p->pid = -1;
    }
    log = tu_read_file(p->log);
    ck_abort_msg("Prism did not start for %s: %.600s", name, log ? log : "(no output)");
}

static void prism_stop(struct prism *p)
{
    if (p->pid > 0)
        tu_stop(p->pid);
    p->pid = -1;
}

/* Prism's count of log lines containing what, once every request it received has been
 * validated and answered (its log is written as it goes). */
static int prism_count(const struct prism *p, const char *what)
{
    int waited, n = 0;
    for (waited = 0; waited <= 10000; waited += 50) {
        char *log = tu_read_file(p->log);
        int received, checked, answered;
        ck_assert_ptr_nonnull(log);
        received = tu_count(log, RECEIVED);
        checked = tu_count(log, PASSED) + tu_count(log, FAILED);
        answered = tu_count(log, ANSWERED) + tu_count(log, TERMINATED);
        if (received == checked && received == answered) {
            n = tu_count(log, what);
            free(log);
            return n;
        }
        free(log);
        usleep(50000);
    }
    ck_abort_msg("Prism's log did not settle: %s", p->log);
    return n;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void setup(void)
{
    dir = tu_mkdtemp();
    setenv("S_OD_DEV", OD_DEV, 1);
    setenv("S_OD_CUST", OD_CUST, 1);
    setenv("S_TW_SID", TW_SID, 1);
    setenv("S_TW_TOKEN", TW_TOKEN, 1);
    setenv("S_SG_KEY", SG_KEY, 1);
    http_global_init();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
}

static void teardown(void)
{
    runtime_close(rt);
    rt = NULL;
    prism_stop(&tw);
    prism_stop(&sg);
    if (sim_pid > 0)
        tu_stop(sim_pid);
    sim_pid = -1;
    od_client_global_cleanup();
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
    log_shutdown();
    fclose(devnull);
}

/* ---- odsync --------------------------------------------------------------------------------- */

/* (Re)open the runtime with the sinks sinks_fmt (two %s: the Twilio and SendGrid base URLs),
 * office main-st from odsim with SMS and email routed to "sms" and "email". */
static void open_rt(const char *sinks_fmt)
{
    char sinks[4096], *text = malloc(16384), err[512] = "";
    struct config *cfg = NULL;
    ck_assert_ptr_nonnull(text);
    runtime_close(rt);
    rt = NULL;
    snprintf(sinks, sizeof(sinks), sinks_fmt, tw.url, sg.url);
    snprintf(
        text, 16384,
        "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],\n"
        " \"log\": {\"level\": \"error\"},\n"
        " \"delivery\": {\"max_attempts\": 3, \"backoff_base_ms\": 1, \"backoff_cap_ms\": 1},\n"
        " \"sinks\": {%s},\n"
        " \"campaigns\": {" CAMPAIGNS "},\n"
        " \"policy\": {\"quiet_hours\": [\"00:00\", \"24:00\"],"
        " \"review_link\": \"https://g.page/r/main-street/review\","
        " \"booking_link\": \"https://mainst.example.com/book\"},\n"
        " \"offices\": [{\"id\": \"" OFFICE "\", \"name\": \"Main Street Dental\","
        " \"phone\": \"(555) 010-1000\", \"timezone\": \"America/Chicago\",\n"
        "   \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
        " \"developer_key\": \"${S_OD_DEV}\", \"customer_key\": \"${S_OD_CUST}\","
        " \"tier\": \"paid\", \"min_interval_ms\": 0},\n"
        "   \"routes\": {\"sms\": [\"sms\"], \"email\": [\"email\"]}}]}\n",
        dir, tu_build_dir(), sinks, sim_port);
    ck_assert_msg(config_parse(text, strlen(text), "spec.json", &cfg, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "config: %s", err);
    free(text);
    ck_assert_msg(runtime_open(cfg, 0, &rt, err, sizeof(err)) == ODSYNC_OK, "runtime_open: %s",
                  err);
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
    guard_gate(&gate, rt->cfg);
}

static const struct config_office *office(void)
{
    const struct config_office *o = config_find_office(rt->cfg, OFFICE);
    ck_assert_ptr_nonnull(o);
    return o;
}

/* Set the injected clock and odsim's to the office-local time local. */
static void at(const char *local)
{
    int64_t naive = 0, utc = 0;
    char body[96];
    ck_assert_int_eq(tz_parse_local(local, &naive), ODSYNC_OK);
    ck_assert_int_eq(tz_local_to_utc(office()->engage->tz, naive, 0, &utc), ODSYNC_OK);
    clock_ms = utc * 1000;
    snprintf(body, sizeof(body), "{\"set\": \"%s\"}", local);
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/clock", body));
}

/* A day: ingest and project in the morning, then deliver sink name every 15 minutes until
 * the evening. */
static void day(const char *date, const char *sink)
{
    char when[32];
    struct project_stats ps;
    struct od_client *c;
    struct ingest_report rep;
    int64_t end;
    snprintf(when, sizeof(when), "%s 07:00:00", date);
    at(when);
    c = od_client_create(office());
    ck_assert_ptr_nonnull(c);
    memset(&rep, 0, sizeof(rep));
    ck_assert_int_eq(ingest_office(rt->store, office(), c, NULL, &rep), ODSYNC_OK);
    od_client_destroy(c);
    snprintf(when, sizeof(when), "%s 08:00:00", date);
    at(when);
    ck_assert_int_eq(project_office_at(rt->store, office(), clock_ms, &ps), ODSYNC_OK);
    for (end = clock_ms + 12 * 60 * MIN_MS; clock_ms <= end; clock_ms += STEP_MS) {
        struct runtime_sink *rs = runtime_find_sink(rt, sink);
        struct deliver_policy pol;
        struct deliver_stats ds;
        memset(&ds, 0, sizeof(ds));
        deliver_policy_from_config(&pol, &rs->cfg->delivery);
        pol.gate = &gate;
        pol.clock = test_clock;
        ck_assert_int_eq(deliver_sink(rt->store, rs->sink, &pol, &ds), ODSYNC_OK);
    }
}

/* The first column of the first row of sql (one text parameter, NULL = unbound). */
static int64_t sql_int(const char *sql, const char *p1)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store), sql, -1, &s, NULL), SQLITE_OK);
    if (p1 != NULL)
        sqlite3_bind_text(s, 1, p1, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Every outbox row of sink due by now is done (none pending, in flight or dead); returns
 * how many are done. */
static int64_t all_done(const char *sink)
{
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store),
                                        "SELECT COUNT(*) FROM outbox WHERE sink = ?1 AND"
                                        " (state IN ('dead', 'inflight') OR"
                                        " (state = 'pending' AND next_at <= ?2))",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, clock_ms);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int64(s, 0), 0);
    sqlite3_finalize(s);
    return sql_int("SELECT COUNT(*) FROM outbox WHERE sink = ?1 AND state = 'done'", sink);
}

/* Messages of channel the ledger says were sent. */
static int64_t sent(const char *channel)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM messages WHERE channel = '%s' AND state = 'sent'", channel);
    return sql_int(sql, NULL);
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* The Twilio plugin's sends, as odsync makes them on two days with two settings (From +
 * auth token + StatusCallback; Messaging Service + API key), all validate against Twilio's
 * OpenAPI document: one request per message, every one passing, every row done. */
START_TEST(twilio_requests_match_the_spec)
{
    int64_t day1, day2;
    sim_pid = odh_start("300", "11", DAY1 " 07:00:00", NULL, NULL, &sim_port);
    prism_start(&tw, "twilio_api_v2010.json");
    snprintf(sg.url, sizeof(sg.url), "http://127.0.0.1:1"); /* email is not delivered here */

    open_rt(SINKS_A);
    day(DAY1, "sms");
    day1 = sent("sms");
    ck_assert_int_ge(day1, 5);
    ck_assert_int_eq(prism_count(&tw, RECEIVED), day1);
    ck_assert_int_eq(prism_count(&tw, PASSED), day1);
    ck_assert_int_eq(prism_count(&tw, FAILED), 0);
    ck_assert_int_eq(prism_count(&tw, "Responding with \"201\""), day1);

    open_rt(SINKS_B); /* a restart with the other settings */
    day(DAY2, "sms");
    day2 = sent("sms") - day1;
    ck_assert_int_ge(day2, 1);
    ck_assert_int_eq(prism_count(&tw, RECEIVED), day1 + day2);
    ck_assert_int_eq(prism_count(&tw, PASSED), day1 + day2);
    ck_assert_int_eq(prism_count(&tw, FAILED), 0);
    ck_assert_int_ge(all_done("sms"), day1 + day2); /* and a few skipped at send time */
}
END_TEST

/* The SendGrid plugin's mail sends (a dynamic template for reactivation, HTML content for
 * recall and review; with unsubscribe groups, one-click headers and reply-to, then without)
 * all validate against SendGrid's OpenAPI document, and every row is done. */
START_TEST(sendgrid_requests_match_the_spec)
{
    int64_t requests, day1;
    sim_pid = odh_start("300", "11", DAY1 " 07:00:00", NULL, NULL, &sim_port);
    prism_start(&sg, "sendgrid_mail_v3.json");
    snprintf(tw.url, sizeof(tw.url), "http://127.0.0.1:1"); /* SMS is not delivered here */

    open_rt(SINKS_A);
    day(DAY1, "email");
    day1 = sent("email");
    ck_assert_int_ge(day1, 5);
    ck_assert_int_ge(sql_int("SELECT COUNT(*) FROM messages WHERE channel = 'email'"
                             " AND state = 'sent' AND campaign = 'reactivation'",
                             NULL),
                     2); /* the template request, with several personalizations */
    ck_assert_int_ge(sql_int("SELECT COUNT(*) FROM messages WHERE channel = 'email'"
                             " AND state = 'sent' AND campaign <> 'reactivation'",
                             NULL),
                     1); /* content requests */
    requests = prism_count(&sg, RECEIVED);
    ck_assert_int_ge(requests, 2);
    ck_assert_int_lt(requests, day1); /* grouped */
    ck_assert_int_eq(prism_count(&sg, PASSED), requests);
    ck_assert_int_eq(prism_count(&sg, FAILED), 0);
    ck_assert_int_eq(prism_count(&sg, "Responding with \"202\""), requests);

    open_rt(SINKS_B);
    day(DAY2, "email");
    ck_assert_int_gt(sent("email"), day1);
    requests = prism_count(&sg, RECEIVED);
    ck_assert_int_eq(prism_count(&sg, PASSED), requests);
    ck_assert_int_eq(prism_count(&sg, FAILED), 0);
    ck_assert_int_ge(all_done("email"), sent("email"));
}
END_TEST

/* POST url with body and content type ctype (auth: an Authorization value); the response
 * (caller frees with http_response_free). */
static struct odsync_http_response *post(const char *url, const char *ctype, const char *auth,
                                         const char *body)
{
    struct odsync_http_header h[] = {{"Content-Type", ctype}, {"Authorization", auth}};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url,
                                      .headers = h,
                                      .header_count = 2,
                                      .body = body,
                                      .body_len = strlen(body),
                                      .timeout_ms = 30000};
    struct odsync_http_response *r = NULL;
    struct http_client *c = http_client_create();
    ck_assert_ptr_nonnull(c);
    http_client_perform(c, &req, &r);
    http_client_destroy(c);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* The validator bites: requests like the plugins' but missing a required member, or with a
 * malformed sid, are refused — Twilio's 422 (no 400 is declared), SendGrid's declared 400
 * with the violation in sl-violations — and a correct one beside them passes. */
START_TEST(the_validator_refuses_invalid_requests)
{
    char url[160];
    const char *basic =
        "Basic QUMwZDRlNmY4YTFiMmMzZDRlNWY2MDcxODI5M2E0YjVjNjpzcGVjLXR3aWxpby1hdXRoLXRva2Vu";
    const char *bearer = "Bearer " SG_KEY;
    const char *mail_ok = "{\"personalizations\": [{\"to\": [{\"email\": \"a@example.com\"}],"
                          " \"custom_args\": {\"odsync_key\": \"od:main-st:apt:1:review\"}}],"
                          " \"from\": {\"email\": \"reminders@mainst.example.com\"},"
                          " \"template_id\": \"" TEMPLATE "\"}";
    const char *mail_no_from =
        "{\"personalizations\": [{\"to\": [{\"email\": \"a@example.com\"}]}],"
        " \"template_id\": \"" TEMPLATE "\"}";
    struct odsync_http_response *r;
    const char *v;

    prism_start(&tw, "twilio_api_v2010.json");
    prism_start(&sg, "sendgrid_mail_v3.json");
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/" TW_SID "/Messages.json", tw.url);

    r = post(url, "application/x-www-form-urlencoded", basic,
             "To=%2B15550100123&From=%2B15550100000&Body=Main%20Street%20Dental");
    ck_assert_int_eq(r->status, 201);
    http_response_free(r);
    r = post(url, "application/x-www-form-urlencoded", basic,
             "From=%2B15550100000&Body=Main%20Street%20Dental");
    ck_assert_int_eq(r->status, 422);
    ck_assert_ptr_nonnull(strstr(r->body, "required property 'To'"));
    http_response_free(r);
    r = post(url, "application/x-www-form-urlencoded", basic,
             "To=%2B15550100123&MessagingServiceSid=MG123&Body=Main%20Street%20Dental");
    ck_assert_int_eq(r->status, 422);
    ck_assert_ptr_nonnull(strstr(r->body, "MessagingServiceSid"));
    http_response_free(r);
    ck_assert_int_eq(prism_count(&tw, PASSED), 1);
    ck_assert_int_eq(prism_count(&tw, FAILED), 2);

    snprintf(url, sizeof(url), "%s/v3/mail/send", sg.url);
    r = post(url, "application/json", bearer, mail_ok);
    ck_assert_int_eq(r->status, 202);
    http_response_free(r);
    r = post(url, "application/json", bearer, mail_no_from);
    ck_assert_int_eq(r->status, 400);
    v = http_response_header(r, "sl-violations");
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_nonnull(strstr(v, "required property 'from'"));
    http_response_free(r);
    ck_assert_int_eq(prism_count(&sg, PASSED), 1);
    ck_assert_int_eq(prism_count(&sg, FAILED), 1);
}
END_TEST

static Suite *spec_suite(void)
{
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("spec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, twilio_requests_match_the_spec);
    tcase_add_test(tc, sendgrid_requests_match_the_spec);
    tcase_add_test(tc, the_validator_refuses_invalid_requests);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(spec_suite)
