/*
 * project.c: dirty patients into contact records and outbox rows.
 */
#include "project.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "jsonw.h"
#include "keys.h"
#include "outbox.h"
#include "records.h"
#include "rules.h"
#include "util.h"

#define CHUNK   100 /* patients per transaction: short write locks */
#define KEY_LEN 96

/* A text column of a one-row query on (office, patnum), or NULL; caller frees. *oom set
 * when the value could not be copied. */
static char *one_text(struct store *st, const char *sql, const char *office, int64_t patnum,
                      int *oom)
{
    sqlite3_stmt *s = store_stmt(st, sql);
    char *out = NULL;
    if (s == NULL)
        return NULL;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, patnum);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        out = util_strdup((const char *)sqlite3_column_text(s, 0));
        *oom |= out == NULL;
    }
    sqlite3_reset(s);
    return out;
}

/* Write member name of from as to_name (null when absent). Returns 0 on NOMEM. */
static int copy_member(struct jsonw *to, const char *to_name, const cJSON *from, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, name);
    char *text;
    if (v == NULL || cJSON_IsNull(v)) {
        jsonw_null(to, to_name);
    } else if (cJSON_IsString(v)) {
        jsonw_str(to, to_name, v->valuestring);
    } else { /* not in odsync's own bodies; copied as cJSON prints it all the same */
        text = cJSON_PrintUnformatted(v);
        if (text == NULL)
            return 0;
        jsonw_raw(to, to_name, text, strlen(text));
        cJSON_free(text);
    }
    return 1;
}

/* The contact record of a patient, or NULL: no such patient, or (with *oom set) out of
 * memory — then the caller must keep the patient dirty, since a record built without its
 * recall due date or last visit would be wrong. Caller frees. */
static char *contact_body(struct store *st, const char *office, int64_t patnum, const char *key,
                          const struct rules_contact *rc, int *oom)
{
    char *pbody = one_text(st, "SELECT body FROM od_patients WHERE office = ? AND patnum = ?",
                           office, patnum, oom);
    char *due = one_text(st,
                         "SELECT MIN(date_due) FROM od_recalls INDEXED BY od_recalls_patient"
                         " WHERE office = ? AND patnum = ?"
                         " AND disabled = 0 AND date_due IS NOT NULL",
                         office, patnum, oom);
    char gkey[KEY_LEN], *out = NULL;
    cJSON *p = pbody ? cJSON_Parse(pbody) : NULL;
    const cJSON *g;
    struct jsonw c;
    int ok;

    if (p == NULL || *oom) {
        *oom |= pbody != NULL; /* the stored body is odsync's own JSON: only memory fails it */
        goto cleanup;
    }
    g = cJSON_GetObjectItemCaseSensitive(p, "guarantor");
    if (!cJSON_IsNumber(g) ||
        keys_contact(gkey, sizeof(gkey), office, (int64_t)g->valuedouble) != ODSYNC_OK)
        gkey[0] = '\0';
    jsonw_begin(&c);
    jsonw_str(&c, "key", key);
    jsonw_str(&c, "office", office);
    jsonw_int(&c, "patnum", patnum);
    ok = copy_member(&c, "first_name", p, "first_name") &&
         copy_member(&c, "last_name", p, "last_name") &&
         copy_member(&c, "preferred_name", p, "preferred_name") &&
         copy_member(&c, "email", p, "email") &&
         copy_member(&c, "phone_mobile", p, "phone_mobile") &&
         copy_member(&c, "phone_home", p, "phone_home") &&
         copy_member(&c, "phone_work", p, "phone_work") &&
         copy_member(&c, "patient_status", p, "status");
    jsonw_str(&c, "guarantor_key", gkey[0] ? gkey : NULL);
    ok = ok && copy_member(&c, "sms_consent", p, "sms_consent");
    jsonw_bool(&c, "email_opt_out", 0);
    ok = ok && copy_member(&c, "language", p, "language");
    jsonw_str(&c, "recall_due", due);
    jsonw_str(&c, "recall_stage", rc->recall_stage[0] ? rc->recall_stage : NULL);
    jsonw_str(&c, "last_visit", rc->last_visit[0] ? rc->last_visit : NULL);
    jsonw_bool(&c, "reactivation", rc->reactivation);
    jsonw_null(&c, "updated_at");
    out = jsonw_end(&c);
    if (!ok) {
        util_free(out);
        out = NULL;
    }
    *oom |= out == NULL;
cleanup:
    cJSON_Delete(p);
    util_free(pbody);
    util_free(due);
    return out;
}

/* Forget that a patient is dirty. */
static int clear_dirty(struct store *st, const char *office, int64_t patnum)
{
    sqlite3_stmt *s = store_stmt(st, "DELETE FROM od_dirty WHERE office = ? AND patnum = ?");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, patnum);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

/* Project one patient (inside the chunk's transaction): rules first (tasks, messages, the
 * contact's stage), then the contact record. */
static int project_one(struct store *st, const struct config_office *office, int64_t patnum,
                       int64_t now, struct project_stats *stats)
{
    struct rules_contact rcon;
    char key[KEY_LEN], *body = NULL;
    int64_t version = 0;
    size_t i;
    int rc, changed = 0, oom = 0;

    rc = keys_contact(key, sizeof(key), office->id, patnum);
    if (rc != ODSYNC_OK)
        return clear_dirty(st, office->id, patnum);
    rc = rules_patient(st, office, patnum, now, &rcon, &stats->rules);
    if (rc != ODSYNC_OK)
        return rc;
    body = contact_body(st, office->id, patnum, key, &rcon, &oom);
    if (oom)
        return ODSYNC_NOMEM; /* the chunk rolls back: the patient stays dirty for a later pass */
    if (body != NULL)
        rc = records_upsert(st, office->id, key, ODSYNC_KIND_CONTACT, body, &changed, &version);
    for (i = 0; rc == ODSYNC_OK && changed && i < office->n_routes[CONFIG_ROUTE_CONTACT]; i++) {
        rc = outbox_enqueue(st, office->routes[CONFIG_ROUTE_CONTACT][i], office->id, key,
                            ODSYNC_KIND_CONTACT, version, body);
        stats->queued += rc == ODSYNC_OK;
    }
    if (rc == ODSYNC_OK)
        rc = clear_dirty(st, office->id, patnum); /* a patient not (yet) known: nothing to do */
    stats->patients++;
    stats->changed += changed;
    util_free(body);
    return rc;
}

struct chunk_args {
    const struct config_office *office;
    int64_t now;
    struct project_stats *stats;
    int64_t done; /* out: patients handled in this chunk */
};

/* Project up to CHUNK dirty patients in one transaction. */
static int chunk_tx(struct store *st, void *arg)
{
    struct chunk_args *a = arg;
    int64_t pats[CHUNK], n = 0, i;
    sqlite3_stmt *s = store_stmt(st, "SELECT patnum FROM od_dirty WHERE office = ? LIMIT ?");
    int rc = ODSYNC_OK;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, a->office->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, CHUNK);
    while (n < CHUNK && sqlite3_step(s) == SQLITE_ROW)
        pats[n++] = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    for (i = 0; i < n && rc == ODSYNC_OK; i++)
        rc = project_one(st, a->office, pats[i], a->now, a->stats);
    a->done = n;
    return rc;
}

/* The rows queued so far: contacts, tasks and messages. */
static int64_t queued_so_far(const struct project_stats *s)
{
    return s->queued + s->rules.tasks + s->rules.messages;
}

/* Chunk after chunk until no dirty patient is left; committed(arg) after each chunk that
 * queued rows, when given. */
static int project_run(struct store *st, const struct config_office *office, int64_t now_ms,
                       struct project_stats *stats, void (*committed)(void *arg), void *arg)
{
    struct chunk_args a = {office, now_ms, stats, 0};
    int64_t before;
    int rc, ticked = 0;
    memset(stats, 0, sizeof(*stats));
    rc = rules_tick(st, office, now_ms, &ticked);
    while (rc == ODSYNC_OK) {
        a.done = 0;
        before = queued_so_far(stats);
        rc = store_tx(st, chunk_tx, &a);
        if (rc == ODSYNC_OK && committed != NULL && queued_so_far(stats) > before)
            committed(arg);
        if (a.done < CHUNK)
            break;
    }
    return rc;
}

int project_office(struct store *st, const struct config_office *office,
                   struct project_stats *stats)
{
    return project_run(st, office, util_now_ms(), stats, NULL, NULL);
}

int project_office_at(struct store *st, const struct config_office *office, int64_t now_ms,
                      struct project_stats *stats)
{
    return project_run(st, office, now_ms, stats, NULL, NULL);
}

int project_office_notify(struct store *st, const struct config_office *office,
                          struct project_stats *stats, void (*committed)(void *arg), void *arg)
{
    return project_run(st, office, util_now_ms(), stats, committed, arg);
}
