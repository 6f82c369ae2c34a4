"""A restore's request checks (kubestep/restore.py): the backup must be one of the cluster's
current incarnation's, named by id or `<uid>/<id>`; anything else is refused naming
`backupId`, and so are a busy cluster (LockHeld) and one that never ran. The dry run says what
would happen and changes nothing."""

from __future__ import annotations

import pytest

from kubestep import operations, restore
from kubestep.errors import ClusterNotReady, InvalidSpec, LockHeld, NotFound
from kubestep.models import AWSCluster
from kubestep.store import ClusterRecord, EtcdMember, keys
from kubestep.store.backups import BackupPolicy, BackupRecord

from .conftest import EXAMPLES, configure, load_service

CLUSTER = AWSCluster.model_validate({"metadata": {"name": "c"}, "spec": {"controlPlane": {"version": "1.35.1"}}})
UID = "a1b2c3d4"
BACKUP_ID = "20261205T101500Z"


@pytest.fixture
def settings(aws, monkeypatch):
    return configure(monkeypatch, load_service(EXAMPLES / "management-service.yaml"))


def backup(backup_id: str = BACKUP_ID, uid: str = UID) -> BackupRecord:
    return BackupRecord(
        backup_id=backup_id,
        taken_at="2026-12-05T10:15:00+00:00",
        revision=42,
        size=2048,
        sha256="ab" * 32,
        kubernetes_version="1.35.1",
        object_key=f"backups/{uid}/{backup_id}.db",
        replica=0,
    )


@pytest.fixture
def cluster(store, settings) -> ClusterRecord:
    record = ClusterRecord(name="c", uid=UID, spec=CLUSTER, version="1.35.1", phase="RUNNING")
    store.clusters.create(record, [])
    store.backups.put(UID, backup())
    store.backups.publish_policy(
        UID, BackupPolicy(bucket="svc-backups", prefix=f"backups/{UID}/", interval_minutes=30, retention_days=7)
    )
    store.etcd.plan_member(
        "c", EtcdMember(index=0, zone="us-east-1a", subnet_id="subnet-1", name="gke-r0", peer_name="r0.example")
    )
    store.etcd.update_member("c", 0, asg_name="gke-a1b2c3d4-cp-0", instance_id="i-0123456789abcdef0", volume_id="vol-1")
    return store.clusters.get("c")


def refused_field(call) -> tuple[str, str]:
    with pytest.raises(InvalidSpec) as refused:
        call()
    assert len(refused.value.problems) == 1
    return refused.value.problems[0]


def test_a_backup_of_this_incarnation_is_found_by_id_or_by_uid_and_id(store, cluster):
    assert restore.resolve_backup(store, cluster, BACKUP_ID).backup_id == BACKUP_ID
    assert restore.resolve_backup(store, cluster, f"{UID}/{BACKUP_ID}").backup_id == BACKUP_ID


def test_an_earlier_or_other_incarnations_backup_is_refused_naming_the_field(store, cluster):
    # The same id, recorded for an earlier cluster of the same name (another uid).
    store.backups.put("zzearlier", backup(uid="zzearlier"))
    field, rule = refused_field(lambda: restore.resolve_backup(store, cluster, f"zzearlier/{BACKUP_ID}"))
    assert field == "backupId" and "another cluster incarnation (uid zzearlier)" in rule and UID in rule


def test_a_missing_backup_is_refused_naming_the_field(store, cluster):
    field, rule = refused_field(lambda: restore.resolve_backup(store, cluster, "20200101T000000Z"))
    assert field == "backupId" and "has no backup 20200101T000000Z" in rule and "kubestep get backups c" in rule


@pytest.mark.parametrize("reference", ["latest", "2026-12-05", "UPPER/20261205T101500Z", "a/b/20261205T101500Z", ""])
def test_a_malformed_reference_is_refused_naming_the_field(reference):
    field, _ = refused_field(lambda: restore.parse_restore_request({"clusterName": "c", "backupId": reference}))
    assert field == "backupId"


def test_identity_fields_in_the_input_are_refused():
    field, _ = refused_field(
        lambda: restore.parse_restore_request({"clusterName": "c", "backupId": BACKUP_ID, "uid": UID})
    )
    assert field == "uid"


def test_a_cluster_that_never_ran_is_refused(store, settings, cluster):
    store.clusters.update("c", phase="PROVISIONING")
    with pytest.raises(ClusterNotReady, match="RUNNING or DEGRADED"):
        operations.plan_restore(settings, store, "c", BACKUP_ID)


def test_a_missing_cluster_is_not_found(store, settings):
    with pytest.raises(NotFound):
        operations.plan_restore(settings, store, "absent", BACKUP_ID)


def test_a_cluster_with_a_running_operation_is_refused_with_lock_held(store, settings, cluster, monkeypatch):
    # A lock held by an execution that runs (the same judgement the start makes).
    monkeypatch.setattr(operations, "execution_running", lambda _settings: lambda _arn: True)
    store.locks.acquire("c", "update-other", "arn:aws:states:us-east-1:123456789012:execution:x:update-other", None)
    with pytest.raises(LockHeld):
        operations.plan_restore(settings, store, "c", BACKUP_ID)


def test_the_dry_run_says_what_happens_and_changes_nothing(store, settings, cluster):
    before = store.table.table.scan()["Items"]
    plan = operations.plan_restore(settings, store, "c", BACKUP_ID)
    assert plan["dryRun"] is True and plan["kind"] == "RestoreCluster" and plan["uid"] == UID
    assert plan["backup"] | {"location": None} == {
        "backupId": BACKUP_ID,
        "takenAt": "2026-12-05T10:15:00+00:00",
        "revision": 42,
        "size": 2048,
        "sha256": "ab" * 32,
        "kubernetesVersion": "1.35.1",
        "location": None,
        "uid": UID,
        "clusterDeleted": False,
        "clusterDeletedAt": None,
    }
    assert plan["backup"]["location"] == f"s3://svc-backups/backups/{UID}/{BACKUP_ID}.db"
    assert [(r["replica"], r["instanceId"], r["etcdVolume"]) for r in plan["replicas"]] == [
        (0, "i-0123456789abcdef0", "vol-1")
    ]
    assert store.table.table.scan()["Items"] == before
    assert store.backups.restore_request(UID) is None


def test_the_restore_request_keeps_its_token_for_a_retry_and_is_per_operation(store, cluster):
    first = restore.restore_request(backup(), "svc-backups", UID, "restore-op-1", "2026-12-05T11:00:00+00:00")
    stored = store.backups.put_restore_request(UID, first)
    again = restore.restore_request(backup(), "svc-backups", UID, "restore-op-1", "2026-12-05T11:05:00+00:00")
    assert store.backups.put_restore_request(UID, again) == stored
    other = restore.cluster_token(UID, "restore-op-2")
    assert stored.cluster_token.startswith(f"gke-{UID}-etcd-") and other != stored.cluster_token
    item = store.table.get(keys.cluster_access_pk(UID), keys.RESTORE_REQUEST_SK)
    assert item["objectKey"] == f"backups/{UID}/{BACKUP_ID}.db" and item["sha256"] == "ab" * 32
    assert store.backups.clear_restore_request(UID) and store.backups.restore_request(UID) is None
