/*
 * odsim: the Open Dental REST API v1 simulator (contrib/odsim/README.md has the whole story).
 * This header holds what every odsim module shares: the simulator state (struct sim), one
 * simulated practice (struct office), a request and its answer, and the locking rules.
 *
 * Modules, one job each:
 *   main.c      command line, start-up, the HTTP server (libmicrohttpd), dispatch
 *   guard.c     the /api/v1 pipeline: auth, throttle, faults, counters (guard.h)
 *   clock.c     office-local clocks and calendar arithmetic (clock.h)
 *   store.c     SQLite schema and helpers, JSON rendering of rows, list queries (store.h)
 *   gen.c       deterministic data generation (gen.h)
 *   rest.c      the REST resources under /api/v1 (rest.h)
 *   frontdesk.c front-desk mutations shared by REST writes and the admin API (frontdesk.h)
 *   admin.c     the loopback-only control API under /_admin (admin.h)
 *   events.c    API Events: per-office pollers POSTing changes to subscriptions (events.h)
 *
 * Threads: libmicrohttpd runs one thread per connection; events.c one poller per office.
 * Two mutexes:
 *   sim.state_lock guards every office's faults, counters, clock and throttle slot;
 *   sim.db_lock guards the one SQLite connection.
 * Never sleep holding either. When both are needed, take db_lock first.
 */
#ifndef ODSIM_H
#define ODSIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "log.h"
#include "util.h"

#define ODSIM_LOG         "odsim"
#define ODSIM_MAX_OFFICES 64
#define ODSIM_KEY_MAX     64
#define ODSIM_ROUTE_MAX   32 /* REST routes (rest.c) + 1 "unknown" slot; a bitmask fits */
#define ODSIM_PAGE_REMOTE 100
#define ODSIM_PAGE_LOCAL  1000
#define ODSIM_MAX_BODY    ((size_t)17 * 1000 * 1000) /* Open Dental accepts 16.8M chars */

/* Answer counters are kept per status class slot; see guard_status_slot(). */
enum status_slot {
    SS_200,
    SS_201,
    SS_400,
    SS_401,
    SS_404,
    SS_405,
    SS_429,
    SS_500,
    SS_504,
    SS_OTHER,
    SS_COUNT
};

/* Fault and throttle settings of one office (guarded by sim.state_lock). */
struct faults {
    int64_t throttle_ms;      /* minimum start-to-start interval; 0 = none */
    int over_limit_reject;    /* 0: hold an early request until its slot; 1: answer 429 */
    int econnector_down;      /* every call answers 400 (remote mode only) */
    int key_disabled;         /* the customer key answers 401 */
    int64_t slow_ms;          /* extra processing time added to every call */
    int64_t timeout_504_ms;   /* calls slower than this answer 504; 0 = no limit */
    uint32_t version_too_old; /* bit i set: REST route i answers 400 "version too old" */
};

/* Request counters of one office since start or the last reset (sim.state_lock). */
struct ostats {
    int64_t requests;            /* every /api/v1 call that named this office's key */
    int64_t throttle_violations; /* calls that arrived before their slot (any mode) */
    int64_t by_route[ODSIM_ROUTE_MAX][SS_COUNT];
};

/* An office-local clock: UTC milliseconds base_ms at monotonic anchor_ms, running unless
 * frozen. Local wall time comes from the process time zone (--tz). */
struct oclock {
    int64_t base_ms;
    int64_t anchor_ms;
    int frozen;
};

/* One simulated practice. Everything it owns is scoped by its customer key. */
struct office {
    int num;                 /* 1-based office number; the "office" column in SQLite */
    char key[ODSIM_KEY_MAX]; /* customer key; immutable after start */
    struct faults faults;    /* state_lock */
    struct ostats stats;     /* state_lock */
    struct oclock clock;     /* state_lock */
    int64_t next_slot_ms;    /* state_lock: monotonic ms when the next call may start */
};

struct store_cache; /* store.c's list cursors and prepared statements */

/* The simulator. One static instance lives in main.c. */
struct sim {
    pthread_mutex_t state_lock;
    pthread_mutex_t db_lock;
    sqlite3 *db;                 /* owned; db_lock */
    struct store_cache *cache;   /* owned by store.c (store_close frees it); db_lock */
    struct office *offices;      /* owned array of noffices (util_free) */
    int noffices;                /* immutable after start */
    char dev_key[ODSIM_KEY_MAX]; /* immutable after start */
    int local_mode;              /* --mode local: page cap 1000, no throttle, no eConnector */
    int page_cap;                /* 100 remote, 1000 local */
    int shuffle;                 /* lists in a seeded, stable, non-PK order */
    int gt;                      /* DateTStamp filters compare with > instead of >= */
    uint64_t seed;               /* --seed */
    int64_t patients;            /* --patients per office */
    int64_t start_day;           /* office-local day (days since 1970-01-01) data is anchored */
    int64_t unknown_requests;    /* state_lock: /api/v1 calls whose key named no office */
    int64_t unknown_401;         /* state_lock: ... answered 401 */
    atomic_int stopping;         /* set at shutdown: sleeps end early */
};

/* An incoming request, borrowed from main.c for the duration of one handler call. */
struct req {
    void *conn; /* struct MHD_Connection *, opaque outside main.c */
    const char *method;
    const char *path; /* decoded path; under /api/v1 the part after "/api/v1" */
    const char *body; /* request body (NUL-terminated), never NULL */
    size_t body_len;
    const char *host; /* Host header or "127.0.0.1" (for location headers) */
};

/* An answer being built. body NULL with status != 0 means out of memory (a 500 is sent). */
struct answer {
    unsigned status;
    char *body;          /* owned (util_free) */
    int64_t retry_after; /* seconds for a Retry-After header, or -1 */
    char *location;      /* owned (util_free): a location header, or NULL */
};

/* Query-string value of name, matched case-insensitively like ASP.NET does; NULL when
 * absent. Borrowed from the connection, valid during the request. (main.c) */
const char *req_arg(const struct req *r, const char *name);

/* Request header value (case-insensitive name) or NULL; borrowed. (main.c) */
const char *req_header(const struct req *r, const char *name);

/* 1 when the peer is on a loopback address. (main.c) */
int req_is_loopback(const struct req *r);

/* Set a JSON answer; body is taken (util_free'd later), NULL means out of memory. */
void answer_set(struct answer *a, unsigned status, char *body);

/* Set an answer whose body is msg as a JSON string ("Patient not found"). */
void answer_error(struct answer *a, unsigned status, const char *msg);

/* Sleep ms milliseconds in short slices, ending early once s->stopping is set. */
void sim_sleep_ms(struct sim *s, int64_t ms);

/* The office with customer key / number, or NULL. Offices never change after start. */
struct office *sim_office_by_key(struct sim *s, const char *key);
struct office *sim_office_by_num(struct sim *s, int64_t num);

/* splitmix64 PRNG step: state advanced in place. */
uint64_t sim_rng(uint64_t *state);

/* Uniform integer in [lo, hi] (hi >= lo). */
int64_t sim_rng_range(uint64_t *state, int64_t lo, int64_t hi);

/* 1 with probability pct/1000. */
int sim_rng_permille(uint64_t *state, int permille);

#endif
