/*
 * od_rest: the REST adapter — one element of an Open Dental REST v1 answer into the
 * canonical model. Tolerant as the reference asks: ints as numbers or numeric strings,
 * "true"/"false" in any case, "0001-01-01" as none, unknown keys ignored, strings trimmed.
 * A row without a valid primary key is refused with a reason naming the field (never its
 * value: it may be patient data); the caller counts and skips it.
 */
#ifndef ODSYNC_OD_REST_H
#define ODSYNC_OD_REST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "model.h"

/* Each fills *out (cleared first; caller clears) from elem (borrowed). ODSYNC_OK, or
 * ODSYNC_PARSE with why, or ODSYNC_NOMEM. */
int od_rest_patient(const cJSON *elem, struct model_patient *out, char *why, size_t why_len);
int od_rest_recall(const cJSON *elem, struct model_recall *out, char *why, size_t why_len);
int od_rest_appointment(const cJSON *elem, struct model_appointment *out, char *why,
                        size_t why_len);
int od_rest_procedure(const cJSON *elem, struct model_procedure *out, char *why, size_t why_len);
int od_rest_clinic(const cJSON *elem, struct model_clinic *out, char *why, size_t why_len);

/* AptNum of a HistAppointment row (0 when missing). */
int64_t od_rest_hist_aptnum(const cJSON *elem);

/* The element's serverDateTime as "YYYY-MM-DD HH:MM:SS", or NULL. Borrowed from elem. */
const char *od_rest_server_time(const cJSON *elem);

#endif
