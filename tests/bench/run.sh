#!/usr/bin/env bash
# `make bench`: every benchmark in turn against the optimised build, then one table and
# $BENCH_OUT/results.json (default build/bench). Figures only: targets print PASS or MISS and
# never fail the run (a benchmark that cannot run does).
#   BENCH_PATIENTS (20000)            scenarios 1, 3, 5, 6 and the ingestion benchmark
#   BENCH_THROTTLE_PATIENTS (= BENCH_PATIENTS), BENCH_THROTTLE_MS (10): scenario 2 runs the
#     Read-All tier (pages of 100, 5 s per request) at BENCH_THROTTLE_MS per request, i.e.
#     scaled down by 5000 / BENCH_THROTTLE_MS (10 ms: factor 500)
#   BENCH_STEADY_S (60), BENCH_STEADY_RATE (1000 per minute)       scenario 3
#   BENCH_BATCHES (200)                                             scenario 4
#   BENCH_OFFICES (100), BENCH_OFFICE_PATIENTS (2000)               scenario 7
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR}
out=${BENCH_OUT:-$build/bench}
export BENCH_OUT=$out
patients=${BENCH_PATIENTS:-20000}
throttle_ms=${BENCH_THROTTLE_MS:-10}
mkdir -p "$out"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$out"/{crm,naive,naive_unlimited,throttled,steady,events,scale,ingest,results}.json
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

echo "== 1, 5, 6: full sync into HubSpot, unchanged re-sync, the naive reference ($patients patients)"
BENCH_PATIENTS=$patients BENCH_MODE=local BENCH_THROTTLE_MS=0 "$here/crm.sh" "$build"
echo "== 2: the same under the Read-All throttle, scaled to $throttle_ms ms per request"
BENCH_PATIENTS=${BENCH_THROTTLE_PATIENTS:-$patients} BENCH_MODE=remote \
    BENCH_THROTTLE_MS=$throttle_ms BENCH_TAG=throttled BENCH_NAIVE=0 BENCH_PHASES=0 \
    "$here/crm.sh" "$build"
echo "== 3: steady state, ${BENCH_STEADY_RATE:-1000} changes per minute as API Events for ${BENCH_STEADY_S:-60} s"
BENCH_PATIENTS=$patients "$here/steady.sh" "$build"
echo "== 4: API Events intake"
"$here/events.sh" "$build" | sed 's/^/   /'
echo "== ingestion alone (canonical model, no sink)"
BENCH_PATIENTS=$patients BENCH_MODE=local BENCH_THROTTLE_MS=0 "$here/ingest.sh" "$build" >/dev/null
echo "== 7: scale, ${BENCH_OFFICES:-100} offices x ${BENCH_OFFICE_PATIENTS:-2000} patients in one process"
"$here/scale.sh" "$build"

machine=$(jq -n --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
    --argjson nproc "$(nproc)" \
    --argjson ram "$(awk '/^MemTotal:/ {printf "%d", $2 / 1024}' /proc/meminfo)" \
    --arg kernel "$(uname -r)" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg l0 "$load_start" --arg l1 "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{nproc: $nproc, model_name: $cpu, ram_mb: $ram, kernel: $kernel, date: $date,
      loadavg_at_start: $l0, loadavg_at_end: $l1}')
jq -n --argjson machine "$machine" --argjson factor "$((5000 / throttle_ms))" \
    --slurpfile crm "$out/crm.json" --slurpfile naive "$out/naive.json" \
    --slurpfile free "$out/naive_unlimited.json" \
    --slurpfile thr "$out/throttled.json" --slurpfile steady "$out/steady.json" \
    --slurpfile events "$out/events.json" --slurpfile scale "$out/scale.json" \
    --slurpfile ingest "$out/ingest.json" '
  ($crm[0]) as $c | ($naive[0]) as $n | ($free[0]) as $f | ($thr[0]) as $t |
  def verdict(ok): if ok then "PASS" else "MISS" end;
  {machine: $machine,
   full_sync: $c,
   throttled: ($t + {scale_factor: $factor,
                     projected_real_s_from_requests: ($t.od_requests * 5),
                     projected_real_s_from_measured: ($t.seconds * $factor)}),
   steady: $steady[0], events: $events[0],
   resync: $c.resync,
   naive: ($n + {odsync_throughput_ratio: ($c.records_per_s / $n.records_per_s),
                 odsync_time_ratio: ($n.seconds / $c.seconds),
                 crm_requests_ratio: ($n.crm_requests / $c.crm_requests),
                 projected_real_s: ($n.seconds * $n.hubspot_limit_scale)}),
   naive_unlimited: ($f + {odsync_throughput_ratio: ($c.records_per_s / $f.records_per_s),
                           odsync_time_ratio: ($f.seconds / $c.seconds)}),
   scale: $scale[0], ingest: $ingest[0],
   targets: {
     od_records_per_s_ge_20000: verdict($c.od_records_per_s >= 20000),
     crm_records_per_s_ge_20000: verdict($c.records_per_s >= 20000),
     patients_per_s_ge_20000: verdict($c.patients_per_s >= 20000),
     peak_rss_le_64mb: verdict($c.peak_rss_kb <= 65536),
     od_requests_le_1_05_bound: verdict($c.od_requests <= 1.05 * $c.od_lower_bound and
                                        $t.od_requests <= 1.05 * $t.od_lower_bound),
     crm_requests_le_1_05_bound: verdict($c.crm_requests <= 1.05 * $c.crm_lower_bound),
     resync_zero_crm_requests: verdict($c.resync.crm_requests == 0),
     ten_times_naive: verdict($c.records_per_s >= 10 * $n.records_per_s),
     ten_times_naive_unlimited: verdict($c.records_per_s >= 10 * $f.records_per_s)}}' \
    >"$out/results.json"

r() { jq -r "$1" "$out/results.json"; }
row() { printf '%-46s %-44s %s\n' "$1" "$2" "${3:-}"; }
echo
echo "== results ($(r '.machine | "\(.nproc) x \(.model_name), \(.ram_mb) MB RAM, load \(.loadavg_at_start) at start"')); JSON: $out/results.json"
row "scenario / figure" "measured" "target"
row "1. full sync, $(r .full_sync.patients) patients, Local API" \
    "$(r '.full_sync | "\(.seconds | .*100|round/100) s, one odsync run --until-idle"')"
row "   the same as sync + deliver-only" \
    "$(r '.full_sync.phases | "\(.seconds | .*100|round/100) s (sync \(.sync_seconds | .*100|round/100) + deliver \(.deliver_seconds | .*100|round/100))"')"
row "   Open Dental records read, modelled, delivered" "$(r '.full_sync | "\(.od_rows): \(.od_records_per_s | round)/s"')" \
    ">= 20000  $(r .targets.od_records_per_s_ge_20000)"
row "   CRM records (contacts + tasks)" "$(r '.full_sync | "\(.records) (\(.contacts) + \(.tasks)): \(.records_per_s | round)/s"')" \
    ">= 20000  $(r .targets.crm_records_per_s_ge_20000)"
row "   patients" "$(r '.full_sync | "\(.patients): \(.patients_per_s | round)/s"')" \
    ">= 20000  $(r .targets.patients_per_s_ge_20000)"
row "   peak RSS (run / sync / deliver)" "$(r '.full_sync | "\(.peak_rss_kb / 1024 | .*10|round/10) / \(.peak_rss_sync_kb / 1024 | .*10|round/10) / \(.peak_rss_deliver_kb / 1024 | .*10|round/10) MB"')" \
    "<= 64 MB  $(r .targets.peak_rss_le_64mb)"
row "   Open Dental requests / lower bound" "$(r '.full_sync | "\(.od_requests) / \(.od_lower_bound) (\(.od_requests / .od_lower_bound | .*1000|round/1000)x)"')" \
    "<= 1.05x  $(r .targets.od_requests_le_1_05_bound)"
row "   CRM requests / ceil(records/100)" "$(r '.full_sync | "\(.crm_requests) / \(.crm_lower_bound) (\(.crm_requests / .crm_lower_bound | .*1000|round/1000)x), +\(.crm_setup_requests) property set-up"')" \
    "<= 1.05x  $(r .targets.crm_requests_le_1_05_bound)"
row "2. Read-All throttle, scaled x$(r .throttled.scale_factor)" \
    "$(r '.throttled | "\(.patients) patients, \(.seconds | .*100|round/100) s at \(.pacing_ms) ms/request"')"
row "   Open Dental requests / lower bound" "$(r '.throttled | "\(.od_requests) / \(.od_lower_bound) (\(.od_requests / .od_lower_bound | .*1000|round/1000)x), \(.throttle_violations) violations"')" \
    "<= 1.05x"
row "   projected real duration" "$(r '.throttled | "\(.projected_real_s_from_requests / 60 | .*10|round/10) min (requests x 5 s), \(.projected_real_s_from_measured / 60 | .*10|round/10) min (measured x factor)"')"
row "3. steady state, API Events -> HubSpot" "$(r '.steady | "\(.changes) changes at \(.rate_per_min)/min, \(.delivered) seen in the CRM"')"
row "   event -> CRM latency" "$(r '.steady | "p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, max \(.max_ms) ms"')"
row "   odsync CPU over the window" "$(r '.steady | "\(.cpu_percent | .*10|round/10) % of one core, \(.threads) threads, \(.peak_rss_kb / 1024 | .*10|round/10) MB"')"
row "4. webhook ingest, 1000-row batches" "$(r '.events | "\(.acks_per_s | round) acks/s, ack p50 \(.ack_p50_ms) ms, p99 \(.ack_p99_ms) ms"')"
row "   intake (2 posters)" "$(r '.events | "\(.intake_rows_per_s) rows/s; applied \(.inbox_applied_after_s) s after the burst"')"
row "   event -> canonical store" "$(r '.events | "p50 \(.event_to_store_p50_ms) ms, p99 \(.event_to_store_p99_ms) ms"')"
row "5. unchanged re-sync" "$(r '.resync | "\(.crm_requests) CRM requests, \(.od_requests) Open Dental requests, \(.seconds | .*100|round/100) s"')" \
    "0 CRM     $(r .targets.resync_zero_crm_requests)"
row "6. naive script (1 request per record)" "$(r '.naive | "\(.seconds) s, \(.records) records, \(.records_per_s | round)/s"')"
row "   against the same HubSpot limit (190/10 s)" "$(r '.naive | "window scaled x\(.hubspot_limit_scale): \(.crm_rate_limited) 429s; real: \(.projected_real_s / 60 | .*10|round/10) min"')"
row "   its requests (Open Dental / CRM)" "$(r '.naive | "\(.od_requests) / \(.crm_requests)"')"
row "   odsync throughput / naive" "$(r '.naive | "\(.odsync_throughput_ratio | .*10|round/10)x records/s, \(.odsync_time_ratio | .*10|round/10)x wall time; CRM requests naive/odsync \(.crm_requests_ratio | round)x"')" \
    ">= 10x    $(r .targets.ten_times_naive)"
row "   naive with no CRM limit (loopback only)" "$(r '.naive_unlimited | "\(.seconds) s, \(.records_per_s | round) records/s: odsync \(.odsync_throughput_ratio | .*100|round/100)x records/s, \(.odsync_time_ratio | .*100|round/100)x wall time"')" \
    ">= 10x    $(r .targets.ten_times_naive_unlimited)"
row "7. scale: $(r '.scale | "\(.offices) offices x \(.patients_per_office)"')" \
    "$(r '.scale | "\(.seconds | .*10|round/10) s, \(.records_in_crm) records in the CRM"')"
row "   offices with every patient ingested" "$(r '.scale | "\(.offices_complete) of \(.offices); states \(.office_states | tostring)"')"
row "   peak RSS / threads" "$(r '.scale | "\(.peak_rss_kb / 1024 | .*10|round/10) MB / \(.max_threads)"')"
row "   ingestion done (min / median / max)" "$(r '.scale.ingest_done | "\(.min_s) / \(.median_s) / \(.max_s) s"')"
row "   delivery done (min / median / max)" "$(r '.scale.deliver_done | "\(.min_s) / \(.median_s) / \(.max_s) s"')"
row "ingestion alone (no sink)" "$(r '.ingest | "\(.rows) rows, \(.seconds | .*100|round/100) s, \(.peak_rss_kb / 1024 | .*10|round/10) MB"')"
