/*
 * bench_steady: steady-state latency of a change arriving as an API Event until the CRM holds
 * it, against a running `odsync run` with the HubSpot sink (started by tests/bench/steady.sh
 * after a full sync). Prints one JSON object; asserts nothing.
 *   - patient rows are read from odsim (GET /patients/Simple, the shape events carry);
 *   - every 60000/RATE ms one patient's FName changes to a fresh marker and the row (with a
 *     newer DateTStamp) is posted to /api/od/events/bench as Open Dental would post it;
 *   - a poller reads each changed contact from the HubSpot fake (GET /_objects/contacts/{id})
 *     until its firstname is the marker: latency = that moment - the POST's start.
 * usage: bench_steady DAEMON_PORT OD_PORT DEVELOPER_KEY CUSTOMER_KEY HUBSPOT_PORT SECONDS RATE
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "util.h"

#define MAX_CHANGES 100000

struct change {
    long hs_id;
    char marker[32];
    double posted_ms, seen_ms;
};

static struct change *changes;
static int n_posted, done_posting;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int hs_port;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* One request; the answer body parsed as JSON (caller deletes), NULL on any failure. */
static cJSON *get_json(struct http_client *c, const char *url, const char *auth, int *status)
{
    struct odsync_http_header h[] = {{"Authorization", auth}, {"Content-Type", "application/json"}};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "GET",
                                      .url = url,
                                      .headers = h,
                                      .header_count = auth ? 2 : 0,
                                      .timeout_ms = 60000};
    struct odsync_http_response *r = NULL;
    cJSON *j = NULL;
    http_client_perform(c, &req, &r);
    *status = r ? r->status : 0;
    if (r != NULL && r->body != NULL)
        j = cJSON_ParseWithLength(r->body, r->body_len);
    http_response_free(r);
    return j;
}

static int post_event(struct http_client *c, int port, const char *key, const char *body)
{
    char url[96];
    struct odsync_http_header h[] = {{"Authorization", key},
                                     {"Event-Type", "WatchTable: Patient"},
                                     {"Workstation", "BENCH"},
                                     {"Content-Type", "application/json"}};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url,
                                      .headers = h,
                                      .header_count = 4,
                                      .body = body,
                                      .body_len = strlen(body),
                                      .timeout_ms = 30000};
    struct odsync_http_response *r = NULL;
    int status;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/od/events/bench", port);
    http_client_perform(c, &req, &r);
    status = r ? r->status : 0;
    http_response_free(r);
    return status;
}

/* 1 when the fake's contact hs_id has firstname marker. */
static int contact_has(struct http_client *c, long hs_id, const char *marker)
{
    char url[128];
    int status, ok;
    cJSON *o, *fn;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_objects/contacts/%ld", hs_port, hs_id);
    o = get_json(c, url, NULL, &status);
    fn = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "properties"),
                                          "firstname");
    ok = cJSON_IsString(fn) && strcmp(fn->valuestring, marker) == 0;
    cJSON_Delete(o);
    return ok;
}

/* Polls every posted, unseen change until it is in the CRM (or 60 s after posting ends). */
static void *poller_main(void *arg)
{
    struct http_client *c = http_client_create();
    int first_unseen = 0;
    double end_ms = 0;
    (void)arg;
    for (;;) {
        int i, n, finished, unseen = 0;
        pthread_mutex_lock(&mu);
        n = n_posted;
        finished = done_posting;
        pthread_mutex_unlock(&mu);
        for (i = first_unseen; i < n; i++) {
            if (changes[i].seen_ms > 0)
                continue;
            if (contact_has(c, changes[i].hs_id, changes[i].marker))
                changes[i].seen_ms = now_ms();
            else
                unseen++;
        }
        while (first_unseen < n && changes[first_unseen].seen_ms > 0)
            first_unseen++;
        if (finished && end_ms == 0)
            end_ms = now_ms() + 60000;
        if (finished && (unseen == 0 || now_ms() > end_ms))
            break;
        usleep(2000);
    }
    http_client_destroy(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return n == 0 ? 0 : v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

/* The HubSpot id of every contact, indexed by PatNum (from the odsync_key "od:bench:N"). */
static long *contact_ids(struct http_client *c, int *max_out)
{
    char url[96];
    int status, max = 0;
    long *ids;
    cJSON *all, *o;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_objects/contacts", hs_port);
    all = get_json(c, url, NULL, &status);
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(all, "results"))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "properties"), "odsync_key");
        int64_t pat;
        if (cJSON_IsString(k) && strncmp(k->valuestring, "od:bench:", 9) == 0 &&
            util_parse_i64(k->valuestring + 9, 1, 100000000, &pat) == 0 && pat > max)
            max = (int)pat;
    }
    ids = calloc((size_t)max + 1, sizeof(*ids));
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(all, "results"))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "properties"), "odsync_key");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        int64_t pat, v;
        if (cJSON_IsString(k) && strncmp(k->valuestring, "od:bench:", 9) == 0 &&
            util_parse_i64(k->valuestring + 9, 1, 100000000, &pat) == 0 && cJSON_IsString(id) &&
            util_parse_i64(id->valuestring, 1, INT64_MAX, &v) == 0)
            ids[pat] = (long)v;
    }
    cJSON_Delete(all);
    *max_out = max;
    return ids;
}

int main(int argc, char **argv)
{
    struct http_client *c;
    char url[160], auth[128];
    int64_t v[7];
    int i, status, n_rows, max_pat = 0, seen = 0, failed = 0;
    long *ids;
    cJSON *rows;
    double t0, interval_ms, *lat;
    pthread_t poller;

    if (argc != 8 || util_parse_i64(argv[1], 1, 65535, &v[1]) != 0 ||
        util_parse_i64(argv[2], 1, 65535, &v[2]) != 0 ||
        util_parse_i64(argv[5], 1, 65535, &v[5]) != 0 ||
        util_parse_i64(argv[6], 1, 86400, &v[6]) != 0 ||
        util_parse_i64(argv[7], 1, 600000, &v[0]) != 0) {
        fprintf(stderr, "usage: bench_steady DAEMON_PORT OD_PORT DEVELOPER_KEY CUSTOMER_KEY "
                        "HUBSPOT_PORT SECONDS RATE_PER_MINUTE\n");
        return 2;
    }
    hs_port = (int)v[5];
    interval_ms = 60000.0 / (double)v[0];
    http_global_init();
    c = http_client_create();
    snprintf(auth, sizeof(auth), "ODFHIR %s/%s", argv[3], argv[4]);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/patients/Simple?Limit=1000&Offset=0",
             (int)v[2]);
    rows = get_json(c, url, auth, &status);
    n_rows = cJSON_GetArraySize(rows);
    ids = contact_ids(c, &max_pat);
    if (status != 200 || n_rows == 0 || max_pat == 0) {
        fprintf(stderr, "bench_steady: no patients (HTTP %d, %d rows, %d contacts)\n", status,
                n_rows, max_pat);
        return 1;
    }
    changes = calloc(MAX_CHANGES, sizeof(*changes));
    lat = calloc(MAX_CHANGES, sizeof(*lat));
    pthread_create(&poller, NULL, poller_main, NULL);

    t0 = now_ms();
    for (i = 0; i < MAX_CHANGES && now_ms() - t0 < (double)v[6] * 1000.0; i++) {
        cJSON *row = cJSON_Duplicate(cJSON_GetArrayItem(rows, i % n_rows), 1), *batch;
        const cJSON *pn = cJSON_GetObjectItemCaseSensitive(row, "PatNum");
        char stamp[32], *body;
        struct change *ch = &changes[i];
        int pat = cJSON_IsNumber(pn) ? pn->valueint : 0;
        double due = t0 + interval_ms * i, wait = due - now_ms();
        if (wait > 0)
            usleep((useconds_t)(wait * 1000.0));
        /* a newer DateTStamp each time: 2026-11-28 00:00:00 + i seconds */
        snprintf(stamp, sizeof(stamp), "2026-11-%02d %02d:%02d:%02d", 28 + i / 86400, i / 3600 % 24,
                 i / 60 % 60, i % 60);
        snprintf(ch->marker, sizeof(ch->marker), "Steady%d", i);
        cJSON_DeleteItemFromObjectCaseSensitive(row, "serverDateTime");
        cJSON_ReplaceItemInObjectCaseSensitive(row, "FName", cJSON_CreateString(ch->marker));
        cJSON_ReplaceItemInObjectCaseSensitive(row, "DateTStamp", cJSON_CreateString(stamp));
        batch = cJSON_CreateArray();
        cJSON_AddItemToArray(batch, row);
        body = cJSON_PrintUnformatted(batch);
        ch->hs_id = pat <= max_pat ? ids[pat] : 0;
        ch->posted_ms = now_ms();
        if (post_event(c, (int)v[1], argv[4], body) != 200 || ch->hs_id == 0) {
            ch->seen_ms = -1; /* not measured */
            failed++;
        }
        cJSON_free(body);
        cJSON_Delete(batch);
        pthread_mutex_lock(&mu);
        n_posted = i + 1;
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu);
    done_posting = 1;
    pthread_mutex_unlock(&mu);
    pthread_join(poller, NULL);

    for (i = 0; i < n_posted; i++)
        if (changes[i].seen_ms > 0)
            lat[seen++] = changes[i].seen_ms - changes[i].posted_ms;
    qsort(lat, (size_t)seen, sizeof(*lat), cmp_double);
    printf("{\"changes\": %d, \"seconds\": %.1f, \"rate_per_min\": %lld, \"delivered\": %d, "
           "\"not_posted\": %d, \"p50_ms\": %.1f, \"p99_ms\": %.1f, \"max_ms\": %.1f}\n",
           n_posted, (double)v[6], (long long)v[0], seen, failed, pct(lat, seen, 0.5),
           pct(lat, seen, 0.99), seen ? lat[seen - 1] : 0.0);
    free(lat);
    free(changes);
    free(ids);
    cJSON_Delete(rows);
    http_client_destroy(c);
    http_global_cleanup();
    return 0;
}
