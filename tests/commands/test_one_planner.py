"""What the tool says agrees with itself: `diff`, `apply --dry-run` and `apply` share one planner
(the server's dry run), so after an upgrade the older manifest is a refused downgrade in all
three; a scale or an upgrade that changes nothing is "unchanged" and starts nothing; while a
create rolls back, its replicas are shown as going, not `ok`; end-of-life versions are warned
about where they are listed and where they are upgraded to."""

from __future__ import annotations

import json

import pytest

from kubestep.store import ClusterRecord, EtcdMember, Operation
from tests.api.conftest import body_named, register
from tests.commands.conftest import ROOT, Service

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EXAMPLE = ROOT / "examples" / "cluster-ha.yaml"  # prod, control plane 1.35.4


@pytest.fixture(scope="module")
def prod(service: Service) -> ClusterRecord:
    """prod, RUNNING, its control plane upgraded to 1.36.5 since examples/cluster-ha.yaml was applied."""
    record = register(service.store, body_named("prod"), "create-prod0001-1")
    spec = record.spec.model_copy(deep=True)
    spec.spec.control_plane.version = "1.36.5"
    return service.store.clusters.update("prod", spec=spec, version="1.36.5", phase="RUNNING", current_operation=None)


def test_diff_dry_run_and_apply_refuse_a_downgrade_in_the_same_words(service: Service, prod: ClusterRecord) -> None:
    before = {w: len(service.executions(w)) for w in ("UpdateCluster", "UpdateNodePool")}
    refusal = "cannot downgrade from 1.36.5 to 1.35.4"

    diff = service.run("diff", "-f", str(EXAMPLE))
    assert diff.exit_code == 1, diff.output
    assert '~ spec.controlPlane.version: "1.36.5" -> "1.35.4"' in diff.stdout
    assert "apply would start" not in diff.stdout
    (refused,) = [line for line in diff.stdout.splitlines() if line.startswith("! awscluster/prod")]
    assert refused.startswith("! awscluster/prod: apply would refuse it: ") and refusal in refused

    for args in (["apply", "-f", str(EXAMPLE), "--dry-run"], ["apply", "-f", str(EXAMPLE)]):
        result = service.run(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: awscluster/prod: ") and refusal in result.stderr
        assert result.stderr.rstrip().endswith("nothing was applied")
    assert {w: len(service.executions(w)) for w in before} == before


def test_a_scale_to_the_bounds_a_pool_has_is_unchanged(service: Service, prod: ClusterRecord) -> None:
    before = len(service.executions("UpdateNodePool"))
    for args in (["--min", "2", "--max", "6"], ["--max", "6"], ["--min", "2", "--wait"]):
        result = service.run("scale", "nodepool", "prod/general", *args)
        assert result.exit_code == 0, result.output
        assert result.stdout == "awsnodepool/prod/general unchanged (its bounds are already these)\n"
    as_json = service.run("scale", "nodepool", "prod/general", "--min", "2", "-o", "json")
    assert json.loads(as_json.stdout) == {"object": "awsnodepool/prod/general", "action": "unchanged"}
    assert len(service.executions("UpdateNodePool")) == before


def test_an_upgrade_to_the_version_it_runs_is_unchanged(service: Service, prod: ClusterRecord) -> None:
    before = len(service.executions("UpdateCluster"))
    result = service.run("upgrade", "cluster", "prod", "--version", "1.36.5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "awscluster/prod unchanged (already at 1.36.5)\n"
    assert len(service.executions("UpdateCluster")) == before


def test_a_create_that_rolls_back_shows_its_replicas_going(service: Service) -> None:
    record = register(service.store, body_named("going"), "create-going001-1")
    for index, zone in enumerate(["us-east-1a", "us-east-1b", "us-east-1c"]):
        member = EtcdMember(
            index=index,
            zone=zone,
            subnet_id=f"subnet-0000000{index}",
            name=f"etcd-{index}",
            peer_name=f"cp-{index}.{record.uid}.demo.kubestep.internal",
            asg_name=f"gke-{record.uid}-cp-{index}",
            volume_id=f"vol-0000000{index}",
            instance_id=f"i-0000000{index}",
        )
        service.store.etcd.plan_member("going", member)
        service.store.reports.write(record.uid, status="ok", instance_id=f"i-0000000{index}", replica=index)
    service.store.operations.create(
        Operation(operation_id="create-going001-1", kind="CreateCluster", target="going", uid=record.uid)
    )
    # Cancelled: the create's compensation deletes what it made (the record goes at its end).
    service.store.operations.set("create-going001-1", compensating=True, error="OperationCancelled")
    service.store.clusters.update("going", phase="ERROR", current_operation="create-going001-1")

    described = service.run("describe", "cluster", "going")
    assert described.exit_code == 0, described.output
    assert "Rolling back:" in described.stdout
    replica_rows = [line for line in described.stdout.splitlines() if "gke-" in line and "-cp-" in line]
    assert len(replica_rows) == 3
    assert all(row.rstrip().endswith("deleting (rollback)") for row in replica_rows), replica_rows
    listed = service.run("get", "cluster", "going")
    assert listed.stdout.splitlines()[1].split()[:4] == ["going", "ERROR", "1.35.4", "0/3"]
    view = json.loads(service.run("get", "cluster", "going", "-o", "json").stdout)
    assert view["status"]["rollingBack"] is True
    assert {r["deleting"] for r in view["status"]["controlPlane"]["replicas"]} == {True}
    operation = json.loads(service.run("get", "operation", "create-going001-1", "-o", "json").stdout)
    assert operation["status"] == "ROLLING_BACK"


def test_end_of_life_versions_are_warned_about(service: Service, prod: ClusterRecord) -> None:
    """As of the catalog's date (2026-12-05): 1.34 is past its end of life, 1.35 ends in 85 days."""
    listed = service.run("get", "versions")
    assert listed.exit_code == 0
    warnings = [line for line in listed.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: Kubernetes 1.35 reaches its end of life on 2027-02-28, in 85 days: plan the next upgrade",
        "warning: Kubernetes 1.34 reached its end of life on 2026-10-27: no new clusters, node pools or upgrades "
        "to it; clusters on it should upgrade to 1.35",
    ]
    assert "1.34" in listed.stdout  # the table itself is unchanged: warnings go to stderr

    register(service.store, body_named("patchy"), "create-patchy01-1")  # at 1.35.4
    service.store.clusters.update("patchy", phase="RUNNING", current_operation=None)
    patch = service.run("upgrade", "cluster", "patchy", "--version", "1.35.9", "--dry-run")
    assert patch.exit_code == 0, patch.output
    assert patch.stderr == (
        "warning: Kubernetes 1.35 reaches its end of life on 2027-02-28, in 85 days: plan the next upgrade\n"
    )
    later = service.run("upgrade", "cluster", "prod", "--version", "1.37.1", "--dry-run")
    assert later.exit_code == 0 and later.stderr == "", later.output  # 1.37 lives until 2027-10
