/*
 * import: ingest canonical records from a JSON file — the manual source that feeds the
 * pipeline until (and beside) the Open Dental adapters. Each element is
 *   {"kind": "contact", "office": "main-st", "patnum": 1042, "first_name": ..., ...}
 *   {"kind": "task", "office": "main-st", "recall_num": 77, "patnum": 1042, ...}
 * Fields are checked against a fixed list per kind (no free-form data, so no clinical
 * detail can ride along); keys are derived deterministically from the ids. The whole file
 * is applied in one transaction: records upserted with change detection, and each changed
 * record queued in the outbox of every sink its office routes that kind to. A bad element
 * fails the import with its index and field named, and nothing is written.
 */
#ifndef ODSYNC_IMPORT_H
#define ODSYNC_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

struct import_stats {
    int64_t read, changed, unchanged, queued;
};

/* Import the JSON text (borrowed). origin names it in errors. */
int import_json(struct store *st, const struct config *cfg, const char *text, size_t len,
                const char *origin, struct import_stats *stats, char *err, size_t errlen);

/* Import a file. */
int import_file(struct store *st, const struct config *cfg, const char *path,
                struct import_stats *stats, char *err, size_t errlen);

#endif
