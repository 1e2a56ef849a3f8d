/*
 * test_messaging.c: patient messaging end to end through the real providers' fakes and back.
 * A practice served by the Open Dental simulator (a real process on loopback, ingested with
 * ingest_office) is projected by core/rules.c and core/policy.c at an injected clock; its SMS
 * go through the real twilio.so to contrib/fakes/fake_twilio and its emails through the real
 * sendgrid.so to contrib/fakes/fake_sendgrid (real processes on loopback), delivered by
 * core/deliver.c behind the send guard (core/guard.c). What the providers tell odsync back
 * arrives at odsync's own webhook endpoints (core/webhooks.c on core/http_server.c, served
 * in this process on 127.0.0.1:0): the fakes sign and post inbound STOPs, status callbacks
 * and Event Webhook events exactly as Twilio and SendGrid do, and the consent ledger and the
 * send ledger (real SQLite files) must follow.
 *
 * The sending window is the whole day (quiet_hours 00:00-24:00), so nothing depends on the
 * time of day; odsim's clock follows the injected one. What the providers received is read
 * back from the fakes (fake_twilio GET /_messages and /_state, fake_sendgrid GET /_mail and
 * /_state); what odsync decided from its store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "campaign.h"
#include "config.h"
#include "deliver.h"
#include "guard.h"
#include "http_client.h"
#include "http_server.h"
#include "ingest.h"
#include "ledger.h"
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
#include "webhooks.h"

#define OD_DEV   "NFF6i0KrXrxDkZHt"
#define OD_CUST  "VzkmZEaUWOjnQX2z"
#define TW_SID   "AC7e3a9b1c0000400080000000000000d4"
#define TW_TOKEN "msg-twilio-auth-token-7e3a"
#define SENDER   "+15550100000"
#define SG_KEY   "SG.messaging-test-key-51c2"
#define TEMPLATE "d-5f0c1e2d3b4a59687766554433221100"
#define OFFICE   "main-st"
#define PATIENTS "300"
#define SEED     "11"
#define DAY1     "2026-12-01"
#define DAY2     "2026-12-02"
#define DAY3     "2026-12-03"
#define MIN_MS   60000LL
#define STEP_MS  (15 * MIN_MS)

/* Campaigns: every campaign, reactivation as a fast sequence (a message a day). */
#define CAMPAIGNS_ALL                                                                              \
    "\"recall\": {}, \"reactivation\": {\"max_messages\": 3, \"spacing_days\": 1}, \"review\": {}"
#define ANY_CAMPAIGN "'recall', 'reactivation', 'review'"
/* Reactivation alone, by email only, a message a day. */
#define CAMPAIGNS_EMAIL_SEQUENCE                                                                   \
    "\"reactivation\": {\"max_messages\": 3, \"spacing_days\": 1, \"channels\": [\"email\"]}"
/* Reactivation alone, by email only, through one SendGrid dynamic template. */
#define CAMPAIGNS_EMAIL_TEMPLATE                                                                   \
    "\"reactivation\": {\"channels\": [\"email\"], \"email_template_id\": \"" TEMPLATE "\"}"

static char *dir;
static pid_t sim_pid = -1, tw_pid = -1, sg_pid = -1;
static int sim_port, tw_port, sg_port, hook_port;
static char sg_public_key[256];
static struct http_server *server;
static struct webhooks *hooks; /* set once the runtime is open; the server answers 503 before */
static struct runtime *rt;
static struct deliver_gate gate;
static FILE *devnull;
static int64_t clock_ms; /* the injected clock every delivery pass reads */

/* The delivery policy's clock. */
static int64_t test_clock(void)
{
    return clock_ms;
}

/* The daemon's listener, as core/daemon.c routes it: provider webhooks. */
static void serve(void *arg, const struct http_request *req, struct http_reply *reply)
{
    (void)arg;
    if (hooks == NULL)
        http_reply_error(reply, 503, "not ready");
    else
        webhooks_http_handler(hooks, req, reply);
}

/* ---- the fakes --------------------------------------------------------------------------- */

/* method path on the fake at port (admin routes: no auth); the parsed answer, asserting
 * HTTP 200. Caller deletes. */
static cJSON *fake(int port, const char *method, const char *path, const char *body)
{
    return odt_admin(port, method, path, body);
}

/* An integer member of a JSON object (-1 when absent or not a number). */
static int int_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* A string member of a JSON object ("" when absent or not a string). */
static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Percent-encode s for a query string into out. */
static void encode(const char *s, char *out, size_t len)
{
    ck_assert_int_eq(http_url_encode(s, out, len), ODSYNC_OK);
}

/* The SMS fake_twilio stored for phone (its "messages" array detached). Caller deletes. */
static cJSON *twilio_messages_to(const char *phone)
{
    char enc[96], path[160];
    cJSON *got, *list;
    encode(phone, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/_messages?to=%s", enc);
    got = fake(tw_port, "GET", path, NULL);
    list = cJSON_DetachItemFromObject(got, "messages");
    cJSON_Delete(got);
    ck_assert(cJSON_IsArray(list));
    return list;
}

/* fake_twilio's count of API answers carrying Twilio error code (0 when none). */
static int twilio_code_count(const char *code)
{
    cJSON *st = fake(tw_port, "GET", "/_state", NULL);
    const cJSON *by = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "requests"), "by_code");
    int n = int_member(by, code);
    cJSON_Delete(st);
    return n < 0 ? 0 : n;
}

/* fake_twilio's count of stored messages. */
static int twilio_message_count(void)
{
    cJSON *st = fake(tw_port, "GET", "/_state", NULL);
    int n = int_member(cJSON_GetObjectItem(st, "messages"), "count");
    cJSON_Delete(st);
    return n;
}

/* The personalizations fake_sendgrid stored, optionally only those to address (NULL: all);
 * its "mail" array detached. Caller deletes. */
static cJSON *sendgrid_mail(const char *address)
{
    char enc[256], path[320];
    cJSON *got, *list;
    if (address != NULL) {
        encode(address, enc, sizeof(enc));
        snprintf(path, sizeof(path), "/_mail?to=%s", enc);
    } else {
        snprintf(path, sizeof(path), "/_mail");
    }
    got = fake(sg_port, "GET", path, NULL);
    list = cJSON_DetachItemFromObject(got, "mail");
    cJSON_Delete(got);
    ck_assert(cJSON_IsArray(list));
    return list;
}

/* fake_sendgrid's counter /_state.name. */
static int sendgrid_stat(const char *name)
{
    cJSON *st = fake(sg_port, "GET", "/_state", NULL);
    int n = int_member(st, name);
    cJSON_Delete(st);
    return n;
}

/* The URL of odsync's webhook path on this process's listener into out. */
static void hook_url(const char *path, char *out, size_t len)
{
    snprintf(out, len, "http://127.0.0.1:%d%s", hook_port, path);
}

/* fake_twilio: an inbound SMS from phone with text body, posted to odsync's inbound webhook
 * of the office; extra: more members of the request ("" or ", \"unsigned\": true", ...).
 * Returns odsync's HTTP status as the fake saw it. */
static int inbound_sms(const char *phone, const char *body, const char *extra)
{
    char url[128], req[512];
    cJSON *ans;
    int status;
    hook_url("/webhooks/twilio/" OFFICE "/sms", url, sizeof(url));
    snprintf(req, sizeof(req),
             "{\"url\": \"%s\", \"from\": \"%s\", \"to\": \"" SENDER "\", \"body\": \"%s\"%s}", url,
             phone, body, extra);
    ans = fake(tw_port, "POST", "/_inbound", req);
    status = int_member(ans, "status");
    cJSON_Delete(ans);
    return status;
}

/* fake_twilio: a status callback of message sid (posted to the message's StatusCallback);
 * extra as inbound_sms. Returns odsync's HTTP status; its body into response (may be NULL). */
static int status_callback(const char *sid, const char *status, const char *extra, char *response,
                           size_t len)
{
    char req[512];
    cJSON *ans;
    int st;
    snprintf(req, sizeof(req), "{\"sid\": \"%s\", \"status\": \"%s\"%s}", sid, status, extra);
    ans = fake(tw_port, "POST", "/_status", req);
    st = int_member(ans, "status");
    if (response != NULL)
        snprintf(response, len, "%s", str_member(ans, "response"));
    cJSON_Delete(ans);
    return st;
}

/* fake_sendgrid: sign and post events (a JSON array text) to odsync's Event Webhook of the
 * office; extra as inbound_sms. Returns odsync's HTTP status. */
static int sendgrid_events(const char *events, const char *extra)
{
    char url[128], *req;
    size_t n = strlen(events) + 512;
    cJSON *ans;
    int status;
    hook_url("/webhooks/sendgrid/" OFFICE "/events", url, sizeof(url));
    req = malloc(n);
    ck_assert_ptr_nonnull(req);
    snprintf(req, n, "{\"url\": \"%s\", \"events\": %s%s}", url, events, extra);
    ans = fake(sg_port, "POST", "/_events", req);
    status = int_member(ans, "status");
    cJSON_Delete(ans);
    free(req);
    return status;
}

/* ---- fixture ----------------------------------------------------------------------------- */

static void setup(void)
{
    char *twp = tu_build_path("contrib/fakes/fake_twilio");
    char *sgp = tu_build_path("contrib/fakes/fake_sendgrid");
    const char *tw_argv[] = {
        twp,         "--listen", "127.0.0.1:0", "--account-sid", TW_SID, "--auth-token", TW_TOKEN,
        "--numbers", SENDER,     NULL};
    const char *sg_argv[] = {sgp, "--listen", "127.0.0.1:0", "--api-key", SG_KEY, NULL};
    struct http_server_options opt = {.listen = "127.0.0.1:0", .max_body = 1 << 20};
    char err[256] = "";
    cJSON *pk;

    dir = tu_mkdtemp();
    setenv("M_OD_DEV", OD_DEV, 1);
    setenv("M_OD_CUST", OD_CUST, 1);
    setenv("M_TW_SID", TW_SID, 1);
    setenv("M_TW_TOKEN", TW_TOKEN, 1);
    setenv("M_SG_KEY", SG_KEY, 1);
    http_global_init();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
    sim_pid = odh_start(PATIENTS, SEED, DAY1 " 07:00:00", NULL, NULL, &sim_port);
    tw_pid = tu_spawn_server(tw_argv, NULL, &tw_port);
    sg_pid = tu_spawn_server(sg_argv, NULL, &sg_port);
    free(twp);
    free(sgp);
    pk = fake(sg_port, "GET", "/_public_key", NULL);
    snprintf(sg_public_key, sizeof(sg_public_key), "%s", str_member(pk, "public_key"));
    cJSON_Delete(pk);
    ck_assert_int_gt(strlen(sg_public_key), 64);
    ck_assert_msg(http_server_start(&opt, serve, NULL, &server, err, sizeof(err)) == ODSYNC_OK,
                  "http_server_start: %s", err);
    hook_port = http_server_port(server);
}

static void teardown(void)
{
    http_server_stop(server);
    server = NULL;
    webhooks_destroy(hooks);
    hooks = NULL;
    runtime_close(rt);
    rt = NULL;
    int tw_status = tw_pid > 0 ? tu_stop(tw_pid) : 0;
    int sg_status = sg_pid > 0 ? tu_stop(sg_pid) : 0;
    if (sim_pid > 0)
        tu_stop(sim_pid);
    sim_pid = tw_pid = sg_pid = -1;
    od_client_global_cleanup();
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
    log_shutdown();
    fclose(devnull);
    /* Clean exits: under the sanitizers a leak or a memory error in a fake's webhook posting
     * fails here. */
    ck_assert_msg(tw_status == 0, "fake_twilio exit status %d", tw_status);
    ck_assert_msg(sg_status == 0, "fake_sendgrid exit status %d", sg_status);
}

/* ---- the runtime ------------------------------------------------------------------------- */

/* Open the runtime: sink "sms" (twilio.so at fake_twilio, status callbacks to this process's
 * listener), sink "email" (sendgrid.so at fake_sendgrid), office main-st from odsim with its
 * SMS and email routed to them, the given campaigns, a sending window of the whole day, and
 * the webhook secrets of both fakes; then the webhook endpoints on the same store and the
 * send guard. */
static void open_rt(const char *campaigns)
{
    char *text = malloc(16384), err[512] = "";
    struct config *cfg = NULL;
    ck_assert_ptr_nonnull(text);
    snprintf(
        text, 16384,
        "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],\n"
        " \"log\": {\"level\": \"error\"},\n"
        " \"delivery\": {\"max_attempts\": 3, \"backoff_base_ms\": 1, \"backoff_cap_ms\": 1},\n"
        " \"events\": {\"public_url\": \"http://127.0.0.1:%d\"},\n"
        " \"webhooks\": {\"twilio\": {\"auth_token\": \"${M_TW_TOKEN}\"},"
        " \"sendgrid\": {\"public_key\": \"%s\"}},\n"
        " \"sinks\": {\n"
        "  \"sms\": {\"plugin\": \"twilio\", \"account_sid\": \"${M_TW_SID}\","
        " \"auth_token\": \"${M_TW_TOKEN}\", \"from\": \"" SENDER "\","
        " \"status_callback_url\": \"http://127.0.0.1:%d/webhooks/twilio\","
        " \"base_url\": \"http://127.0.0.1:%d\"},\n"
        "  \"email\": {\"plugin\": \"sendgrid\", \"api_key\": \"${M_SG_KEY}\","
        " \"from_email\": \"reminders@mainst.example.com\", \"from_name\": \"Main Street Dental\","
        " \"asm_groups\": \"recall=12345,reactivation=12346,review=12347\","
        " \"list_unsubscribe_url\": \"https://mainst.example.com/unsubscribe/{office}/{key}\","
        " \"base_url\": \"http://127.0.0.1:%d\"}},\n"
        " \"campaigns\": {%s},\n"
        " \"policy\": {\"quiet_hours\": [\"00:00\", \"24:00\"],"
        " \"review_link\": \"https://g.page/r/main-street/review\","
        " \"booking_link\": \"https://mainst.example.com/book\"},\n"
        " \"offices\": [{\"id\": \"" OFFICE "\", \"name\": \"Main Street Dental\","
        " \"phone\": \"(555) 010-1000\", \"timezone\": \"America/Chicago\",\n"
        "   \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
        " \"developer_key\": \"${M_OD_DEV}\", \"customer_key\": \"${M_OD_CUST}\","
        " \"tier\": \"paid\", \"min_interval_ms\": 0},\n"
        "   \"routes\": {\"contact\": [], \"task\": [], \"sms\": [\"sms\"],"
        " \"email\": [\"email\"]}}]}\n",
        dir, tu_build_dir(), hook_port, sg_public_key, hook_port, tw_port, sg_port, campaigns,
        sim_port);
    ck_assert_msg(config_parse(text, strlen(text), "messaging.json", &cfg, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "config: %s", err);
    free(text);
    ck_assert_msg(runtime_open(cfg, 0, &rt, err, sizeof(err)) == ODSYNC_OK, "runtime_open: %s",
                  err);
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
    ck_assert_msg(webhooks_create(rt->cfg, rt->cfg->store, &hooks, err, sizeof(err)) == ODSYNC_OK,
                  "webhooks_create: %s", err);
    guard_gate(&gate, rt->cfg);
}

static const struct config_office *office(void)
{
    const struct config_office *o = config_find_office(rt->cfg, OFFICE);
    ck_assert_ptr_nonnull(o);
    return o;
}

/* The instant (ms) of an office-local "YYYY-MM-DD HH:MM:SS". */
static int64_t local_ms(const char *local)
{
    int64_t naive = 0, utc = 0;
    ck_assert_int_eq(tz_parse_local(local, &naive), ODSYNC_OK);
    ck_assert_int_eq(tz_local_to_utc(office()->engage->tz, naive, 0, &utc), ODSYNC_OK);
    return utc * 1000;
}

/* Set the injected clock and odsim's clock to the office-local time local. */
static void at(const char *local)
{
    char body[96];
    clock_ms = local_ms(local);
    snprintf(body, sizeof(body), "{\"set\": \"%s\"}", local);
    cJSON_Delete(odt_admin(sim_port, "POST", "/_admin/clock", body));
}

/* One ingestion pass of the office from odsim. */
static void ingest(void)
{
    struct od_client *c = od_client_create(office());
    struct ingest_report rep;
    int rc;
    ck_assert_ptr_nonnull(c);
    memset(&rep, 0, sizeof(rep));
    rc = ingest_office(rt->store, office(), c, NULL, &rep);
    od_client_destroy(c);
    ck_assert_msg(rc == ODSYNC_OK, "ingest: %s (%s)", odsync_status_name(rc), rep.detail);
}

/* Project (rules, policy, records, outbox) at the injected clock. */
static void project(void)
{
    struct project_stats ps;
    ck_assert_int_eq(project_office_at(rt->store, office(), clock_ms, &ps), ODSYNC_OK);
}

/* One delivery pass of sink name at the injected clock through gate g; its stats. */
static struct deliver_stats deliver_with(const char *name, const struct deliver_gate *g)
{
    struct runtime_sink *rs = runtime_find_sink(rt, name);
    struct deliver_policy pol;
    struct deliver_stats ds;
    ck_assert_ptr_nonnull(rs);
    memset(&ds, 0, sizeof(ds));
    deliver_policy_from_config(&pol, &rs->cfg->delivery);
    pol.gate = g;
    pol.clock = test_clock;
    ck_assert_int_eq(deliver_sink(rt->store, rs->sink, &pol, &ds), ODSYNC_OK);
    return ds;
}

/* One delivery pass of sink name through the send guard. */
static struct deliver_stats deliver(const char *name)
{
    return deliver_with(name, &gate);
}

/* Deliver both sinks at each step from `from` through `to` (office-local). */
static void walk(const char *from, const char *to)
{
    int64_t end = local_ms(to);
    for (clock_ms = local_ms(from); clock_ms <= end; clock_ms += STEP_MS) {
        deliver("sms");
        deliver("email");
    }
    clock_ms = end;
}

/* A day as the daemon lives it: project in the morning, then deliver through the day. */
static void live_day(const char *day)
{
    char open[32], shut[32];
    snprintf(open, sizeof(open), "%s 08:00:00", day);
    snprintf(shut, sizeof(shut), "%s 20:00:00", day);
    at(open);
    project();
    walk(open, shut);
}

/* ---- the store --------------------------------------------------------------------------- */

/* The first column of the first row of sql (up to two text parameters, NULL = unbound) as an
 * integer; -1 when there is no row. */
static int64_t sql_int(const char *sql, const char *p1, const char *p2)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store), sql, -1, &s, NULL), SQLITE_OK);
    if (p1 != NULL)
        sqlite3_bind_text(s, 1, p1, -1, SQLITE_TRANSIENT);
    if (p2 != NULL)
        sqlite3_bind_text(s, 2, p2, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* The first column of the first row of sql (one text parameter) into out ("" when none). */
static void sql_text(const char *sql, const char *p1, char *out, size_t len)
{
    sqlite3_stmt *s = NULL;
    out[0] = '\0';
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store), sql, -1, &s, NULL), SQLITE_OK);
    if (p1 != NULL)
        sqlite3_bind_text(s, 1, p1, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
}

/* The first two columns of the first row of sql (one text parameter, NULL = unbound) into a
 * and b; 0 when there is no row. */
static int sql_pair(const char *sql, const char *p1, char *a, size_t alen, char *b, size_t blen)
{
    sqlite3_stmt *s = NULL;
    int found = 0;
    a[0] = b[0] = '\0';
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store), sql, -1, &s, NULL), SQLITE_OK);
    if (p1 != NULL)
        sqlite3_bind_text(s, 1, p1, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW) {
        snprintf(a, alen, "%s", (const char *)sqlite3_column_text(s, 0));
        snprintf(b, blen, "%s", (const char *)sqlite3_column_text(s, 1));
        found = 1;
    }
    sqlite3_finalize(s);
    return found;
}

/* A ledger column of a message ("" when it has no row or the column is NULL). */
static void message_col(const char *key, const char *column, char *out, size_t len)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT %s FROM messages WHERE office = '" OFFICE "' AND key = ?1",
             column);
    sql_text(sql, key, out, len);
}

/* Decisions about key with this outcome and reason. */
static int64_t decisions(const char *key, const char *outcome, const char *reason)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM decisions WHERE office = '" OFFICE "' AND key = ?1"
             " AND outcome = ?2 AND reason = '%s'",
             reason);
    return sql_int(sql, key, outcome);
}

/* Consent rows of (channel, address) with this state and source. */
static int64_t consent_rows(const char *channel, const char *address, const char *source)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM consent WHERE office = '" OFFICE "' AND channel = '%s'"
             " AND address = ?1 AND state = 'opt_out' AND source = '%s'",
             channel, source);
    return sql_int(sql, address, NULL);
}

/* The next pending message of channel in sink's outbox (by due time, then key) whose
 * address is not avoid (may be ""): key and address. Asserts there is one. */
static void next_pending(const char *sink, const char *channel, const char *avoid, char *key,
                         size_t klen, char *address, size_t alen)
{
    char sql[640];
    snprintf(sql, sizeof(sql),
             "SELECT m.key, m.address FROM outbox o JOIN messages m ON m.office = o.office"
             " AND m.key = o.key WHERE o.sink = '%s' AND o.state = 'pending'"
             " AND m.state = 'queued' AND m.channel = '%s' AND m.address <> ?1"
             " ORDER BY o.next_at, m.key LIMIT 1",
             sink, channel);
    ck_assert_msg(sql_pair(sql, avoid, key, klen, address, alen), "no pending %s message", channel);
}

/* A sent message of the campaigns in the SQL list campaigns ("'recall', 'review'") on
 * channel whose key ends with suffix ("" = any), to an address other than avoid: key and
 * address. Asserts there is one. */
static void sent_message(const char *campaigns, const char *channel, const char *suffix,
                         const char *avoid, char *key, size_t klen, char *address, size_t alen)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT key, address FROM messages WHERE office = '" OFFICE "' AND state = 'sent'"
             " AND campaign IN (%s) AND channel = '%s' AND key LIKE '%%%s' AND address <> ?1"
             " ORDER BY key",
             campaigns, channel, suffix);
    ck_assert_msg(sql_pair(sql, avoid, key, klen, address, alen), "no sent %s %s message",
                  campaigns, channel);
}

/* The key of the next message of a reactivation sequence (…:1 -> …:2). */
static void next_in_sequence(const char *key, char *out, size_t len)
{
    size_t n = strlen(key);
    ck_assert(n > 2 && key[n - 2] == ':');
    snprintf(out, len, "%.*s%c", (int)(n - 1), key, key[n - 1] + 1);
}

/* ---- a. STOP between creation and send ----------------------------------------------------- */

/* A patient texts STOP after odsync created a message for them and before it is due: the
 * fake signs and posts the inbound SMS to odsync's webhook, which records the opt-out (source
 * twilio); the send-time check skips the message (opted_out), and nothing reaches Twilio for
 * that number. The fake's own Advanced Opt-Out is off, so a send would have been accepted. */
START_TEST(stop_between_creation_and_send_blocks_the_send)
{
    char key[160], phone[64], state[16];
    cJSON *mine, *f;
    int others;

    open_rt(CAMPAIGNS_ALL);
    cJSON_Delete(fake(tw_port, "POST", "/_faults", "{\"advanced-opt-out\": false}"));
    at(DAY1 " 07:00:00");
    ingest();
    at(DAY1 " 08:00:00");
    project();
    next_pending("sms", "sms", "", key, sizeof(key), phone, sizeof(phone));
    ck_assert_int_eq(consent_rows("sms", phone, "twilio"), 0);

    ck_assert_int_eq(inbound_sms(phone, "STOP", ""), 200);
    ck_assert_int_eq(consent_rows("sms", phone, "twilio"), 1);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM consent WHERE address = ?1 AND purpose = '*'"
                             " AND evidence LIKE '%STOP%'",
                             phone, NULL),
                     1);

    walk(DAY1 " 08:00:00", DAY1 " 20:00:00");
    message_col(key, "state", state, sizeof(state));
    ck_assert_str_eq(state, "skipped");
    ck_assert_int_eq(decisions(key, "skipped", "opted_out"), 1);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM decisions WHERE key = ?1 AND outcome = 'skipped'"
                             " AND consent = 'sms:opt_out(twilio)'",
                             key, NULL),
                     1);
    mine = twilio_messages_to(phone);
    ck_assert_int_eq(cJSON_GetArraySize(mine), 0);
    ck_assert_int_eq(twilio_code_count("21610"), 0); /* not even refused there: never sent */
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM messages WHERE address = ?1"
                             " AND state IN ('sending', 'sent', 'unknown')",
                             phone, NULL),
                     0);
    /* The others went out, each exactly as the ledger says. */
    others = twilio_message_count();
    ck_assert_int_gt(others, 0);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM messages WHERE channel = 'sms'"
                             " AND state = 'sent'",
                             NULL, NULL),
                     others);
    f = fake(tw_port, "GET", "/_webhooks", NULL);
    ck_assert_int_eq(int_member(f, "count"), 1);
    cJSON_Delete(f);
    cJSON_Delete(mine);
}
END_TEST

/* ---- b. SendGrid unsubscribe -------------------------------------------------------------- */

/* Two patients of an email reactivation sequence unsubscribe through SendGrid (signed Event
 * Webhook events posted by the fake): A after the first message, before the second is
 * created; B after the second was created, before it is due. Neither second message is
 * sent — A's is skipped when created, B's at send time — and the fake received no other
 * mail for either address, while the rest of the sequence went out. */
START_TEST(unsubscribe_event_stops_the_next_email)
{
    char key_a[160], key_b[160], addr_a[128], addr_b[128], next_a[160], next_b[160];
    char events[768], state[16], reason[32];
    cJSON *mail;

    open_rt(CAMPAIGNS_EMAIL_SEQUENCE);
    at(DAY1 " 07:00:00");
    ingest();
    live_day(DAY1);
    sent_message("'reactivation'", "email", ":1", "", key_a, sizeof(key_a), addr_a, sizeof(addr_a));
    sent_message("'reactivation'", "email", ":1", addr_a, key_b, sizeof(key_b), addr_b,
                 sizeof(addr_b));
    next_in_sequence(key_a, next_a, sizeof(next_a));
    next_in_sequence(key_b, next_b, sizeof(next_b));
    mail = sendgrid_mail(addr_a);
    ck_assert_int_eq(cJSON_GetArraySize(mail), 1);
    ck_assert_str_eq(
        str_member(cJSON_GetObjectItem(cJSON_GetArrayItem(mail, 0), "custom_args"), "odsync_key"),
        key_a);
    cJSON_Delete(mail);

    /* A unsubscribes (SendGrid's unsubscribe link) after the first message. */
    snprintf(events, sizeof(events),
             "[{\"event\": \"unsubscribe\", \"email\": \"%s\", \"odsync_key\": \"%s\","
             " \"odsync_office\": \"" OFFICE "\"}]",
             addr_a, key_a);
    ck_assert_int_eq(sendgrid_events(events, ""), 200);
    ck_assert_int_eq(consent_rows("email", addr_a, "sendgrid"), 1);
    message_col(key_a, "delivery", state, sizeof(state));
    ck_assert_str_eq(state, "unsubscribe");

    /* Day 2: the second messages are created (A's skipped: opted out), then B unsubscribes. */
    at(DAY2 " 08:00:00");
    project();
    message_col(next_a, "state", state, sizeof(state));
    message_col(next_a, "reason", reason, sizeof(reason));
    ck_assert_str_eq(state, "skipped");
    ck_assert_str_eq(reason, "email:opted_out"); /* the channel tried, then why */
    message_col(next_b, "state", state, sizeof(state));
    ck_assert_str_eq(state, "queued");
    snprintf(events, sizeof(events),
             "[{\"event\": \"delivered\", \"email\": \"%s\", \"odsync_key\": \"%s\","
             " \"odsync_office\": \"" OFFICE "\"},"
             " {\"event\": \"unsubscribe\", \"email\": \"%s\", \"odsync_key\": \"%s\","
             " \"odsync_office\": \"" OFFICE "\"}]",
             addr_b, key_b, addr_b, key_b);
    ck_assert_int_eq(sendgrid_events(events, ""), 200);
    ck_assert_int_eq(consent_rows("email", addr_b, "sendgrid"), 1);
    walk(DAY2 " 08:00:00", DAY2 " 20:00:00");
    live_day(DAY3);

    message_col(next_b, "state", state, sizeof(state));
    ck_assert_str_eq(state, "skipped");
    ck_assert_int_eq(decisions(next_b, "skipped", "opted_out"), 1); /* at send time (R22) */
    mail = sendgrid_mail(addr_a);
    ck_assert_int_eq(cJSON_GetArraySize(mail), 1); /* the first message only */
    cJSON_Delete(mail);
    mail = sendgrid_mail(addr_b);
    ck_assert_int_eq(cJSON_GetArraySize(mail), 1);
    cJSON_Delete(mail);
    /* The sequence went on for everyone else. */
    ck_assert_int_gt(sql_int("SELECT COUNT(*) FROM messages WHERE state = 'sent'"
                             " AND key LIKE '%:2'",
                             NULL, NULL),
                     0);
    mail = sendgrid_mail(NULL);
    ck_assert_int_eq(
        cJSON_GetArraySize(mail),
        (int)sql_int("SELECT COUNT(*) FROM messages WHERE state = 'sent'", NULL, NULL));
    cJSON_Delete(mail);
}
END_TEST

/* ---- c. status callbacks ------------------------------------------------------------------ */

static char lost_key[160]; /* the message whose provider answer the "crash" loses */

/* The send guard's after(), except for lost_key: the process died after Twilio accepted the
 * message and before the ledger recorded it. */
static int forgetful_after(void *ctx, struct store *st, const struct outbox_item *it,
                           const char *plugin, int status, int final, const char *remote_id,
                           const char *detail, int64_t now_ms)
{
    if (strcmp(it->key, lost_key) == 0)
        return ODSYNC_OK;
    return gate.after(ctx, st, it, plugin, status, final, remote_id, detail, now_ms);
}

/* store_tx body: what the send guard does to a message found "sending" after a restart. */
static int mark_unknown_tx(struct store *st, void *arg)
{
    const char *key = arg;
    int rc = ledger_set(st, OFFICE, key, LEDGER_UNKNOWN, 0, NULL, "interrupted_send", clock_ms);
    if (rc == ODSYNC_OK)
        rc = ledger_decide(st, OFFICE, key, 0, NULL, NULL, "unknown", 0, "interrupted_send",
                           "ledger", NULL, clock_ms);
    return rc;
}

/* The Twilio sid of the one message fake_twilio stored for phone whose StatusCallback ends
 * with /status/key, into sid. */
static void sid_for(const char *phone, const char *key, char *sid, size_t len)
{
    cJSON *list = twilio_messages_to(phone), *m;
    char want[256];
    int n = 0;
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/webhooks/twilio/" OFFICE "/status/%s",
             hook_port, key);
    sid[0] = '\0';
    cJSON_ArrayForEach(m, list)
    {
        if (strcmp(str_member(m, "status_callback"), want) == 0) {
            snprintf(sid, len, "%s", str_member(m, "sid"));
            n++;
        }
    }
    cJSON_Delete(list);
    ck_assert_msg(n == 1, "%d messages at the fake for %s", n, key);
}

/* Each SMS asks for status callbacks at odsync's /webhooks/twilio/{office}/status/{key}; the
 * callbacks the fake signs and posts there reach the send ledger: "delivered" is recorded on
 * a sent message, a message a crash left "unknown" is settled as sent (with Twilio's sid),
 * and a "failed" 21610 is an opt-out. */
START_TEST(status_callbacks_update_the_ledger)
{
    struct deliver_gate forgetful;
    char key[160], phone[64], lost_phone[64], sid[64], lost_sid[64], val[64], resp[256];
    char third[160], third_phone[64], third_sid[64];

    open_rt(CAMPAIGNS_ALL);
    at(DAY1 " 07:00:00");
    ingest();
    at(DAY1 " 08:00:00");
    project();
    next_pending("sms", "sms", "", lost_key, sizeof(lost_key), lost_phone, sizeof(lost_phone));
    forgetful = gate;
    forgetful.after = forgetful_after;
    deliver_with("sms", &forgetful);
    message_col(lost_key, "state", val, sizeof(val));
    ck_assert_str_eq(val, "sending"); /* the provider has it; the ledger never heard */
    ck_assert_int_eq(store_tx(rt->store, mark_unknown_tx, lost_key), ODSYNC_OK);
    walk(DAY1 " 08:00:00", DAY1 " 20:00:00");
    message_col(lost_key, "state", val, sizeof(val));
    ck_assert_str_eq(val, "unknown"); /* never sent again */
    message_col(lost_key, "provider_id", val, sizeof(val));
    ck_assert_str_eq(val, "");

    /* A sent message: delivered. */
    sent_message(ANY_CAMPAIGN, "sms", "", lost_phone, key, sizeof(key), phone, sizeof(phone));
    sid_for(phone, key, sid, sizeof(sid));
    message_col(key, "provider_id", val, sizeof(val));
    ck_assert_str_eq(val, sid);
    message_col(key, "delivery", val, sizeof(val));
    ck_assert_str_eq(val, "");
    ck_assert_int_eq(status_callback(sid, "sent", "", NULL, 0), 200);
    message_col(key, "delivery", val, sizeof(val));
    ck_assert_str_eq(val, "sent");
    ck_assert_int_eq(status_callback(sid, "delivered", "", resp, sizeof(resp)), 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"recorded\":true"));
    message_col(key, "delivery", val, sizeof(val));
    ck_assert_str_eq(val, "delivered");
    message_col(key, "state", val, sizeof(val));
    ck_assert_str_eq(val, "sent");
    ck_assert_int_eq(decisions(key, "delivered", "delivered"), 1);

    /* A third sent message (picked while the lost one is still "unknown"). */
    sent_message(ANY_CAMPAIGN, "sms", "", phone, third, sizeof(third), third_phone,
                 sizeof(third_phone));
    ck_assert_str_ne(third_phone, lost_phone);
    /* The message the crash left unknown: its callback settles it as sent. */
    sid_for(lost_phone, lost_key, lost_sid, sizeof(lost_sid));
    ck_assert_int_eq(status_callback(lost_sid, "delivered", "", resp, sizeof(resp)), 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"recorded\":true"));
    message_col(lost_key, "state", val, sizeof(val));
    ck_assert_str_eq(val, "sent");
    message_col(lost_key, "provider_id", val, sizeof(val));
    ck_assert_str_eq(val, lost_sid);
    message_col(lost_key, "delivery", val, sizeof(val));
    ck_assert_str_eq(val, "delivered");

    /* A third: failed with 21610 (the carrier reports the recipient unsubscribed). */
    sid_for(third_phone, third, third_sid, sizeof(third_sid));
    ck_assert_int_eq(status_callback(third_sid, "failed", ", \"error_code\": 21610", NULL, 0), 200);
    message_col(third, "delivery", val, sizeof(val));
    ck_assert_str_eq(val, "failed");
    ck_assert_int_eq(consent_rows("sms", third_phone, "twilio"), 1);
    ck_assert_int_eq(consent_rows("sms", phone, "twilio"), 0);
}
END_TEST

/* ---- d. 21610 at send time ------------------------------------------------------------------ */

/* A number that replied STOP to the practice's sender at Twilio directly (odsync never saw
 * it): the send is refused with 21610, which the plugin reports OPTED_OUT. odsync records
 * the opt-out (source twilio), the ledger says skipped "opted_out_at_provider", the outbox
 * row is done (not a dead letter), and no later SMS is tried to that number. */
START_TEST(error_21610_records_the_opt_out)
{
    char key[160], phone[64], body[160], state[16], reason[48];
    cJSON *mine;

    open_rt(CAMPAIGNS_ALL);
    at(DAY1 " 07:00:00");
    ingest();
    at(DAY1 " 08:00:00");
    project();
    next_pending("sms", "sms", "", key, sizeof(key), phone, sizeof(phone));
    snprintf(body, sizeof(body), "{\"number\": \"%s\", \"sender\": \"" SENDER "\"}", phone);
    cJSON_Delete(fake(tw_port, "POST", "/_optouts", body));
    ck_assert_int_eq(consent_rows("sms", phone, "twilio"), 0);

    walk(DAY1 " 08:00:00", DAY1 " 20:00:00");
    message_col(key, "state", state, sizeof(state));
    message_col(key, "reason", reason, sizeof(reason));
    ck_assert_str_eq(state, "skipped");
    ck_assert_str_eq(reason, "opted_out_at_provider");
    ck_assert_int_eq(decisions(key, "skipped", "opted_out_at_provider"), 1);
    ck_assert_int_eq(
        sql_int("SELECT COUNT(*) FROM decisions WHERE key = ?1 AND rule = 'R28'", key, NULL), 1);
    ck_assert_int_eq(consent_rows("sms", phone, "twilio"), 1);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE sink = 'sms' AND key = ?1"
                             " AND state = 'done'",
                             key, NULL),
                     1);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE state = 'dead'", NULL, NULL), 0);
    ck_assert_int_eq(twilio_code_count("21610"), 1);

    /* Two more days of the sequence: nothing more is tried on that number. */
    live_day(DAY2);
    live_day(DAY3);
    ck_assert_int_eq(twilio_code_count("21610"), 1);
    mine = twilio_messages_to(phone);
    ck_assert_int_eq(cJSON_GetArraySize(mine), 0);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM messages WHERE address = ?1 AND channel = 'sms'"
                             " AND state IN ('sending', 'sent', 'unknown', 'queued', 'held')",
                             phone, NULL),
                     0);
    ck_assert_int_gt(twilio_message_count(), 0); /* others were texted */
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM outbox WHERE state = 'dead'", NULL, NULL), 0);
    cJSON_Delete(mine);
}
END_TEST

/* ---- e. bad signatures ---------------------------------------------------------------------- */

/* Webhooks signed with the wrong secret, over another URL, not signed, tampered with or
 * replayed get 403 and change nothing: no consent row, no reply kept for review, no delivery
 * status. A correctly signed STOP afterwards is recorded (the endpoint works). */
START_TEST(wrongly_signed_webhooks_are_refused)
{
    char key[160], phone[64], addr[128], sid[64], val[64], events[512], other[128];
    char stale[64];
    int64_t consent, review;

    open_rt(CAMPAIGNS_ALL);
    at(DAY1 " 07:00:00");
    ingest();
    live_day(DAY1);
    sent_message(ANY_CAMPAIGN, "sms", "", "", key, sizeof(key), phone, sizeof(phone));
    sid_for(phone, key, sid, sizeof(sid));
    sql_text("SELECT address FROM messages WHERE channel = 'email' AND address IS NOT NULL", NULL,
             addr, sizeof(addr));
    ck_assert_str_ne(addr, "");
    consent = sql_int("SELECT COUNT(*) FROM consent_log", NULL, NULL);
    review = sql_int("SELECT COUNT(*) FROM inbound_review", NULL, NULL);

    /* Twilio: inbound STOP and a plain reply, each wrongly signed three ways. */
    ck_assert_int_eq(inbound_sms(phone, "STOP", ", \"signing_token\": \"not-the-auth-token\""),
                     403);
    ck_assert_int_eq(inbound_sms(phone, "STOP", ", \"unsigned\": true"), 403);
    hook_url("/webhooks/twilio/" OFFICE "/other", other, sizeof(other));
    snprintf(events, sizeof(events), ", \"public_url\": \"%s\"", other);
    ck_assert_int_eq(inbound_sms(phone, "STOP", events), 403);
    ck_assert_int_eq(inbound_sms(phone, "Can I move my visit?", ", \"unsigned\": true"), 403);
    ck_assert_int_eq(status_callback(sid, "undelivered", ", \"signing_token\": \"wrong\"", NULL, 0),
                     403);
    ck_assert_int_eq(
        status_callback(sid, "failed", ", \"error_code\": 21610, \"unsigned\": true", NULL, 0),
        403);
    /* SendGrid: an unsubscribe signed with another key, garbage, none, tampered, stale. */
    snprintf(events, sizeof(events), "[{\"event\": \"unsubscribe\", \"email\": \"%s\"}]", addr);
    ck_assert_int_eq(sendgrid_events(events, ", \"sign\": \"wrong-key\""), 403);
    ck_assert_int_eq(sendgrid_events(events, ", \"sign\": \"garbage\""), 403);
    ck_assert_int_eq(sendgrid_events(events, ", \"sign\": \"none\""), 403);
    ck_assert_int_eq(sendgrid_events(events, ", \"tamper\": true"), 403);
    snprintf(stale, sizeof(stale), ", \"timestamp\": %lld",
             (long long)(util_now_ms() / 1000 - 3600));
    ck_assert_int_eq(sendgrid_events(events, stale), 403);

    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM consent_log", NULL, NULL), consent);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM inbound_review", NULL, NULL), review);
    ck_assert_int_eq(consent_rows("sms", phone, "twilio"), 0);
    ck_assert_int_eq(consent_rows("email", addr, "sendgrid"), 0);
    message_col(key, "delivery", val, sizeof(val));
    ck_assert_str_eq(val, "");

    /* The same, signed right: recorded. */
    ck_assert_int_eq(inbound_sms(phone, "Can I move my visit?", ""), 200);
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM inbound_review", NULL, NULL), review + 1);
    ck_assert_int_eq(inbound_sms(phone, "STOP", ""), 200);
    ck_assert_int_eq(consent_rows("sms", phone, "twilio"), 1);
    ck_assert_int_eq(sendgrid_events(events, ""), 200);
    ck_assert_int_eq(consent_rows("email", addr, "sendgrid"), 1);
}
END_TEST

/* ---- f. SendGrid grouping ------------------------------------------------------------------- */

/* The emails of one campaign sharing a dynamic template go out in one mail/send request, one
 * personalization each, each carrying its message key and office in custom_args; each ledger
 * row keeps the request's X-Message-Id with its personalization index. */
START_TEST(emails_of_one_template_share_one_request)
{
    cJSON *mail, *p, *want = cJSON_CreateObject();
    char msgid[64] = "", remote[96], provider[96];
    struct deliver_stats ds;
    int64_t pending;
    sqlite3_stmt *s = NULL;

    open_rt(CAMPAIGNS_EMAIL_TEMPLATE);
    at(DAY1 " 07:00:00");
    ingest();
    at(DAY1 " 08:00:00");
    project();
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store),
                                        "SELECT COUNT(*) FROM outbox WHERE sink = 'email'"
                                        " AND state = 'pending' AND next_at <= ?1",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, clock_ms);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    pending = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    ck_assert_int_ge(pending, 3);
    ck_assert_int_eq(sendgrid_stat("mail_requests"), 0);

    ds = deliver("email");
    ck_assert_int_eq(ds.batches, 1);
    ck_assert_int_ge(ds.ok, 3);
    /* The rest share an address with a family member already written to today: held by
     * the daily cap (R9), not sent. */
    ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM messages WHERE state = 'held'"
                             " AND reason = 'cap_day'",
                             NULL, NULL),
                     pending - ds.ok);
    ck_assert_int_eq(sendgrid_stat("mail_requests"), 1);
    ck_assert_int_eq(sendgrid_stat("messages"), (int)ds.ok);

    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store),
                                        "SELECT key, provider_id FROM messages WHERE state = 'sent'"
                                        " AND channel = 'email'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW)
        cJSON_AddStringToObject(want, (const char *)sqlite3_column_text(s, 0),
                                (const char *)sqlite3_column_text(s, 1));
    sqlite3_finalize(s);
    ck_assert_int_eq(cJSON_GetArraySize(want), (int)ds.ok);

    mail = sendgrid_mail(NULL);
    ck_assert_int_eq(cJSON_GetArraySize(mail), (int)ds.ok);
    cJSON_ArrayForEach(p, mail)
    {
        const cJSON *args = cJSON_GetObjectItem(p, "custom_args");
        const char *key = str_member(args, "odsync_key");
        if (msgid[0] == '\0')
            snprintf(msgid, sizeof(msgid), "%s", str_member(p, "message_id"));
        ck_assert_str_eq(str_member(p, "message_id"), msgid); /* one request */
        ck_assert_str_eq(str_member(p, "template_id"), TEMPLATE);
        ck_assert_str_eq(str_member(args, "odsync_office"), OFFICE);
        ck_assert_msg(cJSON_HasObjectItem(want, key), "personalization for %s", key);
        snprintf(remote, sizeof(remote), "%s#%d", msgid, int_member(p, "index"));
        snprintf(provider, sizeof(provider), "%s", str_member(want, key));
        ck_assert_str_eq(provider, remote);
        message_col(key, "address", remote, sizeof(remote));
        ck_assert_str_eq(str_member(p, "to"), remote);
        cJSON_DeleteItemFromObject(want, key); /* each key once */
    }
    ck_assert_int_eq(cJSON_GetArraySize(want), 0);
    ck_assert_str_ne(msgid, "");
    cJSON_Delete(mail);
    cJSON_Delete(want);
}
END_TEST

static Suite *messaging_suite(void)
{
    Suite *s = suite_create("messaging");
    TCase *tc = tcase_create("messaging");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stop_between_creation_and_send_blocks_the_send);
    tcase_add_test(tc, unsubscribe_event_stops_the_next_email);
    tcase_add_test(tc, status_callbacks_update_the_ledger);
    tcase_add_test(tc, error_21610_records_the_opt_out);
    tcase_add_test(tc, wrongly_signed_webhooks_are_refused);
    tcase_add_test(tc, emails_of_one_template_share_one_request);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(messaging_suite)
