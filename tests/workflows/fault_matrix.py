"""The fault matrix (issue 11): for every mutating AWS operation a workflow performs — derived from
the calls a clean run recorded, not listed by hand — the workflow meets that operation throttled
three times, failing hard, and taking effect with its response lost.

A workflow under test is declared once (`WorkflowUnderTest`); node-pool and upgrade workflows
become rows by declaring them in `WORKFLOWS` the same way. Cases run on small clusters (one
replica, one node pool of none to two nodes: every step still runs), in parallel inside the
module's runtime, grouped where the faults cannot disturb each other:

- throttling is absorbed by botocore's retry of the very call, so one cluster carries every
  operation's three throttles at once (each fault must fire its three times);
- a lost response is followed by botocore's resend of the same call: one cluster carries every
  create operation's lost response, then every delete operation's; duplicates are counted per
  resource kind against the clean run;
- a delete's hard failures run in a chain on one cluster, in the order the operations are first
  called: each run fails at its operation and the next run gets past it, the last one finishes;
- each create's hard failure gets its own cluster (compensation, then a clean delete).

The matrix is run in parts (`PARTS`), each a test of its own that passes alone; in the suite they
share the module's runtime and the operations derived once from a clean run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubestep import inventory, naming
from kubestep.store import Store
from kubestep_local.faults import Fault, is_read_only
from kubestep_local.runtime import LocalRuntime

from .conftest import ROOT, ha_request

REPORTS = ROOT / ".build" / "reports"
FAULTS = ("throttle", "error", "lost-response")
THROTTLES = 3
SPREAD = 3  # clusters the chains of the delete's hard failures are spread over
MIDDLE_SPREAD = 3  # at least this many clusters carry the node-pool and upgrade hard failures
# Inventory kinds that are counts of things (instances come and go with the groups).
COUNTED = (
    "autoScalingGroups",
    "volumes",
    "launchTemplates",
    "securityGroups",
    "loadBalancers",
    "targetGroups",
    "secrets",
)


def small_cluster(name: str) -> dict:
    """One replica, one node pool of 0..2 nodes: every create and delete step runs, cheaply."""
    request = ha_request(name)
    request["cluster"]["spec"]["controlPlane"]["availabilityZones"] = ["us-east-1a"]
    pool = request["nodePools"][0]
    pool["spec"].update(minNodeCount=0, maxNodeCount=2, availabilityZone="us-east-1a")
    request["nodePools"] = [pool]
    return request


@dataclass(frozen=True)
class WorkflowUnderTest:
    """A workflow of the matrix: what its execution input is, whether it needs a RUNNING cluster
    first, and what a hard failure must lead to ("compensates": the run rolls back what it made;
    "stops": the run fails, keeps the record, and a re-run finishes)."""

    name: str
    execution_input: Callable[[str], dict]
    needs_cluster: bool
    on_error: str


CREATE = WorkflowUnderTest("CreateCluster", small_cluster, needs_cluster=False, on_error="compensates")
DELETE = WorkflowUnderTest("DeleteCluster", lambda name: {"clusterName": name}, needs_cluster=True, on_error="stops")

# The node-pool and upgrade workflows run between a cluster's create and its delete, in this
# order: a pool of one node is added, rolled (a label change), deleted; then the control plane
# goes up one minor (the small cluster is 1.35.4).
POOL = "extra"
UPGRADE_TO = "1.36.5"


def extra_pool(name: str) -> dict:
    return {
        "clusterName": name,
        "nodePool": {
            "apiVersion": "kubestep.io/v1",
            "kind": "AWSNodePool",
            "metadata": {"name": POOL},
            "spec": {
                "clusterName": name,
                "version": "1.35.4",
                "availabilityZone": "us-east-1a",
                "minNodeCount": 1,
                "maxNodeCount": 2,
            },
        },
        "rollbackOnFailure": True,
    }


CREATE_POOL = WorkflowUnderTest("CreateNodePool", extra_pool, needs_cluster=True, on_error="compensates")
ROLL_POOL = WorkflowUnderTest(
    "UpdateNodePool",
    lambda name: {"clusterName": name, "nodePool": POOL, "changes": {"labels": {"tier": "web"}}},
    needs_cluster=True,
    on_error="degrades",
)
DELETE_POOL = WorkflowUnderTest(
    "DeleteNodePool", lambda name: {"clusterName": name, "nodePool": POOL}, needs_cluster=True, on_error="stops"
)
UPGRADE = WorkflowUnderTest(
    "UpdateCluster",
    lambda name: {"clusterName": name, "controlPlane": {"version": UPGRADE_TO}},
    needs_cluster=True,
    on_error="degrades",
)
POOL_WORKFLOWS = (CREATE_POOL, ROLL_POOL, DELETE_POOL)
MIDDLE = (*POOL_WORKFLOWS, UPGRADE)
WORKFLOWS = (CREATE, *MIDDLE, DELETE)
BY_NAME = {w.name: w for w in WORKFLOWS}

# The parts the matrix runs in, of about the same length: the faults every workflow must absorb
# (two clusters' lives), the create's hard failures (a cluster each), the other workflows' hard
# failures (chains on a few clusters).
ABSORBED, CREATE_ERRORS, OTHER_ERRORS = "absorbed", "create-errors", "other-errors"
PARTS = (ABSORBED, CREATE_ERRORS, OTHER_ERRORS)


def part_of(workflow: str, fault: str) -> str:
    if fault != "error":
        return ABSORBED
    return CREATE_ERRORS if workflow == CREATE.name else OTHER_ERRORS


@dataclass
class Row:
    workflow: str
    operation: str
    fault: str
    cluster: str = ""
    outcome: str = "not run"
    fired: int = 0
    left: int | None = None
    lost: int | None = None
    duplicates: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.left == 0 and self.lost == 0 and self.duplicates in (0, None)


def mutating_operations(runtime: LocalRuntime, operation_id: str) -> list[str]:
    """The mutating AWS operations an execution's steps called, in the order first called."""
    seen: list[str] = []
    for call in runtime.recorder.calls():
        if call.operation_id == operation_id and not is_read_only(call.action) and call.action not in seen:
            seen.append(call.action)
    return seen


def counts(runtime: LocalRuntime, uid: str, versions: bool = False) -> dict[str, int]:
    """The cluster's resources by kind; `versions`: its launch templates' versions too (a roll
    adds one per template: a resent CreateLaunchTemplateVersion must not add two)."""
    found = inventory.cluster_resources(uid, runtime.boto3_client)
    counted = {kind: len(found[kind]) for kind in COUNTED}
    if not versions:
        return counted
    templates = (
        runtime.boto3_client("ec2").describe_launch_templates(
            LaunchTemplateIds=[t["id"] for t in found["launchTemplates"]]
        )["LaunchTemplates"]
        if found["launchTemplates"]
        else []
    )
    counted["launchTemplateVersions"] = sum(t["LatestVersionNumber"] for t in templates)
    return counted


class Matrix:
    def __init__(self, runtime: LocalRuntime, store: Store, prefix: str = "fm", part: str | None = None) -> None:
        self.runtime = runtime
        self.store = store
        self.prefix = prefix
        self.part = part  # one of PARTS, or None: the whole matrix
        self.operations: dict[str, list[str]] = {}
        self.baselines: dict[str, dict[str, int]] = {}  # workflow -> counts after its clean run
        self.rows: list[Row] = []
        self.timings: list[tuple[int, float, float]] = []  # (job, started after, took)
        self._counter = 0
        self._started = 0.0

    # -- running -----------------------------------------------------------------------------
    def run(self, workflow: str, payload: dict, name: str) -> dict:
        arn = self.runtime.start_execution(workflow, payload, name)
        return self.runtime.wait_execution(arn, timeout=600, poll=0.2)

    def name(self, kind: str) -> str:
        self._counter += 1
        return f"{self.prefix}-{kind}-{self._counter}"

    def uid_of(self, cluster: str, operation_id: str) -> str | None:
        record = self.store.clusters.get(cluster)
        if record is not None:
            return record.uid
        operation = self.store.operations.get(operation_id)
        return operation.uid if operation else None

    def orphans(self, uid: str | None) -> int:
        """Resources of the uid while no record owns it: what a lost record leaves behind."""
        if uid is None or self.store.clusters.owner_of_uid(uid) is not None:
            return 0
        return sum(counts(self.runtime, uid).values())

    def wait_unlocked(self, cluster: str, timeout: float = 60.0) -> bool:
        """A run that failed outside its Catch leaves the lock to the execution-status janitor."""
        deadline = time.monotonic() + timeout
        while self.store.locks.get(cluster) is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)
        return True

    # -- the clean runs the operations are derived from ------------------------------------------
    def derive(self) -> None:
        """One clean cluster's life (create, the middle workflows, delete): each workflow's
        mutating operations and the cluster's resource counts after it."""
        cluster = f"{self.prefix}-baseline"
        created = self.run(CREATE.name, CREATE.execution_input(cluster), f"{cluster}-create")
        assert created["status"] == "SUCCEEDED", created.get("cause")
        uid = self.store.clusters.get(cluster).uid
        self.baselines[CREATE.name] = counts(self.runtime, uid, versions=True)
        self.operations[CREATE.name] = mutating_operations(self.runtime, f"{cluster}-create")
        for workflow in MIDDLE:
            run_id = f"{cluster}-{workflow.name.lower()}"
            done = self.run(workflow.name, workflow.execution_input(cluster), run_id)
            assert done["status"] == "SUCCEEDED", (workflow.name, done.get("cause"))
            self.baselines[workflow.name] = counts(self.runtime, uid, versions=True)
            self.operations[workflow.name] = mutating_operations(self.runtime, run_id)
        deleted = self.run(DELETE.name, DELETE.execution_input(cluster), f"{cluster}-delete")
        assert deleted["status"] == "SUCCEEDED", deleted.get("cause")
        self.operations[DELETE.name] = mutating_operations(self.runtime, f"{cluster}-delete")

    # -- one cluster's life: a create, the middle workflows, a delete, each maybe with faults -------
    def lifecycle(self, create: list[Row], delete: list[Row], middle: dict[str, list[Row]] | None = None) -> None:
        middle = middle or {}
        cluster = self.name("c")
        everything = [*create, *(row for rows in middle.values() for row in rows), *delete]
        for row in everything:
            row.cluster = cluster
        create_id, uid = f"{cluster}-create", None
        faults = self._inject(create)
        result = self.run(CREATE.name, CREATE.execution_input(cluster), create_id)
        self._settle(faults, create)
        uid = self.uid_of(cluster, create_id)
        if create and create[0].fault == "error":
            self._created_despite_error(create[0], cluster, result, uid)
        elif create:
            # One look at the cluster for all the rows: each row's numbers are the cluster's now.
            duplicates = self._duplicates(uid)
            for row in create:
                if result["status"] != "SUCCEEDED":
                    row.problems.append(f"create {result['status']}: {result.get('cause')}")
                row.outcome = f"{result['status']} ({self._how(row)})"
                row.duplicates = duplicates
        if middle and result["status"] == "SUCCEEDED":
            for workflow in MIDDLE:
                self._absorbed(cluster, workflow, middle.get(workflow.name, []), uid)
        if self.store.clusters.get(cluster) is not None:
            self._delete(cluster, delete, uid)
        left = sum(counts(self.runtime, uid).values()) if uid else 0
        orphaned = self.orphans(uid)
        for row in everything:
            row.left = left
            row.lost = (row.lost or 0) + orphaned

    def _absorbed(self, cluster: str, workflow: WorkflowUnderTest, rows: list[Row], uid: str | None) -> None:
        """A middle workflow with faults it must absorb (throttles, lost responses): SUCCEEDED, and
        no more of anything than the clean run had after the same workflow."""
        faults = self._inject(rows)
        result = self.run(workflow.name, workflow.execution_input(cluster), f"{cluster}-{workflow.name.lower()}")
        self._settle(faults, rows)
        if not rows:
            return
        duplicates, lost = self._duplicates(uid, workflow.name), self._lost_record(cluster, workflow, uid)
        for row in rows:
            if result["status"] != "SUCCEEDED":
                row.problems.append(f"{workflow.name} {result['status']}: {result.get('cause')}")
            row.outcome = f"{result['status']} ({self._how(row)})"
            row.duplicates = duplicates
            row.lost = lost

    def _lost_record(self, cluster: str, workflow: WorkflowUnderTest, uid: str | None) -> int:
        """The cluster's record gone, or the pool's record gone while its group or template is
        still there (the pool's part of the cluster's resources, by name)."""
        if uid is None:
            return 0
        if self.store.clusters.get(cluster) is None:
            return sum(counts(self.runtime, uid).values())
        if workflow not in POOL_WORKFLOWS or self.store.node_pools.get(cluster, POOL) is not None:
            return 0
        found = inventory.cluster_resources(uid, self.runtime.boto3_client)
        pool_name = naming.node_pool(uid, POOL)
        kinds = ("autoScalingGroups", "launchTemplates")
        return sum(1 for kind in kinds for r in found[kind] if r["name"] == pool_name)

    def _inject(self, rows: list[Row]) -> list[Fault]:
        times = {"throttle": THROTTLES, "error": 1, "lost-response": 1}
        faults = [Fault(row.fault, row.operation, times=times[row.fault], cluster=row.cluster) for row in rows]
        return self.runtime.inject(*faults) if faults else []

    def _settle(self, faults: list[Fault], rows: list[Row]) -> None:
        for fault, row in zip(faults, rows, strict=True):
            row.fired = (self.runtime.faults.get(fault) or fault).fired
            wanted = THROTTLES if row.fault == "throttle" else 1
            if row.fired != wanted:
                row.problems.append(f"fired {row.fired} times, not {wanted}")
        self.runtime.faults.remove(*faults)

    @staticmethod
    def _how(row: Row) -> str:
        return {"throttle": f"{THROTTLES} throttles absorbed", "lost-response": "resent, found"}.get(row.fault, "")

    def _duplicates(self, uid: str | None, workflow: str = CREATE.name) -> int:
        """More of a kind than the clean run had after the same workflow."""
        baseline = self.baselines[workflow]
        if uid is None:
            return 0
        now = counts(self.runtime, uid, versions=True)
        return sum(max(0, now[kind] - baseline[kind]) for kind in baseline)

    def _created_despite_error(self, row: Row, cluster: str, result: dict, uid: str | None) -> None:
        """A create that met a hard failure: FAILED, ERROR with a Warning naming the step and the
        AWS operation, nothing of the operation left."""
        short = row.operation.split(":", 1)[1]
        if result["status"] != "FAILED":
            row.problems.append(f"create {result['status']} despite a hard failure of {row.operation}")
        if not self.wait_unlocked(cluster):
            row.problems.append("the lock was never released")
        left = sum(counts(self.runtime, uid).values()) if uid else 0
        if left:
            row.problems.append(f"{left} resources of the operation left after compensation")
        operation = self.store.operations.get(f"{cluster}-create")
        if operation is None:
            row.outcome = "FAILED before anything was recorded"
            return
        record = self.store.clusters.get(cluster)
        cause = result.get("cause") or ""
        if record is None and short in cause:
            # The step that writes the cluster's record failed (outside the Catch: no record, no
            # events): the execution's cause names the operation.
            row.outcome = "FAILED writing the cluster's record (cause names it)"
            return
        warnings = [e for e in self.store.events.list(cluster) if e.type == "Warning"]
        named = [e for e in warnings if short in e.message]
        if not named:
            row.problems.append(f"no Warning event names {short}: {[e.message for e in warnings]}")
        step = _step_named(named[0].message) if named else "?"
        if record is not None and record.phase != "ERROR":
            row.problems.append(f"phase {record.phase}, not ERROR")
        compensated = any(e.reason == "RolledBack" for e in self.store.events.list(cluster))
        row.outcome = f"FAILED in {step}" + (" -> compensated" if compensated else " (before anything was made)")

    def _delete(self, cluster: str, rows: list[Row], uid: str | None) -> None:
        faults = self._inject(rows)
        first = self.run(DELETE.name, DELETE.execution_input(cluster), f"{cluster}-delete")
        self._settle(faults, rows)
        for row in rows:
            row.outcome = f"{first['status']} ({self._how(row)})"
            if first["status"] != "SUCCEEDED":
                row.problems.append(f"delete {first['status']}: {first.get('cause')}")
        if first["status"] != "SUCCEEDED":  # a clean delete, then: the rows report the failure
            self.run(DELETE.name, DELETE.execution_input(cluster), f"{cluster}-delete-cleanup")

    def delete_error_chain(self, rows: list[Row]) -> None:
        """One cluster; for each delete operation in the order first called, a DeleteCluster run
        with that operation failing hard: it stops naming it, keeps the record, and the next run
        gets past it; the last run finishes."""
        cluster = self.name("chain")
        created = self.run(CREATE.name, CREATE.execution_input(cluster), f"{cluster}-create")
        uid = self.uid_of(cluster, f"{cluster}-create")
        for attempt, row in enumerate(rows):
            row.cluster = cluster
            if created["status"] != "SUCCEEDED":
                row.problems.append(f"create {created['status']}: {created.get('cause')}")
                continue
            faults = self._inject([row])
            result = self.run(DELETE.name, DELETE.execution_input(cluster), f"{cluster}-delete-{attempt}")
            self._settle(faults, [row])
            self.wait_unlocked(cluster)
            short = row.operation.split(":", 1)[1]
            cause = result.get("cause") or ""
            if result["status"] != "FAILED" or short not in cause:
                row.problems.append(f"delete {result['status']} without naming {short}: {cause[:300]}")
            remaining = sum(counts(self.runtime, uid).values()) if uid else 0
            row.lost = 1 if self.store.clusters.get(cluster) is None and remaining else 0
            row.outcome = f"FAILED in {_step_named(cause)} -> re-run went on"
        final = self.run(DELETE.name, DELETE.execution_input(cluster), f"{cluster}-delete-last")
        left = sum(counts(self.runtime, uid).values()) if uid else 0
        orphaned = self.orphans(uid)
        for row in rows:
            row.left = left
            row.lost = (row.lost or 0) + orphaned
            if final["status"] != "SUCCEEDED":
                row.problems.append(f"the last re-run {final['status']}: {final.get('cause')}")
        if rows and final["status"] == "SUCCEEDED":
            rows[-1].outcome += f"; last re-run {final['status']}"

    def middle_error_chain(self, pool_rows: list[dict[str, Row]], upgrade: Row | None) -> None:
        """One cluster. Each cycle adds, rolls and deletes the pool, one operation of each failing
        hard in its own run: the run fails naming it (a failed update leaves the pool DEGRADED), no
        record is lost, and a re-run under a new execution name succeeds. Then, if given, one
        UpdateCluster operation fails hard the same way and the re-run upgrades. Then the delete
        leaves nothing."""
        cluster = self.name("mid")
        rows = [row for cycle in pool_rows for row in cycle.values()] + ([upgrade] if upgrade else [])
        for row in rows:
            row.cluster = cluster
        created = self.run(CREATE.name, CREATE.execution_input(cluster), f"{cluster}-create")
        uid = self.uid_of(cluster, f"{cluster}-create")
        if created["status"] != "SUCCEEDED":
            for row in rows:
                row.problems.append(f"create {created['status']}: {created.get('cause')}")
        else:
            try:
                for attempt, cycle in enumerate(pool_rows):
                    for workflow in POOL_WORKFLOWS:
                        self._fails_then_converges(cluster, workflow, cycle.get(workflow.name), uid, attempt)
                if upgrade is not None:
                    self._fails_then_converges(cluster, UPGRADE, upgrade, uid, 0)
            except AssertionError as exc:  # a clean run between the faulted ones failed
                rows[0].problems.append(str(exc))
        deleted = self.run(DELETE.name, DELETE.execution_input(cluster), f"{cluster}-delete")
        left = sum(counts(self.runtime, uid).values()) if uid else 0
        orphaned = self.orphans(uid)
        for row in rows:
            if deleted["status"] != "SUCCEEDED":
                row.problems.append(f"the cluster's delete {deleted['status']}: {deleted.get('cause')}")
            row.left = left
            row.lost = (row.lost or 0) + orphaned

    def _fails_then_converges(
        self, cluster: str, workflow: WorkflowUnderTest, row: Row | None, uid: str | None, attempt: int
    ) -> None:
        run_id = f"{cluster}-{workflow.name.lower()}-{attempt}"
        if row is None:  # this cycle has no operation of the workflow left to fail: a clean run
            done = self.run(workflow.name, workflow.execution_input(cluster), run_id)
            if done["status"] != "SUCCEEDED":
                raise AssertionError(f"{cluster}: clean {workflow.name} {done['status']}: {done.get('cause')}")
            return
        faults = self._inject([row])
        result = self.run(workflow.name, workflow.execution_input(cluster), f"{run_id}-fault")
        self._settle(faults, [row])
        if not self.wait_unlocked(cluster):
            row.problems.append("the lock was never released")
        short = row.operation.split(":", 1)[1]
        cause = result.get("cause") or ""
        warnings = [e.message for e in self.store.events.list(cluster) if e.type == "Warning"]
        if result["status"] != "FAILED":
            row.problems.append(f"{workflow.name} {result['status']} despite a hard failure of {row.operation}")
        elif short not in cause and not any(short in w for w in warnings):
            row.problems.append(f"{workflow.name} failed without naming {short}: {cause[:300]}")
        row.lost = self._lost_record(cluster, workflow, uid)
        phase = self._phase(cluster, workflow)
        if workflow.on_error == "degrades" and phase not in ("DEGRADED", "ERROR", "RUNNING"):
            row.problems.append(f"{workflow.name} left phase {phase}")
        again = self.run(workflow.name, workflow.execution_input(cluster), f"{run_id}-rerun")
        if again["status"] != "SUCCEEDED":
            row.problems.append(f"the re-run {again['status']}: {again.get('cause')}")
        if workflow is UPGRADE and self.store.clusters.get(cluster).version != UPGRADE_TO:
            row.problems.append(f"the re-run left version {self.store.clusters.get(cluster).version}")
        row.lost += self._lost_record(cluster, workflow, uid)
        row.outcome = f"FAILED in {_step_named(cause)} ({phase}) -> re-run {again['status']}"

    def _phase(self, cluster: str, workflow: WorkflowUnderTest) -> str:
        if workflow in POOL_WORKFLOWS:
            pool = self.store.node_pools.get(cluster, POOL)
            return pool.phase if pool is not None else "gone"
        record = self.store.clusters.get(cluster)
        return record.phase if record is not None else "gone"

    def for_part(self, part: str) -> Matrix:
        """A matrix of one of the parts, on the operations and baselines this one derived (its
        clusters named apart from other parts' in the same runtime)."""
        matrix = Matrix(self.runtime, self.store, prefix=f"{self.prefix}-{part[0]}", part=part)
        matrix.operations, matrix.baselines = self.operations, self.baselines
        return matrix

    def plan(self) -> list[Callable[[], None]]:
        rows = {
            (wf, fault): [Row(wf, op, fault) for op in self.operations[wf]]
            for wf in self.operations
            for fault in FAULTS
            if self.part in (None, part_of(wf, fault))
        }
        self.rows = [row for key in sorted(rows) for row in rows[key]]
        # Throttles and lost responses: one cluster's whole life each, every workflow's operations
        # faulted in its own run.
        jobs: list[Callable[[], None]] = [
            lambda fault=fault: self.lifecycle(
                rows[(CREATE.name, fault)],
                rows[(DELETE.name, fault)],
                {w.name: rows[(w.name, fault)] for w in MIDDLE if (w.name, fault) in rows},
            )
            for fault in ("throttle", "lost-response")
            if (CREATE.name, fault) in rows
        ]
        # A chain runs one delete after another: the chains are spread over a few clusters.
        jobs += [
            lambda chain=chain: self.delete_error_chain(chain)
            for chain in _spread(rows.get((DELETE.name, "error"), []), SPREAD)
        ]
        jobs += [lambda row=row: self.lifecycle([row], []) for row in rows.get((CREATE.name, "error"), [])]
        # The middle workflows' hard failures: cycles of pool operations spread over clusters that
        # each also take one upgrade operation.
        pool_errors = {w.name: rows.get((w.name, "error"), []) for w in POOL_WORKFLOWS}
        cycles = [
            {name: errors[i] for name, errors in pool_errors.items() if i < len(errors)}
            for i in range(max(map(len, pool_errors.values()), default=0))
        ]
        upgrades = rows.get((UPGRADE.name, "error"), [])
        chains = max(MIDDLE_SPREAD, len(upgrades)) if cycles or upgrades else 0
        upgrade_of = [*upgrades, *([None] * chains)][:chains]
        jobs += [
            lambda part=cycles[i::chains], up=upgrade_of[i]: self.middle_error_chain(part, up) for i in range(chains)
        ]
        return jobs

    def run_all(self, parallel: int = 10) -> None:
        def timed(index: int, job: Callable[[], None]) -> None:
            started = time.monotonic()
            job()
            self.timings.append((index, started - self._started, time.monotonic() - started))

        self._started = time.monotonic()
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for future in [pool.submit(timed, i, job) for i, job in enumerate(self.plan())]:
                future.result()

    # -- the table -----------------------------------------------------------------------------------
    def table(self) -> str:
        head = ("WORKFLOW", "OPERATION", "FAULT", "OUTCOME", "FIRED", "LEFT", "LOST", "DUPLICATES", "CLUSTER")
        lines = [
            (
                r.workflow,
                r.operation,
                r.fault,
                r.outcome,
                str(r.fired),
                str(r.left),
                str(r.lost),
                _dash(r.duplicates),
                r.cluster,
            )
            for r in self.rows
        ]
        widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
        text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [head, *lines]]
        problems = [f"{r.workflow} {r.operation} {r.fault}: {'; '.join(r.problems)}" for r in self.rows if r.problems]
        left, lost = sum(r.left or 0 for r in self.rows), sum(r.lost or 0 for r in self.rows)
        summary = (
            f"{len(self.rows)} cases ({len({(r.workflow, r.operation) for r in self.rows})} operations x "
            f"{len({r.fault for r in self.rows})} faults); resources left {left}, records lost {lost}, "
            f"duplicates {sum(r.duplicates or 0 for r in self.rows)}"
        )
        title = "kubestep fault matrix" + (f" ({self.part})" if self.part else "")
        return "\n".join([title, *text, summary, *problems]) + "\n"

    def write(self, path: Path | None = None) -> str:
        text = self.table()
        path = path or REPORTS / f"fault-matrix-{self.part or 'all'}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return text


def _step_named(message: str) -> str:
    """The step a failure message names: `<Step>: An error occurred (...)` (kubestep.flow.dispatch)."""
    match = re.search(r"\b([A-Z][A-Za-z]+): An error occurred \(", message)
    return match.group(1) if match else "?"


def _spread(rows: list[Row], parts: int) -> list[list[Row]]:
    """Every `parts`-th row together: each part keeps the order the operations are first called."""
    return [rows[i::parts] for i in range(parts) if rows[i::parts]]


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)
