/*
 * test_tz: core/tz — TZif loading, offsets and DST transitions for real zones, the POSIX
 * footer rule (checked on synthetic footer-only zone files against glibc reading the same
 * TZ string), the spring-forward gap and fall-back fold, hour-by-hour agreement with glibc's
 * localtime_r, refusal of unknown zones and corrupt files, and the fail-Nth allocation loop.
 * setenv("TZ") is used here only, to ask glibc for the expected answers.
 */
#define _GNU_SOURCE /* tm_gmtoff, timegm */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tz.h"
#include "util.h"

#include "../support/testutil.h"

/* Naive seconds of a "YYYY-MM-DD HH:MM:SS" string (asserts it parses). */
static int64_t nv(const char *s)
{
    int64_t v = 0;
    ck_assert_int_eq(tz_parse_local(s, &v), ODSYNC_OK);
    return v;
}

/* Load a zone from the system database (asserts success; caller frees with tz_free). */
static struct tz *load(const char *name)
{
    struct tz *z = NULL;
    char err[256] = "";
    int rc = tz_load(name, &z, err, sizeof(err));
    ck_assert_msg(rc == ODSYNC_OK, "%s: %s", name, err);
    ck_assert_ptr_nonnull(z);
    return z;
}

/* local -> UTC with fold, formatted as a UTC string. */
static void to_utc_str(const struct tz *z, const char *local, int fold, char out[20])
{
    int64_t u = 0;
    ck_assert_int_eq(tz_local_to_utc(z, nv(local), fold, &u), ODSYNC_OK);
    tz_format_local(u, out); /* a UTC instant is its own naive UTC reading */
}

/* Assert local (fold) maps to the UTC string want. */
static void expect_utc(const struct tz *z, const char *local, int fold, const char *want)
{
    char got[20];
    to_utc_str(z, local, fold, got);
    ck_assert_msg(strcmp(got, want) == 0, "%s %s fold %d: got %s want %s", tz_name(z), local, fold,
                  got, want);
}

/* Assert the offset just before and at a UTC instant. */
static void expect_switch(const struct tz *z, const char *utc, int64_t before, int64_t after)
{
    int64_t t = nv(utc);
    ck_assert_msg(tz_offset_at_utc(z, t - 1) == before, "%s before %s: %lld", tz_name(z), utc,
                  (long long)tz_offset_at_utc(z, t - 1));
    ck_assert_msg(tz_offset_at_utc(z, t) == after, "%s at %s: %lld", tz_name(z), utc,
                  (long long)tz_offset_at_utc(z, t));
}

/* Compare z with glibc under TZ=tzenv for every hour (plus a few seconds around each hour)
 * of the given year: offsets, local fields and the local -> UTC round trip. */
static void compare_year_with_glibc(const struct tz *z, const char *tzenv, int year)
{
    char buf[32];
    int64_t start, end, t;
    struct tm tm;

    ck_assert_int_eq(util_fmt(buf, sizeof(buf), "%04d-01-01 00:00:00", year), ODSYNC_OK);
    start = nv(buf) - 86400;
    ck_assert_int_eq(util_fmt(buf, sizeof(buf), "%04d-01-01 00:00:00", year + 1), ODSYNC_OK);
    end = nv(buf) + 86400;
    ck_assert_int_eq(setenv("TZ", tzenv, 1), 0);
    tzset();
    for (t = start; t < end; t += 900) {
        time_t tt = (time_t)t;
        int64_t local = 0, back0 = 0, back1 = 0;
        ck_assert_ptr_nonnull(localtime_r(&tt, &tm));
        ck_assert_msg(tz_offset_at_utc(z, t) == tm.tm_gmtoff, "%s (%s) at %lld: %lld vs %ld",
                      tz_name(z), tzenv, (long long)t, (long long)tz_offset_at_utc(z, t),
                      tm.tm_gmtoff);
        ck_assert_int_eq(tz_utc_to_local(z, t, &local), ODSYNC_OK);
        ck_assert(local == (int64_t)timegm(&tm));
        ck_assert_int_eq(tz_local_to_utc(z, local, 0, &back0), ODSYNC_OK);
        ck_assert_int_eq(tz_local_to_utc(z, local, 1, &back1), ODSYNC_OK);
        ck_assert_msg(back0 == t || back1 == t, "%s round trip at %lld", tz_name(z), (long long)t);
        ck_assert(back0 <= back1);
    }
    unsetenv("TZ");
    tzset();
}

/* ---- real zones ---------------------------------------------------------------------- */

START_TEST(chicago_transitions_gap_and_fold)
{
    struct tz *z = load("America/Chicago");
    int64_t u = 0, l = 0;
    char s[20];

    /* 2026: Mar 8 02:00 CST -> 03:00 CDT (08:00Z); Nov 1 02:00 CDT -> 01:00 CST (07:00Z) */
    expect_switch(z, "2026-03-08 08:00:00", -21600, -18000);
    expect_switch(z, "2026-11-01 07:00:00", -18000, -21600);
    /* 2030: Mar 10 and Nov 3 */
    expect_switch(z, "2030-03-10 08:00:00", -21600, -18000);
    expect_switch(z, "2030-11-03 07:00:00", -18000, -21600);

    /* the gap: 02:30 does not exist; it is read on CST and lands at 03:30 CDT */
    expect_utc(z, "2026-03-08 02:30:00", 0, "2026-03-08 08:30:00");
    expect_utc(z, "2026-03-08 02:30:00", 1, "2026-03-08 08:30:00");
    ck_assert_int_eq(tz_local_to_utc(z, nv("2026-03-08 02:30:00"), 0, &u), ODSYNC_OK);
    ck_assert_int_eq(tz_utc_to_local(z, u, &l), ODSYNC_OK);
    tz_format_local(l, s);
    ck_assert_str_eq(s, "2026-03-08 03:30:00");
    expect_utc(z, "2030-03-10 02:00:00", 0, "2030-03-10 08:00:00");
    /* either side of the gap */
    expect_utc(z, "2026-03-08 01:59:59", 0, "2026-03-08 07:59:59");
    expect_utc(z, "2026-03-08 03:00:00", 0, "2026-03-08 08:00:00");

    /* the fold: 01:30 happens twice */
    expect_utc(z, "2026-11-01 01:30:00", 0, "2026-11-01 06:30:00");
    expect_utc(z, "2026-11-01 01:30:00", 1, "2026-11-01 07:30:00");
    expect_utc(z, "2030-11-03 01:00:00", 0, "2030-11-03 06:00:00");
    expect_utc(z, "2030-11-03 01:00:00", 1, "2030-11-03 07:00:00");
    /* just outside the fold: one answer whatever fold says */
    expect_utc(z, "2026-11-01 00:59:59", 1, "2026-11-01 05:59:59");
    expect_utc(z, "2026-11-01 02:00:00", 0, "2026-11-01 08:00:00");

    ck_assert_int_eq(tz_local_to_utc(z, 0, 2, &u), ODSYNC_INVALID);
    tz_free(z);
}
END_TEST

START_TEST(new_york_london_sydney_chatham_phoenix_utc)
{
    struct tz *ny = load("America/New_York"), *lon = load("Europe/London");
    struct tz *syd = load("Australia/Sydney"), *cht = load("Pacific/Chatham");
    struct tz *phx = load("America/Phoenix"), *utc = load("UTC");

    expect_switch(ny, "2026-03-08 07:00:00", -18000, -14400);
    expect_switch(ny, "2026-11-01 06:00:00", -14400, -18000);
    expect_switch(ny, "2030-03-10 07:00:00", -18000, -14400);
    expect_utc(ny, "2026-03-08 02:15:00", 0, "2026-03-08 07:15:00"); /* gap -> 03:15 EDT */
    expect_utc(ny, "2026-11-01 01:15:00", 0, "2026-11-01 05:15:00");
    expect_utc(ny, "2026-11-01 01:15:00", 1, "2026-11-01 06:15:00");

    /* London: last Sunday of March 01:00Z and of October 01:00Z */
    expect_switch(lon, "2026-03-29 01:00:00", 0, 3600);
    expect_switch(lon, "2026-10-25 01:00:00", 3600, 0);
    expect_switch(lon, "2030-03-31 01:00:00", 0, 3600);
    expect_switch(lon, "2030-10-27 01:00:00", 3600, 0);
    expect_utc(lon, "2026-03-29 01:30:00", 0, "2026-03-29 01:30:00"); /* gap -> 02:30 BST */
    expect_utc(lon, "2026-10-25 01:30:00", 0, "2026-10-25 00:30:00");
    expect_utc(lon, "2026-10-25 01:30:00", 1, "2026-10-25 01:30:00");

    /* Sydney: DST ends first Sunday of April 03:00 AEDT, starts first Sunday of October */
    expect_switch(syd, "2026-04-04 16:00:00", 39600, 36000);
    expect_switch(syd, "2026-10-03 16:00:00", 36000, 39600);
    expect_switch(syd, "2030-04-06 16:00:00", 39600, 36000);
    expect_switch(syd, "2030-10-05 16:00:00", 36000, 39600);
    expect_utc(syd, "2026-04-05 02:30:00", 0, "2026-04-04 15:30:00");
    expect_utc(syd, "2026-04-05 02:30:00", 1, "2026-04-04 16:30:00");
    expect_utc(syd, "2026-10-04 02:30:00", 0, "2026-10-03 16:30:00"); /* gap -> 03:30 */
    ck_assert_int_eq(tz_offset_at_utc(syd, nv("2026-01-15 00:00:00")), 39600);
    ck_assert_int_eq(tz_offset_at_utc(syd, nv("2026-07-15 00:00:00")), 36000);

    /* Chatham: +12:45 / +13:45, changes at 02:45 standard / 03:45 daylight */
    expect_switch(cht, "2026-04-04 14:00:00", 49500, 45900);
    expect_switch(cht, "2026-09-26 14:00:00", 45900, 49500);
    expect_utc(cht, "2026-09-27 03:00:00", 0, "2026-09-26 14:15:00"); /* gap 02:45-03:45 */
    expect_utc(cht, "2026-04-05 03:00:00", 0, "2026-04-04 13:15:00");
    expect_utc(cht, "2026-04-05 03:00:00", 1, "2026-04-04 14:15:00");

    /* Phoenix: MST all year */
    ck_assert_int_eq(tz_offset_at_utc(phx, nv("2026-03-08 09:00:00")), -25200);
    ck_assert_int_eq(tz_offset_at_utc(phx, nv("2030-07-01 00:00:00")), -25200);
    expect_utc(phx, "2026-03-08 02:30:00", 1, "2026-03-08 09:30:00");

    ck_assert_int_eq(tz_offset_at_utc(utc, nv("2030-07-01 00:00:00")), 0);
    expect_utc(utc, "2026-11-01 01:30:00", 1, "2026-11-01 01:30:00");
    ck_assert_str_eq(tz_name(utc), "UTC");

    tz_free(ny);
    tz_free(lon);
    tz_free(syd);
    tz_free(cht);
    tz_free(phx);
    tz_free(utc);
}
END_TEST

static const char *const zones[] = {"America/Chicago",
                                    "America/New_York",
                                    "America/Phoenix",
                                    "Europe/London",
                                    "Australia/Sydney",
                                    "Pacific/Chatham",
                                    "UTC"};

START_TEST(agrees_with_glibc_hour_by_hour)
{
    struct tz *z = load(zones[_i]);
    compare_year_with_glibc(z, zones[_i], 2026);
    compare_year_with_glibc(z, zones[_i], 2030);
    tz_free(z);
}
END_TEST

/* ---- the footer rule, on synthetic footer-only zone files ------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A version-2 TZif image with no transitions, one type (std_off, "STD") and the footer;
 * returns its length (buf must hold 256 bytes). */
static size_t make_tzif(unsigned char *buf, int32_t std_off, const char *footer)
{
    size_t pos = 0, half, fl = strlen(footer);
    int pass;

    memset(buf, 0, 256);
    for (pass = 0; pass < 2; pass++) {
        unsigned char *h = buf + pos;
        memcpy(h, "TZif2", 5);
        put32(h + 36, 1); /* typecnt */
        put32(h + 40, 4); /* charcnt */
        pos += 44;
        put32(buf + pos, (uint32_t)std_off);
        buf[pos + 4] = 0;
        buf[pos + 5] = 0;
        pos += 6;
        memcpy(buf + pos, "STD", 4);
        pos += 4;
    }
    half = pos;
    buf[half] = '\n';
    memcpy(buf + half + 1, footer, fl);
    buf[half + 1 + fl] = '\n';
    return half + fl + 2;
}

/* Write a binary file dir/name (name may not contain '/'). */
static void write_bin(const char *dir, const char *name, const unsigned char *data, size_t n)
{
    char path[1024];
    FILE *f;

    ck_assert_int_eq(util_fmt(path, sizeof(path), "%s/%s", dir, name), ODSYNC_OK);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* POSIX TZ strings: M, J and n rule forms, explicit and negative /times, southern rules,
 * non-hour offsets. */
static const char *const footers[] = {
    "CST6CDT,M3.2.0,M11.1.0",
    "AEST-10AEDT,M10.1.0,M4.1.0/3",
    "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
    "GMT0BST,M3.5.0/1,M10.5.0",
    "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
    "EST5EDT,J60/2,J300/2",
    "EST5EDT,59/2,299/2",
    "XST3XDT,J1/4,J365/20",
    "MST7",
    "<-03>3<-02>,M3.2.0/-2:30,M11.1.0/25",
    "NZST-12NZDT-13,M9.5.0,M4.1.0/3",
};

START_TEST(footer_rules_agree_with_glibc)
{
    unsigned char img[256];
    char *dir = tu_mkdtemp();
    struct tz *z = NULL;
    char err[256] = "";
    size_t n = make_tzif(img, -3600 * 5, footers[_i]);

    write_bin(dir, "Footer", img, n);
    ck_assert_int_eq(setenv("TZDIR", dir, 1), 0);
    ck_assert_msg(tz_load("Footer", &z, err, sizeof(err)) == ODSYNC_OK, "%s: %s", footers[_i], err);
    unsetenv("TZDIR");
    compare_year_with_glibc(z, footers[_i], 2026);
    compare_year_with_glibc(z, footers[_i], 2030);
    compare_year_with_glibc(z, footers[_i], 2032); /* a leap year */
    tz_free(z);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

/* The footer-only Chicago matches the real file in 2030 (past nothing, but the same rule). */
START_TEST(footer_matches_real_zone)
{
    unsigned char img[256];
    char *dir = tu_mkdtemp();
    struct tz *f = NULL, *real;
    char err[256] = "";
    size_t n = make_tzif(img, -21600, "CST6CDT,M3.2.0,M11.1.0");
    int64_t t;

    write_bin(dir, "Chicago", img, n);
    ck_assert_int_eq(setenv("TZDIR", dir, 1), 0);
    ck_assert_int_eq(tz_load("Chicago", &f, err, sizeof(err)), ODSYNC_OK);
    unsetenv("TZDIR");
    real = load("America/Chicago");
    for (t = nv("2030-01-01 00:00:00"); t < nv("2031-01-01 00:00:00"); t += 1800)
        ck_assert(tz_offset_at_utc(f, t) == tz_offset_at_utc(real, t));
    /* and well past 2037, where only the footer speaks */
    expect_switch(real, "2050-03-13 08:00:00", -21600, -18000);
    expect_switch(f, "2050-03-13 08:00:00", -21600, -18000);
    expect_switch(real, "2050-11-06 07:00:00", -18000, -21600);
    tz_free(f);
    tz_free(real);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------ */

START_TEST(unknown_and_bad_names_refused)
{
    struct tz *z = (struct tz *)1;
    char err[256] = "";

    ck_assert_int_eq(tz_load("America/Atlantis", &z, err, sizeof(err)), ODSYNC_NOT_FOUND);
    ck_assert_ptr_null(z);
    ck_assert_msg(strstr(err, "\"America/Atlantis\"") != NULL && strstr(err, "unknown") != NULL,
                  "%s", err);
    ck_assert_int_eq(tz_load("../etc/passwd", &z, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_int_eq(tz_load("/etc/passwd", &z, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_int_eq(tz_load("", &z, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_int_eq(tz_load("America/Chi cago", &z, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "invalid time zone name"));
    ck_assert_int_eq(tz_load("America", &z, NULL, 0), ODSYNC_NOT_FOUND); /* a directory */
    ck_assert_ptr_null(z);
    tz_free(NULL);
}
END_TEST

START_TEST(corrupt_files_refused)
{
    char *dir = tu_mkdtemp();
    unsigned char img[256];
    struct tz *z = NULL;
    char err[256] = "";
    size_t n, cut;
    FILE *f;
    static unsigned char whole[8192];
    size_t wlen;

    f = fopen("/usr/share/zoneinfo/America/Chicago", "rb");
    ck_assert_ptr_nonnull(f);
    wlen = fread(whole, 1, sizeof(whole), f);
    fclose(f);
    ck_assert_uint_gt(wlen, 100);
    ck_assert_int_eq(setenv("TZDIR", dir, 1), 0);

    /* every truncation of a real file is refused cleanly */
    for (cut = 0; cut < wlen; cut += (cut < 120 ? 1 : 37)) {
        write_bin(dir, "Cut", whole, cut);
        ck_assert_int_eq(tz_load("Cut", &z, err, sizeof(err)), ODSYNC_PARSE);
        ck_assert_ptr_null(z);
        ck_assert_msg(strstr(err, "\"Cut\": invalid zone file") != NULL, "%s", err);
    }
    write_bin(dir, "Whole", whole, wlen);
    ck_assert_int_eq(tz_load("Whole", &z, err, sizeof(err)), ODSYNC_OK);
    tz_free(z);
    z = NULL;

    write_bin(dir, "Text", (const unsigned char *)"not a zone file at all, no", 26);
    ck_assert_int_eq(tz_load("Text", &z, err, sizeof(err)), ODSYNC_PARSE);

    n = make_tzif(img, 0, "CST6CDT,M3.2.0,M13.1.0"); /* month 13 */
    write_bin(dir, "BadRule", img, n);
    ck_assert_int_eq(tz_load("BadRule", &z, err, sizeof(err)), ODSYNC_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "footer"));

    n = make_tzif(img, 0, "CST6CDT,M3.2.0,M11.1.0");
    img[98 + 4] = 7; /* the 64-bit block's type: isdst byte out of range */
    write_bin(dir, "BadType", img, n);
    ck_assert_int_eq(tz_load("BadType", &z, err, sizeof(err)), ODSYNC_PARSE);

    n = make_tzif(img, 0, "UTC0");
    img[n - 1] = 'x'; /* footer without its closing newline */
    write_bin(dir, "NoNewline", img, n);
    ck_assert_int_eq(tz_load("NoNewline", &z, err, sizeof(err)), ODSYNC_PARSE);
    ck_assert_ptr_null(z);

    unsetenv("TZDIR");
    tu_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(fail_nth_allocation)
{
    long nth;
    int rc = ODSYNC_NOMEM;
    struct tz *z = NULL;
    char err[256];

    for (nth = 1; nth < 50; nth++) {
        util_fail_alloc_after(nth);
        rc = tz_load("America/Chicago", &z, err, sizeof(err));
        util_fail_alloc_after(0);
        if (rc == ODSYNC_OK)
            break;
        ck_assert_int_eq(rc, ODSYNC_NOMEM);
        ck_assert_ptr_null(z);
        ck_assert_ptr_nonnull(strstr(err, "out of memory"));
    }
    ck_assert_int_eq(rc, ODSYNC_OK);
    ck_assert_int_gt(nth, 3); /* several allocations were failed on the way */
    ck_assert_int_eq(tz_offset_at_utc(z, nv("2026-07-01 00:00:00")), -18000);
    tz_free(z);
}
END_TEST

/* ---- helpers ------------------------------------------------------------------------- */

START_TEST(parse_and_format_local)
{
    int64_t v = 7;
    char s[20];

    ck_assert_int_eq(tz_parse_local("1970-01-01 00:00:00", &v), ODSYNC_OK);
    ck_assert(v == 0);
    ck_assert_int_eq(tz_parse_local("2026-03-08T02:30:00", &v), ODSYNC_OK);
    ck_assert(v == INT64_C(1772937000));
    tz_format_local(v, s);
    ck_assert_str_eq(s, "2026-03-08 02:30:00");
    ck_assert_int_eq(tz_parse_local("2028-02-29 23:59:59", &v), ODSYNC_OK);
    tz_format_local(v, s);
    ck_assert_str_eq(s, "2028-02-29 23:59:59");
    tz_format_local(-1, s);
    ck_assert_str_eq(s, "1969-12-31 23:59:59");
    v = 42;
    ck_assert_int_eq(tz_parse_local("2026-02-29 00:00:00", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local("2026-13-01 00:00:00", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local("2026-01-01 24:00:00", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local("2026-01-01 00:00:60", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local("2026-01-01 00:00", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local("2026-01-01 00:00:000", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local("2026/01/01 00:00:00", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local("2026-01-01 0a:00:00", &v), ODSYNC_PARSE);
    ck_assert_int_eq(tz_parse_local(NULL, &v), ODSYNC_PARSE);
    ck_assert(v == 42);
    tz_format_local(INT64_MAX, s);
    ck_assert_str_eq(s, "0000-00-00 00:00:00");
}
END_TEST

static Suite *tz_suite(void)
{
    Suite *s = suite_create("tz");
    TCase *real = tcase_create("zones");
    TCase *footer = tcase_create("footer");
    TCase *bad = tcase_create("refusals");
    TCase *misc = tcase_create("helpers");

    tcase_add_test(real, chicago_transitions_gap_and_fold);
    tcase_add_test(real, new_york_london_sydney_chatham_phoenix_utc);
    tcase_add_loop_test(real, agrees_with_glibc_hour_by_hour, 0, (int)UTIL_ARRAY_LEN(zones));
    suite_add_tcase(s, real);

    tcase_add_loop_test(footer, footer_rules_agree_with_glibc, 0, (int)UTIL_ARRAY_LEN(footers));
    tcase_add_test(footer, footer_matches_real_zone);
    suite_add_tcase(s, footer);

    tcase_add_test(bad, unknown_and_bad_names_refused);
    tcase_add_test(bad, corrupt_files_refused);
    tcase_add_test(bad, fail_nth_allocation);
    suite_add_tcase(s, bad);

    tcase_add_test(misc, parse_and_format_local);
    suite_add_tcase(s, misc);
    return s;
}

ODSYNC_TEST_MAIN(tz_suite)
