/*
 * host_api.c: the services table a plugin sees, settings validation against a plugin's
 * config spec, and the calls into a plugin instance.
 */
#include "host_api.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "http_client.h"
#include "log.h"
#include "plugin.h"
#include "util.h"

#define DETAIL_MAX  512
#define ERR_MAX     512
#define NUMBER_TEXT 32

/* One setting after validation: text form of a plain value, or a resolved secret. */
struct setting {
    const char *name; /* borrowed from the plugin's spec */
    char *value;      /* owned; NULL when unset and no default */
    int secret;       /* 1 when value came from a secret reference */
};

struct metric {
    char *name;
    int64_t count; /* counters */
    double gauge;  /* gauges */
};

/* What a plugin holds: a pointer back to its instance. */
struct odsync_host_ctx {
    struct host_sink *sink;
};

struct host_sink {
    struct odsync_host_ctx ctx;
    struct plugin *plugin;                     /* borrowed */
    const struct odsync_sink_descriptor *desc; /* borrowed from plugin */
    char *name;
    char *component; /* "sink:<name>" */
    struct setting *settings;
    size_t n_settings;
    void *instance; /* the plugin's */
    void *core_ctx; /* built-in sinks: what host_core_ctx gives; NULL otherwise */
    struct http_client *http;
    pthread_mutex_t lock;      /* guards metrics */
    pthread_mutex_t http_lock; /* guards http (one easy handle per instance) */
    struct metric *metrics;
    size_t n_metrics;
    char error[ERR_MAX]; /* set_error from create */
};

struct odsync_batch {
    struct host_result *results;
    unsigned char *reported;
    size_t count;
};

int host_result_class_known(int status)
{
    return (status >= ODSYNC_OK && status <= ODSYNC_INTERNAL) || status == ODSYNC_OPTED_OUT;
}

/* ---- services ----------------------------------------------------------------------- */

static void svc_log(odsync_host_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, ctx ? ctx->sink->component : "sink", fmt, ap);
    va_end(ap);
}

static void svc_set_error(odsync_host_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    if (ctx == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(ctx->sink->error, sizeof(ctx->sink->error), fmt, ap);
    va_end(ap);
    log_redact(ctx->sink->error, sizeof(ctx->sink->error));
}

/* The setting named name, or NULL. */
static const struct setting *find_setting(const struct host_sink *s, const char *name)
{
    size_t i;
    for (i = 0; name != NULL && i < s->n_settings; i++)
        if (strcmp(s->settings[i].name, name) == 0)
            return &s->settings[i];
    return NULL;
}

static const char *svc_config_get(odsync_host_ctx *ctx, const char *name)
{
    const struct setting *st = ctx ? find_setting(ctx->sink, name) : NULL;
    return st && !st->secret ? st->value : NULL;
}

static const char *svc_secret_get(odsync_host_ctx *ctx, const char *name)
{
    const struct setting *st = ctx ? find_setting(ctx->sink, name) : NULL;
    return st && st->secret ? st->value : NULL;
}

static int svc_http(odsync_host_ctx *ctx, const struct odsync_http_request *req,
                    struct odsync_http_response **out)
{
    struct host_sink *s;
    int rc;
    if (out == NULL)
        return ODSYNC_INVALID;
    *out = NULL;
    if (ctx == NULL || req == NULL)
        return ODSYNC_INVALID;
    s = ctx->sink;
    pthread_mutex_lock(&s->http_lock);
    if (s->http == NULL)
        s->http = http_client_create();
    rc = s->http ? http_client_perform(s->http, req, out) : ODSYNC_NOMEM;
    pthread_mutex_unlock(&s->http_lock);
    return rc;
}

/* The metric named name, created on first use (lock held); NULL on NOMEM. */
static struct metric *metric_get(struct host_sink *s, const char *name)
{
    struct metric *grown;
    char *copy;
    size_t i;
    for (i = 0; i < s->n_metrics; i++)
        if (strcmp(s->metrics[i].name, name) == 0)
            return &s->metrics[i];
    copy = util_strdup(name);
    grown = copy ? util_realloc(s->metrics, (s->n_metrics + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        util_free(copy);
        return NULL;
    }
    s->metrics = grown;
    memset(&grown[s->n_metrics], 0, sizeof(*grown));
    grown[s->n_metrics].name = copy;
    return &grown[s->n_metrics++];
}

static void svc_counter_add(odsync_host_ctx *ctx, const char *name, int64_t delta)
{
    struct metric *m;
    if (ctx == NULL || name == NULL)
        return;
    pthread_mutex_lock(&ctx->sink->lock);
    m = metric_get(ctx->sink, name);
    if (m != NULL)
        m->count += delta;
    pthread_mutex_unlock(&ctx->sink->lock);
}

static void svc_gauge_set(odsync_host_ctx *ctx, const char *name, double value)
{
    struct metric *m;
    if (ctx == NULL || name == NULL)
        return;
    pthread_mutex_lock(&ctx->sink->lock);
    m = metric_get(ctx->sink, name);
    if (m != NULL)
        m->gauge = value;
    pthread_mutex_unlock(&ctx->sink->lock);
}

/* A bounded, redacted copy of a plugin's text; NULL in, NULL out. */
static char *copy_detail(const char *text)
{
    char buf[DETAIL_MAX];
    if (text == NULL)
        return NULL;
    snprintf(buf, sizeof(buf), "%s", text);
    log_redact(buf, sizeof(buf));
    return util_strdup(buf);
}

static void svc_result_set(odsync_batch *batch, size_t index, int status, int64_t retry_after_ms,
                           const char *remote_id, const char *detail)
{
    struct host_result *r;
    char note[64];
    if (batch == NULL || index >= batch->count)
        return;
    r = &batch->results[index];
    util_free(r->remote_id);
    util_free(r->detail);
    r->remote_id = NULL;
    r->detail = NULL;
    if (!host_result_class_known(status)) {
        util_fmt(note, sizeof(note), "plugin reported unknown result class %d", status);
        status = ODSYNC_INTERNAL;
        detail = note;
    }
    r->status = status;
    /* A day at most: a plugin's absurd value must not overflow the scheduler's arithmetic. */
    r->retry_after_ms =
        retry_after_ms < 0 ? -1 : (retry_after_ms > 86400000 ? 86400000 : retry_after_ms);
    r->remote_id = util_strdup(remote_id);
    r->detail = copy_detail(detail);
    batch->reported[index] = 1;
}

static const struct odsync_host host_table = {
    .struct_size = sizeof(struct odsync_host),
    .abi_major = ODSYNC_SINK_ABI_MAJOR,
    .abi_minor = ODSYNC_SINK_ABI_MINOR,
    .log = svc_log,
    .set_error = svc_set_error,
    .config_get = svc_config_get,
    .secret_get = svc_secret_get,
    .http = svc_http,
    .http_header = http_response_header,
    .http_free = http_response_free,
    .status_class = http_status_class,
    .url_encode = http_url_encode,
    .counter_add = svc_counter_add,
    .gauge_set = svc_gauge_set,
    .result_set = svc_result_set,
};

/* ---- settings validation ------------------------------------------------------------ */

/* "plugin key list" for an unknown-key message, into buf. */
static void known_keys(const struct odsync_config_spec *spec, char *buf, size_t len)
{
    size_t i, off = 0;
    buf[0] = '\0';
    for (i = 0; spec != NULL && spec[i].name != NULL && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", spec[i].name);
    if (buf[0] == '\0')
        snprintf(buf, len, "none");
}

/* The spec entry named name, or NULL. */
static const struct odsync_config_spec *spec_find(const struct odsync_config_spec *spec,
                                                  const char *name)
{
    size_t i;
    for (i = 0; spec != NULL && spec[i].name != NULL; i++)
        if (strcmp(spec[i].name, name) == 0)
            return &spec[i];
    return NULL;
}

/* Reject settings the plugin does not declare. */
static int check_unknown_keys(const struct host_sink *s, const cJSON *settings,
                              const char *json_path, char *err, size_t errlen)
{
    const cJSON *item;
    char keys[256];
    cJSON_ArrayForEach(item, settings)
    {
        if (spec_find(s->desc->config, item->string) == NULL) {
            known_keys(s->desc->config, keys, sizeof(keys));
            util_fmt(err, errlen, "%s.%s: unknown setting for plugin \"%s\" (known: %s)", json_path,
                     item->string, s->desc->name, keys);
            return ODSYNC_CONFIG;
        }
    }
    return ODSYNC_OK;
}

/* Text form of a plain (non-secret) value checked against its spec type. *out: caller
 * frees. */
static int plain_value(const struct odsync_config_spec *sp, const cJSON *v, const char *path,
                       char **out, char *err, size_t errlen)
{
    char num[NUMBER_TEXT];
    switch (sp->type) {
    case ODSYNC_CFG_INT:
        if (!cJSON_IsNumber(v) || v->valuedouble > 9007199254740992.0 ||
            v->valuedouble < -9007199254740992.0 ||
            v->valuedouble != (double)(int64_t)v->valuedouble) {
            util_fmt(err, errlen, "%s: expected an integer, got %s", path, config_json_type(v));
            return ODSYNC_CONFIG;
        }
        util_fmt(num, sizeof(num), "%lld", (long long)v->valuedouble);
        *out = util_strdup(num);
        break;
    case ODSYNC_CFG_BOOL:
        if (!cJSON_IsBool(v)) {
            util_fmt(err, errlen, "%s: expected true or false, got %s", path, config_json_type(v));
            return ODSYNC_CONFIG;
        }
        *out = util_strdup(cJSON_IsTrue(v) ? "true" : "false");
        break;
    case ODSYNC_CFG_URL:
        if (!cJSON_IsString(v) || (strncmp(v->valuestring, "http://", 7) != 0 &&
                                   strncmp(v->valuestring, "https://", 8) != 0)) {
            util_fmt(err, errlen, "%s: expected a URL (http:// or https://), got %s", path,
                     cJSON_IsString(v) ? "another scheme" : config_json_type(v));
            return ODSYNC_CONFIG;
        }
        *out = util_strdup(v->valuestring);
        break;
    default:
        if (!cJSON_IsString(v)) {
            util_fmt(err, errlen, "%s: expected a string, got %s", path, config_json_type(v));
            return ODSYNC_CONFIG;
        }
        *out = util_strdup(v->valuestring);
        break;
    }
    return *out ? ODSYNC_OK : ODSYNC_NOMEM;
}

/* Validate and store one spec entry's value. */
static int load_setting(struct host_sink *s, const struct odsync_config_spec *sp,
                        const cJSON *settings, const char *json_path, struct setting *out,
                        char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings, sp->name);
    char path[256];

    util_fmt(path, sizeof(path), "%s.%s", json_path, sp->name);
    out->name = sp->name;
    out->secret = (sp->flags & ODSYNC_CFG_SECRET) != 0;
    if (v == NULL) {
        if (sp->flags & ODSYNC_CFG_REQUIRED) {
            util_fmt(err, errlen, "%s: required by plugin \"%s\"", path, s->desc->name);
            return ODSYNC_CONFIG;
        }
        if (sp->default_value == NULL || out->secret)
            return ODSYNC_OK;
        out->value = util_strdup(sp->default_value);
        return out->value ? ODSYNC_OK : ODSYNC_NOMEM;
    }
    if (out->secret) {
        if (!cJSON_IsString(v)) {
            util_fmt(err, errlen, "%s: expected a secret reference string, got %s", path,
                     config_json_type(v));
            return ODSYNC_CONFIG;
        }
        return config_resolve_secret(v->valuestring, path, &out->value, err, errlen);
    }
    return plain_value(sp, v, path, &out->value, err, errlen);
}

/* Validate settings against the spec and fill s->settings. */
static int load_settings(struct host_sink *s, const cJSON *settings, const char *json_path,
                         char *err, size_t errlen)
{
    const struct odsync_config_spec *spec = s->desc->config;
    size_t n = 0, i;
    int rc;

    if (settings != NULL && !cJSON_IsObject(settings)) {
        util_fmt(err, errlen, "%s: expected an object", json_path);
        return ODSYNC_CONFIG;
    }
    rc = check_unknown_keys(s, settings, json_path, err, errlen);
    if (rc != ODSYNC_OK)
        return rc;
    while (spec != NULL && spec[n].name != NULL)
        n++;
    s->settings = util_calloc(n ? n : 1, sizeof(*s->settings));
    if (s->settings == NULL)
        return ODSYNC_NOMEM;
    for (i = 0; i < n; i++) {
        rc = load_setting(s, &spec[i], settings, json_path, &s->settings[i], err, errlen);
        s->n_settings = i + 1;
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

/* ---- instances ---------------------------------------------------------------------- */

/* Build an instance: validate settings, then the plugin's create(). core_ctx is kept for
 * host_core_ctx (NULL for loaded plugins). On success *out: caller frees with
 * host_sink_destroy. */
static int create_instance(struct plugin *p, const char *name, const cJSON *settings,
                           const char *json_path, void *core_ctx, struct host_sink **out, char *err,
                           size_t errlen)
{
    struct host_sink *s = NULL;
    size_t clen;
    int rc = ODSYNC_NOMEM;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    s = util_calloc(1, sizeof(*s));
    if (s == NULL)
        goto cleanup;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->http_lock, NULL);
    s->ctx.sink = s;
    s->plugin = p;
    s->desc = plugin_descriptor(p);
    s->core_ctx = core_ctx;
    clen = strlen(name) + 6;
    s->name = util_strdup(name);
    s->component = util_malloc(clen);
    if (s->name == NULL || s->component == NULL)
        goto cleanup;
    util_fmt(s->component, clen, "sink:%s", name);
    rc = load_settings(s, settings, json_path, err, errlen);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = s->desc->create(&host_table, &s->ctx, &s->instance);
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s: plugin \"%s\" create failed (%s): %s", json_path, s->desc->name,
                 odsync_status_name(rc), s->error[0] ? s->error : "no detail");
        s->instance = NULL;
        goto cleanup;
    }
    *out = s;
    s = NULL;
cleanup:
    if (rc == ODSYNC_NOMEM && err != NULL && errlen > 0 && err[0] == '\0')
        util_fmt(err, errlen, "%s: out of memory", json_path);
    host_sink_destroy(s);
    return rc;
}

int host_sink_create(struct plugin *p, const char *name, const cJSON *settings,
                     const char *json_path, struct host_sink **out, char *err, size_t errlen)
{
    return create_instance(p, name, settings, json_path, NULL, out, err, errlen);
}

int host_sink_create_builtin(struct plugin *p, const char *name, void *core_ctx,
                             struct host_sink **out, char *err, size_t errlen)
{
    char path[96];
    *out = NULL;
    if (!plugin_is_builtin(p)) {
        util_fmt(err, errlen, "sink \"%s\": not a built-in sink", name);
        return ODSYNC_INVALID;
    }
    util_fmt(path, sizeof(path), "sinks.%s (built-in)", name);
    return create_instance(p, name, NULL, path, core_ctx, out, err, errlen);
}

void *host_core_ctx(odsync_host_ctx *ctx)
{
    return ctx != NULL ? ctx->sink->core_ctx : NULL;
}

void host_sink_destroy(struct host_sink *s)
{
    size_t i;
    if (s == NULL)
        return;
    if (s->instance != NULL)
        s->desc->destroy(s->instance);
    for (i = 0; i < s->n_settings; i++)
        util_free(s->settings[i].value);
    util_free(s->settings);
    for (i = 0; i < s->n_metrics; i++)
        util_free(s->metrics[i].name);
    util_free(s->metrics);
    http_client_destroy(s->http);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->http_lock);
    util_free(s->name);
    util_free(s->component);
    util_free(s);
}

int host_sink_send(struct host_sink *s, const struct odsync_record *const *records, size_t count,
                   struct host_result *results)
{
    struct odsync_batch batch;
    char note[96];
    size_t i;
    int rc;

    if (count == 0 || count > s->desc->max_batch)
        return ODSYNC_INVALID;
    memset(results, 0, count * sizeof(*results));
    batch.results = results;
    batch.count = count;
    batch.reported = util_calloc(count, 1);
    if (batch.reported == NULL)
        return ODSYNC_NOMEM;
    rc = s->desc->send_batch(s->instance, &batch, records, count);
    for (i = 0; i < count; i++) {
        if (batch.reported[i])
            continue;
        results[i].status = rc == ODSYNC_OK ? ODSYNC_RETRY : rc;
        if (!host_result_class_known(results[i].status))
            results[i].status = ODSYNC_INTERNAL;
        results[i].retry_after_ms = -1;
        util_fmt(note, sizeof(note), "no result reported by plugin (send_batch returned %s)",
                 odsync_status_name(rc));
        results[i].detail = util_strdup(note);
    }
    util_free(batch.reported);
    return ODSYNC_OK;
}

void host_results_clear(struct host_result *results, size_t count)
{
    size_t i;
    for (i = 0; results != NULL && i < count; i++) {
        util_free(results[i].remote_id);
        util_free(results[i].detail);
        memset(&results[i], 0, sizeof(results[i]));
    }
}

const char *host_sink_name(const struct host_sink *s)
{
    return s->name;
}

const struct odsync_sink_descriptor *host_sink_descriptor(const struct host_sink *s)
{
    return s->desc;
}

int host_sink_health(struct host_sink *s, char *detail, size_t detail_len)
{
    int rc;
    if (s->desc->health == NULL) {
        util_fmt(detail, detail_len, "ok");
        return ODSYNC_OK;
    }
    detail[0] = '\0';
    rc = s->desc->health(s->instance, detail, detail_len);
    log_redact(detail, detail_len);
    return rc;
}

int host_sink_flush(struct host_sink *s)
{
    return s->desc->flush ? s->desc->flush(s->instance) : ODSYNC_OK;
}

int64_t host_sink_counter(struct host_sink *s, const char *name)
{
    int64_t v = 0;
    size_t i;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < s->n_metrics; i++)
        if (strcmp(s->metrics[i].name, name) == 0)
            v = s->metrics[i].count;
    pthread_mutex_unlock(&s->lock);
    return v;
}
