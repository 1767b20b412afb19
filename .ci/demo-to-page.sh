#!/usr/bin/env bash
# Follows README "From the demo to a page" word for word: runs the README's own code blocks
# (marked <!-- ci:demo-to-page:demo|stack|check -->), so the README cannot drift from what works.
# The demo runs as in the first terminal, the Prometheus/Alertmanager/webhook block as in the
# second; then the check block must show the demo's high-severity alert in Alertmanager and at
# the pager webhook within 5 minutes. Needs prometheus, prometheus-alertmanager, curl, python3.
#
# Usage: .ci/demo-to-page.sh   (from anywhere; uses fixed loopback ports 9365, 9390, 9393, 5001)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
WORK=$(mktemp -d)
GROUPS_STARTED=()
cleanup() {
    for pgid in "${GROUPS_STARTED[@]}"; do kill -- "-$pgid" 2>/dev/null || true; done
    sleep 1
    for pgid in "${GROUPS_STARTED[@]}"; do kill -9 -- "-$pgid" 2>/dev/null || true; done
    rm -rf "$WORK" /tmp/m365-page
}
trap cleanup EXIT

# block NAME: the shell code block right after <!-- ci:demo-to-page:NAME --> in README.md.
block() {
    awk -v marker="<!-- ci:demo-to-page:$1 -->" '
        $0 == marker { found = 1; next }
        found && /^```sh$/ { inside = 1; next }
        inside && /^```$/ { exit }
        inside { print }
    ' README.md
}

for name in demo stack check; do
    block "$name" >"$WORK/$name.sh"
    [ -s "$WORK/$name.sh" ] || { echo "demo-to-page: README has no '$name' block"; exit 1; }
done
for tool in prometheus prometheus-alertmanager curl python3; do
    command -v "$tool" >/dev/null || { echo "demo-to-page: $tool is not installed"; exit 1; }
done

# Each terminal is its own process group, so everything it started stops with it.
echo "== terminal 1: $(cat "$WORK/demo.sh")"
setsid bash "$WORK/demo.sh" >"$WORK/demo.out" 2>"$WORK/demo.err" &
GROUPS_STARTED+=($!)
for _ in $(seq 1 600); do
    curl -fsS http://127.0.0.1:9365/metrics >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS http://127.0.0.1:9365/metrics >/dev/null || {
    echo "demo-to-page: the demo did not serve /metrics"; tail -20 "$WORK/demo.err"; exit 1
}
echo "== terminal 2:"
cat "$WORK/stack.sh"
setsid bash -c 'bash "$1"; wait' _ "$WORK/stack.sh" >"$WORK/stack.out" 2>&1 &
GROUPS_STARTED+=($!)

echo "== waiting for the page (up to 5 minutes)"
for _ in $(seq 1 60); do
    sleep 5
    if bash "$WORK/check.sh" >"$WORK/check.out" 2>&1 &&
        grep -q '"alertname":"M365PostureNewHighSeverityFinding"' "$WORK/check.out" &&
        grep -q 'security-pager firing M365PostureNewHighSeverityFinding .*severity=critical tenant=demo' "$WORK/check.out"; then
        cat "$WORK/check.out"
        echo "demo-to-page: ok (the alert reached Alertmanager and the pager webhook)"
        exit 0
    fi
done
echo "demo-to-page: no page within 5 minutes; check output:"
cat "$WORK/check.out"
for log in /tmp/m365-page/prometheus.log /tmp/m365-page/alertmanager.log; do
    echo "---- $log"; tail -15 "$log" 2>/dev/null
done
echo "---- demo stderr"; tail -15 "$WORK/demo.err"
exit 1
