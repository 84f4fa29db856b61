"""Schema validation of every manifest, strictly (an unknown field is an error, as it is
for the API server): built-in kinds against the Kubernetes JSON schemas bundled by the
pinned `kubernetes-validate`, for each version in Validators.versions (K8S_MIN_VERSION and
the newest bundled); custom resources (KEDA ScaledObject and TriggerAuthentication,
PrometheusRule, RabbitmqCluster) against the hand-written schemas in CRD_SCHEMAS, which cover the fields we
use and borrow Kubernetes' own definitions (ObjectMeta, HPA behaviour). Then, for
built-in kinds, the values those schemas leave as plain strings (check_values).

Every problem is reported with error(); nothing raises.
"""

from __future__ import annotations

import json
import re
from typing import Any

import importlib_resources
import jsonschema
import kubernetes_validate.utils as kv
from referencing import Registry, Resource

from .common import error, ident

# Kubernetes versions whose schemas every manifest must satisfy: the oldest we support and
# the newest the pinned kubernetes-validate bundles (added at run time).
K8S_MIN_VERSION = "1.30.0"

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
    # The RabbitMQ Cluster Operator's cluster (rabbitmq.com/v1beta1, the fields we use).
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): obj(
        {
            "apiVersion": STR,
            "kind": STR,
            "metadata": metadata_schema(),
            "spec": obj(
                {
                    "replicas": {"type": "integer", "minimum": 1},
                    "image": STR,
                    "imagePullSecrets": {"type": "array", "items": {"$ref": K8S_DEFS + "io.k8s.api.core.v1.LocalObjectReference"}},
                    "resources": {"$ref": K8S_DEFS + "io.k8s.api.core.v1.ResourceRequirements"},
                    "persistence": obj({"storageClassName": STR, "storage": {"type": ["string", "integer"]}}),
                    "rabbitmq": obj(
                        {
                            "additionalConfig": STR,
                            "advancedConfig": STR,
                            "envConfig": STR,
                            "additionalPlugins": {"type": "array", "items": STR},
                        }
                    ),
                    "affinity": {"$ref": K8S_DEFS + "io.k8s.api.core.v1.Affinity"},
                    "tolerations": {"type": "array", "items": {"$ref": K8S_DEFS + "io.k8s.api.core.v1.Toleration"}},
                    "service": obj({"type": {"enum": ["ClusterIP", "LoadBalancer", "NodePort"]}, "annotations": STR_MAP}),
                    "terminationGracePeriodSeconds": INT,
                    "tls": obj({"secretName": STR, "caSecretName": STR, "disableNonTLSListeners": {"type": "boolean"}}),
                },
                ("replicas",),
            ),
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


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def schema_errors(schema: dict, registry: Registry, doc: dict) -> list[jsonschema.ValidationError]:
    """Every error of `doc` against `schema`, in document order."""
    v = jsonschema.Draft202012Validator(schema, registry=registry)
    return sorted(v.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])


def error_path(e: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in e.absolute_path)


class Validators:
    """Kubernetes schemas (kubernetes-validate) and our CRD schemas."""

    def __init__(self) -> None:
        self.versions = sorted({K8S_MIN_VERSION, kv.latest_version()}, key=version_key)
        defs_path = importlib_resources.files("kubernetes_validate").joinpath(
            f"kubernetes-json-schema/v{K8S_MIN_VERSION}-local-strict/_definitions.json"
        )
        defs = json.loads(defs_path.read_text())
        self.registry = Resource.from_contents(defs) @ Registry()

    def validate(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict):
            error(f"{where}: a document is not a mapping")
            return
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str):
                error(f"{where}: a document has no {key}")
                return
        if not isinstance((doc.get("metadata") or {}).get("name"), str):
            error(f"{where}: {doc['kind']} without metadata.name")
            return
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if crd is not None:
            self.validate_crd(crd, doc, where)
        elif self.validate_builtin(doc, where):
            check_values(doc, f"{where}: {ident(doc)}")

    def validate_crd(self, crd: dict, doc: dict, where: str) -> None:
        for e in schema_errors(crd, self.registry, doc):
            error(f"{where}: {ident(doc)} ({doc['apiVersion']}, checked against our CRD schema): {error_path(e)}: {e.message}")

    def validate_builtin(self, doc: dict, where: str) -> bool:
        """Against every version's schema; False (reported) at the first that fails."""
        for version in self.versions:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError:
                for path, message in self.all_errors(doc, version):
                    error(f"{where}: {ident(doc)} does not validate against Kubernetes {version}: {path}: {message}")
                return False
            except kv.SchemaNotFoundError as e:
                error(f"{where}: {ident(doc)}: {e.message} (a typo in apiVersion or kind?)")
                return False
        return True

    def all_errors(self, doc: dict, version: str) -> list[tuple[str, str]]:
        """The first ten schema errors, where kubernetes-validate reports the first only
        (same schema files, same lookup as kubernetes_validate.utils.validate)."""
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
        base = f"kubernetes-json-schema/v{version}-local-strict"
        schema = kv.schema_contents(f"{base}/{doc['kind'].lower()}-{api}.json", version)
        defs = kv.schema_contents(f"{base}/_definitions.json", version)
        registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
        return [(error_path(e), e.message) for e in schema_errors(schema, registry, doc)[:10]]


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


def check_values(node: Any, where: str, path: str = "") -> None:
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
