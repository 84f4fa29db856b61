"""The live check of deploy/rabbitmq/definitions.json: when a local RabbitMQ node answers
`rabbitmqctl`, the file is imported into a throwaway vhost (deleted afterwards), and the
queues are read back with the app's arguments, stored with the AMQP types the app
declares them with (app.topology()), and every policy accepted.

Skipped, with a line saying so, without rabbitmqctl or a node; a refused import or a
difference is reported with error().
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from . import app
from .common import error, say
from .rabbitmq import DEFINITIONS

INT_TYPES = ("long", "signedint", "short", "byte")
SECTIONS_WITH_VHOST = ("exchanges", "queues", "bindings", "policies")


@dataclass
class Ctl:
    path: str

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([self.path, "-q", *args], capture_output=True, text=True, timeout=timeout)

    def answers(self) -> bool:
        try:
            return self.run("status", timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def json(self, *args: str) -> list | None:
        p = self.run(*args, "--formatter", "json")
        return json.loads(p.stdout or "[]") if p.returncode == 0 else None


def in_vhost(defs: dict, vhost: str) -> dict:
    """A copy of the definitions with every vhost renamed to `vhost`."""
    d = copy.deepcopy(defs)
    for v in d.get("vhosts") or []:
        v["name"] = vhost
    for section in SECTIONS_WITH_VHOST:
        for item in d.get(section) or []:
            item["vhost"] = vhost
    return d


def read_back_queues(ctl: Ctl, vhost: str, expected: set[str]) -> dict[str, dict]:
    """The queues of the vhost, waited for: the import is asynchronous."""
    got: dict[str, dict] = {}
    for _ in range(40):
        listed = ctl.json("list_queues", "-p", vhost, "name", "durable", "arguments", "policy")
        if listed is not None:
            got = {q["name"]: q for q in listed}
            if set(got) >= expected:
                break
        time.sleep(0.25)
    return got


def queue_problems(expected: dict[str, dict], got: dict[str, dict]) -> list[str]:
    bad = []
    for name, args in expected.items():
        q = got.get(name)
        if not q:
            bad.append(f"{name} missing")
            continue
        stored = {k: v for k, _t, v in q["arguments"]}
        types = {k: t for k, t, _v in q["arguments"]}
        if stored != args:
            bad.append(f"{name} arguments {stored} != {args}")
        for k, v in args.items():
            ok = types.get(k) == "longstr" if isinstance(v, str) else types.get(k) in INT_TYPES
            if not ok:
                bad.append(f"{name} {k} stored as {types.get(k)}")
    return bad


def import_and_compare(ctl: Ctl, defs: dict, vhost: str, path: str, topo: dict) -> None:
    p = ctl.run("import_definitions", path)
    if p.returncode != 0:
        error(f"{DEFINITIONS}: RabbitMQ refused the import:\n{(p.stdout + p.stderr).strip()}")
        return
    got = read_back_queues(ctl, vhost, set(topo["queues"]))
    bad = queue_problems(topo["queues"], got)
    policies = ctl.json("list_policies", "-p", vhost) or []
    in_file = len(defs.get("policies") or [])
    if len(policies) != in_file:
        bad.append(f"{len(policies)} policies stored, {in_file} in the file")
    version = ctl.run("version").stdout.strip()
    if bad:
        error(f"{DEFINITIONS}: after import into RabbitMQ {version}: " + "; ".join(bad))
    else:
        say(
            f"{DEFINITIONS}: imported into RabbitMQ {version} (throwaway vhost); "
            f"{len(got)} queues read back with the app's arguments, {len(policies)} policies accepted"
        )


def check_rabbitmq_live(defs: dict) -> None:
    path = shutil.which("rabbitmqctl")
    if not path:
        say(f"{DEFINITIONS}: live import skipped (no rabbitmqctl)")
        return
    ctl = Ctl(path)
    if not ctl.answers():
        say(f"{DEFINITIONS}: live import skipped (no local RabbitMQ node answers)")
        return
    topo = app.topology()
    if topo is None:
        return  # reported by app.topology()
    vhost = f"workos-sync-validate-{os.getpid()}"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(in_vhost(defs, vhost), f)
    os.chmod(f.name, 0o644)  # the broker process (user rabbitmq) reads the file itself
    try:
        import_and_compare(ctl, defs, vhost, f.name, topo)
    finally:
        os.unlink(f.name)
        ctl.run("delete_vhost", vhost)
