#!/usr/bin/env python3
"""Checks deploy/k8s, deploy/rabbitmq and deploy/observability. Run by
scripts/validate-deploy.sh, which installs the pinned Python packages and finds the tools;
it can also be run by hand:

    python3 scripts/validate_deploy.py ROOT [--kustomize "kubectl kustomize"] [--promtool PATH]
    python3 scripts/validate_deploy.py --render DIR       # the fallback renderer's output

What is checked, and how:

deploy/k8s       Every kustomization (base and each overlay) is rendered twice: by kustomize
                 when it is installed (`kustomize build` or `kubectl kustomize`) and by the
                 small fallback renderer below, which implements only what our
                 kustomizations use (`resources`, `images`, JSON 6902 `patches` with a
                 `target`) and refuses anything else. When both ran, their outputs must be
                 the same objects. Every rendered document (and base/secret.example.yaml) is
                 then validated, strictly (unknown fields are errors), against the
                 Kubernetes JSON schemas bundled by the `kubernetes-validate` package for
                 each version in K8S_VERSIONS; custom resources (KEDA ScaledObject and
                 TriggerAuthentication) against the hand-written schemas in CRD_SCHEMAS,
                 which cover the fields we use and borrow Kubernetes' own definitions
                 (ObjectMeta, HPA behaviour). Then cross-references: selectors, ports,
                 Secret keys, ConfigMap keys against config/default.toml, security context.
deploy/rabbitmq  definitions.json against the topology the app declares: as printed by
                 `workos-sync debug topology` when WORKOS_SYNC_CLI names the binary
                 (validate-deploy.sh builds it), else as mirrored by hand from
                 crates/queue/src/topology.rs (the mirror must also agree with the binary;
                 a guard fails when topology.rs uses an argument the mirror does not know). When a local RabbitMQ node answers `rabbitmqctl`, the
                 file is also imported into a throwaway vhost and read back.
deploy/observability
                 prometheus-rules.yaml: structure, then `promtool check rules` and
                 `promtool test rules` (prometheus-rules.test.yaml). grafana-dashboard.json:
                 structure, every panel has queries, every query parses (promtool, as
                 recording rules). Every metric named in either is one the binaries emit
                 (`workos-sync debug metrics`; without the binary, a name in crates/*/src).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import yaml

# Kubernetes versions whose schemas every manifest must satisfy: the oldest we support and
# the newest the pinned kubernetes-validate bundles (added at run time).
K8S_MIN_VERSION = "1.30.0"
NAMESPACE = "workos-sync"
SECRET_NAME = "workos-sync-secrets"
# The uid the image runs as (deploy/Dockerfile: useradd --uid 10001, USER 10001).
IMAGE_UID = 10001

errors: list[str] = []


def say(msg: str) -> None:
    print(f"validate-deploy: {msg}", flush=True)


def error(msg: str) -> None:
    errors.append(msg)
    print(f"validate-deploy: ERROR: {msg}", file=sys.stderr, flush=True)


def ident(doc: dict) -> str:
    md = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{md.get('name')}"


# ---------------------------------------------------------------------------------------
# Fallback kustomize renderer
# ---------------------------------------------------------------------------------------


class RenderError(Exception):
    pass


SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "images", "patches"}
POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


def load_yaml_docs(path: Path) -> list:
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        raise RenderError(f"{path}: not valid YAML: {e}") from e


def kustomization_file(d: Path) -> Path:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (d / name).is_file():
            return d / name
    raise RenderError(f"{d}: no kustomization.yaml")


def render(d: Path, stack: tuple = ()) -> list[dict]:
    d = d.resolve()
    if d in stack:
        raise RenderError(f"{d}: kustomization cycle")
    kfile = kustomization_file(d)
    docs = load_yaml_docs(kfile)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise RenderError(f"{kfile}: expected one mapping")
    k = docs[0]
    unknown = set(k) - SUPPORTED_KUSTOMIZATION_KEYS
    if unknown:
        raise RenderError(
            f"{kfile}: field(s) {sorted(unknown)} not implemented by the fallback renderer "
            f"(it implements {sorted(SUPPORTED_KUSTOMIZATION_KEYS)}); extend "
            "scripts/validate_deploy.py or keep the kustomization simple"
        )
    if k.get("kind", "Kustomization") != "Kustomization":
        raise RenderError(f"{kfile}: kind must be Kustomization")
    out: list[dict] = []
    for r in k.get("resources") or []:
        if not isinstance(r, str) or "://" in r:
            raise RenderError(f"{kfile}: resource {r!r}: only local files and directories")
        p = d / r
        if p.is_dir():
            out.extend(render(p, stack + (d,)))
        elif p.is_file():
            for doc in load_yaml_docs(p):
                if not isinstance(doc, dict):
                    raise RenderError(f"{p}: a document is not a mapping")
                out.append(doc)
        else:
            raise RenderError(f"{kfile}: resource {r!r} does not exist")
    for i, patch in enumerate(k.get("patches") or []):
        apply_patch(out, patch, d, f"{kfile}: patches[{i}]")
    for i, img in enumerate(k.get("images") or []):
        apply_image(out, img, f"{kfile}: images[{i}]")
    return out


def split_gv(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


def target_matches(doc: dict, target: dict) -> bool:
    g, v = split_gv(str(doc.get("apiVersion", "")))
    md = doc.get("metadata") or {}
    checks = {
        "group": g,
        "version": v,
        "kind": doc.get("kind"),
        "name": md.get("name"),
        "namespace": md.get("namespace"),
    }
    return all(target[key] == checks[key] for key in target)


def apply_patch(docs: list[dict], patch: dict, d: Path, where: str) -> None:
    if not isinstance(patch, dict) or set(patch) - {"target", "patch", "path"}:
        raise RenderError(f"{where}: only `target` with `patch` or `path` is implemented")
    target = patch.get("target")
    if not isinstance(target, dict) or not target:
        raise RenderError(f"{where}: a `target` is required (strategic-merge patches by name are not implemented)")
    bad = set(target) - {"group", "version", "kind", "name", "namespace"}
    if bad:
        raise RenderError(f"{where}: target field(s) {sorted(bad)} not implemented")
    if not re.fullmatch(r"[a-z0-9.-]+", str(target.get("name", "x"))):
        raise RenderError(f"{where}: target name must be a plain name (kustomize reads it as a regex)")
    if ("patch" in patch) == ("path" in patch):
        raise RenderError(f"{where}: exactly one of `patch` and `path`")
    text = patch["patch"] if "patch" in patch else (d / patch["path"]).read_text()
    try:
        ops = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RenderError(f"{where}: patch is not valid YAML: {e}") from e
    if not isinstance(ops, list):
        raise RenderError(f"{where}: only JSON 6902 patches (a list of operations) are implemented")
    matched = [doc for doc in docs if target_matches(doc, target)]
    if not matched:
        raise RenderError(f"{where}: target {target} matches no resource")
    for doc in matched:
        for op in ops:
            json_patch_op(doc, op, where)


def pointer(path: str, where: str) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise RenderError(f"{where}: bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch_op(doc: dict, op: dict, where: str) -> None:
    if not isinstance(op, dict) or "op" not in op or "path" not in op:
        raise RenderError(f"{where}: each operation needs `op` and `path`")
    kind = op["op"]
    parts = pointer(op["path"], where)
    parent = doc
    for p in parts[:-1]:
        try:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise RenderError(f"{where}: path {op['path']} does not exist in {ident(doc)}") from e
    last = parts[-1]
    try:
        if kind == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "replace":
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(op["value"])
            else:
                if last not in parent:
                    raise KeyError(last)
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        elif kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent[last]
            if cur != op["value"]:
                raise RenderError(f"{where}: test failed at {op['path']} in {ident(doc)}")
        else:
            raise RenderError(f"{where}: operation {kind!r} not implemented")
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise RenderError(f"{where}: {kind} {op['path']} failed on {ident(doc)}") from e


def split_image(image: str) -> tuple[str, str]:
    """('registry/name', ':tag' or '@sha256:...' or '')."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def pod_specs(doc: dict):
    path = POD_SPEC_PATHS.get(doc.get("kind"))
    if not path:
        return
    node = doc
    for p in path:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            return
    yield node


def apply_image(docs: list[dict], img: dict, where: str) -> None:
    if not isinstance(img, dict) or "name" not in img or set(img) - {"name", "newName", "newTag", "digest"}:
        raise RenderError(f"{where}: `name` with `newName`, `newTag` or `digest`")
    for doc in docs:
        for spec in pod_specs(doc):
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                name, suffix = split_image(str(c.get("image", "")))
                if name != img["name"]:
                    continue
                name = img.get("newName", name)
                if "digest" in img:
                    suffix = "@" + img["digest"]
                elif "newTag" in img:
                    suffix = ":" + str(img["newTag"])
                c["image"] = name + suffix


# ---------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------

K8S_DEFS = "https://kubernetes.io/api/_definitions.json#/$defs/"
STR = {"type": "string"}
INT = {"type": "integer"}
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def obj(props: dict, required: tuple = (), extra: bool = False) -> dict:
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": extra}


def metadata_schema() -> dict:
    return {
        "allOf": [
            {"$ref": K8S_DEFS + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            {"type": "object", "required": ["name"]},
        ]
    }


# Only the fields we use or might reasonably use; anything else is reported, as a strict
# Kubernetes schema would.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): obj(
        {
            "apiVersion": STR,
            "kind": STR,
            "metadata": metadata_schema(),
            "spec": obj(
                {
                    "scaleTargetRef": obj(
                        {"apiVersion": STR, "kind": STR, "name": STR, "envSourceContainerName": STR},
                        ("name",),
                    ),
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                    "idleReplicaCount": {"type": "integer", "minimum": 0},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "fallback": obj({"failureThreshold": INT, "replicas": INT}, ("failureThreshold", "replicas")),
                    "advanced": obj(
                        {
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                            "horizontalPodAutoscalerConfig": obj(
                                {
                                    "name": STR,
                                    "behavior": {"$ref": K8S_DEFS + "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior"},
                                }
                            ),
                        }
                    ),
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": obj(
                            {
                                "type": STR,
                                "name": STR,
                                "useCachedMetrics": {"type": "boolean"},
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                # KEDA's CRD types trigger metadata as map[string]string.
                                "metadata": STR_MAP,
                                "authenticationRef": obj(
                                    {"name": STR, "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]}},
                                    ("name",),
                                ),
                            },
                            ("type", "metadata"),
                        ),
                    },
                },
                ("scaleTargetRef", "triggers"),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): obj(
        {
            "apiVersion": STR,
            "kind": STR,
            "metadata": metadata_schema(),
            "spec": {
                **obj(
                    {
                        "secretTargetRef": {
                            "type": "array",
                            "items": obj({"parameter": STR, "name": STR, "key": STR}, ("parameter", "name", "key")),
                        },
                        "env": {
                            "type": "array",
                            "items": obj({"parameter": STR, "name": STR, "containerName": STR}, ("parameter", "name")),
                        },
                        "configMapTargetRef": {
                            "type": "array",
                            "items": obj({"parameter": STR, "name": STR, "key": STR}, ("parameter", "name", "key")),
                        },
                    }
                ),
                "minProperties": 1,
            },
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): obj(
        {
            "apiVersion": STR,
            "kind": STR,
            "metadata": metadata_schema(),
            "spec": obj(
                {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": obj(
                            {
                                "name": {"type": "string", "minLength": 1},
                                "interval": {"type": "string", "pattern": r"^(\d+(ms|s|m|h|d|w|y))+$"},
                                "limit": INT,
                                "partial_response_strategy": STR,
                                "rules": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        **obj(
                                            {
                                                "alert": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                                                "record": STR,
                                                "expr": {"type": ["string", "integer"]},
                                                "for": {"type": "string", "pattern": r"^(\d+(ms|s|m|h|d|w|y))+$"},
                                                "keep_firing_for": {"type": "string", "pattern": r"^(\d+(ms|s|m|h|d|w|y))+$"},
                                                "labels": STR_MAP,
                                                "annotations": STR_MAP,
                                            },
                                            ("expr",),
                                        ),
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    },
                                },
                            },
                            ("name", "rules"),
                        ),
                    }
                },
                ("groups",),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
}


class Validators:
    """Kubernetes schemas (kubernetes-validate) and our CRD schemas."""

    def __init__(self) -> None:
        import importlib_resources
        import jsonschema
        import kubernetes_validate.utils as kv
        from referencing import Registry, Resource

        self.kv = kv
        self.jsonschema = jsonschema
        self.versions = sorted({K8S_MIN_VERSION, kv.latest_version()}, key=lambda v: tuple(int(x) for x in v.split(".")))
        defs_path = importlib_resources.files("kubernetes_validate").joinpath(
            f"kubernetes-json-schema/v{K8S_MIN_VERSION}-local-strict/_definitions.json"
        )
        defs = json.loads(defs_path.read_text())
        self.registry = Resource.from_contents(defs) @ Registry()

    def validate(self, doc: dict, where: str) -> None:
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str):
                error(f"{where}: a document has no {key}")
                return
        if not isinstance((doc.get("metadata") or {}).get("name"), str):
            error(f"{where}: {doc['kind']} without metadata.name")
            return
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if crd is not None:
            v = self.jsonschema.Draft202012Validator(crd, registry=self.registry)
            for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path)):
                path = ".".join(str(p) for p in e.absolute_path)
                error(f"{where}: {ident(doc)} ({doc['apiVersion']}, checked against our CRD schema): {path}: {e.message}")
            return
        for version in self.versions:
            try:
                self.kv.validate(doc, version, strict=True)
            except self.kv.ValidationError:
                for path, message in self.all_errors(doc, version):
                    error(f"{where}: {ident(doc)} does not validate against Kubernetes {version}: {path}: {message}")
                return
            except self.kv.SchemaNotFoundError as e:
                error(f"{where}: {ident(doc)}: {e.message} (a typo in apiVersion or kind?)")
                return
        check_values(doc, f"{where}: {ident(doc)}")

    def all_errors(self, doc: dict, version: str) -> list[tuple[str, str]]:
        """Every schema error, where kubernetes-validate reports the first only (same
        schema files, same lookup as kubernetes_validate.utils.validate)."""
        from referencing import Registry, Resource

        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
        base = f"kubernetes-json-schema/v{version}-local-strict"
        schema = self.kv.schema_contents(f"{base}/{doc['kind'].lower()}-{api}.json", version)
        defs = self.kv.schema_contents(f"{base}/_definitions.json", version)
        registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
        v = self.jsonschema.Draft202012Validator(schema, registry=registry)
        errs = sorted(v.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
        return [(".".join(str(p) for p in e.absolute_path), e.message) for e in errs[:10]]


# The bundled schemas type these fields as plain strings; the API server would refuse
# other values. Only fields our manifests use.
ENUM_FIELDS = {
    "protocol": {"TCP", "UDP", "SCTP"},
    "pathType": {"Exact", "Prefix", "ImplementationSpecific"},
    "imagePullPolicy": {"Always", "IfNotPresent", "Never"},
    "restartPolicy": {"Always", "OnFailure", "Never"},
    "whenUnsatisfiable": {"DoNotSchedule", "ScheduleAnyway"},
    "unhealthyPodEvictionPolicy": {"IfHealthyBudget", "AlwaysAllow"},
}
# resource.Quantity, e.g. 100m, 64Mi, 1.5, 2e3.
QUANTITY_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")


def check_values(node, where: str, path: str = "") -> None:
    """Enum fields and resource quantities of a built-in Kubernetes object."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            if k in ENUM_FIELDS and isinstance(v, str) and v not in ENUM_FIELDS[k]:
                error(f"{where}: {p}: {v!r} is not one of {sorted(ENUM_FIELDS[k])}")
            if k in ("requests", "limits") and path.endswith("resources") and isinstance(v, dict):
                for res, q in v.items():
                    if not QUANTITY_RE.match(str(q)):
                        error(f"{where}: {p}.{res}: {q!r} is not a Kubernetes quantity")
            check_values(v, where, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_values(v, where, f"{path}.{i}")


# ---------------------------------------------------------------------------------------
# deploy/k8s
# ---------------------------------------------------------------------------------------


def canonical(docs: list[dict]) -> dict:
    out = {}
    for d in docs:
        md = d.get("metadata") or {}
        key = (d.get("apiVersion"), d.get("kind"), md.get("namespace") or "", md.get("name"))
        if key in out:
            error(f"duplicate resource {key}")
        out[key] = d
    return out


def render_with_tool(cmd: list[str], d: Path) -> list[dict] | None:
    try:
        p = subprocess.run(cmd + [str(d)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        error(f"{d}: `{' '.join(cmd)}` failed to run: {e}")
        return None
    if p.returncode != 0:
        error(f"{d}: `{' '.join(cmd)}` failed:\n{p.stderr.strip()}")
        return None
    return [x for x in yaml.safe_load_all(p.stdout) if x is not None]


def settings_keys(defaults: dict) -> set[str]:
    return {f"WORKOS_SYNC__{sec.upper()}__{key.upper()}" for sec, table in defaults.items() for key in table}


def nginx_size(v: str) -> int | None:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", v.strip())
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def check_k8s_semantics(where: str, objs: dict, defaults: dict, secret_keys: set[str]) -> None:
    def of_kind(kind: str) -> list[dict]:
        return [d for d in objs.values() if d.get("kind") == kind]

    def named(kind: str, name: str) -> dict | None:
        return next((d for d in of_kind(kind) if d["metadata"].get("name") == name), None)

    def pod_labels(d: dict) -> dict:
        return ((d.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}

    workloads = [d for d in objs.values() if d.get("kind") in POD_SPEC_PATHS]
    configmaps = {d["metadata"]["name"]: d for d in of_kind("ConfigMap")}

    # Namespaces: everything namespaced lives in ours.
    if not named("Namespace", NAMESPACE):
        error(f"{where}: no Namespace {NAMESPACE}")
    for d in objs.values():
        if d.get("kind") != "Namespace" and (d.get("metadata") or {}).get("namespace") != NAMESPACE:
            error(f"{where}: {ident(d)} is not in namespace {NAMESPACE}")

    # Pods: security context, resources, image, secrets, config maps, probes.
    for w in workloads:
        for spec in pod_specs(w):
            psc = spec.get("securityContext") or {}
            if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != IMAGE_UID:
                error(f"{where}: {ident(w)}: pod securityContext needs runAsNonRoot: true and runAsUser: {IMAGE_UID}")
            if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                error(f"{where}: {ident(w)}: pod seccompProfile must be RuntimeDefault")
            if spec.get("automountServiceAccountToken") is not False:
                error(f"{where}: {ident(w)}: automountServiceAccountToken should be false (no API access needed)")
            ports_by_name = {}
            for c in spec.get("containers") or []:
                cn = f"{ident(w)} container {c.get('name')}"
                sc = c.get("securityContext") or {}
                if sc.get("allowPrivilegeEscalation") is not False or sc.get("readOnlyRootFilesystem") is not True:
                    error(f"{where}: {cn}: needs allowPrivilegeEscalation: false and readOnlyRootFilesystem: true")
                if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                    error(f"{where}: {cn}: capabilities must drop ALL")
                res = c.get("resources") or {}
                if not (res.get("requests") or {}).get("memory") or not (res.get("limits") or {}).get("memory"):
                    error(f"{where}: {cn}: set a memory request and limit")
                image = str(c.get("image", ""))
                _, suffix = split_image(image)
                if not suffix or suffix == ":latest":
                    error(f"{where}: {cn}: image {image!r} must have a fixed tag or digest")
                for p in c.get("ports") or []:
                    if p.get("name"):
                        ports_by_name[p["name"]] = p.get("containerPort")
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                    if isinstance(port, str) and port not in ports_by_name:
                        error(f"{where}: {cn}: {probe} uses port {port!r}, which the container does not name")
                for src in c.get("envFrom") or []:
                    ref = (src.get("configMapRef") or {}).get("name")
                    if ref and ref not in configmaps:
                        error(f"{where}: {cn}: envFrom ConfigMap {ref!r} is not rendered")
                    sref = (src.get("secretRef") or {}).get("name")
                    if sref:
                        error(f"{where}: {cn}: envFrom a whole Secret; reference the keys one by one")
                for env in c.get("env") or []:
                    skr = (env.get("valueFrom") or {}).get("secretKeyRef")
                    if skr:
                        if skr.get("name") != SECRET_NAME or skr.get("key") not in secret_keys:
                            error(
                                f"{where}: {cn}: env {env.get('name')} reads {skr.get('name')}/{skr.get('key')}, "
                                f"not a key of the {SECRET_NAME} template (base/secret.example.yaml)"
                            )
                        elif skr.get("key") != env.get("name"):
                            error(f"{where}: {cn}: env {env.get('name')} reads secret key {skr.get('key')}")
            comp = pod_labels(w).get("app.kubernetes.io/component")
            if comp in ("receiver", "worker"):
                c0 = (spec.get("containers") or [{}])[0]
                live = ((c0.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
                ready = ((c0.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
                if live != "/healthz" or ready != "/readyz":
                    error(f"{where}: {ident(w)}: liveness must probe /healthz and readiness /readyz (got {live}, {ready})")
            if comp == "receiver":
                grace = spec.get("terminationGracePeriodSeconds", 30)
                drain = int(configmaps.get("workos-sync-config", {}).get("data", {}).get(
                    "WORKOS_SYNC__RECEIVER__SHUTDOWN_TIMEOUT_SECS", defaults["receiver"]["shutdown_timeout_secs"]))
                if grace <= drain:
                    error(f"{where}: {ident(w)}: terminationGracePeriodSeconds {grace} must exceed the {drain} s drain")

    # ConfigMap keys are real settings (the app ignores unknown WORKOS_SYNC__ keys).
    known = settings_keys(defaults) | {"WORKOS_API_BASE_URL"}
    secretish = {"DATABASE_URL", "AMQP_URL", "WORKOS_WEBHOOK_SECRET", "WORKOS_API_KEY", "WORKOS_SYNC__WORKER__API_TOKEN"}
    for name, cm in configmaps.items():
        for key in (cm.get("data") or {}):
            if key in secretish:
                error(f"{where}: ConfigMap {name}: {key} is a secret; it belongs in {SECRET_NAME}")
            elif key not in known:
                error(f"{where}: ConfigMap {name}: {key} is not a setting of config/default.toml (typo?)")

    # Services select pods and target a named port they have.
    for svc in of_kind("Service"):
        sel = (svc.get("spec") or {}).get("selector") or {}
        pods = [w for w in workloads if sel and all(pod_labels(w).get(k) == v for k, v in sel.items())]
        if not pods:
            error(f"{where}: {ident(svc)} selects no pod template")
        for p in (svc.get("spec") or {}).get("ports") or []:
            tp = p.get("targetPort")
            for w in pods:
                names = {pp.get("name") for s in pod_specs(w) for c in s.get("containers") or [] for pp in c.get("ports") or []}
                if isinstance(tp, str) and tp not in names:
                    error(f"{where}: {ident(svc)} targets port {tp!r}, which {ident(w)} does not name")

    # PDBs select pods.
    for pdb in of_kind("PodDisruptionBudget"):
        sel = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not any(sel and all(pod_labels(w).get(k) == v for k, v in sel.items()) for w in workloads):
            error(f"{where}: {ident(pdb)} selects no pod template")

    # Ingress: backends exist, path and body size match the receiver's settings.
    for ing in of_kind("Ingress"):
        for rule in (ing.get("spec") or {}).get("rules") or []:
            for path in ((rule.get("http") or {}).get("paths")) or []:
                svc = ((path.get("backend") or {}).get("service")) or {}
                target = named("Service", svc.get("name"))
                if not target:
                    error(f"{where}: {ident(ing)} routes to missing Service {svc.get('name')!r}")
                    continue
                pname = (svc.get("port") or {}).get("name")
                if pname and pname not in {p.get("name") for p in target["spec"].get("ports") or []}:
                    error(f"{where}: {ident(ing)} routes to port {pname!r} that {ident(target)} does not have")
                if path.get("path") != defaults["receiver"]["path"]:
                    error(f"{where}: {ident(ing)} path {path.get('path')!r} is not receiver.path {defaults['receiver']['path']!r}")
        size = ((ing.get("metadata") or {}).get("annotations") or {}).get("nginx.ingress.kubernetes.io/proxy-body-size")
        if size is None or nginx_size(str(size)) != defaults["receiver"]["max_body_bytes"]:
            error(
                f"{where}: {ident(ing)}: nginx.ingress.kubernetes.io/proxy-body-size {size!r} does not equal "
                f"receiver.max_body_bytes ({defaults['receiver']['max_body_bytes']})"
            )

    # Autoscalers target existing Deployments, one autoscaler each, which then set no replicas.
    scaled = {}
    for a in of_kind("HorizontalPodAutoscaler") + of_kind("ScaledObject"):
        ref = (a.get("spec") or {}).get("scaleTargetRef") or {}
        name = ref.get("name")
        if ref.get("kind", "Deployment") != "Deployment" or not named("Deployment", name):
            error(f"{where}: {ident(a)} scales a missing Deployment {name!r}")
        if name in scaled:
            error(f"{where}: Deployment {name} is scaled by both {scaled[name]} and {ident(a)}")
        scaled[name] = ident(a)
        spec = a.get("spec") or {}
        lo = spec.get("minReplicas", spec.get("minReplicaCount", 1))
        hi = spec.get("maxReplicas", spec.get("maxReplicaCount", 100))
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            error(f"{where}: {ident(a)}: minimum {lo} above maximum {hi}")
    for dep in of_kind("Deployment"):
        if dep["metadata"]["name"] in scaled and "replicas" in (dep.get("spec") or {}):
            error(f"{where}: {ident(dep)} sets spec.replicas although {scaled[dep['metadata']['name']]} owns it")

    # KEDA: the trigger reads our events queue with credentials from our Secret.
    prefix = (configmaps.get("workos-sync-config", {}).get("data") or {}).get(
        "WORKOS_SYNC__AMQP__PREFIX", defaults["amqp"]["prefix"])
    auths = {d["metadata"]["name"]: d for d in of_kind("TriggerAuthentication")}
    for so in of_kind("ScaledObject"):
        for t in (so.get("spec") or {}).get("triggers") or []:
            md = t.get("metadata") or {}
            if t.get("type") == "rabbitmq":
                if md.get("queueName") != f"{prefix}.events":
                    error(f"{where}: {ident(so)}: queueName {md.get('queueName')!r} is not {prefix}.events")
                if md.get("mode") not in ("QueueLength", "MessageRate"):
                    error(f"{where}: {ident(so)}: mode must be QueueLength or MessageRate")
                if md.get("protocol", "auto") not in ("auto", "amqp", "http"):
                    error(f"{where}: {ident(so)}: protocol must be auto, amqp or http")
                try:
                    if float(md.get("value", "")) <= 0:
                        raise ValueError
                except ValueError:
                    error(f"{where}: {ident(so)}: value {md.get('value')!r} is not a positive number")
            ref = (t.get("authenticationRef") or {}).get("name")
            if ref and ref not in auths:
                error(f"{where}: {ident(so)}: authenticationRef {ref!r} is not rendered")
    for ta in auths.values():
        for r in (ta.get("spec") or {}).get("secretTargetRef") or []:
            if r.get("name") != SECRET_NAME or r.get("key") not in secret_keys:
                error(f"{where}: {ident(ta)} reads {r.get('name')}/{r.get('key')}, not a key of the {SECRET_NAME} template")


def check_k8s(root: Path, kustomize: list[str] | None, validators: Validators, defaults: dict) -> None:
    k8s = root / "deploy/k8s"
    if not k8s.is_dir():
        error("deploy/k8s is missing")
        return
    targets = [k8s / "base"] + sorted(p for p in (k8s / "overlays").glob("*") if p.is_dir())
    secret_file = k8s / "base/secret.example.yaml"
    secret_keys: set[str] = set()
    before = len(errors)
    try:
        secret_docs = load_yaml_docs(secret_file)
    except (OSError, RenderError) as e:
        error(f"{secret_file}: {e}")
        secret_docs = []
    for doc in secret_docs:
        validators.validate(doc, str(secret_file.relative_to(root)))
        if doc.get("kind") == "Secret" and (doc.get("metadata") or {}).get("name") == SECRET_NAME:
            secret_keys = set((doc.get("stringData") or {}).keys())
    if not secret_keys:
        error(f"{secret_file}: no Secret {SECRET_NAME} with stringData")
    elif len(errors) == before:
        say(f"deploy/k8s/base/secret.example.yaml: valid (template of {SECRET_NAME}, not applied): {', '.join(sorted(secret_keys))}")

    for t in targets:
        rel = str(t.relative_to(root))
        try:
            fallback = render(t)
        except RenderError as e:
            error(f"{rel}: {e}")
            continue
        docs = fallback
        if kustomize:
            real = render_with_tool(kustomize, t)
            if real is None:
                continue
            a, b = canonical(real), canonical(fallback)
            if a != b:
                for key in sorted(set(a) | set(b), key=str):
                    if a.get(key) != b.get(key):
                        error(f"{rel}: kustomize and the fallback renderer disagree on {key}")
                continue
            docs = real
            how = f"{' '.join(kustomize)} (fallback renderer agrees)"
        else:
            how = "the fallback renderer (no kustomize installed)"
        before = len(errors)
        for d in docs:
            validators.validate(d, rel)
        objs = canonical(docs)
        check_k8s_semantics(rel, objs, defaults, secret_keys)
        if len(errors) == before:
            kinds = sorted({d["kind"] for d in docs})
            say(
                f"{rel}: {len(docs)} objects rendered by {how}; valid against Kubernetes "
                f"{' and '.join(validators.versions)} schemas (strict) and our CRD schemas; "
                f"cross-references ok ({', '.join(kinds)})"
            )


# ---------------------------------------------------------------------------------------
# deploy/rabbitmq
# ---------------------------------------------------------------------------------------

# The x-arguments crates/queue/src/topology.rs sets. If topology.rs starts using another
# one, expected_topology() below must learn it: the guard in check_rabbitmq says so.
MIRRORED_ARGS = {"x-queue-type", "x-delivery-limit", "x-dead-letter-exchange", "x-dead-letter-strategy", "x-overflow", "x-message-ttl"}
# Policy keys valid for quorum queues on RabbitMQ 3.10 and later.
POLICY_KEYS = {
    "delivery-limit", "dead-letter-exchange", "dead-letter-routing-key", "dead-letter-strategy", "overflow",
    "max-length", "max-length-bytes", "expires", "message-ttl", "max-in-memory-length", "max-in-memory-bytes",
    "queue-leader-locator",
}
# Policy key -> queue argument whose value it duplicates.
POLICY_TO_ARG = {k: "x-" + k for k in POLICY_KEYS}


def delay_label(s: int) -> str:
    """crates/queue/src/topology.rs delay_label()."""
    if s >= 3600 and s % 3600 == 0:
        return f"{s // 3600}h"
    if s >= 60 and s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def expected_topology(amqp: dict) -> dict:
    """What Topology::declare() creates for the defaults (mirrors topology.rs by hand)."""
    p = amqp["prefix"]
    at_least_once = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    queues = {
        f"{p}.dead": {"x-queue-type": "quorum"},
        f"{p}.events": {
            "x-queue-type": "quorum",
            "x-delivery-limit": amqp["delivery_limit"],
            "x-dead-letter-exchange": f"{p}.dead",
            **at_least_once,
        },
    }
    for s in amqp["retry_delays_secs"]:
        queues[f"{p}.retry.{delay_label(s)}"] = {
            "x-queue-type": "quorum",
            "x-message-ttl": s * 1000,
            "x-dead-letter-exchange": f"{p}.events",
            **at_least_once,
        }
    return {
        "exchanges": {f"{p}.events": "topic", f"{p}.dead": "fanout"},
        "queues": queues,
        "bindings": {(f"{p}.events", f"{p}.events", "#"), (f"{p}.dead", f"{p}.dead", "")},
    }


def binary_json(*args: str):
    """`$WORKOS_SYNC_CLI debug <args>` on the default settings, parsed; None without it."""
    cli = os.environ.get("WORKOS_SYNC_CLI")
    if not cli:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKOS_SYNC__") and k != "AMQP_URL"}
    try:
        p = subprocess.run([cli, "debug", *args], capture_output=True, text=True, timeout=60, env=env)
    except OSError as e:
        error(f"{cli} debug {' '.join(args)}: {e}")
        return None
    if p.returncode != 0:
        error(f"{cli} debug {' '.join(args)} failed: {p.stderr.strip()}")
        return None
    return json.loads(p.stdout)


def app_topology(amqp: dict) -> tuple[dict, str]:
    """The topology the app declares for the defaults, and where it came from: printed by
    the binary itself when WORKOS_SYNC_CLI names it (validate-deploy.sh builds it), else
    the hand-kept mirror, which must then agree with the binary too."""
    mirror = expected_topology(amqp)
    printed = binary_json("topology")
    if printed is None:
        return mirror, "arguments mirrored from topology.rs"
    topo = {
        "exchanges": printed["exchanges"],
        "queues": printed["queues"],
        "bindings": {tuple(b) for b in printed["bindings"]},
    }
    if not strictly_equal({**topo, "bindings": sorted(topo["bindings"])}, {**mirror, "bindings": sorted(mirror["bindings"])}):
        error("scripts/validate_deploy.py: expected_topology() no longer matches `workos-sync debug topology`: update the mirror")
    return topo, "as printed by `workos-sync debug topology`"


def strictly_equal(a, b) -> bool:
    """Equal with the same JSON types (True is not 1, 10.0 is not 10)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    return a == b


def check_rabbitmq(root: Path, defaults: dict) -> dict | None:
    path = root / "deploy/rabbitmq/definitions.json"
    rel = "deploy/rabbitmq/definitions.json"
    try:
        defs = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        error(f"{rel}: {e}")
        return None
    before = len(errors)
    topo_rs = root / "crates/queue/src/topology.rs"
    used = set(re.findall(r'"(x-[a-z-]+)"', topo_rs.read_text())) if topo_rs.is_file() else set()
    if used != MIRRORED_ARGS:
        error(
            f"crates/queue/src/topology.rs uses arguments {sorted(used)}, the check mirrors {sorted(MIRRORED_ARGS)}: "
            "update expected_topology() in scripts/validate_deploy.py and definitions.json together"
        )
    exp, source = app_topology(defaults["amqp"])
    unknown = set(defs) - {"vhosts", "policies", "exchanges", "queues", "bindings", "users", "permissions",
                           "topic_permissions", "parameters", "global_parameters", "rabbit_version",
                           "rabbitmq_version", "product_name", "product_version"}
    if unknown:
        error(f"{rel}: unknown top-level keys {sorted(unknown)}")
    vhosts = {v.get("name") for v in defs.get("vhosts") or []}
    if vhosts != {"/"}:
        error(f"{rel}: vhosts must be exactly [\"/\"] (AMQP_URL's %2f), got {sorted(map(str, vhosts))}")
    for section in ("exchanges", "queues", "bindings", "policies"):
        for item in defs.get(section) or []:
            if item.get("vhost") != "/":
                error(f"{rel}: {section} entry {item.get('name') or item} is not in vhost /")

    xs = {x.get("name"): x for x in defs.get("exchanges") or []}
    if set(xs) != set(exp["exchanges"]):
        error(f"{rel}: exchanges {sorted(xs)} != the app's {sorted(exp['exchanges'])}")
    for name, kind in exp["exchanges"].items():
        x = xs.get(name)
        if x and not (x.get("type") == kind and x.get("durable") is True and x.get("auto_delete") is False
                      and x.get("internal") is False and x.get("arguments") == {}):
            error(f"{rel}: exchange {name} must be {kind}, durable, not auto-delete, not internal, no arguments")

    qs = {q.get("name"): q for q in defs.get("queues") or []}
    if set(qs) != set(exp["queues"]):
        error(f"{rel}: queues {sorted(qs)} != the app's {sorted(exp['queues'])}")
    for name, args in exp["queues"].items():
        q = qs.get(name)
        if not q:
            continue
        if q.get("durable") is not True or q.get("auto_delete") is not False:
            error(f"{rel}: queue {name} must be durable and not auto-delete")
        if not strictly_equal(q.get("arguments"), args):
            error(
                f"{rel}: queue {name} arguments {json.dumps(q.get('arguments'), sort_keys=True)} != the app's "
                f"{json.dumps(args, sort_keys=True)}; RabbitMQ would refuse the app's redeclare with PRECONDITION_FAILED"
            )

    bs = {(b.get("source"), b.get("destination"), b.get("routing_key")) for b in defs.get("bindings") or []
          if b.get("destination_type") == "queue" and b.get("arguments") == {}}
    if bs != exp["bindings"] or len(defs.get("bindings") or []) != len(exp["bindings"]):
        error(f"{rel}: bindings {sorted(bs)} != the app's {sorted(exp['bindings'])}")

    for pol in defs.get("policies") or []:
        name = pol.get("name")
        if pol.get("apply-to") not in ("queues", "exchanges", "all"):
            # RabbitMQ 3.10 (Debian's, ours) rejects quorum_queues/classic_queues (3.12+).
            error(f"{rel}: policy {name}: apply-to {pol.get('apply-to')!r} (RabbitMQ 3.10 accepts queues, exchanges, all)")
        if not isinstance(pol.get("priority", 0), int):
            error(f"{rel}: policy {name}: priority must be an integer")
        definition = pol.get("definition") or {}
        if not definition or set(definition) - POLICY_KEYS:
            error(f"{rel}: policy {name}: unknown or no keys {sorted(set(definition) - POLICY_KEYS)}")
        try:
            rx = re.compile(pol.get("pattern", ""))
        except re.error as e:
            error(f"{rel}: policy {name}: bad pattern: {e}")
            continue
        matched = [q for q in exp["queues"] if rx.search(q)]
        if not matched:
            error(f"{rel}: policy {name} matches none of the app's queues")
        for q in matched:
            for key, value in definition.items():
                arg = exp["queues"][q].get(POLICY_TO_ARG.get(key))
                if arg is not None and not strictly_equal(arg, value):
                    error(f"{rel}: policy {name}: {key}={value!r} contradicts {q}'s argument {arg!r}")
    if len(errors) == before:
        say(
            f"{rel}: {len(qs)} queues, {len(xs)} exchanges, {len(bs)} bindings, "
            f"{len(defs.get('policies') or [])} policies match the app's topology for prefix "
            f"{defaults['amqp']['prefix']!r} (config/default.toml; {source})"
        )
    return defs


def check_rabbitmq_live(defs: dict, defaults: dict) -> None:
    """Imports the definitions into a throwaway vhost of a local node and reads them back."""
    ctl = shutil.which("rabbitmqctl")
    if not ctl:
        say("deploy/rabbitmq/definitions.json: live import skipped (no rabbitmqctl)")
        return
    try:
        ok = subprocess.run([ctl, "-q", "status"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        say("deploy/rabbitmq/definitions.json: live import skipped (no local RabbitMQ node answers)")
        return
    vhost = f"workos-sync-validate-{os.getpid()}"
    text = json.dumps(defs)
    d = json.loads(text)
    for section in ("vhosts",):
        for v in d.get(section) or []:
            v["name"] = vhost
    for section in ("exchanges", "queues", "bindings", "policies"):
        for item in d.get(section) or []:
            item["vhost"] = vhost

    def ctl_run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([ctl, "-q", *args], capture_output=True, text=True, timeout=60)

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(d, f)
        tmp = f.name
    os.chmod(tmp, 0o644)  # the broker process (user rabbitmq) reads the file itself
    try:
        p = ctl_run("import_definitions", tmp)
        if p.returncode != 0:
            error(f"deploy/rabbitmq/definitions.json: RabbitMQ refused the import:\n{(p.stdout + p.stderr).strip()}")
            return
        exp, _ = app_topology(defaults["amqp"])
        got: dict = {}
        for _ in range(40):  # the import is asynchronous
            p = ctl_run("list_queues", "-p", vhost, "name", "durable", "arguments", "policy", "--formatter", "json")
            if p.returncode == 0:
                got = {q["name"]: q for q in json.loads(p.stdout or "[]")}
                if set(got) >= set(exp["queues"]):
                    break
            time.sleep(0.25)
        bad = []
        for name, args in exp["queues"].items():
            q = got.get(name)
            if not q:
                bad.append(f"{name} missing")
                continue
            stored = {k: v for k, _t, v in q["arguments"]}
            types = {k: t for k, t, _v in q["arguments"]}
            if stored != args:
                bad.append(f"{name} arguments {stored} != {args}")
            for k, v in args.items():
                want = "longstr" if isinstance(v, str) else ("long", "signedint", "short", "byte")
                if (types.get(k) != want) if isinstance(want, str) else (types.get(k) not in want):
                    bad.append(f"{name} {k} stored as {types.get(k)}")
        p = ctl_run("list_policies", "-p", vhost, "--formatter", "json")
        policies = json.loads(p.stdout or "[]") if p.returncode == 0 else []
        if len(policies) != len(defs.get("policies") or []):
            bad.append(f"{len(policies)} policies stored, {len(defs.get('policies') or [])} in the file")
        version = ctl_run("version").stdout.strip()
        if bad:
            error("deploy/rabbitmq/definitions.json: after import into RabbitMQ " + version + ": " + "; ".join(bad))
        else:
            say(
                f"deploy/rabbitmq/definitions.json: imported into RabbitMQ {version} (throwaway vhost); "
                f"{len(got)} queues read back with the app's arguments, {len(policies)} policies accepted"
            )
    finally:
        os.unlink(tmp)
        ctl_run("delete_vhost", vhost)


# ---------------------------------------------------------------------------------------
# deploy/observability
# ---------------------------------------------------------------------------------------

METRIC_RE = re.compile(r"\bworkos_sync_[a-z0-9_]+")


def code_metrics(root: Path) -> set[str]:
    printed = binary_json("metrics")
    if printed is not None:
        return set(printed)
    names: set[str] = set()
    for f in root.glob("crates/*/src/**/*.rs"):
        names |= set(re.findall(r'"(workos_sync_[a-z0-9_]+)"', f.read_text()))
    return names


def check_metric_names(where: str, exprs: list[str], known: set[str]) -> None:
    for expr in exprs:
        for m in METRIC_RE.findall(expr):
            base = re.sub(r"_(bucket|sum|count)$", "", m)
            if m not in known and base not in known:
                error(f"{where}: metric {m} is not emitted by any crate (crates/*/src)")


def github_anchor(heading: str) -> str:
    a = heading.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def run_promtool(promtool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def check_observability(root: Path, validators: Validators, promtool: str | None) -> None:
    obs = root / "deploy/observability"
    known = code_metrics(root)
    if not known:
        error("no workos_sync_* metric names found under crates/*/src")
    runbook = root / "docs/runbook.md"
    anchors = {github_anchor(h) for h in re.findall(r"^#+\s+(.*)$", runbook.read_text(), re.M)} if runbook.is_file() else set()

    # --- Prometheus rules
    rel = "deploy/observability/prometheus-rules.yaml"
    try:
        docs = load_yaml_docs(obs / "prometheus-rules.yaml")
    except (OSError, RenderError) as e:
        error(f"{rel}: {e}")
        docs = []
    rule_spec = None
    before_rules = len(errors)
    for d in docs:
        validators.validate(d, rel)
        if d.get("kind") == "PrometheusRule":
            rule_spec = d.get("spec")
    alerts = []
    if not isinstance(rule_spec, dict):
        error(f"{rel}: no PrometheusRule")
    else:
        for g in rule_spec.get("groups") or []:
            for r in g.get("rules") or []:
                if "alert" not in r:
                    continue
                alerts.append(r["alert"])
                sev = (r.get("labels") or {}).get("severity")
                if sev not in ("critical", "warning", "info"):
                    error(f"{rel}: {r['alert']}: labels.severity must be critical, warning or info")
                ann = r.get("annotations") or {}
                for key in ("summary", "description", "runbook"):
                    if not str(ann.get(key, "")).strip():
                        error(f"{rel}: {r['alert']}: annotation {key} is missing")
                anchor = str(ann.get("runbook", "")).partition("#")[2]
                if anchor and anchor not in anchors:
                    error(f"{rel}: {r['alert']}: runbook anchor #{anchor} is not a heading of docs/runbook.md")
                check_metric_names(f"{rel}: {r['alert']}", [str(r.get("expr", ""))], known)
        if len(set(alerts)) != len(alerts):
            error(f"{rel}: duplicate alert names")

    # --- Grafana dashboard
    grel = "deploy/observability/grafana-dashboard.json"
    dash_exprs: list[tuple[str, str]] = []
    before_dash = len(errors)
    try:
        dash = json.loads((obs / "grafana-dashboard.json").read_text())
    except (OSError, ValueError) as e:
        error(f"{grel}: {e}")
        dash = {}
    if dash:
        for key in ("title", "uid", "schemaVersion", "panels"):
            if key not in dash:
                error(f"{grel}: no {key}")
        tvars = {v.get("name"): v for v in ((dash.get("templating") or {}).get("list") or [])}
        ds = tvars.get("datasource") or {}
        if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            error(f"{grel}: needs a datasource variable `datasource` of type prometheus")
        panels = list(dash.get("panels") or [])
        for p in list(panels):
            panels.extend(p.get("panels") or [])  # collapsed rows keep their panels inside
        ids = [p.get("id") for p in panels]
        if len(set(ids)) != len(ids):
            error(f"{grel}: duplicate panel ids")
        n = 0
        for p in panels:
            if p.get("type") == "row":
                continue
            n += 1
            title = p.get("title") or f"panel {p.get('id')}"
            if not isinstance(p.get("gridPos"), dict):
                error(f"{grel}: {title}: no gridPos")
            if (p.get("datasource") or {}).get("uid") != "${datasource}":
                error(f"{grel}: {title}: datasource must be the ${{datasource}} variable")
            targets = p.get("targets") or []
            if not targets:
                error(f"{grel}: {title}: no targets")
            refids = [t.get("refId") for t in targets]
            if len(set(refids)) != len(refids) or None in refids:
                error(f"{grel}: {title}: each target needs a distinct refId")
            for t in targets:
                expr = str(t.get("expr") or "").strip()
                if not expr:
                    error(f"{grel}: {title}: target {t.get('refId')} has no expr")
                dash_exprs.append((title, expr))
                check_metric_names(f"{grel}: {title}", [expr], known)
        if len(errors) == before_dash:
            say(f"{grel}: {n} panels, each with queries on metrics the code emits")

    # --- promtool: rule syntax, alert unit tests, dashboard query syntax
    if not promtool:
        say("deploy/observability: promtool unavailable; PromQL syntax and alert unit tests skipped")
        return
    if not isinstance(rule_spec, dict):
        return
    before_prom = len(errors)
    version = run_promtool(promtool, ["--version"], obs).stdout.splitlines()[:1]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "full.rules.yaml").write_text(yaml.safe_dump(rule_spec, sort_keys=False))
        p = run_promtool(promtool, ["check", "rules", "full.rules.yaml"], t)
        if p.returncode != 0:
            error(f"{rel}: promtool check rules failed:\n{(p.stdout + p.stderr).strip()}")
        stripped = copy.deepcopy(rule_spec)
        for g in stripped.get("groups") or []:
            for r in g.get("rules") or []:
                r.pop("annotations", None)
        (t / "workos-sync.rules.yaml").write_text(yaml.safe_dump(stripped, sort_keys=False))
        test_file = obs / "prometheus-rules.test.yaml"
        if not test_file.is_file():
            error("deploy/observability/prometheus-rules.test.yaml is missing")
        else:
            shutil.copy(test_file, t / "rules.test.yaml")
            tested = set(re.findall(r"alertname:\s*(\S+)", test_file.read_text()))
            for a in alerts:
                if a not in tested:
                    error(f"{test_file.relative_to(root)}: no unit test for {a}")
            p = run_promtool(promtool, ["test", "rules", "rules.test.yaml"], t)
            if p.returncode != 0:
                error(f"{rel}: promtool test rules failed:\n{(p.stdout + p.stderr).strip()}")
        records = [
            {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")}
            for i, (_, expr) in enumerate(dash_exprs)
        ]
        if records:
            (t / "dash.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
            p = run_promtool(promtool, ["check", "rules", "dash.rules.yaml"], t)
            if p.returncode != 0:
                error(f"{grel}: a query does not parse (promtool):\n{(p.stdout + p.stderr).strip()}")
    if len(errors) == before_prom == before_rules:
        say(
            f"{rel}: {len(alerts)} alerts with severity, summary, description and runbook section; "
            f"promtool ({' '.join(version)}) check rules and unit tests pass; dashboard queries parse"
        )


# ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", type=Path)
    ap.add_argument("--kustomize", help="command that renders a kustomization dir, e.g. 'kubectl kustomize'")
    ap.add_argument("--promtool", help="path of promtool")
    ap.add_argument("--no-live-rabbitmq", action="store_true", help="skip the import into a local RabbitMQ")
    ap.add_argument("--render", type=Path, help="print the fallback renderer's output for DIR and exit")
    args = ap.parse_args()
    if args.render:
        try:
            docs = render(args.render)
        except RenderError as e:
            print(f"render: {e}", file=sys.stderr)
            return 1
        print(yaml.safe_dump_all(docs, sort_keys=False), end="")
        return 0
    if not args.root:
        ap.error("ROOT is required")
    root = args.root.resolve()
    defaults = tomllib.loads((root / "config/default.toml").read_text())
    validators = Validators()
    kustomize = shlex.split(args.kustomize) if args.kustomize else None
    check_k8s(root, kustomize, validators, defaults)
    defs = check_rabbitmq(root, defaults)
    if defs is not None and args.no_live_rabbitmq:
        say("deploy/rabbitmq/definitions.json: live import skipped (--no-live-rabbitmq)")
    elif defs is not None:
        check_rabbitmq_live(defs, defaults)
    check_observability(root, validators, args.promtool)
    if errors:
        print(f"validate-deploy: {len(errors)} problem(s) in deploy/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
