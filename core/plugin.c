/*
 * plugin.c: find, check and load sink plugins. See plugin.h for the order of checks.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define NAME_MAX_LEN 32
#define BUILTIN_PATH "(built-in)"

struct plugin {
    void *handle;                       /* from dlopen; NULL for a built-in */
    int builtin;                        /* 1: from plugin_builtin, never dlclosed */
    char *path;                         /* as loaded */
    struct odsync_sink_descriptor desc; /* host copy, zero-filled past the plugin's */
    unsigned abi_minor;                 /* what the plugin was built with */
};

/* The file's base name, for messages. Borrowed from path. */
static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* 1 when uid may own a plugin or a directory above it: root or the daemon's own user. */
static int trusted_owner(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

/* Refuse a file, or any directory above it, that another user could replace: writable by
 * group or others (a sticky directory such as /tmp excepted), or owned by someone other than
 * root or the daemon's user. real is the resolved path; path names it in messages. */
static int check_permissions(const char *path, const char *real, char *err, size_t errlen)
{
    struct stat st;
    char dir[PATH_MAX];
    char *slash;

    if (stat(real, &st) != 0) {
        util_fmt(err, errlen, "%s: cannot load: %s", base_of(path), strerror(errno));
        return ODSYNC_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        util_fmt(err, errlen, "%s: refusing to load: not a regular file", base_of(path));
        return ODSYNC_ABI;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        util_fmt(err, errlen,
                 "%s: refusing to load: file is writable by group or others (mode %04o)",
                 base_of(path), (unsigned)(st.st_mode & 07777));
        return ODSYNC_ABI;
    }
    if (!trusted_owner(st.st_uid)) {
        util_fmt(err, errlen, "%s: refusing to load: file is owned by uid %u, not root or uid %u",
                 base_of(path), (unsigned)st.st_uid, (unsigned)geteuid());
        return ODSYNC_ABI;
    }
    util_fmt(dir, sizeof(dir), "%s", real);
    while ((slash = strrchr(dir, '/')) != NULL) {
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (stat(dir, &st) != 0) {
            util_fmt(err, errlen, "%s: cannot load: %s: %s", base_of(path), dir, strerror(errno));
            return ODSYNC_IO;
        }
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
            util_fmt(err, errlen,
                     "%s: refusing to load: directory %s is writable by group or others",
                     base_of(path), dir);
            return ODSYNC_ABI;
        }
        if (!trusted_owner(st.st_uid)) {
            util_fmt(err, errlen,
                     "%s: refusing to load: directory %s is owned by uid %u, not root or uid %u",
                     base_of(path), dir, (unsigned)st.st_uid, (unsigned)geteuid());
            return ODSYNC_ABI;
        }
        if (slash == dir)
            break;
    }
    return ODSYNC_OK;
}

/* When v1 is missing, name the newest major the object does export, or 0. */
static int newer_major(void *handle)
{
    char sym[32];
    int major;
    for (major = 9; major >= 2; major--) {
        util_fmt(sym, sizeof(sym), "odsync_sink_entry_v%d", major);
        if (dlsym(handle, sym) != NULL)
            return major;
    }
    return 0;
}

/* 1 when name matches [a-z0-9_-]{1,32}. */
static int valid_name(const char *name)
{
    size_t n = 0;
    if (name == NULL)
        return 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= NAME_MAX_LEN;
}

/* Check the config spec table's entries. */
static int check_config_spec(const char *file, const struct odsync_config_spec *spec, char *err,
                             size_t errlen)
{
    size_t i;
    if (spec == NULL)
        return ODSYNC_OK;
    for (i = 0; spec[i].name != NULL; i++) {
        if (i >= 256) {
            util_fmt(err, errlen, "%s: config spec has no NULL-name terminator", file);
            return ODSYNC_ABI;
        }
        if (spec[i].type < ODSYNC_CFG_STRING || spec[i].type > ODSYNC_CFG_URL) {
            util_fmt(err, errlen, "%s: config[%zu] (%s): type %d is not a known type", file, i,
                     spec[i].name, (int)spec[i].type);
            return ODSYNC_ABI;
        }
        if (strcmp(spec[i].name, "plugin") == 0 || strcmp(spec[i].name, "delivery") == 0) {
            util_fmt(err, errlen, "%s: config[%zu]: the name \"%s\" is reserved", file, i,
                     spec[i].name);
            return ODSYNC_ABI;
        }
    }
    return ODSYNC_OK;
}

/* Check the descriptor fields in order and fill p->desc. */
static int check_descriptor(struct plugin *p, const struct odsync_sink_descriptor *d, char *err,
                            size_t errlen)
{
    const char *file = base_of(p->path);
    size_t copy;

    if (d->magic != ODSYNC_SINK_MAGIC) {
        util_fmt(err, errlen,
                 "%s: bad magic 0x%08x (expected 0x%08x): not an odsync sink descriptor", file,
                 (unsigned)d->magic, (unsigned)ODSYNC_SINK_MAGIC);
        return ODSYNC_ABI;
    }
    if (d->abi_major != ODSYNC_SINK_ABI_MAJOR) {
        util_fmt(err, errlen, "%s: sink ABI major %u, this host speaks %d", file,
                 (unsigned)d->abi_major, ODSYNC_SINK_ABI_MAJOR);
        return ODSYNC_ABI;
    }
    if (d->struct_size < ODSYNC_SINK_DESCRIPTOR_V1_0_SIZE) {
        util_fmt(err, errlen, "%s: descriptor struct_size %u is smaller than ABI 1.0's %zu", file,
                 (unsigned)d->struct_size, (size_t)ODSYNC_SINK_DESCRIPTOR_V1_0_SIZE);
        return ODSYNC_ABI;
    }
    copy = d->struct_size < sizeof(p->desc) ? d->struct_size : sizeof(p->desc);
    memset(&p->desc, 0, sizeof(p->desc));
    memcpy(&p->desc, d, copy);
    p->abi_minor = d->abi_minor;
    if (!valid_name(p->desc.name)) {
        util_fmt(err, errlen, "%s: descriptor name \"%s\" is not [a-z0-9_-]{1,32}", file,
                 p->desc.name ? p->desc.name : "(null)");
        return ODSYNC_ABI;
    }
    if (p->desc.max_batch < 1) {
        util_fmt(err, errlen, "%s: descriptor max_batch 0 must be >= 1", file);
        return ODSYNC_ABI;
    }
    if (p->desc.create == NULL || p->desc.send_batch == NULL || p->desc.destroy == NULL) {
        util_fmt(err, errlen, "%s: descriptor callback %s is NULL", file,
                 p->desc.create == NULL       ? "create"
                 : p->desc.send_batch == NULL ? "send_batch"
                                              : "destroy");
        return ODSYNC_ABI;
    }
    if (p->desc.version == NULL)
        p->desc.version = "";
    if (p->desc.description == NULL)
        p->desc.description = "";
    return check_config_spec(file, p->desc.config, err, errlen);
}

int plugin_open(const char *path, struct plugin **out, char *err, size_t errlen)
{
    struct plugin *p = NULL;
    odsync_sink_entry_v1_fn entry;
    const struct odsync_sink_descriptor *d;
    char real[PATH_MAX];
    int rc, major;

    *out = NULL;
    if (realpath(path, real) == NULL) {
        util_fmt(err, errlen, "%s: cannot load: %s", base_of(path), strerror(errno));
        rc = ODSYNC_IO;
        goto cleanup;
    }
    /* Check and load the resolved file, so a symlink cannot point past the checks. */
    rc = check_permissions(path, real, err, errlen);
    if (rc != ODSYNC_OK)
        goto cleanup;
    rc = ODSYNC_NOMEM;
    p = util_calloc(1, sizeof(*p));
    if (p == NULL || (p->path = util_strdup(path)) == NULL) {
        util_fmt(err, errlen, "%s: out of memory", base_of(path));
        goto cleanup;
    }
    rc = ODSYNC_ABI;
    p->handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (p->handle == NULL) {
        util_fmt(err, errlen, "%s: dlopen failed: %s", base_of(path), dlerror());
        goto cleanup;
    }
    *(void **)&entry = dlsym(p->handle, ODSYNC_SINK_ENTRY_V1);
    if (entry == NULL) {
        major = newer_major(p->handle);
        if (major > 0)
            util_fmt(err, errlen, "%s: sink ABI major %d, this host speaks %d", base_of(path),
                     major, ODSYNC_SINK_ABI_MAJOR);
        else
            util_fmt(err, errlen, "%s: no %s symbol: not an odsync sink plugin", base_of(path),
                     ODSYNC_SINK_ENTRY_V1);
        goto cleanup;
    }
    d = entry();
    if (d == NULL) {
        util_fmt(err, errlen, "%s: %s returned NULL", base_of(path), ODSYNC_SINK_ENTRY_V1);
        goto cleanup;
    }
    rc = check_descriptor(p, d, err, errlen);
    if (rc != ODSYNC_OK)
        goto cleanup;
    if (p->abi_minor > ODSYNC_SINK_ABI_MINOR)
        log_warn("plugin",
                 "%s: built for sink ABI 1.%u, this host speaks 1.%d; it must check "
                 "host->struct_size before using newer services",
                 base_of(path), p->abi_minor, ODSYNC_SINK_ABI_MINOR);
    *out = p;
    p = NULL;
    rc = ODSYNC_OK;
cleanup:
    plugin_close(p);
    return rc;
}

int plugin_builtin(const struct odsync_sink_descriptor *desc, struct plugin **out, char *err,
                   size_t errlen)
{
    struct plugin *p = NULL;
    int rc = ODSYNC_NOMEM;

    *out = NULL;
    p = util_calloc(1, sizeof(*p));
    if (p == NULL || (p->path = util_strdup(BUILTIN_PATH)) == NULL) {
        util_fmt(err, errlen, "%s: out of memory", BUILTIN_PATH);
        goto cleanup;
    }
    p->builtin = 1;
    if (desc == NULL) {
        util_fmt(err, errlen, "%s: no descriptor", BUILTIN_PATH);
        rc = ODSYNC_ABI;
        goto cleanup;
    }
    rc = check_descriptor(p, desc, err, errlen);
    if (rc != ODSYNC_OK)
        goto cleanup;
    *out = p;
    p = NULL;
cleanup:
    plugin_close(p);
    return rc;
}

int plugin_is_builtin(const struct plugin *p)
{
    return p != NULL && p->builtin;
}

void plugin_close(struct plugin *p)
{
    if (p == NULL)
        return;
    if (p->handle != NULL && !p->builtin)
        dlclose(p->handle);
    util_free(p->path);
    util_free(p);
}

const struct odsync_sink_descriptor *plugin_descriptor(const struct plugin *p)
{
    return &p->desc;
}

const char *plugin_path(const struct plugin *p)
{
    return p->path;
}

unsigned plugin_abi_minor(const struct plugin *p)
{
    return p->abi_minor;
}

/* 1 when path (made absolute) lies directly or deeper inside dir. */
static int path_inside(const char *path, const char *dir)
{
    char rp[PATH_MAX], rd[PATH_MAX];
    size_t n;
    if (realpath(path, rp) == NULL || realpath(dir, rd) == NULL)
        return 0;
    n = strlen(rd);
    return strncmp(rp, rd, n) == 0 && (rp[n] == '/' || (n == 1 && rd[0] == '/'));
}

int plugin_find(char *const *dirs, size_t n_dirs, const char *name_or_path, char **path_out,
                char *err, size_t errlen)
{
    char candidate[PATH_MAX];
    struct sbuf searched = {0};
    size_t i;
    int rc = ODSYNC_NOT_FOUND;

    *path_out = NULL;
    if (strchr(name_or_path, '/') != NULL) {
        for (i = 0; i < n_dirs; i++) {
            if (path_inside(name_or_path, dirs[i])) {
                *path_out = util_strdup(name_or_path);
                rc = *path_out ? ODSYNC_OK : ODSYNC_NOMEM;
                goto cleanup;
            }
        }
        util_fmt(err, errlen, "%s: not inside any configured plugin directory (plugin_dirs)",
                 name_or_path);
        goto cleanup;
    }
    if (!valid_name(name_or_path)) {
        util_fmt(err, errlen, "\"%s\" is not a plugin name ([a-z0-9_-]{1,32}) or a path",
                 name_or_path);
        goto cleanup;
    }
    for (i = 0; i < n_dirs; i++) {
        struct stat st;
        if (util_fmt(candidate, sizeof(candidate), "%s/%s.so", dirs[i], name_or_path) != ODSYNC_OK)
            continue;
        if (stat(candidate, &st) == 0) {
            *path_out = util_strdup(candidate);
            rc = *path_out ? ODSYNC_OK : ODSYNC_NOMEM;
            goto cleanup;
        }
        sbuf_printf(&searched, "%s%s", i ? ", " : "", dirs[i]);
    }
    util_fmt(err, errlen, "plugin \"%s\": no %s.so in plugin_dirs (%s)", name_or_path, name_or_path,
             searched.data ? searched.data : "none configured");
cleanup:
    sbuf_free(&searched);
    return rc;
}
