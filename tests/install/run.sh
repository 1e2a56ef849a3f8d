#!/usr/bin/env bash
# The `make install` layout, checked from a temporary DESTDIR: the binary runs, every
# first-party plugin loads from the installed plugin directory (not refused by the loader's
# permission checks), the example configs, man page and systemd unit are in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok: $1"; else fail=$((fail + 1)); echo "FAIL: $1"; fi; }

make -s install DESTDIR="$dest" PREFIX=/usr/local >/dev/null
root="$dest/usr/local"
check "the binary runs" "'$root/bin/odsync' version | grep -q '^odsync '"
listing=$("$root/bin/odsync" plugins list --plugin-dir "$root/lib/odsync/plugins" 2>&1 || true)
for p in rest hubspot salesforce twilio sendgrid; do
  check "plugin $p loads from the installed directory" "grep -Eq '^$p( |$)' <<<\"\$listing\""
done
check "no plugin refused" "! grep -qi refus <<<\"\$listing\""
check "example config and reference" "[ -f '$root/share/odsync/examples/odsync.example.json' ] && [ -f '$root/share/odsync/examples/README.md' ]"
check "man page" "grep -q '^.TH ODSYNC 1' '$root/share/man/man1/odsync.1'"
check "systemd unit points at the installed binary" "grep -q '^ExecStart=/usr/local/bin/odsync run' '$root/lib/systemd/system/odsync.service'"
check "systemd unit reloads with SIGHUP" "grep -q '^ExecReload=/bin/kill -HUP' '$root/lib/systemd/system/odsync.service'"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
