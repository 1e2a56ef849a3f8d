/*
 * template.c: whitelisted patient message templates, compiled once at config load and
 * rendered per message with the SMS one-segment and opt-out rules.
 */
#include "template.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define VAR_COUNT         8
#define VAR_PRACTICE_NAME 1
#define VAR_OPT_OUT       7
#define PART_LITERAL      (-1)
#define NAME_SHOWN_MAX    64 /* an unknown name is quoted at most this long in errors */

static const char *const var_names[VAR_COUNT] = {
    "first_name",       "practice_name", "practice_phone", "appointment_date",
    "appointment_time", "booking_link",  "review_link",    "opt_out"};

#define ALLOWED_LIST                                                                               \
    "first_name, practice_name, practice_phone, appointment_date, appointment_time, "              \
    "booking_link, review_link, opt_out"

struct template_part {
    int var; /* index into var_names, or PART_LITERAL */
    size_t off;
    size_t len;
};

struct template
{
    int channel;
    char *path;
    char *text;
    struct template_part *parts;
    size_t nparts;
    size_t cap;
    unsigned uses; /* bit i set when var_names[i] is used */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) UTIL_PRINTF(3, 4);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int var_index(const char *name, size_t len)
{
    int i;
    for (i = 0; i < VAR_COUNT; i++) {
        if (strlen(var_names[i]) == len && memcmp(var_names[i], name, len) == 0)
            return i;
    }
    return -1;
}

static const char *var_value(const struct template_vars *v, int i)
{
    switch (i) {
    case 0:
        return v->first_name;
    case 1:
        return v->practice_name;
    case 2:
        return v->practice_phone;
    case 3:
        return v->appointment_date;
    case 4:
        return v->appointment_time;
    case 5:
        return v->booking_link;
    case 6:
        return v->review_link;
    default:
        return v->opt_out;
    }
}

static int is_blank(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    }
    return 1;
}

static int is_ident(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int add_part(struct template *t, int var, size_t off, size_t len)
{
    struct template_part *p;
    if (t->nparts == t->cap) {
        size_t cap = t->cap == 0 ? 8 : t->cap * 2;
        p = util_realloc(t->parts, cap * sizeof(*p));
        if (p == NULL)
            return ODSYNC_NOMEM;
        t->parts = p;
        t->cap = cap;
    }
    t->parts[t->nparts].var = var;
    t->parts[t->nparts].off = off;
    t->parts[t->nparts].len = len;
    t->nparts++;
    if (var != PART_LITERAL)
        t->uses |= 1u << var;
    return ODSYNC_OK;
}

/* Split t->text into literal and placeholder parts. */
static int parse(struct template *t, char *err, size_t errlen)
{
    const char *s = t->text;
    size_t n = strlen(s), i = 0, lit = 0;
    int rc = ODSYNC_OK;

    while (i + 1 < n) {
        size_t open = i, j = i + 2, name, name_len;
        int var;
        if (s[i] != '{' || s[i + 1] != '{') {
            i++;
            continue;
        }
        if (strstr(s + j, "}}") == NULL) {
            set_err(err, errlen, "%s: unterminated {{ at offset %zu", t->path, open);
            rc = ODSYNC_INVALID;
            goto out;
        }
        while (is_space(s[j]))
            j++;
        name = j;
        if (is_ident(s[j], 1)) {
            j++;
            while (is_ident(s[j], 0))
                j++;
        }
        name_len = j - name;
        while (is_space(s[j]))
            j++;
        if (name_len == 0 || s[j] != '}' || s[j + 1] != '}') {
            set_err(err, errlen, "%s: malformed placeholder at offset %zu (expected {{ name }})",
                    t->path, open);
            rc = ODSYNC_INVALID;
            goto out;
        }
        var = var_index(s + name, name_len);
        if (var < 0) {
            set_err(err, errlen, "%s: unknown variable {{%.*s}} (allowed: " ALLOWED_LIST ")",
                    t->path, (int)(name_len > NAME_SHOWN_MAX ? NAME_SHOWN_MAX : name_len),
                    s + name);
            rc = ODSYNC_INVALID;
            goto out;
        }
        if (open > lit && (rc = add_part(t, PART_LITERAL, lit, open - lit)) != ODSYNC_OK)
            goto out;
        if ((rc = add_part(t, var, 0, 0)) != ODSYNC_OK)
            goto out;
        i = j + 2;
        lit = i;
    }
    if (n > lit)
        rc = add_part(t, PART_LITERAL, lit, n - lit);
out:
    if (rc == ODSYNC_NOMEM)
        set_err(err, errlen, "%s: out of memory", t->path);
    return rc;
}

/* The fixed text of an SMS with the default opt-out line must already fit one segment. */
static int check_sms_fixed(const struct template *t, char *err, size_t errlen)
{
    struct sbuf b = {0};
    char *s = NULL;
    int rc = ODSYNC_OK, units = 0, limit = 0;
    size_t i;

    for (i = 0; i < t->nparts; i++) {
        const struct template_part *p = &t->parts[i];
        if (p->var == PART_LITERAL)
            sbuf_append(&b, t->text + p->off, p->len);
        else if (p->var == VAR_OPT_OUT)
            sbuf_puts(&b, TEMPLATE_OPT_OUT_DEFAULT);
    }
    if (!(t->uses & (1u << VAR_OPT_OUT)))
        sbuf_puts(&b, " " TEMPLATE_OPT_OUT_DEFAULT);
    s = sbuf_take(&b);
    if (s == NULL) {
        set_err(err, errlen, "%s: out of memory", t->path);
        rc = ODSYNC_NOMEM;
        goto out;
    }
    if (template_sms_length(s, &units, &limit) != ODSYNC_OK || units > limit) {
        set_err(err, errlen,
                "%s: sms fixed text with the opt-out line is %d characters, at most %d", t->path,
                units, limit);
        rc = ODSYNC_INVALID;
        goto out;
    }
out:
    util_free(s);
    return rc;
}

int template_compile(const char *text, int channel, const char *json_path, struct template **out,
                     char *err, size_t errlen)
{
    struct template *t = NULL;
    const char *path = json_path != NULL ? json_path : "template";
    int rc = ODSYNC_OK;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out != NULL)
        *out = NULL;
    if (text == NULL || out == NULL ||
        (channel != TEMPLATE_SMS && channel != TEMPLATE_EMAIL &&
         channel != TEMPLATE_EMAIL_SUBJECT)) {
        set_err(err, errlen, "%s: bad template arguments", path);
        rc = ODSYNC_INVALID;
        goto out;
    }
    if (is_blank(text)) {
        set_err(err, errlen, "%s: empty template", path);
        rc = ODSYNC_INVALID;
        goto out;
    }
    if (!util_utf8_valid(text, strlen(text))) {
        set_err(err, errlen, "%s: template is not valid UTF-8", path);
        rc = ODSYNC_INVALID;
        goto out;
    }
    t = util_calloc(1, sizeof(*t));
    if (t != NULL) {
        t->channel = channel;
        t->path = util_strdup(path);
        t->text = util_strdup(text);
    }
    if (t == NULL || t->path == NULL || t->text == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        rc = ODSYNC_NOMEM;
        goto out;
    }
    if ((rc = parse(t, err, errlen)) != ODSYNC_OK)
        goto out;
    if (channel == TEMPLATE_SMS) {
        if (!(t->uses & (1u << VAR_PRACTICE_NAME))) {
            set_err(err, errlen, "%s: an sms must contain {{practice_name}}", path);
            rc = ODSYNC_INVALID;
            goto out;
        }
        if ((rc = check_sms_fixed(t, err, errlen)) != ODSYNC_OK)
            goto out;
    }
    *out = t;
    t = NULL;
out:
    template_free(t);
    return rc;
}

void template_free(struct template *t)
{
    if (t == NULL)
        return;
    util_free(t->parts);
    util_free(t->text);
    util_free(t->path);
    util_free(t);
}

int template_uses(const struct template *t, const char *var)
{
    int i;
    if (t == NULL || var == NULL)
        return 0;
    i = var_index(var, strlen(var));
    return i >= 0 && (t->uses & (1u << i)) != 0;
}

/* Append value, HTML-escaped when escape is set. */
static void append_value(struct sbuf *b, const char *v, int escape)
{
    size_t start = 0, i;
    if (!escape) {
        sbuf_puts(b, v);
        return;
    }
    for (i = 0; v[i] != '\0'; i++) {
        const char *rep = NULL;
        switch (v[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        if (rep != NULL) {
            sbuf_append(b, v + start, i - start);
            sbuf_puts(b, rep);
            start = i + 1;
        }
    }
    sbuf_append(b, v + start, i - start);
}

/* The value of var for t, checked; NULL (with err set) when it cannot be used. */
static const char *checked_value(const struct template *t, const struct template_vars *vars,
                                 int var, char *err, size_t errlen)
{
    const char *v = var_value(vars, var);
    if (v == NULL && var == VAR_OPT_OUT && t->channel == TEMPLATE_SMS)
        v = TEMPLATE_OPT_OUT_DEFAULT;
    if (v == NULL || is_blank(v)) {
        set_err(err, errlen, "%s: missing variable {{%s}}", t->path, var_names[var]);
        return NULL;
    }
    if (!util_utf8_valid(v, strlen(v))) {
        set_err(err, errlen, "%s: variable {{%s}} is not valid UTF-8", t->path, var_names[var]);
        return NULL;
    }
    if (t->channel == TEMPLATE_EMAIL_SUBJECT && strpbrk(v, "\r\n") != NULL) {
        set_err(err, errlen, "%s: variable {{%s}} holds a line break", t->path, var_names[var]);
        return NULL;
    }
    return v;
}

int template_render(const struct template *t, const struct template_vars *vars, char **out,
                    char *err, size_t errlen)
{
    struct sbuf b = {0};
    char *s = NULL;
    const char *v;
    int rc = ODSYNC_OK, units = 0, limit = 0;
    size_t i;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out != NULL)
        *out = NULL;
    if (t == NULL || vars == NULL || out == NULL) {
        set_err(err, errlen, "template_render: bad arguments");
        rc = ODSYNC_INVALID;
        goto out;
    }
    for (i = 0; i < t->nparts; i++) {
        const struct template_part *p = &t->parts[i];
        if (p->var == PART_LITERAL) {
            sbuf_append(&b, t->text + p->off, p->len);
            continue;
        }
        if ((v = checked_value(t, vars, p->var, err, errlen)) == NULL) {
            rc = ODSYNC_INVALID;
            goto out;
        }
        append_value(&b, v, t->channel == TEMPLATE_EMAIL);
    }
    if (t->channel == TEMPLATE_SMS && !(t->uses & (1u << VAR_OPT_OUT))) {
        if ((v = checked_value(t, vars, VAR_OPT_OUT, err, errlen)) == NULL) {
            rc = ODSYNC_INVALID;
            goto out;
        }
        sbuf_puts(&b, " ");
        sbuf_puts(&b, v);
    }
    s = sbuf_take(&b);
    if (s == NULL) {
        set_err(err, errlen, "%s: out of memory", t->path);
        rc = ODSYNC_NOMEM;
        goto out;
    }
    if (t->channel == TEMPLATE_SMS) {
        if (template_sms_length(s, &units, &limit) != ODSYNC_OK || units > limit) {
            set_err(err, errlen, "%s: sms is %d characters, at most %d", t->path, units, limit);
            rc = ODSYNC_INVALID;
            goto out;
        }
    }
    *out = s;
    s = NULL;
out:
    sbuf_free(&b);
    util_free(s);
    return rc;
}

/* ---- SMS length ----------------------------------------------------------------------- */

/* GSM 03.38 default alphabet beyond ASCII (one septet each). */
static const uint16_t gsm_basic_extra[] = {
    0x00A1, 0x00A3, 0x00A4, 0x00A5, 0x00A7, 0x00BF, 0x00C4, 0x00C5, 0x00C6, 0x00C7,
    0x00C9, 0x00D1, 0x00D6, 0x00D8, 0x00DC, 0x00DF, 0x00E0, 0x00E4, 0x00E5, 0x00E6,
    0x00E8, 0x00E9, 0x00EC, 0x00F1, 0x00F2, 0x00F6, 0x00F8, 0x00F9, 0x00FC, 0x0393,
    0x0394, 0x0398, 0x039B, 0x039E, 0x03A0, 0x03A3, 0x03A6, 0x03A8, 0x03A9};

/* Septets for code point cp in GSM-7 (2 for the extension table), or 0 when not in it. */
static int gsm_width(uint32_t cp)
{
    size_t i;
    if (cp == '\n' || cp == '\r')
        return 1;
    if (cp == 0x0C || cp == 0x20AC)
        return 2;
    if (cp >= 0x20 && cp < 0x7F) {
        if (cp == '`')
            return 0;
        if (strchr("^{}\\[~]|", (int)cp) != NULL)
            return 2;
        return 1;
    }
    for (i = 0; i < UTIL_ARRAY_LEN(gsm_basic_extra); i++) {
        if (gsm_basic_extra[i] == cp)
            return 1;
    }
    return 0;
}

/* Decode one code point of valid UTF-8; returns its byte length. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] < 0xE0) {
        *cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if (p[0] < 0xF0) {
        *cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
          ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    return 4;
}

int template_sms_length(const char *s, int *units, int *limit)
{
    size_t n, i = 0;
    size_t gsm = 0, ucs = 0;
    int all_gsm = 1;

    if (s == NULL || units == NULL || limit == NULL)
        return ODSYNC_INVALID;
    n = strlen(s);
    if (!util_utf8_valid(s, n))
        return ODSYNC_INVALID;
    while (i < n) {
        uint32_t cp;
        int w;
        i += utf8_decode((const unsigned char *)s + i, &cp);
        ucs += cp >= 0x10000 ? 2 : 1;
        w = gsm_width(cp);
        if (w == 0)
            all_gsm = 0;
        gsm += (size_t)w;
    }
    if (all_gsm) {
        *units = gsm > INT_MAX ? INT_MAX : (int)gsm;
        *limit = TEMPLATE_SMS_GSM7_LIMIT;
    } else {
        *units = ucs > INT_MAX ? INT_MAX : (int)ucs;
        *limit = TEMPLATE_SMS_UCS2_LIMIT;
    }
    return ODSYNC_OK;
}
