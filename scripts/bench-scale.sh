#!/usr/bin/env bash
# Scale benchmarks (issue #30), release builds, each printing its figures beside its
# baseline in the same run:
#   verify-scale     backfill and `verify --repair` of N users (peak RSS, wall time),
#                    in step and with 1 % drift, against a fake WorkOS in the process
#   processed-scale  the apply rate with M rows in processed_events against an empty
#                    table (interleaved rounds), prune of those M rows (time, WAL,
#                    sizes, autovacuum), and dropping day partitions instead
# Usage: scripts/bench-scale.sh [small|full]
#   small (CI): 20,000 users, 200,000 processed rows — a few minutes
#   full:       1,000,000 users, 20,000,000 processed rows — about half an hour, ~10 GB
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
bash scripts/services.sh
case "${1:-small}" in
    small) USERS=20000; ROWS=200000; EVENTS=5000; WAIT=5 ;;
    full) USERS=1000000; ROWS=20000000; EVENTS=20000; WAIT=120 ;;
    *) echo "usage: scripts/bench-scale.sh [small|full]" >&2; exit 2 ;;
esac
cargo build --release --locked -q -p workos-sync-cli -p workos-sync-bench
R="$CARGO_TARGET_DIR/release"
echo "== verify-scale: $USERS users"
"$R/verify-scale" --users "$USERS" --bin "cli=$R/workos-sync" --drift 10
echo "== processed-scale: $ROWS processed rows, $EVENTS events per round"
"$R/processed-scale" --rows "$ROWS" --events "$EVENTS" --rounds 3 --autovacuum-wait "$WAIT" \
    2> >(grep -v " rows$" >&2)
