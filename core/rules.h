/*
 * rules: what an office's canonical data means for one patient on one day — recall stage,
 * recall tasks, reactivation enrolment, review requests — turned into CRM records and
 * messages. Called by the projection for every dirty patient, and for every patient once a
 * day (rules_tick), so stages advance with the calendar, not only with changes.
 *
 *   recall        stages due_soon / due / overdue_N of the patient's earliest active recall
 *                 (skipping disabled recalls, DisableUntilDate in the future, DateScheduled
 *                 set, a future Scheduled appointment, PatStatus other than Patient: R21);
 *                 one task per recall, od:{office}:recall:{RecallNum}, updated in place and
 *                 completed when fulfilled, never deleted; one message per stage entered
 *   reactivation  PatStatus Patient, last completed visit lapse_months ago or more, nothing
 *                 booked: enrolled (flag on the contact), up to max_messages spaced
 *                 spacing_days; a booking or a visit ends it (R24)
 *   review        an appointment Complete: one request delay_minutes after it, at most one per
 *                 patient per min_days_between (R25, R26), to every eligible patient
 * Messages are created through policy.c and recorded in the ledger; the outbox holds them
 * until due. A message whose occasion is older than its campaign's expire_hours is not
 * created at all (no flood of stale reminders on a first sync).
 */
#ifndef ODSYNC_RULES_H
#define ODSYNC_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"
#include "store.h"

/* What rules contribute to a patient's contact record. */
struct rules_contact {
    char recall_due[11];   /* DateDue of the recall the contact shows (the earliest active
                              or booked one), or "" */
    char recall_stage[24]; /* its stage name ("due_soon", "due", "overdue_30", ...),
                              "scheduled" when booked, or "" (none) */
    int reactivation;      /* enrolled in reactivation */
    char last_visit[11];   /* the last completed procedure or appointment, or "" */
};

struct rules_stats {
    int64_t tasks, messages, held, skipped; /* records and decisions made */
};

/* Evaluate patnum of office at now_ms inside the caller's transaction: write task records
 * and messages (ledger, decisions, outbox) and fill *contact for the contact record. */
int rules_patient(struct store *st, const struct config_office *office, int64_t patnum,
                  int64_t now_ms, struct rules_contact *contact, struct rules_stats *stats);

/* Once per office-local day: mark every patient of office dirty so stages advance.
 * *ran = 1 when it did. Runs its own transaction. */
int rules_tick(struct store *st, const struct config_office *office, int64_t now_ms, int *ran);

/* Send-time re-check (R22) of a message's occasion: is the recall still due and unbooked,
 * the patient still lapsed and unbooked, the appointment still complete? 1 in *relevant, or
 * 0 with reason (a code, e.g. "booked", "recall_moved", "inactive"). */
int rules_still_relevant(struct store *st, const struct config_office *office, const char *key,
                         int64_t patnum, int64_t now_ms, int *relevant, char *reason,
                         size_t reason_len);

/* The same for a recipient the caller already loaded (borrowed), e.g. the send guard, which
 * needs it for the consent check too: the patient is read once per message. */
int rules_relevant_for(struct store *st, const struct config_office *office, const char *key,
                       const struct policy_recipient *r, int64_t now_ms, int *relevant,
                       char *reason, size_t reason_len);

#endif
