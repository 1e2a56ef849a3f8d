/*
 * hubspot_tz.c: the next local midnight from a POSIX TZ rule. See hubspot_tz.h.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "hubspot_tz.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <odsync/sink.h>

#define TZ_FILE_MAX   (1024 * 1024) /* zone files are a few KiB */
#define TZ_FOOTER_MAX 128

/* Days since 1970-01-01 of the civil date y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The civil year of a day count since 1970-01-01. */
static int64_t year_of_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    return yoe + era * 400 + (m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Floor division and modulo for a positive divisor. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Day count (since 1970-01-01) on which rule r falls in year y. */
static int64_t rule_day(const struct hubspot_tz_rule *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->day - 1 + (is_leap(y) && r->day >= 60);
    if (r->kind == 'D')
        return jan1 + r->day;
    int64_t first = days_from_civil(y, r->m, 1);
    int64_t wd = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
    int64_t day = first + ((r->d - wd) % 7 + 7) % 7 + (int64_t)(r->w - 1) * 7;
    int next_m = r->m == 12 ? 1 : r->m + 1;
    int64_t next = days_from_civil(r->m == 12 ? y + 1 : y, next_m, 1);
    while (day >= next)
        day -= 7;
    return day;
}

int64_t hubspot_tz_offset(const struct hubspot_tz *z, int64_t t)
{
    if (!z->has_dst)
        return z->std_off;
    int64_t y = year_of_days(floor_div(t + z->std_off, 86400));
    /* The change to DST happens at a standard-time reading, the change back at a DST one. */
    int64_t s = rule_day(&z->start, y) * 86400 + z->start.time - z->std_off;
    int64_t e = rule_day(&z->end, y) * 86400 + z->end.time - z->dst_off;
    int dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return dst ? z->dst_off : z->std_off;
}

int64_t hubspot_tz_next_midnight(const struct hubspot_tz *z, int64_t t)
{
    int64_t off = hubspot_tz_offset(z, t);
    int64_t mid_local = (floor_div(t + off, 86400) + 1) * 86400;
    int64_t res = mid_local - off;
    for (int i = 0; i < 2; i++) {
        int64_t o = hubspot_tz_offset(z, res);
        res = mid_local - o;
    }
    return res > t ? res : t + 1;
}

/* ---- POSIX TZ strings ---------------------------------------------------------------------- */

/* A zone abbreviation: <...> or three or more letters. Advances *p. */
static int parse_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (e == NULL || e - s < 4)
            return -1;
        *p = e + 1;
        return 0;
    }
    size_t n = 0;
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3)
        return -1;
    *p = s + n;
    return 0;
}

/* A non-negative decimal number of at most max. Advances *p. */
static int parse_num(const char **p, long max, long *out)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] in seconds (hours up to 167, as POSIX.1-2024 allows). Advances *p. */
static int parse_time(const char **p, int64_t *out)
{
    const char *s = *p;
    int sign = 1;
    long h, m = 0, sec = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (parse_num(&s, 167, &h) != 0)
        return -1;
    if (*s == ':') {
        s++;
        if (parse_num(&s, 59, &m) != 0)
            return -1;
        if (*s == ':') {
            s++;
            if (parse_num(&s, 59, &sec) != 0)
                return -1;
        }
    }
    *p = s;
    *out = sign * ((int64_t)h * 3600 + m * 60 + sec);
    return 0;
}

/* A date rule with its optional /time (default 02:00). Advances *p. */
static int parse_rule(const char **p, struct hubspot_tz_rule *r)
{
    const char *s = *p;
    long a, b, c;
    memset(r, 0, sizeof(*r));
    r->time = 7200;
    if (*s == 'M') {
        s++;
        if (parse_num(&s, 12, &a) != 0 || a < 1 || *s++ != '.' || parse_num(&s, 5, &b) != 0 ||
            b < 1 || *s++ != '.' || parse_num(&s, 6, &c) != 0)
            return -1;
        r->kind = 'M';
        r->m = (int)a;
        r->w = (int)b;
        r->d = (int)c;
    } else if (*s == 'J') {
        s++;
        if (parse_num(&s, 365, &a) != 0 || a < 1)
            return -1;
        r->kind = 'J';
        r->day = (int)a;
    } else {
        if (parse_num(&s, 365, &a) != 0)
            return -1;
        r->kind = 'D';
        r->day = (int)a;
    }
    if (*s == '/') {
        s++;
        if (parse_time(&s, &r->time) != 0)
            return -1;
    }
    *p = s;
    return 0;
}

/* Parse a whole POSIX TZ string into z. */
static int parse_posix(const char *s, struct hubspot_tz *z)
{
    int64_t off;
    memset(z, 0, sizeof(*z));
    if (parse_name(&s) != 0 || parse_time(&s, &off) != 0)
        return -1;
    z->std_off = -off; /* POSIX offsets are west of Greenwich */
    if (*s == '\0')
        return 0;
    if (parse_name(&s) != 0)
        return -1;
    z->has_dst = 1;
    z->dst_off = z->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (parse_time(&s, &off) != 0)
            return -1;
        z->dst_off = -off;
    }
    if (*s == '\0') {
        /* No rule: the POSIX default is implementation-defined; use today's US rule. */
        const char *us = "M3.2.0,M11.1.0";
        return parse_rule(&us, &z->start) == 0 && *us++ == ',' && parse_rule(&us, &z->end) == 0
                   ? 0
                   : -1;
    }
    if (*s++ != ',' || parse_rule(&s, &z->start) != 0 || *s++ != ',' ||
        parse_rule(&s, &z->end) != 0 || *s != '\0')
        return -1;
    return 0;
}

/* 1 when name is a safe relative zone name: [A-Za-z0-9_+-/], no leading '/', no "..". */
static int safe_zone_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || name[0] == '/' || strstr(name, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/'))
            return 0;
    }
    return 1;
}

/* The footer of the TZif file at path into out: the text between the last two newlines.
 * Returns ODSYNC_OK, ODSYNC_NOT_FOUND or ODSYNC_PARSE. */
static int read_footer(const char *path, char *out, size_t out_len)
{
    struct stat sb;
    char *buf = NULL;
    int rc = ODSYNC_NOT_FOUND;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        goto cleanup;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        goto cleanup;
    rc = ODSYNC_PARSE;
    if (sb.st_size < 44 || sb.st_size > TZ_FILE_MAX)
        goto cleanup;
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n <= 0)
            goto cleanup;
        got += (size_t)n;
    }
    if (memcmp(buf, "TZif", 4) != 0 || buf[4] < '2' || buf[got - 1] != '\n')
        goto cleanup;
    size_t end = got - 1, start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (start == 0 || end - start >= out_len)
        goto cleanup;
    memcpy(out, buf + start, end - start);
    out[end - start] = '\0';
    rc = ODSYNC_OK;
cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int hubspot_tz_load(const char *name, struct hubspot_tz *out, char *err, size_t errlen)
{
    char path[512], footer[TZ_FOOTER_MAX];
    struct hubspot_tz z;
    const char *dir = getenv("TZDIR");
    int has_digit = 0;

    if (name == NULL || name[0] == '\0') {
        snprintf(err, errlen, "empty time zone");
        return ODSYNC_INVALID;
    }
    for (const char *c = name; *c; c++)
        has_digit |= *c >= '0' && *c <= '9';
    if (has_digit && strchr(name, '/') == NULL && parse_posix(name, &z) == 0) {
        *out = z;
        return ODSYNC_OK;
    }
    if (!safe_zone_name(name)) {
        snprintf(err, errlen, "\"%s\" is neither an IANA zone name nor a POSIX TZ rule", name);
        return ODSYNC_INVALID;
    }
    if (dir == NULL || dir[0] == '\0')
        dir = "/usr/share/zoneinfo";
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        snprintf(err, errlen, "time zone \"%s\": name too long", name);
        return ODSYNC_INVALID;
    }
    int rc = read_footer(path, footer, sizeof(footer));
    if (rc == ODSYNC_NOT_FOUND) {
        snprintf(err, errlen, "unknown time zone \"%s\" (no zone file under %s)", name, dir);
        return rc;
    }
    if (rc != ODSYNC_OK || parse_posix(footer, &z) != 0) {
        snprintf(err, errlen, "time zone \"%s\": no usable rule in its zone file", name);
        return ODSYNC_PARSE;
    }
    *out = z;
    return ODSYNC_OK;
}
