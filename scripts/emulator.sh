#!/usr/bin/env bash
# WorkOS's own API emulator for the contract tests: the official `workos` npm CLI, pinned
# at 0.14.0 (`workos emulate --port P --json`). Installs it once under
# $WORKOS_EMULATOR_DIR (default /var/tmp/workos-cli), with Node.js from Debian if none is
# installed, and prints the path of the `workos` binary. Idempotent; the tests find the
# binary at the same default path or through WORKOS_EMULATOR_BIN.
set -euo pipefail
VERSION=0.14.0
DIR="${WORKOS_EMULATOR_DIR:-/var/tmp/workos-cli}"
BIN="$DIR/node_modules/.bin/workos"
if [ -x "$BIN" ] && [ "$("$BIN" --version 2>/dev/null)" = "$VERSION" ]; then
  echo "$BIN"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "emulator: installing Node.js and npm (Debian packages)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
fi
# The CLI needs Node >= 20.20 (it refuses to start on older versions).
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=20)?0:1)' || {
  echo "emulator: workos@$VERSION needs Node.js >= 20.20, found $(node --version)" >&2
  exit 1
}
mkdir -p "$DIR"
echo "emulator: npm install workos@$VERSION into $DIR" >&2
# The full install: --omit=optional drops a native module the CLI loads at start.
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "workos@$VERSION" >&2
"$BIN" --version >/dev/null
echo "$BIN"
