/*
 * plugin: find and load connector plugins (.so) and check their descriptor.
 * Plugins load only from the configured directories (or an explicit path for
 * `plugins describe PATH`), never when the file or a directory above it is group/world-writable
 * (sticky directories such as /tmp excepted),
 * with RTLD_NOW|RTLD_LOCAL. Checks, in order, each refusal naming the file and the field:
 * file permissions, dlopen, entry symbol (and whether a newer major's symbol is there),
 * magic, ABI major, ABI minor, struct size, name, max batch, required callbacks, config spec.
 * Plugins are never dlclose()d while threads run: plugin_close is called at exit only.
 * A built-in sink (a descriptor compiled into the core, e.g. the Open Dental commlog writer
 * in od_writer.c) is wrapped by plugin_builtin: same descriptor checks, no file, no dlopen.
 */
#ifndef ODSYNC_PLUGIN_H
#define ODSYNC_PLUGIN_H

#include <stddef.h>

#include <odsync/sink.h>

struct plugin;

/* Load the plugin at path (any location: callers decide which paths are allowed).
 * The path is resolved (symlinks followed) and the resolved file is what is checked and
 * loaded. On success *out is a plugin the caller frees with plugin_close. On failure returns
 * ODSYNC_ABI, ODSYNC_IO or ODSYNC_NOMEM and err holds e.g.
 * "rest.so: sink ABI major 2, this host speaks 1". */
int plugin_open(const char *path, struct plugin **out, char *err, size_t errlen);

/* Wrap a descriptor compiled into the core as a plugin, with the same descriptor checks as
 * plugin_open (magic, ABI, size, name, max batch, callbacks, config spec) and no dlopen
 * handle. desc is borrowed and must outlive the plugin (static storage). On success *out is
 * a plugin the caller frees with plugin_close (which never dlcloses it); plugin_path gives
 * "(built-in)". On failure returns ODSYNC_ABI or ODSYNC_NOMEM and err says why. Core-only:
 * nothing a config or a plugin directory names can reach this. */
int plugin_builtin(const struct odsync_sink_descriptor *desc, struct plugin **out, char *err,
                   size_t errlen);

/* 1 when p came from plugin_builtin. */
int plugin_is_builtin(const struct plugin *p);

/* dlclose (loaded plugins only) and free; accepts NULL. Only when no thread can call into
 * the plugin. */
void plugin_close(struct plugin *p);

/* The host's copy of the descriptor: zero-filled past what the plugin provided.
 * Borrowed, valid until plugin_close. */
const struct odsync_sink_descriptor *plugin_descriptor(const struct plugin *p);

/* The path it was loaded from ("(built-in)" for plugin_builtin). Borrowed, valid until
 * plugin_close. */
const char *plugin_path(const struct plugin *p);

/* The ABI minor the plugin was built with. */
unsigned plugin_abi_minor(const struct plugin *p);

/* Resolve a config "plugin" value to a file: a bare name N means N.so in the first of dirs
 * holding it; a value with a '/' must be a path inside one of dirs. *path_out: caller frees
 * with util_free. Returns ODSYNC_OK, or ODSYNC_NOT_FOUND with err naming what was searched. */
int plugin_find(char *const *dirs, size_t n_dirs, const char *name_or_path, char **path_out,
                char *err, size_t errlen);

#endif
