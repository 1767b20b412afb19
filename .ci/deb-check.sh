#!/usr/bin/env bash
# Builds the Debian package with cargo-deb ([package.metadata.deb] in Cargo.toml) and checks what is
# in it: every asset at its path with its mode, byte-identical to the repository's file, the example
# config as a conffile, the unit with daemon-reload maintainer scripts, and a binary that runs.
#
# Usage: .ci/deb-check.sh [DEB]   (with DEB: check that package instead of building one)
# Builds in release mode: a few minutes on 2 cores when target/release is cold.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILED=()
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    FAILED+=("$*")
}

build_deb() {
    if ! command -v cargo-deb >/dev/null 2>&1; then
        echo "== installing cargo-deb" >&2
        cargo install cargo-deb --locked >&2 || return 1
    fi
    if [ ! -f "$ROOT/config/example.toml" ]; then
        echo "config/example.toml is missing: the package ships it as the example and default config" >&2
        return 1
    fi
    echo "== cargo deb" >&2
    (cd "$ROOT" && cargo deb --output "$WORK/deb/") >&2 || return 1
    ls "$WORK"/deb/m365-posture_*.deb
}

deb=${1:-}
if [ -z "$deb" ]; then
    deb=$(build_deb) || {
        echo "deb-check: building the package failed"
        exit 1
    }
fi
command -v dpkg-deb >/dev/null || {
    echo "deb-check: dpkg-deb not found"
    exit 1
}
echo "== dpkg-deb -c $deb"
dpkg-deb -c "$deb" | tee "$WORK/contents.txt"
dpkg-deb -x "$deb" "$WORK/pkgroot"
dpkg-deb -e "$deb" "$WORK/control"

# asset SOURCE DEST MODE: DEST is in the listing with MODE, and its content equals SOURCE.
asset() {
    local src=$1 dest=$2 mode=$3 line
    line=$(awk -v p="./$dest" '$6 == p' "$WORK/contents.txt")
    if [ -z "$line" ]; then
        fail "missing in package: /$dest"
        return
    fi
    case $line in
    "$mode"*) ;;
    *) fail "/$dest: expected mode $mode, got ${line%% *}" ;;
    esac
    if [ -n "$src" ] && ! cmp -s "$ROOT/$src" "$WORK/pkgroot/$dest"; then
        fail "/$dest differs from $src"
    fi
    echo "ok: /$dest"
}

echo "== assets"
asset "" usr/bin/m365-posture -rwxr-xr-x
asset systemd/m365-posture.service usr/lib/systemd/system/m365-posture.service -rw-r--r--
asset config/example.toml etc/m365-posture/config.toml -rw-r--r--
asset config/example.toml usr/share/doc/m365-posture/examples/config.toml -rw-r--r--
for f in "$ROOT"/dashboards/m365-posture-*.json; do
    asset "dashboards/${f##*/}" "usr/share/m365-posture/dashboards/${f##*/}" -rw-r--r--
done
for f in "$ROOT"/dashboards/provisioning/*.yaml; do
    asset "dashboards/provisioning/${f##*/}" "usr/share/doc/m365-posture/examples/grafana/${f##*/}" -rw-r--r--
done
asset config/prometheus/alerts.yml usr/share/m365-posture/prometheus/alerts.yml -rw-r--r--
asset config/prometheus/prometheus.yml usr/share/doc/m365-posture/examples/prometheus.yml -rw-r--r--
asset config/alertmanager/alertmanager.yml usr/share/doc/m365-posture/examples/alertmanager.yml -rw-r--r--
asset systemd/README.md usr/share/doc/m365-posture/systemd.md -rw-r--r--
for f in "$ROOT"/systemd/dropins/*.conf; do
    asset "systemd/dropins/${f##*/}" "usr/share/doc/m365-posture/examples/systemd/${f##*/}" -rw-r--r--
done
asset README.md usr/share/doc/m365-posture/README.md -rw-r--r--
for f in "$ROOT"/docs/*.md; do
    asset "docs/${f##*/}" "usr/share/doc/m365-posture/${f##*/}" -rw-r--r--
done
asset docs/report.png usr/share/doc/m365-posture/report.png -rw-r--r--
asset config/alertmanager/webhook-log.py usr/share/doc/m365-posture/examples/webhook-log.py -rw-r--r--
asset "" usr/share/man/man1/m365-posture.1.gz -rw-r--r--
asset "" usr/share/doc/m365-posture/changelog.Debian.gz -rw-r--r--
asset packaging/debian/copyright usr/share/doc/m365-posture/copyright -rw-r--r--
if ! zcat "$WORK/pkgroot/usr/share/man/man1/m365-posture.1.gz" | cmp -s - "$ROOT/packaging/man/m365-posture.1"; then
    fail "the packaged man page is not packaging/man/m365-posture.1"
fi

echo "== control"
grep -qx /etc/m365-posture/config.toml "$WORK/control/conffiles" 2>/dev/null ||
    fail "/etc/m365-posture/config.toml is not a conffile (local edits would be overwritten on upgrade)"
grep -q 'daemon-reload' "$WORK/control/postinst" 2>/dev/null ||
    fail "postinst does not reload systemd"
# Not enabled or started on first install (it needs a tenant and a credential first); an upgrade
# keeps the admin's choice (re-enable only if it was enabled, try-restart only if running).
if grep -Eq 'deb-systemd-invoke (start|restart) |systemctl (--system )?(start|enable)' "$WORK/control/postinst" ||
    { grep -q 'deb-systemd-helper enable' "$WORK/control/postinst" &&
        ! grep -q 'was-enabled' "$WORK/control/postinst"; }; then
    fail "postinst enables or starts the service on install"
fi
grep -q 'deb-systemd-invoke stop m365-posture.service' "$WORK/control/prerm" 2>/dev/null ||
    fail "prerm does not stop the service on removal"
grep -q 'rm -rf "${DPKG_ROOT:-}/$dir"' "$WORK/control/postrm" 2>/dev/null ||
    fail "postrm does not remove the state directory on purge (packaging/debian/postrm)"
grep -q '^Package: m365-posture$' "$WORK/control/control" || fail "control: Package is not m365-posture"
sed -n 's/^\(Package\|Version\|Architecture\|Depends\|Maintainer\): /  &/p' "$WORK/control/control"

echo "== installed config, with the credentials the installed unit loads"
# LoadCredential=NAME:SOURCE puts SOURCE at /run/credentials/m365-posture.service/NAME inside the
# service; here each SOURCE is created under the unpacked root (a dummy secret) and the config's
# credential paths are mapped to it, as README step 4 does on a real machine.
unit="$WORK/pkgroot/usr/lib/systemd/system/m365-posture.service"
config="$WORK/pkgroot/etc/m365-posture/config.toml"
cp "$config" "$WORK/installed-config.toml"
while IFS=: read -r name source; do
    mkdir -p "$WORK/pkgroot$(dirname "$source")"
    printf 'dummy-secret\n' >"$WORK/pkgroot$source"
    sed -i "s#/run/credentials/m365-posture.service/$name\"#$WORK/pkgroot$source\"#" "$WORK/installed-config.toml"
done < <(sed -n 's/^LoadCredential=//p' "$unit")
if out=$("$WORK/pkgroot/usr/bin/m365-posture" check-config --config "$WORK/installed-config.toml" 2>&1); then
    echo "ok: check-config of /etc/m365-posture/config.toml"
else
    fail "the installed /etc/m365-posture/config.toml fails check-config with the unit's credentials: $out"
fi
grep -q '^listen = "127.0.0.1:9365"$' "$config" ||
    fail "the installed config does not listen on 127.0.0.1:9365"

echo "== packaged binary"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
if out=$("$WORK/pkgroot/usr/bin/m365-posture" --version 2>&1) && [[ $out == *"$version"* ]]; then
    echo "ok: m365-posture --version: $out"
else
    fail "usr/bin/m365-posture --version does not print $version (got: ${out:-nothing})"
fi

echo "== lintian (errors and warnings fail)"
if command -v lintian >/dev/null; then
    if lintian --fail-on error,warning "$deb" | tee "$WORK/lintian.txt"; then
        echo "ok: lintian"
    else
        fail "lintian reports errors or warnings (above)"
    fi
else
    fail "lintian is not installed"
fi

echo
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "deb-check: ${#FAILED[@]} failed:"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
echo "deb-check: all passed ($deb)"
