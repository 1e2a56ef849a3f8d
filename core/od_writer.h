/*
 * od_writer: Open Dental commlog write-back, a sink built into the core.
 *
 * When an office turns on "policy": {"commlog": true}, odsync records each message it sends
 * to a patient as a commlog in that patient's Open Dental chart (POST /commlogs: Mode_
 * "Text" or "Email", SentOrReceived "Sent", a PHI-free Note with odsync's reference, and
 * CommDateTime in office-local time). The write goes through the ordinary delivery
 * machinery, as if "opendental" were one more sink instance:
 *
 *   od_writer_enqueue          queues the commlog in the outbox (sink "opendental", record
 *                              kind OD_WRITER_KIND, key od:{office}:commlog:{ref}) inside the
 *                              caller's transaction, next to whatever decided to send it;
 *   runtime_open               creates the built-in instance when any office has commlog
 *                              write-back on, so `odsync run` starts a delivery worker for it
 *                              (claims shared across those offices) with the top-level
 *                              "delivery" settings: backoff, attempts, pauses, dead letters;
 *   send_batch (od_writer.c)   POSTs each body with the office's od_client (paced per
 *                              customer key, shared with ingestion) and reports per item:
 *     2xx                   -> OK, remote id = the CommlogNum when Open Dental returns the
 *                              object (23.3.7 and later; older versions: OK, no remote id)
 *     5xx, 429, unreachable,
 *     eConnector offline    -> RETRY (backoff, attempt counted)
 *     2xx, body not JSON    -> OK, no remote id (it was written: never POSTed again)
 *     401                   -> AUTH (the "opendental" sink pauses until `odsync sinks resume
 *                              opendental` or a restart; nothing is dead-lettered)
 *     other 4xx, 404        -> PERMANENT (dead letter: `odsync dlq list --sink opendental`)
 *     version too old       -> UNSUPPORTED (dead letter)
 *
 * Open Dental has no idempotency key for POST /commlogs, so a write must never be repeated
 * behind the delivery engine's back: the writer's od_clients make exactly one request per
 * item (no in-client retries: Open Dental may have written the commlog before answering
 * 504), every retry is an outbox retry that the send guard can see, and once an office
 * answers 401 or fails transiently the rest of that office's items in the batch are not
 * sent (reported AUTH / RETRY "not attempted"). Result details never carry the Note or the
 * PatNum. Enqueueing is idempotent: the same (office, ref) is queued at most once.
 *
 * The kind and the sink name are core-internal: no plugin ever sees OD_WRITER_KIND, and a
 * configured sink may not be called "opendental" while write-back is on.
 */
#ifndef ODSYNC_OD_WRITER_H
#define ODSYNC_OD_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include <odsync/sink.h>

#include "config.h"
#include "store.h"

#define OD_WRITER_SINK      "opendental" /* the built-in sink instance's name */
#define OD_WRITER_KIND      64           /* outbox record kind of a commlog (not in the SDK) */
#define OD_WRITER_MAX_BATCH 50
#define OD_WRITER_KEY_MAX   128 /* longer keys use the SHA-256 hex of the ref instead */

/* The built-in sink's descriptor (static storage). Its create() needs a core context: build
 * the instance with plugin_builtin + host_sink_create_builtin(p, OD_WRITER_SINK, cfg, ...),
 * cfg being the struct config whose offices it writes to (borrowed; must outlive the
 * instance). An instance keeps one od_client per office, created on first use. */
const struct odsync_sink_descriptor *od_writer_descriptor(void);

/* The outbox key of a commlog: "od:{office}:commlog:{ref_key}", or with the hex SHA-256 of
 * ref_key in its place when the key would be longer than OD_WRITER_KEY_MAX bytes. Returns
 * ODSYNC_OK, or ODSYNC_INVALID (office id or ref_key empty or invalid, buf too small). */
int od_writer_key(char *buf, size_t len, const char *office, const char *ref_key);

/* Queue one commlog for office (borrowed) inside the caller's store_tx: the body
 * {"PatNum","Mode_","SentOrReceived":"Sent","Note","CommDateTime"} with CommDateTime the
 * office-local time of now_ms ("YYYY-MM-DD HH:MM:SS", the office's time zone), under the key
 * od_writer_key(office->id, ref_key), version 1 — so the same ref queued again (pending,
 * delivered or dead) changes nothing. mode is an Open Dental Mode_ ("Text", "Email", ...);
 * note must be PHI-free (no clinical detail) and not empty. Strings borrowed. Returns
 * ODSYNC_OK, ODSYNC_INVALID (patnum <= 0, empty mode/note/ref, bad office id), ODSYNC_CONFIG
 * (the office's time zone cannot be loaded), ODSYNC_NOMEM or a store error. */
int od_writer_enqueue(struct store *st, const struct config_office *office, int64_t patnum,
                      const char *mode, const char *note, const char *ref_key, int64_t now_ms);

/* The same with SentOrReceived given ("Sent" or "Received": an opt-out the patient sent). */
int od_writer_enqueue_as(struct store *st, const struct config_office *office, int64_t patnum,
                         const char *mode, const char *sent_or_received, const char *note,
                         const char *ref_key, int64_t now_ms);

#endif
