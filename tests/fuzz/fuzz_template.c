/*
 * fuzz_template: the template compiler and renderer. Input: one byte choosing the channel
 * (SMS, email body, email subject), then the template text up to the first NUL, then up to
 * eight NUL-separated variable values (first_name ... opt_out; missing ones are NULL).
 * template_sms_length runs on every rendered SMS and on the raw text.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "template.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy, *parts[9] = {0}, *p, *end, err[512], *out = NULL;
    struct template *t = NULL;
    struct template_vars v;
    int channel, n = 0, units, limit;

    if (size < 1)
        return 0;
    channel = data[0] % 3;
    copy = fuzz_strndup(data + 1, size - 1);
    end = copy + size - 1;
    for (p = copy; n < 9 && p <= end; p += strlen(p) + 1)
        parts[n++] = p;
    template_sms_length(parts[0], &units, &limit);
    v.first_name = parts[1];
    v.practice_name = parts[2];
    v.practice_phone = parts[3];
    v.appointment_date = parts[4];
    v.appointment_time = parts[5];
    v.booking_link = parts[6];
    v.review_link = parts[7];
    v.opt_out = parts[8];
    if (template_compile(parts[0], channel, "fuzz.template", &t, err, sizeof(err)) == ODSYNC_OK) {
        template_uses(t, "first_name");
        if (template_render(t, &v, &out, err, sizeof(err)) == ODSYNC_OK && channel == TEMPLATE_SMS)
            template_sms_length(out, &units, &limit);
        util_free(out);
        template_free(t);
    }
    free(copy);
    return 0;
}
