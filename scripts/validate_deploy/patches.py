"""What kustomize lets through silently in a kustomization's JSON 6902 `patches`, checked
against the resources they apply to (the kustomization's `resources`: each directory
rendered by kustomize, each file read):
  - a `target` that selects no resource: kustomize skips the patch without a word;
  - a `replace` of a field that does not exist: kustomize adds it (RFC 6902 requires it to
    exist), so a typo in the path leaves the field meant unchanged. A path that an earlier
    `add` of the kustomization creates counts as existing.
Every other mistake in a patch (a missing parent, a bad `remove` or `test`, bad YAML) is
kustomize's to refuse, and it does. Only `resources` are read as inputs (our
kustomizations have no components or generators). Problems are reported with error().
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .common import LoadError, error, ident, load_yaml_docs, parse_yaml_docs
from .render import render

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# The selector fields kustomize matches, each as an anchored regular expression (label and
# annotation selectors are not evaluated here).
TARGET_FIELDS = ("group", "version", "kind", "name", "namespace")


def selector_values(doc: dict) -> dict[str, str]:
    """What a patch target's fields are matched against."""
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    md = doc.get("metadata") or {}
    return {
        "group": group,
        "version": version,
        "kind": str(doc.get("kind", "")),
        "name": str(md.get("name", "")),
        "namespace": str(md.get("namespace") or ""),
    }


def target_selects(target: dict, doc: dict) -> bool:
    values = selector_values(doc)
    return all(re.fullmatch(str(target[f]), values[f]) for f in TARGET_FIELDS if f in target)


def pointer_exists(doc: Any, path: str) -> bool:
    """The JSON pointer `path` names an existing value of `doc`."""
    node = doc
    for token in path.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False
    return True


def patch_ops(patch: dict, d: Path) -> list[dict]:
    """The operations of a JSON 6902 patch, inline or in a file; none for a strategic-merge
    patch (or one kustomize has already refused)."""
    try:
        if "patch" in patch:
            docs = parse_yaml_docs(str(patch["patch"]), "patch")
        else:
            docs = load_yaml_docs(d / str(patch.get("path")), "patch")
    except LoadError:
        return []
    ops = docs[0] if len(docs) == 1 else None
    return [op for op in ops if isinstance(op, dict)] if isinstance(ops, list) else []


def patch_inputs(kustomize: list[str], d: Path, kustomization: dict, where: str) -> list[dict] | None:
    """The resources the kustomization's patches apply to."""
    inputs: list[dict] = []
    for r in kustomization.get("resources") or []:
        p, rwhere = d / str(r), f"{where}: resource {r}"
        try:
            docs = render(kustomize, p, rwhere) if p.is_dir() else load_yaml_docs(p, rwhere)
        except LoadError as e:
            error(str(e))
            return None
        if docs is None:
            return None
        inputs.extend(doc for doc in docs if isinstance(doc, dict))
    return inputs


def load_kustomization(d: Path) -> tuple[str, dict] | None:
    """The kustomization file's name and content; None if kustomize would refuse it."""
    kfile = next((d / n for n in KUSTOMIZATION_FILES if (d / n).is_file()), None)
    if kfile is None:
        return None
    try:
        docs = load_yaml_docs(kfile, kfile.name)
    except LoadError:
        return None
    return (kfile.name, docs[0]) if docs and isinstance(docs[0], dict) else None


def check_replaces(where: str, ops: list[dict], selected: list[dict], added: set[str]) -> None:
    """Each `replace` path exists in every selected resource, or under a path an earlier
    `add` created (`added`, which this extends)."""
    for op in ops:
        path = str(op.get("path", ""))
        if op.get("op") == "add":
            added.add(path)
        elif op.get("op") == "replace" and not any(path == a or path.startswith(a + "/") for a in added):
            for doc in selected:
                if not pointer_exists(doc, path):
                    error(f"{where}: replace {path}: {ident(doc)} has no such field (kustomize adds it instead)")


def check_patches(kustomize: list[str], d: Path, where: str) -> None:
    """The patches of the kustomization in `d` (rendered by kustomize without complaint)."""
    loaded = load_kustomization(d)
    if loaded is None:
        return
    kfile, kustomization = loaded
    targeted = [(i, p) for i, p in enumerate(kustomization.get("patches") or [])
                if isinstance(p, dict) and isinstance(p.get("target"), dict)]
    if not targeted:
        return
    inputs = patch_inputs(kustomize, d, kustomization, where)
    if inputs is None:
        return
    added: set[str] = set()
    for i, patch in targeted:
        pwhere = f"{where}/{kfile}: patches[{i}]"
        try:
            selected = [doc for doc in inputs if target_selects(patch["target"], doc)]
        except re.error as e:
            error(f"{pwhere}: target {patch['target']} is not a valid selector: {e}")
            continue
        if not selected:
            error(f"{pwhere}: target {patch['target']} selects no resource (kustomize skips such a patch silently)")
            continue
        check_replaces(pwhere, patch_ops(patch, d), selected, added)
