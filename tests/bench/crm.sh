#!/usr/bin/env bash
# shellcheck disable=SC2154 # PORT_*, PID_* are set by start_server (lib.sh)
# End-to-end full sync of one office into the HubSpot fake, the unchanged re-sync, and the
# naive reference (naive_sync) against the same odsim and a fresh fake. Writes $out/crm.json.
#   BENCH_PATIENTS (20000), BENCH_MODE local|remote (local: unthrottled Local API, pages of
#   1000), BENCH_THROTTLE_MS (remote: odsim --throttle and odsync pacing, 0), BENCH_NAIVE (1),
#   BENCH_TAG (crm: name of the JSON file and of the scenario), BENCH_HS_LIMIT_SCALE (20: the
#   HubSpot fake enforces HubSpot's burst limit, 190 requests per 10 s, over a window 20 times
#   shorter, for odsync and the naive script alike; 0: no limit). The naive script also runs
#   once against an unlimited fake, for its loopback-only speed. BENCH_PHASES (1; 0 skips the
#   two-command run).
# Timed: one `odsync run --until-idle` on an empty store, until the CRM holds every contact
# and task (checked against the fake's object counts); then, for the phases, `odsync sync`
# and `odsync run --until-idle --deliver-only` on a fresh store and a fresh fake.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$(pwd)/build}
out=${BENCH_OUT:-$build/bench}
patients=${BENCH_PATIENTS:-20000}
mode=${BENCH_MODE:-local}
throttle=${BENCH_THROTTLE_MS:-0}
tag=${BENCH_TAG:-crm}
naive=${BENCH_NAIVE:-1}
hs_scale=${BENCH_HS_LIMIT_SCALE:-20}
work=$(mktemp -d)
mkdir -p "$out"
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
trap bench_cleanup EXIT

sim_args=(--listen 127.0.0.1:0 --patients "$patients" --seed 7 --mode "$mode"
    --clock "2026-11-27 09:00:00")
if [ "$throttle" -gt 0 ]; then sim_args+=(--throttle "$throttle" --over-limit reject); fi
start_server sim "$build/contrib/odsim/odsim" "${sim_args[@]}"
start_hubspot hs "$hs_scale"
tier=$([ "$mode" = local ] && echo local || echo read_all)
page=$([ "$mode" = local ] && echo 1000 || echo 100)
write_config "$work/odsync.json" "[$(office_json bench "$PORT_sim" "$tier" "$throttle")]" \
    "$(hs_sink "$PORT_hs")"
cfg=(--config "$work/odsync.json")

# ---- full sync: one `odsync run --until-idle`, as the service runs (ingestion, projection
# and delivery overlap); then `sync` + `run --deliver-only` on a fresh store and fake, for the
# time of each phase ------------------------------------------------------------------------
t0=$(now)
/usr/bin/time -f '%M' -o "$work/rss.run" "$build/odsync" run --until-idle "${cfg[@]}" >/dev/null
t1=$(now)
total_s=$(calc "$t1 - $t0")
rss_kb=$(cat "$work/rss.run")

contacts=$(sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM records WHERE kind = 1")
tasks=$(sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM records WHERE kind = 2")
hs_contacts=$(hs_objects "$PORT_hs" contacts)
hs_tasks=$(hs_objects "$PORT_hs" tasks)
if [ "$hs_contacts" != "$contacts" ] || [ "$hs_tasks" != "$tasks" ]; then
    echo "bench: the CRM holds $hs_contacts contacts and $hs_tasks tasks, the store $contacts" \
        "and $tasks" >&2
    exit 1
fi
records=$((contacts + tasks))
crm_data=$(hs_data_requests "$PORT_hs")
crm_all=$(hs_all_requests "$PORT_hs")
crm_bound=$(((contacts + 99) / 100 + (tasks + 99) / 100))
od_full=$(od_requests "$PORT_sim")
violations=$(curl -fsS "http://127.0.0.1:$PORT_sim/_admin/stats" | jq .throttle_violations)
# Open Dental lower bound: every resource read needs ceil(rows / page) pages, at least one
# (deleted appointments: none in a fresh office, still one request).
od_bound=1
for t in od_clinics od_patients od_appointments od_procedures od_recalls; do
    n=$(sqlite3 "$work/odsync.db" "SELECT COUNT(*) FROM $t")
    b=$(((n + page - 1) / page))
    od_bound=$((od_bound + (b > 0 ? b : 1)))
done
od_rows=$(sqlite3 "$work/odsync.db" "SELECT (SELECT COUNT(*) FROM od_clinics) +
    (SELECT COUNT(*) FROM od_patients) + (SELECT COUNT(*) FROM od_appointments) +
    (SELECT COUNT(*) FROM od_procedures) + (SELECT COUNT(*) FROM od_recalls)")

# ---- unchanged re-sync -----------------------------------------------------------------
t3=$(now)
"$build/odsync" run --until-idle "${cfg[@]}" >/dev/null
resync_s=$(calc "$(now) - $t3")
resync_crm=$(($(hs_all_requests "$PORT_hs") - crm_all))
resync_od=$(($(od_requests "$PORT_sim") - od_full))

# ---- the same full sync in two commands, for the phases -------------------------------
phases=null rss_sync=0 rss_deliver=0
if [ "${BENCH_PHASES:-1}" = 1 ]; then
    start_hubspot hs_phases "$hs_scale"
    write_config "$work/phases.json" "[$(office_json bench "$PORT_sim" "$tier" "$throttle")]" \
        "$(hs_sink "$PORT_hs_phases")"
    sed -i "s|$work/odsync.db|$work/phases.db|" "$work/phases.json"
    t4=$(now)
    /usr/bin/time -f '%M' -o "$work/rss.sync" "$build/odsync" sync --config "$work/phases.json" \
        >/dev/null
    t5=$(now)
    /usr/bin/time -f '%M' -o "$work/rss.deliver" "$build/odsync" run --until-idle --deliver-only \
        --config "$work/phases.json" >/dev/null
    t6=$(now)
    sync_s=$(calc "$t5 - $t4")
    deliver_s=$(calc "$t6 - $t5")
    rss_sync=$(cat "$work/rss.sync")
    rss_deliver=$(cat "$work/rss.deliver")
    phases="{\"sync_seconds\": $sync_s, \"deliver_seconds\": $deliver_s,
       \"seconds\": $(calc "$sync_s + $deliver_s")}"
fi

cat >"$out/$tag.json" <<JSON
{"patients": $patients, "mode": "$mode", "page_size": $page, "pacing_ms": $throttle,
 "seconds": $total_s, "phases": $phases,
 "contacts": $contacts, "tasks": $tasks, "records": $records,
 "records_per_s": $(calc "$records / $total_s"), "patients_per_s": $(calc "$patients / $total_s"),
 "od_records_per_s": $(calc "$od_rows / $total_s"), "hubspot_limit_scale": $hs_scale,
 "peak_rss_kb": $rss_kb, "peak_rss_sync_kb": $rss_sync, "peak_rss_deliver_kb": $rss_deliver,
 "od_rows": $od_rows, "od_requests": $od_full, "od_lower_bound": $od_bound,
 "throttle_violations": $violations,
 "crm_requests": $crm_data, "crm_setup_requests": $((crm_all - crm_data)),
 "crm_lower_bound": $crm_bound,
 "resync": {"seconds": $resync_s, "crm_requests": $resync_crm, "od_requests": $resync_od}}
JSON

# ---- the naive reference, same odsim, a fresh fake: limited like odsync's, then unlimited ---
naive_run() { # FAKE_NAME LIMIT_SCALE OUT
    local port od_before od_naive crm_naive wait_ms=10
    [ "$2" -gt 0 ] && wait_ms=$((100 / $2 > 0 ? 100 / $2 : 1))
    start_hubspot "$1" "$2"
    port=PORT_$1
    od_before=$(od_requests "$PORT_sim")
    "$build/bench/naive_sync" "$PORT_sim" "${!port}" "$BENCH_DEV" "$BENCH_CUST" \
        "$BENCH_HS_TOKEN" "$page" "$wait_ms" >"$work/naive.json"
    od_naive=$(($(od_requests "$PORT_sim") - od_before))
    crm_naive=$(hs_all_requests "${!port}")
    jq --argjson od "$od_naive" --argjson crm "$crm_naive" --argjson scale "$2" \
        '. + {records: (.contacts + .tasks), records_per_s: ((.contacts + .tasks) / .seconds),
              patients_per_s: (.patients / .seconds), hubspot_limit_scale: $scale,
              od_requests_seen: $od, crm_requests_seen: $crm}' "$work/naive.json" >"$3"
}
if [ "$naive" = 1 ]; then
    naive_run naive_hs "$hs_scale" "$out/naive.json"
    naive_run naive_free 0 "$out/naive_unlimited.json"
fi
