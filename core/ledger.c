/*
 * ledger.c: the send ledger (messages) and the decision log (decisions).
 */
#include "ledger.h"

#include <string.h>

#include "util.h"

static const char *const state_names[] = {"none",    "queued",  "held",   "sending", "sent",
                                          "skipped", "expired", "failed", "unknown"};

const char *ledger_state_name(int state)
{
    if (state < 0 || (size_t)state >= UTIL_ARRAY_LEN(state_names))
        return "none";
    return state_names[state];
}

int ledger_state_parse(const char *name)
{
    size_t i;
    for (i = 1; name != NULL && i < UTIL_ARRAY_LEN(state_names); i++)
        if (strcmp(name, state_names[i]) == 0)
            return (int)i;
    return -1;
}

void ledger_entry_clear(struct ledger_entry *e)
{
    if (e == NULL)
        return;
    util_free(e->office);
    util_free(e->key);
    util_free(e->campaign);
    util_free(e->channel);
    util_free(e->address);
    util_free(e->family);
    util_free(e->provider_id);
    util_free(e->reason);
    memset(e, 0, sizeof(*e));
}

/* Step a write statement once and reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

int ledger_create(struct store *st, const struct ledger_entry *e, int *created)
{
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO messages (office, key, patnum, campaign, channel, address, family, state,"
            " due_at, hold_until, created_at, reason, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11)"
            " ON CONFLICT (office, key) DO NOTHING");
    int rc;
    *created = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, e->office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, e->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, e->patnum);
    sqlite3_bind_text(s, 4, e->campaign, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, e->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, e->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, e->family, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, ledger_state_name(e->state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, e->due_at);
    sqlite3_bind_int64(s, 10, e->hold_until);
    sqlite3_bind_int64(s, 11, e->created_at);
    sqlite3_bind_text(s, 12, e->reason, -1, SQLITE_STATIC);
    rc = step_done(s);
    if (rc == ODSYNC_OK)
        *created = sqlite3_changes(store_db(st)) > 0;
    return rc;
}

/* Copy column i (NULL stays NULL); sets *oom. */
static char *col(sqlite3_stmt *s, int i, int *oom)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    char *d = t ? util_strdup(t) : NULL;
    *oom |= t != NULL && d == NULL;
    return d;
}

int ledger_get(struct store *st, const char *office, const char *key, struct ledger_entry *e)
{
    sqlite3_stmt *s = store_stmt(
        st, "SELECT office, key, patnum, campaign, channel, address, family, state, due_at,"
            " hold_until, created_at, sent_at, provider_id, reason"
            " FROM messages WHERE office = ? AND key = ?");
    int rc, oom = 0;
    memset(e, 0, sizeof(*e));
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        e->office = col(s, 0, &oom);
        e->key = col(s, 1, &oom);
        e->patnum = sqlite3_column_int64(s, 2);
        e->campaign = col(s, 3, &oom);
        e->channel = col(s, 4, &oom);
        e->address = col(s, 5, &oom);
        e->family = col(s, 6, &oom);
        e->state = ledger_state_parse((const char *)sqlite3_column_text(s, 7));
        e->due_at = sqlite3_column_int64(s, 8);
        e->hold_until = sqlite3_column_int64(s, 9);
        e->created_at = sqlite3_column_int64(s, 10);
        e->sent_at = sqlite3_column_int64(s, 11);
        e->provider_id = col(s, 12, &oom);
        e->reason = col(s, 13, &oom);
    }
    sqlite3_reset(s);
    if (oom) {
        ledger_entry_clear(e);
        return ODSYNC_NOMEM;
    }
    if (rc == SQLITE_DONE)
        return ODSYNC_NOT_FOUND;
    return rc == SQLITE_ROW ? ODSYNC_OK : store_status(rc);
}

int ledger_set(struct store *st, const char *office, const char *key, int state, int64_t hold_until,
               const char *provider_id, const char *reason, int64_t now_ms)
{
    sqlite3_stmt *s =
        store_stmt(st, "UPDATE messages SET state = ?3, hold_until = ?4,"
                       " provider_id = COALESCE(?5, provider_id), reason = COALESCE(?6, reason),"
                       " sent_at = CASE WHEN ?3 IN ('sending', 'sent') AND sent_at = 0 THEN ?7"
                       "   WHEN ?3 IN ('queued', 'held') THEN 0 ELSE sent_at END,"
                       " updated_at = ?7 WHERE office = ?1 AND key = ?2");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, ledger_state_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, hold_until);
    sqlite3_bind_text(s, 5, provider_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, now_ms);
    return step_done(s);
}

int ledger_decide(struct store *st, const char *office, const char *key, int64_t patnum,
                  const char *campaign, const char *channel, const char *outcome, int64_t until_ms,
                  const char *reason, const char *rule, const char *consent, int64_t now_ms)
{
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO decisions (office, key, patnum, campaign, channel, outcome, until_at,"
            " reason, rule, consent, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, patnum);
    sqlite3_bind_text(s, 4, campaign, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, outcome, -1, SQLITE_STATIC);
    if (until_ms > 0)
        sqlite3_bind_int64(s, 7, until_ms);
    else
        sqlite3_bind_null(s, 7);
    sqlite3_bind_text(s, 8, reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, consent, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 11, now_ms);
    return step_done(s);
}

int ledger_count_sent(struct store *st, const char *office, const char *address, int64_t from_ms,
                      int64_t to_ms, int64_t *count)
{
    sqlite3_stmt *s =
        store_stmt(st, "SELECT COUNT(*) FROM messages INDEXED BY messages_address WHERE office = ?"
                       " AND address = ? AND sent_at >= ? AND sent_at < ?"
                       " AND state IN ('sending', 'sent', 'unknown')");
    int rc;
    *count = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, from_ms);
    sqlite3_bind_int64(s, 4, to_ms);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : store_status(rc);
}

int ledger_last_for_patient(struct store *st, const char *office, int64_t patnum,
                            const char *campaign, int include_pending, const char *exclude_key,
                            int64_t *at_ms)
{
    sqlite3_stmt *s =
        store_stmt(st, "SELECT MAX(CASE WHEN state IN ('sending', 'sent', 'unknown') THEN sent_at"
                       " WHEN ?4 AND state IN ('queued', 'held') THEN created_at END)"
                       " FROM messages INDEXED BY messages_patient"
                       " WHERE office = ?1 AND patnum = ?2 AND campaign = ?3 AND key IS NOT ?5");
    int rc;
    *at_ms = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, patnum);
    sqlite3_bind_text(s, 3, campaign, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, include_pending);
    sqlite3_bind_text(s, 5, exclude_key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *at_ms = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : store_status(rc);
}

int ledger_sending_consent(struct store *st, const char *office, const char *key, char *out,
                           size_t len)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT consent FROM decisions INDEXED BY decisions_key"
                                     " WHERE office = ? AND key = ? AND outcome = 'sending'"
                                     " ORDER BY id DESC LIMIT 1");
    int rc;
    if (len > 0)
        out[0] = '\0';
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        util_fmt(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

int ledger_counts(struct store *st, const char *office, int64_t since_ms, struct ledger_counts *out)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT state, COUNT(*) FROM messages WHERE office = ?"
                                     " AND updated_at >= ? AND campaign <> 'commlog'"
                                     " GROUP BY state");
    int rc;
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since_ms);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int state = ledger_state_parse((const char *)sqlite3_column_text(s, 0));
        if (state > LEDGER_NONE && state < LEDGER_STATE_COUNT)
            out->by_state[state] = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

int ledger_delivery(struct store *st, const char *office, const char *key, const char *provider_id,
                    const char *status, int64_t now_ms, int *found)
{
    sqlite3_stmt *s =
        store_stmt(st, "UPDATE messages SET delivery = ?3, delivery_at = ?5,"
                       " provider_id = COALESCE(provider_id, ?4),"
                       " state = CASE WHEN state = 'unknown' THEN 'sent' ELSE state END,"
                       " updated_at = ?5 WHERE office = ?1 AND key = ?2"
                       " AND (provider_id IS NULL OR ?4 IS NULL OR provider_id = ?4)");
    int rc;
    *found = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, provider_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, now_ms);
    rc = step_done(s);
    if (rc == ODSYNC_OK)
        *found = sqlite3_changes(store_db(st)) > 0;
    return rc;
}
