/*
 * jsonw: a flat JSON object written straight into an sbuf, for the canonical bodies the
 * store hashes and keeps (model rows, CRM contacts). The text is byte for byte what
 * cJSON_PrintUnformatted prints for the same members, so stored hashes stay comparable, but
 * nothing is built or parsed on the way: these bodies are written once per row ingested.
 *
 *   struct jsonw w;  jsonw_begin(&w);  jsonw_int(&w, "patnum", 12);  jsonw_str(&w, "x", s);
 *   char *body = jsonw_end(&w);        // caller frees with util_free; NULL: out of memory
 */
#ifndef ODSYNC_JSONW_H
#define ODSYNC_JSONW_H

#include <stdint.h>

#include "util.h"

struct jsonw {
    struct sbuf b; /* owned until jsonw_end */
    int members;
};

void jsonw_begin(struct jsonw *w);
/* Members, in call order; name is a literal-like key (escaped all the same). */
void jsonw_int(struct jsonw *w, const char *name, int64_t v);
void jsonw_str(struct jsonw *w, const char *name, const char *v); /* NULL: null */
void jsonw_bool(struct jsonw *w, const char *name, int v);
void jsonw_null(struct jsonw *w, const char *name);
/* A member whose value is already JSON text (a number, string, literal...), copied as is. */
void jsonw_raw(struct jsonw *w, const char *name, const char *json, size_t len);
/* Close the object and give it to the caller (caller frees), or NULL if memory ran out. */
char *jsonw_end(struct jsonw *w);

#endif
