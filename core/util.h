/*
 * util: small helpers every core module shares — checked allocation (with a test mode that
 * fails the Nth allocation), strict number parsing, a growable string buffer, file reading
 * and clocks. No module re-implements these.
 */
#ifndef ODSYNC_UTIL_H
#define ODSYNC_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <odsync/sink.h>

#if defined(__GNUC__)
#define UTIL_PRINTF(fi, ai) __attribute__((format(printf, fi, ai)))
#else
#define UTIL_PRINTF(fi, ai)
#endif

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation wrappers; NULL on failure (or when the fail-Nth test mode says so).
 * Caller frees with util_free (which is free). */
void *util_malloc(size_t n);
void *util_calloc(size_t count, size_t size);
void *util_realloc(void *p, size_t n);
char *util_strdup(const char *s); /* NULL in, NULL out */
char *util_strndup(const char *s, size_t n);
void util_free(void *p); /* accepts NULL */

/* Test mode: the nth allocation from now (1-based) and every later one fail; 0 turns it off.
 * cJSON's allocations fail too once util_init_cjson_hooks has run. */
void util_fail_alloc_after(long nth);
/* Install util's allocators as cJSON's hooks (done once at start-up). */
void util_init_cjson_hooks(void);

/* 1 when d is a whole number that int64_t holds (then *out is it), else 0. Casting a double
 * outside int64_t's range is undefined behaviour, so JSON numbers go through this. */
int util_double_i64(double d, int64_t *out);

/* Parse all of s as a base-10 integer in [min, max]. Returns ODSYNC_OK or ODSYNC_PARSE. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* snprintf that reports truncation: ODSYNC_OK, or ODSYNC_INVALID when it did not fit. */
int util_fmt(char *buf, size_t len, const char *fmt, ...) UTIL_PRINTF(3, 4);

/* Growable NUL-terminated string. Zero-initialise, append, then take or free. */
struct sbuf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    int failed; /* set once an allocation failed; later appends are no-ops */
};
int sbuf_append(struct sbuf *b, const char *s, size_t n);
int sbuf_puts(struct sbuf *b, const char *s);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) UTIL_PRINTF(2, 3);
int sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap);
/* Give the string to the caller (caller frees with util_free); the buffer is reset. Returns
 * NULL if any append failed (the buffer is freed then). Never NULL after no append: "". */
char *sbuf_take(struct sbuf *b);
void sbuf_free(struct sbuf *b); /* accepts a zeroed or freed buffer */

/* Read a whole file up to max bytes. *out is NUL-terminated; caller frees with util_free.
 * Returns ODSYNC_OK, ODSYNC_IO (errno kept), ODSYNC_INVALID (larger than max) or NOMEM. */
int util_read_file(const char *path, size_t max, char **out, size_t *len);

int64_t util_now_ms(void);       /* wall clock, ms since the epoch */
int64_t util_monotonic_ms(void); /* monotonic clock, ms */

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) without NUL bytes. */
int util_utf8_valid(const char *s, size_t n);

/* Constant-time comparison of two strings; 1 when equal. */
int util_secure_equal(const char *a, const char *b);

#endif
