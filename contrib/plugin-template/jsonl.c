/*
 * jsonl: an example odsync connector that appends every record it is given to a file, one JSON
 * object per line:
 *
 *   {"key":"od:main-st:1042","office":"main-st","kind":"contact","version":7,"record":{...}}
 *
 * It is the template for third-party connectors: copy this folder, rename, and replace the
 * "deliver" part (build_line + write_all) with calls to your remote system. Everything else
 * (descriptor, config spec, create/destroy, per-item results, health) stays the same shape.
 *
 * Settings (validated by the host against jsonl_config before create is called):
 *   path   required string: absolute path of the file; created with mode 0600 (it holds
 *          patient contact data) and appended to
 *   fsync  optional bool (default false): fsync after each batch before reporting success
 *
 * Results: each appended record is OK with remote_id "line:N" (N = 1-based line number in the
 * file). A failed write or fsync is RETRY with the errno text as detail; a malformed record is
 * PERMANENT; a record kind this plugin does not know is UNSUPPORTED. When a write fails the file
 * is cut back to its last complete line, so the file stays valid JSON Lines and a retried record
 * is never half-present.
 *
 * One writer per file: two sink instances (or processes) must not share a path, or the line
 * numbers stop meaning anything. If the file is renamed or deleted (log rotation), the next
 * batch opens a new file at path and numbering starts again at 1. Delivery is at least once:
 * if even cutting the file back fails, a retried record can appear twice; "key" and "version"
 * identify the duplicate.
 *
 * Uses only libc and <odsync/sink.h>. POSIX.1-2008 functions are requested explicitly because
 * plugin.mk compiles with -std=c11, which hides them otherwise.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <odsync/sink.h>

#define JSONL_MAX_BATCH 500
#define JSONL_BUF_INIT  65536 /* initial line buffer; also the chunk size for counting lines */

/* One sink instance. Owned by the host between create() and destroy(). */
struct jsonl {
    const struct odsync_host *host; /* borrowed, valid until destroy */
    odsync_host_ctx *ctx;           /* borrowed, valid until destroy */
    const char *path;               /* from config_get: borrowed, valid until destroy */
    int do_fsync;                   /* 1: fsync after each batch */
    int fd;                         /* the file, O_APPEND; -1 when not open */
    dev_t dev;                      /* identity of the open file, to notice rotation */
    ino_t ino;
    off_t size;      /* bytes in the file that end with a complete line */
    uint64_t lines;  /* complete lines in the file */
    int must_reopen; /* 1: a rollback failed; reopen (and recount) before the next write */
    int last_errno;  /* errno of the last failed write, 0 after a good batch */
    char *buf;       /* line buffer, reused across records; owned */
    size_t buf_cap;  /* bytes allocated in buf */
};

/*
 * Put the text for errno value err into out (out_len > 0). Thread-safe, unlike strerror():
 * instances of one plugin may run on different threads at once.
 */
static void errno_text(int err, char *out, size_t out_len)
{
    if (strerror_r(err, out, out_len) != 0)
        snprintf(out, out_len, "errno %d", err);
}

/*
 * Make j->buf hold at least need bytes. Returns 0, or -1 when out of memory (buf unchanged).
 */
static int buf_reserve(struct jsonl *j, size_t need)
{
    size_t cap = j->buf_cap ? j->buf_cap : JSONL_BUF_INIT;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    if (cap == j->buf_cap)
        return 0;
    char *p = realloc(j->buf, cap);
    if (p == NULL)
        return -1;
    j->buf = p;
    j->buf_cap = cap;
    return 0;
}

/*
 * Write s as a JSON string (with quotes) at out, which has room for 6 * strlen(s) + 2 bytes.
 * Returns the number of bytes written. Bytes >= 0x80 (UTF-8) are copied as they are.
 */
static size_t json_string(char *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c == '\r') {
            out[n++] = '\\';
            out[n++] = 'r';
        } else if (c == '\t') {
            out[n++] = '\\';
            out[n++] = 't';
        } else if (c < 0x20) {
            memcpy(out + n, "\\u00", 4);
            n += 4;
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    return n;
}

/* The name this plugin writes for a record kind, or NULL for a kind it does not know. */
static const char *kind_name(int32_t kind)
{
    switch (kind) {
    case ODSYNC_KIND_CONTACT:
        return "contact";
    case ODSYNC_KIND_TASK:
        return "task";
    case ODSYNC_KIND_MESSAGE:
        return "message";
    default:
        return NULL;
    }
}

/*
 * Check that json[0..len) looks like one JSON object: no NUL inside, first and last
 * non-blank bytes '{' and '}'. The host produces valid JSON; this only guards the file format.
 */
static int looks_like_object(const char *json, size_t len)
{
    size_t a = 0, b = len;
    if (json == NULL || memchr(json, '\0', len) != NULL)
        return 0;
    while (a < b && (json[a] == ' ' || json[a] == '\t' || json[a] == '\n' || json[a] == '\r'))
        a++;
    while (b > a && (json[b - 1] == ' ' || json[b - 1] == '\t' || json[b - 1] == '\n' ||
                     json[b - 1] == '\r'))
        b--;
    return b - a >= 2 && json[a] == '{' && json[b - 1] == '}';
}

/*
 * Build the line for record r (with its trailing '\n') in j->buf. On success *len_out is its
 * length and the result is ODSYNC_OK. Otherwise returns the item's result class and points
 * *why at a fixed explanation (never record content).
 */
static int build_line(struct jsonl *j, const struct odsync_record *r, size_t *len_out,
                      const char **why)
{
    static const char tail[] = "}\n";
    const char *kind = kind_name(r->kind);
    char version[32];

    if (kind == NULL) {
        *why = "record kind not supported by jsonl";
        return ODSYNC_UNSUPPORTED;
    }
    if (r->key == NULL || r->office == NULL) {
        *why = "record without key or office";
        return ODSYNC_PERMANENT;
    }
    if (!looks_like_object(r->json, r->json_len)) {
        *why = "record json is not a JSON object";
        return ODSYNC_PERMANENT;
    }
    snprintf(version, sizeof(version), "%" PRId64, r->version);

    size_t key_len = strlen(r->key), office_len = strlen(r->office);
    if (key_len > SIZE_MAX / 32 || office_len > SIZE_MAX / 32 || r->json_len > SIZE_MAX / 4) {
        *why = "record too large";
        return ODSYNC_PERMANENT;
    }
    /* Fixed text + escaped key and office (at most 6 bytes per input byte) + json. */
    size_t need = 64 + strlen(kind) + strlen(version) + 6 * key_len + 6 * office_len + r->json_len;
    if (buf_reserve(j, need) != 0) {
        *why = "out of memory";
        return ODSYNC_RETRY;
    }

    char *out = j->buf;
    size_t n = 0;
    memcpy(out + n, "{\"key\":", 7);
    n += 7;
    n += json_string(out + n, r->key);
    memcpy(out + n, ",\"office\":", 10);
    n += 10;
    n += json_string(out + n, r->office);
    n += (size_t)snprintf(out + n, need - n, ",\"kind\":\"%s\",\"version\":%s,\"record\":", kind,
                          version);
    /* A raw CR or LF in valid JSON can only be whitespace between tokens (inside strings they
     * must be escaped), so replacing them with spaces keeps the JSON and makes it one line. */
    for (size_t i = 0; i < r->json_len; i++) {
        char c = r->json[i];
        out[n++] = (c == '\n' || c == '\r') ? ' ' : c;
    }
    memcpy(out + n, tail, sizeof(tail) - 1);
    n += sizeof(tail) - 1;
    *len_out = n;
    return ODSYNC_OK;
}

/*
 * Write buf[0..len) to fd, retrying short writes and EINTR. Returns 0 or an errno value.
 */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Close the file, if open. */
static void jsonl_close(struct jsonl *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
}

/*
 * Open (creating, mode 0600) j->path for appending and count its complete lines. A trailing
 * partial line (left by a crash in the middle of a write, so never reported as delivered) is
 * cut off, so the next line starts at a line boundary. Returns 0, or an errno value with the
 * file closed; *what names the step that failed.
 */
static int jsonl_open(struct jsonl *j, const char **what)
{
    struct stat st;
    off_t pos = 0, end_of_last_line = 0;
    uint64_t lines = 0;
    int err = 0;

    jsonl_close(j);
    *what = "open";
    j->fd = open(j->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0)
        return errno;
    *what = "stat";
    if (fstat(j->fd, &st) != 0) {
        err = errno;
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        *what = "open (not a regular file)";
        err = EINVAL;
        goto cleanup;
    }
    if (buf_reserve(j, JSONL_BUF_INIT) != 0) {
        *what = "allocate";
        err = ENOMEM;
        goto cleanup;
    }
    *what = "read";
    for (;;) {
        ssize_t got = pread(j->fd, j->buf, j->buf_cap, pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            err = errno;
            goto cleanup;
        }
        if (got == 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            if (j->buf[i] == '\n') {
                lines++;
                end_of_last_line = pos + i + 1;
            }
        }
        pos += got;
    }
    if (pos > end_of_last_line) {
        *what = "truncate partial last line";
        if (ftruncate(j->fd, end_of_last_line) != 0) {
            err = errno;
            goto cleanup;
        }
        j->host->log(j->ctx, ODSYNC_LOG_WARN, "removed a partial last line (%jd bytes) from %s",
                     (intmax_t)(pos - end_of_last_line), j->path);
    }
    j->dev = st.st_dev;
    j->ino = st.st_ino;
    j->size = end_of_last_line;
    j->lines = lines;

cleanup:
    if (err != 0)
        jsonl_close(j);
    return err;
}

/*
 * Make sure j->fd is the file currently at j->path: open it when closed or after a failed
 * rollback, reopen it when the path now names another file or none (rotated or deleted).
 * Returns 0 or an errno value (*what names the failed step).
 */
static int jsonl_ensure_open(struct jsonl *j, const char **what)
{
    struct stat st;
    if (j->fd >= 0 && !j->must_reopen && stat(j->path, &st) == 0 && st.st_dev == j->dev &&
        st.st_ino == j->ino)
        return 0;
    if (j->fd >= 0 && !j->must_reopen)
        j->host->log(j->ctx, ODSYNC_LOG_INFO, "%s was moved or removed; opening a new file",
                     j->path);
    j->must_reopen = 0;
    return jsonl_open(j, what);
}

/*
 * Cut the file back to `size` bytes holding `lines` lines after a failed write or fsync. If
 * that fails too, the next batch reopens the file, which recounts lines and trims a partial
 * last line.
 */
static void jsonl_rollback(struct jsonl *j, off_t size, uint64_t lines)
{
    if (ftruncate(j->fd, size) != 0) {
        j->must_reopen = 1;
        return;
    }
    j->size = size;
    j->lines = lines;
}

/* Settings. The host checks types and required keys before create() and applies defaults. */
static const struct odsync_config_spec jsonl_config[] = {
    {.name = "path",
     .type = ODSYNC_CFG_STRING,
     .flags = ODSYNC_CFG_REQUIRED,
     .default_value = NULL,
     .description = "absolute path of the JSON Lines file to append to (created mode 0600)"},
    {.name = "fsync",
     .type = ODSYNC_CFG_BOOL,
     .flags = 0,
     .default_value = "false",
     .description = "fsync the file after each batch, before reporting the batch delivered"},
    {.name = NULL},
};

/* destroy: close and free; accepts NULL. fsyncs first when fsync is on. */
static void jsonl_destroy(void *instance)
{
    struct jsonl *j = instance;
    if (j == NULL)
        return;
    if (j->fd >= 0 && j->do_fsync)
        (void)fsync(j->fd);
    jsonl_close(j);
    free(j->buf);
    free(j);
}

/*
 * create: read settings, open the file. On failure explains with set_error (which the host
 * prints with the instance name), frees everything and returns the status.
 */
static int jsonl_create(const struct odsync_host *host, odsync_host_ctx *ctx, void **instance)
{
    struct jsonl *j = NULL;
    const char *path = host->config_get(ctx, "path");
    const char *fsync_text = host->config_get(ctx, "fsync");
    const char *what = NULL;
    int rc = ODSYNC_OK, err;

    *instance = NULL;
    if (path == NULL || path[0] != '/') {
        host->set_error(ctx, "path: must be an absolute file path");
        rc = ODSYNC_CONFIG;
        goto cleanup;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        host->set_error(ctx, "out of memory");
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    j->host = host;
    j->ctx = ctx;
    j->path = path;
    j->fd = -1;
    j->do_fsync = fsync_text != NULL && strcmp(fsync_text, "true") == 0;

    err = jsonl_open(j, &what);
    if (err != 0) {
        char text[128];
        errno_text(err, text, sizeof(text));
        host->set_error(ctx, "path: %s %s: %s", what, path, text);
        rc = err == ENOMEM ? ODSYNC_NOMEM : ODSYNC_CONFIG;
        goto cleanup;
    }
    host->log(ctx, ODSYNC_LOG_INFO, "appending to %s (%" PRIu64 " lines so far, fsync %s)", path,
              j->lines, j->do_fsync ? "on" : "off");
    *instance = j;
    j = NULL;

cleanup:
    jsonl_destroy(j);
    return rc;
}

/*
 * send_batch: append records[0..count) and report every item with result_set. Items are
 * reported OK only after all writes (and the fsync, when enabled) succeeded.
 */
static int jsonl_send_batch(void *instance, odsync_batch *batch,
                            const struct odsync_record *const *records, size_t count)
{
    struct jsonl *j = instance;
    uint64_t line_of[JSONL_MAX_BATCH]; /* line number per item; 0 = not appended */
    const char *what = NULL;
    char detail[160], text[128];
    size_t appended = 0, retried = 0;
    int err;

    if (count > JSONL_MAX_BATCH)
        return ODSYNC_INTERNAL; /* the host never does this: count <= max_batch */

    err = jsonl_ensure_open(j, &what);
    if (err != 0) {
        j->last_errno = err;
        errno_text(err, text, sizeof(text));
        snprintf(detail, sizeof(detail), "%s: %s", what, text);
        for (size_t i = 0; i < count; i++)
            j->host->result_set(batch, i, ODSYNC_RETRY, -1, NULL, detail);
        return ODSYNC_OK; /* every item was reported */
    }

    off_t batch_size = j->size;
    uint64_t batch_lines = j->lines;
    for (size_t i = 0; i < count; i++) {
        const char *why = NULL;
        size_t len = 0;
        int rc = build_line(j, records[i], &len, &why);
        line_of[i] = 0;
        if (rc != ODSYNC_OK) {
            j->host->result_set(batch, i, rc, -1, NULL, why);
            continue;
        }
        if (err == 0) {
            err = write_all(j->fd, j->buf, len);
            if (err == 0) {
                j->size += (off_t)len;
                line_of[i] = ++j->lines;
                appended++;
                continue;
            }
            jsonl_rollback(j, j->size, j->lines); /* drop a partially written line */
            errno_text(err, text, sizeof(text));
            snprintf(detail, sizeof(detail), "write: %s", text);
        }
        /* This item's write failed, or an earlier one did: a full disk does not empty itself
         * between two records. The detail is the errno text, never record content. */
        j->host->result_set(batch, i, ODSYNC_RETRY, -1, NULL, detail);
        retried++;
    }
    if (err != 0) {
        j->host->log(j->ctx, ODSYNC_LOG_WARN, "write %s failed: %s; %zu item(s) will be retried",
                     j->path, text, retried);
        j->host->counter_add(j->ctx, "write_errors", 1);
    }
    j->last_errno = err;

    if (appended > 0 && j->do_fsync && fsync(j->fd) != 0) {
        /* Whether the lines reached the disk is unknown: take them back and let the host
         * retry them, rather than report OK for lines a crash could lose. */
        err = errno;
        j->last_errno = err;
        errno_text(err, text, sizeof(text));
        snprintf(detail, sizeof(detail), "fsync: %s", text);
        jsonl_rollback(j, batch_size, batch_lines);
        for (size_t i = 0; i < count; i++) {
            if (line_of[i] != 0)
                j->host->result_set(batch, i, ODSYNC_RETRY, -1, NULL, detail);
            line_of[i] = 0;
        }
        j->host->log(j->ctx, ODSYNC_LOG_WARN, "fsync %s failed: %s; %zu item(s) will be retried",
                     j->path, text, appended);
        j->host->counter_add(j->ctx, "write_errors", 1);
        appended = 0;
    }

    for (size_t i = 0; i < count; i++) {
        if (line_of[i] != 0) {
            char remote_id[32];
            snprintf(remote_id, sizeof(remote_id), "line:%" PRIu64, line_of[i]);
            j->host->result_set(batch, i, ODSYNC_OK, -1, remote_id, NULL);
        }
    }
    if (appended > 0)
        j->host->counter_add(j->ctx, "lines_written", (int64_t)appended);
    return ODSYNC_OK; /* every item was reported */
}

/* flush: make what was appended durable (useful when fsync is off, e.g. at shutdown). */
static int jsonl_flush(void *instance)
{
    struct jsonl *j = instance;
    if (j->fd >= 0 && fsync(j->fd) != 0) {
        char text[128];
        errno_text(errno, text, sizeof(text));
        j->host->log(j->ctx, ODSYNC_LOG_WARN, "fsync %s failed: %s", j->path, text);
        return ODSYNC_RETRY;
    }
    return ODSYNC_OK;
}

/*
 * health: healthy when the file (or, when it does not exist yet, its directory) is writable
 * by this process and the last batch had no write error.
 */
static int jsonl_health(void *instance, char *detail, size_t detail_len)
{
    struct jsonl *j = instance;
    char text[128];
    const char *target = j->path;
    char dir[4096];

    if (access(j->path, F_OK) != 0) {
        /* Not there (rotated away): writable if we can create it in its directory. */
        const char *slash = strrchr(j->path, '/');
        size_t n = (size_t)(slash - j->path);
        if (n == 0)
            n = 1; /* "/file" lives in "/" */
        if (n >= sizeof(dir)) {
            snprintf(detail, detail_len, "path too long to check");
            return ODSYNC_RETRY;
        }
        memcpy(dir, j->path, n);
        dir[n] = '\0';
        target = dir;
    }
    if (access(target, W_OK) != 0) {
        errno_text(errno, text, sizeof(text));
        snprintf(detail, detail_len, "%s is not writable: %s", target, text);
        return ODSYNC_RETRY;
    }
    if (j->last_errno != 0) {
        errno_text(j->last_errno, text, sizeof(text));
        snprintf(detail, detail_len, "last write to %s failed: %s", j->path, text);
        return ODSYNC_RETRY;
    }
    snprintf(detail, detail_len, "%s writable, %" PRIu64 " lines", j->path, j->lines);
    return ODSYNC_OK;
}

ODSYNC_SINK_DEFINE(.name = "jsonl", .version = "1.0.0",
                   .description = "append records to a JSON Lines file (example connector)",
                   .capabilities = ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS | ODSYNC_CAP_SMS |
                                   ODSYNC_CAP_EMAIL,
                   .max_batch = JSONL_MAX_BATCH, .config = jsonl_config, .create = jsonl_create,
                   .send_batch = jsonl_send_batch, .flush = jsonl_flush, .health = jsonl_health,
                   .destroy = jsonl_destroy)
