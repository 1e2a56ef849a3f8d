/*
 * runtime.c: load plugins, create sink instances, check routes.
 */
#include "runtime.h"

#include <string.h>

#include "campaign.h"
#include "log.h"
#include "od_writer.h"
#include "util.h"

#define BUILTIN_PLUGIN "(built-in)"

unsigned long long runtime_route_capability(enum config_route route)
{
    switch (route) {
    case CONFIG_ROUTE_CONTACT:
        return ODSYNC_CAP_CONTACTS;
    case CONFIG_ROUTE_TASK:
        return ODSYNC_CAP_TASKS;
    case CONFIG_ROUTE_SMS:
        return ODSYNC_CAP_SMS;
    default:
        return ODSYNC_CAP_EMAIL;
    }
}

/* The loaded plugin for file path, loading it on first use. */
static int get_plugin(struct runtime *rt, const char *path, struct plugin **out, char *err,
                      size_t errlen)
{
    struct plugin **grown, *p = NULL;
    size_t i;
    int rc;
    for (i = 0; i < rt->n_plugins; i++) {
        if (strcmp(plugin_path(rt->plugins[i]), path) == 0) {
            *out = rt->plugins[i];
            return ODSYNC_OK;
        }
    }
    rc = plugin_open(path, &p, err, errlen);
    if (rc != ODSYNC_OK)
        return rc;
    grown = util_realloc(rt->plugins, (rt->n_plugins + 1) * sizeof(*grown));
    if (grown == NULL) {
        plugin_close(p);
        return ODSYNC_NOMEM;
    }
    rt->plugins = grown;
    rt->plugins[rt->n_plugins++] = p;
    *out = p;
    return ODSYNC_OK;
}

/* Load the plugin of one configured sink and create the instance. */
static int open_sink(struct runtime *rt, const struct config_sink *cs, struct runtime_sink *rs,
                     char *err, size_t errlen)
{
    char *path = NULL, msg[512];
    int rc;

    rs->cfg = cs;
    rc = plugin_find(rt->cfg->plugin_dirs, rt->cfg->n_plugin_dirs, cs->plugin, &path, msg,
                     sizeof(msg));
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s.plugin: %s", cs->json_path, msg);
        rc = ODSYNC_CONFIG;
        goto cleanup;
    }
    rc = get_plugin(rt, path, &rs->plugin, msg, sizeof(msg));
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s.plugin: %s", cs->json_path, msg);
        goto cleanup;
    }
    rc =
        host_sink_create(rs->plugin, cs->name, cs->settings, cs->json_path, &rs->sink, err, errlen);
cleanup:
    util_free(path);
    return rc;
}

/* Every route must go to a sink whose plugin accepts that kind. */
static int check_routes(struct runtime *rt, char *err, size_t errlen)
{
    size_t o, r, i;
    for (o = 0; o < rt->cfg->n_offices; o++) {
        const struct config_office *off = &rt->cfg->offices[o];
        for (r = 0; r < CONFIG_ROUTE_COUNT; r++) {
            for (i = 0; i < off->n_routes[r]; i++) {
                struct runtime_sink *rs = runtime_find_sink(rt, off->routes[r][i]);
                const struct odsync_sink_descriptor *d;
                if (rs == NULL)
                    continue; /* config already checked names */
                d = host_sink_descriptor(rs->sink);
                if ((d->capabilities & runtime_route_capability(r)) == 0) {
                    util_fmt(err, errlen,
                             "offices[%zu].routes.%s[%zu]: sink \"%s\" (plugin \"%s\") does not "
                             "accept %s records",
                             o, config_route_name(r), i, rs->cfg->name, d->name,
                             config_route_name(r));
                    return ODSYNC_CONFIG;
                }
            }
        }
    }
    return ODSYNC_OK;
}

/* 1 when office writes a commlog to Open Dental for each message sent (policy.commlog). */
static int office_commlogs(const struct config_office *office)
{
    return office->engage != NULL && office->engage->policy.commlog;
}

/* The first office with commlog write-back on, or NULL. */
static const struct config_office *first_commlog_office(const struct config *cfg)
{
    size_t i;
    for (i = 0; i < cfg->n_offices; i++)
        if (office_commlogs(&cfg->offices[i]))
            return &cfg->offices[i];
    return NULL;
}

/* When an office has commlog write-back on, append the built-in "opendental" sink (the
 * Open Dental commlog writer) to rt->sinks, which has room for it. */
static int open_builtin_writer(struct runtime *rt, char *err, size_t errlen)
{
    const struct config_office *office = first_commlog_office(rt->cfg);
    struct config_sink *bc = &rt->builtin_cfg;
    struct runtime_sink *rs;
    char msg[512];
    int rc;

    if (office == NULL)
        return ODSYNC_OK;
    if (config_find_sink(rt->cfg, OD_WRITER_SINK) != NULL) {
        util_fmt(err, errlen,
                 "sinks.%s: the name \"%s\" is reserved for the built-in Open Dental commlog "
                 "writer (policy.commlog is on for office %s)",
                 OD_WRITER_SINK, OD_WRITER_SINK, office->id);
        return ODSYNC_CONFIG;
    }
    bc->name = util_strdup(OD_WRITER_SINK);
    bc->plugin = util_strdup(BUILTIN_PLUGIN);
    bc->json_path = util_strdup("sinks." OD_WRITER_SINK " (built-in)");
    bc->settings = NULL;
    bc->delivery = rt->cfg->delivery;
    if (bc->name == NULL || bc->plugin == NULL || bc->json_path == NULL)
        return ODSYNC_NOMEM;
    rc = plugin_builtin(od_writer_descriptor(), &rt->builtin, msg, sizeof(msg));
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s: %s", bc->json_path, msg);
        return rc;
    }
    rs = &rt->sinks[rt->n_sinks];
    rs->cfg = bc;
    rs->plugin = rt->builtin;
    rs->builtin = 1;
    rt->n_sinks++;
    return host_sink_create_builtin(rt->builtin, OD_WRITER_SINK, rt->cfg, &rs->sink, err, errlen);
}

int runtime_open(struct config *cfg, unsigned flags, struct runtime **out, char *err, size_t errlen)
{
    struct runtime *rt = NULL;
    size_t i;
    int rc = ODSYNC_NOMEM;

    *out = NULL;
    rt = util_calloc(1, sizeof(*rt));
    if (rt == NULL) {
        config_free(cfg);
        goto cleanup;
    }
    rt->cfg = cfg;
    rt->sinks = util_calloc(cfg->n_sinks + 1, sizeof(*rt->sinks)); /* + the built-in */
    if (rt->sinks == NULL)
        goto cleanup;
    for (i = 0; i < cfg->n_sinks; i++) {
        rc = open_sink(rt, &cfg->sinks[i], &rt->sinks[i], err, errlen);
        rt->n_sinks = i + 1;
        if (rc != ODSYNC_OK)
            goto cleanup;
    }
    rc = check_routes(rt, err, errlen);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = open_builtin_writer(rt, err, errlen);
    if (rc != ODSYNC_OK)
        goto cleanup;
    if (!(flags & RUNTIME_NO_STORE)) {
        rc = store_open(cfg->store, &rt->store, err, errlen);
        if (rc != ODSYNC_OK)
            goto cleanup;
    }
    *out = rt;
    rt = NULL;
    rc = ODSYNC_OK;
cleanup:
    if (rc == ODSYNC_NOMEM && errlen > 0)
        util_fmt(err, errlen, "out of memory");
    runtime_close(rt);
    return rc;
}

void runtime_close(struct runtime *rt)
{
    size_t i;
    if (rt == NULL)
        return;
    for (i = 0; i < rt->n_sinks; i++)
        host_sink_destroy(rt->sinks[i].sink);
    util_free(rt->sinks);
    for (i = 0; i < rt->n_plugins; i++)
        plugin_close(rt->plugins[i]);
    util_free(rt->plugins);
    plugin_close(rt->builtin);
    util_free(rt->builtin_cfg.name);
    util_free(rt->builtin_cfg.plugin);
    util_free(rt->builtin_cfg.json_path);
    store_close(rt->store);
    config_free(rt->cfg);
    util_free(rt);
}

struct runtime_sink *runtime_find_sink(struct runtime *rt, const char *name)
{
    size_t i;
    for (i = 0; i < rt->n_sinks; i++)
        if (rt->sinks[i].sink != NULL && strcmp(rt->sinks[i].cfg->name, name) == 0)
            return &rt->sinks[i];
    return NULL;
}

int runtime_sink_offices(const struct runtime *rt, const struct runtime_sink *rs, char ***out,
                         size_t *n)
{
    const struct config *cfg = rt->cfg;
    size_t o, r, i;
    int wanted;

    *n = 0;
    *out = util_calloc(cfg->n_offices ? cfg->n_offices : 1, sizeof(**out));
    if (*out == NULL)
        return ODSYNC_NOMEM;
    for (o = 0; o < cfg->n_offices; o++) {
        const struct config_office *off = &cfg->offices[o];
        wanted = rs->builtin && office_commlogs(off);
        for (r = 0; r < CONFIG_ROUTE_COUNT && !wanted && !rs->builtin; r++)
            for (i = 0; i < off->n_routes[r] && !wanted; i++)
                wanted = strcmp(off->routes[r][i], rs->cfg->name) == 0;
        if (wanted)
            (*out)[(*n)++] = off->id;
    }
    return ODSYNC_OK;
}
