/*
 * ingest: bring one office's canonical model up to date with Open Dental, resumably.
 *
 * A pass reads, in order: clinics, patients (/patients/Simple), appointments, completed
 * procedures (/procedurelogs?ProcStatus=C), deleted appointments (/histappointments,
 * incremental passes only) and recalls. Each resource has a checkpoint (od_checkpoints):
 *   backfill     pages through everything by Offset; the offset is committed with each
 *                page's rows, so a crash resumes at the next page;
 *   incremental  asks for DateTStamp >= watermark - overlap, where the watermark is the
 *                smallest serverDateTime seen by the previous pass (an empty answer keeps
 *                the old one); also resumable mid-pass.
 * Recalls have no change filter: a full read reconciled by content hash (and deletions swept)
 * on the first pass and every recall_reconcile_h hours; in between, the recalls of each
 * patient whose data changed (or a full read when that would take fewer requests).
 * Rows are upserted through the model (unchanged content writes nothing; a change marks the
 * patient dirty for the projection). A bad row is counted and skipped, never fatal. Any
 * Open Dental error ends the pass for this office with its state recorded; what was
 * committed stays.
 */
#ifndef ODSYNC_INGEST_H
#define ODSYNC_INGEST_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "od_client.h"
#include "store.h"

enum ingest_resource {
    INGEST_CLINICS = 0,
    INGEST_PATIENTS,
    INGEST_APPOINTMENTS,
    INGEST_PROCEDURES,
    INGEST_DELETED,
    INGEST_RECALLS,
    INGEST_RESOURCE_COUNT
};

struct ingest_counts {
    int64_t rows, changed, skipped, pages, requests;
};

struct ingest_report {
    struct ingest_counts res[INGEST_RESOURCE_COUNT];
    int64_t requests; /* all Open Dental requests of the pass */
    int complete;     /* 1 when every resource finished */
    int status;       /* ODSYNC_OK or the error that ended the pass */
    char detail[256]; /* why it ended early (no patient data) */
};

struct ingest_options {
    FILE *progress;           /* a progress line per resource (and during long reads), or NULL */
    int full_recalls;         /* force the full recall reconciliation */
    const volatile int *stop; /* when set and non-zero, the pass stops between pages */
};

/* Name of a resource ("patients"). */
const char *ingest_resource_name(enum ingest_resource r);

/* One pass for office (borrowed) through client c (borrowed). The office's Open Dental
 * state is stored in od_office_state. Returns ODSYNC_OK when the pass completed, else the
 * error that ended it (rep says which). */
int ingest_office(struct store *st, const struct config_office *office, struct od_client *c,
                  const struct ingest_options *opt, struct ingest_report *rep);

/* Checkpoint facts of one resource for `odsync status`. */
struct ingest_checkpoint {
    char phase[16];       /* "backfill" or "incremental" */
    char watermark[20];   /* office-local "YYYY-MM-DD HH:MM:SS" or "" */
    int64_t completed_at; /* ms since the epoch of the last completed pass, 0 never */
};
int ingest_checkpoint_get(struct store *st, const char *office, enum ingest_resource r,
                          struct ingest_checkpoint *out);

/* The stored Open Dental state of an office ("ok", "offline", ...; "unknown" before any
 * pass) and its detail. */
int ingest_office_state(struct store *st, const char *office, char *state, size_t state_len,
                        char *detail, size_t detail_len);

#endif
