/*
 * fuzz_events: the API Events webhook (events_http_handler) and its worker
 * (events_process) on arbitrary bodies. Input: one mode byte, then the body.
 *   bit 0      Authorization is the office's customer key (else a wrong one, or none)
 *   bits 1-2   the watched table: Patient, Appointment, AppointmentDeleted, or none
 *   bit 3      the table named by ?table= instead of the Event-Type header
 *   bit 4      an unknown office
 * A batch the handler accepts is committed to the inbox of a real SQLite store, then applied
 * by events_process through the REST adapter and the projection, as the daemon does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "fuzz.h"
#include "store.h"
#include "util.h"

static struct config *cfg;
static struct events *ev;
static struct store *st;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    setenv("FZ_DEV", "fuzz-developer-key", 1);
    setenv("FZ_CUST", "fuzz-customer-key", 1);
    return 0;
}

/* The receiver and the store, opened by the process that fuzzes (lazily: the replay suite
 * forks one process per input). */
static void open_receiver(void)
{
    char text[2048], path[256], err[512];
    const char *dir = fuzz_setup();
    if (ev != NULL)
        return;
    util_fmt(path, sizeof(path), "%s/events-%d.db", dir, (int)getpid());
    util_fmt(text, sizeof(text),
             "{\"store\": \"%s\", \"plugin_dirs\": [\"%s\"],"
             " \"campaigns\": {\"recall\": {\"due_soon_days\": 14}},"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main Street Dental\","
             "   \"timezone\": \"America/Chicago\", \"opendental\": {\"base_url\":"
             "   \"http://127.0.0.1:9/api/v1\", \"developer_key\": \"${FZ_DEV}\","
             "   \"customer_key\": \"${FZ_CUST}\"}, \"routes\": {}}]}",
             path, dir);
    if (config_parse(text, strlen(text), "fuzz.json", &cfg, err, sizeof(err)) != ODSYNC_OK ||
        store_open(path, &st, err, sizeof(err)) != ODSYNC_OK ||
        events_create(cfg, path, &ev, err, sizeof(err)) != ODSYNC_OK) {
        fprintf(stderr, "fuzz_events: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tables[] = {"Patient", "Appointment", "AppointmentDeleted", NULL};
    struct fuzz_conn conn = {{0}, {0}, 0, {0}, {0}, 0};
    struct http_request req;
    struct http_reply reply = {0};
    struct events_stats stats = {0};
    char *body, event_type[64];
    const char *table;
    size_t i;
    int mode;

    if (size < 1)
        return 0;
    open_receiver();
    mode = data[0];
    body = fuzz_strndup(data + 1, size - 1);
    table = tables[(mode >> 1) & 3];
    conn.header_names[conn.n_headers] = "Authorization";
    conn.header_values[conn.n_headers++] = (mode & 1) ? "fuzz-customer-key" : "fuzz-customer-kez";
    if (table != NULL && (mode & 8)) {
        conn.arg_names[conn.n_args] = "table";
        conn.arg_values[conn.n_args++] = table;
    } else if (table != NULL) {
        util_fmt(event_type, sizeof(event_type), "WatchTable: %s", table);
        conn.header_names[conn.n_headers] = "Event-Type";
        conn.header_values[conn.n_headers++] = event_type;
    }
    conn.header_names[conn.n_headers] = "Workstation";
    conn.header_values[conn.n_headers++] = "FRONTDESK1";
    req.method = "POST";
    req.path = (mode & 16) ? "/api/od/events/elm-st" : "/api/od/events/main-st";
    req.body = body;
    req.body_len = size - 1;
    req.conn = &conn;
    events_http_handler(ev, &req, &reply);
    if (reply.status == 200)
        events_process(st, cfg, 4, &stats);
    util_free(reply.body);
    for (i = 0; i < reply.n_headers; i++)
        util_free(reply.header_values[i]);
    free(body);
    return 0;
}
