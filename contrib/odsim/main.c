/*
 * odsim: a faithful local fake of Open Dental's REST API v1 for odsync's client tests and
 * benchmarks. contrib/odsim/README.md documents every flag, endpoint, fault and admin call.
 *
 *   odsim --listen 127.0.0.1:PORT --patients N --seed S [--offices K] [--db FILE]
 *         [--mode remote|local] [--developer-key K] [--customer-key K ...]
 *         [--throttle none|MS] [--over-limit delay|reject] [--tz ZONE]
 *         [--clock "yyyy-MM-dd HH:mm:ss"|real] [--econnector-down] [--slow-ms N]
 *         [--timeout-504-ms N] [--shuffle] [--gt|--ge] [--print-keys] [--verbose]
 *         [--event-machines N] [--event-batch N] [--event-timeout-ms N]
 *         [--event-cap-hours N] [--event-faults JSON ...]
 *
 * This file: the command line, start-up (time zone, offices, keys, clocks, data), the HTTP
 * server (libmicrohttpd, one thread per connection) and dispatch: /api/v1/... goes through
 * guard.c, /_admin/... to admin.c. It prints "listening on 127.0.0.1:PORT" on stdout once
 * ready (PORT 0 picks a free port) and nothing else there; SIGTERM/SIGINT exit 0, bad flags
 * exit 2, start-up failures exit 1. Request bodies (patient data) are never logged.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "admin.h"
#include "clock.h"
#include "events.h"
#include "gen.h"
#include "guard.h"
#include "log.h"
#include "odsim.h"
#include "rest.h"
#include "serve.h"
#include "store.h"

#define DEFAULT_DEV_KEY  "NFF6i0KrXrxDkZHt"
#define DEFAULT_CUST_KEY "VzkmZEaUWOjnQX2z"

/* ---- shared helpers (odsim.h) ------------------------------------------------------------ */

uint64_t sim_rng(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

int64_t sim_rng_range(uint64_t *state, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)(hi - lo) + 1;
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(sim_rng(state) % span);
}

int sim_rng_permille(uint64_t *state, int permille)
{
    return (int64_t)(sim_rng(state) % 1000) < permille;
}

void sim_sleep_ms(struct sim *s, int64_t ms)
{
    int64_t end = util_monotonic_ms() + ms;
    for (;;) {
        int64_t left = end - util_monotonic_ms();
        if (left <= 0 || atomic_load(&s->stopping))
            return;
        if (left > 50)
            left = 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

struct office *sim_office_by_key(struct sim *s, const char *key)
{
    struct office *found = NULL;
    for (int i = 0; i < s->noffices; i++) {
        if (util_secure_equal(s->offices[i].key, key))
            found = &s->offices[i];
    }
    return found;
}

struct office *sim_office_by_num(struct sim *s, int64_t num)
{
    return num >= 1 && num <= s->noffices ? &s->offices[num - 1] : NULL;
}

void answer_set(struct answer *a, unsigned status, char *body)
{
    util_free(a->body);
    a->status = status;
    a->body = body;
}

void answer_error(struct answer *a, unsigned status, const char *msg)
{
    answer_set(a, status, json_string_body(msg));
}

/* Iterator state for req_arg. */
struct arg_find {
    const char *name;
    const char *value;
};

static enum MHD_Result find_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct arg_find *f = cls;
    (void)kind;
    if (key != NULL && strcasecmp(key, f->name) == 0) {
        f->value = value != NULL ? value : "";
        return MHD_NO;
    }
    return MHD_YES;
}

const char *req_arg(const struct req *r, const char *name)
{
    struct arg_find f = {name, NULL};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, find_arg, &f);
    return f.value;
}

const char *req_header(const struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int req_is_loopback(const struct req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return 0;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)ci->client_addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)ci->client_addr;
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               (memcmp(in6->sin6_addr.s6_addr, v4mapped, 12) == 0 &&
                in6->sin6_addr.s6_addr[12] == 127);
    }
    return 0;
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static void free_body(void *p)
{
    util_free(p);
}

/* Queue a; takes a->body and a->location. */
static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
    char num[24];
    enum MHD_Result ret = MHD_NO;
    char *body = a->body;
    a->body = NULL;
    if (body == NULL) {
        a->status = 500;
        body = json_string_body("Out of memory in the simulator.");
        if (body == NULL)
            goto cleanup;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free_body);
    if (resp == NULL) {
        util_free(body);
        goto cleanup;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    if (a->retry_after >= 0) {
        util_fmt(num, sizeof(num), "%lld", (long long)a->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (a->location != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, a->location);
    ret = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
cleanup:
    util_free(a->location);
    a->location = NULL;
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct sim *s = cls;
    struct serve_upload *up;
    enum MHD_Result more;
    struct answer a = {.status = 0, .body = NULL, .retry_after = -1, .location = NULL};
    struct req r;
    (void)version;
    up = serve_collect(req_cls, upload_data, upload_data_size, ODSIM_MAX_BODY, &more);
    if (up == NULL)
        return more;
    r.conn = conn;
    r.method = method;
    r.path = url;
    r.body = up->body.data != NULL ? up->body.data : "";
    r.body_len = up->body.len;
    r.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (r.host == NULL || strpbrk(r.host, "\r\n") != NULL)
        r.host = "127.0.0.1";
    if (up->too_big) {
        answer_error(&a, 413, "The request body is too large.");
    } else if (strncmp(url, "/_admin", 7) == 0 && (url[7] == '/' || url[7] == '\0')) {
        admin_serve(s, &r, &a);
    } else if (strncasecmp(url, "/api/v1", 7) == 0 && (url[7] == '/' || url[7] == '\0')) {
        /* "/api/v1/fhir/v2/..." keeps its prefix so that no (FHIR) route matches it: 404. */
        r.path = url[7] == '\0' ? "/" : strncasecmp(url + 7, "/fhir/", 6) == 0 ? url : url + 7;
        guard_serve(s, &r, &a);
    } else if (strncasecmp(url, "/fhir/v2", 8) == 0 && (url[8] == '/' || url[8] == '\0')) {
        r.path = url; /* FHIR v2 (fhir.h): same guard, routes "/fhir/v2/..." in rest.c */
        guard_serve(s, &r, &a);
    } else {
        answer_error(&a, 404, "The requested resource was not found.");
    }
    log_debug(ODSIM_LOG, "%s %s: %u", method, url, a.status);
    return send_answer(conn, &a);
}

/* ---- command line ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fputs("usage: odsim [options]\n"
          "\n"
          "A local Open Dental REST API v1 simulator (see contrib/odsim/README.md).\n"
          "\n"
          "  --listen A.B.C.D:PORT     address (default 127.0.0.1:0, a free port)\n"
          "  --patients N              patients per office (default 1000)\n"
          "  --seed S                  data seed (default 1)\n"
          "  --offices K               simulated practices, 1..64 (default 1)\n"
          "  --db FILE                 SQLite file (default in memory); reused when it holds\n"
          "                            the same seed/patients/offices/start day\n"
          "  --mode remote|local       remote: page 100, throttle, eConnector; local: page\n"
          "                            1000, no throttle (default remote)\n"
          "  --developer-key K         (default " DEFAULT_DEV_KEY ")\n"
          "  --customer-key K          repeat for offices 1, 2, ... (default office 1:\n"
          "                            " DEFAULT_CUST_KEY ", others derived)\n"
          "  --print-keys              print each office's customer key and exit\n"
          "  --throttle none|MS        per-key interval, e.g. 5000, 1000, 500 (default none)\n"
          "  --over-limit delay|reject hold early requests, or 429 + Retry-After (default delay)\n"
          "  --tz ZONE                 office time zone (default America/Chicago)\n"
          "  --clock TIME|real         office-local start time \"yyyy-MM-dd HH:mm:ss\" or real\n"
          "                            (default real); the clock runs from there\n"
          "  --econnector-down         every remote call answers 400 (eConnector not running)\n"
          "  --slow-ms N               add N ms to every call\n"
          "  --timeout-504-ms N        calls slower than N ms answer 504\n"
          "  --shuffle                 lists in a seeded, stable, non-PK order\n"
          "  --gt | --ge               DateTStamp filters compare > or >= (default --ge)\n"
          "  --verbose                 log every request on stderr\n"
          "  --event-machines N        API Events pollers per office (default 1)\n"
          "  --event-batch N           rows per event POST (default 1000)\n"
          "  --event-timeout-ms N      an event POST without a 2xx by then failed (60000)\n"
          "  --event-cap-hours N       a resent window reaches back at most N h (72; 0 none)\n"
          "  --event-faults JSON       event faults as POST /_admin/events takes them\n"
          "  --help                    this text\n",
          out);
}

struct options {
    const char *listen_at, *db, *dev_key, *tz, *clock;
    const char *cust_keys[ODSIM_MAX_OFFICES];
    int ncust;
    int64_t patients, seed, offices;
    int local, shuffle, gt, print_keys, verbose, help;
    struct faults faults;
    struct events_options events;
};

/* Parse argv into o ("--name VALUE" or "--name=VALUE"). Returns ODSYNC_OK or ODSYNC_PARSE
 * after printing why. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const char *const flags[] = {"econnector-down", "shuffle", "gt",   "ge",
                                        "print-keys",      "verbose", "help", NULL};
    for (int i = 1; i < argc; i++) {
        char name[40];
        const char *arg = argv[i], *value = NULL, *eq = strchr(arg, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        int is_flag = 0;
        if (strncmp(arg, "--", 2) != 0 || nlen < 3 || nlen - 2 >= sizeof(name)) {
            fprintf(stderr, "odsim: unknown argument \"%s\" (see --help)\n", arg);
            return ODSYNC_PARSE;
        }
        memcpy(name, arg + 2, nlen - 2);
        name[nlen - 2] = '\0';
        for (int f = 0; flags[f] != NULL; f++)
            is_flag |= strcmp(flags[f], name) == 0;
        if (is_flag) {
            if (eq != NULL) {
                fprintf(stderr, "odsim: --%s takes no value\n", name);
                return ODSYNC_PARSE;
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "odsim: --%s needs a value (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        int ok = 1;
        if (strcmp(name, "econnector-down") == 0)
            o->faults.econnector_down = 1;
        else if (strcmp(name, "shuffle") == 0)
            o->shuffle = 1;
        else if (strcmp(name, "gt") == 0)
            o->gt = 1;
        else if (strcmp(name, "ge") == 0)
            o->gt = 0;
        else if (strcmp(name, "print-keys") == 0)
            o->print_keys = 1;
        else if (strcmp(name, "verbose") == 0)
            o->verbose = 1;
        else if (strcmp(name, "help") == 0)
            o->help = 1;
        else if (strcmp(name, "listen") == 0)
            o->listen_at = value;
        else if (strcmp(name, "db") == 0)
            o->db = value;
        else if (strcmp(name, "developer-key") == 0)
            o->dev_key = value;
        else if (strcmp(name, "tz") == 0)
            o->tz = value;
        else if (strcmp(name, "clock") == 0)
            o->clock = value;
        else if (strcmp(name, "customer-key") == 0) {
            ok = o->ncust < ODSIM_MAX_OFFICES && value[0] != '\0' &&
                 strlen(value) < ODSIM_KEY_MAX && strpbrk(value, "/ \t") == NULL;
            if (ok)
                o->cust_keys[o->ncust++] = value;
        } else if (strcmp(name, "patients") == 0)
            ok = util_parse_i64(value, 0, 5000000, &o->patients) == ODSYNC_OK;
        else if (strcmp(name, "seed") == 0)
            ok = util_parse_i64(value, 0, INT64_MAX, &o->seed) == ODSYNC_OK;
        else if (strcmp(name, "offices") == 0)
            ok = util_parse_i64(value, 1, ODSIM_MAX_OFFICES, &o->offices) == ODSYNC_OK;
        else if (strcmp(name, "mode") == 0) {
            ok = strcmp(value, "remote") == 0 || strcmp(value, "local") == 0;
            o->local = strcmp(value, "local") == 0;
        } else if (strcmp(name, "throttle") == 0) {
            if (strcmp(value, "none") == 0)
                o->faults.throttle_ms = 0;
            else
                ok = util_parse_i64(value, 0, 3600000, &o->faults.throttle_ms) == ODSYNC_OK;
        } else if (strcmp(name, "over-limit") == 0) {
            ok = strcmp(value, "delay") == 0 || strcmp(value, "reject") == 0;
            o->faults.over_limit_reject = strcmp(value, "reject") == 0;
        } else if (strcmp(name, "slow-ms") == 0)
            ok = util_parse_i64(value, 0, 3600000, &o->faults.slow_ms) == ODSYNC_OK;
        else if (strcmp(name, "timeout-504-ms") == 0)
            ok = util_parse_i64(value, 0, 3600000, &o->faults.timeout_504_ms) == ODSYNC_OK;
        else if (!events_flag(&o->events, name, value, &ok)) {
            fprintf(stderr, "odsim: unknown flag --%s (see --help)\n", name);
            return ODSYNC_PARSE;
        }
        if (!ok) {
            fprintf(stderr, "odsim: --%s: bad value \"%s\"\n", name, value != NULL ? value : "");
            return ODSYNC_PARSE;
        }
    }
    return ODSYNC_OK;
}

/* 1 when zone names a tz database file (TZDIR or /usr/share/zoneinfo). */
static int zone_exists(const char *zone)
{
    char path[512];
    const char *dir = getenv("TZDIR");
    if (zone[0] == '\0' || strstr(zone, "..") != NULL)
        return 0;
    if (zone[0] == '/')
        return access(zone, R_OK) == 0;
    if (strcmp(zone, "UTC") == 0)
        return 1;
    util_fmt(path, sizeof(path), "%s/%s", dir != NULL ? dir : "/usr/share/zoneinfo", zone);
    return access(path, R_OK) == 0;
}

int main(int argc, char **argv)
{
    static struct sim s; /* static: reachable from MHD threads, zeroed */
    struct options o = {.listen_at = "127.0.0.1:0",
                        .db = ":memory:",
                        .dev_key = DEFAULT_DEV_KEY,
                        .tz = "America/Chicago",
                        .clock = "real",
                        .patients = 1000,
                        .seed = 1,
                        .offices = 1};
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in addr;
    char host[INET_ADDRSTRLEN], tzenv[300];
    sigset_t sigs;
    int sig, rc = 2, locks = 0;
    int64_t start_utc_ms, naive;

    if (parse_args(argc, argv, &o) != ODSYNC_OK)
        goto cleanup;
    if (o.help) {
        usage(stdout);
        rc = 0;
        goto cleanup;
    }
    if (serve_parse_listen(o.listen_at, &addr) != ODSYNC_OK) {
        fprintf(stderr, "odsim: --listen: expected A.B.C.D:PORT, got \"%s\"\n", o.listen_at);
        goto cleanup;
    }
    if (!zone_exists(o.tz)) {
        fprintf(stderr, "odsim: --tz: unknown time zone \"%s\"\n", o.tz);
        goto cleanup;
    }
    if (strcmp(o.clock, "real") != 0 && clock_parse_datetime(o.clock, &naive) != ODSYNC_OK) {
        fprintf(stderr, "odsim: --clock: expected \"yyyy-MM-dd HH:mm:ss\" or real\n");
        goto cleanup;
    }
    if (o.ncust > o.offices)
        o.offices = o.ncust;

    /* Offices and their keys. */
    s.noffices = (int)o.offices;
    s.offices = util_calloc((size_t)s.noffices, sizeof(*s.offices));
    if (s.offices == NULL) {
        fprintf(stderr, "odsim: out of memory\n");
        rc = 1;
        goto cleanup;
    }
    for (int i = 0; i < s.noffices; i++) {
        struct office *of = &s.offices[i];
        of->num = i + 1;
        if (i < o.ncust)
            util_fmt(of->key, sizeof(of->key), "%s", o.cust_keys[i]);
        else if (i == 0)
            util_fmt(of->key, sizeof(of->key), "%s", DEFAULT_CUST_KEY);
        else
            gen_office_key(i + 1, of->key);
        for (int j = 0; j < i; j++) {
            if (strcmp(s.offices[j].key, of->key) == 0) {
                fprintf(stderr, "odsim: offices %d and %d have the same customer key\n", j + 1,
                        i + 1);
                goto cleanup;
            }
        }
        of->faults = o.faults;
    }
    if (o.print_keys) {
        for (int i = 0; i < s.noffices; i++)
            printf("office %d customer-key %s\n", i + 1, s.offices[i].key);
        rc = 0;
        goto cleanup;
    }
    util_fmt(s.dev_key, sizeof(s.dev_key), "%s", o.dev_key);
    s.local_mode = o.local;
    s.page_cap = o.local ? ODSIM_PAGE_LOCAL : ODSIM_PAGE_REMOTE;
    s.shuffle = o.shuffle;
    s.gt = o.gt;
    s.seed = (uint64_t)o.seed;
    s.patients = o.patients;

    rc = 1;
    util_fmt(tzenv, sizeof(tzenv), "%s", o.tz);
    setenv("TZ", tzenv, 1);
    tzset();
    log_setup(stderr, o.verbose ? ODSYNC_LOG_DEBUG : ODSYNC_LOG_INFO, LOG_TEXT);
    util_init_cjson_hooks();
    if (pthread_mutex_init(&s.state_lock, NULL) != 0)
        goto cleanup;
    if (pthread_mutex_init(&s.db_lock, NULL) != 0) {
        pthread_mutex_destroy(&s.state_lock);
        goto cleanup;
    }
    locks = 1;

    start_utc_ms = strcmp(o.clock, "real") == 0 ? util_now_ms() : clock_naive_to_utc(naive) * 1000;
    for (int i = 0; i < s.noffices; i++)
        clock_start(&s.offices[i].clock, start_utc_ms);
    s.start_day = clock_utc_to_naive(start_utc_ms / 1000) / 86400;

    if (store_resources_init() != ODSYNC_OK || store_open(&s, o.db) != ODSYNC_OK)
        goto cleanup;
    if (gen_matches(&s)) {
        log_info(ODSIM_LOG, "reusing the dataset in %s", o.db);
    } else if (gen_generate(&s) != ODSYNC_OK) {
        fprintf(stderr, "odsim: data generation failed\n");
        goto cleanup;
    }
    if (store_create_indexes(&s) != ODSYNC_OK)
        goto cleanup;

    /* MHD's threads inherit this mask, so only sigwait() below sees the signals. */
    serve_block_signals(&sigs);
    if (events_start(&s, &o.events) != ODSYNC_OK) /* pollers inherit the mask too */
        goto cleanup;

    d = serve_start(&addr, on_request, &s, NULL);
    if (d == NULL) {
        fprintf(stderr, "odsim: cannot listen on %s\n", o.listen_at);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    printf("listening on %s:%u\n", host, info != NULL ? (unsigned)info->port : 0u);
    fflush(stdout);
    log_info(ODSIM_LOG, "listening on %s:%u: %d office(s), %s mode, tz %s", host,
             info != NULL ? (unsigned)info->port : 0u, s.noffices,
             s.local_mode ? "local" : "remote", o.tz);

    while (sigwait(&sigs, &sig) != 0)
        ;
    log_info(ODSIM_LOG, "signal %d: stopping", sig);
    rc = 0;
cleanup:
    atomic_store(&s.stopping, 1);
    if (d != NULL)
        MHD_stop_daemon(d);
    events_stop(); /* after the HTTP threads, before the database */
    store_close(&s);
    store_resources_free();
    if (locks) {
        pthread_mutex_destroy(&s.state_lock);
        pthread_mutex_destroy(&s.db_lock);
    }
    util_free(s.offices);
    log_shutdown();
    return rc;
}
