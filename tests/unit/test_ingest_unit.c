/*
 * test_ingest_unit: ingest passes against a scripted Open Dental server on loopback
 * (tests/support/raw_http), one queued answer per request in the order a pass asks:
 * clinics, patients, appointments, procedures, deleted appointments (once appointments are
 * incremental) and recalls. Checks the deleted-appointments window across a gap of days and
 * that a malformed serverDateTime never becomes a watermark. Also the daemon: an ingester
 * that outlives the shutdown deadline must not find the delivery workers freed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "http_client.h"
#include "ingest.h"
#include "log.h"
#include "model.h"
#include "od_client.h"
#include "raw_http.h"
#include "runtime.h"
#include "testutil.h"
#include "util.h"

static char *dir;
static struct store *st;
static struct raw_http *srv;
static struct config_office office;
static struct od_client *cli;
static FILE *devnull;

static void setup(void)
{
    static char base[128], id[] = "main-st", dev[] = "dev-key-1234", cust[] = "cust-key-5678";
    char path[512], err[256];
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    http_global_init();
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    ck_assert_int_eq(raw_http_start(&srv), 0);
    snprintf(base, sizeof(base), "%s/api/v1", raw_http_url(srv));
    memset(&office, 0, sizeof(office));
    office.id = id;
    office.od_base_url = base;
    office.od_developer_key = dev;
    office.od_customer_key = cust;
    office.od_page_size = 2;
    office.od_min_interval_ms = 0;
    office.od_overlap_s = 5;
    office.od_recall_reconcile_h = 24;
    cli = od_client_create(&office);
    ck_assert_ptr_nonnull(cli);
    od_client_set_retry(cli, 0, 1, 1);
}

static void teardown(void)
{
    od_client_destroy(cli);
    od_client_global_cleanup();
    raw_http_stop(srv);
    store_close(st);
    http_global_cleanup();
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* Queue one 200 answer. */
static void answer(const char *body)
{
    ck_assert_int_eq(raw_http_push_response(srv, 200, NULL, body), 0);
}

/* One pass; asserts it returns want. */
static void pass(int want)
{
    struct ingest_report rep;
    int rc = ingest_office(st, &office, cli, NULL, &rep);
    ck_assert_msg(rc == want, "pass: %s (%s)", odsync_status_name(rc), rep.detail);
}

/* 1 when a request from index `from` on has this request line (path and query). */
static int asked(size_t from, const char *path_query)
{
    char line[512];
    size_t i;
    snprintf(line, sizeof(line), "GET /api/v1%s HTTP/1.1\r\n", path_query);
    for (i = from; i < raw_http_request_count(srv); i++)
        if (strncmp(raw_http_request(srv, i), line, strlen(line)) == 0)
            return 1;
    return 0;
}

/* An int from a query. */
static int64_t q(const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static const char *watermark(enum ingest_resource r)
{
    static struct ingest_checkpoint cp;
    ck_assert_int_eq(ingest_checkpoint_get(st, "main-st", r, &cp), ODSYNC_OK);
    return cp.watermark;
}

/* Regression: the deleted-appointments window used the appointments' watermark after this
 * pass's appointment read had moved it to "now", so the deletions of a gap longer than a day
 * between passes (office offline, odsync stopped) were never asked for. */
START_TEST(deleted_window_covers_a_gap_of_days)
{
    size_t mark;
    /* Pass 1, 2025-09-01 08:00 at the office: one appointment; everything else empty. */
    answer("[]"); /* clinics */
    answer("[]"); /* patients */
    answer("[{\"serverDateTime\":\"2025-09-01 08:00:00\",\"AptNum\":1,\"PatNum\":5,"
           "\"AptStatus\":\"Scheduled\",\"AptDateTime\":\"2025-09-20 13:00:00\","
           "\"DateTStamp\":\"2025-08-29 16:40:11\"}]");
    answer("[]"); /* procedures */
    answer("[]"); /* deleted appointments */
    answer("[]"); /* recalls, in full the first time */
    pass(ODSYNC_OK);
    ck_assert(asked(0, "/histappointments?HistApptAction=Deleted&dateStart=2025-08-31"
                       "&Limit=2&Offset=0"));
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_appointments WHERE apt_num = 1"), 1);

    /* Pass 2, three days later; appointment 1 was deleted meanwhile (2025-09-02). */
    mark = raw_http_request_count(srv);
    answer("[]"); /* clinics */
    answer("[]"); /* patients */
    answer("[{\"serverDateTime\":\"2025-09-04 09:00:00\",\"AptNum\":2,\"PatNum\":6,"
           "\"AptStatus\":\"Scheduled\",\"AptDateTime\":\"2025-09-21 13:00:00\","
           "\"DateTStamp\":\"2025-09-04 08:59:00\"}]");
    answer("[]"); /* procedures */
    answer("[{\"HistApptNum\":90417,\"HistDateTStamp\":\"2025-09-02 14:05:51\","
           "\"HistApptAction\":\"Deleted\",\"AptNum\":1,\"PatNum\":5}]");
    answer("[]"); /* recalls: two changed patients, more than a full read costs */
    pass(ODSYNC_OK);
    ck_assert(asked(mark, "/appointments?DateTStamp=2025-09-01%2007%3A59%3A55&Limit=2&Offset=0"));
    /* The window starts a day before the last complete deleted read, not before "now". */
    ck_assert_msg(asked(mark, "/histappointments?HistApptAction=Deleted&dateStart=2025-08-31"
                              "&Limit=2&Offset=0"),
                  "deleted appointments asked from the wrong day: %s",
                  raw_http_request(srv, mark + 4));
    ck_assert_int_eq(q("SELECT COUNT(*) FROM od_appointments WHERE apt_num = 1"), 0);
    ck_assert_str_eq(watermark(INGEST_DELETED), "2025-09-04 09:00:00");

    /* Pass 3: the window moves on once a read has covered the gap. */
    ck_assert_int_eq(store_exec(st, "DELETE FROM od_dirty"), ODSYNC_OK);
    mark = raw_http_request_count(srv);
    answer("[]");    /* clinics */
    answer("[]");    /* patients */
    answer("[]");    /* appointments: empty, the watermark stays */
    answer("[]");    /* procedures */
    answer("[]");    /* deleted appointments */
    pass(ODSYNC_OK); /* nothing changed: no recall request */
    ck_assert(asked(mark, "/histappointments?HistApptAction=Deleted&dateStart=2025-09-03"
                          "&Limit=2&Offset=0"));
    ck_assert_uint_eq(raw_http_request_count(srv), mark + 5);
}
END_TEST

/* Regression: a serverDateTime of 19 characters in another format was kept as the
 * watermark; every later pass then failed to build its DateTStamp query (ODSYNC_PARSE) and
 * the office's incremental sync stopped for good. */
START_TEST(malformed_server_time_never_becomes_the_watermark)
{
    static const char *const pat =
        "[{\"serverDateTime\":\"%s\",\"PatNum\":5,\"LName\":\"Quill\",\"FName\":\"Avery\","
        "\"DateTStamp\":\"2025-08-20 10:14:03\"}]";
    char body[512];
    size_t mark;

    answer("[]"); /* clinics */
    snprintf(body, sizeof(body), pat, "2025-09-01 08:00:00");
    answer(body); /* patients */
    answer("[]"); /* appointments */
    answer("[]"); /* procedures */
    answer("[]"); /* recalls, in full the first time */
    pass(ODSYNC_OK);
    ck_assert_str_eq(watermark(INGEST_PATIENTS), "2025-09-01 08:00:00");
    ck_assert_int_eq(store_exec(st, "DELETE FROM od_dirty"), ODSYNC_OK);

    answer("[]");
    snprintf(body, sizeof(body), pat, "09/02/2025 08:00:00"); /* a DateTimeFormatString */
    answer(body);
    answer("[]");
    answer("[]");
    pass(ODSYNC_OK);
    ck_assert_str_eq(watermark(INGEST_PATIENTS), "2025-09-01 08:00:00"); /* kept */

    mark = raw_http_request_count(srv);
    answer("[]");
    answer("[]");
    answer("[]");
    answer("[]");
    pass(ODSYNC_OK);
    ck_assert(asked(mark, "/patients/Simple?DateTStamp=2025-09-01%2007%3A59%3A55"
                          "&Limit=2&Offset=0"));
}
END_TEST

/* ---- the daemon's shutdown deadline ---------------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void *stop_later(void *arg)
{
    struct timespec ts = {0, 300 * 1000000L};
    (void)arg;
    nanosleep(&ts, NULL);
    stop_flag = 1;
    return NULL;
}

static int put_patient_tx(struct store *s, void *arg)
{
    struct model_patient p;
    char last[] = "Quill", first[] = "Avery", status[] = "Patient", consent[] = "yes";
    int changed = 0;
    (void)arg;
    memset(&p, 0, sizeof(p));
    p.patnum = 7;
    p.last_name = last;
    p.first_name = first;
    p.status = status;
    p.sms_consent = consent;
    return model_put_patient(s, "main-st", &p, &changed); /* marks patient 7 dirty */
}

/* Shutdown while an ingester waits for its customer key's pacer slot (a tier's interval can
 * be seconds, a Retry-After up to a minute): the wait is cut short, no request is sent after
 * the stop, and every thread is joined within the deadline, so daemon_run frees everything
 * (rc OK) instead of leaving threads behind. */
START_TEST(ingester_waiting_for_its_slot_stops_at_shutdown)
{
    char text[4096], err[512], *abi = tu_build_path("tests/abi");
    struct daemon_options opt = {0, 0, 0};
    struct config *cfg = NULL;
    struct runtime *rt = NULL;
    struct od_client *primer;
    pthread_t stopper;
    cJSON *j = NULL;
    int rc;

    setenv("IU_OD_DEV", "iu-developer-key-1", 1);
    setenv("IU_OD_CUST", "iu-customer-key-2", 1);
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s\"],"
             " \"listen\": \"127.0.0.1:0\",\n"
             " \"delivery\": {\"shutdown_timeout_ms\": 200},\n"
             " \"sinks\": {\"crm\": {\"plugin\": \"scripted\"}},\n"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": "
             "\"America/Chicago\", \"opendental\": {\"base_url\": \"%s/api/v1\","
             " \"tier\": \"paid\", \"min_interval_ms\": 1500,"
             " \"developer_key\": \"${IU_OD_DEV}\", \"customer_key\": \"${IU_OD_CUST}\"},"
             " \"routes\": {\"contact\": [\"crm\"]}}]}\n",
             dir, abi, raw_http_url(srv));
    free(abi);
    ck_assert_msg(config_parse(text, strlen(text), "test", &cfg, err, sizeof(err)) == ODSYNC_OK,
                  "%s", err);
    ck_assert_msg(runtime_open(cfg, 0, &rt, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    ck_assert_int_eq(store_tx(st, put_patient_tx, NULL), ODSYNC_OK);

    /* Take the key's next slot: the ingester's first request must wait ~1.5 s for it. */
    answer("[]");
    primer = od_client_create(&rt->cfg->offices[0]);
    ck_assert_ptr_nonnull(primer);
    ck_assert_int_eq(od_client_get(primer, "/clinics", &j, err, sizeof(err)), ODSYNC_OK);
    cJSON_Delete(j);
    od_client_destroy(primer);
    raw_http_push_response(srv, 401, NULL, "\"Invalid customer key\""); /* ends its pass */

    stop_flag = 0;
    ck_assert_int_eq(pthread_create(&stopper, NULL, stop_later, NULL), 0);
    rc = daemon_run(rt, &opt, &stop_flag);
    pthread_join(stopper, NULL);
    ck_assert_int_eq(rc, ODSYNC_OK);
    /* Only the primer's request reached Open Dental: the ingester stopped in its wait. */
    ck_assert_uint_eq(raw_http_request_count(srv), 1);
    runtime_close(rt);
}
END_TEST

static Suite *ingest_suite(void)
{
    Suite *s = suite_create("ingest_unit");
    TCase *tc = tcase_create("ingest");
    TCase *dc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, deleted_window_covers_a_gap_of_days);
    tcase_add_test(tc, malformed_server_time_never_becomes_the_watermark);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(dc, setup, teardown);
    tcase_add_test(dc, ingester_waiting_for_its_slot_stops_at_shutdown);
    suite_add_tcase(s, dc);
    return s;
}

ODSYNC_TEST_MAIN(ingest_suite)
