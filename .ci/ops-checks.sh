#!/usr/bin/env bash
# Checks the operational artifacts: systemd unit, Prometheus rules and configs, Alertmanager config,
# Grafana dashboards. Installs what it needs (idempotent), runs every check, prints each failure and
# exits non-zero if any failed.
#
# Usage: .ci/ops-checks.sh [STEP...]   STEP: systemd prometheus alertmanager dashboards (default: all)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
FAILED=()

# Background servers record their PIDs here (also from subshells); cleanup stops exactly those.
cleanup() {
    local pid
    if [ -f "$WORK/pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null; done <"$WORK/pids"
        sleep 0.5
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    FAILED+=("$*")
}

# check NAME CMD...: runs CMD, shows its output, records NAME as failed on a non-zero exit.
check() {
    local name=$1
    shift
    say "$name"
    if ! "$@"; then fail "$name"; fi
}

# ---------------------------------------------------------------------------------------------
# tools

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq || return 1
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# need CMD PACKAGE: installs PACKAGE with apt-get when CMD is missing.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (for $1)"
    apt_install "$2" && command -v "$1" >/dev/null 2>&1 || {
        fail "could not install $2 (for $1)"
        return 1
    }
}

need_python_module() {
    python3 -c "import $1" 2>/dev/null && return 0
    say "installing python module $1"
    python3 -m pip install --quiet "$1" || {
        fail "could not install python module $1"
        return 1
    }
}

# ---------------------------------------------------------------------------------------------
# systemd

# Points ExecStart at a binary that exists: `verify` rejects a unit whose ExecStart is not installed.
unit_copy_dir() {
    local dir=$WORK/unit bin
    mkdir -p "$dir"
    for bin in "$ROOT/target/release/m365-posture" "$ROOT/target/debug/m365-posture" /bin/true; do
        [ -x "$bin" ] && break
    done
    say "verifying with ExecStart=$bin (the unit says /usr/bin/m365-posture)" >&2
    sed "s|^ExecStart=/usr/bin/m365-posture |ExecStart=$bin |" \
        "$ROOT/systemd/m365-posture.service" >"$dir/m365-posture.service"
    if ! grep -q "^ExecStart=$bin run --config /etc/m365-posture/config.toml$" "$dir/m365-posture.service"; then
        echo "ExecStart line not as expected in systemd/m365-posture.service" >&2
        return 1
    fi
    echo "$dir"
}

# systemd-analyze verify exits 0 on unknown keys and bad values: any output is a failure.
verify_quiet() {
    local out
    out=$(cd "$1" && systemd-analyze verify --man=no ./m365-posture.service 2>&1)
    local rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        printf '%s\n' "$out"
        echo "systemd-analyze verify: rc=$rc, output above must be empty"
        return 1
    fi
    echo "verify: clean"
}

systemd_verify() {
    local dir dropin
    dir=$(unit_copy_dir) || return 1
    verify_quiet "$dir" || return 1
    for dropin in "$ROOT"/systemd/dropins/*.conf; do
        [ -e "$dropin" ] || continue
        echo "with drop-in $(basename "$dropin"):"
        rm -rf "$dir/m365-posture.service.d"
        mkdir -p "$dir/m365-posture.service.d"
        cp "$dropin" "$dir/m365-posture.service.d/"
        verify_quiet "$dir" || return 1
    done
    rm -rf "$dir/m365-posture.service.d"
}

systemd_security() {
    local dir out score
    dir=$(unit_copy_dir) || return 1
    out=$(cd "$dir" && systemd-analyze security --offline=true --threshold=20 ./m365-posture.service 2>&1)
    local rc=$?
    score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    printf '%s\n' "$out" | grep -E '^✗|Overall exposure'
    if [ -z "$score" ]; then
        echo "no exposure score in systemd-analyze security output (rc=$rc):"
        printf '%s\n' "$out"
        return 1
    fi
    if ! awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
        echo "exposure $score is above 2.0"
        return 1
    fi
    if [ $rc -ne 0 ]; then
        echo "systemd-analyze security --threshold=20 exited $rc"
        return 1
    fi
    echo "exposure $score <= 2.0"
}

step_systemd() {
    need systemd-analyze systemd || return
    check "systemd-analyze verify (unit and drop-ins)" systemd_verify
    check "systemd-analyze security --offline=true <= 2.0" systemd_security
}

# ---------------------------------------------------------------------------------------------
# Prometheus rules and config, Alertmanager config

PROM_DIR=$ROOT/config/prometheus
AM_CONFIG=$ROOT/config/alertmanager/alertmanager.yml

# Where each alert must land: NAME=RECEIVER, or SEVERITY=RECEIVER for the rest.
expected_receiver() {
    case "$1/$2" in
    M365PostureNewHighSeverityFinding/*) echo security-pager ;;
    M365PostureHighSeverityFindingOpen/*) echo security ;;
    */critical) echo ops-pager ;;
    *) echo ops ;;
    esac
}

alert_routes() {
    local name severity want labels rc=0
    while read -r name severity; do
        want=$(expected_receiver "$name" "$severity")
        labels=(alertname="$name" severity="$severity" tenant=contoso job=m365-posture instance=host:9365)
        if amtool config routes test --config.file="$AM_CONFIG" --verify.receivers="$want" "${labels[@]}" \
            >"$WORK/route.out" 2>&1; then
            echo "$name ($severity) -> $want"
        else
            echo "$name ($severity): expected receiver $want, got: $(grep -v Warning "$WORK/route.out" | tr '\n' ' ')"
            rc=1
        fi
    done < <(python3 "$ROOT/.ci/ops/alerts_meta.py" labels "$PROM_DIR/alerts.yml")
    return $rc
}

step_prometheus() {
    need promtool prometheus && need_python_module yaml || return
    check "promtool check rules alerts.yml" promtool check rules "$PROM_DIR/alerts.yml"
    check "promtool test rules alerts_test.yml" bash -c 'cd "$1" && promtool test rules alerts_test.yml' _ "$PROM_DIR"
    check "every alert has a firing and a non-firing test case" \
        python3 "$ROOT/.ci/ops/alerts_meta.py" coverage "$PROM_DIR/alerts.yml" "$PROM_DIR/alerts_test.yml"
    # The example names the packaged rule file; check it with the repository's copy in its place.
    sed "s#/usr/share/m365-posture/prometheus/alerts.yml#$PROM_DIR/alerts.yml#" \
        "$PROM_DIR/prometheus.yml" >"$WORK/prometheus.yml"
    grep -q "^  - $PROM_DIR/alerts.yml\$" "$WORK/prometheus.yml" ||
        fail "prometheus.yml does not load /usr/share/m365-posture/prometheus/alerts.yml"
    check "promtool check config prometheus.yml" promtool check config "$WORK/prometheus.yml"
}

step_alertmanager() {
    need amtool prometheus-alertmanager && need_python_module yaml || return
    check "amtool check-config alertmanager.yml" amtool check-config "$AM_CONFIG"
    check "amtool: every alert routes to its receiver" alert_routes
}

# ---------------------------------------------------------------------------------------------
# dashboards

NPM_DIR=${OPS_NPM_DIR:-$ROOT/target/ops-npm}
NPM_PACKAGES=(@grafana/schema@13.2.3 ts-json-schema-generator@2.4.0)  # the generator brings its own typescript 5
DASHBOARDS=("$ROOT"/dashboards/m365-posture-*.json)
DASHTOOL=$ROOT/.ci/ops/dashboards.py

# JSON Schema of the classic dashboard model, generated from @grafana/schema's TypeScript types.
dashboard_schema() {
    local types=$NPM_DIR/node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts
    if [ ! -f "$NPM_DIR/.installed-$(printf '%s' "${NPM_PACKAGES[*]}" | md5sum | cut -c1-12)" ]; then
        mkdir -p "$NPM_DIR"
        (cd "$NPM_DIR" && npm install --no-save --no-audit --no-fund --loglevel=error --prefix . \
            "${NPM_PACKAGES[@]}") || return 1
        touch "$NPM_DIR/.installed-$(printf '%s' "${NPM_PACKAGES[*]}" | md5sum | cut -c1-12)"
    fi
    (cd "$NPM_DIR" && ./node_modules/.bin/ts-json-schema-generator --path "$types" --type Dashboard \
        --no-type-check -o "$WORK/dashboard.schema.json") || return 1
    python3 "$DASHTOOL" schema "$WORK/dashboard.schema.json" "${DASHBOARDS[@]}"
}

dashboard_promql() {
    python3 "$DASHTOOL" rules "${DASHBOARDS[@]}" >"$WORK/dashboard-rules.yml" || return 1
    promtool check rules "$WORK/dashboard-rules.yml"
}

provisioning_example() {
    python3 - "$ROOT/dashboards/provisioning" <<'PY'
import sys, yaml
d = sys.argv[1]
prov = yaml.safe_load(open(f"{d}/dashboards.yaml"))
ds = yaml.safe_load(open(f"{d}/datasource.yaml"))
p = prov["providers"][0]
assert prov["apiVersion"] == 1 and p["type"] == "file", "dashboards.yaml: apiVersion 1, type file"
assert p["options"]["path"] == "/usr/share/m365-posture/dashboards", "dashboards.yaml: path must match the package"
assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus", "datasource.yaml: prometheus"
print("provisioning examples: OK")
PY
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a loopback Prometheus scraping the fixture exposition; echoes its URL once it has data.
start_fixture_prometheus() {
    local fport pport i
    fport=$(free_port) && pport=$(free_port) || return 1
    mkdir -p "$WORK/fixture" "$WORK/tsdb"
    cp "$ROOT/.ci/ops/fixture-metrics.prom" "$WORK/fixture/metrics"
    python3 -m http.server "$fport" --bind 127.0.0.1 --directory "$WORK/fixture" >"$WORK/http.log" 2>&1 &
    echo $! >>"$WORK/pids"
    cat >"$WORK/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$ROOT/config/prometheus/alerts.yml"]
scrape_configs:
  - job_name: m365-posture
    static_configs: [{targets: ["127.0.0.1:$fport"]}]
YML
    prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
        --web.listen-address="127.0.0.1:$pport" >"$WORK/prometheus.log" 2>&1 &
    echo $! >>"$WORK/pids"
    for i in $(seq 60); do
        if curl -fsS "http://127.0.0.1:$pport/api/v1/query?query=count_over_time(up%5B1m%5D)%3E%3D5" 2>/dev/null |
            grep -q '"value"'; then
            echo "http://127.0.0.1:$pport"
            return 0
        fi
        sleep 0.5
    done
    echo "fixture Prometheus did not come up; log:" >&2
    tail -20 "$WORK/prometheus.log" >&2
    return 1
}

# Self-test of .ci/dashboards-live.sh on the fixture exposition (the demo run is wired by the lead).
dashboards_live_fixture() {
    promtool check metrics <"$ROOT/.ci/ops/fixture-metrics.prom" || return 1
    local url
    url=$(start_fixture_prometheus) || return 1
    "$ROOT/.ci/dashboards-live.sh" "$url" --rate-interval 1m --range 1h --window 60 || return 1
    echo "alert rules evaluated by the same Prometheus:"
    curl -fsS "$url/api/v1/rules" | python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
bad = [r for r in rules if r.get("health") != "ok"]
for r in rules:
    print("  %s: %s %s" % (r.get("health"), r["name"], r.get("lastError", "")))
sys.exit(1 if bad or not rules else 0)'
}

step_dashboards() {
    need python3 python3 && need npm npm && need promtool prometheus && need curl curl || return
    need_python_module jsonschema && need_python_module yaml || return
    check "dashboards are up to date with dashboards/build.py" python3 "$ROOT/dashboards/build.py" --check
    check "dashboards: JSON schema from @grafana/schema" dashboard_schema
    check "dashboards: lint (datasource/job/tenant variables, units, rate intervals, uids)" \
        python3 "$DASHTOOL" lint "${DASHBOARDS[@]}"
    check "dashboards: promtool parses every query" dashboard_promql
    check "dashboards: provisioning examples" provisioning_example
    check "dashboards: every query returns data, alert rules evaluate, on a Prometheus scraping the fixture" \
        dashboards_live_fixture
}

# ---------------------------------------------------------------------------------------------

main() {
    local steps=("$@") step
    [ ${#steps[@]} -gt 0 ] || steps=(systemd prometheus alertmanager dashboards)
    for step in "${steps[@]}"; do
        case $step in
        systemd) step_systemd ;;
        prometheus) step_prometheus ;;
        alertmanager) step_alertmanager ;;
        dashboards) step_dashboards ;;
        *) fail "unknown step $step" ;;
        esac
    done
    echo
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo "ops-checks: ${#FAILED[@]} failed:"
        printf '  - %s\n' "${FAILED[@]}"
        exit 1
    fi
    echo "ops-checks: all passed (${steps[*]})"
}

main "$@"
