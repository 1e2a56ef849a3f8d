/*
 * test_salesforce: the real build/plugins/salesforce.so against the real
 * build/contrib/fakes/fake_salesforce over loopback, driven by core/deliver.c's deliver_sink
 * with a real SQLite store and outbox (records enqueued the way import does: records_upsert,
 * then outbox_enqueue_at, tasks just after contacts). Each OAuth flow (the JWT signed with an
 * RSA key generated here with libcrypto and verified by the fake), create and update in
 * place, partial failure, REQUEST_LIMIT_EXCEEDED, token expiry, a second 401, HTML 502 and
 * truncated JSON, the limit gauges, request counts, task association.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "deliver.h"
#include "host_api.h"
#include "http_client.h"
#include "log.h"
#include "outbox.h"
#include "plugin.h"
#include "records.h"
#include "sink_state.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

#define SINK      "crm"
#define OFFICE    "main-st"
#define CLIENT_ID "3MVG9fakeConsumerKey"
#define SECRET    "sf-secret-7a1c"
#define REFRESH   "5Aep861fakeRefresh"
#define USERNAME  "api@example.com"

static char *dir;        /* per test */
static char *priv_path;  /* dir/key.pem (0600) */
static char *other_path; /* dir/other.pem: a key the fake does not know */
static char *log_path;   /* dir/odsync.log: every host log line */
static FILE *log_file;
static pid_t fake_pid;
static int fake_port;
static struct store *st;
static struct plugin *plug;
static struct host_sink *sink;
static struct deliver_policy policy;
static struct http_client *admin; /* for the fake's admin routes */

/* Write an RSA-2048 key pair: the private key (PKCS#8 PEM) to priv, the public key to pub
 * (when not NULL). */
static void make_key(const char *priv, const char *pub)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    ck_assert_ptr_nonnull(k);
    FILE *fp = fopen(priv, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(chmod(priv, 0600), 0);
    ck_assert_int_eq(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    if (pub != NULL) {
        fp = fopen(pub, "w");
        ck_assert_ptr_nonnull(fp);
        ck_assert_int_eq(PEM_write_PUBKEY(fp, k), 1);
        fclose(fp);
    }
    EVP_PKEY_free(k);
}

/* Start the fake with extra flags (NULL-terminated, may be NULL). */
static void fake_start(const char *const *extra)
{
    char *bin = tu_build_path("contrib/fakes/fake_salesforce");
    char pub[512], errlog[512];
    const char *argv[32] = {bin,     "--client-id",      CLIENT_ID, "--client-secret",
                            SECRET,  "--username",       USERNAME,  "--refresh-token",
                            REFRESH, "--jwt-public-key", pub};
    size_t n = 11;
    util_fmt(pub, sizeof(pub), "%s/pub.pem", dir);
    util_fmt(errlog, sizeof(errlog), "%s/fake.log", dir);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fake_pid = tu_spawn_server(argv, errlog, &fake_port);
    free(bin);
}

static void setup(void)
{
    char path[512], err[512];
    dir = tu_mkdtemp();
    priv_path = malloc(strlen(dir) + 16);
    other_path = malloc(strlen(dir) + 16);
    log_path = malloc(strlen(dir) + 16);
    snprintf(priv_path, strlen(dir) + 16, "%s/key.pem", dir);
    snprintf(other_path, strlen(dir) + 16, "%s/other.pem", dir);
    snprintf(log_path, strlen(dir) + 16, "%s/odsync.log", dir);
    snprintf(path, sizeof(path), "%s/pub.pem", dir);
    make_key(priv_path, path);
    make_key(other_path, NULL);
    log_file = fopen(log_path, "w");
    ck_assert_ptr_nonnull(log_file);
    log_setup(log_file, ODSYNC_LOG_DEBUG, LOG_TEXT);
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    admin = http_client_create();
    ck_assert_ptr_nonnull(admin);
    ck_assert_int_eq(setenv("SF_TEST_SECRET", SECRET, 1), 0);
    ck_assert_int_eq(setenv("SF_TEST_REFRESH", REFRESH, 1), 0);
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "store: %s", err);
    char *so = tu_build_path("plugins/salesforce.so");
    ck_assert_msg(plugin_open(so, &plug, err, sizeof(err)) == ODSYNC_OK, "plugin: %s", err);
    free(so);
    deliver_policy_default(&policy);
    policy.backoff_base_ms = INT64_C(1000000000); /* a failed row is surely not due again */
    policy.backoff_cap_ms = INT64_C(1000000000);
    fake_pid = 0;
    sink = NULL;
}

static void teardown(void)
{
    host_sink_destroy(sink);
    plugin_close(plug);
    store_close(st);
    if (fake_pid > 0)
        ck_assert_int_eq(tu_stop(fake_pid), 0);
    http_client_destroy(admin);
    http_global_cleanup();
    log_shutdown();
    fclose(log_file);
    tu_rmrf(dir);
    free(dir);
    free(priv_path);
    free(other_path);
    free(log_path);
}

/* Create the sink instance with auth and the settings in extra (JSON object text or NULL). */
static struct host_sink *sink_create(const char *auth, const char *extra)
{
    char url[64], err[512] = "", key[600];
    struct host_sink *s = NULL;
    cJSON *set = cJSON_Parse(extra != NULL ? extra : "{}");
    ck_assert_ptr_nonnull(set);
    util_fmt(url, sizeof(url), "http://127.0.0.1:%d", fake_port);
    cJSON_AddStringToObject(set, "auth", auth);
    cJSON_AddStringToObject(set, "login_url", url);
    cJSON_AddStringToObject(set, "client_id", CLIENT_ID);
    if (strcmp(auth, "client_credentials") == 0) {
        cJSON_AddStringToObject(set, "client_secret", "${SF_TEST_SECRET}");
    } else if (strcmp(auth, "jwt") == 0) {
        if (cJSON_GetObjectItem(set, "private_key") == NULL) {
            util_fmt(key, sizeof(key), "file:%s", priv_path);
            cJSON_AddStringToObject(set, "private_key", key);
        }
        cJSON_AddStringToObject(set, "username", USERNAME);
    } else {
        cJSON_AddStringToObject(set, "refresh_token", "${SF_TEST_REFRESH}");
    }
    int rc = host_sink_create(plug, SINK, set, "sinks." SINK, &s, err, sizeof(err));
    ck_assert_msg(rc == ODSYNC_OK, "create: %s", err);
    cJSON_Delete(set);
    return s;
}

/* ---- the outbox, as the core fills it ----------------------------------------------------- */

struct enq {
    const char *key, *body;
    int kind;
};

static int enqueue_tx(struct store *s, void *arg)
{
    const struct enq *e = arg;
    int changed = 0;
    int64_t version = 0;
    int rc = records_upsert(s, OFFICE, e->key, e->kind, e->body, &changed, &version);
    if (rc == ODSYNC_OK && changed)
        rc = outbox_enqueue_at(s, SINK, OFFICE, e->key, e->kind, version, e->body,
                               e->kind == ODSYNC_KIND_TASK ? OUTBOX_AFTER_CONTACTS : 0);
    return rc;
}

/* Queue a contact record for patnum (names and email may be NULL). */
static void put_contact(int patnum, const char *first, const char *last, const char *email)
{
    char key[64];
    cJSON *c = cJSON_CreateObject();
    util_fmt(key, sizeof(key), "od:" OFFICE ":%d", patnum);
    cJSON_AddStringToObject(c, "key", key);
    cJSON_AddStringToObject(c, "office", OFFICE);
    cJSON_AddNumberToObject(c, "patnum", patnum);
    cJSON_AddItemToObject(c, "first_name", first ? cJSON_CreateString(first) : cJSON_CreateNull());
    cJSON_AddItemToObject(c, "last_name", last ? cJSON_CreateString(last) : cJSON_CreateNull());
    cJSON_AddItemToObject(c, "email", email ? cJSON_CreateString(email) : cJSON_CreateNull());
    cJSON_AddStringToObject(c, "phone_mobile", "+15550100123");
    cJSON_AddNullToObject(c, "phone_home");
    cJSON_AddNullToObject(c, "phone_work");
    cJSON_AddStringToObject(c, "patient_status", "Patient");
    cJSON_AddStringToObject(c, "sms_consent", "yes");
    cJSON_AddFalseToObject(c, "email_opt_out");
    cJSON_AddStringToObject(c, "recall_due", "2026-06-01");
    cJSON_AddStringToObject(c, "recall_stage", "due");
    cJSON_AddStringToObject(c, "last_visit", "2025-12-01");
    cJSON_AddFalseToObject(c, "reactivation");
    cJSON_AddStringToObject(c, "updated_at", "2026-05-01T15:00:00Z");
    char *body = cJSON_PrintUnformatted(c);
    struct enq e = {key, body, ODSYNC_KIND_CONTACT};
    ck_assert_int_eq(store_tx(st, enqueue_tx, &e), ODSYNC_OK);
    cJSON_free(body);
    cJSON_Delete(c);
}

/* Queue the recall task recall for patnum's contact. */
static void put_task(int recall, int patnum, const char *status)
{
    char key[64], contact[64], body[512];
    util_fmt(key, sizeof(key), "od:" OFFICE ":recall:%d", recall);
    util_fmt(contact, sizeof(contact), "od:" OFFICE ":%d", patnum);
    util_fmt(body, sizeof(body),
             "{\"key\":\"%s\",\"office\":\"" OFFICE "\",\"contact_key\":\"%s\","
             "\"subject\":\"Recall due: call to schedule a cleaning\",\"body\":null,"
             "\"due\":\"2026-06-01T14:00:00Z\",\"status\":\"%s\",\"priority\":\"medium\","
             "\"type\":\"call\"}",
             key, contact, status);
    struct enq e = {key, body, ODSYNC_KIND_TASK};
    ck_assert_int_eq(store_tx(st, enqueue_tx, &e), ODSYNC_OK);
}

static struct deliver_stats deliver(void)
{
    struct deliver_stats s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(deliver_sink(st, sink, &policy, &s), ODSYNC_OK);
    return s;
}

/* One outbox column of key as text into buf ("" for NULL). */
static const char *col(const char *key, const char *column, char *buf, size_t len)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    util_fmt(sql, sizeof(sql), "SELECT %s FROM outbox WHERE sink = '" SINK "' AND key = ?", column);
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
    sqlite3_finalize(s);
    return buf;
}

static const char *state_of(const char *key)
{
    static char buf[32];
    return col(key, "state", buf, sizeof(buf));
}

static int64_t rows_in(const char *state)
{
    char sql[128];
    sqlite3_stmt *s = NULL;
    util_fmt(sql, sizeof(sql), "SELECT COUNT(*) FROM outbox WHERE sink='" SINK "' AND state='%s'",
             state);
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static void make_all_due(void)
{
    ck_assert_int_eq(store_exec(st, "UPDATE outbox SET next_at = 0 WHERE state = 'pending'"),
                     ODSYNC_OK);
}

/* ---- the fake's admin routes -------------------------------------------------------------- */

/* method path [body] on the fake; the parsed answer (caller frees). */
static cJSON *fake_call(const char *method, const char *path, const char *body)
{
    char url[256];
    struct odsync_http_response *resp = NULL;
    const struct odsync_http_header h = {"Content-Type", "application/json"};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = method,
                                      .url = url,
                                      .headers = &h,
                                      .header_count = 1,
                                      .body = body,
                                      .body_len = body != NULL ? strlen(body) : 0};
    util_fmt(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path);
    http_client_perform(admin, &req, &resp); /* a 404 is an answer too */
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_ne(resp->status, 0);
    cJSON *j = cJSON_Parse(resp->body);
    ck_assert_msg(j != NULL, "fake %s %s: %s", method, path, resp->body);
    http_response_free(resp);
    return j;
}

static void fake_faults(const char *json)
{
    cJSON_Delete(fake_call("POST", "/_faults", json));
}

/* A number in GET /_state at a path of keys (missing = 0). */
static int64_t fake_num(const char *a, const char *b, const char *c)
{
    cJSON *s = fake_call("GET", "/_state", NULL);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, a);
    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (c != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, c);
    int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    cJSON_Delete(s);
    return n;
}

/* Requests the fake answered on route with status. */
static int64_t fake_req(const char *route, const char *status)
{
    return fake_num("requests", route, status);
}

/* The stored Contact or Task with this External ID (caller frees), or NULL. */
static cJSON *fake_object(const char *type, const char *ext)
{
    char path[160], enc[120];
    ck_assert_int_eq(http_url_encode(ext, enc, sizeof(enc)), ODSYNC_OK);
    util_fmt(path, sizeof(path), "/_objects/%s/%s", type, enc);
    cJSON *o = fake_call("GET", path, NULL);
    if (cJSON_GetObjectItemCaseSensitive(o, "Id") == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static const char *str_in(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(descriptor_and_setup)
{
    const struct odsync_sink_descriptor *d = plugin_descriptor(plug);
    ck_assert_str_eq(d->name, "salesforce");
    ck_assert_uint_eq(d->max_batch, 200);
    ck_assert(d->capabilities == (ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS));
    ck_assert_ptr_nonnull(d->setup);
    static const char *const fields[] = {
        "Contact.Odsync_Key__c",         "External ID, Unique",
        "Contact.Odsync_Office__c",      "Contact.Odsync_PatNum__c",
        "Contact.Odsync_Recall_Due__c",  "Contact.Odsync_Recall_Stage__c",
        "Contact.Odsync_Last_Visit__c",  "Contact.Odsync_Reactivation__c",
        "Contact.Odsync_SMS_Consent__c", "Activity.Odsync_Key__c"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(fields); i++)
        ck_assert_msg(strstr(d->setup, fields[i]) != NULL, "setup lacks %s", fields[i]);

    /* `odsync plugins describe` prints it. */
    char *odsync = tu_build_path("odsync"), *so = tu_build_path("plugins/salesforce.so");
    const char *argv[] = {odsync, "plugins", "describe", so, NULL};
    char *out = NULL;
    ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "Contact.Odsync_Key__c"));
    ck_assert_ptr_nonnull(strstr(out, "max batch:    200"));
    free(out);
    free(odsync);
    free(so);
}
END_TEST

/* Deliver three contacts with a grant; check the token request, the one upsert, the ids. */
static void flow_delivers(const char *auth)
{
    char buf[64];
    fake_start(NULL);
    sink = sink_create(auth, NULL);
    put_contact(1, "Avery", "Quill", "avery.quill@example.com");
    put_contact(2, "Blake", "Rowan", NULL);
    put_contact(3, "Casey", "Stone", "casey@example.com");
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.ok, 3);
    ck_assert_int_eq(s.batches, 1);
    ck_assert_int_eq(fake_req("token", "200"), 1);
    ck_assert_int_eq(fake_req("composite/Contact", "200"), 1);
    ck_assert_int_eq(fake_num("data_requests", NULL, NULL), 1);
    ck_assert_int_eq(fake_num("objects", "Contact", NULL), 3);
    col("od:main-st:1", "remote_id", buf, sizeof(buf));
    ck_assert_uint_eq(strlen(buf), 18);
    ck_assert_int_eq(strncmp(buf, "003", 3), 0);
    cJSON *c = fake_object("Contact", "od:main-st:1");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(str_in(c, "Id"), buf);
    ck_assert_str_eq(str_in(c, "FirstName"), "Avery");
    ck_assert_str_eq(str_in(c, "LastName"), "Quill");
    ck_assert_str_eq(str_in(c, "Odsync_Recall_Stage__c"), "due");
    ck_assert_str_eq(str_in(c, "Odsync_Recall_Due__c"), "2026-06-01");
    ck_assert_str_eq(str_in(c, "Odsync_Office__c"), OFFICE);
    ck_assert_int_eq((int)cJSON_GetObjectItem(c, "Odsync_PatNum__c")->valuedouble, 1);
    cJSON_Delete(c);
}

START_TEST(oauth_client_credentials)
{
    flow_delivers("client_credentials");
    /* A wrong secret: the token endpoint says invalid_client -> AUTH pause, no attempt. */
    host_sink_destroy(sink);
    ck_assert_int_eq(setenv("SF_TEST_SECRET", "wrong", 1), 0);
    sink = sink_create("client_credentials", NULL);
    put_contact(4, "Dana", "Tate", NULL);
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.auth, 1);
    ck_assert_int_eq(s.paused_until_ms, SINK_PAUSED_INDEFINITELY);
    char buf[320];
    ck_assert_str_eq(col("od:main-st:4", "attempts", buf, sizeof(buf)), "0");
    ck_assert_int_eq(fake_req("token", "400"), 1);
    ck_assert_int_eq(fake_num("data_requests", NULL, NULL), 1); /* no data request */
}
END_TEST

START_TEST(oauth_jwt_bearer)
{
    flow_delivers("jwt");
    /* Signed with a key whose certificate the org does not have: invalid_grant -> AUTH. */
    host_sink_destroy(sink);
    char extra[600];
    util_fmt(extra, sizeof(extra), "{\"private_key\":\"file:%s\"}", other_path);
    sink = sink_create("jwt", extra);
    put_contact(4, "Dana", "Tate", NULL);
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.auth, 1);
    ck_assert_int_eq(fake_req("token", "400"), 1);
    ck_assert_int_eq(fake_num("tokens_issued", NULL, NULL), 1);
}
END_TEST

START_TEST(oauth_refresh_token)
{
    flow_delivers("refresh_token");
    host_sink_destroy(sink);
    ck_assert_int_eq(setenv("SF_TEST_REFRESH", "revoked", 1), 0);
    sink = sink_create("refresh_token", NULL);
    put_contact(4, "Dana", "Tate", NULL);
    ck_assert_int_eq(deliver().auth, 1);
    ck_assert_int_eq(fake_req("token", "400"), 1);
}
END_TEST

START_TEST(update_in_place)
{
    char id1[64], id2[64];
    fake_start(NULL);
    sink = sink_create("client_credentials", NULL);
    put_contact(7, "Avery", "Quill", "avery.quill@example.com");
    ck_assert_int_eq(deliver().ok, 1);
    col("od:main-st:7", "remote_id", id1, sizeof(id1));
    put_contact(7, "Avery", "Quill-Ng", NULL); /* changed: a new version */
    ck_assert_int_eq(deliver().ok, 1);
    col("od:main-st:7", "remote_id", id2, sizeof(id2));
    ck_assert_str_eq(id1, id2);
    ck_assert_int_eq(fake_num("objects", "Contact", NULL), 1);
    ck_assert_int_eq(fake_num("records", "created", NULL), 1);
    ck_assert_int_eq(fake_num("records", "updated", NULL), 1);
    cJSON *c = fake_object("Contact", "od:main-st:7");
    ck_assert_str_eq(str_in(c, "Id"), id1);
    ck_assert_str_eq(str_in(c, "LastName"), "Quill-Ng");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(c, "Email"))); /* cleared, not left stale */
    ck_assert_int_eq((int)cJSON_GetObjectItem(c, "_writes")->valuedouble, 2);
    cJSON_Delete(c);

    /* No last name: the placeholder rule (Salesforce requires LastName). */
    put_contact(8, "Sam", NULL, NULL);
    ck_assert_int_eq(deliver().ok, 1);
    c = fake_object("Contact", "od:main-st:8");
    ck_assert_str_eq(str_in(c, "LastName"), "Patient #8");
    cJSON_Delete(c);
}
END_TEST

START_TEST(partial_failure_dead_letters_one)
{
    fake_start(NULL);
    sink = sink_create("client_credentials", NULL);
    put_contact(1, "Avery", "Quill", "avery@example.com");
    put_contact(2, "Blake", "Rowan", "not-an-email");
    put_contact(3, "Casey", "Stone", NULL);
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.ok, 2);
    ck_assert_int_eq(s.dead, 1);
    ck_assert_str_eq(state_of("od:main-st:1"), "done");
    ck_assert_str_eq(state_of("od:main-st:2"), "dead");
    ck_assert_str_eq(state_of("od:main-st:3"), "done");
    char detail[320];
    col("od:main-st:2", "last_detail", detail, sizeof(detail));
    ck_assert_str_eq(detail, "Salesforce INVALID_EMAIL_ADDRESS (Email)");
    ck_assert_ptr_null(strstr(detail, "not-an-email"));
    /* Nothing is resent: another pass makes no request. */
    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.batches, 0);
    ck_assert_int_eq(fake_num("data_requests", NULL, NULL), 1);
}
END_TEST

START_TEST(request_limit_pauses_until_reset)
{
    fake_start((const char *const[]){"--daily-limit", "1", NULL});
    sink = sink_create("client_credentials", "{\"limit_pause_s\":7200}");
    put_contact(1, "Avery", "Quill", NULL);
    ck_assert_int_eq(deliver().ok, 1); /* uses the one request of the day */
    put_contact(2, "Blake", "Rowan", NULL);
    put_contact(3, "Casey", "Stone", NULL);
    int64_t before = util_now_ms();
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.rate_limited, 2);
    ck_assert_int_eq(fake_req("composite/Contact", "403"), 1);
    struct sink_state ss;
    ck_assert_int_eq(sink_state_get(st, SINK, &ss), ODSYNC_OK);
    ck_assert_int_eq(ss.pause_class, ODSYNC_RATE_LIMITED);
    ck_assert_int_ge(ss.paused_until, before + 7200 * 1000);
    ck_assert_int_le(ss.paused_until, util_now_ms() + 7200 * 1000);
    char buf[320];
    ck_assert_str_eq(col("od:main-st:2", "attempts", buf, sizeof(buf)), "0");
    ck_assert_str_eq(col("od:main-st:2", "state", buf, sizeof(buf)), "pending");
    /* The allocation frees up: once the pause is over the rows go through. */
    fake_faults("{\"api-usage\":0}");
    int cleared = 0;
    ck_assert_int_eq(sink_state_resume(st, SINK, &cleared), ODSYNC_OK);
    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.ok, 2);
    ck_assert_int_eq(fake_req("composite/Contact", "200"), 2);
}
END_TEST

START_TEST(token_expiry_renewed_once)
{
    fake_start(NULL);
    sink = sink_create("jwt", NULL);
    put_contact(1, "Avery", "Quill", NULL);
    ck_assert_int_eq(deliver().ok, 1);
    fake_faults("{\"expire-tokens\":true}");
    put_contact(2, "Blake", "Rowan", NULL);
    put_contact(3, "Casey", "Stone", NULL);
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.ok, 2);
    ck_assert_int_eq(s.retried + s.auth + s.rate_limited + s.dead, 0);
    ck_assert_int_eq(fake_req("token", "200"), 2);
    ck_assert_int_eq(fake_req("composite/Contact", "401"), 1);
    ck_assert_int_eq(fake_req("composite/Contact", "200"), 2);

    /* Tokens with a lifetime: a token that ran out is renewed the same way. */
    fake_faults("{\"token-lifetime-s\":1,\"expire-tokens\":true}");
    put_contact(4, "Dana", "Tate", NULL);
    ck_assert_int_eq(deliver().ok, 1); /* 401, renewal (a 1 s token), success */
    usleep(1500 * 1000);
    put_contact(5, "Eli", "Umber", NULL);
    ck_assert_int_eq(deliver().ok, 1); /* expired on its own: 401, renewal, success */
    ck_assert_int_eq(fake_req("composite/Contact", "401"), 3);
    ck_assert_int_eq(fake_req("token", "200"), 4);
}
END_TEST

START_TEST(second_401_is_auth)
{
    fake_start(NULL);
    sink = sink_create("client_credentials", NULL);
    fake_faults("{\"invalid-session-next\":2}");
    put_contact(1, "Avery", "Quill", NULL);
    put_contact(2, "Blake", "Rowan", NULL);
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.auth, 2);
    ck_assert_int_eq(s.paused_until_ms, SINK_PAUSED_INDEFINITELY);
    ck_assert_int_eq(fake_req("composite/Contact", "401"), 2);
    ck_assert_int_eq(fake_req("token", "200"), 2); /* first token, one renewal, no more */
    struct sink_state ss;
    ck_assert_int_eq(sink_state_get(st, SINK, &ss), ODSYNC_OK);
    ck_assert_int_eq(ss.pause_class, ODSYNC_AUTH);
    ck_assert_ptr_nonnull(strstr(ss.detail, "HTTP 401 INVALID_SESSION_ID"));
    char buf[32];
    ck_assert_str_eq(col("od:main-st:1", "attempts", buf, sizeof(buf)), "0");
    char health[128];
    ck_assert_int_eq(host_sink_health(sink, health, sizeof(health)), ODSYNC_AUTH);
}
END_TEST

START_TEST(html_502_and_truncated_json_are_retried)
{
    char id[64], buf[320];
    fake_start(NULL);
    sink = sink_create("client_credentials", NULL);
    put_contact(1, "Avery", "Quill", NULL);
    put_contact(2, "Blake", "Rowan", NULL);

    fake_faults("{\"html502-next\":1}");
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.retried, 2);
    ck_assert_str_eq(col("od:main-st:1", "last_detail", buf, sizeof(buf)), "HTTP 502");
    ck_assert_str_eq(col("od:main-st:1", "attempts", buf, sizeof(buf)), "1");
    ck_assert_int_eq(fake_num("objects", "Contact", NULL), 0);

    /* The upsert is applied but the answer is cut: retried, never taken as success. */
    fake_faults("{\"truncate-next\":1}");
    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.retried, 2);
    ck_assert_int_eq(s.ok, 0);
    ck_assert_ptr_nonnull(strstr(col("od:main-st:1", "last_detail", buf, sizeof(buf)),
                                 "not a JSON array of 2 upsert results"));
    ck_assert_int_eq(fake_num("objects", "Contact", NULL), 2);

    fake_faults("{\"fail-next\":1,\"fail-status\":503}");
    make_all_due();
    ck_assert_int_eq(deliver().retried, 2);
    ck_assert_str_eq(col("od:main-st:1", "last_detail", buf, sizeof(buf)),
                     "HTTP 503 SERVER_UNAVAILABLE");

    fake_faults("{\"lock-next\":1}"); /* a per-record UNABLE_TO_LOCK_ROW is transient */
    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.ok, 1);
    ck_assert_int_eq(s.retried, 1);
    make_all_due();
    ck_assert_int_eq(deliver().ok, 1);
    /* The repeats were updates of the same records. */
    ck_assert_int_eq(fake_num("objects", "Contact", NULL), 2);
    col("od:main-st:1", "remote_id", id, sizeof(id));
    cJSON *c = fake_object("Contact", "od:main-st:1");
    ck_assert_str_eq(str_in(c, "Id"), id);
    cJSON_Delete(c);
    ck_assert_int_eq(rows_in("done"), 2);
}
END_TEST

START_TEST(request_counts)
{
    char key[64];
    fake_start(NULL);
    sink = sink_create("client_credentials", NULL);
    for (int i = 1; i <= 450; i++) {
        util_fmt(key, sizeof(key), "First%d", i);
        put_contact(i, key, "Patient", NULL);
    }
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.ok, 450);
    ck_assert_int_eq(s.batches, 3);
    ck_assert_int_eq(fake_req("composite/Contact", "200"), 3); /* ceil(450 / 200) */
    ck_assert_int_eq(fake_num("token_requests", NULL, NULL), 1);
    ck_assert_int_eq(fake_num("data_requests", NULL, NULL), 3);
    ck_assert_int_eq(host_sink_counter(sink, "requests"), 3);
    ck_assert_int_eq(fake_num("objects", "Contact", NULL), 450);
    /* The same content again: no outbox row, no request. */
    for (int i = 1; i <= 450; i++) {
        util_fmt(key, sizeof(key), "First%d", i);
        put_contact(i, key, "Patient", NULL);
    }
    s = deliver();
    ck_assert_int_eq(s.batches, 0);
    ck_assert_int_eq(fake_num("data_requests", NULL, NULL), 3);
    ck_assert_int_eq(fake_num("token_requests", NULL, NULL), 1);
}
END_TEST

START_TEST(tasks_link_to_contacts)
{
    char cid[64], tid[64];
    fake_start(NULL);
    sink = sink_create("client_credentials", NULL);
    put_contact(1, "Avery", "Quill", NULL);
    put_task(77, 1, "open");
    put_task(78, 2, "open"); /* its contact does not exist */
    struct deliver_stats s = deliver();
    ck_assert_int_eq(s.ok, 2);
    ck_assert_int_eq(s.retried, 1);
    ck_assert_int_eq(fake_req("query", "200"), 1); /* only the unknown contact was looked up */
    col("od:main-st:1", "remote_id", cid, sizeof(cid));
    col("od:main-st:recall:77", "remote_id", tid, sizeof(tid));
    ck_assert_int_eq(strncmp(tid, "00T", 3), 0);
    cJSON *t = fake_object("Task", "od:main-st:recall:77");
    ck_assert_str_eq(str_in(t, "WhoId"), cid);
    ck_assert_str_eq(str_in(t, "Status"), "Not Started");
    ck_assert_str_eq(str_in(t, "Priority"), "Normal");
    ck_assert_str_eq(str_in(t, "ActivityDate"), "2026-06-01");
    cJSON_Delete(t);
    char buf[320];
    ck_assert_str_eq(col("od:main-st:recall:78", "last_detail", buf, sizeof(buf)),
                     "the task's contact is not in Salesforce yet");

    /* A new instance (no remembered ids): one query for the batch, then the upsert. */
    host_sink_destroy(sink);
    sink = sink_create("client_credentials", NULL);
    put_contact(2, "Blake", "Rowan", NULL);
    ck_assert_int_eq(deliver().ok, 1);
    put_task(77, 1, "completed");
    put_task(79, 1, "open");
    make_all_due();
    s = deliver();
    ck_assert_int_eq(s.ok, 3); /* 77 updated, 78 (contact 2 was just created: cached), 79 */
    ck_assert_int_eq(fake_req("query", "200"), 2);
    t = fake_object("Task", "od:main-st:recall:77");
    ck_assert_str_eq(str_in(t, "Status"), "Completed");
    ck_assert_str_eq(str_in(t, "Id"), tid);
    cJSON_Delete(t);
    ck_assert_int_eq(fake_num("objects", "Task", NULL), 3);
}
END_TEST

START_TEST(fake_rules)
{
    /* The fake itself, with raw requests: what the plugin relies on it to enforce. */
    fake_start(NULL);
    struct odsync_http_response *resp = NULL;
    char url[256], auth[160];
    struct sbuf big = {0};
    util_fmt(url, sizeof(url), "http://127.0.0.1:%d/services/oauth2/token", fake_port);
    static const char form[] =
        "grant_type=client_credentials&client_id=" CLIENT_ID "&client_secret=" SECRET;
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url,
                                      .body = form,
                                      .body_len = strlen(form)};
    int trc = http_client_perform(admin, &req, &resp);
    ck_assert_msg(trc == ODSYNC_OK, "token: %d %s", resp->status, resp->body);
    cJSON *tok = cJSON_Parse(resp->body);
    http_response_free(resp);
    util_fmt(auth, sizeof(auth), "Bearer %s", str_in(tok, "access_token"));
    ck_assert_str_eq(str_in(tok, "token_type"), "Bearer");
    cJSON_Delete(tok);
    const struct odsync_http_header hdr[] = {{"Authorization", auth},
                                             {"Content-Type", "application/json"}};
    util_fmt(url, sizeof(url),
             "http://127.0.0.1:%d/services/data/v62.0/composite/sobjects/Contact/Odsync_Key__c",
             fake_port);
    static const char body[] =
        "{\"allOrNone\":false,\"records\":["
        "{\"attributes\":{\"type\":\"Contact\"},\"Odsync_Key__c\":\"k1\",\"LastName\":\"A\"},"
        "{\"attributes\":{\"type\":\"Contact\"},\"Odsync_Key__c\":\"k2\"},"
        "{\"attributes\":{\"type\":\"Contact\"},\"Odsync_Key__c\":\"k3\",\"LastName\":\"B\"},"
        "{\"attributes\":{\"type\":\"Contact\"},\"Odsync_Key__c\":\"k3\",\"LastName\":\"C\"}]}";
    req = (struct odsync_http_request){.struct_size = sizeof(req),
                                       .method = "PATCH",
                                       .url = url,
                                       .headers = hdr,
                                       .header_count = 2,
                                       .body = body,
                                       .body_len = strlen(body)};
    ck_assert_int_eq(http_client_perform(admin, &req, &resp), ODSYNC_OK);
    ck_assert_str_eq(http_response_header(resp, "Sforce-Limit-Info"), "api-usage=1/15000");
    cJSON *r = cJSON_Parse(resp->body);
    http_response_free(resp);
    ck_assert_int_eq(cJSON_GetArraySize(r), 4);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "created")));
    const char *codes[] = {NULL, "REQUIRED_FIELD_MISSING", "DUPLICATE_VALUE", "DUPLICATE_VALUE"};
    for (int i = 1; i < 4; i++) {
        const cJSON *e =
            cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(r, i), "errors"), 0);
        ck_assert_str_eq(str_in(e, "statusCode"), codes[i]);
    }
    cJSON_Delete(r);

    /* 201 records: 400 EXCEEDED_ID_LIMIT, nothing written. */
    sbuf_puts(&big, "{\"allOrNone\":false,\"records\":[");
    for (int i = 0; i < 201; i++)
        sbuf_printf(&big,
                    "%s{\"attributes\":{\"type\":\"Contact\"},\"Odsync_Key__c\":\"b%d\","
                    "\"LastName\":\"L\"}",
                    i ? "," : "", i);
    sbuf_puts(&big, "]}");
    req.body = big.data;
    req.body_len = big.len;
    ck_assert_int_eq(http_client_perform(admin, &req, &resp), ODSYNC_PERMANENT);
    ck_assert_int_eq(resp->status, 400);
    ck_assert_ptr_nonnull(strstr(resp->body, "\"errorCode\":\"EXCEEDED_ID_LIMIT\""));
    http_response_free(resp);
    sbuf_free(&big);

    /* allOrNone: one bad record rolls every record back. */
    static const char aon[] =
        "{\"allOrNone\":true,\"records\":["
        "{\"attributes\":{\"type\":\"Contact\"},\"Odsync_Key__c\":\"k9\",\"LastName\":\"A\"},"
        "{\"attributes\":{\"type\":\"Contact\"},\"Odsync_Key__c\":\"k10\",\"LastName\":\"\"}]}";
    req.body = aon;
    req.body_len = strlen(aon);
    ck_assert_int_eq(http_client_perform(admin, &req, &resp), ODSYNC_OK);
    ck_assert_ptr_nonnull(strstr(resp->body, "ALL_OR_NONE_OPERATION_ROLLED_BACK"));
    http_response_free(resp);
    ck_assert_ptr_null(fake_object("Contact", "k9"));

    /* An unknown field is a 400 INVALID_FIELD for the request. */
    static const char unknown[] = "{\"records\":[{\"attributes\":{\"type\":\"Contact\"},"
                                  "\"Odsync_Key__c\":\"k11\",\"LastName\":\"A\",\"Foo__c\":1}]}";
    req.body = unknown;
    req.body_len = strlen(unknown);
    ck_assert_int_eq(http_client_perform(admin, &req, &resp), ODSYNC_PERMANENT);
    ck_assert_ptr_nonnull(strstr(resp->body, "INVALID_FIELD"));
    http_response_free(resp);

    /* A bad token: 401 with Salesforce's body. */
    const struct odsync_http_header bad[] = {{"Authorization", "Bearer nope"}};
    req.headers = bad;
    req.header_count = 1;
    ck_assert_int_eq(http_client_perform(admin, &req, &resp), ODSYNC_AUTH);
    ck_assert_str_eq(
        resp->body,
        "[{\"message\":\"Session expired or invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]");
    http_response_free(resp);
    ck_assert_int_eq(fake_num("objects", "Contact", NULL), 1);
}
END_TEST

START_TEST(bad_settings_refused)
{
    char err[512];
    struct host_sink *s = NULL;
    static const char *const cases[][2] = {
        {"{\"client_id\":\"x\",\"client_secret\":\"literal\"}", "client_secret"},
        {"{\"client_id\":\"x\"}", "client_secret: required"},
        {"{\"client_id\":\"x\",\"auth\":\"jwt\",\"username\":\"u\"}", "private_key: required"},
        {"{\"client_id\":\"x\",\"auth\":\"jwt\",\"username\":\"u\","
         "\"private_key\":\"${SF_TEST_SECRET}\"}",
         "private_key: not an unencrypted PEM private key"},
        {"{\"client_id\":\"x\",\"auth\":\"password\"}", "auth: expected"},
        {"{\"client_id\":\"x\",\"client_secret\":\"${SF_TEST_SECRET}\",\"api_version\":\"45.0\"}",
         "api_version"},
        {"{\"client_id\":\"x\",\"client_secret\":\"${SF_TEST_SECRET}\","
         "\"contact_external_id\":\"a b\"}",
         "contact_external_id"},
        {"{\"client_id\":\"x\",\"client_secret\":\"${SF_TEST_SECRET}\",\"limit_pause_s\":5}",
         "limit_pause_s"},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        cJSON *set = cJSON_Parse(cases[i][0]);
        err[0] = '\0';
        ck_assert_int_ne(host_sink_create(plug, SINK, set, "sinks." SINK, &s, err, sizeof(err)),
                         ODSYNC_OK);
        ck_assert_msg(strstr(err, cases[i][1]) != NULL, "case %zu: %s", i, err);
        ck_assert_ptr_null(strstr(err, SECRET));
        cJSON_Delete(set);
    }
}
END_TEST

/* ---- a stub host, to watch the gauges ----------------------------------------------------- */

struct odsync_host_ctx {
    const struct odsync_sink_descriptor *desc;
    struct http_client *http;
    char settings[4][2][512]; /* name, value */
    double usage, limit;
    int gauges_set;
    int status[8];
};

static struct odsync_host_ctx stub;

static void stub_log(odsync_host_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    (void)ctx;
    (void)level;
    va_start(ap, fmt);
    vfprintf(log_file, fmt, ap);
    va_end(ap);
    fputc('\n', log_file);
}

static void stub_set_error(odsync_host_ctx *ctx, const char *fmt, ...)
{
    (void)ctx;
    (void)fmt;
}

static const char *stub_config(odsync_host_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(ctx->settings[i][0], name) == 0)
            return ctx->settings[i][1];
    for (const struct odsync_config_spec *c = ctx->desc->config; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c->default_value;
    return NULL;
}

static int stub_http(odsync_host_ctx *ctx, const struct odsync_http_request *req,
                     struct odsync_http_response **out)
{
    return http_client_perform(ctx->http, req, out);
}

static void stub_counter(odsync_host_ctx *ctx, const char *name, int64_t delta)
{
    (void)ctx;
    (void)name;
    (void)delta;
}

static void stub_gauge(odsync_host_ctx *ctx, const char *name, double value)
{
    if (strcmp(name, "api_usage") == 0)
        ctx->usage = value;
    else if (strcmp(name, "api_limit") == 0)
        ctx->limit = value;
    ctx->gauges_set++;
}

static void stub_result(odsync_batch *batch, size_t index, int status, int64_t retry_after_ms,
                        const char *remote_id, const char *detail)
{
    (void)batch;
    (void)retry_after_ms;
    (void)remote_id;
    (void)detail;
    if (index < 8)
        stub.status[index] = status;
}

START_TEST(limit_gauges)
{
    fake_start((const char *const[]){"--daily-limit", "5000", NULL});
    const struct odsync_host host = {
        .struct_size = sizeof(host),
        .abi_major = ODSYNC_SINK_ABI_MAJOR,
        .abi_minor = ODSYNC_SINK_ABI_MINOR,
        .log = stub_log,
        .set_error = stub_set_error,
        .config_get = stub_config,
        .secret_get = stub_config,
        .http = stub_http,
        .http_header = http_response_header,
        .http_free = http_response_free,
        .status_class = http_status_class,
        .url_encode = http_url_encode,
        .counter_add = stub_counter,
        .gauge_set = stub_gauge,
        .result_set = stub_result,
    };
    memset(&stub, 0, sizeof(stub));
    stub.desc = plugin_descriptor(plug);
    stub.http = http_client_create();
    util_fmt(stub.settings[0][0], 512, "login_url");
    util_fmt(stub.settings[0][1], 512, "http://127.0.0.1:%d", fake_port);
    util_fmt(stub.settings[1][0], 512, "client_id");
    util_fmt(stub.settings[1][1], 512, CLIENT_ID);
    util_fmt(stub.settings[2][0], 512, "client_secret");
    util_fmt(stub.settings[2][1], 512, SECRET);
    void *inst = NULL;
    ck_assert_int_eq(stub.desc->create(&host, &stub, &inst), ODSYNC_OK);
    fake_faults("{\"api-usage\":41}");
    static const char json[] = "{\"key\":\"od:main-st:1\",\"office\":\"main-st\",\"patnum\":1,"
                               "\"last_name\":\"Quill\"}";
    struct odsync_record rec = {.struct_size = sizeof(rec),
                                .kind = ODSYNC_KIND_CONTACT,
                                .key = "od:main-st:1",
                                .office = OFFICE,
                                .version = 1,
                                .json = json,
                                .json_len = strlen(json)};
    const struct odsync_record *recs[] = {&rec};
    ck_assert_int_eq(stub.desc->send_batch(inst, NULL, recs, 1), ODSYNC_OK);
    ck_assert_int_eq(stub.status[0], ODSYNC_OK);
    ck_assert_int_ge(stub.gauges_set, 2);
    ck_assert(stub.usage == 42.0);
    ck_assert(stub.limit == 5000.0);
    stub.desc->destroy(inst);
    http_client_destroy(stub.http);
}
END_TEST

START_TEST(no_patient_data_in_logs)
{
    fake_start(NULL);
    sink = sink_create("client_credentials", NULL);
    put_contact(1, "Zebulon", "Quixote", "zebulon.q@example.com");
    put_contact(2, "Yolanda", "Vexley", "bad-address");
    put_task(5, 1, "open");
    fake_faults("{\"html502-next\":1}");
    deliver();
    make_all_due();
    deliver();
    fflush(log_file);
    char *text = tu_read_file(log_path);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "token obtained")); /* the log is really captured */
    static const char *const phi[] = {"Zebulon", "Quixote",     "zebulon.q", "Yolanda",
                                      "Vexley",  "bad-address", "+1555",     SECRET};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(phi); i++)
        ck_assert_msg(strstr(text, phi[i]) == NULL, "log holds %s", phi[i]);
    free(text);
    ck_assert_str_eq(state_of("od:main-st:2"), "dead");
}
END_TEST

static Suite *salesforce_suite(void)
{
    Suite *s = suite_create("plugin_salesforce");
    TCase *tc = tcase_create("salesforce");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, descriptor_and_setup);
    tcase_add_test(tc, oauth_client_credentials);
    tcase_add_test(tc, oauth_jwt_bearer);
    tcase_add_test(tc, oauth_refresh_token);
    tcase_add_test(tc, update_in_place);
    tcase_add_test(tc, partial_failure_dead_letters_one);
    tcase_add_test(tc, request_limit_pauses_until_reset);
    tcase_add_test(tc, token_expiry_renewed_once);
    tcase_add_test(tc, second_401_is_auth);
    tcase_add_test(tc, html_502_and_truncated_json_are_retried);
    tcase_add_test(tc, request_counts);
    tcase_add_test(tc, tasks_link_to_contacts);
    tcase_add_test(tc, fake_rules);
    tcase_add_test(tc, bad_settings_refused);
    tcase_add_test(tc, limit_gauges);
    tcase_add_test(tc, no_patient_data_in_logs);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(salesforce_suite)
