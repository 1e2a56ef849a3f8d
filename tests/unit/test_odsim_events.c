/*
 * test_odsim_events: the API Events poller of contrib/odsim against a scripted loopback
 * receiver (tests/support/raw_http). odsim runs as a real process with a running clock; a
 * subscription with PollingSeconds 1 points at the receiver; front-desk changes made through
 * /_admin must arrive as POSTs with the exact headers and a JSON array of rows. Covered: the
 * request itself, Patient / Appointment / AppointmentDeleted shapes, a failed window (500 or
 * timeout) coming again, machines (identical duplicates; blank Workstation), drop_next (a
 * gap with DateTimeStart moved), redeliver, batches and out_of_order, paused, the 72-hour
 * cap, the event log and counters, and the command line. Every stop asserts exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "util.h"

#include "../support/raw_http.h"
#include "../support/odsim_harness.h"
#include "../support/testutil.h"

#define DEV   "NFF6i0KrXrxDkZHt"
#define CUST  "VzkmZEaUWOjnQX2z"
#define AUTH  "ODFHIR " DEV "/" CUST
#define CLOCK "2026-11-27 09:00:00"
#define WS    "ODSERVER01"

static pid_t sim_pid;           /* running simulator, or 0 */
static int sim_port;            /* its port */
static char *dir;               /* per-test temporary directory */
static struct http_client *cli; /* per test */
static struct raw_http *rx;     /* the event receiver, per test */
static char sim_err[4096];      /* the simulator's stderr, kept in dir */

static void setup(void)
{
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    cli = http_client_create();
    ck_assert_ptr_nonnull(cli);
    dir = tu_mkdtemp();
    ck_assert_int_eq(util_fmt(sim_err, sizeof(sim_err), "%s/odsim.log", dir), ODSYNC_OK);
    sim_pid = 0;
    ck_assert_int_eq(raw_http_start(&rx), 0);
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
        sim_stop(); /* before the receiver, so no POST is left hanging */
    raw_http_stop(rx);
    http_client_destroy(cli);
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
}

static void nap(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start odsim with 100 patients, seed 42, CLOCK and the extra arguments. */
static void sim_start(const char *const *extra)
{
    sim_pid = odh_start("100", "42", CLOCK, extra, sim_err, &sim_port);
}

/* Perform method on path with the given Authorization and Content-Type (NULL: none). Caller
 * frees the response. */
static struct odsync_http_response *call_raw(const char *method, const char *path, const char *body,
                                             const char *auth, const char *ctype)
{
    return odh_call(cli, sim_port, method, path, body, auth, ctype);
}

/* Parse the body, assert the status; frees the response. Caller frees with cJSON_Delete. */
static cJSON *json_of(struct odsync_http_response *r, int want)
{
    return odh_json(r, want);
}

/* An authenticated REST call answering want. */
static cJSON *api(const char *method, const char *path, const char *body, int want)
{
    return json_of(call_raw(method, path, body, AUTH, "application/json"), want);
}

/* An admin call answering want. */
static cJSON *admin(const char *method, const char *path, const char *body, int want)
{
    return json_of(call_raw(method, path, body, NULL, NULL), want);
}

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

/* Set event settings of office 1 (a JSON object). */
static void events_set(const char *json)
{
    cJSON_Delete(admin("POST", "/_admin/events?office=1", json, 200));
}

/* Subscribe to table with Workstation ws ("" for none) and PollingSeconds 1; the EndPointUrl
 * is the receiver's with a path and query. Returns the SubscriptionNum. */
static long long subscribe(const char *table, const char *ws)
{
    char body[512], wsf[96] = "";
    if (ws[0] != '\0')
        util_fmt(wsf, sizeof(wsf), "\"Workstation\":\"%s\",", ws);
    util_fmt(body, sizeof(body),
             "{\"EndPointUrl\":\"%s/api/od/events/main-st?table=%s\",%s\"WatchTable\":\"%s\","
             "\"PollingSeconds\":1}",
             raw_http_url(rx), table, wsf, table);
    cJSON *s = api("POST", "/api/v1/subscriptions", body, 201);
    long long n = num(s, "SubscriptionNum");
    cJSON_Delete(s);
    return n;
}

/* DateTimeStart of subscription n, into out. */
static void sub_start(long long n, char out[20])
{
    char path[64];
    util_fmt(path, sizeof(path), "/api/v1/subscriptions/%lld", n);
    cJSON *list = api("GET", "/api/v1/subscriptions", NULL, 200);
    const cJSON *e;
    out[0] = '\0';
    cJSON_ArrayForEach(e, list)
    {
        if (num(e, "SubscriptionNum") == n)
            util_fmt(out, 20, "%s", str(e, "DateTimeStart"));
    }
    cJSON_Delete(list);
    ck_assert_msg(out[0] != '\0', "no subscription %s", path);
}

/* Flip patient patnum's TxtMsgOk (No, else Yes): the new value into value, the new
 * DateTStamp into stamp. */
static void flip_txtmsgok(int patnum, char value[8], char stamp[20])
{
    char path[64];
    util_fmt(path, sizeof(path), "/_admin/patients/%d/txtmsgok", patnum);
    cJSON *r = admin("POST", path, "{\"value\":\"No\"}", 200);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "changed"))) {
        cJSON_Delete(r);
        r = admin("POST", path, "{\"value\":\"Yes\"}", 200);
    }
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "changed")));
    const cJSON *row = cJSON_GetObjectItemCaseSensitive(r, "row");
    util_fmt(value, 8, "%s", str(row, "TxtMsgOk"));
    util_fmt(stamp, 20, "%s", str(row, "DateTStamp"));
    cJSON_Delete(r);
}

/* Wait for n recorded requests (8 s). */
static void rx_wait(size_t n)
{
    ck_assert_msg(raw_http_wait_requests(rx, n, 8000) == 0, "%zu event POSTs, want %zu",
                  raw_http_request_count(rx), n);
}

/* 1 when the head of request i holds the header line "\r\n<line>\r\n" exactly. */
static int rx_header(size_t i, const char *line)
{
    const char *req = raw_http_request(rx, i);
    const char *end = strstr(req, "\r\n\r\n");
    char needle[256];
    util_fmt(needle, sizeof(needle), "\r\n%s\r\n", line);
    const char *at = strstr(req, needle);
    return at != NULL && end != NULL && at <= end;
}

/* The JSON body of request i. Caller frees with cJSON_Delete. */
static cJSON *rx_json(size_t i)
{
    const char *req = raw_http_request(rx, i);
    const char *body = strstr(req, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    cJSON *j = cJSON_Parse(body + 4);
    ck_assert_msg(cJSON_IsArray(j), "event body is not an array: %s", body + 4);
    return j;
}

/* The event log of office 1. Caller frees with cJSON_Delete. */
static cJSON *event_log(void)
{
    return admin("GET", "/_admin/events/log?office=1", NULL, 200);
}

/* Entries of the log with this kind. */
static int log_count(const cJSON *log, const char *kind)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(log, "entries"))
    {
        n += strcmp(str(e, "kind"), kind) == 0;
    }
    return n;
}

/* Wait (8 s) until the log holds at least n entries of kind; returns the log. */
static cJSON *log_wait(const char *kind, int n)
{
    for (int i = 0; i < 80; i++) {
        cJSON *log = event_log();
        if (log_count(log, kind) >= n)
            return log;
        cJSON_Delete(log);
        nap(100);
    }
    ck_abort_msg("no %d \"%s\" log entries", n, kind);
    return NULL;
}

/* A counter of office 1. */
static long long counter(const char *name)
{
    cJSON *s = admin("GET", "/_admin/events?office=1", NULL, 200);
    long long v = num(cJSON_GetObjectItemCaseSensitive(s, "counters"), name);
    cJSON_Delete(s);
    return v;
}

START_TEST(patient_change_arrives_with_exact_headers)
{
    char value[8], stamp[20], start[20];
    sim_start(NULL);
    long long sub = subscribe("Patient", WS);
    nap(1500); /* empty windows send nothing */
    ck_assert_uint_eq(raw_http_request_count(rx), 0);
    flip_txtmsgok(7, value, stamp);
    rx_wait(1);
    nap(1500); /* and exactly one POST */
    ck_assert_uint_eq(raw_http_request_count(rx), 1);

    const char *req = raw_http_request(rx, 0);
    ck_assert_msg(strncmp(req, "POST /api/od/events/main-st?table=Patient HTTP/1.1\r\n", 52) == 0,
                  "request line: %.80s", req);
    ck_assert(rx_header(0, "Authorization: " CUST));
    ck_assert(rx_header(0, "Workstation: " WS));
    ck_assert(rx_header(0, "Event-Type: WatchTable: Patient"));
    ck_assert(rx_header(0, "Content-Type: application/json"));
    ck_assert_ptr_null(strstr(req, "ODFHIR"));
    ck_assert_ptr_null(strstr(req, DEV));

    cJSON *body = rx_json(0);
    ck_assert_int_eq(cJSON_GetArraySize(body), 1);
    const cJSON *row = cJSON_GetArrayItem(body, 0);
    ck_assert_str_eq(row->child->string, "PatNum"); /* no serverDateTime */
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(row, "serverDateTime"));
    ck_assert_int_eq(num(row, "PatNum"), 7);
    ck_assert_str_eq(str(row, "TxtMsgOk"), value);
    ck_assert_str_eq(str(row, "DateTStamp"), stamp);
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(row, "priProvAbbr")); /* full set */
    cJSON_Delete(body);

    /* DateTimeStart moved past the change; the log has the attempt. */
    sub_start(sub, start);
    ck_assert_msg(strcmp(start, stamp) > 0, "DateTimeStart %s, change at %s", start, stamp);
    cJSON *log = event_log();
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(log, "entries"), 0);
    ck_assert_str_eq(str(e, "kind"), "post");
    ck_assert_int_eq(num(e, "subscription"), sub);
    ck_assert_str_eq(str(e, "table"), "Patient");
    ck_assert_str_eq(str(e, "workstation"), WS);
    ck_assert_int_eq(num(e, "rows"), 1);
    ck_assert_int_eq(num(e, "attempt"), 1);
    ck_assert_int_eq(num(e, "status"), 200);
    ck_assert(strcmp(str(e, "window_start"), stamp) <= 0);
    ck_assert(strcmp(str(e, "window_end"), stamp) > 0);
    cJSON_Delete(log);
    ck_assert_int_eq(counter("posts"), 1);
    ck_assert_int_eq(counter("rows"), 1);
    ck_assert_int_eq(counter("failures"), 0);
}
END_TEST

START_TEST(failed_window_comes_again)
{
    char value[8], stamp[20];
    sim_start(NULL);
    subscribe("Patient", WS);
    ck_assert_int_eq(raw_http_push_response(rx, 500, NULL, "\"busy\""), 0);
    flip_txtmsgok(3, value, stamp);
    rx_wait(2);
    /* The same window again, byte for byte. */
    ck_assert_str_eq(raw_http_request(rx, 0), raw_http_request(rx, 1));
    cJSON *log = log_wait("post", 2); /* logged once the answer is in */
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(log, "entries");
    const cJSON *a = cJSON_GetArrayItem(entries, 0), *b = cJSON_GetArrayItem(entries, 1);
    ck_assert_int_eq(num(a, "attempt"), 1);
    ck_assert_int_eq(num(a, "status"), 500);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a, "ok")));
    ck_assert_int_eq(num(b, "attempt"), 2);
    ck_assert_int_eq(num(b, "status"), 200);
    ck_assert_str_eq(str(a, "window_start"), str(b, "window_start"));
    cJSON_Delete(log);
    ck_assert_int_eq(counter("failures"), 1);
    nap(1500);
    ck_assert_uint_eq(raw_http_request_count(rx), 2);
}
END_TEST

START_TEST(timeout_is_a_failure)
{
    char value[8], stamp[20];
    const char *args[] = {"--event-timeout-ms", "300", NULL};
    sim_start(args);
    subscribe("Patient", WS);
    ck_assert_int_eq(raw_http_push_hang(rx), 0);
    flip_txtmsgok(4, value, stamp);
    rx_wait(2);
    cJSON *log = log_wait("post", 2);
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(log, "entries");
    const cJSON *a = cJSON_GetArrayItem(entries, 0), *b = cJSON_GetArrayItem(entries, 1);
    ck_assert_int_eq(num(a, "status"), 0);
    ck_assert_str_ne(str(a, "error"), "");
    ck_assert_int_eq(num(b, "attempt"), 2);
    ck_assert_int_eq(num(b, "status"), 200);
    cJSON_Delete(log);
    cJSON *x = rx_json(0), *y = rx_json(1);
    ck_assert(cJSON_Compare(x, y, 1));
    cJSON_Delete(x);
    cJSON_Delete(y);
}
END_TEST

START_TEST(machines_duplicate)
{
    char value[8], stamp[20];
    sim_start(NULL);
    subscribe("Patient", WS);
    events_set("{\"machines\":2}");
    flip_txtmsgok(5, value, stamp);
    rx_wait(2);
    nap(1500);
    ck_assert_uint_eq(raw_http_request_count(rx), 2);
    ck_assert_str_eq(raw_http_request(rx, 0), raw_http_request(rx, 1)); /* identical */
    cJSON *log = event_log();
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(log, "entries");
    ck_assert_int_eq(num(cJSON_GetArrayItem(entries, 0), "machine"), 1);
    ck_assert_int_eq(num(cJSON_GetArrayItem(entries, 1), "machine"), 2);
    cJSON_Delete(log);
}
END_TEST

START_TEST(blank_workstation_every_machine_sends)
{
    char value[8], stamp[20];
    const char *args[] = {"--event-machines", "2", NULL};
    sim_start(args);
    subscribe("Patient", "");
    flip_txtmsgok(6, value, stamp);
    rx_wait(2);
    ck_assert(rx_header(0, "Workstation: WORKSTATION1"));
    ck_assert(rx_header(1, "Workstation: WORKSTATION2"));
    cJSON *x = rx_json(0), *y = rx_json(1);
    ck_assert(cJSON_Compare(x, y, 1));
    cJSON_Delete(x);
    cJSON_Delete(y);
}
END_TEST

START_TEST(drop_next_leaves_a_gap)
{
    char value[8], stamp[20], value2[8], stamp2[20], start[20];
    sim_start(NULL);
    long long sub = subscribe("Patient", WS);
    events_set("{\"drop_next\":1}");
    flip_txtmsgok(8, value, stamp);
    cJSON_Delete(log_wait("dropped", 1));
    ck_assert_uint_eq(raw_http_request_count(rx), 0);
    sub_start(sub, start);
    ck_assert_msg(strcmp(start, stamp) > 0, "DateTimeStart %s, change at %s", start, stamp);
    ck_assert_int_eq(counter("drops"), 1);
    /* The next change arrives alone: the first one is lost. */
    flip_txtmsgok(9, value2, stamp2);
    rx_wait(1);
    cJSON *body = rx_json(0);
    ck_assert_int_eq(cJSON_GetArraySize(body), 1);
    ck_assert_int_eq(num(cJSON_GetArrayItem(body, 0), "PatNum"), 9);
    cJSON_Delete(body);
    cJSON *s = admin("GET", "/_admin/events?office=1", NULL, 200);
    ck_assert_int_eq(num(s, "drop_next"), 0);
    cJSON_Delete(s);
}
END_TEST

START_TEST(redeliver_resends_the_last_window)
{
    char value[8], stamp[20];
    sim_start(NULL);
    subscribe("Patient", WS);
    flip_txtmsgok(10, value, stamp);
    rx_wait(1);
    events_set("{\"redeliver\":1}");
    rx_wait(2);
    nap(1500);
    ck_assert_uint_eq(raw_http_request_count(rx), 2);
    ck_assert_str_eq(raw_http_request(rx, 0), raw_http_request(rx, 1));
    cJSON *log = event_log();
    ck_assert_int_eq(log_count(log, "redeliver"), 1);
    cJSON_Delete(log);
    ck_assert_int_eq(counter("redeliveries"), 1);
}
END_TEST

START_TEST(paused_batches_and_out_of_order)
{
    char value[8], stamp[20];
    const char *args[] = {"--event-batch", "2", "--event-faults", "{\"paused\":true}", NULL};
    sim_start(args);
    subscribe("Patient", WS);
    for (int p = 11; p <= 15; p++)
        flip_txtmsgok(p, value, stamp);
    nap(2500); /* workstation off: nothing */
    ck_assert_uint_eq(raw_http_request_count(rx), 0);
    cJSON *log = event_log();
    ck_assert_int_eq(num(log, "logged"), 0);
    cJSON_Delete(log);

    events_set("{\"paused\":false}");
    rx_wait(3);
    nap(1500);
    ck_assert_uint_eq(raw_http_request_count(rx), 3);
    int sizes[3];
    char last[20] = "";
    for (size_t i = 0; i < 3; i++) {
        cJSON *body = rx_json(i);
        const cJSON *row;
        sizes[i] = cJSON_GetArraySize(body);
        cJSON_ArrayForEach(row, body)
        {
            ck_assert(strcmp(str(row, "DateTStamp"), last) >= 0); /* DateTStamp order */
            util_fmt(last, sizeof(last), "%s", str(row, "DateTStamp"));
        }
        cJSON_Delete(body);
    }
    ck_assert_int_eq(sizes[0], 2);
    ck_assert_int_eq(sizes[1], 2);
    ck_assert_int_eq(sizes[2], 1);
    log = event_log();
    const cJSON *e2 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(log, "entries"), 2);
    ck_assert_int_eq(num(e2, "chunk"), 3);
    ck_assert_int_eq(num(e2, "chunks"), 3);
    cJSON_Delete(log);

    /* out_of_order: the chunks of one window last to first. */
    events_set("{\"paused\":true,\"out_of_order\":true}");
    nap(1200); /* a cycle in progress ends */
    for (int p = 21; p <= 23; p++)
        flip_txtmsgok(p, value, stamp);
    events_set("{\"paused\":false}");
    rx_wait(5);
    cJSON *first = rx_json(3), *second = rx_json(4);
    ck_assert_int_eq(cJSON_GetArraySize(first), 1);
    ck_assert_int_eq(cJSON_GetArraySize(second), 2);
    ck_assert(strcmp(str(cJSON_GetArrayItem(first, 0), "DateTStamp"),
                     str(cJSON_GetArrayItem(second, 1), "DateTStamp")) >= 0);
    cJSON_Delete(first);
    cJSON_Delete(second);
}
END_TEST

START_TEST(cap_loses_older_changes)
{
    char value[8], stamp[20], start[20];
    sim_start(NULL);
    long long sub = subscribe("Patient", WS);
    events_set("{\"paused\":true}");
    nap(300);
    flip_txtmsgok(12, value, stamp);
    /* The office is off for 73 hours: the change is older than the 72-hour cap. */
    cJSON_Delete(admin("POST", "/_admin/clock?office=1", "{\"advance_s\":262800}", 200));
    events_set("{\"paused\":false}");
    cJSON *log = log_wait("capped", 1);
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(log, "entries"), 0);
    ck_assert_str_eq(str(e, "kind"), "capped");
    ck_assert_int_eq(num(e, "rows"), 1);
    cJSON_Delete(log);
    nap(1500);
    ck_assert_uint_eq(raw_http_request_count(rx), 0);
    ck_assert_int_eq(counter("lost_rows"), 1);
    sub_start(sub, start);
    ck_assert(strcmp(start, stamp) > 0);
}
END_TEST

START_TEST(appointment_and_appointment_deleted)
{
    sim_start(NULL);
    subscribe("Appointment", WS);
    subscribe("AppointmentDeleted", WS);
    cJSON *r = admin("POST", "/_admin/appointments",
                     "{\"PatNum\":20,\"AptDateTime\":\"2026-12-15 10:00:00\"}", 201);
    long long apt = num(cJSON_GetObjectItemCaseSensitive(r, "row"), "AptNum");
    cJSON_Delete(r);
    rx_wait(1);
    ck_assert(rx_header(0, "Event-Type: WatchTable: Appointment"));
    ck_assert_ptr_nonnull(strstr(raw_http_request(rx, 0), "?table=Appointment HTTP/1.1\r\n"));
    cJSON *body = rx_json(0);
    const cJSON *row = cJSON_GetArrayItem(body, 0);
    ck_assert_str_eq(row->child->string, "serverDateTime");
    ck_assert_int_eq(num(row, "AptNum"), apt);
    ck_assert_str_eq(str(row, "AptStatus"), "Scheduled");
    cJSON_Delete(body);

    char path[96];
    util_fmt(path, sizeof(path), "/_admin/appointments/%lld/delete", apt);
    cJSON_Delete(admin("POST", path, NULL, 200));
    rx_wait(2);
    ck_assert(rx_header(1, "Event-Type: WatchTable: AppointmentDeleted"));
    body = rx_json(1);
    ck_assert_int_eq(cJSON_GetArraySize(body), 1);
    row = cJSON_GetArrayItem(body, 0);
    ck_assert_str_eq(row->child->string, "HistApptNum");
    ck_assert_str_eq(str(row, "HistApptAction"), "Deleted");
    ck_assert_int_eq(num(row, "AptNum"), apt);
    cJSON_Delete(body);
}
END_TEST

START_TEST(admin_and_command_line)
{
    sim_start(NULL);
    cJSON *s = admin("GET", "/_admin/events?office=1", NULL, 200);
    ck_assert_int_eq(num(s, "machines"), 1);
    ck_assert_int_eq(num(s, "batch"), 1000);
    ck_assert_int_eq(num(s, "timeout_ms"), 60000);
    ck_assert_int_eq(num(s, "cap_hours"), 72);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "paused")));
    cJSON_Delete(s);
    cJSON_Delete(admin("POST", "/_admin/events", "{\"bogus\":1}", 400));
    cJSON_Delete(admin("POST", "/_admin/events", "{\"machines\":0}", 400));
    cJSON_Delete(admin("POST", "/_admin/events", "{\"paused\":1}", 400));
    cJSON_Delete(admin("GET", "/_admin/events?office=9", NULL, 404));
    s = admin("POST", "/_admin/events", "{\"slow_ms\":5}", 200); /* every office */
    ck_assert_int_eq(
        num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "offices"), 0), "slow_ms"), 5);
    cJSON_Delete(s);
    cJSON_Delete(admin("POST", "/_admin/events/reset?office=1", NULL, 200));
    sim_stop();

    char *path = tu_build_path("contrib/odsim/odsim"), *out = NULL, *err = NULL;
    const char *bad[][3] = {{"--event-batch", "0", NULL},
                            {"--event-machines", "99", NULL},
                            {"--event-faults", "{\"nope\":true}", NULL},
                            {"--event-faults", "[1]", NULL},
                            {"--event-timeout-ms", "x", NULL}};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        const char *argv[] = {path, bad[i][0], bad[i][1], NULL};
        ck_assert_int_eq(tu_run(argv, NULL, &out, &err), 2);
        free(out);
        free(err);
    }
    const char *help[] = {path, "--help", NULL};
    ck_assert_int_eq(tu_run(help, NULL, &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "--event-machines"));
    free(out);
    free(err);
    free(path);
}
END_TEST

static Suite *odsim_events_suite(void)
{
    Suite *s = suite_create("odsim_events");
    TCase *tc = tcase_create("events");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, patient_change_arrives_with_exact_headers);
    tcase_add_test(tc, failed_window_comes_again);
    tcase_add_test(tc, timeout_is_a_failure);
    tcase_add_test(tc, machines_duplicate);
    tcase_add_test(tc, blank_workstation_every_machine_sends);
    tcase_add_test(tc, drop_next_leaves_a_gap);
    tcase_add_test(tc, redeliver_resends_the_last_window);
    tcase_add_test(tc, paused_batches_and_out_of_order);
    tcase_add_test(tc, cap_loses_older_changes);
    tcase_add_test(tc, appointment_and_appointment_deleted);
    tcase_add_test(tc, admin_and_command_line);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(odsim_events_suite)
