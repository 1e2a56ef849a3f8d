/*
 * ledger: the send ledger and the decision log.
 *
 * A message (an SMS or email to a patient) or an Open Dental commlog cannot be "upserted":
 * sending it twice means two texts on a patient's phone, two commlogs in their chart. So
 * every such send has one ledger row, keyed (office, key) by its deterministic key, that
 * moves through these states, each move committed:
 *
 *   queued   created and in the outbox, due at due_at
 *   held     in the outbox, held until hold_until (quiet hours, caps)
 *   sending  committed BEFORE the provider is called
 *   sent     the provider accepted it; provider_id recorded AFTER the call
 *   skipped  never sent, with the reason (opted out, booked meanwhile, capped, ...)
 *   expired  not sent in time (a held message no longer relevant)
 *   failed   the provider refused it for good (dead letter)
 *   unknown  found in "sending" after a crash: the provider may or may not have it, so it
 *            is never sent again (at most once; a status callback may settle it later)
 *
 * The decision log keeps every decision about a message (queued, held until when, skipped
 * why, sent, ...) with the rule behind it and the consent it relied on. Neither table holds
 * patient data beyond opaque ids and the address the message went to.
 *
 * All functions run inside the caller's store_tx unless they say otherwise.
 */
#ifndef ODSYNC_LEDGER_H
#define ODSYNC_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum ledger_state {
    LEDGER_NONE = 0, /* no row */
    LEDGER_QUEUED = 1,
    LEDGER_HELD = 2,
    LEDGER_SENDING = 3,
    LEDGER_SENT = 4,
    LEDGER_SKIPPED = 5,
    LEDGER_EXPIRED = 6,
    LEDGER_FAILED = 7,
    LEDGER_UNKNOWN = 8,
    LEDGER_STATE_COUNT
};

/* One ledger row. Strings owned by the struct (ledger_entry_clear). */
struct ledger_entry {
    char *office, *key;
    int64_t patnum;
    char *campaign;                          /* "recall", "reactivation", "review", "commlog" */
    char *channel;                           /* "sms", "email", "commlog" */
    char *address;                           /* E.164 phone or email; NULL for a commlog */
    char *family;                            /* family group key when aggregated, else NULL */
    int state;                               /* enum ledger_state */
    int64_t due_at;                          /* ms: when it became (or becomes) due */
    int64_t hold_until, created_at, sent_at; /* ms; 0 when not set */
    char *provider_id;                       /* after sent */
    char *reason;                            /* last decision's reason code */
};

void ledger_entry_clear(struct ledger_entry *e); /* accepts NULL */

/* Create the row of e->key in e->state (queued, held or skipped); strings borrowed. A row
 * that already exists is left alone: *created = 0. */
int ledger_create(struct store *st, const struct ledger_entry *e, int *created);

/* The row of (office, key) into *e (caller clears). ODSYNC_NOT_FOUND when none. */
int ledger_get(struct store *st, const char *office, const char *key, struct ledger_entry *e);

/* Move a row to state, recording hold_until (held), provider_id (sent) and reason.
 * Strings borrowed, may be NULL. */
int ledger_set(struct store *st, const char *office, const char *key, int state, int64_t hold_until,
               const char *provider_id, const char *reason, int64_t now_ms);

/* Append a decision. outcome: "queued", "held", "sending", "sent", "skipped", "expired",
 * "failed", "unknown", "aggregated", "released"; rule: the rule id that decided ("R9",
 * "quiet_hours", ...); consent: what consent the decision relied on ("sms:yes",
 * "sms:unknown-allowed", "email:valid", or NULL). Strings borrowed. */
int ledger_decide(struct store *st, const char *office, const char *key, int64_t patnum,
                  const char *campaign, const char *channel, const char *outcome, int64_t until_ms,
                  const char *reason, const char *rule, const char *consent, int64_t now_ms);

/* Messages to address (any campaign, SMS and email alike) counted against caps: rows sent,
 * sending or unknown with sent_at in [from_ms, to_ms). */
int ledger_count_sent(struct store *st, const char *office, const char *address, int64_t from_ms,
                      int64_t to_ms, int64_t *count);

/* The latest sent_at (or created_at for a live queued/held row when include_pending) of a
 * campaign's messages about patnum, other than exclude_key (may be NULL); 0 when none. */
int ledger_last_for_patient(struct store *st, const char *office, int64_t patnum,
                            const char *campaign, int include_pending, const char *exclude_key,
                            int64_t *at_ms);

/* The consent the last "sending" decision of key relied on, into out ("" when none). */
int ledger_sending_consent(struct store *st, const char *office, const char *key, char *out,
                           size_t len);

/* Messages (not commlogs) of office per state, among those last changed at or after
 * since_ms: what `odsync status` shows for today. */
struct ledger_counts {
    int64_t by_state[LEDGER_STATE_COUNT];
};
int ledger_counts(struct store *st, const char *office, int64_t since_ms,
                  struct ledger_counts *out);

/* A provider's delivery report for key: status ("delivered", "undelivered", "bounce", ...)
 * and its time. A message left "unknown" by a crash is settled as "sent" by it (the provider
 * has it). provider_id (may be NULL) must match the stored one when both are known.
 * *found = 1 when the row was updated. */
int ledger_delivery(struct store *st, const char *office, const char *key, const char *provider_id,
                    const char *status, int64_t now_ms, int *found);

/* "queued", "held", ...; "none" for LEDGER_NONE. */
const char *ledger_state_name(int state);
/* The state of a name, or -1. */
int ledger_state_parse(const char *name);

#endif
