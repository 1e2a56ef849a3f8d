/*
 * twilio_config.c: settings of the Twilio SMS connector. See twilio.h and README.md.
 */
#include "twilio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct odsync_config_spec twilio_config_spec[] = {
    {"base_url", ODSYNC_CFG_URL, 0, "https://api.twilio.com",
     "API root; the plugin posts to {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json"},
    {"account_sid", ODSYNC_CFG_STRING, ODSYNC_CFG_REQUIRED | ODSYNC_CFG_SECRET, NULL,
     "Account SID (AC + 32 hex digits), in the URL path and, with auth_token, the Basic user"},
    {"auth_token", ODSYNC_CFG_STRING, ODSYNC_CFG_SECRET, NULL,
     "Auth Token: Basic auth AccountSid:AuthToken unless an API key is set; odsync's webhook "
     "endpoints verify Twilio's signatures with it"},
    {"api_key_sid", ODSYNC_CFG_STRING, 0, NULL,
     "API key SID (SK + 32 hex digits): Basic auth ApiKeySid:ApiKeySecret instead of the token"},
    {"api_key_secret", ODSYNC_CFG_STRING, ODSYNC_CFG_SECRET, NULL, "the API key's secret"},
    {"messaging_service_sid", ODSYNC_CFG_STRING, 0, NULL,
     "Messaging Service SID (MG + 32 hex digits) to send through (or set from)"},
    {"from", ODSYNC_CFG_STRING, 0, NULL,
     "sender: an E.164 number of the account, a short code or an alphanumeric sender id "
     "(or set messaging_service_sid)"},
    {"status_callback_url", ODSYNC_CFG_URL, 0, NULL,
     "odsync's Twilio webhook prefix, e.g. https://odsync.example.com/webhooks/twilio; each "
     "message asks for status callbacks at {prefix}/{office}/status"},
    {"timeout_ms", ODSYNC_CFG_INT, 0, "30000", "whole-request timeout in ms, 100..600000"},
    {NULL, 0, 0, NULL, NULL},
};

/* 1 when c is a hex digit. */
static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int twilio_sid_valid(const char *s, const char *prefix)
{
    if (s == NULL || strlen(s) != TWILIO_SID_LEN || strncmp(s, prefix, 2) != 0)
        return 0;
    for (size_t i = 2; i < TWILIO_SID_LEN; i++)
        if (!is_hex(s[i]))
            return 0;
    return 1;
}

/* A sender Twilio accepts in From: E.164, a short code (5 or 6 digits) or an alphanumeric
 * sender id (1-11 letters, digits and spaces, at least one letter). */
static int sender_valid(const char *s)
{
    size_t n = strlen(s), digits = 0, letters = 0;
    if (s[0] == '+')
        return twilio_e164_valid(s);
    if (n == 0 || n > 11)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            letters++;
        else if (c != ' ')
            return 0;
    }
    return letters > 0 || (digits == n && (n == 5 || n == 6));
}

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

/* 1 when s holds a byte a header or form value must not carry (control characters, DEL). */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* A copy of URL setting `name` without trailing '/' into *out (caller frees with free()), or
 * NULL when unset. Refuses a query, fragment, spaces or a missing host name. Returns
 * ODSYNC_OK, ODSYNC_CONFIG (after set_error) or ODSYNC_NOMEM. */
static int url_setting(const struct odsync_host *host, odsync_host_ctx *ctx, const char *name,
                       char **out)
{
    const char *url = host->config_get(ctx, name);
    *out = NULL;
    if (url == NULL)
        return ODSYNC_OK;
    if (strpbrk(url, "?# \t\r\n") != NULL) {
        host->set_error(ctx,
                        "%s: expected an http:// or https:// URL without query, fragment "
                        "or spaces",
                        name);
        return ODSYNC_CONFIG;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    const char *sep = strstr(url, "://");
    if (sep == NULL || (size_t)(sep - url) + 3 >= len || sep[3] == '/') {
        host->set_error(ctx, "%s: no host name", name);
        return ODSYNC_CONFIG;
    }
    *out = malloc(len + 1);
    if (*out == NULL) {
        host->set_error(ctx, "out of memory");
        return ODSYNC_NOMEM;
    }
    memcpy(*out, url, len);
    (*out)[len] = '\0';
    return ODSYNC_OK;
}

/* The credentials: an API key pair (api_key_sid + api_key_secret) authenticates when set,
 * else auth_token. auth_token may accompany a key pair: odsync's webhook endpoints verify
 * Twilio's signatures with it. */
static int load_auth(const struct odsync_host *host, odsync_host_ctx *ctx,
                     struct twilio_config *cfg)
{
    const char *token = host->secret_get(ctx, "auth_token");
    const char *key_sid = host->config_get(ctx, "api_key_sid");
    const char *key_secret = host->secret_get(ctx, "api_key_secret");

    if (token != NULL && (token[0] == '\0' || has_control(token))) {
        host->set_error(ctx, "auth_token: empty or contains a control character");
        return ODSYNC_CONFIG;
    }
    if (key_sid == NULL && key_secret == NULL) {
        if (token == NULL) {
            host->set_error(ctx, "auth_token: required (or api_key_sid + api_key_secret)");
            return ODSYNC_CONFIG;
        }
        cfg->auth_user = cfg->account_sid;
        cfg->auth_secret = token;
        return ODSYNC_OK;
    }
    if (key_sid == NULL || key_secret == NULL) {
        host->set_error(ctx, "%s: an API key needs both api_key_sid and api_key_secret",
                        key_sid == NULL ? "api_key_sid" : "api_key_secret");
        return ODSYNC_CONFIG;
    }
    if (!twilio_sid_valid(key_sid, "SK")) {
        host->set_error(ctx, "api_key_sid: expected SK followed by 32 hex digits");
        return ODSYNC_CONFIG;
    }
    if (key_secret[0] == '\0' || has_control(key_secret)) {
        host->set_error(ctx, "api_key_secret: empty or contains a control character");
        return ODSYNC_CONFIG;
    }
    cfg->auth_user = key_sid;
    cfg->auth_secret = key_secret;
    cfg->api_key = 1;
    return ODSYNC_OK;
}

/* The sender: exactly one of from and messaging_service_sid. */
static int load_sender(const struct odsync_host *host, odsync_host_ctx *ctx,
                       struct twilio_config *cfg)
{
    cfg->from = host->config_get(ctx, "from");
    cfg->service_sid = host->config_get(ctx, "messaging_service_sid");
    if ((cfg->from == NULL) == (cfg->service_sid == NULL)) {
        host->set_error(ctx, "from: set exactly one of from and messaging_service_sid");
        return ODSYNC_CONFIG;
    }
    if (cfg->service_sid != NULL && !twilio_sid_valid(cfg->service_sid, "MG")) {
        host->set_error(ctx, "messaging_service_sid: expected MG followed by 32 hex digits");
        return ODSYNC_CONFIG;
    }
    if (cfg->from != NULL && !sender_valid(cfg->from)) {
        host->set_error(ctx, "from: expected an E.164 number (+15550100000), a 5-6 digit short "
                             "code or an alphanumeric sender id of at most 11 characters");
        return ODSYNC_CONFIG;
    }
    return ODSYNC_OK;
}

int twilio_config_load(const struct odsync_host *host, odsync_host_ctx *ctx,
                       struct twilio_config *cfg)
{
    long long n;
    int rc = url_setting(host, ctx, "base_url", &cfg->base_url);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = ODSYNC_CONFIG;
    if (cfg->base_url == NULL) {
        host->set_error(ctx, "base_url: required");
        goto cleanup;
    }
    cfg->account_sid = host->secret_get(ctx, "account_sid");
    if (!twilio_sid_valid(cfg->account_sid, "AC")) {
        host->set_error(ctx, "account_sid: expected AC followed by 32 hex digits");
        goto cleanup;
    }
    rc = load_auth(host, ctx, cfg);
    if (rc == ODSYNC_OK)
        rc = load_sender(host, ctx, cfg);
    if (rc == ODSYNC_OK)
        rc = url_setting(host, ctx, "status_callback_url", &cfg->status_callback_url);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = ODSYNC_CONFIG;
    if (!parse_int(host->config_get(ctx, "timeout_ms"), 100, 600000, &n)) {
        host->set_error(ctx, "timeout_ms: expected an integer from 100 to 600000");
        goto cleanup;
    }
    cfg->timeout_ms = (int32_t)n;
    rc = ODSYNC_OK;
cleanup:
    if (rc != ODSYNC_OK)
        twilio_config_free(cfg);
    return rc;
}

void twilio_config_free(struct twilio_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->base_url);
    free(cfg->status_callback_url);
    memset(cfg, 0, sizeof(*cfg));
}
