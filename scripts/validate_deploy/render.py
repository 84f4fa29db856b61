"""Rendering a kustomization with kustomize: `kustomize build` or `kubectl kustomize`, the
command given to __main__ (required; there is no renderer of our own).

A failure (kustomize refuses the kustomization, or cannot run) is reported with error(),
kustomize's own message included; render() then returns None.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .common import LoadError, error, parse_yaml_docs


def render(kustomize: list[str], d: Path, where: str) -> list[dict] | None:
    """The objects `kustomize d` renders."""
    cmd = " ".join(kustomize)
    try:
        p = subprocess.run(kustomize + [str(d)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        error(f"{where}: `{cmd}` failed to run: {e}")
        return None
    if p.returncode != 0:
        error(f"{where}: `{cmd}` failed:\n{p.stderr.strip()}")
        return None
    try:
        docs = parse_yaml_docs(p.stdout, f"{where}: output of `{cmd}`")
    except LoadError as e:
        error(str(e))
        return None
    return docs
