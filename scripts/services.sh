#!/usr/bin/env bash
# Makes sure the local PostgreSQL and RabbitMQ the tests use are running (the non-Docker
# path). Starts them when they are installed but down; installs them from Debian when
# missing. Idempotent; safe to run repeatedly.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && rabbitmqctl -q status >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "services: installing postgresql and rabbitmq-server from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql rabbitmq-server >/dev/null
fi

if ! pg_up; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! rabbit_up; then
  echo "services: starting RabbitMQ" >&2
  rabbitmq-server -detached || true
  rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 || true
fi

for i in $(seq 1 120); do
  if pg_up && rabbit_up; then break; fi
  sleep 1
done
pg_up || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
rabbit_up || { echo "services: RabbitMQ is not reachable on 127.0.0.1:5672" >&2; exit 1; }

# Leftovers of killed test runs (a failing test cleans up itself: testkit's TestPrefix
# and TestDb): databases wst_*, queues and exchanges wst-*. Only provably stale ones go:
# every creator puts its process id in the name (testkit `wst-p<pid>-<hex>`, scripts
# `wst-<what>-<pid>`), and a name is removed only when that process is gone, so a test
# run, a benchmark or a dev stack started beside this one keeps its databases and
# queues. Names without a pid (the migrated templates wst_tpl_*, fixed benchmark
# prefixes) are kept; a database must also have no connection left.
# The pid a name carries: its first part (split at - and _, before any .) that is
# p<digits> or <digits> of at most 7 digits (pid_max is 4194304).
owner_pid() {
  local base="${1%%.*}" part
  local IFS='-_'
  for part in $base; do
    if [[ "$part" =~ ^p?([0-9]{1,7})$ ]]; then echo "${BASH_REMATCH[1]}"; return; fi
  done
}
stale() { local pid; pid="$(owner_pid "$1")"; [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; }
# rabbitmqctl has no command to delete an exchange and the management plugin
# (rabbitmqadmin) is not enabled here, so exchanges go through `rabbitmqctl eval` of the
# broker's own rabbit_exchange:delete/3 (RabbitMQ 3.10 to 4.x).
# `|| true`: no leftovers is the normal case, and grep then exits 1 (pipefail).
{ rabbitmqctl -q list_queues name 2>/dev/null | grep -E '^wst-' || true; } | while read -r q; do
  stale "$q" || continue
  rabbitmqctl -q delete_queue "$q" </dev/null >/dev/null 2>&1 || true
done
{ rabbitmqctl -q list_exchanges name 2>/dev/null | grep -E '^wst-' || true; } | while read -r x; do
  stale "$x" || continue
  rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$x\">>), false, <<\"services.sh\">>)." </dev/null \
    >/dev/null 2>&1 || true
done
echo "services: PostgreSQL and RabbitMQ are up" >&2
psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
  "SELECT d.datname FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid WHERE d.datname LIKE 'wst\_%' AND s.numbackends = 0" 2>/dev/null \
  | while read -r db; do
      stale "$db" || continue
      psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done
