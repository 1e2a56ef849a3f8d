/*
 * import.c: canonical records from a JSON file into the store and the outbox.
 */
#include "import.h"

#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "keys.h"
#include "outbox.h"
#include "records.h"
#include "util.h"

#define IMPORT_MAX_BYTES (256u * 1024 * 1024)
#define KEY_MAX          96

enum field_type { F_STRING, F_INT, F_BOOL, F_DATE, F_ENUM };

struct field {
    const char *name;
    enum field_type type;
    const char *allowed; /* F_ENUM: "|a|b|c|" */
};

/* Canonical contact fields, in output order (patnum and key handled apart). */
static const struct field contact_fields[] = {
    {"first_name", F_STRING, NULL},
    {"last_name", F_STRING, NULL},
    {"preferred_name", F_STRING, NULL},
    {"email", F_STRING, NULL},
    {"phone_mobile", F_STRING, NULL},
    {"phone_home", F_STRING, NULL},
    {"phone_work", F_STRING, NULL},
    {"patient_status", F_ENUM, "|Patient|NonPatient|Inactive|Archived|Deceased|Prospective|"},
    {"sms_consent", F_ENUM, "|yes|no|unknown|"},
    {"email_opt_out", F_BOOL, NULL},
    {"language", F_STRING, NULL},
    {"recall_due", F_DATE, NULL},
    {"recall_stage", F_STRING, NULL},
    {"last_visit", F_DATE, NULL},
    {"reactivation", F_BOOL, NULL},
    {"updated_at", F_STRING, NULL},
    {NULL, F_STRING, NULL}};

static const struct field task_fields[] = {{"subject", F_STRING, NULL},
                                           {"body", F_STRING, NULL},
                                           {"due", F_STRING, NULL},
                                           {"status", F_ENUM, "|open|completed|"},
                                           {"priority", F_ENUM, "|low|medium|high|"},
                                           {"type", F_ENUM, "|call|email|todo|"},
                                           {NULL, F_STRING, NULL}};

/* 1 when s is YYYY-MM-DD with plausible ranges. */
static int valid_date(const char *s)
{
    int i;
    for (i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return s[10] == '\0' && !(s[5] == '0' && s[6] == '0') && !(s[8] == '0' && s[9] == '0') &&
           (s[5] - '0') * 10 + (s[6] - '0') <= 12 && (s[8] - '0') * 10 + (s[9] - '0') <= 31;
}

/* Check one value against its field; NULL values are allowed (absent). */
static int check_field(const struct field *f, const cJSON *v, char *why, size_t whylen)
{
    char needle[64];
    if (cJSON_IsNull(v))
        return ODSYNC_OK;
    switch (f->type) {
    case F_INT:
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 9007199254740991.0 ||
            v->valuedouble != (double)(int64_t)v->valuedouble) {
            util_fmt(why, whylen, "expected a positive integer");
            return ODSYNC_PARSE;
        }
        return ODSYNC_OK;
    case F_BOOL:
        if (!cJSON_IsBool(v)) {
            util_fmt(why, whylen, "expected true or false");
            return ODSYNC_PARSE;
        }
        return ODSYNC_OK;
    default:
        break;
    }
    if (!cJSON_IsString(v)) {
        util_fmt(why, whylen, "expected a string");
        return ODSYNC_PARSE;
    }
    if (f->type == F_DATE && !valid_date(v->valuestring)) {
        util_fmt(why, whylen, "expected a date YYYY-MM-DD");
        return ODSYNC_PARSE;
    }
    if (f->type == F_ENUM &&
        (util_fmt(needle, sizeof(needle), "|%s|", v->valuestring) != ODSYNC_OK ||
         strstr(f->allowed, needle) == NULL)) {
        util_fmt(why, whylen, "expected one of %s", f->allowed);
        return ODSYNC_PARSE;
    }
    return ODSYNC_OK;
}

/* The field named name in a NULL-terminated table, or NULL. */
static const struct field *find_field(const struct field *fields, const char *name)
{
    for (; fields->name != NULL; fields++)
        if (strcmp(fields->name, name) == 0)
            return fields;
    return NULL;
}

/* A positive integer member, or 0. */
static int64_t int_member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 9007199254740991.0 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return 0;
    return (int64_t)v->valuedouble;
}

/* One parsed element ready to store. */
struct element {
    const char *office;
    char key[KEY_MAX];
    int kind;
    char *body; /* owned canonical JSON */
};

/* Check every member of obj and build the canonical body (in field-table order). */
static int build_body(const cJSON *obj, const struct field *fields, const char *const *ids,
                      cJSON *out, char *err, size_t errlen, const char *where)
{
    const cJSON *m;
    char why[160];
    size_t i;
    int known;

    cJSON_ArrayForEach(m, obj)
    {
        known = find_field(fields, m->string) != NULL || strcmp(m->string, "kind") == 0 ||
                strcmp(m->string, "office") == 0;
        for (i = 0; ids[i] != NULL && !known; i++)
            known = strcmp(m->string, ids[i]) == 0;
        if (!known) {
            util_fmt(err, errlen, "%s.%s: unknown field", where, m->string);
            return ODSYNC_PARSE;
        }
    }
    for (; fields->name != NULL; fields++) {
        m = cJSON_GetObjectItemCaseSensitive(obj, fields->name);
        if (m != NULL && check_field(fields, m, why, sizeof(why)) != ODSYNC_OK) {
            util_fmt(err, errlen, "%s.%s: %s", where, fields->name, why);
            return ODSYNC_PARSE;
        }
        if (!cJSON_AddItemToObject(out, fields->name,
                                   m ? cJSON_Duplicate(m, 1) : cJSON_CreateNull()))
            return ODSYNC_NOMEM;
    }
    return ODSYNC_OK;
}

/* "guarantor_key": the guarantor's contact key from "guarantor_patnum", or null. */
static int add_guarantor(const cJSON *obj, const char *office, cJSON *out, char *err, size_t errlen,
                         const char *where)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(obj, "guarantor_patnum");
    char key[KEY_MAX];
    if (g == NULL || cJSON_IsNull(g))
        return cJSON_AddNullToObject(out, "guarantor_key") ? ODSYNC_OK : ODSYNC_NOMEM;
    if (int_member(obj, "guarantor_patnum") == 0) {
        util_fmt(err, errlen, "%s.guarantor_patnum: expected a positive integer", where);
        return ODSYNC_PARSE;
    }
    keys_contact(key, sizeof(key), office, int_member(obj, "guarantor_patnum"));
    return cJSON_AddStringToObject(out, "guarantor_key", key) ? ODSYNC_OK : ODSYNC_NOMEM;
}

/* Parse element i of the array into e. */
static int parse_element(const struct config *cfg, const cJSON *obj, size_t i, struct element *e,
                         char *err, size_t errlen)
{
    static const char *const contact_ids[] = {"patnum", "guarantor_patnum", NULL};
    static const char *const task_ids[] = {"recall_num", "patnum", NULL};
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const cJSON *office = cJSON_GetObjectItemCaseSensitive(obj, "office");
    char where[32], ref[KEY_MAX];
    int64_t patnum = int_member(obj, "patnum"), id;
    cJSON *out = NULL;
    int rc = ODSYNC_PARSE;

    util_fmt(where, sizeof(where), "[%zu]", i);
    if (!cJSON_IsObject(obj)) {
        util_fmt(err, errlen, "%s: expected an object", where);
        goto cleanup;
    }
    if (!cJSON_IsString(office) || config_find_office(cfg, office->valuestring) == NULL) {
        util_fmt(err, errlen, "%s.office: not an office in the config", where);
        goto cleanup;
    }
    e->office = config_find_office(cfg, office->valuestring)->id;
    if (patnum == 0) {
        util_fmt(err, errlen, "%s.patnum: required, a positive integer", where);
        goto cleanup;
    }
    out = cJSON_CreateObject();
    if (out == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    if (!cJSON_IsString(kind)) {
        util_fmt(err, errlen, "%s.kind: required, \"contact\" or \"task\"", where);
        goto cleanup;
    }
    if (strcmp(kind->valuestring, "contact") == 0) {
        e->kind = ODSYNC_KIND_CONTACT;
        keys_contact(e->key, sizeof(e->key), e->office, patnum);
        if (!cJSON_AddStringToObject(out, "key", e->key) ||
            !cJSON_AddStringToObject(out, "office", e->office) ||
            !cJSON_AddNumberToObject(out, "patnum", (double)patnum)) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        rc = build_body(obj, contact_fields, contact_ids, out, err, errlen, where);
        if (rc == ODSYNC_OK)
            rc = add_guarantor(obj, e->office, out, err, errlen, where);
    } else if (strcmp(kind->valuestring, "task") == 0) {
        id = int_member(obj, "recall_num");
        if (id == 0) {
            util_fmt(err, errlen, "%s.recall_num: required, a positive integer", where);
            goto cleanup;
        }
        e->kind = ODSYNC_KIND_TASK;
        keys_recall_task(e->key, sizeof(e->key), e->office, id);
        keys_contact(ref, sizeof(ref), e->office, patnum);
        if (!cJSON_AddStringToObject(out, "key", e->key) ||
            !cJSON_AddStringToObject(out, "office", e->office) ||
            !cJSON_AddStringToObject(out, "contact_key", ref)) {
            rc = ODSYNC_NOMEM;
            goto cleanup;
        }
        rc = build_body(obj, task_fields, task_ids, out, err, errlen, where);
    } else {
        util_fmt(err, errlen, "%s.kind: \"%s\" cannot be imported (contact or task)", where,
                 strcmp(kind->valuestring, "message") == 0 ? "message" : "other");
        goto cleanup;
    }
    if (rc != ODSYNC_OK)
        goto cleanup;
    e->body = cJSON_PrintUnformatted(out);
    rc = e->body ? ODSYNC_OK : ODSYNC_NOMEM;
cleanup:
    cJSON_Delete(out);
    return rc;
}

struct import_args {
    const struct config *cfg;
    struct element *elems;
    size_t count;
    struct import_stats *stats;
};

/* Upsert every element and queue the changed ones (inside store_tx). */
static int import_tx(struct store *st, void *arg)
{
    struct import_args *a = arg;
    size_t i, r;
    int changed, rc;
    int64_t version;

    for (i = 0; i < a->count; i++) {
        struct element *e = &a->elems[i];
        const struct config_office *off = config_find_office(a->cfg, e->office);
        enum config_route route =
            e->kind == ODSYNC_KIND_CONTACT ? CONFIG_ROUTE_CONTACT : CONFIG_ROUTE_TASK;
        rc = records_upsert(st, e->office, e->key, e->kind, e->body, &changed, &version);
        if (rc != ODSYNC_OK)
            return rc;
        a->stats->read++;
        if (!changed) {
            a->stats->unchanged++;
            continue;
        }
        a->stats->changed++;
        for (r = 0; r < off->n_routes[route]; r++) {
            rc =
                outbox_enqueue_at(st, off->routes[route][r], e->office, e->key, e->kind, version,
                                  e->body, e->kind == ODSYNC_KIND_TASK ? OUTBOX_AFTER_CONTACTS : 0);
            if (rc != ODSYNC_OK)
                return rc;
            a->stats->queued++;
        }
    }
    return ODSYNC_OK;
}

int import_json(struct store *st, const struct config *cfg, const char *text, size_t len,
                const char *origin, struct import_stats *stats, char *err, size_t errlen)
{
    struct import_args a = {cfg, NULL, 0, stats};
    struct import_stats local = {0};
    cJSON *root = NULL;
    const cJSON *item;
    char msg[384];
    size_t i, n;
    int rc = ODSYNC_PARSE;

    memset(stats, 0, sizeof(*stats));
    root = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsArray(root)) {
        util_fmt(err, errlen, "%s: expected a JSON array of records", origin);
        goto cleanup;
    }
    n = (size_t)cJSON_GetArraySize(root);
    a.elems = util_calloc(n ? n : 1, sizeof(*a.elems));
    if (a.elems == NULL) {
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    i = 0;
    cJSON_ArrayForEach(item, root)
    {
        rc = parse_element(cfg, item, i, &a.elems[i], msg, sizeof(msg));
        a.count = ++i;
        if (rc != ODSYNC_OK) {
            util_fmt(err, errlen, "%s: %s", origin, msg);
            goto cleanup;
        }
    }
    a.stats = &local;
    rc = store_tx(st, import_tx, &a);
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s: store error, nothing imported", origin);
        goto cleanup;
    }
    *stats = local;
cleanup:
    for (i = 0; a.elems != NULL && i < a.count; i++)
        cJSON_free(a.elems[i].body);
    util_free(a.elems);
    cJSON_Delete(root);
    return rc;
}

int import_file(struct store *st, const struct config *cfg, const char *path,
                struct import_stats *stats, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = util_read_file(path, IMPORT_MAX_BYTES, &text, &len);
    memset(stats, 0, sizeof(*stats));
    if (rc != ODSYNC_OK) {
        util_fmt(err, errlen, "%s: cannot read: %s", path,
                 rc == ODSYNC_INVALID ? "larger than 256 MiB" : strerror(errno));
        return rc;
    }
    rc = import_json(st, cfg, text, len, path, stats, err, errlen);
    util_free(text);
    return rc;
}
