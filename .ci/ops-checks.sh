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
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
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

main() {
    local steps=("$@") step
    [ ${#steps[@]} -gt 0 ] || steps=(systemd)
    for step in "${steps[@]}"; do
        case $step in
        systemd) step_systemd ;;
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
