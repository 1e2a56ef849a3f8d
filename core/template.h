/*
 * template: patient message templates with a whitelist of variables, checked when the config
 * is loaded, so no clinical detail (procedures, diagnoses, balances) can ever be rendered
 * (messaging rules R2, R3, R7, R8, R11).
 *
 * Syntax: literal text, and placeholders `{{ name }}` (spaces inside the braces optional)
 * where name is one of the whitelisted variables below. There is no escape: every `{{` must
 * start a placeholder, so a `{{` without a closing `}}`, or with anything but an identifier
 * inside, is refused. A lone `{` or `}}` is literal text.
 *
 * Channels: TEMPLATE_SMS is plain text that must fit one SMS segment (160 GSM-7 characters,
 * extension characters counting 2, or 70 UCS-2 code units once any character is outside
 * GSM-7), must name the practice, and always carries the opt-out line (appended with a space
 * when the template has no {{opt_out}}). TEMPLATE_EMAIL is an HTML body: inserted values are
 * HTML-escaped. TEMPLATE_EMAIL_SUBJECT is plain text on one line: values are inserted as is
 * but a value holding CR or LF is refused. An email's caller checks, with template_uses, that
 * {{practice_name}} appears in the subject or the body.
 */
#ifndef ODSYNC_TEMPLATE_H
#define ODSYNC_TEMPLATE_H

#include <stddef.h>

enum template_channel { TEMPLATE_SMS = 0, TEMPLATE_EMAIL = 1, TEMPLATE_EMAIL_SUBJECT = 2 };

#define TEMPLATE_SMS_GSM7_LIMIT 160
#define TEMPLATE_SMS_UCS2_LIMIT 70
/* The SMS opt-out line used when template_vars.opt_out is NULL (SMS only). */
#define TEMPLATE_OPT_OUT_DEFAULT "Reply STOP to opt out."

/* The whitelist, in this order: first_name, practice_name, practice_phone, appointment_date,
 * appointment_time, booking_link, review_link, opt_out. NULL (or empty, or only spaces) means
 * missing, except that a NULL opt_out in an SMS is TEMPLATE_OPT_OUT_DEFAULT. Values are
 * borrowed for the call. */
struct template_vars {
    const char *first_name;
    const char *practice_name;
    const char *practice_phone;
    const char *appointment_date;
    const char *appointment_time;
    const char *booking_link;
    const char *review_link;
    const char *opt_out;
};

struct template;

/* Compile text for channel (enum template_channel). json_path names the config value in
 * every error (e.g. "campaigns.recall.sms"; NULL reads "template"). Refuses, with
 * ODSYNC_INVALID and a message naming json_path: text that is not UTF-8; an unterminated or
 * malformed placeholder; an unknown variable (naming it and the allowed list); an SMS
 * without {{practice_name}}; an SMS whose fixed text plus the default opt-out line is already
 * longer than one segment. ODSYNC_NOMEM when out of memory. *out is NULL on any failure. */
int template_compile(const char *text, int channel, const char *json_path, struct template **out,
                     char *err, size_t errlen);

void template_free(struct template *t); /* accepts NULL */

/* 1 when t has a placeholder for var (a whitelisted name); 0 otherwise or when t is NULL. */
int template_uses(const struct template *t, const char *var);

/* Render t with vars into *out (caller frees with util_free). ODSYNC_INVALID when a variable
 * the template uses is missing ("... missing variable {{first_name}}"), a value is not UTF-8,
 * a subject value holds a line break, or an SMS does not fit one segment ("... sms is N
 * characters, at most 160"); errors never quote patient data. ODSYNC_NOMEM when out of
 * memory. *out is NULL on any failure. */
int template_render(const struct template *t, const struct template_vars *vars, char **out,
                    char *err, size_t errlen);

/* SMS length of the UTF-8 string s: *units is GSM-7 septets (extension-table characters
 * count 2) and *limit 160 when every character is in GSM-7; otherwise *units is UTF-16 code
 * units and *limit 70. ODSYNC_OK, or ODSYNC_INVALID when s is NULL or not valid UTF-8. */
int template_sms_length(const char *s, int *units, int *limit);

#endif
