/*
 * events: the API Events poller (reference §15), as OpenDental.exe / the API Service send
 * database events. One thread per office runs its simulated machines ("pollers"). For each
 * unexpired WatchTable subscription, once the office clock reaches DateTimeStart +
 * PollingSeconds, a poller selects the rows with DateTimeStart <= DateTStamp < poll time
 * (AppointmentDeleted: HistAppointment rows with action Deleted, by HistDateTStamp), in
 * DateTStamp order, in chunks of at most `batch` rows, and POSTs each chunk as a JSON array
 * to the EndPointUrl as stored with the headers
 *
 *   Authorization: <customer key>
 *   Workstation: <machine name>
 *   Event-Type: WatchTable: <table>
 *   Content-Type: application/json
 *
 * A 2xx answer within timeout_ms (or an empty window) moves DateTimeStart to the poll time;
 * a failure keeps it and the whole window is sent again on a later cycle (no sooner than
 * PollingSeconds later), never reaching back more than cap_hours (older changes are lost).
 *
 * Machines: with a named Workstation every poller sends as that workstation (OpenDental.exe
 * plus the API Service on one box: identical duplicates); with a blank Workstation poller i
 * sends as "WORKSTATION<i>" (every running machine sends). Faults per office (machines,
 * paused, drop_next, redeliver, out_of_order, slow_ms) and tunables (batch, timeout_ms,
 * cap_hours) are set on the command line and through /_admin/events; every POST attempt is
 * kept in a per-office log of the last EVENTS_LOG_MAX entries.
 *
 * Locks: the module's own mutex guards settings, counters and logs and is a leaf (nothing
 * else is taken while it is held). Pollers take sim.db_lock to read windows and move
 * DateTimeStart, never while posting.
 */
#ifndef ODSIM_EVENTS_H
#define ODSIM_EVENTS_H

#include <stdint.h>

#include "odsim.h"

#define EVENTS_LOG_MAX     500
#define EVENTS_MAX_FAULTS  16
#define EVENTS_MAX_MACHINE 16

struct cJSON;

/* Command-line settings; zero means the default (machines 1, batch 1000, timeout 60000 ms,
 * cap 72 h). Filled by events_flag, read by events_start. */
struct events_options {
    int64_t machines;   /* --event-machines */
    int64_t batch;      /* --event-batch */
    int64_t timeout_ms; /* --event-timeout-ms */
    int64_t cap_hours;  /* --event-cap-hours (0 = no cap, when cap_set) */
    int cap_set;
    const char *faults[EVENTS_MAX_FAULTS]; /* --event-faults JSON, borrowed from argv, in order */
    int nfaults;
};

/* If --name is an events flag: parse value into opt, set *ok to 0 for a bad value (a message
 * is printed) and return 1. Returns 0 for any other flag. */
int events_flag(struct events_options *opt, const char *name, const char *value, int *ok);

/* Apply the options to every office and start one poller thread per office (also
 * http_global_init). Returns ODSYNC_OK, ODSYNC_PARSE (bad --event-faults office, printed) or
 * ODSYNC_INTERNAL. */
int events_start(struct sim *s, const struct events_options *opt);

/* Stop and join the pollers and free everything; accepts a never-started module. An
 * in-flight POST is finished first (at most its timeout_ms). */
void events_stop(void);

/* GET|POST /_admin/events, GET /_admin/events/log, POST /_admin/events/reset (r->path is
 * the whole path); body is the parsed JSON object or NULL. */
void events_admin(struct sim *s, const struct req *r, const struct cJSON *body, struct answer *a);

#endif
