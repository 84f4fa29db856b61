#!/usr/bin/env bash
# Scale benchmarks (issue #30), release builds, each printing its figures beside its
# baseline in the same run:
#   verify-scale     backfill and `verify --repair` of N users (peak RSS, wall time),
#                    in step and with 1 % drift, and the worker's periodic check of the
#                    same drift, against a fake WorkOS in the process
#   processed-scale  the apply rate with M remembered event ids (in the table from
#                    before day partitions, and in day partitions) against none
#                    (interleaved rounds), and prune of those ids in each layout
#                    (time, WAL, sizes, autovacuum)
#   drain-bench      the worker's drain of the same events with T1 and T2 users already
#                    in the table (interleaved), and lazy sync's latency at each size
#   backfill-scale   backfill of N users (our ceiling, the request rate against the
#                    read budget, a kill at 60 % and the resume), then O organizations
#                    with 100 memberships each, and verify --repair of both
# Usage: scripts/bench-scale.sh [small|full]
#   small (CI): 20,000 users, 200,000 ids, tables of 10k/100k, 200 orgs — a few minutes
#   full:       1,000,000 users, 20,000,000 ids, tables of 10k/5M, 10,000 orgs ×
#               100 memberships — about an hour and a half, ~15 GB of disk
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
bash scripts/services.sh
case "${1:-small}" in
    small) USERS=20000; ROWS=200000; EVENTS=5000; WAIT=5
           DRAIN=(--events 20000 --users 2000 --runs 1 --table-users 10000,100000 --lazy-syncs 100)
           ORGS=200 ;;
    full) USERS=1000000; ROWS=20000000; EVENTS=20000; WAIT=120
          DRAIN=(--events 100000 --users 10000 --runs 3 --table-users 10000,5000000 --lazy-syncs 500)
          ORGS=10000 ;;
    *) echo "usage: scripts/bench-scale.sh [small|full]" >&2; exit 2 ;;
esac
cargo build --release --locked -q -p workos-sync-cli -p workos-sync-worker -p workos-sync-bench
R="$CARGO_TARGET_DIR/release"
echo "== verify-scale: $USERS users"
"$R/verify-scale" --users "$USERS" --bin "cli=$R/workos-sync" --drift 10 \
    --worker-bin "$R/workos-sync-worker"
echo "== processed-scale: $ROWS processed rows, $EVENTS events per round"
"$R/processed-scale" --rows "$ROWS" --events "$EVENTS" --rounds 3 --autovacuum-wait "$WAIT" \
    2> >(grep -v " rows$" >&2)
echo "== drain-bench: tables of ${DRAIN[7]} users"
"$R/drain-bench" "${DRAIN[@]}" --worker-bin "$R/workos-sync-worker" \
    | grep -E "^(table|c\. worker drain|   lazy sync|generated)"
echo "== backfill-scale: $USERS users, $ORGS organizations × 100 memberships"
"$R/backfill-scale" --bin "$R/workos-sync" --users "$USERS" --orgs "$ORGS" \
    --memberships-per-org 100 --budget 40 --kill-at 0.6
