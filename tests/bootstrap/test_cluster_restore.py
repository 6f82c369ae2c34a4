"""The boot-time restore on the real instance, proven with the cluster harness (three replicas,
one real etcd each, the `aws` stand-in): the leader's backup timer takes a snapshot; more keys
are written; RestoreCluster records its request (docs/contracts.md, "Restore request") and
stops the control plane; the replicas' new instances, on the same etcd volumes, each restore
the snapshot before etcd starts (etcd's disaster-recovery procedure: the stable names, a new
cluster token) and report the token. The cluster then holds exactly the snapshot's keys with
three healthy members. A request whose SHA-256 is not the object's is refused before anything
is unpacked, and the replica reports why."""

from __future__ import annotations

import base64
import json

import pytest
from boto3.dynamodb.types import TypeSerializer

from kubestep.store import keys
from kubestep.store.backups import RestoreRequest
from tests.bootstrap.cluster_harness import ClusterHarness
from tests.bootstrap.conftest import admins_item, backup_policy_item

VERSION = "1.36.5"
UID = "abcd1234"
BUCKET = "svc-kubestep-state-0123456789ab"
BOOTSTRAP = "/usr/local/sbin/kubestep-bootstrap"
TOKEN = "gke-abcd1234-etcd-0123456789ab"
PREFIX = "/kubestep-test/"


def _replicas(cluster: ClusterHarness) -> list[dict]:
    live = [i for i in cluster.instances().values() if i.get("replica") is not None and i["alive"]]
    return sorted(live, key=lambda i: i["replica"])


def _keys(cluster: ClusterHarness) -> dict[str, str]:
    result = cluster.etcdctl("get", PREFIX, "--prefix", "-w", "json")
    assert result.returncode == 0, result.stderr
    kvs = json.loads(result.stdout).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in kvs}


def _put(cluster: ClusterHarness, name: str) -> None:
    assert cluster.etcdctl("put", PREFIX + name, name).returncode == 0


def _request(cluster: ClusterHarness, **changes: str) -> RestoreRequest:
    latest = cluster.dynamodb()[f"{keys.backups_pk(UID)}|{keys.LATEST_BACKUP_SK}"]
    request = RestoreRequest(
        backup_id=latest["backupId"]["S"],
        bucket=BUCKET,
        object_key=latest["objectKey"]["S"],
        sha256=latest["sha256"]["S"],
        revision=int(latest["revision"]["N"]),
        cluster_token=TOKEN,
        operation_id="restore-1",
        requested_at="2026-12-05T12:00:00Z",
    ).model_copy(update=changes)
    item = {"pk": keys.cluster_access_pk(UID), "sk": keys.RESTORE_REQUEST_SK, **request.to_item()}
    serializer = TypeSerializer()
    typed = {name: serializer.serialize(value) for name, value in item.items()}
    cluster._update("dynamodb.json", lambda items: items.update({f"{item['pk']}|{item['sk']}": typed}))
    return request


def _stop_and_start(cluster: ClusterHarness, indexes: list[int]) -> dict[int, tuple[dict, object]]:
    """What RestoreCluster does to the replicas' groups: every instance terminated (the etcd
    volumes kept), then a new instance per replica, all booting at once."""
    for instance in _replicas(cluster):
        if instance["replica"] in indexes:
            cluster.terminate(instance)
    started = {i: cluster.start(cluster.replica(i, VERSION)) for i in indexes}
    return {i: (instance, cluster.wait(instance)) for i, instance in started.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    harness = ClusterHarness(tmp_path_factory.mktemp("restore"))
    try:
        harness._update("dynamodb.json", lambda items: items.update(admins_item(uid=UID)))
        _, booted = harness.boot(harness.replica(0, VERSION))
        assert booted.ok, booted.stderr
        for joiner in [harness.start(harness.replica(i, VERSION)) for i in (1, 2)]:
            booted = harness.wait(joiner)
            assert booted.ok, booted.stderr
        yield harness
    finally:
        harness.close()


def test_every_replica_restores_the_snapshot_and_the_cluster_has_exactly_its_keys(cluster):
    for name in ("a", "b", "c"):
        _put(cluster, name)
    cluster._update("dynamodb.json", lambda items: items.update(backup_policy_item(BUCKET, UID)))
    backups = [cluster.run(i, BOOTSTRAP, "backup") for i in _replicas(cluster)]
    assert all(run.returncode == 0 for run in backups), [run.stderr for run in backups]
    _put(cluster, "written-after-the-snapshot")
    _put(cluster, "a")  # and a changed value
    request = _request(cluster)

    booted = _stop_and_start(cluster, [0, 1, 2])

    for index, (instance, boot) in booted.items():
        assert boot.ok, (index, boot.stderr)
        checks = cluster.report(instance)["checks"]["M"]
        assert checks["etcdClusterToken"] == {"S": TOKEN}, index
        assert checks["restoredBackup"] == {"S": request.backup_id}
        assert checks["etcdHealthy"] == {"BOOL": True} and checks["etcdMembers"] == {"N": "3"}
    assert _keys(cluster) == {PREFIX + "a": "a", PREFIX + "b": "b", PREFIX + "c": "c"}
    members = cluster.members()
    assert sorted(m["name"] for m in members) == cluster.names
    assert not any(m.get("isLearner") for m in members)
    health = cluster.etcdctl("endpoint", "health")
    assert health.returncode == 0 and health.stderr.count("is healthy") + health.stdout.count("is healthy") == 3
    # The old data is kept aside, never deleted.
    assert len(list(cluster.base.glob("**/data.pre-restore-*"))) == 3


def test_a_new_instance_on_a_restored_volume_does_not_restore_again(cluster):
    _put(cluster, "after-the-restore")
    booted = _stop_and_start(cluster, [1])
    instance, boot = booted[1]
    assert boot.ok, boot.stderr
    assert "restored with token" in boot.stderr
    assert PREFIX + "after-the-restore" in _keys(cluster)
    assert cluster.report(instance)["checks"]["M"]["etcdClusterToken"] == {"S": TOKEN}


def test_a_snapshot_whose_checksum_differs_is_refused_and_reported(cluster):
    before = _keys(cluster)
    _request(cluster, sha256="0" * 64, cluster_token="gke-abcd1234-etcd-ffffffffffff")
    booted = _stop_and_start(cluster, [2])
    instance, boot = booted[2]
    assert not boot.ok
    report = cluster.report(instance)
    assert report["status"] == {"S": "failed:etcd-restore"}
    error = report["checks"]["M"]["restoreError"]["S"]
    assert "not the recorded " + "0" * 64 + ": refused" in error
    # The other two members still serve everything they had.
    assert _keys(cluster) == before
