/*
 * subscriptions: the office's API Events subscriptions, kept as odsync needs them — one per
 * watched table (Patient, Appointment, AppointmentDeleted) with EndPointUrl
 * "{events.public_url}/api/od/events/{office}?table={T}", the office's Workstation and
 * events.polling_seconds. Ensuring is idempotent: it reads the subscriptions first
 * (GET /subscriptions), creates only the missing ones (POST) and corrects only a drifted
 * PollingSeconds (PUT); a second run changes nothing.
 */
#ifndef ODSYNC_SUBSCRIPTIONS_H
#define ODSYNC_SUBSCRIPTIONS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "od_client.h"

struct subs_report {
    int created, updated, unchanged;
};

/* Ensure the office's subscriptions. err explains a failure (no secrets). */
int subs_ensure(struct od_client *c, const struct config *cfg, const struct config_office *office,
                struct subs_report *rep, char *err, size_t errlen);

/* The office's subscriptions as Open Dental lists them; *list: caller cJSON_Deletes. */
int subs_list(struct od_client *c, cJSON **list, char *err, size_t errlen);

/* The EndPointUrl for office and table into out. */
int subs_endpoint(const struct config *cfg, const struct config_office *office, const char *table,
                  char *out, size_t len);

#endif
