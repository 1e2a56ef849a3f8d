/*
 * main.c: the odsync command line. Each command is a function; options are parsed once into
 * struct cli. Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 invalid config, 4 plugin
 * refused, 5 store error.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "daemon.h"
#include "campaign.h"
#include "consent.h"
#include "deliver.h"
#include "dryrun.h"
#include "http_client.h"
#include "import.h"
#include "ingest.h"
#include "model.h"
#include "od_client.h"
#include "ledger.h"
#include "log.h"
#include "outbox.h"
#include "plugin.h"
#include "policy.h"
#include "project.h"
#include "records.h"
#include "resync.h"
#include "runtime.h"
#include "sink_state.h"
#include "subscriptions.h"
#include "events.h"
#include "tz.h"
#include "util.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,
    EXIT_USAGE = 2,
    EXIT_CONFIG = 3,
    EXIT_PLUGIN = 4,
    EXIT_STORE = 5
};

#define DEFAULT_CONFIG "/etc/odsync/odsync.json"
#define MAX_ARGS       8
#define MAX_DIRS       8
#define ERR_LEN        1024

struct cli {
    const char *config;          /* --config, $ODSYNC_CONFIG or DEFAULT_CONFIG */
    int json;                    /* --json */
    int once;                    /* run --once */
    int until_idle;              /* run --until-idle */
    int deliver_only;            /* run --deliver-only */
    int all;                     /* dlq retry --all */
    const char *sink;            /* --sink S */
    const char *office;          /* --office ID */
    const char *date;            /* dry-run --date YYYY-MM-DD */
    const char *purpose;         /* optout --purpose P */
    int help;                    /* --help */
    char *plugin_dirs[MAX_DIRS]; /* --plugin-dir (borrowed from argv) */
    size_t n_plugin_dirs;
    const char *args[MAX_ARGS]; /* positional words after the command */
    size_t n_args;
};

struct command {
    const char *name;
    int (*fn)(struct cli *c);
    const char *usage;
    const char *help;
};

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

/* Print a cJSON value to stdout and free it. */
static void print_json(cJSON *j)
{
    char *s = j ? cJSON_Print(j) : NULL;
    if (s != NULL)
        printf("%s\n", s);
    else
        fprintf(stderr, "odsync: out of memory\n");
    cJSON_free(s);
    cJSON_Delete(j);
}

/* Map an odsync status from config/runtime loading to an exit code. */
static int exit_for(int rc)
{
    switch (rc) {
    case ODSYNC_OK:
        return EXIT_OK;
    case ODSYNC_CONFIG:
    case ODSYNC_PARSE:
        return EXIT_CONFIG;
    case ODSYNC_ABI:
        return EXIT_PLUGIN;
    case ODSYNC_STORE:
        return EXIT_STORE;
    default:
        return EXIT_RUNTIME;
    }
}

/* Load the config and apply its log settings. *out: caller frees with config_free. */
static int load_config(struct cli *c, struct config **out)
{
    char err[ERR_LEN];
    int rc = config_load(c->config, out, err, sizeof(err));
    if (rc != ODSYNC_OK) {
        fprintf(stderr, "odsync: %s\n", err);
        return exit_for(rc == ODSYNC_IO ? ODSYNC_CONFIG : rc);
    }
    log_setup(stderr,
              strcmp((*out)->log_level, "error") == 0   ? ODSYNC_LOG_ERROR
              : strcmp((*out)->log_level, "warn") == 0  ? ODSYNC_LOG_WARN
              : strcmp((*out)->log_level, "debug") == 0 ? ODSYNC_LOG_DEBUG
                                                        : ODSYNC_LOG_INFO,
              strcmp((*out)->log_format, "json") == 0 ? LOG_JSON : LOG_TEXT);
    return EXIT_OK;
}

/* Load the config and open the runtime. *out: caller frees with runtime_close. */
static int open_runtime(struct cli *c, unsigned flags, struct runtime **out)
{
    struct config *cfg = NULL;
    char err[ERR_LEN];
    int rc = load_config(c, &cfg);
    if (rc != EXIT_OK)
        return rc;
    rc = runtime_open(cfg, flags, out, err, sizeof(err));
    if (rc != ODSYNC_OK) {
        fprintf(stderr, "odsync: %s: %s\n", c->config, err);
        return exit_for(rc);
    }
    return EXIT_OK;
}

/* ---- version, check-config ---------------------------------------------------------- */

static int cmd_version(struct cli *c)
{
    cJSON *j;
    if (!c->json) {
        printf("odsync %s (sink ABI %d.%d)\n", ODSYNC_VERSION, ODSYNC_SINK_ABI_MAJOR,
               ODSYNC_SINK_ABI_MINOR);
        return EXIT_OK;
    }
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", ODSYNC_VERSION);
    cJSON_AddNumberToObject(j, "abi_major", ODSYNC_SINK_ABI_MAJOR);
    cJSON_AddNumberToObject(j, "abi_minor", ODSYNC_SINK_ABI_MINOR);
    print_json(j);
    return EXIT_OK;
}

static int cmd_check_config(struct cli *c)
{
    struct runtime *rt = NULL;
    cJSON *j;
    int rc = open_runtime(c, RUNTIME_NO_STORE, &rt);
    if (rc != EXIT_OK) {
        if (c->json) {
            j = cJSON_CreateObject();
            cJSON_AddBoolToObject(j, "ok", 0);
            print_json(j);
        }
        return rc;
    }
    if (c->json) {
        j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "ok", 1);
        cJSON_AddNumberToObject(j, "offices", (double)rt->cfg->n_offices);
        cJSON_AddNumberToObject(j, "sinks", (double)rt->n_sinks);
        print_json(j);
    } else {
        printf("%s: ok (%zu offices, %zu sinks, %zu plugins)\n", c->config, rt->cfg->n_offices,
               rt->n_sinks, rt->n_plugins);
    }
    runtime_close(rt);
    return EXIT_OK;
}

/* ---- plugins ------------------------------------------------------------------------ */

static const char *const cap_names[] = {"contacts", "tasks", "sms", "email"};
static const char *const type_names[] = {"?", "string", "int", "bool", "url"};

/* "contacts, tasks" for a capability mask, into buf. */
static void caps_text(uint64_t caps, char *buf, size_t len)
{
    size_t i, off = 0;
    buf[0] = '\0';
    for (i = 0; i < UTIL_ARRAY_LEN(cap_names); i++)
        if (caps & (UINT64_C(1) << i))
            off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s", off ? ", " : "",
                                    cap_names[i]);
    if (caps & ODSYNC_CAP_CONCURRENT)
        snprintf(buf + off, off < len ? len - off : 0, "%sconcurrent", off ? ", " : "");
}

/* A plugin's facts as JSON (caller frees). */
static cJSON *describe_json(const struct plugin *p)
{
    const struct odsync_sink_descriptor *d = plugin_descriptor(p);
    cJSON *j = cJSON_CreateObject(), *caps = cJSON_AddArrayToObject(j, "capabilities");
    cJSON *cfg = cJSON_AddArrayToObject(j, "config");
    char abi[16];
    size_t i;
    cJSON_AddStringToObject(j, "name", d->name);
    cJSON_AddStringToObject(j, "version", d->version);
    cJSON_AddStringToObject(j, "file", plugin_path(p));
    util_fmt(abi, sizeof(abi), "%d.%u", ODSYNC_SINK_ABI_MAJOR, plugin_abi_minor(p));
    cJSON_AddStringToObject(j, "abi", abi);
    cJSON_AddStringToObject(j, "description", d->description);
    cJSON_AddNumberToObject(j, "max_batch", d->max_batch);
    for (i = 0; i < UTIL_ARRAY_LEN(cap_names); i++)
        if (d->capabilities & (UINT64_C(1) << i))
            cJSON_AddItemToArray(caps, cJSON_CreateString(cap_names[i]));
    for (i = 0; d->config != NULL && d->config[i].name != NULL; i++) {
        const struct odsync_config_spec *sp = &d->config[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", sp->name);
        cJSON_AddStringToObject(e, "type", type_names[sp->type]);
        cJSON_AddBoolToObject(e, "required", (sp->flags & ODSYNC_CFG_REQUIRED) != 0);
        cJSON_AddBoolToObject(e, "secret", (sp->flags & ODSYNC_CFG_SECRET) != 0);
        if (sp->default_value != NULL)
            cJSON_AddStringToObject(e, "default", sp->default_value);
        cJSON_AddStringToObject(e, "description", sp->description ? sp->description : "");
        cJSON_AddItemToArray(cfg, e);
    }
    if (d->setup != NULL)
        cJSON_AddStringToObject(j, "setup", d->setup);
    return j;
}

/* A plugin's facts as text on stdout. */
static void describe_text(const struct plugin *p)
{
    const struct odsync_sink_descriptor *d = plugin_descriptor(p);
    char caps[128], flags[64];
    size_t i, width = 14;
    caps_text(d->capabilities, caps, sizeof(caps));
    printf("name:         %s\nversion:      %s\nfile:         %s\nabi:          %d.%u\n"
           "capabilities: %s\nmax batch:    %u\ndescription:  %s\nconfig:\n",
           d->name, d->version, plugin_path(p), ODSYNC_SINK_ABI_MAJOR, plugin_abi_minor(p), caps,
           (unsigned)d->max_batch, d->description);
    for (i = 0; d->config != NULL && d->config[i].name != NULL; i++)
        if (strlen(d->config[i].name) > width)
            width = strlen(d->config[i].name);
    for (i = 0; d->config != NULL && d->config[i].name != NULL; i++) {
        const struct odsync_config_spec *sp = &d->config[i];
        util_fmt(flags, sizeof(flags), "%s%s%s%s",
                 sp->flags & ODSYNC_CFG_REQUIRED ? "required" : "optional",
                 sp->flags & ODSYNC_CFG_SECRET ? ", secret" : "",
                 sp->default_value ? ", default " : "", sp->default_value ? sp->default_value : "");
        printf("  %-*s %-6s %-28s %s\n", (int)width, sp->name, type_names[sp->type], flags,
               sp->description ? sp->description : "");
    }
    if (d->config == NULL || d->config[0].name == NULL)
        printf("  (none)\n");
    if (d->setup != NULL && d->setup[0] != '\0')
        printf("setup (in the remote system, before first use):\n%s%s", d->setup,
               d->setup[strlen(d->setup) - 1] == '\n' ? "" : "\n");
}

/* Plugin directories: --plugin-dir, else the config's. *cfg may be set (caller frees). */
static int plugin_dirs_for(struct cli *c, struct config **cfg, char *const **dirs, size_t *n)
{
    int rc;
    if (c->n_plugin_dirs > 0) {
        *dirs = c->plugin_dirs;
        *n = c->n_plugin_dirs;
        return EXIT_OK;
    }
    rc = load_config(c, cfg);
    if (rc != EXIT_OK)
        return rc;
    *dirs = (*cfg)->plugin_dirs;
    *n = (*cfg)->n_plugin_dirs;
    return EXIT_OK;
}

/* 1 when name ends in ".so". */
static int is_so(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

/* List one directory's plugins into out (JSON array) or stdout. */
static void list_dir(const char *dir, int json, cJSON *out, int *refused)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096], err[ERR_LEN], caps[128];
    struct plugin *p;
    if (d == NULL) {
        fprintf(stderr, "odsync: %s: %s\n", dir, strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_so(e->d_name) || util_fmt(path, sizeof(path), "%s/%s", dir, e->d_name) != ODSYNC_OK)
            continue;
        if (plugin_open(path, &p, err, sizeof(err)) != ODSYNC_OK) {
            (*refused)++;
            if (json) {
                cJSON *r = cJSON_CreateObject();
                cJSON_AddStringToObject(r, "file", path);
                cJSON_AddStringToObject(r, "refused", err);
                cJSON_AddItemToArray(out, r);
            } else {
                printf("%-12s refused: %s\n", e->d_name, err);
            }
            continue;
        }
        if (json) {
            cJSON_AddItemToArray(out, describe_json(p));
        } else {
            caps_text(plugin_descriptor(p)->capabilities, caps, sizeof(caps));
            printf("%-12s %-8s ABI %d.%u  batch %-5u %-28s %s\n", plugin_descriptor(p)->name,
                   plugin_descriptor(p)->version, ODSYNC_SINK_ABI_MAJOR, plugin_abi_minor(p),
                   (unsigned)plugin_descriptor(p)->max_batch, caps, path);
        }
        plugin_close(p);
    }
    closedir(d);
}

static int cmd_plugins_list(struct cli *c, char *const *dirs, size_t n)
{
    cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
    int refused = 0;
    size_t i;
    for (i = 0; i < n; i++)
        list_dir(dirs[i], c->json, arr, &refused);
    if (c->json)
        print_json(arr);
    return EXIT_OK;
}

static int cmd_plugins_describe(struct cli *c, char *const *dirs, size_t n)
{
    char err[ERR_LEN], *path = NULL;
    struct plugin *p = NULL;
    const char *what = c->args[1];
    int rc;
    if (strchr(what, '/') != NULL) {
        path = util_strdup(what); /* an explicit path: the operator's own choice */
    } else if (plugin_find(dirs, n, what, &path, err, sizeof(err)) != ODSYNC_OK) {
        fprintf(stderr, "odsync: %s\n", err);
        return EXIT_PLUGIN;
    }
    rc = path ? plugin_open(path, &p, err, sizeof(err)) : ODSYNC_NOMEM;
    util_free(path);
    if (rc != ODSYNC_OK) {
        fprintf(stderr, "odsync: %s\n", rc == ODSYNC_NOMEM ? "out of memory" : err);
        return EXIT_PLUGIN;
    }
    if (c->json)
        print_json(describe_json(p));
    else
        describe_text(p);
    plugin_close(p);
    return EXIT_OK;
}

static int cmd_plugins(struct cli *c)
{
    struct config *cfg = NULL;
    char *const *dirs = NULL;
    size_t n = 0;
    int rc;
    if (c->n_args < 1 || (strcmp(c->args[0], "list") != 0 && strcmp(c->args[0], "describe") != 0) ||
        (strcmp(c->args[0], "describe") == 0 && c->n_args != 2)) {
        fprintf(stderr, "odsync: usage: odsync plugins list | odsync plugins describe NAME|PATH\n");
        return EXIT_USAGE;
    }
    if (strcmp(c->args[0], "describe") == 0 && strchr(c->args[1], '/') != NULL)
        return cmd_plugins_describe(c, NULL, 0);
    rc = plugin_dirs_for(c, &cfg, &dirs, &n);
    if (rc == EXIT_OK)
        rc = strcmp(c->args[0], "list") == 0 ? cmd_plugins_list(c, dirs, n)
                                             : cmd_plugins_describe(c, dirs, n);
    config_free(cfg);
    return rc;
}

/* ---- import, status, run ------------------------------------------------------------ */

static int cmd_import(struct cli *c)
{
    struct runtime *rt = NULL;
    struct import_stats s;
    char err[ERR_LEN];
    cJSON *j;
    int rc;
    if (c->n_args != 1) {
        fprintf(stderr, "odsync: usage: odsync import FILE\n");
        return EXIT_USAGE;
    }
    rc = open_runtime(c, 0, &rt);
    if (rc != EXIT_OK)
        return rc;
    rc = import_file(rt->store, rt->cfg, c->args[0], &s, err, sizeof(err));
    if (rc != ODSYNC_OK) {
        fprintf(stderr, "odsync: %s\n", err);
        runtime_close(rt);
        return rc == ODSYNC_STORE ? EXIT_STORE : EXIT_RUNTIME;
    }
    if (c->json) {
        j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "read", (double)s.read);
        cJSON_AddNumberToObject(j, "changed", (double)s.changed);
        cJSON_AddNumberToObject(j, "unchanged", (double)s.unchanged);
        cJSON_AddNumberToObject(j, "queued", (double)s.queued);
        print_json(j);
    } else {
        printf("imported %lld records: %lld changed, %lld unchanged, %lld deliveries queued\n",
               (long long)s.read, (long long)s.changed, (long long)s.unchanged,
               (long long)s.queued);
    }
    runtime_close(rt);
    return EXIT_OK;
}

static void iso_time(int64_t ms, char *buf, size_t len);

/* A sink's state in words: "running", "paused until ... (RATE_LIMITED)", "paused (AUTH)". */
static void state_text(const struct sink_state *ss, char *buf, size_t len)
{
    char when[32];
    if (ss->paused_until <= util_now_ms()) {
        util_fmt(buf, len, "running");
    } else if (ss->paused_until == SINK_PAUSED_INDEFINITELY) {
        util_fmt(buf, len, "paused (%s) until resumed: %s", odsync_status_name(ss->pause_class),
                 ss->detail);
    } else {
        iso_time(ss->paused_until, when, sizeof(when));
        util_fmt(buf, len, "paused until %s (%s)", when, odsync_status_name(ss->pause_class));
    }
}

/* One sink's status line or JSON object. */
static void status_sink(struct cli *c, struct runtime *rt, size_t i, cJSON *sinks)
{
    struct outbox_counts oc;
    struct sink_state ss;
    char state[320];
    outbox_count(rt->store, rt->sinks[i].cfg->name, &oc);
    sink_state_get(rt->store, rt->sinks[i].cfg->name, &ss);
    state_text(&ss, state, sizeof(state));
    if (c->json) {
        cJSON *s = cJSON_AddObjectToObject(sinks, rt->sinks[i].cfg->name);
        cJSON_AddNumberToObject(s, "pending", (double)oc.pending);
        cJSON_AddNumberToObject(s, "inflight", (double)oc.inflight);
        cJSON_AddNumberToObject(s, "done", (double)oc.done);
        cJSON_AddNumberToObject(s, "dead", (double)oc.dead);
        cJSON_AddStringToObject(s, "state", state);
    } else {
        printf("%-16s %9lld %9lld %9lld %9lld  %s\n", rt->sinks[i].cfg->name, (long long)oc.pending,
               (long long)oc.inflight, (long long)oc.done, (long long)oc.dead, state);
    }
}

/* One office's canonical counts, Open Dental state and checkpoints. */
/* Today's messages (office-local day) by state, and the opt-outs on file. o: the office's
 * JSON object, or NULL for text. */
static void status_messages(struct runtime *rt, const struct config_office *off, cJSON *o)
{
    struct ledger_counts lc;
    struct consent_row *rows = NULL;
    size_t n = 0, i, optouts = 0;
    int s;
    ledger_counts(rt->store, off->id, policy_local_day_start(off->engage, util_now_ms(), 0), &lc);
    if (consent_list(rt->store, off->id, &rows, &n) == ODSYNC_OK)
        for (i = 0; i < n; i++)
            optouts += strcmp(rows[i].state, "opt_out") == 0;
    consent_rows_free(rows, n);
    if (o != NULL) {
        cJSON *m = cJSON_AddObjectToObject(o, "messages_today");
        for (s = LEDGER_QUEUED; m != NULL && s < LEDGER_STATE_COUNT; s++)
            cJSON_AddNumberToObject(m, ledger_state_name(s), (double)lc.by_state[s]);
        cJSON_AddNumberToObject(o, "opt_outs", (double)optouts);
        return;
    }
    printf("  messages today: %lld sent, %lld queued, %lld held, %lld skipped, %lld expired, "
           "%lld failed, %lld unknown; opt-outs on file: %zu\n",
           (long long)lc.by_state[LEDGER_SENT], (long long)lc.by_state[LEDGER_QUEUED],
           (long long)lc.by_state[LEDGER_HELD], (long long)lc.by_state[LEDGER_SKIPPED],
           (long long)lc.by_state[LEDGER_EXPIRED], (long long)lc.by_state[LEDGER_FAILED],
           (long long)lc.by_state[LEDGER_UNKNOWN], optouts);
}

static void status_office(struct cli *c, struct runtime *rt, const struct config_office *off,
                          cJSON *offices)
{
    struct model_counts mc;
    struct ingest_checkpoint cp;
    char state[32], detail[256], when[32], ev_when[32], pass_when[32];
    int64_t last_event = 0, last_pass = 0, fresh, lag_s;
    cJSON *o = NULL, *cps = NULL;
    int r;
    model_count(rt->store, off->id, &mc);
    ingest_office_state(rt->store, off->id, state, sizeof(state), detail, sizeof(detail));
    events_office_last(rt->store, off->id, &last_event);
    ingest_checkpoint_get(rt->store, off->id, INGEST_PATIENTS, &cp);
    last_pass = cp.completed_at;
    fresh = last_event > last_pass ? last_event : last_pass;
    lag_s = fresh > 0 ? (util_now_ms() - fresh) / 1000 : -1;
    if (last_event > 0)
        iso_time(last_event, ev_when, sizeof(ev_when));
    else
        util_fmt(ev_when, sizeof(ev_when), "never");
    if (last_pass > 0)
        iso_time(last_pass, pass_when, sizeof(pass_when));
    else
        util_fmt(pass_when, sizeof(pass_when), "never");
    if (c->json) {
        o = cJSON_AddObjectToObject(offices, off->id);
        cJSON_AddNumberToObject(o, "patients", (double)mc.patients);
        cJSON_AddNumberToObject(o, "recalls", (double)mc.recalls);
        cJSON_AddNumberToObject(o, "appointments", (double)mc.appointments);
        cJSON_AddNumberToObject(o, "procedures", (double)mc.procedures);
        cJSON_AddNumberToObject(o, "clinics", (double)mc.clinics);
        cJSON_AddStringToObject(o, "opendental_state", state);
        cJSON_AddStringToObject(o, "opendental_detail", detail);
        cJSON_AddStringToObject(o, "last_event", ev_when);
        cJSON_AddStringToObject(o, "last_reconcile", pass_when);
        cJSON_AddNumberToObject(o, "lag_seconds", (double)lag_s);
        cps = cJSON_AddObjectToObject(o, "checkpoints");
    } else {
        printf("office %s: %lld patients, %lld recalls, %lld appointments, %lld procedures, "
               "%lld clinics; Open Dental: %s (%s)\n",
               off->id, (long long)mc.patients, (long long)mc.recalls, (long long)mc.appointments,
               (long long)mc.procedures, (long long)mc.clinics, state, detail);
        if (lag_s >= 0)
            printf("  last event %s, last reconcile %s, lag %llds\n", ev_when, pass_when,
                   (long long)lag_s);
        else
            printf("  last event %s, last reconcile %s, lag unknown\n", ev_when, pass_when);
    }
    status_messages(rt, off, c->json ? o : NULL);
    for (r = 0; r < INGEST_RESOURCE_COUNT; r++) {
        ingest_checkpoint_get(rt->store, off->id, (enum ingest_resource)r, &cp);
        if (cp.completed_at > 0)
            iso_time(cp.completed_at, when, sizeof(when));
        else
            util_fmt(when, sizeof(when), "never");
        if (c->json) {
            cJSON *e = cJSON_AddObjectToObject(cps, ingest_resource_name(r));
            cJSON_AddStringToObject(e, "phase", cp.phase);
            cJSON_AddStringToObject(e, "watermark", cp.watermark);
            cJSON_AddStringToObject(e, "completed", when);
        } else {
            printf("  %-22s %-12s watermark %-19s last completed %s\n", ingest_resource_name(r),
                   cp.phase, cp.watermark[0] ? cp.watermark : "-", when);
        }
    }
}

static int cmd_status(struct cli *c)
{
    struct runtime *rt = NULL;
    int64_t n = 0;
    cJSON *j = NULL, *sinks = NULL, *offices;
    size_t i;
    int rc = open_runtime(c, 0, &rt);
    if (rc != EXIT_OK)
        return rc;
    records_count(rt->store, NULL, &n);
    if (c->json) {
        j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "records", (double)n);
        sinks = cJSON_AddObjectToObject(j, "sinks");
    } else {
        printf("records: %lld\n%-16s %9s %9s %9s %9s  %s\n", (long long)n, "sink", "pending",
               "inflight", "done", "dead", "state");
    }
    for (i = 0; i < rt->n_sinks; i++)
        status_sink(c, rt, i, sinks);
    offices = c->json ? cJSON_AddObjectToObject(j, "offices") : NULL;
    for (i = 0; i < rt->cfg->n_offices; i++)
        status_office(c, rt, &rt->cfg->offices[i], offices);
    if (c->json)
        print_json(j);
    runtime_close(rt);
    return EXIT_OK;
}

/* SIGHUP: the watcher validates the config file as `check-config` would (plugins loaded,
 * settings checked) while the daemon keeps running. A bad file is refused with its error and
 * the running config stays; a good one stops the daemon (a drain, as SIGTERM) so cmd_run
 * starts it again on the new config. */
struct reload_watch {
    const char *path;
    pthread_t thread;
    volatile int quit;
    int reload; /* set when the new config passed and the daemon was asked to stop */
};

static void *reload_main(void *arg)
{
    struct reload_watch *w = arg;
    struct timespec tick = {0, 100 * 1000000L};
    while (!w->quit && !stop_requested) {
        if (reload_requested) {
            struct config *cfg = NULL;
            struct runtime *probe = NULL;
            char err[ERR_LEN] = "";
            int rc;
            reload_requested = 0;
            rc = config_load(w->path, &cfg, err, sizeof(err));
            if (rc == ODSYNC_OK)
                rc = runtime_open(cfg, RUNTIME_NO_STORE, &probe, err, sizeof(err));
            runtime_close(probe);
            if (rc == ODSYNC_OK) {
                log_info("run", "SIGHUP: %s is valid; draining to reload it", w->path);
                w->reload = 1;
                stop_requested = 1;
            } else {
                log_error("run", "SIGHUP: reload refused, the running configuration stays: %s",
                          err);
            }
        }
        nanosleep(&tick, NULL);
    }
    return NULL;
}

static int cmd_run(struct cli *c)
{
    struct daemon_options opt = {c->once, c->until_idle, c->deliver_only};
    struct reload_watch w;
    struct runtime *rt = NULL;
    struct sigaction sa;
    int rc, watching;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    for (;;) {
        rc = open_runtime(c, 0, &rt);
        if (rc != EXIT_OK)
            return rc;
        memset(&w, 0, sizeof(w));
        w.path = c->config;
        watching = pthread_create(&w.thread, NULL, reload_main, &w) == 0;
        rc = daemon_run(rt, &opt, &stop_requested);
        w.quit = 1;
        if (watching)
            pthread_join(w.thread, NULL);
        if (rc == ODSYNC_RETRY) {
            /* A plugin call outlived the shutdown deadline: leave without unloading it, and
             * without log_shutdown, so a thread still logging keeps its secrets masked. */
            fflush(NULL);
            _exit(EXIT_RUNTIME);
        }
        runtime_close(rt);
        rt = NULL;
        if (rc != ODSYNC_OK || !w.reload)
            break;
        stop_requested = 0;
        log_info("run", "configuration reloaded from %s", c->config);
    }
    return rc == ODSYNC_OK ? EXIT_OK : exit_for(rc);
}

/* ---- sync ---------------------------------------------------------------------------- */

/* One pass and projection for one office; 1 when it completed. */
static int sync_office(struct runtime *rt, const struct config_office *off)
{
    struct ingest_options opt = {stdout, 0, NULL};
    struct ingest_report rep;
    struct project_stats ps;
    struct od_client *c = od_client_create(off);
    int rc;
    if (c == NULL)
        return 0;
    printf("%s: syncing from %s (pacing %lld ms, pages of %lld)\n", off->id, off->od_base_url,
           (long long)off->od_min_interval_ms, (long long)off->od_page_size);
    rc = ingest_office(rt->store, off, c, &opt, &rep);
    od_client_destroy(c);
    /* Only a complete pass is projected: see daemon.c. */
    memset(&ps, 0, sizeof(ps));
    if (rc == ODSYNC_OK && project_office(rt->store, off, &ps) != ODSYNC_OK)
        rc = ODSYNC_STORE;
    printf("%s: %s after %lld Open Dental requests; %lld contacts changed, %lld deliveries "
           "queued\n",
           off->id, rc == ODSYNC_OK ? "pass complete" : "pass stopped", (long long)rep.requests,
           (long long)ps.changed, (long long)ps.queued);
    if (rc != ODSYNC_OK)
        fprintf(stderr, "odsync: %s\n", rep.detail[0] ? rep.detail : odsync_status_name(rc));
    return rc == ODSYNC_OK;
}

static int cmd_sync(struct cli *c)
{
    struct runtime *rt = NULL;
    int64_t seeded = 0;
    size_t i;
    int rc = open_runtime(c, 0, &rt), all_ok = 1, found = 0;
    if (rc != EXIT_OK)
        return rc;
    for (i = 0; i < rt->cfg->n_offices; i++) {
        if (c->office != NULL && strcmp(c->office, rt->cfg->offices[i].id) != 0)
            continue;
        found = 1;
        all_ok &= sync_office(rt, &rt->cfg->offices[i]);
    }
    if (found && resync_new_routes(rt->store, rt->cfg, &seeded) == ODSYNC_OK && seeded > 0)
        printf("newly routed sinks: %lld records queued (the office's full state)\n",
               (long long)seeded);
    if (!found) {
        fprintf(stderr, "odsync: no office \"%s\" in %s\n", c->office, c->config);
        rc = EXIT_USAGE;
    } else {
        rc = all_ok ? EXIT_OK : EXIT_RUNTIME;
    }
    runtime_close(rt);
    return rc;
}

/* ---- subscriptions --------------------------------------------------------------------- */

/* ensure or list for one office; 1 when it worked. */
static int subscriptions_office(struct cli *c, struct runtime *rt, const struct config_office *off,
                                cJSON *all)
{
    struct od_client *oc = od_client_create(off);
    struct subs_report rep;
    cJSON *list = NULL, *sub;
    char err[512];
    int rc;
    if (oc == NULL)
        return 0;
    if (strcmp(c->args[0], "ensure") == 0) {
        rc = subs_ensure(oc, rt->cfg, off, &rep, err, sizeof(err));
        if (rc == ODSYNC_OK)
            printf("%s: %d created, %d updated, %d unchanged\n", off->id, rep.created, rep.updated,
                   rep.unchanged);
    } else {
        rc = subs_list(oc, &list, err, sizeof(err));
        cJSON_ArrayForEach(sub, list)
        {
            const cJSON *n = cJSON_GetObjectItem(sub, "SubscriptionNum");
            const cJSON *t = cJSON_GetObjectItem(sub, "WatchTable");
            const cJSON *p = cJSON_GetObjectItem(sub, "PollingSeconds");
            const cJSON *w = cJSON_GetObjectItem(sub, "Workstation");
            const cJSON *u = cJSON_GetObjectItem(sub, "EndPointUrl");
            const cJSON *d = cJSON_GetObjectItem(sub, "DateTimeStart");
            if (!c->json)
                printf("%s  #%-5d %-20s every %3ds  workstation %-12s since %s  %s\n", off->id,
                       cJSON_IsNumber(n) ? n->valueint : 0,
                       cJSON_IsString(t) ? t->valuestring : "?",
                       cJSON_IsNumber(p) ? p->valueint : 0,
                       cJSON_IsString(w) && w->valuestring[0] ? w->valuestring : "(all)",
                       cJSON_IsString(d) ? d->valuestring : "?",
                       cJSON_IsString(u) ? u->valuestring : "?");
        }
        if (c->json && list != NULL)
            cJSON_AddItemToObject(all, off->id, list);
        else
            cJSON_Delete(list);
    }
    od_client_destroy(oc);
    if (rc != ODSYNC_OK)
        fprintf(stderr, "odsync: %s: subscriptions: %s\n", off->id, err);
    return rc == ODSYNC_OK;
}

static int cmd_subscriptions(struct cli *c)
{
    struct runtime *rt = NULL;
    cJSON *all = NULL;
    size_t i;
    int rc, ok = 1, found = 0;
    if (c->n_args != 1 || (strcmp(c->args[0], "ensure") != 0 && strcmp(c->args[0], "list") != 0)) {
        fprintf(stderr, "odsync: usage: odsync subscriptions ensure|list [--office ID]\n");
        return EXIT_USAGE;
    }
    rc = open_runtime(c, RUNTIME_NO_STORE, &rt);
    if (rc != EXIT_OK)
        return rc;
    if (strcmp(c->args[0], "ensure") == 0 && rt->cfg->events.public_url == NULL) {
        fprintf(stderr,
                "odsync: %s: events.public_url is not set: Open Dental needs the address "
                "it will post events to\n",
                c->config);
        runtime_close(rt);
        return EXIT_CONFIG;
    }
    all = c->json ? cJSON_CreateObject() : NULL;
    for (i = 0; i < rt->cfg->n_offices; i++) {
        if (c->office != NULL && strcmp(c->office, rt->cfg->offices[i].id) != 0)
            continue;
        found = 1;
        ok &= subscriptions_office(c, rt, &rt->cfg->offices[i], all);
    }
    if (c->json)
        print_json(all);
    runtime_close(rt);
    if (!found) {
        fprintf(stderr, "odsync: no office \"%s\" in %s\n", c->office, c->config);
        return EXIT_USAGE;
    }
    return ok ? EXIT_OK : EXIT_RUNTIME;
}

/* ---- dlq, sinks --------------------------------------------------------------------- */

/* "2026-11-27T16:58:21Z" for ms since the epoch. */
static void iso_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *kind_name(int kind)
{
    return kind == ODSYNC_KIND_CONTACT ? "contact" : kind == ODSYNC_KIND_TASK ? "task" : "message";
}

/* `dlq list`: one line (or JSON object) per dead letter. */
static int dlq_list(struct cli *c, struct runtime *rt)
{
    struct outbox_dead *rows = NULL;
    size_t n = 0, i;
    char when[32];
    cJSON *arr;
    if (outbox_dead_list(rt->store, c->sink, &rows, &n) != ODSYNC_OK)
        return EXIT_STORE;
    arr = c->json ? cJSON_CreateArray() : NULL;
    if (!c->json)
        printf("%-6s %-10s %-28s %-8s %4s %8s %-12s %-20s %s\n", "ID", "SINK", "KEY", "KIND", "VER",
               "ATTEMPTS", "CLASS", "WHEN (UTC)", "DETAIL");
    for (i = 0; i < n; i++) {
        iso_time(rows[i].dead_at, when, sizeof(when));
        if (c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)rows[i].id);
            cJSON_AddStringToObject(o, "sink", rows[i].sink);
            cJSON_AddStringToObject(o, "office", rows[i].office);
            cJSON_AddStringToObject(o, "key", rows[i].key);
            cJSON_AddStringToObject(o, "kind", kind_name(rows[i].kind));
            cJSON_AddNumberToObject(o, "version", (double)rows[i].version);
            cJSON_AddNumberToObject(o, "attempts", rows[i].attempts);
            cJSON_AddStringToObject(o, "class", odsync_status_name(rows[i].last_class));
            cJSON_AddStringToObject(o, "detail", rows[i].detail ? rows[i].detail : "");
            cJSON_AddStringToObject(o, "when", when);
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("%-6lld %-10s %-28s %-8s %4lld %8d %-12s %-20s %s\n", (long long)rows[i].id,
                   rows[i].sink, rows[i].key, kind_name(rows[i].kind), (long long)rows[i].version,
                   rows[i].attempts, odsync_status_name(rows[i].last_class), when,
                   rows[i].detail ? rows[i].detail : "");
        }
    }
    if (c->json)
        print_json(arr);
    else
        printf("%zu dead letter%s\n", n, n == 1 ? "" : "s");
    outbox_dead_free(rows, n);
    return EXIT_OK;
}

/* The ID argument of `dlq retry|drop ID`, or 0 with a usage message. */
static int64_t dlq_id(struct cli *c)
{
    int64_t id = 0;
    if (c->n_args != 2 || util_parse_i64(c->args[1], 1, INT64_MAX, &id) != ODSYNC_OK) {
        fprintf(stderr, "odsync: usage: odsync dlq %s ID%s\n", c->args[0],
                strcmp(c->args[0], "retry") == 0 ? "|--all [--sink S]" : "");
        return 0;
    }
    return id;
}

/* ---- resync ------------------------------------------------------------------------------ */

static int cmd_resync(struct cli *c)
{
    struct runtime *rt = NULL;
    int64_t queued, total = 0;
    size_t i, r, offices = 0;
    int rc;
    if (c->sink == NULL || c->n_args != 0) {
        fprintf(stderr, "odsync: usage: odsync resync --sink NAME [--office ID]\n");
        return EXIT_USAGE;
    }
    rc = open_runtime(c, 0, &rt);
    if (rc != EXIT_OK)
        return rc;
    if (runtime_find_sink(rt, c->sink) == NULL) {
        fprintf(stderr, "odsync: resync: no sink \"%s\" in %s\n", c->sink, c->config);
        runtime_close(rt);
        return EXIT_USAGE;
    }
    for (i = 0; i < rt->cfg->n_offices && rc == EXIT_OK; i++) {
        const struct config_office *o = &rt->cfg->offices[i];
        int routed = 0;
        if (c->office != NULL && strcmp(c->office, o->id) != 0)
            continue;
        for (r = CONFIG_ROUTE_CONTACT; r <= CONFIG_ROUTE_TASK; r++) {
            size_t k;
            for (k = 0; k < o->n_routes[r]; k++)
                routed |= strcmp(o->routes[r][k], c->sink) == 0;
        }
        if (!routed)
            continue;
        offices++;
        if (resync_office(rt->store, o, c->sink, RESYNC_CONTACTS | RESYNC_TASKS, &queued) !=
            ODSYNC_OK) {
            fprintf(stderr, "odsync: resync: %s\n", store_errmsg(rt->store));
            rc = EXIT_STORE;
            break;
        }
        printf("%s: %lld records queued for %s\n", o->id, (long long)queued, c->sink);
        total += queued;
    }
    if (rc == EXIT_OK && offices == 0) {
        fprintf(stderr, "odsync: resync: no office%s%s routes contacts or tasks to %s\n",
                c->office ? " " : "", c->office ? c->office : "", c->sink);
        rc = EXIT_USAGE;
    } else if (rc == EXIT_OK) {
        printf("%lld records queued; `odsync run` delivers them\n", (long long)total);
    }
    runtime_close(rt);
    return rc;
}

/* ---- dry-run ---------------------------------------------------------------------------- */

/* "HH:MM" of an instant in office's zone (or "-" for 0). */
static void local_hhmm(const struct config *cfg, const char *office, int64_t ms, char *out,
                       size_t len)
{
    const struct config_office *o = config_find_office(cfg, office);
    char buf[20];
    int64_t local = 0;
    if (ms <= 0 || o == NULL || tz_utc_to_local(o->engage->tz, ms / 1000, &local) != ODSYNC_OK) {
        util_fmt(out, len, "-");
        return;
    }
    tz_format_local(local, buf);
    util_fmt(out, len, "%.16s", buf);
}

/* The report as JSON on stdout. */
static void dryrun_json(const struct dryrun_report *r)
{
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "messages"), *m;
    char *text;
    size_t i;
    cJSON_AddStringToObject(o, "date", r->date);
    for (i = 0; list != NULL && i < r->count; i++) {
        const struct dryrun_row *w = &r->rows[i];
        m = cJSON_CreateObject();
        if (m == NULL || !cJSON_AddItemToArray(list, m))
            break;
        cJSON_AddStringToObject(m, "office", w->office ? w->office : "");
        cJSON_AddNumberToObject(m, "patnum", (double)w->patnum);
        cJSON_AddStringToObject(m, "key", w->key ? w->key : "");
        cJSON_AddStringToObject(m, "campaign", w->campaign ? w->campaign : "");
        cJSON_AddStringToObject(m, "channel", w->channel ? w->channel : "");
        cJSON_AddStringToObject(m, "outcome", w->outcome ? w->outcome : "");
        cJSON_AddNumberToObject(m, "at_ms", (double)w->at_ms);
        cJSON_AddNumberToObject(m, "until_ms", (double)w->until_ms);
        cJSON_AddStringToObject(m, "reason", w->reason ? w->reason : "");
        cJSON_AddStringToObject(m, "rule", w->rule ? w->rule : "");
        cJSON_AddStringToObject(m, "consent", w->consent ? w->consent : "");
    }
    m = cJSON_AddObjectToObject(o, "summary");
    cJSON_AddNumberToObject(m, "sent", (double)r->sent);
    cJSON_AddNumberToObject(m, "held", (double)r->held);
    cJSON_AddNumberToObject(m, "skipped", (double)r->skipped);
    text = cJSON_Print(o);
    if (text != NULL)
        printf("%s\n", text);
    cJSON_free(text);
    cJSON_Delete(o);
}

/* The report as text on stdout: one line per message, patients by opaque id only. */
static void dryrun_text(const struct config *cfg, const struct dryrun_report *r)
{
    char at[24], until[24];
    size_t i;
    printf("dry-run for %s: nothing is sent and nothing is kept\n", r->date);
    for (i = 0; i < r->count; i++) {
        const struct dryrun_row *w = &r->rows[i];
        local_hhmm(cfg, w->office, w->at_ms, at, sizeof(at));
        local_hhmm(cfg, w->office, w->until_ms, until, sizeof(until));
        if (strcmp(w->outcome, "sent") == 0)
            printf("SEND  %-10s patient %-8lld %-12s %-5s at %s  (%s)\n", w->office,
                   (long long)w->patnum, w->campaign, w->channel, at + 11,
                   w->consent ? w->consent : "");
        else if (strcmp(w->outcome, "held") == 0 || strcmp(w->outcome, "queued") == 0)
            printf("HOLD  %-10s patient %-8lld %-12s %-5s until %s  %s (%s)\n", w->office,
                   (long long)w->patnum, w->campaign, w->channel, until, w->reason ? w->reason : "",
                   w->rule ? w->rule : "");
        else
            printf("SKIP  %-10s patient %-8lld %-12s %-5s %s (%s)%s%s\n", w->office,
                   (long long)w->patnum, w->campaign, w->channel, w->reason ? w->reason : "",
                   w->rule ? w->rule : "", w->consent ? "  " : "", w->consent ? w->consent : "");
    }
    printf("summary: %lld would be sent, %lld held for later, %lld skipped\n", (long long)r->sent,
           (long long)r->held, (long long)r->skipped);
}

static int cmd_dry_run(struct cli *c)
{
    struct runtime *rt = NULL;
    struct dryrun_report r;
    char err[ERR_LEN] = "";
    int rc = open_runtime(c, 0, &rt);
    if (rc != EXIT_OK)
        return rc;
    rc = dryrun_run(rt->store, rt->cfg, c->office, c->date, util_now_ms(), &r, err, sizeof(err));
    if (rc == ODSYNC_OK) {
        if (c->json)
            dryrun_json(&r);
        else
            dryrun_text(rt->cfg, &r);
        dryrun_report_clear(&r);
    } else {
        fprintf(stderr, "odsync: dry-run: %s\n", err);
    }
    runtime_close(rt);
    return rc == ODSYNC_OK                                  ? EXIT_OK
           : rc == ODSYNC_INVALID || rc == ODSYNC_NOT_FOUND ? EXIT_USAGE
                                                            : EXIT_RUNTIME;
}

/* ---- optout ------------------------------------------------------------------------------ */

struct optout_args {
    const char *office, *channel, *address, *purpose;
    int add;
    int changed;
};

static int optout_tx(struct store *st, void *arg)
{
    struct optout_args *a = arg;
    if (a->add)
        return consent_opt_out(st, a->office, a->channel, a->address, a->purpose, "staff",
                               "odsync optout add", util_now_ms(), &a->changed);
    return consent_opt_in(st, a->office, a->channel, a->address, a->purpose, "staff",
                          "odsync optout remove", util_now_ms(), &a->changed);
}

/* `optout list`. */
static int optout_list(struct cli *c, struct runtime *rt)
{
    struct consent_row *rows = NULL;
    size_t n = 0, i;
    cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
    char *text;
    if (consent_list(rt->store, c->office, &rows, &n) != ODSYNC_OK) {
        cJSON_Delete(arr);
        fprintf(stderr, "odsync: optout list: %s\n", store_errmsg(rt->store));
        return EXIT_STORE;
    }
    for (i = 0; i < n; i++) {
        if (arr != NULL) {
            cJSON *m = cJSON_CreateObject();
            if (m == NULL || !cJSON_AddItemToArray(arr, m))
                break;
            cJSON_AddStringToObject(m, "office", rows[i].office);
            cJSON_AddStringToObject(m, "channel", rows[i].channel);
            cJSON_AddStringToObject(m, "address", rows[i].address);
            cJSON_AddStringToObject(m, "purpose", rows[i].purpose);
            cJSON_AddStringToObject(m, "state", rows[i].state);
            cJSON_AddStringToObject(m, "source", rows[i].source);
            cJSON_AddNumberToObject(m, "at_ms", (double)rows[i].at_ms);
        } else {
            printf("%-10s %-5s %-28s %-13s %-8s %s\n", rows[i].office, rows[i].channel,
                   rows[i].address, rows[i].purpose, rows[i].state, rows[i].source);
        }
    }
    text = arr ? cJSON_Print(arr) : NULL;
    if (text != NULL)
        printf("%s\n", text);
    cJSON_free(text);
    cJSON_Delete(arr);
    consent_rows_free(rows, n);
    return EXIT_OK;
}

static int cmd_optout(struct cli *c)
{
    struct runtime *rt = NULL;
    struct optout_args a;
    int rc, list = c->n_args == 1 && strcmp(c->args[0], "list") == 0;
    int change =
        c->n_args == 3 && (strcmp(c->args[0], "add") == 0 || strcmp(c->args[0], "remove") == 0);
    if ((!list && !change) || (change && c->office == NULL)) {
        fprintf(stderr, "odsync: usage: odsync optout list [--office ID] | add|remove sms|email "
                        "ADDRESS --office ID [--purpose P]\n");
        return EXIT_USAGE;
    }
    rc = open_runtime(c, 0, &rt);
    if (rc != EXIT_OK)
        return rc;
    if (list) {
        rc = optout_list(c, rt);
        runtime_close(rt);
        return rc;
    }
    memset(&a, 0, sizeof(a));
    a.office = c->office;
    a.channel = c->args[1];
    a.address = c->args[2];
    a.purpose = c->purpose ? c->purpose : "*";
    a.add = strcmp(c->args[0], "add") == 0;
    if (config_find_office(rt->cfg, c->office) == NULL) {
        fprintf(stderr, "odsync: no office \"%s\" in %s\n", c->office, c->config);
        rc = EXIT_USAGE;
    } else if ((rc = store_tx(rt->store, optout_tx, &a)) == ODSYNC_INVALID) {
        fprintf(stderr, "odsync: optout: %s is not a valid %s address\n", a.address, a.channel);
        rc = EXIT_USAGE;
    } else if (rc != ODSYNC_OK) {
        fprintf(stderr, "odsync: optout: %s\n", store_errmsg(rt->store));
        rc = EXIT_STORE;
    } else {
        printf("%s %s (%s): %s\n", a.channel, a.add ? "opted out" : "opted back in", a.purpose,
               a.changed ? "recorded" : "already so");
        rc = EXIT_OK;
    }
    runtime_close(rt);
    return rc;
}

static int cmd_dlq(struct cli *c)
{
    struct runtime *rt = NULL;
    int64_t id = 0, n = 0;
    int rc, dropped = 0;
    if (c->n_args < 1 || (strcmp(c->args[0], "list") != 0 && strcmp(c->args[0], "retry") != 0 &&
                          strcmp(c->args[0], "drop") != 0)) {
        fprintf(stderr, "odsync: usage: odsync dlq list|retry|drop ...\n");
        return EXIT_USAGE;
    }
    if (strcmp(c->args[0], "list") != 0 && !(c->all && strcmp(c->args[0], "retry") == 0) &&
        (id = dlq_id(c)) == 0)
        return EXIT_USAGE;
    rc = open_runtime(c, 0, &rt);
    if (rc != EXIT_OK)
        return rc;
    if (strcmp(c->args[0], "list") == 0) {
        rc = dlq_list(c, rt);
    } else if (strcmp(c->args[0], "retry") == 0) {
        rc = outbox_dead_retry(rt->store, id, c->sink, &n) == ODSYNC_OK ? EXIT_OK : EXIT_STORE;
        if (rc == EXIT_OK && n == 0 && id > 0) {
            fprintf(stderr, "odsync: no dead letter with id %lld\n", (long long)id);
            rc = EXIT_RUNTIME;
        } else if (rc == EXIT_OK) {
            printf("requeued %lld dead letter%s\n", (long long)n, n == 1 ? "" : "s");
        }
    } else {
        rc = outbox_dead_drop(rt->store, id, &dropped) == ODSYNC_OK ? EXIT_OK : EXIT_STORE;
        if (rc == EXIT_OK && !dropped) {
            fprintf(stderr, "odsync: no dead letter with id %lld\n", (long long)id);
            rc = EXIT_RUNTIME;
        } else if (rc == EXIT_OK) {
            printf("dropped dead letter %lld\n", (long long)id);
        }
    }
    runtime_close(rt);
    return rc;
}

static int cmd_sinks(struct cli *c)
{
    struct runtime *rt = NULL;
    int rc, cleared = 0;
    if (c->n_args != 2 || strcmp(c->args[0], "resume") != 0) {
        fprintf(stderr, "odsync: usage: odsync sinks resume NAME\n");
        return EXIT_USAGE;
    }
    rc = open_runtime(c, 0, &rt);
    if (rc != EXIT_OK)
        return rc;
    if (runtime_find_sink(rt, c->args[1]) == NULL) {
        fprintf(stderr, "odsync: no sink instance named \"%s\" in %s\n", c->args[1], c->config);
        rc = EXIT_USAGE;
    } else if (sink_state_resume(rt->store, c->args[1], &cleared) != ODSYNC_OK) {
        rc = EXIT_STORE;
    } else {
        printf(cleared ? "sink %s resumed\n" : "sink %s was not paused\n", c->args[1]);
    }
    runtime_close(rt);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------------------- */

static int cmd_help(struct cli *c);

static const struct command commands[] = {
    {"run", cmd_run, "odsync run [--once|--until-idle] [--deliver-only] [--config FILE]",
     "Run the sync: one ingester per office (a pass every opendental.sync_interval_s, then\n"
     "the projection) and one delivery worker per sink, until SIGTERM/SIGINT, which drains\n"
     "the batches and pages in flight (within delivery.shutdown_timeout_ms) and exits.\n"
     "SIGHUP reloads the config: a bad file is refused (logged) and the running config stays.\n"
     "The listener serves API Events, provider webhooks, the dashboard and /metrics.\n"
     "  --until-idle    exit once every office finished a pass and no sink has anything\n"
     "                  pending or in flight (or is paused until an operator acts)\n"
     "  --deliver-only  no ingestion: deliver what is already queued\n"
     "  --once          one delivery pass over what is due now, in one thread, then exit"},
    {"check-config", cmd_check_config, "odsync check-config [--config FILE] [--json]",
     "Validate the config, load every plugin and validate each sink's settings, without\n"
     "opening the database or contacting anything."},
    {"plugins", cmd_plugins,
     "odsync plugins list|describe NAME|PATH [--config FILE] [--plugin-dir DIR] [--json]",
     "List the plugins in the plugin directories (refused ones with the reason), or describe\n"
     "one: name, version, ABI, capabilities, batch size and config keys (secrets marked)."},
    {"import", cmd_import, "odsync import FILE [--config FILE] [--json]",
     "Import canonical records (a JSON array of contacts and tasks) into the store and queue\n"
     "the changed ones for their sinks. Unchanged records queue nothing."},
    {"sync", cmd_sync, "odsync sync [--once] [--office ID] [--config FILE]",
     "One ingestion pass per office (or the one named): backfill from the checkpoints, or an\n"
     "incremental pass after it, with a progress line per resource; then the changed patients\n"
     "are projected into contact records and queued for their sinks. Exit 1 when an office's\n"
     "pass stopped early (its Open Dental state says why)."},
    {"subscriptions", cmd_subscriptions,
     "odsync subscriptions ensure|list [--office ID] [--json] [--config FILE]",
     "API Events subscriptions in Open Dental. ensure creates the missing ones (Patient,\n"
     "Appointment, AppointmentDeleted; EndPointUrl from events.public_url, the office's\n"
     "Workstation, events.polling_seconds) and corrects a drifted PollingSeconds; running it\n"
     "again changes nothing. list shows what Open Dental has."},
    {"resync", cmd_resync, "odsync resync --sink NAME [--office ID] [--config FILE]",
     "Queue the full canonical state (every contact and task record) of each office that\n"
     "routes to sink NAME, as if new: for a CRM emptied or restored from an old backup. A row\n"
     "already delivered keeps its remote id, so tasks are updated in place. A sink newly added\n"
     "to an office's routes is seeded like this automatically by `run` and `sync`. Messages\n"
     "are never resent."},
    {"dry-run", cmd_dry_run, "odsync dry-run [--office ID] [--date YYYY-MM-DD] [--json]",
     "Who would be messaged on that day (default today), on which channel, and for everyone\n"
     "held or skipped, why (reason code, messaging rule and consent). It runs the real rules\n"
     "and send checks inside a transaction that is rolled back: nothing is sent or kept.\n"
     "Patients appear by PatNum only."},
    {"optout", cmd_optout,
     "odsync optout list [--office ID] [--json] | add|remove sms|email ADDRESS --office ID "
     "[--purpose P]",
     "The consent ledger. add records a staff-entered opt-out (a patient's call or letter);\n"
     "remove records the patient's explicit request to opt back in. --purpose is recall,\n"
     "reactivation, review or * (default: every purpose). Opt-outs from Open Dental, Twilio\n"
     "and SendGrid are recorded automatically and listed here with their source."},
    {"dlq", cmd_dlq, "odsync dlq list [--sink S] [--json] | retry ID|--all [--sink S] | drop ID",
     "Dead letters: records a sink refused for good or that ran out of attempts. list shows\n"
     "which record, which sink, why and when; retry requeues (attempts reset); drop deletes."},
    {"sinks", cmd_sinks, "odsync sinks resume NAME",
     "Resume a sink paused after the remote refused its credentials (AUTH) or rate limited\n"
     "it. `odsync status` shows pauses."},
    {"status", cmd_status, "odsync status [--config FILE] [--json]",
     "Records in the store and outbox rows per sink and state."},
    {"version", cmd_version, "odsync version [--json]", "Print the version and sink ABI."},
    {"help", cmd_help, "odsync help [COMMAND]", "Show help."},
};

static int cmd_help(struct cli *c)
{
    size_t i;
    for (i = 0; c->n_args > 0 && i < UTIL_ARRAY_LEN(commands); i++) {
        if (strcmp(commands[i].name, c->args[0]) == 0) {
            printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].help);
            return EXIT_OK;
        }
    }
    printf("usage: odsync COMMAND [options]\n\ncommands:\n");
    for (i = 0; i < UTIL_ARRAY_LEN(commands); i++)
        printf("  %s\n", commands[i].usage);
    printf("\ncommon options:\n"
           "  --config FILE  config file (default $ODSYNC_CONFIG, then %s)\n"
           "  --json         machine-readable output\n"
           "  --help         help for a command\n"
           "\nexit codes: 0 ok, 1 runtime failure, 2 usage, 3 invalid config, 4 plugin refused,\n"
           "            5 store error\n",
           DEFAULT_CONFIG);
    return EXIT_OK;
}

/* Parse options after the command word. Returns EXIT_OK or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct cli *c)
{
    int i;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            c->config = argv[++i];
        } else if (strcmp(a, "--plugin-dir") == 0 && i + 1 < argc && c->n_plugin_dirs < MAX_DIRS) {
            c->plugin_dirs[c->n_plugin_dirs++] = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            c->json = 1;
        } else if (strcmp(a, "--once") == 0) {
            c->once = 1;
        } else if (strcmp(a, "--until-idle") == 0) {
            c->until_idle = 1;
        } else if (strcmp(a, "--deliver-only") == 0) {
            c->deliver_only = 1;
        } else if (strcmp(a, "--all") == 0) {
            c->all = 1;
        } else if (strcmp(a, "--sink") == 0 && i + 1 < argc) {
            c->sink = argv[++i];
        } else if (strcmp(a, "--office") == 0 && i + 1 < argc) {
            c->office = argv[++i];
        } else if (strcmp(a, "--date") == 0 && i + 1 < argc) {
            c->date = argv[++i];
        } else if (strcmp(a, "--purpose") == 0 && i + 1 < argc) {
            c->purpose = argv[++i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "odsync: unknown option %s (see odsync help)\n", a);
            return EXIT_USAGE;
        } else if (c->n_args < MAX_ARGS) {
            c->args[c->n_args++] = a;
        } else {
            fprintf(stderr, "odsync: too many arguments\n");
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct cli c;
    const char *env = getenv("ODSYNC_CONFIG");
    size_t i;
    int rc = EXIT_USAGE;

    memset(&c, 0, sizeof(c));
    c.config = env && *env ? env : DEFAULT_CONFIG;
    util_init_cjson_hooks();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(&c) == EXIT_OK && argc >= 2 ? EXIT_OK : EXIT_USAGE;
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(&c);
    if (parse_args(argc, argv, &c) != EXIT_OK)
        return EXIT_USAGE;
    if (http_global_init() != ODSYNC_OK) {
        fprintf(stderr, "odsync: cannot initialise libcurl\n");
        return EXIT_RUNTIME;
    }
    for (i = 0; i < UTIL_ARRAY_LEN(commands); i++) {
        if (strcmp(commands[i].name, argv[1]) != 0)
            continue;
        if (c.help) {
            c.args[0] = commands[i].name;
            c.n_args = 1;
            rc = cmd_help(&c);
        } else {
            rc = commands[i].fn(&c);
        }
        goto cleanup;
    }
    fprintf(stderr, "odsync: unknown command \"%s\" (see odsync help)\n", argv[1]);
cleanup:
    http_global_cleanup();
    log_shutdown();
    return rc;
}
