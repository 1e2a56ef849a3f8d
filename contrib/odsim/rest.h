/*
 * rest: the Open Dental REST API v1 resources (the part of a request after auth, throttle
 * and faults; see guard.h). Each handler takes sim.db_lock itself while it reads or writes.
 */
#ifndef ODSIM_REST_H
#define ODSIM_REST_H

#include "odsim.h"

/* A route handler. ids holds the numbers in the path, in order (e.g. {PatNum}). */
typedef void (*rest_handler)(struct sim *s, struct office *o, const struct req *r,
                             const int64_t *ids, struct answer *a);

struct rest_route {
    const char *method;
    const char *path;    /* template under /api/v1, e.g. "/patients/{PatNum}" */
    const char *version; /* Open Dental version that added the method */
    rest_handler fn;
};

extern const struct rest_route rest_routes[];
extern const int rest_route_count; /* < ODSIM_ROUTE_MAX */

/* Match method and path (under /api/v1). Returns the route index (ids filled), -1 when no
 * route has this path (404), -2 when the path exists for another method (405). */
int rest_match(const char *method, const char *path, int64_t ids[2]);

#endif
