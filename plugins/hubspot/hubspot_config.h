/*
 * hubspot_config: the settings of the HubSpot connector and the custom properties it needs,
 * read through the host's config and secret services and checked beyond what the host's spec
 * validation covers. Kept apart from the request logic in hubspot.c.
 *
 * The property definitions have one source: HUBSPOT_SETUP_TEXT, the descriptor's ABI 1.1
 * `setup` text that `odsync plugins describe hubspot` prints. hubspot_config_load parses its
 * table lines into cfg->props, so what the operator is told to create and what the plugin
 * creates with "create_properties" can never drift apart.
 */
#ifndef ODSYNC_HUBSPOT_CONFIG_H
#define ODSYNC_HUBSPOT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <odsync/sink.h>

#include "hubspot_tz.h"

#define HUBSPOT_MAX_BATCH  100
#define HUBSPOT_KEY_PROP   "odsync_key" /* default id_property, as named in the setup text */
#define HUBSPOT_PROP_MAX   40           /* property definitions parsed from the setup text */
#define HUBSPOT_NAME_MAX   101          /* HubSpot property names: at most 100 bytes */
#define HUBSPOT_FIELD_MAX  64           /* label, type, fieldType, group */
#define HUBSPOT_OBJECT_MAX 16           /* "contacts", "tasks" */

/*
 * The operator's setup notes (descriptor .setup). Table lines are
 *   object  name  label  type  fieldType  group  hasUniqueValue
 * with columns separated by two or more spaces (a label may hold single spaces). The first
 * row (odsync_key on contacts) is the id_property; when the setting renames it, the plugin
 * uses the configured name for that row and for the task property of the same name.
 */
#define HUBSPOT_SETUP_TEXT                                                                         \
    "HubSpot custom properties this connector writes. Create them in Settings > Properties\n"      \
    "(or set \"create_properties\": true with a token that has the crm.schemas.contacts.write\n"   \
    "and crm.objects.tasks scopes). If \"id_property\" is set, use that name for odsync_key.\n"    \
    "object    name                   label                     type         fieldType        "    \
    "group               hasUniqueValue\n"                                                         \
    "contacts  odsync_key             odsync key                string       text             "    \
    "contactinformation  true\n"                                                                   \
    "contacts  odsync_office          odsync office             string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_patnum          Open Dental PatNum        number       number           "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_preferred_name  Preferred name            string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_patient_status  Patient status            string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_guarantor_key   Guarantor odsync key      string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_sms_consent     SMS consent               string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_email           Email (family shared)     string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_email_opt_out   Email opt-out             bool         booleancheckbox  "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_language        Language                  string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_recall_due      Recall due                date         date             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_recall_stage    Recall stage              string       text             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_last_visit      Last visit                date         date             "    \
    "contactinformation  false\n"                                                                  \
    "contacts  odsync_reactivation    In reactivation campaign  bool         booleancheckbox  "    \
    "contactinformation  false\n"                                                                  \
    "tasks     odsync_key             odsync key                string       text             "    \
    "task_information    false\n"

/* One custom property to create (strings owned by the struct, NUL-terminated). */
struct hubspot_prop {
    char object[HUBSPOT_OBJECT_MAX]; /* "contacts" or "tasks" */
    char name[HUBSPOT_NAME_MAX];
    char label[HUBSPOT_FIELD_MAX];
    char type[HUBSPOT_FIELD_MAX];
    char field_type[HUBSPOT_FIELD_MAX];
    char group[HUBSPOT_FIELD_MAX];
    int unique; /* hasUniqueValue */
};

struct hubspot_config {
    char *base_url;              /* owned; no trailing '/' */
    const char *token;           /* borrowed from secret_get, valid until destroy */
    const char *id_property;     /* borrowed from config_get, valid until destroy */
    const char *owner_id;        /* borrowed, or NULL: hubspot_owner_id of created tasks */
    int create_properties;       /* 1: create missing properties before the first send */
    size_t batch_size;           /* 1..HUBSPOT_MAX_BATCH inputs per request */
    int32_t timeout_ms;          /* whole-request timeout */
    int64_t pace_max_wait_ms;    /* longest sleep to stay under the interval budget */
    int64_t interval_default_ms; /* ten-secondly window when no header says otherwise */
    struct hubspot_tz zone;      /* the account's time zone (daily reset at midnight) */
    const char *zone_name;       /* borrowed: the "account_timezone" setting */
    struct hubspot_prop props[HUBSPOT_PROP_MAX]; /* from HUBSPOT_SETUP_TEXT */
    size_t n_props;
};

/* The config spec table of the plugin (NULL-name-terminated). */
extern const struct odsync_config_spec hubspot_config_spec[];

/* Read and check the instance's settings into cfg (zeroed by the caller). On failure calls
 * host->set_error naming the setting and returns ODSYNC_CONFIG (or ODSYNC_NOMEM); cfg is then
 * already freed. On success the caller frees with hubspot_config_free. */
int hubspot_config_load(const struct odsync_host *host, odsync_host_ctx *ctx,
                        struct hubspot_config *cfg);

/* Free what hubspot_config_load allocated; accepts a zeroed or freed cfg. */
void hubspot_config_free(struct hubspot_config *cfg);

#endif
