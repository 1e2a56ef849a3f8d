/*
 * dryrun: `odsync dry-run` — who would be messaged on a day, on which channel, and for
 * everyone skipped or held, why. It runs the real code, not a model of it: inside one
 * transaction it re-evaluates every patient as of the day's sending window (rules.c,
 * policy.c), then plays the day's sends through the send guard (guard.c) in due order as if
 * every provider accepted them, so caps and family aggregation behave as in a real run, and
 * finally rolls everything back. Nothing is sent and nothing is kept.
 */
#ifndef ODSYNC_DRYRUN_H
#define ODSYNC_DRYRUN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

/* The last decision of one message that day. Strings owned by the array. */
struct dryrun_row {
    char *office, *key, *campaign, *channel;
    char *outcome; /* "sent", "held", "queued" (due after the day), "skipped", "expired" */
    char *reason, *rule, *consent;
    int64_t patnum;
    int64_t at_ms;    /* when the decision was made (simulated time) */
    int64_t until_ms; /* held or queued: when it would next be tried; 0 otherwise */
};

struct dryrun_report {
    char date[11];
    int64_t window_open_ms, window_close_ms; /* of the first office evaluated */
    struct dryrun_row *rows;
    size_t count;
    int64_t sent, held, skipped; /* skipped includes expired */
};

/* Run the day date ("YYYY-MM-DD"; NULL = today in each office's zone) for office (NULL = all
 * offices of cfg). now_ms is the present: for today the simulation starts at now (or the
 * window's opening, whichever is later); a day before today is refused (ODSYNC_INVALID with
 * err). On success *out is filled (dryrun_report_clear frees it). */
int dryrun_run(struct store *st, const struct config *cfg, const char *office, const char *date,
               int64_t now_ms, struct dryrun_report *out, char *err, size_t errlen);

void dryrun_report_clear(struct dryrun_report *r); /* accepts NULL */

#endif
