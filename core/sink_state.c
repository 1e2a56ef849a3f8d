/*
 * sink_state.c: durable sink pauses.
 */
#include "sink_state.h"

#include <string.h>

#include "util.h"

int sink_state_pause(struct store *st, const char *sink, int64_t until_ms, int cls,
                     const char *detail)
{
    sqlite3_stmt *s = store_stmt(
        st, "INSERT INTO sink_state (sink, paused_until, pause_class, pause_detail, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (sink) DO UPDATE SET"
            " paused_until = ?2, pause_class = ?3, pause_detail = ?4, updated_at = ?5"
            " WHERE sink_state.paused_until < ?2");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, until_ms);
    sqlite3_bind_int(s, 3, cls);
    if (detail != NULL)
        sqlite3_bind_text(s, 4, detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, util_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

int sink_state_get(struct store *st, const char *sink, struct sink_state *out)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT paused_until, pause_class, pause_detail"
                                     " FROM sink_state WHERE sink = ?");
    int rc;
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 2);
        out->paused_until = sqlite3_column_int64(s, 0);
        out->pause_class = sqlite3_column_int(s, 1);
        util_fmt(out->detail, sizeof(out->detail), "%s", d ? d : "");
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}

int sink_state_resume(struct store *st, const char *sink, int *cleared)
{
    sqlite3_stmt *s = store_stmt(st, "UPDATE sink_state SET paused_until = 0, pause_class = 0,"
                                     " pause_detail = NULL, updated_at = ?2"
                                     " WHERE sink = ?1 AND paused_until > 0");
    int rc;
    *cleared = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, util_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return ODSYNC_STORE;
    *cleared = sqlite3_changes(store_db(st)) > 0;
    return ODSYNC_OK;
}

int sink_state_clear_auth(struct store *st)
{
    sqlite3_stmt *s = store_stmt(st, "UPDATE sink_state SET paused_until = 0, pause_class = 0,"
                                     " pause_detail = NULL WHERE pause_class = ?");
    int rc;
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_int(s, 1, ODSYNC_AUTH);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? ODSYNC_OK : ODSYNC_STORE;
}
