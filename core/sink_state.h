/*
 * sink_state: the durable state of a sink instance that outlives a batch — a pause.
 * RATE_LIMITED pauses a sink until a time (kept across restarts, so a restart honours
 * Retry-After); AUTH pauses it until an operator resumes it (`odsync sinks resume NAME`) or
 * the configuration is (re)loaded. Workers read it before every claim.
 */
#ifndef ODSYNC_SINK_STATE_H
#define ODSYNC_SINK_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SINK_PAUSED_INDEFINITELY INT64_MAX

struct sink_state {
    int64_t paused_until; /* ms since the epoch; 0 = running; SINK_PAUSED_INDEFINITELY */
    int pause_class;      /* enum odsync_status that paused it */
    char detail[256];     /* why (no patient data), "" when running */
};

/* Pause sink until until_ms (never shortens a longer pause). Strings borrowed. May run
 * inside the caller's transaction. */
int sink_state_pause(struct store *st, const char *sink, int64_t until_ms, int cls,
                     const char *detail);

/* Read a sink's state (zeroed when it has none). */
int sink_state_get(struct store *st, const char *sink, struct sink_state *out);

/* Clear a sink's pause; *cleared = 1 when it was paused. */
int sink_state_resume(struct store *st, const char *sink, int *cleared);

/* A configuration (re)load: clear every AUTH pause, keep rate-limit pauses. */
int sink_state_clear_auth(struct store *st);

#endif
