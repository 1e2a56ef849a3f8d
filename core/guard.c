/*
 * guard.c: the send ledger and send-time policy as a delivery gate.
 */
#include "guard.h"

#include <string.h>

#include "campaign.h"
#include "consent.h"
#include "ledger.h"
#include "log.h"
#include "od_writer.h"
#include "policy.h"
#include "rules.h"
#include "util.h"

/* The campaign kind of a ledger campaign name, or -1. */
static int kind_of(const char *campaign)
{
    int k;
    for (k = 0; k < CAMPAIGN_COUNT; k++)
        if (campaign != NULL && strcmp(campaign, campaign_kind_name(k)) == 0)
            return k;
    return -1;
}

/* The channel of a ledger channel name, or -1. */
static int channel_of(const char *name)
{
    if (name != NULL && strcmp(name, "sms") == 0)
        return CAMPAIGN_SMS;
    if (name != NULL && strcmp(name, "email") == 0)
        return CAMPAIGN_EMAIL;
    return -1;
}

/* Settle an item without sending it: the ledger moves to state with reason, a decision is
 * logged, and the outbox row is done (or, held, due again at until). */
static int settle(struct store *st, const struct outbox_item *it, const struct ledger_entry *e,
                  int state, int64_t until, const char *reason, const char *rule,
                  const char *consent, int64_t now)
{
    const char *outcome = ledger_state_name(state);
    char detail[96];
    int rc = ledger_set(st, it->office, it->key, state, until, NULL, reason, now);
    if (rc == ODSYNC_OK)
        rc = ledger_decide(st, it->office, it->key, e->patnum, e->campaign, e->channel, outcome,
                           until, reason, rule, consent, now);
    if (rc != ODSYNC_OK)
        return rc;
    if (state == LEDGER_HELD) {
        util_fmt(detail, sizeof(detail), "held: %s", reason);
        return outbox_retry(st, it, until, 0, ODSYNC_OK, detail);
    }
    return outbox_complete(st, it, e->provider_id);
}

/* The send-time re-check of one message (R22). *send = 1 when it may go now. */
static int check_message(const struct config *cfg, struct store *st, const struct outbox_item *it,
                         const struct ledger_entry *e, int64_t now, int *send)
{
    const struct config_office *office = config_find_office(cfg, it->office);
    struct policy_recipient r;
    struct policy_verdict v, t;
    char reason[64];
    int kind = kind_of(e->campaign), channel = channel_of(e->channel), relevant = 0, rc;

    *send = 0;
    memset(&r, 0, sizeof(r));
    if (office == NULL || kind < 0 || channel < 0)
        return settle(st, it, e, LEDGER_SKIPPED, 0, office ? "bad_ledger_row" : "no_office",
                      "config", NULL, now);
    rc = policy_recipient_load(st, office->id, e->patnum, now, &r);
    if (rc == ODSYNC_NOT_FOUND)
        return settle(st, it, e, LEDGER_SKIPPED, 0, "patient_gone", "R22", NULL, now);
    if (rc == ODSYNC_OK)
        rc = rules_relevant_for(st, office, it->key, &r, now, &relevant, reason, sizeof(reason));
    if (rc == ODSYNC_OK && !relevant) {
        rc = settle(st, it, e, LEDGER_SKIPPED, 0, reason, "R22", NULL, now);
        goto cleanup;
    }
    if (rc == ODSYNC_OK)
        rc = policy_consent(st, office->id, office->engage, kind, channel, &r, &v);
    if (rc != ODSYNC_OK)
        goto cleanup;
    if (v.outcome == POLICY_SKIP) {
        rc = settle(st, it, e, LEDGER_SKIPPED, 0, v.reason, v.rule, v.consent, now);
        goto cleanup;
    }
    if (e->address == NULL || strcmp(v.address, e->address) != 0) {
        rc = settle(st, it, e, LEDGER_SKIPPED, 0, "address_changed", "R6", v.consent, now);
        goto cleanup;
    }
    rc = policy_timing(st, office->id, office->engage, kind, it->key, e->address, e->due_at, now,
                       &t);
    if (rc != ODSYNC_OK)
        goto cleanup;
    if (t.outcome == POLICY_HOLD)
        rc = settle(st, it, e, LEDGER_HELD, t.until_ms, t.reason, t.rule, v.consent, now);
    else if (t.outcome == POLICY_SKIP)
        rc = settle(st, it, e, LEDGER_EXPIRED, 0, t.reason, t.rule, v.consent, now);
    else
        rc = ledger_set(st, it->office, it->key, LEDGER_SENDING, 0, NULL, "ok", now);
    if (rc == ODSYNC_OK && t.outcome == POLICY_SEND) {
        rc = ledger_decide(st, it->office, it->key, e->patnum, e->campaign, e->channel, "sending",
                           0, "ok", "R22", v.consent, now);
        *send = rc == ODSYNC_OK;
    }
cleanup:
    policy_recipient_clear(&r);
    return rc;
}

/* A commlog's ledger row, made on first sight (its queue entry came from od_writer). */
static int commlog_entry(struct store *st, const struct outbox_item *it, int64_t now,
                         struct ledger_entry *e)
{
    struct ledger_entry n;
    int created, rc = ledger_get(st, it->office, it->key, e);
    if (rc != ODSYNC_NOT_FOUND)
        return rc;
    memset(&n, 0, sizeof(n));
    n.office = it->office;
    n.key = it->key;
    n.campaign = "commlog";
    n.channel = "commlog";
    n.state = LEDGER_QUEUED;
    n.due_at = n.created_at = now;
    rc = ledger_create(st, &n, &created);
    return rc == ODSYNC_OK ? ledger_get(st, it->office, it->key, e) : rc;
}

/* Decide one item. */
static int before_one(const struct config *cfg, struct store *st, const struct outbox_item *it,
                      int64_t now, unsigned char *send)
{
    struct ledger_entry e;
    int rc, go = 0, commlog = it->kind == OD_WRITER_KIND;

    if (it->kind != ODSYNC_KIND_MESSAGE && !commlog) {
        *send = 1;
        return ODSYNC_OK;
    }
    rc = commlog ? commlog_entry(st, it, now, &e) : ledger_get(st, it->office, it->key, &e);
    if (rc == ODSYNC_NOT_FOUND) { /* a message odsync did not decide: never send it */
        log_warn("guard", "office %s: message %s has no ledger row; not sent", it->office, it->key);
        return outbox_complete(st, it, NULL);
    }
    if (rc != ODSYNC_OK)
        return rc;
    switch (e.state) {
    case LEDGER_SENDING:
        rc = settle(st, it, &e, LEDGER_UNKNOWN, 0, "interrupted_send", "ledger", NULL, now);
        log_warn("guard", "office %s: %s was being sent when odsync stopped; not sent again",
                 it->office, it->key);
        break;
    case LEDGER_SENT:
    case LEDGER_SKIPPED:
    case LEDGER_EXPIRED:
    case LEDGER_UNKNOWN:
        rc = outbox_complete(st, it, e.provider_id);
        break;
    default: /* queued, held, or failed and requeued by an operator */
        if (commlog) {
            rc = ledger_set(st, it->office, it->key, LEDGER_SENDING, 0, NULL, "ok", now);
            go = rc == ODSYNC_OK;
        } else {
            rc = check_message(cfg, st, it, &e, now, &go);
        }
    }
    *send = (unsigned char)go;
    ledger_entry_clear(&e);
    return rc;
}

static int gate_before(void *ctx, struct store *st, struct outbox_item *items, size_t count,
                       unsigned char *send, int64_t now)
{
    size_t i;
    int rc = ODSYNC_OK;
    for (i = 0; i < count && rc == ODSYNC_OK; i++)
        rc = before_one(ctx, st, &items[i], now, &send[i]);
    return rc;
}

/* "recall reminder" etc. for a commlog note. */
static const char *campaign_words(const char *campaign)
{
    if (strcmp(campaign, "recall") == 0)
        return "recall reminder";
    if (strcmp(campaign, "reactivation") == 0)
        return "reactivation message";
    if (strcmp(campaign, "review") == 0)
        return "review request";
    return "message";
}

/* A sent message's commlog, when the office writes back. */
static int write_back(const struct config *cfg, struct store *st, const struct ledger_entry *e,
                      int64_t now)
{
    const struct config_office *office = config_find_office(cfg, e->office);
    char note[256];
    int sms;
    if (office == NULL || !office->engage->policy.commlog)
        return ODSYNC_OK;
    sms = strcmp(e->channel, "sms") == 0;
    util_fmt(note, sizeof(note), "odsync: %s sent by %s, ref %s", campaign_words(e->campaign),
             sms ? "SMS" : "email", e->key);
    return od_writer_enqueue(st, office, e->patnum, sms ? "Text" : "Email", note, e->key, now);
}

/* The provider refused the message because the recipient opted out there (Twilio 21610,
 * a SendGrid suppression): an opt-out from that source, honoured from now on (R28) — for
 * every purpose, or for the message's campaign alone when the detail says so
 * (ODSYNC_OPTED_OUT_CAMPAIGN: an unsubscribe group). */
static int provider_opt_out(struct store *st, const struct ledger_entry *e, const char *plugin,
                            const char *detail, int64_t now)
{
    size_t n = strlen(ODSYNC_OPTED_OUT_CAMPAIGN);
    int one = detail != NULL && strncmp(detail, ODSYNC_OPTED_OUT_CAMPAIGN, n) == 0;
    int changed = 0;
    int rc = consent_opt_out(st, e->office, e->channel, e->address,
                             one && e->campaign ? e->campaign : "*", plugin ? plugin : "provider",
                             one ? detail + n : detail, now, &changed);
    if (rc == ODSYNC_OK && changed)
        log_info("guard", "office %s: %s: the recipient opted out at %s; recorded", e->office,
                 e->key, plugin ? plugin : "the provider");
    return rc == ODSYNC_INVALID ? ODSYNC_OK : rc; /* no usable address: nothing to record */
}

/* The ledger state a result leaves a message in. */
static int state_after(int status, int final)
{
    if (status == ODSYNC_OK)
        return LEDGER_SENT;
    if (status == ODSYNC_OPTED_OUT)
        return LEDGER_SKIPPED;
    return final ? LEDGER_FAILED : LEDGER_QUEUED;
}

static int gate_after(void *ctx, struct store *st, const struct outbox_item *it, const char *plugin,
                      int status, int final, const char *remote_id, const char *detail, int64_t now)
{
    struct ledger_entry e;
    const char *outcome, *reason;
    char consent[64];
    int rc, state = state_after(status, final);

    if (it->kind != ODSYNC_KIND_MESSAGE && it->kind != OD_WRITER_KIND)
        return ODSYNC_OK;
    rc = ledger_get(st, it->office, it->key, &e);
    if (rc != ODSYNC_OK)
        return rc == ODSYNC_NOT_FOUND ? ODSYNC_OK : rc;
    rc = ledger_sending_consent(st, it->office, it->key, consent, sizeof(consent));
    outcome = state == LEDGER_QUEUED ? "retry" : ledger_state_name(state);
    reason = status == ODSYNC_OK          ? "ok"
             : status == ODSYNC_OPTED_OUT ? "opted_out_at_provider"
                                          : odsync_status_name(status);
    if (rc == ODSYNC_OK)
        rc = ledger_set(st, it->office, it->key, state, 0, status == ODSYNC_OK ? remote_id : NULL,
                        reason, now);
    if (rc == ODSYNC_OK)
        rc = ledger_decide(st, it->office, it->key, e.patnum, e.campaign, e.channel, outcome, 0,
                           reason, status == ODSYNC_OPTED_OUT ? "R28" : "provider",
                           consent[0] ? consent : NULL, now);
    if (rc == ODSYNC_OK && status == ODSYNC_OPTED_OUT && it->kind == ODSYNC_KIND_MESSAGE)
        rc = provider_opt_out(st, &e, plugin, detail, now);
    if (state == LEDGER_FAILED)
        log_warn("guard", "office %s: %s refused for good (%s): %s", it->office, it->key,
                 odsync_status_name(status), detail ? detail : "no detail");
    if (rc == ODSYNC_OK && state == LEDGER_SENT && it->kind == ODSYNC_KIND_MESSAGE)
        rc = write_back(ctx, st, &e, now);
    ledger_entry_clear(&e);
    return rc;
}

void guard_gate(struct deliver_gate *gate, const struct config *cfg)
{
    gate->before = gate_before;
    gate->after = gate_after;
    gate->ctx = (void *)cfg;
}
