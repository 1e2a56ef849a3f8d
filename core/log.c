/*
 * log.c: text or JSON log lines with secret redaction. One mutex guards the settings and
 * the secret list; each line is formatted, redacted, then written with one fputs.
 */
#include "log.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX   4096
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

/* Append s to out as JSON string content (without quotes), bounded by cap. */
static void json_escape(char *out, size_t cap, const char *s)
{
    size_t o = strlen(out);
    for (; *s != '\0' && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void log_vmsg(int level, const char *component, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX * 2], ts[32];
    struct timespec now;
    struct tm tm;
    FILE *out;

    if (level < ODSYNC_LOG_ERROR)
        level = ODSYNC_LOG_ERROR;
    if (level > ODSYNC_LOG_DEBUG)
        level = ODSYNC_LOG_DEBUG;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    if (level > log_level)
        goto cleanup;
    redact_locked(msg);
    out = log_out ? log_out : stderr;
    if (log_fmt == LOG_JSON) {
        snprintf(line, sizeof(line), "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"", ts,
                 now.tv_nsec / 1000000, level_names[level]);
        json_escape(line, sizeof(line), component ? component : "");
        snprintf(line + strlen(line), sizeof(line) - strlen(line), "\",\"msg\":\"");
        json_escape(line, sizeof(line), msg);
        snprintf(line + strlen(line), sizeof(line) - strlen(line), "\"}\n");
    } else {
        snprintf(line, sizeof(line), "%s.%03ldZ %-5s %s: %s\n", ts, now.tv_nsec / 1000000,
                 level_names[level], component ? component : "-", msg);
    }
    fputs(line, out);
    fflush(out);
cleanup:
    pthread_mutex_unlock(&log_lock);
}

void log_msg(int level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}
