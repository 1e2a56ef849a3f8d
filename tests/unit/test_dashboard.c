/*
 * test_dashboard: the dashboard, its JSON, /metrics and the probes over real HTTP on loopback
 * (the daemon's own http_server with the dashboard handler, spoken to by a raw socket client
 * so every header is seen) and a real SQLite store filled through the real APIs — records,
 * outbox (claims, completions, dead letters), sink pauses, the send ledger and the consent
 * ledger. What ingestion alone writes (the office's Open Dental state, the last API event,
 * the last completed pass) is written as a pass leaves it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "consent.h"
#include "dashboard.h"
#include "http_server.h"
#include "ledger.h"
#include "log.h"
#include "outbox.h"
#include "policy.h"
#include "records.h"
#include "sink_state.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

#define TOKEN  "dash-admin-token-7Qx2"
#define OFFICE "main-st"

static char *dir;
static char db_path[600];
static struct config *cfg;
static struct dashboard *dash;
static struct http_server *srv;
static struct store *st;
static FILE *devnull;
static int port;
static int64_t dead_ids[2]; /* the two dead letters made by fill() */

/* ---- fixture -------------------------------------------------------------------------- */

static void start(int with_token)
{
    char text[4096], err[512], *file;
    struct http_server_options o = {"127.0.0.1:0", 1 << 20, NULL, NULL, 2};
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    setenv("T_ADMIN", TOKEN, 1);
    setenv("T_OD_DEV", "dev-key", 1);
    setenv("T_OD_CUST", "cust-key", 1);
    setenv("T_CRM", "crm-token", 1);
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s\"], %s"
             " \"sinks\": {\"crm\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:9\","
             "   \"token\": \"${T_CRM}\"}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main Street Dental\","
             "   \"timezone\": \"America/Chicago\", \"opendental\": {\"base_url\":"
             "   \"http://127.0.0.1:9/api/v1\", \"tier\": \"paid\", \"developer_key\":"
             "   \"${T_OD_DEV}\", \"customer_key\": \"${T_OD_CUST}\"},"
             "   \"routes\": {\"contact\": [\"crm\"], \"task\": [\"crm\"]}}]}",
             dir, dir, with_token ? "\"admin_token\": \"${T_ADMIN}\"," : "");
    file = tu_write_file(dir, "odsync.json", text);
    ck_assert_msg(config_load(file, &cfg, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    free(file);
    snprintf(db_path, sizeof(db_path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(db_path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    ck_assert_msg(dashboard_create(cfg, db_path, &dash, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    ck_assert_msg(http_server_start(&o, dashboard_http_handler, dash, &srv, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    port = http_server_port(srv);
}

static void setup(void)
{
    start(1);
}

static void setup_no_token(void)
{
    start(0);
}

static void teardown(void)
{
    http_server_stop(srv);
    dashboard_destroy(dash);
    store_close(st);
    config_free(cfg);
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* ---- filling the store through the real APIs ------------------------------------------ */

struct rec {
    const char *key;
    int kind;
    const char *body;
};

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
    int state; /* final state */
    const char *reason;
};

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
        e.due_at = now;
        e.created_at = now;
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

static void exec_sql(const char *sql)
{
    char *err = NULL;
    ck_assert_msg(sqlite3_exec(store_db(st), sql, NULL, NULL, &err) == SQLITE_OK, "%s", err);
}

/*
 * What the dashboard must show:
 *   records 9 (7 contacts, 2 tasks); outbox crm: 4 pending, 0 inflight, 3 done, 2 dead;
 *   crm paused (AUTH); messages today: 2 sent, 1 queued, 1 held, 1 skipped, 1 failed
 *   (the commlog does not count); recall funnel: due 2, reminded 2, scheduled 1, overdue 2;
 *   reactivation: 1 enrolled, 1 pending; review: 1 pending, 1 failed; 2 opt-outs;
 *   Open Dental offline; activity today: 2 messages sent, 3 records delivered.
 */
static void fill(void)
{
    static const struct rec recs[] = {
        {"od:main-st:1", 1,
         "{\"patnum\":1,\"first_name\":\"Ann\",\"email\":\"ann@example.com\","
         "\"phone_mobile\":\"+15552010001\",\"recall_stage\":\"due_soon\",\"reactivation\":false}"},
        {"od:main-st:2", 1,
         "{\"patnum\":2,\"first_name\":\"Bob\",\"phone_mobile\":\"+15552010002\","
         "\"recall_stage\":\"due\",\"reactivation\":false}"},
        {"od:main-st:3", 1,
         "{\"patnum\":3,\"first_name\":\"Cy\",\"recall_stage\":\"overdue_30\","
         "\"reactivation\":false}"},
        {"od:main-st:4", 1,
         "{\"patnum\":4,\"first_name\":\"Dee\",\"email\":\"dee@example.com\","
         "\"recall_stage\":\"overdue_90\",\"reactivation\":false}"},
        {"od:main-st:5", 1,
         "{\"patnum\":5,\"first_name\":\"Eve\",\"recall_stage\":\"scheduled\","
         "\"reactivation\":false}"},
        {"od:main-st:6", 1,
         "{\"patnum\":6,\"first_name\":\"Fay\",\"recall_stage\":null,\"reactivation\":true}"},
        {"od:main-st:7", 1,
         "{\"patnum\":7,\"first_name\":\"Gus\",\"recall_stage\":null,\"reactivation\":false}"},
        {"od:main-st:recall:101", 2, "{\"subject\":\"Recall due\",\"status\":\"open\"}"},
        {"od:main-st:recall:102", 2, "{\"subject\":\"Recall due\",\"status\":\"open\"}"},
        {NULL, 0, NULL}};
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
        {"od:main-st:commlog:1", 2, "commlog", "commlog", NULL, LEDGER_SENT, NULL},
        {NULL, 0, NULL, NULL, NULL, 0, NULL}};
    struct outbox_item *items = NULL;
    size_t n = 0, i;
    char sql[512];
    int64_t now = util_now_ms();

    ck_assert_int_eq(store_tx(st, records_tx, (void *)recs), ODSYNC_OK);
    /* 5 of the 9 rows go out: 3 delivered, 2 refused for good */
    ck_assert_int_eq(outbox_claim(st, "crm", now, 5, &items, &n), ODSYNC_OK);
    ck_assert_uint_eq(n, 5);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(outbox_complete(st, &items[i], "remote-1"), ODSYNC_OK);
    ck_assert_int_eq(
        outbox_dead(st, &items[3], ODSYNC_PERMANENT, "HTTP 400: email ann@example.com is invalid"),
        ODSYNC_OK);
    ck_assert_int_eq(
        outbox_dead(st, &items[4], ODSYNC_PERMANENT, "HTTP 422: phone +1 (555) 000-0002 rejected"),
        ODSYNC_OK);
    dead_ids[0] = items[3].id;
    dead_ids[1] = items[4].id;
    outbox_items_free(items, n);
    ck_assert_int_eq(
        sink_state_pause(st, "crm", SINK_PAUSED_INDEFINITELY, ODSYNC_AUTH, "HTTP 401 from the CRM"),
        ODSYNC_OK);
    ck_assert_int_eq(store_tx(st, messages_tx, (void *)msgs), ODSYNC_OK);
    ck_assert_int_eq(store_tx(st, consent_tx, NULL), ODSYNC_OK);
    /* what an ingestion pass and the events receiver leave */
    snprintf(sql, sizeof(sql),
             "INSERT INTO od_office_state (office, state, detail, since, updated_at)"
             " VALUES ('main-st', 'offline', 'the eConnector is not answering', %lld, %lld);"
             "INSERT INTO od_event_state (office, watch_table, last_event_at, batches, rows)"
             " VALUES ('main-st', 'Patient', %lld, 1, 1);"
             "INSERT INTO od_checkpoints (office, resource, phase, completed_at, updated_at)"
             " VALUES ('main-st', 'patients', 'incremental', %lld, %lld);",
             (long long)(now - 60000), (long long)now, (long long)(now - 30000),
             (long long)(now - 120000), (long long)now);
    exec_sql(sql);
}

/* ---- a raw HTTP client ---------------------------------------------------------------- */

struct resp {
    int status;
    char *head; /* status line and headers */
    char *body;
};

static void resp_free(struct resp *r)
{
    free(r->head);
    free(r->body);
}

/* One request on its own connection; h1, h2: whole header lines without CRLF, or NULL. */
static struct resp request(const char *method, const char *path, const char *h1, const char *h2)
{
    struct sockaddr_in a;
    struct resp r = {0, NULL, NULL};
    char req[2048], *buf = NULL, *sep;
    size_t len = 0, cap = 0;
    ssize_t got;
    int fd = socket(AF_INET, SOCK_STREAM, 0), n;

    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s%s%s"
                 "Content-Length: 0\r\n\r\n",
                 method, path, port, h1 ? h1 : "", h1 ? "\r\n" : "", h2 ? h2 : "",
                 h2 ? "\r\n" : "");
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        got = read(fd, buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    sep = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(sep);
    r.head = strndup(buf, (size_t)(sep - buf) + 2);
    r.body = strdup(sep + 4);
    ck_assert_int_eq(sscanf(buf, "HTTP/1.1 %d", &r.status), 1);
    free(buf);
    return r;
}

/* A response header's value (copied into out), or NULL. */
static const char *header(const struct resp *r, const char *name, char *out, size_t len)
{
    const char *p = r->head;
    size_t n = strlen(name);
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1, *end = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(out, len, "%.*s", (int)(end - v), v);
            return out;
        }
    }
    return NULL;
}

#define BEARER       "Authorization: Bearer " TOKEN
#define ACTION       "X-Odsync-Action: 1"
#define MAX_COOKIE   256
#define COOKIE_LINE  "Cookie: " DASHBOARD_COOKIE "="
#define LOCATION_MAX 64

/* Sign in with ?token= and return the "Cookie: ..." line to send back. */
static void sign_in(char *line, size_t len)
{
    struct resp r = request("GET", "/?token=" TOKEN, NULL, NULL);
    char set[MAX_COOKIE], *semi;
    ck_assert_int_eq(r.status, 303);
    ck_assert_ptr_nonnull(header(&r, "Set-Cookie", set, sizeof(set)));
    semi = strchr(set, ';');
    ck_assert_ptr_nonnull(semi);
    *semi = '\0';
    snprintf(line, len, "Cookie: %s", set);
    resp_free(&r);
}

/* GET /api/dashboard with Bearer, parsed. */
static cJSON *dashboard_json(void)
{
    struct resp r = request("GET", "/api/dashboard", BEARER, NULL);
    cJSON *j;
    ck_assert_int_eq(r.status, 200);
    j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    resp_free(&r);
    return j;
}

/* A number at a path of object names ("offices" arrays take their first element). */
static double num_at(const cJSON *j, const char *a, const char *b, const char *c)
{
    const char *names[3] = {a, b, c};
    size_t i;
    for (i = 0; i < 3 && names[i] != NULL; i++) {
        if (cJSON_IsArray(j))
            j = cJSON_GetArrayItem(j, 0);
        j = cJSON_GetObjectItemCaseSensitive(j, names[i]);
        ck_assert_msg(j != NULL, "no member %s", names[i]);
    }
    ck_assert_msg(cJSON_IsNumber(j), "%s.%s is not a number", a, b ? b : "");
    return j->valuedouble;
}

/* The state column of outbox row id ("" when gone). */
static void outbox_state(int64_t id, char *out, size_t len)
{
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(
        sqlite3_prepare_v2(store_db(st), "SELECT state FROM outbox WHERE id = ?", -1, &s, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(s, 1, id);
    snprintf(out, len, "%s",
             sqlite3_step(s) == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : "");
    sqlite3_finalize(s);
}

/* ---- access --------------------------------------------------------------------------- */

START_TEST(probes_need_no_token)
{
    struct resp r = request("GET", "/healthz", NULL, NULL);
    char moved[700];
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");
    resp_free(&r);
    r = request("GET", "/readyz", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    /* the store gone: not ready; back: ready */
    snprintf(moved, sizeof(moved), "%s.moved", db_path);
    ck_assert_int_eq(rename(db_path, moved), 0);
    r = request("GET", "/readyz", NULL, NULL);
    ck_assert_int_eq(r.status, 503);
    resp_free(&r);
    ck_assert_int_eq(rename(moved, db_path), 0);
    r = request("GET", "/readyz", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    r = request("POST", "/healthz", NULL, NULL);
    ck_assert_int_eq(r.status, 405);
    resp_free(&r);
}
END_TEST

START_TEST(token_required)
{
    static const char *const paths[] = {"/api/dashboard", "/metrics"};
    char v[256];
    size_t i;
    struct resp r;
    fill();
    for (i = 0; i < UTIL_ARRAY_LEN(paths); i++) {
        r = request("GET", paths[i], NULL, NULL);
        ck_assert_int_eq(r.status, 401);
        ck_assert_ptr_nonnull(header(&r, "WWW-Authenticate", v, sizeof(v)));
        ck_assert_ptr_null(strstr(r.body, "main-st"));
        resp_free(&r);
        r = request("GET", paths[i], "Authorization: Bearer wrong-token", NULL);
        ck_assert_int_eq(r.status, 403);
        ck_assert_ptr_null(strstr(r.body, "main-st"));
        resp_free(&r);
        r = request("GET", paths[i], "Authorization: Bearer " TOKEN "x", NULL);
        ck_assert_int_eq(r.status, 403);
        resp_free(&r);
        r = request("GET", paths[i], "Authorization: Basic " TOKEN, NULL);
        ck_assert_int_eq(r.status, 401);
        resp_free(&r);
        r = request("GET", paths[i], BEARER, NULL);
        ck_assert_int_eq(r.status, 200);
        ck_assert_ptr_null(strstr(r.body, TOKEN));
        resp_free(&r);
    }
    /* the page: a sign-in form, no data */
    r = request("GET", "/", NULL, NULL);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(header(&r, "Content-Type", v, sizeof(v)));
    ck_assert_str_eq(v, "text/html; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(r.body, "name=\"token\""));
    ck_assert_ptr_null(strstr(r.body, "/api/dashboard"));
    resp_free(&r);
    r = request("GET", "/", "Authorization: Bearer nope", NULL);
    ck_assert_int_eq(r.status, 403);
    resp_free(&r);
    r = request("GET", "/", BEARER, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "/api/dashboard"));
    resp_free(&r);
    /* actions too: nothing changes without the token */
    snprintf(v, sizeof(v), "/api/dlq/%lld/drop", (long long)dead_ids[0]);
    r = request("POST", v, NULL, NULL);
    ck_assert_int_eq(r.status, 401);
    resp_free(&r);
    r = request("POST", v, "Authorization: Bearer wrong", ACTION);
    ck_assert_int_eq(r.status, 403);
    resp_free(&r);
    outbox_state(dead_ids[0], v, sizeof(v));
    ck_assert_str_eq(v, "dead");
}
END_TEST

START_TEST(no_admin_token_means_disabled)
{
    static const char *const paths[] = {"/", "/api/dashboard", "/metrics", "/?token=anything"};
    size_t i;
    struct resp r;
    for (i = 0; i < UTIL_ARRAY_LEN(paths); i++) {
        r = request("GET", paths[i], "Authorization: Bearer anything", NULL);
        ck_assert_int_eq(r.status, 403);
        ck_assert_msg(strstr(r.body, "admin_token") != NULL, "%s: %s", paths[i], r.body);
        resp_free(&r);
    }
    r = request("POST", "/api/dlq/1/retry", ACTION, NULL);
    ck_assert_int_eq(r.status, 403);
    ck_assert_ptr_nonnull(strstr(r.body, "admin_token"));
    resp_free(&r);
    r = request("GET", "/healthz", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(cookie_flow)
{
    struct resp r;
    char set[MAX_COOKIE], v[512], line[MAX_COOKIE + 16], forged[MAX_COOKIE + 16], *dot;
    fill();
    /* a wrong token sets nothing */
    r = request("GET", "/?token=not-the-token", NULL, NULL);
    ck_assert_int_eq(r.status, 403);
    ck_assert_ptr_null(header(&r, "Set-Cookie", set, sizeof(set)));
    resp_free(&r);
    /* the right one: a cookie and a redirect that drops the token from the URL */
    r = request("GET", "/?token=" TOKEN, NULL, NULL);
    ck_assert_int_eq(r.status, 303);
    ck_assert_ptr_nonnull(header(&r, "Location", v, sizeof(v)));
    ck_assert_str_eq(v, "/");
    ck_assert_ptr_nonnull(header(&r, "Set-Cookie", set, sizeof(set)));
    ck_assert_msg(strncmp(set, DASHBOARD_COOKIE "=v1.", strlen(DASHBOARD_COOKIE) + 4) == 0, "%s",
                  set);
    ck_assert_ptr_nonnull(strstr(set, "; HttpOnly"));
    ck_assert_ptr_nonnull(strstr(set, "; SameSite=Strict"));
    ck_assert_ptr_nonnull(strstr(set, "; Path=/"));
    ck_assert_ptr_null(strstr(set, TOKEN));
    ck_assert_ptr_null(strstr(r.head, TOKEN));
    ck_assert_ptr_null(strstr(r.body, TOKEN));
    resp_free(&r);
    sign_in(line, sizeof(line));
    r = request("GET", "/", line, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(header(&r, "Content-Security-Policy", v, sizeof(v)));
    ck_assert_ptr_nonnull(strstr(v, "default-src 'none'"));
    ck_assert_ptr_nonnull(strstr(v, "script-src 'sha256-"));
    ck_assert_ptr_nonnull(header(&r, "X-Frame-Options", v, sizeof(v)));
    ck_assert_ptr_null(strstr(r.body, TOKEN));
    resp_free(&r);
    r = request("GET", "/api/dashboard", line, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    /* a forged cookie (the expiry moved, the MAC kept) is no session */
    snprintf(forged, sizeof(forged), "%s", line);
    dot = strstr(forged, "=v1.") + 4;
    *dot = *dot == '9' ? '8' : (char)(*dot + 1);
    r = request("GET", "/api/dashboard", forged, NULL);
    ck_assert_int_eq(r.status, 401);
    resp_free(&r);
    r = request("GET", "/api/dashboard", COOKIE_LINE "v1.99999999999.00", NULL);
    ck_assert_int_eq(r.status, 401);
    resp_free(&r);
    /* signing out clears it */
    r = request("POST", "/api/logout", line, ACTION);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(header(&r, "Set-Cookie", set, sizeof(set)));
    ck_assert_ptr_nonnull(strstr(set, "Max-Age=0"));
    resp_free(&r);
}
END_TEST

START_TEST(csrf_header_required_with_cookie)
{
    struct resp r;
    char line[MAX_COOKIE + 16], path[96], state[32];
    struct outbox_counts oc;
    fill();
    sign_in(line, sizeof(line));
    snprintf(path, sizeof(path), "/api/dlq/%lld/retry", (long long)dead_ids[0]);
    r = request("POST", path, line, NULL);
    ck_assert_int_eq(r.status, 403);
    ck_assert_ptr_nonnull(strstr(r.body, "X-Odsync-Action"));
    resp_free(&r);
    r = request("POST", path, line, "X-Odsync-Action: yes");
    ck_assert_int_eq(r.status, 403);
    resp_free(&r);
    outbox_state(dead_ids[0], state, sizeof(state));
    ck_assert_str_eq(state, "dead");
    r = request("POST", path, line, ACTION);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    outbox_state(dead_ids[0], state, sizeof(state));
    ck_assert_str_eq(state, "pending");
    /* with the Bearer header (no ambient credential) the action header is not needed */
    snprintf(path, sizeof(path), "/api/dlq/%lld/drop", (long long)dead_ids[1]);
    r = request("POST", path, BEARER, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    ck_assert_int_eq(outbox_count(st, "crm", &oc), ODSYNC_OK);
    ck_assert_int_eq(oc.dead, 0);
}
END_TEST

/* ---- the numbers ---------------------------------------------------------------------- */

START_TEST(json_matches_the_store)
{
    cJSON *j, *o, *sink, *dl, *errs, *e, *act;
    struct outbox_counts oc;
    struct ledger_counts lc;
    struct resp r;
    char *text;
    int found_sink = 0, found_failed = 0, found_office = 0, n;
    fill();
    j = dashboard_json();
    ck_assert_int_eq((int)num_at(j, "records", "total", NULL), 9);
    ck_assert_int_eq((int)num_at(j, "records", "contacts", NULL), 7);
    ck_assert_int_eq((int)num_at(j, "records", "tasks", NULL), 2);
    /* the sink, against outbox_count */
    ck_assert_int_eq(outbox_count(st, "crm", &oc), ODSYNC_OK);
    ck_assert_int_eq(oc.pending, 4);
    ck_assert_int_eq(oc.done, 3);
    ck_assert_int_eq(oc.dead, 2);
    sink = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "sinks"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(sink, "name")->valuestring, "crm");
    ck_assert_str_eq(cJSON_GetObjectItem(sink, "plugin")->valuestring, "rest");
    ck_assert_int_eq((int)num_at(sink, "pending", NULL, NULL), (int)oc.pending);
    ck_assert_int_eq((int)num_at(sink, "inflight", NULL, NULL), (int)oc.inflight);
    ck_assert_int_eq((int)num_at(sink, "done", NULL, NULL), (int)oc.done);
    ck_assert_int_eq((int)num_at(sink, "dead", NULL, NULL), (int)oc.dead);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(sink, "paused")));
    ck_assert_str_eq(cJSON_GetObjectItem(sink, "pause_class")->valuestring, "AUTH");
    ck_assert_int_eq((int)num_at(sink, "paused_until_ms", NULL, NULL), -1);
    /* the office */
    o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "offices"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "id")->valuestring, OFFICE);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "tier")->valuestring, "paid");
    ck_assert_int_eq((int)num_at(o, "min_interval_ms", NULL, NULL), 1000);
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o, "opendental"), "state")->valuestring, "offline");
    ck_assert_int_gt(num_at(o, "last_event_ms", NULL, NULL), 0);
    ck_assert_int_gt(num_at(o, "last_reconcile_ms", NULL, NULL), 0);
    ck_assert(num_at(o, "lag_seconds", NULL, NULL) >= 29 &&
              num_at(o, "lag_seconds", NULL, NULL) < 90);
    ck_assert_int_eq(ledger_counts(st, OFFICE,
                                   policy_local_day_start(cfg->offices[0].engage, util_now_ms(), 0),
                                   &lc),
                     ODSYNC_OK);
    ck_assert_int_eq(lc.by_state[LEDGER_SENT], 2);
    ck_assert_int_eq((int)num_at(o, "messages_today", "sent", NULL), 2);
    ck_assert_int_eq((int)num_at(o, "messages_today", "queued", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "messages_today", "held", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "messages_today", "skipped", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "messages_today", "failed", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "messages_today", "held", NULL), (int)lc.by_state[LEDGER_HELD]);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "reasons_today")), 3);
    ck_assert_int_eq((int)num_at(o, "recall_funnel", "due", NULL), 2);
    ck_assert_int_eq((int)num_at(o, "recall_funnel", "reminded", NULL), 2);
    ck_assert_int_eq((int)num_at(o, "recall_funnel", "scheduled", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "recall_funnel", "overdue", NULL), 2);
    ck_assert_int_eq((int)num_at(o, "reactivation", "enrolled", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "reactivation", "pending", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "review", "pending", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "review", "failed", NULL), 1);
    ck_assert_int_eq((int)num_at(o, "opt_outs", NULL, NULL), 2);
    /* dead letters, newest first, details scrubbed */
    ck_assert_int_eq((int)num_at(j, "dead_letters_total", NULL, NULL), 2);
    dl = cJSON_GetObjectItem(j, "dead_letters");
    ck_assert_int_eq(cJSON_GetArraySize(dl), 2);
    ck_assert_int_eq((int64_t)num_at(cJSON_GetArrayItem(dl, 0), "id", NULL, NULL), dead_ids[1]);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(dl, 1), "detail")->valuestring,
                     "HTTP 400: email [redacted] is invalid");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(dl, 0), "detail")->valuestring,
                     "HTTP 422: phone [redacted] rejected");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(dl, 0), "class")->valuestring,
                     "PERMANENT");
    /* recent errors: the paused sink, the office, the failed message */
    errs = cJSON_GetObjectItem(j, "errors");
    cJSON_ArrayForEach(e, errs)
    {
        const char *src = cJSON_GetObjectItem(e, "source")->valuestring;
        const char *subj = cJSON_GetObjectItem(e, "subject")->valuestring;
        found_sink += strcmp(src, "sink") == 0 && strcmp(subj, "crm") == 0;
        found_office += strcmp(src, "office") == 0 && strcmp(subj, OFFICE) == 0;
        found_failed +=
            strcmp(src, "message") == 0 && strcmp(subj, "od:main-st:apt:78:review") == 0;
    }
    ck_assert_int_eq(found_sink + found_office + found_failed, 3);
    /* activity: today is the last bucket */
    act = cJSON_GetObjectItem(j, "activity");
    n = cJSON_GetArraySize(cJSON_GetObjectItem(act, "days"));
    ck_assert_int_eq(n, 14);
    ck_assert_int_eq(
        (int)cJSON_GetArrayItem(cJSON_GetObjectItem(act, "messages_sent"), n - 1)->valuedouble, 2);
    ck_assert_int_eq(
        (int)cJSON_GetArrayItem(cJSON_GetObjectItem(act, "records_delivered"), n - 1)->valuedouble,
        3);
    ck_assert_int_eq(
        (int)cJSON_GetArrayItem(cJSON_GetObjectItem(act, "messages_sent"), 0)->valuedouble, 0);
    cJSON_Delete(j);
    /* never patient data beyond opaque keys, never the token */
    r = request("GET", "/api/dashboard", BEARER, NULL);
    text = r.body;
    ck_assert_ptr_null(strstr(text, TOKEN));
    ck_assert_ptr_null(strstr(text, "example.com"));
    ck_assert_ptr_null(strstr(text, "+1555"));
    ck_assert_ptr_null(strstr(text, "000-0002"));
    ck_assert_ptr_null(strstr(text, "Ann"));
    ck_assert_ptr_null(strstr(text, "Bob"));
    resp_free(&r);
}
END_TEST

START_TEST(dead_letter_retry_and_drop)
{
    struct resp r;
    char path[96], state[32];
    struct outbox_counts oc;
    cJSON *j;
    fill();
    snprintf(path, sizeof(path), "/api/dlq/%lld/retry", (long long)dead_ids[0]);
    r = request("POST", path, BEARER, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"requeued\":true"));
    resp_free(&r);
    outbox_state(dead_ids[0], state, sizeof(state));
    ck_assert_str_eq(state, "pending");
    r = request("POST", path, BEARER, NULL); /* no longer a dead letter */
    ck_assert_int_eq(r.status, 404);
    resp_free(&r);
    snprintf(path, sizeof(path), "/api/dlq/%lld/drop", (long long)dead_ids[1]);
    r = request("POST", path, BEARER, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    outbox_state(dead_ids[1], state, sizeof(state));
    ck_assert_str_eq(state, "");
    ck_assert_int_eq(outbox_count(st, "crm", &oc), ODSYNC_OK);
    ck_assert_int_eq(oc.dead, 0);
    ck_assert_int_eq(oc.pending, 5);
    j = dashboard_json();
    ck_assert_int_eq((int)num_at(j, "dead_letters_total", NULL, NULL), 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "dead_letters")), 0);
    ck_assert_int_eq((int)num_at(cJSON_GetObjectItem(j, "sinks"), "pending", NULL, NULL), 5);
    cJSON_Delete(j);
    /* bad requests */
    r = request("POST", "/api/dlq/999999/drop", BEARER, NULL);
    ck_assert_int_eq(r.status, 404);
    resp_free(&r);
    r = request("POST", "/api/dlq/abc/retry", BEARER, NULL);
    ck_assert_int_eq(r.status, 404);
    resp_free(&r);
    r = request("POST", "/api/dlq/1/explode", BEARER, NULL);
    ck_assert_int_eq(r.status, 404);
    resp_free(&r);
    r = request("GET", "/api/dlq/1/retry", BEARER, NULL);
    ck_assert_int_eq(r.status, 405);
    resp_free(&r);
    r = request("POST", "/api/dashboard", BEARER, NULL);
    ck_assert_int_eq(r.status, 405);
    resp_free(&r);
}
END_TEST

/* ---- Prometheus text format 0.0.4, checked strictly ----------------------------------- */

static int metric_name_ok(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return 0;
    for (i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

static int label_name_ok(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return strncmp(s, "__", 2) != 0;
}

#define MAX_FAMILIES 64
#define MAX_SERIES   1024

struct prom {
    char fam[MAX_FAMILIES][96];
    int help[MAX_FAMILIES], type[MAX_FAMILIES], sampled[MAX_FAMILIES];
    int n_fam, current; /* the family whose samples are being read, or -1 */
    char *series[MAX_SERIES];
    int n_series, samples;
};

static int prom_family(struct prom *p, const char *name, size_t n)
{
    int i;
    for (i = 0; i < p->n_fam; i++)
        if (strlen(p->fam[i]) == n && strncmp(p->fam[i], name, n) == 0)
            return i;
    ck_assert_int_lt(p->n_fam, MAX_FAMILIES);
    snprintf(p->fam[p->n_fam], sizeof(p->fam[0]), "%.*s", (int)n, name);
    return p->n_fam++;
}

/* Check one sample line; NULL when good, else why. */
static const char *prom_sample(struct prom *p, const char *line)
{
    const char *s = line, *name = s, *end;
    char *num_end;
    size_t n;
    int f, i;
    while (*s && *s != '{' && *s != ' ')
        s++;
    n = (size_t)(s - name);
    if (!metric_name_ok(name, n))
        return "bad metric name";
    f = prom_family(p, name, n);
    if (!p->help[f] || !p->type[f])
        return "sample before its HELP and TYPE";
    if (p->sampled[f] && p->current != f)
        return "family's samples are not contiguous";
    p->sampled[f] = 1;
    p->current = f;
    if (*s == '{') {
        s++;
        for (;;) {
            const char *ln = s;
            while (*s && *s != '=')
                s++;
            if (!label_name_ok(ln, (size_t)(s - ln)) || s[0] != '=' || s[1] != '"')
                return "bad label";
            s += 2;
            while (*s && *s != '"') {
                if (*s == '\\') {
                    if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                        return "bad escape in a label value";
                    s++;
                }
                if (*s == '\n')
                    return "raw newline in a label value";
                s++;
            }
            if (*s != '"')
                return "unterminated label value";
            s++;
            if (*s == '}')
                break;
            if (*s != ',')
                return "labels not separated by ','";
            s++;
        }
        s++;
    }
    end = s;
    if (*s != ' ')
        return "no space before the value";
    s++;
    if (strcmp(s, "NaN") != 0 && strcmp(s, "+Inf") != 0 && strcmp(s, "-Inf") != 0) {
        errno = 0;
        (void)strtod(s, &num_end);
        if (num_end == s || *num_end != '\0' || errno != 0)
            return "bad value";
    }
    for (i = 0; i < p->n_series; i++)
        if (strlen(p->series[i]) == (size_t)(end - line) &&
            strncmp(p->series[i], line, (size_t)(end - line)) == 0)
            return "duplicate series";
    ck_assert_int_lt(p->n_series, MAX_SERIES);
    p->series[p->n_series++] = strndup(line, (size_t)(end - line));
    p->samples++;
    return NULL;
}

/* Check a whole exposition; NULL when good, else the first problem (static buffer). */
static const char *prom_check(const char *text, struct prom *p)
{
    static char why[2200];
    const char *line = text, *nl;
    char buf[2048];
    int lineno = 0;
    memset(p, 0, sizeof(*p));
    p->current = -1;
    if (*text == '\0' || text[strlen(text) - 1] != '\n')
        return "the exposition must end with a newline";
    for (; *line; line = nl + 1) {
        const char *bad = NULL;
        nl = strchr(line, '\n');
        lineno++;
        snprintf(buf, sizeof(buf), "%.*s", (int)(nl - line), line);
        if (buf[0] == '\0') {
            bad = "empty line";
        } else if (strncmp(buf, "# HELP ", 7) == 0 || strncmp(buf, "# TYPE ", 7) == 0) {
            const char *name = buf + 7, *sp = strchr(name, ' ');
            int f;
            if (sp == NULL || !metric_name_ok(name, (size_t)(sp - name))) {
                bad = "bad name in HELP/TYPE";
            } else {
                f = prom_family(p, name, (size_t)(sp - name));
                if (p->sampled[f])
                    bad = "HELP/TYPE after the family's samples";
                else if (buf[2] == 'H' && p->help[f]++)
                    bad = "second HELP";
                else if (buf[2] == 'T' && p->type[f]++)
                    bad = "second TYPE";
                else if (buf[2] == 'T' && strcmp(sp + 1, "gauge") != 0 &&
                         strcmp(sp + 1, "counter") != 0 && strcmp(sp + 1, "untyped") != 0 &&
                         strcmp(sp + 1, "histogram") != 0 && strcmp(sp + 1, "summary") != 0)
                    bad = "unknown TYPE";
                else if (buf[2] == 'H' && sp[1] == '\0')
                    bad = "empty HELP";
                p->current = -1;
            }
        } else if (buf[0] == '#') {
            continue; /* a comment */
        } else {
            bad = prom_sample(p, buf);
        }
        if (bad != NULL) {
            snprintf(why, sizeof(why), "line %d: %s: %s", lineno, bad, buf);
            return why;
        }
    }
    return NULL;
}

static void prom_free(struct prom *p)
{
    int i;
    for (i = 0; i < p->n_series; i++)
        free(p->series[i]);
}

/* The value of series (name{labels} exactly as written), or -1 when absent. */
static double prom_value(const char *text, const char *series)
{
    const char *p = text;
    size_t n = strlen(series);
    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return -1;
}

START_TEST(metrics_are_valid_prometheus_text)
{
    struct resp r;
    struct prom p;
    const char *why;
    char v[128];
    fill();
    r = request("GET", "/metrics", BEARER, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(header(&r, "Content-Type", v, sizeof(v)));
    ck_assert_str_eq(v, "text/plain; version=0.0.4; charset=utf-8");
    why = prom_check(r.body, &p);
    ck_assert_msg(why == NULL, "%s", why);
    ck_assert_int_gt(p.samples, 30);
    prom_free(&p);
    ck_assert_int_eq(prom_value(r.body, "odsync_outbox_rows{sink=\"crm\",state=\"pending\"}"), 4);
    ck_assert_int_eq(prom_value(r.body, "odsync_outbox_rows{sink=\"crm\",state=\"done\"}"), 3);
    ck_assert_int_eq(prom_value(r.body, "odsync_outbox_rows{sink=\"crm\",state=\"dead\"}"), 2);
    ck_assert_int_eq(prom_value(r.body, "odsync_dead_letters{sink=\"crm\"}"), 2);
    ck_assert_int_eq(prom_value(r.body, "odsync_sink_paused{sink=\"crm\",class=\"AUTH\"}"), 1);
    ck_assert_int_eq(prom_value(r.body, "odsync_remote_results{sink=\"crm\",class=\"OK\"}"), 3);
    ck_assert_int_eq(prom_value(r.body, "odsync_remote_results{sink=\"crm\",class=\"PERMANENT\"}"),
                     2);
    ck_assert_int_eq(
        prom_value(r.body, "odsync_opendental_state{office=\"main-st\",state=\"offline\"}"), 1);
    ck_assert_int_eq(prom_value(r.body, "odsync_opendental_state{office=\"main-st\",state=\"ok\"}"),
                     0);
    ck_assert(prom_value(r.body, "odsync_office_lag_seconds{office=\"main-st\"}") >= 29);
    ck_assert_int_eq(prom_value(r.body, "odsync_messages{office=\"main-st\",campaign=\"recall\","
                                        "channel=\"sms\",state=\"sent\"}"),
                     2);
    ck_assert_int_eq(prom_value(r.body, "odsync_messages{office=\"main-st\",campaign=\"review\","
                                        "channel=\"sms\",state=\"failed\"}"),
                     1);
    ck_assert_int_eq(prom_value(r.body, "odsync_opt_outs{office=\"main-st\",channel=\"sms\","
                                        "source=\"twilio\"}"),
                     1);
    ck_assert_int_eq(prom_value(r.body, "odsync_opt_outs{office=\"main-st\",channel=\"email\","
                                        "source=\"sendgrid\"}"),
                     1);
    ck_assert_int_eq(prom_value(r.body, "odsync_records{office=\"main-st\",kind=\"contact\"}"), 7);
    ck_assert_int_eq(prom_value(r.body, "odsync_events_inbox_batches"), 0);
    ck_assert_ptr_null(strstr(r.body, TOKEN));
    ck_assert_ptr_null(strstr(r.body, "example.com"));
    resp_free(&r);
}
END_TEST

/* The checker itself refuses what Prometheus would. */
START_TEST(metrics_checker_is_strict)
{
    static const char *const bad[] = {
        "x 1\n",                                                    /* no HELP/TYPE */
        "# HELP x h\n# TYPE x gauge\nx{a=\"1\"} one\n",             /* bad value */
        "# HELP x h\n# TYPE x gauge\n9x 1\n",                       /* bad name */
        "# HELP x h\n# TYPE x gauge\nx{a=1} 1\n",                   /* unquoted label */
        "# HELP x h\n# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n", /* duplicate */
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\ny 1\nx 2\n",
        "# HELP x h\n# TYPE x gauge\nx 1", /* no final newline */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\q\"} 1\n"};
    struct prom p;
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        ck_assert_msg(prom_check(bad[i], &p) != NULL, "accepted: %s", bad[i]);
        prom_free(&p);
    }
    ck_assert_ptr_null(prom_check("# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\"} 1\nx 2\n", &p));
    prom_free(&p);
}
END_TEST

START_TEST(page_is_self_contained)
{
    struct resp r = request("GET", "/", BEARER, NULL);
    ck_assert_int_eq(r.status, 200);
    /* no external asset: nothing loaded from a URL, no src= at all */
    ck_assert_ptr_null(strstr(r.body, " src="));
    ck_assert_ptr_null(strstr(r.body, "href=\"http"));
    ck_assert_ptr_null(strstr(r.body, "//cdn"));
    ck_assert_ptr_null(strstr(r.body, "innerHTML"));
    ck_assert_ptr_nonnull(strstr(r.body, "<style>"));
    ck_assert_ptr_nonnull(strstr(r.body, "<script>"));
    ck_assert_ptr_nonnull(strstr(r.body, "X-Odsync-Action"));
    resp_free(&r);
}
END_TEST

static Suite *dashboard_suite(void)
{
    Suite *s = suite_create("dashboard");
    TCase *tc = tcase_create("dashboard");
    TCase *off = tcase_create("without admin_token");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, probes_need_no_token);
    tcase_add_test(tc, token_required);
    tcase_add_test(tc, cookie_flow);
    tcase_add_test(tc, csrf_header_required_with_cookie);
    tcase_add_test(tc, json_matches_the_store);
    tcase_add_test(tc, dead_letter_retry_and_drop);
    tcase_add_test(tc, metrics_are_valid_prometheus_text);
    tcase_add_test(tc, metrics_checker_is_strict);
    tcase_add_test(tc, page_is_self_contained);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(off, setup_no_token, teardown);
    tcase_add_test(off, no_admin_token_means_disabled);
    suite_add_tcase(s, off);
    return s;
}

ODSYNC_TEST_MAIN(dashboard_suite)
