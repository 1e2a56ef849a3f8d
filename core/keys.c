/*
 * keys.c: deterministic record keys.
 */
#include "keys.h"

#include <string.h>

#include "util.h"

int keys_valid_office(const char *id)
{
    size_t n;
    if (id == NULL || !((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= '0' && id[0] <= '9')))
        return 0;
    for (n = 0; id[n] != '\0'; n++) {
        char c = id[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n <= 32;
}

/* Shared shape: od:{office}:{middle}{id}{suffix}. */
static int build(char *buf, size_t len, const char *office, const char *middle, int64_t id,
                 const char *suffix)
{
    if (id <= 0 || !keys_valid_office(office)) {
        if (len > 0)
            buf[0] = '\0';
        return ODSYNC_INVALID;
    }
    return util_fmt(buf, len, "od:%s:%s%lld%s", office, middle, (long long)id, suffix);
}

int keys_contact(char *buf, size_t len, const char *office, int64_t patnum)
{
    return build(buf, len, office, "", patnum, "");
}

int keys_recall_task(char *buf, size_t len, const char *office, int64_t recallnum)
{
    return build(buf, len, office, "recall:", recallnum, "");
}

int keys_review(char *buf, size_t len, const char *office, int64_t aptnum)
{
    return build(buf, len, office, "apt:", aptnum, ":review");
}
