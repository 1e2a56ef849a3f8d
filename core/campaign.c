/*
 * campaign.c: an office's engagement settings — the recall, reactivation and review
 * campaigns and the messaging policy — resolved from the config's top-level "campaigns" /
 * "policy" and the office's own overrides, member by member, and checked completely.
 *
 * Each setting is looked up in two layers: the office's object first, then the top-level
 * one. The JSON path of the value actually used goes into any error about it, so a bad
 * override reads "offices[0].campaigns.recall.due_soon_days: ..." and a bad shared value
 * "campaigns.recall.due_soon_days: ...". Templates are compiled with template_compile; the
 * checks that need the office's values (links, phone, the rendered SMS length) run only for
 * enabled campaigns, on the channels they use.
 */
#include "campaign.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "jsonpath.h"
#include "template.h"
#include "tz.h"
#include "util.h"

#define CPATH_MAX JSONPATH_MAX
#define CMSG_MAX  512
#define SHOW_BUF  JSONPATH_SHOW_BUF

#define DEFAULT_EXPIRE_HOURS    72
#define DEFAULT_DUE_SOON_DAYS   14
#define DEFAULT_LAPSE_MONTHS    18
#define DEFAULT_MAX_MESSAGES    3
#define DEFAULT_SPACING_DAYS    30
#define DEFAULT_DELAY_MINUTES   120
#define DEFAULT_MIN_DAYS        180
#define DEFAULT_QUIET_START_MIN (8 * 60)
#define DEFAULT_QUIET_END_MIN   (21 * 60)
#define DEFAULT_MAX_PER_DAY     1
#define DEFAULT_MAX_PER_WEEK    3
#define DEFAULT_SPREAD_MINUTES  60

/* Values used to render each enabled campaign's SMS once at load, so a practice name, phone,
 * link or opt-out text that pushes it past one segment is refused before any patient. */
#define SAMPLE_FIRST_NAME "Alexis"
#define SAMPLE_DATE       "Mon, Jan 12"
#define SAMPLE_TIME       "10:30 AM"

/* Error state for one campaign_set_build call. */
struct bctx {
    const char *origin; /* borrowed: first part of every message */
    char *err;          /* borrowed: caller's buffer, may be NULL */
    size_t errlen;
};

/* One object's two sources: the office's override and the top-level object. */
struct layers {
    const cJSON *top;            /* borrowed, may be NULL */
    const cJSON *office;         /* borrowed, may be NULL */
    char top_path[CPATH_MAX];    /* "campaigns.recall" */
    char office_path[CPATH_MAX]; /* "offices[0].campaigns.recall" */
};

/* The built-in templates of one campaign. A "_nophone" variant is used when the office has
 * no phone; NULL means the main one needs no phone. */
struct default_templates {
    const char *sms;
    const char *sms_nophone;
    const char *subject;
    const char *body;
    const char *body_nophone;
};

static const char *const kind_names[CAMPAIGN_COUNT] = {"recall", "reactivation", "review"};
static const char *const class_names[] = {"treatment", "informational", "marketing"};
static const char *const channel_names[CAMPAIGN_CHANNEL_COUNT] = {"sms", "email"};

static const char *const common_keys[] = {
    "enabled",           "class",        "channels", "sms", "email_subject", "email_body",
    "email_template_id", "expire_hours", "note"};
static const char *const recall_keys[] = {"due_soon_days", "overdue_days", "remind_stages",
                                          "tasks"};
static const char *const reactivation_keys[] = {"lapse_months", "max_messages", "spacing_days"};
static const char *const review_keys[] = {"delay_minutes", "min_days_between"};
static const char *const policy_keys[] = {"quiet_hours",
                                          "max_per_day",
                                          "max_per_week",
                                          "sms_unknown_consent",
                                          "family_aggregation",
                                          "release_spread_minutes",
                                          "booking_link",
                                          "review_link",
                                          "opt_out_text",
                                          "practice_name",
                                          "practice_phone",
                                          "commlog",
                                          "note"};

static const struct default_templates defaults[CAMPAIGN_COUNT] = {
    {"Hi {{first_name}}, it's time for your next visit at {{practice_name}}. Call "
     "{{practice_phone}} to book.",
     "Hi {{first_name}}, it's time for your next visit at {{practice_name}}. Please call us to "
     "book.",
     "Time for your next visit at {{practice_name}}",
     "<p>Hi {{first_name}},</p><p>It's time for your next visit at {{practice_name}}. Call us at "
     "{{practice_phone}} to book a time that suits you.</p><p>{{practice_name}}</p>",
     "<p>Hi {{first_name}},</p><p>It's time for your next visit at {{practice_name}}. Please "
     "call us to book a time that suits you.</p><p>{{practice_name}}</p>"},
    {"Hi {{first_name}}, it's been a while since your last visit at {{practice_name}}. Call "
     "{{practice_phone}} to book.",
     "Hi {{first_name}}, it's been a while since your last visit at {{practice_name}}. Please "
     "call us to book.",
     "We'd love to see you again at {{practice_name}}",
     "<p>Hi {{first_name}},</p><p>It's been a while since your last visit at {{practice_name}}. "
     "Call us at {{practice_phone}} to book your next appointment.</p><p>{{practice_name}}</p>",
     "<p>Hi {{first_name}},</p><p>It's been a while since your last visit at {{practice_name}}. "
     "Please call us to book your next appointment.</p><p>{{practice_name}}</p>"},
    {"Hi {{first_name}}, thank you for visiting {{practice_name}}. Please share your "
     "experience: {{review_link}}",
     NULL, "Thank you for visiting {{practice_name}}",
     "<p>Hi {{first_name}},</p><p>Thank you for visiting {{practice_name}}. We would be grateful "
     "if you shared your experience: <a href=\"{{review_link}}\">{{review_link}}</a></p>"
     "<p>{{practice_name}}</p>",
     NULL}};

static int bfail(struct bctx *b, int status, const char *path, const char *fmt, ...)
    UTIL_PRINTF(4, 5);

/* Record "origin: path: message" in the caller's buffer (borrowed; may be NULL). Returns
 * status, so callers can write `return bfail(...)`. */
static int bfail(struct bctx *b, int status, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = jsonpath_verror(b->err, b->errlen, b->origin, status, path, fmt, ap);
    va_end(ap);
    return status;
}

/* The out-of-memory error (the same words as config.c's). */
static int bnomem(struct bctx *b)
{
    return bfail(b, ODSYNC_NOMEM, NULL, "out of memory");
}

/* Set up l from two borrowed objects (each may be NULL) and their paths. */
static void layers_init(struct layers *l, const cJSON *top, const char *top_path,
                        const cJSON *office, const char *office_path)
{
    l->top = top;
    l->office = office;
    (void)util_fmt(l->top_path, sizeof(l->top_path), "%s", top_path);
    (void)util_fmt(l->office_path, sizeof(l->office_path), "%s", office_path);
}

/* The value of key: the office's when it has one, else the top-level one, else NULL.
 * path (size n) gets the full JSON path of the value used (the top-level path when absent).
 * Borrowed from the layers' JSON. */
static const cJSON *pick(const struct layers *l, const char *key, char *path, size_t n)
{
    const cJSON *v = NULL;

    if (l->office != NULL)
        v = cJSON_GetObjectItemCaseSensitive(l->office, key);
    if (v != NULL) {
        jsonpath_key(path, n, l->office_path, key);
        return v;
    }
    if (l->top != NULL)
        v = cJSON_GetObjectItemCaseSensitive(l->top, key);
    jsonpath_key(path, n, l->top_path, key);
    return v;
}

/* ODSYNC_OK when v (at path) is NULL or an object; else the "expected an object" error. */
static int want_object_or_null(struct bctx *b, const cJSON *v, const char *path)
{
    if (v == NULL || cJSON_IsObject(v))
        return ODSYNC_OK;
    return bfail(b, ODSYNC_CONFIG, path, "expected an object, got %s", jsonpath_type(v));
}

/* Refuse any member of obj (at path; may be NULL) whose key is in neither list. */
static int check_keys(struct bctx *b, const cJSON *obj, const char *path, const char *const *k1,
                      size_t n1, const char *const *k2, size_t n2, const char *what)
{
    const cJSON *it;
    char kpath[CPATH_MAX];

    if (obj == NULL)
        return ODSYNC_OK;
    cJSON_ArrayForEach(it, obj)
    {
        if (jsonpath_find_word(it->string, k1, n1) >= 0 ||
            (k2 != NULL && jsonpath_find_word(it->string, k2, n2) >= 0))
            continue;
        jsonpath_key(kpath, sizeof(kpath), path, it->string);
        return bfail(b, ODSYNC_CONFIG, kpath, "unknown key%s%s", what != NULL ? " " : "",
                     what != NULL ? what : "");
    }
    return ODSYNC_OK;
}

/* "note" in obj (at path; obj may be NULL): free text for people, ignored, but a string. */
static int check_note(struct bctx *b, const cJSON *obj, const char *path)
{
    char npath[CPATH_MAX];
    const cJSON *v = obj != NULL ? cJSON_GetObjectItemCaseSensitive(obj, "note") : NULL;

    if (v == NULL || cJSON_IsString(v))
        return ODSYNC_OK;
    jsonpath_key(npath, sizeof(npath), path, "note");
    return bfail(b, ODSYNC_CONFIG, npath, "expected a string, got %s", jsonpath_type(v));
}

/* ---- typed getters: absent keeps *out ---------------------------------------------------- */

/* "key": a whole number in [lo, hi]. */
static int get_int(struct bctx *b, const struct layers *l, const char *key, int64_t lo, int64_t hi,
                   int64_t *out)
{
    char path[CPATH_MAX];
    const cJSON *v = pick(l, key, path, sizeof(path));
    double d;

    if (v == NULL)
        return ODSYNC_OK;
    if (!cJSON_IsNumber(v))
        return bfail(b, ODSYNC_CONFIG, path, "expected a whole number %lld-%lld, got %s",
                     (long long)lo, (long long)hi, jsonpath_type(v));
    d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d)
        return bfail(b, ODSYNC_CONFIG, path, "expected a whole number %lld-%lld, got %.15g",
                     (long long)lo, (long long)hi, d);
    *out = (int64_t)d;
    return ODSYNC_OK;
}

/* "key": true or false. */
static int get_bool(struct bctx *b, const struct layers *l, const char *key, int *out)
{
    char path[CPATH_MAX];
    const cJSON *v = pick(l, key, path, sizeof(path));

    if (v == NULL)
        return ODSYNC_OK;
    if (!cJSON_IsBool(v))
        return bfail(b, ODSYNC_CONFIG, path, "expected true or false, got %s", jsonpath_type(v));
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return ODSYNC_OK;
}

/* "key": a non-empty string, copied into *out (caller frees with util_free; absent leaves
 * *out untouched). path (size n, may be NULL) gets the value's JSON path. */
static int get_str(struct bctx *b, const struct layers *l, const char *key, char **out,
                   char *path_out, size_t n)
{
    char path[CPATH_MAX];
    const cJSON *v = pick(l, key, path, sizeof(path));

    if (path_out != NULL)
        (void)util_fmt(path_out, n, "%s", path);
    if (v == NULL)
        return ODSYNC_OK;
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return bfail(b, ODSYNC_CONFIG, path, "expected a string, got %s", jsonpath_type(v));
    if (v->valuestring[0] == '\0')
        return bfail(b, ODSYNC_CONFIG, path, "must not be empty");
    util_free(*out);
    *out = util_strdup(v->valuestring);
    return *out != NULL ? ODSYNC_OK : bnomem(b);
}

/* "key": an http(s) URL without whitespace or control characters. */
static int get_link(struct bctx *b, const struct layers *l, const char *key, char **out)
{
    char path[CPATH_MAX], shown[SHOW_BUF];
    const char *s;
    size_t i;
    int rc = get_str(b, l, key, out, path, sizeof(path));

    if (rc != ODSYNC_OK || *out == NULL)
        return rc;
    s = *out;
    for (i = 0; s[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f)
            break;
    }
    if (s[i] == '\0' && ((strncmp(s, "https://", 8) == 0 && s[8] != '\0') ||
                         (strncmp(s, "http://", 7) == 0 && s[7] != '\0')))
        return ODSYNC_OK;
    return bfail(b, ODSYNC_CONFIG, path,
                 "expected an https:// or http:// URL without spaces, got \"%s\"",
                 jsonpath_show(shown, s));
}

/* "key": one of words (a string); *out gets its index. */
static int get_word(struct bctx *b, const struct layers *l, const char *key,
                    const char *const *words, size_t n, int *out)
{
    char path[CPATH_MAX], shown[SHOW_BUF], list[128] = "";
    const cJSON *v = pick(l, key, path, sizeof(path));
    size_t i, used = 0;
    int idx;

    if (v == NULL)
        return ODSYNC_OK;
    if (cJSON_IsString(v) && v->valuestring != NULL) {
        idx = jsonpath_find_word(v->valuestring, words, n);
        if (idx >= 0) {
            *out = idx;
            return ODSYNC_OK;
        }
    }
    for (i = 0; i < n; i++) {
        (void)util_fmt(list + used, sizeof(list) - used, "%s\"%s\"",
                       i == 0 ? "" : (i + 1 == n ? " or " : ", "), words[i]);
        used = strlen(list);
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return bfail(b, ODSYNC_CONFIG, path, "expected %s, got %s", list, jsonpath_type(v));
    return bfail(b, ODSYNC_CONFIG, path, "expected %s, got \"%s\"", list,
                 jsonpath_show(shown, v->valuestring));
}

/* ---- campaigns ----------------------------------------------------------------------------- */

/* "channels": a non-empty array of distinct "sms" / "email". */
static int get_channels(struct bctx *b, const struct layers *l, struct campaign *c)
{
    char path[CPATH_MAX], ipath[CPATH_MAX], shown[SHOW_BUF];
    const cJSON *v = pick(l, "channels", path, sizeof(path)), *it;
    size_t i = 0, j;
    int ch;

    if (v == NULL)
        return ODSYNC_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return bfail(b, ODSYNC_CONFIG, path,
                     "expected a non-empty array of \"sms\" and \"email\", got %s",
                     cJSON_IsArray(v) ? "an empty array" : jsonpath_type(v));
    c->n_channels = 0;
    cJSON_ArrayForEach(it, v)
    {
        (void)util_fmt(ipath, sizeof(ipath), "%s[%zu]", path, i++);
        if (!cJSON_IsString(it) || it->valuestring == NULL)
            return bfail(b, ODSYNC_CONFIG, ipath, "expected \"sms\" or \"email\", got %s",
                         jsonpath_type(it));
        ch = jsonpath_find_word(it->valuestring, channel_names, CAMPAIGN_CHANNEL_COUNT);
        if (ch < 0)
            return bfail(b, ODSYNC_CONFIG, ipath, "expected \"sms\" or \"email\", got \"%s\"",
                         jsonpath_show(shown, it->valuestring));
        for (j = 0; j < c->n_channels; j++) {
            if (c->channels[j] == ch)
                return bfail(b, ODSYNC_CONFIG, ipath, "\"%s\" is listed twice", channel_names[ch]);
        }
        c->channels[c->n_channels++] = ch;
    }
    return ODSYNC_OK;
}

/* "overdue_days": at most CAMPAIGN_MAX_OVERDUE whole numbers 1-3650, strictly ascending. */
static int get_overdue(struct bctx *b, const struct layers *l, struct campaign *c)
{
    char path[CPATH_MAX], ipath[CPATH_MAX];
    const cJSON *v = pick(l, "overdue_days", path, sizeof(path)), *it;
    size_t i = 0;

    if (v == NULL)
        return ODSYNC_OK;
    if (!cJSON_IsArray(v))
        return bfail(b, ODSYNC_CONFIG, path, "expected an array of whole numbers, got %s",
                     jsonpath_type(v));
    if (cJSON_GetArraySize(v) > CAMPAIGN_MAX_OVERDUE)
        return bfail(b, ODSYNC_CONFIG, path, "expected at most %d thresholds, got %d",
                     CAMPAIGN_MAX_OVERDUE, cJSON_GetArraySize(v));
    c->n_overdue = 0;
    cJSON_ArrayForEach(it, v)
    {
        double d = it->valuedouble;
        (void)util_fmt(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (!cJSON_IsNumber(it))
            return bfail(b, ODSYNC_CONFIG, ipath, "expected a whole number 1-3650, got %s",
                         jsonpath_type(it));
        if (!(d >= 1.0 && d <= 3650.0) || d != (double)(int64_t)d)
            return bfail(b, ODSYNC_CONFIG, ipath, "expected a whole number 1-3650, got %.15g", d);
        if (i > 0 && (int64_t)d <= c->overdue_days[i - 1])
            return bfail(b, ODSYNC_CONFIG, ipath,
                         "overdue_days must be strictly ascending: %lld is not greater than "
                         "%lld",
                         (long long)(int64_t)d, (long long)c->overdue_days[i - 1]);
        c->overdue_days[i++] = (int64_t)d;
        c->n_overdue = i;
    }
    return ODSYNC_OK;
}

/* Bits of every stage defined by c's overdue thresholds (due_soon, due, overdue_*). */
static unsigned all_stages(const struct campaign *c)
{
    unsigned mask = 0;
    int s;
    for (s = RECALL_STAGE_DUE_SOON; s < RECALL_STAGE_OVERDUE_1 + (int)c->n_overdue; s++)
        mask |= 1u << s;
    return mask;
}

/* "remind_stages": stage names defined for c (after its overdue_days), each at most once. */
static int get_stages(struct bctx *b, const struct layers *l, struct campaign *c)
{
    char path[CPATH_MAX], ipath[CPATH_MAX], shown[SHOW_BUF], name[32], list[256];
    const cJSON *v = pick(l, "remind_stages", path, sizeof(path)), *it;
    size_t i = 0, used = 0;
    int s, last = RECALL_STAGE_OVERDUE_1 + (int)c->n_overdue - 1;

    c->remind_stages = all_stages(c);
    if (v == NULL)
        return ODSYNC_OK;
    if (!cJSON_IsArray(v))
        return bfail(b, ODSYNC_CONFIG, path, "expected an array of stage names, got %s",
                     jsonpath_type(v));
    list[0] = '\0';
    for (s = RECALL_STAGE_DUE_SOON; s <= last; s++) {
        (void)util_fmt(list + used, sizeof(list) - used, "%s\"%s\"", s == 1 ? "" : ", ",
                       campaign_stage_name(c, s, name, sizeof(name)));
        used = strlen(list);
    }
    c->remind_stages = 0;
    cJSON_ArrayForEach(it, v)
    {
        int found = -1;
        (void)util_fmt(ipath, sizeof(ipath), "%s[%zu]", path, i++);
        if (!cJSON_IsString(it) || it->valuestring == NULL)
            return bfail(b, ODSYNC_CONFIG, ipath, "expected a stage name, got %s",
                         jsonpath_type(it));
        for (s = RECALL_STAGE_DUE_SOON; s <= last && found < 0; s++) {
            if (strcmp(it->valuestring, campaign_stage_name(c, s, name, sizeof(name))) == 0)
                found = s;
        }
        if (found < 0)
            return bfail(b, ODSYNC_CONFIG, ipath, "unknown stage \"%s\" (stages: %s)",
                         jsonpath_show(shown, it->valuestring), list);
        if (c->remind_stages & (1u << found))
            return bfail(b, ODSYNC_CONFIG, ipath, "stage \"%s\" is listed twice", it->valuestring);
        c->remind_stages |= 1u << found;
    }
    return ODSYNC_OK;
}

/* One template: the configured text at "key" or the built-in def, compiled for channel.
 * path (size n) gets the path of the value (for defaults the top-level path). */
static int get_template(struct bctx *b, const struct layers *l, const char *key, int channel,
                        const char *def, struct template **out, char *path, size_t n)
{
    char terr[CMSG_MAX];
    const cJSON *v = pick(l, key, path, n);
    const char *text = def;
    int rc;

    if (v != NULL) {
        if (!cJSON_IsString(v) || v->valuestring == NULL)
            return bfail(b, ODSYNC_CONFIG, path, "expected a string, got %s", jsonpath_type(v));
        text = v->valuestring;
    }
    rc = template_compile(text, channel, path, out, terr, sizeof(terr));
    if (rc == ODSYNC_NOMEM)
        return bnomem(b);
    if (rc != ODSYNC_OK)
        return bfail(b, ODSYNC_CONFIG, NULL, "%s", terr); /* terr starts with path */
    return ODSYNC_OK;
}

/* Template paths of one campaign, for the checks after parsing. */
struct tpaths {
    char sms[CPATH_MAX];
    char subject[CPATH_MAX];
    char body[CPATH_MAX];
};

/* The campaign's templates (defaults chosen by whether the office has a phone). */
static int load_templates(struct bctx *b, const struct layers *l, int kind, int has_phone,
                          struct campaign *c, struct tpaths *tp)
{
    const struct default_templates *d = &defaults[kind];
    const char *sms = d->sms, *body = d->body;
    int rc;

    if (!has_phone && d->sms_nophone != NULL)
        sms = d->sms_nophone;
    if (!has_phone && d->body_nophone != NULL)
        body = d->body_nophone;
    rc = get_template(b, l, "sms", TEMPLATE_SMS, sms, &c->sms, tp->sms, sizeof(tp->sms));
    if (rc == ODSYNC_OK)
        rc = get_template(b, l, "email_subject", TEMPLATE_EMAIL_SUBJECT, d->subject,
                          &c->email_subject, tp->subject, sizeof(tp->subject));
    if (rc == ODSYNC_OK)
        rc = get_template(b, l, "email_body", TEMPLATE_EMAIL, body, &c->email_body, tp->body,
                          sizeof(tp->body));
    if (rc != ODSYNC_OK)
        return rc;
    if (!template_uses(c->email_subject, "practice_name") &&
        !template_uses(c->email_body, "practice_name"))
        return bfail(b, ODSYNC_CONFIG, tp->body,
                     "an email must name the practice: put {{practice_name}} in email_subject "
                     "or email_body");
    return ODSYNC_OK;
}

/* 1 when c sends on channel. */
static int uses_channel(const struct campaign *c, int channel)
{
    size_t i;
    for (i = 0; i < c->n_channels; i++) {
        if (c->channels[i] == channel)
            return 1;
    }
    return 0;
}

/* Checks of one template of an enabled campaign against the office's values: every
 * variable it uses must have a value at send time. */
static int check_template_values(struct bctx *b, int kind, const struct template *t,
                                 const char *path, const struct campaign_policy *p)
{
    if (template_uses(t, "review_link") && p->review_link == NULL)
        return bfail(b, ODSYNC_CONFIG, path,
                     "uses {{review_link}} but policy.review_link is not set");
    if (template_uses(t, "booking_link") && p->booking_link == NULL)
        return bfail(b, ODSYNC_CONFIG, path,
                     "uses {{booking_link}} but policy.booking_link is not set");
    if (template_uses(t, "practice_phone") && p->practice_phone == NULL)
        return bfail(b, ODSYNC_CONFIG, path,
                     "uses {{practice_phone}} but neither policy.practice_phone nor the office's "
                     "\"phone\" is set");
    if (kind != CAMPAIGN_REVIEW &&
        (template_uses(t, "appointment_date") || template_uses(t, "appointment_time")))
        return bfail(b, ODSYNC_CONFIG, path,
                     "the %s campaign has no appointment: {{appointment_date}} and "
                     "{{appointment_time}} are only for review messages",
                     kind_names[kind]);
    return ODSYNC_OK;
}

/* Render an enabled campaign's SMS with this office's values and sample patient values:
 * refused when it no longer fits one segment. */
static int check_sms_render(struct bctx *b, const struct campaign *c,
                            const struct campaign_policy *p)
{
    struct template_vars vars;
    char terr[CMSG_MAX], *out = NULL;
    int rc;

    memset(&vars, 0, sizeof(vars));
    vars.first_name = SAMPLE_FIRST_NAME;
    vars.practice_name = p->practice_name;
    vars.practice_phone = p->practice_phone;
    vars.appointment_date = SAMPLE_DATE;
    vars.appointment_time = SAMPLE_TIME;
    vars.booking_link = p->booking_link;
    vars.review_link = p->review_link;
    vars.opt_out = p->opt_out_text;
    rc = template_render(c->sms, &vars, &out, terr, sizeof(terr));
    util_free(out);
    if (rc == ODSYNC_NOMEM)
        return bnomem(b);
    if (rc != ODSYNC_OK)
        return bfail(b, ODSYNC_CONFIG, NULL,
                     "%s (with this office's practice_name, practice_phone, links and "
                     "opt_out_text, and a %zu-letter first name)",
                     terr, strlen(SAMPLE_FIRST_NAME));
    return ODSYNC_OK;
}

/* Fill c with the defaults of kind. */
static void campaign_defaults(struct campaign *c, int kind)
{
    c->enabled = 0;
    c->msg_class =
        kind == CAMPAIGN_RECALL ? CAMPAIGN_CLASS_TREATMENT : CAMPAIGN_CLASS_INFORMATIONAL;
    c->channels[0] = CAMPAIGN_SMS;
    c->channels[1] = CAMPAIGN_EMAIL;
    c->n_channels = 2;
    c->expire_hours = DEFAULT_EXPIRE_HOURS;
    c->due_soon_days = DEFAULT_DUE_SOON_DAYS;
    c->overdue_days[0] = 30;
    c->overdue_days[1] = 90;
    c->n_overdue = 2;
    c->remind_stages = all_stages(c);
    c->tasks = 1;
    c->lapse_months = DEFAULT_LAPSE_MONTHS;
    c->max_messages = DEFAULT_MAX_MESSAGES;
    c->spacing_days = DEFAULT_SPACING_DAYS;
    c->delay_minutes = DEFAULT_DELAY_MINUTES;
    c->min_days_between = DEFAULT_MIN_DAYS;
}

/* The members only one kind of campaign has. */
static void kind_keys(int kind, const char *const **keys, size_t *n)
{
    if (kind == CAMPAIGN_RECALL) {
        *keys = recall_keys;
        *n = UTIL_ARRAY_LEN(recall_keys);
    } else if (kind == CAMPAIGN_REACTIVATION) {
        *keys = reactivation_keys;
        *n = UTIL_ARRAY_LEN(reactivation_keys);
    } else {
        *keys = review_keys;
        *n = UTIL_ARRAY_LEN(review_keys);
    }
}

/* One campaign of kind from its layers; p is the office's resolved policy. */
static int load_campaign(struct bctx *b, const struct layers *l, int kind,
                         const struct campaign_policy *p, struct campaign *c)
{
    const char *const *kkeys;
    char what[48];
    struct tpaths tp;
    size_t nk, i;
    int rc;

    campaign_defaults(c, kind);
    kind_keys(kind, &kkeys, &nk);
    (void)util_fmt(what, sizeof(what), "for the %s campaign", kind_names[kind]);
    rc = check_keys(b, l->top, l->top_path, common_keys, UTIL_ARRAY_LEN(common_keys), kkeys, nk,
                    what);
    if (rc == ODSYNC_OK)
        rc = check_keys(b, l->office, l->office_path, common_keys, UTIL_ARRAY_LEN(common_keys),
                        kkeys, nk, what);
    if (rc == ODSYNC_OK)
        rc = check_note(b, l->top, l->top_path);
    if (rc == ODSYNC_OK)
        rc = check_note(b, l->office, l->office_path);
    if (rc != ODSYNC_OK)
        return rc;
    c->enabled = l->top != NULL || l->office != NULL;
    rc = get_bool(b, l, "enabled", &c->enabled);
    if (rc == ODSYNC_OK)
        rc = get_word(b, l, "class", class_names, UTIL_ARRAY_LEN(class_names), &c->msg_class);
    if (rc == ODSYNC_OK)
        rc = get_channels(b, l, c);
    if (rc == ODSYNC_OK)
        rc = get_str(b, l, "email_template_id", &c->email_template_id, NULL, 0);
    if (rc == ODSYNC_OK)
        rc = get_int(b, l, "expire_hours", 1, 8760, &c->expire_hours);
    if (rc == ODSYNC_OK && kind == CAMPAIGN_RECALL) {
        rc = get_int(b, l, "due_soon_days", 0, 365, &c->due_soon_days);
        if (rc == ODSYNC_OK)
            rc = get_overdue(b, l, c);
        if (rc == ODSYNC_OK)
            rc = get_stages(b, l, c);
        if (rc == ODSYNC_OK)
            rc = get_bool(b, l, "tasks", &c->tasks);
    } else if (rc == ODSYNC_OK && kind == CAMPAIGN_REACTIVATION) {
        rc = get_int(b, l, "lapse_months", 1, 120, &c->lapse_months);
        if (rc == ODSYNC_OK)
            rc = get_int(b, l, "max_messages", 1, 10, &c->max_messages);
        if (rc == ODSYNC_OK)
            rc = get_int(b, l, "spacing_days", 1, 3650, &c->spacing_days);
    } else if (rc == ODSYNC_OK) {
        rc = get_int(b, l, "delay_minutes", 0, 10080, &c->delay_minutes);
        if (rc == ODSYNC_OK)
            rc = get_int(b, l, "min_days_between", 0, 3650, &c->min_days_between);
    }
    if (rc == ODSYNC_OK)
        rc = load_templates(b, l, kind, p->practice_phone != NULL, c, &tp);
    if (rc != ODSYNC_OK || !c->enabled)
        return rc;
    for (i = 0; i < c->n_channels && rc == ODSYNC_OK; i++) {
        if (c->channels[i] == CAMPAIGN_SMS) {
            rc = check_template_values(b, kind, c->sms, tp.sms, p);
        } else {
            rc = check_template_values(b, kind, c->email_subject, tp.subject, p);
            if (rc == ODSYNC_OK)
                rc = check_template_values(b, kind, c->email_body, tp.body, p);
        }
    }
    if (rc == ODSYNC_OK && uses_channel(c, CAMPAIGN_SMS))
        rc = check_sms_render(b, c, p);
    return rc;
}

/* ---- policy -------------------------------------------------------------------------------- */

/* "HH:MM" (00:00-23:59; "24:00" too when end) into minutes; -1 when malformed. */
static int parse_hhmm(const char *s, int end)
{
    int h, m;
    if (strlen(s) != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
        s[2] != ':' || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
        return -1;
    return h * 60 + m;
}

/* "quiet_hours": ["HH:MM", "HH:MM"], start before end. */
static int get_quiet_hours(struct bctx *b, const struct layers *l, struct campaign_policy *p)
{
    char path[CPATH_MAX], ipath[CPATH_MAX], shown[SHOW_BUF];
    const cJSON *v = pick(l, "quiet_hours", path, sizeof(path)), *it;
    int mins[2], i = 0;

    if (v == NULL)
        return ODSYNC_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return bfail(b, ODSYNC_CONFIG, path,
                     "expected an array of two \"HH:MM\" strings [start, end], got %s",
                     cJSON_IsArray(v) ? "another length" : jsonpath_type(v));
    cJSON_ArrayForEach(it, v)
    {
        (void)util_fmt(ipath, sizeof(ipath), "%s[%d]", path, i);
        if (!cJSON_IsString(it) || it->valuestring == NULL)
            return bfail(b, ODSYNC_CONFIG, ipath, "expected \"HH:MM\", got %s", jsonpath_type(it));
        mins[i] = parse_hhmm(it->valuestring, i == 1);
        if (mins[i] < 0)
            return bfail(b, ODSYNC_CONFIG, ipath, "expected \"HH:MM\", got \"%s\"",
                         jsonpath_show(shown, it->valuestring));
        i++;
    }
    if (mins[0] >= mins[1])
        return bfail(b, ODSYNC_CONFIG, path,
                     "the sending window must start before it ends (start %02d:%02d, end "
                     "%02d:%02d)",
                     mins[0] / 60, mins[0] % 60, mins[1] / 60, mins[1] % 60);
    p->quiet_start_min = mins[0];
    p->quiet_end_min = mins[1];
    return ODSYNC_OK;
}

/* 1 when s contains "stop" in any case. */
static int has_stop(const char *s)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++) {
        if (strncasecmp(s + i, "stop", 4) == 0)
            return 1;
    }
    return 0;
}

/* The office's policy from its layers; name / phone are the office's defaults. */
static int load_policy(struct bctx *b, const struct layers *l, const char *name, const char *phone,
                       struct campaign_policy *p)
{
    char path[CPATH_MAX], wpath[CPATH_MAX];
    int rc;

    p->quiet_start_min = DEFAULT_QUIET_START_MIN;
    p->quiet_end_min = DEFAULT_QUIET_END_MIN;
    p->max_per_day = DEFAULT_MAX_PER_DAY;
    p->max_per_week = DEFAULT_MAX_PER_WEEK;
    p->release_spread_minutes = DEFAULT_SPREAD_MINUTES;
    rc =
        check_keys(b, l->top, l->top_path, policy_keys, UTIL_ARRAY_LEN(policy_keys), NULL, 0, NULL);
    if (rc == ODSYNC_OK)
        rc = check_keys(b, l->office, l->office_path, policy_keys, UTIL_ARRAY_LEN(policy_keys),
                        NULL, 0, NULL);
    if (rc == ODSYNC_OK)
        rc = check_note(b, l->top, l->top_path);
    if (rc == ODSYNC_OK)
        rc = check_note(b, l->office, l->office_path);
    if (rc == ODSYNC_OK)
        rc = get_quiet_hours(b, l, p);
    if (rc == ODSYNC_OK)
        rc = get_int(b, l, "max_per_day", 1, 10, &p->max_per_day);
    if (rc == ODSYNC_OK)
        rc = get_int(b, l, "max_per_week", 1, 50, &p->max_per_week);
    if (rc != ODSYNC_OK)
        return rc;
    if (p->max_per_week < p->max_per_day) {
        (void)pick(l, "max_per_week", wpath, sizeof(wpath));
        return bfail(b, ODSYNC_CONFIG, wpath,
                     "must not be smaller than max_per_day (%lld), got %lld",
                     (long long)p->max_per_day, (long long)p->max_per_week);
    }
    rc = get_bool(b, l, "sms_unknown_consent", &p->sms_unknown_consent);
    if (rc == ODSYNC_OK)
        rc = get_bool(b, l, "family_aggregation", &p->family_aggregation);
    if (rc == ODSYNC_OK)
        rc = get_int(b, l, "release_spread_minutes", 0, 1440, &p->release_spread_minutes);
    if (rc == ODSYNC_OK)
        rc = get_link(b, l, "booking_link", &p->booking_link);
    if (rc == ODSYNC_OK)
        rc = get_link(b, l, "review_link", &p->review_link);
    if (rc == ODSYNC_OK)
        rc = get_str(b, l, "opt_out_text", &p->opt_out_text, path, sizeof(path));
    if (rc == ODSYNC_OK && p->opt_out_text != NULL && !has_stop(p->opt_out_text))
        rc = bfail(b, ODSYNC_CONFIG, path,
                   "must tell the patient how to opt out (e.g. \"Reply STOP to opt out.\")");
    if (rc == ODSYNC_OK && p->opt_out_text != NULL && strpbrk(p->opt_out_text, "\r\n") != NULL)
        rc = bfail(b, ODSYNC_CONFIG, path, "must be one line");
    if (rc == ODSYNC_OK)
        rc = get_str(b, l, "practice_name", &p->practice_name, NULL, 0);
    if (rc == ODSYNC_OK)
        rc = get_str(b, l, "practice_phone", &p->practice_phone, NULL, 0);
    if (rc == ODSYNC_OK)
        rc = get_bool(b, l, "commlog", &p->commlog);
    if (rc != ODSYNC_OK)
        return rc;
    if (p->practice_name == NULL && name != NULL && name[0] != '\0') {
        p->practice_name = util_strdup(name);
        if (p->practice_name == NULL)
            return bnomem(b);
    }
    if (p->practice_name == NULL) {
        (void)pick(l, "practice_name", path, sizeof(path));
        return bfail(b, ODSYNC_CONFIG, path, "required (the office has no \"name\")");
    }
    if (p->practice_phone == NULL && phone != NULL && phone[0] != '\0') {
        p->practice_phone = util_strdup(phone);
        if (p->practice_phone == NULL)
            return bnomem(b);
    }
    return ODSYNC_OK;
}

/* ---- public -------------------------------------------------------------------------------- */

/* The object member key of obj (may be NULL); NULL when absent. Borrowed. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    return obj != NULL ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* Check the "campaigns" objects themselves: objects, members only the three campaign names,
 * each an object. */
static int check_campaigns_shape(struct bctx *b, const cJSON *obj, const char *path)
{
    char kpath[CPATH_MAX];
    const cJSON *it;
    int rc = want_object_or_null(b, obj, path);

    if (rc != ODSYNC_OK || obj == NULL)
        return rc;
    cJSON_ArrayForEach(it, obj)
    {
        jsonpath_key(kpath, sizeof(kpath), path, it->string);
        if (jsonpath_find_word(it->string, kind_names, CAMPAIGN_COUNT) < 0)
            return bfail(b, ODSYNC_CONFIG, kpath,
                         "unknown campaign (expected \"recall\", \"reactivation\" or "
                         "\"review\")");
        rc = want_object_or_null(b, it, kpath);
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

/* Build the settings into s (zeroed); on failure s is partly filled (the caller frees it). */
static int build(struct bctx *b, const cJSON *campaigns, const cJSON *policy,
                 const cJSON *office_campaigns, const cJSON *office_policy, const char *office_path,
                 const char *name, const char *phone, const char *timezone, struct campaign_set *s)
{
    char opath[CPATH_MAX], tpath[CPATH_MAX], terr[CMSG_MAX];
    struct layers l;
    int rc, k;

    (void)util_fmt(opath, sizeof(opath), "%s.campaigns", office_path);
    rc = check_campaigns_shape(b, campaigns, "campaigns");
    if (rc == ODSYNC_OK)
        rc = check_campaigns_shape(b, office_campaigns, opath);
    (void)util_fmt(opath, sizeof(opath), "%s.policy", office_path);
    if (rc == ODSYNC_OK)
        rc = want_object_or_null(b, policy, "policy");
    if (rc == ODSYNC_OK)
        rc = want_object_or_null(b, office_policy, opath);
    if (rc != ODSYNC_OK)
        return rc;
    layers_init(&l, policy, "policy", office_policy, opath);
    rc = load_policy(b, &l, name, phone, &s->policy);
    for (k = 0; k < CAMPAIGN_COUNT && rc == ODSYNC_OK; k++) {
        (void)util_fmt(tpath, sizeof(tpath), "campaigns.%s", kind_names[k]);
        (void)util_fmt(opath, sizeof(opath), "%s.campaigns.%s", office_path, kind_names[k]);
        layers_init(&l, member(campaigns, kind_names[k]), tpath,
                    member(office_campaigns, kind_names[k]), opath);
        rc = load_campaign(b, &l, k, &s->policy, &s->campaigns[k]);
    }
    if (rc != ODSYNC_OK)
        return rc;
    (void)util_fmt(tpath, sizeof(tpath), "%s.timezone", office_path);
    if (timezone == NULL)
        return bfail(b, ODSYNC_CONFIG, tpath, "required");
    rc = tz_load(timezone, &s->tz, terr, sizeof(terr));
    if (rc == ODSYNC_NOMEM)
        return bnomem(b);
    if (rc != ODSYNC_OK)
        return bfail(b, ODSYNC_CONFIG, tpath, "%s", terr);
    return ODSYNC_OK;
}

int campaign_set_build(const cJSON *campaigns, const cJSON *policy, const cJSON *office_campaigns,
                       const cJSON *office_policy, const char *office_path, const char *origin,
                       const char *name, const char *phone, const char *timezone,
                       struct campaign_set **out, char *err, size_t errlen)
{
    struct bctx b;
    struct campaign_set *s = NULL;
    int rc;

    b.origin = origin != NULL ? origin : "config";
    b.err = err;
    b.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return ODSYNC_INVALID;
    *out = NULL;
    s = util_calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = bnomem(&b);
        goto cleanup;
    }
    rc = build(&b, campaigns, policy, office_campaigns, office_policy,
               office_path != NULL ? office_path : "office", name, phone, timezone, s);
    if (rc != ODSYNC_OK)
        goto cleanup;
    *out = s;
    s = NULL;
cleanup:
    campaign_set_free(s);
    return rc;
}

/* Frees everything s owns, then s. */
void campaign_set_free(struct campaign_set *s)
{
    int k;

    if (s == NULL)
        return;
    for (k = 0; k < CAMPAIGN_COUNT; k++) {
        template_free(s->campaigns[k].sms);
        template_free(s->campaigns[k].email_subject);
        template_free(s->campaigns[k].email_body);
        util_free(s->campaigns[k].email_template_id);
    }
    util_free(s->policy.booking_link);
    util_free(s->policy.review_link);
    util_free(s->policy.opt_out_text);
    util_free(s->policy.practice_name);
    util_free(s->policy.practice_phone);
    tz_free(s->tz);
    util_free(s);
}

/* Static storage; "unknown" out of range. */
const char *campaign_kind_name(int kind)
{
    if (kind < 0 || kind >= CAMPAIGN_COUNT)
        return "unknown";
    return kind_names[kind];
}

/* Static storage; "unknown" out of range. */
const char *campaign_class_name(int msg_class)
{
    if (msg_class < 0 || msg_class >= (int)UTIL_ARRAY_LEN(class_names))
        return "unknown";
    return class_names[msg_class];
}

/* Static storage; "unknown" out of range. */
const char *campaign_channel_name(int channel)
{
    if (channel < 0 || channel >= CAMPAIGN_CHANNEL_COUNT)
        return "unknown";
    return channel_names[channel];
}

/* Writes into the caller's buf; "unknown" for a stage c does not define (or a NULL c past
 * "due"). Returns buf ("" when it is too small). */
const char *campaign_stage_name(const struct campaign *c, int stage, char *buf, size_t len)
{
    const char *fixed = NULL;
    int i = stage - RECALL_STAGE_OVERDUE_1;

    if (buf == NULL || len == 0)
        return "";
    if (stage == RECALL_STAGE_NONE)
        fixed = "none";
    else if (stage == RECALL_STAGE_DUE_SOON)
        fixed = "due_soon";
    else if (stage == RECALL_STAGE_DUE)
        fixed = "due";
    else if (c == NULL || i < 0 || (size_t)i >= c->n_overdue)
        fixed = "unknown";
    if (fixed != NULL) {
        if (util_fmt(buf, len, "%s", fixed) != ODSYNC_OK)
            buf[0] = '\0';
        return buf;
    }
    if (util_fmt(buf, len, "overdue_%lld", (long long)c->overdue_days[i]) != ODSYNC_OK)
        buf[0] = '\0';
    return buf;
}
