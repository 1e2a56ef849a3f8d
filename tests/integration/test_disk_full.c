/*
 * test_disk_full: the whole daemon on a full disk. `odsync run` starts with a file-size limit
 * (RLIMIT_FSIZE, SIGXFSZ ignored) too small for its store, so SQLite's writes fail while it
 * ingests odsim's practice (EFBIG, which SQLite reports as a disk I/O error; ENOSPC would read
 * "database or disk is full"): the daemon must stay up and say so in its log. Then the limit is
 * lifted (prlimit on the running process, as an operator freeing space): it must resume on its own
 * and deliver every contact to the CRM exactly once.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "odsim_harness.h"
#include "testutil.h"

#define OD_DEV    "NFF6i0KrXrxDkZHt"
#define OD_CUST   "VzkmZEaUWOjnQX2z"
#define CRM_TOKEN "diskfull-crm-token-4e1a"
#define PATIENTS  "1500"
#define LIMIT     (512 * 1024) /* bytes: far less than the store needs */

static char *dir;
static pid_t sim_pid = -1, crm_pid = -1, od_pid = -1;
static int sim_port, crm_port;
static struct http_client *cli;

static void setup(void)
{
    char *fake = tu_build_path("contrib/fakes/fake_rest_crm");
    const char *crm_argv[] = {fake, "--listen", "127.0.0.1:0", "--token", CRM_TOKEN, NULL};
    dir = tu_mkdtemp();
    setenv("D_OD_DEV", OD_DEV, 1);
    setenv("D_OD_CUST", OD_CUST, 1);
    setenv("D_CRM_TOKEN", CRM_TOKEN, 1);
    http_global_init();
    cli = http_client_create();
    sim_pid = odh_start(PATIENTS, "5", "2026-05-04 10:00:00", NULL, NULL, &sim_port);
    crm_pid = tu_spawn_server(crm_argv, NULL, &crm_port);
    free(fake);
}

static void teardown(void)
{
    if (od_pid > 0)
        tu_stop(od_pid);
    if (sim_pid > 0)
        tu_stop(sim_pid);
    if (crm_pid > 0)
        tu_stop(crm_pid);
    od_pid = sim_pid = crm_pid = -1;
    http_client_destroy(cli);
    http_global_cleanup();
    tu_rmrf(dir);
    free(dir);
}

/* Start `odsync run` with RLIMIT_FSIZE soft limit `limit` (hard: unlimited) and SIGXFSZ
 * ignored, so a write past the limit fails with EFBIG instead of killing it. */
static pid_t start_daemon(const char *cfg, const char *log_path)
{
    char *odsync = tu_build_path("odsync");
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {LIMIT, RLIM_INFINITY};
        const char *argv[] = {odsync, "run", "--config", cfg, NULL};
        FILE *out = freopen(log_path, "a", stdout);
        if (out == NULL || dup2(fileno(stdout), 2) < 0)
            _exit(126);
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(125);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    free(odsync);
    return pid;
}

/* Contacts the fake CRM holds. */
static int crm_contacts(void)
{
    char path[64], auth[96];
    cJSON *st, *n;
    int count;
    snprintf(path, sizeof(path), "/_state?summary=1");
    snprintf(auth, sizeof(auth), "Bearer %s", CRM_TOKEN);
    st = odh_json(odh_call(cli, crm_port, "GET", path, NULL, auth, NULL), 200);
    n = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "entities"),
                                         "contacts"),
        "count");
    count = cJSON_IsNumber(n) ? n->valueint : 0;
    cJSON_Delete(st);
    return count;
}

/* Wait up to seconds for the log to contain needle; 1 when it does. */
static int log_has(const char *log_path, const char *needle, int seconds)
{
    int i;
    for (i = 0; i < seconds * 10; i++) {
        char *text = tu_read_file(log_path);
        int found = text != NULL && strstr(text, needle) != NULL;
        free(text);
        if (found)
            return 1;
        usleep(100000);
    }
    return 0;
}

START_TEST(full_disk_then_space_again)
{
    char text[2048], *cfg, log_path[512];
    struct rlimit lifted = {RLIM_INFINITY, RLIM_INFINITY};
    int i, contacts = 0;

    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"listen\": \"127.0.0.1:0\","
             " \"plugin_dirs\": [\"%s/plugins\"], \"log\": {\"level\": \"warn\"},"
             " \"delivery\": {\"backoff_base_ms\": 100, \"backoff_cap_ms\": 1000},"
             " \"sinks\": {\"crm\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:%d\","
             " \"token\": \"${D_CRM_TOKEN}\", \"batch\": true}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\", \"timezone\": \"UTC\","
             " \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\", \"tier\": \"paid\","
             " \"min_interval_ms\": 0, \"sync_interval_s\": 1,"
             " \"developer_key\": \"${D_OD_DEV}\", \"customer_key\": \"${D_OD_CUST}\"},"
             " \"routes\": {\"contact\": [\"crm\"]}}]}\n",
             dir, tu_build_dir(), crm_port, sim_port);
    cfg = tu_write_file(dir, "odsync.json", text);
    snprintf(log_path, sizeof(log_path), "%s/odsync.log", dir);
    od_pid = start_daemon(cfg, log_path);

    /* The disk is full: SQLite says so, the daemon reports it and keeps running. */
    ck_assert_msg(log_has(log_path, "disk", 60), "the daemon never reported the full disk");
    sleep(2);
    ck_assert_int_eq(kill(od_pid, 0), 0);
    ck_assert_int_lt(crm_contacts(), 1500);

    /* Space again: the running daemon resumes by itself. */
    ck_assert_int_eq(prlimit(od_pid, RLIMIT_FSIZE, &lifted, NULL), 0);
    for (i = 0; i < 600 && contacts < 1500; i++) {
        usleep(100000);
        contacts = crm_contacts();
    }
    ck_assert_int_eq(contacts, 1500); /* every patient, each exactly once */
    ck_assert_int_eq(kill(od_pid, 0), 0);
    ck_assert_int_eq(tu_stop(od_pid), 0);
    od_pid = -1;
    free(cfg);
}
END_TEST

static Suite *disk_full_suite(void)
{
    Suite *s = suite_create("disk_full_daemon");
    TCase *tc = tcase_create("disk_full_daemon");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, full_disk_then_space_again);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(disk_full_suite)
