/*
 * consent.c: the opt-out ledger — current state per (office, channel, address, purpose) and
 * an append-only log of every change.
 */
#include "consent.h"

#include <ctype.h>
#include <string.h>

#include "model.h"
#include "util.h"

/* Append a change to consent_log. Strings borrowed. */
static int log_change(struct store *st, const char *office, const char *channel,
                      const char *address, const char *purpose, const char *state,
                      const char *source, const char *evidence, int64_t at_ms)
{
    sqlite3_stmt *s = store_stmt(st, "INSERT INTO consent_log (office, channel, address, purpose,"
                                     " state, source, evidence, at)"
                                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, address, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, purpose, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, evidence, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, at_ms);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* Set the state of one row (insert or replace); *changed = 1 when the state differed. */
static int set_state(struct store *st, const char *office, const char *channel, const char *address,
                     const char *purpose, const char *state, const char *source,
                     const char *evidence, int64_t at_ms, int *changed)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT state FROM consent WHERE office = ? AND channel = ?"
                                     " AND address = ? AND purpose = ?");
    int rc, same = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, address, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, purpose, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        same = strcmp((const char *)sqlite3_column_text(s, 0), state) == 0;
    sqlite3_reset(s);
    *changed = !same;
    if (same)
        return ODSYNC_OK;
    s = store_stmt(st, "INSERT OR REPLACE INTO consent (office, channel, address, purpose, state,"
                       " source, evidence, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, address, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, purpose, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, evidence, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, at_ms);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_status(rc);
    return log_change(st, office, channel, address, purpose, state, source, evidence, at_ms);
}

/* 1 when channel is one the ledger knows. */
static int known_channel(const char *channel)
{
    return channel != NULL && (strcmp(channel, "sms") == 0 || strcmp(channel, "email") == 0);
}

int consent_opt_out(struct store *st, const char *office, const char *channel, const char *address,
                    const char *purpose, const char *source, const char *evidence, int64_t at_ms,
                    int *changed)
{
    char norm[256];
    *changed = 0;
    if (!known_channel(channel) || purpose == NULL || source == NULL ||
        !consent_normalise(channel, address, norm, sizeof(norm)))
        return ODSYNC_INVALID;
    return set_state(st, office, channel, norm, purpose, "opt_out", source, evidence, at_ms,
                     changed);
}

int consent_opt_in(struct store *st, const char *office, const char *channel, const char *address,
                   const char *purpose, const char *source, const char *evidence, int64_t at_ms,
                   int *changed)
{
    sqlite3_stmt *s;
    char norm[256];
    char **purposes = NULL;
    size_t n = 0, i;
    int rc = ODSYNC_OK, one;

    *changed = 0;
    if (!known_channel(channel) || purpose == NULL || source == NULL ||
        !consent_normalise(channel, address, norm, sizeof(norm)))
        return ODSYNC_INVALID;
    /* R15/R30: only the recipient's explicit request lifts an opt-out: START/UNSTOP to
     * Twilio, a resubscribe on SendGrid's preference page, or staff recording one. */
    if (strcmp(source, "twilio") != 0 && strcmp(source, "staff") != 0 &&
        !(strcmp(source, "sendgrid") == 0 && strcmp(channel, "email") == 0))
        return ODSYNC_INVALID;
    s = store_stmt(st, "SELECT purpose FROM consent WHERE office = ? AND channel = ?"
                       " AND address = ? AND state = 'opt_out' AND (?4 = '*' OR purpose = ?4)");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, norm, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, purpose, -1, SQLITE_STATIC);
    while (rc == ODSYNC_OK && sqlite3_step(s) == SQLITE_ROW) {
        char **grown = util_realloc(purposes, (n + 1) * sizeof(*purposes));
        if (grown == NULL) {
            rc = ODSYNC_NOMEM;
            break;
        }
        purposes = grown;
        purposes[n] = util_strdup((const char *)sqlite3_column_text(s, 0));
        rc = purposes[n] == NULL ? ODSYNC_NOMEM : ODSYNC_OK;
        n += purposes[n] != NULL;
    }
    sqlite3_reset(s);
    for (i = 0; rc == ODSYNC_OK && i < n; i++) {
        rc = set_state(st, office, channel, norm, purposes[i], "opt_in", source, evidence, at_ms,
                       &one);
        *changed |= one;
    }
    for (i = 0; i < n; i++)
        util_free(purposes[i]);
    util_free(purposes);
    return rc;
}

int consent_written(struct store *st, const char *office, const char *address, const char *source,
                    const char *evidence, int64_t at_ms)
{
    char norm[256];
    int changed;
    if (source == NULL || !consent_normalise("sms", address, norm, sizeof(norm)))
        return ODSYNC_INVALID;
    return set_state(st, office, "sms", norm, "written", "written", source, evidence, at_ms,
                     &changed);
}

int consent_blocked(struct store *st, const char *office, const char *channel, const char *address,
                    const char *purpose, int *blocked, char *source_out, size_t source_len)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT source FROM consent WHERE office = ? AND channel = ?"
                                     " AND address = ? AND state = 'opt_out'"
                                     " AND (purpose = '*' OR purpose = ?) ORDER BY at LIMIT 1");
    char norm[256];
    int rc;
    *blocked = 0;
    if (source_out != NULL && source_len > 0)
        source_out[0] = '\0';
    if (s == NULL)
        return ODSYNC_STORE;
    if (!consent_normalise(channel, address, norm, sizeof(norm)))
        return ODSYNC_INVALID;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, norm, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, purpose, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *blocked = 1;
        if (source_out != NULL)
            util_fmt(source_out, source_len, "%s", (const char *)sqlite3_column_text(s, 0));
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

int consent_has_written(struct store *st, const char *office, const char *address, int *has)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT 1 FROM consent WHERE office = ? AND channel = 'sms'"
                                     " AND address = ? AND purpose = 'written'"
                                     " AND state = 'written'");
    char norm[256];
    int rc;
    *has = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    if (!consent_normalise("sms", address, norm, sizeof(norm)))
        return ODSYNC_OK;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, norm, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *has = rc == SQLITE_ROW;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* Copy column i (NULL stays NULL); sets *oom. */
static char *col(sqlite3_stmt *s, int i, int *oom)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    char *d = t ? util_strdup(t) : NULL;
    *oom |= t != NULL && d == NULL;
    return d;
}

int consent_list(struct store *st, const char *office, struct consent_row **rows, size_t *count)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT office, channel, address, purpose, state, source,"
                                     " evidence, at FROM consent WHERE ?1 IS NULL OR office = ?1"
                                     " ORDER BY at DESC, address");
    struct consent_row *out = NULL;
    size_t n = 0;
    int oom = 0, rc;
    *rows = NULL;
    *count = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    while (!oom && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct consent_row *grown = util_realloc(out, (n + 1) * sizeof(*out));
        if (grown == NULL) {
            oom = 1;
            break;
        }
        out = grown;
        memset(&out[n], 0, sizeof(out[n]));
        out[n].office = col(s, 0, &oom);
        out[n].channel = col(s, 1, &oom);
        out[n].address = col(s, 2, &oom);
        out[n].purpose = col(s, 3, &oom);
        out[n].state = col(s, 4, &oom);
        out[n].source = col(s, 5, &oom);
        out[n].evidence = col(s, 6, &oom);
        out[n].at_ms = sqlite3_column_int64(s, 7);
        n++;
    }
    sqlite3_reset(s);
    if (oom) {
        consent_rows_free(out, n);
        return ODSYNC_NOMEM;
    }
    *rows = out;
    *count = n;
    return ODSYNC_OK;
}

void consent_rows_free(struct consent_row *rows, size_t count)
{
    size_t i;
    for (i = 0; rows != NULL && i < count; i++) {
        util_free(rows[i].office);
        util_free(rows[i].channel);
        util_free(rows[i].address);
        util_free(rows[i].purpose);
        util_free(rows[i].state);
        util_free(rows[i].source);
        util_free(rows[i].evidence);
    }
    util_free(rows);
}

int consent_normalise(const char *channel, const char *raw, char *out, size_t out_len)
{
    size_t n, i, start = 0;
    if (out_len > 0)
        out[0] = '\0';
    if (channel == NULL || raw == NULL || out_len == 0)
        return 0;
    if (strcmp(channel, "sms") == 0)
        return model_phone_e164(raw, out, out_len); /* "+1 (555) ..." and "+15552..." alike */
    if (strcmp(channel, "email") != 0)
        return 0;
    n = strlen(raw);
    while (start < n && isspace((unsigned char)raw[start]))
        start++;
    while (n > start && isspace((unsigned char)raw[n - 1]))
        n--;
    if (n - start + 1 > out_len)
        return 0;
    for (i = start; i < n; i++)
        out[i - start] = (char)tolower((unsigned char)raw[i]);
    out[n - start] = '\0';
    if (!model_email_valid(out)) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}
