#!/usr/bin/env bash
# Installs the real syslog receivers and CEF parsers the end-to-end sink tests use
# (tests/e2e_syslog.rs). Idempotent; run as root on Debian bookworm.
#
#   syslog-ng-core     apt package (syslog-ng 3.38: network() and syslog() sources, TLS)
#   rsyslog            apt-get download + dpkg -x into $RECEIVERS_DIR/rsyslog, because it conflicts
#   rsyslog-gnutls     with syslog-ng-core (both provide system-log-daemon); started from there
#   liblognorm-utils   apt package: `lognormalizer` with the cef motif
#   openssl            apt package: test certificates for the TLS receivers
#   cefp==0.0.2        PyPI, in the venv $RECEIVERS_DIR/venv (strict CEF parser)
#
# The tests find everything through M365_RECEIVERS_DIR (default /opt/m365-posture-receivers).
set -euo pipefail

RECEIVERS_DIR="${M365_RECEIVERS_DIR:-/opt/m365-posture-receivers}"
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v syslog-ng >/dev/null || need_apt+=(syslog-ng-core)
command -v lognormalizer >/dev/null || need_apt+=(liblognorm-utils)
command -v openssl >/dev/null || need_apt+=(openssl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
  apt-get update
  apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

mkdir -p "$RECEIVERS_DIR"
if [ ! -x "$RECEIVERS_DIR/rsyslog/usr/sbin/rsyslogd" ] \
  || ! ls "$RECEIVERS_DIR"/rsyslog/usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download rsyslog rsyslog-gnutls) || { apt-get update && (cd "$tmp" && apt-get download rsyslog rsyslog-gnutls); }
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$RECEIVERS_DIR/rsyslog"; done
  rm -rf "$tmp"
fi
# rsyslog's runtime libraries (libfastjson, libestr, liblognorm, gnutls) come with the packages above
# or are already present; check that the unpacked daemon starts.
"$RECEIVERS_DIR/rsyslog/usr/sbin/rsyslogd" -v >/dev/null

if [ ! -x "$RECEIVERS_DIR/venv/bin/python" ] || ! "$RECEIVERS_DIR/venv/bin/python" -c 'import cefp' 2>/dev/null; then
  python3 -m venv "$RECEIVERS_DIR/venv"
  "$RECEIVERS_DIR/venv/bin/pip" install --quiet 'cefp==0.0.2'
fi

echo "receivers ready in $RECEIVERS_DIR:"
echo "  rsyslogd:      $RECEIVERS_DIR/rsyslog/usr/sbin/rsyslogd"
echo "  syslog-ng:     $(command -v syslog-ng)"
echo "  lognormalizer: $(command -v lognormalizer)"
echo "  cefp:          $RECEIVERS_DIR/venv/bin/python -c 'import cefp'"
