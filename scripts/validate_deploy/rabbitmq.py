"""deploy/rabbitmq/definitions.json against the topology the app declares, as printed by
the binary (app.topology()): the same exchanges, the same queues with strictly equal
arguments (same JSON types: a delivery limit of "10" is not 10, and RabbitMQ would refuse
the app's redeclare with PRECONDITION_FAILED), the same bindings; everything in vhost "/";
policies that RabbitMQ 3.10 accepts, with keys valid for quorum queues, matching some of
the app's queues and not contradicting their arguments.

Every problem is reported with error(); without the binary's topology only the file's own
layout is checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from . import app
from .common import clean_since, error, error_mark, say

DEFINITIONS = "deploy/rabbitmq/definitions.json"
TOP_LEVEL_KEYS = {
    "vhosts", "policies", "exchanges", "queues", "bindings", "users", "permissions", "topic_permissions",
    "parameters", "global_parameters", "rabbit_version", "rabbitmq_version", "product_name", "product_version",
}
# Policy keys valid for quorum queues on RabbitMQ 3.10 and later.
POLICY_KEYS = {
    "delivery-limit", "dead-letter-exchange", "dead-letter-routing-key", "dead-letter-strategy", "overflow",
    "max-length", "max-length-bytes", "expires", "message-ttl", "max-in-memory-length", "max-in-memory-bytes",
    "queue-leader-locator",
}
# Policy key -> queue argument whose value it duplicates.
POLICY_TO_ARG = {k: "x-" + k for k in POLICY_KEYS}


def strictly_equal(a: Any, b: Any) -> bool:
    """Equal with the same JSON types (True is not 1, 10.0 is not 10)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    return a == b


def load_definitions(root: Path) -> dict | None:
    try:
        defs = json.loads((root / DEFINITIONS).read_text())
    except (OSError, ValueError) as e:
        error(f"{DEFINITIONS}: {e}")
        return None
    if not isinstance(defs, dict):
        error(f"{DEFINITIONS}: not a JSON object")
        return None
    return defs


def check_layout(defs: dict) -> None:
    """Known top-level keys; one vhost, "/" (AMQP_URL's %2f), which every entry is in."""
    unknown = set(defs) - TOP_LEVEL_KEYS
    if unknown:
        error(f"{DEFINITIONS}: unknown top-level keys {sorted(unknown)}")
    vhosts = {v.get("name") for v in defs.get("vhosts") or []}
    if vhosts != {"/"}:
        error(f"{DEFINITIONS}: vhosts must be exactly [\"/\"] (AMQP_URL's %2f), got {sorted(map(str, vhosts))}")
    for section in ("exchanges", "queues", "bindings", "policies"):
        for item in defs.get(section) or []:
            if item.get("vhost") != "/":
                error(f"{DEFINITIONS}: {section} entry {item.get('name') or item} is not in vhost /")


def check_exchanges(defs: dict, topo: dict) -> int:
    xs = {x.get("name"): x for x in defs.get("exchanges") or []}
    if set(xs) != set(topo["exchanges"]):
        error(f"{DEFINITIONS}: exchanges {sorted(xs)} != the app's {sorted(topo['exchanges'])}")
    for name, kind in topo["exchanges"].items():
        x = xs.get(name)
        if x and not (x.get("type") == kind and x.get("durable") is True and x.get("auto_delete") is False
                      and x.get("internal") is False and x.get("arguments") == {}):
            error(f"{DEFINITIONS}: exchange {name} must be {kind}, durable, not auto-delete, not internal, no arguments")
    return len(xs)


def check_queues(defs: dict, topo: dict) -> int:
    qs = {q.get("name"): q for q in defs.get("queues") or []}
    if set(qs) != set(topo["queues"]):
        error(f"{DEFINITIONS}: queues {sorted(qs)} != the app's {sorted(topo['queues'])}")
    for name, args in topo["queues"].items():
        q = qs.get(name)
        if not q:
            continue
        if q.get("durable") is not True or q.get("auto_delete") is not False:
            error(f"{DEFINITIONS}: queue {name} must be durable and not auto-delete")
        if not strictly_equal(q.get("arguments"), args):
            error(
                f"{DEFINITIONS}: queue {name} arguments {json.dumps(q.get('arguments'), sort_keys=True)} != the app's "
                f"{json.dumps(args, sort_keys=True)}; RabbitMQ would refuse the app's redeclare with PRECONDITION_FAILED"
            )
    return len(qs)


def check_bindings(defs: dict, topo: dict) -> int:
    bindings = defs.get("bindings") or []
    bs = {(b.get("source"), b.get("destination"), b.get("routing_key")) for b in bindings
          if b.get("destination_type") == "queue" and b.get("arguments") == {}}
    if bs != topo["bindings"] or len(bindings) != len(topo["bindings"]):
        error(f"{DEFINITIONS}: bindings {sorted(bs)} != the app's {sorted(topo['bindings'])}")
    return len(bs)


def check_policy(pol: dict, topo: dict) -> None:
    name = pol.get("name")
    if pol.get("apply-to") not in ("queues", "exchanges", "all"):
        # RabbitMQ 3.10 (Debian's, ours) rejects quorum_queues/classic_queues (3.12+).
        error(f"{DEFINITIONS}: policy {name}: apply-to {pol.get('apply-to')!r} (RabbitMQ 3.10 accepts queues, exchanges, all)")
    if not isinstance(pol.get("priority", 0), int):
        error(f"{DEFINITIONS}: policy {name}: priority must be an integer")
    definition = pol.get("definition") or {}
    if not definition or set(definition) - POLICY_KEYS:
        error(f"{DEFINITIONS}: policy {name}: unknown or no keys {sorted(set(definition) - POLICY_KEYS)}")
    try:
        rx = re.compile(pol.get("pattern", ""))
    except re.error as e:
        error(f"{DEFINITIONS}: policy {name}: bad pattern: {e}")
        return
    matched = [q for q in topo["queues"] if rx.search(q)]
    if not matched:
        error(f"{DEFINITIONS}: policy {name} matches none of the app's queues")
    for q in matched:
        for key, value in definition.items():
            arg = topo["queues"][q].get(POLICY_TO_ARG.get(key))
            if arg is not None and not strictly_equal(arg, value):
                error(f"{DEFINITIONS}: policy {name}: {key}={value!r} contradicts {q}'s argument {arg!r}")


def check_rabbitmq(root: Path, defaults: dict) -> dict | None:
    """The definitions, checked; None when they do not load."""
    defs = load_definitions(root)
    if defs is None:
        return None
    mark = error_mark()
    check_layout(defs)
    topo = app.topology()
    if topo is None:
        return defs
    nx = check_exchanges(defs, topo)
    nq = check_queues(defs, topo)
    nb = check_bindings(defs, topo)
    policies = defs.get("policies") or []
    for pol in policies:
        check_policy(pol, topo)
    if clean_since(mark):
        say(
            f"{DEFINITIONS}: {nq} queues, {nx} exchanges, {nb} bindings, {len(policies)} policies match the "
            f"app's topology for prefix {defaults['amqp']['prefix']!r} "
            "(config/default.toml; as printed by `workos-sync debug topology`)"
        )
    return defs
