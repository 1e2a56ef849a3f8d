/*
 * config.c: load and validate the one JSON config file.
 *
 * Steps: strip // and block comments (blanking them with spaces, keeping newlines, so error
 * positions stay right), parse with cJSON, refuse duplicate keys anywhere, then walk the
 * known keys top-down. Validation stops at the first problem; the message names the origin,
 * the JSON path and the problem. Secrets are resolved as they are met and registered with
 * log_add_secret; no message ever contains a secret's value.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "campaign.h"
#include "jsonpath.h"
#include "log.h"
#include "tz.h"
#include "util.h"

#ifndef ODSYNC_PLUGIN_DIR
#define ODSYNC_PLUGIN_DIR "/usr/local/lib/odsync/plugins"
#endif

#define CONFIG_MAX_BYTES   (1024 * 1024) /* config_load refuses larger files */
#define SECRET_MAX_BYTES   (64 * 1024)   /* secret files are read up to this size */
#define DEFAULT_STORE      "/var/lib/odsync/odsync.db"
#define DEFAULT_LISTEN     "127.0.0.1:8787"
#define DEFAULT_LOG_LEVEL  "info"
#define DEFAULT_LOG_FORMAT "text"
#define DEFAULT_TIER       "read_all"
#define DEFAULT_TZDIR      "/usr/share/zoneinfo"
#define JPATH_MAX          JSONPATH_MAX
#define SHOW_BUF           JSONPATH_SHOW_BUF
#define EXCERPT_MAX        24 /* characters of a syntax error's excerpt */
#define ID_MAX             32 /* instance names and office ids */
#define MAX_DEPTH          64 /* nesting accepted anywhere in the file */
#define SUGGEST_MAX        64 /* keys longer than this get no "did you mean" */
#define MSG_MAX            512

/* Error reporting state for one config_parse call. */
struct ctx {
    const char *origin; /* borrowed: file name as given, first part of every message */
    char *err;          /* borrowed: caller's buffer, may be NULL */
    size_t errlen;
};

static const char *const top_keys[] = {"store",       "listen",    "admin_token", "log",
                                       "plugin_dirs", "delivery",  "events",      "sinks",
                                       "offices",     "campaigns", "policy",      "webhooks"};
static const char *const log_keys[] = {"level", "format"};
static const char *const log_levels[] = {"error", "warn", "info", "debug"};
static const char *const log_formats[] = {"text", "json"};
static const char *const office_keys[] = {"id",         "name",   "phone",     "timezone",
                                          "opendental", "routes", "campaigns", "policy"};
static const char *const od_keys[] = {
    "base_url",           "tier",       "developer_key",   "customer_key",
    "min_interval_ms",    "page_size",  "sync_interval_s", "overlap_s",
    "recall_reconcile_h", "workstation"};
static const char *const od_tiers[] = {"read_all", "paid", "local"};
static const char *const route_names[CONFIG_ROUTE_COUNT] = {"contact", "task", "sms", "email"};

static int fail(struct ctx *c, int status, const char *path, const char *fmt, ...)
    UTIL_PRINTF(4, 5);

/* Record the error "origin: path: message" (or "origin: message" when path is NULL) in the
 * caller's buffer. Returns status, so callers can write `return fail(...)`. */
static int fail(struct ctx *c, int status, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = jsonpath_verror(c->err, c->errlen, c->origin, status, path, fmt, ap);
    va_end(ap);
    return status;
}

/* The out-of-memory error. */
static int nomem(struct ctx *c)
{
    return fail(c, ODSYNC_NOMEM, NULL, "out of memory");
}

const char *config_json_type(const cJSON *v)
{
    return jsonpath_type(v);
}

/* ODSYNC_OK when v is an object, else the "expected an object" error at path. */
static int want_object(struct ctx *c, const cJSON *v, const char *path)
{
    if (cJSON_IsObject(v))
        return ODSYNC_OK;
    return fail(c, ODSYNC_CONFIG, path, "expected an object, got %s", config_json_type(v));
}

/* ODSYNC_OK when v is an array, else the "expected an array" error at path. */
static int want_array(struct ctx *c, const cJSON *v, const char *path)
{
    if (cJSON_IsArray(v))
        return ODSYNC_OK;
    return fail(c, ODSYNC_CONFIG, path, "expected an array, got %s", config_json_type(v));
}

/* ODSYNC_OK when v is a string, else the "expected a string" error at path. */
static int want_string(struct ctx *c, const cJSON *v, const char *path)
{
    if (cJSON_IsString(v) && v->valuestring != NULL)
        return ODSYNC_OK;
    return fail(c, ODSYNC_CONFIG, path, "expected a string, got %s", config_json_type(v));
}

/* Number of children of an array or object. */
static size_t child_count(const cJSON *v)
{
    const cJSON *it;
    size_t n = 0;
    cJSON_ArrayForEach(it, v)
    {
        n++;
    }
    return n;
}

/* Optimal-string-alignment distance between a and b (both at most SUGGEST_MAX bytes). */
static size_t edit_distance(const char *a, const char *b)
{
    unsigned char d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];
    size_t la = strlen(a), lb = strlen(b), i, j;

    for (i = 0; i <= la; i++)
        d[i][0] = (unsigned char)i;
    for (j = 0; j <= lb; j++)
        d[0][j] = (unsigned char)j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            unsigned best = d[i - 1][j] + 1u;
            unsigned sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1] ? 1u : 0u);
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (sub < best)
                best = sub;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (unsigned char)best;
        }
    }
    return d[la][lb];
}

/* The known key closest to key within distance 2, or NULL. Borrowed from known. */
static const char *suggest(const char *key, const char *const *known, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3, i;

    if (strlen(key) > SUGGEST_MAX)
        return NULL;
    for (i = 0; i < n; i++) {
        size_t d = edit_distance(key, known[i]);
        if (d < best_d) {
            best_d = d;
            best = known[i];
        }
    }
    return best;
}

/* Refuse any key of obj that is not in known: "path.key: unknown key (did you mean ...)". */
static int check_keys(struct ctx *c, const cJSON *obj, const char *path, const char *const *known,
                      size_t n)
{
    const cJSON *it;
    char kpath[JPATH_MAX];

    cJSON_ArrayForEach(it, obj)
    {
        const char *hint;
        if (jsonpath_find_word(it->string, known, n) >= 0)
            continue;
        jsonpath_key(kpath, sizeof(kpath), path, it->string);
        hint = suggest(it->string, known, n);
        if (hint != NULL)
            return fail(c, ODSYNC_CONFIG, kpath, "unknown key (did you mean \"%s\"?)", hint);
        return fail(c, ODSYNC_CONFIG, kpath, "unknown key");
    }
    return ODSYNC_OK;
}

/* ---- duplicate keys ----------------------------------------------------------------- */

/* One object member for duplicate detection: its key and position. */
struct keyref {
    const char *key; /* borrowed from the cJSON tree */
    size_t idx;
};

/* qsort order: by key, then by position. */
static int keyref_cmp(const void *pa, const void *pb)
{
    const struct keyref *a = pa, *b = pb;
    int r = strcmp(a->key, b->key);
    if (r != 0)
        return r;
    return a->idx < b->idx ? -1 : (a->idx > b->idx ? 1 : 0);
}

/* Position of the first member of obj (in document order) whose key was already used by an
 * earlier member, or n when there is none. O(n log n). */
static int first_dup(struct ctx *c, const cJSON *obj, size_t n, size_t *dup)
{
    struct keyref local[16], *refs = local;
    const cJSON *it;
    size_t i = 0;

    *dup = n;
    if (n < 2)
        return ODSYNC_OK;
    if (n > UTIL_ARRAY_LEN(local)) {
        refs = util_calloc(n, sizeof(*refs));
        if (refs == NULL)
            return nomem(c);
    }
    cJSON_ArrayForEach(it, obj)
    {
        refs[i].key = it->string;
        refs[i].idx = i;
        i++;
    }
    qsort(refs, n, sizeof(*refs), keyref_cmp);
    for (i = 1; i < n; i++) {
        if (strcmp(refs[i - 1].key, refs[i].key) == 0 && refs[i].idx < *dup)
            *dup = refs[i].idx;
    }
    if (refs != local)
        util_free(refs);
    return ODSYNC_OK;
}

/* Refuse a key repeated inside any object under v (cJSON keeps both, later lookups would see
 * only the first), and nesting deeper than MAX_DEPTH. Reports the first one in the text. */
static int check_dups(struct ctx *c, const cJSON *v, const char *path, int depth)
{
    char cpath[JPATH_MAX];
    const cJSON *it;
    size_t n, dup, i = 0;
    int rc;

    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return ODSYNC_OK;
    if (depth > MAX_DEPTH)
        return fail(c, ODSYNC_CONFIG, path, "nested deeper than %d levels", MAX_DEPTH);
    n = child_count(v);
    dup = n;
    if (cJSON_IsObject(v)) {
        rc = first_dup(c, v, n, &dup);
        if (rc != ODSYNC_OK)
            return rc;
    }
    cJSON_ArrayForEach(it, v)
    {
        if (cJSON_IsObject(v))
            jsonpath_key(cpath, sizeof(cpath), path, it->string);
        else
            jsonpath_index(cpath, sizeof(cpath), path, i);
        if (i == dup)
            return fail(c, ODSYNC_CONFIG, cpath, "duplicate key");
        rc = check_dups(c, it, cpath, depth + 1);
        if (rc != ODSYNC_OK)
            return rc;
        i++;
    }
    return ODSYNC_OK;
}

/* ---- comments and syntax ------------------------------------------------------------ */

/* 1-based line and column (in characters, not bytes) of offset off in text. */
static void line_col(const char *text, size_t off, size_t *line, size_t *col)
{
    size_t i;
    *line = 1;
    *col = 1;
    for (i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* The syntax error "origin:LINE:COL: problem" at offset off of the original text; problem is
 * "invalid JSON near '...'" with a short excerpt, or "... unexpected end of input". */
static int fail_syntax(struct ctx *c, const char *text, size_t len, size_t off)
{
    char excerpt[EXCERPT_MAX * 4 + 1];
    size_t line, col, i, o = 0, chars = 0, rest;

    if (off > len)
        off = len;
    for (rest = off; rest < len; rest++) {
        char ch = text[rest];
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
            break;
    }
    if (c->err == NULL || c->errlen == 0)
        return ODSYNC_CONFIG;
    if (rest == len) {
        line_col(text, len, &line, &col); /* the true end, not cJSON's last byte */
        (void)util_fmt(c->err, c->errlen, "%s:%zu:%zu: invalid JSON: unexpected end of input",
                       c->origin, line, col);
        return ODSYNC_CONFIG;
    }
    line_col(text, off, &line, &col);
    for (i = off; i < len && text[i] != '\n' && text[i] != '\r' && o + 1 < sizeof(excerpt); i++) {
        unsigned char ch = (unsigned char)text[i];
        int lead = (ch & 0xC0) != 0x80;
        if (lead && chars == EXCERPT_MAX)
            break;
        chars += lead ? 1 : 0;
        excerpt[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    excerpt[o] = '\0';
    (void)util_fmt(c->err, c->errlen, "%s:%zu:%zu: invalid JSON near '%s'", c->origin, line, col,
                   excerpt);
    return ODSYNC_CONFIG;
}

/* Copy text with comments blanked out: every byte of a // or block comment becomes a space
 * except newlines, so offsets, lines and columns match the original. Comment markers inside
 * strings are left alone. *out: NUL-terminated, caller frees with util_free. */
static int strip_comments(struct ctx *c, const char *text, size_t len, char **out)
{
    enum { CODE, STRING, LINE, BLOCK } state = CODE;
    size_t i, block_start = 0;
    char *s;

    *out = NULL;
    s = util_malloc(len + 1);
    if (s == NULL)
        return nomem(c);
    if (len > 0)
        memcpy(s, text, len);
    s[len] = '\0';
    for (i = 0; i < len; i++) {
        switch (state) {
        case CODE:
            if (s[i] == '"') {
                state = STRING;
            } else if (s[i] == '/' && i + 1 < len && s[i + 1] == '/') {
                state = LINE;
                s[i] = ' ';
            } else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
                state = BLOCK;
                block_start = i;
                s[i] = ' ';
                s[++i] = ' ';
            }
            break;
        case STRING:
            if (s[i] == '\\' && i + 1 < len)
                i++;
            else if (s[i] == '"' || s[i] == '\n')
                state = CODE;
            break;
        case LINE:
            if (s[i] == '\n')
                state = CODE;
            else if (s[i] != '\r')
                s[i] = ' ';
            break;
        case BLOCK:
            if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
                s[i] = ' ';
                s[++i] = ' ';
                state = CODE;
            } else if (s[i] != '\n' && s[i] != '\r') {
                s[i] = ' ';
            }
            break;
        }
    }
    if (state == BLOCK) {
        size_t line, col;
        util_free(s);
        line_col(text, block_start, &line, &col);
        if (c->err != NULL && c->errlen > 0)
            (void)util_fmt(c->err, c->errlen, "%s:%zu:%zu: unterminated /* comment", c->origin,
                           line, col);
        return ODSYNC_CONFIG;
    }
    *out = s;
    return ODSYNC_OK;
}

/* cJSON reports "object key expected" one byte past the offending byte (and so a trailing
 * comma before a final "}\n" looks like the end of input). When the byte before off sits
 * where a key was expected (right after '{', or after ',' inside an object), return its
 * offset instead; otherwise off. clean is the comment-free text. */
static size_t fix_key_error(const char *clean, size_t off)
{
    char stack[MAX_DEPTH];
    size_t depth = 0, i, p;
    char last = '\0';
    int in_string = 0;

    if (off == 0)
        return off;
    p = off - 1;
    if (clean[p] == '"' || clean[p] == ' ' || clean[p] == '\t' || clean[p] == '\r' ||
        clean[p] == '\n')
        return off;
    for (i = 0; i < p; i++) {
        char ch = clean[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
            continue;
        last = ch;
        if (ch == '"') {
            in_string = 1;
        } else if (ch == '{' || ch == '[') {
            if (depth == MAX_DEPTH)
                return off;
            stack[depth++] = ch;
        } else if ((ch == '}' || ch == ']') && depth > 0) {
            depth--;
        }
    }
    if (in_string || i != p)
        return off;
    if (last == '{' || (last == ',' && depth > 0 && stack[depth - 1] == '{'))
        return p;
    return off;
}

/* Parse the comment-free copy clean (len bytes, same offsets as text). *root: caller frees
 * with cJSON_Delete. */
static int parse_json(struct ctx *c, const char *text, const char *clean, size_t len, cJSON **root)
{
    const char *end = NULL;
    size_t off;
    void *probe;

    *root = cJSON_ParseWithLengthOpts(clean, len, &end, 0);
    if (*root == NULL) {
        /* cJSON reports an allocation failure like a syntax error: tell them apart. */
        probe = util_malloc(1);
        if (probe == NULL)
            return nomem(c);
        util_free(probe);
        off = (end != NULL && end >= clean) ? (size_t)(end - clean) : 0;
        return fail_syntax(c, text, len, fix_key_error(clean, off));
    }
    off = (end != NULL && end >= clean) ? (size_t)(end - clean) : len;
    while (off < len &&
           (clean[off] == ' ' || clean[off] == '\t' || clean[off] == '\r' || clean[off] == '\n'))
        off++;
    if (off < len) {
        cJSON_Delete(*root);
        *root = NULL;
        return fail_syntax(c, text, len, off);
    }
    return ODSYNC_OK;
}

/* ---- scalar checks ------------------------------------------------------------------ */

/* 1 when s matches [a-z0-9][a-z0-9_-]{0,31}. */
static int valid_id(const char *s)
{
    size_t i;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (i = 1; s[i] != '\0'; i++) {
        char ch = s[i];
        if (i >= ID_MAX)
            return 0;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/* Copy the string member key of obj into *out (caller frees with util_free). Absent: the
 * "required" error when required, else *out = NULL. An empty string is refused unless
 * empty_ok (then *out = NULL). */
static int get_string(struct ctx *c, const cJSON *obj, const char *key, const char *parent,
                      int required, int empty_ok, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char path[JPATH_MAX];
    int rc;

    *out = NULL;
    jsonpath_key(path, sizeof(path), parent, key);
    if (v == NULL)
        return required ? fail(c, ODSYNC_CONFIG, path, "required") : ODSYNC_OK;
    rc = want_string(c, v, path);
    if (rc != ODSYNC_OK)
        return rc;
    if (v->valuestring[0] == '\0')
        return empty_ok ? ODSYNC_OK : fail(c, ODSYNC_CONFIG, path, "must not be empty");
    *out = util_strdup(v->valuestring);
    return *out != NULL ? ODSYNC_OK : nomem(c);
}

/* Like get_string, but absent means a copy of def, and the value must be one of words. */
static int get_word(struct ctx *c, const cJSON *obj, const char *key, const char *parent,
                    const char *const *words, size_t n, const char *def, char **out)
{
    char path[JPATH_MAX], shown[SHOW_BUF], list[128] = "";
    size_t i, used = 0;
    int rc;

    rc = get_string(c, obj, key, parent, 0, 0, out);
    if (rc != ODSYNC_OK)
        return rc;
    if (*out == NULL) {
        *out = util_strdup(def);
        return *out != NULL ? ODSYNC_OK : nomem(c);
    }
    if (jsonpath_find_word(*out, words, n) >= 0)
        return ODSYNC_OK;
    for (i = 0; i < n; i++) {
        (void)util_fmt(list + used, sizeof(list) - used, "%s\"%s\"",
                       i == 0 ? "" : (i + 1 == n ? " or " : ", "), words[i]);
        used = strlen(list);
    }
    jsonpath_key(path, sizeof(path), parent, key);
    rc = fail(c, ODSYNC_CONFIG, path, "expected %s, got \"%s\"", list, jsonpath_show(shown, *out));
    util_free(*out);
    *out = NULL;
    return rc;
}

/* Check "host:port": host non-empty (an IPv6 address in brackets), port 1..65535. */
static int check_listen(struct ctx *c, const char *v, const char *path)
{
    char shown[SHOW_BUF];
    const char *colon = strrchr(v, ':');
    size_t hlen, i;
    int64_t port;

    if (colon == NULL || colon == v)
        return fail(c, ODSYNC_CONFIG, path, "expected \"host:port\", got \"%s\"",
                    jsonpath_show(shown, v));
    hlen = (size_t)(colon - v);
    if (v[0] == '[') {
        if (hlen < 3 || v[hlen - 1] != ']')
            return fail(c, ODSYNC_CONFIG, path, "expected \"host:port\", got \"%s\"",
                        jsonpath_show(shown, v));
    } else if (memchr(v, ':', hlen) != NULL) {
        return fail(c, ODSYNC_CONFIG, path,
                    "expected \"host:port\" (write an IPv6 address in brackets), got \"%s\"",
                    jsonpath_show(shown, v));
    }
    for (i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch <= 0x20 || ch == 0x7f)
            return fail(c, ODSYNC_CONFIG, path, "expected \"host:port\", got \"%s\"",
                        jsonpath_show(shown, v));
    }
    if (util_parse_i64(colon + 1, 0, 65535, &port) != ODSYNC_OK) /* 0: any free port */
        return fail(c, ODSYNC_CONFIG, path, "port must be a number from 0 to 65535, got \"%s\"",
                    jsonpath_show(shown, colon + 1));
    return ODSYNC_OK;
}

/* ODSYNC_OK when name is a time zone of the zoneinfo database ($TZDIR, else
 * /usr/share/zoneinfo) that the one zone reader (core/tz.c) loads and parses; ODSYNC_NOMEM
 * when memory ran out; anything else means unknown. */
static int tz_check(const char *name)
{
    struct tz *z = NULL;
    char err[256];
    int rc = tz_load(name, &z, err, sizeof(err));
    tz_free(z);
    return rc;
}

/* ---- secrets ------------------------------------------------------------------------ */

/* Overwrite n bytes at p in a way the compiler keeps, then free p. Accepts NULL. */
static void wipe_free(void *p, size_t n)
{
    volatile unsigned char *v = p;
    size_t i;
    if (p == NULL)
        return;
    for (i = 0; i < n; i++)
        v[i] = 0;
    util_free(p);
}

/* wipe_free for a NUL-terminated string. */
static void wipe_str(char *s)
{
    if (s != NULL)
        wipe_free(s, strlen(s));
}

/* 1 when s is an environment variable name: [A-Za-z_][A-Za-z0-9_]*, n bytes. */
static int valid_env_name(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return 0;
    }
    return 1;
}

int config_is_secret_ref(const char *value)
{
    size_t n;
    if (value == NULL)
        return 0;
    n = strlen(value);
    if (n > 3 && value[0] == '$' && value[1] == '{' && value[n - 1] == '}')
        return valid_env_name(value + 2, n - 3);
    return strncmp(value, "file:/", 6) == 0;
}

/* Read the secret file path: regular, not accessible by others, at most SECRET_MAX_BYTES,
 * one trailing newline removed, not empty, no NUL byte. *out: caller frees with util_free
 * (wipe first). Messages name jpath and the file, never the content. */
static int read_secret_file(const char *path, const char *jpath, char **out, char *err,
                            size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = -1, rc = ODSYNC_CONFIG;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        (void)util_fmt(err, errlen, "%s: cannot read secret file %s: %s", jpath, path,
                       strerror(errno));
        goto cleanup;
    }
    if (fstat(fd, &st) != 0) {
        (void)util_fmt(err, errlen, "%s: cannot read secret file %s: %s", jpath, path,
                       strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        (void)util_fmt(err, errlen, "%s: secret file %s is not a regular file", jpath, path);
        goto cleanup;
    }
    if ((st.st_mode & 0006) != 0) {
        (void)util_fmt(err, errlen,
                       "%s: secret file %s is readable or writable by others (mode %04o); "
                       "chmod o-rwx it",
                       jpath, path, (unsigned)(st.st_mode & 07777));
        goto cleanup;
    }
    buf = util_malloc(SECRET_MAX_BYTES + 1);
    if (buf == NULL) {
        (void)util_fmt(err, errlen, "%s: out of memory", jpath);
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, SECRET_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            (void)util_fmt(err, errlen, "%s: cannot read secret file %s: %s", jpath, path,
                           strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > SECRET_MAX_BYTES) {
            (void)util_fmt(err, errlen, "%s: secret file %s is larger than %d KiB", jpath, path,
                           SECRET_MAX_BYTES / 1024);
            goto cleanup;
        }
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    if (len == 0) {
        (void)util_fmt(err, errlen, "%s: secret file %s is empty", jpath, path);
        goto cleanup;
    }
    if (memchr(buf, '\0', len) != NULL) {
        (void)util_fmt(err, errlen, "%s: secret file %s contains a NUL byte", jpath, path);
        goto cleanup;
    }
    *out = util_strndup(buf, len);
    if (*out == NULL) {
        (void)util_fmt(err, errlen, "%s: out of memory", jpath);
        rc = ODSYNC_NOMEM;
        goto cleanup;
    }
    rc = ODSYNC_OK;
cleanup:
    if (fd >= 0)
        close(fd);
    wipe_free(buf, buf != NULL ? SECRET_MAX_BYTES + 1 : 0);
    return rc;
}

int config_resolve_secret(const char *ref, const char *json_path, char **out, char *err,
                          size_t errlen)
{
    char dummy[1];
    char *name = NULL, *value = NULL;
    const char *env;
    int rc = ODSYNC_CONFIG;

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (json_path == NULL)
        json_path = "secret";
    if (out == NULL)
        return ODSYNC_INVALID;
    *out = NULL;
    if (!config_is_secret_ref(ref)) {
        (void)util_fmt(err, errlen,
                       "%s: secrets must be \"${ENV_NAME}\" or \"file:/path\", not a literal "
                       "value",
                       json_path);
        goto cleanup;
    }
    if (ref[0] == '$') {
        name = util_strndup(ref + 2, strlen(ref) - 3);
        if (name == NULL) {
            rc = ODSYNC_NOMEM;
            (void)util_fmt(err, errlen, "%s: out of memory", json_path);
            goto cleanup;
        }
        env = getenv(name);
        if (env == NULL || env[0] == '\0') {
            (void)util_fmt(err, errlen, "%s: environment variable %s is not set", json_path, name);
            goto cleanup;
        }
        value = util_strdup(env);
        if (value == NULL) {
            rc = ODSYNC_NOMEM;
            (void)util_fmt(err, errlen, "%s: out of memory", json_path);
            goto cleanup;
        }
    } else {
        rc = read_secret_file(ref + 5, json_path, &value, err, errlen);
        if (rc != ODSYNC_OK)
            goto cleanup;
    }
    rc = log_add_secret(value);
    if (rc != ODSYNC_OK) {
        rc = ODSYNC_NOMEM;
        (void)util_fmt(err, errlen, "%s: out of memory", json_path);
        goto cleanup;
    }
    *out = value;
    value = NULL;
cleanup:
    util_free(name);
    wipe_str(value);
    return rc;
}

/* Resolve the secret reference in string member key of obj (under parent) into *out (caller
 * wipes and frees). Absent: "required" when required, else *out = NULL. */
static int get_secret(struct ctx *c, const cJSON *obj, const char *key, const char *parent,
                      int required, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char path[JPATH_MAX], msg[MSG_MAX];
    int rc;

    *out = NULL;
    jsonpath_key(path, sizeof(path), parent, key);
    if (v == NULL)
        return required ? fail(c, ODSYNC_CONFIG, path, "required") : ODSYNC_OK;
    rc = want_string(c, v, path);
    if (rc != ODSYNC_OK)
        return rc;
    rc = config_resolve_secret(v->valuestring, path, out, msg, sizeof(msg));
    if (rc != ODSYNC_OK)
        return fail(c, rc, NULL, "%s", msg);
    return ODSYNC_OK;
}

/* ---- sections ----------------------------------------------------------------------- */

/* store, listen, admin_token and log, with their defaults. */
static int load_basics(struct ctx *c, const cJSON *root, struct config *cfg)
{
    const cJSON *log;
    int rc;

    rc = get_string(c, root, "store", "", 0, 0, &cfg->store);
    if (rc != ODSYNC_OK)
        return rc;
    if (cfg->store == NULL) {
        cfg->store = util_strdup(DEFAULT_STORE);
        if (cfg->store == NULL)
            return nomem(c);
    }
    rc = get_string(c, root, "listen", "", 0, 0, &cfg->listen);
    if (rc != ODSYNC_OK)
        return rc;
    if (cfg->listen == NULL) {
        cfg->listen = util_strdup(DEFAULT_LISTEN);
        if (cfg->listen == NULL)
            return nomem(c);
    }
    rc = check_listen(c, cfg->listen, "listen");
    if (rc != ODSYNC_OK)
        return rc;
    rc = get_secret(c, root, "admin_token", "", 0, &cfg->admin_token);
    if (rc != ODSYNC_OK)
        return rc;
    log = cJSON_GetObjectItemCaseSensitive(root, "log");
    if (log != NULL) {
        rc = want_object(c, log, "log");
        if (rc == ODSYNC_OK)
            rc = check_keys(c, log, "log", log_keys, UTIL_ARRAY_LEN(log_keys));
        if (rc != ODSYNC_OK)
            return rc;
    }
    rc = get_word(c, log, "level", "log", log_levels, UTIL_ARRAY_LEN(log_levels), DEFAULT_LOG_LEVEL,
                  &cfg->log_level);
    if (rc != ODSYNC_OK)
        return rc;
    return get_word(c, log, "format", "log", log_formats, UTIL_ARRAY_LEN(log_formats),
                    DEFAULT_LOG_FORMAT, &cfg->log_format);
}

/* plugin_dirs: absolute paths; default one entry, ODSYNC_PLUGIN_DIR. */
static int load_plugin_dirs(struct ctx *c, const cJSON *root, struct config *cfg)
{
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(root, "plugin_dirs"), *it;
    char path[JPATH_MAX], shown[SHOW_BUF];
    size_t n, i = 0;
    int rc;

    if (dirs == NULL) {
        cfg->plugin_dirs = util_calloc(1, sizeof(*cfg->plugin_dirs));
        if (cfg->plugin_dirs == NULL)
            return nomem(c);
        cfg->n_plugin_dirs = 1;
        cfg->plugin_dirs[0] = util_strdup(ODSYNC_PLUGIN_DIR);
        return cfg->plugin_dirs[0] != NULL ? ODSYNC_OK : nomem(c);
    }
    rc = want_array(c, dirs, "plugin_dirs");
    if (rc != ODSYNC_OK)
        return rc;
    n = child_count(dirs);
    if (n == 0)
        return ODSYNC_OK;
    cfg->plugin_dirs = util_calloc(n, sizeof(*cfg->plugin_dirs));
    if (cfg->plugin_dirs == NULL)
        return nomem(c);
    cfg->n_plugin_dirs = n;
    cJSON_ArrayForEach(it, dirs)
    {
        jsonpath_index(path, sizeof(path), "plugin_dirs", i);
        rc = want_string(c, it, path);
        if (rc != ODSYNC_OK)
            return rc;
        if (it->valuestring[0] != '/')
            return fail(c, ODSYNC_CONFIG, path, "expected an absolute directory path, got \"%s\"",
                        jsonpath_show(shown, it->valuestring));
        cfg->plugin_dirs[i] = util_strdup(it->valuestring);
        if (cfg->plugin_dirs[i] == NULL)
            return nomem(c);
        i++;
    }
    return ODSYNC_OK;
}

/* sinks: instance name -> { "plugin": ..., settings }. */
/* One delivery setting: an integer in [min, max]; absent keeps *out. */
static int get_bounded(struct ctx *c, const cJSON *obj, const char *key, const char *parent,
                       int64_t min, int64_t max, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char path[JPATH_MAX];
    int64_t n;

    if (v == NULL)
        return ODSYNC_OK;
    jsonpath_key(path, sizeof(path), parent, key);
    if (!cJSON_IsNumber(v) || !util_double_i64(v->valuedouble, &n))
        return fail(c, ODSYNC_CONFIG, path, "expected an integer, got %s", config_json_type(v));
    if (v->valuedouble < (double)min || v->valuedouble > (double)max)
        return fail(c, ODSYNC_CONFIG, path, "expected an integer from %lld to %lld, got %.0f",
                    (long long)min, (long long)max, v->valuedouble);
    *out = n;
    return ODSYNC_OK;
}

/* A "delivery" object at path (may be absent): *d starts as the inherited values. */
static int load_delivery(struct ctx *c, const cJSON *obj, const char *path,
                         struct config_delivery *d)
{
    static const char *const keys[] = {"max_attempts", "backoff_base_ms", "backoff_cap_ms",
                                       "rate_limit_default_ms", "shutdown_timeout_ms"};
    char cap[JPATH_MAX];
    int rc;

    if (obj == NULL)
        return ODSYNC_OK;
    rc = want_object(c, obj, path);
    if (rc == ODSYNC_OK)
        rc = check_keys(c, obj, path, keys, UTIL_ARRAY_LEN(keys));
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, obj, "max_attempts", path, 1, 100, &d->max_attempts);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, obj, "backoff_base_ms", path, 0, 3600000, &d->backoff_base_ms);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, obj, "backoff_cap_ms", path, 0, 86400000, &d->backoff_cap_ms);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, obj, "rate_limit_default_ms", path, 0, 86400000,
                         &d->rate_limit_default_ms);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, obj, "shutdown_timeout_ms", path, 0, 600000, &d->shutdown_timeout_ms);
    if (rc == ODSYNC_OK && d->backoff_cap_ms < d->backoff_base_ms) {
        jsonpath_key(cap, sizeof(cap), path, "backoff_cap_ms");
        rc = fail(c, ODSYNC_CONFIG, cap, "must not be smaller than backoff_base_ms (%lld)",
                  (long long)d->backoff_base_ms);
    }
    return rc;
}

/* Top-level "delivery" with defaults. */
static int load_top_delivery(struct ctx *c, const cJSON *root, struct config *cfg)
{
    struct config_delivery *d = &cfg->delivery;
    d->max_attempts = 8;
    d->backoff_base_ms = 1000;
    d->backoff_cap_ms = 900000;
    d->rate_limit_default_ms = 60000;
    d->shutdown_timeout_ms = 10000;
    return load_delivery(c, cJSON_GetObjectItemCaseSensitive(root, "delivery"), "delivery", d);
}

static int load_sinks(struct ctx *c, const cJSON *root, struct config *cfg)
{
    const cJSON *sinks = cJSON_GetObjectItemCaseSensitive(root, "sinks"), *it;
    char path[JPATH_MAX], ppath[JPATH_MAX];
    size_t n, i = 0;
    int rc;

    if (sinks == NULL)
        return ODSYNC_OK;
    rc = want_object(c, sinks, "sinks");
    if (rc != ODSYNC_OK)
        return rc;
    n = child_count(sinks);
    if (n == 0)
        return ODSYNC_OK;
    cfg->sinks = util_calloc(n, sizeof(*cfg->sinks));
    if (cfg->sinks == NULL)
        return nomem(c);
    cfg->n_sinks = n;
    cJSON_ArrayForEach(it, sinks)
    {
        struct config_sink *s = &cfg->sinks[i++];
        const cJSON *plugin;

        jsonpath_key(path, sizeof(path), "sinks", it->string);
        if (!valid_id(it->string))
            return fail(c, ODSYNC_CONFIG, path,
                        "invalid instance name: use 1 to 32 of a-z, 0-9, '_' and '-', starting "
                        "with a letter or digit");
        rc = want_object(c, it, path);
        if (rc != ODSYNC_OK)
            return rc;
        plugin = cJSON_GetObjectItemCaseSensitive(it, "plugin");
        jsonpath_key(ppath, sizeof(ppath), path, "plugin");
        if (plugin == NULL)
            return fail(c, ODSYNC_CONFIG, ppath, "required");
        rc = want_string(c, plugin, ppath);
        if (rc != ODSYNC_OK)
            return rc;
        if (plugin->valuestring[0] == '\0')
            return fail(c, ODSYNC_CONFIG, ppath, "must not be empty");
        s->name = util_strdup(it->string);
        s->plugin = util_strdup(plugin->valuestring);
        s->json_path = util_strdup(path);
        s->settings = cJSON_Duplicate(it, 1);
        if (s->name == NULL || s->plugin == NULL || s->json_path == NULL || s->settings == NULL)
            return nomem(c);
        cJSON_DeleteItemFromObjectCaseSensitive(s->settings, "plugin");
        s->delivery = cfg->delivery;
        jsonpath_key(ppath, sizeof(ppath), path, "delivery");
        rc =
            load_delivery(c, cJSON_GetObjectItemCaseSensitive(it, "delivery"), ppath, &s->delivery);
        if (rc != ODSYNC_OK)
            return rc;
        cJSON_DeleteItemFromObjectCaseSensitive(s->settings, "delivery");
    }
    return ODSYNC_OK;
}

/* One office's "opendental" object. */
static int load_opendental(struct ctx *c, const cJSON *office, const char *opath,
                           struct config_office *o)
{
    const cJSON *od = cJSON_GetObjectItemCaseSensitive(office, "opendental");
    char path[JPATH_MAX], upath[JPATH_MAX], shown[SHOW_BUF];
    int rc;

    jsonpath_key(path, sizeof(path), opath, "opendental");
    if (od == NULL)
        return fail(c, ODSYNC_CONFIG, path, "required");
    rc = want_object(c, od, path);
    if (rc == ODSYNC_OK)
        rc = check_keys(c, od, path, od_keys, UTIL_ARRAY_LEN(od_keys));
    if (rc == ODSYNC_OK)
        rc = get_string(c, od, "base_url", path, 1, 0, &o->od_base_url);
    if (rc != ODSYNC_OK)
        return rc;
    if (!(strncmp(o->od_base_url, "http://", 7) == 0 && o->od_base_url[7] != '\0') &&
        !(strncmp(o->od_base_url, "https://", 8) == 0 && o->od_base_url[8] != '\0')) {
        jsonpath_key(upath, sizeof(upath), path, "base_url");
        return fail(c, ODSYNC_CONFIG, upath, "expected an http:// or https:// URL, got \"%s\"",
                    jsonpath_show(shown, o->od_base_url));
    }
    rc = get_word(c, od, "tier", path, od_tiers, UTIL_ARRAY_LEN(od_tiers), DEFAULT_TIER,
                  &o->od_tier);
    if (rc == ODSYNC_OK)
        rc = get_secret(c, od, "developer_key", path, 1, &o->od_developer_key);
    if (rc == ODSYNC_OK)
        rc = get_secret(c, od, "customer_key", path, 1, &o->od_customer_key);
    if (rc != ODSYNC_OK)
        return rc;
    /* Pacing and paging follow the tier unless set: read_all 5 s and 100 rows, paid 1 s and
     * 100, local none and 1000. */
    o->od_min_interval_ms = strcmp(o->od_tier, "read_all") == 0 ? 5000
                            : strcmp(o->od_tier, "paid") == 0   ? 1000
                                                                : 0;
    o->od_page_size = strcmp(o->od_tier, "local") == 0 ? 1000 : 100;
    o->od_sync_interval_s = 900;
    o->od_overlap_s = 5;
    o->od_recall_reconcile_h = 24;
    rc = get_bounded(c, od, "min_interval_ms", path, 0, 60000, &o->od_min_interval_ms);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, od, "page_size", path, 1,
                         strcmp(o->od_tier, "local") == 0 ? 10000 : 100, &o->od_page_size);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, od, "sync_interval_s", path, 1, 86400, &o->od_sync_interval_s);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, od, "overlap_s", path, 0, 3600, &o->od_overlap_s);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, od, "recall_reconcile_h", path, 1, 720, &o->od_recall_reconcile_h);
    if (rc == ODSYNC_OK)
        rc = get_string(c, od, "workstation", path, 0, 0, &o->od_workstation);
    return rc;
}

/* Top-level "events" with defaults. */
static int load_events(struct ctx *c, const cJSON *root, struct config *cfg)
{
    static const char *const keys[] = {"public_url",     "polling_seconds", "ensure_at_start",
                                       "max_body_bytes", "tls_cert",        "tls_key",
                                       "replay_window_h"};
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "events"), *b;
    struct config_events *e = &cfg->events;
    char path[JPATH_MAX], shown[SHOW_BUF];
    int rc;

    e->polling_seconds = 30;
    e->max_body_bytes = 16 * 1024 * 1024;
    e->replay_window_h = 70;
    if (ev == NULL)
        return ODSYNC_OK;
    rc = want_object(c, ev, "events");
    if (rc == ODSYNC_OK)
        rc = check_keys(c, ev, "events", keys, UTIL_ARRAY_LEN(keys));
    if (rc == ODSYNC_OK)
        rc = get_string(c, ev, "public_url", "events", 0, 0, &e->public_url);
    if (rc == ODSYNC_OK && e->public_url != NULL && strncmp(e->public_url, "https://", 8) != 0 &&
        strncmp(e->public_url, "http://", 7) != 0)
        return fail(c, ODSYNC_CONFIG, "events.public_url",
                    "expected an http:// or https:// URL, got \"%s\"",
                    jsonpath_show(shown, e->public_url));
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, ev, "polling_seconds", "events", 1, 3600, &e->polling_seconds);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, ev, "max_body_bytes", "events", 1024, 64 * 1024 * 1024,
                         &e->max_body_bytes);
    if (rc == ODSYNC_OK)
        rc = get_bounded(c, ev, "replay_window_h", "events", 1, 72, &e->replay_window_h);
    if (rc == ODSYNC_OK)
        rc = get_string(c, ev, "tls_cert", "events", 0, 0, &e->tls_cert);
    if (rc == ODSYNC_OK)
        rc = get_string(c, ev, "tls_key", "events", 0, 0, &e->tls_key);
    if (rc == ODSYNC_OK && (e->tls_cert == NULL) != (e->tls_key == NULL)) {
        jsonpath_key(path, sizeof(path), "events", e->tls_cert ? "tls_key" : "tls_cert");
        return fail(c, ODSYNC_CONFIG, path, "required with %s",
                    e->tls_cert ? "tls_cert" : "tls_key");
    }
    b = cJSON_GetObjectItemCaseSensitive(ev, "ensure_at_start");
    if (rc == ODSYNC_OK && b != NULL && !cJSON_IsBool(b))
        return fail(c, ODSYNC_CONFIG, "events.ensure_at_start", "expected true or false, got %s",
                    config_json_type(b));
    e->ensure_at_start = cJSON_IsTrue(b);
    return rc;
}

/* Top-level "webhooks": the secrets that authenticate provider webhooks. */
static int load_webhooks(struct ctx *c, const cJSON *root, struct config *cfg)
{
    static const char *const keys[] = {"twilio", "sendgrid"};
    static const char *const twilio_keys[] = {"auth_token"};
    static const char *const sendgrid_keys[] = {"public_key", "max_age_s"};
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "webhooks"), *tw, *sg, *pk;
    struct config_webhooks *h = &cfg->webhooks;
    char msg[MSG_MAX];
    int rc;

    h->sendgrid_max_age_s = 600;
    if (w == NULL)
        return ODSYNC_OK;
    rc = want_object(c, w, "webhooks");
    if (rc == ODSYNC_OK)
        rc = check_keys(c, w, "webhooks", keys, UTIL_ARRAY_LEN(keys));
    tw = cJSON_GetObjectItemCaseSensitive(w, "twilio");
    sg = cJSON_GetObjectItemCaseSensitive(w, "sendgrid");
    if (rc == ODSYNC_OK && tw != NULL)
        rc = want_object(c, tw, "webhooks.twilio");
    if (rc == ODSYNC_OK && tw != NULL)
        rc = check_keys(c, tw, "webhooks.twilio", twilio_keys, UTIL_ARRAY_LEN(twilio_keys));
    if (rc == ODSYNC_OK && tw != NULL)
        rc = get_secret(c, tw, "auth_token", "webhooks.twilio", 1, &h->twilio_auth_token);
    if (rc == ODSYNC_OK && sg != NULL)
        rc = want_object(c, sg, "webhooks.sendgrid");
    if (rc == ODSYNC_OK && sg != NULL)
        rc = check_keys(c, sg, "webhooks.sendgrid", sendgrid_keys, UTIL_ARRAY_LEN(sendgrid_keys));
    pk = sg != NULL ? cJSON_GetObjectItemCaseSensitive(sg, "public_key") : NULL;
    if (rc == ODSYNC_OK && sg != NULL && pk == NULL)
        return fail(c, ODSYNC_CONFIG, "webhooks.sendgrid.public_key", "required");
    if (rc == ODSYNC_OK && pk != NULL)
        rc = want_string(c, pk, "webhooks.sendgrid.public_key");
    if (rc == ODSYNC_OK && pk != NULL && config_is_secret_ref(pk->valuestring)) {
        rc = config_resolve_secret(pk->valuestring, "webhooks.sendgrid.public_key",
                                   &h->sendgrid_public_key, msg, sizeof(msg));
        if (rc != ODSYNC_OK)
            return fail(c, rc, NULL, "%s", msg);
    } else if (rc == ODSYNC_OK && pk != NULL) {
        h->sendgrid_public_key = util_strdup(pk->valuestring);
        if (h->sendgrid_public_key == NULL)
            return ODSYNC_NOMEM;
    }
    if (rc == ODSYNC_OK && sg != NULL)
        rc =
            get_bounded(c, sg, "max_age_s", "webhooks.sendgrid", 10, 86400, &h->sendgrid_max_age_s);
    return rc;
}

/* One office's "routes" object: each route an array of existing sink instance names. */
static int load_routes(struct ctx *c, const struct config *cfg, const cJSON *office,
                       const char *opath, struct config_office *o)
{
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(office, "routes");
    char path[JPATH_MAX], rpath[JPATH_MAX], epath[JPATH_MAX], shown[SHOW_BUF];
    int r, rc;

    if (routes == NULL)
        return ODSYNC_OK;
    jsonpath_key(path, sizeof(path), opath, "routes");
    rc = want_object(c, routes, path);
    if (rc == ODSYNC_OK)
        rc = check_keys(c, routes, path, route_names, UTIL_ARRAY_LEN(route_names));
    if (rc != ODSYNC_OK)
        return rc;
    for (r = 0; r < CONFIG_ROUTE_COUNT; r++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(routes, route_names[r]), *it;
        size_t n, i = 0, j;

        if (list == NULL)
            continue;
        jsonpath_key(rpath, sizeof(rpath), path, route_names[r]);
        rc = want_array(c, list, rpath);
        if (rc != ODSYNC_OK)
            return rc;
        n = child_count(list);
        if (n == 0)
            continue;
        o->routes[r] = util_calloc(n, sizeof(*o->routes[r]));
        if (o->routes[r] == NULL)
            return nomem(c);
        o->n_routes[r] = n;
        cJSON_ArrayForEach(it, list)
        {
            jsonpath_index(epath, sizeof(epath), rpath, i);
            rc = want_string(c, it, epath);
            if (rc != ODSYNC_OK)
                return rc;
            if (config_find_sink(cfg, it->valuestring) == NULL)
                return fail(c, ODSYNC_CONFIG, epath, "no sink instance named \"%s\"",
                            jsonpath_show(shown, it->valuestring));
            for (j = 0; j < i; j++) {
                if (strcmp(o->routes[r][j], it->valuestring) == 0)
                    return fail(c, ODSYNC_CONFIG, epath, "sink instance \"%s\" is listed twice",
                                jsonpath_show(shown, it->valuestring));
            }
            o->routes[r][i] = util_strdup(it->valuestring);
            if (o->routes[r][i] == NULL)
                return nomem(c);
            i++;
        }
    }
    return ODSYNC_OK;
}

/* offices[idx]: fills cfg->offices[idx]; earlier offices are complete (for id uniqueness). */
static int load_office(struct ctx *c, struct config *cfg, const cJSON *office, size_t idx)
{
    struct config_office *o = &cfg->offices[idx];
    char path[JPATH_MAX], fpath[JPATH_MAX], shown[SHOW_BUF];
    size_t j;
    int rc;

    jsonpath_index(path, sizeof(path), "offices", idx);
    rc = want_object(c, office, path);
    if (rc == ODSYNC_OK)
        rc = check_keys(c, office, path, office_keys, UTIL_ARRAY_LEN(office_keys));
    if (rc == ODSYNC_OK)
        rc = get_string(c, office, "id", path, 1, 0, &o->id);
    if (rc != ODSYNC_OK)
        return rc;
    jsonpath_key(fpath, sizeof(fpath), path, "id");
    if (!valid_id(o->id))
        return fail(c, ODSYNC_CONFIG, fpath,
                    "invalid id \"%s\": use 1 to 32 of a-z, 0-9, '_' and '-', starting with a "
                    "letter or digit",
                    jsonpath_show(shown, o->id));
    for (j = 0; j < idx; j++) {
        if (strcmp(cfg->offices[j].id, o->id) == 0)
            return fail(c, ODSYNC_CONFIG, fpath, "duplicate office id \"%s\" (also offices[%zu])",
                        o->id, j);
    }
    rc = get_string(c, office, "name", path, 1, 0, &o->name);
    if (rc == ODSYNC_OK)
        rc = get_string(c, office, "phone", path, 0, 1, &o->phone);
    if (rc == ODSYNC_OK)
        rc = get_string(c, office, "timezone", path, 1, 0, &o->timezone);
    if (rc != ODSYNC_OK)
        return rc;
    rc = tz_check(o->timezone);
    if (rc == ODSYNC_NOMEM)
        return nomem(c);
    if (rc != ODSYNC_OK) {
        jsonpath_key(fpath, sizeof(fpath), path, "timezone");
        return fail(c, ODSYNC_CONFIG, fpath, "unknown time zone \"%s\"",
                    jsonpath_show(shown, o->timezone));
    }
    rc = load_opendental(c, office, path, o);
    if (rc != ODSYNC_OK)
        return rc;
    return load_routes(c, cfg, office, path, o);
}

/* offices: a non-empty array. */
static int load_offices(struct ctx *c, const cJSON *root, struct config *cfg)
{
    const cJSON *offices = cJSON_GetObjectItemCaseSensitive(root, "offices"), *it;
    size_t n, i = 0;
    int rc;

    if (offices == NULL)
        return fail(c, ODSYNC_CONFIG, "offices", "required");
    rc = want_array(c, offices, "offices");
    if (rc != ODSYNC_OK)
        return rc;
    n = child_count(offices);
    if (n == 0)
        return fail(c, ODSYNC_CONFIG, "offices", "expected at least one office");
    cfg->offices = util_calloc(n, sizeof(*cfg->offices));
    if (cfg->offices == NULL)
        return nomem(c);
    cfg->n_offices = n;
    cJSON_ArrayForEach(it, offices)
    {
        rc = load_office(c, cfg, it, i++);
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

/* An optional object member kept as a deep copy in *out (caller frees with cJSON_Delete). */
static int load_raw(struct ctx *c, const cJSON *root, const char *key, cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    int rc;

    *out = NULL;
    if (v == NULL)
        return ODSYNC_OK;
    rc = want_object(c, v, key);
    if (rc != ODSYNC_OK)
        return rc;
    *out = cJSON_Duplicate(v, 1);
    return *out != NULL ? ODSYNC_OK : nomem(c);
}

/* Each office's campaigns and policy: the top-level "campaigns"/"policy" (already in cfg)
 * overridden member by member by the office's own; built after every office is parsed. */
static int load_engagement(struct ctx *c, const cJSON *root, struct config *cfg)
{
    const cJSON *offices = cJSON_GetObjectItemCaseSensitive(root, "offices"), *it;
    char path[JPATH_MAX];
    size_t i = 0;
    int rc;

    cJSON_ArrayForEach(it, offices)
    {
        struct config_office *o = &cfg->offices[i];
        jsonpath_index(path, sizeof(path), "offices", i++);
        rc = campaign_set_build(cfg->campaigns, cfg->policy,
                                cJSON_GetObjectItemCaseSensitive(it, "campaigns"),
                                cJSON_GetObjectItemCaseSensitive(it, "policy"), path, c->origin,
                                o->name, o->phone, o->timezone, &o->engage, c->err, c->errlen);
        if (rc != ODSYNC_OK)
            return rc;
    }
    return ODSYNC_OK;
}

/* Validate root and fill cfg (zeroed; partly filled on failure, config_free handles it). */
static int load_config(struct ctx *c, const cJSON *root, struct config *cfg)
{
    int rc;

    if (!cJSON_IsObject(root))
        return fail(c, ODSYNC_CONFIG, NULL, "expected an object at the top level, got %s",
                    config_json_type(root));
    rc = check_dups(c, root, "", 0);
    if (rc == ODSYNC_OK)
        rc = check_keys(c, root, "", top_keys, UTIL_ARRAY_LEN(top_keys));
    if (rc != ODSYNC_OK)
        return rc;
    cfg->path = util_strdup(c->origin);
    if (cfg->path == NULL)
        return nomem(c);
    rc = load_basics(c, root, cfg);
    if (rc == ODSYNC_OK)
        rc = load_plugin_dirs(c, root, cfg);
    if (rc == ODSYNC_OK)
        rc = load_top_delivery(c, root, cfg);
    if (rc == ODSYNC_OK)
        rc = load_events(c, root, cfg);
    if (rc == ODSYNC_OK)
        rc = load_webhooks(c, root, cfg);
    if (rc == ODSYNC_OK)
        rc = load_sinks(c, root, cfg);
    if (rc == ODSYNC_OK)
        rc = load_offices(c, root, cfg);
    if (rc == ODSYNC_OK)
        rc = load_raw(c, root, "campaigns", &cfg->campaigns);
    if (rc == ODSYNC_OK)
        rc = load_raw(c, root, "policy", &cfg->policy);
    if (rc == ODSYNC_OK)
        rc = load_engagement(c, root, cfg);
    return rc;
}

/* ---- public ------------------------------------------------------------------------- */

int config_parse(const char *text, size_t len, const char *origin, struct config **out, char *err,
                 size_t errlen)
{
    struct ctx c;
    struct config *cfg = NULL;
    cJSON *root = NULL;
    char *clean = NULL;
    int rc;

    c.origin = origin != NULL ? origin : "config";
    c.err = err;
    c.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return ODSYNC_INVALID;
    *out = NULL;
    if (text == NULL && len > 0)
        return fail(&c, ODSYNC_INVALID, NULL, "no text");
    rc = strip_comments(&c, text != NULL ? text : "", len, &clean);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = parse_json(&c, text != NULL ? text : "", clean, len, &root);
    if (rc != ODSYNC_OK)
        goto cleanup;
    cfg = util_calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        rc = nomem(&c);
        goto cleanup;
    }
    rc = load_config(&c, root, cfg);
    if (rc != ODSYNC_OK)
        goto cleanup;
    *out = cfg;
    cfg = NULL;
cleanup:
    config_free(cfg);
    cJSON_Delete(root);
    util_free(clean);
    return rc;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
    struct ctx c;
    char *text = NULL;
    size_t len = 0;
    int rc;

    c.origin = path != NULL ? path : "config";
    c.err = err;
    c.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return ODSYNC_INVALID;
    *out = NULL;
    if (path == NULL)
        return fail(&c, ODSYNC_INVALID, NULL, "no path");
    rc = util_read_file(path, CONFIG_MAX_BYTES, &text, &len);
    if (rc == ODSYNC_IO)
        rc = fail(&c, ODSYNC_IO, NULL, "cannot read file: %s", strerror(errno));
    else if (rc == ODSYNC_INVALID)
        rc = fail(&c, ODSYNC_CONFIG, NULL, "file is larger than %d MiB",
                  CONFIG_MAX_BYTES / (1024 * 1024));
    else if (rc != ODSYNC_OK)
        rc = nomem(&c);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = config_parse(text, len, path, out, err, errlen);
cleanup:
    util_free(text);
    return rc;
}

/* Free one office's members (not the struct itself). */
static void office_free(struct config_office *o)
{
    int r;
    size_t i;

    util_free(o->id);
    util_free(o->name);
    util_free(o->phone);
    util_free(o->timezone);
    util_free(o->od_base_url);
    util_free(o->od_tier);
    util_free(o->od_workstation);
    wipe_str(o->od_developer_key);
    wipe_str(o->od_customer_key);
    for (r = 0; r < CONFIG_ROUTE_COUNT; r++) {
        for (i = 0; i < o->n_routes[r]; i++)
            util_free(o->routes[r][i]);
        util_free(o->routes[r]);
    }
    campaign_set_free(o->engage);
}

void config_free(struct config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    util_free(cfg->path);
    util_free(cfg->store);
    util_free(cfg->listen);
    wipe_str(cfg->admin_token);
    util_free(cfg->log_level);
    util_free(cfg->log_format);
    for (i = 0; i < cfg->n_plugin_dirs; i++)
        util_free(cfg->plugin_dirs[i]);
    util_free(cfg->plugin_dirs);
    for (i = 0; i < cfg->n_sinks; i++) {
        util_free(cfg->sinks[i].name);
        util_free(cfg->sinks[i].plugin);
        util_free(cfg->sinks[i].json_path);
        cJSON_Delete(cfg->sinks[i].settings);
    }
    util_free(cfg->sinks);
    for (i = 0; i < cfg->n_offices; i++)
        office_free(&cfg->offices[i]);
    util_free(cfg->offices);
    util_free(cfg->events.public_url);
    util_free(cfg->events.tls_cert);
    util_free(cfg->events.tls_key);
    wipe_str(cfg->webhooks.twilio_auth_token);
    util_free(cfg->webhooks.sendgrid_public_key);
    cJSON_Delete(cfg->campaigns);
    cJSON_Delete(cfg->policy);
    util_free(cfg);
}

const struct config_sink *config_find_sink(const struct config *cfg, const char *name)
{
    size_t i;
    if (cfg == NULL || name == NULL)
        return NULL;
    for (i = 0; i < cfg->n_sinks; i++) {
        if (cfg->sinks[i].name != NULL && strcmp(cfg->sinks[i].name, name) == 0)
            return &cfg->sinks[i];
    }
    return NULL;
}

const struct config_office *config_find_office(const struct config *cfg, const char *id)
{
    size_t i;
    if (cfg == NULL || id == NULL)
        return NULL;
    for (i = 0; i < cfg->n_offices; i++) {
        if (cfg->offices[i].id != NULL && strcmp(cfg->offices[i].id, id) == 0)
            return &cfg->offices[i];
    }
    return NULL;
}

const char *config_route_name(enum config_route route)
{
    if ((int)route < 0 || route >= CONFIG_ROUTE_COUNT)
        return "unknown";
    return route_names[route];
}
