/*
 * policy: may this message go to this patient, on this channel, now? Applied when a message
 * is created (rules.c) and again right before it is sent (guard.c), with the same code, so
 * `odsync dry-run` and a real run cannot disagree. Messaging rules (../README and
 * contrib/examples/README.md) by number:
 *   consent   SMS only to the patient's own mobile number (R6) with TxtMsgOk Yes (Unknown only
 *             when policy.sms_unknown_consent), never with PreferContactMethod or
 *             PreferRecallMethod DoNotCall (R4); email only to a valid address; marketing SMS
 *             only with written consent on file (R1); no opt-out from any source (R28-R30)
 *   caps      at most max_per_day messages per address per office-local day and
 *             max_per_week per rolling 7 local days, across campaigns (R9): held, not dropped
 *   quiet     only inside the office-local window (R16-R18), DST-correct: held until it
 *             opens, then released spread over release_spread_minutes
 *   expiry    a message still not sendable expire_hours after it became due expires (R18)
 * Minors (under 18) are reached through their guarantor's mobile and email (R23).
 */
#ifndef ODSYNC_POLICY_H
#define ODSYNC_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "campaign.h"
#include "store.h"

enum policy_outcome { POLICY_SEND = 0, POLICY_HOLD = 1, POLICY_SKIP = 2 };

/* Who a message goes to, resolved from the canonical patient (and guarantor for a minor).
 * Strings are owned by the struct (policy_recipient_clear). */
struct policy_recipient {
    int64_t patnum;    /* the patient the message is about */
    int64_t via;       /* the patient whose contact details are used (guarantor for a minor) */
    char *first_name;  /* preferred name, else first name */
    char *status;      /* PatStatus of patnum */
    char *mobile;      /* E.164 of via's mobile, or NULL */
    char *email;       /* via's valid email, or NULL */
    char *sms_consent; /* via's TxtMsgOk: "yes" | "no" | "unknown" */
    int do_not_call;   /* via's PreferContactMethod or PreferRecallMethod is DoNotCall */
    int64_t guarantor; /* patnum's guarantor (family key) */
};

void policy_recipient_clear(struct policy_recipient *r); /* accepts NULL */

/* Load the recipient of patnum from the store (now_ms dates the minor test). ODSYNC_OK,
 * ODSYNC_NOT_FOUND (no such patient), ODSYNC_NOMEM or ODSYNC_STORE. */
int policy_recipient_load(struct store *st, const char *office, int64_t patnum, int64_t now_ms,
                          struct policy_recipient *r);

struct policy_verdict {
    int outcome;       /* enum policy_outcome */
    int channel;       /* enum campaign_channel chosen (or checked) */
    char address[256]; /* where it goes */
    int64_t until_ms;  /* POLICY_HOLD: release time */
    char reason[64];   /* code: "ok", "opted_out", "no_consent", "quiet_hours", "cap_day", ... */
    char rule[16];     /* "R9", "R16", ... */
    char consent[64];  /* the consent relied on or missing: "sms:yes", "email:valid", ... */
};

/* Consent for one channel: POLICY_SEND (with address and consent filled) or POLICY_SKIP
 * (reason, rule). */
int policy_consent(struct store *st, const char *office, const struct campaign_set *set, int kind,
                   int channel, const struct policy_recipient *r, struct policy_verdict *v);

/* The first channel of the campaign (among channel_mask: bit 1u << channel, the channels the
 * office routes somewhere) the recipient can receive: POLICY_SEND with it, or
 * POLICY_SKIP naming why the first channel was refused (every refusal goes into reason,
 * "sms:no_consent,email:no_address"). */
int policy_choose_channel(struct store *st, const char *office, const struct campaign_set *set,
                          int kind, unsigned channel_mask, const struct policy_recipient *r,
                          struct policy_verdict *v);

/* Timing for a message to address at now_ms that became due at due_ms: expiry, caps and
 * quiet hours. POLICY_SEND, POLICY_HOLD (until_ms) or POLICY_SKIP ("expired"). key spreads
 * releases deterministically. Counts only messages other than key. */
int policy_timing(struct store *st, const char *office, const struct campaign_set *set, int kind,
                  const char *key, const char *address, int64_t due_ms, int64_t now_ms,
                  struct policy_verdict *v);

/* The instant the sending window is next open at or after now_ms (now_ms itself when open). */
int64_t policy_window_open(const struct campaign_set *set, int64_t now_ms);

/* A deterministic offset in [0, release_spread_minutes) for key (FNV-1a of the key), so
 * messages released when the window opens, or due at its opening, do not go out in one
 * burst (R18). */
int64_t policy_spread_ms(const struct campaign_set *set, const char *key);

/* Start (UTC ms) of the office-local day containing now_ms, plus days (may be negative). */
int64_t policy_local_day_start(const struct campaign_set *set, int64_t now_ms, int days);

/* The office-local date of now_ms as "YYYY-MM-DD" into out[11]. */
void policy_local_date(const struct campaign_set *set, int64_t now_ms, char out[11]);

#endif
