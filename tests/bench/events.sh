#!/usr/bin/env bash
# API Events intake benchmark: a real `odsync run` listening on loopback (its Open Dental
# office points at a closed port, so only the webhook path works), driven by bench_events.
#   BENCH_BATCHES (default 200) 1000-row batches per phase. Writes $BENCH_OUT/events.json.
set -euo pipefail
build=${1:-$(pwd)/build}
batches=${BENCH_BATCHES:-200}
out=${BENCH_OUT:-$build/bench}
work=$(mktemp -d)
mkdir -p "$out"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
export BENCH_DEV=bench-developer BENCH_CUST=bench-customer-key
cat >"$work/odsync.json" <<JSON
{"store": "$work/odsync.db", "plugin_dirs": ["$build/plugins"], "listen": "127.0.0.1:0",
 "log": {"level": "error"},
 "offices": [{"id": "bench", "name": "Bench", "timezone": "America/Chicago",
   "opendental": {"base_url": "http://127.0.0.1:9/api/v1", "tier": "local",
                  "sync_interval_s": 86400,
                  "developer_key": "\${BENCH_DEV}", "customer_key": "\${BENCH_CUST}"}}]}
JSON
"$build/odsync" run --config "$work/odsync.json" >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/out")
"$build/bench/bench_events" "$port" "$BENCH_CUST" "$work/odsync.db" "$batches" \
    "$out/events.json"
