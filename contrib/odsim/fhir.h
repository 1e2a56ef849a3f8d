/*
 * fhir: Open Dental's legacy FHIR v2 interface ("19.4", reference §16) for Patient and
 * Appointment: search (GET /fhir/v2/patient, /fhir/v2/appointment) and read
 * (GET /fhir/v2/patient/{id}, /fhir/v2/appointment/{id}), from the same SQLite rows as
 * /api/v1, in the shape observed on the live service (tests/fixtures/fhir/).
 *
 * Routing: main.c sends /fhir/v2/... through guard_serve with r->path the whole path
 * ("/fhir/v2/patient"), and rest.c's route table holds the four routes, so FHIR calls get
 * the same ODFHIR auth, throttle slot (per customer key, shared with REST), Content-Type
 * rule, faults, 404/405 and counters ("GET /fhir/v2/patient" in /_admin/stats) as REST.
 *
 * Search answers ONE searchset Bundle with every match: "total" = the count, no paging
 * links, no "entry" when nothing matched. Rows come in primary-key order (--shuffle: the
 * seeded order REST lists use). Parameter names match case-insensitively; comma-separated
 * values are OR, a repeated parameter is AND; unknown parameters (and _count, _sort,
 * _format) are ignored, empty values too. A bad value answers 400 with an
 * OperationOutcome; a read of a missing row answers 404 with an OperationOutcome.
 *
 *   Patient      _id, identifier (PatNum; "http://hl7.org/fhir/sid/us-ssn|..." matches the
 *                SSN digits), family / given (LName / FName: case-insensitive starts-with;
 *                :contains, :exact), active (true: PatStatus Patient), _lastUpdated
 *   Appointment  _id, identifier (AptNum), patient ("patient/N" or N), location (Op),
 *                practitioner (ProvNum or ProvHyg), status (FHIR codes), date (AptDateTime;
 *                appointments without a time never match), _lastUpdated
 *   _lastUpdated and date take the prefixes eq (default), ne, gt, ge, lt, le, sa, eb and an
 *   office-local value without a zone: yyyy, yyyy-MM, yyyy-MM-dd, yyyy-MM-ddTHH:mm or
 *   yyyy-MM-ddTHH:mm:ss (a fraction of a second dropped). A value covers its precision:
 *   ge2025-09-01T00:00:00 is DateTStamp >= "2025-09-01 00:00:00" (REST's DateTStamp filter
 *   exactly), le2025-09-01 is up to 23:59:59 of that day. A zone (Z, +02:00) answers 400.
 *
 * Appointment.status: Scheduled/ASAP -> booked, or arrived when DateTimeArrived is set and
 * DateTimeDismissed is not; Complete -> fulfilled; Broken -> noshow; Planned -> proposed;
 * UnschedList -> pending. Deleted appointments no longer exist (their history remains), and
 * PtNote/PtNoteCompleted rows are not appointments: neither is ever returned.
 *
 * The handlers take sim.db_lock themselves.
 */
#ifndef ODSIM_FHIR_H
#define ODSIM_FHIR_H

#include "odsim.h"

/* rest_handler signatures (rest.h); ids[0] is the {id} of a read. */
void fhir_patient_search(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                         struct answer *a);
void fhir_patient_read(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                       struct answer *a);
void fhir_appointment_search(struct sim *s, struct office *o, const struct req *r,
                             const int64_t *ids, struct answer *a);
void fhir_appointment_read(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                           struct answer *a);

#endif
