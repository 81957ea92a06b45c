#!/usr/bin/env bash
# Fetches promtool from Debian's prometheus package (apt-get download, extracted with
# dpkg-deb: nothing installed, no service started) into
# ${KVOP_CACHE:-$HOME/.cache/kvop-test}/promtool-VERSION/, and prints its path. Cold: a
# 19 MB download, a few seconds; warm: instant.
set -euo pipefail

CACHE="${KVOP_CACHE:-$HOME/.cache/kvop-test}"
VERSION="2.42.0+ds-5+deb12u1"
out="$CACHE/promtool-$VERSION/promtool"
if [[ ! -x "$out" ]]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (
        cd "$work"
        if ! apt-get download "prometheus=$VERSION" >/dev/null 2>&1; then
            # A fresh machine may have no package lists yet (CI runs as root).
            apt-get update -qq >/dev/null 2>&1 || true
            apt-get download "prometheus=$VERSION" >/dev/null 2>&1 ||
                apt-get download prometheus >/dev/null
        fi
        dpkg-deb -x prometheus_*.deb extracted
    ) >&2
    mkdir -p "$(dirname "$out")"
    cp "$work/extracted/usr/bin/promtool" "$out.tmp"
    mv "$out.tmp" "$out"
fi
echo "$out"
