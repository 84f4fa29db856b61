"""Cross-reference checks over the objects one kustomization renders (a Rendered), with
the app's settings: namespace, pod and container security, probes, Secret keys (the keys
of the base/secret.example.yaml template), ConfigMap keys (settings of
config/default.toml), Services, PodDisruptionBudgets, the Ingress (path and body size equal
the receiver's settings), autoscalers and the KEDA trigger. CROSS_CHECKS lists them in the
order they run.

Every problem is reported with error(), prefixed with the kustomization's path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .common import error, ident

NAMESPACE = "workos-sync"
SECRET_NAME = "workos-sync-secrets"
CONFIGMAP_NAME = "workos-sync-config"
# The uid the image runs as (deploy/Dockerfile: useradd --uid 10001, USER 10001).
IMAGE_UID = 10001
# Keys that belong in the Secret, never in a ConfigMap.
SECRETISH = {"DATABASE_URL", "AMQP_URL", "WORKOS_WEBHOOK_SECRET", "WORKOS_API_KEY", "WORKOS_SYNC__WORKER__API_TOKEN"}
POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


def pod_specs(doc: dict) -> Iterator[dict]:
    """The pod spec of a workload (none for other kinds)."""
    path = POD_SPEC_PATHS.get(doc.get("kind"))
    if not path:
        return
    node = doc
    for p in path:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            return
    yield node


def pod_labels(d: dict) -> dict:
    return ((d.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}


def selects(selector: dict, workload: dict) -> bool:
    return bool(selector) and all(pod_labels(workload).get(k) == v for k, v in selector.items())


def image_suffix(image: str) -> str:
    """':tag' or '@sha256:...' or '' of an image reference."""
    if "@" in image:
        return "@" + image.split("@", 1)[1]
    slash, colon = image.rfind("/"), image.rfind(":")
    return image[colon:] if colon > slash else ""


def nginx_size(v: str) -> int | None:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", v.strip())
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def settings_keys(defaults: dict) -> set[str]:
    return {f"WORKOS_SYNC__{sec.upper()}__{key.upper()}" for sec, table in defaults.items() for key in table}


@dataclass
class Rendered:
    """The objects one kustomization renders, with what they are checked against."""

    where: str
    objs: dict[tuple, dict]
    defaults: dict
    secret_keys: set[str]

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.objs.values() if d.get("kind") == kind]

    def named(self, kind: str, name: str | None) -> dict | None:
        return next((d for d in self.of_kind(kind) if d["metadata"].get("name") == name), None)

    def workloads(self) -> list[dict]:
        return [d for d in self.objs.values() if d.get("kind") in POD_SPEC_PATHS]

    def configmaps(self) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.of_kind("ConfigMap")}

    def setting(self, section: str, key: str) -> object:
        """A setting as the app's ConfigMap sets it, else its default."""
        data = (self.configmaps().get(CONFIGMAP_NAME, {}).get("data")) or {}
        return data.get(f"WORKOS_SYNC__{section.upper()}__{key.upper()}", self.defaults[section][key])

    def error(self, msg: str) -> None:
        error(f"{self.where}: {msg}")


def canonical(docs: list[dict], where: str) -> dict[tuple, dict]:
    """Rendered objects by (apiVersion, kind, namespace, name); duplicates are reported."""
    out = {}
    for d in docs:
        md = d.get("metadata") or {}
        key = (d.get("apiVersion"), d.get("kind"), md.get("namespace") or "", md.get("name"))
        if key in out:
            error(f"{where}: duplicate resource {key}")
        out[key] = d
    return out


def check_namespaces(r: Rendered) -> None:
    """Everything namespaced lives in ours."""
    if not r.named("Namespace", NAMESPACE):
        r.error(f"no Namespace {NAMESPACE}")
    for d in r.objs.values():
        if d.get("kind") != "Namespace" and (d.get("metadata") or {}).get("namespace") != NAMESPACE:
            r.error(f"{ident(d)} is not in namespace {NAMESPACE}")


def check_pod_security(r: Rendered, w: dict, spec: dict) -> None:
    psc = spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != IMAGE_UID:
        r.error(f"{ident(w)}: pod securityContext needs runAsNonRoot: true and runAsUser: {IMAGE_UID}")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        r.error(f"{ident(w)}: pod seccompProfile must be RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        r.error(f"{ident(w)}: automountServiceAccountToken should be false (no API access needed)")


def check_container_basics(r: Rendered, cn: str, c: dict) -> None:
    """Security context, memory, a fixed image."""
    sc = c.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False or sc.get("readOnlyRootFilesystem") is not True:
        r.error(f"{cn}: needs allowPrivilegeEscalation: false and readOnlyRootFilesystem: true")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        r.error(f"{cn}: capabilities must drop ALL")
    res = c.get("resources") or {}
    if not (res.get("requests") or {}).get("memory") or not (res.get("limits") or {}).get("memory"):
        r.error(f"{cn}: set a memory request and limit")
    image = str(c.get("image", ""))
    if image_suffix(image) in ("", ":latest"):
        r.error(f"{cn}: image {image!r} must have a fixed tag or digest")


def check_container_probes(r: Rendered, cn: str, c: dict, ports_by_name: dict) -> None:
    """Probes use a port named by this container or an earlier one (added to ports_by_name)."""
    for p in c.get("ports") or []:
        if p.get("name"):
            ports_by_name[p["name"]] = p.get("containerPort")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
        if isinstance(port, str) and port not in ports_by_name:
            r.error(f"{cn}: {probe} uses port {port!r}, which the container does not name")


def check_container_env(r: Rendered, cn: str, c: dict) -> None:
    """ConfigMaps are rendered; Secret keys are read one by one, from our template's keys."""
    configmaps = r.configmaps()
    for src in c.get("envFrom") or []:
        ref = (src.get("configMapRef") or {}).get("name")
        if ref and ref not in configmaps:
            r.error(f"{cn}: envFrom ConfigMap {ref!r} is not rendered")
        if (src.get("secretRef") or {}).get("name"):
            r.error(f"{cn}: envFrom a whole Secret; reference the keys one by one")
    for env in c.get("env") or []:
        skr = (env.get("valueFrom") or {}).get("secretKeyRef")
        if not skr:
            continue
        if skr.get("name") != SECRET_NAME or skr.get("key") not in r.secret_keys:
            r.error(
                f"{cn}: env {env.get('name')} reads {skr.get('name')}/{skr.get('key')}, "
                f"not a key of the {SECRET_NAME} template (base/secret.example.yaml)"
            )
        elif skr.get("key") != env.get("name"):
            r.error(f"{cn}: env {env.get('name')} reads secret key {skr.get('key')}")


def check_app_pod(r: Rendered, w: dict, spec: dict) -> None:
    """Receiver and worker: health probes; the receiver's grace period outlasts its drain."""
    comp = pod_labels(w).get("app.kubernetes.io/component")
    if comp in ("receiver", "worker"):
        c0 = (spec.get("containers") or [{}])[0]
        live = ((c0.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
        ready = ((c0.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
        if live != "/healthz" or ready != "/readyz":
            r.error(f"{ident(w)}: liveness must probe /healthz and readiness /readyz (got {live}, {ready})")
    if comp == "receiver":
        grace = spec.get("terminationGracePeriodSeconds", 30)
        drain = int(r.setting("receiver", "shutdown_timeout_secs"))
        if grace <= drain:
            r.error(f"{ident(w)}: terminationGracePeriodSeconds {grace} must exceed the {drain} s drain")


def check_workloads(r: Rendered) -> None:
    for w in r.workloads():
        for spec in pod_specs(w):
            check_pod_security(r, w, spec)
            ports_by_name: dict = {}
            for c in spec.get("containers") or []:
                cn = f"{ident(w)} container {c.get('name')}"
                check_container_basics(r, cn, c)
                check_container_probes(r, cn, c, ports_by_name)
                check_container_env(r, cn, c)
            check_app_pod(r, w, spec)


def check_configmap_keys(r: Rendered) -> None:
    """ConfigMap keys are real settings (the app ignores unknown WORKOS_SYNC__ keys)."""
    known = settings_keys(r.defaults) | {"WORKOS_API_BASE_URL"}
    for name, cm in r.configmaps().items():
        for key in cm.get("data") or {}:
            if key in SECRETISH:
                r.error(f"ConfigMap {name}: {key} is a secret; it belongs in {SECRET_NAME}")
            elif key not in known:
                r.error(f"ConfigMap {name}: {key} is not a setting of config/default.toml (typo?)")


def check_services(r: Rendered) -> None:
    """Services select pods and target a named port they have."""
    for svc in r.of_kind("Service"):
        sel = (svc.get("spec") or {}).get("selector") or {}
        pods = [w for w in r.workloads() if selects(sel, w)]
        if not pods:
            r.error(f"{ident(svc)} selects no pod template")
        for p in (svc.get("spec") or {}).get("ports") or []:
            tp = p.get("targetPort")
            for w in pods:
                names = {pp.get("name") for s in pod_specs(w) for c in s.get("containers") or [] for pp in c.get("ports") or []}
                if isinstance(tp, str) and tp not in names:
                    r.error(f"{ident(svc)} targets port {tp!r}, which {ident(w)} does not name")


def check_pdbs(r: Rendered) -> None:
    """PodDisruptionBudgets select pods."""
    for pdb in r.of_kind("PodDisruptionBudget"):
        sel = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not any(selects(sel, w) for w in r.workloads()):
            r.error(f"{ident(pdb)} selects no pod template")


def check_ingress_paths(r: Rendered, ing: dict) -> None:
    receiver_path = r.defaults["receiver"]["path"]
    for rule in (ing.get("spec") or {}).get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            svc = (path.get("backend") or {}).get("service") or {}
            target = r.named("Service", svc.get("name"))
            if not target:
                r.error(f"{ident(ing)} routes to missing Service {svc.get('name')!r}")
                continue
            pname = (svc.get("port") or {}).get("name")
            if pname and pname not in {p.get("name") for p in target["spec"].get("ports") or []}:
                r.error(f"{ident(ing)} routes to port {pname!r} that {ident(target)} does not have")
            if path.get("path") != receiver_path:
                r.error(f"{ident(ing)} path {path.get('path')!r} is not receiver.path {receiver_path!r}")


def check_ingresses(r: Rendered) -> None:
    """Backends exist; path and body size match the receiver's settings."""
    max_body = r.defaults["receiver"]["max_body_bytes"]
    for ing in r.of_kind("Ingress"):
        check_ingress_paths(r, ing)
        size = ((ing.get("metadata") or {}).get("annotations") or {}).get("nginx.ingress.kubernetes.io/proxy-body-size")
        if size is None or nginx_size(str(size)) != max_body:
            r.error(
                f"{ident(ing)}: nginx.ingress.kubernetes.io/proxy-body-size {size!r} does not equal "
                f"receiver.max_body_bytes ({max_body})"
            )


def check_autoscalers(r: Rendered) -> None:
    """Autoscalers target existing Deployments, one autoscaler each, which then set no replicas."""
    scaled: dict[str, str] = {}
    for a in r.of_kind("HorizontalPodAutoscaler") + r.of_kind("ScaledObject"):
        ref = (a.get("spec") or {}).get("scaleTargetRef") or {}
        name = ref.get("name")
        if ref.get("kind", "Deployment") != "Deployment" or not r.named("Deployment", name):
            r.error(f"{ident(a)} scales a missing Deployment {name!r}")
        if name in scaled:
            r.error(f"Deployment {name} is scaled by both {scaled[name]} and {ident(a)}")
        scaled[name] = ident(a)
        spec = a.get("spec") or {}
        lo = spec.get("minReplicas", spec.get("minReplicaCount", 1))
        hi = spec.get("maxReplicas", spec.get("maxReplicaCount", 100))
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            r.error(f"{ident(a)}: minimum {lo} above maximum {hi}")
    for dep in r.of_kind("Deployment"):
        if dep["metadata"]["name"] in scaled and "replicas" in (dep.get("spec") or {}):
            r.error(f"{ident(dep)} sets spec.replicas although {scaled[dep['metadata']['name']]} owns it")


def check_rabbitmq_trigger(r: Rendered, so: dict, md: dict) -> None:
    prefix = r.setting("amqp", "prefix")
    if md.get("queueName") != f"{prefix}.events":
        r.error(f"{ident(so)}: queueName {md.get('queueName')!r} is not {prefix}.events")
    if md.get("mode") not in ("QueueLength", "MessageRate"):
        r.error(f"{ident(so)}: mode must be QueueLength or MessageRate")
    if md.get("protocol", "auto") not in ("auto", "amqp", "http"):
        r.error(f"{ident(so)}: protocol must be auto, amqp or http")
    try:
        if float(md.get("value", "")) <= 0:
            raise ValueError
    except ValueError:
        r.error(f"{ident(so)}: value {md.get('value')!r} is not a positive number")


def check_keda(r: Rendered) -> None:
    """The trigger reads our events queue with credentials from our Secret."""
    auths = {d["metadata"]["name"]: d for d in r.of_kind("TriggerAuthentication")}
    for so in r.of_kind("ScaledObject"):
        for t in (so.get("spec") or {}).get("triggers") or []:
            if t.get("type") == "rabbitmq":
                check_rabbitmq_trigger(r, so, t.get("metadata") or {})
            ref = (t.get("authenticationRef") or {}).get("name")
            if ref and ref not in auths:
                r.error(f"{ident(so)}: authenticationRef {ref!r} is not rendered")
    for ta in auths.values():
        for ref in (ta.get("spec") or {}).get("secretTargetRef") or []:
            if ref.get("name") != SECRET_NAME or ref.get("key") not in r.secret_keys:
                r.error(f"{ident(ta)} reads {ref.get('name')}/{ref.get('key')}, not a key of the {SECRET_NAME} template")


CROSS_CHECKS = (
    check_namespaces,
    check_workloads,
    check_configmap_keys,
    check_services,
    check_pdbs,
    check_ingresses,
    check_autoscalers,
    check_keda,
)
