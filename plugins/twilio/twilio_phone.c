/*
 * twilio_phone.c: recipient numbers and patient-data-free error texts. Nothing here logs:
 * numbers are patient data.
 */
#include "twilio.h"

#include <string.h>

/* 1 when c is an ASCII digit. */
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int twilio_e164_valid(const char *s)
{
    size_t n;
    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    for (n = 1; s[n] != '\0'; n++)
        if (!is_digit(s[n]))
            return 0;
    n--; /* digits after '+' */
    if (n < 8 || n > 15)
        return 0;
    if (s[1] == '1') /* NANP: +1, a 3-digit area code starting 2-9, 7 more digits */
        return n == 11 && s[2] >= '2' && s[2] <= '9';
    return 1;
}

int twilio_normalize_phone(const char *in, char *out, size_t out_len)
{
    char digits[TWILIO_E164_MAX + 1];
    size_t n = 0;
    int plus = 0;
    const char *p = in;

    if (out_len == 0)
        return 0;
    out[0] = '\0';
    if (in == NULL || out_len < TWILIO_E164_MAX + 1)
        return 0;
    while (*p == ' ')
        p++;
    if (*p == '+') {
        plus = 1;
        p++;
    }
    for (; *p != '\0'; p++) {
        if (is_digit(*p)) {
            if (n >= sizeof(digits) - 1)
                return 0;
            digits[n++] = *p;
        } else if (*p != ' ' && *p != '-' && *p != '.' && *p != '(' && *p != ')') {
            return 0; /* letters, extensions, "whatsapp:" and the like */
        }
    }
    digits[n] = '\0';
    if (plus) {
        out[0] = '+';
        memcpy(out + 1, digits, n + 1);
    } else if (n == 10) {
        memcpy(out, "+1", 2);
        memcpy(out + 2, digits, n + 1);
    } else if (n == 11 && digits[0] == '1') {
        out[0] = '+';
        memcpy(out + 1, digits, n + 1);
    } else {
        return 0;
    }
    if (!twilio_e164_valid(out)) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}

void twilio_scrub_message(const char *in, size_t max, char *out, size_t out_len)
{
    size_t n = strlen(in), o = 0, i = 0;
    int cut = 0;
    if (out_len == 0)
        return;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)in[n] & 0xC0) == 0x80)
            n--;
        cut = 1;
    }
    while (i < n && o + 4 < out_len) {
        if (is_digit(in[i])) {
            size_t run = 0;
            while (i + run < n && is_digit(in[i + run]))
                run++;
            if (run >= 3) {
                out[o++] = '#';
            } else {
                for (size_t k = 0; k < run && o + 4 < out_len; k++)
                    out[o++] = in[i + k];
            }
            i += run;
            continue;
        }
        unsigned char c = (unsigned char)in[i++];
        out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    if (cut && o + 4 <= out_len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}
