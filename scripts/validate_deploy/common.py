"""Reporting and loading shared by every check: say() prints progress, error() prints a
problem and records it in `errors` (the checks carry on, so one run reports every problem;
__main__ exits non-zero when any was recorded); load_yaml_docs() raises LoadError."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

errors: list[str] = []


def say(msg: str) -> None:
    print(f"validate-deploy: {msg}", flush=True)


def error(msg: str) -> None:
    errors.append(msg)
    print(f"validate-deploy: ERROR: {msg}", file=sys.stderr, flush=True)


def error_mark() -> int:
    """A mark to pass to clean_since(), taken before a group of checks."""
    return len(errors)


def clean_since(mark: int) -> bool:
    """No problem was recorded since error_mark() returned `mark`."""
    return len(errors) == mark


def ident(doc: dict) -> str:
    md = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{md.get('name')}"


class LoadError(Exception):
    pass


def parse_yaml_docs(text: str, where: str) -> list[Any]:
    """The non-empty documents of a YAML stream."""
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise LoadError(f"{where}: not valid YAML: {e}") from e


def load_yaml_docs(path: Path, where: str) -> list[Any]:
    """The non-empty documents of a YAML file; `where` names it in the LoadError."""
    try:
        text = path.read_text()
    except OSError as e:
        raise LoadError(f"{where}: {e}") from e
    return parse_yaml_docs(text, where)
