/*
 * http_client: HTTP through libcurl. See http_client.h for the contract.
 *
 * One curl easy handle per client: curl_easy_reset() between requests clears the options but
 * keeps the connection cache, so consecutive requests to one host reuse the connection.
 * Redirects are never followed, only http and https are allowed, and request bodies and
 * header values are never logged (they carry patient data and credentials).
 *
 * A response is a struct http_resp whose first member is the SDK's struct
 * odsync_http_response; the pointer handed out is &resp->pub, and the header list, body and
 * error text live beside it in the same allocation group.
 */
#include "http_client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "log.h"
#include "util.h"

#ifndef ODSYNC_VERSION
#define ODSYNC_VERSION "0"
#endif

#define HTTP_DEFAULT_TIMEOUT_MS 30000L
#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_MAX_BODY           ((size_t)16 * 1024 * 1024)
#define HTTP_MAX_HEADER_BYTES   ((size_t)64 * 1024)
#define HTTP_MAX_HEADERS        200
#define HTTP_REQUEST_V1_0_SIZE  (offsetof(struct odsync_http_request, timeout_ms) + sizeof(int32_t))

static const char http_err_body_too_big[] = "response body larger than 16 MiB";
static const char http_err_headers_too_big[] = "response headers larger than 64 KiB";

struct http_client {
    CURL *easy;                   /* owned; keeps the connection cache */
    char errbuf[CURL_ERROR_SIZE]; /* curl's error text of the last perform */
};

struct http_header_kv {
    char *name;  /* owned */
    char *value; /* owned, OWS trimmed */
};

struct http_resp {
    struct odsync_http_response pub; /* must stay first: callers hold &pub */
    struct http_header_kv *headers;  /* owned array of n_headers, final response only */
    size_t n_headers;
    size_t cap_headers;
    size_t header_bytes; /* bytes of header lines seen, for the cap */
    char *body_buf;      /* owned, NUL-terminated, or NULL for an empty body */
    size_t body_len;
    size_t body_cap;
    char *error; /* owned copy of the error text, or NULL */
    int body_too_big;
    int headers_too_big;
    int nomem;
};

int http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? ODSYNC_OK : ODSYNC_INTERNAL;
}

void http_global_cleanup(void)
{
    curl_global_cleanup();
}

struct http_client *http_client_create(void)
{
    struct http_client *c = util_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->easy = curl_easy_init();
    if (c->easy == NULL) {
        util_free(c);
        return NULL;
    }
    return c;
}

void http_client_destroy(struct http_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->easy);
    util_free(c);
}

/* Drop every stored header (a new status line started, e.g. after "100 Continue"). */
static void resp_clear_headers(struct http_resp *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        util_free(r->headers[i].name);
        util_free(r->headers[i].value);
    }
    r->n_headers = 0;
}

void http_response_free(struct odsync_http_response *resp)
{
    struct http_resp *r = (struct http_resp *)resp;
    if (r == NULL)
        return;
    resp_clear_headers(r);
    util_free(r->headers);
    util_free(r->body_buf);
    util_free(r->error);
    util_free(r);
}

static int is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Trim OWS and line endings from both ends of [*s, *s + *n). */
static void trim_span(const char **s, size_t *n)
{
    while (*n > 0 && (is_ows((*s)[0]) || (*s)[0] == '\r' || (*s)[0] == '\n')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && (is_ows((*s)[*n - 1]) || (*s)[*n - 1] == '\r' || (*s)[*n - 1] == '\n'))
        (*n)--;
}

/* Append an obsolete folded line to the last header's value, joined with one space. */
static int resp_fold_header(struct http_resp *r, const char *s, size_t n)
{
    if (r->n_headers == 0)
        return ODSYNC_OK; /* a continuation with nothing to continue: ignore */
    struct http_header_kv *h = &r->headers[r->n_headers - 1];
    size_t old = strlen(h->value);
    char *v = util_realloc(h->value, old + 1 + n + 1);
    if (v == NULL)
        return ODSYNC_NOMEM;
    v[old] = ' ';
    memcpy(v + old + 1, s, n);
    v[old + 1 + n] = '\0';
    h->value = v;
    return ODSYNC_OK;
}

/* Store "name: value" (line without CRLF). Lines without a colon are ignored. */
static int resp_add_header(struct http_resp *r, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (colon == NULL || colon == line)
        return ODSYNC_OK;
    const char *name = line;
    size_t name_len = (size_t)(colon - line);
    trim_span(&name, &name_len);
    const char *value = colon + 1;
    size_t value_len = (size_t)(line + n - value);
    trim_span(&value, &value_len);
    if (name_len == 0)
        return ODSYNC_OK;
    if (r->n_headers == r->cap_headers) {
        size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
        struct http_header_kv *h = util_realloc(r->headers, cap * sizeof(*h));
        if (h == NULL)
            return ODSYNC_NOMEM;
        r->headers = h;
        r->cap_headers = cap;
    }
    char *kn = util_strndup(name, name_len);
    char *kv = util_strndup(value, value_len);
    if (kn == NULL || kv == NULL) {
        util_free(kn);
        util_free(kv);
        return ODSYNC_NOMEM;
    }
    r->headers[r->n_headers].name = kn;
    r->headers[r->n_headers].value = kv;
    r->n_headers++;
    return ODSYNC_OK;
}

/* CURLOPT_HEADERFUNCTION: one raw header line (with CRLF) per call. Returning anything but
 * n aborts the transfer. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct http_resp *r = userdata;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A new response starts (interim 1xx responses come first): keep only the last. */
        resp_clear_headers(r);
        r->header_bytes = n;
        return n;
    }
    r->header_bytes += n;
    if (r->header_bytes > HTTP_MAX_HEADER_BYTES || r->n_headers >= HTTP_MAX_HEADERS) {
        r->headers_too_big = 1;
        return 0;
    }
    int rc;
    if (n > 0 && is_ows(buf[0])) {
        const char *s = buf;
        size_t len = n;
        trim_span(&s, &len);
        rc = resp_fold_header(r, s, len);
    } else {
        size_t len = n;
        while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
            len--;
        rc = len > 0 ? resp_add_header(r, buf, len) : ODSYNC_OK;
    }
    if (rc != ODSYNC_OK) {
        r->nomem = 1;
        return 0;
    }
    return n;
}

/* CURLOPT_WRITEFUNCTION: append body bytes, keeping room for the NUL. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct http_resp *r = userdata;
    size_t n = size * nmemb;
    if (n > HTTP_MAX_BODY - r->body_len) {
        r->body_too_big = 1;
        return 0;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > HTTP_MAX_BODY + 1)
            cap = HTTP_MAX_BODY + 1;
        char *b = util_realloc(r->body_buf, cap);
        if (b == NULL) {
            r->nomem = 1;
            return 0;
        }
        r->body_buf = b;
        r->body_cap = cap;
    }
    memcpy(r->body_buf + r->body_len, data, n);
    r->body_len += n;
    r->body_buf[r->body_len] = '\0';
    return n;
}

/* RFC 9110 token characters, for header names. */
static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int valid_header(const struct odsync_http_header *h)
{
    if (h->name == NULL || h->value == NULL || h->name[0] == '\0')
        return 0;
    for (const char *p = h->name; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return 0;
    for (const char *p = h->value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return 0;
    return 1;
}

static int has_scheme(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* Build the curl header list from req. *list_out: caller frees with curl_slist_free_all.
 * Adds "Expect:" (no 100-continue round trip) unless the caller set Expect, and removes
 * curl's default form Content-Type when a body has no Content-Type. */
static int build_headers(const struct odsync_http_request *req, int has_body,
                         struct curl_slist **list_out)
{
    struct curl_slist *list = NULL;
    struct sbuf line = {0};
    int have_ct = 0, have_expect = 0;
    int rc = ODSYNC_OK;

    for (size_t i = 0; i < req->header_count; i++) {
        const struct odsync_http_header *h = &req->headers[i];
        if (!valid_header(h)) {
            rc = ODSYNC_INVALID;
            goto cleanup;
        }
        if (strcasecmp(h->name, "Content-Type") == 0)
            have_ct = 1;
        if (strcasecmp(h->name, "Expect") == 0)
            have_expect = 1;
        /* curl drops "Name:" (empty value) from the request; "Name;" sends it empty. */
        if (h->value[0] == '\0')
            rc = sbuf_printf(&line, "%s;", h->name);
        else
            rc = sbuf_printf(&line, "%s: %s", h->name, h->value);
        char *text = sbuf_take(&line);
        if (rc != ODSYNC_OK || text == NULL) {
            util_free(text);
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        struct curl_slist *next = curl_slist_append(list, text);
        /* curl copies the string; wipe ours since it may hold a credential. */
        memset(text, 0, strlen(text));
        util_free(text);
        if (next == NULL) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        list = next;
    }
    if (!have_expect) {
        struct curl_slist *next = curl_slist_append(list, "Expect:");
        if (next == NULL) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        list = next;
    }
    if (has_body && !have_ct) {
        struct curl_slist *next = curl_slist_append(list, "Content-Type:");
        if (next == NULL) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        list = next;
    }
    *list_out = list;
    list = NULL;
cleanup:
    sbuf_free(&line);
    curl_slist_free_all(list);
    return rc;
}

/* Set the method and body options. Returns ODSYNC_INVALID for an unknown method or a body
 * on GET/HEAD. */
static int set_method(CURL *easy, const struct odsync_http_request *req, int *has_body)
{
    const char *m = req->method;
    int body = req->body != NULL || req->body_len > 0;
    *has_body = 0;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        if (body)
            return ODSYNC_INVALID;
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        if (m[0] == 'H')
            curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        return ODSYNC_OK;
    }
    if (strcmp(m, "DELETE") == 0 && !body) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
        return ODSYNC_OK;
    }
    if (strcmp(m, "POST") != 0 && strcmp(m, "PUT") != 0 && strcmp(m, "PATCH") != 0 &&
        strcmp(m, "DELETE") != 0)
        return ODSYNC_INVALID;
    /* POST, PUT, PATCH (and DELETE with a body): always send a Content-Length. */
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
    if (strcmp(m, "POST") != 0)
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m);
    *has_body = 1;
    return ODSYNC_OK;
}

/* Length of url up to (not including) its query or fragment, for log lines. */
static int url_log_len(const char *url)
{
    size_t n = strcspn(url, "?#");
    return n > 512 ? 512 : (int)n;
}

int http_client_perform(struct http_client *c, const struct odsync_http_request *req,
                        struct odsync_http_response **out)
{
    struct http_resp *r = NULL;
    struct curl_slist *headers = NULL;
    int rc = ODSYNC_INVALID;
    int has_body = 0;

    if (out == NULL)
        return ODSYNC_INVALID;
    *out = NULL;
    if (c == NULL || req == NULL || req->struct_size < HTTP_REQUEST_V1_0_SIZE ||
        req->method == NULL || req->url == NULL || !has_scheme(req->url) || req->timeout_ms < 0 ||
        (req->header_count > 0 && req->headers == NULL) || (req->body == NULL && req->body_len > 0))
        goto cleanup;

    r = util_calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    r->pub.struct_size = (uint32_t)sizeof(r->pub);
    r->pub.retry_after_ms = -1;
    r->pub.body = "";

    CURL *easy = c->easy;
    curl_easy_reset(easy); /* options only: connections and caches are kept */
    rc = set_method(easy, req, &has_body);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = build_headers(req, has_body, &headers);
    if (rc != ODSYNC_OK)
        goto cleanup;

    c->errbuf[0] = '\0';
    long timeout = req->timeout_ms > 0 ? (long)req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    if (curl_easy_setopt(easy, CURLOPT_URL, req->url) != CURLE_OK) {
        rc = ODSYNC_INVALID;
        goto cleanup;
    }
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L); /* never rewrite dot segments of keys */
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "odsync/" ODSYNC_VERSION);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);

    int64_t started = util_monotonic_ms();
    CURLcode cc = curl_easy_perform(easy);
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);

    if (r->nomem) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    const char *error = NULL;
    if (r->body_too_big || r->headers_too_big) {
        /* An answer came, but too large to hold: retrying would get the same. */
        r->pub.status = (int32_t)code;
        r->pub.result_class = ODSYNC_PERMANENT;
        error = r->body_too_big ? http_err_body_too_big : http_err_headers_too_big;
        util_free(r->body_buf);
        r->body_buf = NULL;
        r->body_len = 0;
    } else if (cc != CURLE_OK) {
        r->pub.status = 0;
        r->pub.result_class = ODSYNC_RETRY;
        error = c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(cc);
        resp_clear_headers(r);
        util_free(r->body_buf);
        r->body_buf = NULL;
        r->body_len = 0;
    } else {
        r->pub.status = (int32_t)code;
        r->pub.result_class = http_status_class((int)code);
    }
    if (error != NULL) {
        r->error = util_strdup(error);
        if (r->error == NULL) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        r->pub.error = r->error;
    }
    if (r->pub.status != 0)
        r->pub.retry_after_ms =
            http_parse_retry_after(http_response_header(&r->pub, "Retry-After"), time(NULL));
    r->pub.body = r->body_buf != NULL ? r->body_buf : "";
    r->pub.body_len = r->body_len;

    log_debug("http", "%s %.*s -> %d %s (%lld ms)%s%s", req->method, url_log_len(req->url),
              req->url, (int)r->pub.status, odsync_status_name(r->pub.result_class),
              (long long)(util_monotonic_ms() - started), error != NULL ? ": " : "",
              error != NULL ? error : "");
    rc = r->pub.result_class;
    *out = &r->pub;
    r = NULL;
cleanup:
    curl_slist_free_all(headers);
    http_response_free(r != NULL ? &r->pub : NULL);
    return rc;
}

const char *http_response_header(const struct odsync_http_response *resp, const char *name)
{
    const struct http_resp *r = (const struct http_resp *)resp;
    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

int http_status_class(int status)
{
    if (status >= 200 && status <= 299)
        return ODSYNC_OK;
    if (status == 429)
        return ODSYNC_RATE_LIMITED;
    if (status == 401 || status == 403)
        return ODSYNC_AUTH;
    if (status == 408)
        return ODSYNC_RETRY;
    if ((status >= 300 && status <= 399) || (status >= 400 && status <= 499))
        return ODSYNC_PERMANENT;
    /* 0 (no response), 5xx, and anything that is no final HTTP status (1xx, < 0, >= 600):
     * the remote gave no usable answer, so try again later. */
    return ODSYNC_RETRY;
}

/* Parse exactly n ASCII digits at s into *out. */
static int parse_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Strict IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7), exactly 29 bytes.
 * The day name must be a real one; it is not checked against the date. */
static int parse_imf_fixdate(const char *s, size_t n, int64_t *epoch)
{
    static const char *const wdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int day, year, hour, min, sec, mon = 0, wday_ok = 0;

    if (n != 29 || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return 0;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(wdays); i++)
        if (memcmp(s, wdays[i], 3) == 0)
            wday_ok = 1;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(months); i++)
        if (memcmp(s + 8, months[i], 3) == 0)
            mon = (int)i + 1;
    if (!wday_ok || mon == 0 || !parse_digits(s + 5, 2, &day) || !parse_digits(s + 12, 4, &year) ||
        !parse_digits(s + 17, 2, &hour) || !parse_digits(s + 20, 2, &min) ||
        !parse_digits(s + 23, 2, &sec))
        return 0;
    if (day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 || sec > 60)
        return 0;
    *epoch = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
    return 1;
}

int64_t http_parse_retry_after(const char *value, time_t now)
{
    if (value == NULL)
        return -1;
    const char *s = value;
    size_t n = strlen(value);
    while (n > 0 && is_ows(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && is_ows(s[n - 1]))
        n--;
    if (n == 0)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        /* delta-seconds = 1*DIGIT; refuse values whose milliseconds overflow. */
        int64_t secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            if (secs > (INT64_MAX / 1000 - 9) / 10)
                return -1;
            secs = secs * 10 + (s[i] - '0');
        }
        return secs * 1000;
    }
    int64_t when;
    if (!parse_imf_fixdate(s, n, &when))
        return -1;
    int64_t delta = when - (int64_t)now;
    return delta > 0 ? delta * 1000 : 0;
}

int http_url_encode(const char *in, char *out, size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (out == NULL || out_len == 0)
        return ODSYNC_INVALID;
    if (in == NULL) {
        out[0] = '\0';
        return ODSYNC_INVALID;
    }
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        unsigned char ch = *p;
        int keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        size_t need = keep ? 1 : 3;
        if (out_len - o < need + 1) {
            out[0] = '\0';
            return ODSYNC_INVALID;
        }
        if (keep) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 0x0f];
        }
    }
    out[o] = '\0';
    return ODSYNC_OK;
}
