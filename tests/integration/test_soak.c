/*
 * test_soak.c: crash-recovery soak. The real daemon (`odsync run`, a child process) runs
 * against the Open Dental simulator, the fake REST CRM (contacts and recall tasks) and the
 * fake Twilio (SMS, every campaign on, a sending window of the whole day), while odsim makes
 * random front-desk changes and both fakes inject faults (500s, 429s, resets, HTML 502s,
 * truncated answers); it is killed with SIGKILL at a random moment and started again,
 * SOAK_ITERATIONS times (default 3; `make soak` runs 50). Then, faults off, a clean
 * `odsync run --until-idle`, and the end state must be exactly what odsim's data implies:
 *   - the canonical model equals odsim's tables (patients, recalls, appointments);
 *   - every contact and task record of the store is in the CRM exactly once, with the
 *     current body, and the CRM holds nothing else;
 *   - no message key reached Twilio twice; every message Twilio holds is a ledger row that is
 *     sent (with its sid, or none when the 201 was truncated) or unknown (a kill between the
 *     provider's answer and the commit: never resent); no row is left sending;
 *   - no SMS went to a patient whose TxtMsgOk was No before the soak began;
 *   - no configured secret appears in anything the daemon wrote (its log over every run).
 * The random moments come from SOAK_SEED (default: the time), printed so a failure can be
 * replayed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "http_client.h"
#include "log.h"
#include "odsim_harness.h"
#include "odtruth.h"
#include "testutil.h"
#include "util.h"

#define CRM_TOKEN "soak-crm-token-5d1f"
#define TW_SID    "AC0123456789abcdef0123456789abcdef"
#define TW_TOKEN  "soak-twilio-token-8b2c"
#define SENDER    "+15550100000"
#define PATIENTS  "150"

static char *dir, *odsync, *cfg_path;
static pid_t sim_pid = -1, crm_pid = -1, tw_pid = -1;
static int sim_port, crm_port, tw_port;
static FILE *devnull;

static void write_config(const char *window_from, const char *window_to);

static void setup(void)
{
    char *crm = tu_build_path("contrib/fakes/fake_rest_crm");
    char *tw = tu_build_path("contrib/fakes/fake_twilio");
    char crm_db[4200];
    const char *crm_argv[] = {crm, "--token", CRM_TOKEN, "--db", crm_db, "--seed", "5", NULL};
    const char *tw_argv[] = {tw,       "--account-sid", TW_SID, "--auth-token",
                             TW_TOKEN, "--numbers",     SENDER, NULL};
    const char *sim_extra[] = {"--mode", "local", NULL};

    dir = tu_mkdtemp();
    odsync = tu_build_path("odsync");
    http_global_init();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull, ODSYNC_LOG_ERROR, LOG_TEXT);
    setenv("SOAK_OD_DEV", "NFF6i0KrXrxDkZHt", 1);
    setenv("SOAK_OD_CUST", "VzkmZEaUWOjnQX2z", 1);
    setenv("SOAK_CRM_TOKEN", CRM_TOKEN, 1);
    setenv("SOAK_TW_SID", TW_SID, 1);
    setenv("SOAK_TW_TOKEN", TW_TOKEN, 1);
    snprintf(crm_db, sizeof(crm_db), "%s/crm.db", dir);
    sim_pid = odh_start(PATIENTS, "29", "real", sim_extra, NULL, &sim_port);
    crm_pid = tu_spawn_server(crm_argv, NULL, &crm_port);
    tw_pid = tu_spawn_server(tw_argv, NULL, &tw_port);
    free(crm);
    free(tw);
    write_config("00:00", "24:00");
}

/* The config, sending only from window_from to window_to (office-local "HH:MM"). */
static void write_config(const char *window_from, const char *window_to)
{
    char text[4096];
    /* Status callbacks go to a closed port: their URL only names each message's key. */
    snprintf(text, sizeof(text),
             "{\"store\": \"%s/odsync.db\", \"plugin_dirs\": [\"%s/plugins\"],\n"
             " \"listen\": \"127.0.0.1:0\", \"log\": {\"level\": \"info\"},\n"
             " \"delivery\": {\"max_attempts\": 100, \"backoff_base_ms\": 20,"
             " \"backoff_cap_ms\": 200, \"rate_limit_default_ms\": 200,"
             " \"shutdown_timeout_ms\": 2000},\n"
             " \"sinks\": {\"crm\": {\"plugin\": \"rest\", \"base_url\": \"http://127.0.0.1:%d\","
             " \"token\": \"${SOAK_CRM_TOKEN}\", \"timeout_ms\": 2000},\n"
             "  \"sms\": {\"plugin\": \"twilio\", \"account_sid\": \"${SOAK_TW_SID}\","
             " \"auth_token\": \"${SOAK_TW_TOKEN}\", \"from\": \"" SENDER "\","
             " \"status_callback_url\": \"http://127.0.0.1:9/webhooks/twilio\","
             " \"base_url\": \"http://127.0.0.1:%d\", \"timeout_ms\": 2000}},\n"
             " \"campaigns\": {\"recall\": {\"channels\": [\"sms\"]}, \"reactivation\": {},"
             " \"review\": {\"delay_minutes\": 0}},\n"
             " \"policy\": {\"quiet_hours\": [\"%s\", \"%s\"], \"max_per_day\": 5,"
             " \"max_per_week\": 10, \"review_link\": \"https://g.page/r/soak\","
             " \"booking_link\": \"https://soak.example.com/book\"},\n"
             " \"offices\": [{\"id\": \"main-st\", \"name\": \"Main Street Dental\","
             " \"phone\": \"(555) 010-1000\", \"timezone\": \"America/Chicago\",\n"
             "   \"opendental\": {\"base_url\": \"http://127.0.0.1:%d/api/v1\","
             " \"tier\": \"local\", \"min_interval_ms\": 0, \"sync_interval_s\": 2,"
             " \"developer_key\": \"${SOAK_OD_DEV}\", \"customer_key\": \"${SOAK_OD_CUST}\"},\n"
             "   \"routes\": {\"contact\": [\"crm\"], \"task\": [\"crm\"], \"sms\": [\"sms\"],"
             " \"email\": []}}]}\n",
             dir, tu_build_dir(), crm_port, tw_port, window_from, window_to, sim_port);
    free(cfg_path);
    cfg_path = tu_write_file(dir, "odsync.json", text);
}

static void teardown(void)
{
    if (sim_pid > 0)
        tu_stop(sim_pid);
    if (crm_pid > 0)
        tu_stop(crm_pid);
    if (tw_pid > 0)
        tu_stop(tw_pid);
    sim_pid = crm_pid = tw_pid = -1;
    tu_rmrf(dir);
    free(dir);
    free(odsync);
    free(cfg_path);
    http_global_cleanup();
    log_shutdown();
    fclose(devnull);
}

/* An admin call on a fake or odsim (JSON in and out; the CRM's need its token). Caller
 * deletes the answer. */
static cJSON *admin_json(int port, const char *method, const char *path, const char *body)
{
    struct http_client *c = http_client_create();
    struct odsync_http_response *r =
        odh_call(c, port, method, path, body, port == crm_port ? "Bearer " CRM_TOKEN : NULL,
                 body ? "application/json" : NULL);
    cJSON *j;
    ck_assert_msg(r->status == 200 || r->status == 201, "%s %s: %d", method, path, r->status);
    j = cJSON_ParseWithLength(r->body, r->body_len);
    ck_assert_ptr_nonnull(j);
    http_response_free(r);
    http_client_destroy(c);
    return j;
}

static void admin(int port, const char *method, const char *path, const char *body)
{
    cJSON_Delete(admin_json(port, method, path, body));
}

/* Faults on (1) or off (0) in both fakes; seed varies the CRM's draws. */
static void faults(int on, unsigned seed)
{
    char body[256];
    if (!on) {
        admin(crm_port, "DELETE", "/_faults", NULL);
        admin(tw_port, "POST", "/_faults",
              "{\"fail-next\": 0, \"rate-limit-next\": 0, \"html502-next\": 0,"
              " \"truncate-next\": 0}");
        return;
    }
    snprintf(body, sizeof(body),
             "{\"fail-rate\": 0.15, \"reset-rate\": 0.1, \"rate-limit-every\": 17,"
             " \"retry-after\": 0, \"malformed-rate\": 0.05, \"seed\": %u}",
             seed);
    admin(crm_port, "POST", "/_faults", body);
    admin(tw_port, "POST", "/_faults",
          "{\"fail-next\": 2, \"rate-limit-next\": 1, \"html502-next\": 1, \"truncate-next\": 1}");
}

/* Mobile numbers of odsim patients whose TxtMsgOk is No, as "|+1...|+1...|". */
static char *opted_out_mobiles(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char path[4200];
    struct sbuf b = {0};
    snprintf(path, sizeof(path), "%s/truth.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT json_extract(body, '$.phone_mobile') FROM"
                                        " od_patients WHERE json_extract(body,"
                                        " '$.sms_consent') = 'no' AND json_extract(body,"
                                        " '$.phone_mobile') IS NOT NULL",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sbuf_puts(&b, "|");
    while (sqlite3_step(s) == SQLITE_ROW) {
        sbuf_puts(&b, (const char *)sqlite3_column_text(s, 0));
        sbuf_puts(&b, "|");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return sbuf_take(&b);
}

/* The store's contact and task records equal the CRM's items, each once. */
static void check_crm(void)
{
    cJSON *state = admin_json(crm_port, "GET", "/_state", NULL);
    const cJSON *ents = cJSON_GetObjectItemCaseSensitive(state, "entities");
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char path[4200];
    int n = 0, crm_items = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ents) crm_items +=
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "items"));
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT key, kind, body FROM records WHERE kind IN (1, 2)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        int kind = sqlite3_column_int(s, 1);
        cJSON *want = cJSON_Parse((const char *)sqlite3_column_text(s, 2));
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(ents, kind == 1 ? "contacts" : "tasks"), "items");
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(items, key);
        ck_assert_msg(item != NULL, "%s is not in the CRM", key);
        ck_assert_msg(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(item, "body"), want, 1),
                      "%s: the CRM holds an older body", key);
        cJSON_Delete(want);
        n++;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    ck_assert_int_gt(n, 100);
    ck_assert_int_eq(crm_items, n); /* nothing else, nothing twice (items are keyed) */
    cJSON_Delete(state);
}

/* The first column of the first row of sql on the store, as text (static storage). */
static const char *store_text(const char *sql)
{
    static char out[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char path[4200];
    snprintf(path, sizeof(path), "%s/odsync.db", dir);
    out[0] = '\0';
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
        snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

/* Twilio's messages against the send ledger. */
static void check_messages(const char *no_mobiles)
{
    cJSON *all = admin_json(tw_port, "GET", "/_messages", NULL), *m;
    cJSON *seen = cJSON_CreateObject();
    char sql[512];
    int n = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(all, "messages"))
    {
        const char *cb =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "status_callback"));
        const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "sid"));
        const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "to"));
        const char *key = cb ? strstr(cb, "/status/") : NULL, *k;
        char needle[64];
        ck_assert_msg(key != NULL, "a message without its key");
        key += strlen("/status/");
        ck_assert_msg(cJSON_GetObjectItemCaseSensitive(seen, key) == NULL, "%s sent twice", key);
        cJSON_AddTrueToObject(seen, key);
        snprintf(needle, sizeof(needle), "|%s|", to);
        ck_assert_msg(strstr(no_mobiles, needle) == NULL, "%s went to an opted-out patient", key);
        for (k = key; *k; k++) /* keys are od:office:... ids: no quotes */
            ck_assert(*k != '\'');
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM messages WHERE key = '%s' AND channel = 'sms' AND"
                 " (state = 'unknown' OR (state = 'sent' AND (provider_id = '%s' OR"
                 " provider_id IS NULL)))",
                 key, sid);
        if (odt_store_int(dir, sql) != 1) {
            snprintf(sql, sizeof(sql),
                     "SELECT state || ' ' || coalesce(reason, '') || ' ' ||"
                     " coalesce(provider_id, '') FROM messages WHERE key = '%s'",
                     key);
            ck_abort_msg("%s at Twilio (%s) is in the ledger as: %s", key, sid, store_text(sql));
        }
        n++;
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM messages WHERE channel = 'sms' AND"
             " state = 'sent'");
    /* every sent row was matched above, by key and sid */
    ck_assert_int_le(odt_store_int(dir, sql), n);
    ck_assert_int_eq(odt_store_int(dir, "SELECT count(*) FROM messages WHERE state = 'sending'"),
                     0);
    printf("soak: %d SMS at Twilio, %lld sent, %lld unknown after a kill\n", n,
           (long long)odt_store_int(dir, sql),
           (long long)odt_store_int(dir, "SELECT count(*) FROM messages WHERE state = 'unknown'"));
    cJSON_Delete(seen);
    cJSON_Delete(all);
}

/* Every secret the config names must stay out of the daemon's output, whatever it logged
 * (faults, 401-free retries, kill -9 recovery). */
static void scan_secrets(const char *log)
{
    static const char *const secrets[] = {CRM_TOKEN, TW_SID, TW_TOKEN, "NFF6i0KrXrxDkZHt",
                                          "VzkmZEaUWOjnQX2z"};
    size_t i;
    ck_assert_ptr_nonnull(log);
    for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        ck_assert_msg(strstr(log, secrets[i]) == NULL, "a configured secret is in the log");
}

/* Run the soak loop: iterations of faults, `odsync run`, front-desk changes and kill -9,
 * then faults off and a clean run to idle. */
static void soak(int iterations, unsigned seed, const char *logpath)
{
    const char *run[] = {odsync, "run", "--config", cfg_path, NULL};
    const char *idle[] = {odsync, "run", "--until-idle", "--config", cfg_path, NULL};
    char body[128], *out = NULL, *err = NULL;
    int rc, i;

    srand(seed);
    for (i = 0; i < iterations; i++) {
        pid_t pid;
        faults(1, seed + (unsigned)i);
        pid = tu_spawn(run, logpath);
        usleep(200000 + (useconds_t)(rand() % 1500) * 1000);
        snprintf(body, sizeof(body), "{\"count\": 15, \"seed\": %u}", seed + (unsigned)i);
        admin(sim_port, "POST", "/_admin/random", body);
        usleep((useconds_t)(rand() % 1500) * 1000);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        rc = tu_wait(pid, 5000);
        if (rc != 128 + SIGKILL) {
            char *log = tu_read_file(logpath);
            ck_abort_msg("odsync run exited %d:\n%s", rc, log ? log : "");
        }
    }
    faults(0, 0);
    rc = tu_run(idle, NULL, &out, &err);
    ck_assert_msg(rc == 0, "final run: %d\n%s", rc, err ? err : "");
    scan_secrets(err);
    free(out);
    free(err);
    err = tu_read_file(logpath);
    scan_secrets(err);
    free(err);
}

START_TEST(kill9_soak)
{
    const char *it_env = getenv("SOAK_ITERATIONS"), *seed_env = getenv("SOAK_SEED");
    int iterations = it_env ? (int)strtol(it_env, NULL, 10) : 3;
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    char logpath[4200], *no_mobiles;

    printf("soak: %d iterations, SOAK_SEED=%u\n", iterations, seed);
    snprintf(logpath, sizeof(logpath), "%s/odsync.log", dir);
    /* Patients who said No before anything ran: never texted. */
    odt_build_truth(dir, sim_port, 0x1);
    no_mobiles = opted_out_mobiles();
    soak(iterations, seed, logpath);
    odt_build_truth(dir, sim_port, 0x7);
    ck_assert_int_eq(odt_differences(dir, "od_patients", "patnum"), 0);
    ck_assert_int_eq(odt_differences(dir, "od_recalls", "recall_num"), 0);
    ck_assert_int_eq(odt_differences(dir, "od_appointments", "apt_num"), 0);
    ck_assert_int_eq(
        odt_store_int(dir, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'inflight')"),
        0);
    ck_assert_int_eq(odt_store_int(dir, "SELECT count(*) FROM outbox WHERE state = 'dead'"), 0);
    check_crm();
    check_messages(no_mobiles);
    free(no_mobiles);
}
END_TEST

/* The same kill -9 soak with a sending window that excludes the present (office time,
 * America/Chicago): messages are created and held across every crash and restart, and not
 * one reaches Twilio outside the window (R16-R18: held, never sent early, never dropped). */
START_TEST(kill9_soak_outside_the_window)
{
    const char *seed_env = getenv("SOAK_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    char logpath[4200];
    time_t now = time(NULL);
    struct tm utc_tm;
    int chicago_hour;
    cJSON *all;

    gmtime_r(&now, &utc_tm);
    chicago_hour = (utc_tm.tm_hour + 24 - 6) % 24; /* CST; in CDT it is an hour later */
    /* a one-hour window at least an hour away from now in either offset */
    if (chicago_hour >= 4 && chicago_hour <= 11)
        write_config("15:00", "16:00");
    else
        write_config("07:00", "08:00");
    printf("soak outside the window: Chicago hour %d (CST), SOAK_SEED=%u\n", chicago_hour, seed);
    snprintf(logpath, sizeof(logpath), "%s/odsync.log", dir);
    soak(2, seed, logpath);
    all = admin_json(tw_port, "GET", "/_messages", NULL);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(all, "messages")), 0);
    cJSON_Delete(all);
    ck_assert_int_eq(
        odt_store_int(dir, "SELECT count(*) FROM messages WHERE state IN ('sent', 'sending',"
                           " 'unknown')"),
        0);
    /* held for the window (or queued for it), never dropped */
    ck_assert_int_gt(odt_store_int(dir, "SELECT count(*) FROM messages WHERE state = 'held'"
                                        " AND reason = 'quiet_hours' AND hold_until > 0"),
                     0);
    /* the only other end for one of them: too old by the time the window opens (R18) */
    ck_assert_int_eq(odt_store_int(dir, "SELECT count(*) FROM messages WHERE state = 'expired'"
                                        " AND reason <> 'expired'"),
                     0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("kill9");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 3600);
    tcase_add_test(tc, kill9_soak);
    tcase_add_test(tc, kill9_soak_outside_the_window);
    suite_add_tcase(s, tc);
    return s;
}

ODSYNC_TEST_MAIN(suite)
