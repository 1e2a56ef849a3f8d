/*
 * sendgrid_config: the settings of the SendGrid connector, read through the host's config and
 * secret services and checked beyond the host's spec validation (address syntax, the
 * campaign maps, the one-click unsubscribe URL template, ranges). Kept apart from the request
 * logic in sendgrid.c. README.md documents every setting.
 */
#ifndef ODSYNC_SENDGRID_CONFIG_H
#define ODSYNC_SENDGRID_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <odsync/sink.h>

#define SG_MAX_PERSONALIZATIONS  1000 /* SendGrid's maxItems for personalizations */
#define SG_MAX_GROUPS_TO_DISPLAY 25

/* One "campaign=value" entry of a map setting. Both strings owned by the config. */
struct sg_pair {
    char *campaign;
    char *value;
};

struct sg_config {
    char *base_url;         /* owned; no trailing '/' */
    const char *api_key;    /* borrowed from secret_get, valid until destroy */
    const char *from_email; /* borrowed from config_get, valid until destroy */
    const char *from_name;  /* borrowed, or NULL */
    const char *reply_to;   /* borrowed, or NULL */
    int64_t asm_default;    /* unsubscribe group for campaigns without their own; 0 = none */
    struct sg_pair *groups; /* owned: campaign -> group id (decimal text) */
    size_t n_groups;
    int64_t display[SG_MAX_GROUPS_TO_DISPLAY]; /* asm.groups_to_display */
    size_t n_display;
    struct sg_pair *templates; /* owned: campaign -> dynamic template id */
    size_t n_templates;
    const char *unsub_url;    /* borrowed: one-click URL template, or NULL */
    const char *unsub_mailto; /* borrowed: mailto address, or NULL */
    char **transactional;     /* owned: campaigns without List-Unsubscribe headers */
    size_t n_transactional;
    int check_suppressions; /* 1: read SendGrid's suppression lists before sending */
    size_t batch_size;      /* personalizations per request, 1..SG_MAX_PERSONALIZATIONS */
    int32_t timeout_ms;     /* whole-request timeout */
};

/* The config spec table of the plugin (NULL-name-terminated). */
extern const struct odsync_config_spec sg_config_spec[];

/* Read and check the instance's settings into cfg (zeroed by the caller). On failure calls
 * host->set_error naming the setting and returns ODSYNC_CONFIG (or ODSYNC_NOMEM); cfg is
 * then already freed. On success the caller frees with sg_config_free. */
int sg_config_load(const struct odsync_host *host, odsync_host_ctx *ctx, struct sg_config *cfg);

/* Free what sg_config_load allocated; accepts a zeroed or freed cfg. */
void sg_config_free(struct sg_config *cfg);

/* The unsubscribe group of campaign (borrowed): its own, else the default; 0 = none. */
int64_t sg_config_group(const struct sg_config *cfg, const char *campaign);

/* The configured dynamic template of campaign, or NULL. Borrowed from cfg. */
const char *sg_config_template(const struct sg_config *cfg, const char *campaign);

/* 1 when campaign is listed as transactional (no List-Unsubscribe headers). */
int sg_config_transactional(const struct sg_config *cfg, const char *campaign);

/* 1 when s looks like one email address: local@domain, printable ASCII or UTF-8, no
 * spaces, quotes, angle brackets or commas, a dot in the domain. */
int sg_valid_address(const char *s);

#endif
