/*
 * frontdesk.c: front-desk changes with Open Dental's bookkeeping (DateTStamp on real changes
 * only, HistAppointment rows, recall DateScheduled / DatePrevious / DateDue upkeep).
 */
#include "frontdesk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "gen.h"
#include "store.h"

#define MAX_SET 48

static const char *const patstatus_names[] = {"Patient",  "NonPatient",  "Inactive", "Archived",
                                              "Deceased", "Prospective", NULL};
static const char *const gender_names[] = {"Male", "Female", "Unknown", NULL};
static const char *const position_names[] = {"Single",  "Married",  "Child",
                                             "Widowed", "Divorced", NULL};
static const char *const contact_names[] = {"None",        "DoNotCall", "HmPhone",  "WkPhone",
                                            "WirelessPh",  "Email",     "SeeNotes", "Mail",
                                            "TextMessage", NULL};
static const char *const yn_names[] = {"Unknown", "Yes", "No", NULL};
static const char *const mode_names[] = {"None",           "Email",          "Mail",
                                         "Phone",          "In Person",      "Text",
                                         "Email and Text", "Phone and Text", NULL};
static const char *const mode_nospace[] = {
    "None", "Email", "Mail", "Phone", "InPerson", "Text", "EmailAndText", "PhoneAndText", NULL};
static const char *const sor_names[] = {"Neither", "Sent", "Received", NULL};

/* Confirmation values of PUT /appointments/{n}/Confirm and their DefNums. */
static const struct {
    const char *name;
    int64_t def;
} confirm_vals[] = {
    {"None", 19}, {"Sent", 23}, {"Confirmed", 21}, {"Not Accepted", 24}, {"Failed", 25},
};

/* One column assignment of an UPDATE; text values are borrowed. */
struct setcol {
    const char *col;
    struct dbv v;
};

static void fail(struct fd_result *res, unsigned status, const char *fmt, ...) UTIL_PRINTF(3, 4);

static void fail(struct fd_result *res, unsigned status, const char *fmt, ...)
{
    va_list ap;
    res->status = status;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
    va_end(ap);
}

static void fail_store(struct fd_result *res)
{
    fail(res, 500, "Internal error in the simulator's database.");
}

/* Index of name in a NULL-terminated list (case-insensitive), or -1. */
static int enum_index(const char *const *names, const char *name)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcasecmp(names[i], name) == 0)
            return i;
    }
    return -1;
}

/* Savepoints: every change is all or nothing. */
static int sp_begin(struct sim *s)
{
    return store_exec(s, "SAVEPOINT fd");
}

static void sp_end(struct sim *s, const struct fd_result *res)
{
    if (res->status != 0)
        store_exec(s, "ROLLBACK TO fd");
    store_exec(s, "RELEASE fd");
}

/* Integer field name of body: 1 and *out when present as a number or numeric string, 0 when
 * absent, -1 when malformed. */
static int get_int(const cJSON *body, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItem(body, name);
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != (double)(int64_t)v->valuedouble)
            return -1;
        *out = (int64_t)v->valuedouble;
        return 1;
    }
    if (cJSON_IsString(v) && util_parse_i64(v->valuestring, INT64_MIN, INT64_MAX, out) == ODSYNC_OK)
        return 1;
    return -1;
}

/* String field name of body, or NULL when absent; *bad set when present but not a string. */
static const char *get_str(const cJSON *body, const char *name, int *bad)
{
    const cJSON *v = cJSON_GetObjectItem(body, name);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (cJSON_IsString(v))
        return v->valuestring;
    *bad = 1;
    return NULL;
}

/* UPDATE the row (office, pk) of table with cols; stamp_col (may be NULL) becomes now. Rows
 * where every value already matches are left alone. Returns 1 changed, 0 not, -1 error. */
static int update_row(struct sim *s, const char *table, const char *pkcol, int office, int64_t pk,
                      const struct setcol *c, int n, const char *stamp_col, const char *now)
{
    struct sbuf sql = {0};
    struct dbv binds[2 * MAX_SET + 4];
    int nb = 0, rc = -1;
    if (n <= 0 || n > MAX_SET)
        return n == 0 ? 0 : -1;
    sbuf_printf(&sql, "UPDATE %s SET ", table);
    for (int i = 0; i < n; i++) {
        sbuf_printf(&sql, "%s%s = ?", i > 0 ? ", " : "", c[i].col);
        binds[nb++] = c[i].v;
    }
    if (stamp_col != NULL) {
        sbuf_printf(&sql, ", %s = ?", stamp_col);
        binds[nb++] = DV_T(now);
    }
    sbuf_printf(&sql, " WHERE office = ? AND %s = ? AND (", pkcol);
    binds[nb++] = DV_I(office);
    binds[nb++] = DV_I(pk);
    for (int i = 0; i < n; i++) {
        sbuf_printf(&sql, "%s%s IS NOT ?", i > 0 ? " OR " : "", c[i].col);
        binds[nb++] = c[i].v;
    }
    sbuf_puts(&sql, ")");
    if (!sql.failed) {
        int64_t changes = store_run(s, sql.data, binds, nb);
        rc = changes < 0 ? -1 : changes > 0;
    }
    sbuf_free(&sql);
    return rc;
}

/* Snapshot appointment aptnum into histappointment with action at now. */
static int hist_add(struct sim *s, struct office *o, int64_t aptnum, const char *action,
                    const char *source, const char *now)
{
    return store_run(s,
                     "INSERT INTO histappointment (office, HistApptNum, HistUserNum,"
                     " HistDateTStamp, HistApptAction, ApptSource, " STORE_APT_COLS ")"
                     " SELECT office, (SELECT COALESCE(MAX(h.HistApptNum), 0) + 1"
                     " FROM histappointment h WHERE h.office = ?1), ?5, ?2, ?3, ?4, " STORE_APT_COLS
                     " FROM appointment WHERE office = ?1 AND AptNum = ?6",
                     DBARGS(DV_I(o->num), DV_T(now), DV_T(action), DV_T(source),
                            DV_I(strcmp(source, "None") == 0 ? 1 : 0), DV_I(aptnum))) == 1
               ? ODSYNC_OK
               : ODSYNC_STORE;
}

/* Recompute DateScheduled of every recall of patnum (see frontdesk.h). */
static int recall_sync(struct sim *s, struct office *o, int64_t patnum, const char *now)
{
    int64_t nums[16];
    char procs[16][64];
    int n = 0, rc = ODSYNC_STORE;
    sqlite3_stmt *st = store_prepare(
        s,
        "SELECT r.RecallNum, COALESCE(rt.Procedures, '') FROM recall r LEFT JOIN recalltype rt"
        " ON rt.office = r.office AND rt.RecallTypeNum = r.RecallTypeNum"
        " WHERE r.office = ?1 AND r.PatNum = ?2 ORDER BY r.RecallNum",
        DBARGS(DV_I(o->num), DV_I(patnum)));
    if (st == NULL)
        return ODSYNC_STORE;
    while (n < 16 && sqlite3_step(st) == SQLITE_ROW) {
        nums[n] = sqlite3_column_int64(st, 0);
        snprintf(procs[n], sizeof(procs[n]), "%s", (const char *)sqlite3_column_text(st, 1));
        n++;
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        char date[CLOCK_DATE_LEN + 8];
        if (store_text(s,
                       "SELECT COALESCE(MIN(substr(a.AptDateTime, 1, 10)), '0001-01-01')"
                       " FROM appointment a JOIN procedurelog pl ON pl.office = a.office"
                       " AND pl.AptNum = a.AptNum JOIN proccode pc ON pc.CodeNum = pl.CodeNum"
                       " WHERE a.office = ?1 AND a.PatNum = ?2 AND a.AptStatus = 'Scheduled'"
                       " AND pl.ProcStatus = 'TP'"
                       " AND instr(',' || ?3 || ',', ',' || pc.ProcCode || ',') > 0",
                       DBARGS(DV_I(o->num), DV_I(patnum), DV_T(procs[i])), date, sizeof(date)) < 0)
            goto cleanup;
        struct setcol c[] = {{"DateScheduled", DV_T(date)}};
        if (update_row(s, "recall", "RecallNum", o->num, nums[i], c, 1, "DateTStamp", now) < 0)
            goto cleanup;
    }
    rc = ODSYNC_OK;
cleanup:
    return rc;
}

/* Refresh ProcDescript of aptnum from its procedures. */
static int apt_descript(struct sim *s, struct office *o, int64_t aptnum, const char *now)
{
    char d[256];
    if (store_text(s,
                   "SELECT COALESCE(group_concat(abbr, ', '), '') FROM (SELECT pc.AbbrDesc AS abbr"
                   " FROM procedurelog pl JOIN proccode pc ON pc.CodeNum = pl.CodeNum"
                   " WHERE pl.office = ?1 AND pl.AptNum = ?2 ORDER BY pl.ProcNum)",
                   DBARGS(DV_I(o->num), DV_I(aptnum)), d, sizeof(d)) < 0)
        return ODSYNC_STORE;
    struct setcol c[] = {{"ProcDescript", DV_T(d)}};
    return update_row(s, "appointment", "AptNum", o->num, aptnum, c, 1, "DateTStamp", now) < 0
               ? ODSYNC_STORE
               : ODSYNC_OK;
}

/* Add procedure code (status TP or C) for patnum on aptnum. */
static int proc_add(struct sim *s, struct office *o, int64_t patnum, int64_t aptnum,
                    const char *code, const char *procdate, int64_t prov, int64_t clinic,
                    const char *now)
{
    char today[CLOCK_DATE_LEN];
    memcpy(today, now, 10);
    today[10] = '\0';
    return store_run(
               s,
               "INSERT INTO procedurelog (office, ProcNum, PatNum, AptNum, ProcDate, ProcFee, Surf,"
               " ToothNum, ToothRange, Priority, ProcStatus, ProvNum, Dx, PlannedAptNum,"
               " PlaceService, Prosthesis, DateOriginalProsth, ClaimNote, DateEntryC, ClinicNum,"
               " CodeNum, UnitQty, BaseUnits, DateTP, SiteNum, HideGraphics, CanadianTypeCodes,"
               " ProcTime, ProcTimeEnd, DateTStamp, Prognosis, IsLocked, BillingNote, Discount,"
               " IsDateProsthEst, SecDateEntry) SELECT ?1, (SELECT COALESCE(MAX(ProcNum), 0) + 1"
               " FROM procedurelog WHERE office = ?1), ?2, ?3, ?4, pc.Fee, '', '', '', 0, 'TP', ?5,"
               " 0, 0, 'Office', '', '0001-01-01', '', '0001-01-01', ?6, pc.CodeNum, 1, 0, ?7, 0,"
               " 0, '', '00:00:00', '00:00:00', ?8, 0, 0, '', 0.0, 0, ?8 FROM proccode pc"
               " WHERE pc.ProcCode = ?9",
               DBARGS(DV_I(o->num), DV_I(patnum), DV_I(aptnum), DV_T(procdate), DV_I(prov),
                      DV_I(clinic), DV_T(today), DV_T(now), DV_T(code))) == 1
               ? ODSYNC_OK
               : ODSYNC_STORE;
}

/* The few appointment columns the changes need. */
struct aptinfo {
    int64_t pat, prov, hyg, clinic;
    char status[24];
    char when[CLOCK_DT_LEN + 4];
    char pattern[64];
};

/* Load aptnum: 1 found, 0 not, -1 error. */
static int apt_get(struct sim *s, struct office *o, int64_t aptnum, struct aptinfo *ai)
{
    int rc = -1, step;
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT PatNum, ProvNum, ProvHyg, ClinicNum, AptStatus,"
                                     " AptDateTime, Pattern FROM appointment"
                                     " WHERE office = ?1 AND AptNum = ?2",
                                     DBARGS(DV_I(o->num), DV_I(aptnum)));
    if (st == NULL)
        return -1;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        ai->pat = sqlite3_column_int64(st, 0);
        ai->prov = sqlite3_column_int64(st, 1);
        ai->hyg = sqlite3_column_int64(st, 2);
        ai->clinic = sqlite3_column_int64(st, 3);
        snprintf(ai->status, sizeof(ai->status), "%s", (const char *)sqlite3_column_text(st, 4));
        snprintf(ai->when, sizeof(ai->when), "%s", (const char *)sqlite3_column_text(st, 5));
        snprintf(ai->pattern, sizeof(ai->pattern), "%s", (const char *)sqlite3_column_text(st, 6));
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static int patient_exists(struct sim *s, struct office *o, int64_t patnum)
{
    int64_t one;
    return store_int(s, "SELECT 1 FROM patient WHERE office = ?1 AND PatNum = ?2",
                     DBARGS(DV_I(o->num), DV_I(patnum)), &one);
}

/* ---- patients ---------------------------------------------------------------------------- */

enum pft { PF_STR, PF_NAME, PF_ENUM, PF_DATE, PF_INT, PF_BOOL, PF_PROV, PF_CLINIC };

static const struct pfield {
    const char *name;
    enum pft type;
    const char *const *names;
} pfields[] = {
    {"LName", PF_NAME, NULL},
    {"FName", PF_NAME, NULL},
    {"MiddleI", PF_STR, NULL},
    {"Preferred", PF_STR, NULL},
    {"PatStatus", PF_ENUM, patstatus_names},
    {"Gender", PF_ENUM, gender_names},
    {"Position", PF_ENUM, position_names},
    {"Birthdate", PF_DATE, NULL},
    {"SSN", PF_STR, NULL},
    {"Address", PF_STR, NULL},
    {"Address2", PF_STR, NULL},
    {"City", PF_STR, NULL},
    {"State", PF_STR, NULL},
    {"Zip", PF_STR, NULL},
    {"HmPhone", PF_STR, NULL},
    {"WkPhone", PF_STR, NULL},
    {"WirelessPhone", PF_STR, NULL},
    {"Guarantor", PF_INT, NULL},
    {"Email", PF_STR, NULL},
    {"PriProv", PF_PROV, NULL},
    {"SecProv", PF_PROV, NULL},
    {"BillingType", PF_STR, NULL},
    {"FamFinUrgNote", PF_STR, NULL},
    {"ChartNumber", PF_STR, NULL},
    {"MedicaidID", PF_STR, NULL},
    {"DateFirstVisit", PF_DATE, NULL},
    {"ClinicNum", PF_CLINIC, NULL},
    {"Premed", PF_BOOL, NULL},
    {"Ward", PF_STR, NULL},
    {"PreferConfirmMethod", PF_ENUM, contact_names},
    {"PreferContactMethod", PF_ENUM, contact_names},
    {"PreferRecallMethod", PF_ENUM, contact_names},
    {"Language", PF_STR, NULL},
    {"AdmitDate", PF_DATE, NULL},
    {"TxtMsgOk", PF_ENUM, yn_names},
};

/* Validate the Patients fields of body into c (text borrowed from body or static; numbers
 * formatted into nums). Returns the count, or -1 after fail(). */
static int patient_fields(struct sim *s, struct office *o, const cJSON *body, struct setcol *c,
                          char (*nums)[24], struct fd_result *res)
{
    int n = 0;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(pfields); i++) {
        const struct pfield *pf = &pfields[i];
        const cJSON *v = cJSON_GetObjectItem(body, pf->name);
        int64_t num = 0, day, one;
        if (v == NULL)
            continue;
        if (pf->type == PF_INT || pf->type == PF_PROV || pf->type == PF_CLINIC) {
            if (get_int(body, pf->name, &num) != 1 || num < 0) {
                fail(res, 400, "%s is invalid.", pf->name);
                return -1;
            }
            if ((pf->type == PF_PROV && num != 0 &&
                 store_int(s, "SELECT 1 FROM provider WHERE office = ?1 AND ProvNum = ?2",
                           DBARGS(DV_I(o->num), DV_I(num)), &one) != 1) ||
                (pf->type == PF_CLINIC && num != 0 &&
                 store_int(s, "SELECT 1 FROM clinic WHERE office = ?1 AND ClinicNum = ?2",
                           DBARGS(DV_I(o->num), DV_I(num)), &one) != 1) ||
                (pf->type == PF_INT && patient_exists(s, o, num) != 1)) {
                fail(res, 400, "%s is invalid.", pf->name);
                return -1;
            }
            c[n++] = (struct setcol){pf->name, DV_I(num)};
            continue;
        }
        if (pf->name[0] == 'Z' && cJSON_IsNumber(v)) { /* "Zip": 90011 as in the doc example */
            snprintf(nums[n], sizeof(nums[n]), "%lld", (long long)v->valuedouble);
            c[n] = (struct setcol){pf->name, DV_T(nums[n])};
            n++;
            continue;
        }
        if (!cJSON_IsString(v)) {
            fail(res, 400, "%s must be a string.", pf->name);
            return -1;
        }
        const char *t = v->valuestring;
        int idx;
        switch (pf->type) {
        case PF_NAME:
            if (t[0] == '\0') {
                fail(res, 400, "%s cannot be blank.", pf->name);
                return -1;
            }
            c[n++] = (struct setcol){pf->name, DV_T(t)};
            break;
        case PF_STR:
            c[n++] = (struct setcol){pf->name, DV_T(t)};
            break;
        case PF_ENUM:
            idx = enum_index(pf->names, t);
            if (idx < 0) {
                fail(res, 400, "%s is invalid: \"%.40s\".", pf->name, t);
                return -1;
            }
            c[n++] = (struct setcol){pf->name, DV_T(pf->names[idx])};
            break;
        case PF_DATE:
            if (clock_parse_date(t, &day) != ODSYNC_OK) {
                fail(res, 400, "%s format must be yyyy-MM-dd.", pf->name);
                return -1;
            }
            c[n++] = (struct setcol){pf->name, DV_T(t)};
            break;
        case PF_BOOL:
            if (strcasecmp(t, "true") != 0 && strcasecmp(t, "false") != 0) {
                fail(res, 400, "%s must be \"true\" or \"false\".", pf->name);
                return -1;
            }
            c[n++] = (struct setcol){pf->name, DV_I(strcasecmp(t, "true") == 0)};
            break;
        default:
            break;
        }
    }
    return n;
}

void fd_patient_update(struct sim *s, struct office *o, int64_t patnum, const cJSON *body,
                       struct fd_result *res)
{
    struct setcol c[MAX_SET];
    char nums[MAX_SET][24];
    char now[CLOCK_DT_LEN];
    int n, ch;

    memset(res, 0, sizeof(*res));
    res->id = patnum;
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (!cJSON_IsObject(body)) {
        fail(res, 400, "The request body must be a JSON object.");
        goto cleanup;
    }
    int exists = patient_exists(s, o, patnum);
    if (exists != 1) {
        if (exists < 0)
            fail_store(res);
        else
            fail(res, 404, "Patient not found");
        goto cleanup;
    }
    n = patient_fields(s, o, body, c, nums, res);
    if (n < 0)
        goto cleanup;
    clock_office_now_str(s, o, now);
    ch = update_row(s, "patient", "PatNum", o->num, patnum, c, n, "DateTStamp", now);
    if (ch < 0)
        fail_store(res);
    else
        res->changed = ch;
cleanup:
    sp_end(s, res);
}

void fd_patient_add(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res)
{
    struct setcol c[MAX_SET];
    char nums[MAX_SET][24], now[CLOCK_DT_LEN], today[CLOCK_DATE_LEN], folder[96];
    int bad = 0, n;
    int64_t num, clinic = 0, recall = 0;

    memset(res, 0, sizeof(*res));
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    const char *lname = cJSON_IsObject(body) ? get_str(body, "LName", &bad) : NULL;
    const char *fname = cJSON_IsObject(body) ? get_str(body, "FName", &bad) : NULL;
    if (lname == NULL || fname == NULL || lname[0] == '\0' || fname[0] == '\0' || bad) {
        fail(res, 400, "LName and FName are required.");
        goto cleanup;
    }
    n = patient_fields(s, o, body, c, nums, res);
    if (n < 0)
        goto cleanup;
    num = store_next_id(s, "patient", "PatNum", o->num);
    store_int(s, "SELECT MIN(ClinicNum) FROM clinic WHERE office = ?1 AND IsHidden = 0",
              DBARGS(DV_I(o->num)), &clinic);
    clock_office_now_str(s, o, now);
    memcpy(today, now, 10);
    today[10] = '\0';
    snprintf(folder, sizeof(folder), "%s%s%lld", lname, fname, (long long)num);
    if (num < 0 ||
        store_run(s,
                  "INSERT INTO patient (office, PatNum, LName, FName, MiddleI, Preferred,"
                  " PatStatus, Gender, Position, Birthdate, SSN, Address, Address2, City, State,"
                  " Zip, HmPhone, WkPhone, WirelessPhone, Guarantor, Email, EstBalance, PriProv,"
                  " SecProv, FeeSched, BillingType, ImageFolder, FamFinUrgNote, ChartNumber,"
                  " MedicaidID, BalTotal, EmployerNum, DateFirstVisit, ClinicNum, Premed, Ward,"
                  " PreferConfirmMethod, PreferContactMethod, PreferRecallMethod, Language,"
                  " AdmitDate, SiteDesc, DateTStamp, SuperFamily, TxtMsgOk, SecDateEntry)"
                  " VALUES (?1, ?2, ?3, ?4, '', '', 'Patient', 'Unknown', 'Single', '0001-01-01',"
                  " '', '', '', '', '', '', '', '', '', ?2, '', 0.0, 1, 0, 0, 'Standard Account',"
                  " ?5, '', '', '', 0.0, 0, '0001-01-01', ?6, 0, '', 'None', 'None', 'None', '',"
                  " '0001-01-01', '', ?7, 0, 'Unknown', ?8)",
                  DBARGS(DV_I(o->num), DV_I(num), DV_T(lname), DV_T(fname), DV_T(folder),
                         DV_I(clinic), DV_T(now), DV_T(today))) != 1 ||
        update_row(s, "patient", "PatNum", o->num, num, c, n, "DateTStamp", now) < 0) {
        fail_store(res);
        goto cleanup;
    }
    const cJSON *rv = cJSON_GetObjectItem(body, "recall");
    if (cJSON_IsTrue(rv) || (cJSON_IsString(rv) && strcasecmp(rv->valuestring, "true") == 0)) {
        recall = store_next_id(s, "recall", "RecallNum", o->num);
        if (recall < 0 ||
            store_run(s,
                      "INSERT INTO recall (office, RecallNum, PatNum, DateDue, DatePrevious,"
                      " RecallInterval, RecallStatus, Note, IsDisabled, DateTStamp, RecallTypeNum,"
                      " DisableUntilBalance, DisableUntilDate, DateScheduled, Priority,"
                      " TimePatternOverride) VALUES (?1, ?2, ?3, ?4, '0001-01-01', '6m1d', 0, '',"
                      " 0, ?5, 1, 0.0, '0001-01-01', '0001-01-01', 'Normal', '')",
                      DBARGS(DV_I(o->num), DV_I(recall), DV_I(num), DV_T(today), DV_T(now))) != 1) {
            fail_store(res);
            goto cleanup;
        }
    }
    res->id = num;
    res->changed = 1;
cleanup:
    sp_end(s, res);
}

/* ---- appointments ------------------------------------------------------------------------ */

/* The trigger code of the patient's main cleaning recall (Perio, Child Prophy or Prophy). */
static void cleaning_code(struct sim *s, struct office *o, int64_t patnum, char *out, size_t len)
{
    int64_t type = 1;
    store_int(s,
              "SELECT RecallTypeNum FROM recall WHERE office = ?1 AND PatNum = ?2"
              " AND RecallTypeNum IN (1, 2, 3) ORDER BY RecallNum LIMIT 1",
              DBARGS(DV_I(o->num), DV_I(patnum)), &type);
    snprintf(out, len, "%s", type == 2 ? "D4910" : type == 3 ? "D1120" : "D1110");
}

/* Codes from body's "procedures" array into codes (borrowed); -1 after fail(). */
static int body_codes(struct sim *s, const cJSON *body, const char **codes, int max,
                      struct fd_result *res)
{
    const cJSON *arr = cJSON_IsObject(body) ? cJSON_GetObjectItem(body, "procedures") : NULL;
    const cJSON *v;
    int n = 0;
    int64_t one;
    if (arr == NULL)
        return 0;
    if (!cJSON_IsArray(arr)) {
        fail(res, 400, "procedures must be an array of procedure codes.");
        return -1;
    }
    cJSON_ArrayForEach(v, arr)
    {
        if (!cJSON_IsString(v) || n >= max ||
            store_int(s, "SELECT 1 FROM proccode WHERE ProcCode = ?1", DBARGS(DV_T(v->valuestring)),
                      &one) != 1) {
            fail(res, 400, "Unknown procedure code in procedures.");
            return -1;
        }
        codes[n++] = v->valuestring;
    }
    return n;
}

void fd_book(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res)
{
    int64_t pat = 0, op = 0, prov = 0, hyg = 0, clinic = 0, naive, aptnum;
    char now[CLOCK_DT_LEN], date[CLOCK_DATE_LEN], cleaning[8], sec[64];
    const char *codes[8];
    int bad = 0, ncodes, is_hyg = 1;

    memset(res, 0, sizeof(*res));
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (!cJSON_IsObject(body) || get_int(body, "PatNum", &pat) != 1) {
        fail(res, 400, "PatNum is required.");
        goto cleanup;
    }
    const char *when = get_str(body, "AptDateTime", &bad);
    if (when == NULL || clock_parse_datetime(when, &naive) != ODSYNC_OK) {
        fail(res, 400, "AptDateTime is required, formatted yyyy-MM-dd HH:mm:ss.");
        goto cleanup;
    }
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT PriProv, SecProv, ClinicNum FROM patient"
                                     " WHERE office = ?1 AND PatNum = ?2",
                                     DBARGS(DV_I(o->num), DV_I(pat)));
    if (st == NULL) {
        fail_store(res);
        goto cleanup;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        fail(res, 400, "PatNum is invalid: no such patient.");
        goto cleanup;
    }
    prov = sqlite3_column_int64(st, 0);
    hyg = sqlite3_column_int64(st, 1) != 0 ? sqlite3_column_int64(st, 1) : 3;
    clinic = sqlite3_column_int64(st, 2);
    sqlite3_finalize(st);
    op = clinic > 0 ? clinic * 10 + 1 : 1;
    if (get_int(body, "Op", &op) < 0 || get_int(body, "ProvNum", &prov) < 0 ||
        get_int(body, "ProvHyg", &hyg) < 0 || get_int(body, "ClinicNum", &clinic) < 0) {
        fail(res, 400, "Op, ProvNum, ProvHyg and ClinicNum must be numbers.");
        goto cleanup;
    }
    const char *ishyg = get_str(body, "IsHygiene", &bad);
    if (ishyg != NULL)
        is_hyg = strcasecmp(ishyg, "true") == 0;
    const char *pattern = get_str(body, "Pattern", &bad);
    const char *note = get_str(body, "Note", &bad);
    if (bad) {
        fail(res, 400, "IsHygiene, Pattern and Note must be strings.");
        goto cleanup;
    }
    if (pattern == NULL || pattern[0] == '\0' || strspn(pattern, "X/") != strlen(pattern) ||
        strlen(pattern) >= sizeof(sec))
        pattern = "//XXXX//";
    memset(sec, '/', strlen(pattern));
    sec[strlen(pattern)] = '\0';
    ncodes = body_codes(s, body, codes, 8, res);
    if (ncodes < 0)
        goto cleanup;
    cleaning_code(s, o, pat, cleaning, sizeof(cleaning));
    if (ncodes == 0 && is_hyg && cJSON_GetObjectItem(body, "procedures") == NULL) {
        codes[ncodes++] = "D0120";
        codes[ncodes++] = cleaning;
    }
    clock_office_now_str(s, o, now);
    clock_fmt_date(naive / 86400, date);
    aptnum = store_next_id(s, "appointment", "AptNum", o->num);
    /* Deleted appointments live on in history: never reuse their AptNum. */
    int64_t hist_max = 0;
    store_int(s, "SELECT COALESCE(MAX(AptNum), 0) + 1 FROM histappointment WHERE office = ?1",
              DBARGS(DV_I(o->num)), &hist_max);
    if (hist_max > aptnum)
        aptnum = hist_max;
    if (aptnum < 0 ||
        store_run(s,
                  "INSERT INTO appointment (office, " STORE_APT_COLS
                  ") VALUES (?1, ?2, ?3, 'Scheduled', ?4, 19, 0, ?5, ?6, ?7, ?8, ?9, 0, 0, 0, '',"
                  " ?10, ?11, ?12, '0001-01-01 00:00:00', '0001-01-01 00:00:00',"
                  " '0001-01-01 00:00:00', 0, 0, '0001-01-01 00:00:00', '0,0,0', 0, 1, ?12,"
                  " 'Normal', ?13, 0)",
                  DBARGS(DV_I(o->num), DV_I(aptnum), DV_I(pat), DV_T(pattern), DV_I(op),
                         DV_T(note != NULL ? note : ""), DV_I(prov), DV_I(is_hyg ? hyg : 0),
                         DV_T(when), DV_I(clinic), DV_I(is_hyg), DV_T(now), DV_T(sec))) != 1) {
        fail_store(res);
        goto cleanup;
    }
    for (int i = 0; i < ncodes; i++) {
        int cleaning_proc = strcmp(codes[i], cleaning) == 0 || strcmp(codes[i], "D1110") == 0;
        if (proc_add(s, o, pat, aptnum, codes[i], date, cleaning_proc && is_hyg ? hyg : prov,
                     clinic, now) != ODSYNC_OK) {
            fail_store(res);
            goto cleanup;
        }
    }
    if (apt_descript(s, o, aptnum, now) != ODSYNC_OK ||
        hist_add(s, o, aptnum, "Created", "None", now) != ODSYNC_OK ||
        recall_sync(s, o, pat, now) != ODSYNC_OK) {
        fail_store(res);
        goto cleanup;
    }
    res->id = aptnum;
    res->changed = 1;
cleanup:
    sp_end(s, res);
}

/* Load aptnum for a change that needs status want (NULL: any but Complete). Returns 1 to go
 * on, 0 after fail(). */
static int apt_for_change(struct sim *s, struct office *o, int64_t aptnum, const char *want,
                          struct aptinfo *ai, struct fd_result *res)
{
    int found = apt_get(s, o, aptnum, ai);
    if (found < 0) {
        fail_store(res);
        return 0;
    }
    if (found == 0) {
        fail(res, 404, "Appointment not found");
        return 0;
    }
    if (want != NULL && strcmp(ai->status, want) != 0) {
        fail(res, 400, "The appointment is %s; only %s appointments can be changed this way.",
             ai->status, want);
        return 0;
    }
    if (want == NULL && strcmp(ai->status, "Complete") == 0) {
        fail(res, 400, "Completed appointments cannot be deleted.");
        return 0;
    }
    return 1;
}

void fd_complete(struct sim *s, struct office *o, int64_t aptnum, const cJSON *body,
                 struct fd_result *res)
{
    struct aptinfo ai;
    char now[CLOCK_DT_LEN], date[CLOCK_DATE_LEN], today[CLOCK_DATE_LEN];
    char arrived[CLOCK_DT_LEN], seated[CLOCK_DT_LEN], dismissed[CLOCK_DT_LEN];
    const char *codes[8];
    int64_t naive, attached = 0, one;
    int ncodes;

    memset(res, 0, sizeof(*res));
    res->id = aptnum;
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (!apt_for_change(s, o, aptnum, "Scheduled", &ai, res))
        goto cleanup;
    ncodes = body_codes(s, body, codes, 8, res);
    if (ncodes < 0)
        goto cleanup;
    clock_office_now_str(s, o, now);
    memcpy(today, now, 10);
    today[10] = '\0';
    memcpy(date, ai.when, 10);
    date[10] = '\0';
    store_int(s, "SELECT COUNT(*) FROM procedurelog WHERE office = ?1 AND AptNum = ?2",
              DBARGS(DV_I(o->num), DV_I(aptnum)), &attached);
    if (attached == 0 && ncodes == 0) {
        codes[ncodes++] = "D0120";
        codes[ncodes++] = "D1110";
    }
    for (int i = 0; i < ncodes; i++) {
        if (store_int(s,
                      "SELECT 1 FROM procedurelog pl JOIN proccode pc ON pc.CodeNum = pl.CodeNum"
                      " WHERE pl.office = ?1 AND pl.AptNum = ?2 AND pc.ProcCode = ?3",
                      DBARGS(DV_I(o->num), DV_I(aptnum), DV_T(codes[i])), &one) == 1)
            continue;
        if (proc_add(s, o, ai.pat, aptnum, codes[i], date,
                     strcmp(codes[i], "D0120") == 0 || ai.hyg == 0 ? ai.prov : ai.hyg, ai.clinic,
                     now) != ODSYNC_OK) {
            fail_store(res);
            goto cleanup;
        }
    }
    if (store_run(s,
                  "UPDATE procedurelog SET ProcStatus = 'C', ProcDate = ?3, DateEntryC = ?4,"
                  " DateTStamp = ?5 WHERE office = ?1 AND AptNum = ?2 AND ProcStatus = 'TP'",
                  DBARGS(DV_I(o->num), DV_I(aptnum), DV_T(date), DV_T(today), DV_T(now))) < 0 ||
        apt_descript(s, o, aptnum, now) != ODSYNC_OK ||
        clock_parse_datetime(ai.when, &naive) != ODSYNC_OK) {
        fail_store(res);
        goto cleanup;
    }
    clock_fmt_datetime(naive - 300, arrived);
    clock_fmt_datetime(naive + 180, seated);
    clock_fmt_datetime(naive + (int64_t)strlen(ai.pattern) * 300, dismissed);
    struct setcol c[] = {{"AptStatus", DV_T("Complete")},
                         {"DateTimeArrived", DV_T(arrived)},
                         {"DateTimeSeated", DV_T(seated)},
                         {"DateTimeDismissed", DV_T(dismissed)}};
    if (update_row(s, "appointment", "AptNum", o->num, aptnum, c, 4, "DateTStamp", now) < 0 ||
        hist_add(s, o, aptnum, "Changed", "None", now) != ODSYNC_OK) {
        fail_store(res);
        goto cleanup;
    }
    /* Recalls triggered by a procedure completed on this visit move forward. */
    {
        int64_t nums[16];
        char prev[16][CLOCK_DATE_LEN + 4], interval[16][24];
        int n = 0;
        sqlite3_stmt *st = store_prepare(
            s,
            "SELECT r.RecallNum, r.DatePrevious, r.RecallInterval FROM recall r JOIN recalltype"
            " rt ON rt.office = r.office AND rt.RecallTypeNum = r.RecallTypeNum"
            " WHERE r.office = ?1 AND r.PatNum = ?2 AND EXISTS (SELECT 1 FROM procedurelog pl"
            " JOIN proccode pc ON pc.CodeNum = pl.CodeNum WHERE pl.office = ?1"
            " AND pl.AptNum = ?3 AND pl.ProcStatus = 'C'"
            " AND instr(',' || rt.Procedures || ',', ',' || pc.ProcCode || ',') > 0)",
            DBARGS(DV_I(o->num), DV_I(ai.pat), DV_I(aptnum)));
        if (st == NULL) {
            fail_store(res);
            goto cleanup;
        }
        while (n < 16 && sqlite3_step(st) == SQLITE_ROW) {
            nums[n] = sqlite3_column_int64(st, 0);
            snprintf(prev[n], sizeof(prev[n]), "%s", (const char *)sqlite3_column_text(st, 1));
            snprintf(interval[n], sizeof(interval[n]), "%s",
                     (const char *)sqlite3_column_text(st, 2));
            n++;
        }
        sqlite3_finalize(st);
        for (int i = 0; i < n; i++) {
            int64_t pday, vday, due;
            char newprev[CLOCK_DATE_LEN], newdue[CLOCK_DATE_LEN];
            clock_parse_date(date, &vday);
            if (clock_parse_date(prev[i], &pday) != ODSYNC_OK || pday < vday)
                pday = vday;
            if (clock_add_interval(pday, interval[i], &due) != ODSYNC_OK)
                clock_add_interval(pday, "6m1d", &due);
            clock_fmt_date(pday, newprev);
            clock_fmt_date(due, newdue);
            struct setcol rc[] = {{"DatePrevious", DV_T(newprev)}, {"DateDue", DV_T(newdue)}};
            if (update_row(s, "recall", "RecallNum", o->num, nums[i], rc, 2, "DateTStamp", now) <
                0) {
                fail_store(res);
                goto cleanup;
            }
        }
    }
    if (recall_sync(s, o, ai.pat, now) != ODSYNC_OK ||
        store_run(s,
                  "UPDATE patient SET DateFirstVisit = ?3, DateTStamp = ?4 WHERE office = ?1"
                  " AND PatNum = ?2 AND DateFirstVisit = '0001-01-01'",
                  DBARGS(DV_I(o->num), DV_I(ai.pat), DV_T(date), DV_T(now))) < 0) {
        fail_store(res);
        goto cleanup;
    }
    res->changed = 1;
cleanup:
    sp_end(s, res);
}

void fd_break(struct sim *s, struct office *o, int64_t aptnum, const char *action, int to_unsched,
              struct fd_result *res)
{
    struct aptinfo ai;
    char now[CLOCK_DT_LEN];

    memset(res, 0, sizeof(*res));
    res->id = aptnum;
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (strcmp(action, "Missed") != 0 && strcmp(action, "Cancelled") != 0) {
        fail(res, 400, "breakType must be Missed or Cancelled.");
        goto cleanup;
    }
    if (!apt_for_change(s, o, aptnum, "Scheduled", &ai, res))
        goto cleanup;
    clock_office_now_str(s, o, now);
    struct setcol c[] = {{"AptStatus", DV_T(to_unsched ? "UnschedList" : "Broken")}};
    if (update_row(s, "appointment", "AptNum", o->num, aptnum, c, 1, "DateTStamp", now) < 0 ||
        hist_add(s, o, aptnum, action, "None", now) != ODSYNC_OK ||
        recall_sync(s, o, ai.pat, now) != ODSYNC_OK) {
        fail_store(res);
        goto cleanup;
    }
    res->changed = 1;
cleanup:
    sp_end(s, res);
}

void fd_delete(struct sim *s, struct office *o, int64_t aptnum, struct fd_result *res)
{
    struct aptinfo ai;
    char now[CLOCK_DT_LEN];

    memset(res, 0, sizeof(*res));
    res->id = aptnum;
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (!apt_for_change(s, o, aptnum, NULL, &ai, res))
        goto cleanup;
    clock_office_now_str(s, o, now);
    if (hist_add(s, o, aptnum, "Deleted", "None", now) != ODSYNC_OK ||
        store_run(s,
                  "UPDATE procedurelog SET AptNum = 0, DateTStamp = ?3 WHERE office = ?1"
                  " AND AptNum = ?2",
                  DBARGS(DV_I(o->num), DV_I(aptnum), DV_T(now))) < 0 ||
        store_run(s, "DELETE FROM appointment WHERE office = ?1 AND AptNum = ?2",
                  DBARGS(DV_I(o->num), DV_I(aptnum))) != 1 ||
        recall_sync(s, o, ai.pat, now) != ODSYNC_OK) {
        fail_store(res);
        goto cleanup;
    }
    res->changed = 1;
cleanup:
    sp_end(s, res);
}

int64_t fd_confirm_def(const char *name)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(confirm_vals); i++) {
        if (strcasecmp(confirm_vals[i].name, name) == 0)
            return confirm_vals[i].def;
    }
    return -1;
}

void fd_confirm(struct sim *s, struct office *o, int64_t aptnum, int64_t defnum,
                struct fd_result *res)
{
    struct aptinfo ai;
    char now[CLOCK_DT_LEN];
    int64_t one;
    int ch;

    memset(res, 0, sizeof(*res));
    res->id = aptnum;
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (!apt_for_change(s, o, aptnum, NULL, &ai, res)) {
        if (res->status == 400) /* a Complete appointment can still be confirmed */
            res->status = 0;
        else
            goto cleanup;
    }
    if (store_int(s, "SELECT 1 FROM def WHERE DefNum = ?1 AND Category = 2", DBARGS(DV_I(defnum)),
                  &one) != 1) {
        fail(res, 400, "defNum is not a confirmation status.");
        goto cleanup;
    }
    clock_office_now_str(s, o, now);
    struct setcol c[] = {{"Confirmed", DV_I(defnum)}};
    ch = update_row(s, "appointment", "AptNum", o->num, aptnum, c, 1, "DateTStamp", now);
    if (ch < 0 || (ch > 0 && hist_add(s, o, aptnum, "Changed", "EConnector", now) != ODSYNC_OK)) {
        fail_store(res);
        goto cleanup;
    }
    res->changed = ch;
cleanup:
    sp_end(s, res);
}

void fd_recall_move(struct sim *s, struct office *o, int64_t recallnum, const char *date,
                    struct fd_result *res)
{
    char now[CLOCK_DT_LEN];
    int64_t day, one;
    int ch;

    memset(res, 0, sizeof(*res));
    res->id = recallnum;
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (date == NULL || clock_parse_date(date, &day) != ODSYNC_OK) {
        fail(res, 400, "DateDue is required, formatted yyyy-MM-dd.");
        goto cleanup;
    }
    if (store_int(s, "SELECT 1 FROM recall WHERE office = ?1 AND RecallNum = ?2",
                  DBARGS(DV_I(o->num), DV_I(recallnum)), &one) != 1) {
        fail(res, 404, "Recall not found");
        goto cleanup;
    }
    clock_office_now_str(s, o, now);
    struct setcol c[] = {{"DateDue", DV_T(date)}};
    ch = update_row(s, "recall", "RecallNum", o->num, recallnum, c, 1, "DateTStamp", now);
    if (ch < 0) {
        fail_store(res);
        goto cleanup;
    }
    res->changed = ch;
cleanup:
    sp_end(s, res);
}

/* Insert a commlog; returns the CommlogNum or -1. */
static int64_t commlog_insert(struct sim *s, struct office *o, int64_t pat, const char *when,
                              int64_t type, const char *note, const char *mode, const char *sor,
                              const char *now)
{
    int64_t num = store_next_id(s, "commlog", "CommlogNum", o->num);
    if (num < 0 ||
        store_run(s,
                  "INSERT INTO commlog (office, CommlogNum, PatNum, CommDateTime, CommType, Note,"
                  " Mode, SentOrReceived, UserNum, DateTStamp, CommSource, ProgramNum,"
                  " DateTEntry, ReferralNum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9,"
                  " 'User', 0, ?9, 0)",
                  DBARGS(DV_I(o->num), DV_I(num), DV_I(pat), DV_T(when), DV_I(type), DV_T(note),
                         DV_T(mode), DV_T(sor), DV_T(now))) != 1)
        return -1;
    return num;
}

void fd_recall_status(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res)
{
    char now[CLOCK_DT_LEN];
    int64_t pat = 0, recallnum = 0, status = -1;
    int bad = 0, mode_idx = 0;

    memset(res, 0, sizeof(*res));
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (!cJSON_IsObject(body) || get_int(body, "PatNum", &pat) != 1) {
        fail(res, 400, "PatNum is required.");
        goto cleanup;
    }
    const char *type = get_str(body, "recallType", &bad);
    const char *mode = get_str(body, "commlogMode", &bad);
    const char *note = get_str(body, "commlogNote", &bad);
    if (type == NULL || bad) {
        fail(res, 400, "recallType is required, e.g. \"Prophy\".");
        goto cleanup;
    }
    if (mode != NULL && (mode_idx = enum_index(mode_nospace, mode)) < 0) {
        fail(res, 400, "commlogMode is invalid: \"%.40s\".", mode);
        goto cleanup;
    }
    const cJSON *rs = cJSON_GetObjectItem(body, "RecallStatus");
    if (cJSON_IsString(rs) && util_parse_i64(rs->valuestring, 0, INT64_MAX, &status) != ODSYNC_OK &&
        store_int(s, "SELECT DefNum FROM def WHERE Category = 13 AND ItemName = ?1",
                  DBARGS(DV_T(rs->valuestring)), &status) != 1) {
        fail(res, 400, "RecallStatus is invalid.");
        goto cleanup;
    }
    if (cJSON_IsNumber(rs))
        status = (int64_t)rs->valuedouble;
    if (rs != NULL && status != 0 &&
        store_int(s, "SELECT DefNum FROM def WHERE Category = 13 AND DefNum = ?1",
                  DBARGS(DV_I(status)), &status) != 1) {
        fail(res, 400, "RecallStatus is invalid.");
        goto cleanup;
    }
    int exists = patient_exists(s, o, pat);
    if (exists != 1) {
        fail(res, exists < 0 ? 500 : 404, "%s",
             exists < 0 ? "Internal error" : "Patient not found");
        goto cleanup;
    }
    if (store_int(s,
                  "SELECT r.RecallNum FROM recall r JOIN recalltype rt ON rt.office = r.office"
                  " AND rt.RecallTypeNum = r.RecallTypeNum WHERE r.office = ?1 AND r.PatNum = ?2"
                  " AND rt.Description = ?3 COLLATE NOCASE",
                  DBARGS(DV_I(o->num), DV_I(pat), DV_T(type)), &recallnum) != 1) {
        fail(res, 400, "The patient has no recall of type \"%.40s\".", type);
        goto cleanup;
    }
    clock_office_now_str(s, o, now);
    if (rs != NULL) {
        struct setcol c[] = {{"RecallStatus", DV_I(status)}};
        if (update_row(s, "recall", "RecallNum", o->num, recallnum, c, 1, "DateTStamp", now) < 0) {
            fail_store(res);
            goto cleanup;
        }
    }
    if (commlog_insert(s, o, pat, now, 240,
                       note != NULL && note[0] != '\0' ? note : "Recall status updated.",
                       mode_names[mode_idx], "Sent", now) < 0) {
        fail_store(res);
        goto cleanup;
    }
    res->id = recallnum;
    res->changed = 1;
cleanup:
    sp_end(s, res);
}

void fd_commlog_add(struct sim *s, struct office *o, const cJSON *body, struct fd_result *res)
{
    char now[CLOCK_DT_LEN];
    int64_t pat = 0, type = 239, naive, num;
    int bad = 0, mode_idx = 3, sor_idx = 1;

    memset(res, 0, sizeof(*res));
    if (sp_begin(s) != ODSYNC_OK) {
        fail_store(res);
        return;
    }
    if (!cJSON_IsObject(body) || get_int(body, "PatNum", &pat) != 1) {
        fail(res, 400, "PatNum is required.");
        goto cleanup;
    }
    const char *note = get_str(body, "Note", &bad);
    const char *when = get_str(body, "CommDateTime", &bad);
    const char *tname = get_str(body, "commType", &bad);
    const char *mode = get_str(body, "Mode_", &bad);
    const char *sor = get_str(body, "SentOrReceived", &bad);
    if (bad) {
        fail(res, 400, "Note, CommDateTime, commType, Mode_ and SentOrReceived must be strings.");
        goto cleanup;
    }
    if (note == NULL || note[0] == '\0') {
        fail(res, 400, "Note is required.");
        goto cleanup;
    }
    if (when != NULL && clock_parse_datetime(when, &naive) != ODSYNC_OK) {
        fail(res, 400, "CommDateTime format must be yyyy-MM-dd HH:mm:ss.");
        goto cleanup;
    }
    if (mode != NULL && (mode_idx = enum_index(mode_names, mode)) < 0) {
        fail(res, 400, "Mode_ is invalid: \"%.40s\".", mode);
        goto cleanup;
    }
    if (sor != NULL && (sor_idx = enum_index(sor_names, sor)) < 0) {
        fail(res, 400, "SentOrReceived is invalid: \"%.40s\".", sor);
        goto cleanup;
    }
    if (tname != NULL) { /* the name wins over CommType */
        if (store_int(s,
                      "SELECT DefNum FROM def WHERE Category = 27 AND ItemName = ?1 COLLATE NOCASE",
                      DBARGS(DV_T(strcasecmp(tname, "Miscellaneous") == 0 ? "Misc" : tname)),
                      &type) != 1) {
            fail(res, 400, "commType is invalid: \"%.40s\".", tname);
            goto cleanup;
        }
    } else if (get_int(body, "CommType", &type) < 0 ||
               store_int(s, "SELECT DefNum FROM def WHERE Category = 27 AND DefNum = ?1",
                         DBARGS(DV_I(type)), &type) != 1) {
        fail(res, 400, "CommType is invalid.");
        goto cleanup;
    }
    int exists = patient_exists(s, o, pat);
    if (exists != 1) {
        fail(res, exists < 0 ? 500 : 400, "%s",
             exists < 0 ? "Internal error" : "PatNum is invalid.");
        goto cleanup;
    }
    clock_office_now_str(s, o, now);
    num = commlog_insert(s, o, pat, when != NULL ? when : now, type, note, mode_names[mode_idx],
                         sor_names[sor_idx], now);
    if (num < 0) {
        fail_store(res);
        goto cleanup;
    }
    res->id = num;
    res->changed = 1;
cleanup:
    sp_end(s, res);
}

/* ---- random load ------------------------------------------------------------------------- */

/* A random row number of sql's result (sql selects one integer column; ?1 = office), or 0. */
static int64_t pick(struct sim *s, struct office *o, uint64_t *rng, const char *where_sql,
                    const char *table, const char *pk)
{
    char sql[320];
    int64_t n = 0, v = 0;
    util_fmt(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE office = ?1 %s", table, where_sql);
    if (store_int(s, sql, DBARGS(DV_I(o->num)), &n) != 1 || n == 0)
        return 0;
    util_fmt(sql, sizeof(sql),
             "SELECT %s FROM %s WHERE office = ?1 %s ORDER BY %s LIMIT 1 OFFSET ?2", pk, table,
             where_sql, pk);
    if (store_int(s, sql, DBARGS(DV_I(o->num), DV_I(sim_rng_range(rng, 0, n - 1))), &v) != 1)
        return 0;
    return v;
}

void fd_random(struct sim *s, struct office *o, int64_t count, uint64_t seed, cJSON **summary,
               struct fd_result *res)
{
    static const char *const kinds[] = {"txtmsgok", "email",       "phone",      "status",
                                        "book",     "complete",    "break",      "delete",
                                        "confirm",  "move_recall", "add_patient"};
    static const int weights[] = {120, 80, 80, 40, 200, 150, 60, 30, 100, 100, 40};
    int64_t done[UTIL_ARRAY_LEN(kinds)] = {0}, noop = 0;
    uint64_t rng = seed ^ UINT64_C(0x5deece66d);
    cJSON *out = NULL, *by = NULL;
    struct fd_result r;
    char buf[96], now[CLOCK_DT_LEN];

    memset(res, 0, sizeof(*res));
    *summary = NULL;
    for (int64_t i = 0; i < count; i++) {
        int64_t x = sim_rng_range(&rng, 0, 999), id;
        size_t k = 0;
        while (k + 1 < UTIL_ARRAY_LEN(kinds) && x >= weights[k])
            x -= weights[k++];
        cJSON *b = cJSON_CreateObject();
        if (b == NULL) {
            fail(res, 500, "out of memory");
            return;
        }
        memset(&r, 0, sizeof(r));
        r.status = 1; /* "nothing to act on" unless a change ran */
        switch (k) {
        case 0:
        case 1:
        case 2:
        case 3:
            id = pick(s, o, &rng, "", "patient", "PatNum");
            if (id == 0)
                break;
            if (k == 0) {
                cJSON_AddStringToObject(b, "TxtMsgOk", yn_names[sim_rng_range(&rng, 0, 2)]);
            } else if (k == 1) {
                util_fmt(buf, sizeof(buf), "%s.%lld@example.com", gen_first_name(&rng),
                         (long long)sim_rng_range(&rng, 1, 9999));
                cJSON_AddStringToObject(b, "Email", buf);
            } else if (k == 2) {
                util_fmt(buf, sizeof(buf), "(555)%03d-%04d", (int)sim_rng_range(&rng, 10, 19),
                         (int)sim_rng_range(&rng, 0, 9999));
                cJSON_AddStringToObject(b, "WirelessPhone", buf);
            } else {
                cJSON_AddStringToObject(b, "PatStatus",
                                        sim_rng_permille(&rng, 700) ? "Inactive" : "Patient");
            }
            fd_patient_update(s, o, id, b, &r);
            break;
        case 4:
            id = pick(s, o, &rng, "AND PatStatus = 'Patient'", "patient", "PatNum");
            if (id == 0)
                break;
            clock_office_now_str(s, o, now);
            {
                int64_t naive, day;
                clock_parse_datetime(now, &naive);
                day = naive / 86400 + sim_rng_range(&rng, 1, 60);
                clock_fmt_datetime(day * 86400 + sim_rng_range(&rng, 8, 16) * 3600 +
                                       sim_rng_range(&rng, 0, 5) * 600,
                                   buf);
            }
            cJSON_AddNumberToObject(b, "PatNum", (double)id);
            cJSON_AddStringToObject(b, "AptDateTime", buf);
            fd_book(s, o, b, &r);
            break;
        case 5:
        case 6:
        case 7:
        case 8:
            id = pick(s, o, &rng, "AND AptStatus = 'Scheduled'", "appointment", "AptNum");
            if (id == 0)
                break;
            if (k == 5)
                fd_complete(s, o, id, NULL, &r);
            else if (k == 6)
                fd_break(s, o, id, sim_rng_permille(&rng, 500) ? "Missed" : "Cancelled", 0, &r);
            else if (k == 7)
                fd_delete(s, o, id, &r);
            else
                fd_confirm(s, o, id, confirm_vals[sim_rng_range(&rng, 0, 4)].def, &r);
            break;
        case 9:
            id = pick(s, o, &rng, "", "recall", "RecallNum");
            if (id == 0)
                break;
            clock_office_now_str(s, o, now);
            {
                int64_t naive;
                clock_parse_datetime(now, &naive);
                clock_fmt_date(naive / 86400 + sim_rng_range(&rng, -200, 200), buf);
            }
            fd_recall_move(s, o, id, buf, &r);
            break;
        default:
            cJSON_AddStringToObject(b, "LName", gen_last_name(&rng));
            cJSON_AddStringToObject(b, "FName", gen_first_name(&rng));
            cJSON_AddStringToObject(b, "TxtMsgOk", "Yes");
            util_fmt(buf, sizeof(buf), "(555)%03d-%04d", (int)sim_rng_range(&rng, 10, 19),
                     (int)sim_rng_range(&rng, 0, 9999));
            cJSON_AddStringToObject(b, "WirelessPhone", buf);
            cJSON_AddTrueToObject(b, "recall");
            fd_patient_add(s, o, b, &r);
            break;
        }
        cJSON_Delete(b);
        if (r.status == 500) {
            *res = r;
            return;
        }
        if (r.status == 0 && r.changed)
            done[k]++;
        else
            noop++;
    }
    out = cJSON_CreateObject();
    by = out != NULL ? cJSON_AddObjectToObject(out, "applied") : NULL;
    if (by == NULL) {
        cJSON_Delete(out);
        fail(res, 500, "out of memory");
        return;
    }
    for (size_t k = 0; k < UTIL_ARRAY_LEN(kinds); k++)
        cJSON_AddNumberToObject(by, kinds[k], (double)done[k]);
    cJSON_AddNumberToObject(out, "requested", (double)count);
    cJSON_AddNumberToObject(out, "noop", (double)noop);
    *summary = out;
}
