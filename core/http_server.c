/*
 * http_server.c: libmicrohttpd glue — bodies read up to a limit, one handler per request.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "log.h"
#include "util.h"

#define DEFAULT_THREADS 4
#define TLS_FILE_MAX    (1u << 20)

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler_fn handler;
    void *arg;
    size_t max_body;
    int port;
    char *tls_cert, *tls_key; /* PEM text, kept while the daemon runs */
};

/* Per-request state between the access handler's calls. */
struct upload {
    struct sbuf body;
    int too_big;
};

const char *http_request_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_arg(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int http_reply_header(struct http_reply *reply, const char *name, const char *value)
{
    if (reply->n_headers >= HTTP_REPLY_MAX_HEADERS || strpbrk(value, "\r\n") != NULL)
        return ODSYNC_INVALID;
    reply->header_values[reply->n_headers] = util_strdup(value);
    if (reply->header_values[reply->n_headers] == NULL)
        return ODSYNC_NOMEM;
    reply->header_names[reply->n_headers++] = name;
    return ODSYNC_OK;
}

/* Free a reply's extra headers. */
static void reply_headers_free(struct http_reply *reply)
{
    size_t i;
    for (i = 0; i < reply->n_headers; i++)
        util_free(reply->header_values[i]);
    reply->n_headers = 0;
}

/* Queue a reply; takes ownership of body. extra (may be NULL): its headers are added, not
 * taken. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, int status, char *body,
                                  const char *type, const struct http_reply *extra)
{
    struct MHD_Response *resp;
    enum MHD_Result ok;
    size_t i;
    if (body == NULL)
        body = util_strdup("");
    if (body == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer_with_free_callback(strlen(body), body, util_free);
    if (resp == NULL) {
        util_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type ? type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    for (i = 0; extra != NULL && i < extra->n_headers; i++)
        MHD_add_response_header(resp, extra->header_names[i], extra->header_values[i]);
    ok = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

void http_reply_error(struct http_reply *reply, int status, const char *fmt, ...)
{
    char msg[256], *printed = NULL;
    cJSON *j = cJSON_CreateObject();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (j != NULL && cJSON_AddStringToObject(j, "error", msg) != NULL)
        printed = cJSON_PrintUnformatted(j); /* escaped: msg may quote request text */
    cJSON_Delete(j);
    reply->status = status;
    reply->body = util_strdup(printed);
    cJSON_free(printed);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *s = cls;
    struct upload *up = *con_cls;
    struct http_request req;
    struct http_reply reply = {500, NULL, NULL, {NULL}, {NULL}, 0};
    enum MHD_Result ok;
    const char *cl;
    int64_t declared = 0;

    (void)version;
    if (up == NULL) { /* first call: headers only */
        up = util_calloc(1, sizeof(*up));
        if (up == NULL)
            return MHD_NO;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && util_parse_i64(cl, 0, INT64_MAX, &declared) == ODSYNC_OK &&
            (uint64_t)declared > s->max_body)
            up->too_big = 1;
        *con_cls = up;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!up->too_big && up->body.len + *upload_data_size > s->max_body)
            up->too_big = 1;
        if (!up->too_big && sbuf_append(&up->body, upload_data, *upload_data_size) != ODSYNC_OK)
            up->too_big = 1; /* out of memory: refuse as too large rather than crash */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (up->too_big) {
        http_reply_error(&reply, 413, "request body larger than the limit");
        return send_reply(conn, reply.status, reply.body, NULL, NULL);
    }
    req.method = method;
    req.path = url;
    req.body = up->body.data ? up->body.data : "";
    req.body_len = up->body.len;
    req.conn = conn;
    s->handler(s->arg, &req, &reply);
    ok = send_reply(conn, reply.status, reply.body, reply.content_type, &reply);
    reply_headers_free(&reply);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (up == NULL)
        return;
    sbuf_free(&up->body);
    util_free(up);
    *con_cls = NULL;
}

/* Parse "host:port" ("[v6]:port") into addr. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *len,
                        char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints, *res = NULL;
    size_t hlen;
    int rc;
    if (colon == NULL || colon == listen) {
        util_fmt(err, errlen, "listen \"%s\": expected host:port", listen);
        return ODSYNC_CONFIG;
    }
    hlen = (size_t)(colon - listen);
    if (listen[0] == '[' && hlen >= 2 && listen[hlen - 1] == ']') {
        listen++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        util_fmt(err, errlen, "listen: host too long");
        return ODSYNC_CONFIG;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0 || res == NULL) {
        util_fmt(err, errlen, "listen \"%s\": %s", host, gai_strerror(rc));
        return ODSYNC_CONFIG;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return ODSYNC_OK;
}

/* Read the TLS files; both or neither. */
static int load_tls(struct http_server *s, const struct http_server_options *opt, char *err,
                    size_t errlen)
{
    if (opt->tls_cert == NULL && opt->tls_key == NULL)
        return ODSYNC_OK;
    if (opt->tls_cert == NULL || opt->tls_key == NULL) {
        util_fmt(err, errlen, "tls: give both a certificate and a key");
        return ODSYNC_CONFIG;
    }
    if (util_read_file(opt->tls_cert, TLS_FILE_MAX, &s->tls_cert, NULL) != ODSYNC_OK) {
        util_fmt(err, errlen, "tls certificate %s: cannot read", opt->tls_cert);
        return ODSYNC_CONFIG;
    }
    if (util_read_file(opt->tls_key, TLS_FILE_MAX, &s->tls_key, NULL) != ODSYNC_OK) {
        util_fmt(err, errlen, "tls key %s: cannot read", opt->tls_key);
        return ODSYNC_CONFIG;
    }
    return ODSYNC_OK;
}

int http_server_start(const struct http_server_options *opt, http_handler_fn handler, void *arg,
                      struct http_server **out, char *err, size_t errlen)
{
    struct http_server *s = NULL;
    struct sockaddr_storage addr, bound;
    socklen_t alen = 0, blen = sizeof(bound);
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    int rc;

    *out = NULL;
    s = util_calloc(1, sizeof(*s));
    if (s == NULL)
        return ODSYNC_NOMEM;
    s->handler = handler;
    s->arg = arg;
    s->max_body = opt->max_body;
    rc = parse_listen(opt->listen, &addr, &alen, err, errlen);
    if (rc == ODSYNC_OK)
        rc = load_tls(s, opt, err, errlen);
    if (rc != ODSYNC_OK)
        goto cleanup;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (s->tls_cert != NULL)
        flags |= MHD_USE_TLS;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, opt->threads ? opt->threads : DEFAULT_THREADS,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        s->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_END);
    if (s->daemon == NULL) {
        util_fmt(err, errlen, "cannot listen on %s (address in use, or TLS files invalid)",
                 opt->listen);
        rc = ODSYNC_IO;
        goto cleanup;
    }
    info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info != NULL && getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    (void)alen;
    *out = s;
    s = NULL;
    rc = ODSYNC_OK;
cleanup:
    http_server_stop(s);
    return rc;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    util_free(s->tls_cert);
    util_free(s->tls_key);
    util_free(s);
}
