"""The real instance takes its cluster's etcd backups, proven with the cluster harness (three
replicas, one real etcd each, the `aws` stand-in): every replica carries the backup timer, which
runs `kubestep-bootstrap backup` every minute; only the etcd leader takes a snapshot, and only
when the policy item the management service publishes says one is due (none yet, the newest an
interval old, or one asked for since: kubestep/backups.py `is_due`). It uploads the checked
snapshot to its cluster's prefix with its retention tag and records it as the emulator's leader
does (`kubestep.store.backups.BackupRecord`, and `LATEST`)."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from boto3.dynamodb.types import TypeDeserializer

from kubestep import backups
from kubestep.bootstrap import host
from kubestep.bootstrap.cloud_init import files
from kubestep.store import keys
from kubestep.store.backups import BACKUP_ATTRIBUTES, BackupRecord
from tests.bootstrap.cluster_harness import ClusterHarness
from tests.bootstrap.conftest import admins_item, backup_policy_item, control_plane

VERSION = "1.36.5"
UID = "abcd1234"
BUCKET = "svc-kubestep-state-0123456789ab"
BOOTSTRAP = "/usr/local/sbin/kubestep-bootstrap"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    harness = ClusterHarness(tmp_path_factory.mktemp("backups"))
    try:
        harness._update("dynamodb.json", lambda items: items.update(admins_item(uid=UID)))
        first, booted = harness.boot(harness.replica(0, VERSION))
        assert booted.ok, booted.stderr
        joiners = [harness.start(harness.replica(i, VERSION)) for i in (1, 2)]
        for joiner in joiners:
            booted = harness.wait(joiner)
            assert booted.ok, booted.stderr
        yield harness
    finally:
        harness.close()


def _item_key(pk: str, sk: str) -> str:
    return f"{pk}|{sk}"


def _publish_policy(cluster: ClusterHarness, interval_minutes: int = 30, requested_at: str | None = None) -> None:
    item = backup_policy_item(BUCKET, UID, interval_minutes, requested_at)
    cluster._update("dynamodb.json", lambda items: items.update(item))


def _records(cluster: ClusterHarness) -> dict[str, dict]:
    deserializer = TypeDeserializer()
    prefix = keys.backups_pk(UID) + "|"
    return {
        key.removeprefix(prefix): {k: deserializer.deserialize(v) for k, v in item.items()}
        for key, item in cluster.dynamodb().items()
        if key.startswith(prefix)
    }


def _replicas(cluster: ClusterHarness) -> list[dict]:
    live = [i for i in cluster.instances().values() if i.get("replica") is not None and i["alive"]]
    return sorted(live, key=lambda i: i["replica"])


def _leader(cluster: ClusterHarness) -> dict:
    status = cluster.etcdctl("endpoint", "status", "-w", "json")
    assert status.returncode == 0, status.stderr
    entries = json.loads(status.stdout)
    leader_id = entries[0]["Status"]["leader"]
    name = next(m["name"] for m in cluster.members() if m["ID"] == leader_id)
    return next(i for i in _replicas(cluster) if i["replica_name"] == name)


def _backup_everywhere(cluster: ClusterHarness) -> dict[str, subprocess.CompletedProcess]:
    return {i["id"]: cluster.run(i, BOOTSTRAP, "backup") for i in _replicas(cluster)}


def test_every_replica_carries_the_backup_timer_and_a_node_none():
    replica = {f.path: f.content for f in files(control_plane(1))}
    assert f"ExecStart={BOOTSTRAP} backup" in replica["/etc/systemd/system/kubestep-backup.service"]
    timer = replica["/etc/systemd/system/kubestep-backup.timer"]
    assert "OnUnitActiveSec=60s" in timer and host.BACKUP_TIMER in timer
    assert "/usr/local/sbin/kubestep-etcd-snapshot" in replica


def test_only_the_leader_uploads_a_checked_snapshot_and_records_it(cluster):
    for i in range(3):
        assert cluster.etcdctl("put", f"/kubestep-test/before-{i}", "v").returncode == 0
    _publish_policy(cluster)
    leader = _leader(cluster)
    runs = _backup_everywhere(cluster)
    assert all(run.returncode == 0 for run in runs.values()), {k: r.stderr for k, r in runs.items()}
    for instance_id, run in runs.items():
        if instance_id != leader["id"]:
            assert "not the etcd leader: no backup" in run.stderr
    objects = json.loads((cluster.shared / "s3.json").read_text())
    assert len(objects) == 1
    ((location, meta),) = objects.items()
    assert meta == {"tagging": f"{backups.RETENTION_TAG}=7", "instance": leader["id"]}
    records = _records(cluster)
    assert set(records) == {keys.LATEST_BACKUP_SK, keys.backup_sk(records["LATEST"]["backupId"])}
    item = records[keys.LATEST_BACKUP_SK]
    assert set(item) <= set(BACKUP_ATTRIBUTES)
    record = BackupRecord.from_item(item)
    assert record is not None and location == f"{BUCKET}/{record.object_key}"
    assert record.object_key == backups.object_key(UID, record.backup_id)
    assert record.backup_id == record.taken_at.replace("-", "").replace(":", "")
    assert (record.instance_id, record.replica, record.kubernetes_version) == (leader["id"], leader["replica"], VERSION)
    uploaded = cluster.shared / "s3" / location
    data = uploaded.read_bytes()
    assert (record.size, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    # The uploaded file is a sound etcd snapshot at the recorded revision.
    status = cluster.etcdctl("snapshot", "status", str(uploaded), "-w", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["revision"] == record.revision > 0
    assert not list(cluster.base.glob("instances/*/root/var/lib/kubestep/etcd-snapshot.db*"))


def test_no_backup_until_one_is_due_then_one_when_asked_for(cluster):
    _publish_policy(cluster)
    if not _records(cluster):
        assert all(r.returncode == 0 for r in _backup_everywhere(cluster).values())
    taken = _records(cluster)[keys.LATEST_BACKUP_SK]
    # Within the interval: nobody takes another.
    again = _backup_everywhere(cluster)
    assert any("no backup due" in r.stderr for r in again.values())
    assert _records(cluster)[keys.LATEST_BACKUP_SK] == taken
    # Asked for after the newest (`kubestep backup cluster`): the leader takes one.
    later = taken["takenAt"].replace("Z", "") + ".5Z"
    _publish_policy(cluster, requested_at=later)
    assert cluster.etcdctl("put", "/kubestep-test/after", "v").returncode == 0
    asked = _backup_everywhere(cluster)
    assert all(r.returncode == 0 for r in asked.values()), {k: r.stderr for k, r in asked.items()}
    newest = _records(cluster)[keys.LATEST_BACKUP_SK]
    assert newest["takenAt"] >= taken["takenAt"] and newest["revision"] > taken["revision"]


def test_without_a_policy_the_leader_takes_nothing(cluster):
    policy = _item_key(keys.cluster_access_pk(UID), keys.BACKUP_POLICY_SK)
    cluster._update("dynamodb.json", lambda items: items.pop(policy, None))
    before = _records(cluster)
    runs = _backup_everywhere(cluster)
    assert all(r.returncode == 0 for r in runs.values())
    assert _records(cluster) == before
