/*
 * subscriptions.c: idempotent API Events subscriptions.
 */
#include "subscriptions.h"

#include <string.h>

#include "log.h"
#include "util.h"

#define URL_LEN 1024

static const char *const tables[] = {"Patient", "Appointment", "AppointmentDeleted"};

int subs_endpoint(const struct config *cfg, const struct config_office *office, const char *table,
                  char *out, size_t len)
{
    const char *base = cfg->events.public_url;
    size_t n = base ? strlen(base) : 0;
    if (base == NULL)
        return ODSYNC_CONFIG;
    while (n > 0 && base[n - 1] == '/')
        n--;
    return util_fmt(out, len, "%.*s/api/od/events/%s?table=%s", (int)n, base, office->id, table);
}

int subs_list(struct od_client *c, cJSON **list, char *err, size_t errlen)
{
    int rc = od_client_get(c, "/subscriptions", list, err, errlen);
    if (rc == ODSYNC_OK && !cJSON_IsArray(*list)) {
        util_fmt(err, errlen, "GET /subscriptions: expected a JSON array");
        cJSON_Delete(*list);
        *list = NULL;
        rc = ODSYNC_PARSE;
    }
    return rc;
}

/* The existing subscription for (url, table, workstation), or NULL. Borrowed from list. */
static const cJSON *find_sub(const cJSON *list, const char *url, const char *table,
                             const char *workstation)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, list)
    {
        const cJSON *u = cJSON_GetObjectItem(s, "EndPointUrl");
        const cJSON *t = cJSON_GetObjectItem(s, "WatchTable");
        const cJSON *w = cJSON_GetObjectItem(s, "Workstation");
        if (cJSON_IsString(u) && strcmp(u->valuestring, url) == 0 && cJSON_IsString(t) &&
            strcmp(t->valuestring, table) == 0 && cJSON_IsString(w) &&
            strcmp(w->valuestring, workstation) == 0)
            return s;
    }
    return NULL;
}

/* Create or correct the subscription of one table. */
static int ensure_one(struct od_client *c, const struct config *cfg,
                      const struct config_office *office, const cJSON *list, const char *table,
                      struct subs_report *rep, char *err, size_t errlen)
{
    const char *ws = office->od_workstation ? office->od_workstation : "";
    char url[URL_LEN], path[64], *body = NULL;
    const cJSON *have, *poll;
    int64_t secs;
    cJSON *req = NULL, *resp = NULL;
    int rc;

    rc = subs_endpoint(cfg, office, table, url, sizeof(url));
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "events.public_url is not set");
        return ODSYNC_CONFIG;
    }
    have = find_sub(list, url, table, ws);
    poll = have ? cJSON_GetObjectItem(have, "PollingSeconds") : NULL;
    if (have != NULL && cJSON_IsNumber(poll) && util_double_i64(poll->valuedouble, &secs) &&
        secs == cfg->events.polling_seconds) {
        rep->unchanged++;
        return ODSYNC_OK;
    }
    req = cJSON_CreateObject();
    if (req == NULL)
        return ODSYNC_NOMEM;
    if (have == NULL) {
        cJSON_AddStringToObject(req, "EndPointUrl", url);
        cJSON_AddStringToObject(req, "Workstation", ws);
        cJSON_AddStringToObject(req, "WatchTable", table);
    }
    cJSON_AddNumberToObject(req, "PollingSeconds", (double)cfg->events.polling_seconds);
    body = cJSON_PrintUnformatted(req);
    if (body == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    if (have == NULL) {
        rc = od_client_post(c, "/subscriptions", body, &resp, err, errlen);
        rep->created += rc == ODSYNC_OK;
    } else {
        util_fmt(path, sizeof(path), "/subscriptions/%lld",
                 (long long)cJSON_GetObjectItem(have, "SubscriptionNum")->valuedouble);
        rc = od_client_put(c, path, body, &resp, err, errlen);
        rep->updated += rc == ODSYNC_OK;
    }
cleanup:
    cJSON_free(body);
    cJSON_Delete(req);
    cJSON_Delete(resp);
    return rc;
}

int subs_ensure(struct od_client *c, const struct config *cfg, const struct config_office *office,
                struct subs_report *rep, char *err, size_t errlen)
{
    cJSON *list = NULL;
    size_t i;
    int rc;

    memset(rep, 0, sizeof(*rep));
    if (office->od_workstation == NULL)
        log_warn("events",
                 "office %s: no opendental.workstation: every running OpenDental.exe will send "
                 "the same events (duplicates are harmless, but wasteful)",
                 office->id);
    rc = subs_list(c, &list, err, errlen);
    for (i = 0; rc == ODSYNC_OK && i < UTIL_ARRAY_LEN(tables); i++)
        rc = ensure_one(c, cfg, office, list, tables[i], rep, err, errlen);
    cJSON_Delete(list);
    return rc;
}
