/*
 * test_template: core/template — the variable whitelist checked at compile time, placeholder
 * syntax errors, the SMS rules (practice name present, opt-out appended, one segment of 160
 * GSM-7 characters with extension characters counting 2, or 70 UCS-2 code units), email
 * escaping, missing variables, and allocation failure at every step.
 */
#include <string.h>

#include "template.h"
#include "util.h"

#include "../support/testutil.h"

#define PATH "campaigns.recall.sms"

static struct template *compile_ok(const char *text, int channel)
{
    struct template *t = NULL;
    char err[512];
    int rc = template_compile(text, channel, PATH, &t, err, sizeof(err));
    ck_assert_msg(rc == ODSYNC_OK, "compile failed: %s", err);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Render and return the result (caller frees), failing the test on an error. */
static char *render_ok(const struct template *t, const struct template_vars *v)
{
    char *out = NULL;
    char err[512];
    int rc = template_render(t, v, &out, err, sizeof(err));
    ck_assert_msg(rc == ODSYNC_OK, "render failed: %s", err);
    ck_assert_ptr_nonnull(out);
    return out;
}

/* A string of n copies of c (caller frees). */
static char *repeat(char c, size_t n)
{
    char *s = util_malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static const struct template_vars all_vars = {
    .first_name = "Ann",
    .practice_name = "Main Street Dental",
    .practice_phone = "(555) 010-1000",
    .appointment_date = "May 1",
    .appointment_time = "3:00 PM",
    .booking_link = "https://b.example/x",
    .review_link = "https://r.example/y",
    .opt_out = "Reply STOP to end.",
};

START_TEST(every_variable_renders)
{
    static const char *const names[] = {"first_name",       "practice_name",    "practice_phone",
                                        "appointment_date", "appointment_time", "booking_link",
                                        "review_link",      "opt_out"};
    struct template *t = compile_ok("{{first_name}}|{{ practice_name }}|{{practice_phone}}|"
                                    "{{appointment_date}}|{{appointment_time}}|{{booking_link}}|"
                                    "{{review_link}}|{{  opt_out\t}}",
                                    TEMPLATE_EMAIL);
    char *out = render_ok(t, &all_vars);
    size_t i;
    ck_assert_str_eq(out, "Ann|Main Street Dental|(555) 010-1000|May 1|3:00 PM|"
                          "https://b.example/x|https://r.example/y|Reply STOP to end.");
    for (i = 0; i < UTIL_ARRAY_LEN(names); i++)
        ck_assert_int_eq(template_uses(t, names[i]), 1);
    ck_assert_int_eq(template_uses(t, "procedure"), 0);
    util_free(out);
    template_free(t);

    /* and in an SMS, which then needs no appended opt-out */
    t = compile_ok("{{first_name}}: {{appointment_date}} {{appointment_time}} at "
                   "{{practice_name}} {{practice_phone}} {{booking_link}} {{review_link}} "
                   "{{opt_out}}",
                   TEMPLATE_SMS);
    out = render_ok(t, &all_vars);
    ck_assert_str_eq(out, "Ann: May 1 3:00 PM at Main Street Dental (555) 010-1000 "
                          "https://b.example/x https://r.example/y Reply STOP to end.");
    util_free(out);
    template_free(t);
}
END_TEST

START_TEST(unknown_variable_refused_with_exact_message)
{
    struct template *t = (struct template *)&t; /* must be reset to NULL */
    char err[512];
    ck_assert_int_eq(template_compile("Hi {{first_name}}, your {{procedure}} at {{practice_name}}",
                                      TEMPLATE_SMS, PATH, &t, err, sizeof(err)),
                     ODSYNC_INVALID);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(err, "campaigns.recall.sms: unknown variable {{procedure}} (allowed: "
                          "first_name, practice_name, practice_phone, appointment_date, "
                          "appointment_time, booking_link, review_link, opt_out)");
    /* case matters; email is checked the same way */
    ck_assert_int_eq(template_compile("Dear {{ First_Name }}", TEMPLATE_EMAIL,
                                      "campaigns.review.email_body", &t, err, sizeof(err)),
                     ODSYNC_INVALID);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(err, "campaigns.review.email_body: unknown variable {{First_Name}} (allowed: "
                          "first_name, practice_name, practice_phone, appointment_date, "
                          "appointment_time, booking_link, review_link, opt_out)");
    ck_assert_int_eq(
        template_compile("{{balance}}", TEMPLATE_EMAIL_SUBJECT, NULL, &t, err, sizeof(err)),
        ODSYNC_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "template: unknown variable {{balance}}"));
}
END_TEST

START_TEST(bad_placeholders_refused)
{
    static const struct {
        const char *text;
        const char *err;
    } cases[] = {
        {"Hi {{first_name", PATH ": unterminated {{ at offset 3"},
        {"Hi {{first_name} } {{practice_name}}", PATH ": malformed placeholder at offset 3 "
                                                      "(expected {{ name }})"},
        {"{{practice_name}} {{", PATH ": unterminated {{ at offset 18"},
        {"{{}} {{practice_name}}",
         PATH ": malformed placeholder at offset 0 (expected {{ name }})"},
        {"{{ 1st }} {{practice_name}}", PATH ": malformed placeholder at offset 0 (expected "
                                             "{{ name }})"},
        {"{{{practice_name}}}", PATH ": malformed placeholder at offset 0 (expected {{ name }})"},
        {"{{first name}} {{practice_name}}", PATH ": malformed placeholder at offset 0 (expected "
                                                  "{{ name }})"},
        {"", PATH ": empty template"},
        {"\xff{{practice_name}}", PATH ": template is not valid UTF-8"},
    };
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct template *t = NULL;
        char err[512];
        ck_assert_int_eq(template_compile(cases[i].text, TEMPLATE_SMS, PATH, &t, err, sizeof(err)),
                         ODSYNC_INVALID);
        ck_assert_ptr_null(t);
        ck_assert_str_eq(err, cases[i].err);
    }
}
END_TEST

START_TEST(literal_braces_are_text)
{
    struct template *t = compile_ok("a { b }} c {x} {{practice_name}}}", TEMPLATE_EMAIL_SUBJECT);
    char *out = render_ok(t, &all_vars);
    ck_assert_str_eq(out, "a { b }} c {x} Main Street Dental}");
    util_free(out);
    template_free(t);
    /* a value that looks like a placeholder is inserted as text, never expanded */
    t = compile_ok("Hi {{first_name}}", TEMPLATE_EMAIL_SUBJECT);
    {
        struct template_vars v = all_vars;
        v.first_name = "{{practice_name}}";
        out = render_ok(t, &v);
    }
    ck_assert_str_eq(out, "Hi {{practice_name}}");
    util_free(out);
    template_free(t);
}
END_TEST

START_TEST(sms_without_practice_name_refused)
{
    struct template *t = NULL;
    char err[512];
    ck_assert_int_eq(template_compile("Hi {{first_name}}, you are due for a visit. "
                                      "Call {{practice_phone}}",
                                      TEMPLATE_SMS, PATH, &t, err, sizeof(err)),
                     ODSYNC_INVALID);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(err, PATH ": an sms must contain {{practice_name}}");

    /* email bodies compile; the caller checks subject or body with template_uses */
    t = compile_ok("Hi {{first_name}}", TEMPLATE_EMAIL);
    ck_assert_int_eq(template_uses(t, "practice_name"), 0);
    ck_assert_int_eq(template_uses(t, "first_name"), 1);
    template_free(t);
    t = compile_ok("A note from {{ practice_name }}", TEMPLATE_EMAIL_SUBJECT);
    ck_assert_int_eq(template_uses(t, "practice_name"), 1);
    template_free(t);
    ck_assert_int_eq(template_uses(NULL, "practice_name"), 0);
    template_free(NULL);
}
END_TEST

START_TEST(opt_out_auto_appended)
{
    struct template *t = compile_ok("Hi {{first_name}}, {{practice_name}} here.", TEMPLATE_SMS);
    struct template_vars v = all_vars;
    char *out;
    char err[512];

    v.opt_out = NULL; /* the default line */
    out = render_ok(t, &v);
    ck_assert_str_eq(out, "Hi Ann, Main Street Dental here. Reply STOP to opt out.");
    util_free(out);
    v.opt_out = "Txt STOP to quit.";
    out = render_ok(t, &v);
    ck_assert_str_eq(out, "Hi Ann, Main Street Dental here. Txt STOP to quit.");
    util_free(out);
    /* an empty opt-out line is never silently dropped */
    v.opt_out = " ";
    out = (char *)err;
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, PATH ": missing variable {{opt_out}}");
    template_free(t);

    /* a template with {{opt_out}} gets it where it says, and only once */
    t = compile_ok("{{opt_out}} {{practice_name}}", TEMPLATE_SMS);
    v.opt_out = NULL;
    out = render_ok(t, &v);
    ck_assert_str_eq(out, "Reply STOP to opt out. Main Street Dental");
    util_free(out);
    template_free(t);
}
END_TEST

START_TEST(gsm7_boundary_160_161)
{
    /* "P: " + name + " Reply STOP to opt out." = 3 + n + 23 */
    struct template *t = compile_ok("{{practice_name}}: {{first_name}}", TEMPLATE_SMS);
    struct template_vars v = {0};
    char *name = repeat('x', 134), *out = NULL;
    char err[512];
    int units = 0, limit = 0;

    v.practice_name = "P";
    v.first_name = name;
    out = render_ok(t, &v);
    ck_assert_int_eq(template_sms_length(out, &units, &limit), ODSYNC_OK);
    ck_assert_int_eq(units, 160);
    ck_assert_int_eq(limit, 160);
    util_free(out);
    util_free(name);

    name = repeat('x', 135);
    v.first_name = name;
    out = (char *)err;
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, PATH ": sms is 161 characters, at most 160");
    ck_assert_ptr_null(strstr(err, "xxx")); /* no patient data in the message */
    util_free(name);
    template_free(t);

    /* compile time: fixed text + " Reply STOP to opt out." (23) over 160 is refused */
    {
        char *lit = repeat('y', 137), *text = NULL;
        struct sbuf b = {0};
        sbuf_puts(&b, "{{practice_name}}");
        sbuf_puts(&b, lit);
        text = sbuf_take(&b);
        t = compile_ok(text, TEMPLATE_SMS); /* 137 + 23 = 160 */
        template_free(t);
        util_free(text);
        sbuf_puts(&b, "{{practice_name}}y");
        sbuf_puts(&b, lit);
        text = sbuf_take(&b);
        t = (struct template *)&t;
        ck_assert_int_eq(template_compile(text, TEMPLATE_SMS, PATH, &t, err, sizeof(err)),
                         ODSYNC_INVALID);
        ck_assert_ptr_null(t);
        ck_assert_str_eq(err, PATH
                         ": sms fixed text with the opt-out line is 161 characters, at most 160");
        util_free(text);
        util_free(lit);
    }
}
END_TEST

START_TEST(extension_characters_count_two)
{
    struct template *t;
    struct template_vars v = {0};
    char *name, *out = NULL;
    char err[512];
    int units = 0, limit = 0;

    ck_assert_int_eq(template_sms_length("\xe2\x82\xac[]{}~^|\\", &units, &limit), ODSYNC_OK);
    ck_assert_int_eq(units, 18);
    ck_assert_int_eq(limit, 160);
    ck_assert_int_eq(template_sms_length("a\xe2\x82\xac \xc3\xa9\xc3\x85\xce\x94", &units, &limit),
                     ODSYNC_OK); /* a€ éÅΔ: basic Latin-1 and Greek letters count 1 */
    ck_assert_int_eq(units, 7);
    ck_assert_int_eq(limit, 160);
    ck_assert_int_eq(template_sms_length("", &units, &limit), ODSYNC_OK);
    ck_assert_int_eq(units, 0);

    /* 3 + (132 + 2) + 23 = 160 fits; one more x is 161 */
    t = compile_ok("{{practice_name}}: {{first_name}}", TEMPLATE_SMS);
    v.practice_name = "P";
    name = repeat('x', 133);
    name[0] = '[';
    v.first_name = name + 1; /* 132 x */
    out = render_ok(t, &v);
    util_free(out);
    v.first_name = name; /* "[" + 132 x: 134 septets */
    out = render_ok(t, &v);
    ck_assert_int_eq(template_sms_length(out, &units, &limit), ODSYNC_OK);
    ck_assert_int_eq(units, 160);
    util_free(out);
    util_free(name);
    name = repeat('x', 134);
    name[5] = '~'; /* 134 characters, 135 septets */
    v.first_name = name;
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_str_eq(err, PATH ": sms is 161 characters, at most 160");
    util_free(name);
    template_free(t);
}
END_TEST

START_TEST(non_gsm_character_limits_to_70)
{
    struct template *t;
    struct template_vars v = {0};
    char name[128];
    char *out = NULL;
    char err[512];
    int units = 0, limit = 0;

    ck_assert_int_eq(template_sms_length("Zo\xc3\xab", &units, &limit), ODSYNC_OK); /* Zoë */
    ck_assert_int_eq(units, 3);
    ck_assert_int_eq(limit, 70);
    ck_assert_int_eq(template_sms_length("\xc3\xa7", &units, &limit), ODSYNC_OK); /* ç */
    ck_assert_int_eq(limit, 70);
    ck_assert_int_eq(template_sms_length("`", &units, &limit), ODSYNC_OK);
    ck_assert_int_eq(limit, 70);
    ck_assert_int_eq(template_sms_length("\xf0\x9f\x98\x80[", &units, &limit),
                     ODSYNC_OK); /* emoji: a surrogate pair; [ is one UCS-2 unit */
    ck_assert_int_eq(units, 3);
    ck_assert_int_eq(limit, 70);
    ck_assert_int_eq(template_sms_length("\xc3", &units, &limit), ODSYNC_INVALID);
    ck_assert_int_eq(template_sms_length(NULL, &units, &limit), ODSYNC_INVALID);

    /* "P: " + name + 23 = 70 when name is 44 code units */
    t = compile_ok("{{practice_name}}: {{first_name}}", TEMPLATE_SMS);
    v.practice_name = "P";
    memset(name, 0, sizeof(name));
    memcpy(name, "Zo\xc3\xab", 4);
    memset(name + 4, 'x', 41);
    v.first_name = name;
    out = render_ok(t, &v);
    ck_assert_int_eq(template_sms_length(out, &units, &limit), ODSYNC_OK);
    ck_assert_int_eq(units, 70);
    ck_assert_int_eq(limit, 70);
    util_free(out);
    name[45] = 'x';
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, PATH ": sms is 71 characters, at most 70");
    ck_assert_ptr_null(strstr(err, "Zo"));
    template_free(t);
}
END_TEST

START_TEST(email_values_escaped)
{
    struct template *t =
        compile_ok("<p>Hi {{first_name}} &amp; welcome to {{practice_name}}</p>", TEMPLATE_EMAIL);
    struct template_vars v = all_vars;
    char *out;
    char err[512];

    v.first_name = "<b>Al</b> & \"Jo\" 'x'";
    v.practice_name = "A&B";
    out = render_ok(t, &v);
    ck_assert_str_eq(out, "<p>Hi &lt;b&gt;Al&lt;/b&gt; &amp; &quot;Jo&quot; &#39;x&#39; &amp; "
                          "welcome to A&amp;B</p>");
    util_free(out);
    template_free(t);

    /* SMS and subjects insert values as they are */
    t = compile_ok("{{practice_name}}: {{first_name}}", TEMPLATE_SMS);
    out = render_ok(t, &v);
    ck_assert_str_eq(out, "A&B: <b>Al</b> & \"Jo\" 'x' Reply STOP to end.");
    util_free(out);
    template_free(t);
    t = compile_ok("{{first_name}}, from {{practice_name}}", TEMPLATE_EMAIL_SUBJECT);
    out = render_ok(t, &v);
    ck_assert_str_eq(out, "<b>Al</b> & \"Jo\" 'x', from A&B");
    util_free(out);
    /* a line break in a subject value is refused (header injection) */
    v.first_name = "Ann\r\nBcc: x@example.com";
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, PATH ": variable {{first_name}} holds a line break");
    template_free(t);
}
END_TEST

START_TEST(missing_variable_refused)
{
    struct template *t =
        compile_ok("Hi {{first_name}}, {{practice_name}} misses you.", TEMPLATE_SMS);
    struct template_vars v = all_vars;
    char *out = NULL;
    char err[512];
    static const char *const blanks[] = {NULL, "", "  \t"};
    size_t i;

    for (i = 0; i < UTIL_ARRAY_LEN(blanks); i++) {
        v.first_name = blanks[i];
        out = (char *)err;
        ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
        ck_assert_ptr_null(out);
        ck_assert_str_eq(err, PATH ": missing variable {{first_name}}");
    }
    v.first_name = "Ann";
    v.practice_name = NULL;
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_str_eq(err, PATH ": missing variable {{practice_name}}");
    /* a value that is not UTF-8 */
    v.practice_name = "Main \xff";
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_str_eq(err, PATH ": variable {{practice_name}} is not valid UTF-8");
    template_free(t);

    /* email: opt_out has no default */
    t = compile_ok("{{opt_out}}", TEMPLATE_EMAIL);
    v = all_vars;
    v.opt_out = NULL;
    ck_assert_int_eq(template_render(t, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_str_eq(err, PATH ": missing variable {{opt_out}}");
    ck_assert_int_eq(template_render(NULL, &v, &out, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_int_eq(template_render(t, NULL, &out, err, sizeof(err)), ODSYNC_INVALID);
    template_free(t);
    ck_assert_int_eq(template_compile("x", 7, PATH, &t, err, sizeof(err)), ODSYNC_INVALID);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(template_compile(NULL, TEMPLATE_SMS, PATH, &t, NULL, 0), ODSYNC_INVALID);
}
END_TEST

START_TEST(allocation_failures_never_crash_or_leak)
{
    static const struct {
        const char *text;
        int channel;
    } cases[] = {
        {"Hi {{first_name}}, {{practice_name}} {{practice_phone}} {{booking_link}}", TEMPLATE_SMS},
        {"<p>{{first_name}} &amp; {{practice_name}}</p>{{a}}{{b}}{{c}}{{d}}{{e}}", TEMPLATE_EMAIL},
        {"<p>{{first_name}}</p>{{review_link}}{{opt_out}}{{appointment_date}}{{appointment_time}}"
         "{{booking_link}}{{practice_phone}}{{practice_name}}{{first_name}}{{review_link}}",
         TEMPLATE_EMAIL},
    };
    struct template_vars v = all_vars;
    size_t c;

    v.first_name = "<Ann & \"Bo\">";
    for (c = 0; c < UTIL_ARRAY_LEN(cases); c++) {
        long nth;
        int done = 0;
        for (nth = 1; nth < 500 && !done; nth++) {
            struct template *t = NULL;
            char *out = NULL;
            char err[512];
            int rc;
            util_fail_alloc_after(nth);
            rc = template_compile(cases[c].text, cases[c].channel, PATH, &t, err, sizeof(err));
            if (rc == ODSYNC_OK) {
                rc = template_render(t, &v, &out, err, sizeof(err));
                ck_assert(rc == ODSYNC_OK || rc == ODSYNC_NOMEM);
                ck_assert(rc == ODSYNC_OK ? out != NULL : out == NULL);
                done = rc == ODSYNC_OK;
            } else if (rc == ODSYNC_NOMEM) {
                ck_assert_ptr_null(t);
                ck_assert_ptr_nonnull(strstr(err, "out of memory"));
            } else {
                /* {{a}} is not whitelisted: refusal, never a crash */
                ck_assert_int_eq(rc, ODSYNC_INVALID);
                ck_assert_ptr_null(t);
                done = 1;
            }
            util_fail_alloc_after(0);
            util_free(out);
            template_free(t);
        }
        ck_assert_msg(done, "case %zu never succeeded", c);
        ck_assert_int_gt(nth, 2); /* at least one allocation failure was exercised */
    }
}
END_TEST

static Suite *template_suite(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("template");
    tcase_add_test(tc, every_variable_renders);
    tcase_add_test(tc, unknown_variable_refused_with_exact_message);
    tcase_add_test(tc, bad_placeholders_refused);
    tcase_add_test(tc, literal_braces_are_text);
    tcase_add_test(tc, sms_without_practice_name_refused);
    tcase_add_test(tc, opt_out_auto_appended);
    tcase_add_test(tc, gsm7_boundary_160_161);
    tcase_add_test(tc, extension_characters_count_two);
    tcase_add_test(tc, non_gsm_character_limits_to_70);
    tcase_add_test(tc, email_values_escaped);
    tcase_add_test(tc, missing_variable_refused);
    tcase_add_test(tc, allocation_failures_never_crash_or_leak);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(template_suite)
