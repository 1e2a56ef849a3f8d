/*
 * project: turn changed canonical data into what sinks receive. For every patient the model
 * marked dirty, the contact record (sdk/include/odsync/sink.h schema) is rebuilt from the
 * patient, its recalls (the earliest due date of an enabled recall) and its last visit (the
 * latest completed procedure or completed appointment); records_upsert detects whether it
 * really changed, and only then is it queued for the office's contact routes. Before it,
 * core/rules.c evaluates the patient (recall stage and tasks, reactivation, review requests,
 * messages under core/policy.c); data still flows one way: model -> rules -> records ->
 * outbox.
 */
#ifndef ODSYNC_PROJECT_H
#define ODSYNC_PROJECT_H

#include <stdint.h>

#include "config.h"
#include "rules.h"
#include "store.h"

struct project_stats {
    int64_t patients, changed, queued;
    struct rules_stats rules; /* tasks, messages, holds and skips the rules made */
};

/* Project every dirty patient of office (borrowed), in transactions of a hundred, after
 * rules_tick (once a day every patient is re-evaluated, so stages follow the calendar).
 * Rules run at now_ms; project_office uses the wall clock. */
int project_office(struct store *st, const struct config_office *office,
                   struct project_stats *stats);
int project_office_at(struct store *st, const struct config_office *office, int64_t now_ms,
                      struct project_stats *stats);

/* project_office, calling committed(arg) after each committed chunk that queued rows, so
 * delivery can start on them while the projection goes on. */
int project_office_notify(struct store *st, const struct config_office *office,
                          struct project_stats *stats, void (*committed)(void *arg), void *arg);

#endif
