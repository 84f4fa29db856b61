"""The entry point: `python3 -m validate_deploy ROOT --kustomize CMD [--promtool PATH]
[--no-live-rabbitmq]`. Exits 2 when a required tool is missing (before any check), 1 when
a check found a problem, 0 otherwise."""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from pathlib import Path

from . import __doc__ as OVERVIEW
from . import app
from .common import errors, say
from .k8s import check_k8s
from .observability import check_observability
from .rabbitmq import DEFINITIONS, check_rabbitmq
from .rabbitmq_live import check_rabbitmq_live
from .schemas import Validators


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="validate_deploy", description=OVERVIEW,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="the repository (or a copy of its deploy inputs)")
    ap.add_argument("--kustomize", required=True,
                    help="command that renders a kustomization dir: 'kubectl kustomize' or 'kustomize build'")
    ap.add_argument("--promtool", help="path of promtool (its checks are skipped without it)")
    ap.add_argument("--no-live-rabbitmq", action="store_true", help="skip the import into a local RabbitMQ")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    problem = app.cli_problem()
    if problem:
        print(f"validate-deploy: ERROR: {problem}", file=sys.stderr)
        return 2
    root = args.root.resolve()
    defaults = tomllib.loads((root / "config/default.toml").read_text())
    validators = Validators()
    check_k8s(root, shlex.split(args.kustomize), validators, defaults)
    defs = check_rabbitmq(root, defaults)
    if defs is not None and args.no_live_rabbitmq:
        say(f"{DEFINITIONS}: live import skipped (--no-live-rabbitmq)")
    elif defs is not None:
        check_rabbitmq_live(defs)
    check_observability(root, validators, args.promtool)
    if errors:
        print(f"validate-deploy: {len(errors)} problem(s) in deploy/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
