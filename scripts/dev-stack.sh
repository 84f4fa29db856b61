#!/usr/bin/env bash
# One command for a local stack without Docker: PostgreSQL and RabbitMQ (started, or
# installed from Debian, by scripts/services.sh), a database, migrations, the receiver
# and a worker with a generated webhook secret and lazy-sync token. Prints the URLs and
# a ready `send-test-event` line, and stops everything it started on Ctrl-C.
#
#   scripts/dev-stack.sh           # run until Ctrl-C (receiver :8080, worker :8081);
#                                  # the database and queues stay for the next run
#   scripts/dev-stack.sh --reset   # the same, from an empty database and queues (the
#                                  # previous run's removed first)
#   scripts/dev-stack.sh --smoke   # up, one signed test event through to the table,
#                                  # then, against WorkOS's emulator: `webhooks setup`
#                                  # and `doctor` (exit 0); with SCHEMATHESIS=1 also
#                                  # schemathesis against both /openapi.json documents;
#                                  # everything it started stopped and removed, exit 0
#
# Environment: DEV_DB (database, default workos_sync_dev), RECEIVER_PORT (8080),
# WORKER_PORT (8081), CARGO_TARGET_DIR; WORKOS_WEBHOOK_SECRET and
# WORKOS_SYNC__WORKER__API_TOKEN are kept when set (a real WorkOS endpoint through a
# tunnel signs with its own secret), generated otherwise. The smoke run uses its own
# database, queue prefix and free ports, and removes them at the end, also after a
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
RESET=0
case "${1:-}" in
    --smoke) SMOKE=1 ;;
    --reset) RESET=1 ;;
    "") ;;
    *) echo "usage: scripts/dev-stack.sh [--smoke | --reset]" >&2; exit 2 ;;
esac

bash scripts/services.sh
TARGET="${CARGO_TARGET_DIR:-target}"
echo "dev-stack: building the binaries (debug)" >&2
cargo build --locked -q --bin workos-sync --bin workos-sync-receiver --bin workos-sync-worker
BIN="$TARGET/debug"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
random_hex() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

if [ "$SMOKE" = 1 ]; then
    DB="wst_smoke_$$"
    PREFIX="wst-smoke-$$"
    RECEIVER_PORT="$(free_port)"
    WORKER_PORT="$(free_port)"
else
    DB="${DEV_DB:-workos_sync_dev}"
    PREFIX="workos"
    RECEIVER_PORT="${RECEIVER_PORT:-8080}"
    WORKER_PORT="${WORKER_PORT:-8081}"
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
export WORKOS_WEBHOOK_SECRET="${WORKOS_WEBHOOK_SECRET:-whsec_dev_$(random_hex)}"
export WORKOS_SYNC__WORKER__API_TOKEN="${WORKOS_SYNC__WORKER__API_TOKEN:-tok_dev_$(random_hex)}"
export WORKOS_SYNC__AMQP__PREFIX="$PREFIX"
export WORKOS_SYNC__RECEIVER__BIND="127.0.0.1:$RECEIVER_PORT"
export WORKOS_SYNC__WORKER__HTTP_BIND="127.0.0.1:$WORKER_PORT"
export WORKOS_SYNC__LOG__FORMAT="text"

# The stack's database and its queue prefix's queues and exchanges, removed.
remove_state() {
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    { rabbitmqctl -q list_queues name 2>/dev/null | grep -E "^$PREFIX\." || true; } | while read -r q; do
        rabbitmqctl -q delete_queue "$q" </dev/null >/dev/null 2>&1 || true
    done
    { rabbitmqctl -q list_exchanges name 2>/dev/null | grep -E "^$PREFIX\." || true; } | while read -r x; do
        rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$x\">>), false, <<\"dev-stack\">>)." </dev/null >/dev/null 2>&1 || true
    done
}

PIDS=()
EMULATOR_PID=""
cleanup() {
    local code=$?
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "$EMULATOR_PID" ] && kill "$EMULATOR_PID" 2>/dev/null || true
    [ "$SMOKE" = 1 ] && remove_state
    echo "dev-stack: stopped what it started" >&2
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$RESET" = 1 ]; then
    echo "dev-stack: --reset: removing database $DB and the $PREFIX.* queues and exchanges" >&2
    remove_state
fi

if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$DB\""
fi
"$BIN/workos-sync" migrate >&2

if [ "$SMOKE" = 1 ]; then
    # WorkOS's emulator as the API (lazy sync, webhooks setup, doctor's key check).
    EMULATOR="$(bash scripts/emulator.sh)"
    EMULATOR_PORT="$(free_port)"
    (cd "$(mktemp -d)" && exec "$EMULATOR" emulate --port "$EMULATOR_PORT" --json >/dev/null 2>&1) &
    EMULATOR_PID=$!
    deadline=$((SECONDS + 30))
    until curl -fsS "http://127.0.0.1:$EMULATOR_PORT/health" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "dev-stack: the emulator did not start within 30 s" >&2; exit 1; }
        sleep 0.2
    done
    export WORKOS_API_BASE_URL="http://127.0.0.1:$EMULATOR_PORT"
    export WORKOS_API_KEY=sk_test_default
    # The contract run calls lazy sync far faster than a real application would.
    export WORKOS_SYNC__WORKER__LAZY_SYNC_PER_SECOND=10000
    export WORKOS_SYNC__WORKER__LAZY_SYNC_MAX_IN_FLIGHT=1000
    export WORKOS_SYNC__WORKOS__READS_PER_SECOND=10000
    # Under the contract run's rate the emulator rate-limits (429, Retry-After: 7 s, seen
    # in the worker's log); waiting for it passes the 5 s lazy-sync bound, which answers
    # the documented 503 `workos_timeout` (a server error to schemathesis). The contract
    # run tests the answers, not that bound: give WorkOS 30 s.
    export WORKOS_SYNC__WORKER__LAZY_SYNC_TIMEOUT_MS=30000
fi

"$BIN/workos-sync-receiver" &
PIDS+=($!)
"$BIN/workos-sync-worker" &
PIDS+=($!)

# Ready when both answer /readyz (poll with a deadline).
ready() { curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; }
deadline=$((SECONDS + 60))
until ready "$RECEIVER_PORT" && ready "$WORKER_PORT"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "dev-stack: receiver or worker not ready within 60 s" >&2; exit 1; }
    sleep 0.2
done

WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/api/webhooks/workos"
cat >&2 <<EOF

dev-stack: up
  webhook URL   $WEBHOOK_URL   (secret: $WORKOS_WEBHOOK_SECRET)
  worker        http://127.0.0.1:$WORKER_PORT   (lazy sync token: $WORKOS_SYNC__WORKER__API_TOKEN)
  database      $DATABASE_URL
  send a test event:
    WORKOS_WEBHOOK_SECRET=$WORKOS_WEBHOOK_SECRET $BIN/workos-sync send-test-event --url $WEBHOOK_URL

  the CLI in another shell (workos-sync status, dlq list, backfill…) needs:
    export DATABASE_URL=$DATABASE_URL
    export AMQP_URL='$AMQP_URL'
    export WORKOS_SYNC__AMQP__PREFIX=$PREFIX
    export WORKOS_WEBHOOK_SECRET=$WORKOS_WEBHOOK_SECRET
EOF

if [ "$SMOKE" = 0 ]; then
    echo "dev-stack: Ctrl-C stops everything" >&2
    wait
    exit 0
fi

USER_ID="user_smoke$$"
"$BIN/workos-sync" send-test-event --url "$WEBHOOK_URL" --user-id "$USER_ID" >&2
deadline=$((SECONDS + 30))
until psql "$DATABASE_URL" -Atqc "SELECT 1 FROM users WHERE id = '$USER_ID'" | grep -q 1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "dev-stack: the test event did not reach the users table within 30 s" >&2; exit 1; }
    sleep 0.2
done
echo "dev-stack: smoke: a signed test event reached the users table" >&2

"$BIN/workos-sync" webhooks setup --url "$WEBHOOK_URL" --secret-file "$(mktemp)" >&2
"$BIN/workos-sync" doctor --url "$WEBHOOK_URL" >&2 || { echo "dev-stack: doctor found the smoke stack unhealthy" >&2; exit 1; }

if [ "${SCHEMATHESIS:-0}" = 1 ]; then
    ST="$(bash scripts/schemathesis.sh)"
    # The checks the contract promises: no 5xx, no undocumented status, no body or
    # content type other than documented. `unsupported_method` is left out: a method a
    # path does not serve gets the 404 of an unknown path (the webhook path: 405).
    checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
    for service in "receiver http://127.0.0.1:$RECEIVER_PORT" "worker http://127.0.0.1:$WORKER_PORT"; do
        set -- $service
        echo "dev-stack: schemathesis against the $1 ($2/openapi.json)" >&2
        report="$(mktemp)"
        (cd "$(mktemp -d)" && "$ST" run "$2/openapi.json" --checks "$checks" --max-time "${SCHEMATHESIS_SECS:-30}" \
            --seed 1 -H "Authorization: Bearer $WORKOS_SYNC__WORKER__API_TOKEN" --no-color) >"$report" 2>&1 \
            || { cat "$report" >&2; echo "dev-stack: schemathesis failed against the $1" >&2; exit 1; }
        summary="$(grep -E "^Test cases:" -A1 "$report" | tail -1 | sed 's/^ *//')"
        echo "schemathesis $1: $summary" >&2
    done
fi
echo "dev-stack: smoke ok" >&2
