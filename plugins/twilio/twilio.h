/*
 * twilio.h: internals of the Twilio SMS connector shared by its three files:
 *   twilio_config.c  settings (spec, loading, checks beyond the host's validation)
 *   twilio_phone.c   recipient normalisation and patient-data-free error texts
 *   twilio.c         requests, result mapping, the descriptor
 */
#ifndef ODSYNC_TWILIO_H
#define ODSYNC_TWILIO_H

#include <stddef.h>
#include <stdint.h>

#include <odsync/sink.h>

/* One request per message (Twilio has no batch send); see README.md "Batches". */
#define TWILIO_MAX_BATCH 10
#define TWILIO_SID_LEN   34 /* two letters and 32 hex digits */
#define TWILIO_E164_MAX  16 /* '+' and at most 15 digits */

struct twilio_config {
    char *base_url;            /* owned; no trailing '/' */
    const char *account_sid;   /* borrowed from secret_get, valid until destroy */
    const char *auth_user;     /* borrowed: the AccountSid or the API key SID */
    const char *auth_secret;   /* borrowed: the auth token or the API key secret */
    int api_key;               /* 1 when authenticating with an API key pair */
    const char *from;          /* borrowed, or NULL: the sender number / short code / id */
    const char *service_sid;   /* borrowed, or NULL: MessagingServiceSid */
    char *status_callback_url; /* owned, or NULL; no trailing '/' */
    int32_t timeout_ms;        /* whole-request timeout */
};

/* The config spec table of the plugin (NULL-name-terminated). */
extern const struct odsync_config_spec twilio_config_spec[];

/* Read and check the instance's settings into cfg (zeroed by the caller). On failure calls
 * host->set_error naming the setting (never a secret's value) and returns ODSYNC_CONFIG or
 * ODSYNC_NOMEM; cfg is then already freed. On success the caller frees with
 * twilio_config_free. */
int twilio_config_load(const struct odsync_host *host, odsync_host_ctx *ctx,
                       struct twilio_config *cfg);

/* Free what twilio_config_load allocated; accepts a zeroed or freed cfg. */
void twilio_config_free(struct twilio_config *cfg);

/* 1 when s is two letters prefix followed by exactly 32 hex digits (an "AC…", "SK…", "MG…"
 * SID). */
int twilio_sid_valid(const char *s, const char *prefix);

/* 1 when s is an E.164 number Twilio can text: '+', a first digit 1-9, 8 to 15 digits in all;
 * for country code 1 (NANP) exactly 11 digits with an area code starting 2-9. */
int twilio_e164_valid(const char *s);

/* Normalise a recipient into E.164 in out (TWILIO_E164_MAX + 1 bytes): an E.164 number as is;
 * a free-form number with spaces, dots, dashes and parentheses is reduced to its digits,
 * and then "+DIGITS" when it started with '+', "+1" + 10 digits for a US number, or "+" + 11
 * digits starting with 1. Returns 1 on success, 0 when in is not a valid number (out is then
 * ""). Never logs in: it is patient data. */
int twilio_normalize_phone(const char *in, char *out, size_t out_len);

/* Copy a remote error message into out (out_len > 0) with every run of three or more digits
 * replaced by '#', control characters by spaces, cut at `max` bytes on a UTF-8 boundary
 * ("..." marks a cut): a Twilio message may echo the recipient's number, which must never
 * reach a result detail. */
void twilio_scrub_message(const char *in, size_t max, char *out, size_t out_len);

#endif
