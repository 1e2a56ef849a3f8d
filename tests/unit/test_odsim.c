/*
 * test_odsim: contrib/odsim (the Open Dental REST API v1 simulator) as a real process on
 * loopback, driven through core/http_client: ODFHIR auth and Content-Type, paging and the
 * page cap, serverDateTime placement and the DateTStamp filter (>= and --gt; ignored on
 * /recalls), wire formats, deterministic generation, throttle (delay and reject, violation
 * counting), eConnector down, 504 and slow answers, version too old, DateTStamp moving only
 * on real changes, deleted appointments, recall upkeep, commlogs and PUT /recalls/Status,
 * subscriptions, several offices, and the command line. Each test starts its own simulator
 * with a few hundred patients; every stop asserts a clean exit 0 (leak-free under ASan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "util.h"

#include "../support/odsim_harness.h"
#include "../support/testutil.h"

#define DEV   "NFF6i0KrXrxDkZHt"
#define CUST  "VzkmZEaUWOjnQX2z"
#define AUTH  "ODFHIR " DEV "/" CUST
#define CLOCK "2026-11-27 09:00:00"

static pid_t sim_pid;           /* running simulator, or 0 */
static int sim_port;            /* its port */
static char *dir;               /* per-test temporary directory */
static struct http_client *cli; /* per test */
static char sim_err[4096];      /* the simulator's stderr, kept in dir */

static void setup(void)
{
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    cli = http_client_create();
    ck_assert_ptr_nonnull(cli);
    dir = tu_mkdtemp();
    ck_assert_int_eq(util_fmt(sim_err, sizeof(sim_err), "%s/odsim.log", dir), ODSYNC_OK);
    sim_pid = 0;
}

/* Stop the running simulator and require exit status 0. */
static void sim_stop(void)
{
    int status = tu_stop(sim_pid);
    sim_pid = 0;
    ck_assert_msg(status == 0, "odsim exited with %d", status);
}

static void teardown(void)
{
    if (sim_pid > 0)
        sim_stop();
    http_client_destroy(cli);
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
}

/* Start odsim with 200 patients, seed 42, CLOCK and the extra arguments. */
static void sim_start(const char *const *extra)
{
    sim_pid = odh_start("200", "42", CLOCK, extra, sim_err, &sim_port);
}

/* Perform method on path with the given Authorization and Content-Type (NULL: none). Caller
 * frees the response. */
static struct odsync_http_response *call_raw(const char *method, const char *path, const char *body,
                                             const char *auth, const char *ctype)
{
    return odh_call(cli, sim_port, method, path, body, auth, ctype);
}

/* A correctly authenticated JSON call. */
static struct odsync_http_response *call(const char *method, const char *path, const char *body)
{
    return call_raw(method, path, body, AUTH, "application/json");
}

/* Parse the body, assert the status; frees the response. Caller frees with cJSON_Delete. */
static cJSON *json_of(struct odsync_http_response *r, int want)
{
    return odh_json(r, want);
}

/* GET path (authenticated) and return its JSON (status 200). */
static cJSON *get(const char *path)
{
    return json_of(call("GET", path, NULL), 200);
}

/* An admin call, JSON result with status want. */
static cJSON *admin(const char *method, const char *path, const char *body, int want)
{
    return json_of(call_raw(method, path, body, NULL, NULL), want);
}

static int status_of(struct odsync_http_response *r)
{
    int s = r->status;
    http_response_free(r);
    return s;
}

/* The string member name of j (asserted to be a string). Borrowed from j. */
static const char *str(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", name);
    return v->valuestring;
}

static long long num(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", name);
    return (long long)v->valuedouble;
}

/* Assert r is status want with a JSON string body equal to msg (NULL: any string). */
static void expect_error(struct odsync_http_response *r, int want, const char *msg)
{
    cJSON *j = json_of(r, want);
    ck_assert_msg(cJSON_IsString(j), "error body is not a JSON string");
    if (msg != NULL)
        ck_assert_str_eq(j->valuestring, msg);
    cJSON_Delete(j);
}

/* The stats of office 1. */
static cJSON *stats(void)
{
    return admin("GET", "/_admin/stats?office=1", NULL, 200);
}

START_TEST(auth_and_content_type)
{
    sim_start(NULL);
    const char *bad[] = {"Basic abc",
                         "ODFHIR " DEV,
                         "ODFHIR " DEV "/" CUST "/x",
                         "odfhir " DEV "/" CUST,
                         "ODFHIR  " DEV "/" CUST,
                         "ODFHIR wrongdevkey0000/" CUST,
                         "ODFHIR " DEV "/unknowncustomer1",
                         "ODFHIR /" CUST,
                         NULL};
    expect_error(call_raw("GET", "/api/v1/patients/1", NULL, NULL, "application/json"), 401, NULL);
    for (int i = 0; bad[i] != NULL; i++) {
        struct odsync_http_response *r =
            call_raw("GET", "/api/v1/patients/1", NULL, bad[i], "application/json");
        ck_assert_msg(r->status == 401, "\"%s\" answered %d", bad[i], r->status);
        expect_error(r, 401, NULL);
    }
    /* Content-Type is required on every request, GET included. */
    expect_error(call_raw("GET", "/api/v1/patients/1", NULL, AUTH, NULL), 400, NULL);
    expect_error(call_raw("GET", "/api/v1/patients/1", NULL, AUTH, "text/plain"), 400, NULL);
    ck_assert_int_eq(status_of(call_raw("GET", "/api/v1/patients/1", NULL, AUTH,
                                        "application/json; charset=utf-8")),
                     200);
    cJSON *p = get("/api/v1/patients/1");
    ck_assert_int_eq(num(p, "PatNum"), 1);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(p, "serverDateTime"));
    cJSON_Delete(p);
    expect_error(call("GET", "/api/v1/patients/99999", NULL), 404, "Patient not found");
    expect_error(call("GET", "/api/v1/nosuchthing", NULL), 404, NULL);
    /* Counted per office, endpoint and status. */
    cJSON *s = stats();
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(s, "by_endpoint"), "GET /patients/{PatNum}");
    ck_assert_int_eq(num(ep, "200"), 2);
    ck_assert_int_eq(num(ep, "404"), 1);
    ck_assert_int_eq(num(ep, "400"), 2);
    cJSON_Delete(s);
}
END_TEST

START_TEST(paging_limit_offset_and_clamp)
{
    sim_start(NULL);
    cJSON *all = cJSON_CreateArray();
    int total = 0;
    for (int off = 0;; off += 100) {
        char path[128];
        util_fmt(path, sizeof(path), "/api/v1/patients/Simple?Offset=%d", off);
        cJSON *page = get(path);
        int n = cJSON_GetArraySize(page);
        ck_assert_int_le(n, 100);
        for (int i = 0; i < n; i++) {
            /* Primary-key order, no gaps or repeats. */
            ck_assert_int_eq(num(cJSON_GetArrayItem(page, i), "PatNum"), total + 1);
            total++;
        }
        cJSON_Delete(page);
        if (n < 100)
            break;
    }
    ck_assert_int_eq(total, 200);
    cJSON_Delete(all);

    cJSON *p = get("/api/v1/patients/Simple?Limit=500");
    ck_assert_int_eq(cJSON_GetArraySize(p), 100); /* clamped to the remote cap */
    cJSON_Delete(p);
    p = get("/api/v1/patients/Simple?limit=7&offset=3"); /* names are case-insensitive */
    ck_assert_int_eq(cJSON_GetArraySize(p), 7);
    ck_assert_int_eq(num(cJSON_GetArrayItem(p, 0), "PatNum"), 4);
    cJSON_Delete(p);
    struct odsync_http_response *r = call("GET", "/api/v1/patients/Simple?Offset=200", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "[]");
    http_response_free(r);
    expect_error(call("GET", "/api/v1/appointments?Limit=abc", NULL), 400, NULL);
    sim_stop();

    const char *local[] = {"--mode", "local", "--patients", "1500", NULL};
    sim_start(local);
    p = get("/api/v1/patients/Simple?Limit=5000");
    ck_assert_int_eq(cJSON_GetArraySize(p), 1000);
    cJSON_Delete(p);
}
END_TEST

START_TEST(shuffle_keeps_pages_disjoint)
{
    const char *args[] = {"--shuffle", NULL};
    sim_start(args);
    char seen[201] = {0};
    int sorted = 1;
    long long prev = 0;
    for (int off = 0; off < 200; off += 50) {
        char path[96];
        util_fmt(path, sizeof(path), "/api/v1/patients?Limit=50&Offset=%d", off);
        cJSON *page = get(path);
        ck_assert_int_eq(cJSON_GetArraySize(page), 50);
        for (int i = 0; i < 50; i++) {
            long long pn = num(cJSON_GetArrayItem(page, i), "PatNum");
            ck_assert(pn >= 1 && pn <= 200 && !seen[pn]);
            seen[pn] = 1;
            sorted &= pn > prev;
            prev = pn;
        }
        cJSON_Delete(page);
    }
    ck_assert(!sorted);
}
END_TEST

/* The DateTStamp of the row at index i of a list. Copied into out. */
static void stamp_at(const cJSON *list, int i, char *out, size_t len)
{
    util_fmt(out, len, "%s", str(cJSON_GetArrayItem(list, i), "DateTStamp"));
}

START_TEST(server_datetime_and_datetstamp_filter)
{
    sim_start(NULL);
    cJSON *p = get("/api/v1/patients/Simple?Limit=1");
    const cJSON *first = cJSON_GetArrayItem(p, 0)->child;
    ck_assert_str_eq(first->string, "serverDateTime");
    ck_assert_int_eq(strncmp(first->valuestring, "2026-11-27 09:0", 15), 0); /* the clock runs */
    cJSON_Delete(p);

    /* >= by default: a row's own stamp selects it. */
    cJSON *all = get("/api/v1/patients/Simple?Offset=150");
    char stamp[32], path[160];
    stamp_at(all, 0, stamp, sizeof(stamp));
    cJSON_Delete(all);
    util_fmt(path, sizeof(path), "/api/v1/patients/Simple?DateTStamp=%.10s%%20%s&Limit=100", stamp,
             stamp + 11);
    int n = 0, found = 0;
    for (int off = 0;; off += 100) {
        char pg[200];
        util_fmt(pg, sizeof(pg), "%s&Offset=%d", path, off);
        cJSON *page = get(pg);
        int k = cJSON_GetArraySize(page);
        for (int i = 0; i < k; i++) {
            const cJSON *row = cJSON_GetArrayItem(page, i);
            ck_assert_str_ge(str(row, "DateTStamp"), stamp);
            found |= num(row, "PatNum") == 151;
        }
        n += k;
        cJSON_Delete(page);
        if (k < 100)
            break;
    }
    ck_assert(found);
    ck_assert_int_lt(n, 200);
    expect_error(call("GET", "/api/v1/patients/Simple?DateTStamp=2026-01-01", NULL), 400,
                 "DateTStamp format must be yyyy-MM-dd HH:mm:ss");

    /* /recalls has no change filter: DateTStamp is ignored. */
    cJSON *r = get("/api/v1/recalls?DateTStamp=2100-01-01%2000:00:00");
    ck_assert_int_gt(cJSON_GetArraySize(r), 0);
    ck_assert_ptr_null(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r, 0), "serverDateTime"));
    cJSON_Delete(r);
    /* Appointments carry serverDateTime first, procedurelogs last. */
    cJSON *a = get("/api/v1/appointments?Limit=1");
    ck_assert_str_eq(cJSON_GetArrayItem(a, 0)->child->string, "serverDateTime");
    cJSON_Delete(a);
    cJSON *pl = get("/api/v1/procedurelogs?Limit=1");
    const cJSON *last = cJSON_GetArrayItem(pl, 0)->child;
    while (last->next != NULL)
        last = last->next;
    ck_assert_str_eq(last->string, "serverDateTime");
    cJSON_Delete(pl);
    sim_stop();

    /* --gt: the row's own stamp no longer selects it. */
    const char *gt[] = {"--gt", NULL};
    sim_start(gt);
    cJSON *one = get("/api/v1/patients/151");
    util_fmt(stamp, sizeof(stamp), "%s", str(one, "DateTStamp"));
    cJSON_Delete(one);
    util_fmt(path, sizeof(path), "/api/v1/patients/Simple?DateTStamp=%.10s%%20%s&PatStatus=%s",
             stamp, stamp + 11, "Patient");
    for (int off = 0;; off += 100) {
        char pg[220];
        util_fmt(pg, sizeof(pg), "%s&Offset=%d", path, off);
        cJSON *page = get(pg);
        int k = cJSON_GetArraySize(page);
        for (int i = 0; i < k; i++) {
            ck_assert_str_gt(str(cJSON_GetArrayItem(page, i), "DateTStamp"), stamp);
            ck_assert_int_ne(num(cJSON_GetArrayItem(page, i), "PatNum"), 151);
        }
        cJSON_Delete(page);
        if (k < 100)
            break;
    }
}
END_TEST

/* 1 when s is M/d/yyyy. */
static int is_mdy(const char *s)
{
    int m, d, y;
    char tail;
    return sscanf(s, "%d/%d/%d%c", &m, &d, &y, &tail) == 3 && m >= 1 && m <= 12 && d >= 1 &&
           d <= 31 && y > 1900 && strchr(s, '-') == NULL;
}

START_TEST(wire_formats)
{
    sim_start(NULL);
    cJSON *a = get("/api/v1/appointments?Limit=100");
    const cJSON *row;
    cJSON_ArrayForEach(row, a)
    {
        ck_assert(strcmp(str(row, "TimeLocked"), "false") == 0 ||
                  strcmp(str(row, "TimeLocked"), "true") == 0);
        ck_assert_str_eq(str(row, "colorOverride"), "0,0,0");
        ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(row, "confirmed")));
        ck_assert(strchr(str(row, "Note"), '\n') == NULL && strchr(str(row, "Note"), '\r') == NULL);
        ck_assert_uint_eq(strlen(str(row, "AptDateTime")), 19);
    }
    cJSON_Delete(a);
    cJSON *pl = get("/api/v1/procedurelogs?ProcStatus=C&Limit=5");
    cJSON_ArrayForEach(row, pl)
    {
        ck_assert(strchr(str(row, "ProcFee"), '.') != NULL); /* "95.00" */
        ck_assert_str_eq(str(row, "ProcStatus"), "C");
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(row, "Discount")));
    }
    cJSON_Delete(pl);
    /* Some birthdates are unknown: 0001-01-01. */
    int unknown = 0;
    for (int off = 0; off < 200; off += 100) {
        char path[96];
        util_fmt(path, sizeof(path), "/api/v1/patients/Simple?Offset=%d", off);
        cJSON *p = get(path);
        cJSON_ArrayForEach(row, p)
        {
            unknown += strcmp(str(row, "Birthdate"), "0001-01-01") == 0;
            ck_assert_str_eq(str(row, "AdmitDate"), "0001-01-01");
            ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(row, "EstBalance")));
            const char *pm = str(row, "Premed");
            ck_assert(strcmp(pm, "true") == 0 || strcmp(pm, "false") == 0);
            const char *ok = str(row, "TxtMsgOk");
            ck_assert(strcmp(ok, "Yes") == 0 || strcmp(ok, "No") == 0 ||
                      strcmp(ok, "Unknown") == 0);
        }
        cJSON_Delete(p);
    }
    ck_assert_int_gt(unknown, 0);
    /* The EstBalance of the doc example prints as 0.0. */
    struct odsync_http_response *r = call("GET", "/api/v1/patients/Simple?Limit=50", NULL);
    ck_assert_ptr_nonnull(strstr(r->body, "\"EstBalance\":0.0"));
    http_response_free(r);

    cJSON *list = get("/api/v1/recalls/List?IncludeReminded=true");
    ck_assert_int_gt(cJSON_GetArraySize(list), 0);
    int dated = 0;
    cJSON_ArrayForEach(row, list)
    {
        const char *due = str(row, "DueDate");
        ck_assert(due[0] == '\0' || is_mdy(due));
        dated += due[0] != '\0';
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(row, "PatNum")));
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(row, "ClinicNum")));
        (void)str(row, "Age");
        (void)str(row, "NumRemind");
        ck_assert_ptr_nonnull(strchr(str(row, "Patient"), ','));
    }
    ck_assert_int_gt(dated, 0);
    cJSON_Delete(list);
    cJSON *c = get("/api/v1/commlogs?Limit=3");
    cJSON_ArrayForEach(row, c)
    {
        (void)str(row, "CommType"); /* a number as a string */
        (void)str(row, "commType");
    }
    cJSON_Delete(c);
    cJSON *cl = get("/api/v1/clinics");
    ck_assert_int_ge(cJSON_GetArraySize(cl), 2);
    cJSON_ArrayForEach(row, cl) ck_assert_str_eq(str(row, "IsHidden"), "false");
    cJSON_Delete(cl);
    cJSON *pref = get("/api/v1/preferences?PrefName=RecallDaysPast");
    ck_assert_int_eq(cJSON_GetArraySize(pref), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(pref, 0), "ValueString"), "365");
    cJSON_Delete(pref);
}
END_TEST

/* GET /_admin/dump of table as text (caller frees with free()). */
static char *dump(const char *table)
{
    char path[96];
    util_fmt(path, sizeof(path), "/_admin/dump?office=1&table=%s", table);
    struct odsync_http_response *r = call_raw("GET", path, NULL, NULL, NULL);
    ck_assert_int_eq(r->status, 200);
    char *out = strdup(r->body);
    http_response_free(r);
    return out;
}

START_TEST(same_seed_same_data)
{
    static const char *const tables[] = {"patients",      "recalls", "appointments",
                                         "procedurelogs", "clinics", "histappointments",
                                         "commlogs"};
    char *first[7];
    sim_start(NULL);
    for (int i = 0; i < 7; i++)
        first[i] = dump(tables[i]);
    sim_stop();
    sim_start(NULL);
    for (int i = 0; i < 7; i++) {
        char *again = dump(tables[i]);
        ck_assert_msg(strcmp(first[i], again) == 0, "%s differs", tables[i]);
        ck_assert_int_gt(tu_count(again, "{"), 0);
        free(again);
    }
    sim_stop();
    const char *other[] = {"--seed", "43", NULL};
    sim_start(other);
    char *diff = dump("patients");
    ck_assert(strcmp(first[0], diff) != 0);
    free(diff);
    for (int i = 0; i < 7; i++)
        free(first[i]);
}
END_TEST

START_TEST(throttle_delay_holds_requests)
{
    const char *args[] = {"--throttle", "400", NULL};
    sim_start(args);
    int64_t t0 = util_monotonic_ms();
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(status_of(call("GET", "/api/v1/clinics", NULL)), 200);
    int64_t took = util_monotonic_ms() - t0;
    ck_assert_int_ge(took, 3 * 400 - 50);
    cJSON *s = stats();
    ck_assert_int_eq(num(s, "throttle_violations"), 3);
    ck_assert_int_eq(num(s, "requests"), 4);
    cJSON_Delete(s);
    /* Spaced requests are no violations. */
    cJSON_Delete(admin("POST", "/_admin/stats/reset", NULL, 200));
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"throttle_ms\":150}", 200));
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(status_of(call("GET", "/api/v1/clinics", NULL)), 200);
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    s = stats();
    ck_assert_int_eq(num(s, "throttle_violations"), 0);
    cJSON_Delete(s);
}
END_TEST

START_TEST(throttle_reject_answers_429)
{
    const char *args[] = {"--throttle", "1000", "--over-limit", "reject", NULL};
    sim_start(args);
    ck_assert_int_eq(status_of(call("GET", "/api/v1/clinics", NULL)), 200);
    struct odsync_http_response *r = call("GET", "/api/v1/clinics", NULL);
    ck_assert_int_eq(r->status, 429);
    ck_assert_str_eq(http_response_header(r, "Retry-After"), "1");
    ck_assert_int_eq(r->retry_after_ms, 1000);
    expect_error(r, 429, NULL);
    struct timespec ts = {1, 50 * 1000000L};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(status_of(call("GET", "/api/v1/clinics", NULL)), 200);
    cJSON *s = stats();
    ck_assert_int_eq(num(s, "throttle_violations"), 1);
    ck_assert_int_eq(num(cJSON_GetObjectItemCaseSensitive(s, "by_status"), "429"), 1);
    cJSON_Delete(s);
    /* Local mode has no throttle. */
    sim_stop();
    const char *local[] = {"--throttle", "1000", "--over-limit", "reject", "--mode", "local", NULL};
    sim_start(local);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(status_of(call("GET", "/api/v1/clinics", NULL)), 200);
}
END_TEST

START_TEST(econnector_down_and_version_too_old)
{
    const char *args[] = {"--econnector-down", NULL};
    sim_start(args);
    expect_error(call("GET", "/api/v1/patients/Simple", NULL), 400,
                 "The office's eConnector is not running. Please contact the office to start "
                 "their eConnector.");
    expect_error(call("PUT", "/api/v1/patients/1", "{\"TxtMsgOk\":\"No\"}"), 400,
                 "The office's eConnector is not running. Please contact the office to start "
                 "their eConnector.");
    cJSON *f = admin("POST", "/_admin/faults?office=1",
                     "{\"econnector_down\":false,\"version_too_old\":[\"GET /recalls\"]}", 200);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(f, "econnector_down")));
    cJSON_Delete(f);
    ck_assert_int_eq(status_of(call("GET", "/api/v1/patients/Simple", NULL)), 200);
    struct odsync_http_response *r = call("GET", "/api/v1/recalls", NULL);
    ck_assert_int_eq(r->status, 400);
    ck_assert_ptr_nonnull(strstr(r->body, "22.4.40"));
    http_response_free(r);
    ck_assert_int_eq(status_of(call("GET", "/api/v1/recalls/List", NULL)), 200);
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"version_too_old\":[\"/nope\"]}", 400));
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"bogus\":1}", 400));
}
END_TEST

START_TEST(slow_and_504)
{
    const char *args[] = {"--slow-ms", "300", NULL};
    sim_start(args);
    int64_t t0 = util_monotonic_ms();
    ck_assert_int_eq(status_of(call("GET", "/api/v1/clinics", NULL)), 200);
    ck_assert_int_ge(util_monotonic_ms() - t0, 290);
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"timeout_504_ms\":150}", 200));
    t0 = util_monotonic_ms();
    expect_error(call("GET", "/api/v1/clinics", NULL), 504, NULL);
    int64_t took = util_monotonic_ms() - t0;
    ck_assert_int_ge(took, 140);
    ck_assert_int_lt(took, 290);
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"slow_ms\":0,\"timeout_504_ms\":0}", 200));
    ck_assert_int_eq(status_of(call("GET", "/api/v1/clinics", NULL)), 200);
    cJSON *s = stats();
    ck_assert_int_eq(num(cJSON_GetObjectItemCaseSensitive(s, "by_status"), "504"), 1);
    cJSON_Delete(s);
}
END_TEST

START_TEST(datetstamp_moves_only_on_real_changes)
{
    sim_start(NULL);
    cJSON_Delete(
        admin("POST", "/_admin/clock", "{\"set\":\"2026-11-27 10:00:00\",\"freeze\":true}", 200));
    cJSON *p = get("/api/v1/patients/7");
    const char *want = strcmp(str(p, "TxtMsgOk"), "No") == 0 ? "Yes" : "No";
    char put[64], before[32];
    util_fmt(before, sizeof(before), "%s", str(p, "DateTStamp"));
    cJSON_Delete(p);
    ck_assert_str_lt(before, "2026-11-27 00:00:00");

    /* A no-op PUT keeps DateTStamp. */
    cJSON *same = get("/api/v1/patients/7");
    util_fmt(put, sizeof(put), "{\"TxtMsgOk\":\"%s\"}", str(same, "TxtMsgOk"));
    cJSON_Delete(same);
    p = json_of(call("PUT", "/api/v1/patients/7", put), 200);
    ck_assert_str_eq(str(p, "DateTStamp"), before);
    cJSON_Delete(p);

    util_fmt(put, sizeof(put), "{\"TxtMsgOk\":\"%s\"}", want);
    p = json_of(call("PUT", "/api/v1/patients/7", put), 200);
    ck_assert_str_eq(str(p, "TxtMsgOk"), want);
    ck_assert_str_eq(str(p, "DateTStamp"), "2026-11-27 10:00:00");
    cJSON_Delete(p);

    cJSON_Delete(admin("POST", "/_admin/clock", "{\"advance_s\":60}", 200));
    cJSON *ch = admin("POST", "/_admin/patients/7/txtmsgok",
                      strcmp(want, "No") == 0 ? "{\"value\":\"No\"}" : "{\"value\":\"Yes\"}", 200);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(ch, "changed")));
    ck_assert_str_eq(str(cJSON_GetObjectItemCaseSensitive(ch, "row"), "DateTStamp"),
                     "2026-11-27 10:00:00");
    cJSON_Delete(ch);
    ch = admin("POST", "/_admin/patients/7/txtmsgok", "{\"value\":\"Unknown\"}", 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ch, "changed")));
    ck_assert_str_eq(str(cJSON_GetObjectItemCaseSensitive(ch, "row"), "DateTStamp"),
                     "2026-11-27 10:01:00");
    cJSON_Delete(ch);
    expect_error(call("PUT", "/api/v1/patients/7", "{\"TxtMsgOk\":\"Maybe\"}"), 400, NULL);
    expect_error(call("PUT", "/api/v1/patients/7", "{\"LName\":\"\"}"), 400, NULL);
    expect_error(call("PUT", "/api/v1/patients/9999", "{\"LName\":\"X\"}"), 404,
                 "Patient not found");

    /* The change filter finds exactly the changed patient. */
    cJSON *since = get("/api/v1/patients/Simple?DateTStamp=2026-11-27%2010:01:00");
    ck_assert_int_eq(cJSON_GetArraySize(since), 1);
    ck_assert_int_eq(num(cJSON_GetArrayItem(since, 0), "PatNum"), 7);
    ck_assert_str_eq(str(cJSON_GetArrayItem(since, 0), "serverDateTime"), "2026-11-27 10:01:00");
    cJSON_Delete(since);
}
END_TEST

/* The first Patient-status patient with a Prophy recall that is not booked. */
static long long free_prophy_patient(void)
{
    cJSON *r = get("/api/v1/recalls?Limit=100");
    const cJSON *row;
    long long pat = 0;
    cJSON_ArrayForEach(row, r)
    {
        if (num(row, "RecallTypeNum") != 1 ||
            strcmp(str(row, "DateScheduled"), "0001-01-01") != 0 ||
            strcmp(str(row, "IsDisabled"), "false") != 0)
            continue;
        char path[64];
        util_fmt(path, sizeof(path), "/api/v1/patients/%lld", num(row, "PatNum"));
        cJSON *p = get(path);
        int ok = strcmp(str(p, "PatStatus"), "Patient") == 0;
        cJSON_Delete(p);
        if (ok) {
            pat = num(row, "PatNum");
            break;
        }
    }
    cJSON_Delete(r);
    ck_assert_int_gt(pat, 0);
    return pat;
}

/* The patient's Prophy recall. Caller frees with cJSON_Delete. */
static cJSON *prophy_recall(long long pat)
{
    char path[64];
    util_fmt(path, sizeof(path), "/api/v1/recalls?PatNum=%lld", pat);
    cJSON *r = get(path);
    cJSON *row;
    cJSON *found = NULL;
    cJSON_ArrayForEach(row, r)
    {
        if (found == NULL && num(row, "RecallTypeNum") == 1)
            found = cJSON_Duplicate(row, 1);
    }
    cJSON_Delete(r);
    ck_assert_msg(found != NULL, "patient %lld has no Prophy recall", pat);
    return found;
}

START_TEST(book_complete_and_recall_upkeep)
{
    sim_start(NULL);
    cJSON_Delete(
        admin("POST", "/_admin/clock", "{\"set\":\"2026-11-27 11:00:00\",\"freeze\":true}", 200));
    long long pat = free_prophy_patient();
    char body[160], path[96];
    util_fmt(body, sizeof(body), "{\"PatNum\":%lld,\"AptDateTime\":\"2026-12-03 09:30:00\"}", pat);
    cJSON *b = admin("POST", "/_admin/appointments", body, 201);
    const cJSON *apt = cJSON_GetObjectItemCaseSensitive(b, "row");
    long long aptnum = num(apt, "AptNum");
    ck_assert_str_eq(str(apt, "AptStatus"), "Scheduled");
    ck_assert_str_eq(str(apt, "DateTStamp"), "2026-11-27 11:00:00");
    ck_assert_str_eq(str(apt, "SecDateTEntry"), "2026-11-27 11:00:00");
    cJSON_Delete(b);
    cJSON *rc = prophy_recall(pat);
    ck_assert_str_eq(str(rc, "DateScheduled"), "2026-12-03");
    ck_assert_str_eq(str(rc, "DateTStamp"), "2026-11-27 11:00:00");
    cJSON_Delete(rc);
    util_fmt(path, sizeof(path), "/api/v1/histappointments?AptNum=%lld", aptnum);
    cJSON *h = get(path);
    ck_assert_int_eq(cJSON_GetArraySize(h), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(h, 0), "HistApptAction"), "Created");
    cJSON_Delete(h);

    cJSON_Delete(admin("POST", "/_admin/clock", "{\"set\":\"2026-12-03 10:20:00\"}", 200));
    util_fmt(path, sizeof(path), "/_admin/appointments/%lld/complete", aptnum);
    cJSON *c = admin("POST", path, "{\"procedures\":[\"D0274\"]}", 200);
    apt = cJSON_GetObjectItemCaseSensitive(c, "row");
    ck_assert_str_eq(str(apt, "AptStatus"), "Complete");
    ck_assert_str_eq(str(apt, "DateTimeArrived"), "2026-12-03 09:25:00");
    ck_assert_str_eq(str(apt, "DateTStamp"), "2026-12-03 10:20:00");
    cJSON_Delete(c);
    rc = prophy_recall(pat);
    ck_assert_str_eq(str(rc, "DatePrevious"), "2026-12-03");
    ck_assert_str_eq(str(rc, "DateDue"), "2027-06-04"); /* + 6m1d */
    ck_assert_str_eq(str(rc, "DateScheduled"), "0001-01-01");
    ck_assert_str_eq(str(rc, "DateTStamp"), "2026-12-03 10:20:00");
    cJSON_Delete(rc);
    util_fmt(path, sizeof(path), "/api/v1/procedurelogs?AptNum=%lld", aptnum);
    cJSON *pl = get(path);
    ck_assert_int_eq(cJSON_GetArraySize(pl), 3);
    const cJSON *row;
    cJSON_ArrayForEach(row, pl)
    {
        ck_assert_str_eq(str(row, "ProcStatus"), "C");
        ck_assert_str_eq(str(row, "ProcDate"), "2026-12-03");
    }
    cJSON_Delete(pl);
    cJSON *ap = get("/api/v1/appointments?DateTStamp=2026-12-03%2010:20:00");
    ck_assert_int_eq(cJSON_GetArraySize(ap), 1);
    cJSON_Delete(ap);
    /* A completed appointment cannot be broken or deleted. */
    util_fmt(path, sizeof(path), "/_admin/appointments/%lld/delete", aptnum);
    cJSON_Delete(admin("POST", path, NULL, 400));
    util_fmt(path, sizeof(path), "/api/v1/appointments/%lld/Break", aptnum);
    expect_error(call("PUT", path, "{\"sendToUnscheduledList\":\"false\"}"), 400, NULL);

    /* Recall move. */
    rc = prophy_recall(pat);
    util_fmt(path, sizeof(path), "/_admin/recalls/%lld/move", num(rc, "RecallNum"));
    cJSON_Delete(rc);
    c = admin("POST", path, "{\"DateDue\":\"2027-01-15\"}", 200);
    ck_assert_str_eq(str(cJSON_GetObjectItemCaseSensitive(c, "row"), "DateDue"), "2027-01-15");
    cJSON_Delete(c);
}
END_TEST

START_TEST(deleted_and_broken_appointments)
{
    sim_start(NULL);
    long long pat = free_prophy_patient();
    char body[160], path[96];
    util_fmt(body, sizeof(body), "{\"PatNum\":%lld,\"AptDateTime\":\"2026-12-10 14:00:00\"}", pat);
    cJSON *b = admin("POST", "/_admin/appointments", body, 201);
    long long aptnum = num(cJSON_GetObjectItemCaseSensitive(b, "row"), "AptNum");
    cJSON_Delete(b);
    util_fmt(path, sizeof(path), "/_admin/appointments/%lld/delete", aptnum);
    cJSON_Delete(admin("POST", path, NULL, 200));
    util_fmt(path, sizeof(path), "/api/v1/appointments/%lld", aptnum);
    expect_error(call("GET", path, NULL), 404, "Appointment not found");
    util_fmt(path, sizeof(path), "/api/v1/appointments?PatNum=%lld", pat);
    cJSON *list = get(path);
    const cJSON *row;
    cJSON_ArrayForEach(row, list) ck_assert_int_ne(num(row, "AptNum"), aptnum);
    cJSON_Delete(list);
    util_fmt(path, sizeof(path), "/api/v1/histappointments?HistApptAction=Deleted&AptNum=%lld",
             aptnum);
    cJSON *h = get(path);
    ck_assert_int_eq(cJSON_GetArraySize(h), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(h, 0), "AptStatus"), "Scheduled");
    cJSON_Delete(h);
    cJSON *rc = prophy_recall(pat);
    ck_assert_str_eq(str(rc, "DateScheduled"), "0001-01-01");
    cJSON_Delete(rc);
    /* The generated data already has deleted appointments only in history. */
    h = get("/api/v1/histappointments?HistApptAction=Deleted");
    ck_assert_int_gt(cJSON_GetArraySize(h), 1);
    cJSON_Delete(h);

    /* Break through the REST API: Broken + a Missed history row; Confirm. */
    util_fmt(body, sizeof(body), "{\"PatNum\":%lld,\"AptDateTime\":\"2026-12-11 08:00:00\"}", pat);
    b = admin("POST", "/_admin/appointments", body, 201);
    aptnum = num(cJSON_GetObjectItemCaseSensitive(b, "row"), "AptNum");
    cJSON_Delete(b);
    util_fmt(path, sizeof(path), "/api/v1/appointments/%lld/Confirm", aptnum);
    ck_assert_int_eq(status_of(call("PUT", path, "{\"confirmVal\":\"Confirmed\"}")), 200);
    util_fmt(path, sizeof(path), "/api/v1/appointments/%lld/Break", aptnum);
    ck_assert_int_eq(status_of(call("PUT", path, "{\"sendToUnscheduledList\":\"false\"}")), 200);
    util_fmt(path, sizeof(path), "/api/v1/appointments/%lld", aptnum);
    cJSON *a = get(path);
    ck_assert_str_eq(str(a, "AptStatus"), "Broken");
    ck_assert_str_eq(str(a, "confirmed"), "Confirmed");
    cJSON_Delete(a);
    util_fmt(path, sizeof(path), "/api/v1/histappointments?AptNum=%lld&HistApptAction=Missed",
             aptnum);
    h = get(path);
    ck_assert_int_eq(cJSON_GetArraySize(h), 1);
    cJSON_Delete(h);
}
END_TEST

START_TEST(commlogs_and_recall_status)
{
    sim_start(NULL);
    cJSON_Delete(
        admin("POST", "/_admin/clock", "{\"set\":\"2026-11-27 12:00:00\",\"freeze\":true}", 200));
    struct odsync_http_response *r =
        call("POST", "/api/v1/commlogs",
             "{\"PatNum\":3,\"Mode_\":\"Text\",\"Note\":\"odsync: ref rr-1\\r\\nsent\"}");
    ck_assert_int_eq(r->status, 201);
    const char *loc = http_response_header(r, "location");
    ck_assert_ptr_nonnull(loc);
    ck_assert_ptr_nonnull(strstr(loc, "/api/v1/commlogs/"));
    cJSON *c = json_of(r, 201);
    ck_assert_str_eq(str(c, "Note"), "odsync: ref rr-1 sent");
    ck_assert_str_eq(str(c, "Mode_"), "Text");
    ck_assert_str_eq(str(c, "SentOrReceived"), "Sent");
    ck_assert_str_eq(str(c, "CommType"), "239");
    ck_assert_str_eq(str(c, "CommDateTime"), "2026-11-27 12:00:00");
    cJSON_Delete(c);
    expect_error(call("POST", "/api/v1/commlogs", "{\"PatNum\":3}"), 400, NULL);
    expect_error(
        call("POST", "/api/v1/commlogs", "{\"PatNum\":3,\"Note\":\"x\",\"Mode_\":\"Fax\"}"), 400,
        NULL);

    long long pat = free_prophy_patient();
    char body[200], path[96];
    util_fmt(body, sizeof(body),
             "{\"PatNum\":%lld,\"recallType\":\"Prophy\",\"commlogMode\":\"EmailAndText\","
             "\"commlogNote\":\"reminder ref rr-2\"}",
             pat);
    ck_assert_int_eq(status_of(call("PUT", "/api/v1/recalls/Status", body)), 200);
    util_fmt(path, sizeof(path), "/api/v1/commlogs?PatNum=%lld&DateTStamp=2026-11-27%%2012:00:00",
             pat);
    cJSON *cl = get(path);
    ck_assert_int_eq(cJSON_GetArraySize(cl), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(cl, 0), "Mode_"), "Email and Text");
    ck_assert_str_eq(str(cJSON_GetArrayItem(cl, 0), "commType"), "Recall");
    cJSON_Delete(cl);
    util_fmt(body, sizeof(body), "{\"PatNum\":%lld,\"recallType\":\"Nope\"}", pat);
    expect_error(call("PUT", "/api/v1/recalls/Status", body), 400, NULL);

    /* The reminded patient leaves the Recall List unless IncludeReminded=true. */
    util_fmt(path, sizeof(path),
             "/api/v1/recalls/List?DateStart=2000-01-01&DateEnd=2100-01-01"
             "&RecallType=1&Limit=1000");
    int hidden = 1, shown = 0;
    cJSON *list = get(path);
    const cJSON *row;
    cJSON_ArrayForEach(row, list) hidden &= num(row, "PatNum") != pat;
    cJSON_Delete(list);
    char path2[160];
    util_fmt(path2, sizeof(path2), "%s&IncludeReminded=true", path);
    list = get(path2);
    cJSON_ArrayForEach(row, list)
    {
        if (num(row, "PatNum") == pat) {
            shown = 1;
            ck_assert_str_eq(str(row, "NumRemind"), "1");
            ck_assert_str_eq(str(row, "LastRemind"), "11/27/2026");
        }
    }
    cJSON_Delete(list);
    ck_assert(hidden);
    ck_assert(shown);
}
END_TEST

START_TEST(subscriptions_crud)
{
    const char *args[] = {"--offices", "2", NULL};
    sim_start(args);
    cJSON_Delete(
        admin("POST", "/_admin/clock", "{\"set\":\"2026-11-27 13:00:00\",\"freeze\":true}", 200));
    struct odsync_http_response *r =
        call("POST", "/api/v1/subscriptions",
             "{\"EndPointUrl\":\"https://odsync.example.com/od/events?table=appointment\","
             "\"Workstation\":\"ODSERVER01\",\"WatchTable\":\"Appointment\","
             "\"PollingSeconds\":30,\"DateTimeStart\":\"2025-09-01\"}");
    ck_assert_ptr_nonnull(http_response_header(r, "location"));
    cJSON *s = json_of(r, 201);
    long long num1 = num(s, "SubscriptionNum");
    ck_assert_str_eq(s->child->string, "SubscriptionNum");
    ck_assert_str_eq(str(s, "CustomerKey"), CUST);
    ck_assert_str_eq(str(s, "DateTimeStart"), "2025-09-01 00:00:00");
    ck_assert_str_eq(str(s, "DateTimeStop"), "0001-01-01 00:00:00");
    ck_assert_str_eq(str(s, "UiEventType"), "");
    cJSON_Delete(s);
    /* The same subscription again is a duplicate. */
    expect_error(call("POST", "/api/v1/subscriptions",
                      "{\"EndPointUrl\":\"https://odsync.example.com/od/events?table=appointment\","
                      "\"Workstation\":\"ODSERVER01\",\"WatchTable\":\"Appointment\","
                      "\"PollingSeconds\":30}"),
                 400, NULL);
    /* Recall, Commlog and ProcedureLog are not watchable. */
    static const char *const refused[] = {"Recall", "Commlog", "ProcedureLog", "CommOptOut"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(refused); i++) {
        char body[200];
        util_fmt(body, sizeof(body),
                 "{\"EndPointUrl\":\"https://x.example.com/e\",\"Workstation\":\"W\","
                 "\"WatchTable\":\"%s\",\"PollingSeconds\":30}",
                 refused[i]);
        expect_error(call("POST", "/api/v1/subscriptions", body), 400, NULL);
    }
    expect_error(call("POST", "/api/v1/subscriptions",
                      "{\"EndPointUrl\":\"https://x.example.com/e\",\"WatchTable\":\"Patient\"}"),
                 400, NULL);
    cJSON *list = get("/api/v1/subscriptions");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);

    /* Another office's key does not see it. */
    cJSON *offices = admin("GET", "/_admin/offices", NULL, 200);
    const cJSON *o2 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(offices, "offices"), 1);
    char auth2[128];
    util_fmt(auth2, sizeof(auth2), "ODFHIR %s/%s", DEV, str(o2, "customer_key"));
    ck_assert_str_ne(str(o2, "customer_key"), CUST);
    cJSON_Delete(offices);
    r = call_raw("GET", "/api/v1/subscriptions", NULL, auth2, "application/json");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "[]");
    http_response_free(r);
    char path[96];
    util_fmt(path, sizeof(path), "/api/v1/subscriptions/%lld", num1);
    ck_assert_int_eq(status_of(call_raw("DELETE", path, NULL, auth2, "application/json")), 404);
    /* Office 2 has its own data. */
    r = call_raw("GET", "/api/v1/patients/1", NULL, auth2, "application/json");
    cJSON *p2 = json_of(r, 200);
    cJSON *p1 = get("/api/v1/patients/1");
    ck_assert(strcmp(str(p1, "FName"), str(p2, "FName")) != 0 ||
              strcmp(str(p1, "LName"), str(p2, "LName")) != 0);
    cJSON_Delete(p1);
    cJSON_Delete(p2);

    s = json_of(call("PUT", path, "{\"PollingSeconds\":60,\"Note\":\"x\"}"), 200);
    ck_assert_int_eq(num(s, "PollingSeconds"), 60);
    ck_assert_str_eq(str(s, "Note"), "x");
    cJSON_Delete(s);
    expect_error(call("PUT", path, "{\"WatchTable\":\"Patient\"}"), 400, NULL);
    ck_assert_int_eq(status_of(call("DELETE", path, NULL)), 200);
    expect_error(call("DELETE", path, NULL), 404, "Subscription not found");
}
END_TEST

START_TEST(random_load_and_dump)
{
    sim_start(NULL);
    cJSON *r = admin("POST", "/_admin/random", "{\"count\":100,\"seed\":5}", 200);
    ck_assert_int_eq(num(r, "requested"), 100);
    cJSON_Delete(r);
    char *pats = dump("patients");
    ck_assert_int_ge(tu_count(pats, "\"PatNum\""), 200);
    ck_assert_ptr_null(strstr(pats, "serverDateTime"));
    free(pats);
    cJSON_Delete(admin("GET", "/_admin/dump?table=nope", NULL, 400));
    cJSON *o = admin("GET", "/_admin/offices", NULL, 200);
    ck_assert_str_eq(str(o, "developer_key"), DEV);
    cJSON_Delete(o);
}
END_TEST

START_TEST(command_line)
{
    char *path = tu_build_path("contrib/odsim/odsim");
    char *out = NULL, *err = NULL;
    const char *help[] = {path, "--help", NULL};
    ck_assert_int_eq(tu_run(help, NULL, &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "--throttle"));
    free(out);
    free(err);
    const char *bad[] = {path, "--bogus", NULL};
    ck_assert_int_eq(tu_run(bad, NULL, &out, &err), 2);
    free(out);
    free(err);
    const char *badtz[] = {path, "--tz", "Mars/Olympus", NULL};
    ck_assert_int_eq(tu_run(badtz, NULL, &out, &err), 2);
    free(out);
    free(err);
    const char *keys[] = {path, "--offices", "3", "--print-keys", NULL};
    ck_assert_int_eq(tu_run(keys, NULL, &out, &err), 0);
    ck_assert_int_eq(tu_count(out, "customer-key"), 3);
    ck_assert_ptr_nonnull(strstr(out, "office 1 customer-key " CUST));
    char *again = NULL;
    ck_assert_int_eq(tu_run(keys, NULL, &again, NULL), 0);
    ck_assert_str_eq(out, again); /* derived keys are deterministic */
    free(again);
    free(out);
    free(err);
    free(path);
}
END_TEST

static Suite *odsim_suite(void)
{
    Suite *s = suite_create("odsim");
    TCase *tc = tcase_create("odsim");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, auth_and_content_type);
    tcase_add_test(tc, paging_limit_offset_and_clamp);
    tcase_add_test(tc, shuffle_keeps_pages_disjoint);
    tcase_add_test(tc, server_datetime_and_datetstamp_filter);
    tcase_add_test(tc, wire_formats);
    tcase_add_test(tc, same_seed_same_data);
    tcase_add_test(tc, throttle_delay_holds_requests);
    tcase_add_test(tc, throttle_reject_answers_429);
    tcase_add_test(tc, econnector_down_and_version_too_old);
    tcase_add_test(tc, slow_and_504);
    tcase_add_test(tc, datetstamp_moves_only_on_real_changes);
    tcase_add_test(tc, book_complete_and_recall_upkeep);
    tcase_add_test(tc, deleted_and_broken_appointments);
    tcase_add_test(tc, commlogs_and_recall_status);
    tcase_add_test(tc, subscriptions_crud);
    tcase_add_test(tc, random_load_and_dump);
    tcase_add_test(tc, command_line);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(odsim_suite)
