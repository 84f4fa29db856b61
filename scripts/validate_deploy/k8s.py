"""deploy/k8s: every kustomization (base and each overlay) is rendered by kustomize
(render.py), and its patches are checked for what kustomize lets through (patches.py);
each rendered object, and base/secret.example.yaml, is schema-checked (schemas.py); then
the objects of each rendering are cross-checked (k8s_refs.py). One line says so per
kustomization without a problem.

Every problem is reported with error(); a kustomization that does not render is not
checked further.
"""

from __future__ import annotations

from pathlib import Path

from .common import LoadError, clean_since, error, error_mark, load_yaml_docs, say
from .k8s_refs import CROSS_CHECKS, SECRET_NAME, Rendered, canonical
from .patches import check_patches
from .render import render
from .schemas import Validators

SECRET_TEMPLATE = "deploy/k8s/base/secret.example.yaml"


def secret_template_keys(root: Path, validators: Validators) -> set[str]:
    """The keys of the Secret template (validated too); empty, reported, without one."""
    mark = error_mark()
    try:
        docs = load_yaml_docs(root / SECRET_TEMPLATE, SECRET_TEMPLATE)
    except LoadError as e:
        error(str(e))
        docs = []
    keys: set[str] = set()
    for doc in docs:
        validators.validate(doc, SECRET_TEMPLATE)
        if isinstance(doc, dict) and doc.get("kind") == "Secret" and (doc.get("metadata") or {}).get("name") == SECRET_NAME:
            keys = set((doc.get("stringData") or {}).keys())
    if not keys:
        error(f"{SECRET_TEMPLATE}: no Secret {SECRET_NAME} with stringData")
    elif clean_since(mark):
        say(f"{SECRET_TEMPLATE}: valid (template of {SECRET_NAME}, not applied): {', '.join(sorted(keys))}")
    return keys


def check_kustomization(root: Path, d: Path, kustomize: list[str], validators: Validators,
                        defaults: dict, secret_keys: set[str]) -> None:
    where = str(d.relative_to(root))
    docs = render(kustomize, d, where)
    if docs is None:
        return
    mark = error_mark()
    check_patches(kustomize, d, where)
    for doc in docs:
        validators.validate(doc, where)
    docs = [doc for doc in docs if isinstance(doc, dict)]
    rendered = Rendered(where, canonical(docs, where), defaults, secret_keys)
    for check in CROSS_CHECKS:
        check(rendered)
    if clean_since(mark):
        kinds = sorted({doc["kind"] for doc in docs})
        say(
            f"{where}: {len(docs)} objects rendered by {' '.join(kustomize)}; valid against Kubernetes "
            f"{' and '.join(validators.versions)} schemas (strict) and our CRD schemas; "
            f"cross-references ok ({', '.join(kinds)})"
        )


def check_k8s(root: Path, kustomize: list[str], validators: Validators, defaults: dict) -> None:
    k8s = root / "deploy/k8s"
    if not k8s.is_dir():
        error("deploy/k8s is missing")
        return
    secret_keys = secret_template_keys(root, validators)
    targets = [k8s / "base"] + sorted(p for p in (k8s / "overlays").glob("*") if p.is_dir())
    for d in targets:
        check_kustomization(root, d, kustomize, validators, defaults, secret_keys)
