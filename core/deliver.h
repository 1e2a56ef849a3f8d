/*
 * deliver: move due outbox rows of one sink instance through its plugin, a batch at a time,
 * and apply the per-item results: OK -> done with the remote id; RETRY (and NOMEM, INTERNAL)
 * -> backoff with full jitter, attempt counted, dead letter after the limit; RATE_LIMITED ->
 * the sink pauses until retry-after (default 60 s) without spending attempts; AUTH -> the
 * sink pauses; PERMANENT, UNSUPPORTED, CONFIG -> dead letter now. Only failed items are
 * retried: a batch that partly succeeded is never resent whole.
 */
#ifndef ODSYNC_DELIVER_H
#define ODSYNC_DELIVER_H

#include <stdint.h>

#include "host_api.h"
#include "store.h"

struct deliver_policy {
    int max_attempts;        /* dead letter after this many counted attempts (default 8) */
    int64_t backoff_base_ms; /* first backoff ceiling (default 1000) */
    int64_t backoff_cap_ms;  /* largest backoff ceiling (default 900000) */
    int64_t rate_default_ms; /* pause when RATE_LIMITED has no retry-after (default 60000) */
    int64_t auth_pause_ms;   /* pause after AUTH (default 300000) */
};

struct deliver_stats {
    int64_t batches, ok, retried, rate_limited, auth, dead;
    int64_t paused_until_ms; /* > 0 when the sink paused */
};

/* The defaults above. */
void deliver_policy_default(struct deliver_policy *p);

/* Deliver everything due for sink (borrowed) until nothing is due or the sink pauses.
 * Adds to *stats. Returns ODSYNC_OK or a store error. */
int deliver_sink(struct store *st, struct host_sink *sink, const struct deliver_policy *policy,
                 struct deliver_stats *stats);

/* Backoff delay for a row that has failed `attempts` times: uniform in [0, min(cap,
 * base * 2^attempts)]. */
int64_t deliver_backoff_ms(const struct deliver_policy *p, int attempts);

#endif
