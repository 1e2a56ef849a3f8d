/*
 * config: load and validate odsync's one JSON config file (with // and block comments).
 * Every error names the file, the JSON path and the problem, e.g.
 *   odsync.json: offices[1].timezone: unknown time zone "America/Chicgo"
 * Secrets are written as "${ENV_NAME}" or "file:/path" and resolved here; each resolved
 * value is registered with log_add_secret so it can never reach a log line.
 */
#ifndef ODSYNC_CONFIG_H
#define ODSYNC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct campaign_set;

/* Where a record goes: the keys of an office's "routes" object. */
enum config_route {
    CONFIG_ROUTE_CONTACT = 0,
    CONFIG_ROUTE_TASK = 1,
    CONFIG_ROUTE_SMS = 2,
    CONFIG_ROUTE_EMAIL = 3,
    CONFIG_ROUTE_COUNT
};

/* Delivery tuning: top-level "delivery", overridable per sink by the sink's own "delivery". */
struct config_delivery {
    int64_t max_attempts;          /* dead letter after this many attempts; default 8 */
    int64_t backoff_base_ms;       /* first retry's backoff ceiling; default 1000 */
    int64_t backoff_cap_ms;        /* largest backoff ceiling; default 900000 (15 min) */
    int64_t rate_limit_default_ms; /* pause after 429 without Retry-After; default 60000 */
    int64_t shutdown_timeout_ms;   /* SIGTERM: wait this long for in-flight batches; 10000 */
};

/* A sink instance: "sinks": { "<name>": { "plugin": "...", <plugin settings> } }. */
struct config_sink {
    char *name;      /* instance name (the object key) */
    char *plugin;    /* plugin name, or a path ending in .so */
    cJSON *settings; /* the instance object without "plugin"; validated later against the
                        plugin's spec by host_sink_create */
    char *json_path; /* "sinks.crm", for error messages */
    struct config_delivery delivery; /* the top-level values, overridden by the sink's own */
};

struct config_office {
    char *id;                   /* [a-z0-9][a-z0-9_-]{0,31} — part of every deterministic key */
    char *name;                 /* display name */
    char *phone;                /* office phone, may be NULL */
    char *timezone;             /* IANA name, verified against the zoneinfo database */
    char *od_base_url;          /* opendental.base_url */
    char *od_tier;              /* opendental.tier: "read_all" (default), "paid" or "local" */
    char *od_developer_key;     /* resolved secret */
    char *od_customer_key;      /* resolved secret */
    char *od_workstation;       /* opendental.workstation: the machine that fires events */
    int64_t od_min_interval_ms; /* pacer: least time between request starts (tier default) */
    int64_t od_page_size;       /* rows per page: 100 remote, 1000 local (tier default) */
    int64_t od_sync_interval_s; /* `odsync run`: seconds between passes; default 300 */
    int64_t od_overlap_s;       /* incremental queries start this far before the watermark */
    int64_t od_recall_reconcile_h;     /* full recall reconciliation every this many hours; 24 */
    char **routes[CONFIG_ROUTE_COUNT]; /* sink instance names (each exists in sinks) */
    size_t n_routes[CONFIG_ROUTE_COUNT];
    struct campaign_set *engage; /* owned: campaigns and policy resolved for this office (the
                                    top-level "campaigns"/"policy" overridden by the office's
                                    own); never NULL after a successful load */
};

/* API Events (Open Dental's webhooks): top-level "events". */
struct config_events {
    char *public_url;         /* how Open Dental reaches odsync, e.g. "https://odsync.example.com";
                                 NULL: no subscriptions are managed */
    int64_t polling_seconds;  /* PollingSeconds of each subscription; default 30 */
    int ensure_at_start;      /* `odsync run` ensures the subscriptions when it starts */
    int64_t max_body_bytes;   /* webhook body limit (413 past it); default 16 MiB */
    char *tls_cert, *tls_key; /* PEM files for HTTPS on "listen", or NULL (reverse proxy) */
    int64_t replay_window_h;  /* no event for this long: reconcile now; default 70 (3 days
                                 less a margin) */
};

/* Provider webhooks into the daemon: top-level "webhooks". Each NULL when not configured
 * (then that provider's webhook route answers 403 to everything). */
struct config_webhooks {
    char *twilio_auth_token;    /* webhooks.twilio.auth_token: resolved secret; signs
                                   X-Twilio-Signature (HMAC-SHA1) */
    char *sendgrid_public_key;  /* webhooks.sendgrid.public_key: the Event Webhook's
                                   verification key, base64 DER as SendGrid shows it (may be
                                   a secret reference or a literal: it is public) */
    int64_t sendgrid_max_age_s; /* webhooks.sendgrid.max_age_s: a signed timestamp older
                                   than this (or this far in the future) is a replay: 403;
                                   default 600 */
};

struct config {
    char *path;         /* file it was loaded from */
    char *store;        /* SQLite file; default "/var/lib/odsync/odsync.db" */
    char *listen;       /* "host:port"; default "127.0.0.1:8787" */
    char *admin_token;  /* resolved secret, or NULL when not configured */
    char *log_level;    /* "error" | "warn" | "info" (default) | "debug" */
    char *log_format;   /* "text" (default) | "json" */
    char **plugin_dirs; /* absolute directories; default: the compiled-in ODSYNC_PLUGIN_DIR */
    size_t n_plugin_dirs;
    struct config_sink *sinks;
    size_t n_sinks;
    struct config_office *offices;
    size_t n_offices;
    struct config_delivery delivery; /* top-level "delivery" with defaults applied */
    struct config_events events;     /* top-level "events" with defaults applied */
    struct config_webhooks webhooks; /* top-level "webhooks" */
    cJSON *campaigns; /* top-level "campaigns" as written, may be NULL (resolved per office
                         in config_office.engage) */
    cJSON *policy;    /* top-level "policy" as written, may be NULL (resolved likewise) */
};

/* Load and validate the file at path. On success *out is a config the caller frees with
 * config_free. On failure returns ODSYNC_CONFIG (or ODSYNC_IO / ODSYNC_NOMEM) and err holds
 * one line naming the file, the JSON path and the problem. */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

/* Same, from text already in memory; origin names it in errors. text is borrowed. */
int config_parse(const char *text, size_t len, const char *origin, struct config **out, char *err,
                 size_t errlen);

/* Free a config; accepts NULL. */
void config_free(struct config *cfg);

/* 1 when value has the form of a secret reference ("${NAME}" or "file:/abs/path"). */
int config_is_secret_ref(const char *value);

/* Resolve a secret reference. json_path names the setting in errors. On success *out is the
 * value (caller frees with util_free), already registered with log_add_secret. Errors:
 * literal (not a reference), unset variable, unreadable or world-readable file, empty. */
int config_resolve_secret(const char *ref, const char *json_path, char **out, char *err,
                          size_t errlen);

/* The sink instance named name, or NULL. Borrowed from cfg. */
const struct config_sink *config_find_sink(const struct config *cfg, const char *name);

/* The office with this id, or NULL. Borrowed from cfg. */
const struct config_office *config_find_office(const struct config *cfg, const char *id);

/* A JSON value's type in words ("string", "number", ...), for "expected X, got Y" messages.
 * Static storage. */
const char *config_json_type(const cJSON *v);

/* Name of a route ("contact", "task", "sms", "email"). */
const char *config_route_name(enum config_route route);

#endif
