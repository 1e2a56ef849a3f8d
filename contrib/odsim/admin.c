/*
 * admin.c: the /_admin control API. Errors are JSON strings like the REST API's; results are
 * JSON objects. The office is chosen by ?office=K (or "office" in a JSON body); calls that
 * change faults or clocks without one apply to every office.
 */
#include "admin.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "events.h"
#include "frontdesk.h"
#include "guard.h"
#include "rest.h"
#include "store.h"

/* Render a cJSON value as the answer (value deleted here). */
static void answer_cjson(struct answer *a, unsigned status, cJSON *j)
{
    char *text = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
    answer_set(a, status, text != NULL ? util_strdup(text) : NULL);
    cJSON_free(text);
    cJSON_Delete(j);
}

/* ---- faults ------------------------------------------------------------------------------ */

/* The REST routes a version_too_old entry names ("GET /recalls/List" or "/recalls/List"). */
static uint32_t route_mask(const char *entry)
{
    uint32_t mask = 0;
    const char *sp = strchr(entry, ' ');
    for (int i = 0; i < rest_route_count; i++) {
        const struct rest_route *rt = &rest_routes[i];
        if (sp != NULL) {
            size_t ml = (size_t)(sp - entry);
            if (strlen(rt->method) == ml && strncasecmp(rt->method, entry, ml) == 0 &&
                strcasecmp(rt->path, sp + 1) == 0)
                mask |= UINT32_C(1) << i;
        } else if (strcasecmp(rt->path, entry) == 0) {
            mask |= UINT32_C(1) << i;
        }
    }
    return mask;
}

/* A non-negative integer setting; accepts "none" as 0 for throttle_ms. */
static int set_ms(const cJSON *v, int64_t *out)
{
    if (cJSON_IsString(v) && strcasecmp(v->valuestring, "none") == 0) {
        *out = 0;
        return 1;
    }
    if (cJSON_IsString(v))
        return util_parse_i64(v->valuestring, 0, 3600000, out) == ODSYNC_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 3600000 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

int admin_faults_apply(struct faults *f, const cJSON *json, char *msg, size_t len)
{
    struct faults next = *f;
    const cJSON *v;
    cJSON_ArrayForEach(v, json)
    {
        const char *k = v->string;
        int ok = 1;
        if (strcmp(k, "office") == 0)
            continue;
        if (strcmp(k, "throttle_ms") == 0)
            ok = set_ms(v, &next.throttle_ms);
        else if (strcmp(k, "slow_ms") == 0)
            ok = set_ms(v, &next.slow_ms);
        else if (strcmp(k, "timeout_504_ms") == 0)
            ok = set_ms(v, &next.timeout_504_ms);
        else if (strcmp(k, "econnector_down") == 0 && cJSON_IsBool(v))
            next.econnector_down = cJSON_IsTrue(v);
        else if (strcmp(k, "key_disabled") == 0 && cJSON_IsBool(v))
            next.key_disabled = cJSON_IsTrue(v);
        else if (strcmp(k, "over_limit") == 0 && cJSON_IsString(v) &&
                 (strcmp(v->valuestring, "delay") == 0 || strcmp(v->valuestring, "reject") == 0))
            next.over_limit_reject = strcmp(v->valuestring, "reject") == 0;
        else if (strcmp(k, "version_too_old") == 0 && cJSON_IsArray(v)) {
            const cJSON *e;
            next.version_too_old = 0;
            cJSON_ArrayForEach(e, v)
            {
                uint32_t m = cJSON_IsString(e) ? route_mask(e->valuestring) : 0;
                if (m == 0) {
                    snprintf(msg, len, "version_too_old: unknown endpoint \"%.60s\"",
                             cJSON_IsString(e) ? e->valuestring : "?");
                    return ODSYNC_PARSE;
                }
                next.version_too_old |= m;
            }
        } else
            ok = 0;
        if (!ok) {
            snprintf(msg, len, "unknown fault setting or bad value: \"%.60s\"", k);
            return ODSYNC_PARSE;
        }
    }
    *f = next;
    return ODSYNC_OK;
}

static cJSON *faults_json(const struct office *o, const struct faults *f)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *arr;
    cJSON_AddNumberToObject(j, "office", o->num);
    cJSON_AddNumberToObject(j, "throttle_ms", (double)f->throttle_ms);
    cJSON_AddStringToObject(j, "over_limit", f->over_limit_reject ? "reject" : "delay");
    cJSON_AddBoolToObject(j, "econnector_down", f->econnector_down);
    cJSON_AddBoolToObject(j, "key_disabled", f->key_disabled);
    cJSON_AddNumberToObject(j, "slow_ms", (double)f->slow_ms);
    cJSON_AddNumberToObject(j, "timeout_504_ms", (double)f->timeout_504_ms);
    arr = cJSON_AddArrayToObject(j, "version_too_old");
    for (int i = 0; i < rest_route_count && arr != NULL; i++) {
        char name[96];
        if (!(f->version_too_old & (UINT32_C(1) << i)))
            continue;
        util_fmt(name, sizeof(name), "%s %s", rest_routes[i].method, rest_routes[i].path);
        cJSON_AddItemToArray(arr, cJSON_CreateString(name));
    }
    return j;
}

static cJSON *clock_json(struct sim *s, struct office *o)
{
    char now[CLOCK_DT_LEN];
    int frozen;
    cJSON *j = cJSON_CreateObject();
    clock_office_now_str(s, o, now);
    pthread_mutex_lock(&s->state_lock);
    frozen = o->clock.frozen;
    pthread_mutex_unlock(&s->state_lock);
    cJSON_AddNumberToObject(j, "office", o->num);
    cJSON_AddStringToObject(j, "now", now);
    cJSON_AddBoolToObject(j, "frozen", frozen);
    return j;
}

static cJSON *stats_json(struct sim *s, struct office *o)
{
    struct ostats st;
    int64_t by_status[SS_COUNT] = {0};
    cJSON *j = cJSON_CreateObject(), *ep, *bs;
    pthread_mutex_lock(&s->state_lock);
    st = o->stats;
    pthread_mutex_unlock(&s->state_lock);
    cJSON_AddNumberToObject(j, "office", o->num);
    cJSON_AddStringToObject(j, "customer_key", o->key);
    cJSON_AddNumberToObject(j, "requests", (double)st.requests);
    cJSON_AddNumberToObject(j, "throttle_violations", (double)st.throttle_violations);
    ep = cJSON_AddObjectToObject(j, "by_endpoint");
    for (int r = 0; r < ODSIM_ROUTE_MAX && ep != NULL; r++) {
        char name[96];
        cJSON *e = NULL;
        for (int k = 0; k < SS_COUNT; k++) {
            if (st.by_route[r][k] == 0)
                continue;
            if (e == NULL) {
                if (r < rest_route_count)
                    util_fmt(name, sizeof(name), "%s %s", rest_routes[r].method,
                             rest_routes[r].path);
                else
                    util_fmt(name, sizeof(name), "unknown");
                e = cJSON_AddObjectToObject(ep, name);
                if (e == NULL)
                    break;
            }
            cJSON_AddNumberToObject(e, guard_slot_name((enum status_slot)k),
                                    (double)st.by_route[r][k]);
            by_status[k] += st.by_route[r][k];
        }
    }
    bs = cJSON_AddObjectToObject(j, "by_status");
    for (int k = 0; k < SS_COUNT && bs != NULL; k++) {
        if (by_status[k] != 0)
            cJSON_AddNumberToObject(bs, guard_slot_name((enum status_slot)k), (double)by_status[k]);
    }
    return j;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* The office a call names (?office= or body "office"), default 1; *given says whether one
 * was named. NULL after answering 404/400. */
static struct office *pick_office(struct sim *s, const struct req *r, const cJSON *body, int *given,
                                  struct answer *a)
{
    const char *v = req_arg(r, "office");
    const cJSON *b = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "office") : NULL;
    int64_t n = 1;
    *given = v != NULL || b != NULL;
    if (v != NULL && util_parse_i64(v, 1, ODSIM_MAX_OFFICES, &n) != ODSYNC_OK) {
        answer_error(a, 400, "office must be an office number.");
        return NULL;
    }
    if (v == NULL && b != NULL) {
        if (!cJSON_IsNumber(b)) {
            answer_error(a, 400, "office must be an office number.");
            return NULL;
        }
        n = (int64_t)b->valuedouble;
    }
    struct office *o = sim_office_by_num(s, n);
    if (o == NULL)
        answer_error(a, 404, "No such office.");
    return o;
}

/* The body as JSON: NULL for an empty body, else an object (answers 400 otherwise and sets
 * *bad). Caller frees with cJSON_Delete. */
static cJSON *admin_body(const struct req *r, int *bad, struct answer *a)
{
    cJSON *j;
    *bad = 0;
    if (r->body_len == 0)
        return NULL;
    j = cJSON_ParseWithLength(r->body, r->body_len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *bad = 1;
        answer_error(a, 400, "The request body must be a JSON object.");
        return NULL;
    }
    return j;
}

/* Answer {"changed":bool,"row":{...}} for a done change (row of res_id pk, if pk > 0). */
static void answer_change(struct sim *s, struct office *o, const struct fd_result *res,
                          enum res_id res_id, int64_t pk, unsigned ok_status, struct answer *a)
{
    struct sbuf b = {0};
    char *row = NULL;
    if (res->status != 0) {
        answer_error(a, res->status, res->msg);
        return;
    }
    if (pk > 0) {
        pthread_mutex_lock(&s->db_lock);
        int found = store_one(s, res_id, o->num, pk, NULL, &row);
        pthread_mutex_unlock(&s->db_lock);
        if (found < 0) {
            answer_error(a, 500, "storage error");
            return;
        }
    }
    sbuf_printf(&b, "{\"changed\":%s,\"row\":%s}", res->changed ? "true" : "false",
                row != NULL ? row : "null");
    util_free(row);
    answer_set(a, ok_status, sbuf_take(&b));
}

/* Split "/_admin/<kind>/<n>/<verb>" into n and verb. Returns 1 when path has that shape. */
static int id_verb(const char *path, const char *prefix, int64_t *id, char *verb, size_t vlen)
{
    char num[24];
    size_t pl = strlen(prefix), nl;
    if (strncmp(path, prefix, pl) != 0)
        return 0;
    path += pl;
    nl = strcspn(path, "/");
    if (nl == 0 || nl >= sizeof(num))
        return 0;
    memcpy(num, path, nl);
    num[nl] = '\0';
    if (util_parse_i64(num, 1, INT64_MAX, id) != ODSYNC_OK)
        return 0;
    path += nl;
    if (*path == '/')
        path++;
    if (strlen(path) >= vlen)
        return 0;
    memcpy(verb, path, strlen(path) + 1);
    return 1;
}

/* ---- calls -------------------------------------------------------------------------------- */

static void get_offices(struct sim *s, struct answer *a)
{
    cJSON *j = cJSON_CreateObject(), *arr;
    cJSON_AddStringToObject(j, "developer_key", s->dev_key);
    cJSON_AddStringToObject(j, "mode", s->local_mode ? "local" : "remote");
    cJSON_AddNumberToObject(j, "page_size", s->page_cap);
    arr = cJSON_AddArrayToObject(j, "offices");
    for (int i = 0; i < s->noffices && arr != NULL; i++) {
        struct office *o = &s->offices[i];
        int64_t n;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, e);
        cJSON_AddNumberToObject(e, "office", o->num);
        cJSON_AddStringToObject(e, "customer_key", o->key);
        pthread_mutex_lock(&s->db_lock);
        static const char *const tables[][2] = {{"patients", "patient"},
                                                {"recalls", "recall"},
                                                {"appointments", "appointment"},
                                                {"histappointments", "histappointment"},
                                                {"procedurelogs", "procedurelog"},
                                                {"commlogs", "commlog"},
                                                {"clinics", "clinic"},
                                                {"subscriptions", "subscription"}};
        for (size_t t = 0; t < UTIL_ARRAY_LEN(tables); t++) {
            char sql[96];
            n = 0;
            util_fmt(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE office = ?1", tables[t][1]);
            store_int(s, sql, DBARGS(DV_I(o->num)), &n);
            cJSON_AddNumberToObject(e, tables[t][0], (double)n);
        }
        pthread_mutex_unlock(&s->db_lock);
        pthread_mutex_lock(&s->state_lock);
        cJSON_AddNumberToObject(e, "requests", (double)o->stats.requests);
        cJSON_AddNumberToObject(e, "throttle_violations", (double)o->stats.throttle_violations);
        pthread_mutex_unlock(&s->state_lock);
    }
    pthread_mutex_lock(&s->state_lock);
    cJSON_AddNumberToObject(j, "unknown_key_requests", (double)s->unknown_requests);
    pthread_mutex_unlock(&s->state_lock);
    answer_cjson(a, 200, j);
}

/* GET or POST /_admin/faults. */
static void faults_call(struct sim *s, const struct req *r, const cJSON *body, struct answer *a)
{
    int given, post = strcmp(r->method, "POST") == 0;
    char msg[160];
    struct office *o = pick_office(s, r, body, &given, a);
    cJSON *list = NULL;
    if (o == NULL)
        return;
    if (post && !cJSON_IsObject(body)) {
        answer_error(a, 400, "POST /_admin/faults needs a JSON object.");
        return;
    }
    list = cJSON_CreateArray();
    for (int i = 0; i < s->noffices; i++) {
        struct office *t = &s->offices[i];
        if (given && t != o)
            continue;
        pthread_mutex_lock(&s->state_lock);
        struct faults f = t->faults;
        int rc = post ? admin_faults_apply(&f, body, msg, sizeof(msg)) : ODSYNC_OK;
        if (rc == ODSYNC_OK && post) {
            if (f.throttle_ms != t->faults.throttle_ms)
                t->next_slot_ms = 0;
            t->faults = f;
        }
        pthread_mutex_unlock(&s->state_lock);
        if (rc != ODSYNC_OK) {
            cJSON_Delete(list);
            answer_error(a, 400, msg);
            return;
        }
        cJSON_AddItemToArray(list, faults_json(t, &f));
    }
    if (post)
        log_info(ODSIM_LOG, "faults changed for %s", given ? "one office" : "every office");
    if (given) {
        cJSON *one = cJSON_DetachItemFromArray(list, 0);
        cJSON_Delete(list);
        answer_cjson(a, 200, one);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "offices", list);
        answer_cjson(a, 200, j);
    }
}

/* GET or POST /_admin/clock: body {"set": "yyyy-MM-dd HH:mm:ss"|"real", "advance_s": N,
 * "freeze": bool}, applied in that order. */
static void clock_call(struct sim *s, const struct req *r, const cJSON *body, struct answer *a)
{
    int given, post = strcmp(r->method, "POST") == 0;
    struct office *o = pick_office(s, r, body, &given, a);
    const cJSON *set = NULL, *adv = NULL, *frz = NULL;
    int64_t set_utc = 0, naive;
    if (o == NULL)
        return;
    if (post) {
        set = cJSON_GetObjectItemCaseSensitive(body, "set");
        adv = cJSON_GetObjectItemCaseSensitive(body, "advance_s");
        frz = cJSON_GetObjectItemCaseSensitive(body, "freeze");
        for (const cJSON *k = body ? body->child : NULL; k != NULL; k = k->next) {
            if (strcmp(k->string, "set") != 0 && strcmp(k->string, "advance_s") != 0 &&
                strcmp(k->string, "freeze") != 0 && strcmp(k->string, "office") != 0) {
                /* A misspelt key must not be a silent no-op. */
                answer_error(a, 400, "unknown key: use set, advance_s, freeze or office.");
                return;
            }
        }
        if (set != NULL && !(cJSON_IsString(set) &&
                             (strcmp(set->valuestring, "real") == 0 ||
                              clock_parse_datetime(set->valuestring, &naive) == ODSYNC_OK))) {
            answer_error(a, 400, "set must be \"yyyy-MM-dd HH:mm:ss\" (office-local) or \"real\".");
            return;
        }
        if ((adv != NULL && !cJSON_IsNumber(adv)) || (frz != NULL && !cJSON_IsBool(frz))) {
            answer_error(a, 400, "advance_s must be a number of seconds and freeze a boolean.");
            return;
        }
        if (set != NULL)
            set_utc = strcmp(set->valuestring, "real") == 0 ? util_now_ms()
                                                            : clock_naive_to_utc(naive) * 1000;
    }
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < s->noffices; i++) {
        struct office *t = &s->offices[i];
        if (given && t != o)
            continue;
        pthread_mutex_lock(&s->state_lock);
        if (set != NULL)
            clock_set_utc(&t->clock, set_utc);
        if (adv != NULL)
            clock_set_utc(&t->clock, clock_utc_ms(&t->clock) + (int64_t)(adv->valuedouble * 1000));
        if (frz != NULL)
            clock_freeze(&t->clock, cJSON_IsTrue(frz));
        pthread_mutex_unlock(&s->state_lock);
        cJSON_AddItemToArray(list, clock_json(s, t));
    }
    if (given) {
        cJSON *one = cJSON_DetachItemFromArray(list, 0);
        cJSON_Delete(list);
        answer_cjson(a, 200, one);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "offices", list);
        answer_cjson(a, 200, j);
    }
}

static void dump_call(struct sim *s, const struct req *r, struct answer *a)
{
    static const struct {
        const char *name;
        enum res_id res;
    } tables[] = {
        {"patients", R_PATIENT},         {"recalls", R_RECALL},
        {"appointments", R_APPOINTMENT}, {"procedurelogs", R_PROC},
        {"clinics", R_CLINIC},           {"histappointments", R_HIST},
        {"commlogs", R_COMMLOG},         {"subscriptions", R_SUBSCRIPTION},
        {"providers", R_PROVIDER},       {"recalltypes", R_RECALLTYPE},
        {"preferences", R_PREF},
    };
    const char *t = req_arg(r, "table");
    int given;
    struct office *o = pick_office(s, r, NULL, &given, a);
    struct query q;
    char *out = NULL;
    if (o == NULL)
        return;
    for (size_t i = 0; t != NULL && i < UTIL_ARRAY_LEN(tables); i++) {
        if (strcmp(tables[i].name, t) != 0)
            continue;
        /* Optional limit/offset page through big tables (responses stay small). */
        int64_t limit = -1, offset = 0;
        if (req_arg(r, "limit") != NULL &&
            util_parse_i64(req_arg(r, "limit"), 1, INT64_MAX, &limit) != ODSYNC_OK)
            limit = -1;
        if (req_arg(r, "offset") != NULL &&
            util_parse_i64(req_arg(r, "offset"), 0, INT64_MAX, &offset) != ODSYNC_OK)
            offset = 0;
        query_init(&q, tables[i].res, o->num);
        q.pk_order = 1;
        pthread_mutex_lock(&s->db_lock);
        int rc = store_list(s, &q, limit, offset, NULL, &out);
        pthread_mutex_unlock(&s->db_lock);
        query_free(&q);
        if (rc != ODSYNC_OK)
            answer_error(a, 500, "storage error");
        else
            answer_set(a, 200, out);
        return;
    }
    answer_error(a, 400,
                 "table must be one of patients, recalls, appointments, procedurelogs, clinics, "
                 "histappointments, commlogs, subscriptions, providers, recalltypes, preferences.");
}

/* POST mutations under /_admin/patients, /_admin/appointments, /_admin/recalls. */
static void mutation_call(struct sim *s, const struct req *r, const cJSON *body, struct answer *a)
{
    struct fd_result res;
    char verb[32];
    int64_t id = 0;
    int given;
    struct office *o = pick_office(s, r, body, &given, a);
    const char *p = r->path;
    if (o == NULL)
        return;
    memset(&res, 0, sizeof(res));
    pthread_mutex_lock(&s->db_lock);
    if (strcmp(p, "/_admin/patients") == 0) {
        fd_patient_add(s, o, body, &res);
        pthread_mutex_unlock(&s->db_lock);
        answer_change(s, o, &res, R_PATIENT, res.id, 201, a);
        return;
    }
    if (strcmp(p, "/_admin/appointments") == 0) {
        fd_book(s, o, body, &res);
        pthread_mutex_unlock(&s->db_lock);
        answer_change(s, o, &res, R_APPOINTMENT, res.id, 201, a);
        return;
    }
    if (id_verb(p, "/_admin/patients/", &id, verb, sizeof(verb))) {
        cJSON *fields = NULL;
        if (strcmp(verb, "txtmsgok") == 0) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "value");
            fields = cJSON_CreateObject();
            if (cJSON_IsString(v))
                cJSON_AddStringToObject(fields, "TxtMsgOk", v->valuestring);
            else
                cJSON_AddNumberToObject(fields, "TxtMsgOk", 0); /* rejected below */
            fd_patient_update(s, o, id, fields, &res);
        } else if (verb[0] == '\0') {
            fd_patient_update(s, o, id, body, &res);
        } else {
            res.status = 404;
            util_fmt(res.msg, sizeof(res.msg), "unknown patient action");
        }
        cJSON_Delete(fields);
        pthread_mutex_unlock(&s->db_lock);
        answer_change(s, o, &res, R_PATIENT, id, 200, a);
        return;
    }
    if (id_verb(p, "/_admin/appointments/", &id, verb, sizeof(verb))) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "action");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "unscheduled");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "confirmVal");
        int64_t shown = id;
        if (strcmp(verb, "complete") == 0) {
            fd_complete(s, o, id, body, &res);
        } else if (strcmp(verb, "break") == 0) {
            fd_break(s, o, id, cJSON_IsString(v) ? v->valuestring : "Missed", cJSON_IsTrue(u),
                     &res);
        } else if (strcmp(verb, "delete") == 0) {
            fd_delete(s, o, id, &res);
            shown = 0;
        } else if (strcmp(verb, "confirm") == 0) {
            int64_t def = cJSON_IsString(c) ? fd_confirm_def(c->valuestring) : -1;
            if (def < 0) {
                res.status = 400;
                util_fmt(res.msg, sizeof(res.msg), "confirmVal is required.");
            } else {
                fd_confirm(s, o, id, def, &res);
            }
        } else {
            res.status = 404;
            util_fmt(res.msg, sizeof(res.msg), "unknown appointment action");
        }
        pthread_mutex_unlock(&s->db_lock);
        answer_change(s, o, &res, R_APPOINTMENT, shown, 200, a);
        return;
    }
    if (id_verb(p, "/_admin/recalls/", &id, verb, sizeof(verb)) && strcmp(verb, "move") == 0) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "DateDue");
        fd_recall_move(s, o, id, cJSON_IsString(d) ? d->valuestring : NULL, &res);
        pthread_mutex_unlock(&s->db_lock);
        answer_change(s, o, &res, R_RECALL, id, 200, a);
        return;
    }
    if (strcmp(p, "/_admin/random") == 0) {
        cJSON *summary = NULL;
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(body, "count");
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(body, "seed");
        int64_t n = cJSON_IsNumber(cnt) ? (int64_t)cnt->valuedouble : 10;
        if (n < 0 || n > 1000000) {
            pthread_mutex_unlock(&s->db_lock);
            answer_error(a, 400, "count must be 0..1000000.");
            return;
        }
        fd_random(s, o, n, cJSON_IsNumber(seed) ? (uint64_t)seed->valuedouble : 1, &summary, &res);
        pthread_mutex_unlock(&s->db_lock);
        if (res.status != 0)
            answer_error(a, res.status, res.msg);
        else
            answer_cjson(a, 200, summary);
        return;
    }
    pthread_mutex_unlock(&s->db_lock);
    answer_error(a, 404, "No such admin call.");
}

void admin_serve(struct sim *s, const struct req *r, struct answer *a)
{
    int bad, given;
    int get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
    cJSON *body = NULL;

    if (!req_is_loopback(r)) {
        answer_error(a, 403, "The admin API answers loopback clients only.");
        return;
    }
    body = admin_body(r, &bad, a);
    if (bad)
        return;
    if (get && strcmp(r->path, "/_admin/offices") == 0) {
        get_offices(s, a);
    } else if (get && strcmp(r->path, "/_admin/stats") == 0) {
        struct office *o = pick_office(s, r, NULL, &given, a);
        if (o != NULL)
            answer_cjson(a, 200, stats_json(s, o));
    } else if (post && strcmp(r->path, "/_admin/stats/reset") == 0) {
        struct office *o = pick_office(s, r, body, &given, a);
        if (o != NULL) {
            pthread_mutex_lock(&s->state_lock);
            for (int i = 0; i < s->noffices; i++) {
                if (!given || &s->offices[i] == o)
                    memset(&s->offices[i].stats, 0, sizeof(s->offices[i].stats));
            }
            if (!given)
                s->unknown_requests = s->unknown_401 = 0;
            pthread_mutex_unlock(&s->state_lock);
            answer_set(a, 200, util_strdup("{\"reset\":true}"));
        }
    } else if ((get || post) && strcmp(r->path, "/_admin/faults") == 0) {
        faults_call(s, r, body, a);
    } else if ((get || post) && strcmp(r->path, "/_admin/clock") == 0) {
        clock_call(s, r, body, a);
    } else if (get && strcmp(r->path, "/_admin/dump") == 0) {
        dump_call(s, r, a);
    } else if (strncmp(r->path, "/_admin/events", 14) == 0 &&
               (r->path[14] == '\0' || r->path[14] == '/')) {
        events_admin(s, r, body, a); /* events.c: settings, faults, log */
    } else if (post) {
        mutation_call(s, r, body, a);
    } else {
        answer_error(a, 404, "No such admin call.");
    }
    cJSON_Delete(body);
}
