#!/usr/bin/env bash
# Ingress benchmark, all in one run on this machine (release builds):
#   0. trivial actix-web server + the same load generator (HTTP ceiling of the machine)
#   a. raw persistent publish-with-confirm from lapin, 64 in flight (the target baseline)
#   b. the receiver at concurrency 64: requests/s, p50/p99, peak RSS (load generator:
#      a minimal keep-alive HTTP/1.1 client on one thread; then reqwest for comparison)
# Usage: scripts/bench-ingress.sh [SECONDS]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-15}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
bash scripts/services.sh
cargo build --release --locked -q -p workos-sync-receiver -p workos-sync-bench
BIN="$CARGO_TARGET_DIR/release"
PREFIX="wst-bench-$$"
SECRET="whsec_bench_secret"

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

echo "== 0. trivial HTTP server (baseline for the HTTP stack and load generator)"
"$BIN/trivial-server" 127.0.0.1:18090 & TS=$!
wait_port 18090
"$BIN/loadgen" --url http://127.0.0.1:18090/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label trivial-http
kill "$TS"; wait "$TS" 2>/dev/null || true

echo "== a. raw publish with confirm (lapin, 64 in flight, quorum queue)"
"$BIN/publish-bench" --inflight 64 --seconds "$SECS" --prefix "$PREFIX-raw"

echo "== b. receiver (verify + publish + confirm per request), concurrency 64"
WORKOS_WEBHOOK_SECRET="$SECRET" WORKOS_SYNC__AMQP__PREFIX="$PREFIX" \
  WORKOS_SYNC__RECEIVER__BIND=127.0.0.1:18080 WORKOS_SYNC__LOG__FILTER=warn \
  "$BIN/workos-sync-receiver" & RX=$!
wait_port 18080
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
peak_rss() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$RX/status"; }
"$BIN/loadgen" --url http://127.0.0.1:18080/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label receiver
echo "receiver peak RSS: $(peak_rss)"
# The same with reqwest as the client: shows how much of the 2 cores the client takes.
"$BIN/loadgen" --url http://127.0.0.1:18080/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label receiver --client reqwest
echo "receiver peak RSS after both runs: $(peak_rss)"
kill -TERM "$RX"; wait "$RX" 2>/dev/null || true
for q in $(rabbitmqctl -q list_queues name | grep "^$PREFIX"); do rabbitmqctl -q delete_queue "$q" >/dev/null; done
