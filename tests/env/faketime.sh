#!/usr/bin/env bash
# Installs libfaketime (the LD_PRELOAD library that shifts what a process sees as the
# wall clock) from the PyPI package libfaketime, which ships it prebuilt, into a cache
# directory, once, and prints the library's path. Debian's faketime package would need
# root and apt; PyPI is reachable everywhere the tests run.
set -euo pipefail

version=3.0.1
cache="${KVOP_CACHE:-$HOME/.cache/kvop-test}"
venv="$cache/libfaketime-$version"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import libfaketime" 2>/dev/null; then
  echo "installing libfaketime $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "libfaketime==$version" >&2
fi
library="$("$venv/bin/python" -c 'import libfaketime, os; print(os.path.join(os.path.dirname(libfaketime.__file__), "vendor/libfaketime/src/libfaketime.so.1"))')"
if [ ! -f "$library" ]; then
  echo "error: $library is missing from the libfaketime package" >&2
  exit 1
fi
# It must really shift the clock here, or the clock-skew tests would prove nothing.
if [ "$(LD_PRELOAD="$library" FAKETIME="@2001-02-03 04:05:06" date -u +%Y)" != 2001 ]; then
  echo "error: $library does not shift the clock on this machine" >&2
  exit 1
fi
echo "$library"
