/*
 * campaign: an office's engagement settings — the three campaigns (recall, reactivation,
 * review) and the messaging policy — parsed from the config's top-level "campaigns" and
 * "policy", each overridable per office by the office's own "campaigns" / "policy" objects
 * (member by member: an office's "campaigns.recall.due_soon_days" replaces only that value).
 *
 * Everything is checked when the config loads, and every error names the JSON path:
 *   odsync.json: campaigns.recall.sms: unknown variable {{balance}} (allowed: first_name, ...)
 *   odsync.json: offices[0].policy.quiet_hours[1]: expected "HH:MM", got "9pm"
 * Templates are compiled here (core/template.c), so a template that could leak clinical
 * detail or run past one SMS segment never reaches a running daemon.
 *
 * A campaign object may be empty ("recall": {}) to take every default; a campaign that is
 * absent is disabled for messages (recall stages and tasks are still computed: they are CRM
 * data, not messages).
 *
 * Checks beyond each value's own type and range, made for enabled campaigns on the channels
 * they use: a template naming {{review_link}}, {{booking_link}} or {{practice_phone}} needs
 * that value (policy, or the office's phone); {{appointment_date}} / {{appointment_time}}
 * are for review messages only; the SMS, rendered with this office's practice name, phone,
 * links and opt_out_text (and a sample first name), must still fit one segment. Every
 * campaign's email must name the practice in its subject or body. Built-in templates are
 * used for absent ones (without the phone when the office has none). "note" (any string) is
 * accepted and ignored in each campaign object and in "policy".
 */
#ifndef ODSYNC_CAMPAIGN_H
#define ODSYNC_CAMPAIGN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct template;
struct tz;

enum campaign_kind {
    CAMPAIGN_RECALL = 0,
    CAMPAIGN_REACTIVATION = 1,
    CAMPAIGN_REVIEW = 2,
    CAMPAIGN_COUNT
};

/* Message classes (messaging rules R1). */
enum campaign_class {
    CAMPAIGN_CLASS_TREATMENT = 0,
    CAMPAIGN_CLASS_INFORMATIONAL = 1,
    CAMPAIGN_CLASS_MARKETING = 2
};

enum campaign_channel { CAMPAIGN_SMS = 0, CAMPAIGN_EMAIL = 1, CAMPAIGN_CHANNEL_COUNT };

/* Recall stages, in order. A recall's stage on a date: none before due_soon_days ahead,
 * then due_soon, due (DateDue reached), then overdue_1.. as each overdue_days threshold
 * passes. */
enum recall_stage {
    RECALL_STAGE_NONE = 0,
    RECALL_STAGE_DUE_SOON = 1,
    RECALL_STAGE_DUE = 2,
    RECALL_STAGE_OVERDUE_1 = 3 /* overdue stage i (0-based) is RECALL_STAGE_OVERDUE_1 + i */
};

#define CAMPAIGN_MAX_OVERDUE 4

struct campaign {
    int enabled;   /* "enabled": default true when the campaign object is present */
    int msg_class; /* enum campaign_class; "class": "treatment" | "informational" |
                      "marketing"; default treatment for recall, informational otherwise */
    int channels[CAMPAIGN_CHANNEL_COUNT]; /* "channels": preference order, e.g. ["sms",
                                             "email"]: the first one the patient can receive
                                             is used (one message per occasion, not one per
                                             channel); default ["sms", "email"] */
    size_t n_channels;
    struct template *sms;           /* "sms": SMS template; a built-in default when absent */
    struct template *email_subject; /* "email_subject" */
    struct template *email_body;    /* "email_body" (HTML); subject or body names the practice */
    char *email_template_id;        /* "email_template_id": a provider template (SendGrid
                                       dynamic template "d-..."), or NULL */
    int64_t expire_hours; /* "expire_hours": a message not sent this long after it became due
                             is dropped as expired; default 72 */

    /* recall */
    int64_t due_soon_days;                      /* "due_soon_days": default 14 */
    int64_t overdue_days[CAMPAIGN_MAX_OVERDUE]; /* "overdue_days": ascending, > 0;
                                                   default [30, 90] */
    size_t n_overdue;
    unsigned remind_stages; /* "remind_stages": stage names that send a message ("due_soon",
                               "due", "overdue_30", ...): bit (1u << stage); default all */
    int tasks;              /* "tasks": one CRM task per open recall; default true */

    /* reactivation */
    int64_t lapse_months; /* "lapse_months": no completed visit in this long; default 18 */
    int64_t max_messages; /* "max_messages": per enrolment; default 3 */
    int64_t spacing_days; /* "spacing_days": between messages; default 30 */

    /* review */
    int64_t delay_minutes;    /* "delay_minutes": after the appointment completes; default 120 */
    int64_t min_days_between; /* "min_days_between": per patient; default 180 */
};

struct campaign_policy {
    int quiet_start_min;            /* "quiet_hours": ["08:00", "21:00"]: sending allowed from */
    int quiet_end_min;              /* start (inclusive) to end (exclusive), office-local */
    int64_t max_per_day;            /* "max_per_day": per phone or email address; default 1 */
    int64_t max_per_week;           /* "max_per_week": rolling 7 local days; default 3 */
    int sms_unknown_consent;        /* "sms_unknown_consent": TxtMsgOk Unknown allows SMS;
                                       default false */
    int family_aggregation;         /* "family_aggregation": one message per address per
                                       campaign per day; default false */
    int64_t release_spread_minutes; /* "release_spread_minutes": held messages are spread over
                                       this long after the window opens; default 60 */
    char *booking_link;             /* "booking_link": PHI-free URL, or NULL */
    char *review_link;              /* "review_link": review site URL, or NULL */
    char *opt_out_text;             /* "opt_out_text": SMS opt-out line; NULL = the default */
    char *practice_name;            /* "practice_name": default the office's "name" */
    char *practice_phone;           /* "practice_phone": default the office's "phone" */
    int commlog;                    /* "commlog": write a commlog to Open Dental for each
                                       message sent; default false */
};

/* An office's resolved engagement settings. Owned by its config_office. */
struct campaign_set {
    struct campaign campaigns[CAMPAIGN_COUNT];
    struct campaign_policy policy;
    struct tz *tz; /* the office's zone, loaded once */
};

/* Build an office's settings from the top-level "campaigns" and "policy" (each may be NULL)
 * overridden by the office's own (office_campaigns / office_policy, may be NULL). All JSON is
 * borrowed. office_path is the office's JSON path ("offices[0]") for errors in its
 * overrides; origin is the file name that prefixes every error. name / phone / timezone are
 * the office's (borrowed). On success *out is owned by the caller (campaign_set_free). On
 * failure returns ODSYNC_CONFIG (or ODSYNC_NOMEM) and err holds one line. */
int campaign_set_build(const cJSON *campaigns, const cJSON *policy, const cJSON *office_campaigns,
                       const cJSON *office_policy, const char *office_path, const char *origin,
                       const char *name, const char *phone, const char *timezone,
                       struct campaign_set **out, char *err, size_t errlen);

void campaign_set_free(struct campaign_set *s); /* accepts NULL */

/* "recall", "reactivation", "review". */
const char *campaign_kind_name(int kind);
/* "treatment", "informational", "marketing". */
const char *campaign_class_name(int msg_class);
/* "sms", "email". */
const char *campaign_channel_name(int channel);
/* The name of a recall stage with c's overdue thresholds: "none", "due_soon", "due",
 * "overdue_30", ... Writes into buf (at least 24 bytes); returns buf. */
const char *campaign_stage_name(const struct campaign *c, int stage, char *buf, size_t len);

#endif
