/*
 * test_rest: the real build/plugins/rest.so, loaded with plugin_open and driven through
 * host_sink_create / host_sink_send, against the loopback raw_http server. Asserts the bytes
 * of every request the plugin makes and the per-item results it reports.
 */
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "host_api.h"
#include "http_client.h"
#include "log.h"
#include "plugin.h"
#include "util.h"

#include "../support/raw_http.h"
#include "../support/testutil.h"

#define TOKEN "tok-5f1d2c9a"

static struct raw_http *srv;  /* per test */
static struct plugin *plugin; /* per test: the real rest.so */

static const char contact_json[] =
    "{\"key\":\"od:main-st:1042\",\"office\":\"main-st\",\"patnum\":1042,"
    "\"first_name\":\"Avery\",\"last_name\":\"Quill\",\"email\":\"avery.quill@example.com\"}";
static const char task_json[] = "{\"key\":\"od:main-st:recall:77\",\"office\":\"main-st\","
                                "\"subject\":\"Recall due\",\"status\":\"open\"}";
static const char sms_json[] = "{\"key\":\"od:main-st:apt:9:review\",\"channel\":\"sms\","
                               "\"to\":\"+15550102233\",\"body\":\"Thanks for visiting\"}";
static const char email_json[] = "{\"key\":\"od:main-st:apt:9:review-email\",\"channel\":\"email\","
                                 "\"to\":\"avery.quill@example.com\",\"subject\":\"Thanks\"}";
static const char fax_json[] = "{\"key\":\"od:main-st:fax:1\",\"channel\":\"fax\"}";

static void setup(void)
{
    char err[512] = "";
    char *path = tu_build_path("plugins/rest.so");
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    ck_assert_int_eq(setenv("TEST_REST_TOKEN", TOKEN, 1), 0);
    ck_assert_int_eq(raw_http_start(&srv), 0);
    ck_assert_msg(plugin_open(path, &plugin, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    free(path);
}

static void teardown(void)
{
    plugin_close(plugin);
    raw_http_stop(srv);
    log_shutdown();
    http_global_cleanup();
}

/* A sink instance of the plugin with base_url at the server (plus path) and the settings in
 * extra (a JSON object text, may be NULL). Caller frees with host_sink_destroy. */
static struct host_sink *sink_with(const char *base_path, const char *extra)
{
    char url[128], err[512] = "";
    struct host_sink *s = NULL;
    cJSON *settings = cJSON_Parse(extra != NULL ? extra : "{}");
    ck_assert_ptr_nonnull(settings);
    util_fmt(url, sizeof(url), "%s%s", raw_http_url(srv), base_path);
    cJSON_AddStringToObject(settings, "base_url", url);
    cJSON_AddStringToObject(settings, "token", "${TEST_REST_TOKEN}");
    int rc = host_sink_create(plugin, "crm", settings, "sinks.crm", &s, err, sizeof(err));
    ck_assert_msg(rc == ODSYNC_OK, "create: %s", err);
    cJSON_Delete(settings);
    return s;
}

/* The error of a create that must fail, into err. */
static void create_fails(const char *settings_json, char *err, size_t errlen)
{
    struct host_sink *s = NULL;
    cJSON *settings = cJSON_Parse(settings_json);
    ck_assert_ptr_nonnull(settings);
    err[0] = '\0';
    ck_assert_int_ne(host_sink_create(plugin, "crm", settings, "sinks.crm", &s, err, errlen),
                     ODSYNC_OK);
    ck_assert_ptr_null(s);
    cJSON_Delete(settings);
}

static struct odsync_record rec(int kind, const char *key, int64_t version, const char *json)
{
    struct odsync_record r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    r.kind = kind;
    r.key = key;
    r.office = "main-st";
    r.version = version;
    r.json = json;
    r.json_len = strlen(json);
    return r;
}

/* Send recs[0..n) through s into results (caller clears). */
static void send_all(struct host_sink *s, struct odsync_record *recs, size_t n,
                     struct host_result *results)
{
    const struct odsync_record *ptrs[16];
    ck_assert_uint_le(n, UTIL_ARRAY_LEN(ptrs));
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &recs[i];
    ck_assert_int_eq(host_sink_send(s, ptrs, n, results), ODSYNC_OK);
}

/* Send one record and return its result (caller clears). */
static struct host_result send_one(struct host_sink *s, struct odsync_record r)
{
    struct host_result res;
    send_all(s, &r, 1, &res);
    return res;
}

/* The headers of the request that should have been made for a PUT of json. */
static void expect_put(size_t i, const char *path, const char *idem, const char *json)
{
    char want[2048];
    util_fmt(want, sizeof(want),
             "PUT %s HTTP/1.1\r\n"
             "Host: 127.0.0.1:%d\r\n"
             "User-Agent: odsync/" ODSYNC_VERSION "\r\n"
             "Authorization: Bearer " TOKEN "\r\n"
             "Content-Type: application/json\r\n"
             "Accept: application/json\r\n"
             "Idempotency-Key: %s\r\n"
             "Content-Length: %zu\r\n"
             "\r\n"
             "%s",
             path, raw_http_port(srv), idem, strlen(json), json);
    ck_assert_ptr_nonnull(raw_http_request(srv, i));
    ck_assert_str_eq(raw_http_request(srv, i), want);
}

START_TEST(descriptor)
{
    const struct odsync_sink_descriptor *d = plugin_descriptor(plugin);
    ck_assert_str_eq(d->name, "rest");
    ck_assert_uint_eq(d->max_batch, 100);
    ck_assert(d->capabilities ==
              (ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS | ODSYNC_CAP_SMS | ODSYNC_CAP_EMAIL));
}
END_TEST

START_TEST(put_ok_with_remote_id)
{
    struct host_sink *s = sink_with("/api/v1/", NULL); /* trailing '/' is dropped */
    ck_assert_int_eq(raw_http_push_response(srv, 201, NULL, "{\"id\":\"c-77\",\"created\":true}"),
                     0);
    ck_assert_int_eq(raw_http_push_response(srv, 200, NULL, "{\"id\":12345,\"created\":false}"), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 204, NULL, NULL), 0);

    struct host_result r =
        send_one(s, rec(ODSYNC_KIND_CONTACT, "od:main-st:1042", 3, contact_json));
    ck_assert_int_eq(r.status, ODSYNC_OK);
    ck_assert_str_eq(r.remote_id, "c-77");
    ck_assert_ptr_null(r.detail);
    ck_assert_int_eq(r.retry_after_ms, -1);
    host_results_clear(&r, 1);
    expect_put(0, "/api/v1/contacts/od%3Amain-st%3A1042", "od:main-st:1042:3", contact_json);

    r = send_one(s, rec(ODSYNC_KIND_CONTACT, "od:main-st:1042", 4, contact_json));
    ck_assert_int_eq(r.status, ODSYNC_OK);
    ck_assert_str_eq(r.remote_id, "12345"); /* a numeric id, in decimal */
    host_results_clear(&r, 1);
    expect_put(1, "/api/v1/contacts/od%3Amain-st%3A1042", "od:main-st:1042:4", contact_json);

    r = send_one(s, rec(ODSYNC_KIND_CONTACT, "od:main-st:1042", 5, contact_json));
    ck_assert_int_eq(r.status, ODSYNC_OK);
    ck_assert_ptr_null(r.remote_id); /* 204: no body, no id */
    host_results_clear(&r, 1);

    ck_assert_int_eq(host_sink_counter(s, "requests"), 3);
    ck_assert_uint_eq(raw_http_connection_count(srv), 1); /* one kept-alive connection */
    char health[128];
    ck_assert_int_eq(host_sink_health(s, health, sizeof(health)), ODSYNC_OK);
    host_sink_destroy(s);
}
END_TEST

START_TEST(paths_per_kind)
{
    struct host_sink *s = sink_with(
        "", "{\"task_path\":\"v2/tasks\",\"sms_path\":\"sms\",\"contact_path\":\"people\"}");
    struct odsync_record recs[] = {
        rec(ODSYNC_KIND_TASK, "od:main-st:recall:77", 1, task_json),
        rec(ODSYNC_KIND_MESSAGE, "od:main-st:apt:9:review", 2, sms_json),
        rec(ODSYNC_KIND_MESSAGE, "od:main-st:apt:9:review-email", 1, email_json),
        rec(ODSYNC_KIND_MESSAGE, "od:main-st:fax:1", 1, fax_json),
        rec(9, "od:main-st:other:1", 1, task_json),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:1", 1, "[1,2]"),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:2", 1, contact_json),
    };
    struct host_result res[UTIL_ARRAY_LEN(recs)];
    send_all(s, recs, UTIL_ARRAY_LEN(recs), res);

    ck_assert_uint_eq(raw_http_request_count(srv), 4);
    expect_put(0, "/v2/tasks/od%3Amain-st%3Arecall%3A77", "od:main-st:recall:77:1", task_json);
    expect_put(1, "/sms/od%3Amain-st%3Aapt%3A9%3Areview", "od:main-st:apt:9:review:2", sms_json);
    expect_put(2, "/messages/od%3Amain-st%3Aapt%3A9%3Areview-email",
               "od:main-st:apt:9:review-email:1", email_json);
    expect_put(3, "/people/od%3Amain-st%3A2", "od:main-st:2:1", contact_json);
    ck_assert_int_eq(res[0].status, ODSYNC_OK);
    ck_assert_int_eq(res[1].status, ODSYNC_OK);
    ck_assert_int_eq(res[2].status, ODSYNC_OK);
    ck_assert_int_eq(res[3].status, ODSYNC_UNSUPPORTED);
    ck_assert_str_eq(res[3].detail, "message channel is neither \"sms\" nor \"email\"");
    ck_assert_int_eq(res[4].status, ODSYNC_UNSUPPORTED);
    ck_assert_str_eq(res[4].detail, "record kind 9 is not supported");
    ck_assert_int_eq(res[5].status, ODSYNC_PERMANENT);
    ck_assert_str_eq(res[5].detail, "record JSON is not an object");
    ck_assert_int_eq(res[6].status, ODSYNC_OK);
    host_results_clear(res, UTIL_ARRAY_LEN(recs));
    host_sink_destroy(s);
}
END_TEST

START_TEST(failure_classes)
{
    struct host_sink *s = sink_with("", NULL);
    struct odsync_record c = rec(ODSYNC_KIND_CONTACT, "od:main-st:1042", 3, contact_json);
    struct host_result r;

    ck_assert_int_eq(raw_http_push_response(srv, 500, NULL, "<html>oops</html>"), 0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_RETRY);
    ck_assert_str_eq(r.detail, "HTTP 500");
    ck_assert_ptr_null(r.remote_id);
    host_results_clear(&r, 1);

    ck_assert_int_eq(raw_http_push_response(srv, 429, "Retry-After: 7\r\n",
                                            "{\"message\":\"rate limit exceeded\"}"),
                     0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_RATE_LIMITED);
    ck_assert_int_eq(r.retry_after_ms, 7000);
    ck_assert_str_eq(r.detail, "HTTP 429: rate limit exceeded");
    host_results_clear(&r, 1);

    ck_assert_int_eq(raw_http_push_response(srv, 401, NULL, "{\"error\":\"invalid token\"}"), 0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_AUTH);
    ck_assert_str_eq(r.detail, "HTTP 401: invalid token");
    host_results_clear(&r, 1);
    char health[128];
    ck_assert_int_eq(host_sink_health(s, health, sizeof(health)), ODSYNC_AUTH);
    ck_assert_str_eq(health, "last request: HTTP 401 (AUTH)");

    ck_assert_int_eq(raw_http_push_response(srv, 403, NULL, "[{\"message\":\"forbidden\"}]"), 0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_AUTH);
    ck_assert_str_eq(r.detail, "HTTP 403: forbidden");
    host_results_clear(&r, 1);

    ck_assert_int_eq(
        raw_http_push_response(srv, 422, NULL,
                               "{\"error\":{\"code\":\"invalid\",\"message\":\"email is "
                               "invalid\"},\"record\":{\"first_name\":\"Avery\"}}"),
        0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_PERMANENT);
    ck_assert_str_eq(r.detail, "HTTP 422: email is invalid");
    ck_assert_int_eq(r.retry_after_ms, -1);
    host_results_clear(&r, 1);

    /* A long message is cut to a bounded excerpt; control characters do not pass. */
    char big[1200];
    memset(big, 0, sizeof(big));
    util_fmt(big, sizeof(big), "{\"message\":\"line1\\nline2 ");
    memset(big + strlen(big), 'x', 600);
    memcpy(big + strlen(big), "\"}", 3);
    ck_assert_int_eq(raw_http_push_response(srv, 400, NULL, big), 0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_PERMANENT);
    ck_assert_int_eq(strncmp(r.detail, "HTTP 400: line1 line2 xxx", 25), 0);
    ck_assert_uint_le(strlen(r.detail), 200);
    ck_assert_str_eq(r.detail + strlen(r.detail) - 3, "...");
    host_results_clear(&r, 1);

    /* 408 is transient; a redirect is not followed and is permanent. */
    ck_assert_int_eq(raw_http_push_response(srv, 408, NULL, "{}"), 0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_RETRY);
    host_results_clear(&r, 1);
    ck_assert_int_eq(raw_http_push_response(srv, 302, "Location: /elsewhere\r\n", "{}"), 0);
    r = send_one(s, c);
    ck_assert_int_eq(r.status, ODSYNC_PERMANENT);
    ck_assert_str_eq(r.detail, "HTTP 302");
    host_results_clear(&r, 1);

    ck_assert_uint_eq(raw_http_request_count(srv), 8);
    for (size_t i = 0; i < raw_http_request_count(srv); i++)
        expect_put(i, "/contacts/od%3Amain-st%3A1042", "od:main-st:1042:3", contact_json);
    host_sink_destroy(s);
}
END_TEST

START_TEST(rate_limit_stops_the_rest_of_the_batch)
{
    struct host_sink *s = sink_with("", NULL);
    struct odsync_record recs[] = {
        rec(ODSYNC_KIND_CONTACT, "od:main-st:1", 1, contact_json),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:2", 1, contact_json),
        rec(ODSYNC_KIND_TASK, "od:main-st:recall:3", 1, task_json),
    };
    struct host_result res[3];
    ck_assert_int_eq(raw_http_push_response(srv, 200, NULL, "{\"id\":\"1\"}"), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 429, "Retry-After: 7\r\n", "{}"), 0);
    send_all(s, recs, 3, res);
    ck_assert_uint_eq(raw_http_request_count(srv), 2);
    ck_assert_int_eq(res[0].status, ODSYNC_OK);
    ck_assert_int_eq(res[1].status, ODSYNC_RATE_LIMITED);
    ck_assert_int_eq(res[1].retry_after_ms, 7000);
    ck_assert_int_eq(res[2].status, ODSYNC_RATE_LIMITED);
    ck_assert_int_eq(res[2].retry_after_ms, 7000);
    ck_assert_str_eq(res[2].detail, "not sent: HTTP 429 earlier in this batch");
    host_results_clear(res, 3);
    host_sink_destroy(s);
}
END_TEST

START_TEST(connection_refused_is_retry)
{
    /* A bound socket that does not listen refuses connections. */
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);

    char settings[160], err[512] = "";
    util_fmt(settings, sizeof(settings),
             "{\"base_url\":\"http://127.0.0.1:%d\",\"token\":\"${TEST_REST_TOKEN}\"}",
             ntohs(a.sin_port));
    cJSON *json = cJSON_Parse(settings);
    struct host_sink *s = NULL;
    ck_assert_msg(host_sink_create(plugin, "crm", json, "sinks.crm", &s, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    cJSON_Delete(json);

    struct host_result r = send_one(s, rec(ODSYNC_KIND_CONTACT, "od:main-st:1", 1, contact_json));
    ck_assert_int_eq(r.status, ODSYNC_RETRY);
    ck_assert_int_eq(r.retry_after_ms, -1);
    ck_assert_ptr_nonnull(r.detail);
    ck_assert_msg(strncmp(r.detail, "transport error: ", 17) == 0, "detail: %s", r.detail);
    host_results_clear(&r, 1);
    char health[128];
    ck_assert_int_eq(host_sink_health(s, health, sizeof(health)), ODSYNC_RETRY);
    host_sink_destroy(s);
    close(fd);
}
END_TEST

START_TEST(batch_mixed_results)
{
    struct host_sink *s = sink_with("", "{\"batch\":true}");
    static const char c2[] = "{\"key\":\"od:main-st:2\",\"first_name\":\"B\"}";
    static const char c3[] = "{\"key\":\"od:main-st:3\",\"first_name\":\"C\"}";
    static const char c4[] = "{\"key\":\"od:main-st:4\",\"first_name\":\"D\"}";
    struct odsync_record recs[] = {
        rec(ODSYNC_KIND_CONTACT, "od:main-st:1042", 3, contact_json),
        rec(ODSYNC_KIND_TASK, "od:main-st:recall:77", 1, task_json),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:2", 1, c2),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:3", 2, c3),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:4", 5, c4),
    };
    struct host_result res[UTIL_ARRAY_LEN(recs)];
    ck_assert_int_eq(raw_http_push_response(srv, 200, NULL,
                                            "[{\"id\":\"a1\",\"status\":\"ok\"},"
                                            "{\"status\":\"error\",\"error\":\"phone is invalid\"},"
                                            "{\"status\":503,\"error\":\"try later\"},"
                                            "{\"id\":\"a4\",\"status\":201}]"),
                     0);
    ck_assert_int_eq(raw_http_push_response(srv, 207, NULL, "[{\"id\":7,\"status\":200}]"), 0);
    send_all(s, recs, UTIL_ARRAY_LEN(recs), res);

    /* Contacts first (in input order), then tasks: one request per entity. */
    ck_assert_uint_eq(raw_http_request_count(srv), 2);
    const char *raw = raw_http_request(srv, 0);
    char body[1024], head[256];
    util_fmt(body, sizeof(body), "[%s,%s,%s,%s]", contact_json, c2, c3, c4);
    util_fmt(head, sizeof(head),
             "POST /contacts/batch HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "User-Agent: odsync/" ODSYNC_VERSION "\r\n"
             "Authorization: Bearer " TOKEN "\r\n"
             "Content-Type: application/json\r\n"
             "Accept: application/json\r\n"
             "Idempotency-Key: batch-",
             raw_http_port(srv));
    ck_assert_int_eq(strncmp(raw, head, strlen(head)), 0);
    const char *rest = raw + strlen(head);
    ck_assert_uint_eq(strspn(rest, "0123456789abcdef"), 16);
    char tail[1200];
    util_fmt(tail, sizeof(tail), "\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    ck_assert_str_eq(rest + 16, tail);
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 1), "POST /tasks/batch HTTP/1.1\r\n"));
    util_fmt(body, sizeof(body), "\r\n\r\n[%s]", task_json);
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 1), body));

    ck_assert_int_eq(res[0].status, ODSYNC_OK);
    ck_assert_str_eq(res[0].remote_id, "a1");
    ck_assert_int_eq(res[1].status, ODSYNC_OK);
    ck_assert_str_eq(res[1].remote_id, "7");
    ck_assert_int_eq(res[2].status, ODSYNC_PERMANENT);
    ck_assert_str_eq(res[2].detail, "item error: phone is invalid");
    ck_assert_ptr_null(res[2].remote_id);
    ck_assert_int_eq(res[3].status, ODSYNC_RETRY);
    ck_assert_str_eq(res[3].detail, "item HTTP 503: try later");
    ck_assert_int_eq(res[4].status, ODSYNC_OK);
    ck_assert_str_eq(res[4].remote_id, "a4");
    host_results_clear(res, UTIL_ARRAY_LEN(recs));

    /* The same records again give the same Idempotency-Key. */
    send_all(s, recs, UTIL_ARRAY_LEN(recs), res);
    host_results_clear(res, UTIL_ARRAY_LEN(recs));
    const char *k0 = strstr(raw_http_request(srv, 0), "Idempotency-Key: ");
    const char *k2 = strstr(raw_http_request(srv, 2), "Idempotency-Key: ");
    ck_assert_int_eq(strncmp(k0, k2, 40), 0);
    host_sink_destroy(s);
}
END_TEST

START_TEST(batch_garbage_response)
{
    struct host_sink *s = sink_with("", "{\"batch\":true}");
    struct odsync_record recs[] = {
        rec(ODSYNC_KIND_CONTACT, "od:main-st:1", 1, contact_json),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:2", 1, contact_json),
    };
    static const char *const garbage[] = {
        "not json at all",
        "{\"results\":[]}",
        "[{\"status\":\"ok\"}]",                        /* one result for two items */
        "[{\"status\":\"ok\"},{\"status\":\"maybe\"}]", /* unknown status word */
        "[{\"status\":\"ok\"},{\"status\":700}]",       /* not an HTTP status */
        "[{\"status\":\"ok\"},\"ok\"]",                 /* not an object */
        "[{\"status\":\"ok\"},{\"id\":\"x\"}]",         /* no status */
    };
    for (size_t g = 0; g < UTIL_ARRAY_LEN(garbage); g++) {
        struct host_result res[2];
        ck_assert_int_eq(raw_http_push_response(srv, 200, NULL, garbage[g]), 0);
        send_all(s, recs, 2, res);
        for (size_t i = 0; i < 2; i++) {
            ck_assert_msg(res[i].status == ODSYNC_RETRY, "garbage %zu item %zu: %s", g, i,
                          odsync_status_name(res[i].status));
            ck_assert_str_eq(res[i].detail, "batch response: expected a JSON array of 2 results");
            ck_assert_ptr_null(res[i].remote_id);
        }
        host_results_clear(res, 2);
    }

    /* A failed batch request gives every item the request's class. */
    struct host_result res[2];
    ck_assert_int_eq(raw_http_push_response(srv, 401, NULL, "{\"error\":\"bad token\"}"), 0);
    send_all(s, recs, 2, res);
    ck_assert_int_eq(res[0].status, ODSYNC_AUTH);
    ck_assert_int_eq(res[1].status, ODSYNC_AUTH);
    ck_assert_str_eq(res[1].detail, "HTTP 401: bad token");
    host_results_clear(res, 2);
    host_sink_destroy(s);
}
END_TEST

START_TEST(batch_size_splits_requests)
{
    struct host_sink *s = sink_with("", "{\"batch\":true,\"batch_size\":2}");
    struct odsync_record recs[5];
    char keys[5][32];
    for (int i = 0; i < 5; i++) {
        util_fmt(keys[i], sizeof(keys[i]), "od:main-st:%d", i);
        recs[i] = rec(ODSYNC_KIND_CONTACT, keys[i], 1, "{}");
    }
    ck_assert_int_eq(
        raw_http_push_response(srv, 200, NULL, "[{\"status\":\"ok\"},{\"status\":\"ok\"}]"), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 429, "Retry-After: 30\r\n", "{}"), 0);
    struct host_result res[5];
    send_all(s, recs, 5, res);
    /* Two chunks were sent; the third was held back after the 429. */
    ck_assert_uint_eq(raw_http_request_count(srv), 2);
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 0), "\r\n\r\n[{},{}]"));
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 1), "\r\n\r\n[{},{}]"));
    ck_assert_int_eq(res[0].status, ODSYNC_OK);
    ck_assert_int_eq(res[1].status, ODSYNC_OK);
    for (int i = 2; i < 5; i++) {
        ck_assert_int_eq(res[i].status, ODSYNC_RATE_LIMITED);
        ck_assert_int_eq(res[i].retry_after_ms, 30000);
    }
    host_results_clear(res, 5);

    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(
            raw_http_push_response(srv, 200, NULL, "[{\"status\":\"ok\"},{\"status\":\"ok\"}]"), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 200, NULL, "[{\"status\":\"ok\"}]"), 0);
    send_all(s, recs, 5, res);
    ck_assert_uint_eq(raw_http_request_count(srv), 5);
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 4), "\r\n\r\n[{}]"));
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(res[i].status, ODSYNC_OK);
    host_results_clear(res, 5);
    host_sink_destroy(s);
}
END_TEST

START_TEST(bad_settings_refused)
{
    char err[512];
    create_fails("{\"base_url\":\"http://127.0.0.1:1\",\"token\":\"literal-token\"}", err,
                 sizeof(err));
    ck_assert_ptr_nonnull(strstr(err, "sinks.crm.token"));
    ck_assert_ptr_null(strstr(err, "literal-token"));

    create_fails("{\"base_url\":\"http://127.0.0.1:1\",\"token\":\"${TEST_REST_TOKEN}\","
                 "\"batch_size\":101}",
                 err, sizeof(err));
    ck_assert_msg(strstr(err, "batch_size: expected an integer from 1 to 100") != NULL, "%s", err);

    create_fails("{\"base_url\":\"http://127.0.0.1:1\",\"token\":\"${TEST_REST_TOKEN}\","
                 "\"task_path\":\"a//b\"}",
                 err, sizeof(err));
    ck_assert_msg(strstr(err, "task_path: expected a path") != NULL, "%s", err);

    create_fails("{\"base_url\":\"http://127.0.0.1:1\",\"token\":\"${TEST_REST_TOKEN}\","
                 "\"contact_path\":\"../admin\"}",
                 err, sizeof(err));
    ck_assert_msg(strstr(err, "contact_path") != NULL, "%s", err);

    create_fails("{\"base_url\":\"http://127.0.0.1:1/?x=1\",\"token\":\"${TEST_REST_TOKEN}\"}", err,
                 sizeof(err));
    ck_assert_msg(strstr(err, "base_url") != NULL, "%s", err);

    create_fails("{\"base_url\":\"ftp://127.0.0.1\",\"token\":\"${TEST_REST_TOKEN}\"}", err,
                 sizeof(err));
    ck_assert_msg(strstr(err, "base_url") != NULL, "%s", err);

    create_fails("{\"base_url\":\"http://127.0.0.1:1\",\"token\":\"${TEST_REST_TOKEN}\","
                 "\"timeout_ms\":5}",
                 err, sizeof(err));
    ck_assert_msg(strstr(err, "timeout_ms") != NULL, "%s", err);

    create_fails("{\"token\":\"${TEST_REST_TOKEN}\"}", err, sizeof(err));
    ck_assert_msg(strstr(err, "base_url") != NULL, "%s", err);

    ck_assert_int_eq(setenv("TEST_REST_TOKEN", "tok\nen", 1), 0);
    create_fails("{\"base_url\":\"http://127.0.0.1:1\",\"token\":\"${TEST_REST_TOKEN}\"}", err,
                 sizeof(err));
    ck_assert_msg(strstr(err, "token: contains a control character") != NULL, "%s", err);
    ck_assert_uint_eq(raw_http_request_count(srv), 0);
}
END_TEST

START_TEST(allocation_failures_are_clean)
{
    /* Each allocation of a send in turn fails: every item still gets a result and nothing
     * leaks (ASan checks). cJSON shares the host's allocator, so the plugin's parses fail
     * too. */
    struct host_sink *s = sink_with("", "{\"batch\":true}");
    struct odsync_record recs[] = {
        rec(ODSYNC_KIND_CONTACT, "od:main-st:1", 1, contact_json),
        rec(ODSYNC_KIND_TASK, "od:main-st:recall:2", 1, task_json),
    };
    util_init_cjson_hooks();
    for (long n = 1; n < 60; n++) {
        struct host_result res[2];
        const struct odsync_record *ptrs[] = {&recs[0], &recs[1]};
        ck_assert_int_eq(
            raw_http_push_response(srv, 200, NULL, "[{\"id\":\"1\",\"status\":\"ok\"}]"), 0);
        util_fail_alloc_after(n);
        int rc = host_sink_send(s, ptrs, 2, res);
        util_fail_alloc_after(0);
        if (rc == ODSYNC_NOMEM)
            continue;
        ck_assert_int_eq(rc, ODSYNC_OK);
        for (int i = 0; i < 2; i++)
            ck_assert_int_ge(res[i].status, ODSYNC_OK);
        host_results_clear(res, 2);
    }
    host_sink_destroy(s);
}
END_TEST

/* Start build/contrib/fakes/fake_rest_crm on an ephemeral port; *port from its
 * "listening on 127.0.0.1:PORT" line. Returns its pid. */
static pid_t fake_start(int *port)
{
    char *path = tu_build_path("contrib/fakes/fake_rest_crm");
    char line[128];
    size_t n = 0;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(path, path, "--listen", "127.0.0.1:0", "--token", TOKEN, (char *)NULL);
        _exit(127);
    }
    free(path);
    close(fds[1]);
    while (n < sizeof(line) - 1 && memchr(line, '\n', n) == NULL) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        ck_assert_msg(poll(&pfd, 1, 10000) == 1, "fake_rest_crm did not start");
        ssize_t got = read(fds[0], line + n, sizeof(line) - 1 - n);
        ck_assert_msg(got > 0, "fake_rest_crm exited before listening");
        n += (size_t)got;
        line[n] = '\0';
    }
    close(fds[0]);
    ck_assert_int_eq(strncmp(line, "listening on 127.0.0.1:", 23), 0);
    *strchr(line, '\n') = '\0';
    int64_t p;
    ck_assert_int_eq(util_parse_i64(line + 23, 1, 65535, &p), ODSYNC_OK);
    *port = (int)p;
    return pid;
}

/* GET /_state of the fake at port, parsed (caller frees with cJSON_Delete). */
static cJSON *fake_state(int port)
{
    char url[64];
    struct http_client *c = http_client_create();
    struct odsync_http_response *resp = NULL;
    const struct odsync_http_header auth = {"Authorization", "Bearer " TOKEN};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "GET",
                                      .url = url,
                                      .headers = &auth,
                                      .header_count = 1};
    util_fmt(url, sizeof(url), "http://127.0.0.1:%d/_state", port);
    ck_assert_int_eq(http_client_perform(c, &req, &resp), ODSYNC_OK);
    cJSON *state = cJSON_Parse(resp->body);
    ck_assert_ptr_nonnull(state);
    http_response_free(resp);
    http_client_destroy(c);
    return state;
}

/* Number at a JSON path of keys (NULL-terminated), asserting it exists. */
static double json_num(const cJSON *root, const char *const *path)
{
    const cJSON *v = root;
    for (size_t i = 0; path[i] != NULL; i++) {
        v = cJSON_GetObjectItemCaseSensitive(v, path[i]);
        ck_assert_msg(v != NULL, "no %s in state", path[i]);
    }
    ck_assert(cJSON_IsNumber(v));
    return v->valuedouble;
}

START_TEST(against_fake_rest_crm)
{
    int port;
    pid_t pid = fake_start(&port);
    char settings[256], err[512] = "";
    struct host_sink *single = NULL, *batched = NULL, *bad = NULL;
    cJSON *json;

    util_fmt(settings, sizeof(settings),
             "{\"base_url\":\"http://127.0.0.1:%d\",\"token\":\"${TEST_REST_TOKEN}\"}", port);
    json = cJSON_Parse(settings);
    ck_assert_msg(host_sink_create(plugin, "crm", json, "sinks.crm", &single, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    cJSON_AddTrueToObject(json, "batch");
    ck_assert_int_eq(
        host_sink_create(plugin, "crm2", json, "sinks.crm2", &batched, err, sizeof(err)),
        ODSYNC_OK);
    cJSON_Delete(json);

    struct odsync_record recs[] = {
        rec(ODSYNC_KIND_CONTACT, "od:main-st:1042", 1, contact_json),
        rec(ODSYNC_KIND_TASK, "od:main-st:recall:77", 1, task_json),
        rec(ODSYNC_KIND_MESSAGE, "od:main-st:apt:9:review", 1, sms_json),
    };
    struct host_result res[3];
    send_all(single, recs, 3, res);
    ck_assert_int_eq(res[0].status, ODSYNC_OK);
    ck_assert_str_eq(res[0].remote_id, "1");
    ck_assert_int_eq(res[1].status, ODSYNC_OK);
    ck_assert_str_eq(res[1].remote_id, "2");
    ck_assert_int_eq(res[2].status, ODSYNC_OK);
    ck_assert_str_eq(res[2].remote_id, "3");
    host_results_clear(res, 3);

    /* The same version again is a replay; a new version is an update (same id). */
    recs[0].version = 1;
    struct host_result r = send_one(single, recs[0]);
    ck_assert_str_eq(r.remote_id, "1");
    host_results_clear(&r, 1);
    recs[0].version = 2;
    r = send_one(single, recs[0]);
    ck_assert_str_eq(r.remote_id, "1");
    host_results_clear(&r, 1);

    /* Batch mode: the existing contact is updated, a new one created. */
    struct odsync_record more[] = {
        rec(ODSYNC_KIND_CONTACT, "od:main-st:1042", 3, contact_json),
        rec(ODSYNC_KIND_CONTACT, "od:main-st:7", 1, "{\"key\":\"od:main-st:7\"}"),
    };
    send_all(batched, more, 2, res);
    ck_assert_int_eq(res[0].status, ODSYNC_OK);
    ck_assert_str_eq(res[0].remote_id, "1");
    ck_assert_int_eq(res[1].status, ODSYNC_OK);
    ck_assert_str_eq(res[1].remote_id, "4");
    host_results_clear(res, 2);

    /* A wrong token is AUTH. */
    ck_assert_int_eq(setenv("TEST_REST_TOKEN", "wrong-token", 1), 0);
    util_fmt(settings, sizeof(settings),
             "{\"base_url\":\"http://127.0.0.1:%d\",\"token\":\"${TEST_REST_TOKEN}\"}", port);
    json = cJSON_Parse(settings);
    ck_assert_int_eq(host_sink_create(plugin, "bad", json, "sinks.bad", &bad, err, sizeof(err)),
                     ODSYNC_OK);
    cJSON_Delete(json);
    r = send_one(bad, recs[0]);
    ck_assert_int_eq(r.status, ODSYNC_AUTH);
    ck_assert_str_eq(r.detail, "HTTP 401: invalid or missing bearer token");
    host_results_clear(&r, 1);

    cJSON *state = fake_state(port);
    static const char *const contacts_count[] = {"entities", "contacts", "count", NULL};
    static const char *const version_1042[] = {"entities",        "contacts", "items",
                                               "od:main-st:1042", "version",  NULL};
    static const char *const messages_count[] = {"entities", "messages", "count", NULL};
    static const char *const requests[] = {"requests", NULL};
    ck_assert_int_eq((int)json_num(state, contacts_count), 2);
    ck_assert_int_eq((int)json_num(state, version_1042), 3); /* create, update, batch update */
    ck_assert_int_eq((int)json_num(state, messages_count), 1);
    ck_assert_int_eq((int)json_num(state, requests), 7);
    cJSON_Delete(state);

    host_sink_destroy(single);
    host_sink_destroy(batched);
    host_sink_destroy(bad);
    int status;
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fake exit status %d", status);
}
END_TEST

static Suite *rest_suite(void)
{
    Suite *s = suite_create("plugin_rest");
    TCase *tc = tcase_create("rest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, descriptor);
    tcase_add_test(tc, put_ok_with_remote_id);
    tcase_add_test(tc, paths_per_kind);
    tcase_add_test(tc, failure_classes);
    tcase_add_test(tc, rate_limit_stops_the_rest_of_the_batch);
    tcase_add_test(tc, connection_refused_is_retry);
    tcase_add_test(tc, batch_mixed_results);
    tcase_add_test(tc, batch_garbage_response);
    tcase_add_test(tc, batch_size_splits_requests);
    tcase_add_test(tc, bad_settings_refused);
    tcase_add_test(tc, allocation_failures_are_clean);
    tcase_add_test(tc, against_fake_rest_crm);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(rest_suite)
