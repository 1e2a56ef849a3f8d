/*
 * naive_sync: the reference a hand-written sync script would be, for the benchmark's ratio.
 * Built against libcurl and cJSON only (none of odsync's code). It pages through Open Dental's
 * REST API for patients (GET /patients/Simple) and recalls (GET /recalls) with Limit/Offset,
 * then, with no change detection and no batching, sends one request per record per entity
 * to HubSpot: a one-input batch/upsert per patient (on a unique odsync_key property it
 * creates first), then a one-input batch/create per enabled recall, associated with its
 * patient's contact. One keep-alive connection per host, one request at a time. On a 429 it
 * waits RETRY_WAIT_MS (default 10) and sends the same request again.
 * Prints one JSON object on stdout; asserts nothing.
 * usage: naive_sync OD_PORT HUBSPOT_PORT DEVELOPER_KEY CUSTOMER_KEY HUBSPOT_TOKEN PAGE_SIZE
 *        [RETRY_WAIT_MS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

struct buf {
    char *p;
    size_t n;
};

static CURL *od_curl, *hs_curl;
static struct curl_slist *od_headers, *hs_headers;
static int od_port, hs_port;
static long od_requests, hs_requests, hs_failures, hs_rate_limited;
static long retry_wait_ms = 10;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t len = size * n;
    char *q = realloc(b->p, b->n + len + 1);
    if (q == NULL)
        return 0;
    memcpy(q + b->n, p, len);
    b->n += len;
    q[b->n] = '\0';
    b->p = q;
    return len;
}

/* One request; returns the parsed JSON answer (caller deletes) or NULL; *status the HTTP one. */
static cJSON *call(CURL *c, struct curl_slist *h, const char *url, const char *body, long *status)
{
    struct buf b = {NULL, 0};
    cJSON *j = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    *status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (b.p != NULL)
        j = cJSON_Parse(b.p);
    free(b.p);
    return j;
}

/* Every row of an Open Dental list, page by page (caller deletes the array). */
static cJSON *read_all(const char *resource, int page)
{
    cJSON *all = cJSON_CreateArray();
    int offset = 0;
    for (;;) {
        char url[256];
        long status;
        cJSON *rows, *row;
        int n = 0;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/%s?Limit=%d&Offset=%d", od_port,
                 resource, page, offset);
        rows = call(od_curl, od_headers, url, NULL, &status);
        od_requests++;
        if (status != 200 || !cJSON_IsArray(rows)) {
            fprintf(stderr, "naive_sync: GET %s: HTTP %ld\n", resource, status);
            exit(1);
        }
        while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL) {
            cJSON_AddItemToArray(all, row);
            n++;
        }
        cJSON_Delete(rows);
        if (n < page)
            return all;
        offset += n;
    }
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valueint : 0;
}

/* POST body to a HubSpot path; returns the answer (caller deletes). A 429 is what any
 * working script must handle: it waits retry_wait_ms (a small share of the rate window, the
 * most favourable choice for this script) and sends the same request again. */
static cJSON *hs_post(const char *path, const char *body, long *status)
{
    char url[256];
    cJSON *answer;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", hs_port, path);
    for (;;) {
        hs_requests++;
        answer = call(hs_curl, hs_headers, url, body, status);
        if (*status != 429)
            return answer;
        cJSON_Delete(answer);
        hs_rate_limited++;
        struct timespec ts = {retry_wait_ms / 1000, (retry_wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The HubSpot object id of the first result of a batch answer, or 0. */
static long first_id(const cJSON *answer)
{
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(answer, "results"), 0);
    const char *id = str(r, "id");
    return *id ? strtol(id, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
    char auth[256], *body;
    long status, *contact_id = NULL;
    int max_pat = 0, page, contacts = 0, tasks = 0;
    cJSON *patients, *recalls, *p, *in, *props, *answer;
    double t0;

    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: naive_sync OD_PORT HUBSPOT_PORT DEVELOPER_KEY CUSTOMER_KEY "
                        "HUBSPOT_TOKEN PAGE_SIZE [RETRY_WAIT_MS]\n");
        return 2;
    }
    if (argc == 8)
        retry_wait_ms = strtol(argv[7], NULL, 10);
    od_port = (int)strtol(argv[1], NULL, 10);
    hs_port = (int)strtol(argv[2], NULL, 10);
    page = (int)strtol(argv[6], NULL, 10);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    od_curl = curl_easy_init();
    hs_curl = curl_easy_init();
    snprintf(auth, sizeof(auth), "Authorization: ODFHIR %s/%s", argv[3], argv[4]);
    od_headers = curl_slist_append(NULL, auth);
    od_headers = curl_slist_append(od_headers, "Content-Type: application/json");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", argv[5]);
    hs_headers = curl_slist_append(NULL, auth);
    hs_headers = curl_slist_append(hs_headers, "Content-Type: application/json");

    t0 = now_s();
    /* the unique property an upsert needs (a script's one-time set-up) */
    answer = hs_post("/crm/v3/properties/contacts",
                     "{\"name\":\"odsync_key\",\"label\":\"odsync key\",\"type\":\"string\","
                     "\"fieldType\":\"text\",\"groupName\":\"contactinformation\","
                     "\"hasUniqueValue\":true}",
                     &status);
    cJSON_Delete(answer);

    patients = read_all("patients/Simple", page);
    recalls = read_all("recalls", page);
    cJSON_ArrayForEach(p, patients) if (num(p, "PatNum") > max_pat) max_pat = num(p, "PatNum");
    contact_id = calloc((size_t)max_pat + 1, sizeof(*contact_id));

    /* one upsert per patient: no change detection, no batching */
    cJSON_ArrayForEach(p, patients)
    {
        char key[64];
        cJSON *req = cJSON_CreateObject(), *inputs = cJSON_AddArrayToObject(req, "inputs");
        snprintf(key, sizeof(key), "od:naive:%d", num(p, "PatNum"));
        in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "idProperty", "odsync_key");
        cJSON_AddStringToObject(in, "id", key);
        props = cJSON_AddObjectToObject(in, "properties");
        cJSON_AddStringToObject(props, "odsync_key", key);
        cJSON_AddStringToObject(props, "firstname", str(p, "FName"));
        cJSON_AddStringToObject(props, "lastname", str(p, "LName"));
        cJSON_AddStringToObject(props, "mobilephone", str(p, "WirelessPhone"));
        cJSON_AddStringToObject(props, "phone", str(p, "HmPhone"));
        cJSON_AddItemToArray(inputs, in);
        body = cJSON_PrintUnformatted(req);
        answer = hs_post("/crm/v3/objects/contacts/batch/upsert", body, &status);
        if (status == 200) {
            contact_id[num(p, "PatNum")] = first_id(answer);
            contacts++;
        } else {
            hs_failures++;
        }
        cJSON_Delete(answer);
        cJSON_free(body);
        cJSON_Delete(req);
    }

    /* one task per enabled recall, associated with its contact */
    cJSON_ArrayForEach(p, recalls)
    {
        char subject[96], due[40], to[32];
        int pat = num(p, "PatNum");
        cJSON *req, *inputs, *assoc, *a, *types, *t;
        if (strcmp(str(p, "IsDisabled"), "true") == 0 || pat > max_pat || contact_id[pat] == 0)
            continue;
        req = cJSON_CreateObject();
        inputs = cJSON_AddArrayToObject(req, "inputs");
        in = cJSON_CreateObject();
        props = cJSON_AddObjectToObject(in, "properties");
        snprintf(subject, sizeof(subject), "Recall %d due %s", num(p, "RecallNum"),
                 str(p, "DateDue"));
        snprintf(due, sizeof(due), "%sT15:00:00Z", str(p, "DateDue"));
        cJSON_AddStringToObject(props, "hs_task_subject", subject);
        cJSON_AddStringToObject(props, "hs_timestamp", due);
        cJSON_AddStringToObject(props, "hs_task_status", "NOT_STARTED");
        assoc = cJSON_AddArrayToObject(in, "associations");
        a = cJSON_CreateObject();
        snprintf(to, sizeof(to), "%ld", contact_id[pat]);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(a, "to"), "id", to);
        types = cJSON_AddArrayToObject(a, "types");
        t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "associationCategory", "HUBSPOT_DEFINED");
        cJSON_AddNumberToObject(t, "associationTypeId", 204);
        cJSON_AddItemToArray(types, t);
        cJSON_AddItemToArray(assoc, a);
        cJSON_AddItemToArray(inputs, in);
        body = cJSON_PrintUnformatted(req);
        answer = hs_post("/crm/v3/objects/tasks/batch/create", body, &status);
        if (status == 201 || status == 200)
            tasks++;
        else
            hs_failures++;
        cJSON_Delete(answer);
        cJSON_free(body);
        cJSON_Delete(req);
    }

    printf("{\"seconds\": %.3f, \"patients\": %d, \"recalls\": %d, \"contacts\": %d, "
           "\"tasks\": %d, \"od_requests\": %ld, \"crm_requests\": %ld, \"crm_failures\": "
           "%ld, \"crm_rate_limited\": %ld}\n",
           now_s() - t0, cJSON_GetArraySize(patients), cJSON_GetArraySize(recalls), contacts, tasks,
           od_requests, hs_requests, hs_failures, hs_rate_limited);
    free(contact_id);
    cJSON_Delete(patients);
    cJSON_Delete(recalls);
    curl_slist_free_all(od_headers);
    curl_slist_free_all(hs_headers);
    curl_easy_cleanup(od_curl);
    curl_easy_cleanup(hs_curl);
    curl_global_cleanup();
    return hs_failures > 0;
}
