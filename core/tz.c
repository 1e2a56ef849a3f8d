/*
 * tz.c: read a TZif file (RFC 8536) and answer offset questions from it, with no global
 * state. The file gives ascending transition instants, each naming a local time type (an
 * offset and a DST flag); before the first transition type 0 applies, and after the last
 * one the POSIX TZ footer rule does (or, without a footer, the last transition's type).
 *
 * Footer grammar handled: std offset [dst [offset] [,start[/time],end[/time]]] where names
 * are 3+ letters or <quoted> ([A-Za-z0-9+-]), offsets are [+-]hh[:mm[:ss]] west of UTC
 * (POSIX sign), dates are Jn (1-365, February 29 never counted), n (0-365, counting it) or
 * Mm.w.d (day d of week w of month m, week 5 = the last), and times are [+-]hhh[:mm[:ss]]
 * up to 167 hours (the version 3 extension), default 02:00. A dst zone without rules uses
 * the US rule M3.2.0,M11.1.0, as glibc does. The rule year is the local standard-time year
 * of the instant (glibc uses the UTC year, which differs only for rules that fire within
 * hours of the new year, such as "J1/0,J365/25" all-year DST).
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_NAME_MAX    255
#define TZ_FILE_MAX    (256 * 1024)             /* larger zone files are refused */
#define TZ_FOOTER_MAX  128                      /* longest footer accepted */
#define TZ_HEADER_LEN  44                       /* "TZif", version, 15 reserved, 6 counts */
#define TZ_LIMIT       INT64_C(100000000000000) /* |seconds| accepted, about 3 million years */
#define TZ_OFFSET_MAX  (26 * 3600)              /* |offset| accepted from a file or footer */
#define SECS_PER_DAY   86400

/* One local time type. */
struct tz_type {
    int32_t off; /* seconds east of UTC */
    int isdst;   /* 1 for daylight saving time */
};

/* One footer rule date: when DST starts or ends, in local time. */
struct tz_rule {
    char kind;    /* 'J' (Jn), 'D' (n) or 'M' (Mm.w.d) */
    int day;      /* J: 1-365; D: 0-365; M: weekday 0-6 (Sunday 0) */
    int week;     /* M: 1-5 */
    int month;    /* M: 1-12 */
    int32_t secs; /* time of day, -167h..167h; local time in force before the change */
};

/* The POSIX TZ footer. */
struct tz_footer {
    int present;
    int has_dst;
    int32_t std_off; /* seconds east */
    int32_t dst_off; /* seconds east */
    struct tz_rule start, end;
};

struct tz {
    char *name; /* owned */
    size_t n_trans;
    int64_t *trans;        /* owned, n_trans ascending instants (NULL when 0) */
    unsigned char *idx;    /* owned, type index of each transition */
    size_t n_types;        /* >= 1 */
    struct tz_type *types; /* owned */
    size_t n_offs;
    int32_t *offs; /* owned, the distinct offsets of types and footer */
    struct tz_footer footer;
};

/* Counts of a TZif header. */
struct tz_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

/* ---- calendar arithmetic ------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date of a day count since 1970-01-01. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Floor division of seconds into days. */
static int64_t floor_days(int64_t t)
{
    int64_t q = t / SECS_PER_DAY;
    if (t % SECS_PER_DAY < 0)
        q--;
    return q;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* ---- footer rule evaluation ---------------------------------------------------------- */

/* Local (naive) seconds at which rule r fires in year y. */
static int64_t rule_local_time(const struct tz_rule *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1), day;

    if (r->kind == 'J') {
        day = jan1 + r->day - 1;
        if (is_leap(y) && r->day >= 60)
            day++;
    } else if (r->kind == 'D') {
        day = jan1 + r->day;
    } else {
        int64_t first = days_from_civil(y, r->month, 1);
        int wday1 = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        int dom = 1 + (r->day - wday1 + 7) % 7 + (r->week - 1) * 7;
        while (dom > month_days(y, r->month))
            dom -= 7;
        day = first + dom - 1;
    }
    return day * SECS_PER_DAY + r->secs;
}

/* The offset the footer gives at instant utc. */
static int32_t footer_offset(const struct tz_footer *f, int64_t utc)
{
    int64_t y, start, end;
    int m, d;

    if (!f->has_dst)
        return f->std_off;
    civil_from_days(floor_days(utc + f->std_off), &y, &m, &d);
    /* The start time is read on standard time, the end time on daylight time. */
    start = rule_local_time(&f->start, y) - f->std_off;
    end = rule_local_time(&f->end, y) - f->dst_off;
    if (start < end) /* northern hemisphere: DST inside the year */
        return utc >= start && utc < end ? f->dst_off : f->std_off;
    /* southern hemisphere: DST across the new year */
    return utc >= end && utc < start ? f->std_off : f->dst_off;
}

/* ---- footer parsing ------------------------------------------------------------------ */

/* Parse up to maxdig digits at *p as a number no larger than max. Returns 0 or -1. */
static int parse_num(const char **p, int maxdig, int max, int *out)
{
    const char *s = *p;
    int v = 0, n = 0;

    while (n < maxdig && s[n] >= '0' && s[n] <= '9') {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0 || v > max)
        return -1;
    *p = s + n;
    *out = v;
    return 0;
}

/* Parse [+-]h[:mm[:ss]] with hours up to maxh into signed seconds. Returns 0 or -1. */
static int parse_hms(const char **p, int maxh, int32_t *out)
{
    const char *s = *p;
    int sign = 1, h, mi = 0, se = 0;

    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    if (parse_num(&s, 3, maxh, &h) != 0)
        return -1;
    if (*s == ':') {
        s++;
        if (parse_num(&s, 2, 59, &mi) != 0)
            return -1;
        if (*s == ':') {
            s++;
            if (parse_num(&s, 2, 59, &se) != 0)
                return -1;
        }
    }
    *p = s;
    *out = sign * (h * 3600 + mi * 60 + se);
    return 0;
}

/* Skip a zone abbreviation: 3+ letters, or <3+ of [A-Za-z0-9+-]>. Returns 0 or -1. */
static int parse_abbr(const char **p)
{
    const char *s = *p;
    size_t n = 0;

    if (*s == '<') {
        s++;
        while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-')
            n++;
        if (n < 3 || s[n] != '>')
            return -1;
        *p = s + n + 1;
        return 0;
    }
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3)
        return -1;
    *p = s + n;
    return 0;
}

/* Parse a rule date and optional /time. Returns 0 or -1. */
static int parse_rule(const char **p, struct tz_rule *r)
{
    const char *s = *p;

    memset(r, 0, sizeof(*r));
    r->secs = 2 * 3600;
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (parse_num(&s, 3, 365, &r->day) != 0 || r->day < 1)
            return -1;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (parse_num(&s, 2, 12, &r->month) != 0 || r->month < 1 || *s++ != '.' ||
            parse_num(&s, 1, 5, &r->week) != 0 || r->week < 1 || *s++ != '.' ||
            parse_num(&s, 1, 6, &r->day) != 0)
            return -1;
    } else {
        r->kind = 'D';
        if (parse_num(&s, 3, 365, &r->day) != 0)
            return -1;
    }
    if (*s == '/') {
        s++;
        if (parse_hms(&s, 167, &r->secs) != 0)
            return -1;
    }
    *p = s;
    return 0;
}

/* Parse a whole POSIX TZ string into f. Returns 0 or -1. */
static int parse_footer(const char *s, struct tz_footer *f)
{
    int32_t west;

    memset(f, 0, sizeof(*f));
    if (parse_abbr(&s) != 0 || parse_hms(&s, 24, &west) != 0)
        return -1;
    f->std_off = -west;
    f->present = 1;
    if (*s == '\0')
        return 0;
    if (parse_abbr(&s) != 0)
        return -1;
    f->has_dst = 1;
    f->dst_off = f->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (parse_hms(&s, 24, &west) != 0)
            return -1;
        f->dst_off = -west;
    }
    if (*s == '\0') {
        f->start = (struct tz_rule){'M', 0, 2, 3, 2 * 3600};
        f->end = (struct tz_rule){'M', 0, 1, 11, 2 * 3600};
        return 0;
    }
    if (*s++ != ',' || parse_rule(&s, &f->start) != 0 || *s++ != ',' ||
        parse_rule(&s, &f->end) != 0 || *s != '\0')
        return -1;
    return 0;
}

/* ---- TZif parsing -------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Read the header at buf[pos..]: version and counts. Returns 0 or -1 (short or bad magic). */
static int read_header(const unsigned char *buf, size_t len, size_t pos, char *version,
                       struct tz_counts *c)
{
    const unsigned char *h = buf + pos;

    if (len < pos || len - pos < TZ_HEADER_LEN || memcmp(h, "TZif", 4) != 0)
        return -1;
    *version = (char)h[4];
    c->isut = be32(h + 20);
    c->isstd = be32(h + 24);
    c->leap = be32(h + 28);
    c->time = be32(h + 32);
    c->type = be32(h + 36);
    c->chars = be32(h + 40);
    return 0;
}

/* Bytes of the data block after a header with counts c and time size tsize (4 or 8). */
static uint64_t block_len(const struct tz_counts *c, unsigned tsize)
{
    return (uint64_t)c->time * (tsize + 1) + (uint64_t)c->type * 6 + c->chars +
           (uint64_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* Fill z's transitions and types from the data block at buf[pos..] (already bounds-checked).
 * Returns ODSYNC_OK, ODSYNC_PARSE (what is wrong goes in why) or ODSYNC_NOMEM. */
static int read_block(struct tz *z, const unsigned char *p, const struct tz_counts *c,
                      unsigned tsize, const char **why)
{
    size_t i;

    if (c->type == 0 || c->type > 256 || c->chars == 0 || (c->isstd != 0 && c->isstd != c->type) ||
        (c->isut != 0 && c->isut != c->type)) {
        *why = "inconsistent header counts";
        return ODSYNC_PARSE;
    }
    if (c->leap != 0) {
        *why = "leap-second (\"right/\") zone files are not supported";
        return ODSYNC_PARSE;
    }
    z->n_trans = c->time;
    z->n_types = c->type;
    z->types = util_calloc(z->n_types, sizeof(*z->types));
    if (z->types == NULL)
        return ODSYNC_NOMEM;
    if (z->n_trans > 0) {
        z->trans = util_malloc(z->n_trans * sizeof(*z->trans));
        z->idx = util_malloc(z->n_trans);
        if (z->trans == NULL || z->idx == NULL)
            return ODSYNC_NOMEM;
    }
    for (i = 0; i < z->n_trans; i++) {
        z->trans[i] = tsize == 8 ? be64(p + i * 8) : (int64_t)(int32_t)be32(p + i * 4);
        if (i > 0 && z->trans[i] <= z->trans[i - 1]) {
            *why = "transition times out of order";
            return ODSYNC_PARSE;
        }
    }
    p += z->n_trans * tsize;
    for (i = 0; i < z->n_trans; i++) {
        z->idx[i] = p[i];
        if (z->idx[i] >= z->n_types) {
            *why = "transition names a missing local time type";
            return ODSYNC_PARSE;
        }
    }
    p += z->n_trans;
    for (i = 0; i < z->n_types; i++) {
        int32_t off = (int32_t)be32(p + i * 6);
        if (off < -TZ_OFFSET_MAX || off > TZ_OFFSET_MAX || p[i * 6 + 4] > 1 ||
            p[i * 6 + 5] >= c->chars) {
            *why = "bad local time type";
            return ODSYNC_PARSE;
        }
        z->types[i].off = off;
        z->types[i].isdst = p[i * 6 + 4];
    }
    return ODSYNC_OK;
}

/* Parse a whole TZif image into z. Returns ODSYNC_OK, ODSYNC_PARSE (why set) or NOMEM. */
static int parse_tzif(struct tz *z, const unsigned char *buf, size_t len, const char **why)
{
    struct tz_counts c;
    char version, footer[TZ_FOOTER_MAX + 1];
    uint64_t blen;
    size_t pos, n;
    const unsigned char *nl;
    int rc;

    if (read_header(buf, len, 0, &version, &c) != 0) {
        *why = len < TZ_HEADER_LEN ? "truncated header" : "not a TZif file (bad magic)";
        return ODSYNC_PARSE;
    }
    if (version != 0 && version != '2' && version != '3' && version != '4') {
        *why = "unsupported TZif version";
        return ODSYNC_PARSE;
    }
    blen = block_len(&c, 4);
    if (blen > len - TZ_HEADER_LEN) {
        *why = "truncated data";
        return ODSYNC_PARSE;
    }
    if (version == 0)
        return read_block(z, buf + TZ_HEADER_LEN, &c, 4, why);

    pos = TZ_HEADER_LEN + (size_t)blen;
    if (read_header(buf, len, pos, &version, &c) != 0) {
        *why = len - pos < TZ_HEADER_LEN ? "truncated second header" : "bad second header";
        return ODSYNC_PARSE;
    }
    pos += TZ_HEADER_LEN;
    blen = block_len(&c, 8);
    if (blen > len - pos) {
        *why = "truncated 64-bit data";
        return ODSYNC_PARSE;
    }
    rc = read_block(z, buf + pos, &c, 8, why);
    if (rc != ODSYNC_OK)
        return rc;
    pos += (size_t)blen;
    /* The footer: "\n" TZ-string "\n". */
    if (pos >= len || buf[pos] != '\n') {
        *why = "missing footer";
        return ODSYNC_PARSE;
    }
    pos++;
    nl = memchr(buf + pos, '\n', len - pos);
    if (nl == NULL) {
        *why = "truncated footer";
        return ODSYNC_PARSE;
    }
    n = (size_t)(nl - (buf + pos));
    if (n > TZ_FOOTER_MAX || memchr(buf + pos, '\0', n) != NULL) {
        *why = "bad footer";
        return ODSYNC_PARSE;
    }
    if (n == 0)
        return ODSYNC_OK; /* no rule: the last type stays in force */
    memcpy(footer, buf + pos, n);
    footer[n] = '\0';
    if (parse_footer(footer, &z->footer) != 0) {
        *why = "unsupported or malformed TZ footer";
        return ODSYNC_PARSE;
    }
    return ODSYNC_OK;
}

/* ---- loading ------------------------------------------------------------------------- */

/* 1 when name is safe to append to the zone directory (config.c's rule). */
static int name_ok(const char *name)
{
    size_t i;

    if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL ||
        strlen(name) > TZ_NAME_MAX)
        return 0;
    for (i = 0; name[i] != '\0'; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '+' || ch == '-' || ch == '/'))
            return 0;
    }
    return 1;
}

/* Read the regular file at path (at most TZ_FILE_MAX bytes) into *out (caller frees with
 * util_free). Returns ODSYNC_OK, ODSYNC_NOT_FOUND (missing or not a regular file), ODSYNC_IO,
 * ODSYNC_INVALID (too large) or ODSYNC_NOMEM. */
static int read_zone_file(const char *path, unsigned char **out, size_t *len)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int fd, rc = ODSYNC_IO;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = errno == ENOENT || errno == ENOTDIR ? ODSYNC_NOT_FOUND : ODSYNC_IO;
        goto cleanup;
    }
    if (fstat(fd, &st) != 0)
        goto cleanup;
    if (!S_ISREG(st.st_mode)) {
        rc = ODSYNC_NOT_FOUND;
        goto cleanup;
    }
    if (st.st_size > TZ_FILE_MAX) {
        rc = ODSYNC_INVALID;
        goto cleanup;
    }
    buf = util_malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto cleanup;
        if (n == 0)
            break; /* shrank meanwhile: parse what is there */
        got += (size_t)n;
    }
    *out = buf;
    *len = got;
    buf = NULL;
    rc = ODSYNC_OK;
cleanup:
    if (fd >= 0)
        close(fd);
    util_free(buf);
    return rc;
}

/* Add off to z->offs unless it is there already. */
static void add_offset(struct tz *z, int32_t off)
{
    size_t i;

    for (i = 0; i < z->n_offs; i++)
        if (z->offs[i] == off)
            return;
    z->offs[z->n_offs++] = off;
}

/* Fill z->offs with every distinct offset the zone can give. Returns ODSYNC_OK or NOMEM. */
static int collect_offsets(struct tz *z)
{
    size_t i;

    z->offs = util_malloc((z->n_types + 2) * sizeof(*z->offs));
    if (z->offs == NULL)
        return ODSYNC_NOMEM;
    for (i = 0; i < z->n_types; i++)
        add_offset(z, z->types[i].off);
    if (z->footer.present) {
        add_offset(z, z->footer.std_off);
        if (z->footer.has_dst)
            add_offset(z, z->footer.dst_off);
    }
    return ODSYNC_OK;
}

/* Write "time zone "name": msg" into err (may be NULL). Returns rc. */
static int load_fail(char *err, size_t errlen, const char *name, int rc, const char *msg)
{
    if (err != NULL && errlen > 0)
        (void)util_fmt(err, errlen, "time zone \"%s\": %s", name, msg);
    return rc;
}

int tz_load(const char *name, struct tz **out, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR"), *why = "corrupt file";
    char path[4096], msg[256];
    unsigned char *buf = NULL;
    struct tz *z = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (name == NULL || !name_ok(name)) {
        rc = ODSYNC_INVALID;
        if (err != NULL && errlen > 0)
            (void)util_fmt(err, errlen, "invalid time zone name%s", name == NULL ? " (null)" : "");
        goto cleanup;
    }
    if (dir == NULL || dir[0] == '\0')
        dir = TZ_DEFAULT_DIR;
    if (util_fmt(path, sizeof(path), "%s/%s", dir, name) != ODSYNC_OK) {
        rc = load_fail(err, errlen, name, ODSYNC_INVALID, "zone directory path too long");
        goto cleanup;
    }
    rc = read_zone_file(path, &buf, &len);
    if (rc == ODSYNC_NOT_FOUND) {
        (void)util_fmt(msg, sizeof(msg), "unknown time zone (no zone file under %s)", dir);
        rc = load_fail(err, errlen, name, rc, msg);
        goto cleanup;
    }
    if (rc == ODSYNC_INVALID) {
        rc = load_fail(err, errlen, name, ODSYNC_PARSE, "zone file too large");
        goto cleanup;
    }
    if (rc != ODSYNC_OK) {
        rc = load_fail(err, errlen, name, rc,
                       rc == ODSYNC_NOMEM ? "out of memory" : "cannot read zone file");
        goto cleanup;
    }
    z = util_calloc(1, sizeof(*z));
    if (z == NULL) {
        rc = load_fail(err, errlen, name, ODSYNC_NOMEM, "out of memory");
        goto cleanup;
    }
    z->name = util_strdup(name);
    if (z->name == NULL) {
        rc = load_fail(err, errlen, name, ODSYNC_NOMEM, "out of memory");
        goto cleanup;
    }
    rc = parse_tzif(z, buf, len, &why);
    if (rc != ODSYNC_OK) {
        if (rc == ODSYNC_NOMEM) {
            rc = load_fail(err, errlen, name, rc, "out of memory");
        } else {
            (void)util_fmt(msg, sizeof(msg), "invalid zone file: %s", why);
            rc = load_fail(err, errlen, name, rc, msg);
        }
        goto cleanup;
    }
    rc = collect_offsets(z);
    if (rc != ODSYNC_OK) {
        rc = load_fail(err, errlen, name, rc, "out of memory");
        goto cleanup;
    }
    *out = z;
    z = NULL;
cleanup:
    util_free(buf);
    tz_free(z);
    return rc;
}

void tz_free(struct tz *z)
{
    if (z == NULL)
        return;
    util_free(z->name);
    util_free(z->trans);
    util_free(z->idx);
    util_free(z->types);
    util_free(z->offs);
    util_free(z);
}

const char *tz_name(const struct tz *z)
{
    return z->name;
}

/* ---- queries ------------------------------------------------------------------------- */

int64_t tz_offset_at_utc(const struct tz *z, int64_t utc_seconds)
{
    size_t lo, hi;

    if (utc_seconds > TZ_LIMIT)
        utc_seconds = TZ_LIMIT;
    if (utc_seconds < -TZ_LIMIT)
        utc_seconds = -TZ_LIMIT;
    if (z->n_trans == 0)
        return z->footer.present ? footer_offset(&z->footer, utc_seconds) : z->types[0].off;
    if (utc_seconds < z->trans[0])
        return z->types[0].off;
    if (utc_seconds >= z->trans[z->n_trans - 1] && z->footer.present)
        return footer_offset(&z->footer, utc_seconds);
    /* the last transition at or before utc_seconds */
    lo = 0;
    hi = z->n_trans;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= utc_seconds)
            lo = mid;
        else
            hi = mid;
    }
    return z->types[z->idx[lo]].off;
}

int tz_utc_to_local(const struct tz *z, int64_t utc, int64_t *local_naive_seconds)
{
    if (utc > TZ_LIMIT || utc < -TZ_LIMIT)
        return ODSYNC_INVALID;
    *local_naive_seconds = utc + tz_offset_at_utc(z, utc);
    return ODSYNC_OK;
}

int tz_local_to_utc(const struct tz *z, int64_t local_naive_seconds, int fold, int64_t *utc)
{
    int64_t t = local_naive_seconds, lo = 0, hi = 0;
    size_t i;
    int found = 0;

    if (t > TZ_LIMIT || t < -TZ_LIMIT || (fold != 0 && fold != 1))
        return ODSYNC_INVALID;
    /* Each offset o the zone ever uses gives the candidate instant t - o; it is an answer
     * when o is the offset in force then. Keep the earliest and the latest answer. */
    for (i = 0; i < z->n_offs; i++) {
        int64_t u = t - z->offs[i];
        if (tz_offset_at_utc(z, u) != z->offs[i])
            continue;
        if (!found || u < lo)
            lo = u;
        if (!found || u > hi)
            hi = u;
        found = 1;
    }
    if (found) {
        *utc = fold == 0 ? lo : hi;
        return ODSYNC_OK;
    }
    /* Skipped: read t with the offset in force before the gap, which lands past it. */
    *utc = t - tz_offset_at_utc(z, t - 90000);
    return ODSYNC_OK;
}

/* ---- naive local helpers -------------------------------------------------------------- */

/* Parse exactly n digits at s into *out. Returns 0 or -1. */
static int digits(const char *s, int n, int *out)
{
    int i, v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int tz_parse_local(const char *s, int64_t *naive)
{
    int y, mo, d, h, mi, se;

    if (s == NULL || strlen(s) != 19 || s[4] != '-' || s[7] != '-' ||
        (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':')
        return ODSYNC_PARSE;
    if (digits(s, 4, &y) != 0 || digits(s + 5, 2, &mo) != 0 || digits(s + 8, 2, &d) != 0 ||
        digits(s + 11, 2, &h) != 0 || digits(s + 14, 2, &mi) != 0 || digits(s + 17, 2, &se) != 0)
        return ODSYNC_PARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 || se > 59)
        return ODSYNC_PARSE;
    *naive = days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + se;
    return ODSYNC_OK;
}

void tz_format_local(int64_t naive, char out[20])
{
    int64_t days, secs, y;
    int m, d;

    if (naive > TZ_LIMIT || naive < -TZ_LIMIT) {
        memcpy(out, "0000-00-00 00:00:00", 20);
        return;
    }
    days = floor_days(naive);
    secs = naive - days * SECS_PER_DAY;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 ||
        util_fmt(out, 20, "%04d-%02d-%02d %02d:%02d:%02d", (int)y, m, d, (int)(secs / 3600),
                 (int)(secs / 60 % 60), (int)(secs % 60)) != ODSYNC_OK)
        memcpy(out, "0000-00-00 00:00:00", 20);
}
