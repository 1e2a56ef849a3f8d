#!/usr/bin/env bash
# The third-party story, end to end: install the SDK into a temporary prefix, build
# contrib/plugin-template out of tree against that SDK alone, and have the daemon load it
# from a configured plugin directory and deliver records through it.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${ODSYNC_BUILD:-$src/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; echo "template: $pass passed, 1 failed"; exit 1; }

make -s -C "$src" install-sdk PREFIX="$work/prefix" >/dev/null
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
cp -r "$src/contrib/plugin-template" "$work/tpl"
rm -f "$work/tpl"/*.so
[ "$(grep -cv '^[[:space:]]*$' "$work/tpl/Makefile" | tr -d ' ')" -le 3 ] || fail "template Makefile is more than three lines"
# Build with no access to the source tree's headers: only the installed SDK.
make -s -C "$work/tpl" >/dev/null || fail "template build against the installed SDK"
[ -f "$work/tpl/jsonl.so" ] || fail "jsonl.so not built"
ok "template builds out of tree against the installed SDK"

if nm -D --undefined-only "$work/tpl/jsonl.so" | grep -q 'odsync_\|store_\|host_'; then
  fail "jsonl.so references host symbols"
fi
ok "jsonl.so needs only libc"

out=$("$build/odsync" plugins describe "$work/tpl/jsonl.so") || fail "describe jsonl.so"
grep -q '^name: *jsonl$' <<<"$out" || fail "describe output: $out"
ok "odsync plugins describe loads the installed-SDK plugin"

export OD_DEV=template-dev-key OD_CUST=template-customer-key
cat >"$work/odsync.json" <<JSON
{
  "store": "$work/odsync.db",
  "plugin_dirs": ["$work/tpl"],
  "sinks": { "file": { "plugin": "jsonl", "path": "$work/out.jsonl" } },
  "offices": [{
    "id": "main-st", "name": "Main Street Dental", "timezone": "America/Chicago",
    "opendental": { "base_url": "http://127.0.0.1:9/api/v1",
                    "developer_key": "\${OD_DEV}", "customer_key": "\${OD_CUST}" },
    "routes": { "contact": ["file"], "task": ["file"] }
  }]
}
JSON
cat >"$work/records.json" <<'JSON'
[
  {"kind": "contact", "office": "main-st", "patnum": 1042, "first_name": "Avery", "last_name": "Quill"},
  {"kind": "contact", "office": "main-st", "patnum": 1043, "first_name": "Blair", "last_name": "Quill"},
  {"kind": "task", "office": "main-st", "recall_num": 77, "patnum": 1042, "subject": "Recall due", "status": "open"}
]
JSON
"$build/odsync" check-config --config "$work/odsync.json" >/dev/null || fail "check-config"
"$build/odsync" import "$work/records.json" --config "$work/odsync.json" >/dev/null || fail "import"
"$build/odsync" run --once --config "$work/odsync.json" 2>/dev/null || fail "run --once"
[ "$(wc -l <"$work/out.jsonl")" -eq 3 ] || fail "expected 3 lines in out.jsonl"
grep -q '"key":"od:main-st:recall:77"' "$work/out.jsonl" || fail "task key missing"
ok "the daemon loads the template from plugin_dirs and delivers 3 records"

"$build/odsync" import "$work/records.json" --config "$work/odsync.json" >/dev/null
"$build/odsync" run --once --config "$work/odsync.json" 2>/dev/null
[ "$(wc -l <"$work/out.jsonl")" -eq 3 ] || fail "unchanged re-import delivered again"
ok "an unchanged re-import delivers nothing"
echo "template: $pass passed, 0 failed"
