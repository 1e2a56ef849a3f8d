/*
 * outbox: durable delivery queue — one row per (sink instance, office, key) holding the
 * latest version of the record to deliver. A newer version replaces an older pending one
 * (never the other way round); a version that arrives while an older one is in flight is
 * kept and delivered after it. Rows move pending -> inflight -> done | pending | dead, each
 * move in a transaction.
 */
#ifndef ODSYNC_OUTBOX_H
#define ODSYNC_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct outbox_item {
    int64_t id;
    char *office;
    char *key;
    int kind;
    int64_t version; /* the version claimed */
    char *body;
    char *remote_id; /* from an earlier delivery, or NULL */
    int attempts;
};

struct outbox_counts {
    int64_t pending, inflight, done, dead;
};

/* Queue (or refresh) a record for a sink; run inside the caller's transaction. Strings
 * borrowed. An older version than the one queued is ignored. */
int outbox_enqueue(struct store *st, const char *sink, const char *office, const char *key,
                   int kind, int64_t version, const char *body);

/* Rows are claimed in due order, and a task must reach a CRM after its contact (the CRM
 * associates it by the contact's id): tasks are queued due at OUTBOX_AFTER_CONTACTS, one
 * millisecond after contacts (due at 0), so every claim takes the contacts first. */
#define OUTBOX_AFTER_CONTACTS 1

/* The same, due at next_at (ms) instead of now: a message held until its time. */
int outbox_enqueue_at(struct store *st, const char *sink, const char *office, const char *key,
                      int kind, int64_t version, const char *body, int64_t next_at);

/* Claim up to max due rows of sink (next_at <= now_ms) in one transaction, oldest first.
 * *items: caller frees with outbox_items_free. */
int outbox_claim(struct store *st, const char *sink, int64_t now_ms, size_t max,
                 struct outbox_item **items, size_t *count);

/* Fairness across offices: the batch takes an equal share of due rows from each office in
 * offices[0..n) (borrowed), starting at *cursor and rotating it, then fills what is left.
 * No office's backlog can hold up another's. n == 0 behaves as outbox_claim. Fewer than min
 * due rows claim nothing (*count 0): a caller that expects more rows soon waits for a full
 * batch rather than spend a request on part of one. */
int outbox_claim_fair(struct store *st, const char *sink, char *const *offices, size_t n,
                      size_t *cursor, int64_t now_ms, size_t min, size_t max,
                      struct outbox_item **items, size_t *count);

/* Put claimed rows back to pending as they were before the claim (no attempt spent, no
 * error recorded): a batch claimed but never sent, the sink having paused or stopped. */
int outbox_unclaim(struct store *st, const struct outbox_item *items, size_t count);

/* Earliest next_at of a pending row of sink: *next_at = -1 when none is pending. */
int outbox_next_due(struct store *st, const char *sink, int64_t *next_at);

/* A dead letter, for `odsync dlq list`. Strings owned by the array. */
struct outbox_dead {
    int64_t id;
    char *sink, *office, *key, *detail;
    int kind, last_class, attempts;
    int64_t version, dead_at;
};

/* Dead letters of sink (NULL = all), oldest first. *rows: free with outbox_dead_free. */
int outbox_dead_list(struct store *st, const char *sink, struct outbox_dead **rows, size_t *count);
void outbox_dead_free(struct outbox_dead *rows, size_t count); /* accepts NULL */

/* Requeue dead letters (attempts reset, due now): one by id (id > 0), or all of sink
 * (id == 0; sink NULL = every sink). *requeued = rows changed. */
int outbox_dead_retry(struct store *st, int64_t id, const char *sink, int64_t *requeued);

/* Delete one dead letter; *dropped = 1 when there was one with that id. */
int outbox_dead_drop(struct store *st, int64_t id, int *dropped);
void outbox_items_free(struct outbox_item *items, size_t count); /* accepts NULL */

/* Mark a claimed row delivered (done, or pending again if a newer version arrived). */
int outbox_complete(struct store *st, const struct outbox_item *it, const char *remote_id);

/* Put a claimed row back: due at next_at; attempts + 1 when count_attempt. */
int outbox_retry(struct store *st, const struct outbox_item *it, int64_t next_at, int count_attempt,
                 int result_class, const char *detail);

/* Dead-letter a claimed row (unless a newer version arrived: then it is pending again). */
int outbox_dead(struct store *st, const struct outbox_item *it, int result_class,
                const char *detail);

/* After a crash: every inflight row becomes pending. *recovered = rows moved. */
int outbox_recover(struct store *st, int64_t *recovered);

/* Pending message rows of sink (NULL = all) not due before now_ms: messages scheduled or held
 * for later (quiet hours, caps, a review's delay). They are not work for now, so a worker
 * with only these is settled. */
int outbox_count_scheduled(struct store *st, const char *sink, int64_t now_ms, int64_t *count);

/* Row counts per state for a sink (NULL = all sinks). */
int outbox_count(struct store *st, const char *sink, struct outbox_counts *out);

#endif
