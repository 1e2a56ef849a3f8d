/*
 * model: odsync's one canonical model of an Open Dental office — patients, recalls,
 * appointments, completed procedures (for the last visit) and clinics — and its storage.
 * The REST and FHIR adapters both produce these structs; nothing downstream reads a raw
 * Open Dental field. Dates are parsed once ("0001-01-01" becomes NULL), phones are E.164 or
 * NULL, emails valid or NULL, enums keep Open Dental's names. Datetimes are office-local
 * naive "YYYY-MM-DD HH:MM:SS" strings, as Open Dental gives them.
 *
 * Storage: one table per entity (od_patients, od_recalls, od_appointments, od_procedures,
 * od_clinics), each row with its canonical JSON body and a SHA-256 of it. An upsert whose
 * content is unchanged writes nothing. A real change marks the patient dirty (od_dirty) so
 * the projection rebuilds what depends on it, in the same transaction.
 *
 * Every string member is owned by its struct; *_clear frees them and zeroes the struct.
 */
#ifndef ODSYNC_MODEL_H
#define ODSYNC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct model_patient {
    int64_t patnum;
    char *last_name, *first_name, *middle_initial, *preferred_name;
    char *status;                                 /* PatStatus name: "Patient", "Inactive", ... */
    char *email;                                  /* a plausible address, or NULL */
    char *phone_mobile, *phone_home, *phone_work; /* E.164 ("+15550102233"), or NULL */
    char *birthdate;                              /* "YYYY-MM-DD" or NULL */
    int64_t guarantor;                            /* PatNum of the head of household; 0 = unknown */
    int64_t clinic_num;                           /* 0 = none */
    char *sms_consent;                            /* TxtMsgOk: "yes" | "no" | "unknown" */
    char *prefer_contact;                         /* PreferContactMethod name, or NULL */
    char *prefer_recall;                          /* PreferRecallMethod name, or NULL */
    char *language;                               /* ISO 639-2 ("eng"), or NULL */
    char *changed_at;                             /* DateTStamp (not part of the content hash) */
};

struct model_recall {
    int64_t recall_num, patnum, recall_type;
    char *date_due, *date_previous, *date_scheduled, *disable_until; /* dates or NULL */
    int disabled;                                                    /* IsDisabled */
    char *interval;                                                  /* "6m1d" */
    char *changed_at;
};

struct model_appointment {
    int64_t apt_num, patnum, clinic_num, prov_num;
    char *status;       /* AptStatus name: "Scheduled", "Complete", "Broken", ... */
    char *start;        /* AptDateTime, office-local */
    char *dismissed_at; /* DateTimeDismissed or NULL */
    int is_new_patient;
    char *changed_at;
};

struct model_procedure {
    int64_t proc_num, patnum, apt_num;
    char *proc_date; /* "YYYY-MM-DD" or NULL */
    char *status;    /* ProcStatus: "C", "TP", "D", ... */
    char *changed_at;
};

struct model_clinic {
    int64_t clinic_num;
    char *description, *abbr, *phone;
    int hidden;
};

void model_patient_clear(struct model_patient *p); /* accept NULL */
void model_recall_clear(struct model_recall *r);
void model_appointment_clear(struct model_appointment *a);
void model_procedure_clear(struct model_procedure *p);
void model_clinic_clear(struct model_clinic *c);

/* ---- normalisation (pure functions; the adapters share them) ------------------------ */

/* A US phone as E.164 into out ("+15550102233"): 10 digits, or 11 starting with 1, with any
 * punctuation; area code and exchange must start with 2-9. Returns 1 when valid, else 0 and
 * out = "". */
int model_phone_e164(const char *raw, char *out, size_t out_len);

/* 1 when s looks like a deliverable address: one '@', a non-empty local part, a dotted
 * domain, no spaces or control characters, at most 254 bytes. */
int model_email_valid(const char *s);

/* "YYYY-MM-DD" from an Open Dental date or datetime (or FHIR "YYYY-MM-DDT..."): the first
 * 10 characters when they form a real date; NULL for "0001-01-01", "" and garbage.
 * Caller frees with util_free. */
char *model_date(const char *s);

/* "YYYY-MM-DD HH:MM:SS" from an Open Dental datetime (or FHIR "YYYY-MM-DDTHH:MM:SS", a
 * fraction of a second dropped); NULL for the 0001-01-01 sentinel, "", a time with a zone
 * (odsync's datetimes are office-local) and garbage. Caller frees with util_free.
 * model_date and model_datetime also return NULL when out of memory: callers that must tell
 * the two apart test an allocation afterwards. */
char *model_datetime(const char *s);

/* Open Dental's "true"/"false" strings (any case; also JSON booleans via the caller):
 * 1, 0, or -1 when neither. */
int model_bool_string(const char *s);

/* ---- storage (call inside the caller's store_tx) ------------------------------------ */

/* Upsert by (office, primary key). *changed = 1 when the content differed (or was new);
 * then the patient is marked dirty. Strings borrowed. */
int model_put_patient(struct store *st, const char *office, const struct model_patient *p,
                      int *changed);
int model_put_recall(struct store *st, const char *office, const struct model_recall *r,
                     int *changed);
int model_put_appointment(struct store *st, const char *office, const struct model_appointment *a,
                          int *changed);
int model_put_procedure(struct store *st, const char *office, const struct model_procedure *p,
                        int *changed);
int model_put_clinic(struct store *st, const char *office, const struct model_clinic *c,
                     int *changed);

/* An appointment deleted in Open Dental: removed, its patient marked dirty. *changed = 1
 * when it existed. */
int model_delete_appointment(struct store *st, const char *office, int64_t apt_num, int *changed);

/* Recall reconciliation: model_recall_unmark clears the "seen" flag of the recalls of office
 * (of one patient when patnum > 0, else all); model_put_recall sets it; model_recall_sweep
 * then deletes the recalls of that scope not seen (gone from Open Dental) and marks their
 * patients dirty — after one miss for a patient's read, after two consecutive misses for a
 * full read (paging by Offset can skip a row when Open Dental deletes one meanwhile).
 * *deleted = rows removed. */
int model_recall_unmark(struct store *st, const char *office, int64_t patnum);
int model_recall_sweep(struct store *st, const char *office, int64_t patnum, int64_t *deleted);

/* Canonical JSON of a patient (the stored body). Caller frees with util_free. */
char *model_patient_json(const struct model_patient *p);

/* Counts per entity for `odsync status`. */
struct model_counts {
    int64_t patients, recalls, appointments, procedures, clinics, dirty;
};
int model_count(struct store *st, const char *office, struct model_counts *out);

#endif
