/*
 * od_fhir.c: Open Dental FHIR v2 resources into the canonical model, and a searchset Bundle
 * walker that checks the whole text once, then parses one entry at a time.
 */
#include "od_fhir.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#define COMPONENT     "od_fhir"
#define MAX_DEPTH     200 /* JSON nesting the walker accepts (cJSON's own limit is 1000) */
#define PHONE_LEN     24
#define LABEL_PATNUM  "Open Dental patient.PatNum"
#define LABEL_APTNUM  "Open Dental FK to appointment.AptNum"
#define MAX_SAFE_JSON 9007199254740991.0 /* 2^53 - 1: integers a double holds exactly */

/* ---- small helpers ---------------------------------------------------------------------- */

/* Write a fixed message into why (which may be NULL). */
static void set_why(char *why, size_t why_len, const char *msg)
{
    if (why != NULL && why_len > 0)
        util_fmt(why, why_len, "%s", msg);
}

/* model_date and model_datetime return NULL both for "no value" and for out of memory. After
 * such a NULL, one small allocation tells them apart: the fail-Nth test mode fails every later
 * allocation, and real exhaustion seldom ends between two calls. 1 when memory is out. */
static int out_of_memory(void)
{
    void *p = util_malloc(1);
    if (p == NULL)
        return 1;
    util_free(p);
    return 0;
}

/* Member name of obj (case-sensitive, as FHIR is), or NULL; obj may be NULL or no object. */
static const cJSON *member(const cJSON *obj, const char *name)
{
    if (!cJSON_IsObject(obj))
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* The string value of member name, or NULL when absent or not a string. Borrowed. */
static const char *member_string(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    return cJSON_IsString(v) && v->valuestring != NULL ? v->valuestring : NULL;
}

/* JSON true/false, or the strings "true"/"false" in any case: 1, 0, or -1 when neither. */
static int truth(const cJSON *v)
{
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? 1 : 0;
    if (cJSON_IsString(v))
        return model_bool_string(v->valuestring);
    return -1;
}

/* 1 when s is NULL or holds only white space. */
static int blank(const char *s)
{
    if (s == NULL)
        return 1;
    for (; *s != '\0'; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* *out = a copy of s without surrounding white space (caller frees with util_free), or NULL
 * when s is NULL or blank. Returns ODSYNC_OK or ODSYNC_NOMEM. */
static int dup_trimmed(const char *s, char **out)
{
    size_t n;
    *out = NULL;
    if (blank(s))
        return ODSYNC_OK;
    while (isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    *out = util_strndup(s, n);
    return *out != NULL ? ODSYNC_OK : ODSYNC_NOMEM;
}

/* A positive integer from a JSON string ("1042") or an integral JSON number. 1 when valid. */
static int positive_id(const cJSON *v, int64_t *out)
{
    double d;
    if (cJSON_IsString(v) && v->valuestring != NULL)
        return util_parse_i64(v->valuestring, 1, INT64_MAX, out) == ODSYNC_OK;
    if (!cJSON_IsNumber(v))
        return 0;
    d = v->valuedouble;
    if (d < 1 || d > MAX_SAFE_JSON || d != (double)(int64_t)d)
        return 0;
    *out = (int64_t)d;
    return 1;
}

/* The numeric id of a reference to type: "patient/1042", "Patient/1042" or a full URL
 * ".../fhir/v2/patient/1042" (type compared ASCII case-insensitively). 1 when ref has that
 * shape and the id is an integer >= min. */
static int reference_id(const char *ref, const char *type, int64_t min, int64_t *id)
{
    size_t tlen = strlen(type);
    const char *slash, *start;

    if (ref == NULL)
        return 0;
    slash = strrchr(ref, '/');
    if (slash == NULL || (size_t)(slash - ref) < tlen)
        return 0;
    start = slash - tlen;
    if (strncasecmp(start, type, tlen) != 0 || (start > ref && start[-1] != '/'))
        return 0;
    return util_parse_i64(slash + 1, min, INT64_MAX, id) == ODSYNC_OK;
}

/* The primary key of a resource: id, or the value of the identifier[] whose type.text is
 * label. Both present must agree. why names the problem. */
static int resource_id(const cJSON *res, const char *label, int64_t *out, char *why, size_t why_len)
{
    const cJSON *id = member(res, "id");
    const cJSON *idents = member(res, "identifier");
    const cJSON *it;
    int64_t from_id = 0, from_ident = 0;

    if (id != NULL && !cJSON_IsNull(id) && !positive_id(id, &from_id)) {
        set_why(why, why_len, "id: not a positive integer");
        return ODSYNC_PARSE;
    }
    if (cJSON_IsArray(idents)) {
        cJSON_ArrayForEach(it, idents)
        {
            const char *text = member_string(member(it, "type"), "text");
            if (text == NULL || strcasecmp(text, label) != 0)
                continue;
            if (!positive_id(member(it, "value"), &from_ident)) {
                set_why(why, why_len, "identifier: value is not a positive integer");
                return ODSYNC_PARSE;
            }
            break;
        }
    }
    if (from_id != 0 && from_ident != 0 && from_id != from_ident) {
        set_why(why, why_len, "identifier: disagrees with id");
        return ODSYNC_PARSE;
    }
    if (from_id == 0 && from_ident == 0) {
        set_why(why, why_len, "id: missing");
        return ODSYNC_PARSE;
    }
    *out = from_id != 0 ? from_id : from_ident;
    return ODSYNC_OK;
}

/* ODSYNC_OK when res is an object whose resourceType is type (any case). */
static int check_type(const cJSON *res, const char *type, char *why, size_t why_len)
{
    const char *rt;
    if (!cJSON_IsObject(res)) {
        set_why(why, why_len, "resource: not a JSON object");
        return ODSYNC_PARSE;
    }
    rt = member_string(res, "resourceType");
    if (rt == NULL || strcasecmp(rt, type) != 0) {
        set_why(why, why_len,
                strcmp(type, "Patient") == 0 ? "resourceType: not Patient"
                                             : "resourceType: not Appointment");
        return ODSYNC_PARSE;
    }
    return ODSYNC_OK;
}

/* *out = an office-local "YYYY-MM-DD HH:MM:SS" from a FHIR date-time s (borrowed; NULL or ""
 * gives NULL), via model_datetime; caller frees with util_free. A fractional second is dropped;
 * the sentinel and garbage give NULL; a zone suffix is refused (field names it in why). */
static int local_datetime(const char *s, const char *field, char **out, char *why, size_t why_len)
{
    char head[20];
    size_t n, i;

    *out = NULL;
    if (s == NULL || *s == '\0')
        return ODSYNC_OK;
    n = strlen(s);
    memcpy(head, s, n < 19 ? n : 19);
    head[n < 19 ? n : 19] = '\0';
    *out = model_datetime(head);
    if (*out == NULL)
        return out_of_memory() ? ODSYNC_NOMEM : ODSYNC_OK;
    if (n <= 19)
        return ODSYNC_OK;
    i = 19;
    if (s[i] == '.') {
        for (i++; isdigit((unsigned char)s[i]); i++)
            ;
        if (i == 20) /* a dot without digits */
            i = 19;
    }
    if (s[i] == '\0')
        return ODSYNC_OK;
    util_free(*out);
    *out = NULL;
    if (s[i] == 'Z' || s[i] == 'z' || s[i] == '+' || s[i] == '-') {
        if (why != NULL && why_len > 0)
            util_fmt(why, why_len, "%s: has a time zone; expected office-local time", field);
        return ODSYNC_PARSE;
    }
    return ODSYNC_OK; /* trailing garbage: no usable value */
}

/* ---- Patient ------------------------------------------------------------------------------ */

/* 1 when a name's use is code (any case). */
static int name_use_is(const cJSON *name, const char *code)
{
    const char *use = member_string(name, "use");
    return use != NULL && strcasecmp(use, code) == 0;
}

/* The name[] to read: use "usual", else "official", else the first that is not "nickname" or
 * "old", else the first. NULL when there is none. Borrowed from names. */
static const cJSON *choose_name(const cJSON *names)
{
    const cJSON *n, *official = NULL, *plain = NULL, *first = NULL;

    if (!cJSON_IsArray(names))
        return NULL;
    cJSON_ArrayForEach(n, names)
    {
        if (!cJSON_IsObject(n))
            continue;
        if (name_use_is(n, "usual"))
            return n;
        if (first == NULL)
            first = n;
        if (official == NULL && name_use_is(n, "official"))
            official = n;
        if (plain == NULL && !name_use_is(n, "nickname") && !name_use_is(n, "old"))
            plain = n;
    }
    return official != NULL ? official : plain != NULL ? plain : first;
}

/* The nth (0-based) non-blank given name: given is a string (observed) or an array (FHIR). */
static const char *given_at(const cJSON *name, int nth)
{
    const cJSON *g = member(name, "given");
    const cJSON *it;

    if (cJSON_IsString(g))
        return nth == 0 && !blank(g->valuestring) ? g->valuestring : NULL;
    if (!cJSON_IsArray(g))
        return NULL;
    cJSON_ArrayForEach(it, g)
    {
        if (!cJSON_IsString(it) || blank(it->valuestring))
            continue;
        if (nth-- == 0)
            return it->valuestring;
    }
    return NULL;
}

/* family: a string (R4), or the first string of an array (DSTU2). */
static const char *family_of(const cJSON *name)
{
    const cJSON *f = member(name, "family");
    const cJSON *it;

    if (cJSON_IsString(f))
        return f->valuestring;
    if (cJSON_IsArray(f)) {
        cJSON_ArrayForEach(it, f)
        {
            if (cJSON_IsString(it) && !blank(it->valuestring))
                return it->valuestring;
        }
    }
    return NULL;
}

/* A name's text split at its last space into first and last name; one word is a last name. */
static int split_text(const char *text, struct model_patient *p)
{
    char *all = NULL;
    char *space;
    int rc = dup_trimmed(text, &all);

    if (rc != ODSYNC_OK || all == NULL)
        goto cleanup;
    space = strrchr(all, ' ');
    if (space == NULL) {
        p->last_name = all;
        all = NULL;
        goto cleanup;
    }
    *space = '\0';
    rc = dup_trimmed(space + 1, &p->last_name);
    if (rc == ODSYNC_OK)
        rc = dup_trimmed(all, &p->first_name);
cleanup:
    util_free(all);
    return rc;
}

/* Names of a Patient into p (see the header). */
static int patient_names(const cJSON *res, struct model_patient *p)
{
    const cJSON *names = member(res, "name");
    const cJSON *chosen = choose_name(names);
    const cJSON *n;
    int rc = ODSYNC_OK;

    if (chosen != NULL) {
        rc = dup_trimmed(family_of(chosen), &p->last_name);
        if (rc == ODSYNC_OK)
            rc = dup_trimmed(given_at(chosen, 0), &p->first_name);
        if (rc == ODSYNC_OK)
            rc = dup_trimmed(given_at(chosen, 1), &p->middle_initial);
        if (rc == ODSYNC_OK && p->last_name == NULL && p->first_name == NULL)
            rc = split_text(member_string(chosen, "text"), p);
        if (rc != ODSYNC_OK)
            return rc;
    }
    if (!cJSON_IsArray(names))
        return ODSYNC_OK;
    cJSON_ArrayForEach(n, names)
    {
        const char *nick;
        if (!name_use_is(n, "nickname"))
            continue;
        nick = given_at(n, 0);
        rc = dup_trimmed(nick != NULL ? nick : member_string(n, "text"), &p->preferred_name);
        if (rc != ODSYNC_OK || p->preferred_name != NULL)
            break;
    }
    return rc;
}

/* telecom[] into the phones and the email (see the header). */
static int patient_telecom(const cJSON *res, struct model_patient *p)
{
    const cJSON *tel = member(res, "telecom");
    const cJSON *t;
    char e164[PHONE_LEN];

    if (!cJSON_IsArray(tel))
        return ODSYNC_OK;
    cJSON_ArrayForEach(t, tel)
    {
        const char *system = member_string(t, "system");
        const char *use = member_string(t, "use");
        const char *value = member_string(t, "value");
        char **slot = NULL;

        if (system == NULL || value == NULL)
            continue;
        if (use != NULL && (strcasecmp(use, "old") == 0 || strcasecmp(use, "temp") == 0))
            continue;
        if (strcasecmp(system, "email") == 0) {
            if (p->email != NULL)
                continue;
            if (dup_trimmed(value, &p->email) != ODSYNC_OK)
                return ODSYNC_NOMEM;
            if (p->email != NULL && !model_email_valid(p->email)) {
                util_free(p->email);
                p->email = NULL;
            }
            continue;
        }
        if (strcasecmp(system, "sms") == 0)
            slot = &p->phone_mobile;
        else if (strcasecmp(system, "phone") != 0)
            continue;
        else if (use == NULL || strcasecmp(use, "home") == 0)
            slot = &p->phone_home;
        else if (strcasecmp(use, "mobile") == 0)
            slot = &p->phone_mobile;
        else if (strcasecmp(use, "work") == 0)
            slot = &p->phone_work;
        if (slot == NULL || *slot != NULL || !model_phone_e164(value, e164, sizeof(e164)))
            continue;
        *slot = util_strdup(e164);
        if (*slot == NULL)
            return ODSYNC_NOMEM;
    }
    return ODSYNC_OK;
}

/* BCP-47 primary language subtags and their ISO 639-2/T codes (Open Dental's Language). */
static const char *const lang_codes[][2] = {
    {"am", "amh"}, {"ar", "ara"}, {"bn", "ben"}, {"cs", "ces"}, {"da", "dan"}, {"de", "deu"},
    {"el", "ell"}, {"en", "eng"}, {"es", "spa"}, {"fa", "fas"}, {"fi", "fin"}, {"fr", "fra"},
    {"gu", "guj"}, {"he", "heb"}, {"hi", "hin"}, {"ht", "hat"}, {"hu", "hun"}, {"hy", "hye"},
    {"id", "ind"}, {"it", "ita"}, {"ja", "jpn"}, {"km", "khm"}, {"ko", "kor"}, {"lo", "lao"},
    {"ms", "msa"}, {"ne", "nep"}, {"nl", "nld"}, {"no", "nor"}, {"pa", "pan"}, {"pl", "pol"},
    {"ps", "pus"}, {"pt", "por"}, {"ro", "ron"}, {"ru", "rus"}, {"so", "som"}, {"sq", "sqi"},
    {"sr", "srp"}, {"sv", "swe"}, {"sw", "swa"}, {"ta", "tam"}, {"te", "tel"}, {"th", "tha"},
    {"tl", "tgl"}, {"tr", "tur"}, {"uk", "ukr"}, {"ur", "urd"}, {"vi", "vie"}, {"yo", "yor"},
    {"zh", "zho"}};

/* An ISO 639-2 code into out[4] from "eng", "en", "en-US" or "EN_us". 1 when known. */
static int language_code(const char *code, char out[4])
{
    size_t n = 0, i;

    if (code == NULL)
        return 0;
    while (code[n] != '\0' && code[n] != '-' && code[n] != '_') {
        if (n >= 3 || !isalpha((unsigned char)code[n]))
            return 0;
        out[n] = (char)tolower((unsigned char)code[n]);
        n++;
    }
    out[n] = '\0';
    if (n == 3) /* undetermined, multiple, none, missing: not a language */
        return strcmp(out, "und") != 0 && strcmp(out, "mul") != 0 && strcmp(out, "zxx") != 0 &&
               strcmp(out, "mis") != 0;
    if (n != 2)
        return 0;
    for (i = 0; i < UTIL_ARRAY_LEN(lang_codes); i++) {
        if (strcmp(lang_codes[i][0], out) == 0) {
            memcpy(out, lang_codes[i][1], 4);
            return 1;
        }
    }
    return 0;
}

/* The ISO 639-2 code of one communication[].language, from its codings then its text. */
static int communication_language(const cJSON *comm, char out[4])
{
    const cJSON *lang = member(comm, "language");
    const cJSON *codings = member(lang, "coding");
    const cJSON *c;

    if (cJSON_IsArray(codings)) {
        cJSON_ArrayForEach(c, codings)
        {
            if (language_code(member_string(c, "code"), out))
                return 1;
        }
    }
    return language_code(member_string(lang, "text"), out);
}

/* communication[] into p->language: the preferred entry first, then the others in order. */
static int patient_language(const cJSON *res, struct model_patient *p)
{
    const cJSON *comms = member(res, "communication");
    const cJSON *c;
    char code[4];
    int pass;

    if (!cJSON_IsArray(comms))
        return ODSYNC_OK;
    for (pass = 0; pass < 2; pass++) {
        cJSON_ArrayForEach(c, comms)
        {
            if (pass == 0 && truth(member(c, "preferred")) != 1)
                continue;
            if (!communication_language(c, code))
                continue;
            p->language = util_strdup(code);
            return p->language != NULL ? ODSYNC_OK : ODSYNC_NOMEM;
        }
    }
    return ODSYNC_OK;
}

/* 1 when deceasedBoolean is true or deceasedDateTime is a real date (not the 0001 sentinel);
 * -1 when memory ran out. */
static int patient_deceased(const cJSON *res)
{
    const char *when = member_string(res, "deceasedDateTime");
    char *date;

    if (truth(member(res, "deceasedBoolean")) == 1)
        return 1;
    if (blank(when))
        return 0;
    date = model_date(when);
    if (date == NULL)
        return out_of_memory() ? -1 : 0;
    util_free(date);
    return 1;
}

/* active (and deceased[x]) into p->status. */
static int patient_status(const cJSON *res, struct model_patient *p)
{
    const char *status = NULL;
    int active = truth(member(res, "active"));
    int deceased;

    if (active == 1) {
        status = "Patient";
    } else if (active == 0) {
        deceased = patient_deceased(res);
        if (deceased < 0)
            return ODSYNC_NOMEM;
        status = deceased ? "Deceased" : "Inactive";
    }
    if (status == NULL)
        return ODSYNC_OK;
    p->status = util_strdup(status);
    return p->status != NULL ? ODSYNC_OK : ODSYNC_NOMEM;
}

int od_fhir_patient(const cJSON *resource, struct model_patient *out, char *why, size_t why_len)
{
    struct model_patient p;
    const cJSON *org;
    const char *s;
    int rc;

    memset(&p, 0, sizeof(p));
    if (out == NULL) {
        set_why(why, why_len, "no output struct");
        return ODSYNC_INVALID;
    }
    memset(out, 0, sizeof(*out));
    rc = check_type(resource, "Patient", why, why_len);
    if (rc == ODSYNC_OK)
        rc = resource_id(resource, LABEL_PATNUM, &p.patnum, why, why_len);
    if (rc != ODSYNC_OK)
        goto cleanup;

    org = member(resource, "managingOrganization");
    s = member_string(org, "reference");
    if (s != NULL && !reference_id(s, "organization", 0, &p.clinic_num)) {
        set_why(why, why_len, "managingOrganization: not an organization/N reference");
        rc = ODSYNC_PARSE;
        goto cleanup;
    }
    rc = local_datetime(member_string(member(resource, "meta"), "lastUpdated"), "meta.lastUpdated",
                        &p.changed_at, why, why_len);
    if (rc != ODSYNC_OK)
        goto cleanup;

    rc = patient_names(resource, &p);
    if (rc == ODSYNC_OK)
        rc = patient_telecom(resource, &p);
    if (rc == ODSYNC_OK)
        rc = patient_status(resource, &p);
    if (rc == ODSYNC_OK)
        rc = patient_language(resource, &p);
    if (rc != ODSYNC_OK)
        goto cleanup;
    s = member_string(resource, "birthDate");
    if (!blank(s)) {
        p.birthdate = model_date(s);
        if (p.birthdate == NULL && out_of_memory()) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
    }
    /* Not in FHIR v2: TxtMsgOk is unknown, guarantor 0, Prefer* NULL. */
    p.sms_consent = util_strdup("unknown");
    if (p.sms_consent == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    p.guarantor = 0;
    *out = p;
    memset(&p, 0, sizeof(p));
    rc = ODSYNC_OK;

cleanup:
    if (rc == ODSYNC_NOMEM)
        set_why(why, why_len, "out of memory");
    model_patient_clear(&p);
    return rc;
}

/* ---- Appointment -------------------------------------------------------------------------- */

/* FHIR Appointment.status -> AptStatus; NULL = deleted in Open Dental. */
static const struct {
    const char *fhir;
    const char *od;
} apt_status_map[] = {
    {"proposed", "Planned"},    {"pending", "UnschedList"},  {"booked", "Scheduled"},
    {"arrived", "Scheduled"},   {"fulfilled", "Complete"},   {"noshow", "Broken"},
    {"cancelled", NULL},        {"checked-in", "Scheduled"}, {"waitlist", "UnschedList"},
    {"entered-in-error", NULL},
};

/* 1 when a participant has a type coding with code (e.g. "PPRF"). */
static int participant_has_type(const cJSON *part, const char *code)
{
    const cJSON *types = member(part, "type");
    const cJSON *t, *c;

    if (!cJSON_IsArray(types))
        return 0;
    cJSON_ArrayForEach(t, types)
    {
        const cJSON *codings = member(t, "coding");
        if (!cJSON_IsArray(codings))
            continue;
        cJSON_ArrayForEach(c, codings)
        {
            const char *v = member_string(c, "code");
            if (v != NULL && strcasecmp(v, code) == 0)
                return 1;
        }
    }
    return 0;
}

/* participant[] into patnum, prov_num and clinic_num (see the header). */
static int appointment_participants(const cJSON *res, struct model_appointment *a, char *why,
                                    size_t why_len)
{
    const cJSON *parts = member(res, "participant");
    const cJSON *part;
    int prov_primary = 0, have_org = 0;
    int64_t id;

    if (cJSON_IsArray(parts)) {
        cJSON_ArrayForEach(part, parts)
        {
            const char *ref = member_string(member(part, "actor"), "reference");
            if (reference_id(ref, "patient", 1, &id)) {
                if (a->patnum != 0 && a->patnum != id) {
                    set_why(why, why_len, "participant: two different patients");
                    return ODSYNC_PARSE;
                }
                a->patnum = id;
            } else if (reference_id(ref, "practitioner", 1, &id)) {
                int primary = participant_has_type(part, "PPRF");
                /* A secondary performer (SPRF: the hygienist) is never the provider: REST's
                 * ProvNum is the dentist, 0 when none. */
                if (participant_has_type(part, "SPRF"))
                    continue;
                if (a->prov_num == 0 || (primary && !prov_primary)) {
                    a->prov_num = id;
                    prov_primary = primary;
                }
            } else if (!have_org && reference_id(ref, "organization", 0, &id)) {
                a->clinic_num = id;
                have_org = 1;
            } /* location (operatory) and anything else: ignored */
        }
    }
    if (a->patnum == 0) {
        set_why(why, why_len, "participant: no patient/N reference");
        return ODSYNC_PARSE;
    }
    return ODSYNC_OK;
}

int od_fhir_appointment(const cJSON *resource, struct model_appointment *out, char *why,
                        size_t why_len)
{
    struct model_appointment a;
    const char *status;
    const char *od_status = NULL;
    int found = 0;
    size_t i;
    int rc;

    memset(&a, 0, sizeof(a));
    if (out == NULL) {
        set_why(why, why_len, "no output struct");
        return ODSYNC_INVALID;
    }
    memset(out, 0, sizeof(*out));
    rc = check_type(resource, "Appointment", why, why_len);
    if (rc == ODSYNC_OK)
        rc = resource_id(resource, LABEL_APTNUM, &a.apt_num, why, why_len);
    if (rc != ODSYNC_OK)
        goto cleanup;

    status = member_string(resource, "status");
    if (status == NULL) {
        set_why(why, why_len, "status: missing");
        rc = ODSYNC_PARSE;
        goto cleanup;
    }
    for (i = 0; i < UTIL_ARRAY_LEN(apt_status_map) && !found; i++) {
        if (strcasecmp(status, apt_status_map[i].fhir) == 0) {
            found = 1;
            od_status = apt_status_map[i].od;
        }
    }
    if (!found) {
        set_why(why, why_len, "status: not a known Appointment status");
        rc = ODSYNC_PARSE;
        goto cleanup;
    }
    rc = local_datetime(member_string(member(resource, "meta"), "lastUpdated"), "meta.lastUpdated",
                        &a.changed_at, why, why_len);
    if (rc != ODSYNC_OK)
        goto cleanup;
    if (od_status == NULL) { /* deleted in Open Dental: the caller removes it */
        *out = a;
        memset(&a, 0, sizeof(a));
        rc = ODSYNC_NOT_FOUND;
        goto cleanup;
    }

    rc = appointment_participants(resource, &a, why, why_len);
    if (rc == ODSYNC_OK)
        rc = local_datetime(member_string(resource, "start"), "start", &a.start, why, why_len);
    if (rc != ODSYNC_OK)
        goto cleanup;
    a.status = util_strdup(od_status);
    if (a.status == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    /* Not in FHIR: dismissed_at NULL, is_new_patient 0. */
    *out = a;
    memset(&a, 0, sizeof(a));

cleanup:
    if (rc == ODSYNC_NOMEM)
        set_why(why, why_len, "out of memory");
    model_appointment_clear(&a);
    return rc;
}

/* ---- Bundle ------------------------------------------------------------------------------- */

/* A strict JSON (RFC 8259) scanner over text[0..len): it validates and skips values without
 * building anything. */
struct scan {
    const char *p, *end;
    int too_deep; /* set when nesting passed MAX_DEPTH */
};

static int scan_value(struct scan *s, int depth);

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* 1 when the next byte is c (not consumed). */
static int scan_peek(const struct scan *s, char c)
{
    return s->p < s->end && *s->p == c;
}

/* Four hex digits at p into *out. */
static int scan_hex4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;
    int i;

    if (end - p < 4)
        return 0;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* A string (s->p at its opening quote); surrogate escapes must pair, as cJSON requires. */
static int scan_string(struct scan *s)
{
    unsigned u, lo;

    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c != '\\') {
            s->p++;
            continue;
        }
        if (++s->p >= s->end)
            return 0;
        if (strchr("\"\\/bfnrt", *s->p) != NULL && *s->p != '\0') {
            s->p++;
            continue;
        }
        if (*s->p != 'u' || !scan_hex4(s->p + 1, s->end, &u))
            return 0;
        s->p += 5;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return 0;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
                !scan_hex4(s->p + 2, s->end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return 0;
            s->p += 6;
        }
    }
    return 0;
}

/* One or more digits. */
static int scan_digits(struct scan *s)
{
    const char *start = s->p;
    while (s->p < s->end && isdigit((unsigned char)*s->p))
        s->p++;
    return s->p > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(struct scan *s)
{
    if (scan_peek(s, '-'))
        s->p++;
    if (scan_peek(s, '0'))
        s->p++;
    else if (!scan_digits(s))
        return 0;
    if (scan_peek(s, '.')) {
        s->p++;
        if (!scan_digits(s))
            return 0;
    }
    if (scan_peek(s, 'e') || scan_peek(s, 'E')) {
        s->p++;
        if (scan_peek(s, '+') || scan_peek(s, '-'))
            s->p++;
        if (!scan_digits(s))
            return 0;
    }
    return 1;
}

static int scan_literal(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

/* An object or array (s->p at '{' or '['), depth = its own nesting level. */
static int scan_container(struct scan *s, int depth)
{
    char close = *s->p == '{' ? '}' : ']';

    if (depth > MAX_DEPTH) {
        s->too_deep = 1;
        return 0;
    }
    s->p++;
    scan_ws(s);
    if (scan_peek(s, close)) {
        s->p++;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            if (!scan_peek(s, '"') || !scan_string(s))
                return 0;
            scan_ws(s);
            if (!scan_peek(s, ':'))
                return 0;
            s->p++;
            scan_ws(s);
        }
        if (!scan_value(s, depth + 1))
            return 0;
        scan_ws(s);
        if (scan_peek(s, close)) {
            s->p++;
            return 1;
        }
        if (!scan_peek(s, ','))
            return 0;
        s->p++;
        scan_ws(s);
    }
}

/* Any value at s->p (no leading white space). */
static int scan_value(struct scan *s, int depth)
{
    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case '{':
    case '[':
        return scan_container(s, depth);
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        return scan_number(s);
    }
}

/* What the walker needs from the Bundle's top level: spans into the text (borrowed). */
struct bundle_top {
    const char *rtype; /* resourceType's raw string bytes (no quotes), or NULL */
    size_t rtype_len;
    int rtype_seen;
    const char *entry; /* entry's value, or NULL */
};

/* 1 when the raw key bytes [k, k+n) equal name. */
static int key_is(const char *k, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(k, name, n) == 0;
}

/* Validate the whole text as one JSON object and note resourceType and entry (the first of
 * each; keys compared as raw bytes). err says where it failed. */
static int scan_bundle(const char *json, size_t len, struct bundle_top *top, char *err,
                       size_t err_len)
{
    struct scan s = {json, json + len, 0};
    const char *key, *value;
    size_t key_len;

    scan_ws(&s);
    if (!scan_peek(&s, '{')) {
        if (err != NULL && err_len > 0)
            util_fmt(err, err_len, "not a Bundle: %s",
                     s.p >= s.end ? "empty" : "not a JSON object");
        return ODSYNC_PARSE;
    }
    s.p++;
    scan_ws(&s);
    if (scan_peek(&s, '}')) {
        s.p++;
        goto done;
    }
    for (;;) {
        if (!scan_peek(&s, '"'))
            goto bad;
        key = s.p + 1;
        if (!scan_string(&s))
            goto bad;
        key_len = (size_t)(s.p - 1 - key);
        scan_ws(&s);
        if (!scan_peek(&s, ':'))
            goto bad;
        s.p++;
        scan_ws(&s);
        value = s.p;
        if (!scan_value(&s, 2))
            goto bad;
        if (!top->rtype_seen && key_is(key, key_len, "resourceType")) {
            top->rtype_seen = 1;
            if (*value == '"') {
                top->rtype = value + 1;
                top->rtype_len = (size_t)(s.p - value - 2);
            }
        } else if (top->entry == NULL && key_is(key, key_len, "entry")) {
            top->entry = value;
        }
        scan_ws(&s);
        if (scan_peek(&s, '}')) {
            s.p++;
            break;
        }
        if (!scan_peek(&s, ','))
            goto bad;
        s.p++;
        scan_ws(&s);
    }
done:
    scan_ws(&s);
    if (s.p == s.end)
        return ODSYNC_OK;
bad:
    if (err != NULL && err_len > 0) {
        if (s.too_deep)
            util_fmt(err, err_len, "Bundle: JSON nested deeper than %d levels", MAX_DEPTH);
        else
            util_fmt(err, err_len, "Bundle: invalid JSON at byte %zu", (size_t)(s.p - json));
    }
    return ODSYNC_PARSE;
}

/* ODSYNC_OK when the top level says resourceType "Bundle" (any case); else err names what it
 * is, when that is a plain word (an OperationOutcome, say). */
static int check_bundle_type(const struct bundle_top *top, char *err, size_t err_len)
{
    size_t i;
    int word = top->rtype != NULL && top->rtype_len > 0 && top->rtype_len <= 64;

    if (top->rtype != NULL && top->rtype_len == 6 && strncasecmp(top->rtype, "Bundle", 6) == 0)
        return ODSYNC_OK;
    for (i = 0; word && i < top->rtype_len; i++)
        if (!isalpha((unsigned char)top->rtype[i]))
            word = 0;
    if (err != NULL && err_len > 0) {
        if (word)
            util_fmt(err, err_len, "not a Bundle: resourceType is %.*s", (int)top->rtype_len,
                     top->rtype);
        else if (top->rtype_seen)
            util_fmt(err, err_len, "not a Bundle: resourceType is not Bundle");
        else
            util_fmt(err, err_len, "not a Bundle: no resourceType");
    }
    return ODSYNC_PARSE;
}

/* Parse one entry (text[0..len), already validated) and hand its resource to each. Returns
 * ODSYNC_OK to go on, or the code that stops the walk. */
static int bundle_entry(const char *text, size_t len, int64_t index, const char *resource_type,
                        int (*each)(void *arg, const cJSON *resource), void *arg,
                        struct od_fhir_stats *st, char *err, size_t err_len)
{
    cJSON *entry = NULL;
    const cJSON *resource;
    const char *rt;
    const char *problem = NULL;
    int rc = ODSYNC_OK;

    if (*text != '{') {
        problem = "not an object";
        goto cleanup;
    }
    entry = cJSON_ParseWithLength(text, len);
    if (entry == NULL) {
        if (out_of_memory()) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        problem = "unreadable"; /* valid JSON cJSON refused: should not happen */
        goto cleanup;
    }
    resource = member(entry, "resource");
    rt = member_string(resource, "resourceType");
    if (!cJSON_IsObject(resource)) {
        problem = "no resource object";
    } else if (rt == NULL) {
        problem = "resource has no resourceType";
    } else if (strcasecmp(rt, resource_type) != 0) {
        st->skipped++; /* another type: an included resource or an OperationOutcome */
    } else {
        rc = each(arg, resource);
        if (rc == ODSYNC_OK) {
            st->delivered++;
        } else if (rc == ODSYNC_PARSE) {
            st->skipped++;
            st->bad++;
            rc = ODSYNC_OK;
        }
    }

cleanup:
    if (problem != NULL) {
        st->skipped++;
        st->bad++;
        log_warn(COMPONENT, "Bundle entry %lld skipped: %s", (long long)index, problem);
    }
    if (rc != ODSYNC_OK && err != NULL && err_len > 0) {
        if (rc == ODSYNC_NOMEM)
            util_fmt(err, err_len, "Bundle entry %lld: out of memory", (long long)index);
        else
            util_fmt(err, err_len, "Bundle entry %lld: stopped by the caller (code %d)",
                     (long long)index, rc);
    }
    cJSON_Delete(entry);
    return rc;
}

int od_fhir_bundle(const char *json, size_t len, const char *resource_type,
                   int (*each)(void *arg, const cJSON *resource), void *arg,
                   struct od_fhir_stats *stats, char *err, size_t err_len)
{
    struct od_fhir_stats local;
    struct od_fhir_stats *st = stats != NULL ? stats : &local;
    struct bundle_top top = {NULL, 0, 0, NULL};
    struct scan s;
    const char *start;
    int rc;

    memset(st, 0, sizeof(*st));
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if ((json == NULL && len > 0) || resource_type == NULL || each == NULL) {
        if (err != NULL && err_len > 0)
            util_fmt(err, err_len, "od_fhir_bundle: missing argument");
        return ODSYNC_INVALID;
    }
    rc = scan_bundle(json != NULL ? json : "", len, &top, err, err_len);
    if (rc == ODSYNC_OK)
        rc = check_bundle_type(&top, err, err_len);
    if (rc != ODSYNC_OK || top.entry == NULL) /* no entry: an empty search result */
        return rc;
    if (*top.entry != '[') {
        if (err != NULL && err_len > 0)
            util_fmt(err, err_len, "Bundle: entry is not an array");
        return ODSYNC_PARSE;
    }

    /* Second pass over the validated entry array: one entry parsed at a time. */
    s.p = top.entry + 1;
    s.end = json + len;
    s.too_deep = 0;
    scan_ws(&s);
    if (scan_peek(&s, ']'))
        return ODSYNC_OK;
    for (;;) {
        start = s.p;
        if (!scan_value(&s, 3)) { /* cannot happen: validated above */
            if (err != NULL && err_len > 0)
                util_fmt(err, err_len, "Bundle: entry %lld unreadable", (long long)st->entries);
            return ODSYNC_INTERNAL;
        }
        rc = bundle_entry(start, (size_t)(s.p - start), st->entries, resource_type, each, arg, st,
                          err, err_len);
        st->entries++;
        if (rc != ODSYNC_OK)
            return rc;
        scan_ws(&s);
        if (!scan_peek(&s, ','))
            break;
        s.p++;
        scan_ws(&s);
    }
    return ODSYNC_OK;
}
