"""Backups and restore on real etcd (Debian's etcd-server, one process per replica, as in
test_etcd_recovery.py): the leader alone takes the snapshot with `kubestep-etcd-snapshot save`
(the script the replicas run), more keys are written, the whole control plane stops, every
member is restored from the snapshot with a new cluster token and its stable name, and the
cluster that starts is a healthy 3-member cluster holding exactly the snapshot's keys. A
snapshot whose SHA-256 is not the recorded one, or whose own integrity hash is broken, is
refused and the member's data dir is left as it was.

The procedure is etcd's (etcd docs, "Disaster recovery": `snapshot save` from one member,
`snapshot restore` on every member with `--name`, `--initial-cluster`,
`--initial-cluster-token`, `--initial-advertise-peer-urls`, then start them all)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kubestep.bootstrap import kubeadm
from tests.bootstrap.test_etcd_recovery import (
    Replica,
    all_healthy,
    binary,
    etcdctl,
    kubestep_member_join,
    loopback_block,
    members,
    wait_for,
)

SNAPSHOT_SCRIPT = Path(kubeadm.__file__).with_name("scripts") / "etcd-snapshot.sh"
PREFIX = "/registry/kubestep/"


@pytest.fixture
def replicas(tmp_path):
    binary("etcd")
    block = loopback_block()
    found = [Replica(i, tmp_path, block) for i in range(3)]
    yield found
    for replica in found:
        replica.stop()


def snapshot_script(endpoint: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "ETCDCTL_API": "3"}
    if endpoint:
        env["ETCDCTL_ENDPOINTS"] = endpoint
    return subprocess.run(
        ["bash", str(SNAPSHOT_SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60, check=check
    )


def form_cluster(replicas: list[Replica]) -> list[str]:
    first = replicas[0]
    endpoints = [r.client_url for r in replicas]
    first.start(f"{first.name}={first.peer_url}", "new")
    wait_for(lambda: all_healthy([first.client_url], 1), "the first member")
    for replica in replicas[1:]:
        kubestep_member_join(replica, [r.client_url for r in replicas if r.process])
    wait_for(lambda: all_healthy(endpoints, 3), "three members")
    return endpoints


def keys_and_values(endpoint: str) -> dict[str, str]:
    lines = etcdctl([endpoint], "get", "--prefix", PREFIX).stdout.splitlines()
    return dict(zip(lines[0::2], lines[1::2], strict=True))


def restore_all(replicas: list[Replica], snapshot: Path, sha256: str, token: str) -> list[subprocess.CompletedProcess]:
    initial_cluster = ",".join(f"{r.name}={r.peer_url}" for r in replicas)
    return [
        snapshot_script(
            None,
            "restore",
            str(snapshot),
            sha256,
            r.name,
            r.peer_url,
            initial_cluster,
            token,
            str(r.data_dir),
            check=False,
        )
        for r in replicas
    ]


def test_the_leaders_snapshot_restores_every_member_to_exactly_its_keys(replicas, tmp_path):
    endpoints = form_cluster(replicas)
    for i in range(5):
        etcdctl(endpoints, "put", f"{PREFIX}before/{i}", f"v{i}")
    expected = keys_and_values(endpoints[0])
    before = members(endpoints)

    # Only the leader takes it.
    leaders = [r for r in replicas if snapshot_script(r.client_url, "is-leader", check=False).returncode == 0]
    assert len(leaders) == 1
    snapshot = tmp_path / "snapshot.db"
    revision, size, sha256 = snapshot_script(leaders[0].client_url, "save", str(snapshot)).stdout.split()
    assert int(size) == snapshot.stat().st_size > 0 and int(revision) >= 5 and len(sha256) == 64
    assert not snapshot.with_name("snapshot.db.partial").exists()

    # The cluster goes on: new keys, one old key deleted.
    etcdctl(endpoints, "put", f"{PREFIX}after/0", "lost")
    etcdctl(endpoints, "del", f"{PREFIX}before/0")

    # Stop the control plane, restore every member under a new token, start them.
    for replica in replicas:
        replica.stop()
    results = restore_all(replicas, snapshot, sha256, "gke-abcd1234-etcd-restore-1")
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    initial_cluster = ",".join(f"{r.name}={r.peer_url}" for r in replicas)
    for replica in replicas:
        replica.start(initial_cluster, "new")
    wait_for(lambda: all_healthy(endpoints, 3), "the restored cluster")

    for replica in replicas:
        assert keys_and_values(replica.client_url) == expected, replica.name
    after = members(endpoints)
    assert sorted(after) == sorted(r.name for r in replicas)
    assert not any(m.get("isLearner") for m in after.values())
    # A new cluster: new member ids, so no member of the old one could ever rejoin it.
    assert not {m["ID"] for m in after.values()} & {m["ID"] for m in before.values()}
    # What each member held before is kept aside, not deleted.
    assert all(list(r.volume.glob("data.pre-restore-*")) for r in replicas)
    etcdctl(endpoints, "put", f"{PREFIX}restored", "writable")


def test_a_snapshot_with_a_bad_checksum_or_broken_integrity_is_refused(replicas, tmp_path):
    endpoints = form_cluster(replicas)
    etcdctl(endpoints, "put", f"{PREFIX}kept", "yes")
    held = keys_and_values(endpoints[0])
    snapshot = tmp_path / "snapshot.db"
    _, _, sha256 = snapshot_script(endpoints[0], "save", str(snapshot)).stdout.split()
    for replica in replicas:
        replica.stop()
    data_before = {r.name: sorted(p.name for p in r.data_dir.rglob("*")) for r in replicas}

    # Not the recorded SHA-256 (a different or altered object): refused before anything is written.
    wrong = "0" * 64
    results = restore_all(replicas, snapshot, wrong, "gke-abcd1234-etcd-restore-2")
    assert all(r.returncode != 0 and "refused" in r.stderr for r in results)

    # The recorded SHA-256 matches, but the file itself is corrupt: etcd's own hash check refuses.
    corrupt = tmp_path / "corrupt.db"
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    corrupt_sha = subprocess.run(["sha256sum", str(corrupt)], capture_output=True, text=True).stdout.split()[0]
    results = restore_all(replicas, corrupt, corrupt_sha, "gke-abcd1234-etcd-restore-3")
    assert all(r.returncode != 0 for r in results), [r.stderr for r in results]

    assert {r.name: sorted(p.name for p in r.data_dir.rglob("*")) for r in replicas} == data_before
    assert not any(list(r.volume.glob("data.pre-restore-*")) for r in replicas)
    # The untouched members start again as the old cluster, with its data.
    initial_cluster = ",".join(f"{r.name}={r.peer_url}" for r in replicas)
    for replica in replicas:
        replica.start(initial_cluster, "existing")
    wait_for(lambda: all_healthy(endpoints, 3), "the untouched cluster")
    assert keys_and_values(endpoints[0]) == held and held[f"{PREFIX}kept"] == "yes"
