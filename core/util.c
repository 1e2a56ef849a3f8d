/*
 * util.c: allocation wrappers with a fail-Nth test mode, strict number parsing, a string
 * buffer, file reading, clocks and constant-time comparison.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* Allocations left before failure; < 0 = the test mode is off. */
static atomic_long alloc_budget = -1;

/* 1 when this allocation must fail under the test mode. */
static int alloc_should_fail(void)
{
    long left = atomic_load(&alloc_budget);
    if (left < 0)
        return 0;
    if (left == 0)
        return 1;
    return atomic_fetch_sub(&alloc_budget, 1) <= 0;
}

void util_fail_alloc_after(long nth)
{
    atomic_store(&alloc_budget, nth > 0 ? nth - 1 : -1);
}

void *util_malloc(size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *util_calloc(size_t count, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *util_realloc(void *p, size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *util_strndup(const char *s, size_t n)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = util_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *util_strdup(const char *s)
{
    return s == NULL ? NULL : util_strndup(s, strlen(s));
}

void util_free(void *p)
{
    free(p);
}

/* cJSON hook: malloc through the wrapper. */
static void *cjson_malloc(size_t n)
{
    return util_malloc(n);
}

void util_init_cjson_hooks(void)
{
    cJSON_Hooks hooks = {cjson_malloc, util_free};
    cJSON_InitHooks(&hooks);
}

int util_double_i64(double d, int64_t *out)
{
    /* [-2^63, 2^63): both bounds are exact doubles; NaN fails both comparisons */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != (double)(int64_t)d)
        return 0;
    *out = (int64_t)d;
    return 1;
}

int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '+')
        return ODSYNC_PARSE;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return ODSYNC_PARSE;
    *out = (int64_t)v;
    return ODSYNC_OK;
}

int util_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= len) ? ODSYNC_INVALID : ODSYNC_OK;
}

/* Make room for n more bytes plus a NUL. */
static int sbuf_reserve(struct sbuf *b, size_t n)
{
    size_t want, cap;
    char *p;
    if (b->failed)
        return ODSYNC_NOMEM;
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return ODSYNC_NOMEM;
    }
    want = b->len + n + 1;
    if (want <= b->cap)
        return ODSYNC_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap *= 2;
    p = util_realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return ODSYNC_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return ODSYNC_OK;
}

int sbuf_append(struct sbuf *b, const char *s, size_t n)
{
    if (sbuf_reserve(b, n) != ODSYNC_OK)
        return ODSYNC_NOMEM;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return ODSYNC_OK;
}

int sbuf_puts(struct sbuf *b, const char *s)
{
    return sbuf_append(b, s, strlen(s));
}

int sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->failed = 1;
        return ODSYNC_INVALID;
    }
    if (sbuf_reserve(b, (size_t)n) != ODSYNC_OK)
        return ODSYNC_NOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return ODSYNC_OK;
}

int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = sbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *sbuf_take(struct sbuf *b)
{
    char *s;
    if (b->failed) {
        sbuf_free(b);
        return NULL;
    }
    if (b->data == NULL)
        return util_strdup("");
    s = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void sbuf_free(struct sbuf *b)
{
    if (b == NULL)
        return;
    util_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

int util_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int rc = ODSYNC_IO;
    int fd = -1;
    struct sbuf b = {0};
    char chunk[8192];
    ssize_t n;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto cleanup;
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto cleanup;
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            rc = ODSYNC_INVALID;
            goto cleanup;
        }
        if (sbuf_append(&b, chunk, (size_t)n) != ODSYNC_OK) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
    }
    if (len != NULL)
        *len = b.len;
    *out = sbuf_take(&b);
    rc = *out ? ODSYNC_OK : ODSYNC_NOMEM;
cleanup:
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    sbuf_free(&b);
    return rc;
}

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_secure_equal(const char *a, const char *b)
{
    size_t la, lb, i;
    unsigned char diff;
    if (a == NULL || b == NULL)
        return 0;
    la = strlen(a);
    lb = strlen(b);
    diff = (unsigned char)(la != lb);
    for (i = 0; i < lb; i++)
        diff |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
    return diff == 0;
}

int util_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p, need, cp, min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= need)
            return 0;
        for (unsigned i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += need + 1;
    }
    return 1;
}
