#!/usr/bin/env bash
# Fault-injection run: receiver + two workers as separate processes, signed events over
# HTTP, faults injected, final table checked against the model of every accepted event.
#   scripts/fault-run.sh short   # CI profile: 10k events, shorter faults (debug build)
#   scripts/fault-run.sh full    # 100k events over 5k users, 20 s broker cut, 60 s DB
#                                # outage, 3 worker kill -9, receiver restart (release)
# Extra arguments go to the fault-run binary (e.g. --allow-broker-restart).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
profile="${1:-short}"; shift || true
bash scripts/services.sh
case "$profile" in
  short)
    cargo build --locked -q --bins
    "$CARGO_TARGET_DIR/debug/fault-run" --bin-dir "$CARGO_TARGET_DIR/debug" \
      --events 10000 --users 500 --broker-cut-secs 5 --db-outage-secs 10 --park-after-secs 4 --worker-kills 2 "$@"
    ;;
  full)
    cargo build --release --locked -q --bins
    "$CARGO_TARGET_DIR/release/fault-run" --bin-dir "$CARGO_TARGET_DIR/release" \
      --events 100000 --users 5000 --broker-cut-secs 20 --db-outage-secs 60 --park-after-secs 20 --worker-kills 3 "$@"
    ;;
  *) echo "usage: $0 short|full [args]" >&2; exit 2 ;;
esac
