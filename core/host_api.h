/*
 * host_api: the host side of a sink instance. Validates an instance's settings against its
 * plugin's config spec, resolves secrets, fills the odsync_host services table (logging with
 * redaction, config, secrets, HTTP, counters, per-item results), and calls the plugin's
 * callbacks. A sink instance is used by one thread at a time.
 */
#ifndef ODSYNC_HOST_API_H
#define ODSYNC_HOST_API_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <odsync/sink.h>

struct plugin;
struct host_sink;

/* The result of one item of a batch. remote_id and detail are owned by the array's owner
 * and freed by host_results_clear. */
struct host_result {
    int status;             /* enum odsync_status result class */
    int64_t retry_after_ms; /* -1 when unknown */
    char *remote_id;        /* may be NULL */
    char *detail;           /* may be NULL; no patient data */
};

/* Create a sink instance named name from plugin p (borrowed; must outlive the instance)
 * with settings (borrowed; copied as needed). json_path ("sinks.crm") prefixes errors.
 * Settings are validated against the spec before create: unknown keys, missing required
 * keys, wrong types, literal secrets. On success *out is an instance the caller frees with
 * host_sink_destroy; on failure err says why, e.g.
 *   sinks.crm.base_url: expected a URL (http:// or https://), got "ftp://x" */
int host_sink_create(struct plugin *p, const char *name, const cJSON *settings,
                     const char *json_path, struct host_sink **out, char *err, size_t errlen);

/* Create an instance of a built-in sink (p from plugin_builtin; borrowed, must outlive the
 * instance) named name, with no settings. core_ctx is a core pointer the built-in's create()
 * reads back with host_core_ctx (borrowed; must outlive the instance; the sink ABI's create()
 * takes no user pointer, and a plugin never gets one). Returns as host_sink_create, or
 * ODSYNC_INVALID when p is not a built-in. */
int host_sink_create_builtin(struct plugin *p, const char *name, void *core_ctx,
                             struct host_sink **out, char *err, size_t errlen);

/* The core pointer given to host_sink_create_builtin, or NULL (a loaded plugin's instance,
 * or ctx NULL). For built-in sinks only: the pointer is not part of the sink ABI. */
void *host_core_ctx(odsync_host_ctx *ctx);

/* Destroy the plugin instance and free; accepts NULL. */
void host_sink_destroy(struct host_sink *s);

/* Send records[0..count) (count <= max batch) through the plugin. results[0..count) are
 * filled (caller clears with host_results_clear). Returns ODSYNC_OK when the plugin ran
 * (per-item outcomes are in results), or ODSYNC_INVALID for a bad count. */
int host_sink_send(struct host_sink *s, const struct odsync_record *const *records, size_t count,
                   struct host_result *results);

/* 1 when status is a result class a plugin may report (OK..INTERNAL, OPTED_OUT). */
int host_result_class_known(int status);

/* Free what results[0..count) own and zero them. */
void host_results_clear(struct host_result *results, size_t count);

/* Instance name, plugin descriptor. Borrowed, valid until host_sink_destroy. */
const char *host_sink_name(const struct host_sink *s);
const struct odsync_sink_descriptor *host_sink_descriptor(const struct host_sink *s);

/* The plugin's health callback (ODSYNC_OK with "ok" when it has none). */
int host_sink_health(struct host_sink *s, char *detail, size_t detail_len);

/* Call the plugin's flush callback if it has one. */
int host_sink_flush(struct host_sink *s);

/* A counter's value for this instance (0 when never added). For tests and metrics. */
int64_t host_sink_counter(struct host_sink *s, const char *name);

#endif
