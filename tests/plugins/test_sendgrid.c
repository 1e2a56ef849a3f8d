/*
 * test_sendgrid: the real build/plugins/sendgrid.so, loaded by runtime_open (core/plugin.c +
 * core/host_api.c) from a config, fed message records queued directly in a real SQLite
 * outbox and driven by core/deliver.c's deliver_sink, against build/contrib/fakes/fake_sendgrid
 * over loopback. Every test starts its own fake and asserts what the fake received (requests,
 * personalizations, custom_args, groups, headers), what the outbox and the sink's pause say,
 * and that no address or body reached odsync's log. The signature test verifies the fake's
 * signed Event Webhook POST with OpenSSL, independently of the fake, as SendGrid documents it.
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
#include <openssl/x509.h>
#include <sqlite3.h>

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

#define API_KEY  "SG.test-5f1d2c9a.0123456789abcdefghijklmnopqrstuvwxyz"
#define TEMPLATE "d-0123456789abcdef0123456789abcdef"
#define SINK     "email"

static char *dir;           /* per test */
static pid_t fake_pid = -1; /* per test */
static int fake_port;       /* per test */
static struct runtime *rt;  /* per test */
static char *log_path;      /* dir/odsync.log: everything odsync logged */
static FILE *log_file;
static int64_t clock_ms; /* the delivery engine's clock (0: the real one) */

static int64_t test_clock(void)
{
    return clock_ms != 0 ? clock_ms : util_now_ms();
}

/* Start the fake with extra flags (NULL-terminated, may be NULL). */
static void fake_start(const char *const *extra)
{
    char *path = tu_build_path("contrib/fakes/fake_sendgrid");
    char errp[512];
    const char *argv[24] = {path, "--api-key", API_KEY, "--seed", "7"};
    size_t n = 5;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < UTIL_ARRAY_LEN(argv); i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(errp, sizeof(errp), "%s/fake.log", dir);
    fake_pid = tu_spawn_server(argv, errp, &fake_port);
    free(path);
}

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
    ck_assert_int_eq(setenv("SGT_API_KEY", API_KEY, 1), 0);
    ck_assert_int_eq(setenv("SGT_OD_DEV", "dev-key", 1), 0);
    ck_assert_int_eq(setenv("SGT_OD_CUST", "cust-key", 1), 0);
    clock_ms = 0;
}

static void teardown(void)
{
    runtime_close(rt);
    rt = NULL;
    if (fake_pid > 0)
        tu_stop(fake_pid);
    fake_pid = -1;
    http_global_cleanup();
    log_shutdown();
    fclose(log_file);
    tu_rmrf(dir);
    free(dir);
    free(log_path);
}

/* Open the runtime: sink "email" is the sendgrid plugin at the fake, with the groups of every
 * test and the extra sink settings (JSON members, may be ""). */
static void open_rt(const char *sink_extra)
{
    char text[4096], err[512] = "";
    struct config *cfg = NULL;
    runtime_close(rt);
    rt = NULL;
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
             " \"log\": {\"level\": \"debug\"},"
             " \"delivery\": {\"max_attempts\": 5, \"backoff_base_ms\": 1, \"backoff_cap_ms\": 1},"
             " \"sinks\": {\"email\": {\"plugin\": \"sendgrid\", \"api_key\": \"${SGT_API_KEY}\","
             " \"base_url\": \"http://127.0.0.1:%d\", \"from_email\": "
             "\"reminders@mainst.example.com\", \"from_name\": \"Main Street Dental\","
             " \"asm_group_id\": 999, \"asm_groups\": \"recall=111, review=333\"%s%s}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\":"
             " \"America/Chicago\", \"opendental\": {\"base_url\": \"http://127.0.0.1:1/api/v1\","
             " \"developer_key\": \"${SGT_OD_DEV}\", \"customer_key\": \"${SGT_OD_CUST}\","
             " \"tier\": \"paid\", \"min_interval_ms\": 0},"
             " \"routes\": {\"email\": [\"email\"]}}]}\n",
             dir, tu_build_dir(), fake_port, sink_extra[0] ? ", " : "", sink_extra);
    ck_assert_msg(config_parse(text, strlen(text), "sendgrid.json", &cfg, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "config: %s", err);
    ck_assert_msg(runtime_open(cfg, 0, &rt, err, sizeof(err)) == ODSYNC_OK, "runtime: %s", err);
}

/* A message record's JSON (caller frees). tmpl NULL: no template, a rendered subject and body
 * naming first_name; tmpl "": template_id null but template_data (the campaign's template
 * from the settings applies); else that template_id with template_data. */
static char *message(const char *key, const char *to, const char *campaign, const char *tmpl,
                     const char *first_name)
{
    char *s = malloc(2048);
    ck_assert_ptr_nonnull(s);
    if (tmpl != NULL)
        snprintf(s, 2048,
                 "{\"key\": \"%s\", \"office\": \"main-st\", \"contact_key\": \"od:main-st:1\","
                 " \"channel\": \"email\", \"campaign\": \"%s\", \"to\": \"%s\","
                 " \"subject\": null, \"body\": null, \"template_id\": %s%s%s,"
                 " \"template_data\": {\"first_name\": \"%s\", \"practice_phone\": "
                 "\"(555) 010-1000\"}}",
                 key, campaign, to, tmpl[0] ? "\"" : "", tmpl[0] ? tmpl : "null",
                 tmpl[0] ? "\"" : "", first_name);
    else
        snprintf(s, 2048,
                 "{\"key\": \"%s\", \"office\": \"main-st\", \"contact_key\": \"od:main-st:1\","
                 " \"channel\": \"email\", \"campaign\": \"%s\", \"to\": \"%s\","
                 " \"subject\": \"Time for your cleaning\","
                 " \"body\": \"<p>Hi %s, it is time for your cleaning at Main Street "
                 "Dental.</p>\", \"template_id\": null, \"template_data\": null}",
                 key, campaign, to, first_name);
    return s;
}

struct enq {
    const char *key, *json;
};

static int enqueue_tx(struct store *st, void *arg)
{
    const struct enq *e = arg;
    return outbox_enqueue(st, SINK, "main-st", e->key, ODSYNC_KIND_MESSAGE, 1, e->json);
}

/* Queue a message record for the sink (json is freed). */
static void enqueue(const char *key, char *json)
{
    struct enq e = {key, json};
    ck_assert_int_eq(store_tx(rt->store, enqueue_tx, &e), ODSYNC_OK);
    free(json);
}

/* One delivery pass of the sink with the config's policy and the test clock. */
static struct deliver_stats deliver(void)
{
    struct runtime_sink *rs = runtime_find_sink(rt, SINK);
    struct deliver_policy pol;
    struct deliver_stats ds;
    ck_assert_ptr_nonnull(rs);
    memset(&ds, 0, sizeof(ds));
    deliver_policy_from_config(&pol, &rs->cfg->delivery);
    pol.clock = test_clock;
    ck_assert_int_eq(deliver_sink(rt->store, rs->sink, &pol, &ds), ODSYNC_OK);
    return ds;
}

/* A request to the fake's admin API (body may be NULL); parsed answer (caller frees). */
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

static void fake_post(const char *path, const char *json)
{
    cJSON_Delete(fake_admin("POST", path, json));
}

/* Answers the fake gave on route with status ("total" for all). */
static int64_t requests(const char *route, const char *status)
{
    cJSON *st = fake_admin("GET", "/_state", NULL);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "requests"), route),
        status);
    int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    cJSON_Delete(st);
    return n;
}

/* What the fake stored for to (NULL = everything): {"count", "mail": [...]} (caller frees). */
static cJSON *mail_to(const char *to)
{
    char path[256];
    if (to == NULL)
        snprintf(path, sizeof(path), "/_mail");
    else
        snprintf(path, sizeof(path), "/_mail?to=%s", to);
    return fake_admin("GET", path, NULL);
}

static int mail_count(const char *to)
{
    cJSON *m = mail_to(to);
    int n = (int)cJSON_GetObjectItemCaseSensitive(m, "count")->valuedouble;
    cJSON_Delete(m);
    return n;
}

/* Column of the outbox row of key as text into buf ("" for NULL). */
static const char *row(const char *key, const char *column, char *buf, size_t len)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof(sql), "SELECT %s FROM outbox WHERE sink = '" SINK "' AND key = ?", column);
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(rt->store), sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    ck_assert_msg(sqlite3_step(s) == SQLITE_ROW, "no outbox row %s", key);
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
    sqlite3_finalize(s);
    return buf;
}

static int64_t row_int(const char *key, const char *column)
{
    char buf[64];
    return strtoll(row(key, column, buf, sizeof(buf)), NULL, 10);
}

static struct sink_state pause_of(void)
{
    struct sink_state ss;
    ck_assert_int_eq(sink_state_get(rt->store, SINK, &ss), ODSYNC_OK);
    return ss;
}

/* The log must hold no address and no body (patient data). */
static void log_has_no_patient_data(void)
{
    fflush(log_file);
    char *t = tu_read_file(log_path);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(strstr(t, "mail send: ")); /* debug lines were written */
    ck_assert_ptr_nonnull(strstr(t, "/v3/mail/send"));
    ck_assert_msg(strstr(t, "@example") == NULL, "an address reached the log:\n%s", t);
    ck_assert_msg(strstr(t, "cleaning at Main") == NULL, "a body reached the log");
    ck_assert_msg(strstr(t, "Avery") == NULL, "a name reached the log");
    ck_assert_msg(strstr(t, API_KEY) == NULL, "the API key reached the log");
    free(t);
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_GetStringValue(v);
}

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(descriptor_and_setup)
{
    char err[512] = "";
    struct plugin *p = NULL;
    char *path = tu_build_path("plugins/sendgrid.so");
    ck_assert_msg(plugin_open(path, &p, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    const struct odsync_sink_descriptor *d = plugin_descriptor(p);
    ck_assert_str_eq(d->name, "sendgrid");
    ck_assert(d->capabilities == ODSYNC_CAP_EMAIL);
    ck_assert_uint_eq(d->max_batch, 1000);
    ck_assert_ptr_nonnull(d->setup);
    ck_assert_ptr_nonnull(strstr(d->setup, "{public_url}/webhooks/sendgrid/{office}/events"));
    ck_assert_ptr_nonnull(strstr(d->setup, "Signed Event"));
    ck_assert_ptr_nonnull(strstr(d->setup, "DKIM"));
    ck_assert_ptr_nonnull(strstr(d->setup, "DMARC"));
    int secret = 0;
    for (const struct odsync_config_spec *c = d->config; c->name != NULL; c++)
        if (strcmp(c->name, "api_key") == 0)
            secret = (c->flags & ODSYNC_CFG_SECRET) != 0;
    ck_assert_int_eq(secret, 1);
    plugin_close(p);
    free(path);
}
END_TEST

START_TEST(one_message_with_one_click_unsubscribe)
{
    fake_start(NULL);
    open_rt("\"list_unsubscribe_url\": \"https://mainst.example.com/u/{office}/{key}?c={campaign}"
            "&g={group}\", \"list_unsubscribe_mailto\": \"unsubscribe@mainst.example.com\","
            " \"reply_to\": \"frontdesk@mainst.example.com\"");
    const char *key = "od:main-st:recall:5521:email";
    enqueue(key, message(key, "Avery.Quill@example.com", "recall", NULL, "Avery"));
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(requests("mail_send", "202"), 1);
    ck_assert_int_eq(requests("mail_send", "total"), 1);
    ck_assert_int_eq(requests("suppression_list", "total"), 0); /* check_suppressions off */

    cJSON *m = mail_to("avery.quill@example.com");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(m, "count")->valueint, 1);
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "mail"), 0);
    ck_assert_str_eq(str_at(e, "subject", NULL), "Time for your cleaning");
    ck_assert_ptr_null(str_at(e, "template_id", NULL));
    const cJSON *content = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "content"), 0);
    ck_assert_str_eq(str_at(content, "type", NULL), "text/html");
    ck_assert_str_eq(str_at(content, "value", NULL),
                     "<p>Hi Avery, it is time for your cleaning at Main Street Dental.</p>");
    ck_assert_str_eq(str_at(e, "custom_args", "odsync_key"), key);
    ck_assert_str_eq(str_at(e, "custom_args", "odsync_office"), "main-st");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(e, "asm_group_id")->valueint, 111);
    ck_assert_str_eq(str_at(e, "from", "email"), "reminders@mainst.example.com");
    ck_assert_str_eq(str_at(e, "from", "name"), "Main Street Dental");
    ck_assert_str_eq(str_at(e, "reply_to", "email"), "frontdesk@mainst.example.com");
    ck_assert_str_eq(cJSON_GetStringValue(
                         cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "categories"), 0)),
                     "recall");
    ck_assert_str_eq(str_at(e, "headers", "List-Unsubscribe"),
                     "<https://mainst.example.com/u/main-st/od%3Amain-st%3Arecall%3A5521%3Aemail"
                     "?c=recall&g=111>, <mailto:unsubscribe@mainst.example.com>");
    ck_assert_str_eq(str_at(e, "headers", "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");

    /* The remote id is SendGrid's X-Message-Id (one personalization: no suffix). */
    char buf[128];
    ck_assert_str_eq(row(key, "state", buf, sizeof(buf)), "done");
    ck_assert_str_eq(row(key, "remote_id", buf, sizeof(buf)), str_at(e, "message_id", NULL));
    cJSON_Delete(m);
    log_has_no_patient_data();
}
END_TEST

START_TEST(template_batch_of_250_is_one_request)
{
    char keys[250][48], to[64], name[32];
    fake_start((const char *const[]){"--template", TEMPLATE, NULL});
    open_rt("\"templates\": \"recall=" TEMPLATE "\"");
    for (int i = 0; i < 250; i++) {
        snprintf(keys[i], sizeof(keys[i]), "od:main-st:recall:%d:email", 1000 + i);
        snprintf(to, sizeof(to), "p%d@example.com", i);
        snprintf(name, sizeof(name), "Avery%d", i);
        /* Half name the template themselves, half get it from the campaign's setting. */
        enqueue(keys[i], message(keys[i], to, "recall", i % 2 ? TEMPLATE : "", name));
    }
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 250);
    ck_assert_int_eq(ds.batches, 1);
    ck_assert_int_eq(requests("mail_send", "total"), 1); /* one request, 250 personalizations */
    cJSON *st = fake_admin("GET", "/_state", NULL);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(st, "messages")->valueint, 250);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(st, "mail_requests")->valueint, 1);
    cJSON_Delete(st);

    cJSON *m = mail_to(NULL);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(m, "mail"), *e;
    ck_assert_int_eq(cJSON_GetArraySize(list), 250);
    const char *xid = str_at(cJSON_GetArrayItem(list, 0), "message_id", NULL);
    int i = 0;
    cJSON_ArrayForEach(e, list)
    {
        char want[48], buf[128], id[64];
        /* Personalizations are in queue order, each with its own key and data. */
        ck_assert_str_eq(str_at(e, "custom_args", "odsync_key"), keys[i]);
        ck_assert_str_eq(str_at(e, "custom_args", "odsync_office"), "main-st");
        snprintf(want, sizeof(want), "Avery%d", i);
        ck_assert_str_eq(str_at(e, "dynamic_template_data", "first_name"), want);
        snprintf(want, sizeof(want), "p%d@example.com", i);
        ck_assert_str_eq(str_at(e, "to", NULL), want);
        ck_assert_str_eq(str_at(e, "template_id", NULL), TEMPLATE);
        ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(e, "content")->child);
        ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(e, "asm_group_id")->valueint, 111);
        ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(e, "headers")));
        ck_assert_str_eq(str_at(e, "message_id", NULL), xid);
        /* Each item is OK with remote id "<X-Message-Id>#<personalization index>". */
        ck_assert_str_eq(row(keys[i], "state", buf, sizeof(buf)), "done");
        snprintf(id, sizeof(id), "%s#%d", xid, i);
        ck_assert_str_eq(row(keys[i], "remote_id", buf, sizeof(buf)), id);
        i++;
    }
    cJSON_Delete(m);
    log_has_no_patient_data();
}
END_TEST

START_TEST(group_and_headers_per_campaign)
{
    fake_start(NULL);
    open_rt("\"list_unsubscribe_url\": \"https://mainst.example.com/u?k={key}\","
            " \"transactional_campaigns\": \"confirmation\"");
    static const char *const campaigns[] = {"recall", "review", "reactivation", "confirmation",
                                            "recall"};
    static const int groups[] = {111, 333, 999, 999, 111};
    char key[5][48], to[64];
    for (int i = 0; i < 5; i++) {
        snprintf(key[i], sizeof(key[i]), "od:main-st:msg:%d", i);
        snprintf(to, sizeof(to), "c%d@example.com", i);
        enqueue(key[i], message(key[i], to, campaigns[i], NULL, "Avery"));
    }
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 5);
    /* The two recall messages have the same rendered body: they share one request. */
    ck_assert_int_eq(requests("mail_send", "202"), 4);
    for (int i = 0; i < 5; i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "c%d@example.com", i);
        cJSON *m = mail_to(addr);
        const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "mail"), 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(e, "asm_group_id")->valueint, groups[i]);
        ck_assert_str_eq(str_at(e, "custom_args", "odsync_key"), key[i]);
        if (strcmp(campaigns[i], "confirmation") == 0)
            ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(e, "headers")));
        else
            ck_assert_ptr_nonnull(str_at(e, "headers", "List-Unsubscribe-Post"));
        cJSON_Delete(m);
    }
}
END_TEST

START_TEST(rate_limited_pauses_until_reset)
{
    fake_start(NULL);
    open_rt("");
    enqueue("od:main-st:a", message("od:main-st:a", "a@example.com", "recall", NULL, "A"));
    enqueue("od:main-st:b", message("od:main-st:b", "b@example.com", "review", NULL, "B"));
    fake_post("/_faults", "{\"rate-limit-next\": 1, \"rate-reset-s\": 120}");
    int64_t before = util_now_ms();
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.rate_limited, 2);
    ck_assert_int_eq(ds.ok, 0);
    /* The first request got 429; the second group was held back, not sent. */
    ck_assert_int_eq(requests("mail_send", "429"), 1);
    ck_assert_int_eq(requests("mail_send", "total"), 1);
    cJSON *st = fake_admin("GET", "/_state", NULL);
    int64_t reset = (int64_t)cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(st, "rate_limit"), "last_429_reset")
                        ->valuedouble;
    cJSON_Delete(st);
    ck_assert_int_ge(reset * 1000, before + 118000);
    struct sink_state ss = pause_of();
    ck_assert_int_eq(ss.pause_class, ODSYNC_RATE_LIMITED);
    /* Paused until X-RateLimit-Reset (epoch seconds), within the clocks' second. */
    ck_assert_msg(ss.paused_until >= reset * 1000 - 1500 && ss.paused_until <= reset * 1000 + 1500,
                  "paused until %lld, reset %lld", (long long)ss.paused_until,
                  (long long)reset * 1000);
    ck_assert_int_eq(row_int("od:main-st:a", "attempts"), 0); /* no attempt spent */
    ck_assert_int_eq(row_int("od:main-st:b", "attempts"), 0);

    /* Before the reset nothing is due; after it both go. */
    ds = deliver();
    ck_assert_int_eq(ds.batches, 0);
    clock_ms = reset * 1000 + 2000;
    ds = deliver();
    ck_assert_int_eq(ds.ok, 2);
    ck_assert_int_eq(requests("mail_send", "202"), 2);
}
END_TEST

START_TEST(unauthorized_is_auth)
{
    fake_start(NULL);
    ck_assert_int_eq(setenv("SGT_API_KEY", "SG.wrong-key", 1), 0);
    open_rt("");
    enqueue("od:main-st:a", message("od:main-st:a", "a@example.com", "recall", NULL, "A"));
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.auth, 1);
    struct sink_state ss = pause_of();
    ck_assert_int_eq(ss.pause_class, ODSYNC_AUTH);
    ck_assert(ss.paused_until == SINK_PAUSED_INDEFINITELY);
    char buf[256];
    ck_assert_str_eq(row("od:main-st:a", "state", buf, sizeof(buf)), "pending");
    ck_assert_int_eq(row_int("od:main-st:a", "attempts"), 0);
    ck_assert_str_eq(row("od:main-st:a", "last_detail", buf, sizeof(buf)),
                     "HTTP 401: The provided authorization grant is invalid, expired, or revoked");
    ck_assert_int_eq(requests("unauthorized", "401"), 1);
    ck_assert_int_eq(mail_count(NULL), 0);
    log_has_no_patient_data();
}
END_TEST

START_TEST(bad_request_is_permanent_for_the_named_item)
{
    fake_start((const char *const[]){"--template", TEMPLATE, NULL});
    open_rt("");
    /* The plugin accepts "..": SendGrid does not. Same body: one request of two. */
    enqueue("od:main-st:bad", message("od:main-st:bad", "avery@example..com", "recall", NULL, "X"));
    enqueue("od:main-st:good", message("od:main-st:good", "good@example.com", "recall", NULL, "X"));
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.dead, 1);
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_int_eq(requests("mail_send", "400"), 1);
    char buf[256];
    ck_assert_str_eq(row("od:main-st:bad", "state", buf, sizeof(buf)), "dead");
    ck_assert_int_eq(row_int("od:main-st:bad", "last_class"), ODSYNC_PERMANENT);
    ck_assert_str_eq(row("od:main-st:bad", "last_detail", buf, sizeof(buf)),
                     "HTTP 400: to.0.email: Does not contain a valid address.");
    ck_assert_str_eq(row("od:main-st:good", "state", buf, sizeof(buf)), "pending");
    ck_assert_str_eq(row("od:main-st:good", "last_detail", buf, sizeof(buf)),
                     "not sent: another message of the same request was refused (HTTP 400)");
    clock_ms = util_now_ms() + 1000;
    ds = deliver();
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(mail_count("good@example.com"), 1);

    /* An error that names no personalization (an unknown template) refuses every item. */
    enqueue("od:main-st:t1", message("od:main-st:t1", "t1@example.com", "review",
                                     "d-ffffffffffffffffffffffffffffffff", "A"));
    enqueue("od:main-st:t2", message("od:main-st:t2", "t2@example.com", "review",
                                     "d-ffffffffffffffffffffffffffffffff", "B"));
    ds = deliver();
    ck_assert_int_eq(ds.dead, 2);
    ck_assert_str_eq(row("od:main-st:t2", "last_detail", buf, sizeof(buf)),
                     "HTTP 400: template_id: The template_id is not a valid template ID.");
    ck_assert_int_eq(requests("mail_send", "400"), 2);
    log_has_no_patient_data();
}
END_TEST

START_TEST(html_502_and_truncated_body_are_retried)
{
    fake_start(NULL);
    open_rt("");
    enqueue("od:main-st:a", message("od:main-st:a", "a@example.com", "recall", NULL, "A"));
    char buf[256];

    fake_post("/_faults", "{\"html502-next\": 1}");
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_str_eq(row("od:main-st:a", "state", buf, sizeof(buf)), "pending");
    ck_assert_str_eq(row("od:main-st:a", "last_detail", buf, sizeof(buf)), "HTTP 502");
    ck_assert_int_eq(row_int("od:main-st:a", "last_class"), ODSYNC_RETRY);

    fake_post("/_faults", "{\"truncate-next\": 1}");
    clock_ms = util_now_ms() + 1000;
    ds = deliver();
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_int_eq(row_int("od:main-st:a", "attempts"), 2);
    ck_assert_msg(
        strncmp(row("od:main-st:a", "last_detail", buf, sizeof(buf)), "transport error: ", 17) == 0,
        "detail: %s", buf);

    fake_post("/_faults", "{\"fail-next\": 1, \"fail-status\": 503}");
    clock_ms += 1000;
    ds = deliver();
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_str_eq(row("od:main-st:a", "last_detail", buf, sizeof(buf)),
                     "HTTP 503: internal error");

    clock_ms += 1000;
    ds = deliver();
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(mail_count("a@example.com"), 1); /* failed attempts stored nothing */
    ck_assert_int_eq(requests("mail_send", "total"), 4);
}
END_TEST

START_TEST(suppression_precheck_opts_out_without_sending)
{
    fake_start(NULL);
    open_rt("\"check_suppressions\": true");
    fake_post("/_suppress", "{\"list\": \"unsubscribes\", \"emails\": [\"U@example.com\"]}");
    fake_post("/_suppress", "{\"list\": \"group\", \"group_id\": 111, \"emails\": "
                            "[\"g@example.com\"]}");
    fake_post("/_suppress", "{\"list\": \"bounces\", \"emails\": [\"b@example.com\"]}");
    fake_post("/_suppress", "{\"list\": \"spam_reports\", \"emails\": [\"s@example.com\"]}");
    static const char *const to[] = {"u@example.com", "g@example.com", "b@example.com",
                                     "s@example.com", "g@example.com", "ok@example.com"};
    static const char *const campaign[] = {"recall", "recall", "recall",
                                           "recall", "review", "recall"};
    static const char *const why[] = {"suppressed at SendGrid: global unsubscribe",
                                      ODSYNC_OPTED_OUT_CAMPAIGN
                                      "suppressed at SendGrid: unsubscribe group 111",
                                      "suppressed at SendGrid: bounce",
                                      "suppressed at SendGrid: spam report",
                                      NULL,
                                      NULL};
    char key[6][32], buf[256];
    for (int i = 0; i < 6; i++) {
        snprintf(key[i], sizeof(key[i]), "od:main-st:s:%d", i);
        enqueue(key[i], message(key[i], to[i], campaign[i], NULL, "Avery"));
    }
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.opted_out, 4);
    ck_assert_int_eq(ds.ok, 2);
    /* Three lists read, one search per group (111, 333), two sends: recall to ok@, and the
     * review to g@ (who left the recall group only). */
    ck_assert_int_eq(requests("suppression_list", "200"), 3);
    ck_assert_int_eq(requests("group_search", "200"), 2);
    ck_assert_int_eq(requests("mail_send", "202"), 2);
    ck_assert_int_eq(mail_count("u@example.com"), 0);
    ck_assert_int_eq(mail_count("b@example.com"), 0);
    ck_assert_int_eq(mail_count("s@example.com"), 0);
    ck_assert_int_eq(mail_count("g@example.com"), 1);
    ck_assert_int_eq(mail_count("ok@example.com"), 1);
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(row(key[i], "state", buf, sizeof(buf)), "done");
        if (why[i] != NULL)
            ck_assert_str_eq(row(key[i], "remote_id", buf, sizeof(buf)), "");
    }
    log_has_no_patient_data();

    /* A failed check sends nothing: every message is retried. */
    enqueue("od:main-st:later",
            message("od:main-st:later", "later@example.com", "recall", NULL, "Avery"));
    fake_post("/_faults", "{\"fail-next\": 1}");
    ds = deliver();
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_str_eq(row("od:main-st:later", "last_detail", buf, sizeof(buf)),
                     "suppression check (unsubscribes): HTTP 500: internal error");
    ck_assert_int_eq(requests("mail_send", "total"), 2);
}
END_TEST

/* Base64 decode (caller frees); *n the length. */
static unsigned char *unbase64(const char *s, size_t *n)
{
    size_t len = strlen(s);
    unsigned char *out = malloc(len + 1);
    ck_assert_ptr_nonnull(out);
    int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    ck_assert_int_ge(got, 0);
    size_t pad = len > 0 && s[len - 1] == '=' ? (len > 1 && s[len - 2] == '=' ? 2 : 1) : 0;
    *n = (size_t)got - pad;
    return out;
}

/* SendGrid's documented check: ECDSA P-256 / SHA-256 over timestamp + raw body with the
 * base64 DER public key. Returns 1 when the signature verifies. */
static int verify(const char *pub_b64, const char *sig_b64, const char *ts, const char *body,
                  size_t body_len)
{
    size_t der_len, sig_len;
    unsigned char *der = unbase64(pub_b64, &der_len);
    unsigned char *sig = unbase64(sig_b64, &sig_len);
    const unsigned char *p = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)der_len);
    ck_assert_ptr_nonnull(key);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    ck_assert_int_eq(EVP_DigestVerifyUpdate(md, ts, strlen(ts)), 1);
    ck_assert_int_eq(EVP_DigestVerifyUpdate(md, body, body_len), 1);
    int ok = EVP_DigestVerifyFinal(md, sig, sig_len) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    free(der);
    free(sig);
    return ok;
}

/* Value of header name in a raw request (copied into out). */
static void header_of(const char *raw, const char *name, char *out, size_t len)
{
    char pat[96];
    snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    const char *h = strstr(raw, pat);
    ck_assert_msg(h != NULL, "no %s header", name);
    h += strlen(pat);
    size_t n = strcspn(h, "\r");
    ck_assert_uint_lt(n, len);
    memcpy(out, h, n);
    out[n] = '\0';
}

START_TEST(signed_event_verifies_and_tampering_fails)
{
    struct raw_http *rx;
    char body[2048], url[128], ts[32], sig[256];
    fake_start(NULL);
    ck_assert_int_eq(raw_http_start(&rx), 0);
    ck_assert_int_eq(raw_http_push_response(rx, 200, NULL, "{}"), 0);
    ck_assert_int_eq(raw_http_push_response(rx, 403, NULL, "{}"), 0);
    snprintf(url, sizeof(url), "%s/webhooks/sendgrid/main-st/events", raw_http_url(rx));

    cJSON *pk = fake_admin("GET", "/_public_key", NULL);
    const char *pub = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pk, "public_key"));
    ck_assert_ptr_nonnull(pub);
    ck_assert_int_eq(strncmp(pub, "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE", 36), 0); /* P-256 */

    snprintf(body, sizeof(body),
             "{\"url\": \"%s\", \"events\": [{\"event\": \"unsubscribe\", \"email\": "
             "\"x@example.com\", \"odsync_key\": \"od:main-st:recall:1:email\", "
             "\"odsync_office\": \"main-st\", \"sg_message_id\": \"abc.filter-1\"},"
             " {\"event\": \"group_unsubscribe\", \"email\": \"y@example.com\", "
             "\"asm_group_id\": 111}]}",
             url);
    cJSON *r = fake_admin("POST", "/_events", body);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(r, "status")->valueint, 200);
    ck_assert_int_eq(raw_http_request_count(rx), 1);
    const char *raw = raw_http_request(rx, 0);
    ck_assert_int_eq(strncmp(raw, "POST /webhooks/sendgrid/main-st/events HTTP/1.1\r\n", 48), 0);
    header_of(raw, "X-Twilio-Email-Event-Webhook-Timestamp", ts, sizeof(ts));
    header_of(raw, "X-Twilio-Email-Event-Webhook-Signature", sig, sizeof(sig));
    const char *payload = strstr(raw, "\r\n\r\n") + 4;
    size_t plen = raw_http_request_len(rx, 0) - (size_t)(payload - raw);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "payload")), payload);
    /* The payload is SendGrid's: an array with timestamp, sg_event_id, custom args on top. */
    cJSON *arr = cJSON_ParseWithLength(payload, plen);
    ck_assert(cJSON_IsArray(arr));
    ck_assert_int_eq(cJSON_GetArraySize(arr), 2);
    const cJSON *e0 = cJSON_GetArrayItem(arr, 0);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e0, "timestamp")));
    ck_assert_ptr_nonnull(str_at(e0, "sg_event_id", NULL));
    ck_assert_str_eq(str_at(e0, "odsync_key", NULL), "od:main-st:recall:1:email");
    cJSON_Delete(arr);

    /* Verified independently with OpenSSL; one changed byte of the body breaks it, as does
     * another timestamp. */
    ck_assert_int_eq(verify(pub, sig, ts, payload, plen), 1);
    char *copy = malloc(plen + 1);
    memcpy(copy, payload, plen + 1);
    copy[plen / 2] ^= 0x01;
    ck_assert_int_eq(verify(pub, sig, ts, copy, plen), 0);
    free(copy);
    ck_assert_int_eq(verify(pub, sig, "1700000000", payload, plen), 0);

    /* The fake's own negative modes: a tampered body, a wrong key. Both fail verification;
     * the receiver's answer (403 here) is passed back. */
    snprintf(body, sizeof(body),
             "{\"url\": \"%s\", \"tamper\": true, \"events\": [{\"event\": \"delivered\", "
             "\"email\": \"z@example.com\", \"sg_message_id\": \"abc.filter-2\"}]}",
             url);
    cJSON *r2 = fake_admin("POST", "/_events", body);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(r2, "status")->valueint, 403);
    raw = raw_http_request(rx, 1);
    header_of(raw, "X-Twilio-Email-Event-Webhook-Timestamp", ts, sizeof(ts));
    header_of(raw, "X-Twilio-Email-Event-Webhook-Signature", sig, sizeof(sig));
    payload = strstr(raw, "\r\n\r\n") + 4;
    plen = raw_http_request_len(rx, 1) - (size_t)(payload - raw);
    ck_assert_int_eq(verify(pub, sig, ts, payload, plen), 0);

    snprintf(body, sizeof(body),
             "{\"url\": \"%s\", \"sign\": \"wrong-key\", \"events\": [{\"event\": "
             "\"delivered\", \"email\": \"z@example.com\"}]}",
             url);
    cJSON_Delete(fake_admin("POST", "/_events", body));
    raw = raw_http_request(rx, 2);
    header_of(raw, "X-Twilio-Email-Event-Webhook-Timestamp", ts, sizeof(ts));
    header_of(raw, "X-Twilio-Email-Event-Webhook-Signature", sig, sizeof(sig));
    payload = strstr(raw, "\r\n\r\n") + 4;
    plen = raw_http_request_len(rx, 2) - (size_t)(payload - raw);
    ck_assert_int_eq(verify(pub, sig, ts, payload, plen), 0);

    /* The unsubscribe events changed the fake's suppression lists. */
    cJSON *st = fake_admin("GET", "/_state", NULL);
    const cJSON *sup = cJSON_GetObjectItemCaseSensitive(st, "suppressions");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(
                         cJSON_GetObjectItemCaseSensitive(sup, "unsubscribes"), 0)),
                     "x@example.com");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(
                         cJSON_GetObjectItemCaseSensitive(
                             cJSON_GetObjectItemCaseSensitive(sup, "groups"), "111"),
                         0)),
                     "y@example.com");
    ck_assert_int_eq(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "events"), "posted")
            ->valueint,
        4);
    cJSON_Delete(st);
    cJSON_Delete(r);
    cJSON_Delete(r2);
    cJSON_Delete(pk);
    raw_http_stop(rx);
}
END_TEST

START_TEST(bad_settings_refused)
{
    char text[2048], err[512];
    struct config *cfg = NULL;
    static const char *const bad[][2] = {
        {"\"from_email\": \"not an address\"", "from_email"},
        {"\"asm_groups\": \"recall=abc\"", "asm_groups: recall: expected a group id"},
        {"\"templates\": \"recall=t-1\"", "templates: recall: expected a dynamic template id"},
        {"\"list_unsubscribe_url\": \"http://x.example.com/u\"", "list_unsubscribe_url"},
        {"\"list_unsubscribe_url\": \"https://x.example.com/u/{patient}\"", "list_unsubscribe_url"},
        {"\"batch_size\": 1001", "batch_size: expected an integer from 1 to 1000"},
        {"\"groups_to_display\": \"1,2,x\"", "groups_to_display"},
    };
    fake_port = 1;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        struct runtime *r = NULL;
        snprintf(text, sizeof(text),
                 "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
                 " \"sinks\": {\"email\": {\"plugin\": \"sendgrid\", \"api_key\": "
                 "\"${SGT_API_KEY}\", \"from_email\": \"r@mainst.example.com\", %s}},"
                 " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\":"
                 " \"America/Chicago\", \"opendental\": {\"base_url\": "
                 "\"http://127.0.0.1:1/api/v1\", \"developer_key\": \"${SGT_OD_DEV}\","
                 " \"customer_key\": \"${SGT_OD_CUST}\"}, \"routes\": {\"email\": [\"email\"]}}]}",
                 dir, tu_build_dir(), bad[i][0]);
        err[0] = '\0';
        if (config_parse(text, strlen(text), "bad.json", &cfg, err, sizeof(err)) == ODSYNC_OK) {
            ck_assert_int_ne(runtime_open(cfg, 0, &r, err, sizeof(err)), ODSYNC_OK);
            ck_assert_ptr_null(r);
        }
        ck_assert_msg(strstr(err, bad[i][1]) != NULL, "case %zu: %s", i, err);
        ck_assert_msg(strstr(err, API_KEY) == NULL, "case %zu echoed the key", i);
    }
    /* A literal API key is refused by the host. */
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],"
             " \"sinks\": {\"email\": {\"plugin\": \"sendgrid\", \"api_key\": \"SG.literal\","
             " \"from_email\": \"r@mainst.example.com\"}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\":"
             " \"America/Chicago\", \"opendental\": {\"base_url\": "
             "\"http://127.0.0.1:1/api/v1\", \"developer_key\": \"${SGT_OD_DEV}\","
             " \"customer_key\": \"${SGT_OD_CUST}\"}, \"routes\": {\"email\": [\"email\"]}}]}",
             dir, tu_build_dir());
    struct runtime *r = NULL;
    err[0] = '\0';
    if (config_parse(text, strlen(text), "bad.json", &cfg, err, sizeof(err)) == ODSYNC_OK)
        ck_assert_int_ne(runtime_open(cfg, 0, &r, err, sizeof(err)), ODSYNC_OK);
    ck_assert_msg(strstr(err, "api_key") != NULL, "%s", err);
    ck_assert_ptr_null(strstr(err, "SG.literal"));
}
END_TEST

static Suite *sendgrid_suite(void)
{
    Suite *s = suite_create("plugin_sendgrid");
    TCase *tc = tcase_create("sendgrid");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, descriptor_and_setup);
    tcase_add_test(tc, one_message_with_one_click_unsubscribe);
    tcase_add_test(tc, template_batch_of_250_is_one_request);
    tcase_add_test(tc, group_and_headers_per_campaign);
    tcase_add_test(tc, rate_limited_pauses_until_reset);
    tcase_add_test(tc, unauthorized_is_auth);
    tcase_add_test(tc, bad_request_is_permanent_for_the_named_item);
    tcase_add_test(tc, html_502_and_truncated_body_are_retried);
    tcase_add_test(tc, suppression_precheck_opts_out_without_sending);
    tcase_add_test(tc, signed_event_verifies_and_tampering_fails);
    tcase_add_test(tc, bad_settings_refused);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(sendgrid_suite)
