/*
 * test_http_client: core/http_client against a real loopback server (tests/support/raw_http):
 * status classes, Retry-After (seconds, IMF-fixdate, garbage), case-insensitive response
 * headers, transport failures, the 16 MiB body cap, URL encoding, request bytes on the wire,
 * connection reuse and allocation failures.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "util.h"

#include "../support/raw_http.h"
#include "../support/testutil.h"

#define MIB (1024 * 1024)

static struct raw_http *srv;    /* per test, from setup */
static struct http_client *cli; /* per test, from setup */
static char url[256];           /* raw_http_url(srv) + a path, set by at() */

static void setup(void)
{
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    ck_assert_int_eq(raw_http_start(&srv), 0);
    cli = http_client_create();
    ck_assert_ptr_nonnull(cli);
}

static void teardown(void)
{
    http_client_destroy(cli);
    raw_http_stop(srv);
    http_global_cleanup();
}

/* The server's URL with path appended (static buffer). */
static const char *at(const char *path)
{
    ck_assert_int_eq(util_fmt(url, sizeof(url), "%s%s", raw_http_url(srv), path), ODSYNC_OK);
    return url;
}

/* A request struct for method and url (no headers, no body, default timeout). */
static struct odsync_http_request req_of(const char *method, const char *u)
{
    struct odsync_http_request r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    r.method = method;
    r.url = u;
    return r;
}

/* GET path and return the response (caller frees); asserts the return matches the class. */
static struct odsync_http_response *get(const char *path)
{
    struct odsync_http_request r = req_of("GET", at(path));
    struct odsync_http_response *resp = NULL;
    int rc = http_client_perform(cli, &r, &resp);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(rc, resp->result_class);
    ck_assert_ptr_nonnull(resp->body);
    ck_assert_uint_eq(strlen(resp->body), resp->body_len);
    return resp;
}

START_TEST(status_class_mapping)
{
    static const struct {
        int status, cls;
    } cases[] = {
        {0, ODSYNC_RETRY},       {100, ODSYNC_RETRY},        {199, ODSYNC_RETRY},
        {200, ODSYNC_OK},        {201, ODSYNC_OK},           {204, ODSYNC_OK},
        {299, ODSYNC_OK},        {300, ODSYNC_PERMANENT},    {301, ODSYNC_PERMANENT},
        {304, ODSYNC_PERMANENT}, {399, ODSYNC_PERMANENT},    {400, ODSYNC_PERMANENT},
        {401, ODSYNC_AUTH},      {402, ODSYNC_PERMANENT},    {403, ODSYNC_AUTH},
        {404, ODSYNC_PERMANENT}, {408, ODSYNC_RETRY},        {409, ODSYNC_PERMANENT},
        {422, ODSYNC_PERMANENT}, {429, ODSYNC_RATE_LIMITED}, {499, ODSYNC_PERMANENT},
        {500, ODSYNC_RETRY},     {502, ODSYNC_RETRY},        {503, ODSYNC_RETRY},
        {599, ODSYNC_RETRY},     {600, ODSYNC_RETRY},        {-1, ODSYNC_RETRY},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++)
        ck_assert_msg(http_status_class(cases[i].status) == cases[i].cls, "status %d: got %s",
                      cases[i].status, odsync_status_name(http_status_class(cases[i].status)));
}
END_TEST

START_TEST(status_classes_over_the_wire)
{
    static const int statuses[] = {200, 201, 204, 301, 400, 401, 403, 404,
                                   408, 409, 422, 429, 500, 502, 503};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(statuses); i++) {
        char hdr[64] = "";
        if (statuses[i] == 301)
            util_fmt(hdr, sizeof(hdr), "Location: %s/elsewhere\r\n", raw_http_url(srv));
        ck_assert_int_eq(raw_http_push_response(srv, statuses[i], hdr, "{\"e\":1}"), 0);
        struct odsync_http_response *resp = get("/s");
        ck_assert_int_eq(resp->status, statuses[i]);
        ck_assert_int_eq(resp->result_class, http_status_class(statuses[i]));
        ck_assert_ptr_null(resp->error);
        ck_assert_int_eq(resp->retry_after_ms, -1);
        if (statuses[i] == 204)
            ck_assert_str_eq(resp->body, "");
        else
            ck_assert_str_eq(resp->body, "{\"e\":1}");
        http_response_free(resp);
    }
    /* The 301 was not followed: one request per status, nothing else. */
    ck_assert_uint_eq(raw_http_request_count(srv), UTIL_ARRAY_LEN(statuses));
}
END_TEST

START_TEST(retry_after_parser)
{
    /* 1994-11-06T08:49:37Z = 784111777 */
    const time_t now = 784111777;
    ck_assert_int_eq(http_parse_retry_after("0", now), 0);
    ck_assert_int_eq(http_parse_retry_after("7", now), 7000);
    ck_assert_int_eq(http_parse_retry_after("120", now), 120000);
    ck_assert_int_eq(http_parse_retry_after(" 7 ", now), 7000); /* OWS around the value */
    ck_assert_int_eq(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
    ck_assert_int_eq(http_parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), 60000);
    ck_assert_int_eq(http_parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", now), 86400000);
    ck_assert_int_eq(http_parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now), 0); /* past */
    ck_assert_int_eq(http_parse_retry_after("Thu, 29 Feb 1996 00:00:00 GMT", 825552000), 0);
    ck_assert_int_eq(http_parse_retry_after("Sat, 01 Jan 2000 00:00:00 GMT", 946684790), 10000);

    static const char *const garbage[] = {
        NULL,
        "",
        " ",
        "soon",
        "-1",
        "+7",
        "7s",
        "7.5",
        "1e3",
        "0x10",
        "7 8",
        "99999999999999999999999",        /* overflows */
        "Sun, 06 Nov 1994 08:49:37 UTC",  /* not GMT */
        "Sun, 06 Nov 1994 08:49:37 gmt",  /* case matters */
        "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850: obsolete */
        "Sun Nov  6 08:49:37 1994",       /* asctime: obsolete */
        "Sun, 6 Nov 1994 08:49:37 GMT",   /* one-digit day */
        "Sun, 06 Nov 1994 8:49:37 GMT",   /* one-digit hour */
        "Xyz, 06 Nov 1994 08:49:37 GMT",  /* no such day name */
        "Sun, 06 Foo 1994 08:49:37 GMT",  /* no such month */
        "Sun, 31 Apr 1994 08:49:37 GMT",  /* April has 30 days */
        "Tue, 29 Feb 1994 08:49:37 GMT",  /* not a leap year */
        "Thu, 29 Feb 1900 08:49:37 GMT",  /* 1900 was not a leap year */
        "Sun, 06 Nov 1994 24:00:00 GMT",  /* hour */
        "Sun, 06 Nov 1994 08:60:00 GMT",  /* minute */
        "Sun, 06 Nov 1994 08:49:61 GMT",  /* second */
        "Sun, 06 Nov 1994 08:49:37 GMT ", /* trailing garbage is trimmed OWS: see below */
    };
    for (size_t i = 0; i + 1 < UTIL_ARRAY_LEN(garbage); i++)
        ck_assert_msg(http_parse_retry_after(garbage[i], now) == -1, "accepted \"%s\"",
                      garbage[i] ? garbage[i] : "(null)");
    /* Surrounding OWS is not part of the value. */
    ck_assert_int_eq(http_parse_retry_after(garbage[UTIL_ARRAY_LEN(garbage) - 1], now), 0);
    ck_assert_int_eq(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMTx", now), -1);
    ck_assert_int_eq(http_parse_retry_after("Sun, 06 Nov 1994 08:49:60 GMT", now), 23000);
}
END_TEST

START_TEST(retry_after_over_the_wire)
{
    char hdr[96], date[64];
    time_t later = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&later, &tm);
    ck_assert_uint_gt(strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm), 0);
    util_fmt(hdr, sizeof(hdr), "Retry-After: %s\r\n", date);

    ck_assert_int_eq(raw_http_push_response(srv, 429, "Retry-After: 7\r\n", "{}"), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 503, hdr, "{}"), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 429, "retry-after: soon\r\n", "{}"), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 429, NULL, "{}"), 0);

    struct odsync_http_response *resp = get("/a");
    ck_assert_int_eq(resp->status, 429);
    ck_assert_int_eq(resp->result_class, ODSYNC_RATE_LIMITED);
    ck_assert_int_eq(resp->retry_after_ms, 7000);
    http_response_free(resp);

    resp = get("/b");
    ck_assert_int_eq(resp->result_class, ODSYNC_RETRY);
    ck_assert_int_ge(resp->retry_after_ms, 117000);
    ck_assert_int_le(resp->retry_after_ms, 120000);
    http_response_free(resp);

    resp = get("/c");
    ck_assert_int_eq(resp->result_class, ODSYNC_RATE_LIMITED);
    ck_assert_int_eq(resp->retry_after_ms, -1);
    http_response_free(resp);

    resp = get("/d");
    ck_assert_int_eq(resp->retry_after_ms, -1);
    http_response_free(resp);
}
END_TEST

START_TEST(response_headers_case_insensitive)
{
    ck_assert_int_eq(raw_http_push_response(srv, 200,
                                            "X-Request-Id:   abc-123  \r\n"
                                            "x-dup: first\r\n"
                                            "X-Dup: second\r\n"
                                            "X-Empty:\r\n",
                                            "{}"),
                     0);
    struct odsync_http_response *resp = get("/h");
    ck_assert_str_eq(http_response_header(resp, "X-Request-Id"), "abc-123");
    ck_assert_str_eq(http_response_header(resp, "x-request-id"), "abc-123");
    ck_assert_str_eq(http_response_header(resp, "X-REQUEST-ID"), "abc-123");
    ck_assert_str_eq(http_response_header(resp, "content-length"), "2");
    ck_assert_str_eq(http_response_header(resp, "CONTENT-TYPE"), "application/json");
    ck_assert_str_eq(http_response_header(resp, "x-dup"), "first"); /* the first one */
    ck_assert_str_eq(http_response_header(resp, "x-empty"), "");
    ck_assert_ptr_null(http_response_header(resp, "X-Missing"));
    ck_assert_ptr_null(http_response_header(resp, "X-Request"));
    ck_assert_ptr_null(http_response_header(resp, NULL));
    ck_assert_ptr_null(http_response_header(NULL, "X-Request-Id"));
    http_response_free(resp);

    /* Obsolete line folding joins with one space; an interim 100 leaves no headers behind. */
    static const char folded[] = "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
                                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Folded: one\r\n"
                                 "\t two\r\n\r\n{}";
    ck_assert_int_eq(raw_http_push_raw(srv, folded, sizeof(folded) - 1), 0);
    resp = get("/f");
    ck_assert_int_eq(resp->status, 200);
    ck_assert_str_eq(http_response_header(resp, "x-folded"), "one two");
    ck_assert_ptr_null(http_response_header(resp, "X-Interim"));
    http_response_free(resp);
}
END_TEST

START_TEST(request_bytes_on_the_wire)
{
    static const char body[] = "{\"k\":\"v\"}";
    struct odsync_http_header hdrs[] = {
        {"Authorization", "Bearer s3cr3t"},
        {"Content-Type", "application/json"},
        {"X-Empty", ""},
    };
    struct odsync_http_request r = req_of("PUT", at("/contacts/od%3Aa%3A1"));
    struct odsync_http_response *resp = NULL;
    r.headers = hdrs;
    r.header_count = UTIL_ARRAY_LEN(hdrs);
    r.body = body;
    r.body_len = strlen(body);
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_OK);
    http_response_free(resp);

    char want[512];
    util_fmt(want, sizeof(want),
             "PUT /contacts/od%%3Aa%%3A1 HTTP/1.1\r\n"
             "Host: 127.0.0.1:%d\r\n"
             "User-Agent: odsync/%s\r\n"
             "Accept: */*\r\n"
             "Authorization: Bearer s3cr3t\r\n"
             "Content-Type: application/json\r\n"
             "X-Empty:\r\n"
             "Content-Length: 9\r\n"
             "\r\n"
             "{\"k\":\"v\"}",
             raw_http_port(srv), ODSYNC_VERSION);
    ck_assert_uint_eq(raw_http_request_count(srv), 1);
    ck_assert_str_eq(raw_http_request(srv, 0), want);

    /* A body without Content-Type gets none (not curl's form default), and no Expect. */
    r = req_of("POST", at("/p"));
    r.body = "x=1";
    r.body_len = 3;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_OK);
    http_response_free(resp);
    const char *raw = raw_http_request(srv, 1);
    ck_assert_ptr_nonnull(strstr(raw, "POST /p HTTP/1.1\r\n"));
    ck_assert_ptr_null(strstr(raw, "Content-Type"));
    ck_assert_ptr_null(strstr(raw, "Expect"));
    ck_assert_ptr_nonnull(strstr(raw, "Content-Length: 3\r\n\r\nx=1"));

    /* PUT without a body still says Content-Length: 0; DELETE without one says nothing. */
    r = req_of("PATCH", at("/q"));
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_OK);
    http_response_free(resp);
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 2), "PATCH /q HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 2), "Content-Length: 0\r\n"));
    r = req_of("DELETE", at("/q/1"));
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_OK);
    http_response_free(resp);
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 3), "DELETE /q/1 HTTP/1.1\r\n"));
    ck_assert_ptr_null(strstr(raw_http_request(srv, 3), "Content-Length"));

    /* Dot segments in a path are sent as they are, never collapsed. */
    r = req_of("GET", at("/contacts/../x"));
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_OK);
    http_response_free(resp);
    ck_assert_ptr_nonnull(strstr(raw_http_request(srv, 4), "GET /contacts/../x HTTP/1.1\r\n"));
}
END_TEST

START_TEST(connection_reused)
{
    for (int i = 0; i < 5; i++) {
        struct odsync_http_response *resp = get("/r");
        ck_assert_int_eq(resp->status, 200);
        ck_assert_str_eq(resp->body, "{}");
        http_response_free(resp);
    }
    ck_assert_uint_eq(raw_http_request_count(srv), 5);
    ck_assert_uint_eq(raw_http_connection_count(srv), 1);
}
END_TEST

START_TEST(connection_refused_is_retry)
{
    /* A bound socket that does not listen: connecting to it is refused. */
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char u[64];
    util_fmt(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(a.sin_port));

    struct odsync_http_request r = req_of("PUT", u);
    struct odsync_http_response *resp = NULL;
    r.body = "{}";
    r.body_len = 2;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_RETRY);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(resp->status, 0);
    ck_assert_int_eq(resp->result_class, ODSYNC_RETRY);
    ck_assert_int_eq(resp->retry_after_ms, -1);
    ck_assert_ptr_nonnull(resp->error);
    ck_assert_msg(strstr(resp->error, "onnect") != NULL, "error: %s", resp->error);
    ck_assert_str_eq(resp->body, "");
    ck_assert_uint_eq(resp->body_len, 0);
    http_response_free(resp);
    close(fd);
}
END_TEST

START_TEST(timeout_and_empty_reply_are_retry)
{
    ck_assert_int_eq(raw_http_push_hang(srv), 0);
    struct odsync_http_request r = req_of("GET", at("/slow"));
    struct odsync_http_response *resp = NULL;
    r.timeout_ms = 300;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_RETRY);
    ck_assert_int_eq(resp->status, 0);
    ck_assert_ptr_nonnull(resp->error);
    ck_assert_msg(strstr(resp->error, "timed out") != NULL, "error: %s", resp->error);
    http_response_free(resp);

    ck_assert_int_eq(raw_http_push_close(srv), 0);
    resp = get("/gone");
    ck_assert_int_eq(resp->status, 0);
    ck_assert_int_eq(resp->result_class, ODSYNC_RETRY);
    ck_assert_ptr_nonnull(resp->error);
    http_response_free(resp);

    /* The client recovers on a fresh connection. */
    resp = get("/ok");
    ck_assert_int_eq(resp->status, 200);
    ck_assert_ptr_null(resp->error);
    http_response_free(resp);
}
END_TEST

/* A body of n bytes of 'a' (caller frees with free()). */
static char *big_body(size_t n)
{
    char *b = malloc(n + 1);
    ck_assert_ptr_nonnull(b);
    memset(b, 'a', n);
    b[n] = '\0';
    return b;
}

START_TEST(body_cap_16_mib)
{
    char *exact = big_body((size_t)16 * MIB);
    char *over = big_body((size_t)16 * MIB + 1);
    ck_assert_int_eq(raw_http_push_response(srv, 200, "Content-Type: text/plain\r\n", exact), 0);
    ck_assert_int_eq(raw_http_push_response(srv, 200, "Content-Type: text/plain\r\n", over), 0);
    free(exact);
    free(over);

    struct odsync_http_response *resp = get("/exact");
    ck_assert_int_eq(resp->result_class, ODSYNC_OK);
    ck_assert_uint_eq(resp->body_len, (size_t)16 * MIB);
    ck_assert_int_eq(resp->body[resp->body_len - 1], 'a');
    ck_assert_int_eq(resp->body[resp->body_len], '\0');
    http_response_free(resp);

    resp = get("/over");
    ck_assert_int_eq(resp->status, 200);
    ck_assert_int_eq(resp->result_class, ODSYNC_PERMANENT);
    ck_assert_str_eq(resp->error, "response body larger than 16 MiB");
    ck_assert_str_eq(resp->body, "");
    ck_assert_uint_eq(resp->body_len, 0);
    http_response_free(resp);

    /* And the client still works afterwards. */
    resp = get("/after");
    ck_assert_int_eq(resp->result_class, ODSYNC_OK);
    http_response_free(resp);
}
END_TEST

START_TEST(invalid_requests_refused)
{
    struct odsync_http_response *resp = (struct odsync_http_response *)1;
    struct odsync_http_request r = req_of("GET", "ftp://127.0.0.1/x");
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    ck_assert_ptr_null(resp);

    r = req_of("GET", "file:///etc/passwd");
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    r = req_of("GET", "127.0.0.1/x");
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    r = req_of("BREW", at("/x"));
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    r = req_of("GET", at("/x"));
    r.body = "x";
    r.body_len = 1;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    r = req_of("GET", at("/x"));
    r.timeout_ms = -1;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    r = req_of("GET", at("/x"));
    r.struct_size = 8;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    r = req_of(NULL, at("/x"));
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);

    /* Header injection is refused, in names and in values. */
    struct odsync_http_header bad_value = {"X-A", "1\r\nX-Injected: yes"};
    struct odsync_http_header bad_name = {"X A", "1"};
    r = req_of("GET", at("/x"));
    r.headers = &bad_value;
    r.header_count = 1;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    r.headers = &bad_name;
    ck_assert_int_eq(http_client_perform(cli, &r, &resp), ODSYNC_INVALID);
    ck_assert_ptr_null(resp);
    ck_assert_int_eq(http_client_perform(cli, NULL, &resp), ODSYNC_INVALID);
    ck_assert_int_eq(http_client_perform(cli, &r, NULL), ODSYNC_INVALID);

    ck_assert_uint_eq(raw_http_request_count(srv), 0);
    http_response_free(NULL);
    http_client_destroy(NULL);
}
END_TEST

START_TEST(url_encode_edges)
{
    char out[64];
    ck_assert_int_eq(http_url_encode("", out, sizeof(out)), ODSYNC_OK);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(http_url_encode("AZaz09-._~", out, sizeof(out)), ODSYNC_OK);
    ck_assert_str_eq(out, "AZaz09-._~");
    ck_assert_int_eq(http_url_encode("od:main-st:1042", out, sizeof(out)), ODSYNC_OK);
    ck_assert_str_eq(out, "od%3Amain-st%3A1042");
    ck_assert_int_eq(http_url_encode(" /?#[]@!$&'()*+,;=%", out, sizeof(out)), ODSYNC_OK);
    ck_assert_str_eq(out, "%20%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25");
    ck_assert_int_eq(http_url_encode("\xc3\xa9\x7f\x01\xff", out, sizeof(out)), ODSYNC_OK);
    ck_assert_str_eq(out, "%C3%A9%7F%01%FF");

    /* Exact fit, one short, and the "" on failure. */
    ck_assert_int_eq(http_url_encode("a:b", out, 6), ODSYNC_OK);
    ck_assert_str_eq(out, "a%3Ab");
    ck_assert_int_eq(http_url_encode("a:b", out, 5), ODSYNC_INVALID);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(http_url_encode("ab", out, 3), ODSYNC_OK);
    ck_assert_int_eq(http_url_encode("ab", out, 2), ODSYNC_INVALID);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(http_url_encode("", out, 1), ODSYNC_OK);
    ck_assert_int_eq(http_url_encode("a", out, 0), ODSYNC_INVALID);
    ck_assert_int_eq(http_url_encode("a", NULL, 4), ODSYNC_INVALID);
    ck_assert_int_eq(http_url_encode(NULL, out, sizeof(out)), ODSYNC_INVALID);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(allocation_failures_are_clean)
{
    /* Fail the nth allocation for every n until a request needs no more: each run either
     * succeeds or reports NOMEM with no response, and leaks nothing (ASan checks). */
    struct odsync_http_header hdrs[] = {{"Authorization", "Bearer x"}, {"X-A", "b"}};
    int succeeded = 0;
    for (long n = 1; n < 200 && !succeeded; n++) {
        ck_assert_int_eq(
            raw_http_push_response(srv, 201, "X-Id: 7\r\nRetry-After: 3\r\n", "{\"id\":\"7\"}"), 0);
        struct odsync_http_request r = req_of("PUT", at("/n"));
        struct odsync_http_response *resp = NULL;
        r.headers = hdrs;
        r.header_count = UTIL_ARRAY_LEN(hdrs);
        r.body = "{}";
        r.body_len = 2;
        util_fail_alloc_after(n);
        int rc = http_client_perform(cli, &r, &resp);
        util_fail_alloc_after(0);
        if (rc == ODSYNC_NOMEM) {
            ck_assert_ptr_null(resp);
            continue;
        }
        ck_assert_int_eq(rc, ODSYNC_OK);
        ck_assert_int_eq(resp->status, 201);
        ck_assert_str_eq(resp->body, "{\"id\":\"7\"}");
        ck_assert_str_eq(http_response_header(resp, "x-id"), "7");
        http_response_free(resp);
        succeeded = 1;
    }
    ck_assert(succeeded);
}
END_TEST

static Suite *http_client_suite(void)
{
    Suite *s = suite_create("http_client");
    TCase *pure = tcase_create("pure");
    tcase_add_test(pure, status_class_mapping);
    tcase_add_test(pure, retry_after_parser);
    tcase_add_test(pure, url_encode_edges);
    suite_add_tcase(s, pure);

    TCase *wire = tcase_create("wire");
    tcase_add_checked_fixture(wire, setup, teardown);
    tcase_set_timeout(wire, 60);
    tcase_add_test(wire, status_classes_over_the_wire);
    tcase_add_test(wire, retry_after_over_the_wire);
    tcase_add_test(wire, response_headers_case_insensitive);
    tcase_add_test(wire, request_bytes_on_the_wire);
    tcase_add_test(wire, connection_reused);
    tcase_add_test(wire, connection_refused_is_retry);
    tcase_add_test(wire, timeout_and_empty_reply_are_retry);
    tcase_add_test(wire, body_cap_16_mib);
    tcase_add_test(wire, invalid_requests_refused);
    tcase_add_test(wire, allocation_failures_are_clean);
    suite_add_tcase(s, wire);
    return s;
}

ODSYNC_TEST_MAIN(http_client_suite)
