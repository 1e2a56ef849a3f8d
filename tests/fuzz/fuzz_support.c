/*
 * fuzz_support: quiet logs, a temporary directory, and the request headers of the
 * http_server handlers without libmicrohttpd (see fuzz.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

#include "fuzz.h"
#include "log.h"
#include "util.h"

static char fuzz_dir[64];
static pid_t fuzz_owner; /* the process that made fuzz_dir (forked children must not remove it) */

/* Remove the temporary directory's files (the targets create no subdirectories). */
static void fuzz_cleanup(void)
{
    char cmd[128];
    if (fuzz_dir[0] == '\0' || getpid() != fuzz_owner)
        return;
    util_fmt(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

const char *fuzz_setup(void)
{
    static FILE *devnull;
    if (fuzz_dir[0] != '\0')
        return fuzz_dir;
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
    util_fmt(fuzz_dir, sizeof(fuzz_dir), "/tmp/odsync-fuzz-XXXXXX");
    if (mkdtemp(fuzz_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    fuzz_owner = getpid();
    atexit(fuzz_cleanup);
    return fuzz_dir;
}

const char *fuzz_target_name(const char *argv0)
{
    static char name[64];
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    if (strncmp(base, "fuzz_", 5) == 0)
        base += 5;
    else if (strncmp(base, "replay_", 7) == 0)
        base += 7;
    util_fmt(name, sizeof(name), "%s", base);
    return name;
}

char *fuzz_build_dir(const char *argv0)
{
    char real[PATH_MAX], *slash;
    int i;
    if (getenv("ODSYNC_BUILD") != NULL)
        return strdup(getenv("ODSYNC_BUILD"));
    if (realpath(argv0, real) == NULL)
        return strdup("build");
    for (i = 0; i < 3; i++) { /* BUILD/tests/fuzz/prog -> BUILD */
        slash = strrchr(real, '/');
        if (slash != NULL)
            *slash = '\0';
    }
    return strdup(real);
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Replaces libmicrohttpd's for the handlers: conn is a struct fuzz_conn. */
const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                                        const char *key)
{
    const struct fuzz_conn *c = (const struct fuzz_conn *)(void *)connection;
    size_t i;
    if (c == NULL || key == NULL)
        return NULL;
    if (kind == MHD_HEADER_KIND) {
        for (i = 0; i < c->n_headers; i++)
            if (strcasecmp(c->header_names[i], key) == 0)
                return c->header_values[i];
    } else if (kind == MHD_GET_ARGUMENT_KIND) {
        for (i = 0; i < c->n_args; i++)
            if (strcmp(c->arg_names[i], key) == 0)
                return c->arg_values[i];
    }
    return NULL;
}
