#!/usr/bin/env bash
# cargo deny check: advisories, licences, bans (duplicate versions warn) and sources of every
# crate in Cargo.lock, configured by deny.toml.
#
# CI reaches crates.io but no git host, so cargo-deny cannot fetch the RustSec advisory
# database. By default this script lays the pinned advisory set of deny/advisory-db/ out where
# cargo-deny looks for the database (a git checkout under target/advisory-dbs, named as
# cargo-deny 0.20 names the directory of https://github.com/rustsec/advisory-db) and runs
# cargo deny --offline. It first proves the set is read: deny/selftest depends on
# rustls-pemfile 2.2.0, so its advisory check must fail with RUSTSEC-2025-0134.
#
# Usage: .ci/deny.sh            pinned advisories (CI)
#        .ci/deny.sh --fetch    the full, current RustSec database (needs github.com)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q " $DENY_VERSION\$"; then
    echo "== installing cargo-deny $DENY_VERSION" >&2
    cargo install --locked "cargo-deny@$DENY_VERSION"
fi

if [ "${1:-}" = "--fetch" ]; then
    rm -rf target/advisory-dbs
    exec cargo deny check
fi

db=target/advisory-dbs/advisory-db-3157b0e258782691
rm -rf "$db"
mkdir -p "$db"
cp -R deny/advisory-db/crates "$db/"
git -C "$db" init -q
git -C "$db" add -A
git -C "$db" -c user.name=ci -c user.email=ci@example.invalid commit -qm "pinned advisories"
# cargo-deny refuses a database older than maximum-db-staleness, judged by FETCH_HEAD; the
# pinned set is as fresh as this checkout (deny/README.md says how to refresh it).
touch "$db/.git/FETCH_HEAD"

# --offline also stops cargo metadata from downloading: fetch the crates first.
cargo fetch --locked --quiet
(cd deny/selftest && cargo fetch --locked --quiet)

echo "== cargo deny self-test: the pinned advisories are read"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if cargo deny --manifest-path deny/selftest/Cargo.toml --offline check advisories >"$out" 2>&1; then
    cat "$out"
    echo "deny: the self-test crate passed; cargo deny did not read deny/advisory-db" >&2
    exit 1
fi
grep -q "RUSTSEC-2025-0134" "$out" || {
    cat "$out"
    echo "deny: the self-test failed without naming RUSTSEC-2025-0134" >&2
    exit 1
}
echo "ok: rustls-pemfile 2.2.0 is refused (RUSTSEC-2025-0134)"

echo "== cargo deny --offline check"
cargo deny --offline check
