/*
 * replay: a fuzz target without libFuzzer, as a Check suite. Every file of
 * tests/fuzz/regress/<target>/ (inputs that once crashed, kept after the fix) and
 * tests/fuzz/corpus/<target>/ (the seeds) goes through the target's LLVMFuzzerTestOneInput,
 * one forked test per file, so `make check` (and `make check-asan`, under the sanitizers)
 * shows that each fixed crash stays fixed. The program is linked once per target as
 * BUILD/tests/fuzz/replay_<target>; the target is read from its name.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "fuzz.h"

static char **files;
static int n_files;

/* Append every regular file of dir (sorted) to files. */
static void collect(const char *dir)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort), i;
    for (i = 0; i < n; i++) {
        char path[4096];
        if (list[i]->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
            files = realloc(files, (size_t)(n_files + 1) * sizeof(*files));
            files[n_files++] = strdup(path);
        }
        free(list[i]);
    }
    free(list);
}

START_TEST(replay_one)
{
    FILE *f = fopen(files[_i], "rb");
    long len;
    uint8_t *data;
    ck_assert_msg(f != NULL, "%s: cannot open", files[_i]);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    rewind(f);
    data = malloc((size_t)len + 1);
    ck_assert_int_eq(fread(data, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    /* A crash, a sanitizer report or a leak ends this forked test as an error. */
    LLVMFuzzerTestOneInput(data, (size_t)len);
    free(data);
}
END_TEST

START_TEST(has_inputs)
{
    ck_assert_msg(n_files > 0, "no inputs under tests/fuzz/{regress,corpus}/ for this target");
}
END_TEST

int main(int argc, char **argv)
{
    const char *target = fuzz_target_name(argv[0]);
    char dir[4096];
    Suite *s = suite_create(target);
    TCase *tc = tcase_create("replay");
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/regress/%s", tu_src_dir(), target);
    collect(dir);
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", tu_src_dir(), target);
    collect(dir);
    LLVMFuzzerInitialize(&argc, &argv);
    tcase_add_test(tc, has_inputs);
    if (n_files > 0)
        tcase_add_loop_test(tc, replay_one, 0, n_files);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
