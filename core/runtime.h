/*
 * runtime: what a running odsync holds — the config, a store connection, the loaded
 * plugins and one sink instance per configured sink. Opening it checks everything the
 * config references: plugins load, settings validate, and every route goes to a sink whose
 * plugin accepts that record kind.
 *
 * Built-in sinks come after the configured ones in sinks[]: when any office has commlog
 * write-back on (policy.commlog), the Open Dental commlog writer (od_writer.h) is the sink
 * "opendental", with a runtime-owned synthetic config (plugin "(built-in)", the top-level
 * "delivery"), so whatever iterates sinks[] (delivery workers, --once, status, sinks
 * resume) handles it like any other.
 */
#ifndef ODSYNC_RUNTIME_H
#define ODSYNC_RUNTIME_H

#include <stddef.h>

#include "config.h"
#include "host_api.h"
#include "plugin.h"
#include "store.h"

struct runtime_sink {
    const struct config_sink *cfg; /* borrowed from the runtime's config (a built-in's: from
                                      the runtime itself) */
    struct plugin *plugin;         /* borrowed from the runtime's plugin list (or builtin) */
    struct host_sink *sink;        /* owned */
    int builtin;                   /* 1: built into the core, not from the config's "sinks" */
};

struct runtime {
    struct config *cfg;      /* owned */
    struct store *store;     /* owned; NULL with RUNTIME_NO_STORE */
    struct plugin **plugins; /* owned, one per distinct file */
    size_t n_plugins;
    struct runtime_sink *sinks; /* the configured sinks, then the built-in ones */
    size_t n_sinks;
    struct plugin *builtin;         /* owned: the commlog writer's wrapper, or NULL */
    struct config_sink builtin_cfg; /* owned strings: its synthetic config (name NULL: none) */
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

/* The offices whose rows sink rs (borrowed from rt) delivers, for fair claims: the offices
 * whose routes name it, or for the commlog writer the offices with commlog write-back on.
 * *out: caller frees the array with util_free (the strings are borrowed from rt's config);
 * *n may be 0 (then claims are one FIFO). ODSYNC_OK or ODSYNC_NOMEM. */
int runtime_sink_offices(const struct runtime *rt, const struct runtime_sink *rs, char ***out,
                         size_t *n);

/* The capability bit a route needs. */
unsigned long long runtime_route_capability(enum config_route route);

#endif
