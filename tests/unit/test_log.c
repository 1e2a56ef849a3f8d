/*
 * test_log: core/log — redaction of registered secrets in text and JSON lines, the level
 * threshold, and JSON lines that are valid JSON (checked by parsing each with cJSON).
 * Lines are captured with open_memstream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "util.h"

#include "../support/testutil.h"

#define LONG_SECRET  "hs-token-0123456789abcdef" /* >= 10 bytes: replaced by [redacted] */
#define SHORT_SECRET "pw12345"                   /* 4..9 bytes: overwritten with '*' */

static FILE *mem;   /* per test, from setup */
static char *text;  /* open_memstream buffer */
static size_t size; /* open_memstream length */

static void setup(void)
{
    text = NULL;
    size = 0;
    mem = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(mem);
}

static void teardown(void)
{
    log_shutdown();
    if (mem != NULL)
        fclose(mem);
    mem = NULL;
    free(text);
    text = NULL;
}

/* Stop logging into the stream and return everything written (owned by the fixture). */
static const char *captured(void)
{
    log_setup(NULL, ODSYNC_LOG_ERROR, LOG_TEXT);
    fclose(mem);
    mem = NULL;
    ck_assert_ptr_nonnull(text);
    return text;
}

/* Parse every line of out as a JSON object; returns the number of lines. Each line must end
 * with '\n'. The objects are appended to arr (caller deletes). */
static int parse_lines(const char *out, cJSON *arr)
{
    const char *p = out;
    int n = 0;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        const char *end = NULL;
        cJSON *obj;
        ck_assert_msg(nl != NULL, "line %d has no newline: %.80s", n + 1, p);
        obj = cJSON_ParseWithLengthOpts(p, (size_t)(nl - p), &end, 0);
        ck_assert_msg(cJSON_IsObject(obj) && end == nl,
                      "line %d is not exactly one JSON object: %.*s", n + 1,
                      (int)(nl - p > 200 ? 200 : nl - p), p);
        cJSON_AddItemToArray(arr, obj);
        p = nl + 1;
        n++;
    }
    return n;
}

/* The string member name of obj (asserts it exists). */
static const char *member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    ck_assert_msg(cJSON_IsString(v), "member %s missing", name);
    return v->valuestring;
}

START_TEST(text_redacts_long_secret)
{
    const char *out;
    ck_assert_int_eq(log_add_secret(LONG_SECRET), ODSYNC_OK);
    log_setup(mem, ODSYNC_LOG_INFO, LOG_TEXT);
    log_info("sink:crm", "auth with %s failed; retry with %s", LONG_SECRET, LONG_SECRET);
    out = captured();
    ck_assert_ptr_null(strstr(out, LONG_SECRET));
    ck_assert_int_eq(tu_count(out, "[redacted]"), 2);
    ck_assert_ptr_nonnull(strstr(out, "auth with [redacted] failed; retry with [redacted]\n"));
    ck_assert_ptr_nonnull(strstr(out, " info  sink:crm: "));
}
END_TEST

START_TEST(text_redacts_short_secret_with_stars)
{
    const char *out;
    ck_assert_int_eq(log_add_secret(SHORT_SECRET), ODSYNC_OK);
    log_setup(mem, ODSYNC_LOG_INFO, LOG_TEXT);
    log_warn("od", "key=%s.", SHORT_SECRET);
    out = captured();
    ck_assert_ptr_null(strstr(out, SHORT_SECRET));
    ck_assert_ptr_nonnull(strstr(out, "key=*******.\n"));
}
END_TEST

START_TEST(tiny_values_are_not_secrets)
{
    const char *out;
    ck_assert_int_eq(log_add_secret("abc"), ODSYNC_OK);
    ck_assert_int_eq(log_add_secret(NULL), ODSYNC_OK);
    log_setup(mem, ODSYNC_LOG_INFO, LOG_TEXT);
    log_info("t", "abc stays");
    out = captured();
    ck_assert_ptr_nonnull(strstr(out, "abc stays"));
}
END_TEST

START_TEST(json_redacts_secrets)
{
    cJSON *arr = cJSON_CreateArray();
    const char *out;
    ck_assert_int_eq(log_add_secret(LONG_SECRET), ODSYNC_OK);
    ck_assert_int_eq(log_add_secret(SHORT_SECRET), ODSYNC_OK);
    log_setup(mem, ODSYNC_LOG_INFO, LOG_JSON);
    log_error("sink:sms", "token \"%s\" and password %s", LONG_SECRET, SHORT_SECRET);
    out = captured();
    ck_assert_ptr_null(strstr(out, LONG_SECRET));
    ck_assert_ptr_null(strstr(out, SHORT_SECRET));
    ck_assert_int_eq(parse_lines(out, arr), 1);
    ck_assert_str_eq(member(cJSON_GetArrayItem(arr, 0), "msg"),
                     "token \"[redacted]\" and password *******");
    ck_assert_str_eq(member(cJSON_GetArrayItem(arr, 0), "level"), "error");
    ck_assert_str_eq(member(cJSON_GetArrayItem(arr, 0), "component"), "sink:sms");
    cJSON_Delete(arr);
}
END_TEST

START_TEST(redact_in_place)
{
    char buf[128];
    ck_assert_int_eq(log_add_secret(LONG_SECRET), ODSYNC_OK);
    snprintf(buf, sizeof(buf), "a%sb%s", LONG_SECRET, LONG_SECRET);
    log_redact(buf, sizeof(buf));
    ck_assert_str_eq(buf, "a[redacted]b[redacted]");
    log_redact(NULL, 0);
}
END_TEST

START_TEST(shutdown_forgets_secrets)
{
    char buf[64];
    ck_assert_int_eq(log_add_secret(LONG_SECRET), ODSYNC_OK);
    ck_assert_int_eq(log_add_secret(LONG_SECRET), ODSYNC_OK); /* duplicate: fine */
    log_shutdown();
    snprintf(buf, sizeof(buf), "%s", LONG_SECRET);
    log_redact(buf, sizeof(buf));
    ck_assert_str_eq(buf, LONG_SECRET);
}
END_TEST

/* A secret that the line limit cuts must not leave its first bytes in the line. */
START_TEST(secret_cut_by_line_limit_does_not_leak_prefix)
{
    char *pad = malloc(4100);
    const char *out;
    ck_assert_ptr_nonnull(pad);
    memset(pad, 'a', 4088);
    pad[4088] = '\0';
    ck_assert_int_eq(log_add_secret(LONG_SECRET), ODSYNC_OK);
    log_setup(mem, ODSYNC_LOG_INFO, LOG_TEXT);
    log_info("t", "%s%s", pad, LONG_SECRET);
    out = captured();
    ck_assert_msg(strstr(out, "hs-tok") == NULL, "secret prefix leaked: ...%s",
                  strstr(out, "hs-tok"));
    free(pad);
}
END_TEST

START_TEST(level_threshold)
{
    const char *out;
    log_setup(mem, ODSYNC_LOG_WARN, LOG_TEXT);
    log_error("t", "line-error");
    log_warn("t", "line-warn");
    log_info("t", "line-info");
    log_debug("t", "line-debug");
    out = captured();
    ck_assert_ptr_nonnull(strstr(out, "line-error"));
    ck_assert_ptr_nonnull(strstr(out, "line-warn"));
    ck_assert_ptr_null(strstr(out, "line-info"));
    ck_assert_ptr_null(strstr(out, "line-debug"));
    ck_assert_int_eq(tu_count(out, "\n"), 2);
}
END_TEST

START_TEST(level_debug_passes_everything)
{
    const char *out;
    log_setup(mem, ODSYNC_LOG_DEBUG, LOG_TEXT);
    log_debug("t", "line-debug");
    log_msg(99, "t", "clamped-to-debug");
    log_msg(-5, "t", "clamped-to-error");
    out = captured();
    ck_assert_ptr_nonnull(strstr(out, "debug t: line-debug"));
    ck_assert_ptr_nonnull(strstr(out, "debug t: clamped-to-debug"));
    ck_assert_ptr_nonnull(strstr(out, "error t: clamped-to-error"));
}
END_TEST

START_TEST(json_lines_are_valid_json)
{
    static const char *const msgs[] = {
        "plain",
        "quote \" backslash \\ slash /",
        "tab\there newline\nthere cr\rbell\a",
        "utf-8 caf\xc3\xa9 \xe2\x9c\x93",
        "",
    };
    cJSON *arr = cJSON_CreateArray();
    const char *out;
    size_t i;

    log_setup(mem, ODSYNC_LOG_DEBUG, LOG_JSON);
    for (i = 0; i < UTIL_ARRAY_LEN(msgs); i++)
        log_info("comp\"onent", "%s", msgs[i]);
    log_debug(NULL, "no component");
    out = captured();
    ck_assert_int_eq(parse_lines(out, arr), (int)UTIL_ARRAY_LEN(msgs) + 1);
    for (i = 0; i < UTIL_ARRAY_LEN(msgs); i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, (int)i);
        const char *ts = member(o, "ts");
        ck_assert_str_eq(member(o, "msg"), msgs[i]);
        ck_assert_str_eq(member(o, "level"), "info");
        ck_assert_str_eq(member(o, "component"), "comp\"onent");
        /* 2026-05-01T15:00:00.123Z */
        ck_assert_uint_eq(strlen(ts), 24);
        ck_assert_int_eq(ts[10], 'T');
        ck_assert_int_eq(ts[23], 'Z');
    }
    ck_assert_str_eq(member(cJSON_GetArrayItem(arr, (int)i), "component"), "");
    ck_assert_str_eq(member(cJSON_GetArrayItem(arr, (int)i), "level"), "debug");
    cJSON_Delete(arr);
}
END_TEST

/* A message that must be cut (many control bytes escape to 6 bytes each) still makes a
 * complete JSON line ending in '\n', whatever the length of the prefix before it. */
START_TEST(json_long_escaped_message_stays_valid)
{
    static const char *const comps[] = {"a", "ab", "abc", "abcd", "abcde", "abcdef"};
    char *msg = malloc(3001);
    cJSON *arr = cJSON_CreateArray();
    const char *out;
    size_t i;

    ck_assert_ptr_nonnull(msg);
    memset(msg, '\n', 3000);
    msg[3000] = '\0';
    log_setup(mem, ODSYNC_LOG_INFO, LOG_JSON);
    for (i = 0; i < UTIL_ARRAY_LEN(comps); i++)
        log_info(comps[i], "%s", msg);
    out = captured();
    ck_assert_int_eq(parse_lines(out, arr), (int)UTIL_ARRAY_LEN(comps));
    cJSON_Delete(arr);
    free(msg);
}
END_TEST

START_TEST(text_line_shape)
{
    const char *out;
    log_setup(mem, ODSYNC_LOG_INFO, LOG_TEXT);
    log_info(NULL, "hello %d", 42);
    out = captured();
    /* 2026-05-01T15:00:00.123Z info  -: hello 42 */
    ck_assert_uint_eq(strlen(out), 24 + 1 + 5 + 1 + 3 + 8 + 1);
    ck_assert_ptr_nonnull(strstr(out, "Z info  -: hello 42\n"));
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *redact = tcase_create("redaction");
    TCase *lines = tcase_create("lines");

    tcase_add_checked_fixture(redact, setup, teardown);
    tcase_add_test(redact, text_redacts_long_secret);
    tcase_add_test(redact, text_redacts_short_secret_with_stars);
    tcase_add_test(redact, tiny_values_are_not_secrets);
    tcase_add_test(redact, json_redacts_secrets);
    tcase_add_test(redact, redact_in_place);
    tcase_add_test(redact, shutdown_forgets_secrets);
    tcase_add_test(redact, secret_cut_by_line_limit_does_not_leak_prefix);
    suite_add_tcase(s, redact);

    tcase_add_checked_fixture(lines, setup, teardown);
    tcase_add_test(lines, level_threshold);
    tcase_add_test(lines, level_debug_passes_everything);
    tcase_add_test(lines, json_lines_are_valid_json);
    tcase_add_test(lines, json_long_escaped_message_stays_valid);
    tcase_add_test(lines, text_line_shape);
    suite_add_tcase(s, lines);
    return s;
}

ODSYNC_TEST_MAIN(log_suite)
