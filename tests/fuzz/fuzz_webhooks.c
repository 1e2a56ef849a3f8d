/*
 * fuzz_webhooks: the provider webhooks (webhooks_http_handler) on arbitrary bodies, signed
 * correctly so the fuzzer reaches the form parser, the STOP/START keywords, status callbacks
 * and SendGrid's event handling, or signed wrongly to exercise refusal. Input: one mode
 * byte, then the body.
 *   bits 0-1   route: Twilio inbound SMS, Twilio status of a message key, SendGrid events,
 *              another path under /webhooks/
 *   bit 2      a correct signature (else a wrong one; bit 3 then drops the header)
 *   bit 4      SendGrid: a timestamp an hour old (a replay)
 * Every request also goes through webhooks_twilio_signature and webhooks_sendgrid_verify
 * with the body as the signature, as a hostile client would send it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"
#include "webhooks.h"

#define TW_TOKEN   "fuzz-twilio-auth-token-0001"
#define PUBLIC_URL "https://odsync.example.com"

static struct config *cfg;
static struct webhooks *wh;
static EVP_PKEY *sg_key;
static char *sg_public;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    setenv("FZ_DEV", "fuzz-developer-key", 1);
    setenv("FZ_CUST", "fuzz-customer-key", 1);
    setenv("FZ_TW_TOKEN", TW_TOKEN, 1);
    return 0;
}

/* The SendGrid key pair (public half as base64 DER), the config and the receiver. */
static void open_receiver(void)
{
    char text[4096], path[256], err[512];
    const char *dir = fuzz_setup();
    unsigned char *der = NULL;
    int len;
    if (wh != NULL)
        return;
    sg_key = EVP_EC_gen("P-256");
    len = sg_key ? i2d_PUBKEY(sg_key, &der) : -1;
    if (len <= 0)
        abort();
    sg_public = calloc(1, (size_t)len * 2 + 4);
    EVP_EncodeBlock((unsigned char *)sg_public, der, len);
    OPENSSL_free(der);
    util_fmt(path, sizeof(path), "%s/webhooks-%d.db", dir, (int)getpid());
    util_fmt(text, sizeof(text),
             "{\"store\": \"%s\", \"plugin_dirs\": [\"%s\"],"
             " \"events\": {\"public_url\": \"" PUBLIC_URL "/\"},"
             " \"webhooks\": {\"twilio\": {\"auth_token\": \"${FZ_TW_TOKEN}\"},"
             "   \"sendgrid\": {\"public_key\": \"%s\", \"max_age_s\": 300}},"
             " \"policy\": {\"commlog\": true},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main Street Dental\","
             "   \"timezone\": \"America/Chicago\", \"opendental\": {\"base_url\":"
             "   \"http://127.0.0.1:9/api/v1\", \"developer_key\": \"${FZ_DEV}\","
             "   \"customer_key\": \"${FZ_CUST}\"}, \"routes\": {}}]}",
             path, dir, sg_public);
    if (config_parse(text, strlen(text), "fuzz.json", &cfg, err, sizeof(err)) != ODSYNC_OK ||
        webhooks_create(cfg, path, &wh, err, sizeof(err)) != ODSYNC_OK) {
        fprintf(stderr, "fuzz_webhooks: %s\n", err);
        abort();
    }
}

/* SendGrid's signature of ts + body, base64 into out (at least 200 bytes). */
static void sendgrid_sign(const char *ts, const char *body, size_t len, char *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[128];
    size_t sig_len = sizeof(sig);
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sg_key) != 1 ||
        EVP_DigestSignUpdate(md, ts, strlen(ts)) != 1 || EVP_DigestSignUpdate(md, body, len) != 1 ||
        EVP_DigestSignFinal(md, sig, &sig_len) != 1)
        abort();
    EVP_MD_CTX_free(md);
    EVP_EncodeBlock((unsigned char *)out, sig, (int)sig_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {
        "/webhooks/twilio/main-st/sms", "/webhooks/twilio/main-st/status/od:main-st:1042:recall",
        "/webhooks/sendgrid/main-st/events", "/webhooks/twilio/elm-st/sms"};
    struct fuzz_conn conn = {{0}, {0}, 0, {0}, {0}, 0};
    struct http_request req;
    struct http_reply reply = {0};
    char *body, sig[256] = "", ts[32], url[256];
    size_t i, len;
    int mode;

    if (size < 1)
        return 0;
    open_receiver();
    mode = data[0];
    len = size - 1;
    body = fuzz_strndup(data + 1, len);
    req.method = "POST";
    req.path = paths[mode & 3];
    req.body = body;
    req.body_len = len;
    req.conn = &conn;
    util_fmt(url, sizeof(url), "%s%s", PUBLIC_URL, req.path);
    util_fmt(ts, sizeof(ts), "%lld", (long long)(util_now_ms() / 1000 - ((mode & 16) ? 3600 : 0)));
    if ((mode & 3) == 2) {
        if (mode & 4)
            sendgrid_sign(ts, body, len, sig);
        else
            util_fmt(sig, sizeof(sig), "%s", "MEUCIQDfuzzfuzzfuzz==");
        conn.header_names[conn.n_headers] = "X-Twilio-Email-Event-Webhook-Timestamp";
        conn.header_values[conn.n_headers++] = ts;
        if ((mode & 12) != 8) {
            conn.header_names[conn.n_headers] = "X-Twilio-Email-Event-Webhook-Signature";
            conn.header_values[conn.n_headers++] = sig;
        }
    } else {
        if (!(mode & 4) ||
            webhooks_twilio_signature(TW_TOKEN, url, body, len, sig, sizeof(sig)) != ODSYNC_OK)
            util_fmt(sig, sizeof(sig), "%s", "bm90IHRoZSBzaWduYXR1cmU=");
        if ((mode & 12) != 8) {
            conn.header_names[conn.n_headers] = "X-Twilio-Signature";
            conn.header_values[conn.n_headers++] = sig;
        }
    }
    webhooks_http_handler(wh, &req, &reply);
    util_free(reply.body);
    for (i = 0; i < reply.n_headers; i++)
        util_free(reply.header_values[i]);
    /* The signature checks on hostile values: the body as a signature and as a key. */
    webhooks_sendgrid_verify(sg_public, ts, body, len, body);
    webhooks_sendgrid_verify(body, ts, body, len, sig);
    webhooks_twilio_signature(body, url, body, len, sig, sizeof(sig));
    free(body);
    return 0;
}
