/*
 * test_twilio: the real build/plugins/twilio.so, loaded by runtime_open (core/plugin.c +
 * core/host_api.c) from a config, with message records (as core/rules.c builds them) queued
 * in a real SQLite outbox and driven by core/deliver.c's deliver_sink against
 * build/contrib/fakes/fake_twilio over loopback. Every test starts its own fake and asserts
 * what the fake stored (the request shape), what the outbox and the sink's pause say, and
 * that no phone number or message body reaches a log line or a result detail. The last tests
 * check the fake's X-Twilio-Signature against an HMAC-SHA1 computed here with libcrypto,
 * first on Twilio's documented example.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "deliver.h"
#include "host_api.h"
#include "http_client.h"
#include "log.h"
#include "outbox.h"
#include "plugin.h"
#include "runtime.h"
#include "sink_state.h"
#include "store.h"
#include "util.h"

#include "../support/raw_http.h"
#include "../support/testutil.h"

#define ACCOUNT    "AC5f1d2c9a0000400080000000000000a1"
#define TOKEN      "tw-auth-token-5f1d2c9a"
#define KEY_SID    "SK5f1d2c9a0000400080000000000000b2"
#define KEY_SECRET "tw-key-secret-77c1"
#define SERVICE    "MG5f1d2c9a0000400080000000000000c3"
#define SENDER     "+15550100000"
#define CALLBACK   "https://odsync.example.com/webhooks/twilio"

/* Recipients (fictitious 555-01xx numbers). */
#define AVERY    "+15550100123"
#define BLAKE    "+15550100124"
#define INVALID  "+15550100999" /* the fake answers 21211 */
#define LANDLINE "+15550100777" /* the fake answers 21614 */

static char *dir;           /* per test */
static pid_t fake_pid = -1; /* per test */
static int fake_port;       /* per test */
static struct runtime *rt;  /* per test, may be reopened */
static char *log_path;      /* dir/odsync.log: everything odsync logged */
static FILE *log_file;
static int64_t clock_ms; /* the delivery engine's clock (0: the real one) */

/* The delivery engine's clock: clock_ms when set, else the wall clock. */
static int64_t test_clock(void)
{
    return clock_ms != 0 ? clock_ms : util_now_ms();
}

/* Start the fake with extra flags (NULL-terminated, may be NULL). */
static void fake_start(const char *const *extra)
{
    char *path = tu_build_path("contrib/fakes/fake_twilio");
    char errp[512];
    const char *argv[32] = {path,       "--account-sid",           ACCOUNT, "--auth-token",
                            TOKEN,      "--api-key-sid",           KEY_SID, "--api-key-secret",
                            KEY_SECRET, "--messaging-service-sid", SERVICE, "--numbers",
                            SENDER,     "--invalid-numbers",       INVALID, "--landline-numbers",
                            LANDLINE};
    size_t n = 17;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < UTIL_ARRAY_LEN(argv); i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(errp, sizeof(errp), "%s/fake.log", dir);
    fake_pid = tu_spawn_server(argv, errp, &fake_port);
    free(path);
}

/* Per test: a private directory, odsync's log into it, the secrets in the environment. */
static void setup(void)
{
    dir = tu_mkdtemp();
    log_path = malloc(strlen(dir) + 16);
    ck_assert_ptr_nonnull(log_path);
    snprintf(log_path, strlen(dir) + 16, "%s/odsync.log", dir);
    log_file = fopen(log_path, "w");
    ck_assert_ptr_nonnull(log_file);
    log_setup(log_file, ODSYNC_LOG_DEBUG, LOG_TEXT);
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    ck_assert_int_eq(setenv("TT_SID", ACCOUNT, 1), 0);
    ck_assert_int_eq(setenv("TT_TOKEN", TOKEN, 1), 0);
    ck_assert_int_eq(setenv("TT_KEY_SECRET", KEY_SECRET, 1), 0);
    ck_assert_int_eq(setenv("TT_OD_DEV", "dev-key", 1), 0);
    ck_assert_int_eq(setenv("TT_OD_CUST", "cust-key", 1), 0);
    clock_ms = 0;
}

/* Per test: close the runtime, stop the fake (asserting a clean exit), remove the directory. */
static void teardown(void)
{
    runtime_close(rt);
    rt = NULL;
    int status = fake_pid > 0 ? tu_stop(fake_pid) : 0;
    fake_pid = -1;
    http_global_cleanup();
    log_shutdown();
    fclose(log_file);
    tu_rmrf(dir);
    free(dir);
    free(log_path);
    /* A clean exit: under the sanitizers a leak or a memory error in the fake fails here. */
    ck_assert_msg(status == 0, "fake_twilio exit status %d", status);
}

/* The sender and auth settings most tests use. */
#define TOKEN_AUTH "\"auth_token\": \"${TT_TOKEN}\", \"from\": \"" SENDER "\""

/* (Re)open the runtime: sink "sms" is the twilio plugin at the fake with the given settings
 * (JSON members), routed for offices main-st and elm-st. A reopen is a restart. */
static void open_rt(const char *sink_settings)
{
    char text[4096], err[512] = "";
    struct config *cfg = NULL;
    runtime_close(rt);
    rt = NULL;
    snprintf(
        text, sizeof(text),
        "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
        " \"log\": {\"level\": \"debug\"},"
        " \"delivery\": {\"max_attempts\": 5, \"backoff_base_ms\": 1, \"backoff_cap_ms\": 1,"
        " \"rate_limit_default_ms\": 60000},"
        " \"sinks\": {\"sms\": {\"plugin\": \"twilio\", \"account_sid\": \"${TT_SID}\","
        " \"base_url\": \"http://127.0.0.1:%d\", %s}},"
        " \"offices\": ["
        "  {\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": \"America/Chicago\","
        "   \"opendental\": {\"base_url\": \"http://127.0.0.1:1/api/v1\","
        "    \"developer_key\": \"${TT_OD_DEV}\", \"customer_key\": \"${TT_OD_CUST}\","
        "    \"tier\": \"paid\", \"min_interval_ms\": 0}, \"routes\": {\"sms\": [\"sms\"]}},"
        "  {\"id\": \"elm-st\", \"name\": \"Elm\", \"timezone\": \"America/Chicago\","
        "   \"opendental\": {\"base_url\": \"http://127.0.0.1:1/api/v1\","
        "    \"developer_key\": \"${TT_OD_DEV}\", \"customer_key\": \"${TT_OD_CUST}\","
        "    \"tier\": \"paid\", \"min_interval_ms\": 0}, \"routes\": {\"sms\": [\"sms\"]}}]}\n",
        dir, tu_build_dir(), fake_port, sink_settings);
    ck_assert_msg(config_parse(text, strlen(text), "twilio.json", &cfg, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "config: %s", err);
    ck_assert_msg(runtime_open(cfg, 0, &rt, err, sizeof(err)) == ODSYNC_OK, "runtime: %s", err);
}

struct enqueue_args {
    const char *office, *key, *body;
};

/* store_tx body: queue one message row (arg: struct enqueue_args, borrowed). */
static int enqueue_tx(struct store *st, void *arg)
{
    const struct enqueue_args *e = arg;
    return outbox_enqueue(st, "sms", e->office, e->key, ODSYNC_KIND_MESSAGE, 1, e->body);
}

/* Queue an SMS message record for sink "sms", shaped as core/rules.c builds it. */
static void queue_sms(const char *office, const char *key, const char *to, const char *body)
{
    cJSON *o = cJSON_CreateObject(), *data;
    char ckey[64];
    snprintf(ckey, sizeof(ckey), "od:%s:1042", office);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "office", office);
    cJSON_AddStringToObject(o, "contact_key", ckey);
    cJSON_AddStringToObject(o, "channel", "sms");
    cJSON_AddStringToObject(o, "campaign", "recall");
    cJSON_AddStringToObject(o, "to", to);
    cJSON_AddNullToObject(o, "subject");
    cJSON_AddStringToObject(o, "body", body);
    cJSON_AddNullToObject(o, "template_id");
    data = cJSON_AddObjectToObject(o, "template_data");
    cJSON_AddStringToObject(data, "first_name", "Avery");
    cJSON_AddStringToObject(data, "practice_name", "Main Street Dental");
    cJSON_AddStringToObject(data, "practice_phone", "(555) 010-1000");
    char *text = cJSON_PrintUnformatted(o);
    struct enqueue_args e = {office, key, text};
    ck_assert_int_eq(store_tx(rt->store, enqueue_tx, &e), ODSYNC_OK);
    cJSON_free(text);
    cJSON_Delete(o);
}

/* One delivery pass of sink sms with the config's policy and the test clock. */
static struct deliver_stats deliver(void)
{
    struct runtime_sink *rs = runtime_find_sink(rt, "sms");
    struct deliver_policy pol;
    struct deliver_stats ds;
    memset(&ds, 0, sizeof(ds));
    deliver_policy_from_config(&pol, &rs->cfg->delivery);
    pol.clock = test_clock;
    ck_assert_int_eq(deliver_sink(rt->store, rs->sink, &pol, &ds), ODSYNC_OK);
    return ds;
}

/* Let backoffs of a few ms pass. */
static void nap(void)
{
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
}

/* A request to the fake's admin API (body may be NULL); the parsed answer (caller frees). */
static cJSON *fake_admin(const char *method, const char *path, const char *body)
{
    char url[512];
    struct http_client *c = http_client_create();
    struct odsync_http_response *resp = NULL;
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = method,
                                      .url = url,
                                      .body = body,
                                      .body_len = body ? strlen(body) : 0};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(http_client_perform(c, &req, &resp), ODSYNC_OK);
    ck_assert_msg(resp->status == 200, "%s %s: HTTP %d %s", method, path, resp->status, resp->body);
    cJSON *j = cJSON_Parse(resp->body);
    ck_assert_ptr_nonnull(j);
    http_response_free(resp);
    http_client_destroy(c);
    return j;
}

/* POST /_faults json to the fake. */
static void faults(const char *json)
{
    cJSON_Delete(fake_admin("POST", "/_faults", json));
}

/* A number in the fake's state at a path of keys; 0 when absent. */
static int64_t state_num(const char *a, const char *b, const char *c)
{
    cJSON *st = fake_admin("GET", "/_state", NULL);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, a);
    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (c != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, c);
    int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    cJSON_Delete(st);
    return n;
}

/* The fake's stored messages to number (NULL: all) (caller frees). */
static cJSON *messages_to(const char *number)
{
    char path[128];
    if (number == NULL)
        return fake_admin("GET", "/_messages", NULL);
    /* "+" percent-encoded, as a query value must be. */
    snprintf(path, sizeof(path), "/_messages?to=%%2B%s", number + 1);
    return fake_admin("GET", path, NULL);
}

/* How many messages the fake stored to number. */
static int64_t message_count(const char *number)
{
    cJSON *m = messages_to(number);
    int64_t n = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "count"));
    cJSON_Delete(m);
    return n;
}

/* Member name of message i of list (borrowed from list); NULL for JSON null. */
static const char *msg_field(const cJSON *list, int i, const char *name)
{
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "messages"), i);
    ck_assert_ptr_nonnull(m);
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, name));
}

/* The outbox row of key (sink sms): column as text into buf ("" for NULL). */
static const char *row(const char *key, const char *column, char *buf, size_t len)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof(sql), "SELECT %s FROM outbox WHERE sink = 'sms' AND key = ?", column);
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store), sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    ck_assert_msg(sqlite3_step(s) == SQLITE_ROW, "no outbox row %s", key);
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
    sqlite3_finalize(s);
    return buf;
}

/* An integer column of key's outbox row. */
static int64_t row_int(const char *key, const char *column)
{
    char buf[64];
    return strtoll(row(key, column, buf, sizeof(buf)), NULL, 10);
}

/* The pause of sink sms. */
static struct sink_state pause_of(void)
{
    struct sink_state ss;
    ck_assert_int_eq(sink_state_get(rt->store, "sms", &ss), ODSYNC_OK);
    return ss;
}

/* The whole log odsync wrote so far (caller frees). */
static char *log_text(void)
{
    fflush(log_file);
    char *t = tu_read_file(log_path);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Neither text nor any 7-digit tail of a recipient number appears in s. */
static void assert_no_patient_data(const char *s, const char *what)
{
    static const char *const numbers[] = {AVERY, BLAKE, INVALID, LANDLINE};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(numbers); i++)
        ck_assert_msg(strstr(s, numbers[i] + 5) == NULL, "%s holds a phone number: %s", what, s);
    ck_assert_msg(strstr(s, "cleaning") == NULL, "%s holds a message body", what);
    ck_assert_msg(strstr(s, "Avery") == NULL, "%s holds a name", what);
}

static const char body_text[] =
    "Main Street Dental: time for your cleaning, Avery! Book: https://example.com/b "
    "Reply STOP to opt out.";

/* ---- plugin: descriptor ------------------------------------------------------------------- */

START_TEST(descriptor_and_setup)
{
    char err[512] = "", *out = NULL;
    struct plugin *p = NULL;
    char *so = tu_build_path("plugins/twilio.so");
    char *bin = tu_build_path("odsync");
    ck_assert_msg(plugin_open(so, &p, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    const struct odsync_sink_descriptor *d = plugin_descriptor(p);
    ck_assert_str_eq(d->name, "twilio");
    ck_assert_uint_eq(d->max_batch, 10);
    ck_assert(d->capabilities == ODSYNC_CAP_SMS);
    ck_assert_ptr_nonnull(d->setup);
    ck_assert_ptr_nonnull(strstr(d->setup, "{public_url}/webhooks/twilio/{office}/sms"));
    ck_assert_ptr_nonnull(strstr(d->setup, "{public_url}/webhooks/twilio/{office}/status"));
    ck_assert_ptr_nonnull(strstr(d->setup, "Advanced Opt-Out"));
    plugin_close(p);

    const char *argv[] = {bin, "plugins", "describe", so, NULL};
    ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
    ck_assert_msg(strstr(out, "capabilities: sms") != NULL, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "status_callback_url"));
    ck_assert_ptr_nonnull(strstr(out, "Advanced Opt-Out"));
    free(out);
    free(so);
    free(bin);
}
END_TEST

/* ---- plugin against the fake -------------------------------------------------------------- */

START_TEST(send_ok_with_sid_and_request_shape)
{
    char buf[256];
    fake_start(NULL);
    open_rt(TOKEN_AUTH ", \"status_callback_url\": \"" CALLBACK "/\"");
    queue_sms("main-st", "od:main-st:recall:5521", AVERY, body_text);
    /* A free-form US number is normalised to E.164. */
    queue_sms("elm-st", "od:elm-st:recall:77", "(555) 010-0124", "Elm Street Dental: hello");
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 2);
    ck_assert_int_eq(ds.batches, 1);

    cJSON *m = messages_to(AVERY);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "count")), 1);
    ck_assert_str_eq(msg_field(m, 0, "to"), AVERY);
    ck_assert_str_eq(msg_field(m, 0, "from"), SENDER);
    ck_assert_ptr_null(msg_field(m, 0, "messaging_service_sid"));
    ck_assert_str_eq(msg_field(m, 0, "body"), body_text);
    ck_assert_str_eq(msg_field(m, 0, "status_callback"),
                     CALLBACK "/main-st/status/od:main-st:recall:5521");
    ck_assert_str_eq(msg_field(m, 0, "auth"), "auth_token");
    ck_assert_str_eq(msg_field(m, 0, "auth_user"), ACCOUNT);
    ck_assert_str_eq(msg_field(m, 0, "status"), "queued");
    /* The sid Twilio answered is the outbox row's remote id. */
    ck_assert_str_eq(row("od:main-st:recall:5521", "state", buf, sizeof(buf)), "done");
    ck_assert_str_eq(row("od:main-st:recall:5521", "remote_id", buf, sizeof(buf)),
                     msg_field(m, 0, "sid"));
    ck_assert_int_eq(strncmp(buf, "SM", 2), 0);
    ck_assert_uint_eq(strlen(buf), 34);
    cJSON_Delete(m);

    m = messages_to(BLAKE);
    ck_assert_str_eq(msg_field(m, 0, "to"), BLAKE);
    ck_assert_str_eq(msg_field(m, 0, "status_callback"),
                     CALLBACK "/elm-st/status/od:elm-st:recall:77");
    ck_assert_str_eq(row("od:elm-st:recall:77", "remote_id", buf, sizeof(buf)),
                     msg_field(m, 0, "sid"));
    cJSON_Delete(m);
    ck_assert_int_eq(state_num("requests", "by_status", "201"), 2);
    ck_assert_int_eq(state_num("requests", "total", NULL), 2);

    /* Nothing left to send: another pass makes no request (one send per message). */
    ds = deliver();
    ck_assert_int_eq(ds.batches, 0);
    ck_assert_int_eq(state_num("requests", "total", NULL), 2);

    char *log = log_text();
    assert_no_patient_data(log, "the log");
    ck_assert_ptr_nonnull(strstr(log, "od:main-st:recall:5521"));
    ck_assert_ptr_null(strstr(log, TOKEN));
    free(log);
}
END_TEST

START_TEST(api_key_and_messaging_service)
{
    char buf[64];
    fake_start(NULL);
    /* The auth token may come along (the webhook endpoints need it): the key authenticates. */
    open_rt("\"api_key_sid\": \"" KEY_SID "\", \"api_key_secret\": \"${TT_KEY_SECRET}\","
            " \"auth_token\": \"${TT_TOKEN}\", \"messaging_service_sid\": \"" SERVICE "\"");
    queue_sms("main-st", "od:main-st:recall:1", AVERY, body_text);
    ck_assert_int_eq(deliver().ok, 1);
    cJSON *m = messages_to(AVERY);
    ck_assert_str_eq(msg_field(m, 0, "auth"), "api_key");
    ck_assert_str_eq(msg_field(m, 0, "auth_user"), KEY_SID);
    ck_assert_str_eq(msg_field(m, 0, "messaging_service_sid"), SERVICE);
    ck_assert_ptr_null(msg_field(m, 0, "from"));
    ck_assert_ptr_null(msg_field(m, 0, "status_callback")); /* no status_callback_url set */
    ck_assert_str_eq(msg_field(m, 0, "status"), "accepted");
    ck_assert_str_eq(row("od:main-st:recall:1", "remote_id", buf, sizeof(buf)),
                     msg_field(m, 0, "sid"));
    cJSON_Delete(m);

    /* A wrong key secret is AUTH: the sink pauses until resumed, the row waits. */
    ck_assert_int_eq(setenv("TT_KEY_SECRET", "not-the-secret", 1), 0);
    open_rt("\"api_key_sid\": \"" KEY_SID "\", \"api_key_secret\": \"${TT_KEY_SECRET}\","
            " \"messaging_service_sid\": \"" SERVICE "\"");
    queue_sms("main-st", "od:main-st:recall:2", AVERY, body_text);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.auth, 1);
    ck_assert(pause_of().paused_until == SINK_PAUSED_INDEFINITELY);
    ck_assert_int_eq(message_count(AVERY), 1);
}
END_TEST

START_TEST(stop_means_opted_out_not_dead)
{
    char buf[256];
    struct raw_http *daemon = NULL;
    char body[512];
    fake_start(NULL);
    open_rt(TOKEN_AUTH);
    /* The patient replies STOP: the fake posts the inbound webhook (to a stand-in for the
     * daemon) and blocks the number from this sender. */
    ck_assert_int_eq(raw_http_start(&daemon), 0);
    snprintf(body, sizeof(body),
             "{\"url\": \"%s/webhooks/twilio/main-st/sms\", \"from\": \"" AVERY
             "\", \"to\": \"" SENDER "\", \"body\": \"Stop\"}",
             raw_http_url(daemon));
    cJSON *in = fake_admin("POST", "/_inbound", body);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(in, "status")),
                     200);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "opt_out_type")),
                     "STOP");
    cJSON_Delete(in);
    ck_assert_uint_eq(raw_http_request_count(daemon), 1);
    ck_assert_ptr_nonnull(strstr(raw_http_request(daemon, 0), "&OptOutType=STOP&"));
    raw_http_stop(daemon);

    queue_sms("main-st", "od:main-st:recall:5521", AVERY, body_text);
    queue_sms("main-st", "od:main-st:recall:5522", BLAKE, body_text);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.opted_out, 1);
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(ds.dead, 0);
    ck_assert_str_eq(row("od:main-st:recall:5521", "state", buf, sizeof(buf)), "done");
    ck_assert_str_eq(row("od:main-st:recall:5521", "remote_id", buf, sizeof(buf)), "");
    ck_assert_int_eq(row_int("od:main-st:recall:5521", "attempts"), 0);
    ck_assert_int_eq(message_count(AVERY), 0);
    ck_assert_int_eq(message_count(BLAKE), 1);
    ck_assert_int_eq(state_num("requests", "by_code", "21610"), 1);
    ck_assert(pause_of().paused_until == 0);

    /* START lifts it at Twilio; a new message then goes out. */
    snprintf(body, sizeof(body),
             "{\"url\": \"http://127.0.0.1:1/x\", \"from\": \"" AVERY "\", \"to\": \"" SENDER
             "\", \"body\": \"START\"}");
    cJSON_Delete(fake_admin("POST", "/_inbound", body));
    queue_sms("main-st", "od:main-st:recall:5523", AVERY, body_text);
    ck_assert_int_eq(deliver().ok, 1);
    ck_assert_int_eq(message_count(AVERY), 1);
}
END_TEST

START_TEST(opted_out_result_detail)
{
    /* The same through the plugin's own sink API, to see the result's detail. */
    char err[512] = "", settings[512];
    struct host_sink *s = NULL;
    struct host_result res[2];
    fake_start(NULL);
    open_rt(TOKEN_AUTH);
    cJSON_Delete(
        fake_admin("POST", "/_optouts", "{\"number\": \"" AVERY "\", \"sender\": \"" SENDER "\"}"));
    snprintf(settings, sizeof(settings),
             "{\"account_sid\": \"${TT_SID}\", \"auth_token\": \"${TT_TOKEN}\", \"from\": \"" SENDER
             "\", \"base_url\": \"http://127.0.0.1:%d\"}",
             fake_port);
    cJSON *json = cJSON_Parse(settings);
    struct runtime_sink *rs = runtime_find_sink(rt, "sms");
    ck_assert_msg(host_sink_create(rs->plugin, "sms2", json, "sinks.sms2", &s, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    cJSON_Delete(json);
    char j0[512], j1[512];
    snprintf(j0, sizeof(j0),
             "{\"key\":\"k0\",\"office\":\"main-st\",\"channel\":\"sms\",\"to\":\"" AVERY
             "\",\"body\":\"%s\"}",
             "Main Street Dental: your cleaning");
    snprintf(j1, sizeof(j1),
             "{\"key\":\"k1\",\"office\":\"main-st\",\"channel\":\"sms\",\"to\":\"" BLAKE
             "\",\"body\":\"%s\"}",
             "Main Street Dental: your cleaning");
    struct odsync_record r0 = {.struct_size = sizeof(r0),
                               .kind = ODSYNC_KIND_MESSAGE,
                               .key = "k0",
                               .office = "main-st",
                               .version = 1,
                               .json = j0,
                               .json_len = strlen(j0)};
    struct odsync_record r1 = r0;
    r1.key = "k1";
    r1.json = j1;
    r1.json_len = strlen(j1);
    const struct odsync_record *recs[] = {&r0, &r1};
    ck_assert_int_eq(host_sink_send(s, recs, 2, res), ODSYNC_OK);
    ck_assert_int_eq(res[0].status, ODSYNC_OPTED_OUT);
    ck_assert_str_eq(res[0].detail, "Twilio 21610: recipient has opted out");
    ck_assert_ptr_null(res[0].remote_id);
    ck_assert_int_eq(res[1].status, ODSYNC_OK);
    ck_assert_int_eq(strncmp(res[1].remote_id, "SM", 2), 0);
    host_results_clear(res, 2);
    host_sink_destroy(s);
}
END_TEST

START_TEST(invalid_numbers_dead_letter_without_the_number)
{
    char buf[256];
    fake_start(NULL);
    open_rt(TOKEN_AUTH);
    queue_sms("main-st", "od:main-st:a", INVALID, body_text);                 /* Twilio: 21211 */
    queue_sms("main-st", "od:main-st:b", LANDLINE, body_text);                /* Twilio: 21614 */
    queue_sms("main-st", "od:main-st:c", "call 555-0100 after 5", body_text); /* plugin */
    queue_sms("main-st", "od:main-st:d", "+1555010012", body_text);           /* too short */
    queue_sms("main-st", "od:main-st:e", AVERY, body_text);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.dead, 4);
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_str_eq(row("od:main-st:a", "state", buf, sizeof(buf)), "dead");
    ck_assert_str_eq(row("od:main-st:a", "last_detail", buf, sizeof(buf)),
                     "Twilio 21211: invalid 'To' phone number");
    ck_assert_int_eq(row_int("od:main-st:a", "last_class"), ODSYNC_PERMANENT);
    ck_assert_str_eq(row("od:main-st:b", "last_detail", buf, sizeof(buf)),
                     "Twilio 21614: 'To' is not a valid mobile number");
    const char *const local[] = {"od:main-st:c", "od:main-st:d"};
    for (size_t i = 0; i < 2; i++) {
        ck_assert_str_eq(row(local[i], "state", buf, sizeof(buf)), "dead");
        row(local[i], "last_detail", buf, sizeof(buf));
        ck_assert_msg(strpbrk(buf, "0123456789") == NULL, "digits in \"%s\"", buf);
        ck_assert_str_eq(buf, "recipient phone number is invalid: neither international format "
                              "nor a US number");
    }
    /* The two refused locally made no request; the fake refused two and accepted one. */
    ck_assert_int_eq(state_num("requests", "total", NULL), 3);
    ck_assert_int_eq(state_num("requests", "by_code", "21211"), 1);
    ck_assert_int_eq(state_num("requests", "by_code", "21614"), 1);
    ck_assert_int_eq(state_num("messages", "count", NULL), 1);
    ck_assert(pause_of().paused_until == 0);

    /* Another Twilio 4xx: its code and message, with numbers masked, and PERMANENT. */
    char longer[2 * sizeof(body_text)];
    snprintf(longer, sizeof(longer), "%s %s", body_text, body_text);
    faults("{\"body-max\": 160}");
    queue_sms("main-st", "od:main-st:f", AVERY, longer);
    ck_assert_int_eq(deliver().dead, 1);
    ck_assert_str_eq(row("od:main-st:f", "last_detail", buf, sizeof(buf)),
                     "Twilio 21617: The concatenated message body exceeds the # character "
                     "limit. (HTTP 400)");

    /* The dead letters hold no number and no body, nor does the log. */
    struct outbox_dead *dead = NULL;
    size_t n = 0;
    ck_assert_int_eq(outbox_dead_list(rt->store, "sms", &dead, &n), ODSYNC_OK);
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_no_patient_data(dead[i].detail, "a dead letter");
    outbox_dead_free(dead, n);
    char *log = log_text();
    assert_no_patient_data(log, "the log");
    free(log);
}
END_TEST

START_TEST(rate_limited_pauses_the_sink)
{
    char buf[128];
    fake_start(NULL);
    open_rt(TOKEN_AUTH);
    faults("{\"rate-limit-next\": 1, \"retry-after\": 7}");
    queue_sms("main-st", "od:main-st:1", AVERY, body_text);
    queue_sms("main-st", "od:main-st:2", BLAKE, body_text);
    queue_sms("elm-st", "od:elm-st:3", AVERY, body_text);
    clock_ms = util_now_ms();
    struct deliver_stats ds = deliver();
    /* The first answer was 429: the other two were held back, not sent. */
    ck_assert_int_eq(ds.rate_limited, 3);
    ck_assert_int_eq(state_num("requests", "total", NULL), 1);
    ck_assert_int_eq(state_num("requests", "by_code", "20429"), 1);
    struct sink_state ss = pause_of();
    ck_assert_int_eq(ss.pause_class, ODSYNC_RATE_LIMITED);
    ck_assert_int_eq(ss.paused_until, clock_ms + 7000);
    ck_assert_str_eq(row("od:main-st:1", "state", buf, sizeof(buf)), "pending");
    ck_assert_int_eq(row_int("od:main-st:1", "attempts"), 0); /* no attempt spent */
    ck_assert_str_eq(row("od:main-st:1", "last_detail", buf, sizeof(buf)),
                     "Twilio 20429: too many requests (HTTP 429)");
    ck_assert_str_eq(row("od:main-st:2", "last_detail", buf, sizeof(buf)),
                     "not sent: HTTP 429 earlier in this batch");

    /* Not due before the pause ends; all sent after it. */
    ds = deliver();
    ck_assert_int_eq(ds.batches, 0);
    clock_ms += 7001;
    ds = deliver();
    ck_assert_int_eq(ds.ok, 3);
    ck_assert_int_eq(state_num("messages", "count", NULL), 3);

    /* Without Retry-After (Twilio's usual 429), the configured default pause. */
    faults("{\"rate-limit-next\": 1, \"retry-after\": 0}");
    queue_sms("main-st", "od:main-st:4", AVERY, body_text);
    ds = deliver();
    ck_assert_int_eq(ds.rate_limited, 1);
    ck_assert_int_eq(row_int("od:main-st:4", "next_at"), clock_ms + 60000);

    /* The per-second cap answers 429 as well. */
    faults("{\"rate-per-second\": 1}");
    queue_sms("main-st", "od:main-st:5", AVERY, body_text);
    queue_sms("main-st", "od:main-st:6", BLAKE, body_text);
    queue_sms("elm-st", "od:elm-st:7", BLAKE, body_text);
    clock_ms += 60001;
    ds = deliver();
    /* Four due (the three and od:main-st:4, whose pause ended), sent within well under a
     * second, so over at most two wall-clock seconds: at least one is refused, the rest of
     * the batch held back. */
    ck_assert_int_ge(ds.rate_limited, 1);
    ck_assert_int_le(ds.ok, 2);
    ck_assert_int_eq(ds.ok + ds.rate_limited, 4);
}
END_TEST

START_TEST(auth_failure_pauses_until_resumed)
{
    char buf[128];
    int cleared = 0;
    fake_start(NULL);
    ck_assert_int_eq(setenv("TT_TOKEN", "wrong-token", 1), 0);
    open_rt(TOKEN_AUTH);
    queue_sms("main-st", "od:main-st:1", AVERY, body_text);
    queue_sms("main-st", "od:main-st:2", BLAKE, body_text);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.auth, 2);
    ck_assert_int_eq(state_num("requests", "by_status", "401"), 1); /* the second held back */
    struct sink_state ss = pause_of();
    ck_assert_int_eq(ss.pause_class, ODSYNC_AUTH);
    ck_assert(ss.paused_until == SINK_PAUSED_INDEFINITELY);
    ck_assert_str_eq(row("od:main-st:1", "last_detail", buf, sizeof(buf)),
                     "Twilio 20003: authentication failed (HTTP 401)");
    ck_assert_int_eq(row_int("od:main-st:1", "attempts"), 0);
    char health[128];
    ck_assert_int_eq(host_sink_health(runtime_find_sink(rt, "sms")->sink, health, sizeof(health)),
                     ODSYNC_AUTH);
    ck_assert_str_eq(health, "last request: HTTP 401 (AUTH)");

    /* The operator fixes the token and resumes: both go out. */
    ck_assert_int_eq(setenv("TT_TOKEN", TOKEN, 1), 0);
    open_rt(TOKEN_AUTH);
    ck_assert_int_eq(sink_state_resume(rt->store, "sms", &cleared), ODSYNC_OK);
    ck_assert_int_eq(deliver().ok, 2);
    ck_assert_int_eq(state_num("messages", "count", NULL), 2);
}
END_TEST

START_TEST(server_errors_are_retried_never_a_crash)
{
    char buf[256];
    fake_start(NULL);
    open_rt(TOKEN_AUTH);

    /* A 502 HTML page, a 500 with Twilio's JSON, a 500 with truncated JSON: nothing stored,
     * RETRY each time (attempts counted), then delivered once. */
    static const struct {
        const char *fault, *detail;
    } cases[] = {
        {"{\"html502-next\": 1}", "HTTP 502 (not a JSON answer)"},
        {"{\"fail-next\": 1}", "Twilio 20500: An internal server error has occurred (HTTP 500)"},
        {"{\"truncate-next\": 1, \"truncate-status\": 500}", "HTTP 500 (not a JSON answer)"},
        {"{\"truncate-next\": 1, \"truncate-status\": 503}", "HTTP 503 (not a JSON answer)"},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        char key[32];
        snprintf(key, sizeof(key), "od:main-st:%zu", i);
        faults(cases[i].fault);
        queue_sms("main-st", key, AVERY, body_text);
        struct deliver_stats ds = deliver();
        ck_assert_int_eq(ds.retried, 1);
        ck_assert_str_eq(row(key, "state", buf, sizeof(buf)), "pending");
        ck_assert_int_eq(row_int(key, "attempts"), 1);
        ck_assert_int_eq(row_int(key, "last_class"), ODSYNC_RETRY);
        ck_assert_str_eq(row(key, "last_detail", buf, sizeof(buf)), cases[i].detail);
        ck_assert_int_eq(message_count(AVERY), (int64_t)i);
        nap();
        ds = deliver();
        ck_assert_int_eq(ds.ok, 1);
        ck_assert_int_eq(message_count(AVERY), (int64_t)i + 1);
        ck_assert(pause_of().paused_until == 0);
    }

    /* A 201 whose JSON is cut: Twilio created the message, so it counts as sent (without a
     * sid) and is never sent again: one text, not two. */
    faults("{\"truncate-next\": 1, \"truncate-status\": 201}");
    queue_sms("main-st", "od:main-st:cut", BLAKE, body_text);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_str_eq(row("od:main-st:cut", "state", buf, sizeof(buf)), "done");
    ck_assert_str_eq(row("od:main-st:cut", "remote_id", buf, sizeof(buf)), "");
    nap();
    ck_assert_int_eq(deliver().batches, 0);
    ck_assert_int_eq(message_count(BLAKE), 1);
}
END_TEST

START_TEST(timeouts_and_refused_connections_are_retried)
{
    char buf[256];
    fake_start(NULL);
    open_rt(TOKEN_AUTH ", \"timeout_ms\": 300");
    faults("{\"delay-ms\": 2000}");
    queue_sms("main-st", "od:main-st:1", AVERY, body_text);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.retried, 1);
    row("od:main-st:1", "last_detail", buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "transport error: ", 17) == 0, "%s", buf);
    assert_no_patient_data(buf, "a detail");
    char health[128];
    ck_assert_int_eq(host_sink_health(runtime_find_sink(rt, "sms")->sink, health, sizeof(health)),
                     ODSYNC_RETRY);

    /* Nothing listening: RETRY too. */
    tu_stop(fake_pid);
    fake_pid = -1;
    nap();
    ds = deliver();
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_int_eq(row_int("od:main-st:1", "attempts"), 2);
}
END_TEST

START_TEST(records_refused_before_any_request)
{
    char buf[256];
    fake_start(NULL);
    open_rt(TOKEN_AUTH);
    queue_sms("main-st", "od:main-st:1", AVERY, "");
    struct enqueue_args e = {"main-st", "od:main-st:2",
                             "{\"key\":\"od:main-st:2\",\"office\":\"main-st\",\"channel\":"
                             "\"email\",\"to\":\"a@example.com\",\"body\":\"x\"}"};
    ck_assert_int_eq(store_tx(rt->store, enqueue_tx, &e), ODSYNC_OK);
    struct enqueue_args t = {"main-st", "od:main-st:3",
                             "{\"key\":\"od:main-st:3\",\"office\":\"main-st\",\"channel\":"
                             "\"sms\",\"to\":\"" AVERY "\",\"body\":null,\"template_id\":\"t1\"}"};
    ck_assert_int_eq(store_tx(rt->store, enqueue_tx, &t), ODSYNC_OK);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.dead, 3);
    ck_assert_str_eq(row("od:main-st:1", "last_detail", buf, sizeof(buf)), "message has no body");
    ck_assert_str_eq(row("od:main-st:2", "last_detail", buf, sizeof(buf)),
                     "message channel is not \"sms\"");
    ck_assert_int_eq(row_int("od:main-st:2", "last_class"), ODSYNC_UNSUPPORTED);
    ck_assert_str_eq(row("od:main-st:3", "last_detail", buf, sizeof(buf)),
                     "provider templates are not supported: the message needs a body");
    ck_assert_int_eq(state_num("requests", "total", NULL), 0);
}
END_TEST

START_TEST(bad_settings_refused)
{
    static const struct {
        const char *settings, *error;
    } cases[] = {
        {"\"from\": \"" SENDER "\"", "auth_token: required"},
        {TOKEN_AUTH ", \"api_key_sid\": \"" KEY_SID "\"", "api_key_secret: an API key needs both"},
        {"\"auth_token\": \"${TT_TOKEN}\"", "from: set exactly one"},
        {TOKEN_AUTH ", \"messaging_service_sid\": \"" SERVICE "\"", "from: set exactly one"},
        {"\"auth_token\": \"${TT_TOKEN}\", \"from\": \"555-0100\"", "from: expected an E.164"},
        {"\"auth_token\": \"${TT_TOKEN}\", \"messaging_service_sid\": \"MG12\"",
         "messaging_service_sid: expected MG"},
        {"\"api_key_sid\": \"SK1\", \"api_key_secret\": \"${TT_KEY_SECRET}\", \"from\": \"" SENDER
         "\"",
         "api_key_sid: expected SK"},
        {"\"api_key_sid\": \"" KEY_SID "\", \"from\": \"" SENDER "\"",
         "api_key_secret: an API key needs both"},
        {TOKEN_AUTH ", \"status_callback_url\": \"https://x.example.com/a?b=1\"",
         "status_callback_url: expected"},
        {TOKEN_AUTH ", \"timeout_ms\": 5", "timeout_ms"},
        {"\"auth_token\": \"literal\", \"from\": \"" SENDER "\"", "sinks.sms.auth_token"},
    };
    fake_start(NULL);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        char text[2048], err[512] = "";
        struct config *cfg = NULL;
        snprintf(text, sizeof(text),
                 "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
                 " \"sinks\": {\"sms\": {\"plugin\": \"twilio\", \"account_sid\": \"${TT_SID}\","
                 " \"base_url\": \"http://127.0.0.1:%d\", %s}},"
                 " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\":"
                 " \"America/Chicago\", \"opendental\": {\"base_url\": \"http://127.0.0.1:1/api\","
                 " \"developer_key\": \"${TT_OD_DEV}\", \"customer_key\": \"${TT_OD_CUST}\"},"
                 " \"routes\": {\"sms\": [\"sms\"]}}]}\n",
                 dir, tu_build_dir(), fake_port, cases[i].settings);
        int rc = config_parse(text, strlen(text), "twilio.json", &cfg, err, sizeof(err));
        if (rc == ODSYNC_OK) {
            rc = runtime_open(cfg, 0, &rt, err, sizeof(err));
            cfg = NULL; /* runtime_open owns it, also on failure */
        }
        ck_assert_msg(rc != ODSYNC_OK, "case %zu accepted", i);
        ck_assert_msg(strstr(err, cases[i].error) != NULL, "case %zu: %s", i, err);
        ck_assert_ptr_null(strstr(err, TOKEN));
        ck_assert_ptr_null(strstr(err, "literal\""));
        ck_assert_ptr_null(rt);
    }
    ck_assert_int_eq(state_num("requests", "total", NULL), 0);
}
END_TEST

/* ---- the fake's webhooks ----------------------------------------------------------------- */

/* Twilio's signature computed here, independently of the fake: Base64(HMAC-SHA1(token, url +
 * each name+value sorted by name)). params: "name", "value", … NULL. Into out (>= 32). */
static void expected_signature(const char *token, const char *url, const char *const *params,
                               char *out)
{
    const char *names[32], *values[32];
    size_t n = 0;
    char data[4096];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    for (; params[2 * n] != NULL; n++) {
        names[n] = params[2 * n];
        values[n] = params[2 * n + 1];
    }
    for (size_t i = 1; i < n; i++) /* insertion sort by name */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *tn = names[j], *tv = values[j];
            names[j] = names[j - 1];
            values[j] = values[j - 1];
            names[j - 1] = tn;
            values[j - 1] = tv;
        }
    size_t off = (size_t)snprintf(data, sizeof(data), "%s", url);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(data + off, sizeof(data) - off, "%s%s", names[i], values[i]);
    ck_assert_uint_lt(off, sizeof(data));
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha1(), token, (int)strlen(token), (unsigned char *)data, off, md, &md_len));
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
}

/* Decode a form component in place ('+' is a space, %XX a byte). */
static void form_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

/* The X-Twilio-Signature header of a recorded request into out ("" when absent). */
static void header_of(const char *req, const char *name, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    const char *h = strstr(req, pat);
    out[0] = '\0';
    if (h == NULL)
        return;
    h += strlen(pat);
    size_t n = strcspn(h, "\r");
    snprintf(out, len, "%.*s", (int)n, h);
}

/* The signature of a recorded request recomputed from its form body, over url. */
static void recompute(const char *req, const char *token, const char *url, char *out)
{
    char *body = strdup(strstr(req, "\r\n\r\n") + 4), *save = NULL;
    const char *params[66];
    size_t n = 0;
    for (char *p = strtok_r(body, "&", &save); p != NULL && n + 2 < UTIL_ARRAY_LEN(params);
         p = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(p, '=');
        ck_assert_ptr_nonnull(eq);
        *eq = '\0';
        form_decode(p);
        form_decode(eq + 1);
        params[n++] = p;
        params[n++] = eq + 1;
    }
    params[n] = NULL;
    expected_signature(token, url, params, out);
    free(body);
}

START_TEST(signature_known_vector)
{
    /* Twilio's documented example (webhooks-security): token 12345, this URL and these
     * parameters sign to 0/KCTR6DLpKmkAf8muzZqo1nDgQ= (recomputed here and by Python's hmac
     * when this test was written). */
    static const char url[] = "https://mycompany.com/myapp.php?foo=1&bar=2";
    static const char *const params[] = {
        "CallSid", "CA1234567890ABCDE", "Caller", "+12349013030", "Digits", "1234",
        "From",    "+12349013030",      "To",     "+18005551212", NULL};
    char sig[64], header[64], body[1024];
    struct raw_http *daemon = NULL;
    expected_signature("12345", url, params, sig);
    ck_assert_str_eq(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");

    /* The fake signs the same parameters over the same public URL (delivering to loopback,
     * as behind a proxy) with the same token: the same header. */
    fake_start(NULL);
    ck_assert_int_eq(raw_http_start(&daemon), 0);
    snprintf(body, sizeof(body),
             "{\"url\": \"%s/myapp.php?foo=1&bar=2\", \"public_url\": \"%s\","
             " \"signing_token\": \"12345\", \"params\": {\"To\": \"+18005551212\", \"CallSid\":"
             " \"CA1234567890ABCDE\", \"Digits\": \"1234\", \"From\": \"+12349013030\","
             " \"Caller\": \"+12349013030\"}}",
             raw_http_url(daemon), url);
    cJSON *r = fake_admin("POST", "/_inbound", body);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "signature")),
                     "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "status")), 200);
    cJSON_Delete(r);
    ck_assert_uint_eq(raw_http_request_count(daemon), 1);
    header_of(raw_http_request(daemon, 0), "X-Twilio-Signature", header, sizeof(header));
    ck_assert_str_eq(header, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    ck_assert_int_eq(
        strncmp(raw_http_request(daemon, 0), "POST /myapp.php?foo=1&bar=2 HTTP/1.1", 36), 0);
    raw_http_stop(daemon);
}
END_TEST

START_TEST(inbound_and_status_webhooks_are_signed)
{
    char sig[64], header[64], body[1024], url[256], buf[128];
    struct raw_http *daemon = NULL;
    fake_start(NULL);
    open_rt(TOKEN_AUTH ", \"status_callback_url\": \"" CALLBACK "\"");
    ck_assert_int_eq(raw_http_start(&daemon), 0);
    ck_assert_int_eq(
        raw_http_push_response(daemon, 200, "Content-Type: text/xml\r\n", "<Response/>"), 0);
    ck_assert_int_eq(raw_http_push_response(daemon, 403, NULL, "{\"error\":\"bad signature\"}"), 0);

    /* (a) An inbound HELP, signed with the auth token over the URL called. */
    snprintf(url, sizeof(url), "%s/webhooks/twilio/main-st/sms", raw_http_url(daemon));
    snprintf(body, sizeof(body),
             "{\"url\": \"%s\", \"from\": \"" AVERY "\", \"to\": \"" SENDER
             "\", \"body\": \"help me please\"}",
             url);
    cJSON *r = fake_admin("POST", "/_inbound", body);
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(r, "opt_out_type"));
    ck_assert(
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "opt_out_type"))); /* not a keyword */
    cJSON_Delete(r);
    const char *req = raw_http_request(daemon, 0);
    ck_assert_ptr_nonnull(strstr(req, "POST /webhooks/twilio/main-st/sms HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "Content-Type: application/x-www-form-urlencoded\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "Body=help+me+please"));
    ck_assert_ptr_nonnull(strstr(req, "From=%2B15550100123"));
    ck_assert_ptr_nonnull(strstr(req, "NumMedia=0"));
    ck_assert_ptr_nonnull(strstr(req, "AccountSid=" ACCOUNT));
    ck_assert_ptr_null(strstr(req, "OptOutType"));
    header_of(req, "X-Twilio-Signature", header, sizeof(header));
    recompute(req, TOKEN, url, sig);
    ck_assert_str_eq(header, sig);

    /* A wrong signing token: the header no longer matches; the fake reports what the daemon
     * answered. */
    snprintf(body, sizeof(body),
             "{\"url\": \"%s\", \"from\": \"" AVERY "\", \"to\": \"" SENDER
             "\", \"body\": \"STOP\", \"signing_token\": \"forged\"}",
             url);
    r = fake_admin("POST", "/_inbound", body);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "status")), 403);
    cJSON_Delete(r);
    req = raw_http_request(daemon, 1);
    ck_assert_ptr_nonnull(strstr(req, "OptOutType=STOP"));
    header_of(req, "X-Twilio-Signature", header, sizeof(header));
    recompute(req, TOKEN, url, sig);
    ck_assert_str_ne(header, sig);
    recompute(req, "forged", url, sig);
    ck_assert_str_eq(header, sig);

    /* (b) A status callback for a message the plugin sent goes to its StatusCallback; here
     * redirected (url) to the stand-in while signed over the public URL. */
    queue_sms("main-st", "od:main-st:1", BLAKE, body_text);
    ck_assert_int_eq(deliver().ok, 1);
    char sid[64];
    row("od:main-st:1", "remote_id", sid, sizeof(sid));
    snprintf(body, sizeof(body),
             "{\"sid\": \"%s\", \"status\": \"undelivered\", \"error_code\": 30006,"
             " \"url\": \"%s/webhooks/twilio/main-st/status\", \"public_url\": \"" CALLBACK
             "/main-st/status\"}",
             sid, raw_http_url(daemon));
    r = fake_admin("POST", "/_status", body);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "status")), 200);
    cJSON_Delete(r);
    req = raw_http_request(daemon, 2);
    ck_assert_ptr_nonnull(strstr(req, "MessageStatus=undelivered"));
    ck_assert_ptr_nonnull(strstr(req, "ErrorCode=30006"));
    snprintf(buf, sizeof(buf), "MessageSid=%s", sid);
    ck_assert_ptr_nonnull(strstr(req, buf));
    ck_assert_ptr_nonnull(strstr(req, "To=%2B15550100124"));
    ck_assert_ptr_nonnull(strstr(req, "From=%2B15550100000"));
    header_of(req, "X-Twilio-Signature", header, sizeof(header));
    recompute(req, TOKEN, CALLBACK "/main-st/status", sig);
    ck_assert_str_eq(header, sig);
    cJSON *m = messages_to(BLAKE);
    ck_assert_str_eq(msg_field(m, 0, "status"), "undelivered");
    cJSON_Delete(m);

    /* Unsigned: no header at all. */
    snprintf(body, sizeof(body),
             "{\"sid\": \"%s\", \"status\": \"delivered\", \"url\": \"%s/s\","
             " \"unsigned\": true}",
             sid, raw_http_url(daemon));
    cJSON_Delete(fake_admin("POST", "/_status", body));
    ck_assert_ptr_null(strstr(raw_http_request(daemon, 3), "X-Twilio-Signature"));
    ck_assert_int_eq(state_num("webhooks", "inbound", NULL), 2);
    ck_assert_int_eq(state_num("webhooks", "status", NULL), 2);
    raw_http_stop(daemon);
}
END_TEST

START_TEST(automatic_status_callbacks)
{
    struct raw_http *daemon = NULL;
    char settings[512], header[64], sig[64], url[256];
    ck_assert_int_eq(raw_http_start(&daemon), 0);
    const char *extra[] = {"--auto-status", "delivered", NULL};
    fake_start(extra);
    snprintf(settings, sizeof(settings),
             TOKEN_AUTH ", \"status_callback_url\": \"%s/webhooks/twilio\"", raw_http_url(daemon));
    open_rt(settings);
    queue_sms("elm-st", "od:elm-st:1", AVERY, body_text);
    ck_assert_int_eq(deliver().ok, 1);
    ck_assert_int_eq(raw_http_wait_requests(daemon, 2, 10000), 0);
    snprintf(url, sizeof(url), "%s/webhooks/twilio/elm-st/status/od:elm-st:1",
             raw_http_url(daemon));
    for (size_t i = 0; i < 2; i++) {
        const char *req = raw_http_request(daemon, i);
        ck_assert_ptr_nonnull(
            strstr(req, "POST /webhooks/twilio/elm-st/status/od:elm-st:1 HTTP/1.1"));
        ck_assert_ptr_nonnull(
            strstr(req, i == 0 ? "MessageStatus=sent" : "MessageStatus=delivered"));
        header_of(req, "X-Twilio-Signature", header, sizeof(header));
        recompute(req, TOKEN, url, sig);
        ck_assert_str_eq(header, sig);
    }
    raw_http_stop(daemon);
}
END_TEST

START_TEST(fake_rules_by_hand)
{
    /* Requests the plugin never makes: JSON bodies, missing fields, both senders, a wrong
     * account in the path, the list and fetch routes. */
    char url[256];
    struct http_client *c = http_client_create();
    fake_start(NULL);
    static const struct {
        const char *type, *form;
        int status, code;
    } cases[] = {
        {"application/json", "{}", 415, 20415},
        {NULL, "From=%2B15550100000&Body=x", 400, 21604},
        {NULL, "To=%2B15550100123&Body=x", 400, 21603},
        {NULL, "To=%2B15550100123&From=%2B15550100000", 400, 21602},
        {NULL, "To=%2B15550100123&From=%2B15550100000&MessagingServiceSid=" SERVICE "&Body=x", 400,
         21603},
        {NULL, "To=%2B15550100123&From=%2B15550100001&Body=x", 400, 21606},
        {NULL, "To=5550100123&From=%2B15550100000&Body=x", 400, 21211},
        {NULL, "To=%2B15550100123&From=%2B15550100000&Body=hi&StatusCallback=ftp%3A%2F%2Fx", 400,
         21609},
        {NULL, "To=%2B15550100123&MessagingServiceSid=MG00&Body=x", 400, 21701},
        {NULL, "To=%2B15550100123&From=%2B15550100000&Body=hi+there", 201, 0},
    };
    const char auth[] = "Basic "; /* + base64(ACCOUNT:TOKEN) */
    char cred[256], b64[256], authz[300];
    snprintf(cred, sizeof(cred), "%s:%s", ACCOUNT, TOKEN);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cred, (int)strlen(cred));
    snprintf(authz, sizeof(authz), "%s%s", auth, b64);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct odsync_http_header h[] = {
            {"Authorization", authz},
            {"Content-Type", cases[i].type ? cases[i].type : "application/x-www-form-urlencoded"}};
        struct odsync_http_request req = {.struct_size = sizeof(req),
                                          .method = "POST",
                                          .url = url,
                                          .headers = h,
                                          .header_count = 2,
                                          .body = cases[i].form,
                                          .body_len = strlen(cases[i].form)};
        struct odsync_http_response *resp = NULL;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/2010-04-01/Accounts/%s/Messages.json",
                 fake_port, ACCOUNT);
        http_client_perform(c, &req, &resp);
        ck_assert_msg(resp->status == cases[i].status, "case %zu: %d %s", i, resp->status,
                      resp->body);
        cJSON *j = cJSON_Parse(resp->body);
        if (cases[i].code != 0) {
            ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "code")),
                             cases[i].code);
            char more[80];
            snprintf(more, sizeof(more), "https://www.twilio.com/docs/errors/%d", cases[i].code);
            ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "more_info")),
                             more);
            ck_assert_int_eq(
                (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "status")),
                cases[i].status);
        } else {
            ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "body")),
                             "hi there");
            ck_assert_str_eq(
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "num_segments")), "1");
        }
        cJSON_Delete(j);
        http_response_free(resp);
    }

    /* Identical POSTs create two messages: Twilio has no idempotency key. */
    /* The list route with To and DateSent filters, and a wrong account in the path. */
    struct odsync_http_header h[] = {{"Authorization", authz}};
    struct odsync_http_request get = {
        .struct_size = sizeof(get), .method = "GET", .url = url, .headers = h, .header_count = 1};
    struct odsync_http_response *resp = NULL;
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/2010-04-01/Accounts/%s/Messages.json?To=%%2B15550100123"
             "&DateSent%%3E=2020-01-01",
             fake_port, ACCOUNT);
    http_client_perform(c, &get, &resp);
    ck_assert_int_eq(resp->status, 200);
    cJSON *j = cJSON_Parse(resp->body);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "messages")), 1);
    cJSON_Delete(j);
    http_response_free(resp);
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/2010-04-01/Accounts/AC00000000000000000000000000000000/"
             "Messages.json",
             fake_port);
    http_client_perform(c, &get, &resp);
    ck_assert_int_eq(resp->status, 401);
    ck_assert_ptr_nonnull(strstr(resp->body, "\"code\":20003"));
    http_response_free(resp);
    http_client_destroy(c);
}
END_TEST

/* The suite (caller runs it). */
static Suite *twilio_suite(void)
{
    Suite *s = suite_create("plugin_twilio");
    TCase *tc = tcase_create("twilio");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, descriptor_and_setup);
    tcase_add_test(tc, send_ok_with_sid_and_request_shape);
    tcase_add_test(tc, api_key_and_messaging_service);
    tcase_add_test(tc, stop_means_opted_out_not_dead);
    tcase_add_test(tc, opted_out_result_detail);
    tcase_add_test(tc, invalid_numbers_dead_letter_without_the_number);
    tcase_add_test(tc, rate_limited_pauses_the_sink);
    tcase_add_test(tc, auth_failure_pauses_until_resumed);
    tcase_add_test(tc, server_errors_are_retried_never_a_crash);
    tcase_add_test(tc, timeouts_and_refused_connections_are_retried);
    tcase_add_test(tc, records_refused_before_any_request);
    tcase_add_test(tc, bad_settings_refused);
    tcase_add_test(tc, signature_known_vector);
    tcase_add_test(tc, inbound_and_status_webhooks_are_signed);
    tcase_add_test(tc, automatic_status_callbacks);
    tcase_add_test(tc, fake_rules_by_hand);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(twilio_suite)
