#!/usr/bin/env bash
# The receiver over TLS beside plain HTTP (release builds), on this machine: two
# receivers, one with receiver.tls_cert/tls_key (a certificate made here by the
# test-cert program, rcgen), one without, each on its own queue prefix; RUNS alternating
# pairs of the same load (the raw keep-alive client of loadgen, concurrency 64, one TLS
# handshake per connection, then keep-alive, as WorkOS's delivery keeps connections);
# per pair requests/s, p50/p99 and the ratio TLS / plain, then the median ratio and the
# peak RSS of both receivers.
# Usage: scripts/bench-ingress-tls.sh [SECONDS] [RUNS]   (defaults 15 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-15}"
RUNS="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
bash scripts/services.sh
cargo build --release --locked -q -p workos-sync-receiver -p workos-sync-bench
BIN="$CARGO_TARGET_DIR/release"
PREFIX="wst-benchtls-$$"
SECRET="whsec_bench_secret"
DIR="$(mktemp -d)"
"$BIN/test-cert" "$DIR" >/dev/null

wait_ready() { for _ in $(seq 1 100); do "$BIN/workos-sync" probe --timeout-ms 500 ${3:+--ca "$3"} "$1://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
rate_of() { sed -n 's/.* rate=\([0-9]*\)\/s.*/\1/p' <<<"$1"; }

cargo build --release --locked -q -p workos-sync-cli
start() { # name port [tls]
  local extra=()
  [ -z "${3:-}" ] || extra=(WORKOS_SYNC__RECEIVER__TLS_CERT="$DIR/cert.pem" WORKOS_SYNC__RECEIVER__TLS_KEY="$DIR/key.pem")
  env WORKOS_WEBHOOK_SECRET="$SECRET" WORKOS_SYNC__AMQP__PREFIX="$PREFIX-$1" \
    WORKOS_SYNC__RECEIVER__BIND="127.0.0.1:$2" WORKOS_SYNC__LOG__FILTER=warn "${extra[@]}" \
    "$BIN/workos-sync-receiver" &
}
start plain 18180; PLAIN=$!
start tls 18543 tls; TLS=$!
cleanup() {
  kill -TERM "$PLAIN" "$TLS" 2>/dev/null || true
  wait "$PLAIN" "$TLS" 2>/dev/null || true
  for q in $(rabbitmqctl -q list_queues name </dev/null | grep "^$PREFIX" || true); do
    rabbitmqctl -q delete_queue "$q" </dev/null >/dev/null || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT
wait_ready http 18180 || { echo "plain receiver not ready" >&2; exit 1; }
wait_ready https 18543 "$DIR/cert.pem" || { echo "TLS receiver not ready" >&2; exit 1; }

ratios=()
for i in $(seq 1 "$RUNS"); do
  echo "== pair $i/$RUNS"
  rabbitmqctl -q purge_queue "$PREFIX-plain.events" </dev/null >/dev/null
  p=$("$BIN/loadgen" --url http://127.0.0.1:18180/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label plain-http)
  echo "plain. $p"
  rabbitmqctl -q purge_queue "$PREFIX-tls.events" </dev/null >/dev/null
  t=$("$BIN/loadgen" --url https://127.0.0.1:18543/api/webhooks/workos --ca "$DIR/cert.pem" --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label tls)
  echo "tls.   $t"
  ratio=$(awk -v p="$(rate_of "$p")" -v t="$(rate_of "$t")" 'BEGIN { printf "%.2f", (p > 0 ? t / p : 0) }')
  echo "   ratio tls / plain = ${ratio}x"
  ratios+=("$ratio")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
echo "== receiver over TLS / plain HTTP, median of $RUNS pairs: ${median}x (pairs: ${ratios[*]})"
rss() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$1/status"; }
echo "peak RSS: plain $(rss "$PLAIN"), TLS $(rss "$TLS")"
