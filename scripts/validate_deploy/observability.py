"""deploy/observability: prometheus-rules.yaml (schema, every alert with a severity, a
summary, a description and a runbook link to a heading of docs/runbook.md, each alert unit
tested) and grafana-dashboard.json (structure, the datasource variable, every panel with
queries); every metric either names is one the binaries emit (app.metrics()). Then
promtool: `check rules`, `test rules` (prometheus-rules.test.yaml), and the dashboard's
queries parsed as recording rules.

Every problem is reported with error(); without promtool (validate-deploy.sh requires it
in CI) its checks are skipped with a line saying so.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Set
from pathlib import Path

import yaml

from . import app
from .common import LoadError, clean_since, error, error_mark, load_yaml_docs, say
from .schemas import Validators

OBS = "deploy/observability"
RULES = f"{OBS}/prometheus-rules.yaml"
RULES_TEST = f"{OBS}/prometheus-rules.test.yaml"
DASHBOARD = f"{OBS}/grafana-dashboard.json"
RUNBOOK = "docs/runbook.md"
METRIC_RE = re.compile(r"\bworkos_sync_[a-z0-9_]+")
SEVERITIES = ("critical", "warning", "info")
# Grafana's interval variables, replaced so that promtool can parse the queries.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m"}


def check_metric_names(where: str, expr: str, known: Set[str] | None) -> None:
    """Every workos_sync_* metric in `expr` is emitted (a histogram's series count too);
    not checked without the binary's list (already reported)."""
    if known is None:
        return
    for m in METRIC_RE.findall(expr):
        base = re.sub(r"_(bucket|sum|count)$", "", m)
        if m not in known and base not in known:
            error(f"{where}: metric {m} is not emitted by the binaries (`workos-sync debug metrics`)")


def github_anchor(heading: str) -> str:
    a = heading.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def runbook_anchors(root: Path) -> set[str]:
    runbook = root / RUNBOOK
    if not runbook.is_file():
        return set()
    return {github_anchor(h) for h in re.findall(r"^#+\s+(.*)$", runbook.read_text(), re.M)}


# --- prometheus-rules.yaml -----------------------------------------------------------------


def load_rule_spec(root: Path, validators: Validators) -> dict | None:
    """The PrometheusRule's spec, schema-checked."""
    try:
        docs = load_yaml_docs(root / RULES, RULES)
    except LoadError as e:
        error(str(e))
        docs = []
    spec = None
    for d in docs:
        validators.validate(d, RULES)
        if isinstance(d, dict) and d.get("kind") == "PrometheusRule":
            spec = d.get("spec")
    if not isinstance(spec, dict):
        error(f"{RULES}: no PrometheusRule")
        return None
    return spec


def check_alert(rule: dict, anchors: set[str], known: Set[str] | None) -> None:
    name = rule["alert"]
    if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
        error(f"{RULES}: {name}: labels.severity must be critical, warning or info")
    ann = rule.get("annotations") or {}
    for key in ("summary", "description", "runbook"):
        if not str(ann.get(key, "")).strip():
            error(f"{RULES}: {name}: annotation {key} is missing")
    anchor = str(ann.get("runbook", "")).partition("#")[2]
    if anchor and anchor not in anchors:
        error(f"{RULES}: {name}: runbook anchor #{anchor} is not a heading of {RUNBOOK}")
    check_metric_names(f"{RULES}: {name}", str(rule.get("expr", "")), known)


def check_alerts(spec: dict, anchors: set[str], known: Set[str] | None) -> list[str]:
    """The alert names, each alert checked."""
    alerts = []
    for g in spec.get("groups") or []:
        for rule in g.get("rules") or []:
            if "alert" in rule:
                alerts.append(rule["alert"])
                check_alert(rule, anchors, known)
    if len(set(alerts)) != len(alerts):
        error(f"{RULES}: duplicate alert names")
    return alerts


# --- grafana-dashboard.json ----------------------------------------------------------------


def dashboard_panels(dash: dict) -> list[dict]:
    """Every panel, collapsed rows' panels (kept inside the row) included."""
    panels = list(dash.get("panels") or [])
    for p in list(panels):
        panels.extend(p.get("panels") or [])
    return panels


def check_panel(p: dict, known: Set[str] | None) -> list[tuple[str, str]]:
    """The panel's (title, query) pairs, the panel checked."""
    title = p.get("title") or f"panel {p.get('id')}"
    if not isinstance(p.get("gridPos"), dict):
        error(f"{DASHBOARD}: {title}: no gridPos")
    if (p.get("datasource") or {}).get("uid") != "${datasource}":
        error(f"{DASHBOARD}: {title}: datasource must be the ${{datasource}} variable")
    targets = p.get("targets") or []
    if not targets:
        error(f"{DASHBOARD}: {title}: no targets")
    refids = [t.get("refId") for t in targets]
    if len(set(refids)) != len(refids) or None in refids:
        error(f"{DASHBOARD}: {title}: each target needs a distinct refId")
    exprs = []
    for t in targets:
        expr = str(t.get("expr") or "").strip()
        if not expr:
            error(f"{DASHBOARD}: {title}: target {t.get('refId')} has no expr")
        exprs.append((title, expr))
        check_metric_names(f"{DASHBOARD}: {title}", expr, known)
    return exprs


def check_dashboard(root: Path, known: Set[str] | None) -> list[tuple[str, str]]:
    """The dashboard's (panel title, query) pairs, the dashboard checked."""
    mark = error_mark()
    try:
        dash = json.loads((root / DASHBOARD).read_text())
    except (OSError, ValueError) as e:
        error(f"{DASHBOARD}: {e}")
        return []
    if not isinstance(dash, dict):
        error(f"{DASHBOARD}: not a JSON object")
        return []
    if not dash:
        return []
    for key in ("title", "uid", "schemaVersion", "panels"):
        if key not in dash:
            error(f"{DASHBOARD}: no {key}")
    tvars = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
    ds = tvars.get("datasource") or {}
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        error(f"{DASHBOARD}: needs a datasource variable `datasource` of type prometheus")
    panels = dashboard_panels(dash)
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        error(f"{DASHBOARD}: duplicate panel ids")
    queries = [pair for p in panels if p.get("type") != "row" for pair in check_panel(p, known)]
    if clean_since(mark) and known is not None:
        n = sum(1 for p in panels if p.get("type") != "row")
        say(f"{DASHBOARD}: {n} panels, each with queries on metrics the code emits")
    return queries


# --- promtool ------------------------------------------------------------------------------


def run_promtool(promtool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def promtool_must_pass(promtool: str, args: list[str], cwd: Path, what: str) -> None:
    p = run_promtool(promtool, args, cwd)
    if p.returncode != 0:
        error(f"{what}:\n{(p.stdout + p.stderr).strip()}")


def without_annotations(spec: dict) -> dict:
    """The spec for the unit tests: promtool compares annotations verbatim."""
    stripped = copy.deepcopy(spec)
    for g in stripped.get("groups") or []:
        for r in g.get("rules") or []:
            r.pop("annotations", None)
    return stripped


def promtool_unit_tests(root: Path, promtool: str, spec: dict, alerts: list[str], t: Path) -> None:
    """Every alert has a unit test, and they pass (against the spec without annotations)."""
    test_file = root / RULES_TEST
    if not test_file.is_file():
        error(f"{RULES_TEST} is missing")
        return
    (t / "workos-sync.rules.yaml").write_text(yaml.safe_dump(without_annotations(spec), sort_keys=False))
    shutil.copy(test_file, t / "rules.test.yaml")
    tested = set(re.findall(r"alertname:\s*(\S+)", test_file.read_text()))
    for a in alerts:
        if a not in tested:
            error(f"{RULES_TEST}: no unit test for {a}")
    promtool_must_pass(promtool, ["test", "rules", "rules.test.yaml"], t, f"{RULES}: promtool test rules failed")


def grafana_to_promql(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def promtool_dashboard_queries(promtool: str, queries: list[tuple[str, str]], t: Path) -> None:
    """The dashboard's queries parse, checked as recording rules."""
    if not queries:
        return
    records = [{"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)} for i, (_, expr) in enumerate(queries)]
    (t / "dash.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    promtool_must_pass(promtool, ["check", "rules", "dash.rules.yaml"], t, f"{DASHBOARD}: a query does not parse (promtool)")


def check_with_promtool(root: Path, promtool: str, spec: dict, alerts: list[str],
                        queries: list[tuple[str, str]]) -> str:
    """promtool's version, once its checks have run."""
    version = run_promtool(promtool, ["--version"], root / OBS).stdout.splitlines()[:1]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "full.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        promtool_must_pass(promtool, ["check", "rules", "full.rules.yaml"], t, f"{RULES}: promtool check rules failed")
        promtool_unit_tests(root, promtool, spec, alerts, t)
        promtool_dashboard_queries(promtool, queries, t)
    return " ".join(version)


# --- driver --------------------------------------------------------------------------------


def check_observability(root: Path, validators: Validators, promtool: str | None) -> None:
    mark = error_mark()
    known = app.metrics()
    anchors = runbook_anchors(root)
    spec = load_rule_spec(root, validators)
    alerts = check_alerts(spec, anchors, known) if spec is not None else []
    queries = check_dashboard(root, known)
    if not promtool:
        say(f"{OBS}: promtool unavailable; PromQL syntax and alert unit tests skipped")
        return
    if spec is None:
        return
    version = check_with_promtool(root, promtool, spec, alerts, queries)
    if clean_since(mark):
        say(
            f"{RULES}: {len(alerts)} alerts with severity, summary, description and runbook section; "
            f"promtool ({version}) check rules and unit tests pass; dashboard queries parse"
        )
