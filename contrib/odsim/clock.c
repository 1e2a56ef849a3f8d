/*
 * clock.c: calendar arithmetic (Howard Hinnant's civil-days algorithms), strict datetime
 * parsing and formatting, Open Dental recall intervals, and the office clocks.
 */
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void clock_civil_from_days(int64_t day, int64_t *y, int *m, int *d)
{
    day += 719468;
    const int64_t era = (day >= 0 ? day : day - 146096) / 146097;
    const int64_t doe = day - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Floor division of a by b (b > 0). */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

void clock_fmt_datetime(int64_t naive, char out[CLOCK_DT_LEN])
{
    int64_t day = floor_div(naive, 86400), y;
    int64_t sec = naive - day * 86400;
    int m, d;
    char tmp[64];
    clock_civil_from_days(day, &y, &m, &d);
    y = y < 1 ? 1 : y > 9999 ? 9999 : y;
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d %02d:%02d:%02d", (int)y, m, d, (int)(sec / 3600),
             (int)(sec / 60 % 60), (int)(sec % 60));
    memcpy(out, tmp, CLOCK_DT_LEN - 1);
    out[CLOCK_DT_LEN - 1] = '\0';
}

void clock_fmt_date(int64_t day, char out[CLOCK_DATE_LEN])
{
    int64_t y;
    int m, d;
    char tmp[48];
    clock_civil_from_days(day, &y, &m, &d);
    y = y < 1 ? 1 : y > 9999 ? 9999 : y;
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", (int)y, m, d);
    memcpy(out, tmp, CLOCK_DATE_LEN - 1);
    out[CLOCK_DATE_LEN - 1] = '\0';
}

void clock_fmt_mdy(int64_t day, char *out, size_t len)
{
    int64_t y;
    int m, d;
    if (day <= CLOCK_NONE_DAY) {
        out[0] = '\0';
        return;
    }
    clock_civil_from_days(day, &y, &m, &d);
    snprintf(out, len, "%d/%d/%d", m, d, (int)y);
}

/* Read exactly n digits of s into *v. Returns 1 on success. */
static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* Days in month m of year y. */
static int month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : len[m - 1];
}

int clock_parse_date(const char *s, int64_t *day)
{
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d) || y < 1 || m < 1 || m > 12 || d < 1 ||
        d > month_days(y, m))
        return ODSYNC_PARSE;
    *day = clock_days_from_civil(y, m, d);
    return ODSYNC_OK;
}

int clock_parse_datetime(const char *s, int64_t *naive)
{
    char date[CLOCK_DATE_LEN];
    int64_t day;
    int hh, mi, ss;
    if (strlen(s) != 19 || s[10] != ' ' || s[13] != ':' || s[16] != ':' ||
        !digits(s + 11, 2, &hh) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &ss) || hh > 23 ||
        mi > 59 || ss > 59)
        return ODSYNC_PARSE;
    memcpy(date, s, 10);
    date[10] = '\0';
    if (clock_parse_date(date, &day) != ODSYNC_OK)
        return ODSYNC_PARSE;
    *naive = day * 86400 + hh * 3600 + mi * 60 + ss;
    return ODSYNC_OK;
}

/* day plus months, clamping the day of month. */
static int64_t add_months(int64_t day, int64_t months)
{
    int64_t y;
    int m, d;
    clock_civil_from_days(day, &y, &m, &d);
    int64_t total = y * 12 + (m - 1) + months;
    y = floor_div(total, 12);
    m = (int)(total - y * 12) + 1;
    if (d > month_days(y, m))
        d = month_days(y, m);
    return clock_days_from_civil(y, m, d);
}

int clock_add_interval(int64_t day, const char *interval, int64_t *out)
{
    int64_t years = 0, months = 0, weeks = 0, days = 0;
    const char *p = interval;
    int last = -1; /* index of the last unit seen: y m w d must come in order */
    while (*p != '\0') {
        int64_t n = 0;
        int nd = 0;
        while (*p >= '0' && *p <= '9' && nd < 6) {
            n = n * 10 + (*p++ - '0');
            nd++;
        }
        const char *units = "ymwd";
        const char *u = *p != '\0' ? strchr(units, *p) : NULL;
        if (nd == 0 || u == NULL || (int)(u - units) <= last)
            return ODSYNC_PARSE;
        last = (int)(u - units);
        if (*p == 'y')
            years = n;
        else if (*p == 'm')
            months = n;
        else if (*p == 'w')
            weeks = n;
        else
            days = n;
        p++;
    }
    *out = add_months(day, years * 12 + months) + weeks * 7 + days;
    return ODSYNC_OK;
}

int64_t clock_utc_to_naive(int64_t utc_s)
{
    time_t t = (time_t)utc_s;
    struct tm tm;
    localtime_r(&t, &tm);
    return clock_days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
           tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

int64_t clock_naive_to_utc(int64_t naive)
{
    int64_t day = floor_div(naive, 86400), y;
    int64_t sec = naive - day * 86400;
    int m, d;
    struct tm tm;
    clock_civil_from_days(day, &y, &m, &d);
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)(y - 1900);
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = (int)(sec / 3600);
    tm.tm_min = (int)(sec / 60 % 60);
    tm.tm_sec = (int)(sec % 60);
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

void clock_start(struct oclock *c, int64_t utc_ms)
{
    c->base_ms = utc_ms;
    c->anchor_ms = util_monotonic_ms();
    c->frozen = 0;
}

int64_t clock_utc_ms(const struct oclock *c)
{
    if (c->frozen)
        return c->base_ms;
    return c->base_ms + (util_monotonic_ms() - c->anchor_ms);
}

void clock_set_utc(struct oclock *c, int64_t utc_ms)
{
    c->base_ms = utc_ms;
    c->anchor_ms = util_monotonic_ms();
}

void clock_freeze(struct oclock *c, int frozen)
{
    if (frozen == c->frozen)
        return;
    c->base_ms = clock_utc_ms(c);
    c->anchor_ms = util_monotonic_ms();
    c->frozen = frozen;
}

int64_t clock_office_now(struct sim *s, struct office *o)
{
    pthread_mutex_lock(&s->state_lock);
    int64_t ms = clock_utc_ms(&o->clock);
    pthread_mutex_unlock(&s->state_lock);
    return clock_utc_to_naive(floor_div(ms, 1000));
}

void clock_office_now_str(struct sim *s, struct office *o, char out[CLOCK_DT_LEN])
{
    clock_fmt_datetime(clock_office_now(s, o), out);
}
