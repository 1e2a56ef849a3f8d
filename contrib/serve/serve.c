/*
 * serve.c: listen address, body slot and callbacks shared by odsim and the fakes.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

struct serve_upload *serve_collect(void **req_cls, const char *data, size_t *size, size_t max,
                                   enum MHD_Result *ret)
{
    struct serve_upload *up = *req_cls;
    *ret = MHD_YES;
    if (up == NULL) { /* the headers: make the slot, the body (if any) comes next */
        up = util_calloc(1, sizeof(*up));
        if (up == NULL)
            *ret = MHD_NO;
        *req_cls = up;
        return NULL;
    }
    if (*size == 0)
        return up;
    if (up->too_big || *size > max - up->body.len) {
        up->too_big = 1;
        sbuf_free(&up->body);
    } else if (sbuf_append(&up->body, data, *size) != ODSYNC_OK) {
        *ret = MHD_NO;
    }
    *size = 0;
    return NULL;
}

int serve_parse_listen(const char *s, struct sockaddr_in *addr)
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

void serve_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe)
{
    struct serve_upload *up = *req_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (up == NULL)
        return;
    sbuf_free(&up->body);
    util_free(up);
    *req_cls = NULL;
}

void serve_on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    log_debug("mhd", "%s", line);
}

void serve_block_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

struct MHD_Daemon *serve_start(const struct sockaddr_in *addr, MHD_AccessHandlerCallback handler,
                               void *cls, serve_unescape_fn unescape)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (unescape != NULL)
        return MHD_start_daemon(flags, 0, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR,
                                (const struct sockaddr *)addr, MHD_OPTION_NOTIFY_COMPLETED,
                                serve_on_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape,
                                NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
                                MHD_OPTION_EXTERNAL_LOGGER, serve_on_mhd_log, NULL, MHD_OPTION_END);
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR,
                            (const struct sockaddr *)addr, MHD_OPTION_NOTIFY_COMPLETED,
                            serve_on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
                            MHD_OPTION_EXTERNAL_LOGGER, serve_on_mhd_log, NULL, MHD_OPTION_END);
}
