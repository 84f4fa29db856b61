#!/usr/bin/env bash
# Worker benchmark (release builds), one run: raw consume+ack, raw batched upserts, and
# the worker binary draining a pre-filled queue (5 runs, median), with a check of the
# final table after each.
# Usage: scripts/bench-worker.sh [EVENTS] [USERS] [drain-bench options, e.g. --orgs 500
#        --memberships-per-org 20 for a mixed drain]   (default 100000 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
bash scripts/services.sh
cargo build --release --locked -q -p workos-sync-worker -p workos-sync-bench
"$CARGO_TARGET_DIR/release/drain-bench" --events "${1:-100000}" --users "${2:-10000}" --runs 5 \
  --worker-bin "$CARGO_TARGET_DIR/release/workos-sync-worker" "${@:3}"
