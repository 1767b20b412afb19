#!/usr/bin/env bash
# Runs every query of every dashboard (and each template variable's label_values()) against a real
# Prometheus through its HTTP API, the way Grafana would, and fails if any returns no data.
#
# Usage: .ci/dashboards-live.sh PROM_URL [--allow-empty 'PANEL TITLE']... [--rate-interval 1m] [--range 1h] [--window SECONDS]
#   PROM_URL         e.g. http://127.0.0.1:9090, a Prometheus that has scraped the daemon (`m365-posture demo`)
#                    for at least a few scrape intervals (rate() needs two samples).
#   --allow-empty    a panel whose queries may legitimately return nothing in this setup (repeatable)
#   --rate-interval  value for $__rate_interval (default 1m: at least 4 scrape intervals)
#   --range          value for $__range (default 1h); $__interval is the panel's interval or --rate-interval
#   --window         seconds of history for range (time-series) queries (default 600)
# Variables: $job is the first value of its label_values() query; $tenant is All (".+").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -lt 1 ] || [[ $1 == -* ]]; then
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 64
fi
prom=$1
shift
exec python3 "$ROOT/.ci/ops/dashboards.py" live "$prom" "$ROOT"/dashboards/m365-posture-*.json "$@"
