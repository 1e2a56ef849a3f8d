/*
 * test_fake_rest_crm: contrib/fakes/fake_rest_crm as a real process on loopback, driven
 * through core/http_client: create / update / replay, batch results, SQLite persistence
 * across a restart, 422 for REJECT records, every injected fault (500, 429 + Retry-After,
 * reset before and after the write, delay, 401, malformed 200), runtime fault changes,
 * counters, POST /_reset, admin auth, the command line and concurrent clients. Each test
 * starts its own fake; every stop asserts a clean exit 0 (leak-free under ASan).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "util.h"

#include "../support/testutil.h"

#define TOKEN "fake-crm-test-token-8d21"

static pid_t fake_pid;           /* running fake, or 0 */
static int fake_port;            /* its port */
static char *dir;                /* per-test temporary directory */
static struct http_client *cli;  /* per test */
static char fake_err_path[4096]; /* the fake's stderr, kept in dir */

static void setup(void)
{
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    cli = http_client_create();
    ck_assert_ptr_nonnull(cli);
    dir = tu_mkdtemp();
    ck_assert_int_eq(util_fmt(fake_err_path, sizeof(fake_err_path), "%s/fake.log", dir), ODSYNC_OK);
    fake_pid = 0;
}

/* Stop the running fake and require exit status 0. */
static void fake_stop(void)
{
    int status = tu_stop(fake_pid);
    fake_pid = 0;
    ck_assert_msg(status == 0, "fake_rest_crm exited with %d", status);
}

static void teardown(void)
{
    if (fake_pid > 0)
        fake_stop();
    http_client_destroy(cli);
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
}

/* Start the fake with --listen 127.0.0.1:0 --token TOKEN and the extra arguments (a
 * NULL-terminated list; NULL for none). */
static void fake_start(const char *const *extra)
{
    const char *argv[40];
    size_t n = 0;
    char *path = tu_build_path("contrib/fakes/fake_rest_crm");
    argv[n++] = path;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--token";
    argv[n++] = TOKEN;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        ck_assert_uint_lt(n, UTIL_ARRAY_LEN(argv) - 1);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    fake_pid = tu_spawn_server(argv, fake_err_path, &fake_port);
    free(path);
}

/* Perform method on path (e.g. "/contacts/k1") of the fake. body may be NULL; token NULL
 * sends no Authorization header; idem NULL sends no Idempotency-Key. Returns the response
 * (caller frees with http_response_free); never NULL. */
static int call_timeout_ms = 20000; /* per test; a delayed request outlives a short one */

static struct odsync_http_response *call_as(const char *method, const char *path, const char *body,
                                            const char *token, const char *idem)
{
    char url[512], auth[128];
    struct odsync_http_header h[3];
    size_t nh = 0;
    struct odsync_http_response *resp = NULL;
    ck_assert_int_eq(util_fmt(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path),
                     ODSYNC_OK);
    h[nh++] = (struct odsync_http_header){"Content-Type", "application/json"};
    if (token != NULL) {
        ck_assert_int_eq(util_fmt(auth, sizeof(auth), "Bearer %s", token), ODSYNC_OK);
        h[nh++] = (struct odsync_http_header){"Authorization", auth};
    }
    if (idem != NULL)
        h[nh++] = (struct odsync_http_header){"Idempotency-Key", idem};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = method,
                                      .url = url,
                                      .headers = h,
                                      .header_count = nh,
                                      .body = body,
                                      .body_len = body != NULL ? strlen(body) : 0,
                                      .timeout_ms = call_timeout_ms};
    http_client_perform(cli, &req, &resp);
    ck_assert_ptr_nonnull(resp);
    return resp;
}

/* call_as with the right token. */
static struct odsync_http_response *call(const char *method, const char *path, const char *body,
                                         const char *idem)
{
    return call_as(method, path, body, TOKEN, idem);
}

/* Status of a call (the response is freed). */
static int status_of(const char *method, const char *path, const char *body, const char *idem)
{
    struct odsync_http_response *r = call(method, path, body, idem);
    int status = r->status;
    http_response_free(r);
    return status;
}

/* Parse a response body as JSON and free the response; asserts status and JSON. Caller
 * frees the result with cJSON_Delete. */
static cJSON *json_of(struct odsync_http_response *r, int want_status)
{
    ck_assert_msg(r->status == want_status, "status %d (want %d): %s", r->status, want_status,
                  r->body);
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "not JSON: %s", r->body);
    http_response_free(r);
    return j;
}

/* GET /_state (summary when asked), with the token. Caller frees with cJSON_Delete. */
static cJSON *state(int summary)
{
    return json_of(call("GET", summary ? "/_state?summary=1" : "/_state", NULL, NULL), 200);
}

/* The value at a '/'-separated path of object keys (e.g. "stats/by_status/500"), or NULL. */
static const cJSON *at(const cJSON *j, const char *path)
{
    char key[256];
    while (j != NULL && *path != '\0') {
        size_t n = strcspn(path, "/");
        ck_assert_uint_lt(n, sizeof(key));
        memcpy(key, path, n);
        key[n] = '\0';
        j = cJSON_GetObjectItemCaseSensitive(j, key);
        path += n + (path[n] == '/');
    }
    return j;
}

/* The number at path (0 when absent, like an unset counter). */
static int num(const cJSON *j, const char *path)
{
    const cJSON *v = at(j, path);
    if (v == NULL)
        return 0;
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", path);
    return (int)v->valuedouble;
}

/* The string at path; asserts it is one. Borrowed from j. */
static const char *str(const cJSON *j, const char *path)
{
    const cJSON *v = at(j, path);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", path);
    return v->valuestring;
}

/* Items stored for entity (0 when the entity has none). */
static int item_count(const char *entity)
{
    char path[128];
    cJSON *s = state(1);
    ck_assert_int_eq(util_fmt(path, sizeof(path), "entities/%s/count", entity), ODSYNC_OK);
    int n = num(s, path);
    cJSON_Delete(s);
    return n;
}

/* One stats counter (path under "stats"). */
static int stat_of(const char *path)
{
    char full[128];
    cJSON *s = state(1);
    ck_assert_int_eq(util_fmt(full, sizeof(full), "stats/%s", path), ODSYNC_OK);
    int n = num(s, full);
    cJSON_Delete(s);
    return n;
}

/* PUT /contacts/k<i> with a small contact body. */
static int put_contact(int i, const char *idem)
{
    char path[64], body[128];
    util_fmt(path, sizeof(path), "/contacts/k%d", i);
    util_fmt(body, sizeof(body), "{\"key\":\"k%d\",\"first_name\":\"Avery\",\"n\":%d}", i, i);
    return status_of("PUT", path, body, idem);
}

START_TEST(put_creates_updates_and_replays)
{
    fake_start(NULL);
    cJSON *j =
        json_of(call("PUT", "/contacts/od%3Amain-st%3A1", "{\"key\":\"a\",\"v\":1}", "a:1"), 201);
    ck_assert_str_eq(str(j, "id"), "1");
    ck_assert(cJSON_IsTrue(at(j, "created")));
    cJSON_Delete(j);

    /* The same Idempotency-Key again is a replay: answered as an update, nothing changes. */
    j = json_of(call("PUT", "/contacts/od%3Amain-st%3A1", "{\"key\":\"a\",\"v\":99}", "a:1"), 200);
    ck_assert_str_eq(str(j, "id"), "1");
    ck_assert(cJSON_IsFalse(at(j, "created")));
    cJSON_Delete(j);
    j = json_of(call("PUT", "/contacts/od%3Amain-st%3A1", "{\"key\":\"a\",\"v\":2}", "a:2"), 200);
    ck_assert_str_eq(str(j, "id"), "1");
    cJSON_Delete(j);
    /* Without a key every PUT is a write. */
    ck_assert_int_eq(status_of("PUT", "/contacts/od%3Amain-st%3A1", "{\"v\":3}", NULL), 200);
    ck_assert_int_eq(status_of("PUT", "/contacts/od%3Amain-st%3A1", "{\"v\":3}", NULL), 200);
    /* A new id gets the next remote id; an entity may hold '/'. */
    j = json_of(call("PUT", "/v2/tasks/t%2F1", "{\"subject\":\"x\"}", NULL), 201);
    ck_assert_str_eq(str(j, "id"), "2");
    cJSON_Delete(j);

    cJSON *s = state(0);
    ck_assert_int_eq(num(s, "entities/contacts/count"), 1);
    ck_assert_int_eq(num(s, "entities/contacts/items/od:main-st:1/version"), 4);
    ck_assert_int_eq(num(s, "entities/contacts/items/od:main-st:1/body/v"), 3);
    ck_assert(cJSON_IsNull(at(s, "entities/contacts/items/od:main-st:1/idempotency_key")));
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(at(s, "entities"), "v2/tasks");
    ck_assert_int_eq(num(tasks, "count"), 1);
    ck_assert_str_eq(str(cJSON_GetObjectItemCaseSensitive(at(tasks, "items"), "t/1"), "id"), "2");
    ck_assert_int_eq(num(s, "requests"), 6);
    ck_assert_int_eq(num(s, "stats/applied_writes"), 5);
    ck_assert_int_eq(num(s, "stats/replays"), 1);
    ck_assert_int_eq(num(s, "stats/by_status/201"), 2);
    ck_assert_int_eq(num(s, "stats/by_status/200"), 4);
    cJSON_Delete(s);
}
END_TEST

START_TEST(batch_answers_one_result_per_item)
{
    fake_start(NULL);
    ck_assert_int_eq(put_contact(1, NULL), 201);
    cJSON *j = json_of(call("POST", "/contacts/batch",
                            "[{\"key\":\"k1\",\"n\":2},{\"key\":\"k2\"},{\"nokey\":1},"
                            "{\"key\":\"k3\",\"first_name\":\"REJECT\"},7]",
                            "batch-0000000000000001"),
                       200);
    ck_assert_int_eq(cJSON_GetArraySize(j), 5);
    const cJSON *r0 = cJSON_GetArrayItem(j, 0), *r1 = cJSON_GetArrayItem(j, 1);
    ck_assert_str_eq(str(r0, "id"), "1");
    ck_assert_str_eq(str(r0, "status"), "ok");
    ck_assert(cJSON_IsFalse(at(r0, "created")));
    ck_assert_str_eq(str(r1, "id"), "2");
    ck_assert(cJSON_IsTrue(at(r1, "created")));
    ck_assert_str_eq(str(cJSON_GetArrayItem(j, 2), "status"), "error");
    ck_assert_int_eq(num(cJSON_GetArrayItem(j, 3), "status"), 422);
    ck_assert_str_eq(str(cJSON_GetArrayItem(j, 3), "error"), "validation failed: rejected by fake");
    ck_assert_str_eq(str(cJSON_GetArrayItem(j, 4), "status"), "error");
    cJSON_Delete(j);

    ck_assert_int_eq(status_of("POST", "/contacts/batch", "{\"key\":\"k\"}", NULL), 400);
    ck_assert_int_eq(status_of("GET", "/contacts/batch", NULL, NULL), 405);
    ck_assert_int_eq(status_of("PUT", "/", "{}", NULL), 404);
    ck_assert_int_eq(status_of("PUT", "/contacts/a%zz", "{}", NULL), 400);
    cJSON *s = state(0);
    ck_assert_int_eq(num(s, "entities/contacts/count"), 2);
    ck_assert_int_eq(num(s, "entities/contacts/items/k1/version"), 2);
    ck_assert_int_eq(num(s, "entities/contacts/items/k1/body/n"), 2);
    ck_assert_int_eq(num(s, "stats/rejected"), 1);
    cJSON_Delete(s);
}
END_TEST

START_TEST(items_endpoint_shows_one_item)
{
    fake_start(NULL);
    ck_assert_int_eq(
        status_of("PUT", "/contacts/od%3Ax%2F1", "{\"key\":\"od:x/1\",\"a\":[1]}", "od:x/1:1"),
        201);
    cJSON *j = json_of(call("GET", "/_items/contacts/od%3Ax%2F1", NULL, NULL), 200);
    ck_assert_str_eq(str(j, "entity"), "contacts");
    ck_assert_str_eq(str(j, "key"), "od:x/1");
    ck_assert_str_eq(str(j, "id"), "1");
    ck_assert_int_eq(num(j, "version"), 1);
    ck_assert_str_eq(str(j, "idempotency_key"), "od:x/1:1");
    ck_assert_int_eq((int)cJSON_GetArrayItem(at(j, "body/a"), 0)->valuedouble, 1);
    ck_assert_uint_eq(strlen(str(j, "created_at")), 24); /* 2026-01-02T03:04:05.678Z */
    cJSON_Delete(j);
    ck_assert_int_eq(status_of("GET", "/_items/contacts/nope", NULL, NULL), 404);
    ck_assert_int_eq(status_of("GET", "/_items/contacts", NULL, NULL), 404);
    cJSON *s = state(1);
    ck_assert_int_eq(num(s, "requests"), 1); /* admin requests are not counted */
    cJSON_Delete(s);
}
END_TEST

START_TEST(db_persists_across_restart)
{
    char db[4200];
    ck_assert_int_eq(util_fmt(db, sizeof(db), "%s/crm.db", dir), ODSYNC_OK);
    const char *args[] = {"--db", db, NULL};
    fake_start(args);
    ck_assert_int_eq(put_contact(1, "k1:1"), 201);
    ck_assert_int_eq(put_contact(2, "k2:1"), 201);
    ck_assert_int_eq(put_contact(2, "k2:2"), 200);
    fake_stop();

    fake_start(args);
    cJSON *s = state(0);
    ck_assert_int_eq(num(s, "entities/contacts/count"), 2);
    ck_assert_int_eq(num(s, "entities/contacts/items/k2/version"), 2);
    ck_assert_str_eq(str(s, "entities/contacts/items/k2/idempotency_key"), "k2:2");
    ck_assert_int_eq(num(s, "requests"), 0); /* counters are per process */
    cJSON_Delete(s);
    /* The replay rule and the remote id sequence survive the restart. */
    ck_assert_int_eq(put_contact(2, "k2:2"), 200);
    ck_assert_int_eq(stat_of("replays"), 1);
    cJSON *j = json_of(call("PUT", "/contacts/k3", "{}", NULL), 201);
    ck_assert_str_eq(str(j, "id"), "3");
    cJSON_Delete(j);
    fake_stop();

    /* A file that is not a database is refused at start-up. */
    char *junk = tu_write_file(dir, "junk.db", "this is not a database, not even close......");
    const char *argv[] = {NULL, "--token", TOKEN, "--db", junk, NULL};
    char *path = tu_build_path("contrib/fakes/fake_rest_crm"), *err = NULL;
    argv[0] = path;
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "junk.db"));
    free(err);
    free(path);
    free(junk);
}
END_TEST

START_TEST(reject_is_422_and_bad_json_400)
{
    fake_start(NULL);
    struct odsync_http_response *r =
        call("PUT", "/contacts/k1", "{\"key\":\"k1\",\"first_name\":\"REJECT\"}", "k1:1");
    ck_assert_int_eq(r->status, 422);
    ck_assert_int_eq(r->result_class, ODSYNC_PERMANENT);
    ck_assert_str_eq(r->body, "{\"error\":\"validation failed: rejected by fake\"}");
    http_response_free(r);
    ck_assert_int_eq(status_of("PUT", "/contacts/k1", "{\"a\":{\"b\":[\"x\",\"REJECT\"]}}", NULL),
                     422);
    ck_assert_int_eq(status_of("PUT", "/contacts/k1", "{\"a\":\"REJECTED\"}", NULL), 201);
    ck_assert_int_eq(status_of("PUT", "/contacts/k2", "{\"key\":", NULL), 400);
    ck_assert_int_eq(status_of("PUT", "/contacts/k2", "[1]", NULL), 400);
    ck_assert_int_eq(status_of("PUT", "/contacts/k2", NULL, NULL), 400);
    ck_assert_int_eq(item_count("contacts"), 1);
    ck_assert_int_eq(stat_of("rejected"), 2);
    ck_assert_int_eq(stat_of("by_status/400"), 3);
}
END_TEST

START_TEST(fail_rate_one_answers_500_and_stores_nothing)
{
    const char *args[] = {"--fail-rate", "1.0", NULL};
    fake_start(args);
    for (int i = 0; i < 10; i++) {
        struct odsync_http_response *r = call("PUT", "/contacts/k", "{}", NULL);
        ck_assert_int_eq(r->status, 500);
        ck_assert_int_eq(r->result_class, ODSYNC_RETRY);
        ck_assert_str_eq(r->body, "{\"error\":\"injected\"}");
        http_response_free(r);
    }
    ck_assert_int_eq(status_of("POST", "/contacts/batch", "[{\"key\":\"b\"}]", NULL), 500);
    cJSON *s = state(1);
    ck_assert_int_eq(cJSON_GetArraySize(at(s, "entities")), 0);
    ck_assert_int_eq(num(s, "stats/by_status/500"), 11);
    ck_assert_int_eq(num(s, "stats/data_requests"), 11);
    ck_assert_int_eq(num(s, "stats/applied_writes"), 0);
    cJSON_Delete(s);
}
END_TEST

START_TEST(rate_limit_every_second_request)
{
    const char *args[] = {"--rate-limit-every", "2", "--retry-after", "3", NULL};
    fake_start(args);
    ck_assert_int_eq(put_contact(1, NULL), 201);
    struct odsync_http_response *r = call("PUT", "/contacts/k2", "{}", NULL);
    ck_assert_int_eq(r->status, 429);
    ck_assert_int_eq(r->result_class, ODSYNC_RATE_LIMITED);
    ck_assert_str_eq(http_response_header(r, "Retry-After"), "3");
    ck_assert_int_eq(r->retry_after_ms, 3000);
    ck_assert_str_eq(r->body, "{\"error\":\"rate limited\"}");
    http_response_free(r);
    ck_assert_int_eq(put_contact(3, NULL), 201);
    ck_assert_int_eq(put_contact(4, NULL), 429);
    ck_assert_int_eq(status_of("POST", "/contacts/batch", "[{\"key\":\"b\"}]", NULL), 200);
    ck_assert_int_eq(status_of("POST", "/contacts/batch", "[{\"key\":\"b\"}]", NULL), 429);
    ck_assert_int_eq(item_count("contacts"), 3); /* k1, k3, b */
    ck_assert_int_eq(stat_of("by_status/429"), 3);
}
END_TEST

START_TEST(reset_before_and_after_the_write)
{
    /* Every reset before applying: a transport error and nothing stored. */
    const char *before[] = {"--reset-rate", "1", "--reset-after-rate", "0", NULL};
    fake_start(before);
    for (int i = 0; i < 3; i++) {
        struct odsync_http_response *r = call("PUT", "/contacts/k1", "{}", "k1:1");
        ck_assert_int_eq(r->status, 0);
        ck_assert_int_eq(r->result_class, ODSYNC_RETRY);
        ck_assert_ptr_nonnull(r->error);
        http_response_free(r);
    }
    ck_assert_int_eq(item_count("contacts"), 0);
    ck_assert_int_eq(stat_of("resets"), 3);
    ck_assert_int_eq(stat_of("resets_applied"), 0);
    fake_stop();

    /* Every reset after applying: the client sees a transport error, the item is stored, and
     * the retry with the same key is a replay. */
    const char *after[] = {"--reset-rate", "1", "--reset-after-rate", "1", NULL};
    fake_start(after);
    ck_assert_int_eq(status_of("PUT", "/contacts/k1", "{}", "k1:1"), 0);
    ck_assert_int_eq(status_of("POST", "/contacts/batch", "[{\"key\":\"b\"}]", NULL), 0);
    ck_assert_int_eq(item_count("contacts"), 2);
    /* This PUT goes over the connection the GET /_state above left open; libcurl resends a
     * request once when a reused connection dies before any answer byte, so the fake sees
     * two data requests: both reset, the second a replay. */
    ck_assert_int_eq(status_of("PUT", "/contacts/k1", "{}", "k1:1"), 0);
    cJSON *s = state(0);
    ck_assert_int_eq(num(s, "entities/contacts/items/k1/version"), 1);
    ck_assert_int_eq(num(s, "stats/data_requests"), 4);
    ck_assert_int_eq(num(s, "stats/resets"), 4);
    ck_assert_int_eq(num(s, "stats/resets_applied"), 4);
    ck_assert_int_eq(num(s, "stats/replays"), 2);
    ck_assert_int_eq(cJSON_GetArraySize(at(s, "stats/by_status")), 0);
    cJSON_Delete(s);
}
END_TEST

/* Statuses of 40 PUTs against a fake started with args, as one string: '1' created,
 * '5' 500, '0' reset, 'm' malformed; then stops it. */
static void fault_pattern(const char *const *args, char *out)
{
    fake_start(args);
    for (int i = 0; i < 40; i++) {
        struct odsync_http_response *r = call("PUT", "/contacts/k", "{}", NULL);
        out[i] = r->status == 0                       ? '0'
                 : r->status == 500                   ? '5'
                 : strcmp(r->body, "<html>oops") == 0 ? 'm'
                                                      : '1';
        http_response_free(r);
    }
    out[40] = '\0';
    fake_stop();
}

START_TEST(rates_are_deterministic_per_seed)
{
    char a[41], b[41], c[41];
    const char *seed7[] = {
        "--fail-rate", "0.3", "--reset-rate", "0.3", "--malformed-rate", "0.3", "--seed",
        "7",           NULL};
    const char *seed8[] = {
        "--fail-rate", "0.3", "--reset-rate", "0.3", "--malformed-rate", "0.3", "--seed",
        "8",           NULL};
    fault_pattern(seed7, a);
    fault_pattern(seed7, b);
    fault_pattern(seed8, c);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_ptr_nonnull(strchr(a, '0'));
    ck_assert_ptr_nonnull(strchr(a, '5'));
    ck_assert_ptr_nonnull(strchr(a, 'm'));
    ck_assert_ptr_nonnull(strchr(a, '1'));
    /* With the default reset-after-rate 0.5, some resets applied the write and some did not. */
    const char *resets[] = {"--reset-rate", "1", "--seed", "3", NULL};
    fake_start(resets);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(put_contact(i, NULL), 0);
    int applied = stat_of("resets_applied");
    ck_assert_int_gt(applied, 0);
    ck_assert_int_lt(applied, 20);
    ck_assert_int_eq(item_count("contacts"), applied);
}
END_TEST

START_TEST(delay_slows_data_requests_only)
{
    const char *args[] = {"--delay-ms", "600000", NULL};
    struct odsync_http_response *r;
    fake_start(args);
    /* A data request is held for ten minutes: a client that waits 1 s gets no answer... */
    call_timeout_ms = 1000;
    r = call_as("PUT", "/contacts/1", "{}", TOKEN, NULL);
    ck_assert_int_eq(r->status, 0);
    ck_assert_int_eq(r->result_class, ODSYNC_RETRY);
    http_response_free(r);
    /* ...while an admin route answers within the same 1 s budget: it is never delayed. */
    cJSON_Delete(state(0));
    call_timeout_ms = 20000;
}
END_TEST

START_TEST(auth_fail_answers_401_whatever_the_token)
{
    const char *args[] = {"--auth-fail", NULL};
    fake_start(args);
    struct odsync_http_response *r = call("PUT", "/contacts/k1", "{}", NULL);
    ck_assert_int_eq(r->status, 401);
    ck_assert_int_eq(r->result_class, ODSYNC_AUTH);
    ck_assert_str_eq(r->body, "{\"error\":\"invalid token\"}");
    http_response_free(r);
    /* A truly wrong token still gets the normal answer and is no data request. */
    r = call_as("PUT", "/contacts/k1", "{}", "wrong-token", NULL);
    ck_assert_int_eq(r->status, 401);
    ck_assert_str_eq(r->body, "{\"error\":\"invalid or missing bearer token\"}");
    http_response_free(r);
    cJSON *s = state(1);
    ck_assert_int_eq(num(s, "requests"), 2);
    ck_assert_int_eq(num(s, "stats/data_requests"), 1);
    ck_assert_int_eq(num(s, "stats/by_status/401"), 2);
    ck_assert_int_eq(cJSON_GetArraySize(at(s, "entities")), 0);
    cJSON_Delete(s);
}
END_TEST

START_TEST(malformed_rate_answers_200_not_json)
{
    const char *args[] = {"--malformed-rate", "1.0", NULL};
    fake_start(args);
    struct odsync_http_response *r = call("PUT", "/contacts/k1", "{}", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "<html>oops");
    ck_assert_ptr_null(cJSON_Parse(r->body));
    http_response_free(r);
    r = call("POST", "/contacts/batch", "[{\"key\":\"b\"}]", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "<html>oops");
    http_response_free(r);
    /* Only success answers are garbled: a rejection stays a 422. */
    ck_assert_int_eq(status_of("PUT", "/contacts/k2", "{\"x\":\"REJECT\"}", NULL), 422);
    /* The server did the work it garbled the answer for. */
    cJSON *s = state(1);
    ck_assert_int_eq(num(s, "entities/contacts/count"), 2);
    ck_assert_int_eq(num(s, "stats/malformed"), 2);
    ck_assert_int_eq(num(s, "stats/by_status/200"), 2);
    cJSON_Delete(s);
}
END_TEST

START_TEST(faults_change_at_run_time)
{
    fake_start(NULL);
    ck_assert_int_eq(put_contact(1, NULL), 201);
    cJSON *f = json_of(call("POST", "/_faults", "{\"fail-rate\":1,\"delay_ms\":5}", NULL), 200);
    ck_assert_int_eq(num(f, "fail-rate"), 1);
    ck_assert_int_eq(num(f, "delay-ms"), 5);
    ck_assert_int_eq(num(f, "retry-after"), 1);
    ck_assert_int_eq(num(f, "seed"), 1);
    cJSON_Delete(f);
    ck_assert_int_eq(put_contact(2, NULL), 500);
    f = json_of(call("GET", "/_faults", NULL, NULL), 200);
    ck_assert_int_eq(num(f, "fail-rate"), 1);
    ck_assert(cJSON_IsFalse(at(f, "auth-fail")));
    cJSON_Delete(f);

    /* A bad setting changes nothing, not even the good ones beside it. */
    ck_assert_int_eq(status_of("POST", "/_faults", "{\"fail-rate\":0,\"bogus\":1}", NULL), 400);
    ck_assert_int_eq(status_of("POST", "/_faults", "{\"fail-rate\":0,\"reset-rate\":2}", NULL),
                     400);
    ck_assert_int_eq(status_of("POST", "/_faults", "{\"auth-fail\":1}", NULL), 400);
    ck_assert_int_eq(status_of("POST", "/_faults", "{\"delay-ms\":1.5}", NULL), 400);
    ck_assert_int_eq(status_of("POST", "/_faults", "not json", NULL), 400);
    ck_assert_int_eq(put_contact(2, NULL), 500);

    ck_assert_int_eq(status_of("POST", "/_faults", "{\"fail-rate\":0,\"auth-fail\":true}", NULL),
                     200);
    ck_assert_int_eq(put_contact(2, NULL), 401);
    ck_assert_int_eq(
        status_of("POST", "/_faults", "{\"auth-fail\":false,\"rate-limit-every\":2}", NULL), 200);
    ck_assert_int_eq(put_contact(2, NULL), 201); /* the count restarts when it is set */
    ck_assert_int_eq(put_contact(3, NULL), 429);
    /* DELETE turns every fault off. */
    f = json_of(call("DELETE", "/_faults", NULL, NULL), 200);
    ck_assert_int_eq(num(f, "rate-limit-every"), 0);
    ck_assert_int_eq(num(f, "delay-ms"), 0);
    cJSON_Delete(f);
    for (int i = 3; i < 8; i++)
        ck_assert_int_eq(put_contact(i, NULL), 201);
    ck_assert_int_eq(item_count("contacts"), 7);
}
END_TEST

START_TEST(stats_count_and_reset_clears)
{
    const char *args[] = {"--rate-limit-every", "4", NULL};
    fake_start(args);
    ck_assert_int_eq(put_contact(1, "a"), 201);
    ck_assert_int_eq(put_contact(1, "a"), 200); /* replay */
    ck_assert_int_eq(put_contact(1, "b"), 200);
    ck_assert_int_eq(put_contact(2, NULL), 429);
    ck_assert_int_eq(status_of("POST", "/tasks/batch", "[{\"key\":\"t1\"},{\"key\":\"t2\"}]", NULL),
                     200);
    ck_assert_int_eq(status_of("DELETE", "/contacts/k1", NULL, NULL), 405); /* not data */
    cJSON *s = state(1);
    ck_assert_ptr_null(at(s, "entities/contacts/items"));
    ck_assert_int_eq(num(s, "entities/contacts/count"), 1);
    ck_assert_int_eq(num(s, "entities/tasks/count"), 2);
    ck_assert_int_eq(num(s, "requests"), 6);
    ck_assert_int_eq(num(s, "stats/data_requests"), 5);
    ck_assert_int_eq(num(s, "stats/by_status/201"), 1);
    ck_assert_int_eq(num(s, "stats/by_status/200"), 3);
    ck_assert_int_eq(num(s, "stats/by_status/429"), 1);
    ck_assert_int_eq(num(s, "stats/by_status/405"), 1);
    ck_assert_int_eq(num(s, "stats/applied_writes"), 4);
    ck_assert_int_eq(num(s, "stats/replays"), 1);
    ck_assert_int_eq(num(s, "faults/rate-limit-every"), 4);
    cJSON_Delete(s);

    cJSON *r = json_of(call("POST", "/_reset", NULL, NULL), 200);
    ck_assert(cJSON_IsTrue(at(r, "reset")));
    cJSON_Delete(r);
    s = state(0);
    ck_assert_int_eq(cJSON_GetArraySize(at(s, "entities")), 0);
    ck_assert_int_eq(num(s, "requests"), 0);
    ck_assert_int_eq(num(s, "stats/data_requests"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(at(s, "stats/by_status")), 0);
    ck_assert_int_eq(num(s, "faults/rate-limit-every"), 4); /* settings survive a reset */
    cJSON_Delete(s);
    r = json_of(call("PUT", "/contacts/new", "{}", NULL), 201);
    ck_assert_str_eq(str(r, "id"), "1"); /* remote ids start again */
    cJSON_Delete(r);
}
END_TEST

START_TEST(admin_needs_the_token_and_is_never_faulted)
{
    const char *args[] = {"--fail-rate", "1",      "--reset-rate",     "1", "--auth-fail",
                          "--delay-ms",  "600000", "--malformed-rate", "1", "--rate-limit-every",
                          "1",           NULL};
    fake_start(args);
    call_timeout_ms = 5000; /* admin calls must answer well before a delayed one would */
    cJSON_Delete(state(0));
    cJSON_Delete(state(1));
    cJSON_Delete(json_of(call("GET", "/_faults", NULL, NULL), 200));
    ck_assert_int_eq(status_of("GET", "/_items/contacts/x", NULL, NULL), 404);
    cJSON_Delete(json_of(call("POST", "/_reset", NULL, NULL), 200));

    /* Without the token: 401 everywhere. */
    static const char *const routes[][2] = {{"GET", "/_faults"},
                                            {"POST", "/_faults"},
                                            {"DELETE", "/_faults"},
                                            {"GET", "/_items/contacts/x"},
                                            {"POST", "/_reset"}};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(routes); i++) {
        const char *body = strcmp(routes[i][0], "GET") == 0 ? NULL : "{}";
        struct odsync_http_response *r = call_as(routes[i][0], routes[i][1], body, NULL, NULL);
        ck_assert_msg(r->status == 401, "%s %s: %d", routes[i][0], routes[i][1], r->status);
        http_response_free(r);
        r = call_as(routes[i][0], routes[i][1], body, "wrong-token", NULL);
        ck_assert_int_eq(r->status, 401);
        http_response_free(r);
    }
    struct odsync_http_response *r = call_as("GET", "/_state", NULL, NULL, NULL);
    ck_assert_int_eq(r->status, 401);
    http_response_free(r);
    r = call_as("GET", "/_state", NULL, "wrong-token", NULL);
    ck_assert_int_eq(r->status, 401);
    http_response_free(r);
    ck_assert_int_eq(status_of("PUT", "/_state", "{}", NULL), 405);
    /* None of that counts as a request. */
    ck_assert_int_eq(stat_of("data_requests"), 0);
    cJSON *s = state(1);
    ck_assert_int_eq(num(s, "requests"), 0);
    cJSON_Delete(s);
}
END_TEST

START_TEST(command_line)
{
    char *path = tu_build_path("contrib/fakes/fake_rest_crm"), *out = NULL, *err = NULL;
    const char *help[] = {path, "--help", NULL};
    ck_assert_int_eq(tu_run(help, NULL, &out, &err), 0);
    static const char *const flags[] = {"--token",      "--listen",           "--db",
                                        "--fail-rate",  "--rate-limit-every", "--retry-after",
                                        "--reset-rate", "--reset-after-rate", "--delay-ms",
                                        "--auth-fail",  "--malformed-rate",   "--seed"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(flags); i++)
        ck_assert_msg(strstr(out, flags[i]) != NULL, "--help lacks %s", flags[i]);
    free(out);
    free(err);

    static const char *const bad[][4] = {
        {"--token", TOKEN, "--bogus", NULL},           {"--token", TOKEN, "--fail-rate", "1.5"},
        {"--token", TOKEN, "--fail-rate", "x"},        {"--token", TOKEN, "--delay-ms", "-1"},
        {"--token", TOKEN, "--fail_rate", "0.5"},      {"--token", TOKEN, "--auth-fail=1", NULL},
        {"--token", TOKEN, "--listen", "localhost:1"}, {"--token", TOKEN, "--seed", NULL},
        {"--listen", "127.0.0.1:0", NULL, NULL},       {"stray", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        const char *argv[6] = {path, bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL};
        ck_assert_int_eq(tu_run(argv, NULL, &out, &err), 2);
        ck_assert_str_eq(out, "");
        ck_assert_msg(strncmp(err, "fake_rest_crm: ", 15) == 0, "case %zu: %s", i, err);
        free(out);
        free(err);
    }
    free(path);

    /* "--name=value" works too. */
    const char *eq[] = {"--rate-limit-every=1", "--retry-after=9", NULL};
    fake_start(eq);
    struct odsync_http_response *r = call("PUT", "/contacts/k", "{}", NULL);
    ck_assert_int_eq(r->status, 429);
    ck_assert_str_eq(http_response_header(r, "Retry-After"), "9");
    http_response_free(r);
}
END_TEST

/* A client thread: PUT /contacts/t<base+i> for i in [0, 250). */
static void *client_thread(void *arg)
{
    int base = *(const int *)arg, bad = 0;
    struct http_client *c = http_client_create();
    char url[128], auth[] = "Bearer " TOKEN;
    struct odsync_http_header h = {"Authorization", auth};
    for (int i = 0; i < 250 && c != NULL; i++) {
        struct odsync_http_response *resp = NULL;
        util_fmt(url, sizeof(url), "http://127.0.0.1:%d/contacts/t%d", fake_port, base + i);
        struct odsync_http_request req = {.struct_size = sizeof(req),
                                          .method = "PUT",
                                          .url = url,
                                          .headers = &h,
                                          .header_count = 1,
                                          .body = "{\"a\":1}",
                                          .body_len = 7,
                                          .timeout_ms = 20000};
        http_client_perform(c, &req, &resp);
        bad += resp == NULL || resp->status != 201;
        http_response_free(resp);
    }
    http_client_destroy(c);
    return (void *)(intptr_t)(c == NULL ? -1 : bad);
}

START_TEST(concurrent_clients)
{
    pthread_t t[4];
    int base[4];
    fake_start(NULL);
    for (int i = 0; i < 4; i++) {
        base[i] = i * 1000;
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_thread, &base[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *bad;
        ck_assert_int_eq(pthread_join(t[i], &bad), 0);
        ck_assert_int_eq((int)(intptr_t)bad, 0);
    }
    cJSON *s = state(0);
    ck_assert_int_eq(num(s, "entities/contacts/count"), 1000);
    ck_assert_int_eq(num(s, "requests"), 1000);
    ck_assert_int_eq(num(s, "stats/applied_writes"), 1000);
    /* Remote ids are unique and dense. */
    char seen[1001] = {0};
    const cJSON *item;
    cJSON_ArrayForEach(item, at(s, "entities/contacts/items"))
    {
        int64_t id;
        ck_assert_int_eq(util_parse_i64(str(item, "id"), 1, 1000, &id), ODSYNC_OK);
        ck_assert(!seen[id]);
        seen[id] = 1;
    }
    cJSON_Delete(s);
}
END_TEST

static Suite *fake_rest_crm_suite(void)
{
    Suite *s = suite_create("fake_rest_crm");
    TCase *tc = tcase_create("fake_rest_crm");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, put_creates_updates_and_replays);
    tcase_add_test(tc, batch_answers_one_result_per_item);
    tcase_add_test(tc, items_endpoint_shows_one_item);
    tcase_add_test(tc, db_persists_across_restart);
    tcase_add_test(tc, reject_is_422_and_bad_json_400);
    tcase_add_test(tc, fail_rate_one_answers_500_and_stores_nothing);
    tcase_add_test(tc, rate_limit_every_second_request);
    tcase_add_test(tc, reset_before_and_after_the_write);
    tcase_add_test(tc, rates_are_deterministic_per_seed);
    tcase_add_test(tc, delay_slows_data_requests_only);
    tcase_add_test(tc, auth_fail_answers_401_whatever_the_token);
    tcase_add_test(tc, malformed_rate_answers_200_not_json);
    tcase_add_test(tc, faults_change_at_run_time);
    tcase_add_test(tc, stats_count_and_reset_clears);
    tcase_add_test(tc, admin_needs_the_token_and_is_never_faulted);
    tcase_add_test(tc, command_line);
    tcase_add_test(tc, concurrent_clients);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(fake_rest_crm_suite)
