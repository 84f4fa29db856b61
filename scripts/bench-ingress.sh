#!/usr/bin/env bash
# Ingress benchmark, all in one run on this machine (release builds):
#   0. trivial actix-web server + the same load generator (HTTP ceiling of the machine)
#   then RUNS alternating pairs of
#   a. raw persistent publish-with-confirm from lapin, 64 in flight (the target baseline)
#   b. the receiver at concurrency 64: requests/s, p50/p99 (load generator: a minimal
#      keep-alive HTTP/1.1 client on one thread)
#   c. the bare relay (crates/bench/src/bin/bare_relay.rs: the same actix-web and lapin
#      publisher, publishing the raw body with a confirm and nothing else), the same way:
#      b/c is what everything the receiver does beyond relaying costs
#   and the median of the per-pair ratios b/a (single figures on this shared 2-core
#   machine vary by ±15 %, so one pair decides nothing). Every run starts from an empty
#   queue (the receiver's and the relay's are purged, the baseline's is new) and from an
#   idle broker: before each run the script waits until RabbitMQ's CPU use is below 15 %
#   of a core (the baseline deletes a queue of ~300k messages when it ends, which
#   RabbitMQ works off for seconds afterwards). b and c swap places every other pair, so
#   neither always runs first.
#   Last, peak RSS of the receiver, then one run with reqwest as the client for comparison.
# The receiver runs with its production logging (config/default.toml: info, JSON), its
# stdout into /dev/null, so whatever it logs per request is part of its cost.
# Usage: scripts/bench-ingress.sh [SECONDS] [RUNS]   (defaults 15 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-15}"
RUNS="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
bash scripts/services.sh
cargo build --release --locked -q -p workos-sync-receiver -p workos-sync-bench
BIN="$CARGO_TARGET_DIR/release"
# RECEIVER_BIN: another receiver binary to measure (a "before" build, say).
RX_BIN="${RECEIVER_BIN:-$BIN/workos-sync-receiver}"
PREFIX="wst-bench-$$"
SECRET="whsec_bench_secret"

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# The `rate=N/s` figure of a benchmark line.
rate_of() { sed -n 's/.* rate=\([0-9]*\)\/s.*/\1/p' <<<"$1"; }
# "share µs" from a `CPU (cores N% busy, X µs CPU per item)` line (machine-wide CPU).
cpu_of() { sed -n 's/.*(cores \([0-9]*\)% busy, \([0-9.]*\) µs CPU per item).*/\1 \2/p' <<<"$1"; }
CORES=$(nproc)

echo "== 0. trivial HTTP server (baseline for the HTTP stack and load generator)"
"$BIN/trivial-server" 127.0.0.1:18090 & TS=$!
wait_port 18090
t=$("$BIN/loadgen" --url http://127.0.0.1:18090/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label trivial-http)
echo "$t"
read -r _ t_us <<<"$(cpu_of "$t")"
kill "$TS"; wait "$TS" 2>/dev/null || true

WORKOS_WEBHOOK_SECRET="$SECRET" WORKOS_SYNC__AMQP__PREFIX="$PREFIX" \
  WORKOS_SYNC__RECEIVER__BIND=127.0.0.1:18080 \
  "$RX_BIN" >/dev/null & RX=$!
trap 'kill -TERM "$RX" 2>/dev/null || true' EXIT
wait_port 18080
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
AMQP_URL="$AMQP_URL" "$BIN/bare-relay" 127.0.0.1:18082 "$PREFIX-relay" & RELAY=$!
trap 'kill -TERM "$RX" "$RELAY" 2>/dev/null || true' EXIT
wait_port 18082

# Waits (at most 20 s) until the broker's Erlang VM used under 15 % of a core over 0.5 s.
BEAM=$(pgrep -o -x beam.smp || true)
TICK=$(getconf CLK_TCK)
broker_idle() {
  [ -n "$BEAM" ] || return 0
  for _ in $(seq 1 40); do
    t0=$(awk '{print $14 + $15}' "/proc/$BEAM/stat"); sleep 0.5
    t1=$(awk '{print $14 + $15}' "/proc/$BEAM/stat")
    [ $(( (t1 - t0) * 100 / TICK * 2 )) -lt 15 ] && return 0
  done
}
run_receiver() {
  rabbitmqctl -q purge_queue "$PREFIX.events" >/dev/null; broker_idle
  b=$("$BIN/loadgen" --url http://127.0.0.1:18080/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label receiver)
  echo "b. $b"
}
run_relay() {
  rabbitmqctl -q purge_queue "$PREFIX-relay.events" >/dev/null; broker_idle
  c=$("$BIN/loadgen" --url http://127.0.0.1:18082/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label bare-relay)
  echo "c. $c"
}

ratios=()
relay_ratios=()
rx_cpu=()
relay_cpu=()
# µs per request of process $1 in a load generator report $2 (its `by process` list).
proc_us() { sed -n "s/.*by process:.* $1 \([0-9.]*\).*/\1/p" <<<"$2" | head -1; }
RX_COMM=$(basename "$RX_BIN" | cut -c1-15)
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for i in $(seq 1 "$RUNS"); do
  echo "== pair $i/$RUNS"
  broker_idle
  a=$("$BIN/publish-bench" --inflight 64 --seconds "$SECS" --prefix "$PREFIX-raw")
  echo "a. $a"
  if [ $((i % 2)) -eq 1 ]; then run_receiver; run_relay; else run_relay; run_receiver; fi
  ra=$(rate_of "$a"); rb=$(rate_of "$b")
  ratio=$(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
  echo "   ratio b/a = ${ratio}x"
  ratios+=("$ratio")
  rc=$(rate_of "$c")
  relay_ratio=$(awk -v b="$rb" -v c="$rc" 'BEGIN { printf "%.2f", (c > 0 ? b / c : 0) }')
  echo "   ratio b/c (receiver / bare relay) = ${relay_ratio}x"
  relay_ratios+=("$relay_ratio")
  # The receiver's and the relay's own CPU per request (the load generator's per-process
  # figures): steadier than the rates on this machine, so the two medians say more.
  rx_us=$(proc_us "$RX_COMM" "$b"); relay_us=$(proc_us bare-relay "$c")
  echo "   CPU per request: receiver ${rx_us:-?} µs, bare relay ${relay_us:-?} µs"
  rx_cpu+=("${rx_us:-0}"); relay_cpu+=("${relay_us:-0}")
  # The receiver does at least what the baseline does (the same publish, the same
  # broker work) plus what the trivial run cost (an HTTP server answering at once and
  # the load generator): at the core use of this run, that alone would reach `ceiling`;
  # 0.9x needs at most `budget` µs of CPU per request even with every core busy.
  read -r _ a_us <<<"$(cpu_of "$a")"; read -r b_share b_us <<<"$(cpu_of "$b")"
  if [ -n "${a_us:-}" ] && [ -n "${b_us:-}" ] && [ -n "${t_us:-}" ]; then
    awk -v a="$ra" -v au="$a_us" -v tu="$t_us" -v bs="$b_share" -v bu="$b_us" -v n="$CORES" 'BEGIN {
      floor = au + tu; ceiling = bs / 100 * n * 1e6 / floor / a; budget = n * 1e6 / (0.9 * a)
      printf "   CPU: receiver run %.1f us per request; raw publish (%.1f) + trivial HTTP server and client (%.1f) = %.1f us would reach %.2fx at this run'"'"'s %d%% core use; 0.9x needs <= %.1f us with every core busy\n", bu, au, tu, floor, ceiling, bs, budget }'
  fi
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
echo "== receiver / raw publish, median of $RUNS pairs: ${median}x (pairs: ${ratios[*]})"
relay_median=$(printf '%s\n' "${relay_ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
echo "== receiver / bare relay, median of $RUNS pairs: ${relay_median}x (pairs: ${relay_ratios[*]})"
echo "== CPU per request, median of $RUNS pairs: receiver $(median "${rx_cpu[@]}") µs, bare relay $(median "${relay_cpu[@]}") µs (receiver: ${rx_cpu[*]}; relay: ${relay_cpu[*]})"
peak_rss() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$RX/status"; }
echo "receiver peak RSS after the benchmarked runs: $(peak_rss)"

# The same with reqwest as the client: shows how much of the 2 cores the client takes.
rabbitmqctl -q purge_queue "$PREFIX.events" >/dev/null
"$BIN/loadgen" --url http://127.0.0.1:18080/api/webhooks/workos --concurrency 64 --seconds "$SECS" --secret "$SECRET" --label receiver --client reqwest
echo "receiver peak RSS after the reqwest run too: $(peak_rss)"
kill -TERM "$RX" "$RELAY"; wait "$RX" "$RELAY" 2>/dev/null || true
trap - EXIT
for q in $(rabbitmqctl -q list_queues name | grep "^$PREFIX"); do rabbitmqctl -q delete_queue "$q" >/dev/null; done
