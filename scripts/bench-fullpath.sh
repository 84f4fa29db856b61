#!/usr/bin/env bash
# Full-path benchmark (release): receiver + worker together at a steady rate (default
# 5,000 req/s for 60 s), end-to-end latency 200 → row committed, queue depth over time,
# peak RSS; then a stepped saturation search. Usage: scripts/bench-fullpath.sh [args]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
bash scripts/services.sh
cargo build --release --locked -q --bins
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(rabbitmqctl -q version 2>/dev/null | head -1 | sed 's/^/RabbitMQ /'); $(psql --version | head -1)"
"$CARGO_TARGET_DIR/release/fullpath-bench" --bin-dir "$CARGO_TARGET_DIR/release" "$@"
