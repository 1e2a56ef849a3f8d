/*
 * test_fhir_parity: odsim's FHIR v2 (/fhir/v2/patient, /fhir/v2/appointment) against its REST
 * API v1 on the same data, through the real adapters: od_rest_* on every REST page and
 * od_fhir_* on the one searchset Bundle must give the same canonical records for every
 * field FHIR carries, and the documented "unknown" values for the fields it cannot carry.
 * Also: _lastUpdated against REST's DateTStamp filter, the other search parameters, reads,
 * the observed wire shape, the shared guard (401, Content-Type 400, throttle, faults,
 * counters), the status map on hand-edited rows, and 20,000 patients in one Bundle.
 * Each test starts its own simulator; every stop asserts a clean exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include "http_client.h"
#include "odsim_harness.h"
#include "model.h"
#include "od_fhir.h"
#include "od_rest.h"
#include "util.h"

#include "../support/testutil.h"

#define DEV   "NFF6i0KrXrxDkZHt"
#define CUST  "VzkmZEaUWOjnQX2z"
#define AUTH  "ODFHIR " DEV "/" CUST
#define CLOCK "2026-11-27 09:00:00"
#define PAGE  100 /* remote page cap */

#if defined(__SANITIZE_ADDRESS__)
#define BIG_PATIENTS 5000 /* generation under ASan is slow; the shape of the test is the same */
#else
#define BIG_PATIENTS 20000
#endif

static pid_t sim_pid;           /* running simulator, or 0 */
static int sim_port;            /* its port */
static char *dir;               /* per-test temporary directory */
static struct http_client *cli; /* per test */
static char sim_err[4096];      /* the simulator's stderr, kept in dir */
static char sim_db[4096];       /* a --db file in dir */

static void setup(void)
{
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    cli = http_client_create();
    ck_assert_ptr_nonnull(cli);
    dir = tu_mkdtemp();
    ck_assert_int_eq(util_fmt(sim_err, sizeof(sim_err), "%s/odsim.log", dir), ODSYNC_OK);
    ck_assert_int_eq(util_fmt(sim_db, sizeof(sim_db), "%s/odsim.db", dir), ODSYNC_OK);
    sim_pid = 0;
}

/* Stop the running simulator and require exit status 0. */
static void sim_stop(void)
{
    int status = tu_stop(sim_pid);
    sim_pid = 0;
    ck_assert_msg(status == 0, "odsim exited with %d", status);
}

static void teardown(void)
{
    if (sim_pid > 0)
        sim_stop();
    http_client_destroy(cli);
    tu_rmrf(dir);
    free(dir);
    http_global_cleanup();
}

/* Start odsim with `patients` patients, seed 11, a fixed clock and the extra arguments
 * (NULL-terminated, may be NULL). */
static void sim_start_n(const char *patients, const char *const *extra)
{
    sim_pid = odh_start(patients, "11", CLOCK, extra, sim_err, &sim_port);
}

static void sim_start(const char *const *extra)
{
    sim_start_n("500", extra);
}

/* Perform method on path with the given Authorization and Content-Type (NULL: none). Caller
 * frees the response. */
static struct odsync_http_response *call_raw(const char *method, const char *path, const char *body,
                                             const char *auth, const char *ctype)
{
    return odh_call(cli, sim_port, method, path, body, auth, ctype);
}

static struct odsync_http_response *call(const char *method, const char *path, const char *body)
{
    return call_raw(method, path, body, AUTH, "application/json");
}

/* Parse the body, assert the status; frees the response. Caller frees with cJSON_Delete. */
static cJSON *json_of(struct odsync_http_response *r, int want)
{
    return odh_json(r, want);
}

static cJSON *get(const char *path)
{
    return json_of(call("GET", path, NULL), 200);
}

static cJSON *admin(const char *method, const char *path, const char *body, int want)
{
    return json_of(call_raw(method, path, body, NULL, NULL), want);
}

static int status_of(struct odsync_http_response *r)
{
    int s = r->status;
    http_response_free(r);
    return s;
}

static const char *str(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", name);
    return v->valuestring;
}

static long long num(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", name);
    return (long long)v->valuedouble;
}

/* Assert r is status want with a JSON string body (the REST error style). */
static void expect_string_error(struct odsync_http_response *r, int want)
{
    cJSON *j = json_of(r, want);
    ck_assert_msg(cJSON_IsString(j), "error body is not a JSON string");
    cJSON_Delete(j);
}

/* Assert r is status want with an OperationOutcome body. */
static void expect_outcome(struct odsync_http_response *r, int want)
{
    cJSON *j = json_of(r, want);
    ck_assert_str_eq(str(j, "resourceType"), "OperationOutcome");
    cJSON *issue = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "issue"), 0);
    ck_assert_ptr_nonnull(issue);
    ck_assert_str_eq(str(issue, "severity"), "error");
    cJSON_Delete(j);
}

/* ---- canonical lists ---------------------------------------------------------------------- */

struct pats {
    struct model_patient *v; /* owned, each cleared with model_patient_clear */
    size_t n, cap;
};

struct apts {
    struct model_appointment *v; /* owned, each cleared with model_appointment_clear */
    size_t n, cap;
};

/* Append *p (taken: *p is zeroed). */
static void pats_push(struct pats *l, struct model_patient *p)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        ck_assert_ptr_nonnull(l->v);
    }
    l->v[l->n++] = *p;
    memset(p, 0, sizeof(*p));
}

static void apts_push(struct apts *l, struct model_appointment *a)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        ck_assert_ptr_nonnull(l->v);
    }
    l->v[l->n++] = *a;
    memset(a, 0, sizeof(*a));
}

static void pats_free(struct pats *l)
{
    for (size_t i = 0; i < l->n; i++)
        model_patient_clear(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static void apts_free(struct apts *l)
{
    for (size_t i = 0; i < l->n; i++)
        model_appointment_clear(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int cmp_pat(const void *a, const void *b)
{
    int64_t x = ((const struct model_patient *)a)->patnum;
    int64_t y = ((const struct model_patient *)b)->patnum;
    return (x > y) - (x < y);
}

static int cmp_apt(const void *a, const void *b)
{
    int64_t x = ((const struct model_appointment *)a)->apt_num;
    int64_t y = ((const struct model_appointment *)b)->apt_num;
    return (x > y) - (x < y);
}

/* Every row of a REST list (path without paging, e.g. "/api/v1/patients/Simple?X=1"), page
 * by page, each handed to add. */
static void rest_pages(const char *path, void (*add)(void *arg, const cJSON *elem), void *arg)
{
    char url[1024];
    for (int offset = 0;; offset += PAGE) {
        ck_assert_int_eq(util_fmt(url, sizeof(url), "%s%sLimit=%d&Offset=%d", path,
                                  strchr(path, '?') != NULL ? "&" : "?", PAGE, offset),
                         ODSYNC_OK);
        cJSON *arr = get(url);
        const cJSON *e;
        ck_assert(cJSON_IsArray(arr));
        int n = cJSON_GetArraySize(arr);
        cJSON_ArrayForEach(e, arr) add(arg, e);
        cJSON_Delete(arr);
        if (n < PAGE)
            break;
    }
}

static void add_rest_patient(void *arg, const cJSON *elem)
{
    struct model_patient p;
    char why[128] = "";
    ck_assert_msg(od_rest_patient(elem, &p, why, sizeof(why)) == ODSYNC_OK, "od_rest_patient: %s",
                  why);
    pats_push(arg, &p);
}

static void add_rest_appointment(void *arg, const cJSON *elem)
{
    struct model_appointment a;
    char why[128] = "";
    ck_assert_msg(od_rest_appointment(elem, &a, why, sizeof(why)) == ODSYNC_OK,
                  "od_rest_appointment: %s", why);
    apts_push(arg, &a);
}

/* REST patients (GET /api/v1/patients/Simple, optional extra filter "DateTStamp=..."). */
static void rest_patients(const char *filter, struct pats *out)
{
    char path[512];
    ck_assert_int_eq(util_fmt(path, sizeof(path), "/api/v1/patients/Simple%s%s",
                              filter != NULL ? "?" : "", filter != NULL ? filter : ""),
                     ODSYNC_OK);
    rest_pages(path, add_rest_patient, out);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_pat);
}

static void rest_appointments(const char *filter, struct apts *out)
{
    char path[512];
    ck_assert_int_eq(util_fmt(path, sizeof(path), "/api/v1/appointments%s%s",
                              filter != NULL ? "?" : "", filter != NULL ? filter : ""),
                     ODSYNC_OK);
    rest_pages(path, add_rest_appointment, out);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_apt);
}

static int each_fhir_patient(void *arg, const cJSON *res)
{
    struct model_patient p;
    char why[128] = "";
    ck_assert_msg(od_fhir_patient(res, &p, why, sizeof(why)) == ODSYNC_OK, "od_fhir_patient: %s",
                  why);
    pats_push(arg, &p);
    return ODSYNC_OK;
}

static int each_fhir_appointment(void *arg, const cJSON *res)
{
    struct model_appointment a;
    char why[128] = "";
    int rc = od_fhir_appointment(res, &a, why, sizeof(why));
    ck_assert_msg(rc == ODSYNC_OK, "od_fhir_appointment: %d %s", rc, why);
    apts_push(arg, &a);
    return ODSYNC_OK;
}

/* Walk a searchset Bundle body with the adapter; asserts "total" equals the entries and
 * that every entry was delivered. */
static void walk_bundle(const char *body, size_t len, const char *type,
                        int (*each)(void *, const cJSON *), void *arg)
{
    struct od_fhir_stats st;
    char err[256] = "";
    cJSON *j = cJSON_ParseWithLength(body, len);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(str(j, "resourceType"), "Bundle");
    ck_assert_str_eq(str(j, "type"), "searchset");
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "link"));
    long long total = num(j, "total");
    cJSON_Delete(j);
    ck_assert_msg(od_fhir_bundle(body, len, type, each, arg, &st, err, sizeof(err)) == ODSYNC_OK,
                  "od_fhir_bundle: %s", err);
    ck_assert_int_eq(st.entries, total);
    ck_assert_int_eq(st.delivered, total);
    ck_assert_int_eq(st.skipped, 0);
}

/* FHIR search (query: "" or "?..."), every match through the adapter. */
static void fhir_patients(const char *query, struct pats *out)
{
    char path[1024];
    ck_assert_int_eq(util_fmt(path, sizeof(path), "/fhir/v2/patient%s", query), ODSYNC_OK);
    struct odsync_http_response *r = call("GET", path, NULL);
    ck_assert_msg(r->status == 200, "%s: %d %.300s", path, r->status, r->body);
    walk_bundle(r->body, r->body_len, "Patient", each_fhir_patient, out);
    http_response_free(r);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_pat);
}

static void fhir_appointments(const char *query, struct apts *out)
{
    char path[1024];
    ck_assert_int_eq(util_fmt(path, sizeof(path), "/fhir/v2/appointment%s", query), ODSYNC_OK);
    struct odsync_http_response *r = call("GET", path, NULL);
    ck_assert_msg(r->status == 200, "%s: %d %.300s", path, r->status, r->body);
    walk_bundle(r->body, r->body_len, "Appointment", each_fhir_appointment, out);
    http_response_free(r);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_apt);
}

/* ---- comparison --------------------------------------------------------------------------- */

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

#define NS(s) ((s) != NULL ? (s) : "(null)")

#define SAME_FIELD(kind, key, field, want, got)                                                    \
    ck_assert_msg(same(want, got), "%s %lld: %s: REST \"%s\" but FHIR \"%s\"", kind,               \
                  (long long)(key), field, NS(want), NS(got))

/* The PatStatus FHIR can tell: active=true is Patient; active=false is Inactive, or Deceased
 * (deceasedBoolean); Archived, NonPatient and Prospective all read as Inactive (od_fhir.h). */
static const char *fhir_status_of(const char *rest)
{
    if (rest == NULL)
        return NULL;
    if (strcmp(rest, "Patient") == 0 || strcmp(rest, "Deceased") == 0)
        return rest;
    return "Inactive";
}

/* Language: an ISO 639-2 code travels; a custom language name does not map to one. */
static const char *fhir_language_of(const char *rest)
{
    if (rest == NULL || strlen(rest) != 3)
        return NULL;
    for (int i = 0; i < 3; i++)
        if (rest[i] < 'a' || rest[i] > 'z')
            return NULL;
    return rest;
}

/* What the comparison covered, to prove the data exercises every field. */
struct coverage {
    int preferred, email, mobile, home, work, no_birthdate, no_clinic, clinic, language, inactive,
        deceased, non_iso_language;
};

/* Field by field: every field FHIR carries agrees; the ones it cannot carry are the
 * documented unknowns. Then the canonical JSON bodies, after mapping the REST record to what
 * FHIR can say, are identical. */
static void compare_patient(struct model_patient *rest, const struct model_patient *fhir,
                            struct coverage *cov)
{
    const char *K = "patient";
    int64_t n = rest->patnum;
    ck_assert_int_eq(rest->patnum, fhir->patnum);
    SAME_FIELD(K, n, "last_name", rest->last_name, fhir->last_name);
    SAME_FIELD(K, n, "first_name", rest->first_name, fhir->first_name);
    SAME_FIELD(K, n, "preferred_name", rest->preferred_name, fhir->preferred_name);
    SAME_FIELD(K, n, "email", rest->email, fhir->email);
    SAME_FIELD(K, n, "phone_mobile", rest->phone_mobile, fhir->phone_mobile);
    SAME_FIELD(K, n, "phone_home", rest->phone_home, fhir->phone_home);
    SAME_FIELD(K, n, "phone_work", rest->phone_work, fhir->phone_work);
    SAME_FIELD(K, n, "birthdate", rest->birthdate, fhir->birthdate);
    ck_assert_msg(rest->clinic_num == fhir->clinic_num, "patient %lld: clinic_num %lld vs %lld",
                  (long long)n, (long long)rest->clinic_num, (long long)fhir->clinic_num);
    SAME_FIELD(K, n, "language", fhir_language_of(rest->language), fhir->language);
    SAME_FIELD(K, n, "changed_at", rest->changed_at, fhir->changed_at);
    SAME_FIELD(K, n, "status", fhir_status_of(rest->status), fhir->status);
    /* Not in FHIR v2: the documented unknowns. */
    SAME_FIELD(K, n, "middle_initial (not in FHIR)", (const char *)NULL, fhir->middle_initial);
    SAME_FIELD(K, n, "sms_consent (not in FHIR)", "unknown", fhir->sms_consent);
    SAME_FIELD(K, n, "prefer_contact (not in FHIR)", (const char *)NULL, fhir->prefer_contact);
    SAME_FIELD(K, n, "prefer_recall (not in FHIR)", (const char *)NULL, fhir->prefer_recall);
    ck_assert_int_eq(fhir->guarantor, 0);

    cov->preferred += rest->preferred_name != NULL;
    cov->email += rest->email != NULL;
    cov->mobile += rest->phone_mobile != NULL;
    cov->home += rest->phone_home != NULL;
    cov->work += rest->phone_work != NULL;
    cov->no_birthdate += rest->birthdate == NULL;
    cov->no_clinic += rest->clinic_num == 0;
    cov->clinic += rest->clinic_num > 0;
    cov->language += rest->language != NULL;
    cov->non_iso_language += rest->language != NULL && fhir_language_of(rest->language) == NULL;
    cov->inactive += rest->status != NULL && strcmp(rest->status, "Patient") != 0;
    cov->deceased += rest->status != NULL && strcmp(rest->status, "Deceased") == 0;

    /* The whole canonical body (model_patient_json) once REST's record says only what FHIR
     * can: the same text. */
    util_free(rest->middle_initial);
    rest->middle_initial = NULL;
    util_free(rest->prefer_contact);
    rest->prefer_contact = NULL;
    util_free(rest->prefer_recall);
    rest->prefer_recall = NULL;
    util_free(rest->sms_consent);
    rest->sms_consent = util_strdup("unknown");
    rest->guarantor = 0;
    if (rest->status != NULL && strcmp(rest->status, fhir_status_of(rest->status)) != 0) {
        util_free(rest->status);
        rest->status = util_strdup("Inactive");
    }
    if (rest->language != NULL && fhir_language_of(rest->language) == NULL) {
        util_free(rest->language);
        rest->language = NULL;
    }
    char *a = model_patient_json(rest), *b = model_patient_json(fhir);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(a, b);
    util_free(a);
    util_free(b);
}

/* Every patient of REST and FHIR, compared. Returns the coverage. */
static struct coverage patient_parity(void)
{
    struct pats rest = {0}, fhir = {0};
    struct coverage cov;
    memset(&cov, 0, sizeof(cov));
    rest_patients(NULL, &rest);
    fhir_patients("", &fhir);
    ck_assert_uint_gt(rest.n, 0);
    ck_assert_uint_eq(rest.n, fhir.n);
    for (size_t i = 0; i < rest.n; i++)
        compare_patient(&rest.v[i], &fhir.v[i], &cov);
    pats_free(&rest);
    pats_free(&fhir);
    return cov;
}

/* 1 for the AptStatus rows FHIR never shows (patient notes, not appointments). */
static int not_an_appointment(const struct model_appointment *a)
{
    return strcmp(a->status, "PtNote") == 0 || strcmp(a->status, "PtNoteCompleted") == 0;
}

/* Every appointment of REST and FHIR, compared: apt_num, patnum, status (ASAP and arrived
 * read as Scheduled), start, prov_num (PPRF), changed_at; FHIR's unknowns clinic_num 0,
 * dismissed_at NULL, is_new_patient 0. Returns how many were compared. */
static size_t appointment_parity(int64_t *statuses_seen)
{
    struct apts rest = {0}, fhir = {0};
    size_t j = 0;
    rest_appointments(NULL, &rest);
    fhir_appointments("", &fhir);
    for (size_t i = 0; i < rest.n; i++) {
        const struct model_appointment *r = &rest.v[i];
        const char *want = strcmp(r->status, "ASAP") == 0 ? "Scheduled" : r->status;
        if (not_an_appointment(r))
            continue;
        ck_assert_msg(j < fhir.n, "appointment %lld missing from FHIR", (long long)r->apt_num);
        const struct model_appointment *f = &fhir.v[j++];
        ck_assert_int_eq(r->apt_num, f->apt_num);
        ck_assert_int_eq(r->patnum, f->patnum);
        SAME_FIELD("appointment", r->apt_num, "status", want, f->status);
        SAME_FIELD("appointment", r->apt_num, "start", r->start, f->start);
        SAME_FIELD("appointment", r->apt_num, "changed_at", r->changed_at, f->changed_at);
        ck_assert_int_eq(r->prov_num, f->prov_num);
        ck_assert_int_eq(f->clinic_num, 0);
        ck_assert_ptr_null(f->dismissed_at);
        ck_assert_int_eq(f->is_new_patient, 0);
        if (statuses_seen != NULL) {
            static const char *const names[] = {"Scheduled", "Complete", "Broken", "Planned",
                                                "UnschedList"};
            for (size_t k = 0; k < UTIL_ARRAY_LEN(names); k++)
                statuses_seen[k] += strcmp(r->status, names[k]) == 0;
        }
    }
    ck_assert_uint_eq(j, fhir.n);
    size_t compared = j;
    apts_free(&rest);
    apts_free(&fhir);
    return compared;
}

/* The AptNums of every HistAppointment "Deleted" row. Caller frees with free(); *n set. */
static int64_t *deleted_aptnums(size_t *n)
{
    int64_t *v = NULL;
    size_t cap = 0;
    char url[256];
    *n = 0;
    for (int offset = 0;; offset += PAGE) {
        util_fmt(url, sizeof(url),
                 "/api/v1/histappointments?HistApptAction=Deleted&Limit=%d&Offset=%d", PAGE,
                 offset);
        cJSON *arr = get(url);
        const cJSON *e;
        int count = cJSON_GetArraySize(arr);
        cJSON_ArrayForEach(e, arr)
        {
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                v = realloc(v, cap * sizeof(*v));
                ck_assert_ptr_nonnull(v);
            }
            v[(*n)++] = num(e, "AptNum");
        }
        cJSON_Delete(arr);
        if (count < PAGE)
            break;
    }
    return v;
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(patients_rest_and_fhir_agree)
{
    sim_start(NULL);
    /* Front-desk traffic first, so the comparison also covers edited rows. */
    cJSON_Delete(admin("POST", "/_admin/random", "{\"count\":300,\"seed\":7}", 200));
    cJSON_Delete(json_of(call("PUT", "/api/v1/patients/5",
                              "{\"Preferred\":\"Bee\",\"Language\":\"Klingon\",\"PatStatus\":"
                              "\"Deceased\"}"),
                         200));
    cJSON_Delete(
        json_of(call("PUT", "/api/v1/patients/6",
                     "{\"Email\":\"  spaced.out@example.com \",\"WkPhone\":\"(503) 555-0199\","
                     "\"PatStatus\":\"Prospective\"}"),
                200));
    struct coverage cov = patient_parity();
    ck_assert_int_gt(cov.preferred, 0);
    ck_assert_int_gt(cov.email, 0);
    ck_assert_int_gt(cov.mobile, 0);
    ck_assert_int_gt(cov.home, 0);
    ck_assert_int_gt(cov.work, 0);
    ck_assert_int_gt(cov.no_birthdate, 0);
    ck_assert_int_gt(cov.no_clinic, 0);
    ck_assert_int_gt(cov.clinic, 0);
    ck_assert_int_gt(cov.language, 0);
    ck_assert_int_gt(cov.non_iso_language, 0);
    ck_assert_int_gt(cov.inactive, 0);
    ck_assert_int_gt(cov.deceased, 0);
}
END_TEST

START_TEST(appointments_rest_and_fhir_agree)
{
    int64_t seen[5] = {0};
    sim_start(NULL);
    cJSON_Delete(admin("POST", "/_admin/random", "{\"count\":300,\"seed\":9}", 200));

    /* Delete one more by hand: gone from both, its FHIR read 404. */
    cJSON *list = get("/api/v1/appointments?AptStatus=Scheduled&Limit=1");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    long long victim = num(cJSON_GetArrayItem(list, 0), "AptNum");
    cJSON_Delete(list);
    char path[256];
    util_fmt(path, sizeof(path), "/fhir/v2/appointment/%lld", victim);
    cJSON_Delete(get(path));
    util_fmt(path, sizeof(path), "/_admin/appointments/%lld/delete", victim);
    cJSON_Delete(admin("POST", path, "{}", 200));
    util_fmt(path, sizeof(path), "/fhir/v2/appointment/%lld", victim);
    expect_outcome(call("GET", path, NULL), 404);

    ck_assert_uint_gt(appointment_parity(seen), 500);
    for (size_t k = 0; k < UTIL_ARRAY_LEN(seen); k++)
        ck_assert_msg(seen[k] > 0, "status %zu never seen", k);

    /* Deleted appointments are in neither answer. */
    size_t ndel = 0;
    int64_t *del = deleted_aptnums(&ndel);
    struct apts rest = {0}, fhir = {0};
    rest_appointments(NULL, &rest);
    fhir_appointments("", &fhir);
    ck_assert_uint_gt(ndel, 1);
    for (size_t i = 0; i < ndel; i++) {
        for (size_t k = 0; k < rest.n; k++)
            ck_assert_int_ne(rest.v[k].apt_num, del[i]);
        for (size_t k = 0; k < fhir.n; k++)
            ck_assert_int_ne(fhir.v[k].apt_num, del[i]);
    }
    free(del);
    apts_free(&rest);
    apts_free(&fhir);
    /* No deleted row is shown as cancelled either. */
    cJSON *b = get("/fhir/v2/appointment?status=cancelled");
    ck_assert_int_eq(num(b, "total"), 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(b, "entry"));
    cJSON_Delete(b);
}
END_TEST

/* PatNums (or AptNums) of a REST and a FHIR search must be the same set. */
static void same_patients(const char *rest_filter, const char *fhir_query)
{
    struct pats r = {0}, f = {0};
    rest_patients(rest_filter, &r);
    fhir_patients(fhir_query, &f);
    ck_assert_msg(r.n == f.n, "%s: REST %zu rows, FHIR %zu", fhir_query, r.n, f.n);
    for (size_t i = 0; i < r.n; i++)
        ck_assert_int_eq(r.v[i].patnum, f.v[i].patnum);
    pats_free(&r);
    pats_free(&f);
}

static void same_appointments(const char *rest_filter, const char *fhir_query)
{
    struct apts r = {0}, f = {0};
    size_t j = 0;
    rest_appointments(rest_filter, &r);
    fhir_appointments(fhir_query, &f);
    for (size_t i = 0; i < r.n; i++) {
        if (not_an_appointment(&r.v[i]))
            continue;
        ck_assert_msg(j < f.n, "%s: FHIR has fewer rows", fhir_query);
        ck_assert_int_eq(r.v[i].apt_num, f.v[j].apt_num);
        j++;
    }
    ck_assert_msg(j == f.n, "%s: FHIR has %zu rows, REST %zu", fhir_query, f.n, j);
    apts_free(&r);
    apts_free(&f);
}

/* Number of FHIR matches of a search path. */
static long long fhir_total(const char *path)
{
    cJSON *b = get(path);
    long long t = num(b, "total");
    cJSON *e = cJSON_GetObjectItem(b, "entry");
    ck_assert_int_eq(t, e != NULL ? cJSON_GetArraySize(e) : 0);
    cJSON_Delete(b);
    return t;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(last_updated_matches_rest_datetstamp)
{
    sim_start(NULL);
    cJSON_Delete(admin("POST", "/_admin/random", "{\"count\":100,\"seed\":3}", 200));
    struct pats all = {0};
    rest_patients(NULL, &all);
    char **stamps = malloc(all.n * sizeof(*stamps));
    ck_assert_ptr_nonnull(stamps);
    for (size_t i = 0; i < all.n; i++)
        stamps[i] = all.v[i].changed_at;
    qsort(stamps, all.n, sizeof(*stamps), cmp_str);

    /* Cut points: existing stamps (the boundary row is included, as REST's >= includes it)
     * and one second after a stamp. */
    const size_t picks[] = {0, all.n / 10, all.n / 2, all.n * 9 / 10, all.n - 1};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(picks); i++) {
        char rest_filter[64], fhir_query[64], t[20];
        util_fmt(t, sizeof(t), "%s", stamps[picks[i]]);
        util_fmt(rest_filter, sizeof(rest_filter), "DateTStamp=%.10s%%20%s", t, t + 11);
        t[10] = 'T';
        util_fmt(fhir_query, sizeof(fhir_query), "?_lastUpdated=ge%s", t);
        same_patients(rest_filter, fhir_query);
        same_appointments(rest_filter, fhir_query);

        /* The other prefixes against the stamps themselves. */
        size_t ge = 0, gt = 0, le = 0, lt = 0, eq = 0;
        for (size_t k = 0; k < all.n; k++) {
            int c = strcmp(stamps[k], stamps[picks[i]]);
            ge += c >= 0;
            gt += c > 0;
            le += c <= 0;
            lt += c < 0;
            eq += c == 0;
        }
        char path[128];
        util_fmt(path, sizeof(path), "/fhir/v2/patient?_lastUpdated=gt%s", t);
        ck_assert_int_eq(fhir_total(path), (long long)gt);
        util_fmt(path, sizeof(path), "/fhir/v2/patient?_lastUpdated=le%s", t);
        ck_assert_int_eq(fhir_total(path), (long long)le);
        util_fmt(path, sizeof(path), "/fhir/v2/patient?_lastUpdated=lt%s", t);
        ck_assert_int_eq(fhir_total(path), (long long)lt);
        util_fmt(path, sizeof(path), "/fhir/v2/patient?_lastUpdated=eq%s", t);
        ck_assert_int_eq(fhir_total(path), (long long)eq);
        util_fmt(path, sizeof(path), "/fhir/v2/patient?_lastUpdated=%s", t); /* eq by default */
        ck_assert_int_eq(fhir_total(path), (long long)eq);
        /* A range: two parameters AND. */
        util_fmt(path, sizeof(path), "/fhir/v2/patient?_lastUpdated=ge%s&_lastUpdated=le%s", t, t);
        ck_assert_int_eq(fhir_total(path), (long long)eq);
        ck_assert_int_eq(ge + lt, all.n);
    }

    /* A date covers its whole day: le2026-06-01 includes 2026-06-01 23:59:59. */
    size_t upto = 0;
    for (size_t k = 0; k < all.n; k++)
        upto += strcmp(stamps[k], "2026-06-01 23:59:59") <= 0;
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?_lastUpdated=le2026-06-01"), (long long)upto);
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?_lastUpdated=le2026-06-01T23:59:59"),
                     (long long)upto);
    same_patients("DateTStamp=2026-06-02%2000:00:00", "?_lastUpdated=gt2026-06-01");

    /* Zone-less office-local only; a bad value or prefix is a 400 OperationOutcome. */
    expect_outcome(call("GET", "/fhir/v2/patient?_lastUpdated=ge2026-06-01T00:00:00Z", NULL), 400);
    expect_outcome(call("GET", "/fhir/v2/patient?_lastUpdated=ge2026-06-01T00:00:00-05:00", NULL),
                   400);
    expect_outcome(call("GET", "/fhir/v2/patient?_lastUpdated=ge2026-13-01", NULL), 400);
    expect_outcome(call("GET", "/fhir/v2/patient?_lastUpdated=ap2026-06-01", NULL), 400);
    expect_outcome(call("GET", "/fhir/v2/appointment?_lastUpdated=yesterday", NULL), 400);
    free(stamps);
    pats_free(&all);
}
END_TEST

START_TEST(search_parameters)
{
    sim_start(NULL);
    struct pats all = {0};
    rest_patients(NULL, &all);
    char path[256];

    /* identifier / _id: PatNum, comma lists OR, system|value. */
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?identifier=7"), 1);
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?identifier=7,8,999999"), 2);
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?_id=7"), 1);
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?identifier=|7"), 1);
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?identifier=7&identifier=8"), 0); /* AND */
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?IDENTIFIER=7"), 1); /* names: any case */
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?identifier="), (long long)all.n); /* ignored */
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?_count=5&_format=json"), (long long)all.n);
    expect_outcome(call("GET", "/fhir/v2/patient?identifier=abc", NULL), 400);
    cJSON *none = get("/fhir/v2/patient?identifier=999999");
    ck_assert_int_eq(num(none, "total"), 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(none, "entry"));
    cJSON_Delete(none);

    /* family / given: case-insensitive starts-with; :exact; :contains. Expected from REST. */
    const struct model_patient *p7 = NULL;
    for (size_t i = 0; i < all.n; i++)
        if (all.v[i].patnum == 7)
            p7 = &all.v[i];
    ck_assert_ptr_nonnull(p7);
    char fam[64], famlow[64];
    util_fmt(fam, sizeof(fam), "%.3s", p7->last_name);
    for (size_t i = 0; i <= strlen(fam); i++)
        famlow[i] = (char)(fam[i] >= 'A' && fam[i] <= 'Z' ? fam[i] - 'A' + 'a' : fam[i]);
    long long starts = 0, exact = 0, given_exact = 0;
    for (size_t i = 0; i < all.n; i++) {
        const char *ln = all.v[i].last_name != NULL ? all.v[i].last_name : "";
        starts += strncasecmp(ln, fam, strlen(fam)) == 0;
        exact += strcmp(ln, p7->last_name) == 0;
        given_exact += same(all.v[i].first_name, p7->first_name) && strcmp(ln, p7->last_name) == 0;
    }
    char enc[128];
    ck_assert_int_eq(http_url_encode(famlow, enc, sizeof(enc)), ODSYNC_OK);
    util_fmt(path, sizeof(path), "/fhir/v2/patient?family=%s", enc);
    ck_assert_int_eq(fhir_total(path), starts);
    ck_assert_int_eq(http_url_encode(p7->last_name, enc, sizeof(enc)), ODSYNC_OK);
    util_fmt(path, sizeof(path), "/fhir/v2/patient?family:exact=%s", enc);
    ck_assert_int_eq(fhir_total(path), exact);
    char genc[128];
    ck_assert_int_eq(http_url_encode(p7->first_name, genc, sizeof(genc)), ODSYNC_OK);
    util_fmt(path, sizeof(path), "/fhir/v2/patient?family:exact=%s&given=%s", enc, genc);
    ck_assert_int_ge(fhir_total(path), given_exact);
    ck_assert_int_eq(http_url_encode(p7->last_name + 1, enc, sizeof(enc)), ODSYNC_OK);
    util_fmt(path, sizeof(path), "/fhir/v2/patient?family:contains=%s", enc);
    ck_assert_int_ge(fhir_total(path), exact);
    expect_outcome(call("GET", "/fhir/v2/patient?family:missing=true", NULL), 400);

    /* active. */
    long long active = 0;
    for (size_t i = 0; i < all.n; i++)
        active += same(all.v[i].status, "Patient");
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?active=true"), active);
    ck_assert_int_eq(fhir_total("/fhir/v2/patient?active=false"), (long long)all.n - active);
    same_patients("PatStatus=Patient", "?active=true");
    expect_outcome(call("GET", "/fhir/v2/patient?active=maybe", NULL), 400);
    pats_free(&all);

    /* Appointments: patient (references or ids), status lists, date ranges, identifier. */
    same_appointments("PatNum=7", "?patient=patient/7");
    same_appointments("PatNum=7", "?patient=7");
    same_appointments("PatNum=7", "?patient=Patient/7");
    same_appointments("AptStatus=Complete", "?status=fulfilled");
    same_appointments("AptStatus=Broken", "?status=noshow");
    same_appointments("AptStatus=Planned", "?status=proposed");
    same_appointments("AptStatus=UnschedList", "?status=pending");
    long long booked = fhir_total("/fhir/v2/appointment?status=booked");
    long long pending = fhir_total("/fhir/v2/appointment?status=pending");
    ck_assert_int_gt(booked, 0);
    ck_assert_int_eq(fhir_total("/fhir/v2/appointment?status=booked,pending"), booked + pending);
    expect_outcome(call("GET", "/fhir/v2/appointment?status=bogus", NULL), 400);
    same_appointments("dateStart=2026-11-01&dateEnd=2026-12-31",
                      "?date=ge2026-11-01&date=le2026-12-31");
    same_appointments("dateStart=2026-01-01&dateEnd=2026-12-31", "?date=2026");
    same_appointments("dateStart=2026-12-01&dateEnd=2026-12-31", "?date=2026-12");
    same_appointments("dateStart=2025-02-01&dateEnd=2025-02-28", "?date=eq2025-02");
    same_appointments("date=2026-12-01", "?date=eq2026-12-01");
    ck_assert_int_eq(fhir_total("/fhir/v2/appointment?identifier=3"), 1);
    ck_assert_int_eq(fhir_total("/fhir/v2/appointment?_id=3,4"), 2);
    cJSON *one = get("/fhir/v2/appointment?identifier=3");
    cJSON *res =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(one, "entry"), 0), "resource");
    const cJSON *parts = cJSON_GetObjectItem(res, "participant");
    const cJSON *part;
    long long op = 0, prov = 0;
    cJSON_ArrayForEach(part, parts)
    {
        const char *ref = str(cJSON_GetObjectItem(part, "actor"), "reference");
        if (strncmp(ref, "location/", 9) == 0)
            op = strtoll(ref + 9, NULL, 10);
        if (strncmp(ref, "practitioner/", 13) == 0 && prov == 0)
            prov = strtoll(ref + 13, NULL, 10);
    }
    cJSON_Delete(one);
    ck_assert_int_gt(op, 0);
    ck_assert_int_gt(prov, 0);
    util_fmt(path, sizeof(path), "Op=%lld", op);
    char q[64];
    util_fmt(q, sizeof(q), "?location=location/%lld", op);
    same_appointments(path, q);
    util_fmt(path, sizeof(path), "/fhir/v2/appointment?practitioner=practitioner/%lld&identifier=3",
             prov);
    ck_assert_int_eq(fhir_total(path), 1);
}
END_TEST

START_TEST(wire_shape_and_reads)
{
    sim_start(NULL);
    cJSON *b = get("/fhir/v2/patient");
    cJSON *simple = get("/api/v1/patients/Simple?Limit=100");
    const cJSON *e, *ent = cJSON_GetObjectItem(b, "entry");
    int with_preferred = 0, without_birth = 0, org0 = 0;
    ck_assert_str_eq(str(b, "resourceType"), "Bundle");
    ck_assert_int_eq(num(b, "total"), cJSON_GetArraySize(ent));
    ck_assert_ptr_null(cJSON_GetObjectItem(b, "link"));
    cJSON_ArrayForEach(e, ent)
    {
        const cJSON *res = cJSON_GetObjectItem(e, "resource");
        const char *id = str(res, "id");
        char want[128];
        util_fmt(want, sizeof(want), "http://127.0.0.1:%d/fhir/v2/patient/%s", sim_port, id);
        ck_assert_str_eq(str(e, "fullUrl"), want);
        const cJSON *ident = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "identifier"), 0);
        ck_assert_str_eq(str(ident, "use"), "usual");
        ck_assert_str_eq(str(cJSON_GetObjectItem(ident, "type"), "text"),
                         "Open Dental patient.PatNum");
        ck_assert_str_eq(str(ident, "value"), id);
        ck_assert(cJSON_IsBool(cJSON_GetObjectItem(res, "active")));
        const cJSON *names = cJSON_GetObjectItem(res, "name");
        const cJSON *usual = cJSON_GetArrayItem(names, 0);
        ck_assert_str_eq(str(usual, "use"), "usual");
        ck_assert(cJSON_IsString(cJSON_GetObjectItem(usual, "given"))); /* a string */
        ck_assert(cJSON_IsString(cJSON_GetObjectItem(usual, "family")));
        if (cJSON_GetArraySize(names) > 1) {
            ck_assert_str_eq(str(cJSON_GetArrayItem(names, 1), "use"), "nickname");
            with_preferred++;
        }
        const cJSON *birth = cJSON_GetObjectItem(res, "birthDate");
        if (birth == NULL)
            without_birth++;
        else
            ck_assert_str_eq(birth->valuestring + 10, "T00:00:00");
        const char *g = str(res, "gender");
        ck_assert(strcmp(g, "male") == 0 || strcmp(g, "female") == 0 || strcmp(g, "unknown") == 0);
        const cJSON *care = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "careProvider"), 0);
        if (care != NULL)
            ck_assert_int_eq(strncmp(str(care, "reference"), "practitioner/", 13), 0);
        const char *org = str(cJSON_GetObjectItem(res, "managingOrganization"), "reference");
        ck_assert_int_eq(strncmp(org, "organization/", 13), 0);
        org0 += strcmp(org, "organization/0") == 0;
        const cJSON *tel;
        cJSON_ArrayForEach(tel, cJSON_GetObjectItem(res, "telecom"))
        {
            ck_assert_str_ne(str(tel, "value"), "");
            const char *sys = str(tel, "system"), *use = str(tel, "use");
            ck_assert(strcmp(sys, "phone") == 0 ||
                      (strcmp(sys, "email") == 0 && strcmp(use, "home") == 0));
        }
        const char *lu = str(cJSON_GetObjectItem(res, "meta"), "lastUpdated");
        ck_assert_uint_eq(strlen(lu), 19);
        ck_assert_int_eq(lu[10], 'T');
        ck_assert_str_eq(str(cJSON_GetObjectItem(e, "search"), "mode"), "match");
    }
    ck_assert_int_gt(with_preferred, 0);
    ck_assert_int_gt(without_birth, 0);
    ck_assert_int_gt(org0, 0);

    /* A read is the same resource as its search entry; 404 for a missing one. */
    const cJSON *first = cJSON_GetObjectItem(cJSON_GetArrayItem(ent, 3), "resource");
    char path[128];
    util_fmt(path, sizeof(path), "/fhir/v2/patient/%s", str(first, "id"));
    cJSON *read = get(path);
    ck_assert(cJSON_Compare(read, first, 1));
    cJSON_Delete(read);
    util_fmt(path, sizeof(path), "/fhir/v2/Patient/%s/", str(first, "id")); /* any case, slash */
    cJSON_Delete(get(path));
    expect_outcome(call("GET", "/fhir/v2/patient/999999", NULL), 404);
    expect_string_error(call("GET", "/fhir/v2/patient/abc", NULL), 404);
    cJSON_Delete(simple);
    cJSON_Delete(b);

    /* Appointments: lower-case references, start/end/minutesDuration from the pattern,
     * priority an int, zone-less times. */
    cJSON *ab = get("/fhir/v2/appointment");
    cJSON *rest = get("/api/v1/appointments?Limit=100");
    const cJSON *re;
    int checked = 0;
    cJSON_ArrayForEach(re, rest)
    {
        long long apt = num(re, "AptNum");
        const char *st = str(re, "AptStatus");
        if (strcmp(st, "PtNote") == 0 || strcmp(st, "PtNoteCompleted") == 0)
            continue;
        util_fmt(path, sizeof(path), "/fhir/v2/appointment/%lld", apt);
        cJSON *res = get(path);
        ck_assert_int_eq(num(res, "minutesDuration"), (long long)strlen(str(re, "Pattern")) * 5);
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(res, "priority")));
        const char *when = str(re, "AptDateTime");
        if (strncmp(when, "0001", 4) == 0) {
            ck_assert_ptr_null(cJSON_GetObjectItem(res, "start"));
            ck_assert_str_eq(str(res, "status"), "proposed");
        } else {
            char want[20];
            util_fmt(want, sizeof(want), "%s", when);
            want[10] = 'T';
            ck_assert_str_eq(str(res, "start"), want);
            ck_assert_uint_eq(strlen(str(res, "end")), 19);
        }
        const cJSON *part;
        int patient = 0;
        cJSON_ArrayForEach(part, cJSON_GetObjectItem(res, "participant"))
        {
            const char *ref = str(cJSON_GetObjectItem(part, "actor"), "reference");
            ck_assert(strncmp(ref, "patient/", 8) == 0 || strncmp(ref, "practitioner/", 13) == 0 ||
                      strncmp(ref, "location/", 9) == 0);
            patient += strncmp(ref, "patient/", 8) == 0;
        }
        ck_assert_int_eq(patient, 1);
        ck_assert_uint_eq(strlen(str(cJSON_GetObjectItem(res, "meta"), "lastUpdated")), 19);
        cJSON_Delete(res);
        if (++checked == 40)
            break;
    }
    ck_assert_int_eq(checked, 40);
    cJSON_Delete(rest);
    cJSON_Delete(ab);
}
END_TEST

START_TEST(auth_content_type_and_guard)
{
    sim_start((const char *const[]){"--throttle", "1000", "--over-limit", "reject", NULL});
    const char *paths[] = {"/fhir/v2/patient", "/fhir/v2/patient/1", "/fhir/v2/appointment",
                           "/fhir/v2/appointment/1", NULL};
    for (int i = 0; paths[i] != NULL; i++) {
        expect_string_error(call_raw("GET", paths[i], NULL, NULL, "application/json"), 401);
        expect_string_error(call_raw("GET", paths[i], NULL, "Basic abc", "application/json"), 401);
        expect_string_error(
            call_raw("GET", paths[i], NULL, "ODFHIR " DEV "/wrongcustomer01", "application/json"),
            401);
        expect_string_error(
            call_raw("GET", paths[i], NULL, "ODFHIR wrongdevkey0000/" CUST, "application/json"),
            401);
    }
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"throttle_ms\":\"none\"}", 200));
    for (int i = 0; paths[i] != NULL; i++) {
        expect_string_error(call_raw("GET", paths[i], NULL, AUTH, NULL), 400);
        expect_string_error(call_raw("GET", paths[i], NULL, AUTH, "text/plain"), 400);
        expect_string_error(call_raw("GET", paths[i], NULL, AUTH, "application/fhir+json"), 400);
        ck_assert_int_eq(
            status_of(call_raw("GET", paths[i], NULL, AUTH, "application/json; charset=utf-8")),
            200);
    }
    expect_string_error(call("GET", "/fhir/v2/practitioner", NULL), 404);
    expect_string_error(call("POST", "/fhir/v2/patient", "{}"), 405);
    expect_string_error(call("GET", "/api/v1/fhir/v2/patient", NULL), 404); /* not under REST */
    expect_string_error(call("GET", "/fhir/v3/patient", NULL), 404);

    /* Faults and the throttle slot are the customer key's, shared with REST. */
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"key_disabled\":true}", 200));
    expect_string_error(call("GET", "/fhir/v2/patient", NULL), 401);
    cJSON_Delete(
        admin("POST", "/_admin/faults", "{\"key_disabled\":false,\"econnector_down\":true}", 200));
    expect_string_error(call("GET", "/fhir/v2/appointment", NULL), 400);
    cJSON_Delete(admin("POST", "/_admin/faults",
                       "{\"econnector_down\":false,\"version_too_old\":[\"GET /fhir/v2/patient\"]}",
                       200));
    expect_string_error(call("GET", "/fhir/v2/patient", NULL), 400);
    ck_assert_int_eq(status_of(call("GET", "/fhir/v2/patient/1", NULL)), 200);
    cJSON_Delete(admin("POST", "/_admin/faults",
                       "{\"version_too_old\":[],\"throttle_ms\":60000,\"over_limit\":\"reject\"}",
                       200));
    ck_assert_int_eq(status_of(call("GET", "/api/v1/patients/1", NULL)), 200);
    struct odsync_http_response *r = call("GET", "/fhir/v2/patient/1", NULL);
    ck_assert_int_eq(r->status, 429);
    ck_assert_int_gt(r->retry_after_ms, 0);
    http_response_free(r);
    cJSON_Delete(admin("POST", "/_admin/faults", "{\"throttle_ms\":\"none\"}", 200));

    /* Counted per route and status like REST. */
    cJSON *st = admin("GET", "/_admin/stats?office=1", NULL, 200);
    const cJSON *ep = cJSON_GetObjectItem(st, "by_endpoint");
    const cJSON *search = cJSON_GetObjectItem(ep, "GET /fhir/v2/patient");
    ck_assert_ptr_nonnull(search);
    ck_assert_int_ge(num(search, "200"), 1);
    ck_assert_int_ge(num(search, "400"), 4);
    ck_assert_int_eq(num(search, "401"), 2); /* wrong developer key, key disabled */
    ck_assert_int_eq(num(cJSON_GetObjectItem(ep, "GET /fhir/v2/patient/{id}"), "429"), 1);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(ep, "GET /fhir/v2/appointment/{id}"));
    cJSON_Delete(st);
}
END_TEST

/* Run SQL on the simulator's database file (the simulator is stopped). */
static void edit_db(const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    ck_assert_int_eq(sqlite3_open(sim_db, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s", err);
    sqlite3_free(err);
    sqlite3_close(db);
}

/* AptNum of the nth (0-based) Scheduled appointment, by REST. */
static long long nth_scheduled(int nth)
{
    char path[128];
    util_fmt(path, sizeof(path), "/api/v1/appointments?AptStatus=Scheduled&Limit=1&Offset=%d", nth);
    cJSON *l = get(path);
    long long n = num(cJSON_GetArrayItem(l, 0), "AptNum");
    cJSON_Delete(l);
    return n;
}

START_TEST(status_map_on_edited_rows)
{
    const char *const args[] = {"--db", sim_db, NULL};
    char sql[1024], path[128];
    sim_start(args);
    long long arrived = nth_scheduled(0), asap = nth_scheduled(1), prio = nth_scheduled(2),
              note = nth_scheduled(3), done = nth_scheduled(4);
    sim_stop();
    /* Arrived (not dismissed), ASAP status, ASAP priority, a patient note, and an arrived
     * and dismissed one that is still Scheduled (booked, not arrived). */
    util_fmt(sql, sizeof(sql),
             "UPDATE appointment SET DateTimeArrived = AptDateTime WHERE AptNum = %lld;"
             "UPDATE appointment SET AptStatus = 'ASAP' WHERE AptNum = %lld;"
             "UPDATE appointment SET Priority = 'ASAP' WHERE AptNum = %lld;"
             "UPDATE appointment SET AptStatus = 'PtNote' WHERE AptNum = %lld;"
             "UPDATE appointment SET DateTimeArrived = AptDateTime, DateTimeDismissed ="
             " AptDateTime WHERE AptNum = %lld;",
             arrived, asap, prio, note, done);
    edit_db(sql);
    sim_start(args);

    const struct {
        long long apt;
        const char *status;
        int priority;
    } want[] = {
        {arrived, "arrived", 5}, {asap, "booked", 1}, {prio, "booked", 1}, {done, "booked", 5}};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(want); i++) {
        util_fmt(path, sizeof(path), "/fhir/v2/appointment/%lld", want[i].apt);
        cJSON *res = get(path);
        ck_assert_str_eq(str(res, "status"), want[i].status);
        ck_assert_int_eq(num(res, "priority"), want[i].priority);
        cJSON_Delete(res);
    }
    util_fmt(path, sizeof(path), "/fhir/v2/appointment/%lld", note);
    expect_outcome(call("GET", path, NULL), 404);
    util_fmt(path, sizeof(path), "/api/v1/appointments/%lld", asap);
    cJSON *r = get(path);
    ck_assert_str_eq(str(r, "AptStatus"), "ASAP");
    cJSON_Delete(r);

    ck_assert_int_eq(fhir_total("/fhir/v2/appointment?status=arrived"), 1);
    util_fmt(path, sizeof(path), "/fhir/v2/appointment?status=booked&identifier=%lld,%lld,%lld",
             arrived, asap, done);
    ck_assert_int_eq(fhir_total(path), 2);
    /* And the adapters still agree everywhere (arrived and ASAP read as Scheduled; the note
     * is in REST only). */
    ck_assert_uint_gt(appointment_parity(NULL), 500);
}
END_TEST

/* ---- 20,000 patients in one Bundle -------------------------------------------------------- */

struct grow {
    char *data; /* owned (free()), NUL-terminated */
    size_t len, cap;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct grow *g = arg;
    if (g->len + size * n + 1 > g->cap) {
        size_t cap = g->cap ? g->cap : 1 << 20;
        while (cap < g->len + size * n + 1)
            cap *= 2;
        char *d = realloc(g->data, cap);
        if (d == NULL)
            return 0;
        g->data = d;
        g->cap = cap;
    }
    memcpy(g->data + g->len, p, size * n);
    g->len += size * n;
    g->data[g->len] = '\0';
    return size * n;
}

/* GET path with libcurl directly: the Bundle passes http_client's 16 MB body cap. Caller
 * frees g->data with free(). Returns the HTTP status. */
static long fetch_big(const char *path, struct grow *g)
{
    char url[256];
    long status = 0;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    ck_assert_ptr_nonnull(c);
    util_fmt(url, sizeof(url), "http://127.0.0.1:%d%s", sim_port, path);
    h = curl_slist_append(h, "Authorization: " AUTH);
    h = curl_slist_append(h, "Content-Type: application/json");
    memset(g, 0, sizeof(*g));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static int count_only(void *arg, const cJSON *res)
{
    struct model_patient p;
    ck_assert_int_eq(od_fhir_patient(res, &p, NULL, 0), ODSYNC_OK);
    model_patient_clear(&p);
    (*(int64_t *)arg)++;
    return ODSYNC_OK;
}

static int count_apt(void *arg, const cJSON *res)
{
    struct model_appointment a;
    ck_assert_int_eq(od_fhir_appointment(res, &a, NULL, 0), ODSYNC_OK);
    model_appointment_clear(&a);
    (*(int64_t *)arg)++;
    return ODSYNC_OK;
}

START_TEST(twenty_thousand_patients_one_bundle)
{
    char n[16];
    struct grow g;
    struct od_fhir_stats st;
    char err[256];
    int64_t delivered = 0;
    util_fmt(n, sizeof(n), "%d", BIG_PATIENTS);
    sim_start_n(n, NULL);

    int64_t t0 = util_monotonic_ms();
    ck_assert_int_eq(fetch_big("/fhir/v2/patient", &g), 200);
    int64_t patients_ms = util_monotonic_ms() - t0;
    ck_assert_int_eq(
        od_fhir_bundle(g.data, g.len, "Patient", count_only, &delivered, &st, err, sizeof(err)),
        ODSYNC_OK);
    ck_assert_int_eq(delivered, BIG_PATIENTS);
    fprintf(stderr, "FHIR patient search: %d patients, %zu bytes in %lld ms\n", BIG_PATIENTS, g.len,
            (long long)patients_ms);
    free(g.data);

    delivered = 0;
    t0 = util_monotonic_ms();
    ck_assert_int_eq(fetch_big("/fhir/v2/appointment", &g), 200);
    int64_t apts_ms = util_monotonic_ms() - t0;
    ck_assert_int_eq(
        od_fhir_bundle(g.data, g.len, "Appointment", count_apt, &delivered, &st, err, sizeof(err)),
        ODSYNC_OK);
    ck_assert_int_gt(delivered, BIG_PATIENTS);
    fprintf(stderr, "FHIR appointment search: %lld appointments, %zu bytes in %lld ms\n",
            (long long)delivered, g.len, (long long)apts_ms);
    free(g.data);
#if !defined(__SANITIZE_ADDRESS__)
    ck_assert_int_lt(patients_ms, 5000);
    ck_assert_int_lt(apts_ms, 10000);
#endif
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fhir_parity");
    TCase *tc = tcase_create("fhir");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, patients_rest_and_fhir_agree);
    tcase_add_test(tc, appointments_rest_and_fhir_agree);
    tcase_add_test(tc, last_updated_matches_rest_datetstamp);
    tcase_add_test(tc, search_parameters);
    tcase_add_test(tc, wire_shape_and_reads);
    tcase_add_test(tc, auth_content_type_and_guard);
    tcase_add_test(tc, status_map_on_edited_rows);
    tcase_add_test(tc, twenty_thousand_patients_one_bundle);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(suite)
