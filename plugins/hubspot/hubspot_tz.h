/*
 * hubspot_tz: when is the next midnight in the HubSpot account's time zone? HubSpot resets
 * the daily API quota then. A plugin links nothing of the host, so this is a small,
 * self-contained reader of a zone's current rule: the POSIX TZ string ("EST5EDT,M3.2.0,
 * M11.1.0") that ends every TZif v2+ file under $TZDIR or /usr/share/zoneinfo, or such a
 * string given directly. The rule covers every instant after the zone's last listed
 * transition, which for any current date is the rule in force. No global state (no TZ,
 * tzset or localtime): a loaded zone is immutable and may be shared by threads.
 */
#ifndef ODSYNC_HUBSPOT_TZ_H
#define ODSYNC_HUBSPOT_TZ_H

#include <stddef.h>
#include <stdint.h>

/* A date rule of a POSIX TZ string: Mm.w.d, Jn or n, and the local time of the change. */
struct hubspot_tz_rule {
    char kind;    /* 'M', 'J' or 'D' (zero-based day of year) */
    int m, w, d;  /* 'M': month 1-12, week 1-5 (5 = last), weekday 0-6 (0 = Sunday) */
    int day;      /* 'J': 1-365 (no Feb 29); 'D': 0-365 */
    int64_t time; /* seconds after local midnight (may be negative or past 24 h) */
};

struct hubspot_tz {
    int64_t std_off; /* seconds east of UTC in standard time */
    int64_t dst_off; /* seconds east of UTC in daylight time */
    int has_dst;
    struct hubspot_tz_rule start, end;
};

/* Load name: an IANA zone ("America/Chicago", "UTC"), whose TZif footer is read, or a POSIX
 * TZ string (it holds a digit and no '/'). On failure err (one line, names the zone) is set
 * and ODSYNC_INVALID / ODSYNC_NOT_FOUND / ODSYNC_PARSE returned; out is then untouched. */
int hubspot_tz_load(const char *name, struct hubspot_tz *out, char *err, size_t errlen);

/* Offset east of UTC in seconds in force at utc_seconds. */
int64_t hubspot_tz_offset(const struct hubspot_tz *z, int64_t utc_seconds);

/* The instant (UTC seconds) of the first local midnight strictly after utc_seconds. */
int64_t hubspot_tz_next_midnight(const struct hubspot_tz *z, int64_t utc_seconds);

#endif
