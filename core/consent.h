/*
 * consent: the one opt-out ledger (messaging rules R28-R30). A row per (office, channel,
 * address, purpose) says whether messages may go there, who said so and when:
 *   channel  "sms" (address an E.164 phone) or "email" (address lower-cased)
 *   purpose  a campaign name ("recall", "reactivation", "review") or "*" for all
 *   state    "opt_out", "opt_in" (explicit re-subscription) or "written" (prior express
 *            written consent on file, needed for marketing SMS)
 *   source   "opendental" (TxtMsgOk = No), "twilio" (STOP, 21610), "sendgrid"
 *            (unsubscribe, spam report), "crm", "staff"
 * Suppression wins every conflict (R30): an opt-out is lifted only by an explicit opt-in
 * (START / UNSTOP, or a staff entry recording the patient's request), never by a later "Yes"
 * from another system. Every change is also appended to consent_log with its evidence, so
 * the history is never lost.
 *
 * Functions run inside the caller's store_tx unless they say otherwise.
 */
#ifndef ODSYNC_CONSENT_H
#define ODSYNC_CONSENT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Record an opt-out. evidence (may be NULL) is kept verbatim in the log: the keyword
 * received, the provider error code; never message content beyond that. *changed = 1 when
 * the address was not already opted out for that purpose. Strings borrowed. */
int consent_opt_out(struct store *st, const char *office, const char *channel, const char *address,
                    const char *purpose, const char *source, const char *evidence, int64_t at_ms,
                    int *changed);

/* Record an explicit opt-in (R15): lifts opt-outs of that channel and address for purpose
 * ("*" lifts every purpose). source must be "twilio" (START/UNSTOP), "sendgrid" (email: a
 * group resubscribe on its preference page) or "staff"; any other source returns
 * ODSYNC_INVALID (R30: a later "Yes" from another system never re-enables). */
int consent_opt_in(struct store *st, const char *office, const char *channel, const char *address,
                   const char *purpose, const char *source, const char *evidence, int64_t at_ms,
                   int *changed);

/* Record prior express written consent for marketing SMS (state "written"). */
int consent_written(struct store *st, const char *office, const char *address, const char *source,
                    const char *evidence, int64_t at_ms);

/* 1 in *blocked when an opt-out covers (channel, address) for purpose or "*"; then
 * source_out (may be NULL) gets its source, e.g. "twilio". */
int consent_blocked(struct store *st, const char *office, const char *channel, const char *address,
                    const char *purpose, int *blocked, char *source_out, size_t source_len);

/* 1 in *has when written consent is on file for the phone. */
int consent_has_written(struct store *st, const char *office, const char *address, int *has);

/* A consent row, for `odsync optout list`. Strings owned by the array. */
struct consent_row {
    char *office, *channel, *address, *purpose, *state, *source, *evidence;
    int64_t at_ms;
};

/* Rows of office (NULL = all), newest first; *rows freed with consent_rows_free. */
int consent_list(struct store *st, const char *office, struct consent_row **rows, size_t *count);
void consent_rows_free(struct consent_row *rows, size_t count); /* accepts NULL */

/* Normalise an address for channel into out: an SMS number to E.164 (model_phone_e164),
 * an email trimmed and lower-cased. 0 when it is not a valid address. */
int consent_normalise(const char *channel, const char *raw, char *out, size_t out_len);

#endif
