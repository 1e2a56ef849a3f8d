/*
 * records.c: canonical record upsert with change detection.
 */
#include "records.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetch SHA-256 once per process: an implicit fetch on every digest (EVP_sha256 with
 * OpenSSL 3) costs as much as hashing a short body. Never freed (one per process). */
static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int records_hash(const char *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    static const char digits[] = "0123456789abcdef";
    pthread_once(&sha256_once, sha256_fetch);
    if (sha256 == NULL || EVP_Digest(data, len, md, &mdlen, sha256, NULL) != 1 || mdlen != 32)
        return ODSYNC_INTERNAL;
    for (i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return ODSYNC_OK;
}

int records_upsert(struct store *st, const char *office, const char *key, int kind,
                   const char *body, int *changed, int64_t *version)
{
    char hash[65];
    sqlite3_stmt *s;
    int64_t old_version = 0;
    int rc;

    *changed = 0;
    *version = 0;
    rc = records_hash(body, strlen(body), hash);
    if (rc != ODSYNC_OK)
        return rc;
    s = store_stmt(st, "SELECT hash, version FROM records WHERE office = ? AND key = ?");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        old_version = sqlite3_column_int64(s, 1);
        if (strcmp((const char *)sqlite3_column_text(s, 0), hash) == 0) {
            *version = old_version;
            sqlite3_reset(s);
            return ODSYNC_OK;
        }
    } else if (rc != SQLITE_DONE) {
        sqlite3_reset(s);
        return store_status(rc);
    }
    sqlite3_reset(s);
    s = store_stmt(st, "INSERT INTO records (office, key, kind, hash, body, version, updated_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                       " ON CONFLICT (office, key) DO UPDATE SET kind = ?3, hash = ?4, body = ?5,"
                       " version = ?6, updated_at = ?7");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, kind);
    sqlite3_bind_text(s, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, old_version + 1);
    sqlite3_bind_int64(s, 7, util_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_status(rc) == ODSYNC_OK ? ODSYNC_STORE : store_status(rc);
    *changed = 1;
    *version = old_version + 1;
    return ODSYNC_OK;
}

int records_count(struct store *st, const char *office, int64_t *count)
{
    sqlite3_stmt *s =
        store_stmt(st, "SELECT COUNT(*) FROM records WHERE ?1 IS NULL OR office = ?1");
    int rc;
    *count = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    if (office != NULL)
        sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? ODSYNC_OK : ODSYNC_STORE;
}
