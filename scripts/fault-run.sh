#!/usr/bin/env bash
# Fault-injection run: receiver + two workers as separate processes, signed events over
# HTTP, faults injected, final table checked against the model of every accepted event.
#   scripts/fault-run.sh short   # CI profile: 10k events, shorter faults (debug build)
#   scripts/fault-run.sh full    # 100k events over 5k users, 20 s broker cut, 60 s DB
#                                # outage, 3 worker kill -9, receiver restart (release)
#   scripts/fault-run.sh cluster-short  # CI: a three-node cluster (scripts/rabbit-cluster.sh,
#                                # removed afterwards), 12k events at 400/s, the events
#                                # queue's leader stopped 5 s, another node kill -9 5 s
#   scripts/fault-run.sh cluster-full   # the same with 100k events at 1000/s, 20 s each (release)
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
  cluster-short|cluster-full)
    trap 'bash scripts/rabbit-cluster.sh stop' EXIT
    WST_CLUSTER_URLS="$(bash scripts/rabbit-cluster.sh start)"
    export WST_CLUSTER_URLS
    if [ "$profile" = cluster-short ]; then
      cargo build --locked -q --bins
      bin="$CARGO_TARGET_DIR/debug"; sizing=(--events 12000 --users 500 --rate 400 --node-down-secs 5)
    else
      cargo build --release --locked -q --bins
      bin="$CARGO_TARGET_DIR/release"; sizing=(--events 100000 --users 5000 --rate 1000 --node-down-secs 20)
    fi
    "$bin/fault-run" --bin-dir "$bin" --cluster "${sizing[@]}" \
      --broker-cut-secs 0 --db-outage-secs 0 --worker-kills 0 --receiver-restart false "$@"
    ;;
  *) echo "usage: $0 short|full|cluster-short|cluster-full [args]" >&2; exit 2 ;;
esac
