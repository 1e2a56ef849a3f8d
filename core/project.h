/*
 * project: turn changed canonical data into what sinks receive. For every patient the model
 * marked dirty, the contact record (sdk/include/odsync/sink.h schema) is rebuilt from the
 * patient, its recalls (the earliest due date of an enabled recall) and its last visit (the
 * latest completed procedure or completed appointment); records_upsert detects whether it
 * really changed, and only then is it queued for the office's contact routes. Later rules
 * (recall stages, tasks, messages) extend this step; data still flows one way:
 * model -> records -> outbox.
 */
#ifndef ODSYNC_PROJECT_H
#define ODSYNC_PROJECT_H

#include <stdint.h>

#include "config.h"
#include "store.h"

struct project_stats {
    int64_t patients, changed, queued;
};

/* Project every dirty patient of office (borrowed), in transactions of a few hundred. */
int project_office(struct store *st, const struct config_office *office,
                   struct project_stats *stats);

#endif
