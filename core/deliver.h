/*
 * deliver: move due outbox rows of a sink instance through its plugin, a batch at a time,
 * and apply the per-item results:
 *   OK                       -> done, remote id stored
 *   RETRY, NOMEM, INTERNAL   -> backoff with full jitter (uniform in [0, min(cap, base*2^n)]),
 *                               attempt counted; dead letter once attempts are exhausted
 *   RATE_LIMITED             -> the sink pauses until retry-after (or the default), durably,
 *                               and no attempt is spent
 *   AUTH                     -> the sink pauses until an operator resumes it or the config
 *                               is reloaded; the row waits, no attempt spent
 *   OPTED_OUT                -> done, not sent: the recipient opted out at the provider (the
 *                               gate records the opt-out)
 *   PERMANENT, UNSUPPORTED,
 *   CONFIG                   -> dead letter now, with class, detail and time
 * Only failed items are retried: a batch that partly succeeded is never resent whole.
 *
 * A worker is one thread per sink instance with its own store connection, so a slow or dead
 * sink never holds up another; within a sink, claims are shared fairly across offices.
 */
#ifndef ODSYNC_DELIVER_H
#define ODSYNC_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "host_api.h"
#include "outbox.h"
#include "store.h"

/* A check on every claimed batch before it is sent and on every result after: the send
 * ledger and send-time policy for messages (core/guard.c). Both run inside a transaction.
 * before() sets send[i] = 1 for the items to send now and settles the others itself (held:
 * back to pending later; skipped: done), in the same transaction. after() sees each sent
 * item's result before it is applied (plugin: the sink's plugin name, e.g. "twilio");
 * final = 1 when the item is done with (delivered, opted out or dead-lettered), 0 when it
 * will be tried again. */
struct deliver_gate {
    int (*before)(void *ctx, struct store *st, struct outbox_item *items, size_t count,
                  unsigned char *send, int64_t now_ms);
    int (*after)(void *ctx, struct store *st, const struct outbox_item *it, const char *plugin,
                 int status, int final, const char *remote_id, const char *detail, int64_t now_ms);
    void *ctx;
};

struct deliver_policy {
    const struct deliver_gate *gate; /* borrowed, must outlive every pass; NULL = none */
    int64_t (*clock)(void);          /* wall clock in ms; NULL = util_now_ms (tests inject) */
    int max_attempts;                /* dead letter after this many counted attempts */
    int64_t backoff_base_ms;         /* first backoff ceiling */
    int64_t backoff_cap_ms;          /* largest backoff ceiling */
    int64_t rate_default_ms;         /* pause when RATE_LIMITED has no retry-after */
};

struct deliver_stats {
    int64_t batches, ok, retried, rate_limited, auth, dead;
    int64_t opted_out;       /* messages the provider refused because the recipient opted out */
    int64_t paused_until_ms; /* > 0 when the sink paused (SINK_PAUSED_INDEFINITELY for AUTH) */
};

/* The defaults of config_delivery (8 attempts, 1 s, 15 min, 60 s). */
void deliver_policy_default(struct deliver_policy *p);

/* The policy a sink's config asks for. */
void deliver_policy_from_config(struct deliver_policy *p, const struct config_delivery *d);

/* One pass for sink (borrowed): deliver what was due when the pass began, batch after batch,
 * until nothing of that is left or the sink pauses. Adds to *stats. Does not look at an
 * existing pause (workers do). Returns ODSYNC_OK or a store error. */
int deliver_sink(struct store *st, struct host_sink *sink, const struct deliver_policy *policy,
                 struct deliver_stats *stats);

/* Backoff delay for a row that has failed `attempts` times. */
int64_t deliver_backoff_ms(const struct deliver_policy *p, int attempts);

struct deliver_worker;

/* Start a worker thread for sink (borrowed; must outlive the worker) on the database at
 * store_path (the worker opens its own connection). offices[0..n) (copied) are shared
 * fairly. On success *out is a worker the caller stops, joins and destroys. */
int deliver_worker_start(const char *store_path, struct host_sink *sink, char *const *offices,
                         size_t n, const struct deliver_policy *policy, struct deliver_worker **out,
                         char *err, size_t errlen);

/* New rows may be due: look now instead of at the next poll. */
void deliver_worker_wake(struct deliver_worker *w);

/* An office the worker serves begins (begin 1) or ends (0) queueing rows, e.g. a projection
 * committing chunk after chunk. Meanwhile the worker sends full batches only (wake it as
 * chunks commit), so delivery overlaps the projection without spending requests on partial
 * batches; the end wakes it to send the rest. Calls pair up; offices may overlap. */
void deliver_worker_producing(struct deliver_worker *w, int begin);

/* Ask the worker to stop after the batch in flight (returns at once). */
void deliver_worker_stop(struct deliver_worker *w);

/* Wait until the worker thread has ended or deadline_ms (monotonic, util_monotonic_ms) has
 * passed. ODSYNC_OK when it ended; ODSYNC_RETRY when it is still running (then it must not
 * be destroyed, nor its plugin closed). */
int deliver_worker_join(struct deliver_worker *w, int64_t deadline_ms);

/* Free a joined worker; accepts NULL. */
void deliver_worker_destroy(struct deliver_worker *w);

/* 1 when the worker has nothing left to do: no pending or in-flight rows, or the sink is
 * paused until an operator acts. */
int deliver_worker_settled(struct deliver_worker *w);

/* A copy of the worker's cumulative counters. */
void deliver_worker_stats(struct deliver_worker *w, struct deliver_stats *out);

#endif
