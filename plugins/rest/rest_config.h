/*
 * rest_config: the settings of the generic REST connector, read through the host's config
 * and secret services and checked beyond what the host's spec validation covers (ranges,
 * path syntax, URL shape). Kept apart from the request logic in rest.c.
 */
#ifndef ODSYNC_REST_CONFIG_H
#define ODSYNC_REST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <odsync/sink.h>

#define REST_MAX_BATCH 100

/* Where a record goes: one collection path per kind of record. */
enum rest_entity {
    REST_CONTACT = 0,
    REST_TASK = 1,
    REST_SMS = 2,
    REST_EMAIL = 3,
    REST_ENTITY_COUNT
};

struct rest_config {
    char *base_url;                       /* owned; no trailing '/' */
    const char *token;                    /* borrowed from secret_get, valid until destroy */
    const char *paths[REST_ENTITY_COUNT]; /* borrowed from config_get, valid until destroy */
    int batch;                            /* 1: POST {entity}/batch; 0: PUT per record */
    size_t batch_size;                    /* 1..REST_MAX_BATCH records per batch request */
    int32_t timeout_ms;                   /* whole-request timeout */
};

/* The config spec table of the plugin (NULL-name-terminated). */
extern const struct odsync_config_spec rest_config_spec[];

/* Read and check the instance's settings into cfg (zeroed by the caller). On failure calls
 * host->set_error naming the setting and returns ODSYNC_CONFIG (or ODSYNC_NOMEM); cfg is
 * then already freed. On success the caller frees with rest_config_free. */
int rest_config_load(const struct odsync_host *host, odsync_host_ctx *ctx, struct rest_config *cfg);

/* Free what rest_config_load allocated; accepts a zeroed or freed cfg. */
void rest_config_free(struct rest_config *cfg);

#endif
