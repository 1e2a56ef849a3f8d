/*
 * fhir.c: FHIR v2 Patient and Appointment search and read (fhir.h). Search parameters become
 * SQL conditions over the same tables /api/v1 reads; rows are rendered straight into a
 * growable buffer (20,000 patients: a Bundle of about 20 MB in a fraction of a second).
 */
#include "fhir.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "clock.h"
#include "store.h"

#define MAX_ARGS     64  /* query parameters read per request */
#define MAX_BINDS    64  /* bound text values per search */
#define MAX_ELEM     256 /* bytes of one comma-separated value */
#define LABEL_PATNUM "Open Dental patient.PatNum"
#define LABEL_APTNUM "Open Dental FK to appointment.AptNum"
#define SSN_SYSTEM   "http://hl7.org/fhir/sid/us-ssn"
#define PART_SYSTEM  "http://hl7.org/fhir/participant-type"
#define DB_ERROR     "Internal error in the simulator's database."

/* Appointment.status of an appointment row (alias t); NULL for rows FHIR never shows. */
#define APT_FHIR_STATUS                                                                            \
    "(CASE WHEN t.AptStatus IN ('Scheduled', 'ASAP') THEN"                                         \
    " CASE WHEN substr(COALESCE(t.DateTimeArrived, ''), 1, 4) NOT IN ('', '0001')"                 \
    " AND substr(COALESCE(t.DateTimeDismissed, ''), 1, 4) IN ('', '0001')"                         \
    " THEN 'arrived' ELSE 'booked' END"                                                            \
    " WHEN t.AptStatus = 'Complete' THEN 'fulfilled' WHEN t.AptStatus = 'Broken' THEN 'noshow'"    \
    " WHEN t.AptStatus = 'Planned' THEN 'proposed' WHEN t.AptStatus = 'UnschedList'"               \
    " THEN 'pending' END)"

/* A provider's formal name ("Dr. Dana Sample, DDS"; hygienists without "Dr."), or NULL. */
#define PROV_DISPLAY(col)                                                                          \
    "(SELECT CASE WHEN p.IsSecondary = 0 THEN 'Dr. ' ELSE '' END || p.FName || ' ' || p.LName"     \
    " || CASE WHEN p.Suffix <> '' THEN ', ' || p.Suffix ELSE '' END FROM provider p"               \
    " WHERE p.office = t.office AND p.ProvNum = " col ")"

/* Columns of patient_select, in order. */
enum pcol {
    PC_NUM,
    PC_LNAME,
    PC_FNAME,
    PC_PREFERRED,
    PC_STATUS,
    PC_GENDER,
    PC_POSITION,
    PC_BIRTH,
    PC_ADDR,
    PC_ADDR2,
    PC_CITY,
    PC_STATE,
    PC_ZIP,
    PC_WIRELESS,
    PC_HOME,
    PC_WORK,
    PC_EMAIL,
    PC_PRIPROV,
    PC_PROVNAME,
    PC_CLINIC,
    PC_CLINICNAME,
    PC_LANG,
    PC_STAMP
};

static const char patient_select[] =
    "SELECT t.PatNum, t.LName, t.FName, t.Preferred, t.PatStatus, t.Gender, t.Position,"
    " t.Birthdate, t.Address, t.Address2, t.City, t.State, t.Zip, t.WirelessPhone, t.HmPhone,"
    " t.WkPhone, t.Email, t.PriProv, " PROV_DISPLAY(
        "t.PriProv") ", t.ClinicNum,"
                     " (SELECT c.Description FROM clinic c WHERE c.office = t.office"
                     " AND c.ClinicNum = t.ClinicNum), t.Language, t.DateTStamp"
                     " FROM patient t WHERE t.office = ?";

/* Columns of apt_select, in order. */
enum acol {
    AC_NUM,
    AC_PAT,
    AC_STATUS,
    AC_PATTERN,
    AC_CONFIRMED,
    AC_OP,
    AC_NOTE,
    AC_PROV,
    AC_HYG,
    AC_WHEN,
    AC_DESCRIPT,
    AC_STAMP,
    AC_ASAP,
    AC_PATNAME,
    AC_PROVNAME,
    AC_HYGNAME,
    AC_BASEDON
};

static const char apt_select[] =
    "SELECT t.AptNum, t.PatNum, " APT_FHIR_STATUS ", t.Pattern, t.Confirmed, t.Op, t.Note,"
    " t.ProvNum, t.ProvHyg, t.AptDateTime, t.ProcDescript, t.DateTStamp,"
    " (t.AptStatus = 'ASAP' OR t.Priority = 'ASAP'),"
    " (SELECT p.FName || ' ' || p.LName FROM patient p WHERE p.office = t.office"
    " AND p.PatNum = t.PatNum), " PROV_DISPLAY("t.ProvNum") ", " PROV_DISPLAY(
        "t.ProvHyg") ","
                     " (SELECT group_concat(pl.ProcNum) FROM procedurelog pl INDEXED BY proc_apt"
                     " WHERE pl.office = t.office"
                     " AND pl.AptNum = t.AptNum AND pl.ProcStatus = 'TP')"
                     " FROM appointment t WHERE t.office = ? AND " APT_FHIR_STATUS " IS NOT NULL";

/* ---- search parameters ------------------------------------------------------------------ */

enum ptype {
    P_ID,         /* a primary key: "N" or "system|N" */
    P_IDENT_PAT,  /* PatNum, or the SSN with system us-ssn */
    P_REF,        /* a reference "type/N" (any URL prefix) or "N" */
    P_PRACT,      /* practitioner: ProvNum or ProvHyg */
    P_STRING,     /* case-insensitive starts-with; :contains, :exact */
    P_ACTIVE,     /* true / false */
    P_APT_STATUS, /* an Appointment.status code */
    P_DATE        /* a prefixed date or dateTime */
};

struct param {
    const char *name;
    enum ptype type;
    const char *col;      /* SQL column or expression over alias t */
    const char *ref_type; /* P_REF / P_PRACT: the reference type ("patient") */
    int skip_none;        /* P_DATE: rows holding the 0001-01-01 sentinel never match */
};

static const struct param patient_params[] = {
    {"_id", P_ID, "t.PatNum", NULL, 0},
    {"identifier", P_IDENT_PAT, "t.PatNum", NULL, 0},
    {"family", P_STRING, "t.LName", NULL, 0},
    {"given", P_STRING, "t.FName", NULL, 0},
    {"active", P_ACTIVE, "t.PatStatus", NULL, 0},
    {"_lastUpdated", P_DATE, "t.DateTStamp", NULL, 0},
    {NULL, P_ID, NULL, NULL, 0},
};

static const struct param apt_params[] = {
    {"_id", P_ID, "t.AptNum", NULL, 0},
    {"identifier", P_ID, "t.AptNum", NULL, 0},
    {"patient", P_REF, "t.PatNum", "patient", 0},
    {"location", P_REF, "t.Op", "location", 0},
    {"practitioner", P_PRACT, NULL, "practitioner", 0},
    {"status", P_APT_STATUS, APT_FHIR_STATUS, NULL, 0},
    {"date", P_DATE, "t.AptDateTime", NULL, 1},
    {"_lastUpdated", P_DATE, "t.DateTStamp", NULL, 0},
    {NULL, P_ID, NULL, NULL, 0},
};

/* Appointment.status codes a search may name; the first six are the ones odsim produces. */
static const char *const apt_codes[] = {"proposed",   "pending",  "booked",    "arrived",
                                        "fulfilled",  "noshow",   "cancelled", "entered-in-error",
                                        "checked-in", "waitlist", NULL};

/* The query string of a request, in order. Pointers borrowed from the connection. */
struct args {
    const char *key[MAX_ARGS];
    const char *val[MAX_ARGS];
    int n;
    int overflow;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct args *g = cls;
    (void)kind;
    if (key == NULL)
        return MHD_YES;
    if (g->n >= MAX_ARGS) {
        g->overflow = 1;
        return MHD_NO;
    }
    g->key[g->n] = key;
    g->val[g->n] = value != NULL ? value : "";
    g->n++;
    return MHD_YES;
}

/* A search being built: " AND (...)" conditions and their bound texts. */
struct fq {
    struct sbuf where;               /* owned */
    struct dbv binds[MAX_BINDS + 1]; /* the office, then each '?' of where in order */
    char *owned[MAX_BINDS];          /* owned (util_free): the texts binds[1..] point to */
    int nbinds;
};

static void fq_init(struct fq *q, int office)
{
    memset(q, 0, sizeof(*q));
    q->binds[q->nbinds++] = DV_I(office);
}

static void fq_free(struct fq *q)
{
    sbuf_free(&q->where);
    for (int i = 0; i + 1 < q->nbinds; i++)
        util_free(q->owned[i]);
}

/* Bind a copy of text to the next '?'. ODSYNC_OK, ODSYNC_PARSE (too many; err says so) or
 * ODSYNC_NOMEM. */
static int fq_text(struct fq *q, const char *text, char *err, size_t err_len)
{
    char *copy;
    if (q->nbinds > MAX_BINDS) {
        util_fmt(err, err_len, "Too many search values (at most %d).", MAX_BINDS);
        return ODSYNC_PARSE;
    }
    copy = util_strdup(text);
    if (copy == NULL)
        return ODSYNC_NOMEM;
    q->owned[q->nbinds - 1] = copy;
    q->binds[q->nbinds++] = DV_T(copy);
    return ODSYNC_OK;
}

/* A positive integer from s (all of it). */
static int parse_id(const char *s, int64_t *out)
{
    return util_parse_i64(s, 1, INT64_MAX, out) == ODSYNC_OK;
}

/* The id of a reference to type: "patient/12", "Patient/12", ".../fhir/v2/patient/12" or
 * plain "12". 1 when valid. */
static int parse_ref(const char *v, const char *type, int64_t *out)
{
    const char *slash = strrchr(v, '/');
    size_t tlen = strlen(type);
    if (slash == NULL)
        return parse_id(v, out);
    if ((size_t)(slash - v) < tlen || strncasecmp(slash - tlen, type, tlen) != 0 ||
        (slash - tlen > v && slash[-(ptrdiff_t)tlen - 1] != '/'))
        return 0;
    return parse_id(slash + 1, out);
}

/* The inclusive range [lo, hi] ("yyyy-MM-dd HH:mm:ss") a FHIR date or dateTime covers:
 * yyyy, yyyy-MM, yyyy-MM-dd, yyyy-MM-ddTHH:mm, yyyy-MM-ddTHH:mm:ss[.fff]. Office-local: a
 * zone is refused. ODSYNC_OK or ODSYNC_PARSE (err says why). */
static int date_range(const char *v, char lo[CLOCK_DT_LEN], char hi[CLOCK_DT_LEN], char *err,
                      size_t err_len)
{
    size_t n = strlen(v), i;
    int64_t day, naive, y;
    int m, d;
    char buf[CLOCK_DT_LEN];

    if (n > 19) {
        i = 19;
        if (v[i] == '.')
            for (i++; isdigit((unsigned char)v[i]); i++)
                ;
        if (v[i] == 'Z' || v[i] == 'z' || v[i] == '+' || v[i] == '-' || v[i] == ' ') {
            util_fmt(err, err_len,
                     "Date-times are office-local without a time zone (yyyy-MM-ddTHH:mm:ss).");
            return ODSYNC_PARSE;
        }
        if (v[i] != '\0' || i == 20)
            goto bad;
        n = 19;
    }
    if (n == 4 || n == 7) {
        util_fmt(buf, sizeof(buf), "%.*s%s", (int)n, v, n == 4 ? "-01-01" : "-01");
        if (clock_parse_date(buf, &day) != ODSYNC_OK)
            goto bad;
        clock_civil_from_days(day, &y, &m, &d);
        if (n == 4 || m == 12) /* the first day after the year or month */
            day = clock_days_from_civil(y + 1, 1, 1);
        else
            day = clock_days_from_civil(y, m + 1, 1);
        clock_fmt_date(day - 1, hi);
        util_fmt(lo, CLOCK_DT_LEN, "%s 00:00:00", buf);
        util_fmt(hi + 10, CLOCK_DT_LEN - 10, " 23:59:59");
        return ODSYNC_OK;
    }
    if (n != 10 && n != 16 && n != 19)
        goto bad;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (n == 10) {
        if (clock_parse_date(buf, &day) != ODSYNC_OK)
            goto bad;
        util_fmt(lo, CLOCK_DT_LEN, "%s 00:00:00", buf);
        util_fmt(hi, CLOCK_DT_LEN, "%s 23:59:59", buf);
        return ODSYNC_OK;
    }
    if (buf[10] != 'T' && buf[10] != ' ')
        goto bad;
    buf[10] = ' ';
    util_fmt(lo, CLOCK_DT_LEN, "%s%s", buf, n == 16 ? ":00" : "");
    util_fmt(hi, CLOCK_DT_LEN, "%s%s", buf, n == 16 ? ":59" : "");
    if (clock_parse_datetime(lo, &naive) != ODSYNC_OK)
        goto bad;
    return ODSYNC_OK;
bad:
    util_fmt(err, err_len,
             "Improperly formatted date: expected yyyy-MM-dd or yyyy-MM-ddTHH:mm:ss.");
    return ODSYNC_PARSE;
}

/* A prefixed date value as a condition on col. */
static int date_cond(struct fq *q, const struct param *p, const char *v, char *err, size_t err_len)
{
    static const char *const prefixes[] = {"eq", "ne", "gt", "ge", "lt", "le", "sa", "eb", NULL};
    char lo[CLOCK_DT_LEN], hi[CLOCK_DT_LEN];
    const char *prefix = "eq", *bound = lo;
    int rc;

    if (isalpha((unsigned char)v[0])) {
        prefix = NULL;
        for (int i = 0; prefixes[i] != NULL && prefix == NULL; i++)
            if (strncmp(v, prefixes[i], 2) == 0)
                prefix = prefixes[i];
        if (prefix == NULL) {
            util_fmt(err, err_len, "Date parameter prefix '%.2s' not supported.", v);
            return ODSYNC_PARSE;
        }
        v += 2;
    }
    rc = date_range(v, lo, hi, err, err_len);
    if (rc != ODSYNC_OK)
        return rc;
    if (p->skip_none)
        sbuf_printf(&q->where, "substr(%s, 1, 4) <> '0001' AND ", p->col);
    if (strcmp(prefix, "eq") == 0 || strcmp(prefix, "ne") == 0) {
        sbuf_printf(&q->where, "%s(%s >= ? AND %s <= ?)", prefix[0] == 'n' ? "NOT " : "", p->col,
                    p->col);
        rc = fq_text(q, lo, err, err_len);
        return rc == ODSYNC_OK ? fq_text(q, hi, err, err_len) : rc;
    }
    /* gt and le compare with the end of the value's precision, ge and lt with its start. */
    if (strcmp(prefix, "gt") == 0 || strcmp(prefix, "sa") == 0) {
        sbuf_printf(&q->where, "%s > ?", p->col);
        bound = hi;
    } else if (strcmp(prefix, "ge") == 0) {
        sbuf_printf(&q->where, "%s >= ?", p->col);
    } else if (strcmp(prefix, "lt") == 0 || strcmp(prefix, "eb") == 0) {
        sbuf_printf(&q->where, "%s < ?", p->col);
    } else {
        sbuf_printf(&q->where, "%s <= ?", p->col);
        bound = hi;
    }
    return fq_text(q, bound, err, err_len);
}

/* One comma-separated value e of parameter p (with modifier mod) as a condition. */
static int elem_cond(struct fq *q, const struct param *p, const char *mod, const char *e, char *err,
                     size_t err_len)
{
    const char *bar = strchr(e, '|');
    int64_t id;

    switch (p->type) {
    case P_IDENT_PAT:
    case P_ID:
        if (p->type == P_IDENT_PAT && bar != NULL && (size_t)(bar - e) == strlen(SSN_SYSTEM) &&
            strncasecmp(e, SSN_SYSTEM, (size_t)(bar - e)) == 0) {
            sbuf_puts(&q->where, "(od_digits(t.SSN) = od_digits(?) AND od_digits(t.SSN) <> '')");
            return fq_text(q, bar + 1, err, err_len);
        }
        if (!parse_id(bar != NULL ? bar + 1 : e, &id))
            break;
        sbuf_printf(&q->where, "%s = %lld", p->col, (long long)id);
        return ODSYNC_OK;
    case P_REF:
        if (!parse_ref(e, p->ref_type, &id))
            break;
        sbuf_printf(&q->where, "%s = %lld", p->col, (long long)id);
        return ODSYNC_OK;
    case P_PRACT:
        if (!parse_ref(e, p->ref_type, &id))
            break;
        sbuf_printf(&q->where, "(t.ProvNum = %lld OR t.ProvHyg = %lld)", (long long)id,
                    (long long)id);
        return ODSYNC_OK;
    case P_STRING:
        if (strcasecmp(mod, "exact") == 0)
            sbuf_printf(&q->where, "%s = ?", p->col);
        else
            sbuf_printf(&q->where, "instr(lower(%s), lower(?)) %s", p->col,
                        mod[0] == '\0' ? "= 1" : "> 0");
        return fq_text(q, e, err, err_len);
    case P_ACTIVE:
        if (strcasecmp(e, "true") != 0 && strcasecmp(e, "false") != 0)
            break;
        sbuf_printf(&q->where, "%s %s 'Patient'", p->col, strcasecmp(e, "true") == 0 ? "=" : "<>");
        return ODSYNC_OK;
    case P_APT_STATUS:
        for (int i = 0; apt_codes[i] != NULL; i++) {
            if (strcmp(apt_codes[i], e) == 0) {
                sbuf_printf(&q->where, "%s = '%s'", p->col, apt_codes[i]);
                return ODSYNC_OK;
            }
        }
        util_fmt(err, err_len, "Improper appointment status: %.60s", e);
        return ODSYNC_PARSE;
    case P_DATE:
        return date_cond(q, p, e, err, err_len);
    }
    util_fmt(err, err_len, "Invalid value for search parameter %s: %.60s", p->name, e);
    return ODSYNC_PARSE;
}

/* Parameter p = value: its comma-separated values OR'ed into one " AND (...)". Empty values
 * are ignored, as FHIR asks. */
static int add_param(struct fq *q, const struct param *p, const char *mod, const char *value,
                     char *err, size_t err_len)
{
    char elem[MAX_ELEM];
    int first = 1, rc = ODSYNC_OK;

    if (mod[0] != '\0' && !(p->type == P_STRING &&
                            (strcasecmp(mod, "exact") == 0 || strcasecmp(mod, "contains") == 0))) {
        util_fmt(err, err_len, "Modifier :%.30s is not supported on %s.", mod, p->name);
        return ODSYNC_PARSE;
    }
    for (;;) {
        size_t n = strcspn(value, ",");
        if (n >= sizeof(elem)) {
            util_fmt(err, err_len, "A value of %s is too long.", p->name);
            return ODSYNC_PARSE;
        }
        memcpy(elem, value, n);
        elem[n] = '\0';
        if (n > 0) {
            sbuf_puts(&q->where, first ? " AND (" : " OR ");
            first = 0;
            rc = elem_cond(q, p, mod, elem, err, err_len);
            if (rc != ODSYNC_OK)
                return rc;
        }
        if (value[n] == '\0')
            break;
        value += n + 1;
    }
    if (!first)
        sbuf_puts(&q->where, ")");
    return rc;
}

/* Every known parameter of the request into q. ODSYNC_OK, ODSYNC_PARSE (err) or NOMEM.
 * Reads the query string itself (req_arg gives only the first value of a name, and a
 * repeated FHIR parameter is an AND: date=ge...&date=le...). */
static int parse_params(const struct req *r, const struct param *params, struct fq *q, char *err,
                        size_t err_len)
{
    struct args g;
    memset(&g, 0, sizeof(g));
    MHD_get_connection_values((struct MHD_Connection *)r->conn, MHD_GET_ARGUMENT_KIND, collect_arg,
                              &g);
    if (g.overflow) {
        util_fmt(err, err_len, "Too many search parameters (at most %d).", MAX_ARGS);
        return ODSYNC_PARSE;
    }
    for (int i = 0; i < g.n; i++) {
        const char *colon = strchr(g.key[i], ':');
        size_t blen = colon != NULL ? (size_t)(colon - g.key[i]) : strlen(g.key[i]);
        for (const struct param *p = params; p->name != NULL; p++) {
            if (strlen(p->name) != blen || strncasecmp(p->name, g.key[i], blen) != 0)
                continue;
            int rc = add_param(q, p, colon != NULL ? colon + 1 : "", g.val[i], err, err_len);
            if (rc != ODSYNC_OK)
                return rc;
            break;
        }
    }
    return q->where.failed ? ODSYNC_NOMEM : ODSYNC_OK;
}

/* ---- rendering ---------------------------------------------------------------------------- */

/* What every row of one answer shares. */
struct ctx {
    char practice[200]; /* PracticeTitle: managingOrganization display without a clinic */
    struct sbuf url;    /* owned: the fullUrl prefix as an open JSON string: "http://h/fhir/v2/x/ */
};

static const char *col_str(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "";
}

static int64_t col_int(sqlite3_stmt *st, int col)
{
    return sqlite3_column_int64(st, col);
}

/* 1 when s holds something other than white space. */
static int filled(const char *s)
{
    for (; *s != '\0'; s++)
        if (!isspace((unsigned char)*s))
            return 1;
    return 0;
}

/* 1 when a stored date or datetime is a real value (not "" or the 0001-01-01 sentinel). */
static int real_time(const char *s)
{
    return strlen(s) >= 10 && strncmp(s, "0001", 4) != 0;
}

/* ,"key":"value" */
static void put_str(struct sbuf *b, const char *key, const char *value)
{
    sbuf_printf(b, ",\"%s\":", key);
    json_str(b, value);
}

/* A stored "yyyy-MM-dd HH:mm:ss" as the JSON string "yyyy-MM-ddTHH:mm:ss" (zone-less). */
static void json_dt(struct sbuf *b, const char *dt)
{
    char out[CLOCK_DT_LEN];
    util_fmt(out, sizeof(out), "%s", dt);
    if (strlen(out) == 19 && out[10] == ' ')
        out[10] = 'T';
    json_str(b, out);
}

/* "first last" as a JSON string (a blank part left out with its space). */
static void json_full_name(struct sbuf *b, const char *first, const char *last)
{
    struct sbuf t = {0};
    if (filled(first))
        sbuf_puts(&t, first);
    if (filled(first) && filled(last))
        sbuf_puts(&t, " ");
    if (filled(last))
        sbuf_puts(&t, last);
    if (t.failed)
        b->failed = 1;
    json_str(b, t.data != NULL ? t.data : "");
    sbuf_free(&t);
}

/* One telecom entry when value is not blank; *n counts the entries written. */
static void telecom(struct sbuf *b, int *n, const char *system, const char *value, const char *use)
{
    if (!filled(value))
        return;
    sbuf_puts(b, *n == 0 ? ",\"telecom\":[" : ",");
    sbuf_printf(b, "{\"system\":\"%s\",\"value\":", system);
    json_str(b, value);
    sbuf_printf(b, ",\"use\":\"%s\",\"rank\":0}", use);
    (*n)++;
}

/* Patient.maritalStatus of a Position, or NULL. */
static const char *marital(const char *position, const char **display)
{
    static const char *const map[][3] = {{"Single", "S", "Never Married"},
                                         {"Married", "M", "Married"},
                                         {"Divorced", "D", "Divorced"},
                                         {"Widowed", "W", "Widowed"}};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(map); i++) {
        if (strcmp(map[i][0], position) == 0) {
            *display = map[i][2];
            return map[i][1];
        }
    }
    return NULL;
}

/* 1 when s is an ISO 639-2 code: three lower-case letters. */
static int iso639_2(const char *s)
{
    return strlen(s) == 3 && islower((unsigned char)s[0]) && islower((unsigned char)s[1]) &&
           islower((unsigned char)s[2]);
}

static void render_patient(struct sbuf *b, sqlite3_stmt *st, const struct ctx *c)
{
    long long num = (long long)col_int(st, PC_NUM);
    const char *status = col_str(st, PC_STATUS), *pref = col_str(st, PC_PREFERRED);
    const char *gender = col_str(st, PC_GENDER), *birth = col_str(st, PC_BIRTH);
    const char *lang = col_str(st, PC_LANG), *mdisplay = NULL;
    const char *mcode = marital(col_str(st, PC_POSITION), &mdisplay);
    const char *clinic_name = col_str(st, PC_CLINICNAME);
    int64_t clinic = col_int(st, PC_CLINIC), prov = col_int(st, PC_PRIPROV);
    int ntel = 0;

    sbuf_printf(b,
                "{\"resourceType\":\"Patient\",\"id\":\"%lld\",\"identifier\":[{\"use\":\"usual\","
                "\"type\":{\"text\":\"" LABEL_PATNUM "\"},\"value\":\"%lld\"}],\"active\":%s",
                num, num, strcmp(status, "Patient") == 0 ? "true" : "false");
    if (strcmp(status, "Deceased") == 0)
        sbuf_puts(b, ",\"deceasedBoolean\":true");

    /* name: the usual one (given is a string, as observed), then the nickname. */
    sbuf_puts(b, ",\"name\":[{\"use\":\"usual\",\"text\":");
    json_full_name(b, col_str(st, PC_FNAME), col_str(st, PC_LNAME));
    put_str(b, "family", col_str(st, PC_LNAME));
    put_str(b, "given", col_str(st, PC_FNAME));
    sbuf_puts(b, "}");
    if (filled(pref)) {
        sbuf_puts(b, ",{\"use\":\"nickname\",\"text\":");
        json_str(b, pref);
        put_str(b, "given", pref);
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "]");

    telecom(b, &ntel, "phone", col_str(st, PC_WIRELESS), "mobile");
    telecom(b, &ntel, "phone", col_str(st, PC_HOME), "home");
    telecom(b, &ntel, "phone", col_str(st, PC_WORK), "work");
    telecom(b, &ntel, "email", col_str(st, PC_EMAIL), "home");
    if (ntel > 0)
        sbuf_puts(b, "]");

    sbuf_printf(b, ",\"gender\":\"%s\"",
                strcmp(gender, "Male") == 0     ? "male"
                : strcmp(gender, "Female") == 0 ? "female"
                : strcmp(gender, "Other") == 0  ? "other"
                                                : "unknown");
    if (real_time(birth))
        sbuf_printf(b, ",\"birthDate\":\"%.10sT00:00:00\"", birth);

    sbuf_puts(b, ",\"address\":[{\"use\":\"home\",\"line\":[");
    json_str(b, col_str(st, PC_ADDR));
    if (filled(col_str(st, PC_ADDR2))) {
        sbuf_puts(b, ",");
        json_str(b, col_str(st, PC_ADDR2));
    }
    sbuf_puts(b, "]");
    if (filled(col_str(st, PC_CITY)))
        put_str(b, "city", col_str(st, PC_CITY));
    if (filled(col_str(st, PC_STATE)))
        put_str(b, "district", col_str(st, PC_STATE));
    if (filled(col_str(st, PC_ZIP)))
        put_str(b, "postalCode", col_str(st, PC_ZIP));
    sbuf_puts(b, "}]");

    if (mcode != NULL)
        sbuf_printf(b,
                    ",\"maritalStatus\":{\"coding\":[{\"system\":"
                    "\"http://hl7.org/fhir/marital-status\",\"code\":\"%s\",\"display\":\"%s\"}]}",
                    mcode, mdisplay);
    if (iso639_2(lang)) {
        sbuf_printf(b,
                    ",\"communication\":[{\"language\":{\"coding\":[{\"code\":\"%s\"}]},"
                    "\"preferred\":true}]",
                    lang);
    } else if (filled(lang)) { /* a custom language: its name only */
        sbuf_puts(b, ",\"communication\":[{\"language\":{\"text\":");
        json_str(b, lang);
        sbuf_puts(b, "},\"preferred\":true}]");
    }
    if (prov > 0) {
        sbuf_printf(b, ",\"careProvider\":[{\"reference\":\"practitioner/%lld\"", (long long)prov);
        put_str(b, "display", col_str(st, PC_PROVNAME));
        sbuf_puts(b, "}]");
    }
    sbuf_printf(b, ",\"managingOrganization\":{\"reference\":\"organization/%lld\"",
                (long long)clinic);
    put_str(b, "display", clinic > 0 && clinic_name[0] != '\0' ? clinic_name : c->practice);
    sbuf_puts(b, "},\"meta\":{\"lastUpdated\":");
    json_dt(b, col_str(st, PC_STAMP));
    sbuf_puts(b, "}}");
}

/* One participant: type code/display, actor reference and display, status. */
static void participant(struct sbuf *b, int first, const char *code, const char *code_display,
                        const char *ref_type, int64_t id, const char *display, const char *status)
{
    sbuf_printf(b,
                "%s{\"type\":[{\"coding\":[{\"system\":\"" PART_SYSTEM "\",\"code\":\"%s\","
                "\"display\":\"%s\"}]}],\"actor\":{\"reference\":\"%s/%lld\",\"display\":",
                first ? "" : ",", code, code_display, ref_type, (long long)id);
    json_str(b, display);
    sbuf_printf(b, "},\"required\":\"required\",\"status\":\"%s\"}", status);
}

static void render_appointment(struct sbuf *b, sqlite3_stmt *st, const struct ctx *c)
{
    long long num = (long long)col_int(st, AC_NUM);
    const char *when = col_str(st, AC_WHEN), *based = col_str(st, AC_BASEDON);
    int64_t minutes = (int64_t)strlen(col_str(st, AC_PATTERN)) * 5, naive, op, prov, hyg;
    char op_name[32];
    (void)c;

    sbuf_printf(b,
                "{\"resourceType\":\"Appointment\",\"id\":\"%lld\",\"identifier\":[{\"use\":"
                "\"usual\",\"type\":{\"text\":\"" LABEL_APTNUM "\"},\"value\":\"%lld\"}],"
                "\"status\":\"%s\",\"priority\":%d",
                num, num, col_str(st, AC_STATUS), col_int(st, AC_ASAP) ? 1 : 5);
    if (filled(col_str(st, AC_DESCRIPT)))
        put_str(b, "description", col_str(st, AC_DESCRIPT));
    if (real_time(when) && clock_parse_datetime(when, &naive) == ODSYNC_OK) {
        char end[CLOCK_DT_LEN];
        clock_fmt_datetime(naive + minutes * 60, end);
        sbuf_puts(b, ",\"start\":");
        json_dt(b, when);
        sbuf_puts(b, ",\"end\":");
        json_dt(b, end);
    }
    sbuf_printf(b, ",\"minutesDuration\":%lld", (long long)minutes);
    if (filled(col_str(st, AC_NOTE)))
        put_str(b, "comment", col_str(st, AC_NOTE));

    /* participant: the patient (accepted once confirmed), the provider (PPRF), the hygienist
     * (SPRF) and the operatory. */
    sbuf_puts(b, ",\"participant\":[");
    participant(b, 1, "PART", "Participation", "patient", col_int(st, AC_PAT),
                col_str(st, AC_PATNAME),
                col_int(st, AC_CONFIRMED) == 21 ? "accepted" : "needsaction");
    prov = col_int(st, AC_PROV);
    hyg = col_int(st, AC_HYG);
    op = col_int(st, AC_OP);
    if (prov > 0)
        participant(b, 0, "PPRF", "primary performer", "practitioner", prov,
                    col_str(st, AC_PROVNAME), "accepted");
    if (hyg > 0)
        participant(b, 0, "SPRF", "secondary performer", "practitioner", hyg,
                    col_str(st, AC_HYGNAME), "accepted");
    if (op > 0) {
        util_fmt(op_name, sizeof(op_name), "OP-%lld", (long long)op);
        participant(b, 0, "PART", "Participation", "location", op, op_name, "accepted");
    }
    sbuf_puts(b, "]");

    /* basedOn: the planned procedures (ServiceRequest) attached to it. */
    if (based[0] != '\0') {
        sbuf_puts(b, ",\"basedOn\":[");
        for (const char *p = based; *p != '\0';) {
            size_t n = strcspn(p, ",");
            sbuf_printf(b, "%s{\"reference\":\"servicerequest/%.*s\"}", p == based ? "" : ",",
                        (int)n, p);
            p += n + (p[n] == ',' ? 1 : 0);
        }
        sbuf_puts(b, "]");
    }
    sbuf_puts(b, ",\"reasonReference\":[],\"meta\":{\"lastUpdated\":");
    json_dt(b, col_str(st, AC_STAMP));
    sbuf_puts(b, "}}");
}

/* ---- handlers ----------------------------------------------------------------------------- */

/* One resource type. */
struct kind {
    const char *path;   /* "patient": the URL segment and the reference type */
    const char *select; /* SELECT ... WHERE t.office = ? [AND ...] */
    const char *pk;     /* "t.PatNum" */
    const struct param *params;
    void (*render)(struct sbuf *b, sqlite3_stmt *st, const struct ctx *c);
    const char *missing; /* diagnostics of a read's 404 */
};

static const struct kind patient_kind = {"patient",      patient_select, "t.PatNum",
                                         patient_params, render_patient, "Patient not found"};
static const struct kind apt_kind = {"appointment", apt_select,         "t.AptNum",
                                     apt_params,    render_appointment, "Appointment not found"};

/* Answer an OperationOutcome with one error issue. */
static void answer_outcome(struct answer *a, unsigned status, const char *code, const char *msg)
{
    struct sbuf b = {0};
    sbuf_printf(&b,
                "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
                "\"code\":\"%s\",\"diagnostics\":",
                code);
    json_str(&b, msg);
    sbuf_puts(&b, "}]}");
    answer_set(a, status, sbuf_take(&b));
}

/* Search (one == 0) or read (one = the id) resources of kind k. */
static void serve(struct sim *s, struct office *o, const struct req *r, const struct kind *k,
                  int64_t one, struct answer *a)
{
    struct fq q;
    struct ctx c;
    struct sbuf sql = {0}, prefix = {0}, entries = {0}, out = {0};
    sqlite3_stmt *st = NULL;
    char err[200];
    int rc, step, locked = 0;
    int64_t total = 0;

    fq_init(&q, o->num);
    memset(&c, 0, sizeof(c));
    err[0] = '\0';
    if (one > 0)
        sbuf_printf(&q.where, " AND %s = %lld", k->pk, (long long)one);
    rc = one > 0 ? ODSYNC_OK : parse_params(r, k->params, &q, err, sizeof(err));
    if (rc == ODSYNC_PARSE) {
        answer_outcome(a, 400, "invalid", err);
        goto cleanup;
    }
    sbuf_printf(&prefix, "http://%s/fhir/v2/%s/", r->host, k->path);
    json_str(&c.url, prefix.data != NULL ? prefix.data : "");
    if (c.url.len > 0 && !c.url.failed)
        c.url.data[--c.url.len] = '\0'; /* the closing quote: each row appends id + quote */
    sbuf_puts(&sql, k->select);
    if (q.where.data != NULL)
        sbuf_puts(&sql, q.where.data);
    if (s->shuffle) /* the seeded, stable order REST lists use (store.c) */
        sbuf_printf(&sql, " ORDER BY ((%s * 2654435761 + %llu) %% 4294967311), %s", k->pk,
                    (unsigned long long)(s->seed % 1000003), k->pk);
    else
        sbuf_printf(&sql, " ORDER BY %s", k->pk);
    if (rc != ODSYNC_OK || sql.failed || prefix.failed || c.url.failed) {
        answer_set(a, 500, NULL);
        goto cleanup;
    }

    pthread_mutex_lock(&s->db_lock);
    locked = 1;
    if (k == &patient_kind &&
        store_text(s,
                   "SELECT ValueString FROM pref WHERE office = ?1 AND PrefName = 'PracticeTitle'",
                   DBARGS(DV_I(o->num)), c.practice, sizeof(c.practice)) < 0) {
        answer_error(a, 500, DB_ERROR);
        goto cleanup;
    }
    st = store_prepare(s, sql.data, q.binds, q.nbinds);
    if (st == NULL) {
        answer_error(a, 500, DB_ERROR);
        goto cleanup;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (one > 0) {
            k->render(&out, st, &c);
        } else {
            sbuf_puts(&entries, total > 0 ? ",{\"fullUrl\":" : "{\"fullUrl\":");
            sbuf_append(&entries, c.url.data, c.url.len);
            sbuf_printf(&entries, "%lld\",\"resource\":", (long long)col_int(st, 0));
            k->render(&entries, st, &c);
            sbuf_puts(&entries, ",\"search\":{\"mode\":\"match\",\"score\":1.0}}");
        }
        total++;
    }
    if (step != SQLITE_DONE) {
        log_error(ODSIM_LOG, "sqlite: %s", sqlite3_errmsg(s->db));
        answer_error(a, 500, DB_ERROR);
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    pthread_mutex_unlock(&s->db_lock);
    locked = 0;

    if (one > 0 && total == 0) {
        answer_outcome(a, 404, "not-found", k->missing);
        goto cleanup;
    }
    if (one == 0) {
        sbuf_printf(&out, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":%lld",
                    (long long)total);
        if (total > 0) {
            sbuf_puts(&out, ",\"entry\":[");
            sbuf_append(&out, entries.data, entries.len);
            sbuf_puts(&out, "]");
        }
        sbuf_puts(&out, "}");
    }
    if (entries.failed)
        out.failed = 1;
    answer_set(a, 200, sbuf_take(&out)); /* NULL (no memory) becomes a 500 */

cleanup:
    sqlite3_finalize(st);
    if (locked)
        pthread_mutex_unlock(&s->db_lock);
    fq_free(&q);
    sbuf_free(&c.url);
    sbuf_free(&prefix);
    sbuf_free(&sql);
    sbuf_free(&entries);
    sbuf_free(&out);
}

void fhir_patient_search(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                         struct answer *a)
{
    (void)ids;
    serve(s, o, r, &patient_kind, 0, a);
}

void fhir_patient_read(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                       struct answer *a)
{
    if (ids[0] <= 0)
        answer_outcome(a, 404, "not-found", patient_kind.missing);
    else
        serve(s, o, r, &patient_kind, ids[0], a);
}

void fhir_appointment_search(struct sim *s, struct office *o, const struct req *r,
                             const int64_t *ids, struct answer *a)
{
    (void)ids;
    serve(s, o, r, &apt_kind, 0, a);
}

void fhir_appointment_read(struct sim *s, struct office *o, const struct req *r, const int64_t *ids,
                           struct answer *a)
{
    if (ids[0] <= 0)
        answer_outcome(a, 404, "not-found", apt_kind.missing);
    else
        serve(s, o, r, &apt_kind, ids[0], a);
}
