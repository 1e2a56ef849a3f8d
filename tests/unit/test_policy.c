/*
 * test_policy: core/policy timing and core/guard's send-time gate on a real SQLite file with
 * a fixed, injected clock — quiet hours (R16) with their deterministic release spread (R18),
 * window openings and local days across the America/New_York DST changes of 2026, the caps
 * (R9: per local day, rolling 7 local days, across campaigns, counted from the send ledger),
 * expiry; then the gate's before/after on claimed outbox rows: at most once after a crash,
 * terminal ledger rows never resent, the R22 re-check (booked, recall moved, opt-out), holds
 * at send time, expiry, and the provider's answer (sent with its id, failed, retried).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "campaign.h"
#include "config.h"
#include "consent.h"
#include "deliver.h"
#include "guard.h"
#include "ledger.h"
#include "log.h"
#include "model.h"
#include "outbox.h"
#include "policy.h"
#include "rules.h"
#include "store.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#define OFFICE   "main-st"
#define ZONE     "America/New_York"
#define PRACTICE "Main Street Dental"
#define PHONE    "(555) 210-1000"
#define HOUR_MS  INT64_C(3600000)
#define MIN_MS   INT64_C(60000)

#define CAMPAIGNS "{'recall':{},'reactivation':{},'review':{}}"
#define POLICY    "{'review_link':'https://example.com/review'}"

static char *dir;
static struct store *st;
static FILE *devnull;
static struct config_office office;
static struct config cfg;
static struct deliver_gate gate;
static char office_id[] = OFFICE, office_name[] = PRACTICE, office_zone[] = ZONE;
static char sink_crm[] = "crm", sink_sms[] = "sms", sink_email[] = "email";
static char *route_crm[] = {sink_crm}, *route_sms[] = {sink_sms}, *route_email[] = {sink_email};

/* ---- fixture ---------------------------------------------------------------------------- */

/* Parse JSON written with ' for "; caller frees with cJSON_Delete. */
static cJSON *P(const char *text)
{
    char buf[2048];
    size_t i;
    cJSON *v;
    ck_assert_uint_lt(strlen(text), sizeof(buf));
    for (i = 0; text[i] != '\0'; i++)
        buf[i] = text[i] == '\'' ? '"' : text[i];
    buf[i] = '\0';
    v = cJSON_Parse(buf);
    ck_assert_msg(v != NULL, "bad test JSON: %s", text);
    return v;
}

/* (Re)build the office's engagement settings. */
static void engage(const char *campaigns, const char *policy)
{
    cJSON *c = P(campaigns), *p = P(policy);
    char err[512];
    int rc;
    campaign_set_free(office.engage);
    office.engage = NULL;
    rc = campaign_set_build(c, p, NULL, NULL, "offices[0]", "test", PRACTICE, PHONE, ZONE,
                            &office.engage, err, sizeof(err));
    cJSON_Delete(c);
    cJSON_Delete(p);
    ck_assert_msg(rc == ODSYNC_OK, "%s", err);
}

static void setup(void)
{
    char path[512], err[512];
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    memset(&office, 0, sizeof(office));
    office.id = office_id;
    office.name = office_name;
    office.timezone = office_zone;
    office.routes[CONFIG_ROUTE_CONTACT] = route_crm;
    office.routes[CONFIG_ROUTE_TASK] = route_crm;
    office.routes[CONFIG_ROUTE_SMS] = route_sms;
    office.routes[CONFIG_ROUTE_EMAIL] = route_email;
    office.n_routes[CONFIG_ROUTE_CONTACT] = 1;
    office.n_routes[CONFIG_ROUTE_TASK] = 1;
    office.n_routes[CONFIG_ROUTE_SMS] = 1;
    office.n_routes[CONFIG_ROUTE_EMAIL] = 1;
    engage(CAMPAIGNS, POLICY);
    memset(&cfg, 0, sizeof(cfg));
    cfg.offices = &office;
    cfg.n_offices = 1;
    guard_gate(&gate, &cfg);
}

static void teardown(void)
{
    campaign_set_free(office.engage);
    office.engage = NULL;
    store_close(st);
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* ---- time ----------------------------------------------------------------------------- */

/* The instant (ms) of an office-local "YYYY-MM-DD HH:MM:SS" (the first when it repeats). */
static int64_t at(const char *local)
{
    int64_t naive = 0, utc = 0;
    ck_assert_msg(tz_parse_local(local, &naive) == ODSYNC_OK, "bad time %s", local);
    ck_assert_int_eq(tz_local_to_utc(office.engage->tz, naive, 0, &utc), ODSYNC_OK);
    return utc * 1000;
}

/* The instant (ms) of a UTC "YYYY-MM-DD HH:MM:SS" — computed without the zone. */
static int64_t utc(const char *text)
{
    int64_t naive = 0;
    ck_assert_msg(tz_parse_local(text, &naive) == ODSYNC_OK, "bad time %s", text);
    return naive * 1000;
}

/* ---- tables ----------------------------------------------------------------------------- */

static sqlite3_stmt *prepare(const char *fmt, va_list ap)
{
    char sql[1024];
    sqlite3_stmt *s = NULL;
    vsnprintf(sql, sizeof(sql), fmt, ap);
    ck_assert_msg(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(store_db(st)));
    return s;
}

/* The integer of a one-value query; -1 when it returns no row. */
static int64_t qi(const char *fmt, ...) UTIL_PRINTF(1, 2);
static int64_t qi(const char *fmt, ...)
{
    va_list ap;
    sqlite3_stmt *s;
    int64_t v = -1;
    va_start(ap, fmt);
    s = prepare(fmt, ap);
    va_end(ap);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* The text of a one-value query into a static buffer: "<null>" for NULL, "<none>" for no
 * row. Valid until the next call. */
static const char *qs(const char *fmt, ...) UTIL_PRINTF(1, 2);
static const char *qs(const char *fmt, ...)
{
    static char out[4096];
    va_list ap;
    sqlite3_stmt *s;
    va_start(ap, fmt);
    s = prepare(fmt, ap);
    va_end(ap);
    util_fmt(out, sizeof(out), "<none>");
    if (sqlite3_step(s) == SQLITE_ROW)
        util_fmt(out, sizeof(out), "%s",
                 sqlite3_column_type(s, 0) == SQLITE_NULL
                     ? "<null>"
                     : (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
}

/* The last decision about key: "outcome|reason|rule|consent". */
static const char *last_decision(const char *key)
{
    return qs("SELECT outcome || '|' || IFNULL(reason, '-') || '|' || IFNULL(rule, '-') || '|' ||"
              " IFNULL(consent, '-') FROM decisions WHERE key = '%s' ORDER BY id DESC LIMIT 1",
              key);
}

/* ---- the send ledger as history --------------------------------------------------------- */

struct hist {
    const char *key, *address, *campaign;
    int state; /* LEDGER_SENT, LEDGER_UNKNOWN or LEDGER_QUEUED */
    int64_t at;
};

static int hist_tx(struct store *s, void *arg)
{
    const struct hist *h = arg;
    struct ledger_entry e;
    int created = 0, rc;
    memset(&e, 0, sizeof(e));
    e.office = (char *)OFFICE;
    e.key = (char *)h->key;
    e.patnum = 999;
    e.campaign = (char *)h->campaign;
    e.channel = (char *)"sms";
    e.address = (char *)h->address;
    e.state = LEDGER_QUEUED;
    e.due_at = e.created_at = h->at;
    rc = ledger_create(s, &e, &created);
    if (rc == ODSYNC_OK && !created)
        rc = ODSYNC_INTERNAL;
    if (rc == ODSYNC_OK && h->state != LEDGER_QUEUED)
        rc = ledger_set(s, OFFICE, h->key, LEDGER_SENDING, 0, NULL, "ok", h->at);
    if (rc == ODSYNC_OK && h->state != LEDGER_QUEUED)
        rc = ledger_set(s, OFFICE, h->key, h->state, 0, "SM0", "ok", h->at + 1000);
    return rc;
}

/* A message to address in the ledger, sent (or left unknown, or only queued) at when. */
static void history(const char *key, const char *address, const char *campaign, int state,
                    int64_t when)
{
    struct hist h = {key, address, campaign, state, when};
    ck_assert_int_eq(store_tx(st, hist_tx, &h), ODSYNC_OK);
}

/* policy_timing of a recall message key to address, due at due, at now. */
static struct policy_verdict timing(const char *key, const char *address, int64_t due, int64_t now)
{
    struct policy_verdict v;
    memset(&v, 0, sizeof(v));
    ck_assert_int_eq(
        policy_timing(st, OFFICE, office.engage, CAMPAIGN_RECALL, key, address, due, now, &v),
        ODSYNC_OK);
    return v;
}

/* ---- policy: spread, quiet hours, DST ---------------------------------------------------- */

START_TEST(spread_is_deterministic_and_bounded)
{
    char key[64];
    int i;
    /* FNV-1a 64 of the key modulo 60 minutes, computed independently. */
    ck_assert_int_eq(policy_spread_ms(office.engage, "od:main-st:recall:1:2026-06-15:due"),
                     1989145);
    ck_assert_int_eq(policy_spread_ms(office.engage, "k"), 136632);
    for (i = 0; i < 500; i++) {
        int64_t s;
        util_fmt(key, sizeof(key), "od:main-st:recall:%d:2026-06-15:due", i);
        s = policy_spread_ms(office.engage, key);
        ck_assert_int_ge(s, 0);
        ck_assert_int_lt(s, 60 * MIN_MS);
    }
    engage(CAMPAIGNS, "{'review_link':'https://example.com/review','release_spread_minutes':0}");
    ck_assert_int_eq(policy_spread_ms(office.engage, "k"), 0);
}
END_TEST

START_TEST(quiet_hours_hold_until_the_window_opens)
{
    const char *k = "k", *to = "+15552100001";
    int64_t spread = policy_spread_ms(office.engage, k), now;
    struct policy_verdict v;

    now = at("2026-06-15 21:00:00"); /* the end is exclusive */
    v = timing(k, to, now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_HOLD);
    ck_assert_str_eq(v.reason, "quiet_hours");
    ck_assert_str_eq(v.rule, "R16");
    ck_assert_int_eq(v.until_ms, at("2026-06-16 08:00:00") + spread);
    ck_assert_int_eq(v.until_ms, utc("2026-06-16 12:00:00") + spread);

    now = at("2026-06-15 20:59:59");
    v = timing(k, to, now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);
    ck_assert_str_eq(v.reason, "ok");

    now = at("2026-06-15 07:59:59");
    v = timing(k, to, now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_HOLD);
    ck_assert_int_eq(v.until_ms, at("2026-06-15 08:00:00") + spread);

    now = at("2026-06-15 08:00:00"); /* the start is inclusive */
    v = timing(k, to, now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);

    /* Not due yet: scheduled for its due time, whatever the window. */
    now = at("2026-06-15 10:00:00");
    v = timing(k, to, now + HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_HOLD);
    ck_assert_str_eq(v.reason, "not_due");
    ck_assert_int_eq(v.until_ms, now + HOUR_MS);

    /* A configured window. */
    engage(CAMPAIGNS,
           "{'review_link':'https://example.com/review','quiet_hours':['09:30','17:00']}");
    ck_assert_int_eq(policy_window_open(office.engage, at("2026-06-15 17:00:00")),
                     at("2026-06-16 09:30:00"));
    ck_assert_int_eq(policy_window_open(office.engage, at("2026-06-15 09:29:59")),
                     at("2026-06-15 09:30:00"));
    ck_assert_int_eq(policy_window_open(office.engage, at("2026-06-15 16:59:59")),
                     at("2026-06-15 16:59:59"));
}
END_TEST

START_TEST(window_and_local_day_across_dst_new_york)
{
    const struct campaign_set *s = office.engage;
    char date[11];
    struct policy_verdict v;
    int64_t now;

    /* Spring forward, Sunday 2026-03-08 02:00 EST -> 03:00 EDT. */
    ck_assert_int_eq(policy_window_open(s, at("2026-03-07 07:00:00")), utc("2026-03-07 13:00:00"));
    ck_assert_int_eq(policy_window_open(s, at("2026-03-07 22:00:00")), utc("2026-03-08 12:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-03-08 06:30:00")), /* 01:30 EST */
                     utc("2026-03-08 12:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-03-08 07:30:00")), /* 03:30 EDT */
                     utc("2026-03-08 12:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-03-08 12:00:00")), utc("2026-03-08 12:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-03-08 11:59:59")), utc("2026-03-08 12:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-03-09 01:00:00")), /* 21:00 EDT */
                     utc("2026-03-09 12:00:00"));
    ck_assert_int_eq(policy_local_day_start(s, utc("2026-03-08 16:00:00"), 0),
                     utc("2026-03-08 05:00:00"));
    ck_assert_int_eq(policy_local_day_start(s, utc("2026-03-08 16:00:00"), 1),
                     utc("2026-03-09 04:00:00")); /* a 23-hour day */
    ck_assert_int_eq(policy_local_day_start(s, utc("2026-03-08 16:00:00"), -1),
                     utc("2026-03-07 05:00:00"));
    policy_local_date(s, utc("2026-03-09 03:30:00"), date); /* 23:30 EDT */
    ck_assert_str_eq(date, "2026-03-08");
    now = at("2026-03-07 23:00:00");
    v = timing("k", "+15552100001", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_HOLD);
    ck_assert_int_eq(v.until_ms, utc("2026-03-08 12:00:00") + policy_spread_ms(s, "k"));

    /* Fall back, Sunday 2026-11-01 02:00 EDT -> 01:00 EST. */
    ck_assert_int_eq(policy_window_open(s, at("2026-10-31 22:00:00")), utc("2026-11-01 13:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-11-01 05:30:00")), /* 01:30 EDT */
                     utc("2026-11-01 13:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-11-01 06:30:00")), /* 01:30 EST */
                     utc("2026-11-01 13:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-11-01 12:59:59")), utc("2026-11-01 13:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-11-02 02:00:00")), /* 21:00 EST */
                     utc("2026-11-02 13:00:00"));
    ck_assert_int_eq(policy_window_open(s, utc("2026-10-31 12:00:00")), utc("2026-10-31 12:00:00"));
    ck_assert_int_eq(policy_local_day_start(s, utc("2026-11-01 16:00:00"), 0),
                     utc("2026-11-01 04:00:00"));
    ck_assert_int_eq(policy_local_day_start(s, utc("2026-11-01 16:00:00"), 1),
                     utc("2026-11-02 05:00:00"));           /* a 25-hour day */
    policy_local_date(s, utc("2026-11-02 04:30:00"), date); /* 23:30 EST */
    ck_assert_str_eq(date, "2026-11-01");
    now = at("2026-10-31 23:00:00");
    v = timing("k", "+15552100001", now - HOUR_MS, now);
    ck_assert_int_eq(v.until_ms, utc("2026-11-01 13:00:00") + policy_spread_ms(s, "k"));
}
END_TEST

/* ---- policy: caps ----------------------------------------------------------------------- */

START_TEST(cap_per_local_day)
{
    int64_t now = at("2026-06-15 15:00:00");
    struct policy_verdict v;

    history("h1", "+15552100001", "recall", LEDGER_SENT, at("2026-06-15 09:30:00"));
    v = timing("k", "+15552100001", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_HOLD);
    ck_assert_str_eq(v.reason, "cap_day");
    ck_assert_str_eq(v.rule, "R9");
    ck_assert_int_eq(v.until_ms, at("2026-06-16 08:00:00") + policy_spread_ms(office.engage, "k"));

    v = timing("k", "+15552100002", now - HOUR_MS, now); /* another number */
    ck_assert_int_eq(v.outcome, POLICY_SEND);

    /* Yesterday 23:30 local is today in UTC: not today's. */
    history("h3", "+15552100003", "recall", LEDGER_SENT, at("2026-06-14 23:30:00"));
    v = timing("k", "+15552100003", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);

    /* A send that may have happened (unknown) counts; one only queued does not. */
    history("h4", "+15552100004", "review", LEDGER_UNKNOWN, at("2026-06-15 08:10:00"));
    v = timing("k", "+15552100004", now - HOUR_MS, now);
    ck_assert_str_eq(v.reason, "cap_day");
    history("h5", "+15552100005", "recall", LEDGER_QUEUED, at("2026-06-15 08:10:00"));
    v = timing("k", "+15552100005", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);
}
END_TEST

START_TEST(cap_per_rolling_week_across_campaigns)
{
    int64_t now = at("2026-06-15 15:00:00"), spread = policy_spread_ms(office.engage, "k");
    struct policy_verdict v;

    /* Three in the last 7 local days, one per campaign: held until the first day whose own
     * 7-day window has room — 06-17, whose window [06-11, 06-17] holds only two. */
    history("a1", "+15552100001", "recall", LEDGER_SENT, at("2026-06-10 12:00:00"));
    history("a2", "+15552100001", "reactivation", LEDGER_SENT, at("2026-06-11 12:00:00"));
    history("a3", "+15552100001", "review", LEDGER_SENT, at("2026-06-13 12:00:00"));
    v = timing("k", "+15552100001", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_HOLD);
    ck_assert_str_eq(v.reason, "cap_week");
    ck_assert_int_eq(v.until_ms, at("2026-06-17 08:00:00") + spread);

    /* The window's first instant is local midnight six days back. */
    history("b1", "+15552100002", "recall", LEDGER_SENT, at("2026-06-09 00:00:00"));
    history("b2", "+15552100002", "recall", LEDGER_SENT, at("2026-06-12 12:00:00"));
    history("b3", "+15552100002", "recall", LEDGER_SENT, at("2026-06-14 12:00:00"));
    v = timing("k", "+15552100002", now - HOUR_MS, now);
    ck_assert_str_eq(v.reason, "cap_week");
    ck_assert_int_eq(v.until_ms, at("2026-06-16 08:00:00") + spread);
    history("c1", "+15552100003", "recall", LEDGER_SENT, at("2026-06-08 23:59:59"));
    history("c2", "+15552100003", "recall", LEDGER_SENT, at("2026-06-12 12:00:00"));
    history("c3", "+15552100003", "recall", LEDGER_SENT, at("2026-06-14 12:00:00"));
    v = timing("k", "+15552100003", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);

    /* Configured caps. */
    engage(CAMPAIGNS, "{'review_link':'https://example.com/review','max_per_week':4}");
    v = timing("k", "+15552100001", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);
    engage(CAMPAIGNS, "{'review_link':'https://example.com/review','max_per_day':2}");
    history("d1", "+15552100004", "recall", LEDGER_SENT, at("2026-06-15 09:00:00"));
    v = timing("k", "+15552100004", now - HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);
}
END_TEST

START_TEST(expiry_after_expire_hours)
{
    int64_t now = at("2026-06-15 10:00:00");
    struct policy_verdict v;

    v = timing("k", "+15552100001", now - 72 * HOUR_MS, now);
    ck_assert_int_eq(v.outcome, POLICY_SKIP);
    ck_assert_str_eq(v.reason, "expired");
    ck_assert_str_eq(v.rule, "R18");
    v = timing("k", "+15552100001", now - 72 * HOUR_MS + 1, now);
    ck_assert_int_eq(v.outcome, POLICY_SEND);
    engage("{'recall':{'expire_hours':2},'reactivation':{},'review':{}}", POLICY);
    v = timing("k", "+15552100001", now - 2 * HOUR_MS, now);
    ck_assert_str_eq(v.reason, "expired");
}
END_TEST

/* A hold whose release falls at or after the message's expiry would only drop it when it is
 * released: it is decided expired at once (R18), never held to be dropped. */
START_TEST(hold_past_expiry_expires_now)
{
    int64_t spread = policy_spread_ms(office.engage, "k");
    int64_t now = at("2026-06-17 22:30:00"), due = at("2026-06-15 08:00:00") + spread;
    struct policy_verdict v;

    v = timing("k", "+15552100001", due, now); /* release 06-18 08:00 + spread = due + 72 h */
    ck_assert_int_eq(v.outcome, POLICY_SKIP);
    ck_assert_str_eq(v.reason, "expired");
    ck_assert_str_eq(v.rule, "R18");
    v = timing("k", "+15552100001", due + 1, now); /* release 1 ms before its expiry */
    ck_assert_int_eq(v.outcome, POLICY_HOLD);
    ck_assert_str_eq(v.reason, "quiet_hours");
    ck_assert_int_eq(v.until_ms, (due + 1) + 72 * HOUR_MS - 1);

    /* The same for a cap: sent today, the next day's window is past the expiry. */
    now = at("2026-06-17 15:00:00");
    history("h1", "+15552100002", "recall", LEDGER_SENT, at("2026-06-17 09:00:00"));
    v = timing("k", "+15552100002", due, now);
    ck_assert_int_eq(v.outcome, POLICY_SKIP);
    ck_assert_str_eq(v.reason, "expired");
    v = timing("k", "+15552100002", due + 1, now);
    ck_assert_str_eq(v.reason, "cap_day");
}
END_TEST

/* ---- guard: the gate on claimed outbox rows --------------------------------------------- */

struct pat_args {
    int64_t patnum;
    const char *first, *mobile;
};

static int put_patient_tx(struct store *s, void *arg)
{
    const struct pat_args *a = arg;
    struct model_patient p;
    int changed;
    memset(&p, 0, sizeof(p));
    p.patnum = a->patnum;
    p.guarantor = a->patnum;
    p.first_name = (char *)a->first;
    p.last_name = (char *)"Doe";
    p.status = (char *)"Patient";
    p.phone_mobile = (char *)a->mobile;
    p.sms_consent = (char *)"yes";
    return model_put_patient(s, OFFICE, &p, &changed);
}

static int put_recall_tx(struct store *s, void *arg)
{
    const struct model_recall *r = arg;
    int changed;
    return model_put_recall(s, OFFICE, r, &changed);
}

static void recall(int64_t recall_num, int64_t patnum, const char *due)
{
    struct model_recall r;
    memset(&r, 0, sizeof(r));
    r.recall_num = recall_num;
    r.patnum = patnum;
    r.recall_type = 1;
    r.date_due = (char *)due;
    ck_assert_int_eq(store_tx(st, put_recall_tx, &r), ODSYNC_OK);
}

static int put_apt_tx(struct store *s, void *arg)
{
    const struct model_appointment *a = arg;
    int changed;
    return model_put_appointment(s, OFFICE, a, &changed);
}

struct run_args {
    int64_t patnum, now;
};

static int run_tx(struct store *s, void *arg)
{
    const struct run_args *a = arg;
    struct rules_contact c;
    struct rules_stats stats;
    memset(&stats, 0, sizeof(stats));
    return rules_patient(s, &office, a->patnum, a->now, &c, &stats);
}

/* Patient patnum (mobile +155521000NN) with recall patnum*10 due 2026-06-15, evaluated at
 * 2026-06-15 10:00: its "due" message is queued for the sms sink. The key into key. */
static void due_message(int64_t patnum, char *key, size_t len)
{
    char mobile[16];
    struct pat_args p;
    struct run_args r = {patnum, 0};
    util_fmt(mobile, sizeof(mobile), "+155521000%02lld", (long long)patnum);
    p.patnum = patnum;
    p.first = "Ann";
    p.mobile = mobile;
    ck_assert_int_eq(store_tx(st, put_patient_tx, &p), ODSYNC_OK);
    recall(patnum * 10, patnum, "2026-06-15");
    r.now = at("2026-06-15 10:00:00");
    ck_assert_int_eq(store_tx(st, run_tx, &r), ODSYNC_OK);
    util_fmt(key, len, "od:" OFFICE ":recall:%lld:2026-06-15:due", (long long)(patnum * 10));
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", key), "queued");
}

struct claim {
    struct outbox_item *items;
    size_t count;
    unsigned char send[8];
    int64_t now;
};

static int before_tx(struct store *s, void *arg)
{
    struct claim *c = arg;
    return gate.before(gate.ctx, s, c->items, c->count, c->send, c->now);
}

/* Claim what the sms sink has due at now and run the gate's before() on it, as delivery
 * does. Caller frees with release(). */
static void claim_and_gate(struct claim *c, int64_t now)
{
    memset(c, 0, sizeof(*c));
    c->now = now;
    ck_assert_int_eq(outbox_claim(st, "sms", now, 8, &c->items, &c->count), ODSYNC_OK);
    memset(c->send, 0xff, sizeof(c->send));
    ck_assert_int_eq(store_tx(st, before_tx, c), ODSYNC_OK);
}

static void release(struct claim *c)
{
    outbox_items_free(c->items, c->count);
    c->items = NULL;
}

/* The index of key among the claimed items (fails when absent). */
static size_t item(const struct claim *c, const char *key)
{
    size_t i;
    for (i = 0; i < c->count; i++)
        if (strcmp(c->items[i].key, key) == 0)
            return i;
    ck_abort_msg("%s was not claimed", key);
    return 0;
}

struct after_args {
    const struct outbox_item *it;
    int status, final;
    const char *remote_id;
    int64_t now;
    const char *detail;
};

static int after_tx(struct store *s, void *arg)
{
    const struct after_args *a = arg;
    return gate.after(gate.ctx, s, a->it, "twilio", a->status, a->final, a->remote_id,
                      a->detail ? a->detail : "detail", a->now);
}

static void after(const struct outbox_item *it, int status, int final, const char *remote_id,
                  int64_t now)
{
    struct after_args a = {it, status, final, remote_id, now, NULL};
    ck_assert_int_eq(store_tx(st, after_tx, &a), ODSYNC_OK);
}

struct set_args {
    const char *key;
    int state;
    const char *provider_id;
    int64_t now;
};

static int set_tx(struct store *s, void *arg)
{
    const struct set_args *a = arg;
    return ledger_set(s, OFFICE, a->key, a->state, 0, a->provider_id, NULL, a->now);
}

static void ledger_move(const char *key, int state, const char *provider_id, int64_t now)
{
    struct set_args a = {key, state, provider_id, now};
    ck_assert_int_eq(store_tx(st, set_tx, &a), ODSYNC_OK);
}

START_TEST(guard_sends_and_records_the_provider_answer)
{
    char k1[160], k2[160], k3[160];
    int64_t now = at("2026-06-15 10:05:00");
    struct claim c;
    struct policy_verdict v;
    size_t i;

    due_message(1, k1, sizeof(k1));
    due_message(2, k2, sizeof(k2));
    due_message(3, k3, sizeof(k3));
    claim_and_gate(&c, now);
    ck_assert_uint_eq(c.count, 3);
    for (i = 0; i < c.count; i++)
        ck_assert_int_eq(c.send[i], 1);
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", k1), "sending");
    ck_assert_int_eq(qi("SELECT sent_at FROM messages WHERE key = '%s'", k1), now);
    ck_assert_str_eq(last_decision(k1), "sending|ok|R22|sms:TxtMsgOk=Yes");

    after(&c.items[item(&c, k1)], ODSYNC_OK, 1, "SM42", now + 1000);
    ck_assert_str_eq(qs("SELECT state || '|' || provider_id || '|' || reason FROM messages"
                        " WHERE key = '%s'",
                        k1),
                     "sent|SM42|ok");
    ck_assert_str_eq(last_decision(k1), "sent|ok|provider|sms:TxtMsgOk=Yes");
    /* Now it counts against the caps of that number. */
    v = timing("k", "+15552100001", now, now + HOUR_MS);
    ck_assert_str_eq(v.reason, "cap_day");

    after(&c.items[item(&c, k2)], ODSYNC_PERMANENT, 1, NULL, now + 1000);
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k2),
                     "failed|PERMANENT");
    ck_assert_str_eq(last_decision(k2), "failed|PERMANENT|provider|sms:TxtMsgOk=Yes");

    after(&c.items[item(&c, k3)], ODSYNC_RETRY, 0, NULL, now + 1000);
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", k3), "queued");
    ck_assert_str_eq(last_decision(k3), "retry|RETRY|provider|sms:TxtMsgOk=Yes");
    release(&c);
}
END_TEST

/* A provider refusal because the recipient opted out there (Twilio 21610): the message is
 * settled as skipped, not failed, and the opt-out is recorded with the plugin as its source
 * (R28), so every later message to that number is refused by consent. */
START_TEST(guard_records_an_opt_out_reported_by_the_provider)
{
    char k1[160];
    int64_t now = at("2026-06-15 10:05:00");
    struct claim c;

    due_message(1, k1, sizeof(k1));
    claim_and_gate(&c, now);
    ck_assert_uint_eq(c.count, 1);
    ck_assert_int_eq(c.send[0], 1);
    after(&c.items[0], ODSYNC_OPTED_OUT, 1, NULL, now + 1000);
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k1),
                     "skipped|opted_out_at_provider");
    ck_assert_str_eq(last_decision(k1), "skipped|opted_out_at_provider|R28|sms:TxtMsgOk=Yes");
    ck_assert_str_eq(qs("SELECT state || '|' || source || '|' || purpose FROM consent"
                        " WHERE channel = 'sms' AND address = '%s'",
                        "+15552100001"),
                     "opt_out|twilio|*");
    ck_assert_int_eq(qi("SELECT COUNT(*) FROM consent_log WHERE source = 'twilio'"), 1);
    release(&c);
}
END_TEST

/* An OPTED_OUT scoped to the campaign (a SendGrid unsubscribe group) opts the address out of
 * that campaign only. */
START_TEST(guard_records_a_campaign_scoped_opt_out)
{
    char k1[160];
    int64_t now = at("2026-06-15 10:05:00");
    struct claim c;
    struct after_args a;

    due_message(1, k1, sizeof(k1));
    claim_and_gate(&c, now);
    ck_assert_uint_eq(c.count, 1);
    memset(&a, 0, sizeof(a));
    a.it = &c.items[0];
    a.status = ODSYNC_OPTED_OUT;
    a.final = 1;
    a.now = now + 1000;
    a.detail = ODSYNC_OPTED_OUT_CAMPAIGN "unsubscribe group 111";
    ck_assert_int_eq(store_tx(st, after_tx, &a), ODSYNC_OK);
    ck_assert_str_eq(
        qs("SELECT purpose || '|' || evidence FROM consent WHERE address = '%s'", "+15552100001"),
        "recall|unsubscribe group 111");
    release(&c);
}
END_TEST

START_TEST(guard_never_resends_after_a_crash_or_a_final_state)
{
    char k1[160], k2[160], k3[160], k4[160];
    int64_t now = at("2026-06-15 10:05:00");
    struct claim c;
    struct policy_verdict v;
    size_t i;

    due_message(1, k1, sizeof(k1));
    due_message(2, k2, sizeof(k2));
    due_message(3, k3, sizeof(k3));
    due_message(4, k4, sizeof(k4));
    ledger_move(k1, LEDGER_SENDING, NULL, now - MIN_MS); /* crashed mid-send */
    ledger_move(k2, LEDGER_SENT, "SM7", now - MIN_MS);
    ledger_move(k3, LEDGER_SKIPPED, NULL, now - MIN_MS);
    claim_and_gate(&c, now);
    ck_assert_uint_eq(c.count, 4);
    ck_assert_int_eq(c.send[item(&c, k1)], 0);
    ck_assert_int_eq(c.send[item(&c, k2)], 0);
    ck_assert_int_eq(c.send[item(&c, k3)], 0);
    ck_assert_int_eq(c.send[item(&c, k4)], 1); /* the control goes */
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k1),
                     "unknown|interrupted_send");
    ck_assert_str_eq(last_decision(k1), "unknown|interrupted_send|ledger|-");
    ck_assert_str_eq(qs("SELECT state || '|' || provider_id FROM messages WHERE key = '%s'", k2),
                     "sent|SM7");
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", k3), "skipped");
    for (i = 0; i < 3; i++) {
        const char *k = i == 0 ? k1 : i == 1 ? k2 : k3;
        ck_assert_str_eq(qs("SELECT state FROM outbox WHERE key = '%s'", k), "done");
    }
    ck_assert_str_eq(qs("SELECT remote_id FROM outbox WHERE key = '%s'", k2), "SM7");
    /* The unknown send counts against the caps: it may have reached the phone. */
    v = timing("k", "+15552100001", now, now + HOUR_MS);
    ck_assert_str_eq(v.reason, "cap_day");
    release(&c);

    /* Nothing is claimed again. */
    claim_and_gate(&c, now + 2 * HOUR_MS);
    ck_assert_uint_eq(c.count, 0);
    release(&c);
}
END_TEST

START_TEST(guard_rechecks_the_occasion_and_consent_at_send_time)
{
    char k1[160], k2[160], k3[160], k4[160], k5[160];
    int64_t now = at("2026-06-15 11:00:00");
    struct pat_args p5;
    struct model_appointment a;
    struct model_recall moved;
    int changed = 0;
    struct claim c;

    due_message(1, k1, sizeof(k1));
    due_message(2, k2, sizeof(k2));
    due_message(3, k3, sizeof(k3));
    due_message(4, k4, sizeof(k4));
    due_message(5, k5, sizeof(k5));
    /* Between creation and send: patient 1 books, patient 2's recall moves, patient 3 texts
     * STOP, patient 5 gets a new mobile number; patient 4 is the control. */
    p5.patnum = 5;
    p5.first = "Ann";
    p5.mobile = "+15552100555";
    ck_assert_int_eq(store_tx(st, put_patient_tx, &p5), ODSYNC_OK);
    memset(&a, 0, sizeof(a));
    a.apt_num = 101;
    a.patnum = 1;
    a.status = (char *)"Scheduled";
    a.start = (char *)"2026-06-30 09:00:00";
    ck_assert_int_eq(store_tx(st, put_apt_tx, &a), ODSYNC_OK);
    memset(&moved, 0, sizeof(moved));
    moved.recall_num = 20;
    moved.patnum = 2;
    moved.recall_type = 1;
    moved.date_due = (char *)"2026-07-15";
    ck_assert_int_eq(store_tx(st, put_recall_tx, &moved), ODSYNC_OK);
    ck_assert_int_eq(store_exec(st, "BEGIN"), ODSYNC_OK);
    ck_assert_int_eq(consent_opt_out(st, OFFICE, "sms", "+15552100003", "*", "twilio", "STOP",
                                     now - MIN_MS, &changed),
                     ODSYNC_OK);
    ck_assert_int_eq(store_exec(st, "COMMIT"), ODSYNC_OK);
    ck_assert_int_eq(changed, 1);

    claim_and_gate(&c, now);
    ck_assert_uint_eq(c.count, 5);
    ck_assert_int_eq(c.send[item(&c, k1)], 0);
    ck_assert_int_eq(c.send[item(&c, k2)], 0);
    ck_assert_int_eq(c.send[item(&c, k3)], 0);
    ck_assert_int_eq(c.send[item(&c, k4)], 1);
    ck_assert_int_eq(c.send[item(&c, k5)], 0);
    ck_assert_str_eq(last_decision(k5), "skipped|address_changed|R6|sms:TxtMsgOk=Yes");
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k1),
                     "skipped|booked");
    ck_assert_str_eq(last_decision(k1), "skipped|booked|R22|-");
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k2),
                     "skipped|recall_moved");
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k3),
                     "skipped|opted_out");
    ck_assert_str_eq(last_decision(k3), "skipped|opted_out|R28|sms:opt_out(twilio)");
    ck_assert_str_eq(qs("SELECT state FROM outbox WHERE key = '%s'", k1), "done");
    ck_assert_str_eq(qs("SELECT state FROM outbox WHERE key = '%s'", k3), "done");
    ck_assert_str_eq(qs("SELECT state FROM messages WHERE key = '%s'", k4), "sending");
    release(&c);
}
END_TEST

START_TEST(guard_holds_in_quiet_hours_and_expires_late_messages)
{
    char k1[160], k2[160];
    int64_t due2, until;
    struct claim c;

    due_message(1, k1, sizeof(k1));
    claim_and_gate(&c, at("2026-06-15 21:30:00"));
    ck_assert_uint_eq(c.count, 1);
    ck_assert_int_eq(c.send[0], 0);
    until = at("2026-06-16 08:00:00") + policy_spread_ms(office.engage, k1);
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k1),
                     "held|quiet_hours");
    ck_assert_int_eq(qi("SELECT hold_until FROM messages WHERE key = '%s'", k1), until);
    ck_assert_str_eq(qs("SELECT state FROM outbox WHERE key = '%s'", k1), "pending");
    ck_assert_int_eq(qi("SELECT next_at FROM outbox WHERE key = '%s'", k1), until);
    ck_assert_int_eq(qi("SELECT until_at FROM decisions WHERE key = '%s' ORDER BY id DESC", k1),
                     until);
    release(&c);
    claim_and_gate(&c, until - 1); /* not due before its release */
    ck_assert_uint_eq(c.count, 0);
    release(&c);
    claim_and_gate(&c, until);
    ck_assert_uint_eq(c.count, 1);
    ck_assert_int_eq(c.send[0], 1);
    release(&c);

    /* A message still unsent expire_hours after it became due: expired, never sent. */
    due_message(2, k2, sizeof(k2));
    due2 = qi("SELECT due_at FROM messages WHERE key = '%s'", k2);
    claim_and_gate(&c, due2 + 72 * HOUR_MS);
    ck_assert_uint_eq(c.count, 1);
    ck_assert_int_eq(c.send[0], 0);
    ck_assert_str_eq(qs("SELECT state || '|' || reason FROM messages WHERE key = '%s'", k2),
                     "expired|expired");
    ck_assert_str_eq(qs("SELECT state FROM outbox WHERE key = '%s'", k2), "done");
    release(&c);
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, spread_is_deterministic_and_bounded);
    tcase_add_test(tc, quiet_hours_hold_until_the_window_opens);
    tcase_add_test(tc, window_and_local_day_across_dst_new_york);
    tcase_add_test(tc, cap_per_local_day);
    tcase_add_test(tc, cap_per_rolling_week_across_campaigns);
    tcase_add_test(tc, expiry_after_expire_hours);
    tcase_add_test(tc, hold_past_expiry_expires_now);
    tcase_add_test(tc, guard_sends_and_records_the_provider_answer);
    tcase_add_test(tc, guard_never_resends_after_a_crash_or_a_final_state);
    tcase_add_test(tc, guard_records_an_opt_out_reported_by_the_provider);
    tcase_add_test(tc, guard_records_a_campaign_scoped_opt_out);
    tcase_add_test(tc, guard_rechecks_the_occasion_and_consent_at_send_time);
    tcase_add_test(tc, guard_holds_in_quiet_hours_and_expires_late_messages);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(policy_suite)
