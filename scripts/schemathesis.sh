#!/usr/bin/env bash
# schemathesis (PyPI), pinned, for the HTTP contract check of .ci/run: installs it once
# into a virtualenv under $SCHEMATHESIS_DIR (default /var/tmp/workos-sync-schemathesis)
# and prints the path of its `st` binary. Idempotent.
set -euo pipefail
VERSION=4.32.5
DIR="${SCHEMATHESIS_DIR:-/var/tmp/workos-sync-schemathesis}"
BIN="$DIR/bin/st"
if [ -x "$BIN" ] && [ "$("$DIR/bin/pip" show schemathesis 2>/dev/null | sed -n "s/^Version: //p")" = "$VERSION" ]; then
  echo "$BIN"
  exit 0
fi
echo "schemathesis: pip install schemathesis==$VERSION into $DIR" >&2
python3 -m venv "$DIR" >&2
"$DIR/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION" >&2
"$BIN" --version >/dev/null
echo "$BIN"
