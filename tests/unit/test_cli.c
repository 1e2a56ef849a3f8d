/*
 * test_cli.c: the odsync binary as an operator meets it — exit codes, verbatim errors,
 * plugin description — run as a real child process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "testutil.h"

static char *dir;
static char *odsync;

static void setup(void)
{
    dir = tu_mkdtemp();
    odsync = tu_build_path("odsync");
    setenv("T_OD_DEV", "cli-developer-key-1", 1);
    setenv("T_OD_CUST", "cli-customer-key-2", 1);
    setenv("T_CRM_TOKEN", "cli-crm-token-3", 1);
}

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
    free(odsync);
}

/* Write a config with the given sink block, office timezone and routes; returns its path. */
static char *write_config(const char *plugin_dir, const char *sinks, const char *tz,
                          const char *routes)
{
    char text[4096];
    snprintf(
        text, sizeof(text),
        "{\n  // a comment\n  \"store\": \"%s/odsync.db\",\n  \"plugin_dirs\": [\"%s\"],\n"
        "  \"sinks\": %s,\n  \"offices\": [{\"id\": \"main-st\", \"name\": \"Main\","
        " \"timezone\": \"%s\",\n    \"opendental\": {\"base_url\": \"https://od.invalid/api/v1\","
        " \"developer_key\": \"${T_OD_DEV}\", \"customer_key\": \"${T_OD_CUST}\"},\n"
        "    \"routes\": %s}]\n}\n",
        dir, plugin_dir, sinks, tz, routes);
    return tu_write_file(dir, "odsync.json", text);
}

static const char *rest_sink = "{\"crm\": {\"plugin\": \"rest\", \"base_url\": "
                               "\"http://127.0.0.1:9\", \"token\": \"${T_CRM_TOKEN}\"}}";

START_TEST(version_prints_abi)
{
    const char *argv[] = {odsync, "version", NULL};
    char *out = NULL;
    ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
    ck_assert_str_eq(out, "odsync " ODSYNC_VERSION " (sink ABI 1.1)\n");
    free(out);
}
END_TEST

START_TEST(unknown_command_is_usage_error)
{
    const char *argv[] = {odsync, "bogus", NULL};
    char *err = NULL;
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 2);
    ck_assert_str_eq(err, "odsync: unknown command \"bogus\" (see odsync help)\n");
    free(err);
}
END_TEST

START_TEST(config_error_is_verbatim)
{
    char *plugins = tu_build_path("plugins");
    char *cfg = write_config(plugins, rest_sink, "America/Chicgo", "{\"contact\": [\"crm\"]}");
    const char *argv[] = {odsync, "check-config", "--config", cfg, NULL};
    char *err = NULL, want[1024];
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 3);
    snprintf(want, sizeof(want),
             "odsync: %s: offices[0].timezone: unknown time zone \"America/Chicgo\"\n", cfg);
    ck_assert_str_eq(err, want);
    free(err);
    free(cfg);
    free(plugins);
}
END_TEST

START_TEST(literal_secret_refused_and_not_echoed)
{
    char *plugins = tu_build_path("plugins");
    char *cfg =
        write_config(plugins,
                     "{\"crm\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:9\","
                     " \"token\": \"hunter2-literal-token\"}}",
                     "America/Chicago", "{\"contact\": [\"crm\"]}");
    const char *argv[] = {odsync, "check-config", "--config", cfg, NULL};
    char *err = NULL;
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 3);
    ck_assert_ptr_nonnull(strstr(err, "sinks.crm.token: secrets must be"));
    ck_assert_ptr_null(strstr(err, "hunter2"));
    free(err);
    free(cfg);
    free(plugins);
}
END_TEST

START_TEST(good_config_checks_ok)
{
    char *plugins = tu_build_path("plugins");
    char *cfg = write_config(plugins, rest_sink, "America/Chicago", "{\"contact\": [\"crm\"]}");
    const char *argv[] = {odsync, "check-config", "--config", cfg, NULL};
    char *out = NULL, want[1024];
    ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
    snprintf(want, sizeof(want), "%s: ok (1 offices, 1 sinks, 1 plugins)\n", cfg);
    ck_assert_str_eq(out, want);
    free(out);
    free(cfg);
    free(plugins);
}
END_TEST

START_TEST(config_from_environment_variable)
{
    char *plugins = tu_build_path("plugins");
    char *cfg = write_config(plugins, rest_sink, "America/Chicago", "{\"contact\": [\"crm\"]}");
    char env[1200];
    const char *argv[] = {odsync, "check-config", NULL};
    const char *envp[] = {env, NULL};
    snprintf(env, sizeof(env), "ODSYNC_CONFIG=%s", cfg);
    ck_assert_int_eq(tu_run(argv, envp, NULL, NULL), 0);
    free(cfg);
    free(plugins);
}
END_TEST

START_TEST(world_writable_plugin_refused)
{
    char *rest = tu_build_path("plugins/rest.so"), *pdir, cmd[2048];
    char *cfg, *err = NULL;
    size_t n = strlen(dir) + 16;
    pdir = malloc(n);
    snprintf(pdir, n, "%s/plugins", dir);
    ck_assert_int_eq(mkdir(pdir, 0755), 0);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s/rest.so'", rest, pdir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/rest.so", pdir);
    ck_assert_int_eq(chmod(cmd, 0666), 0);
    cfg = write_config(pdir, rest_sink, "America/Chicago", "{\"contact\": [\"crm\"]}");
    {
        const char *argv[] = {odsync, "check-config", "--config", cfg, NULL};
        char want[2048];
        ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 4);
        snprintf(want, sizeof(want),
                 "odsync: %s: sinks.crm.plugin: rest.so: refusing to load: file is writable by "
                 "group or others (mode 0666)\n",
                 cfg);
        ck_assert_str_eq(err, want);
    }
    free(err);
    free(cfg);
    free(pdir);
    free(rest);
}
END_TEST

START_TEST(missing_plugin_named)
{
    char *plugins = tu_build_path("plugins");
    char *cfg = write_config(plugins, "{\"crm\": {\"plugin\": \"hubspt\"}}", "America/Chicago",
                             "{\"contact\": [\"crm\"]}");
    const char *argv[] = {odsync, "check-config", "--config", cfg, NULL};
    char *err = NULL, want[2048];
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 3);
    snprintf(want, sizeof(want),
             "odsync: %s: sinks.crm.plugin: plugin \"hubspt\": no hubspt.so in plugin_dirs (%s)\n",
             cfg, plugins);
    ck_assert_str_eq(err, want);
    free(err);
    free(cfg);
    free(plugins);
}
END_TEST

START_TEST(describe_rest_marks_secrets)
{
    char *plugins = tu_build_path("plugins");
    const char *argv[] = {odsync, "plugins", "describe", "rest", "--plugin-dir", plugins, NULL};
    const char *jargv[] = {odsync,         "plugins", "describe", "rest",
                           "--plugin-dir", plugins,   "--json",   NULL};
    char *out = NULL, *line;
    cJSON *j, *cfg, *e;
    int found = 0;
    ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "name:         rest\n"));
    ck_assert_ptr_nonnull(strstr(out, "abi:          1.1\n"));
    ck_assert_ptr_nonnull(strstr(out, "capabilities: contacts, tasks, sms, email\n"));
    line = strstr(out, "\n  token ");
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(strstr(line, "secret"));
    free(out);
    ck_assert_int_eq(tu_run(jargv, NULL, &out, NULL), 0);
    j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "rest");
    cfg = cJSON_GetObjectItem(j, "config");
    cJSON_ArrayForEach(e, cfg)
    {
        if (strcmp(cJSON_GetObjectItem(e, "name")->valuestring, "token") == 0) {
            found = 1;
            ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(e, "secret")));
        }
    }
    ck_assert_int_eq(found, 1);
    cJSON_Delete(j);
    free(out);
    free(plugins);
}
END_TEST

START_TEST(plugins_list_json)
{
    char *plugins = tu_build_path("plugins");
    const char *argv[] = {odsync, "plugins", "list", "--plugin-dir", plugins, "--json", NULL};
    char *out = NULL;
    cJSON *j;
    ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
    j = cJSON_Parse(out);
    ck_assert(cJSON_IsArray(j));
    ck_assert_int_ge(cJSON_GetArraySize(j), 1);
    cJSON_Delete(j);
    free(out);
    free(plugins);
}
END_TEST

START_TEST(help_for_every_command)
{
    const char *cmds[] = {"run",    "check-config", "plugins", "import",
                          "status", "version",      "dry-run", "optout",
                          "sync",   "dlq",          "sinks",   "subscriptions"};
    size_t i;
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *argv[] = {odsync, cmds[i], "--help", NULL};
        char *out = NULL;
        ck_assert_int_eq(tu_run(argv, NULL, &out, NULL), 0);
        ck_assert_ptr_nonnull(strstr(out, "usage: odsync "));
        free(out);
    }
}
END_TEST

START_TEST(unknown_option_is_usage_error)
{
    const char *argv[] = {odsync, "run", "--onse", NULL};
    char *err = NULL;
    ck_assert_int_eq(tu_run(argv, NULL, NULL, &err), 2);
    ck_assert_str_eq(err, "odsync: unknown option --onse (see odsync help)\n");
    free(err);
}
END_TEST

/* dry-run: a day in the past and a malformed date are usage errors naming the problem; today
 * on an empty store is an empty plan, as JSON. */
START_TEST(dry_run_dates_and_json)
{
    char *plugins = tu_build_path("plugins");
    char *cfg = write_config(plugins, rest_sink, "America/Chicago",
                             "{\"contact\": [\"crm\"], \"sms\": [\"crm\"]}");
    const char *past[] = {odsync, "dry-run", "--date", "2001-01-01", "--config", cfg, NULL};
    const char *bad[] = {odsync, "dry-run", "--date", "2026-13-45", "--config", cfg, NULL};
    const char *json[] = {odsync, "dry-run", "--json", "--config", cfg, NULL};
    char *out = NULL, *err = NULL;
    cJSON *j;

    ck_assert_int_eq(tu_run(past, NULL, NULL, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "--date 2001-01-01 is in the past for office main-st"));
    free(err);
    err = NULL;
    ck_assert_int_eq(tu_run(bad, NULL, NULL, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "--date: expected YYYY-MM-DD, got \"2026-13-45\""));
    free(err);
    ck_assert_int_eq(tu_run(json, NULL, &out, NULL), 0);
    j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(strlen(cJSON_GetObjectItem(j, "date")->valuestring), 10);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "messages")), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "summary"), "sent")->valueint, 0);
    cJSON_Delete(j);
    free(out);
    free(cfg);
    free(plugins);
}
END_TEST

/* optout: a staff opt-out is recorded once, normalised, listed with its source, lifted only
 * by an explicit remove; a bad address or a missing office is a usage error. */
START_TEST(optout_add_list_remove)
{
    char *plugins = tu_build_path("plugins");
    char *cfg = write_config(plugins, rest_sink, "America/Chicago", "{\"contact\": [\"crm\"]}");
    const char *add[] = {odsync,     "optout",  "add",      "sms", "(503) 555-0199",
                         "--office", "main-st", "--config", cfg,   NULL};
    const char *list[] = {odsync, "optout", "list", "--json", "--config", cfg, NULL};
    const char *rm[] = {odsync,     "optout",  "remove",   "sms", "503.555.0199",
                        "--office", "main-st", "--config", cfg,   NULL};
    const char *bad[] = {odsync,     "optout",  "add",      "sms", "call me",
                         "--office", "main-st", "--config", cfg,   NULL};
    const char *no_office[] = {odsync,        "optout",   "add", "email",
                               "a@b.example", "--config", cfg,   NULL};
    char *out = NULL;
    cJSON *j, *row;

    ck_assert_int_eq(tu_run(add, NULL, &out, NULL), 0);
    ck_assert_str_eq(out, "sms opted out (*): recorded\n");
    free(out);
    ck_assert_int_eq(tu_run(add, NULL, &out, NULL), 0);
    ck_assert_str_eq(out, "sms opted out (*): already so\n");
    free(out);
    ck_assert_int_eq(tu_run(list, NULL, &out, NULL), 0);
    j = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetArraySize(j), 1);
    row = cJSON_GetArrayItem(j, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(row, "address")->valuestring, "+15035550199");
    ck_assert_str_eq(cJSON_GetObjectItem(row, "state")->valuestring, "opt_out");
    ck_assert_str_eq(cJSON_GetObjectItem(row, "source")->valuestring, "staff");
    cJSON_Delete(j);
    free(out);
    ck_assert_int_eq(tu_run(rm, NULL, &out, NULL), 0);
    ck_assert_str_eq(out, "sms opted back in (*): recorded\n");
    free(out);
    ck_assert_int_eq(tu_run(list, NULL, &out, NULL), 0);
    j = cJSON_Parse(out);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "state")->valuestring, "opt_in");
    cJSON_Delete(j);
    free(out);
    ck_assert_int_eq(tu_run(bad, NULL, NULL, NULL), 2);
    ck_assert_int_eq(tu_run(no_office, NULL, NULL, NULL), 2);
    free(cfg);
    free(plugins);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, version_prints_abi);
    tcase_add_test(tc, unknown_command_is_usage_error);
    tcase_add_test(tc, config_error_is_verbatim);
    tcase_add_test(tc, literal_secret_refused_and_not_echoed);
    tcase_add_test(tc, good_config_checks_ok);
    tcase_add_test(tc, config_from_environment_variable);
    tcase_add_test(tc, world_writable_plugin_refused);
    tcase_add_test(tc, missing_plugin_named);
    tcase_add_test(tc, describe_rest_marks_secrets);
    tcase_add_test(tc, plugins_list_json);
    tcase_add_test(tc, help_for_every_command);
    tcase_add_test(tc, unknown_option_is_usage_error);
    tcase_add_test(tc, dry_run_dates_and_json);
    tcase_add_test(tc, optout_add_list_remove);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(cli_suite)
