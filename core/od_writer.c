/*
 * od_writer.c: the built-in "opendental" sink (commlogs into Open Dental) and its enqueue.
 */
#include "od_writer.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "host_api.h"
#include "keys.h"
#include "od_client.h"
#include "outbox.h"
#include "records.h"
#include "tz.h"
#include "util.h"

#define ERR_MAX      256
#define DETAIL_MAX   320
#define NOTE_PROBE   12 /* bytes of the Note looked for in an error text */
#define COMMLOG_PATH "/commlogs"

/* One configured office as the writer sees it. */
struct writer_office {
    const struct config_office *office; /* borrowed from the config */
    struct od_client *client;           /* owned; NULL until the office's first commlog */
    int halted; /* within one batch: ODSYNC_OK, or the class the office's remaining items get
                   without a request (AUTH, RETRY) */
};

/* The instance. Calls are serialized by the host (no ODSYNC_CAP_CONCURRENT). */
struct od_writer {
    const struct odsync_host *host; /* borrowed, valid until destroy */
    odsync_host_ctx *ctx;           /* borrowed, valid until destroy */
    struct writer_office *offices;  /* owned, one per configured office */
    size_t n_offices;
};

/* The office with id, or NULL. Borrowed from w. */
static struct writer_office *find_office(struct od_writer *w, const char *id)
{
    size_t i;
    for (i = 0; id != NULL && i < w->n_offices; i++)
        if (strcmp(w->offices[i].office->id, id) == 0)
            return &w->offices[i];
    return NULL;
}

/* Remove patient data from an error text in place: the text is cut where the record's Note
 * (its first NOTE_PROBE bytes) begins, and every number equal to its PatNum becomes '#'.
 * body is the record's JSON (borrowed). */
static void scrub(char *text, size_t len, const char *body)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(j, "Note");
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "PatNum");
    char probe[NOTE_PROBE + 1], num[32];
    char *at, *p;
    size_t n, k;

    if (cJSON_IsString(note) && note->valuestring[0] != '\0') {
        util_fmt(probe, sizeof(probe), "%s", note->valuestring); /* truncation wanted */
        at = strstr(text, probe);
        if (at != NULL)
            util_fmt(at, len - (size_t)(at - text), "[note withheld]");
    }
    if (cJSON_IsNumber(pat) &&
        util_fmt(num, sizeof(num), "%lld", (long long)pat->valuedouble) == ODSYNC_OK) {
        n = strlen(num);
        for (p = text; *p != '\0'; p += k) {
            for (k = 0; p[k] >= '0' && p[k] <= '9'; k++)
                ;
            if (k == 0) {
                k = 1;
                continue;
            }
            if (k == n && strncmp(p, num, n) == 0) {
                memmove(p + 1, p + n, strlen(p + n) + 1);
                p[0] = '#';
                k = 1;
            }
        }
    }
    cJSON_Delete(j);
}

/* The CommlogNum of a POST answer as text into buf, or NULL (no object: Open Dental before
 * 23.3.7). Returns buf or NULL. */
static const char *commlog_num(const cJSON *answer, char *buf, size_t len)
{
    const cJSON *num = cJSON_GetObjectItemCaseSensitive(answer, "CommlogNum");
    int64_t v;
    if (cJSON_IsNumber(num) && num->valuedouble >= 1 && num->valuedouble < 9007199254740992.0)
        return util_fmt(buf, len, "%lld", (long long)num->valuedouble) == ODSYNC_OK ? buf : NULL;
    if (cJSON_IsString(num) && util_parse_i64(num->valuestring, 1, INT64_MAX, &v) == ODSYNC_OK)
        return util_fmt(buf, len, "%lld", (long long)v) == ODSYNC_OK ? buf : NULL;
    return NULL;
}

/* The result class of an od_client_post return (see od_writer.h). */
static int result_class(int rc)
{
    switch (rc) {
    case ODSYNC_OK:
    case ODSYNC_RETRY:
    case ODSYNC_AUTH:
    case ODSYNC_UNSUPPORTED:
        return rc;
    case ODSYNC_PARSE: /* a 2xx whose body is not JSON: written; never POST it again */
        return ODSYNC_OK;
    case ODSYNC_PERMANENT:
    case ODSYNC_NOT_FOUND:
        return ODSYNC_PERMANENT;
    case ODSYNC_NOMEM:
        return ODSYNC_RETRY;
    case ODSYNC_INVALID:
        return ODSYNC_CONFIG; /* the office's base URL cannot make a request URL */
    default:
        return ODSYNC_INTERNAL;
    }
}

/* The office's client, created on first use with in-client retries off (a POST repeated
 * inside od_client would be invisible to the outbox and the send guard). Owned by wo (freed
 * by writer_destroy); NULL on NOMEM. */
static struct od_client *client_of(struct writer_office *wo)
{
    if (wo->client == NULL) {
        wo->client = od_client_create(wo->office);
        if (wo->client != NULL)
            od_client_set_retry(wo->client, 0, 0, 0);
    }
    return wo->client;
}

/* POST one record and report its result as item i of batch. */
static void send_one(struct od_writer *w, odsync_batch *batch, size_t i,
                     const struct odsync_record *rec)
{
    const struct odsync_host *h = w->host;
    struct writer_office *wo;
    struct od_client *c;
    cJSON *answer = NULL;
    char err[ERR_MAX], detail[DETAIL_MAX], num[32];
    int rc, cls;

    if (rec->kind != OD_WRITER_KIND) {
        util_fmt(detail, sizeof(detail), "record kind %d is not an Open Dental commlog",
                 (int)rec->kind);
        h->result_set(batch, i, ODSYNC_UNSUPPORTED, -1, NULL, detail);
        goto cleanup;
    }
    wo = find_office(w, rec->office);
    if (wo == NULL) {
        util_fmt(detail, sizeof(detail), "office %s is not in the configuration", rec->office);
        h->result_set(batch, i, ODSYNC_PERMANENT, -1, NULL, detail);
        goto cleanup;
    }
    if (wo->halted != ODSYNC_OK) {
        util_fmt(detail, sizeof(detail),
                 "not attempted: Open Dental of office %s failed earlier in this batch (%s)",
                 wo->office->id, odsync_status_name(wo->halted));
        h->result_set(batch, i, wo->halted, -1, NULL, detail);
        goto cleanup;
    }
    c = client_of(wo);
    if (c == NULL) {
        h->result_set(batch, i, ODSYNC_RETRY, -1, NULL, "out of memory");
        goto cleanup;
    }
    err[0] = '\0';
    rc = od_client_post(c, COMMLOG_PATH, rec->json, &answer, err, sizeof(err));
    h->counter_add(w->ctx, "requests", 1);
    cls = result_class(rc);
    if (cls == ODSYNC_OK) {
        h->counter_add(w->ctx, "commlogs", 1);
        if (rc == ODSYNC_PARSE)
            h->log(w->ctx, ODSYNC_LOG_WARN,
                   "office %s: Open Dental answered POST %s with a 2xx body that is not JSON; "
                   "counted as written (never posted twice)",
                   wo->office->id, COMMLOG_PATH);
        h->result_set(batch, i, ODSYNC_OK, -1,
                      rc == ODSYNC_OK ? commlog_num(answer, num, sizeof(num)) : NULL, NULL);
        goto cleanup;
    }
    scrub(err, sizeof(err), rec->json);
    util_fmt(detail, sizeof(detail), "%s", err[0] ? err : odsync_status_name(rc));
    if (rc == ODSYNC_AUTH || rc == ODSYNC_RETRY)
        wo->halted = rc; /* the office is refusing or unreachable: spare its other items */
    h->result_set(batch, i, cls, -1, NULL, detail);
cleanup:
    cJSON_Delete(answer);
}

/* ---- the descriptor's callbacks ----------------------------------------------------- */

/* create: the core context is the struct config (borrowed, outlives the instance). */
static int writer_create(const struct odsync_host *host, odsync_host_ctx *ctx, void **instance)
{
    const struct config *cfg = host_core_ctx(ctx);
    struct od_writer *w = NULL;
    size_t i;
    int rc = ODSYNC_NOMEM;

    *instance = NULL;
    if (cfg == NULL) {
        host->set_error(ctx, "the built-in Open Dental writer needs the core's configuration");
        rc = ODSYNC_CONFIG;
        goto cleanup;
    }
    w = util_calloc(1, sizeof(*w));
    if (w == NULL)
        goto cleanup;
    w->host = host;
    w->ctx = ctx;
    w->offices = util_calloc(cfg->n_offices ? cfg->n_offices : 1, sizeof(*w->offices));
    if (w->offices == NULL)
        goto cleanup;
    for (i = 0; i < cfg->n_offices; i++)
        w->offices[i].office = &cfg->offices[i];
    w->n_offices = cfg->n_offices;
    *instance = w;
    w = NULL;
    rc = ODSYNC_OK;
cleanup:
    if (w != NULL) {
        util_free(w->offices);
        util_free(w);
    }
    return rc;
}

/* send_batch: one POST per record, in order; every item is reported. */
static int writer_send_batch(void *instance, odsync_batch *batch,
                             const struct odsync_record *const *records, size_t count)
{
    struct od_writer *w = instance;
    size_t i;
    for (i = 0; i < w->n_offices; i++)
        w->offices[i].halted = ODSYNC_OK;
    for (i = 0; i < count; i++)
        send_one(w, batch, i, records[i]);
    return ODSYNC_OK;
}

/* health: the state of each office that has written (no patient data). */
static int writer_health(void *instance, char *detail, size_t detail_len)
{
    struct od_writer *w = instance;
    struct sbuf b = {0};
    size_t i;
    int rc = ODSYNC_OK;
    enum od_state s;

    for (i = 0; i < w->n_offices; i++) {
        if (w->offices[i].client == NULL)
            continue;
        s = od_client_state(w->offices[i].client, NULL);
        if (s != OD_STATE_OK)
            rc = ODSYNC_RETRY;
        sbuf_printf(&b, "%s%s: %s", b.len ? "; " : "", w->offices[i].office->id, od_state_name(s));
    }
    util_fmt(detail, detail_len, "%s", b.data != NULL ? b.data : "ok"); /* truncation allowed */
    sbuf_free(&b);
    return rc;
}

/* destroy: the clients and the instance; accepts NULL. */
static void writer_destroy(void *instance)
{
    struct od_writer *w = instance;
    size_t i;
    if (w == NULL)
        return;
    for (i = 0; i < w->n_offices; i++)
        od_client_destroy(w->offices[i].client);
    util_free(w->offices);
    util_free(w);
}

static const struct odsync_sink_descriptor writer_descriptor = {
    .magic = ODSYNC_SINK_MAGIC,
    .abi_major = ODSYNC_SINK_ABI_MAJOR,
    .abi_minor = ODSYNC_SINK_ABI_MINOR,
    .struct_size = (uint32_t)sizeof(struct odsync_sink_descriptor),
    .max_batch = OD_WRITER_MAX_BATCH,
    .name = OD_WRITER_SINK,
    .version = ODSYNC_VERSION,
    .description = "built-in: commlogs of sent messages into Open Dental (POST /commlogs)",
    .capabilities = 0, /* no route may name it: it takes OD_WRITER_KIND records only */
    .config = NULL,
    .create = writer_create,
    .send_batch = writer_send_batch,
    .flush = NULL,
    .health = writer_health,
    .destroy = writer_destroy,
};

const struct odsync_sink_descriptor *od_writer_descriptor(void)
{
    return &writer_descriptor;
}

/* ---- enqueue ------------------------------------------------------------------------ */

/* 1 when ref is printable ASCII without spaces (fit to appear in a key as is). */
static int plain_ref(const char *ref)
{
    for (; *ref != '\0'; ref++)
        if (*ref <= ' ' || *ref > '~')
            return 0;
    return 1;
}

int od_writer_key(char *buf, size_t len, const char *office, const char *ref_key)
{
    char hex[65];
    int rc;
    if (buf == NULL || len == 0 || office == NULL || ref_key == NULL || ref_key[0] == '\0' ||
        !keys_valid_office(office))
        return ODSYNC_INVALID;
    if (plain_ref(ref_key) && strlen(office) + strlen(ref_key) + 12 <= OD_WRITER_KEY_MAX)
        return util_fmt(buf, len, "od:%s:commlog:%s", office, ref_key);
    rc = records_hash(ref_key, strlen(ref_key), hex);
    if (rc != ODSYNC_OK)
        return rc;
    return util_fmt(buf, len, "od:%s:commlog:%s", office, hex);
}

/* The office-local "YYYY-MM-DD HH:MM:SS" of now_ms in the office's zone, into out. */
static int local_now(const struct config_office *office, int64_t now_ms, char out[20])
{
    struct tz *z = NULL;
    int64_t naive;
    int rc = tz_load(office->timezone, &z, NULL, 0);
    if (rc == ODSYNC_NOMEM)
        goto cleanup;
    if (rc != ODSYNC_OK) {
        rc = ODSYNC_CONFIG;
        goto cleanup;
    }
    rc = tz_utc_to_local(z, now_ms / 1000, &naive);
    if (rc == ODSYNC_OK)
        tz_format_local(naive, out);
cleanup:
    tz_free(z);
    return rc;
}

int od_writer_enqueue(struct store *st, const struct config_office *office, int64_t patnum,
                      const char *mode, const char *note, const char *ref_key, int64_t now_ms)
{
    return od_writer_enqueue_as(st, office, patnum, mode, "Sent", note, ref_key, now_ms);
}

int od_writer_enqueue_as(struct store *st, const struct config_office *office, int64_t patnum,
                         const char *mode, const char *sent_or_received, const char *note,
                         const char *ref_key, int64_t now_ms)
{
    char key[OD_WRITER_KEY_MAX + 1], when[20];
    cJSON *body = NULL;
    char *text = NULL;
    int rc = ODSYNC_INVALID;

    if (office == NULL || patnum <= 0 || patnum > 9007199254740991LL || mode == NULL ||
        mode[0] == '\0' || note == NULL || note[0] == '\0' ||
        !util_utf8_valid(mode, strlen(mode)) || !util_utf8_valid(note, strlen(note)))
        goto cleanup;
    rc = od_writer_key(key, sizeof(key), office->id, ref_key);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = local_now(office, now_ms, when);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = ODSYNC_NOMEM;
    body = cJSON_CreateObject();
    if (body == NULL || cJSON_AddNumberToObject(body, "PatNum", (double)patnum) == NULL ||
        cJSON_AddStringToObject(body, "Mode_", mode) == NULL ||
        cJSON_AddStringToObject(body, "SentOrReceived", sent_or_received) == NULL ||
        cJSON_AddStringToObject(body, "Note", note) == NULL ||
        cJSON_AddStringToObject(body, "CommDateTime", when) == NULL)
        goto cleanup;
    text = cJSON_PrintUnformatted(body);
    if (text == NULL)
        goto cleanup;
    rc = outbox_enqueue(st, OD_WRITER_SINK, office->id, key, OD_WRITER_KIND, 1, text);
cleanup:
    cJSON_free(text);
    cJSON_Delete(body);
    return rc;
}
