/*
 * fuzz: what the fuzz targets in tests/fuzz/ share. Each fuzz_*.c defines the libFuzzer
 * entry points below; the same object is linked either with libFuzzer (`make fuzz`, clang,
 * -fsanitize=fuzzer,address,undefined) or with replay.c, a Check suite that runs every file
 * of tests/fuzz/regress/<target>/ and tests/fuzz/corpus/<target>/ through it (`make check`).
 * A target's name is its program's name without the "fuzz_" or "replay_" prefix.
 */
#ifndef ODSYNC_FUZZ_H
#define ODSYNC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (defined by each target; Initialize is optional in libFuzzer but
 * every target here defines it, so the replay main can call it). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A request's headers and query arguments for the http_server handlers: the fuzz support
 * defines MHD_lookup_connection_value over this struct, so a struct http_request whose conn
 * points at one can be handed to a handler without a socket. Strings borrowed. */
#define FUZZ_CONN_MAX 8
struct fuzz_conn {
    const char *header_names[FUZZ_CONN_MAX];
    const char *header_values[FUZZ_CONN_MAX];
    size_t n_headers;
    const char *arg_names[FUZZ_CONN_MAX];
    const char *arg_values[FUZZ_CONN_MAX];
    size_t n_args;
};

/* Quiet logging and a private temporary directory removed at exit (static storage). */
const char *fuzz_setup(void);

/* The target's name from argv[0] ("fuzz_rest" or "replay_rest" -> "rest"); static storage. */
const char *fuzz_target_name(const char *argv0);

/* The build directory: $ODSYNC_BUILD, else two levels above argv[0]'s directory
 * (BUILD/tests/fuzz/prog). Caller frees with free(). */
char *fuzz_build_dir(const char *argv0);

/* data[0..size) as a NUL-terminated copy; caller frees with free(). */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
