/*
 * jsonw.c: flat JSON objects written into an sbuf, as cJSON_PrintUnformatted would print them.
 */
#include "jsonw.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s as a JSON string, escaped as cJSON escapes: the two-character escapes for '"', '\\' and
 * \b \f \n \r \t, \u00xx (lower-case hex) for other control bytes, every other byte as is. */
static void put_string(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    char esc[7];
    size_t n;

    sbuf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 32 && c != '"' && c != '\\')
            continue;
        sbuf_append(b, run, (size_t)(s - run));
        run = s + 1;
        esc[0] = '\\';
        n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        sbuf_append(b, esc, n);
    }
    sbuf_append(b, run, (size_t)(s - run));
    sbuf_append(b, "\"", 1);
}

/* The number v as cJSON prints a double holding it: plain digits within int's range, else
 * "%1.15g", or "%1.17g" when 15 digits do not read back as the same double. */
static void put_number(struct sbuf *b, int64_t v)
{
    char buf[32], *p = buf + sizeof(buf);
    double d = (double)v;
    uint64_t u;

    if (v < INT_MIN || v > INT_MAX) {
        int len = snprintf(buf, sizeof(buf), "%1.15g", d);
        if (len > 0 && strtod(buf, NULL) != d)
            len = snprintf(buf, sizeof(buf), "%1.17g", d);
        if (len > 0)
            sbuf_append(b, buf, (size_t)len);
        return;
    }
    u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        *--p = '-';
    sbuf_append(b, p, (size_t)(buf + sizeof(buf) - p));
}

/* The separator and "name": of the next member. */
static void put_name(struct jsonw *w, const char *name)
{
    if (w->members++ > 0)
        sbuf_append(&w->b, ",", 1);
    put_string(&w->b, name);
    sbuf_append(&w->b, ":", 1);
}

void jsonw_begin(struct jsonw *w)
{
    memset(w, 0, sizeof(*w));
    sbuf_append(&w->b, "{", 1);
}

void jsonw_int(struct jsonw *w, const char *name, int64_t v)
{
    put_name(w, name);
    put_number(&w->b, v);
}

void jsonw_str(struct jsonw *w, const char *name, const char *v)
{
    put_name(w, name);
    if (v == NULL)
        sbuf_append(&w->b, "null", 4);
    else
        put_string(&w->b, v);
}

void jsonw_bool(struct jsonw *w, const char *name, int v)
{
    put_name(w, name);
    sbuf_puts(&w->b, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w, const char *name)
{
    put_name(w, name);
    sbuf_append(&w->b, "null", 4);
}

void jsonw_raw(struct jsonw *w, const char *name, const char *json, size_t len)
{
    put_name(w, name);
    sbuf_append(&w->b, json, len);
}

char *jsonw_end(struct jsonw *w)
{
    sbuf_append(&w->b, "}", 1);
    w->members = 0;
    return sbuf_take(&w->b);
}
