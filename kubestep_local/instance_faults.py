"""`kubestep local fault`: the instance faults the simulator can play, asked for by a user from
another process, so auto-repair can be watched in the local runtime.

The runtime (`kubestep local up`) runs in its own process; the CLI writes a request file into
`$KUBESTEP_HOME/local/instance-faults/` and the runtime's inbox applies it to its instance
simulator and writes the answer beside it (files renamed into place, so neither side reads half
a file). Faults:

- `node-heartbeat`: a node stops writing its periodic report, as a hung or cut-off instance does
  (auto-repair marks it Unhealthy in its group once the heartbeat is late enough);
- `replica-fails`: a replica that was healthy keeps reporting but its API server no longer
  answers (auto-repair replaces it, keeping its etcd volume, once it stays failed);
- `boot-hangs`: the cluster's instances that have not finished booting, and those launched
  later, hang in their bootstrap and never report, as an instance whose cloud-init stalls does
  (the create, roll or repair waits at its health gate, up to its timeout); a runtime stopped
  meanwhile (`kubestep local down`) finds the operation still running;
- `clear`: every instance reports as it should again (an instance already replaced stays so) and
  hung boots finish.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

DIRECTORY = "instance-faults"
KINDS = ("node-heartbeat", "replica-fails", "boot-hangs", "clear")


class FaultRefused(ValueError):
    """The runtime could not apply the fault; the message names the field and why."""


def inbox_path(home: Path) -> Path:
    return home / "local" / DIRECTORY


def _write(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)


def ask(home: Path, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Hand `request` to the running runtime and wait for its answer; raises FaultRefused with the
    runtime's reason, or TimeoutError when no runtime answered."""
    inbox = inbox_path(home)
    inbox.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    _write(inbox / f"{name}.request", request)
    answer_file = inbox / f"{name}.answer"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer_file.exists():
            answer = json.loads(answer_file.read_text())
            answer_file.unlink(missing_ok=True)
            if "error" in answer:
                raise FaultRefused(answer["error"])
            return answer
        time.sleep(0.1)
    with contextlib.suppress(FileNotFoundError):
        (inbox / f"{name}.request").unlink()
    raise TimeoutError(f"the local runtime did not answer within {timeout:.0f} s")


def apply(simulator: Any, request: dict[str, Any]) -> dict[str, Any]:
    """What the simulator does for one request: the instances it affected."""
    kind, cluster = request.get("kind"), str(request.get("cluster") or "")
    if kind == "clear":
        simulator.restore_health()
        simulator.release_boots()
        return {"instances": []}
    if kind == "boot-hangs":
        # By name: the cluster may have no instance yet (its create was just started).
        if not cluster:
            raise FaultRefused("CLUSTER: the cluster whose instances' boots hang")
        for role in ("control-plane", "node"):
            simulator.hold_boots(cluster, role=role)
        return {"instances": []}
    if kind in ("node-heartbeat", "replica-fails") and not any(
        simulator.live_instances(cluster, role) for role in ("control-plane", "node")
    ):
        raise FaultRefused(f"CLUSTER: no cluster {cluster!r} runs instances in the local runtime")
    if kind == "node-heartbeat":
        node = str(request.get("node") or "")
        nodes = simulator.live_instances(cluster, "node")
        if node not in nodes:
            running = ", ".join(nodes) or "none"
            raise FaultRefused(f"NODE: cluster {cluster} has no running node {node} (its running nodes: {running})")
        return {"instances": simulator.stop_heartbeat(cluster, role="node", instance_id=node)}
    if kind == "replica-fails":
        replica = request.get("replica")
        replicas = sorted(r for r in simulator.live_instances(cluster, "control-plane").values() if r is not None)
        if replica not in replicas:
            running = ", ".join(str(r) for r in replicas) or "none"
            raise FaultRefused(
                f"INDEX: cluster {cluster} has no running replica {replica} (its running replicas: {running})"
            )
        return {"instances": simulator.fail_after_healthy(cluster, replica)}
    raise FaultRefused(f"kind: one of {', '.join(KINDS)}, not {kind!r}")


class InstanceFaultInbox:
    """The runtime's side: a thread that answers each request file (runs while the runtime does)."""

    def __init__(self, home: Path, simulator: Any, interval: float = 0.2) -> None:
        self._inbox = inbox_path(home)
        self._simulator = simulator
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubestep-local-instance-faults", daemon=True)

    def start(self) -> None:
        self._inbox.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for request_file in sorted(self._inbox.glob("*.request")):
                self._answer(request_file)

    def _answer(self, request_file: Path) -> None:
        try:
            answer = apply(self._simulator, json.loads(request_file.read_text()))
        except FaultRefused as exc:
            answer = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the asking CLI gets the reason, the runtime goes on
            LOG.exception("instance fault %s failed", request_file.name)
            answer = {"error": f"the runtime could not apply it: {exc}"}
        _write(request_file.with_suffix(".answer"), answer)
        request_file.unlink(missing_ok=True)
