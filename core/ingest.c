/*
 * ingest.c: checkpointed backfill and incremental passes over one office.
 */
#include "ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "http_client.h"
#include "log.h"
#include "model.h"
#include "od_rest.h"
#include "tz.h"
#include "util.h"

#define DT_LEN         20 /* "YYYY-MM-DD HH:MM:SS" + NUL */
#define QUERY_MAX      512
#define PROGRESS_PAGES 50

static const char *const resource_names[INGEST_RESOURCE_COUNT] = {
    "clinics", "patients", "appointments", "procedures", "deleted_appointments", "recalls"};

const char *ingest_resource_name(enum ingest_resource r)
{
    return (unsigned)r < INGEST_RESOURCE_COUNT ? resource_names[r] : "unknown";
}

/* A resource's checkpoint. */
struct cp {
    char phase[16];
    int64_t next_offset;
    char watermark[DT_LEN];
    char pass_min[DT_LEN];
    int64_t completed_at;
};

/* Copy a column into a fixed buffer ("" for NULL). */
static void col_copy(sqlite3_stmt *s, int i, char *buf, size_t len)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    util_fmt(buf, len, "%s", t ? (const char *)t : "");
}

static int cp_load(struct store *st, const char *office, const char *name, struct cp *cp)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT phase, next_offset, watermark, pass_min,"
                                     " completed_at FROM od_checkpoints"
                                     " WHERE office = ? AND resource = ?");
    int rc;
    memset(cp, 0, sizeof(*cp));
    util_fmt(cp->phase, sizeof(cp->phase), "backfill");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        col_copy(s, 0, cp->phase, sizeof(cp->phase));
        cp->next_offset = sqlite3_column_int64(s, 1);
        col_copy(s, 2, cp->watermark, sizeof(cp->watermark));
        col_copy(s, 3, cp->pass_min, sizeof(cp->pass_min));
        cp->completed_at = sqlite3_column_int64(s, 4);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* Save a checkpoint (inside the page's transaction). */
static int cp_save(struct store *st, const char *office, const char *name, const struct cp *cp)
{
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO od_checkpoints (office, resource, phase, next_offset, watermark,"
            " pass_min, completed_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            " ON CONFLICT (office, resource) DO UPDATE SET phase = ?3, next_offset = ?4,"
            " watermark = ?5, pass_min = ?6, completed_at = ?7, updated_at = ?8");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, cp->phase, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, cp->next_offset);
    if (cp->watermark[0])
        sqlite3_bind_text(s, 5, cp->watermark, -1, SQLITE_STATIC);
    if (cp->pass_min[0])
        sqlite3_bind_text(s, 6, cp->pass_min, -1, SQLITE_STATIC);
    if (cp->completed_at)
        sqlite3_bind_int64(s, 7, cp->completed_at);
    sqlite3_bind_int64(s, 8, util_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* ---- row handlers -------------------------------------------------------------------- */

typedef int (*apply_fn)(struct store *st, const char *office, const cJSON *elem, int *changed,
                        char *why, size_t why_len);

static int apply_clinic(struct store *st, const char *office, const cJSON *elem, int *changed,
                        char *why, size_t why_len)
{
    struct model_clinic m;
    int rc = od_rest_clinic(elem, &m, why, why_len);
    if (rc == ODSYNC_OK)
        rc = model_put_clinic(st, office, &m, changed);
    model_clinic_clear(&m);
    return rc;
}

static int apply_patient(struct store *st, const char *office, const cJSON *elem, int *changed,
                         char *why, size_t why_len)
{
    struct model_patient m;
    int rc = od_rest_patient(elem, &m, why, why_len);
    if (rc == ODSYNC_OK)
        rc = model_put_patient(st, office, &m, changed);
    model_patient_clear(&m);
    return rc;
}

static int apply_appointment(struct store *st, const char *office, const cJSON *elem, int *changed,
                             char *why, size_t why_len)
{
    struct model_appointment m;
    int rc = od_rest_appointment(elem, &m, why, why_len);
    if (rc == ODSYNC_OK)
        rc = model_put_appointment(st, office, &m, changed);
    model_appointment_clear(&m);
    return rc;
}

static int apply_procedure(struct store *st, const char *office, const cJSON *elem, int *changed,
                           char *why, size_t why_len)
{
    struct model_procedure m;
    int rc = od_rest_procedure(elem, &m, why, why_len);
    if (rc == ODSYNC_OK)
        rc = model_put_procedure(st, office, &m, changed);
    model_procedure_clear(&m);
    return rc;
}

static int apply_recall(struct store *st, const char *office, const cJSON *elem, int *changed,
                        char *why, size_t why_len)
{
    struct model_recall m;
    int rc = od_rest_recall(elem, &m, why, why_len);
    if (rc == ODSYNC_OK)
        rc = model_put_recall(st, office, &m, changed);
    model_recall_clear(&m);
    return rc;
}

static int apply_deleted(struct store *st, const char *office, const cJSON *elem, int *changed,
                         char *why, size_t why_len)
{
    int64_t apt = od_rest_hist_aptnum(elem);
    if (apt <= 0) {
        util_fmt(why, why_len, "AptNum: missing or not a positive integer");
        return ODSYNC_PARSE;
    }
    return model_delete_appointment(st, office, apt, changed);
}

/* ---- paging -------------------------------------------------------------------------- */

/* What one read of a resource needs. */
struct read {
    struct store *st;
    const struct config_office *office;
    struct od_client *c;
    const struct ingest_options *opt;
    enum ingest_resource res;
    const char *query; /* path and fixed query, no Limit/Offset */
    apply_fn apply;
    int track_server_time; /* the resource has serverDateTime and a DateTStamp filter */
    int64_t recall_scope;  /* recalls: patient (> 0), all (0), or -1 when not recalls */
    struct cp cp;
    struct ingest_counts *counts;
    int64_t started_ms;
};

struct page_args {
    struct read *r;
    cJSON *items;
    int64_t offset;
};

/* Apply a page's rows and move the checkpoint, in one transaction. */
static int page_tx(struct store *st, void *arg)
{
    struct page_args *a = arg;
    struct read *r = a->r;
    const cJSON *elem;
    char why[128], *server;
    int64_t n = cJSON_GetArraySize(a->items), swept = 0;
    int rc, changed;

    if (r->recall_scope >= 0 && a->offset == 0) {
        rc = model_recall_unmark(st, r->office->id, r->recall_scope);
        if (rc != ODSYNC_OK)
            return rc;
    }
    cJSON_ArrayForEach(elem, a->items)
    {
        why[0] = '\0';
        changed = 0;
        rc = r->apply(st, r->office->id, elem, &changed, why, sizeof(why));
        if (rc == ODSYNC_PARSE) {
            r->counts->skipped++;
            log_warn("ingest", "office %s: %s: skipped a row: %s", r->office->id,
                     resource_names[r->res], why);
            continue;
        }
        if (rc != ODSYNC_OK)
            return rc;
        r->counts->rows++;
        r->counts->changed += changed;
        /* Only a real "YYYY-MM-DD HH:MM:SS" may become the watermark: it is compared as text
         * and parsed back by since_param, which would otherwise fail on every later pass and
         * stall this resource for good. Anything else counts as absent (the old one stays). */
        server = r->track_server_time ? model_datetime(od_rest_server_time(elem)) : NULL;
        if (server != NULL && (r->cp.pass_min[0] == '\0' || strcmp(server, r->cp.pass_min) < 0))
            util_fmt(r->cp.pass_min, sizeof(r->cp.pass_min), "%s", server);
        util_free(server);
    }
    r->cp.next_offset = a->offset + n;
    if (n < od_client_page_size(r->c)) { /* the last page: the pass over this resource ends */
        if (r->recall_scope >= 0) {
            rc = model_recall_sweep(st, r->office->id, r->recall_scope, &swept);
            if (rc != ODSYNC_OK)
                return rc;
            r->counts->changed += swept;
        }
        util_fmt(r->cp.phase, sizeof(r->cp.phase), "incremental");
        if (r->cp.pass_min[0])
            util_fmt(r->cp.watermark, sizeof(r->cp.watermark), "%s", r->cp.pass_min);
        r->cp.pass_min[0] = '\0';
        r->cp.next_offset = 0;
        r->cp.completed_at = util_now_ms();
    }
    if (r->recall_scope > 0)
        return ODSYNC_OK; /* per-patient recall reads keep the full read's checkpoint */
    return cp_save(st, r->office->id, resource_names[r->res], &r->cp);
}

/* A progress line every PROGRESS_PAGES pages and at the end. */
static void progress(const struct read *r, int done)
{
    double secs = (double)(util_monotonic_ms() - r->started_ms) / 1000.0;
    if (r->opt == NULL || r->opt->progress == NULL)
        return;
    fprintf(r->opt->progress,
            "%s %-20s %s %lld rows (%lld changed, %lld skipped), %lld pages, %lld requests, "
            "%.1f s%s\n",
            r->office->id, resource_names[r->res], done ? "done:" : "...  ",
            (long long)r->counts->rows, (long long)r->counts->changed,
            (long long)r->counts->skipped, (long long)r->counts->pages,
            (long long)r->counts->requests, secs,
            r->office->od_min_interval_ms > 0 && !done ? " (paced by the office's tier)" : "");
    fflush(r->opt->progress);
}

/* One page of r->query, fetched on the caller's thread or on its own (fetch_start). Only one
 * thread uses the office's client at a time: the reader starts a fetch and joins it before
 * the next, and stores the page it holds meanwhile. */
struct fetch {
    struct read *r;
    int64_t offset;
    cJSON *items;   /* the page; owned by whoever holds the fetch */
    cJSON *discard; /* a stored page to delete first (taken), so the reader never waits on
                       freeing thousands of nodes: as costly as storing them */
    int rc;
    int64_t requests;
    char err[256];
    pthread_t thread;
    int threaded;
};

/* Fetch f->offset now, on this thread. */
static void fetch_run(struct fetch *f)
{
    struct od_client_stats before, after;
    od_client_stats(f->r->c, &before);
    f->rc = od_client_get_page(f->r->c, f->r->query, f->offset, &f->items, f->err, sizeof(f->err));
    od_client_stats(f->r->c, &after);
    f->requests = after.requests - before.requests;
}

static void *fetch_main(void *arg)
{
    struct fetch *f = arg;
    cJSON_Delete(f->discard);
    f->discard = NULL;
    fetch_run(f);
    return NULL;
}

/* Reads fetching ahead at once, process-wide. Each holds up to three pages (a 1000-row page
 * of procedures is about 4 MB parsed); two cores gain nothing from more, and a hundred
 * offices syncing together would otherwise hold three pages each. */
#define FETCH_AHEAD_SLOTS 4
static atomic_int fetching_ahead;

/* Take a slot to fetch ahead (1), or 0 when all are taken: then read serially. */
static int slot_take(void)
{
    if (atomic_fetch_add(&fetching_ahead, 1) < FETCH_AHEAD_SLOTS)
        return 1;
    atomic_fetch_sub(&fetching_ahead, 1);
    return 0;
}

static void slot_give(void)
{
    atomic_fetch_sub(&fetching_ahead, 1);
}

/* Start fetching the page at offset on a thread of its own, so that Open Dental's (or the
 * network's) time to serve it overlaps the store's time to write the page before; that
 * thread first frees discard (takes ownership). Without a slot or a thread the fetch simply
 * happens in fetch_join. */
static void fetch_start(struct fetch *f, struct read *r, int64_t offset, cJSON *discard)
{
    memset(f, 0, sizeof(*f));
    f->r = r;
    f->offset = offset;
    f->discard = discard;
    if (slot_take()) {
        f->threaded = pthread_create(&f->thread, NULL, fetch_main, f) == 0;
        if (!f->threaded)
            slot_give();
    }
    if (!f->threaded) { /* a serial read: free the stored page now, fetch in fetch_join */
        cJSON_Delete(f->discard);
        f->discard = NULL;
    }
}

/* Wait for the fetch started by fetch_start; the page is then in f->items. */
static void fetch_join(struct fetch *f)
{
    if (f->threaded) {
        pthread_join(f->thread, NULL);
        slot_give();
    } else {
        fetch_main(f);
    }
    f->threaded = 0;
}

/* Take a finished fetch's outcome into the read: counts, and the error text on failure. */
static int fetch_take(struct fetch *f, char *err, size_t errlen)
{
    f->r->counts->requests += f->requests;
    if (f->rc != ODSYNC_OK)
        util_fmt(err, errlen, "%s", f->err);
    else
        f->r->counts->pages++;
    return f->rc;
}

/* 1 when the pass was asked to stop (shutdown); err then says so. */
static int stopping(const struct read *r, char *err, size_t errlen)
{
    if (r->opt == NULL || r->opt->stop == NULL || !*r->opt->stop)
        return 0;
    util_fmt(err, errlen, "office %s: pass stopped (shutdown)", r->office->id);
    return 1;
}

/* Page through r->query from the checkpoint's offset to the end. While a full page is being
 * stored the next one is already being fetched; a page is only stored, and the checkpoint
 * only moved, in order, so a failure or a crash leaves the same state as a serial read. */
static int read_all(struct read *r, char *err, size_t errlen)
{
    struct fetch cur, next;
    struct page_args a = {r, NULL, r->cp.next_offset};
    cJSON *stored = NULL; /* the page stored last, deleted by the next fetch */
    int64_t n;
    int rc, more;

    r->started_ms = util_monotonic_ms();
    if (stopping(r, err, errlen))
        return ODSYNC_RETRY; /* the checkpoint holds what was committed */
    memset(&cur, 0, sizeof(cur));
    memset(&next, 0, sizeof(next));
    cur.r = r;
    cur.offset = a.offset;
    fetch_run(&cur);
    for (;;) {
        rc = fetch_take(&cur, err, errlen);
        if (rc != ODSYNC_OK)
            break;
        a.items = cur.items;
        a.offset = cur.offset;
        n = cJSON_GetArraySize(a.items);
        more = n >= od_client_page_size(r->c) && !stopping(r, err, errlen);
        if (more) {
            fetch_start(&next, r, a.offset + n, stored);
            stored = NULL;
        }
        rc = store_tx(r->st, page_tx, &a);
        cJSON_Delete(stored);
        stored = a.items;
        a.items = NULL;
        if (more)
            fetch_join(&next);
        if (rc != ODSYNC_OK) {
            if (more)
                cJSON_Delete(next.items);
            util_fmt(err, errlen, "office %s: %s: store error", r->office->id,
                     resource_names[r->res]);
            break;
        }
        if (n < od_client_page_size(r->c)) {
            progress(r, 1);
            break;
        }
        if (!more) { /* stopping: err says so */
            rc = ODSYNC_RETRY;
            break;
        }
        if (r->counts->pages % PROGRESS_PAGES == 0)
            progress(r, 0);
        cur = next;
    }
    cJSON_Delete(stored);
    return rc;
}

/* "YYYY-MM-DD HH:MM:SS" minus seconds (naive office-local arithmetic, no zone), into out. */
static int shift_back(const char *datetime, int64_t minus_s, char out[DT_LEN])
{
    int64_t naive;
    if (tz_parse_local(datetime, &naive) != ODSYNC_OK)
        return ODSYNC_PARSE;
    tz_format_local(naive - minus_s, out);
    return ODSYNC_OK;
}

/* The watermark minus the overlap, percent-encoded for a query into out. */
static int since_param(const char *watermark, int64_t minus_s, char *out, size_t len)
{
    char buf[DT_LEN];
    int rc = shift_back(watermark, minus_s, buf);
    return rc == ODSYNC_OK ? http_url_encode(buf, out, len) : rc;
}

/* Read one resource with a DateTStamp filter once it is incremental. */
static int read_resource(struct read *r, const char *path, const char *fixed, char *err,
                         size_t errlen)
{
    char query[QUERY_MAX], since[64];
    int rc = cp_load(r->st, r->office->id, resource_names[r->res], &r->cp);
    if (rc != ODSYNC_OK)
        return rc;
    if (strcmp(r->cp.phase, "incremental") == 0 && r->cp.watermark[0] && r->track_server_time) {
        rc = since_param(r->cp.watermark, r->office->od_overlap_s, since, sizeof(since));
        if (rc != ODSYNC_OK)
            return rc;
        util_fmt(query, sizeof(query), "%s?DateTStamp=%s%s%s", path, since, fixed ? "&" : "",
                 fixed ? fixed : "");
    } else {
        util_fmt(query, sizeof(query), "%s%s%s", path, fixed ? "?" : "", fixed ? fixed : "");
    }
    r->query = query;
    return read_all(r, err, errlen);
}

/* Deleted appointments since a day before the last complete read of them. The window must
 * not start from the appointments' watermark as it is now: this pass's appointment read has
 * just moved it to about "now", so after more than a day without a complete pass (office
 * offline, odsync stopped) the deletions of that gap would fall before the window and the
 * deleted appointments would stay in the model for ever. So this read keeps its own
 * watermark: the appointments' watermark when it last completed (no later than the office
 * clock at that moment); before its first complete read, the appointments' watermark. */
static int read_deleted(struct read *r, char *err, size_t errlen)
{
    struct cp apts;
    char query[QUERY_MAX], day[DT_LEN];
    const char *since;
    int rc = cp_load(r->st, r->office->id, resource_names[INGEST_APPOINTMENTS], &apts);
    if (rc != ODSYNC_OK || strcmp(apts.phase, "incremental") != 0 || !apts.watermark[0])
        return rc; /* during the backfill deleted appointments are simply absent */
    rc = cp_load(r->st, r->office->id, resource_names[INGEST_DELETED], &r->cp);
    if (rc != ODSYNC_OK)
        return rc;
    since = r->cp.watermark[0] ? r->cp.watermark : apts.watermark;
    if (shift_back(since, 86400, day) != ODSYNC_OK)
        return ODSYNC_OK;
    util_fmt(query, sizeof(query), "/histappointments?HistApptAction=Deleted&dateStart=%.10s", day);
    util_fmt(r->cp.phase, sizeof(r->cp.phase), "incremental");
    r->cp.next_offset = 0; /* the whole window every time: a repeated delete changes nothing */
    /* page_tx makes this the watermark when the read completes; until then the old one stays */
    util_fmt(r->cp.pass_min, sizeof(r->cp.pass_min), "%s", apts.watermark);
    r->query = query;
    return read_all(r, err, errlen);
}

/* Patients marked dirty (changed this pass), up to max; *n set. Caller frees. */
static int64_t *dirty_patients(struct store *st, const char *office, int64_t max, int64_t *n)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT patnum FROM od_dirty WHERE office = ? LIMIT ?");
    int64_t *out = util_calloc((size_t)(max > 0 ? max : 1), sizeof(*out));
    *n = 0;
    if (s == NULL || out == NULL) {
        util_free(out);
        return NULL;
    }
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, max);
    while (*n < max && sqlite3_step(s) == SQLITE_ROW)
        out[(*n)++] = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return out;
}

/* Recalls: a full reconciliation when due, else those of the changed patients. */
static int read_recalls(struct read *r, int full, char *err, size_t errlen)
{
    struct model_counts mc;
    char query[QUERY_MAX];
    int64_t *pats = NULL, n = 0, i, full_pages;
    int rc = cp_load(r->st, r->office->id, resource_names[INGEST_RECALLS], &r->cp);

    if (rc == ODSYNC_OK)
        rc = model_count(r->st, r->office->id, &mc);
    if (rc != ODSYNC_OK)
        return rc;
    full_pages = mc.recalls / od_client_page_size(r->c) + 1;
    if (!full && strcmp(r->cp.phase, "incremental") == 0 && r->cp.next_offset == 0 &&
        util_now_ms() - r->cp.completed_at < r->office->od_recall_reconcile_h * 3600000) {
        pats = dirty_patients(r->st, r->office->id, full_pages + 1, &n);
        if (pats == NULL)
            return ODSYNC_NOMEM;
        full = n > full_pages; /* a full read is cheaper than one request per patient */
    } else {
        full = 1;
    }
    if (full) {
        r->recall_scope = 0;
        util_fmt(query, sizeof(query), "/recalls");
        r->query = query;
        rc = read_all(r, err, errlen);
    }
    for (i = 0; !full && i < n && rc == ODSYNC_OK; i++) {
        r->recall_scope = pats[i];
        util_fmt(query, sizeof(query), "/recalls?PatNum=%lld", (long long)pats[i]);
        r->query = query;
        r->cp.next_offset = 0;
        rc = read_all(r, err, errlen);
    }
    util_free(pats);
    return rc;
}

/* Record the office's Open Dental state. */
static void save_state(struct store *st, const struct config_office *office, struct od_client *c)
{
    const char *detail = NULL;
    const char *state = od_state_name(od_client_state(c, &detail));
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO od_office_state (office, state, detail, since, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (office) DO UPDATE SET"
            " since = CASE WHEN state = ?2 THEN since ELSE ?4 END, state = ?2, detail = ?3,"
            " updated_at = ?4");
    if (s == NULL)
        return;
    sqlite3_bind_text(s, 1, office->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, util_now_ms());
    if (sqlite3_step(s) != SQLITE_DONE)
        log_error("ingest", "office %s: cannot record its state", office->id);
    sqlite3_reset(s);
}

/* A read of resource res with its handler. */
static void read_init(struct read *r, struct store *st, const struct config_office *office,
                      struct od_client *c, const struct ingest_options *opt,
                      enum ingest_resource res, apply_fn apply, int server_time,
                      struct ingest_report *rep)
{
    memset(r, 0, sizeof(*r));
    r->st = st;
    r->office = office;
    r->c = c;
    r->opt = opt;
    r->res = res;
    r->apply = apply;
    r->track_server_time = server_time;
    r->recall_scope = -1;
    r->counts = &rep->res[res];
}

int ingest_office(struct store *st, const struct config_office *office, struct od_client *c,
                  const struct ingest_options *opt, struct ingest_report *rep)
{
    static const struct {
        enum ingest_resource res;
        const char *path, *fixed;
        apply_fn apply;
        int server_time;
    } plain[] = {
        {INGEST_CLINICS, "/clinics", NULL, apply_clinic, 0},
        {INGEST_PATIENTS, "/patients/Simple", NULL, apply_patient, 1},
        {INGEST_APPOINTMENTS, "/appointments", NULL, apply_appointment, 1},
        {INGEST_PROCEDURES, "/procedurelogs", "ProcStatus=C", apply_procedure, 1},
    };
    struct od_client_stats before, after;
    struct read r;
    size_t i;
    int rc = ODSYNC_OK;

    memset(rep, 0, sizeof(*rep));
    od_client_stats(c, &before);
    for (i = 0; i < UTIL_ARRAY_LEN(plain) && rc == ODSYNC_OK; i++) {
        read_init(&r, st, office, c, opt, plain[i].res, plain[i].apply, plain[i].server_time, rep);
        rc = read_resource(&r, plain[i].path, plain[i].fixed, rep->detail, sizeof(rep->detail));
    }
    if (rc == ODSYNC_OK) {
        read_init(&r, st, office, c, opt, INGEST_DELETED, apply_deleted, 0, rep);
        rc = read_deleted(&r, rep->detail, sizeof(rep->detail));
    }
    if (rc == ODSYNC_OK) {
        read_init(&r, st, office, c, opt, INGEST_RECALLS, apply_recall, 0, rep);
        rc = read_recalls(&r, opt != NULL && opt->full_recalls, rep->detail, sizeof(rep->detail));
    }
    od_client_stats(c, &after);
    rep->requests = after.requests - before.requests;
    rep->complete = rc == ODSYNC_OK;
    rep->status = rc;
    save_state(st, office, c);
    if (rc != ODSYNC_OK)
        log_warn("ingest", "%s", rep->detail[0] ? rep->detail : odsync_status_name(rc));
    return rc;
}

int ingest_checkpoint_get(struct store *st, const char *office, enum ingest_resource r,
                          struct ingest_checkpoint *out)
{
    struct cp cp;
    int rc = cp_load(st, office, ingest_resource_name(r), &cp);
    memset(out, 0, sizeof(*out));
    if (rc != ODSYNC_OK)
        return rc;
    util_fmt(out->phase, sizeof(out->phase), "%s", cp.phase);
    util_fmt(out->watermark, sizeof(out->watermark), "%s", cp.watermark);
    out->completed_at = cp.completed_at;
    return ODSYNC_OK;
}

int ingest_office_state(struct store *st, const char *office, char *state, size_t state_len,
                        char *detail, size_t detail_len)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT state, detail FROM od_office_state WHERE office = ?");
    int rc;
    util_fmt(state, state_len, "unknown");
    util_fmt(detail, detail_len, "no pass yet");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        col_copy(s, 0, state, state_len);
        col_copy(s, 1, detail, detail_len);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}
