/*
 * test_od_client: the Open Dental client against a scripted HTTP server on loopback — exact
 * request bytes (ODFHIR header, Content-Type on GET), paging parameters, retries of 429 (with
 * Retry-After), 504 and dropped connections, and the office states for 400 eConnector, 400
 * version, 401 and a body that is not JSON. No answer ever makes it crash or spin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http_client.h"
#include "log.h"
#include "od_client.h"
#include "raw_http.h"
#include "testutil.h"
#include "util.h"

static struct raw_http *srv;
static struct config_office office;
static struct od_client *cli;
static char err[512];
static FILE *devnull;

static void setup(void)
{
    static char base[128], id[] = "main-st", dev[] = "dev-key-1234", cust[] = "cust-key-5678";
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    http_global_init();
    ck_assert_int_eq(raw_http_start(&srv), 0);
    snprintf(base, sizeof(base), "%s/api/v1", raw_http_url(srv));
    memset(&office, 0, sizeof(office));
    office.id = id;
    office.od_base_url = base;
    office.od_developer_key = dev;
    office.od_customer_key = cust;
    office.od_page_size = 2;
    office.od_min_interval_ms = 0;
    cli = od_client_create(&office);
    ck_assert_ptr_nonnull(cli);
    od_client_set_retry(cli, 3, 1, 5);
}

static void teardown(void)
{
    od_client_destroy(cli);
    od_client_global_cleanup();
    raw_http_stop(srv);
    http_global_cleanup();
    log_shutdown();
    fclose(devnull);
}

/* 1 when request i contains needle. */
static int req_has(size_t i, const char *needle)
{
    return strstr(raw_http_request(srv, i), needle) != NULL;
}

START_TEST(get_page_sends_the_documented_request)
{
    cJSON *items = NULL;
    raw_http_push_response(srv, 200, NULL, "[{\"PatNum\":1},{\"PatNum\":2}]");
    ck_assert_int_eq(od_client_get_page(cli,
                                        "/patients/Simple?DateTStamp=2025-01-01%2000%3A00%3A00", 4,
                                        &items, err, sizeof(err)),
                     ODSYNC_OK);
    ck_assert_int_eq(cJSON_GetArraySize(items), 2);
    cJSON_Delete(items);
    ck_assert(req_has(0, "GET /api/v1/patients/Simple?DateTStamp=2025-01-01%2000%3A00%3A00"
                         "&Limit=2&Offset=4 HTTP/1.1\r\n"));
    ck_assert(req_has(0, "\r\nAuthorization: ODFHIR dev-key-1234/cust-key-5678\r\n"));
    ck_assert(req_has(0, "\r\nContent-Type: application/json\r\n")); /* GET included */
    ck_assert_int_eq(od_client_state(cli, NULL), OD_STATE_OK);
}
END_TEST

START_TEST(throttled_429_waits_retry_after_then_succeeds)
{
    cJSON *j = NULL;
    struct od_client_stats s;
    raw_http_push_response(srv, 429, "Retry-After: 1\r\n", "\"Too many requests\"");
    raw_http_push_response(srv, 200, NULL, "[]");
    ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_OK);
    cJSON_Delete(j);
    od_client_stats(cli, &s);
    ck_assert_int_eq(s.requests, 2);
    ck_assert_int_eq(s.retries, 1);
    ck_assert_int_ge(s.paced_ms, 900); /* Retry-After: 1 was honoured through the pacer */
}
END_TEST

START_TEST(gateway_timeout_and_drops_are_retried)
{
    cJSON *j = NULL;
    struct od_client_stats s;
    raw_http_push_response(srv, 504, NULL, "\"timeout\"");
    raw_http_push_close(srv);
    raw_http_push_response(srv, 200, NULL, "[]");
    ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_OK);
    cJSON_Delete(j);
    od_client_stats(cli, &s);
    /* The server saw all three; libcurl itself resends once on a reused connection that
     * closed unanswered, so the client may count one request fewer. */
    ck_assert_uint_eq(raw_http_request_count(srv), 3);
    ck_assert_int_ge(s.requests, 2);
    ck_assert_int_eq(od_client_state(cli, NULL), OD_STATE_OK);
}
END_TEST

START_TEST(retries_are_bounded)
{
    cJSON *j = NULL;
    int i;
    for (i = 0; i < 4; i++)
        raw_http_push_response(srv, 504, NULL, "\"timeout\"");
    ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_RETRY);
    ck_assert_ptr_null(j);
    ck_assert_uint_eq(raw_http_request_count(srv), 4); /* 1 + 3 retries, then it gives up */
    ck_assert_int_eq(od_client_state(cli, NULL), OD_STATE_ERROR);
}
END_TEST

START_TEST(econnector_down_marks_the_office_offline)
{
    const char *detail = NULL;
    cJSON *j = NULL;
    raw_http_push_response(srv, 400, NULL,
                           "\"The office's eConnector is not running. Please contact the office "
                           "to start their eConnector.\"");
    ck_assert_int_eq(od_client_get(cli, "/patients/Simple", &j, err, sizeof(err)), ODSYNC_RETRY);
    ck_assert_int_eq(od_client_state(cli, &detail), OD_STATE_OFFLINE);
    ck_assert_ptr_nonnull(strstr(detail, "eConnector not running"));
    ck_assert_ptr_nonnull(strstr(err, "office main-st offline"));
    ck_assert_uint_eq(raw_http_request_count(srv), 1); /* not retried in a loop */
}
END_TEST

START_TEST(version_too_old_is_unsupported)
{
    cJSON *j = NULL;
    raw_http_push_response(srv, 400, NULL,
                           "\"This method requires Open Dental version 22.4.40 or later.\"");
    ck_assert_int_eq(od_client_get(cli, "/recalls", &j, err, sizeof(err)), ODSYNC_UNSUPPORTED);
    ck_assert_int_eq(od_client_state(cli, NULL), OD_STATE_VERSION);
}
END_TEST

START_TEST(unauthorized_pauses_with_auth_state)
{
    cJSON *j = NULL;
    const char *detail = NULL;
    raw_http_push_response(srv, 401, NULL, "\"Invalid customer key\"");
    ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_AUTH);
    ck_assert_int_eq(od_client_state(cli, &detail), OD_STATE_AUTH);
    ck_assert_ptr_null(strstr(detail, "cust-key-5678")); /* the key itself is never shown */
    ck_assert_ptr_null(strstr(err, "cust-key-5678"));
}
END_TEST

START_TEST(malformed_bodies_are_errors_not_crashes)
{
    cJSON *j = NULL;
    raw_http_push_response(srv, 200, NULL, "<html>oops");
    ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_PARSE);
    raw_http_push_response(srv, 200, NULL, "{\"not\":\"an array\"}");
    ck_assert_int_eq(od_client_get_page(cli, "/clinics", 0, &j, err, sizeof(err)), ODSYNC_PARSE);
    ck_assert_ptr_null(j);
    raw_http_push_response(srv, 400, NULL, "\"DateTStamp format must be yyyy-MM-dd HH:mm:ss\"");
    ck_assert_int_eq(od_client_get(cli, "/patients/Simple", &j, err, sizeof(err)),
                     ODSYNC_PERMANENT);
    ck_assert_int_eq(od_client_state(cli, NULL), OD_STATE_ERROR);
}
END_TEST

/* Regression: a Retry-After was waited out however long it was (the sleep holds the key's
 * pacer lock, so every office of the key and the shutdown waited too). Past 60 s the call
 * now gives up at once with RETRY; the next pass asks again. */
START_TEST(long_retry_after_ends_the_call_instead_of_parking_it)
{
    cJSON *j = NULL;
    struct od_client_stats s;
    int64_t started = util_monotonic_ms();
    raw_http_push_response(srv, 429, "Retry-After: 86400\r\n", "\"Too many requests\"");
    raw_http_push_response(srv, 200, NULL, "[]");
    ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_RETRY);
    ck_assert_ptr_null(j);
    ck_assert_int_lt(util_monotonic_ms() - started, 5000);
    od_client_stats(cli, &s);
    ck_assert_int_eq(s.requests, 1);
    ck_assert_int_lt(s.paced_ms, 1000);
    ck_assert_uint_eq(raw_http_request_count(srv), 1);
    ck_assert_int_eq(od_client_state(cli, NULL), OD_STATE_ERROR);
}
END_TEST

/* Regression: 408 is retried like 504, but once the retries ran out it was PERMANENT ("a
 * request odsync got wrong") instead of RETRY. */
START_TEST(request_timeout_408_stays_retryable)
{
    cJSON *j = NULL;
    int i;
    for (i = 0; i < 4; i++)
        raw_http_push_response(srv, 408, NULL, "\"Request Timeout\"");
    ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_RETRY);
    ck_assert_uint_eq(raw_http_request_count(srv), 4); /* 1 + 3 retries */
}
END_TEST

/* Two clients of one customer key share one pacer: request starts stay an interval apart. */
START_TEST(pacer_is_shared_per_customer_key)
{
    struct od_client *other;
    struct od_client_stats s1, s2;
    cJSON *j = NULL;
    int i;
    office.od_min_interval_ms = 200;
    other = od_client_create(&office);
    for (i = 0; i < 4; i++)
        raw_http_push_response(srv, 200, NULL, "[]");
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(od_client_get(cli, "/clinics", &j, err, sizeof(err)), ODSYNC_OK);
        cJSON_Delete(j);
        ck_assert_int_eq(od_client_get(other, "/clinics", &j, err, sizeof(err)), ODSYNC_OK);
        cJSON_Delete(j);
    }
    od_client_stats(cli, &s1);
    od_client_stats(other, &s2);
    /* Four requests on one key: at least three intervals were waited, between the two. */
    ck_assert_int_ge(s1.paced_ms + s2.paced_ms, 3 * 200 - 30);
    od_client_destroy(other);
}
END_TEST

static Suite *od_client_suite(void)
{
    Suite *s = suite_create("od_client");
    TCase *tc = tcase_create("od_client");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, get_page_sends_the_documented_request);
    tcase_add_test(tc, throttled_429_waits_retry_after_then_succeeds);
    tcase_add_test(tc, gateway_timeout_and_drops_are_retried);
    tcase_add_test(tc, retries_are_bounded);
    tcase_add_test(tc, econnector_down_marks_the_office_offline);
    tcase_add_test(tc, version_too_old_is_unsupported);
    tcase_add_test(tc, unauthorized_pauses_with_auth_state);
    tcase_add_test(tc, malformed_bodies_are_errors_not_crashes);
    tcase_add_test(tc, pacer_is_shared_per_customer_key);
    tcase_add_test(tc, long_retry_after_ends_the_call_instead_of_parking_it);
    tcase_add_test(tc, request_timeout_408_stays_retryable);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(od_client_suite)
