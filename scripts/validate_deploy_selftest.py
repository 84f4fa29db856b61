#!/usr/bin/env python3
"""Proves scripts/validate-deploy.sh catches mistakes: copies the repository's deploy
inputs to a temporary directory once per case, introduces one typo, runs the validator on
the copy and expects a non-zero exit with a telling message. CI runs it after
validate-deploy.sh (.ci/run); it takes about two minutes.

The copies have no sources to build the workos-sync binary from, and the validator needs
it (`workos-sync debug topology|metrics`), so WORKOS_SYNC_CLI must name it:

    WORKOS_SYNC_CLI=/var/tmp/workos-sync-target/debug/workos-sync \
        python3 scripts/validate_deploy_selftest.py [-k SUBSTRING] [-v]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, file, old text, new text, expected substring of the output, needs the live broker)
CASES = [
    ("replicas is a string", "deploy/k8s/base/receiver.yaml",
     "  revisionHistoryLimit: 5\n", "  replicas: \"two\"\n  revisionHistoryLimit: 5\n",
     "'two' is not of type 'integer'", False),
    ("containers misspelt", "deploy/k8s/base/worker.yaml",
     "      containers:\n", "      contaners:\n",
     "'contaners' was unexpected", False),
    ("unknown field", "deploy/k8s/base/receiver.yaml",
     "      terminationGracePeriodSeconds: 40\n", "      terminationGracePeriod: 40\n",
     "terminationGracePeriod", False),
    ("apiVersion typo", "deploy/k8s/base/worker.yaml",
     "apiVersion: apps/v1\nkind: Deployment", "apiVersion: apps/v2\nkind: Deployment",
     "Couldn't find schema for kind Deployment", False),
    ("bad enum value", "deploy/k8s/base/receiver.yaml",
     "              protocol: TCP\n", "              protocol: TPC\n",
     "'TPC' is not one of", False),
    ("memory quantity typo", "deploy/k8s/base/worker.yaml",
     "              memory: 96Mi\n", "              memory: 96MI\n",
     "'96MI' is not a Kubernetes quantity", False),
    ("Service targets an unnamed port", "deploy/k8s/base/receiver.yaml",
     "      targetPort: http\n", "      targetPort: htp\n",
     "targets port 'htp'", False),
    ("Secret key typo", "deploy/k8s/base/receiver.yaml",
     "                  key: AMQP_URL\n", "                  key: AMQP_UR\n",
     "workos-sync-secrets/AMQP_UR", False),
    ("ConfigMap setting typo", "deploy/k8s/base/configmap.yaml",
     "WORKOS_SYNC__LOG__FORMAT:", "WORKOS_SYNC__LOG__FROMAT:",
     "WORKOS_SYNC__LOG__FROMAT is not a setting", False),
    ("Ingress body size differs from receiver.max_body_bytes", "deploy/k8s/base/receiver.yaml",
     'proxy-body-size: "1m"', 'proxy-body-size: "10m"',
     "does not equal receiver.max_body_bytes", False),
    ("KEDA value not a string", "deploy/k8s/base/worker-autoscaling.yaml",
     'value: "500"', "value: 500",
     "500 is not of type 'string'", False),
    ("KEDA unknown field", "deploy/k8s/base/worker-autoscaling.yaml",
     "  cooldownPeriod: 120\n", "  coolDownPeriod: 120\n",
     "coolDownPeriod", False),
    ("KEDA wrong queue", "deploy/k8s/base/worker-autoscaling.yaml",
     "queueName: workos.events", "queueName: workos.event",
     "queueName 'workos.event' is not workos.events", False),
    ("overlay patch path typo", "deploy/k8s/overlays/production/kustomization.yaml",
     "path: /spec/minReplicas\n", "path: /spec/minReplica\n",
     "deploy/k8s/overlays/production", False),
    ("overlay patch target typo (kustomize skips the patch)", "deploy/k8s/overlays/production/kustomization.yaml",
     "      kind: Ingress\n      name: workos-sync-receiver\n", "      kind: Ingress\n      name: workos-sync-recever\n",
     "selects no resource", False),
    ("overlay patch replaces a missing field (kustomize adds it)", "deploy/k8s/overlays/production/kustomization.yaml",
     "        path: /spec/minAvailable\n", "        path: /spec/minAvailabe\n",
     "replace /spec/minAvailabe: PodDisruptionBudget/workos-sync-receiver has no such field", False),
    ("kustomization field typo", "deploy/k8s/overlays/production/kustomization.yaml",
     "resources:\n  - ../../base\n", "resorces:\n  - ../../base\n",
     "invalid Kustomization: json: unknown field", False),
    ("definitions: delivery limit as a string", "deploy/rabbitmq/definitions.json",
     '"x-delivery-limit": 10', '"x-delivery-limit": "10"',
     "PRECONDITION_FAILED", False),
    ("definitions: wrong TTL", "deploy/rabbitmq/definitions.json",
     '"x-message-ttl": 5000', '"x-message-ttl": 6000',
     "queue workos.retry.5s arguments", False),
    ("definitions: apply-to quorum_queues (3.12+ only)", "deploy/rabbitmq/definitions.json",
     '"apply-to": "queues"', '"apply-to": "quorum_queues"',
     "RabbitMQ refused the import", True),
    ("rules: PromQL syntax error", "deploy/observability/prometheus-rules.yaml",
     'expr: max by (queue) (workos_sync_queue_messages{queue=~".*\\\\.dead"}) > 0',
     'expr: max by (queue) (workos_sync_queue_messages{queue=~".*\\\\.dead"} > 0',
     "promtool check rules failed", False),
    ("rules: threshold changed, unit test catches it", "deploy/observability/prometheus-rules.yaml",
     'expr: max(workos_sync_worker_holding) == 1', 'expr: max(workos_sync_worker_holding) == 2',
     "promtool test rules failed", False),
    ("rules: metric name typo", "deploy/observability/prometheus-rules.yaml",
     "expr: workos_sync_amqp_connected == 0", "expr: workos_sync_amqp_conected == 0",
     "metric workos_sync_amqp_conected is not emitted", False),
    ("rules: severity missing", "deploy/observability/prometheus-rules.yaml",
     "          for: 2m\n          labels:\n            severity: critical\n",
     "          for: 2m\n          labels:\n            team: sync\n",
     "labels.severity must be", False),
    ("dashboard: panel without queries", "deploy/observability/grafana-dashboard.json",
     '"targets": [\n        {\n          "refId": "A",\n          "datasource": {\n            "type": "prometheus",\n            "uid": "${datasource}"\n          },\n          "expr": "sum by (outcome) (rate(workos_sync_webhooks_total[$__rate_interval]))"',
     '"targets": [], "x": [\n        {\n          "refId": "A",\n          "datasource": {\n            "type": "prometheus",\n            "uid": "${datasource}"\n          },\n          "expr": "sum by (outcome) (rate(workos_sync_webhooks_total[$__rate_interval]))"',
     "Webhooks by outcome: no targets", False),
    ("dashboard: query does not parse", "deploy/observability/grafana-dashboard.json",
     '"expr": "max by (queue) (workos_sync_queue_messages)"', '"expr": "max by (queue) (workos_sync_queue_messages"',
     "a query does not parse", False),
    ("dashboard: not JSON", "deploy/observability/grafana-dashboard.json",
     '"uid": "workos-sync",', '"uid": "workos-sync",,',
     "grafana-dashboard.json", False),
    ("compose healthcheck calls a missing subcommand", "docker-compose.yml",
     '"workos-sync", "probe", "--timeout-ms", "2000", "http://127.0.0.1:8081/readyz"',
     '"workos-sync", "prob", "--timeout-ms", "2000", "http://127.0.0.1:8081/readyz"',
     "no such command: worker: workos-sync prob", False),
]


def copy_tree(dst: Path) -> None:
    """The validator's inputs; no sources (the binary comes from WORKOS_SYNC_CLI)."""
    for name in ("docker-compose.yml", "deploy", "config", "docs", "scripts", "migrations"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name)
        elif src.is_file():
            shutil.copy(src, dst / name)


def cli_from_env() -> str | None:
    """WORKOS_SYNC_CLI, made absolute; None (said why) when it names no executable."""
    cli = os.environ.get("WORKOS_SYNC_CLI")
    if not cli:
        print("validate_deploy_selftest: WORKOS_SYNC_CLI is not set: it must name the workos-sync binary "
              "(the copies of deploy/ have no sources to build it from), e.g. "
              "WORKOS_SYNC_CLI=/var/tmp/workos-sync-target/debug/workos-sync", file=sys.stderr)
        return None
    path = Path(cli).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        print(f"validate_deploy_selftest: WORKOS_SYNC_CLI={cli} is not an executable file", file=sys.stderr)
        return None
    return str(path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", help="only cases whose name contains this")
    ap.add_argument("-v", action="store_true", help="print the validator's output")
    args = ap.parse_args()
    cli = cli_from_env()
    if cli is None:
        return 2
    failures = 0
    ran = 0
    with tempfile.TemporaryDirectory() as tmp:
        pristine = Path(tmp) / "pristine"
        pristine.mkdir()
        copy_tree(pristine)
        for name, rel, old, new, expect, live in CASES:
            if args.k and args.k not in name:
                continue
            ran += 1
            case = Path(tmp) / f"case{ran}"
            shutil.copytree(pristine, case)
            f = case / rel
            text = f.read_text()
            if text.count(old) < 1:
                print(f"SETUP FAILED  {name}: text to replace not found in {rel}")
                failures += 1
                continue
            f.write_text(text.replace(old, new, 1))
            env = dict(os.environ, WORKOS_SYNC_CLI=cli, VALIDATE_DEPLOY_LIVE_RABBITMQ="1" if live else "0")
            started = time.monotonic()
            p = subprocess.run(["bash", str(ROOT / "scripts/validate-deploy.sh"), str(case)],
                               capture_output=True, text=True, env=env)
            took = time.monotonic() - started
            out = p.stdout + p.stderr
            lines = [line for line in out.splitlines() if "ERROR" in line or "failed" in line or "refused" in line]
            if p.returncode != 0 and expect in out:
                print(f"caught ({took:4.1f}s)  {name}\n    {lines[0] if lines else out.strip().splitlines()[-1]}")
            else:
                failures += 1
                print(f"MISSED ({took:4.1f}s)  {name}: exit {p.returncode}, expected {expect!r} in the output")
            if args.v or (p.returncode == 0 or expect not in out):
                print("    | " + out.replace("\n", "\n    | "))
            shutil.rmtree(case)
    print(f"{ran - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
