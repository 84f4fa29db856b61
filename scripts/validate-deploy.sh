#!/usr/bin/env bash
# Validates the deployment files without a Docker engine or a Kubernetes cluster:
#   - docker-compose.yml against the Compose Specification schema, with docker-compose v1
#     (Debian's python package), whose `config -q` needs no daemon. It rejects unknown
#     top-level or service keys (`servces:`, `imag:`) and bad enum values (a misspelt
#     depends_on condition), and checks that every build context exists.
#   - deploy/Dockerfile: builds the three binaries and runs as a non-root USER (grep).
#   - deploy/k8s (every kustomization), deploy/rabbitmq/definitions.json and
#     deploy/observability (alerts, their unit tests, the Grafana dashboard), by the
#     scripts/validate_deploy package (`python3 -m validate_deploy`): see its __init__.py
#     for what is checked and how, and each module's docstring.
#
# Required, and not installed here:
#   - kustomize: `kustomize` (as `kustomize build`) or `kubectl kustomize`; this script
#     fails without either (no registry we can reach ships it).
#   - the workos-sync binary, whose `debug topology` and `debug metrics` are what
#     definitions.json and the alerts and dashboard are compared with: WORKOS_SYNC_CLI, or
#     built here (cargo build -p workos-sync-cli) when ROOT has a Cargo.toml. A ROOT
#     without the sources (the self-test's copies of deploy/) needs WORKOS_SYNC_CLI.
# Installed on first use into a cache directory (VALIDATE_DEPLOY_CACHE, default
# ~/.cache/workos-sync-validate-deploy) when missing:
#   - Python packages pinned in PY_PACKAGES below (kubernetes-validate bundles the
#     Kubernetes JSON schemas: no network needed once installed), with pip --target;
#   - promtool, from Debian's `prometheus` package (extracted, not installed: no daemon);
#     without it (not Debian, say) its checks are skipped, except in CI, where it fails.
# A local RabbitMQ node (rabbitmqctl), when one answers, is used to import
# definitions.json into a throwaway vhost; VALIDATE_DEPLOY_LIVE_RABBITMQ=0 skips that.
#
# Usage: scripts/validate-deploy.sh [ROOT]   (ROOT defaults to the repository root)
# Exits non-zero on the first problem (the deploy/ checks report all of theirs first).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${1:-$(cd "$SCRIPT_DIR/.." && pwd)}"
COMPOSE_FILE_PATH="$ROOT/docker-compose.yml"
DOCKERFILE="$ROOT/deploy/Dockerfile"
BINARIES=(workos-sync-receiver workos-sync-worker workos-sync)
SERVICES=(postgres rabbitmq migrate receiver worker)

fail() {
    echo "validate-deploy: $*" >&2
    exit 1
}

# --- tools -----------------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi
APT_UPDATED=""
apt_update_once() {
    if [ -z "$APT_UPDATED" ]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
}
apt_install() {
    command -v apt-get >/dev/null 2>&1 || fail "$* missing and no apt-get to install it"
    [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ] || fail "$* missing and not root"
    echo "validate-deploy: installing $* (Debian)"
    apt_update_once
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >/dev/null
}

if ! command -v docker-compose >/dev/null 2>&1; then
    apt_install docker-compose
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

# --- deploy/k8s, deploy/rabbitmq, deploy/observability -----------------------------------------
CACHE="${VALIDATE_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workos-sync-validate-deploy}"
mkdir -p "$CACHE"

# Pinned, with every dependency, so a fresh machine validates exactly like this one.
PY_PACKAGES=(
    kubernetes-validate==1.37.0
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    referencing==0.37.0
    rpds-py==2026.9.1
    attrs==26.1.0
    importlib-resources==7.1.0
    packaging==26.4
    typing-extensions==4.16.0
    PyYAML==6.0.4
)
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || fail "python3 >= 3.11 is needed (tomllib)"
py_tag="$(python3 -c 'import sys; print(sys.implementation.cache_tag)')"
py_hash="$(printf '%s\n' "${PY_PACKAGES[@]}" | sha256sum | cut -c1-12)"
PYDEPS="$CACHE/py-$py_tag-$py_hash"
py_ok() { PYTHONPATH="$PYDEPS" python3 -c 'import kubernetes_validate, jsonschema, referencing, yaml' 2>/dev/null; }
if ! py_ok; then
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    echo "validate-deploy: installing ${PY_PACKAGES[0]} and its pinned dependencies into $PYDEPS"
    rm -rf "$PYDEPS.tmp"
    # --target works with pyenv's python and Debian's externally managed one alike.
    python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
        --root-user-action=ignore --target "$PYDEPS.tmp" "${PY_PACKAGES[@]}" \
        || fail "pip install failed"
    rm -rf "$PYDEPS" && mv "$PYDEPS.tmp" "$PYDEPS"
    py_ok || fail "the Python packages do not import after installing them"
fi

if command -v kustomize >/dev/null 2>&1; then
    KUSTOMIZE="kustomize build"
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    KUSTOMIZE="kubectl kustomize"
else
    fail "kustomize is required to render deploy/k8s: install kustomize or kubectl (kubectl kustomize)"
fi

PROMTOOL="$(command -v promtool || true)"
if [ -z "$PROMTOOL" ] && [ -x "$CACHE/promtool/promtool" ]; then
    PROMTOOL="$CACHE/promtool/promtool"
fi
if [ -z "$PROMTOOL" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    echo "validate-deploy: fetching promtool from Debian's prometheus package (extracted only)"
    deb_dir="$(mktemp -d)"
    if ! (cd "$deb_dir" && apt-get download prometheus >/dev/null 2>&1); then
        apt_update_once
        (cd "$deb_dir" && apt-get download prometheus >/dev/null 2>&1) || true
    fi
    if ls "$deb_dir"/prometheus_*.deb >/dev/null 2>&1 \
        && dpkg-deb --fsys-tarfile "$deb_dir"/prometheus_*.deb | tar -x -C "$deb_dir" ./usr/bin/promtool; then
        mkdir -p "$CACHE/promtool"
        mv "$deb_dir/usr/bin/promtool" "$CACHE/promtool/promtool"
        PROMTOOL="$CACHE/promtool/promtool"
    fi
    rm -rf "$deb_dir"
fi
if [ -z "$PROMTOOL" ]; then
    # Locally (not Debian, say) the rest still runs; CI must have it.
    [ "${CI:-}" != "true" ] || fail "promtool unavailable (needed for the alert checks)"
    echo "validate-deploy: WARNING: promtool unavailable; PromQL checks and alert unit tests skipped"
fi

# What the binaries declare and emit, from the binary itself (`workos-sync debug
# topology|metrics`), the single source: WORKOS_SYNC_CLI if set, else built here.
if [ -z "${WORKOS_SYNC_CLI:-}" ]; then
    [ -f "$ROOT/Cargo.toml" ] || fail "WORKOS_SYNC_CLI is not set and $ROOT has no sources to build it from: set it to the workos-sync binary"
    command -v cargo >/dev/null 2>&1 || fail "WORKOS_SYNC_CLI is not set and there is no cargo to build it: set it to the workos-sync binary"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
    (cd "$ROOT" && cargo build -q --locked -p workos-sync-cli) || fail "cannot build workos-sync"
    export WORKOS_SYNC_CLI="$CARGO_TARGET_DIR/debug/workos-sync"
fi
[ -f "$WORKOS_SYNC_CLI" ] && [ -x "$WORKOS_SYNC_CLI" ] \
    || fail "WORKOS_SYNC_CLI=$WORKOS_SYNC_CLI is not an executable file"
export WORKOS_SYNC_CLI

# The compose file's commands and healthchecks name subcommands the CLI really has (a
# healthcheck calling a missing `workos-sync probe` would only fail at run time).
rendered="$(mktemp)"
docker-compose --project-directory "$ROOT" -f "$COMPOSE_FILE_PATH" config >"$rendered" \
    || fail "docker-compose config failed"
PYTHONPATH="$PYDEPS${PYTHONPATH:+:$PYTHONPATH}" python3 - "$rendered" "$WORKOS_SYNC_CLI" <<'PY' \
    || { rm -f "$rendered"; fail "docker-compose.yml runs a command the binaries do not have (see above)"; }
import subprocess, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
cli, bad, checked = sys.argv[2], [], 0
for name, svc in (doc.get("services") or {}).items():
    hc = (svc.get("healthcheck") or {}).get("test") or []
    for argv in (svc.get("command") or [], hc[1:] if hc[:1] == ["CMD"] else []):
        if argv[:1] != ["workos-sync"] or len(argv) < 2:
            continue
        checked += 1
        if subprocess.run([cli, argv[1], "--help"], capture_output=True).returncode != 0:
            bad.append(f"{name}: workos-sync {argv[1]}")
for b in bad:
    print(f"validate-deploy: no such command: {b}", file=sys.stderr)
print(f"validate-deploy: {checked} compose command(s) of workos-sync exist in the binary")
sys.exit(1 if bad else 0)
PY
rm -f "$rendered"
grep -q 'workos-sync", "probe"' "$COMPOSE_FILE_PATH" \
    || fail "docker-compose.yml: the receiver and worker healthchecks should use workos-sync probe"

checker_args=("$ROOT" --kustomize "$KUSTOMIZE")
[ -z "$PROMTOOL" ] || checker_args+=(--promtool "$PROMTOOL")
[ "${VALIDATE_DEPLOY_LIVE_RABBITMQ:-1}" != "0" ] || checker_args+=(--no-live-rabbitmq)
# -P: the package and its dependencies come from PYTHONPATH only, not from the current directory.
PYTHONPATH="$SCRIPT_DIR:$PYDEPS${PYTHONPATH:+:$PYTHONPATH}" python3 -P -m validate_deploy "${checker_args[@]}" \
    || fail "deploy/ is invalid (see above)"

echo "validate-deploy: ok"
