/*
 * gen.c: the deterministic practice generator.
 *
 * Every office draws from its own splitmix64 stream seeded from (--seed, office), so adding
 * offices never changes office 1. All times are office-local naive times relative to T0,
 * midnight of the start day: generated DateTStamps lie in the year before T0, recall due
 * dates from 18 months before to 6 months after, booked appointments after T0. Rows are
 * inserted in one transaction through prepared statements (20,000 patients take about a
 * second); secondary indexes are built afterwards.
 */
#include "gen.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "store.h"

#define DAY  86400
#define NONE CLOCK_NONE_NAIVE

/* ---- fixed tables ------------------------------------------------------------------------ */

static const char *const first_names[] = {
    "Avery",    "Jordan", "Riley",    "Casey",   "Morgan", "Quinn",    "Harper",   "Rowan",
    "Elliot",   "Sage",   "Marlow",   "Tessa",   "Dorian", "Imogen",   "Caspian",  "Wren",
    "Linnea",   "Otis",   "Juniper",  "Florian", "Maren",  "Anselm",   "Briony",   "Cyrus",
    "Delphine", "Emrys",  "Fenna",    "Gideon",  "Hollis", "Isolde",   "Jasper",   "Kestrel",
    "Leona",    "Milo",   "Nerissa",  "Orrin",   "Priya",  "Rafferty", "Selene",   "Tobias",
    "Ursula",   "Vaughn", "Willa",    "Xavi",    "Yara",   "Zeke",     "Beatrix",  "Cormac",
    "Dahlia",   "Ezra",   "Greer",    "Hugo",    "Ines",   "Lucian",   "Mireille", "Niamh",
    "Oona",     "Pascal", "Rosalind", "Soren",
};

static const char *const last_names[] = {
    "Quill",        "Ashgrove",     "Brightwater", "Calloway",       "Dunmore",      "Everhart",
    "Fairweather",  "Galloway",     "Holloway",    "Ivesdale",       "Jessop",       "Kettering",
    "Larkspur",     "Merriweather", "Northcott",   "Oakhurst",       "Pemberton",    "Quartermain",
    "Ravensworth",  "Stanhope",     "Thistlewood", "Underhill",      "Vantongeren",  "Whitlock",
    "Yardley",      "Zellweger",    "Abernathy",   "Blackwood",      "Cresswell",    "Drummond",
    "Eastlake",     "Fenwick",      "Greystone",   "Hartwell",       "Inglewood",    "Juniperro",
    "Kingsley",     "Lockridge",    "Mayhew",      "Netherby",       "Ormsby",       "Penhallow",
    "Quenby",       "Rothwell",     "Sallow",      "Tremaine",       "Upshaw",       "Vexley",
    "Winterbourne", "Yelverton",    "Zander",      "Delacroix-Moss", "O'Harrow",     "McAllister",
    "Nguyen-Park",  "de la Vega",   "St. Clair",   "Van Brunt",      "Okonkwo-Hale", "Lindqvist",
};

static const char *const streets[] = {
    "Example Row", "Sample Ave", "Harbor Ln",  "Maple St",  "Cedar Ct",   "Birch Way",
    "Willow Dr",   "Aspen Rd",   "Lantern Pl", "Quarry Rd", "Orchard Ln", "Kestrel Way",
};

static const char *const cities[] = {"Lakeview",  "Riverton",   "Fairmount",
                                     "Brookside", "Glenhollow", "Millbrook"};

static const char *const nicknames[] = {"Ace",  "Bea", "Cici", "Dee", "Fitz", "Gigi",
                                        "Jojo", "Kit", "Lulu", "Max", "Nico", "Tad"};

/* Definitions (Open Dental's definition table) shared by every office. */
static const struct {
    int num, cat;
    const char *name, *value;
} defs[] = {
    {19, 2, "Not Called", ""},  {20, 2, "Unconfirmed", ""},
    {21, 2, "Confirmed", "C"},  {22, 2, "Left Msg", ""},
    {23, 2, "Sent", ""},        {24, 2, "Not Accepted", ""},
    {25, 2, "Failed", ""},      {30, 13, "Left Msg", ""},
    {31, 13, "Call Back", ""},  {32, 13, "Patient Declined", ""},
    {33, 13, "Texted", ""},     {236, 27, "Appt Related", "APPT"},
    {237, 27, "Insurance", ""}, {238, 27, "Financial", "FIN"},
    {239, 27, "Misc", "MISC"},  {240, 27, "Recall", "RECALL"},
    {241, 27, "Text", "TEXT"},
};

/* Procedure codes: CodeNum, code, description, abbreviation, fee. */
static const struct {
    int num;
    const char *code, *descript, *abbr, *fee;
} codes[] = {
    {120, "D2391", "resin-based composite - one surface, posterior", "C1", "165.00"},
    {160, "D0120", "periodic oral evaluation - established patient", "PerEx", "55.00"},
    {161, "D0140", "limited oral evaluation - problem focused", "LimEx", "75.00"},
    {162, "D0150", "comprehensive oral evaluation - new or established patient", "CompEx", "95.00"},
    {165, "D0210", "intraoral - comprehensive series of radiographic images", "FMX", "135.00"},
    {168, "D0274", "bitewings - four radiographic images", "4BW", "70.00"},
    {170, "D0330", "panoramic radiographic image", "Pano", "110.00"},
    {176, "D1110", "prophylaxis - adult", "Pro", "95.00"},
    {177, "D1120", "prophylaxis - child", "ProChild", "70.00"},
    {179, "D1206", "topical application of fluoride varnish", "Flo", "40.00"},
    {220, "D4910", "periodontal maintenance", "PerioMaint", "140.00"},
};

/* Recall types of every office: number, description, interval, pattern, trigger codes. */
static const struct {
    int num;
    const char *descript, *interval, *pattern, *procs;
} rtypes[] = {
    {1, "Prophy", "6m1d", "/XXXX/", "D1110"},
    {2, "Perio", "3m", "/XXXXXX/", "D4910"},
    {3, "Child Prophy", "6m", "/XXX/", "D1120"},
    {4, "4BW", "1y", "", "D0274"},
    {5, "Pano", "5y", "", "D0330"},
    {6, "FMX", "3y", "", "D0210"},
};

static const struct {
    const char *descript, *abbr, *address, *phone;
} clinic_names[] = {
    {"Harbor Lane Dental", "Harbor", "400 Sample Ave", "5550104477"},
    {"Maple Street Dental", "Maple", "12 Maple St", "5550104478"},
    {"Cedar Point Family Dentistry", "Cedar", "88 Cedar Ct", "5550104479"},
};

const char *gen_first_name(uint64_t *rng)
{
    return first_names[sim_rng_range(rng, 0, (int64_t)UTIL_ARRAY_LEN(first_names) - 1)];
}

const char *gen_last_name(uint64_t *rng)
{
    return last_names[sim_rng_range(rng, 0, (int64_t)UTIL_ARRAY_LEN(last_names) - 1)];
}

void gen_office_key(int n, char out[17])
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t st = UINT64_C(0x6f6473696d6b6579) ^ (uint64_t)n * UINT64_C(0x9e3779b97f4a7c15);
    for (int i = 0; i < 16; i++)
        out[i] = alnum[sim_rng(&st) % (sizeof(alnum) - 1)];
    out[16] = '\0';
}

/* ---- generator state --------------------------------------------------------------------- */

enum gstmt { G_PAT, G_RECALL, G_APT, G_HIST, G_PROC, G_COMM, G_COUNT };

struct gen {
    struct sim *s;
    int office;
    uint64_t rng;
    int64_t t0;     /* naive seconds of the start day's midnight */
    int64_t t0_day; /* the start day */
    int nclinics;   /* visible clinics (1..n); 0 = the office uses no clinics */
    sqlite3_stmt *st[G_COUNT];
    int64_t next_pat, next_recall, next_apt, next_hist, next_proc, next_comm;
};

/* An appointment as written to appointment or histappointment. Times are naive seconds. */
struct apt {
    int64_t num, pat;
    const char *status;
    const char *pattern;
    int64_t confirmed;
    int64_t op, prov, hyg;
    const char *note;
    int64_t when; /* AptDateTime */
    int64_t unsched;
    int is_new, is_hyg;
    char descript[64];
    int64_t clinic;
    int64_t stamp, arrived, seated, dismissed, entry;
    int64_t item_order;
};

/* One person as generated. */
struct person {
    int64_t num, guarantor, birth_day, entry_day, stamp, clinic, priprov, secprov;
    const char *lname, *fname, *status, *gender, *position;
    char mi[2], preferred[16], email[96], wireless[24], work[24], home[24];
    const char *address_street, *city;
    char address[64], zip[8];
    const char *confirm_m, *contact_m, *recall_m, *lang, *txt;
    int premed;
    double balance, baltotal;
    int64_t first_visit_day;
    char famnote[48];
};

static int64_t rr(struct gen *g, int64_t lo, int64_t hi)
{
    return sim_rng_range(&g->rng, lo, hi);
}

static int pm(struct gen *g, int permille)
{
    return sim_rng_permille(&g->rng, permille);
}

/* Pick from a permille-weighted list of names (weights sum to 1000). */
static const char *weighted(struct gen *g, const char *const *names, const int *w, int n)
{
    int64_t x = rr(g, 0, 999);
    for (int i = 0; i < n; i++) {
        if (x < w[i])
            return names[i];
        x -= w[i];
    }
    return names[n - 1];
}

static void fmt_dt(int64_t naive, char out[CLOCK_DT_LEN])
{
    clock_fmt_datetime(naive <= NONE ? NONE : naive, out);
}

static void fmt_day(int64_t day, char out[CLOCK_DATE_LEN])
{
    clock_fmt_date(day <= CLOCK_NONE_DAY ? CLOCK_NONE_DAY : day, out);
}

/* Step a prepared insert and reset it. Returns ODSYNC_OK or ODSYNC_STORE (logged). */
static int step_reset(struct gen *g, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return ODSYNC_OK;
    log_error(ODSIM_LOG, "generate: %s", sqlite3_errmsg(g->s->db));
    return ODSYNC_STORE;
}

static void bind_t(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static void bind_i(sqlite3_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(st, i, v);
}

/* Bind a's STORE_APT_COLS starting at parameter first. */
static void bind_apt(sqlite3_stmt *st, int first, const struct apt *a)
{
    char dt[CLOCK_DT_LEN];
    int i = first;
    bind_i(st, i++, a->num);
    bind_i(st, i++, a->pat);
    bind_t(st, i++, a->status);
    bind_t(st, i++, a->pattern);
    bind_i(st, i++, a->confirmed);
    bind_i(st, i++, 0); /* TimeLocked */
    bind_i(st, i++, a->op);
    bind_t(st, i++, a->note != NULL ? a->note : "");
    bind_i(st, i++, a->prov);
    bind_i(st, i++, a->hyg);
    fmt_dt(a->when, dt);
    bind_t(st, i++, dt);
    bind_i(st, i++, 0); /* NextAptNum */
    bind_i(st, i++, a->unsched);
    bind_i(st, i++, a->is_new);
    bind_t(st, i++, a->descript);
    bind_i(st, i++, a->clinic);
    bind_i(st, i++, a->is_hyg);
    fmt_dt(a->stamp, dt);
    bind_t(st, i++, dt);
    fmt_dt(a->arrived, dt);
    bind_t(st, i++, dt);
    fmt_dt(a->seated, dt);
    bind_t(st, i++, dt);
    fmt_dt(a->dismissed, dt);
    bind_t(st, i++, dt);
    bind_i(st, i++, 0); /* InsPlan1 */
    bind_i(st, i++, 0); /* InsPlan2 */
    fmt_dt(NONE, dt);
    bind_t(st, i++, dt); /* DateTimeAskedToArrive */
    bind_t(st, i++, "0,0,0");
    bind_i(st, i++, 0);                       /* AppointmentTypeNum */
    bind_i(st, i++, a->entry > NONE ? 1 : 0); /* SecUserNumEntry */
    fmt_dt(a->entry, dt);
    bind_t(st, i++, dt);
    bind_t(st, i++, "Normal");
    struct sbuf sec = {0};
    for (const char *p = a->pattern; *p != '\0'; p++)
        sbuf_append(&sec, "/", 1);
    bind_t(st, i++, sec.data != NULL ? sec.data : "");
    sbuf_free(&sec);
    bind_i(st, i, a->item_order);
}

static int insert_apt(struct gen *g, const struct apt *a)
{
    sqlite3_stmt *st = g->st[G_APT];
    bind_i(st, 1, g->office);
    bind_apt(st, 2, a);
    return step_reset(g, st);
}

/* A history row for a: action at time when (a is the snapshot). */
static int insert_hist(struct gen *g, const struct apt *a, const char *action, int64_t when)
{
    sqlite3_stmt *st = g->st[G_HIST];
    char dt[CLOCK_DT_LEN];
    bind_i(st, 1, g->office);
    bind_i(st, 2, g->next_hist++);
    bind_i(st, 3, 1);
    fmt_dt(when, dt);
    bind_t(st, 4, dt);
    bind_t(st, 5, action);
    bind_t(st, 6, "None");
    bind_apt(st, 7, a);
    return step_reset(g, st);
}

static int insert_proc(struct gen *g, int64_t pat, int64_t apt, int code_idx, const char *status,
                       int64_t proc_day, int64_t prov, int64_t clinic, int64_t stamp, int64_t entry)
{
    sqlite3_stmt *st = g->st[G_PROC];
    char d[CLOCK_DATE_LEN], dt[CLOCK_DT_LEN], none[CLOCK_DATE_LEN];
    int i = 1;
    int complete = strcmp(status, "C") == 0;
    fmt_day(CLOCK_NONE_DAY, none);
    bind_i(st, i++, g->office);
    bind_i(st, i++, g->next_proc++);
    bind_i(st, i++, pat);
    bind_i(st, i++, apt);
    fmt_day(proc_day, d);
    bind_t(st, i++, d); /* ProcDate */
    bind_t(st, i++, codes[code_idx].fee);
    bind_i(st, i++, prov);
    bind_t(st, i++, status);
    bind_t(st, i++, complete ? d : none); /* DateEntryC */
    bind_i(st, i++, clinic);
    bind_i(st, i++, codes[code_idx].num);
    fmt_day(entry / DAY, d);
    bind_t(st, i++, d); /* DateTP */
    fmt_dt(stamp, dt);
    bind_t(st, i++, dt);
    fmt_dt(entry, dt);
    bind_t(st, i, dt);
    return step_reset(g, st);
}

static int insert_comm(struct gen *g, int64_t pat, int64_t when, int type, const char *note,
                       const char *mode)
{
    sqlite3_stmt *st = g->st[G_COMM];
    char dt[CLOCK_DT_LEN];
    fmt_dt(when, dt);
    bind_i(st, 1, g->office);
    bind_i(st, 2, g->next_comm++);
    bind_i(st, 3, pat);
    bind_t(st, 4, dt);
    bind_i(st, 5, type);
    bind_t(st, 6, note);
    bind_t(st, 7, mode);
    bind_t(st, 8, "Sent");
    bind_t(st, 9, dt);
    return step_reset(g, st);
}

/* Index of code in codes[]. */
static int code_index(const char *code)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(codes); i++) {
        if (strcmp(codes[i].code, code) == 0)
            return (int)i;
    }
    return 0;
}

/* A phone number in one of the free formats Open Dental offices type. Valid numbers use real
 * area codes with the 555-01XX range reserved for fiction; a few are malformed on purpose. */
static void make_phone(struct gen *g, char *out, size_t len)
{
    static const int areas[] = {503, 541, 971, 360, 206, 312, 773, 512, 214, 415};
    int area = areas[rr(g, 0, 9)], line = (int)rr(g, 100, 199);
    int64_t f = rr(g, 0, 999);
    if (f < 30)
        snprintf(out, len, "%s", rr(g, 0, 1) ? "12345" : "555-0102");
    else if (f < 400)
        snprintf(out, len, "(%03d)555-%04d", area, line);
    else if (f < 600)
        snprintf(out, len, "%03d.555.%04d", area, line);
    else if (f < 750)
        snprintf(out, len, "%03d555%04d", area, line);
    else if (f < 900)
        snprintf(out, len, "%03d-555-%04d", area, line);
    else
        snprintf(out, len, "(%03d) 555-%04d", area, line);
}

/* Lower-case ASCII letters of s (apostrophes, spaces and dots dropped). */
static void slug(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (; *s != '\0' && o + 1 < len; s++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            out[o++] = (char)(c - 'A' + 'a');
        else if ((c >= 'a' && c <= 'z') || c == '-')
            out[o++] = c;
    }
    out[o] = '\0';
}

static void make_email(struct gen *g, const char *first, const char *last, char *out, size_t len)
{
    char f[32], l[32];
    int64_t x = rr(g, 0, 999);
    slug(first, f, sizeof(f));
    slug(last, l, sizeof(l));
    if (x < 120)
        out[0] = '\0';
    else if (x < 135)
        snprintf(out, len, "%s.%s@", f, l);
    else if (x < 150)
        snprintf(out, len, "%s.%s at example.com", f, l);
    else if (x < 160)
        snprintf(out, len, "%s%s@example", f, l);
    else if (x < 600)
        snprintf(out, len, "%s.%s@example.com", f, l);
    else if (x < 850)
        snprintf(out, len, "%s%s%d@example.net", f, l, (int)rr(g, 1, 99));
    else
        snprintf(out, len, "%c.%s@example.org", f[0], l);
}

static const char *const methods[] = {"None",    "WirelessPh", "TextMessage", "Email",
                                      "HmPhone", "DoNotCall",  "Mail",        "SeeNotes"};
static const int method_w[] = {300, 200, 200, 150, 80, 40, 20, 10};

/* Fill the per-person fields of p (family fields already set). */
static void make_person(struct gen *g, struct person *p, int child)
{
    static const char *const statuses[] = {"Patient",    "Inactive", "Archived",
                                           "NonPatient", "Deceased", "Prospective"};
    static const int status_w[] = {820, 80, 40, 20, 10, 30};
    static const char *const txt[] = {"Yes", "No", "Unknown"};
    static const int txt_w[] = {550, 120, 330};
    static const char *const langs[] = {"eng", "spa", ""};
    static const int lang_w[] = {800, 120, 80};

    p->num = g->next_pat++;
    p->fname = gen_first_name(&g->rng);
    p->status = weighted(g, statuses, status_w, 6);
    p->mi[0] = pm(g, 400) ? (char)('A' + rr(g, 0, 25)) : '\0';
    p->mi[1] = '\0';
    if (pm(g, 60))
        snprintf(p->preferred, sizeof(p->preferred), "%s",
                 nicknames[rr(g, 0, (int64_t)UTIL_ARRAY_LEN(nicknames) - 1)]);
    else
        p->preferred[0] = '\0';
    int64_t age_days = child ? rr(g, 365, 17 * 365) : rr(g, 19 * 365, 88 * 365);
    p->birth_day = pm(g, 20) ? CLOCK_NONE_DAY : g->t0_day - age_days;
    p->entry_day = g->t0_day - rr(g, 20, 8 * 365);
    make_email(g, p->fname, p->lname, p->email, sizeof(p->email));
    if (!child || pm(g, 300))
        make_phone(g, p->wireless, sizeof(p->wireless));
    else
        p->wireless[0] = '\0';
    if (!child && pm(g, 150))
        make_phone(g, p->work, sizeof(p->work));
    else
        p->work[0] = '\0';
    p->confirm_m = weighted(g, methods, method_w, 8);
    p->contact_m = weighted(g, methods, method_w, 8);
    p->recall_m = weighted(g, methods, method_w, 8);
    p->lang = weighted(g, langs, lang_w, 3);
    p->txt = weighted(g, txt, txt_w, 3);
    p->premed = pm(g, 30);
    p->balance = pm(g, 200) ? (double)rr(g, 100, 40000) / 100.0 : 0.0;
    p->baltotal = 0.0;
    p->first_visit_day = CLOCK_NONE_DAY;
    if (pm(g, 10))
        snprintf(p->famnote, sizeof(p->famnote), "Payment plan.\r\nSee ledger.");
    else
        p->famnote[0] = '\0';
    /* DateTStamp: spread over the past year, never before the row existed. */
    p->stamp = g->t0 - rr(g, 60, 365 * DAY);
    if (p->stamp < p->entry_day * DAY)
        p->stamp = p->entry_day * DAY + rr(g, 8 * 3600, 17 * 3600);
}

static int insert_person(struct gen *g, const struct person *p)
{
    sqlite3_stmt *st = g->st[G_PAT];
    char d[CLOCK_DATE_LEN], dt[CLOCK_DT_LEN], folder[96], lslug[48], fslug[32];
    int i = 1;
    bind_i(st, i++, g->office);
    bind_i(st, i++, p->num);
    bind_t(st, i++, p->lname);
    bind_t(st, i++, p->fname);
    bind_t(st, i++, p->mi);
    bind_t(st, i++, p->preferred);
    bind_t(st, i++, p->status);
    bind_t(st, i++, p->gender);
    bind_t(st, i++, p->position);
    fmt_day(p->birth_day, d);
    bind_t(st, i++, d);
    bind_t(st, i++, p->address);
    bind_t(st, i++, p->city);
    bind_t(st, i++, "OR");
    bind_t(st, i++, p->zip);
    bind_t(st, i++, p->home);
    bind_t(st, i++, p->work);
    bind_t(st, i++, p->wireless);
    bind_i(st, i++, p->guarantor);
    bind_t(st, i++, p->email);
    sqlite3_bind_double(st, i++, p->balance);
    bind_i(st, i++, p->priprov);
    bind_i(st, i++, p->secprov);
    slug(p->lname, lslug, sizeof(lslug));
    slug(p->fname, fslug, sizeof(fslug));
    if (lslug[0] >= 'a' && lslug[0] <= 'z')
        lslug[0] = (char)(lslug[0] - 'a' + 'A');
    if (fslug[0] >= 'a' && fslug[0] <= 'z')
        fslug[0] = (char)(fslug[0] - 'a' + 'A');
    snprintf(folder, sizeof(folder), "%s%s%lld", lslug, fslug, (long long)p->num);
    bind_t(st, i++, folder);
    bind_t(st, i++, p->famnote);
    sqlite3_bind_double(st, i++, p->baltotal);
    fmt_day(p->first_visit_day, d);
    bind_t(st, i++, d);
    bind_i(st, i++, p->clinic);
    bind_i(st, i++, p->premed);
    bind_t(st, i++, p->confirm_m);
    bind_t(st, i++, p->contact_m);
    bind_t(st, i++, p->recall_m);
    bind_t(st, i++, p->lang);
    fmt_dt(p->stamp, dt);
    bind_t(st, i++, dt);
    bind_t(st, i++, p->txt);
    fmt_day(p->entry_day, d);
    bind_t(st, i, d);
    return step_reset(g, st);
}

static const char pat_sql[] =
    "INSERT INTO patient (office, PatNum, LName, FName, MiddleI, Preferred, PatStatus, Gender,"
    " Position, Birthdate, SSN, Address, Address2, City, State, Zip, HmPhone, WkPhone,"
    " WirelessPhone, Guarantor, Email, EstBalance, PriProv, SecProv, FeeSched, BillingType,"
    " ImageFolder, FamFinUrgNote, ChartNumber, MedicaidID, BalTotal, EmployerNum,"
    " DateFirstVisit, ClinicNum, Premed, Ward, PreferConfirmMethod, PreferContactMethod,"
    " PreferRecallMethod, Language, AdmitDate, SiteDesc, DateTStamp, SuperFamily, TxtMsgOk,"
    " SecDateEntry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', ?11, '', ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, 0, 'Standard Account', ?23, ?24, '', '',"
    " ?25, 0, ?26, ?27, ?28, '', ?29, ?30, ?31, ?32, '0001-01-01', '', ?33, 0, ?34, ?35)";

static const char recall_sql[] =
    "INSERT INTO recall (office, RecallNum, PatNum, DateDue, DatePrevious, RecallInterval,"
    " RecallStatus, Note, IsDisabled, DateTStamp, RecallTypeNum, DisableUntilBalance,"
    " DisableUntilDate, DateScheduled, Priority, TimePatternOverride) VALUES (?1, ?2, ?3, ?4,"
    " ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0.0, ?12, ?13, 'Normal', '')";

static const char proc_sql[] =
    "INSERT INTO procedurelog (office, ProcNum, PatNum, AptNum, ProcDate, ProcFee, Surf,"
    " ToothNum, ToothRange, Priority, ProcStatus, ProvNum, Dx, PlannedAptNum, PlaceService,"
    " Prosthesis, DateOriginalProsth, ClaimNote, DateEntryC, ClinicNum, CodeNum, UnitQty,"
    " BaseUnits, DateTP, SiteNum, HideGraphics, CanadianTypeCodes, ProcTime, ProcTimeEnd,"
    " DateTStamp, Prognosis, IsLocked, BillingNote, Discount, IsDateProsthEst, SecDateEntry)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', '', '', 0, ?8, ?7, 0, 0, 'Office', '', '0001-01-01',"
    " '', ?9, ?10, ?11, 1, 0, ?12, 0, 0, '', '00:00:00', '00:00:00', ?13, 0, 0, '', 0.0, 0,"
    " ?14)";

static const char comm_sql[] =
    "INSERT INTO commlog (office, CommlogNum, PatNum, CommDateTime, CommType, Note, Mode,"
    " SentOrReceived, UserNum, DateTStamp, CommSource, ProgramNum, DateTEntry, ReferralNum)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, 'User', 0, ?9, 0)";

/* A recall row. */
struct recall {
    int64_t pat, type, due, prev, sched, until, status, stamp;
    int disabled;
    const char *note;
};

static int insert_recall(struct gen *g, const struct recall *r)
{
    sqlite3_stmt *st = g->st[G_RECALL];
    char d[CLOCK_DATE_LEN], dt[CLOCK_DT_LEN];
    bind_i(st, 1, g->office);
    bind_i(st, 2, g->next_recall++);
    bind_i(st, 3, r->pat);
    fmt_day(r->due, d);
    bind_t(st, 4, d);
    fmt_day(r->prev, d);
    bind_t(st, 5, d);
    bind_t(st, 6, rtypes[r->type - 1].interval);
    bind_i(st, 7, r->status);
    bind_t(st, 8, r->note != NULL ? r->note : "");
    bind_i(st, 9, r->disabled);
    fmt_dt(r->stamp, dt);
    bind_t(st, 10, dt);
    bind_i(st, 11, r->type);
    fmt_day(r->until, d);
    bind_t(st, 12, d);
    fmt_day(r->sched, d);
    bind_t(st, 13, d);
    return step_reset(g, st);
}

/* A business-hours time between lo and hi days before T0. */
static int64_t biz_time(struct gen *g, int64_t lo, int64_t hi)
{
    return (g->t0_day - rr(g, lo, hi)) * DAY + rr(g, 8 * 3600, 17 * 3600);
}

/* Length in minutes of a pattern (5 minutes a character). */
static int64_t pattern_minutes(const char *pattern)
{
    return (int64_t)strlen(pattern) * 5;
}

/* A business-hours start time on day. */
static int64_t slot_on(struct gen *g, int64_t day)
{
    return day * DAY + rr(g, 8, 16) * 3600 + rr(g, 0, 5) * 600;
}

/* Fill the common appointment fields for p. */
static void apt_base(struct gen *g, const struct person *p, struct apt *a, int64_t when,
                     int recall_type)
{
    memset(a, 0, sizeof(*a));
    a->num = g->next_apt++;
    a->pat = p->num;
    a->when = when;
    a->pattern = recall_type == 2 ? "//XXXXXX//" : recall_type == 3 ? "/XXX/" : "//XXXX//";
    a->confirmed = 19;
    a->op = g->nclinics > 0 ? (p->clinic > 0 ? p->clinic : 1) * 10 + rr(g, 1, 3) : rr(g, 1, 4);
    a->prov = p->priprov;
    a->hyg = rr(g, 3, 4);
    a->is_hyg = 1;
    a->clinic = p->clinic;
    a->stamp = a->arrived = a->seated = a->dismissed = NONE;
    a->entry = NONE;
}

/* Completed visit on day with its procedures; returns the completion time in *done. */
static int visit(struct gen *g, struct person *p, int64_t day, int recall_type, int first, int bw,
                 int64_t *done)
{
    struct apt a;
    const char *prophy = recall_type == 2 ? "D4910" : recall_type == 3 ? "D1120" : "D1110";
    const char *list[4];
    int n = 0, rc;
    apt_base(g, p, &a, slot_on(g, day), recall_type);
    list[n++] = first ? "D0150" : "D0120";
    list[n++] = prophy;
    if (first)
        list[n++] = "D0210";
    else if (bw)
        list[n++] = "D0274";
    for (int i = 0; i < n; i++) {
        snprintf(a.descript + strlen(a.descript), sizeof(a.descript) - strlen(a.descript), "%s%s",
                 i > 0 ? ", " : "", codes[code_index(list[i])].abbr);
    }
    a.is_new = first;
    a.entry = a.when - rr(g, 7 * DAY, 60 * DAY);
    a.status = "Scheduled";
    a.stamp = a.entry;
    if ((rc = insert_hist(g, &a, "Created", a.entry)) != ODSYNC_OK)
        return rc;
    a.status = "Complete";
    a.confirmed = 21;
    a.arrived = a.when - rr(g, 0, 600);
    a.seated = a.when + rr(g, 0, 480);
    a.dismissed = a.when + pattern_minutes(a.pattern) * 60 + rr(g, 0, 600);
    a.stamp = a.dismissed + rr(g, 1, 600);
    *done = a.stamp;
    if ((rc = insert_hist(g, &a, "Changed", a.stamp)) != ODSYNC_OK ||
        (rc = insert_apt(g, &a)) != ODSYNC_OK)
        return rc;
    for (int i = 0; i < n; i++) {
        int prov = strcmp(list[i], prophy) == 0 ? (int)a.hyg : (int)a.prov;
        rc = insert_proc(g, p->num, a.num, code_index(list[i]), "C", day, prov, p->clinic, a.stamp,
                         a.entry);
        if (rc != ODSYNC_OK)
            return rc;
    }
    if (p->first_visit_day == CLOCK_NONE_DAY || day < p->first_visit_day)
        p->first_visit_day = day;
    return ODSYNC_OK;
}

/* A booked future appointment for a recall due on due; sets r->sched and stamps. */
static int book(struct gen *g, struct person *p, struct recall *r)
{
    struct apt a;
    int rc;
    int64_t day = r->due > g->t0_day ? r->due + rr(g, -10, 10) : g->t0_day + rr(g, 1, 45);
    if (day <= g->t0_day)
        day = g->t0_day + 1;
    apt_base(g, p, &a, slot_on(g, day), (int)r->type);
    const char *prophy = r->type == 2 ? "D4910" : r->type == 3 ? "D1120" : "D1110";
    snprintf(a.descript, sizeof(a.descript), "PerEx, %s", codes[code_index(prophy)].abbr);
    a.status = "Scheduled";
    a.entry = g->t0 - rr(g, 3600, 60 * DAY);
    a.stamp = a.entry;
    if (pm(g, 150))
        a.note = "Prefers mornings.\r\nCall cell first.";
    if ((rc = insert_hist(g, &a, "Created", a.entry)) != ODSYNC_OK)
        return rc;
    int64_t c = rr(g, 0, 999);
    if (c >= 500) {
        a.confirmed = c < 800 ? 21 : c < 900 ? 22 : 23;
        a.stamp = a.entry + rr(g, 60, g->t0 - a.entry - 1);
        if ((rc = insert_hist(g, &a, "Changed", a.stamp)) != ODSYNC_OK ||
            (a.confirmed == 21 &&
             (rc = insert_comm(g, p->num, a.stamp, 236, "Appointment confirmed by patient.",
                               "Text")) != ODSYNC_OK))
            return rc;
    }
    if ((rc = insert_apt(g, &a)) != ODSYNC_OK)
        return rc;
    rc = insert_proc(g, p->num, a.num, code_index("D0120"), "TP", day, p->priprov, p->clinic,
                     a.entry, a.entry);
    if (rc == ODSYNC_OK)
        rc = insert_proc(g, p->num, a.num, code_index(prophy), "TP", day, a.hyg, p->clinic, a.entry,
                         a.entry);
    r->sched = day;
    if (r->stamp < a.entry)
        r->stamp = a.entry;
    return rc;
}

/* One of the odd appointments: broken, unscheduled, planned or deleted. */
static int odd_appointment(struct gen *g, struct person *p, const char *kind)
{
    struct apt a;
    int rc;
    int64_t day = g->t0_day - rr(g, 5, 200);
    apt_base(g, p, &a, slot_on(g, day), 1);
    snprintf(a.descript, sizeof(a.descript), "%s", strcmp(kind, "Planned") == 0 ? "C1" : "LimEx");
    a.is_hyg = 0;
    a.hyg = 0;
    a.entry = a.when - rr(g, 7 * DAY, 40 * DAY);
    a.status = "Scheduled";
    a.stamp = a.entry;
    if (strcmp(kind, "Planned") == 0) {
        a.status = "Planned";
        a.when = NONE;
        a.op = 0;
        a.item_order = 1;
        a.entry = g->t0 - rr(g, DAY, 200 * DAY);
        a.stamp = a.entry;
        if ((rc = insert_hist(g, &a, "Created", a.entry)) != ODSYNC_OK)
            return rc;
        return insert_apt(g, &a);
    }
    if ((rc = insert_hist(g, &a, "Created", a.entry)) != ODSYNC_OK)
        return rc;
    if (strcmp(kind, "Deleted") == 0) {
        int64_t when = a.entry + rr(g, 3600, a.when - a.entry);
        if (when >= g->t0)
            when = g->t0 - 1;
        return insert_hist(g, &a, "Deleted", when);
    }
    if (strcmp(kind, "Broken") == 0) {
        int cancelled = pm(g, 400);
        a.status = "Broken";
        a.stamp = a.when + rr(g, -DAY, 3 * 3600);
        if ((rc = insert_hist(g, &a, cancelled ? "Cancelled" : "Missed", a.stamp)) != ODSYNC_OK)
            return rc;
        return insert_apt(g, &a);
    }
    a.status = "UnschedList";
    a.unsched = 31;
    a.stamp = a.when + rr(g, -DAY, 3 * 3600);
    if ((rc = insert_hist(g, &a, "Changed", a.stamp)) != ODSYNC_OK)
        return rc;
    return insert_apt(g, &a);
}

/* Visits, recalls, bookings, odd appointments and commlogs of one person. */
static int history(struct gen *g, struct person *p)
{
    int active = strcmp(p->status, "Patient") == 0;
    int former = strcmp(p->status, "Inactive") == 0 || strcmp(p->status, "Archived") == 0 ||
                 strcmp(p->status, "Deceased") == 0;
    int child = p->birth_day > CLOCK_NONE_DAY && g->t0_day - p->birth_day < 13 * 365;
    int type = child ? 3 : pm(g, 120) ? 2 : 1;
    int rc = ODSYNC_OK;
    struct recall r = {.pat = p->num,
                       .type = type,
                       .sched = CLOCK_NONE_DAY,
                       .until = CLOCK_NONE_DAY,
                       .prev = CLOCK_NONE_DAY};
    int64_t last = CLOCK_NONE_DAY, last_done = 0;
    int has_visits = (active && !pm(g, 50)) || (former && !pm(g, 200));

    if (active) {
        int64_t x = rr(g, 0, 999);
        const char *kind = x < 60    ? "Broken"
                           : x < 80  ? "UnschedList"
                           : x < 110 ? "Planned"
                           : x < 130 ? "Deleted"
                                     : NULL;
        if (kind != NULL && (rc = odd_appointment(g, p, kind)) != ODSYNC_OK)
            return rc;
    }

    if (has_visits) {
        int k = (int)rr(g, 1, 4);
        int bw = pm(g, 300);
        last = active ? g->t0_day - rr(g, 1, 730) : g->t0_day - rr(g, 731, 2000);
        int64_t day = last - (k - 1) * 182;
        if (p->entry_day >= day)
            p->entry_day = day - rr(g, 1, 30);
        for (int i = 0; i < k; i++, day += rr(g, 170, 195)) {
            if (i == k - 1)
                day = last;
            rc = visit(g, p, day, type, i == 0, bw && (k - 1 - i) % 2 == 0, &last_done);
            if (rc != ODSYNC_OK)
                return rc;
        }
        if (p->stamp < last_done) /* DateFirstVisit changed with the first visit */
            p->stamp = last_done;
        if (bw) {
            struct recall b = r;
            b.type = 4;
            b.prev = last;
            clock_add_interval(last, "1y", &b.due);
            b.stamp = last_done;
            if ((rc = insert_recall(g, &b)) != ODSYNC_OK)
                return rc;
        }
    }
    if (!(has_visits || (active && pm(g, 600))))
        return ODSYNC_OK;
    if (has_visits) {
        r.prev = last;
        clock_add_interval(last, rtypes[type - 1].interval, &r.due);
        r.stamp = last_done;
    } else {
        r.due = p->entry_day;
        r.stamp = p->entry_day * DAY + rr(g, 8 * 3600, 17 * 3600);
    }
    if (pm(g, 40)) {
        r.disabled = 1;
        int64_t t = g->t0 - rr(g, DAY, 300 * DAY);
        if (t > r.stamp)
            r.stamp = t;
    } else if (pm(g, 30)) {
        r.until = g->t0_day + rr(g, 15, 120);
        int64_t t = g->t0 - rr(g, DAY, 30 * DAY);
        if (t > r.stamp)
            r.stamp = t;
    }
    if (pm(g, 100))
        r.status = rr(g, 30, 33);
    if (pm(g, 50))
        r.note = "Prefers Tuesday mornings.\r\nCall cell.";
    if (active && !r.disabled && r.until == CLOCK_NONE_DAY && r.due >= g->t0_day - 90 &&
        pm(g, 400)) {
        if ((rc = book(g, p, &r)) != ODSYNC_OK)
            return rc;
    } else if (active && r.due >= g->t0_day - 60 && r.due <= g->t0_day + 14 && pm(g, 400)) {
        int n = (int)rr(g, 1, 2);
        for (int i = 0; i < n; i++) {
            int text = pm(g, 600);
            rc = insert_comm(g, p->num, biz_time(g, 1, 30), 240,
                             text ? "Recall reminder sent by text." : "Recall reminder emailed.",
                             text ? "Text" : "Email");
            if (rc != ODSYNC_OK)
                return rc;
        }
    }
    return insert_recall(g, &r);
}

/* One family of size n: the guarantor first. */
static int family(struct gen *g, int n)
{
    struct person members[5];
    char home[24] = "";
    const char *lname = gen_last_name(&g->rng);
    const char *street = streets[rr(g, 0, (int64_t)UTIL_ARRAY_LEN(streets) - 1)];
    const char *city = cities[rr(g, 0, (int64_t)UTIL_ARRAY_LEN(cities) - 1)];
    char address[64], zip[8];
    int64_t clinic = 0, priprov = rr(g, 1, 2);
    double total = 0.0;
    int rc;

    if (g->nclinics > 0 && !pm(g, 50))
        clinic = rr(g, 1, g->nclinics);
    snprintf(address, sizeof(address), "%d %s", (int)rr(g, 1, 9999), street);
    snprintf(zip, sizeof(zip), "97%03d", (int)rr(g, 0, 999));
    if (pm(g, 500))
        make_phone(g, home, sizeof(home));
    int spouse = n >= 2 && pm(g, 700);
    for (int i = 0; i < n; i++) {
        struct person *p = &members[i];
        memset(p, 0, sizeof(*p));
        p->lname = lname;
        p->city = city;
        snprintf(p->address, sizeof(p->address), "%s", address);
        snprintf(p->zip, sizeof(p->zip), "%s", zip);
        snprintf(p->home, sizeof(p->home), "%s", home);
        p->clinic = clinic;
        p->priprov = priprov;
        p->secprov = pm(g, 500) ? rr(g, 3, 4) : 0;
        int child = i >= 1 + spouse;
        make_person(g, p, child);
        p->guarantor = members[0].num;
        if (i == 0) {
            p->gender = pm(g, 20) ? "Unknown" : pm(g, 500) ? "Female" : "Male";
            p->position = spouse ? "Married" : pm(g, 100) ? "Divorced" : "Single";
        } else if (!child) {
            p->gender = strcmp(members[0].gender, "Male") == 0 ? "Female" : "Male";
            p->position = "Married";
        } else {
            p->gender = pm(g, 500) ? "Female" : "Male";
            p->position = "Child";
            if (pm(g, 300))
                snprintf(p->email, sizeof(p->email), "%s", members[0].email);
        }
        total += p->balance;
    }
    members[0].baltotal = total;
    for (int i = 0; i < n; i++) {
        if ((rc = history(g, &members[i])) != ODSYNC_OK)
            return rc;
        if (pm(g, 80) &&
            (rc = insert_comm(g, members[i].num, biz_time(g, 1, 300), 237,
                              "Called about insurance coverage.", "Phone")) != ODSYNC_OK)
            return rc;
        if ((rc = insert_person(g, &members[i])) != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

/* Clinics, providers, preferences and recall types of the office. */
static int office_setup(struct gen *g)
{
    struct sim *s = g->s;
    char dt[CLOCK_DT_LEN], title[64];
    int o = g->office;
    int rc = ODSYNC_STORE;

    if (o == 1 || !pm(g, 333))
        g->nclinics = (int)rr(g, 2, 3);
    for (int i = 0; i < g->nclinics; i++) {
        if (store_run(s,
                      "INSERT INTO clinic VALUES (?1, ?2, ?3, ?4, '', 'Lakeview', 'OR', '97000',"
                      " ?5, ?6, 0)",
                      DBARGS(DV_I(o), DV_I(i + 1), DV_T(clinic_names[i].descript),
                             DV_T(clinic_names[i].address), DV_T(clinic_names[i].phone),
                             DV_T(clinic_names[i].abbr))) < 0)
            goto cleanup;
    }
    if (o == 1 && store_run(s,
                            "INSERT INTO clinic VALUES (?1, 9, 'Old Annex (closed)', "
                            "'1 Annex Rd', '', 'Lakeview', 'OR', '97000', '5550104400', "
                            "'Annex', 1)",
                            DBARGS(DV_I(o))) < 0)
        goto cleanup;
    fmt_dt(g->t0 - 400 * DAY, dt);
    if (store_run(
            s,
            "INSERT INTO provider VALUES (?1, 1, 'DOC1', 'Sample', 'Dana', 'R', 'DDS', 0, 0,"
            " 'Active', ?2), (?1, 2, 'DOC2', 'Example', 'Lee', '', 'DMD', 0, 0, 'Active', ?2),"
            " (?1, 3, 'HYG1', 'Placeholder', 'Robin', '', 'RDH', 1, 0, 'Active', ?2),"
            " (?1, 4, 'HYG2', 'Testcase', 'Sam', 'J', 'RDH', 1, 0, 'Active', ?2)",
            DBARGS(DV_I(o), DV_T(dt))) < 0)
        goto cleanup;
    snprintf(title, sizeof(title), "%s",
             g->nclinics > 0 ? "Harbor Lane Dental Group" : "Example Family Dental");
    if (store_run(s,
                  "INSERT INTO pref VALUES (?1, 3, 'ApptBubbleDelay', '0'),"
                  " (?1, 15, 'RecallDaysPast', '365'), (?1, 16, 'RecallDaysFuture', '180'),"
                  " (?1, 42, 'PracticeTitle', ?2), (?1, 43, 'PracticePhone', '5550104400'),"
                  " (?1, 44, 'PracticeAddress', '400 Sample Ave'),"
                  " (?1, 45, 'PracticeCity', 'Lakeview'), (?1, 46, 'PracticeST', 'OR'),"
                  " (?1, 47, 'PracticeZip', '97000'), (?1, 88, 'EasyNoClinics', ?3),"
                  " (?1, 120, 'RecallTypesShowingInList', '1,2'),"
                  " (?1, 121, 'RecallShowIfDaysFirstReminder', '0'),"
                  " (?1, 122, 'RecallMaxNumberReminders', '3'),"
                  " (?1, 180, 'LanguagesUsedByPatients', 'eng,spa'),"
                  " (?1, 200, 'ConfirmStatusEmailed', '23'), (?1, 201, 'ConfirmStatusTextMessaged',"
                  " '23'), (?1, 260, 'TimeZone', '')",
                  DBARGS(DV_I(o), DV_T(title), DV_T(g->nclinics > 0 ? "0" : "1"))) < 0)
        goto cleanup;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(rtypes); i++) {
        if (store_run(s, "INSERT INTO recalltype VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                      DBARGS(DV_I(o), DV_I(rtypes[i].num), DV_T(rtypes[i].descript),
                             DV_T(rtypes[i].interval), DV_T(rtypes[i].pattern),
                             DV_T(rtypes[i].procs))) < 0)
            goto cleanup;
    }
    rc = ODSYNC_OK;
cleanup:
    return rc;
}

static int gen_office(struct sim *s, int office)
{
    struct gen g;
    int rc = ODSYNC_STORE;
    static const char *const sqls[G_COUNT] = {
        [G_PAT] = pat_sql,
        [G_RECALL] = recall_sql,
        [G_PROC] = proc_sql,
        [G_COMM] = comm_sql,
        [G_APT] = "INSERT INTO appointment (office, " STORE_APT_COLS
                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                  " ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30,"
                  " ?31, ?32)",
        [G_HIST] = "INSERT INTO histappointment (office, HistApptNum, HistUserNum,"
                   " HistDateTStamp, HistApptAction, ApptSource, " STORE_APT_COLS
                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                   " ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30,"
                   " ?31, ?32, ?33, ?34, ?35, ?36, ?37)",
    };

    memset(&g, 0, sizeof(g));
    g.s = s;
    g.office = office;
    g.rng =
        s->seed * UINT64_C(0x2545f4914f6cdd1d) ^ (uint64_t)office * UINT64_C(0x9e3779b97f4a7c15);
    sim_rng(&g.rng);
    g.t0_day = s->start_day;
    g.t0 = s->start_day * DAY;
    g.next_pat = g.next_recall = g.next_apt = g.next_hist = g.next_proc = g.next_comm = 1;
    for (int i = 0; i < G_COUNT; i++) {
        g.st[i] = store_prepare(s, sqls[i], NULL, 0);
        if (g.st[i] == NULL)
            goto cleanup;
    }
    if (office_setup(&g) != ODSYNC_OK)
        goto cleanup;
    while (g.next_pat <= s->patients) {
        static const int size_w[] = {300, 250, 200, 150, 100};
        int64_t x = rr(&g, 0, 999);
        int n = 1;
        for (int i = 0; i < 5 && x >= size_w[i]; i++, n++)
            x -= size_w[i];
        if (n > 5)
            n = 5;
        if (g.next_pat + n - 1 > s->patients)
            n = (int)(s->patients - g.next_pat + 1);
        if (family(&g, n) != ODSYNC_OK)
            goto cleanup;
    }
    rc = ODSYNC_OK;
cleanup:
    for (int i = 0; i < G_COUNT; i++)
        sqlite3_finalize(g.st[i]);
    return rc;
}

/* The meta rows describing the dataset, as "k=v;" text. */
static void meta_text(struct sim *s, char *out, size_t len)
{
    snprintf(out, len, "odsim-1;seed=%llu;patients=%lld;offices=%d;day=%lld",
             (unsigned long long)s->seed, (long long)s->patients, s->noffices,
             (long long)s->start_day);
}

int gen_matches(struct sim *s)
{
    char want[160], have[160];
    meta_text(s, want, sizeof(want));
    return store_text(s, "SELECT v FROM meta WHERE k = 'dataset'", NULL, 0, have, sizeof(have)) ==
               1 &&
           strcmp(want, have) == 0;
}

int gen_generate(struct sim *s)
{
    char meta[160];
    int rc = ODSYNC_STORE;
    int64_t t = util_monotonic_ms();

    if (store_exec(s, "BEGIN; DELETE FROM meta; DELETE FROM def; DELETE FROM proccode;"
                      " DELETE FROM clinic; DELETE FROM provider; DELETE FROM pref;"
                      " DELETE FROM recalltype; DELETE FROM patient; DELETE FROM recall;"
                      " DELETE FROM appointment; DELETE FROM histappointment;"
                      " DELETE FROM procedurelog; DELETE FROM commlog;"
                      " DELETE FROM subscription;") != ODSYNC_OK)
        return ODSYNC_STORE;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(defs); i++) {
        if (store_run(s, "INSERT INTO def VALUES (?1, ?2, ?3, ?4, ?5)",
                      DBARGS(DV_I(defs[i].num), DV_I(defs[i].cat), DV_T(defs[i].name),
                             DV_T(defs[i].value), DV_I(i))) < 0)
            goto cleanup;
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(codes); i++) {
        if (store_run(s, "INSERT INTO proccode VALUES (?1, ?2, ?3, ?4, ?5)",
                      DBARGS(DV_I(codes[i].num), DV_T(codes[i].code), DV_T(codes[i].descript),
                             DV_T(codes[i].abbr), DV_T(codes[i].fee))) < 0)
            goto cleanup;
    }
    for (int o = 1; o <= s->noffices; o++) {
        if (gen_office(s, o) != ODSYNC_OK)
            goto cleanup;
    }
    meta_text(s, meta, sizeof(meta));
    if (store_run(s, "INSERT INTO meta VALUES ('dataset', ?1)", DBARGS(DV_T(meta))) < 0)
        goto cleanup;
    rc = store_exec(s, "COMMIT");
cleanup:
    if (rc != ODSYNC_OK)
        store_exec(s, "ROLLBACK");
    else
        log_info(ODSIM_LOG, "generated %d office(s) x %lld patients in %lld ms", s->noffices,
                 (long long)s->patients, (long long)(util_monotonic_ms() - t));
    return rc;
}
