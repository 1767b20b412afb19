#!/usr/bin/env bash
# Runs `m365-posture demo` on loopback, has a real Prometheus scrape it (with the alert rules
# loaded), then checks what a user would look at: `promtool check metrics` on the live /metrics,
# CEF events for new and resolved findings on stdout, and every dashboard query returning data
# from that Prometheus (.ci/dashboards-live.sh). Exits non-zero on any failure.
#
# Usage: .ci/demo-live.sh [BINARY]   (default target/debug/m365-posture)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/debug/m365-posture}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    for _ in $(seq 1 120); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "error: $1 did not answer" >&2
    return 1
}
show_logs() {
    echo "---- demo stderr (last 30 lines)" >&2
    tail -n 30 "$WORK/demo.log" >&2 || true
}

DEMO_PORT=$(free_port)
PROM_PORT=$(free_port)
"$BIN" demo --listen "127.0.0.1:$DEMO_PORT" --interval 3s --users 100 >"$WORK/events.cef" 2>"$WORK/demo.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$DEMO_PORT/metrics" || { show_logs; exit 1; }

cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $ROOT/config/prometheus/alerts.yml
scrape_configs:
  - job_name: m365-posture
    static_configs:
      - targets: ["127.0.0.1:$DEMO_PORT"]
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PROM_PORT/-/ready"

# Several scans and scrapes, so rate() and increase() have samples and the tenant has changed.
sleep 40

echo "== promtool check metrics on the demo's live /metrics"
curl -fsS "http://127.0.0.1:$DEMO_PORT/metrics" | promtool check metrics

echo "== the demo printed CEF events for new and resolved findings"
grep -q '^CEF:0|m365-posture|m365-posture|[^|]*|[a-z0-9_.]*:new|' "$WORK/events.cef" || { show_logs; exit 1; }
grep -q '^CEF:0|m365-posture|m365-posture|[^|]*|[a-z0-9_.]*:resolved|' "$WORK/events.cef" || { show_logs; exit 1; }

echo "== every dashboard query returns data from the Prometheus that scraped the demo"
# The demo authenticates with a client secret, so no credential expiry is known.
"$ROOT/.ci/dashboards-live.sh" "http://127.0.0.1:$PROM_PORT" \
    --allow-empty 'Credential expires in' --rate-interval 20s --range 5m --window 120
echo "demo-live: ok"
