/*
 * odsim_harness.c: start and call the Open Dental simulator in tests.
 */
#include "odsim_harness.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util.h"

pid_t odh_start(const char *patients, const char *seed, const char *clock, const char *const *extra,
                const char *stderr_path, int *port)
{
    const char *argv[48];
    size_t n = 0;
    char *path = tu_build_path("contrib/odsim/odsim");
    pid_t pid;
    argv[n++] = path;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--patients";
    argv[n++] = patients;
    argv[n++] = "--seed";
    argv[n++] = seed;
    argv[n++] = "--clock";
    argv[n++] = clock;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        ck_assert_uint_lt(n, UTIL_ARRAY_LEN(argv) - 1);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    pid = tu_spawn_server(argv, stderr_path, port);
    free(path);
    return pid;
}

struct odsync_http_response *odh_call(struct http_client *cli, int port, const char *method,
                                      const char *path, const char *body, const char *auth,
                                      const char *ctype)
{
    char url[1024];
    struct odsync_http_header h[2];
    size_t nh = 0;
    struct odsync_http_response *resp = NULL;
    ck_assert_int_eq(util_fmt(url, sizeof(url), "http://127.0.0.1:%d%s", port, path), ODSYNC_OK);
    if (ctype != NULL)
        h[nh++] = (struct odsync_http_header){"Content-Type", ctype};
    if (auth != NULL)
        h[nh++] = (struct odsync_http_header){"Authorization", auth};
    struct odsync_http_request req = {.struct_size = sizeof(req),
                                      .method = method,
                                      .url = url,
                                      .headers = h,
                                      .header_count = nh,
                                      .body = body,
                                      .body_len = body != NULL ? strlen(body) : 0,
                                      .timeout_ms = 20000};
    http_client_perform(cli, &req, &resp);
    ck_assert_ptr_nonnull(resp);
    return resp;
}

cJSON *odh_json(struct odsync_http_response *r, int want)
{
    cJSON *j;
    ck_assert_msg(r->status == want, "status %d (want %d): %s", r->status, want, r->body);
    j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "not JSON: %s", r->body);
    http_response_free(r);
    return j;
}
