/*
 * test_hubspot: the real build/plugins/hubspot.so, loaded by runtime_open (core/plugin.c +
 * core/host_api.c) from a config, fed by import_json into a real SQLite store and outbox and
 * driven by core/deliver.c's deliver_sink, against build/contrib/fakes/fake_hubspot over
 * loopback. Every test starts its own fake and asserts what the fake holds (objects, ids,
 * associations) and how many requests of each route it answered, and what the outbox and the
 * sink's pause say.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "deliver.h"
#include "host_api.h"
#include "http_client.h"
#include "import.h"
#include "log.h"
#include "outbox.h"
#include "plugin.h"
#include "runtime.h"
#include "sink_state.h"
#include "store.h"
#include "tz.h"
#include "util.h"

#include "../support/testutil.h"

#define TOKEN "pat-na1-5f1d2c9a-0000-4000-8000-000000000001"

#define R_UPSERT "POST /crm/v3/objects/{type}/batch/upsert"
#define R_READ   "POST /crm/v3/objects/{type}/batch/read"
#define R_CREATE "POST /crm/v3/objects/{type}/batch/create"
#define R_UPDATE "POST /crm/v3/objects/{type}/batch/update"
#define R_GETP   "GET /crm/v3/properties/{type}/{name}"
#define R_POSTP  "POST /crm/v3/properties/{type}"

static char *dir;           /* per test */
static pid_t fake_pid = -1; /* per test */
static int fake_port;       /* per test */
static struct runtime *rt;  /* per test, may be reopened */
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
    char *path = tu_build_path("contrib/fakes/fake_hubspot");
    char errp[512];
    const char *argv[24] = {path, "--token", TOKEN};
    size_t n = 3;
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
    ck_assert_int_eq(setenv("HT_HUBSPOT_TOKEN", TOKEN, 1), 0);
    ck_assert_int_eq(setenv("HT_OD_DEV", "dev-key", 1), 0);
    ck_assert_int_eq(setenv("HT_OD_CUST", "cust-key", 1), 0);
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

/* (Re)open the runtime: sink "crm" is the hubspot plugin at the fake, with the extra sink
 * settings (JSON members, may be ""). A reopen is a restart: a new plugin instance. */
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
             " \"sinks\": {\"crm\": {\"plugin\": \"hubspot\", \"token\": \"${HT_HUBSPOT_TOKEN}\","
             " \"base_url\": \"http://127.0.0.1:%d\"%s%s}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\":"
             " \"America/Chicago\", \"opendental\": {\"base_url\": \"http://127.0.0.1:1/api/v1\","
             " \"developer_key\": \"${HT_OD_DEV}\", \"customer_key\": \"${HT_OD_CUST}\","
             " \"tier\": \"paid\", \"min_interval_ms\": 0},"
             " \"routes\": {\"contact\": [\"crm\"], \"task\": [\"crm\"]}}]}\n",
             dir, tu_build_dir(), fake_port, sink_extra[0] ? ", " : "", sink_extra);
    ck_assert_msg(config_parse(text, strlen(text), "hubspot.json", &cfg, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "config: %s", err);
    ck_assert_msg(runtime_open(cfg, 0, &rt, err, sizeof(err)) == ODSYNC_OK, "runtime: %s", err);
}

static struct host_sink *sink(void)
{
    struct runtime_sink *rs = runtime_find_sink(rt, "crm");
    ck_assert_ptr_nonnull(rs);
    return rs->sink;
}

/* Import a JSON array of records; returns the stats. */
static struct import_stats import(const char *json)
{
    struct import_stats st;
    char err[512] = "";
    ck_assert_msg(import_json(rt->store, rt->cfg, json, strlen(json), "test", &st, err,
                              sizeof(err)) == ODSYNC_OK,
                  "import: %s", err);
    return st;
}

/* A contact record for import (caller frees): patnum, email (may be NULL), a name suffix. */
static char *contact(int64_t patnum, const char *email, const char *recall_due)
{
    char *s = malloc(1024);
    ck_assert_ptr_nonnull(s);
    snprintf(
        s, 1024,
        "{\"kind\": \"contact\", \"office\": \"main-st\", \"patnum\": %lld,"
        " \"first_name\": \"Avery%lld\", \"last_name\": \"Quill\", \"email\": %s%s%s,"
        " \"phone_mobile\": \"+15550102233\", \"phone_home\": \"+15550104455\","
        " \"patient_status\": \"Patient\", \"sms_consent\": \"yes\", \"email_opt_out\": false,"
        " \"language\": \"eng\", \"recall_due\": \"%s\", \"recall_stage\": \"due\","
        " \"last_visit\": \"2025-12-01\", \"reactivation\": false, \"guarantor_patnum\": %lld}",
        (long long)patnum, (long long)patnum, email ? "\"" : "", email ? email : "null",
        email ? "\"" : "", recall_due, (long long)patnum);
    return s;
}

/* A recall task for import (caller frees). */
static char *task(int64_t recall, int64_t patnum, const char *due, const char *status)
{
    char *s = malloc(512);
    ck_assert_ptr_nonnull(s);
    snprintf(s, 512,
             "{\"kind\": \"task\", \"office\": \"main-st\", \"recall_num\": %lld, \"patnum\": %lld,"
             " \"subject\": \"Recall due: call to schedule a cleaning\", \"body\": \"Recall due.\","
             " \"due\": \"%s\", \"status\": \"%s\", \"priority\": \"medium\", \"type\": \"call\"}",
             (long long)recall, (long long)patnum, due, status);
    return s;
}

/* "[a,b,...]" of n contacts with patnums from..from+n-1 and emails pN@example.com (caller
 * frees). */
static char *contacts(int64_t from, int n, const char *recall_due)
{
    struct sbuf b = {0};
    char email[64];
    ck_assert_int_eq(sbuf_puts(&b, "["), ODSYNC_OK);
    for (int i = 0; i < n; i++) {
        snprintf(email, sizeof(email), "p%lld@example.com", (long long)(from + i));
        char *c = contact(from + i, email, recall_due);
        ck_assert_int_eq(sbuf_printf(&b, "%s%s", i ? "," : "", c), ODSYNC_OK);
        free(c);
    }
    ck_assert_int_eq(sbuf_puts(&b, "]"), ODSYNC_OK);
    return sbuf_take(&b);
}

/* One delivery pass of sink crm with the config's policy and the test clock. */
static struct deliver_stats deliver(void)
{
    struct runtime_sink *rs = runtime_find_sink(rt, "crm");
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

/* A request to the fake's admin API (body may be NULL); parsed answer (caller frees). */
static cJSON *fake_admin(const char *method, const char *path, const char *body)
{
    char url[256];
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

/* Requests the fake answered on route with status ("total" for all). */
static int64_t requests(const char *route, const char *status)
{
    cJSON *st = fake_admin("GET", "/_state", NULL);
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(st, "requests"), "by_route");
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(by, route), status);
    int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    cJSON_Delete(st);
    return n;
}

static int64_t total_requests(void)
{
    return state_num("requests", "total", NULL);
}

/* The outbox row of key (sink crm): column as text into buf ("" for NULL). */
static const char *row(const char *key, const char *column, char *buf, size_t len)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof(sql), "SELECT %s FROM outbox WHERE sink = 'crm' AND key = ?", column);
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

/* The fake's object (type, id) (caller frees). */
static cJSON *object(const char *type, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/_objects/%s/%s", type, id);
    return fake_admin("GET", path, NULL);
}

static const char *prop(const cJSON *obj, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "properties"), name));
}

/* The sink's pause. */
static struct sink_state pause_of(void)
{
    struct sink_state ss;
    ck_assert_int_eq(sink_state_get(rt->store, "crm", &ss), ODSYNC_OK);
    return ss;
}

static void resume(void)
{
    int cleared = 0;
    ck_assert_int_eq(sink_state_resume(rt->store, "crm", &cleared), ODSYNC_OK);
    ck_assert_int_eq(cleared, 1);
}

/* The whole log odsync wrote so far (caller frees). */
static char *log_text(void)
{
    fflush(log_file);
    char *t = tu_read_file(log_path);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(descriptor_and_setup)
{
    char err[512] = "", *out = NULL;
    struct plugin *p = NULL;
    char *so = tu_build_path("plugins/hubspot.so");
    char *bin = tu_build_path("odsync");
    ck_assert_msg(plugin_open(so, &p, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    const struct odsync_sink_descriptor *d = plugin_descriptor(p);
    ck_assert_str_eq(d->name, "hubspot");
    ck_assert_uint_eq(d->max_batch, 100);
    ck_assert(d->capabilities == (ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS));
    ck_assert_ptr_nonnull(d->setup);
    ck_assert_ptr_nonnull(strstr(d->setup, "contacts  odsync_key "));
    plugin_close(p);

    /* `odsync plugins describe` prints the property table. */
    const char *argv[] = {bin, "plugins", "describe", so, NULL};
    ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "setup"));
    ck_assert_ptr_nonnull(strstr(out, "object    name                   label"));
    ck_assert_msg(strstr(out, "contacts  odsync_key             odsync key                string"
                              "       text             contactinformation  true") != NULL,
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "contacts  odsync_recall_due      Recall due"));
    ck_assert_ptr_nonnull(strstr(out, "tasks     odsync_key"));
    free(out);
    free(so);
    free(bin);
}
END_TEST

START_TEST(properties_created_once_then_contacts)
{
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    char *recs = contacts(1, 3, "2026-06-01");
    import(recs);
    free(recs);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 3);

    /* 14 definitions in the setup text: each looked up, each missing one created. */
    ck_assert_int_eq(requests(R_GETP, "404"), 15);
    ck_assert_int_eq(requests(R_POSTP, "201"), 15);
    ck_assert_int_eq(state_num("custom_properties", "contacts", NULL), 14);
    ck_assert_int_eq(state_num("custom_properties", "tasks", NULL), 1);
    ck_assert_int_eq(requests(R_UPSERT, "200"), 1);
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 3);

    /* The mapping, as HubSpot holds it. */
    char id[32];
    row("od:main-st:2", "remote_id", id, sizeof(id));
    cJSON *o = object("contacts", id);
    ck_assert_str_eq(prop(o, "odsync_key"), "od:main-st:2");
    ck_assert_str_eq(prop(o, "firstname"), "Avery2");
    ck_assert_str_eq(prop(o, "lastname"), "Quill");
    ck_assert_str_eq(prop(o, "email"), "p2@example.com");
    ck_assert_str_eq(prop(o, "mobilephone"), "+15550102233");
    ck_assert_str_eq(prop(o, "phone"), "+15550104455");
    ck_assert_str_eq(prop(o, "odsync_office"), "main-st");
    ck_assert_str_eq(prop(o, "odsync_patnum"), "2");
    ck_assert_str_eq(prop(o, "odsync_recall_due"), "2026-06-01");
    ck_assert_str_eq(prop(o, "odsync_recall_stage"), "due");
    ck_assert_str_eq(prop(o, "odsync_last_visit"), "2025-12-01");
    ck_assert_str_eq(prop(o, "odsync_sms_consent"), "yes");
    ck_assert_str_eq(prop(o, "odsync_reactivation"), "false");
    ck_assert_str_eq(prop(o, "odsync_patient_status"), "Patient");
    ck_assert_str_eq(prop(o, "odsync_guarantor_key"), "od:main-st:2");
    cJSON_Delete(o);

    /* Once per instance: more contacts cost no property request. */
    recs = contacts(10, 2, "2026-06-01");
    import(recs);
    free(recs);
    deliver();
    ck_assert_int_eq(requests(R_GETP, "total"), 15);

    /* A restart (new instance) finds them all: 14 lookups, no creation. */
    open_rt("\"create_properties\": true");
    recs = contacts(20, 1, "2026-06-01");
    import(recs);
    free(recs);
    deliver();
    ck_assert_int_eq(requests(R_GETP, "200"), 15);
    ck_assert_int_eq(requests(R_POSTP, "total"), 15);
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 6);
}
END_TEST

START_TEST(without_properties_the_upsert_is_refused)
{
    /* create_properties off and nothing created: HubSpot refuses the idProperty (400), every
     * contact is dead-lettered with a detail that says why, and nothing is stored. */
    fake_start(NULL);
    open_rt("");
    char *recs = contacts(1, 2, "2026-06-01");
    import(recs);
    free(recs);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.dead, 2);
    char buf[256];
    ck_assert_str_eq(row("od:main-st:1", "state", buf, sizeof(buf)), "dead");
    ck_assert_str_eq(row("od:main-st:1", "last_detail", buf, sizeof(buf)),
                     "HTTP 400 VALIDATION_ERROR");
    ck_assert_int_eq(requests(R_GETP, "total"), 0);
    ck_assert_int_eq(requests(R_UPSERT, "400"), 1);
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 0);
}
END_TEST

START_TEST(update_in_place)
{
    char id1[32], id2[32], tid1[32], tid2[32], buf[64];
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    char *c = contact(1042, "avery@example.com", "2026-06-01");
    char *t = task(5521, 1042, "2026-06-01T14:00:00Z", "open");
    char json[2048];
    snprintf(json, sizeof(json), "[%s,%s]", c, t);
    free(c);
    free(t);
    import(json);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 2);
    row("od:main-st:1042", "remote_id", id1, sizeof(id1));
    row("od:main-st:recall:5521", "remote_id", tid1, sizeof(tid1));
    ck_assert_int_eq(requests(R_CREATE, "201"), 1);
    ck_assert_int_eq(requests(R_READ, "total"), 0); /* the id came from the upsert */

    cJSON *tk = object("tasks", tid1);
    ck_assert_str_eq(prop(tk, "hs_timestamp"), "2026-06-01T14:00:00Z");
    ck_assert_str_eq(prop(tk, "hs_task_status"), "NOT_STARTED");
    ck_assert_str_eq(prop(tk, "hs_task_priority"), "MEDIUM");
    ck_assert_str_eq(prop(tk, "hs_task_type"), "CALL");
    ck_assert_str_eq(prop(tk, "odsync_key"), "od:main-st:recall:5521");
    const cJSON *as = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tk, "associations"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(as, "to")), id1);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(as, "associationTypeId")->valueint, 204);
    cJSON_Delete(tk);

    /* The recall moved and was then fulfilled: new versions of both records. */
    c = contact(1042, "avery@example.com", "2026-07-15");
    t = task(5521, 1042, "2026-07-15T14:00:00Z", "completed");
    snprintf(json, sizeof(json), "[%s,%s]", c, t);
    free(c);
    free(t);
    import(json);
    ds = deliver();
    ck_assert_int_eq(ds.ok, 2);
    row("od:main-st:1042", "remote_id", id2, sizeof(id2));
    row("od:main-st:recall:5521", "remote_id", tid2, sizeof(tid2));
    ck_assert_str_eq(id1, id2);
    ck_assert_str_eq(tid1, tid2);
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 1);
    ck_assert_int_eq(state_num("objects", "tasks", NULL), 1);
    ck_assert_int_eq(state_num("associations", NULL, NULL), 1);
    ck_assert_int_eq(requests(R_CREATE, "total"), 1);
    ck_assert_int_eq(requests(R_UPDATE, "200"), 1);
    tk = object("tasks", tid1);
    ck_assert_str_eq(prop(tk, "hs_timestamp"), "2026-07-15T14:00:00Z");
    ck_assert_str_eq(prop(tk, "hs_task_status"), "COMPLETED");
    cJSON_Delete(tk);
    cJSON *ct = object("contacts", id1);
    ck_assert_str_eq(prop(ct, "odsync_recall_due"), "2026-07-15");
    cJSON_Delete(ct);
    ck_assert_str_eq(row("od:main-st:recall:5521", "state", buf, sizeof(buf)), "done");
}
END_TEST

START_TEST(partial_failure_dead_letters_one)
{
    char buf[256], json[8192];
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    struct sbuf b = {0};
    for (int i = 1; i <= 5; i++) {
        char email[64];
        snprintf(email, sizeof(email), i == 3 ? "avery.quill@@example" : "p%d@example.com", i);
        char *c = contact(i, email, "2026-06-01");
        ck_assert_int_eq(sbuf_printf(&b, "%s%s", i > 1 ? "," : "[", c), ODSYNC_OK);
        free(c);
    }
    ck_assert_int_eq(sbuf_puts(&b, "]"), ODSYNC_OK);
    snprintf(json, sizeof(json), "%s", b.data);
    sbuf_free(&b);
    import(json);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 4);
    ck_assert_int_eq(ds.dead, 1);
    ck_assert_int_eq(requests(R_UPSERT, "207"), 1);
    ck_assert_str_eq(row("od:main-st:3", "state", buf, sizeof(buf)), "dead");
    ck_assert_int_eq(row_int("od:main-st:3", "last_class"), ODSYNC_PERMANENT);
    ck_assert_str_eq(row("od:main-st:3", "last_detail", buf, sizeof(buf)),
                     "HubSpot contact upsert: VALIDATION_ERROR INVALID_EMAIL (email)");
    for (int i = 1; i <= 5; i++) {
        char key[32];
        snprintf(key, sizeof(key), "od:main-st:%d", i);
        if (i != 3)
            ck_assert_str_eq(row(key, "state", buf, sizeof(buf)), "done");
    }
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 4);

    /* Nothing is resent: another pass makes no request. */
    int64_t before = total_requests();
    nap();
    ds = deliver();
    ck_assert_int_eq(ds.batches, 0);
    ck_assert_int_eq(total_requests(), before);

    /* No patient data in the log: the fake's message quoted the bad address. */
    char *log = log_text();
    ck_assert_ptr_null(strstr(log, "avery.quill"));
    ck_assert_ptr_null(strstr(log, "Avery"));
    ck_assert_ptr_null(strstr(log, "5550102233"));
    ck_assert_ptr_null(strstr(log, TOKEN));
    free(log);
}
END_TEST

START_TEST(rate_limited_ten_secondly)
{
    char buf[256];
    fake_start((const char *const[]){"--interval-ms", "10000", NULL});
    open_rt("\"create_properties\": true");
    char *recs = contacts(1, 2, "2026-06-01");
    import(recs);
    free(recs);
    clock_ms = util_now_ms();
    deliver(); /* properties + contacts */

    /* 429 TEN_SECONDLY_ROLLING without Retry-After (HubSpot's way): wait the interval. */
    faults("{\"force_429\": 1, \"force_429_policy\": \"TEN_SECONDLY_ROLLING\"}");
    recs = contacts(3, 2, "2026-06-01");
    import(recs);
    free(recs);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.rate_limited, 2);
    ck_assert_int_eq(requests(R_UPSERT, "429"), 1);
    struct sink_state ss = pause_of();
    ck_assert_int_eq(ss.pause_class, ODSYNC_RATE_LIMITED);
    ck_assert_int_eq(ss.paused_until - clock_ms, 10000);
    ck_assert_str_eq(row("od:main-st:3", "last_detail", buf, sizeof(buf)),
                     "HTTP 429 TEN_SECONDLY_ROLLING");
    ck_assert_int_eq(row_int("od:main-st:3", "attempts"), 0);
    ck_assert_int_eq(row_int("od:main-st:4", "next_at") - clock_ms, 10000);

    /* With Retry-After: that wait instead. */
    resume();
    clock_ms += 10000;
    faults("{\"force_429\": 1, \"retry_after\": 3}");
    ds = deliver();
    ck_assert_int_eq(ds.rate_limited, 2);
    ss = pause_of();
    ck_assert_int_eq(ss.paused_until - clock_ms, 3000);
    ck_assert_int_eq(row_int("od:main-st:3", "attempts"), 0);

    /* After the pause the same rows go through. */
    resume();
    clock_ms += 3000;
    ds = deliver();
    ck_assert_int_eq(ds.ok, 2);
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 4);
}
END_TEST

/* The wall ms of the first midnight in zone after now_ms, per core/tz.c. */
static int64_t next_midnight_ms(const char *zone, int64_t now_ms)
{
    struct tz *z = NULL;
    int64_t local, utc;
    char err[128];
    ck_assert_int_eq(tz_load(zone, &z, err, sizeof(err)), ODSYNC_OK);
    ck_assert_int_eq(tz_utc_to_local(z, now_ms / 1000, &local), ODSYNC_OK);
    local = (local / 86400 + 1) * 86400;
    ck_assert_int_eq(tz_local_to_utc(z, local, 0, &utc), ODSYNC_OK);
    tz_free(z);
    return utc * 1000;
}

START_TEST(daily_limit_pauses_until_midnight)
{
    char buf[256];
    fake_start(NULL);
    open_rt("\"create_properties\": true, \"account_timezone\": \"America/Chicago\"");
    char *recs = contacts(1, 1, "2026-06-01");
    import(recs);
    free(recs);
    deliver();

    /* 429 DAILY: paused until midnight in the account's zone (plus a minute of grace). */
    faults("{\"force_429\": 1, \"force_429_policy\": \"DAILY\"}");
    recs = contacts(2, 1, "2026-06-01");
    import(recs);
    free(recs);
    int64_t now = util_now_ms();
    clock_ms = now;
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.rate_limited, 1);
    struct sink_state ss = pause_of();
    int64_t want = next_midnight_ms("America/Chicago", now) + 60000;
    ck_assert_msg(llabs(ss.paused_until - want) < 5000, "paused until %lld, want %lld",
                  (long long)ss.paused_until, (long long)want);
    ck_assert_str_eq(row("od:main-st:2", "last_detail", buf, sizeof(buf)),
                     "HTTP 429 DAILY: daily limit reached, paused until midnight in "
                     "America/Chicago");

    /* The instance itself holds off too: resumed early, with a new contact due now, it asks
     * nothing of HubSpot. */
    resume();
    recs = contacts(3, 1, "2026-06-01");
    import(recs);
    free(recs);
    int64_t before = total_requests();
    ds = deliver();
    ck_assert_int_eq(total_requests(), before);
    ck_assert_int_eq(ds.rate_limited, 1);
    char health[256];
    ck_assert_int_eq(host_sink_health(sink(), health, sizeof(health)), ODSYNC_RATE_LIMITED);
}
END_TEST

START_TEST(daily_remaining_zero_stops_before_the_429)
{
    fake_start(NULL);
    open_rt("\"create_properties\": true, \"account_timezone\": \"UTC\"");
    char *recs = contacts(1, 1, "2026-06-01");
    import(recs);
    free(recs);
    deliver(); /* 15 property lookups + 15 creates + 1 upsert = 31 requests */
    ck_assert_int_eq(state_num("rate", "daily_used", NULL), 31);

    /* One request left today: it succeeds and says Daily-Remaining 0. */
    faults("{\"daily_max\": 32}");
    recs = contacts(2, 1, "2026-06-01");
    import(recs);
    free(recs);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 1);
    recs = contacts(3, 1, "2026-06-01");
    import(recs);
    free(recs);
    int64_t before = total_requests();
    int64_t now = util_now_ms();
    clock_ms = now;
    ds = deliver();
    ck_assert_int_eq(ds.rate_limited, 1);
    ck_assert_int_eq(total_requests(), before); /* no 429 was needed */
    ck_assert_int_eq(requests(R_UPSERT, "429"), 0);
    struct sink_state ss = pause_of();
    int64_t want = (now / 86400000 + 1) * 86400000 + 60000;
    ck_assert_msg(llabs(ss.paused_until - want) < 5000, "paused until %lld, want %lld",
                  (long long)ss.paused_until, (long long)want);
}
END_TEST

START_TEST(token_expiry_pauses_auth_then_resumes)
{
    char buf[256];
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    char *recs = contacts(1, 1, "2026-06-01");
    import(recs);
    free(recs);
    deliver();
    faults("{\"token_expires_after_requests\": 1}");
    recs = contacts(2, 1, "2026-06-01");
    import(recs);
    free(recs);
    struct deliver_stats ds = deliver(); /* the last request the token allows */
    ck_assert_int_eq(ds.ok, 1);
    recs = contacts(3, 2, "2026-06-01");
    import(recs);
    free(recs);
    ds = deliver();
    ck_assert_int_eq(ds.auth, 2);
    ck_assert(ds.paused_until_ms == SINK_PAUSED_INDEFINITELY);
    struct sink_state ss = pause_of();
    ck_assert_int_eq(ss.pause_class, ODSYNC_AUTH);
    ck_assert_str_eq(row("od:main-st:3", "last_detail", buf, sizeof(buf)),
                     "HTTP 401 EXPIRED_AUTHENTICATION");
    ck_assert_int_eq(row_int("od:main-st:3", "attempts"), 0);
    ck_assert_int_eq(requests(R_UPSERT, "401"), 1);

    /* The token is renewed; an operator resumes the sink; delivery goes on. */
    faults("{\"token_expired\": false}");
    resume();
    ds = deliver();
    ck_assert_int_eq(ds.ok, 2);
    ck_assert_str_eq(row("od:main-st:4", "state", buf, sizeof(buf)), "done");
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 4);

    /* A token without a write scope is AUTH too, naming the scope. */
    faults("{\"missing_scope\": \"crm.objects.contacts.write\"}");
    recs = contacts(9, 1, "2026-06-01");
    import(recs);
    free(recs);
    ds = deliver();
    ck_assert_int_eq(ds.auth, 1);
    ck_assert_str_eq(row("od:main-st:9", "last_detail", buf, sizeof(buf)),
                     "HTTP 403 MISSING_SCOPES: missing scope crm.objects.contacts.write");
}
END_TEST

START_TEST(garbage_answers_are_retried)
{
    char buf[256], id[32];
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    char *recs = contacts(1, 3, "2026-06-01");
    import(recs);
    free(recs);
    struct deliver_stats ds = deliver(); /* properties first: the faults hit the upsert */
    ck_assert_int_eq(ds.ok, 3);
    row("od:main-st:1", "remote_id", id, sizeof(id));

    static const struct {
        const char *fault, *detail_prefix;
    } cases[] = {
        {"{\"fail_next\": 1, \"fail_status\": 502}", "HTTP 502"},
        {"{\"fail_next\": 1, \"fail_status\": 500}", "HTTP 500 INTERNAL_ERROR"},
        {"{\"truncate_next\": 1}", "HTTP 200: response is not a JSON object"},
        {"{\"reset_next\": 2}", "transport error: "},
    };
    for (size_t c = 0; c < UTIL_ARRAY_LEN(cases); c++) {
        char date[16];
        snprintf(date, sizeof(date), "2026-08-%02d", (int)c + 1);
        recs = contacts(1, 3, date); /* a new version of the same three */
        import(recs);
        free(recs);
        faults(cases[c].fault);
        ds = deliver();
        ck_assert_msg(ds.retried == 3, "case %zu: retried %lld", c, (long long)ds.retried);
        ck_assert_int_eq(row_int("od:main-st:2", "last_class"), ODSYNC_RETRY);
        row("od:main-st:2", "last_detail", buf, sizeof(buf));
        ck_assert_msg(strncmp(buf, cases[c].detail_prefix, strlen(cases[c].detail_prefix)) == 0,
                      "case %zu: %s", c, buf);
        ck_assert_int_eq(row_int("od:main-st:2", "attempts"), 1);
        /* A reset may also take libcurl's own resend on a fresh connection: a pass more. */
        for (int pass = 0; pass < 3 && row_int("od:main-st:2", "last_class") != ODSYNC_OK; pass++) {
            nap();
            deliver();
        }
        ck_assert_msg(row_int("od:main-st:2", "last_class") == ODSYNC_OK, "case %zu", c);
        ck_assert_str_eq(row("od:main-st:2", "state", buf, sizeof(buf)), "done");
        ck_assert_str_eq(row("od:main-st:1", "remote_id", buf, sizeof(buf)), id);
        ck_assert_int_eq(state_num("objects", "contacts", NULL), 3);
        cJSON *o = object("contacts", id);
        ck_assert_str_eq(prop(o, "odsync_recall_due"), date);
        cJSON_Delete(o);
    }
    ck_assert_int_eq(state_num("requests", "truncated", NULL), 1);
    ck_assert_int_ge(state_num("requests", "resets", NULL), 1);
}
END_TEST

START_TEST(task_waits_for_its_contact)
{
    char buf[256], cid[32], tid[32];
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    /* A task whose contact is in no system yet: RETRY, saying so. */
    char *t = task(77, 500, "2026-06-01T14:00:00Z", "open");
    char json[2048];
    snprintf(json, sizeof(json), "[%s]", t);
    free(t);
    import(json);
    clock_ms = util_now_ms(); /* fixed: the task's retry is not due before the restart */
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.retried, 1);
    ck_assert_str_eq(row("od:main-st:recall:77", "last_detail", buf, sizeof(buf)),
                     "contact od:main-st:500 is not in HubSpot yet: the task waits for it");
    ck_assert_int_eq(requests(R_READ, "207"), 1); /* looked up once, not found */
    ck_assert_int_eq(requests(R_CREATE, "total"), 0);

    /* The contact arrives, through a restarted odsync (its id cache is empty). */
    char *c = contact(500, "p500@example.com", "2026-06-01");
    snprintf(json, sizeof(json), "[%s]", c);
    free(c);
    import(json);
    ck_assert_int_eq(deliver().ok, 1);
    row("od:main-st:500", "remote_id", cid, sizeof(cid));
    ck_assert_int_eq(requests(R_CREATE, "total"), 0);
    open_rt("\"create_properties\": true");
    clock_ms += 1000;
    ds = deliver();
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(requests(R_READ, "200"), 1); /* one batch read by idProperty */
    ck_assert_int_eq(requests(R_CREATE, "201"), 1);
    row("od:main-st:recall:77", "remote_id", tid, sizeof(tid));
    cJSON *tk = object("tasks", tid);
    const cJSON *as = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tk, "associations"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(as, "to")), cid);
    cJSON_Delete(tk);
}
END_TEST

START_TEST(request_counts)
{
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    /* 250 contacts and a recall task each: the contacts first (ceil(250/100) = 3 upserts),
     * then the tasks (3 batch creates), the contact ids taken from the upserts. */
    struct sbuf b = {0};
    char *recs = contacts(1, 250, "2026-06-01");
    ck_assert_int_eq(sbuf_append(&b, recs, strlen(recs) - 1), ODSYNC_OK);
    free(recs);
    for (int i = 1; i <= 250; i++) {
        char *t = task(1000 + i, i, "2026-06-01T14:00:00Z", "open");
        ck_assert_int_eq(sbuf_printf(&b, ",%s", t), ODSYNC_OK);
        free(t);
    }
    ck_assert_int_eq(sbuf_puts(&b, "]"), ODSYNC_OK);
    char *all = sbuf_take(&b);
    struct import_stats is = import(all);
    ck_assert_int_eq(is.queued, 500);
    int64_t before = total_requests();
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 500);
    ck_assert_int_eq(requests(R_UPSERT, "200"), 3);
    ck_assert_int_eq(requests(R_CREATE, "201"), 3);
    ck_assert_int_eq(requests(R_READ, "total"), 0);
    ck_assert_int_eq(total_requests() - before, 30 + 6); /* 30: the property set-up */
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 250);
    ck_assert_int_eq(state_num("objects", "tasks", NULL), 250);
    ck_assert_int_eq(state_num("associations", NULL, NULL), 250);

    /* An unchanged re-delivery: nothing queued, no request. */
    is = import(all);
    ck_assert_int_eq(is.unchanged, 500);
    ck_assert_int_eq(is.queued, 0);
    before = total_requests();
    ds = deliver();
    ck_assert_int_eq(ds.batches, 0);
    ck_assert_int_eq(total_requests(), before);
    free(all);
}
END_TEST

START_TEST(pacing_stays_under_the_window)
{
    /* 3 requests per second at the fake; one contact per request: the plugin waits for the
     * rolling window instead of running into 429s. */
    fake_start(NULL);
    open_rt("\"create_properties\": true, \"batch_size\": 1");
    char *recs = contacts(1, 1, "2026-06-01");
    import(recs);
    free(recs);
    deliver(); /* the property set-up, under the default limits */
    faults("{\"ten_secondly_max\": 3, \"interval_ms\": 1000}");
    struct timespec ts = {1, 100 * 1000000L}; /* let the set-up leave the 1 s window */
    nanosleep(&ts, NULL);
    recs = contacts(2, 7, "2026-06-01");
    import(recs);
    free(recs);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 7);
    ck_assert_int_eq(requests(R_UPSERT, "429"), 0);
    ck_assert_int_eq(requests(R_UPSERT, "200"), 8);
    ck_assert_int_ge(host_sink_counter(sink(), "pace_waits"), 2);
}
END_TEST

START_TEST(shared_family_email)
{
    /* Two patients share one address; HubSpot keeps an email on one contact only. The first
     * gets it as "email", the second carries it in odsync_email alone: no conflict, one
     * request. After a restart the instance has forgotten who holds it: the second's next
     * version claims it, HubSpot answers 207 CONFLICT, and it is resent once without. */
    char buf[64], id[32], json[4096];
    fake_start(NULL);
    open_rt("\"create_properties\": true");
    char *a = contact(1, "family@example.com", "2026-06-01");
    char *c = contact(2, "family@example.com", "2026-06-01");
    snprintf(json, sizeof(json), "[%s,%s]", a, c);
    free(a);
    free(c);
    import(json);
    struct deliver_stats ds = deliver();
    ck_assert_int_eq(ds.ok, 2);
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 2);
    ck_assert_int_eq(requests(R_UPSERT, "200"), 1);
    ck_assert_int_eq(requests(R_UPSERT, "207"), 0);
    row("od:main-st:2", "remote_id", id, sizeof(id));
    cJSON *o = object("contacts", id);
    ck_assert_ptr_null(prop(o, "email"));
    ck_assert_str_eq(prop(o, "odsync_email"), "family@example.com");
    cJSON_Delete(o);
    row("od:main-st:1", "remote_id", id, sizeof(id));
    o = object("contacts", id);
    ck_assert_str_eq(prop(o, "email"), "family@example.com");
    cJSON_Delete(o);

    open_rt("\"create_properties\": true"); /* a restart */
    c = contact(2, "family@example.com", "2026-07-01");
    snprintf(json, sizeof(json), "[%s]", c);
    free(c);
    import(json);
    ds = deliver();
    ck_assert_int_eq(ds.ok, 1);
    ck_assert_int_eq(requests(R_UPSERT, "207"), 1);
    ck_assert_int_eq(host_sink_counter(sink(), "email_conflicts"), 1);
    ck_assert_int_eq(state_num("objects", "contacts", NULL), 2);
    ck_assert_str_eq(row("od:main-st:2", "state", buf, sizeof(buf)), "done");
}
END_TEST

START_TEST(bad_settings_refused)
{
    char err[512];
    struct plugin *p = NULL;
    char *so = tu_build_path("plugins/hubspot.so");
    ck_assert_msg(plugin_open(so, &p, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    free(so);
    static const struct {
        const char *settings, *want;
    } cases[] = {
        {"{\"token\": \"literal\"}", "sinks.crm.token"},
        {"{\"token\": \"${HT_HUBSPOT_TOKEN}\", \"id_property\": \"Odsync Key\"}",
         "id_property: expected a HubSpot property name"},
        {"{\"token\": \"${HT_HUBSPOT_TOKEN}\", \"account_timezone\": \"America/Chicgo\"}",
         "account_timezone: unknown time zone \"America/Chicgo\""},
        {"{\"token\": \"${HT_HUBSPOT_TOKEN}\", \"batch_size\": 101}",
         "batch_size: expected an integer from 1 to 100"},
        {"{\"token\": \"${HT_HUBSPOT_TOKEN}\", \"task_owner_id\": \"bob\"}", "task_owner_id"},
        {"{\"token\": \"${HT_HUBSPOT_TOKEN}\", \"base_url\": \"http://x/?a=1\"}", "base_url"},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct host_sink *s = NULL;
        cJSON *settings = cJSON_Parse(cases[i].settings);
        err[0] = '\0';
        ck_assert_int_ne(host_sink_create(p, "crm", settings, "sinks.crm", &s, err, sizeof(err)),
                         ODSYNC_OK);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: %s", i, err);
        ck_assert_ptr_null(strstr(err, TOKEN));
        cJSON_Delete(settings);
    }
    /* A POSIX rule is a zone too. */
    struct host_sink *s = NULL;
    cJSON *settings = cJSON_Parse("{\"token\": \"${HT_HUBSPOT_TOKEN}\","
                                  " \"account_timezone\": \"CST6CDT,M3.2.0,M11.1.0\"}");
    ck_assert_msg(host_sink_create(p, "crm", settings, "sinks.crm", &s, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    host_sink_destroy(s);
    cJSON_Delete(settings);
    plugin_close(p);
}
END_TEST

static Suite *hubspot_suite(void)
{
    Suite *s = suite_create("plugin_hubspot");
    TCase *tc = tcase_create("hubspot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, descriptor_and_setup);
    tcase_add_test(tc, properties_created_once_then_contacts);
    tcase_add_test(tc, without_properties_the_upsert_is_refused);
    tcase_add_test(tc, update_in_place);
    tcase_add_test(tc, partial_failure_dead_letters_one);
    tcase_add_test(tc, rate_limited_ten_secondly);
    tcase_add_test(tc, daily_limit_pauses_until_midnight);
    tcase_add_test(tc, daily_remaining_zero_stops_before_the_429);
    tcase_add_test(tc, token_expiry_pauses_auth_then_resumes);
    tcase_add_test(tc, garbage_answers_are_retried);
    tcase_add_test(tc, task_waits_for_its_contact);
    tcase_add_test(tc, request_counts);
    tcase_add_test(tc, pacing_stays_under_the_window);
    tcase_add_test(tc, shared_family_email);
    tcase_add_test(tc, bad_settings_refused);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(hubspot_suite)
