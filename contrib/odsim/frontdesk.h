/*
 * frontdesk: the changes a practice's front desk makes, shared by the REST writes (PUT
 * /patients, Confirm, Break, PUT /recalls/Status, POST /commlogs) and the admin API (add a
 * patient, book, complete, break, delete, move a recall, random load).
 *
 * Rules kept everywhere: DateTStamp becomes the office's "now" (1 s resolution) only when a
 * row really changes; every appointment change writes a HistAppointment row (Created,
 * Changed, Missed, Cancelled, Deleted); a recall's DateScheduled is the earliest booked
 * (Scheduled) appointment holding a treatment-planned procedure that triggers the recall
 * type, and 0001-01-01 otherwise; completing an appointment completes its procedures and
 * moves the matching recalls (DatePrevious = visit date, DateDue = that + interval).
 *
 * Every function needs sim.db_lock held and runs in its own SAVEPOINT: a failure changes
 * nothing.
 */
#ifndef ODSIM_FRONTDESK_H
#define ODSIM_FRONTDESK_H

#include <cjson/cJSON.h>

#include "odsim.h"

/* Outcome of a change: status 0 when done (id = the row made or changed, changed = 1 when
 * anything changed), else an HTTP status (400, 404, 500) with msg for the client. */
struct fd_result {
    unsigned status;
    char msg[200];
    int64_t id;
    int changed;
};

/* Apply the fields of body (an object, Patients PUT names and formats) to a patient. */
void fd_patient_update(struct sim *s, struct office *o, int64_t patnum, const cJSON *body,
                       struct fd_result *res);
/* A new patient: LName and FName required, other Patients fields optional; "recall": true
 * also gives a Prophy recall due today. */
void fd_patient_add(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res);
/* Book: PatNum, AptDateTime required; Op, ProvNum, ProvHyg, IsHygiene, Pattern, Note,
 * ClinicNum, procedures (codes) optional. */
void fd_book(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res);
/* Complete a Scheduled appointment; body may hold "procedures": ["D0120", ...]. */
void fd_complete(struct sim *s, struct office *o, int64_t aptnum, const cJSON *body,
                 struct fd_result *res);
/* Break a Scheduled appointment: action "Missed" or "Cancelled"; to_unsched sends it to the
 * Unscheduled List (AptStatus UnschedList) instead of Broken. */
void fd_break(struct sim *s, struct office *o, int64_t aptnum, const char *action, int to_unsched,
              struct fd_result *res);
/* Delete an appointment that is not Complete (HistAppointment Deleted row; procedures
 * detached). */
void fd_delete(struct sim *s, struct office *o, int64_t aptnum, struct fd_result *res);
/* Set the confirmation status (a DefNum of category 2). */
void fd_confirm(struct sim *s, struct office *o, int64_t aptnum, int64_t defnum,
                struct fd_result *res);
/* The confirmation DefNum for a confirmVal name, or -1. */
int64_t fd_confirm_def(const char *name);
/* Move a recall's DateDue ("yyyy-MM-dd"). */
void fd_recall_move(struct sim *s, struct office *o, int64_t recallnum, const char *date,
                    struct fd_result *res);
/* PUT /recalls/Status: body PatNum, recallType, optional RecallStatus, commlogMode,
 * commlogNote. Writes a commlog. */
void fd_recall_status(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res);
/* POST /commlogs body; res->id is the new CommlogNum. */
void fd_commlog_add(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res);
/* count random front-desk changes from seed; *summary (caller frees with cJSON_Delete) says
 * what was done. */
void fd_random(struct sim *s, struct office *o, int64_t count, uint64_t seed, cJSON **summary,
               struct fd_result *res);

#endif
