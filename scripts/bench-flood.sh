#!/usr/bin/env bash
# Memory before authentication (release build): starts the receiver, floods it with
# 200 connections x 3 rounds of 1 MiB bodies under a fresh, well-formed but wrong
# signature, sends a valid webhook every 50 ms meanwhile, and prints the receiver's
# resident memory and the valid requests' statuses and latency, idle and under flood.
# Usage: scripts/bench-flood.sh [CONNECTIONS] [ROUNDS]   (defaults 200 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS="${1:-200}"
ROUNDS="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
bash scripts/services.sh
cargo build --release --locked -q -p workos-sync-receiver -p workos-sync-bench
BIN="$CARGO_TARGET_DIR/release"
PREFIX="wst-flood-$$"
SECRET="whsec_bench_secret"
WORKOS_WEBHOOK_SECRET="$SECRET" WORKOS_SYNC__AMQP__PREFIX="$PREFIX" \
  WORKOS_SYNC__RECEIVER__BIND=127.0.0.1:18081 WORKOS_SYNC__LOG__FILTER=error \
  "$BIN/workos-sync-receiver" & RX=$!
cleanup() {
  kill -TERM "$RX" 2>/dev/null || true
  wait "$RX" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18081/readyz >/dev/null && break; sleep 0.1; done
"$BIN/body-flood" --url http://127.0.0.1:18081/api/webhooks/workos --pid "$RX" \
  --connections "$CONNS" --rounds "$ROUNDS" --secret "$SECRET" --prefix "$PREFIX"
