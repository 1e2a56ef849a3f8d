/*
 * fake_rest_crm: a small stateful HTTP server speaking odsync's generic REST wire protocol
 * (plugins/rest/README.md), for plugin, integration and demo runs.
 *
 *   fake_rest_crm --listen 127.0.0.1:PORT --token T [--state-file F]
 *
 * Prints "listening on 127.0.0.1:PORT" on stdout once ready (PORT 0 picks a free port and
 * the line shows the real one). SIGTERM or SIGINT stops it cleanly (exit 0).
 *
 * Protocol (every route but GET /_state needs "Authorization: Bearer T", else 401):
 *   PUT  /{entity}/{id}     body: a JSON object. The first PUT of an id creates the item:
 *                           201 {"id":"<n>","created":true}; later ones update it:
 *                           200 {"id":"<n>","created":false}. {entity} may hold '/'.
 *   POST /{entity}/batch    body: a JSON array (at most 100) of objects, each with a string
 *                           "key"; 200 with one result per item, in order:
 *                           {"id":"<n>","status":"ok","created":bool} or
 *                           {"status":"error","error":"..."}.
 *   GET  /_state            200 {"entities": {"<entity>": {"count": N, "items": {"<id>":
 *                           {"id","version","body","idempotency_key"}}}}, "requests": N}
 * Errors are JSON {"error": "..."}: invalid JSON body 400, body over 16 MiB 413, unknown
 * path 404, wrong method 405.
 *
 * "version" counts the writes the fake applied to an item (1 = created). A PUT whose
 * Idempotency-Key equals the one that last wrote the item is a replay: it answers as an
 * update and changes nothing. "requests" counts every request except GET /_state.
 * With --state-file the state is loaded at start (when the file exists) and written after
 * every change (mode 0600, via a temporary file and rename).
 *
 * One MHD thread serves every connection, so the state needs no lock. Request bodies (which
 * hold test patient data) are never logged; the token is registered as a log secret.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "log.h"
#include "util.h"

#define FAKE_MAX_BODY  ((size_t)16 * 1024 * 1024)
#define FAKE_MAX_BATCH 100
#define FAKE_LOG       "fake_rest_crm"

struct fake {
    cJSON *entities;        /* owned: entity -> {"count", "items": {id -> item}} */
    long long next_id;      /* last id handed out */
    long long requests;     /* requests served, GET /_state excluded */
    char *bearer;           /* owned: "Bearer <token>" */
    const char *state_file; /* borrowed from argv, or NULL */
};

/* One request's upload, kept in MHD's per-request pointer. */
struct upload {
    struct sbuf body; /* owned */
    int too_big;
};

/* ---- state ------------------------------------------------------------------------------ */

/* Write the state to f->state_file (temporary file, then rename). Logs failures. */
static void state_save(const struct fake *f)
{
    char tmp[4096];
    char *text = NULL;
    cJSON *root = NULL;
    FILE *fp = NULL;
    int fd = -1;

    if (f->state_file == NULL)
        return;
    if (util_fmt(tmp, sizeof(tmp), "%s.tmp", f->state_file) != ODSYNC_OK) {
        log_error(FAKE_LOG, "state file path too long");
        goto cleanup;
    }
    root = cJSON_CreateObject();
    if (root == NULL || !cJSON_AddItemReferenceToObject(root, "entities", f->entities) ||
        cJSON_AddNumberToObject(root, "requests", (double)f->requests) == NULL ||
        cJSON_AddNumberToObject(root, "next_id", (double)f->next_id) == NULL)
        goto cleanup;
    text = cJSON_Print(root);
    if (text == NULL)
        goto cleanup;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fp == NULL) {
        log_error(FAKE_LOG, "cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1; /* fp owns it now */
    if (fputs(text, fp) == EOF || fclose(fp) != 0) {
        fp = NULL;
        log_error(FAKE_LOG, "cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fp = NULL;
    if (rename(tmp, f->state_file) != 0)
        log_error(FAKE_LOG, "cannot rename %s: %s", tmp, strerror(errno));
cleanup:
    if (fp != NULL)
        fclose(fp);
    if (fd >= 0)
        close(fd);
    cJSON_free(text);
    cJSON_Delete(root);
}

/* Load f->state_file when it exists. Returns ODSYNC_OK, or an error after printing why. */
static int state_load(struct fake *f)
{
    char *text = NULL;
    cJSON *root = NULL;
    int rc = ODSYNC_OK;

    if (f->state_file == NULL || access(f->state_file, F_OK) != 0)
        return ODSYNC_OK;
    rc = util_read_file(f->state_file, 256 * 1024 * 1024, &text, NULL);
    if (rc != ODSYNC_OK) {
        fprintf(stderr, "fake_rest_crm: cannot read %s: %s\n", f->state_file, strerror(errno));
        goto cleanup;
    }
    root = cJSON_Parse(text);
    cJSON *ents = cJSON_GetObjectItemCaseSensitive(root, "entities");
    if (!cJSON_IsObject(ents)) {
        fprintf(stderr, "fake_rest_crm: %s: not a state file (no \"entities\" object)\n",
                f->state_file);
        rc = ODSYNC_PARSE;
        goto cleanup;
    }
    cJSON_Delete(f->entities);
    f->entities = cJSON_DetachItemViaPointer(root, ents);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(root, "requests");
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(root, "next_id");
    f->requests = cJSON_IsNumber(req) ? (long long)req->valuedouble : 0;
    f->next_id = cJSON_IsNumber(next) ? (long long)next->valuedouble : 0;
cleanup:
    cJSON_Delete(root);
    util_free(text);
    return rc;
}

/* Create or update item id of entity with body (copied). *item_out is the stored item
 * (borrowed from f), *created says which. idem (may be NULL) is the request's
 * Idempotency-Key. Returns ODSYNC_OK or ODSYNC_NOMEM. */
static int upsert(struct fake *f, const char *entity, const char *id, const cJSON *body,
                  const char *idem, const cJSON **item_out, int *created)
{
    char num[32];
    cJSON *ent = cJSON_GetObjectItemCaseSensitive(f->entities, entity);
    if (ent == NULL) {
        ent = cJSON_AddObjectToObject(f->entities, entity);
        if (ent == NULL || cJSON_AddNumberToObject(ent, "count", 0) == NULL ||
            cJSON_AddObjectToObject(ent, "items") == NULL)
            return ODSYNC_NOMEM;
    }
    cJSON *items = cJSON_GetObjectItemCaseSensitive(ent, "items");
    cJSON *item = cJSON_GetObjectItemCaseSensitive(items, id);
    cJSON *copy = cJSON_Duplicate(body, 1);
    cJSON *key = idem != NULL ? cJSON_CreateString(idem) : cJSON_CreateNull();
    if (copy == NULL || key == NULL) {
        cJSON_Delete(copy);
        cJSON_Delete(key);
        return ODSYNC_NOMEM;
    }
    *created = item == NULL;
    if (item == NULL) {
        item = cJSON_CreateObject();
        util_fmt(num, sizeof(num), "%lld", f->next_id + 1);
        if (item == NULL || cJSON_AddStringToObject(item, "id", num) == NULL ||
            cJSON_AddNumberToObject(item, "version", 1) == NULL) {
            cJSON_Delete(item);
            cJSON_Delete(copy);
            cJSON_Delete(key);
            return ODSYNC_NOMEM;
        }
        cJSON_AddItemToObject(item, "body", copy);
        cJSON_AddItemToObject(item, "idempotency_key", key);
        cJSON_AddItemToObject(items, id, item);
        f->next_id++;
        cJSON *count = cJSON_GetObjectItemCaseSensitive(ent, "count");
        cJSON_SetNumberValue(count, count->valuedouble + 1);
    } else {
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(item, "idempotency_key");
        if (idem != NULL && cJSON_IsString(last) && strcmp(last->valuestring, idem) == 0) {
            cJSON_Delete(copy); /* a replay: nothing changes */
            cJSON_Delete(key);
        } else {
            cJSON *version = cJSON_GetObjectItemCaseSensitive(item, "version");
            cJSON_SetNumberValue(version, version->valuedouble + 1);
            cJSON_ReplaceItemInObjectCaseSensitive(item, "body", copy);
            cJSON_ReplaceItemInObjectCaseSensitive(item, "idempotency_key", key);
        }
    }
    *item_out = item;
    return ODSYNC_OK;
}

/* ---- HTTP --------------------------------------------------------------------------------- */

/* Queue json (ownership taken) as the answer. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, cJSON *json)
{
    char *text = json != NULL ? cJSON_PrintUnformatted(json) : NULL;
    enum MHD_Result ret = MHD_NO;
    cJSON_Delete(json);
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
    }
    cJSON_free(text);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned status,
                                   const char *message)
{
    cJSON *json = cJSON_CreateObject();
    if (json != NULL && cJSON_AddStringToObject(json, "error", message) == NULL) {
        cJSON_Delete(json);
        json = NULL;
    }
    return reply(conn, status, json);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string (caller frees with util_free). NULL on a bad
 * escape, an encoded NUL, or NOMEM. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = util_malloc(n + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (n - i < 3) {
            util_free(out);
            return NULL;
        }
        int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0)) {
            util_free(out);
            return NULL;
        }
        out[o++] = (char)(h * 16 + l);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* GET /_state. */
static enum MHD_Result serve_state(const struct fake *f, struct MHD_Connection *conn)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL || !cJSON_AddItemReferenceToObject(root, "entities", f->entities) ||
        cJSON_AddNumberToObject(root, "requests", (double)f->requests) == NULL) {
        cJSON_Delete(root);
        return MHD_NO;
    }
    return reply(conn, MHD_HTTP_OK, root);
}

/* PUT /{entity}/{id}. */
static enum MHD_Result serve_put(struct fake *f, struct MHD_Connection *conn, const char *entity,
                                 const char *id, const cJSON *body)
{
    const char *idem = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    const cJSON *item;
    int created;
    if (!cJSON_IsObject(body))
        return reply_error(conn, MHD_HTTP_BAD_REQUEST, "invalid JSON body: expected an object");
    if (upsert(f, entity, id, body, idem, &item, &created) != ODSYNC_OK)
        return MHD_NO;
    state_save(f);
    cJSON *out = cJSON_CreateObject();
    if (out == NULL ||
        cJSON_AddStringToObject(
            out, "id", cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring) == NULL ||
        cJSON_AddBoolToObject(out, "created", created) == NULL) {
        cJSON_Delete(out);
        return MHD_NO;
    }
    return reply(conn, created ? MHD_HTTP_CREATED : MHD_HTTP_OK, out);
}

/* POST /{entity}/batch. */
static enum MHD_Result serve_batch(struct fake *f, struct MHD_Connection *conn, const char *entity,
                                   const cJSON *body)
{
    if (!cJSON_IsArray(body))
        return reply_error(conn, MHD_HTTP_BAD_REQUEST, "invalid JSON body: expected an array");
    if (cJSON_GetArraySize(body) > FAKE_MAX_BATCH)
        return reply_error(conn, MHD_HTTP_BAD_REQUEST, "batch larger than 100 items");
    cJSON *out = cJSON_CreateArray();
    if (out == NULL)
        return MHD_NO;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, body)
    {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(rec, "key");
        cJSON *res = cJSON_CreateObject();
        const cJSON *item;
        int created;
        if (res == NULL) {
            cJSON_Delete(out);
            return MHD_NO;
        }
        cJSON_AddItemToArray(out, res);
        if (!cJSON_IsObject(rec) || !cJSON_IsString(key) || key->valuestring[0] == '\0') {
            cJSON_AddStringToObject(res, "status", "error");
            cJSON_AddStringToObject(res, "error", "item is not an object with a string \"key\"");
            continue;
        }
        if (upsert(f, entity, key->valuestring, rec, NULL, &item, &created) != ODSYNC_OK) {
            cJSON_Delete(out);
            return MHD_NO;
        }
        cJSON_AddStringToObject(res, "id",
                                cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring);
        cJSON_AddStringToObject(res, "status", "ok");
        cJSON_AddBoolToObject(res, "created", created);
    }
    state_save(f);
    return reply(conn, MHD_HTTP_OK, out);
}

/* Route one complete request. url is the raw (still percent-encoded) path. */
static enum MHD_Result route(struct fake *f, struct MHD_Connection *conn, const char *url,
                             const char *method, struct upload *up)
{
    char *entity = NULL, *id = NULL;
    cJSON *body = NULL;
    enum MHD_Result ret;

    if (strcmp(url, "/_state") == 0 && strcmp(method, "GET") == 0)
        return serve_state(f, conn);
    f->requests++;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!util_secure_equal(auth != NULL ? auth : "", f->bearer)) {
        ret = reply_error(conn, MHD_HTTP_UNAUTHORIZED, "invalid or missing bearer token");
        goto cleanup;
    }
    if (up->too_big) {
        ret = reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 16 MiB");
        goto cleanup;
    }
    const char *slash = strrchr(url, '/');
    if (url[0] != '/' || slash == NULL || slash == url || slash[1] == '\0') {
        ret = reply_error(conn, MHD_HTTP_NOT_FOUND, "not found");
        goto cleanup;
    }
    entity = pct_decode(url + 1, (size_t)(slash - url - 1));
    id = pct_decode(slash + 1, strlen(slash + 1));
    if (entity == NULL || id == NULL) {
        ret = reply_error(conn, MHD_HTTP_BAD_REQUEST, "bad percent-encoding in the path");
        goto cleanup;
    }
    int is_batch = strcmp(slash + 1, "batch") == 0;
    int is_put = strcmp(method, "PUT") == 0;
    if (!(is_put || (is_batch && strcmp(method, "POST") == 0))) {
        ret = reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        goto cleanup;
    }
    body = cJSON_ParseWithLength(up->body.data != NULL ? up->body.data : "", up->body.len);
    if (body == NULL) {
        ret = reply_error(conn, MHD_HTTP_BAD_REQUEST, "invalid JSON body");
        goto cleanup;
    }
    ret = is_put ? serve_put(f, conn, entity, id, body) : serve_batch(f, conn, entity, body);
cleanup:
    cJSON_Delete(body);
    util_free(entity);
    util_free(id);
    return ret;
}

/* MHD access handler: collect the body, then route. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct fake *f = cls;
    struct upload *up = *req_cls;
    (void)version;
    if (up == NULL) {
        up = util_calloc(1, sizeof(*up));
        if (up == NULL)
            return MHD_NO;
        *req_cls = up;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (up->too_big || *upload_data_size > FAKE_MAX_BODY - up->body.len) {
            up->too_big = 1;
            sbuf_free(&up->body);
        } else if (sbuf_append(&up->body, upload_data, *upload_data_size) != ODSYNC_OK) {
            return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    enum MHD_Result ret = route(f, conn, url, method, up);
    log_info(FAKE_LOG, "%s %s (%zu bytes)", method, url, up->body.len);
    return ret;
}

/* MHD completion callback: free the upload. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *req_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (up == NULL)
        return;
    sbuf_free(&up->body);
    util_free(up);
    *req_cls = NULL;
}

/* MHD unescape callback: keep the path as sent, so "/" inside an encoded id survives and
 * route() decodes each part itself. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: fake_rest_crm --listen 127.0.0.1:PORT --token TOKEN [--state-file FILE]\n");
}

/* Parse "A.B.C.D:PORT" into addr. Returns ODSYNC_OK or ODSYNC_PARSE. */
static int parse_listen(const char *s, struct sockaddr_in *addr)
{
    char host[64];
    int64_t port;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return ODSYNC_PARSE;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1 ||
        util_parse_i64(colon + 1, 0, 65535, &port) != ODSYNC_OK)
        return ODSYNC_PARSE;
    addr->sin_port = htons((uint16_t)port);
    return ODSYNC_OK;
}

int main(int argc, char **argv)
{
    struct fake f = {0};
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in addr;
    const char *listen_at = NULL, *token = NULL;
    char host[INET_ADDRSTRLEN];
    sigset_t sigs;
    int sig, rc = 2;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_at = argv[++i];
        else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
            token = argv[++i];
        else if (strcmp(argv[i], "--state-file") == 0 && i + 1 < argc)
            f.state_file = argv[++i];
        else {
            usage();
            goto cleanup;
        }
    }
    if (listen_at == NULL || token == NULL || token[0] == '\0') {
        usage();
        goto cleanup;
    }
    if (parse_listen(listen_at, &addr) != ODSYNC_OK) {
        fprintf(stderr, "fake_rest_crm: --listen: expected A.B.C.D:PORT, got \"%s\"\n", listen_at);
        goto cleanup;
    }
    rc = 1;
    log_setup(stderr, ODSYNC_LOG_INFO, LOG_TEXT);
    size_t blen = strlen(token) + 8;
    f.bearer = util_malloc(blen);
    f.entities = cJSON_CreateObject();
    if (f.bearer == NULL || f.entities == NULL || log_add_secret(token) != ODSYNC_OK) {
        fprintf(stderr, "fake_rest_crm: out of memory\n");
        goto cleanup;
    }
    util_fmt(f.bearer, blen, "Bearer %s", token);
    if (state_load(&f) != ODSYNC_OK)
        goto cleanup;

    /* MHD's thread inherits this mask, so only sigwait() below sees the signals. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                         on_request, &f, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "fake_rest_crm: cannot listen on %s\n", listen_at);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    printf("listening on %s:%u\n", host, info != NULL ? (unsigned)info->port : 0u);
    fflush(stdout);

    while (sigwait(&sigs, &sig) != 0)
        ;
    log_info(FAKE_LOG, "signal %d: stopping", sig);
    rc = 0;
cleanup:
    if (d != NULL)
        MHD_stop_daemon(d);
    if (rc == 0)
        state_save(&f);
    cJSON_Delete(f.entities);
    util_free(f.bearer);
    log_shutdown();
    return rc;
}
