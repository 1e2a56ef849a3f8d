/*
 * fuzz_plugin: each connector plugin's response parsing, through the real host. The program
 * fuzz_plugin_<name> (replay_plugin_<name>) loads BUILD/plugins/<name>.so with plugin_open,
 * makes a sink instance with host_sink_create, and sends a batch of records; every HTTP
 * request the plugin makes is answered from the fuzz input instead of the network. The host's
 * HTTP client is replaced at link time (-Wl,--wrap=http_client_perform and the response
 * accessors), so the plugin runs unchanged against the host services table.
 *
 * Input: one mode byte (bit 0 picks a second settings variant: the REST plugin's batch mode,
 * HubSpot task settings, SendGrid's suppression check), then responses separated by NUL
 * bytes, one per request in order. A response is a status byte (index into `statuses`),
 * then optionally '#' and header lines ("Name: value\n") ended by an empty line, then the
 * body. Requests past the last response fail as a connection reset (status 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "host_api.h"
#include "http_client.h"
#include "plugin.h"
#include "util.h"

static const int statuses[16] = {200, 201, 204, 207, 400, 401, 403, 404,
                                 409, 413, 429, 500, 502, 503, 504, 0};

static struct plugin *plugin;
static const char *plugin_name;
static char so_path[4096];

/* The responses of the current input. */
static const uint8_t *in_data;
static size_t in_size, in_pos;

/* A response and its header block (the SDK struct first). */
struct fake_response {
    struct odsync_http_response r;
    char *headers; /* "Name: value\n..." or NULL */
};

int __wrap_http_client_perform(struct http_client *c, const struct odsync_http_request *req,
                               struct odsync_http_response **out);
const char *__wrap_http_response_header(const struct odsync_http_response *resp, const char *name);
void __wrap_http_response_free(struct odsync_http_response *resp);

int __wrap_http_client_perform(struct http_client *c, const struct odsync_http_request *req,
                               struct odsync_http_response **out)
{
    struct fake_response *f = calloc(1, sizeof(*f));
    const uint8_t *chunk, *nul, *body;
    size_t len;
    (void)c;
    (void)req;
    if (f == NULL)
        abort();
    f->r.struct_size = sizeof(f->r);
    f->r.retry_after_ms = -1;
    *out = &f->r;
    if (in_pos >= in_size) { /* no response left: the connection was reset */
        f->r.result_class = ODSYNC_RETRY;
        f->r.error = strdup("connection reset by peer (fuzz: no response left)");
        f->r.body = strdup("");
        return ODSYNC_RETRY;
    }
    chunk = in_data + in_pos;
    nul = memchr(chunk, 0, in_size - in_pos);
    len = nul ? (size_t)(nul - chunk) : in_size - in_pos;
    in_pos += len + 1;
    f->r.status = len > 0 ? statuses[chunk[0] % 16] : 200;
    body = len > 0 ? chunk + 1 : chunk;
    len = len > 0 ? len - 1 : 0;
    if (len > 0 && body[0] == '#') {
        const uint8_t *end = NULL;
        size_t i;
        for (i = 1; i + 1 < len && end == NULL; i++)
            if (body[i] == '\n' && body[i + 1] == '\n')
                end = body + i;
        if (end != NULL) {
            f->headers = fuzz_strndup(body + 1, (size_t)(end - body));
            len -= (size_t)(end + 2 - body);
            body = end + 2;
        }
    }
    f->r.body = fuzz_strndup(body, len);
    f->r.body_len = len;
    if (f->r.status == 0) {
        f->r.result_class = ODSYNC_RETRY;
        f->r.error = strdup("connection reset by peer");
        return ODSYNC_RETRY;
    }
    f->r.result_class = http_status_class(f->r.status);
    f->r.retry_after_ms =
        http_parse_retry_after(__wrap_http_response_header(&f->r, "Retry-After"), time(NULL));
    return f->r.result_class;
}

const char *__wrap_http_response_header(const struct odsync_http_response *resp, const char *name)
{
    const struct fake_response *f = (const struct fake_response *)resp;
    size_t n = strlen(name);
    char *line;
    static char value[1024]; /* one instance at a time, as the host promises */
    if (f == NULL || f->headers == NULL)
        return NULL;
    for (line = f->headers; *line != '\0';) {
        char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            util_fmt(value, sizeof(value), "%.*s", (int)(ll - (size_t)(v - line)), v);
            return value;
        }
        line += ll + (eol != NULL);
    }
    return NULL;
}

void __wrap_http_response_free(struct odsync_http_response *resp)
{
    struct fake_response *f = (struct fake_response *)resp;
    if (f == NULL)
        return;
    free((char *)f->r.body);
    free((char *)f->r.error);
    free(f->headers);
    free(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *build = fuzz_build_dir((*argv)[0]);
    (void)argc;
    fuzz_setup();
    http_global_init();
    plugin_name = fuzz_target_name((*argv)[0]);
    if (strncmp(plugin_name, "plugin_", 7) == 0)
        plugin_name += 7;
    util_fmt(so_path, sizeof(so_path), "%s/plugins/%s.so", build, plugin_name);
    free(build);
    setenv("FZ_TOKEN", "fuzz-plugin-token-0001", 1);
    setenv("FZ_TW_SID", "AC0123456789abcdef0123456789abcdef", 1);
    setenv("FZ_SECRET", "fuzz-plugin-secret-0001", 1);
    return 0;
}

/* The settings for this plugin (variant 0 or 1), as JSON text. */
static const char *settings_for(int variant)
{
    if (strcmp(plugin_name, "rest") == 0)
        return variant ? "{\"base_url\": \"http://crm.invalid/api\", \"token\": \"${FZ_TOKEN}\","
                         " \"batch\": true}"
                       : "{\"base_url\": \"http://crm.invalid/api\", \"token\": \"${FZ_TOKEN}\"}";
    if (strcmp(plugin_name, "hubspot") == 0)
        return variant ? "{\"token\": \"${FZ_TOKEN}\", \"base_url\": \"http://hs.invalid\","
                         " \"pace_max_wait_ms\": 0, \"create_properties\": true,"
                         " \"task_owner_id\": \"42\"}"
                       : "{\"token\": \"${FZ_TOKEN}\", \"base_url\": \"http://hs.invalid\","
                         " \"pace_max_wait_ms\": 0}";
    if (strcmp(plugin_name, "salesforce") == 0)
        return "{\"login_url\": \"http://sf.invalid\", \"client_id\": \"fuzz-client\","
               " \"client_secret\": \"${FZ_SECRET}\", \"limit_pause_s\": 60}";
    if (strcmp(plugin_name, "twilio") == 0)
        return variant ? "{\"base_url\": \"http://tw.invalid\", \"account_sid\": \"${FZ_TW_SID}\","
                         " \"auth_token\": \"${FZ_SECRET}\", \"messaging_service_sid\":"
                         " \"MG0123456789abcdef0123456789abcdef\"}"
                       : "{\"base_url\": \"http://tw.invalid\", \"account_sid\": \"${FZ_TW_SID}\","
                         " \"auth_token\": \"${FZ_SECRET}\", \"from\": \"+13125550100\"}";
    if (strcmp(plugin_name, "sendgrid") == 0)
        return variant ? "{\"api_key\": \"${FZ_TOKEN}\", \"base_url\": \"http://sg.invalid\","
                         " \"from_email\": \"r@mainst.example.com\", \"check_suppressions\": true,"
                         " \"asm_groups\": \"recall=111, review=333\"}"
                       : "{\"api_key\": \"${FZ_TOKEN}\", \"base_url\": \"http://sg.invalid\","
                         " \"from_email\": \"r@mainst.example.com\", \"asm_group_id\": 7}";
    return "{}";
}

#define CONTACT(n)                                                                                 \
    "{\"key\":\"od:main-st:" n "\",\"office\":\"main-st\",\"patnum\":" n ",\"first_name\":"        \
    "\"Avery\",\"last_name\":\"Lee\",\"preferred_name\":null,\"email\":\"avery" n                  \
    "@example.com\",\"phone_mobile\":\"+1312555" n "\",\"phone_home\":null,\"phone_work\":null,"   \
    "\"patient_status\":\"Patient\",\"guarantor_key\":null,\"sms_consent\":\"yes\","               \
    "\"email_opt_out\":false,\"language\":\"eng\",\"recall_due\":\"2026-05-01\","                  \
    "\"recall_stage\":\"due\",\"last_visit\":\"2025-05-01\",\"reactivation\":false,"               \
    "\"updated_at\":\"2026-04-01T15:00:00Z\"}"
#define TASK(n)                                                                                    \
    "{\"key\":\"od:main-st:recall:" n "\",\"office\":\"main-st\",\"contact_key\":"                 \
    "\"od:main-st:" n "\",\"subject\":\"Recall due\",\"body\":\"Call to book\",\"due\":"           \
    "\"2026-05-01T15:00:00Z\",\"status\":\"open\",\"priority\":\"medium\",\"type\":\"call\"}"
#define SMS(n)                                                                                     \
    "{\"key\":\"od:main-st:recall:" n ":due\",\"office\":\"main-st\",\"contact_key\":"             \
    "\"od:main-st:" n "\",\"channel\":\"sms\",\"campaign\":\"recall\",\"to\":\"+1312555" n         \
    "\",\"subject\":null,\"body\":\"Main Street Dental: time for your cleaning. Reply STOP to "    \
    "opt out.\",\"template_id\":null,\"template_data\":{}}"
#define EMAIL(n)                                                                                   \
    "{\"key\":\"od:main-st:recall:" n ":due\",\"office\":\"main-st\",\"contact_key\":"             \
    "\"od:main-st:" n "\",\"channel\":\"email\",\"campaign\":\"recall\",\"to\":\"avery" n          \
    "@example.com\",\"subject\":\"Main Street Dental\",\"body\":\"<p>Time for your "               \
    "cleaning</p>\",\"template_id\":null,\"template_data\":{\"first_name\":\"Avery\"}}"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const contacts[] = {CONTACT("1042"), CONTACT("1043")};
    static const char *const tasks[] = {TASK("1042"), TASK("1043")};
    static const char *const sms[] = {SMS("1042"), SMS("1043")};
    static const char *const email[] = {EMAIL("1042"), EMAIL("1043")};
    const char *const *jsons;
    struct odsync_record recs[2];
    const struct odsync_record *ptrs[2];
    struct host_result results[2];
    struct host_sink *s = NULL;
    cJSON *settings;
    char err[512];
    uint64_t caps;
    int kind, variant, round;
    size_t i;

    if (size < 1)
        return 0;
    if (plugin == NULL && plugin_open(so_path, &plugin, err, sizeof(err)) != ODSYNC_OK) {
        fprintf(stderr, "fuzz_plugin: %s\n", err);
        abort();
    }
    variant = data[0] & 1;
    settings = cJSON_Parse(settings_for(variant));
    if (host_sink_create(plugin, "fuzz", settings, "sinks.fuzz", &s, err, sizeof(err)) !=
        ODSYNC_OK) {
        fprintf(stderr, "fuzz_plugin: %s\n", err);
        abort();
    }
    cJSON_Delete(settings);
    in_data = data + 1;
    in_size = size - 1;
    in_pos = 0;
    caps = host_sink_descriptor(s)->capabilities;
    /* Each kind the plugin takes, in turn, while responses last (contacts, tasks, messages). */
    for (round = 0; round < 3 && in_pos < in_size; round++) {
        kind = round + 1;
        if (!(caps & (kind == ODSYNC_KIND_CONTACT ? ODSYNC_CAP_CONTACTS
                      : kind == ODSYNC_KIND_TASK  ? ODSYNC_CAP_TASKS
                                                  : ODSYNC_CAP_SMS | ODSYNC_CAP_EMAIL)))
            continue;
        jsons = kind == ODSYNC_KIND_CONTACT ? contacts
                : kind == ODSYNC_KIND_TASK  ? tasks
                : (caps & ODSYNC_CAP_SMS)   ? sms
                                            : email;
        for (i = 0; i < 2; i++) {
            memset(&recs[i], 0, sizeof(recs[i]));
            recs[i].struct_size = sizeof(recs[i]);
            recs[i].kind = kind;
            recs[i].office = "main-st";
            recs[i].version = 1;
            recs[i].json = jsons[i];
            recs[i].json_len = strlen(jsons[i]);
            recs[i].key = kind == ODSYNC_KIND_CONTACT ? "od:main-st:1042" : "od:main-st:recall:1";
            recs[i].remote_id = (data[0] & 2) ? "0035g00000AbCdE" : NULL;
            ptrs[i] = &recs[i];
        }
        recs[1].key = kind == ODSYNC_KIND_CONTACT ? "od:main-st:1043" : "od:main-st:recall:2";
        if (host_sink_send(s, ptrs, 2, results) == ODSYNC_OK)
            host_results_clear(results, 2);
    }
    host_sink_flush(s);
    host_sink_destroy(s);
    return 0;
}
