/*
 * rest.c: the /api/v1 resources. Lists are bare JSON arrays paged by Limit/Offset (default
 * and maximum page: 100 remote, 1000 local; a larger Limit is clamped; [] past the end),
 * in primary-key order unless --shuffle. Query parameter names match case-insensitively.
 * Filters that Open Dental does not document for an endpoint are ignored, as it does
 * (notably DateTStamp on /recalls).
 */
#include "rest.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "fhir.h"
#include "frontdesk.h"
#include "store.h"

static const char *const apt_statuses[] = {"Scheduled", "Complete",        "UnschedList",
                                           "ASAP",      "Broken",          "Planned",
                                           "PtNote",    "PtNoteCompleted", NULL};
static const char *const pat_statuses[] = {"Patient", "NonPatient", "Inactive",    "Archived",
                                           "Deleted", "Deceased",   "Prospective", NULL};
static const char *const proc_statuses[] = {"TP", "C", "EC", "EO", "R", "D", "Cn", "TPi", NULL};
static const char *const hist_actions[] = {"Created",   "Changed", "Missed",
                                           "Cancelled", "Deleted", NULL};
static const char *const watch_tables[] = {"Appointment",        "Patient",      "PatField",
                                           "AppointmentDeleted", "Operatory",    "Provider",
                                           "Schedule",           "ToothInitial", NULL};

/* ---- small helpers ----------------------------------------------------------------------- */

/* Canonical name of v in names (case-insensitive), or NULL. */
static const char *enum_name(const char *const *names, const char *v)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcasecmp(names[i], v) == 0)
            return names[i];
    }
    return NULL;
}

/* Answer 400 "<name> is invalid." and return -1. */
static int bad_arg(struct answer *a, const char *name, const char *why)
{
    char msg[160];
    util_fmt(msg, sizeof(msg), "%s %s", name, why);
    answer_error(a, 400, msg);
    return -1;
}

/* Limit/Offset of the request. Returns 0, or -1 after answering 400. */
static int paging(struct sim *s, const struct req *r, int64_t *limit, int64_t *offset,
                  struct answer *a)
{
    const char *l = req_arg(r, "Limit"), *o = req_arg(r, "Offset");
    *limit = s->page_cap;
    *offset = 0;
    if (l != NULL && util_parse_i64(l, 0, INT64_MAX, limit) != ODSYNC_OK)
        return bad_arg(a, "Limit", "must be a non-negative integer.");
    if (o != NULL && util_parse_i64(o, 0, INT64_MAX, offset) != ODSYNC_OK)
        return bad_arg(a, "Offset", "must be a non-negative integer.");
    if (*limit == 0 || *limit > s->page_cap)
        *limit = s->page_cap;
    return 0;
}

/* Add "expr = ?" for an integer query parameter. Returns 0 or -1 (answered). */
static int filter_int(const struct req *r, struct query *q, const char *name, const char *expr,
                      struct answer *a)
{
    const char *v = req_arg(r, name);
    int64_t n;
    char cond[96];
    if (v == NULL)
        return 0;
    if (util_parse_i64(v, INT64_MIN, INT64_MAX, &n) != ODSYNC_OK)
        return bad_arg(a, name, "must be an integer.");
    util_fmt(cond, sizeof(cond), "%s = ?", expr);
    query_and(q, cond, DV_I(n));
    return 0;
}

/* Add "expr = <canonical enum>" for an enum query parameter. */
static int filter_enum(const struct req *r, struct query *q, const char *name, const char *expr,
                       const char *const *names, struct answer *a)
{
    const char *v = req_arg(r, name);
    const char *canon;
    char cond[96];
    if (v == NULL)
        return 0;
    canon = enum_name(names, v);
    if (canon == NULL)
        return bad_arg(a, name, "is not a valid value.");
    util_fmt(cond, sizeof(cond), "%s = ?", expr);
    query_and(q, cond, DV_T(canon));
    return 0;
}

/* The DateTStamp change filter (>= by default, > with --gt). */
static int filter_stamp(struct sim *s, const struct req *r, struct query *q, const char *name,
                        const char *expr, struct answer *a)
{
    const char *v = req_arg(r, name);
    int64_t naive;
    char cond[96];
    if (v == NULL)
        return 0;
    if (clock_parse_datetime(v, &naive) != ODSYNC_OK)
        return bad_arg(a, name, "format must be yyyy-MM-dd HH:mm:ss");
    util_fmt(cond, sizeof(cond), "%s %s ?", expr, s->gt ? ">" : ">=");
    query_and(q, cond, DV_T(v));
    return 0;
}

/* A date filter on the first 10 characters of a datetime column (op: "=", ">=", "<="). */
static int filter_date(const struct req *r, struct query *q, const char *name, const char *expr,
                       const char *op, struct answer *a)
{
    const char *v = req_arg(r, name);
    int64_t day;
    char cond[96];
    if (v == NULL)
        return 0;
    if (clock_parse_date(v, &day) != ODSYNC_OK)
        return bad_arg(a, name, "format must be yyyy-MM-dd");
    util_fmt(cond, sizeof(cond), "substr(%s, 1, 10) %s ?", expr, op);
    query_and(q, cond, DV_T(v));
    return 0;
}

/* A case-insensitive partial-match filter. */
static void filter_like(const struct req *r, struct query *q, const char *name, const char *expr)
{
    const char *v = req_arg(r, name);
    char cond[96];
    if (v == NULL || v[0] == '\0')
        return;
    util_fmt(cond, sizeof(cond), "instr(lower(%s), lower(?)) > 0", expr);
    query_and(q, cond, DV_T(v));
}

/* Run q paged and answer the array. */
static void answer_list(struct sim *s, struct office *o, const struct req *r, struct query *q,
                        int with_now, struct answer *a)
{
    int64_t limit, offset;
    char now[CLOCK_DT_LEN];
    char *out = NULL;
    int rc;
    if (paging(s, r, &limit, &offset, a) != 0)
        return;
    clock_office_now_str(s, o, now);
    pthread_mutex_lock(&s->db_lock);
    rc = store_list(s, q, limit, offset, with_now ? now : NULL, &out);
    pthread_mutex_unlock(&s->db_lock);
    if (rc != ODSYNC_OK) {
        answer_error(a, 500, "Internal error in the simulator's database.");
        return;
    }
    answer_set(a, 200, out);
}

/* Answer one row by primary key, or 404 with missing as the JSON string body. */
static void answer_one(struct sim *s, struct office *o, enum res_id res, int64_t pk, int with_now,
                       const char *missing, struct answer *a)
{
    char now[CLOCK_DT_LEN];
    char *out = NULL;
    clock_office_now_str(s, o, now);
    pthread_mutex_lock(&s->db_lock);
    int found = store_one(s, res, o->num, pk, with_now ? now : NULL, &out);
    pthread_mutex_unlock(&s->db_lock);
    if (found < 0)
        answer_error(a, 500, "Internal error in the simulator's database.");
    else if (found == 0)
        answer_error(a, 404, missing);
    else
        answer_set(a, 200, out);
}

/* The request body as a JSON object (caller frees with cJSON_Delete), or NULL after
 * answering 400. */
static cJSON *body_object(const struct req *r, struct answer *a)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        answer_error(a, 400, "The request body must be a JSON object.");
        return NULL;
    }
    return j;
}

/* Answer a front-desk failure, or 200 with an empty body on success. */
static void answer_fd(const struct fd_result *res, struct answer *a)
{
    if (res->status != 0)
        answer_error(a, res->status, res->msg);
    else
        answer_set(a, 200, util_strdup(""));
}

/* A location header for path (e.g. "/commlogs/5") on this server. */
static void set_location(const struct req *r, const char *path, int64_t id, struct answer *a)
{
    char loc[512];
    util_fmt(loc, sizeof(loc), "http://%s/api/v1%s/%lld", r->host, path, (long long)id);
    util_free(a->location);
    a->location = util_strdup(loc);
}

/* ---- patients ---------------------------------------------------------------------------- */

static void get_patients(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                         struct answer *a)
{
    struct query q;
    const char *v;
    (void)ids;
    query_init(&q, R_PATIENT_MULTI, o->num);
    query_and(&q, "t.PatStatus <> 'Deleted'", (struct dbv){.t = 'n'});
    filter_like(r, &q, "LName", "t.LName");
    filter_like(r, &q, "FName", "t.FName");
    filter_like(r, &q, "Email", "t.Email");
    v = req_arg(r, "Phone");
    if (v != NULL && v[0] != '\0')
        query_and(&q,
                  "instr(od_digits(t.HmPhone) || '|' || od_digits(t.WkPhone) || '|' ||"
                  " od_digits(t.WirelessPhone), od_digits(?)) > 0",
                  DV_T(v));
    v = req_arg(r, "hideInactive");
    if (v != NULL && strcasecmp(v, "true") == 0)
        query_and(&q, "t.PatStatus <> 'Inactive'", (struct dbv){.t = 'n'});
    v = req_arg(r, "clinicNums");
    if (v != NULL && v[0] != '\0')
        query_and(&q, "instr(',' || replace(?, ' ', '') || ',', ',' || t.ClinicNum || ',') > 0",
                  DV_T(v));
    answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

static void get_patients_simple(struct sim *s, struct office *o, const struct req *r,
                                const int64_t *ids, struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_PATIENT, o->num);
    if (filter_stamp(s, r, &q, "DateTStamp", "t.DateTStamp", a) == 0 &&
        filter_enum(r, &q, "PatStatus", "t.PatStatus", pat_statuses, a) == 0 &&
        filter_int(r, &q, "ClinicNum", "t.ClinicNum", a) == 0 &&
        filter_int(r, &q, "Guarantor", "t.Guarantor", a) == 0 &&
        filter_int(r, &q, "PriProv", "t.PriProv", a) == 0 &&
        filter_date(r, &q, "Birthdate", "t.Birthdate", "=", a) == 0) {
        filter_like(r, &q, "LName", "t.LName");
        filter_like(r, &q, "FName", "t.FName");
        answer_list(s, o, r, &q, 1, a);
    }
    query_free(&q);
}

static void get_patient(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                        struct answer *a)
{
    (void)r;
    answer_one(s, o, R_PATIENT, ids[0], 0, "Patient not found", a);
}

static void put_patient(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                        struct answer *a)
{
    struct fd_result res;
    cJSON *body = body_object(r, a);
    if (body == NULL)
        return;
    pthread_mutex_lock(&s->db_lock);
    fd_patient_update(s, o, ids[0], body, &res);
    pthread_mutex_unlock(&s->db_lock);
    cJSON_Delete(body);
    if (res.status != 0)
        answer_error(a, res.status, res.msg);
    else
        answer_one(s, o, R_PATIENT, ids[0], 0, "Patient not found", a);
}

/* ---- appointments ------------------------------------------------------------------------ */

static void get_appointments(struct sim *s, struct office *o, const struct req *r,
                             const int64_t *ids, struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_APPOINTMENT, o->num);
    if (filter_stamp(s, r, &q, "DateTStamp", "t.DateTStamp", a) == 0 &&
        filter_int(r, &q, "PatNum", "t.PatNum", a) == 0 &&
        filter_enum(r, &q, "AptStatus", "t.AptStatus", apt_statuses, a) == 0 &&
        filter_int(r, &q, "Op", "t.Op", a) == 0 &&
        filter_int(r, &q, "ClinicNum", "t.ClinicNum", a) == 0 &&
        filter_date(r, &q, "date", "t.AptDateTime", "=", a) == 0 &&
        filter_date(r, &q, "dateStart", "t.AptDateTime", ">=", a) == 0 &&
        filter_date(r, &q, "dateEnd", "t.AptDateTime", "<=", a) == 0)
        answer_list(s, o, r, &q, 1, a);
    query_free(&q);
}

static void get_appointment(struct sim *s, struct office *o, const struct req *r,
                            const int64_t *ids, struct answer *a)
{
    (void)r;
    answer_one(s, o, R_APPOINTMENT, ids[0], 1, "Appointment not found", a);
}

static void put_confirm(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                        struct answer *a)
{
    struct fd_result res;
    int64_t def = -1;
    cJSON *body = body_object(r, a);
    if (body == NULL)
        return;
    const cJSON *cv = cJSON_GetObjectItem(body, "confirmVal");
    const cJSON *dn = cJSON_GetObjectItem(body, "defNum");
    if (cJSON_IsString(cv))
        def = fd_confirm_def(cv->valuestring);
    else if (cJSON_IsNumber(dn))
        def = (int64_t)dn->valuedouble;
    else if (cJSON_IsString(dn) && util_parse_i64(dn->valuestring, 0, INT64_MAX, &def) != ODSYNC_OK)
        def = -1;
    cJSON_Delete(body);
    if (def < 0) {
        answer_error(a, 400,
                     "confirmVal (None, Sent, Confirmed, Not Accepted, Failed) or defNum "
                     "is required.");
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    fd_confirm(s, o, ids[0], def, &res);
    pthread_mutex_unlock(&s->db_lock);
    answer_fd(&res, a);
}

static void put_break(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                      struct answer *a)
{
    struct fd_result res;
    cJSON *body = body_object(r, a);
    if (body == NULL)
        return;
    const cJSON *su = cJSON_GetObjectItem(body, "sendToUnscheduledList");
    const cJSON *bt = cJSON_GetObjectItem(body, "breakType");
    int unsched =
        cJSON_IsTrue(su) || (cJSON_IsString(su) && strcasecmp(su->valuestring, "true") == 0);
    const char *type = "Missed";
    if (bt != NULL) {
        type = cJSON_IsString(bt) ? enum_name(hist_actions, bt->valuestring) : NULL;
        if (type == NULL || (strcmp(type, "Missed") != 0 && strcmp(type, "Cancelled") != 0)) {
            cJSON_Delete(body);
            answer_error(a, 400, "breakType must be Missed or Cancelled.");
            return;
        }
    }
    if (su == NULL) {
        cJSON_Delete(body);
        answer_error(a, 400, "sendToUnscheduledList is required (\"true\" or \"false\").");
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    fd_break(s, o, ids[0], type, unsched, &res);
    pthread_mutex_unlock(&s->db_lock);
    cJSON_Delete(body);
    answer_fd(&res, a);
}

static void get_histappointments(struct sim *s, struct office *o, const struct req *r,
                                 const int64_t *ids, struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_HIST, o->num);
    if (filter_enum(r, &q, "HistApptAction", "t.HistApptAction", hist_actions, a) == 0 &&
        filter_int(r, &q, "AptNum", "t.AptNum", a) == 0 &&
        filter_int(r, &q, "PatNum", "t.PatNum", a) == 0 &&
        filter_enum(r, &q, "AptStatus", "t.AptStatus", apt_statuses, a) == 0 &&
        filter_int(r, &q, "ClinicNum", "t.ClinicNum", a) == 0 &&
        filter_date(r, &q, "dateStart", "t.HistDateTStamp", ">=", a) == 0 &&
        filter_date(r, &q, "dateEnd", "t.HistDateTStamp", "<=", a) == 0)
        answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

/* ---- recalls ----------------------------------------------------------------------------- */

static void get_recalls(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                        struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_RECALL, o->num);
    if (filter_int(r, &q, "PatNum", "t.PatNum", a) == 0)
        answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

/* Append "name":"value" (value a JSON string) with a leading comma unless first. */
static void kv_str(struct sbuf *b, const char *name, const char *value, int first)
{
    sbuf_printf(b, "%s\"%s\":", first ? "" : ",", name);
    json_str(b, value);
}

/* "M/d/yyyy" of a stored "yyyy-MM-dd" ("" for none or bad). */
static void mdy(const char *date, char *out, size_t len)
{
    int64_t day;
    if (date == NULL || clock_parse_date(date, &day) != ODSYNC_OK)
        day = CLOCK_NONE_DAY;
    clock_fmt_mdy(day, out, len);
}

/* The Recall List's Contact column for one patient. */
static void contact(const char *method, const char *hm, const char *wk, const char *cell,
                    const char *email, char *out, size_t len)
{
    if (strcmp(method, "TextMessage") == 0)
        snprintf(out, len, "Text:%s", cell);
    else if (strcmp(method, "Email") == 0)
        snprintf(out, len, "%s", email);
    else if (strcmp(method, "WirelessPh") == 0)
        snprintf(out, len, "Cell:%s", cell);
    else if (strcmp(method, "WkPhone") == 0)
        snprintf(out, len, "Wk:%s", wk);
    else if (strcmp(method, "HmPhone") == 0)
        snprintf(out, len, "Hm:%s", hm);
    else if (strcmp(method, "DoNotCall") == 0)
        snprintf(out, len, "Do Not Call");
    else if (strcmp(method, "Mail") == 0)
        snprintf(out, len, "Mail");
    else if (hm[0] != '\0')
        snprintf(out, len, "Hm:%s", hm);
    else if (cell[0] != '\0')
        snprintf(out, len, "Cell:%s", cell);
    else if (wk[0] != '\0')
        snprintf(out, len, "Wk:%s", wk);
    else
        out[0] = '\0';
}

/* Column text or "" */
static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

static void get_recall_list(struct sim *s, struct office *o, const struct req *r,
                            const int64_t *ids, struct answer *a)
{
    char now[CLOCK_DT_LEN], today[CLOCK_DATE_LEN], start[CLOCK_DATE_LEN], end[CLOCK_DATE_LEN];
    char past[16] = "365", future[16] = "180", types[64] = "1,2";
    struct sbuf sql = {0}, out = {0};
    struct dbv binds[12];
    int nb = 0, include_reminded = 0, rows = 0;
    int64_t limit, offset, today_day, days, n;
    sqlite3_stmt *st = NULL;
    const char *v;
    (void)ids;

    if (paging(s, r, &limit, &offset, a) != 0)
        return;
    clock_office_now_str(s, o, now);
    memcpy(today, now, 10);
    today[10] = '\0';
    clock_parse_date(today, &today_day);
    v = req_arg(r, "IncludeReminded");
    include_reminded = v != NULL && strcasecmp(v, "true") == 0;

    pthread_mutex_lock(&s->db_lock);
    store_text(s, "SELECT ValueString FROM pref WHERE office = ?1 AND PrefName = 'RecallDaysPast'",
               DBARGS(DV_I(o->num)), past, sizeof(past));
    store_text(s,
               "SELECT ValueString FROM pref WHERE office = ?1 AND PrefName = 'RecallDaysFuture'",
               DBARGS(DV_I(o->num)), future, sizeof(future));
    store_text(s,
               "SELECT ValueString FROM pref WHERE office = ?1"
               " AND PrefName = 'RecallTypesShowingInList'",
               DBARGS(DV_I(o->num)), types, sizeof(types));
    days = 365;
    util_parse_i64(past, 0, 100000, &days);
    clock_fmt_date(today_day - days, start);
    days = 180;
    util_parse_i64(future, 0, 100000, &days);
    clock_fmt_date(today_day + days, end);
    v = req_arg(r, "DateStart");
    if (v != NULL && clock_parse_date(v, &n) != ODSYNC_OK) {
        bad_arg(a, "DateStart", "format must be yyyy-MM-dd");
        goto cleanup;
    }
    if (v != NULL)
        snprintf(start, sizeof(start), "%s", v);
    v = req_arg(r, "DateEnd");
    if (v != NULL && clock_parse_date(v, &n) != ODSYNC_OK) {
        bad_arg(a, "DateEnd", "format must be yyyy-MM-dd");
        goto cleanup;
    }
    if (v != NULL)
        snprintf(end, sizeof(end), "%s", v);
    v = req_arg(r, "RecallType");
    if (v != NULL && util_parse_i64(v, 0, INT64_MAX, &n) != ODSYNC_OK) {
        bad_arg(a, "RecallType", "must be a RecallTypeNum.");
        goto cleanup;
    }
    if (v != NULL)
        snprintf(types, sizeof(types), "%lld", (long long)n);

    binds[nb++] = DV_I(o->num);
    binds[nb++] = DV_T(start);
    binds[nb++] = DV_T(end);
    binds[nb++] = DV_T(today);
    binds[nb++] = DV_T(types);
    sbuf_puts(&sql,
              "SELECT r.DateDue, r.DatePrevious, p.PatNum, p.LName, p.FName, p.Preferred,"
              " p.Birthdate, rt.Description, r.RecallInterval,"
              " (SELECT COUNT(*) FROM commlog c WHERE c.office = r.office AND c.PatNum = r.PatNum"
              " AND c.CommType = 240 AND substr(c.CommDateTime, 1, 10) > r.DatePrevious),"
              " (SELECT MAX(substr(c.CommDateTime, 1, 10)) FROM commlog c WHERE c.office = r.office"
              " AND c.PatNum = r.PatNum AND c.CommType = 240"
              " AND substr(c.CommDateTime, 1, 10) > r.DatePrevious),"
              " p.PreferRecallMethod, p.HmPhone, p.WkPhone, p.WirelessPhone, p.Email,"
              " COALESCE(d.ItemName, ''), r.Note, p.ClinicNum"
              " FROM recall r JOIN patient p ON p.office = r.office AND p.PatNum = r.PatNum"
              " JOIN recalltype rt ON rt.office = r.office AND rt.RecallTypeNum = r.RecallTypeNum"
              " LEFT JOIN def d ON d.DefNum = r.RecallStatus"
              " WHERE r.office = ?1 AND r.DateDue >= ?2 AND r.DateDue <= ?3 AND r.IsDisabled = 0"
              " AND r.DisableUntilDate <= ?4 AND r.DateScheduled = '0001-01-01'"
              " AND p.PatStatus = 'Patient'"
              " AND instr(',' || replace(?5, ' ', '') || ',', ',' || r.RecallTypeNum || ',') > 0");
    v = req_arg(r, "ProvNum");
    if (v != NULL) {
        if (util_parse_i64(v, 0, INT64_MAX, &n) != ODSYNC_OK) {
            bad_arg(a, "ProvNum", "must be an integer.");
            goto cleanup;
        }
        sbuf_printf(&sql, " AND p.PriProv = ?%d", nb + 1);
        binds[nb++] = DV_I(n);
    }
    v = req_arg(r, "ClinicNum");
    if (v != NULL) {
        if (util_parse_i64(v, 0, INT64_MAX, &n) != ODSYNC_OK) {
            bad_arg(a, "ClinicNum", "must be an integer.");
            goto cleanup;
        }
        sbuf_printf(&sql, " AND p.ClinicNum = ?%d", nb + 1);
        binds[nb++] = DV_I(n);
    }
    if (!include_reminded)
        sbuf_puts(&sql, " AND NOT EXISTS (SELECT 1 FROM commlog c WHERE c.office = r.office"
                        " AND c.PatNum = r.PatNum AND c.CommType = 240"
                        " AND substr(c.CommDateTime, 1, 10) > r.DatePrevious)");
    sbuf_printf(&sql, " ORDER BY r.DateDue, p.LName, p.FName, r.RecallNum LIMIT ?%d OFFSET ?%d",
                nb + 1, nb + 2);
    binds[nb++] = DV_I(limit);
    binds[nb++] = DV_I(offset);
    if (sql.failed || (st = store_prepare(s, sql.data, binds, nb)) == NULL) {
        answer_error(a, 500, "Internal error in the simulator's database.");
        goto cleanup;
    }
    sbuf_puts(&out, "[");
    while (sqlite3_step(st) == SQLITE_ROW) {
        char due[16], last[16], name[160], age[8] = "", num[24], contact_s[160];
        int64_t birth;
        mdy(strcmp(col(st, 1), "0001-01-01") == 0 ? NULL : col(st, 0), due, sizeof(due));
        mdy(sqlite3_column_type(st, 10) == SQLITE_NULL ? NULL : col(st, 10), last, sizeof(last));
        if (col(st, 5)[0] != '\0')
            snprintf(name, sizeof(name), "%s, '%s' %s", col(st, 3), col(st, 5), col(st, 4));
        else
            snprintf(name, sizeof(name), "%s, %s", col(st, 3), col(st, 4));
        if (clock_parse_date(col(st, 6), &birth) == ODSYNC_OK && birth > CLOCK_NONE_DAY) {
            int64_t by, ty;
            int bm, bd, tm, td;
            clock_civil_from_days(birth, &by, &bm, &bd);
            clock_civil_from_days(today_day, &ty, &tm, &td);
            snprintf(age, sizeof(age), "%lld",
                     (long long)(ty - by - (tm < bm || (tm == bm && td < bd))));
        }
        n = sqlite3_column_int64(st, 9);
        if (n > 0)
            snprintf(num, sizeof(num), "%lld", (long long)n);
        else
            num[0] = '\0';
        contact(col(st, 11), col(st, 12), col(st, 13), col(st, 14), col(st, 15), contact_s,
                sizeof(contact_s));
        sbuf_puts(&out, rows++ > 0 ? ",{" : "{");
        kv_str(&out, "DueDate", due, 1);
        sbuf_printf(&out, ",\"PatNum\":%lld", (long long)sqlite3_column_int64(st, 2));
        kv_str(&out, "Patient", name, 0);
        kv_str(&out, "Age", age, 0);
        kv_str(&out, "Type", col(st, 7), 0);
        kv_str(&out, "Interval", col(st, 8), 0);
        kv_str(&out, "NumRemind", num, 0);
        kv_str(&out, "LastRemind", last, 0);
        kv_str(&out, "Contact", contact_s, 0);
        kv_str(&out, "Status", col(st, 16), 0);
        sbuf_printf(&out, ",\"ClinicNum\":%lld", (long long)sqlite3_column_int64(st, 18));
        kv_str(&out, "Note", col(st, 17), 0);
        sbuf_puts(&out, "}");
    }
    sbuf_puts(&out, "]");
    answer_set(a, 200, sbuf_take(&out));
cleanup:
    pthread_mutex_unlock(&s->db_lock);
    sqlite3_finalize(st);
    sbuf_free(&sql);
    sbuf_free(&out);
}

static void put_recall_status(struct sim *s, struct office *o, const struct req *r,
                              const int64_t *ids, struct answer *a)
{
    struct fd_result res;
    cJSON *body = body_object(r, a);
    (void)ids;
    if (body == NULL)
        return;
    pthread_mutex_lock(&s->db_lock);
    fd_recall_status(s, o, body, &res);
    pthread_mutex_unlock(&s->db_lock);
    cJSON_Delete(body);
    answer_fd(&res, a);
}

static void get_recalltypes(struct sim *s, struct office *o, const struct req *r,
                            const int64_t *ids, struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_RECALLTYPE, o->num);
    answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

static void get_recalltype(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                           struct answer *a)
{
    (void)r;
    answer_one(s, o, R_RECALLTYPE, ids[0], 0, "RecallType not found", a);
}

/* ---- procedures, clinics, preferences, providers, commlogs ------------------------------- */

static void get_procedurelogs(struct sim *s, struct office *o, const struct req *r,
                              const int64_t *ids, struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_PROC, o->num);
    if (filter_stamp(s, r, &q, "DateTStamp", "t.DateTStamp", a) == 0 &&
        filter_int(r, &q, "PatNum", "t.PatNum", a) == 0 &&
        filter_int(r, &q, "AptNum", "t.AptNum", a) == 0 &&
        filter_enum(r, &q, "ProcStatus", "t.ProcStatus", proc_statuses, a) == 0 &&
        filter_int(r, &q, "ClinicNum", "t.ClinicNum", a) == 0 &&
        filter_int(r, &q, "CodeNum", "t.CodeNum", a) == 0)
        answer_list(s, o, r, &q, 1, a);
    query_free(&q);
}

static void get_procedurelog(struct sim *s, struct office *o, const struct req *r,
                             const int64_t *ids, struct answer *a)
{
    (void)r;
    answer_one(s, o, R_PROC, ids[0], 1, "ProcedureLog not found", a);
}

static void get_clinics(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                        struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_CLINIC, o->num);
    query_and(&q, "t.IsHidden = 0", (struct dbv){.t = 'n'});
    answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

static void get_clinic(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                       struct answer *a)
{
    (void)r;
    answer_one(s, o, R_CLINIC, ids[0], 0, "Clinic not found", a);
}

static void get_preferences(struct sim *s, struct office *o, const struct req *r,
                            const int64_t *ids, struct answer *a)
{
    struct query q;
    const char *v = req_arg(r, "PrefName");
    (void)ids;
    query_init(&q, R_PREF, o->num);
    if (v != NULL)
        query_and(&q, "t.PrefName = ? COLLATE NOCASE", DV_T(v));
    answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

static void get_providers(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                          struct answer *a)
{
    struct query q;
    int64_t limit, offset, clinic;
    char now[CLOCK_DT_LEN];
    char *out = NULL;
    const char *v = req_arg(r, "ClinicNum");
    (void)ids;
    if (v != NULL && util_parse_i64(v, 0, INT64_MAX, &clinic) != ODSYNC_OK) {
        bad_arg(a, "ClinicNum", "must be an integer.");
        return;
    }
    query_init(&q, R_PROVIDER, o->num);
    if (filter_stamp(s, r, &q, "DateTStamp", "t.DateTStamp", a) == 0 &&
        paging(s, r, &limit, &offset, a) == 0) {
        clock_office_now_str(s, o, now);
        if (v != NULL) /* documented quirk: with ClinicNum, serverDateTime is "" */
            now[0] = '\0';
        pthread_mutex_lock(&s->db_lock);
        int rc = store_list(s, &q, limit, offset, now, &out);
        pthread_mutex_unlock(&s->db_lock);
        if (rc != ODSYNC_OK)
            answer_error(a, 500, "Internal error in the simulator's database.");
        else
            answer_set(a, 200, out);
    }
    query_free(&q);
}

static void get_commlogs(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                         struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_COMMLOG, o->num);
    if (filter_int(r, &q, "PatNum", "t.PatNum", a) == 0 &&
        filter_stamp(s, r, &q, "DateTStamp", "t.DateTStamp", a) == 0)
        answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

static void post_commlog(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                         struct answer *a)
{
    struct fd_result res;
    cJSON *body = body_object(r, a);
    (void)ids;
    if (body == NULL)
        return;
    pthread_mutex_lock(&s->db_lock);
    fd_commlog_add(s, o, body, &res);
    pthread_mutex_unlock(&s->db_lock);
    cJSON_Delete(body);
    if (res.status != 0) {
        answer_error(a, res.status, res.msg);
        return;
    }
    answer_one(s, o, R_COMMLOG, res.id, 0, "Commlog not found", a);
    if (a->status == 200) {
        a->status = 201;
        set_location(r, "/commlogs", res.id, a);
    }
}

/* ---- subscriptions ----------------------------------------------------------------------- */

/* A DateTimeStart/DateTimeStop value: "yyyy-MM-dd" becomes "yyyy-MM-dd 00:00:00". Returns 0
 * with out set, or -1 when malformed. */
static int sub_datetime(const char *v, char out[CLOCK_DT_LEN])
{
    int64_t x;
    if (clock_parse_datetime(v, &x) == ODSYNC_OK) {
        snprintf(out, CLOCK_DT_LEN, "%s", v);
        return 0;
    }
    if (clock_parse_date(v, &x) == ODSYNC_OK) {
        snprintf(out, CLOCK_DT_LEN, "%s 00:00:00", v);
        return 0;
    }
    return -1;
}

/* A string member of j, "" when absent; *bad when present but not a string. */
static const char *jstr(const cJSON *j, const char *name, int *bad)
{
    const cJSON *v = cJSON_GetObjectItem(j, name);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

/* PollingSeconds of j: 1 set, 0 absent, -1 malformed. */
static int jpoll(const cJSON *j, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItem(j, "PollingSeconds");
    if (v == NULL)
        return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 86400 &&
        v->valuedouble == (double)(int64_t)v->valuedouble) {
        *out = (int64_t)v->valuedouble;
        return 1;
    }
    if (cJSON_IsString(v) && util_parse_i64(v->valuestring, 1, 86400, out) == ODSYNC_OK)
        return 1;
    return -1;
}

static void post_subscription(struct sim *s, struct office *o, const struct req *r,
                              const int64_t *ids, struct answer *a)
{
    char now[CLOCK_DT_LEN], start[CLOCK_DT_LEN], stop[CLOCK_DT_LEN] = "0001-01-01 00:00:00";
    char msg[200];
    int bad = 0;
    int64_t poll = 0, num = -1, dup = 0;
    const char *wt = NULL;
    (void)ids;
    cJSON *body = body_object(r, a);
    if (body == NULL)
        return;
    const char *url = jstr(body, "EndPointUrl", &bad);
    const char *ws = jstr(body, "Workstation", &bad);
    const char *watch = jstr(body, "WatchTable", &bad);
    const char *ui = jstr(body, "UiEventType", &bad);
    const char *dts = jstr(body, "DateTimeStart", &bad);
    const char *dte = jstr(body, "DateTimeStop", &bad);
    const char *note = jstr(body, "Note", &bad);
    int has_poll = jpoll(body, &poll);
    clock_office_now_str(s, o, now);
    snprintf(start, sizeof(start), "%s", now);
    if (bad) {
        answer_error(a, 400, "Subscription fields must be strings (PollingSeconds a number).");
    } else if (url == NULL || url[0] == '\0') {
        answer_error(a, 400, "EndPointUrl is required.");
    } else if ((watch == NULL || watch[0] == '\0') == (ui == NULL || ui[0] == '\0')) {
        answer_error(a, 400, "Either WatchTable or UiEventType is required, not both.");
    } else if (watch != NULL && watch[0] != '\0' && (wt = enum_name(watch_tables, watch)) == NULL) {
        util_fmt(msg, sizeof(msg),
                 "WatchTable %.40s is not supported. Supported: Appointment, Patient, PatField, "
                 "AppointmentDeleted, Operatory, Provider, Schedule, ToothInitial.",
                 watch);
        answer_error(a, 400, msg);
    } else if (ui != NULL && ui[0] != '\0' && strcmp(ui, "PatientSelected") != 0) {
        answer_error(a, 400, "UiEventType must be PatientSelected.");
    } else if (wt != NULL && has_poll != 1) {
        answer_error(a, 400, "PollingSeconds is required for a WatchTable subscription.");
    } else if (has_poll < 0) {
        answer_error(a, 400, "PollingSeconds is invalid.");
    } else if ((dts != NULL && sub_datetime(dts, start) != 0) ||
               (dte != NULL && sub_datetime(dte, stop) != 0)) {
        answer_error(a, 400, "DateTimeStart and DateTimeStop format must be yyyy-MM-dd HH:mm:ss.");
    } else {
        pthread_mutex_lock(&s->db_lock);
        int found =
            store_int(s,
                      "SELECT COUNT(*) FROM subscription WHERE office = ?1 AND EndPointUrl = ?2"
                      " AND Workstation = ?3 AND WatchTable = ?4 AND UiEventType = ?5"
                      " AND (DateTimeStop = '0001-01-01 00:00:00' OR DateTimeStop > ?6)",
                      DBARGS(DV_I(o->num), DV_T(url), DV_T(ws != NULL ? ws : ""),
                             DV_T(wt != NULL ? wt : ""), DV_T(wt != NULL ? "" : ui), DV_T(now)),
                      &dup);
        if (found == 1 && dup == 0) {
            num = store_next_id(s, "subscription", "SubscriptionNum", o->num);
            if (num > 0 &&
                store_run(s,
                          "INSERT INTO subscription VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                          " ?10, ?11)",
                          DBARGS(DV_I(o->num), DV_I(num), DV_T(url), DV_T(ws != NULL ? ws : ""),
                                 DV_T(o->key), DV_T(wt != NULL ? wt : ""),
                                 DV_I(wt != NULL ? poll : 0), DV_T(wt != NULL ? "" : ui),
                                 DV_T(start), DV_T(stop), DV_T(note != NULL ? note : ""))) != 1)
                num = -1;
        }
        pthread_mutex_unlock(&s->db_lock);
        if (found == 1 && dup > 0)
            answer_error(a, 400,
                         "A subscription with this EndPointUrl, Workstation and "
                         "WatchTable already exists for this customer key.");
        else if (num < 0)
            answer_error(a, 500, "Internal error in the simulator's database.");
        else {
            answer_one(s, o, R_SUBSCRIPTION, num, 0, "Subscription not found", a);
            if (a->status == 200) {
                a->status = 201;
                set_location(r, "/subscriptions", num, a);
            }
        }
    }
    cJSON_Delete(body);
}

static void get_subscriptions(struct sim *s, struct office *o, const struct req *r,
                              const int64_t *ids, struct answer *a)
{
    struct query q;
    (void)ids;
    query_init(&q, R_SUBSCRIPTION, o->num);
    answer_list(s, o, r, &q, 0, a);
    query_free(&q);
}

static void put_subscription(struct sim *s, struct office *o, const struct req *r,
                             const int64_t *ids, struct answer *a)
{
    char start[CLOCK_DT_LEN], stop[CLOCK_DT_LEN], watch[40] = "";
    int bad = 0, found;
    int64_t poll = 0;
    cJSON *body = body_object(r, a);
    if (body == NULL)
        return;
    const char *url = jstr(body, "EndPointUrl", &bad);
    const char *ws = jstr(body, "Workstation", &bad);
    const char *wt = jstr(body, "WatchTable", &bad);
    const char *dts = jstr(body, "DateTimeStart", &bad);
    const char *dte = jstr(body, "DateTimeStop", &bad);
    const char *note = jstr(body, "Note", &bad);
    int has_poll = jpoll(body, &poll);
    pthread_mutex_lock(&s->db_lock);
    found = store_text(s,
                       "SELECT WatchTable FROM subscription WHERE office = ?1"
                       " AND SubscriptionNum = ?2",
                       DBARGS(DV_I(o->num), DV_I(ids[0])), watch, sizeof(watch));
    if (found < 0) {
        answer_error(a, 500, "Internal error in the simulator's database.");
    } else if (found == 0) {
        answer_error(a, 404, "Subscription not found");
    } else if (bad || has_poll < 0 || (url != NULL && url[0] == '\0')) {
        answer_error(a, 400, "Invalid subscription fields.");
    } else if (wt != NULL && strcmp(wt, watch) != 0) {
        answer_error(a, 400,
                     "WatchTable cannot be changed; delete and re-create the "
                     "subscription.");
    } else if (has_poll == 1 && watch[0] == '\0') {
        answer_error(a, 400, "PollingSeconds can only be changed for WatchTable subscriptions.");
    } else if ((dts != NULL && sub_datetime(dts, start) != 0) ||
               (dte != NULL && sub_datetime(dte, stop) != 0)) {
        answer_error(a, 400, "DateTimeStart and DateTimeStop format must be yyyy-MM-dd HH:mm:ss.");
    } else {
        int ok = 1;
        if (url != NULL)
            ok &= store_run(s,
                            "UPDATE subscription SET EndPointUrl = ?3 WHERE office = ?1"
                            " AND SubscriptionNum = ?2",
                            DBARGS(DV_I(o->num), DV_I(ids[0]), DV_T(url))) >= 0;
        if (ws != NULL)
            ok &= store_run(s,
                            "UPDATE subscription SET Workstation = ?3 WHERE office = ?1"
                            " AND SubscriptionNum = ?2",
                            DBARGS(DV_I(o->num), DV_I(ids[0]), DV_T(ws))) >= 0;
        if (has_poll == 1)
            ok &= store_run(s,
                            "UPDATE subscription SET PollingSeconds = ?3 WHERE office = ?1"
                            " AND SubscriptionNum = ?2",
                            DBARGS(DV_I(o->num), DV_I(ids[0]), DV_I(poll))) >= 0;
        if (dts != NULL)
            ok &= store_run(s,
                            "UPDATE subscription SET DateTimeStart = ?3 WHERE office = ?1"
                            " AND SubscriptionNum = ?2",
                            DBARGS(DV_I(o->num), DV_I(ids[0]), DV_T(start))) >= 0;
        if (dte != NULL)
            ok &= store_run(s,
                            "UPDATE subscription SET DateTimeStop = ?3 WHERE office = ?1"
                            " AND SubscriptionNum = ?2",
                            DBARGS(DV_I(o->num), DV_I(ids[0]), DV_T(stop))) >= 0;
        if (note != NULL)
            ok &= store_run(s,
                            "UPDATE subscription SET Note = ?3 WHERE office = ?1"
                            " AND SubscriptionNum = ?2",
                            DBARGS(DV_I(o->num), DV_I(ids[0]), DV_T(note))) >= 0;
        a->status = ok ? 0 : 500;
        if (!ok)
            answer_error(a, 500, "Internal error in the simulator's database.");
    }
    pthread_mutex_unlock(&s->db_lock);
    cJSON_Delete(body);
    if (a->status == 0)
        answer_one(s, o, R_SUBSCRIPTION, ids[0], 0, "Subscription not found", a);
}

static void delete_subscription(struct sim *s, struct office *o, const struct req *r,
                                const int64_t *ids, struct answer *a)
{
    (void)r;
    pthread_mutex_lock(&s->db_lock);
    int64_t n = store_run(s, "DELETE FROM subscription WHERE office = ?1 AND SubscriptionNum = ?2",
                          DBARGS(DV_I(o->num), DV_I(ids[0])));
    pthread_mutex_unlock(&s->db_lock);
    if (n < 0)
        answer_error(a, 500, "Internal error in the simulator's database.");
    else if (n == 0)
        answer_error(a, 404, "Subscription not found");
    else
        answer_set(a, 200, util_strdup(""));
}

/* ---- routing ----------------------------------------------------------------------------- */

const struct rest_route rest_routes[] = {
    {"GET", "/patients", "21.1", get_patients},
    {"GET", "/patients/Simple", "21.2", get_patients_simple},
    {"GET", "/patients/{PatNum}", "21.1", get_patient},
    {"PUT", "/patients/{PatNum}", "21.2", put_patient},
    {"GET", "/appointments", "21.1", get_appointments},
    {"GET", "/appointments/{AptNum}", "21.1", get_appointment},
    {"PUT", "/appointments/{AptNum}/Confirm", "21.1", put_confirm},
    {"PUT", "/appointments/{AptNum}/Break", "21.1", put_break},
    {"GET", "/recalls", "22.4.40", get_recalls},
    {"GET", "/recalls/List", "22.1", get_recall_list},
    {"PUT", "/recalls/Status", "21.2", put_recall_status},
    {"GET", "/recalltypes", "24.1.44", get_recalltypes},
    {"GET", "/recalltypes/{RecallTypeNum}", "24.1.44", get_recalltype},
    {"GET", "/procedurelogs", "21.1", get_procedurelogs},
    {"GET", "/procedurelogs/{ProcNum}", "21.1", get_procedurelog},
    {"GET", "/histappointments", "23.1.30", get_histappointments},
    {"GET", "/clinics", "21.1", get_clinics},
    {"GET", "/clinics/{ClinicNum}", "21.1", get_clinic},
    {"GET", "/preferences", "21.1", get_preferences},
    {"GET", "/providers", "21.1", get_providers},
    {"GET", "/commlogs", "21.1", get_commlogs},
    {"POST", "/commlogs", "21.1", post_commlog},
    {"GET", "/subscriptions", "22.1", get_subscriptions},
    {"POST", "/subscriptions", "22.1", post_subscription},
    {"PUT", "/subscriptions/{SubscriptionNum}", "22.1", put_subscription},
    {"DELETE", "/subscriptions/{SubscriptionNum}", "22.1", delete_subscription},
    /* FHIR v2 (fhir.h): main.c passes the whole path for /fhir/v2/... */
    {"GET", "/fhir/v2/patient", "16.3", fhir_patient_search},
    {"GET", "/fhir/v2/patient/{id}", "16.3", fhir_patient_read},
    {"GET", "/fhir/v2/appointment", "16.3", fhir_appointment_search},
    {"GET", "/fhir/v2/appointment/{id}", "16.3", fhir_appointment_read},
};

const int rest_route_count = (int)UTIL_ARRAY_LEN(rest_routes);

/* Match path against template t: literals case-insensitively, {X} as a number. */
static int path_matches(const char *t, const char *path, int64_t ids[2])
{
    int nid = 0;
    while (*t != '\0' || *path != '\0') {
        if (*t != '/' || *path != '/')
            return 0;
        t++;
        path++;
        size_t tl = strcspn(t, "/"), pl = strcspn(path, "/");
        if (t[0] == '{') {
            char num[24];
            if (pl == 0 || pl >= sizeof(num) || strspn(path, "0123456789") < pl || nid >= 2)
                return 0;
            memcpy(num, path, pl);
            num[pl] = '\0';
            if (util_parse_i64(num, 0, INT64_MAX, &ids[nid++]) != ODSYNC_OK)
                return 0;
        } else if (tl != pl || strncasecmp(t, path, tl) != 0) {
            return 0;
        }
        t += tl;
        path += pl;
    }
    return 1;
}

int rest_match(const char *method, const char *path, int64_t ids[2])
{
    char clean[512];
    size_t n = strlen(path);
    int other = 0;
    if (n == 0 || n >= sizeof(clean))
        return -1;
    memcpy(clean, path, n + 1);
    if (n > 1 && clean[n - 1] == '/')
        clean[n - 1] = '\0';
    for (int i = 0; i < rest_route_count; i++) {
        int64_t got[2] = {0, 0};
        if (!path_matches(rest_routes[i].path, clean, got))
            continue;
        /* "/patients/Simple" must not be read as "/patients/{PatNum}": literal routes come
         * first in the table, and a number never matches "Simple". */
        if (strcmp(rest_routes[i].method, method) != 0) {
            other = 1;
            continue;
        }
        ids[0] = got[0];
        ids[1] = got[1];
        return i;
    }
    return other ? -2 : -1;
}
