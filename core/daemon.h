/*
 * daemon: `odsync run` — recover what a crash left in flight, start one ingester per office
 * (a pass, the projection, then a wait of opendental.sync_interval_s) and one delivery worker
 * per sink instance, wait for a stop request, then drain: in-flight batches and pages finish
 * (their results are committed) within the configured shutdown deadline.
 */
#ifndef ODSYNC_DAEMON_H
#define ODSYNC_DAEMON_H

#include <signal.h>

#include "runtime.h"

struct daemon_options {
    int once;         /* one delivery pass per sink in this thread, then return (no ingestion) */
    int until_idle;   /* return once every office finished a pass and every sink has nothing
                         pending or in flight (or is paused until an operator acts) */
    int deliver_only; /* no ingestion: deliver what is queued */
};

/* Run until *stop becomes non-zero (a signal handler sets it) or the options say so.
 * rt is borrowed. Returns ODSYNC_OK after a clean drain, ODSYNC_RETRY when a worker was
 * still busy at the shutdown deadline (the caller must then exit without closing rt: a
 * plugin may still be running; rows left in flight are delivered after restart), or a store
 * error. */
int daemon_run(struct runtime *rt, const struct daemon_options *opt,
               const volatile sig_atomic_t *stop);

#endif
