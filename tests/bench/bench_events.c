/*
 * bench_events: API Events intake against a running `odsync run` (started by
 * tests/bench/events.sh). Prints figures; asserts nothing.
 *   1. ack latency of 1000-row batches posted one after another (p50, p99, max)
 *   2. sustained rows/s into the inbox with two posters
 *   3. event -> canonical store latency (p50, p99): one-row events, polling the store
 * usage: bench_events PORT CUSTOMER_KEY STORE_PATH BATCHES [JSON_OUT]
 * With JSON_OUT, the figures are also written there as one JSON object.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "util.h"

static int port;
static const char *key;
static int batches;

/* A batch of n patient rows starting at patnum base, as Open Dental posts them. */
static char *make_batch(int base, int n, const char *stamp)
{
    struct sbuf b = {0};
    int i;
    sbuf_puts(&b, "[");
    for (i = 0; i < n; i++)
        sbuf_printf(&b,
                    "%s{\"PatNum\":%d,\"LName\":\"Bench\",\"FName\":\"P%d\",\"PatStatus\":"
                    "\"Patient\",\"WirelessPhone\":\"(503)555-0150\",\"Email\":\"b%d@example.com\","
                    "\"TxtMsgOk\":\"Yes\",\"Guarantor\":%d,\"DateTStamp\":\"%s\"}",
                    i ? "," : "", base + i, base + i, base + i, base + i, stamp);
    sbuf_puts(&b, "]");
    return sbuf_take(&b);
}

/* POST one batch; returns the HTTP status. */
static int post(struct http_client *c, const char *body)
{
    char url[96];
    struct odsync_http_header h[] = {
        {"Authorization", key}, {"Event-Type", "WatchTable: Patient"}, {"Workstation", "BENCH"}};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url,
                                      .headers = h,
                                      .header_count = 3,
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

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

struct poster {
    int base, count, ok;
};

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    struct http_client *c = http_client_create();
    int i;
    for (i = 0; i < p->count; i++) {
        char *b = make_batch(p->base + i * 1000, 1000, "2026-11-27 09:00:00");
        p->ok += post(c, b) == 200;
        util_free(b);
    }
    http_client_destroy(c);
    return NULL;
}

/* 1 when patnum is in the canonical store. */
static int applied(sqlite3 *db, int patnum)
{
    sqlite3_stmt *s = NULL;
    int found;
    sqlite3_prepare_v2(db, "SELECT 1 FROM od_patients WHERE office = 'bench' AND patnum = ?", -1,
                       &s, NULL);
    sqlite3_bind_int(s, 1, patnum);
    found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return found;
}

/* Batches not yet applied. */
static int backlog(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int n = 0;
    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM od_inbox WHERE state = 'new'", -1, &s, NULL);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

int main(int argc, char **argv)
{
    struct http_client *c;
    struct poster ps[2];
    pthread_t th[2];
    double *lat, t0, elapsed, seq_s, ack_p50, ack_p99, ack_max, rows_s, applied_s;
    sqlite3 *db = NULL;
    FILE *json;
    int i, ok = 0, n_probe = 50;
    int64_t v;

    if ((argc != 5 && argc != 6) || util_parse_i64(argv[1], 1, 65535, &v) != 0) {
        fprintf(stderr, "usage: bench_events PORT CUSTOMER_KEY STORE_PATH BATCHES [JSON_OUT]\n");
        return 2;
    }
    port = (int)v;
    key = argv[2];
    util_parse_i64(argv[4], 1, 100000, &v);
    batches = (int)v;
    http_global_init();
    c = http_client_create();
    lat = calloc((size_t)(batches > n_probe ? batches : n_probe), sizeof(*lat));

    /* 1. ack latency, sequential */
    seq_s = now_ms();
    for (i = 0; i < batches; i++) {
        char *b = make_batch(1 + i * 1000, 1000, "2026-11-27 09:00:00");
        t0 = now_ms();
        ok += post(c, b) == 200;
        lat[i] = now_ms() - t0;
        util_free(b);
    }
    seq_s = (now_ms() - seq_s) / 1000.0;
    qsort(lat, (size_t)batches, sizeof(*lat), cmp_double);
    ack_p50 = pct(lat, batches, 0.5);
    ack_p99 = pct(lat, batches, 0.99);
    ack_max = lat[batches - 1];
    printf("%-40s %d of %d acknowledged\n", "1000-row batches", ok, batches);
    printf("%-40s p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", "ack latency (target p99 <= 20 ms)",
           pct(lat, batches, 0.5), pct(lat, batches, 0.99), lat[batches - 1]);

    /* 2. sustained rows/s, two posters */
    t0 = now_ms();
    for (i = 0; i < 2; i++) {
        ps[i].base = 10000000 + i * 5000000;
        ps[i].count = batches;
        ps[i].ok = 0;
        pthread_create(&th[i], NULL, poster_main, &ps[i]);
    }
    for (i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    elapsed = (now_ms() - t0) / 1000.0;
    rows_s = (double)(ps[0].ok + ps[1].ok) * 1000.0 / elapsed;
    printf("%-40s %.0f rows/s (%d rows in %.2f s)\n", "inbox intake, 2 posters (target >= 20000)",
           (double)(ps[0].ok + ps[1].ok) * 1000.0 / elapsed, (ps[0].ok + ps[1].ok) * 1000, elapsed);

    /* 3. event -> canonical store latency, once the intake backlog is applied */
    if (sqlite3_open(argv[3], &db) != SQLITE_OK)
        return 1;
    sqlite3_busy_timeout(db, 5000);
    t0 = now_ms();
    while (backlog(db) > 0 && now_ms() - t0 < 300000)
        usleep(100000);
    applied_s = (now_ms() - t0) / 1000.0;
    printf("%-40s %.1f s after the burst\n", "inbox applied to the canonical store", applied_s);
    for (i = 0; i < n_probe; i++) {
        int patnum = 90000000 + i;
        char *b = make_batch(patnum, 1, "2026-11-27 10:00:00");
        int polls = 0;
        t0 = now_ms();
        post(c, b);
        while (!applied(db, patnum) && polls++ < 10000)
            usleep(500);
        lat[i] = now_ms() - t0;
        util_free(b);
    }
    qsort(lat, (size_t)n_probe, sizeof(*lat), cmp_double);
    printf("%-40s p50 %.1f ms, p99 %.1f ms\n", "event -> canonical store (target p50 <= 50)",
           pct(lat, n_probe, 0.5), pct(lat, n_probe, 0.99));
    if (argc == 6 && (json = fopen(argv[5], "w")) != NULL) {
        fprintf(json,
                "{\"batches\": %d, \"rows_per_batch\": 1000, \"acknowledged\": %d,"
                " \"acks_per_s\": %.1f, \"ack_p50_ms\": %.2f, \"ack_p99_ms\": %.2f,"
                " \"ack_max_ms\": %.2f, \"intake_rows_per_s\": %.0f,"
                " \"inbox_applied_after_s\": %.2f, \"event_to_store_p50_ms\": %.2f,"
                " \"event_to_store_p99_ms\": %.2f}\n",
                batches, ok, (double)batches / seq_s, ack_p50, ack_p99, ack_max, rows_s, applied_s,
                pct(lat, n_probe, 0.5), pct(lat, n_probe, 0.99));
        fclose(json);
    }
    sqlite3_close(db);
    free(lat);
    http_client_destroy(c);
    http_global_cleanup();
    return 0;
}
