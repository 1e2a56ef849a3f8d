/*
 * events: Open Dental API Events — the webhook route, the durable inbox, and the worker that
 * applies it.
 *
 * POST /api/od/events/{office}[?table=T] with the batch Open Dental sends: a JSON array of at
 * most 1000 rows (a database event: Patient, Appointment or AppointmentDeleted, named by the
 * Event-Type header "WatchTable: T" or the ?table= of the subscription's URL) or a JSON
 * object (a UI event such as PatientSelected: acknowledged, not stored). Authorization must
 * be the office's customer key (compared in constant time) or it is 401. The body is checked
 * completely — UTF-8, JSON, array, size, each row an object with its primary key — and any
 * problem is a 400 naming it, with nothing stored. A good batch is committed to od_inbox in
 * one transaction and acknowledged (200) at once: no CRM work happens in the request.
 *
 * The worker applies inbox batches through the same REST adapter and model upserts as
 * polling, so a duplicate (same row and DateTStamp) changes nothing and an older row never
 * overwrites a newer one; then it projects the changed patients.
 */
#ifndef ODSYNC_EVENTS_H
#define ODSYNC_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http_server.h"
#include "store.h"

#define EVENTS_MAX_ROWS 1000

struct events;

/* A receiver for cfg's offices (borrowed) writing to the database at store_path (it opens
 * its own connection). *out: caller frees with events_destroy. */
int events_create(const struct config *cfg, const char *store_path, struct events **out, char *err,
                  size_t errlen);
void events_destroy(struct events *ev); /* accepts NULL */

/* The http_server handler (arg = the struct events). */
void events_http_handler(void *arg, const struct http_request *req, struct http_reply *reply);

/* Called after each committed batch (e.g. to wake the worker); may be NULL. */
void events_set_notify(struct events *ev, void (*notify)(void *arg), void *arg);

struct events_stats {
    int64_t batches, rows, applied, skipped;
};

/* Apply up to max_batches inbox batches (oldest first), each in one transaction with its
 * rows, then project the patients they changed. Adds to *stats. */
int events_process(struct store *st, const struct config *cfg, size_t max_batches,
                   struct events_stats *stats);

/* Per office and table: when the last event arrived (ms since the epoch, 0 never). */
int events_last(struct store *st, const char *office, const char *table, int64_t *last_ms);

/* The newest event of an office over its watched tables (0 never). */
int events_office_last(struct store *st, const char *office, int64_t *last_ms);

/* Batches still waiting in the inbox. */
int events_pending(struct store *st, int64_t *batches);

#endif
