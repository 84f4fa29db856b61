#!/usr/bin/env bash
# Validates the deployment files without a Docker engine:
#   - docker-compose.yml against the Compose Specification schema, with docker-compose v1
#     (Debian's python package), whose `config -q` needs no daemon. It rejects unknown
#     top-level or service keys (`servces:`, `imag:`) and bad enum values (a misspelt
#     depends_on condition), and checks that every build context exists.
#   - deploy/Dockerfile: builds the three binaries and runs as a non-root USER (grep).
#
# Usage: scripts/validate-deploy.sh [ROOT]   (ROOT defaults to the repository root)
# Exits non-zero on the first problem.
set -euo pipefail

ROOT="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
COMPOSE_FILE_PATH="$ROOT/docker-compose.yml"
DOCKERFILE="$ROOT/deploy/Dockerfile"
BINARIES=(workos-sync-receiver workos-sync-worker workos-sync)
SERVICES=(postgres rabbitmq migrate receiver worker)

fail() {
    echo "validate-deploy: $*" >&2
    exit 1
}

# --- tools -----------------------------------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "validate-deploy: installing docker-compose (Debian package)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || fail "docker-compose missing and not root"
        SUDO="sudo"
    fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker-compose >/dev/null
fi

# --- docker-compose.yml ------------------------------------------------------------------
[ -f "$COMPOSE_FILE_PATH" ] || fail "missing $COMPOSE_FILE_PATH"
[ -f "$DOCKERFILE" ] || fail "missing $DOCKERFILE"

if ! docker-compose --project-directory "$ROOT" -f "$COMPOSE_FILE_PATH" config -q; then
    fail "docker-compose.yml is invalid (see above)"
fi
echo "validate-deploy: docker-compose.yml matches the Compose Specification"

services="$(docker-compose --project-directory "$ROOT" -f "$COMPOSE_FILE_PATH" config --services)"
for s in "${SERVICES[@]}"; do
    grep -qx "$s" <<<"$services" || fail "docker-compose.yml has no service '$s'"
done
echo "validate-deploy: services present: ${SERVICES[*]}"

# --- deploy/Dockerfile ---------------------------------------------------------------------
# Instructions only: a binary named in a comment does not count.
instructions="$(grep -Ev '^[[:space:]]*#' "$DOCKERFILE")"
for b in "${BINARIES[@]}"; do
    # Whole names only: `workos-sync` must not be satisfied by `workos-sync-worker`.
    grep -Eq "target/release/${b}([^A-Za-z0-9_-]|\$)" <<<"$instructions" \
        || fail "deploy/Dockerfile does not take the binary '$b' from target/release"
done
grep -Eiq '^[[:space:]]*COPY[[:space:]]+--from=.*[[:space:]]/usr/local/bin/?[[:space:]]*$' \
    <<<"$instructions" || fail "deploy/Dockerfile copies no binary into /usr/local/bin"

# The last USER instruction decides who the container runs as.
last_user="$(grep -Ei '^[[:space:]]*USER[[:space:]]+' <<<"$instructions" | tail -n 1 \
    | awk '{print $2}' || true)"
[ -n "$last_user" ] || fail "deploy/Dockerfile has no USER instruction (would run as root)"
case "${last_user%%:*}" in
    root | 0) fail "deploy/Dockerfile runs as root (USER $last_user)" ;;
esac
echo "validate-deploy: Dockerfile ships ${BINARIES[*]} and runs as USER $last_user"

# --- deploy/k8s ------------------------------------------------------------------------------
# PLACEHOLDER: when deploy/k8s exists, validate its manifests here too (not written yet).

echo "validate-deploy: ok"
