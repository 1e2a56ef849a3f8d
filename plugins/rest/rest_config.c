/*
 * rest_config.c: settings of the generic REST connector. See rest_config.h and README.md.
 */
#include "rest_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct odsync_config_spec rest_config_spec[] = {
    {"base_url", ODSYNC_CFG_URL, ODSYNC_CFG_REQUIRED, NULL,
     "API root, e.g. https://crm.example.com/api/v1 (no query string)"},
    {"token", ODSYNC_CFG_STRING, ODSYNC_CFG_REQUIRED | ODSYNC_CFG_SECRET, NULL,
     "bearer token sent as \"Authorization: Bearer <token>\""},
    {"contact_path", ODSYNC_CFG_STRING, 0, "contacts", "collection path for contact records"},
    {"task_path", ODSYNC_CFG_STRING, 0, "tasks", "collection path for task records"},
    {"sms_path", ODSYNC_CFG_STRING, 0, "messages", "collection path for SMS message records"},
    {"email_path", ODSYNC_CFG_STRING, 0, "messages", "collection path for email message records"},
    {"batch", ODSYNC_CFG_BOOL, 0, "false",
     "true: POST {base_url}/{path}/batch with a JSON array; false: one PUT per record"},
    {"batch_size", ODSYNC_CFG_INT, 0, "100", "records per batch request, 1..100"},
    {"timeout_ms", ODSYNC_CFG_INT, 0, "30000", "whole-request timeout in ms, 100..600000"},
    {NULL, 0, 0, NULL, NULL},
};

static const char *const path_settings[REST_ENTITY_COUNT] = {"contact_path", "task_path",
                                                             "sms_path", "email_path"};

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

/* 1 when c is an RFC 3986 unreserved character. */
static int unreserved(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* A collection path: one or more '/'-separated segments of unreserved characters, no empty,
 * "." or ".." segment, no leading or trailing '/'. */
static int valid_path(const char *p)
{
    const char *seg = p;
    if (p == NULL || *p == '\0')
        return 0;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (*c == '\0')
                return 1;
            seg = c + 1;
        } else if (!unreserved(*c)) {
            return 0;
        }
    }
}

/* 1 when s holds a byte a header value cannot carry (control characters, DEL). */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* s, or "(unset)" for messages. */
static const char *or_unset(const char *s)
{
    return s != NULL ? s : "(unset)";
}

int rest_config_load(const struct odsync_host *host, odsync_host_ctx *ctx, struct rest_config *cfg)
{
    long long n;
    int rc = ODSYNC_CONFIG;

    /* base_url: the host checked the scheme; refuse what would make URLs ambiguous. */
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
        /* Never echo the value. */
        host->set_error(ctx, "token: contains a control character or line break");
        goto cleanup;
    }

    for (int e = 0; e < REST_ENTITY_COUNT; e++) {
        cfg->paths[e] = host->config_get(ctx, path_settings[e]);
        if (!valid_path(cfg->paths[e])) {
            host->set_error(ctx,
                            "%s: expected a path like \"contacts\" or \"v2/contacts\" "
                            "(letters, digits, -._~ and inner '/'), got \"%s\"",
                            path_settings[e], cfg->paths[e] ? cfg->paths[e] : "");
            goto cleanup;
        }
    }

    const char *b = host->config_get(ctx, "batch");
    cfg->batch = b != NULL && strcmp(b, "true") == 0;

    if (!parse_int(host->config_get(ctx, "batch_size"), 1, REST_MAX_BATCH, &n)) {
        host->set_error(ctx, "batch_size: expected an integer from 1 to %d, got %s", REST_MAX_BATCH,
                        or_unset(host->config_get(ctx, "batch_size")));
        goto cleanup;
    }
    cfg->batch_size = (size_t)n;

    if (!parse_int(host->config_get(ctx, "timeout_ms"), 100, 600000, &n)) {
        host->set_error(ctx, "timeout_ms: expected an integer from 100 to 600000, got %s",
                        or_unset(host->config_get(ctx, "timeout_ms")));
        goto cleanup;
    }
    cfg->timeout_ms = (int32_t)n;
    rc = ODSYNC_OK;
cleanup:
    if (rc != ODSYNC_OK)
        rest_config_free(cfg);
    return rc;
}

void rest_config_free(struct rest_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->base_url);
    memset(cfg, 0, sizeof(*cfg));
}
