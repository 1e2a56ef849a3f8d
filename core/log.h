/*
 * log: the one place lines are written. Text or JSON lines, a level threshold, and
 * redaction: every registered secret is masked in every line, whoever wrote it (core or
 * plugin). Callers log opaque ids only, never patient names, phones or addresses.
 * Thread-safe.
 */
#ifndef ODSYNC_LOG_H
#define ODSYNC_LOG_H

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

/* Configure the sink of log lines. out is borrowed until the next log_setup or log_shutdown
 * (NULL = stderr). level is an enum odsync_log_level threshold. */
void log_setup(FILE *out, int level, enum log_format format);

/* Register a secret value to mask (copied; values shorter than 4 bytes are ignored).
 * Returns ODSYNC_OK or ODSYNC_NOMEM. */
int log_add_secret(const char *value);

/* Forget all secrets and restore defaults; frees what log_add_secret copied. */
void log_shutdown(void);

/* Mask every registered secret inside s, in place ("[redacted]" may shorten, never lengthen
 * past cap: long secrets are replaced, short ones overwritten with '*'). */
void log_redact(char *s, size_t cap);

/* Write one line: component is a short tag ("store", "sink:crm"). */
void log_msg(int level, const char *component, const char *fmt, ...) UTIL_PRINTF(3, 4);
void log_vmsg(int level, const char *component, const char *fmt, va_list ap);

#define log_error(c, ...) log_msg(ODSYNC_LOG_ERROR, c, __VA_ARGS__)
#define log_warn(c, ...)  log_msg(ODSYNC_LOG_WARN, c, __VA_ARGS__)
#define log_info(c, ...)  log_msg(ODSYNC_LOG_INFO, c, __VA_ARGS__)
#define log_debug(c, ...) log_msg(ODSYNC_LOG_DEBUG, c, __VA_ARGS__)

#endif
