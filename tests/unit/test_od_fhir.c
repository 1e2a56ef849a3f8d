/*
 * test_od_fhir: core/od_fhir against fixtures shaped like Open Dental's FHIR v2 search
 * responses (tests/fixtures/fhir/, fictional data): every mapping rule and every observed
 * quirk (lower-case references, given as a string, birthDate with a time part, zone-less
 * lastUpdated, no paging links), the variants (given arrays, capitalised and full-URL
 * references, identifier-only ids, bad phones and emails), bad entries skipped and counted,
 * non-Bundles and broken JSON refused without one delivery, and a fail-Nth-allocation loop
 * that must end with the same result, never a crash or a leak.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "model.h"
#include "od_fhir.h"
#include "util.h"

#include "../support/testutil.h"

#define MAX_GOT 32
#define WHY_LEN 128

static FILE *devnull;
static char err[512];

static void setup(void)
{
    devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    util_init_cjson_hooks();
    err[0] = '\0';
}

static void teardown(void)
{
    util_fail_alloc_after(0);
    log_shutdown();
    fclose(devnull);
}

/* A fixture's text; caller frees with free(). */
static char *fixture(const char *name, size_t *len)
{
    char rel[256];
    char *path, *text;

    ck_assert(util_fmt(rel, sizeof(rel), "tests/fixtures/fhir/%s", name) == ODSYNC_OK);
    path = tu_src_path(rel);
    text = tu_read_file(path);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    free(path);
    if (len != NULL)
        *len = strlen(text);
    return text;
}

/* ---- collecting callbacks ------------------------------------------------------------------ */

struct pats {
    struct model_patient got[MAX_GOT];
    int n;
    char why[MAX_GOT][WHY_LEN]; /* of the refused resources, in order */
    int refused;
};

static int each_patient(void *arg, const cJSON *res)
{
    struct pats *c = arg;
    char why[WHY_LEN] = "";
    int rc;

    ck_assert_int_lt(c->n, MAX_GOT);
    rc = od_fhir_patient(res, &c->got[c->n], why, sizeof(why));
    if (rc == ODSYNC_OK) {
        c->n++;
    } else if (rc == ODSYNC_PARSE) {
        ck_assert_int_lt(c->refused, MAX_GOT);
        ck_assert(util_fmt(c->why[c->refused++], WHY_LEN, "%s", why) == ODSYNC_OK);
    }
    return rc;
}

static void pats_clear(struct pats *c)
{
    int i;
    for (i = 0; i < c->n; i++)
        model_patient_clear(&c->got[i]);
    memset(c, 0, sizeof(*c));
}

static const struct model_patient *find_pat(const struct pats *c, int64_t patnum)
{
    int i;
    for (i = 0; i < c->n; i++)
        if (c->got[i].patnum == patnum)
            return &c->got[i];
    ck_abort_msg("patient %lld not delivered", (long long)patnum);
    return NULL;
}

struct apts {
    struct model_appointment got[MAX_GOT];
    int n;
    struct model_appointment deleted[MAX_GOT]; /* ODSYNC_NOT_FOUND results */
    int ndeleted;
    char why[MAX_GOT][WHY_LEN];
    int refused;
};

static int each_appointment(void *arg, const cJSON *res)
{
    struct apts *c = arg;
    char why[WHY_LEN] = "";
    struct model_appointment a;
    int rc;

    rc = od_fhir_appointment(res, &a, why, sizeof(why));
    if (rc == ODSYNC_OK) {
        ck_assert_int_lt(c->n, MAX_GOT);
        c->got[c->n++] = a;
    } else if (rc == ODSYNC_NOT_FOUND) { /* the caller deletes it */
        ck_assert_int_lt(c->ndeleted, MAX_GOT);
        c->deleted[c->ndeleted++] = a;
        rc = ODSYNC_OK;
    } else if (rc == ODSYNC_PARSE) {
        ck_assert_int_lt(c->refused, MAX_GOT);
        ck_assert(util_fmt(c->why[c->refused++], WHY_LEN, "%s", why) == ODSYNC_OK);
    }
    return rc;
}

static void apts_clear(struct apts *c)
{
    int i;
    for (i = 0; i < c->n; i++)
        model_appointment_clear(&c->got[i]);
    for (i = 0; i < c->ndeleted; i++)
        model_appointment_clear(&c->deleted[i]);
    memset(c, 0, sizeof(*c));
}

static const struct model_appointment *find_apt(const struct apts *c, int64_t apt_num)
{
    int i;
    for (i = 0; i < c->n; i++)
        if (c->got[i].apt_num == apt_num)
            return &c->got[i];
    ck_abort_msg("appointment %lld not delivered", (long long)apt_num);
    return NULL;
}

/* Counts calls; returns stop_rc on call number stop_at (1-based), else OK. */
struct counter {
    int calls;
    int stop_at;
    int stop_rc;
};

static int each_count(void *arg, const cJSON *res)
{
    struct counter *c = arg;
    (void)res;
    c->calls++;
    return c->calls == c->stop_at ? c->stop_rc : ODSYNC_OK;
}

/* Assert that none of the refusal reasons carries a value from the resources. */
static void assert_no_patient_data(char why[][WHY_LEN], int n)
{
    static const char *const secrets[] = {"Zed", "Secretname", "555", "0199", "503", "example"};
    size_t j;
    int i;

    for (i = 0; i < n; i++)
        for (j = 0; j < UTIL_ARRAY_LEN(secrets); j++)
            ck_assert_msg(strstr(why[i], secrets[j]) == NULL, "why leaks data: %s", why[i]);
}

/* ---- patients ------------------------------------------------------------------------------- */

/* The observed shape: given as a string, birthDate with T00:00:00, lower-case organization
 * references (including organization/0), rank 0 telecoms, DSTU2 careProvider, zone-less
 * lastUpdated. */
START_TEST(test_patients_observed_shape)
{
    struct pats c;
    struct od_fhir_stats st;
    const struct model_patient *p;
    size_t len;
    char *text = fixture("patients.json", &len);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(od_fhir_bundle(text, len, "Patient", each_patient, &c, &st, err, sizeof(err)),
                     ODSYNC_OK);
    ck_assert_int_eq(st.entries, 3);
    ck_assert_int_eq(st.delivered, 3);
    ck_assert_int_eq(st.skipped, 0);
    ck_assert_int_eq(st.bad, 0);

    p = find_pat(&c, 1042);
    ck_assert_pstr_eq(p->last_name, "Quill");
    ck_assert_pstr_eq(p->first_name, "Avery");
    ck_assert_pstr_eq(p->middle_initial, NULL);
    ck_assert_pstr_eq(p->preferred_name, NULL);
    ck_assert_pstr_eq(p->status, "Patient");
    ck_assert_pstr_eq(p->email, "avery.quill@example.com");
    ck_assert_pstr_eq(p->phone_mobile, "+15035550123");
    ck_assert_pstr_eq(p->phone_home, NULL);
    ck_assert_pstr_eq(p->phone_work, NULL);
    ck_assert_pstr_eq(p->birthdate, "1988-03-14");
    ck_assert_int_eq(p->guarantor, 0);
    ck_assert_int_eq(p->clinic_num, 2);
    ck_assert_pstr_eq(p->sms_consent, "unknown");
    ck_assert_pstr_eq(p->prefer_contact, NULL);
    ck_assert_pstr_eq(p->prefer_recall, NULL);
    ck_assert_pstr_eq(p->language, NULL);
    ck_assert_pstr_eq(p->changed_at, "2025-08-20 10:14:03");

    p = find_pat(&c, 1043);
    ck_assert_pstr_eq(p->last_name, "Ferris");
    ck_assert_pstr_eq(p->first_name, "Blake");
    ck_assert_pstr_eq(p->status, "Inactive"); /* active=false: Inactive or Archived, unknowable */
    ck_assert_pstr_eq(p->email, "blake.ferris@example.net");
    ck_assert_pstr_eq(p->phone_mobile, NULL);
    ck_assert_pstr_eq(p->phone_home, "+15035550144");
    ck_assert_pstr_eq(p->phone_work, "+15035550155");
    ck_assert_pstr_eq(p->birthdate, "1959-02-08");
    ck_assert_int_eq(p->clinic_num, 0); /* organization/0 = the practice, no clinic */
    ck_assert_pstr_eq(p->changed_at, "2018-11-12 11:00:22");

    p = find_pat(&c, 1044);
    ck_assert_pstr_eq(p->email, "casey.moreno@example.org");
    ck_assert_pstr_eq(p->phone_mobile, NULL);
    ck_assert_pstr_eq(p->phone_home, NULL);
    ck_assert_int_eq(p->clinic_num, 1);
    ck_assert_pstr_eq(p->birthdate, "1997-10-28");
    pats_clear(&c);
    free(text);
}
END_TEST

START_TEST(test_patient_variants_and_bad_entries)
{
    struct pats c;
    struct od_fhir_stats st;
    const struct model_patient *p;
    size_t len;
    char *text = fixture("patient_variants.json", &len);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(od_fhir_bundle(text, len, "Patient", each_patient, &c, &st, err, sizeof(err)),
                     ODSYNC_OK);
    ck_assert_int_eq(st.entries, 13);
    ck_assert_int_eq(st.delivered, 3);
    ck_assert_int_eq(st.skipped, 10); /* 2 of another type + 8 bad */
    ck_assert_int_eq(st.bad, 8);      /* 5 refused by the mapper + 3 malformed entries */
    ck_assert_int_eq(st.entries, st.delivered + st.skipped);

    /* given as an array with a middle initial, a nickname, capitalised Organization, sms,
     * a phone without use, a padded email, BCP-47 language (preferred entry first) */
    p = find_pat(&c, 2001);
    ck_assert_pstr_eq(p->last_name, "Okafor");
    ck_assert_pstr_eq(p->first_name, "Dana");
    ck_assert_pstr_eq(p->middle_initial, "R");
    ck_assert_pstr_eq(p->preferred_name, "Dee");
    ck_assert_pstr_eq(p->status, "Patient");
    ck_assert_pstr_eq(p->phone_mobile, "+15035550166"); /* the sms entry came first */
    ck_assert_pstr_eq(p->phone_home, "+15035550168");   /* a phone with no use */
    ck_assert_pstr_eq(p->phone_work, NULL);
    ck_assert_pstr_eq(p->email, "dana.okafor@example.org");
    ck_assert_pstr_eq(p->birthdate, "1991-12-01"); /* a plain date works too */
    ck_assert_int_eq(p->clinic_num, 3);
    ck_assert_pstr_eq(p->language, "spa");
    ck_assert_pstr_eq(p->changed_at, "2025-09-01 08:00:00"); /* fraction dropped */

    /* every phone and email malformed or "old"; a text-only name; deceased; sentinel date */
    p = find_pat(&c, 2002);
    ck_assert_pstr_eq(p->first_name, "Mary Ann");
    ck_assert_pstr_eq(p->last_name, "Lee");
    ck_assert_pstr_eq(p->middle_initial, NULL);
    ck_assert_pstr_eq(p->status, "Deceased");
    ck_assert_pstr_eq(p->phone_mobile, NULL);
    ck_assert_pstr_eq(p->phone_home, NULL);
    ck_assert_pstr_eq(p->phone_work, NULL);
    ck_assert_pstr_eq(p->email, NULL);
    ck_assert_pstr_eq(p->birthdate, NULL);
    ck_assert_int_eq(p->clinic_num, 4); /* full URL, upper-case type */

    /* PatNum from the identifier only; resourceType "patient"; DSTU2 family array */
    p = find_pat(&c, 2003);
    ck_assert_pstr_eq(p->last_name, "Nakamura");
    ck_assert_pstr_eq(p->first_name, "Kenji");
    ck_assert_pstr_eq(p->status, NULL); /* no active: not known */
    ck_assert_pstr_eq(p->language, "vie");
    ck_assert_int_eq(p->clinic_num, 0);
    ck_assert_pstr_eq(p->sms_consent, "unknown");

    ck_assert_int_eq(c.refused, 5);
    ck_assert_str_eq(c.why[0], "id: missing");
    ck_assert_str_eq(c.why[1], "id: not a positive integer");
    ck_assert_str_eq(c.why[2], "identifier: disagrees with id");
    ck_assert_str_eq(c.why[3], "managingOrganization: not an organization/N reference");
    ck_assert_str_eq(c.why[4], "meta.lastUpdated: has a time zone; expected office-local time");
    assert_no_patient_data(c.why, c.refused);
    pats_clear(&c);
    free(text);
}
END_TEST

/* Map one inline resource (single quotes stand for double quotes). */
static int map_patient(const char *json_sq, struct model_patient *p, char *why)
{
    char buf[2048];
    cJSON *res;
    size_t i;
    int rc;

    ck_assert_uint_lt(strlen(json_sq), sizeof(buf));
    for (i = 0; json_sq[i] != '\0'; i++)
        buf[i] = json_sq[i] == '\'' ? '"' : json_sq[i];
    buf[i] = '\0';
    res = cJSON_Parse(buf);
    ck_assert_msg(res != NULL, "bad test JSON: %s", buf);
    why[0] = '\0';
    rc = od_fhir_patient(res, p, why, WHY_LEN);
    cJSON_Delete(res);
    return rc;
}

#define PAT(body) "{'resourceType': 'Patient', 'id': '7', " body "}"

/* Refusal reasons one by one (each names the field, never the value). */
START_TEST(test_patient_refusals)
{
    static const struct {
        const char *json;
        const char *why;
    } cases[] = {
        {"{'id': '7'}", "resourceType: not Patient"},
        {"{'resourceType': 'Appointment', 'id': '7'}", "resourceType: not Patient"},
        {"[1]", "resource: not a JSON object"},
        {"{'resourceType': 'Patient', 'id': '0'}", "id: not a positive integer"},
        {"{'resourceType': 'Patient', 'id': '-5'}", "id: not a positive integer"},
        {"{'resourceType': 'Patient', 'id': '12abc'}", "id: not a positive integer"},
        {"{'resourceType': 'Patient', 'id': ' 12'}", "id: not a positive integer"},
        {"{'resourceType': 'Patient', 'id': 1.5}", "id: not a positive integer"},
        {"{'resourceType': 'Patient', 'id': true}", "id: not a positive integer"},
        {"{'resourceType': 'Patient', 'id': '99999999999999999999'}", "id: not a positive integer"},
        {"{'resourceType': 'Patient'}", "id: missing"},
        {"{'resourceType': 'Patient', 'identifier': [{'type': {'text': 'Open Dental "
         "patient.PatNum'}, 'value': 'Zed'}]}",
         "identifier: value is not a positive integer"},
        {PAT("'managingOrganization': {'reference': 'organization/abc'}"),
         "managingOrganization: not an organization/N reference"},
        {PAT("'managingOrganization': {'reference': 'organization/-1'}"),
         "managingOrganization: not an organization/N reference"},
        {PAT("'managingOrganization': {'reference': 'xorganization/2'}"),
         "managingOrganization: not an organization/N reference"},
        {PAT("'managingOrganization': {'reference': 'organization/2/'}"),
         "managingOrganization: not an organization/N reference"},
        {PAT("'meta': {'lastUpdated': '2025-08-20T10:14:03+02:00'}"),
         "meta.lastUpdated: has a time zone; expected office-local time"},
        {PAT("'meta': {'lastUpdated': '2025-08-20T10:14:03-07:00'}"),
         "meta.lastUpdated: has a time zone; expected office-local time"},
        {PAT("'meta': {'lastUpdated': '2025-08-20T10:14:03.250z'}"),
         "meta.lastUpdated: has a time zone; expected office-local time"},
    };
    struct model_patient p;
    char why[WHY_LEN];
    size_t i;

    for (i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        memset(&p, 0xA5, sizeof(p)); /* garbage in: must come back zeroed */
        ck_assert_msg(map_patient(cases[i].json, &p, why) == ODSYNC_PARSE, "case %zu", i);
        ck_assert_str_eq(why, cases[i].why);
        ck_assert_ptr_null(p.last_name);
        ck_assert_ptr_null(p.sms_consent);
        ck_assert_int_eq(p.patnum, 0);
    }
    /* a NULL resource, a NULL why */
    ck_assert_int_eq(od_fhir_patient(NULL, &p, why, sizeof(why)), ODSYNC_PARSE);
    ck_assert_str_eq(why, "resource: not a JSON object");
    ck_assert_int_eq(od_fhir_patient(NULL, &p, NULL, 0), ODSYNC_PARSE);
    ck_assert_int_eq(od_fhir_patient(NULL, NULL, why, sizeof(why)), ODSYNC_INVALID);
}
END_TEST

/* One rule at a time, on inline resources. */
START_TEST(test_patient_rules)
{
    struct model_patient p;
    char why[WHY_LEN];

#define OK_PAT(body) ck_assert_int_eq(map_patient(PAT(body), &p, why), ODSYNC_OK)
    /* id as a JSON number; id and identifier agreeing */
    ck_assert_int_eq(map_patient("{'resourceType': 'PATIENT', 'id': 1042, 'identifier': [{'type': "
                                 "{'text': 'open dental patient.patnum'}, 'value': '1042'}]}",
                                 &p, why),
                     ODSYNC_OK);
    ck_assert_int_eq(p.patnum, 1042);
    ck_assert_pstr_eq(p.status, NULL);
    ck_assert_pstr_eq(p.changed_at, NULL);
    ck_assert_pstr_eq(p.sms_consent, "unknown");
    model_patient_clear(&p);

    /* status: "false" as a string; deceasedDateTime real / sentinel; active beats deceased */
    OK_PAT("'active': 'false'");
    ck_assert_pstr_eq(p.status, "Inactive");
    model_patient_clear(&p);
    OK_PAT("'active': false, 'deceasedDateTime': '2024-01-02T00:00:00'");
    ck_assert_pstr_eq(p.status, "Deceased");
    model_patient_clear(&p);
    OK_PAT("'active': false, 'deceasedDateTime': '0001-01-01T00:00:00'");
    ck_assert_pstr_eq(p.status, "Inactive");
    model_patient_clear(&p);
    OK_PAT("'active': true, 'deceasedBoolean': true");
    ck_assert_pstr_eq(p.status, "Patient");
    model_patient_clear(&p);
    OK_PAT("'active': 'maybe'");
    ck_assert_pstr_eq(p.status, NULL);
    model_patient_clear(&p);

    /* name choice: usual beats official; old skipped; blank givens skipped; one-word text */
    OK_PAT("'name': [{'use': 'official', 'family': 'Off'}, {'use': 'usual', 'family': ' Use ', "
           "'given': ['', ' Ann ', 'B', 'C']}]");
    ck_assert_pstr_eq(p.last_name, "Use");
    ck_assert_pstr_eq(p.first_name, "Ann");
    ck_assert_pstr_eq(p.middle_initial, "B");
    model_patient_clear(&p);
    OK_PAT("'name': [{'use': 'old', 'family': 'Former'}, {'family': 'Current', 'given': 'Cy'}]");
    ck_assert_pstr_eq(p.last_name, "Current");
    ck_assert_pstr_eq(p.first_name, "Cy");
    model_patient_clear(&p);
    OK_PAT("'name': [{'use': 'nickname', 'text': 'Bo'}, {'use': 'official', 'family': 'Ray', "
           "'given': 'Robert'}]");
    ck_assert_pstr_eq(p.last_name, "Ray");
    ck_assert_pstr_eq(p.preferred_name, "Bo"); /* nickname without given: its text */
    model_patient_clear(&p);
    OK_PAT("'name': [{'text': 'Cher'}]");
    ck_assert_pstr_eq(p.last_name, "Cher");
    ck_assert_pstr_eq(p.first_name, NULL);
    model_patient_clear(&p);
    OK_PAT("'name': [{'text': 'Full Text', 'given': 'Only'}]"); /* text used only if both absent */
    ck_assert_pstr_eq(p.first_name, "Only");
    ck_assert_pstr_eq(p.last_name, NULL);
    model_patient_clear(&p);
    OK_PAT("'name': 'not an array', 'telecom': {'system': 'phone'}, 'communication': 3");
    ck_assert_pstr_eq(p.last_name, NULL);
    model_patient_clear(&p);

    /* telecom: first valid per slot; invalid ones do not take the slot; case-insensitive */
    OK_PAT("'telecom': [{'system': 'phone', 'use': 'mobile', 'value': '12'}, {'system': 'PHONE', "
           "'use': 'Mobile', 'value': '1-503-555-0177'}, {'system': 'phone', 'use': 'mobile', "
           "'value': '503 555 0178'}, {'system': 'phone', 'use': 'temp', 'value': '5035550179'}, "
           "{'system': 'email', 'value': 'x@y'}, {'system': 'Email', 'value': 'ok@example.com'}, "
           "{'system': 'email', 'value': 'second@example.com'}, {'value': '5035550180'}]");
    ck_assert_pstr_eq(p.phone_mobile, "+15035550177");
    ck_assert_pstr_eq(p.phone_home, NULL);
    ck_assert_pstr_eq(p.email, "ok@example.com");
    model_patient_clear(&p);

    /* birthDate: partial and impossible dates are no value */
    OK_PAT("'birthDate': '1988'");
    ck_assert_pstr_eq(p.birthdate, NULL);
    model_patient_clear(&p);
    OK_PAT("'birthDate': '1988-02-30T00:00:00'");
    ck_assert_pstr_eq(p.birthdate, NULL);
    model_patient_clear(&p);

    /* clinic: no reference (display only) is 0; organization/0 is 0; any case */
    OK_PAT("'managingOrganization': {'display': 'Somewhere'}");
    ck_assert_int_eq(p.clinic_num, 0);
    model_patient_clear(&p);
    OK_PAT("'managingOrganization': {'reference': 'ORGANIZATION/12'}");
    ck_assert_int_eq(p.clinic_num, 12);
    model_patient_clear(&p);

    /* lastUpdated: garbage is no value; the sentinel is no value */
    OK_PAT("'meta': {'lastUpdated': 'yesterday at noon, roughly'}");
    ck_assert_pstr_eq(p.changed_at, NULL);
    model_patient_clear(&p);
    OK_PAT("'meta': {'lastUpdated': '0001-01-01T00:00:00'}");
    ck_assert_pstr_eq(p.changed_at, NULL);
    model_patient_clear(&p);
    OK_PAT("'meta': {'lastUpdated': '2025-08-20T10:14:03.'}");
    ck_assert_pstr_eq(p.changed_at, NULL);
    model_patient_clear(&p);

    /* language: ISO 639-2 kept, BCP-47 mapped, special and unknown codes dropped */
    OK_PAT("'communication': [{'language': {'coding': [{'code': 'ENG'}]}}]");
    ck_assert_pstr_eq(p.language, "eng");
    model_patient_clear(&p);
    OK_PAT("'communication': [{'language': {'coding': [{'code': 'zh_Hant'}]}}]");
    ck_assert_pstr_eq(p.language, "zho");
    model_patient_clear(&p);
    OK_PAT("'communication': [{'language': {'coding': [{'code': 'und'}]}}, {'language': "
           "{'text': 'English'}}]");
    ck_assert_pstr_eq(p.language, NULL);
    model_patient_clear(&p);
    OK_PAT("'communication': [{'language': {'text': 'en'}, 'preferred': 'TRUE'}]");
    ck_assert_pstr_eq(p.language, "eng");
    model_patient_clear(&p);
#undef OK_PAT
}
END_TEST

/* ---- appointments --------------------------------------------------------------------------- */

START_TEST(test_appointments_observed_shape)
{
    struct apts c;
    struct od_fhir_stats st;
    const struct model_appointment *a;
    size_t len;
    char *text = fixture("appointments.json", &len);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(
        od_fhir_bundle(text, len, "Appointment", each_appointment, &c, &st, err, sizeof(err)),
        ODSYNC_OK);
    ck_assert_int_eq(st.entries, 7);
    ck_assert_int_eq(st.delivered, 7);
    ck_assert_int_eq(st.skipped, 0);
    ck_assert_int_eq(c.n, 6);

    a = find_apt(&c, 5521); /* booked */
    ck_assert_pstr_eq(a->status, "Scheduled");
    ck_assert_int_eq(a->patnum, 1042);
    ck_assert_int_eq(a->prov_num, 1);
    ck_assert_int_eq(a->clinic_num, 0); /* no organization reference on FHIR appointments */
    ck_assert_pstr_eq(a->start, "2025-10-02 09:30:00");
    ck_assert_pstr_eq(a->changed_at, "2025-08-29 16:40:11");
    ck_assert_pstr_eq(a->dismissed_at, NULL);
    ck_assert_int_eq(a->is_new_patient, 0);

    a = find_apt(&c, 5522);
    ck_assert_pstr_eq(a->status, "Complete");
    ck_assert_int_eq(a->patnum, 1043);
    ck_assert_int_eq(a->prov_num, 6);
    ck_assert_pstr_eq(a->start, "2025-06-11 08:00:00");
    a = find_apt(&c, 5523);
    ck_assert_pstr_eq(a->status, "Broken");
    ck_assert_int_eq(a->patnum, 1044);
    a = find_apt(&c, 5524);
    ck_assert_pstr_eq(a->status, "Planned");
    ck_assert_pstr_eq(a->start, NULL);
    a = find_apt(&c, 5525);
    ck_assert_pstr_eq(a->status, "UnschedList");
    a = find_apt(&c, 5526);
    ck_assert_pstr_eq(a->status, "Scheduled"); /* arrived */
    ck_assert_pstr_eq(a->start, "2025-09-01 08:10:00");

    ck_assert_int_eq(c.ndeleted, 1); /* cancelled = deleted in Open Dental */
    ck_assert_int_eq(c.deleted[0].apt_num, 5527);
    ck_assert_pstr_eq(c.deleted[0].status, NULL);
    ck_assert_pstr_eq(c.deleted[0].changed_at, "2025-09-03 14:05:51");
    apts_clear(&c);
    free(text);
}
END_TEST

START_TEST(test_appointment_variants_and_bad_entries)
{
    struct apts c;
    struct od_fhir_stats st;
    const struct model_appointment *a;
    size_t len;
    char *text = fixture("appointment_variants.json", &len);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(
        od_fhir_bundle(text, len, "appointment", each_appointment, &c, &st, err, sizeof(err)),
        ODSYNC_OK);
    ck_assert_int_eq(st.entries, 10);
    ck_assert_int_eq(st.delivered, 4);
    ck_assert_int_eq(st.skipped, 6);
    ck_assert_int_eq(st.bad, 5);

    a = find_apt(&c, 6001); /* capitalised references; PPRF wins over an earlier PART */
    ck_assert_pstr_eq(a->status, "Scheduled");
    ck_assert_int_eq(a->patnum, 2001);
    ck_assert_int_eq(a->prov_num, 8);
    ck_assert_int_eq(a->clinic_num, 3);
    ck_assert_pstr_eq(a->start, "2025-11-03 14:00:00");
    ck_assert_pstr_eq(a->changed_at, "2025-10-20 12:00:00");
    a = find_apt(&c, 6002); /* "Fulfilled", full-URL patient, no practitioner */
    ck_assert_pstr_eq(a->status, "Complete");
    ck_assert_int_eq(a->patnum, 2002);
    ck_assert_int_eq(a->prov_num, 0);
    a = find_apt(&c, 6003); /* AptNum from the identifier; pending without start */
    ck_assert_pstr_eq(a->status, "UnschedList");
    ck_assert_int_eq(a->patnum, 2003);
    ck_assert_int_eq(a->prov_num, 2);
    ck_assert_pstr_eq(a->start, NULL);
    ck_assert_int_eq(c.ndeleted, 1); /* entered-in-error */
    ck_assert_int_eq(c.deleted[0].apt_num, 6004);

    ck_assert_int_eq(c.refused, 5);
    ck_assert_str_eq(c.why[0], "status: not a known Appointment status");
    ck_assert_str_eq(c.why[1], "participant: no patient/N reference");
    ck_assert_str_eq(c.why[2], "start: has a time zone; expected office-local time");
    ck_assert_str_eq(c.why[3], "participant: two different patients");
    ck_assert_str_eq(c.why[4], "status: missing");
    assert_no_patient_data(c.why, c.refused);
    apts_clear(&c);
    free(text);
}
END_TEST

/* Map one inline appointment (single quotes stand for double quotes). */
static int map_appointment(const char *json_sq, struct model_appointment *a, char *why)
{
    char buf[2048];
    cJSON *res;
    size_t i;
    int rc;

    ck_assert_uint_lt(strlen(json_sq), sizeof(buf));
    for (i = 0; json_sq[i] != '\0'; i++)
        buf[i] = json_sq[i] == '\'' ? '"' : json_sq[i];
    buf[i] = '\0';
    res = cJSON_Parse(buf);
    ck_assert_msg(res != NULL, "bad test JSON: %s", buf);
    why[0] = '\0';
    rc = od_fhir_appointment(res, a, why, WHY_LEN);
    cJSON_Delete(res);
    return rc;
}

START_TEST(test_appointment_rules)
{
    struct model_appointment a;
    char why[WHY_LEN];

    /* a cancelled appointment needs no participants: the caller only deletes it */
    ck_assert_int_eq(
        map_appointment("{'resourceType': 'Appointment', 'id': '9', 'status': 'cancelled'}", &a,
                        why),
        ODSYNC_NOT_FOUND);
    ck_assert_int_eq(a.apt_num, 9);
    ck_assert_int_eq(a.patnum, 0);
    model_appointment_clear(&a);
    /* no PPRF: the first practitioner; an organization/0 participant is clinic 0 */
    ck_assert_int_eq(map_appointment("{'resourceType': 'Appointment', 'id': '9', 'status': "
                                     "'checked-in', 'priority': 5, 'participant': [{'actor': "
                                     "{'reference': 'practitioner/4'}}, {'actor': {'reference': "
                                     "'practitioner/5'}}, {'actor': {'reference': "
                                     "'organization/0'}}, {'actor': {'reference': 'patient/3'}}, "
                                     "{'actor': {'reference': 'Patient/3'}}, {'actor': 7}]}",
                                     &a, why),
                     ODSYNC_OK);
    ck_assert_pstr_eq(a.status, "Scheduled");
    ck_assert_int_eq(a.prov_num, 4);
    ck_assert_int_eq(a.patnum, 3);
    ck_assert_int_eq(a.clinic_num, 0);
    model_appointment_clear(&a);
    ck_assert_int_eq(map_appointment("{'resourceType': 'Appointment', 'id': '9', 'status': "
                                     "'waitlist', 'participant': [{'actor': {'reference': "
                                     "'patient/0'}}]}",
                                     &a, why),
                     ODSYNC_PARSE);
    ck_assert_str_eq(why, "participant: no patient/N reference");
    ck_assert_int_eq(map_appointment("{'resourceType': 'Patient', 'id': '9'}", &a, why),
                     ODSYNC_PARSE);
    ck_assert_str_eq(why, "resourceType: not Appointment");
    ck_assert_int_eq(map_appointment("{'resourceType': 'Appointment', 'id': 'x9'}", &a, why),
                     ODSYNC_PARSE);
    ck_assert_str_eq(why, "id: not a positive integer");
    ck_assert_int_eq(map_appointment("{'resourceType': 'Appointment', 'identifier': [{'type': "
                                     "{'text': 'Open Dental FK to appointment.AptNum'}, 'value': "
                                     "'9'}], 'status': 'cancelled', 'meta': {'lastUpdated': "
                                     "'2025-01-01T00:00:00Z'}}",
                                     &a, why),
                     ODSYNC_PARSE);
    ck_assert_str_eq(why, "meta.lastUpdated: has a time zone; expected office-local time");
    ck_assert_int_eq(od_fhir_appointment(NULL, NULL, why, sizeof(why)), ODSYNC_INVALID);
}
END_TEST

/* ---- the Bundle walker ---------------------------------------------------------------------- */

START_TEST(test_bundle_refuses_non_bundle)
{
    struct counter c = {0, 0, 0};
    struct od_fhir_stats st;
    size_t len;
    char *text = fixture("not_bundle.json", &len);

    ck_assert_int_eq(od_fhir_bundle(text, len, "Patient", each_count, &c, &st, err, sizeof(err)),
                     ODSYNC_PARSE);
    ck_assert_str_eq(err, "not a Bundle: resourceType is OperationOutcome");
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(st.entries, 0);
    free(text);
}
END_TEST

START_TEST(test_bundle_malformed_text)
{
    static const struct {
        const char *text;
        int rc;
        const char *err;
    } cases[] = {
        {"", ODSYNC_PARSE, "not a Bundle: empty"},
        {" \n\t ", ODSYNC_PARSE, "not a Bundle: empty"},
        {"[]", ODSYNC_PARSE, "not a Bundle: not a JSON object"},
        {"\"Bundle\"", ODSYNC_PARSE, "not a Bundle: not a JSON object"},
        {"{}", ODSYNC_PARSE, "not a Bundle: no resourceType"},
        {"{\"resourceType\":42}", ODSYNC_PARSE, "not a Bundle: resourceType is not Bundle"},
        {"{\"resourceType\":\"<b>x</b>\"}", ODSYNC_PARSE,
         "not a Bundle: resourceType is not Bundle"},
        {"{\"resourceType\":\"Bundle\",\"entry\":{}}", ODSYNC_PARSE,
         "Bundle: entry is not an array"},
        {"{\"resourceType\":\"Bundle\"} x", ODSYNC_PARSE, "Bundle: invalid JSON at byte 26"},
        {"{\"resourceType\":\"Bundle\",}", ODSYNC_PARSE, "Bundle: invalid JSON at byte 25"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[01]}", ODSYNC_PARSE,
         "Bundle: invalid JSON at byte 35"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[{\"a\":\"\\ud800\"}]}", ODSYNC_PARSE,
         "Bundle: invalid JSON at byte 46"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[{\"a\":\"\\udc00\\ud800\"}]}", ODSYNC_PARSE,
         "Bundle: invalid JSON at byte 46"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[{\"a\":\"tab\there\"}]}", ODSYNC_PARSE,
         "Bundle: invalid JSON at byte 43"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[{\"a\":\"\\x\"}]}", ODSYNC_PARSE,
         "Bundle: invalid JSON at byte 41"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[tru]}", ODSYNC_PARSE,
         "Bundle: invalid JSON at byte 34"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[1.]}", ODSYNC_PARSE,
         "Bundle: invalid JSON at byte 36"},
        {"{\"resourceType\":\"Bundle\",\"entry\":[]}", ODSYNC_OK, ""},
        {"{\"resourceType\":\"bundle\",\"type\":\"searchset\",\"total\":0}", ODSYNC_OK, ""},
        {"{\"entry\":[{\"resource\":{\"resourceType\":\"Patient\"}}],\"resourceType\":\"Bundle\"}",
         ODSYNC_OK, ""},
        {"{\"resourceType\":\"Bundle\",\"entry\":[null, [], 1e5, -0.5E-3, true, false, "
         "{\"resource\":{\"resourceType\":\"Patient\",\"x\":\"\\ud83d\\ude00\\u00e9\\n\"}}]}",
         ODSYNC_OK, ""},
    };
    struct od_fhir_stats st;
    struct counter c;
    size_t i;
    int rc;

    for (i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        memset(&c, 0, sizeof(c));
        rc = od_fhir_bundle(cases[i].text, strlen(cases[i].text), "Patient", each_count, &c, &st,
                            err, sizeof(err));
        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d: %s", i, rc, err);
        ck_assert_msg(strcmp(err, cases[i].err) == 0, "case %zu: err '%s'", i, err);
        if (rc != ODSYNC_OK)
            ck_assert_int_eq(c.calls, 0);
    }
    /* the last case: 7 entries, one Patient delivered, 6 malformed */
    ck_assert_int_eq(st.entries, 7);
    ck_assert_int_eq(st.delivered, 1);
    ck_assert_int_eq(st.bad, 6);

    /* an embedded NUL byte is not JSON */
    ck_assert_int_eq(od_fhir_bundle("{\"resourceType\":\"Bundle\"}\0", 26, "Patient", each_count,
                                    &c, NULL, err, sizeof(err)),
                     ODSYNC_PARSE);
    /* the text need not be NUL-terminated: len bounds it */
    ck_assert_int_eq(od_fhir_bundle("{\"resourceType\":\"Bundle\"}GARBAGE", 25, "Patient",
                                    each_count, &c, NULL, err, sizeof(err)),
                     ODSYNC_OK);
    /* arguments */
    ck_assert_int_eq(od_fhir_bundle(NULL, 3, "Patient", each_count, &c, NULL, err, sizeof(err)),
                     ODSYNC_INVALID);
    ck_assert_int_eq(od_fhir_bundle("{}", 2, NULL, each_count, &c, NULL, err, sizeof(err)),
                     ODSYNC_INVALID);
    ck_assert_int_eq(od_fhir_bundle("{}", 2, "Patient", NULL, &c, NULL, NULL, 0), ODSYNC_INVALID);
    ck_assert_int_eq(od_fhir_bundle(NULL, 0, "Patient", each_count, &c, NULL, NULL, 0),
                     ODSYNC_PARSE);
}
END_TEST

/* Nesting far past the limit is refused, not a stack overflow. */
START_TEST(test_bundle_deep_nesting)
{
    struct sbuf b = {0};
    struct counter c = {0, 0, 0};
    char *text;
    int i;

    sbuf_puts(&b, "{\"resourceType\":\"Bundle\",\"entry\":[");
    for (i = 0; i < 100000; i++)
        sbuf_puts(&b, "[");
    for (i = 0; i < 100000; i++)
        sbuf_puts(&b, "]");
    sbuf_puts(&b, "]}");
    text = sbuf_take(&b);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(
        od_fhir_bundle(text, strlen(text), "Patient", each_count, &c, NULL, err, sizeof(err)),
        ODSYNC_PARSE);
    ck_assert_str_eq(err, "Bundle: JSON nested deeper than 200 levels");
    ck_assert_int_eq(c.calls, 0);
    util_free(text);
}
END_TEST

/* Every truncation of a real Bundle is refused before anything is delivered. */
START_TEST(test_bundle_truncated_delivers_nothing)
{
    struct counter c;
    size_t len, cut, end;
    char *text = fixture("patients.json", &len);

    end = len;
    while (end > 0 && text[end - 1] != '}')
        end--;
    ck_assert_uint_gt(end, 100);
    for (cut = 0; cut < end; cut++) {
        memset(&c, 0, sizeof(c));
        ck_assert_msg(od_fhir_bundle(text, cut, "Patient", each_count, &c, NULL, err,
                                     sizeof(err)) == ODSYNC_PARSE,
                      "cut at %zu accepted", cut);
        ck_assert_int_eq(c.calls, 0);
    }
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(od_fhir_bundle(text, end, "Patient", each_count, &c, NULL, err, sizeof(err)),
                     ODSYNC_OK);
    ck_assert_int_eq(c.calls, 3);
    free(text);
}
END_TEST

/* A callback failure other than PARSE (a store error) stops the walk and is returned. */
START_TEST(test_bundle_callback_stops_walk)
{
    struct counter c = {0, 2, ODSYNC_STORE};
    struct od_fhir_stats st;
    size_t len;
    char *text = fixture("patients.json", &len);

    ck_assert_int_eq(od_fhir_bundle(text, len, "Patient", each_count, &c, &st, err, sizeof(err)),
                     ODSYNC_STORE);
    ck_assert_str_eq(err, "Bundle entry 1: stopped by the caller (code 12)");
    ck_assert_int_eq(c.calls, 2);
    ck_assert_int_eq(st.entries, 2);
    ck_assert_int_eq(st.delivered, 1);

    /* PARSE from the callback is a bad entry: counted, the walk goes on */
    memset(&c, 0, sizeof(c));
    c.stop_at = 1;
    c.stop_rc = ODSYNC_PARSE;
    ck_assert_int_eq(od_fhir_bundle(text, len, "Patient", each_count, &c, &st, err, sizeof(err)),
                     ODSYNC_OK);
    ck_assert_int_eq(c.calls, 3);
    ck_assert_int_eq(st.delivered, 2);
    ck_assert_int_eq(st.bad, 1);
    ck_assert_int_eq(st.skipped, 1);

    /* another type wanted: every entry skipped, none bad */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(
        od_fhir_bundle(text, len, "Appointment", each_count, &c, &st, err, sizeof(err)), ODSYNC_OK);
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(st.skipped, 3);
    ck_assert_int_eq(st.bad, 0);
    free(text);
}
END_TEST

/* One Bundle with every match (no paging): thousands of entries, one at a time. */
START_TEST(test_bundle_large)
{
    struct sbuf b = {0};
    struct counter c = {0, 0, 0};
    struct od_fhir_stats st;
    char *text;
    int i;

    sbuf_puts(&b, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":5000,\"entry\":[");
    for (i = 1; i <= 5000; i++)
        sbuf_printf(&b,
                    "%s{\"fullUrl\":\"https://api.opendental.com/fhir/v2/patient/%d\",\"resource\":"
                    "{\"resourceType\":\"Patient\",\"id\":\"%d\",\"active\":true},\"search\":{"
                    "\"mode\":\"match\",\"score\":1.0}}",
                    i > 1 ? "," : "", i, i);
    sbuf_puts(&b, "]}");
    text = sbuf_take(&b);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(
        od_fhir_bundle(text, strlen(text), "Patient", each_count, &c, &st, err, sizeof(err)),
        ODSYNC_OK);
    ck_assert_int_eq(c.calls, 5000);
    ck_assert_int_eq(st.entries, 5000);
    util_free(text);
}
END_TEST

/* ---- allocation failures -------------------------------------------------------------------- */

/* A plain-malloc text summary (the fail-Nth mode must not touch the test's own bookkeeping). */
struct summary {
    char text[32768];
    size_t len;
};

static void sum_add(struct summary *s, const char *fmt, ...) UTIL_PRINTF(2, 3);
static void sum_add(struct summary *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(s->text + s->len, sizeof(s->text) - s->len, fmt, ap);
    va_end(ap);
    ck_assert(n >= 0 && (size_t)n < sizeof(s->text) - s->len);
    s->len += (size_t)n;
}

#define S(x) ((x) != NULL ? (x) : "-")

static int each_patient_summary(void *arg, const cJSON *res)
{
    struct summary *s = arg;
    struct model_patient p;
    char why[WHY_LEN];
    int rc = od_fhir_patient(res, &p, why, sizeof(why));

    if (rc == ODSYNC_OK) {
        sum_add(s, "%lld|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%lld|%lld|%s|%s|%s|%s|%s\n",
                (long long)p.patnum, S(p.last_name), S(p.first_name), S(p.middle_initial),
                S(p.preferred_name), S(p.status), S(p.email), S(p.phone_mobile), S(p.phone_home),
                S(p.phone_work), S(p.birthdate), (long long)p.guarantor, (long long)p.clinic_num,
                S(p.sms_consent), S(p.prefer_contact), S(p.prefer_recall), S(p.language),
                S(p.changed_at));
        model_patient_clear(&p);
    } else if (rc == ODSYNC_PARSE) {
        sum_add(s, "refused: %s\n", why);
    } else {
        ck_assert_int_eq(rc, ODSYNC_NOMEM);
        ck_assert_str_eq(why, "out of memory");
        ck_assert_ptr_null(p.sms_consent);
    }
    return rc;
}

static int each_appointment_summary(void *arg, const cJSON *res)
{
    struct summary *s = arg;
    struct model_appointment a;
    char why[WHY_LEN];
    int rc = od_fhir_appointment(res, &a, why, sizeof(why));

    if (rc == ODSYNC_OK || rc == ODSYNC_NOT_FOUND) {
        sum_add(s, "%s %lld|%lld|%lld|%lld|%s|%s|%s|%d|%s\n", rc == ODSYNC_OK ? "put" : "delete",
                (long long)a.apt_num, (long long)a.patnum, (long long)a.clinic_num,
                (long long)a.prov_num, S(a.status), S(a.start), S(a.dismissed_at), a.is_new_patient,
                S(a.changed_at));
        model_appointment_clear(&a);
        rc = ODSYNC_OK;
    } else if (rc == ODSYNC_PARSE) {
        sum_add(s, "refused: %s\n", why);
    } else {
        ck_assert_int_eq(rc, ODSYNC_NOMEM);
        ck_assert_ptr_null(a.status);
    }
    return rc;
}

/* Fail the nth allocation for n = 1, 2, ... until the walk succeeds: every earlier run must
 * end in ODSYNC_NOMEM with its message, and the final one match a run without failures. */
static void fail_nth(const char *name, const char *type, int (*each)(void *, const cJSON *))
{
    static struct summary want, got;
    struct od_fhir_stats st_want, st_got;
    size_t len;
    char *text = fixture(name, &len);
    long n;
    int rc = ODSYNC_NOMEM;

    memset(&want, 0, sizeof(want));
    ck_assert_int_eq(od_fhir_bundle(text, len, type, each, &want, &st_want, err, sizeof(err)),
                     ODSYNC_OK);
    for (n = 1; n < 100000; n++) {
        memset(&got, 0, sizeof(got));
        util_fail_alloc_after(n);
        rc = od_fhir_bundle(text, len, type, each, &got, &st_got, err, sizeof(err));
        util_fail_alloc_after(0);
        if (rc == ODSYNC_OK)
            break;
        ck_assert_msg(rc == ODSYNC_NOMEM, "%s n=%ld: rc %d: %s", name, n, rc, err);
        ck_assert_msg(strstr(err, "out of memory") != NULL, "%s n=%ld: %s", name, n, err);
    }
    ck_assert_int_eq(rc, ODSYNC_OK);
    ck_assert_int_gt(n, 20);
    ck_assert_str_eq(got.text, want.text);
    ck_assert_int_eq(st_got.entries, st_want.entries);
    ck_assert_int_eq(st_got.delivered, st_want.delivered);
    ck_assert_int_eq(st_got.bad, st_want.bad);
    free(text);
}

START_TEST(test_fail_nth_allocation_patients)
{
    fail_nth("patients.json", "Patient", each_patient_summary);
    fail_nth("patient_variants.json", "Patient", each_patient_summary);
}
END_TEST

START_TEST(test_fail_nth_allocation_appointments)
{
    fail_nth("appointments.json", "Appointment", each_appointment_summary);
    fail_nth("appointment_variants.json", "Appointment", each_appointment_summary);
}
END_TEST

static Suite *od_fhir_suite(void)
{
    Suite *s = suite_create("od_fhir");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_patients_observed_shape);
    tcase_add_test(tc, test_patient_variants_and_bad_entries);
    tcase_add_test(tc, test_patient_refusals);
    tcase_add_test(tc, test_patient_rules);
    tcase_add_test(tc, test_appointments_observed_shape);
    tcase_add_test(tc, test_appointment_variants_and_bad_entries);
    tcase_add_test(tc, test_appointment_rules);
    tcase_add_test(tc, test_bundle_refuses_non_bundle);
    tcase_add_test(tc, test_bundle_malformed_text);
    tcase_add_test(tc, test_bundle_deep_nesting);
    tcase_add_test(tc, test_bundle_truncated_delivers_nothing);
    tcase_add_test(tc, test_bundle_callback_stops_walk);
    tcase_add_test(tc, test_bundle_large);
    tcase_add_test(tc, test_fail_nth_allocation_patients);
    tcase_add_test(tc, test_fail_nth_allocation_appointments);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(od_fhir_suite)
