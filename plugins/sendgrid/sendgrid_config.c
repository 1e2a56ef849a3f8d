/*
 * sendgrid_config.c: settings of the SendGrid connector. See sendgrid_config.h and README.md.
 */
#include "sendgrid_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct odsync_config_spec sg_config_spec[] = {
    {"api_key", ODSYNC_CFG_STRING, ODSYNC_CFG_REQUIRED | ODSYNC_CFG_SECRET, NULL,
     "SendGrid API key (Mail Send; Suppressions read access for check_suppressions)"},
    {"from_email", ODSYNC_CFG_STRING, ODSYNC_CFG_REQUIRED, NULL,
     "sender address, authenticated in SendGrid (domain authentication or single sender)"},
    {"from_name", ODSYNC_CFG_STRING, 0, NULL, "sender display name, e.g. the practice's name"},
    {"reply_to", ODSYNC_CFG_STRING, 0, NULL, "reply-to address (e.g. the front desk)"},
    {"base_url", ODSYNC_CFG_URL, 0, "https://api.sendgrid.com",
     "API root (https://api.eu.sendgrid.com for EU regional subusers)"},
    {"asm_group_id", ODSYNC_CFG_INT, 0, "0",
     "unsubscribe group for campaigns not listed in asm_groups (0 = none)"},
    {"asm_groups", ODSYNC_CFG_STRING, 0, NULL,
     "unsubscribe group per campaign: \"recall=123,reactivation=124,review=125\""},
    {"groups_to_display", ODSYNC_CFG_STRING, 0, NULL,
     "group ids shown on SendGrid's preference page: \"123,124,125\" (at most 25)"},
    {"templates", ODSYNC_CFG_STRING, 0, NULL,
     "dynamic template per campaign when a message has none: \"recall=d-...,review=d-...\""},
    {"list_unsubscribe_url", ODSYNC_CFG_STRING, 0, NULL,
     "RFC 8058 one-click URL (https), placeholders {office} {key} {campaign} {group}"},
    {"list_unsubscribe_mailto", ODSYNC_CFG_STRING, 0, NULL,
     "mailto address added to List-Unsubscribe beside the URL"},
    {"transactional_campaigns", ODSYNC_CFG_STRING, 0, NULL,
     "campaigns sent without List-Unsubscribe headers: \"confirmation,...\" (default none)"},
    {"check_suppressions", ODSYNC_CFG_BOOL, 0, "false",
     "read SendGrid's suppression lists before each batch; suppressed messages are OPTED_OUT"},
    {"batch_size", ODSYNC_CFG_INT, 0, "1000", "personalizations per mail send request, 1..1000"},
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

/* 1 when s holds a byte a header value cannot carry (control characters, DEL). */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

int sg_valid_address(const char *s)
{
    const char *at, *dot;
    if (s == NULL || *s == '\0' || strlen(s) > 320 || has_control(s))
        return 0;
    if (strpbrk(s, " \"<>,;()[]\\") != NULL)
        return 0;
    at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
        return 0;
    dot = strrchr(at + 1, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0';
}

/* A campaign name: [a-z0-9_-]{1,64}. */
static int valid_campaign(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* A copy of s[0..n) without leading and trailing spaces. Caller frees with free(). */
static char *trimmed(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* Split text at ',' into trimmed, non-empty items. *items: caller frees each and the array
 * with free(). Returns ODSYNC_OK, ODSYNC_NOMEM, or ODSYNC_PARSE on an empty item. */
static int split_list(const char *text, char ***items, size_t *count)
{
    char **out = NULL;
    size_t n = 0, cap = 0;
    int rc = ODSYNC_NOMEM;
    const char *p = text;

    *items = NULL;
    *count = 0;
    if (text == NULL || strspn(text, " \t") == strlen(text))
        return ODSYNC_OK;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **grown = realloc(out, ncap * sizeof(*out));
            if (grown == NULL)
                goto cleanup;
            out = grown;
            cap = ncap;
        }
        out[n] = trimmed(p, len);
        if (out[n] == NULL)
            goto cleanup;
        n++;
        if (out[n - 1][0] == '\0') {
            rc = ODSYNC_PARSE;
            goto cleanup;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *items = out;
    *count = n;
    out = NULL;
    rc = ODSYNC_OK;
cleanup:
    for (size_t i = 0; out != NULL && i < n; i++)
        free(out[i]);
    free(out);
    return rc;
}

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; items != NULL && i < n; i++)
        free(items[i]);
    free(items);
}

/* A group id: 1..2^31-1. */
static int valid_group(const char *s, long long *out)
{
    return parse_int(s, 1, 2147483647LL, out);
}

/* A dynamic template id: "d-" and 1..64 letters or digits. */
static int valid_template(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 66 || strncmp(s, "d-", 2) != 0)
        return 0;
    for (size_t i = 2; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Parse a "campaign=value,..." setting into *pairs; groups = 1 checks values as group ids,
 * else as template ids. Reports through set_error. */
static int load_map(const struct odsync_host *host, odsync_host_ctx *ctx, const char *name,
                    int groups, struct sg_pair **pairs, size_t *count)
{
    char **items = NULL;
    size_t n = 0;
    long long id;
    int rc = split_list(host->config_get(ctx, name), &items, &n);

    *pairs = NULL;
    *count = 0;
    if (rc == ODSYNC_PARSE) {
        host->set_error(ctx, "%s: empty entry (expected \"campaign=value,...\")", name);
        rc = ODSYNC_CONFIG;
        goto cleanup;
    }
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = ODSYNC_NOMEM;
    if (n > 0 && (*pairs = calloc(n, sizeof(**pairs))) == NULL)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(items[i], '=');
        rc = ODSYNC_CONFIG;
        if (eq == NULL || !valid_campaign(items[i], (size_t)(eq - items[i]))) {
            host->set_error(ctx,
                            "%s: entry %zu: expected \"campaign=value\" with a campaign name of "
                            "a-z, 0-9, _ and -",
                            name, i + 1);
            goto cleanup;
        }
        char *campaign = trimmed(items[i], (size_t)(eq - items[i]));
        char *value = trimmed(eq + 1, strlen(eq + 1));
        (*pairs)[i].campaign = campaign;
        (*pairs)[i].value = value;
        *count = i + 1;
        if (campaign == NULL || value == NULL) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        if (groups ? !valid_group(value, &id) : !valid_template(value)) {
            host->set_error(ctx, "%s: %s: expected %s, got \"%s\"", name, campaign,
                            groups ? "a group id (a positive integer)"
                                   : "a dynamic template id (\"d-\" and letters or digits)",
                            value);
            goto cleanup;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp((*pairs)[j].campaign, campaign) == 0) {
                host->set_error(ctx, "%s: campaign \"%s\" listed twice", name, campaign);
                goto cleanup;
            }
        }
    }
    rc = ODSYNC_OK;
cleanup:
    free_list(items, n);
    if (rc == ODSYNC_NOMEM)
        host->set_error(ctx, "out of memory");
    return rc;
}

/* Check the one-click URL template: https, no spaces or characters that would break the
 * header, only the known placeholders. */
static int valid_unsub_url(const char *u)
{
    static const char *const names[] = {"{office}", "{key}", "{campaign}", "{group}"};
    if (strncmp(u, "https://", 8) != 0 || u[8] == '\0' || u[8] == '/' || has_control(u) ||
        strpbrk(u, " <>,\"") != NULL)
        return 0;
    for (const char *p = strchr(u, '{'); p != NULL; p = strchr(p + 1, '{')) {
        int known = 0;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            known |= strncmp(p, names[i], strlen(names[i])) == 0;
        if (!known)
            return 0;
    }
    size_t open = 0, close = 0; /* every '}' closes one of the placeholders above */
    for (const char *p = u; *p; p++) {
        open += *p == '{';
        close += *p == '}';
    }
    return open == close;
}

/* s, or "(unset)" for messages. */
static const char *or_unset(const char *s)
{
    return s != NULL ? s : "(unset)";
}

/* base_url without trailing '/', checked. */
static int load_base_url(const struct odsync_host *host, odsync_host_ctx *ctx,
                         struct sg_config *cfg)
{
    const char *url = host->config_get(ctx, "base_url");
    if (url == NULL || strpbrk(url, "?# \t\r\n") != NULL) {
        host->set_error(ctx, "base_url: expected an http:// or https:// URL without query, "
                             "fragment or spaces");
        return ODSYNC_CONFIG;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    cfg->base_url = malloc(len + 1);
    if (cfg->base_url == NULL) {
        host->set_error(ctx, "out of memory");
        return ODSYNC_NOMEM;
    }
    memcpy(cfg->base_url, url, len);
    cfg->base_url[len] = '\0';
    const char *sep = strstr(cfg->base_url, "://");
    if (sep == NULL || sep[3] == '\0' || sep[3] == '/') {
        host->set_error(ctx, "base_url: no host name");
        return ODSYNC_CONFIG;
    }
    return ODSYNC_OK;
}

/* The addresses and names: from_email, from_name, reply_to, list_unsubscribe_*. */
static int load_addresses(const struct odsync_host *host, odsync_host_ctx *ctx,
                          struct sg_config *cfg)
{
    cfg->from_email = host->config_get(ctx, "from_email");
    if (!sg_valid_address(cfg->from_email)) {
        host->set_error(ctx, "from_email: expected one email address, got \"%s\"",
                        or_unset(cfg->from_email));
        return ODSYNC_CONFIG;
    }
    cfg->from_name = host->config_get(ctx, "from_name");
    if (cfg->from_name != NULL && (cfg->from_name[0] == '\0' || has_control(cfg->from_name))) {
        host->set_error(ctx, "from_name: empty or contains a control character");
        return ODSYNC_CONFIG;
    }
    cfg->reply_to = host->config_get(ctx, "reply_to");
    if (cfg->reply_to != NULL && !sg_valid_address(cfg->reply_to)) {
        host->set_error(ctx, "reply_to: expected one email address, got \"%s\"", cfg->reply_to);
        return ODSYNC_CONFIG;
    }
    cfg->unsub_url = host->config_get(ctx, "list_unsubscribe_url");
    if (cfg->unsub_url != NULL && !valid_unsub_url(cfg->unsub_url)) {
        host->set_error(ctx,
                        "list_unsubscribe_url: expected an https:// URL without spaces, using "
                        "only the placeholders {office} {key} {campaign} {group}, got \"%s\"",
                        cfg->unsub_url);
        return ODSYNC_CONFIG;
    }
    cfg->unsub_mailto = host->config_get(ctx, "list_unsubscribe_mailto");
    if (cfg->unsub_mailto != NULL && !sg_valid_address(cfg->unsub_mailto)) {
        host->set_error(ctx, "list_unsubscribe_mailto: expected one email address, got \"%s\"",
                        cfg->unsub_mailto);
        return ODSYNC_CONFIG;
    }
    if (cfg->unsub_mailto != NULL && cfg->unsub_url == NULL) {
        host->set_error(ctx, "list_unsubscribe_mailto: needs list_unsubscribe_url (RFC 8058 "
                             "one-click needs an https URL)");
        return ODSYNC_CONFIG;
    }
    return ODSYNC_OK;
}

/* asm_group_id, asm_groups, groups_to_display. */
static int load_groups(const struct odsync_host *host, odsync_host_ctx *ctx, struct sg_config *cfg)
{
    long long n;
    char **items = NULL;
    size_t count = 0;
    int rc;

    if (!parse_int(host->config_get(ctx, "asm_group_id"), 0, 2147483647LL, &n)) {
        host->set_error(ctx, "asm_group_id: expected a group id (0 = none), got %s",
                        or_unset(host->config_get(ctx, "asm_group_id")));
        return ODSYNC_CONFIG;
    }
    cfg->asm_default = n;
    rc = load_map(host, ctx, "asm_groups", 1, &cfg->groups, &cfg->n_groups);
    if (rc != ODSYNC_OK)
        return rc;
    rc = split_list(host->config_get(ctx, "groups_to_display"), &items, &count);
    if (rc == ODSYNC_NOMEM) {
        host->set_error(ctx, "out of memory");
        goto cleanup;
    }
    rc = ODSYNC_CONFIG;
    if (count > SG_MAX_GROUPS_TO_DISPLAY) {
        host->set_error(ctx, "groups_to_display: at most %d groups", SG_MAX_GROUPS_TO_DISPLAY);
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++) {
        if (!valid_group(items[i], &n)) {
            host->set_error(ctx, "groups_to_display: expected group ids, got \"%s\"", items[i]);
            goto cleanup;
        }
        cfg->display[i] = n;
    }
    cfg->n_display = count;
    rc = ODSYNC_OK;
cleanup:
    free_list(items, count);
    return rc;
}

int sg_config_load(const struct odsync_host *host, odsync_host_ctx *ctx, struct sg_config *cfg)
{
    long long n;
    int rc = load_base_url(host, ctx, cfg);
    if (rc != ODSYNC_OK)
        goto cleanup;

    rc = ODSYNC_CONFIG;
    cfg->api_key = host->secret_get(ctx, "api_key");
    if (cfg->api_key == NULL || cfg->api_key[0] == '\0') {
        host->set_error(ctx, "api_key: empty");
        goto cleanup;
    }
    if (has_control(cfg->api_key)) {
        host->set_error(ctx, "api_key: contains a control character or line break");
        goto cleanup;
    }
    rc = load_addresses(host, ctx, cfg);
    if (rc == ODSYNC_OK)
        rc = load_groups(host, ctx, cfg);
    if (rc == ODSYNC_OK)
        rc = load_map(host, ctx, "templates", 0, &cfg->templates, &cfg->n_templates);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = split_list(host->config_get(ctx, "transactional_campaigns"), &cfg->transactional,
                    &cfg->n_transactional);
    if (rc != ODSYNC_OK) {
        host->set_error(ctx, rc == ODSYNC_NOMEM ? "out of memory"
                                                : "transactional_campaigns: empty entry");
        rc = rc == ODSYNC_NOMEM ? rc : ODSYNC_CONFIG;
        goto cleanup;
    }
    rc = ODSYNC_CONFIG;
    for (size_t i = 0; i < cfg->n_transactional; i++) {
        if (!valid_campaign(cfg->transactional[i], strlen(cfg->transactional[i]))) {
            host->set_error(ctx, "transactional_campaigns: \"%s\" is not a campaign name",
                            cfg->transactional[i]);
            goto cleanup;
        }
    }
    const char *b = host->config_get(ctx, "check_suppressions");
    cfg->check_suppressions = b != NULL && strcmp(b, "true") == 0;
    if (!parse_int(host->config_get(ctx, "batch_size"), 1, SG_MAX_PERSONALIZATIONS, &n)) {
        host->set_error(ctx, "batch_size: expected an integer from 1 to %d, got %s",
                        SG_MAX_PERSONALIZATIONS, or_unset(host->config_get(ctx, "batch_size")));
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
        sg_config_free(cfg);
    return rc;
}

void sg_config_free(struct sg_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->base_url);
    for (size_t i = 0; cfg->groups != NULL && i < cfg->n_groups; i++) {
        free(cfg->groups[i].campaign);
        free(cfg->groups[i].value);
    }
    free(cfg->groups);
    for (size_t i = 0; cfg->templates != NULL && i < cfg->n_templates; i++) {
        free(cfg->templates[i].campaign);
        free(cfg->templates[i].value);
    }
    free(cfg->templates);
    free_list(cfg->transactional, cfg->n_transactional);
    memset(cfg, 0, sizeof(*cfg));
}

int64_t sg_config_group(const struct sg_config *cfg, const char *campaign)
{
    long long id;
    for (size_t i = 0; campaign != NULL && i < cfg->n_groups; i++)
        if (strcmp(cfg->groups[i].campaign, campaign) == 0 &&
            valid_group(cfg->groups[i].value, &id))
            return id;
    return cfg->asm_default;
}

const char *sg_config_template(const struct sg_config *cfg, const char *campaign)
{
    for (size_t i = 0; campaign != NULL && i < cfg->n_templates; i++)
        if (strcmp(cfg->templates[i].campaign, campaign) == 0)
            return cfg->templates[i].value;
    return NULL;
}

int sg_config_transactional(const struct sg_config *cfg, const char *campaign)
{
    for (size_t i = 0; campaign != NULL && i < cfg->n_transactional; i++)
        if (strcmp(cfg->transactional[i], campaign) == 0)
            return 1;
    return 0;
}
