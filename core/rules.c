/*
 * rules.c: recall stages and tasks, reactivation and review requests for one patient.
 */
#include "rules.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "campaign.h"
#include "consent.h"
#include "keys.h"
#include "ledger.h"
#include "outbox.h"
#include "policy.h"
#include "records.h"
#include "template.h"
#include "tz.h"
#include "util.h"

#define DAY_S    86400
#define DAY_MS   86400000LL
#define KEY_LEN  160
#define DATE_LEN 11

/* What the evaluation of one patient needs, gathered once. */
struct ctx {
    struct store *st;
    const struct config_office *office;
    const struct campaign_set *set;
    int64_t patnum, now;
    char today[DATE_LEN]; /* office-local date */
    char now_local[20];   /* office-local "YYYY-MM-DD HH:MM:SS" */
    struct policy_recipient r;
    int booked;                /* a future Scheduled appointment */
    char last_visit[DATE_LEN]; /* "" when none */
    struct rules_stats *stats;
};

/* ---- small helpers -------------------------------------------------------------------- */

/* Days since the epoch of a "YYYY-MM-DD" date; 0 with ODSYNC_PARSE on garbage. */
static int date_days(const char *date, int64_t *days)
{
    char buf[20];
    int64_t naive;
    if (date == NULL || strlen(date) != 10)
        return ODSYNC_PARSE;
    util_fmt(buf, sizeof(buf), "%s 00:00:00", date);
    if (tz_parse_local(buf, &naive) != ODSYNC_OK)
        return ODSYNC_PARSE;
    *days = naive / DAY_S;
    return ODSYNC_OK;
}

/* The instant (ms) of office-local midnight starting a date given as days. */
static int64_t day_instant(const struct ctx *c, int64_t days)
{
    int64_t utc = days * DAY_S;
    if (tz_local_to_utc(c->set->tz, days * DAY_S, 0, &utc) != ODSYNC_OK)
        utc = days * DAY_S;
    return utc * 1000;
}

/* The instant (ms) of an office-local "YYYY-MM-DD HH:MM:SS"; -1 when it does not parse. */
static int64_t local_instant(const struct ctx *c, const char *local)
{
    int64_t naive, utc;
    if (local == NULL || tz_parse_local(local, &naive) != ODSYNC_OK ||
        tz_local_to_utc(c->set->tz, naive, 0, &utc) != ODSYNC_OK)
        return -1;
    return utc * 1000;
}

/* One text column of a one-row query bound to (office, patnum) into out ("" when NULL). */
static int one_text(struct ctx *c, const char *sql, char *out, size_t len)
{
    sqlite3_stmt *s = store_stmt(c->st, sql);
    int rc;
    out[0] = '\0';
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->patnum);
    sqlite3_bind_text(s, 3, c->now_local, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        util_fmt(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* Gather the facts every rule needs. */
static int load_facts(struct ctx *c)
{
    char tmp[20];
    int64_t local = 0;
    int rc;
    policy_local_date(c->set, c->now, c->today);
    if (tz_utc_to_local(c->set->tz, c->now / 1000, &local) != ODSYNC_OK)
        local = c->now / 1000;
    tz_format_local(local, c->now_local);
    rc = one_text(c,
                  "SELECT 1 FROM od_appointments INDEXED BY od_appointments_patient"
                  " WHERE office = ?1 AND patnum = ?2 AND status = 'Scheduled' AND start > ?3",
                  tmp, sizeof(tmp));
    c->booked = tmp[0] != '\0';
    if (rc == ODSYNC_OK)
        rc = one_text(c,
                      "SELECT MAX(d) FROM (SELECT proc_date AS d FROM od_procedures"
                      " INDEXED BY od_procedures_patient"
                      " WHERE office = ?1 AND patnum = ?2 AND status = 'C' AND ?3 = ?3"
                      " UNION ALL SELECT substr(start, 1, 10) FROM od_appointments"
                      " INDEXED BY od_appointments_patient WHERE office = ?1"
                      " AND patnum = ?2 AND status = 'Complete')",
                      c->last_visit, sizeof(c->last_visit));
    return rc;
}

/* ---- messages ------------------------------------------------------------------------- */

/* The route sinks of a channel, and the mask of channels routed anywhere. */
static unsigned routed_channels(const struct config_office *o)
{
    return (o->n_routes[CONFIG_ROUTE_SMS] ? 1u << CAMPAIGN_SMS : 0u) |
           (o->n_routes[CONFIG_ROUTE_EMAIL] ? 1u << CAMPAIGN_EMAIL : 0u);
}

/* The template variables for a message to c's recipient (borrowed from c). */
static void message_vars(const struct ctx *c, const char *first_names, struct template_vars *v)
{
    const struct campaign_policy *p = &c->set->policy;
    memset(v, 0, sizeof(*v));
    v->first_name = first_names;
    v->practice_name = p->practice_name;
    v->practice_phone = p->practice_phone;
    v->booking_link = p->booking_link;
    v->review_link = p->review_link;
    v->opt_out = p->opt_out_text;
}

/* Add a string (or null) member. */
static int add_text(cJSON *o, const char *name, const char *v)
{
    return (v ? cJSON_AddStringToObject(o, name, v) : cJSON_AddNullToObject(o, name)) != NULL;
}

/* The message record (sink.h schema) into *out (caller frees); ODSYNC_INVALID with err when
 * the template cannot render for this patient (err names no patient data). */
static int message_body(const struct ctx *c, int kind, int channel, const char *key, const char *to,
                        const char *first_names, char **out, char *err, size_t errlen)
{
    const struct campaign *cp = &c->set->campaigns[kind];
    struct template_vars v;
    char ckey[KEY_LEN], *subject = NULL, *body = NULL, *printed = NULL;
    cJSON *o = NULL, *data;
    int rc, ok;

    *out = NULL;
    message_vars(c, first_names, &v);
    if (channel == CAMPAIGN_SMS) {
        rc = template_render(cp->sms, &v, &body, err, errlen);
    } else {
        rc = template_render(cp->email_subject, &v, &subject, err, errlen);
        if (rc == ODSYNC_OK)
            rc = template_render(cp->email_body, &v, &body, err, errlen);
    }
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = keys_contact(ckey, sizeof(ckey), c->office->id, c->r.via);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = ODSYNC_NOMEM;
    o = cJSON_CreateObject();
    ok = o != NULL && add_text(o, "key", key) && add_text(o, "office", c->office->id) &&
         add_text(o, "contact_key", ckey) &&
         add_text(o, "channel", campaign_channel_name(channel)) &&
         add_text(o, "campaign", campaign_kind_name(kind)) && add_text(o, "to", to) &&
         add_text(o, "subject", subject) && add_text(o, "body", body) &&
         add_text(o, "template_id", channel == CAMPAIGN_EMAIL ? cp->email_template_id : NULL);
    data = ok ? cJSON_AddObjectToObject(o, "template_data") : NULL;
    ok = data != NULL && add_text(data, "first_name", first_names) &&
         add_text(data, "practice_name", v.practice_name) &&
         add_text(data, "practice_phone", v.practice_phone) &&
         (v.booking_link == NULL || add_text(data, "booking_link", v.booking_link)) &&
         (v.review_link == NULL || add_text(data, "review_link", v.review_link));
    printed = ok ? cJSON_PrintUnformatted(o) : NULL;
    *out = printed ? util_strdup(printed) : NULL;
    if (*out != NULL)
        rc = ODSYNC_OK;
cleanup:
    cJSON_free(printed);
    cJSON_Delete(o);
    util_free(subject);
    util_free(body);
    return rc;
}

/* The sink a message of channel goes to: the first of the office's route. */
static const char *message_sink(const struct config_office *o, int channel)
{
    enum config_route r = channel == CAMPAIGN_SMS ? CONFIG_ROUTE_SMS : CONFIG_ROUTE_EMAIL;
    return o->n_routes[r] ? o->routes[r][0] : NULL;
}

/* Record a message that will not be sent (never created in the outbox). */
static int record_skip(struct ctx *c, int kind, const char *key, int64_t due_at,
                       const struct policy_verdict *v, const char *family)
{
    struct ledger_entry e;
    const char *campaign = campaign_kind_name(kind);
    const char *channel = v->address[0] ? campaign_channel_name(v->channel) : "none";
    int created = 0, rc;
    memset(&e, 0, sizeof(e));
    e.office = (char *)c->office->id;
    e.key = (char *)key;
    e.patnum = c->patnum;
    e.campaign = (char *)campaign;
    e.channel = (char *)channel;
    e.address = v->address[0] ? (char *)v->address : NULL;
    e.family = (char *)family;
    e.state = v->reason[0] && strcmp(v->reason, "expired") == 0 ? LEDGER_EXPIRED : LEDGER_SKIPPED;
    e.due_at = due_at;
    e.created_at = c->now;
    e.reason = (char *)v->reason;
    rc = ledger_create(c->st, &e, &created);
    if (rc == ODSYNC_OK && created) {
        c->stats->skipped++;
        rc = ledger_decide(c->st, c->office->id, key, c->patnum, campaign, channel,
                           e.state == LEDGER_EXPIRED ? "expired" : "skipped", 0, v->reason, v->rule,
                           v->consent[0] ? v->consent : NULL, c->now);
    }
    return rc;
}

/* Family aggregation (R23): a live message of the same campaign to the same address,
 * created today for another member of the family, into group (its key). "" when none. */
static int find_family_message(struct ctx *c, int kind, const char *address, char *group,
                               size_t len)
{
    sqlite3_stmt *s =
        store_stmt(c->st, "SELECT key FROM messages INDEXED BY messages_address WHERE office = ?"
                          " AND address = ? AND campaign = ? AND state IN ('queued', 'held')"
                          " AND family = key AND created_at >= ? AND patnum <> ? LIMIT 1");
    int rc;
    group[0] = '\0';
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, address, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, campaign_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, policy_local_day_start(c->set, c->now, 0));
    sqlite3_bind_int64(s, 5, c->patnum);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        util_fmt(group, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* "Ann", "Ann and Bob", "Ann, Bob and Cy": the first names of a family group's members
 * (the head, then the members aggregated into it). Caller frees. */
static char *family_names(struct ctx *c, const char *group)
{
    sqlite3_stmt *s =
        store_stmt(c->st, "SELECT patnum FROM messages INDEXED BY messages_family WHERE office = ?"
                          " AND family = ? ORDER BY (key = family) DESC, created_at, patnum");
    struct sbuf b = {0};
    int64_t pats[16];
    size_t n = 0, i;
    if (s == NULL)
        return NULL;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, group, -1, SQLITE_STATIC);
    while (n < UTIL_ARRAY_LEN(pats) && sqlite3_step(s) == SQLITE_ROW)
        pats[n++] = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    for (i = 0; i < n; i++) {
        struct policy_recipient m;
        if (policy_recipient_load(c->st, c->office->id, pats[i], c->now, &m) != ODSYNC_OK)
            continue;
        if (b.len > 0)
            sbuf_puts(&b, i + 1 == n ? " and " : ", ");
        sbuf_puts(&b, m.first_name ? m.first_name : "");
        policy_recipient_clear(&m);
    }
    return sbuf_take(&b);
}

/* Join this patient's message to a family group: recorded as aggregated, and the group's
 * pending message re-rendered with every first name. */
static int join_family(struct ctx *c, int kind, const char *key, int64_t due_at,
                       const struct policy_verdict *v, const char *group)
{
    struct policy_verdict agg = *v;
    struct ledger_entry head;
    char *names = NULL, *body = NULL, err[160];
    const char *sink = message_sink(c->office, v->channel);
    int64_t version = 0;
    int rc, changed = 0;

    util_fmt(agg.reason, sizeof(agg.reason), "aggregated");
    util_fmt(agg.rule, sizeof(agg.rule), "R23");
    rc = record_skip(c, kind, key, due_at, &agg, group);
    if (rc != ODSYNC_OK)
        return rc;
    rc = ledger_get(c->st, c->office->id, group, &head);
    if (rc != ODSYNC_OK)
        return rc == ODSYNC_NOT_FOUND ? ODSYNC_OK : rc;
    names = family_names(c, group);
    rc = names
             ? message_body(c, kind, v->channel, group, v->address, names, &body, err, sizeof(err))
             : ODSYNC_NOMEM;
    if (rc == ODSYNC_INVALID) /* the names do not fit one SMS: the head's message stands */
        rc = ODSYNC_OK;
    else if (rc == ODSYNC_OK)
        rc = records_upsert(c->st, c->office->id, group, ODSYNC_KIND_MESSAGE, body, &changed,
                            &version);
    if (rc == ODSYNC_OK && changed && sink != NULL)
        rc = outbox_enqueue_at(c->st, sink, c->office->id, group, ODSYNC_KIND_MESSAGE, version,
                               body, head.hold_until > 0 ? head.hold_until : head.due_at);
    ledger_entry_clear(&head);
    util_free(names);
    util_free(body);
    return rc;
}

/* Create the message of an occasion (key) that became due at due_at, unless it exists. */
static int create_message(struct ctx *c, int kind, const char *key, int64_t due_at)
{
    struct policy_verdict v, t;
    struct ledger_entry e, old;
    char group[KEY_LEN], err[160], *body = NULL;
    const char *sink;
    int64_t version = 0, next_at;
    int rc, created = 0, changed = 0;

    rc = ledger_get(c->st, c->office->id, key, &old);
    ledger_entry_clear(&old);
    if (rc != ODSYNC_NOT_FOUND)
        return rc; /* exists (decided before), or an error */
    rc = policy_choose_channel(c->st, c->office->id, c->set, kind, routed_channels(c->office),
                               &c->r, &v);
    if (rc != ODSYNC_OK || v.outcome == POLICY_SKIP)
        return rc != ODSYNC_OK ? rc : record_skip(c, kind, key, due_at, &v, NULL);
    group[0] = '\0';
    if (c->set->policy.family_aggregation) {
        rc = find_family_message(c, kind, v.address, group, sizeof(group));
        if (rc != ODSYNC_OK || group[0] != '\0')
            return rc != ODSYNC_OK ? rc : join_family(c, kind, key, due_at, &v, group);
    }
    rc = policy_timing(c->st, c->office->id, c->set, kind, key, v.address, due_at, c->now, &t);
    if (rc != ODSYNC_OK)
        return rc;
    util_fmt(t.consent, sizeof(t.consent), "%s", v.consent);
    t.channel = v.channel;
    util_fmt(t.address, sizeof(t.address), "%s", v.address);
    if (t.outcome == POLICY_SKIP)
        return record_skip(c, kind, key, due_at, &t, NULL);
    rc = message_body(c, kind, v.channel, key, v.address, c->r.first_name, &body, err, sizeof(err));
    if (rc == ODSYNC_INVALID) {
        util_fmt(t.reason, sizeof(t.reason), "render_failed");
        util_fmt(t.rule, sizeof(t.rule), "R8");
        return record_skip(c, kind, key, due_at, &t, NULL);
    }
    sink = message_sink(c->office, v.channel);
    if (rc != ODSYNC_OK || sink == NULL)
        goto cleanup;
    next_at = t.outcome == POLICY_HOLD ? t.until_ms : c->now;
    memset(&e, 0, sizeof(e));
    e.office = (char *)c->office->id;
    e.key = (char *)key;
    e.patnum = c->patnum;
    e.campaign = (char *)campaign_kind_name(kind);
    e.channel = (char *)campaign_channel_name(v.channel);
    e.address = v.address;
    e.family = c->set->policy.family_aggregation ? (char *)key : NULL;
    e.state =
        t.outcome == POLICY_HOLD && strcmp(t.reason, "not_due") != 0 ? LEDGER_HELD : LEDGER_QUEUED;
    e.due_at = due_at;
    e.hold_until = e.state == LEDGER_HELD ? t.until_ms : 0;
    e.created_at = c->now;
    e.reason = t.reason;
    rc = ledger_create(c->st, &e, &created);
    if (rc == ODSYNC_OK && created)
        rc = records_upsert(c->st, c->office->id, key, ODSYNC_KIND_MESSAGE, body, &changed,
                            &version);
    if (rc == ODSYNC_OK && created)
        rc = outbox_enqueue_at(c->st, sink, c->office->id, key, ODSYNC_KIND_MESSAGE, version, body,
                               next_at);
    if (rc == ODSYNC_OK && created)
        rc = ledger_decide(c->st, c->office->id, key, c->patnum, e.campaign, e.channel,
                           ledger_state_name(e.state), e.hold_until ? e.hold_until : next_at,
                           t.reason, t.rule, v.consent, c->now);
    if (created) {
        c->stats->messages++;
        c->stats->held += e.state == LEDGER_HELD;
    }
cleanup:
    util_free(body);
    return rc;
}

/* ---- recall ----------------------------------------------------------------------------- */

struct recall_row {
    int64_t recall_num;
    char due[DATE_LEN];
    int active;    /* enabled, due date set, not scheduled, not disabled until later */
    int scheduled; /* enabled, due date set, DateScheduled set: booked in Open Dental */
};

/* The stage of a recall due on due_days, on today_days. */
static int recall_stage(const struct campaign *cp, int64_t due_days, int64_t today_days)
{
    int64_t late = today_days - due_days;
    int stage = RECALL_STAGE_NONE;
    size_t i;
    if (late < -cp->due_soon_days)
        return RECALL_STAGE_NONE;
    stage = late < 0 ? RECALL_STAGE_DUE_SOON : RECALL_STAGE_DUE;
    for (i = 0; i < cp->n_overdue; i++)
        if (late >= cp->overdue_days[i])
            stage = RECALL_STAGE_OVERDUE_1 + (int)i;
    return stage;
}

/* The day a stage begins for a recall due on due_days. */
static int64_t stage_start(const struct campaign *cp, int stage, int64_t due_days)
{
    if (stage == RECALL_STAGE_DUE_SOON)
        return due_days - cp->due_soon_days;
    if (stage == RECALL_STAGE_DUE)
        return due_days;
    return due_days + cp->overdue_days[stage - RECALL_STAGE_OVERDUE_1];
}

/* A task record body: the recall's task, open or completed. Caller frees; NULL when out of
 * memory or the due date does not parse. */
static char *task_body(const struct ctx *c, const char *key, const char *due, const char *stage,
                       int open)
{
    char ckey[KEY_LEN], instant[32], line[128], local[20], *printed = NULL, *out = NULL;
    int64_t days = 0, at;
    cJSON *o = NULL;
    int ok;

    if (keys_contact(ckey, sizeof(ckey), c->office->id, c->patnum) != ODSYNC_OK ||
        date_days(due, &days) != ODSYNC_OK)
        goto cleanup;
    /* 09:00 office time: a naive local time, so it stays 09:00 on a DST change day */
    if (tz_local_to_utc(c->set->tz, days * DAY_S + 9 * 3600, 0, &at) != ODSYNC_OK)
        at = days * DAY_S + 9 * 3600;
    tz_format_local(at, local);
    util_fmt(instant, sizeof(instant), "%.10sT%.8sZ", local, local + 11);
    util_fmt(line, sizeof(line), "Recall due %s (%s). Contact the patient to schedule.", due,
             stage);
    o = cJSON_CreateObject();
    ok = o != NULL && add_text(o, "key", key) && add_text(o, "office", c->office->id) &&
         add_text(o, "contact_key", ckey) && add_text(o, "subject", "Recall: schedule a visit") &&
         add_text(o, "body", line) && add_text(o, "due", instant) &&
         add_text(o, "status", open ? "open" : "completed") &&
         add_text(o, "priority",
                  strncmp(stage, "overdue", 7) == 0 ? "high"
                  : strcmp(stage, "due") == 0       ? "medium"
                                                    : "low") &&
         add_text(o, "type", "call");
    printed = ok ? cJSON_PrintUnformatted(o) : NULL;
    out = printed ? util_strdup(printed) : NULL;
cleanup:
    cJSON_free(printed);
    cJSON_Delete(o);
    return out;
}

/* Write a task record and queue it for the office's task routes when it changed. */
static int put_task(struct ctx *c, const char *key, const char *body)
{
    int64_t version = 0;
    size_t i;
    int changed = 0, rc;
    rc = records_upsert(c->st, c->office->id, key, ODSYNC_KIND_TASK, body, &changed, &version);
    for (i = 0; rc == ODSYNC_OK && changed && i < c->office->n_routes[CONFIG_ROUTE_TASK]; i++)
        rc = outbox_enqueue_at(c->st, c->office->routes[CONFIG_ROUTE_TASK][i], c->office->id, key,
                               ODSYNC_KIND_TASK, version, body, OUTBOX_AFTER_CONTACTS);
    c->stats->tasks += changed;
    return rc;
}

/* Remember whether a recall's task is open. */
static int track_task(struct ctx *c, int64_t recall_num, int open)
{
    sqlite3_stmt *s = store_stmt(c->st, "INSERT OR REPLACE INTO engage_tasks (office, recall_num,"
                                        " patnum, open) VALUES (?, ?, ?, ?)");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, recall_num);
    sqlite3_bind_int64(s, 3, c->patnum);
    sqlite3_bind_int(s, 4, open);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* Complete the open tasks of this patient whose recall is not among open_nums[0..n): the
 * stored task body, status "completed" — updated in place, never deleted. */
static int complete_tasks(struct ctx *c, const int64_t *open_nums, size_t n)
{
    sqlite3_stmt *s = store_stmt(
        c->st, "SELECT t.recall_num, r.body FROM engage_tasks t INDEXED BY engage_tasks_patient"
               " JOIN records r ON r.office = t.office AND r.key = ?3"
               " || t.recall_num WHERE t.office = ?1 AND t.patnum = ?2"
               " AND t.open = 1");
    char prefix[KEY_LEN], key[KEY_LEN];
    int64_t nums[64];
    char *bodies[64];
    size_t m = 0, i, j;
    int rc = ODSYNC_OK;
    if (s == NULL)
        return ODSYNC_STORE;
    util_fmt(prefix, sizeof(prefix), "od:%s:recall:", c->office->id);
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->patnum);
    sqlite3_bind_text(s, 3, prefix, -1, SQLITE_STATIC);
    while (m < UTIL_ARRAY_LEN(nums) && sqlite3_step(s) == SQLITE_ROW) {
        nums[m] = sqlite3_column_int64(s, 0);
        bodies[m] = util_strdup((const char *)sqlite3_column_text(s, 1));
        m++;
    }
    sqlite3_reset(s);
    for (i = 0; i < m; i++) {
        cJSON *o;
        char *printed = NULL;
        int still_open = 0;
        for (j = 0; j < n; j++)
            still_open |= open_nums[j] == nums[i];
        if (still_open || rc != ODSYNC_OK)
            continue;
        o = bodies[i] ? cJSON_Parse(bodies[i]) : NULL;
        if (o != NULL)
            cJSON_ReplaceItemInObjectCaseSensitive(o, "status", cJSON_CreateString("completed"));
        printed = o ? cJSON_PrintUnformatted(o) : NULL;
        rc = keys_recall_task(key, sizeof(key), c->office->id, nums[i]);
        if (rc == ODSYNC_OK)
            rc = printed ? put_task(c, key, printed) : ODSYNC_NOMEM;
        if (rc == ODSYNC_OK)
            rc = track_task(c, nums[i], 0);
        cJSON_free(printed);
        cJSON_Delete(o);
    }
    for (i = 0; i < m; i++)
        util_free(bodies[i]);
    return rc;
}

/* Recall stages, tasks and the recall message. */
static int rule_recall(struct ctx *c, struct rules_contact *contact)
{
    const struct campaign *cp = &c->set->campaigns[CAMPAIGN_RECALL];
    sqlite3_stmt *s = store_stmt(
        c->st, "SELECT recall_num, date_due, disabled = 0 AND date_due IS NOT NULL"
               " AND date_scheduled IS NULL AND (json_extract(body, '$.disable_until') IS NULL"
               " OR json_extract(body, '$.disable_until') <= ?3),"
               " disabled = 0 AND date_due IS NOT NULL AND date_scheduled IS NOT NULL"
               " FROM od_recalls INDEXED BY od_recalls_patient WHERE office = ?1 AND patnum = ?2"
               " ORDER BY date_due IS NULL, date_due, recall_num");
    struct recall_row rows[16];
    int64_t open_nums[16], today_days = 0, due_days;
    size_t n = 0, n_open = 0, i;
    char key[KEY_LEN], stage_name[24], *body;
    int rc = ODSYNC_OK, stage, patient_ok, first = 1, shown = 0;

    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->patnum);
    sqlite3_bind_text(s, 3, c->today, -1, SQLITE_STATIC);
    while (n < UTIL_ARRAY_LEN(rows) && sqlite3_step(s) == SQLITE_ROW) {
        rows[n].recall_num = sqlite3_column_int64(s, 0);
        util_fmt(rows[n].due, sizeof(rows[n].due), "%s",
                 sqlite3_column_type(s, 1) == SQLITE_NULL
                     ? ""
                     : (const char *)sqlite3_column_text(s, 1));
        rows[n].active = sqlite3_column_int(s, 2);
        rows[n].scheduled = sqlite3_column_int(s, 3);
        n++;
    }
    sqlite3_reset(s);
    date_days(c->today, &today_days);
    patient_ok = c->r.status != NULL && strcmp(c->r.status, "Patient") == 0;
    for (i = 0; i < n && rc == ODSYNC_OK; i++) {
        if (!shown && rows[i].scheduled) { /* booked in Open Dental: the contact says so */
            util_fmt(contact->recall_due, sizeof(contact->recall_due), "%s", rows[i].due);
            util_fmt(contact->recall_stage, sizeof(contact->recall_stage), "scheduled");
            shown = 1;
        }
        if (!rows[i].active || date_days(rows[i].due, &due_days) != ODSYNC_OK)
            continue;
        stage = recall_stage(cp, due_days, today_days);
        campaign_stage_name(cp, stage, stage_name, sizeof(stage_name));
        if (!shown) { /* the contact shows the earliest active or booked recall */
            util_fmt(contact->recall_due, sizeof(contact->recall_due), "%s", rows[i].due);
            util_fmt(contact->recall_stage, sizeof(contact->recall_stage), "%s",
                     c->booked                    ? "scheduled"
                     : stage == RECALL_STAGE_NONE ? ""
                                                  : stage_name);
            shown = 1;
        }
        if (!patient_ok || c->booked || stage == RECALL_STAGE_NONE) {
            first = 0;
            continue;
        }
        rc = keys_recall_task(key, sizeof(key), c->office->id, rows[i].recall_num);
        if (rc == ODSYNC_OK && cp->tasks) {
            body = task_body(c, key, rows[i].due, stage_name, 1);
            rc = body ? put_task(c, key, body) : ODSYNC_NOMEM;
            util_free(body);
            if (rc == ODSYNC_OK)
                rc = track_task(c, rows[i].recall_num, 1);
            open_nums[n_open++] = rows[i].recall_num;
        }
        if (rc == ODSYNC_OK && first && cp->enabled && (cp->remind_stages & (1u << stage))) {
            int64_t due_at;
            util_fmt(key, sizeof(key), "od:%s:recall:%lld:%s:%s", c->office->id,
                     (long long)rows[i].recall_num, rows[i].due, stage_name);
            due_at = policy_window_open(c->set, day_instant(c, stage_start(cp, stage, due_days))) +
                     policy_spread_ms(c->set, key);
            if (c->now < due_at + cp->expire_hours * 3600000)
                rc = create_message(c, CAMPAIGN_RECALL, key, due_at);
        }
        first = 0;
    }
    if (rc == ODSYNC_OK)
        rc = complete_tasks(c, open_nums, n_open);
    return rc;
}

/* ---- reactivation ----------------------------------------------------------------------- */

/* The enrolment row: enrolled_on ("" when none) and whether it ended. */
static int enrolment(struct ctx *c, char *enrolled_on, int *ended)
{
    sqlite3_stmt *s = store_stmt(c->st, "SELECT enrolled_on, ended_on IS NOT NULL FROM"
                                        " engage_reactivation WHERE office = ? AND patnum = ?");
    int rc;
    enrolled_on[0] = '\0';
    *ended = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->patnum);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        util_fmt(enrolled_on, DATE_LEN, "%s", (const char *)sqlite3_column_text(s, 0));
        *ended = sqlite3_column_int(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* Enrol (ended_on NULL) or end (ended_on = today, with reason) the patient. */
static int set_enrolment(struct ctx *c, const char *enrolled_on, const char *end_reason)
{
    sqlite3_stmt *s = store_stmt(c->st, "INSERT OR REPLACE INTO engage_reactivation (office,"
                                        " patnum, enrolled_on, ended_on, reason)"
                                        " VALUES (?, ?, ?, ?, ?)");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->patnum);
    sqlite3_bind_text(s, 3, enrolled_on, -1, SQLITE_STATIC);
    if (end_reason != NULL)
        sqlite3_bind_text(s, 4, c->today, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_text(s, 5, end_reason, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* The date months before date ("YYYY-MM-DD"), keeping the day of the month (a day past the
 * month's end still compares correctly as text: "2026-02-31" follows every February date).
 * 0 when date does not parse. */
static int months_before(const char *date, int64_t months, char out[DATE_LEN])
{
    char part[5];
    int64_t y, m, d, total;
    util_fmt(part, sizeof(part), "%.4s", date);
    if (strlen(date) != 10 || util_parse_i64(part, 1, 9999, &y) != ODSYNC_OK)
        return 0;
    util_fmt(part, sizeof(part), "%.2s", date + 5);
    if (util_parse_i64(part, 1, 12, &m) != ODSYNC_OK)
        return 0;
    util_fmt(part, sizeof(part), "%.2s", date + 8);
    if (util_parse_i64(part, 1, 31, &d) != ODSYNC_OK)
        return 0;
    total = y * 12 + (m - 1) - months;
    return util_fmt(out, DATE_LEN, "%04lld-%02lld-%02lld", (long long)(total / 12),
                    (long long)(total % 12 + 1), (long long)d) == ODSYNC_OK;
}

/* Whether the patient has lapsed: a Patient, last visit lapse_months ago or more, nothing
 * booked. NULL when lapsed, else the reason code. */
static const char *not_lapsed(const struct ctx *c)
{
    const struct campaign *cp = &c->set->campaigns[CAMPAIGN_REACTIVATION];
    char cut[DATE_LEN];
    if (c->r.status == NULL || strcmp(c->r.status, "Patient") != 0)
        return "inactive";
    if (c->booked)
        return "booked";
    if (c->last_visit[0] == '\0')
        return "no_visit";
    if (!months_before(c->today, cp->lapse_months, cut))
        return "bad_date";
    return strcmp(c->last_visit, cut) > 0 ? "visited" : NULL;
}

/* Reactivation enrolment and its message sequence. */
static int rule_reactivation(struct ctx *c, struct rules_contact *contact)
{
    const struct campaign *cp = &c->set->campaigns[CAMPAIGN_REACTIVATION];
    char enrolled_on[DATE_LEN], key[KEY_LEN];
    const char *why = not_lapsed(c);
    int64_t start = 0, today_days = 0, n;
    int ended = 0, rc, is_lapsed = why == NULL;

    rc = enrolment(c, enrolled_on, &ended);
    if (rc != ODSYNC_OK)
        return rc;
    if (!is_lapsed) {
        if (enrolled_on[0] != '\0' && !ended)
            rc = set_enrolment(c, enrolled_on, why);
        return rc;
    }
    if (enrolled_on[0] == '\0' || (ended && strcmp(c->last_visit, enrolled_on) >= 0)) {
        util_fmt(enrolled_on, sizeof(enrolled_on), "%s", c->today); /* a new lapse */
        rc = set_enrolment(c, enrolled_on, NULL);
        ended = 0;
    }
    if (rc != ODSYNC_OK || ended)
        return rc;
    contact->reactivation = 1;
    if (!cp->enabled)
        return ODSYNC_OK;
    date_days(enrolled_on, &start);
    date_days(c->today, &today_days);
    for (n = 0; n < cp->max_messages && rc == ODSYNC_OK; n++) {
        int64_t day = start + n * cp->spacing_days, due_at;
        if (day > today_days)
            break;
        util_fmt(key, sizeof(key), "od:%s:%lld:reactivation:%s:%lld", c->office->id,
                 (long long)c->patnum, enrolled_on, (long long)(n + 1));
        due_at = policy_window_open(c->set, day_instant(c, day)) + policy_spread_ms(c->set, key);
        if (c->now < due_at + cp->expire_hours * 3600000)
            rc = create_message(c, CAMPAIGN_REACTIVATION, key, due_at);
    }
    return rc;
}

/* ---- review ----------------------------------------------------------------------------- */

/* One review request per recently completed appointment (R25), at most one per patient per
 * min_days_between (R26). */
static int rule_review(struct ctx *c)
{
    const struct campaign *cp = &c->set->campaigns[CAMPAIGN_REVIEW];
    sqlite3_stmt *s;
    int64_t apts[32], last = 0;
    int64_t ats[32];
    size_t n = 0, i;
    char key[KEY_LEN];
    int rc = ODSYNC_OK;

    if (!cp->enabled)
        return ODSYNC_OK;
    s = store_stmt(c->st, "SELECT apt_num, COALESCE(json_extract(body, '$.dismissed_at'), start)"
                          " FROM od_appointments INDEXED BY od_appointments_patient"
                          " WHERE office = ?1 AND patnum = ?2 AND status = 'Complete'"
                          " AND start <= ?3 ORDER BY start, apt_num");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->patnum);
    sqlite3_bind_text(s, 3, c->now_local, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t done = local_instant(c, (const char *)sqlite3_column_text(s, 1));
        int64_t due_at = done + cp->delay_minutes * 60000;
        if (done < 0 || c->now >= due_at + cp->expire_hours * 3600000)
            continue; /* an old visit: no request, and no ledger row */
        if (n < UTIL_ARRAY_LEN(apts)) {
            apts[n] = sqlite3_column_int64(s, 0);
            ats[n++] = due_at;
        }
    }
    sqlite3_reset(s);
    for (i = 0; i < n && rc == ODSYNC_OK; i++) {
        struct policy_verdict v;
        struct ledger_entry old;
        rc = keys_review(key, sizeof(key), c->office->id, apts[i]);
        if (rc != ODSYNC_OK)
            break;
        rc = ledger_get(c->st, c->office->id, key, &old);
        ledger_entry_clear(&old);
        if (rc != ODSYNC_NOT_FOUND)
            continue; /* decided before (or an error, returned below) */
        rc = ledger_last_for_patient(c->st, c->office->id, c->patnum, "review", 1, key, &last);
        if (rc == ODSYNC_OK && last > 0 && c->now - last < cp->min_days_between * DAY_MS) {
            memset(&v, 0, sizeof(v));
            v.outcome = POLICY_SKIP;
            util_fmt(v.reason, sizeof(v.reason), "review_cap");
            util_fmt(v.rule, sizeof(v.rule), "R26");
            rc = record_skip(c, CAMPAIGN_REVIEW, key, ats[i], &v, NULL);
            continue;
        }
        if (rc == ODSYNC_OK)
            rc = create_message(c, CAMPAIGN_REVIEW, key, ats[i]);
    }
    return rc == ODSYNC_NOT_FOUND ? ODSYNC_OK : rc;
}

/* ---- entry points ----------------------------------------------------------------------- */

/* Open Dental's TxtMsgOk = No is an opt-out (R28): recorded in the consent ledger with its
 * source, so it keeps blocking SMS to that number even if a later sync reads Yes (R30). */
static int record_od_opt_out(struct ctx *c)
{
    int changed = 0, rc;
    if (c->r.mobile == NULL || c->r.sms_consent == NULL || strcmp(c->r.sms_consent, "no") != 0 ||
        c->r.via != c->patnum)
        return ODSYNC_OK;
    rc = consent_opt_out(c->st, c->office->id, "sms", c->r.mobile, "*", "opendental", "TxtMsgOk=No",
                         c->now, &changed);
    return rc == ODSYNC_INVALID ? ODSYNC_OK : rc;
}

int rules_patient(struct store *st, const struct config_office *office, int64_t patnum,
                  int64_t now_ms, struct rules_contact *contact, struct rules_stats *stats)
{
    struct ctx c;
    int rc;

    memset(contact, 0, sizeof(*contact));
    memset(&c, 0, sizeof(c));
    c.st = st;
    c.office = office;
    c.set = office->engage;
    c.patnum = patnum;
    c.now = now_ms;
    c.stats = stats;
    rc = policy_recipient_load(st, office->id, patnum, now_ms, &c.r);
    if (rc == ODSYNC_NOT_FOUND)
        return ODSYNC_OK;
    if (rc == ODSYNC_OK)
        rc = record_od_opt_out(&c);
    if (rc == ODSYNC_OK)
        rc = load_facts(&c);
    if (rc == ODSYNC_OK)
        util_fmt(contact->last_visit, sizeof(contact->last_visit), "%s", c.last_visit);
    if (rc == ODSYNC_OK)
        rc = rule_recall(&c, contact);
    if (rc == ODSYNC_OK)
        rc = rule_reactivation(&c, contact);
    if (rc == ODSYNC_OK)
        rc = rule_review(&c);
    policy_recipient_clear(&c.r);
    return rc;
}

struct tick_args {
    const struct config_office *office;
    char today[DATE_LEN];
    int ran;
};

/* Mark the office's patients dirty once per local day (inside store_tx). */
static int tick_tx(struct store *st, void *arg)
{
    struct tick_args *a = arg;
    sqlite3_stmt *s = store_stmt(st, "SELECT last_tick FROM engage_office WHERE office = ?");
    int rc, same = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->office->id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        same = strcmp((const char *)sqlite3_column_text(s, 0), a->today) == 0;
    sqlite3_reset(s);
    if (same)
        return ODSYNC_OK;
    s = store_stmt(st, "INSERT OR IGNORE INTO od_dirty (office, patnum)"
                       " SELECT office, patnum FROM od_patients WHERE office = ?");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->office->id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_status(rc);
    s = store_stmt(st, "INSERT OR REPLACE INTO engage_office (office, last_tick) VALUES (?, ?)");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->today, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    a->ran = rc == SQLITE_DONE;
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

int rules_tick(struct store *st, const struct config_office *office, int64_t now_ms, int *ran)
{
    struct tick_args a;
    int rc;
    memset(&a, 0, sizeof(a));
    a.office = office;
    policy_local_date(office->engage, now_ms, a.today);
    rc = store_tx(st, tick_tx, &a);
    *ran = rc == ODSYNC_OK && a.ran;
    return rc;
}

/* The recall message's occasion: recall n still active, due on due, nothing booked. */
static int recall_relevant(struct ctx *c, int64_t recall_num, const char *due, const char **why)
{
    sqlite3_stmt *s = store_stmt(c->st, "SELECT date_due, disabled = 0 AND date_scheduled IS NULL"
                                        " AND (json_extract(body, '$.disable_until') IS NULL"
                                        " OR json_extract(body, '$.disable_until') <= ?3)"
                                        " FROM od_recalls WHERE office = ?1 AND recall_num = ?2");
    int rc, active = 0, found = 0, same = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, recall_num);
    sqlite3_bind_text(s, 3, c->today, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        found = 1;
        same = sqlite3_column_type(s, 0) != SQLITE_NULL &&
               strcmp((const char *)sqlite3_column_text(s, 0), due) == 0;
        active = sqlite3_column_int(s, 1);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_status(rc);
    *why = !found ? "recall_gone" : !active ? "fulfilled" : !same ? "recall_moved" : NULL;
    return ODSYNC_OK;
}

/* The review's appointment is still Complete. */
static int review_relevant(struct ctx *c, int64_t apt_num, const char **why)
{
    sqlite3_stmt *s = store_stmt(c->st, "SELECT status = 'Complete' FROM od_appointments"
                                        " WHERE office = ? AND apt_num = ?");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, c->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, apt_num);
    rc = sqlite3_step(s);
    *why = rc == SQLITE_ROW && sqlite3_column_int(s, 0) ? NULL : "not_complete";
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* The reactivation enrolment the key belongs to is still running and the patient lapsed. */
static int reactivation_relevant(struct ctx *c, const char *enrolled, const char **why)
{
    char on[DATE_LEN];
    int ended = 0, rc = enrolment(c, on, &ended);
    if (rc != ODSYNC_OK)
        return rc;
    *why = not_lapsed(c);
    if (*why != NULL)
        return ODSYNC_OK;
    *why = strncmp(on, enrolled, 10) != 0 || ended ? "enrolment_ended" : NULL;
    return ODSYNC_OK;
}

int rules_still_relevant(struct store *st, const struct config_office *office, const char *key,
                         int64_t patnum, int64_t now_ms, int *relevant, char *reason,
                         size_t reason_len)
{
    struct policy_recipient r;
    int rc = policy_recipient_load(st, office->id, patnum, now_ms, &r);
    *relevant = 0;
    if (rc == ODSYNC_NOT_FOUND) {
        util_fmt(reason, reason_len, "patient_gone");
        return ODSYNC_OK;
    }
    if (rc == ODSYNC_OK)
        rc = rules_relevant_for(st, office, key, &r, now_ms, relevant, reason, reason_len);
    policy_recipient_clear(&r);
    return rc;
}

int rules_relevant_for(struct store *st, const struct config_office *office, const char *key,
                       const struct policy_recipient *r, int64_t now_ms, int *relevant,
                       char *reason, size_t reason_len)
{
    struct ctx c;
    struct rules_stats none;
    const char *why = NULL, *rest;
    char prefix[KEY_LEN], due[DATE_LEN];
    int64_t num = 0;
    size_t plen;
    int rc;

    *relevant = 0;
    memset(&c, 0, sizeof(c));
    memset(&none, 0, sizeof(none));
    c.st = st;
    c.office = office;
    c.set = office->engage;
    c.patnum = r->patnum;
    c.now = now_ms;
    c.stats = &none;
    c.r = *r; /* borrowed: never cleared here */
    rc = load_facts(&c);
    if (rc != ODSYNC_OK)
        return rc;
    util_fmt(prefix, sizeof(prefix), "od:%s:", office->id);
    plen = strlen(prefix);
    rest = strncmp(key, prefix, plen) == 0 ? key + plen : "";
    if (c.r.status == NULL || strcmp(c.r.status, "Patient") != 0) {
        why = "inactive";
    } else if (strncmp(rest, "recall:", 7) == 0) {
        const char *colon = strchr(rest + 7, ':');
        char num_text[24];
        util_fmt(num_text, sizeof(num_text), "%.*s", colon ? (int)(colon - rest - 7) : 0, rest + 7);
        util_fmt(due, sizeof(due), "%.10s", colon ? colon + 1 : "");
        why = "bad_key";
        if (util_parse_i64(num_text, 1, INT64_MAX, &num) == ODSYNC_OK)
            rc = c.booked ? (why = "booked", ODSYNC_OK) : recall_relevant(&c, num, due, &why);
    } else if (strncmp(rest, "apt:", 4) == 0) {
        char num_text[24];
        const char *colon = strchr(rest + 4, ':');
        util_fmt(num_text, sizeof(num_text), "%.*s", colon ? (int)(colon - rest - 4) : 0, rest + 4);
        why = "bad_key";
        if (util_parse_i64(num_text, 1, INT64_MAX, &num) == ODSYNC_OK)
            rc = review_relevant(&c, num, &why);
    } else if (strstr(rest, ":reactivation:") != NULL) {
        rc = reactivation_relevant(&c, strstr(rest, ":reactivation:") + 14, &why);
    } else {
        why = "unknown_occasion";
    }
    *relevant = rc == ODSYNC_OK && why == NULL;
    util_fmt(reason, reason_len, "%s", why ? why : "ok");
    return rc;
}
