/*
 * sf_map.c: odsync records (sdk/include/odsync/sink.h schemas) -> Salesforce Contact and Task
 * fields, and the setup text naming the custom fields an admin must create. README.md has the
 * table; keep the three in step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf.h"

#define LASTNAME_PLACEHOLDER "(no last name)"

const char sf_setup_text[] =
    "Create a connected app (Setup > App Manager) with the OAuth scope \"api\" and the flow\n"
    "you configure: client credentials (with a run-as user), JWT bearer (upload the\n"
    "certificate of private_key; pre-authorise the user) or refresh token.\n"
    "Create these custom fields (Setup > Object Manager), then give the integration user\n"
    "edit access to them (field-level security):\n"
    "  Contact.Odsync_Key__c            Text(255), External ID, Unique (case sensitive)\n"
    "  Contact.Odsync_Office__c         Text(64)\n"
    "  Contact.Odsync_PatNum__c         Number(18, 0)\n"
    "  Contact.Odsync_Patient_Status__c Text(40)\n"
    "  Contact.Odsync_Preferred_Name__c Text(100)\n"
    "  Contact.Odsync_Guarantor_Key__c  Text(255)\n"
    "  Contact.Odsync_SMS_Consent__c    Text(16)   (yes, no, unknown)\n"
    "  Contact.Odsync_Recall_Due__c     Date\n"
    "  Contact.Odsync_Recall_Stage__c   Text(40)   (due_soon, due, overdue_N, scheduled)\n"
    "  Contact.Odsync_Last_Visit__c     Date\n"
    "  Contact.Odsync_Reactivation__c   Checkbox\n"
    "  Activity.Odsync_Key__c           Text(255), External ID, Unique (used by Task)\n"
    "Standard fields written: Contact FirstName, LastName, Email, MobilePhone, HomePhone,\n"
    "Phone, HasOptedOutOfEmail; Task Subject, Description, ActivityDate, Status, Priority,\n"
    "WhoId (and OwnerId with task_owner_id). Other names for the two External ID fields:\n"
    "settings contact_external_id and task_external_id.";

/* The string member name of in, or NULL when absent, null, not a string or blank. Borrowed
 * from in. */
static const char *str_of(const cJSON *in, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, name);
    if (!cJSON_IsString(v))
        return NULL;
    for (const char *c = v->valuestring; *c; c++)
        if (*c != ' ' && *c != '\t')
            return v->valuestring;
    return NULL;
}

/* Add s cut to at most max characters (UTF-8 code points), or JSON null when s is NULL.
 * Returns 0, or -1 on NOMEM. */
static int add_text(cJSON *out, const char *name, const char *s, size_t max)
{
    if (s == NULL)
        return cJSON_AddNullToObject(out, name) != NULL ? 0 : -1;
    size_t bytes = 0, chars = 0;
    while (s[bytes] != '\0') {
        if (((unsigned char)s[bytes] & 0xC0) != 0x80) {
            if (chars == max)
                break;
            chars++;
        }
        bytes++;
    }
    char *cut = malloc(bytes + 1);
    if (cut == NULL)
        return -1;
    memcpy(cut, s, bytes);
    cut[bytes] = '\0';
    int rc = cJSON_AddStringToObject(out, name, cut) != NULL ? 0 : -1;
    free(cut);
    return rc;
}

/* 1 when s looks like "YYYY-MM-DD" (at its start). */
static int date_prefix(const char *s)
{
    if (s == NULL || strlen(s) < 10)
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* Add the date at the start of s ("YYYY-MM-DD..." -> "YYYY-MM-DD"), or null. */
static int add_date(cJSON *out, const char *name, const char *s)
{
    char d[11];
    if (!date_prefix(s))
        return cJSON_AddNullToObject(out, name) != NULL ? 0 : -1;
    memcpy(d, s, 10);
    d[10] = '\0';
    return cJSON_AddStringToObject(out, name, d) != NULL ? 0 : -1;
}

/* Add a boolean member of in (false when absent). */
static int add_bool(cJSON *out, const char *name, const cJSON *in, const char *member)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, member);
    return cJSON_AddBoolToObject(out, name, cJSON_IsTrue(v)) != NULL ? 0 : -1;
}

/* A new {"attributes":{"type":type}, field: key}. NULL on NOMEM. Caller frees. */
static cJSON *new_record(const char *type, const char *field, const char *key)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *attr = cJSON_AddObjectToObject(out, "attributes");
    if (attr == NULL || cJSON_AddStringToObject(attr, "type", type) == NULL ||
        cJSON_AddStringToObject(out, field, key) == NULL) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

cJSON *sf_map_contact(const struct sf_config *cfg, const cJSON *in, const char *key)
{
    char placeholder[48];
    cJSON *out = new_record("Contact", cfg->contact_field, key);
    const cJSON *patnum = cJSON_GetObjectItemCaseSensitive(in, "patnum");
    int ok = out != NULL;

    /* LastName is required by Salesforce: a patient without one gets a placeholder naming the
     * PatNum (an opaque Open Dental id), so the record is still findable. */
    const char *last = str_of(in, "last_name");
    if (last == NULL) {
        if (cJSON_IsNumber(patnum) && patnum->valuedouble >= 0 &&
            patnum->valuedouble < 9007199254740992.0)
            snprintf(placeholder, sizeof(placeholder), "Patient #%.0f", patnum->valuedouble);
        else
            snprintf(placeholder, sizeof(placeholder), "%s", LASTNAME_PLACEHOLDER);
        last = placeholder;
    }
    ok = ok && add_text(out, "FirstName", str_of(in, "first_name"), 40) == 0 &&
         add_text(out, "LastName", last, 80) == 0 &&
         add_text(out, "Email", str_of(in, "email"), 80) == 0 &&
         add_text(out, "MobilePhone", str_of(in, "phone_mobile"), 40) == 0 &&
         add_text(out, "HomePhone", str_of(in, "phone_home"), 40) == 0 &&
         add_text(out, "Phone", str_of(in, "phone_work"), 40) == 0 &&
         add_bool(out, "HasOptedOutOfEmail", in, "email_opt_out") == 0 &&
         add_text(out, "Odsync_Office__c", str_of(in, "office"), 64) == 0 &&
         add_text(out, "Odsync_Patient_Status__c", str_of(in, "patient_status"), 40) == 0 &&
         add_text(out, "Odsync_Preferred_Name__c", str_of(in, "preferred_name"), 100) == 0 &&
         add_text(out, "Odsync_Guarantor_Key__c", str_of(in, "guarantor_key"), 255) == 0 &&
         add_text(out, "Odsync_SMS_Consent__c", str_of(in, "sms_consent"), 16) == 0 &&
         add_date(out, "Odsync_Recall_Due__c", str_of(in, "recall_due")) == 0 &&
         add_text(out, "Odsync_Recall_Stage__c", str_of(in, "recall_stage"), 40) == 0 &&
         add_date(out, "Odsync_Last_Visit__c", str_of(in, "last_visit")) == 0 &&
         add_bool(out, "Odsync_Reactivation__c", in, "reactivation") == 0;
    if (ok) {
        if (cJSON_IsNumber(patnum))
            ok = cJSON_AddNumberToObject(out, "Odsync_PatNum__c", patnum->valuedouble) != NULL;
        else
            ok = cJSON_AddNullToObject(out, "Odsync_PatNum__c") != NULL;
    }
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

cJSON *sf_map_task(const struct sf_config *cfg, const cJSON *in, const char *key,
                   const char *who_id)
{
    cJSON *out = new_record("Task", cfg->task_field, key);
    const char *status = str_of(in, "status"), *prio = str_of(in, "priority");
    const char *subject = str_of(in, "subject");
    const char *sf_prio = "Normal";
    int ok = out != NULL;

    if (prio != NULL && strcmp(prio, "low") == 0)
        sf_prio = "Low";
    else if (prio != NULL && strcmp(prio, "high") == 0)
        sf_prio = "High";
    ok = ok && add_text(out, "Subject", subject != NULL ? subject : "odsync task", 255) == 0 &&
         add_text(out, "Description", str_of(in, "body"), 32000) == 0 &&
         add_date(out, "ActivityDate", str_of(in, "due")) == 0 &&
         cJSON_AddStringToObject(out, "Status",
                                 status != NULL && strcmp(status, "completed") == 0
                                     ? cfg->status_completed
                                     : cfg->status_open) != NULL &&
         cJSON_AddStringToObject(out, "Priority", sf_prio) != NULL &&
         cJSON_AddStringToObject(out, "WhoId", who_id) != NULL;
    if (ok && cfg->task_owner_id != NULL)
        ok = cJSON_AddStringToObject(out, "OwnerId", cfg->task_owner_id) != NULL;
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}
