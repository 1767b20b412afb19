#!/usr/bin/env bash
# Fuzz smoke test: builds the cargo-fuzz targets of fuzz/ (libFuzzer) and runs each one briefly
# from its seed corpus in fuzz/corpus/<target>. A crash fails the script and leaves the input in
# fuzz/artifacts/<target>/; copy it into fuzz/corpus/<target>/ as crash-<name> (tests/fuzz_corpus.rs
# replays every corpus file in cargo test) and fix the bug.
#
# cargo-fuzz needs nightly compiler features; on a stable toolchain RUSTC_BOOTSTRAP=1 enables
# them (set here unless the active toolchain is nightly). No sanitizer: the code is
# #![forbid(unsafe_code)], so panics, aborts, timeouts and memory blow-ups are what is looked for.
#
# Usage: .ci/fuzz-smoke.sh [SECONDS_PER_TARGET] [TARGET...]
#        (default 20 seconds, every target; FUZZ_SECONDS works too)
# New inputs go to a temporary directory, so the committed corpora stay as they are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_VERSION=0.13.2
seconds="${1:-${FUZZ_SECONDS:-20}}"
shift || true

if ! command -v c++ >/dev/null 2>&1; then
    # libfuzzer-sys compiles libFuzzer (C++).
    [ "$(id -u)" -eq 0 ] || { echo "error: c++ missing: install build-essential" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential >/dev/null
fi
if ! cargo fuzz --version 2>/dev/null | grep -q " $FUZZ_VERSION\$"; then
    echo "== installing cargo-fuzz $FUZZ_VERSION" >&2
    cargo install --locked "cargo-fuzz@$FUZZ_VERSION"
fi
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

cd fuzz
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
echo "== cargo fuzz build (${targets[*]})" >&2
cargo fuzz build --sanitizer none

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s" >&2
    mkdir -p "$scratch/$target"
    # First directory receives new inputs; the committed seeds are read only.
    log="$scratch/$target.log"
    status=0
    cargo fuzz run --sanitizer none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::number_of_executed_units|^#[0-9]+ +DONE' "$log" >&2 || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "error: fuzz target $target failed (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
done
echo "== fuzz smoke passed: ${targets[*]}" >&2
