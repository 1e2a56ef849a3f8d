/*
 * test_abi: the sink ABI loader (core/plugin.c) and instance creation (core/host_api.c)
 * against real fixture plugins built from tests/abi/fixtures/ into $ODSYNC_BUILD/tests/abi/.
 * Every refusal is asserted by its exact message. Each test copies the fixtures it needs into
 * a private temporary directory with explicit modes, so nothing depends on the umask or on
 * the modes of the build tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "host_api.h"
#include "log.h"
#include "plugin.h"
#include "util.h"

#include "../support/testutil.h"

#define ERR_LEN   512
#define PATH_LEN  1024
#define TOKEN_ENV "ODSYNC_ABI_TEST_TOKEN"

static char *tmp;          /* per test: a private directory (0700), from setup */
static char err[ERR_LEN];  /* per test: the last error message */
static struct plugin *plg; /* per test: closed by teardown */

static void setup(void)
{
    tmp = tu_mkdtemp();
    memset(err, 0, sizeof(err));
    plg = NULL;
}

static void teardown(void)
{
    plugin_close(plg);
    plg = NULL;
    chmod(tmp, 0700);
    tu_rmrf(tmp);
    free(tmp);
    tmp = NULL;
    log_shutdown();
}

/* dir + "/" + name into out (PATH_LEN bytes). */
static void join(char *out, const char *dir, const char *name)
{
    ck_assert_int_eq(util_fmt(out, PATH_LEN, "%s/%s", dir, name), ODSYNC_OK);
}

/* Copy the built fixture NAME.so to dir/NAME.so with mode; the copy's path into out. */
static void install_fixture_in(const char *dir, const char *name, mode_t mode, char *out)
{
    char rel[128], buf[65536];
    char *src;
    int in, fd;
    ssize_t n;

    ck_assert_int_eq(util_fmt(rel, sizeof(rel), "tests/abi/%s.so", name), ODSYNC_OK);
    src = tu_build_path(rel);
    join(out, dir, rel + strlen("tests/abi/"));
    in = open(src, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(in >= 0, "open %s: %s (build the fixtures first)", src, strerror(errno));
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "open %s: %s", out, strerror(errno));
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(fd, buf, (size_t)n), n);
    ck_assert_int_eq(n, 0);
    close(in);
    close(fd);
    ck_assert_int_eq(chmod(out, mode), 0);
    free(src);
}

/* The fixture NAME.so copied into the test's directory, mode 0755. */
static void install_fixture(const char *name, char *out)
{
    install_fixture_in(tmp, name, 0755, out);
}

/* A subdirectory of the test's directory, mode 0700; its path into out. */
static void make_subdir(const char *name, char *out)
{
    join(out, tmp, name);
    ck_assert_int_eq(mkdir(out, 0700), 0);
    ck_assert_int_eq(chmod(out, 0700), 0);
}

/* Load fixture NAME (copied, mode 0755) and expect refusal rc with exactly message. */
static void expect_refused(const char *name, int rc, const char *message)
{
    char path[PATH_LEN];
    install_fixture(name, path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), rc);
    ck_assert_ptr_null(plg);
    ck_assert_str_eq(err, message);
}

/* Load good.so (copied) into plg. */
static void open_good(void)
{
    char path[PATH_LEN];
    install_fixture("good", path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_OK);
    ck_assert_ptr_nonnull(plg);
}

/* host_sink_create on plg with settings given as JSON text; expect rc and, on failure,
 * exactly message. Returns the instance on success (caller destroys). */
static struct host_sink *create_sink(const char *settings_json, int rc, const char *message)
{
    cJSON *settings = cJSON_Parse(settings_json);
    struct host_sink *s = NULL;
    ck_assert_ptr_nonnull(settings);
    ck_assert_int_eq(host_sink_create(plg, "crm", settings, "sinks.crm", &s, err, sizeof(err)), rc);
    cJSON_Delete(settings);
    if (rc == ODSYNC_OK) {
        ck_assert_ptr_nonnull(s);
    } else {
        ck_assert_ptr_null(s);
        ck_assert_str_eq(err, message);
    }
    return s;
}

/* ---- loading ------------------------------------------------------------------------ */

START_TEST(test_good_loads)
{
    char path[PATH_LEN];
    const struct odsync_sink_descriptor *d;

    install_fixture("good", path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_OK);
    ck_assert_ptr_nonnull(plg);
    ck_assert_str_eq(plugin_path(plg), path);
    ck_assert_uint_eq(plugin_abi_minor(plg), 1);
    d = plugin_descriptor(plg);
    ck_assert_uint_eq(d->magic, ODSYNC_SINK_MAGIC);
    ck_assert_uint_eq(d->abi_major, 1);
    ck_assert_uint_eq(d->abi_minor, 1);
    ck_assert_uint_eq(d->struct_size, sizeof(struct odsync_sink_descriptor));
    ck_assert_str_eq(d->name, "good");
    ck_assert_str_eq(d->version, "1.2.3");
    ck_assert_str_eq(d->description, "valid test sink");
    ck_assert_uint_eq(d->max_batch, 10);
    ck_assert(d->capabilities == (ODSYNC_CAP_CONTACTS | ODSYNC_CAP_TASKS));
    ck_assert_ptr_nonnull(d->config);
    ck_assert_str_eq(d->config[0].name, "account");
    ck_assert_int_eq(d->config[0].type, ODSYNC_CFG_STRING);
    ck_assert_uint_eq(d->config[0].flags, ODSYNC_CFG_REQUIRED);
    ck_assert_str_eq(d->config[1].name, "token");
    ck_assert_int_eq(d->config[1].type, ODSYNC_CFG_STRING);
    ck_assert_uint_eq(d->config[1].flags, ODSYNC_CFG_SECRET);
    ck_assert_ptr_null(d->config[2].name);
    ck_assert_ptr_nonnull(d->create);
    ck_assert_ptr_nonnull(d->send_batch);
    ck_assert_ptr_null(d->flush);
    ck_assert_ptr_null(d->health);
    ck_assert_ptr_nonnull(d->destroy);
}
END_TEST

START_TEST(test_bad_magic)
{
    expect_refused("bad_magic", ODSYNC_ABI,
                   "bad_magic.so: bad magic 0xdeadbeef (expected 0x4f445353): not an odsync sink "
                   "descriptor");
}
END_TEST

START_TEST(test_newer_major)
{
    expect_refused("newer_major", ODSYNC_ABI,
                   "newer_major.so: sink ABI major 2, this host speaks 1");
}
END_TEST

START_TEST(test_newer_minor_loads)
{
    char path[PATH_LEN];
    const struct odsync_sink_descriptor *d;

    install_fixture("newer_minor", path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_OK);
    ck_assert_ptr_nonnull(plg);
    ck_assert_uint_eq(plugin_abi_minor(plg), 2);
    d = plugin_descriptor(plg);
    ck_assert_uint_eq(d->abi_major, 1);
    ck_assert_uint_eq(d->abi_minor, 2);
    ck_assert_uint_gt(d->struct_size, sizeof(struct odsync_sink_descriptor));
    ck_assert_str_eq(d->name, "newer_minor");
    ck_assert_str_eq(d->version, "1.2.0");
    ck_assert_str_eq(d->description, "built for ABI 1.2");
    ck_assert_str_eq(d->setup, "create the thing");
    ck_assert_uint_eq(d->max_batch, 7);
    ck_assert(d->capabilities == (ODSYNC_CAP_SMS | ODSYNC_CAP_EMAIL));
    ck_assert_ptr_null(d->config);
    ck_assert_ptr_nonnull(d->create);
    ck_assert_ptr_nonnull(d->send_batch);
    ck_assert_ptr_null(d->flush);
    ck_assert_ptr_nonnull(d->health);
    ck_assert_ptr_nonnull(d->destroy);
}
END_TEST

/* A plugin built for ABI 1.0 loads on this 1.1 host; the 1.1 member reads as NULL. */
START_TEST(test_v1_0_plugin_loads)
{
    char path[PATH_LEN];
    const struct odsync_sink_descriptor *d;

    install_fixture("v1_0", path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_OK);
    ck_assert_uint_eq(plugin_abi_minor(plg), 0);
    d = plugin_descriptor(plg);
    ck_assert_uint_eq(d->struct_size, ODSYNC_SINK_DESCRIPTOR_V1_0_SIZE);
    ck_assert_str_eq(d->name, "v1_0");
    ck_assert_uint_eq(d->max_batch, 5);
    ck_assert_ptr_nonnull(d->destroy);
    ck_assert_ptr_null(d->setup);
}
END_TEST

START_TEST(test_short_struct)
{
    expect_refused("short_struct", ODSYNC_ABI,
                   "short_struct.so: descriptor struct_size 40 is smaller than ABI 1.0's 96");
}
END_TEST

START_TEST(test_missing_entry)
{
    expect_refused("no_entry", ODSYNC_ABI,
                   "no_entry.so: no odsync_sink_entry_v1 symbol: not an odsync sink plugin");
}
END_TEST

START_TEST(test_null_entry)
{
    expect_refused("null_entry", ODSYNC_ABI, "null_entry.so: odsync_sink_entry_v1 returned NULL");
}
END_TEST

START_TEST(test_missing_callback)
{
    expect_refused("no_callbacks", ODSYNC_ABI,
                   "no_callbacks.so: descriptor callback send_batch is NULL");
}
END_TEST

START_TEST(test_bad_name)
{
    expect_refused("bad_name", ODSYNC_ABI,
                   "bad_name.so: descriptor name \"Bad Name!\" is not [a-z0-9_-]{1,32}");
}
END_TEST

START_TEST(test_zero_batch)
{
    expect_refused("zero_batch", ODSYNC_ABI, "zero_batch.so: descriptor max_batch 0 must be >= 1");
}
END_TEST

/* ---- files and permissions ---------------------------------------------------------- */

START_TEST(test_world_writable_file)
{
    char path[PATH_LEN];
    install_fixture_in(tmp, "good", 0666, path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_ABI);
    ck_assert_ptr_null(plg);
    ck_assert_str_eq(err,
                     "good.so: refusing to load: file is writable by group or others (mode 0666)");
}
END_TEST

START_TEST(test_group_writable_dir)
{
    char path[PATH_LEN], expected[ERR_LEN];
    install_fixture("good", path);
    ck_assert_int_eq(chmod(tmp, 0775), 0);
    ck_assert_int_eq(util_fmt(expected, sizeof(expected),
                              "good.so: refusing to load: directory %s is writable by group or "
                              "others",
                              tmp),
                     ODSYNC_OK);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_ABI);
    ck_assert_ptr_null(plg);
    ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(test_missing_file)
{
    char path[PATH_LEN];
    join(path, tmp, "missing.so");
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_IO);
    ck_assert_ptr_null(plg);
    ck_assert_str_eq(err, "missing.so: cannot load: No such file or directory");
}
END_TEST

START_TEST(test_not_regular_file)
{
    char path[PATH_LEN];
    make_subdir("dir.so", path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_ABI);
    ck_assert_ptr_null(plg);
    ck_assert_str_eq(err, "dir.so: refusing to load: not a regular file");
}
END_TEST

START_TEST(test_not_a_shared_object)
{
    char *path = tu_write_file(tmp, "junk.so", "this is not an ELF file\n");
    const char *prefix = "junk.so: dlopen failed: ";
    ck_assert_int_eq(chmod(path, 0755), 0);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_ABI);
    ck_assert_ptr_null(plg);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0 && strlen(err) > strlen(prefix),
                  "unexpected message: %s", err);
    free(path);
}
END_TEST

/* ---- instances: create and settings ------------------------------------------------- */

START_TEST(test_failing_create)
{
    char path[PATH_LEN];
    install_fixture("failing_create", path);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_OK);
    create_sink("{}", ODSYNC_CONFIG,
                "sinks.crm: plugin \"failing_create\" create failed (CONFIG): cannot reach "
                "license server");
}
END_TEST

START_TEST(test_settings_unknown_key)
{
    open_good();
    create_sink("{\"account\": \"acme\", \"tokn\": \"${" TOKEN_ENV "}\"}", ODSYNC_CONFIG,
                "sinks.crm.tokn: unknown setting for plugin \"good\" (known: account, token)");
}
END_TEST

START_TEST(test_settings_missing_required)
{
    open_good();
    create_sink("{}", ODSYNC_CONFIG, "sinks.crm.account: required by plugin \"good\"");
}
END_TEST

START_TEST(test_settings_wrong_type)
{
    open_good();
    create_sink("{\"account\": 42}", ODSYNC_CONFIG,
                "sinks.crm.account: expected a string, got number");
}
END_TEST

START_TEST(test_settings_literal_secret)
{
    open_good();
    create_sink("{\"account\": \"acme\", \"token\": \"hunter2-literal\"}", ODSYNC_CONFIG,
                "sinks.crm.token: secrets must be \"${ENV_NAME}\" or \"file:/path\", not a "
                "literal value");
    ck_assert_ptr_null(strstr(err, "hunter2"));
}
END_TEST

START_TEST(test_settings_secret_env_unset)
{
    open_good();
    ck_assert_int_eq(unsetenv(TOKEN_ENV), 0);
    create_sink("{\"account\": \"acme\", \"token\": \"${" TOKEN_ENV "}\"}", ODSYNC_CONFIG,
                "sinks.crm.token: environment variable " TOKEN_ENV " is not set");
}
END_TEST

START_TEST(test_settings_secret_from_env)
{
    static const char secret[] = "s3cr3t-t0ken-value"; /* 18 bytes */
    struct odsync_record r1 = {.struct_size = sizeof(struct odsync_record),
                               .kind = ODSYNC_KIND_CONTACT,
                               .key = "od:main-st:1042",
                               .office = "main-st",
                               .version = 1,
                               .json = "{}",
                               .json_len = 2};
    struct odsync_record r2 = r1;
    const struct odsync_record *recs[2] = {&r1, &r2};
    struct host_result results[2];
    struct host_sink *s;
    size_t i;

    r2.kind = ODSYNC_KIND_TASK;
    r2.key = "od:main-st:task:7";
    open_good();
    ck_assert_int_eq(setenv(TOKEN_ENV, secret, 1), 0);
    s = create_sink("{\"account\": \"acme\", \"token\": \"${" TOKEN_ENV "}\"}", ODSYNC_OK, NULL);
    ck_assert_str_eq(host_sink_name(s), "crm");
    ck_assert_str_eq(host_sink_descriptor(s)->name, "good");
    ck_assert_int_eq(host_sink_counter(s, "created"), 1);
    ck_assert_int_eq(host_sink_send(s, recs, 2, results), ODSYNC_OK);
    ck_assert_int_eq(host_sink_counter(s, "sent"), 2);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(results[i].status, ODSYNC_OK);
        ck_assert_int_eq(results[i].retry_after_ms, -1);
        ck_assert_str_eq(results[i].detail, "account=acme secret-len=18");
    }
    ck_assert_str_eq(results[0].remote_id, "good:od:main-st:1042");
    ck_assert_str_eq(results[1].remote_id, "good:od:main-st:task:7");
    host_results_clear(results, 2);
    host_sink_destroy(s);
}
END_TEST

/* ---- plugin_find -------------------------------------------------------------------- */

START_TEST(test_find_bare_name)
{
    char a[PATH_LEN], b[PATH_LEN], copy[PATH_LEN], expected[ERR_LEN];
    char *dirs[2] = {a, b};
    char *found = NULL;

    make_subdir("a", a);
    make_subdir("b", b);
    install_fixture_in(b, "good", 0755, copy);
    ck_assert_int_eq(plugin_find(dirs, 2, "good", &found, err, sizeof(err)), ODSYNC_OK);
    ck_assert_str_eq(found, copy);
    ck_assert_int_eq(plugin_open(found, &plg, err, sizeof(err)), ODSYNC_OK);
    ck_assert_str_eq(plugin_descriptor(plg)->name, "good");
    util_free(found);

    found = NULL;
    ck_assert_int_eq(util_fmt(expected, sizeof(expected),
                              "plugin \"nosuch\": no nosuch.so in plugin_dirs (%s, %s)", a, b),
                     ODSYNC_OK);
    ck_assert_int_eq(plugin_find(dirs, 2, "nosuch", &found, err, sizeof(err)), ODSYNC_NOT_FOUND);
    ck_assert_ptr_null(found);
    ck_assert_str_eq(err, expected);

    ck_assert_int_eq(plugin_find(dirs, 2, "Bad Name!", &found, err, sizeof(err)), ODSYNC_NOT_FOUND);
    ck_assert_ptr_null(found);
    ck_assert_str_eq(err, "\"Bad Name!\" is not a plugin name ([a-z0-9_-]{1,32}) or a path");
}
END_TEST

START_TEST(test_find_path_outside_dirs)
{
    char a[PATH_LEN], b[PATH_LEN], inside[PATH_LEN], outside[PATH_LEN], dotdot[PATH_LEN],
        link[PATH_LEN], expected[ERR_LEN];
    char *dirs[1] = {a};
    char *found = NULL;

    make_subdir("a", a);
    make_subdir("b", b);
    install_fixture_in(a, "good", 0755, inside);
    install_fixture_in(b, "good", 0755, outside);

    ck_assert_int_eq(plugin_find(dirs, 1, inside, &found, err, sizeof(err)), ODSYNC_OK);
    ck_assert_str_eq(found, inside);
    util_free(found);

    found = NULL;
    ck_assert_int_eq(util_fmt(expected, sizeof(expected),
                              "%s: not inside any configured plugin directory (plugin_dirs)",
                              outside),
                     ODSYNC_OK);
    ck_assert_int_eq(plugin_find(dirs, 1, outside, &found, err, sizeof(err)), ODSYNC_NOT_FOUND);
    ck_assert_ptr_null(found);
    ck_assert_str_eq(err, expected);

    /* a/../b/good.so: spelled inside a, resolves outside */
    ck_assert_int_eq(util_fmt(dotdot, sizeof(dotdot), "%s/../b/good.so", a), ODSYNC_OK);
    ck_assert_int_eq(util_fmt(expected, sizeof(expected),
                              "%s: not inside any configured plugin directory (plugin_dirs)",
                              dotdot),
                     ODSYNC_OK);
    ck_assert_int_eq(plugin_find(dirs, 1, dotdot, &found, err, sizeof(err)), ODSYNC_NOT_FOUND);
    ck_assert_ptr_null(found);
    ck_assert_str_eq(err, expected);

    /* a/link.so -> b/good.so: a symlink out of the directory */
    join(link, a, "link.so");
    ck_assert_int_eq(symlink(outside, link), 0);
    ck_assert_int_eq(util_fmt(expected, sizeof(expected),
                              "%s: not inside any configured plugin directory (plugin_dirs)", link),
                     ODSYNC_OK);
    ck_assert_int_eq(plugin_find(dirs, 1, link, &found, err, sizeof(err)), ODSYNC_NOT_FOUND);
    ck_assert_ptr_null(found);
    ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(test_bad_config_spec)
{
    expect_refused("bad_spec", ODSYNC_ABI,
                   "bad_spec.so: config[1] (colour): type 9 is not a known type");
}
END_TEST

/* A symlink in a safe directory pointing at a plugin inside a directory others can write:
 * the resolved file's directory is what is checked, so it is refused. */
START_TEST(test_symlink_into_writable_dir)
{
    char safe[PATH_LEN], open_dir[PATH_LEN], target[PATH_LEN], link[PATH_LEN];
    char expected[ERR_LEN], real[PATH_LEN];
    make_subdir("safe", safe);
    make_subdir("open", open_dir);
    install_fixture_in(open_dir, "good", 0755, target);
    ck_assert_int_eq(chmod(open_dir, 0777), 0);
    join(link, safe, "good.so");
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_ptr_nonnull(realpath(open_dir, real));
    ck_assert_int_eq(util_fmt(expected, sizeof(expected),
                              "good.so: refusing to load: directory %s is writable by group or "
                              "others",
                              real),
                     ODSYNC_OK);
    ck_assert_int_eq(plugin_open(link, &plg, err, sizeof(err)), ODSYNC_ABI);
    ck_assert_ptr_null(plg);
    ck_assert_str_eq(err, expected);
}
END_TEST

/* A plugin file owned by another user is refused even with safe modes. */
START_TEST(test_foreign_owner)
{
    char path[PATH_LEN], expected[ERR_LEN];
    install_fixture("good", path);
    ck_assert_int_eq(chown(path, 12345, 12345), 0); /* the suite runs as root (CI, sessions) */
    ck_assert_int_eq(util_fmt(expected, sizeof(expected),
                              "good.so: refusing to load: file is owned by uid 12345, not root "
                              "or uid %u",
                              (unsigned)geteuid()),
                     ODSYNC_OK);
    ck_assert_int_eq(plugin_open(path, &plg, err, sizeof(err)), ODSYNC_ABI);
    ck_assert_ptr_null(plg);
    ck_assert_str_eq(err, expected);
}
END_TEST

static Suite *abi_suite(void)
{
    Suite *s = suite_create("abi");
    TCase *load = tcase_create("load");
    TCase *files = tcase_create("files");
    TCase *inst = tcase_create("instances");
    TCase *find = tcase_create("find");

    tcase_add_checked_fixture(load, setup, teardown);
    tcase_add_test(load, test_good_loads);
    tcase_add_test(load, test_bad_magic);
    tcase_add_test(load, test_newer_major);
    tcase_add_test(load, test_newer_minor_loads);
    tcase_add_test(load, test_short_struct);
    tcase_add_test(load, test_v1_0_plugin_loads);
    tcase_add_test(load, test_missing_entry);
    tcase_add_test(load, test_null_entry);
    tcase_add_test(load, test_missing_callback);
    tcase_add_test(load, test_bad_name);
    tcase_add_test(load, test_zero_batch);
    tcase_add_test(load, test_bad_config_spec);
    suite_add_tcase(s, load);

    tcase_add_checked_fixture(files, setup, teardown);
    tcase_add_test(files, test_world_writable_file);
    tcase_add_test(files, test_group_writable_dir);
    tcase_add_test(files, test_symlink_into_writable_dir);
    tcase_add_test(files, test_foreign_owner);
    tcase_add_test(files, test_missing_file);
    tcase_add_test(files, test_not_regular_file);
    tcase_add_test(files, test_not_a_shared_object);
    suite_add_tcase(s, files);

    tcase_add_checked_fixture(inst, setup, teardown);
    tcase_add_test(inst, test_failing_create);
    tcase_add_test(inst, test_settings_unknown_key);
    tcase_add_test(inst, test_settings_missing_required);
    tcase_add_test(inst, test_settings_wrong_type);
    tcase_add_test(inst, test_settings_literal_secret);
    tcase_add_test(inst, test_settings_secret_env_unset);
    tcase_add_test(inst, test_settings_secret_from_env);
    suite_add_tcase(s, inst);

    tcase_add_checked_fixture(find, setup, teardown);
    tcase_add_test(find, test_find_bare_name);
    tcase_add_test(find, test_find_path_outside_dirs);
    suite_add_tcase(s, find);
    return s;
}

ODSYNC_TEST_MAIN(abi_suite)
