/*
 * od_fhir: the FHIR v2 adapter — Open Dental's legacy FHIR 4.0.0 interface ("19.4") read into
 * odsync's one canonical model (model.h). Two mappers turn one resource into one canonical
 * struct; one walker feeds the resources of a searchset Bundle to a callback.
 *
 * The adapter tolerates every quirk observed in live responses (reference §16): lower-case
 * references ("practitioner/1", "organization/2"), name[].given as a string, birthDate with a
 * time part, zone-less meta.lastUpdated, telecom.rank 0, DSTU2 careProvider, Appointment
 * priority (an int), minutesDuration, basedOn, reasonReference, and unknown members. It uses
 * model.h's shared normalisers (model_phone_e164, model_email_valid, model_date,
 * model_datetime) so REST and FHIR give the same canonical values.
 *
 * ---- Patient -> struct model_patient -------------------------------------------------------
 *   resourceType    must be "Patient" (any case), else ODSYNC_PARSE
 *   patnum          id ("1042"; a JSON integer is accepted too). Without id: the value of the
 *                   identifier[] whose type.text is "Open Dental patient.PatNum". Must be a
 *                   positive integer; when both are present they must agree.
 *   last_name       the chosen name's family (a string; a DSTU2 array gives its first item)
 *   first_name      the chosen name's first given (given is a string or an array)
 *   middle_initial  the chosen name's second given, as given (Open Dental's MiddleI is text)
 *                   The chosen name is name[] use "usual", else "official", else the first one
 *                   that is not "nickname"/"old", else the first. When it has neither family
 *                   nor given, its text is split at the last space: "Mary Ann Lee" -> first
 *                   "Mary Ann", last "Lee"; one word -> last name only.
 *   preferred_name  name[] use "nickname": its first given, else its text; else NULL
 *   status          active true -> "Patient"; active false -> "Inactive", or "Deceased" when
 *                   deceasedBoolean is true or deceasedDateTime is a real date; active absent
 *                   -> NULL. FHIR cannot tell Inactive from Archived, NonPatient or
 *                   Prospective: all of them arrive as active=false and become "Inactive".
 *   phone_mobile    telecom system "phone" use "mobile" (or system "sms"), first valid one
 *   phone_home      telecom system "phone" use "home", or a phone with no use
 *   phone_work      telecom system "phone" use "work"
 *                   Every number goes through model_phone_e164; an invalid one is dropped (a
 *                   later valid one of the same use may fill the slot). use "old"/"temp" and
 *                   other systems are ignored; rank is ignored (Open Dental sends 0 for all).
 *   email           the first telecom system "email" (use not "old") that model_email_valid
 *                   accepts, surrounding spaces trimmed; else NULL
 *   birthdate       birthDate via model_date ("1988-03-14T00:00:00" -> "1988-03-14"); a
 *                   partial date ("1988", "1988-03") or garbage -> NULL
 *   clinic_num      managingOrganization.reference "organization/N" (any case, any URL
 *                   prefix) -> N, "organization/0" -> 0; absent -> 0; another reference ->
 *                   ODSYNC_PARSE (a wrong clinic would misroute the patient)
 *   language        communication[] (the one marked preferred first): language.coding[].code
 *                   or language.text as an ISO 639-2 code: "eng" kept, BCP-47 "en"/"en-US"
 *                   mapped for common languages, anything else NULL; absent -> NULL
 *   changed_at      meta.lastUpdated "2025-08-20T10:14:03" -> "2025-08-20 10:14:03"
 *   Not in FHIR v2, set to "unknown": sms_consent = "unknown" (TxtMsgOk), guarantor = 0,
 *   prefer_contact = NULL, prefer_recall = NULL.
 *
 * ---- Appointment -> struct model_appointment -------------------------------------------------
 *   resourceType    must be "Appointment" (any case), else ODSYNC_PARSE
 *   apt_num         id, or identifier[] type.text "Open Dental FK to appointment.AptNum"
 *   status          booked -> "Scheduled", arrived -> "Scheduled", fulfilled -> "Complete",
 *                   noshow -> "Broken", proposed -> "Planned", pending -> "UnschedList";
 *                   cancelled -> the appointment was deleted: ODSYNC_NOT_FOUND (see below).
 *                   Codes Open Dental does not send: checked-in -> "Scheduled", waitlist ->
 *                   "UnschedList", entered-in-error -> deleted. Any other code -> PARSE.
 *   start           "2025-10-02T09:30:00" (office-local) -> "2025-10-02 09:30:00"; absent ->
 *                   NULL (proposed/pending appointments have none)
 *   patnum          participant[].actor.reference "patient/N" (any case); required, and two
 *                   different patients -> PARSE
 *   prov_num        participant[].actor.reference "practitioner/N": the one typed PPRF
 *                   (primary performer), else the first; none -> 0. FHIR does not say which
 *                   practitioner is ProvNum and which ProvHyg.
 *   clinic_num      a participant "organization/N" reference; else 0. Open Dental's FHIR
 *                   appointments carry none (observed), so this is 0 in practice.
 *   changed_at      meta.lastUpdated, as for patients
 *   location participants, description, comment, end, priority, minutesDuration, basedOn,
 *   reasonReference and unknown members are ignored. Not in FHIR: dismissed_at = NULL,
 *   is_new_patient = 0.
 *
 * ---- Date-times ------------------------------------------------------------------------------
 * Open Dental's FHIR date-times are office-local with no zone. A fractional second is
 * dropped. A value carrying a zone ("Z", "+02:00", "-07:00") is refused with ODSYNC_PARSE:
 * turning it into office-local time would need the office's zone, and reading it as local
 * would shift it silently. The sentinel 0001-01-01 and garbage become NULL, as in REST.
 *
 * ---- Errors ----------------------------------------------------------------------------------
 * `why` names the field and the rule ("id: not a positive integer"); it never holds a value
 * from the resource, so it is safe to log. Identity problems (id, resourceType, patient
 * reference, status, clinic reference, zoned date-times) refuse the resource; an unusable
 * optional field (a bad phone, email or birthDate) only becomes NULL.
 */
#ifndef ODSYNC_OD_FHIR_H
#define ODSYNC_OD_FHIR_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "model.h"

/* One Patient resource (borrowed) into *out, which is overwritten without being freed (pass a
 * zeroed or cleared struct). Returns ODSYNC_OK (caller frees with model_patient_clear),
 * ODSYNC_PARSE (why names the field) or ODSYNC_NOMEM; on an error *out is zeroed. why may be
 * NULL. */
int od_fhir_patient(const cJSON *resource, struct model_patient *out, char *why, size_t why_len);

/* One Appointment resource (borrowed) into *out, overwritten as above. Returns ODSYNC_OK;
 * ODSYNC_NOT_FOUND when the appointment is deleted in Open Dental (status cancelled or
 * entered-in-error): then only out->apt_num and out->changed_at are set, and the caller
 * deletes it (model_delete_appointment) and frees *out with model_appointment_clear;
 * ODSYNC_PARSE (why names the field) or ODSYNC_NOMEM, *out zeroed. */
int od_fhir_appointment(const cJSON *resource, struct model_appointment *out, char *why,
                        size_t why_len);

/* What od_fhir_bundle saw; entries = delivered + skipped. */
struct od_fhir_stats {
    int64_t entries;   /* elements of Bundle.entry */
    int64_t delivered; /* resources of the wanted type that `each` accepted */
    int64_t skipped;   /* entries not delivered: another resourceType, or bad (below) */
    int64_t bad;       /* of skipped: not an object, no resource or resourceType, or refused
                          by `each` with ODSYNC_PARSE */
};

/* Walk a searchset Bundle: json[0..len) (borrowed; need not be NUL-terminated). Open Dental
 * returns every match in one Bundle with no paging links, so the text is checked once as a
 * whole and then each entry is parsed on its own and freed after `each` returns: memory
 * holds the text plus one entry, never the tree of the whole Bundle. Nothing is delivered
 * unless the whole text is well-formed JSON.
 *
 * For every entry whose resource.resourceType equals resource_type (ASCII case-insensitive),
 * each(arg, resource) runs; the resource is borrowed for the call only. `each` returns
 * ODSYNC_OK (delivered), ODSYNC_PARSE (a bad entry: counted and skipped, the walk goes on) or
 * any other code, which stops the walk and is returned with err naming the entry index
 * (0-based).
 * Entries of another type and malformed entries are counted and skipped (malformed ones
 * logged by index); they never stop the walk. A Bundle without entry is an empty result.
 *
 * Returns ODSYNC_OK; ODSYNC_PARSE when the text is not JSON, not a Bundle (an
 * OperationOutcome, say) or its entry is not an array, with err saying which; ODSYNC_NOMEM;
 * ODSYNC_INVALID for a NULL resource_type or each, or a NULL json with len > 0 (NULL with
 * len 0 is empty text: PARSE); or the code `each` stopped with. stats (may be NULL) is
 * zeroed first and counts what was walked, also on failure. err (may be NULL) never holds
 * patient data. */
int od_fhir_bundle(const char *json, size_t len, const char *resource_type,
                   int (*each)(void *arg, const cJSON *resource), void *arg,
                   struct od_fhir_stats *stats, char *err, size_t err_len);

#endif
