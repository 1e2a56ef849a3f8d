/*
 * test_util: core/util — strict integer parsing, the string buffer, util_fmt truncation,
 * constant-time comparison, util_read_file limits and the fail-Nth allocation test mode.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

#include "../support/testutil.h"

/* ---- util_parse_i64 ----------------------------------------------------------------- */

START_TEST(parse_i64_valid)
{
    int64_t v = -1;
    ck_assert_int_eq(util_parse_i64("0", 0, 10, &v), ODSYNC_OK);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(util_parse_i64("1042", 1, INT64_MAX, &v), ODSYNC_OK);
    ck_assert_int_eq(v, 1042);
    ck_assert_int_eq(util_parse_i64("-17", -100, 100, &v), ODSYNC_OK);
    ck_assert_int_eq(v, -17);
    ck_assert_int_eq(util_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), ODSYNC_OK);
    ck_assert(v == INT64_MAX);
    ck_assert_int_eq(util_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), ODSYNC_OK);
    ck_assert(v == INT64_MIN);
    /* bounds are inclusive */
    ck_assert_int_eq(util_parse_i64("10", 0, 10, &v), ODSYNC_OK);
    ck_assert_int_eq(v, 10);
}
END_TEST

START_TEST(parse_i64_trailing_junk_refused)
{
    int64_t v = 99;
    ck_assert_int_eq(util_parse_i64("12abc", 0, 1000, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("12 ", 0, 1000, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("12\n", 0, 1000, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("1.5", 0, 1000, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("0x10", 0, 1000, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("abc", 0, 1000, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("-", -10, 1000, &v), ODSYNC_PARSE);
    ck_assert_int_eq(v, 99); /* untouched on failure */
}
END_TEST

START_TEST(parse_i64_overflow_and_range_refused)
{
    int64_t v = 99;
    ck_assert_int_eq(util_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v),
                     ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v),
                     ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("11", 0, 10, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("-1", 0, 10, &v), ODSYNC_PARSE);
    ck_assert_int_eq(v, 99);
}
END_TEST

START_TEST(parse_i64_empty_refused)
{
    int64_t v = 99;
    ck_assert_int_eq(util_parse_i64("", 0, 10, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64(NULL, 0, 10, &v), ODSYNC_PARSE);
    ck_assert_int_eq(v, 99);
}
END_TEST

START_TEST(parse_i64_leading_sign_or_space_refused)
{
    int64_t v = 99;
    ck_assert_int_eq(util_parse_i64("+5", 0, 10, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64(" 5", 0, 10, &v), ODSYNC_PARSE);
    ck_assert_int_eq(util_parse_i64("\t5", 0, 10, &v), ODSYNC_PARSE);
    ck_assert_int_eq(v, 99);
}
END_TEST

/* strtoll skips every isspace() byte, not only ' ' and '\t': "all of s" means none. */
START_TEST(parse_i64_any_leading_whitespace_refused)
{
    static const char *const inputs[] = {"\n5", "\r5", "\v5", "\f5", "- 5", "-+5"};
    int64_t v = 99;
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(inputs); i++)
        ck_assert_msg(util_parse_i64(inputs[i], -10, 10, &v) == ODSYNC_PARSE,
                      "input %zu accepted as %lld", i, (long long)v);
}
END_TEST

/* ---- sbuf ---------------------------------------------------------------------------- */

START_TEST(sbuf_appends_and_takes)
{
    struct sbuf b = {0};
    char *s;
    ck_assert_int_eq(sbuf_puts(&b, "od:"), ODSYNC_OK);
    ck_assert_int_eq(sbuf_append(&b, "main-st:xyz", 8), ODSYNC_OK);
    ck_assert_int_eq(sbuf_printf(&b, "%d", 1042), ODSYNC_OK);
    ck_assert_uint_eq(b.len, 15);
    ck_assert_str_eq(b.data, "od:main-st:1042");
    s = sbuf_take(&b);
    ck_assert_str_eq(s, "od:main-st:1042");
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    util_free(s);
    sbuf_free(&b);
}
END_TEST

START_TEST(sbuf_grows_past_initial_capacity)
{
    struct sbuf b = {0};
    char *s, *expect = malloc(10001);
    int i;
    ck_assert_ptr_nonnull(expect);
    for (i = 0; i < 10000; i++) {
        ck_assert_int_eq(sbuf_printf(&b, "%c", 'a' + i % 26), ODSYNC_OK);
        expect[i] = (char)('a' + i % 26);
    }
    expect[10000] = '\0';
    ck_assert_uint_eq(b.len, 10000);
    ck_assert_uint_ge(b.cap, 10001);
    s = sbuf_take(&b);
    ck_assert_str_eq(s, expect);
    util_free(s);
    free(expect);
}
END_TEST

START_TEST(sbuf_take_empty_is_empty_string)
{
    struct sbuf b = {0};
    char *s = sbuf_take(&b);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    util_free(s);
    sbuf_free(&b);
    sbuf_free(&b); /* twice is fine */
    sbuf_free(NULL);
}
END_TEST

START_TEST(sbuf_failure_is_sticky)
{
    struct sbuf b = {0};
    ck_assert_int_eq(sbuf_puts(&b, "start"), ODSYNC_OK);
    util_fail_alloc_after(1);
    /* more than the 64-byte first block, so it must grow */
    ck_assert_int_eq(sbuf_printf(&b, "%0200d", 7), ODSYNC_NOMEM);
    util_fail_alloc_after(0);
    ck_assert(b.failed);
    ck_assert_int_eq(sbuf_puts(&b, "x"), ODSYNC_NOMEM); /* no-op now */
    ck_assert_ptr_null(sbuf_take(&b));
    ck_assert_ptr_null(b.data);
    /* reusable after take/free */
    ck_assert_int_eq(sbuf_puts(&b, "again"), ODSYNC_OK);
    ck_assert_str_eq(b.data, "again");
    sbuf_free(&b);
}
END_TEST

/* ---- util_fmt ------------------------------------------------------------------------ */

START_TEST(fmt_reports_truncation)
{
    char buf[8];
    ck_assert_int_eq(util_fmt(buf, sizeof(buf), "%s", "1234567"), ODSYNC_OK);
    ck_assert_str_eq(buf, "1234567");
    ck_assert_int_eq(util_fmt(buf, sizeof(buf), "%s", "12345678"), ODSYNC_INVALID);
    ck_assert_str_eq(buf, "1234567"); /* truncated, still terminated */
    ck_assert_int_eq(util_fmt(buf, sizeof(buf), "od:%s:%d", "main-st", 1), ODSYNC_INVALID);
    ck_assert_int_eq(util_fmt(buf, 1, "%s", "x"), ODSYNC_INVALID);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(util_fmt(buf, 1, "%s", ""), ODSYNC_OK);
}
END_TEST

/* ---- util_secure_equal --------------------------------------------------------------- */

START_TEST(secure_equal_cases)
{
    ck_assert_int_eq(util_secure_equal("token-abc", "token-abc"), 1);
    ck_assert_int_eq(util_secure_equal("", ""), 1);
    ck_assert_int_eq(util_secure_equal("token-abc", "token-abd"), 0);
    ck_assert_int_eq(util_secure_equal("token-abc", "token-ab"), 0);
    ck_assert_int_eq(util_secure_equal("token-ab", "token-abc"), 0);
    ck_assert_int_eq(util_secure_equal("", "x"), 0);
    ck_assert_int_eq(util_secure_equal("x", ""), 0);
    ck_assert_int_eq(util_secure_equal(NULL, "x"), 0);
    ck_assert_int_eq(util_secure_equal("x", NULL), 0);
    ck_assert_int_eq(util_secure_equal(NULL, NULL), 0);
}
END_TEST

/* ---- util_read_file ------------------------------------------------------------------ */

START_TEST(read_file_limits)
{
    char *dir = tu_mkdtemp(), *path, *out = (char *)1;
    size_t len = 0;

    path = tu_write_file(dir, "ten", "0123456789");
    ck_assert_int_eq(util_read_file(path, 10, &out, &len), ODSYNC_OK);
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(out, "0123456789");
    util_free(out);

    ck_assert_int_eq(util_read_file(path, 9, &out, &len), ODSYNC_INVALID);
    ck_assert_ptr_null(out);
    free(path);

    path = tu_write_file(dir, "empty", "");
    ck_assert_int_eq(util_read_file(path, 0, &out, &len), ODSYNC_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(out, "");
    util_free(out);
    free(path);

    path = tu_build_path("no/such/file");
    errno = 0;
    ck_assert_int_eq(util_read_file(path, 100, &out, NULL), ODSYNC_IO);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(out);
    free(path);

    tu_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(read_file_larger_than_a_chunk)
{
    char *dir = tu_mkdtemp(), *path, *text = malloc(20001), *out = NULL;
    size_t len = 0;
    ck_assert_ptr_nonnull(text);
    memset(text, 'z', 20000);
    text[20000] = '\0';
    path = tu_write_file(dir, "big", text);
    ck_assert_int_eq(util_read_file(path, 20000, &out, &len), ODSYNC_OK);
    ck_assert_uint_eq(len, 20000);
    ck_assert_str_eq(out, text);
    util_free(out);
    ck_assert_int_eq(util_read_file(path, 19999, &out, &len), ODSYNC_INVALID);
    free(text);
    free(path);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

/* ---- fail-Nth allocation mode --------------------------------------------------------- */

START_TEST(fail_nth_allocation)
{
    void *a, *b, *c, *d;
    util_fail_alloc_after(3);
    a = util_malloc(8);
    b = util_strdup("x");
    c = util_calloc(1, 8);     /* the 3rd: fails */
    d = util_realloc(NULL, 8); /* and every later one */
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert_ptr_null(d);
    ck_assert_ptr_null(util_strndup("abc", 2));
    util_fail_alloc_after(0); /* off again */
    c = util_calloc(1, 8);
    ck_assert_ptr_nonnull(c);
    util_free(a);
    util_free(b);
    util_free(c);
    util_free(NULL);
}
END_TEST

START_TEST(fail_first_allocation)
{
    void *p;
    util_fail_alloc_after(1);
    ck_assert_ptr_null(util_malloc(1));
    util_fail_alloc_after(0);
    p = util_malloc(1);
    ck_assert_ptr_nonnull(p);
    util_free(p);
}
END_TEST

START_TEST(fail_nth_reaches_cjson)
{
    cJSON *o;
    util_init_cjson_hooks();
    util_fail_alloc_after(1);
    o = cJSON_CreateObject();
    util_fail_alloc_after(0);
    ck_assert_ptr_null(o);
    o = cJSON_CreateObject();
    ck_assert_ptr_nonnull(o);
    cJSON_Delete(o);
}
END_TEST

START_TEST(strdup_null_and_strndup)
{
    char *s;
    ck_assert_ptr_null(util_strdup(NULL));
    ck_assert_ptr_null(util_strndup(NULL, 3));
    s = util_strndup("abcdef", 3);
    ck_assert_str_eq(s, "abc");
    util_free(s);
}
END_TEST

START_TEST(clocks_advance)
{
    int64_t w = util_now_ms(), m = util_monotonic_ms();
    ck_assert(w > INT64_C(1600000000000)); /* after 2020 */
    ck_assert(util_monotonic_ms() >= m);
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *parse = tcase_create("parse_i64");
    TCase *buf = tcase_create("sbuf_fmt");
    TCase *misc = tcase_create("misc");

    tcase_add_test(parse, parse_i64_valid);
    tcase_add_test(parse, parse_i64_trailing_junk_refused);
    tcase_add_test(parse, parse_i64_overflow_and_range_refused);
    tcase_add_test(parse, parse_i64_empty_refused);
    tcase_add_test(parse, parse_i64_leading_sign_or_space_refused);
    tcase_add_test(parse, parse_i64_any_leading_whitespace_refused);
    suite_add_tcase(s, parse);

    tcase_add_test(buf, sbuf_appends_and_takes);
    tcase_add_test(buf, sbuf_grows_past_initial_capacity);
    tcase_add_test(buf, sbuf_take_empty_is_empty_string);
    tcase_add_test(buf, sbuf_failure_is_sticky);
    tcase_add_test(buf, fmt_reports_truncation);
    suite_add_tcase(s, buf);

    tcase_add_test(misc, secure_equal_cases);
    tcase_add_test(misc, read_file_limits);
    tcase_add_test(misc, read_file_larger_than_a_chunk);
    tcase_add_test(misc, fail_nth_allocation);
    tcase_add_test(misc, fail_first_allocation);
    tcase_add_test(misc, fail_nth_reaches_cjson);
    tcase_add_test(misc, strdup_null_and_strndup);
    tcase_add_test(misc, clocks_advance);
    suite_add_tcase(s, misc);
    return s;
}

ODSYNC_TEST_MAIN(util_suite)
