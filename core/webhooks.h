/*
 * webhooks: what patients and providers tell odsync back — the way messages return to the
 * consent ledger. Routes on the daemon's HTTP listener (`listen`), each authenticated by the
 * provider's own signature; an unsigned or wrongly signed request gets 403 and nothing is
 * recorded:
 *
 *   POST /webhooks/twilio/{office}/sms           inbound SMS (Twilio's form fields), signed
 *                                                X-Twilio-Signature: base64 HMAC-SHA1 with
 *                                                webhooks.twilio.auth_token over the URL
 *                                                (events.public_url + path) and every POST
 *                                                parameter, name then value, sorted by name
 *   POST /webhooks/twilio/{office}/status/{key}  status callback of message {key}, same
 *   POST /webhooks/sendgrid/{office}/events      Event Webhook (a JSON array), signed
 *                                                X-Twilio-Email-Event-Webhook-Signature:
 *                                                ECDSA P-256 over SHA-256 of the timestamp
 *                                                header then the body, verified with
 *                                                webhooks.sendgrid.public_key; a timestamp
 *                                                older than max_age_s is a replay
 *
 * What they do (messaging rules R12-R15, R28-R30):
 *   STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT, OPTOUT (the whole
 *     trimmed reply, any case) or OptOutType=STOP  -> SMS opt-out of that number for every
 *     purpose (source twilio), honoured by the next send check
 *   START, UNSTOP, or OptOutType=START             -> the explicit opt-in that lifts it
 *   HELP                                           -> nothing (Twilio answers it)
 *   any other reply                                -> kept for staff review (R13), never logged
 *   status callback                                -> the ledger's delivery status; 21610 is
 *     an opt-out; a message left "unknown" by a crash is settled as sent
 *   unsubscribe, spamreport, bounce, dropped       -> email opt-out for every purpose
 *   group_unsubscribe                              -> email opt-out for the message's campaign
 *   group_resubscribe                              -> the recipient's explicit opt-in to it
 *   delivered, open, ...                           -> the ledger's delivery status
 * With the office's policy.commlog on, each opt-out also becomes an Open Dental commlog
 * (SentOrReceived Received) for every patient with that number or address.
 */
#ifndef ODSYNC_WEBHOOKS_H
#define ODSYNC_WEBHOOKS_H

#include <stddef.h>

#include "config.h"
#include "http_server.h"

struct webhooks;

/* Handle the routes above for cfg (borrowed; must outlive it) on its own connection to the
 * store at store_path. *out: caller frees with webhooks_destroy. */
int webhooks_create(const struct config *cfg, const char *store_path, struct webhooks **out,
                    char *err, size_t errlen);

void webhooks_destroy(struct webhooks *w); /* accepts NULL */

/* 1 when path is one of the routes above (a prefix match). */
int webhooks_route(const char *path);

/* The http_server handler; arg is the struct webhooks. */
void webhooks_http_handler(void *arg, const struct http_request *req, struct http_reply *reply);

/* Exposed for tests: Twilio's signature of url and the form body (base64 HMAC-SHA1) into
 * out (at least 29 bytes). ODSYNC_OK, ODSYNC_PARSE (body not a form) or ODSYNC_NOMEM. */
int webhooks_twilio_signature(const char *auth_token, const char *url, const char *form,
                              size_t form_len, char *out, size_t out_len);

/* Exposed for tests: 1 when sig_b64 is SendGrid's valid signature of timestamp + body under
 * public_key_b64 (base64 DER SubjectPublicKeyInfo). */
int webhooks_sendgrid_verify(const char *public_key_b64, const char *timestamp, const char *body,
                             size_t body_len, const char *sig_b64);

#endif
