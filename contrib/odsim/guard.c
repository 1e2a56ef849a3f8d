/*
 * guard.c: authentication, the per-key throttle, fault injection and request counting for
 * /api/v1 (the order is described in guard.h).
 */
#include "guard.h"

#include <string.h>
#include <strings.h>

#include "rest.h"

#define UNKNOWN_ROUTE (ODSIM_ROUTE_MAX - 1)

enum status_slot guard_status_slot(unsigned status)
{
    switch (status) {
    case 200:
        return SS_200;
    case 201:
        return SS_201;
    case 400:
        return SS_400;
    case 401:
        return SS_401;
    case 404:
        return SS_404;
    case 405:
        return SS_405;
    case 429:
        return SS_429;
    case 500:
        return SS_500;
    case 504:
        return SS_504;
    default:
        return SS_OTHER;
    }
}

const char *guard_slot_name(enum status_slot slot)
{
    static const char *const names[SS_COUNT] = {"200", "201", "400", "401", "404",
                                                "405", "429", "500", "504", "other"};
    return slot < SS_COUNT ? names[slot] : "other";
}

/* Split "ODFHIR dev/customer" into its keys (copied into dev and cust). Returns 1 when the
 * header has exactly that form: the prefix, one space, two non-empty keys, one slash. */
static int parse_auth(const char *h, char *dev, size_t dev_len, char *cust, size_t cust_len)
{
    const char *p, *slash;
    if (h == NULL || strncmp(h, "ODFHIR ", 7) != 0)
        return 0;
    p = h + 7;
    slash = strchr(p, '/');
    if (slash == NULL || slash == p || slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
        strpbrk(p, " \t") != NULL)
        return 0;
    if ((size_t)(slash - p) >= dev_len || strlen(slash + 1) >= cust_len)
        return 0;
    memcpy(dev, p, (size_t)(slash - p));
    dev[slash - p] = '\0';
    memcpy(cust, slash + 1, strlen(slash + 1) + 1);
    return 1;
}

/* 1 when the Content-Type is application/json (parameters such as charset allowed). */
static int json_content_type(const char *ct)
{
    size_t n;
    if (ct == NULL)
        return 0;
    while (*ct == ' ')
        ct++;
    n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Count the answer of one request of office o on route. */
static void count(struct sim *s, struct office *o, int route, unsigned status)
{
    pthread_mutex_lock(&s->state_lock);
    o->stats.by_route[route][guard_status_slot(status)]++;
    pthread_mutex_unlock(&s->state_lock);
}

/* Take the throttle slot of o for a request arriving now. Returns 0 to go on after
 * sleeping *wait_ms, or the seconds for a 429's Retry-After (reject mode). Needs
 * state_lock. */
static int64_t take_slot(struct office *o, const struct faults *f, int64_t now, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (now >= o->next_slot_ms) {
        o->next_slot_ms = now + f->throttle_ms;
        return 0;
    }
    o->stats.throttle_violations++;
    if (f->over_limit_reject) {
        int64_t left = o->next_slot_ms - now;
        return left <= 0 ? 1 : (left + 999) / 1000;
    }
    *wait_ms = o->next_slot_ms - now;
    o->next_slot_ms += f->throttle_ms;
    return 0;
}

void guard_serve(struct sim *s, const struct req *r, struct answer *a)
{
    char dev[ODSIM_KEY_MAX], cust[ODSIM_KEY_MAX], msg[200];
    int64_t ids[2] = {0, 0}, wait_ms = 0, retry = 0, start;
    struct office *o = NULL;
    struct faults f;
    int route = rest_match(r->method, r->path, ids);
    int slot_route = route >= 0 ? route : UNKNOWN_ROUTE;

    /* 1. Authorization. */
    if (!parse_auth(req_header(r, "Authorization"), dev, sizeof(dev), cust, sizeof(cust)) ||
        (o = sim_office_by_key(s, cust)) == NULL) {
        pthread_mutex_lock(&s->state_lock);
        s->unknown_requests++;
        s->unknown_401++;
        pthread_mutex_unlock(&s->state_lock);
        answer_error(a, 401,
                     "Invalid Authorization header. Expected ODFHIR {DeveloperKey}/{CustomerKey} "
                     "with valid keys.");
        return;
    }
    pthread_mutex_lock(&s->state_lock);
    o->stats.requests++;
    f = o->faults;
    pthread_mutex_unlock(&s->state_lock);
    if (!util_secure_equal(dev, s->dev_key) || f.key_disabled) {
        answer_error(a, 401,
                     f.key_disabled ? "The customer key is disabled."
                                    : "Invalid developer key or customer key.");
        goto done;
    }

    /* 2. Throttle. */
    if (!s->local_mode && f.throttle_ms > 0) {
        pthread_mutex_lock(&s->state_lock);
        retry = take_slot(o, &f, util_monotonic_ms(), &wait_ms);
        pthread_mutex_unlock(&s->state_lock);
        if (retry > 0) {
            util_fmt(msg, sizeof(msg),
                     "Too many requests. This customer key is limited to one request every "
                     "%lld ms.",
                     (long long)f.throttle_ms);
            answer_error(a, 429, msg);
            a->retry_after = retry;
            goto done;
        }
        if (wait_ms > 0)
            sim_sleep_ms(s, wait_ms);
    }
    start = util_monotonic_ms();

    /* 3.-5. */
    if (!json_content_type(req_header(r, "Content-Type"))) {
        answer_error(a, 400, "Content-Type must be application/json.");
    } else if (f.econnector_down && !s->local_mode) {
        answer_error(a, 400, GUARD_ECONNECTOR_MSG);
    } else if (route == -1) {
        answer_error(a, 404, "The requested resource was not found.");
    } else if (route == -2) {
        answer_error(a, 405, "The requested method is not supported for this resource.");
    } else if (f.version_too_old & (UINT32_C(1) << route)) {
        util_fmt(msg, sizeof(msg),
                 "%s %s is not available: it was added in Open Dental version %s and this "
                 "office runs an older version. The office must update Open Dental.",
                 rest_routes[route].method, rest_routes[route].path, rest_routes[route].version);
        answer_error(a, 400, msg);
    } else {
        rest_routes[route].fn(s, o, r, ids, a);
    }

    /* 6. Slow answers and the 504 limit (the work, if any, is done: like a real office). */
    if (f.slow_ms > 0 || f.timeout_504_ms > 0) {
        int64_t spent = util_monotonic_ms() - start;
        if (f.timeout_504_ms > 0 && spent + f.slow_ms > f.timeout_504_ms) {
            if (f.timeout_504_ms > spent)
                sim_sleep_ms(s, f.timeout_504_ms - spent);
            util_free(a->location);
            a->location = NULL;
            answer_error(a, 504, "The request did not finish in time. Try again later.");
        } else if (f.slow_ms > 0) {
            sim_sleep_ms(s, f.slow_ms);
        }
    }
done:
    count(s, o, slot_route, a->status);
}
