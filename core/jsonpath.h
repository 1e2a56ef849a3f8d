/*
 * jsonpath: what every config loader needs to say exactly where a value is wrong — JSON
 * paths ("offices[0].campaigns.recall.sms"), a user's value quoted safely in a message, a
 * JSON value's type in words, and the one error line format:
 *   <origin>: <path>: <problem>
 * Used by config.c (the file) and campaign.c (campaigns and policy).
 */
#ifndef ODSYNC_JSONPATH_H
#define ODSYNC_JSONPATH_H

#include <stdarg.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "util.h"

#define JSONPATH_MAX      256 /* a path buffer; longer paths are truncated (messages only) */
#define JSONPATH_SHOW_MAX 64  /* bytes of a user value quoted in a message */
#define JSONPATH_SHOW_BUF (JSONPATH_SHOW_MAX * 2 + 8)

/* Write "origin: path: message" (or "origin: message" when path is NULL or empty) into
 * err (may be NULL). Returns status, so callers can `return jsonpath_error(...)`. */
int jsonpath_verror(char *err, size_t errlen, const char *origin, int status, const char *path,
                    const char *fmt, va_list ap) UTIL_PRINTF(6, 0);

/* s for quoting inside "...": control bytes become '?', '"' and '\\' are escaped, at most
 * JSONPATH_SHOW_MAX bytes are kept (then "...", never cutting a UTF-8 sequence). buf has
 * JSONPATH_SHOW_BUF bytes; returns buf. */
const char *jsonpath_show(char *buf, const char *s);

/* dst = parent.key, or parent["key"] for a key that is not a plain word ([A-Za-z0-9_-]),
 * or key alone when parent is empty. */
void jsonpath_key(char *dst, size_t n, const char *parent, const char *key);

/* dst = parent[i]. */
void jsonpath_index(char *dst, size_t n, const char *parent, size_t i);

/* A JSON value's type in words ("string", "number", ...). Static storage. */
const char *jsonpath_type(const cJSON *v);

/* The index of s in list[0..n), or -1. */
int jsonpath_find_word(const char *s, const char *const *list, size_t n);

#endif
