/*
 * dashboard: what an operator sees of a running odsync — an HTML page, its JSON, Prometheus
 * metrics and health probes — on the daemon's HTTP listener (`listen`):
 *
 *   GET  /                      the dashboard: one page (HTML, CSS and a little JS, all in the
 *                               binary, no external asset) that renders GET /api/dashboard
 *   GET  /api/dashboard         JSON: per office freshness and Open Dental state, records,
 *                               outbox per sink and state, today's messages with reasons, the
 *                               recall funnel, reactivation and review counts, dead letters,
 *                               recent errors, 14 days of activity. Patients appear only as
 *                               opaque keys; remote error details are scrubbed of anything
 *                               that looks like an address or a phone number
 *   POST /api/dlq/{id}/retry    requeue a dead letter (as `odsync dlq retry ID`)
 *   POST /api/dlq/{id}/drop     delete a dead letter (as `odsync dlq drop ID`)
 *   POST /api/logout            clear the session cookie
 *   GET  /metrics               Prometheus text exposition format 0.0.4
 *   GET  /healthz               200 "ok" while the process serves (no token)
 *   GET  /readyz                200 when the store opens and answers, else 503 (no token)
 *
 * Access: every route but the probes needs the configured admin_token, compared in constant
 * time: `Authorization: Bearer <token>`, or the session cookie. GET /?token=<token> sets the
 * cookie (HttpOnly, SameSite=Strict, Secure under TLS, 12 hours; its value is an expiry and
 * an HMAC under the token, never the token) and redirects to / so the token leaves the URL.
 * A POST authenticated by the cookie must also carry `X-Odsync-Action: 1` (the page's script
 * sends it; another site cannot). No credential: 401; a wrong one: 403; no admin_token
 * configured: 403 saying it must be set. No response ever holds the token.
 */
#ifndef ODSYNC_DASHBOARD_H
#define ODSYNC_DASHBOARD_H

#include <stddef.h>

#include "config.h"
#include "http_server.h"

struct dashboard;

/* Serve the routes above for cfg (borrowed; must outlive the dashboard) on its own
 * connection to the store at store_path (copied). *out: caller frees with dashboard_destroy.
 * err names what failed. */
int dashboard_create(const struct config *cfg, const char *store_path, struct dashboard **out,
                     char *err, size_t errlen);

void dashboard_destroy(struct dashboard *d); /* accepts NULL */

/* 1 when path is one of the routes above. */
int dashboard_route(const char *path);

/* The http_server handler; arg is the struct dashboard. */
void dashboard_http_handler(void *arg, const struct http_request *req, struct http_reply *reply);

/* The name of the session cookie the page uses. */
#define DASHBOARD_COOKIE "odsync_session"

#endif
