#!/usr/bin/env bash
# A three-node RabbitMQ cluster beside the machine's shared node (rabbit@localhost:5672,
# which this script never touches), for the cluster tests and the cluster fault run.
#
#   scripts/rabbit-cluster.sh start        # boot wst1..wst3, cluster them, print the URLs
#   scripts/rabbit-cluster.sh stop         # stop every node and remove its data (also
#                                          # the leftovers of a run that died)
#   scripts/rabbit-cluster.sh urls         # amqp://…:5701,amqp://…:5702,amqp://…:5703
#   scripts/rabbit-cluster.sh node N       # wstN@localhost
#   scripts/rabbit-cluster.sh stop-app N   # rabbitmqctl stop_app (clean: clients are closed)
#   scripts/rabbit-cluster.sh start-app N  # rabbitmqctl start_app, wait until it serves
#   scripts/rabbit-cluster.sh kill N       # kill -9 of the node's Erlang VM
#   scripts/rabbit-cluster.sh boot N       # start a killed node again (it rejoins)
#   scripts/rabbit-cluster.sh leader Q     # the node that leads quorum queue Q (wstN@localhost)
#   scripts/rabbit-cluster.sh members Q    # the nodes holding a replica of Q, one per line
#
# Each node has its own name (wstN@localhost), AMQP port (WST_CLUSTER_PORT + N - 1,
# default 5701..5703), distribution port (+20000) and data folder under
# WST_CLUSTER_DIR (default /var/tmp/wst-cluster). WST_CLUSTER_NODES (default 3) and
# WST_CLUSTER_NAME (default wst) give another set beside it: the ingress benchmark
# boots one node `wstbench1` with its data in /dev/shm. Debian's rabbitmq-server drops to
# user rabbitmq, which shares its Erlang cookie with the shared node, so rabbitmqctl
# reaches every node. Callers stop the cluster from a trap, so a failed run removes it.
set -euo pipefail

dir="${WST_CLUSTER_DIR:-/var/tmp/wst-cluster}"
base_port="${WST_CLUSTER_PORT:-5701}"
read -r -a nodes <<<"$(seq -s ' ' 1 "${WST_CLUSTER_NODES:-3}")"
name="${WST_CLUSTER_NAME:-wst}"
ctl_timeout=60

node_name() { echo "$name$1@localhost"; }
node_dir() { echo "$dir/$name$1"; }
node_port() { echo $((base_port + $1 - 1)); }
ctl() { local n=$1; shift; timeout $((ctl_timeout + 10)) rabbitmqctl -q -n "$(node_name "$n")" "$@" </dev/null; }

urls() {
  local out=()
  for n in "${nodes[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$(node_port "$n")/%2f"); done
  (IFS=,; echo "${out[*]}")
}

# Starts node N's Erlang VM in the background (its data folder kept, so a killed member
# comes back as a member).
boot() {
  local n=$1 d; d=$(node_dir "$n")
  mkdir -p "$d/mnesia" "$d/log"
  [ -f "$d/plugins" ] || echo '[].' > "$d/plugins"
  # Its own listener (the packaged /etc/rabbitmq/rabbitmq.conf pins 5672).
  printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$(node_port "$n")" > "$d/rabbitmq.conf"
  chown -R rabbitmq:rabbitmq "$d"
  RABBITMQ_NODENAME="$(node_name "$n")" RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
    RABBITMQ_DIST_PORT=$(( $(node_port "$n") + 20000 )) RABBITMQ_MNESIA_BASE="$d/mnesia" \
    RABBITMQ_LOG_BASE="$d/log" RABBITMQ_ENABLED_PLUGINS_FILE="$d/plugins" \
    RABBITMQ_PID_FILE="$d/pid" setsid nohup rabbitmq-server > "$d/log/console.log" 2>&1 < /dev/null &
}

await() {
  local n=$1 deadline=$((SECONDS + 120))
  # await_startup gives up at once while the VM has not registered with epmd yet.
  until ctl "$n" await_startup --timeout "$ctl_timeout" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "rabbit-cluster: $(node_name "$n") did not start; its log:" >&2
      tail -n 30 "$(node_dir "$n")/log/console.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

vm_pid() {
  local f; f="$(node_dir "$1")/pid"
  [ -s "$f" ] && cat "$f"
}

stop_all() {
  for n in "${nodes[@]}"; do
    if [ -d "$(node_dir "$n")" ]; then
      ctl "$n" stop >/dev/null 2>&1 || true
      pid=$(vm_pid "$n" || true)
      [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null || true
    fi
    # A VM whose pid file is gone (a run killed half way through boot): the node name
    # is only in its environment.
    for p in $(pgrep -x beam.smp || true); do
      if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$(node_name "$n")"; then
        kill -9 "$p" 2>/dev/null || true
      fi
    done
  done
  rm -rf "$dir"
}

# Column $2 of the list_queues line of queue $1, asked of the first node that answers
# (a stopped or killed node cannot).
queue_info() {
  local q=$1 col=$2 n out
  for n in "${nodes[@]}"; do
    if out=$(ctl "$n" list_queues name "$col" --no-table-headers 2>/dev/null); then
      awk -v q="$q" '$1 == q { $1 = ""; print }' <<<"$out"
      return 0
    fi
  done
  return 1
}

case "${1:-}" in
  start)
    stop_all
    mkdir -p "$dir"
    # Every parent must be traversable by user rabbitmq.
    chmod 755 "$dir"
    for n in "${nodes[@]}"; do boot "$n"; done
    for n in "${nodes[@]}"; do await "$n"; done
    for n in "${nodes[@]:1}"; do
      ctl "$n" stop_app >/dev/null
      ctl "$n" join_cluster "$(node_name 1)" >/dev/null
      ctl "$n" start_app >/dev/null
      await "$n"
    done
    members=$(ctl 1 cluster_status --formatter json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')
    [ "$members" = "${#nodes[@]}" ] || { echo "rabbit-cluster: $members nodes running, want ${#nodes[@]}" >&2; exit 1; }
    urls
    ;;
  stop) stop_all ;;
  urls) urls ;;
  node) node_name "$2" ;;
  stop-app) ctl "$2" stop_app >/dev/null ;;
  start-app) ctl "$2" start_app >/dev/null; await "$2" ;;
  kill)
    pid=$(vm_pid "$2") || { echo "rabbit-cluster: no pid for node $2" >&2; exit 1; }
    kill -9 "$pid"
    # Until the VM is gone (its port closed), so a restart does not find it running.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$(node_dir "$2")/pid"
    ;;
  boot) boot "$2"; await "$2" ;;
  leader) queue_info "$2" leader | tr -d ' ' ;;
  members) queue_info "$2" members | tr -d '[],' | tr ' ' '\n' | sed '/^$/d' ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
