/*
 * test_config: config_load / config_parse — a full valid config, defaults, every error
 * message (asserted verbatim), secrets from the environment and from files, the shipped
 * examples, and a fail-Nth-allocation loop.
 *
 * Time zones come from a fixture zoneinfo directory ($TZDIR) so the tests do not depend on
 * the host's tzdata; one test uses the system database when it is installed.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define ORIGIN "odsync.json"

static char *tmp; /* per-test temporary directory */
static char errbuf[1024];

/* JSON in tests is written with ' for " (no JSON string here needs an apostrophe); J()
 * converts. Returns one of a few static buffers, reused round-robin. */
static const char *J(const char *s)
{
    static char bufs[8][16384];
    static int next;
    char *b = bufs[next++ % 8];
    size_t i;
    ck_assert_uint_lt(strlen(s), sizeof(bufs[0]));
    for (i = 0; s[i] != '\0'; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    b[i] = '\0';
    return b;
}

#define SINKS                                                                                      \
    "'sinks': {'crm': {'plugin': 'hubspot', 'token': '${HUBSPOT_TOKEN}'},"                         \
    " 'sms': {'plugin': 'twilio'}, 'email': {'plugin': 'sendgrid'}}"
#define OD                                                                                         \
    "'opendental': {'base_url': 'https://od.example/api/v1', 'developer_key': '${OD_DEV_KEY}',"    \
    " 'customer_key': '${OD_CUST_KEY}'}"
#define TZ_OK "'timezone': 'America/Chicago'"

/* A document with the standard sinks, the offices given and extra top-level members
 * (JSON with '). */
static const char *doc_extra(const char *offices, const char *extra)
{
    char tmpl[16384];
    ck_assert(util_fmt(tmpl, sizeof(tmpl), "{" SINKS ", 'offices': [%s]%s%s}", offices,
                       extra[0] ? ", " : "", extra) == ODSYNC_OK);
    return J(tmpl);
}

/* doc_extra without extra members. */
static const char *doc(const char *offices)
{
    return doc_extra(offices, "");
}

/* Parse text (") as ORIGIN; the config is freed. Returns the status; errbuf has the error. */
static int parse_rc(const char *text)
{
    struct config *cfg = NULL;
    int rc = config_parse(text, strlen(text), ORIGIN, &cfg, errbuf, sizeof(errbuf));
    if (rc == ODSYNC_OK) {
        ck_assert_ptr_nonnull(cfg);
        ck_assert_str_eq(errbuf, "");
    } else {
        ck_assert_ptr_null(cfg);
    }
    config_free(cfg);
    return rc;
}

/* Parse text (") that must fail with ODSYNC_CONFIG; returns the message. */
static const char *parse_err(const char *text)
{
    ck_assert_int_eq(parse_rc(text), ODSYNC_CONFIG);
    return errbuf;
}

/* Parse text (") that must succeed; caller frees with config_free. */
static struct config *parse_ok(const char *text)
{
    struct config *cfg = NULL;
    int rc = config_parse(text, strlen(text), ORIGIN, &cfg, errbuf, sizeof(errbuf));
    ck_assert_msg(rc == ODSYNC_OK, "rc %d: %s", rc, errbuf);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

/* mkdir -p style for one level under tmp. */
static void mkdir_under(const char *rel)
{
    char path[1024];
    ck_assert(util_fmt(path, sizeof(path), "%s/%s", tmp, rel) == ODSYNC_OK);
    ck_assert_int_eq(mkdir(path, 0700), 0);
}

/* Write a file under tmp (mode 0600) and return its path in a static buffer. */
static const char *write_tmp(const char *name, const char *text)
{
    static char path[1024];
    char *p = tu_write_file(tmp, name, text);
    ck_assert(util_fmt(path, sizeof(path), "%s", p) == ODSYNC_OK);
    free(p);
    return path;
}

/* Copy a real zone file from the system's tzdata into tmp/zoneinfo/name. */
static void copy_zone(const char *name)
{
    char src[512], rel[512], *text = NULL;
    size_t len = 0;
    FILE *f;
    ck_assert(util_fmt(src, sizeof(src), "/usr/share/zoneinfo/%s", name) == ODSYNC_OK);
    ck_assert_int_eq(util_read_file(src, 1u << 20, &text, &len), ODSYNC_OK);
    ck_assert(util_fmt(rel, sizeof(rel), "%s/zoneinfo/%s", tmp, name) == ODSYNC_OK);
    f = fopen(rel, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    util_free(text);
}

static void setup(void)
{
    char tzdir[1024];
    util_init_cjson_hooks();
    tmp = tu_mkdtemp();
    mkdir_under("zoneinfo");
    mkdir_under("zoneinfo/America");
    copy_zone("America/Chicago");
    copy_zone("America/New_York");
    copy_zone("UTC");
    write_tmp("zoneinfo/zone.tab", "# not a zone file\n");
    ck_assert(util_fmt(tzdir, sizeof(tzdir), "%s/zoneinfo", tmp) == ODSYNC_OK);
    ck_assert_int_eq(setenv("TZDIR", tzdir, 1), 0);
    ck_assert_int_eq(setenv("OD_DEV_KEY", "dev-key-0123456789", 1), 0);
    ck_assert_int_eq(setenv("OD_CUST_KEY", "cust-key-abcdefgh", 1), 0);
    errbuf[0] = '\0';
}

static void teardown(void)
{
    util_fail_alloc_after(0);
    log_shutdown();
    tu_rmrf(tmp);
    free(tmp);
    tmp = NULL;
}

/* ---- valid configs ------------------------------------------------------------------- */

static const char full_config[] =
    "// odsync test config\n"
    "{\n"
    "  /* storage */ \"store\": \"/srv/odsync/test.db\",\n"
    "  \"listen\": \"0.0.0.0:9000\", // all interfaces\n"
    "  \"admin_token\": \"${ODSYNC_ADMIN_TOKEN}\",\n"
    "  \"log\": {\"level\": \"debug\", \"format\": \"json\"},\n"
    "  \"plugin_dirs\": [\"/opt/odsync/plugins\", \"/usr/lib/odsync/plugins\"],\n"
    "  \"sinks\": {\n"
    "    \"crm\": {\"plugin\": \"hubspot\", \"token\": \"${HUBSPOT_TOKEN}\",\n"
    "             \"batch\": {\"size\": 100, \"tags\": [\"a\", \"b\"]}},\n"
    "    \"sms\": {\"plugin\": \"twilio\", \"account_sid\": \"${TWILIO_SID}\"},\n"
    "    \"email\": {\"plugin\": \"/opt/odsync/plugins/sendgrid.so\"}\n"
    "  },\n"
    "  \"offices\": [\n"
    "    {\"id\": \"main-st\", \"name\": \"Main Street Dental\", \"phone\": \"(555) 010-1000\",\n"
    "     \"timezone\": \"America/Chicago\",\n"
    "     \"opendental\": {\"base_url\": \"https://api.opendental.com/api/v1\",\n"
    "                    \"tier\": \"paid\",\n"
    "                    \"developer_key\": \"${OD_DEV_KEY}\",\n"
    "                    \"customer_key\": \"${OD_CUST_KEY}\"},\n"
    "     \"routes\": {\"contact\": [\"crm\"], \"task\": [\"crm\"], \"sms\": [\"sms\"],\n"
    "                \"email\": [\"email\", \"crm\"]}},\n"
    "    /* second office:\n"
    "       defaults for tier, phone and routes */\n"
    "    {\"id\": \"lake_2\", \"name\": \"Lakeside\", \"timezone\": \"America/New_York\",\n"
    "     \"opendental\": {\"base_url\": \"http://10.0.0.5:30223/api/v1\",\n"
    "                    \"developer_key\": \"${OD_DEV_KEY}\",\n"
    "                    \"customer_key\": \"${OD_CUST_KEY_2}\"}}\n"
    "  ],\n"
    "  \"campaigns\": {\"recall\": {\"note\": \"a // b /* c */ d\"}},\n"
    "  \"policy\": {\"max_per_day\": 1}\n"
    "}\n";

/* Environment for full_config. */
static void full_env(void)
{
    ck_assert_int_eq(setenv("ODSYNC_ADMIN_TOKEN", "admin-token-xyz", 1), 0);
    ck_assert_int_eq(setenv("OD_CUST_KEY_2", "cust-key-lakeside", 1), 0);
}

START_TEST(test_full_config)
{
    struct config *cfg;
    const struct config_office *o;
    const struct config_sink *s;
    const cJSON *v;

    full_env();
    cfg = parse_ok(full_config);
    ck_assert_str_eq(cfg->path, ORIGIN);
    ck_assert_str_eq(cfg->store, "/srv/odsync/test.db");
    ck_assert_str_eq(cfg->listen, "0.0.0.0:9000");
    ck_assert_str_eq(cfg->admin_token, "admin-token-xyz");
    ck_assert_str_eq(cfg->log_level, "debug");
    ck_assert_str_eq(cfg->log_format, "json");
    ck_assert_uint_eq(cfg->n_plugin_dirs, 2);
    ck_assert_str_eq(cfg->plugin_dirs[0], "/opt/odsync/plugins");
    ck_assert_str_eq(cfg->plugin_dirs[1], "/usr/lib/odsync/plugins");

    ck_assert_uint_eq(cfg->n_sinks, 3);
    ck_assert_str_eq(cfg->sinks[0].name, "crm");
    ck_assert_str_eq(cfg->sinks[0].plugin, "hubspot");
    ck_assert_str_eq(cfg->sinks[0].json_path, "sinks.crm");
    s = &cfg->sinks[0];
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(s->settings, "plugin"));
    v = cJSON_GetObjectItemCaseSensitive(s->settings, "token");
    ck_assert(cJSON_IsString(v));
    ck_assert_str_eq(v->valuestring, "${HUBSPOT_TOKEN}"); /* plugin secrets: resolved later */
    v = cJSON_GetObjectItemCaseSensitive(s->settings, "batch");
    ck_assert(cJSON_IsObject(v));
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(v, "size")->valueint, 100);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "tags")), 2);
    ck_assert_int_eq(cJSON_GetArraySize(s->settings), 2);
    ck_assert_str_eq(cfg->sinks[1].name, "sms");
    ck_assert_str_eq(cfg->sinks[1].plugin, "twilio");
    ck_assert_str_eq(cfg->sinks[2].plugin, "/opt/odsync/plugins/sendgrid.so");
    ck_assert_int_eq(cJSON_GetArraySize(cfg->sinks[2].settings), 0);
    ck_assert_ptr_eq(config_find_sink(cfg, "sms"), &cfg->sinks[1]);
    ck_assert_ptr_null(config_find_sink(cfg, "nope"));

    ck_assert_uint_eq(cfg->n_offices, 2);
    o = &cfg->offices[0];
    ck_assert_str_eq(o->id, "main-st");
    ck_assert_str_eq(o->name, "Main Street Dental");
    ck_assert_str_eq(o->phone, "(555) 010-1000");
    ck_assert_str_eq(o->timezone, "America/Chicago");
    ck_assert_str_eq(o->od_base_url, "https://api.opendental.com/api/v1");
    ck_assert_str_eq(o->od_tier, "paid");
    ck_assert_str_eq(o->od_developer_key, "dev-key-0123456789");
    ck_assert_str_eq(o->od_customer_key, "cust-key-abcdefgh");
    ck_assert_uint_eq(o->n_routes[CONFIG_ROUTE_CONTACT], 1);
    ck_assert_str_eq(o->routes[CONFIG_ROUTE_CONTACT][0], "crm");
    ck_assert_uint_eq(o->n_routes[CONFIG_ROUTE_TASK], 1);
    ck_assert_str_eq(o->routes[CONFIG_ROUTE_TASK][0], "crm");
    ck_assert_uint_eq(o->n_routes[CONFIG_ROUTE_SMS], 1);
    ck_assert_str_eq(o->routes[CONFIG_ROUTE_SMS][0], "sms");
    ck_assert_uint_eq(o->n_routes[CONFIG_ROUTE_EMAIL], 2);
    ck_assert_str_eq(o->routes[CONFIG_ROUTE_EMAIL][0], "email");
    ck_assert_str_eq(o->routes[CONFIG_ROUTE_EMAIL][1], "crm");

    o = config_find_office(cfg, "lake_2");
    ck_assert_ptr_eq(o, &cfg->offices[1]);
    ck_assert_str_eq(o->name, "Lakeside");
    ck_assert_ptr_null(o->phone);
    ck_assert_str_eq(o->timezone, "America/New_York");
    ck_assert_str_eq(o->od_base_url, "http://10.0.0.5:30223/api/v1");
    ck_assert_str_eq(o->od_tier, "read_all");
    ck_assert_str_eq(o->od_customer_key, "cust-key-lakeside");
    ck_assert_uint_eq(o->n_routes[CONFIG_ROUTE_CONTACT] + o->n_routes[CONFIG_ROUTE_TASK] +
                          o->n_routes[CONFIG_ROUTE_SMS] + o->n_routes[CONFIG_ROUTE_EMAIL],
                      0);
    ck_assert_ptr_null(config_find_office(cfg, "main"));

    v = cJSON_GetObjectItemCaseSensitive(cfg->campaigns, "recall");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(v, "note")->valuestring, "a // b /* c */ d");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(cfg->policy, "max_per_day")->valueint, 1);
    config_free(cfg);
}
END_TEST

START_TEST(test_defaults)
{
    struct config *cfg = parse_ok(J("{'offices': [{'id': '0', 'name': 'N', " TZ_OK ", " OD "}]}"));
    int r;
    ck_assert_str_eq(cfg->store, "/var/lib/odsync/odsync.db");
    ck_assert_str_eq(cfg->listen, "127.0.0.1:8787");
    ck_assert_ptr_null(cfg->admin_token);
    ck_assert_str_eq(cfg->log_level, "info");
    ck_assert_str_eq(cfg->log_format, "text");
    ck_assert_uint_eq(cfg->n_plugin_dirs, 1);
    ck_assert_str_eq(cfg->plugin_dirs[0], ODSYNC_PLUGIN_DIR);
    ck_assert_uint_eq(cfg->n_sinks, 0);
    ck_assert_ptr_null(cfg->campaigns);
    ck_assert_ptr_null(cfg->policy);
    ck_assert_uint_eq(cfg->n_offices, 1);
    ck_assert_str_eq(cfg->offices[0].od_tier, "read_all");
    ck_assert_ptr_null(cfg->offices[0].phone);
    for (r = 0; r < CONFIG_ROUTE_COUNT; r++) {
        ck_assert_uint_eq(cfg->offices[0].n_routes[r], 0);
        ck_assert_ptr_null(cfg->offices[0].routes[r]);
    }
    config_free(cfg);
}
END_TEST

START_TEST(test_empty_plugin_dirs_and_ipv6_listen)
{
    struct config *cfg =
        parse_ok(J("{'listen': '[::1]:8787', 'plugin_dirs': [], 'sinks': {}, 'offices': [{'id': "
                   "'a', 'name': 'N', 'phone': '', " TZ_OK ", " OD ", 'routes': {'sms': []}}]}"));
    ck_assert_str_eq(cfg->listen, "[::1]:8787");
    ck_assert_uint_eq(cfg->n_plugin_dirs, 0);
    ck_assert_uint_eq(cfg->n_sinks, 0);
    ck_assert_ptr_null(cfg->offices[0].phone);
    ck_assert_uint_eq(cfg->offices[0].n_routes[CONFIG_ROUTE_SMS], 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_system_zoneinfo)
{
    struct config *cfg;
    /* tzdata is a build dependency (contrib/install-deps.sh): the real database must work. */
    ck_assert_int_eq(access("/usr/share/zoneinfo/America/Chicago", R_OK), 0);
    ck_assert_int_eq(unsetenv("TZDIR"), 0);
    cfg = parse_ok(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD "}"));
    config_free(cfg);
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', 'timezone': 'America/Chicgo', " OD "}")),
        ORIGIN ": offices[0].timezone: unknown time zone \"America/Chicgo\"");
}
END_TEST

START_TEST(test_find_and_route_names)
{
    ck_assert_ptr_null(config_find_sink(NULL, "crm"));
    ck_assert_ptr_null(config_find_office(NULL, "main-st"));
    ck_assert_str_eq(config_route_name(CONFIG_ROUTE_CONTACT), "contact");
    ck_assert_str_eq(config_route_name(CONFIG_ROUTE_TASK), "task");
    ck_assert_str_eq(config_route_name(CONFIG_ROUTE_SMS), "sms");
    ck_assert_str_eq(config_route_name(CONFIG_ROUTE_EMAIL), "email");
    ck_assert_str_eq(config_route_name(CONFIG_ROUTE_COUNT), "unknown");
}
END_TEST

START_TEST(test_free_null)
{
    config_free(NULL);
}
END_TEST

/* ---- syntax ---------------------------------------------------------------------------- */

START_TEST(test_syntax_error_position)
{
    /* the comments before the error must not shift the reported line or column */
    ck_assert_str_eq(parse_err("{\n"
                               "  /* a\n"
                               "     comment */ \"store\": \"x\",\n"
                               "  // a line comment\n"
                               "  \"listen\": nope, \"log\": {}\n"
                               "}\n"),
                     ORIGIN ":5:13: invalid JSON near 'nope, \"log\": {}'");
}
END_TEST

START_TEST(test_syntax_error_excerpt_is_short)
{
    ck_assert_str_eq(parse_err("{\"store\": \"x\" \"listen\": \"127.0.0.1:1\", \"log\": {}}"),
                     ORIGIN ":1:15: invalid JSON near '\"listen\": \"127.0.0.1:1\",'");
}
END_TEST

START_TEST(test_syntax_error_trailing_comma_and_bare_key)
{
    ck_assert_str_eq(parse_err("{\n  \"store\": \"x\",\n}\n"),
                     ORIGIN ":3:1: invalid JSON near '}'");
    ck_assert_str_eq(parse_err("{\n  store: \"x\"\n}\n"),
                     ORIGIN ":2:3: invalid JSON near 'store: \"x\"'");
    ck_assert_str_eq(parse_err("[1, 2x]"), ORIGIN ":1:6: invalid JSON near 'x]'");
}
END_TEST

START_TEST(test_syntax_error_end_of_input)
{
    ck_assert_str_eq(parse_err("{\n  \"store\": \"x\",\n"),
                     ORIGIN ":3:1: invalid JSON: unexpected end of input");
    ck_assert_str_eq(parse_err(""), ORIGIN ":1:1: invalid JSON: unexpected end of input");
    ck_assert_str_eq(parse_err("// only a comment\n"),
                     ORIGIN ":2:1: invalid JSON: unexpected end of input");
}
END_TEST

START_TEST(test_syntax_trailing_garbage)
{
    ck_assert_str_eq(parse_err("{}\n// fine\n  x y\n"), ORIGIN ":3:3: invalid JSON near 'x y'");
}
END_TEST

START_TEST(test_unterminated_comment)
{
    ck_assert_str_eq(parse_err("{\n  \"store\": \"x\" /* oops\n}\n"),
                     ORIGIN ":2:16: unterminated /* comment");
}
END_TEST

START_TEST(test_top_level_not_object)
{
    ck_assert_str_eq(parse_err("[1, 2]"),
                     ORIGIN ": expected an object at the top level, got array");
}
END_TEST

/* ---- keys -------------------------------------------------------------------------------- */

START_TEST(test_unknown_key_suggestion)
{
    ck_assert_str_eq(parse_err(J("{'stroe': 'x'}")),
                     ORIGIN ": stroe: unknown key (did you mean \"store\"?)");
    ck_assert_str_eq(parse_err(J("{'plugin_dir': []}")),
                     ORIGIN ": plugin_dir: unknown key (did you mean \"plugin_dirs\"?)");
}
END_TEST

START_TEST(test_unknown_key_no_suggestion)
{
    ck_assert_str_eq(parse_err(J("{'frobnicate': 1}")), ORIGIN ": frobnicate: unknown key");
    ck_assert_str_eq(parse_err(J("{'a b\\n': 1}")), ORIGIN ": [\"a b?\"]: unknown key");
}
END_TEST

START_TEST(test_unknown_nested_keys)
{
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'nmae': 'N', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].nmae: unknown key (did you mean \"name\"?)");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD ", 'routes': {'mail': []}}")),
        ORIGIN ": offices[0].routes.mail: unknown key (did you mean \"email\"?)");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", 'opendental': {'tire': 'paid'}}")),
        ORIGIN ": offices[0].opendental.tire: unknown key (did you mean \"tier\"?)");
    ck_assert_str_eq(parse_err(J("{'log': {'levle': 'info'}}")),
                     ORIGIN ": log.levle: unknown key (did you mean \"level\"?)");
}
END_TEST

START_TEST(test_duplicate_keys)
{
    ck_assert_str_eq(parse_err(J("{'sinks': {'crm': {'plugin': 'a'}, 'crm': {'plugin': 'b'}}}")),
                     ORIGIN ": sinks.crm: duplicate key");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', 'id': 'b', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].id: duplicate key");
    ck_assert_str_eq(
        parse_err(J("{'sinks': {'crm': {'plugin': 'a', 'opts': {'x': 1, 'y': 2, 'x': 3}}}}")),
        ORIGIN ": sinks.crm.opts.x: duplicate key");
    ck_assert_str_eq(parse_err(J("{'store': 'a', 'listen': '127.0.0.1:1', 'store': 'b'}")),
                     ORIGIN ": store: duplicate key");
}
END_TEST

START_TEST(test_duplicate_keys_large_object)
{
    char text[8192];
    size_t used = 0;
    int i;
    /* more members than the on-stack table: the sorted path, first duplicate in text order */
    used += (size_t)snprintf(text, sizeof(text), "{\"policy\": {");
    for (i = 0; i < 40; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "\"k%d\": %d, ", i, i);
    snprintf(text + used, sizeof(text) - used, "\"k7\": 0, \"k3\": 0}}");
    ck_assert_str_eq(parse_err(text), ORIGIN ": policy.k7: duplicate key");
}
END_TEST

/* ---- types and required ------------------------------------------------------------------ */

START_TEST(test_wrong_types)
{
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 42, " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].name: expected a string, got number");
    ck_assert_str_eq(parse_err(J("{'offices': {}}")),
                     ORIGIN ": offices: expected an array, got object");
    ck_assert_str_eq(parse_err(J("{'sinks': {'crm': 'hubspot'}}")),
                     ORIGIN ": sinks.crm: expected an object, got string");
    ck_assert_str_eq(parse_err(J("{'sinks': {'crm': {'plugin': true}}}")),
                     ORIGIN ": sinks.crm.plugin: expected a string, got boolean");
    ck_assert_str_eq(parse_err(J("{'store': null}")),
                     ORIGIN ": store: expected a string, got null");
    ck_assert_str_eq(parse_err(J("{'log': []}")), ORIGIN ": log: expected an object, got array");
    ck_assert_str_eq(parse_err(J("{'plugin_dirs': '/x'}")),
                     ORIGIN ": plugin_dirs: expected an array, got string");
    ck_assert_str_eq(parse_err(doc("[]")), ORIGIN ": offices[0]: expected an object, got array");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD ", 'routes': {'sms': 'sms'}}")),
        ORIGIN ": offices[0].routes.sms: expected an array, got string");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD ", 'routes': {'sms': [1]}}")),
        ORIGIN ": offices[0].routes.sms[0]: expected a string, got number");
}
END_TEST

START_TEST(test_required)
{
    ck_assert_str_eq(parse_err(J("{}")), ORIGIN ": offices: required");
    ck_assert_str_eq(parse_err(J("{'offices': []}")),
                     ORIGIN ": offices: expected at least one office");
    ck_assert_str_eq(parse_err(doc("{'name': 'N', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].id: required");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].name: required");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " OD "}")),
                     ORIGIN ": offices[0].timezone: required");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK "}")),
                     ORIGIN ": offices[0].opendental: required");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK
                                   ", 'opendental': {'developer_key': '${OD_DEV_KEY}'}}")),
                     ORIGIN ": offices[0].opendental.base_url: required");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", 'opendental': {'base_url': 'https://x', "
                      "'developer_key': '${OD_DEV_KEY}'}}")),
        ORIGIN ": offices[0].opendental.customer_key: required");
    ck_assert_str_eq(parse_err(J("{'sinks': {'crm': {'token': 'x'}}}")),
                     ORIGIN ": sinks.crm.plugin: required");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': '', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].name: must not be empty");
    ck_assert_str_eq(parse_err(J("{'store': ''}")), ORIGIN ": store: must not be empty");
}
END_TEST

START_TEST(test_campaigns_policy_types)
{
    ck_assert_str_eq(
        parse_err(doc_extra("{'id': 'a', 'name': 'N', " TZ_OK ", " OD "}", "'campaigns': []")),
        ORIGIN ": campaigns: expected an object, got array");
    ck_assert_str_eq(
        parse_err(doc_extra("{'id': 'a', 'name': 'N', " TZ_OK ", " OD "}", "'policy': 'strict'")),
        ORIGIN ": policy: expected an object, got string");
}
END_TEST

/* ---- values ------------------------------------------------------------------------------ */

START_TEST(test_ids_and_names)
{
    ck_assert_str_eq(parse_err(doc("{'id': 'Main St', 'name': 'N', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].id: invalid id \"Main St\": use 1 to 32 of a-z, 0-9, "
                            "'_' and '-', starting with a letter or digit");
    ck_assert_str_eq(parse_err(doc("{'id': '-a', 'name': 'N', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].id: invalid id \"-a\": use 1 to 32 of a-z, 0-9, "
                            "'_' and '-', starting with a letter or digit");
    /* 32 characters is the limit */
    ck_assert_int_eq(
        parse_rc(doc("{'id': 'abcdefghijabcdefghijabcdefghij12', 'name': 'N', " TZ_OK ", " OD "}")),
        ODSYNC_OK);
    ck_assert_str_eq(parse_err(doc("{'id': 'abcdefghijabcdefghijabcdefghij123', 'name': 'N', " TZ_OK
                                   ", " OD "}")),
                     ORIGIN ": offices[0].id: invalid id \"abcdefghijabcdefghijabcdefghij123\": "
                            "use 1 to 32 of a-z, 0-9, '_' and '-', starting with a letter or "
                            "digit");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD
                                   "}, {'id': 'a', 'name': 'M', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[1].id: duplicate office id \"a\" (also offices[0])");
    ck_assert_str_eq(parse_err(J("{'sinks': {'CRM': {'plugin': 'hubspot'}}}")),
                     ORIGIN ": sinks.CRM: invalid instance name: use 1 to 32 of a-z, 0-9, '_' "
                            "and '-', starting with a letter or digit");
    ck_assert_str_eq(parse_err(J("{'sinks': {'my crm': {'plugin': 'hubspot'}}}")),
                     ORIGIN ": sinks[\"my crm\"]: invalid instance name: use 1 to 32 of a-z, "
                            "0-9, '_' and '-', starting with a letter or digit");
    ck_assert_str_eq(parse_err(J("{'sinks': {'crm': {'plugin': ''}}}")),
                     ORIGIN ": sinks.crm.plugin: must not be empty");
}
END_TEST

START_TEST(test_timezones)
{
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', 'timezone': 'America/Chicgo', " OD
                                   "}, {'id': 'b', 'name': 'N', " TZ_OK ", " OD "}")),
                     ORIGIN ": offices[0].timezone: unknown time zone \"America/Chicgo\"");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD
                      "}, {'id': 'b', 'name': 'N', 'timezone': 'America/Chicgo', " OD "}")),
        ORIGIN ": offices[1].timezone: unknown time zone \"America/Chicgo\"");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', 'timezone': '../zoneinfo/UTC', " OD "}")),
        ORIGIN ": offices[0].timezone: unknown time zone \"../zoneinfo/UTC\"");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', 'timezone': '/etc/localtime', " OD "}")),
        ORIGIN ": offices[0].timezone: unknown time zone \"/etc/localtime\"");
    /* exists, but is not a TZif file */
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', 'timezone': 'zone.tab', " OD "}")),
                     ORIGIN ": offices[0].timezone: unknown time zone \"zone.tab\"");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', 'timezone': 'America', " OD "}")),
                     ORIGIN ": offices[0].timezone: unknown time zone \"America\"");
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', 'timezone': 'America/Chi cago', " OD "}")),
        ORIGIN ": offices[0].timezone: unknown time zone \"America/Chi cago\"");
    ck_assert_int_eq(parse_rc(doc("{'id': 'a', 'name': 'N', 'timezone': 'UTC', " OD "}")),
                     ODSYNC_OK);
}
END_TEST

START_TEST(test_routes)
{
    ck_assert_str_eq(
        parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD ", 'routes': {'sms': ['sms2']}}")),
        ORIGIN ": offices[0].routes.sms[0]: no sink instance named \"sms2\"");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD
                                   ", 'routes': {'contact': ['crm', 'crm']}}")),
                     ORIGIN
                     ": offices[0].routes.contact[1]: sink instance \"crm\" is listed twice");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK ", " OD ", 'routes': []}")),
                     ORIGIN ": offices[0].routes: expected an object, got array");
}
END_TEST

START_TEST(test_listen)
{
    ck_assert_str_eq(parse_err(J("{'listen': '127.0.0.1:-1'}")),
                     ORIGIN ": listen: port must be a number from 0 to 65535, got \"-1\"");
    ck_assert_str_eq(parse_err(J("{'listen': '127.0.0.1:65536'}")),
                     ORIGIN ": listen: port must be a number from 0 to 65535, got \"65536\"");
    ck_assert_str_eq(parse_err(J("{'listen': 'localhost:http'}")),
                     ORIGIN ": listen: port must be a number from 0 to 65535, got \"http\"");
    ck_assert_str_eq(parse_err(J("{'listen': 'localhost'}")),
                     ORIGIN ": listen: expected \"host:port\", got \"localhost\"");
    ck_assert_str_eq(parse_err(J("{'listen': ':8787'}")),
                     ORIGIN ": listen: expected \"host:port\", got \":8787\"");
    ck_assert_str_eq(parse_err(J("{'listen': '::1:8787'}")),
                     ORIGIN ": listen: expected \"host:port\" (write an IPv6 address in "
                            "brackets), got \"::1:8787\"");
}
END_TEST

START_TEST(test_log_and_plugin_dirs)
{
    ck_assert_str_eq(parse_err(J("{'log': {'level': 'verbose'}}")),
                     ORIGIN ": log.level: expected \"error\", \"warn\", \"info\" or \"debug\", got "
                            "\"verbose\"");
    ck_assert_str_eq(parse_err(J("{'log': {'format': 'xml'}}")),
                     ORIGIN ": log.format: expected \"text\" or \"json\", got \"xml\"");
    ck_assert_str_eq(parse_err(J("{'plugin_dirs': ['/ok', 'plugins']}")),
                     ORIGIN ": plugin_dirs[1]: expected an absolute directory path, got "
                            "\"plugins\"");
}
END_TEST

START_TEST(test_opendental_values)
{
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK
                                   ", 'opendental': {'base_url': 'ftp://x'}}")),
                     ORIGIN ": offices[0].opendental.base_url: expected an http:// or https:// "
                            "URL, got \"ftp://x\"");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK
                                   ", 'opendental': {'base_url': 'https://'}}")),
                     ORIGIN ": offices[0].opendental.base_url: expected an http:// or https:// "
                            "URL, got \"https://\"");
    ck_assert_str_eq(parse_err(doc("{'id': 'a', 'name': 'N', " TZ_OK
                                   ", 'opendental': {'base_url': 'https://x', 'tier': 'gold'}}")),
                     ORIGIN ": offices[0].opendental.tier: expected \"read_all\", \"paid\" or "
                            "\"local\", got \"gold\"");
}
END_TEST

/* ---- secrets ----------------------------------------------------------------------------- */

/* An office whose customer_key is ref (JSON with '). */
static const char *office_with_key(const char *ref)
{
    char office[2048];
    ck_assert(util_fmt(office, sizeof(office),
                       "{'id': 'a', 'name': 'N', " TZ_OK
                       ", 'opendental': {'base_url': 'https://x', 'developer_key': "
                       "'${OD_DEV_KEY}', 'customer_key': '%s'}}",
                       ref) == ODSYNC_OK);
    return doc(office);
}

START_TEST(test_secret_literal_refused)
{
    const char *msg = parse_err(office_with_key("sk-live-5up3r-s3cr3t"));
    ck_assert_str_eq(msg, ORIGIN ": offices[0].opendental.customer_key: secrets must be "
                                 "\"${ENV_NAME}\" or \"file:/path\", not a literal value");
    ck_assert_ptr_null(strstr(msg, "5up3r"));
    /* near misses are literals too, and are not echoed either */
    ck_assert_str_eq(parse_err(office_with_key("${1BAD}")),
                     ORIGIN ": offices[0].opendental.customer_key: secrets must be "
                            "\"${ENV_NAME}\" or \"file:/path\", not a literal value");
    ck_assert_str_eq(parse_err(office_with_key("file:relative/key")),
                     ORIGIN ": offices[0].opendental.customer_key: secrets must be "
                            "\"${ENV_NAME}\" or \"file:/path\", not a literal value");
    ck_assert_str_eq(parse_err(J("{'admin_token': 'hunter2hunter2'}")),
                     ORIGIN ": admin_token: secrets must be \"${ENV_NAME}\" or \"file:/path\", "
                            "not a literal value");
    ck_assert_str_eq(parse_err(J("{'admin_token': 12345}")),
                     ORIGIN ": admin_token: expected a string, got number");
}
END_TEST

START_TEST(test_secret_env_unset_or_empty)
{
    ck_assert_int_eq(unsetenv("OD_KEY"), 0);
    ck_assert_str_eq(parse_err(office_with_key("${OD_KEY}")),
                     ORIGIN ": offices[0].opendental.customer_key: environment variable OD_KEY "
                            "is not set");
    ck_assert_int_eq(setenv("OD_KEY", "", 1), 0);
    ck_assert_str_eq(parse_err(office_with_key("${OD_KEY}")),
                     ORIGIN ": offices[0].opendental.customer_key: environment variable OD_KEY "
                            "is not set");
}
END_TEST

START_TEST(test_secret_env_resolved_and_redacted)
{
    struct config *cfg;
    char line[128] = "token=env-secret-value-42 end";
    ck_assert_int_eq(setenv("OD_KEY", "env-secret-value-42", 1), 0);
    cfg = parse_ok(office_with_key("${OD_KEY}"));
    ck_assert_str_eq(cfg->offices[0].od_customer_key, "env-secret-value-42");
    log_redact(line, sizeof(line));
    ck_assert_ptr_null(strstr(line, "env-secret-value-42"));
    config_free(cfg);
}
END_TEST

START_TEST(test_secret_file)
{
    char ref[1100], line[128] = "x file-secret-0600 y";
    struct config *cfg;
    const char *path = write_tmp("cust.key", "file-secret-0600\r\n");

    ck_assert(util_fmt(ref, sizeof(ref), "file:%s", path) == ODSYNC_OK);
    cfg = parse_ok(office_with_key(ref));
    ck_assert_str_eq(cfg->offices[0].od_customer_key, "file-secret-0600");
    log_redact(line, sizeof(line));
    ck_assert_ptr_null(strstr(line, "file-secret-0600"));
    config_free(cfg);

    /* only one trailing newline is removed */
    path = write_tmp("two.key", "abcdef\n\n");
    ck_assert(util_fmt(ref, sizeof(ref), "file:%s", path) == ODSYNC_OK);
    cfg = parse_ok(office_with_key(ref));
    ck_assert_str_eq(cfg->offices[0].od_customer_key, "abcdef\n");
    config_free(cfg);
}
END_TEST

START_TEST(test_secret_file_too_open)
{
    char ref[1100], expect[2048];
    const char *path = write_tmp("open.key", "file-secret-0644\n");
    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert(util_fmt(ref, sizeof(ref), "file:%s", path) == ODSYNC_OK);
    ck_assert(util_fmt(expect, sizeof(expect),
                       ORIGIN ": offices[0].opendental.customer_key: secret file %s is readable or "
                              "writable by others (mode 0644); chmod o-rwx it",
                       path) == ODSYNC_OK);
    ck_assert_str_eq(parse_err(office_with_key(ref)), expect);
    ck_assert_ptr_null(strstr(errbuf, "file-secret-0644"));
    /* group access is allowed (e.g. an odsync group), world write is not */
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(parse_rc(office_with_key(ref)), ODSYNC_OK);
    ck_assert_int_eq(chmod(path, 0602), 0);
    ck_assert_int_eq(parse_rc(office_with_key(ref)), ODSYNC_CONFIG);
    ck_assert_ptr_nonnull(strstr(errbuf, "(mode 0602)"));
}
END_TEST

START_TEST(test_secret_file_errors)
{
    char ref[1100], expect[2048], *big;
    const char *path;

    ck_assert(util_fmt(ref, sizeof(ref), "file:%s/missing.key", tmp) == ODSYNC_OK);
    ck_assert(util_fmt(expect, sizeof(expect),
                       ORIGIN ": offices[0].opendental.customer_key: cannot read secret file "
                              "%s/missing.key: No such file or directory",
                       tmp) == ODSYNC_OK);
    ck_assert_str_eq(parse_err(office_with_key(ref)), expect);

    path = write_tmp("empty.key", "\n");
    ck_assert(util_fmt(ref, sizeof(ref), "file:%s", path) == ODSYNC_OK);
    ck_assert(util_fmt(expect, sizeof(expect),
                       ORIGIN ": offices[0].opendental.customer_key: secret file %s is empty",
                       path) == ODSYNC_OK);
    ck_assert_str_eq(parse_err(office_with_key(ref)), expect);

    ck_assert(util_fmt(ref, sizeof(ref), "file:%s", tmp) == ODSYNC_OK);
    ck_assert(util_fmt(expect, sizeof(expect),
                       ORIGIN ": offices[0].opendental.customer_key: secret file %s is not a "
                              "regular file",
                       tmp) == ODSYNC_OK);
    ck_assert_str_eq(parse_err(office_with_key(ref)), expect);

    big = malloc(64 * 1024 + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, 'k', 64 * 1024 + 1);
    big[64 * 1024 + 1] = '\0';
    path = write_tmp("big.key", big);
    free(big);
    ck_assert(util_fmt(ref, sizeof(ref), "file:%s", path) == ODSYNC_OK);
    ck_assert(util_fmt(expect, sizeof(expect),
                       ORIGIN ": offices[0].opendental.customer_key: secret file %s is larger "
                              "than 64 KiB",
                       path) == ODSYNC_OK);
    ck_assert_str_eq(parse_err(office_with_key(ref)), expect);
}
END_TEST

START_TEST(test_resolve_secret_direct)
{
    char err[256], *out = NULL;

    ck_assert(config_is_secret_ref("${A}"));
    ck_assert(config_is_secret_ref("${_a1_B}"));
    ck_assert(config_is_secret_ref("file:/run/secrets/x"));
    ck_assert(!config_is_secret_ref(NULL));
    ck_assert(!config_is_secret_ref("${}"));
    ck_assert(!config_is_secret_ref("${9A}"));
    ck_assert(!config_is_secret_ref("${A-B}"));
    ck_assert(!config_is_secret_ref("$A"));
    ck_assert(!config_is_secret_ref("x${A}"));
    ck_assert(!config_is_secret_ref("${A}x"));
    ck_assert(!config_is_secret_ref("file:x"));
    ck_assert(!config_is_secret_ref("plain"));

    ck_assert_int_eq(setenv("PLUGIN_TOKEN", "tok-123456", 1), 0);
    ck_assert_int_eq(
        config_resolve_secret("${PLUGIN_TOKEN}", "sinks.crm.token", &out, err, sizeof(err)),
        ODSYNC_OK);
    ck_assert_str_eq(out, "tok-123456");
    util_free(out);
    out = NULL;
    ck_assert_int_eq(config_resolve_secret("tok-123456", "sinks.crm.token", &out, err, sizeof(err)),
                     ODSYNC_CONFIG);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, "sinks.crm.token: secrets must be \"${ENV_NAME}\" or \"file:/path\", "
                          "not a literal value");
}
END_TEST

/* ---- config_load --------------------------------------------------------------------------- */

START_TEST(test_load_missing_file)
{
    struct config *cfg = (struct config *)1;
    char path[1100], expect[2048];
    ck_assert(util_fmt(path, sizeof(path), "%s/nope.json", tmp) == ODSYNC_OK);
    ck_assert_int_eq(config_load(path, &cfg, errbuf, sizeof(errbuf)), ODSYNC_IO);
    ck_assert_ptr_null(cfg);
    ck_assert(util_fmt(expect, sizeof(expect), "%s: cannot read file: No such file or directory",
                       path) == ODSYNC_OK);
    ck_assert_str_eq(errbuf, expect);
}
END_TEST

START_TEST(test_load_file)
{
    struct config *cfg = NULL;
    char expect[2048];
    const char *path;

    full_env();
    path = write_tmp("odsync.json", full_config);
    ck_assert_int_eq(config_load(path, &cfg, errbuf, sizeof(errbuf)), ODSYNC_OK);
    ck_assert_str_eq(cfg->path, path);
    ck_assert_uint_eq(cfg->n_offices, 2);
    config_free(cfg);

    /* errors name the path as given */
    path = write_tmp("bad.json", "{\n  \"offices\": 3\n}\n");
    ck_assert_int_eq(config_load(path, &cfg, errbuf, sizeof(errbuf)), ODSYNC_CONFIG);
    ck_assert(util_fmt(expect, sizeof(expect), "%s: offices: expected an array, got number",
                       path) == ODSYNC_OK);
    ck_assert_str_eq(errbuf, expect);
}
END_TEST

/* Load a shipped example; its file: secrets under /etc/odsync/secrets/ are read from tmp. */
static void load_example(const char *rel)
{
    static const char needle[] = "file:/etc/odsync/secrets/";
    char *src = tu_src_path(rel), *text = tu_read_file(src);
    char fixed[32768];
    const char *rest, *hit;
    size_t used = 0;
    struct config *cfg = NULL;

    ck_assert_msg(text != NULL, "cannot read %s", src);
    fixed[0] = '\0';
    for (rest = text; (hit = strstr(rest, needle)) != NULL; rest = hit + strlen(needle)) {
        ck_assert(util_fmt(fixed + used, sizeof(fixed) - used, "%.*sfile:%s/", (int)(hit - rest),
                           rest, tmp) == ODSYNC_OK);
        used = strlen(fixed);
    }
    ck_assert(util_fmt(fixed + used, sizeof(fixed) - used, "%s", rest) == ODSYNC_OK);
    ck_assert_msg(config_parse(fixed, strlen(fixed), rel, &cfg, errbuf, sizeof(errbuf)) ==
                      ODSYNC_OK,
                  "%s", errbuf);
    config_free(cfg);
    free(text);
    free(src);
}

START_TEST(test_examples_load)
{
    ck_assert_int_eq(setenv("ODSYNC_ADMIN_TOKEN", "admin-token-xyz", 1), 0);
    ck_assert_int_eq(setenv("OD_CUST_KEY_MAIN", "cust-key-main-st", 1), 0);
    write_tmp("lakeside-customer-key", "cust-key-lakeside\n");
    load_example("contrib/examples/odsync.example.json");
    load_example("contrib/examples/minimal.json");
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------------ */

START_TEST(test_fail_nth_allocation)
{
    char ref[1100], text[16384];
    const char *path, *at, *eol;
    long n;
    int rc = ODSYNC_NOMEM;

    full_env();
    path = write_tmp("admin.token", "admin-token-from-file\n");
    ck_assert(util_fmt(ref, sizeof(ref), "\"admin_token\": \"file:%s\",", path) == ODSYNC_OK);
    /* full_config with its admin_token taken from a file */
    at = strstr(full_config, "\"admin_token\"");
    eol = strchr(at, '\n');
    ck_assert(util_fmt(text, sizeof(text), "%.*s%s%s", (int)(at - full_config), full_config, ref,
                       eol) == ODSYNC_OK);
    path = write_tmp("odsync.json", text);
    for (n = 1; n < 100000; n++) {
        struct config *cfg = NULL;
        util_fail_alloc_after(n);
        rc = config_load(path, &cfg, errbuf, sizeof(errbuf));
        util_fail_alloc_after(0);
        if (rc == ODSYNC_OK) {
            ck_assert_str_eq(cfg->admin_token, "admin-token-from-file");
            config_free(cfg);
            break;
        }
        ck_assert_msg(rc == ODSYNC_NOMEM, "n=%ld: rc %d: %s", n, rc, errbuf);
        ck_assert_ptr_null(cfg);
        ck_assert_msg(strstr(errbuf, "out of memory") != NULL, "n=%ld: %s", n, errbuf);
    }
    ck_assert_int_eq(rc, ODSYNC_OK);
    ck_assert_int_gt(n, 10);
}
END_TEST

START_TEST(test_fail_nth_allocation_on_errors)
{
    /* an invalid file must give its own error or NOMEM, never a wrong error */
    const char *text = "{\"sinks\": {\"crm\": {\"plugin\": \"x\"}}, \"offices\": [1, }";
    const char *expect = ORIGIN ":1:52: invalid JSON near '}'";
    long n;
    int rc = ODSYNC_NOMEM;

    for (n = 1; n < 100000; n++) {
        util_fail_alloc_after(n);
        rc = parse_rc(text);
        util_fail_alloc_after(0);
        if (rc != ODSYNC_NOMEM)
            break;
        ck_assert_str_eq(errbuf, ORIGIN ": out of memory");
    }
    ck_assert_int_eq(rc, ODSYNC_CONFIG);
    ck_assert_str_eq(errbuf, expect);
}
END_TEST

#define OFFICE_OK "{'id': 'a', 'name': 'N', " TZ_OK ", " OD "}"

/* "delivery": defaults, top-level values, and a sink's own override. */
START_TEST(test_delivery_defaults_and_overrides)
{
    struct config *cfg = parse_ok(doc(OFFICE_OK));
    ck_assert_int_eq(cfg->delivery.max_attempts, 8);
    ck_assert_int_eq(cfg->delivery.backoff_base_ms, 1000);
    ck_assert_int_eq(cfg->delivery.backoff_cap_ms, 900000);
    ck_assert_int_eq(cfg->delivery.rate_limit_default_ms, 60000);
    ck_assert_int_eq(cfg->delivery.shutdown_timeout_ms, 10000);
    config_free(cfg);
    cfg = parse_ok(J("{'delivery': {'max_attempts': 3, 'backoff_base_ms': 10},"
                     " 'sinks': {'crm': {'plugin': 'rest', 'delivery': {'max_attempts': 5}},"
                     " 'sms': {'plugin': 'twilio'}}, 'offices': [" OFFICE_OK "]}"));
    ck_assert_int_eq(cfg->delivery.max_attempts, 3);
    ck_assert_int_eq(config_find_sink(cfg, "crm")->delivery.max_attempts, 5);
    ck_assert_int_eq(config_find_sink(cfg, "crm")->delivery.backoff_base_ms, 10);
    ck_assert_int_eq(config_find_sink(cfg, "sms")->delivery.max_attempts, 3);
    /* "delivery" is the host's: the plugin never sees it among its settings. */
    ck_assert_ptr_null(cJSON_GetObjectItem(config_find_sink(cfg, "crm")->settings, "delivery"));
    config_free(cfg);
}
END_TEST

START_TEST(test_delivery_errors)
{
    ck_assert_str_eq(parse_err(doc_extra(OFFICE_OK, "'delivery': {'max_attempts': 0}")),
                     ORIGIN ": delivery.max_attempts: expected an integer from 1 to 100, got 0");
    ck_assert_str_eq(parse_err(doc_extra(OFFICE_OK, "'delivery': {'backoff_base_ms': 'fast'}")),
                     ORIGIN ": delivery.backoff_base_ms: expected an integer, got string");
    ck_assert_str_eq(parse_err(doc_extra(
                         OFFICE_OK, "'delivery': {'backoff_base_ms': 500, 'backoff_cap_ms': 10}")),
                     ORIGIN
                     ": delivery.backoff_cap_ms: must not be smaller than backoff_base_ms (500)");
    ck_assert_str_eq(parse_err(doc_extra(OFFICE_OK, "'delivery': {'retries': 3}")),
                     ORIGIN ": delivery.retries: unknown key");
    ck_assert_str_eq(parse_err(J("{'sinks': {'crm': {'plugin': 'rest', 'delivery': "
                                 "{'shutdown_timeout_ms': -1}}}, 'offices': [" OFFICE_OK "]}")),
                     ORIGIN ": sinks.crm.delivery.shutdown_timeout_ms: expected an integer from "
                            "0 to 600000, got -1");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_full_config);
    tcase_add_test(tc, test_delivery_defaults_and_overrides);
    tcase_add_test(tc, test_delivery_errors);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_empty_plugin_dirs_and_ipv6_listen);
    tcase_add_test(tc, test_system_zoneinfo);
    tcase_add_test(tc, test_find_and_route_names);
    tcase_add_test(tc, test_free_null);
    tcase_add_test(tc, test_syntax_error_position);
    tcase_add_test(tc, test_syntax_error_excerpt_is_short);
    tcase_add_test(tc, test_syntax_error_trailing_comma_and_bare_key);
    tcase_add_test(tc, test_syntax_error_end_of_input);
    tcase_add_test(tc, test_syntax_trailing_garbage);
    tcase_add_test(tc, test_unterminated_comment);
    tcase_add_test(tc, test_top_level_not_object);
    tcase_add_test(tc, test_unknown_key_suggestion);
    tcase_add_test(tc, test_unknown_key_no_suggestion);
    tcase_add_test(tc, test_unknown_nested_keys);
    tcase_add_test(tc, test_duplicate_keys);
    tcase_add_test(tc, test_duplicate_keys_large_object);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_required);
    tcase_add_test(tc, test_campaigns_policy_types);
    tcase_add_test(tc, test_ids_and_names);
    tcase_add_test(tc, test_timezones);
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_listen);
    tcase_add_test(tc, test_log_and_plugin_dirs);
    tcase_add_test(tc, test_opendental_values);
    tcase_add_test(tc, test_secret_literal_refused);
    tcase_add_test(tc, test_secret_env_unset_or_empty);
    tcase_add_test(tc, test_secret_env_resolved_and_redacted);
    tcase_add_test(tc, test_secret_file);
    tcase_add_test(tc, test_secret_file_too_open);
    tcase_add_test(tc, test_secret_file_errors);
    tcase_add_test(tc, test_resolve_secret_direct);
    tcase_add_test(tc, test_load_missing_file);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_examples_load);
    tcase_add_test(tc, test_fail_nth_allocation);
    tcase_add_test(tc, test_fail_nth_allocation_on_errors);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(config_suite)
