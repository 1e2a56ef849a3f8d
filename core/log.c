/*
 * log.c: text or JSON log lines with secret redaction. One mutex guards the settings and
 * the secret list; each line is formatted, redacted, then written with one fputs.
 */
#include "log.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX   4096 /* longest message kept, after redaction */
#define LOG_MIN_SECRET 4
#define LOG_MASK       "[redacted]"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out;
static int log_level = ODSYNC_LOG_INFO;
static enum log_format log_fmt = LOG_TEXT;
static char **log_secrets;
static size_t log_n_secrets;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(FILE *out, int level, enum log_format format)
{
    pthread_mutex_lock(&log_lock);
    log_out = out;
    log_level = level;
    log_fmt = format;
    pthread_mutex_unlock(&log_lock);
}

int log_add_secret(const char *value)
{
    int rc = ODSYNC_NOMEM;
    char *copy = NULL;
    char **grown;
    size_t i;

    if (value == NULL || strlen(value) < LOG_MIN_SECRET)
        return ODSYNC_OK;
    pthread_mutex_lock(&log_lock);
    for (i = 0; i < log_n_secrets; i++) {
        if (strcmp(log_secrets[i], value) == 0) {
            rc = ODSYNC_OK;
            goto cleanup;
        }
    }
    copy = util_strdup(value);
    grown = util_realloc(log_secrets, (log_n_secrets + 1) * sizeof(*grown));
    if (copy == NULL || grown == NULL) {
        if (grown != NULL)
            log_secrets = grown;
        goto cleanup;
    }
    log_secrets = grown;
    log_secrets[log_n_secrets++] = copy;
    copy = NULL;
    rc = ODSYNC_OK;
cleanup:
    pthread_mutex_unlock(&log_lock);
    util_free(copy);
    return rc;
}

void log_shutdown(void)
{
    size_t i;
    pthread_mutex_lock(&log_lock);
    for (i = 0; i < log_n_secrets; i++)
        util_free(log_secrets[i]);
    util_free(log_secrets);
    log_secrets = NULL;
    log_n_secrets = 0;
    log_out = NULL;
    log_level = ODSYNC_LOG_INFO;
    log_fmt = LOG_TEXT;
    pthread_mutex_unlock(&log_lock);
}

/* Mask one secret everywhere in s (lock held). The mask never makes s longer. */
static void redact_one(char *s, const char *secret)
{
    size_t slen = strlen(secret), mlen = strlen(LOG_MASK);
    char *hit;
    while ((hit = strstr(s, secret)) != NULL) {
        if (slen >= mlen) {
            memcpy(hit, LOG_MASK, mlen);
            memmove(hit + mlen, hit + slen, strlen(hit + slen) + 1);
            s = hit + mlen;
        } else {
            memset(hit, '*', slen);
            s = hit + slen;
        }
    }
}

/* Redact with the lock held. */
static void redact_locked(char *s)
{
    size_t i;
    for (i = 0; i < log_n_secrets; i++)
        redact_one(s, log_secrets[i]);
}

void log_redact(char *s, size_t cap)
{
    (void)cap;
    if (s == NULL)
        return;
    pthread_mutex_lock(&log_lock);
    redact_locked(s);
    pthread_mutex_unlock(&log_lock);
}

/* Append s to b as JSON string content (without quotes). */
static void json_escape(struct sbuf *b, const char *s)
{
    const char *run = s;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        sbuf_append(b, run, (size_t)(s - run));
        if (c == '"' || c == '\\')
            sbuf_printf(b, "\\%c", c);
        else
            sbuf_printf(b, "\\u%04x", c);
        run = s + 1;
    }
    sbuf_append(b, run, (size_t)(s - run));
}

/* The whole formatted message (caller frees), or NULL on NOMEM. Formatting in full before
 * redaction means a secret is masked even where the line limit would have cut it. */
static char *format_message(const char *fmt, va_list ap)
{
    struct sbuf b = {0};
    sbuf_vprintf(&b, fmt, ap);
    return sbuf_take(&b);
}

void log_vmsg(int level, const char *component, const char *fmt, va_list ap)
{
    char ts[32];
    struct timespec now;
    struct tm tm;
    struct sbuf line = {0};
    char *msg;
    FILE *out;

    if (level < ODSYNC_LOG_ERROR)
        level = ODSYNC_LOG_ERROR;
    if (level > ODSYNC_LOG_DEBUG)
        level = ODSYNC_LOG_DEBUG;
    msg = format_message(fmt, ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    if (level > log_level)
        goto cleanup;
    if (msg != NULL) {
        redact_locked(msg);
        if (strlen(msg) > LOG_LINE_MAX)
            memcpy(msg + LOG_LINE_MAX - 3, "...", 4); /* bound after redaction */
    }
    out = log_out ? log_out : stderr;
    if (log_fmt == LOG_JSON) {
        sbuf_printf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"", ts,
                    now.tv_nsec / 1000000, level_names[level]);
        json_escape(&line, component ? component : "");
        sbuf_puts(&line, "\",\"msg\":\"");
        json_escape(&line, msg ? msg : "(log message lost: out of memory)");
        sbuf_puts(&line, "\"}\n");
    } else {
        sbuf_printf(&line, "%s.%03ldZ %-5s %s: %s\n", ts, now.tv_nsec / 1000000, level_names[level],
                    component ? component : "-", msg ? msg : "(log message lost: out of memory)");
    }
    if (line.data != NULL && !line.failed)
        fputs(line.data, out);
    fflush(out);
cleanup:
    pthread_mutex_unlock(&log_lock);
    sbuf_free(&line);
    util_free(msg);
}

void log_msg(int level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}
