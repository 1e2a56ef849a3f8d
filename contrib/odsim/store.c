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

void store_close(struct sim *s)
{
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

sqlite3_stmt *store_prepare(struct sim *s, const char *sql, const struct dbv *v, int n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error(ODSIM_LOG, "sqlite: %s: %.120s", sqlite3_errmsg(s->db), sql);
        return NULL;
    }
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
            sqlite3_finalize(st);
            return NULL;
        }
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

int json_str(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    const unsigned char *run = p;
    sbuf_append(b, "\"", 1);
    for (; *p != '\0'; p++) {
        char esc[8];
        size_t elen = 0;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            elen = 2;
        } else if (*p == '\r' || *p == '\n') {
            esc[0] = ' ';
            elen = 1;
            if (*p == '\r' && p[1] == '\n') {
                sbuf_append(b, (const char *)run, (size_t)(p - run));
                sbuf_append(b, esc, elen);
                p++;
                run = p + 1;
                continue;
            }
        } else if (*p < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            elen = 6;
        } else {
            continue;
        }
        sbuf_append(b, (const char *)run, (size_t)(p - run));
        sbuf_append(b, esc, elen);
        run = p + 1;
    }
    sbuf_append(b, (const char *)run, (size_t)(p - run));
    return sbuf_append(b, "\"", 1);
}

int json_real(struct sbuf *b, double v)
{
    char num[40];
    if (!isfinite(v))
        v = 0.0;
    snprintf(num, sizeof(num), "%.15g", v);
    if (strpbrk(num, ".eE") == NULL)
        return sbuf_printf(b, "%s.0", num);
    return sbuf_puts(b, num);
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
        from, pk, f, UTIL_ARRAY_LEN(f), NULL                                                       \
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
        struct sbuf b = {0};
        sbuf_puts(&b, "SELECT ");
        for (size_t i = 0; i < resources[r].nfields; i++)
            sbuf_printf(&b, "%s%s", i > 0 ? ", " : "", resources[r].fields[i].expr);
        sbuf_printf(&b, " FROM %s WHERE t.office = ?", resources[r].from);
        resources[r].select = sbuf_take(&b);
        if (resources[r].select == NULL)
            return ODSYNC_NOMEM;
    }
    return ODSYNC_OK;
}

void store_resources_free(void)
{
    for (int r = 0; r < R_COUNT; r++) {
        util_free(resources[r].select);
        resources[r].select = NULL;
    }
}

/* Append the current row of st (a resource SELECT) as a JSON object. */
static void render_row(struct sbuf *b, const struct resource *res, sqlite3_stmt *st,
                       const char *now)
{
    int first = 1;
    sbuf_append(b, "{", 1);
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        int col = (int)i;
        if (f->type == FT_NOW && now == NULL)
            continue;
        if (!first)
            sbuf_append(b, ",", 1);
        first = 0;
        sbuf_printf(b, "\"%s\":", f->name);
        switch (f->type) {
        case FT_INT:
            sbuf_printf(b, "%lld", (long long)sqlite3_column_int64(st, col));
            break;
        case FT_STR:
            json_str(b, (const char *)sqlite3_column_text(st, col));
            break;
        case FT_BOOL:
            sbuf_puts(b, sqlite3_column_int64(st, col) != 0 ? "\"true\"" : "\"false\"");
            break;
        case FT_REAL:
            json_real(b, sqlite3_column_double(st, col));
            break;
        case FT_INTSTR:
            sbuf_printf(b, "\"%lld\"", (long long)sqlite3_column_int64(st, col));
            break;
        case FT_NOW:
            json_str(b, now);
            break;
        }
    }
    sbuf_append(b, "}", 1);
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

/* Run the prepared list statement st and render every row into b as a JSON array. */
static int render_rows(struct sim *s, const struct resource *res, sqlite3_stmt *st, const char *now,
                       struct sbuf *b)
{
    int step, n = 0;
    sbuf_append(b, "[", 1);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ > 0)
            sbuf_append(b, ",", 1);
        render_row(b, res, st, now);
    }
    sbuf_append(b, "]", 1);
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
    struct sbuf sql = {0}, body = {0};
    sqlite3_stmt *st = NULL;
    int rc = ODSYNC_INVALID;
    struct dbv binds[UTIL_ARRAY_LEN(q->binds) + 2];
    int n = q->nbinds;

    *out = NULL;
    if (q->failed || q->where.failed)
        goto cleanup;
    memcpy(binds, q->binds, sizeof(q->binds[0]) * (size_t)n);
    sbuf_puts(&sql, res->select);
    if (q->where.data != NULL)
        sbuf_puts(&sql, q->where.data);
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
    binds[n++] = DV_I(offset);
    rc = ODSYNC_NOMEM;
    if (sql.failed)
        goto cleanup;
    rc = ODSYNC_STORE;
    st = store_prepare(s, sql.data, binds, n);
    if (st == NULL)
        goto cleanup;
    rc = render_rows(s, res, st, now, &body);
    if (rc == ODSYNC_OK) {
        *out = sbuf_take(&body);
        rc = *out != NULL ? ODSYNC_OK : ODSYNC_NOMEM;
    }
cleanup:
    sqlite3_finalize(st);
    sbuf_free(&sql);
    sbuf_free(&body);
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
        render_row(&body, res, st, now);
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
