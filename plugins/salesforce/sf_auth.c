/*
 * sf_auth.c: OAuth 2.0 for the Salesforce connector, through host->http only.
 *
 *   client_credentials  grant_type=client_credentials&client_id=..&client_secret=..
 *   jwt                 grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
 *                       JWT = RS256 over {"alg":"RS256"}.{"iss","sub","aud","exp"} (libcrypto)
 *   refresh_token       grant_type=refresh_token&refresh_token=..&client_id=..[&client_secret]
 *
 * The answer's access_token and instance_url are kept in the instance. Secrets never reach a
 * log line or a detail; OAuth errors are reported by their code ("invalid_grant").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sf.h"

#define JWT_LIFETIME_S 180 /* Salesforce wants a short exp: three minutes */

/* Overwrite then free s (may hold a credential); accepts NULL. */
static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
    free(s);
}

/* PEM passphrase callback: keys must not be encrypted, and nothing may prompt on a tty. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

int sf_auth_init(struct sf *s)
{
    int rc = ODSYNC_CONFIG;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;

    if (s->cfg.auth != SF_AUTH_JWT)
        return ODSYNC_OK;
    bio = BIO_new_mem_buf(s->cfg.private_key_pem, -1);
    if (bio == NULL) {
        rc = ODSYNC_NOMEM;
        s->host->set_error(s->ctx, "out of memory");
        goto cleanup;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (pkey == NULL) {
        s->host->set_error(s->ctx, "private_key: not an unencrypted PEM private key");
        goto cleanup;
    }
    if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
        s->host->set_error(s->ctx, "private_key: not an RSA key (the JWT flow signs RS256)");
        goto cleanup;
    }
    s->pkey = pkey;
    pkey = NULL;
    rc = ODSYNC_OK;
cleanup:
    ERR_clear_error(); /* leave nothing in this thread's queue for libcurl's TLS to trip on */
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return rc;
}

/* base64url without padding of in[0..n) appended to b at *off (b has room: 4*(n+2)/3+1).
 * Returns the new offset. */
static size_t b64url(const unsigned char *in, size_t n, char *b, size_t off)
{
    int len = EVP_EncodeBlock((unsigned char *)b + off, in, (int)n);
    size_t end = off + (size_t)len;
    while (end > off && b[end - 1] == '=')
        end--;
    for (size_t i = off; i < end; i++) {
        if (b[i] == '+')
            b[i] = '-';
        else if (b[i] == '/')
            b[i] = '_';
    }
    b[end] = '\0';
    return end;
}

/* A signed JWT assertion for the bearer flow. Caller frees with free(); NULL on failure
 * (detail says why). */
static char *jwt_assertion(struct sf *s, char *detail, size_t detail_len)
{
    static const char header[] = "{\"alg\":\"RS256\"}";
    cJSON *claims = cJSON_CreateObject();
    char *claims_text = NULL, *out = NULL, *ret = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    EVP_MD_CTX *md = NULL;

    snprintf(detail, detail_len, "out of memory");
    if (claims == NULL || cJSON_AddStringToObject(claims, "iss", s->cfg.client_id) == NULL ||
        cJSON_AddStringToObject(claims, "sub", s->cfg.username) == NULL ||
        cJSON_AddStringToObject(claims, "aud", s->cfg.jwt_audience) == NULL ||
        cJSON_AddNumberToObject(claims, "exp", (double)(time(NULL) + JWT_LIFETIME_S)) == NULL)
        goto cleanup;
    claims_text = cJSON_PrintUnformatted(claims);
    if (claims_text == NULL)
        goto cleanup;
    size_t clen = strlen(claims_text);
    size_t cap = (sizeof(header) + clen + (size_t)EVP_PKEY_get_size(s->pkey)) * 4 / 3 + 16;
    out = malloc(cap);
    sig = malloc((size_t)EVP_PKEY_get_size(s->pkey) + 1);
    if (out == NULL || sig == NULL)
        goto cleanup;
    size_t off = b64url((const unsigned char *)header, sizeof(header) - 1, out, 0);
    out[off++] = '.';
    off = b64url((const unsigned char *)claims_text, clen, out, off);
    md = EVP_MD_CTX_new();
    sig_len = (size_t)EVP_PKEY_get_size(s->pkey);
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->pkey) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)out, off) != 1) {
        snprintf(detail, detail_len, "jwt: RS256 signing failed");
        goto cleanup;
    }
    out[off++] = '.';
    b64url(sig, sig_len, out, off);
    ret = out;
    out = NULL;
cleanup:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    free(sig);
    free(out);
    cJSON_free(claims_text);
    cJSON_Delete(claims);
    return ret;
}

/* Append "&name=<url-encoded value>" (no '&' when *off is 0) to buf (cap bytes). Returns 0, or
 * -1 when it does not fit. */
static int form_add(const struct sf *s, char *buf, size_t cap, size_t *off, const char *name,
                    const char *value)
{
    size_t vcap = strlen(value) * 3 + 1;
    char *enc = malloc(vcap);
    int rc = -1;
    if (enc == NULL || s->host->url_encode(value, enc, vcap) != ODSYNC_OK)
        goto cleanup;
    int n = snprintf(buf + *off, cap - *off, "%s%s=%s", *off > 0 ? "&" : "", name, enc);
    if (n < 0 || (size_t)n >= cap - *off)
        goto cleanup;
    *off += (size_t)n;
    rc = 0;
cleanup:
    if (enc != NULL)
        wipe_free(enc);
    return rc;
}

/* 1 when s is a short OAuth error code ([a-z_]) safe to quote in a detail. */
static int oauth_code_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_'))
            return 0;
    return n > 0 && n <= 40;
}

/* 1 when u is an http(s) URL without spaces, query or fragment. */
static int instance_url_ok(const char *u)
{
    return (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) &&
           strpbrk(u, " \t\r\n?#\"") == NULL && strlen(u) < 512;
}

/* The form body of the configured grant. Caller frees with wipe_free (holds secrets). */
static char *grant_body(struct sf *s, char *detail, size_t detail_len)
{
    char *assertion = NULL, *body = NULL;
    size_t cap = 256, off = 0;
    int ok = 0;

    if (s->cfg.auth == SF_AUTH_JWT) {
        assertion = jwt_assertion(s, detail, detail_len);
        if (assertion == NULL)
            return NULL;
        cap += strlen(assertion) * 3;
    }
    cap += strlen(s->cfg.client_id) * 3;
    if (s->cfg.client_secret != NULL)
        cap += strlen(s->cfg.client_secret) * 3;
    if (s->cfg.refresh_token != NULL)
        cap += strlen(s->cfg.refresh_token) * 3;
    body = malloc(cap);
    snprintf(detail, detail_len, "out of memory");
    if (body == NULL)
        goto cleanup;
    switch (s->cfg.auth) {
    case SF_AUTH_CLIENT_CREDENTIALS:
        ok = form_add(s, body, cap, &off, "grant_type", "client_credentials") == 0 &&
             form_add(s, body, cap, &off, "client_id", s->cfg.client_id) == 0 &&
             form_add(s, body, cap, &off, "client_secret", s->cfg.client_secret) == 0;
        break;
    case SF_AUTH_JWT:
        ok = form_add(s, body, cap, &off, "grant_type",
                      "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0 &&
             form_add(s, body, cap, &off, "assertion", assertion) == 0;
        break;
    default:
        ok = form_add(s, body, cap, &off, "grant_type", "refresh_token") == 0 &&
             form_add(s, body, cap, &off, "refresh_token", s->cfg.refresh_token) == 0 &&
             form_add(s, body, cap, &off, "client_id", s->cfg.client_id) == 0 &&
             (s->cfg.client_secret == NULL ||
              form_add(s, body, cap, &off, "client_secret", s->cfg.client_secret) == 0);
        break;
    }
cleanup:
    if (assertion != NULL)
        wipe_free(assertion);
    if (!ok && body != NULL) {
        wipe_free(body);
        body = NULL;
    }
    return body;
}

static const char *const grant_names[] = {"client_credentials", "jwt", "refresh_token"};

int sf_auth_token(struct sf *s, char *detail, size_t detail_len, int64_t *retry_after_ms)
{
    struct odsync_http_response *resp = NULL;
    cJSON *json = NULL;
    char *body = NULL, *auth = NULL, *inst = NULL;
    int cls = ODSYNC_NOMEM;

    *retry_after_ms = -1;
    sf_auth_forget(s);
    body = grant_body(s, detail, detail_len);
    if (body == NULL) {
        cls = s->pkey != NULL && strstr(detail, "signing") != NULL ? ODSYNC_CONFIG : ODSYNC_NOMEM;
        goto cleanup;
    }
    const struct odsync_http_header headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded"},
        {"Accept", "application/json"},
    };
    const struct odsync_http_request req = {
        .struct_size = sizeof(req),
        .method = "POST",
        .url = s->cfg.token_url,
        .headers = headers,
        .header_count = 2,
        .body = body,
        .body_len = strlen(body),
        .timeout_ms = s->cfg.timeout_ms,
    };
    cls = s->host->http(s->ctx, &req, &resp);
    s->host->counter_add(s->ctx, "token_requests", 1);
    if (resp == NULL) {
        snprintf(detail, detail_len, "token: the host refused the request");
        cls = cls == ODSYNC_NOMEM ? ODSYNC_NOMEM : ODSYNC_CONFIG;
        goto cleanup;
    }
    s->last_status = resp->status;
    if (resp->status == 0 || resp->error != NULL) {
        snprintf(detail, detail_len, "token: transport error");
        cls = ODSYNC_RETRY;
        goto cleanup;
    }
    json = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (resp->status < 200 || resp->status > 299) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "error");
        const char *code = cJSON_IsString(err) && oauth_code_ok(err->valuestring)
                               ? err->valuestring
                               : "no OAuth error code";
        cls = s->host->status_class(resp->status);
        /* The token endpoint answers bad credentials with 400 (invalid_grant, invalid_client,
         * ...): that is the credentials' fault, not the record's. */
        if (resp->status == 400 || cls == ODSYNC_PERMANENT)
            cls = ODSYNC_AUTH;
        if (cls == ODSYNC_RATE_LIMITED)
            *retry_after_ms = resp->retry_after_ms;
        snprintf(detail, detail_len, "token (%s): HTTP %d %s", grant_names[s->cfg.auth],
                 (int)resp->status, code);
        goto cleanup;
    }
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(json, "access_token");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(json, "instance_url");
    if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0' || !cJSON_IsString(url) ||
        !instance_url_ok(url->valuestring)) {
        /* A 2xx without a usable token is garbage (a proxy page, a cut answer): transient. */
        snprintf(detail, detail_len, "token (%s): HTTP %d without access_token and instance_url",
                 grant_names[s->cfg.auth], (int)resp->status);
        cls = ODSYNC_RETRY;
        goto cleanup;
    }
    for (const char *c = tok->valuestring; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            snprintf(detail, detail_len, "token (%s): access_token is not printable",
                     grant_names[s->cfg.auth]);
            cls = ODSYNC_RETRY;
            goto cleanup;
        }
    }
    size_t alen = strlen(tok->valuestring) + sizeof("Bearer ");
    auth = malloc(alen);
    inst = strdup(url->valuestring);
    if (auth == NULL || inst == NULL) {
        snprintf(detail, detail_len, "out of memory");
        cls = ODSYNC_NOMEM;
        goto cleanup;
    }
    snprintf(auth, alen, "Bearer %s", tok->valuestring);
    size_t ilen = strlen(inst);
    while (ilen > 0 && inst[ilen - 1] == '/')
        inst[--ilen] = '\0';
    s->authorization = auth;
    free(s->instance_url);
    s->instance_url = inst;
    auth = NULL;
    inst = NULL;
    s->host->log(s->ctx, ODSYNC_LOG_INFO, "token obtained (%s), instance %s",
                 grant_names[s->cfg.auth], s->instance_url);
    cls = ODSYNC_OK;
cleanup:
    if (json != NULL) {
        /* The answer held the token: wipe the parsed copy too. */
        cJSON *t = cJSON_GetObjectItemCaseSensitive(json, "access_token");
        if (cJSON_IsString(t))
            for (volatile char *p = t->valuestring; *p; p++)
                *p = '\0';
    }
    cJSON_Delete(json);
    s->host->http_free(resp);
    if (body != NULL)
        wipe_free(body);
    if (auth != NULL)
        wipe_free(auth);
    free(inst);
    s->last_class = cls;
    return cls;
}

void sf_auth_forget(struct sf *s)
{
    if (s->authorization != NULL)
        wipe_free(s->authorization);
    s->authorization = NULL;
}

void sf_auth_free(struct sf *s)
{
    sf_auth_forget(s);
    free(s->instance_url);
    s->instance_url = NULL;
    EVP_PKEY_free(s->pkey);
    s->pkey = NULL;
}
