"""RestoreCluster in the emulator: a backup taken by the cluster's etcd leader, then restored:
the control plane stopped (every replica's group to 0) and started again, each replica's new
instance restoring the snapshot at boot (the instance simulator plays the boot-time part: it
reads the restore request and downloads the object with the replica's role, checks its SHA-256
and reports the new cluster token), the health gate, the request cleared, RUNNING; every
replica kept its etcd volume. Refused, changing nothing: another incarnation's backup, a missing
one, a cluster another operation holds; a dry run changes nothing. The module's teardown checks
every call the instances made against their roles' policies (runtime_checks.py)."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from kubestep import restore
from kubestep.api.client import ApiClient, ApiError
from kubestep.bootstrap import bundle
from kubestep.cli.main import main
from kubestep.resources import instances

from . import runtime_checks
from .conftest import ha_request


def until(condition, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} never held")


def cli(runtime, tmp_path, *args: str):
    env = {
        "KUBESTEP_API_URL": runtime.api_url,
        "KUBESTEP_CONTEXT": "",
        "KUBESTEP_HOME": str(tmp_path),
        "AWS_REGION": runtime.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    return CliRunner().invoke(main, list(args), env=env, prog_name="kubestep")


@pytest.fixture(scope="module")
def backed_up(runtime, store):
    """A running 3-replica cluster (one node pool of one node) with one backup."""
    api = ApiClient(runtime.api_url, sign=False)
    request = ha_request("back")
    request["cluster"]["spec"]["backup"] = {"interval": "24h", "retention": "7d"}
    pool = request["nodePools"][0]
    pool["spec"]["minNodeCount"] = pool["spec"]["maxNodeCount"] = 1
    request["nodePools"] = [pool]
    created = api.wait_operation(api.create_cluster(request)["id"], timeout=900, poll=0.5)
    assert created["status"] == "SUCCEEDED", created
    uid = store.clusters.get("back").uid
    backup = until(lambda: store.backups.list(uid), what="the first backup")[0]
    return api, uid, backup


def pool_nodes(runtime, group: str) -> set[str]:
    found = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return {
        m["InstanceId"]
        for g in found["AutoScalingGroups"]
        for m in g["Instances"]
        if not instances.going_away(m["LifecycleState"])
    }


def groups_desired(runtime, store) -> dict[str, int]:
    names = [m.asg_name for m in store.etcd.members("back")]
    found = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=names)
    return {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in found["AutoScalingGroups"]}


def test_refused_requests_and_the_dry_run_change_nothing(runtime, store, backed_up, tmp_path):
    api, uid, backup = backed_up
    operations_before = [o.operation_id for o in store.operations.for_target("back", limit=50)[0]]
    desired = groups_desired(runtime, store)

    missing = cli(runtime, tmp_path, "restore", "cluster", "back", "--from", "20200101T000000Z")
    assert missing.exit_code != 0 and "backupId" in missing.output and "has no backup" in missing.output
    other = cli(runtime, tmp_path, "restore", "cluster", "back", "--from", f"zzother1/{backup.backup_id}")
    assert other.exit_code != 0 and "another cluster incarnation" in other.output, other.output
    absent = cli(runtime, tmp_path, "restore", "cluster", "absent", "--from", backup.backup_id)
    assert absent.exit_code != 0 and "does not exist" in absent.output, absent.output

    dry = cli(runtime, tmp_path, "restore", "cluster", "back", "--from", backup.backup_id, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"backup {backup.backup_id}" in dry.output and f"etcd revision {backup.revision}" in dry.output
    stopping = [line for line in dry.output.splitlines() if line.startswith("  replica ") and " stops (" in line]
    assert len(stopping) == 3 and "nothing was changed" in dry.output, dry.output
    plan = api.restore_cluster("back", f"{uid}/{backup.backup_id}", dry_run=True)
    assert plan["backup"]["sha256"] == backup.sha256 and len(plan["replicas"]) == 3

    assert [o.operation_id for o in store.operations.for_target("back", limit=50)[0]] == operations_before
    assert groups_desired(runtime, store) == desired and set(desired.values()) == {1}
    assert store.backups.restore_request(uid) is None and store.clusters.get("back").phase == "RUNNING"


def test_a_restore_runs_to_running_on_the_kept_volumes(runtime, store, backed_up, tmp_path):
    api, uid, backup = backed_up
    pool = store.node_pools.list("back")[0]
    older = pool_nodes(runtime, pool.asg_name)
    # A node joins after the snapshot: the restored etcd has no Node object for it.
    scaled = api.update_node_pool("back", pool.name, {"minNodeCount": 2, "maxNodeCount": 2})
    assert api.wait_operation(scaled["id"], timeout=900, poll=0.5)["status"] == "SUCCEEDED"
    newer = pool_nodes(runtime, pool.asg_name) - older
    assert len(older) == 1 and len(newer) == 1
    before = {m.index: (m.volume_id, m.instance_id) for m in store.etcd.members("back")}

    operation = api.restore_cluster("back", backup.backup_id)
    assert operation["kind"] == "RestoreCluster" and operation["uid"] == uid
    # Another operation holds the cluster: a second restore is refused (409 LockHeld).
    with pytest.raises(ApiError) as busy:
        api.restore_cluster("back", backup.backup_id)
    assert busy.value.status == 409 and "LockHeld" in str(busy.value.code), busy.value

    done = api.wait_operation(operation["id"], timeout=1200, poll=0.5)
    assert done["status"] == "SUCCEEDED", done
    assert done["result"] == {"backupId": backup.backup_id, "revision": backup.revision}
    record = store.clusters.get("back")
    assert record.phase == "RUNNING" and record.current_operation is None

    after = {m.index: (m.volume_id, m.instance_id) for m in store.etcd.members("back")}
    assert {i: v for i, (v, _) in after.items()} == {i: v for i, (v, _) in before.items()}, "volumes kept"
    assert all(after[i][1] != before[i][1] for i in before), "every replica runs a new instance"
    token = restore.cluster_token(uid, operation["id"])
    for index in before:
        checks = store.reports.replica(uid, index).checks
        assert checks[restore.RESTORED_TOKEN] == token and checks[restore.RESTORED_BACKUP] == backup.backup_id
    assert store.backups.restore_request(uid) is None, "the request is cleared"
    assert store.etcd.config("back").initial_cluster_token == token
    reasons = [e.reason for e in store.events.list("back")]
    for reason in ("Restoring", "ControlPlaneStopping", "ControlPlaneStarting", "Restored", "ClusterRunning"):
        assert reason in reasons, reasons
    # The node launched before the snapshot has its Node object in it: it keeps running; the one
    # launched after it was replaced (its successor registers when its kubelet starts).
    after_nodes = pool_nodes(runtime, pool.asg_name)
    assert older <= after_nodes and not newer & after_nodes and len(after_nodes) == 2, (older, newer, after_nodes)
    assert "ReplacingNodes" in reasons

    # Each replica read the request and downloaded the snapshot with its own role; the restore's
    # calls (the groups stopped and started, the request written and cleared) are granted at
    # resource level by the synthesized policies (the module's teardown checks them all again).
    records = runtime.recorder.call_records()
    downloads = [r for r in records if r.role_name and r.action == "s3:GetObject"]
    # (Every instance also reads its bootstrap bundle, under `bootstrap/<uid>/`.)
    downloads = [r for r in downloads if not (r.params or {}).get("Key", "").startswith(bundle.PREFIX + "/")]
    assert {(r.params or {}).get("Key") for r in downloads} == {backup.object_key}
    assert len({r.role_name for r in downloads}) == 1 and len(downloads) >= 3
    stops = [
        r for r in records if r.operation_id == operation["id"] and r.action == "autoscaling:UpdateAutoScalingGroup"
    ]
    assert sorted({(r.params or {}).get("DesiredCapacity") for r in stops}) == [0, 1]
    # (All records: the instance roles' policies are what ClusterTasks' recorded calls put on them.)
    granted = runtime_checks.granted(runtime, records)
    assert not granted.findings, granted.summary()


def test_a_console_restore_of_a_backup_the_cluster_does_not_have_fails_in_the_first_state(runtime, store, backed_up):
    """The console input (stepfunctions/examples/RestoreCluster.json) names a backup id: one this
    cluster does not have fails in ValidateRequest, naming the field, before any lock or change."""
    import json

    from .conftest import ROOT

    payload = json.loads((ROOT / "stepfunctions" / "examples" / "RestoreCluster.json").read_text())
    payload["clusterName"] = "back"
    result = runtime.run_execution("RestoreCluster", payload, name="console-restore-missing", check=False, timeout=300)
    assert result["error"] == "InvalidRequest" and "backupId" in result["cause"], result
    assert store.clusters.get("back").phase == "RUNNING" and store.locks.get("back") is None


def test_a_snapshot_whose_checksum_is_not_the_records_fails_the_restore_and_is_abandoned(runtime, store, backed_up):
    """A replica refuses a snapshot whose SHA-256 is not its record's (`kubestep-etcd-snapshot
    restore` does; the simulator plays it) and says why: the restore fails at once, the cluster is
    DEGRADED, the request is cleared, the replicas' groups are back to 1, the lock is released."""
    api, uid, backup = backed_up
    store.backups.put(uid, backup.model_copy(update={"sha256": "0" * 64}))
    try:
        operation = api.restore_cluster("back", backup.backup_id)
        done = api.wait_operation(operation["id"], timeout=1200, poll=0.5)
    finally:
        store.backups.put(uid, backup)
    assert done["status"] == "FAILED" and "SHA-256 mismatch" in (done["cause"] or ""), done
    record = store.clusters.get("back")
    assert record.phase == "DEGRADED" and record.current_operation is None and store.locks.get("back") is None
    assert store.backups.restore_request(uid) is None
    assert set(groups_desired(runtime, store).values()) == {1}
    assert "RestoreFailed" in {e.reason for e in store.events.list("back") if e.type == "Warning"} or any(
        "SHA-256 mismatch" in e.message for e in store.events.list("back") if e.type == "Warning"
    )
