/*
 * clock: office-local clocks and calendar arithmetic.
 *
 * Open Dental datetimes are naive office-local wall times. Here a "day" is a count of days
 * since 1970-01-01 (proleptic Gregorian) and a "naive" time is seconds since 1970-01-01
 * 00:00:00 of wall time, with no zone. An office clock is a UTC instant that runs (or is
 * frozen) and is turned into wall time through the process time zone (--tz, set once at
 * start-up), so DST folds and gaps happen exactly as on a real server.
 */
#ifndef ODSIM_CLOCK_H
#define ODSIM_CLOCK_H

#include <stdint.h>

#include "odsim.h"

#define CLOCK_NONE_DAY   ((int64_t)-719162) /* 0001-01-01 */
#define CLOCK_NONE_NAIVE (CLOCK_NONE_DAY * 86400)
#define CLOCK_DT_LEN     20 /* "yyyy-MM-dd HH:mm:ss" + NUL */
#define CLOCK_DATE_LEN   11 /* "yyyy-MM-dd" + NUL */

int64_t clock_days_from_civil(int64_t y, int m, int d);
void clock_civil_from_days(int64_t day, int64_t *y, int *m, int *d);

/* Format into out ("0001-01-01 00:00:00" / "0001-01-01" for the none values). */
void clock_fmt_datetime(int64_t naive, char out[CLOCK_DT_LEN]);
void clock_fmt_date(int64_t day, char out[CLOCK_DATE_LEN]);
/* "M/d/yyyy" (Recall List); "" for the none day. out holds at least 12 bytes. */
void clock_fmt_mdy(int64_t day, char *out, size_t len);

/* Strict parsers: all of s must match. Return ODSYNC_OK or ODSYNC_PARSE. */
int clock_parse_datetime(const char *s, int64_t *naive); /* yyyy-MM-dd HH:mm:ss */
int clock_parse_date(const char *s, int64_t *day);       /* yyyy-MM-dd */

/* Add an Open Dental interval ("6m1d", "1y6m20d", "3m", "2w": years, months, weeks, days,
 * in that order; months clamp to the month's last day) to day. Returns ODSYNC_OK or
 * ODSYNC_PARSE. An empty interval adds nothing. */
int clock_add_interval(int64_t day, const char *interval, int64_t *out);

/* Wall time of a UTC second in the process zone, and back (a fold picks what mktime picks,
 * a gap moves forward). */
int64_t clock_utc_to_naive(int64_t utc_s);
int64_t clock_naive_to_utc(int64_t naive);

/* struct oclock operations; the caller holds sim.state_lock. */
void clock_start(struct oclock *c, int64_t utc_ms); /* running, reading utc_ms now */
int64_t clock_utc_ms(const struct oclock *c);
void clock_set_utc(struct oclock *c, int64_t utc_ms); /* keeps the frozen state */
void clock_freeze(struct oclock *c, int frozen);

/* The office's wall time now, 1 s resolution (takes sim.state_lock itself). */
int64_t clock_office_now(struct sim *s, struct office *o);
void clock_office_now_str(struct sim *s, struct office *o, char out[CLOCK_DT_LEN]);

#endif
