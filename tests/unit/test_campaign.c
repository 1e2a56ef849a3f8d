/*
 * test_campaign: core/campaign — defaults with "{}" and with nothing configured, per-office
 * overrides merged member by member, every class of error with its exact JSON path (template
 * whitelist, SMS length, quiet hours, overdue thresholds, remind stages, unknown campaigns
 * and keys, links a template needs, an email that does not name the practice), stage and
 * enum names, the config loader's wiring (config_office.engage), and allocation failure at
 * every step.
 *
 * Time zones come from the system zoneinfo (tzdata is a build dependency).
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "config.h"
#include "log.h"
#include "template.h"
#include "tz.h"
#include "util.h"

#define ORIGIN "odsync.json"
#define NAME   "Main Street Dental"
#define PHONE  "(555) 010-1000"
#define ZONE   "America/Chicago"

static char errbuf[1024];

/* JSON in tests is written with ' for "; J() converts. Returns one of a few static buffers,
 * reused round-robin. */
static const char *J(const char *s)
{
    static char bufs[8][8192];
    static int next;
    char *b = bufs[next++ % 8];
    size_t i;
    ck_assert_uint_lt(strlen(s), sizeof(bufs[0]));
    for (i = 0; s[i] != '\0'; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    b[i] = '\0';
    return b;
}

/* Parse JSON written with ' (NULL stays NULL); caller frees with cJSON_Delete. */
static cJSON *P(const char *s)
{
    cJSON *v;
    if (s == NULL)
        return NULL;
    v = cJSON_Parse(J(s));
    ck_assert_msg(v != NULL, "bad test JSON: %s", s);
    return v;
}

/* campaign_set_build for office "offices[0]" (NAME, phone, ZONE) from four JSON texts (with ',
 * each may be NULL). Returns the status; *out is the set (or NULL); errbuf has the error. */
static int build_phone(const char *campaigns, const char *policy, const char *ocampaigns,
                       const char *opolicy, const char *phone, struct campaign_set **out)
{
    cJSON *c = P(campaigns), *p = P(policy), *oc = P(ocampaigns), *op = P(opolicy);
    int rc = campaign_set_build(c, p, oc, op, "offices[0]", ORIGIN, NAME, phone, ZONE, out, errbuf,
                                sizeof(errbuf));
    cJSON_Delete(c);
    cJSON_Delete(p);
    cJSON_Delete(oc);
    cJSON_Delete(op);
    if (rc == ODSYNC_OK) {
        ck_assert_ptr_nonnull(*out);
        ck_assert_str_eq(errbuf, "");
    } else {
        ck_assert_ptr_null(*out);
    }
    return rc;
}

/* build_phone with the office phone; the set must build. Caller frees with
 * campaign_set_free. */
static struct campaign_set *build_ok(const char *campaigns, const char *policy,
                                     const char *ocampaigns, const char *opolicy)
{
    struct campaign_set *s = NULL;
    int rc = build_phone(campaigns, policy, ocampaigns, opolicy, PHONE, &s);
    ck_assert_msg(rc == ODSYNC_OK, "rc %d: %s", rc, errbuf);
    return s;
}

/* build_phone with the office phone; must fail with ODSYNC_CONFIG. Returns the message. */
static const char *build_err(const char *campaigns, const char *policy, const char *ocampaigns,
                             const char *opolicy)
{
    struct campaign_set *s = NULL;
    ck_assert_int_eq(build_phone(campaigns, policy, ocampaigns, opolicy, PHONE, &s), ODSYNC_CONFIG);
    return errbuf;
}

/* Render t with the set's practice values and first name "Ann" (caller frees). */
static char *render(const struct campaign_set *s, const struct template *t)
{
    struct template_vars v;
    char err[512], *out = NULL;
    int rc;

    memset(&v, 0, sizeof(v));
    v.first_name = "Ann";
    v.practice_name = s->policy.practice_name;
    v.practice_phone = s->policy.practice_phone;
    v.booking_link = s->policy.booking_link;
    v.review_link = s->policy.review_link;
    v.opt_out = s->policy.opt_out_text;
    rc = template_render(t, &v, &out, err, sizeof(err));
    ck_assert_msg(rc == ODSYNC_OK, "render: %s", err);
    return out;
}

static void setup(void)
{
    util_init_cjson_hooks();
    errbuf[0] = '\0';
}

static void teardown(void)
{
    util_fail_alloc_after(0);
    log_shutdown();
}

/* ---- defaults -------------------------------------------------------------------------- */

START_TEST(test_defaults_absent)
{
    struct campaign_set *s = build_ok(NULL, NULL, NULL, NULL);
    const struct campaign *r = &s->campaigns[CAMPAIGN_RECALL];
    const struct campaign *a = &s->campaigns[CAMPAIGN_REACTIVATION];
    const struct campaign *v = &s->campaigns[CAMPAIGN_REVIEW];
    char *out;
    int k;

    for (k = 0; k < CAMPAIGN_COUNT; k++) {
        const struct campaign *c = &s->campaigns[k];
        ck_assert_int_eq(c->enabled, 0); /* absent: no messages */
        ck_assert_uint_eq(c->n_channels, 2);
        ck_assert_int_eq(c->channels[0], CAMPAIGN_SMS);
        ck_assert_int_eq(c->channels[1], CAMPAIGN_EMAIL);
        ck_assert_int_eq(c->expire_hours, 72);
        ck_assert_ptr_nonnull(c->sms);
        ck_assert_ptr_nonnull(c->email_subject);
        ck_assert_ptr_nonnull(c->email_body);
        ck_assert_ptr_null(c->email_template_id);
        ck_assert(template_uses(c->sms, "practice_name"));
    }
    ck_assert_int_eq(r->msg_class, CAMPAIGN_CLASS_TREATMENT);
    ck_assert_int_eq(a->msg_class, CAMPAIGN_CLASS_INFORMATIONAL);
    ck_assert_int_eq(v->msg_class, CAMPAIGN_CLASS_INFORMATIONAL);
    /* recall numbers are filled even though the campaign sends nothing */
    ck_assert_int_eq(r->due_soon_days, 14);
    ck_assert_uint_eq(r->n_overdue, 2);
    ck_assert_int_eq(r->overdue_days[0], 30);
    ck_assert_int_eq(r->overdue_days[1], 90);
    ck_assert_uint_eq(r->remind_stages, (1u << RECALL_STAGE_DUE_SOON) | (1u << RECALL_STAGE_DUE) |
                                            (1u << RECALL_STAGE_OVERDUE_1) |
                                            (1u << (RECALL_STAGE_OVERDUE_1 + 1)));
    ck_assert_int_eq(r->tasks, 1);
    ck_assert_int_eq(a->lapse_months, 18);
    ck_assert_int_eq(a->max_messages, 3);
    ck_assert_int_eq(a->spacing_days, 30);
    ck_assert_int_eq(v->delay_minutes, 120);
    ck_assert_int_eq(v->min_days_between, 180);
    ck_assert(template_uses(v->sms, "review_link"));
    ck_assert(template_uses(v->email_body, "review_link"));

    ck_assert_int_eq(s->policy.quiet_start_min, 8 * 60);
    ck_assert_int_eq(s->policy.quiet_end_min, 21 * 60);
    ck_assert_int_eq(s->policy.max_per_day, 1);
    ck_assert_int_eq(s->policy.max_per_week, 3);
    ck_assert_int_eq(s->policy.sms_unknown_consent, 0);
    ck_assert_int_eq(s->policy.family_aggregation, 0);
    ck_assert_int_eq(s->policy.release_spread_minutes, 60);
    ck_assert_int_eq(s->policy.commlog, 0);
    ck_assert_ptr_null(s->policy.booking_link);
    ck_assert_ptr_null(s->policy.review_link);
    ck_assert_ptr_null(s->policy.opt_out_text);
    ck_assert_str_eq(s->policy.practice_name, NAME);
    ck_assert_str_eq(s->policy.practice_phone, PHONE);
    ck_assert_ptr_nonnull(s->tz);
    ck_assert_str_eq(tz_name(s->tz), ZONE);

    out = render(s, r->sms);
    ck_assert_str_eq(out, "Hi Ann, it's time for your next visit at Main Street Dental. Call "
                          "(555) 010-1000 to book. Reply STOP to opt out.");
    util_free(out);
    out = render(s, r->email_subject);
    ck_assert_str_eq(out, "Time for your next visit at Main Street Dental");
    util_free(out);
    campaign_set_free(s);
}
END_TEST

START_TEST(test_defaults_empty_objects)
{
    struct campaign_set *s = build_ok("{'recall': {}, 'reactivation': {}}", "{}", "{}", "{}");
    ck_assert_int_eq(s->campaigns[CAMPAIGN_RECALL].enabled, 1);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_REACTIVATION].enabled, 1);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_REVIEW].enabled, 0);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_RECALL].due_soon_days, 14);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_REACTIVATION].lapse_months, 18);
    ck_assert_int_eq(s->policy.max_per_week, 3);
    campaign_set_free(s);

    /* "enabled": false keeps the object's values but sends nothing */
    s = build_ok("{'recall': {'enabled': false, 'due_soon_days': 7}}", NULL, NULL, NULL);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_RECALL].enabled, 0);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_RECALL].due_soon_days, 7);
    campaign_set_free(s);

    /* an office that only has the campaign enables it for that office */
    s = build_ok(NULL, NULL, "{'reactivation': {}}", NULL);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_REACTIVATION].enabled, 1);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_RECALL].enabled, 0);
    campaign_set_free(s);
}
END_TEST

START_TEST(test_defaults_without_phone)
{
    struct campaign_set *s = NULL;
    char *out;

    ck_assert_int_eq(build_phone("{'recall': {}}", NULL, NULL, NULL, NULL, &s), ODSYNC_OK);
    ck_assert_ptr_null(s->policy.practice_phone);
    ck_assert(!template_uses(s->campaigns[CAMPAIGN_RECALL].sms, "practice_phone"));
    ck_assert(!template_uses(s->campaigns[CAMPAIGN_RECALL].email_body, "practice_phone"));
    out = render(s, s->campaigns[CAMPAIGN_RECALL].sms);
    ck_assert_str_eq(out, "Hi Ann, it's time for your next visit at Main Street Dental. Please "
                          "call us to book. Reply STOP to opt out.");
    util_free(out);
    campaign_set_free(s);

    /* a configured template naming the phone needs one */
    ck_assert_int_eq(build_phone("{'recall': {'sms': '{{practice_name}}: {{practice_phone}}'}}",
                                 NULL, NULL, NULL, NULL, &s),
                     ODSYNC_CONFIG);
    ck_assert_str_eq(errbuf, ORIGIN ": campaigns.recall.sms: uses {{practice_phone}} but neither "
                                    "policy.practice_phone nor the office's \"phone\" is set");
    /* policy.practice_phone supplies it */
    ck_assert_int_eq(build_phone("{'recall': {'sms': '{{practice_name}}: {{practice_phone}}'}}",
                                 "{'practice_phone': '555-0199'}", NULL, NULL, NULL, &s),
                     ODSYNC_OK);
    ck_assert_str_eq(s->policy.practice_phone, "555-0199");
    campaign_set_free(s);
}
END_TEST

/* ---- overrides ------------------------------------------------------------------------- */

START_TEST(test_office_override_one_member)
{
    struct campaign_set *s = build_ok(
        "{'recall': {'due_soon_days': 10, 'overdue_days': [20, 60], 'channels': ['email']},"
        " 'review': {'delay_minutes': 30}}",
        "{'max_per_day': 2, 'max_per_week': 5, 'review_link': 'https://r.example/top',"
        " 'quiet_hours': ['09:00', '20:00']}",
        "{'recall': {'due_soon_days': 21, 'remind_stages': ['overdue_60']},"
        " 'review': {'enabled': false}}",
        "{'max_per_week': 4, 'practice_name': 'Main St. Dental', 'opt_out_text': 'Text STOP to "
        "end.'}");
    const struct campaign *r = &s->campaigns[CAMPAIGN_RECALL];
    char *out;

    ck_assert_int_eq(r->enabled, 1);
    ck_assert_int_eq(r->due_soon_days, 21);   /* the office's */
    ck_assert_uint_eq(r->n_overdue, 2);       /* the top-level's */
    ck_assert_int_eq(r->overdue_days[1], 60); /* ... */
    ck_assert_uint_eq(r->remind_stages, 1u << (RECALL_STAGE_OVERDUE_1 + 1));
    ck_assert_uint_eq(r->n_channels, 1);
    ck_assert_int_eq(r->channels[0], CAMPAIGN_EMAIL);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_REVIEW].enabled, 0);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_REVIEW].delay_minutes, 30);
    ck_assert_int_eq(s->policy.max_per_day, 2);
    ck_assert_int_eq(s->policy.max_per_week, 4);
    ck_assert_int_eq(s->policy.quiet_start_min, 9 * 60);
    ck_assert_int_eq(s->policy.quiet_end_min, 20 * 60);
    ck_assert_str_eq(s->policy.review_link, "https://r.example/top");
    ck_assert_str_eq(s->policy.practice_name, "Main St. Dental");
    ck_assert_str_eq(s->policy.practice_phone, PHONE);
    out = render(s, s->campaigns[CAMPAIGN_REACTIVATION].sms);
    ck_assert_str_eq(out, "Hi Ann, it's been a while since your last visit at Main St. Dental. "
                          "Call (555) 010-1000 to book. Text STOP to end.");
    util_free(out);
    campaign_set_free(s);

    /* an office template replaces the top-level one, for that office only */
    s = build_ok("{'recall': {'sms': 'Top {{practice_name}}'}}", NULL,
                 "{'recall': {'sms': 'Office {{practice_name}}'}}", NULL);
    out = render(s, s->campaigns[CAMPAIGN_RECALL].sms);
    ck_assert_str_eq(out, "Office Main Street Dental Reply STOP to opt out.");
    util_free(out);
    campaign_set_free(s);
}
END_TEST

/* ---- errors: templates ---------------------------------------------------------------- */

START_TEST(test_error_unknown_variable)
{
    const char *e = build_err("{'recall': {'sms': 'Hi {{first_name}}, your balance is {{balance}} "
                              "at {{practice_name}}'}}",
                              NULL, NULL, NULL);
    ck_assert_str_eq(e, ORIGIN ": campaigns.recall.sms: unknown variable {{balance}} (allowed: "
                               "first_name, practice_name, practice_phone, appointment_date, "
                               "appointment_time, booking_link, review_link, opt_out)");
    /* refused even in a disabled campaign */
    e = build_err("{'reactivation': {'enabled': false, 'email_subject': '{{procedure}} due'}}",
                  NULL, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(e, ORIGIN ": campaigns.reactivation.email_subject: unknown "
                                           "variable {{procedure}}"));
}
END_TEST

START_TEST(test_error_office_template)
{
    const char *e =
        build_err("{'review': {}}", "{'review_link': 'https://r.example/x'}",
                  "{'review': {'sms': '{{practice_name}}: how was your {{procedure}}?'}}", NULL);
    ck_assert_ptr_nonnull(
        strstr(e, ORIGIN ": offices[0].campaigns.review.sms: unknown variable {{procedure}}"));
    e = build_err(NULL, NULL, "{'recall': {'email_body': '<p>{{practice_name}} {{diagnosis'}}",
                  NULL);
    ck_assert_str_eq(e, ORIGIN ": offices[0].campaigns.recall.email_body: unterminated {{ at "
                               "offset 21");
}
END_TEST

START_TEST(test_error_sms_too_long)
{
    char campaigns[1024], fixed[200];
    const char *e;

    /* fixed text alone: 140 + the opt-out line is past 160 */
    memset(fixed, 'x', 140);
    fixed[140] = '\0';
    ck_assert(util_fmt(campaigns, sizeof(campaigns), "{'recall': {'sms': '%s {{practice_name}}'}}",
                       fixed) == ODSYNC_OK);
    e = build_err(campaigns, NULL, NULL, NULL);
    ck_assert_str_eq(e, ORIGIN ": campaigns.recall.sms: sms fixed text with the opt-out line is "
                               "164 characters, at most 160");

    /* fits alone, but not with this office's long practice name */
    e = build_err("{'recall': {}}",
                  "{'practice_name': 'The Main Street Family, Cosmetic and Implant Dentistry "
                  "Practice of Springfield'}",
                  NULL, NULL);
    ck_assert_str_eq(e, ORIGIN ": campaigns.recall.sms: sms is 175 characters, at most 160 (with "
                               "this office's practice_name, practice_phone, links and "
                               "opt_out_text, and a 6-letter first name)");
    /* the same name is fine while the campaign is disabled, or sends email only */
    campaign_set_free(build_ok(NULL,
                               "{'practice_name': 'The Main Street Family, Cosmetic and Implant "
                               "Dentistry Practice of Springfield'}",
                               NULL, NULL));
    campaign_set_free(build_ok("{'recall': {}}",
                               "{'practice_name': 'The Main Street Family, Cosmetic and Implant "
                               "Dentistry Practice of Springfield'}",
                               "{'recall': {'channels': ['email']}}", NULL));
}
END_TEST

START_TEST(test_error_links_not_configured)
{
    const char *e = build_err("{'review': {}}", NULL, NULL, NULL);
    ck_assert_str_eq(
        e, ORIGIN ": campaigns.review.sms: uses {{review_link}} but policy.review_link is not set");
    e = build_err("{'review': {'channels': ['email']}}", NULL, NULL, NULL);
    ck_assert_str_eq(e, ORIGIN ": campaigns.review.email_body: uses {{review_link}} but "
                               "policy.review_link is not set");
    e = build_err(NULL, NULL, "{'recall': {'sms': '{{practice_name}}: book at {{booking_link}}'}}",
                  NULL);
    ck_assert_str_eq(e, ORIGIN ": offices[0].campaigns.recall.sms: uses {{booking_link}} but "
                               "policy.booking_link is not set");
    /* with the link, or disabled, it loads */
    campaign_set_free(build_ok("{'review': {}}", NULL, NULL, "{'review_link': 'https://r.ex/1'}"));
    campaign_set_free(build_ok("{'review': {'enabled': false}}", NULL, NULL, NULL));
}
END_TEST

START_TEST(test_error_email_without_practice_name)
{
    const char *e = build_err("{'recall': {'email_subject': 'Your checkup',"
                              " 'email_body': '<p>Hi {{first_name}}, time for a checkup.</p>'}}",
                              NULL, NULL, NULL);
    ck_assert_str_eq(e, ORIGIN ": campaigns.recall.email_body: an email must name the practice: "
                               "put {{practice_name}} in email_subject or email_body");
    /* either part naming it is enough */
    campaign_set_free(build_ok("{'recall': {'email_subject': '{{practice_name}}',"
                               " 'email_body': '<p>Hi {{first_name}}</p>'}}",
                               NULL, NULL, NULL));
}
END_TEST

START_TEST(test_error_appointment_outside_review)
{
    const char *e = build_err(
        "{'recall': {'sms': '{{practice_name}}: see you {{appointment_date}}'}}", NULL, NULL, NULL);
    ck_assert_str_eq(e, ORIGIN ": campaigns.recall.sms: the recall campaign has no appointment: "
                               "{{appointment_date}} and {{appointment_time}} are only for review "
                               "messages");
    campaign_set_free(
        build_ok("{'review': {'sms': '{{practice_name}}: thanks for {{appointment_date}}"
                 " {{review_link}}'}}",
                 "{'review_link': 'https://r.ex/1'}", NULL, NULL));
}
END_TEST

/* ---- errors: policy and values ------------------------------------------------------- */

START_TEST(test_error_quiet_hours)
{
    ck_assert_str_eq(build_err(NULL, "{'quiet_hours': ['21:00', '08:00']}", NULL, NULL),
                     ORIGIN ": policy.quiet_hours: the sending window must start before it ends "
                            "(start 21:00, end 08:00)");
    ck_assert_str_eq(build_err(NULL, "{'quiet_hours': ['08:00', '9pm']}", NULL, NULL),
                     ORIGIN ": policy.quiet_hours[1]: expected \"HH:MM\", got \"9pm\"");
    ck_assert_str_eq(build_err(NULL, NULL, NULL, "{'quiet_hours': ['25:00', '21:00']}"),
                     ORIGIN ": offices[0].policy.quiet_hours[0]: expected \"HH:MM\", got "
                            "\"25:00\"");
    ck_assert_str_eq(build_err(NULL, "{'quiet_hours': ['08:00']}", NULL, NULL),
                     ORIGIN ": policy.quiet_hours: expected an array of two \"HH:MM\" strings "
                            "[start, end], got another length");
    ck_assert_str_eq(build_err(NULL, "{'quiet_hours': '08:00-21:00'}", NULL, NULL),
                     ORIGIN ": policy.quiet_hours: expected an array of two \"HH:MM\" strings "
                            "[start, end], got string");
    ck_assert_str_eq(build_err(NULL, "{'quiet_hours': ['08:00', 9]}", NULL, NULL),
                     ORIGIN ": policy.quiet_hours[1]: expected \"HH:MM\", got number");
}
END_TEST

START_TEST(test_error_overdue_days)
{
    ck_assert_str_eq(build_err("{'recall': {'overdue_days': [90, 30]}}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.recall.overdue_days[1]: overdue_days must be strictly "
                            "ascending: 30 is not greater than 90");
    ck_assert_str_eq(build_err("{'recall': {'overdue_days': [30, 30]}}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.recall.overdue_days[1]: overdue_days must be strictly "
                            "ascending: 30 is not greater than 30");
    ck_assert_str_eq(build_err(NULL, NULL, "{'recall': {'overdue_days': [0]}}", NULL),
                     ORIGIN ": offices[0].campaigns.recall.overdue_days[0]: expected a whole "
                            "number 1-3650, got 0");
    ck_assert_str_eq(build_err("{'recall': {'overdue_days': [1, 2, 3, 4, 5]}}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.recall.overdue_days: expected at most 4 thresholds, "
                            "got 5");
}
END_TEST

START_TEST(test_error_remind_stages)
{
    struct campaign_set *s;

    ck_assert_str_eq(
        build_err("{'recall': {'remind_stages': ['due', 'overdue_60']}}", NULL, NULL, NULL),
        ORIGIN ": campaigns.recall.remind_stages[1]: unknown stage \"overdue_60\" "
               "(stages: \"due_soon\", \"due\", \"overdue_30\", \"overdue_90\")");
    ck_assert_str_eq(build_err("{'recall': {'remind_stages': ['due', 'due']}}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.recall.remind_stages[1]: stage \"due\" is listed twice");
    /* stage names follow the overdue_days in force (here the office's) */
    s = build_ok("{'recall': {'remind_stages': ['due', 'overdue_60']}}", NULL,
                 "{'recall': {'overdue_days': [60]}}", NULL);
    ck_assert_uint_eq(s->campaigns[CAMPAIGN_RECALL].remind_stages,
                      (1u << RECALL_STAGE_DUE) | (1u << RECALL_STAGE_OVERDUE_1));
    campaign_set_free(s);
    /* "note" is free text */
    s = build_ok("{'recall': {'note': 'a // b'}}", "{'note': 'checked by counsel'}", NULL, NULL);
    ck_assert_int_eq(s->campaigns[CAMPAIGN_RECALL].enabled, 1);
    campaign_set_free(s);
    /* an empty list: tasks only, no reminders */
    s = build_ok("{'recall': {'remind_stages': []}}", NULL, NULL, NULL);
    ck_assert_uint_eq(s->campaigns[CAMPAIGN_RECALL].remind_stages, 0);
    campaign_set_free(s);
}
END_TEST

START_TEST(test_error_unknown_campaign_and_keys)
{
    ck_assert_str_eq(build_err("{'recal': {}}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.recal: unknown campaign (expected \"recall\", "
                            "\"reactivation\" or \"review\")");
    ck_assert_str_eq(build_err(NULL, NULL, "{'birthday': {}}", NULL),
                     ORIGIN ": offices[0].campaigns.birthday: unknown campaign (expected "
                            "\"recall\", \"reactivation\" or \"review\")");
    ck_assert_str_eq(build_err("{'recall': {'due_son_days': 3}}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.recall.due_son_days: unknown key for the recall campaign");
    ck_assert_str_eq(build_err("{'review': {'due_soon_days': 3}}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.review.due_soon_days: unknown key for the review "
                            "campaign");
    ck_assert_str_eq(build_err(NULL, NULL, NULL, "{'max_per_month': 3}"),
                     ORIGIN ": offices[0].policy.max_per_month: unknown key");
    ck_assert_str_eq(build_err(NULL, "{'quiet hours': []}", NULL, NULL),
                     ORIGIN ": policy[\"quiet hours\"]: unknown key");
    ck_assert_str_eq(build_err("{'recall': []}", NULL, NULL, NULL),
                     ORIGIN ": campaigns.recall: expected an object, got array");
    ck_assert_str_eq(build_err(NULL, NULL, "[]", NULL),
                     ORIGIN ": offices[0].campaigns: expected an object, got array");
    ck_assert_str_eq(build_err(NULL, NULL, NULL, "'strict'"),
                     ORIGIN ": offices[0].policy: expected an object, got string");
}
END_TEST

START_TEST(test_error_values)
{
    static const struct {
        const char *campaigns, *policy, *ocampaigns, *opolicy, *err;
    } cases[] = {
        {"{'recall': {'due_soon_days': -3}}", NULL, NULL, NULL,
         "campaigns.recall.due_soon_days: expected a whole number 0-365, got -3"},
        {NULL, NULL, "{'recall': {'due_soon_days': 400}}", NULL,
         "offices[0].campaigns.recall.due_soon_days: expected a whole number 0-365, got 400"},
        {"{'recall': {'expire_hours': 1.5}}", NULL, NULL, NULL,
         "campaigns.recall.expire_hours: expected a whole number 1-8760, got 1.5"},
        {"{'reactivation': {'lapse_months': '18'}}", NULL, NULL, NULL,
         "campaigns.reactivation.lapse_months: expected a whole number 1-120, got string"},
        {"{'reactivation': {'max_messages': 11}}", NULL, NULL, NULL,
         "campaigns.reactivation.max_messages: expected a whole number 1-10, got 11"},
        {"{'review': {'min_days_between': 4000}}", NULL, NULL, NULL,
         "campaigns.review.min_days_between: expected a whole number 0-3650, got 4000"},
        {NULL, "{'max_per_day': 0}", NULL, NULL,
         "policy.max_per_day: expected a whole number 1-10, got 0"},
        {NULL, "{'max_per_week': 51}", NULL, NULL,
         "policy.max_per_week: expected a whole number 1-50, got 51"},
        {NULL, "{'max_per_day': 2}", NULL, "{'max_per_week': 1}",
         "offices[0].policy.max_per_week: must not be smaller than max_per_day (2), got 1"},
        {NULL, "{'max_per_day': 4}", NULL, NULL,
         "policy.max_per_week: must not be smaller than max_per_day (4), got 3"},
        {"{'recall': {'channels': []}}", NULL, NULL, NULL,
         "campaigns.recall.channels: expected a non-empty array of \"sms\" and \"email\", got an "
         "empty array"},
        {"{'recall': {'channels': ['sms', 'fax']}}", NULL, NULL, NULL,
         "campaigns.recall.channels[1]: expected \"sms\" or \"email\", got \"fax\""},
        {"{'recall': {'channels': ['sms', 'sms']}}", NULL, NULL, NULL,
         "campaigns.recall.channels[1]: \"sms\" is listed twice"},
        {"{'review': {'class': 'promo'}}", NULL, NULL, NULL,
         "campaigns.review.class: expected \"treatment\", \"informational\" or \"marketing\", got "
         "\"promo\""},
        {"{'recall': {'enabled': 'yes'}}", NULL, NULL, NULL,
         "campaigns.recall.enabled: expected true or false, got string"},
        {"{'recall': {'tasks': 1}}", NULL, NULL, NULL,
         "campaigns.recall.tasks: expected true or false, got number"},
        {"{'recall': {'email_template_id': ''}}", NULL, NULL, NULL,
         "campaigns.recall.email_template_id: must not be empty"},
        {"{'recall': {'email_template_id': 7}}", NULL, NULL, NULL,
         "campaigns.recall.email_template_id: expected a string, got number"},
        {NULL, "{'booking_link': 'ftp://x.example/book'}", NULL, NULL,
         "policy.booking_link: expected an https:// or http:// URL without spaces, got "
         "\"ftp://x.example/book\""},
        {NULL, NULL, NULL, "{'review_link': 'https://g.page/a b'}",
         "offices[0].policy.review_link: expected an https:// or http:// URL without spaces, got "
         "\"https://g.page/a b\""},
        {NULL, "{'review_link': 'https://'}", NULL, NULL,
         "policy.review_link: expected an https:// or http:// URL without spaces, got "
         "\"https://\""},
        {NULL, "{'opt_out_text': 'Reply NO MORE'}", NULL, NULL,
         "policy.opt_out_text: must tell the patient how to opt out (e.g. \"Reply STOP to opt "
         "out.\")"},
        {NULL, "{'practice_name': ''}", NULL, NULL, "policy.practice_name: must not be empty"},
        {NULL, "{'commlog': 'on'}", NULL, NULL,
         "policy.commlog: expected true or false, got string"},
        {NULL, "{'release_spread_minutes': 1441}", NULL, NULL,
         "policy.release_spread_minutes: expected a whole number 0-1440, got 1441"},
        {"{'recall': {'sms': 42}}", NULL, NULL, NULL,
         "campaigns.recall.sms: expected a string, got number"},
        {NULL, NULL, "{'review': {'note': 1}}", NULL,
         "offices[0].campaigns.review.note: expected a string, got number"},
        {NULL, "{'note': ['a']}", NULL, NULL, "policy.note: expected a string, got array"},
    };
    char want[1024];
    size_t i;

    for (i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        ck_assert(util_fmt(want, sizeof(want), ORIGIN ": %s", cases[i].err) == ODSYNC_OK);
        ck_assert_str_eq(
            build_err(cases[i].campaigns, cases[i].policy, cases[i].ocampaigns, cases[i].opolicy),
            want);
    }
}
END_TEST

START_TEST(test_bad_timezone)
{
    struct campaign_set *s = NULL;
    int rc = campaign_set_build(NULL, NULL, NULL, NULL, "offices[2]", ORIGIN, NAME, PHONE,
                                "Mars/Olympus_Mons", &s, errbuf, sizeof(errbuf));
    ck_assert_int_eq(rc, ODSYNC_CONFIG);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(errbuf, ORIGIN ": offices[2].timezone: "));
    ck_assert_ptr_nonnull(strstr(errbuf, "Mars/Olympus_Mons"));
}
END_TEST

/* ---- names ------------------------------------------------------------------------------ */

START_TEST(test_stage_and_enum_names)
{
    struct campaign_set *s =
        build_ok("{'recall': {'overdue_days': [45, 120, 365]}}", NULL, NULL, NULL);
    const struct campaign *c = &s->campaigns[CAMPAIGN_RECALL];
    char buf[24], tiny[4];

    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_NONE, buf, sizeof(buf)), "none");
    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_DUE_SOON, buf, sizeof(buf)), "due_soon");
    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_DUE, buf, sizeof(buf)), "due");
    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_OVERDUE_1, buf, sizeof(buf)),
                     "overdue_45");
    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_OVERDUE_1 + 1, buf, sizeof(buf)),
                     "overdue_120");
    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_OVERDUE_1 + 2, buf, sizeof(buf)),
                     "overdue_365");
    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_OVERDUE_1 + 3, buf, sizeof(buf)),
                     "unknown");
    ck_assert_str_eq(campaign_stage_name(c, -1, buf, sizeof(buf)), "unknown");
    ck_assert_str_eq(campaign_stage_name(NULL, RECALL_STAGE_DUE, buf, sizeof(buf)), "due");
    ck_assert_str_eq(campaign_stage_name(NULL, RECALL_STAGE_OVERDUE_1, buf, sizeof(buf)),
                     "unknown");
    ck_assert_str_eq(campaign_stage_name(c, RECALL_STAGE_OVERDUE_1, tiny, sizeof(tiny)), "");
    ck_assert_uint_eq(c->remind_stages, 0x3eu); /* stages 1..5 */
    campaign_set_free(s);

    ck_assert_str_eq(campaign_kind_name(CAMPAIGN_RECALL), "recall");
    ck_assert_str_eq(campaign_kind_name(CAMPAIGN_REACTIVATION), "reactivation");
    ck_assert_str_eq(campaign_kind_name(CAMPAIGN_REVIEW), "review");
    ck_assert_str_eq(campaign_kind_name(CAMPAIGN_COUNT), "unknown");
    ck_assert_str_eq(campaign_class_name(CAMPAIGN_CLASS_TREATMENT), "treatment");
    ck_assert_str_eq(campaign_class_name(CAMPAIGN_CLASS_INFORMATIONAL), "informational");
    ck_assert_str_eq(campaign_class_name(CAMPAIGN_CLASS_MARKETING), "marketing");
    ck_assert_str_eq(campaign_class_name(3), "unknown");
    ck_assert_str_eq(campaign_channel_name(CAMPAIGN_SMS), "sms");
    ck_assert_str_eq(campaign_channel_name(CAMPAIGN_EMAIL), "email");
    ck_assert_str_eq(campaign_channel_name(-1), "unknown");
    campaign_set_free(NULL);
}
END_TEST

/* ---- the config loader ---------------------------------------------------------------- */

#define OFFICE(id, extra)                                                                          \
    "{'id': '" id "', 'name': 'Office " id "', 'phone': '555-0100', 'timezone': 'UTC',"            \
    " 'opendental': {'base_url': 'https://od.example/api/v1', 'developer_key': '${OD_DEV_KEY}',"   \
    " 'customer_key': '${OD_CUST_KEY}'}" extra "}"

START_TEST(test_config_engage)
{
    struct config *cfg = NULL;
    const char *text;
    int rc;

    ck_assert_int_eq(setenv("OD_DEV_KEY", "dev-key-0123456789", 1), 0);
    ck_assert_int_eq(setenv("OD_CUST_KEY", "cust-key-abcdefgh", 1), 0);
    text = J("{'offices': [" OFFICE("a", "") ", " OFFICE(
        "b", ", 'campaigns': {'recall': {'due_soon_days': 30}}, 'policy': "
             "{'max_per_week': 2}") "],"
                                    " 'campaigns': {'recall': {'due_soon_days': "
                                    "7}}, 'policy': {'commlog': true}}");
    rc = config_parse(text, strlen(text), ORIGIN, &cfg, errbuf, sizeof(errbuf));
    ck_assert_msg(rc == ODSYNC_OK, "%s", errbuf);
    ck_assert_ptr_nonnull(cfg->offices[0].engage);
    ck_assert_ptr_nonnull(cfg->offices[1].engage);
    ck_assert_int_eq(cfg->offices[0].engage->campaigns[CAMPAIGN_RECALL].due_soon_days, 7);
    ck_assert_int_eq(cfg->offices[1].engage->campaigns[CAMPAIGN_RECALL].due_soon_days, 30);
    ck_assert_int_eq(cfg->offices[0].engage->policy.max_per_week, 3);
    ck_assert_int_eq(cfg->offices[1].engage->policy.max_per_week, 2);
    ck_assert_int_eq(cfg->offices[1].engage->policy.commlog, 1);
    ck_assert_str_eq(cfg->offices[1].engage->policy.practice_name, "Office b");
    ck_assert_str_eq(tz_name(cfg->offices[1].engage->tz), "UTC");
    ck_assert_int_eq(cfg->offices[0].engage->campaigns[CAMPAIGN_REVIEW].enabled, 0);
    config_free(cfg);

    /* no campaigns at all: still a set, everything disabled */
    text = J("{'offices': [" OFFICE("a", "") "]}");
    ck_assert_int_eq(config_parse(text, strlen(text), ORIGIN, &cfg, errbuf, sizeof(errbuf)),
                     ODSYNC_OK);
    ck_assert_ptr_nonnull(cfg->offices[0].engage);
    ck_assert_int_eq(cfg->offices[0].engage->campaigns[CAMPAIGN_RECALL].enabled, 0);
    config_free(cfg);

    /* an error in the second office's override names it */
    text = J("{'offices': [" OFFICE("a", "") ", " OFFICE(
        "b", ", 'campaigns': {'recall': {'sms': '{{practice_name}} owes {{balance}}'}}") "]}");
    ck_assert_int_eq(config_parse(text, strlen(text), ORIGIN, &cfg, errbuf, sizeof(errbuf)),
                     ODSYNC_CONFIG);
    ck_assert_ptr_null(cfg);
    ck_assert_ptr_nonnull(
        strstr(errbuf, ORIGIN ": offices[1].campaigns.recall.sms: unknown variable {{balance}}"));

    /* unknown office member still refused */
    text = J("{'offices': [" OFFICE("a", ", 'campaign': {}") "]}");
    ck_assert_int_eq(config_parse(text, strlen(text), ORIGIN, &cfg, errbuf, sizeof(errbuf)),
                     ODSYNC_CONFIG);
    ck_assert_ptr_nonnull(strstr(errbuf, ORIGIN ": offices[0].campaign: unknown key"));
}
END_TEST

/* ---- allocation failures -------------------------------------------------------------- */

START_TEST(test_fail_nth_allocation)
{
    cJSON *c = P("{'recall': {'overdue_days': [30], 'email_template_id': 'd-123'}, 'review': {},"
                 " 'reactivation': {'sms': 'Hi {{first_name}} from {{practice_name}}'}}");
    cJSON *p = P("{'review_link': 'https://r.example/x', 'booking_link': 'https://b.example/y',"
                 " 'opt_out_text': 'Reply STOP to end.'}");
    cJSON *oc = P("{'recall': {'due_soon_days': 3}}");
    cJSON *op = P("{'practice_phone': '555-0101'}");
    long n;
    int rc = ODSYNC_NOMEM;

    for (n = 1; n < 100000; n++) {
        struct campaign_set *s = NULL;
        util_fail_alloc_after(n);
        rc = campaign_set_build(c, p, oc, op, "offices[0]", ORIGIN, NAME, PHONE, ZONE, &s, errbuf,
                                sizeof(errbuf));
        util_fail_alloc_after(0);
        if (rc == ODSYNC_OK) {
            ck_assert_str_eq(s->campaigns[CAMPAIGN_RECALL].email_template_id, "d-123");
            ck_assert_str_eq(s->policy.practice_phone, "555-0101");
            campaign_set_free(s);
            break;
        }
        ck_assert_msg(rc == ODSYNC_NOMEM, "n=%ld: rc %d: %s", n, rc, errbuf);
        ck_assert_ptr_null(s);
        ck_assert_str_eq(errbuf, ORIGIN ": out of memory");
    }
    ck_assert_int_eq(rc, ODSYNC_OK);
    ck_assert_int_gt(n, 10);
    cJSON_Delete(c);
    cJSON_Delete(p);
    cJSON_Delete(oc);
    cJSON_Delete(op);
}
END_TEST

static Suite *campaign_suite(void)
{
    Suite *s = suite_create("campaign");
    TCase *tc = tcase_create("campaign");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults_absent);
    tcase_add_test(tc, test_defaults_empty_objects);
    tcase_add_test(tc, test_defaults_without_phone);
    tcase_add_test(tc, test_office_override_one_member);
    tcase_add_test(tc, test_error_unknown_variable);
    tcase_add_test(tc, test_error_office_template);
    tcase_add_test(tc, test_error_sms_too_long);
    tcase_add_test(tc, test_error_links_not_configured);
    tcase_add_test(tc, test_error_email_without_practice_name);
    tcase_add_test(tc, test_error_appointment_outside_review);
    tcase_add_test(tc, test_error_quiet_hours);
    tcase_add_test(tc, test_error_overdue_days);
    tcase_add_test(tc, test_error_remind_stages);
    tcase_add_test(tc, test_error_unknown_campaign_and_keys);
    tcase_add_test(tc, test_error_values);
    tcase_add_test(tc, test_bad_timezone);
    tcase_add_test(tc, test_stage_and_enum_names);
    tcase_add_test(tc, test_config_engage);
    tcase_add_test(tc, test_fail_nth_allocation);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(campaign_suite)
