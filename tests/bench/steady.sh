#!/usr/bin/env bash
# shellcheck disable=SC2154 # PORT_*, PID_* are set by start_server (lib.sh)
# Steady state: after a full sync of one office into the HubSpot fake, `odsync run` (listener,
# ingester, HubSpot worker) receives BENCH_STEADY_RATE changes per minute as API Events for
# BENCH_STEADY_S seconds (bench_steady posts them as Open Dental would). Reports event -> CRM
# latency (p50/p99/max) and the daemon's CPU use over the window. Writes $out/steady.json.
#   BENCH_PATIENTS (20000), BENCH_STEADY_S (60), BENCH_STEADY_RATE (1000 per minute)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$(pwd)/build}
out=${BENCH_OUT:-$build/bench}
patients=${BENCH_PATIENTS:-20000}
seconds=${BENCH_STEADY_S:-60}
rate=${BENCH_STEADY_RATE:-1000}
work=$(mktemp -d)
mkdir -p "$out"
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
trap bench_cleanup EXIT

start_server sim "$build/contrib/odsim/odsim" --listen 127.0.0.1:0 --patients "$patients" \
    --seed 7 --mode local --clock "2026-11-27 09:00:00"
start_hubspot hs
write_config "$work/odsync.json" "[$(office_json bench "$PORT_sim" local 0)]" \
    "$(hs_sink "$PORT_hs")" '"listen": "127.0.0.1:0",'
cfg=(--config "$work/odsync.json")
"$build/odsync" sync "${cfg[@]}" >/dev/null
"$build/odsync" run --until-idle --deliver-only "${cfg[@]}" >/dev/null

start_server odsync "$build/odsync" run "${cfg[@]}"
sleep 1 # the reconciling pass at start (nothing changed: five requests)
hz=$(getconf CLK_TCK)
cpu0=$(cpu_s "$PID_odsync")
t0=$(now)
"$build/bench/bench_steady" "$PORT_odsync" "$PORT_sim" "$BENCH_DEV" "$BENCH_CUST" "$PORT_hs" \
    "$seconds" "$rate" >"$work/steady.json"
wall=$(calc "$(now) - $t0")
cpu1=$(cpu_s "$PID_odsync")
threads=$(awk '/^Threads:/ {print $2}' "/proc/$PID_odsync/status")
rss_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID_odsync/status")
jq --argjson cpu "$(calc "($cpu1 - $cpu0) * 100 / $wall")" --argjson wall "$wall" \
    --argjson threads "$threads" --argjson rss "$rss_kb" --argjson hz "$hz" \
    '. + {cpu_percent: $cpu, window_s: $wall, threads: $threads, peak_rss_kb: $rss,
          clk_tck: $hz}' "$work/steady.json" >"$out/steady.json"
