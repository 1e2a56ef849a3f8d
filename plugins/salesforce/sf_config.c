/*
 * sf_config.c: settings of the Salesforce connector, checked beyond what the host's spec
 * validation covers (which grant needs which setting, ranges, field names). See README.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf.h"

const struct odsync_config_spec sf_config_spec[] = {
    {"auth", ODSYNC_CFG_STRING, 0, "client_credentials",
     "OAuth 2.0 grant: client_credentials, jwt or refresh_token"},
    {"login_url", ODSYNC_CFG_URL, 0, "https://login.salesforce.com",
     "token endpoint host: your My Domain URL (client_credentials needs it), or "
     "https://test.salesforce.com for a sandbox"},
    {"client_id", ODSYNC_CFG_STRING, ODSYNC_CFG_REQUIRED, NULL,
     "consumer key of the connected app (the JWT's iss)"},
    {"client_secret", ODSYNC_CFG_STRING, ODSYNC_CFG_SECRET, NULL,
     "consumer secret (client_credentials; optional for refresh_token)"},
    {"username", ODSYNC_CFG_STRING, 0, NULL, "the pre-authorised user (jwt: the JWT's sub)"},
    {"private_key", ODSYNC_CFG_STRING, ODSYNC_CFG_SECRET, NULL,
     "PEM RSA private key whose certificate is uploaded to the connected app (jwt)"},
    {"jwt_audience", ODSYNC_CFG_STRING, 0, "https://login.salesforce.com",
     "the JWT's aud (https://test.salesforce.com for a sandbox)"},
    {"refresh_token", ODSYNC_CFG_STRING, ODSYNC_CFG_SECRET, NULL,
     "refresh token from a web-server flow (refresh_token)"},
    {"api_version", ODSYNC_CFG_STRING, 0, "62.0", "REST API version, 46.0 or later"},
    {"contact_external_id", ODSYNC_CFG_STRING, 0, "Odsync_Key__c",
     "External ID (unique) field on Contact holding the odsync key"},
    {"task_external_id", ODSYNC_CFG_STRING, 0, "Odsync_Key__c",
     "External ID (unique) field on Task (an Activity custom field) holding the odsync key"},
    {"task_owner_id", ODSYNC_CFG_STRING, 0, NULL,
     "User Id set as OwnerId of tasks (default: the API user)"},
    {"task_status_open", ODSYNC_CFG_STRING, 0, "Not Started", "Task Status for open tasks"},
    {"task_status_completed", ODSYNC_CFG_STRING, 0, "Completed", "Task Status for completed tasks"},
    {"limit_pause_s", ODSYNC_CFG_INT, 0, "3600",
     "pause after REQUEST_LIMIT_EXCEEDED (the org's 24-hour API allocation), 60..86400 s"},
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

int sf_field_name_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return n <= 80;
}

/* "NN.N" with NN >= 46 (sObject Collections upsert needs v46.0). */
static int api_version_ok(const char *v)
{
    long long major;
    char buf[8];
    const char *dot = v != NULL ? strchr(v, '.') : NULL;
    if (dot == NULL || (size_t)(dot - v) >= sizeof(buf) || dot[1] < '0' || dot[1] > '9' ||
        dot[2] != '\0')
        return 0;
    memcpy(buf, v, (size_t)(dot - v));
    buf[dot - v] = '\0';
    return parse_int(buf, 46, 999, &major);
}

/* 1 when s holds a byte that may not go into a header or a form value unencoded. */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* A secret that must be set and printable: NULL + set_error when not. */
static const char *need_secret(const struct odsync_host *host, odsync_host_ctx *ctx,
                               const char *name, const char *grant)
{
    const char *v = host->secret_get(ctx, name);
    if (v == NULL || v[0] == '\0') {
        host->set_error(ctx, "%s: required with auth \"%s\"", name, grant);
        return NULL;
    }
    return v;
}

int sf_config_load(const struct odsync_host *host, odsync_host_ctx *ctx, struct sf_config *cfg)
{
    long long n;
    int rc = ODSYNC_CONFIG;
    const char *auth = host->config_get(ctx, "auth");

    if (auth != NULL && strcmp(auth, "client_credentials") == 0) {
        cfg->auth = SF_AUTH_CLIENT_CREDENTIALS;
    } else if (auth != NULL && strcmp(auth, "jwt") == 0) {
        cfg->auth = SF_AUTH_JWT;
    } else if (auth != NULL && strcmp(auth, "refresh_token") == 0) {
        cfg->auth = SF_AUTH_REFRESH;
    } else {
        host->set_error(ctx, "auth: expected \"client_credentials\", \"jwt\" or "
                             "\"refresh_token\"");
        goto cleanup;
    }

    const char *login = host->config_get(ctx, "login_url");
    if (login == NULL || strpbrk(login, "?# \t\r\n") != NULL) {
        host->set_error(ctx, "login_url: expected an https:// URL without query or fragment");
        goto cleanup;
    }
    size_t len = strlen(login);
    while (len > 0 && login[len - 1] == '/')
        len--;
    const char *sep = strstr(login, "://");
    if (sep == NULL || (size_t)(sep + 3 - login) >= len) {
        host->set_error(ctx, "login_url: no host name");
        goto cleanup;
    }
    size_t tlen = len + sizeof("/services/oauth2/token");
    cfg->token_url = malloc(tlen);
    if (cfg->token_url == NULL) {
        rc = ODSYNC_NOMEM;
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    snprintf(cfg->token_url, tlen, "%.*s/services/oauth2/token", (int)len, login);

    cfg->client_id = host->config_get(ctx, "client_id");
    if (cfg->client_id == NULL || cfg->client_id[0] == '\0' || has_control(cfg->client_id)) {
        host->set_error(ctx, "client_id: expected the connected app's consumer key");
        goto cleanup;
    }
    cfg->client_secret = host->secret_get(ctx, "client_secret");
    cfg->username = host->config_get(ctx, "username");
    cfg->jwt_audience = host->config_get(ctx, "jwt_audience");
    switch (cfg->auth) {
    case SF_AUTH_CLIENT_CREDENTIALS:
        if (need_secret(host, ctx, "client_secret", "client_credentials") == NULL)
            goto cleanup;
        break;
    case SF_AUTH_JWT:
        cfg->private_key_pem = need_secret(host, ctx, "private_key", "jwt");
        if (cfg->private_key_pem == NULL)
            goto cleanup;
        if (cfg->username == NULL || cfg->username[0] == '\0' || has_control(cfg->username)) {
            host->set_error(ctx, "username: required with auth \"jwt\" (the JWT's sub)");
            goto cleanup;
        }
        if (cfg->jwt_audience == NULL || cfg->jwt_audience[0] == '\0') {
            host->set_error(ctx, "jwt_audience: empty");
            goto cleanup;
        }
        break;
    default:
        cfg->refresh_token = need_secret(host, ctx, "refresh_token", "refresh_token");
        if (cfg->refresh_token == NULL)
            goto cleanup;
        break;
    }

    cfg->api_version = host->config_get(ctx, "api_version");
    if (!api_version_ok(cfg->api_version)) {
        host->set_error(ctx, "api_version: expected \"NN.N\", 46.0 or later (sObject "
                             "Collections upsert), e.g. \"62.0\"");
        goto cleanup;
    }
    static const char *const fields[] = {"contact_external_id", "task_external_id"};
    for (size_t i = 0; i < 2; i++) {
        const char *f = host->config_get(ctx, fields[i]);
        if (!sf_field_name_ok(f)) {
            host->set_error(ctx, "%s: expected a field API name such as Odsync_Key__c", fields[i]);
            goto cleanup;
        }
        if (i == 0)
            cfg->contact_field = f;
        else
            cfg->task_field = f;
    }
    cfg->task_owner_id = host->config_get(ctx, "task_owner_id");
    if (cfg->task_owner_id != NULL &&
        ((strlen(cfg->task_owner_id) != 15 && strlen(cfg->task_owner_id) != 18) ||
         !sf_field_name_ok(cfg->task_owner_id))) {
        host->set_error(ctx, "task_owner_id: expected a 15- or 18-character User Id");
        goto cleanup;
    }
    cfg->status_open = host->config_get(ctx, "task_status_open");
    cfg->status_completed = host->config_get(ctx, "task_status_completed");
    if (cfg->status_open == NULL || cfg->status_open[0] == '\0' || cfg->status_completed == NULL ||
        cfg->status_completed[0] == '\0') {
        host->set_error(ctx, "task_status_open, task_status_completed: must not be empty");
        goto cleanup;
    }
    if (!parse_int(host->config_get(ctx, "limit_pause_s"), 60, 86400, &n)) {
        host->set_error(ctx, "limit_pause_s: expected an integer from 60 to 86400");
        goto cleanup;
    }
    cfg->limit_pause_ms = (int64_t)n * 1000;
    if (!parse_int(host->config_get(ctx, "timeout_ms"), 100, 600000, &n)) {
        host->set_error(ctx, "timeout_ms: expected an integer from 100 to 600000");
        goto cleanup;
    }
    cfg->timeout_ms = (int32_t)n;
    rc = ODSYNC_OK;
cleanup:
    if (rc != ODSYNC_OK)
        sf_config_free(cfg);
    return rc;
}

void sf_config_free(struct sf_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->token_url);
    memset(cfg, 0, sizeof(*cfg));
}
