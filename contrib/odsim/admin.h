/*
 * admin: the control API under /_admin (no ODFHIR auth; loopback peers only, others get
 * 403). Offices and keys, counters, faults, clocks, front-desk changes, random load and raw
 * table dumps; contrib/odsim/README.md lists every call. Admin calls are never throttled,
 * faulted or counted.
 */
#ifndef ODSIM_ADMIN_H
#define ODSIM_ADMIN_H

#include "odsim.h"

struct cJSON;

/* Serve one /_admin request (r->path is the whole path, "/_admin/..."). */
void admin_serve(struct sim *s, const struct req *r, struct answer *a);

/* Apply a faults JSON object (the POST /_admin/faults body) to f. Returns ODSYNC_OK, or
 * ODSYNC_PARSE with why in msg. Also used for the command line. */
int admin_faults_apply(struct faults *f, const struct cJSON *json, char *msg, size_t len);

#endif
