/*
 * odsync sink ABI, version 1.0.
 *
 * This is the one header a connector plugin needs. It is self-contained: it includes only
 * <stddef.h> and <stdint.h>, and no host type crosses the boundary. A plugin is a shared
 * object that exports one function, odsync_sink_entry_v1(), which returns a constant
 * descriptor (use ODSYNC_SINK_DEFINE below). The host dlopen()s the object, checks the
 * descriptor, validates the instance's settings against the plugin's config spec and then
 * calls create(). Records cross the boundary as UTF-8 JSON text whose schemas are documented
 * at the end of this file and in sdk/README.md.
 *
 * Evolution rules (sdk/ABI.md): a minor version only appends members to the end of a struct
 * and values to the end of an enum; nothing is ever reordered, renumbered or removed. A new
 * major version renames the entry symbol (odsync_sink_entry_v2), so an old host reports
 * "built for ABI 2" instead of misreading the descriptor.
 *
 * Ownership words used below: "borrowed" = the callee may read it until the stated point
 * and must not free it; "caller frees" = the receiver releases it with the named function;
 * "takes ownership" = the callee releases it.
 */
#ifndef ODSYNC_SINK_H
#define ODSYNC_SINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ODSYNC_SINK_MAGIC     0x4f445353u /* "ODSS" */
#define ODSYNC_SINK_ABI_MAJOR 1
#define ODSYNC_SINK_ABI_MINOR 1

#if defined(__GNUC__)
#define ODSYNC_SINK_EXPORT         __attribute__((visibility("default")))
#define ODSYNC_PRINTF_LIKE(fi, ai) __attribute__((format(printf, fi, ai)))
#else
#define ODSYNC_SINK_EXPORT
#define ODSYNC_PRINTF_LIKE(fi, ai)
#endif

/*
 * The one status enum of odsync, shared by host and plugins. 0 is success. Values are never
 * renumbered; new ones are appended. The first nine, and OPTED_OUT (1.1), are the result
 * classes a plugin reports per item; the rest are used by the host and never need to come
 * from a plugin.
 */
enum odsync_status {
    ODSYNC_OK = 0,           /* delivered / succeeded */
    ODSYNC_RETRY = 1,        /* transient: network, 5xx, 408; retried with backoff */
    ODSYNC_RATE_LIMITED = 2, /* 429 or quota: instance pauses until retry-after, no attempt spent */
    ODSYNC_PERMANENT = 3,    /* the remote rejected this item for good: dead letter now */
    ODSYNC_AUTH = 4,         /* 401/403: the instance pauses and is reported; no attempt spent */
    ODSYNC_UNSUPPORTED = 5,  /* the plugin cannot handle this record kind or field */
    ODSYNC_CONFIG = 6,       /* configuration is wrong */
    ODSYNC_NOMEM = 7,        /* out of memory */
    ODSYNC_INTERNAL = 8,     /* a bug or an impossible state */
    ODSYNC_IO = 9,           /* file or socket error on the host */
    ODSYNC_NOT_FOUND = 10,   /* no such thing */
    ODSYNC_PARSE = 11,       /* malformed input */
    ODSYNC_STORE = 12,       /* database error */
    ODSYNC_ABI = 13,         /* plugin refused by the loader */
    ODSYNC_INVALID = 14,     /* bad argument */
    /* ---- ABI 1.1 ---- */
    ODSYNC_OPTED_OUT = 15 /* a result class: the provider refused the message because the
                             recipient opted out there (Twilio 21610, a SendGrid suppression).
                             Not an error: the message is settled as not sent, and the host
                             records the opt-out in its consent ledger at once. A 1.0 host
                             treats it as INTERNAL (an unknown class). */
};

/* An OPTED_OUT detail that starts with this prefix limits the recorded opt-out to the
 * message's campaign (an unsubscribe group for one purpose); any other OPTED_OUT opts the
 * address out of every purpose. (1.1) */
#define ODSYNC_OPTED_OUT_CAMPAIGN "scope=campaign: "

/* Name of a status value, e.g. "RATE_LIMITED"; "UNKNOWN" for values this header predates. */
static inline const char *odsync_status_name(int status)
{
    static const char *const names[] = {"OK",       "RETRY",       "RATE_LIMITED", "PERMANENT",
                                        "AUTH",     "UNSUPPORTED", "CONFIG",       "NOMEM",
                                        "INTERNAL", "IO",          "NOT_FOUND",    "PARSE",
                                        "STORE",    "ABI",         "INVALID",      "OPTED_OUT"};
    if (status < 0 || (size_t)status >= sizeof(names) / sizeof(names[0]))
        return "UNKNOWN";
    return names[status];
}

/* Record kinds. A message record carries its channel ("sms" or "email") in its JSON. */
enum odsync_record_kind { ODSYNC_KIND_CONTACT = 1, ODSYNC_KIND_TASK = 2, ODSYNC_KIND_MESSAGE = 3 };

/* Capability bits in odsync_sink_descriptor.capabilities. */
#define ODSYNC_CAP_CONTACTS   (UINT64_C(1) << 0)  /* accepts contact records */
#define ODSYNC_CAP_TASKS      (UINT64_C(1) << 1)  /* accepts task records */
#define ODSYNC_CAP_SMS        (UINT64_C(1) << 2)  /* accepts message records, channel "sms" */
#define ODSYNC_CAP_EMAIL      (UINT64_C(1) << 3)  /* accepts message records, channel "email" */
#define ODSYNC_CAP_CONCURRENT (UINT64_C(1) << 32) /* send_batch may run concurrently */

/* Log levels for odsync_host.log. */
enum odsync_log_level {
    ODSYNC_LOG_ERROR = 0,
    ODSYNC_LOG_WARN = 1,
    ODSYNC_LOG_INFO = 2,
    ODSYNC_LOG_DEBUG = 3
};

/* Config value types for odsync_config_spec.type. */
enum odsync_config_type {
    ODSYNC_CFG_STRING = 1, /* any JSON string */
    ODSYNC_CFG_INT = 2,    /* a JSON integer; config_get returns it in decimal */
    ODSYNC_CFG_BOOL = 3,   /* JSON true/false; config_get returns "true" or "false" */
    ODSYNC_CFG_URL = 4     /* a string starting with http:// or https:// */
};

#define ODSYNC_CFG_REQUIRED 1u /* the key must be present */
#define ODSYNC_CFG_SECRET   2u /* value must be "${ENV}" or "file:/path"; read via secret_get */

/* One setting a plugin accepts. The table ends with an entry whose name is NULL. */
struct odsync_config_spec {
    const char *name;          /* key inside the sink instance's JSON object */
    int32_t type;              /* enum odsync_config_type */
    uint32_t flags;            /* ODSYNC_CFG_REQUIRED | ODSYNC_CFG_SECRET */
    const char *default_value; /* text form of the default, or NULL */
    const char *description;   /* one line for `odsync plugins describe` */
};

/* A record handed to send_batch. All pointers are borrowed until send_batch returns. */
struct odsync_record {
    uint32_t struct_size;  /* sizeof this struct as the host built it (>= v1.0 size) */
    int32_t kind;          /* enum odsync_record_kind */
    const char *key;       /* deterministic external id, e.g. "od:main-st:1042" */
    const char *office;    /* office id from the config */
    int64_t version;       /* increases each time the record's content changes */
    const char *json;      /* UTF-8 JSON object, NUL-terminated; schema per kind below */
    size_t json_len;       /* strlen(json) */
    const char *remote_id; /* id the sink reported for this key before, or NULL */
};

/* One HTTP header: both strings borrowed for the duration of the call they are passed to. */
struct odsync_http_header {
    const char *name;
    const char *value;
};

/* An HTTP request for odsync_host.http. Everything borrowed for the duration of the call. */
struct odsync_http_request {
    uint32_t struct_size;                     /* sizeof(struct odsync_http_request) */
    const char *method;                       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;                          /* absolute http:// or https:// URL */
    const struct odsync_http_header *headers; /* may be NULL when header_count is 0 */
    size_t header_count;
    const char *body; /* request body or NULL */
    size_t body_len;
    int32_t timeout_ms; /* whole-request timeout; 0 = the host default (30 s) */
    int32_t reserved0;  /* set to 0; explicit so a member a minor appends changes struct_size */
};

/*
 * An HTTP response from odsync_host.http. Caller frees with odsync_host.http_free.
 * When no response arrived (DNS, connect, TLS, timeout), status is 0, result_class is
 * ODSYNC_RETRY and error says what happened.
 */
struct odsync_http_response {
    uint32_t struct_size;   /* sizeof as the host built it */
    int32_t status;         /* HTTP status code, 0 if none */
    int32_t result_class;   /* the host's one status -> class mapping (enum odsync_status) */
    int64_t retry_after_ms; /* parsed Retry-After (seconds or HTTP date), -1 when absent */
    const char *body;       /* response body, NUL-terminated (never NULL) */
    size_t body_len;
    const char *error; /* transport error text, or NULL */
};

typedef struct odsync_host_ctx odsync_host_ctx; /* per-instance host handle, opaque */
typedef struct odsync_batch odsync_batch;       /* a batch in flight, opaque */

/*
 * Services the host offers a plugin. Passed to create(); valid until destroy() returns.
 * Append-only: test struct_size (offsetof(member) < struct_size) before using a member that
 * a later minor version added. Every v1.0 member is always present.
 */
struct odsync_host {
    uint32_t struct_size; /* sizeof as the host built it */
    uint16_t abi_major;   /* ODSYNC_SINK_ABI_MAJOR of the host */
    uint16_t abi_minor;   /* ODSYNC_SINK_ABI_MINOR of the host */

    /* Log a line tagged with the instance name. Registered secrets are masked. Keep patient
     * data out: log opaque keys, never names, phones or addresses. */
    void (*log)(odsync_host_ctx *ctx, int level, const char *fmt, ...) ODSYNC_PRINTF_LIKE(3, 4);

    /* Record why create() failed; the loader prints it with the instance name. */
    void (*set_error)(odsync_host_ctx *ctx, const char *fmt, ...) ODSYNC_PRINTF_LIKE(2, 3);

    /* A non-secret setting as text (defaults applied), or NULL when unset.
     * Borrowed, valid until destroy(). */
    const char *(*config_get)(odsync_host_ctx *ctx, const char *name);

    /* A secret setting, resolved from the environment or a file. Borrowed, valid until
     * destroy(). NULL when unset. Never log it. */
    const char *(*secret_get)(odsync_host_ctx *ctx, const char *name);

    /* Perform an HTTP request through the host's libcurl (TLS, timeouts, connection reuse).
     * On return *out is a response the caller frees with http_free (NULL only with
     * ODSYNC_NOMEM or ODSYNC_INVALID). Returns the response's result_class. */
    int (*http)(odsync_host_ctx *ctx, const struct odsync_http_request *req,
                struct odsync_http_response **out);

    /* Value of a response header (case-insensitive name), or NULL. Borrowed, valid until
     * http_free. */
    const char *(*http_header)(const struct odsync_http_response *resp, const char *name);

    /* Free a response from http(). Accepts NULL. */
    void (*http_free)(struct odsync_http_response *resp);

    /* The host's one mapping from an HTTP status to a result class: 2xx OK, 408 and 5xx and 0
     * RETRY, 429 RATE_LIMITED, 401/403 AUTH, other 4xx and 3xx PERMANENT. */
    int (*status_class)(int http_status);

    /* Percent-encode in (RFC 3986 unreserved kept) into out. Returns ODSYNC_OK, or
     * ODSYNC_INVALID when out_len is too small (out then holds ""). */
    int (*url_encode)(const char *in, char *out, size_t out_len);

    /* Add delta to a counter / set a gauge, both named per instance, e.g. "requests". */
    void (*counter_add)(odsync_host_ctx *ctx, const char *name, int64_t delta);
    void (*gauge_set)(odsync_host_ctx *ctx, const char *name, double value);

    /* Report the result of item `index` of `batch`. status is an enum odsync_status result
     * class; retry_after_ms is -1 unless known; remote_id (the remote system's id for the
     * record, or NULL) and detail (why, for a failure; no patient data) are copied. Items
     * not reported keep the send_batch return value's class (RETRY if that was OK). */
    void (*result_set)(odsync_batch *batch, size_t index, int status, int64_t retry_after_ms,
                       const char *remote_id, const char *detail);
};

/*
 * Callbacks. `instance` is what create() stored in *instance.
 * create:     build an instance; on failure call host->set_error and return a status
 *             (destroy is not called after a failed create: free what you made).
 * send_batch: deliver records[0..count) (count <= max_batch); report each with result_set.
 *             The return value is the class for items left unreported (ODSYNC_OK = none).
 * flush:      push anything buffered; may be NULL.
 * health:     write a short state line into detail; return ODSYNC_OK when healthy; may be NULL.
 * destroy:    free the instance; accepts NULL.
 * Calls on one instance are serialized unless ODSYNC_CAP_CONCURRENT is set.
 */
typedef int (*odsync_sink_create_fn)(const struct odsync_host *host, odsync_host_ctx *ctx,
                                     void **instance);
typedef int (*odsync_sink_send_batch_fn)(void *instance, odsync_batch *batch,
                                         const struct odsync_record *const *records, size_t count);
typedef int (*odsync_sink_flush_fn)(void *instance);
typedef int (*odsync_sink_health_fn)(void *instance, char *detail, size_t detail_len);
typedef void (*odsync_sink_destroy_fn)(void *instance);

/* The descriptor a plugin returns from odsync_sink_entry_v1(). Use ODSYNC_SINK_DEFINE. */
struct odsync_sink_descriptor {
    uint32_t magic;       /* ODSYNC_SINK_MAGIC */
    uint16_t abi_major;   /* ODSYNC_SINK_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* ODSYNC_SINK_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(struct odsync_sink_descriptor) as the plugin saw it */
    uint32_t max_batch;   /* most records per send_batch call, >= 1 */
    const char *name;     /* [a-z0-9_-]+, the name used in config "plugin" */
    const char *version;  /* the plugin's own version, e.g. "1.2.0" */
    const char *description;
    uint64_t capabilities;                   /* ODSYNC_CAP_* bits */
    const struct odsync_config_spec *config; /* NULL-name-terminated table, or NULL */
    odsync_sink_create_fn create;            /* required */
    odsync_sink_send_batch_fn send_batch;    /* required */
    odsync_sink_flush_fn flush;              /* optional */
    odsync_sink_health_fn health;            /* optional */
    odsync_sink_destroy_fn destroy;          /* required */
    /* ---- ABI 1.1 ---- */
    const char *setup; /* optional: what an operator must do in the remote system before the
                          plugin works (e.g. custom properties to create), as plain text
                          lines; `odsync plugins describe` prints it. NULL = nothing. A 1.0
                          plugin's descriptor ends before it: the host sees NULL. */
};

/* The entry point. A plugin defines it with ODSYNC_SINK_DEFINE. */
typedef const struct odsync_sink_descriptor *(*odsync_sink_entry_v1_fn)(void);
#define ODSYNC_SINK_ENTRY_V1 "odsync_sink_entry_v1"

/*
 * Define the plugin's entry point. Pass designated initializers for the plugin's fields:
 *   ODSYNC_SINK_DEFINE(.name = "rest", .version = "1.0.0", .max_batch = 100, ...)
 * magic, ABI version and struct size are filled in for you.
 */
#define ODSYNC_SINK_DEFINE(...)                                                                    \
    ODSYNC_SINK_EXPORT const struct odsync_sink_descriptor *odsync_sink_entry_v1(void);            \
    const struct odsync_sink_descriptor *odsync_sink_entry_v1(void)                                \
    {                                                                                              \
        static const struct odsync_sink_descriptor odsync_descriptor_ = {                          \
            .magic = ODSYNC_SINK_MAGIC,                                                            \
            .abi_major = ODSYNC_SINK_ABI_MAJOR,                                                    \
            .abi_minor = ODSYNC_SINK_ABI_MINOR,                                                    \
            .struct_size = (uint32_t)sizeof(struct odsync_sink_descriptor),                        \
            __VA_ARGS__};                                                                          \
        return &odsync_descriptor_;                                                                \
    }

/* v1.0 sizes; the loader refuses anything smaller. */
#define ODSYNC_SINK_DESCRIPTOR_V1_0_SIZE                                                           \
    (offsetof(struct odsync_sink_descriptor, destroy) + sizeof(void (*)(void)))
#define ODSYNC_HOST_V1_0_SIZE   (offsetof(struct odsync_host, result_set) + sizeof(void (*)(void)))
#define ODSYNC_RECORD_V1_0_SIZE (offsetof(struct odsync_record, remote_id) + sizeof(char *))

/* Pin every v1.0 offset. The pins are for LP64 (x86_64, aarch64), the platforms odsync
 * builds and tests on; elsewhere they compile to nothing. */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#if UINTPTR_MAX == UINT64_MAX
#define ODSYNC_PIN_(type, member, off)                                                             \
    _Static_assert(offsetof(type, member) == (off), #type "." #member " moved: ABI break")
#else
#define ODSYNC_PIN_(type, member, off) typedef int odsync_pin_unused_##member##_
#endif
ODSYNC_PIN_(struct odsync_sink_descriptor, magic, 0);
ODSYNC_PIN_(struct odsync_sink_descriptor, abi_major, 4);
ODSYNC_PIN_(struct odsync_sink_descriptor, abi_minor, 6);
ODSYNC_PIN_(struct odsync_sink_descriptor, struct_size, 8);
ODSYNC_PIN_(struct odsync_sink_descriptor, max_batch, 12);
ODSYNC_PIN_(struct odsync_sink_descriptor, name, 16);
ODSYNC_PIN_(struct odsync_sink_descriptor, version, 24);
ODSYNC_PIN_(struct odsync_sink_descriptor, description, 32);
ODSYNC_PIN_(struct odsync_sink_descriptor, capabilities, 40);
ODSYNC_PIN_(struct odsync_sink_descriptor, config, 48);
ODSYNC_PIN_(struct odsync_sink_descriptor, create, 56);
ODSYNC_PIN_(struct odsync_sink_descriptor, send_batch, 64);
ODSYNC_PIN_(struct odsync_sink_descriptor, flush, 72);
ODSYNC_PIN_(struct odsync_sink_descriptor, health, 80);
ODSYNC_PIN_(struct odsync_sink_descriptor, destroy, 88);
ODSYNC_PIN_(struct odsync_sink_descriptor, setup, 96); /* 1.1 */
ODSYNC_PIN_(struct odsync_host, struct_size, 0);
ODSYNC_PIN_(struct odsync_host, abi_major, 4);
ODSYNC_PIN_(struct odsync_host, abi_minor, 6);
ODSYNC_PIN_(struct odsync_host, log, 8);
ODSYNC_PIN_(struct odsync_host, set_error, 16);
ODSYNC_PIN_(struct odsync_host, config_get, 24);
ODSYNC_PIN_(struct odsync_host, secret_get, 32);
ODSYNC_PIN_(struct odsync_host, http, 40);
ODSYNC_PIN_(struct odsync_host, http_header, 48);
ODSYNC_PIN_(struct odsync_host, http_free, 56);
ODSYNC_PIN_(struct odsync_host, status_class, 64);
ODSYNC_PIN_(struct odsync_host, url_encode, 72);
ODSYNC_PIN_(struct odsync_host, counter_add, 80);
ODSYNC_PIN_(struct odsync_host, gauge_set, 88);
ODSYNC_PIN_(struct odsync_host, result_set, 96);
ODSYNC_PIN_(struct odsync_record, struct_size, 0);
ODSYNC_PIN_(struct odsync_record, kind, 4);
ODSYNC_PIN_(struct odsync_record, key, 8);
ODSYNC_PIN_(struct odsync_record, office, 16);
ODSYNC_PIN_(struct odsync_record, version, 24);
ODSYNC_PIN_(struct odsync_record, json, 32);
ODSYNC_PIN_(struct odsync_record, json_len, 40);
ODSYNC_PIN_(struct odsync_record, remote_id, 48);
ODSYNC_PIN_(struct odsync_config_spec, name, 0);
ODSYNC_PIN_(struct odsync_config_spec, type, 8);
ODSYNC_PIN_(struct odsync_config_spec, flags, 12);
ODSYNC_PIN_(struct odsync_config_spec, default_value, 16);
ODSYNC_PIN_(struct odsync_config_spec, description, 24);
ODSYNC_PIN_(struct odsync_http_request, struct_size, 0);
ODSYNC_PIN_(struct odsync_http_request, method, 8);
ODSYNC_PIN_(struct odsync_http_request, url, 16);
ODSYNC_PIN_(struct odsync_http_request, headers, 24);
ODSYNC_PIN_(struct odsync_http_request, header_count, 32);
ODSYNC_PIN_(struct odsync_http_request, body, 40);
ODSYNC_PIN_(struct odsync_http_request, body_len, 48);
ODSYNC_PIN_(struct odsync_http_request, timeout_ms, 56);
ODSYNC_PIN_(struct odsync_http_request, reserved0, 60);
ODSYNC_PIN_(struct odsync_http_header, name, 0);
ODSYNC_PIN_(struct odsync_http_header, value, 8);
ODSYNC_PIN_(struct odsync_http_response, struct_size, 0);
ODSYNC_PIN_(struct odsync_http_response, status, 4);
ODSYNC_PIN_(struct odsync_http_response, result_class, 8);
ODSYNC_PIN_(struct odsync_http_response, retry_after_ms, 16);
ODSYNC_PIN_(struct odsync_http_response, body, 24);
ODSYNC_PIN_(struct odsync_http_response, body_len, 32);
ODSYNC_PIN_(struct odsync_http_response, error, 40);
#undef ODSYNC_PIN_
#endif

/*
 * Record JSON schemas (v1.0). Fields may be added in later minors; plugins ignore unknown
 * fields. Absent optional fields are JSON null. Dates are "YYYY-MM-DD"; instants are UTC
 * RFC 3339 ("2026-05-01T15:00:00Z"). Phones are E.164 when valid, else null.
 *
 * contact  {"key","office","patnum":int,"first_name","last_name","preferred_name",
 *           "email","phone_mobile","phone_home","phone_work","patient_status",
 *           "guarantor_key","sms_consent":"yes"|"no"|"unknown","email_opt_out":bool,
 *           "language","recall_due","recall_stage","last_visit","reactivation":bool,
 *           "updated_at"}
 * task     {"key","office","contact_key","subject","body","due":instant,
 *           "status":"open"|"completed","priority":"low"|"medium"|"high",
 *           "type":"call"|"email"|"todo"}
 *           recall_stage: null, "due_soon", "due", "overdue_<days>" or "scheduled";
 *           reactivation: enrolled in the reactivation campaign
 * message  {"key","office","contact_key","channel":"sms"|"email","campaign","to",
 *           "subject","body","template_id","template_data":{string:string}}
 *           campaign: "recall" | "reactivation" | "review"; body is rendered and final (an
 *           SMS fits one segment with its opt-out line); a message's key is sent at most
 *           once: the host's send ledger never hands the same key to a sink again after a
 *           send was attempted
 * No record carries clinical detail (procedures, diagnoses, notes).
 */

#ifdef __cplusplus
}
#endif

#endif /* ODSYNC_SINK_H */
