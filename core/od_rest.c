/*
 * od_rest.c: REST v1 elements into canonical structs.
 */
#include "od_rest.h"

#include <ctype.h>
#include <string.h>

#include "util.h"

#define PHONE_MAX 20

/* An int field given as a number or a numeric string; def when absent or malformed. */
static int64_t get_int(const cJSON *o, const char *name, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    int64_t out;
    if (cJSON_IsNumber(v) && util_double_i64(v->valuedouble, &out))
        return out;
    if (cJSON_IsString(v) && util_parse_i64(v->valuestring, INT64_MIN, INT64_MAX, &out) == 0)
        return out;
    return def;
}

/* A string field, trimmed; NULL when absent, not a string, or blank. Borrowed view copied:
 * caller frees with util_free. *oom set on allocation failure. */
static char *get_str(const cJSON *o, const char *name, int *oom)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    const char *s, *e;
    char *out;
    if (!cJSON_IsString(v))
        return NULL;
    s = v->valuestring;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (e == s)
        return NULL;
    out = util_strndup(s, (size_t)(e - s));
    if (out == NULL)
        *oom = 1;
    return out;
}

/* A string field as a borrowed pointer (untrimmed), or NULL. */
static const char *raw_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A boolean given as "true"/"false" (any case) or a JSON bool; 0 otherwise. */
static int get_bool(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    return model_bool_string(cJSON_IsString(v) ? v->valuestring : NULL) == 1;
}

/* A date field via model_date (NULL for none, garbage, or no memory). */
static char *get_date(const cJSON *o, const char *name)
{
    return model_date(raw_str(o, name));
}

/* A datetime field via model_datetime. */
static char *get_datetime(const cJSON *o, const char *name)
{
    return model_datetime(raw_str(o, name));
}

/* A phone as E.164, or NULL when missing or not a valid number. */
static char *get_phone(const cJSON *o, const char *name, int *oom)
{
    char e164[PHONE_MAX];
    char *out;
    if (!model_phone_e164(raw_str(o, name), e164, sizeof(e164)))
        return NULL;
    out = util_strdup(e164);
    if (out == NULL)
        *oom = 1;
    return out;
}

/* A positive primary key, or a refusal naming the field. */
static int get_pk(const cJSON *o, const char *name, int64_t *out, char *why, size_t why_len)
{
    *out = get_int(o, name, 0);
    if (*out > 0)
        return ODSYNC_OK;
    util_fmt(why, why_len, "%s: missing or not a positive integer", name);
    return ODSYNC_PARSE;
}

/* TxtMsgOk into "yes" | "no" | "unknown". */
static char *consent(const cJSON *o, int *oom)
{
    const char *v = raw_str(o, "TxtMsgOk");
    const char *c = v == NULL                   ? "unknown"
                    : strcasecmp(v, "Yes") == 0 ? "yes"
                    : strcasecmp(v, "No") == 0  ? "no"
                                                : "unknown";
    char *out = util_strdup(c);
    if (out == NULL)
        *oom = 1;
    return out;
}

int od_rest_patient(const cJSON *elem, struct model_patient *out, char *why, size_t why_len)
{
    char *email;
    int oom = 0, rc;

    memset(out, 0, sizeof(*out));
    rc = get_pk(elem, "PatNum", &out->patnum, why, why_len);
    if (rc != ODSYNC_OK)
        return rc;
    out->last_name = get_str(elem, "LName", &oom);
    out->first_name = get_str(elem, "FName", &oom);
    out->middle_initial = get_str(elem, "MiddleI", &oom);
    out->preferred_name = get_str(elem, "Preferred", &oom);
    out->status = get_str(elem, "PatStatus", &oom);
    email = get_str(elem, "Email", &oom);
    if (model_email_valid(email))
        out->email = email;
    else
        util_free(email);
    out->phone_mobile = get_phone(elem, "WirelessPhone", &oom);
    out->phone_home = get_phone(elem, "HmPhone", &oom);
    out->phone_work = get_phone(elem, "WkPhone", &oom);
    out->birthdate = get_date(elem, "Birthdate");
    out->guarantor = get_int(elem, "Guarantor", 0);
    out->clinic_num = get_int(elem, "ClinicNum", 0);
    out->sms_consent = consent(elem, &oom);
    out->prefer_contact = get_str(elem, "PreferContactMethod", &oom);
    out->prefer_recall = get_str(elem, "PreferRecallMethod", &oom);
    out->language = get_str(elem, "Language", &oom);
    out->changed_at = get_datetime(elem, "DateTStamp");
    return oom ? ODSYNC_NOMEM : ODSYNC_OK;
}

int od_rest_recall(const cJSON *elem, struct model_recall *out, char *why, size_t why_len)
{
    int oom = 0, rc;
    memset(out, 0, sizeof(*out));
    rc = get_pk(elem, "RecallNum", &out->recall_num, why, why_len);
    if (rc == ODSYNC_OK)
        rc = get_pk(elem, "PatNum", &out->patnum, why, why_len);
    if (rc != ODSYNC_OK)
        return rc;
    out->recall_type = get_int(elem, "RecallTypeNum", 0);
    out->date_due = get_date(elem, "DateDue");
    out->date_previous = get_date(elem, "DatePrevious");
    out->date_scheduled = get_date(elem, "DateScheduled");
    out->disable_until = get_date(elem, "DisableUntilDate");
    out->disabled = get_bool(elem, "IsDisabled");
    out->interval = get_str(elem, "RecallInterval", &oom);
    out->changed_at = get_datetime(elem, "DateTStamp");
    return oom ? ODSYNC_NOMEM : ODSYNC_OK;
}

int od_rest_appointment(const cJSON *elem, struct model_appointment *out, char *why, size_t why_len)
{
    int oom = 0, rc;
    memset(out, 0, sizeof(*out));
    rc = get_pk(elem, "AptNum", &out->apt_num, why, why_len);
    if (rc == ODSYNC_OK)
        rc = get_pk(elem, "PatNum", &out->patnum, why, why_len);
    if (rc != ODSYNC_OK)
        return rc;
    out->clinic_num = get_int(elem, "ClinicNum", 0);
    out->prov_num = get_int(elem, "ProvNum", 0);
    out->status = get_str(elem, "AptStatus", &oom);
    out->start = get_datetime(elem, "AptDateTime");
    out->dismissed_at = get_datetime(elem, "DateTimeDismissed");
    out->is_new_patient = get_bool(elem, "IsNewPatient");
    out->changed_at = get_datetime(elem, "DateTStamp");
    if (!oom && out->status == NULL) {
        util_fmt(why, why_len, "AptStatus: missing");
        return ODSYNC_PARSE;
    }
    return oom ? ODSYNC_NOMEM : ODSYNC_OK;
}

int od_rest_procedure(const cJSON *elem, struct model_procedure *out, char *why, size_t why_len)
{
    int oom = 0, rc;
    memset(out, 0, sizeof(*out));
    rc = get_pk(elem, "ProcNum", &out->proc_num, why, why_len);
    if (rc == ODSYNC_OK)
        rc = get_pk(elem, "PatNum", &out->patnum, why, why_len);
    if (rc != ODSYNC_OK)
        return rc;
    out->apt_num = get_int(elem, "AptNum", 0);
    out->proc_date = get_date(elem, "ProcDate");
    out->status = get_str(elem, "ProcStatus", &oom);
    out->changed_at = get_datetime(elem, "DateTStamp");
    return oom ? ODSYNC_NOMEM : ODSYNC_OK;
}

int od_rest_clinic(const cJSON *elem, struct model_clinic *out, char *why, size_t why_len)
{
    int oom = 0, rc;
    memset(out, 0, sizeof(*out));
    rc = get_pk(elem, "ClinicNum", &out->clinic_num, why, why_len);
    if (rc != ODSYNC_OK)
        return rc;
    out->description = get_str(elem, "Description", &oom);
    out->abbr = get_str(elem, "Abbr", &oom);
    out->phone = get_phone(elem, "Phone", &oom);
    out->hidden = get_bool(elem, "IsHidden");
    return oom ? ODSYNC_NOMEM : ODSYNC_OK;
}

int64_t od_rest_hist_aptnum(const cJSON *elem)
{
    int64_t n = get_int(elem, "AptNum", 0);
    return n > 0 ? n : 0;
}

const char *od_rest_server_time(const cJSON *elem)
{
    const char *s = raw_str(elem, "serverDateTime");
    return s != NULL && strlen(s) == 19 && strncmp(s, "0001", 4) != 0 ? s : NULL;
}
