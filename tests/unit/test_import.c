/*
 * test_import: core/import with a real config file (config_load) and a real SQLite store —
 * contacts and tasks become records and one outbox row per route; an identical re-import
 * changes and queues nothing; one changed field changes one record; a bad element fails
 * the import naming "[i].field" and writes nothing. Import does not load plugins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "import.h"
#include "log.h"
#include "outbox.h"
#include "records.h"
#include "store.h"
#include "util.h"

#include "../support/testutil.h"

/* Two offices: main-st sends contacts to crm and mirror, tasks to crm; elm-st sends
 * contacts to crm only. The plugins are never loaded by import. */
static const char config_text[] =
    "// test config for import\n"
    "{\n"
    "  \"store\": \"/nonexistent/odsync.db\",\n"
    "  \"sinks\": {\n"
    "    \"crm\": { \"plugin\": \"scripted\" },\n"
    "    \"mirror\": { \"plugin\": \"scripted\", \"mode\": \"mirror\" }\n"
    "  },\n"
    "  \"offices\": [\n"
    "    { \"id\": \"main-st\", \"name\": \"Main Street Dental\", \"timezone\": "
    "\"America/Chicago\",\n"
    "      \"opendental\": { \"base_url\": \"https://api.opendental.com/api/v1\",\n"
    "                      \"developer_key\": \"${TEST_OD_DEV_KEY}\",\n"
    "                      \"customer_key\": \"${TEST_OD_CUST_KEY_MAIN}\" },\n"
    "      \"routes\": { \"contact\": [\"crm\", \"mirror\"], \"task\": [\"crm\"] } },\n"
    "    { \"id\": \"elm-st\", \"name\": \"Elm Street Dental\", \"timezone\": "
    "\"America/Chicago\",\n"
    "      \"opendental\": { \"base_url\": \"https://api.opendental.com/api/v1\",\n"
    "                      \"developer_key\": \"${TEST_OD_DEV_KEY}\",\n"
    "                      \"customer_key\": \"${TEST_OD_CUST_KEY_ELM}\" },\n"
    "      \"routes\": { \"contact\": [\"crm\"] } }\n"
    "  ]\n"
    "}\n";

/* Two contacts and a recall task of main-st. */
static const char batch_text[] =
    "[\n"
    " {\"kind\": \"contact\", \"office\": \"main-st\", \"patnum\": 1042, \"first_name\": "
    "\"Ann\",\n"
    "  \"last_name\": \"Lee\", \"email\": \"ann@example.com\", \"sms_consent\": \"yes\",\n"
    "  \"email_opt_out\": false, \"recall_due\": \"2026-06-01\", \"patient_status\": "
    "\"Patient\"},\n"
    " {\"kind\": \"contact\", \"office\": \"main-st\", \"patnum\": 1043, \"first_name\": \"Bo\"},\n"
    " {\"kind\": \"task\", \"office\": \"main-st\", \"recall_num\": 77, \"patnum\": 1042,\n"
    "  \"subject\": \"Recall due\", \"status\": \"open\", \"priority\": \"high\", \"type\": "
    "\"call\"}\n"
    "]\n";

static char *dir; /* per test, from setup */
static struct config *cfg;
static struct store *st;
static FILE *devnull;
static char err[1024];

static void setup(void)
{
    char path[512];
    char *cfg_path;

    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    ck_assert_int_eq(setenv("TEST_OD_DEV_KEY", "dev-key-0123456789", 1), 0);
    ck_assert_int_eq(setenv("TEST_OD_CUST_KEY_MAIN", "cust-key-main-0123", 1), 0);
    ck_assert_int_eq(setenv("TEST_OD_CUST_KEY_ELM", "cust-key-elm-0123", 1), 0);
    cfg_path = tu_write_file(dir, "odsync.json", config_text);
    err[0] = '\0';
    ck_assert_msg(config_load(cfg_path, &cfg, err, sizeof(err)) == ODSYNC_OK, "config: %s", err);
    free(cfg_path);
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "store: %s", err);
    err[0] = '\0';
}

static void teardown(void)
{
    store_close(st);
    config_free(cfg);
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* Import text; returns the status. */
static int import(const char *text, struct import_stats *stats)
{
    err[0] = '\0';
    return import_json(st, cfg, text, strlen(text), "batch.json", stats, err, sizeof(err));
}

/* Import text, asserting success. */
static struct import_stats import_ok(const char *text)
{
    struct import_stats stats;
    int rc = import(text, &stats);
    ck_assert_msg(rc == ODSYNC_OK, "import: %s (%s)", err, odsync_status_name(rc));
    return stats;
}

static int64_t n_records(void)
{
    int64_t n = -1;
    ck_assert_int_eq(records_count(st, NULL, &n), ODSYNC_OK);
    return n;
}

static int64_t n_outbox(void)
{
    struct outbox_counts c;
    ck_assert_int_eq(outbox_count(st, NULL, &c), ODSYNC_OK);
    return c.pending + c.inflight + c.done + c.dead;
}

/* The integer result of sql with one text parameter (NULL = none). */
static int64_t query_int(const char *sql, const char *param)
{
    sqlite3_stmt *s = NULL;
    int64_t v;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    if (param != NULL)
        sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* The stored body of the record with key, parsed (caller deletes). */
static cJSON *record_body(const char *office, const char *key)
{
    sqlite3_stmt *s = NULL;
    cJSON *body;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st),
                                        "SELECT body FROM records WHERE office = ? AND key = ?", -1,
                                        &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    body = cJSON_Parse((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    ck_assert_ptr_nonnull(body);
    return body;
}

/* Assert the import fails with exactly "batch.json: <want>" and writes nothing. */
static void import_fails(const char *text, const char *want)
{
    struct import_stats stats;
    int64_t recs = n_records(), rows = n_outbox();
    char full[512];
    int rc = import(text, &stats);
    ck_assert_int_eq(rc, ODSYNC_PARSE);
    snprintf(full, sizeof(full), "batch.json: %s", want);
    ck_assert_str_eq(err, full);
    ck_assert_int_eq(n_records(), recs);
    ck_assert_int_eq(n_outbox(), rows);
    ck_assert_int_eq(stats.read + stats.changed + stats.unchanged + stats.queued, 0);
}

START_TEST(config_has_what_the_tests_need)
{
    const struct config_office *o = config_find_office(cfg, "main-st");
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(o->timezone, "America/Chicago");
    ck_assert_str_eq(o->od_customer_key, "cust-key-main-0123");
    ck_assert_uint_eq(o->n_routes[CONFIG_ROUTE_CONTACT], 2);
    ck_assert_uint_eq(o->n_routes[CONFIG_ROUTE_TASK], 1);
}
END_TEST

START_TEST(contacts_and_task_become_records_and_outbox_rows)
{
    struct import_stats s = import_ok(batch_text);
    cJSON *body;

    ck_assert_int_eq(s.read, 3);
    ck_assert_int_eq(s.changed, 3);
    ck_assert_int_eq(s.unchanged, 0);
    ck_assert_int_eq(s.queued, 5); /* 2 contacts x (crm, mirror) + 1 task x crm */
    ck_assert_int_eq(n_records(), 3);
    ck_assert_int_eq(n_outbox(), 5);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox WHERE sink = 'crm'", NULL), 3);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox WHERE sink = 'mirror'", NULL), 2);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox WHERE key = ?", "od:main-st:1042"), 2);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox WHERE sink = 'crm' AND key = ?"
                               " AND kind = 2 AND state = 'pending' AND version = 1",
                               "od:main-st:recall:77"),
                     1);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox WHERE sink = 'mirror' AND key = ?",
                               "od:main-st:recall:77"),
                     0);
    /* the outbox carries the same body as the record */
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox o JOIN records r ON"
                               " r.office = o.office AND r.key = o.key AND r.body = o.body",
                               NULL),
                     5);

    body = record_body("main-st", "od:main-st:1042");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(body, "key")->valuestring, "od:main-st:1042");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(body, "office")->valuestring, "main-st");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(body, "patnum")->valuedouble, 1042);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(body, "first_name")->valuestring, "Ann");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "email_opt_out")));
    /* absent optional fields are null, and no "kind" rides along */
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(body, "phone_mobile")));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(body, "kind"));
    cJSON_Delete(body);

    body = record_body("main-st", "od:main-st:recall:77");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(body, "contact_key")->valuestring,
                     "od:main-st:1042");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(body, "priority")->valuestring, "high");
    cJSON_Delete(body);
}
END_TEST

START_TEST(identical_reimport_changes_nothing)
{
    struct import_stats s;
    import_ok(batch_text);
    s = import_ok(batch_text);
    ck_assert_int_eq(s.read, 3);
    ck_assert_int_eq(s.changed, 0);
    ck_assert_int_eq(s.unchanged, 3);
    ck_assert_int_eq(s.queued, 0);
    ck_assert_int_eq(n_records(), 3);
    ck_assert_int_eq(n_outbox(), 5);
    ck_assert_int_eq(query_int("SELECT MAX(version) FROM records", NULL), 1);
    ck_assert_int_eq(query_int("SELECT MAX(version) FROM outbox", NULL), 1);
}
END_TEST

START_TEST(member_order_does_not_matter)
{
    struct import_stats s;
    import_ok("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":5,\"first_name\":\"A\","
              "\"last_name\":\"B\"}]");
    s = import_ok("[{\"last_name\":\"B\",\"first_name\":\"A\",\"patnum\":5,\"office\":\"main-st\","
                  "\"kind\":\"contact\"}]");
    ck_assert_int_eq(s.changed, 0);
    ck_assert_int_eq(s.queued, 0);
}
END_TEST

START_TEST(one_changed_field_changes_one_record)
{
    char *changed = strdup(batch_text);
    char *p = strstr(changed, "\"Bo\"");
    struct import_stats s;
    ck_assert_ptr_nonnull(p);
    p[1] = 'B';
    p[2] = 'e'; /* "Bo" -> "Be" */
    import_ok(batch_text);
    s = import_ok(changed);
    ck_assert_int_eq(s.read, 3);
    ck_assert_int_eq(s.changed, 1);
    ck_assert_int_eq(s.unchanged, 2);
    ck_assert_int_eq(s.queued, 2); /* crm and mirror */
    ck_assert_int_eq(n_records(), 3);
    ck_assert_int_eq(n_outbox(), 5);
    ck_assert_int_eq(query_int("SELECT version FROM records WHERE key = ?", "od:main-st:1043"), 2);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox WHERE key = ? AND version = 2"
                               " AND state = 'pending' AND body LIKE '%\"Be\"%'",
                               "od:main-st:1043"),
                     2);
    ck_assert_int_eq(query_int("SELECT version FROM records WHERE key = ?", "od:main-st:1042"), 1);
    free(changed);
}
END_TEST

START_TEST(offices_are_isolated)
{
    struct import_stats s = import_ok(
        "[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":7,\"first_name\":\"A\"},"
        " {\"kind\":\"contact\",\"office\":\"elm-st\",\"patnum\":7,\"first_name\":\"A\"}]");
    ck_assert_int_eq(s.changed, 2);
    ck_assert_int_eq(s.queued, 3); /* main-st: crm, mirror; elm-st: crm */
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM records WHERE key = ?", "od:main-st:7"), 1);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM records WHERE key = ?", "od:elm-st:7"), 1);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM outbox WHERE office = 'elm-st'", NULL), 1);
}
END_TEST

START_TEST(unknown_field_refused)
{
    import_ok(batch_text);
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1,\"first_name\":\"A\"},"
                 " {\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2,\"nickname\":\"Z\"}]",
                 "[1].nickname: unknown field");
    /* a clinical field cannot ride along on a task either */
    import_fails("[{\"kind\":\"task\",\"office\":\"main-st\",\"recall_num\":1,\"patnum\":2,"
                 "\"diagnosis\":\"x\"}]",
                 "[0].diagnosis: unknown field");
}
END_TEST

START_TEST(bad_enum_refused)
{
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1,"
                 "\"sms_consent\":\"maybe\"}]",
                 "[0].sms_consent: expected one of |yes|no|unknown|");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1},"
                 " {\"kind\":\"task\",\"office\":\"main-st\",\"recall_num\":3,\"patnum\":1,"
                 "\"priority\":\"urgent\"}]",
                 "[1].priority: expected one of |low|medium|high|");
}
END_TEST

START_TEST(missing_patnum_refused)
{
    import_ok(batch_text);
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1},"
                 " {\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2},"
                 " {\"kind\":\"contact\",\"office\":\"main-st\",\"first_name\":\"X\"}]",
                 "[2].patnum: required, a positive integer");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":0}]",
                 "[0].patnum: required, a positive integer");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":\"1042\"}]",
                 "[0].patnum: required, a positive integer");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1.5}]",
                 "[0].patnum: required, a positive integer");
}
END_TEST

START_TEST(unknown_office_refused)
{
    import_ok(batch_text);
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":1},"
                 " {\"kind\":\"contact\",\"office\":\"oak-st\",\"patnum\":2}]",
                 "[1].office: not an office in the config");
    import_fails("[{\"kind\":\"contact\",\"patnum\":2}]",
                 "[0].office: not an office in the config");
}
END_TEST

START_TEST(other_element_errors)
{
    import_fails("[{\"kind\":\"task\",\"office\":\"main-st\",\"patnum\":2}]",
                 "[0].recall_num: required, a positive integer");
    import_fails("[{\"kind\":\"message\",\"office\":\"main-st\",\"patnum\":2}]",
                 "[0].kind: \"message\" cannot be imported (contact or task)");
    import_fails("[{\"office\":\"main-st\",\"patnum\":2}]",
                 "[0].kind: required, \"contact\" or \"task\"");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2,"
                 "\"recall_due\":\"2026-13-01\"}]",
                 "[0].recall_due: expected a date YYYY-MM-DD");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2,"
                 "\"email_opt_out\":\"no\"}]",
                 "[0].email_opt_out: expected true or false");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2,"
                 "\"first_name\":7}]",
                 "[0].first_name: expected a string");
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2,"
                 "\"guarantor_patnum\":-3}]",
                 "[0].guarantor_patnum: expected a positive integer");
    import_fails("[7]", "[0]: expected an object");
    import_fails("{\"kind\":\"contact\"}", "expected a JSON array of records");
    import_fails("[{\"kind\":", "expected a JSON array of records");
}
END_TEST

START_TEST(huge_guarantor_patnum_refused)
{
    /* a number beyond int64 must be refused without an out-of-range float conversion */
    import_fails("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":2,"
                 "\"guarantor_patnum\":1e300}]",
                 "[0].guarantor_patnum: expected a positive integer");
}
END_TEST

/* A guarantor is referred to by its contact key; the raw PatNum is not passed on. */
START_TEST(guarantor_becomes_contact_key)
{
    cJSON *body;
    import_ok("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":7,"
              "\"guarantor_patnum\":5},"
              "{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":8}]");
    body = record_body("main-st", "od:main-st:7");
    ck_assert_str_eq(cJSON_GetObjectItem(body, "guarantor_key")->valuestring, "od:main-st:5");
    ck_assert_ptr_null(cJSON_GetObjectItem(body, "guarantor_patnum"));
    cJSON_Delete(body);
    body = record_body("main-st", "od:main-st:8");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(body, "guarantor_key")));
    cJSON_Delete(body);
}
END_TEST

START_TEST(null_fields_are_absent)
{
    struct import_stats s;
    import_ok("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":9}]");
    s = import_ok("[{\"kind\":\"contact\",\"office\":\"main-st\",\"patnum\":9,"
                  "\"email\":null,\"sms_consent\":null}]");
    ck_assert_int_eq(s.changed, 0);
}
END_TEST

START_TEST(empty_array_is_fine)
{
    struct import_stats s = import_ok("[]");
    ck_assert_int_eq(s.read, 0);
    ck_assert_int_eq(n_records(), 0);
}
END_TEST

START_TEST(import_from_file)
{
    struct import_stats s;
    char *path = tu_write_file(dir, "batch.json", batch_text), *missing;
    ck_assert_msg(import_file(st, cfg, path, &s, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    ck_assert_int_eq(s.changed, 3);
    missing = tu_build_path("no/such/batch.json");
    ck_assert_int_eq(import_file(st, cfg, missing, &s, err, sizeof(err)), ODSYNC_IO);
    ck_assert_msg(strstr(err, missing) != NULL && strstr(err, "cannot read") != NULL, "%s", err);
    free(missing);
    free(path);
}
END_TEST

static Suite *import_suite(void)
{
    Suite *s = suite_create("import");
    TCase *ok = tcase_create("import");
    TCase *bad = tcase_create("errors");

    tcase_add_checked_fixture(ok, setup, teardown);
    tcase_add_test(ok, config_has_what_the_tests_need);
    tcase_add_test(ok, guarantor_becomes_contact_key);
    tcase_add_test(ok, contacts_and_task_become_records_and_outbox_rows);
    tcase_add_test(ok, identical_reimport_changes_nothing);
    tcase_add_test(ok, member_order_does_not_matter);
    tcase_add_test(ok, one_changed_field_changes_one_record);
    tcase_add_test(ok, offices_are_isolated);
    tcase_add_test(ok, null_fields_are_absent);
    tcase_add_test(ok, empty_array_is_fine);
    tcase_add_test(ok, import_from_file);
    suite_add_tcase(s, ok);

    tcase_add_checked_fixture(bad, setup, teardown);
    tcase_add_test(bad, unknown_field_refused);
    tcase_add_test(bad, bad_enum_refused);
    tcase_add_test(bad, missing_patnum_refused);
    tcase_add_test(bad, unknown_office_refused);
    tcase_add_test(bad, other_element_errors);
    tcase_add_test(bad, huge_guarantor_patnum_refused);
    suite_add_tcase(s, bad);
    return s;
}

ODSYNC_TEST_MAIN(import_suite)
