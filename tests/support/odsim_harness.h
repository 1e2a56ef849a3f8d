/*
 * odsim_harness: what every test that talks to the Open Dental simulator needs — start it
 * (fixed seed, clock and size) and call it over HTTP.
 */
#ifndef ODSYNC_ODSIM_HARNESS_H
#define ODSYNC_ODSIM_HARNESS_H

#include <sys/types.h>

#include <cjson/cJSON.h>

#include "http_client.h"

/* Start build/contrib/odsim/odsim on an ephemeral loopback port with --patients, --seed and
 * --clock, then the extra arguments (NULL-terminated, may be NULL); stderr appended to
 * stderr_path. Returns its pid; *port is set. */
pid_t odh_start(const char *patients, const char *seed, const char *clock, const char *const *extra,
                const char *stderr_path, int *port);

/* method on http://127.0.0.1:port + path, with Authorization auth and Content-Type ctype
 * (either NULL: not sent). Returns the response (caller frees with http_response_free);
 * never NULL. */
struct odsync_http_response *odh_call(struct http_client *cli, int port, const char *method,
                                      const char *path, const char *body, const char *auth,
                                      const char *ctype);

/* Assert the status is want, parse the body and free the response. Caller cJSON_Deletes. */
cJSON *odh_json(struct odsync_http_response *r, int want);

#endif
