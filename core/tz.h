/*
 * tz: office-local time <-> UTC for one IANA time zone, without the C library's global time
 * zone state (no setenv("TZ"), tzset or localtime). tz_load reads the zone's TZif file
 * (RFC 8536, versions 1-4; the 64-bit block of version 2 and later) from $TZDIR or
 * /usr/share/zoneinfo and keeps its transitions plus the POSIX TZ footer rule that covers
 * every instant after the last transition ("CST6CDT,M3.2.0,M11.1.0").
 *
 * A loaded struct tz is immutable, so any number of threads may use one at the same time.
 *
 * Times are int64_t seconds. "utc" is seconds since the epoch. A "naive local" value is an
 * office wall-clock reading counted as if it were UTC: timegm() of its fields, so
 * 2026-03-08 02:30:00 local is the number timegm gives for those fields.
 */
#ifndef ODSYNC_TZ_H
#define ODSYNC_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* A loaded zone. Opaque; create with tz_load, free with tz_free. */
struct tz;

/* Load zone name ("America/Chicago", "UTC"). The name must be a safe relative name, the same
 * rule config.c applies to an office's "timezone": not empty, no leading '/', no "..", at most
 * 255 bytes of [A-Za-z0-9_+-/]. On success *out is the zone (caller frees with tz_free).
 * On failure *out is NULL and err (may be NULL) gets a one-line message naming the zone.
 * Returns ODSYNC_OK, ODSYNC_INVALID (bad name), ODSYNC_NOT_FOUND (no such zone file),
 * ODSYNC_IO, ODSYNC_PARSE (not a valid TZif file, truncated, or an unsupported footer)
 * or ODSYNC_NOMEM. Reads $TZDIR once, during the call. */
int tz_load(const char *name, struct tz **out, char *err, size_t errlen);

/* Free a zone; accepts NULL. */
void tz_free(struct tz *z);

/* The zone's name as given to tz_load (borrowed, valid until tz_free). */
const char *tz_name(const struct tz *z);

/* The offset from UTC, in seconds east (Chicago in summer: -18000), in force at instant utc. */
int64_t tz_offset_at_utc(const struct tz *z, int64_t utc_seconds);

/* The naive local time of instant utc. Returns ODSYNC_OK, or ODSYNC_INVALID when utc lies
 * outside about +-3 million years. */
int tz_utc_to_local(const struct tz *z, int64_t utc, int64_t *local_naive_seconds);

/* The instant of a naive local time.
 * - A time that happens once maps to its one instant; fold is ignored.
 * - A time that happens twice (the repeated hour when clocks go back): fold 0 picks the first
 *   occurrence (the earlier instant, still on the pre-transition, usually DST, offset),
 *   fold 1 the second. (Should a zone ever repeat a time three times, 0 and 1 pick the
 *   earliest and the latest.)
 * - A time that never happens (the skipped hour when clocks go forward) is read with the
 *   offset in force before the gap, so it lands that far past the gap: 02:30 on a US
 *   spring-forward day becomes the instant whose local time is 03:30. This still returns
 *   ODSYNC_OK; callers that must know can check tz_utc_to_local of the result.
 * Returns ODSYNC_OK, or ODSYNC_INVALID for fold other than 0/1 or a value outside about
 * +-3 million years. */
int tz_local_to_utc(const struct tz *z, int64_t local_naive_seconds, int fold, int64_t *utc);

/* Parse exactly "YYYY-MM-DD HH:MM:SS" (a 'T' is accepted instead of the space) into a naive
 * value. Fields are range-checked (the day against the month, seconds 00-59). Returns
 * ODSYNC_OK or ODSYNC_PARSE (*naive untouched). */
int tz_parse_local(const char *yyyy_mm_dd_hh_mm_ss, int64_t *naive);

/* Format a naive value as "YYYY-MM-DD HH:MM:SS" (NUL-terminated). Years outside 0000-9999
 * do not fit and give "0000-00-00 00:00:00". */
void tz_format_local(int64_t naive, char out[20]);

#endif
