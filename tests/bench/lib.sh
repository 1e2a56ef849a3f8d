# shellcheck shell=bash disable=SC2154,SC2016 # build, work: set by the caller; literal ${ENV} in JSON
# Shared helpers for the benchmark scripts (sourced, not run). Every process started through
# start_server is recorded and stopped by bench_cleanup, which each script installs as its EXIT
# trap together with removing its work directory.
#   build  the build directory (binaries), out  where JSON goes (BENCH_OUT, default build/bench)

BENCH_PIDS=()
BENCH_DEV=NFF6i0KrXrxDkZHt
BENCH_CUST=VzkmZEaUWOjnQX2z
BENCH_HS_TOKEN=bench-hubspot-token
export BENCH_DEV BENCH_CUST BENCH_HS_TOKEN

bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${BENCH_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [ -n "${work:-}" ]; then rm -rf "$work"; fi
}

# start_server NAME CMD...: start a loopback server printing "listening on 127.0.0.1:PORT",
# wait for that line, set PORT_<NAME> and PID_<NAME>.
start_server() {
    local name=$1 pid port
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.log" &
    pid=$!
    BENCH_PIDS+=("$pid")
    for _ in $(seq 600); do
        grep -q listening "$work/$name.out" 2>/dev/null && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: $name exited at start:" >&2
            cat "$work/$name.log" >&2
            return 1
        fi
        sleep 0.05
    done
    port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/$name.out")
    [ -n "$port" ] || { echo "bench: $name did not start" >&2; return 1; }
    printf -v "PORT_$name" '%s' "$port"
    printf -v "PID_$name" '%s' "$pid"
}

# stop_server PID: SIGTERM and wait.
stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# start_hubspot NAME [LIMIT_SCALE]: the HubSpot fake. With LIMIT_SCALE it enforces HubSpot's
# burst limit for Professional and Enterprise private apps (190 requests per rolling 10 s)
# over a window LIMIT_SCALE times shorter; without (or 0), no burst limit.
start_hubspot() {
    local limit=(--ten-secondly-max 100000)
    if [ "${2:-0}" -gt 0 ]; then limit=(--ten-secondly-max 190 --interval-ms $((10000 / $2))); fi
    start_server "$1" "$build/contrib/fakes/fake_hubspot" --token "$BENCH_HS_TOKEN" \
        "${limit[@]}" --daily-max 100000000
}

now() { date +%s.%N; }
calc() { printf '%.4f' "$(echo "$*" | bc -l)"; }
fmt() { printf "%.${2:-2}f" "$1"; }

# CRM data requests of the HubSpot fake on PORT (properties set-up excluded), and all of them.
hs_data_requests() {
    curl -fsS "http://127.0.0.1:$1/_state" |
        jq '[.requests.by_route | to_entries[] | select(.key | contains("/properties/") | not)
             | .value.total] | add // 0'
}
hs_all_requests() { curl -fsS "http://127.0.0.1:$1/_state" | jq '.requests.total'; }
hs_objects() { curl -fsS "http://127.0.0.1:$1/_state" | jq ".objects.$2"; }

# Open Dental requests odsim counted for office K (default 1).
od_requests() { curl -fsS "http://127.0.0.1:$1/_admin/stats?office=${2:-1}" | jq .requests; }

# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# odsync config: office list JSON and sinks JSON given; the store is $work/odsync.db.
write_config() { # FILE OFFICES_JSON SINKS_JSON [EXTRA_TOP_LEVEL]
    cat >"$1" <<JSON
{"store": "$work/odsync.db", "plugin_dirs": ["$build/plugins"], "log": {"level": "error"},
 ${4:-}
 "sinks": $3,
 "offices": $2}
JSON
}

hs_sink() { # PORT
    printf '{"hs": {"plugin": "hubspot", "token": "${BENCH_HS_TOKEN}", "base_url": "http://127.0.0.1:%s", "create_properties": true}}' "$1"
}

office_json() { # ID OD_PORT TIER MIN_INTERVAL_MS [CUSTOMER_KEY_ENV] [EXTRA]
    printf '{"id": "%s", "name": "Bench %s", "timezone": "America/Chicago",
   "opendental": {"base_url": "http://127.0.0.1:%s/api/v1", "tier": "%s", "min_interval_ms": %s,
                  "sync_interval_s": 86400, "developer_key": "${BENCH_DEV}",
                  "customer_key": "${%s}"}, %s
   "routes": {"contact": ["hs"], "task": ["hs"]}}' \
        "$1" "$1" "$2" "$3" "$4" "${5:-BENCH_CUST}" "${6:-}"
}

# Records the store holds for sinks (contacts + tasks).
store_records() { sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM records WHERE kind IN (1, 2)"; }
