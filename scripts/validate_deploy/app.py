"""What the binaries declare and emit, asked of the binary itself (the single source; no
mirror of the code is kept here): `$WORKOS_SYNC_CLI debug topology` and
`$WORKOS_SYNC_CLI debug metrics`, run on the compiled-in defaults (WORKOS_SYNC__* and
AMQP_URL are removed from their environment).

WORKOS_SYNC_CLI is required: cli_problem() says why it is unusable, and __main__ stops
before any check. A run that fails or prints something unexpected is reported with
error(), and its getter returns None (the checks that need it are then skipped).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from typing import Any

from .common import error

CLI_ENV = "WORKOS_SYNC_CLI"


def cli_problem() -> str | None:
    """Why WORKOS_SYNC_CLI does not name a runnable binary; None when it does."""
    cli = os.environ.get(CLI_ENV)
    if not cli:
        return (
            f"{CLI_ENV} is not set: it must name the workos-sync binary, which prints the topology "
            "and metric names the checks compare with (scripts/validate-deploy.sh builds it in a "
            "source tree)"
        )
    if not (os.path.isfile(cli) and os.access(cli, os.X_OK)):
        return f"{CLI_ENV}={cli} is not an executable file"
    return None


def debug_json(*args: str) -> Any | None:
    """`$WORKOS_SYNC_CLI debug <args>` on the default settings, parsed; None on failure."""
    cli = os.environ[CLI_ENV]
    what = f"{cli} debug {' '.join(args)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKOS_SYNC__") and k != "AMQP_URL"}
    try:
        p = subprocess.run([cli, "debug", *args], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        error(f"{what}: {e}")
        return None
    if p.returncode != 0:
        error(f"{what} failed: {p.stderr.strip()}")
        return None
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        error(f"{what} printed no JSON: {e}")
        return None


@functools.cache
def topology() -> dict | None:
    """Exchanges (name -> type), queues (name -> arguments) and bindings (a set of
    (source, destination, routing key)) the app declares for the default settings."""
    printed = debug_json("topology")
    try:
        return {
            "exchanges": dict(printed["exchanges"]),
            "queues": {name: dict(args) for name, args in printed["queues"].items()},
            "bindings": {tuple(b) for b in printed["bindings"]},
        }
    except (TypeError, KeyError, ValueError, AttributeError):
        if printed is not None:
            error(f"`workos-sync debug topology` printed an unexpected shape: {json.dumps(printed)[:200]}")
        return None


@functools.cache
def metrics() -> frozenset[str] | None:
    """Every metric name the binaries emit."""
    printed = debug_json("metrics")
    if printed is None:
        return None
    if not isinstance(printed, list) or not printed or not all(isinstance(m, str) for m in printed):
        error(f"`workos-sync debug metrics` printed no list of metric names: {json.dumps(printed)[:200]}")
        return None
    return frozenset(printed)
