/*
 * test_webhooks: Twilio and SendGrid webhooks over real HTTP on loopback (the daemon's own
 * http_server with the webhooks handler) into a real SQLite store. Signatures are checked
 * against known vectors and against keys made here; a request signed wrongly, tampered with,
 * unsigned or replayed is refused with 403 and records nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "http_client.h"
#include "http_server.h"
#include "ledger.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "webhooks.h"

#include "../support/testutil.h"

#define TOKEN "tw-auth-token-0001"

static char *dir;
static struct config *cfg;
static struct webhooks *wh;
static struct http_server *srv;
static struct store *st;
static struct http_client *client;
static EVP_PKEY *sg_key;
static FILE *devnull;
static char base[64];

/* A P-256 key and its public half as base64 DER, the form SendGrid shows. */
static char *make_sendgrid_key(void)
{
    unsigned char *der = NULL;
    int len;
    char *b64;
    sg_key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(sg_key);
    len = i2d_PUBKEY(sg_key, &der);
    ck_assert_int_gt(len, 0);
    b64 = calloc(1, (size_t)len * 2 + 4);
    EVP_EncodeBlock((unsigned char *)b64, der, len);
    OPENSSL_free(der);
    return b64;
}

static void setup(void)
{
    char text[4096], err[512], path[600], *pub, *file;
    struct http_server_options o = {"127.0.0.1:0", 1 << 20, NULL, NULL, 2};
    dir = tu_mkdtemp();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_DEBUG, LOG_TEXT);
    setenv("T_TW_TOKEN", TOKEN, 1);
    setenv("T_OD_DEV", "dev-key", 1);
    setenv("T_OD_CUST", "cust-key", 1);
    pub = make_sendgrid_key();
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s\"],"
             " \"events\": {\"public_url\": \"https://odsync.example.com/\"},"
             " \"webhooks\": {\"twilio\": {\"auth_token\": \"${T_TW_TOKEN}\"},"
             "   \"sendgrid\": {\"public_key\": \"%s\", \"max_age_s\": 300}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main Street Dental\","
             "   \"timezone\": \"America/Chicago\", \"opendental\": {\"base_url\":"
             "   \"http://127.0.0.1:9/api/v1\", \"developer_key\": \"${T_OD_DEV}\","
             "   \"customer_key\": \"${T_OD_CUST}\"}, \"routes\": {}}]}",
             dir, dir, pub);
    free(pub);
    file = tu_write_file(dir, "odsync.json", text);
    ck_assert_msg(config_load(file, &cfg, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    free(file);
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_msg(store_open(path, &st, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    ck_assert_msg(webhooks_create(cfg, path, &wh, err, sizeof(err)) == ODSYNC_OK, "%s", err);
    ck_assert_msg(http_server_start(&o, webhooks_http_handler, wh, &srv, err, sizeof(err)) ==
                      ODSYNC_OK,
                  "%s", err);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", http_server_port(srv));
    ck_assert_int_eq(http_global_init(), ODSYNC_OK);
    client = http_client_create();
}

static void teardown(void)
{
    http_client_destroy(client);
    http_server_stop(srv);
    webhooks_destroy(wh);
    store_close(st);
    config_free(cfg);
    EVP_PKEY_free(sg_key);
    http_global_cleanup();
    log_shutdown();
    fclose(devnull);
    tu_rmrf(dir);
    free(dir);
}

/* A query's first integer. */
static int64_t q(const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* POST body to path with up to two extra headers; returns the status, *reply the body. */
static int post(const char *path, const char *ctype, const char *body, const char *h1n,
                const char *h1v, const char *h2n, const char *h2v, char **reply)
{
    struct odsync_http_header h[3] = {{"Content-Type", ctype}, {h1n, h1v}, {h2n, h2v}};
    struct odsync_http_request r;
    struct odsync_http_response *resp = NULL;
    char url[256];
    int status;
    snprintf(url, sizeof(url), "%s%s", base, path);
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    r.method = "POST";
    r.url = url;
    r.headers = h;
    r.header_count = h1n == NULL ? 1 : h2n == NULL ? 2 : 3;
    r.body = body;
    r.body_len = strlen(body);
    http_client_perform(client, &r, &resp); /* the class is not the point: the status is */
    ck_assert_ptr_nonnull(resp);
    status = resp->status;
    if (reply != NULL)
        *reply = strdup(resp->body ? resp->body : "");
    http_response_free(resp);
    return status;
}

/* POST a Twilio form to path, signed for the public URL with token. */
static int twilio_post(const char *path, const char *form, const char *token, char **reply)
{
    char url[256], sig[64];
    snprintf(url, sizeof(url), "https://odsync.example.com%s", path);
    ck_assert_int_eq(webhooks_twilio_signature(token, url, form, strlen(form), sig, sizeof(sig)),
                     ODSYNC_OK);
    return post(path, "application/x-www-form-urlencoded", form, "X-Twilio-Signature", sig, NULL,
                NULL, reply);
}

/* SendGrid's signature of timestamp + body with the test key, base64 DER. */
static char *sendgrid_sign(const char *ts, const char *body)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[128];
    size_t len = sizeof(sig);
    char *b64 = calloc(1, 200);
    ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sg_key), 1);
    ck_assert_int_eq(EVP_DigestSignUpdate(md, ts, strlen(ts)), 1);
    ck_assert_int_eq(EVP_DigestSignUpdate(md, body, strlen(body)), 1);
    ck_assert_int_eq(EVP_DigestSignFinal(md, sig, &len), 1);
    EVP_MD_CTX_free(md);
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)len);
    return b64;
}

/* POST events signed at time ts (the body signed may differ from the one sent). */
static int sendgrid_post(const char *signed_body, const char *sent_body, long long ts_value)
{
    char ts[32], *sig;
    int status;
    snprintf(ts, sizeof(ts), "%lld", ts_value);
    sig = sendgrid_sign(ts, signed_body);
    status = post("/webhooks/sendgrid/main-st/events", "application/json", sent_body,
                  "X-Twilio-Email-Event-Webhook-Signature", sig,
                  "X-Twilio-Email-Event-Webhook-Timestamp", ts, NULL);
    free(sig);
    return status;
}

START_TEST(twilio_signature_known_vector)
{
    char sig[64];
    const char *form = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234"
                       "&From=%2B12349013030&To=%2B18005551212";
    /* Twilio's documented example (token 12345) */
    ck_assert_int_eq(webhooks_twilio_signature("12345",
                                               "https://mycompany.com/myapp.php?foo=1&bar=2", form,
                                               strlen(form), sig, sizeof(sig)),
                     ODSYNC_OK);
    ck_assert_str_eq(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    ck_assert_int_eq(webhooks_twilio_signature("12345", "https://x", "a=%zz", 5, sig, sizeof(sig)),
                     ODSYNC_PARSE);
}
END_TEST

START_TEST(stop_is_recorded_start_lifts_it)
{
    char *reply = NULL;
    const char *path = "/webhooks/twilio/main-st/sms";
    ck_assert_int_eq(
        twilio_post(path, "From=%2B15035550142&To=%2B15035550100&Body=+Stop+", TOKEN, &reply), 200);
    ck_assert_ptr_nonnull(strstr(reply, "<Response>"));
    free(reply);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent WHERE channel = 'sms' AND address ="
                       " '+15035550142' AND purpose = '*' AND state = 'opt_out'"
                       " AND source = 'twilio'"),
                     1);
    /* Advanced Opt-Out's field alone counts too, and HELP changes nothing */
    ck_assert_int_eq(
        twilio_post(path, "From=%2B15035550143&Body=arret&OptOutType=STOP", TOKEN, NULL), 200);
    ck_assert_int_eq(twilio_post(path, "From=%2B15035550144&Body=HELP", TOKEN, NULL), 200);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent WHERE state = 'opt_out'"), 2);
    ck_assert_int_eq(twilio_post(path, "From=%2B15035550142&Body=START", TOKEN, NULL), 200);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent WHERE address = '+15035550142'"
                       " AND state = 'opt_in'"),
                     1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent_log"), 3);
}
END_TEST

START_TEST(free_text_goes_to_staff_review)
{
    ck_assert_int_eq(twilio_post("/webhooks/twilio/main-st/sms",
                                 "From=%2B15035550142&Body=please+stop+texting+me", TOKEN, NULL),
                     200);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent"), 0);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM inbound_review WHERE address = '+15035550142'"
                       " AND body = 'please stop texting me'"),
                     1);
}
END_TEST

START_TEST(bad_twilio_signatures_record_nothing)
{
    const char *path = "/webhooks/twilio/main-st/sms";
    const char *form = "From=%2B15035550142&Body=STOP";
    char url[128], sig[64];
    ck_assert_int_eq(twilio_post(path, form, "not-the-token", NULL), 403);
    ck_assert_int_eq(
        post(path, "application/x-www-form-urlencoded", form, NULL, NULL, NULL, NULL, NULL), 403);
    /* signed for a different body: tampered in transit */
    snprintf(url, sizeof(url), "https://odsync.example.com%s", path);
    ck_assert_int_eq(webhooks_twilio_signature(TOKEN, url, "From=%2B15035550142&Body=HELLO", 30,
                                               sig, sizeof(sig)),
                     ODSYNC_OK);
    ck_assert_int_eq(post(path, "application/x-www-form-urlencoded", form, "X-Twilio-Signature",
                          sig, NULL, NULL, NULL),
                     403);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent"), 0);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM inbound_review"), 0);
    ck_assert_int_eq(twilio_post("/webhooks/twilio/no-such/sms", form, TOKEN, NULL), 404);
}
END_TEST

static int put_unknown_tx(struct store *s, void *arg)
{
    struct ledger_entry e;
    int created;
    (void)arg;
    memset(&e, 0, sizeof(e));
    e.office = "main-st";
    e.key = "od:main-st:recall:7:2026-06-01:due";
    e.patnum = 7;
    e.campaign = "recall";
    e.channel = "sms";
    e.address = "+15035550142";
    e.state = LEDGER_UNKNOWN;
    e.due_at = e.created_at = 1;
    return ledger_create(s, &e, &created);
}

START_TEST(status_callback_updates_the_ledger)
{
    const char *path = "/webhooks/twilio/main-st/status/od:main-st:recall:7:2026-06-01:due";
    ck_assert_int_eq(store_tx(st, put_unknown_tx, NULL), ODSYNC_OK);
    ck_assert_int_eq(twilio_post(path, "MessageSid=SM123&MessageStatus=delivered&To=%2B15035550142",
                                 TOKEN, NULL),
                     200);
    /* a crash had left it "unknown": the provider has it, so it was sent */
    ck_assert_int_eq(q("SELECT COUNT(*) FROM messages WHERE state = 'sent' AND delivery ="
                       " 'delivered' AND provider_id = 'SM123'"),
                     1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM decisions WHERE outcome = 'delivered'"), 1);
    /* 21610 on a later callback is an opt-out */
    ck_assert_int_eq(twilio_post(path,
                                 "MessageSid=SM123&MessageStatus=undelivered&ErrorCode=21610"
                                 "&To=%2B15035550142",
                                 TOKEN, NULL),
                     200);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent WHERE address = '+15035550142'"
                       " AND state = 'opt_out' AND evidence = 'error 21610'"),
                     1);
    /* another message's sid does not touch this row */
    ck_assert_int_eq(twilio_post(path, "MessageSid=SM999&MessageStatus=failed", TOKEN, NULL), 200);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM messages WHERE delivery = 'undelivered'"), 1);
}
END_TEST

START_TEST(sendgrid_events_signed_and_recorded)
{
    long long now = (long long)time(NULL);
    const char *body =
        "[{\"email\":\"Ann@Example.com\",\"event\":\"unsubscribe\",\"sg_message_id\":\"x1\"},"
        "{\"email\":\"bob@example.com\",\"event\":\"bounce\"},"
        "{\"email\":\"cy@example.com\",\"event\":\"delivered\"}]";
    ck_assert_int_eq(sendgrid_post(body, body, now), 200);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent WHERE channel = 'email' AND address ="
                       " 'ann@example.com' AND purpose = '*' AND source = 'sendgrid'"),
                     1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent WHERE address = 'bob@example.com'"), 1);
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent"), 2);
}
END_TEST

START_TEST(sendgrid_tampered_unsigned_replayed_refused)
{
    long long now = (long long)time(NULL);
    const char *body = "[{\"email\":\"ann@example.com\",\"event\":\"unsubscribe\"}]";
    const char *other = "[{\"email\":\"eve@example.com\",\"event\":\"unsubscribe\"}]";
    ck_assert_int_eq(sendgrid_post(other, body, now), 403);       /* body tampered */
    ck_assert_int_eq(sendgrid_post(body, body, now - 3600), 403); /* replayed an hour later */
    ck_assert_int_eq(post("/webhooks/sendgrid/main-st/events", "application/json", body, NULL, NULL,
                          NULL, NULL, NULL),
                     403); /* unsigned */
    ck_assert_int_eq(q("SELECT COUNT(*) FROM consent"), 0);
    ck_assert_int_eq(sendgrid_post("{}", "{}", now), 400); /* signed, but not an array */
}
END_TEST

static Suite *webhooks_suite(void)
{
    Suite *s = suite_create("webhooks");
    TCase *tc = tcase_create("webhooks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, twilio_signature_known_vector);
    tcase_add_test(tc, stop_is_recorded_start_lifts_it);
    tcase_add_test(tc, free_text_goes_to_staff_review);
    tcase_add_test(tc, bad_twilio_signatures_record_nothing);
    tcase_add_test(tc, status_callback_updates_the_ledger);
    tcase_add_test(tc, sendgrid_events_signed_and_recorded);
    tcase_add_test(tc, sendgrid_tampered_unsigned_replayed_refused);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(webhooks_suite)
