/*
 * raw_http.c: the scripted loopback HTTP/1.1 server of raw_http.h.
 *
 * One thread runs a poll() loop over the listening socket, a wake-up pipe and every open
 * connection (all non-blocking). Requests are parsed just enough to frame them (head up to
 * the blank line, body by Content-Length), recorded, and answered with the next queued
 * action. Everything here uses plain malloc so the fail-Nth allocation test mode of util
 * never reaches the server.
 */
#include "raw_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RAW_HTTP_MAX_CONNS 32
#define RAW_HTTP_MAX_HEAD  (1024 * 1024) /* a request head larger than this closes the conn */
#define RAW_HTTP_CHUNK     65536

enum action_kind {
    ACT_RESPOND = 0, /* send bytes, keep the connection */
    ACT_RAW = 1,     /* send bytes, then close */
    ACT_CLOSE = 2,   /* close without answering */
    ACT_HANG = 3     /* never answer */
};

struct action {
    enum action_kind kind;
    char *bytes; /* owned: the whole answer (ACT_RESPOND, ACT_RAW) */
    size_t len;
    struct action *next;
};

struct record {
    char *data; /* owned, NUL-terminated copy of the request bytes */
    size_t len;
};

struct conn {
    int fd;   /* -1 when the slot is free */
    char *in; /* owned: bytes received and not yet answered */
    size_t in_len;
    size_t in_cap;
    char *out; /* owned: answer being sent, or NULL */
    size_t out_len;
    size_t out_off;
    int close_after; /* close once out is sent */
    int hung;        /* ACT_HANG: ignore further requests on this connection */
};

struct raw_http {
    int listen_fd;
    int wake[2]; /* raw_http_stop writes to wake[1] */
    int port;
    char url[40];
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock; /* guards actions, records, n_accepted */
    pthread_cond_t cond;  /* signalled when a request is recorded */
    struct action *head;  /* queue of scripted answers */
    struct action *tail;
    struct record *records; /* owned array */
    size_t n_records;
    size_t cap_records;
    size_t n_accepted;
    struct conn conns[RAW_HTTP_MAX_CONNS]; /* touched by the server thread only */
};

/* ---- scripted answers ---------------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 207:
        return "Multi-Status";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* 1 when the header lines in hdrs contain a field called name (case-insensitive). */
static int lines_have_field(const char *hdrs, const char *name)
{
    size_t n = strlen(name);
    const char *line = hdrs;
    while (line != NULL && *line != '\0') {
        if (strncasecmp(line, name, n) == 0 && line[n] == ':')
            return 1;
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return 0;
}

/* Append an action to the queue; takes ownership of bytes (freed on failure). */
static int push_action(struct raw_http *srv, enum action_kind kind, char *bytes, size_t len)
{
    struct action *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        free(bytes);
        return -1;
    }
    a->kind = kind;
    a->bytes = bytes;
    a->len = len;
    pthread_mutex_lock(&srv->lock);
    if (srv->tail != NULL)
        srv->tail->next = a;
    else
        srv->head = a;
    srv->tail = a;
    pthread_mutex_unlock(&srv->lock);
    return 0;
}

int raw_http_push_response(struct raw_http *srv, int status, const char *headers, const char *body)
{
    char head[256];
    const char *hdrs = headers != NULL ? headers : "";
    /* 1xx, 204 and 304 answers carry no body and no Content-Length. */
    int bodiless = status < 200 || status == 204 || status == 304;
    size_t body_len = body != NULL && !bodiless ? strlen(body) : 0;
    int n;

    if (bodiless)
        n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
    else
        n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s", status,
                     reason_phrase(status), body_len,
                     lines_have_field(hdrs, "Content-Type") ? ""
                                                            : "Content-Type: application/json\r\n");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    size_t hlen = strlen(hdrs);
    size_t total = (size_t)n + hlen + 2 + body_len;
    char *bytes = malloc(total + 1);
    if (bytes == NULL)
        return -1;
    memcpy(bytes, head, (size_t)n);
    memcpy(bytes + n, hdrs, hlen);
    memcpy(bytes + n + hlen, "\r\n", 2);
    if (body_len > 0)
        memcpy(bytes + n + hlen + 2, body, body_len);
    bytes[total] = '\0';
    return push_action(srv, ACT_RESPOND, bytes, total);
}

int raw_http_push_raw(struct raw_http *srv, const char *bytes, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, bytes, len);
    return push_action(srv, ACT_RAW, copy, len);
}

int raw_http_push_close(struct raw_http *srv)
{
    return push_action(srv, ACT_CLOSE, NULL, 0);
}

int raw_http_push_hang(struct raw_http *srv)
{
    return push_action(srv, ACT_HANG, NULL, 0);
}

/* The next action, or the default 200 "{}" (caller frees with free_action); NULL on NOMEM. */
static struct action *pop_action(struct raw_http *srv)
{
    static const char dflt[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                               "Content-Type: application/json\r\n\r\n{}";
    pthread_mutex_lock(&srv->lock);
    struct action *a = srv->head;
    if (a != NULL) {
        srv->head = a->next;
        if (srv->head == NULL)
            srv->tail = NULL;
    }
    pthread_mutex_unlock(&srv->lock);
    if (a != NULL)
        return a;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->kind = ACT_RESPOND;
    a->len = sizeof(dflt) - 1;
    a->bytes = malloc(a->len);
    if (a->bytes == NULL) {
        free(a);
        return NULL;
    }
    memcpy(a->bytes, dflt, a->len);
    return a;
}

static void free_action(struct action *a)
{
    if (a == NULL)
        return;
    free(a->bytes);
    free(a);
}

/* ---- requests -------------------------------------------------------------------------- */

/* Store a copy of a complete request. Returns 0 or -1. */
static int record_request(struct raw_http *srv, const char *data, size_t len)
{
    char *copy = malloc(len + 1);
    int rc = -1;
    if (copy == NULL)
        return -1;
    memcpy(copy, data, len);
    copy[len] = '\0';
    pthread_mutex_lock(&srv->lock);
    if (srv->n_records == srv->cap_records) {
        size_t cap = srv->cap_records ? srv->cap_records * 2 : 16;
        struct record *r = realloc(srv->records, cap * sizeof(*r));
        if (r == NULL)
            goto cleanup;
        srv->records = r;
        srv->cap_records = cap;
    }
    srv->records[srv->n_records].data = copy;
    srv->records[srv->n_records].len = len;
    srv->n_records++;
    copy = NULL;
    rc = 0;
    pthread_cond_broadcast(&srv->cond);
cleanup:
    pthread_mutex_unlock(&srv->lock);
    free(copy);
    return rc;
}

/* Value of header field name in the request head [head, head + len), or NULL; *vlen set. */
static const char *head_field(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    const char *end = head + len;
    const char *line = memchr(head, '\n', len); /* skip the request line */
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            break;
        if ((size_t)(eol - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

/* Content-Length of a request head; 0 when absent, -1 when malformed. */
static long long head_content_length(const char *head, size_t len)
{
    size_t vlen = 0;
    const char *v = head_field(head, len, "Content-Length", &vlen);
    long long n = 0;
    if (v == NULL)
        return 0;
    if (vlen == 0 || vlen > 15)
        return -1;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* Answer every complete request buffered on c, one at a time: a request is taken only when
 * the previous answer was fully sent. */
static void conn_process(struct raw_http *srv, struct conn *c)
{
    while (c->fd >= 0 && c->out == NULL && !c->hung) {
        const char *blank = NULL;
        for (size_t i = 0; i + 4 <= c->in_len; i++) {
            if (memcmp(c->in + i, "\r\n\r\n", 4) == 0) {
                blank = c->in + i;
                break;
            }
        }
        if (blank == NULL) {
            if (c->in_len > RAW_HTTP_MAX_HEAD)
                conn_close(c);
            return;
        }
        size_t head_len = (size_t)(blank - c->in) + 4;
        long long body_len = head_content_length(c->in, head_len);
        if (body_len < 0) {
            conn_close(c);
            return;
        }
        size_t total = head_len + (size_t)body_len;
        if (c->in_len < total)
            return;
        size_t vlen = 0;
        const char *conn_hdr = head_field(c->in, head_len, "Connection", &vlen);
        int client_close = conn_hdr != NULL && vlen == 5 && strncasecmp(conn_hdr, "close", 5) == 0;
        struct action *a = NULL;
        if (record_request(srv, c->in, total) != 0 || (a = pop_action(srv)) == NULL) {
            conn_close(c);
            return;
        }
        memmove(c->in, c->in + total, c->in_len - total);
        c->in_len -= total;
        switch (a->kind) {
        case ACT_RESPOND:
        case ACT_RAW:
            c->out = a->bytes; /* ownership moves to the connection */
            c->out_len = a->len;
            c->out_off = 0;
            a->bytes = NULL;
            c->close_after = client_close || a->kind == ACT_RAW;
            break;
        case ACT_CLOSE:
            conn_close(c);
            break;
        case ACT_HANG:
            c->hung = 1;
            break;
        }
        free_action(a);
    }
}

/* Send what is pending on c; closes or moves on to buffered requests when done. */
static void conn_write(struct raw_http *srv, struct conn *c)
{
    while (c->out != NULL && c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    if (c->close_after) {
        conn_close(c);
        return;
    }
    conn_process(srv, c);
}

/* Read what is available on c. */
static void conn_read(struct raw_http *srv, struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < RAW_HTTP_CHUNK) {
            size_t cap = c->in_cap ? c->in_cap * 2 : RAW_HTTP_CHUNK * 2;
            char *in = realloc(c->in, cap);
            if (in == NULL) {
                conn_close(c);
                return;
            }
            c->in = in;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
    }
    conn_process(srv, c);
}

/* Make fd non-blocking and close-on-exec. Returns 0 or -1. */
static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -1;
    return 0;
}

static void accept_one(struct raw_http *srv)
{
    int fd = accept(srv->listen_fd, NULL, NULL);
    if (fd < 0)
        return;
    if (set_nonblock_cloexec(fd) != 0) {
        close(fd);
        return;
    }
    for (size_t i = 0; i < RAW_HTTP_MAX_CONNS; i++) {
        if (srv->conns[i].fd < 0) {
            srv->conns[i].fd = fd;
            pthread_mutex_lock(&srv->lock);
            srv->n_accepted++;
            pthread_mutex_unlock(&srv->lock);
            return;
        }
    }
    close(fd); /* cannot happen: the listener is not polled when every slot is taken */
}

static void *server_main(void *arg)
{
    struct raw_http *srv = arg;
    struct pollfd pfd[RAW_HTTP_MAX_CONNS + 2];
    int slot_of[RAW_HTTP_MAX_CONNS + 2];

    for (;;) {
        nfds_t n = 0;
        int free_slot = 0;
        pfd[n].fd = srv->wake[0];
        pfd[n].events = POLLIN;
        slot_of[n++] = -1;
        for (int i = 0; i < RAW_HTTP_MAX_CONNS; i++) {
            struct conn *c = &srv->conns[i];
            if (c->fd < 0) {
                free_slot = 1;
                continue;
            }
            pfd[n].fd = c->fd;
            pfd[n].events = (short)(POLLIN | (c->out != NULL ? POLLOUT : 0));
            slot_of[n++] = i;
        }
        if (free_slot) {
            pfd[n].fd = srv->listen_fd;
            pfd[n].events = POLLIN;
            slot_of[n++] = -2;
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[0].revents != 0)
            break;
        for (nfds_t i = 1; i < n; i++) {
            if (pfd[i].revents == 0)
                continue;
            if (slot_of[i] == -2) {
                accept_one(srv);
                continue;
            }
            struct conn *c = &srv->conns[slot_of[i]];
            if (pfd[i].revents & POLLOUT)
                conn_write(srv, c);
            if (c->fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                conn_read(srv, c);
        }
    }
    return NULL;
}

/* ---- lifecycle and queries ------------------------------------------------------------ */

int raw_http_start(struct raw_http **out)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    struct raw_http *srv = calloc(1, sizeof(*srv));
    int saved;

    *out = NULL;
    if (srv == NULL)
        return -1;
    srv->listen_fd = srv->wake[0] = srv->wake[1] = -1;
    for (size_t i = 0; i < RAW_HTTP_MAX_CONNS; i++)
        srv->conns[i].fd = -1;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->cond, NULL);

    srv->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv->listen_fd < 0 || set_nonblock_cloexec(srv->listen_fd) != 0 || pipe(srv->wake) != 0)
        goto fail;
    if (set_nonblock_cloexec(srv->wake[0]) != 0 || set_nonblock_cloexec(srv->wake[1]) != 0)
        goto fail;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(srv->listen_fd, 64) != 0 ||
        getsockname(srv->listen_fd, (struct sockaddr *)&addr, &alen) != 0)
        goto fail;
    srv->port = ntohs(addr.sin_port);
    snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:%d", srv->port);
    errno = pthread_create(&srv->thread, NULL, server_main, srv);
    if (errno != 0)
        goto fail;
    srv->thread_started = 1;
    *out = srv;
    return 0;
fail:
    saved = errno;
    raw_http_stop(srv);
    errno = saved;
    return -1;
}

void raw_http_stop(struct raw_http *srv)
{
    if (srv == NULL)
        return;
    if (srv->thread_started) {
        ssize_t w;
        do
            w = write(srv->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(srv->thread, NULL);
    }
    for (size_t i = 0; i < RAW_HTTP_MAX_CONNS; i++)
        conn_close(&srv->conns[i]);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->wake[0] >= 0)
        close(srv->wake[0]);
    if (srv->wake[1] >= 0)
        close(srv->wake[1]);
    while (srv->head != NULL) {
        struct action *a = srv->head;
        srv->head = a->next;
        free_action(a);
    }
    for (size_t i = 0; i < srv->n_records; i++)
        free(srv->records[i].data);
    free(srv->records);
    pthread_cond_destroy(&srv->cond);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

int raw_http_port(const struct raw_http *srv)
{
    return srv->port;
}

const char *raw_http_url(const struct raw_http *srv)
{
    return srv->url;
}

/* The server's lock, from a const pointer: queries lock too. */
static pthread_mutex_t *lock_of(const struct raw_http *srv)
{
    return (pthread_mutex_t *)&srv->lock;
}

size_t raw_http_request_count(const struct raw_http *srv)
{
    pthread_mutex_lock(lock_of(srv));
    size_t n = srv->n_records;
    pthread_mutex_unlock(lock_of(srv));
    return n;
}

const char *raw_http_request(const struct raw_http *srv, size_t i)
{
    const char *data = NULL;
    pthread_mutex_lock(lock_of(srv));
    if (i < srv->n_records)
        data = srv->records[i].data;
    pthread_mutex_unlock(lock_of(srv));
    return data;
}

size_t raw_http_request_len(const struct raw_http *srv, size_t i)
{
    size_t len = 0;
    pthread_mutex_lock(lock_of(srv));
    if (i < srv->n_records)
        len = srv->records[i].len;
    pthread_mutex_unlock(lock_of(srv));
    return len;
}

size_t raw_http_connection_count(const struct raw_http *srv)
{
    pthread_mutex_lock(lock_of(srv));
    size_t n = srv->n_accepted;
    pthread_mutex_unlock(lock_of(srv));
    return n;
}

int raw_http_wait_requests(const struct raw_http *srv, size_t n, int timeout_ms)
{
    struct timespec until;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(lock_of(srv));
    while (srv->n_records < n && rc == 0)
        rc = pthread_cond_timedwait((pthread_cond_t *)&srv->cond, lock_of(srv), &until);
    int ok = srv->n_records >= n;
    pthread_mutex_unlock(lock_of(srv));
    return ok ? 0 : -1;
}
