/*
 * hubspot_config.c: settings of the HubSpot connector. See hubspot_config.h and README.md.
 */
#include "hubspot_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct odsync_config_spec hubspot_config_spec[] = {
    {"token", ODSYNC_CFG_STRING, ODSYNC_CFG_REQUIRED | ODSYNC_CFG_SECRET, NULL,
     "private-app (or OAuth) access token, sent as \"Authorization: Bearer <token>\""},
    {"base_url", ODSYNC_CFG_URL, 0, "https://api.hubapi.com", "API root (no query string)"},
    {"id_property", ODSYNC_CFG_STRING, 0, HUBSPOT_KEY_PROP,
     "unique contact property holding odsync's key (the upsert idProperty)"},
    {"create_properties", ODSYNC_CFG_BOOL, 0, "false",
     "create the missing custom properties (see setup) once, before the first send"},
    {"account_timezone", ODSYNC_CFG_STRING, 0, "America/New_York",
     "the HubSpot account's time zone (IANA name or POSIX TZ rule): the daily limit resets "
     "at its midnight"},
    {"batch_size", ODSYNC_CFG_INT, 0, "100", "inputs per batch request, 1..100"},
    {"pace_max_wait_ms", ODSYNC_CFG_INT, 0, "10000",
     "longest wait before a request to stay under the ten-secondly budget, 0..60000; a longer "
     "one is reported RATE_LIMITED"},
    {"interval_default_ms", ODSYNC_CFG_INT, 0, "10000",
     "rolling-window length used until HubSpot's headers give it, 100..600000"},
    {"task_owner_id", ODSYNC_CFG_STRING, 0, NULL, "hubspot_owner_id given to created tasks"},
    {"timeout_ms", ODSYNC_CFG_INT, 0, "30000", "whole-request timeout in ms, 100..600000"},
    {NULL, 0, 0, NULL, NULL},
};

/* Parse all of s as a decimal integer in [min, max]. Returns 1 on success. */
static int parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return 0;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

/* 1 when s is a HubSpot property name: [a-z][a-z0-9_]*, at most 100 bytes. */
static int valid_prop_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= HUBSPOT_NAME_MAX || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* 1 when s holds a byte a header value cannot carry (control characters, DEL). */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static const char *or_unset(const char *s)
{
    return s != NULL ? s : "(unset)";
}

/* Copy the next column of line (columns are separated by two or more spaces) into out.
 * Advances *p. Returns 0, or -1 when there is none or it does not fit. */
static int next_column(const char **p, char *out, size_t out_len)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    const char *start = s;
    while (*s != '\0' && *s != '\n' && !(s[0] == ' ' && s[1] == ' ') &&
           !(s[0] == ' ' && (s[1] == '\n' || s[1] == '\0')))
        s++;
    size_t n = (size_t)(s - start);
    if (n == 0 || n >= out_len)
        return -1;
    memcpy(out, start, n);
    out[n] = '\0';
    *p = s;
    return 0;
}

/* Parse the table rows of HUBSPOT_SETUP_TEXT (lines starting "contacts " or "tasks ") into
 * cfg->props, renaming odsync_key to id_property. Returns 0, or -1 on a malformed row (a
 * build mistake, reported as CONFIG). */
static int parse_props(struct hubspot_config *cfg)
{
    const char *line = HUBSPOT_SETUP_TEXT;
    char uniq[8];
    cfg->n_props = 0;
    while (*line != '\0') {
        const char *eol = strchr(line, '\n');
        if (strncmp(line, "contacts ", 9) == 0 || strncmp(line, "tasks ", 6) == 0) {
            struct hubspot_prop *pr = &cfg->props[cfg->n_props];
            const char *p = line;
            if (cfg->n_props >= HUBSPOT_PROP_MAX ||
                next_column(&p, pr->object, sizeof(pr->object)) != 0 ||
                next_column(&p, pr->name, sizeof(pr->name)) != 0 ||
                next_column(&p, pr->label, sizeof(pr->label)) != 0 ||
                next_column(&p, pr->type, sizeof(pr->type)) != 0 ||
                next_column(&p, pr->field_type, sizeof(pr->field_type)) != 0 ||
                next_column(&p, pr->group, sizeof(pr->group)) != 0 ||
                next_column(&p, uniq, sizeof(uniq)) != 0)
                return -1;
            pr->unique = strcmp(uniq, "true") == 0;
            if (strcmp(pr->name, HUBSPOT_KEY_PROP) == 0)
                snprintf(pr->name, sizeof(pr->name), "%s", cfg->id_property);
            cfg->n_props++;
        }
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    return cfg->n_props > 0 ? 0 : -1;
}

int hubspot_config_load(const struct odsync_host *host, odsync_host_ctx *ctx,
                        struct hubspot_config *cfg)
{
    char err[256];
    long long n;
    int rc = ODSYNC_CONFIG;

    const char *url = host->config_get(ctx, "base_url");
    if (url == NULL || strpbrk(url, "?# \t\r\n") != NULL) {
        host->set_error(ctx, "base_url: expected an http:// or https:// URL without query, "
                             "fragment or spaces");
        goto cleanup;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    cfg->base_url = malloc(len + 1);
    if (cfg->base_url == NULL) {
        rc = ODSYNC_NOMEM;
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    memcpy(cfg->base_url, url, len);
    cfg->base_url[len] = '\0';
    const char *sep = strstr(cfg->base_url, "://");
    if (sep == NULL || sep[3] == '\0' || sep[3] == '/') {
        host->set_error(ctx, "base_url: no host name");
        goto cleanup;
    }

    cfg->token = host->secret_get(ctx, "token");
    if (cfg->token == NULL || cfg->token[0] == '\0') {
        host->set_error(ctx, "token: empty");
        goto cleanup;
    }
    if (has_control(cfg->token)) {
        host->set_error(ctx, "token: contains a control character or line break");
        goto cleanup;
    }

    cfg->id_property = host->config_get(ctx, "id_property");
    if (!valid_prop_name(cfg->id_property)) {
        host->set_error(ctx,
                        "id_property: expected a HubSpot property name ([a-z][a-z0-9_]*, at "
                        "most 100 bytes), got \"%s\"",
                        or_unset(cfg->id_property));
        goto cleanup;
    }

    const char *b = host->config_get(ctx, "create_properties");
    cfg->create_properties = b != NULL && strcmp(b, "true") == 0;

    cfg->owner_id = host->config_get(ctx, "task_owner_id");
    if (cfg->owner_id != NULL && !parse_int(cfg->owner_id, 1, INT64_MAX, &n)) {
        host->set_error(ctx, "task_owner_id: expected a HubSpot owner id (digits), got \"%s\"",
                        cfg->owner_id);
        goto cleanup;
    }

    cfg->zone_name = host->config_get(ctx, "account_timezone");
    if (hubspot_tz_load(cfg->zone_name, &cfg->zone, err, sizeof(err)) != ODSYNC_OK) {
        host->set_error(ctx, "account_timezone: %s", err);
        goto cleanup;
    }

    if (!parse_int(host->config_get(ctx, "batch_size"), 1, HUBSPOT_MAX_BATCH, &n)) {
        host->set_error(ctx, "batch_size: expected an integer from 1 to %d, got %s",
                        HUBSPOT_MAX_BATCH, or_unset(host->config_get(ctx, "batch_size")));
        goto cleanup;
    }
    cfg->batch_size = (size_t)n;

    if (!parse_int(host->config_get(ctx, "pace_max_wait_ms"), 0, 60000, &n)) {
        host->set_error(ctx, "pace_max_wait_ms: expected an integer from 0 to 60000, got %s",
                        or_unset(host->config_get(ctx, "pace_max_wait_ms")));
        goto cleanup;
    }
    cfg->pace_max_wait_ms = n;

    if (!parse_int(host->config_get(ctx, "interval_default_ms"), 100, 600000, &n)) {
        host->set_error(ctx, "interval_default_ms: expected an integer from 100 to 600000, got %s",
                        or_unset(host->config_get(ctx, "interval_default_ms")));
        goto cleanup;
    }
    cfg->interval_default_ms = n;

    if (!parse_int(host->config_get(ctx, "timeout_ms"), 100, 600000, &n)) {
        host->set_error(ctx, "timeout_ms: expected an integer from 100 to 600000, got %s",
                        or_unset(host->config_get(ctx, "timeout_ms")));
        goto cleanup;
    }
    cfg->timeout_ms = (int32_t)n;

    if (parse_props(cfg) != 0) {
        rc = ODSYNC_INTERNAL;
        host->set_error(ctx, "internal: the property table in the setup text is malformed");
        goto cleanup;
    }
    rc = ODSYNC_OK;
cleanup:
    if (rc != ODSYNC_OK)
        hubspot_config_free(cfg);
    return rc;
}

void hubspot_config_free(struct hubspot_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->base_url);
    memset(cfg, 0, sizeof(*cfg));
}
