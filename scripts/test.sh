#!/usr/bin/env bash
# The test command of the README: starts the local services if needed, installs WorkOS's
# emulator (npm workos@0.14.0) for the contract tests if needed, starts a three-node
# RabbitMQ cluster beside the shared broker for the cluster tests (removed again when
# this script ends, however it ends), then runs every test of the workspace against the
# real PostgreSQL and RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
WORKOS_EMULATOR_BIN="$(bash scripts/emulator.sh)"
export WORKOS_EMULATOR_BIN
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
trap 'bash scripts/rabbit-cluster.sh stop' EXIT
WST_CLUSTER_URLS="$(bash scripts/rabbit-cluster.sh start)"
export WST_CLUSTER_URLS
# `-p <crate>` (or `--package`) narrows the run to that crate; `--workspace` would win
# over it, so it is given only when no package is named.
scope=(--workspace)
for a in "$@"; do
  case "$a" in -p|--package|--package=*|-p?*) scope=() ;; esac
done
cargo test "${scope[@]}" --locked "$@"
