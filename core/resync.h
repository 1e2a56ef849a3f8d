/*
 * resync: push an office's full canonical state to a sink — every contact and task record
 * the office routes to it — through the ordinary outbox. Used when a sink is new (an office
 * switched CRMs by changing its routes: the new sink is seeded automatically the first time
 * the daemon or `odsync sync` sees the route), and on demand with `odsync resync --sink NAME`
 * (a CRM restored from an old backup, or emptied by hand). Messages are never resent: they
 * are sends, not state, and the send ledger keeps each to at most once.
 *
 * A row already queued or delivered for that sink is refreshed to the current version and
 * made due again, keeping its remote id (a CRM task is updated in place, not duplicated).
 */
#ifndef ODSYNC_RESYNC_H
#define ODSYNC_RESYNC_H

#include <stdint.h>

#include "config.h"
#include "store.h"

#define RESYNC_CONTACTS 1u
#define RESYNC_TASKS    2u

/* Queue every contact (RESYNC_CONTACTS) and task (RESYNC_TASKS) record of office (borrowed)
 * for sink, each kind only when the office routes it to that sink. *queued = rows queued or
 * refreshed. Runs its own transaction. */
int resync_office(struct store *st, const struct config_office *office, const char *sink,
                  unsigned kinds, int64_t *queued);

/* Seed every (sink, office) route that has never queued anything while the office has
 * records: the first run after a route was added. *queued = rows queued in all. */
int resync_new_routes(struct store *st, const struct config *cfg, int64_t *queued);

#endif
