#!/usr/bin/env bash
# Ingestion benchmark: a full sync of one office from odsim, then a no-change pass.
# Prints wall time, records/s, peak RSS, Open Dental requests against their lower bound
# (sum of ceil(rows / page size) over the resources read), the no-change pass's requests and
# the throttle violations odsim counted. Writes build/bench/ingest.json.
#   BENCH_PATIENTS (default 20000), BENCH_MODE local|remote (default local: pages of 1000,
#   no throttle), BENCH_THROTTLE_MS (remote mode: odsim throttle and odsync pacing; default 0)
set -euo pipefail
build=${1:-$(pwd)/build}
patients=${BENCH_PATIENTS:-20000}
mode=${BENCH_MODE:-local}
throttle=${BENCH_THROTTLE_MS:-0}
out=${BENCH_OUT:-$build/bench}
work=$(mktemp -d)
mkdir -p "$out"
sim_pid=
trap '[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"' EXIT

args=(--listen 127.0.0.1:0 --patients "$patients" --seed 7 --mode "$mode" --clock "2026-11-27 09:00:00")
[ "$throttle" -gt 0 ] && args+=(--throttle "$throttle" --over-limit reject)
"$build/contrib/odsim/odsim" "${args[@]}" >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 300); do grep -q listening "$work/sim.out" && break; sleep 0.1; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/sim.out")
tier=$([ "$mode" = local ] && echo local || echo paid)
export BENCH_DEV=NFF6i0KrXrxDkZHt BENCH_CUST=VzkmZEaUWOjnQX2z
cat >"$work/odsync.json" <<JSON
{"store": "$work/odsync.db", "plugin_dirs": ["$build/plugins"], "log": {"level": "warn"},
 "offices": [{"id": "bench", "name": "Bench", "timezone": "America/Chicago",
   "opendental": {"base_url": "http://127.0.0.1:$port/api/v1", "tier": "$tier",
                  "min_interval_ms": $throttle,
                  "developer_key": "\${BENCH_DEV}", "customer_key": "\${BENCH_CUST}"}}]}
JSON
stats() { curl -fsS "http://127.0.0.1:$port/_admin/stats?office=1"; }
page=$([ "$mode" = local ] && echo 1000 || echo 100)

start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/rss" "$build/odsync" sync --config "$work/odsync.json" >/dev/null
end=$(date +%s.%N)
full_requests=$(stats | jq .requests)
violations=$(stats | jq .throttle_violations)
count() { sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM $1"; }
rows=0; bound=0
for t in od_clinics od_patients od_appointments od_procedures od_recalls; do
  n=$(count "$t"); rows=$((rows + n)); bound=$((bound + (n + page - 1) / page))
done
"$build/odsync" sync --config "$work/odsync.json" >/dev/null
nochange=$(( $(stats | jq .requests) - full_requests ))
secs=$(echo "$end - $start" | bc -l)
rss_kb=$(cat "$work/rss")
printf '%-34s %s\n' "patients" "$patients" \
  "mode / page size / pacing" "$mode / $page / ${throttle} ms" \
  "canonical rows written" "$rows" \
  "full sync wall time (s)" "$(printf '%.2f' "$secs")" \
  "rows/s" "$(printf '%.0f' "$(echo "$rows / $secs" | bc -l)")" \
  "patients/s" "$(printf '%.0f' "$(echo "$patients / $secs" | bc -l)")" \
  "peak RSS (MB)" "$(printf '%.1f' "$(echo "$rss_kb / 1024" | bc -l)")" \
  "Open Dental requests (full sync)" "$full_requests" \
  "lower bound sum(ceil(rows/page))" "$bound" \
  "ratio (target <= 1.05)" "$(printf '%.3f' "$(echo "$full_requests / $bound" | bc -l)")" \
  "no-change pass requests (<= 6)" "$nochange" \
  "throttle violations (0)" "$violations"
cat >"$out/ingest.json" <<JSON
{"patients": $patients, "mode": "$mode", "page_size": $page, "pacing_ms": $throttle,
 "rows": $rows, "seconds": $secs, "peak_rss_kb": $rss_kb, "requests": $full_requests,
 "lower_bound": $bound, "no_change_requests": $nochange, "throttle_violations": $violations}
JSON
