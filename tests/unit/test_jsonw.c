/*
 * test_jsonw: core/jsonw writes exactly what cJSON_PrintUnformatted prints for the same
 * members (stored hashes depend on it), for every escape, integers at and past int's range,
 * and out-of-memory.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonw.h"
#include "util.h"

#include "../support/testutil.h"

/* cJSON's text for the same object; caller frees with cJSON_free. */
static char *cjson_text(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

START_TEST(strings_match_cjson)
{
    static const char *values[] = {
        "",
        "plain",
        "quote \" and backslash \\",
        "\b\f\n\r\t",
        "\x01\x02\x1f\x7f",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xa6\xb7",
        "/slash/",
        "tail\\",
    };
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(values); i++) {
        struct jsonw w;
        cJSON *o = cJSON_CreateObject();
        char *mine, *theirs;
        cJSON_AddStringToObject(o, values[i], values[i]);
        cJSON_AddNullToObject(o, "n");
        theirs = cjson_text(o);
        jsonw_begin(&w);
        jsonw_str(&w, values[i], values[i]);
        jsonw_str(&w, "n", NULL);
        mine = jsonw_end(&w);
        ck_assert_ptr_nonnull(mine);
        ck_assert_str_eq(mine, theirs);
        util_free(mine);
        cJSON_free(theirs);
    }
}
END_TEST

START_TEST(numbers_match_cjson)
{
    static const int64_t values[] = {
        0,
        1,
        -1,
        9,
        10,
        42,
        123456789,
        INT_MAX,
        INT_MIN,
        (int64_t)INT_MAX + 1,
        (int64_t)INT_MIN - 1,
        4000000000LL,
        999999999999999LL,
        1000000000000000LL,
        123456789012345678LL,
        INT64_MAX,
        INT64_MIN,
    };
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(values); i++) {
        struct jsonw w;
        cJSON *o = cJSON_CreateObject();
        char *mine, *theirs;
        cJSON_AddNumberToObject(o, "v", (double)values[i]);
        cJSON_AddTrueToObject(o, "t");
        cJSON_AddFalseToObject(o, "f");
        theirs = cjson_text(o);
        jsonw_begin(&w);
        jsonw_int(&w, "v", values[i]);
        jsonw_bool(&w, "t", 7);
        jsonw_bool(&w, "f", 0);
        mine = jsonw_end(&w);
        ck_assert_ptr_nonnull(mine);
        ck_assert_msg(strcmp(mine, theirs) == 0, "%lld: %s vs cJSON %s", (long long)values[i], mine,
                      theirs);
        util_free(mine);
        cJSON_free(theirs);
    }
}
END_TEST

START_TEST(empty_and_raw)
{
    struct jsonw w;
    char *s;
    jsonw_begin(&w);
    s = jsonw_end(&w);
    ck_assert_str_eq(s, "{}");
    util_free(s);
    jsonw_begin(&w);
    jsonw_raw(&w, "a", "[1,2]", 5);
    jsonw_null(&w, "b");
    s = jsonw_end(&w);
    ck_assert_str_eq(s, "{\"a\":[1,2],\"b\":null}");
    util_free(s);
}
END_TEST

START_TEST(out_of_memory_gives_null)
{
    int nth;
    for (nth = 1; nth <= 3; nth++) {
        struct jsonw w;
        char *s;
        util_fail_alloc_after(nth);
        jsonw_begin(&w);
        jsonw_str(&w, "name",
                  "a value long enough to need the buffer to grow once or twice "
                  "more than its first allocation gave it, surely by now");
        jsonw_int(&w, "n", 5);
        s = jsonw_end(&w);
        util_fail_alloc_after(0);
        if (s != NULL) { /* the failure came after the last allocation: all of it is there */
            ck_assert_ptr_nonnull(strstr(s, "\"n\":5}"));
            util_free(s);
        }
    }
    /* the first allocation failing always loses the object */
    {
        struct jsonw w;
        util_fail_alloc_after(1);
        jsonw_begin(&w);
        jsonw_int(&w, "n", 5);
        ck_assert_ptr_null(jsonw_end(&w));
        util_fail_alloc_after(0);
    }
}
END_TEST

static Suite *jsonw_suite(void)
{
    Suite *s = suite_create("jsonw");
    TCase *tc = tcase_create("jsonw");
    tcase_add_test(tc, strings_match_cjson);
    tcase_add_test(tc, numbers_match_cjson);
    tcase_add_test(tc, empty_and_raw);
    tcase_add_test(tc, out_of_memory_gives_null);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(jsonw_suite)
