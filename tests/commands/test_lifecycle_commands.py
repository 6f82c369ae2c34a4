"""Issue 10's commands against the API function in-process: apply as create-or-update, diff,
upgrade (now and --at), scale and create nodepool, get versions and schedules, delete schedule;
rule violations exit 2 with the rule named, and start nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from kubestep.store import ClusterRecord
from tests.api.conftest import body_named, execution_input, register
from tests.commands.conftest import ROOT, Service

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EXAMPLE = ROOT / "examples" / "cluster-ha.yaml"


@pytest.fixture
def prod(service: Service) -> ClusterRecord:
    """Cluster prod, RUNNING, nothing holding it (each test starts from a fresh record)."""
    store = service.store
    existing = store.clusters.get("prod")
    if existing is not None:
        release(service)
        store.clusters.delete_everything("prod", existing.uid)
    register(store, body_named("prod"), "create-prod-1")
    return store.clusters.update("prod", phase="RUNNING", current_operation=None)


def started(service: Service, workflow: str) -> list[dict]:
    """The inputs of the workflow's executions, oldest first."""
    runs = sorted(service.executions(workflow), key=lambda e: e["startDate"])
    return [execution_input(e["executionArn"]) for e in runs]


def release(service: Service) -> None:
    lock = service.store.locks.get("prod")
    if lock:
        service.store.locks.release("prod", lock.operation_id)


def test_apply_of_a_changed_manifest_starts_the_update_and_says_what_waits(
    service: Service, prod: ClusterRecord, tmp_path: Path
) -> None:
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        EXAMPLE.read_text()
        .replace("instanceType: m5.large\n    availabilityZones", "instanceType: m5.xlarge\n    availabilityZones")
        .replace("maxNodeCount: 10", "maxNodeCount: 12")
    )
    before = len(service.executions("UpdateCluster"))
    diff = service.run("diff", "-f", str(changed))
    assert diff.exit_code == 1
    assert '~ spec.controlPlane.instanceType: "m5.large" -> "m5.xlarge"' in diff.stdout
    assert "awscluster/prod: apply would start updating (rolls the control plane one replica at a time)" in diff.stdout
    assert "awsnodepool/prod/batch: apply would start scaling (in place)" in diff.stdout

    dry = service.run("apply", "-f", str(changed), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "awscluster/prod updating: rolls the control plane one replica at a time (server dry run)" in dry.stdout
    assert len(service.executions("UpdateCluster")) == before

    result = service.run("apply", "-f", str(changed))
    assert result.exit_code == 0, result.output
    assert "~ spec.maxNodeCount: 10 -> 12" in result.stdout
    assert "awscluster/prod updating (operation update-" in result.stdout
    assert "awsnodepool/prod/batch waits for operation update-" in result.stdout
    [update] = started(service, "UpdateCluster")[before:]
    assert update == {"clusterName": "prod", "controlPlane": {"instanceType": "m5.xlarge"}}
    assert not service.executions("UpdateNodePool")
    # The cluster's lock is the update's; when it ends, applying again makes the rest.
    release(service)
    service.store.clusters.update(
        "prod", spec=service.store.clusters.get("prod").spec.model_copy(deep=True), phase="RUNNING"
    )


def test_apply_refuses_fields_that_cannot_change_in_place_and_starts_nothing(
    service: Service, prod: ClusterRecord, tmp_path: Path
) -> None:
    changed = tmp_path / "cidr.yaml"
    changed.write_text(EXAMPLE.read_text().replace("192.168.0.0/16", "10.244.0.0/16"))
    before = {w: len(service.executions(w)) for w in ("UpdateCluster", "UpdateNodePool", "CreateNodePool")}
    result = service.run("apply", "-f", str(changed))
    assert result.exit_code == 1
    assert "spec.networking.podAddressCIDRBlocks" in result.stderr and "nothing was applied" in result.stderr
    assert {w: len(service.executions(w)) for w in before} == before


def test_apply_adds_a_node_pool_to_an_existing_cluster(service: Service, prod: ClusterRecord, tmp_path: Path) -> None:
    extra = EXAMPLE.read_text().split("\n---\n")[1].replace("name: general", "name: extra")
    manifest = tmp_path / "extra.yaml"
    manifest.write_text(extra)
    before = len(service.executions("CreateNodePool"))
    result = service.run("apply", "-f", str(manifest))
    assert result.exit_code == 0, result.output
    assert "awsnodepool/prod/extra creating (operation nodepool-" in result.stdout
    [request] = started(service, "CreateNodePool")[before:]
    assert request["nodePool"]["metadata"]["name"] == "extra"
    release(service)


def test_upgrade_refuses_skew_with_exit_2_and_starts_nothing(service: Service, prod: ClusterRecord) -> None:
    before = len(service.executions("UpdateCluster"))
    two_minors = service.run("upgrade", "cluster", "prod", "--version", "1.37.1")
    assert two_minors.exit_code == 2
    assert "controlPlane.version" in two_minors.stderr and "one minor version at a time" in two_minors.stderr
    down = service.run("upgrade", "cluster", "prod", "--version", "1.34.13")
    assert down.exit_code == 2 and "cannot downgrade" in down.stderr
    # Only the refused version is named, not each pool's skew against a version that never runs.
    assert "nodePools" not in down.stderr and "nodePools" not in two_minors.stderr, (down.stderr, two_minors.stderr)
    newer_pool = service.run("create", "nodepool", "prod/new", "--version", "1.36.5")
    assert newer_pool.exit_code == 2 and "newer than the control plane" in newer_pool.stderr
    assert len(service.executions("UpdateCluster")) == before

    ok = service.run("upgrade", "cluster", "prod", "--version", "1.36.5", "--node-pools", "all")
    assert ok.exit_code == 0, ok.output
    assert "awscluster/prod upgrading to 1.36.5 (operation update-" in ok.stdout
    request = started(service, "UpdateCluster")[-1]
    assert request == {"clusterName": "prod", "controlPlane": {"version": "1.36.5"}, "nodePools": "all"}
    busy = service.run("scale", "nodepool", "prod/general", "--max", "9")
    assert busy.exit_code == 1 and "LockHeld" in busy.stderr
    release(service)


def test_scale_and_create_nodepool(service: Service, prod: ClusterRecord) -> None:
    assert service.run("scale", "nodepool", "prod/general").exit_code == 2
    assert service.run("scale", "nodepool", "general", "--max", "9").exit_code == 2  # no cluster named
    scaled = service.run("scale", "nodepool", "prod/general", "--min", "3", "--max", "9")
    assert scaled.exit_code == 0, scaled.output
    assert started(service, "UpdateNodePool")[-1] == {
        "clusterName": "prod",
        "nodePool": "general",
        "changes": {"minNodeCount": 3, "maxNodeCount": 9},
    }
    release(service)
    bad_taint = service.run("create", "nodepool", "prod/gpu", "--taint", "gpu")
    assert bad_taint.exit_code == 2 and "KEY=VALUE:EFFECT" in bad_taint.stderr
    created = service.run(
        "create", "nodepool", "prod/gpu", "--instance-type", "g5.xlarge", "--min", "0", "--max", "2",
        "--label", "accelerator=nvidia", "--taint", "nvidia.com/gpu=true:NoSchedule",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    pool = started(service, "CreateNodePool")[-1]["nodePool"]
    assert pool["spec"]["version"] == "1.35.4"  # the control plane's
    assert pool["spec"]["labels"] == {"accelerator": "nvidia"}
    assert pool["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    release(service)


def test_get_versions_and_schedules_and_delete_schedule(service: Service, prod: ClusterRecord) -> None:
    versions = service.run("get", "versions")
    assert versions.exit_code == 0
    header, *rows = versions.stdout.splitlines()
    assert header.split() == ["VERSION", "MINOR", "DEFAULT-FOR", "END-OF-LIFE", "STATUS"]
    assert any("regular" in row for row in rows) and any(row.startswith("1.36.5 ") for row in rows)
    # As of the catalog's date (tests/conftest.py): 1.35-1.37 supported, 1.34 past its end of life.
    status = {row.split()[0]: row.split(None, 4)[4] for row in rows}
    assert {v for v, s in status.items() if s == "supported"} >= {"1.35.9", "1.36.5", "1.37.1", "1.37.0"}
    assert status["1.34.13"] == "end of life: upgrade only"

    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    naive = service.run("upgrade", "cluster", "prod", "--version", "1.36.5", "--at", at.rstrip("Z"))
    assert naive.exit_code == 2 and "time zone" in naive.stderr
    dry = service.run("upgrade", "cluster", "prod", "--version", "1.36.5", "--at", at, "--dry-run")
    assert dry.exit_code == 0, dry.output
    # The time was missing from the dry run's line.
    assert dry.stdout.splitlines()[0] == (
        f"awscluster/prod upgrade to 1.36.5 scheduled at {at} (server dry run: nothing was scheduled)"
    )
    assert not boto3.client("scheduler", "us-east-1").list_schedules()["Schedules"]
    scheduled = service.run("upgrade", "cluster", "prod", "--version", "1.36.5", "--at", at, "-o", "json")
    assert scheduled.exit_code == 0, scheduled.output
    schedule = json.loads(scheduled.stdout)
    assert schedule["at"] == at and schedule["state"] == "SCHEDULED"
    listed = service.run("get", "schedules", "-c", "prod")
    assert schedule["id"] in listed.stdout and "SCHEDULED" in listed.stdout
    assert service.run("delete", "schedule", schedule["id"]).exit_code == 0
    assert "CANCELLED" in service.run("get", "schedule", schedule["id"]).stdout
    again = service.run("delete", "schedule", schedule["id"])
    assert again.exit_code == 1 and "ScheduleNotPending" in again.stderr
    assert not boto3.client("scheduler", "us-east-1").list_schedules()["Schedules"]


def test_cancelling_a_schedule_touches_no_other_clusters_nor_an_earlier_incarnations(service: Service) -> None:
    """`kubestep delete schedule ID` is destructive: it picks the schedule by its id alone (not by
    a cluster name), and another cluster's schedule and one left by an earlier incarnation of the
    same name, sitting next to it, keep their records and their Scheduler schedules."""
    store = service.store
    scheduler = boto3.client("scheduler", "us-east-1")
    for name in ("lyra", "vega"):
        if (existing := store.clusters.get(name)) is not None:
            store.clusters.delete_everything(name, existing.uid)

    def running(name: str, operation: str, uid: str) -> ClusterRecord:
        register(store, body_named(name), operation, uid=uid)
        return store.clusters.update(name, phase="RUNNING", current_operation=None)

    def schedule(name: str, days: int) -> str:
        at = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        result = service.run("upgrade", "cluster", name, "--version", "1.36.5", "--at", at, "-o", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["id"]

    first = running("lyra", "create-lyra-1", "1yra0001")
    earlier = schedule("lyra", 3)  # the first lyra's
    store.clusters.delete_everything("lyra", first.uid)
    second = running("lyra", "create-lyra-2", "1yra0002")
    assert second.uid != first.uid
    target = schedule("lyra", 4)
    running("vega", "create-vega-1", "vega0001")
    neighbour = schedule("vega", 4)

    def states() -> dict[str, tuple[str, bool]]:
        names = {s["Name"] for s in scheduler.list_schedules()["Schedules"]}
        return {i: (store.schedules.get(i).state, i in names) for i in (earlier, target, neighbour)}

    before = states()
    assert before[target] == ("SCHEDULED", True) and before[neighbour] == ("SCHEDULED", True)
    by_name = service.run("delete", "schedule", "lyra")
    assert by_name.exit_code == 1 and "does not exist" in by_name.stderr
    assert states() == before
    cancelled = service.run("delete", "schedule", target)
    assert cancelled.exit_code == 0, cancelled.output
    after = states()
    assert after[target] == ("CANCELLED", False)
    assert after[earlier] == before[earlier] and after[neighbour] == before[neighbour]
    for name in ("lyra", "vega"):
        store.clusters.delete_everything(name, store.clusters.get(name).uid)
    for leftover in (earlier, neighbour):
        if store.schedules.get(leftover).state == "SCHEDULED":
            assert service.run("delete", "schedule", leftover).exit_code == 0


@pytest.mark.parametrize("dry_run", [False, True])
def test_apply_of_an_error_cluster_says_what_the_api_says_and_applies_nothing(
    service: Service, prod: ClusterRecord, dry_run: bool
) -> None:
    """The file matches the stored spec, but the cluster is ERROR: not "unchanged" with exit 0
    (the create or update that failed is not what the file asks for). apply quotes the cluster's
    last error, names the ways on, exits 1 and starts nothing."""
    failure = {
        "error": "BootstrapFailed",
        "message": "replica 2 reported failed:kubeadm-init",
        "operationId": "create-prod-1",
    }
    service.store.clusters.update("prod", phase="ERROR", last_error=failure)
    before = {w: len(service.executions(w)) for w in ("CreateCluster", "UpdateCluster", "UpdateNodePool")}
    result = service.run("apply", "-f", str(EXAMPLE), *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1, result.output
    assert "unchanged" not in result.stdout.split("awsnodepool")[0]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: awscluster/prod is ERROR (BootstrapFailed: replica 2 reported failed:kubeadm-init")
    assert "in operation create-prod-1" in line and "nothing was applied" in line
    assert "kubestep repair cluster prod" in line and "kubestep delete cluster prod" in line
    assert {w: len(service.executions(w)) for w in before} == before
    diff = service.run("diff", "-f", str(EXAMPLE))
    assert diff.exit_code == 1 and "! awscluster/prod is ERROR (BootstrapFailed" in diff.stdout


def test_apply_of_a_cluster_being_deleted_waits_for_the_delete(service: Service, prod: ClusterRecord) -> None:
    service.store.clusters.update("prod", phase="STOPPING", current_operation="delete-abcd1234-1-0a0b0c")
    result = service.run("apply", "-f", str(EXAMPLE))
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "awscluster/prod is being deleted (delete-abcd1234-1-0a0b0c)" in line and "nothing was applied" in line
