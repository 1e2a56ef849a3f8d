/*
 * sf.h: internals shared by the Salesforce connector's files. Nothing here is exported (the
 * plugin is built with -fvisibility=hidden; only odsync_sink_entry_v1 is visible).
 *
 *   sf_config.c  settings: read, checked, explained with set_error
 *   sf_auth.c    OAuth 2.0 (client credentials, JWT bearer RS256, refresh token)
 *   sf_map.c     odsync contact/task JSON -> Salesforce Contact/Task fields
 *   salesforce.c requests, per-item results, the descriptor
 */
#ifndef ODSYNC_SF_H
#define ODSYNC_SF_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <odsync/sink.h>

#define SF_MAX_BATCH  200 /* sObject Collections: at most 200 records per request */
#define SF_DETAIL_MAX 320 /* bytes of a result detail, NUL included */
#define SF_ID_MAX     18  /* Salesforce record ids: 15 or 18 characters */

enum sf_auth_kind { SF_AUTH_CLIENT_CREDENTIALS = 0, SF_AUTH_JWT = 1, SF_AUTH_REFRESH = 2 };

struct sf_config {
    int auth;                     /* enum sf_auth_kind */
    char *token_url;              /* owned: {login_url}/services/oauth2/token */
    const char *jwt_audience;     /* borrowed from config_get, valid until destroy */
    const char *client_id;        /* borrowed (config_get) */
    const char *client_secret;    /* borrowed (secret_get) or NULL */
    const char *username;         /* borrowed (config_get) or NULL */
    const char *refresh_token;    /* borrowed (secret_get) or NULL */
    const char *private_key_pem;  /* borrowed (secret_get) or NULL */
    const char *api_version;      /* borrowed: "62.0" */
    const char *contact_field;    /* borrowed: External ID field on Contact */
    const char *task_field;       /* borrowed: External ID field on Task */
    const char *task_owner_id;    /* borrowed or NULL: OwnerId of new and updated tasks */
    const char *status_open;      /* borrowed: Task Status for "open" */
    const char *status_completed; /* borrowed: Task Status for "completed" */
    int64_t limit_pause_ms;       /* pause after REQUEST_LIMIT_EXCEEDED */
    int32_t timeout_ms;           /* whole-request timeout */
};

/* One contact key -> Salesforce Contact Id. */
struct sf_idslot {
    char *key; /* owned; NULL = empty slot */
    char id[SF_ID_MAX + 1];
};

/* The connector instance. Calls are serialized by the host (no CONCURRENT flag). */
struct sf {
    const struct odsync_host *host; /* borrowed, valid until destroy */
    odsync_host_ctx *ctx;           /* borrowed, valid until destroy */
    struct sf_config cfg;           /* owned */
    void *pkey;                     /* owned EVP_PKEY (JWT only), freed by sf_auth_free */
    char *authorization;            /* owned "Bearer <token>", wiped on free; NULL = none */
    char *instance_url;             /* owned, no trailing '/'; NULL until a token arrived */
    struct sf_idslot *ids;          /* owned open-addressing table of contact ids */
    size_t ids_cap, ids_n;
    int last_status; /* HTTP status of the last request (0: transport error) */
    int last_class;  /* its result class; -1 before the first request */
};

/* ---- sf_config.c ---- */

extern const struct odsync_config_spec sf_config_spec[];

/* Read and check the settings into cfg (zeroed by the caller). On failure calls set_error
 * naming the setting and returns ODSYNC_CONFIG or ODSYNC_NOMEM, cfg then freed. On success
 * the caller frees with sf_config_free. */
int sf_config_load(const struct odsync_host *host, odsync_host_ctx *ctx, struct sf_config *cfg);

/* Free what sf_config_load allocated; accepts a zeroed or freed cfg. */
void sf_config_free(struct sf_config *cfg);

/* 1 when s is a Salesforce API field name: a letter, then letters, digits, '_', at most 80. */
int sf_field_name_ok(const char *s);

/* ---- sf_auth.c ---- */

/* Parse the JWT private key (s->cfg.private_key_pem) into s->pkey. Calls set_error (never
 * echoing the key) and returns ODSYNC_CONFIG when it is not an RSA private key in PEM. */
int sf_auth_init(struct sf *s);

/* Obtain a new access token with the configured grant; on success s->authorization and
 * s->instance_url are replaced. Returns a result class; on failure detail says why (the
 * OAuth error code, never a secret) and *retry_after_ms is set for RATE_LIMITED. */
int sf_auth_token(struct sf *s, char *detail, size_t detail_len, int64_t *retry_after_ms);

/* Forget the access token (wiped). */
void sf_auth_forget(struct sf *s);

/* Free the key and the token; accepts a zeroed instance. */
void sf_auth_free(struct sf *s);

/* ---- sf_map.c ---- */

/* The Salesforce Contact for an odsync contact record (parsed JSON, borrowed): a new object
 * with attributes.type, the External ID field set to key and every mapped field (JSON null
 * for absent values, so an update clears them). Caller frees with cJSON_Delete. NULL on
 * NOMEM. */
cJSON *sf_map_contact(const struct sf_config *cfg, const cJSON *in, const char *key);

/* The Salesforce Task for an odsync task record, linked to the Contact who_id. Caller frees
 * with cJSON_Delete. NULL on NOMEM. */
cJSON *sf_map_task(const struct sf_config *cfg, const cJSON *in, const char *key,
                   const char *who_id);

/* The setup text printed by `odsync plugins describe salesforce`. */
extern const char sf_setup_text[];

#endif
