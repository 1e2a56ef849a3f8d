/*
 * test_keys: core/keys — the exact deterministic key strings, office id validation, and
 * refusal of bad ids and of buffers too small for the key.
 */
#include <string.h>

#include "keys.h"
#include "util.h"

#include "../support/testutil.h"

START_TEST(exact_key_strings)
{
    char buf[96];
    ck_assert_int_eq(keys_contact(buf, sizeof(buf), "main-st", 1042), ODSYNC_OK);
    ck_assert_str_eq(buf, "od:main-st:1042");
    ck_assert_int_eq(keys_recall_task(buf, sizeof(buf), "main-st", 77), ODSYNC_OK);
    ck_assert_str_eq(buf, "od:main-st:recall:77");
    ck_assert_int_eq(keys_review(buf, sizeof(buf), "main-st", 5), ODSYNC_OK);
    ck_assert_str_eq(buf, "od:main-st:apt:5:review");
}
END_TEST

START_TEST(keys_are_deterministic_and_office_scoped)
{
    char a[96], b[96];
    ck_assert_int_eq(keys_contact(a, sizeof(a), "main-st", 1042), ODSYNC_OK);
    ck_assert_int_eq(keys_contact(b, sizeof(b), "main-st", 1042), ODSYNC_OK);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(keys_contact(b, sizeof(b), "elm_st2", 1042), ODSYNC_OK);
    ck_assert_str_eq(b, "od:elm_st2:1042");
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(keys_contact(b, sizeof(b), "0", INT64_MAX), ODSYNC_OK);
    ck_assert_str_eq(b, "od:0:9223372036854775807");
}
END_TEST

START_TEST(valid_office_ids)
{
    ck_assert_int_eq(keys_valid_office("main-st"), 1);
    ck_assert_int_eq(keys_valid_office("a"), 1);
    ck_assert_int_eq(keys_valid_office("9lives_office-2"), 1);
    ck_assert_int_eq(keys_valid_office("abcdefghijklmnopqrstuvwxyz012345"), 1); /* 32 */
}
END_TEST

START_TEST(invalid_office_ids)
{
    static const char *const bad[] = {
        "",
        "Main-st",
        "-main",
        "_main",
        "main st",
        "main:st",
        "main/st",
        "main.st",
        "mäin",
        "main-st\n",
        "abcdefghijklmnopqrstuvwxyz0123456", /* 33 */
    };
    char buf[96];
    size_t i;
    ck_assert_int_eq(keys_valid_office(NULL), 0);
    for (i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        ck_assert_msg(keys_valid_office(bad[i]) == 0, "\"%s\" accepted", bad[i]);
        buf[0] = 'x';
        ck_assert_msg(keys_contact(buf, sizeof(buf), bad[i], 1) == ODSYNC_INVALID,
                      "\"%s\" accepted by keys_contact", bad[i]);
        ck_assert_str_eq(buf, "");
        ck_assert_int_eq(keys_recall_task(buf, sizeof(buf), bad[i], 1), ODSYNC_INVALID);
        ck_assert_int_eq(keys_review(buf, sizeof(buf), bad[i], 1), ODSYNC_INVALID);
    }
    ck_assert_int_eq(keys_contact(buf, sizeof(buf), NULL, 1), ODSYNC_INVALID);
}
END_TEST

START_TEST(invalid_ids_refused)
{
    char buf[96];
    static const int64_t bad[] = {0, -1, INT64_MIN};
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        buf[0] = 'x';
        ck_assert_int_eq(keys_contact(buf, sizeof(buf), "main-st", bad[i]), ODSYNC_INVALID);
        ck_assert_str_eq(buf, "");
        ck_assert_int_eq(keys_recall_task(buf, sizeof(buf), "main-st", bad[i]), ODSYNC_INVALID);
        ck_assert_int_eq(keys_review(buf, sizeof(buf), "main-st", bad[i]), ODSYNC_INVALID);
    }
}
END_TEST

START_TEST(truncation_refused)
{
    char buf[96];
    /* "od:main-st:1042" is 15 bytes: 16 fits exactly, 15 does not */
    ck_assert_int_eq(keys_contact(buf, 16, "main-st", 1042), ODSYNC_OK);
    ck_assert_str_eq(buf, "od:main-st:1042");
    ck_assert_int_eq(keys_contact(buf, 15, "main-st", 1042), ODSYNC_INVALID);
    /* "od:main-st:apt:5:review" is 23 bytes */
    ck_assert_int_eq(keys_review(buf, 24, "main-st", 5), ODSYNC_OK);
    ck_assert_int_eq(keys_review(buf, 23, "main-st", 5), ODSYNC_INVALID);
    ck_assert_int_eq(keys_recall_task(buf, 8, "main-st", 77), ODSYNC_INVALID);
    ck_assert_int_eq(keys_recall_task(buf, 0, "main-st", 77), ODSYNC_INVALID);
}
END_TEST

static Suite *keys_suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, exact_key_strings);
    tcase_add_test(tc, keys_are_deterministic_and_office_scoped);
    tcase_add_test(tc, valid_office_ids);
    tcase_add_test(tc, invalid_office_ids);
    tcase_add_test(tc, invalid_ids_refused);
    tcase_add_test(tc, truncation_refused);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(keys_suite)
