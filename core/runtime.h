/*
 * runtime: what a running odsync holds — the config, a store connection, the loaded
 * plugins and one sink instance per configured sink. Opening it checks everything the
 * config references: plugins load, settings validate, and every route goes to a sink whose
 * plugin accepts that record kind.
 */
#ifndef ODSYNC_RUNTIME_H
#define ODSYNC_RUNTIME_H

#include <stddef.h>

#include "config.h"
#include "host_api.h"
#include "plugin.h"
#include "store.h"

struct runtime_sink {
    const struct config_sink *cfg; /* borrowed from the runtime's config */
    struct plugin *plugin;         /* borrowed from the runtime's plugin list */
    struct host_sink *sink;        /* owned */
};

struct runtime {
    struct config *cfg;      /* owned */
    struct store *store;     /* owned; NULL with RUNTIME_NO_STORE */
    struct plugin **plugins; /* owned, one per distinct file */
    size_t n_plugins;
    struct runtime_sink *sinks;
    size_t n_sinks;
};

#define RUNTIME_NO_STORE 1u /* check-config: do not open the database */

/* Build a runtime from cfg (takes ownership, also on failure). On failure err names the
 * JSON path or file and the problem; returns ODSYNC_CONFIG, ODSYNC_ABI or ODSYNC_STORE. */
int runtime_open(struct config *cfg, unsigned flags, struct runtime **out, char *err,
                 size_t errlen);

/* Destroy sinks, close plugins and the store, free the config; accepts NULL. */
void runtime_close(struct runtime *rt);

/* The sink instance named name, or NULL. Borrowed. */
struct runtime_sink *runtime_find_sink(struct runtime *rt, const char *name);

/* The capability bit a route needs. */
unsigned long long runtime_route_capability(enum config_route route);

#endif
