/*
 * jsonpath.c: paths, quoting, type names and the error line of the config loaders.
 */
#include "jsonpath.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int jsonpath_verror(char *err, size_t errlen, const char *origin, int status, const char *path,
                    const char *fmt, va_list ap)
{
    char msg[512];
    if (err == NULL || errlen == 0)
        return status;
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    if (path != NULL && path[0] != '\0')
        (void)util_fmt(err, errlen, "%s: %s: %s", origin, path, msg);
    else
        (void)util_fmt(err, errlen, "%s: %s", origin, msg);
    return status;
}

const char *jsonpath_show(char *buf, const char *s)
{
    size_t i = 0, o = 0;

    for (; s[i] != '\0' && i < JSONPATH_SHOW_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            buf[o++] = '?';
        } else {
            buf[o++] = (char)ch;
        }
    }
    if (s[i] != '\0') {
        /* do not cut a UTF-8 sequence in half */
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0)
            o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* 1 when key can follow a '.' in a path. */
static int plain_key(const char *key)
{
    size_t i;
    if (key[0] == '\0' || strlen(key) > JSONPATH_SHOW_MAX)
        return 0;
    for (i = 0; key[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (!(isalnum(ch) || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

void jsonpath_key(char *dst, size_t n, const char *parent, const char *key)
{
    char shown[JSONPATH_SHOW_BUF];
    if (!plain_key(key))
        (void)util_fmt(dst, n, "%s[\"%s\"]", parent, jsonpath_show(shown, key));
    else if (parent[0] == '\0')
        (void)util_fmt(dst, n, "%s", key);
    else
        (void)util_fmt(dst, n, "%s.%s", parent, key);
}

void jsonpath_index(char *dst, size_t n, const char *parent, size_t i)
{
    (void)util_fmt(dst, n, "%s[%zu]", parent, i);
}

const char *jsonpath_type(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsObject(v))
        return "object";
    return "invalid value";
}

int jsonpath_find_word(const char *s, const char *const *list, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return (int)i;
    return -1;
}
