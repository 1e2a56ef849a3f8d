/*
 * guard: the pipeline every /api/v1 request goes through, in this order:
 *   1. Authorization "ODFHIR {developer key}/{customer key}" (exact) -> 401; the customer
 *      key picks the office;
 *   2. throttle (remote mode): one request per interval per customer key, start to start,
 *      so the interval includes execution time. An early request is a violation (counted
 *      in both modes); "delay" holds it until its slot, "reject" answers 429 + Retry-After;
 *   3. Content-Type application/json (GET included) -> 400;
 *   4. eConnector down (remote mode) -> 400; unknown path 404 / method 405; version too old
 *      for this route -> 400;
 *   5. the resource handler (rest.c);
 *   6. slow responses (+slow_ms) and 504 once the total passes timeout_504_ms.
 * Every answer is counted per office, route and status.
 */
#ifndef ODSIM_GUARD_H
#define ODSIM_GUARD_H

#include "odsim.h"

#define GUARD_ECONNECTOR_MSG                                                                       \
    "The office's eConnector is not running. Please contact the office to start their "            \
    "eConnector."

/* Serve one /api/v1 request (r->path is the part after "/api/v1"). */
void guard_serve(struct sim *s, const struct req *r, struct answer *a);

/* The counter slot of an HTTP status. */
enum status_slot guard_status_slot(unsigned status);
/* The status a slot counts ("other" for SS_OTHER). */
const char *guard_slot_name(enum status_slot slot);

#endif
