#!/usr/bin/env bash
# shellcheck disable=SC2154 # PORT_*, PID_* are set by start_server (lib.sh)
# Scale: BENCH_OFFICES offices of BENCH_OFFICE_PATIENTS patients each, all in one
# `odsync run --until-idle` (one ingester per office, one HubSpot worker), served by as many
# odsim processes as needed (odsim serves up to 64 offices; 50 per process here, each office
# with its own customer key so no two offices share a pacer). Reports wall time, peak RSS and
# the largest thread count (sampled from /proc every 100 ms), and fairness: each office's
# completion time (ingestion: its last checkpoint's completed_at; delivery: its last outbox
# row's updated_at) after the start, min / median / max. Writes $out/scale.json.
# The daemon's log is kept in $out/scale.log.
#   BENCH_OFFICES (100), BENCH_OFFICE_PATIENTS (2000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$(pwd)/build}
out=${BENCH_OUT:-$build/bench}
offices=${BENCH_OFFICES:-100}
patients=${BENCH_OFFICE_PATIENTS:-2000}
per_sim=50
work=$(mktemp -d)
mkdir -p "$out"
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
trap bench_cleanup EXIT

start_hubspot hs
office_list=""
sims=$(((offices + per_sim - 1) / per_sim))
for s in $(seq "$sims"); do
    first=$(((s - 1) * per_sim + 1))
    last=$((s * per_sim < offices ? s * per_sim : offices))
    keys=()
    for i in $(seq "$first" "$last"); do
        key=$(printf 'BenchScaleKey%03d' "$i")
        export "BENCH_CUST_$i=$key"
        keys+=(--customer-key "$key")
    done
    start_server "sim$s" "$build/contrib/odsim/odsim" --listen 127.0.0.1:0 --mode local \
        --patients "$patients" --offices $((last - first + 1)) --seed "$s" \
        --clock "2026-11-27 09:00:00" "${keys[@]}"
    port_var="PORT_sim$s"
    for i in $(seq "$first" "$last"); do
        o=$(printf 'o%03d' "$i")
        office_list+="${office_list:+,}$(office_json "$o" "${!port_var}" local 0 "BENCH_CUST_$i")"
    done
done
write_config "$work/odsync.json" "[$office_list]" "$(hs_sink "$PORT_hs")"

start_ms=$(date +%s%3N)
"$build/odsync" run --until-idle --config "$work/odsync.json" >"$work/run.out" 2>"$work/run.log" &
pid=$!
BENCH_PIDS+=("$pid")
threads=0
rss_kb=0
while kill -0 "$pid" 2>/dev/null; do
    if st=$(cat "/proc/$pid/status" 2>/dev/null); then
        t=$(awk '/^Threads:/ {print $2}' <<<"$st")
        r=$(awk '/^VmHWM:/ {print $2}' <<<"$st")
        if [ -n "$t" ] && [ "$t" -gt "$threads" ]; then threads=$t; fi
        if [ -n "$r" ] && [ "$r" -gt "$rss_kb" ]; then rss_kb=$r; fi
    fi
    sleep 0.1
done
wait "$pid" || { echo "bench: odsync run failed" >&2; cat "$work/run.log" >&2; exit 1; }
end_ms=$(date +%s%3N)
cp "$work/run.log" "$out/scale.log"

contacts=$(sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM records WHERE kind = 1")
tasks=$(sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM records WHERE kind = 2")
hs_total=$(($(hs_objects "$PORT_hs" contacts) + $(hs_objects "$PORT_hs" tasks)))
# offices by Open Dental state (ok, or why their pass stopped), offices with every patient
states=$(sqlite3 "$work/odsync.db" "SELECT json_group_object(state, n) FROM
    (SELECT state, COUNT(*) AS n FROM od_office_state GROUP BY state)")
complete=$(sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM
    (SELECT office FROM od_patients GROUP BY office HAVING COUNT(*) = $patients)")
# per office: seconds from the start to its ingestion and its delivery completing
sqlite3 -separator ' ' "$work/odsync.db" \
    "SELECT office, (MAX(completed_at) - $start_ms) / 1000.0 FROM od_checkpoints
     GROUP BY office ORDER BY 2" >"$work/ingest_done"
sqlite3 -separator ' ' "$work/odsync.db" \
    "SELECT office, (MAX(updated_at) - $start_ms) / 1000.0 FROM outbox WHERE state = 'done'
     GROUP BY office ORDER BY 2" >"$work/deliver_done"
spread() { # FILE -> {"n","min","median","max"}
    awk '{v[NR] = $2} END {printf "{\"offices\": %d, \"min_s\": %.2f, \"median_s\": %.2f, \"max_s\": %.2f}",
         NR, v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR]}' "$1"
}
cat >"$out/scale.json" <<JSON
{"offices": $offices, "patients_per_office": $patients, "patients": $((offices * patients)),
 "seconds": $(calc "($end_ms - $start_ms) / 1000"), "contacts": $contacts, "tasks": $tasks,
 "records_in_crm": $hs_total, "office_states": ${states:-{\}}, "offices_complete": $complete, "peak_rss_kb": $rss_kb, "max_threads": $threads,
 "ingest_done": $(spread "$work/ingest_done"), "deliver_done": $(spread "$work/deliver_done")}
JSON
