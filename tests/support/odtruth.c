/*
 * odtruth: test helpers that compare odsync's canonical store with odsim's own data. odsim's
 * rows (/_admin/dump, paged) go through the same REST adapter and model upserts into a
 * separate "truth" store; the two stores are then compared table by table by content hash.
 */
#include "odtruth.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http_client.h"
#include "model.h"
#include "od_rest.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

/* An odsim admin call; the parsed answer (caller deletes). */
cJSON *odt_admin(int sim_port, const char *method, const char *path, const char *body)
{
    char url[256];
    struct odsync_http_header h = {"Content-Type", "application/json"};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = method,
                                      .url = url,
                                      .headers = &h,
                                      .header_count = 1,
                                      .body = body,
                                      .body_len = body ? strlen(body) : 0,
                                      .timeout_ms = 120000};
    struct odsync_http_response *r = NULL;
    struct http_client *c = http_client_create();
    cJSON *j;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sim_port, path);
    ck_assert_int_eq(http_client_perform(c, &req, &r), ODSYNC_OK);
    ck_assert_msg(r->status == 200 || r->status == 201, "%s %s: %d %s", method, path, r->status,
                  r->body);
    j = cJSON_ParseWithLength(r->body, r->body_len);
    ck_assert_ptr_nonnull(j);
    http_response_free(r);
    http_client_destroy(c);
    return j;
}

struct truth_args {
    cJSON *rows;
    int table; /* 0 patients, 1 recalls, 2 appointments, 3 procedures, 4 clinics */
    int64_t count;
};

/* One odsim row through the REST adapter into the truth store, as ingest would keep it:
 * only completed procedures and visible clinics. */
static int truth_row(struct store *st, int table, const cJSON *row, int64_t *count)
{
    struct model_patient p = {0};
    struct model_recall r = {0};
    struct model_appointment ap = {0};
    struct model_procedure pr = {0};
    struct model_clinic c = {0};
    char why[128];
    int changed, rc = ODSYNC_OK;
    if (table == 0 && od_rest_patient(row, &p, why, sizeof(why)) == ODSYNC_OK)
        rc = model_put_patient(st, "main-st", &p, &changed);
    else if (table == 1 && od_rest_recall(row, &r, why, sizeof(why)) == ODSYNC_OK)
        rc = model_put_recall(st, "main-st", &r, &changed);
    else if (table == 2 && od_rest_appointment(row, &ap, why, sizeof(why)) == ODSYNC_OK)
        rc = model_put_appointment(st, "main-st", &ap, &changed);
    else if (table == 3 && od_rest_procedure(row, &pr, why, sizeof(why)) == ODSYNC_OK &&
             strcmp(pr.status ? pr.status : "", "C") == 0)
        rc = model_put_procedure(st, "main-st", &pr, &changed);
    else if (table == 4 && od_rest_clinic(row, &c, why, sizeof(why)) == ODSYNC_OK && !c.hidden)
        rc = model_put_clinic(st, "main-st", &c, &changed); /* GET /clinics hides hidden ones */
    else
        rc = -1;
    *count += rc == ODSYNC_OK;
    model_patient_clear(&p);
    model_recall_clear(&r);
    model_appointment_clear(&ap);
    model_procedure_clear(&pr);
    model_clinic_clear(&c);
    return rc < 0 ? ODSYNC_OK : rc;
}

/* Put a page of odsim's rows into the truth store (inside a transaction). */
static int truth_tx(struct store *st, void *arg)
{
    struct truth_args *a = arg;
    const cJSON *row;
    int rc = ODSYNC_OK;
    cJSON_ArrayForEach(row, a->rows)
    {
        rc = truth_row(st, a->table, row, &a->count);
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

/* Build the truth store from odsim's dump of the given tables (bit i = table i). */
void odt_build_truth(const char *dir, int sim_port, unsigned tables)
{
    static const char *const names[] = {"patients", "recalls", "appointments", "procedurelogs",
                                        "clinics"};
    char path[512], err[256], q[160];
    struct store *st = NULL;
    int t;
    snprintf(path, sizeof(path), "%s/truth.db", dir);
    unlink(path); /* a fresh truth each time */
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    for (t = 0; t < 5; t++) {
        struct truth_args a = {NULL, t, 0};
        if (!(tables & (1u << t)))
            continue;
        int64_t offset = 0, got;
        do { /* pages of 5000 rows keep each answer small */
            snprintf(q, sizeof(q), "/_admin/dump?office=1&table=%s&limit=5000&offset=%lld",
                     names[t], (long long)offset);
            a.rows = odt_admin(sim_port, "GET", q, NULL);
            got = cJSON_GetArraySize(a.rows);
            ck_assert_int_eq(store_tx(st, truth_tx, &a), ODSYNC_OK);
            cJSON_Delete(a.rows);
            offset += got;
        } while (got == 5000);
    }
    store_close(st);
}

/* Rows of table that differ between odsync's store and the truth (either direction). */
int64_t odt_differences(const char *dir, const char *table, const char *pk)
{
    char path[512], sql[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t n;
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "ATTACH '%s/truth.db' AS truth", dir);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT COUNT(*) FROM (SELECT %2$s, hash FROM main.%1$s EXCEPT"
             " SELECT %2$s, hash FROM truth.%1$s)) + (SELECT COUNT(*) FROM (SELECT %2$s, hash"
             " FROM truth.%1$s EXCEPT SELECT %2$s, hash FROM main.%1$s))",
             table, pk);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* A number from odsync's store. */
int64_t odt_store_int(const char *dir, const char *sql)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}
