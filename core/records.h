/*
 * records: the canonical records table — one row per (office, key) with the record's JSON
 * body, a SHA-256 content hash and a version that increases on each real change. An upsert
 * of identical content changes nothing, which is what makes an unchanged re-sync cost zero
 * sink requests.
 */
#ifndef ODSYNC_RECORDS_H
#define ODSYNC_RECORDS_H

#include <stdint.h>

#include "store.h"

/* Insert or update a record; run inside the caller's transaction. All strings borrowed.
 * *changed is 1 when the body differs from what was stored (or it is new), and *version is
 * the record's version after the call. */
int records_upsert(struct store *st, const char *office, const char *key, int kind,
                   const char *body, int *changed, int64_t *version);

/* Number of records of an office (NULL = all offices). */
int records_count(struct store *st, const char *office, int64_t *count);

/* Hex SHA-256 of data into hex[65]. */
int records_hash(const char *data, size_t len, char hex[65]);

#endif
