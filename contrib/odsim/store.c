/*
 * store.c: schema, query helpers, JSON rendering of rows and list queries.
 *
 * Enums are stored as their API names (TEXT), booleans as 0/1, dates as "yyyy-MM-dd" and
 * datetimes as "yyyy-MM-dd HH:mm:ss" text, so comparisons on them are plain text
 * comparisons and rows render without conversion tables. Every table but def and proccode
 * has an "office" column; primary keys are (office, PK), so each office numbers its own rows.
 */
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char schema_sql[] =
    "PRAGMA journal_mode = MEMORY;"
    "PRAGMA synchronous = OFF;"
    "PRAGMA temp_store = MEMORY;"
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS def (DefNum INTEGER PRIMARY KEY, Category INTEGER NOT NULL,"
    " ItemName TEXT NOT NULL, ItemValue TEXT NOT NULL DEFAULT '', ItemOrder INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS proccode (CodeNum INTEGER PRIMARY KEY, ProcCode TEXT NOT NULL,"
    " Descript TEXT NOT NULL, AbbrDesc TEXT NOT NULL, Fee TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS clinic (office INTEGER NOT NULL, ClinicNum INTEGER NOT NULL,"
    " Description TEXT, Address TEXT, Address2 TEXT, City TEXT, State TEXT, Zip TEXT,"
    " Phone TEXT, Abbr TEXT, IsHidden INTEGER, PRIMARY KEY (office, ClinicNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS provider (office INTEGER NOT NULL, ProvNum INTEGER NOT NULL,"
    " Abbr TEXT, LName TEXT, FName TEXT, MI TEXT, Suffix TEXT, IsSecondary INTEGER,"
    " IsHidden INTEGER, ProvStatus TEXT, DateTStamp TEXT,"
    " PRIMARY KEY (office, ProvNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS pref (office INTEGER NOT NULL, PrefNum INTEGER NOT NULL,"
    " PrefName TEXT, ValueString TEXT, PRIMARY KEY (office, PrefNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS recalltype (office INTEGER NOT NULL,"
    " RecallTypeNum INTEGER NOT NULL, Description TEXT, DefaultInterval TEXT, TimePattern TEXT,"
    " Procedures TEXT, AppendToSpecial INTEGER,"
    " PRIMARY KEY (office, RecallTypeNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS patient (office INTEGER NOT NULL, PatNum INTEGER NOT NULL,"
    " LName TEXT, FName TEXT, MiddleI TEXT, Preferred TEXT, PatStatus TEXT, Gender TEXT,"
    " Position TEXT, Birthdate TEXT, SSN TEXT, Address TEXT, Address2 TEXT, City TEXT,"
    " State TEXT, Zip TEXT, HmPhone TEXT, WkPhone TEXT, WirelessPhone TEXT, Guarantor INTEGER,"
    " Email TEXT, EstBalance REAL, PriProv INTEGER, SecProv INTEGER, FeeSched INTEGER,"
    " BillingType TEXT, ImageFolder TEXT, FamFinUrgNote TEXT, ChartNumber TEXT,"
    " MedicaidID TEXT, BalTotal REAL, EmployerNum INTEGER, DateFirstVisit TEXT,"
    " ClinicNum INTEGER, Premed INTEGER, Ward TEXT, PreferConfirmMethod TEXT,"
    " PreferContactMethod TEXT, PreferRecallMethod TEXT, Language TEXT, AdmitDate TEXT,"
    " SiteDesc TEXT, DateTStamp TEXT, SuperFamily INTEGER, TxtMsgOk TEXT, SecDateEntry TEXT,"
    " PRIMARY KEY (office, PatNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS recall (office INTEGER NOT NULL, RecallNum INTEGER NOT NULL,"
    " PatNum INTEGER, DateDue TEXT, DatePrevious TEXT, RecallInterval TEXT,"
    " RecallStatus INTEGER, Note TEXT, IsDisabled INTEGER, DateTStamp TEXT,"
    " RecallTypeNum INTEGER, DisableUntilBalance REAL, DisableUntilDate TEXT,"
    " DateScheduled TEXT, Priority TEXT, TimePatternOverride TEXT,"
    " PRIMARY KEY (office, RecallNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS appointment (office INTEGER NOT NULL, AptNum INTEGER NOT NULL,"
    " PatNum INTEGER, AptStatus TEXT, Pattern TEXT, Confirmed INTEGER, TimeLocked INTEGER,"
    " Op INTEGER, Note TEXT, ProvNum INTEGER, ProvHyg INTEGER, AptDateTime TEXT,"
    " NextAptNum INTEGER, UnschedStatus INTEGER, IsNewPatient INTEGER, ProcDescript TEXT,"
    " ClinicNum INTEGER, IsHygiene INTEGER, DateTStamp TEXT, DateTimeArrived TEXT,"
    " DateTimeSeated TEXT, DateTimeDismissed TEXT, InsPlan1 INTEGER, InsPlan2 INTEGER,"
    " DateTimeAskedToArrive TEXT, ColorOverride TEXT, AppointmentTypeNum INTEGER,"
    " SecUserNumEntry INTEGER, SecDateTEntry TEXT, Priority TEXT, PatternSecondary TEXT,"
    " ItemOrderPlanned INTEGER, PRIMARY KEY (office, AptNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS histappointment (office INTEGER NOT NULL,"
    " HistApptNum INTEGER NOT NULL, HistUserNum INTEGER, HistDateTStamp TEXT,"
    " HistApptAction TEXT, ApptSource TEXT,"
    " AptNum INTEGER, PatNum INTEGER, AptStatus TEXT, Pattern TEXT, Confirmed INTEGER,"
    " TimeLocked INTEGER, Op INTEGER, Note TEXT, ProvNum INTEGER, ProvHyg INTEGER,"
    " AptDateTime TEXT, NextAptNum INTEGER, UnschedStatus INTEGER, IsNewPatient INTEGER,"
    " ProcDescript TEXT, ClinicNum INTEGER, IsHygiene INTEGER, DateTStamp TEXT,"
    " DateTimeArrived TEXT, DateTimeSeated TEXT, DateTimeDismissed TEXT, InsPlan1 INTEGER,"
    " InsPlan2 INTEGER, DateTimeAskedToArrive TEXT, ColorOverride TEXT,"
    " AppointmentTypeNum INTEGER, SecUserNumEntry INTEGER, SecDateTEntry TEXT, Priority TEXT,"
    " PatternSecondary TEXT, ItemOrderPlanned INTEGER,"
    " PRIMARY KEY (office, HistApptNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS procedurelog (office INTEGER NOT NULL, ProcNum INTEGER NOT NULL,"
    " PatNum INTEGER, AptNum INTEGER, ProcDate TEXT, ProcFee TEXT, Surf TEXT, ToothNum TEXT,"
    " ToothRange TEXT, Priority INTEGER, ProcStatus TEXT, ProvNum INTEGER, Dx INTEGER,"
    " PlannedAptNum INTEGER, PlaceService TEXT, Prosthesis TEXT, DateOriginalProsth TEXT,"
    " ClaimNote TEXT, DateEntryC TEXT, ClinicNum INTEGER, CodeNum INTEGER, UnitQty INTEGER,"
    " BaseUnits INTEGER, DateTP TEXT, SiteNum INTEGER, HideGraphics INTEGER,"
    " CanadianTypeCodes TEXT, ProcTime TEXT, ProcTimeEnd TEXT, DateTStamp TEXT,"
    " Prognosis INTEGER, IsLocked INTEGER, BillingNote TEXT, Discount REAL,"
    " IsDateProsthEst INTEGER, SecDateEntry TEXT, PRIMARY KEY (office, ProcNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS commlog (office INTEGER NOT NULL, CommlogNum INTEGER NOT NULL,"
    " PatNum INTEGER, CommDateTime TEXT, CommType INTEGER, Note TEXT, Mode TEXT,"
    " SentOrReceived TEXT, UserNum INTEGER, DateTStamp TEXT, CommSource TEXT,"
    " ProgramNum INTEGER, DateTEntry TEXT, ReferralNum INTEGER,"
    " PRIMARY KEY (office, CommlogNum)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS subscription (office INTEGER NOT NULL,"
    " SubscriptionNum INTEGER NOT NULL, EndPointUrl TEXT, Workstation TEXT, CustomerKey TEXT,"
    " WatchTable TEXT, PollingSeconds INTEGER, UiEventType TEXT, DateTimeStart TEXT,"
    " DateTimeStop TEXT, Note TEXT, PRIMARY KEY (office, SubscriptionNum)) WITHOUT ROWID;";

static const char index_sql[] =
    "CREATE INDEX IF NOT EXISTS patient_ts ON patient (office, DateTStamp);"
    "CREATE INDEX IF NOT EXISTS patient_guar ON patient (office, Guarantor);"
    "CREATE INDEX IF NOT EXISTS recall_pat ON recall (office, PatNum);"
    "CREATE INDEX IF NOT EXISTS apt_ts ON appointment (office, DateTStamp);"
    "CREATE INDEX IF NOT EXISTS apt_pat ON appointment (office, PatNum);"
    "CREATE INDEX IF NOT EXISTS apt_dt ON appointment (office, AptDateTime);"
    "CREATE INDEX IF NOT EXISTS hist_apt ON histappointment (office, AptNum);"
    "CREATE INDEX IF NOT EXISTS hist_ts ON histappointment (office, HistDateTStamp);"
    "CREATE INDEX IF NOT EXISTS proc_ts ON procedurelog (office, DateTStamp);"
    "CREATE INDEX IF NOT EXISTS proc_pat ON procedurelog (office, PatNum);"
    "CREATE INDEX IF NOT EXISTS proc_apt ON procedurelog (office, AptNum);"
    "CREATE INDEX IF NOT EXISTS comm_pat ON commlog (office, PatNum);"
    "CREATE INDEX IF NOT EXISTS comm_ts ON commlog (office, DateTStamp);";

/* SQL od_digits(x): the decimal digits of x (phone matching). */
static void sql_digits(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const unsigned char *t = sqlite3_value_text(argv[0]);
    char buf[128];
    size_t o = 0;
    (void)argc;
    for (; t != NULL && *t != '\0' && o + 1 < sizeof(buf); t++) {
        if (*t >= '0' && *t <= '9')
            buf[o++] = (char)*t;
    }
    sqlite3_result_text(ctx, buf, (int)o, SQLITE_TRANSIENT);
}

int store_open(struct sim *s, const char *path)
{
    char *err = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = ODSYNC_IO;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        fprintf(stderr, "odsim: cannot open %s: %s\n", path,
                s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        goto cleanup;
    }
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_create_function(s->db, "od_digits", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            sql_digits, NULL, NULL);
    if (sqlite3_exec(s->db, schema_sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "odsim: %s: %s\n", path, err != NULL ? err : "schema failed");
        goto cleanup;
    }
    rc = ODSYNC_OK;
cleanup:
    sqlite3_free(err);
    return rc;
}

/* Defined with the list cursors below. */
static void cache_free(struct store_cache *c);

void store_close(struct sim *s)
{
    cache_free(s->cache); /* its statements go before the connection */
    s->cache = NULL;
    sqlite3_close(s->db);
    s->db = NULL;
}

int store_create_indexes(struct sim *s)
{
    return store_exec(s, index_sql);
}

int store_exec(struct sim *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) == SQLITE_OK)
        return ODSYNC_OK;
    log_error(ODSIM_LOG, "sqlite: %s", err != NULL ? err : sqlite3_errmsg(s->db));
    sqlite3_free(err);
    return ODSYNC_STORE;
}

/* Bind v[0..n) to st as ?1..?n (texts copied; a NULL text binds ""). Returns ODSYNC_OK, or
 * ODSYNC_STORE (logged). st stays the caller's in every case. */
static int bind_values(struct sim *s, sqlite3_stmt *st, const struct dbv *v, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = SQLITE_OK;
        if (v[i].t == 'i')
            rc = sqlite3_bind_int64(st, i + 1, v[i].i);
        else if (v[i].t == 't')
            rc = sqlite3_bind_text(st, i + 1, v[i].s != NULL ? v[i].s : "", -1, SQLITE_TRANSIENT);
        else if (v[i].t == 'r')
            rc = sqlite3_bind_double(st, i + 1, v[i].r);
        else
            rc = sqlite3_bind_null(st, i + 1);
        if (rc != SQLITE_OK) {
            log_error(ODSIM_LOG, "sqlite bind %d: %s", i + 1, sqlite3_errmsg(s->db));
            return ODSYNC_STORE;
        }
    }
    return ODSYNC_OK;
}

sqlite3_stmt *store_prepare(struct sim *s, const char *sql, const struct dbv *v, int n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error(ODSIM_LOG, "sqlite: %s: %.120s", sqlite3_errmsg(s->db), sql);
        return NULL;
    }
    if (bind_values(s, st, v, n) != ODSYNC_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

int64_t store_run(struct sim *s, const char *sql, const struct dbv *v, int n)
{
    sqlite3_stmt *st = store_prepare(s, sql, v, n);
    int64_t rc = -1;
    if (st == NULL)
        return -1;
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = sqlite3_changes64(s->db);
    else
        log_error(ODSIM_LOG, "sqlite: %s: %.120s", sqlite3_errmsg(s->db), sql);
    sqlite3_finalize(st);
    return rc;
}

int store_int(struct sim *s, const char *sql, const struct dbv *v, int n, int64_t *out)
{
    sqlite3_stmt *st = store_prepare(s, sql, v, n);
    int rc = -1, step;
    if (st == NULL)
        return -1;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = sqlite3_column_type(st, 0) != SQLITE_NULL;
        *out = sqlite3_column_int64(st, 0);
    } else if (step == SQLITE_DONE) {
        rc = 0;
    } else {
        log_error(ODSIM_LOG, "sqlite: %s: %.120s", sqlite3_errmsg(s->db), sql);
    }
    sqlite3_finalize(st);
    return rc;
}

int store_text(struct sim *s, const char *sql, const struct dbv *v, int n, char *out, size_t len)
{
    sqlite3_stmt *st = store_prepare(s, sql, v, n);
    int rc = -1, step;
    out[0] = '\0';
    if (st == NULL)
        return -1;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        rc = t != NULL;
        if (t != NULL)
            snprintf(out, len, "%s", (const char *)t);
    } else if (step == SQLITE_DONE) {
        rc = 0;
    } else {
        log_error(ODSIM_LOG, "sqlite: %s: %.120s", sqlite3_errmsg(s->db), sql);
    }
    sqlite3_finalize(st);
    return rc;
}

int64_t store_next_id(struct sim *s, const char *table, const char *pk, int office)
{
    char sql[160];
    int64_t max = 0;
    if (util_fmt(sql, sizeof(sql), "SELECT COALESCE(MAX(%s), 0) FROM %s WHERE office = ?1", pk,
                 table) != ODSYNC_OK ||
        store_int(s, sql, DBARGS(DV_I(office)), &max) < 0)
        return -1;
    return max + 1;
}

/* ---- JSON ------------------------------------------------------------------------------- */

/*
 * A write buffer in front of an sbuf: rendering a list page makes a few hundred small appends
 * per row, so they go to a stack buffer and reach the sbuf in large pieces. Borrowed pointers
 * only; a wbuf owns nothing beyond its array.
 */
struct wbuf {
    struct sbuf *out; /* borrowed: where w_flush appends */
    size_t len;       /* bytes waiting in buf */
    char buf[8192];
};

/* Move what w holds to w->out. Returns sbuf_append's result (ODSYNC_OK or ODSYNC_NOMEM). */
static int w_flush(struct wbuf *w)
{
    int rc = sbuf_append(w->out, w->buf, w->len);
    w->len = 0;
    return rc;
}

/* Append s[0..n) (borrowed) to w. */
static void w_put(struct wbuf *w, const char *s, size_t n)
{
    if (n > sizeof(w->buf) - w->len) {
        w_flush(w);
        if (n > sizeof(w->buf)) {
            sbuf_append(w->out, s, n);
            return;
        }
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* Append the byte ch to w. */
static void w_ch(struct wbuf *w, char ch)
{
    if (w->len == sizeof(w->buf))
        w_flush(w);
    w->buf[w->len++] = ch;
}

/* 1 for a byte a JSON string holds as is: not NUL, a control character, '"' or '\\' (bytes
 * 0x7f and up pass through unchanged). */
#define JSON_PLAIN(c) ((c) >= 0x20 && (c) != '"' && (c) != '\\')

/* Append s (borrowed; NULL is "") as a JSON string: '"' and '\' escaped, CR, LF and CRLF as
 * one space, other control characters as \u00XX. */
static void w_str(struct wbuf *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    const unsigned char *run = p;
    char esc[6];
    w_ch(w, '"');
    for (;;) {
        while (JSON_PLAIN(*p))
            p++;
        w_put(w, (const char *)run, (size_t)(p - run));
        if (*p == '\0')
            break;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            w_put(w, esc, 2);
        } else if (*p == '\r' || *p == '\n') {
            w_ch(w, ' ');
            if (*p == '\r' && p[1] == '\n')
                p++;
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            w_put(w, esc, 6);
        }
        p++;
        run = p;
    }
    w_ch(w, '"');
}

/* Append v the way .NET writes a double (see json_real). */
static void w_real(struct wbuf *w, double v)
{
    char num[40];
    int n;
    if (!isfinite(v))
        v = 0.0;
    n = snprintf(num, sizeof(num), "%.15g", v); /* at most 23 characters */
    if (n < 0 || (size_t)n >= sizeof(num)) {    /* cannot happen */
        n = 0;
        num[0] = '\0';
    }
    w_put(w, num, (size_t)n);
    if (strpbrk(num, ".eE") == NULL)
        w_put(w, ".0", 2);
}

/* Append v in decimal (what "%lld" writes), without printf. */
static void w_i64(struct wbuf *w, int64_t v)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    w_put(w, p, (size_t)(buf + sizeof(buf) - p));
}

int json_str(struct sbuf *b, const char *s)
{
    struct wbuf w;
    w.out = b;
    w.len = 0;
    w_str(&w, s);
    return w_flush(&w);
}

int json_real(struct sbuf *b, double v)
{
    struct wbuf w;
    w.out = b;
    w.len = 0;
    w_real(&w, v);
    return w_flush(&w);
}

char *json_string_body(const char *msg)
{
    struct sbuf b = {0};
    json_str(&b, msg);
    return sbuf_take(&b);
}

/* ---- resources -------------------------------------------------------------------------- */

enum ftype {
    FT_INT,    /* integer column -> number */
    FT_STR,    /* text column -> string (CR/LF -> space) */
    FT_BOOL,   /* 0/1 column -> "true"/"false" */
    FT_REAL,   /* real column -> number with a decimal point */
    FT_INTSTR, /* integer column -> string ("239") */
    FT_NOW     /* serverDateTime: the request's office time, not a column */
};

struct field {
    const char *name; /* JSON key, in API order */
    enum ftype type;
    const char *expr; /* SQL expression over alias t */
};

struct resource {
    const char *from;           /* "patient t" */
    const char *pk;             /* "t.PatNum" */
    const struct field *fields; /* in output order */
    size_t nfields;
    char *select; /* owned: built by store_resources_init */
    char *keys;   /* owned: ',"Name":' of every field back to back (store_resources_init) */
    size_t *koff; /* owned: nfields + 1 offsets into keys; field i is keys[koff[i]..koff[i+1]) */
    int pk_col;   /* the column holding pk, or -1 (then lists never seek by key) */
};

#define PROV_ABBR(col)                                                                             \
    "COALESCE((SELECT p.Abbr FROM provider p WHERE p.office = t.office AND p.ProvNum = t." col     \
    "), '')"
#define CLINIC_ABBR                                                                                \
    "COALESCE((SELECT c.Abbr FROM clinic c WHERE c.office = t.office"                              \
    " AND c.ClinicNum = t.ClinicNum), '')"
#define DEF_NAME(col) "COALESCE((SELECT d.ItemName FROM def d WHERE d.DefNum = t." col "), '')"
#define NOW_FIELD                                                                                  \
    {                                                                                              \
        "serverDateTime", FT_NOW, "NULL"                                                           \
    }

static const struct field patient_fields[] = {
    NOW_FIELD,
    {"PatNum", FT_INT, "t.PatNum"},
    {"LName", FT_STR, "t.LName"},
    {"FName", FT_STR, "t.FName"},
    {"MiddleI", FT_STR, "t.MiddleI"},
    {"Preferred", FT_STR, "t.Preferred"},
    {"PatStatus", FT_STR, "t.PatStatus"},
    {"Gender", FT_STR, "t.Gender"},
    {"Position", FT_STR, "t.Position"},
    {"Birthdate", FT_STR, "t.Birthdate"},
    {"SSN", FT_STR, "t.SSN"},
    {"Address", FT_STR, "t.Address"},
    {"Address2", FT_STR, "t.Address2"},
    {"City", FT_STR, "t.City"},
    {"State", FT_STR, "t.State"},
    {"Zip", FT_STR, "t.Zip"},
    {"HmPhone", FT_STR, "t.HmPhone"},
    {"WkPhone", FT_STR, "t.WkPhone"},
    {"WirelessPhone", FT_STR, "t.WirelessPhone"},
    {"Guarantor", FT_INT, "t.Guarantor"},
    {"Email", FT_STR, "t.Email"},
    {"EstBalance", FT_REAL, "t.EstBalance"},
    {"PriProv", FT_INT, "t.PriProv"},
    {"priProvAbbr", FT_STR, PROV_ABBR("PriProv")},
    {"SecProv", FT_INT, "t.SecProv"},
    {"secProvAbbr", FT_STR, PROV_ABBR("SecProv")},
    {"FeeSched", FT_INT, "t.FeeSched"},
    {"BillingType", FT_STR, "t.BillingType"},
    {"ImageFolder", FT_STR, "t.ImageFolder"},
    {"FamFinUrgNote", FT_STR, "t.FamFinUrgNote"},
    {"ChartNumber", FT_STR, "t.ChartNumber"},
    {"MedicaidID", FT_STR, "t.MedicaidID"},
    {"BalTotal", FT_REAL, "t.BalTotal"},
    {"EmployerNum", FT_INT, "t.EmployerNum"},
    {"DateFirstVisit", FT_STR, "t.DateFirstVisit"},
    {"ClinicNum", FT_INT, "t.ClinicNum"},
    {"clinicAbbr", FT_STR, CLINIC_ABBR},
    {"Premed", FT_BOOL, "t.Premed"},
    {"Ward", FT_STR, "t.Ward"},
    {"PreferConfirmMethod", FT_STR, "t.PreferConfirmMethod"},
    {"PreferContactMethod", FT_STR, "t.PreferContactMethod"},
    {"PreferRecallMethod", FT_STR, "t.PreferRecallMethod"},
    {"Language", FT_STR, "t.Language"},
    {"AdmitDate", FT_STR, "t.AdmitDate"},
    {"siteDesc", FT_STR, "t.SiteDesc"},
    {"DateTStamp", FT_STR, "t.DateTStamp"},
    {"SuperFamily", FT_INT, "t.SuperFamily"},
    {"TxtMsgOk", FT_STR, "t.TxtMsgOk"},
    {"SecDateEntry", FT_STR, "t.SecDateEntry"},
};

static const struct field patient_multi_fields[] = {
    {"PatNum", FT_INT, "t.PatNum"},
    {"LName", FT_STR, "t.LName"},
    {"FName", FT_STR, "t.FName"},
    {"MiddleI", FT_STR, "t.MiddleI"},
    {"Preferred", FT_STR, "t.Preferred"},
    {"PatStatus", FT_STR, "t.PatStatus"},
    {"Birthdate", FT_STR, "t.Birthdate"},
    {"SSN", FT_STR, "t.SSN"},
    {"Address", FT_STR, "t.Address"},
    {"Address2", FT_STR, "t.Address2"},
    {"City", FT_STR, "t.City"},
    {"State", FT_STR, "t.State"},
    {"Zip", FT_STR, "t.Zip"},
    {"HmPhone", FT_STR, "t.HmPhone"},
    {"WkPhone", FT_STR, "t.WkPhone"},
    {"WirelessPhone", FT_STR, "t.WirelessPhone"},
    {"Email", FT_STR, "t.Email"},
    {"priProvAbbr", FT_STR, PROV_ABBR("PriProv")},
    {"secProvAbbr", FT_STR, PROV_ABBR("SecProv")},
    {"BillingType", FT_STR, "t.BillingType"},
    {"ChartNumber", FT_STR, "t.ChartNumber"},
    {"ClinicNum", FT_INT, "t.ClinicNum"},
    {"clinicAbbr", FT_STR, CLINIC_ABBR},
    {"siteDesc", FT_STR, "t.SiteDesc"},
    {"TxtMsgOk", FT_STR, "t.TxtMsgOk"},
};

/* Appointment fields after serverDateTime; histappointment repeats them. */
#define APT_FIELDS                                                                                 \
    {"AptNum", FT_INT, "t.AptNum"}, {"PatNum", FT_INT, "t.PatNum"},                                \
        {"AptStatus", FT_STR, "t.AptStatus"}, {"Pattern", FT_STR, "t.Pattern"},                    \
        {"Confirmed", FT_INT, "t.Confirmed"}, {"confirmed", FT_STR, DEF_NAME("Confirmed")},        \
        {"TimeLocked", FT_BOOL, "t.TimeLocked"}, {"Op", FT_INT, "t.Op"},                           \
        {"Note", FT_STR, "t.Note"}, {"ProvNum", FT_INT, "t.ProvNum"},                              \
        {"provAbbr", FT_STR, PROV_ABBR("ProvNum")}, {"ProvHyg", FT_INT, "t.ProvHyg"},              \
        {"AptDateTime", FT_STR, "t.AptDateTime"}, {"NextAptNum", FT_INT, "t.NextAptNum"},          \
        {"UnschedStatus", FT_INT, "t.UnschedStatus"},                                              \
        {"unschedStatus", FT_STR, DEF_NAME("UnschedStatus")},                                      \
        {"IsNewPatient", FT_BOOL, "t.IsNewPatient"}, {"ProcDescript", FT_STR, "t.ProcDescript"},   \
        {"ClinicNum", FT_INT, "t.ClinicNum"}, {"IsHygiene", FT_BOOL, "t.IsHygiene"},               \
        {"DateTStamp", FT_STR, "t.DateTStamp"}, {"DateTimeArrived", FT_STR, "t.DateTimeArrived"},  \
        {"DateTimeSeated", FT_STR, "t.DateTimeSeated"},                                            \
        {"DateTimeDismissed", FT_STR, "t.DateTimeDismissed"}, {"InsPlan1", FT_INT, "t.InsPlan1"},  \
        {"InsPlan2", FT_INT, "t.InsPlan2"},                                                        \
        {"DateTimeAskedToArrive", FT_STR, "t.DateTimeAskedToArrive"},                              \
        {"colorOverride", FT_STR, "t.ColorOverride"},                                              \
        {"AppointmentTypeNum", FT_INT, "t.AppointmentTypeNum"},                                    \
        {"SecUserNumEntry", FT_INT, "t.SecUserNumEntry"},                                          \
        {"SecDateTEntry", FT_STR, "t.SecDateTEntry"}, {"Priority", FT_STR, "t.Priority"},          \
        {"PatternSecondary", FT_STR, "t.PatternSecondary"},                                        \
    {                                                                                              \
        "ItemOrderPlanned", FT_INT, "t.ItemOrderPlanned"                                           \
    }

static const struct field appointment_fields[] = {NOW_FIELD, APT_FIELDS};

static const struct field hist_fields[] = {
    {"HistApptNum", FT_INT, "t.HistApptNum"},       {"HistUserNum", FT_INT, "t.HistUserNum"},
    {"HistDateTStamp", FT_STR, "t.HistDateTStamp"}, {"HistApptAction", FT_STR, "t.HistApptAction"},
    {"ApptSource", FT_STR, "t.ApptSource"},         APT_FIELDS,
};

static const struct field recall_fields[] = {
    {"RecallNum", FT_INT, "t.RecallNum"},
    {"PatNum", FT_INT, "t.PatNum"},
    {"DateDue", FT_STR, "t.DateDue"},
    {"DatePrevious", FT_STR, "t.DatePrevious"},
    {"RecallInterval", FT_STR, "t.RecallInterval"},
    {"RecallStatus", FT_INT, "t.RecallStatus"},
    {"recallStatus", FT_STR, DEF_NAME("RecallStatus")},
    {"Note", FT_STR, "t.Note"},
    {"IsDisabled", FT_BOOL, "t.IsDisabled"},
    {"DateTStamp", FT_STR, "t.DateTStamp"},
    {"RecallTypeNum", FT_INT, "t.RecallTypeNum"},
    {"DisableUntilBalance", FT_REAL, "t.DisableUntilBalance"},
    {"DisableUntilDate", FT_STR, "t.DisableUntilDate"},
    {"DateScheduled", FT_STR, "t.DateScheduled"},
    {"Priority", FT_STR, "t.Priority"},
    {"TimePatternOverride", FT_STR, "t.TimePatternOverride"},
};

static const struct field recalltype_fields[] = {
    {"RecallTypeNum", FT_INT, "t.RecallTypeNum"},
    {"Description", FT_STR, "t.Description"},
    {"DefaultInterval", FT_STR, "t.DefaultInterval"},
    {"TimePattern", FT_STR, "t.TimePattern"},
    {"Procedures", FT_STR, "t.Procedures"},
    {"AppendToSpecial", FT_BOOL, "t.AppendToSpecial"},
};

static const struct field proc_fields[] = {
    {"ProcNum", FT_INT, "t.ProcNum"},
    {"PatNum", FT_INT, "t.PatNum"},
    {"AptNum", FT_INT, "t.AptNum"},
    {"ProcDate", FT_STR, "t.ProcDate"},
    {"ProcFee", FT_STR, "t.ProcFee"},
    {"Surf", FT_STR, "t.Surf"},
    {"ToothNum", FT_STR, "t.ToothNum"},
    {"ToothRange", FT_STR, "t.ToothRange"},
    {"Priority", FT_INT, "t.Priority"},
    {"priority", FT_STR, DEF_NAME("Priority")},
    {"ProcStatus", FT_STR, "t.ProcStatus"},
    {"ProvNum", FT_INT, "t.ProvNum"},
    {"provAbbr", FT_STR, PROV_ABBR("ProvNum")},
    {"Dx", FT_INT, "t.Dx"},
    {"dxName", FT_STR, DEF_NAME("Dx")},
    {"PlannedAptNum", FT_INT, "t.PlannedAptNum"},
    {"PlaceService", FT_STR, "t.PlaceService"},
    {"Prosthesis", FT_STR, "t.Prosthesis"},
    {"DateOriginalProsth", FT_STR, "t.DateOriginalProsth"},
    {"ClaimNote", FT_STR, "t.ClaimNote"},
    {"DateEntryC", FT_STR, "t.DateEntryC"},
    {"ClinicNum", FT_INT, "t.ClinicNum"},
    {"CodeNum", FT_INT, "t.CodeNum"},
    {"procCode", FT_STR,
     "COALESCE((SELECT pc.ProcCode FROM proccode pc WHERE pc.CodeNum = t.CodeNum), '')"},
    {"descript", FT_STR,
     "COALESCE((SELECT pc.Descript FROM proccode pc WHERE pc.CodeNum = t.CodeNum), '')"},
    {"UnitQty", FT_INT, "t.UnitQty"},
    {"BaseUnits", FT_INT, "t.BaseUnits"},
    {"DateTP", FT_STR, "t.DateTP"},
    {"SiteNum", FT_INT, "t.SiteNum"},
    {"HideGraphics", FT_BOOL, "t.HideGraphics"},
    {"CanadianTypeCodes", FT_STR, "t.CanadianTypeCodes"},
    {"ProcTime", FT_STR, "t.ProcTime"},
    {"ProcTimeEnd", FT_STR, "t.ProcTimeEnd"},
    {"DateTStamp", FT_STR, "t.DateTStamp"},
    {"Prognosis", FT_INT, "t.Prognosis"},
    {"IsLocked", FT_BOOL, "t.IsLocked"},
    {"BillingNote", FT_STR, "t.BillingNote"},
    {"Discount", FT_REAL, "t.Discount"},
    {"IsDateProsthEst", FT_BOOL, "t.IsDateProsthEst"},
    {"SecDateEntry", FT_STR, "t.SecDateEntry"},
    NOW_FIELD,
};

static const struct field clinic_fields[] = {
    {"ClinicNum", FT_INT, "t.ClinicNum"},
    {"Description", FT_STR, "t.Description"},
    {"Address", FT_STR, "t.Address"},
    {"Address2", FT_STR, "t.Address2"},
    {"City", FT_STR, "t.City"},
    {"State", FT_STR, "t.State"},
    {"Zip", FT_STR, "t.Zip"},
    {"BillingAddress", FT_STR, "''"},
    {"BillingAddress2", FT_STR, "''"},
    {"BillingCity", FT_STR, "''"},
    {"BillingState", FT_STR, "''"},
    {"BillingZip", FT_STR, "''"},
    {"PayToAddress", FT_STR, "''"},
    {"PayToAddress2", FT_STR, "''"},
    {"PayToCity", FT_STR, "''"},
    {"PayToState", FT_STR, "''"},
    {"PayToZip", FT_STR, "''"},
    {"Phone", FT_STR, "t.Phone"},
    {"Abbr", FT_STR, "t.Abbr"},
    {"IsHidden", FT_BOOL, "t.IsHidden"},
};

static const struct field pref_fields[] = {
    {"PrefNum", FT_INT, "t.PrefNum"},
    {"PrefName", FT_STR, "t.PrefName"},
    {"ValueString", FT_STR, "t.ValueString"},
};

static const struct field commlog_fields[] = {
    {"CommlogNum", FT_INT, "t.CommlogNum"},
    {"PatNum", FT_INT, "t.PatNum"},
    {"CommDateTime", FT_STR, "t.CommDateTime"},
    {"CommType", FT_INTSTR, "t.CommType"},
    {"commType", FT_STR, DEF_NAME("CommType")},
    {"Note", FT_STR, "t.Note"},
    {"Mode_", FT_STR, "t.Mode"},
    {"SentOrReceived", FT_STR, "t.SentOrReceived"},
    {"UserNum", FT_INT, "t.UserNum"},
    {"DateTStamp", FT_STR, "t.DateTStamp"},
    {"CommSource", FT_STR, "t.CommSource"},
    {"ProgramNum", FT_INT, "t.ProgramNum"},
    {"DateTEntry", FT_STR, "t.DateTEntry"},
    {"ReferralNum", FT_INT, "t.ReferralNum"},
};

static const struct field subscription_fields[] = {
    {"SubscriptionNum", FT_INT, "t.SubscriptionNum"},
    {"EndPointUrl", FT_STR, "t.EndPointUrl"},
    {"Workstation", FT_STR, "t.Workstation"},
    {"CustomerKey", FT_STR, "t.CustomerKey"},
    {"WatchTable", FT_STR, "t.WatchTable"},
    {"PollingSeconds", FT_INT, "t.PollingSeconds"},
    {"UiEventType", FT_STR, "t.UiEventType"},
    {"DateTimeStart", FT_STR, "t.DateTimeStart"},
    {"DateTimeStop", FT_STR, "t.DateTimeStop"},
    {"Note", FT_STR, "t.Note"},
};

static const struct field provider_fields[] = {
    NOW_FIELD,
    {"ProvNum", FT_INT, "t.ProvNum"},
    {"Abbr", FT_STR, "t.Abbr"},
    {"LName", FT_STR, "t.LName"},
    {"FName", FT_STR, "t.FName"},
    {"MI", FT_STR, "t.MI"},
    {"Suffix", FT_STR, "t.Suffix"},
    {"IsSecondary", FT_BOOL, "t.IsSecondary"},
    {"IsHidden", FT_BOOL, "t.IsHidden"},
    {"ProvStatus", FT_STR, "t.ProvStatus"},
    {"DateTStamp", FT_STR, "t.DateTStamp"},
};

#define RES(from, pk, f)                                                                           \
    {                                                                                              \
        from, pk, f, UTIL_ARRAY_LEN(f), NULL, NULL, NULL, -1                                       \
    }

static struct resource resources[R_COUNT] = {
    [R_PATIENT] = RES("patient t", "t.PatNum", patient_fields),
    [R_PATIENT_MULTI] = RES("patient t", "t.PatNum", patient_multi_fields),
    [R_APPOINTMENT] = RES("appointment t", "t.AptNum", appointment_fields),
    [R_HIST] = RES("histappointment t", "t.HistApptNum", hist_fields),
    [R_RECALL] = RES("recall t", "t.RecallNum", recall_fields),
    [R_RECALLTYPE] = RES("recalltype t", "t.RecallTypeNum", recalltype_fields),
    [R_PROC] = RES("procedurelog t", "t.ProcNum", proc_fields),
    [R_CLINIC] = RES("clinic t", "t.ClinicNum", clinic_fields),
    [R_PREF] = RES("pref t", "t.PrefNum", pref_fields),
    [R_COMMLOG] = RES("commlog t", "t.CommlogNum", commlog_fields),
    [R_SUBSCRIPTION] = RES("subscription t", "t.SubscriptionNum", subscription_fields),
    [R_PROVIDER] = RES("provider t", "t.ProvNum", provider_fields),
};

int store_resources_init(void)
{
    for (int r = 0; r < R_COUNT; r++) {
        struct resource *res = &resources[r];
        struct sbuf b = {0}, k = {0};
        res->koff = util_calloc(res->nfields + 1, sizeof(*res->koff));
        if (res->koff == NULL)
            return ODSYNC_NOMEM; /* what earlier rounds built, store_resources_free frees */
        res->pk_col = -1;
        sbuf_puts(&b, "SELECT ");
        for (size_t i = 0; i < res->nfields; i++) {
            sbuf_printf(&b, "%s%s", i > 0 ? ", " : "", res->fields[i].expr);
            res->koff[i] = k.len;
            sbuf_printf(&k, ",\"%s\":", res->fields[i].name);
            if (res->pk_col < 0 && strcmp(res->fields[i].expr, res->pk) == 0)
                res->pk_col = (int)i;
        }
        res->koff[res->nfields] = k.len;
        sbuf_printf(&b, " FROM %s WHERE t.office = ?", res->from);
        res->select = sbuf_take(&b);
        res->keys = sbuf_take(&k);
        if (res->select == NULL || res->keys == NULL)
            return ODSYNC_NOMEM;
    }
    return ODSYNC_OK;
}

void store_resources_free(void)
{
    for (int r = 0; r < R_COUNT; r++) {
        util_free(resources[r].select);
        util_free(resources[r].keys);
        util_free(resources[r].koff);
        resources[r].select = NULL;
        resources[r].keys = NULL;
        resources[r].koff = NULL;
    }
}

/* Append the current row of st (a resource SELECT) to w as a JSON object. Integers, strings
 * and booleans are written without printf; reals as json_real writes them. */
static void render_row(struct wbuf *w, const struct resource *res, sqlite3_stmt *st,
                       const char *now)
{
    size_t skip = 1; /* the first key goes without its leading comma */
    w_ch(w, '{');
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        int col = (int)i;
        if (f->type == FT_NOW && now == NULL)
            continue;
        w_put(w, res->keys + res->koff[i] + skip, res->koff[i + 1] - res->koff[i] - skip);
        skip = 0;
        switch (f->type) {
        case FT_INT:
            w_i64(w, (int64_t)sqlite3_column_int64(st, col));
            break;
        case FT_STR:
            w_str(w, (const char *)sqlite3_column_text(st, col));
            break;
        case FT_BOOL:
            if (sqlite3_column_int64(st, col) != 0)
                w_put(w, "\"true\"", 6);
            else
                w_put(w, "\"false\"", 7);
            break;
        case FT_REAL:
            w_real(w, sqlite3_column_double(st, col));
            break;
        case FT_INTSTR:
            w_ch(w, '"');
            w_i64(w, (int64_t)sqlite3_column_int64(st, col));
            w_ch(w, '"');
            break;
        case FT_NOW:
            w_str(w, now);
            break;
        }
    }
    w_ch(w, '}');
}

void query_init(struct query *q, enum res_id res, int office)
{
    memset(q, 0, sizeof(*q));
    q->res = res;
    q->binds[q->nbinds++] = DV_I(office);
}

void query_and(struct query *q, const char *cond, struct dbv v)
{
    if (v.t != 'n') {
        if (q->nbinds >= (int)UTIL_ARRAY_LEN(q->binds)) {
            q->failed = 1;
            return;
        }
        q->binds[q->nbinds++] = v;
    }
    sbuf_printf(&q->where, " AND %s", cond);
}

void query_free(struct query *q)
{
    sbuf_free(&q->where);
}

/* ---- list cursors and cached statements ------------------------------------------------ */

/*
 * A full read pages through a list with Limit/Offset, and "LIMIT ? OFFSET ?" makes SQLite
 * step over every skipped row: quadratic over the list. So each primary-key-ordered page
 * served leaves a cursor: the list (resource, conditions, values), the offset just after
 * the page and the last row's primary key. A request for the same list at exactly that
 * offset, with the data unchanged since, reads "pk > last" instead of skipping rows: the same
 * rows in the same order, since the rows before the offset are exactly those with a primary
 * key up to the last one. "Unchanged" is sqlite3_total_changes64(): every INSERT, UPDATE and
 * DELETE on the connection (odsim's only one) moves it, whichever module runs it; inside a
 * transaction or savepoint (which a rollback could undo) cursors are neither used nor made.
 * Everything else (another offset, another order, --shuffle, no limit) runs with OFFSET.
 */
#define CURSOR_SLOTS 16
#define STMT_SLOTS   16

/* Where one pk-ordered list page ended. */
struct list_cursor {
    char *key;           /* owned (util_free): list_key() bytes; NULL for an unused slot */
    size_t keylen;       /* bytes in key */
    int64_t gen;         /* sqlite3_total_changes64() when recorded */
    int64_t next_offset; /* the offset just after the page served */
    int64_t last_pk;     /* the primary key of that page's last row */
    uint64_t used;       /* store_cache.tick at the last use (least recently used goes) */
};

/* A prepared list statement kept for the next request with the same SQL text. */
struct cached_stmt {
    char *sql;        /* owned (util_free); NULL for an unused slot */
    sqlite3_stmt *st; /* owned: finalized on eviction or by cache_free */
    uint64_t used;
};

struct store_cache {
    struct list_cursor cur[CURSOR_SLOTS];
    struct cached_stmt stmt[STMT_SLOTS];
    uint64_t tick;
};

/* s->cache, made on first use; NULL when out of memory (lists then run uncached). Borrowed:
 * owned by s until store_close. */
static struct store_cache *cache_get(struct sim *s)
{
    if (s->cache == NULL)
        s->cache = util_calloc(1, sizeof(*s->cache));
    return s->cache;
}

/* Finalize and free everything c holds, and c itself. Accepts NULL. */
static void cache_free(struct store_cache *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < CURSOR_SLOTS; i++)
        util_free(c->cur[i].key);
    for (int i = 0; i < STMT_SLOTS; i++) {
        sqlite3_finalize(c->stmt[i].st);
        util_free(c->stmt[i].sql);
    }
    util_free(c);
}

/* Append to key the bytes naming q's list: resource, condition text and bound values (an
 * office is bound first, so it is part of the key). ODSYNC_OK or ODSYNC_NOMEM. */
static int list_key(const struct query *q, struct sbuf *key)
{
    int res = (int)q->res;
    size_t wlen = q->where.data != NULL ? q->where.len : 0;
    sbuf_append(key, (const char *)&res, sizeof(res));
    sbuf_append(key, (const char *)&wlen, sizeof(wlen));
    if (wlen > 0)
        sbuf_append(key, q->where.data, wlen);
    for (int i = 0; i < q->nbinds; i++) {
        const struct dbv *v = &q->binds[i];
        sbuf_append(key, &v->t, 1);
        if (v->t == 'i') {
            sbuf_append(key, (const char *)&v->i, sizeof(v->i));
        } else if (v->t == 'r') {
            sbuf_append(key, (const char *)&v->r, sizeof(v->r));
        } else if (v->t == 't') {
            const char *t = v->s != NULL ? v->s : ""; /* bound as "" (bind_values) */
            size_t tlen = strlen(t);
            sbuf_append(key, (const char *)&tlen, sizeof(tlen));
            sbuf_append(key, t, tlen);
        }
    }
    return key->failed ? ODSYNC_NOMEM : ODSYNC_OK;
}

/* The cursor of list key that ended at offset while the data was at gen, or NULL. Borrowed
 * from c. */
static struct list_cursor *cursor_find(struct store_cache *c, const struct sbuf *key, int64_t gen,
                                       int64_t offset)
{
    for (int i = 0; i < CURSOR_SLOTS; i++) {
        struct list_cursor *k = &c->cur[i];
        if (k->key != NULL && k->gen == gen && k->next_offset == offset && k->keylen == key->len &&
            memcmp(k->key, key->data, key->len) == 0)
            return k;
    }
    return NULL;
}

/* Remember that list key's page ended at next_offset with last_pk. hit, when not NULL, is the
 * cursor the page continued (updated in place); otherwise a slot holding the same key and
 * offset, a free one or the least recently used one is (re)filled with a copy of key. Out of
 * memory leaves no cursor behind, which only costs speed. */
static void cursor_record(struct store_cache *c, struct list_cursor *hit, const struct sbuf *key,
                          int64_t gen, int64_t next_offset, int64_t last_pk)
{
    struct list_cursor *k = hit;
    if (k == NULL) {
        for (int i = 0; i < CURSOR_SLOTS && k == NULL; i++) {
            struct list_cursor *o = &c->cur[i];
            if (o->key != NULL && o->next_offset == next_offset && o->keylen == key->len &&
                memcmp(o->key, key->data, key->len) == 0)
                k = o;
        }
    }
    if (k == NULL) {
        k = &c->cur[0];
        for (int i = 0; i < CURSOR_SLOTS && k->key != NULL; i++) {
            if (c->cur[i].key == NULL || c->cur[i].used < k->used)
                k = &c->cur[i];
        }
        util_free(k->key);
        k->key = util_malloc(key->len);
        k->keylen = key->len;
        if (k->key == NULL)
            return;
        memcpy(k->key, key->data, key->len);
    }
    k->gen = gen;
    k->next_offset = next_offset;
    k->last_pk = last_pk;
    k->used = ++c->tick;
}

/* A statement for sql with v[0..n) bound: a cached one (reset earlier) or a new one, cached
 * when c is not NULL. NULL on error (logged). The caller hands it back with stmt_release. */
static sqlite3_stmt *stmt_acquire(struct sim *s, struct store_cache *c, const char *sql,
                                  const struct dbv *v, int n)
{
    struct cached_stmt *slot = NULL;
    sqlite3_stmt *st = NULL;
    char *copy = NULL;
    for (int i = 0; c != NULL && i < STMT_SLOTS; i++) {
        if (c->stmt[i].sql != NULL && strcmp(c->stmt[i].sql, sql) == 0) {
            slot = &c->stmt[i];
            st = slot->st;
            break;
        }
    }
    if (st == NULL) {
        if (sqlite3_prepare_v3(s->db, sql, -1, c != NULL ? SQLITE_PREPARE_PERSISTENT : 0, &st,
                               NULL) != SQLITE_OK) {
            log_error(ODSIM_LOG, "sqlite: %s: %.120s", sqlite3_errmsg(s->db), sql);
            sqlite3_finalize(st);
            st = NULL;
            goto cleanup;
        }
        copy = c != NULL ? util_strdup(sql) : NULL;
        if (copy != NULL) {
            slot = &c->stmt[0];
            for (int i = 0; i < STMT_SLOTS && slot->sql != NULL; i++) {
                if (c->stmt[i].sql == NULL || c->stmt[i].used < slot->used)
                    slot = &c->stmt[i];
            }
            sqlite3_finalize(slot->st);
            util_free(slot->sql);
            slot->sql = copy;
            slot->st = st;
            copy = NULL;
        }
    }
    if (slot != NULL)
        slot->used = ++c->tick;
    if (bind_values(s, st, v, n) != ODSYNC_OK) {
        sqlite3_clear_bindings(st);
        if (slot == NULL)
            sqlite3_finalize(st);
        st = NULL;
    }
cleanup:
    util_free(copy);
    return st;
}

/* Give back st from stmt_acquire: a cached one is reset for its next use (dropped from the
 * cache when ok is 0: a failed statement is not trusted again), any other finalized. */
static void stmt_release(struct store_cache *c, sqlite3_stmt *st, int ok)
{
    for (int i = 0; c != NULL && st != NULL && i < STMT_SLOTS; i++) {
        if (c->stmt[i].st != st)
            continue;
        if (ok) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
        util_free(c->stmt[i].sql);
        c->stmt[i].sql = NULL;
        c->stmt[i].st = NULL;
        break;
    }
    sqlite3_finalize(st);
}

/* What render_rows saw of the rows it rendered. */
struct page_end {
    int64_t rows;    /* rows rendered */
    int64_t last_pk; /* the primary key of the last row, when last_ok */
    int last_ok;     /* 1: the last row's primary key was an integer */
};

/* Run the prepared list statement st and render every row into b as a JSON array; with
 * pk_col >= 0 note the last row's primary key (column pk_col) in *end. */
static int render_rows(struct sim *s, const struct resource *res, sqlite3_stmt *st, const char *now,
                       int pk_col, struct sbuf *b, struct page_end *end)
{
    int step;
    struct wbuf w;
    w.out = b;
    w.len = 0;
    end->rows = 0;
    end->last_ok = 0;
    w_ch(&w, '[');
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (end->rows++ > 0)
            w_ch(&w, ',');
        if (pk_col >= 0) {
            end->last_ok = sqlite3_column_type(st, pk_col) == SQLITE_INTEGER;
            end->last_pk = sqlite3_column_int64(st, pk_col);
        }
        render_row(&w, res, st, now);
    }
    w_ch(&w, ']');
    w_flush(&w);
    if (step != SQLITE_DONE) {
        log_error(ODSIM_LOG, "sqlite: %s", sqlite3_errmsg(s->db));
        return ODSYNC_STORE;
    }
    return b->failed ? ODSYNC_NOMEM : ODSYNC_OK;
}

int store_list(struct sim *s, struct query *q, int64_t limit, int64_t offset, const char *now,
               char **out)
{
    const struct resource *res = &resources[q->res];
    struct sbuf sql = {0}, body = {0}, key = {0};
    struct store_cache *c = NULL;
    struct list_cursor *cur = NULL;
    struct page_end end = {0};
    sqlite3_stmt *st = NULL;
    int rc = ODSYNC_INVALID;
    struct dbv binds[UTIL_ARRAY_LEN(q->binds) + 3];
    int n = q->nbinds;
    int64_t gen = 0;
    /* Primary-key order, a page size, outside any transaction: cursors apply (see above). */
    int keyed = q->order == NULL && (!s->shuffle || q->pk_order) && res->pk_col >= 0 && limit > 0 &&
                sqlite3_get_autocommit(s->db) != 0;

    *out = NULL;
    if (q->failed || q->where.failed)
        goto cleanup;
    c = cache_get(s);
    if (keyed && (c == NULL || list_key(q, &key) != ODSYNC_OK))
        keyed = 0;
    if (keyed) {
        gen = sqlite3_total_changes64(s->db);
        if (offset > 0)
            cur = cursor_find(c, &key, gen, offset);
    }
    memcpy(binds, q->binds, sizeof(q->binds[0]) * (size_t)n);
    sbuf_puts(&sql, res->select);
    if (q->where.data != NULL)
        sbuf_puts(&sql, q->where.data);
    if (cur != NULL) {
        sbuf_printf(&sql, " AND %s > ?", res->pk);
        binds[n++] = DV_I(cur->last_pk);
    }
    if (q->order != NULL)
        sbuf_printf(&sql, " ORDER BY %s, %s", q->order, res->pk);
    else if (s->shuffle && !q->pk_order)
        /* A seeded, stable permutation: pages never overlap or skip. */
        sbuf_printf(&sql, " ORDER BY ((%s * 2654435761 + %llu) %% 4294967311), %s", res->pk,
                    (unsigned long long)(s->seed % 1000003), res->pk);
    else
        sbuf_printf(&sql, " ORDER BY %s", res->pk);
    sbuf_puts(&sql, " LIMIT ? OFFSET ?");
    binds[n++] = DV_I(limit);
    binds[n++] = DV_I(cur != NULL ? 0 : offset);
    rc = ODSYNC_NOMEM;
    if (sql.failed)
        goto cleanup;
    rc = ODSYNC_STORE;
    st = stmt_acquire(s, c, sql.data, binds, n);
    if (st == NULL)
        goto cleanup;
    rc = render_rows(s, res, st, now, keyed ? res->pk_col : -1, &body, &end);
    if (rc == ODSYNC_OK && keyed && end.rows > 0 && end.last_ok && offset <= INT64_MAX - limit)
        cursor_record(c, cur, &key, gen, offset + limit, end.last_pk);
    if (rc == ODSYNC_OK) {
        *out = sbuf_take(&body);
        rc = *out != NULL ? ODSYNC_OK : ODSYNC_NOMEM;
    }
cleanup:
    stmt_release(c, st, rc == ODSYNC_OK);
    sbuf_free(&sql);
    sbuf_free(&body);
    sbuf_free(&key);
    return rc;
}

int store_one(struct sim *s, enum res_id res_id, int office, int64_t pk, const char *now,
              char **out)
{
    const struct resource *res = &resources[res_id];
    struct sbuf sql = {0}, body = {0};
    sqlite3_stmt *st = NULL;
    int rc = -1, step;

    *out = NULL;
    sbuf_printf(&sql, "%s AND %s = ?", res->select, res->pk);
    if (sql.failed)
        goto cleanup;
    st = store_prepare(s, sql.data, DBARGS(DV_I(office), DV_I(pk)));
    if (st == NULL)
        goto cleanup;
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = 0;
    } else if (step == SQLITE_ROW) {
        struct wbuf w;
        w.out = &body;
        w.len = 0;
        render_row(&w, res, st, now);
        w_flush(&w);
        *out = sbuf_take(&body);
        rc = *out != NULL ? 1 : -1;
    } else {
        log_error(ODSIM_LOG, "sqlite: %s", sqlite3_errmsg(s->db));
    }
cleanup:
    sqlite3_finalize(st);
    sbuf_free(&sql);
    sbuf_free(&body);
    return rc;
}
