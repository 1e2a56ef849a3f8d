/*
 * testutil: helpers shared by every test program. Tests are Check suites, one process per
 * test (CK_FORK). Paths come from the environment `make check` sets:
 *   ODSYNC_BUILD  absolute build directory (build/ or build/asan/)
 *   ODSYNC_SRC    the source tree
 */
#ifndef ODSYNC_TESTUTIL_H
#define ODSYNC_TESTUTIL_H

#include <check.h>
#include <stddef.h>

/* Build and source directories (borrowed, static storage). */
const char *tu_build_dir(void);
const char *tu_src_dir(void);

/* A path under the build / source dir; caller frees with free(). */
char *tu_build_path(const char *rel);
char *tu_src_path(const char *rel);

/* A fresh private temporary directory (mode 0700); caller frees with free() after
 * tu_rmrf(). */
char *tu_mkdtemp(void);

/* Remove a directory tree; ignores errors. */
void tu_rmrf(const char *path);

/* Write text to dir/name (mode 0600); returns the full path (caller frees with free()). */
char *tu_write_file(const char *dir, const char *name, const char *text);

/* Read a file fully; caller frees with free(); NULL on error. */
char *tu_read_file(const char *path);

/* Run argv (argv[0] is a path) with extra environment entries ("K=V", NULL-terminated, may be
 * NULL) appended to the current environment, stdin from /dev/null. Captures stdout and
 * stderr (caller frees both with free(); either pointer may be NULL to discard). Returns the
 * exit status, or 128+signal. */
int tu_run(const char *const argv[], const char *const env_extra[], char **out, char **err);

/* Count non-overlapping occurrences of needle in hay. */
int tu_count(const char *hay, const char *needle);

/* Run a suite with CK_ENV and return the process exit code. */
int tu_run_suite(Suite *s);

#define ODSYNC_TEST_MAIN(suite_fn)                                                                 \
    int main(void)                                                                                 \
    {                                                                                              \
        return tu_run_suite(suite_fn());                                                           \
    }

#include <sys/types.h>

/* Start argv in the background (stdout to a pipe, stderr to stderr_path or /dev/null) and
 * wait until it prints a line containing "listening on 127.0.0.1:PORT"; returns its pid
 * and stores PORT. Fails the test after 10 s. */
pid_t tu_spawn_server(const char *const argv[], const char *stderr_path, int *port);

/* Start argv in the background with stdin from /dev/null and stdout+stderr appended to
 * log_path (or /dev/null); returns its pid. */
pid_t tu_spawn(const char *const argv[], const char *log_path);

/* Wait for pid to exit (up to timeout_ms, then SIGKILL). Returns the status as tu_run. */
int tu_wait(pid_t pid, int timeout_ms);

/* SIGTERM, then SIGKILL after 5 s; reaps. Returns the exit status as tu_run does. */
int tu_stop(pid_t pid);

#endif
