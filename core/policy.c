/*
 * policy.c: consent, caps, quiet hours and expiry for one message.
 */
#include "policy.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "consent.h"
#include "ledger.h"
#include "tz.h"
#include "util.h"

#define DAY_S       86400
#define MINOR_YEARS 18

void policy_recipient_clear(struct policy_recipient *r)
{
    if (r == NULL)
        return;
    util_free(r->first_name);
    util_free(r->status);
    util_free(r->mobile);
    util_free(r->email);
    util_free(r->sms_consent);
    memset(r, 0, sizeof(*r));
}

/* The parsed body of a patient, or NULL (none, or *rc set on error). Caller cJSON_Deletes. */
static cJSON *patient_json(struct store *st, const char *office, int64_t patnum, int *rc)
{
    sqlite3_stmt *s =
        store_stmt(st, "SELECT body FROM od_patients WHERE office = ? AND patnum = ?");
    cJSON *j = NULL;
    int step;
    if (s == NULL) {
        *rc = ODSYNC_STORE;
        return NULL;
    }
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, patnum);
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        j = cJSON_Parse((const char *)sqlite3_column_text(s, 0));
        *rc = j ? ODSYNC_OK : ODSYNC_NOMEM; /* odsync's own JSON: only memory fails it */
    } else {
        *rc = step == SQLITE_DONE ? ODSYNC_NOT_FOUND : store_status(step);
    }
    sqlite3_reset(s);
    return j;
}

/* A string member's copy (NULL when absent or null); sets *oom. */
static char *member(const cJSON *o, const char *name, int *oom)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    char *d;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return NULL;
    d = util_strdup(v->valuestring);
    *oom |= d == NULL;
    return d;
}

/* 1 when a string member equals value. */
static int member_is(const cJSON *o, const char *name, const char *value)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && strcmp(v->valuestring, value) == 0;
}

/* 1 when birthdate ("YYYY-MM-DD") makes someone younger than MINOR_YEARS on today. */
static int is_minor(const cJSON *p, const char *today)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "birthdate");
    int64_t by, ty;
    char year[5];
    if (!cJSON_IsString(b) || strlen(b->valuestring) != 10)
        return 0;
    memcpy(year, b->valuestring, 4);
    year[4] = '\0';
    if (util_parse_i64(year, 1, 9999, &by) != ODSYNC_OK)
        return 0;
    memcpy(year, today, 4);
    if (util_parse_i64(year, 1, 9999, &ty) != ODSYNC_OK)
        return 0;
    if (ty - by != MINOR_YEARS)
        return ty - by < MINOR_YEARS;
    return strcmp(b->valuestring + 4, today + 4) > 0; /* the 18th birthday not reached yet */
}

int policy_recipient_load(struct store *st, const char *office, int64_t patnum, int64_t now_ms,
                          struct policy_recipient *r)
{
    cJSON *p = NULL, *g = NULL;
    const cJSON *via, *gnum;
    char today[11], buf[20];
    int rc, oom = 0;

    memset(r, 0, sizeof(*r));
    p = patient_json(st, office, patnum, &rc);
    if (p == NULL)
        goto cleanup;
    via = p;
    gnum = cJSON_GetObjectItemCaseSensitive(p, "guarantor");
    r->patnum = r->via = patnum;
    r->guarantor =
        cJSON_IsNumber(gnum) && gnum->valuedouble > 0 ? (int64_t)gnum->valuedouble : patnum;
    tz_format_local(now_ms / 1000, buf); /* the UTC date: close enough for an age */
    util_fmt(today, sizeof(today), "%.10s", buf);
    if (r->guarantor != patnum && is_minor(p, today)) {
        g = patient_json(st, office, r->guarantor, &rc);
        if (g == NULL && rc != ODSYNC_NOT_FOUND)
            goto cleanup;
        if (g != NULL) {
            via = g;
            r->via = r->guarantor;
        }
    }
    rc = ODSYNC_OK;
    r->first_name = member(p, "preferred_name", &oom);
    if (r->first_name == NULL)
        r->first_name = member(p, "first_name", &oom);
    r->status = member(p, "status", &oom);
    r->mobile = member(via, "phone_mobile", &oom);
    r->email = member(via, "email", &oom);
    r->sms_consent = member(via, "sms_consent", &oom);
    r->do_not_call = member_is(via, "prefer_contact", "DoNotCall") ||
                     member_is(via, "prefer_recall", "DoNotCall");
    if (oom)
        rc = ODSYNC_NOMEM;
cleanup:
    if (rc != ODSYNC_OK)
        policy_recipient_clear(r);
    cJSON_Delete(p);
    cJSON_Delete(g);
    return rc;
}

/* Fill a verdict. */
static void verdict(struct policy_verdict *v, int outcome, const char *reason, const char *rule,
                    const char *consent)
{
    v->outcome = outcome;
    util_fmt(v->reason, sizeof(v->reason), "%s", reason);
    util_fmt(v->rule, sizeof(v->rule), "%s", rule);
    if (consent != NULL)
        util_fmt(v->consent, sizeof(v->consent), "%s", consent);
}

/* SMS consent (R1, R4-R6, R28-R30). */
static int sms_consent(struct store *st, const char *office, const struct campaign_set *set,
                       int kind, const struct policy_recipient *r, struct policy_verdict *v)
{
    const struct campaign *c = &set->campaigns[kind];
    char source[32], consent[64];
    int blocked = 0, written = 0, rc;

    if (r->mobile == NULL) {
        verdict(v, POLICY_SKIP, "no_mobile", "R6", "sms:no mobile number");
        return ODSYNC_OK;
    }
    if (r->do_not_call) {
        verdict(v, POLICY_SKIP, "do_not_call", "R4", "sms:DoNotCall");
        return ODSYNC_OK;
    }
    rc = consent_blocked(st, office, "sms", r->mobile, campaign_kind_name(kind), &blocked, source,
                         sizeof(source));
    if (rc != ODSYNC_OK && rc != ODSYNC_INVALID)
        return rc;
    if (blocked) {
        util_fmt(consent, sizeof(consent), "sms:opt_out(%s)", source);
        verdict(v, POLICY_SKIP, "opted_out", "R28", consent);
        return ODSYNC_OK;
    }
    if (r->sms_consent == NULL || strcmp(r->sms_consent, "no") == 0) {
        verdict(v, POLICY_SKIP, "opted_out", "R28", "sms:TxtMsgOk=No");
        return ODSYNC_OK;
    }
    if (strcmp(r->sms_consent, "yes") != 0 && !set->policy.sms_unknown_consent) {
        verdict(v, POLICY_SKIP, "no_consent", "R5", "sms:TxtMsgOk=Unknown");
        return ODSYNC_OK;
    }
    if (c->msg_class == CAMPAIGN_CLASS_MARKETING) {
        rc = consent_has_written(st, office, r->mobile, &written);
        if (rc != ODSYNC_OK)
            return rc;
        if (!written) {
            verdict(v, POLICY_SKIP, "no_written_consent", "R1", "sms:no written consent");
            return ODSYNC_OK;
        }
    }
    util_fmt(v->address, sizeof(v->address), "%s", r->mobile);
    verdict(v, POLICY_SEND, "ok", "consent",
            c->msg_class == CAMPAIGN_CLASS_MARKETING ? "sms:written"
            : strcmp(r->sms_consent, "yes") == 0     ? "sms:TxtMsgOk=Yes"
                                                     : "sms:TxtMsgOk=Unknown(allowed)");
    return ODSYNC_OK;
}

/* Email consent (R19, R28). */
static int email_consent(struct store *st, const char *office, int kind,
                         const struct policy_recipient *r, struct policy_verdict *v)
{
    char source[32], consent[64], norm[256];
    int blocked = 0, rc;

    if (r->email == NULL || !consent_normalise("email", r->email, norm, sizeof(norm))) {
        verdict(v, POLICY_SKIP, "no_email", "R19", "email:no valid address");
        return ODSYNC_OK;
    }
    rc = consent_blocked(st, office, "email", norm, campaign_kind_name(kind), &blocked, source,
                         sizeof(source));
    if (rc != ODSYNC_OK)
        return rc;
    if (blocked) {
        util_fmt(consent, sizeof(consent), "email:opt_out(%s)", source);
        verdict(v, POLICY_SKIP, "opted_out", "R28", consent);
        return ODSYNC_OK;
    }
    util_fmt(v->address, sizeof(v->address), "%s", norm);
    verdict(v, POLICY_SEND, "ok", "consent", "email:valid");
    return ODSYNC_OK;
}

int policy_consent(struct store *st, const char *office, const struct campaign_set *set, int kind,
                   int channel, const struct policy_recipient *r, struct policy_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->channel = channel;
    if (r->status == NULL || strcmp(r->status, "Patient") != 0) {
        verdict(v, POLICY_SKIP, "inactive", "R21", "none");
        return ODSYNC_OK;
    }
    if (channel == CAMPAIGN_SMS)
        return sms_consent(st, office, set, kind, r, v);
    return email_consent(st, office, kind, r, v);
}

int policy_choose_channel(struct store *st, const char *office, const struct campaign_set *set,
                          int kind, unsigned channel_mask, const struct policy_recipient *r,
                          struct policy_verdict *v)
{
    const struct campaign *c = &set->campaigns[kind];
    struct policy_verdict first, one;
    char reasons[64] = "";
    size_t i, used = 0;
    int rc;

    memset(&first, 0, sizeof(first));
    for (i = 0; i < c->n_channels; i++) {
        if (!(channel_mask & (1u << c->channels[i])))
            continue;
        rc = policy_consent(st, office, set, kind, c->channels[i], r, &one);
        if (rc != ODSYNC_OK)
            return rc;
        if (one.outcome == POLICY_SEND) {
            *v = one;
            return ODSYNC_OK;
        }
        if (used == 0)
            first = one;
        if (used < sizeof(reasons))
            util_fmt(reasons + used, sizeof(reasons) - used, "%s%s:%s", used ? "," : "",
                     campaign_channel_name(c->channels[i]), one.reason);
        used = strlen(reasons);
    }
    *v = first;
    v->outcome = POLICY_SKIP;
    util_fmt(v->reason, sizeof(v->reason), "%s", reasons[0] ? reasons : "no_channel");
    return ODSYNC_OK;
}

/* Naive local seconds of an instant (ms). */
static int64_t local_of(const struct campaign_set *set, int64_t ms)
{
    int64_t local = 0;
    if (tz_utc_to_local(set->tz, ms / 1000, &local) != ODSYNC_OK)
        local = ms / 1000;
    return local;
}

/* The instant (ms) of a naive local time; the earlier one when it repeats. */
static int64_t instant_of(const struct campaign_set *set, int64_t local)
{
    int64_t utc = local;
    if (tz_local_to_utc(set->tz, local, 0, &utc) != ODSYNC_OK)
        utc = local;
    return utc * 1000;
}

/* floor(a / b) for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

int64_t policy_local_day_start(const struct campaign_set *set, int64_t now_ms, int days)
{
    int64_t day = floor_div(local_of(set, now_ms), DAY_S) + days;
    return instant_of(set, day * DAY_S);
}

void policy_local_date(const struct campaign_set *set, int64_t now_ms, char out[11])
{
    char buf[20];
    tz_format_local(floor_div(local_of(set, now_ms), DAY_S) * DAY_S, buf);
    memcpy(out, buf, 10);
    out[10] = '\0';
}

int64_t policy_window_open(const struct campaign_set *set, int64_t now_ms)
{
    int64_t local = local_of(set, now_ms);
    int64_t day = floor_div(local, DAY_S) * DAY_S, sod = local - day;
    int64_t start = (int64_t)set->policy.quiet_start_min * 60;
    int64_t end = (int64_t)set->policy.quiet_end_min * 60;
    if (sod >= start && sod < end)
        return now_ms;
    return instant_of(set, (sod < start ? day : day + DAY_S) + start);
}

int64_t policy_spread_ms(const struct campaign_set *set, const char *key)
{
    uint64_t h = 1469598103934665603ull;
    int64_t spread = set->policy.release_spread_minutes * 60000;
    for (; key != NULL && *key != '\0'; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ull;
    return spread > 0 ? (int64_t)(h % (uint64_t)spread) : 0;
}

/* Caps (R9): POLICY_HOLD until the first local day whose window has room, or POLICY_SEND. */
static int caps(struct store *st, const char *office, const struct campaign_set *set,
                const char *address, int64_t now_ms, struct policy_verdict *v)
{
    int64_t today = 0, week = 0;
    int d, rc;

    rc = ledger_count_sent(st, office, address, policy_local_day_start(set, now_ms, 0),
                           policy_local_day_start(set, now_ms, 1), &today);
    if (rc == ODSYNC_OK)
        rc = ledger_count_sent(st, office, address, policy_local_day_start(set, now_ms, -6),
                               policy_local_day_start(set, now_ms, 1), &week);
    if (rc != ODSYNC_OK)
        return rc;
    if (today < set->policy.max_per_day && week < set->policy.max_per_week) {
        v->outcome = POLICY_SEND;
        return ODSYNC_OK;
    }
    for (d = 1; d <= 7; d++) { /* the first later day with room in both windows */
        int64_t day_start = policy_local_day_start(set, now_ms, d);
        rc = ledger_count_sent(st, office, address, policy_local_day_start(set, now_ms, d - 6),
                               policy_local_day_start(set, now_ms, d + 1), &week);
        if (rc != ODSYNC_OK)
            return rc;
        if (week < set->policy.max_per_week) {
            v->until_ms = policy_window_open(set, day_start);
            break;
        }
    }
    if (v->until_ms == 0)
        v->until_ms = policy_window_open(set, policy_local_day_start(set, now_ms, 7));
    verdict(v, POLICY_HOLD, today >= set->policy.max_per_day ? "cap_day" : "cap_week", "R9", NULL);
    return ODSYNC_OK;
}

int policy_timing(struct store *st, const char *office, const struct campaign_set *set, int kind,
                  const char *key, const char *address, int64_t due_ms, int64_t now_ms,
                  struct policy_verdict *v)
{
    const struct campaign *c = &set->campaigns[kind];
    int64_t open;
    int rc;

    v->until_ms = 0;
    if (now_ms >= due_ms + c->expire_hours * 3600000) {
        verdict(v, POLICY_SKIP, "expired", "R18", NULL);
        return ODSYNC_OK;
    }
    if (now_ms < due_ms) {
        v->until_ms = due_ms;
        verdict(v, POLICY_HOLD, "not_due", "schedule", NULL);
        return ODSYNC_OK;
    }
    rc = caps(st, office, set, address, now_ms, v);
    if (rc != ODSYNC_OK)
        return rc;
    if (v->outcome == POLICY_HOLD) {
        v->until_ms += policy_spread_ms(set, key);
    } else {
        open = policy_window_open(set, now_ms);
        if (open > now_ms) {
            v->until_ms = open + policy_spread_ms(set, key);
            verdict(v, POLICY_HOLD, "quiet_hours", "R16", NULL);
        } else {
            verdict(v, POLICY_SEND, "ok", "R9/R16", NULL);
        }
    }
    /* Released at or after its expiry, it could only be dropped then: it expires now. */
    if (v->outcome == POLICY_HOLD && v->until_ms >= due_ms + c->expire_hours * 3600000) {
        v->until_ms = 0;
        verdict(v, POLICY_SKIP, "expired", "R18", NULL);
    }
    return ODSYNC_OK;
}
