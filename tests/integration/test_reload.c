/*
 * test_reload: SIGHUP on the real daemon. A broken config file is refused with its error and
 * the daemon keeps serving on the old one; a good one is loaded after a drain (the listener
 * restarts); SIGTERM still exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char *dir, *log_path, *cfg_path;
static pid_t pid = -1;

static void setup(void)
{
    dir = tu_mkdtemp();
    setenv("R_OD_DEV", "reload-dev-key", 1);
    setenv("R_OD_CUST", "reload-customer-key", 1);
}

static void teardown(void)
{
    if (pid > 0)
        tu_stop(pid);
    pid = -1;
    tu_rmrf(dir);
    free(dir);
    free(log_path);
    free(cfg_path);
}

/* Write the config with log level level (or broken JSON when level is NULL). */
static void write_config(const char *level)
{
    char text[2048];
    if (level == NULL)
        snprintf(text, sizeof(text), "{\"store\": \"%s/odsync.db\", \"offices\": [ oops", dir);
    else
        snprintf(text, sizeof(text),
                 "{\"store\": \"%s/odsync.db\", \"listen\": \"127.0.0.1:0\","
                 " \"log\": {\"level\": \"%s\"}, \"plugin_dirs\": [],"
                 " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": \"UTC\","
                 " \"opendental\": {\"base_url\": \"http://127.0.0.1:9/api/v1\","
                 " \"developer_key\": \"${R_OD_DEV}\", \"customer_key\": \"${R_OD_CUST}\"},"
                 " \"routes\": {}}]}\n",
                 dir, level);
    free(cfg_path);
    cfg_path = tu_write_file(dir, "odsync.json", text);
}

/* Wait up to 10 s for the log to hold needle count times; returns how often it does. */
static int wait_log(const char *needle, int count)
{
    int i, n = 0;
    for (i = 0; i < 1000; i++) {
        char *text = tu_read_file(log_path);
        n = text ? tu_count(text, needle) : 0;
        free(text);
        if (n >= count)
            break;
        usleep(10000);
    }
    return n;
}

START_TEST(sighup_refuses_a_bad_config_and_loads_a_good_one)
{
    char *odsync = tu_build_path("odsync");
    const char *argv[] = {odsync, "run", "--deliver-only", "--config", NULL, NULL};
    write_config("info");
    argv[4] = cfg_path;
    log_path = malloc(strlen(dir) + 16);
    snprintf(log_path, strlen(dir) + 16, "%s/odsync.log", dir);
    pid = tu_spawn(argv, log_path);
    ck_assert_int_eq(wait_log(" running: 1 offices", 1), 1);

    write_config(NULL); /* an operator's typo */
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    ck_assert_int_eq(wait_log("reload refused, the running configuration stays", 1), 1);
    ck_assert_int_eq(kill(pid, 0), 0); /* still running */

    write_config("debug");
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    ck_assert_int_eq(wait_log("configuration reloaded from", 1), 1);
    ck_assert_int_eq(wait_log(" running: 1 offices", 2), 2); /* running again */
    ck_assert_int_eq(kill(pid, 0), 0);
    ck_assert_int_eq(tu_stop(pid), 0);
    pid = -1;
    free(odsync);
}
END_TEST

static Suite *reload_suite(void)
{
    Suite *s = suite_create("reload");
    TCase *tc = tcase_create("reload");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sighup_refuses_a_bad_config_and_loads_a_good_one);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(reload_suite)
